//! A micro benchmark that also runs as a test: ns per ~200-byte line for
//! the JSON check alone, then the transformer with `SELECT *`, a filter
//! and projections, on one core. As a test it makes one pass and checks
//! every outcome (no line invalid, no runtime error, the filter keeps
//! exactly its levels); for figures, many passes, best of them:
//! `RINGWAY_BENCH_PASSES=400 cargo test --release --lib transform::tests::bench -- --nocapture`

use super::*;
use std::time::Instant;

fn lines() -> Vec<Vec<u8>> {
    (0..20_000)
        .map(|i| {
            let level = ["INFO", "INFO", "WARN", "ERROR", "DEBUG"][i % 5];
            format!(
                r#"{{"ts":"2026-12-02T10:{:02}:{:02}.{:03}Z","level":"{level}","service":"checkout-{}","host":"web-{:02}","msg":"request handled for user {} in region eu","status":{},"duration_ms":{}.{},"trace_id":"{:016x}","bytes":{}}}"#,
                i / 60 % 60,
                i % 60,
                i % 1000,
                i % 7,
                i % 40,
                i * 7,
                [200, 200, 404, 500, 201][i % 5],
                i % 900,
                i % 10,
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i * 13 % 100_000
            )
            .into_bytes()
        })
        .collect()
}

/// Best of many short passes, in ns per line: on a busy machine the
/// fastest pass is the one that ran undisturbed.
fn time(lines: &[Vec<u8>], mut per_line: impl FnMut(&[u8]) -> usize) -> f64 {
    let passes: usize = std::env::var("RINGWAY_BENCH_PASSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut best = f64::MAX;
    let mut sink = 0usize;
    for pass in 0..passes {
        let chunk = &lines[(pass % 10) * 2000..][..2000];
        let start = Instant::now();
        for line in chunk {
            sink = sink.wrapping_add(per_line(line));
        }
        best = best.min(start.elapsed().as_nanos() as f64 / chunk.len() as f64);
    }
    std::hint::black_box(sink);
    best
}

#[test]
fn bench_transform_ns_per_line() {
    let lines = lines();
    let mean = lines.iter().map(Vec::len).sum::<usize>() / lines.len();
    println!("{} lines, {mean} bytes on average", lines.len());
    // RINGWAY_BENCH_ONLY=N runs only scenario N (0: the check), e.g. under
    // `perf stat -e instructions`, whose counts a busy machine does not skew.
    let only: Option<usize> = std::env::var("RINGWAY_BENCH_ONLY")
        .ok()
        .and_then(|n| n.parse().ok());
    let mut checker = crate::scan::json::JsonChecker::new(4096);
    let check = if only.is_none_or(|n| n == 0) {
        time(&lines, |line| usize::from(checker.is_valid(line)))
    } else {
        f64::NAN
    };
    println!("{:>7.1} ns/line  check only (JsonChecker)", check);
    for (index, query) in [
        "SELECT * FROM logs",
        "SELECT * FROM logs WHERE level IN ('WARN', 'ERROR')",
        "SELECT * FROM logs WHERE status >= 500 AND duration_ms > 100",
        "SELECT ts, level, service, msg, status, duration_ms FROM logs",
        "SELECT level, msg AS message FROM logs WHERE status >= 400",
        "SELECT * EXCEPT (trace_id, host) FROM logs",
        "SELECT ts, lower(level) AS level, concat(service, '/', host) AS origin, status FROM logs WHERE msg LIKE '%user 7%' OR regexp_like(trace_id, '^0')",
    ]
    .into_iter()
    .enumerate()
    {
        if only.is_some_and(|n| n != index + 1) {
            continue;
        }
        let query = Arc::new(Query::compile(query).unwrap());
        let mut transformer = Transformer::new(Some(query.clone()), Vec::new(), 4096);
        // What the timed passes rely on: every line evaluates cleanly, and
        // the level filter keeps exactly the WARN and ERROR lines (2 of 5).
        let mut kept = 0;
        for line in &lines {
            let result = transformer.process(line, Shape::Json);
            assert_ne!(result.outcome, Outcome::Invalid, "{query:?}");
            assert_eq!(result.errors, 0, "{query:?}");
            kept += usize::from(result.outcome != Outcome::Filtered);
        }
        if index == 1 {
            assert_eq!(kept, lines.len() * 2 / 5, "{query:?}");
        }
        let ns = time(&lines, |line| {
            let result = transformer.process(line, Shape::Json);
            result.outcome as usize + transformer.output().len()
        });
        println!(
            "{ns:>7.1} ns/line  {:.2}x check  {}",
            ns / check,
            query.normalized()
        );
    }
}
