//! Escaping bytes into the lines ringway writes, one definition each:
//! JSON string content ([`json_string_content`], used by the syslog
//! converter and the OTLP encoder; [`json_string_lossy`] for bytes that
//! may not be UTF-8, used by container records and source fields) and interior newlines as `#012`
//! ([`escaped_line_len`], [`write_escaped_line`], used by the UDP and TCP
//! inputs so one datagram or record stays one line).
//!
//! Hot path: none of these allocates; the JSON scan tests 8 bytes at a
//! time ([`find_json_escape`]); the one-pass writer of container records
//! ([`write_json_string_lossy`]) a vector at a time on x86_64 (`x86`).

#[cfg(target_arch = "x86_64")]
mod x86;

/// Written in place of each maximal invalid UTF-8 sequence.
const REPLACEMENT_CHARACTER: &[u8] = "\u{FFFD}".as_bytes();

/// `value` in decimal digits, written at the end of `digits`.
#[inline]
pub(crate) fn decimal(value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &digits[at..]
}

/// Calls `write` with the pieces of `bytes` (valid UTF-8) escaped as the
/// inside of a JSON string, in order: runs that need no escaping whole,
/// and each quote, backslash or control byte as its escape (`\"`, `\\`,
/// `\n`, `\r`, `\t` by name, the other control bytes as `\u00XX`).
#[inline]
pub(crate) fn json_string_content(mut bytes: &[u8], mut write: impl FnMut(&[u8])) {
    while let Some(at) = find_json_escape(bytes) {
        if at > 0 {
            write(&bytes[..at]);
        }
        let (escape, len) = json_escape(bytes[at]);
        write(&escape[..len]);
        bytes = &bytes[at + 1..];
    }
    if !bytes.is_empty() {
        write(bytes);
    }
}

/// Calls `write` with `bytes` (any bytes) escaped as JSON string content;
/// each maximal invalid UTF-8 sequence becomes U+FFFD (JSON cannot carry
/// raw bytes).
pub(crate) fn json_string_lossy(mut bytes: &[u8], mut write: impl FnMut(&[u8])) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                json_string_content(bytes, &mut write);
                return;
            }
            Err(error) => {
                let valid = error.valid_up_to();
                json_string_content(&bytes[..valid], &mut write);
                write(REPLACEMENT_CHARACTER);
                let skip = error.error_len().unwrap_or(bytes.len() - valid);
                bytes = &bytes[valid + skip..];
            }
        }
    }
}

/// Most bytes [`json_string_lossy`] writes for one byte: a control
/// byte's `\u00XX` (an invalid byte's U+FFFD takes 3).
pub(crate) const MAX_JSON_BYTES_PER_BYTE: usize = 6;

/// Writes what [`json_string_lossy`] hands out for `bytes` at the start of
/// `out`, which must hold at least [`json_string_lossy_len`] bytes, and
/// returns the bytes written. Bytes of `out` after those may be
/// overwritten (up to 63 of them, scratch of the block-wide copies).
///
/// One pass for valid UTF-8 (the common case), by whole blocks
/// ([`write_json_blocks`]: vectors on x86_64, 8-byte words elsewhere),
/// which also tells where the bytes outside ASCII are: only those are
/// checked as UTF-8 (no ASCII byte is part of another character, so the
/// text is valid when the span from its first such byte to its last is),
/// and the text is written again, by pieces, if they are not.
pub(crate) fn write_json_string_lossy(bytes: &[u8], out: &mut [u8]) -> usize {
    // Written as if valid: invalid bytes as they are take no more room
    // than the U+FFFD that replaces them, so this fits too.
    let Progress {
        read,
        mut len,
        mut non_ascii,
    } = write_json_blocks(bytes, out);
    for (at, &byte) in bytes.iter().enumerate().skip(read) {
        if !byte.is_ascii() {
            non_ascii.note(at, at + 1);
        }
        len += write_json_byte(byte, &mut out[len..]);
    }
    if non_ascii.is_empty() || is_utf8(non_ascii.of(bytes)) {
        return len;
    }
    let mut len = 0;
    json_string_lossy(bytes, |piece| {
        out[len..len + piece.len()].copy_from_slice(piece);
        len += piece.len();
    });
    len
}

/// Whether `bytes` is UTF-8. Under 64 bytes (the few characters outside
/// ASCII of most messages) a character at a time: `simdutf8` hands those
/// to the standard library's check, whose word-at-a-time setup made it
/// 8% of the CPU stage on container lines with one short word of CJK.
fn is_utf8(bytes: &[u8]) -> bool {
    if bytes.len() >= 64 {
        return simdutf8::basic::from_utf8(bytes).is_ok();
    }
    let mut at = 0;
    while at < bytes.len() {
        let first = bytes[at];
        if first < 0x80 {
            at += 1;
            continue;
        }
        // The second byte's range rules out overlong forms, surrogates
        // and code points past U+10FFFF (RFC 3629 §4); the bytes after it
        // are continuation bytes.
        let (width, low, high) = match first {
            0xc2..=0xdf => (2, 0x80, 0xbf),
            0xe0 => (3, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (3, 0x80, 0xbf),
            0xed => (3, 0x80, 0x9f),
            0xf0 => (4, 0x90, 0xbf),
            0xf1..=0xf3 => (4, 0x80, 0xbf),
            0xf4 => (4, 0x80, 0x8f),
            _ => return false,
        };
        if at + width > bytes.len() {
            return false;
        }
        let second = bytes[at + 1];
        let continues = |byte: u8| byte & 0xc0 == 0x80;
        if second < low
            || second > high
            || (width > 2 && !continues(bytes[at + 2]))
            || (width > 3 && !continues(bytes[at + 3]))
        {
            return false;
        }
        at += width;
    }
    true
}

/// How far a block writer got: `bytes[..read]` is written as
/// `out[..len]`; every byte of `bytes[..read]` that is 0x80 or above is in
/// `non_ascii`'s span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    read: usize,
    len: usize,
    non_ascii: NonAscii,
}

/// The span of a text from the first byte outside ASCII a writer saw to
/// the last (both 0x80 or above): `start..end`, empty when it saw none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NonAscii {
    start: usize,
    end: usize,
}

impl NonAscii {
    const NONE: Self = Self {
        start: usize::MAX,
        end: 0,
    };

    /// Takes in bytes outside ASCII from `first` to `end` (`end - 1` is
    /// the last of them).
    #[inline(always)]
    fn note(&mut self, first: usize, end: usize) {
        self.start = self.start.min(first);
        self.end = self.end.max(end);
    }

    /// Takes in the bytes `mask` marks, bit `i` for the byte at `at + i`.
    #[inline(always)]
    fn note_mask(&mut self, at: usize, mask: u64) {
        if mask != 0 {
            self.note(
                at + mask.trailing_zeros() as usize,
                at + 64 - mask.leading_zeros() as usize,
            );
        }
    }

    fn is_empty(self) -> bool {
        self.start >= self.end
    }

    /// The span's bytes of `bytes`.
    fn of(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start..self.end]
    }
}

/// Writes `bytes` as JSON string content into `out` (which holds at least
/// what they take) by whole blocks, leaving the last bytes (fewer than a
/// block, or more when `out` is nearly full) to the caller.
#[inline]
fn write_json_blocks(bytes: &[u8], out: &mut [u8]) -> Progress {
    #[cfg(target_arch = "x86_64")]
    {
        x86::write_json_blocks(bytes, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        write_json_words(bytes, out)
    }
}

/// Writes one byte as JSON string content at the start of `out`; returns
/// the bytes written (1, or its escape's 2 or 6).
#[inline]
fn write_json_byte(byte: u8, out: &mut [u8]) -> usize {
    if needs_json_escape(byte) {
        let (escape, escape_len) = json_escape(byte);
        out[..escape_len].copy_from_slice(&escape[..escape_len]);
        escape_len
    } else {
        out[0] = byte;
        1
    }
}

/// [`write_json_blocks`] without vectors: 8 bytes a step, as one word.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn write_json_words(bytes: &[u8], out: &mut [u8]) -> Progress {
    let (mut read, mut len, mut non_ascii) = (0, 0, NonAscii::NONE);
    // Each word is stored whole, then only its bytes before the first one
    // to escape are kept, and the escape written after them: `out` needs
    // room for a word past what is written, which the loop's condition
    // checks.
    while read + 8 <= bytes.len() && len + 8 <= out.len() {
        let word: [u8; 8] = bytes[read..read + 8]
            .try_into()
            .expect("a slice of 8 bytes");
        store(out, len, word);
        let value = u64::from_le_bytes(word);
        // Bytes after an escape are looked at again: they are the text's.
        let high = value & 0x8080_8080_8080_8080;
        if high != 0 {
            non_ascii.note(
                read + (high.trailing_zeros() / 8) as usize,
                read + 8 - (high.leading_zeros() / 8) as usize,
            );
        }
        let mask = json_escape_mask(value);
        if mask == 0 {
            read += 8;
            len += 8;
            continue;
        }
        let at = (mask.trailing_zeros() / 8) as usize;
        read += at + 1;
        len += at;
        // The escape is part of the output, which fits.
        let byte = word[at];
        len += if byte == b'"' || byte == b'\\' {
            // The common escapes (JSON in a message), without a table.
            store(out, len, [b'\\', byte]);
            2
        } else {
            write_json_byte(byte, &mut out[len..])
        };
    }
    Progress {
        read,
        len,
        non_ascii,
    }
}

/// Writes `bytes` at `out[at..]`: a copy of fixed size, which compiles to
/// plain stores (no call).
#[inline(always)]
fn store<const N: usize>(out: &mut [u8], at: usize, bytes: [u8; N]) {
    let slot: &mut [u8; N] = (&mut out[at..at + N])
        .try_into()
        .expect("a slice of N bytes");
    *slot = bytes;
}

/// Bytes [`json_string_lossy`] writes for `bytes`.
pub(crate) fn json_string_lossy_len(bytes: &[u8]) -> usize {
    let mut len = 0;
    json_string_lossy(bytes, |piece| len += piece.len());
    len
}

/// The escape of one byte JSON must escape (see [`json_string_content`]),
/// and its length; any other byte is returned as itself.
#[inline]
pub(crate) fn json_escape(byte: u8) -> ([u8; 6], usize) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    let named = |letter: u8| ([b'\\', letter, 0, 0, 0, 0], 2);
    match byte {
        b'"' => named(b'"'),
        b'\\' => named(b'\\'),
        b'\n' => named(b'n'),
        b'\r' => named(b'r'),
        b'\t' => named(b't'),
        0..=0x1f => (
            [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[usize::from(byte >> 4)],
                HEX_DIGITS[usize::from(byte & 0xf)],
            ],
            6,
        ),
        _ => ([byte, 0, 0, 0, 0, 0], 1),
    }
}

fn needs_json_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Index of the first byte JSON must escape, tested 8 bytes at a time.
pub(crate) fn find_json_escape(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        let mask = json_escape_mask(word);
        if mask != 0 {
            return Some(offset + (mask.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| needs_json_escape(byte))
        .map(|at| offset + at)
}

/// Sets the high bit of each byte of `word` that JSON must escape. Borrows
/// can also set it in bytes above a real match, never below one, so the
/// lowest set bit marks the first byte to escape.
fn json_escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    // (x - n) & !x has a byte's high bit set when that byte is below n (n <= 0x80).
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | is_quote | is_backslash) & HIGH_BITS
}

/// Bytes `payload` takes once interior newlines are written as `#012`.
pub(crate) fn escaped_line_len(payload: &[u8]) -> usize {
    match memchr::memchr(b'\n', payload) {
        None => payload.len(),
        Some(first) => {
            payload.len() + 3 * (1 + memchr::memchr_iter(b'\n', &payload[first + 1..]).count())
        }
    }
}

/// Writes `payload` with each `\n` as `#012` (rsyslog's escape of control
/// characters on receive), so one datagram stays one line. Returns the
/// bytes written; `out` must hold `escaped_line_len(payload)`.
pub(crate) fn write_escaped_line(payload: &[u8], out: &mut [u8]) -> usize {
    let mut written = 0;
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', payload) {
        let part = &payload[start..newline];
        out[written..written + part.len()].copy_from_slice(part);
        written += part.len();
        out[written..written + 4].copy_from_slice(b"#012");
        written += 4;
        start = newline + 1;
    }
    let rest = &payload[start..];
    out[written..written + rest.len()].copy_from_slice(rest);
    written + rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_every_magnitude() {
        for n in [0, 7, 10, 99, 100, 1234567890, u64::MAX] {
            let mut digits = [0u8; 20];
            assert_eq!(decimal(n, &mut digits), n.to_string().as_bytes());
        }
    }

    #[test]
    fn interior_newlines_are_escaped_and_lengths_agree() {
        for payload in [&b"plain"[..], b"a\nb", b"\n\n", b"", b"x\n"] {
            let mut out = vec![0u8; escaped_line_len(payload)];
            let written = write_escaped_line(payload, &mut out);
            assert_eq!(written, out.len());
            assert!(!out.contains(&b'\n'));
        }
        let mut out = vec![0u8; 16];
        let written = write_escaped_line(b"a\nb", &mut out);
        assert_eq!(&out[..written], b"a#012b");
    }

    fn escaped(text: &str) -> String {
        let mut out = Vec::new();
        json_string_content(text.as_bytes(), |part| out.extend_from_slice(part));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_one_pass_writer_writes_what_the_pieces_are_into_exact_room() {
        let mut specials: Vec<String> = (0u8..0x20).map(|byte| char::from(byte).into()).collect();
        specials.extend(["\"", "\\", "é", "日", "a"].map(String::from));
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for special in &specials {
            for at in 0..25 {
                let mut text = "x".repeat(24);
                text.insert_str(at, special);
                texts.push(text.clone().into_bytes());
                // Long enough for the word loop even with exact room.
                texts.push(text.repeat(4).into_bytes());
                texts.push(text.replace('x', "\"").repeat(4).into_bytes());
                texts.push(text.replace("xx", "a\\").repeat(4).into_bytes());
            }
        }
        texts.extend(
            [
                &b""[..],
                b"\xff",
                b"abcdefgh\xe2\x82",
                b"\"\"\"\"\"\"\"\"\"\x01",
            ]
            .map(Vec::from),
        );
        for text in texts {
            let mut want = Vec::new();
            json_string_lossy(&text, |piece| want.extend_from_slice(piece));
            assert_eq!(json_string_lossy_len(&text), want.len());
            // Exact room, and room to spare (the scratch past the end).
            for spare in [0, 3, 64] {
                let mut out = vec![0u8; want.len() + spare];
                let written = write_json_string_lossy(&text, &mut out);
                assert_eq!(&out[..written], &want[..], "{text:?} with {spare} spare");
            }
            assert!(want.len() <= text.len() * MAX_JSON_BYTES_PER_BYTE);
        }
    }

    #[test]
    fn the_one_pass_writer_ends_right_after_any_block_at_every_length() {
        // The last bytes after whole blocks are written as the end of the
        // last block, over bytes already written: every length past one
        // block, with an escape, a control byte or a character outside
        // ASCII at each position, in plain text and in text full of quotes.
        for len in 1..=100 {
            for at in 0..len {
                for special in ["\"", "\\", "\u{1}", "\n", "é", "日"] {
                    for fill in ["a", "a\"b"] {
                        let mut text = fill.repeat(len).into_bytes();
                        text.truncate(len);
                        text.splice(at..=at, special.bytes());
                        let mut want = Vec::new();
                        json_string_lossy(&text, |piece| want.extend_from_slice(piece));
                        for spare in [0, 64] {
                            let mut out = vec![0u8; want.len() + spare];
                            let written = write_json_string_lossy(&text, &mut out);
                            assert_eq!(&out[..written], &want[..], "{text:?}, {spare} spare");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_one_pass_writer_replaces_invalid_utf8_at_every_position() {
        let invalid: [&[u8]; 5] = [b"\xff", b"\xe2\x82", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80"];
        for bad in invalid {
            for at in 0..80 {
                for valid_before in [None, Some(0), Some(at / 2)] {
                    let mut text = vec![b'"'; at];
                    text.extend_from_slice(b"x\n");
                    if let Some(before) = valid_before {
                        text.splice(before..before, "é".bytes());
                    }
                    let end = text.len();
                    // Valid characters after it too: the bad bytes are
                    // inside the span from the first non-ASCII to the last.
                    for valid_after in [false, true] {
                        let mut text = text.clone();
                        text.splice(at.min(end)..at.min(end), bad.iter().copied());
                        if valid_after {
                            text.extend_from_slice("ü€".as_bytes());
                        }
                        let mut want = Vec::new();
                        json_string_lossy(&text, |piece| want.extend_from_slice(piece));
                        let mut out = vec![0u8; want.len()];
                        let written = write_json_string_lossy(&text, &mut out);
                        assert_eq!(&out[..written], &want[..], "{text:?}");
                        assert!(String::from_utf8(want).is_ok());
                    }
                }
            }
        }
    }

    #[test]
    fn the_short_utf8_check_agrees_with_the_standard_library() {
        // Every sequence of up to 3 bytes (each byte 0x00..=0xff, so
        // every lead byte beside every second and third), and 4-byte ones
        // around every boundary of RFC 3629's table, alone and after text.
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
        ];
        let edges = edges.into_iter().chain([
            0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ]);
        let edges: Vec<u8> = edges.collect();
        let check = |bytes: &[u8]| {
            for prefix in [&b""[..], "aé".as_bytes(), &[b'x'; 61][..], &[b'y'; 62][..]] {
                let text = [prefix, bytes].concat();
                assert_eq!(
                    is_utf8(&text),
                    std::str::from_utf8(&text).is_ok(),
                    "{text:x?}"
                );
            }
        };
        for first in 0..=255u8 {
            check(&[first]);
            for second in 0..=255u8 {
                check(&[first, second]);
                if first >= 0xc0 {
                    for third in 0..=255u8 {
                        check(&[first, second, third]);
                    }
                }
            }
        }
        for &a in &edges {
            for &b in &edges {
                for &c in &edges {
                    for &d in &edges {
                        check(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn json_escapes_read_back_at_every_position() {
        let mut bytes: Vec<char> = (0u8..0x20).map(char::from).collect();
        bytes.extend(['"', '\\', '/', 'é', '\u{7f}', 'a']);
        for special in bytes {
            for at in 0..17 {
                let mut text: String = "x".repeat(16);
                text.insert(at, special);
                let json = format!("\"{}\"", escaped(&text));
                let parsed: String = serde_json::from_str(&json).unwrap();
                assert_eq!(parsed, text, "{special:?} at {at}");
                let found = find_json_escape(text.as_bytes());
                let must = special < ' ' || special == '"' || special == '\\';
                assert_eq!(found, must.then_some(at), "{special:?} at {at}");
            }
        }
        assert_eq!(escaped(""), "");
        assert_eq!(
            escaped("\"\\\n\r\t\u{8}\u{c}\u{1f}é/"),
            r#"\"\\\n\r\t\u0008\u000c\u001fé/"#
        );
    }
}
