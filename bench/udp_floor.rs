//! The machine's floor for ringway's UDP input: a bare `recvmmsg` loop on
//! one socket that counts datagrams and throws them away. bench/ compares
//! ringway's udp→null against it.
//!
//! Two modes:
//! - **prefill** (`--prefill N`): bind, size the receive buffer, print
//!   `ready ADDR:PORT` on stdout and wait, without reading, until told to go
//!   (a line or EOF on stdin, or `--start-after-quiet MS`: the socket's queue
//!   has not changed for MS ms). A harness fills the socket in between (e.g.
//!   with udp_blaster). Then it drains the queue as fast as it can and times
//!   only the drain: from the first `recvmmsg` to the datagram that empties
//!   the queue. Exit 1 if it did not receive exactly N.
//! - **live** (default): receive until `--duration` has passed since the
//!   first datagram, or nothing arrived for `--idle-exit`, or SIGINT/SIGTERM.
//!
//! Either way it prints one JSON line on stdout:
//! `{"mode", "received", "bytes", "truncated", "elapsed_s", "rate_per_s",
//!   "cpu_s", "kernel_drops", "rcvbuf_bytes", "queued_bytes_at_exit",
//!   "softnet_drops", "udp_in_errors", …}`
//!
//! `kernel_drops` is the socket's own drop counter, read with
//! `getsockopt(SOL_SOCKET, SO_MEMINFO)`: the kernel fills a
//! `u32[SK_MEMINFO_VARS]` array (linux/sock_diag.h: RMEM_ALLOC=0, RCVBUF=1,
//! WMEM_ALLOC=2, SNDBUF=3, FWD_ALLOC=4, WMEM_QUEUED=5, OPTMEM=6, BACKLOG=7,
//! DROPS=8, VARS=9). DROPS is `sk_drops`: every datagram the kernel
//! discarded for this socket after routing it here (receive buffer full,
//! `net.ipv4.udp_mem` exhausted, bad checksum, socket filter). It is the same
//! counter SO_RXQ_OVFL reports in a control message, but readable at any time
//! without receiving. It is a u32 that starts at 0 when the socket is created
//! and wraps at 2^32. For one sender on loopback,
//! `sent == received + kernel_drops` exactly once the queue is drained
//! (`queued_bytes_at_exit == 0`), unless the host-wide per-CPU backlog
//! overflowed first: `softnet_drops` is that counter's change during this run
//! (all sockets, all CPUs, /proc/net/softnet_stat column 2), `udp_in_errors`
//! the change of Udp InErrors + Udp6InErrors (all sockets; /proc/net/snmp,
//! /proc/net/snmp6) as a cross-check of kernel_drops.
//!
//! Types: `Config` (flags), `Receiver` (the socket and its pre-built
//! mmsghdr/iovec/buffer arrays, allocated once), `Tally` (the counts).
//!
//! Usage: udp_floor --bind 127.0.0.1:5514 [--rcvbuf 256MiB] [--prefill 1M]

use std::io::BufRead;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
#[path = "udp_common.rs"]
mod common;
use common::{cpu_seconds, monotonic_ns, parse_count, parse_duration_ns, parse_size};

/// Datagrams asked for per `recvmmsg` call by default (ringway's batch).
const DEFAULT_BATCH: usize = 64;
/// recvmmsg accepts at most UIO_MAXIOV (1024) messages per call.
const MAX_BATCH: usize = 1024;
const DEFAULT_RCVBUF_BYTES: usize = 256 << 20;
/// SO_RCVBUF(FORCE) takes an int and the kernel caps the request at
/// INT_MAX / 2 before doubling it.
const MAX_RCVBUF_BYTES: usize = (i32::MAX / 2) as usize;
/// Per-datagram receive buffer; ringway's `--udp-max-datagram` default.
const DEFAULT_MAX_DATAGRAM_BYTES: usize = 9000;
const MAX_DATAGRAM_LIMIT_BYTES: usize = 65_535;
/// Live mode: how long one wait for data may block before the loop re-checks
/// its stop conditions.
const POLL_TIMEOUT_MS: i32 = 50;
const DEFAULT_IDLE_EXIT_NS: u64 = 1_000_000_000;
/// `--start-after-quiet`: how often the queue size is sampled.
const QUIET_SAMPLE_NS: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Indices into the SO_MEMINFO array (enum in linux/sock_diag.h).
const SK_MEMINFO_RMEM_ALLOC: usize = 0;
const SK_MEMINFO_RCVBUF: usize = 1;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;
const _: () = assert!(SK_MEMINFO_DROPS as libc::c_int == libc::SK_MEMINFO_DROPS);
const _: () = assert!(SK_MEMINFO_RMEM_ALLOC as libc::c_int == libc::SK_MEMINFO_RMEM_ALLOC);
const _: () = assert!(SK_MEMINFO_RCVBUF as libc::c_int == libc::SK_MEMINFO_RCVBUF);
const _: () = assert!(SK_MEMINFO_DROPS + 1 == SK_MEMINFO_VARS);
const _: () = assert!(DEFAULT_BATCH <= MAX_BATCH && DEFAULT_BATCH > 0);
const _: () = assert!(DEFAULT_RCVBUF_BYTES <= MAX_RCVBUF_BYTES);

/// Where `--check-seq` looks for the sender's sequence number.
const SEQ_KEY: &[u8] = b"seq=";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const USAGE: &str = "\
udp_floor: the bare recvmmsg floor for ringway's UDP input.

Usage:
  udp_floor --bind ADDR:PORT --prefill N [--start-after-quiet MS] [options]
  udp_floor --bind ADDR:PORT [--duration D] [--idle-exit D] [options]

  --bind ADDR:PORT        where to listen: 127.0.0.1:5514, [::1]:5514; port 0
                          picks one (printed in the `ready` line)
  --rcvbuf SIZE           receive buffer to request: SO_RCVBUFFORCE (root /
                          CAP_NET_ADMIN; ignores net.core.rmem_max), else
                          SO_RCVBUF (clamped to rmem_max); the kernel doubles it
                          [default 256MiB; max 1GiB]
  --max-datagram BYTES    receive buffer per datagram; longer ones are
                          truncated and counted [default 9000]
  --batch N               datagrams per recvmmsg call [default 64; max 1024]
  --prefill N             prefill mode: wait for the go signal, drain the queue,
                          time the drain, expect exactly N datagrams
  --start-after-quiet MS  prefill: go once the queue is non-empty and has not
                          changed for MS milliseconds, instead of waiting for
                          a line (or EOF) on stdin
  --duration D            live: stop D after the first datagram [default 0 = none]
  --idle-exit D           live: stop when nothing arrived for D after the first
                          datagram [default 1s; 0 = never]
  --check-seq             parse seq=NNN in each datagram; report gaps and
                          reordering (costs CPU; off for floor numbers)
  -h, --help              this text

Prints `ready ADDR:PORT` on stdout once bound, then one JSON line when done:
  {\"mode\", \"received\", \"bytes\", \"truncated\", \"elapsed_s\", \"rate_per_s\",
   \"cpu_s\", \"kernel_drops\", \"rcvbuf_bytes\", \"queued_bytes_at_exit\",
   \"softnet_drops\", \"udp_in_errors\", ...}
kernel_drops = SO_MEMINFO[SK_MEMINFO_DROPS] of this socket.
Exit status: 0 done, 1 error or prefill count mismatch, 2 usage error.
";

#[derive(Debug)]
struct Config {
    bind: SocketAddr,
    rcvbuf_bytes: usize,
    max_datagram_bytes: usize,
    batch: usize,
    /// Some(N): prefill mode expecting N datagrams.
    prefill: Option<u64>,
    /// Prefill: start after the queue was quiet this long (else: stdin).
    start_after_quiet_ns: Option<u64>,
    /// Live: 0 = no limit.
    duration_ns: u64,
    /// Live: 0 = never.
    idle_exit_ns: u64,
    check_seq: bool,
}

fn main() {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("udp_floor: error: {message}\nTry 'udp_floor --help'.");
            std::process::exit(2);
        }
    };
    std::process::exit(match run(&config) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("udp_floor: error: {message}");
            1
        }
    });
}

fn run(config: &Config) -> Result<i32, String> {
    install_stop_handlers();
    let host_before = HostCounters::read();

    let socket = UdpSocket::bind(config.bind)
        .map_err(|error| format!("cannot bind {}: {error}", config.bind))?;
    let fd = socket.as_raw_fd();
    let how = set_rcvbuf(fd, config.rcvbuf_bytes)?;
    let meminfo = read_meminfo(fd).map_err(|error| format!("getsockopt(SO_MEMINFO): {error}"))?;
    let rcvbuf_bytes = meminfo[SK_MEMINFO_RCVBUF];
    eprintln!(
        "udp_floor: asked for {} B with {how}; the kernel reports {rcvbuf_bytes} B{}",
        config.rcvbuf_bytes,
        if how == "SO_RCVBUF" {
            " (SO_RCVBUFFORCE was refused: not root / no CAP_NET_ADMIN, so the request was \
             clamped to net.core.rmem_max before doubling)"
        } else {
            " (it doubles the request to leave room for skb overhead)"
        }
    );
    let local = socket.local_addr().map_err(|error| error.to_string())?;
    println!("ready {local}");

    let mut receiver = Receiver::new(fd, config.batch, config.max_datagram_bytes);
    let mut tally = Tally::default();
    let mode;
    let mut queued_bytes_at_start = None;
    let (elapsed_ns, cpu_s) = if let Some(expected) = config.prefill {
        mode = "prefill";
        wait_for_go(fd, config.start_after_quiet_ns)?;
        let queued = read_meminfo(fd).map_err(|e| e.to_string())?[SK_MEMINFO_RMEM_ALLOC];
        queued_bytes_at_start = Some(queued);
        let timing = drain(&mut receiver, &mut tally, config.check_seq)?;
        if tally.received != expected {
            eprintln!(
                "udp_floor: warning: expected {expected} datagrams, drained {} (kernel_drops and \
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
        let headers: Box<[libc::mmsghdr]> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: msghdr is plain old data; all-zero is a valid value
                // (no name, no control buffer).
                let mut msg_hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                msg_hdr.msg_iov = iovec;
                msg_hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr,
                    msg_len: 0,
                }
            })
            .collect();
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
    config: &Config,
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
                && config.duration_ns > 0
                && last_ns - first_ns >= config.duration_ns
            {
                break;
            }
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        if first.is_some() {
            let now_ns = monotonic_ns();
            if config.idle_exit_ns > 0 && now_ns - last_ns >= config.idle_exit_ns {
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
        while !STOP.load(Ordering::Relaxed) {
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
        if STOP.load(Ordering::Relaxed) {
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

/// Waits up to `timeout_ms` for `fd` to be readable (or at EOF / in error,
/// which a read then reports). Returns whether it is.
fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
    ready > 0 && pollfd.revents != 0
}

fn sleep_ns(duration_ns: u64) {
    std::thread::sleep(std::time::Duration::from_nanos(duration_ns));
}

fn install_stop_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Ok(None) means --help.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Config>, String> {
    let mut bind = None;
    let mut config = Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rcvbuf_bytes: DEFAULT_RCVBUF_BYTES,
        max_datagram_bytes: DEFAULT_MAX_DATAGRAM_BYTES,
        batch: DEFAULT_BATCH,
        prefill: None,
        start_after_quiet_ns: None,
        duration_ns: 0,
        idle_exit_ns: DEFAULT_IDLE_EXIT_NS,
        check_seq: false,
    };
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
            "--bind" => {
                let text = value()?;
                bind = Some(text.parse::<SocketAddr>().map_err(|_| {
                    format!("--bind {text}: expected ADDR:PORT, e.g. 127.0.0.1:5514 or [::1]:5514")
                })?);
            }
            "--rcvbuf" => config.rcvbuf_bytes = parse_size(&value()?, "--rcvbuf")?,
            "--max-datagram" => {
                config.max_datagram_bytes = parse_size(&value()?, "--max-datagram")?
            }
            "--batch" => config.batch = parse_count(&value()?, "--batch")? as usize,
            "--prefill" => config.prefill = Some(parse_count(&value()?, "--prefill")?),
            "--start-after-quiet" => {
                let text = value()?;
                let ms = text
                    .strip_suffix("ms")
                    .unwrap_or(&text)
                    .parse::<u64>()
                    .map_err(|_| format!("--start-after-quiet {text}: expected milliseconds"))?;
                config.start_after_quiet_ns = Some(ms * 1_000_000);
            }
            "--duration" => config.duration_ns = parse_duration_ns(&value()?, "--duration")?,
            "--idle-exit" => config.idle_exit_ns = parse_duration_ns(&value()?, "--idle-exit")?,
            "--check-seq" => config.check_seq = true,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    config.bind = bind.ok_or("--bind ADDR:PORT is required")?;
    if !(1..=MAX_BATCH).contains(&config.batch) {
        return Err(format!("--batch must be 1..={MAX_BATCH}"));
    }
    if !(1..=MAX_DATAGRAM_LIMIT_BYTES).contains(&config.max_datagram_bytes) {
        return Err(format!(
            "--max-datagram must be 1..={MAX_DATAGRAM_LIMIT_BYTES}"
        ));
    }
    // The kernel caps a request at INT_MAX / 2 (1GiB - 1) anyway; accept
    // 1GiB as a round spelling of that cap.
    if config.rcvbuf_bytes == 0 || config.rcvbuf_bytes > MAX_RCVBUF_BYTES + 1 {
        return Err("--rcvbuf must be 1 byte to 1GiB".into());
    }
    if config.start_after_quiet_ns.is_some() && config.prefill.is_none() {
        return Err("--start-after-quiet only applies to --prefill".into());
    }
    if config.prefill == Some(0) {
        return Err("--prefill needs a count above 0".into());
    }
    Ok(Some(config))
}
