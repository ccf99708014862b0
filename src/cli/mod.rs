//! The command line of DESIGN §7: `ringway run [--input SPEC]...
//! [--output SPEC]... [flags]`, parsed with clap into [`Settings`](crate::config::Settings).
//!
//! Every error here is one line on stderr and exit code 2 (clap's tip, when
//! it has one, is a second line). `check` lists every problem, one line each;
//! `run` shows the first and how many more there are.

use crate::config::{self, Format, StartFrom};
use crate::config_file::ConfigFile;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

mod sql;
pub(crate) use sql::SqlArgs;

/// What the embedded default reads when neither --input nor --config is
/// given: local log files, and syslog on a local UDP port.
pub(crate) const DEFAULT_INPUT: &str = "file:/var/log/*.log";
pub(crate) const DEFAULT_SYSLOG_INPUT: &str = "udp:127.0.0.1:5514,format=syslog";
const MAX_INPUTS: usize = 256;
const MAX_OUTPUT_WORKERS: usize = 256;

/// The grammar of sizes and durations, shown under the flags of `run` and
/// `check` (docs/config.md "Sizes and durations" says the same).
const UNITS_HELP: &str = "SIZE: bytes (512 or 512B), decimal KB/MB/GB (1000-based) or binary KiB/MiB/GiB (1024-based), in any \
case; a fraction is rounded down to whole bytes (1.5MiB). K, M and G alone are refused as ambiguous.
DURATION: 250ms, 10s, 2m, 1h (also us, min); a bare number is seconds.";

#[derive(Parser, Debug)]
#[command(
    name = "ringway",
    version = crate::metrics::VERSION_LINE,
    about = "A log data plane for dedicated Linux log hosts: io_uring inputs, SIMD scanning, bounded rings.",
    long_about = None,
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the pipeline. Without --input it runs the embedded default: tail
    /// /var/log/*.log from the end as raw lines and print them to stdout.
    #[command(after_help = UNITS_HELP)]
    Run(RunArgs),
    /// Check a configuration (--config FILE and any flags) as `run` would at
    /// start, without starting anything, and print the effective settings.
    /// Exit 0 when valid, 2 with a message naming the key otherwise.
    #[command(after_help = UNITS_HELP)]
    Check(CheckArgs),
    /// Run a SQL query (the subset --sql takes) over a file or standard input and print each resulting
    /// record; for trying a query out. Exit 2 with one line for a query that is refused.
    Sql(SqlArgs),
    /// Show a live view of a running ringway (read from its --metrics endpoint once a second): rates per
    /// input and output, and each stage's ring occupancy against its capacity. q or Ctrl-C quits.
    Top(TopArgs),
    /// Watch backpressure on a real pipeline: a file, UDP syslog and OTLP/HTTP feed one file output
    /// behind a traffic light that lets it write only while green. On red the rings fill, the file reader
    /// pauses, the kernel drops UDP (counted) and OTLP senders get 429 and retry. Keys: ←/→ green share
    /// ±10%, space holds red, q quits. At the end a tally checks that nothing went missing uncounted
    /// (exit 1 if it did). Runs on 127.0.0.1 in a temporary directory, removed at exit.
    Demo(DemoArgs),
    /// Print a shell completion script to stdout: bash, zsh or fish (e.g. `ringway completions bash >
    /// /usr/share/bash-completion/completions/ringway`).
    Completions(CompletionsArgs),
    /// Print generated documentation (docs/flags.md, docs/ringway.1); for the project's own docs.
    #[command(subcommand, hide = true)]
    Internal(InternalCommand),
}

#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: CompletionShell,
}

/// The shells `ringway completions` writes a script for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum CompletionShell {
    /// Bash (sourced, or installed under bash-completion's completions directory).
    Bash,
    /// Zsh (installed as _ringway on $fpath).
    Zsh,
    /// Fish (installed as ringway.fish under ~/.config/fish/completions).
    Fish,
}

/// The generated documents; `src/docs.rs` renders them.
#[derive(Subcommand, Debug)]
pub(crate) enum InternalCommand {
    /// The flag reference in Markdown (docs/flags.md).
    FlagsDoc,
    /// The manual page (docs/ringway.1).
    Man,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Every scalar setting as `(key, value as TOML, where it came from)`,
    /// filled in by [`parse_command_line`].
    #[arg(skip)]
    pub effective: Vec<(String, Option<String>, String)>,
}

#[derive(Args, Debug)]
pub(crate) struct TopArgs {
    /// Address of the running ringway's --metrics endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub metrics: String,
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// How long the sources send before the tally (q ends sooner). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_demo_duration)]
    pub duration: Duration,

    /// Share of each cycle the light is green, 0% to 100% (← and → change it by 10%).
    #[arg(long, value_name = "PCT", default_value = "50%", value_parser = parse_percent)]
    pub green: u8,

    /// Length of one cycle of the light (green, then red). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_demo_cycle)]
    pub cycle: Duration,

    /// No live view: print one table row per second and the tally (for scripts and CI). Implied when
    /// standard input or output is not a terminal.
    #[arg(long)]
    pub no_tty: bool,

    /// Also write ring occupancy and the sources' reactions over time to this SVG file. [default: none]
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Longest `ringway demo --duration` (its history for --plot is bounded by it).
pub(crate) const MAX_DEMO_DURATION: Duration = Duration::from_secs(3600);

fn parse_demo_duration(text: &str) -> Result<Duration, String> {
    let duration = config::parse_duration(text)?;
    if duration < Duration::from_secs(1) || duration > MAX_DEMO_DURATION {
        return Err(format!("'{text}' is not between 1s and 1h"));
    }
    Ok(duration)
}

fn parse_demo_cycle(text: &str) -> Result<Duration, String> {
    let cycle = config::parse_duration(text)?;
    if cycle < Duration::from_millis(100) || cycle > Duration::from_secs(60) {
        return Err(format!("'{text}' is not between 100ms and 60s"));
    }
    Ok(cycle)
}

/// `30%` or `30`: a whole percentage from 0 to 100.
fn parse_percent(text: &str) -> Result<u8, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<u8>() {
        Ok(percent) if percent <= 100 => Ok(percent),
        _ => Err(format!("'{text}' is not a percentage from 0% to 100%")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum OnInvalidArg {
    /// Drop the line (counted as invalid).
    Drop,
    /// Pass the line through unchanged (counted as invalid).
    Raw,
    /// Write the line to --dead-letter PATH instead (counted as invalid).
    Deadletter,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum OtlpAckArg {
    /// Answer 200 once the records are in the pipeline.
    Accepted,
    /// Answer 200 once every output wrote the records.
    Delivered,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// A TOML config file: every flag below as a key with _ for - (max_line = "1MiB"), and [[input]] /
    /// [[output]] tables (kind = "udp", address = "0.0.0.0:514", format = "syslog"). Flags given here
    /// override its keys; --input/--output replace its lists. See docs/config.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The file --config named, once read: to say which key an error came from.
    #[arg(skip)]
    pub loaded: Option<ConfigFile>,

    /// An input, KIND:TARGET[,key=value]...:
    /// file:PATH_OR_GLOB[,format=…][,from=beginning|end][,k8s=true|false][,json=merge|body][,multiline=start:REGEX|java|python|go] (k8s: Kubernetes metadata from kubelet log paths
    /// for format=cri, docker or auto, default true with cri; json=merge: a container message that is a JSON
    /// object gives the record its keys instead of body, default body; multiline: join lines of format raw,
    /// cri, docker or auto into records, a regex matching the lines that start one or a stack-trace preset, last
    /// in the SPEC; see docs/inputs.md),
    /// udp:ADDRESS:PORT[,format=…][,rcvbuf=SIZE][,sockets=N], tcp:ADDRESS:PORT[,format=…] (newline or
    /// octet-counted records; ,tls[,cert=FILE][,key=FILE][,client_ca=FILE] for syslog over TLS, RFC 5425), otlp:ADDRESS:PORT (OTLP/HTTP logs receiver, POST /v1/logs, protobuf or JSON; the same ,tls options for HTTPS;
    /// ,auth_token_file=FILE to require Authorization: Bearer with one of its tokens, reread at SIGHUP)
    /// (IPv6 as [::1]:PORT) or stdin[,format=…] (standard input, a pipe, file or terminal, read to its end;
    /// no checkpoints; a run with only stdin ends at its EOF). Every input but stdin takes ,source=true|false
    /// (default false): add where each record came from, log.file.path for files, client.address and
    /// client.port for udp and tcp, client.address in the resource for otlp (see docs/inputs.md). Repeatable. Without any,
    /// the embedded default runs (file:/var/log/*.log from the end, and udp:127.0.0.1:5514,format=syslog, to stdout).
    #[arg(long = "input", value_name = "SPEC")]
    pub inputs: Vec<String>,

    /// An output: file:PATH (append), stdout, null (count and discard), tcp:HOST:PORT[,tls] (NDJSON, over TLS
    /// with ,tls), http://HOST[:PORT]/PATH[,gzip] (NDJSON POST; also http:URL; https:// for HTTPS) or
    /// otlp:http://HOST:PORT/v1/logs[,gzip] (OTLP/HTTP protobuf; otlp:https://… for HTTPS) or
    /// kafka:HOST:PORT[,HOST:PORT…]/TOPIC[,compression=none|gzip|lz4|zstd][,key=FIELD][,acks=all|1] (a Kafka message
    /// a record; lz4 and acks=all with idempotence by default; ,tls[,ca=FILE][,cert=FILE,tls_key=FILE] for TLS, the
    /// client key being tls_key= as key= is the message key; ,sasl=plain|scram-sha-256|scram-sha-512,username=NAME,
    /// password=SECRET for SASL, the password best as ${VAR} in a config file; see docs/outputs.md). A TLS output checks the
    /// server's certificate against the system's CAs or ,ca=FILE (PEM), for the URL's host or ,server_name=NAME;
    /// ,cert=FILE,key=FILE present a client certificate (mutual TLS); ,insecure_skip_verify=true checks nothing
    /// (warned about). Repeat to fan out; a batch is done when every output wrote it. [default: stdout]
    #[arg(long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,

    /// A SQL query over every input's records, e.g. "SELECT level, msg AS message FROM logs WHERE status >= 500":
    /// filters (WHERE) and reshapes (the SELECT list) each record in the CPU worker. An [[input]] table's
    /// sql key sets one input's query instead. Refused at start with one line when it uses what ringway does
    /// not run (GROUP BY, joins, unknown functions). See docs/transform.md. [default: none: records pass as read]
    #[arg(long, value_name = "QUERY")]
    pub sql: Option<String>,

    /// A route, N=EXPR: the N-th --output (1-based) receives only the records for which the SQL condition EXPR
    /// holds, e.g. 2="level IN ('error','fatal')". Repeatable, once per output; an [[output]] table's where key
    /// says the same. A batch routed nowhere counts as delivered. [default: every output receives every record]
    #[arg(long = "where", value_name = "N=EXPR")]
    pub routes: Vec<String>,

    /// A request header, N=NAME: VALUE, that the N-th --output (1-based; an http or otlp output) sends with every
    /// request, e.g. 1="Authorization: Bearer abc". Repeatable; an [[output]] table's headers key says the same
    /// (a name given here wins). Refused: CR or LF, an invalid name, and the headers ringway sets itself (Host,
    /// Content-Length, Content-Type, Content-Encoding, Transfer-Encoding, Connection). `ringway check` shows
    /// names, never values. [default: none]
    #[arg(long = "output-header", value_name = "N=HEADER")]
    pub output_headers: Vec<String>,

    /// Format of every input without its own format=: raw (one record per line), json (NDJSON, checked with
    /// simd-json), syslog (RFC 3164/5424, converted to one JSON object per message), or, for file inputs, cri
    /// (Kubernetes CRI container logs) or docker (Docker json-file logs): partial lines joined per file and
    /// stream, one {"time","stream","body"} object per message; or auto (file inputs): per line CRI, else
    /// Docker, else a JSON object or array passed on as it is, else a plain line as {"body":…}.
    #[arg(long, value_name = "FORMAT", default_value = "raw", value_parser = config::parse_format_flag)]
    pub format: Format,

    /// Where file inputs start in files that exist at start-up: beginning or end. Files that appear later are read from their beginning.
    #[arg(long, value_name = "WHERE", default_value = "beginning", value_parser = config::parse_from_flag)]
    pub from: StartFrom,

    /// What to do with a line that is not valid JSON under format=json, or not a container log line under
    /// format=cri or docker.
    #[arg(long, value_name = "POLICY", value_enum, default_value = "raw")]
    pub on_invalid: OnInvalidArg,

    /// File that receives invalid lines with --on-invalid deadletter, and the lines of batches a network
    /// output's receiver rejected for good (HTTP 4xx other than 408/429) (appended).
    #[arg(long, value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,

    /// Longest line kept whole, and longest message joined from partial container lines (format=cri or docker);
    /// longer ones are cut to this many bytes plus a newline (counted as truncated).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub max_line: usize,

    /// Longest a partial container line (format=cri or docker: a P line, a log value without its newline),
    /// or a multiline= record after its first line, waits for the rest of its message or record; then what
    /// is joined so far is sent on as one record (0: only at exit). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = config::parse_duration)]
    pub multiline_timeout: Duration,

    /// Bytes per io_uring read (each pooled buffer holds at least --max-line + 1 bytes).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub read_buf: usize,

    /// A batch is sent on once it holds this many bytes (capped at the buffer size).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub batch_bytes: usize,

    /// Longest a partly filled batch waits for more lines before it is sent on (0: never waits). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = config::parse_duration)]
    pub batch_linger: Duration,

    /// Capacity of each input's I/O → CPU ring (the io_to_cpu stage), in batches.
    #[arg(long, visible_alias = "io-ring", value_name = "N", default_value_t = 4)]
    pub ring_io_to_cpu: usize,

    /// Capacity of each input's CPU → dispatcher ring (the cpu_to_dispatcher stage), in batches.
    #[arg(
        long,
        visible_alias = "pipeline-ring",
        value_name = "N",
        default_value_t = 16
    )]
    pub ring_cpu_to_dispatcher: usize,

    /// Capacity of the dispatcher → worker ring of every output worker (the dispatcher_to_worker stage), in batches.
    #[arg(
        long,
        visible_alias = "worker-slot",
        value_name = "N",
        default_value_t = 1
    )]
    pub ring_dispatcher_to_worker: usize,

    /// Workers per output. file: and stdout still write each input's records in order.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub output_workers: usize,

    /// Cores for the per-input I/O and CPU threads, e.g. 0, 0,2 or 0,2-3 (input i uses the 2i-th and 2i+1-th,
    /// wrapping). A core that does not exist is warned about and that thread runs unpinned.
    /// [default: every online core]
    #[arg(long, value_name = "LIST", value_parser = config::parse_cpu_list)]
    pub cpus: Option<config::CpuList>,

    /// Entries in each I/O worker's io_uring submission queue.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub uring_depth: u32,

    /// Use an SQPOLL kernel thread per ring (falls back with a warning where not permitted).
    #[arg(long)]
    pub sqpoll: bool,

    /// Files one file input keeps open at once; further matches wait for a slot (counted).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_open_files: usize,

    /// Receive buffer asked for each UDP socket (SO_RCVBUFFORCE when permitted, else SO_RCVBUF, which
    /// net.core.rmem_max clamps; a clamp is warned about). Per input: rcvbuf=.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = config::parse_size)]
    pub udp_rcvbuf: usize,

    /// Sockets per UDP input, bound to one port with SO_REUSEPORT, each with its own I/O and CPU thread.
    /// The kernel spreads datagrams by flow, so one sender lands on one socket. Per input: sockets=.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub udp_sockets: usize,

    /// Longest UDP datagram kept whole; longer ones are cut to this many bytes (counted as truncated).
    #[arg(long, value_name = "SIZE", default_value = "9000", value_parser = config::parse_size)]
    pub udp_max_datagram: usize,

    /// When an OTLP request is answered 200: accepted (its records are in the pipeline's first ring) or
    /// delivered (every output wrote them; survives a crash of ringway, costs a round trip through the outputs).
    #[arg(long, value_name = "WHEN", value_enum, default_value = "accepted")]
    pub otlp_ack: OtlpAckArg,

    /// Retry-After sent with 429 (pipeline full) and 503 (shutting down), rounded up to whole seconds. A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "1", value_parser = config::parse_duration)]
    pub otlp_retry_after: Duration,

    /// Largest OTLP request body, as sent (after chunked decoding; framing does not count) and after gunzip;
    /// larger ones get 413.
    /// Memory for bodies is bounded by this times --otlp-max-connections.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = config::parse_size)]
    pub max_body: usize,

    /// Connections one OTLP input keeps open; when full, the longest-idle one is closed for a new one
    /// (or, if none is idle, the new one is refused). Both are counted.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub otlp_max_connections: usize,

    /// An OTLP request must arrive whole within this of its first byte, or it gets 408 and the connection
    /// closes (slow clients). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    pub otlp_read_timeout: Duration,

    /// An OTLP keep-alive connection idle this long is closed (0: never). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = config::parse_duration)]
    pub otlp_idle_timeout: Duration,

    /// Connections one TCP input keeps open; at the limit a new connection closes the oldest one still in its TLS
    /// handshake (counted as evicted), or, if there is none, is closed at once (counted as refused).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub tcp_max_connections: usize,

    /// A TCP connection that sends nothing this long is closed (0: never). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = config::parse_duration)]
    pub tcp_idle_timeout: Duration,

    /// Certificate of every tcp:…,tls and otlp:…,tls input without its own cert=: a PEM file, the server's certificate
    /// first, then any intermediates. Read at start; a file that is missing, unreadable or not a certificate
    /// stops ringway (exit 2). Read again at SIGHUP: new handshakes use it, a bad file keeps the old one (a
    /// warning, counted as credential_reload_failures). Given without any ,tls input it is an error.
    /// [default: none]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key of every tcp:…,tls and otlp:…,tls input without its own key=: a PEM file (PKCS#8, PKCS#1 or SEC1) that
    /// goes with --tls-cert. Checked at start and reloaded at SIGHUP like --tls-cert. [default: none]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (a PEM file) that turn on mutual TLS for every tcp:…,tls and otlp:…,tls input without its own
    /// client_ca=: a client must present a certificate signed by one of them, or its handshake fails
    /// (counted as tls_client_cert_refused). Checked at start and reloaded at SIGHUP like --tls-cert.
    /// [default: none: no client certificate is asked for]
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// A TLS connection must finish its handshake within this of being accepted, or it is closed (counted as
    /// tls_handshake_timeouts). Connections in their handshake count against --tcp-max-connections
    /// (--otlp-max-connections), and are the first closed to make room for a new one. A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    pub tls_handshake_timeout: Duration,

    /// First wait before retrying a failed output write; doubles per failure, with jitter. A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = config::parse_duration)]
    pub retry_initial: Duration,

    /// Longest wait between retries of a failed output write. A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration)]
    pub retry_max: Duration,

    /// Connect, send and response timeout of tcp:, http and otlp outputs (a timeout is retried). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    pub output_timeout: Duration,

    /// Interval of the stats line on stderr (0: off; otherwise at least 100ms). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    pub stats_interval: Duration,

    /// What the stats line shows: `short`, the record and byte rates in and out over the interval plus
    /// any problems and queued batches; `long`, also every ring's occupancy, the error totals and the
    /// checkpoint lag. Either way an interval in which nothing moved prints nothing (at most one `idle`
    /// line a minute).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::config::StatsFormat::Short)]
    pub stats_format: crate::config::StatsFormat,

    /// Once every file matched at start has been read to EOF (and standard input, with --input stdin) and
    /// everything read is delivered, exit 0. A last line without a newline is emitted with one. Needs a file
    /// or stdin input. With --exit-on-eof, a file named as an input (not a glob) that cannot be read is an
    /// error at start.
    #[arg(long)]
    pub exit_on_eof: bool,

    /// Write a JSON summary (records, bytes, errors per input and output) here at every orderly exit.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Directory for checkpoints (file inputs' delivered offsets), so a restart resumes each file where
    /// delivery stopped. A file is found again by its device, inode and fingerprint under its input's path
    /// pattern, so editing an input's format= or from= keeps its place. Created if missing; one ringway per
    /// directory. [default: none: nothing is saved and every run starts per --from]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How often checkpoints are written to --data-dir; also sooner after a run's first delivery and after
    /// every 32MiB delivered, and at every exit (0: only at exit). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = config::parse_duration)]
    pub checkpoint_interval: Duration,

    /// fsync file: outputs after each batch, before it counts as delivered (slower; survives power loss).
    #[arg(long)]
    pub fsync: bool,

    /// Longest the drain may take at exit (SIGINT/SIGTERM/EOF); past it ringway says what was undelivered and exits 1. A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Serve Prometheus metrics (GET /metrics) and health (GET /healthz) over HTTP on this address, e.g.
    /// 127.0.0.1:9464 (port 0: any free port; the bound address is printed). [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// For `ringway demo`, which starts the pipeline with it: the output workers write only while a
    /// traffic light is green; lines `green` and `red` on standard input switch it, and the end of
    /// standard input turns it green and stops ringway as SIGTERM does. Not a config key.
    #[arg(long, hide = true)]
    pub traffic_light: bool,
}

mod check;
mod validate;

use check::effective_settings;
use validate::first_of;

/// Why the command line was refused.
pub(crate) enum ParseError {
    /// clap's own error (or help and version, which it reports the same way),
    /// and the subcommand the command line named, if any.
    Clap(clap::Error, Option<String>),
    /// `--config` file problems, each one line naming the file and the key.
    Config {
        errors: Vec<String>,
        /// `check` lists every error; `run` shows the first (see [`first_of`]).
        list_all: bool,
    },
}

impl ParseError {
    /// The lines to print for a refused command line (help and version
    /// excepted, which clap prints itself), each without `ringway: `.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ParseError::Config { errors, list_all } if *list_all => errors
                .iter()
                .map(|error| format!("error: {error}"))
                .collect(),
            ParseError::Config { errors, .. } => vec![format!("error: {}", first_of(errors))],
            ParseError::Clap(error, subcommand) => {
                let command = match (error.kind(), subcommand) {
                    (clap::error::ErrorKind::InvalidSubcommand, _) | (_, None) => {
                        "ringway".to_string()
                    }
                    (_, Some(name)) => format!("ringway {name}"),
                };
                clap_error_lines(&error.to_string(), &command)
            }
        }
    }
}

/// clap's error in at most two lines: the error, with the help to read
/// (`command`'s: the subcommand's when the error is inside one, else the
/// top level's), and clap's tip when it has one ("a similar argument
/// exists: '--output'").
fn clap_error_lines(rendered: &str, command: &str) -> Vec<String> {
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let mut lines = vec![format!("error: {first} (see '{command} --help')")];
    if let Some(tip) = rendered
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("tip:"))
    {
        lines.push(tip.to_string());
    }
    lines
}

/// Parses the process's arguments; with `--config FILE`, adds the file's
/// keys for every flag not given on the command line, and its input and
/// output lists unless `--input`/`--output` were given.
pub(crate) fn parse_command_line() -> Result<Cli, ParseError> {
    parse_arguments(std::env::args_os().collect())
}

fn parse_arguments(argv: Vec<OsString>) -> Result<Cli, ParseError> {
    let command = Cli::command();
    // The subcommand an error is about: the first word that names one.
    let subcommand = argv
        .iter()
        .skip(1)
        .find(|word| !word.to_string_lossy().starts_with('-'))
        .map(|word| word.to_string_lossy().into_owned())
        .filter(|word| command.find_subcommand(word).is_some());
    let clap_error = |error| ParseError::Clap(error, subcommand.clone());
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(clap_error)?;
    let mut config = None;
    let mut merged = matches.clone();
    if let Some((name, given)) = matches.subcommand()
        && let Ok(Some(path)) = given.try_get_one::<PathBuf>("config")
    {
        let run = command
            .find_subcommand(name)
            .expect("clap matched this subcommand");
        let config_error = |errors| ParseError::Config {
            errors,
            list_all: name == "check",
        };
        let mut file = ConfigFile::load(path, run).map_err(config_error)?;
        let on_command_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
        let mut extra = file.arguments(run, on_command_line).map_err(config_error)?;
        if on_command_line("inputs") {
            file.inputs.clear();
            file.input_sql.clear();
        }
        if on_command_line("outputs") {
            file.outputs.clear();
            file.output_where.clear();
            file.output_headers.clear();
        }
        extra.extend(
            file.inputs
                .iter()
                .map(|spec| format!("--input={spec}").into()),
        );
        extra.extend(
            file.outputs
                .iter()
                .map(|spec| format!("--output={spec}").into()),
        );
        let mut argv = argv;
        argv.extend(extra);
        merged = command
            .clone()
            .try_get_matches_from(&argv)
            .map_err(|error| {
                let rendered = error.to_string();
                let first = rendered.lines().next().unwrap_or("invalid value");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                let blame = file.blame(first).unwrap_or_default();
                let message = format!("{first} {blame}");
                config_error(vec![file.redact(message.trim_end())])
            })?;
        config = Some(file);
    }
    let mut cli = Cli::from_arg_matches(&merged).map_err(clap_error)?;
    // `if let`, not `match`: other subcommands take no config.
    if let Command::Check(check) = &mut cli.command {
        let (name, given) = merged.subcommand().expect("a subcommand matched");
        let run = command.find_subcommand(name).expect("matched");
        check.effective = effective_settings(run, given, config.as_ref());
        check.run.loaded = config;
    } else if let Command::Run(args) = &mut cli.command {
        args.loaded = config;
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Cli, ParseError> {
        parse_arguments(words.iter().map(OsString::from).collect())
    }

    #[test]
    fn cpus_reads_back_as_one_list_value() {
        for (list, cpus) in [
            ("0", vec![0]),
            ("0,1", vec![0, 1]),
            ("0-1", vec![0, 1]),
            ("999", vec![999]),
        ] {
            for subcommand in ["run", "check"] {
                let cli = parse(&["ringway", subcommand, "--cpus", list])
                    .ok()
                    .unwrap();
                let run = match cli.command {
                    Command::Run(run) => run,
                    Command::Check(check) => check.run,
                    Command::Top(_)
                    | Command::Demo(_)
                    | Command::Sql(_)
                    | Command::Completions(_)
                    | Command::Internal(_) => {
                        unreachable!()
                    }
                };
                assert_eq!(run.cpus, Some(config::CpuList(cpus.clone())), "{list}");
            }
        }
    }

    #[test]
    fn traffic_light_is_refused_beside_a_stdin_input_it_would_read_from() {
        let Ok(Cli {
            command: Command::Run(args),
        }) = parse(&["ringway", "run", "--traffic-light", "--input", "stdin"])
        else {
            panic!("did not parse");
        };
        let error = args.into_settings().err().expect("refused");
        assert!(error.contains("--traffic-light"), "{error}");
        let Ok(Cli {
            command: Command::Run(args),
        }) = parse(&[
            "ringway",
            "run",
            "--traffic-light",
            "--input",
            "udp:127.0.0.1:0",
        ])
        else {
            panic!("did not parse");
        };
        assert!(
            args.into_settings()
                .is_ok_and(|parsed| parsed.settings.traffic_light)
        );
    }

    #[test]
    fn demo_flags_take_percentages_and_bounded_durations() {
        assert_eq!(parse_percent("30%"), Ok(30));
        assert_eq!(parse_percent("100"), Ok(100));
        assert!(parse_percent("150%").is_err() && parse_percent("-5%").is_err());
        assert_eq!(parse_demo_duration("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_demo_duration("0").is_err() && parse_demo_duration("2h").is_err());
        assert!(parse_demo_cycle("50ms").is_err() && parse_demo_cycle("250ms").is_ok());
    }

    #[test]
    fn clap_errors_name_the_help_of_the_command_they_are_in() {
        let lines = |words: &[&str]| match parse(words) {
            Err(error) => error.lines(),
            Ok(_) => panic!("{words:?} parsed"),
        };
        assert_eq!(
            lines(&["ringway", "runn"]),
            [
                "error: unrecognized subcommand 'runn' (see 'ringway --help')",
                "tip: a similar subcommand exists: 'run'"
            ]
        );
        assert_eq!(
            lines(&["ringway", "run", "--ouput", "x"]),
            [
                "error: unexpected argument '--ouput' found (see 'ringway run --help')",
                "tip: a similar argument exists: '--output'"
            ]
        );
        let check = lines(&["ringway", "check", "--max-line", "1M"]);
        assert_eq!(check.len(), 1, "{check:?}");
        assert!(
            check[0].ends_with("(see 'ringway check --help')"),
            "{check:?}"
        );
    }
}
