//! OTLP/HTTP input (issue 5) on real loopback sockets: the official
//! OpenTelemetry Python SDK exporting to ringway, OTLP/JSON posted with curl,
//! backpressure as 429 + Retry-After that the SDK's own retries ride out, the
//! delivered ack surviving kill -9, keep-alive and pipelining, and malformed
//! or hostile HTTP (bad bodies, oversize bodies, a gzip bomb, 1,000 idle
//! connections, slow-loris clients) answered with the contract's status codes
//! while ringway stays up with bounded memory.
//!
//! The SDK tests need a Python with opentelemetry-sdk and
//! opentelemetry-exporter-otlp-proto-http 1.45.2: `RINGWAY_TEST_PYTHON`, or
//! else `target/otel-venv/bin/python` (scripts/test.sh creates it). Without
//! one they print "not run: ..." and pass, except under CI, where they fail.
//! The protocol tests speak HTTP/1.1 themselves over `TcpStream` and encode
//! protobuf bodies by hand (field numbers from opentelemetry-proto's
//! logs.proto), so they depend on no part of ringway's own stack.

use crate::common::*;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// RSS bound for a ringway that was sent hostile input. With default
/// settings ringway's buffers are a few MiB each and a body is at most
/// --max-body (8 MiB); 256 MiB leaves room for that many times over, yet it
/// is far below what the attacks would cost if they worked: the gzip bomb
/// inflates to 1 GiB, the oversized request claims 100 MB, and 1,000
/// connections holding even a 1 MiB buffer each would be 1,000 MiB.
const RSS_BOUND_KIB: u64 = 256 * 1024;

// ---------------------------------------------------------------------------
// Starting and stopping ringway

/// Spawns `ringway run --input otlp:127.0.0.1:0 --output OUTPUT ...` and
/// waits for its "listening on" line.
fn start(dir: &TempDir, output: &str, extra: &[&str]) -> (Ringway, SocketAddr) {
    start_listening(dir, "otlp:127.0.0.1:0", output, extra)
}

/// `http_responses[code]` of the otlp input (0 when the code is absent).
pub(crate) fn http_count(summary: &Summary, code: &str) -> u64 {
    let responses = summary.json["inputs"][0]
        .get("http_responses")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("summary inputs[0] has no http_responses object:\n{summary}"));
    match responses.get(code) {
        None => 0,
        Some(n) => n
            .as_u64()
            .unwrap_or_else(|| panic!("http_responses[{code:?}] is not a count:\n{summary}")),
    }
}

fn assert_rss_bounded(ringway: &mut Ringway, context: &str) {
    ringway.assert_running(context);
    let rss = vm_rss_kib(ringway.pid()).expect("a live process has VmRSS");
    println!("VmRSS {context}: {rss} KiB");
    assert!(
        rss < RSS_BOUND_KIB,
        "VmRSS {rss} KiB {context} (bound {RSS_BOUND_KIB} KiB)"
    );
}

// ---------------------------------------------------------------------------
// Protobuf, encoded by hand (opentelemetry/proto/logs/v1/logs.proto,
// common/v1/common.proto, resource/v1/resource.proto, collector/logs/v1)

mod pb {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
        varint(out, field << 3 | wire_type);
    }

    /// A length-delimited field (string, bytes or embedded message).
    pub fn bytes(out: &mut Vec<u8>, field: u64, value: &[u8]) {
        key(out, field, 2);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    pub fn uint(out: &mut Vec<u8>, field: u64, value: u64) {
        key(out, field, 0);
        varint(out, value);
    }

    pub fn fixed64(out: &mut Vec<u8>, field: u64, value: u64) {
        key(out, field, 1);
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// AnyValue { string_value = 1 }
    pub fn string_value(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        bytes(&mut out, 1, s.as_bytes());
        out
    }

    /// KeyValue { key = 1, value = 2 }
    pub fn key_value(k: &str, any_value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bytes(&mut out, 1, k.as_bytes());
        bytes(&mut out, 2, any_value);
        out
    }
}

/// An ExportLogsServiceRequest with one ResourceLogs (service.name =
/// `service`), one ScopeLogs (scope "raw-client" 0.1) and one LogRecord per
/// body: time_unix_nano, severity INFO/9, body string_value.
fn export_request(service: &str, bodies: &[String]) -> Vec<u8> {
    let mut scope = Vec::new();
    pb::bytes(&mut scope, 1, b"raw-client");
    pb::bytes(&mut scope, 2, b"0.1");
    let mut scope_logs = Vec::new();
    pb::bytes(&mut scope_logs, 1, &scope);
    for (n, body) in bodies.iter().enumerate() {
        let mut record = Vec::new();
        pb::fixed64(&mut record, 1, 1_700_000_000_000_000_000 + n as u64);
        pb::uint(&mut record, 2, 9);
        pb::bytes(&mut record, 3, b"INFO");
        pb::bytes(&mut record, 5, &pb::string_value(body));
        pb::bytes(&mut scope_logs, 2, &record);
    }
    let mut resource = Vec::new();
    pb::bytes(
        &mut resource,
        1,
        &pb::key_value("service.name", &pb::string_value(service)),
    );
    let mut resource_logs = Vec::new();
    pb::bytes(&mut resource_logs, 1, &resource);
    pb::bytes(&mut resource_logs, 2, &scope_logs);
    let mut request = Vec::new();
    pb::bytes(&mut request, 1, &resource_logs);
    request
}

/// Bodies `"{tag}-{n}-{j}"` for j in 0..count, padded to `pad` extra bytes.
fn bodies(tag: &str, n: u64, count: usize, pad: usize) -> Vec<String> {
    (0..count)
        .map(|j| format!("{tag}-{n}-{j}{}", "~".repeat(pad)))
        .collect()
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} body {:?}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One client connection; responses are parsed from a buffer, so several
/// pipelined responses arriving in one segment are all seen.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next response, or `None` if the server closed the connection
    /// (EOF or reset) before sending a byte of one.
    fn response(&mut self) -> io::Result<Option<Response>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            match self.fill() {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && self.buf.is_empty() => {
                    return Ok(None);
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed inside a response head: {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next().unwrap_or("").starts_with("HTTP/1.") {
            return Err(bad(&format!("bad status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| bad(&format!("bad header line {line:?}")))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| bad(&format!("bad Content-Length {length:?}")))?;
            while self.buf.len() < length {
                if self.fill()? == 0 {
                    return Err(bad("connection closed inside a response body"));
                }
            }
            response.body = self.buf.drain(..length).collect();
        } else if response
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if self.fill()? == 0 {
                        return Err(bad("connection closed inside a chunk size"));
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .map_err(|_| bad(&format!("bad chunk size {size_text:?}")))?;
                while self.buf.len() < line_end + 2 + size + 2 {
                    if self.fill()? == 0 {
                        return Err(bad("connection closed inside a chunk"));
                    }
                }
                response
                    .body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else if !(status < 200 || status == 204 || status == 304) {
            // No length: the body runs to the end of the connection.
            while self.fill()? != 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(Some(response))
    }

    /// Sends `request` and returns its response; panics if there is none.
    fn roundtrip(&mut self, request: &[u8]) -> Response {
        self.send(request)
            .unwrap_or_else(|e| panic!("sending a request: {e}"));
        self.response()
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
            .expect("the server closed the connection without a response")
    }

    /// True once the server has closed the connection (EOF or reset), waiting
    /// at most `timeout`; bytes that arrive meanwhile are kept.
    fn closed_within(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let deadline = Instant::now() + timeout;
        let closed = loop {
            match self.fill() {
                Ok(0) => break true,
                Ok(_) if Instant::now() < deadline => {}
                Ok(_) => break false,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        closed
    }
}

/// A request; a Content-Length is added unless `headers` already frame the
/// body (Content-Length or Transfer-Encoding) or it is a bodiless GET.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if !framed && (method != "GET" || !body.is_empty()) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn post_protobuf(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        body,
    )
}

fn post_json(body: &str) -> Vec<u8> {
    request(
        "POST",
        "/v1/logs",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A one-record OTLP/JSON document whose body is `text`.
fn json_doc(text: &str) -> String {
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": text}, "severityText": "INFO", "severityNumber": 9}
    ]}]}]})
    .to_string()
}

// ---------------------------------------------------------------------------
// Reading the NDJSON output

const KEYS: [&str; 11] = [
    "time_unix_nano",
    "observed_time_unix_nano",
    "severity_text",
    "severity_number",
    "body",
    "attributes",
    "resource",
    "scope",
    "trace_id",
    "span_id",
    "flags",
];

/// The keys of a JSON object line, outermost level only, in text order.
fn top_level_keys(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut expect_key) = (0usize, false, false, false);
    let mut current: Option<String> = None;
    for c in line.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if let Some(key) = current.take() {
                    keys.push(key);
                }
                continue;
            }
            if let Some(key) = current.as_mut() {
                key.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                if depth == 1 && expect_key {
                    current = Some(String::new());
                    expect_key = false;
                }
            }
            '{' | '[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = true;
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    keys
}

/// Every line of `bytes` parsed as a JSON object with the contract's keys in
/// the contract's order. With `allow_torn_tail`, a last piece without a
/// newline (a write cut by kill -9) is ignored.
pub(crate) fn parse_records(bytes: &[u8], allow_torn_tail: bool, context: &str) -> Vec<Value> {
    let mut complete = bytes;
    if allow_torn_tail {
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        complete = &bytes[..end];
    } else {
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{context}: output does not end with a newline"
        );
    }
    split_lines(complete)
        .into_iter()
        .enumerate()
        .map(|(n, line)| {
            let text = String::from_utf8(line.to_vec())
                .unwrap_or_else(|e| panic!("{context}: output line {} is not UTF-8: {e}", n + 1));
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{context}: output line {} is not JSON ({e}): {text}", n + 1)
            });
            assert_eq!(
                top_level_keys(&text),
                KEYS,
                "{context}: output line {} does not have the contract's keys in order: {text}",
                n + 1
            );
            value
        })
        .collect()
}

/// Records by body string; panics on a record whose body is not a string.
fn by_body(records: &[Value], context: &str) -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for record in records {
        let body = record["body"]
            .as_str()
            .unwrap_or_else(|| panic!("{context}: a record without a string body: {record}"));
        map.entry(body.to_string())
            .or_default()
            .push(record.clone());
    }
    map
}

/// Panics unless every body in `expected` occurs exactly once in `map`.
fn assert_each_once<'a>(
    map: &HashMap<String, Vec<Value>>,
    expected: impl IntoIterator<Item = &'a String>,
    context: &str,
) -> usize {
    let mut n = 0;
    let mut missing = Vec::new();
    for body in expected {
        match map.get(body).map(Vec::len) {
            Some(1) => {}
            Some(k) => panic!("{context}: record {body:?} arrived {k} times"),
            None => missing.push(body.clone()),
        }
        n += 1;
    }
    assert!(
        missing.is_empty(),
        "{context}: {} of {n} records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    n
}

// ---------------------------------------------------------------------------
// The OpenTelemetry Python SDK

fn sdk_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/sdk_export.py")
}

/// A Python that can import the OpenTelemetry SDK and OTLP/HTTP exporter:
/// RINGWAY_TEST_PYTHON, else target/otel-venv/bin/python. Without one:
/// fails under CI, else prints "not run: ..." and returns None.
pub(crate) fn sdk_python() -> Option<PathBuf> {
    test_python(
        "import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http._log_exporter",
        "the OpenTelemetry SDK",
    )
}

/// A running sdk_export.py.
pub(crate) struct Sdk {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

static SDK_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn sdk_spawn(
    dir: &TempDir,
    python: &Path,
    addr: SocketAddr,
    count: u64,
    extra: &[&str],
) -> Sdk {
    let n = SDK_COUNTER.fetch_add(1, Ordering::SeqCst);
    let stdout = dir.join(format!("sdk-{n}.stdout"));
    let stderr = dir.join(format!("sdk-{n}.stderr"));
    let child = Command::new(python)
        .arg(sdk_script())
        .args([
            "--endpoint",
            &format!("http://{addr}/v1/logs"),
            "--count",
            &count.to_string(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", python.display()));
    Sdk {
        child: Some(child),
        stdout,
        stderr,
    }
}

impl Sdk {
    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// Waits for a successful exit; returns the script's final JSON line
    /// and its stderr.
    pub(crate) fn finish(mut self, timeout: Duration) -> (Value, String) {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sdk_export.py did not finish within {timeout:?}\n--- its stderr ---\n{}",
                    tail(&self.stderr_now(), 4000)
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let stdout = fs::read_to_string(&self.stdout).unwrap_or_default();
        assert!(
            status.success(),
            "sdk_export.py failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            tail(&self.stderr_now(), 4000)
        );
        let last = stdout.lines().last().unwrap_or("");
        let result = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("sdk_export.py's last line is not JSON ({e}): {last:?}"));
        (result, self.stderr_now())
    }
}

impl Drop for Sdk {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The script's counts: every emitted record exported, none failed or dropped.
pub(crate) fn assert_sdk_delivered(result: &Value, count: u64, sdk_stderr: &str) {
    let get = |k: &str| {
        result[k]
            .as_u64()
            .unwrap_or_else(|| panic!("sdk_export.py result has no {k}: {result}"))
    };
    assert_eq!(
        get("export_failed"),
        0,
        "the SDK exporter reported failed exports: {result}\n--- its stderr ---\n{}",
        tail(sdk_stderr, 3000)
    );
    assert_eq!(get("queue_dropped"), 0, "the SDK dropped records: {result}");
    assert_eq!(get("emitted"), count, "{result}");
    assert_eq!(get("exported_ok"), count, "{result}");
}

/// sdk_export.py's record i, as the contract maps it.
const SEVERITIES: [(u64, &str); 4] = [(5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR")];
const TRACE_HIGH: u64 = 0x5B8E_FFF7_9803_8103;

pub(crate) fn check_sdk_records(records: &[Value], prefix: &str, count: u64, context: &str) {
    assert_eq!(
        records.len() as u64,
        count,
        "{context}: {} records in the output, {count} exported",
        records.len()
    );
    let map = by_body(records, context);
    for i in 0..count {
        let body = format!("{prefix}-{i}");
        let found = map.get(&body).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "{context}: record {body:?} arrived {} times",
            found.len()
        );
        let r = &found[0];
        let (number, text) = SEVERITIES[(i % 4) as usize];
        assert_eq!(r["severity_text"], text, "{context}: {r}");
        assert_eq!(r["severity_number"], json!(number), "{context}: {r}");
        assert_eq!(
            r["attributes"],
            json!({"i": i, "kind": "test", "ratio": 0.5, "ok": true}),
            "{context}: attributes must keep their types (int, string, double, bool): {r}"
        );
        let time = r["time_unix_nano"].as_u64().unwrap_or(0);
        assert!(
            time > 1_600_000_000_000_000_000,
            "{context}: time_unix_nano is not the SDK's timestamp: {r}"
        );
        assert_eq!(
            r["observed_time_unix_nano"],
            json!(time),
            "{context}: the script sets observed = time: {r}"
        );
        let resource = &r["resource"];
        assert_eq!(resource["service.name"], "sdk-test", "{context}: {r}");
        assert_eq!(resource["host.name"], "ringway-test-host", "{context}: {r}");
        assert_eq!(
            resource["telemetry.sdk.language"], "python",
            "{context}: {r}"
        );
        assert_eq!(
            r["scope"],
            json!({"name": "ringway.sdk_test", "version": "1.0.0"}),
            "{context}: {r}"
        );
        if i % 10 == 0 {
            assert_eq!(
                r["trace_id"],
                format!("{TRACE_HIGH:016x}{:016x}", i + 1),
                "{context}: {r}"
            );
            assert_eq!(r["span_id"], format!("{:016x}", i + 1), "{context}: {r}");
            assert_eq!(r["flags"], json!(1), "{context}: {r}");
        } else {
            assert_eq!(r["trace_id"], "", "{context}: {r}");
            assert_eq!(r["span_id"], "", "{context}: {r}");
            assert_eq!(r["flags"], json!(0), "{context}: {r}");
        }
    }
}

// ---------------------------------------------------------------------------
// The SDK end to end

#[test]
fn sdk_export_of_10000_records_arrives_intact() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-sdk");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &[]);
    let sdk = sdk_spawn(&dir, &python, addr, 10_000, &["--timeout", "30"]);
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 10_000, &sdk_stderr);
    let summary = stop(ringway, &dir);

    let records = parse_records(&read_output(&output), false, "SDK export");
    check_sdk_records(&records, "record", 10_000, "SDK export");
    assert_eq!(summary.input(0, "records"), 10_000, "{summary}");
    assert_eq!(summary.input(0, "records_accepted"), 10_000, "{summary}");
    assert_eq!(summary.output(0, "records"), 10_000, "{summary}");
    // Every successful export() of the SDK ends in exactly one 200.
    assert!(http_count(&summary, "200") >= 1, "{summary}");
    assert_eq!(
        http_count(&summary, "200"),
        result["export_calls"].as_u64().unwrap(),
        "one 200 per export call: {summary} {result}"
    );
}

#[test]
fn sdk_export_with_gzip_compression_arrives_intact() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-sdk-gzip");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &[]);
    let sdk = sdk_spawn(
        &dir,
        &python,
        addr,
        2_000,
        &["--gzip", "--prefix", "gz", "--timeout", "30"],
    );
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 2_000, &sdk_stderr);
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "SDK gzip export");
    check_sdk_records(&records, "gz", 2_000, "SDK gzip export");
    assert_eq!(summary.input(0, "records"), 2_000, "{summary}");
    assert!(http_count(&summary, "200") >= 1, "{summary}");
}

// ---------------------------------------------------------------------------
// OTLP/JSON from curl

pub(crate) fn curl_available() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return true;
    }
    not_run("curl");
    false
}

/// `curl -sS -o BODY -w '%{http_code} %{content_type}' ... --data-binary @FILE`.
fn curl_post(addr: SocketAddr, file: &Path, headers: &[&str], body_out: &Path) -> (u16, String) {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "30", "-o"])
        .arg(body_out);
    command.args(["-w", "%{http_code} %{content_type}"]);
    // Expect: 100-continue is not part of what this test checks.
    command.args(["-H", "Expect:"]);
    for header in headers {
        command.args(["-H", header]);
    }
    command
        .arg("--data-binary")
        .arg(format!("@{}", p(file)))
        .arg(format!("http://{addr}/v1/logs"));
    let out = command.output().expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, content_type) = text.split_once(' ').unwrap_or((&text, ""));
    (
        code.parse()
            .unwrap_or_else(|_| panic!("curl -w gave {text:?}")),
        content_type.to_string(),
    )
}

#[test]
fn otlp_json_posted_with_curl_maps_to_the_contract_ndjson() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-curl");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &[]);

    // Three records: a structured body with trace context, a bytes body with
    // an int64 past 2^53 and a whole double (which must stay a double), and
    // a record with every field absent.
    let doc = r#"{"resourceLogs":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"curl-test"}},
  {"key":"pid","value":{"intValue":"4242"}}]},
 "scopeLogs":[{"scope":{"name":"curl-scope","version":"2.1"},"logRecords":[
  {"timeUnixNano":"1700000000123456789","observedTimeUnixNano":"1700000000223456789",
   "severityNumber":13,"severityText":"WARN",
   "body":{"kvlistValue":{"values":[
     {"key":"msg","value":{"stringValue":"disk \"sda\" almost full"}},
     {"key":"pct","value":{"doubleValue":97.5}},
     {"key":"nested","value":{"arrayValue":{"values":[{"intValue":"1"},{"boolValue":true}]}}}]}},
   "attributes":[
     {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}},
     {"key":"count","value":{"intValue":7}},
     {"key":"ok","value":{"boolValue":false}}],
   "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","flags":1},
  {"timeUnixNano":"1700000000000000001","severityNumber":9,"severityText":"INFO",
   "body":{"bytesValue":"aGVsbG8gd29ybGQ="},
   "attributes":[{"key":"big","value":{"intValue":"9007199254740993"}},
                 {"key":"neg","value":{"intValue":"-42"}},
                 {"key":"whole","value":{"doubleValue":3.0}}]},
  {}]}]}]}"#;
    let doc_file = dir.join("doc.json");
    fs::write(&doc_file, doc).unwrap();
    let body_out = dir.join("response.body");
    let (code, content_type) = curl_post(
        addr,
        &doc_file,
        &["Content-Type: application/json"],
        &body_out,
    );
    assert_eq!(code, 200, "OTLP/JSON POST");
    assert!(
        content_type.starts_with("application/json"),
        "response Content-Type {content_type:?}"
    );
    let response: Value = serde_json::from_slice(&fs::read(&body_out).unwrap())
        .expect("the 200 response body is JSON");
    assert_eq!(response, json!({}), "the 200 response body is {{}}");

    // The same kind of document gzip-compressed; no resource, scope
    // without a version.
    let gz_doc = r#"{"resourceLogs":[{"scopeLogs":[{"scope":{"name":"gz-scope"},"logRecords":[
  {"timeUnixNano":1700000000999999999,"severityNumber":17,"severityText":"ERROR",
   "body":{"stringValue":"gzip-json"}}]}]}]}"#;
    let gz_file = dir.join("doc.json.gz");
    let gz_bytes = gzip(gz_doc.as_bytes());
    fs::write(&gz_file, &gz_bytes).unwrap();
    let (code, _) = curl_post(
        addr,
        &gz_file,
        &["Content-Type: application/json", "Content-Encoding: gzip"],
        &body_out,
    );
    assert_eq!(code, 200, "gzip-compressed OTLP/JSON POST");

    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "curl OTLP/JSON");
    assert_eq!(records.len(), 4, "4 log records posted: {records:?}");
    let resource = json!({"service.name": "curl-test", "pid": 4242});
    let scope = json!({"name": "curl-scope", "version": "2.1"});
    let expected = [
        json!({
            "time_unix_nano": 1_700_000_000_123_456_789u64,
            "observed_time_unix_nano": 1_700_000_000_223_456_789u64,
            "severity_text": "WARN",
            "severity_number": 13,
            "body": {"msg": "disk \"sda\" almost full", "pct": 97.5, "nested": [1, true]},
            "attributes": {"tags": ["a", "b"], "count": 7, "ok": false},
            "resource": resource,
            "scope": scope,
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "flags": 1
        }),
        json!({
            "time_unix_nano": 1_700_000_000_000_000_001u64,
            "observed_time_unix_nano": 0,
            "severity_text": "INFO",
            "severity_number": 9,
            "body": "aGVsbG8gd29ybGQ=",
            "attributes": {"big": 9_007_199_254_740_993u64, "neg": -42, "whole": 3.0},
            "resource": resource,
            "scope": scope,
            "trace_id": "",
            "span_id": "",
            "flags": 0
        }),
        json!({
            "time_unix_nano": 0,
            "observed_time_unix_nano": 0,
            "severity_text": "",
            "severity_number": 0,
            "body": null,
            "attributes": {},
            "resource": resource,
            "scope": scope,
            "trace_id": "",
            "span_id": "",
            "flags": 0
        }),
        json!({
            "time_unix_nano": 1_700_000_000_999_999_999u64,
            "observed_time_unix_nano": 0,
            "severity_text": "ERROR",
            "severity_number": 17,
            "body": "gzip-json",
            "attributes": {},
            "resource": {},
            "scope": {"name": "gz-scope", "version": ""},
            "trace_id": "",
            "span_id": "",
            "flags": 0
        }),
    ];
    for (n, want) in expected.iter().enumerate() {
        let got = &records[n];
        for key in KEYS {
            assert_eq!(
                got[key], want[key],
                "record {n}, field {key:?}: got {}, expected {}\nwhole record: {got}",
                got[key], want[key]
            );
        }
    }
    assert_eq!(summary.input(0, "records"), 4, "{summary}");
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
    assert_eq!(
        summary.input(0, "bytes"),
        (doc.len() + gz_bytes.len()) as u64,
        "bytes counts request bodies as sent (compressed): {summary}"
    );
}

// ---------------------------------------------------------------------------
// Backpressure

/// Small buffers, so an unread FIFO fills the pipeline within a few requests.
const SMALL_BUFFERS: [&str; 6] = [
    "--read-buf",
    "64KiB",
    "--max-line",
    "16KiB",
    "--batch-bytes",
    "64KiB",
];

/// Posts 100-record protobuf requests on `conn` until one gets 429; returns
/// the numbers of the requests that got 200 and the 429 response.
fn post_until_429(conn: &mut Conn, tag: &str) -> (Vec<u64>, Response) {
    let mut accepted = Vec::new();
    for n in 0..2_000u64 {
        let response = conn.roundtrip(&post_protobuf(&export_request(
            "filler",
            &bodies(tag, n, 100, 200),
        )));
        match response.status {
            200 => accepted.push(n),
            429 => return (accepted, response),
            _ => panic!("request {n} while the output stalled got {response}"),
        }
    }
    panic!(
        "2,000 requests (~50 MB) were accepted while the output FIFO had no reader; expected a 429"
    );
}

#[test]
fn stalled_output_gets_429_with_retry_after_and_sdk_retries_deliver_everything() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-429");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let mut args = SMALL_BUFFERS.to_vec();
    args.extend(["--otlp-retry-after", "1", "--shutdown-timeout", "60s"]);
    let (mut ringway, addr) = start(&dir, &file_output(&fifo), &args);

    // Raw requests until the pipeline is full.
    let mut conn = Conn::open(addr);
    let (accepted, refused) = post_until_429(&mut conn, "raw");
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "429 carries Retry-After: 1 (--otlp-retry-after 1): {refused}"
    );
    drop(conn);

    // The SDK exports into the full pipeline. Its exporter retries a 429
    // after Retry-After, at most 6 attempts (5 s at Retry-After: 1) per
    // batch, so the FIFO stays unread until the SDK has been refused and has
    // retried for 2 s more, then gets a reader.
    let mut sdk = sdk_spawn(
        &dir,
        &python,
        addr,
        5_000,
        &["--timeout", "60", "--batch", "128"],
    );
    let refused_once = wait_until(Duration::from_secs(30), || {
        sdk.stderr_now().contains("sdk_export.py: exporter retry:") || !sdk.is_running()
    });
    assert!(
        refused_once && sdk.is_running(),
        "the SDK exporting into a full pipeline was not refused and retrying within 30 s\n{}",
        tail(&sdk.stderr_now(), 2000)
    );
    // Time passes on purpose: for 2 s of stall the SDK must not finish
    // (it cannot have delivered) and ringway must not give up.
    thread::sleep(Duration::from_secs(2));
    ringway.assert_running("while its output FIFO had no reader");
    assert!(
        sdk.is_running(),
        "the SDK finished while the output was stalled: it cannot have delivered\n{}",
        tail(&sdk.stderr_now(), 2000)
    );
    let progress = Arc::new(AtomicU64::new(0));
    let reader = attach_fifo_reader(fifo.clone(), progress);
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    let summary = stop(ringway, &dir);
    let got = reader
        .recv_timeout(TIMEOUT)
        .expect("the FIFO reader saw EOF after ringway exited");

    assert_sdk_delivered(&result, 5_000, &sdk_stderr);
    let records = parse_records(&got, false, "after the stall");
    let map = by_body(&records, "after the stall");
    let sdk_bodies: Vec<String> = (0..5_000).map(|i| format!("record-{i}")).collect();
    assert_each_once(&map, &sdk_bodies, "SDK records after the stall");
    let raw_bodies: Vec<String> = accepted
        .iter()
        .flat_map(|&n| bodies("raw", n, 100, 200))
        .collect();
    assert_each_once(&map, &raw_bodies, "raw requests that got 200");
    assert_eq!(
        records.len(),
        sdk_bodies.len() + raw_bodies.len(),
        "nothing else in the output (the refused request's records are not)"
    );
    assert!(
        result["retries_logged"].as_u64().unwrap_or(0) >= 1,
        "the SDK retried: {result}"
    );
    assert!(
        http_count(&summary, "429") >= 2,
        "the raw client's 429 and at least one the SDK got: {summary}"
    );
    assert_eq!(
        summary.input(0, "records"),
        records.len() as u64,
        "{summary}"
    );
}

#[test]
fn a_request_completed_during_the_shutdown_drain_gets_503_with_retry_after() {
    // With --otlp-ack delivered and an output FIFO nobody reads, request A
    // waits for its 200 until the FIFO gets a reader, which holds the drain
    // after SIGTERM open for as long as the test wants. Request B, half sent
    // on a second connection before SIGTERM and finished after it, is
    // answered 503. C, pipelined behind A, is answered 503 too, or A's answer
    // says Connection: close and the connection closes.
    let dir = TempDir::new("otlp-503");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let (mut ringway, addr) = start(
        &dir,
        &file_output(&fifo),
        &[
            "--otlp-ack",
            "delivered",
            "--otlp-retry-after",
            "1",
            "--shutdown-timeout",
            "60s",
        ],
    );
    let mut first = Conn::open(addr);
    let mut a_and_c = post_protobuf(&export_request("a", &bodies("a", 0, 3, 0)));
    a_and_c.extend_from_slice(&post_protobuf(&export_request("c", &bodies("c", 0, 3, 0))));
    first.send(&a_and_c).unwrap();
    let mut second = Conn::open(addr);
    let b = post_protobuf(&export_request("b", &bodies("b", 0, 3, 0)));
    let (b_head, b_rest) = b.split_at(b.len() - 8);
    second.send(b_head).unwrap();
    // Time passes on purpose: with --otlp-ack delivered no answer may come
    // while the output is stalled.
    thread::sleep(Duration::from_millis(500));
    assert!(
        !first.closed_within(Duration::from_millis(200)) && first.buf.is_empty(),
        "with --otlp-ack delivered nothing is answered before the output wrote it: {:?}",
        String::from_utf8_lossy(&first.buf)
    );
    ringway.terminate();
    assert!(
        wait_for_stderr(&mut ringway, "draining", TIMEOUT),
        "no word of SIGTERM: {}",
        ringway.stderr_now()
    );
    // The signal thread then wakes the OTLP worker, which shows no sign of
    // having seen the shutdown: give it that moment before B completes.
    thread::sleep(Duration::from_millis(500));
    ringway.assert_running("draining into an unread FIFO after SIGTERM");

    second.send(b_rest).unwrap();
    let b_answer = match second.response() {
        Ok(Some(r)) => r,
        other => panic!(
            "a request completed after SIGTERM, while the drain waited for the output, got no \
             answer ({other:?}); the contract answers 503 + Retry-After while shutting down"
        ),
    };
    assert_eq!(
        b_answer.status, 503,
        "a request completed while shutting down: {b_answer}"
    );
    assert_eq!(b_answer.header("retry-after"), Some("1"), "{b_answer}");

    let reader = attach_fifo_reader(fifo.clone(), Arc::new(AtomicU64::new(0)));
    let a_answer = first
        .response()
        .unwrap()
        .expect("an answer to the request accepted before SIGTERM");
    assert_eq!(
        a_answer.status, 200,
        "the request accepted before SIGTERM is delivered and acked: {a_answer}"
    );
    let mut c_got_503 = false;
    match first.response() {
        Ok(Some(r)) => {
            assert_eq!(r.status, 503, "the request pipelined behind A: {r}");
            c_got_503 = true;
        }
        Ok(None) => assert!(
            a_answer
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close")),
            "the connection closed after A's 200 without Connection: close, leaving the \
             pipelined request C unanswered: {a_answer}"
        ),
        Err(e) => panic!("reading the answer to C: {e}"),
    }
    drop(first);
    drop(second);
    ringway.wait(TIMEOUT).assert_success();
    let got = reader.recv_timeout(TIMEOUT).expect("FIFO EOF");
    let records = parse_records(&got, false, "after the shutdown");
    let map = by_body(&records, "after the shutdown");
    assert_each_once(&map, &bodies("a", 0, 3, 0), "the request acked 200");
    assert_eq!(
        records.len(),
        3,
        "the records answered 503 or never answered were not written: {records:?}"
    );
    let summary = read_summary(&dir.join("summary.json"));
    assert_eq!(
        http_count(&summary, "503"),
        1 + u64::from(c_got_503),
        "{summary}"
    );
    assert_eq!(http_count(&summary, "200"), 1, "{summary}");
}

// ---------------------------------------------------------------------------
// The delivered ack

#[test]
fn delivered_ack_survives_kill_9() {
    let dir = TempDir::new("otlp-kill9");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &["--otlp-ack", "delivered"]);
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop_client = Arc::new(AtomicBool::new(false));
    let client = {
        let (acked, stop_client) = (Arc::clone(&acked), Arc::clone(&stop_client));
        thread::spawn(move || {
            let mut conn = Conn::open(addr);
            let mut other = BTreeMap::new();
            for n in 0.. {
                if stop_client.load(Ordering::SeqCst) {
                    break;
                }
                let body = post_protobuf(&export_request("acker", &bodies("ack", n, 100, 0)));
                if conn.send(&body).is_err() {
                    break;
                }
                match conn.response() {
                    Ok(Some(r)) if r.status == 200 => acked.lock().unwrap().push(n),
                    Ok(Some(r)) => *other.entry(r.status).or_insert(0u64) += 1,
                    Ok(None) | Err(_) => break, // ringway was killed
                }
            }
            other
        })
    };
    let enough = wait_until(Duration::from_secs(20), || {
        acked.lock().unwrap().len() >= 20
    });
    assert!(
        enough,
        "fewer than 20 requests acked within 20 s under --otlp-ack delivered\n{}",
        tail(&ringway.stderr_now(), 2000)
    );
    // Time passes on purpose: the kill lands mid-stream, with requests in
    // flight, not right after the 20th ack.
    thread::sleep(Duration::from_millis(700));
    ringway.signal(libc::SIGKILL);
    let finished = ringway.wait(TIMEOUT);
    assert_eq!(finished.code(), None, "killed by a signal");
    stop_client.store(true, Ordering::SeqCst);
    let other = client.join().expect("client thread");
    let acked = acked.lock().unwrap().clone();

    let records = parse_records(&read_output(&output), true, "after kill -9");
    let map = by_body(&records, "after kill -9");
    let expected: Vec<String> = acked
        .iter()
        .flat_map(|&n| bodies("ack", n, 100, 0))
        .collect();
    let n = assert_each_once(&map, &expected, "records of requests acked 200");
    println!(
        "{} requests acked ({n} records) before kill -9; other answers {other:?}; {} records in the output",
        acked.len(),
        records.len()
    );
}

// ---------------------------------------------------------------------------
// Keep-alive, pipelining, idle timeout

#[test]
fn keep_alive_and_pipelining_answer_in_order_on_one_connection() {
    let dir = TempDir::new("otlp-pipeline");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &[]);
    let mut conn = Conn::open(addr);

    // Two requests in one write: protobuf, then JSON.
    let mut both = post_protobuf(&export_request("pipe", &bodies("pipe", 0, 3, 0)));
    both.extend_from_slice(&post_json(&json_doc("pipe-1-0")));
    conn.send(&both).unwrap();
    let first = conn.response().unwrap().expect("first response");
    let second = conn.response().unwrap().expect("second response");
    assert_eq!(first.status, 200, "{first}");
    assert_eq!(
        first.header("content-type"),
        Some("application/x-protobuf"),
        "the first answer is the protobuf request's: {first}"
    );
    assert!(first.body.is_empty(), "empty ExportLogsServiceResponse");
    assert_eq!(second.status, 200, "{second}");
    assert!(
        second
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "the second answer is the JSON request's: {second}"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&second.body).ok(),
        Some(json!({})),
        "{second}"
    );

    // The connection stays open for a third request...
    let third = conn.roundtrip(&post_protobuf(&export_request(
        "pipe",
        &bodies("pipe", 2, 1, 0),
    )));
    assert_eq!(third.status, 200, "{third}");
    // ...and Connection: close is honoured after the answer.
    let fourth = conn.roundtrip(&request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/json"),
            ("Connection", "close"),
        ],
        json_doc("pipe-3-0").as_bytes(),
    ));
    assert_eq!(fourth.status, 200, "{fourth}");
    assert!(
        conn.closed_within(Duration::from_secs(10)),
        "the connection was closed after a Connection: close request"
    );

    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "pipelined");
    let map = by_body(&records, "pipelined");
    let expected: Vec<String> = [
        "pipe-0-0", "pipe-0-1", "pipe-0-2", "pipe-1-0", "pipe-2-0", "pipe-3-0",
    ]
    .map(String::from)
    .to_vec();
    assert_each_once(&map, &expected, "pipelined requests");
    assert_eq!(records.len(), expected.len());
    assert_eq!(http_count(&summary, "200"), 4, "{summary}");
    assert_eq!(
        summary.input(0, "connections_accepted"),
        1,
        "all four requests on one connection: {summary}"
    );
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("otlp-idle");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &["--otlp-idle-timeout", "1s"]);
    let mut conn = Conn::open(addr);
    let r = conn.roundtrip(&post_json(&json_doc("idle-0")));
    assert_eq!(r.status, 200, "{r}");
    assert!(
        conn.closed_within(Duration::from_secs(15)),
        "an idle keep-alive connection was not closed with --otlp-idle-timeout 1s"
    );
    assert!(conn.buf.is_empty(), "nothing sent on an idle close");
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "idle_closed"), 1, "{summary}");
}

// ---------------------------------------------------------------------------
// Malformed and hostile input

/// A gzip stream of `zeros` zero bytes.
fn gzip_of_zeros(zeros: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        encoder.write_all(&block[..n]).unwrap();
        left -= n;
    }
    encoder.finish().unwrap()
}

/// The malformed-input matrix: every case runs, every mismatch is collected,
/// and the test fails at the end naming all of them.
struct Matrix {
    addr: SocketAddr,
    /// Responses the client saw, by status.
    seen: BTreeMap<u16, u64>,
    failures: Vec<String>,
}

impl Matrix {
    fn note(&mut self, r: &Response) {
        *self.seen.entry(r.status).or_insert(0) += 1;
    }

    fn fail(&mut self, what: &str, message: String) {
        self.failures.push(format!("{what}: {message}"));
    }

    /// One request on a fresh connection; its response must have `status`.
    fn expect(&mut self, what: &str, req: &[u8], status: u16) -> Option<Response> {
        let mut conn = Conn::open(self.addr);
        // A server may answer before reading the whole request and close;
        // the answer is what counts, so a failed write is not an error here.
        let _ = conn.send(req);
        match conn.response() {
            Ok(Some(r)) => {
                self.note(&r);
                if r.status != status {
                    self.fail(what, format!("expected {status}, got {r}"));
                }
                Some(r)
            }
            Ok(None) => {
                self.fail(
                    what,
                    format!("expected {status}, the connection was closed without a response"),
                );
                None
            }
            Err(e) => {
                self.fail(
                    what,
                    format!("expected {status}, reading the response: {e}"),
                );
                None
            }
        }
    }

    /// Like `expect`, then checks the response with `check` (an Err is a failure).
    fn expect_with(
        &mut self,
        what: &str,
        req: &[u8],
        status: u16,
        check: impl FnOnce(&Response) -> Result<(), String>,
    ) {
        if let Some(r) = self.expect(what, req, status)
            && r.status == status
            && let Err(message) = check(&r)
        {
            self.fail(what, message);
        }
    }
}

/// A LogRecord with a trace_id and span_id of the given lengths.
fn export_request_with_ids(body: &str, trace_id_len: usize, span_id_len: usize) -> Vec<u8> {
    let mut record = Vec::new();
    pb::bytes(&mut record, 5, &pb::string_value(body));
    pb::bytes(&mut record, 9, &vec![0xab; trace_id_len]);
    pb::bytes(&mut record, 10, &vec![0xcd; span_id_len]);
    let mut scope_logs = Vec::new();
    pb::bytes(&mut scope_logs, 2, &record);
    let mut resource_logs = Vec::new();
    pb::bytes(&mut resource_logs, 2, &scope_logs);
    let mut request = Vec::new();
    pb::bytes(&mut request, 1, &resource_logs);
    request
}

#[test]
fn malformed_requests_get_their_status_codes_and_ringway_stays_up() {
    let dir = TempDir::new("otlp-bad");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &[]);
    let mut m = Matrix {
        addr,
        seen: BTreeMap::new(),
        failures: Vec::new(),
    };
    let good = export_request("bad-input", &bodies("good", 0, 4, 0));

    // Malformed bodies.
    m.expect_with(
        "truncated protobuf",
        &post_protobuf(&good[..good.len() / 2]),
        400,
        |r| match r.header("content-type") {
            Some("application/x-protobuf") => Ok(()),
            other => Err(format!(
                "a protobuf request's error is a google.rpc.Status protobuf, Content-Type {other:?}"
            )),
        },
    );
    m.expect(
        "protobuf declared gzip but not gzip",
        &request(
            "POST",
            "/v1/logs",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            b"this is not a gzip stream",
        ),
        400,
    );
    m.expect_with(
        "invalid JSON",
        &post_json(r#"{"resourceLogs":[{"scopeLogs":"#),
        400,
        |r| {
            let error: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("a JSON request's error body is not JSON ({e}): {r}"))?;
            if error["code"].is_number() && error["message"].is_string() {
                Ok(())
            } else {
                Err(format!(
                    "error body is not {{\"code\":N,\"message\":\"...\"}}: {error}"
                ))
            }
        },
    );
    // Ids of the wrong length are invalid ids, which OTLP asks receivers
    // to treat as absent: the record is kept, the id written empty.
    m.expect(
        "OTLP/JSON traceId of 2 bytes",
        &post_json(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"abcd","body":{"stringValue":"bad-id-json"}}]}]}]}"#,
        ),
        200,
    );
    m.expect(
        "protobuf trace_id of 5 bytes",
        &post_protobuf(&export_request_with_ids("bad-trace-5", 5, 8)),
        200,
    );
    m.expect(
        "protobuf span_id of 3 bytes",
        &post_protobuf(&export_request_with_ids("bad-span-3", 16, 3)),
        200,
    );

    // Wrong method, path, content type, encoding, framing.
    m.expect_with(
        "GET /v1/logs",
        &request("GET", "/v1/logs", &[], b""),
        405,
        |r| match r.header("allow") {
            Some(a) if a.contains("POST") => Ok(()),
            other => Err(format!("405 must carry Allow: POST, has {other:?}")),
        },
    );
    m.expect(
        "POST /v1/metrics",
        &request(
            "POST",
            "/v1/metrics",
            &[("Content-Type", "application/x-protobuf")],
            &good,
        ),
        404,
    );
    m.expect(
        "text/plain",
        &request(
            "POST",
            "/v1/logs",
            &[("Content-Type", "text/plain")],
            b"hello",
        ),
        415,
    );
    m.expect(
        "Content-Encoding: br",
        &request(
            "POST",
            "/v1/logs",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "br"),
            ],
            &good,
        ),
        415,
    );
    m.expect(
        "POST without Content-Length or chunked",
        b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n\r\n",
        411,
    );

    // Too large: a 100 MB Content-Length is refused from the headers alone
    // (nothing of the body is sent) and the connection closed.
    let mut conn = Conn::open(addr);
    conn.send(
        b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    let what = "100 MB Content-Length, no body sent";
    match conn.response() {
        Ok(Some(r)) => {
            m.note(&r);
            if r.status != 413 {
                m.fail(what, format!("expected 413, got {r}"));
            } else if !conn.closed_within(Duration::from_secs(10)) {
                m.fail(what, "the connection stayed open after the 413".into());
            }
        }
        Ok(None) => m.fail(what, "closed without a 413".into()),
        Err(e) => m.fail(what, format!("no 413 within 30 s: {e}")),
    }

    // A gzip bomb: 1 GiB of zeros in about 1 MB, under --max-body on the
    // wire, 128 times over it inflated.
    let bomb = gzip_of_zeros(1 << 30);
    assert!(
        bomb.len() < 8 << 20,
        "bomb is {} bytes on the wire",
        bomb.len()
    );
    m.expect(
        "gzip bomb (1 GiB of zeros)",
        &request(
            "POST",
            "/v1/logs",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            &bomb,
        ),
        413,
    );
    assert_rss_bounded(&mut ringway, "after the gzip bomb");

    // Headers over 16 KiB.
    let big_header = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {}\r\n",
        "h".repeat(17 * 1024)
    );
    m.expect("17 KiB of headers", big_header.as_bytes(), 431);

    // Content-Length larger than what is sent, then the client closes its
    // side: no 200, no hang, no crash.
    let mut conn = Conn::open(addr);
    let mut short = post_protobuf(&good);
    short.truncate(short.len() - 10);
    conn.send(&short).unwrap();
    conn.stream.shutdown(Shutdown::Write).unwrap();
    let what = "body cut short by the client's EOF";
    match conn.response() {
        Ok(Some(r)) => {
            m.note(&r);
            if !(400..500).contains(&r.status) {
                m.fail(what, format!("expected a 4xx or a close, got {r}"));
            }
        }
        Ok(None) => {}
        Err(e) => m.fail(what, format!("reading the answer: {e}")),
    }

    // Content-Length smaller than the body: the request it frames is good;
    // the rest is parsed as the next request, which is garbage.
    let mut conn = Conn::open(addr);
    let framed = export_request("bad-input", &bodies("short-cl", 0, 1, 0));
    let mut bytes = post_protobuf(&framed);
    bytes.extend_from_slice(b"XXXX\r\n\r\n");
    conn.send(&bytes).unwrap();
    let what = "Content-Length shorter than the bytes sent";
    match conn.response() {
        Ok(Some(r)) => {
            m.note(&r);
            if r.status != 200 {
                m.fail(
                    what,
                    format!("the request Content-Length framed: expected 200, got {r}"),
                );
            }
        }
        other => m.fail(what, format!("no answer to the framed request: {other:?}")),
    }
    match conn.response() {
        Ok(Some(r)) => {
            m.note(&r);
            if r.status != 400 {
                m.fail(
                    what,
                    format!("the leftover garbage: expected 400 or a close, got {r}"),
                );
            }
        }
        Ok(None) => {}
        Err(e) => m.fail(what, format!("the leftover garbage: {e}")),
    }

    // Chunked transfer encoding is supported.
    let chunked_doc = json_doc("chunked-0");
    let (a, b) = chunked_doc.split_at(chunked_doc.len() / 2);
    let chunked_body = format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
    m.expect(
        "chunked JSON",
        &request(
            "POST",
            "/v1/logs",
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            chunked_body.as_bytes(),
        ),
        200,
    );

    // And a good request after all of that.
    m.expect("good request", &post_protobuf(&good), 200);

    assert_rss_bounded(&mut ringway, "after the malformed requests");
    let summary = stop(ringway, &dir);
    println!("responses seen: {:?}", m.seen);
    assert!(
        m.failures.is_empty(),
        "{} of the malformed-input cases failed:\n  {}\nsummary: {summary}",
        m.failures.len(),
        m.failures.join("\n  ")
    );
    for (code, n) in &m.seen {
        assert!(
            http_count(&summary, &code.to_string()) >= *n,
            "summary http_responses[{code}] < the {n} the client saw: {summary}"
        );
    }
    assert_eq!(
        http_count(&summary, "200"),
        m.seen[&200],
        "every 200 was seen by the client: {summary}"
    );
    let records = parse_records(&read_output(&output), false, "malformed input");
    let map = by_body(&records, "malformed input");
    let expected: Vec<String> = [
        "short-cl-0-0",
        "chunked-0",
        "bad-id-json",
        "bad-trace-5",
        "bad-span-3",
    ]
    .into_iter()
    .map(String::from)
    .chain(bodies("good", 0, 4, 0))
    .collect();
    assert_each_once(&map, &expected, "the accepted requests");
    for (body, trace_id, span_id) in [
        ("bad-id-json", String::new(), String::new()),
        ("bad-trace-5", String::new(), "cd".repeat(8)),
        ("bad-span-3", "ab".repeat(16), String::new()),
    ] {
        let record = &map[body][0];
        assert_eq!(record["trace_id"], trace_id.as_str(), "{body}: {record}");
        assert_eq!(record["span_id"], span_id.as_str(), "{body}: {record}");
    }
    assert_eq!(
        records.len(),
        expected.len(),
        "nothing from the refused requests was written"
    );
    assert_eq!(
        summary.input(0, "records"),
        expected.len() as u64,
        "{summary}"
    );
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (or to the
/// hard limit); returns the new soft limit.
fn raise_nofile(want: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    limit.rlim_cur
}

#[test]
fn a_thousand_idle_connections_are_evicted_or_refused_and_a_client_is_still_served() {
    const IDLE: usize = 1_000;
    const MAX_CONNECTIONS: usize = 256; // the default --otlp-max-connections
    let limit = raise_nofile(8_192);
    assert!(
        limit >= 2_100,
        "RLIMIT_NOFILE hard limit {limit} is too low for {IDLE} connections plus the other tests"
    );
    let dir = TempDir::new("otlp-crowd");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &[]);

    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|n| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("idle connection {n}: {e}"))
        })
        .collect();
    // A real client arrives after the crowd and is served.
    let mut conn = Conn::open(addr);
    let sent = conn.send(&post_protobuf(&export_request(
        "crowd",
        &bodies("crowded", 0, 1, 0),
    )));
    let r = match conn.response() {
        Ok(Some(r)) => r,
        other => {
            drop(idle);
            let summary = stop(ringway, &dir);
            panic!(
                "a client connecting right after {IDLE} idle connections got no answer \
                 ({other:?}; sending: {sent:?}): while idle connections exist, the contract \
                 evicts the longest-idle one to make room and refuses a new one only when none \
                 is idle\nsummary: {summary}"
            )
        }
    };
    assert_eq!(r.status, 200, "a client after {IDLE} idle connections: {r}");

    // At most MAX_CONNECTIONS stay open; the server closed the others.
    let count_closed = || {
        idle.iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                let mut byte = [0u8; 1];
                match (&**s).read(&mut byte) {
                    Ok(0) => true,
                    Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
                    Ok(_) => false,
                }
            })
            .count()
    };
    let must_close = IDLE - (MAX_CONNECTIONS - 1);
    let mut closed = 0;
    let enough = wait_until(Duration::from_secs(20), || {
        closed = count_closed();
        closed >= must_close
    });
    assert!(
        enough,
        "only {closed} of {IDLE} idle connections were closed by the server; with \
         --otlp-max-connections {MAX_CONNECTIONS} at least {must_close} must be"
    );
    assert_rss_bounded(&mut ringway, &format!("with {IDLE} connections opened"));
    // The served client's connection still works.
    let r = conn.roundtrip(&post_protobuf(&export_request(
        "crowd",
        &bodies("crowded", 1, 1, 0),
    )));
    assert_eq!(r.status, 200, "{r}");
    drop(idle);
    drop(conn);

    let summary = stop(ringway, &dir);
    let evicted = summary.input(0, "connections_evicted");
    let refused = summary.input(0, "connections_refused");
    assert!(
        evicted + refused >= must_close as u64,
        "connections_evicted {evicted} + connections_refused {refused} < {must_close}: {summary}"
    );
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
    let records = parse_records(&read_output(&output), false, "crowd");
    assert_eq!(records.len(), 2);
}

enum LorisOutcome {
    Answered(u16),
    Closed,
    /// Sent its bytes at a byte a second and heard nothing.
    Ignored,
}

/// Sends a request one byte a second, watching for an answer between bytes.
fn slow_loris(addr: SocketAddr, n: u64) -> LorisOutcome {
    let mut conn = Conn::open(addr);
    let req = post_protobuf(&export_request("loris", &bodies("loris", n, 1, 0)));
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    for &byte in req.iter().take(12) {
        let _ = conn.stream.write_all(&[byte]);
        match conn.fill() {
            Ok(0) => return LorisOutcome::Closed,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return LorisOutcome::Closed,
            Err(_) => {} // one second without an answer: send the next byte
        }
    }
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match conn.response() {
        Ok(Some(r)) => LorisOutcome::Answered(r.status),
        Ok(None) => LorisOutcome::Closed,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => LorisOutcome::Closed,
        Err(_) => LorisOutcome::Ignored,
    }
}

#[test]
fn slow_loris_clients_get_408_while_a_normal_client_is_served() {
    const LORISES: u64 = 10;
    let dir = TempDir::new("otlp-loris");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &["--otlp-read-timeout", "2s"]);
    let sockets_before = open_sockets(ringway.pid());
    let lorises: Vec<_> = (0..LORISES)
        .map(|n| thread::spawn(move || slow_loris(addr, n)))
        .collect();
    // Every loris is accepted (and trickling) before the normal client.
    assert!(
        wait_until(TIMEOUT, || open_sockets(ringway.pid())
            >= sockets_before + LORISES as usize),
        "ringway accepted {} of {LORISES} slow-loris connections",
        open_sockets(ringway.pid()).saturating_sub(sockets_before)
    );
    // While the lorises trickle, a normal client is served at once.
    let mut conn = Conn::open(addr);
    let r = conn.roundtrip(&post_json(&json_doc("normal-0")));
    assert_eq!(r.status, 200, "a normal client during slow-loris: {r}");
    drop(conn);

    let mut answered_408 = 0;
    for (n, loris) in lorises.into_iter().enumerate() {
        match loris.join().expect("loris thread") {
            LorisOutcome::Answered(408) => answered_408 += 1,
            LorisOutcome::Closed => {}
            LorisOutcome::Answered(code) => panic!("slow-loris client {n} got {code}, not 408"),
            LorisOutcome::Ignored => panic!(
                "slow-loris client {n} trickled 12 bytes over 12 s with --otlp-read-timeout 2s \
                 and was neither answered 408 nor closed"
            ),
        }
    }
    assert_rss_bounded(&mut ringway, "after the slow-loris clients");
    let summary = stop(ringway, &dir);
    assert!(
        summary.input(0, "read_timeouts") >= LORISES,
        "every slow-loris client counted in read_timeouts: {summary}"
    );
    assert!(http_count(&summary, "408") >= answered_408, "{summary}");
    assert_eq!(http_count(&summary, "200"), 1, "{summary}");
    let records = parse_records(&read_output(&output), false, "slow-loris");
    assert_eq!(
        records.len(),
        1,
        "only the normal client's record: {records:?}"
    );
    assert_eq!(records[0]["body"], "normal-0");
}

// ---------------------------------------------------------------------------
// Regressions found in review

#[test]
fn a_gzip_body_inflating_past_a_mebibyte_is_decoded_whole() {
    // The gzip buffer's pages were given back before decoding, so a body
    // inflating past 1 MiB read as zeros and got 400.
    let dir = TempDir::new("otlp-big-gzip");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &file_output(&output), &[]);
    let names = bodies("big-gzip", 0, 6_000, 300);
    let body = export_request("big-gzip", &names);
    assert!(body.len() > 1 << 20, "{} bytes inflated", body.len());
    let mut conn = Conn::open(addr);
    let r = conn.roundtrip(&request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&body),
    ));
    assert_eq!(r.status, 200, "{r}");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "big gzip");
    assert_each_once(&by_body(&records, "big gzip"), &names, "big gzip");
    assert_eq!(summary.input(0, "records"), names.len() as u64, "{summary}");
}

#[test]
fn delivered_ack_answers_a_request_of_more_batches_than_buffers() {
    // With one token per batch, a request of many small batches overflowed
    // the reply queue and was never answered.
    let dir = TempDir::new("otlp-many-batches");
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(
        &dir,
        &file_output(&output),
        &[
            "--otlp-ack",
            "delivered",
            "--read-buf",
            "4KiB",
            "--max-line",
            "2KiB",
            "--batch-bytes",
            "4KiB",
        ],
    );
    let names = bodies("many-batches", 0, 20_000, 40);
    let mut conn = Conn::open(addr);
    let r = conn.roundtrip(&post_protobuf(&export_request("many", &names)));
    assert_eq!(r.status, 200, "{r}");
    // The same connection keeps working.
    let more = bodies("many-batches", 1, 10, 0);
    let r = conn.roundtrip(&post_protobuf(&export_request("many", &more)));
    assert_eq!(r.status, 200, "{r}");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "many batches");
    let expected: Vec<String> = names.into_iter().chain(more).collect();
    assert_each_once(
        &by_body(&records, "many batches"),
        &expected,
        "many batches",
    );
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
}

#[test]
fn a_request_of_countless_empty_records_is_refused_before_decoding() {
    // 2 wire bytes per empty LogRecord decode to ~200 bytes each: 413
    // before decoding, memory stays bounded, others are still served.
    let dir = TempDir::new("otlp-amplification");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &[]);
    let mut scope_logs = Vec::new();
    for _ in 0..3_000_000 {
        scope_logs.extend_from_slice(&[0x12, 0x00]);
    }
    let mut resource_logs = Vec::new();
    pb::bytes(&mut resource_logs, 2, &scope_logs);
    let mut bomb = Vec::new();
    pb::bytes(&mut bomb, 1, &resource_logs);
    let mut conn = Conn::open(addr);
    let r = conn.roundtrip(&post_protobuf(&bomb));
    assert_eq!(r.status, 413, "{r}");
    let r = conn.roundtrip(&request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&bomb),
    ));
    assert_eq!(r.status, 413, "gzipped: {r}");
    assert_rss_bounded(&mut ringway, "after the amplification bombs");
    let names = bodies("after-bomb", 0, 3, 0);
    let r = Conn::open(addr).roundtrip(&post_protobuf(&export_request("ok", &names)));
    assert_eq!(r.status, 200, "{r}");
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "records"), 3, "{summary}");
}

#[test]
fn a_chunk_size_near_two_to_the_64_is_refused_not_a_crash() {
    let dir = TempDir::new("otlp-chunk-overflow");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &[]);
    let mut conn = Conn::open(addr);
    let mut wire = b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend_from_slice(b"64\r\n");
    wire.extend_from_slice(&[b'a'; 100]);
    wire.extend_from_slice(b"\r\nffffffffffffffed\r\nxy");
    conn.send(&wire).unwrap();
    match conn.response() {
        Ok(Some(r)) => assert_eq!(r.status, 413, "{r}"),
        other => panic!("expected 413, got {other:?}"),
    }
    ringway.assert_running("after a chunk size near 2^64");
    let names = bodies("after-chunk", 0, 1, 0);
    let r = Conn::open(addr).roundtrip(&post_protobuf(&export_request("ok", &names)));
    assert_eq!(r.status, 200, "{r}");
    stop(ringway, &dir);
}

// ---------------------------------------------------------------------------
// Nesting depth (issue 14, item 7)

/// One link of a chain of nested values.
#[derive(Clone, Copy, Debug)]
enum Link {
    Map,
    Array,
}

fn varint_len(value: usize) -> usize {
    let mut out = Vec::new();
    pb::varint(&mut out, value as u64);
    out.len()
}

/// An `AnyValue` protobuf of `depth` nested maps (`{"k": …}`) or arrays
/// around the string "leaf". Written outside in from sizes computed inside
/// out, so a chain 100,000 deep costs no recursion and no quadratic copying.
fn chain_protobuf(link: Link, depth: usize) -> Vec<u8> {
    let leaf = pb::string_value("leaf");
    let mut prefixes: Vec<Vec<u8>> = Vec::with_capacity(depth);
    let mut inner = leaf.len();
    for _ in 0..depth {
        let mut prefix = Vec::new();
        match link {
            Link::Map => {
                // AnyValue{kvlist_value = 6: KeyValueList{values = 1:
                // KeyValue{key = 1: "k", value = 2: inner}}}
                let key_value = 3 + 1 + varint_len(inner) + inner;
                let list = 1 + varint_len(key_value) + key_value;
                prefix.push(6 << 3 | 2);
                pb::varint(&mut prefix, list as u64);
                prefix.push(1 << 3 | 2);
                pb::varint(&mut prefix, key_value as u64);
                prefix.extend_from_slice(&[1 << 3 | 2, 1, b'k', 2 << 3 | 2]);
                pb::varint(&mut prefix, inner as u64);
            }
            Link::Array => {
                // AnyValue{array_value = 5: ArrayValue{values = 1: inner}}
                let array = 1 + varint_len(inner) + inner;
                prefix.push(5 << 3 | 2);
                pb::varint(&mut prefix, array as u64);
                prefix.push(1 << 3 | 2);
                pb::varint(&mut prefix, inner as u64);
            }
        }
        inner += prefix.len();
        prefixes.push(prefix);
    }
    let mut out = Vec::with_capacity(inner);
    for prefix in prefixes.iter().rev() {
        out.extend_from_slice(prefix);
    }
    out.extend_from_slice(&leaf);
    out
}

/// The same value in OTLP/JSON, as text (serde_json would recurse).
fn chain_json(link: Link, depth: usize) -> String {
    let (open, close) = match link {
        Link::Map => (r#"{"kvlistValue":{"values":[{"key":"k","value":"#, "}]}}"),
        Link::Array => (r#"{"arrayValue":{"values":["#, "]}}"),
    };
    format!(
        "{}{}{}",
        open.repeat(depth),
        r#"{"stringValue":"leaf"}"#,
        close.repeat(depth)
    )
}

/// The NDJSON a chain becomes: 32 levels written, a 33rd array or map is
/// `null` (README: "at any depth up to 32").
fn chain_ndjson(link: Link, depth: usize) -> Value {
    let mut value = if depth > 32 {
        Value::Null
    } else {
        json!("leaf")
    };
    for _ in 0..depth.min(32) {
        value = match link {
            Link::Map => json!({ "k": value }),
            Link::Array => json!([value]),
        };
    }
    value
}

/// A record of the nesting test: named by attribute "name"; `body` and
/// attribute "deep" are the chain.
struct DeepCase {
    name: String,
    link: Link,
    depth: usize,
}

/// One request holding `cases`, and a plain record named `plain`.
fn deep_request_protobuf(cases: &[DeepCase], plain: &str) -> Vec<u8> {
    let mut scope_logs = Vec::new();
    for case in cases.iter().map(Some).chain([None]) {
        let mut record = Vec::new();
        let name = case.map_or(plain, |case| &case.name);
        pb::bytes(
            &mut record,
            6,
            &pb::key_value("name", &pb::string_value(name)),
        );
        if let Some(case) = case {
            let chain = chain_protobuf(case.link, case.depth);
            pb::bytes(&mut record, 5, &chain);
            pb::bytes(&mut record, 6, &pb::key_value("deep", &chain));
        } else {
            pb::bytes(&mut record, 5, &pb::string_value(plain));
        }
        pb::bytes(&mut scope_logs, 2, &record);
    }
    let mut resource_logs = Vec::new();
    pb::bytes(&mut resource_logs, 2, &scope_logs);
    let mut request = Vec::new();
    pb::bytes(&mut request, 1, &resource_logs);
    request
}

fn deep_request_json(cases: &[DeepCase], plain: &str) -> String {
    let mut records = Vec::new();
    for case in cases {
        let chain = chain_json(case.link, case.depth);
        records.push(format!(
            r#"{{"body":{chain},"attributes":[{{"key":"name","value":{{"stringValue":"{}"}}}},{{"key":"deep","value":{chain}}}]}}"#,
            case.name
        ));
    }
    records.push(format!(
        r#"{{"body":{{"stringValue":"{plain}"}},"attributes":[{{"key":"name","value":{{"stringValue":"{plain}"}}}}]}}"#
    ));
    format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

#[test]
fn json_and_protobuf_keep_32_levels_and_write_deeper_values_as_null() {
    // JSON stopped at serde_json's recursion limit (400 from about 29
    // levels), protobuf at prost's (400 for 32 levels in an attribute), and
    // either rejected the whole request for a deeper value. Both now keep
    // 32 levels, write a 33rd array or map as null, count it, and deliver
    // the rest; a chain 100,000 deep is no crash.
    let dir = TempDir::new("otlp-depth");
    let output = dir.join("out.ndjson");
    // The JSON of a map chain 100,000 deep, as body and attribute, is
    // about 9.2 MB.
    let (mut ringway, addr) = start(&dir, &file_output(&output), &["--max-body", "16MiB"]);
    let mut expected_too_deep = 0;
    let mut expected_records: Vec<(String, Link, usize)> = Vec::new();
    for encoding in ["protobuf", "json"] {
        // Small depths in one request; each 100,000-deep chain alone.
        let mut requests: Vec<Vec<DeepCase>> = vec![Vec::new()];
        for link in [Link::Map, Link::Array] {
            for depth in [1, 30, 31, 32, 33, 40] {
                requests[0].push(DeepCase {
                    name: format!("{encoding}-{link:?}-{depth}"),
                    link,
                    depth,
                });
            }
            requests.push(vec![DeepCase {
                name: format!("{encoding}-{link:?}-100000"),
                link,
                depth: 100_000,
            }]);
        }
        for (n, cases) in requests.iter().enumerate() {
            let plain = format!("{encoding}-plain-{n}");
            let wire = if encoding == "json" {
                post_json(&deep_request_json(cases, &plain))
            } else {
                post_protobuf(&deep_request_protobuf(cases, &plain))
            };
            let r = Conn::open(addr).roundtrip(&wire);
            let depths: Vec<usize> = cases.iter().map(|case| case.depth).collect();
            assert_eq!(
                r.status, 200,
                "{encoding} request of depths {depths:?}: {r}"
            );
            for case in cases {
                expected_records.push((case.name.clone(), case.link, case.depth));
                if case.depth > 32 {
                    expected_too_deep += 2; // the body and attribute "deep"
                }
            }
            expected_records.push((plain, Link::Map, 0));
        }
        ringway.assert_running(&format!("after the {encoding} requests"));
    }
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "nesting");
    let mut by_name: HashMap<String, Value> = HashMap::new();
    for record in records {
        let name = record["attributes"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            by_name.insert(name.clone(), record).is_none(),
            "record {name:?} written twice"
        );
    }
    for (name, link, depth) in &expected_records {
        let record = by_name
            .get(name)
            .unwrap_or_else(|| panic!("record {name:?} is missing"));
        if *depth == 0 {
            assert_eq!(record["body"], name.as_str(), "{name}");
            continue;
        }
        let expected = chain_ndjson(*link, *depth);
        assert!(
            record["body"] == expected,
            "{name}: body {}",
            record["body"]
        );
        assert!(
            record["attributes"]["deep"] == expected,
            "{name}: attribute {}",
            record["attributes"]["deep"]
        );
        // Both encodings write the same record.
        let twin = name.replacen("protobuf-", "json-", 1);
        if twin != *name {
            let (mut ours, mut theirs) = (record.clone(), by_name[&twin].clone());
            ours["attributes"]["name"] = json!("");
            theirs["attributes"]["name"] = json!("");
            assert_eq!(ours, theirs, "{name} and {twin} differ");
        }
    }
    assert_eq!(by_name.len(), expected_records.len(), "{summary}");
    assert_eq!(
        summary.input(0, "values_too_deep"),
        expected_too_deep,
        "{summary}"
    );
    assert_eq!(
        summary.input(0, "records"),
        expected_records.len() as u64,
        "{summary}"
    );
}

// ---------------------------------------------------------------------------
// Chunked framing (issue 14, item 8)

/// A POST of `framed` (a chunked body as it goes on the wire).
fn chunked_post(content_type: &str, framed: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", content_type),
            ("Transfer-Encoding", "chunked"),
        ],
        framed,
    )
}

/// `body` in chunks of `size` bytes, with the last chunk.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / size * (size + 8) + 16);
    for piece in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn a_two_megabyte_body_in_one_byte_chunks_is_taken_whole() {
    // The chunk framing used to count against --max-body: 2 MB in 1-byte
    // chunks is 12 MB on the wire and got 413. Only the decoded body
    // counts; a decoded body over --max-body is still 413.
    let dir = TempDir::new("otlp-one-byte-chunks");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &["--max-body", "3MiB"]);
    let names = bodies("one-byte-chunks", 0, 7_000, 280);
    let body = export_request("chunks", &names);
    assert!(body.len() > 2_000_000, "{} bytes", body.len());
    let framed = chunked(&body, 1);
    assert!(
        framed.len() > 4 * (3 << 20),
        "{} bytes on the wire",
        framed.len()
    );
    let mut conn = Conn::open(addr);
    // A server that refuses the body answers and closes before it is all
    // sent: the answer is what counts, not the failed write.
    let _ = conn.send(&chunked_post("application/x-protobuf", &framed));
    match conn.response() {
        Ok(Some(r)) => assert_eq!(r.status, 200, "{r}"),
        other => panic!("2 MB in 1-byte chunks: expected 200, got {other:?}"),
    }
    // The same connection takes the next request. The first one's records
    // may still fill ring(4) on a busy machine: a 429 then is the
    // documented answer, and a compliant sender retries after it.
    let more = bodies("one-byte-chunks", 1, 3, 0);
    let next = chunked_post(
        "application/x-protobuf",
        &chunked(&export_request("chunks", &more), 1),
    );
    let mut r = conn.roundtrip(&next);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.status == 429 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        r = conn.roundtrip(&next);
    }
    assert_eq!(r.status, 200, "{r}");
    assert_rss_bounded(&mut ringway, "after 12 MB of chunk framing");

    // 3 MiB decoded in 4 KiB chunks is at the limit; one more byte is over
    // it, refused at that chunk's size line (nothing after it is sent).
    let mut conn = Conn::open(addr);
    let mut wire = chunked_post("application/x-protobuf", b"");
    let at_limit = chunked(&vec![0x0a; 3 << 20], 4096);
    wire.extend_from_slice(&at_limit[..at_limit.len() - b"0\r\n\r\n".len()]);
    wire.extend_from_slice(b"1\r\n");
    conn.send(&wire).unwrap();
    match conn.response() {
        Ok(Some(r)) => assert_eq!(r.status, 413, "{r}"),
        other => panic!("a decoded body over --max-body: expected 413, got {other:?}"),
    }
    ringway.assert_running("after a chunked body over --max-body");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "one-byte chunks");
    let expected: Vec<String> = names.into_iter().chain(more).collect();
    assert_each_once(
        &by_body(&records, "one-byte chunks"),
        &expected,
        "one-byte chunks",
    );
    assert_eq!(records.len(), expected.len());
    assert_eq!(
        summary.input(0, "records"),
        expected.len() as u64,
        "{summary}"
    );
}

#[test]
fn hostile_chunk_framing_gets_400_and_ringway_stays_up() {
    // httparse takes any byte but CR in a chunk extension and the size line
    // had no bound: a bare LF (where parsers disagree on the framing), a
    // control byte, or kilobytes of extension or trailers were accepted,
    // and a size line that never ended held the connection until 408.
    let dir = TempDir::new("otlp-hostile-chunks");
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start(&dir, &file_output(&output), &[]);
    let body = export_request("hostile", &bodies("hostile", 0, 1, 0));
    let with_size_line = |line: &str| {
        let mut framed = line.as_bytes().to_vec();
        framed.extend_from_slice(&body);
        framed.extend_from_slice(b"\r\n0\r\n\r\n");
        framed
    };
    let size = format!("{:x}", body.len());
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("17 hex digits", with_size_line(&format!("{size:0>17}\r\n"))),
        (
            "bare LF ending the size line",
            with_size_line(&format!("{size}\n")),
        ),
        (
            "bare LF in an extension",
            with_size_line(&format!("{size};a\nb\r\n")),
        ),
        (
            "control byte in an extension",
            with_size_line(&format!("{size};a\x01b\r\n")),
        ),
        (
            "a 5 KiB extension",
            with_size_line(&format!("{size};{}\r\n", "e".repeat(5 * 1024))),
        ),
        (
            "a size line that never ends",
            format!("{size}{}", " ".repeat(5 * 1024)).into_bytes(),
        ),
    ];
    let mut no_crlf = with_size_line(&format!("{size}\r\n"));
    let data_end = no_crlf.len() - b"\r\n0\r\n\r\n".len();
    no_crlf[data_end] = b'X';
    cases.push(("no CRLF after the data", no_crlf));
    let mut long_trailer = chunked(&body, body.len());
    long_trailer.truncate(long_trailer.len() - 2);
    long_trailer.extend_from_slice(format!("X-T: {}\r\n\r\n", "t".repeat(5 * 1024)).as_bytes());
    cases.push(("5 KiB of trailers", long_trailer));
    for (what, framed) in &cases {
        let mut conn = Conn::open(addr);
        let _ = conn.send(&chunked_post("application/x-protobuf", framed));
        match conn.response() {
            Ok(Some(r)) => assert_eq!(r.status, 400, "{what}: {r}"),
            other => panic!("{what}: expected 400, got {other:?}"),
        }
        assert!(
            conn.closed_within(Duration::from_secs(10)),
            "{what}: the connection stayed open after the 400"
        );
        ringway.assert_running(what);
    }
    // A well-formed extension is allowed (RFC 9112 §7.1.1), and so are
    // short trailers.
    let names = bodies("after-hostile", 0, 1, 0);
    let good = export_request("ok", &names);
    let mut framed = format!("{:x};name=\"v a\"\r\n", good.len()).into_bytes();
    framed.extend_from_slice(&good);
    framed.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let r = Conn::open(addr).roundtrip(&chunked_post("application/x-protobuf", &framed));
    assert_eq!(r.status, 200, "{r}");
    let summary = stop(ringway, &dir);
    assert_eq!(http_count(&summary, "400"), cases.len() as u64, "{summary}");
    let records = parse_records(&read_output(&output), false, "hostile chunks");
    assert_each_once(
        &by_body(&records, "hostile chunks"),
        &names,
        "hostile chunks",
    );
    assert_eq!(
        records.len(),
        1,
        "nothing of the refused requests was written"
    );
}
