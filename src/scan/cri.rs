//! Kubernetes container log lines: the CRI format ([`parse_cri`]), Docker's
//! json-file format ([`DockerParser`]), the record both become
//! ([`write_record`]) and the pod metadata of a kubelet log path
//! ([`k8s_fields`]).
//!
//! The CPU worker (`cpu_worker::container`) joins partial lines with
//! these; nothing here keeps state between lines or allocates per line.
//!
//! CRI (kubelet's `pkg/kubelet/kuberuntime/logs`, containerd's and CRI-O's
//! writers): `TIME SP STREAM SP TAG SP MESSAGE`, where
//! - TIME is RFC 3339 with optional fractional seconds of 1 to 9 digits and
//!   `Z` or a `±HH:MM` offset (containerd trims trailing zeros of the
//!   nanoseconds; CRI-O writes local offsets such as `+01:00`); it is kept
//!   as written;
//! - STREAM is `stdout` or `stderr`;
//! - TAG is `F` (full: the message ends here) or `P` (partial: the next
//!   line of the same stream continues it), optionally followed by `:` and
//!   more tag text (`F:xyz`), which kubelet accepts and ringway ignores;
//! - MESSAGE is every byte after the space that follows TAG, kept as bytes
//!   (a line that ends right after TAG has an empty message).
//!
//! Docker json-file: one JSON object a line with string keys `log`,
//! `stream` and `time` (RFC 3339, as for CRI; others, such as `attrs`, are ignored); a `log`
//! value that ends in `\n` is a whole message (the newline is not part of
//! it), one without is a partial continued by the stream's next line.

use crate::escape::{
    MAX_JSON_BYTES_PER_BYTE, json_string_content, json_string_lossy_len, write_json_string_lossy,
};
use crate::json_parse::PaddedParser;
use simd_json::Node;
use std::path::Path;

/// Longest RFC 3339 time a CRI line can carry: `YYYY-MM-DDTHH:MM:SS` (19),
/// `.` and 9 digits, and a `+HH:MM` offset.
pub(crate) const MAX_TIME_BYTES: usize = 19 + 10 + 6;
/// Bytes of a record that come from neither time, body nor metadata:
/// `{"time":"`, `","stream":"`, the stream's name, `","body":"`, `"`, `}\n`.
const RECORD_FIXED_BYTES: usize = 9 + 12 + 6 + 10 + 1 + 2;
/// JSON bytes of a record without metadata that come from no message
/// byte: the fixed bytes and the longest CRI time.
pub(crate) const RECORD_OVERHEAD_BYTES: usize = RECORD_FIXED_BYTES + MAX_TIME_BYTES;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
    /// A plain line's (`format=raw` with `multiline=`): its record has
    /// neither time nor stream.
    Plain,
}

impl Stream {
    pub fn name(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
            Stream::Plain => b"",
        }
    }

    fn parse(word: &[u8]) -> Option<Self> {
        match word {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One container log line, split into its parts (slices of the line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContainerLine<'a> {
    pub time: &'a [u8],
    pub stream: Stream,
    /// The message continues on the stream's next line.
    pub partial: bool,
    pub message: &'a [u8],
}

/// Splits one CRI line (without its `\n`); `None` when it is not one.
/// Inlined, as are [`record_bound`] and [`write_record`]: returned or
/// passed through memory, a line's or body's parts were stored one by one
/// and read back as one vector before the stores were done (the load
/// waits them out: 38% of the line loop's time, and half the record
/// writer's).
#[inline(always)]
pub(crate) fn parse_cri(line: &[u8]) -> Option<ContainerLine<'_>> {
    let space = time_end(line)?;
    let time = &line[..space];
    if !is_rfc3339(time) {
        return None;
    }
    // The stream between its spaces, compared as one word.
    const STDOUT: u64 = u64::from_le_bytes(*b" stdout ");
    const STDERR: u64 = u64::from_le_bytes(*b" stderr ");
    let (word, rest) = line[space..].split_first_chunk::<8>()?;
    let stream = match u64::from_le_bytes(*word) {
        STDOUT => Stream::Stdout,
        STDERR => Stream::Stderr,
        _ => return None,
    };
    let (partial, message) = match rest {
        // The tags runtimes write, without a search.
        [b'F', b' ', message @ ..] => (false, message),
        [b'P', b' ', message @ ..] => (true, message),
        _ => {
            let (tag, message) = match memchr::memchr(b' ', rest) {
                Some(space) => (&rest[..space], &rest[space + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let partial = match tag.split(|&byte| byte == b':').next() {
                Some(b"F") => false,
                Some(b"P") => true,
                _ => return None,
            };
            (partial, message)
        }
    };
    Some(ContainerLine {
        time,
        stream,
        partial,
        message,
    })
}

/// Shortest RFC 3339 time: `YYYY-MM-DDTHH:MM:SSZ`.
const MIN_TIME_BYTES: usize = 19 + 1;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Where the first space of `line` is, if it can end a time: looked for
/// only from [`MIN_TIME_BYTES`] to [`MAX_TIME_BYTES`], 8 bytes at a time.
/// A space before that is not found, nor is one after; either way the
/// line has no valid time (a time has no space in it), as when a search
/// from the start finds its first space there.
fn time_end(line: &[u8]) -> Option<usize> {
    const WINDOW: usize = MAX_TIME_BYTES + 1 - MIN_TIME_BYTES;
    const _: () = assert!(WINDOW == 16);
    let Some(window) = line.get(MIN_TIME_BYTES..MIN_TIME_BYTES + WINDOW) else {
        return memchr::memchr(b' ', line).filter(|&at| at >= MIN_TIME_BYTES);
    };
    let (low, high) = window.split_at(8);
    for (offset, word) in [(0, low), (8, high)] {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // (x - 1) & !x has a byte's high bit set when that byte of x is 0;
        // borrows can set it above a real one, never below, so the lowest
        // is the first space.
        let spaces = word ^ (ONES * u64::from(b' '));
        let found = spaces.wrapping_sub(ONES) & !spaces & HIGH_BITS;
        if found != 0 {
            return Some(MIN_TIME_BYTES + offset + (found.trailing_zeros() / 8) as usize);
        }
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM)`, `T` and `Z` in either case.
#[inline]
fn is_rfc3339(time: &[u8]) -> bool {
    if time.len() < 19 + 1 || time.len() > MAX_TIME_BYTES {
        return false;
    }
    let Some(head) = time.first_chunk::<19>() else {
        return false;
    };
    // `T` in either case: 0x20 set in byte 10 (the second word's third).
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    if !(matches(word(0), DATE)
        && matches(word(8) | 0x20 << 16, DAY_HOUR)
        && matches(word(11), CLOCK))
    {
        return false;
    }
    // The zone is read from the end, so the fraction is what is between.
    let rest = &time[head.len()..];
    let fraction = match rest {
        [fraction @ .., b'Z' | b'z'] => fraction,
        [fraction @ .., sign, h1, h2, b':', m1, m2]
            if matches!(sign, b'+' | b'-')
                && [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            fraction
        }
        _ => return false,
    };
    match fraction {
        [] => true,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            // The 8 bytes that end with the digits, those before them made
            // digits; a ninth digit on its own.
            let end = head.len() + fraction.len();
            let word = u64::from_le_bytes(time[end - 8..end].try_into().expect("8 bytes"));
            let word = match digits.len() {
                8.. => word,
                count => {
                    let before = (1u64 << (8 * (8 - count))) - 1;
                    (word & !before) | ((ONES * u64::from(b'0')) & before)
                }
            };
            matches(word, DIGITS) && (digits.len() < 9 || digits[0].is_ascii_digit())
        }
        _ => false,
    }
}

/// What [`matches`] compares a word with: a pattern of 8 bytes, `0` for
/// a digit and any other byte for itself, as the pattern's bytes and what
/// to add to each byte of a word XORed with them (0x76 keeps 0..=9 below
/// 0x80, 0x7f keeps only 0).
#[derive(Clone, Copy)]
struct Pattern {
    bytes: u64,
    add: u64,
}

impl Pattern {
    const fn new(pattern: &[u8; 8]) -> Self {
        let (mut bytes, mut add, mut at) = (0, 0, 0);
        while at < 8 {
            bytes |= (pattern[at] as u64) << (8 * at);
            add |= (if pattern[at] == b'0' { 0x76 } else { 0x7f }) << (8 * at);
            at += 1;
        }
        Self { bytes, add }
    }
}

const DATE: Pattern = Pattern::new(b"0000-00-");
const DAY_HOUR: Pattern = Pattern::new(b"00t00:00");
const CLOCK: Pattern = Pattern::new(b"00:00:00");
const DIGITS: Pattern = Pattern::new(b"00000000");

/// Whether the 8 bytes of `word` match `pattern`. XORed with the
/// pattern, a digit is 0..=9 and a matching byte 0; adding 0x76 or 0x7f
/// then sets no high bit, which any other byte has or gets. A byte that
/// carries into the next has its high bit set already: the carry cannot
/// make a mismatch pass.
fn matches(word: u64, pattern: Pattern) -> bool {
    let x = word ^ pattern.bytes;
    (x | x.wrapping_add(pattern.add)) & HIGH_BITS == 0
}

/// Parses Docker json-file lines with simd-json (a padded scratch copy,
/// buffers reused; see `json_parse`).
pub(crate) struct DockerParser {
    parser: PaddedParser,
    max_line_bytes: usize,
}

impl DockerParser {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            parser: PaddedParser::new(max_line_bytes),
            max_line_bytes,
        }
    }

    /// Hands `read` the line's parts (the message unescaped, its trailing
    /// `\n` removed and `partial` set when it had none) and returns what
    /// `read` returns; `None` when the line is not a json-file object with
    /// string `log`, `stream` (`stdout` or `stderr`) and `time` (RFC 3339).
    pub fn parse<R>(
        &mut self,
        line: &[u8],
        read: impl FnOnce(ContainerLine<'_>) -> R,
    ) -> Option<R> {
        if line.len() > self.max_line_bytes {
            return None;
        }
        self.parser.parse(line, |tape, _| {
            let (mut log, mut stream, mut time) = (None, None, None);
            for_each_member(tape?, |key, value| match (key, value) {
                ("log", Node::String(text)) => log = Some(text.as_bytes()),
                ("stream", Node::String(text)) => stream = Stream::parse(text.as_bytes()),
                ("time", Node::String(text)) => time = Some(text.as_bytes()),
                _ => {}
            })?;
            let log = log?;
            let time = time.filter(|time| is_rfc3339(time))?;
            let (message, partial) = match log.strip_suffix(b"\n") {
                Some(message) => (message, false),
                None => (log, true),
            };
            Some(read(ContainerLine {
                time,
                stream: stream?,
                partial,
                message,
            }))
        })
    }
}

/// Calls `each` with every key and value of the object at the top of
/// `tape`; `None` when it is not an object.
fn for_each_member<'t>(
    tape: &'t [Node<'t>],
    mut each: impl FnMut(&'t str, &'t Node<'t>),
) -> Option<()> {
    let Some(Node::Object { len, .. }) = tape.first() else {
        return None;
    };
    let mut at = 1;
    for _ in 0..*len {
        let Node::String(key) = tape.get(at)? else {
            return None;
        };
        let value = tape.get(at + 1)?;
        each(key, value);
        at += 1 + match value {
            Node::Object { count, .. } | Node::Array { count, .. } => 1 + count,
            _ => 1,
        };
    }
    Some(())
}

/// A message's body in a record: its text, or (`json=merge`) the members
/// of the JSON object it is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Body<'a> {
    Text(&'a [u8]),
    Members(Members<'a>),
}

/// The members of a message that is one JSON object: its bytes between
/// the braces, as written, and whether it has its own `time` and `stream`
/// (the record's are then left out: the message's win).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Members<'a> {
    pub bytes: &'a [u8],
    pub has_time: bool,
    pub has_stream: bool,
}

/// Finds the members of messages that are JSON objects (`json=merge`),
/// with simd-json (a padded scratch copy, buffers reused).
pub(crate) struct ObjectMessages {
    parser: PaddedParser,
}

impl ObjectMessages {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            parser: PaddedParser::new(max_line_bytes),
        }
    }

    /// `Some` when `message`, leading and trailing whitespace aside, is
    /// one valid JSON object.
    pub fn members<'m>(&mut self, message: &'m [u8]) -> Option<Members<'m>> {
        let object = message.trim_ascii();
        if object.first() != Some(&b'{') {
            return None;
        }
        let (has_time, has_stream) = self.parser.parse(object, |tape, _| {
            let (mut time, mut stream) = (false, false);
            for_each_member(tape?, |key, _| match key {
                "time" => time = true,
                "stream" => stream = true,
                _ => {}
            })?;
            Some((time, stream))
        })?;
        // Valid, so it ends with its `}`.
        Some(Members {
            bytes: object[1..object.len() - 1].trim_ascii(),
            has_time,
            has_stream,
        })
    }
}

/// Bytes [`write_record`] writes.
pub(crate) fn record_len(time: &[u8], stream: Stream, body: Body<'_>, metadata: &[u8]) -> usize {
    let mut measure = Measure(0);
    write_record_with(time, stream, body, metadata, &mut measure);
    measure.0
}

/// At least [`record_len`], from the lengths alone: every text byte
/// counted at its longest escape.
#[inline(always)]
pub(crate) fn record_bound(time: &[u8], stream: Stream, body: Body<'_>, metadata: &[u8]) -> usize {
    let mut bound = Bound(0);
    write_record_with(time, stream, body, metadata, &mut bound);
    bound.0
}

/// Writes `{"time":"…","stream":"…","body":"…"METADATA}\n` at the start of
/// `out`, which holds at least [`record_len`] bytes; returns the bytes
/// written (bytes of `out` after them may be overwritten as scratch).
/// `time` is RFC 3339 (as [`parse_cri`] and [`DockerParser`] pass it) or
/// empty, and written as it is; `metadata` is `,"key":value` pairs
/// ([`k8s_fields`]) or empty.
/// A [`Stream::Plain`] line's record is `{"body":"…"METADATA}\n`; a
/// [`Body::Members`] body is written as the record's own members in place
/// of `"body":…`, after `time` and `stream` unless it has its own.
#[inline(always)]
pub(crate) fn write_record(
    out: &mut [u8],
    time: &[u8],
    stream: Stream,
    body: Body<'_>,
    metadata: &[u8],
) -> usize {
    let mut writer = Writer { out, len: 0 };
    write_record_with(time, stream, body, metadata, &mut writer);
    writer.len
}

/// What [`write_record_with`] hands a record's pieces to.
trait RecordSink {
    /// Bytes that go in as they are.
    fn put(&mut self, piece: &[u8]);
    /// Bytes that go in as JSON string content (`json_string_lossy`).
    fn put_text(&mut self, text: &[u8]);
}

/// Counts the bytes exactly.
struct Measure(usize);

impl RecordSink for Measure {
    fn put(&mut self, piece: &[u8]) {
        self.0 += piece.len();
    }
    fn put_text(&mut self, text: &[u8]) {
        self.0 += json_string_lossy_len(text);
    }
}

/// Counts the bytes at most (without reading the text).
struct Bound(usize);

impl RecordSink for Bound {
    fn put(&mut self, piece: &[u8]) {
        self.0 += piece.len();
    }
    fn put_text(&mut self, text: &[u8]) {
        self.0 += text.len() * MAX_JSON_BYTES_PER_BYTE;
    }
}

/// Writes the bytes into `out`, which holds them all.
struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl RecordSink for Writer<'_> {
    #[inline]
    fn put(&mut self, piece: &[u8]) {
        self.out[self.len..self.len + piece.len()].copy_from_slice(piece);
        self.len += piece.len();
    }
    fn put_text(&mut self, text: &[u8]) {
        self.len += write_json_string_lossy(text, &mut self.out[self.len..]);
    }
}

/// Hands `sink` the pieces of a record, in order. Inlined into each
/// caller: called, its prologue, epilogue and spills were a tenth of the
/// CPU stage on container lines.
#[inline(always)]
fn write_record_with(
    time: &[u8],
    stream: Stream,
    body: Body<'_>,
    metadata: &[u8],
    sink: &mut impl RecordSink,
) {
    // The parsers pass RFC 3339 times (digits, `-:.+TZtz`), or none: written
    // as they are, nothing in them to escape.
    debug_assert!(
        time.is_empty() || is_rfc3339(time),
        "a container record's time is RFC 3339"
    );
    // The common record, in pieces of fixed length (copied without a call).
    if let (Body::Text(text), Stream::Stdout | Stream::Stderr) = (body, stream) {
        sink.put(b"{\"time\":\"");
        sink.put(time);
        sink.put(match stream {
            Stream::Stdout => b"\",\"stream\":\"stdout\",\"body\":\"",
            _ => b"\",\"stream\":\"stderr\",\"body\":\"",
        });
        sink.put_text(text);
        sink.put(b"\"");
        if !metadata.is_empty() {
            sink.put(metadata);
        }
        sink.put(b"}\n");
        return;
    }
    let (time_field, stream_field) = match body {
        _ if stream == Stream::Plain => (false, false),
        Body::Text(_) => (true, true),
        Body::Members(members) => (!members.has_time, !members.has_stream),
    };
    // Members, in order; each after the first is preceded by a comma.
    let mut first = true;
    let mut separator = || -> &[u8] {
        if std::mem::replace(&mut first, false) {
            b"{"
        } else {
            b","
        }
    };
    if time_field {
        sink.put(separator());
        sink.put(b"\"time\":\"");
        sink.put(time);
        sink.put(b"\"");
    }
    if stream_field {
        sink.put(separator());
        sink.put(b"\"stream\":\"");
        sink.put(stream.name());
        sink.put(b"\"");
    }
    match body {
        Body::Text(text) => {
            sink.put(separator());
            sink.put(b"\"body\":\"");
            sink.put_text(text);
            sink.put(b"\"");
        }
        Body::Members(members) if !members.bytes.is_empty() => {
            sink.put(separator());
            sink.put(members.bytes);
        }
        Body::Members(_) => {}
    }
    if first {
        // Nothing before the metadata: a plain line's empty object.
        sink.put(b"{");
        sink.put(metadata.strip_prefix(b",").unwrap_or(metadata));
    } else {
        sink.put(metadata);
    }
    sink.put(b"}\n");
}

/// Appends to `out` the Kubernetes fields of a kubelet log path, as
/// `,"key":value` pairs; appends nothing when the path matches neither
/// form. The path's tail is matched, so any directory may hold `pods/` or
/// `containers/`:
///
/// - `…/pods/NAMESPACE_POD_UID/CONTAINER/RESTART.log[.SUFFIX]` (RESTART
///   decimal digits; `.SUFFIX` is the kubelet's rotation, e.g.
///   `0.log.20261202-040929`): `k8s.namespace.name`, `k8s.pod.name`,
///   `k8s.pod.uid` (a static pod's config hash, as written),
///   `k8s.container.name`, `k8s.container.restart_count` (a number).
/// - `…/containers/POD_NAMESPACE_CONTAINER-ID.log` (ID 64 hex digits
///   after the last `-`): `k8s.pod.name`, `k8s.namespace.name`,
///   `k8s.container.name`, `container.id`.
///
/// NAMESPACE, POD and CONTAINER are Kubernetes names, which have no `_`:
/// each part between underscores must be non-empty, and there must be
/// exactly three (the pod directory's UID takes the rest).
pub(crate) fn k8s_fields(path: &Path, out: &mut Vec<u8>) {
    let Some(path) = path.to_str() else {
        return;
    };
    let mut parts = path.rsplit('/');
    let (Some(file), Some(parent)) = (parts.next(), parts.next()) else {
        return;
    };
    let grand = parts.next();
    let great = parts.next();
    if let (Some(pod_dir), Some("pods")) = (grand, great)
        && let Some(fields) = pod_fields(pod_dir, parent, file)
    {
        for (key, value) in fields.strings {
            push_string_field(out, key, value);
        }
        out.extend_from_slice(b",\"k8s.container.restart_count\":");
        out.extend_from_slice(fields.restart_count.as_bytes());
        return;
    }
    if parent == "containers"
        && let Some(stem) = file.strip_suffix(".log")
        && let Some((names, id)) = stem.rsplit_once('-')
        && id.len() == 64
        && id.bytes().all(|byte| byte.is_ascii_hexdigit())
        && let Some([pod, namespace, container]) = three_names(names)
    {
        push_string_field(out, "k8s.namespace.name", namespace);
        push_string_field(out, "k8s.pod.name", pod);
        push_string_field(out, "k8s.container.name", container);
        push_string_field(out, "container.id", id);
    }
}

struct PodFields<'a> {
    strings: [(&'static str, &'a str); 4],
    restart_count: &'a str,
}

fn pod_fields<'a>(pod_dir: &'a str, container: &'a str, file: &'a str) -> Option<PodFields<'a>> {
    let (restart_count, _) = file.split_once(".log")?;
    let after = &file[restart_count.len() + ".log".len()..];
    if !(after.is_empty() || after.starts_with('.'))
        || restart_count.is_empty()
        || restart_count.len() > 19
        || !restart_count.bytes().all(|byte| byte.is_ascii_digit())
        || container.is_empty()
    {
        return None;
    }
    let mut split = pod_dir.splitn(3, '_');
    let (namespace, pod, uid) = (split.next()?, split.next()?, split.next()?);
    if namespace.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    // Leading zeros would not be a JSON number.
    let restart_count = match restart_count.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    Some(PodFields {
        strings: [
            ("k8s.namespace.name", namespace),
            ("k8s.pod.name", pod),
            ("k8s.pod.uid", uid),
            ("k8s.container.name", container),
        ],
        restart_count,
    })
}

fn three_names(text: &str) -> Option<[&str; 3]> {
    let mut split = text.split('_');
    let names = [split.next()?, split.next()?, split.next()?];
    (split.next().is_none() && names.iter().all(|name| !name.is_empty())).then_some(names)
}

fn push_string_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":\"");
    json_string_content(value.as_bytes(), |piece| out.extend_from_slice(piece));
    out.push(b'"');
}

#[cfg(test)]
mod tests;
