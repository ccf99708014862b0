//! JSON line checking with simd-json, reusing its buffers.
//!
//! The parse is `crate::json_parse::PaddedParser`'s (a padded scratch copy,
//! so the original bytes travel on untouched; buffers and tape reused).
//!
//! One line per call: checking 64 KiB of lines at once as an array was
//! measured slower with an AVX2 build (bench/README.md), because the check
//! that the array's elements are exactly the lines costs more than the
//! per-call overhead it saves.

use crate::json_parse::PaddedParser;
use crate::source::MAX_FIELDS;
use simd_json::Node;

/// A line as [`JsonChecker::object_keys`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonLine {
    Invalid,
    /// Valid JSON, but not an object (an array, a string, a number…).
    Value,
    /// An object with `members` members; `present[i]`: it has `keys[i]`
    /// at its top level.
    Object {
        members: usize,
        present: [bool; MAX_FIELDS],
    },
}

pub(crate) struct JsonChecker {
    /// Grows up to `max_line_bytes` (a longer line is refused).
    parser: PaddedParser,
    max_line_bytes: usize,
}

impl JsonChecker {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            parser: PaddedParser::new(max_line_bytes),
            max_line_bytes,
        }
    }

    /// True when `line` (without its newline) is one valid JSON value.
    pub fn is_valid(&mut self, line: &[u8]) -> bool {
        if line.len() > self.max_line_bytes {
            // Longer than --max-line: the reader never hands such a line over.
            return false;
        }
        self.parser.parse(line, |tape, _| tape.is_some())
    }

    /// Checks `line` as [`Self::is_valid`] does and, when it is an object,
    /// which of `keys` (at most [`MAX_FIELDS`]) it has at its top level.
    pub fn object_keys(&mut self, line: &[u8], keys: &[&str]) -> JsonLine {
        if line.len() > self.max_line_bytes {
            return JsonLine::Invalid;
        }
        self.parser.parse(line, |tape, _| {
            let Some(tape) = tape else {
                return JsonLine::Invalid;
            };
            let Some(&Node::Object { len, .. }) = tape.first() else {
                return JsonLine::Value;
            };
            let mut present = [false; MAX_FIELDS];
            let mut at = 1;
            for _ in 0..len {
                if let Some(Node::String(key)) = tape.get(at) {
                    for (index, wanted) in keys.iter().take(MAX_FIELDS).enumerate() {
                        present[index] |= key == wanted;
                    }
                }
                // A member is its key and its value; an array or object
                // value spans its `count` nodes more.
                at += 2 + match tape.get(at + 1) {
                    Some(Node::Object { count, .. } | Node::Array { count, .. }) => *count,
                    _ => 0,
                };
            }
            JsonLine::Object {
                members: len,
                present,
            }
        })
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
        let long = vec![b'1'; 2000];
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
    fn objects_say_which_keys_they_have_at_their_top_level() {
        let mut checker = JsonChecker::new(1024);
        let keys = ["client.address", "client.port"];
        assert_eq!(
            checker.object_keys(
                br#"{"a":{"client.port":1},"b":[1,[2]],"client.address":"x"}"#,
                &keys
            ),
            JsonLine::Object {
                members: 3,
                present: [true, false]
            },
            "a nested key does not count"
        );
        assert_eq!(
            checker.object_keys(b"{}", &keys),
            JsonLine::Object {
                members: 0,
                present: [false, false]
            }
        );
        assert_eq!(checker.object_keys(b"[1]", &keys), JsonLine::Value);
        assert_eq!(checker.object_keys(b"\"s\"", &keys), JsonLine::Value);
        assert_eq!(checker.object_keys(b"{\"a\":", &keys), JsonLine::Invalid);
    }

    #[test]
    fn checking_lines_allocates_nothing_after_warm_up() {
        let mut checker = JsonChecker::new(4096);
        let lines: Vec<String> = (0..1000)
            .map(|i| {
                format!(r#"{{"i":{i},"s":"a\"b\\c\u00e9 é","l":[1,2.5,null],"o":{{"k":true}}}}"#)
            })
            .collect();
        // Warm up: parser buffers and tape grow to their working size once.
        for line in &lines {
            assert!(checker.is_valid(line.as_bytes()));
        }
        assert!(!checker.is_valid(b"{\"broken\":"));
        let before = crate::test_alloc::allocations_on_this_thread();
        for line in &lines {
            assert!(checker.is_valid(line.as_bytes()));
        }
        assert!(!checker.is_valid(b"{\"broken\":"));
        assert_eq!(
            crate::test_alloc::allocations_on_this_thread() - before,
            0,
            "per-line checks must not allocate"
        );
    }
}
