//! The input SPEC grammar of DESIGN §7: `KIND:TARGET[,key=value]...`
//! ([`parse_input_spec`]) and `stdin[,format=…]`, with the TLS options of
//! the `tcp` and `otlp` inputs (`,tls`, `cert=`, `key=`, `client_ca=`) put
//! together with their global flags ([`input_tls`]).

use super::{
    InputDefaults, InputKind, InputSpec, MAX_UDP_SOCKETS, MultilineRule, TlsFiles, parse_format,
    parse_from, parse_listen_address, parse_size,
};
use std::path::PathBuf;

/// Parses `KIND:TARGET[,key=value]...`. The global flags in `defaults` are
/// what per-input keys override.
pub(crate) fn parse_input_spec(spec: &str, defaults: &InputDefaults) -> Result<InputSpec, String> {
    if spec == "stdin" || spec.starts_with("stdin,") {
        return parse_stdin_spec(spec, defaults);
    }
    let Some((kind, rest)) = spec.split_once(':') else {
        return Err(format!(
            "input '{spec}' is not KIND:TARGET (e.g. file:/var/log/app/*.log or udp:127.0.0.1:5514)"
        ));
    };
    // `multiline=start:REGEX` comes last: the regex is the rest of the
    // SPEC, commas included.
    let (rest, multiline) = match rest.split_once(",multiline=") {
        Some((rest, rule)) => (rest, Some(rule)),
        None => (rest, None),
    };
    let mut parts = rest.split(',');
    let target = parts.next().unwrap_or_default();
    if target.is_empty() {
        return Err(format!("input '{spec}': the target is empty"));
    }
    let mut kind = match kind {
        "file" if STDIN_PATHS.contains(&target) => {
            return Err(format!(
                "input '{spec}': standard input is read with --input stdin[,format=…] (file inputs tail files by path)"
            ));
        }
        "file" => InputKind::File {
            pattern: target.to_string(),
        },
        "stdin" => {
            return Err(format!(
                "input '{spec}': stdin takes no target (use stdin or stdin,format=json)"
            ));
        }
        "udp" => InputKind::Udp {
            address: parse_listen_address(target, 5514)
                .map_err(|error| format!("input '{spec}': {error}"))?,
            rcvbuf_bytes: defaults.udp_rcvbuf_bytes,
            sockets: defaults.udp_sockets,
        },
        "otlp" => InputKind::Otlp {
            address: parse_listen_address(target, 4318)
                .map_err(|error| format!("input '{spec}': {error}"))?,
            tls: None,
            auth_token_file: None,
        },
        "tcp" => InputKind::Tcp {
            address: parse_listen_address(target, 6514)
                .map_err(|error| format!("input '{spec}': {error}"))?,
            tls: None,
        },
        _ => {
            return Err(format!(
                "input '{spec}': unknown kind '{kind}' (use file:PATH_OR_GLOB, udp:ADDRESS:PORT, tcp:ADDRESS:PORT, otlp:ADDRESS:PORT or stdin)"
            ));
        }
    };
    let mut format = defaults.format;
    let mut from = defaults.from;
    let mut k8s = None;
    let mut merge_json = None;
    let mut source = false;
    // A TLS input's `,tls` and files, put together after the loop.
    let mut tls = TlsOptions::default();
    let takes_tls = matches!(kind, InputKind::Tcp { .. } | InputKind::Otlp { .. });
    for option in parts {
        if option == "tls" && takes_tls {
            tls.on = true;
            continue;
        }
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!(
                "input '{spec}': option '{option}' is not key=value"
            ));
        };
        let context = |error: String| format!("input '{spec}': {error}");
        match (key, &mut kind) {
            ("format", _) => format = parse_format(value).map_err(context)?,
            ("from", InputKind::File { .. }) => from = parse_from(value).map_err(context)?,
            ("k8s", InputKind::File { .. }) => {
                k8s = Some(parse_bool(key, value).map_err(context)?);
            }
            ("source", _) => source = parse_bool(key, value).map_err(context)?,
            ("json", InputKind::File { .. }) => {
                merge_json = Some(match value {
                    "merge" => true,
                    "body" => false,
                    _ => {
                        return Err(context(format!(
                            "json must be merge or body, not '{value}'"
                        )));
                    }
                });
            }
            ("rcvbuf", InputKind::Udp { rcvbuf_bytes, .. }) => {
                *rcvbuf_bytes = parse_size(value).map_err(context)?;
            }
            ("sockets", InputKind::Udp { sockets, .. }) => {
                *sockets = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_UDP_SOCKETS).contains(n))
                    .ok_or_else(|| {
                        context(format!("sockets must be between 1 and {MAX_UDP_SOCKETS}"))
                    })?;
            }
            ("cert" | "key" | "client_ca", _) if takes_tls && value.is_empty() => {
                return Err(context(format!("{key}= needs a file")));
            }
            ("cert", _) if takes_tls => tls.cert = Some(PathBuf::from(value)),
            ("key", _) if takes_tls => tls.key = Some(PathBuf::from(value)),
            ("client_ca", _) if takes_tls => tls.client_ca = Some(PathBuf::from(value)),
            ("auth_token_file", InputKind::Otlp { .. }) if value.is_empty() => {
                return Err(context("auth_token_file= needs a file".to_string()));
            }
            (
                "auth_token_file",
                InputKind::Otlp {
                    auth_token_file, ..
                },
            ) => {
                *auth_token_file = Some(PathBuf::from(value));
            }
            (_, kind) => {
                let takes = kind.options();
                return Err(context(format!("unknown option '{key}' ({takes})")));
            }
        }
    }
    if let InputKind::Tcp { tls: files, .. } | InputKind::Otlp { tls: files, .. } = &mut kind {
        *files = input_tls(spec, tls, defaults)?;
    }
    if matches!(kind, InputKind::Otlp { .. }) {
        // OTLP requests are decoded into NDJSON by the receiver itself.
        format = super::Format::Raw;
    }
    let multiline = match multiline {
        None => None,
        Some(_) if !matches!(kind, InputKind::File { .. }) => {
            return Err(format!(
                "input '{spec}': multiline= joins the lines of file inputs"
            ));
        }
        Some(_) if !matches!(format, super::Format::Raw) && !format.is_container() => {
            return Err(format!(
                "input '{spec}': multiline= joins lines of format raw, cri, docker or auto"
            ));
        }
        Some(rule) if !rule.starts_with("start:") && rule.contains(',') => {
            return Err(format!(
                "input '{spec}': multiline= comes last in a SPEC (its value is the rest of it, for a regex's commas)"
            ));
        }
        Some(rule) => {
            Some(MultilineRule::parse(rule).map_err(|error| format!("input '{spec}': {error}"))?)
        }
    };
    if k8s == Some(true) && !format.is_container() {
        return Err(format!(
            "input '{spec}': k8s=true adds fields to format=cri, docker or auto records"
        ));
    }
    if format.is_container() && !matches!(kind, InputKind::File { .. }) {
        return Err(format!(
            "input '{spec}': format cri, docker and auto read log files (use them on file inputs)"
        ));
    }
    if merge_json.is_some() && !format.is_container() {
        return Err(format!(
            "input '{spec}': json= says where a container message goes (format=cri, docker or auto)"
        ));
    }
    Ok(InputSpec {
        name: spec.to_string(),
        kind,
        format,
        from,
        k8s: k8s.unwrap_or(format == super::Format::Cri),
        multiline,
        merge_json: merge_json.unwrap_or(false),
        source,
        sql: None,
    })
}

/// A network input's TLS options as its SPEC gives them.
#[derive(Default)]
struct TlsOptions {
    /// `,tls`.
    on: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

/// The TLS files of a network input: `None` without `,tls`; with it, its
/// `cert=`/`key=` or else `--tls-cert`/`--tls-key`, both required, and
/// its `client_ca=` or else `--tls-client-ca` (mutual TLS), optional.
/// A file option without `,tls` is refused: the input would take
/// plaintext while its SPEC looks like TLS.
fn input_tls(
    spec: &str,
    options: TlsOptions,
    defaults: &InputDefaults,
) -> Result<Option<TlsFiles>, String> {
    if !options.on {
        if options.cert.is_some() || options.key.is_some() || options.client_ca.is_some() {
            return Err(format!(
                "input '{spec}': cert=, key= and client_ca= need ,tls (e.g. tcp:0.0.0.0:6514,tls,cert=/etc/ringway/cert.pem,key=/etc/ringway/key.pem)"
            ));
        }
        return Ok(None);
    }
    let cert = options.cert.or_else(|| defaults.tls_cert.clone());
    let key = options.key.or_else(|| defaults.tls_key.clone());
    let client_ca = options.client_ca.or_else(|| defaults.tls_client_ca.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert,
            key,
            client_ca,
        })),
        (cert, _) => {
            let missing = if cert.is_none() {
                "a certificate (cert=FILE or --tls-cert FILE)"
            } else {
                "a private key (key=FILE or --tls-key FILE)"
            };
            Err(format!("input '{spec}': ,tls needs {missing}"))
        }
    }
}

/// Paths that name the process's own standard input: a file input on one
/// would find a pipe, not a file to tail.
const STDIN_PATHS: [&str; 4] = ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-"];

/// Parses `stdin[,format=…]`.
fn parse_stdin_spec(spec: &str, defaults: &InputDefaults) -> Result<InputSpec, String> {
    let mut format = defaults.format;
    for option in spec.split(',').skip(1) {
        let context = |error: String| format!("input '{spec}': {error}");
        match option.split_once('=') {
            Some(("format", value)) => format = parse_format(value).map_err(context)?,
            Some((key, _)) => {
                return Err(context(format!(
                    "unknown option '{key}' (stdin takes format only; it has no checkpoints and no from)"
                )));
            }
            None => return Err(context(format!("option '{option}' is not key=value"))),
        }
    }
    if format.is_container() {
        return Err(format!(
            "input '{spec}': format cri, docker and auto read log files (use them on file inputs)"
        ));
    }
    Ok(InputSpec {
        name: spec.to_string(),
        kind: InputKind::Stdin,
        format,
        from: defaults.from,
        k8s: false,
        multiline: None,
        merge_json: false,
        source: false,
        sql: None,
    })
}

/// `KEY=true|false` (`k8s`, `source`).
fn parse_bool(key: &str, text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} must be true or false, not '{text}'")),
    }
}
