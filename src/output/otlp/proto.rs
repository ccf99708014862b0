//! Protobuf primitives over a `Vec`: varints, tags, and nested messages
//! whose length is written after their content.

use super::*;

pub(super) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn tag(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    varint(out, (field << 3) | wire_type);
}

/// Starts a length-delimited field; returns where its content starts.
pub(super) fn begin(out: &mut Vec<u8>, field: u64) -> usize {
    tag(out, field, LEN);
    out.push(0);
    out.len()
}

/// Ends the field [`begin`] started: writes its length into the byte
/// reserved for it, moving the content up when the length needs more.
pub(super) fn end(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < 0x80 {
        out[start - 1] = len as u8;
        return;
    }
    let mut width = 1;
    while len >> (7 * width) != 0 {
        width += 1;
    }
    let old_end = out.len();
    out.resize(old_end + width - 1, 0);
    out.copy_within(start..old_end, start + width - 1);
    let mut at = start - 1;
    let mut value = len;
    while value >= 0x80 {
        out[at] = value as u8 | 0x80;
        value >>= 7;
        at += 1;
    }
    out[at] = value as u8;
}

pub(super) fn fixed64(out: &mut Vec<u8>, field: u64, value: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Valid UTF-8 as is; each invalid sequence as U+FFFD (protobuf strings
/// must be UTF-8).
pub(super) fn push_utf8_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
}
