//! A borrowing JSON reader for the OTLP encoder: [`Json`] walks a line
//! without allocating, [`Text`] is a string still escaped (written
//! unescaped straight into the body), [`Number`] a number. Lines the CPU
//! worker checked are read twice (see [`super::fields`]), so it is built
//! for speed over a line, not for reporting errors ([`Bad`]).

use super::*;

/// The line is not (the expected) JSON.
#[derive(Debug)]
pub(super) struct Bad;

pub(super) type Parse<T> = Result<T, Bad>;

/// A JSON string's bytes between its quotes, still escaped.
#[derive(Clone, Copy)]
pub(super) struct Text<'a> {
    pub(super) raw: &'a [u8],
    pub(super) escaped: bool,
}

impl Text<'_> {
    /// Writes the unescaped string (lossy UTF-8).
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        if !self.escaped {
            push_utf8_lossy(out, self.raw);
            return;
        }
        let raw = self.raw;
        let mut start = 0;
        let mut at = 0;
        while let Some(found) = memchr::memchr(b'\\', &raw[at..]) {
            let slash = at + found;
            push_utf8_lossy(out, &raw[start..slash]);
            at = slash + 2;
            let plain = match raw.get(slash + 1) {
                Some(b'n') => b'\n',
                Some(b't') => b'\t',
                Some(b'r') => b'\r',
                Some(b'b') => 8,
                Some(b'f') => 12,
                Some(b'u') => {
                    let mut code = hex4(raw, slash + 2).unwrap_or(0xFFFD);
                    at = (slash + 6).min(raw.len());
                    if (0xD800..0xDC00).contains(&code)
                        && raw.get(at..at + 2) == Some(b"\\u")
                        && let Some(low) =
                            hex4(raw, at + 2).filter(|low| (0xDC00..0xE000).contains(low))
                    {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        at += 6;
                    }
                    let character = char::from_u32(code).unwrap_or('\u{FFFD}');
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(character.encode_utf8(&mut utf8).as_bytes());
                    start = at;
                    continue;
                }
                Some(&other) => other, // `"`, `\`, `/` (and, leniently, anything)
                None => b'\\',
            };
            out.push(plain);
            start = at.min(raw.len());
            at = start;
        }
        push_utf8_lossy(out, &raw[start..]);
    }
}

pub(super) fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

pub(super) enum Number {
    Int(i64),
    Double(f64),
}

/// A JSON number: an integer that fits i64 stays one; anything with a
/// fraction or exponent (or beyond i64) is a double.
pub(super) fn number_value(raw: &[u8]) -> Parse<Number> {
    let text = std::str::from_utf8(raw).map_err(|_| Bad)?;
    if !raw.iter().any(|byte| matches!(byte, b'.' | b'e' | b'E'))
        && let Ok(int) = text.parse::<i64>()
    {
        return Ok(Number::Int(int));
    }
    text.parse::<f64>().map(Number::Double).map_err(|_| Bad)
}

pub(super) struct Json<'a> {
    pub(super) s: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Json<'a> {
    pub(super) fn new(s: &'a [u8]) -> Self {
        Self { s, at: 0 }
    }

    pub(super) fn peek(&mut self) -> Option<u8> {
        while let Some(&byte) = self.s.get(self.at) {
            if !matches!(byte, b' ' | b'\t' | b'\r' | b'\n') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    pub(super) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, byte: u8) -> Parse<()> {
        if self.eat(byte) { Ok(()) } else { Err(Bad) }
    }

    pub(super) fn string(&mut self) -> Parse<Text<'a>> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = self.s.get(self.at..).ok_or(Bad)?;
            let found = memchr::memchr2(b'"', b'\\', rest).ok_or(Bad)?;
            if rest[found] == b'"' {
                let raw = &self.s[start..self.at + found];
                self.at += found + 1;
                return Ok(Text { raw, escaped });
            }
            escaped = true;
            self.at += found + 2;
        }
    }

    pub(super) fn number(&mut self) -> Parse<&'a [u8]> {
        self.peek();
        let start = self.at;
        while matches!(
            self.s.get(self.at),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        if start == self.at {
            return Err(Bad);
        }
        Ok(&self.s[start..self.at])
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Parse<()> {
        self.peek();
        if self.s[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Bad)
        }
    }

    /// The next key of an object whose `{` was read; `None` at its `}`.
    pub(super) fn next_key(&mut self, first: &mut bool) -> Parse<Option<Text<'a>>> {
        if self.eat(b'}') {
            return Ok(None);
        }
        if !std::mem::take(first) {
            self.expect(b',')?;
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Whether an array whose `[` was read has another item.
    pub(super) fn next_item(&mut self, first: &mut bool) -> Parse<bool> {
        if self.eat(b']') {
            return Ok(false);
        }
        if !std::mem::take(first) {
            self.expect(b',')?;
        }
        Ok(true)
    }

    /// Reads over one value, checking it.
    pub(super) fn skip(&mut self, depth: usize) -> Parse<()> {
        if depth > MAX_READ_DEPTH {
            return Err(Bad);
        }
        match self.peek().ok_or(Bad)? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                self.at += 1;
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            b'[' => {
                self.at += 1;
                let mut first = true;
                while self.next_item(&mut first)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => number_value(self.number()?).map(|_| ()),
        }
    }

    /// The value at `range` of a line already checked.
    pub(super) fn at(s: &'a [u8], range: &Range<usize>) -> Self {
        Self {
            s: &s[..range.end],
            at: range.start,
        }
    }
}
