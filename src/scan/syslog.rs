//! Syslog to JSON: one RFC 3164 or RFC 5424 message in, one JSON object out.
//!
//! [`SyslogParser::write_json`] reads one message (RFC 5426: one message per
//! datagram; a line from a file is one message too) and writes one JSON
//! object and `\n` into a buffer the caller sized with
//! [`SyslogParser::max_json_bytes`]. It allocates nothing: fields are slices
//! of the message, and a private `JsonWriter` escapes them straight into the
//! caller's buffer. Keys appear only when the message has the field, in this
//! order: `timestamp`, `host`, `app`, `procid`, `msgid`, `facility`,
//! `severity`, `severity_code`, `structured_data`, `message`.
//!
//! What is accepted, and what is not:
//! - `<PRI>` is optional; when present it must be `<0>`..`<191>` without
//!   leading zeros, or the message does not parse.
//! - RFC 5424 is `[<PRI>]1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`, fields
//!   one space apart; `-` (NILVALUE) omits the key. Without `<PRI>`, a
//!   message is taken as RFC 5424 only when the timestamp after `1 ` is a
//!   real one. A repeated SD-PARAM name is written as a repeated JSON key
//!   (RFC 5424 allows it; JSON parsers keep the last).
//! - RFC 3164 needs a timestamp (`Jun 14 15:16:01`, day space-padded or,
//!   as some senders write it, not; or an RFC 3339 timestamp, as rsyslog
//!   accepts) and a host. Without both the message is not guessed at: it
//!   does not parse. The tag is lenient like rsyslog's: `app:`,
//!   `app[procid]:` or `app[procid]`, where `app` is anything up to a space,
//!   `[` or `:` (`sshd(pam_unix)[19939]:`). Text that has no such tag (a
//!   first word without `:`, as in `syslogd 1.4.1: restart.`) is all
//!   message, with no `app`.
//! - A message that does not parse becomes
//!   `{"message":"<the message>","parse_error":true}`: nothing is lost.
//!   Loghub's Thunderbird lines (`- 1131566461 2005.11.09 dn228 Nov 9 …`)
//!   are such records: their prefix is that data set's own, not syslog,
//!   and skipping an unknown prefix to find a header would be a guess.
//! - Invalid UTF-8 is replaced, one U+FFFD per maximal invalid sequence
//!   (as `String::from_utf8_lossy` does); the record still parses if its
//!   syntax does. JSON cannot carry the raw bytes, and a flag per record
//!   would make a binary payload unparseable for no gain.
//! - Trailing `\r`, `\n` and NUL bytes are not part of the message; other
//!   trailing whitespace is kept.

use memchr::{memchr, memchr2};

/// The most JSON bytes one message byte can become: a control byte written
/// as `\u00XX`. Every other case is shorter: a structural byte of the
/// message (a space, `[`, `=`, a quote) becomes at most a few punctuation
/// bytes, and an invalid UTF-8 sequence becomes the 3-byte U+FFFD.
const MAX_JSON_BYTES_PER_MESSAGE_BYTE: usize = 6;
/// JSON bytes that come from no message byte: every key, the longest
/// facility and severity names, braces and the newline. A full RFC 5424
/// record needs 158; rounded up so a new key does not silently break the
/// bound.
const JSON_OVERHEAD_BYTES: usize = 256;
/// The highest valid PRI: facility 23 (local7), severity 7 (debug).
const HIGHEST_PRI: u8 = 191;
/// Written in place of each maximal invalid UTF-8 sequence.
const REPLACEMENT_CHARACTER: &[u8] = "\u{FFFD}".as_bytes();
/// RFC 5424 §6.4: a MSG in UTF-8 starts with a BOM, which is not content.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

const FACILITY_NAMES: [&[u8]; 24] = [
    b"kern",
    b"user",
    b"mail",
    b"daemon",
    b"auth",
    b"syslog",
    b"lpr",
    b"news",
    b"uucp",
    b"cron",
    b"authpriv",
    b"ftp",
    b"ntp",
    b"security",
    b"console",
    b"solaris-cron",
    b"local0",
    b"local1",
    b"local2",
    b"local3",
    b"local4",
    b"local5",
    b"local6",
    b"local7",
];
const SEVERITY_NAMES: [&[u8]; 8] = [
    b"emerg", b"alert", b"crit", b"err", b"warning", b"notice", b"info", b"debug",
];
const _: () = assert!(FACILITY_NAMES.len() * SEVERITY_NAMES.len() == HIGHEST_PRI as usize + 1);

const MONTH_NAMES: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Converts syslog messages to JSON lines. Holds no state today; a CPU
/// worker owns one per input so that scratch space, if a later format needs
/// it, is allocated once at start-up without changing callers.
pub struct SyslogParser {}

impl SyslogParser {
    #[allow(clippy::new_without_default, reason = "pub only for bench_api")]
    pub fn new() -> Self {
        Self {}
    }

    /// Worst-case bytes [`Self::write_json`] can write for a message of
    /// `message_len` bytes (JSON escaping expansion + keys + newline).
    pub fn max_json_bytes(message_len: usize) -> usize {
        message_len
            .saturating_mul(MAX_JSON_BYTES_PER_MESSAGE_BYTE)
            .saturating_add(JSON_OVERHEAD_BYTES)
    }

    /// Converts one message into exactly one JSON object followed by `\n`,
    /// written at the start of `out`. Returns (bytes written, parsed); a
    /// message that did not parse is written as
    /// `{"message":"<raw text>","parse_error":true}`.
    ///
    /// `out` must hold at least `max_json_bytes(message.len())` bytes; a
    /// shorter one gets nothing written and `(0, false)`.
    pub fn write_json(&mut self, message: &[u8], out: &mut [u8]) -> (usize, bool) {
        if out.len() < Self::max_json_bytes(message.len()) {
            return (0, false);
        }
        let message = trim_line_end(message);
        // Fields are cut at ASCII delimiters, which never fall inside a UTF-8
        // sequence, so one check of the whole message says whether every
        // field is valid; only messages that fail it pay for lossy writing.
        let lossy = std::str::from_utf8(message).is_err();
        let mut writer = JsonWriter {
            out,
            len: 0,
            lossy,
            overflowed: false,
        };
        let parsed = write_record(&mut writer, message).is_some();
        if !parsed {
            // Whatever the failed attempt wrote is overwritten.
            writer.len = 0;
            writer.raw(b"{\"message\":\"");
            writer.string_content(message);
            writer.raw(b"\",\"parse_error\":true");
        }
        writer.raw(b"}\n");
        // Unreachable while `max_json_bytes` is a true bound (the tests
        // check it); if it ever is not, the record is dropped, not a panic.
        debug_assert!(!writer.overflowed, "max_json_bytes is too small");
        if writer.overflowed {
            return (0, false);
        }
        (writer.len, parsed)
    }
}

/// Strips what a line or datagram may carry after the message: `\r` (CRLF
/// files), `\n` and NUL padding.
fn trim_line_end(message: &[u8]) -> &[u8] {
    let end = message
        .iter()
        .rposition(|&byte| !matches!(byte, b'\r' | b'\n' | 0))
        .map_or(0, |last| last + 1);
    &message[..end]
}

/// Writes the record for a message that parses, or returns `None` (having
/// possibly written part of one) when it does not.
fn write_record(writer: &mut JsonWriter, message: &[u8]) -> Option<()> {
    let (pri, rest) = split_pri(message)?;
    match rest.strip_prefix(b"1 ") {
        Some(header) => write_rfc5424(writer, pri, header),
        None => write_rfc3164(writer, pri, rest),
    }
}

/// Splits off `<PRI>`. `Some((None, message))` when there is none;
/// `None` when it is malformed or out of range.
fn split_pri(message: &[u8]) -> Option<(Option<u8>, &[u8])> {
    let Some(rest) = message.strip_prefix(b"<") else {
        return Some((None, message));
    };
    let digits = rest
        .iter()
        .take(4)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return None;
    }
    if digits > 1 && rest[0] == b'0' {
        return None;
    }
    let pri = rest[..digits]
        .iter()
        .fold(0u16, |value, &digit| value * 10 + u16::from(digit - b'0'));
    let pri = u8::try_from(pri).ok().filter(|&pri| pri <= HIGHEST_PRI)?;
    Some((Some(pri), &rest[digits + 1..]))
}

/// `header` is what follows `1 `: TIMESTAMP HOST APP PROCID MSGID SD [MSG].
fn write_rfc5424(writer: &mut JsonWriter, pri: Option<u8>, header: &[u8]) -> Option<()> {
    let (timestamp, rest) = split_field(header)?;
    let timestamp = nil_to_none(timestamp);
    match timestamp {
        Some(timestamp) if !is_rfc3339_timestamp(timestamp) => return None,
        // Without PRI, only a real timestamp tells `1 ` apart from text.
        None if pri.is_none() => return None,
        _ => {}
    }
    let (host, rest) = split_field(rest)?;
    let (app, rest) = split_field(rest)?;
    let (procid, rest) = split_field(rest)?;
    let (msgid, rest) = split_field(rest)?;

    writer.raw(b"{");
    let mut fields = FieldList::default();
    for (key, value) in [
        (&b"timestamp"[..], timestamp),
        (&b"host"[..], nil_to_none(host)),
        (&b"app"[..], nil_to_none(app)),
        (&b"procid"[..], nil_to_none(procid)),
        (&b"msgid"[..], nil_to_none(msgid)),
    ] {
        if let Some(value) = value {
            fields.string(writer, key, value);
        }
    }
    if let Some(pri) = pri {
        fields.priority(writer, pri);
    }
    let rest = match rest {
        [b'-', rest @ ..] => rest,
        [b'[', ..] => {
            fields.key(writer, b"structured_data");
            write_structured_data(writer, rest)?
        }
        _ => return None,
    };
    let message = match rest {
        [] => &[][..],
        [b' ', message @ ..] => message,
        _ => return None,
    };
    let message = message.strip_prefix(BYTE_ORDER_MARK).unwrap_or(message);
    if !message.is_empty() {
        fields.string(writer, b"message", message);
    }
    Some(())
}

/// `rest` is what follows `<PRI>`, if any: TIMESTAMP HOST [TAG] MSG.
fn write_rfc3164(writer: &mut JsonWriter, pri: Option<u8>, rest: &[u8]) -> Option<()> {
    let (timestamp, rest) = split_bsd_timestamp(rest).or_else(|| {
        let (timestamp, rest) = split_field(rest)?;
        is_rfc3339_timestamp(timestamp).then_some((timestamp, rest))
    })?;
    let rest = skip_spaces(rest);
    let host_len = memchr(b' ', rest).unwrap_or(rest.len());
    let host = &rest[..host_len];
    // A host ending in `:` or holding `[` is a tag: the sender left the
    // host out, and this parser does not guess one.
    if host.is_empty() || host.ends_with(b":") || memchr(b'[', host).is_some() {
        return None;
    }
    let tag = split_tag(skip_spaces(&rest[host_len..]));

    writer.raw(b"{");
    let mut fields = FieldList::default();
    fields.string(writer, b"timestamp", timestamp);
    fields.string(writer, b"host", host);
    if let Some(app) = tag.app {
        fields.string(writer, b"app", app);
    }
    if let Some(procid) = tag.procid {
        fields.string(writer, b"procid", procid);
    }
    if let Some(pri) = pri {
        fields.priority(writer, pri);
    }
    if !tag.message.is_empty() {
        fields.string(writer, b"message", tag.message);
    }
    Some(())
}

/// Splits off a header field and the one space after it. `None` when the
/// field is empty or is not followed by a space (a truncated header).
fn split_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr(b' ', bytes)?;
    (end > 0).then(|| (&bytes[..end], &bytes[end + 1..]))
}

fn nil_to_none(field: &[u8]) -> Option<&[u8]> {
    (field != b"-").then_some(field)
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != b' ')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The value of two ASCII digits.
fn two_digits(pair: &[u8]) -> Option<u8> {
    match *pair {
        [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some((tens - b'0') * 10 + (ones - b'0')),
        _ => None,
    }
}

/// `hh:mm:ss` with hours, minutes and seconds in range (a leap second too).
fn is_time_of_day(time: &[u8]) -> bool {
    time.len() == 8
        && time[2] == b':'
        && time[5] == b':'
        && two_digits(&time[0..2]).is_some_and(|hour| hour <= 23)
        && two_digits(&time[3..5]).is_some_and(|minute| minute <= 59)
        && two_digits(&time[6..8]).is_some_and(|second| second <= 60)
}

/// Splits off an RFC 3164 timestamp, `Mmm dd hh:mm:ss`, where the day is
/// space-padded (`Jul  1`) or, as some senders write it, not (`Nov 9`).
fn split_bsd_timestamp(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let month = bytes.get(..3)?;
    if !MONTH_NAMES.contains(&month) || bytes.get(3) != Some(&b' ') {
        return None;
    }
    let (day, time_start) = match *bytes.get(4..6)? {
        [b' ', ones @ b'1'..=b'9'] => (ones - b'0', 7),
        [ones @ b'1'..=b'9', b' '] => (ones - b'0', 6),
        _ => (two_digits(&bytes[4..6])?, 7),
    };
    if !(1..=31).contains(&day) || (time_start == 7 && bytes.get(6) != Some(&b' ')) {
        return None;
    }
    let end = time_start + 8;
    if !is_time_of_day(bytes.get(time_start..end)?) || bytes.get(end) != Some(&b' ') {
        return None;
    }
    Some((&bytes[..end], &bytes[end..]))
}

/// RFC 3339 as RFC 5424 §6.2.3 restricts it: `2003-10-11T22:14:15.003Z`,
/// `2003-08-24T05:14:15.000003-07:00`. Up to 9 fraction digits are taken,
/// as senders with nanosecond clocks write them.
fn is_rfc3339_timestamp(timestamp: &[u8]) -> bool {
    if timestamp.len() < 20 {
        return false;
    }
    let date_and_time = timestamp[..4].iter().all(u8::is_ascii_digit)
        && timestamp[4] == b'-'
        && two_digits(&timestamp[5..7]).is_some_and(|month| (1..=12).contains(&month))
        && timestamp[7] == b'-'
        && two_digits(&timestamp[8..10]).is_some_and(|day| (1..=31).contains(&day))
        && matches!(timestamp[10], b'T' | b't')
        && is_time_of_day(&timestamp[11..19]);
    if !date_and_time {
        return false;
    }
    let mut offset = &timestamp[19..];
    if let [b'.', fraction @ ..] = offset {
        let digits = fraction
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        offset = &fraction[digits..];
    }
    match *offset {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            two_digits(&[h1, h2]).is_some_and(|hours| hours <= 23)
                && two_digits(&[m1, m2]).is_some_and(|minutes| minutes <= 59)
        }
        _ => false,
    }
}

/// An RFC 3164 TAG and the MSG after it.
struct Tag<'m> {
    app: Option<&'m [u8]>,
    procid: Option<&'m [u8]>,
    message: &'m [u8],
}

/// Recognises `app:`, `app[procid]:` and `app[procid]` at the start of the
/// content; anything else is all message.
fn split_tag(content: &[u8]) -> Tag<'_> {
    let untagged = Tag {
        app: None,
        procid: None,
        message: content,
    };
    let Some(app_len) = content
        .iter()
        .position(|&byte| matches!(byte, b' ' | b'[' | b':'))
    else {
        return untagged;
    };
    if app_len == 0 {
        return untagged;
    }
    let app = Some(&content[..app_len]);
    if content[app_len] == b':' {
        return Tag {
            app,
            procid: None,
            message: strip_one_space(&content[app_len + 1..]),
        };
    }
    if content[app_len] != b'[' {
        return untagged;
    }
    let bracketed = &content[app_len + 1..];
    let Some(procid_len) = bracketed
        .iter()
        .position(|&byte| matches!(byte, b']' | b' ' | b'['))
    else {
        return untagged;
    };
    if procid_len == 0 || bracketed[procid_len] != b']' {
        return untagged;
    }
    let message = match &bracketed[procid_len + 1..] {
        [b':', message @ ..] => strip_one_space(message),
        [b' ', message @ ..] => message,
        [] => &[][..],
        _ => return untagged,
    };
    Tag {
        app,
        procid: Some(&bracketed[..procid_len]),
        message,
    }
}

/// The space that separates `tag:` from its message is not content.
fn strip_one_space(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b" ").unwrap_or(bytes)
}

/// Writes the SD-ELEMENTs at the start of `bytes` as a JSON object of
/// objects and returns what follows them; `None` when they are malformed.
/// Lenient where it costs nothing: extra spaces between parameters and
/// before `]`, and a backslash before any other byte is kept as written
/// (RFC 5424 §6.3.3).
fn write_structured_data<'m>(writer: &mut JsonWriter, mut bytes: &'m [u8]) -> Option<&'m [u8]> {
    writer.raw(b"{");
    let mut elements = FieldList::default();
    while let [b'[', element @ ..] = bytes {
        let id_len = element
            .iter()
            .position(|&byte| matches!(byte, b' ' | b']' | b'=' | b'"'))?;
        if id_len == 0 || matches!(element[id_len], b'=' | b'"') {
            return None;
        }
        elements.key_then(writer, &element[..id_len], b":{");
        bytes = &element[id_len..];
        let mut params = FieldList::default();
        loop {
            match bytes {
                [b']', rest @ ..] => {
                    bytes = rest;
                    break;
                }
                [b' ', rest @ ..] => bytes = rest,
                _ => {
                    let name_len = bytes
                        .iter()
                        .position(|&byte| matches!(byte, b'=' | b' ' | b']' | b'"'))?;
                    if name_len == 0
                        || bytes[name_len] != b'='
                        || bytes.get(name_len + 1) != Some(&b'"')
                    {
                        return None;
                    }
                    params.key_then(writer, &bytes[..name_len], b":\"");
                    bytes = write_param_value(writer, &bytes[name_len + 2..])?;
                    writer.raw(b"\"");
                }
            }
        }
        writer.raw(b"}");
    }
    writer.raw(b"}");
    Some(bytes)
}

/// Writes a PARAM-VALUE, unescaping `\"`, `\\` and `\]`, up to its closing
/// quote; returns what follows the quote, or `None` when there is none.
fn write_param_value<'m>(writer: &mut JsonWriter, mut value: &'m [u8]) -> Option<&'m [u8]> {
    loop {
        let at = memchr2(b'"', b'\\', value)?;
        if value[at] == b'"' {
            writer.string_content(&value[..at]);
            return Some(&value[at + 1..]);
        }
        match value.get(at + 1) {
            Some(&escaped @ (b'"' | b'\\' | b']')) => {
                writer.string_content(&value[..at]);
                writer.escaped_byte(escaped);
                value = &value[at + 2..];
            }
            _ => {
                writer.string_content(&value[..=at]);
                value = &value[at + 1..];
            }
        }
    }
}

/// Writes the separators between the keys of one JSON object: a record's,
/// or one of its structured data's (elements and their parameters).
#[derive(Default)]
struct FieldList {
    written: bool,
}

impl FieldList {
    fn key(&mut self, writer: &mut JsonWriter, key: &[u8]) {
        self.key_then(writer, key, b":");
    }

    /// The separator, the quoted `key`, then `after` (its colon and
    /// whatever opens the value) in one write.
    #[inline]
    fn key_then(&mut self, writer: &mut JsonWriter, key: &[u8], after: &[u8]) {
        if self.written {
            writer.raw(b",");
        }
        self.written = true;
        writer.quoted(key);
        writer.raw(after);
    }

    fn string(&mut self, writer: &mut JsonWriter, key: &[u8], value: &[u8]) {
        self.key(writer, key);
        writer.quoted(value);
    }

    fn priority(&mut self, writer: &mut JsonWriter, pri: u8) {
        let severity = pri % 8;
        self.string(writer, b"facility", FACILITY_NAMES[usize::from(pri / 8)]);
        self.string(writer, b"severity", SEVERITY_NAMES[usize::from(severity)]);
        self.key(writer, b"severity_code");
        writer.raw(&[b'0' + severity]);
    }
}

/// Appends JSON to the caller's buffer.
struct JsonWriter<'o> {
    out: &'o mut [u8],
    /// Bytes written so far; `out[..len]` is the record.
    len: usize,
    /// The message holds invalid UTF-8: strings go through the lossy path.
    lossy: bool,
    /// A write did not fit. Never set when `out` holds `max_json_bytes`.
    overflowed: bool,
}

impl JsonWriter<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.out.get_mut(self.len..end) {
            Some(destination) => {
                destination.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.overflowed = true,
        }
    }

    fn quoted(&mut self, bytes: &[u8]) {
        self.raw(b"\"");
        self.string_content(bytes);
        self.raw(b"\"");
    }

    /// Writes `bytes` escaped as the inside of a JSON string.
    fn string_content(&mut self, bytes: &[u8]) {
        if !self.lossy {
            self.escaped_utf8(bytes);
            return;
        }
        for chunk in bytes.utf8_chunks() {
            self.escaped_utf8(chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                self.raw(REPLACEMENT_CHARACTER);
            }
        }
    }

    /// `bytes` is valid UTF-8: only quotes, backslashes and control bytes
    /// need escaping, and the runs between them are copied whole.
    fn escaped_utf8(&mut self, bytes: &[u8]) {
        crate::escape::json_string_content(bytes, |part| self.raw(part));
    }

    /// One byte, escaped if JSON must escape it.
    fn escaped_byte(&mut self, byte: u8) {
        let (escape, len) = crate::escape::json_escape(byte);
        self.raw(&escape[..len]);
    }
}

#[cfg(test)]
mod tests;
