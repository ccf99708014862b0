//! OTLP/HTTP: `loadgen otlp send`, the load generator for ringway's `otlp:`
//! input, and `loadgen otlp floor`, the machine's floor for the same traffic.
//!
//! **send** builds `--variants` (4) `ExportLogsServiceRequest` protobufs once
//! at start-up, each with `--records-per-request` (512) LogRecords of
//! realistic shape (one resource with service.name/service.version/
//! host.name, one scope; per record a 150–200 byte body of varied text, a
//! severity, 3–4 attributes, trace and span ids on ~90 % of them). With
//! `--gzip` each body is compressed once, up front. Then `--connections`
//! threads each post `POST /v1/logs` with one request in flight through
//! ringway's own HTTP client (`bench_api::Client`, the one the `http` and
//! `otlp` outputs use: keep-alive, every response read in full), cycling
//! through the variants, for `--duration` or until `--requests` requests
//! were answered, or SIGINT/SIGTERM (requests in flight are finished).
//!
//! A 429 or 503 is counted and the *same* request is sent again after the
//! response's `Retry-After` (1 s when it has none; never past the end of the
//! run). Any other non-2xx status is counted by code and the next request
//! goes out. A connection the server closed before answering is reopened
//! and the request sent again (`reconnects`). At the end one JSON line goes
//! to stdout: `{"requests_ok", "records_ok", "bytes_ok", "raw_bytes_ok",
//! "status_429", "status_503", "other_status", "retries", "retry_wait_s",
//! "reconnects", "elapsed_s", "records_per_s", "mb_per_s",
//! "latency_ms_p50", "latency_ms_p99", "latency_ms_max", "cpu_s", …}`.
//!
//! **floor** is a bare HTTP/1.1 sink, one thread per connection: it parses
//! each request head with ringway's OTLP receiver parser
//! (`bench_api::parse_head`), reads the Content-Length body into one
//! contiguous buffer (as a real receiver must) and answers `200` with an
//! empty `application/x-protobuf` body, without looking at the body. With
//! `--decode` it also gunzips and prost-decodes every body and counts its
//! LogRecords: the floor for receiving *and* decoding. It prints `ready
//! ADDR:PORT` once bound and, on SIGINT/SIGTERM, `{"mode", "bind",
//! "connections", "requests", "bytes", "records", "bad_requests",
//! "elapsed_s", "cpu_s"}`. With `--tls-cert`/`--tls-key` it serves HTTPS
//! (rustls, as ringway's `otlp:…,tls` input).
//!
//! Types: `SendArgs`/`FloorArgs` (flags), `Prepared` (one pre-built
//! request body), `Totals` (one sender thread's counts), `Shared`,
//! `ServerStats`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use ringway::bench_api::{BodyLength, Client, Endpoint, HeadResult, parse_head};

use crate::tls::Stream;

use crate::common::{
    NANOS_PER_SECOND, Rng, STOP, block_stop_signals, count, count_usize, cpu_seconds, duration,
    install_stop_handlers, monotonic_ns, size, stopped, wait_for_stop,
};

const MAX_CONNECTIONS: usize = 1024;
const MAX_RECORDS_PER_REQUEST: usize = 1_000_000;
const MAX_VARIANTS: usize = 64;
/// Retry-After used when a 429/503 has none (or one that does not parse).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Reopen a connection the server closed before answering at most this many
/// times in a row for one request.
const MAX_RECONNECTS_IN_A_ROW: u32 = 3;
/// Request heads larger than this get 431 from the floor (ringway's limit is
/// 16 KiB; `parse_head` answers that itself).
const MAX_HEADER_BYTES: usize = 64 << 10;
/// Receive buffer of a floor connection; grown to hold a whole request body.
const INITIAL_BUFFER_BYTES: usize = 64 << 10;
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

#[derive(Args)]
pub(crate) struct SendArgs {
    /// Where to POST (e.g. 127.0.0.1:4318); optional with --dump.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// Request path.
    #[arg(long, default_value = "/v1/logs", value_parser = request_path)]
    path: String,
    /// Keep-alive connections, one thread and one request in flight each (max 1024).
    #[arg(long, value_name = "N", value_parser = count_usize, default_value = "4")]
    connections: usize,
    /// Stop sending after D (250ms, 10s, 2m or seconds) [10s, or none when
    /// --requests is given].
    #[arg(long, value_name = "D", value_parser = duration)]
    duration: Option<Duration>,
    /// Stop after N requests were answered (k/M suffixes); 429/503 resends do
    /// not count; 0 = no limit.
    #[arg(long, value_name = "N", value_parser = count, default_value = "0")]
    requests: u64,
    /// LogRecords per request.
    #[arg(long, value_name = "N", value_parser = count_usize, default_value = "512")]
    records_per_request: usize,
    /// Distinct pre-built requests, used in turn, so bodies differ between
    /// requests (max 64).
    #[arg(long, value_name = "N", value_parser = count_usize, default_value = "4")]
    variants: usize,
    /// Send gzip-compressed bodies (Content-Encoding: gzip), compressed once
    /// at start-up.
    #[arg(long)]
    gzip: bool,
    /// Seed for the generated records.
    #[arg(long, value_name = "N", value_parser = count, default_value = "1")]
    seed: u64,
    /// Longest wait to connect, or for a response.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "30s")]
    timeout: Duration,
    /// Write the first request's body (as it would be sent; OTLP/JSON instead
    /// if PATH ends in .json) and exit.
    #[arg(long, value_name = "PATH")]
    dump: Option<String>,
    /// Speak HTTPS (ringway's own TLS client), trusting the CA certificates
    /// in FILE (PEM); each connection's handshake is inside the timed run.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate is checked against, with --tls-ca.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "localhost",
        requires = "tls_ca"
    )]
    server_name: String,
}

#[derive(Args)]
pub(crate) struct FloorArgs {
    /// Address to listen on (port 0: any free port, printed in the `ready` line).
    #[arg(long, value_name = "ADDR:PORT", value_parser = crate::common::address,
          default_value = "127.0.0.1:0")]
    serve: SocketAddr,
    /// Also gunzip and prost-decode every body (a decode floor).
    #[arg(long)]
    decode: bool,
    /// Bodies above this get 413 and a close.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "64MiB")]
    max_body: usize,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn request_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("expected an absolute path such as /v1/logs".into());
    }
    Ok(path.to_string())
}

/// The checked send flags.
struct SendConfig {
    /// As given, for the endpoint and the report.
    target: String,
    host: String,
    port: u16,
    path: String,
    connections: usize,
    /// None = no time limit.
    duration: Option<Duration>,
    /// 0 = no limit.
    requests: u64,
    records_per_request: usize,
    variants: usize,
    gzip: bool,
    seed: u64,
    timeout: Duration,
    /// Some((CA file, server name)): HTTPS.
    tls: Option<(std::path::PathBuf, String)>,
}

impl SendArgs {
    fn config(&self) -> Result<SendConfig, String> {
        let target = match (&self.target, &self.dump) {
            (Some(target), _) => target.clone(),
            (None, Some(_)) => "127.0.0.1:4318".to_string(),
            (None, None) => return Err("give --target HOST:PORT (or --dump PATH)".into()),
        };
        let (host, port) = target
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("--target {target}: expected HOST:PORT, e.g. 127.0.0.1:4318"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        if !(1..=MAX_RECORDS_PER_REQUEST).contains(&self.records_per_request) {
            return Err(format!(
                "--records-per-request must be 1..={MAX_RECORDS_PER_REQUEST}"
            ));
        }
        if !(1..=MAX_VARIANTS).contains(&self.variants) {
            return Err(format!("--variants must be 1..={MAX_VARIANTS}"));
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be above 0".into());
        }
        let duration = match self.duration {
            Some(duration) => Some(duration).filter(|d| !d.is_zero()),
            None if self.requests > 0 => None,
            None => Some(Duration::from_secs(10)),
        };
        if duration.is_none() && self.requests == 0 {
            return Err("--duration 0 needs --requests N (or the run would never end)".into());
        }
        Ok(SendConfig {
            target,
            host,
            port,
            path: self.path.clone(),
            connections: self.connections,
            duration,
            requests: self.requests,
            records_per_request: self.records_per_request,
            variants: self.variants,
            gzip: self.gzip,
            seed: self.seed,
            timeout: self.timeout,
            tls: self.tls_ca.clone().map(|ca| (ca, self.server_name.clone())),
        })
    }
}

/// `loadgen otlp send`.
pub(crate) fn send(args: &SendArgs) -> i32 {
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => return crate::usage_error(&message),
    };
    match &args.dump {
        Some(path) => dump(&config, path),
        None => run_sender(&config),
    }
}

/// `loadgen otlp floor`.
pub(crate) fn floor(args: &FloorArgs) -> i32 {
    if args.max_body == 0 {
        return crate::usage_error("--max-body must be above 0");
    }
    run_floor(args)
}

// ---------------------------------------------------------------------------
// The workload: pre-built requests
// ---------------------------------------------------------------------------

/// One pre-built request body.
struct Prepared {
    /// As sent (compressed with --gzip).
    body: Vec<u8>,
    /// Body bytes before compression.
    raw_body_bytes: u64,
    records: u64,
}

impl Rng {
    pub(crate) fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    pub(crate) fn hex(&mut self, digits: usize) -> String {
        let mut text = String::with_capacity(digits);
        while text.len() < digits {
            text.push_str(&format!("{:016x}", self.next()));
        }
        text.truncate(digits);
        text
    }

    pub(crate) fn ipv4(&mut self) -> String {
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
    let mut rng = Rng::new(seed ^ (variant as u64).wrapping_mul(0xa076_1d64_78bd_642f));
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
            Ok(Prepared {
                body,
                raw_body_bytes: raw.len() as u64,
                records: config.records_per_request as u64,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// send
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
    endpoint: Endpoint,
    gzip: bool,
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
        stopped() || self.deadline.is_some_and(|end| Instant::now() >= end)
    }

    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
        STOP.store(true, Ordering::Relaxed);
    }
}

fn run_sender(config: &SendConfig) -> i32 {
    install_stop_handlers(true);
    let requests = match prepare(config) {
        Ok(requests) => requests,
        Err(message) => {
            eprintln!("loadgen otlp send: error: {message}");
            return 1;
        }
    };
    let mean = |f: fn(&Prepared) -> u64| {
        requests.iter().map(f).sum::<u64>() as f64 / requests.len() as f64
    };
    eprintln!(
        "loadgen otlp send: {} variants of {} records, body {:.0} B on average ({:.0} B before gzip){}; \
         {} connections to {}{}",
        requests.len(),
        config.records_per_request,
        mean(|p| p.body.len() as u64),
        mean(|p| p.raw_body_bytes),
        if config.gzip { ", gzip" } else { "" },
        config.connections,
        config.target,
        if config.tls.is_some() {
            " over HTTPS"
        } else {
            ""
        },
    );
    // ringway's client connects on a connection's first request, inside the
    // timed run: one loopback connect per connection (tens of microseconds).
    // A refused connect fails the run (exit 1), as does any error other
    // than the server closing an idle connection.
    let endpoint = Endpoint::new(&config.host, config.port, &config.path, config.timeout);
    let endpoint = match &config.tls {
        Some((ca, server_name)) => match endpoint.with_tls_ca(ca, server_name) {
            Ok(endpoint) => endpoint,
            Err(message) => {
                eprintln!("loadgen otlp send: error: {message}");
                return 1;
            }
        },
        None => endpoint,
    };

    let cpu_start_s = cpu_seconds();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        requests,
        endpoint,
        gzip: config.gzip,
        deadline: config.duration.map(|duration| start + duration),
        request_limit: config.requests,
        claimed: AtomicU64::new(0),
        failure: Mutex::new(None),
    });
    let workers: Vec<_> = (0..config.connections)
        .map(|index| {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("sender-{index}"))
                .spawn(move || sender_thread(index, &shared))
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
            eprintln!("loadgen otlp send: error: {message}");
            1
        }
        None => 0,
    }
}

/// Sends requests on one connection until the run ends; a fatal error is
/// handed to `shared.fail` (which stops every thread).
fn sender_thread(index: usize, shared: &Shared) -> Totals {
    let mut totals = Totals::default();
    let mut client = Client::new();
    let mut next_variant = index % shared.requests.len();
    while !shared.should_stop() {
        if shared.request_limit > 0
            && shared.claimed.fetch_add(1, Ordering::Relaxed) >= shared.request_limit
        {
            break;
        }
        let request = &shared.requests[next_variant];
        next_variant = (next_variant + 1) % shared.requests.len();
        if let Err(message) = send_one(request, &mut client, shared, &mut totals) {
            shared.fail(format!("connection {index}: {message}"));
            break;
        }
    }
    totals
}

/// Whether a failed POST means the server closed the connection before
/// answering (an idle keep-alive connection it dropped): worth one resend
/// on a new connection. Anything else (a timeout, a malformed response) is
/// fatal.
fn closed_before_answer(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// Sends one request until it gets a final answer: resends after 429/503
/// (honouring Retry-After) and after the server closed an idle connection.
/// Returns Ok also when the run ends during a Retry-After wait.
fn send_one(
    request: &Prepared,
    client: &mut Client,
    shared: &Shared,
    totals: &mut Totals,
) -> Result<(), String> {
    let mut reconnects_in_a_row = 0;
    loop {
        let sent_at = Instant::now();
        let response = match client.post(&shared.endpoint, PROTOBUF, shared.gzip, &request.body) {
            Ok(response) => response,
            Err(error) if closed_before_answer(&error) => {
                reconnects_in_a_row += 1;
                if reconnects_in_a_row > MAX_RECONNECTS_IN_A_ROW {
                    return Err(format!(
                        "the server closed the connection without answering, \
                         {MAX_RECONNECTS_IN_A_ROW} times in a row ({error})"
                    ));
                }
                totals.reconnects += 1;
                continue;
            }
            Err(error) => {
                return Err(match error.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        "timed out waiting for the server".to_string()
                    }
                    _ => error.to_string(),
                });
            }
        };
        let latency = sent_at.elapsed();
        match response.status {
            200..=299 => {
                totals.requests_ok += 1;
                totals.records_ok += request.records;
                totals.bytes_ok += request.body.len() as u64;
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
                let wait = response.retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                let waited_from = Instant::now();
                let slept = sleep_unless_stopped(wait, shared);
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

/// `--dump PATH`: the first request's body as sent (protobuf, gzipped with
/// --gzip), or OTLP/JSON when PATH ends in `.json`.
fn dump(config: &SendConfig, path: &str) -> i32 {
    let bytes = if path.ends_with(".json") {
        let request = build_request(config.seed, 0, config.records_per_request);
        match serde_json::to_vec(&request) {
            Ok(json) => json,
            Err(error) => {
                eprintln!("loadgen otlp send: error: cannot encode OTLP/JSON: {error}");
                return 1;
            }
        }
    } else {
        match prepare(config) {
            Ok(mut requests) => requests.swap_remove(0).body,
            Err(message) => {
                eprintln!("loadgen otlp send: error: {message}");
                return 1;
            }
        }
    };
    match std::fs::write(path, &bytes) {
        Ok(()) => {
            eprintln!("loadgen otlp send: wrote {} bytes to {path}", bytes.len());
            0
        }
        Err(error) => {
            eprintln!("loadgen otlp send: error: cannot write {path}: {error}");
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

// ---------------------------------------------------------------------------
// floor
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

fn run_floor(config: &FloorArgs) -> i32 {
    // SIGINT/SIGTERM are blocked in every thread and taken by sigwait in
    // this one, which then prints the totals and exits.
    let signals = block_stop_signals();
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => match crate::tls::server_config(cert, key) {
            Ok(tls) => Some(tls),
            Err(message) => {
                eprintln!("loadgen otlp floor: error: TLS: {message}");
                return 2;
            }
        },
        _ => None,
    };
    let listener = match TcpListener::bind(config.serve) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "loadgen otlp floor: error: cannot listen on {}: {error}",
                config.serve
            );
            return 1;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound listener has a local address");
    crate::common::print_ready(local);

    let stats = Arc::new(ServerStats::default());
    let decode = config.decode;
    let max_body_bytes = config.max_body;
    {
        let stats = Arc::clone(&stats);
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || {
                for socket in listener.incoming() {
                    let Ok(socket) = socket else { continue };
                    let _ = socket.set_nodelay(true);
                    let stream = match &tls {
                        None => Ok(Stream::Plain(socket)),
                        Some(tls) => Stream::server(socket, tls),
                    };
                    let Ok(stream) = stream else { continue };
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    let stats = Arc::clone(&stats);
                    let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
                        // A connection that fails (reset, timeout) just ends.
                        let _ = serve_connection(stream, decode, max_body_bytes, &stats);
                    });
                    if let Err(error) = spawned {
                        eprintln!("loadgen otlp floor: cannot start a connection thread: {error}");
                    }
                }
            })
            .expect("spawning the accept thread");
    }

    wait_for_stop(&signals);
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

fn error_response(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A floor connection's receive buffer: unconsumed bytes are
/// `buf[start..end]`; it grows to hold a whole request body.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
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
}

/// Answers requests on one connection until the client closes it. Errors
/// end the connection.
fn serve_connection(
    stream: Stream,
    decode: bool,
    max_body_bytes: usize,
    stats: &ServerStats,
) -> io::Result<()> {
    let mut conn = Conn {
        stream,
        buf: vec![0; INITIAL_BUFFER_BYTES],
        start: 0,
        end: 0,
    };
    let mut inflated = Vec::new();
    loop {
        let head = loop {
            match parse_head(&conn.buf[conn.start..conn.end]) {
                HeadResult::Complete(head) => break head,
                HeadResult::Partial if conn.buffered() > MAX_HEADER_BYTES => {
                    stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    return conn.stream.write_all(&error_response(431));
                }
                HeadResult::Partial => {
                    if conn.read_more()? == 0 {
                        return Ok(());
                    }
                }
                HeadResult::Invalid(status) => {
                    stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    return conn.stream.write_all(&error_response(status));
                }
            }
        };
        let now = monotonic_ns();
        let _ = stats
            .first_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        if head.malformed {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return conn.stream.write_all(&error_response(400));
        }
        let BodyLength::Fixed(length) = head.length else {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return conn.stream.write_all(&error_response(411));
        };
        if length > max_body_bytes {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return conn.stream.write_all(&error_response(413));
        }
        conn.start += head.len;
        // The whole body, in one contiguous buffer.
        conn.fill(length)?;
        let body = &conn.buf[conn.start..conn.start + length];
        let answer: &[u8] = if !(head.is_post && head.logs_path) {
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
        if !head.keep_alive {
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
