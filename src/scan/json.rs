//! JSON line checking with simd-json, reusing its buffers.
//!
//! simd-json unescapes strings inside the buffer it parses, so lines are
//! copied into a padded scratch buffer and parsed there; the original bytes
//! are what travel on. Scratch, parser buffers and tape are allocated once
//! and reused for every call.
//!
//! Checking one short line per simd-json call spends much of the time on the
//! call's fixed cost, so [`JsonChecker::check_group`] checks many lines in
//! one call: the lines `a\nb\nc\n` are parsed as the array `[a,b,c]`. That
//! array is valid and its top-level commas are exactly the ones put in place
//! of the newlines if and only if every line is one valid JSON value on its
//! own (a line like `1,2` adds a top-level comma; an unbalanced `[1` moves
//! ours below the top level). When the group fails, each line is checked
//! alone with [`JsonChecker::is_valid`] to find the bad ones.

use simd_json::{Buffers, INPUT_PADDING, Node, Tape};

/// Bytes of lines checked in one simd-json call: large enough to amortise
/// the call, small enough to stay in the L2 cache with the parser's buffers.
pub(crate) const GROUP_BYTES: usize = 64 * 1024;

pub(crate) struct JsonChecker {
    /// Holds one group or one line plus simd-json's padding; fixed size.
    scratch: Vec<u8>,
    buffers: Buffers,
    /// Empty between calls; kept only for its allocation.
    tape: Tape<'static>,
}

impl JsonChecker {
    pub fn new(max_line_bytes: usize) -> Self {
        let largest = max_line_bytes.max(GROUP_BYTES) + 2;
        Self {
            scratch: vec![0; largest + INPUT_PADDING],
            buffers: Buffers::new(largest),
            tape: Tape::null(),
        }
    }

    /// Parses `scratch[..len]`. `None` when it is not one valid JSON value;
    /// otherwise the number of elements when it is an array, else 1.
    fn parse_scratch(&mut self, len: usize) -> Option<usize> {
        let mut tape = std::mem::replace(&mut self.tape, Tape::null()).reset();
        let parsed = simd_json::fill_tape_padded(
            &mut self.scratch[..len + INPUT_PADDING],
            len,
            &mut self.buffers,
            &mut tape,
        );
        let elements = parsed.ok().map(|()| match tape.0.first() {
            Some(Node::Array { len, .. }) => *len,
            _ => 1,
        });
        self.tape = tape.reset();
        elements
    }

    /// True when `line` (without its newline) is one valid JSON value.
    pub fn is_valid(&mut self, line: &[u8]) -> bool {
        let len = line.len();
        if len + INPUT_PADDING > self.scratch.len() {
            // Longer than --max-line: the reader never hands such a line over.
            return false;
        }
        self.scratch[..len].copy_from_slice(line);
        self.parse_scratch(len).is_some()
    }

    /// True when every line of `lines` (whole lines, each ending in `\n`,
    /// at most [`GROUP_BYTES`] in all) is one valid JSON value on its own.
    /// False means at least one is not, or the group could not be checked
    /// as a whole: check each line with [`JsonChecker::is_valid`].
    pub fn check_group(&mut self, lines: &[u8]) -> bool {
        let len = lines.len() + 1;
        if lines.is_empty() || len + INPUT_PADDING > self.scratch.len() {
            return false;
        }
        // `a\nb\n` becomes `[a,b]`: the same bytes, shifted by one.
        self.scratch[0] = b'[';
        self.scratch[1..len].copy_from_slice(lines);
        let mut separators = 0usize;
        for newline in memchr::memchr_iter(b'\n', lines) {
            self.scratch[newline + 1] = b',';
            separators += 1;
        }
        self.scratch[len - 1] = b']';
        // One element per line (a blank line would make `[ ]`), and the
        // commas we placed, first to last, exactly the top-level commas.
        if self.parse_scratch(len) != Some(separators) {
            return false;
        }
        let mut depth = 0usize;
        let mut top_level_commas = 0usize;
        let mut next_line_start = 0usize;
        for &index in self.buffers.structural_indexes() {
            let index = index as usize;
            if index >= len {
                break;
            }
            // Classify from the original bytes: the parser unescapes strings
            // in place in scratch, so scratch is not what was parsed.
            let byte = match index {
                0 => b'[',
                _ if index == len - 1 => b']',
                _ if lines[index - 1] == b'\n' => b',',
                _ => lines[index - 1],
            };
            match byte {
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' if depth == 1 => {
                    // Ours sit where a newline was: right after a line end.
                    let Some(offset) = memchr::memchr(b'\n', &lines[next_line_start..]) else {
                        return false;
                    };
                    let ours = next_line_start + offset + 1;
                    if index != ours {
                        return false;
                    }
                    next_line_start = ours;
                    top_level_commas += 1;
                }
                _ => {}
            }
        }
        // The last line's newline became `]`, not a comma.
        top_level_commas + 1 == separators
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_lines_are_told_apart() {
        let mut checker = JsonChecker::new(1024);
        assert!(checker.is_valid(br#"{"a":"b\"c\\d\u00e9","n":1}"#));
        assert!(checker.is_valid("{\"é\":[1,2,{\"x\":null}]}\r".as_bytes()));
        assert!(!checker.is_valid(br#"{"a":"#));
        assert!(!checker.is_valid(b""));
        assert!(!checker.is_valid(b"\xff\xfe{}"));
        assert!(!checker.is_valid(br#"{"a":"\xff"}"#));
        let long = vec![b'1'; GROUP_BYTES + 2000];
        assert!(
            !checker.is_valid(&long),
            "over the scratch size is refused, not a panic"
        );
        // The original bytes are untouched by parsing.
        let line = br#"{"s":"\n\t"}"#.to_vec();
        let copy = line.clone();
        assert!(checker.is_valid(&line));
        assert_eq!(line, copy);
    }

    #[test]
    fn a_group_passes_only_when_every_line_is_valid_alone() {
        let mut checker = JsonChecker::new(1024);
        assert!(checker.check_group(b"{\"a\":\"x,y\"}\n[1,2]\n3\r\n\"s\\\",\"\n"));
        assert!(checker.check_group(b"{}\n"));
        // Each of these is valid as an array of lines but not line by line.
        for group in [
            &b"1,2\n3\n"[..],
            b"[1\n2]\n",
            b"[1\n2],[3\n4]\n",
            b"{\"a\":1\n}\n",
            b"1\n\n2\n",
            b"   \n",
            b"{\"a\":1}\n{\"b\":\n",
            b"\"x\n\"\n",
        ] {
            assert!(
                !checker.check_group(group),
                "{:?} must fail",
                String::from_utf8_lossy(group)
            );
        }
        // The same line alone decides: the fallback finds the bad one.
        assert!(checker.is_valid(b"3"));
        assert!(!checker.is_valid(b"1,2"));
    }

    #[test]
    fn group_check_agrees_with_line_by_line_on_random_fragments() {
        let pieces: [&[u8]; 16] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"1",
            b"\"a\"",
            b"\"\\\"\"",
            b" ",
            b"null",
            b"\"x,y\"",
            b"\"k\":",
            b"{\"k\":1}",
            b"[1,2]",
            b"\"[\"",
        ];
        let mut checker = JsonChecker::new(1024);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound) as usize
        };
        let mut disagreements = Vec::new();
        let mut valid_groups = 0;
        for _ in 0..20_000 {
            let mut group = Vec::new();
            let mut lines = Vec::new();
            for _ in 0..1 + next(4) {
                let mut line = Vec::new();
                for _ in 0..1 + next(4) {
                    line.extend_from_slice(pieces[next(pieces.len() as u64)]);
                }
                group.extend_from_slice(&line);
                group.push(b'\n');
                lines.push(line);
            }
            let one_by_one = lines.iter().all(|line| checker.is_valid(line));
            let grouped = checker.check_group(&group);
            valid_groups += usize::from(one_by_one);
            if grouped != one_by_one {
                disagreements.push(String::from_utf8_lossy(&group).into_owned());
            }
        }
        assert!(valid_groups > 100, "the generator makes valid groups too");
        assert!(disagreements.is_empty(), "{disagreements:?}");
    }
}
