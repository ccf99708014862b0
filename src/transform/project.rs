//! Writing a projected record: one JSON object, keys in SELECT order. A
//! plain field reference copies the value's raw bytes from the line (numbers
//! keep their spelling, strings their escapes); computed values are written
//! in their JSON types, strings escaped with [`crate::escape`]. The record
//! goes to an [`Out`]: the transformer's own buffer, or straight into the
//! free room of an output batch ([`Room`]).

use super::eval::{Cx, format_double};
use super::expr::{Column, ColumnValue, Projection};
use super::raw::member_end;
use super::record::{Member, Src, Val};

/// The UTF-8 replacement character, written for bytes of a raw line that
/// are not UTF-8 (JSON text must be).
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Where a projected record is written.
pub(crate) trait Out {
    fn put(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A fixed slice, written from its start. What does not fit is not
/// written: the record is then [`Room::written`] `None`, to be written
/// again where there is more room.
pub(crate) struct Room<'b> {
    buf: &'b mut [u8],
    len: usize,
    full: bool,
}

impl<'b> Room<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            full: false,
        }
    }

    /// How many bytes the record took, or `None` when it did not fit.
    pub fn written(&self) -> Option<usize> {
        (!self.full).then_some(self.len)
    }
}

impl Out for Room<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.full || end > self.buf.len() {
            self.full = true;
            return;
        }
        copy_short(&mut self.buf[self.len..end], bytes);
        self.len = end;
    }
}

/// `dst.copy_from_slice(src)` (same lengths) for the few bytes keys and
/// values mostly are, inline: two overlapping fixed-size copies instead of
/// a call to `memcpy` per piece.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    match len {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[len / 2] = src[len / 2];
            dst[len - 1] = src[len - 1];
        }
        4..=7 => copy_ends::<4>(dst, src),
        8..=15 => copy_ends::<8>(dst, src),
        16..=32 => copy_ends::<16>(dst, src),
        33..=64 => copy_ends::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// The first and the last `N` bytes (they overlap: `N <= len <= 2N`).
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    dst[..N].copy_from_slice(&src[..N]);
    dst[len - N..].copy_from_slice(&src[len - N..]);
}

/// Appends `bytes` as a JSON string (quotes included).
pub(super) fn write_json_string(out: &mut impl Out, bytes: &[u8], known_utf8: bool) {
    out.put(b"\"");
    if known_utf8 {
        crate::escape::json_string_content(bytes, |part| out.put(part));
    } else {
        for chunk in bytes.utf8_chunks() {
            crate::escape::json_string_content(chunk.valid().as_bytes(), |part| out.put(part));
            if !chunk.invalid().is_empty() {
                out.put(REPLACEMENT);
            }
        }
    }
    out.put(b"\"");
}

impl Cx<'_> {
    /// Appends `value` in its JSON type (NULL and non-finite doubles as `null`).
    pub fn write_value(&self, out: &mut impl Out, value: Val) {
        match value {
            Val::Null => out.put(b"null"),
            Val::Bool(b) => out.put(if b { b"true" } else { b"false" }),
            Val::Int(n) => {
                if n < 0 {
                    out.put(b"-");
                }
                let mut digits = [0u8; 20];
                out.put(crate::escape::decimal(n.unsigned_abs(), &mut digits));
            }
            Val::Double(x) if x.is_finite() => {
                let mut text = [0u8; 32];
                out.put(format_double(x, &mut text));
            }
            Val::Double(_) => out.put(b"null"),
            Val::Str(span) => {
                // Strings from the JSON parse and literals are UTF-8; the
                // line and computed strings may come from a raw line.
                let known_utf8 = matches!(span.src, Src::Scratch | Src::Const);
                write_json_string(out, self.bytes(span), known_utf8);
            }
            Val::Json(span) => out.put(self.bytes(span)),
        }
    }

    /// Writes `column` (its key, then its value); `first`: the record's
    /// first member, without the comma before it.
    fn write_column(&mut self, out: &mut impl Out, column: &Column, first: bool) {
        out.put(&column.key_json[usize::from(first)..]);
        match &column.value {
            ColumnValue::Field(slot) => {
                let slot = self.slot(*slot);
                match slot.raw() {
                    Some(raw) => out.put(&self.line[raw]),
                    None => self.write_value(out, slot.val),
                }
            }
            ColumnValue::Expr(expr) => {
                let value = self.eval(expr);
                self.write_value(out, value);
            }
        }
    }

    /// Writes the record `projection` makes of this line to `out`.
    /// `members`: the line's top-level members when it is an object
    /// (`None` for a record that is only `body`).
    pub fn project(
        &mut self,
        projection: &Projection,
        members: Option<&[Member]>,
        out: &mut impl Out,
    ) {
        if let Projection::Keep = projection {
            // Not reached: a kept line is passed on as it is.
            out.put(self.line);
            return;
        }
        out.put(b"{");
        let mut first = true;
        match projection {
            Projection::Keep => {}
            Projection::Columns(columns) => {
                for column in columns {
                    self.write_column(out, column, first);
                    first = false;
                }
            }
            Projection::Star { drop, appended } => {
                match members {
                    Some(members) => {
                        for (index, member) in members.iter().enumerate() {
                            let key = self.bytes(member.key);
                            if drop.iter().any(|dropped| **dropped == *key) {
                                continue;
                            }
                            if !first {
                                out.put(b",");
                            }
                            first = false;
                            let end = member_end(self.line, members, index);
                            out.put(&self.line[member.start as usize..end]);
                        }
                    }
                    None => {
                        if !drop.iter().any(|dropped| &dropped[..] == b"body") {
                            out.put(b"\"body\":");
                            write_json_string(out, self.line, false);
                            first = false;
                        }
                    }
                }
                for column in appended {
                    self.write_column(out, column, first);
                    first = false;
                }
            }
        }
        out.put(b"}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_copies_every_length_and_refuses_what_does_not_fit() {
        let source: Vec<u8> = (0..100u8).collect();
        for len in 0..100 {
            let mut buf = [0xffu8; 128];
            let mut room = Room::new(&mut buf[..110]);
            room.put(b"{");
            room.put(&source[..len]);
            assert_eq!(room.written(), Some(len + 1));
            assert_eq!(buf[0], b'{');
            assert_eq!(&buf[1..=len], &source[..len], "{len}");
            assert!(buf[len + 1..].iter().all(|&b| b == 0xff), "{len}");
        }
        let mut buf = [0u8; 8];
        let mut room = Room::new(&mut buf);
        room.put(b"12345");
        room.put(b"6789");
        // Once full, nothing more is written, even what would fit.
        room.put(b"0");
        assert_eq!(room.written(), None);
        assert_eq!(&buf, b"12345\0\0\0");
    }
}
