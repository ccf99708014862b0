//! Writing a projected record: one JSON object, keys in SELECT order. A
//! plain field reference copies the value's raw bytes from the line (numbers
//! keep their spelling, strings their escapes); computed values are written
//! in their JSON types, strings escaped with [`crate::escape`].

use super::eval::{Cx, write_double};
use super::expr::{Column, ColumnValue, Projection};
use super::record::{Member, Src, Val, member_end};

/// The UTF-8 replacement character, written for bytes of a raw line that
/// are not UTF-8 (JSON text must be).
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Appends `bytes` as a JSON string (quotes included).
pub(super) fn write_json_string(out: &mut Vec<u8>, bytes: &[u8], known_utf8: bool) {
    out.push(b'"');
    if known_utf8 {
        crate::escape::json_string_content(bytes, |part| out.extend_from_slice(part));
    } else {
        for chunk in bytes.utf8_chunks() {
            crate::escape::json_string_content(chunk.valid().as_bytes(), |part| {
                out.extend_from_slice(part)
            });
            if !chunk.invalid().is_empty() {
                out.extend_from_slice(REPLACEMENT);
            }
        }
    }
    out.push(b'"');
}

impl Cx<'_> {
    /// Appends `value` in its JSON type (NULL and non-finite doubles as `null`).
    pub fn write_value(&self, out: &mut Vec<u8>, value: Val) {
        use std::io::Write as _;
        match value {
            Val::Null => out.extend_from_slice(b"null"),
            Val::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            // Writing into a Vec cannot fail.
            Val::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Double(x) if x.is_finite() => write_double(out, x),
            Val::Double(_) => out.extend_from_slice(b"null"),
            Val::Str(span) => {
                // Strings from the JSON parse and literals are UTF-8; the
                // line and computed strings may come from a raw line.
                let known_utf8 = matches!(span.src, Src::Scratch | Src::Const);
                write_json_string(out, self.bytes(span), known_utf8);
            }
            Val::Json(span) => out.extend_from_slice(self.bytes(span)),
        }
    }

    fn write_column(&mut self, out: &mut Vec<u8>, column: &Column) {
        out.extend_from_slice(&column.key_json);
        match &column.value {
            ColumnValue::Field(slot) => {
                let slot = self.slot(*slot);
                match slot.raw() {
                    Some(raw) => out.extend_from_slice(&self.line[raw]),
                    None => self.write_value(out, slot.val),
                }
            }
            ColumnValue::Expr(expr) => {
                let value = self.eval(expr);
                self.write_value(out, value);
            }
        }
    }

    /// Writes the record `projection` makes of this line into `out`
    /// (cleared first). `members`: the line's top-level members when it is
    /// an object (`None` for a record that is only `body`).
    pub fn project(
        &mut self,
        projection: &Projection,
        members: Option<&[Member]>,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.push(b'{');
        let mut first = true;
        match projection {
            Projection::Keep => {
                // Not reached: a kept line is passed on as it is.
                out.clear();
                out.extend_from_slice(self.line);
                return;
            }
            Projection::Columns(columns) => {
                for column in columns {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    self.write_column(out, column);
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
                                out.push(b',');
                            }
                            first = false;
                            let end = member_end(self.line, members, index);
                            out.extend_from_slice(&self.line[member.start as usize..end]);
                        }
                    }
                    None => {
                        if !drop.iter().any(|dropped| &dropped[..] == b"body") {
                            out.extend_from_slice(b"\"body\":");
                            write_json_string(out, self.line, false);
                            first = false;
                        }
                    }
                }
                for column in appended {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    self.write_column(out, column);
                }
            }
        }
        out.push(b'}');
    }
}
