//! Settings: the validated form of the command line.
//!
//! `cli` turns flags into a [`Settings`]; every stage reads only `Settings`.
//! This module also owns the grammar of DESIGN §7 that does not depend on the
//! flag parser: input and output SPECs, sizes, durations and CPU lists.

mod input_spec;
mod output_spec;

pub(crate) use input_spec::parse_input_spec;
pub(crate) use output_spec::{parse_header, parse_output_spec, percent_encoded};
use std::path::PathBuf;
use std::time::Duration;

/// How the CPU worker frames and checks the lines of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Raw,
    Json,
    /// RFC 3164 / RFC 5424 messages, converted to one JSON object each.
    Syslog,
    /// Kubernetes CRI container log lines (file inputs), partial lines
    /// joined, converted to one JSON object per message.
    Cri,
    /// Docker json-file lines (file inputs), split lines joined, converted
    /// like `Cri`.
    Docker,
    /// Decided per line (file inputs): CRI, else Docker json-file (both
    /// as above), else a JSON object or array (passed on as it is), else
    /// a plain line (`{"body":…}`).
    Auto,
}

impl Format {
    /// Whether lines are container log lines joined per file and stream
    /// (`cpu_worker::container`), `auto` included.
    pub fn is_container(self) -> bool {
        matches!(self, Format::Cri | Format::Docker | Format::Auto)
    }
}

/// `multiline=` as written: which lines start a record
/// (`scan::multiline` compiles it at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MultilineRule {
    /// `start:REGEX`.
    Start(String),
    Java,
    Python,
    Go,
}

impl MultilineRule {
    /// Parses `start:REGEX` (the regex compiled to check it) or a preset.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "java" => Ok(Self::Java),
            "python" => Ok(Self::Python),
            "go" => Ok(Self::Go),
            _ => match text.strip_prefix("start:") {
                Some(pattern) => {
                    compile_regex(pattern)?;
                    Ok(Self::Start(pattern.to_string()))
                }
                None => Err(format!(
                    "multiline must be start:REGEX, java, python or go, not '{text}'"
                )),
            },
        }
    }

    /// As written in a SPEC (`multiline=` takes this).
    pub fn spelling(&self) -> String {
        match self {
            Self::Start(pattern) => format!("start:{pattern}"),
            Self::Java => "java".to_string(),
            Self::Python => "python".to_string(),
            Self::Go => "go".to_string(),
        }
    }
}

/// Compiles a `multiline=` regex; an error is one line naming the reason.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(pattern).map_err(|error| {
        // A syntax error is several lines (the pattern, a caret, the
        // reason); its reason alone keeps the error to one line.
        let text = error.to_string();
        let reason = text
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(&text);
        format!("multiline: the regex '{pattern}' is not valid: {reason}")
    })
}

/// Where a file input starts reading files that exist at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartFrom {
    Beginning,
    End,
}

/// What happens to a line that is not valid JSON under `format=json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnInvalid {
    Drop,
    Raw,
    DeadLetter,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InputKind {
    /// A path or a glob pattern.
    File { pattern: String },
    /// `sockets` sockets bound to one address with SO_REUSEPORT.
    Udp {
        address: std::net::SocketAddr,
        rcvbuf_bytes: usize,
        sockets: usize,
    },
    /// An OTLP/HTTP receiver listening on `address`; with `tls`, OTLP/HTTP
    /// over HTTPS (`,tls`); with `auth_token_file`, requests need
    /// `Authorization: Bearer` with one of its tokens.
    Otlp {
        address: std::net::SocketAddr,
        tls: Option<TlsFiles>,
        auth_token_file: Option<PathBuf>,
    },
    /// A TCP listener on `address`: newline or octet-counted records;
    /// with `tls`, syslog over TLS (RFC 5425, `,tls`).
    Tcp {
        address: std::net::SocketAddr,
        tls: Option<TlsFiles>,
    },
    /// The process's standard input (a pipe, a file or a terminal), read
    /// to its end; at most one.
    Stdin,
}

impl InputKind {
    /// The options a SPEC of this kind takes, for the message naming an
    /// unknown one. (`parse_stdin_spec` parses stdin inputs; stdin's text
    /// only completes the match.)
    fn options(&self) -> &'static str {
        match self {
            InputKind::File { .. } => {
                "file inputs take format, from, k8s, json, source and multiline (last)"
            }
            InputKind::Udp { .. } => "udp inputs take format, rcvbuf, sockets and source",
            InputKind::Tcp { .. } => "tcp inputs take format, tls, cert, key, client_ca and source",
            InputKind::Otlp { .. } => {
                "otlp inputs take format (which they ignore), tls, cert, key, client_ca, auth_token_file and source"
            }
            InputKind::Stdin => "stdin takes format",
        }
    }
}

/// The certificate chain and private key a TLS input serves with (PEM
/// files), from its `cert=`/`key=` or `--tls-cert`/`--tls-key`, and the
/// CA its clients' certificates must chain to (mutual TLS), from its
/// `client_ca=` or `--tls-client-ca`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `None`: no client certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub(crate) struct InputSpec {
    /// The SPEC exactly as typed: the input's name in stats and the summary.
    pub name: String,
    pub kind: InputKind,
    pub format: Format,
    pub from: StartFrom,
    /// Add Kubernetes metadata from each file's path (`k8s=`; default on
    /// for `format=cri`).
    pub k8s: bool,
    /// Join lines into records (`multiline=`, file inputs of format raw,
    /// cri and docker).
    pub multiline: Option<MultilineRule>,
    /// Write a container message that is a JSON object as the record's
    /// members instead of `body` (`json=merge`; `json=body` is the default).
    pub merge_json: bool,
    /// Add where each record came from (`source=`, default off): the
    /// file's path, the sender's address and port, or (OTLP) the client's
    /// address in the resource (see `source`).
    pub source: bool,
    /// The SQL query over the input's records (`--sql`, or its own
    /// `[[input]] sql`), as written; checked at start by compiling it.
    pub sql: Option<String>,
}

impl InputSpec {
    pub fn file_pattern(&self) -> Option<&str> {
        match &self.kind {
            InputKind::File { pattern } => Some(pattern),
            InputKind::Udp { .. }
            | InputKind::Otlp { .. }
            | InputKind::Tcp { .. }
            | InputKind::Stdin => None,
        }
    }

    /// Whether the input reaches an end that `--exit-on-eof` waits for:
    /// files (their EOF at start) and standard input (its EOF).
    pub fn reaches_eof(&self) -> bool {
        matches!(self.kind, InputKind::File { .. } | InputKind::Stdin)
    }
}

/// The global flags that per-input keys override.
#[derive(Clone, Debug)]
pub(crate) struct InputDefaults {
    pub format: Format,
    pub from: StartFrom,
    pub udp_rcvbuf_bytes: usize,
    pub udp_sockets: usize,
    /// `--tls-cert`, `--tls-key`: what a `,tls` input without `cert=`,
    /// `key=` serves with.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`: what a `,tls` input without `client_ca=` asks
    /// its clients' certificates to chain to.
    pub tls_client_ca: Option<PathBuf>,
}

/// How the stats line reads (`--stats-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StatsFormat {
    /// Record and byte rates in and out; problems and queued batches only when there are any.
    #[default]
    Short,
    /// Rates, every stage's ring occupancy, the error counters' totals and the checkpoint lag.
    Long,
}

/// Most SO_REUSEPORT sockets one UDP input may open.
pub(crate) const MAX_UDP_SOCKETS: usize = 64;

/// The largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes):
/// the top of `--udp-max-datagram`.
pub(crate) const MAX_UDP_PAYLOAD: usize = 65_507;

/// Outputs one dispatcher can fan out to (a bitmask of pools given a batch).
pub(crate) const MAX_OUTPUTS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OutputKind {
    File(PathBuf),
    Stdout,
    Null,
    /// NDJSON over one TCP connection (`tcp:HOST:PORT`); with `tls`, over
    /// TLS (`,tls`).
    Tcp {
        host: String,
        port: u16,
        tls: Option<TlsClientOptions>,
    },
    /// The batch's NDJSON lines as one POST body (`http://…`, `https://…`,
    /// `http:URL`).
    Http(HttpTarget),
    /// OTLP/HTTP protobuf (`otlp:http://HOST:PORT/PATH`, `otlp:https://…`).
    Otlp(HttpTarget),
    /// One Kafka message a record (`kafka:BROKER[,BROKER…]/TOPIC`).
    Kafka(KafkaTarget),
}

impl OutputKind {
    /// The client TLS options of a network output, when it speaks TLS.
    pub fn tls(&self) -> Option<&TlsClientOptions> {
        match self {
            OutputKind::Tcp { tls, .. } => tls.as_ref(),
            OutputKind::Http(target) | OutputKind::Otlp(target) => target.tls.as_ref(),
            OutputKind::Kafka(target) => target.tls.as_ref(),
            OutputKind::File(_) | OutputKind::Stdout | OutputKind::Null => None,
        }
    }

    /// The host a network output connects to (and, without
    /// `server_name=`, the name its server's certificate must have).
    pub fn host(&self) -> Option<&str> {
        match self {
            OutputKind::Tcp { host, .. } => Some(host),
            OutputKind::Http(target) | OutputKind::Otlp(target) => Some(&target.host),
            OutputKind::File(_) | OutputKind::Stdout | OutputKind::Null | OutputKind::Kafka(_) => {
                None
            }
        }
    }
}

/// Where an HTTP or OTLP output posts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpTarget {
    /// The URL as written, without the SPEC's options (for `check`).
    pub url: String,
    /// A name or an address; names are resolved at every connect.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Bodies are sent with `Content-Encoding: gzip` (`,gzip`).
    pub gzip: bool,
    /// `Some` for `https://`.
    pub tls: Option<TlsClientOptions>,
}

/// Where a `kafka:` output produces to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KafkaTarget {
    /// `HOST:PORT` of each bootstrap broker, as given.
    pub brokers: Vec<String>,
    pub topic: String,
    /// The codec of the produce requests (`compression=`).
    pub compression: KafkaCompression,
    /// The record's top-level field whose value is the message key
    /// (`key=FIELD`); `None`: no key (librdkafka's partitioner spreads
    /// keyless messages).
    pub key: Option<String>,
    /// `acks=all` (the default, with idempotence) or `acks=1`.
    pub acks_all: bool,
    /// `Some` with `,tls`: librdkafka's OpenSSL client, from `ca=`,
    /// `cert=` and `tls_key=` (the client key; `key=` is the message key
    /// here), `insecure_skip_verify=`. No `server_name=`: librdkafka
    /// checks each broker's certificate for the name the broker is known
    /// by.
    pub tls: Option<TlsClientOptions>,
    /// `sasl=` with `username=` and `password=`.
    pub sasl: Option<KafkaSasl>,
}

impl KafkaTarget {
    /// The host of the first broker (a TLS name check of the files at
    /// start-up; `[v6]` without its brackets).
    pub fn first_host(&self) -> &str {
        let broker = self.brokers.first().map_or("", String::as_str);
        let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// A `kafka:` output's SASL login (`sasl=`, `username=`, `password=`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KafkaSasl {
    pub mechanism: KafkaSaslMechanism,
    pub username: String,
    /// Never printed: `Debug` and `ringway check` show `<redacted>`.
    pub password: String,
}

impl std::fmt::Debug for KafkaSasl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KafkaSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `sasl=` of a `kafka:` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KafkaSaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl KafkaSaslMechanism {
    /// The SPEC's spelling.
    pub fn spelling(self) -> &'static str {
        match self {
            KafkaSaslMechanism::Plain => "plain",
            KafkaSaslMechanism::ScramSha256 => "scram-sha-256",
            KafkaSaslMechanism::ScramSha512 => "scram-sha-512",
        }
    }

    /// librdkafka's `sasl.mechanism`.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            KafkaSaslMechanism::Plain => "PLAIN",
            KafkaSaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            KafkaSaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `compression=` of a `kafka:` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KafkaCompression {
    None,
    Gzip,
    Lz4,
    Zstd,
}

impl KafkaCompression {
    /// The name librdkafka's `compression.codec` and the SPEC use.
    pub fn name(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// How a network output's TLS client checks its server and shows itself
/// (`https://…` and `tcp:…,tls`, with `ca=`, `cert=`, `key=`,
/// `server_name=`, `insecure_skip_verify=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsClientOptions {
    /// CA certificates (PEM) the server's certificate must chain to;
    /// `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key (PEM) for mutual TLS: both
    /// or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (and the SNI sent);
    /// `None`: the host of the URL or address.
    pub server_name: Option<String>,
    /// The server's certificate is not checked at all (warned about).
    pub insecure_skip_verify: bool,
}

/// A header every request of an HTTP or OTLP output carries
/// (`--output-header N=Name: Value`, `[[output]] headers`), checked by
/// [`parse_header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug)]
pub(crate) struct OutputSpec {
    /// The SPEC exactly as typed.
    pub name: String,
    pub kind: OutputKind,
    /// The output's route: a SQL condition a record must meet to reach it
    /// (`--where N=EXPR`, `[[output]] where`), as written.
    pub route: Option<String>,
    /// Extra request headers (HTTP and OTLP outputs only).
    pub headers: Vec<Header>,
}

/// When an OTLP request is answered 200 (`--otlp-ack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OtlpAck {
    /// Once its records are in ring(4).
    Accepted,
    /// Once every output accepted them.
    Delivered,
}

/// The OTLP receiver's flags, shared by every `otlp:` input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OtlpSettings {
    pub ack: OtlpAck,
    /// The `Retry-After` of a 429 or 503, in whole seconds.
    pub retry_after_s: u64,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    /// A request must arrive whole within this of its first byte.
    pub read_timeout: Duration,
    /// A keep-alive connection idle this long is closed; zero: never.
    pub idle_timeout: Duration,
}

/// Everything a run needs, validated. Ring capacities and pool sizes are
/// fixed here, before any thread starts.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    pub on_invalid: OnInvalid,
    pub dead_letter: Option<PathBuf>,
    pub max_line_bytes: usize,
    /// Longest a partial container line (`format=cri|docker`) waits for
    /// the rest of its message before it is sent on as it is.
    pub multiline_timeout: Duration,
    pub read_buffer_bytes: usize,
    pub batch_bytes: usize,
    pub batch_linger: Duration,
    pub io_to_cpu_capacity: usize,
    pub cpu_to_dispatcher_capacity: usize,
    pub dispatcher_to_worker_capacity: usize,
    pub output_workers: usize,
    /// Cores to pin per-input threads to, in order; `None`: all online cores.
    pub cpus: Option<Vec<usize>>,
    pub uring_depth: u32,
    pub sqpoll: bool,
    pub max_open_files: usize,
    pub udp_max_datagram_bytes: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Connect and I/O timeout of network outputs (`--output-timeout`).
    pub output_timeout: Duration,
    /// `None` when stats lines are off.
    pub stats_interval: Option<Duration>,
    /// Short or long stats lines (`--stats-format`).
    pub stats_format: StatsFormat,
    pub exit_on_eof: bool,
    pub summary_json: Option<PathBuf>,
    pub shutdown_timeout: Duration,
    /// Checkpoints are saved here (`--data-dir`); `None`: not saved.
    pub data_dir: Option<PathBuf>,
    /// Zero: checkpoints are written only at exit.
    pub checkpoint_interval: Duration,
    pub fsync: bool,
    pub otlp: OtlpSettings,
    /// Connections one TCP input keeps open.
    pub tcp_max_connections: usize,
    /// A TCP connection silent this long is closed; zero: never.
    pub tcp_idle_timeout: Duration,
    /// A TLS connection's handshake must be done this long after accept.
    pub tls_handshake_timeout: Duration,
    /// Where `/metrics` and `/healthz` are served (`--metrics`); `None`: off.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// `ringway demo`'s traffic light before every write (the hidden
    /// `--traffic-light`), switched from standard input.
    pub traffic_light: bool,
}

/// Reads in flight at once per file input. Each file has at most one read in
/// flight (see `input::file`), so this bounds how many files are read in
/// parallel by one I/O worker.
pub(crate) const MAX_READS_IN_FLIGHT: usize = 4;

impl Settings {
    /// Capacity of every pooled buffer. A buffer must hold one whole line of
    /// `max_line_bytes` plus its newline, so a line that fills a buffer
    /// without a newline is known to be over-long.
    pub fn buffer_bytes(&self) -> usize {
        // Whole pages, so every buffer of the arena starts page-aligned.
        self.read_buffer_bytes
            .max(self.max_line_bytes + 1)
            .next_multiple_of(4096)
    }

    /// Buffers per input: enough to fill every ring behind the reader, so the
    /// rings, not the pool, are what fill first under backpressure.
    pub fn buffers_per_input(&self) -> usize {
        let per_worker = self.dispatcher_to_worker_capacity + 1;
        MAX_READS_IN_FLIGHT
            + self.io_to_cpu_capacity
            + 1 // the CPU worker's pending batch
            + self.cpu_to_dispatcher_capacity
            + 1 // the dispatcher's batch in hand
            + self.output_workers * per_worker * self.outputs.len().max(1)
    }
}

/// The size grammar, for messages.
const SIZE_EXAMPLES: &str = "use e.g. 512, 512B, 64KiB, 1.5MiB, 8MB or 1GiB";

/// Parses a size: a number and a unit, the unit in any case. No unit or `B`
/// is bytes; `KB`, `MB`, `GB` are decimal (1000, 1000², 1000³ bytes) and
/// `KiB`, `MiB`, `GiB` binary (1024, 1024², 1024³), as the SI and IEC say.
/// A bare `K`, `M` or `G` is refused: readers take it for either, so the
/// message offers both spellings. A fraction (`1.5MiB`) is rounded down to
/// whole bytes; a number of bytes must be whole.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("'{text}' is not a size ({SIZE_EXAMPLES})"));
    }
    // At most 18 decimals: with a multiplier below 10^10 every digit that
    // could change the whole number of bytes is kept.
    if fraction.len() > 18 {
        return Err(format!("'{text}' has more decimals than a size needs"));
    }
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "k" | "m" | "g" => {
            let prefix = unit.to_ascii_uppercase();
            return Err(format!(
                "size '{text}' is ambiguous: write {number}{prefix}iB (binary, 1024-based) or {number}{prefix}B (decimal, 1000-based)"
            ));
        }
        _ => {
            return Err(format!(
                "unknown size unit '{unit}' in '{text}' (B, KB, MB, GB, KiB, MiB or GiB; {SIZE_EXAMPLES})"
            ));
        }
    };
    if multiplier == 1 && !fraction.is_empty() {
        return Err(format!(
            "'{text}' is not a whole number of bytes ({SIZE_EXAMPLES})"
        ));
    }
    let too_large = || format!("'{text}' is too large");
    let whole: u128 = whole.parse::<u64>().map_err(|_| too_large())?.into();
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().expect("checked: at most 18 digits");
        digits * multiplier / 10u128.pow(fraction.len() as u32)
    };
    let bytes = whole * multiplier + fraction_bytes;
    usize::try_from(bytes).map_err(|_| too_large())
}

/// Parses `250ms`, `10s`, `2m`, `1h` (also `us` and `min`), fractions
/// allowed (`1.5s`); a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "'{text}' is not a duration (use e.g. 250ms, 10s, 2m, 1h, or a bare number of seconds)"
        )
    })?;
    let seconds = match unit.trim_start() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{text}' (use ms, s, m or h; a bare number is seconds)"
            ));
        }
    };
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration in the largest unit of [`parse_duration`] that holds it
/// whole (`90s`, `2m`, `250ms`), so `check` echoes one spelling per value.
pub(crate) fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    for (unit, unit_nanos) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos.is_multiple_of(unit_nanos) {
            return format!("{}{unit}", nanos / unit_nanos);
        }
    }
    format!("{}s", duration.as_secs_f64())
}

/// Most cores a `--cpus` list may name (the kernel's own limit is 8192).
pub(crate) const MAX_CPU_LIST: usize = 8192;

/// A `--cpus` list, expanded in order (`0,2-3` is cores 0, 2 and 3). One
/// value to clap: a `Vec<usize>` flag would be taken for a flag of many
/// `usize` values, and reading it back panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CpuList(pub Vec<usize>);

/// Parses a CPU list such as `0,2-3`.
pub(crate) fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let bad = || format!("'{text}' is not a CPU list (use e.g. 0, 0,2 or 0,2-3)");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: usize = first.trim().parse().map_err(|_| bad())?;
        let last: usize = last.trim().parse().map_err(|_| bad())?;
        if last < first || cpus.len() + (last - first) >= MAX_CPU_LIST {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    Ok(CpuList(cpus))
}

/// Parses the `ADDRESS:PORT` an input listens on: an IPv4 address, or an
/// IPv6 one in brackets, and a port from 0 (any free port) to 65535.
/// `example` is a port for the messages. Host names are refused: a listener
/// binds one address, while a name may stand for several or change.
pub(crate) fn parse_listen_address(
    target: &str,
    example: u16,
) -> Result<std::net::SocketAddr, String> {
    let examples = format!(
        "e.g. 127.0.0.1:{example} or [::1]:{example} for this host only, 0.0.0.0:{example} or [::]:{example} for every interface"
    );
    let Some((host, port)) = target.rsplit_once(':') else {
        return Err(format!("'{target}' is not ADDRESS:PORT ({examples})"));
    };
    if port.is_empty() || !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!(
            "'{target}': the port '{port}' is not a number from 0 to 65535 ({examples})"
        ));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "'{target}': port {port} is out of range (0 to 65535)"
        ));
    };
    let ip: std::net::IpAddr = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')
            .and_then(|v6| v6.parse::<std::net::Ipv6Addr>().ok())
            .ok_or_else(|| format!("'{target}': '{host}' is not an IPv6 address ({examples})"))?
            .into()
    } else if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        v4.into()
    } else if host.is_empty() {
        return Err(format!("'{target}' has no address ({examples})"));
    } else if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!(
            "'{target}': an IPv6 address goes in brackets, e.g. [{host}]:{port}"
        ));
    } else if host.bytes().any(|byte| byte.is_ascii_alphabetic())
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
    {
        return Err(format!(
            "'{target}': '{host}' is a host name; an input listens on an IP address, not a name ({examples})"
        ));
    } else {
        return Err(format!(
            "'{target}': '{host}' is not an IP address ({examples})"
        ));
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

fn parse_format(text: &str) -> Result<Format, String> {
    match text {
        "raw" => Ok(Format::Raw),
        "json" => Ok(Format::Json),
        "syslog" => Ok(Format::Syslog),
        "cri" => Ok(Format::Cri),
        "docker" => Ok(Format::Docker),
        "auto" => Ok(Format::Auto),
        _ => Err(format!(
            "unknown format '{text}' (use raw, json, syslog, cri, docker or auto)"
        )),
    }
}

fn parse_from(text: &str) -> Result<StartFrom, String> {
    match text {
        "beginning" | "start" => Ok(StartFrom::Beginning),
        "end" => Ok(StartFrom::End),
        _ => Err(format!("unknown start '{text}' (use beginning or end)")),
    }
}

pub(crate) fn parse_format_flag(text: &str) -> Result<Format, String> {
    parse_format(text)
}

pub(crate) fn parse_from_flag(text: &str) -> Result<StartFrom, String> {
    parse_from(text)
}

#[cfg(test)]
mod tests;
