//! The output SPEC grammar of DESIGN §7 ([`parse_output_spec`]):
//! `file:PATH`, `stdout`, `null`, `tcp:HOST:PORT[,tls]`, `http://…`,
//! `https://…` (or `http:URL`) and `otlp:URL`, with their options after
//! the first comma (`,gzip`; the TLS client's `ca=`, `cert=`, `key=`,
//! `server_name=`, `insecure_skip_verify=`), and the request headers of
//! HTTP and OTLP outputs ([`parse_header`]).

use super::{
    Header, HttpTarget, KafkaCompression, KafkaSasl, KafkaSaslMechanism, KafkaTarget, OutputKind,
    OutputSpec, TlsClientOptions,
};
use std::path::PathBuf;

const KINDS: &str = "file:PATH, stdout, null, tcp:HOST:PORT[,tls], http(s)://HOST[:PORT]/PATH, otlp:http(s)://HOST:PORT/v1/logs or kafka:HOST:PORT[,HOST:PORT...]/TOPIC";

/// Headers ringway writes itself on every request: one given again would
/// contradict it (a second Content-Length is request smuggling).
const RESERVED_HEADERS: [&str; 6] = [
    "Host",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Transfer-Encoding",
    "Connection",
];

/// Parses an output SPEC. Options follow the target after commas (a comma
/// inside a URL is written `%2C`).
pub(crate) fn parse_output_spec(spec: &str) -> Result<OutputSpec, String> {
    let kind = match spec {
        "stdout" => OutputKind::Stdout,
        "null" => OutputKind::Null,
        _ if spec.starts_with("http://") || spec.starts_with("https://") => {
            OutputKind::Http(parse_http_target(spec, spec)?)
        }
        _ => match spec.split_once(':') {
            Some(("file", path)) if !path.is_empty() => OutputKind::File(PathBuf::from(path)),
            Some(("file", _)) => return Err(format!("output '{spec}': the path is empty")),
            Some(("http", url)) => OutputKind::Http(parse_http_target(spec, url)?),
            Some(("otlp", url)) => OutputKind::Otlp(parse_http_target(spec, url)?),
            Some(("kafka", target)) => {
                OutputKind::Kafka(parse_kafka_target(&redact_password(spec), target)?)
            }
            Some(("tcp", rest)) => {
                let mut parts = rest.split(',');
                let target = parts.next().unwrap_or_default();
                let (host, port) = parse_host_port(target).map_err(|why| {
                    format!("output '{spec}': '{target}': {why} (e.g. tcp:127.0.0.1:5170 or tcp:[::1]:5170)")
                })?;
                let options = Options::parse(
                    spec,
                    parts,
                    true,
                    "tcp outputs take tls, ca, cert, key, server_name and insecure_skip_verify",
                )?;
                if options.gzip {
                    return Err(format!(
                        "output '{spec}': gzip is for http and otlp outputs (a tcp output sends NDJSON lines)"
                    ));
                }
                let tls = options.tls(spec, options.tls, "tcp:HOST:PORT,tls")?;
                OutputKind::Tcp { host, port, tls }
            }
            _ => return Err(format!("unknown output '{spec}' (use {KINDS})")),
        },
    };
    // The name is what logs, metrics and `check` show: never a password.
    let name = match kind {
        OutputKind::Kafka(_) => redact_password(spec),
        _ => spec.to_string(),
    };
    Ok(OutputSpec {
        name,
        kind,
        route: None,
        headers: Vec::new(),
    })
}

/// The options of an output SPEC, as given.
#[derive(Default)]
struct Options {
    gzip: bool,
    /// `,tls` (tcp outputs; `https://` says it for URLs).
    tls: bool,
    client: TlsClientOptions,
    /// Whether any TLS client option was given.
    any_tls_option: bool,
}

impl Options {
    /// `tcp`: the SPEC is a tcp output's, which takes `,tls`.
    fn parse<'a>(
        spec: &str,
        parts: impl Iterator<Item = &'a str>,
        tcp: bool,
        takes: &str,
    ) -> Result<Options, String> {
        let mut options = Options::default();
        for option in parts {
            let context = |error: String| format!("output '{spec}': {error}");
            match option.split_once('=') {
                None if option == "gzip" => options.gzip = true,
                None if option == "tls" && tcp => options.tls = true,
                Some((key @ ("ca" | "cert" | "key" | "server_name"), "")) => {
                    return Err(context(format!("{key}= needs a value")));
                }
                Some(("ca", path)) => options.client.ca = Some(PathBuf::from(path)),
                Some(("cert", path)) => options.client.cert = Some(PathBuf::from(path)),
                Some(("key", path)) => options.client.key = Some(PathBuf::from(path)),
                Some(("server_name", name)) => {
                    rustls::pki_types::ServerName::try_from(name).map_err(|_| {
                        context(format!(
                            "server_name={name} is not a DNS name or an IP address"
                        ))
                    })?;
                    options.client.server_name = Some(name.to_string());
                }
                Some(("insecure_skip_verify", value)) => {
                    options.client.insecure_skip_verify = match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(context(format!(
                                "insecure_skip_verify must be true or false, not '{value}'"
                            )));
                        }
                    };
                }
                Some((key, _)) => return Err(context(format!("unknown option '{key}' ({takes})"))),
                None => {
                    return Err(context(format!(
                        "unknown option '{option}' ({takes}; a comma in a URL is written %2C)"
                    )));
                }
            }
            if !matches!(option, "gzip" | "tls") {
                options.any_tls_option = true;
            }
        }
        Ok(options)
    }

    /// The TLS client options when `on` (the output speaks TLS); a TLS
    /// option without TLS is refused: the output would send plaintext
    /// while its SPEC looks like TLS.
    fn tls(&self, spec: &str, on: bool, example: &str) -> Result<Option<TlsClientOptions>, String> {
        if !on {
            if self.any_tls_option {
                return Err(format!(
                    "output '{spec}': ca=, cert=, key=, server_name= and insecure_skip_verify= need TLS ({example})"
                ));
            }
            return Ok(None);
        }
        let client = &self.client;
        if client.cert.is_some() != client.key.is_some() {
            return Err(format!(
                "output '{spec}': a client certificate needs both cert=FILE and key=FILE"
            ));
        }
        if client.insecure_skip_verify && client.ca.is_some() {
            return Err(format!(
                "output '{spec}': insecure_skip_verify=true checks no certificate, so ca= would be ignored (give one or the other)"
            ));
        }
        Ok(Some(client.clone()))
    }
}

/// `HOST:PORT` with a non-empty host (`[v6]:PORT` for IPv6) and a port
/// from 1 to 65535; the error says what is wrong (without the text).
fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let not = || "it is not HOST:PORT".to_string();
    let (host, port) = text.rsplit_once(':').ok_or_else(not)?;
    if port.is_empty() || !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(not());
    }
    match port.parse::<u16>() {
        Ok(0) => return Err("port 0 cannot be connected to (use 1 to 65535)".to_string()),
        Err(_) => return Err(format!("port {port} is out of range (1 to 65535)")),
        Ok(_) => {}
    }
    let port: u16 = port.parse().expect("checked above");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .and_then(|v6| v6.parse::<std::net::Ipv6Addr>().ok())
            .ok_or_else(|| format!("'{host}' is not an IPv6 address"))?
            .to_string(),
        None if !host.is_empty() && !host.contains([':', '/', '[', ']', ' ', '@']) => {
            host.to_string()
        }
        None => return Err(not()),
    };
    Ok((host, port))
}

/// `http(s)://HOST[:PORT][/PATH][,option]...`: `,gzip`, and for
/// `https://` the TLS client's options.
fn parse_http_target(spec: &str, url: &str) -> Result<HttpTarget, String> {
    let mut parts = url.split(',');
    let url = parts.next().unwrap_or_default();
    let (rest, https) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else {
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        return Err(format!(
            "output '{spec}': '{scheme}' is not http:// or https:// (e.g. otlp:http://127.0.0.1:4318/v1/logs)"
        ));
    };
    let options = Options::parse(
        spec,
        parts,
        false,
        "http and otlp outputs take gzip, and with https:// ca, cert, key, server_name and insecure_skip_verify",
    )?;
    let tls = options.tls(spec, https, "https://…")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let with_port;
    let authority = if authority.ends_with(']') || !authority.contains(':') {
        with_port = format!("{authority}:{}", if https { 443 } else { 80 });
        &with_port
    } else {
        authority
    };
    let (host, port) = parse_host_port(authority).map_err(|why| {
        let why = why.replace("HOST:PORT", "HOST[:PORT]");
        format!("output '{spec}': '{authority}': {why} (e.g. http://127.0.0.1:4318/v1/logs)")
    })?;
    if path.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
        return Err(format!(
            "output '{spec}': the path has spaces or control characters"
        ));
    }
    Ok(HttpTarget {
        url: url.to_string(),
        host,
        port,
        path: path.to_string(),
        gzip: options.gzip,
        tls,
    })
}

/// `BROKER[,BROKER...]/TOPIC[,option]...` of a `kafka:` output: each
/// broker `HOST:PORT` (`[v6]:PORT`), a topic of Kafka's legal characters
/// (letters, digits, `.`, `_`, `-`; at most 249), then `compression=`
/// (`none|gzip|lz4|zstd`, default lz4), `key=FIELD`, `acks=all|1`; TLS
/// (`tls`, `ca=`, `cert=`, `tls_key=`, `insecure_skip_verify=`) and SASL
/// (`sasl=plain|scram-sha-256|scram-sha-512`, `username=`, `password=`,
/// where `%2C` is a comma and `%25` a percent sign). `spec` is the SPEC as
/// errors show it (its password redacted).
fn parse_kafka_target(spec: &str, target: &str) -> Result<KafkaTarget, String> {
    let example = "e.g. kafka:127.0.0.1:9092/logs or kafka:k1:9092,k2:9092/logs,compression=zstd";
    let Some((brokers, rest)) = target.split_once('/') else {
        return Err(format!(
            "output '{spec}': no topic: write the brokers, then /TOPIC ({example})"
        ));
    };
    let brokers = brokers
        .split(',')
        .map(|broker| {
            parse_host_port(broker)
                .map(|_| broker.to_string())
                .map_err(|why| format!("output '{spec}': broker '{broker}': {why} ({example})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut parts = rest.split(',');
    let topic = parts.next().unwrap_or_default();
    if topic.is_empty()
        || topic.len() > 249
        || matches!(topic, "." | "..")
        || !topic
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
    {
        return Err(format!(
            "output '{spec}': topic '{topic}' is not a Kafka topic name (1 to 249 of letters, digits, '.', '_' and '-')"
        ));
    }
    let mut target = KafkaTarget {
        brokers,
        topic: topic.to_string(),
        compression: KafkaCompression::Lz4,
        key: None,
        acks_all: true,
        tls: None,
        sasl: None,
    };
    let takes = "kafka outputs take compression, key, acks, tls, ca, cert, tls_key, insecure_skip_verify, sasl, username and password";
    let mut tls = false;
    let mut client = TlsClientOptions::default();
    let mut any_tls_option = false;
    let mut mechanism = None;
    let mut username = None;
    let mut password = None;
    for option in parts {
        let context = |error: String| format!("output '{spec}': {error}");
        match option.split_once('=') {
            Some(("compression", codec)) => {
                target.compression = match codec {
                    "none" => KafkaCompression::None,
                    "gzip" => KafkaCompression::Gzip,
                    "lz4" => KafkaCompression::Lz4,
                    "zstd" => KafkaCompression::Zstd,
                    _ => {
                        return Err(context(format!(
                            "compression must be none, gzip, lz4 or zstd, not '{codec}'"
                        )));
                    }
                }
            }
            Some(("key", "")) => return Err(context("key= needs a field name".to_string())),
            Some(("key", field)) => target.key = Some(field.to_string()),
            Some(("acks", "all")) => target.acks_all = true,
            Some(("acks", "1")) => target.acks_all = false,
            Some(("acks", other)) => {
                return Err(context(format!("acks must be all or 1, not '{other}'")));
            }
            Some((key @ ("ca" | "cert" | "tls_key" | "sasl" | "username" | "password"), "")) => {
                return Err(context(format!("{key}= needs a value")));
            }
            Some(("ca", path)) => client.ca = Some(PathBuf::from(path)),
            Some(("cert", path)) => client.cert = Some(PathBuf::from(path)),
            Some(("tls_key", path)) => client.key = Some(PathBuf::from(path)),
            Some(("insecure_skip_verify", value)) => {
                client.insecure_skip_verify = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(context(format!(
                            "insecure_skip_verify must be true or false, not '{value}'"
                        )));
                    }
                };
            }
            Some(("server_name", _)) => {
                return Err(context(
                    "kafka outputs take no server_name= (librdkafka checks each broker's certificate for the name the broker is known by)"
                        .to_string(),
                ));
            }
            Some(("sasl", name)) => {
                mechanism = Some(match name.to_ascii_lowercase().as_str() {
                    "plain" => KafkaSaslMechanism::Plain,
                    "scram-sha-256" => KafkaSaslMechanism::ScramSha256,
                    "scram-sha-512" => KafkaSaslMechanism::ScramSha512,
                    _ => {
                        return Err(context(format!(
                            "sasl must be plain, scram-sha-256 or scram-sha-512, not '{name}'"
                        )));
                    }
                });
            }
            Some(("username", name)) => username = Some(percent_decoded(name)),
            Some(("password", secret)) => password = Some(percent_decoded(secret)),
            Some((key, _)) => return Err(context(format!("unknown option '{key}' ({takes})"))),
            None if option == "tls" => tls = true,
            None => return Err(context(format!("unknown option '{option}' ({takes})"))),
        }
        if matches!(
            option.split_once('='),
            Some(("ca" | "cert" | "tls_key" | "insecure_skip_verify", _))
        ) {
            any_tls_option = true;
        }
    }
    if any_tls_option && !tls {
        return Err(format!(
            "output '{spec}': ca=, cert=, tls_key= and insecure_skip_verify= need tls (e.g. kafka:k1:9093/logs,tls,ca=/etc/ringway/ca.pem)"
        ));
    }
    if client.cert.is_some() != client.key.is_some() {
        return Err(format!(
            "output '{spec}': a client certificate needs both cert=FILE and tls_key=FILE (key= is the message key's field)"
        ));
    }
    if client.insecure_skip_verify && client.ca.is_some() {
        return Err(format!(
            "output '{spec}': insecure_skip_verify=true checks no certificate, so ca= would be ignored (give one or the other)"
        ));
    }
    if tls {
        target.tls = Some(client);
    }
    target.sasl = match (mechanism, username, password) {
        (Some(mechanism), Some(username), Some(password)) => Some(KafkaSasl {
            mechanism,
            username,
            password,
        }),
        (Some(mechanism), _, _) => {
            return Err(format!(
                "output '{spec}': sasl={} needs username= and password=",
                mechanism.spelling()
            ));
        }
        (None, None, None) => None,
        (None, _, _) => {
            return Err(format!(
                "output '{spec}': username= and password= need sasl=plain, sasl=scram-sha-256 or sasl=scram-sha-512"
            ));
        }
    };
    Ok(target)
}

/// A `kafka:` SPEC with the value of its `password=` option shown as
/// `<redacted>` (a SPEC's options hold no raw comma: `%2C`).
pub(crate) fn redact_password(spec: &str) -> String {
    spec.split(',')
        .map(|part| {
            if part.starts_with("password=") {
                "password=<redacted>"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A SASL option's value: `%2C` is a comma (the SPEC's options are split
/// at commas) and `%25` a percent sign; any other `%` is itself.
fn percent_decoded(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        decoded.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or("");
        if escape.eq_ignore_ascii_case("%2C") {
            decoded.push(',');
            rest = &rest[at + 3..];
        } else if escape == "%25" {
            decoded.push('%');
            rest = &rest[at + 3..];
        } else {
            decoded.push('%');
            rest = &rest[at + 1..];
        }
    }
    decoded.push_str(rest);
    decoded
}

/// The inverse of [`percent_decoded`], for SPECs built from a config file.
pub(crate) fn percent_encoded(text: &str) -> String {
    text.replace('%', "%25").replace(',', "%2C")
}

/// Checks a request header, `Name: Value` (surrounding spaces of the value
/// dropped): the name an HTTP token (RFC 9110) and none of
/// [`RESERVED_HEADERS`], the value without CR, LF or other control
/// characters (tab excepted), so no header can smuggle another in.
pub(crate) fn parse_header(name: &str, value: &str) -> Result<Header, String> {
    let is_token_byte =
        |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!(
            "header name {name:?} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    if let Some(reserved) = RESERVED_HEADERS
        .iter()
        .find(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "header {reserved} is set by ringway itself (it cannot be given: {})",
            RESERVED_HEADERS.join(", ")
        ));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|byte| byte == b'\r' || byte == b'\n') {
        return Err(format!(
            "header {name}: the value has a CR or LF (a header is one line)"
        ));
    }
    if value
        .bytes()
        .any(|byte| (byte < b' ' && byte != b'\t') || byte == 0x7f)
    {
        return Err(format!("header {name}: the value has a control character"));
    }
    Ok(Header {
        name: name.to_string(),
        value: value.to_string(),
    })
}
