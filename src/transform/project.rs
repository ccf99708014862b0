//! Writing a projected record: one JSON object, keys in SELECT order. A
//! plain field reference copies the value's raw bytes from the line (numbers
//! keep their spelling, strings their escapes); computed values are written
//! in their JSON types, strings escaped with [`crate::escape`]. The record
//! goes to an [`Out`]: the transformer's own buffer, or straight into the
//! free room of an output batch ([`Room`]).

use super::eval::{Cx, format_double};
use super::expr::{Column, ColumnValue, Projection};
use super::raw::member_end;
use super::record::{Member, Slot, Src, Val};

/// The UTF-8 replacement character, written for bytes of a raw line that
/// are not UTF-8 (JSON text must be).
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Where a projected record is written.
pub(crate) trait Out {
    fn put(&mut self, bytes: &[u8]);

    /// The next `len` bytes, to be written whole by the caller; `None`
    /// when they do not fit (as [`Out::put`] of that many bytes).
    fn reserve(&mut self, len: usize) -> Option<&mut [u8]>;
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        let start = self.len();
        self.resize(start + len, 0);
        Some(&mut self[start..])
    }
}

/// A fixed slice, written from its start. What does not fit is not
/// written: the record is then [`Room::written`] `None`, to be written
/// again where there is more room.
pub(crate) struct Room<'b> {
    buf: &'b mut [u8],
    /// Bytes written; past `buf.len()` once something did not fit (then
    /// every later piece does not fit either: one check per piece).
    len: usize,
}

impl<'b> Room<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// How many bytes the record took, or `None` when it did not fit.
    pub fn written(&self) -> Option<usize> {
        (self.len <= self.buf.len()).then_some(self.len)
    }
}

impl Out for Room<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                copy_short(dst, bytes);
                self.len = end;
            }
            None => self.len = self.buf.len() + 1,
        }
    }

    #[inline]
    fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        let end = self.len + len;
        if end > self.buf.len() {
            self.len = self.buf.len() + 1;
            return None;
        }
        let start = std::mem::replace(&mut self.len, end);
        Some(&mut self.buf[start..end])
    }
}

/// A projection whose columns are all plain field references
/// (`SELECT a, b AS c`): each column's key and the index of its slot in
/// the transformer's slots, resolved once. A line whose named fields all
/// have raw bytes is written by [`PlainColumns::write`] without an
/// evaluation: its length summed first, then one reservation and a short
/// copy per piece.
#[derive(Debug)]
pub(super) struct PlainColumns {
    /// `,"key":` as [`Column::key_json`], and the slot (an index into the
    /// transformer's slots, not the program's).
    columns: Vec<(Box<[u8]>, usize)>,
}

impl PlainColumns {
    /// `None` unless every column of `projection` is a plain field.
    /// `map`: the query's slot → the transformer's.
    pub fn new(projection: &Projection, map: &[u16]) -> Option<Self> {
        let Projection::Columns(columns) = projection else {
            return None;
        };
        let columns = columns
            .iter()
            .map(|column| match column.value {
                ColumnValue::Field(slot) => {
                    Some((column.key_json.clone(), usize::from(map[usize::from(slot)])))
                }
                ColumnValue::Expr(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        // An empty projection is not valid SQL; the general path has it.
        (!columns.is_empty()).then_some(Self { columns })
    }

    /// Writes the record of `line` to `out` when every column's value has
    /// raw bytes in the line (else writes nothing and returns false: a
    /// missing field or `body` is written in its type by the general path).
    #[inline]
    pub fn write(&self, line: &[u8], slots: &[Slot], out: &mut impl Out) -> bool {
        // `{`, `}`, and each key with its comma but the first's.
        let mut len = 1;
        for (key_json, slot) in &self.columns {
            let Some(raw) = slots[*slot].raw() else {
                return false;
            };
            len += key_json.len() + raw.len();
        }
        let Some(dst) = out.reserve(len) else {
            // Not written: the room is marked full, as `put` does.
            return true;
        };
        dst[0] = b'{';
        let mut at = 1;
        for (index, (key_json, slot)) in self.columns.iter().enumerate() {
            let key = &key_json[usize::from(index == 0)..];
            copy_short(&mut dst[at..at + key.len()], key);
            at += key.len();
            let slot = &slots[*slot];
            let raw = &line[slot.raw_start as usize..slot.raw_end as usize];
            copy_short(&mut dst[at..at + raw.len()], raw);
            at += raw.len();
        }
        dst[at] = b'}';
        true
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
    #[inline]
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
