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

use clap::ArgAction;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Largest config file read; a log host's config is a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Run flags that have no key: the lists are the `[[input]]`/`[[output]]`
/// tables, and a config file does not name another.
/// Routes (`--where N=EXPR`) are each `[[output]]`'s `where` key.
const NOT_KEYS: [&str; 6] = ["inputs", "outputs", "config", "help", "version", "routes"];

/// One `[[input]]` table. Values stay TOML values so that a wrong type is
/// reported with its key, not by serde's generic message.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct InputTable {
    kind: Option<toml::Value>,
    path: Option<toml::Value>,
    address: Option<toml::Value>,
    format: Option<toml::Value>,
    from: Option<toml::Value>,
    rcvbuf: Option<toml::Value>,
    sockets: Option<toml::Value>,
    /// The input's own SQL query (wins over `--sql`); not part of the SPEC,
    /// whose grammar cannot carry its commas.
    sql: Option<toml::Value>,
}

/// One `[[output]]` table.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct OutputTable {
    kind: Option<toml::Value>,
    path: Option<toml::Value>,
    url: Option<toml::Value>,
    address: Option<toml::Value>,
    gzip: Option<toml::Value>,
    /// The output's route: a SQL condition (`--where N=EXPR`).
    #[serde(rename = "where")]
    route: Option<toml::Value>,
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

    fn parse(path: &Path, text: &str, run: &clap::Command) -> Result<ConfigFile, Vec<String>> {
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
        let table = table.map_err(|error| vec![error])?;
        let mut errors = Vec::new();
        let mut config = ConfigFile {
            path: path.to_path_buf(),
            scalars: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            input_sql: Vec::new(),
            output_where: Vec::new(),
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
                            table
                                .try_into()
                                .map_err(|error: toml::de::Error| one_line(&error))
                                .and_then(|table: InputTable| {
                                    Ok((input_spec(&table)?, free_text("sql", &table.sql)?))
                                })
                        } else {
                            table
                                .try_into()
                                .map_err(|error: toml::de::Error| one_line(&error))
                                .and_then(|table: OutputTable| {
                                    Ok((output_spec(&table)?, free_text("where", &table.route)?))
                                })
                        };
                        match spec {
                            Ok((spec, sql)) if key == "input" => {
                                config.inputs.push(spec);
                                config.input_sql.push(sql);
                            }
                            Ok((spec, route)) => {
                                config.outputs.push(spec);
                                config.output_where.push(route);
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
            Err(errors)
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
            Err(errors)
        }
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

/// A string key of a table; `None` when absent.
fn text(key: &str, value: &Option<toml::Value>) -> Result<Option<String>, String> {
    match value {
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
fn free_text(key: &str, value: &Option<toml::Value>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(toml::Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("key '{key}' must be a string")),
    }
}

/// A size or count key: a string (`"32MiB"`) or a number.
fn number_or_text(key: &str, value: &Option<toml::Value>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(toml::Value::Integer(number)) => Ok(Some(number.to_string())),
        Some(toml::Value::String(_)) => text(key, value),
        Some(_) => Err(format!("key '{key}' must be a number or a string")),
    }
}

fn required(key: &str, kind: &str, value: Option<String>) -> Result<String, String> {
    value.ok_or_else(|| format!("a {kind} table needs key '{key}'"))
}

fn refuse(kind: &str, key: &str, present: bool, takes: &str) -> Result<(), String> {
    if present {
        return Err(format!(
            "key '{key}' does not apply to kind '{kind}' (it takes {takes})"
        ));
    }
    Ok(())
}

/// The SPEC an `[[input]]` table stands for, each key checked by itself so
/// that an error names it.
fn input_spec(table: &InputTable) -> Result<String, String> {
    let kind = required("kind", "[[input]]", text("kind", &table.kind)?)?;
    let takes = match kind.as_str() {
        "file" => "path, format, from",
        "udp" => "address, format, rcvbuf, sockets",
        "stdin" => "format",
        _ => "address, format",
    };
    if kind == "stdin" {
        // Standard input has no target: `stdin[,format=…]`.
        for (key, present) in [
            ("path", table.path.is_some()),
            ("address", table.address.is_some()),
            ("from", table.from.is_some()),
            ("rcvbuf", table.rcvbuf.is_some()),
            ("sockets", table.sockets.is_some()),
        ] {
            refuse(&kind, key, present, takes)?;
        }
        let mut spec = kind;
        if let Some(format) = text("format", &table.format)? {
            crate::config::parse_format_flag(&format)
                .map_err(|error| format!("key 'format': {error}"))?;
            spec.push_str(&format!(",format={format}"));
        }
        return Ok(spec);
    }
    let mut spec = match kind.as_str() {
        "file" => {
            refuse(&kind, "address", table.address.is_some(), takes)?;
            required("path", "file", text("path", &table.path)?)?
        }
        "udp" | "tcp" | "otlp" => {
            refuse(&kind, "path", table.path.is_some(), takes)?;
            let address = required("address", &kind, text("address", &table.address)?)?;
            let example = match kind.as_str() {
                "otlp" => 4318,
                _ => 514,
            };
            crate::config::parse_listen_address(&address, example)
                .map_err(|error| format!("key 'address': {error}"))?;
            address
        }
        other => {
            return Err(format!(
                "key 'kind': unknown input kind '{other}' (use file, udp, tcp, otlp or stdin)"
            ));
        }
    };
    spec.insert(0, ':');
    spec.insert_str(0, &kind);
    if let Some(format) = text("format", &table.format)? {
        crate::config::parse_format_flag(&format)
            .map_err(|error| format!("key 'format': {error}"))?;
        spec.push_str(&format!(",format={format}"));
    }
    if let Some(from) = text("from", &table.from)? {
        refuse(&kind, "from", kind != "file", takes)?;
        crate::config::parse_from_flag(&from).map_err(|error| format!("key 'from': {error}"))?;
        spec.push_str(&format!(",from={from}"));
    }
    if let Some(rcvbuf) = number_or_text("rcvbuf", &table.rcvbuf)? {
        refuse(&kind, "rcvbuf", kind != "udp", takes)?;
        crate::config::parse_size(&rcvbuf).map_err(|error| format!("key 'rcvbuf': {error}"))?;
        spec.push_str(&format!(",rcvbuf={rcvbuf}"));
    }
    if let Some(sockets) = number_or_text("sockets", &table.sockets)? {
        refuse(&kind, "sockets", kind != "udp", takes)?;
        let max = crate::config::MAX_UDP_SOCKETS;
        if !sockets
            .parse::<usize>()
            .is_ok_and(|n| (1..=max).contains(&n))
        {
            return Err(format!(
                "key 'sockets': must be between 1 and {max}, not {sockets}"
            ));
        }
        spec.push_str(&format!(",sockets={sockets}"));
    }
    Ok(spec)
}

/// The SPEC an `[[output]]` table stands for.
fn output_spec(table: &OutputTable) -> Result<String, String> {
    let kind = required("kind", "[[output]]", text("kind", &table.kind)?)?;
    let gzip = match &table.gzip {
        None | Some(toml::Value::Boolean(false)) => false,
        Some(toml::Value::Boolean(true)) => true,
        Some(_) => return Err("key 'gzip' must be true or false".to_string()),
    };
    let only = |keys: &[&str], takes: &str| -> Result<(), String> {
        for (key, present) in [
            ("path", table.path.is_some()),
            ("url", table.url.is_some()),
            ("address", table.address.is_some()),
            ("gzip", table.gzip.is_some()),
        ] {
            if !keys.contains(&key) {
                refuse(&kind, key, present, takes)?;
            }
        }
        Ok(())
    };
    let spec = match kind.as_str() {
        "file" => {
            only(&["path"], "path")?;
            format!(
                "file:{}",
                required("path", "file", text("path", &table.path)?)?
            )
        }
        "stdout" | "null" => {
            only(&[], "no other key")?;
            kind.clone()
        }
        "tcp" => {
            only(&["address"], "address")?;
            format!(
                "tcp:{}",
                required("address", "tcp", text("address", &table.address)?)?
            )
        }
        "http" | "otlp" => {
            only(&["url", "gzip"], "url and gzip")?;
            let url = required("url", &kind, text("url", &table.url)?)?;
            let spec = format!("{kind}:{url}{}", if gzip { ",gzip" } else { "" });
            crate::config::parse_output_spec(&spec)
                .map_err(|error| format!("key 'url': {error}"))?;
            spec
        }
        other => {
            return Err(format!(
                "key 'kind': unknown output kind '{other}' (use file, stdout, null, tcp, http or otlp)"
            ));
        }
    };
    if kind == "tcp" {
        crate::config::parse_output_spec(&spec)
            .map_err(|error| format!("key 'address': {error}"))?;
    }
    Ok(spec)
}

/// A TOML error's message on one line.
fn one_line(error: &toml::de::Error) -> String {
    error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(text: &str) -> Result<ConfigFile, String> {
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        ConfigFile::parse(Path::new("test.toml"), text, run).map_err(|errors| {
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors.join("\n")
        })
    }

    #[test]
    fn tables_become_the_specs_of_the_command_line() {
        let config = parse(
            r#"
            [[input]]
            kind = "file"
            path = "/var/log/app/*.log"
            format = "json"
            from = "end"
            [[input]]
            kind = "udp"
            address = "0.0.0.0:514"
            format = "syslog"
            rcvbuf = "32MiB"
            sockets = 2
            [[input]]
            kind = "otlp"
            address = "[::1]:4318"
            [[input]]
            kind = "stdin"
            format = "json"
            [[output]]
            kind = "otlp"
            url = "http://collector:4318/v1/logs"
            gzip = true
            [[output]]
            kind = "tcp"
            address = "127.0.0.1:5170"
            [[output]]
            kind = "null"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.inputs,
            [
                "file:/var/log/app/*.log,format=json,from=end",
                "udp:0.0.0.0:514,format=syslog,rcvbuf=32MiB,sockets=2",
                "otlp:[::1]:4318",
                "stdin,format=json",
            ]
        );
        assert_eq!(
            config.outputs,
            [
                "otlp:http://collector:4318/v1/logs,gzip",
                "tcp:127.0.0.1:5170",
                "null"
            ]
        );
    }

    #[test]
    fn sql_and_where_keys_stay_beside_the_specs_they_cannot_be_part_of() {
        let config = parse(
            r#"
            [[input]]
            kind = "file"
            path = "/a.log"
            sql = "SELECT a, b FROM logs WHERE c IN ('x', 'y')"
            [[input]]
            kind = "stdin"
            [[output]]
            kind = "null"
            [[output]]
            kind = "stdout"
            where = "level = 'error'"
            "#,
        )
        .unwrap();
        assert_eq!(config.inputs, ["file:/a.log", "stdin"]);
        assert_eq!(
            config.input_sql,
            [
                Some("SELECT a, b FROM logs WHERE c IN ('x', 'y')".to_string()),
                None
            ]
        );
        assert_eq!(config.outputs, ["null", "stdout"]);
        assert_eq!(
            config.output_where,
            [None, Some("level = 'error'".to_string())]
        );
        let error = parse("[[output]]\nkind = \"null\"\nwhere = 3").unwrap_err();
        assert!(error.contains("'where' must be a string"), "{error}");
        // Routes are the tables' keys, not a scalar key.
        let error = parse("where = \"1=true\"").unwrap_err();
        assert!(error.contains("unknown key 'where'"), "{error}");
    }

    #[test]
    fn scalar_keys_become_flags_unless_given_on_the_command_line() {
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let mut config = parse(
            "max_line = \"2MiB\"\noutput_workers = 3\nsqpoll = true\nfsync = false\ncpus = [0, 2]\n",
        )
        .unwrap();
        let arguments = config.arguments(run, |id| id == "output_workers").unwrap();
        assert_eq!(arguments, ["--cpus=0,2", "--max-line=2MiB", "--sqpoll"]);
        assert!(config.keys().all(|(key, _)| key != "output_workers"));
    }

    #[test]
    fn every_error_in_a_file_is_reported() {
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let errors = ConfigFile::parse(
            Path::new("test.toml"),
            "colour = 1\nshape = 2\n[[input]]\nkind = \"pigeon\"\n[[output]]\nkind = \"file\"\n",
            run,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        for key in ["colour", "shape", "[[input]] #1", "[[output]] #1"] {
            assert!(
                errors.iter().any(|error| error.contains(key)),
                "{key}: {errors:?}"
            );
        }
        let mut config = ConfigFile::parse(
            Path::new("test.toml"),
            "max_line = \"8XB\"\nbatch_linger = \"soon\"\nsqpoll = 1\n",
            run,
        )
        .unwrap();
        let errors = config.arguments(run, |_| false).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        for (text, key) in [
            ("max-line = \"1MiB\"", "max-line"),
            ("inputs = 1", "inputs"),
            ("config = \"x\"", "config"),
            ("input = \"file:/x\"", "input"),
            ("[[input]]\nkind = \"file\"\npath = 3", "path"),
            (
                "[[input]]\nkind = \"udp\"\naddress = \"1.2.3.4:5\"\nsockets = 65",
                "sockets",
            ),
            (
                "[[output]]\nkind = \"file\"\npath = \"/x\"\ngzip = true",
                "gzip",
            ),
            ("[[output]]\nkind = \"http\"\nurl = \"http://h/,x\"", "url"),
            ("[[output]]\nurl = \"http://h/\"", "kind"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                error.contains(&format!("'{key}'")) || error.contains(&format!("`{key}`")),
                "{text}: {error}"
            );
            assert!(
                error.contains("test.toml") && !error.contains('\n'),
                "{error}"
            );
        }
    }
}
