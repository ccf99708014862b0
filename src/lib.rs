//! ringway: a log data plane for dedicated Linux log hosts (the library;
//! `src/main.rs` is the thin binary that calls [`main`]).
//!
//! The stages of DESIGN §1, one module each: `input` (I/O workers on
//! io_uring), `cpu_worker` (framing, JSON checks, batching, with the
//! scanners of `scan`), `output` (`dispatcher`, `worker`, the sinks),
//! joined by `ring` and fed from `pool` (the buffer pool); beside them
//! `checkpoint` (acks, the store and its `writer` thread), `dead_letter`,
//! `signals`. `cli` and `config` read the command line, `pipeline` wires
//! and supervises the threads (the only module that names every stage),
//! `metrics` counts, `tls` loads the certificates of the TLS edges,
//! `auth` the bearer tokens of the OTLP inputs; `credentials` holds both
//! as the I/O workers see them and `reload` reads them anew at SIGHUP.

mod ack;
mod append;
mod auth;
mod batch;
mod checkpoint;
mod cli;
mod config;
mod config_file;
mod cpu_worker;
mod credentials;
mod dead_letter;
mod demo;
mod docs;
mod escape;
mod input;
mod json_parse;
mod metrics;
mod metrics_server;
mod output;
mod pattern;
mod pipeline;
mod pool;
mod reload;
mod ring;
mod scan;
mod signals;
mod sockopt;
mod source;
#[cfg(test)]
mod test_support;
mod tls;
mod top;
#[allow(dead_code)] // Being built: wired into the CPU worker next.
mod transform;
mod uring;

/// What the benchmark tools in `bench/` (built as cargo examples) use of
/// ringway, so they measure ringway's own code rather than copies of it:
/// the syslog converter, the HTTP/1.1 client of the `http`/`otlp` outputs,
/// and the request-head parser of the OTLP receiver. Not a stable API;
/// everything else stays private to the crate.
pub mod bench_api {
    pub use crate::input::otlp::http::{BodyLength, ContentType, Head, HeadResult, parse_head};
    pub use crate::output::http::{Client, Endpoint, Response};
    pub use crate::scan::syslog::SyslogParser;

    /// Parses one CRI line (no `\n`) and writes its JSON record at the
    /// start of `out` as the CPU worker does for a whole (`F`) line without
    /// metadata; returns the bytes written, `None` for a malformed line.
    /// `out` must hold `line.len() * 6 + 128` bytes.
    #[inline]
    pub fn cri_record(line: &[u8], out: &mut [u8]) -> Option<usize> {
        use crate::scan::cri::{Body, parse_cri, write_record};
        let parsed = parse_cri(line)?;
        Some(write_record(
            out,
            parsed.time,
            parsed.stream,
            Body::Text(parsed.message),
            &[],
        ))
    }

    /// Writes `bytes` as JSON string content at the start of `out` (which
    /// holds `bytes.len() * 6 + 64`), as container bodies are; returns the
    /// bytes written.
    #[inline]
    pub fn json_string(bytes: &[u8], out: &mut [u8]) -> usize {
        crate::escape::write_json_string_lossy(bytes, out)
    }

    /// Counts the lines of `bytes` as `format=raw` does.
    pub fn count_lines(bytes: &[u8]) -> usize {
        crate::scan::frame::count_lines(bytes)
    }
}

/// Tests count this thread's allocations, to check that the hot path makes
/// none (`allocations_on_this_thread`).
#[cfg(test)]
#[global_allocator]
static GLOBAL: test_alloc::Counting = test_alloc::Counting;

/// Exit code for a bad command line: one line on stderr, like clap's own.
const EXIT_USAGE: i32 = 2;
/// Exit code for an internal error (a bug): never reached from input data.
const EXIT_INTERNAL: i32 = 70;

/// The build targets x86-64-v3 (.cargo/config.toml); refuse to run where the
/// CPU lacks it rather than die on an illegal instruction later.
fn check_cpu_features() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
        ]
        .into_iter()
        .filter_map(|(name, present)| (!present).then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "this CPU lacks {} (x86-64-v3); rebuild with RUSTFLAGS=\"-C target-cpu=x86-64\"",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// The `ringway` command: parses the command line and runs the subcommand;
/// never returns (it exits with the subcommand's status).
pub fn main() -> ! {
    // A panic is a bug, never a reaction to input: report it on one line
    // and stop the whole process rather than leave a stage half-dead.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        eprintln!(
            "ringway: internal error in thread {}: {info}",
            thread.name().unwrap_or("unnamed")
        );
        std::process::exit(EXIT_INTERNAL);
    }));

    if let Err(message) = check_cpu_features() {
        eprintln!("ringway: error: {message}");
        std::process::exit(1);
    }
    let cli = match cli::parse_command_line() {
        Ok(cli) => cli,
        Err(cli::ParseError::Clap(error, _))
            if matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            for line in error.lines() {
                eprintln!("ringway: {line}");
            }
            std::process::exit(EXIT_USAGE);
        }
    };
    let args = match cli.command {
        cli::Command::Run(args) => {
            // From here SIGHUP, SIGINT and SIGTERM wait for the signal
            // thread (a reload during start-up must not kill the service).
            signals::block_termination_signals();
            args
        }
        cli::Command::Check(check) => std::process::exit(check.check()),
        cli::Command::Sql(args) => std::process::exit(pipeline::run_sql(
            &args.query,
            args.format,
            args.max_line,
            args.file.as_deref(),
        )),
        cli::Command::Top(args) => std::process::exit(top::run(&args.metrics)),
        cli::Command::Demo(args) => std::process::exit(demo::run(&args)),
        cli::Command::Completions(args) => std::process::exit(docs::completions(args.shell)),
        cli::Command::Internal(command) => std::process::exit(docs::internal(command)),
    };
    let parsed = match args.into_settings() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("ringway: error: {message}");
            std::process::exit(EXIT_USAGE);
        }
    };
    if parsed.embedded_default {
        eprintln!(
            "ringway: no --input given: running the embedded default, tailing {} from the end as raw lines and receiving syslog on {}, all to stdout.",
            cli::DEFAULT_INPUT.trim_start_matches("file:"),
            cli::DEFAULT_SYSLOG_INPUT.trim_start_matches("udp:"),
        );
        eprintln!(
            "ringway: send a test message with: logger -n 127.0.0.1 -P 5514 -d hello. Choose inputs and outputs with --input and --output; see 'ringway run --help'. Ctrl-C stops."
        );
    }
    std::process::exit(pipeline::run(parsed.settings));
}

#[cfg(test)]
mod test_alloc {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) struct Counting;

    // SAFETY: every call is forwarded to mimalloc unchanged; counting only
    // touches a const-initialised thread-local without a destructor.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
            // SAFETY: forwarded with the caller's layout.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc` above with this layout.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
            // SAFETY: forwarded unchanged.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }

    /// Allocations (and reallocations) made by the calling thread so far.
    pub(crate) fn allocations_on_this_thread() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }
}
