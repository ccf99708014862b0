//! OTLP/HTTP load generator for ringway's `otlp:` input, and the machine's
//! floor for the same traffic.
//!
//! **Send mode** (`--target ADDR:PORT`): builds `--variants` (default 4)
//! `ExportLogsServiceRequest` protobufs once at start-up, each with
//! `--records-per-request` (default 512) LogRecords of realistic shape (one
//! resource with service.name/service.version/host.name, one scope with name
//! and version; per record a 150–200 byte body of varied text, a severity,
//! 3–4 attributes, trace and span ids on ~90 % of them). With `--gzip` each
//! body is compressed once, up front. Then `--connections` threads each open
//! one keep-alive TCP connection and post `POST /v1/logs` (Content-Type
//! application/x-protobuf) with one request in flight, reading every
//! response in full (status line, headers, Content-Length or chunked body)
//! before sending the next, cycling through the variants. It runs for
//! `--duration`, or until `--requests` requests have been answered, or until
//! SIGINT/SIGTERM (in-flight requests are finished first).
//!
//! A 429 or 503 is counted and the *same* request is sent again after the
//! response's `Retry-After` seconds (1 s when the header is missing or not
//! a number; never past the end of the run). Any other non-2xx status is
//! counted by code and the next request is sent. A connection that the
//! server closed before answering (e.g. an idle keep-alive connection) is
//! reopened and the request sent again (`reconnects`). At the end one JSON
//! line goes to stdout:
//!
//! `{"requests_ok", "records_ok", "bytes_ok", "raw_bytes_ok", "status_429",
//!   "status_503", "other_status": {"400": n, …}, "retries", "retry_wait_s",
//!   "reconnects",
//!   "elapsed_s", "records_per_s", "mb_per_s", "latency_ms_p50",
//!   "latency_ms_p99", "latency_ms_max", "cpu_s", …}`
//!
//! `bytes_ok` counts request *body* bytes of the 2xx-answered requests, as
//! sent (compressed with `--gzip`); `raw_bytes_ok` the same bodies before
//! compression. `mb_per_s` is `bytes_ok` / 1e6 / `elapsed_s`. Latency is per
//! 2xx-answered attempt, from the first byte written to the last byte of
//! the response read (a 429's wait is not in it). `elapsed_s` runs from
//! the moment every connection is open until the last thread is done.
//!
//! **Floor mode** (`--floor`, `--serve ADDR:PORT`): a bare HTTP/1.1 sink,
//! one thread per connection, std networking only. It reads each request
//! (headers parsed with httparse, the Content-Length body read into one
//! contiguous buffer, as a real receiver must) and answers `200` with an
//! empty `application/x-protobuf` body, without looking at the body. With
//! `--decode` it also gunzips (when `Content-Encoding: gzip`) and
//! prost-decodes every body into an `ExportLogsServiceRequest` and counts
//! its LogRecords: the floor for receiving *and* decoding. It prints
//! `ready ADDR:PORT` on stdout once bound (`--serve 127.0.0.1:0` picks a
//! port), and on SIGINT/SIGTERM one JSON line, then exits 0:
//! `{"mode", "bind", "connections", "requests", "bytes", "records",
//!   "bad_requests", "elapsed_s", "cpu_s"}`.
//!
//! Types: `SendConfig`/`ServeConfig` (flags), `Workload` (the pre-built
//! requests), `Conn` (a socket with its receive buffer, used by both
//! sides), `Totals` (one sender thread's counts), `ServerStats`.
//!
//! Usage: otlp_sender --target 127.0.0.1:4318 [--connections 4] [--duration 10s] [--gzip]
//!        otlp_sender --floor --serve 127.0.0.1:0 [--decode]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

#[path = "udp_common.rs"]
#[allow(dead_code)]
mod common;
use common::{cpu_seconds, monotonic_ns, parse_count, parse_duration_ns, parse_size};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const DEFAULT_CONNECTIONS: usize = 4;
const MAX_CONNECTIONS: usize = 1024;
const DEFAULT_RECORDS_PER_REQUEST: usize = 512;
const MAX_RECORDS_PER_REQUEST: usize = 1_000_000;
const DEFAULT_VARIANTS: usize = 4;
const MAX_VARIANTS: usize = 64;
const DEFAULT_DURATION_NS: u64 = 10 * NANOS_PER_SECOND;
/// A response (or, on the server side, a request) that takes longer than
/// this to arrive ends the run with an error.
const DEFAULT_TIMEOUT_NS: u64 = 30 * NANOS_PER_SECOND;
/// Retry-After used when a 429/503 has none (or one that is not a number).
const DEFAULT_RETRY_AFTER_S: u64 = 1;
/// Reopen a connection the server closed before answering at most this many
/// times in a row for one request.
const MAX_RECONNECTS_IN_A_ROW: u32 = 3;
/// Response and request headers larger than this are an error (ringway's
/// limit is 16 KiB).
const MAX_HEADER_BYTES: usize = 64 << 10;
/// Receive buffer of a connection; grown to hold a whole request body on
/// the server side.
const INITIAL_BUFFER_BYTES: usize = 64 << 10;
/// The floor server refuses larger bodies with 413 and closes.
const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// Sleeps (Retry-After) are cut into slices this long so a stop signal or
/// the end of the run is noticed.
const SLEEP_SLICE: Duration = Duration::from_millis(20);
/// Log bodies are between these lengths, in bytes.
const MIN_BODY_BYTES: usize = 150;
const MAX_BODY_BYTES: usize = 200;
/// Records are stamped from 2026-11-29T10:00:00Z, 1 ms apart.
const BASE_TIME_NS: u64 = 1_795_946_400 * NANOS_PER_SECOND;
const RECORD_SPACING_NS: u64 = 1_000_000;

const PROTOBUF: &str = "application/x-protobuf";
const FLOOR_OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";

const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const USAGE: &str = "\
otlp_sender: OTLP/HTTP (protobuf) load generator, and a bare HTTP floor sink.

Usage:
  otlp_sender --target ADDR:PORT [--connections N] [--duration D | --requests N] [options]
  otlp_sender --floor [--serve ADDR:PORT] [--decode] [--max-body SIZE]

Send mode:
  --target ADDR:PORT        where to POST (e.g. 127.0.0.1:4318)
  --path PATH               request path [default /v1/logs]
  --connections N           keep-alive connections, one thread and one request
                            in flight each [default 4; max 1024]
  --duration D              stop sending after D (250ms, 10s, 2m or seconds)
                            [default 10s, or none when --requests is given]
  --requests N              stop after N requests were answered (k/M suffixes);
                            429/503 resends do not count [default 0 = no limit]
  --records-per-request N   LogRecords per request [default 512]
  --variants N              distinct pre-built requests, used in turn, so
                            bodies differ between requests [default 4; max 64]
  --gzip                    send gzip-compressed bodies (Content-Encoding: gzip),
                            compressed once at start-up
  --seed N                  seed for the generated records [default 1]
  --timeout D               longest wait for a response [default 30s]
  --dump PATH               write the first request's body (as it would be sent;
                            OTLP/JSON instead if PATH ends in .json) and exit;
                            --target is then optional (e.g. for curl --data-binary)

Floor mode (the machine's floor for the same HTTP traffic):
  --floor                   run the sink; --serve implies it
  --serve ADDR:PORT         address to listen on [default 127.0.0.1:0 = any free port]
  --decode                  also gunzip and prost-decode every body (a decode floor)
  --max-body SIZE           bodies above this get 413 and a close [default 64MiB]

  -h, --help                this text

Send mode prints one JSON line on stdout at the end (also after SIGINT/SIGTERM):
  {\"requests_ok\", \"records_ok\", \"bytes_ok\", \"raw_bytes_ok\", \"status_429\",
   \"status_503\", \"other_status\", \"retries\", \"reconnects\", \"elapsed_s\",
   \"records_per_s\", \"mb_per_s\", \"latency_ms_p50\", \"latency_ms_p99\", ...}
bytes_ok = request body bytes (as sent) of 2xx-answered requests. 429 and 503
are retried after Retry-After seconds with the same request.
Floor mode prints `ready ADDR:PORT` once listening and a JSON line on SIGINT/SIGTERM.
Exit status: 0 done, 1 network or protocol failure, 2 usage error.
";

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct SendConfig {
    target: SocketAddr,
    /// As given, for the Host header and messages.
    target_text: String,
    path: String,
    connections: usize,
    /// 0 = no time limit.
    duration_ns: u64,
    /// 0 = no limit.
    requests: u64,
    records_per_request: usize,
    variants: usize,
    gzip: bool,
    seed: u64,
    timeout_ns: u64,
    /// Some(path): write the first request's body there and exit.
    dump: Option<String>,
}

#[derive(Debug)]
struct ServeConfig {
    bind: String,
    decode: bool,
    max_body_bytes: usize,
}

#[derive(Debug)]
enum Mode {
    Help,
    Send(SendConfig),
    Serve(ServeConfig),
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Mode, String> {
    let mut target: Option<String> = None;
    let mut path = "/v1/logs".to_string();
    let mut connections = DEFAULT_CONNECTIONS;
    let mut duration_ns: Option<u64> = None;
    let mut requests = 0;
    let mut records_per_request = DEFAULT_RECORDS_PER_REQUEST;
    let mut variants = DEFAULT_VARIANTS;
    let mut gzip = false;
    let mut seed = 1;
    let mut timeout_ns = DEFAULT_TIMEOUT_NS;
    let mut floor = false;
    let mut serve: Option<String> = None;
    let mut decode = false;
    let mut max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    let mut dump: Option<String> = None;
    // Flags that only make sense in one mode, to reject mixes.
    let mut send_flags: Vec<String> = Vec::new();

    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Mode::Help),
            "--target" => target = Some(value()?),
            "--path" => {
                path = value()?;
                if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(format!(
                        "--path {path}: expected an absolute path such as /v1/logs"
                    ));
                }
            }
            "--connections" => connections = parse_count(&value()?, "--connections")? as usize,
            "--duration" => duration_ns = Some(parse_duration_ns(&value()?, "--duration")?),
            "--requests" => requests = parse_count(&value()?, "--requests")?,
            "--records-per-request" => {
                records_per_request = parse_count(&value()?, "--records-per-request")? as usize
            }
            "--variants" => variants = parse_count(&value()?, "--variants")? as usize,
            "--gzip" => gzip = true,
            "--seed" => seed = parse_count(&value()?, "--seed")?,
            "--timeout" => timeout_ns = parse_duration_ns(&value()?, "--timeout")?,
            "--floor" => floor = true,
            "--serve" => serve = Some(value()?),
            "--decode" => decode = true,
            "--max-body" => max_body_bytes = parse_size(&value()?, "--max-body")?,
            "--dump" => dump = Some(value()?),
            other => return Err(format!("unknown argument '{other}'")),
        }
        if matches!(
            name.as_str(),
            "--target"
                | "--path"
                | "--connections"
                | "--duration"
                | "--requests"
                | "--records-per-request"
                | "--variants"
                | "--gzip"
                | "--seed"
                | "--timeout"
                | "--dump"
        ) {
            send_flags.push(name);
        }
    }

    if floor || serve.is_some() {
        if let Some(flag) = send_flags.first() {
            return Err(format!(
                "{flag} is a send-mode flag; it cannot be used with --floor/--serve"
            ));
        }
        if max_body_bytes == 0 {
            return Err("--max-body must be above 0".into());
        }
        return Ok(Mode::Serve(ServeConfig {
            bind: serve.unwrap_or_else(|| "127.0.0.1:0".to_string()),
            decode,
            max_body_bytes,
        }));
    }
    if decode {
        return Err("--decode is a floor-mode flag: add --floor".into());
    }
    let Some(target_text) = target.or_else(|| dump.as_ref().map(|_| "127.0.0.1:4318".into()))
    else {
        return Err("give --target ADDR:PORT (send) or --floor (sink)".into());
    };
    let target = resolve(&target_text, "--target")?;
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    if !(1..=MAX_RECORDS_PER_REQUEST).contains(&records_per_request) {
        return Err(format!(
            "--records-per-request must be 1..={MAX_RECORDS_PER_REQUEST}"
        ));
    }
    if !(1..=MAX_VARIANTS).contains(&variants) {
        return Err(format!("--variants must be 1..={MAX_VARIANTS}"));
    }
    if timeout_ns == 0 {
        return Err("--timeout must be above 0".into());
    }
    let duration_ns = match duration_ns {
        Some(ns) => ns,
        None if requests > 0 => 0,
        None => DEFAULT_DURATION_NS,
    };
    if duration_ns == 0 && requests == 0 {
        return Err("--duration 0 needs --requests N (or the run would never end)".into());
    }
    Ok(Mode::Send(SendConfig {
        target,
        target_text,
        path,
        connections,
        duration_ns,
        requests,
        records_per_request,
        variants,
        gzip,
        seed,
        timeout_ns,
        dump,
    }))
}

fn resolve(text: &str, flag: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{flag} {text}: expected ADDR:PORT, e.g. 127.0.0.1:4318"))
}

fn main() {
    match parse_args(std::env::args().skip(1)) {
        Ok(Mode::Help) => print!("{USAGE}"),
        Ok(Mode::Send(config)) => std::process::exit(run_sender(&config)),
        Ok(Mode::Serve(config)) => std::process::exit(run_floor(&config)),
        Err(message) => {
            eprintln!("otlp_sender: error: {message}\nTry 'otlp_sender --help'.");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------
// The workload: pre-built requests
// ---------------------------------------------------------------------------

/// One pre-built request: the whole HTTP message (headers + body), ready to
/// write as is.
struct Prepared {
    message: Vec<u8>,
    /// Body bytes as sent (compressed with --gzip).
    body_bytes: u64,
    /// Body bytes before compression.
    raw_body_bytes: u64,
    records: u64,
}

/// splitmix64: small, fast and good enough to vary test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut text = String::with_capacity(digits);
        while text.len() < digits {
            text.push_str(&format!("{:016x}", self.next()));
        }
        text.truncate(digits);
        text
    }

    fn ipv4(&mut self) -> String {
        let word = self.next();
        format!(
            "10.{}.{}.{}",
            (word >> 8) as u8,
            (word >> 16) as u8,
            (word >> 24) as u8 | 1
        )
    }
}

const SERVICES: &[&str] = &["checkout", "payments", "inventory", "auth-gateway"];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const ROUTES: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v2/customers",
    "/api/v1/products/search",
    "/healthz",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    "okhttp/4.12.0",
    "curl/8.11.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
];
const USERS: &[&str] = &[
    "alice",
    "bob.smith",
    "jürgen.müller",
    "zoë",
    "łukasz",
    "ana.maría",
    "chen.wei",
    "o'brien",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY"];
const PROCESSORS: &[&str] = &["adyen", "stripe", "braintree"];
const PROVIDERS: &[&str] = &["google", "github", "okta", "azuread"];
const FUNCTIONS: &[&str] = &[
    "OrderService.place",
    "CartController.update",
    "PaymentClient.authorize",
    "SessionStore.refresh",
];
/// `key=value` fields appended to bodies until they reach their length
/// (besides `req_id=<hex>`).
const EXTRA_FIELDS: &[(&str, &[&str])] = &[
    ("region", &["eu-west-1", "us-east-2", "ap-southeast-1"]),
    (
        "pod",
        &[
            "checkout-7d9f8c6b5-x2k4q",
            "payments-5c8d7f9b4-h7m2n",
            "inventory-6b7c8d9f5-p9q3r",
        ],
    ),
    (
        "tenant",
        &[
            "acme-corp",
            "globex",
            "initech",
            "umbrella",
            "stark-industries",
        ],
    ),
    ("build", &["2026.11.3", "2026.11.4-rc1", "2026.10.28"]),
    (
        "thread",
        &[
            "http-nio-8080-exec-7",
            "tokio-runtime-worker",
            "main",
            "grpc-default-executor-3",
        ],
    ),
    ("env", &["production", "staging"]),
    ("cluster", &["prod-eu-2", "prod-us-1"]),
    ("canary", &["true", "false"]),
];

fn string_value(text: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(text.into())),
    })
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(value: impl Into<String>) -> Value {
    Value::StringValue(value.into())
}

/// Severity (number, text), body and attributes of one record.
fn record_content(rng: &mut Rng) -> (i32, &'static str, String, Vec<KeyValue>) {
    const DEBUG: (i32, &str) = (5, "DEBUG");
    const INFO: (i32, &str) = (9, "INFO");
    const WARN: (i32, &str) = (13, "WARN");
    const ERROR: (i32, &str) = (17, "ERROR");
    let ms = rng.below(2_000) + 1;
    let duration = ms as f64 + rng.below(1_000) as f64 / 1_000.0;
    let ((number, severity), body, attributes) = match rng.below(100) {
        0..=34 => {
            let method = rng.pick(METHODS);
            let route = rng.pick(ROUTES);
            let id = rng.below(1_000_000);
            let status = [200, 200, 200, 200, 201, 204, 404, 500][rng.below(8) as usize];
            let body = format!(
                "{ip} - - [29/Nov/2026:10:{m:02}:{s:02} +0000] \"{method} {route}/{id} HTTP/1.1\" \
                 {status} {bytes} \"-\" \"{ua}\" rt={duration:.3}",
                ip = rng.ipv4(),
                m = rng.below(60),
                s = rng.below(60),
                bytes = rng.below(50_000),
                ua = rng.pick(USER_AGENTS),
            );
            let severity = if status >= 500 { ERROR } else { INFO };
            let attributes = vec![
                attribute("http.request.method", text(method)),
                attribute("url.path", text(format!("{route}/{id}"))),
                attribute("http.response.status_code", Value::IntValue(status)),
                attribute("duration_ms", Value::DoubleValue(duration)),
            ];
            (severity, body, attributes)
        }
        35..=49 => {
            let order = rng.below(10_000_000);
            let amount = rng.below(100_000) as f64 / 100.0;
            let body = format!(
                "payment authorized order_id={order} amount={amount:.2} currency={} \
                 card=****{:04} processor={} attempt={}",
                rng.pick(CURRENCIES),
                rng.below(10_000),
                rng.pick(PROCESSORS),
                rng.below(3) + 1,
            );
            let attributes = vec![
                attribute("order.id", text(order.to_string())),
                attribute("payment.amount", Value::DoubleValue(amount)),
                attribute("customer.id", Value::IntValue(rng.below(1_000_000) as i64)),
            ];
            (INFO, body, attributes)
        }
        50..=61 => {
            let user = rng.below(1_000_000);
            let body = format!(
                "cache miss for key user:{user}:profile; falling back to postgres \
                 (pool=primary wait_ms={ms} active={}/{})",
                rng.below(32),
                32
            );
            let attributes = vec![
                attribute("cache.key", text(format!("user:{user}:profile"))),
                attribute("db.system", text("postgresql")),
                attribute("thread.name", text(format!("worker-{}", rng.below(16)))),
            ];
            (DEBUG, body, attributes)
        }
        62..=69 => {
            let attempts = rng.below(5) + 1;
            let topic = ["orders.v2", "payments.events", "audit"][rng.below(3) as usize];
            let body = format!(
                "failed to deliver message {} to topic {topic} after {attempts} attempts: \
                 connection reset by peer (broker=kafka-{}.internal:9092)",
                rng.hex(16),
                rng.below(6),
            );
            let attributes = vec![
                attribute("messaging.system", text("kafka")),
                attribute("messaging.destination.name", text(topic)),
                attribute("error.type", text("ConnectionReset")),
                attribute("retry.count", Value::IntValue(attempts as i64)),
            ];
            (if attempts > 3 { ERROR } else { WARN }, body, attributes)
        }
        70..=81 => {
            let user = rng.pick(USERS);
            let address = rng.ipv4();
            let provider = rng.pick(PROVIDERS);
            let mfa = rng.below(4) != 0;
            let body = format!(
                "user {user} signed in from {address} via oauth2 (provider={provider}, \
                 mfa={mfa}) session={}",
                rng.hex(24)
            );
            let attributes = vec![
                attribute("enduser.id", text(user)),
                attribute("client.address", text(address)),
                attribute("auth.provider", text(provider)),
                attribute("auth.mfa", Value::BoolValue(mfa)),
            ];
            (INFO, body, attributes)
        }
        82..=89 => {
            let body = format!(
                "slow query ({ms} ms): SELECT id, status, total FROM orders WHERE customer_id = $1 \
                 AND created_at > now() - interval '7 days' LIMIT {}",
                rng.below(500) + 10
            );
            let attributes = vec![
                attribute("db.system", text("postgresql")),
                attribute("db.operation.name", text("SELECT")),
                attribute("code.function", text(rng.pick(FUNCTIONS))),
                attribute("duration_ms", Value::DoubleValue(duration)),
            ];
            (WARN, body, attributes)
        }
        90..=94 => {
            let before = rng.below(4_000) + 500;
            let body = format!(
                "GC pause (G1 Evacuation Pause) young {:.3}ms, heap {before}M->{}M({}M), \
                 parallel workers={}",
                duration / 10.0,
                before / 3,
                before + 1_024,
                rng.below(8) + 1
            );
            let attributes = vec![
                attribute("jvm.gc.name", text("G1 Young Generation")),
                attribute("jvm.gc.action", text("end of minor GC")),
                attribute("duration_ms", Value::DoubleValue(duration / 10.0)),
            ];
            (DEBUG, body, attributes)
        }
        _ => {
            let failures = rng.below(10) + 1;
            let body = format!(
                "upstream inventory-svc returned 503 for GET /inventory/sku/{}; retrying in \
                 {ms}ms (circuit=half-open failures={failures})",
                rng.below(100_000)
            );
            let attributes = vec![
                attribute(
                    "server.address",
                    text("inventory-svc.prod.svc.cluster.local"),
                ),
                attribute("http.response.status_code", Value::IntValue(503)),
                attribute("retry.count", Value::IntValue(failures as i64)),
            ];
            (WARN, body, attributes)
        }
    };
    (number, severity, body, attributes)
}

/// Appends `key=value` fields until the body is at least a random length in
/// MIN..=MAX_BODY_BYTES, then cuts it to MAX_BODY_BYTES (on a character
/// boundary).
fn pad_body(rng: &mut Rng, body: &mut String) {
    let target = MIN_BODY_BYTES + rng.below((MAX_BODY_BYTES - MIN_BODY_BYTES + 1) as u64) as usize;
    while body.len() < target {
        if rng.below(6) == 0 {
            let id = rng.hex(12);
            body.push_str(&format!(" req_id={id}"));
        } else {
            let (key, values) = EXTRA_FIELDS[rng.below(EXTRA_FIELDS.len() as u64) as usize];
            body.push_str(&format!(" {key}={}", rng.pick(values)));
        }
    }
    if body.len() > MAX_BODY_BYTES {
        let mut cut = MAX_BODY_BYTES;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
}

fn make_record(rng: &mut Rng, time_unix_nano: u64) -> LogRecord {
    let (severity_number, severity_text, mut body, attributes) = record_content(rng);
    pad_body(rng, &mut body);
    // About one record in ten is logged outside a span.
    let (trace_id, span_id, flags) = if rng.below(10) == 0 {
        (Vec::new(), Vec::new(), 0)
    } else {
        let mut trace_id = vec![0; 16];
        let mut span_id = vec![0; 8];
        rng.fill(&mut trace_id);
        rng.fill(&mut span_id);
        (trace_id, span_id, 1)
    };
    LogRecord {
        time_unix_nano,
        observed_time_unix_nano: time_unix_nano + rng.below(5_000_000),
        severity_number,
        severity_text: severity_text.to_string(),
        body: string_value(body),
        attributes,
        flags,
        trace_id,
        span_id,
        ..Default::default()
    }
}

/// The protobuf of variant `variant`: one resource, one scope, `records`
/// LogRecords.
fn build_request(seed: u64, variant: usize, records: usize) -> ExportLogsServiceRequest {
    let mut rng = Rng(seed ^ (variant as u64).wrapping_mul(0xa076_1d64_78bd_642f));
    let service = SERVICES[variant % SERVICES.len()];
    let start_ns = BASE_TIME_NS + variant as u64 * records as u64 * RECORD_SPACING_NS;
    let log_records = (0..records as u64)
        .map(|i| {
            let time = start_ns + i * RECORD_SPACING_NS + rng.below(RECORD_SPACING_NS);
            make_record(&mut rng, time)
        })
        .collect();
    let resource = Resource {
        attributes: vec![
            attribute("service.name", text(service)),
            attribute("service.version", text(format!("2.{}.{}", variant, 7))),
            attribute(
                "host.name",
                text(format!("node-{:02}.prod.internal", variant + 1)),
            ),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: format!("io.opentelemetry.{}", service.replace('-', "_")),
        version: "1.42.0".to_string(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope),
                log_records,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn prepare(config: &SendConfig) -> Result<Vec<Prepared>, String> {
    (0..config.variants)
        .map(|variant| {
            let raw =
                build_request(config.seed, variant, config.records_per_request).encode_to_vec();
            let body = if config.gzip {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder
                    .write_all(&raw)
                    .and_then(|()| encoder.finish())
                    .map_err(|error| format!("gzip failed: {error}"))?
            } else {
                raw.clone()
            };
            let mut message = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-otlp-sender\r\n\
                 Content-Type: {PROTOBUF}\r\n{encoding}Content-Length: {length}\r\n\r\n",
                path = config.path,
                host = config.target_text,
                encoding = if config.gzip {
                    "Content-Encoding: gzip\r\n"
                } else {
                    ""
                },
                length = body.len(),
            )
            .into_bytes();
            message.extend_from_slice(&body);
            Ok(Prepared {
                message,
                body_bytes: body.len() as u64,
                raw_body_bytes: raw.len() as u64,
                records: config.records_per_request as u64,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// A connection and its receive buffer (both modes)
// ---------------------------------------------------------------------------

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

/// What went wrong reading a response.
enum ReadError {
    /// The peer closed (or reset) the connection before sending a byte of
    /// the response: an idle keep-alive connection it dropped. Retryable.
    ClosedBeforeResponse,
    Failed(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Failed(describe_io(&error))
    }
}

fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "timed out waiting for the peer".to_string()
        }
        _ => error.to_string(),
    }
}

/// The parts of a response header the sender acts on.
struct Response {
    status: u16,
    retry_after_s: Option<u64>,
    close: bool,
}

impl Conn {
    fn new(stream: TcpStream, timeout_ns: u64) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_nanos(timeout_ns)))?;
        stream.set_write_timeout(Some(Duration::from_nanos(timeout_ns)))?;
        Ok(Conn {
            stream,
            buf: vec![0; INITIAL_BUFFER_BYTES],
            start: 0,
            end: 0,
        })
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Reads more bytes after `end`, making room first (moving the unread
    /// bytes to the front, or growing the buffer). Returns 0 at EOF.
    fn read_more(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Makes `buf[start..start + n]` hold `n` unread bytes (one contiguous
    /// slice), reading as needed. Err(UnexpectedEof) if the peer closes first.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.buffered() < n {
            if self.read_more()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a message",
                ));
            }
        }
        Ok(())
    }

    /// Consumes `n` bytes without keeping them.
    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let take = n.min(self.buffered());
            self.start += take;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.read_more()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a response body",
                ));
            }
        }
    }

    /// Consumes one CRLF-terminated line and returns it without the CRLF.
    fn line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(at) = unread.windows(2).position(|pair| pair == b"\r\n") {
                let line = unread[..at].to_vec();
                self.start += at + 2;
                return Ok(line);
            }
            if self.buffered() > MAX_HEADER_BYTES {
                return Err(ReadError::Failed("a chunked-body line is too long".into()));
            }
            if self.read_more()? == 0 {
                return Err(ReadError::Failed(
                    "connection closed in the middle of a chunked body".into(),
                ));
            }
        }
    }

    /// Reads one whole response, body included, and returns its status and
    /// the headers that matter. 1xx interim responses are skipped.
    fn read_response(&mut self) -> Result<Response, ReadError> {
        loop {
            let (response, body) = self.read_response_head()?;
            match body {
                Body::None => {}
                Body::Length(length) => self.skip(length)?,
                Body::Chunked => self.skip_chunked()?,
                Body::UntilClose => {
                    while self.read_more()? > 0 {
                        self.start = self.end;
                    }
                    self.start = self.end;
                }
            }
            if (100..200).contains(&response.status) {
                continue;
            }
            return Ok(response);
        }
    }

    fn read_response_head(&mut self) -> Result<(Response, Body), ReadError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut close = parsed.version == Some(0);
                    let mut length = None;
                    let mut chunked = false;
                    let mut retry_after_s = None;
                    for header in parsed.headers.iter() {
                        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
                        if header.name.eq_ignore_ascii_case("content-length") {
                            length = Some(value.parse::<usize>().map_err(|_| {
                                ReadError::Failed(format!("bad Content-Length '{value}'"))
                            })?);
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = value.to_ascii_lowercase().contains("chunked");
                        } else if header.name.eq_ignore_ascii_case("connection") {
                            let value = value.to_ascii_lowercase();
                            if value.contains("close") {
                                close = true;
                            } else if value.contains("keep-alive") {
                                close = false;
                            }
                        } else if header.name.eq_ignore_ascii_case("retry-after") {
                            retry_after_s = value.parse::<u64>().ok();
                        }
                    }
                    self.start += head_len;
                    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
                        Body::None
                    } else if chunked {
                        Body::Chunked
                    } else if let Some(length) = length {
                        Body::Length(length)
                    } else {
                        close = true;
                        Body::UntilClose
                    };
                    let response = Response {
                        status,
                        retry_after_s,
                        close,
                    };
                    return Ok((response, body));
                }
                Ok(httparse::Status::Partial) => {}
                Err(error) => {
                    return Err(ReadError::Failed(format!("malformed response: {error}")));
                }
            }
            if self.buffered() > MAX_HEADER_BYTES {
                return Err(ReadError::Failed(format!(
                    "response header larger than {MAX_HEADER_BYTES} bytes"
                )));
            }
            let had_bytes = self.buffered() > 0;
            match self.read_more() {
                Ok(0) if !had_bytes => return Err(ReadError::ClosedBeforeResponse),
                Ok(0) => {
                    return Err(ReadError::Failed(
                        "connection closed in the middle of a response header".into(),
                    ));
                }
                Ok(_) => {}
                Err(error)
                    if !had_bytes
                        && matches!(
                            error.kind(),
                            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                        ) =>
                {
                    return Err(ReadError::ClosedBeforeResponse);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    fn skip_chunked(&mut self) -> Result<(), ReadError> {
        loop {
            let line = self.line()?;
            let size_text = std::str::from_utf8(&line).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                ReadError::Failed(format!("bad chunk size '{size_text}' in a chunked body"))
            })?;
            if size == 0 {
                // Trailer fields, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.skip(size + 2)?;
        }
    }
}

enum Body {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

// ---------------------------------------------------------------------------
// Send mode
// ---------------------------------------------------------------------------

/// One sender thread's counts.
#[derive(Default)]
struct Totals {
    requests_ok: u64,
    records_ok: u64,
    bytes_ok: u64,
    raw_bytes_ok: u64,
    status_429: u64,
    status_503: u64,
    /// Every other non-2xx status, by code (0 = unparseable).
    other_status: BTreeMap<u16, u64>,
    /// Resends after a 429/503.
    retries: u64,
    /// Time spent waiting out Retry-After.
    retry_wait: Duration,
    /// Connections reopened because the server closed them before answering.
    reconnects: u64,
    /// Microseconds per 2xx-answered attempt.
    latencies_us: Vec<u32>,
}

impl Totals {
    fn merge(&mut self, other: Totals) {
        self.requests_ok += other.requests_ok;
        self.records_ok += other.records_ok;
        self.bytes_ok += other.bytes_ok;
        self.raw_bytes_ok += other.raw_bytes_ok;
        self.status_429 += other.status_429;
        self.status_503 += other.status_503;
        for (code, n) in other.other_status {
            *self.other_status.entry(code).or_default() += n;
        }
        self.retries += other.retries;
        self.retry_wait += other.retry_wait;
        self.reconnects += other.reconnects;
        self.latencies_us.extend(other.latencies_us);
    }
}

/// What every sender thread shares.
struct Shared {
    requests: Vec<Prepared>,
    target: SocketAddr,
    timeout_ns: u64,
    /// Some(end of the run).
    deadline: Option<Instant>,
    /// 0 = no limit; else requests are claimed from `claimed` first.
    request_limit: u64,
    claimed: AtomicU64,
    /// The first fatal error of any thread; it also stops the others.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn should_stop(&self) -> bool {
        STOP.load(Ordering::Relaxed) || self.deadline.is_some_and(|end| Instant::now() >= end)
    }

    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
        STOP.store(true, Ordering::Relaxed);
    }
}

fn connect(target: SocketAddr, timeout_ns: u64) -> Result<Conn, String> {
    TcpStream::connect_timeout(&target, Duration::from_nanos(timeout_ns))
        .and_then(|stream| Conn::new(stream, timeout_ns))
        .map_err(|error| format!("cannot connect to {target}: {}", describe_io(&error)))
}

fn run_sender(config: &SendConfig) -> i32 {
    if let Some(path) = &config.dump {
        return dump(config, path);
    }
    install_stop_handlers();
    let requests = match prepare(config) {
        Ok(requests) => requests,
        Err(message) => {
            eprintln!("otlp_sender: error: {message}");
            return 1;
        }
    };
    let mean = |f: fn(&Prepared) -> u64| {
        requests.iter().map(f).sum::<u64>() as f64 / requests.len() as f64
    };
    eprintln!(
        "otlp_sender: {} variants of {} records, body {:.0} B on average ({:.0} B before gzip){}; \
         {} connections to {}",
        requests.len(),
        config.records_per_request,
        mean(|p| p.body_bytes),
        mean(|p| p.raw_body_bytes),
        if config.gzip { ", gzip" } else { "" },
        config.connections,
        config.target,
    );

    // Open every connection before the clock starts.
    let mut conns = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        match connect(config.target, config.timeout_ns) {
            Ok(conn) => conns.push(conn),
            Err(message) => {
                eprintln!("otlp_sender: error: {message}");
                return 1;
            }
        }
    }

    let cpu_start_s = cpu_seconds();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        requests,
        target: config.target,
        timeout_ns: config.timeout_ns,
        deadline: (config.duration_ns > 0)
            .then(|| start + Duration::from_nanos(config.duration_ns)),
        request_limit: config.requests,
        claimed: AtomicU64::new(0),
        failure: Mutex::new(None),
    });
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(index, conn)| {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("sender-{index}"))
                .spawn(move || sender_thread(index, conn, &shared))
                .expect("spawning a sender thread")
        })
        .collect();
    let mut totals = Totals::default();
    for worker in workers {
        match worker.join() {
            Ok(thread_totals) => totals.merge(thread_totals),
            Err(_) => shared.fail("a sender thread panicked".into()),
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - cpu_start_s;

    println!("{}", report(config, &shared, &mut totals, elapsed_s, cpu_s));
    let failure = shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failure {
        Some(message) => {
            eprintln!("otlp_sender: error: {message}");
            1
        }
        None => 0,
    }
}

/// `--dump PATH`: the first request's body as sent (protobuf, gzipped with
/// --gzip), or OTLP/JSON when PATH ends in `.json`.
fn dump(config: &SendConfig, path: &str) -> i32 {
    let bytes = if path.ends_with(".json") {
        let request = build_request(config.seed, 0, config.records_per_request);
        match serde_json::to_vec(&request) {
            Ok(json) => json,
            Err(error) => {
                eprintln!("otlp_sender: error: cannot encode OTLP/JSON: {error}");
                return 1;
            }
        }
    } else {
        match prepare(config) {
            Ok(requests) => {
                let first = &requests[0];
                let body_at = first.message.len() - first.body_bytes as usize;
                first.message[body_at..].to_vec()
            }
            Err(message) => {
                eprintln!("otlp_sender: error: {message}");
                return 1;
            }
        }
    };
    match std::fs::write(path, &bytes) {
        Ok(()) => {
            eprintln!("otlp_sender: wrote {} bytes to {path}", bytes.len());
            0
        }
        Err(error) => {
            eprintln!("otlp_sender: error: cannot write {path}: {error}");
            1
        }
    }
}

fn report(
    config: &SendConfig,
    shared: &Shared,
    totals: &mut Totals,
    elapsed_s: f64,
    cpu_s: f64,
) -> String {
    totals.latencies_us.sort_unstable();
    let percentile_ms = |p: f64| -> f64 {
        let latencies = &totals.latencies_us;
        if latencies.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1] as f64 / 1_000.0
    };
    let per_s = |n: u64| {
        if elapsed_s > 0.0 {
            n as f64 / elapsed_s
        } else {
            0.0
        }
    };
    let other_status = totals
        .other_status
        .iter()
        .map(|(code, n)| format!("\"{code}\":{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let failed = shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    format!(
        "{{\"target\":\"{target}\",\"connections\":{connections},\"records_per_request\":{rpr},\
         \"variants\":{variants},\"gzip\":{gzip},\"requests_ok\":{requests_ok},\
         \"records_ok\":{records_ok},\"bytes_ok\":{bytes_ok},\"raw_bytes_ok\":{raw_bytes_ok},\
         \"status_429\":{s429},\"status_503\":{s503},\"other_status\":{{{other_status}}},\
         \"retries\":{retries},\"retry_wait_s\":{retry_wait_s:.3},\"reconnects\":{reconnects},\"elapsed_s\":{elapsed_s:.6},\
         \"requests_per_s\":{rps:.1},\"records_per_s\":{recs:.0},\"mb_per_s\":{mbs:.3},\
         \"latency_ms_p50\":{p50:.3},\"latency_ms_p99\":{p99:.3},\"latency_ms_max\":{max:.3},\
         \"cpu_s\":{cpu_s:.3},\"failed\":{failed}}}",
        target = config.target,
        connections = config.connections,
        rpr = config.records_per_request,
        variants = config.variants,
        gzip = config.gzip,
        requests_ok = totals.requests_ok,
        records_ok = totals.records_ok,
        bytes_ok = totals.bytes_ok,
        raw_bytes_ok = totals.raw_bytes_ok,
        s429 = totals.status_429,
        s503 = totals.status_503,
        retries = totals.retries,
        retry_wait_s = totals.retry_wait.as_secs_f64(),
        reconnects = totals.reconnects,
        rps = per_s(totals.requests_ok),
        recs = per_s(totals.records_ok),
        mbs = per_s(totals.bytes_ok) / 1e6,
        p50 = percentile_ms(0.50),
        p99 = percentile_ms(0.99),
        max = percentile_ms(1.0),
    )
}

/// Sends requests on one connection until the run ends; a fatal error is
/// handed to `shared.fail` (which stops every thread).
fn sender_thread(index: usize, conn: Conn, shared: &Shared) -> Totals {
    let mut totals = Totals::default();
    let mut conn = Some(conn);
    let mut next_variant = index % shared.requests.len();
    while !shared.should_stop() {
        if shared.request_limit > 0
            && shared.claimed.fetch_add(1, Ordering::Relaxed) >= shared.request_limit
        {
            break;
        }
        let request = &shared.requests[next_variant];
        next_variant = (next_variant + 1) % shared.requests.len();
        if let Err(message) = send_one(request, &mut conn, shared, &mut totals) {
            shared.fail(format!("connection {index}: {message}"));
            break;
        }
    }
    totals
}

/// Sends one request until it gets a final answer: resends after 429/503
/// (honouring Retry-After) and after the server closed an idle connection.
/// Returns Ok also when the run ends during a Retry-After wait.
fn send_one(
    request: &Prepared,
    conn_slot: &mut Option<Conn>,
    shared: &Shared,
    totals: &mut Totals,
) -> Result<(), String> {
    let mut reconnects_in_a_row = 0;
    loop {
        let conn = match conn_slot {
            Some(conn) => conn,
            None => conn_slot.insert(connect(shared.target, shared.timeout_ns)?),
        };
        let sent_at = Instant::now();
        let outcome = match conn.stream.write_all(&request.message) {
            Ok(()) => conn.read_response(),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Err(ReadError::ClosedBeforeResponse)
            }
            Err(error) => Err(ReadError::Failed(format!(
                "sending a request: {}",
                describe_io(&error)
            ))),
        };
        let response = match outcome {
            Ok(response) => response,
            Err(ReadError::ClosedBeforeResponse) => {
                *conn_slot = None;
                reconnects_in_a_row += 1;
                if reconnects_in_a_row > MAX_RECONNECTS_IN_A_ROW {
                    return Err(format!(
                        "the server closed the connection without answering, \
                         {MAX_RECONNECTS_IN_A_ROW} times in a row"
                    ));
                }
                totals.reconnects += 1;
                continue;
            }
            Err(ReadError::Failed(message)) => return Err(message),
        };
        let latency = sent_at.elapsed();
        if response.close {
            *conn_slot = None;
        }
        match response.status {
            200..=299 => {
                totals.requests_ok += 1;
                totals.records_ok += request.records;
                totals.bytes_ok += request.body_bytes;
                totals.raw_bytes_ok += request.raw_body_bytes;
                totals
                    .latencies_us
                    .push(latency.as_micros().min(u32::MAX as u128) as u32);
                return Ok(());
            }
            429 | 503 => {
                if response.status == 429 {
                    totals.status_429 += 1;
                } else {
                    totals.status_503 += 1;
                }
                let wait_s = response.retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S);
                let waited_from = Instant::now();
                let slept = sleep_unless_stopped(Duration::from_secs(wait_s), shared);
                totals.retry_wait += waited_from.elapsed();
                if !slept {
                    return Ok(());
                }
                totals.retries += 1;
                reconnects_in_a_row = 0;
            }
            status => {
                *totals.other_status.entry(status).or_default() += 1;
                return Ok(());
            }
        }
    }
}

/// Sleeps for `wait`; false (early) if the run ends first.
fn sleep_unless_stopped(wait: Duration, shared: &Shared) -> bool {
    let until = Instant::now() + wait;
    loop {
        if shared.should_stop() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(SLEEP_SLICE));
    }
}

fn install_stop_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an
        // atomic, which is async-signal-safe. SA_RESTART: a thread blocked
        // on a response keeps waiting for it (every read has a timeout), and
        // the loops see STOP between requests.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

// ---------------------------------------------------------------------------
// Floor mode
// ---------------------------------------------------------------------------

#[derive(Default)]
struct ServerStats {
    connections: AtomicU64,
    requests: AtomicU64,
    /// Request body bytes, as received.
    bytes: AtomicU64,
    /// LogRecords decoded (only with --decode).
    records: AtomicU64,
    /// Requests answered with something other than 200.
    bad_requests: AtomicU64,
    /// CLOCK_MONOTONIC of the first request's head and of the last response
    /// written (0 = none yet).
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

fn run_floor(config: &ServeConfig) -> i32 {
    // SIGINT/SIGTERM are blocked in every thread and taken by sigwait in
    // this one, which then prints the totals and exits.
    // SAFETY: sigset_t is plain old data, initialised by sigemptyset; the
    // mask is set before any other thread exists, so all inherit it.
    let signals = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let listener = match resolve(&config.bind, "--serve").and_then(|addr| {
        TcpListener::bind(addr).map_err(|error| format!("cannot listen on {addr}: {error}"))
    }) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("otlp_sender: error: {message}");
            return 1;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound listener has a local address");
    println!("ready {local}");
    // The runner waits for the ready line on a pipe.
    let _ = io::stdout().flush();

    let stats = Arc::new(ServerStats::default());
    let decode = config.decode;
    let max_body_bytes = config.max_body_bytes;
    {
        let stats = Arc::clone(&stats);
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    let stats = Arc::clone(&stats);
                    let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
                        // A connection that fails (reset, timeout) just ends.
                        let _ = serve_connection(stream, decode, max_body_bytes, &stats);
                    });
                    if let Err(error) = spawned {
                        eprintln!("otlp_sender: cannot start a connection thread: {error}");
                    }
                }
            })
            .expect("spawning the accept thread");
    }

    let mut signal = 0;
    // SAFETY: `signals` is an initialised set; `signal` a valid out pointer.
    unsafe { libc::sigwait(&signals, &mut signal) };
    let first = stats.first_ns.load(Ordering::Relaxed);
    let last = stats.last_ns.load(Ordering::Relaxed);
    let elapsed_s = if first > 0 && last > first {
        (last - first) as f64 / NANOS_PER_SECOND as f64
    } else {
        0.0
    };
    println!(
        "{{\"mode\":\"{mode}\",\"bind\":\"{local}\",\"connections\":{},\"requests\":{},\
         \"bytes\":{},\"records\":{},\"bad_requests\":{},\"elapsed_s\":{elapsed_s:.6},\
         \"cpu_s\":{:.3}}}",
        stats.connections.load(Ordering::Relaxed),
        stats.requests.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed),
        stats.records.load(Ordering::Relaxed),
        stats.bad_requests.load(Ordering::Relaxed),
        cpu_seconds(),
        mode = if decode { "decode_floor" } else { "floor" },
    );
    let _ = io::stdout().flush();
    0
}

/// The parts of a request header the floor acts on.
struct RequestHead {
    head_len: usize,
    is_post_logs: bool,
    content_length: Option<usize>,
    chunked: bool,
    gzip: bool,
    close: bool,
}

fn parse_request_head(bytes: &[u8]) -> Result<Option<RequestHead>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(bytes)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let mut head = RequestHead {
        head_len,
        is_post_logs: parsed.method == Some("POST") && parsed.path == Some("/v1/logs"),
        content_length: None,
        chunked: false,
        gzip: false,
        close: parsed.version == Some(0),
    };
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| httparse::Error::HeaderValue)?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if header.name.eq_ignore_ascii_case("content-encoding") {
            head.gzip = value.eq_ignore_ascii_case("gzip");
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                head.close = true;
            } else if value.contains("keep-alive") {
                head.close = false;
            }
        }
    }
    Ok(Some(head))
}

fn error_response(status: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Answers requests on one connection until the client closes it. Errors
/// end the connection.
fn serve_connection(
    stream: TcpStream,
    decode: bool,
    max_body_bytes: usize,
    stats: &ServerStats,
) -> io::Result<()> {
    let mut conn = Conn::new(stream, DEFAULT_TIMEOUT_NS)?;
    // Idle keep-alive connections may wait for the next request forever.
    conn.stream.set_read_timeout(None)?;
    let mut inflated = Vec::new();
    loop {
        let head = loop {
            match parse_request_head(&conn.buf[conn.start..conn.end]) {
                Ok(Some(head)) => break head,
                Ok(None) if conn.buffered() > MAX_HEADER_BYTES => {
                    stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    return conn
                        .stream
                        .write_all(&error_response("431 Request Header Fields Too Large"));
                }
                Ok(None) => {
                    if conn.read_more()? == 0 {
                        return Ok(());
                    }
                }
                Err(_) => {
                    stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    return conn.stream.write_all(&error_response("400 Bad Request"));
                }
            }
        };
        let now = monotonic_ns();
        let _ = stats
            .first_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        let Some(length) = head.content_length.filter(|_| !head.chunked) else {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return conn
                .stream
                .write_all(&error_response("411 Length Required"));
        };
        if length > max_body_bytes {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return conn
                .stream
                .write_all(&error_response("413 Content Too Large"));
        }
        conn.start += head.head_len;
        // The whole body, in one contiguous buffer.
        conn.fill(length)?;
        let body = &conn.buf[conn.start..conn.start + length];
        let answer: &[u8] = if !head.is_post_logs {
            NOT_FOUND
        } else if decode {
            match decode_records(body, head.gzip, max_body_bytes, &mut inflated) {
                Some(records) => {
                    stats.records.fetch_add(records, Ordering::Relaxed);
                    FLOOR_OK
                }
                None => BAD_REQUEST,
            }
        } else {
            FLOOR_OK
        };
        conn.start += length;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(length as u64, Ordering::Relaxed);
        if !std::ptr::eq(answer, FLOOR_OK) {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        }
        conn.stream.write_all(answer)?;
        stats.last_ns.store(monotonic_ns(), Ordering::Relaxed);
        if head.close {
            return Ok(());
        }
    }
}

/// Gunzips (if `gzip`) and decodes one body; the number of LogRecords, or
/// None if it is not a valid (or too large) ExportLogsServiceRequest.
fn decode_records(
    body: &[u8],
    gzip: bool,
    max_body_bytes: usize,
    inflated: &mut Vec<u8>,
) -> Option<u64> {
    let bytes = if gzip {
        inflated.clear();
        flate2::read::GzDecoder::new(body)
            .take(max_body_bytes as u64 + 1)
            .read_to_end(inflated)
            .ok()?;
        if inflated.len() > max_body_bytes {
            return None;
        }
        &inflated[..]
    } else {
        body
    };
    let request = ExportLogsServiceRequest::decode(bytes).ok()?;
    Some(
        request
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .map(|scope| scope.log_records.len() as u64)
            .sum(),
    )
}
