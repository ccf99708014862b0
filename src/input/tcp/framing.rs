//! How a TCP connection's bytes divide into records: [`Framing`] chosen
//! from its first bytes ([`detect_framing`]): RFC 6587 octet counting
//! (`LENGTH SP` then LENGTH bytes, [`parse_frame_header`]) when it starts
//! with `DIGITS SP <`, one record per line otherwise; and the reader's
//! steps that cut a connection's bytes into records and write them to the
//! lane's batches (`TcpReader::frame`, `TcpReader::emit`).

use super::Emit;
use crate::escape::{escaped_line_len, write_escaped_line};

/// Longest an RFC 6587 length may be, in digits (lengths up to 1 GiB).
pub(super) const MAX_LENGTH_DIGITS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// Not decided yet: too few bytes seen.
    Unknown,
    /// One record per line.
    Lines,
    /// RFC 6587 octet counting: `LENGTH SP` then LENGTH bytes.
    Octets,
}

/// Octet counting when the connection starts with `DIGITS SP <`; newline
/// framing otherwise; `Unknown` while too few bytes tell.
pub(super) fn detect_framing(bytes: &[u8], eof: bool) -> Framing {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || bytes[0] == b'0' || digits > MAX_LENGTH_DIGITS {
        return Framing::Lines;
    }
    match (bytes.get(digits), bytes.get(digits + 1)) {
        (Some(b' '), Some(b'<')) => Framing::Octets,
        (Some(b' '), None) | (None, _) if !eof => Framing::Unknown,
        _ => Framing::Lines,
    }
}

pub(super) enum FrameHeader {
    Partial,
    Invalid,
    /// `header` bytes of `LENGTH SP`, then `length` bytes of message.
    Frame {
        header: usize,
        length: usize,
    },
}

pub(super) fn parse_frame_header(bytes: &[u8]) -> FrameHeader {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_LENGTH_DIGITS || (digits == 0 && !bytes.is_empty()) {
        return FrameHeader::Invalid;
    }
    match bytes.get(digits) {
        None => FrameHeader::Partial,
        Some(b' ') => {
            let length = std::str::from_utf8(&bytes[..digits])
                .ok()
                .and_then(|text| text.parse::<usize>().ok())
                .filter(|&length| (1..=1 << 30).contains(&length));
            match length {
                Some(length) => FrameHeader::Frame {
                    header: digits + 1,
                    length,
                },
                None => FrameHeader::Invalid,
            }
        }
        Some(_) => FrameHeader::Invalid,
    }
}

/// Framing a connection's bytes into records and writing them to the
/// lane's batches.
impl super::TcpReader {
    /// Frames the connection's bytes into records until it needs more
    /// bytes or room runs out.
    pub(super) fn frame(&mut self, slot: usize) -> Emit {
        let offset = self.slots.offset(slot);
        let max_line = self.max_line_bytes;
        loop {
            let conn = &self.conns[slot];
            let (start, filled, eof) = (conn.start, conn.filled, conn.eof);
            if start == filled {
                return Emit::Written;
            }
            match conn.framing {
                Framing::Unknown => {
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    let framing = detect_framing(bytes, eof);
                    if framing == Framing::Unknown {
                        return Emit::Written; // too few bytes to tell
                    }
                    self.conns[slot].framing = framing;
                }
                Framing::Lines => {
                    if conn.skip_line {
                        let bytes = &self.slots.slice(offset + start, filled - start)[..];
                        let conn = &mut self.conns[slot];
                        match memchr::memchr(b'\n', bytes) {
                            Some(newline) => {
                                conn.start += newline + 1;
                                conn.skip_line = false;
                            }
                            None => conn.start = filled,
                        }
                        continue;
                    }
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    let (record, consumed, truncated, skip) =
                        match memchr::memchr(b'\n', &bytes[..bytes.len().min(max_line + 1)]) {
                            Some(newline) => (newline, newline + 1, false, false),
                            // No newline within --max-line: the line is cut
                            // there and its rest skipped.
                            None if bytes.len() > max_line => (max_line, max_line, true, true),
                            // The last line of a closed connection.
                            None if eof => (bytes.len(), bytes.len(), false, false),
                            None => return Emit::Written, // wait for the rest
                        };
                    if let Emit::Blocked = self.emit(slot, offset + start, record, false, truncated)
                    {
                        return Emit::Blocked;
                    }
                    let conn = &mut self.conns[slot];
                    conn.start += consumed;
                    conn.skip_line = skip;
                }
                Framing::Octets => {
                    if conn.skip_bytes > 0 {
                        let conn = &mut self.conns[slot];
                        let skip = conn.skip_bytes.min(filled - start);
                        conn.start += skip;
                        conn.skip_bytes -= skip;
                        continue;
                    }
                    let bytes = &self.slots.slice(offset + start, filled - start)[..];
                    match parse_frame_header(bytes) {
                        FrameHeader::Partial if eof => {
                            // A cut header at the end: the bytes as a line.
                            self.conns[slot].framing = Framing::Lines;
                        }
                        FrameHeader::Partial => return Emit::Written,
                        FrameHeader::Invalid => {
                            // Not octet counting after all (or a sender's
                            // bug): newline framing from here on.
                            self.pass_invalid += 1;
                            self.conns[slot].framing = Framing::Lines;
                        }
                        FrameHeader::Frame { header, length } => {
                            let available = bytes.len() - header;
                            let keep = length.min(max_line);
                            if available < keep && !eof {
                                return Emit::Written; // wait for the frame
                            }
                            let keep = keep.min(available);
                            let truncated = keep < length;
                            if let Emit::Blocked =
                                self.emit(slot, offset + start + header, keep, true, truncated)
                            {
                                return Emit::Blocked;
                            }
                            let conn = &mut self.conns[slot];
                            conn.start += header + keep;
                            conn.skip_bytes = if eof { 0 } else { length - keep };
                        }
                    }
                }
            }
        }
    }

    /// Appends `len` bytes at `at` in the region as one record (a frame's
    /// newlines escaped as `#012`), starting a new batch when the current
    /// one is full.
    /// `cut`: the caller already cut this record (counted once either way).
    pub(super) fn emit(
        &mut self,
        slot: usize,
        at: usize,
        len: usize,
        escape: bool,
        cut: bool,
    ) -> Emit {
        let max_line = self.max_line_bytes;
        let (keep, escaped, escape_cut) = {
            let mut record = &self.slots.slice(at, len)[..];
            // A trailing newline in a frame is its end, not part of it.
            if escape {
                record = record.strip_suffix(b"\n").unwrap_or(record);
            }
            let escaped = if escape {
                escaped_line_len(record)
            } else {
                record.len()
            };
            if escaped <= max_line {
                (record.len(), escaped, false)
            } else {
                // Escaping grew it past a line: keep what fits.
                let mut keep = 0;
                let mut cost = 0;
                for &byte in record {
                    let next = if byte == b'\n' { 4 } else { 1 };
                    if cost + next > max_line {
                        break;
                    }
                    cost += next;
                    keep += 1;
                }
                (keep, cost, true)
            }
        };
        let needed = escaped + 1;
        let sender = self.conns[slot].peer;
        let Some(batch) = self.batcher.batch_for(needed, sender) else {
            return Emit::Blocked;
        };
        let record = &self.slots.slice(at, keep)[..];
        let out = &mut batch.buf[batch.len..];
        let written = if escaped != keep {
            write_escaped_line(record, out)
        } else {
            out[..keep].copy_from_slice(record);
            keep
        };
        out[written] = b'\n';
        batch.len += written + 1;
        self.pass_truncated += u64::from(cut || escape_cut);
        Emit::Written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_detected_from_the_first_bytes() {
        assert_eq!(detect_framing(b"12 <34>1 x", false), Framing::Octets);
        assert_eq!(detect_framing(b"12 hello", false), Framing::Lines);
        assert_eq!(detect_framing(b"2024-01-01 x", false), Framing::Lines);
        assert_eq!(detect_framing(b"{\"a\":1}", false), Framing::Lines);
        assert_eq!(detect_framing(b"<34>x", false), Framing::Lines);
        assert_eq!(detect_framing(b"123", false), Framing::Unknown);
        assert_eq!(detect_framing(b"123 ", false), Framing::Unknown);
        assert_eq!(detect_framing(b"123 ", true), Framing::Lines);
        assert_eq!(detect_framing(b"0 <1>", false), Framing::Lines);
    }

    #[test]
    fn frame_headers_parse_or_are_refused() {
        assert!(matches!(
            parse_frame_header(b"5 hello"),
            FrameHeader::Frame {
                header: 2,
                length: 5
            }
        ));
        assert!(matches!(parse_frame_header(b"12"), FrameHeader::Partial));
        assert!(matches!(parse_frame_header(b""), FrameHeader::Partial));
        assert!(matches!(parse_frame_header(b"x5 a"), FrameHeader::Invalid));
        assert!(matches!(parse_frame_header(b"0 a"), FrameHeader::Invalid));
        assert!(matches!(
            parse_frame_header(b"99999999999 a"),
            FrameHeader::Invalid
        ));
        assert!(matches!(parse_frame_header(b"5\n"), FrameHeader::Invalid));
    }
}
