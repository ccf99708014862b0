//! `ringway check`: [`CheckArgs::check`] prints every problem and the
//! effective settings as TOML, resolved by `effective_settings`.

use super::CheckArgs;
use super::validate::Problem;
use crate::config::{self, OutputKind};
use crate::config_file::ConfigFile;
use clap::ArgMatches;
use clap::parser::ValueSource;

/// Every scalar flag of `run` with its resolved value as TOML and where it
/// came from: sizes in bytes, durations in one spelling (`1m`, `250ms`),
/// CPU lists expanded, each with what was typed when that differs.
pub(super) fn effective_settings(
    run: &clap::Command,
    given: &ArgMatches,
    config: Option<&ConfigFile>,
) -> Vec<(String, Option<String>, String)> {
    let from_config: Vec<&str> = config
        .map(|config| config.keys().map(|(_, flag)| flag).collect())
        .unwrap_or_default();
    run.get_arguments()
        .filter(|arg| {
            // Not settings: routes and headers are printed with their
            // [[output]] tables.
            !crate::config_file::NOT_KEYS.contains(&arg.get_id().as_str())
        })
        .filter_map(|arg| {
            let flag = arg.get_long()?;
            let id = arg.get_id().as_str();
            let typed = given.get_raw(id).map(|values| {
                values
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            // A key that took a value from the environment is shown as
            // written (`"${MAX_LINE}"`), never resolved.
            if let Some(template) = config.and_then(|config| {
                let (key, _) = config.keys().find(|(_, long)| *long == flag)?;
                config.redactions.template(key)
            }) {
                return Some((
                    flag.replace('-', "_"),
                    Some(template.to_string()),
                    "config, from the environment".to_string(),
                ));
            }
            let source = if from_config.contains(&flag) {
                "config"
            } else {
                match given.value_source(id) {
                    Some(ValueSource::CommandLine) => "command line",
                    Some(ValueSource::DefaultValue) => "default",
                    Some(_) => "environment",
                    None => "unset",
                }
            };
            let value_name = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map(|name| name.as_str());
            let resolved = typed.as_deref().map(|typed| resolve(value_name, typed));
            let source = match (&typed, &resolved) {
                (Some(typed), Some(resolved))
                    if resolved != typed && *resolved != toml_value(typed) =>
                {
                    format!("{source}: {typed}")
                }
                _ => source.to_string(),
            };
            Some((flag.replace('-', "_"), resolved, source))
        })
        .collect()
}

/// A flag's value as TOML, resolved by the grammar its value name says.
fn resolve(value_name: Option<&str>, typed: &str) -> String {
    match value_name {
        Some("SIZE") => config::parse_size(typed).map(|bytes| bytes.to_string()),
        Some("DURATION") => config::parse_duration(typed)
            .map(|duration| toml_value(&config::format_duration(duration))),
        Some("LIST") => config::parse_cpu_list(typed).map(|cpus| {
            let cpus: Vec<String> = cpus.0.iter().map(usize::to_string).collect();
            format!("[{}]", cpus.join(", "))
        }),
        _ => Err(String::new()),
    }
    .unwrap_or_else(|_| toml_value(typed))
}

impl CheckArgs {
    /// Validates like `run` and prints the effective settings as TOML (the
    /// output is itself a valid config); returns the exit code.
    pub fn check(self) -> i32 {
        let config = self.run.config.clone();
        let redactions = self
            .run
            .loaded
            .as_ref()
            .map(|loaded| loaded.redactions.clone())
            .unwrap_or_default();
        let (parsed, problems) = self.run.validate();
        // Every problem, each on its own line: errors first, then what the
        // host lacks, then advice.
        for problem in &problems {
            if let Problem::Invalid(message) = problem {
                eprintln!("ringway: error: {message}");
            }
        }
        for problem in &problems {
            match problem {
                Problem::Invalid(_) => {}
                Problem::MissingOnHost(message) => {
                    eprintln!("ringway: warning: not on this host yet: {message}")
                }
                Problem::Advice(message) => eprintln!("ringway: warning: {message}"),
            }
        }
        let Some(parsed) = parsed else {
            return 2;
        };
        let mut out = String::new();
        let what = match &config {
            Some(path) => path.display().to_string(),
            None => "the command line".to_string(),
        };
        let warned = if problems.is_empty() {
            ""
        } else {
            " (with the warnings on stderr)"
        };
        out.push_str(&format!(
            "# ringway check: {what} is valid{warned}. Effective settings:\n"
        ));
        if parsed.embedded_default {
            out.push_str("# (no --config and no --input: the embedded default)\n");
        }
        if !redactions.is_empty() {
            out.push_str("# Values from the environment are shown as the ${VAR} they came from.\n");
        }
        for (key, value, source) in &self.effective {
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}  # {source}\n")),
                None => out.push_str(&format!("# {key}: not set\n")),
            }
        }
        // Every query and route as the engine reads it (normalised), one
        // comment line each; the tables below carry them as keys.
        let transform = transform_lines(&parsed.settings);
        if !transform.is_empty() {
            out.push_str("# The transform, normalised:\n");
            for line in &transform {
                out.push_str(&format!("#   {line}\n"));
            }
        }
        for (index, input) in parsed.settings.inputs.iter().enumerate() {
            out.push_str(&format!("\n[[input]]  # {}\n", input.name));
            let (kind, target, extra) = match &input.kind {
                config::InputKind::File { pattern } => {
                    ("file", ("path", pattern.clone()), String::new())
                }
                config::InputKind::Udp {
                    address,
                    rcvbuf_bytes,
                    sockets,
                } => (
                    "udp",
                    ("address", address.to_string()),
                    format!("rcvbuf = {rcvbuf_bytes}\nsockets = {sockets}\n"),
                ),
                config::InputKind::Tcp { address, tls } => (
                    "tcp",
                    ("address", address.to_string()),
                    tls_keys(tls.as_ref()),
                ),
                config::InputKind::Otlp {
                    address,
                    tls,
                    auth_token_file,
                } => {
                    let mut keys = tls_keys(tls.as_ref());
                    if let Some(path) = auth_token_file {
                        // The path only: tokens are never printed.
                        keys.push_str(&format!(
                            "auth_token_file = {}  # tokens not shown\n",
                            toml_value(&path.to_string_lossy())
                        ));
                    }
                    ("otlp", ("address", address.to_string()), keys)
                }
                config::InputKind::Stdin => ("stdin", ("", String::new()), String::new()),
            };
            out.push_str(&format!("kind = \"{kind}\"\n"));
            if !target.0.is_empty() {
                out.push_str(&format!("{} = {}\n", target.0, toml_value(&target.1)));
            }
            out.push_str(&format!(
                "format = \"{}\"\n",
                format!("{:?}", input.format).to_lowercase()
            ));
            if kind == "file" {
                out.push_str(&format!(
                    "from = \"{}\"\n",
                    format!("{:?}", input.from).to_lowercase()
                ));
                if input.k8s || input.format.is_container() {
                    out.push_str(&format!("k8s = {}\n", input.k8s));
                }
                if input.merge_json {
                    out.push_str("json = \"merge\"\n");
                }
                if let Some(multiline) = &input.multiline {
                    out.push_str(&format!(
                        "multiline = {}\n",
                        toml_value(&multiline.spelling())
                    ));
                }
            }
            out.push_str(&extra);
            if kind != "stdin" {
                out.push_str(&format!("source = {}\n", input.source));
            }
            if let Some(sql) = input.sql.as_deref().and_then(normalized_query) {
                out.push_str(&format!(
                    "sql = {}  # input {}\n",
                    toml_value(&sql),
                    index + 1
                ));
            }
        }
        for (index, output) in parsed.settings.outputs.iter().enumerate() {
            out.push_str(&format!("\n[[output]]  # {}\n", output.name));
            if let Some(route) = output.route.as_deref().and_then(normalized_condition) {
                out.push_str(&format!(
                    "where = {}  # output {}\n",
                    toml_value(&route),
                    index + 1
                ));
            }
            match &output.kind {
                OutputKind::File(path) => out.push_str(&format!(
                    "kind = \"file\"\npath = {}\n",
                    toml_value(&path.to_string_lossy())
                )),
                OutputKind::Stdout | OutputKind::Null => {
                    out.push_str(&format!("kind = \"{}\"\n", output.name));
                }
                OutputKind::Tcp { host, port, tls } => {
                    let address = if host.contains(':') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    };
                    out.push_str(&format!(
                        "kind = \"tcp\"\naddress = {}\n",
                        toml_value(&address)
                    ));
                    if tls.is_some() {
                        out.push_str("tls = true\n");
                    }
                }
                OutputKind::Http(target) | OutputKind::Otlp(target) => {
                    let kind = if matches!(output.kind, OutputKind::Otlp(_)) {
                        "otlp"
                    } else {
                        "http"
                    };
                    out.push_str(&format!(
                        "kind = \"{kind}\"\nurl = {}\ngzip = {}\n",
                        toml_value(&target.url),
                        target.gzip
                    ));
                }
                OutputKind::Kafka(target) => {
                    let brokers: Vec<String> = target
                        .brokers
                        .iter()
                        .map(|broker| toml_value(broker))
                        .collect();
                    out.push_str(&format!(
                        "kind = \"kafka\"\nbrokers = [{}]\ntopic = {}\ncompression = \"{}\"\nacks = \"{}\"\n",
                        brokers.join(", "),
                        toml_value(&target.topic),
                        target.compression.name(),
                        if target.acks_all { "all" } else { "1" },
                    ));
                    if let Some(key) = &target.key {
                        out.push_str(&format!("key = {}\n", toml_value(key)));
                    }
                    out.push_str(&kafka_tls_and_sasl_keys(target));
                }
            }
            if !matches!(output.kind, OutputKind::Kafka(_)) {
                out.push_str(&client_tls_keys(output.kind.tls()));
            }
            if !output.headers.is_empty() {
                // Names only: a header's value is often a secret.
                let headers: Vec<String> = output
                    .headers
                    .iter()
                    .map(|header| format!("{} = \"<redacted>\"", toml_key(&header.name)))
                    .collect();
                out.push_str(&format!(
                    "headers = {{ {} }}  # values not shown\n",
                    headers.join(", ")
                ));
            }
        }
        print!("{}", redactions.redact(&out));
        0
    }
}

/// A query as the engine reads it; `None` if it does not compile (which
/// validation already refused).
fn normalized_query(sql: &str) -> Option<String> {
    crate::transform::Query::compile(sql)
        .ok()
        .map(|query| query.normalized())
}

fn normalized_condition(expr: &str) -> Option<String> {
    crate::transform::Condition::compile(expr)
        .ok()
        .map(|condition| condition.normalized())
}

/// `input 1 (file:/x.log): sql: SELECT …` and `output 2 (file:/y): where:
/// …` for every input with a query and every output with a route.
fn transform_lines(settings: &config::Settings) -> Vec<String> {
    let mut lines = Vec::new();
    for (index, input) in settings.inputs.iter().enumerate() {
        if let Some(sql) = input.sql.as_deref().and_then(normalized_query) {
            lines.push(format!("input {} ({}): sql: {sql}", index + 1, input.name));
        }
    }
    for (index, output) in settings.outputs.iter().enumerate() {
        if let Some(route) = output.route.as_deref().and_then(normalized_condition) {
            lines.push(format!(
                "output {} ({}): where: {route}",
                index + 1,
                output.name
            ));
        }
    }
    lines
}

/// A network input's TLS keys as an `[[input]]` table writes them:
/// `tls`, `cert`, `key` and, for mutual TLS, `client_ca` (paths only: no
/// key material is ever printed).
fn tls_keys(tls: Option<&config::TlsFiles>) -> String {
    let Some(files) = tls else {
        return String::new();
    };
    let path = |path: &std::path::Path| toml_value(&path.to_string_lossy());
    let mut keys = format!(
        "tls = true\ncert = {}\nkey = {}\n",
        path(&files.cert),
        path(&files.key)
    );
    if let Some(client_ca) = &files.client_ca {
        keys.push_str(&format!("client_ca = {}\n", path(client_ca)));
    }
    keys
}

/// A TLS output's client keys as an `[[output]]` table writes them (paths
/// only: no key material is ever printed).
fn client_tls_keys(tls: Option<&config::TlsClientOptions>) -> String {
    let Some(options) = tls else {
        return String::new();
    };
    let path = |path: &std::path::Path| toml_value(&path.to_string_lossy());
    let mut keys = String::new();
    if let Some(ca) = &options.ca {
        keys.push_str(&format!("ca = {}\n", path(ca)));
    }
    if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
        keys.push_str(&format!("cert = {}\nkey = {}\n", path(cert), path(key)));
    }
    if let Some(name) = &options.server_name {
        keys.push_str(&format!("server_name = {}\n", toml_value(name)));
    }
    if options.insecure_skip_verify {
        keys.push_str("insecure_skip_verify = true  # the server's certificate is not checked\n");
    }
    keys
}

/// A kafka output's TLS keys (its client key is `tls_key`: `key` is the
/// message key's field) and SASL login, the password not shown.
fn kafka_tls_and_sasl_keys(target: &config::KafkaTarget) -> String {
    let mut keys = String::new();
    if let Some(options) = &target.tls {
        let path = |path: &std::path::Path| toml_value(&path.to_string_lossy());
        keys.push_str("tls = true\n");
        if let Some(ca) = &options.ca {
            keys.push_str(&format!("ca = {}\n", path(ca)));
        }
        if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
            keys.push_str(&format!("cert = {}\ntls_key = {}\n", path(cert), path(key)));
        }
        if options.insecure_skip_verify {
            keys.push_str(
                "insecure_skip_verify = true  # the brokers' certificates are not checked\n",
            );
        }
    }
    if let Some(sasl) = &target.sasl {
        keys.push_str(&format!(
            "sasl = \"{}\"\nusername = {}\npassword = \"<redacted>\"  # not shown\n",
            sasl.mechanism.spelling(),
            toml_value(&sasl.username)
        ));
    }
    keys
}

/// A header name as a TOML key: bare when TOML allows it, else quoted.
fn toml_key(name: &str) -> String {
    if name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        name.to_string()
    } else {
        toml::Value::String(name.to_string()).to_string()
    }
}

/// A flag's text as a TOML value: numbers and booleans bare, the rest quoted.
fn toml_value(text: &str) -> String {
    if text == "true"
        || text == "false"
        || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.len() < 19)
    {
        return text.to_string();
    }
    toml::Value::String(text.to_string()).to_string()
}
