//! How fast `SyslogParser` turns syslog lines into JSON on one core: no I/O,
//! no rings, no other threads — the floor for `format=syslog`.
//!
//! The lines of the files (default: the loghub samples in ../shared/data)
//! are loaded once; each run converts every line PASSES times into one
//! reused output buffer, timed as a whole. PASSES defaults to what makes one
//! run last about a second. The median of 5 runs is reported.
//!
//! Usage: cargo run --release --example syslog_parse -- [--passes N] [FILE]...
//! Prints one JSON object: {"files", "lines", "bytes", "parsed",
//! "parse_errors", "passes", "runs", "median_s", "messages_per_s",
//! "mb_per_s"} (rates are per core: one thread does all the work).

#[path = "../src/scan/syslog.rs"]
#[allow(dead_code)]
mod syslog;

/// The JSON escaper the parser writes strings with.
#[path = "../src/escape.rs"]
#[allow(dead_code)]
mod escape;

/// The parser's tests call `crate::test_alloc`; ringway's crate has a
/// counting allocator there. `cargo test --examples` compiles them here
/// too, where this stub keeps them compiling (and the allocation check
/// vacuous: it is ringway's test run that checks it).
#[cfg(test)]
mod test_alloc {
    pub(crate) fn allocations_on_this_thread() -> u64 {
        0
    }
}

use std::hint::black_box;
use std::time::Instant;
use syslog::SyslogParser;

const DEFAULT_FILES: [&str; 3] = [
    "../shared/data/loghub/Linux_2k.log",
    "../shared/data/loghub/OpenSSH_2k.log",
    "../shared/data/loghub/Thunderbird_2k.log",
];
/// Runs timed; the median is reported.
const RUNS: usize = 5;
/// How long one run should last when --passes is not given.
const TARGET_RUN_SECONDS: f64 = 1.0;
/// How long the untimed warm-up that sizes a run lasts.
const CALIBRATION_SECONDS: f64 = 0.2;

fn usage_error(message: &str) -> ! {
    eprintln!("syslog_parse: {message}");
    eprintln!("usage: syslog_parse [--passes N] [FILE]...");
    std::process::exit(2);
}

/// Converts every line once; returns (parsed, JSON bytes written).
fn convert_all(parser: &mut SyslogParser, lines: &[&[u8]], out: &mut [u8]) -> (usize, usize) {
    let mut parsed = 0;
    let mut written = 0;
    for line in lines {
        let (bytes, ok) = parser.write_json(black_box(line), out);
        parsed += usize::from(ok);
        written += bytes;
    }
    black_box(&out[..written.min(out.len())]);
    (parsed, written)
}

fn main() {
    let mut passes: Option<usize> = None;
    let mut files: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--passes" {
            let value = args
                .next()
                .unwrap_or_else(|| usage_error("--passes needs a number"));
            passes = Some(
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage_error("--passes needs a positive number")),
            );
        } else if arg.starts_with("--") {
            usage_error(&format!("unknown flag {arg}"));
        } else {
            files.push(arg);
        }
    }
    if files.is_empty() {
        files = DEFAULT_FILES.map(String::from).to_vec();
    }
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|path| {
            std::fs::read(path).unwrap_or_else(|error| {
                eprintln!("syslog_parse: cannot read {path}: {error}");
                std::process::exit(1);
            })
        })
        .collect();
    let lines: Vec<&[u8]> = data
        .iter()
        .flat_map(|bytes| bytes.split(|&byte| byte == b'\n'))
        .filter(|line| !line.is_empty())
        .collect();
    if lines.is_empty() {
        usage_error("no lines to convert");
    }
    let bytes: usize = lines.iter().map(|line| line.len()).sum();
    let longest = lines.iter().map(|line| line.len()).max().unwrap_or(0);

    let mut parser = SyslogParser::new();
    let mut out = vec![0u8; SyslogParser::max_json_bytes(longest)];

    // Untimed passes warm caches, branch predictors and the clock
    // frequency, and size the run.
    let (parsed, _) = convert_all(&mut parser, &lines, &mut out);
    let started = Instant::now();
    let mut warm_passes = 0;
    while warm_passes == 0 || started.elapsed().as_secs_f64() < CALIBRATION_SECONDS {
        convert_all(&mut parser, &lines, &mut out);
        warm_passes += 1;
    }
    let pass_s = started.elapsed().as_secs_f64() / f64::from(warm_passes);
    let passes = passes.unwrap_or(((TARGET_RUN_SECONDS / pass_s).ceil() as usize).max(1));

    let mut times_s = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..passes {
            black_box(convert_all(&mut parser, &lines, &mut out));
        }
        times_s.push(started.elapsed().as_secs_f64());
    }
    times_s.sort_by(f64::total_cmp);
    let median_s = times_s[RUNS / 2];
    let messages = (lines.len() * passes) as f64;
    println!(
        "{{\"files\": {:?}, \"lines\": {}, \"bytes\": {bytes}, \"parsed\": {parsed}, \"parse_errors\": {}, \"passes\": {passes}, \"runs\": {RUNS}, \"median_s\": {median_s:.4}, \"messages_per_s\": {:.0}, \"mb_per_s\": {:.1}}}",
        files,
        lines.len(),
        lines.len() - parsed,
        messages / median_s,
        (bytes * passes) as f64 / 1e6 / median_s,
    );
}
