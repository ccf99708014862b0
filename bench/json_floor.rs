//! The machine's floor for `format=json`: how fast simd-json alone checks
//! the lines of a file on one core — no I/O, no rings, no other threads.
//! bench/file_throughput.py compares ringway's file→null json against it.
//!
//! Like ringway, it works through the file 1 MiB at a time in a buffer that
//! stays in cache: each window is copied in (untimed, as a read would), then
//! its lines are found with memchr and each is checked exactly as ringway's
//! CPU worker does (copy into a padded scratch buffer, `fill_tape_padded`
//! with reused parser buffers and tape). Only the checking is timed.
//!
//! Usage: cargo run --release --example json_floor -- FILE [REPS]
//! Prints one JSON object: {"bytes", "lines", "invalid", "per_line_median_s",
//! "per_line_mb_per_s"}.

use simd_json::{Buffers, INPUT_PADDING, Tape};
use std::time::{Duration, Instant};

/// Bytes copied into the cache-resident window at a time (ringway's default
/// read size).
const WINDOW_BYTES: usize = 1 << 20;

struct Checker {
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
}

impl Checker {
    fn is_valid(&mut self, line: &[u8]) -> bool {
        self.scratch[..line.len()].copy_from_slice(line);
        let mut tape = self.tape.take().expect("returned after each parse").reset();
        let ok = simd_json::fill_tape_padded(
            &mut self.scratch[..line.len() + INPUT_PADDING],
            line.len(),
            &mut self.buffers,
            &mut tape,
        )
        .is_ok();
        self.tape = Some(tape.reset());
        ok
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: json_floor FILE [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let data = std::fs::read(&path).unwrap_or_else(|error| {
        eprintln!("json_floor: cannot read {path}: {error}");
        std::process::exit(1);
    });
    let longest = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    if longest > WINDOW_BYTES {
        eprintln!("json_floor: a line is longer than {WINDOW_BYTES} bytes");
        std::process::exit(1);
    }
    let mut checker = Checker {
        scratch: vec![0u8; longest + INPUT_PADDING + 1],
        buffers: Buffers::new(longest + 1),
        tape: Some(Tape::null()),
    };
    let mut window = vec![0u8; WINDOW_BYTES];
    let mut times = Vec::new();
    let (mut lines, mut invalid) = (0usize, 0usize);
    for _ in 0..reps {
        (lines, invalid) = (0, 0);
        let mut checking = Duration::ZERO;
        let mut start = 0;
        while start < data.len() {
            // A window of whole lines, copied in untimed.
            let limit = (start + WINDOW_BYTES).min(data.len());
            let end = match memchr::memrchr(b'\n', &data[start..limit]) {
                Some(newline) if limit < data.len() => start + newline + 1,
                _ => limit,
            };
            let bytes = &mut window[..end - start];
            bytes.copy_from_slice(&data[start..end]);
            let started = Instant::now();
            let mut line_start = 0;
            while line_start < bytes.len() {
                let line_end = memchr::memchr(b'\n', &bytes[line_start..])
                    .map_or(bytes.len(), |offset| line_start + offset);
                if line_end > line_start {
                    lines += 1;
                    invalid += usize::from(!checker.is_valid(&bytes[line_start..line_end]));
                }
                line_start = line_end + 1;
            }
            checking += started.elapsed();
            start = end;
        }
        times.push(checking.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"bytes\": {}, \"lines\": {lines}, \"invalid\": {invalid}, \"per_line_median_s\": {median:.4}, \"per_line_mb_per_s\": {:.1}}}",
        data.len(),
        data.len() as f64 / 1e6 / median
    );
}
