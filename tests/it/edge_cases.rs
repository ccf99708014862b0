//! Edge cases of the file reader and the drain: lines after an over-long
//! line at EOF, more files than --max-open-files, a deleted file's partial
//! last line, an output the input would read back, and a stalled output
//! after --exit-on-eof bounded by --shutdown-timeout.

use crate::common::*;
use std::fs;
use std::time::Duration;

#[test]
fn lines_after_an_over_long_last_line_are_read_before_exit_on_eof() {
    let dir = TempDir::new("long-then-short");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let mut data = b"first\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 1536 * 1024));
    data.extend_from_slice(b"\na\nb\n");
    fs::write(&input, &data).unwrap();
    let summary = dir.join("summary.json");
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    let out = fs::read(&output).unwrap();
    let lines = split_lines(&out);
    assert_eq!(lines.len(), 4, "first, the cut long line, a, b");
    assert_eq!(lines[0], b"first");
    assert_eq!(lines[1].len(), 1024 * 1024, "cut to the default --max-line");
    assert_eq!(lines[2], b"a");
    assert_eq!(lines[3], b"b");
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "truncated"), 1);
    assert_eq!(summary.input(0, "bytes"), data.len() as u64);
}

#[test]
fn more_files_than_max_open_files_are_all_read() {
    let dir = TempDir::new("max-open");
    let logs = dir.subdir("logs");
    let mut expected = 0;
    for file in 0..7 {
        let bytes = numbered_lines(&format!("f{file}"), 0..2000);
        expected += bytes.len();
        fs::write(logs.join(format!("{file}.log")), bytes).unwrap();
    }
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&output)),
            "--max-open-files",
            "2",
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    let out = fs::read(&output).unwrap();
    assert_eq!(out.len(), expected, "every file's lines arrived");
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "records"), 7 * 2000);
    assert_eq!(summary.output(0, "records"), 7 * 2000);
    assert!(summary.input(0, "files_waiting") >= 1, "some files waited");
}

#[test]
fn a_deleted_files_partial_last_line_is_emitted_with_a_newline() {
    let dir = TempDir::new("deleted-partial");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    fs::write(&input, b"one\ntwo\nunfinished").unwrap();
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--stats-interval",
            "0",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || file_len(&output) == 8),
        "the two whole lines arrive"
    );
    fs::remove_file(&input).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || file_len(&output) == 19),
        "the partial line arrives once the file is deleted; output: {:?}",
        String::from_utf8_lossy(&fs::read(&output).unwrap_or_default())
    );
    ringway.assert_running("after the deletion");
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(fs::read(&output).unwrap(), b"one\ntwo\nunfinished\n");
}

#[test]
fn an_output_that_the_input_would_read_back_is_refused() {
    let dir = TempDir::new("feedback");
    let logs = dir.subdir("logs");
    fs::write(logs.join("a.log"), b"x\n").unwrap();
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}/out.log", p(&logs)),
        ],
        TIMEOUT,
    );
    done.assert_code(2);
    assert!(
        done.stderr.contains("read back its own output"),
        "{}",
        done.stderr
    );
}

#[test]
fn exit_on_eof_with_a_stalled_output_ends_at_the_shutdown_timeout() {
    let dir = TempDir::new("eof-stall");
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("s", 0..1000)).unwrap();
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--exit-on-eof",
            "--shutdown-timeout",
            "2s",
            "--stats-interval",
            "0",
        ],
        Duration::from_secs(60),
    );
    done.assert_code(1);
    assert!(
        done.elapsed < Duration::from_secs(30),
        "bounded by --shutdown-timeout, took {:?}",
        done.elapsed
    );
    assert!(done.stderr.contains("undelivered"), "{}", done.stderr);
}
