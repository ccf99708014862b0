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
/// client's options of the SPEC.
const OUTPUT_KEYS: [&str; 17] = [
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
fn input_spec(table: &Table) -> Result<String, String> {
    let kind = required("kind", "[[input]]", table.text("kind")?)?;
    let takes = match kind.as_str() {
        "file" => "path, format, from, k8s, json, source, multiline",
        "udp" => "address, format, rcvbuf, sockets, source",
        "tcp" => "address, format, tls, cert, key, client_ca, source",
        "stdin" => "format",
        "otlp" => "address, format, tls, cert, key, client_ca, auth_token_file, source",
        _ => "address, format",
    };
    if kind == "stdin" {
        // Standard input has no target: `stdin[,format=…]`; of the input
        // keys it takes only those every input has.
        for key in INPUT_KEYS
            .into_iter()
            .filter(|key| !STDIN_KEYS.contains(key))
        {
            refuse(&kind, key, table.has(key), takes)?;
        }
        let mut spec = kind;
        if let Some(format) = table.text("format")? {
            crate::config::parse_format_flag(&format)
                .map_err(|error| format!("key 'format': {error}"))?;
            spec.push_str(&format!(",format={format}"));
        }
        return Ok(spec);
    }
    let mut spec = match kind.as_str() {
        "file" => {
            refuse(&kind, "address", table.has("address"), takes)?;
            required("path", "file", table.text("path")?)?
        }
        "udp" | "tcp" | "otlp" => {
            refuse(&kind, "path", table.has("path"), takes)?;
            let address = required("address", &kind, table.text("address")?)?;
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
    if let Some(format) = table.text("format")? {
        crate::config::parse_format_flag(&format)
            .map_err(|error| format!("key 'format': {error}"))?;
        spec.push_str(&format!(",format={format}"));
    }
    if let Some(from) = table.text("from")? {
        refuse(&kind, "from", kind != "file", takes)?;
        crate::config::parse_from_flag(&from).map_err(|error| format!("key 'from': {error}"))?;
        spec.push_str(&format!(",from={from}"));
    }
    if let Some(rcvbuf) = table.number_or_text("rcvbuf")? {
        refuse(&kind, "rcvbuf", kind != "udp", takes)?;
        crate::config::parse_size(&rcvbuf).map_err(|error| format!("key 'rcvbuf': {error}"))?;
        spec.push_str(&format!(",rcvbuf={rcvbuf}"));
    }
    if let Some(sockets) = table.number_or_text("sockets")? {
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
    match table.get("k8s") {
        None => {}
        Some(toml::Value::Boolean(on)) => {
            refuse(&kind, "k8s", kind != "file", takes)?;
            spec.push_str(&format!(",k8s={on}"));
        }
        Some(_) => return Err("key 'k8s' must be true or false".to_string()),
    }
    if let Some(json) = table.text("json")? {
        refuse(&kind, "json", kind != "file", takes)?;
        spec.push_str(&format!(",json={json}"));
    }
    match table.get("source") {
        None => {}
        Some(toml::Value::Boolean(on)) => spec.push_str(&format!(",source={on}")),
        Some(_) => return Err("key 'source' must be true or false".to_string()),
    }
    match table.get("tls") {
        None | Some(toml::Value::Boolean(false)) => {}
        Some(toml::Value::Boolean(true)) => {
            refuse(
                &kind,
                "tls",
                !matches!(kind.as_str(), "tcp" | "otlp"),
                takes,
            )?;
            spec.push_str(",tls");
        }
        Some(_) => return Err("key 'tls' must be true or false".to_string()),
    }
    for key in ["cert", "key", "client_ca"] {
        if let Some(path) = table.text(key)? {
            refuse(&kind, key, !matches!(kind.as_str(), "tcp" | "otlp"), takes)?;
            spec.push_str(&format!(",{key}={path}"));
        }
    }
    if let Some(path) = table.text("auth_token_file")? {
        refuse(&kind, "auth_token_file", kind != "otlp", takes)?;
        spec.push_str(&format!(",auth_token_file={path}"));
    }
    // Last: the SPEC takes the rest of itself as its regex.
    if let Some(multiline) = table.free_text("multiline")? {
        refuse(&kind, "multiline", kind != "file", takes)?;
        spec.push_str(&format!(",multiline={multiline}"));
    }
    Ok(spec)
}

/// The SPEC an `[[output]]` table stands for.
fn output_spec(table: &Table) -> Result<String, String> {
    let kind = required("kind", "[[output]]", table.text("kind")?)?;
    let flag = |key: &str| match table.get(key) {
        None | Some(toml::Value::Boolean(false)) => Ok(false),
        Some(toml::Value::Boolean(true)) => Ok(true),
        Some(_) => Err(format!("key '{key}' must be true or false")),
    };
    let gzip = flag("gzip")?;
    let tls = flag("tls")?;
    let only = |keys: &[&str], takes: &str| -> Result<(), String> {
        for key in OUTPUT_KEYS {
            if !keys.contains(&key) && !["kind", "where"].contains(&key) {
                refuse(&kind, key, table.has(key), takes)?;
            }
        }
        Ok(())
    };
    // The TLS client's options, as the SPEC writes them.
    let mut tls_options = String::new();
    for key in OUTPUT_TLS_KEYS {
        if let Some(value) = table.text(key)? {
            tls_options.push_str(&format!(",{key}={value}"));
        }
    }
    if table.has("insecure_skip_verify") {
        tls_options.push_str(&format!(
            ",insecure_skip_verify={}",
            flag("insecure_skip_verify")?
        ));
    }
    let tls_keys = "ca, cert, key, server_name, insecure_skip_verify";
    let (spec, target_key) = match kind.as_str() {
        "file" => {
            only(&["path"], "path")?;
            let path = required("path", "file", table.text("path")?)?;
            (format!("file:{path}"), "path")
        }
        "stdout" | "null" => {
            only(&[], "no other key")?;
            (kind.clone(), "kind")
        }
        "tcp" => {
            only(
                &[
                    &["address", "tls"][..],
                    &OUTPUT_TLS_KEYS,
                    &["insecure_skip_verify"],
                ]
                .concat(),
                &format!("address, tls, {tls_keys}"),
            )?;
            let address = required("address", "tcp", table.text("address")?)?;
            let tls = if tls { ",tls" } else { "" };
            (format!("tcp:{address}{tls}{tls_options}"), "address")
        }
        "http" | "otlp" => {
            only(
                &[
                    &["url", "gzip", "headers"][..],
                    &OUTPUT_TLS_KEYS,
                    &["insecure_skip_verify"],
                ]
                .concat(),
                &format!("url, gzip, headers, {tls_keys}"),
            )?;
            let url = required("url", &kind, table.text("url")?)?;
            let gzip = if gzip { ",gzip" } else { "" };
            (format!("{kind}:{url}{gzip}{tls_options}"), "url")
        }
        "kafka" => {
            // `key` is the message key's field here (no TLS yet).
            only(
                &["brokers", "topic", "compression", "key", "acks"],
                "brokers, topic, compression, key, acks",
            )?;
            let brokers = match table.get("brokers") {
                Some(toml::Value::String(broker)) => vec![broker.clone()],
                Some(toml::Value::Array(list)) if !list.is_empty() => list
                    .iter()
                    .map(|broker| match broker {
                        toml::Value::String(broker) if !broker.contains(',') => Ok(broker.clone()),
                        _ => {
                            Err("key 'brokers' must be a list of \"HOST:PORT\" strings".to_string())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(
                        "key 'brokers' must be a list of \"HOST:PORT\" strings, e.g. brokers = [\"127.0.0.1:9092\"]"
                            .to_string(),
                    );
                }
                None => return Err("a kafka output needs key 'brokers'".to_string()),
            };
            let topic = required("topic", "kafka", table.text("topic")?)?;
            let mut spec = format!("kafka:{}/{topic}", brokers.join(","));
            for key in ["compression", "key", "acks"] {
                match table.get(key) {
                    Some(toml::Value::Integer(number)) if key == "acks" => {
                        spec.push_str(&format!(",acks={number}"));
                    }
                    _ => {
                        if let Some(value) = table.text(key)? {
                            spec.push_str(&format!(",{key}={value}"));
                        }
                    }
                }
            }
            (spec, "brokers")
        }
        other => {
            return Err(format!(
                "key 'kind': unknown output kind '{other}' (use file, stdout, null, tcp, http, otlp or kafka)"
            ));
        }
    };
    if matches!(kind.as_str(), "tcp" | "http" | "otlp" | "kafka") {
        crate::config::parse_output_spec(&spec)
            .map_err(|error| format!("key '{target_key}': {error}"))?;
    }
    Ok(spec)
}

/// An `[[output]]`'s `headers` table (`{ Authorization = "Bearer …" }`),
/// each name and value checked as `--output-header` checks them.
fn output_headers(table: &Table) -> Result<Vec<(String, String)>, String> {
    let Some(value) = table.get("headers") else {
        return Ok(Vec::new());
    };
    let toml::Value::Table(headers) = value else {
        return Err(
            "key 'headers' must be a table of names and values, e.g. headers = { Authorization = \"Bearer abc\" }"
                .to_string(),
        );
    };
    let mut pairs = Vec::new();
    for (name, value) in headers {
        let toml::Value::String(value) = value else {
            return Err(format!(
                "key 'headers': the value of {name} must be a string"
            ));
        };
        crate::config::parse_header(name, value)
            .map_err(|error| format!("key 'headers': {error}"))?;
        pairs.push((name.clone(), value.clone()));
    }
    Ok(pairs)
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

    /// `text` parsed with an environment of `pairs` only.
    fn parse_with(text: &str, pairs: &[(&str, &str)]) -> Result<ConfigFile, Vec<String>> {
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(set, _)| *set == name)
                .map(|(_, value)| OsString::from(value))
        };
        ConfigFile::parse_in(Path::new("test.toml"), text, run, &lookup)
    }

    #[test]
    fn variables_are_expanded_before_the_tables_become_specs() {
        let config = parse_with(
            "[[input]]\nkind = \"udp\"\naddress = \"${ADDR}\"\nsockets = 2\n\
             [[output]]\nkind = \"file\"\npath = \"${DIR:-/var/log/ringway}/out.ndjson\"\n\
             where = \"price > '$$5'\"\n",
            &[("ADDR", "0.0.0.0:514")],
        )
        .unwrap();
        assert_eq!(config.inputs, ["udp:0.0.0.0:514,sockets=2"]);
        assert_eq!(config.outputs, ["file:/var/log/ringway/out.ndjson"]);
        assert_eq!(config.output_where, [Some("price > '$5'".to_string())]);
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_the_file_the_key_and_the_variable() {
        let errors = parse_with(
            "data_dir = \"${STATE}\"\n[[output]]\nkind = \"otlp\"\nurl = \"${URL}\"\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        for (key, name) in [
            ("key 'data_dir'", "STATE"),
            ("[[output]] #1: key 'url'", "URL"),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|error| error.starts_with("config test.toml: ")
                        && error.contains(&format!("{key}: variable {name} is not set"))
                        && !error.contains('\n')),
                "{key}: {errors:?}"
            );
        }
    }

    #[test]
    fn an_error_about_a_value_from_the_environment_shows_its_reference() {
        let secret = "hunter2-secret";
        // A table's value, refused while the table becomes a SPEC.
        let errors = parse_with(
            "[[input]]\nkind = \"udp\"\naddress = \"${ADDR}\"\n",
            &[("ADDR", &format!("{secret},x"))],
        )
        .unwrap_err();
        assert!(
            errors.len() == 1 && errors[0].contains("'${ADDR}'") && !errors[0].contains(secret),
            "{errors:?}"
        );
        // A scalar's value, refused by its flag's parser.
        let command = crate::cli::Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let mut config = parse_with("max_line = \"${MAX}\"\n", &[("MAX", secret)]).unwrap();
        let errors = config.arguments(run, |_| false).unwrap_err();
        assert!(
            errors.len() == 1
                && errors[0].contains("key 'max_line'")
                && errors[0].contains("${MAX}")
                && !errors[0].contains(secret),
            "{errors:?}"
        );
        assert_eq!(
            config.redact(&format!("--max-line={secret}")),
            "--max-line=${MAX}"
        );
    }

    #[test]
    fn tables_become_the_specs_of_the_command_line_with_sql_and_where_beside_them() {
        let config = parse(
            r#"
            [[input]]
            kind = "file"
            path = "/var/log/app/*.log"
            format = "json"
            from = "end"
            sql = "SELECT a, b FROM logs WHERE c IN ('x', 'y')"
            [[input]]
            kind = "udp"
            address = "0.0.0.0:514"
            format = "syslog"
            rcvbuf = "32MiB"
            sockets = 2
            [[input]]
            kind = "otlp"
            address = "[::1]:4318"
            auth_token_file = "/etc/ringway/otlp-tokens"
            [[input]]
            kind = "stdin"
            format = "json"
            [[input]]
            kind = "file"
            path = "/var/log/pods/*/*/*.log"
            format = "cri"
            multiline = 'start:^\d{1,4}-'
            json = "merge"
            k8s = false
            [[input]]
            kind = "tcp"
            address = "0.0.0.0:6514"
            format = "syslog"
            tls = true
            cert = "/etc/ringway/tls/cert.pem"
            key = "/etc/ringway/tls/key.pem"
            client_ca = "/etc/ringway/tls/clients-ca.pem"
            [[output]]
            kind = "otlp"
            url = "http://collector:4318/v1/logs"
            gzip = true
            [[output]]
            kind = "tcp"
            address = "127.0.0.1:5170"
            [[output]]
            kind = "null"
            where = "level = 'error'"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.inputs,
            [
                "file:/var/log/app/*.log,format=json,from=end",
                "udp:0.0.0.0:514,format=syslog,rcvbuf=32MiB,sockets=2",
                "otlp:[::1]:4318,auth_token_file=/etc/ringway/otlp-tokens",
                "stdin,format=json",
                "file:/var/log/pods/*/*/*.log,format=cri,k8s=false,json=merge,multiline=start:^\\d{1,4}-",
                "tcp:0.0.0.0:6514,format=syslog,tls,cert=/etc/ringway/tls/cert.pem,key=/etc/ringway/tls/key.pem,client_ca=/etc/ringway/tls/clients-ca.pem",
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
        // A query and a condition have commas, which a SPEC cannot carry.
        assert_eq!(
            config.input_sql,
            [
                Some("SELECT a, b FROM logs WHERE c IN ('x', 'y')".to_string()),
                None,
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(
            config.output_where,
            [None, None, Some("level = 'error'".to_string())]
        );
    }

    #[test]
    fn where_is_a_string_key_of_output_tables_only() {
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
            ("[[input]]\nkind = \"file\"\npth = \"/x\"", "pth"),
            ("[[output]]\nkind = \"null\"\nsql = \"x\"", "sql"),
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
            (
                "[[input]]\nkind = \"udp\"\naddress = \"1.2.3.4:5\"\ntls = true",
                "tls",
            ),
            (
                "[[input]]\nkind = \"tcp\"\naddress = \"1.2.3.4:5\"\ntls = \"yes\"",
                "tls",
            ),
            (
                "[[input]]\nkind = \"file\"\npath = \"/x\"\ncert = \"/c.pem\"",
                "cert",
            ),
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
