//! Bad input never stops the pipeline: invalid JSON is routed per
//! `--on-invalid`, over-long lines are truncated, binary garbage is carried
//! as bytes, and vanished or unreadable files are skipped with a warning.

use crate::common::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::Duration;

/// Clearly invalid NDJSON lines (each unique through `i`).
fn invalid_json_line(i: u64) -> Vec<u8> {
    match i % 9 {
        0 => format!("not json at all {i}").into_bytes(),
        1 => format!(r#"{{"unterminated": "value {i}"#).into_bytes(),
        2 => format!(r#"{{"seq": {i}, "missing": }}"#).into_bytes(),
        3 => format!(r#"{{"seq" {i}}}"#).into_bytes(),
        4 => format!(r#"{{"a":tru, "seq": {i}}}"#).into_bytes(),
        5 => format!(r#"{{"seq":{i},"bad escape":"\q"}}"#).into_bytes(),
        6 => format!(r#"{{"seq":{i}]"#).into_bytes(),
        7 => format!(r#"{{"seq":{i}}} trailing"#).into_bytes(),
        _ => {
            // Invalid UTF-8 inside a string.
            let mut l = format!(r#"{{"seq":{i},"s":""#).into_bytes();
            l.extend_from_slice(b"\xff\xfe\xc3(");
            l.extend_from_slice(b"\"}");
            l
        }
    }
}

struct MixedJson {
    all: Vec<u8>,
    valid: Vec<u8>,
    invalid: Vec<u8>,
    total: u64,
    invalid_count: u64,
}

/// 10,000 lines, every 7th one invalid.
fn mixed_json() -> MixedJson {
    let mut rng = Rng::new(3);
    let mut m = MixedJson {
        all: vec![],
        valid: vec![],
        invalid: vec![],
        total: 0,
        invalid_count: 0,
    };
    for i in 0..10_000u64 {
        let (line, bad) = if i % 7 == 3 {
            (invalid_json_line(i), true)
        } else {
            (json_line(i, &mut rng).into_bytes(), false)
        };
        if bad {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&line).is_err(),
                "test data: line meant to be invalid parses: {}",
                String::from_utf8_lossy(&line)
            );
            m.invalid_count += 1;
        }
        let dest = if bad { &mut m.invalid } else { &mut m.valid };
        dest.extend_from_slice(&line);
        dest.push(b'\n');
        m.all.extend_from_slice(&line);
        m.all.push(b'\n');
        m.total += 1;
    }
    m
}

/// Runs `file:IN,format=json` through `--exit-on-eof` with `extra` flags.
fn run_json(dir: &TempDir, data: &[u8], extra: &[&str]) -> (Vec<u8>, Summary) {
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    fs::write(&input, data).unwrap();
    let input_spec = format!("file:{},format=json", p(&input));
    let output_spec = format!("file:{}", p(&output));
    let summary_path = p(&summary);
    let mut args = vec![
        "run",
        "--input",
        &input_spec,
        "--output",
        &output_spec,
        "--exit-on-eof",
        "--summary-json",
        &summary_path,
    ];
    args.extend_from_slice(extra);
    run(dir, &args, TIMEOUT).assert_success();
    (read_output(&output), read_summary(&summary))
}

#[test]
fn invalid_json_lines_pass_as_raw_and_are_counted() {
    let dir = TempDir::new("invalid-raw");
    let m = mixed_json();
    let (out, s) = run_json(&dir, &m.all, &["--on-invalid", "raw"]);
    assert_bytes_identical(&m.all, &out, "--on-invalid raw keeps every line");
    assert_eq!(s.input(0, "records"), m.total, "{s}");
    assert_eq!(s.input(0, "invalid"), m.invalid_count, "{s}");
    assert_eq!(s.output(0, "records"), m.total, "{s}");
}

#[test]
fn invalid_json_lines_pass_as_raw_by_default() {
    let dir = TempDir::new("invalid-default");
    let m = mixed_json();
    let (out, s) = run_json(&dir, &m.all, &[]);
    assert_bytes_identical(&m.all, &out, "default --on-invalid (raw)");
    assert_eq!(s.input(0, "invalid"), m.invalid_count, "{s}");
}

#[test]
fn invalid_json_lines_are_dropped_and_counted() {
    let dir = TempDir::new("invalid-drop");
    let m = mixed_json();
    let (out, s) = run_json(&dir, &m.all, &["--on-invalid", "drop"]);
    assert_bytes_identical(&m.valid, &out, "--on-invalid drop keeps only valid lines");
    assert_eq!(
        s.input(0, "records"),
        m.total,
        "records counts every line framed: {s}"
    );
    assert_eq!(s.input(0, "invalid"), m.invalid_count, "{s}");
    assert_eq!(s.output(0, "records"), m.total - m.invalid_count, "{s}");
}

#[test]
fn invalid_json_lines_go_to_the_dead_letter_file() {
    let dir = TempDir::new("invalid-deadletter");
    let dead = dir.join("dead.log");
    let m = mixed_json();
    let dead_path = p(&dead);
    let (out, s) = run_json(
        &dir,
        &m.all,
        &["--on-invalid", "deadletter", "--dead-letter", &dead_path],
    );
    assert_bytes_identical(&m.valid, &out, "output holds the valid lines");
    let dead_bytes = fs::read(&dead).expect("dead-letter file written");
    assert_bytes_identical(
        &m.invalid,
        &dead_bytes,
        "dead-letter file holds the invalid lines",
    );
    assert_eq!(s.input(0, "records"), m.total, "{s}");
    assert_eq!(s.input(0, "invalid"), m.invalid_count, "{s}");
    assert_eq!(s.output(0, "records"), m.total - m.invalid_count, "{s}");
}

/// A crash can leave the dead-letter file ending in a partial line; the
/// CPU workers' writer of invalid lines ends it before appending, so the
/// first invalid line of the next run is not glued onto it.
#[test]
fn invalid_lines_never_continue_a_torn_dead_letter_line() {
    let dir = TempDir::new("invalid-deadletter-torn");
    let dead = dir.join("dead.log");
    fs::write(&dead, b"whole line\n{\"torn\": tr").unwrap();
    let m = mixed_json();
    let dead_path = p(&dead);
    let (out, _) = run_json(
        &dir,
        &m.all,
        &["--on-invalid", "deadletter", "--dead-letter", &dead_path],
    );
    assert_bytes_identical(&m.valid, &out, "output holds the valid lines");
    let mut expected = b"whole line\n{\"torn\": tr\n".to_vec();
    expected.extend_from_slice(&m.invalid);
    assert_bytes_identical(
        &expected,
        &fs::read(&dead).expect("dead-letter file written"),
        "the torn line is ended, then the invalid lines follow whole",
    );
}

#[test]
fn line_longer_than_max_line_is_truncated_to_max_line() {
    let dir = TempDir::new("long-line");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let before = numbered_lines("before", 0..100);
    let after = numbered_lines("after", 0..100);
    let long: Vec<u8> = b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(5 << 20)
        .collect();
    let mut data = before.clone();
    data.extend_from_slice(&long);
    data.push(b'\n');
    data.extend_from_slice(&after);
    fs::write(&input, &data).unwrap();
    run_to_eof(&dir, &input, &output, &summary).assert_success();
    let mut expected = before;
    expected.extend_from_slice(&long[..1 << 20]); // default --max-line 1MiB
    expected.push(b'\n');
    expected.extend_from_slice(&after);
    assert_bytes_identical(
        &expected,
        &read_output(&output),
        "5 MiB line truncated to 1 MiB",
    );
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "truncated"), 1, "{s}");
    assert_eq!(s.input(0, "records"), 201, "{s}");
    assert_eq!(s.output(0, "records"), 201, "{s}");
}

#[test]
fn max_line_flag_sets_the_truncation_length() {
    let dir = TempDir::new("max-line-flag");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let max = 64 * 1024;
    let mut data = Vec::new();
    let mut expected = Vec::new();
    // Exactly --max-line bytes is not longer than it; one more byte is.
    for (i, len) in [10, max - 1, max, max + 1, 3 * max, 20]
        .into_iter()
        .enumerate()
    {
        let line: Vec<u8> = format!("line{i}-")
            .bytes()
            .chain(std::iter::repeat(b'z'))
            .take(len)
            .collect();
        data.extend_from_slice(&line);
        data.push(b'\n');
        expected.extend_from_slice(&line[..len.min(max)]);
        expected.push(b'\n');
    }
    fs::write(&input, &data).unwrap();
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--max-line",
            "64KiB",
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    assert_bytes_identical(&expected, &read_output(&output), "--max-line 64KiB");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "truncated"), 2, "{s}");
    assert_eq!(s.input(0, "records"), 6, "{s}");
}

/// 4 MiB of random bytes (NUL, invalid UTF-8, CR, …), newline-terminated.
fn random_garbage() -> Vec<u8> {
    let mut rng = Rng::new(99);
    let mut data = vec![0u8; 4 << 20];
    rng.fill(&mut data);
    *data.last_mut().unwrap() = b'\n';
    assert!(data.contains(&0));
    assert!(std::str::from_utf8(&data).is_err());
    data
}

#[test]
fn binary_garbage_passes_through_raw_byte_identical() {
    let dir = TempDir::new("garbage-raw");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let data = random_garbage();
    fs::write(&input, &data).unwrap();
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=raw", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    assert_bytes_identical(&data, &read_output(&output), "binary garbage (raw)");
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), lines, "{s}");
    assert_eq!(s.output(0, "records"), lines, "{s}");
}

#[test]
fn binary_garbage_under_json_is_counted_invalid_without_crash() {
    let dir = TempDir::new("garbage-json");
    // Every line starts with 0xFF, so no line can be valid JSON.
    let mut data = Vec::new();
    let mut lines = 0u64;
    for piece in random_garbage().split(|&b| b == b'\n') {
        data.push(0xFF);
        data.extend_from_slice(piece);
        data.push(b'\n');
        lines += 1;
    }
    let (out, s) = run_json(&dir, &data, &[]);
    assert_bytes_identical(&data, &out, "invalid lines pass as raw (default)");
    assert_eq!(s.input(0, "records"), lines, "{s}");
    assert_eq!(s.input(0, "invalid"), lines, "{s}");
}

#[test]
fn empty_file_gives_zero_records_and_exits_0() {
    let dir = TempDir::new("empty");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    fs::write(&input, b"").unwrap();
    run_to_eof(&dir, &input, &output, &summary).assert_success();
    assert_eq!(file_len(&output), 0, "output of an empty file is empty");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), 0, "{s}");
    assert_eq!(s.input(0, "bytes"), 0, "{s}");
    assert_eq!(s.output(0, "records"), 0, "{s}");
}

#[test]
fn file_deleted_mid_read_does_not_stop_other_files() {
    // The output is a FIFO that nobody reads at first, so ringway is
    // certainly in the middle of the big file when it is deleted.
    let dir = TempDir::new("deleted-mid-read");
    let logs = dir.subdir("logs");
    let fifo = dir.join("out.fifo");
    let summary = dir.join("summary.json");
    mkfifo(&fifo);
    // 80 MB: well over what ringway's buffer pool holds (~30 MB by default),
    // so the reader is certainly paused in the middle of this file.
    let big = padded_lines("big", 0..800_000, 100);
    let b = numbered_lines("bee", 0..10_000);
    let c = numbered_lines("cee", 0..10_000);
    fs::write(logs.join("a.log"), &big).unwrap();
    fs::write(logs.join("b.log"), &b).unwrap();
    fs::write(logs.join("c.log"), &c).unwrap();

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The reader is in the middle of a.log: it read more than b.log and
    // c.log hold together, and cannot have finished a.log (the output is
    // stalled and a.log is larger than what the pipeline buffers).
    let metrics = metrics_address(&mut rw);
    let small = (b.len() + c.len()) as u64;
    let mid_read = wait_until(TIMEOUT, || {
        metric_sum(metrics, "ringway_input_bytes_total").is_some_and(|bytes| bytes > small)
    });
    rw.assert_running("before the big file was deleted");
    assert!(mid_read, "the reader never got into a.log");
    fs::remove_file(logs.join("a.log")).unwrap();
    // Time passes on purpose: the deletion must not end the process.
    thread::sleep(Duration::from_millis(500));
    rw.assert_running("right after the big file was deleted");
    let rx = attach_fifo_reader(fifo, Arc::new(AtomicU64::new(0)));
    let done = rw.wait(TIMEOUT);
    done.assert_success();
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("FIFO reader saw EOF");
    let arrived = check_interleaving(
        &[("a.log (deleted)", &big), ("b.log", &b), ("c.log", &c)],
        &out,
        "deleted mid-read",
    );
    assert_eq!(arrived[1], 10_000, "all of b.log arrives");
    assert_eq!(arrived[2], 10_000, "all of c.log arrives");
    let s = read_summary(&summary);
    assert_eq!(
        s.output(0, "records"),
        arrived.iter().sum::<usize>() as u64,
        "output records == lines written: {s}"
    );
    println!(
        "a.log lines delivered after deletion: {} of 800000",
        arrived[0]
    );
}

#[test]
fn unreadable_glob_matches_are_warned_counted_and_skipped() {
    let dir = TempDir::new("unreadable-match");
    let logs = dir.subdir("logs");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let a = numbered_lines("aaa", 0..5_000);
    let b = numbered_lines("bbb", 0..5_000);
    fs::write(logs.join("a.log"), &a).unwrap();
    fs::write(logs.join("b.log"), &b).unwrap();
    // Root can read any file, so make matches unreadable by their kind.
    fs::create_dir(logs.join("x.log")).unwrap();
    std::os::unix::fs::symlink(logs.join("no-such-target"), logs.join("y.log")).unwrap();

    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&output)),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    done.assert_success();
    assert_interleaving_of(
        &[("a.log", &a), ("b.log", &b)],
        &read_output(&output),
        "readable files",
    );
    let stderr = done.stderr.to_lowercase();
    assert!(
        stderr.contains("warn") && (stderr.contains("x.log") || stderr.contains("y.log")),
        "stderr must warn about the unreadable match by name; stderr was:\n{}",
        done.stderr
    );
    let s = read_summary(&summary);
    assert!(s.input(0, "files_skipped") >= 1, "files_skipped: {s}");
    assert_eq!(s.input(0, "records"), 10_000, "{s}");
}
