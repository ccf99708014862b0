//! Kubernetes container logs (`format=cri`, `format=docker`): files written
//! in the exact formats the runtimes produce, read by real ringway runs.
//!
//! CRI lines follow kubelet's CRI logging format
//! (`pkg/kubelet/kuberuntime/logs`: `TIME STREAM TAG MESSAGE\n`, TAG `F` or
//! `P`, `P` for a line the runtime split at its buffer size: 16 KiB in
//! containerd, `max_container_log_line_size`); containerd writes UTC times
//! with trailing zeros of the nanoseconds trimmed, CRI-O writes local
//! offsets (`+01:00`); kubelet accepts tags with a `:` suffix (`F:xyz`).
//! Docker lines follow the json-file driver
//! (`{"log":"…\n","stream":"stdout","time":"…"}`, the `log` value without
//! its `\n` when the line was split at 16 KiB).

use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One CRI line: time, stream, tag, message bytes.
type CriLine<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

fn cri_bytes(lines: &[CriLine<'_>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (time, stream, tag, message) in lines {
        bytes.extend_from_slice(format!("{time} {stream} {tag} ").as_bytes());
        bytes.extend_from_slice(message);
        bytes.push(b'\n');
    }
    bytes
}

/// The records a correct join makes of `lines`: per stream, partial parts
/// joined up to the final one, a record at each final line, in the order
/// the final lines come; the time is the first part's.
fn expected_records(lines: &[CriLine<'_>]) -> Vec<Value> {
    let mut pending: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut records = Vec::new();
    for (time, stream, tag, message) in lines {
        let at = pending.iter().position(|(_, s, _)| s == stream);
        let partial = tag.starts_with('P');
        match (at, partial) {
            (Some(at), _) => {
                pending[at].2.extend_from_slice(message);
                if !partial {
                    let (time, stream, body) = pending.remove(at);
                    records.push(record(&time, &stream, &body));
                }
            }
            (None, true) => pending.push((time.to_string(), stream.to_string(), message.to_vec())),
            (None, false) => records.push(record(time, stream, message)),
        }
    }
    assert!(pending.is_empty(), "the test's lines end every message");
    records
}

pub(crate) fn record(time: &str, stream: &str, body: &[u8]) -> Value {
    json!({
        "time": time,
        "stream": stream,
        "body": String::from_utf8(body.to_vec()).expect("test messages are UTF-8 once joined"),
    })
}

/// The output's lines, each parsed as JSON (and checked to be one object).
pub(crate) fn output_records(path: &Path) -> Vec<Value> {
    let bytes = fs::read(path).unwrap_or_default();
    split_lines(&bytes)
        .into_iter()
        .map(|line| {
            let value: Value = serde_json::from_slice(line).unwrap_or_else(|error| {
                panic!(
                    "output line is not JSON ({error}): {}",
                    String::from_utf8_lossy(line)
                )
            });
            assert!(value.is_object());
            value
        })
        .collect()
}

pub(crate) fn run_cri(
    dir: &TempDir,
    input: &Path,
    spec: &str,
    extra: &[&str],
) -> (Vec<Value>, Summary) {
    let (output, summary) = run_file(dir, input, spec, extra);
    (output_records(&output), summary)
}

/// Runs `file:INPUT{spec}` to a file with --exit-on-eof: the output's path
/// and the summary.
fn run_file(dir: &TempDir, input: &Path, spec: &str, extra: &[&str]) -> (PathBuf, Summary) {
    let output = dir.join("out.ndjson");
    let summary = dir.join("summary.json");
    let _ = fs::remove_file(&output);
    let input_spec = format!("file:{}{spec}", p(input));
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
    (output, read_summary(&summary))
}

#[test]
fn cri_full_lines_become_one_record_each() {
    let dir = TempDir::new("cri-full");
    let lines: Vec<CriLine<'_>> = vec![
        (
            "2026-12-02T04:09:29.123456789Z",
            "stdout",
            "F",
            b"first \"quoted\" \\ line",
        ),
        ("2026-12-02T04:09:29.5Z", "stderr", "F", b"tab\there"),
        ("2026-12-02T04:09:30Z", "stdout", "F", b""),
        (
            "2026-12-02T04:09:30.12Z",
            "stdout",
            "F",
            "é ünïcode".as_bytes(),
        ),
    ];
    let input = dir.join("0.log");
    fs::write(&input, cri_bytes(&lines)).unwrap();
    let (records, summary) = run_cri(&dir, &input, ",format=cri", &[]);
    assert_eq!(records, expected_records(&lines));
    assert_eq!(summary.input(0, "records"), 4);
    assert_eq!(summary.input(0, "invalid"), 0);
}

#[test]
fn cri_partial_lines_join_across_read_buffers_streams_and_cut_characters() {
    let dir = TempDir::new("cri-join");
    // A 64 KiB message in 16 KiB parts (containerd's split), several
    // times, so that reads of the 128 KiB buffers end inside runs; stdout
    // and stderr interleave their parts; one split cuts "é" in two.
    let big: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let parts: Vec<&[u8]> = big.chunks(16 * 1024).collect();
    let mut lines: Vec<CriLine<'_>> = Vec::new();
    for round in 0..6 {
        let time = if round % 2 == 0 {
            "2026-12-02T04:09:29.1Z"
        } else {
            "2026-12-02T05:09:29.123456789+01:00"
        };
        for (index, part) in parts.iter().enumerate() {
            let tag = if index + 1 == parts.len() { "F" } else { "P" };
            lines.push((time, "stdout", tag, part));
            // A stderr line between the stdout parts, itself split.
            if index == 1 {
                lines.push(("2026-12-02T04:09:29.2Z", "stderr", "P", b"err "));
            }
            if index == 2 {
                lines.push(("2026-12-02T04:09:29.3Z", "stderr", "F:xyz", b"end"));
            }
        }
    }
    let cafe = "café".as_bytes();
    let (head, rest) = cafe.split_at(cafe.len() - 1);
    lines.push(("2026-12-02T04:09:31Z", "stdout", "P", head));
    lines.push(("2026-12-02T04:09:31Z", "stdout", "F", rest));
    let input = dir.join("0.log");
    fs::write(&input, cri_bytes(&lines)).unwrap();
    let (records, summary) = run_cri(
        &dir,
        &input,
        ",format=cri",
        &["--max-line", "128KiB", "--read-buf", "128KiB"],
    );
    let expected = expected_records(&lines);
    assert_eq!(records.len(), expected.len());
    for (index, (got, want)) in records.iter().zip(&expected).enumerate() {
        assert!(
            got == want,
            "record {index} differs: {:.200} vs {:.200}",
            got.to_string(),
            want.to_string()
        );
    }
    assert_eq!(records.last().unwrap()["body"], json!("café"));
    assert_eq!(summary.input(0, "records"), lines.len() as u64);
    assert_eq!(summary.input(0, "invalid"), 0);
    assert_eq!(summary.input(0, "truncated"), 0);
}

#[test]
fn cri_partial_lines_join_across_many_small_reads() {
    let dir = TempDir::new("cri-small-reads");
    // 4 KiB reads (--max-line 2KiB): nearly every read ends inside a
    // message, often inside a line.
    let texts: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("{i:04} ").repeat(100).into_bytes())
        .collect();
    let mut lines: Vec<CriLine<'_>> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let parts: Vec<&[u8]> = text.chunks(170).collect();
        for (index, part) in parts.iter().enumerate() {
            let tag = if index + 1 == parts.len() { "F" } else { "P" };
            let stream = if i % 3 == 0 { "stderr" } else { "stdout" };
            lines.push(("2026-12-02T04:09:29.000000001Z", stream, tag, part));
        }
    }
    let input = dir.join("0.log");
    fs::write(&input, cri_bytes(&lines)).unwrap();
    assert!(file_len(&input) > 40 * 4096);
    let (records, summary) = run_cri(
        &dir,
        &input,
        ",format=cri",
        &["--max-line", "2KiB", "--read-buf", "4KiB"],
    );
    assert!(records == expected_records(&lines), "records differ");
    assert_eq!(records.len(), texts.len());
    assert_eq!(summary.input(0, "truncated"), 0);
}

#[test]
fn cri_messages_past_max_line_are_cut_and_the_next_message_is_whole() {
    let dir = TempDir::new("cri-cut");
    let part = vec![b'x'; 3000];
    let lines: Vec<CriLine<'_>> = vec![
        ("2026-12-02T04:09:29Z", "stdout", "P", &part),
        ("2026-12-02T04:09:29Z", "stdout", "P", &part),
        ("2026-12-02T04:09:29Z", "stdout", "P", &part),
        ("2026-12-02T04:09:29Z", "stdout", "F", b"tail"),
        ("2026-12-02T04:09:30Z", "stdout", "F", b"next"),
    ];
    let input = dir.join("0.log");
    fs::write(&input, cri_bytes(&lines)).unwrap();
    let (records, summary) = run_cri(&dir, &input, ",format=cri", &["--max-line", "8KiB"]);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["body"].as_str().unwrap().len(), 8 * 1024);
    assert_eq!(records[1]["body"], json!("next"));
    assert_eq!(summary.input(0, "truncated"), 1);
}

#[test]
fn malformed_cri_lines_are_counted_and_routed_per_on_invalid() {
    let dir = TempDir::new("cri-invalid");
    let input = dir.join("0.log");
    fs::write(
        &input,
        b"2026-12-02T04:09:29Z stdout F good\nnot a cri line\n2026-12-02T04:09:29Z stdin F bad stream\n2026-12-02 04:09:29Z stdout F bad time\n2026-12-02T04:09:29Z stdout X bad tag\n2026-12-02T04:09:30Z stderr F also good\n",
    )
    .unwrap();
    let (records, summary) = run_cri(&dir, &input, ",format=cri", &["--on-invalid", "drop"]);
    let bodies: Vec<&Value> = records.iter().map(|r| &r["body"]).collect();
    assert_eq!(bodies, [&json!("good"), &json!("also good")]);
    assert_eq!(summary.input(0, "records"), 6);
    assert_eq!(summary.input(0, "invalid"), 4);

    let dead = dir.join("dead.txt");
    let dead_arg = p(&dead);
    let (records, _) = run_cri(
        &dir,
        &input,
        ",format=cri",
        &["--on-invalid", "deadletter", "--dead-letter", &dead_arg],
    );
    assert_eq!(records.len(), 2);
    // raw (the default): passed on as they are, in their place.
    let output = dir.join("out.ndjson");
    let spec = format!("file:{},format=cri", p(&input));
    let out = format!("file:{}", p(&output));
    let _ = fs::remove_file(&output);
    run(
        &dir,
        &["run", "--input", &spec, "--output", &out, "--exit-on-eof"],
        TIMEOUT,
    )
    .assert_success();
    let text = fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[1], "not a cri line");
    assert_eq!(lines[4], "2026-12-02T04:09:29Z stdout X bad tag");
    assert_eq!(
        fs::read_to_string(&dead).unwrap(),
        "not a cri line\n2026-12-02T04:09:29Z stdin F bad stream\n2026-12-02 04:09:29Z stdout F bad time\n2026-12-02T04:09:29Z stdout X bad tag\n"
    );
}

#[test]
fn a_trailing_partial_line_is_sent_after_the_multiline_timeout() {
    let dir = TempDir::new("cri-timeout");
    let input = dir.join("0.log");
    // containerd writes a last chunk without newline as a P that no F
    // ever follows.
    fs::write(
        &input,
        b"2026-12-02T04:09:29Z stdout F whole\n2026-12-02T04:09:30Z stdout P last chunk\n",
    )
    .unwrap();
    let records = sent_by_the_timeout(&dir, &input, ",format=cri", 2);
    assert_eq!(records[1]["body"], json!("last chunk"));
    assert_eq!(records[1]["time"], json!("2026-12-02T04:09:30Z"));
}

/// Runs `file:INPUT{spec}` with a 300 ms `--multiline-timeout` until the
/// output holds `count` records, the last one sent by the timeout while
/// ringway runs; stops it (SIGTERM) and checks nothing more was sent.
pub(crate) fn sent_by_the_timeout(
    dir: &TempDir,
    input: &Path,
    spec: &str,
    count: usize,
) -> Vec<Value> {
    let output = dir.join("out.ndjson");
    let mut ringway = spawn(
        dir,
        &[
            "run",
            "--input",
            &format!("file:{}{spec}", p(input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--multiline-timeout",
            "300ms",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || output_records(&output).len()
            == count),
        "the pending record was not sent; output: {:?}",
        fs::read_to_string(&output)
    );
    ringway.assert_running("while the timeout sends the pending record");
    let records = output_records(&output);
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(output_records(&output), records, "sent once");
    records
}

#[test]
fn docker_json_file_split_lines_are_joined() {
    let dir = TempDir::new("docker");
    let input = dir.join("abc-json.log");
    let long: String = "0123456789".repeat(2000);
    let (first, second) = long.split_at(16 * 1024);
    let lines = [
        json!({"log": "hello \"docker\"\n", "stream": "stdout", "time": "2026-12-02T04:09:29.123456789Z"}),
        json!({"log": first, "stream": "stdout", "time": "2026-12-02T04:09:30.1Z"}),
        json!({"log": "err\n", "stream": "stderr", "time": "2026-12-02T04:09:30.2Z"}),
        json!({"log": format!("{second}\n"), "stream": "stdout", "time": "2026-12-02T04:09:30.3Z"}),
        json!({"log": "no newline at all", "stream": "stderr", "attrs": {"tag": "x"}, "time": "2026-12-02T04:09:31Z"}),
        json!({"log": " and its end\n", "stream": "stderr", "time": "2026-12-02T04:09:31.5Z"}),
    ];
    let mut text = String::new();
    for line in &lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text.push_str("{\"log\":\"broken\n");
    fs::write(&input, text).unwrap();
    let (records, summary) = run_cri(&dir, &input, ",format=docker", &["--on-invalid", "drop"]);
    assert_eq!(
        records,
        [
            record(
                "2026-12-02T04:09:29.123456789Z",
                "stdout",
                b"hello \"docker\""
            ),
            record("2026-12-02T04:09:30.2Z", "stderr", b"err"),
            record("2026-12-02T04:09:30.1Z", "stdout", long.as_bytes()),
            record(
                "2026-12-02T04:09:31Z",
                "stderr",
                b"no newline at all and its end"
            ),
        ]
    );
    assert_eq!(summary.input(0, "invalid"), 1);
}

#[test]
fn kubernetes_fields_come_from_pod_and_container_log_paths() {
    let dir = TempDir::new("k8s-paths");
    let uid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let id = "8f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
    let pod_dir = dir.subdir(&format!("var/log/pods/shop_web-7d4b9c-x2lq_{uid}/nginx"));
    let pod_log = pod_dir.join("1.log");
    fs::write(&pod_log, b"2026-12-02T04:09:29Z stdout F from pods\n").unwrap();
    let containers = dir.subdir("var/log/containers");
    let link = containers.join(format!("web-7d4b9c-x2lq_shop_nginx-{id}.log"));
    std::os::unix::fs::symlink(&pod_log, &link).unwrap();
    let plain = dir.join("plain.log");
    fs::write(&plain, b"2026-12-02T04:09:29Z stdout F plain\n").unwrap();

    let (records, _) = run_cri(&dir, &pod_log, ",format=cri", &[]);
    assert_eq!(
        records,
        [json!({
            "time": "2026-12-02T04:09:29Z", "stream": "stdout", "body": "from pods",
            "k8s.namespace.name": "shop", "k8s.pod.name": "web-7d4b9c-x2lq",
            "k8s.pod.uid": uid, "k8s.container.name": "nginx",
            "k8s.container.restart_count": 1,
        })]
    );
    let (records, _) = run_cri(&dir, &link, ",format=cri", &[]);
    assert_eq!(
        records,
        [json!({
            "time": "2026-12-02T04:09:29Z", "stream": "stdout", "body": "from pods",
            "k8s.namespace.name": "shop", "k8s.pod.name": "web-7d4b9c-x2lq",
            "k8s.container.name": "nginx", "container.id": id,
        })]
    );
    // k8s=false, and a path of no kubelet shape: nothing added.
    let (records, _) = run_cri(&dir, &pod_log, ",format=cri,k8s=false", &[]);
    assert_eq!(
        records,
        [record("2026-12-02T04:09:29Z", "stdout", b"from pods")]
    );
    let (records, _) = run_cri(&dir, &plain, ",format=cri", &[]);
    assert_eq!(
        records,
        [record("2026-12-02T04:09:29Z", "stdout", b"plain")]
    );
}

/// The offset saved for `path` in `data`'s checkpoint file.
pub(crate) fn saved_offset(data: &Path, path: &Path) -> Option<u64> {
    saved_offsets(data, path).first().copied()
}

/// The offsets saved for files opened as `path` (a rotated file keeps the
/// path it was opened under), in the checkpoint file's order.
fn saved_offsets(data: &Path, path: &Path) -> Vec<u64> {
    let Some(state) = fs::read(data.join("checkpoints.json"))
        .ok()
        .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
    else {
        return Vec::new();
    };
    let files = state["inputs"].as_object().into_iter().flat_map(|inputs| {
        inputs
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .collect::<Vec<_>>()
    });
    files
        .filter(|file| file["path"].as_str().map(Path::new) == Some(path))
        .filter_map(|file| file["offset"].as_u64())
        .collect()
}

#[test]
fn kill_9_in_the_middle_of_a_partial_run_resumes_it_whole_once() {
    let dir = TempDir::new("cri-kill");
    let input = dir.join("0.log");
    let first = b"2026-12-02T04:09:29Z stdout F before\n";
    let parts = b"2026-12-02T04:09:30Z stdout P one \n2026-12-02T04:09:30Z stdout P two \n";
    let mut bytes = first.to_vec();
    bytes.extend_from_slice(parts);
    fs::write(&input, &bytes).unwrap();
    let records = resume_after_kill_9(
        &dir,
        &input,
        ",format=cri",
        first.len() as u64,
        b"2026-12-02T04:09:31Z stdout F three\n",
    );
    let bodies: Vec<Value> = records
        .into_iter()
        .map(|record| record["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("before"), json!("one two three")]);
}

/// Runs `file:INPUT{spec}` with checkpoints in a data directory every
/// 100 ms and no multiline timeout, until one record is out and the
/// checkpoint stays at `held` (a pending message's first line); kills it
/// with SIGKILL, appends `more` to the input, runs again to EOF and returns
/// every record out, once the checkpoint reached the end of the input.
pub(crate) fn resume_after_kill_9(
    dir: &TempDir,
    input: &Path,
    spec: &str,
    held: u64,
    more: &[u8],
) -> Vec<Value> {
    let output = dir.join("out.ndjson");
    let data = dir.subdir("data");
    let args = |exit: bool| {
        let mut args = vec![
            "run".to_string(),
            "--input".into(),
            format!("file:{}{spec}", p(input)),
            "--output".into(),
            format!("file:{}", p(&output)),
            "--data-dir".into(),
            p(&data),
            "--checkpoint-interval".into(),
            "100ms".into(),
            "--multiline-timeout".into(),
            "1h".into(),
        ];
        if exit {
            args.push("--exit-on-eof".into());
        }
        args
    };
    let first_args = args(false);
    let mut ringway = spawn(dir, &as_strs(&first_args));
    // The message's lines were read (the record before them is delivered)
    // and the checkpoint holds at its first line, not at the end of file.
    assert!(
        wait_until(Duration::from_secs(20), || {
            output_records(&output).len() == 1 && saved_offset(&data, input) == Some(held)
        }),
        "checkpoint {:?}, output {:?}",
        saved_offset(&data, input),
        fs::read_to_string(&output)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(saved_offset(&data, input), Some(held));
    ringway.assert_running("before the kill");
    ringway.signal(libc::SIGKILL);
    let killed = ringway.wait(TIMEOUT);
    assert_eq!(killed.status.code(), None, "killed by a signal");

    append(input, more);
    let second_args = args(true);
    run(dir, &as_strs(&second_args), TIMEOUT).assert_success();
    assert_eq!(saved_offset(&data, input), Some(file_len(input)));
    output_records(&output)
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn ringway_sql_reads_container_lines_each_on_its_own() {
    let dir = TempDir::new("cri-sql");
    let input = dir.join("0.log");
    fs::write(
        &input,
        b"2026-12-02T04:09:29Z stdout P one\n2026-12-02T04:09:29Z stderr F two\nbad\n",
    )
    .unwrap();
    let done = run(
        &dir,
        &[
            "sql",
            "--format",
            "cri",
            "SELECT body FROM logs WHERE stream = 'stdout'",
            &p(&input),
        ],
        TIMEOUT,
    );
    done.assert_success();
    assert_eq!(
        String::from_utf8_lossy(&done.stdout),
        "{\"body\":\"one\"}\n"
    );
    assert!(done.stderr.contains("1 invalid lines"), "{}", done.stderr);
}

#[test]
fn a_partial_run_joins_across_a_kubelet_rotation() {
    let dir = TempDir::new("cri-rotation");
    let pod = dir.subdir("pods").join("shop_web-1_0b1c2d3e/nginx");
    fs::create_dir_all(&pod).unwrap();
    let input = pod.join("0.log");
    let output = dir.join("out.ndjson");
    let data = dir.subdir("data");
    fs::write(
        &input,
        b"2026-12-02T04:09:29Z stdout F before\n2026-12-02T04:09:30Z stdout P one \n",
    )
    .unwrap();
    let glob = format!("file:{}/*.log,format=cri,k8s=false", p(&pod));
    let ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &glob,
            "--output",
            &format!("file:{}", p(&output)),
            "--data-dir",
            &p(&data),
            "--checkpoint-interval",
            "100ms",
            "--multiline-timeout",
            "1h",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || output_records(&output).len()
            == 1),
        "output: {:?}",
        fs::read_to_string(&output)
    );
    // The kubelet renames `0.log` to `0.log.TIMESTAMP` and has the runtime
    // reopen `0.log`, where the message goes on.
    let rotated = pod.join("0.log.20261202-040931");
    let rotated_len = file_len(&input);
    fs::rename(&input, &rotated).unwrap();
    fs::write(
        &input,
        b"2026-12-02T04:09:31Z stdout P two \n2026-12-02T04:09:31Z stdout F three\n2026-12-02T04:09:32Z stdout F after\n",
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || output_records(&output).len()
            == 3),
        "output: {:?}",
        fs::read_to_string(&output)
    );
    // Both files are delivered to their ends once the joined message is
    // (the rotated one is let go once delivered and idle).
    let at_ends = || {
        let offsets = saved_offsets(&data, &input);
        offsets.contains(&file_len(&input))
            && offsets
                .iter()
                .all(|&offset| offset == file_len(&input) || offset == rotated_len)
    };
    assert!(
        wait_until(Duration::from_secs(20), at_ends),
        "checkpoint {:?}",
        saved_offsets(&data, &input)
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(
        output_records(&output),
        [
            record("2026-12-02T04:09:29Z", "stdout", b"before"),
            record("2026-12-02T04:09:30Z", "stdout", b"one two three"),
            record("2026-12-02T04:09:32Z", "stdout", b"after"),
        ]
    );
}

#[test]
fn format_auto_decides_each_line_cri_docker_json_or_plain() {
    let dir = TempDir::new("auto");
    let input = dir.join("mixed.log");
    let lines = [
        "2026-12-02T04:09:29Z stdout F cri whole",
        "2026-12-02T04:09:30Z stderr P cri part one ",
        r#"{"log":"docker line\n","stream":"stdout","time":"2026-12-02T04:09:31.5Z"}"#,
        r#"{"level":"info","msg":"json object"}"#,
        "[1,2,3]",
        "plain text",
        "2026-12-02T04:09:32Z stderr F and two",
        r#"{"log":"no stream or time"}"#,
        "{not json",
        "2026-12-02 12:00:00 digits first, not CRI",
        "",
    ];
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (output, summary) = run_file(&dir, &input, ",format=auto", &[]);
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        [
            r#"{"time":"2026-12-02T04:09:29Z","stream":"stdout","body":"cri whole"}"#,
            r#"{"time":"2026-12-02T04:09:31.5Z","stream":"stdout","body":"docker line"}"#,
            r#"{"level":"info","msg":"json object"}"#,
            "[1,2,3]",
            r#"{"body":"plain text"}"#,
            r#"{"time":"2026-12-02T04:09:30Z","stream":"stderr","body":"cri part one and two"}"#,
            r#"{"log":"no stream or time"}"#,
            r#"{"body":"{not json"}"#,
            r#"{"body":"2026-12-02 12:00:00 digits first, not CRI"}"#,
            r#"{"body":""}"#,
            "",
        ]
        .join("\n")
    );
    assert_eq!(summary.input(0, "records"), lines.len() as u64);
    assert_eq!(summary.input(0, "invalid"), 0);
}

#[test]
fn json_merge_gives_records_the_keys_of_object_messages() {
    let dir = TempDir::new("cri-merge");
    let input = dir.join("0.log");
    fs::write(
        &input,
        cri_bytes(&[
            (
                "2026-12-02T04:09:29Z",
                "stdout",
                "F",
                br#"{"level":"info","msg":"ok"}"#,
            ),
            (
                "2026-12-02T04:09:30Z",
                "stdout",
                "P",
                br#"{"level":"warn","#,
            ),
            ("2026-12-02T04:09:30Z", "stdout", "F", br#""msg":"split"}"#),
            (
                "2026-12-02T04:09:31Z",
                "stderr",
                "F",
                br#"{"level":"error" not json"#,
            ),
            ("2026-12-02T04:09:32Z", "stdout", "F", b"plain"),
        ]),
    )
    .unwrap();
    let (records, summary) = run_cri(&dir, &input, ",format=cri,json=merge", &[]);
    assert_eq!(
        records,
        [
            json!({"time":"2026-12-02T04:09:29Z","stream":"stdout","level":"info","msg":"ok"}),
            json!({"time":"2026-12-02T04:09:30Z","stream":"stdout","level":"warn","msg":"split"}),
            record(
                "2026-12-02T04:09:31Z",
                "stderr",
                br#"{"level":"error" not json"#
            ),
            record("2026-12-02T04:09:32Z", "stdout", b"plain"),
        ]
    );
    // A message that is not a JSON object is a body, not an invalid line.
    assert_eq!(summary.input(0, "invalid"), 0);
}
