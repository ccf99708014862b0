//! Source fields (`source=true` on an input): where each record came from,
//! under OpenTelemetry's semantic-convention names ([`FILE_PATH_KEY`],
//! [`CLIENT_ADDRESS_KEY`], [`CLIENT_PORT_KEY`]).
//!
//! A file's path travels with a batch as its file mark (slot and
//! generation, looked up in the lane's offsets table once per batch). A
//! sender's address cannot: one UDP or TCP batch holds records of many
//! senders. So each buffer of a network input's pool has a side table of
//! [`SenderRuns`] (allocated with the pool, at start-up): runs of
//! consecutive records from one sender, at most a fixed number per batch
//! (a batch whose table is full is sent on, and the next sender starts a
//! new one). The I/O worker notes each record's sender as it copies the
//! record; the CPU worker walks the runs in step with the lines.
//!
//! [`Fields`] holds the `,"key":value` pairs of one source, written once
//! per file or per sender run, and writes them into records: a raw line
//! becomes `{"body":"…",FIELDS}` ([`write_raw_record`]), a JSON object
//! gets them merged before its closing brace, unless it has the key
//! already ([`write_merged_object`]). Nothing here allocates per record.

use crate::escape::{json_string_lossy, json_string_lossy_len, write_json_string_lossy};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// The path of the file a record was read from.
pub(crate) const FILE_PATH_KEY: &str = "log.file.path";
/// The address (IPv4 or IPv6, without brackets or port) of the sender.
pub(crate) const CLIENT_ADDRESS_KEY: &str = "client.address";
/// The sender's port, a JSON number.
pub(crate) const CLIENT_PORT_KEY: &str = "client.port";
/// The most pairs one source adds.
pub(crate) const MAX_FIELDS: usize = 2;
/// Sender runs one batch holds at most: one per this many buffer bytes,
/// within [`MIN_SENDER_RUNS`, `MAX_SENDER_RUNS`].
const BUFFER_BYTES_PER_SENDER_RUN: usize = 256;
const MIN_SENDER_RUNS: usize = 16;
const MAX_SENDER_RUNS: usize = 1024;

/// The sender runs each batch buffer of `buffer_bytes` can hold.
pub(crate) fn sender_runs_per_batch(buffer_bytes: usize) -> usize {
    (buffer_bytes / BUFFER_BYTES_PER_SENDER_RUN).clamp(MIN_SENDER_RUNS, MAX_SENDER_RUNS)
}

/// Consecutive records of one batch from one sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SenderRun {
    /// The index of the batch's first record after this run.
    records_end: u32,
    /// `None`: the receive brought no IP address (its records get no
    /// fields).
    sender: Option<SocketAddr>,
}

/// The senders of one batch's records, as runs, in record order. Its
/// capacity is fixed when it is made: it never grows.
#[derive(Debug, Default)]
pub(crate) struct SenderRuns {
    runs: Vec<SenderRun>,
}

impl SenderRuns {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            runs: Vec::with_capacity(capacity),
        }
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// A record from `sender` can be noted: it continues the last run, or
    /// there is room for a new one.
    pub fn fits(&self, sender: Option<SocketAddr>) -> bool {
        self.runs.last().is_some_and(|run| run.sender == sender)
            || self.runs.len() < self.runs.capacity()
    }

    /// Notes one more record, from `sender` (checked with [`Self::fits`]).
    pub fn note(&mut self, sender: Option<SocketAddr>) {
        match self.runs.last_mut() {
            Some(run) if run.sender == sender => run.records_end += 1,
            last => {
                let records_end = last.map_or(0, |run| run.records_end) + 1;
                debug_assert!(self.runs.len() < self.runs.capacity(), "checked by fits");
                if self.runs.len() < self.runs.capacity() {
                    self.runs.push(SenderRun {
                        records_end,
                        sender,
                    });
                }
            }
        }
    }

    /// Records noted.
    #[cfg(test)]
    pub fn records(&self) -> u32 {
        self.runs.last().map_or(0, |run| run.records_end)
    }

    /// Run `index`'s sender and its number of records.
    pub fn run(&self, index: usize) -> Option<(Option<SocketAddr>, u32)> {
        let run = self.runs.get(index)?;
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.runs[previous].records_end);
        Some((run.sender, run.records_end - start))
    }

    /// Each run's sender and its number of records, in order.
    #[cfg(test)]
    pub fn runs(&self) -> impl Iterator<Item = (Option<SocketAddr>, u32)> + '_ {
        (0..self.runs.len()).filter_map(|index| self.run(index))
    }
}

/// The address in a `sockaddr_in` or `sockaddr_in6` as the kernel wrote
/// it (recvmsg's `msg_name`); `None` for another family or a short one.
pub(crate) fn parse_sockaddr(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let octets: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// Appends `,"log.file.path":"PATH"` to `out` (bytes of the path that are
/// not UTF-8 replaced by U+FFFD).
pub(crate) fn push_file_path_field(path: &Path, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(FILE_PATH_KEY.as_bytes());
    out.extend_from_slice(b"\":\"");
    json_string_lossy(path.as_os_str().as_encoded_bytes(), |piece| {
        out.extend_from_slice(piece)
    });
    out.push(b'"');
}

/// The `,"key":value` pairs of one source, and where each pair ends.
pub(crate) struct Fields {
    bytes: Vec<u8>,
    keys: [&'static str; MAX_FIELDS],
    ends: [usize; MAX_FIELDS],
    count: usize,
}

/// Room reserved at start for the pairs (a sender's take under 100
/// bytes; a path longer than this grows it once).
const INITIAL_FIELD_BYTES: usize = 512;

impl Default for Fields {
    fn default() -> Self {
        Self {
            bytes: Vec::with_capacity(INITIAL_FIELD_BYTES),
            keys: [""; MAX_FIELDS],
            ends: [0; MAX_FIELDS],
            count: 0,
        }
    }
}

impl Fields {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// Every pair, as written.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The keys written, in order.
    pub fn keys(&self) -> &[&'static str] {
        &self.keys[..self.count]
    }

    /// The path of a file (see [`push_file_path_field`]).
    pub fn set_file_path(&mut self, path: &Path) {
        self.clear();
        push_file_path_field(path, &mut self.bytes);
        self.end_pair(FILE_PATH_KEY);
    }

    /// `,"client.address":"IP","client.port":PORT`: the IP as written
    /// without brackets (`::1`, `127.0.0.1`).
    pub fn set_sender(&mut self, sender: SocketAddr) {
        use std::io::Write;
        self.clear();
        // Formatting into a Vec with room never allocates: an IPv6
        // address is at most 45 bytes.
        let _ = write!(
            self.bytes,
            ",\"{CLIENT_ADDRESS_KEY}\":\"{}\"",
            sender.ip().to_canonical()
        );
        self.end_pair(CLIENT_ADDRESS_KEY);
        let _ = write!(self.bytes, ",\"{CLIENT_PORT_KEY}\":{}", sender.port());
        self.end_pair(CLIENT_PORT_KEY);
    }

    fn end_pair(&mut self, key: &'static str) {
        self.keys[self.count] = key;
        self.ends[self.count] = self.bytes.len();
        self.count += 1;
    }

    /// The pairs whose `present` flag is false, in order.
    fn missing(&self, present: [bool; MAX_FIELDS]) -> impl Iterator<Item = &[u8]> {
        (0..self.count)
            .filter(move |&index| !present[index])
            .map(|index| {
                let start = if index == 0 { 0 } else { self.ends[index - 1] };
                &self.bytes[start..self.ends[index]]
            })
    }
}

/// JSON bytes of a raw record that come from neither line nor fields:
/// `{"body":"`, `"`, `}` and the newline.
const RAW_RECORD_FIXED_BYTES: usize = 9 + 1 + 1 + 1;

/// The most bytes [`write_raw_record`] writes for `line` (a quick bound,
/// exact only when the line needs no escaping).
pub(crate) fn raw_record_bound(line: &[u8], fields: &Fields) -> usize {
    RAW_RECORD_FIXED_BYTES + 6 * line.len() + fields.bytes.len()
}

/// Exactly the bytes [`write_raw_record`] writes for `line`.
pub(crate) fn raw_record_len(line: &[u8], fields: &Fields) -> usize {
    RAW_RECORD_FIXED_BYTES + json_string_lossy_len(line) + fields.bytes.len()
}

/// Writes `{"body":"LINE"FIELDS}\n` at the start of `out` (at least
/// [`raw_record_len`] bytes); returns the bytes written. A trailing CR is
/// part of the line, as pass-through keeps it; bytes that are not UTF-8
/// become U+FFFD (JSON cannot carry them). Bytes of `out` after the record
/// may be overwritten (scratch of the line's one-pass writer).
pub(crate) fn write_raw_record(out: &mut [u8], line: &[u8], fields: &Fields) -> usize {
    const START: &[u8] = b"{\"body\":\"";
    out[..START.len()].copy_from_slice(START);
    let mut len = START.len();
    len += write_json_string_lossy(line, &mut out[len..]);
    for piece in [&b"\""[..], &fields.bytes, b"}\n"] {
        out[len..len + piece.len()].copy_from_slice(piece);
        len += piece.len();
    }
    len
}

/// The most bytes [`write_merged_object`] writes for `line`.
pub(crate) fn merged_object_bound(line: &[u8], fields: &Fields) -> usize {
    line.len() + fields.bytes.len() + 2
}

/// Writes the JSON object `line` (valid, with `members` members) with the
/// pairs of `fields` whose key it does not have (`present`) added before
/// its closing brace, and a newline; returns the bytes written (at most
/// [`merged_object_bound`]). Whitespace after the closing brace is left
/// out.
pub(crate) fn write_merged_object(
    out: &mut [u8],
    line: &[u8],
    members: usize,
    fields: &Fields,
    present: [bool; MAX_FIELDS],
) -> usize {
    let close = memchr::memrchr(b'}', line).expect("a valid JSON object ends with '}'");
    let mut len = 0;
    let mut put = |piece: &[u8]| {
        out[len..len + piece.len()].copy_from_slice(piece);
        len += piece.len();
    };
    put(&line[..close]);
    let mut first = members == 0;
    for pair in fields.missing(present) {
        // Each pair starts with its comma; the first member has none.
        put(if first { &pair[1..] } else { pair });
        first = false;
    }
    put(b"}\n");
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn some(text: &str) -> Option<SocketAddr> {
        Some(sender(text))
    }

    #[test]
    fn sender_runs_group_consecutive_records_and_stop_at_capacity() {
        let mut runs = SenderRuns::with_capacity(2);
        let (a, b, c) = (some("127.0.0.1:1"), some("[::1]:2"), None);
        assert!(runs.fits(a));
        runs.note(a);
        runs.note(a);
        assert!(runs.fits(b));
        runs.note(b);
        assert!(runs.fits(b), "continues the last run");
        assert!(!runs.fits(c), "a third sender needs a new batch");
        assert!(!runs.fits(a), "so does the first sender again");
        runs.note(b);
        assert_eq!(runs.records(), 4);
        assert_eq!(runs.runs().collect::<Vec<_>>(), vec![(a, 2), (b, 2)]);
        runs.clear();
        assert_eq!(runs.records(), 0);
        assert!(runs.fits(c));
    }

    /// What the I/O thread does per record (note its sender) and the CPU
    /// thread per run (write a sender's fields) allocates nothing.
    #[test]
    fn noting_senders_and_writing_their_fields_allocates_nothing() {
        let mut runs = SenderRuns::with_capacity(64);
        let mut fields = Fields::default();
        let senders = [some("[::1]:1"), some("127.0.0.1:65535"), None];
        let before = crate::test_alloc::allocations_on_this_thread();
        for round in 0..3 {
            runs.clear();
            for index in 0..64 {
                let sender = senders[index % 3];
                assert!(runs.fits(sender), "round {round}");
                runs.note(sender);
                if let Some(sender) = sender {
                    fields.set_sender(sender);
                }
            }
        }
        let allocations = crate::test_alloc::allocations_on_this_thread() - before;
        assert_eq!(allocations, 0);
        assert_eq!(runs.records(), 64);
    }

    #[test]
    fn sockaddrs_the_kernel_writes_are_parsed() {
        // SAFETY: plain data; zero is a valid value.
        let mut v4: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        v4.sin_family = libc::AF_INET as libc::sa_family_t;
        v4.sin_port = 5514u16.to_be();
        v4.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        // SAFETY: reading the bytes of a plain struct.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&v4 as *const libc::sockaddr_in).cast::<u8>(),
                size_of::<libc::sockaddr_in>(),
            )
        };
        assert_eq!(parse_sockaddr(bytes), Some(sender("127.0.0.1:5514")));
        // SAFETY: as above.
        let mut v6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        v6.sin6_port = 40000u16.to_be();
        v6.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        // SAFETY: as above.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&v6 as *const libc::sockaddr_in6).cast::<u8>(),
                size_of::<libc::sockaddr_in6>(),
            )
        };
        assert_eq!(parse_sockaddr(bytes), Some(sender("[::1]:40000")));
        assert_eq!(parse_sockaddr(&bytes[..10]), None);
        assert_eq!(parse_sockaddr(&[0; 28]), None, "AF_UNSPEC");
    }

    #[test]
    fn fields_are_written_with_their_otel_names() {
        let mut fields = Fields::default();
        fields.set_sender(sender("[::1]:514"));
        assert_eq!(
            fields.bytes(),
            br#","client.address":"::1","client.port":514"#
        );
        fields.set_sender(sender("[::ffff:10.0.0.1]:9"));
        assert_eq!(
            fields.bytes(),
            br#","client.address":"10.0.0.1","client.port":9"#,
            "an IPv4-mapped sender is written as IPv4"
        );
        fields.set_file_path(Path::new("/var/log/a \"b\".log"));
        assert_eq!(
            fields.bytes(),
            br#","log.file.path":"/var/log/a \"b\".log""#
        );
        assert_eq!(fields.keys(), [FILE_PATH_KEY]);
    }

    #[test]
    fn raw_lines_become_objects_and_objects_take_the_missing_fields() {
        let mut fields = Fields::default();
        fields.set_sender(sender("127.0.0.1:7"));
        let mut out = [0u8; 256];
        let line = b"a \"quoted\"\tline\xff\r";
        let written = write_raw_record(&mut out, line, &fields);
        assert_eq!(written, raw_record_len(line, &fields));
        assert!(written <= raw_record_bound(line, &fields));
        assert_eq!(
            &out[..written],
            "{\"body\":\"a \\\"quoted\\\"\\tline\u{FFFD}\\r\",\"client.address\":\"127.0.0.1\",\"client.port\":7}\n".as_bytes()
        );
        // Into exact room, and with lines long enough for the vector writer.
        for line in [&line[..], &line.repeat(9), &b"x\"".repeat(40)] {
            let mut exact = vec![0u8; raw_record_len(line, &fields)];
            assert_eq!(write_raw_record(&mut exact, line, &fields), exact.len());
            let mut roomy = vec![0u8; exact.len() + 100];
            let written = write_raw_record(&mut roomy, line, &fields);
            assert_eq!(&roomy[..written], &exact[..]);
            let record: serde_json::Value = serde_json::from_slice(&exact).unwrap();
            assert_eq!(
                record["body"],
                serde_json::json!(String::from_utf8_lossy(line))
            );
        }

        let written = write_merged_object(&mut out, br#"{"a":1} "#, 1, &fields, [false; 2]);
        assert_eq!(
            &out[..written],
            b"{\"a\":1,\"client.address\":\"127.0.0.1\",\"client.port\":7}\n"
        );
        let written = write_merged_object(&mut out, b"{ }", 0, &fields, [true, false]);
        assert_eq!(&out[..written], b"{ \"client.port\":7}\n");
        let written = write_merged_object(&mut out, b"{\"x\":{}}", 1, &fields, [true, true]);
        assert_eq!(&out[..written], b"{\"x\":{}}\n");
        assert!(written <= merged_object_bound(b"{\"x\":{}}", &fields));
    }
}
