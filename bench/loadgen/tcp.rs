//! TCP: `loadgen tcp send`, the load generator for ringway's `tcp:` input,
//! and `loadgen tcp floor`, the machine's floor for the same traffic.
//!
//! **send** builds one buffer of NDJSON lines once at start-up (`--buffer`,
//! default 8 MiB, of lines of about 220 B: a timestamp, level, host,
//! service, trace id, a message with `\"` and `\\` escapes and raw UTF-8,
//! latency, status, user; valid JSON), or takes the lines of `--lines-file
//! FILE`. The buffer is cut into line-aligned chunks of about `--chunk` (64
//! KiB). Then `--connections` threads each open one TCP connection (all are
//! open before the clock starts) and write chunks as fast as the receiver
//! takes them, cycling through the buffer, until `--duration` (10s) passes
//! or `--bytes` in total were sent (split evenly over the connections), or
//! SIGINT/SIGTERM. Only whole lines are sent, so a receiver can count
//! exactly the `lines` and `bytes` reported. Each connection then shuts
//! down its write side and waits (up to 60 s) for the receiver to close:
//! `elapsed_s` runs from every connection open to the last one closed by
//! the receiver. One JSON line goes to stdout: `{"connections", "bytes",
//! "lines", "elapsed_s", "send_s", "mb_per_s", "lines_per_s",
//! "avg_line_bytes", "cpu_s", "unclosed"}`.
//!
//! **floor** is a bare TCP sink, one thread per connection, each reading
//! into a 256 KiB buffer and discarding it. It prints `ready ADDR:PORT`
//! once bound, and on SIGINT/SIGTERM one JSON line, then exits 0:
//! `{"mode":"floor", "bind", "connections", "bytes", "lines", "elapsed_s",
//! "cpu_s"}` (`lines` with `--count-lines`).
//!
//! With `--tls-ca FILE`, send speaks TLS (rustls, as ringway's `tcp:…,tls`
//! input does), each handshake done before the clock starts; with
//! `--tls-cert`/`--tls-key`, floor serves TLS: the floor for decrypting the
//! same traffic.
//!
//! Types: `SendArgs`/`FloorArgs` (flags), `Data` (the line-aligned chunks),
//! `Sent` (one connection's counts), `FloorStats`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::common::{
    Rng, address, block_stop_signals, count, cpu_seconds, duration, install_stop_handlers, size,
    stopped, wait_for_stop,
};
use crate::tls::{self, Stream};

#[derive(Args)]
pub(crate) struct SendArgs {
    /// Where to connect.
    #[arg(long, value_name = "ADDR:PORT", value_parser = address)]
    target: SocketAddr,
    /// Concurrent connections, one thread each.
    #[arg(long, value_name = "N", default_value = "4",
          value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Run this long (10s, 500ms, 1m) [10s unless --bytes].
    #[arg(long, value_name = "D", value_parser = duration)]
    duration: Option<Duration>,
    /// Stop after this many bytes in total (k/M/G = 1e3.., KiB/MiB/GiB).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    bytes: Option<usize>,
    /// Send the lines of FILE instead of generated NDJSON.
    #[arg(long, value_name = "FILE")]
    lines_file: Option<String>,
    /// Generated data per cycle.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "8MiB")]
    buffer: usize,
    /// Bytes per write(2), rounded up to whole lines.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "64KiB")]
    chunk: usize,
    /// Generator seed.
    #[arg(long, value_name = "N", value_parser = count, default_value = "1")]
    seed: u64,
    /// Speak TLS, trusting the CA certificates in FILE (PEM); every
    /// handshake is done before the clock starts.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate is checked against, with --tls-ca.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    server_name: String,
}

#[derive(Args)]
pub(crate) struct FloorArgs {
    /// Address to listen on (port 0: any free port, printed in the `ready` line).
    #[arg(long, value_name = "ADDR:PORT", value_parser = address, default_value = "127.0.0.1:0")]
    serve: SocketAddr,
    /// Also count newlines (memchr).
    #[arg(long)]
    count_lines: bool,
    /// Serve TLS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// `loadgen tcp send`.
pub(crate) fn send(args: &SendArgs) -> i32 {
    if args.duration.is_some_and(|d| d.is_zero()) || args.bytes == Some(0) {
        return crate::usage_error("--duration and --bytes must be positive");
    }
    if args.chunk == 0 {
        return crate::usage_error("--chunk must be at least 1 byte");
    }
    run_sender(args)
}

/// `loadgen tcp floor`.
pub(crate) fn floor(args: &FloorArgs) -> i32 {
    run_floor(args)
}

// ---------------------------------------------------------------------------
// The data

/// One NDJSON line of about 220 bytes, newline included.
fn ndjson_line(i: u64, rng: &mut Rng, out: &mut Vec<u8>) {
    const LEVELS: &[&str] = &["debug", "info", "info", "info", "warn", "error"];
    const SERVICES: &[&str] = &["checkout", "search", "auth", "billing", "inventory"];
    const USERS: &[&str] = &["anna", "björn", "chloé", "dmitri", "eiji", "Zoë"];
    const PATHS: &[&str] = &["/api/cart", "/api/search?q=x", "/login", "/v2/items/42"];
    let start = out.len();
    let _ = write!(
        out,
        r#"{{"ts":"2026-11-29T{:02}:{:02}:{:02}.{:03}Z","level":"{}","host":"web-{:02}","service":"{}","trace_id":"{:016x}","msg":"GET {} by \"{}\" took C:\\tmp {}ms","latency_ms":{}.{},"status":{},"user":"{}","pad":""#,
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60,
        i % 1000,
        rng.pick(LEVELS),
        rng.below(64),
        rng.pick(SERVICES),
        rng.next(),
        rng.pick(PATHS),
        rng.pick(USERS),
        rng.below(900),
        rng.below(900),
        rng.below(10),
        [200, 200, 200, 201, 304, 404, 500][rng.below(7) as usize],
        rng.pick(USERS),
    );
    // Pad to 185–225 bytes (the fields alone may be longer).
    let want = 185 + rng.below(41) as usize;
    while out.len() - start + 3 < want {
        out.push(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize]);
    }
    out.extend_from_slice(b"\"}\n");
}

/// Line-aligned chunks of about `chunk` bytes, with their line counts.
struct Data {
    bytes: Vec<u8>,
    /// (start, end, lines)
    chunks: Vec<(usize, usize, u64)>,
}

fn prepare(config: &SendArgs) -> Result<Data, String> {
    let mut bytes = match &config.lines_file {
        Some(path) => std::fs::read(path).map_err(|e| format!("--lines-file {path}: {e}"))?,
        None => {
            let mut rng = Rng::new(config.seed);
            let mut out = Vec::with_capacity(config.buffer + 512);
            let mut i = 0;
            while out.len() < config.buffer {
                ndjson_line(i, &mut rng, &mut out);
                i += 1;
            }
            out
        }
    };
    if bytes.is_empty() {
        return Err("no data to send".into());
    }
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + config.chunk).min(bytes.len());
        // Extend to the end of the line the chunk cuts.
        end = match memchr::memchr(b'\n', &bytes[end - 1..]) {
            Some(at) => end + at,
            None => bytes.len(),
        };
        let lines = memchr::memchr_iter(b'\n', &bytes[start..end]).count() as u64;
        chunks.push((start, end, lines));
        start = end;
    }
    Ok(Data { bytes, chunks })
}

// ---------------------------------------------------------------------------
// send

#[derive(Default)]
struct Sent {
    bytes: u64,
    lines: u64,
    closed_by_peer: bool,
}

fn run_sender(config: &SendArgs) -> i32 {
    install_stop_handlers(true);
    let data = match prepare(config) {
        Ok(data) => data,
        Err(message) => {
            eprintln!("loadgen tcp send: error: {message}");
            return 1;
        }
    };
    let tls = match config.tls_ca.as_deref().map(tls::client_config).transpose() {
        Ok(tls) => tls,
        Err(message) => {
            eprintln!("loadgen tcp send: error: --tls-ca {message}");
            return 2;
        }
    };
    let mut streams = Vec::new();
    for _ in 0..config.connections {
        let stream = TcpStream::connect(config.target).and_then(|socket| match &tls {
            None => Ok(Stream::Plain(socket)),
            Some(tls) => Stream::client(socket, tls, &config.server_name),
        });
        match stream {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                eprintln!("loadgen tcp send: error: connect {}: {e}", config.target);
                return 1;
            }
        }
    }
    let connections = usize::from(config.connections);
    // Without --bytes or --duration, 10 s.
    let duration = match (config.duration, config.bytes) {
        (None, None) => Some(Duration::from_secs(10)),
        (duration, _) => duration,
    };
    let budget = config
        .bytes
        .map(|b| (b as u64).div_ceil(connections as u64));
    let barrier = Barrier::new(connections + 1);
    let failed = AtomicBool::new(false);
    let last_write_ns = AtomicU64::new(0);
    let start_cell = std::sync::OnceLock::new();
    let results: Vec<Sent> = thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(index, mut stream)| {
                let data = &data;
                let barrier = &barrier;
                let failed = &failed;
                let last_write_ns = &last_write_ns;
                let start_cell = &start_cell;
                scope.spawn(move || {
                    barrier.wait();
                    let start: Instant = *start_cell.get().expect("set before the barrier");
                    let deadline = duration.map(|d| start + d);
                    let mut sent = Sent::default();
                    let mut next = index * data.chunks.len() / connections;
                    loop {
                        if stopped()
                            || deadline.is_some_and(|d| Instant::now() >= d)
                            || budget.is_some_and(|b| sent.bytes >= b)
                        {
                            break;
                        }
                        let (from, to, lines) = data.chunks[next];
                        if let Err(e) = stream.write_all(&data.bytes[from..to]) {
                            eprintln!("loadgen tcp send: error: connection {index}: write: {e}");
                            failed.store(true, Ordering::SeqCst);
                            break;
                        }
                        sent.bytes += (to - from) as u64;
                        sent.lines += lines;
                        next = (next + 1) % data.chunks.len();
                    }
                    last_write_ns.fetch_max(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
                    // Wait for the receiver to have read everything: it
                    // closes once it has read our end of stream.
                    stream.shutdown_write();
                    let _ = stream
                        .socket()
                        .set_read_timeout(Some(Duration::from_secs(60)));
                    let mut buf = [0u8; 4096];
                    sent.closed_by_peer = loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break true,
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            // A TLS peer that closes without close_notify.
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                                ) =>
                            {
                                break true;
                            }
                            Err(_) => break false,
                        }
                    };
                    sent
                })
            })
            .collect();
        start_cell.set(Instant::now()).expect("set once");
        barrier.wait();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start_cell.get().expect("set").elapsed().as_secs_f64();
    let bytes: u64 = results.iter().map(|r| r.bytes).sum();
    let lines: u64 = results.iter().map(|r| r.lines).sum();
    let unclosed = results.iter().filter(|r| !r.closed_by_peer).count();
    println!(
        "{{\"connections\":{},\"bytes\":{bytes},\"lines\":{lines},\"elapsed_s\":{elapsed:.6},\
         \"send_s\":{:.6},\"mb_per_s\":{:.3},\"lines_per_s\":{:.1},\"avg_line_bytes\":{:.1},\
         \"cpu_s\":{:.3},\"unclosed\":{unclosed}}}",
        connections,
        last_write_ns.load(Ordering::SeqCst) as f64 / 1e9,
        bytes as f64 / 1e6 / elapsed,
        lines as f64 / elapsed,
        bytes as f64 / lines.max(1) as f64,
        cpu_seconds(),
    );
    let _ = io::stdout().flush();
    if failed.load(Ordering::SeqCst) { 1 } else { 0 }
}

// ---------------------------------------------------------------------------
// Floor mode

#[derive(Default)]
struct FloorStats {
    connections: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

fn run_floor(config: &FloorArgs) -> i32 {
    // SIGINT/SIGTERM are blocked in every thread and taken by sigwait here.
    let signals = block_stop_signals();
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => match tls::server_config(cert, key) {
            Ok(tls) => Some(tls),
            Err(message) => {
                eprintln!("loadgen tcp floor: error: TLS: {message}");
                return 2;
            }
        },
        _ => None,
    };
    let listener = match TcpListener::bind(config.serve) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "loadgen tcp floor: error: cannot listen on {}: {e}",
                config.serve
            );
            return 1;
        }
    };
    let local = listener.local_addr().expect("bound");
    crate::common::print_ready(local);
    let stats = Arc::new(FloorStats::default());
    let epoch = Instant::now();
    let count_lines = config.count_lines;
    {
        let stats = Arc::clone(&stats);
        thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { continue };
                let stream = match &tls {
                    None => Ok(Stream::Plain(socket)),
                    Some(tls) => Stream::server(socket, tls),
                };
                let Ok(mut stream) = stream else { continue };
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let stats = Arc::clone(&stats);
                thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                let now = epoch.elapsed().as_nanos() as u64 + 1;
                                let _ = stats.first_ns.compare_exchange(
                                    0,
                                    now,
                                    Ordering::Relaxed,
                                    Ordering::Relaxed,
                                );
                                stats.last_ns.fetch_max(now, Ordering::Relaxed);
                                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                                if count_lines {
                                    let lines = memchr::memchr_iter(b'\n', &buf[..n]).count();
                                    stats.lines.fetch_add(lines as u64, Ordering::Relaxed);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                    // Dropping the stream closes it: the sender sees the end.
                });
            }
        });
    }
    wait_for_stop(&signals);
    let first = stats.first_ns.load(Ordering::Relaxed);
    let last = stats.last_ns.load(Ordering::Relaxed);
    let elapsed = if first > 0 && last > first {
        (last - first) as f64 / 1e9
    } else {
        0.0
    };
    println!(
        "{{\"mode\":\"floor\",\"bind\":\"{local}\",\"connections\":{},\"bytes\":{},\"lines\":{},\
         \"elapsed_s\":{elapsed:.6},\"cpu_s\":{:.3}}}",
        stats.connections.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed),
        stats.lines.load(Ordering::Relaxed),
        cpu_seconds(),
    );
    let _ = io::stdout().flush();
    0
}
