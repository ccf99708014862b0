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
//! "parse_errors", "passes", "runs", "allocations", "median_s",
//! "messages_per_s", "mb_per_s"} (rates are per core: one thread does all
//! the work). It uses ringway's own converter (`ringway::bench_api`), and a
//! counting global allocator: `allocations` is how many allocations the
//! timed runs made, and anything but 0 fails the run (exit 1).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ringway::bench_api::SyslogParser;

#[path = "bench_args.rs"]
mod bench_args;

/// Counts every allocation and reallocation of the process, so the run can
/// check that converting a line allocates nothing (ringway's CPU worker
/// calls the converter once per record on its hot path). One thread does
/// all the work, so a process-wide count is this thread's count.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// count is a relaxed atomic add, which neither allocates nor blocks.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

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
    let (passes, mut files) = bench_args::passes_and_files(usage_error);
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
    let allocations_before = allocations();
    for _ in 0..RUNS {
        let started = Instant::now();
        for _ in 0..passes {
            black_box(convert_all(&mut parser, &lines, &mut out));
        }
        times_s.push(started.elapsed().as_secs_f64());
    }
    // `times_s` has its capacity already: nothing above allocates but the
    // converter, which must not.
    let allocations_in_runs = allocations() - allocations_before;
    times_s.sort_by(f64::total_cmp);
    let median_s = times_s[RUNS / 2];
    let messages = (lines.len() * passes) as f64;
    println!(
        "{{\"files\": {:?}, \"lines\": {}, \"bytes\": {bytes}, \"parsed\": {parsed}, \"parse_errors\": {}, \"passes\": {passes}, \"runs\": {RUNS}, \"allocations\": {allocations_in_runs}, \"median_s\": {median_s:.4}, \"messages_per_s\": {:.0}, \"mb_per_s\": {:.1}}}",
        files,
        lines.len(),
        lines.len() - parsed,
        messages / median_s,
        (bytes * passes) as f64 / 1e6 / median_s,
    );
    if allocations_in_runs != 0 {
        eprintln!(
            "syslog_parse: error: converting {} lines allocated {allocations_in_runs} times; \
             the converter must not allocate",
            lines.len() * passes * RUNS
        );
        std::process::exit(1);
    }
}
