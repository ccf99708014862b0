//! One simd-json parse with its buffers reused: the JSON check of the CPU
//! worker (`scan::json`), the record a query sees (`transform::record`) and
//! `json_extract` (`transform::functions`) all parse this way.
//!
//! simd-json unescapes strings inside the buffer it parses, so a text is
//! copied into a padded scratch buffer and parsed there; the original bytes
//! are what travel on. Scratch, parser buffers and tape start small, grow
//! to the longest text parsed so far (at most the caller's limit, e.g.
//! `--max-line`) and are reused for every call: a lane whose lines are a
//! few hundred bytes never touches a megabyte of parser memory.
//! Principal type: [`PaddedParser`].

use simd_json::{Buffers, INPUT_PADDING, Node, Tape};

/// Texts up to this long parse without growing the buffers first.
const INITIAL_LEN: usize = 16 * 1024;

pub(crate) struct PaddedParser {
    /// Holds one text plus simd-json's padding.
    scratch: Vec<u8>,
    buffers: Buffers,
    /// Empty between calls; kept only for its allocation (`Tape::null()`
    /// allocates, so it is taken out and put back rather than replaced).
    tape: Option<Tape<'static>>,
}

impl PaddedParser {
    /// Room for texts of up to `min(max_len, INITIAL_LEN)` bytes before
    /// the first growth. Starting small keeps RSS to what the lines need:
    /// simd-json's buffers are several times the text's size, and memory
    /// the allocator backs with huge pages counts whole once touched.
    pub fn new(max_len: usize) -> Self {
        let len = max_len.min(INITIAL_LEN);
        Self {
            scratch: vec![0; len + 1 + INPUT_PADDING],
            buffers: Buffers::new(len + 1),
            tape: Some(Tape::null()),
        }
    }

    /// True when a text of `len` bytes is parsed without growing first.
    pub fn fits(&self, len: usize) -> bool {
        len + INPUT_PADDING <= self.scratch.len()
    }

    /// Parses `text` and hands `read` its tape (`None` when `text` is not
    /// one valid JSON value) and the address of the scratch, so that a tape
    /// string's offset in the scratch (which is its content's offset in
    /// `text`) is `str.as_ptr() as usize - base`. Grows once to a text
    /// longer than any before (callers that refuse those check [`fits`]
    /// first): bounded by the caller's longest text.
    ///
    /// [`fits`]: Self::fits
    pub fn parse<R>(
        &mut self,
        text: &[u8],
        read: impl FnOnce(Option<&[Node<'_>]>, usize) -> R,
    ) -> R {
        let len = text.len();
        if !self.fits(len) {
            // Doubling, so lines that lengthen slowly grow it a few times,
            // not once per line.
            let grown = len.max(self.scratch.len() * 2);
            self.scratch.resize(grown + 1 + INPUT_PADDING, 0);
            self.buffers = Buffers::new(grown + 1);
        }
        self.scratch[..len].copy_from_slice(text);
        let base = self.scratch.as_ptr() as usize;
        let mut tape = self
            .tape
            .take()
            .expect("tape is back after each call")
            .reset();
        let parsed = simd_json::fill_tape_padded(
            &mut self.scratch[..len + INPUT_PADDING],
            len,
            &mut self.buffers,
            &mut tape,
        );
        let result = read(parsed.ok().map(|()| &tape.0[..]), base);
        self.tape = Some(tape.reset());
        result
    }

    /// The scratch as the last [`parse`](Self::parse) left it: its strings
    /// unescaped in place.
    pub fn scratch(&self) -> &[u8] {
        &self.scratch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_text_grows_the_scratch_and_tape_strings_sit_at_their_offsets() {
        let mut parser = PaddedParser::new(4);
        let text = br#"{"key":"a\"b"}"#;
        assert!(!parser.fits(text.len()));
        let found = parser.parse(text, |tape, base| {
            let tape = tape.expect("valid JSON");
            match tape[2] {
                Node::String(value) => (value.as_ptr() as usize - base, value.len()),
                other => panic!("{other:?}"),
            }
        });
        // The value's content starts after `{"key":"`, unescaped in place.
        assert_eq!(found, (8, 3));
        assert_eq!(&parser.scratch()[8..11], b"a\"b");
        assert!(parser.fits(text.len()));
        assert!(parser.parse(b"{\"a\":", |tape, _| tape.is_none()));
    }
}
