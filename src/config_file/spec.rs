//! The SPEC text each `[[input]]` and `[[output]]` table of the config
//! file stands for, each key checked by itself so that an error names it.

use super::{INPUT_KEYS, OUTPUT_KEYS, OUTPUT_TLS_KEYS, STDIN_KEYS, Table};

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
pub(super) fn input_spec(table: &Table) -> Result<String, String> {
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
pub(super) fn output_spec(table: &Table) -> Result<String, String> {
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
            // `key` is the message key's field here; the TLS client key
            // is `tls_key`.
            only(
                &[
                    "brokers",
                    "topic",
                    "compression",
                    "key",
                    "acks",
                    "tls",
                    "ca",
                    "cert",
                    "tls_key",
                    "insecure_skip_verify",
                    "sasl",
                    "username",
                    "password",
                ],
                "brokers, topic, compression, key, acks, tls, ca, cert, tls_key, insecure_skip_verify, sasl, username, password",
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
            for key in [
                "compression",
                "key",
                "acks",
                "ca",
                "cert",
                "tls_key",
                "sasl",
            ] {
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
            if tls {
                spec.push_str(",tls");
            }
            if table.has("insecure_skip_verify") {
                spec.push_str(&format!(
                    ",insecure_skip_verify={}",
                    flag("insecure_skip_verify")?
                ));
            }
            // A comma or percent sign in a login is kept as the SPEC
            // writes it (%2C, %25).
            for key in ["username", "password"] {
                if let Some(value) = table.free_text(key)? {
                    spec.push_str(&format!(
                        ",{key}={}",
                        crate::config::percent_encoded(&value)
                    ));
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
pub(super) fn output_headers(table: &Table) -> Result<Vec<(String, String)>, String> {
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
