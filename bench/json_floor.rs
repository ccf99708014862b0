//! The machine's floor for `format=json`: how fast simd-json alone checks
//! the lines of a file on one core, with the file already in memory and
//! nothing else running — no I/O, no rings, no threads. ringway's file→null
//! json throughput is compared against this in bench/file_throughput.py.
//!
//! It checks each line exactly as ringway's CPU worker does (copy into a
//! padded scratch buffer, `fill_tape_padded` with reused buffers and tape).
//!
//! Usage: cargo run --release --example json_floor -- FILE [REPS]
//! Prints one JSON object: {"bytes", "lines", "invalid", "per_line_median_s",
//! "per_line_mb_per_s", "grouped_median_s", "grouped_mb_per_s"}.

use simd_json::{Buffers, INPUT_PADDING, Tape};
use std::time::Instant;

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
    let mut scratch = vec![0u8; longest + INPUT_PADDING + 1];
    let mut buffers = Buffers::new(longest + 1);
    let mut kept: Option<Tape<'static>> = Some(Tape::null());
    let mut times = Vec::new();
    let mut lines = 0;
    let mut invalid = 0;
    for _ in 0..reps {
        lines = 0;
        invalid = 0;
        let started = Instant::now();
        for line in data.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            lines += 1;
            scratch[..line.len()].copy_from_slice(line);
            let mut tape = kept.take().expect("returned after each parse").reset();
            let ok = simd_json::fill_tape_padded(
                &mut scratch[..line.len() + INPUT_PADDING],
                line.len(),
                &mut buffers,
                &mut tape,
            )
            .is_ok();
            invalid += usize::from(!ok);
            kept = Some(tape.reset());
        }
        times.push(started.elapsed().as_secs_f64());
    }
    // The same lines checked 64 KiB at a time as one array `[l1,l2,...]`
    // (how ringway's CPU worker amortises the per-call cost).
    let mut group_scratch = vec![0u8; (64 << 10) + longest + 2 + INPUT_PADDING];
    let mut group_buffers = Buffers::new(group_scratch.len());
    let mut group_times = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let mut start = 0;
        while start < data.len() {
            let mut end = (start + (64 << 10)).min(data.len());
            if end < data.len() {
                end = match data[start..end].iter().rposition(|&b| b == b'\n') {
                    Some(at) => start + at + 1,
                    None => data.len(),
                };
            }
            let group = &data[start..end];
            let len = group.len() + 1;
            group_scratch[0] = b'[';
            group_scratch[1..len].copy_from_slice(group);
            for newline in memchr::memchr_iter(b'\n', group) {
                group_scratch[newline + 1] = b',';
            }
            group_scratch[len - 1] = b']';
            let mut tape = kept.take().expect("returned after each parse").reset();
            let ok = simd_json::fill_tape_padded(
                &mut group_scratch[..len + INPUT_PADDING],
                len,
                &mut group_buffers,
                &mut tape,
            )
            .is_ok();
            assert!(ok || invalid > 0, "a group of valid lines parses");
            kept = Some(tape.reset());
            start = end;
        }
        group_times.push(started.elapsed().as_secs_f64());
    }
    group_times.sort_by(f64::total_cmp);
    let group_median = group_times[group_times.len() / 2];
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"bytes\": {}, \"lines\": {lines}, \"invalid\": {invalid}, \"per_line_median_s\": {median:.4}, \"per_line_mb_per_s\": {:.1}, \"grouped_median_s\": {group_median:.4}, \"grouped_mb_per_s\": {:.1}}}",
        data.len(),
        data.len() as f64 / 1e6 / median,
        data.len() as f64 / 1e6 / group_median
    );
}
