//! Multiline joins (`multiline=` on file inputs): stack traces written the
//! way the JVM, CPython and the Go runtime print them, in plain files and
//! inside CRI lines, joined into one record each by real ringway runs;
//! the timeout, and `kill -9` with `--data-dir` inside a record.

use crate::common::*;
use crate::container_logs::{record, resume_after_kill_9, run_cri, sent_by_the_timeout};
use serde_json::{Value, json};
use std::fs;

/// `Throwable.printStackTrace` output: the exception line, tab-indented
/// frames, `Caused by:` and its `... N more`.
const JAVA_TRACE: &str = "\
Exception in thread \"main\" java.lang.IllegalStateException: order 42 failed
\tat com.example.shop.Orders.place(Orders.java:118)
\tat com.example.shop.Main.main(Main.java:9)
Caused by: java.sql.SQLTransientConnectionException: pool exhausted
\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)
\t... 2 more";

/// `traceback.print_exc()` output: the header, `File` lines each with its
/// source line, the exception line.
const PYTHON_TRACE: &str = "\
Traceback (most recent call last):
  File \"/app/worker.py\", line 31, in <module>
    run()
  File \"/app/worker.py\", line 12, in run
    total = prices[\"eur\"]
KeyError: 'eur'";

fn bodies(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record["body"].as_str().expect("a string body"))
        .collect()
}

#[test]
fn java_traces_in_a_plain_file_become_one_record_each() {
    let dir = TempDir::new("multiline-java");
    let input = dir.join("app.log");
    let text = format!(
        "12:00:00 INFO started\n{JAVA_TRACE}\n12:00:01 WARN retrying\n{JAVA_TRACE}\n12:00:02 INFO done\n"
    );
    fs::write(&input, &text).unwrap();
    let (records, summary) = run_cri(&dir, &input, ",multiline=java", &[]);
    assert_eq!(
        bodies(&records),
        [
            "12:00:00 INFO started",
            JAVA_TRACE,
            "12:00:01 WARN retrying",
            JAVA_TRACE,
            "12:00:02 INFO done",
        ]
    );
    // Plain lines become `{"body":…}` records: nothing else is added.
    assert_eq!(records[0], json!({"body": "12:00:00 INFO started"}));
    // `records` counts lines read.
    assert_eq!(summary.input(0, "records"), text.lines().count() as u64);
}

#[test]
fn python_tracebacks_split_in_cri_parts_join_per_stream() {
    let dir = TempDir::new("multiline-python");
    let input = dir.join("0.log");
    let mut lines = String::new();
    let mut trace = PYTHON_TRACE.lines();
    let header = trace.next().unwrap();
    lines.push_str(&format!("2026-12-02T04:09:29.1Z stderr F {header}\n"));
    // stdout interleaves; one traceback line comes in two parts.
    lines.push_str("2026-12-02T04:09:29.2Z stdout F GET /healthz 200\n");
    for line in trace {
        match line.split_at_checked(10) {
            Some((head, tail)) if line.starts_with("  File") => {
                lines.push_str(&format!("2026-12-02T04:09:29.3Z stderr P {head}\n"));
                lines.push_str(&format!("2026-12-02T04:09:29.4Z stderr F {tail}\n"));
            }
            _ => lines.push_str(&format!("2026-12-02T04:09:29.5Z stderr F {line}\n")),
        }
    }
    lines.push_str("2026-12-02T04:09:30Z stderr F next\n");
    fs::write(&input, &lines).unwrap();
    let (records, _) = run_cri(&dir, &input, ",format=cri,multiline=python", &[]);
    assert_eq!(
        records,
        [
            record("2026-12-02T04:09:29.2Z", "stdout", b"GET /healthz 200"),
            record("2026-12-02T04:09:29.1Z", "stderr", PYTHON_TRACE.as_bytes()),
            record("2026-12-02T04:09:30Z", "stderr", b"next"),
        ]
    );
}

#[test]
fn a_pending_trace_is_sent_after_the_multiline_timeout() {
    let dir = TempDir::new("multiline-timeout");
    let input = dir.join("app.log");
    // The trace is the file's last output: no later line ends it.
    fs::write(&input, format!("12:00:00 INFO started\n{JAVA_TRACE}\n")).unwrap();
    let records = sent_by_the_timeout(&dir, &input, ",multiline=java", 2);
    assert_eq!(bodies(&records)[1], JAVA_TRACE);
}

#[test]
fn kill_9_inside_a_multiline_record_resumes_it_whole_once() {
    let dir = TempDir::new("multiline-kill");
    let input = dir.join("app.log");
    let before = "2026-12-02 12:00:00 one\n";
    fs::write(&input, format!("{before}2026-12-02 12:00:01 two\n  b\n")).unwrap();
    let records = resume_after_kill_9(
        &dir,
        &input,
        ",multiline=start:^\\d{4}-\\d{2}-\\d{2} ",
        before.len() as u64,
        b"  c\n2026-12-02 12:00:02 three\n",
    );
    assert_eq!(
        bodies(&records),
        [
            "2026-12-02 12:00:00 one",
            "2026-12-02 12:00:01 two\n  b\n  c",
            "2026-12-02 12:00:02 three",
        ]
    );
}

#[test]
fn multiline_records_carry_the_file_path_with_source_true() {
    let dir = TempDir::new("multiline-source");
    let input = dir.join("app.log");
    fs::write(&input, "1 a\n  b\n2 c\n").unwrap();
    let (records, _) = run_cri(&dir, &input, ",source=true,multiline=start:^\\d", &[]);
    let path = input.to_str().unwrap();
    assert_eq!(
        records,
        [
            json!({"body": "1 a\n  b", "log.file.path": path}),
            json!({"body": "2 c", "log.file.path": path}),
        ]
    );
}
