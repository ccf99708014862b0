//! UDP blaster: the load generator for ringway's UDP input benchmarks.
//!
//! It sends syslog-like (or raw) datagrams of a fixed size from one connected
//! socket with `sendmmsg`, in batches, either unthrottled or paced to a fixed
//! rate against CLOCK_MONOTONIC. Every datagram carries a unique, zero-padded
//! sequence number (`seq=00000042`), so a receiver can check order and loss.
//! At the end it prints one JSON line on stdout:
//!
//! `{"mode", "to", "sent", "errors", "enobufs", "eagain", "other_errors",
//!   "size", "bytes", "elapsed_s", "rate_per_s", "cpu_s"}`
//!
//! `sent` counts the datagrams the kernel *accepted* (the sum of `sendmmsg`
//! return values); `errors` counts failed attempts (each is retried, so a
//! datagram that needed two attempts adds 1 to `errors` and 1 to `sent`).
//! On loopback the receive path up to the socket queue runs in the sender's
//! context, so an accepted datagram is either queued on the receiving socket
//! or counted in its drops (SO_MEMINFO SK_MEMINFO_DROPS); only the host-wide
//! backlog (`/proc/net/softnet_stat`) can lose it otherwise.
//!
//! `--max-rate-probe SECONDS` measures the blaster's own ceiling: it binds a
//! sink socket of its own on loopback with a tiny SO_RCVBUF that it never
//! reads (the kernel drops nearly everything there, which is the point) and
//! sends to it unthrottled.
//!
//! Types: `Config` (flags), `Batch` (the pre-built mmsghdr/iovec/payload
//! arrays, allocated once), `Totals` (the counters reported at the end).
//!
//! Usage: udp_blaster --to 127.0.0.1:5514 --count 1M [--rate 100k] [--size 200]
//!        udp_blaster --max-rate-probe 3

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
#[path = "udp_common.rs"]
mod common;
use common::{cpu_seconds, monotonic_ns, parse_count, parse_duration_ns, parse_size};

/// Datagrams handed to one `sendmmsg` call by default.
const DEFAULT_BATCH: usize = 64;
/// `sendmmsg` rejects more than UIO_MAXIOV (1024) messages per call.
const MAX_BATCH: usize = 1024;
const DEFAULT_SIZE_BYTES: usize = 200;
/// Largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
const MAX_SIZE_BYTES: usize = 65_507;
/// With `--rate`, datagrams go out in chunks of about this much time's worth
/// (rate × quantum, at least 1, at most the batch; `--pace-quantum`). A
/// datagram leaves at most one quantum (plus the wake-up latency) after its
/// slot on the timeline; a smaller quantum means more wake-ups, and each
/// costs CPU (about 25 µs on the development VM).
const DEFAULT_PACING_QUANTUM_NS: u64 = 1_000_000;
/// Give up after this many failed attempts in a row without one success.
const MAX_CONSECUTIVE_ERRORS: u64 = 100_000;
/// Wait after EAGAIN (socket send buffer full) before retrying.
const EAGAIN_WAIT_MS: i32 = 1;
/// Wait after ENOBUFS (a queue below the socket was full) before retrying.
const ENOBUFS_WAIT_NS: i64 = 100_000;
/// SO_RCVBUF of the probe's sink (the kernel doubles it and enforces a
/// minimum); small, because everything sent there is meant to be dropped.
const PROBE_SINK_RCVBUF_BYTES: libc::c_int = 4096;
/// Sequence numbers are at least this many digits (more when `--count` needs
/// them; unbounded runs use `UNBOUNDED_SEQ_DIGITS`).
const MIN_SEQ_DIGITS: usize = 8;
const UNBOUNDED_SEQ_DIGITS: usize = 12;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// RFC 5424 header every `--format syslog` datagram starts with
/// (PRI 134 = facility local0, severity informational).
const SYSLOG_HEADER: &[u8] = b"<134>1 2026-11-29T10:00:00.000Z host app 1234 ID47 - ";
const SEQ_KEY: &[u8] = b"seq=";
/// Printable padding repeated after the sequence number up to `--size`.
const FILLER: &[u8] = b" user=alice action=login status=ok latency_ms=12 \
path=/api/v1/items/12345 agent=\"Mozilla/5.0 (X11; Linux x86_64)\" \
msg=\"the quick brown fox jumps over the lazy dog\"";

const _: () = assert!(DEFAULT_BATCH <= MAX_BATCH && DEFAULT_BATCH > 0);
const _: () = assert!(DEFAULT_SIZE_BYTES <= MAX_SIZE_BYTES);
const _: () = assert!(MIN_SEQ_DIGITS <= UNBOUNDED_SEQ_DIGITS && UNBOUNDED_SEQ_DIGITS <= 19);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const USAGE: &str = "\
udp_blaster: send numbered syslog-like UDP datagrams with sendmmsg.

Usage:
  udp_blaster --to ADDR:PORT [--count N] [--duration D] [--rate R] [options]
  udp_blaster --max-rate-probe SECONDS [--to ADDR:PORT] [options]

  --to ADDR:PORT          destination, IPv4 (127.0.0.1:5514) or IPv6 ([::1]:5514)
  --count N               datagrams to send; 0 = no limit (needs --duration)
                          [default 1M]; k/M/G suffixes are powers of 1000
  --duration D            stop after D (250ms, 10s, 2m, or seconds) [default 0 = none]
  --rate R                datagrams per second, paced against CLOCK_MONOTONIC;
                          0 = unthrottled [default 0]
  --pace-quantum D        with --rate: send in chunks of about D's worth of
                          datagrams (at most --batch), one wake-up per chunk;
                          smaller = smoother but more CPU [default 1ms]
  --size BYTES            payload bytes per datagram (64KiB-style suffixes ok)
                          [default 200; max 65507]
  --format syslog|raw     syslog: RFC 5424 line with seq=...; raw: seq=... only
                          [default syslog]
  --batch N               datagrams per sendmmsg call [default 64; max 1024]
  --first-seq N           sequence number of the first datagram [default 0]
  --allow-remote          allow a non-loopback destination (off: refuse)
  --max-rate-probe S      send unthrottled for S seconds to a sink socket this
                          process binds on loopback (never read; the kernel
                          drops there) and report the blaster's own max rate;
                          --to only picks the address family
  -h, --help              this text

Prints one JSON line on stdout when done (also after SIGINT/SIGTERM):
  {\"mode\", \"to\", \"sent\", \"errors\", \"enobufs\", \"eagain\", \"other_errors\",
   \"size\", \"bytes\", \"elapsed_s\", \"rate_per_s\", \"cpu_s\"}
sent = datagrams the kernel accepted; errors = failed attempts (retried).
Exit status: 0 done, 1 send failure, 2 usage error.
";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Syslog,
    Raw,
}

#[derive(Debug)]
struct Config {
    to: Option<SocketAddr>,
    /// 0 = unbounded (then `duration_ns` or a signal ends the run).
    count: u64,
    /// 0 = no time limit.
    duration_ns: u64,
    /// Datagrams per second; 0 = unthrottled.
    rate_per_second: u64,
    pacing_quantum_ns: u64,
    size_bytes: usize,
    format: Format,
    batch: usize,
    first_seq: u64,
    allow_remote: bool,
    /// Some(seconds) in `--max-rate-probe` mode.
    probe_ns: Option<u64>,
}

fn main() {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("udp_blaster: error: {message}\nTry 'udp_blaster --help'.");
            std::process::exit(2);
        }
    };
    std::process::exit(run(&config));
}

fn run(config: &Config) -> i32 {
    install_stop_handlers();

    // The probe's sink lives until the end of `run`, so it keeps dropping.
    let mut _sink = None;
    let (mode, to, count, duration_ns, rate_per_second) = if let Some(probe_ns) = config.probe_ns {
        let loopback = match config.to {
            Some(SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let sink = match bind_probe_sink(loopback) {
            Ok(sink) => sink,
            Err(error) => {
                eprintln!("udp_blaster: error: cannot bind the probe sink on {loopback}: {error}");
                return 1;
            }
        };
        let addr = sink
            .local_addr()
            .expect("a bound socket has a local address");
        _sink = Some(sink);
        ("max_rate_probe", addr, 0, probe_ns, 0)
    } else {
        let to = config
            .to
            .expect("parse_args requires --to outside probe mode");
        (
            "send",
            to,
            config.count,
            config.duration_ns,
            config.rate_per_second,
        )
    };

    let local: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A connected socket: the kernel caches the route, and no per-message
    // address is needed in the mmsghdr array.
    let socket = match UdpSocket::bind(local).and_then(|s| s.connect(to).map(|()| s)) {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("udp_blaster: error: cannot open a UDP socket to {to}: {error}");
            return 1;
        }
    };

    let seq_digits = if count == 0 {
        UNBOUNDED_SEQ_DIGITS
    } else {
        decimal_digits(config.first_seq.saturating_add(count - 1)).max(MIN_SEQ_DIGITS)
    };
    let mut batch = match Batch::new(config.batch, config.size_bytes, config.format, seq_digits) {
        Ok(batch) => batch,
        Err(message) => {
            eprintln!("udp_blaster: error: {message}");
            return 2;
        }
    };

    if rate_per_second > 0 {
        // The default timer slack (50 µs) would stretch every short sleep of
        // the pacer; 1 ns makes clock_nanosleep wake as close to the deadline
        // as the hrtimer allows.
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only
        // affects this thread's timers.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    }

    let cpu_start_s = cpu_seconds();
    let start_ns = monotonic_ns();
    let plan = Plan {
        first_seq: config.first_seq,
        count,
        duration_ns,
        rate_per_second,
        pacing_quantum_ns: config.pacing_quantum_ns,
        start_ns,
    };
    let mut totals = Totals::default();
    let outcome = send_loop(socket.as_raw_fd(), &mut batch, &plan, &mut totals);
    let elapsed_s = (monotonic_ns() - start_ns) as f64 / NANOS_PER_SECOND as f64;
    let cpu_s = cpu_seconds() - cpu_start_s;

    let rate_per_s = if elapsed_s > 0.0 {
        totals.sent as f64 / elapsed_s
    } else {
        0.0
    };
    let mut json = format!(
        "{{\"mode\":\"{mode}\",\"to\":\"{to}\",\"sent\":{},\"errors\":{},\"enobufs\":{},\
         \"eagain\":{},\"other_errors\":{},\"size\":{},\"bytes\":{},\"elapsed_s\":{elapsed_s:.6},\
         \"rate_per_s\":{rate_per_s:.0},\"cpu_s\":{cpu_s:.3}",
        totals.sent,
        totals.errors(),
        totals.enobufs,
        totals.eagain,
        totals.other,
        config.size_bytes,
        totals.sent * config.size_bytes as u64,
    );
    if config.probe_ns.is_some() {
        json.push_str(&format!(",\"rate_70pct_per_s\":{:.0}", rate_per_s * 0.7));
    } else {
        json.push_str(&format!(",\"target_rate_per_s\":{rate_per_second}"));
    }
    json.push('}');
    println!("{json}");

    match outcome {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("udp_blaster: error: {message}");
            1
        }
    }
}

#[derive(Default)]
struct Totals {
    /// Datagrams the kernel accepted (sum of sendmmsg return values).
    sent: u64,
    enobufs: u64,
    eagain: u64,
    /// Any other retried failure, e.g. ECONNREFUSED reported on a connected
    /// socket after an ICMP port-unreachable (no listener yet).
    other: u64,
}

impl Totals {
    fn errors(&self) -> u64 {
        self.enobufs + self.eagain + self.other
    }
}

/// What one run sends, and when.
struct Plan {
    first_seq: u64,
    /// 0 = no limit.
    count: u64,
    /// 0 = no limit.
    duration_ns: u64,
    /// 0 = unthrottled.
    rate_per_second: u64,
    pacing_quantum_ns: u64,
    /// CLOCK_MONOTONIC at the start; datagram k is due at
    /// `start_ns + k / rate_per_second`.
    start_ns: u64,
}

/// Sends datagrams `first_seq..` until `count` are accepted, `duration_ns`
/// has passed, or SIGINT/SIGTERM arrives.
fn send_loop(fd: RawFd, batch: &mut Batch, plan: &Plan, totals: &mut Totals) -> Result<(), String> {
    let batch_len = batch.len() as u64;
    let rate = u128::from(plan.rate_per_second);
    let nanos_per_second = u128::from(NANOS_PER_SECOND);
    // Datagrams per pacing chunk (see DEFAULT_PACING_QUANTUM_NS).
    let chunk =
        ((rate * u128::from(plan.pacing_quantum_ns) / nanos_per_second) as u64).clamp(1, batch_len);
    let end_ns = (plan.duration_ns > 0).then(|| plan.start_ns + plan.duration_ns);
    // `sent` is relative to first_seq; it is also the index, on the pacing
    // timeline, of the next datagram.
    loop {
        let sent = totals.sent;
        let remaining = if plan.count == 0 {
            u64::MAX
        } else {
            plan.count - sent
        };
        if remaining == 0 || STOP.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now_ns = monotonic_ns();
        if end_ns.is_some_and(|end_ns| now_ns >= end_ns) {
            return Ok(());
        }
        let mut n = remaining.min(batch_len);
        if rate > 0 {
            // Datagram k is due at start + k / rate; this many are due now.
            let due = (u128::from(now_ns - plan.start_ns) * rate / nanos_per_second) as u64 + 1;
            let wait_for = sent + chunk.min(remaining);
            if due < wait_for {
                // Sleep until the last datagram of the next chunk is due. The
                // timeline is absolute, so oversleeping is caught up on the
                // next pass instead of drifting.
                let deadline_ns =
                    plan.start_ns + (u128::from(wait_for - 1) * nanos_per_second / rate) as u64;
                sleep_until_ns(end_ns.map_or(deadline_ns, |end_ns| deadline_ns.min(end_ns)));
                continue;
            }
            n = n.min(due - sent);
        }
        let n = n as usize;
        batch.stamp(plan.first_seq + sent, n);
        send_batch(fd, batch, n, totals)?;
    }
}

/// Hands `n` prepared datagrams to the kernel, retrying partial batches and
/// transient errors until all are accepted (or a stop signal arrives).
fn send_batch(fd: RawFd, batch: &mut Batch, n: usize, totals: &mut Totals) -> Result<(), String> {
    let mut offset = 0;
    let mut consecutive_errors = 0u64;
    while offset < n {
        // SAFETY: `batch.headers` has at least `n` initialised mmsghdrs whose
        // iovecs point into `batch.payloads`, which `batch` owns and does not
        // move or free while the call runs; msg_name is null (connected).
        let accepted = unsafe {
            libc::sendmmsg(
                fd,
                batch.headers.as_mut_ptr().add(offset),
                (n - offset) as libc::c_uint,
                0,
            )
        };
        if accepted > 0 {
            let accepted = accepted as usize;
            assert!(
                accepted <= n - offset,
                "sendmmsg accepted more than offered"
            );
            offset += accepted;
            totals.sent += accepted as u64;
            consecutive_errors = 0;
            continue;
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {
                if STOP.load(Ordering::Relaxed) {
                    return Ok(());
                }
                continue;
            }
            Some(libc::EAGAIN) => {
                totals.eagain += 1;
                wait_writable(fd, EAGAIN_WAIT_MS);
            }
            Some(libc::ENOBUFS) => {
                totals.enobufs += 1;
                sleep_until_ns(monotonic_ns() + ENOBUFS_WAIT_NS as u64);
            }
            Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH) => {
                totals.other += 1;
            }
            _ if accepted == 0 => {
                // Not documented for sendmmsg with n > 0; treat as transient.
                totals.other += 1;
            }
            _ => return Err(format!("sendmmsg failed: {error}")),
        }
        consecutive_errors += 1;
        if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            return Err(format!(
                "{consecutive_errors} send attempts in a row failed (last: {error}); giving up"
            ));
        }
        if STOP.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
    Ok(())
}

/// The datagrams of one `sendmmsg` call, built once at start-up: `payloads`
/// holds `len()` buffers of exactly `size` bytes, `iovecs[i]` points at
/// `payloads[i]`, `headers[i]` at `iovecs[i]`. Only the sequence digits
/// (at `seq_offset`, `seq_digits` wide) change between calls.
struct Batch {
    payloads: Vec<Box<[u8]>>,
    /// Kept alive for the pointers in `headers`; never read from Rust.
    _iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    seq_offset: usize,
    seq_digits: usize,
}

impl Batch {
    fn new(len: usize, size: usize, format: Format, seq_digits: usize) -> Result<Self, String> {
        let header: &[u8] = match format {
            Format::Syslog => SYSLOG_HEADER,
            Format::Raw => b"",
        };
        let seq_offset = header.len() + SEQ_KEY.len();
        let minimum = seq_offset + seq_digits;
        if size < minimum {
            return Err(format!(
                "--size {size} is too small: this format needs at least {minimum} bytes"
            ));
        }
        let mut template = Vec::with_capacity(size);
        template.extend_from_slice(header);
        template.extend_from_slice(SEQ_KEY);
        template.resize(minimum, b'0');
        while template.len() < size {
            let take = FILLER.len().min(size - template.len());
            template.extend_from_slice(&FILLER[..take]);
        }
        assert_eq!(template.len(), size);

        let mut payloads: Vec<Box<[u8]>> = (0..len)
            .map(|_| template.clone().into_boxed_slice())
            .collect();
        let mut iovecs: Box<[libc::iovec]> = payloads
            .iter_mut()
            .map(|payload| libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            })
            .collect();
        let headers: Box<[libc::mmsghdr]> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: msghdr is plain old data; all-zero is a valid value
                // (null name and control, no flags).
                let mut msg_hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                msg_hdr.msg_iov = iovec;
                msg_hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr,
                    msg_len: 0,
                }
            })
            .collect();
        Ok(Batch {
            payloads,
            _iovecs: iovecs,
            headers,
            seq_offset,
            seq_digits,
        })
    }

    fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Writes sequence numbers `first..first + n` into the first `n` payloads.
    fn stamp(&mut self, first: u64, n: usize) {
        for (i, payload) in self.payloads[..n].iter_mut().enumerate() {
            let digits = &mut payload[self.seq_offset..self.seq_offset + self.seq_digits];
            let mut value = first + i as u64;
            for digit in digits.iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
    }
}

fn bind_probe_sink(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let sink = UdpSocket::bind((ip, 0))?;
    set_int_option(sink.as_raw_fd(), libc::SO_RCVBUF, PROBE_SINK_RCVBUF_BYTES)?;
    Ok(sink)
}

fn set_int_option(fd: RawFd, option: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the option value is a c_int that lives for the whole call and
    // its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn wait_writable(fd: RawFd, timeout_ms: i32) {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (returns early on a
/// signal; callers re-check the clock).
fn sleep_until_ns(deadline_ns: u64) {
    let deadline = libc::timespec {
        tv_sec: (deadline_ns / NANOS_PER_SECOND) as libc::time_t,
        tv_nsec: (deadline_ns % NANOS_PER_SECOND) as libc::c_long,
    };
    // SAFETY: a valid absolute timespec; no remaining-time pointer is needed
    // with TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &deadline,
            std::ptr::null_mut(),
        )
    };
}

fn install_stop_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an
        // atomic, which is async-signal-safe. No SA_RESTART, so a blocking
        // call returns EINTR and the loop sees STOP promptly.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn decimal_digits(mut value: u64) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Ok(None) means --help.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Config>, String> {
    let mut config = Config {
        to: None,
        count: 1_000_000,
        duration_ns: 0,
        rate_per_second: 0,
        pacing_quantum_ns: DEFAULT_PACING_QUANTUM_NS,
        size_bytes: DEFAULT_SIZE_BYTES,
        format: Format::Syslog,
        batch: DEFAULT_BATCH,
        first_seq: 0,
        allow_remote: false,
        probe_ns: None,
    };
    let mut count_given = false;
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
            "-h" | "--help" => return Ok(None),
            "--to" => {
                let text = value()?;
                config.to = Some(text.parse().map_err(|_| {
                    format!("--to {text}: expected ADDR:PORT, e.g. 127.0.0.1:5514 or [::1]:5514")
                })?);
            }
            "--count" => {
                config.count = parse_count(&value()?, "--count")?;
                count_given = true;
            }
            "--duration" => config.duration_ns = parse_duration_ns(&value()?, "--duration")?,
            "--rate" => config.rate_per_second = parse_count(&value()?, "--rate")?,
            "--pace-quantum" => {
                config.pacing_quantum_ns = parse_duration_ns(&value()?, "--pace-quantum")?
            }
            "--size" => config.size_bytes = parse_size(&value()?, "--size")?,
            "--format" => {
                config.format = match value()?.as_str() {
                    "syslog" => Format::Syslog,
                    "raw" => Format::Raw,
                    other => return Err(format!("--format {other}: expected syslog or raw")),
                }
            }
            "--batch" => config.batch = parse_count(&value()?, "--batch")? as usize,
            "--first-seq" => config.first_seq = parse_count(&value()?, "--first-seq")?,
            "--allow-remote" => config.allow_remote = true,
            "--max-rate-probe" => {
                config.probe_ns = Some(parse_duration_ns(&value()?, "--max-rate-probe")?)
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if !(1..=MAX_BATCH).contains(&config.batch) {
        return Err(format!("--batch must be 1..={MAX_BATCH}"));
    }
    if config.size_bytes > MAX_SIZE_BYTES {
        return Err(format!("--size must be at most {MAX_SIZE_BYTES}"));
    }
    if let Some(probe_ns) = config.probe_ns {
        if probe_ns == 0 {
            return Err("--max-rate-probe needs a duration above 0".into());
        }
        if config.rate_per_second != 0 || count_given || config.duration_ns != 0 {
            return Err(
                "--max-rate-probe is unthrottled and timed: drop --rate, --count and --duration"
                    .into(),
            );
        }
    } else {
        let Some(to) = config.to else {
            return Err("--to ADDR:PORT is required (or use --max-rate-probe)".into());
        };
        if to.port() == 0 {
            return Err("--to needs a port other than 0".into());
        }
        if !to.ip().is_loopback() && !config.allow_remote {
            return Err(format!(
                "--to {to} is not a loopback address; pass --allow-remote to flood another host on purpose"
            ));
        }
        if config.count == 0 && config.duration_ns == 0 {
            return Err("--count 0 (no limit) needs --duration".into());
        }
    }
    Ok(Some(config))
}
