//! How fast one core turns CRI lines into JSON records, beside what the
//! raw passthrough does to the same bytes: no I/O, no rings, no other
//! threads. It splits a `cri file→null` figure (bench/containers.py) into
//! the work of the CPU stage alone, so a change to the parser or the
//! escaper can be measured without the pipeline's noise.
//!
//! The file is read into memory once. Each pass goes over all of it, with
//! ringway's own code (`ringway::bench_api`):
//!
//!   count   the lines counted (`format=raw`'s per-batch work)
//!   copy    the bytes copied into a 1 MiB buffer (the floor of writing them)
//!   escape  each whole line written as JSON string content (the escaper alone)
//!   cri     each line parsed as CRI and written as its JSON record
//!           (`{"time","stream","body"}`, no joins, no pod fields)
//!
//! Records go into one reused 1 MiB buffer, started again when the next
//! could not fit, as the CPU worker fills its encode buffers. Each mode
//! runs PASSES times a run (default: about a second's worth), 5 runs; the
//! median run is reported.
//!
//! Usage: cargo run --release --example cri_convert -- [--passes N] FILE
//! Prints one JSON object: {"file", "lines", "bytes", "malformed",
//! "passes", then per mode "<mode>_lines_per_s" and "<mode>_mb_per_s"
//! (input bytes), and "cri_vs_count"}. A malformed CRI line makes the run
//! fail (exit 1): the figure would not be CRI's.

use std::hint::black_box;
use std::time::Instant;

use ringway::bench_api::{count_lines, cri_record, json_string};

#[path = "bench_args.rs"]
mod bench_args;

/// Runs timed per mode; the median is reported.
const RUNS: usize = 5;
const TARGET_RUN_SECONDS: f64 = 1.0;
const OUT_BYTES: usize = 1 << 20;

fn usage_error(message: &str) -> ! {
    eprintln!("cri_convert: {message}");
    eprintln!("usage: cri_convert [--passes N] FILE");
    std::process::exit(2);
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Count,
    Copy,
    Escape,
    Cri,
}

const MODES: [(Mode, &str); 4] = [
    (Mode::Count, "count"),
    (Mode::Copy, "copy"),
    (Mode::Escape, "escape"),
    (Mode::Cri, "cri"),
];

/// One pass of `mode` over `data`; returns the records it made (lines for
/// `count` and `copy`) and the malformed lines.
fn pass(mode: Mode, data: &[u8], out: &mut [u8]) -> (usize, usize) {
    match mode {
        Mode::Count => (count_lines(black_box(data)), 0),
        Mode::Copy => {
            for chunk in data.chunks(OUT_BYTES) {
                out[..chunk.len()].copy_from_slice(chunk);
                black_box(&out[..chunk.len()]);
            }
            (count_lines(data), 0)
        }
        Mode::Escape | Mode::Cri => {
            let (mut records, mut malformed, mut len, mut start) = (0, 0, 0, 0);
            for end in memchr::memchr_iter(b'\n', data) {
                let line = &data[start..end];
                start = end + 1;
                // The most a record of this line can take.
                if len + line.len() * 6 + 128 > out.len() {
                    black_box(&out[..len]);
                    len = 0;
                }
                let written = match mode {
                    Mode::Escape => Some(json_string(line, &mut out[len..])),
                    _ => cri_record(line, &mut out[len..]),
                };
                match written {
                    Some(written) => {
                        len += written;
                        records += 1;
                    }
                    None => malformed += 1,
                }
            }
            black_box(&out[..len]);
            (records, malformed)
        }
    }
}

fn main() {
    let (passes, mut files) = bench_args::passes_and_files(usage_error);
    let file = match files.len() {
        0 => usage_error("a CRI log file is needed"),
        1 => files.remove(0),
        _ => usage_error("one FILE only"),
    };
    let data = std::fs::read(&file).unwrap_or_else(|error| {
        eprintln!("cri_convert: cannot read {file}: {error}");
        std::process::exit(1);
    });
    let data = match data.iter().rposition(|&byte| byte == b'\n') {
        Some(last) => &data[..=last],
        None => usage_error("the file holds no whole line"),
    };
    let lines = count_lines(data);
    let mut out = vec![0u8; OUT_BYTES];
    let (_, malformed) = pass(Mode::Cri, data, &mut out);
    if malformed > 0 {
        eprintln!("cri_convert: {malformed} of {lines} lines of {file} are not CRI lines");
        std::process::exit(1);
    }
    // Sized by the slowest mode, so every mode runs the same passes.
    let passes = passes.unwrap_or_else(|| {
        let started = Instant::now();
        pass(Mode::Cri, data, &mut out);
        let one = started.elapsed().as_secs_f64().max(1e-6);
        ((TARGET_RUN_SECONDS / one).round() as usize).max(1)
    });
    let mut fields = vec![
        format!("\"file\":{file:?}"),
        format!("\"lines\":{lines}"),
        format!("\"bytes\":{}", data.len()),
        format!("\"malformed\":{malformed}"),
        format!("\"passes\":{passes}"),
    ];
    let mut rates = [0.0; MODES.len()];
    for (index, (mode, name)) in MODES.iter().enumerate() {
        let mut runs: Vec<f64> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..passes {
                    black_box(pass(*mode, data, &mut out));
                }
                started.elapsed().as_secs_f64()
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        let median = runs[RUNS / 2];
        let lines_per_s = (lines * passes) as f64 / median;
        rates[index] = lines_per_s;
        fields.push(format!("\"{name}_lines_per_s\":{lines_per_s:.0}"));
        fields.push(format!(
            "\"{name}_mb_per_s\":{:.1}",
            (data.len() * passes) as f64 / median / 1e6
        ));
    }
    fields.push(format!("\"cri_vs_count\":{:.3}", rates[3] / rates[0]));
    println!("{{{}}}", fields.join(","));
}
