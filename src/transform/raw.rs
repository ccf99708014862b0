//! Where a value's raw bytes are in a line of valid JSON: the ends of
//! strings, values and members, found by short scans from what the tape
//! walk ([`super::record`]) already knows; and [`bytes_eq`], the compare
//! for the short strings keys and most values are.

use super::record::Member;

/// `a == b`, without a call to `memcmp` for the short strings keys and
/// most compared values are: two overlapping word compares.
#[inline]
pub(super) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        0 => true,
        1..=3 => a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, len - 4) == word4(b, len - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, len - 8) == word8(b, len - 8),
        _ => a == b,
    }
}

/// The string literals of an `IN` list (or `=`): each up to 16 bytes
/// long held as its length and the two words [`bytes_eq`] compares, so a
/// text's words are read once and each literal costs three integer
/// compares.
#[derive(Debug)]
pub(super) struct StringSet {
    /// `(len, head, tail)` of each literal of at most `SHORT_BYTES`.
    short: Box<[(usize, u64, u64)]>,
    /// The longer literals.
    long: Box<[Box<[u8]>]>,
}

/// The longest literal [`StringSet`] holds as two words.
const SHORT_BYTES: usize = 16;

impl StringSet {
    pub fn new(values: Vec<Box<[u8]>>) -> Self {
        let (short, long): (Vec<_>, Vec<_>) = values
            .into_iter()
            .partition(|value| value.len() <= SHORT_BYTES);
        Self {
            short: short
                .iter()
                .map(|value| {
                    let (head, tail) = words(value);
                    (value.len(), head, tail)
                })
                .collect(),
            long: long.into(),
        }
    }

    /// True when `text` is one of the literals.
    #[inline]
    pub fn contains(&self, text: &[u8]) -> bool {
        if text.len() <= SHORT_BYTES {
            let (head, tail) = words(text);
            self.short
                .iter()
                .any(|&(len, h, t)| len == text.len() && h == head && t == tail)
        } else {
            self.long.iter().any(|value| **value == *text)
        }
    }
}

/// Two words that together hold every byte of `bytes` (at most
/// `SHORT_BYTES`), at fixed places for its length: of two strings of one
/// length, equal exactly when the strings are.
#[inline(always)]
fn words(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    match len {
        0 => (0, 0),
        1..=3 => (
            u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16,
            0,
        ),
        4..=7 => (u64::from(word4(bytes, 0)), u64::from(word4(bytes, len - 4))),
        _ => (word8(bytes, 0), word8(bytes, len - 8)),
    }
}

#[inline(always)]
fn word4(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[inline(always)]
fn word8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

/// Index of the closing quote of the JSON string whose content starts at
/// `from` (the line is valid JSON, so there is one).
pub(super) fn string_end(bytes: &[u8], mut from: usize) -> usize {
    // Keys and most values are short: a plain loop over the first bytes
    // beats setting up a vector search.
    let short_end = bytes.len().min(from + 24);
    while from < short_end {
        match bytes[from] {
            b'"' => return from,
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
    while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[from.min(bytes.len())..]) {
        let at = from + found;
        if bytes[at] == b'"' {
            return at;
        }
        from = at + 2;
    }
    bytes.len()
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// True when `bytes[at..at + len]` is a whole string's content without
/// escapes: then its closing quote is at `at + len`. (Without a backslash
/// the first quote closes the string, and the unescaped length is the raw
/// one.)
pub(super) fn unescaped_at(bytes: &[u8], at: usize, len: usize) -> bool {
    bytes.get(at + len) == Some(&b'"') && memchr::memchr(b'\\', &bytes[at..at + len]).is_none()
}

/// Where the value of the member whose key (`key_len` bytes unescaped)
/// starts at `key_at` begins.
pub(super) fn value_start(bytes: &[u8], key_at: usize, key_len: usize) -> usize {
    // Keys are short: the scan beats a vector search for a backslash.
    let key_end = if key_len > 24 && unescaped_at(bytes, key_at, key_len) {
        key_at + key_len
    } else {
        string_end(bytes, key_at)
    };
    let colon = skip_whitespace(bytes, key_end + 1);
    skip_whitespace(bytes, colon + 1)
}

/// The end of the JSON value starting at `start` in valid JSON.
pub(super) fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start + 1) + 1,
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut at = start;
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => at = string_end(bytes, at + 1),
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bytes.len()
        }
        _ => {
            let mut at = start;
            while at < bytes.len()
                && !matches!(bytes[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                at += 1;
            }
            at
        }
    }
}

/// The end of top-level member `index` of `members` (before the comma that
/// follows it, or the object's closing brace), trailing whitespace trimmed.
pub(super) fn member_end(line: &[u8], members: &[Member], index: usize) -> usize {
    match members.get(index + 1) {
        Some(next) => end_before(line, next.start as usize),
        None => end_before(line, line.len()),
    }
}

/// The end of the member before `at` in valid JSON, where `at` is the
/// opening quote of the next member's key or the end of the line (whose
/// object ends there, maybe followed by white space): back over white
/// space, the comma or the closing brace, and white space again.
pub(super) fn end_before(line: &[u8], at: usize) -> usize {
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let mut end = at;
    while end > 0 && is_space(line[end - 1]) {
        end -= 1;
    }
    end = end.saturating_sub(1); // the comma or the brace
    while end > 0 && is_space(line[end - 1]) {
        end -= 1;
    }
    end
}

/// The start of the number, `true`, `false` or `null` that ends at `end`:
/// back to the colon or white space before it.
pub(super) fn token_start(line: &[u8], end: usize) -> usize {
    // Most tokens are shorter than a word: the last stop byte among the
    // eight before `end`, found at once. Between the colon and the token
    // only white space can stand, so the first byte at or below a space
    // found going back is a white space one, as the loop below finds.
    if let Some(before) = end.checked_sub(8).and_then(|at| line.get(at..end)) {
        let word = u64::from_le_bytes(before.try_into().expect("eight bytes"));
        let stops = stop_bytes(word);
        if stops != 0 {
            let last = (u64::BITS - 1 - stops.leading_zeros()) / 8;
            return end - 8 + last as usize + 1;
        }
    }
    let mut start = end;
    while start > 0 && !matches!(line[start - 1], b':' | b' ' | b'\t' | b'\n' | b'\r') {
        start -= 1;
    }
    start
}

/// The high bit of each byte of `word` that is a colon or at most a
/// space (white space, outside strings), exactly: byte-wise sums that
/// cannot carry into the next byte.
#[inline(always)]
fn stop_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const LOW7: u64 = ONES * 0x7f;
    const HIGH: u64 = ONES * 0x80;
    // High bit set when the byte is 0x21 or more.
    let above_space = (((word & LOW7) + ONES * (0x80 - 0x21)) | word) & HIGH;
    let colons = word ^ (ONES * u64::from(b':'));
    // High bit set when the byte is not a colon.
    let not_colon = (((colons & LOW7) + LOW7) | colons) & HIGH;
    !(above_space & not_colon) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_start_finds_every_token_after_its_colon_or_white_space() {
        // Tokens shorter and longer than the word read at once, after keys
        // with spaces and after every kind of white space.
        let tokens = [
            "1",
            "-2.5e3",
            "true",
            "false",
            "null",
            "1234567",
            "12345678",
            "-1234567890.125e-7",
        ];
        let befores = [
            r#"{"k":"#,
            r#"{"a b":"#,
            "{\"k\": ",
            "{\"k\" :\t",
            "{\"key name\":\r\n  ",
            ":",
        ];
        for before in befores {
            for token in tokens {
                let line = format!("{before}{token}}}");
                let end = before.len() + token.len();
                assert_eq!(token_start(line.as_bytes(), end), before.len(), "{line}");
            }
        }
        // Every byte value before a colon: only the colon and white space
        // after it count.
        for byte in 0..=255u8 {
            let mut line = vec![byte; 6];
            line.extend_from_slice(b":12}");
            assert_eq!(token_start(&line, 9), 7, "{byte}");
        }
    }

    #[test]
    fn string_set_tells_every_differing_byte_at_every_length() {
        let a: Vec<u8> = (b'a'..=b'z').collect();
        for len in 0..a.len() {
            let set = StringSet::new(vec![a[..len].into(), b"other".as_slice().into()]);
            assert!(set.contains(&a[..len]), "{len}");
            assert!(!set.contains(&a[..len + 1]), "{len}");
            assert!(set.contains(b"other"));
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] = b'#';
                assert!(!set.contains(&b), "{len} {at}");
            }
        }
        assert!(!StringSet::new(Vec::new()).contains(b""));
    }

    #[test]
    fn bytes_eq_tells_every_differing_byte_at_every_length() {
        let a: Vec<u8> = (b'a'..=b'z').collect();
        for len in 0..a.len() {
            assert!(bytes_eq(&a[..len], &a[..len]));
            assert!(!bytes_eq(&a[..len], &a[..len + 1]));
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] = b'#';
                assert!(!bytes_eq(&a[..len], &b), "{len} {at}");
            }
        }
    }
}
