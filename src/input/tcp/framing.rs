//! How a TCP connection's bytes divide into records: [`Framing`] chosen
//! from its first bytes ([`detect_framing`]): RFC 6587 octet counting
//! (`LENGTH SP` then LENGTH bytes, [`parse_frame_header`]) when it starts
//! with `DIGITS SP <`, one record per line otherwise.

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
