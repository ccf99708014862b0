//! The command line of DESIGN §7: `ringway run [--input SPEC]...
//! [--output SPEC]... [flags]`, parsed with clap into [`Settings`].
//!
//! Every error here is one line on stderr and exit code 2 (clap's tip, when
//! it has one, is a second line). `check` lists every problem, one line each;
//! `run` shows the first and how many more there are.

use crate::config::{
    self, Format, InputDefaults, InputSpec, OnInvalid, OtlpAck, OtlpSettings, OutputKind,
    OutputSpec, Settings, StartFrom,
};
use crate::config_file::ConfigFile;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Show a live view of a running ringway (read from its --metrics endpoint once a second): rates per
    /// input and output, and each stage's ring occupancy against its capacity. q or Ctrl-C quits.
    Top(TopArgs),
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

    /// An input, KIND:TARGET[,key=value]...: file:PATH_OR_GLOB[,format=…][,from=beginning|end],
    /// udp:ADDRESS:PORT[,format=…][,rcvbuf=SIZE][,sockets=N], tcp:ADDRESS:PORT[,format=…] (newline or
    /// octet-counted records), otlp:ADDRESS:PORT (OTLP/HTTP logs receiver, POST /v1/logs, protobuf or JSON)
    /// (IPv6 as [::1]:PORT) or stdin[,format=…] (standard input, a pipe, file or terminal, read to its end;
    /// no checkpoints; a run with only stdin ends at its EOF). Repeatable. Without any,
    /// the embedded default runs (file:/var/log/*.log from the end, and udp:127.0.0.1:5514,format=syslog, to stdout).
    #[arg(long = "input", value_name = "SPEC")]
    pub inputs: Vec<String>,

    /// An output: file:PATH (append), stdout, null (count and discard), tcp:HOST:PORT (NDJSON),
    /// http://HOST[:PORT]/PATH[,gzip] (NDJSON POST; also http:URL) or otlp:http://HOST:PORT/v1/logs[,gzip]
    /// (OTLP/HTTP protobuf). No https. Repeat to fan out; a batch is done when every output wrote it. [default: stdout]
    #[arg(long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,

    /// Format of every input without its own format=: raw (one record per line), json (NDJSON, checked with
    /// simd-json) or syslog (RFC 3164/5424, converted to one JSON object per message).
    #[arg(long, value_name = "FORMAT", default_value = "raw", value_parser = config::parse_format_flag)]
    pub format: Format,

    /// Where file inputs start in files that exist at start-up: beginning or end. Files that appear later are read from their beginning.
    #[arg(long, value_name = "WHERE", default_value = "beginning", value_parser = config::parse_from_flag)]
    pub from: StartFrom,

    /// What to do with a line that is not valid JSON under format=json.
    #[arg(long, value_name = "POLICY", value_enum, default_value = "raw")]
    pub on_invalid: OnInvalidArg,

    /// File that receives invalid lines with --on-invalid deadletter, and the lines of batches a network
    /// output's receiver rejected for good (HTTP 4xx other than 408/429) (appended).
    #[arg(long, value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,

    /// Longest line kept whole; longer ones are cut to this many bytes plus a newline (counted as truncated).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub max_line: usize,

    /// Bytes per io_uring read (each pooled buffer holds at least --max-line + 1 bytes).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub read_buf: usize,

    /// A batch is sent on once it holds this many bytes (capped at the buffer size).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = config::parse_size)]
    pub batch_bytes: usize,

    /// Longest a partly filled batch waits for more lines before it is sent on (0: never waits). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = config::parse_duration)]
    pub batch_linger: Duration,

    /// Capacity of each input's I/O → CPU ring, in batches.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub io_ring: usize,

    /// Capacity of each input's CPU → dispatcher ring, in batches.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub pipeline_ring: usize,

    /// Capacity of the dispatcher → worker slot of every output worker, in batches.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub worker_slot: usize,

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

    /// Connections one TCP input keeps open; at the limit a new connection is closed at once (counted).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub tcp_max_connections: usize,

    /// A TCP connection that sends nothing this long is closed (0: never). A bare number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = config::parse_duration)]
    pub tcp_idle_timeout: Duration,

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
}

/// The outcome of reading the command line.
pub(crate) struct Parsed {
    pub settings: Settings,
    /// The embedded default is running (no --input was given).
    pub embedded_default: bool,
}

/// A problem that validation found. Validation goes on past each one, so
/// `check` can list them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The settings are wrong as written: `run` and `check` exit 2.
    Invalid(String),
    /// The host lacks something `run` needs at start (an output's directory,
    /// a literal input file); the message says how to make it. `run` refuses
    /// to start; `check` only warns, because the config itself is valid and
    /// the service's unit (LogsDirectory=) or the operator creates it.
    MissingOnHost(String),
    /// Advice that only `check` gives, such as a relative path.
    Advice(String),
}

impl Problem {
    fn message(&self) -> &str {
        match self {
            Problem::Invalid(message)
            | Problem::MissingOnHost(message)
            | Problem::Advice(message) => message,
        }
    }

    fn with_message(&self, message: String) -> Problem {
        match self {
            Problem::Invalid(_) => Problem::Invalid(message),
            Problem::MissingOnHost(_) => Problem::MissingOnHost(message),
            Problem::Advice(_) => Problem::Advice(message),
        }
    }
}

/// What `run` prints for the problems that stop it: the first, on one line,
/// and how many more there are (`check` lists them all).
pub(crate) fn first_of(problems: &[String]) -> String {
    let first = problems.first().map_or("invalid settings", String::as_str);
    match problems.len() {
        0 | 1 => first.to_string(),
        n => format!(
            "{first} (and {} more; 'ringway check' with the same arguments lists every one)",
            n - 1
        ),
    }
}

/// Smallest `--stats-interval` other than 0 (off): shorter floods stderr
/// without telling more.
const MIN_STATS_INTERVAL: Duration = Duration::from_millis(100);

impl RunArgs {
    /// The validated settings for `run`: every problem but advice stops it;
    /// the message is the first (with a count of the rest), and names the
    /// config key that caused it.
    pub fn into_settings(self) -> Result<Parsed, String> {
        let (parsed, problems) = self.validate();
        let stopping: Vec<String> = problems
            .iter()
            .filter(|problem| !matches!(problem, Problem::Advice(_)))
            .map(|problem| problem.message().to_string())
            .collect();
        match parsed {
            Some(parsed) if stopping.is_empty() => Ok(parsed),
            _ => Err(first_of(&stopping)),
        }
    }

    /// Every problem of these settings, each naming the config key that
    /// caused it; the settings when none of them is [`Problem::Invalid`].
    pub fn validate(mut self) -> (Option<Parsed>, Vec<Problem>) {
        let loaded = self.loaded.take();
        let (parsed, problems) = self.settings_from_flags();
        let problems = problems
            .into_iter()
            .map(|problem| {
                let message = problem.message();
                match loaded.as_ref().and_then(|config| config.blame(message)) {
                    Some(blame) => problem.with_message(format!("{message} {blame}")),
                    None => problem,
                }
            })
            .collect();
        (parsed, problems)
    }

    fn settings_from_flags(self) -> (Option<Parsed>, Vec<Problem>) {
        let mut problems = Vec::new();
        macro_rules! invalid {
            ($message:expr $(,)?) => {
                problems.push(Problem::Invalid($message))
            };
        }
        let embedded_default = self.inputs.is_empty();
        if embedded_default && self.exit_on_eof {
            invalid!(
                "--exit-on-eof needs a file or stdin input (--input file:PATH or --input stdin); the embedded default only tails"
                    .to_string(),
            );
        }
        if let Err(error) = positive("--udp-sockets", self.udp_sockets, config::MAX_UDP_SOCKETS) {
            invalid!(error);
        }
        if !(1..=crate::config::MAX_UDP_PAYLOAD).contains(&self.udp_max_datagram) {
            invalid!(format!(
                "--udp-max-datagram must be between 1 and {} bytes",
                crate::config::MAX_UDP_PAYLOAD
            ));
        }
        for (flag, value, max) in [
            ("--io-ring", self.io_ring, 1 << 16),
            ("--pipeline-ring", self.pipeline_ring, 1 << 16),
            ("--worker-slot", self.worker_slot, 1 << 16),
            ("--output-workers", self.output_workers, MAX_OUTPUT_WORKERS),
            ("--max-open-files", self.max_open_files, 1 << 20),
            ("--otlp-max-connections", self.otlp_max_connections, 1 << 16),
            ("--tcp-max-connections", self.tcp_max_connections, 1 << 16),
        ] {
            if let Err(error) = positive(flag, value, max) {
                invalid!(error);
            }
        }
        if !(8..=32768).contains(&self.uring_depth) {
            invalid!(format!(
                "--uring-depth must be between 8 and 32768, not {}",
                self.uring_depth
            ));
        }
        if self.max_line == 0 || self.max_line > 1 << 30 {
            invalid!("--max-line must be between 1 byte and 1GiB".to_string());
        }
        if self.read_buf < 4096 || self.read_buf > 1 << 30 {
            invalid!("--read-buf must be between 4KiB and 1GiB".to_string());
        }
        if self.batch_bytes == 0 {
            invalid!("--batch-bytes must be at least 1 byte".to_string());
        }
        if self.max_body < 64 || self.max_body > 1 << 30 {
            invalid!("--max-body must be between 64 bytes and 1GiB".to_string());
        }
        if self.otlp_read_timeout.is_zero() {
            invalid!("--otlp-read-timeout must be above 0".to_string());
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            invalid!("--retry-initial must be above 0 and at most --retry-max".to_string());
        }
        if self.output_timeout.is_zero() {
            invalid!("--output-timeout must be above 0".to_string());
        }
        if !self.stats_interval.is_zero() && self.stats_interval < MIN_STATS_INTERVAL {
            invalid!(format!(
                "--stats-interval must be 0 (off) or at least {}, not {}",
                config::format_duration(MIN_STATS_INTERVAL),
                config::format_duration(self.stats_interval)
            ));
        }

        let defaults = InputDefaults {
            format: self.format,
            from: self.from,
            udp_rcvbuf_bytes: self.udp_rcvbuf,
            udp_sockets: self.udp_sockets,
        };
        let mut inputs: Vec<InputSpec> = Vec::new();
        if embedded_default {
            let tail_defaults = InputDefaults {
                format: Format::Raw,
                from: StartFrom::End,
                ..defaults
            };
            for spec in [DEFAULT_INPUT, DEFAULT_SYSLOG_INPUT] {
                match config::parse_input_spec(spec, &tail_defaults) {
                    Ok(input) => inputs.push(input),
                    Err(error) => invalid!(error),
                }
            }
        }
        for spec in &self.inputs {
            let input = match config::parse_input_spec(spec, &defaults) {
                Ok(input) => input,
                Err(error) => {
                    invalid!(error);
                    continue;
                }
            };
            if let Some(pattern) = input.file_pattern() {
                if let Err(error) = crate::pattern::check_pattern(pattern, self.exit_on_eof) {
                    let message = format!("input '{spec}': {error}");
                    // A literal file that is not there yet is the host's
                    // business, not the config's.
                    if std::fs::metadata(pattern)
                        .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
                    {
                        problems.push(Problem::MissingOnHost(message));
                    } else {
                        problems.push(Problem::Invalid(message));
                    }
                }
                if !std::path::Path::new(pattern).is_absolute() {
                    problems.push(relative(&format!("input '{spec}'")));
                }
            }
            inputs.push(input);
        }
        let stdin_inputs = inputs
            .iter()
            .filter(|input| input.kind == config::InputKind::Stdin)
            .count();
        if stdin_inputs > 1 {
            invalid!("standard input can be read by one input only (--input stdin)".to_string());
        }
        // Only when every --input parsed: a bad one is reported already.
        if self.exit_on_eof
            && !embedded_default
            && inputs.len() == self.inputs.len()
            && !inputs.iter().any(config::InputSpec::reaches_eof)
        {
            invalid!(
                "--exit-on-eof needs a file or stdin input (--input file:PATH or --input stdin); network inputs never reach EOF"
                    .to_string(),
            );
        }
        // Standard input ends; a run that reads nothing else ends with it,
        // as if --exit-on-eof were given.
        let exit_on_eof = self.exit_on_eof || stdin_inputs == inputs.len();
        if inputs.len() > MAX_INPUTS {
            invalid!(format!("at most {MAX_INPUTS} inputs are supported"));
        }
        let mut outputs: Vec<OutputSpec> = Vec::new();
        let mut directories = Vec::new();
        for spec in &self.outputs {
            match config::parse_output_spec(spec) {
                Ok(output) => {
                    if let OutputKind::File(path) = &output.kind {
                        directories.push((format!("output '{spec}'"), spec.clone(), path.clone()));
                    }
                    outputs.push(output);
                }
                Err(error) => invalid!(error),
            }
        }
        if outputs.is_empty() && self.outputs.is_empty() {
            outputs.push(config::parse_output_spec("stdout").expect("a valid SPEC"));
        }
        if let Err(error) =
            check_outputs_are_not_inputs(&inputs, &outputs, self.dead_letter.as_deref())
        {
            invalid!(error);
        }
        if outputs.len() > crate::config::MAX_OUTPUTS {
            invalid!(format!(
                "at most {} outputs are supported",
                crate::config::MAX_OUTPUTS
            ));
        }
        let on_invalid = match self.on_invalid {
            OnInvalidArg::Drop => OnInvalid::Drop,
            OnInvalidArg::Raw => OnInvalid::Raw,
            OnInvalidArg::Deadletter => OnInvalid::DeadLetter,
        };
        if on_invalid == OnInvalid::DeadLetter && self.dead_letter.is_none() {
            invalid!("--on-invalid deadletter needs --dead-letter PATH".to_string());
        }
        if let Some(dir) = &self.data_dir
            && dir.exists()
            && !dir.is_dir()
        {
            invalid!(format!("--data-dir {} is not a directory", dir.display()));
        }
        if let Some(path) = &self.dead_letter {
            directories.push((
                "--dead-letter".to_string(),
                "--dead-letter".to_string(),
                path.clone(),
            ));
        }
        for (what, name, path) in &directories {
            problems.extend(check_output_directory(name, path));
            if !path.is_absolute() {
                problems.push(relative(what));
            }
        }
        for (what, path) in [
            ("--data-dir", &self.data_dir),
            ("--summary-json", &self.summary_json),
        ] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                problems.push(relative(what));
            }
        }
        // Reported after every other check, so a bad key is named first.
        if embedded_default && let Some(path) = &self.config {
            problems.push(Problem::Invalid(format!(
                "config {} has no [[input]] table and no --input was given",
                path.display()
            )));
        }
        if problems
            .iter()
            .any(|problem| matches!(problem, Problem::Invalid(_)))
        {
            return (None, problems);
        }
        let mut settings = Settings {
            inputs,
            outputs,
            on_invalid,
            dead_letter: self.dead_letter,
            max_line_bytes: self.max_line,
            read_buffer_bytes: self.read_buf,
            batch_bytes: self.batch_bytes,
            batch_linger: self.batch_linger,
            io_ring_capacity: self.io_ring,
            pipeline_ring_capacity: self.pipeline_ring,
            worker_slot_capacity: self.worker_slot,
            output_workers: self.output_workers,
            cpus: self.cpus.map(|list| list.0),
            uring_depth: self.uring_depth,
            sqpoll: self.sqpoll,
            max_open_files: self.max_open_files,
            udp_max_datagram_bytes: self.udp_max_datagram,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
            output_timeout: self.output_timeout,
            stats_interval: (!self.stats_interval.is_zero()).then_some(self.stats_interval),
            stats_format: self.stats_format,
            exit_on_eof,
            summary_json: self.summary_json,
            shutdown_timeout: self.shutdown_timeout,
            data_dir: self.data_dir,
            checkpoint_interval: self.checkpoint_interval,
            fsync: self.fsync,
            otlp: OtlpSettings {
                ack: match self.otlp_ack {
                    OtlpAckArg::Accepted => OtlpAck::Accepted,
                    OtlpAckArg::Delivered => OtlpAck::Delivered,
                },
                // Whole seconds, rounded up: 1.5s asks for 2.
                retry_after_s: self.otlp_retry_after.as_secs()
                    + u64::from(self.otlp_retry_after.subsec_nanos() > 0),
                max_body_bytes: self.max_body,
                max_connections: self.otlp_max_connections,
                read_timeout: self.otlp_read_timeout,
                idle_timeout: self.otlp_idle_timeout,
            },
            tcp_max_connections: self.tcp_max_connections,
            tcp_idle_timeout: self.tcp_idle_timeout,
            metrics_address: self.metrics,
        };
        settings.batch_bytes = settings.batch_bytes.min(settings.buffer_bytes());
        (
            Some(Parsed {
                settings,
                embedded_default,
            }),
            problems,
        )
    }
}

/// The advice for a relative path: the service runs in `/`.
fn relative(what: &str) -> Problem {
    Problem::Advice(format!(
        "{what}: the path is relative, so it depends on the working directory (/ under systemd); use an absolute path"
    ))
}

/// An output (or the dead-letter file) that an input also reads would feed
/// itself without end. Paths are compared as typed, then as what they
/// resolve to: the (device, inode) of the files, and of the directory the
/// output is (or will be) created in against the directories a glob reads,
/// so a symlink, a symlinked directory or a hard link is caught too. The
/// file input checks again whenever it opens a file (see
/// `input::file::WrittenFiles`): a match that appears only later is skipped.
fn check_outputs_are_not_inputs(
    inputs: &[InputSpec],
    outputs: &[OutputSpec],
    dead_letter: Option<&std::path::Path>,
) -> Result<(), String> {
    let written = outputs
        .iter()
        .filter_map(|output| match &output.kind {
            OutputKind::File(path) => Some((output.name.as_str(), path.as_path())),
            _ => None,
        })
        .chain(dead_letter.map(|path| ("--dead-letter", path)));
    for (name, path) in written {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let landing = Landing::of(&absolute);
        for input in inputs {
            let Some(pattern) = input.file_pattern() else {
                continue;
            };
            let pattern_path =
                std::path::absolute(pattern).unwrap_or_else(|_| PathBuf::from(pattern));
            // As the file input expands a glob: `*` stops at `/`, so
            // /var/log/*.log does not read /var/log/ringway/out.log.
            let options = glob::MatchOptions {
                require_literal_separator: true,
                ..glob::MatchOptions::new()
            };
            let reads_it = pattern_path == absolute
                || glob::Pattern::new(&pattern_path.to_string_lossy())
                    .is_ok_and(|pattern| pattern.matches_path_with(&absolute, options));
            if reads_it {
                return Err(format!(
                    "{name} is also read by input '{}'; ringway would read back its own output",
                    input.name
                ));
            }
            if let Some(how) = landing.read_by(pattern) {
                return Err(format!(
                    "{name} {how}, which input '{}' reads; ringway would read back its own output",
                    input.name
                ));
            }
        }
    }
    Ok(())
}

/// Most entries a glob is expanded to for the start-up check.
const MAX_CHECKED_MATCHES: usize = 100_000;

/// Where writes to an output path land, once symlinks are followed.
struct Landing {
    /// The file's (device, inode), when it exists.
    file: Option<(u64, u64)>,
    /// The (device, inode) of the directory the file is, or will be
    /// created, in.
    directory: Option<(u64, u64)>,
    /// The name it has (or will have) there.
    name: std::ffi::OsString,
}

impl Landing {
    fn of(path: &std::path::Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let identity = |path: &std::path::Path| {
            std::fs::metadata(path)
                .ok()
                .map(|metadata| (metadata.dev(), metadata.ino()))
        };
        // A symlink (even a dangling one) is followed: opening the output
        // creates or appends to its target. Bounded like the kernel's own
        // limit on nested links.
        let mut path = path.to_path_buf();
        for _ in 0..40 {
            let is_link = std::fs::symlink_metadata(&path)
                .is_ok_and(|metadata| metadata.file_type().is_symlink());
            let Some(target) = is_link.then(|| std::fs::read_link(&path).ok()).flatten() else {
                break;
            };
            let base = path.parent().map(std::path::Path::to_path_buf);
            path = match base {
                Some(base) if target.is_relative() => base.join(target),
                _ => target,
            };
        }
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        Self {
            file: identity(&path),
            directory: identity(directory),
            name: path.file_name().unwrap_or_default().to_os_string(),
        }
    }

    /// How the input `pattern` reads this output, if it does: a file it
    /// names or matches is the output's file, or a directory its glob reads
    /// is the output's directory and the glob matches the output's name.
    fn read_by(&self, pattern: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let identity = |path: &std::path::Path| {
            std::fs::metadata(path)
                .ok()
                .map(|metadata| (metadata.dev(), metadata.ino()))
        };
        let expand = |pattern: &str| -> Vec<PathBuf> {
            if !crate::pattern::is_glob(pattern) {
                return vec![PathBuf::from(pattern)];
            }
            glob::glob(pattern)
                .map(|paths| paths.flatten().take(MAX_CHECKED_MATCHES).collect())
                .unwrap_or_default()
        };
        if let Some(file) = self.file {
            for matched in expand(pattern) {
                if identity(&matched) == Some(file) {
                    return Some(format!(
                        "is the same file as {} (same device and inode: a symlink or hard link)",
                        matched.display()
                    ));
                }
            }
        }
        if !crate::pattern::is_glob(pattern) {
            return None;
        }
        let pattern_path = std::path::Path::new(pattern);
        let name_pattern = glob::Pattern::new(&pattern_path.file_name()?.to_string_lossy()).ok()?;
        if !name_pattern.matches(&self.name.to_string_lossy()) {
            return None;
        }
        let directory_pattern = match pattern_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_string_lossy().into_owned(),
            _ => ".".to_string(),
        };
        let directory = self.directory?;
        expand(&directory_pattern)
            .into_iter()
            .find(|matched| identity(matched) == Some(directory))
            .map(|matched| {
                format!(
                    "is written into {} under a name the glob matches (the same directory)",
                    matched.display()
                )
            })
    }
}

fn positive(flag: &str, value: usize, max: usize) -> Result<(), String> {
    if value == 0 || value > max {
        return Err(format!("{flag} must be between 1 and {max}, not {value}"));
    }
    Ok(())
}

/// An output file's directory must exist: otherwise every write would fail
/// and be retried forever. A missing one is for the host to make (the
/// message says how); a directory where the file should be is a mistake.
fn check_output_directory(name: &str, path: &std::path::Path) -> Option<Problem> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    if !directory.is_dir() {
        let shown = directory.display();
        // The service's LogsDirectory= makes this one at each start.
        let service = if directory.starts_with("/var/log/ringway") {
            " (the ringway service's unit creates /var/log/ringway)"
        } else {
            ""
        };
        return Some(Problem::MissingOnHost(format!(
            "{name}: directory {shown} does not exist; create it with: mkdir -p {shown}{service}"
        )));
    }
    if path.is_dir() {
        return Some(Problem::Invalid(format!(
            "{name}: {} is a directory",
            path.display()
        )));
    }
    None
}

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
        }
        if on_command_line("outputs") {
            file.outputs.clear();
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
                config_error(vec![format!("{first} {blame}").trim_end().to_string()])
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

/// Every scalar flag of `run` with its resolved value as TOML and where it
/// came from: sizes in bytes, durations in one spelling (`1m`, `250ms`),
/// CPU lists expanded, each with what was typed when that differs.
fn effective_settings(
    run: &clap::Command,
    given: &ArgMatches,
    config: Option<&ConfigFile>,
) -> Vec<(String, Option<String>, String)> {
    let from_config: Vec<&str> = config
        .map(|config| config.keys().map(|(_, flag)| flag).collect())
        .unwrap_or_default();
    run.get_arguments()
        .filter(|arg| {
            !["inputs", "outputs", "config", "help", "version"].contains(&arg.get_id().as_str())
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
        for (key, value, source) in &self.effective {
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}  # {source}\n")),
                None => out.push_str(&format!("# {key}: not set\n")),
            }
        }
        for input in &parsed.settings.inputs {
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
                config::InputKind::Tcp { address } => {
                    ("tcp", ("address", address.to_string()), String::new())
                }
                config::InputKind::Otlp { address } => {
                    ("otlp", ("address", address.to_string()), String::new())
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
            }
            out.push_str(&extra);
        }
        for output in &parsed.settings.outputs {
            out.push_str(&format!("\n[[output]]  # {}\n", output.name));
            let rest = output.name.split_once(':').map_or("", |(_, rest)| rest);
            match &output.kind {
                OutputKind::File(path) => out.push_str(&format!(
                    "kind = \"file\"\npath = {}\n",
                    toml_value(&path.to_string_lossy())
                )),
                OutputKind::Stdout | OutputKind::Null => {
                    out.push_str(&format!("kind = \"{}\"\n", output.name));
                }
                OutputKind::Tcp { .. } => {
                    out.push_str(&format!("kind = \"tcp\"\naddress = {}\n", toml_value(rest)))
                }
                OutputKind::Http(target) | OutputKind::Otlp(target) => {
                    let kind = if matches!(output.kind, OutputKind::Otlp(_)) {
                        "otlp"
                    } else {
                        "http"
                    };
                    // `http://…` is its own URL; `http:URL` and `otlp:URL` wrap one.
                    let url = if output.name.starts_with("http://") {
                        output.name.as_str()
                    } else {
                        rest
                    };
                    let url = url.strip_suffix(",gzip").unwrap_or(url);
                    out.push_str(&format!(
                        "kind = \"{kind}\"\nurl = {}\ngzip = {}\n",
                        toml_value(url),
                        target.gzip
                    ));
                }
            }
        }
        print!("{out}");
        0
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
                    Command::Top(_) | Command::Completions(_) | Command::Internal(_) => {
                        unreachable!()
                    }
                };
                assert_eq!(run.cpus, Some(config::CpuList(cpus.clone())), "{list}");
            }
        }
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
