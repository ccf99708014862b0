//! The network outputs (issue 6) on real loopback sockets: what ringway's
//! `otlp:` output sends, decoded by an independent receiver built on the
//! official opentelemetry-proto Python classes (tests/outputs/receiver.py);
//! the OTLP round trip (a request built by the same classes, posted to
//! ringway's OTLP input, comes out of its OTLP output equal); the JSON line
//! mapping, plain and gzip; retries (503 with Retry-After, 500), a 400 into
//! the dead-letter file, an endpoint down for 10 s; `tcp:` order; ringway
//! to ringway over OTLP; and bad output specs.
//!
//! The Python tests need a Python with opentelemetry-proto:
//! `RINGWAY_TEST_PYTHON`, else `target/otel-venv/bin/python` (scripts/test.sh
//! creates it). Without one they print "not run: ..." and pass, except
//! under CI, where they fail.

use crate::common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// RSS bound for ringway riding out an outage (the pool is ~30 MiB).
const RSS_BOUND_KIB: u64 = 96 * 1024;

fn python() -> Option<PathBuf> {
    test_python(
        "import opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        "opentelemetry-proto",
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/outputs")
        .join(name)
}

/// A running tests/outputs/receiver.py.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
}

impl Receiver {
    /// Starts the receiver (`mode` otlp or ndjson; `port` 0 for any) and
    /// waits for its "ready PORT" line.
    fn start(dir: &TempDir, python: &Path, mode: &str, port: u16, script_arg: &str) -> Receiver {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let tag = format!("{mode}-{}", STARTED.fetch_add(1, Ordering::SeqCst));
        let out = dir.join(format!("received-{tag}.ndjson"));
        let log = dir.join(format!("requests-{tag}.ndjson"));
        let stdout = dir.join(format!("receiver-{tag}.stdout"));
        let stderr = dir.join(format!("receiver-{tag}.stderr"));
        let child = Command::new(python)
            .arg(script("receiver.py"))
            .args([
                "--mode",
                mode,
                "--port",
                &port.to_string(),
                "--script",
                script_arg,
            ])
            .arg("--out")
            .arg(&out)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn receiver.py");
        let mut receiver = Receiver {
            child,
            port: 0,
            out,
            log,
            stderr,
        };
        let ready = wait_until(Duration::from_secs(20), || {
            let text = fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(port) = text
                .strip_prefix("ready ")
                .and_then(|p| p.trim().parse().ok())
            {
                receiver.port = port;
                return true;
            }
            false
        });
        assert!(
            ready,
            "receiver.py did not start\n{}",
            fs::read_to_string(&receiver.stderr).unwrap_or_default()
        );
        receiver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/logs", self.port)
    }

    fn lines(&self) -> Vec<String> {
        whole_lines(&self.out)
    }

    fn records(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("receiver writes JSON"))
            .collect()
    }

    fn requests(&self) -> Vec<Value> {
        whole_lines(&self.log)
            .iter()
            .map(|line| serde_json::from_str(line).expect("receiver logs JSON"))
            .collect()
    }
}

/// The lines of a file the receiver appends to, without a last one it is
/// still writing: Python flushes a large write in pieces, and a test that
/// polls read half a record (`EOF while parsing a string`).
fn whole_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole.lines().map(str::to_string).collect()
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address from ringway's "input 'otlp:…' listening on ADDR" line.
fn listening_addr(ringway: &mut Ringway) -> SocketAddr {
    let mut addr = None;
    wait_until(Duration::from_secs(20), || {
        addr = ringway.stderr_whole_lines().lines().find_map(|line| {
            let rest = &line[line.find("listening on ")? + "listening on ".len()..];
            rest.split_whitespace().next()?.parse().ok()
        });
        addr.is_some() || !ringway.is_running()
    });
    addr.unwrap_or_else(|| {
        panic!(
            "no 'listening on' line\n{}",
            tail(&ringway.stderr_now(), 4000)
        )
    })
}

/// POSTs a protobuf body to ringway's OTLP input and returns the status.
fn post_protobuf(addr: SocketAddr, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

fn summary_path(dir: &TempDir, name: &str) -> PathBuf {
    dir.join(format!("{name}-summary.json"))
}

/// ringway: file input to `output`, --exit-on-eof, with `extra` flags.
fn run_file_to(dir: &TempDir, input: &Path, output: &str, extra: &[&str]) -> Summary {
    let summary = summary_path(dir, "file");
    let mut args = vec![
        "run".to_string(),
        "--input".into(),
        format!("file:{}", p(input)),
        "--output".into(),
        output.into(),
        "--exit-on-eof".into(),
        "--stats-interval".into(),
        "0".into(),
        "--summary-json".into(),
        p(&summary),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &args, TIMEOUT).assert_success();
    read_summary(&summary)
}

// ---------------------------------------------------------------------------
// OTLP output, checked by the official classes

#[test]
fn otlp_round_trip_through_ringway_reproduces_the_records() {
    let Some(python) = python() else { return };
    let dir = TempDir::new("otlp-round-trip");
    let receiver = Receiver::start(&dir, &python, "otlp", 0, "");
    let request = dir.join("request.bin");
    let expected = dir.join("expected.ndjson");
    let count = 500;
    let made = Command::new(&python)
        .arg(script("make_request.py"))
        .args(["--count", &count.to_string()])
        .arg("--request")
        .arg(&request)
        .arg("--expected")
        .arg(&expected)
        .status()
        .unwrap();
    assert!(made.success());
    let summary = summary_path(&dir, "ringway");
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            "otlp:127.0.0.1:0",
            "--output",
            &format!("otlp:{}", receiver.url()),
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
    );
    let addr = listening_addr(&mut ringway);
    assert_eq!(post_protobuf(addr, &fs::read(&request).unwrap()), 200);
    let arrived = wait_until(Duration::from_secs(20), || {
        receiver.records().len() >= count
    });
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert!(arrived, "only {} records arrived", receiver.records().len());
    // Field by field: each record as MessageToDict gives it, with its
    // resource and scope, keyed by its (unique) time.
    let key = |entry: &Value| {
        entry["record"]["timeUnixNano"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let want: HashMap<String, Value> = fs::read_to_string(&expected)
        .unwrap()
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            (key(&entry), entry)
        })
        .collect();
    let got = receiver.records();
    assert_eq!(got.len(), count, "every record exactly once");
    for entry in &got {
        let expected = want
            .get(&key(entry))
            .unwrap_or_else(|| panic!("a record that was not sent: {entry}"));
        for part in ["resource", "scope"] {
            assert_eq!(entry[part], expected[part], "{part} of {}", key(entry));
        }
        let (got_record, want_record) = (
            entry["record"].as_object().unwrap(),
            expected["record"].as_object().unwrap(),
        );
        let keys = |o: &serde_json::Map<String, Value>| {
            let mut k: Vec<String> = o.keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(got_record), keys(want_record), "{}", key(entry));
        for (field, value) in want_record {
            assert_eq!(&got_record[field], value, "{field} of {}", key(entry));
        }
    }
    let summary = read_summary(&summary);
    assert_eq!(summary.output(0, "records"), count as u64);
    let requests = receiver.requests();
    assert!(
        requests
            .iter()
            .all(|r| r["content_type"] == "application/x-protobuf"),
        "{requests:?}"
    );
}

fn mapping_lines() -> Vec<&'static str> {
    vec![
        r#"{"timestamp":"2024-05-01T10:00:00.123Z","level":"WARN","message":"disk almost full","host":"web-1","used_pct":97.5,"mounts":["/","/var"],"ctx":{"user":"ann","id":7}}"#,
        r#"{"time":1714557600,"severity":"error","msg":"failed","code":500}"#,
        r#"{"ts":1714557600123,"level":30,"msg":{"structured":true}}"#,
        r#"{"@timestamp":"not a time","level":"Critical","message":"boom"}"#,
        r#"{"no_message":1}"#,
        "plain text, not JSON",
    ]
}

fn check_mapping(records: &[Value]) {
    assert_eq!(records.len(), 6, "{records:?}");
    let by_order: Vec<&Value> = {
        // Lines are one batch in order; keep the order they came in.
        records.iter().map(|r| &r["record"]).collect()
    };
    let attribute = |record: &Value, key: &str| -> Value {
        record["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|kv| kv["key"] == key))
            .map(|kv| kv["value"].clone())
            .unwrap_or(Value::Null)
    };
    let keys = |record: &Value| -> Vec<String> {
        record["attributes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|kv| kv["key"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = by_order[0];
    assert_eq!(first["body"]["stringValue"], "disk almost full");
    assert_eq!(first["severityText"], "WARN");
    assert_eq!(first["severityNumber"], "SEVERITY_NUMBER_WARN");
    assert_eq!(first["timeUnixNano"], "1714557600123000000");
    assert!(
        first["observedTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1_714_557_600_000_000_000
    );
    assert_eq!(keys(first), ["host", "used_pct", "mounts", "ctx"]);
    assert_eq!(attribute(first, "host")["stringValue"], "web-1");
    assert_eq!(attribute(first, "used_pct")["doubleValue"], 97.5);
    assert_eq!(
        attribute(first, "mounts")["arrayValue"]["values"][1]["stringValue"],
        "/var"
    );
    assert_eq!(
        attribute(first, "ctx")["kvlistValue"]["values"][1]["value"]["intValue"],
        "7"
    );
    let second = by_order[1];
    assert_eq!(second["body"]["stringValue"], "failed");
    assert_eq!(second["severityNumber"], "SEVERITY_NUMBER_ERROR");
    assert_eq!(second["timeUnixNano"], "1714557600000000000");
    assert_eq!(keys(second), ["code"]);
    assert_eq!(attribute(second, "code")["intValue"], "500");
    let third = by_order[2];
    assert_eq!(
        third["body"]["kvlistValue"]["values"][0]["value"]["boolValue"],
        true
    );
    assert_eq!(third["severityNumber"], "SEVERITY_NUMBER_INFO", "pino 30");
    assert_eq!(third["timeUnixNano"], "1714557600123000000");
    assert_eq!(keys(third), Vec::<String>::new());
    let fourth = by_order[3];
    assert_eq!(fourth["severityNumber"], "SEVERITY_NUMBER_FATAL");
    assert_eq!(fourth["severityText"], "Critical");
    assert!(
        fourth.get("timeUnixNano").is_none(),
        "unparseable time is 0"
    );
    assert_eq!(attribute(fourth, "@timestamp")["stringValue"], "not a time");
    let fifth = by_order[4];
    assert_eq!(fifth["body"]["stringValue"], r#"{"no_message":1}"#);
    assert_eq!(attribute(fifth, "no_message")["intValue"], "1");
    let sixth = by_order[5];
    assert_eq!(sixth["body"]["stringValue"], "plain text, not JSON");
    assert!(sixth.get("attributes").is_none());
}

fn json_lines_map_as_documented(gzip: bool) {
    let Some(python) = python() else { return };
    let dir = TempDir::new(if gzip { "otlp-map-gzip" } else { "otlp-map" });
    let receiver = Receiver::start(&dir, &python, "otlp", 0, "");
    let input = dir.join("in.ndjson");
    fs::write(&input, mapping_lines().join("\n") + "\n").unwrap();
    let output = format!("otlp:{}{}", receiver.url(), if gzip { ",gzip" } else { "" });
    let summary = run_file_to(&dir, &input, &output, &[]);
    assert_eq!(summary.output(0, "records"), 6);
    check_mapping(&receiver.records());
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r["gzip"] == gzip), "{requests:?}");
}

#[test]
fn json_lines_map_to_log_records_as_documented() {
    json_lines_map_as_documented(false);
}

#[test]
fn json_lines_map_to_log_records_as_documented_with_gzip() {
    json_lines_map_as_documented(true);
}

// ---------------------------------------------------------------------------
// Retries, rejects, outages

/// Every line of `input` exactly once among `got`.
fn assert_each_line_once(input: &[u8], got: &[String], context: &str) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in got {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    let want: Vec<&str> = std::str::from_utf8(input).unwrap().lines().collect();
    assert_eq!(got.len(), want.len(), "{context}: line count");
    for line in want {
        assert_eq!(counts.get(line), Some(&1), "{context}: {line:?}");
    }
}

#[test]
fn retries_ride_out_503_with_retry_after_and_500_and_deliver_every_line_once() {
    let Some(python) = python() else { return };
    let dir = TempDir::new("http-retries");
    let receiver = Receiver::start(&dir, &python, "ndjson", 0, "503/1,500");
    let input = dir.join("in.log");
    let lines = numbered_lines("retry", 0..20_000);
    fs::write(&input, &lines).unwrap();
    let output = format!("http://127.0.0.1:{}/ingest", receiver.port);
    // One worker, so the log shows each retry right after its failure.
    let summary = run_file_to(
        &dir,
        &input,
        &output,
        &["--retry-initial", "50ms", "--output-workers", "1"],
    );
    assert_each_line_once(&lines, &receiver.lines(), "http output");
    let requests = receiver.requests();
    let failed = requests.iter().filter(|r| r["status"] != 200).count() as u64;
    assert_eq!(failed, 2, "{requests:?}");
    assert_eq!(summary.output(0, "retries"), failed, "{summary}");
    assert_eq!(summary.output(0, "records"), 20_000);
    assert_eq!(summary.output(0, "rejects"), 0);
    assert!(
        requests
            .iter()
            .all(|r| r["content_type"] == "application/x-ndjson")
    );
    // The request after the 503 waited for its Retry-After (1 s); the one
    // after the 500 only for the backoff.
    let t = |i: usize| requests[i]["t"].as_f64().unwrap();
    assert_eq!(requests[0]["status"], 503);
    let after_503 = requests.iter().skip(1).map(|r| r["t"].as_f64().unwrap());
    let next = after_503.clone().next().unwrap();
    assert!(
        next - t(0) >= 0.95,
        "waited {:.3}s after a 503 with Retry-After: 1",
        next - t(0)
    );
}

#[test]
fn a_400_sends_the_batch_to_the_dead_letter_file_and_counts_it() {
    let Some(python) = python() else { return };
    let dir = TempDir::new("http-400");
    let receiver = Receiver::start(&dir, &python, "ndjson", 0, "400*");
    let input = dir.join("in.log");
    let lines = numbered_lines("reject", 0..5_000);
    fs::write(&input, &lines).unwrap();
    let dead_letter = dir.join("dead.ndjson");
    let output = format!("http:http://127.0.0.1:{}/ingest", receiver.port);
    let summary = run_file_to(&dir, &input, &output, &["--dead-letter", &p(&dead_letter)]);
    assert_bytes_identical(
        &lines,
        &sort_lines(&read_output(&dead_letter)),
        "dead letter",
    );
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r["status"] == 400));
    assert_eq!(
        summary.output(0, "rejects"),
        requests.len() as u64,
        "{summary}"
    );
    assert_eq!(summary.output(0, "dead_lettered"), 5_000);
    assert_eq!(summary.output(0, "records"), 0);
    assert_eq!(summary.output(0, "retries"), 0);
    assert!(receiver.lines().is_empty());
}

/// Lines sorted (numbered lines sort into input order).
fn sort_lines(bytes: &[u8]) -> Vec<u8> {
    let mut lines = split_lines(bytes);
    lines.sort();
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

#[test]
fn an_endpoint_down_for_10_seconds_then_up_loses_nothing_with_bounded_memory() {
    let Some(python) = python() else { return };
    let dir = TempDir::new("http-outage");
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let input = dir.join("in.log");
    let lines = numbered_lines("outage", 0..300_000);
    fs::write(&input, &lines).unwrap();
    let summary = summary_path(&dir, "outage");
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("otlp:http://127.0.0.1:{port}/v1/logs"),
            "--exit-on-eof",
            "--retry-max",
            "1s",
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&summary),
        ],
    );
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(10) {
        ringway.assert_running("while the endpoint is down");
        peak = peak.max(vm_rss_kib(ringway.pid()).expect("read VmRSS from /proc"));
        // The sampling period: the outage lasts 10 s.
        thread::sleep(Duration::from_millis(200));
    }
    let receiver = Receiver::start(&dir, &python, "otlp", port, "");
    let done = ringway.wait(TIMEOUT);
    done.assert_success();
    println!("peak VmRSS during the outage: {peak} KiB");
    assert!(peak < RSS_BOUND_KIB, "VmRSS {peak} KiB");
    let bodies: Vec<String> = receiver
        .records()
        .iter()
        .map(|r| {
            r["record"]["body"]["stringValue"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_each_line_once(&lines, &bodies, "after the outage");
    let summary = read_summary(&summary);
    assert!(summary.output(0, "retries") > 0, "{summary}");
    assert_eq!(summary.output(0, "records"), 300_000);
}

// ---------------------------------------------------------------------------
// tcp: and ringway to ringway

#[test]
fn tcp_output_delivers_every_line_once_in_order() {
    let dir = TempDir::new("tcp-out");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        // One connection carries everything (ringway shares it between workers).
        let (mut stream, _) = listener.accept().unwrap();
        stream.read_to_end(&mut received).unwrap();
        received
    });
    let input = dir.join("in.log");
    let lines = numbered_lines("tcp", 0..200_000);
    fs::write(&input, &lines).unwrap();
    let summary = run_file_to(
        &dir,
        &input,
        &format!("tcp:127.0.0.1:{port}"),
        &["--output-workers", "4", "--batch-bytes", "64KiB"],
    );
    assert_eq!(summary.output(0, "records"), 200_000);
    // ringway exited: its connection closed, so the reader sees the end.
    let received = reader.join().unwrap();
    assert_bytes_identical(&lines, &received, "tcp output");
}

#[test]
fn ringway_to_ringway_over_otlp_delivers_every_line() {
    let dir = TempDir::new("back-to-back");
    let b_output = dir.join("b.ndjson");
    let b_summary = summary_path(&dir, "b");
    let mut b = spawn(
        &dir,
        &[
            "run",
            "--input",
            "otlp:127.0.0.1:0",
            "--output",
            &format!("file:{}", p(&b_output)),
            "--stats-interval",
            "0",
            "--summary-json",
            &p(&b_summary),
        ],
    );
    let b_addr = listening_addr(&mut b);
    let input = dir.join("a.log");
    let mut rng = Rng::new(6);
    let count = 100_000;
    write_lines(&input, count, |i| raw_line(i, &mut rng));
    let a = run_file_to(
        &dir,
        &input,
        &format!("otlp:http://{b_addr}/v1/logs,gzip"),
        &[],
    );
    assert_eq!(a.output(0, "records"), count);
    // A exits only once B answered 200 to everything (accepted into B's
    // pipeline); give B's output a moment to write, then stop B.
    wait_until(Duration::from_secs(20), || {
        split_lines(&fs::read(&b_output).unwrap_or_default()).len() as u64 >= count
    });
    b.terminate();
    b.wait(TIMEOUT).assert_success();
    let bodies: Vec<String> = split_lines(&read_output(&b_output))
        .iter()
        .map(|line| {
            let record: Value = serde_json::from_slice(line).unwrap();
            record["body"].as_str().unwrap().to_string()
        })
        .collect();
    assert_each_line_once(&fs::read(&input).unwrap(), &bodies, "B's output");
}

// ---------------------------------------------------------------------------
// Bad specs

#[test]
fn bad_output_specs_are_one_line_usage_errors() {
    let dir = TempDir::new("bad-output-specs");
    let input = dir.join("in.log");
    fs::write(&input, "x\n").unwrap();
    for (spec, mentions) in [
        ("https://example.com/ingest,gzip,ca=", "ca= needs a value"),
        ("otlp:http://127.0.0.1:4318/v1/logs,ca=/ca.pem", "need TLS"),
        ("otlp:ftp://x", "ftp"),
        ("tcp:nohost", "nohost"),
        ("http://127.0.0.1:99999/", "99999"),
    ] {
        let done = run(
            &dir,
            &[
                "run",
                "--input",
                &format!("file:{}", p(&input)),
                "--output",
                spec,
                "--exit-on-eof",
            ],
            Duration::from_secs(20),
        );
        done.assert_code(2);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{spec}: {:?}", done.stderr);
        assert!(lines[0].contains(mentions), "{spec}: {}", lines[0]);
    }
}

// ---------------------------------------------------------------------------
// Regressions found in review

#[test]
fn tcp_output_rides_out_a_receiver_that_stops_reading_without_repeating_or_tearing() {
    // A send timeout is backpressure, not a broken connection: the write
    // resumes where it stopped, on the same connection.
    let dir = TempDir::new("tcp-out-pause");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A small receive buffer (inherited by the accepted socket), so the
    // pause stops ringway's writes quickly instead of filling 32 MiB.
    socket2::SockRef::from(&listener)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        let (mut stream, _) = listener.accept().unwrap();
        let mut chunk = [0u8; 64 * 1024];
        let first = stream.read(&mut chunk).unwrap();
        received.extend_from_slice(&chunk[..first]);
        // Stop reading for 4 s (the stall under test): ringway's writes
        // time out after 1 s.
        thread::sleep(Duration::from_secs(4));
        stream.read_to_end(&mut received).unwrap();
        let more = listener.set_nonblocking(true).is_ok() && listener.accept().is_ok();
        (received, more)
    });
    let input = dir.join("in.log");
    // Far more than the socket buffers hold, so writes must wait.
    let lines = numbered_lines("pause", 0..2_000_000);
    fs::write(&input, &lines).unwrap();
    let summary = run_file_to(
        &dir,
        &input,
        &format!("tcp:127.0.0.1:{port}"),
        &["--output-timeout", "1s"],
    );
    assert_eq!(summary.output(0, "records"), 2_000_000);
    assert!(
        summary.output(0, "retries") > 0,
        "the pause was felt: {summary}"
    );
    let (received, second_connection) = reader.join().unwrap();
    assert!(!second_connection, "the connection was kept");
    assert_bytes_identical(&lines, &received, "tcp output across a pause");
}

#[test]
fn ringway_to_ringway_over_otlp_delivers_short_lines_with_many_attributes() {
    // A 1 MiB batch of short lines with many attributes encodes to far more
    // than a receiver takes in one request: the batch goes in several.
    let dir = TempDir::new("b2b-many-attributes");
    let b_output = dir.join("b.ndjson");
    let mut b = spawn(
        &dir,
        &[
            "run",
            "--input",
            "otlp:127.0.0.1:0",
            "--output",
            &format!("file:{}", p(&b_output)),
            "--stats-interval",
            "0",
        ],
    );
    let b_addr = listening_addr(&mut b);
    let input = dir.join("a.log");
    let count = 100_000u64;
    write_lines(&input, count, |i| {
        format!("{{\"message\":\"m{i}\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6}}")
    });
    let a = run_file_to(&dir, &input, &format!("otlp:http://{b_addr}/v1/logs"), &[]);
    assert_eq!(a.output(0, "records"), count, "A delivered every line");
    assert_eq!(a.output(0, "rejects"), 0, "nothing refused");
    wait_until(Duration::from_secs(20), || {
        split_lines(&fs::read(&b_output).unwrap_or_default()).len() as u64 >= count
    });
    b.terminate();
    b.wait(TIMEOUT).assert_success();
    let records = split_lines(&read_output(&b_output)).len() as u64;
    assert_eq!(records, count, "B wrote every line once");
}

/// A one-shot HTTP server: answers each request with `answer(n)` (the raw
/// response bytes, then whether to close), counting lines it received.
fn scripted_server(
    answer: impl Fn(u64) -> (Vec<u8>, bool) + Send + 'static,
) -> (SocketAddr, std::sync::Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = std::sync::Arc::new(AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&lines);
    thread::spawn(move || {
        let mut served = 0u64;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = Vec::new();
            'requests: loop {
                // Read one request: head, then Content-Length bytes.
                let head_end = loop {
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    let mut chunk = [0u8; 65536];
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 65536];
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = &buf[head_end..head_end + length];
                let (response, close) = answer(served);
                served += 1;
                if response.starts_with(b"HTTP/1.1 2") {
                    counted.fetch_add(
                        body.iter().filter(|&&b| b == b'\n').count() as u64,
                        Ordering::Relaxed,
                    );
                }
                if stream.write_all(&response).is_err() || close {
                    break;
                }
                buf.drain(..head_end + length);
            }
        }
    });
    (addr, lines)
}

#[test]
fn a_2xx_whose_body_is_cut_short_counts_as_delivered() {
    let dir = TempDir::new("http-cut-body");
    let (addr, received) = scripted_server(|_| {
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok".to_vec(),
            true,
        )
    });
    let input = dir.join("in.log");
    let lines = numbered_lines("cut", 0..50_000);
    fs::write(&input, &lines).unwrap();
    let summary = run_file_to(
        &dir,
        &input,
        &format!("http://{addr}/ingest"),
        &["--output-workers", "1"],
    );
    assert_eq!(summary.output(0, "records"), 50_000);
    assert_eq!(summary.output(0, "retries"), 0, "{summary}");
    assert_eq!(received.load(Ordering::Relaxed), 50_000, "each line once");
}

#[test]
fn an_early_413_while_the_body_is_still_sent_is_a_reject_not_a_retry() {
    let dir = TempDir::new("http-early-413");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Answer after the head, without reading the (large) body.
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(
                b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let input = dir.join("in.log");
    let lines = numbered_lines("early", 0..400_000);
    fs::write(&input, &lines).unwrap();
    let dead_letter = dir.join("dead.ndjson");
    let summary = run_file_to(
        &dir,
        &input,
        &format!("http://{addr}/ingest"),
        &[
            "--batch-bytes",
            "16MiB",
            "--read-buf",
            "16MiB",
            "--dead-letter",
            &p(&dead_letter),
            "--shutdown-timeout",
            "60s",
        ],
    );
    assert!(summary.output(0, "rejects") > 0, "{summary}");
    assert_eq!(summary.output(0, "dead_lettered"), 400_000, "{summary}");
    assert_bytes_identical(
        &sort_lines(&lines),
        &sort_lines(&fs::read(&dead_letter).unwrap()),
        "every refused line is in the dead-letter file once",
    );
}
