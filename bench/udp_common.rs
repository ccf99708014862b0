//! Helpers shared by the UDP benchmark programs (udp_blaster, udp_floor),
//! included by each with `#[path]`: flag values and clocks.

use super::NANOS_PER_SECOND;

/// Plain integer, or with a decimal suffix: k (1e3), M (1e6), G (1e9).
pub(crate) fn parse_count(text: &str, flag: &str) -> Result<u64, String> {
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
        .ok_or_else(|| format!("{flag} {text}: expected a count such as 1000, 100k or 1M"))
}

/// `250ms`, `10s`, `2m`, or a bare (possibly fractional) number of seconds.
pub(crate) fn parse_duration_ns(text: &str, flag: &str) -> Result<u64, String> {
    let (number, unit_ns) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e9)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60e9)
    } else {
        (text, 1e9)
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok((value * unit_ns) as u64),
        _ => Err(format!(
            "{flag} {text}: expected a duration such as 250ms, 10s, 2m or 5"
        )),
    }
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

/// Plain bytes, or with a binary suffix: KiB, MiB, GiB (B also accepted).
pub(crate) fn parse_size(text: &str, flag: &str) -> Result<usize, String> {
    let (digits, multiplier) = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("B", 1),
    ]
    .iter()
    .find_map(|&(suffix, m)| text.strip_suffix(suffix).map(|d| (d, m)))
    .unwrap_or((text, 1));
    digits
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{flag} {text}: expected a size such as 200, 64KiB or 256MiB"))
}
