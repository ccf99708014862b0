//! UDP: `loadgen udp send`, the load generator for ringway's UDP input,
//! and `loadgen udp floor`, the bare `recvmmsg` receiver it is compared with.
//!
//! **send** sends syslog-like (or raw) datagrams of a fixed size from one
//! connected socket with `sendmmsg`, in batches, either unthrottled or paced
//! to a fixed rate against CLOCK_MONOTONIC. Every datagram carries a unique,
//! zero-padded sequence number (`seq=00000042`), so a receiver can check
//! order and loss. At the end it prints one JSON line on stdout:
//! `{"mode", "to", "sent", "errors", "enobufs", "eagain", "other_errors",
//!   "size", "bytes", "elapsed_s", "rate_per_s", "cpu_s", ...}`.
//! `sent` counts the datagrams the kernel *accepted* (the sum of `sendmmsg`
//! return values); `errors` counts failed attempts (each is retried). On
//! loopback the receive path up to the socket queue runs in the sender's
//! context, so an accepted datagram is either queued on the receiving
//! socket or counted in its drops. `--max-rate-probe SECONDS` measures the
//! sender's own ceiling into a sink socket of its own that it never reads.
//!
//! **floor** binds one socket and counts and discards in a `recvmmsg` loop.
//! Prefill mode (`--prefill N`) waits, without reading, for a go (a line or
//! EOF on stdin, or `--start-after-quiet MS`), then times only the drain;
//! live mode receives until `--duration` or `--idle-exit`. Its JSON line
//! has `kernel_drops`, the socket's own drop counter read with
//! `getsockopt(SOL_SOCKET, SO_MEMINFO)` (`u32[SK_MEMINFO_VARS]`, index
//! `SK_MEMINFO_DROPS`): for one sender on loopback, `sent == received +
//! kernel_drops` once the queue is drained, unless the host-wide backlog
//! overflowed (`softnet_drops`, from /proc/net/softnet_stat).
//!
//! Types: `SendArgs`/`FloorArgs` (flags), `Config` (checked send flags),
//! `Batch` (the pre-built mmsghdr/iovec/payload arrays), `Receiver` (the
//! socket with its receive arrays), `Totals`/`Tally` (the counts).

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::common::{
    NANOS_PER_SECOND, address, count, count_usize, cpu_seconds, duration, install_stop_handlers,
    monotonic_ns, size, stopped, wait_readable,
};

#[derive(Args)]
pub(crate) struct SendArgs {
    /// Destination, IPv4 (127.0.0.1:5514) or IPv6 ([::1]:5514).
    #[arg(long, value_name = "ADDR:PORT", value_parser = address)]
    to: Option<SocketAddr>,
    /// Datagrams to send; 0 = no limit (needs --duration); k/M/G suffixes are
    /// powers of 1000.
    #[arg(long, value_name = "N", value_parser = count)]
    count: Option<u64>,
    /// Stop after D (250ms, 10s, 2m, or seconds); 0 = no limit.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "0")]
    duration: Duration,
    /// Datagrams per second, paced against CLOCK_MONOTONIC; 0 = unthrottled.
    #[arg(long, value_name = "R", value_parser = count, default_value = "0")]
    rate: u64,
    /// With --rate: send in chunks of about D's worth of datagrams (at most
    /// --batch), one wake-up per chunk; smaller = smoother but more CPU.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "1ms")]
    pace_quantum: Duration,
    /// Payload bytes per datagram (max 65507).
    #[arg(long, value_name = "BYTES", value_parser = size, default_value = "200")]
    size: usize,
    /// syslog: an RFC 5424 line with seq=...; raw: seq=... only.
    #[arg(long, value_enum, default_value = "syslog")]
    format: Format,
    /// Datagrams per sendmmsg call (1..=1024).
    #[arg(long, value_name = "N", value_parser = count_usize, default_value = "64")]
    batch: usize,
    /// Sequence number of the first datagram.
    #[arg(long, value_name = "N", value_parser = count, default_value = "0")]
    first_seq: u64,
    /// Allow a non-loopback destination (off: refuse).
    #[arg(long)]
    allow_remote: bool,
    /// Send unthrottled for S to a sink socket this process binds on loopback
    /// (never read; the kernel drops there) and report the sender's own max
    /// rate; --to only picks the address family.
    #[arg(long, value_name = "S", value_parser = duration)]
    max_rate_probe: Option<Duration>,
}

#[derive(Args)]
pub(crate) struct FloorArgs {
    /// Where to listen: 127.0.0.1:5514, [::1]:5514; port 0 picks one (printed
    /// in the `ready` line).
    #[arg(long, value_name = "ADDR:PORT", value_parser = address)]
    bind: SocketAddr,
    /// Receive buffer to request: SO_RCVBUFFORCE (root / CAP_NET_ADMIN), else
    /// SO_RCVBUF (clamped to net.core.rmem_max); the kernel doubles it. Max 1GiB.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "256MiB")]
    rcvbuf: usize,
    /// Receive buffer per datagram; longer ones are truncated and counted.
    #[arg(long, value_name = "BYTES", value_parser = size, default_value = "9000")]
    max_datagram: usize,
    /// Datagrams per recvmmsg call (1..=1024).
    #[arg(long, value_name = "N", value_parser = count_usize, default_value = "64")]
    batch: usize,
    /// Prefill mode: wait for the go signal, drain the queue, time the drain,
    /// expect exactly N datagrams.
    #[arg(long, value_name = "N", value_parser = count)]
    prefill: Option<u64>,
    /// Prefill: go once the queue is non-empty and has not changed for MS
    /// milliseconds, instead of waiting for a line (or EOF) on stdin.
    #[arg(long, value_name = "MS", value_parser = milliseconds, requires = "prefill")]
    start_after_quiet: Option<u64>,
    /// Live: stop D after the first datagram; 0 = no limit.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "0")]
    duration: Duration,
    /// Live: stop when nothing arrived for D after the first datagram; 0 = never.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "1s")]
    idle_exit: Duration,
    /// Parse seq=NNN in each datagram; report gaps and reordering (costs CPU;
    /// leave it off for floor numbers).
    #[arg(long)]
    check_seq: bool,
}

/// `--start-after-quiet`: milliseconds, with or without `ms`.
fn milliseconds(text: &str) -> Result<u64, String> {
    text.strip_suffix("ms")
        .unwrap_or(text)
        .parse::<u64>()
        .map_err(|_| "expected milliseconds".to_string())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Format {
    Syslog,
    Raw,
}

/// The send flags, checked.
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
    /// Some(seconds) in `--max-rate-probe` mode.
    probe_ns: Option<u64>,
}

impl SendArgs {
    fn config(&self) -> Result<Config, String> {
        let config = Config {
            to: self.to,
            count: self.count.unwrap_or(1_000_000),
            duration_ns: self.duration.as_nanos() as u64,
            rate_per_second: self.rate,
            pacing_quantum_ns: self.pace_quantum.as_nanos() as u64,
            size_bytes: self.size,
            format: self.format,
            batch: self.batch,
            first_seq: self.first_seq,
            probe_ns: self.max_rate_probe.map(|probe| probe.as_nanos() as u64),
        };
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
            if config.rate_per_second != 0 || self.count.is_some() || config.duration_ns != 0 {
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
            if !to.ip().is_loopback() && !self.allow_remote {
                return Err(format!(
                    "--to {to} is not a loopback address; pass --allow-remote to flood another host on purpose"
                ));
            }
            if config.count == 0 && config.duration_ns == 0 {
                return Err("--count 0 (no limit) needs --duration".into());
            }
        }
        Ok(config)
    }
}

impl FloorArgs {
    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(format!("--batch must be 1..={MAX_BATCH}"));
        }
        if !(1..=MAX_DATAGRAM_LIMIT_BYTES).contains(&self.max_datagram) {
            return Err(format!(
                "--max-datagram must be 1..={MAX_DATAGRAM_LIMIT_BYTES}"
            ));
        }
        // The kernel caps a request at INT_MAX / 2 (1GiB - 1) anyway; accept
        // 1GiB as a round spelling of that cap.
        if self.rcvbuf == 0 || self.rcvbuf > MAX_RCVBUF_BYTES + 1 {
            return Err("--rcvbuf must be 1 byte to 1GiB".into());
        }
        if self.prefill == Some(0) {
            return Err("--prefill needs a count above 0".into());
        }
        Ok(())
    }
}

/// `loadgen udp send`.
pub(crate) fn send(args: &SendArgs) -> i32 {
    match args.config() {
        Ok(config) => run_send(&config),
        Err(message) => crate::usage_error(&message),
    }
}

/// `loadgen udp floor`.
pub(crate) fn floor(args: &FloorArgs) -> i32 {
    if let Err(message) = args.check() {
        return crate::usage_error(&message);
    }
    match run_floor(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("loadgen udp floor: error: {message}");
            1
        }
    }
}

// ---------------------------------------------------------------------------
// send
// ---------------------------------------------------------------------------

/// Datagrams handed to one `sendmmsg` call by default.
const DEFAULT_BATCH: usize = 64;
/// `sendmmsg` rejects more than UIO_MAXIOV (1024) messages per call.
const MAX_BATCH: usize = 1024;
const DEFAULT_SIZE_BYTES: usize = 200;
/// Largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
const MAX_SIZE_BYTES: usize = 65_507;
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

fn run_send(config: &Config) -> i32 {
    install_stop_handlers(false);

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
                eprintln!(
                    "loadgen udp send: error: cannot bind the probe sink on {loopback}: {error}"
                );
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
            eprintln!("loadgen udp send: error: cannot open a UDP socket to {to}: {error}");
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
            eprintln!("loadgen udp send: error: {message}");
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
            eprintln!("loadgen udp send: error: {message}");
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
        if remaining == 0 || stopped() {
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
                if stopped() {
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
        if stopped() {
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
        let headers = mmsg_headers(&mut iovecs);
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

fn decimal_digits(mut value: u64) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

// ---------------------------------------------------------------------------
// floor
// ---------------------------------------------------------------------------

const DEFAULT_RCVBUF_BYTES: usize = 256 << 20;
/// SO_RCVBUF(FORCE) takes an int and the kernel caps the request at
/// INT_MAX / 2 before doubling it.
const MAX_RCVBUF_BYTES: usize = (i32::MAX / 2) as usize;
const MAX_DATAGRAM_LIMIT_BYTES: usize = 65_535;
/// Live mode: how long one wait for data may block before the loop re-checks
/// its stop conditions.
const POLL_TIMEOUT_MS: i32 = 50;
/// `--start-after-quiet`: how often the queue size is sampled.
const QUIET_SAMPLE_NS: u64 = 1_000_000;

/// Indices into the SO_MEMINFO array (enum in linux/sock_diag.h).
const SK_MEMINFO_RMEM_ALLOC: usize = 0;
const SK_MEMINFO_RCVBUF: usize = 1;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;
const _: () = assert!(SK_MEMINFO_DROPS as libc::c_int == libc::SK_MEMINFO_DROPS);
const _: () = assert!(SK_MEMINFO_RMEM_ALLOC as libc::c_int == libc::SK_MEMINFO_RMEM_ALLOC);
const _: () = assert!(SK_MEMINFO_RCVBUF as libc::c_int == libc::SK_MEMINFO_RCVBUF);
const _: () = assert!(SK_MEMINFO_DROPS + 1 == SK_MEMINFO_VARS);
const _: () = assert!(DEFAULT_RCVBUF_BYTES <= MAX_RCVBUF_BYTES);

fn run_floor(config: &FloorArgs) -> Result<i32, String> {
    install_stop_handlers(false);
    let host_before = HostCounters::read();

    let socket = UdpSocket::bind(config.bind)
        .map_err(|error| format!("cannot bind {}: {error}", config.bind))?;
    let fd = socket.as_raw_fd();
    let how = set_rcvbuf(fd, config.rcvbuf)?;
    let meminfo = read_meminfo(fd).map_err(|error| format!("getsockopt(SO_MEMINFO): {error}"))?;
    let rcvbuf_bytes = meminfo[SK_MEMINFO_RCVBUF];
    eprintln!(
        "loadgen udp floor: asked for {} B with {how}; the kernel reports {rcvbuf_bytes} B{}",
        config.rcvbuf,
        if how == "SO_RCVBUF" {
            " (SO_RCVBUFFORCE was refused: not root / no CAP_NET_ADMIN, so the request was \
             clamped to net.core.rmem_max before doubling)"
        } else {
            " (it doubles the request to leave room for skb overhead)"
        }
    );
    let local = socket.local_addr().map_err(|error| error.to_string())?;
    crate::common::print_ready(local);

    let mut receiver = Receiver::new(fd, config.batch, config.max_datagram);
    let mut tally = Tally::default();
    let mode;
    let mut queued_bytes_at_start = None;
    let (elapsed_ns, cpu_s) = if let Some(expected) = config.prefill {
        mode = "prefill";
        wait_for_go(fd, config.start_after_quiet.map(|ms| ms * 1_000_000))?;
        let queued = read_meminfo(fd).map_err(|e| e.to_string())?[SK_MEMINFO_RMEM_ALLOC];
        queued_bytes_at_start = Some(queued);
        let timing = drain(&mut receiver, &mut tally, config.check_seq)?;
        if tally.received != expected {
            eprintln!(
                "loadgen udp floor: warning: expected {expected} datagrams, drained {} (kernel_drops and \
                 the sender's count tell where the rest went)",
                tally.received
            );
        }
        timing
    } else {
        mode = "live";
        receive_live(&mut receiver, &mut tally, config)?
    };

    let end = read_meminfo(fd).map_err(|error| format!("getsockopt(SO_MEMINFO): {error}"))?;
    let host_after = HostCounters::read();
    let elapsed_s = elapsed_ns as f64 / NANOS_PER_SECOND as f64;
    let rate_per_s = if elapsed_s > 0.0 {
        tally.received as f64 / elapsed_s
    } else {
        0.0
    };
    let mut json = format!(
        "{{\"mode\":\"{mode}\",\"bind\":\"{local}\",\"received\":{},\"bytes\":{},\"truncated\":{},\
         \"elapsed_s\":{elapsed_s:.6},\"rate_per_s\":{rate_per_s:.0},\"cpu_s\":{cpu_s:.3},\
         \"kernel_drops\":{},\"rcvbuf_bytes\":{rcvbuf_bytes},\"rcvbuf_set_with\":\"{how}\",\
         \"queued_bytes_at_exit\":{}",
        tally.received,
        tally.bytes,
        tally.truncated,
        end[SK_MEMINFO_DROPS],
        end[SK_MEMINFO_RMEM_ALLOC],
    );
    if let Some(queued) = queued_bytes_at_start {
        json.push_str(&format!(",\"queued_bytes_at_start\":{queued}"));
        if tally.received > 0 {
            // The receive buffer is charged the skb truesize, not the payload:
            // this is what one datagram costs in `--rcvbuf` terms.
            json.push_str(&format!(
                ",\"rcvbuf_bytes_per_datagram\":{:.0}",
                f64::from(queued) / tally.received as f64
            ));
        }
        json.push_str(&format!(",\"expected\":{}", config.prefill.unwrap_or(0)));
    }
    match (host_before, host_after) {
        (Some(before), Some(after)) => json.push_str(&format!(
            ",\"softnet_drops\":{},\"udp_in_errors\":{}",
            after.softnet_drops.wrapping_sub(before.softnet_drops),
            after.udp_in_errors.wrapping_sub(before.udp_in_errors)
        )),
        _ => json.push_str(",\"softnet_drops\":null,\"udp_in_errors\":null"),
    }
    if config.check_seq {
        json.push_str(&format!(
            ",\"seq_first\":{},\"seq_last\":{},\"seq_gaps\":{},\"seq_out_of_order\":{},\"seq_missing_key\":{}",
            tally.seq_first.map_or("null".to_string(), |s| s.to_string()),
            tally.seq_last.map_or("null".to_string(), |s| s.to_string()),
            tally.seq_gaps,
            tally.seq_out_of_order,
            tally.seq_missing_key
        ));
    }
    json.push('}');
    println!("{json}");

    Ok(match config.prefill {
        Some(expected) if tally.received != expected => 1,
        _ => 0,
    })
}

#[derive(Default)]
struct Tally {
    received: u64,
    bytes: u64,
    /// Datagrams longer than --max-datagram (MSG_TRUNC); counted in
    /// `received` with only the first --max-datagram bytes.
    truncated: u64,
    seq_first: Option<u64>,
    seq_last: Option<u64>,
    /// Sum of skipped sequence numbers (seq - last - 1 whenever seq > last + 1).
    seq_gaps: u64,
    /// Datagrams whose sequence number is not above the previous one.
    seq_out_of_order: u64,
    seq_missing_key: u64,
}

impl Tally {
    fn check_seq(&mut self, payload: &[u8]) {
        let Some(seq) = parse_seq(payload) else {
            self.seq_missing_key += 1;
            return;
        };
        match self.seq_last {
            None => self.seq_first = Some(seq),
            Some(last) if seq > last => self.seq_gaps += seq - last - 1,
            Some(_) => {
                self.seq_out_of_order += 1;
                return;
            }
        }
        self.seq_last = Some(seq);
    }
}

fn parse_seq(payload: &[u8]) -> Option<u64> {
    let start = payload.windows(SEQ_KEY.len()).position(|w| w == SEQ_KEY)? + SEQ_KEY.len();
    let digits = payload[start..].iter().take_while(|b| b.is_ascii_digit());
    let mut value: u64 = 0;
    let mut any = false;
    for &digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

/// The socket plus one `recvmmsg` call's worth of buffers, built once:
/// `buffers` holds `batch` buffers of `max_datagram` bytes, `iovecs[i]`
/// points at buffer i, `headers[i]` at `iovecs[i]`. The kernel never changes
/// the iovecs, so the arrays are reused as they are for every call.
struct Receiver {
    fd: RawFd,
    buffers: Box<[u8]>,
    max_datagram_bytes: usize,
    /// Kept alive for the pointers in `headers`; never read from Rust.
    _iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

impl Receiver {
    fn new(fd: RawFd, batch: usize, max_datagram_bytes: usize) -> Self {
        let mut buffers = vec![0u8; batch * max_datagram_bytes].into_boxed_slice();
        let mut iovecs: Box<[libc::iovec]> = buffers
            .chunks_exact_mut(max_datagram_bytes)
            .map(|chunk| libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            })
            .collect();
        let headers = mmsg_headers(&mut iovecs);
        assert_eq!(headers.len(), batch);
        Receiver {
            fd,
            buffers,
            max_datagram_bytes,
            _iovecs: iovecs,
            headers,
        }
    }

    /// One non-blocking `recvmmsg`: Ok(n > 0) datagrams, Ok(0) queue empty.
    fn receive(&mut self, tally: &mut Tally, check_seq: bool) -> Result<usize, String> {
        loop {
            // SAFETY: `headers` holds `headers.len()` mmsghdrs whose single
            // iovec each points at a distinct `max_datagram_bytes` slice of
            // `buffers`; all are owned by `self` and outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    self.fd,
                    self.headers.as_mut_ptr(),
                    self.headers.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                let n = n as usize;
                assert!(
                    n <= self.headers.len(),
                    "recvmmsg returned more than asked for"
                );
                for (i, header) in self.headers[..n].iter().enumerate() {
                    let len = header.msg_len as usize;
                    tally.received += 1;
                    tally.bytes += len as u64;
                    if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                        tally.truncated += 1;
                    }
                    if check_seq {
                        let start = i * self.max_datagram_bytes;
                        let end = start + len.min(self.max_datagram_bytes);
                        tally.check_seq(&self.buffers[start..end]);
                    }
                }
                return Ok(n);
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(0),
                Some(libc::EINTR) => continue,
                _ => return Err(format!("recvmmsg failed: {error}")),
            }
        }
    }
}

/// Prefill: receive until the queue is empty. Returns (drain time in ns,
/// CPU seconds spent draining).
fn drain(
    receiver: &mut Receiver,
    tally: &mut Tally,
    check_seq: bool,
) -> Result<(u64, f64), String> {
    let cpu_start = cpu_seconds();
    let start_ns = monotonic_ns();
    let mut last_ns = start_ns;
    while receiver.receive(tally, check_seq)? > 0 {
        last_ns = monotonic_ns();
    }
    Ok((last_ns - start_ns, cpu_seconds() - cpu_start))
}

/// Live: receive until a stop condition. Returns (time from the first to
/// the last datagram in ns, CPU seconds from the first datagram on).
fn receive_live(
    receiver: &mut Receiver,
    tally: &mut Tally,
    config: &FloorArgs,
) -> Result<(u64, f64), String> {
    let mut first: Option<(u64, f64)> = None;
    let mut last_ns = 0;
    loop {
        if receiver.receive(tally, config.check_seq)? > 0 {
            last_ns = monotonic_ns();
            if first.is_none() {
                first = Some((last_ns, cpu_seconds()));
            }
            if let Some((first_ns, _)) = first
                && config.duration > Duration::ZERO
                && last_ns - first_ns >= config.duration.as_nanos() as u64
            {
                break;
            }
            if stopped() {
                break;
            }
            continue;
        }
        if stopped() {
            break;
        }
        if first.is_some() {
            let now_ns = monotonic_ns();
            if config.idle_exit > Duration::ZERO
                && now_ns - last_ns >= config.idle_exit.as_nanos() as u64
            {
                break;
            }
        }
        let _ = wait_readable(receiver.fd, POLL_TIMEOUT_MS);
    }
    let cpu_s = first.map_or(0.0, |(_, cpu)| cpu_seconds() - cpu);
    Ok((first.map_or(0, |(first_ns, _)| last_ns - first_ns), cpu_s))
}

/// Prefill: block until the harness says go (stdin line or EOF), or until the
/// queue has been non-empty and unchanged for `quiet_ns`.
fn wait_for_go(fd: RawFd, quiet_ns: Option<u64>) -> Result<(), String> {
    let Some(quiet_ns) = quiet_ns else {
        // std retries a read interrupted by a signal, so wait for stdin with
        // poll first: SIGINT/SIGTERM must still end the wait.
        while !stopped() {
            if wait_readable(libc::STDIN_FILENO, POLL_TIMEOUT_MS) {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|error| format!("reading the go line from stdin: {error}"))?;
                break;
            }
        }
        return Ok(());
    };
    let mut last = (0u32, 0u32);
    let mut unchanged_since_ns = monotonic_ns();
    loop {
        if stopped() {
            return Ok(());
        }
        let meminfo =
            read_meminfo(fd).map_err(|error| format!("getsockopt(SO_MEMINFO): {error}"))?;
        let now = (meminfo[SK_MEMINFO_RMEM_ALLOC], meminfo[SK_MEMINFO_DROPS]);
        let now_ns = monotonic_ns();
        if now != last {
            last = now;
            unchanged_since_ns = now_ns;
        } else if now.0 > 0 && now_ns - unchanged_since_ns >= quiet_ns {
            return Ok(());
        }
        sleep_ns(QUIET_SAMPLE_NS);
    }
}

/// Requests `bytes` of receive buffer, with SO_RCVBUFFORCE when allowed.
/// Returns the option that worked.
fn set_rcvbuf(fd: RawFd, bytes: usize) -> Result<&'static str, String> {
    let value = bytes.min(MAX_RCVBUF_BYTES) as libc::c_int;
    for (option, name) in [
        (libc::SO_RCVBUFFORCE, "SO_RCVBUFFORCE"),
        (libc::SO_RCVBUF, "SO_RCVBUF"),
    ] {
        // SAFETY: the option value is a c_int that lives for the whole call
        // and its exact size is passed.
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
            return Ok(name);
        }
        let error = std::io::Error::last_os_error();
        if option == libc::SO_RCVBUF || error.raw_os_error() != Some(libc::EPERM) {
            return Err(format!("setsockopt({name}, {value}): {error}"));
        }
    }
    unreachable!("SO_RCVBUF either succeeds or returns an error above")
}

fn read_meminfo(fd: RawFd) -> std::io::Result<[u32; SK_MEMINFO_VARS]> {
    let mut values = [0u32; SK_MEMINFO_VARS];
    let mut len = size_of_val(&values) as libc::socklen_t;
    // SAFETY: `values` is writable for `len` bytes; the kernel copies at most
    // `len` bytes and stores the copied length back in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            values.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if (len as usize) < size_of_val(&values) {
        return Err(std::io::Error::other(format!(
            "SO_MEMINFO returned {len} bytes, expected {}",
            size_of_val(&values)
        )));
    }
    Ok(values)
}

/// Host-wide counters read around the run, to explain a mismatch that the
/// socket's own counter cannot see.
#[derive(Clone, Copy)]
struct HostCounters {
    /// Sum over CPUs of /proc/net/softnet_stat column 2 (backlog overflow).
    softnet_drops: u64,
    /// Udp InErrors (/proc/net/snmp) + Udp6InErrors (/proc/net/snmp6).
    udp_in_errors: u64,
}

impl HostCounters {
    fn read() -> Option<Self> {
        let softnet = std::fs::read_to_string("/proc/net/softnet_stat").ok()?;
        let softnet_drops = softnet
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
            .sum();
        let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
        let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
        let names = udp.next()?.split_whitespace();
        let values = udp.next()?.split_whitespace();
        let mut udp_in_errors = names
            .zip(values)
            .find(|(name, _)| *name == "InErrors")
            .and_then(|(_, value)| value.parse::<u64>().ok())?;
        if let Ok(snmp6) = std::fs::read_to_string("/proc/net/snmp6") {
            udp_in_errors += snmp6
                .lines()
                .filter_map(|line| line.strip_prefix("Udp6InErrors"))
                .filter_map(|value| value.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        Some(HostCounters {
            softnet_drops,
            udp_in_errors,
        })
    }
}

/// One `mmsghdr` per iovec, each pointing at its iovec: no name (the
/// sender's socket is connected; the floor wants none), no control buffer.
/// The iovecs must outlive every use of the headers.
fn mmsg_headers(iovecs: &mut [libc::iovec]) -> Box<[libc::mmsghdr]> {
    iovecs
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
        .collect()
}

fn sleep_ns(duration_ns: u64) {
    std::thread::sleep(Duration::from_nanos(duration_ns));
}
