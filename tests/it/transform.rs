//! The transform's plumbing end to end (DESIGN §5, issue 16): `--sql`
//! filters and `--where` routes through the real binary, on real files and
//! sockets. Each expected output is computed here, independently, from the
//! lines the test wrote (parsed with serde_json), never by ringway's engine.
//! Covered: routes deliver each record to exactly the outputs whose
//! condition holds; a filter survives kill -9 with --data-dir and its
//! checkpoint reaches the end of the file even when the last lines are all
//! filtered; a batch routed nowhere still lets --exit-on-eof finish; OTLP
//! `--otlp-ack delivered` answers every request when a filter drops
//! records; the counters reach the summary and /metrics; refused queries
//! and routes are one line and exit 2 from `run` and `check`; `check`
//! prints them normalised.

use crate::common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];

/// A JSON log line: `level` is missing from every 7th line and `status`
/// from every 11th (a missing field is NULL, so no condition on it holds).
fn log_line(i: u64, rng: &mut Rng) -> String {
    let mut fields = vec![format!("\"i\":{i}")];
    if i % 7 != 3 {
        fields.push(format!(
            "\"level\":\"{}\"",
            LEVELS[rng.below(LEVELS.len() as u64) as usize]
        ));
    }
    if i % 11 != 5 {
        fields.push(format!(
            "\"status\":{}",
            [200, 201, 404, 500, 503][rng.below(5) as usize]
        ));
    }
    fields.push(format!("\"msg\":\"request {i} took {}ms\"", rng.below(900)));
    format!("{{{}}}", fields.join(","))
}

fn lines_of(bytes: &[u8]) -> Vec<String> {
    split_lines(bytes)
        .into_iter()
        .map(|line| String::from_utf8(line.to_vec()).expect("UTF-8"))
        .collect()
}

/// Asserts `actual` holds exactly `expected`, line by line, in order.
fn assert_lines(expected: &[String], actual: &[u8], context: &str) {
    let actual = lines_of(actual);
    if let Some(at) = expected.iter().zip(&actual).position(|(e, a)| e != a) {
        panic!(
            "{context}: line {} differs:\n  expected {}\n  got      {}",
            at + 1,
            expected[at],
            actual[at]
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{context}: {} lines, expected {}",
        actual.len(),
        expected.len()
    );
}

/// The saved offset of `path` in `data`'s checkpoints.json.
fn checkpoint_offset(data: &Path, path: &Path) -> Option<u64> {
    let text = fs::read(data.join("checkpoints.json")).ok()?;
    let state: Value = serde_json::from_slice(&text).expect("checkpoint is JSON");
    state["inputs"]
        .as_object()?
        .values()
        .flat_map(|files| files.as_array().cloned().unwrap_or_default())
        .find(|file| file["path"].as_str().map(Path::new) == Some(path))
        .and_then(|file| file["offset"].as_u64())
}

#[test]
fn routes_deliver_each_record_to_exactly_the_outputs_whose_condition_holds() {
    let dir = TempDir::new("routes");
    let input = dir.join("in.log");
    let mut rng = Rng::new(16);
    let lines: Vec<String> = (0..30_000).map(|i| log_line(i, &mut rng)).collect();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let outputs: Vec<_> = (1..=3).map(|n| dir.join(format!("out{n}.log"))).collect();
    let summary = dir.join("summary.json");
    // Small reads: many batches, so splitting and whole-batch routing both
    // happen many times.
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &file_output(&outputs[0]),
            "--output",
            &file_output(&outputs[1]),
            "--output",
            &file_output(&outputs[2]),
            "--where",
            "1=level IN ('error','fatal')",
            "--where",
            "2=status >= 500",
            "--read-buf",
            "16KiB",
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    done.assert_success();

    // The split, computed from the lines themselves.
    let mut expected: [Vec<String>; 3] = Default::default();
    for line in &lines {
        let record: Value = serde_json::from_str(line).unwrap();
        if matches!(record["level"].as_str(), Some("error" | "fatal")) {
            expected[0].push(line.clone());
        }
        if record["status"]
            .as_i64()
            .is_some_and(|status| status >= 500)
        {
            expected[1].push(line.clone());
        }
        expected[2].push(line.clone());
    }
    assert!(
        expected[0].len() > 1000 && expected[1].len() > 1000,
        "the data exercises both routes"
    );
    for (n, output) in outputs.iter().enumerate() {
        assert_lines(
            &expected[n],
            &read_output(output),
            &format!("output {}", n + 1),
        );
    }
    let summary = read_summary(&summary);
    for (n, expected) in expected.iter().enumerate() {
        assert_eq!(
            summary.output(n, "records"),
            expected.len() as u64,
            "{summary}"
        );
        assert_eq!(
            summary.output(n, "routed"),
            expected.len() as u64,
            "{summary}"
        );
        assert_eq!(
            summary.output(n, "skipped"),
            (lines.len() - expected.len()) as u64,
            "{summary}"
        );
    }
    assert_eq!(summary.input(0, "kept"), lines.len() as u64, "{summary}");
    assert_eq!(summary.input(0, "filtered"), 0, "{summary}");
}

/// A fixed-length JSON line (so an offset is a line count): `tag` is
/// `keep` for every third line, and for none of the last `all_dropped`.
fn numbered_json(n: u64, lines: u64, all_dropped: u64) -> String {
    let tag = if n.is_multiple_of(3) && n < lines - all_dropped {
        "keep"
    } else {
        "drop"
    };
    // 10,000,000 + n: eight digits, and valid JSON (no leading zeros).
    format!(
        "{{\"n\":{},\"tag\":\"{tag}\",\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}}",
        10_000_000 + n
    )
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn json_number(line: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(line).ok()?;
    value["n"].as_u64()?.checked_sub(10_000_000)
}

#[test]
fn a_filter_survives_kill_9_and_its_checkpoint_reaches_the_end_of_the_file() {
    const LINES: u64 = 300_000;
    const ALL_DROPPED: u64 = 5_000;
    const CHUNK: u64 = 2_000;
    const KILLS: usize = 4;
    let dir = TempDir::new("filter-kill9");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    File::create(&input).unwrap();
    let line_len = numbered_json(0, LINES, ALL_DROPPED).len() as u64 + 1;

    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (input, written) = (input.clone(), Arc::clone(&written));
        thread::spawn(move || {
            let mut next = 0;
            while next < LINES {
                let end = (next + CHUNK).min(LINES);
                let mut chunk = String::new();
                for n in next..end {
                    chunk.push_str(&numbered_json(n, LINES, ALL_DROPPED));
                    chunk.push('\n');
                }
                append(&input, chunk.as_bytes());
                next = end;
                written.store(next, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let args: Vec<String> = vec![
        "run".into(),
        "--input".into(),
        format!("file:{},format=json", p(&input)),
        "--output".into(),
        file_output(&output),
        "--sql".into(),
        "SELECT * FROM logs WHERE tag = 'keep'".into(),
        "--data-dir".into(),
        p(&data),
        "--stats-interval".into(),
        "0".into(),
    ];
    let mut rng = Rng::new(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    // Per kill: lines before the checkpoint, and the last line delivered.
    let mut windows: Vec<(u64, Option<u64>)> = Vec::new();
    for round in 0..KILLS {
        let mut ringway = spawn(&dir, &strs(&args));
        let life = Duration::from_millis(200 + rng.below(1_000));
        let started = Instant::now();
        // Waits for time to pass on purpose: the kill lands mid-stream.
        while started.elapsed() < life {
            thread::sleep(Duration::from_millis(25));
        }
        ringway.assert_running(&format!("before kill {round}"));
        ringway.signal(libc::SIGKILL);
        assert_eq!(ringway.wait(TIMEOUT).code(), None, "killed by a signal");
        let checkpoint_line = checkpoint_offset(&data, &input).map_or(0, |offset| {
            assert_eq!(
                offset % line_len,
                0,
                "kill {round}: offset {offset} mid-line"
            );
            offset / line_len
        });
        let bytes = read_output(&output);
        let complete = &bytes[..bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
        let last = split_lines(complete)
            .last()
            .and_then(|line| json_number(line));
        windows.push((checkpoint_line, last));
    }
    writer.join().unwrap();
    let mut last_args = args.clone();
    last_args.push("--exit-on-eof".into());
    run(&dir, &strs(&last_args), TIMEOUT).assert_success();

    // Every kept line is there; nothing else is; a line is there twice only
    // if a kill caught it delivered past the checkpoint on disk.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let bytes = read_output(&output);
    assert_eq!(bytes.last(), Some(&b'\n'), "the output ends in a torn line");
    for line in split_lines(&bytes) {
        let n = json_number(line)
            .unwrap_or_else(|| panic!("foreign line {:?}", String::from_utf8_lossy(line)));
        assert_eq!(
            line,
            numbered_json(n, LINES, ALL_DROPPED).as_bytes(),
            "line {n} differs from what was written"
        );
        *seen.entry(n).or_default() += 1;
    }
    let expected: Vec<u64> = (0..LINES)
        .filter(|&n| numbered_json(n, LINES, ALL_DROPPED).contains("\"keep\""))
        .collect();
    let missing: Vec<&u64> = expected.iter().filter(|n| !seen.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{} kept lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        seen.len(),
        expected.len(),
        "lines the filter drops were delivered"
    );
    for (&n, &count) in &seen {
        if count > 1 {
            let replays = windows
                .iter()
                .filter(|(checkpoint, last)| {
                    last.is_some_and(|last| (*checkpoint..=last).contains(&n))
                })
                .count() as u32;
            assert!(
                count <= 1 + replays,
                "line {n} delivered {count} times, but only {replays} kills caught it past a checkpoint ({windows:?})"
            );
        }
    }
    let duplicates: u32 = seen.values().map(|count| count - 1).sum();
    println!(
        "filter under kill -9: {KILLS} kills at (checkpoint line, last delivered line) {windows:?}; {} kept lines, {duplicates} duplicates",
        expected.len()
    );
    // The last lines are all filtered, yet they are delivered as far as the
    // checkpoint is concerned: it is at the end of the file.
    assert_eq!(
        checkpoint_offset(&data, &input),
        Some(file_len(&input)),
        "the checkpoint stops short of the end of the file"
    );
}

#[test]
fn a_batch_routed_nowhere_lets_exit_on_eof_finish_and_advances_the_checkpoint() {
    let dir = TempDir::new("routed-nowhere");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    let summary = dir.join("summary.json");
    let mut rng = Rng::new(3);
    let lines: Vec<String> = (0..20_000).map(|i| log_line(i, &mut rng)).collect();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &file_output(&output),
            "--where",
            "1=level = 'never'",
            "--data-dir",
            &p(&data),
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    done.assert_success();
    assert!(
        read_output(&output).is_empty(),
        "nothing was routed to the output"
    );
    assert_eq!(checkpoint_offset(&data, &input), Some(file_len(&input)));
    let summary = read_summary(&summary);
    assert_eq!(summary.output(0, "routed"), 0, "{summary}");
    assert_eq!(
        summary.output(0, "skipped"),
        lines.len() as u64,
        "{summary}"
    );
    assert_eq!(summary.input(0, "records"), lines.len() as u64, "{summary}");
}

/// One OTLP/JSON request with a record per body; the status of its answer.
fn post_otlp_json(addr: SocketAddr, bodies: &[String]) -> u16 {
    let records: Vec<Value> = bodies
        .iter()
        .map(|body| serde_json::json!({"body": {"stringValue": body}, "severityText": "INFO"}))
        .collect();
    let doc =
        serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).to_string();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{doc}",
        doc.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[test]
fn otlp_delivered_ack_answers_every_request_when_a_filter_drops_records() {
    let dir = TempDir::new("otlp-filter");
    let output = dir.join("out.ndjson");
    // A second output routed the records of requests 1 and 10 to 19 only:
    // their batches are split, and each part must be delivered before the
    // request is answered.
    let routed = dir.join("routed.ndjson");
    let (ringway, addr) = start_listening(
        &dir,
        "otlp:127.0.0.1:0",
        &file_output(&output),
        &[
            "--otlp-ack",
            "delivered",
            "--sql",
            "SELECT * FROM logs WHERE body LIKE 'keep%'",
            "--output",
            &file_output(&routed),
            "--where",
            "2=body LIKE 'keep-1%'",
        ],
    );
    let mut expected = Vec::new();
    for n in 0..40u64 {
        // Every fourth request has only records the filter drops.
        let bodies: Vec<String> = (0..50u64)
            .map(|j| {
                let keep = !n.is_multiple_of(4) && j.is_multiple_of(2);
                format!("{}-{n}-{j}", if keep { "keep" } else { "drop" })
            })
            .collect();
        expected.extend(bodies.iter().filter(|b| b.starts_with("keep")).cloned());
        assert_eq!(post_otlp_json(addr, &bodies), 200, "request {n}");
    }
    // Answered 200 under `delivered`: the kept records are in the files.
    let bodies_of = |path: &Path| -> Vec<String> {
        let mut bodies: Vec<String> = split_lines(&read_output(path))
            .into_iter()
            .map(|line| {
                let record: Value = serde_json::from_slice(line).expect("JSON");
                record["body"].as_str().expect("a string body").to_string()
            })
            .collect();
        bodies.sort();
        bodies
    };
    let (got, got_routed) = (bodies_of(&output), bodies_of(&routed));
    let summary = stop(ringway, &dir);
    expected.sort();
    assert_eq!(got, expected);
    let expected_routed: Vec<String> = expected
        .iter()
        .filter(|body| body.starts_with("keep-1"))
        .cloned()
        .collect();
    assert!(!expected_routed.is_empty());
    assert_eq!(got_routed, expected_routed);
    assert_eq!(
        summary.input(0, "filtered"),
        40 * 50 - expected.len() as u64,
        "{summary}"
    );
    assert_eq!(summary.input(0, "kept"), expected.len() as u64, "{summary}");
}

#[test]
fn the_summary_and_metrics_count_filtered_records_and_runtime_errors() {
    let dir = TempDir::new("transform-counters");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    // `code` is a number, a number in a string, or text that cannot be
    // cast (a runtime error: NULL, so the WHERE does not hold).
    let mut lines = Vec::new();
    let (mut kept, mut filtered, mut errors) = (0u64, 0u64, 0u64);
    for i in 0..3_000u64 {
        let code = match i % 3 {
            0 => format!("{}", i % 10),
            1 => format!("\"{}\"", i % 10),
            _ => "\"n/a\"".to_string(),
        };
        lines.push(format!("{{\"i\":{i},\"code\":{code}}}"));
        match i % 3 {
            2 => {
                errors += 1;
                filtered += 1;
            }
            _ if i % 10 > 4 => kept += 1,
            _ => filtered += 1,
        }
    }
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &file_output(&output),
            "--sql",
            "SELECT * FROM logs WHERE CAST(code AS BIGINT) > 4",
            "--metrics",
            "127.0.0.1:0",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&dir.join("summary.json")),
        ],
    );
    let addr = metrics_address(&mut ringway);
    let metric = "ringway_transform_records_total";
    assert!(
        wait_until(TIMEOUT, || metric_sum(addr, metric)
            == Some(kept + filtered + errors)),
        "{metric} never reached {} (kept + filtered + error): {:?}",
        kept + filtered + errors,
        metric_sum(addr, metric)
    );
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "kept"), kept, "{summary}");
    assert_eq!(summary.input(0, "filtered"), filtered, "{summary}");
    assert_eq!(summary.input(0, "transform_errors"), errors, "{summary}");
    assert_eq!(summary.output(0, "records"), kept, "{summary}");
}

fn one_error_line(done: &Finished, needles: &[&str]) {
    done.assert_code(2);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", done.stderr);
    assert!(lines[0].starts_with("ringway: error: "), "{}", lines[0]);
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} not in {}", lines[0]);
    }
}

#[test]
fn refused_queries_and_routes_exit_2_with_one_line_from_run_and_check() {
    let dir = TempDir::new("transform-refused");
    let input = dir.join("in.log");
    fs::write(&input, "{}\n").unwrap();
    let file_in = format!("file:{}", p(&input));
    let out = file_output(&dir.join("out.log"));
    let group_by = "SELECT level, count(*) FROM logs GROUP BY level";
    let cases: [(Vec<&str>, Vec<&str>); 5] = [
        (
            vec!["--sql", group_by],
            vec!["--sql: ", "GROUP BY", group_by],
        ),
        (
            vec!["--where", "1=level IN (SELECT x FROM y)"],
            vec!["--where 1: ", "level IN (SELECT x FROM y)"],
        ),
        (
            vec!["--where", "3=true"],
            vec!["--where 3: there is no output 3"],
        ),
        (
            vec!["--where", "1=true", "--where", "1=false"],
            vec!["--where 1: given twice"],
        ),
        (
            vec!["--where", "level = 'x'"],
            vec!["--where \"level = 'x'\": not N=EXPR"],
        ),
    ];
    for (extra, needles) in &cases {
        for command in ["run", "check"] {
            let mut args = vec![command, "--input", &file_in, "--output", &out];
            args.extend(extra.iter().copied());
            one_error_line(&run(&dir, &args, TIMEOUT), needles);
        }
    }
    // A config file's [[input]] sql and [[output]] where name their table.
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "[[input]]\nkind = \"file\"\npath = \"{}\"\nsql = \"{group_by}\"\n[[output]]\nkind = \"null\"\n",
            p(&input)
        ),
    )
    .unwrap();
    for command in ["run", "check"] {
        let done = run(&dir, &[command, "--config", &p(&config)], TIMEOUT);
        one_error_line(&done, &["sql: ", "GROUP BY", "[[input]] #1"]);
    }
}

#[test]
fn check_prints_every_query_and_route_normalised() {
    let dir = TempDir::new("transform-check");
    let input = dir.join("in.log");
    fs::write(&input, "{}\n").unwrap();
    let out1 = file_output(&dir.join("a.log"));
    let out2 = file_output(&dir.join("b.log"));
    let done = run(
        &dir,
        &[
            "check",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &out1,
            "--output",
            &out2,
            "--sql",
            "select *   from logs where level = 'error'",
            "--where",
            "2=status>=500",
        ],
        TIMEOUT,
    );
    done.assert_success();
    let stdout = String::from_utf8(done.stdout.clone()).unwrap();
    let sql_line = stdout
        .lines()
        .find(|line| line.contains(&format!("input 1 (file:{}): sql: ", p(&input))))
        .unwrap_or_else(|| panic!("no normalised query in:\n{stdout}"));
    let where_line = stdout
        .lines()
        .find(|line| line.contains(&format!("output 2 ({out2}): where: ")))
        .unwrap_or_else(|| panic!("no normalised route in:\n{stdout}"));
    // Normalised: the engine's spelling, not the text as typed.
    assert!(!sql_line.contains("select *   from"), "{sql_line}");
    assert!(sql_line.contains("SELECT"), "{sql_line}");
    assert!(!where_line.ends_with("status>=500"), "{where_line}");
    assert!(
        !stdout.contains(&format!("output 1 ({out1})")),
        "output 1 has no route:\n{stdout}"
    );
    // The output is still a config ringway reads: its keys carry them.
    let config = dir.join("checked.toml");
    fs::write(&config, &stdout).unwrap();
    let again = run(&dir, &["check", "--config", &p(&config)], TIMEOUT);
    again.assert_success();
    let again = String::from_utf8(again.stdout).unwrap();
    let normalised = sql_line.split_once("sql: ").unwrap().1;
    assert!(
        again.contains(&format!("sql: {normalised}")),
        "{normalised} not read back:\n{again}"
    );
}

#[test]
fn a_projection_writes_the_selected_fields_and_routes_split_it() {
    let dir = TempDir::new("projection-routes");
    let input = dir.join("in.log");
    let mut rng = Rng::new(61);
    let lines: Vec<String> = (0..30_000).map(|i| log_line(i, &mut rng)).collect();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let outputs = [dir.join("all.log"), dir.join("5xx.log")];
    let summary = dir.join("summary.json");
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &file_output(&outputs[0]),
            "--output",
            &file_output(&outputs[1]),
            "--sql",
            "SELECT i, level, status FROM logs",
            "--where",
            "2=status >= 500",
            "--read-buf",
            "16KiB",
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    // Each record as the three fields (NULL where missing), computed from
    // the lines; compared as JSON values, in order.
    let mut expected: [Vec<Value>; 2] = Default::default();
    for line in &lines {
        let record: Value = serde_json::from_str(line).unwrap();
        let projected = serde_json::json!({
            "i": record["i"],
            "level": record.get("level").cloned().unwrap_or(Value::Null),
            "status": record.get("status").cloned().unwrap_or(Value::Null),
        });
        if record["status"]
            .as_i64()
            .is_some_and(|status| status >= 500)
        {
            expected[1].push(projected.clone());
        }
        expected[0].push(projected);
    }
    for (n, output) in outputs.iter().enumerate() {
        let got: Vec<Value> = split_lines(&read_output(output))
            .into_iter()
            .map(|line| {
                serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!(
                        "output {}: not JSON ({e}): {:?}",
                        n + 1,
                        String::from_utf8_lossy(line)
                    )
                })
            })
            .collect();
        assert_eq!(got.len(), expected[n].len(), "output {} records", n + 1);
        if let Some(at) = got.iter().zip(&expected[n]).position(|(g, e)| g != e) {
            panic!(
                "output {} record {}: {} but expected {}",
                n + 1,
                at + 1,
                got[at],
                expected[n][at]
            );
        }
    }
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "kept"), lines.len() as u64, "{summary}");
    assert_eq!(
        summary.output(1, "routed"),
        expected[1].len() as u64,
        "{summary}"
    );
}

#[test]
fn syslog_records_route_by_the_keys_the_converter_writes() {
    let dir = TempDir::new("syslog-routes");
    let input = dir.join("in.log");
    // PRI 11 is user.err, 14 user.info.
    let lines: Vec<String> = (0..5_000u64)
        .map(|i| {
            let pri = if i % 3 == 0 { 11 } else { 14 };
            format!("<{pri}>Oct 11 22:14:15 host app[1]: message {i}")
        })
        .collect();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let outputs = [dir.join("all.log"), dir.join("err.log")];
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=syslog", p(&input)),
            "--output",
            &file_output(&outputs[0]),
            "--output",
            &file_output(&outputs[1]),
            "--where",
            "2=severity = 'err'",
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ],
        TIMEOUT,
    )
    .assert_success();
    let messages = |path: &Path| -> Vec<String> {
        split_lines(&read_output(path))
            .into_iter()
            .map(|line| {
                let record: Value = serde_json::from_slice(line).expect("JSON");
                record["message"].as_str().expect("a message").to_string()
            })
            .collect()
    };
    let all: Vec<String> = (0..5_000u64).map(|i| format!("message {i}")).collect();
    let errors: Vec<String> = (0..5_000u64)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("message {i}"))
        .collect();
    assert_eq!(messages(&outputs[0]), all);
    assert_eq!(messages(&outputs[1]), errors);
}

#[test]
fn invalid_json_lines_follow_on_invalid_and_raw_ones_are_evaluated_as_body() {
    let dir = TempDir::new("transform-invalid");
    let input = dir.join("in.log");
    let mut lines = Vec::new();
    for i in 0..3_000u64 {
        lines.push(match i % 4 {
            0 => format!("{{\"i\":{i},\"body\":\"keep {i}\"}}"),
            1 => format!("{{\"i\":{i},\"body\":\"drop {i}\"}}"),
            2 => format!("keep {i} not json"),
            _ => format!("drop {i} not json"),
        });
    }
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    for policy in ["raw", "drop", "deadletter"] {
        let output = dir.join(format!("out-{policy}.log"));
        let dead = dir.join(format!("dead-{policy}.log"));
        let summary = dir.join(format!("summary-{policy}.json"));
        run(
            &dir,
            &[
                "run",
                "--input",
                &format!("file:{},format=json", p(&input)),
                "--output",
                &file_output(&output),
                "--sql",
                "SELECT * FROM logs WHERE body LIKE 'keep%'",
                "--on-invalid",
                policy,
                "--dead-letter",
                &p(&dead),
                "--exit-on-eof",
                "--stats-interval",
                "0",
                "--summary-json",
                &p(&summary),
            ],
            TIMEOUT,
        )
        .assert_success();
        // Valid lines are filtered on their `body` field; an invalid line
        // passed on raw is evaluated as a raw line, its `body` the line.
        let expected: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0 || (policy == "raw" && i % 4 == 2))
            .map(|(_, line)| line.clone())
            .collect();
        assert_lines(&expected, &read_output(&output), policy);
        let invalid: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 >= 2)
            .map(|(_, line)| line.clone())
            .collect();
        let summary = read_summary(&summary);
        assert_eq!(
            summary.input(0, "invalid"),
            invalid.len() as u64,
            "{policy}: {summary}"
        );
        let evaluated = if policy == "raw" { 3_000 } else { 1_500 };
        assert_eq!(
            summary.input(0, "kept") + summary.input(0, "filtered"),
            evaluated,
            "{policy}: {summary}"
        );
        if policy == "deadletter" {
            assert_lines(&invalid, &read_output(&dead), "dead letters");
        }
    }
}
