//! Shutdown and exit status (issue 14): a second SIGINT during a drain that
//! cannot finish exits 130 at once; the drain-timeout message counts the
//! batches and records the output workers hold; a final checkpoint that
//! cannot be written makes the exit status 1.

use crate::common::*;
use std::fs;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

/// `ringway_input_records_total` summed over inputs, read from /metrics.
fn records_read(addr: SocketAddr) -> Option<u64> {
    metric_sum(addr, "ringway_input_records_total")
}

/// Starts `ringway run` reading `input` into the FIFO `fifo`, which never
/// gets a reader: the output worker blocks in open(2) and the drain cannot
/// finish. Returns once every line of `input` was read.
fn start_stalled(
    dir: &TempDir,
    input: &std::path::Path,
    lines: u64,
    extra: &[&str],
) -> (Ringway, SocketAddr) {
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let mut args = vec![
        "run".to_string(),
        "--input".into(),
        format!("file:{}", p(input)),
        "--output".into(),
        format!("file:{}", p(&fifo)),
        "--metrics".into(),
        "127.0.0.1:0".into(),
        "--stats-interval".into(),
        "0".into(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ringway = spawn(dir, &args);
    let addr = metrics_address(&mut ringway);
    assert!(
        wait_until(TIMEOUT, || records_read(addr) == Some(lines)),
        "ringway did not read the {lines} lines: {}",
        ringway.stderr_now()
    );
    (ringway, addr)
}

#[test]
fn a_second_sigint_during_a_blocked_drain_exits_130_at_once() {
    let dir = TempDir::new("second-signal");
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("twice", 0..1_000)).unwrap();
    // The drain could take 10 minutes: only the second signal ends it soon.
    let (mut ringway, _) = start_stalled(&dir, &input, 1_000, &["--shutdown-timeout", "600s"]);
    ringway.signal(libc::SIGINT);
    assert!(
        wait_until(TIMEOUT, || ringway.stderr_now().contains("draining")),
        "no word of the first signal: {}",
        ringway.stderr_now()
    );
    // A quick double Ctrl-C: well apart from one signal delivered twice.
    thread::sleep(Duration::from_millis(100));
    ringway.assert_running("after the first SIGINT (its drain is blocked)");
    ringway.signal(libc::SIGINT);
    let finished = ringway.wait(Duration::from_secs(60));
    finished.assert_code(130);
    assert!(
        finished.stderr.contains("second signal"),
        "{}",
        finished.stderr
    );
}

/// The `N batches (M records)` after `what` in `text`.
fn counts_after(text: &str, what: &str) -> Option<(u64, u64)> {
    let rest = &text[text.find(what)? + what.len()..];
    let (batches, rest) = rest.trim_start().split_once(" batch")?;
    let rest = &rest[rest.find('(')? + 1..];
    let (records, _) = rest.split_once(" record")?;
    Some((batches.parse().ok()?, records.parse().ok()?))
}

#[test]
fn the_drain_timeout_message_counts_what_the_output_workers_hold() {
    const LINES: u64 = 50_000;
    let dir = TempDir::new("drain-count");
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("held", 0..LINES)).unwrap();
    let (ringway, addr) = start_stalled(&dir, &input, LINES, &["--shutdown-timeout", "1s"]);
    // /metrics shows the same count while the output is stalled.
    let mut held = None;
    assert!(
        wait_until(TIMEOUT, || {
            held = metric_sum(addr, "ringway_output_held_records");
            held == Some(LINES)
        }),
        "ringway_output_held_records is {held:?}, not {LINES}"
    );
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_code(1);
    let message = finished
        .stderr
        .lines()
        .find(|line| line.contains("did not finish within --shutdown-timeout"))
        .unwrap_or_else(|| panic!("no drain-timeout message: {}", finished.stderr));
    let fifo = p(&dir.join("out.fifo"));
    let (batches, records) = counts_after(message, &format!("output file:{fifo} holds"))
        .unwrap_or_else(|| panic!("the message does not count the output's batches: {message}"));
    assert!(batches > 0, "{message}");
    assert_eq!(records, LINES, "every line read is held: {message}");
    assert!(
        message.contains(&format!("read {LINES} records, wrote 0")),
        "{message}"
    );
}

#[test]
fn a_final_checkpoint_that_cannot_be_written_exits_1() {
    let dir = TempDir::new("final-checkpoint");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    let lines = numbered_lines("final", 0..1_000);
    fs::write(&input, &lines).unwrap();
    // --checkpoint-interval 0: the only checkpoint is the one at exit.
    let ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--data-dir",
            &p(&data),
            "--checkpoint-interval",
            "0",
            "--stats-interval",
            "0",
        ],
    );
    assert!(
        wait_until(TIMEOUT, || file_len(&output) == lines.len() as u64),
        "the lines were not delivered: {}",
        ringway.stderr_now()
    );
    assert!(!data.join("checkpoints.json").exists());
    // The data directory is gone and a file stands at its path: the
    // checkpoint cannot be written (as root, permissions would not stop it).
    fs::rename(&data, dir.join("data.moved")).unwrap();
    fs::write(&data, b"not a directory\n").unwrap();
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_code(1);
    assert!(
        finished
            .stderr
            .contains("cannot write the final checkpoint"),
        "{}",
        finished.stderr
    );
    assert_files_identical(&input, &output, "delivered before the stop");
}
