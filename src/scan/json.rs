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
