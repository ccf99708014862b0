//! What a line holds: [`Fields`] (where `message`, `level`, times,
//! `resource` and `scope` sit, found by [`survey`]), and how severities,
//! times and trace ids are read.

use super::*;

/// Where the values that matter sit in a line (byte ranges of the line),
/// the first of each key.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) message: Option<Range<usize>>,
    pub(super) msg: Option<Range<usize>>,
    pub(super) level: Option<Range<usize>>,
    pub(super) severity: Option<Range<usize>>,
    /// `timestamp`, `time`, `ts`, `@timestamp`, in that preference.
    pub(super) times: [Option<Range<usize>>; 4],
    pub(super) resource: Option<Range<usize>>,
    pub(super) scope: Option<Range<usize>>,
}

/// Checks that `line` is one JSON object and finds its keys that matter.
pub(super) fn survey(line: &[u8]) -> Parse<Fields> {
    let mut json = Json::new(line);
    json.expect(b'{')?;
    let mut fields = Fields::default();
    let mut first = true;
    while let Some(key) = json.next_key(&mut first)? {
        json.peek();
        let start = json.at;
        json.skip(0)?;
        let range = Some(start..json.at);
        let slot = match key.raw {
            _ if key.escaped => continue,
            b"message" => &mut fields.message,
            b"msg" => &mut fields.msg,
            b"level" => &mut fields.level,
            b"severity" => &mut fields.severity,
            b"timestamp" => &mut fields.times[0],
            b"time" => &mut fields.times[1],
            b"ts" => &mut fields.times[2],
            b"@timestamp" => &mut fields.times[3],
            b"resource" => &mut fields.resource,
            b"scope" => &mut fields.scope,
            _ => continue,
        };
        if slot.is_none() {
            *slot = range;
        }
    }
    if json.peek().is_some() {
        return Err(Bad);
    }
    Ok(fields)
}

/// Severity number of a level name (case-insensitive), per the OTLP
/// ranges: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; syslog
/// names map into the same ranges.
pub(super) fn severity_of_name(name: &[u8]) -> i64 {
    const NAMES: [(&str, i64); 17] = [
        ("trace", 1),
        ("debug", 5),
        ("info", 9),
        ("information", 9),
        ("informational", 9),
        ("notice", 10),
        ("warn", 13),
        ("warning", 13),
        ("error", 17),
        ("err", 17),
        ("crit", 21),
        ("critical", 21),
        ("fatal", 21),
        ("alert", 22),
        ("emerg", 23),
        ("emergency", 23),
        ("panic", 23),
    ];
    NAMES
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
        .map_or(0, |&(_, number)| number)
}

/// Severity number of a numeric level: 1–24 as OTLP numbers; 10, 20, …, 60
/// as pino/bunyan levels (trace … fatal).
pub(super) fn severity_of_number(number: i64) -> Option<i64> {
    match number {
        1..=9 | 11..=19 | 21..=24 => Some(number),
        10 => Some(1),
        20 => Some(5),
        30 => Some(9),
        40 => Some(13),
        50 => Some(17),
        60 => Some(21),
        _ => None,
    }
}

/// Nanoseconds since the epoch of a time value: an RFC 3339 string, or
/// epoch seconds, milliseconds, microseconds or nanoseconds (told apart by
/// size).
pub(super) fn parse_time(raw: &[u8]) -> Option<u64> {
    if let Some(inner) = raw.strip_prefix(b"\"") {
        return parse_rfc3339(inner.strip_suffix(b"\"")?);
    }
    let unit_nanos = |whole: u64| match whole {
        0..100_000_000_000 => 1_000_000_000u64,
        100_000_000_000..100_000_000_000_000 => 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => 1_000,
        _ => 1,
    };
    // Plain decimals exactly (a double would round 1700000000.25).
    if raw
        .iter()
        .all(|&byte| byte.is_ascii_digit() || byte == b'.')
    {
        let text = std::str::from_utf8(raw).ok()?;
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let whole: u64 = whole.parse().ok()?;
        let unit = unit_nanos(whole);
        let places = unit.ilog10() as usize;
        let mut part = 0u64;
        for (index, digit) in fraction.bytes().enumerate() {
            if !digit.is_ascii_digit() {
                return None;
            }
            if index < places {
                part = part * 10 + u64::from(digit - b'0');
            }
        }
        for _ in fraction.len()..places {
            part *= 10;
        }
        return whole.checked_mul(unit)?.checked_add(part);
    }
    match number_value(raw).ok()? {
        Number::Double(double) if double.is_finite() && double >= 0.0 => {
            let unit = if double < 1e11 {
                1e9
            } else if double < 1e14 {
                1e6
            } else if double < 1e17 {
                1e3
            } else {
                1.0
            };
            let nanos = (double * unit).round();
            (nanos < u64::MAX as f64).then_some(nanos as u64)
        }
        _ => None,
    }
}

/// `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` (`t` or a space for `T`).
pub(super) fn parse_rfc3339(text: &[u8]) -> Option<u64> {
    let digits = |range: Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separators_ok = text.get(4) == Some(&b'-')
        && text.get(7) == Some(&b'-')
        && matches!(text.get(10), Some(b'T' | b't' | b' '))
        && text.get(13) == Some(&b':')
        && text.get(16) == Some(&b':');
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut fraction_nanos = 0u64;
    if text.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                fraction_nanos = fraction_nanos * 10 + u64::from(text[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..9 {
            fraction_nanos *= 10;
        }
    }
    let offset_seconds: i64 = match text.get(at) {
        Some(b'Z' | b'z') if at + 1 == text.len() => 0,
        Some(&sign @ (b'+' | b'-')) if text.len() == at + 6 && text[at + 3] == b':' => {
            let (hours, minutes) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            let offset = (hours * 3600 + minutes * 60) as i64;
            if sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let local = (days * 86_400 + hour * 3600 + minute * 60 + second) as i64;
    let seconds = u64::try_from(local - offset_seconds).ok()?;
    seconds
        .checked_mul(1_000_000_000)?
        .checked_add(fraction_nanos)
}

/// The bytes of an id written in hex, if it is `N` bytes of valid hex.
pub(super) fn parse_hex_id<const N: usize>(text: &Text<'_>) -> Option<[u8; N]> {
    if text.escaped || text.raw.len() != 2 * N {
        return None;
    }
    let mut id = [0u8; N];
    for (slot, pair) in id.iter_mut().zip(text.raw.chunks_exact(2)) {
        let nibble = |byte: u8| (byte as char).to_digit(16);
        *slot = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
    }
    Some(id)
}

/// Days from 1970-01-01 to a proleptic Gregorian date, for dates from 1970
/// on (H. Hinnant's `days_from_civil`); `None` for an impossible month or
/// a year before 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(super::days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(super::days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(super::days_from_civil(2024, 2, 29), Some(19_782));
        assert_eq!(super::days_from_civil(1969, 12, 31), None);
        assert_eq!(super::days_from_civil(2024, 13, 1), None);
    }
}
