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
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Converts into a buffer of exactly the promised size and checks the
    /// framing every record must have; returns the raw JSON line.
    fn convert_line(message: &[u8]) -> (String, bool) {
        let mut parser = SyslogParser::new();
        let mut out = vec![0u8; SyslogParser::max_json_bytes(message.len())];
        let (written, parsed) = parser.write_json(message, &mut out);
        assert!(written > 0, "a record is always written");
        let line = std::str::from_utf8(&out[..written])
            .unwrap_or_else(|error| panic!("output is not UTF-8 ({error}) for {message:?}"))
            .to_owned();
        assert!(line.ends_with('\n'), "one record ends with a newline");
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        (line, parsed)
    }

    fn convert(message: &[u8]) -> (Value, bool) {
        let (line, parsed) = convert_line(message);
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("invalid JSON ({error}): {line}"));
        assert!(value.is_object());
        if parsed {
            assert!(value.get("parse_error").is_none());
        } else {
            assert_eq!(value["parse_error"], json!(true));
            assert_eq!(value.as_object().map(|object| object.len()), Some(2));
        }
        (value, parsed)
    }

    fn assert_parse_error(message: &[u8]) {
        let (value, parsed) = convert(message);
        assert!(
            !parsed,
            "should not parse: {:?}",
            String::from_utf8_lossy(message)
        );
        let raw = String::from_utf8_lossy(trim_line_end(message)).into_owned();
        assert_eq!(value["message"], json!(raw));
    }

    #[test]
    fn rfc3164_with_pri_writes_every_field_in_order() {
        let (line, parsed) =
            convert_line(b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick");
        assert!(parsed);
        assert_eq!(
            line,
            concat!(
                r#"{"timestamp":"Oct 11 22:14:15","host":"mymachine","app":"su","procid":"230","#,
                r#""facility":"auth","severity":"crit","severity_code":2,"#,
                r#""message":"'su root' failed for lonvick"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn rfc3164_without_pri_has_no_facility_or_severity() {
        let (line, parsed) = convert_line(b"Jun 14 15:16:01 combo kernel: Linux version 2.6.5");
        assert!(parsed);
        assert_eq!(
            line,
            "{\"timestamp\":\"Jun 14 15:16:01\",\"host\":\"combo\",\"app\":\"kernel\",\"message\":\"Linux version 2.6.5\"}\n"
        );
    }

    #[test]
    fn rfc3164_tags_are_read_leniently() {
        let (value, parsed) =
            convert(b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure");
        assert!(parsed);
        assert_eq!(value["app"], "sshd(pam_unix)");
        assert_eq!(value["procid"], "19939");
        assert_eq!(value["message"], "authentication failure");

        let (value, parsed) = convert(b"<13>Feb  5 17:32:18 10.0.0.99 app[12] no colon");
        assert!(parsed);
        assert_eq!(value["host"], "10.0.0.99");
        assert_eq!(value["app"], "app");
        assert_eq!(value["procid"], "12");
        assert_eq!(value["message"], "no colon");

        // A first word without a colon is message, not a tag.
        let (value, parsed) = convert(b"Jun 19 04:09:11 combo syslogd 1.4.1: restart.");
        assert!(parsed);
        assert!(value.get("app").is_none());
        assert_eq!(value["message"], "syslogd 1.4.1: restart.");

        let (value, parsed) = convert(b"Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
        assert!(parsed);
        assert!(value.get("app").is_none());
        assert_eq!(value["message"], "-- root[2421]: ROOT LOGIN ON tty2");

        // A tag with nothing after it: no message key.
        let (value, parsed) = convert(b"Jun 14 15:16:01 combo cron:");
        assert!(parsed);
        assert_eq!(value["app"], "cron");
        assert!(value.get("message").is_none());
    }

    #[test]
    fn rfc3164_days_may_be_space_padded_or_not() {
        for (message, timestamp) in [
            (&b"Jul  1 09:00:55 host a: b"[..], "Jul  1 09:00:55"),
            (b"Nov 9 12:01:01 host a: b", "Nov 9 12:01:01"),
            (b"Dec 31 23:59:60 host a: b", "Dec 31 23:59:60"),
        ] {
            let (value, parsed) = convert(message);
            assert!(parsed, "{timestamp}");
            assert_eq!(value["timestamp"], timestamp);
            assert_eq!(value["host"], "host");
        }
    }

    #[test]
    fn rfc3164_accepts_an_rfc3339_timestamp() {
        let (value, parsed) = convert(b"<14>2024-05-01T10:00:00.123+02:00 web-1 nginx: GET /");
        assert!(parsed);
        assert_eq!(value["timestamp"], "2024-05-01T10:00:00.123+02:00");
        assert_eq!(value["host"], "web-1");
        assert_eq!(value["app"], "nginx");
        assert_eq!(value["facility"], "user");
        assert_eq!(value["severity"], "info");
    }

    #[test]
    fn rfc3164_without_timestamp_and_host_is_a_parse_error() {
        for message in [
            &b"<13>hello world"[..],
            b"just some text",
            b"Jun 14 15:16:01",
            b"Jun 14 15:16:01 ",
            b"Jun 14 15:16:01 sshd[12]: no host",
            b"Jun 14 15:16:01 sshd: no host",
            b"Jun 32 15:16:01 host a: bad day",
            b"Jun 14 25:16:01 host a: bad hour",
            b"jun 14 15:16:01 host a: lower-case month",
            b"Jun 14 15:16 host a: no seconds",
            b"- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: x",
        ] {
            assert_parse_error(message);
        }
    }

    #[test]
    fn rfc5424_full_message_with_structured_data_and_bom() {
        let (line, parsed) = convert_line(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 \
              [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \
              \xEF\xBB\xBFAn application event log entry...",
        );
        assert!(parsed);
        assert_eq!(
            line,
            concat!(
                r#"{"timestamp":"2003-10-11T22:14:15.003Z","host":"mymachine.example.com","#,
                r#""app":"evntslog","procid":"1234","msgid":"ID47","#,
                r#""facility":"local4","severity":"notice","severity_code":5,"#,
                r#""structured_data":{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"}},"#,
                r#""message":"An application event log entry..."}"#,
                "\n"
            )
        );
    }

    #[test]
    fn rfc5424_multiple_sd_elements_and_escaped_values() {
        let (value, parsed) = convert(
            br#"<34>1 2003-10-11T22:14:15.003Z host app 1 ID [a@1 x="q\"uote" y="back\\slash" z="br\]acket" w="lone\n"][b@2][c@3 k="v" k2=""] msg"#,
        );
        assert!(parsed);
        assert_eq!(
            value["structured_data"],
            json!({
                "a@1": {"x": "q\"uote", "y": "back\\slash", "z": "br]acket", "w": "lone\\n"},
                "b@2": {},
                "c@3": {"k": "v", "k2": ""},
            })
        );
        assert_eq!(value["message"], "msg");
    }

    #[test]
    fn rfc5424_nilvalues_omit_their_keys() {
        let (line, parsed) = convert_line(b"<13>1 - - - - - -");
        assert!(parsed);
        assert_eq!(
            line,
            "{\"facility\":\"user\",\"severity\":\"notice\",\"severity_code\":5}\n"
        );
        let (value, parsed) = convert(b"<13>1 - host - 42 - - hello");
        assert!(parsed);
        assert_eq!(
            value,
            json!({"host": "host", "procid": "42", "facility": "user",
            "severity": "notice", "severity_code": 5, "message": "hello"})
        );
    }

    #[test]
    fn rfc5424_without_pri_needs_a_real_timestamp() {
        let (value, parsed) =
            convert(b"1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time");
        assert!(parsed);
        assert_eq!(value["timestamp"], "2003-08-24T05:14:15.000003-07:00");
        assert_eq!(value["app"], "myproc");
        assert!(value.get("facility").is_none());
        assert_eq!(value["message"], "%% It's time");
        assert_parse_error(b"1 - host app - - - text");
    }

    #[test]
    fn facility_and_severity_names_follow_pri() {
        for (pri, facility, severity, code) in [
            (0, "kern", "emerg", 0),
            (34, "auth", "crit", 2),
            (86, "authpriv", "info", 6),
            (124, "solaris-cron", "warning", 4),
            (165, "local4", "notice", 5),
            (191, "local7", "debug", 7),
        ] {
            let message = format!("<{pri}>1 - host - - - -");
            let (value, parsed) = convert(message.as_bytes());
            assert!(parsed, "{message}");
            assert_eq!(value["facility"], facility, "{message}");
            assert_eq!(value["severity"], severity, "{message}");
            assert_eq!(value["severity_code"], code, "{message}");
        }
    }

    #[test]
    fn bad_pri_is_a_parse_error() {
        for message in [
            &b"<999>Jun 14 15:16:01 host app: x"[..],
            b"<192>Jun 14 15:16:01 host app: x",
            b"<abc>Jun 14 15:16:01 host app: x",
            b"<12",
            b"<12Jun 14 15:16:01 host app: x",
            b"<>Jun 14 15:16:01 host app: x",
            b"<012>Jun 14 15:16:01 host app: x",
            b"<00>1 - - - - - -",
            b"<1234>1 - - - - - -",
            b"<-1>1 - - - - - -",
        ] {
            assert_parse_error(message);
        }
    }

    #[test]
    fn truncated_rfc5424_header_is_a_parse_error() {
        let full = b"<34>1 2003-10-11T22:14:15.003Z host app 1 ID47 - msg";
        // Every cut before the SD loses a required field.
        let sd_start = full.len() - 5;
        for cut in 5..=sd_start {
            assert_parse_error(&full[..cut]);
        }
        for message in [
            &b"<34>1 2003-10-11 host app 1 ID47 - msg"[..],
            b"<34>1 2003-10-11T22:14:15.003 host app 1 ID47 - msg",
            b"<34>1 2003-13-11T22:14:15Z host app 1 ID47 - msg",
            b"<34>1  host app 1 ID47 - msg",
            b"<34>1 - host app 1 ID47 -msg",
            b"<34>1 - host app 1 ID47 x msg",
            b"<34>2 - host app 1 ID47 - msg",
        ] {
            assert_parse_error(message);
        }
    }

    #[test]
    fn malformed_structured_data_is_a_parse_error() {
        for message in [
            &b"<34>1 - h a p m [id"[..],
            b"<34>1 - h a p m [id k=\"v\"",
            b"<34>1 - h a p m [id k=\"v]",
            b"<34>1 - h a p m [id k=v] msg",
            b"<34>1 - h a p m [] msg",
            b"<34>1 - h a p m [id =\"v\"] msg",
            b"<34>1 - h a p m [id=\"v\"] msg",
            b"<34>1 - h a p m [id k=\"v\"]msg",
            b"<34>1 - h a p m [id k=\"v\\\"]",
        ] {
            assert_parse_error(message);
        }
    }

    #[test]
    fn empty_message_is_a_flagged_empty_record() {
        for message in [&b""[..], b"\r", b"\r\n", b"\0\0\0", b"\n"] {
            let (line, parsed) = convert_line(message);
            assert!(!parsed);
            assert_eq!(line, "{\"message\":\"\",\"parse_error\":true}\n");
        }
    }

    #[test]
    fn trailing_cr_newlines_and_nuls_are_stripped_and_spaces_kept() {
        let (value, parsed) = convert(b"Jun 14 15:16:01 combo su: ok \r\n\0\0");
        assert!(parsed);
        assert_eq!(value["message"], "ok ");
    }

    #[test]
    fn control_characters_are_escaped() {
        let (line, parsed) =
            convert_line(b"<13>1 - h\x01 a - - - tab\there\rcr\x1b[0m\x7f\x00\"q\\");
        assert!(parsed);
        assert_eq!(
            line,
            concat!(
                r#"{"host":"h\u0001","app":"a","facility":"user","severity":"notice","severity_code":5,"#,
                "\"message\":\"tab\\there\\rcr\\u001b[0m\x7f\\u0000\\\"q\\\\\"}\n"
            )
        );
        let (line, _) = convert_line(b"a\nb");
        assert_eq!(line, "{\"message\":\"a\\nb\",\"parse_error\":true}\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_the_record_still_parses() {
        let (value, parsed) =
            convert(b"Jun 14 15:16:01 h\xff app[\xc3]: caf\xc3\xa9 \xe2\x82 end\xc3");
        assert!(parsed, "syntax decides parsing, not encoding");
        assert_eq!(value["host"], "h\u{fffd}");
        assert_eq!(value["procid"], "\u{fffd}");
        assert_eq!(value["message"], "café \u{fffd} end\u{fffd}");

        let (value, parsed) = convert(b"<34>1 - h a - - [x@1 k=\"\xff\\]\xfe\"] \xef\xbb\xbf\xff");
        assert!(parsed);
        assert_eq!(value["structured_data"]["x@1"]["k"], "\u{fffd}]\u{fffd}");
        assert_eq!(value["message"], "\u{fffd}");
    }

    #[test]
    fn binary_garbage_gives_a_flagged_valid_record() {
        let garbage: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
        let (value, parsed) = convert(&garbage);
        assert!(!parsed);
        let text = value["message"].as_str().expect("message is a string");
        assert!(text.contains('\u{fffd}'));
        assert!(text.starts_with('\u{fffd}'));
    }

    #[test]
    fn largest_udp_payload_of_65507_bytes_converts() {
        let header = b"<14>1 2024-01-01T00:00:00Z host app - - - ";
        let mut message = header.to_vec();
        message.resize(65_507, b'x');
        message[60_000] = b'"';
        let (value, parsed) = convert(&message);
        assert!(parsed);
        assert_eq!(
            value["message"].as_str().map(str::len),
            Some(65_507 - header.len())
        );

        let worst = vec![1u8; 65_507];
        let (line, parsed) = convert_line(&worst);
        assert!(!parsed);
        assert!(line.len() <= SyslogParser::max_json_bytes(worst.len()));
        assert!(line.len() > 6 * 65_507, "every control byte is a \\u00XX");
    }

    #[test]
    fn structure_dense_messages_stay_within_the_size_bound() {
        // Each of these turns short input into the most JSON punctuation;
        // `convert_line` gives them a buffer of exactly `max_json_bytes`.
        let elements = [&b"<0>1 - - - - - "[..], &b"[a]".repeat(2000)].concat();
        let params = [&b"<0>1 - - - - - [a"[..], &b" b=\"\"".repeat(2000), b"]"].concat();
        let escapes = [
            &b"<0>1 - - - - - [a b=\""[..],
            &b"\\\\".repeat(2000),
            b"\"]",
        ]
        .concat();
        for message in [elements, params, escapes] {
            let (_, parsed) = convert(&message);
            assert!(parsed);
        }
    }

    #[test]
    fn too_small_output_buffer_writes_nothing() {
        let mut parser = SyslogParser::new();
        let message = b"Jun 14 15:16:01 combo kernel: x";
        let mut out = vec![0u8; SyslogParser::max_json_bytes(message.len()) - 1];
        assert_eq!(parser.write_json(message, &mut out), (0, false));
        assert_eq!(parser.write_json(b"", &mut []), (0, false));
    }

    #[test]
    fn word_at_a_time_escape_search_matches_byte_by_byte() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let len = (xorshift(&mut state) % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let random = xorshift(&mut state);
                    // Mostly plain bytes, so the first escape lands anywhere.
                    if random.is_multiple_of(16) {
                        (random >> 8) as u8
                    } else {
                        b'a' + (random >> 8) as u8 % 26
                    }
                })
                .collect();
            assert_eq!(
                crate::escape::find_json_escape(&bytes),
                bytes
                    .iter()
                    .position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
                "{bytes:?}"
            );
        }
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_bytes_never_panic_and_always_give_valid_json() {
        const ALPHABET: &[u8] =
            b"<>0123456789 -[]\"=\\:TZ.+aJun\r\n\t\x00\x01\x7f\x80\xbf\xc3\xa9\xe2\xef\xbb\xff";
        const PREFIXES: [&[u8]; 6] = [
            b"",
            b"<34>",
            b"<34>1 ",
            b"<165>1 2003-10-11T22:14:15.003Z h a p m ",
            b"<13>Jun 14 15:16:01 ",
            b"Jun  1 15:16:01 host ",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut parsed_count = 0;
        for _ in 0..100_000 {
            let prefix = PREFIXES[(xorshift(&mut state) % 6) as usize];
            let len = (xorshift(&mut state) % 48) as usize;
            let mut message = prefix.to_vec();
            for _ in 0..len {
                let random = xorshift(&mut state);
                message.push(if random.is_multiple_of(8) {
                    (random >> 8) as u8
                } else {
                    ALPHABET[(random >> 8) as usize % ALPHABET.len()]
                });
            }
            let (line, parsed) = convert_line(&message);
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("invalid JSON ({error}) for {message:?}: {line}"));
            assert_eq!(value.get("parse_error").is_some(), !parsed, "{line}");
            parsed_count += usize::from(parsed);
        }
        assert!(
            parsed_count > 1000,
            "the fuzz reaches the parsers: {parsed_count}"
        );
    }

    #[test]
    fn every_loghub_line_converts_and_syslog_style_ones_parse() {
        let directory = std::path::Path::new("../shared/data/loghub");
        if !directory.is_dir() {
            println!("skipped: no ../shared/data");
            return;
        }
        for (file, must_parse) in [
            ("Linux_2k.log", true),
            ("OpenSSH_2k.log", true),
            ("Thunderbird_2k.log", false),
        ] {
            let data = std::fs::read(directory.join(file)).expect("loghub file is readable");
            let mut lines = 0;
            for line in data
                .split(|&byte| byte == b'\n')
                .filter(|line| !line.is_empty())
            {
                let (value, parsed) = convert(line);
                lines += 1;
                if must_parse {
                    assert!(parsed, "{file}: {}", String::from_utf8_lossy(line));
                    assert!(value["host"].is_string() && value["timestamp"].is_string());
                } else {
                    // Thunderbird's own prefix comes before the syslog header.
                    assert!(!parsed, "{file}: {}", String::from_utf8_lossy(line));
                    assert_eq!(
                        value["message"].as_str().map(str::as_bytes),
                        Some(trim_line_end(line))
                    );
                }
            }
            assert_eq!(lines, 2000, "{file}");
        }

        let (value, _) = convert(
            b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \r",
        );
        assert_eq!(
            value,
            json!({"timestamp": "Jun 14 15:16:01", "host": "combo", "app": "sshd(pam_unix)",
                "procid": "19939",
                "message": "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 "})
        );
        let (value, _) = convert(
            b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\r",
        );
        assert_eq!(
            (&value["host"], &value["app"], &value["procid"]),
            (&json!("LabSZ"), &json!("sshd"), &json!("24200"))
        );
        let (value, _) = convert(b"Jul 27 14:41:57 combo syslog: syslogd startup succeeded\r");
        assert_eq!(
            (&value["app"], &value["message"]),
            (&json!("syslog"), &json!("syslogd startup succeeded"))
        );
    }

    #[test]
    fn converting_messages_allocates_nothing_after_warm_up() {
        let messages: Vec<Vec<u8>> = (0..1000)
            .map(|i| match i % 5 {
                0 => format!("Jun 14 15:16:{:02} combo sshd(pam_unix)[{i}]: authentication failure\r", i % 60).into_bytes(),
                1 => format!("<165>1 2003-10-11T22:14:15.003Z host app {i} ID [a@1 k=\"v\\\"{i}\"][b@2] \u{feff}msg {i}").into_bytes(),
                2 => format!("<{}>Jun  1 00:00:00 h a: caf\u{e9}\t\"{i}\"", i % 192).into_bytes(),
                3 => [&b"Jun 14 15:16:01 h\xff a: \xc3"[..], i.to_string().as_bytes()].concat(),
                _ => format!("<999>garbage {i}").into_bytes(),
            })
            .collect();
        let mut parser = SyslogParser::new();
        let mut out = vec![0u8; SyslogParser::max_json_bytes(4096)];
        let mut parsed = 0;
        for message in &messages {
            parsed += usize::from(parser.write_json(message, &mut out).1);
        }
        assert_eq!(parsed, 800);
        let before = crate::test_alloc::allocations_on_this_thread();
        let mut written = 0;
        for message in &messages {
            written += parser.write_json(message, &mut out).0;
        }
        assert_eq!(
            crate::test_alloc::allocations_on_this_thread() - before,
            0,
            "converting messages must not allocate"
        );
        assert!(written > 0);
    }
}
