//! What every load generator and floor shares: the stop flag and its
//! signal handlers, the clocks, the process's CPU time, one small
//! deterministic [`Rng`], and the value parsers of the command line (counts,
//! sizes, durations, socket addresses).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(crate) const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Set by SIGINT/SIGTERM (or a fatal error): every loop checks it and ends
/// the run, which then still prints its JSON line.
pub(crate) static STOP: AtomicBool = AtomicBool::new(false);

pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT/SIGTERM set [`STOP`]. Without `restart` a blocking call returns
/// EINTR, so a loop sees the stop at once; with it the call carries on
/// (senders whose every read has a timeout, and that look between writes).
pub(crate) fn install_stop_handlers(restart: bool) {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; the handler only stores to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            if restart {
                action.sa_flags = libc::SA_RESTART;
            }
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// For the floors, whose threads block in reads: SIGINT/SIGTERM are blocked
/// in every thread (call this before starting any) and the returned set is
/// waited for with [`wait_for_stop`].
pub(crate) fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain old data, initialised by sigemptyset; the
    // mask is set before any other thread exists, so all inherit it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Blocks until SIGINT or SIGTERM arrives.
pub(crate) fn wait_for_stop(signals: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: `signals` is an initialised set; `signal` a valid out pointer.
    unsafe { libc::sigwait(signals, &mut signal) };
}

pub(crate) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: CLOCK_MONOTONIC always exists; `now` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * NANOS_PER_SECOND + now.tv_nsec as u64
}

/// User + system CPU time of this process so far.
pub(crate) fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain old data, filled in by getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// splitmix64: small, fast, deterministic; good enough to vary test data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Value parsers (clap `value_parser = ...`)
// ---------------------------------------------------------------------------

/// Plain integer, or with a decimal suffix: k (1e3), M (1e6), G (1e9).
pub(crate) fn count(text: &str) -> Result<u64, String> {
    let (digits, multiplier) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1_000),
        Some(b'M') => (&text[..text.len() - 1], 1_000_000),
        Some(b'G') => (&text[..text.len() - 1], 1_000_000_000),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| "expected a count such as 1000, 100k or 1M".to_string())
}

/// [`count`] as a usize.
pub(crate) fn count_usize(text: &str) -> Result<usize, String> {
    count(text).and_then(|n| usize::try_from(n).map_err(|_| "too large".to_string()))
}

/// Bytes: a number (fractions allowed) with an optional unit: B, decimal
/// k/K/kB/KB, M/MB, G/GB (powers of 1000), or binary KiB, MiB, GiB.
pub(crate) fn size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a size such as 200, 64KiB, 256MiB or 1GB".to_string())?;
    let factor = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit {other:?}")),
    };
    Ok((number * factor) as usize)
}

/// `250ms`, `10s`, `2m`, or a bare (possibly fractional) number of seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_s) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            Ok(Duration::from_secs_f64(value * unit_s))
        }
        _ => Err("expected a duration such as 250ms, 10s, 2m or 5".to_string()),
    }
}

/// `ADDR:PORT`, a literal address or a name resolved now.
pub(crate) fn address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| "expected ADDR:PORT, e.g. 127.0.0.1:5514 or [::1]:5514".to_string())
}

/// Waits up to `timeout_ms` for `fd` to be readable (or at EOF / in error,
/// which a read then reports). Returns whether it is.
pub(crate) fn wait_readable(fd: libc::c_int, timeout_ms: i32) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
    ready > 0 && pollfd.revents != 0
}

/// Prints the floor's `ready ADDR:PORT` line and flushes it: the drivers
/// wait for it on a pipe.
pub(crate) fn print_ready(local: SocketAddr) {
    use std::io::Write;
    println!("ready {local}");
    let _ = std::io::stdout().flush();
}
