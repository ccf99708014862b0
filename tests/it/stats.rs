//! What ringway says about itself while it runs and when it ends (issue
//! 14): the stats line on stderr is short, its rates are true (a trickle of
//! records never reads as 0), an idle run prints nothing, `--stats-format
//! long` shows everything; the `--summary-json` entry of each input kind
//! carries that kind's own counters and no other kind's.

use crate::common::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// How long a condition the tests wait for may take on a loaded machine.
const SETTLE: Duration = Duration::from_secs(30);

/// The stats lines in `stderr`, idle lines included.
fn stats_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("ringway: in ") || line.starts_with("ringway: idle"))
        .collect()
}

/// A byte rate as printed (`846 B/s`, `4.7 kB/s`, `1.0 MB/s`) in bytes/s.
fn byte_rate(value: &str, unit: &str) -> Option<f64> {
    let scale = match unit {
        "B/s" => 1.0,
        "kB/s" => 1e3,
        "MB/s" => 1e6,
        "GB/s" => 1e9,
        _ => return None,
    };
    Some(value.parse::<f64>().ok()? * scale)
}

/// `(records/s in, bytes/s in, records/s out)` of a stats line.
fn rates(line: &str) -> Option<(f64, f64, f64)> {
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|word| word.trim_end_matches(','))
        .collect();
    let at = |word: &str| words.iter().position(|w| *w == word);
    let input = at("in")?;
    let output = at("out")?;
    if words.get(input + 2) != Some(&"rec/s") || words.get(output + 2) != Some(&"rec/s") {
        return None;
    }
    Some((
        words.get(input + 1)?.parse().ok()?,
        byte_rate(words.get(input + 3)?, words.get(input + 4)?)?,
        words.get(output + 1)?.parse().ok()?,
    ))
}

/// Appends one short line to `path` every 100 ms until stopped.
fn trickle(path: std::path::PathBuf) -> (Arc<AtomicBool>, thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let writer = thread::spawn(move || {
        let mut next = 0;
        while !stopped.load(Ordering::Relaxed) {
            append(&path, &numbered_lines("stats", next..next + 1));
            next += 1;
            thread::sleep(Duration::from_millis(100));
        }
    });
    (stop, writer)
}

/// Runs ringway on a file that grows by a line every 100 ms with
/// `--stats-interval 1s` and `extra` flags until `wanted` stats lines were
/// printed after the first record arrived; returns those lines.
fn stats_while_records_arrive(dir: &TempDir, extra: &[&str], wanted: usize) -> Vec<String> {
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    fs::write(&input, b"").unwrap();
    let input_spec = format!("file:{}", p(&input));
    let output_spec = format!("file:{}", p(&output));
    let mut args = vec![
        "run",
        "--input",
        &input_spec,
        "--output",
        &output_spec,
        "--stats-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    let mut ringway = spawn(dir, &args);
    let (stop, writer) = trickle(input);
    // Lines printed before the first record was written out may cover an
    // interval in which nothing had arrived yet: count from after it.
    let arrived = wait_until(SETTLE, || file_len(&output) > 0 || !ringway.is_running());
    ringway.assert_running("while records arrive");
    assert!(arrived, "no record arrived\n{}", ringway.stderr_now());
    let before = stats_lines(&ringway.stderr_now()).len();
    let mut lines = Vec::new();
    let printed = wait_until(SETTLE, || {
        let stderr = ringway.stderr_now();
        lines = stats_lines(&stderr)
            .into_iter()
            .skip(before + 1)
            .map(str::to_string)
            .collect();
        lines.len() >= wanted || !ringway.is_running()
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    ringway.terminate();
    let done = ringway.wait(TIMEOUT);
    done.assert_success();
    assert!(
        printed,
        "fewer than {wanted} stats lines while records arrived\n--- stderr ---\n{}",
        tail(&done.stderr, 4000)
    );
    lines
}

#[test]
fn stats_line_is_short_and_shows_a_trickle_as_a_nonzero_rate() {
    let dir = TempDir::new("stats-trickle");
    let lines = stats_while_records_arrive(&dir, &[], 3);
    for line in &lines {
        let (records_in, bytes_in, records_out) =
            rates(line).unwrap_or_else(|| panic!("no rates in the stats line {line:?}"));
        // About 10 records (some 200 bytes) a second arrive: neither the
        // record nor the byte rate may read as 0.
        assert!(
            records_in > 0.0 && bytes_in > 0.0 && records_out > 0.0,
            "a zero rate while records arrive: {line:?}"
        );
        // The rates part is short; what follows a `;` is only there when
        // it has something to say (nothing is a row of zeros).
        let rates_part = line.split(';').next().unwrap_or_default();
        assert!(
            rates_part.chars().count() <= 80,
            "the default stats line is long ({} characters): {line:?}",
            rates_part.chars().count()
        );
        for zero in [" 0/", "invalid 0", "kernel drops 0", "lag 0 bytes"] {
            assert!(!line.contains(zero), "{zero:?} in {line:?}");
        }
        assert!(line.contains(" over "), "names its interval: {line:?}");
    }
}

#[test]
fn stats_format_long_shows_rings_error_totals_and_checkpoint_lag() {
    let dir = TempDir::new("stats-long");
    let lines = stats_while_records_arrive(&dir, &["--stats-format", "long"], 2);
    for line in &lines {
        let (records_in, bytes_in, _) =
            rates(line).unwrap_or_else(|| panic!("no rates in the stats line {line:?}"));
        assert!(records_in > 0.0 && bytes_in > 0.0, "{line:?}");
        for part in [
            "rings io→cpu ",
            " cpu→dispatcher ",
            " dispatcher→worker ",
            "invalid 0",
            "truncated 0",
            "skipped files 0",
            "kernel drops 0",
            "checkpoint lag ",
        ] {
            assert!(line.contains(part), "no {part:?} in the long line {line:?}");
        }
    }
}

#[test]
fn idle_run_prints_no_stats_lines() {
    let dir = TempDir::new("stats-idle");
    let input = dir.join("in.log");
    fs::write(&input, b"").unwrap();
    let ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--input",
            "udp:127.0.0.1:0",
            "--output",
            "null",
            "--stats-interval",
            "1s",
        ],
    );
    // Five intervals with nothing to read: at most one line a minute may
    // say so, and a minute has not passed.
    thread::sleep(Duration::from_secs(5));
    ringway.terminate();
    let done = ringway.wait(TIMEOUT);
    done.assert_success();
    let lines = stats_lines(&done.stderr);
    assert!(
        lines.is_empty(),
        "an idle run printed stats lines:\n{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// The summary: each input kind's own counters

/// Keys only a file input's summary entry has.
const FILE_KEYS: [&str; 6] = [
    "files_opened",
    "files_skipped",
    "files_truncated",
    "files_waiting",
    "read_errors",
    "checkpoint_lag_bytes",
];

#[test]
fn summary_of_each_input_kind_carries_its_own_counters() {
    let dir = TempDir::new("stats-summary-kinds");
    let input = dir.join("in.log");
    fs::write(&input, b"one\ntwo\n").unwrap();
    let output = dir.join("out.log");
    let summary_path = dir.join("summary.json");
    let file_spec = format!("file:{}", p(&input));
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &file_spec,
            "--input",
            "udp:127.0.0.1:0",
            "--input",
            "tcp:127.0.0.1:0",
            "--input",
            "otlp:127.0.0.1:0",
            "--output",
            &format!("file:{}", p(&output)),
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary_path),
        ],
        TIMEOUT,
    );
    done.assert_success();
    let summary = read_summary(&summary_path);
    let inputs = summary.json["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 4, "{summary}");
    let keys = |index: usize| -> Vec<String> {
        inputs[index]
            .as_object()
            .expect("an input entry is an object")
            .keys()
            .cloned()
            .collect()
    };
    let has = |index: usize, key: &str| keys(index).iter().any(|k| k == key);
    for index in 0..4 {
        for key in ["name", "records", "bytes", "invalid", "truncated"] {
            assert!(has(index, key), "input {index} lacks {key}: {summary}");
        }
    }
    assert_eq!(summary.input_name(0), file_spec);
    assert_eq!(summary.input(0, "records"), 2);
    for key in FILE_KEYS {
        assert!(has(0, key), "the file input lacks {key}: {summary}");
        for network in 1..4 {
            assert!(
                !has(network, key),
                "{} carries the file counter {key}: {summary}",
                summary.input_name(network)
            );
        }
    }
    // UDP: its drop counters and nothing of TCP's or OTLP's.
    assert_eq!(summary.input(1, "kernel_drops"), 0);
    assert!(has(1, "kernel_drops_rxq_ovfl"), "{summary}");
    assert!(!has(1, "connections_accepted"), "{summary}");
    // TCP: connection counters, no drop or HTTP counters.
    for key in ["connections_accepted", "connections_refused", "idle_closed"] {
        assert!(has(2, key), "the TCP input lacks {key}: {summary}");
    }
    for key in ["kernel_drops", "http_responses", "records_accepted"] {
        assert!(!has(2, key), "the TCP input carries {key}: {summary}");
    }
    // OTLP: HTTP and connection counters, no UDP drops.
    for key in [
        "http_responses",
        "records_accepted",
        "connections_accepted",
        "connections_refused",
        "connections_evicted",
        "read_timeouts",
        "idle_closed",
    ] {
        assert!(has(3, key), "the OTLP input lacks {key}: {summary}");
    }
    assert!(!has(3, "kernel_drops"), "{summary}");
    // Nothing but the file input's counters in the file entry either.
    for key in ["kernel_drops", "connections_accepted", "http_responses"] {
        assert!(!has(0, key), "the file input carries {key}: {summary}");
    }
}
