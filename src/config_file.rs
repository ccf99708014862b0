//! The `--config FILE` of DESIGN §7: a TOML file that says what the flags
//! of `ringway run` say.
//!
//! [`ConfigFile::load`] reads and checks the file; [`ConfigFile::arguments`]
//! turns it into the command-line arguments it stands for, so one grammar
//! (clap's value parsers, `parse_input_spec`, `parse_output_spec`) and one
//! validation (`RunArgs::into_settings`) serve both. A scalar key is a flag's
//! long name (or one of its aliases, an old name) with `_` for `-`
//! (`max_line = "1MiB"` is `--max-line=1MiB`);
//! `[[input]]` and `[[output]]` tables become SPECs (`kind = "udp"`,
//! `address = "0.0.0.0:514"`, `format = "syslog"` is
//! `udp:0.0.0.0:514,format=syslog`). A flag given on the command line wins
//! over its key, and `--input`/`--output` replace the file's lists.
//!
//! Every string value may refer to environment variables (`${OTLP_TOKEN}`),
//! expanded after parsing by [`expand`]; its [`Redactions`] keep what came
//! from the environment out of every message and out of `ringway check`.

mod expand;
mod spec;
use spec::{input_spec, output_headers, output_spec};

use clap::ArgAction;
pub(crate) use expand::Redactions;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Largest config file read; a log host's config is a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Run flags that have no key: the lists are the `[[input]]`/`[[output]]`
/// tables, and a config file does not name another.
/// Routes (`--where N=EXPR`) are each `[[output]]`'s `where` key, and
/// headers (`--output-header N=HEADER`) its `headers` table.
pub(crate) const NOT_KEYS: [&str; 8] = [
    "inputs",
    "outputs",
    "config",
    "help",
    "version",
    "routes",
    "output_headers",
    "traffic_light",
];

/// The keys an `[[input]]` table may have. `tls` (true or false), `cert`,
/// `key` and `client_ca` are a TCP or OTLP input's `,tls` and its PEM
/// files; `auth_token_file` an OTLP input's bearer tokens. `sql` is the
/// input's own SQL query (it wins over `--sql`): not part of the SPEC,
/// whose grammar cannot carry its commas.
const INPUT_KEYS: [&str; 17] = [
    "kind",
    "path",
    "address",
    "format",
    "from",
    "k8s",
    "multiline",
    "json",
    "rcvbuf",
    "sockets",
    "tls",
    "cert",
    "key",
    "client_ca",
    "auth_token_file",
    "source",
    "sql",
];

/// The keys of [`INPUT_KEYS`] a `stdin` input takes: every other one is
/// refused (standard input has no path, address or socket).
const STDIN_KEYS: [&str; 3] = ["kind", "format", "sql"];

/// The keys an `[[output]]` table may have. `where` is the output's route,
/// a SQL condition (`--where N=EXPR`), kept beside the SPEC like `sql`,
/// and `headers` (a table of names and values) its request headers
/// (`--output-header N=HEADER`). `tls` (a tcp output's `,tls`), `ca`,
/// `cert`, `key`, `server_name` and `insecure_skip_verify` are the TLS
/// client's options of the SPEC; a kafka output's client key is `tls_key`
/// (its `key` is the message key's field), and `sasl`, `username` and
/// `password` its SASL login.
const OUTPUT_KEYS: [&str; 21] = [
    "kind",
    "brokers",
    "topic",
    "compression",
    "acks",
    "path",
    "url",
    "address",
    "gzip",
    "where",
    "tls",
    "ca",
    "cert",
    "key",
    "server_name",
    "insecure_skip_verify",
    "headers",
    "tls_key",
    "sasl",
    "username",
    "password",
];

/// The TLS client keys of an `[[output]]` table, each a SPEC option.
const OUTPUT_TLS_KEYS: [&str; 4] = ["ca", "cert", "key", "server_name"];

/// One `[[input]]` or `[[output]]` table. Values stay TOML values, read by
/// key, so that a wrong type is reported with its key, not by serde's
/// generic message.
struct Table {
    /// Only keys in `keys`.
    values: toml::Table,
    keys: &'static [&'static str],
}

impl Table {
    /// `value` as a table that has only `keys`.
    fn new(value: toml::Value, keys: &'static [&'static str]) -> Result<Table, String> {
        let toml::Value::Table(values) = value else {
            return Err("must be a table".to_string());
        };
        if let Some(key) = values.keys().find(|key| !keys.contains(&key.as_str())) {
            return Err(format!(
                "unknown key '{key}' (the keys are {})",
                keys.join(", ")
            ));
        }
        Ok(Table { values, keys })
    }

    /// The value of `key`, which must be one of the table's keys (a
    /// misspelt key in the code would otherwise read as always absent).
    fn get(&self, key: &str) -> Option<&toml::Value> {
        assert!(
            self.keys.contains(&key),
            "'{key}' is not a key of the table"
        );
        self.values.get(key)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A string key that is part of a SPEC; `None` when absent.
    fn text(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) if text.contains(',') => Err(format!(
                "key '{key}': '{text}' has a comma, which the SPEC grammar cannot carry"
            )),
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("key '{key}' must be a string")),
        }
    }

    /// A string key that is not part of a SPEC (a query, a condition): any
    /// text; `None` when absent.
    fn free_text(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("key '{key}' must be a string")),
        }
    }

    /// A size or count key: a string (`"32MiB"`) or a number.
    fn number_or_text(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(number)) => Ok(Some(number.to_string())),
            Some(toml::Value::String(_)) => self.text(key),
            Some(_) => Err(format!("key '{key}' must be a number or a string")),
        }
    }
}

/// A config file, read and checked for its keys and their types.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    pub path: PathBuf,
    /// `(key, long flag, value)` for each scalar key, sorted by key.
    scalars: Vec<(String, String, toml::Value)>,
    /// The SPEC of each `[[input]]`, in order.
    pub inputs: Vec<String>,
    /// The SPEC of each `[[output]]`, in order.
    pub outputs: Vec<String>,
    /// The `sql` key of each `[[input]]`, in order (beside `inputs`).
    pub input_sql: Vec<Option<String>>,
    /// The `where` key of each `[[output]]`, in order (beside `outputs`).
    pub output_where: Vec<Option<String>>,
    /// What came from the environment, to hide wherever it is printed.
    pub redactions: Redactions,
    /// The `headers` of each `[[output]]` as `(name, value)`, in order
    /// (beside `outputs`).
    pub output_headers: Vec<Vec<(String, String)>>,
}

impl ConfigFile {
    /// Reads `path`. `run` is the `run` subcommand, whose flags are the keys.
    /// Every problem found is reported, one message each.
    pub fn load(path: &Path, run: &clap::Command) -> Result<ConfigFile, Vec<String>> {
        let shown = path.display();
        let metadata =
            std::fs::metadata(path).map_err(|error| vec![format!("config {shown}: {error}")])?;
        if !metadata.is_file() || metadata.len() > MAX_CONFIG_BYTES {
            return Err(vec![format!(
                "config {shown}: not a regular file of at most {MAX_CONFIG_BYTES} bytes"
            )]);
        }
        let text = std::fs::read_to_string(path)
            .map_err(|error| vec![format!("config {shown}: {error}")])?;
        Self::parse(path, &text, run)
    }

    /// Parses `text` with the process's environment for `${VAR}`.
    fn parse(path: &Path, text: &str, run: &clap::Command) -> Result<ConfigFile, Vec<String>> {
        Self::parse_in(path, text, run, &expand::process_environment)
    }

    /// Parses `text`, taking variables from `lookup`.
    fn parse_in(
        path: &Path,
        text: &str,
        run: &clap::Command,
        lookup: expand::Lookup,
    ) -> Result<ConfigFile, Vec<String>> {
        let shown = path.display();
        let table: Result<toml::Table, String> = toml::from_str(text).map_err(|error| {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = error.message().replace('\n', " ");
            match line {
                Some(line) => format!("config {shown}, line {line}: {}", message.trim()),
                None => format!("config {shown}: {}", message.trim()),
            }
        });
        let mut table = table.map_err(|error| vec![error])?;
        // Variables first: every later check sees the values they give.
        let (redactions, unexpanded) = expand::expand_table(&mut table, lookup);
        if !unexpanded.is_empty() {
            return Err(unexpanded
                .into_iter()
                .map(|(place, error)| format!("config {shown}: {place}: {error}"))
                .collect());
        }
        let mut errors = Vec::new();
        let mut config = ConfigFile {
            path: path.to_path_buf(),
            scalars: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            input_sql: Vec::new(),
            output_where: Vec::new(),
            redactions,
            output_headers: Vec::new(),
        };
        for (key, value) in table {
            let at = |what: String| format!("config {shown}: {what}");
            match key.as_str() {
                "input" | "output" => {
                    let toml::Value::Array(tables) = value else {
                        errors.push(at(format!(
                            "key '{key}' must be an array of tables ([[{key}]])"
                        )));
                        continue;
                    };
                    for (index, table) in tables.into_iter().enumerate() {
                        let name = format!("[[{key}]] #{}", index + 1);
                        let spec = if key == "input" {
                            Table::new(table, &INPUT_KEYS).and_then(|table| {
                                Ok((input_spec(&table)?, table.free_text("sql")?, Vec::new()))
                            })
                        } else {
                            Table::new(table, &OUTPUT_KEYS).and_then(|table| {
                                Ok((
                                    output_spec(&table)?,
                                    table.free_text("where")?,
                                    output_headers(&table)?,
                                ))
                            })
                        };
                        match spec {
                            Ok((spec, sql, _)) if key == "input" => {
                                config.inputs.push(spec);
                                config.input_sql.push(sql);
                            }
                            Ok((spec, route, headers)) => {
                                config.outputs.push(spec);
                                config.output_where.push(route);
                                config.output_headers.push(headers);
                            }
                            Err(error) => errors.push(at(format!("{name}: {error}"))),
                        }
                    }
                }
                _ => {
                    // A flag's alias (an old name) is a key too; the
                    // key stands for the flag's own long name.
                    let flag = key.replace('_', "-");
                    let long = run
                        .get_arguments()
                        .find(|arg| {
                            (arg.get_long() == Some(flag.as_str())
                                || arg
                                    .get_all_aliases()
                                    .is_some_and(|aliases| aliases.contains(&flag.as_str())))
                                && !NOT_KEYS.contains(&arg.get_id().as_str())
                        })
                        .and_then(|arg| arg.get_long());
                    let Some(long) = long.filter(|_| !key.contains('-')) else {
                        errors.push(at(format!(
                            "unknown key '{key}' (keys are the flags of 'ringway run --help' with _ for -, e.g. max_line, and [[input]], [[output]] tables)"
                        )));
                        continue;
                    };
                    config.scalars.push((key, long.to_string(), value));
                }
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(config.redact_all(errors))
        }
    }

    /// The keys the file sets, as `(key, long flag)`.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.scalars
            .iter()
            .map(|(key, flag, _)| (key.as_str(), flag.as_str()))
    }

    /// The arguments this file stands for, minus every flag `explicit`
    /// says was given on the command line (those keys are then forgotten).
    /// Each value is checked alone with `run`'s own parser, so an error
    /// names its key.
    pub fn arguments(
        &mut self,
        run: &clap::Command,
        explicit: impl Fn(&str) -> bool,
    ) -> Result<Vec<OsString>, Vec<String>> {
        let shown = self.path.display();
        let mut arguments = Vec::new();
        let mut errors = Vec::new();
        for (key, flag, value) in &self.scalars {
            let arg = run
                .get_arguments()
                .find(|arg| arg.get_long() == Some(flag.as_str()))
                .expect("checked by parse");
            let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
            let argument = match (value, is_switch) {
                (toml::Value::Boolean(true), true) => format!("--{flag}"),
                (toml::Value::Boolean(false), true) => continue,
                (_, true) => {
                    errors.push(format!("config {shown}: key '{key}' must be true or false"));
                    continue;
                }
                (value, false) => match scalar_text(value) {
                    Ok(text) => format!("--{flag}={text}"),
                    Err(error) => {
                        errors.push(format!("config {shown}: key '{key}' {error}"));
                        continue;
                    }
                },
            };
            // The value alone through clap's parser for this flag: its
            // message, with the key in front.
            let alone = clap::Command::new("ringway")
                .subcommand(run.clone())
                .try_get_matches_from(["ringway", run.get_name(), &argument]);
            if let Err(error) = alone {
                let rendered = error.to_string();
                let first = rendered.lines().next().unwrap_or("invalid value");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                errors.push(format!("config {shown}: key '{key}': {first}"));
                continue;
            }
            // A flag on the command line wins; the key was still checked.
            if !explicit(arg.get_id().as_str()) {
                arguments.push(OsString::from(argument));
            }
        }
        self.scalars.retain(|(_, flag, _)| {
            let id = run
                .get_arguments()
                .find(|arg| arg.get_long() == Some(flag.as_str()))
                .map(|arg| arg.get_id().as_str().to_string())
                .unwrap_or_default();
            !explicit(&id)
        });
        if errors.is_empty() {
            Ok(arguments)
        } else {
            Err(self.redact_all(errors))
        }
    }

    /// `text` with every value that came from the environment shown as the
    /// `${VAR}` it came from (see [`Redactions::redact`]).
    pub fn redact(&self, text: &str) -> String {
        self.redactions.redact(text)
    }

    fn redact_all(&self, messages: Vec<String>) -> Vec<String> {
        messages
            .iter()
            .map(|message| self.redact(message))
            .collect()
    }

    /// Which key of this file an error message is about (it names a flag
    /// or a SPEC the file set), to append to the message.
    pub fn blame(&self, message: &str) -> Option<String> {
        let shown = self.path.display();
        for (key, flag, _) in &self.scalars {
            if message.contains(&format!("--{flag}")) {
                return Some(format!("(key '{key}' in config {shown})"));
            }
        }
        for (list, specs) in [("input", &self.inputs), ("output", &self.outputs)] {
            for (index, spec) in specs.iter().enumerate() {
                if message.contains(&format!("'{spec}'"))
                    || message.starts_with(&format!("{spec}:"))
                {
                    return Some(format!("([[{list}]] #{} in config {shown})", index + 1));
                }
            }
        }
        None
    }
}

/// A TOML value as a flag's text: strings as they are, numbers in decimal,
/// arrays (a CPU list) joined with commas.
fn scalar_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Integer(number) => Ok(number.to_string()),
                toml::Value::String(text) => Ok(text.clone()),
                _ => Err("must be a list of numbers".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ => Err("must be a string or a number".to_string()),
    }
}

#[cfg(test)]
mod tests;
