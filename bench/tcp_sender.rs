//! TCP load generator for ringway's `tcp:` input, and the machine's floor
//! for the same traffic.
//!
//! **Send mode** (`--target ADDR:PORT`): builds one buffer of NDJSON lines
//! once at start-up (`--buffer`, default 8 MiB, of lines of about 220 B: a
//! timestamp, level, host, service, trace id, a message with `\"` and `\\`
//! escapes and raw UTF-8, latency, status, user; valid JSON), or takes the
//! lines of `--lines-file FILE`. The buffer is cut into line-aligned chunks
//! of about `--chunk` (64 KiB). Then `--connections` threads each open one
//! TCP connection (all are open before the clock starts) and write chunks
//! with write(2) as fast as the receiver takes them, cycling through the
//! buffer (each connection starts at a different chunk), until `--duration`
//! (10s) passes or `--bytes` in total were sent (split evenly over the
//! connections), or SIGINT/SIGTERM. Only whole lines are ever sent, so the
//! receiver can count exactly the `lines` and `bytes` reported. Each
//! connection then shuts down its write side and waits (up to 60 s) for
//! the receiver to close: `elapsed_s` runs from when every connection is
//! open until the last one is closed by the receiver, so data still queued
//! in socket buffers is counted as not yet delivered. One JSON line goes to
//! stdout:
//!
//! `{"connections", "bytes", "lines", "elapsed_s", "send_s", "mb_per_s",
//!   "lines_per_s", "avg_line_bytes", "cpu_s", "unclosed"}`
//!
//! `send_s` is the time until the last write returned; `unclosed` counts
//! connections the receiver had not closed within 60 s of the shutdown.
//!
//! **Floor mode** (`--floor`, `--serve ADDR:PORT`, default 127.0.0.1:0): a
//! bare TCP sink, one thread per connection, each reading into a 256 KiB
//! buffer and discarding it, std networking only. It prints `ready
//! ADDR:PORT` on stdout once bound, and on SIGINT/SIGTERM one JSON line,
//! then exits 0: `{"mode":"floor", "bind", "connections", "bytes",
//! "elapsed_s", "cpu_s"}` (`elapsed_s` from the first byte received to the
//! last). With `--count-lines` it also counts newlines (memchr), `"lines"`.
//!
//! Usage: tcp_sender --target 127.0.0.1:5170 [--connections 4] [--duration 10s | --bytes 1GB]
//!        tcp_sender --floor [--serve 127.0.0.1:0] [--count-lines]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
tcp_sender: TCP load generator for ringway's tcp: input, and a bare TCP sink floor

Send mode:
  tcp_sender --target ADDR:PORT [options]
    --connections N     concurrent connections, one thread each [4]
    --duration D        run this long (e.g. 10s, 500ms, 1m) [10s unless --bytes]
    --bytes SIZE        stop after this many bytes in total (k/M/G = 1e3.., KiB/MiB/GiB)
    --lines-file FILE   send the lines of FILE instead of generated NDJSON
    --buffer SIZE       generated data per cycle [8MiB]
    --chunk SIZE        bytes per write(2), rounded to whole lines [64KiB]
    --seed N            generator seed [1]
Floor mode:
  tcp_sender --floor [--serve ADDR:PORT] [--count-lines]
    prints `ready ADDR:PORT`, then on SIGINT/SIGTERM one JSON line and exits 0
";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct SendConfig {
    target: SocketAddr,
    connections: usize,
    duration: Option<Duration>,
    bytes: Option<u64>,
    lines_file: Option<String>,
    buffer: usize,
    chunk: usize,
    seed: u64,
}

struct FloorConfig {
    bind: String,
    count_lines: bool,
}

enum Mode {
    Send(SendConfig),
    Floor(FloorConfig),
    Help,
}

fn parse_size(text: &str, flag: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{flag} {text}: not a size"))?;
    let factor = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("{flag} {text}: unknown unit {other:?}")),
    };
    let value = number * factor;
    if value < 1.0 {
        return Err(format!("{flag} {text}: must be at least 1 byte"));
    }
    Ok(value as u64)
}

fn parse_duration(text: &str, flag: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{flag} {text}: not a duration (e.g. 10s, 500ms)"))?;
    if value.is_nan() || value <= 0.0 {
        return Err(format!("{flag} {text}: must be positive"));
    }
    Ok(Duration::from_secs_f64(value * factor))
}

fn resolve(text: &str, flag: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{flag} {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {text}: no address"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Mode, String> {
    let mut target = None;
    let mut connections = 4usize;
    let mut duration = None;
    let mut bytes = None;
    let mut lines_file = None;
    let mut buffer = 8 << 20;
    let mut chunk = 64 << 10;
    let mut seed = 1;
    let mut floor = false;
    let mut serve = None;
    let mut count_lines = false;
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
            "--target" => target = Some(resolve(&value()?, "--target")?),
            "--connections" => {
                connections = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or("--connections needs a positive integer")?
            }
            "--duration" => duration = Some(parse_duration(&value()?, "--duration")?),
            "--bytes" => bytes = Some(parse_size(&value()?, "--bytes")?),
            "--lines-file" => lines_file = Some(value()?),
            "--buffer" => buffer = parse_size(&value()?, "--buffer")? as usize,
            "--chunk" => chunk = parse_size(&value()?, "--chunk")? as usize,
            "--seed" => {
                seed = value()?
                    .parse()
                    .map_err(|_| "--seed needs an integer".to_string())?
            }
            "--floor" => floor = true,
            "--serve" => serve = Some(value()?),
            "--count-lines" => count_lines = true,
            other => return Err(format!("unknown flag {other} (see --help)")),
        }
    }
    if floor || serve.is_some() {
        if target.is_some() {
            return Err("--floor/--serve and --target exclude each other".into());
        }
        return Ok(Mode::Floor(FloorConfig {
            bind: serve.unwrap_or_else(|| "127.0.0.1:0".into()),
            count_lines,
        }));
    }
    let target = target.ok_or("--target ADDR:PORT or --floor is needed (see --help)")?;
    if duration.is_none() && bytes.is_none() {
        duration = Some(Duration::from_secs(10));
    }
    Ok(Mode::Send(SendConfig {
        target,
        connections,
        duration,
        bytes,
        lines_file,
        buffer,
        chunk,
        seed,
    }))
}

fn main() {
    let code = match parse_args(std::env::args().skip(1)) {
        Ok(Mode::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Mode::Send(config)) => run_sender(&config),
        Ok(Mode::Floor(config)) => run_floor(&config),
        Err(message) => {
            eprintln!("tcp_sender: error: {message}");
            2
        }
    };
    std::process::exit(code);
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

// ---------------------------------------------------------------------------
// The data

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

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

fn prepare(config: &SendConfig) -> Result<Data, String> {
    let mut bytes = match &config.lines_file {
        Some(path) => std::fs::read(path).map_err(|e| format!("--lines-file {path}: {e}"))?,
        None => {
            let mut rng = Rng(config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
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
// Send mode

fn install_stop_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

#[derive(Default)]
struct Sent {
    bytes: u64,
    lines: u64,
    closed_by_peer: bool,
}

fn run_sender(config: &SendConfig) -> i32 {
    install_stop_handlers();
    let data = match prepare(config) {
        Ok(data) => data,
        Err(message) => {
            eprintln!("tcp_sender: error: {message}");
            return 1;
        }
    };
    let mut streams = Vec::new();
    for _ in 0..config.connections {
        match TcpStream::connect(config.target) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                eprintln!("tcp_sender: error: connect {}: {e}", config.target);
                return 1;
            }
        }
    }
    let budget = config.bytes.map(|b| b.div_ceil(config.connections as u64));
    let barrier = Barrier::new(config.connections + 1);
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
                    let deadline = config.duration.map(|d| start + d);
                    let mut sent = Sent::default();
                    let mut next = index * data.chunks.len() / config.connections;
                    loop {
                        if STOP.load(Ordering::Relaxed)
                            || deadline.is_some_and(|d| Instant::now() >= d)
                            || budget.is_some_and(|b| sent.bytes >= b)
                        {
                            break;
                        }
                        let (from, to, lines) = data.chunks[next];
                        if let Err(e) = stream.write_all(&data.bytes[from..to]) {
                            eprintln!("tcp_sender: error: connection {index}: write: {e}");
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
                    let _ = stream.shutdown(Shutdown::Write);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                    let mut buf = [0u8; 4096];
                    sent.closed_by_peer = loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break true,
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break true,
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
        config.connections,
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

fn run_floor(config: &FloorConfig) -> i32 {
    // SIGINT/SIGTERM are blocked in every thread and taken by sigwait here.
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
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))
    }) {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("tcp_sender: error: {message}");
            return 1;
        }
    };
    let local = listener.local_addr().expect("bound");
    println!("ready {local}");
    let _ = io::stdout().flush();
    let stats = Arc::new(FloorStats::default());
    let epoch = Instant::now();
    let count_lines = config.count_lines;
    {
        let stats = Arc::clone(&stats);
        thread::spawn(move || {
            for stream in listener.incoming() {
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
    let mut signal = 0;
    // SAFETY: `signals` is an initialised set; `signal` a valid out pointer.
    unsafe { libc::sigwait(&signals, &mut signal) };
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
