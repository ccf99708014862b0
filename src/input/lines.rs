//! Line cutting: [`cut_lines`] divides one read into whole lines to hand
//! on and bytes done with ([`LineCut`]), cutting a line longer than
//! `--max-line` and skipping its rest. Shared by the file and stdin inputs.

/// How the bytes of one read divide into lines to hand on and bytes done
/// with; shared by the file and stdin readers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LineCut {
    /// Source bytes done with: emitted, or skipped (the rest of an
    /// over-long line). The bytes after them start a line not yet whole.
    pub consumed: usize,
    /// Bytes of the buffer to hand on: whole lines, each ending in `\n`.
    pub emit: usize,
    /// A line longer than `--max-line` was cut: its head is emitted, and
    /// its rest is skipped up to its newline.
    pub truncated: bool,
    /// The skipped rest of an over-long line ended at `consumed`; bytes
    /// after it were not looked at.
    pub skip_ended: bool,
}

/// Cuts `buf[..filled]`, which starts at a line start (or inside the
/// skipped rest of an over-long line, when `*skipping`), after its last
/// newline. A buffer filled to its end without a newline holds a line
/// longer than `max_line` (every buffer holds at least `max_line + 1`
/// bytes): its head is cut there and `*skipping` is set. With
/// `emit_partial` (the source ends here), a last line without a newline is
/// emitted with one, written at `buf[filled]` (free when `filled` is
/// short of the buffer).
pub(crate) fn cut_lines(
    buf: &mut [u8],
    filled: usize,
    skipping: &mut bool,
    emit_partial: bool,
    max_line: usize,
) -> LineCut {
    debug_assert!(max_line < buf.len() && filled <= buf.len());
    let short = filled < buf.len();
    let mut cut = LineCut::default();
    if filled == 0 {
        return cut;
    }
    if *skipping {
        match memchr::memchr(b'\n', &buf[..filled]) {
            Some(newline) => {
                *skipping = false;
                cut.consumed = newline + 1;
                cut.skip_ended = true;
            }
            None => cut.consumed = filled,
        }
        return cut;
    }
    match memchr::memrchr(b'\n', &buf[..filled]) {
        Some(newline) => {
            cut.consumed = newline + 1;
            cut.emit = cut.consumed;
            if short && emit_partial && cut.consumed < filled {
                buf[filled] = b'\n';
                cut.consumed = filled;
                cut.emit = filled + 1;
            }
        }
        None if !short => {
            // Longer than --max-line: keep the head, skip the rest.
            buf[max_line] = b'\n';
            cut.emit = max_line + 1;
            cut.consumed = filled;
            cut.truncated = true;
            *skipping = true;
        }
        None if emit_partial => {
            buf[filled] = b'\n';
            cut.consumed = filled;
            cut.emit = filled + 1;
        }
        None => {} // a partial line: wait for the rest of it
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `input` in a buffer of `capacity` bytes (`max_line` one less)
    /// and checks that `out` goes out and `consumed` bytes are used up.
    fn cut_in(
        input: &[u8],
        capacity: usize,
        skipping: &mut bool,
        partial: bool,
        (out, consumed): (&[u8], usize),
    ) -> LineCut {
        let mut buf = vec![0u8; capacity];
        buf[..input.len()].copy_from_slice(input);
        let cut = cut_lines(&mut buf, input.len(), skipping, partial, capacity - 1);
        assert_eq!(
            (&buf[..cut.emit], cut.consumed),
            (out, consumed),
            "cutting {:?}",
            String::from_utf8_lossy(input)
        );
        cut
    }

    #[test]
    fn whole_lines_go_out_and_a_partial_last_line_waits() {
        let mut skipping = false;
        // The partial line is read again later.
        let cut = cut_in(b"a\nbc\nde", 16, &mut skipping, false, (b"a\nbc\n", 5));
        assert!(!cut.truncated && !cut.skip_ended && !skipping);
        cut_in(b"a\nb\n", 16, &mut skipping, false, (b"a\nb\n", 4));
        cut_in(b"no newline", 16, &mut skipping, false, (b"", 0));
        let cut = cut_in(b"", 16, &mut skipping, true, (b"", 0));
        assert_eq!(cut, LineCut::default());
    }

    #[test]
    fn at_the_end_of_the_source_a_partial_line_gets_a_newline() {
        let mut skipping = false;
        // The newline is added: one byte more out than consumed.
        cut_in(b"a\nbc", 16, &mut skipping, true, (b"a\nbc\n", 4));
        cut_in(b"lone", 16, &mut skipping, true, (b"lone\n", 4));
    }

    #[test]
    fn a_full_buffer_with_a_partial_line_is_not_a_source_end() {
        // Filled to its end: the last bytes may continue; never emitted.
        let mut skipping = false;
        cut_in(b"abc\ndefg", 8, &mut skipping, true, (b"abc\n", 4));
    }

    #[test]
    fn an_over_long_line_is_cut_at_max_line_and_its_rest_skipped() {
        let mut skipping = false;
        // The head, max_line bytes, and a newline.
        let cut = cut_in(b"abcdefgh", 8, &mut skipping, false, (b"abcdefg\n", 8));
        assert!(cut.truncated && skipping);

        // The next read is inside the rest: skipped without a newline ...
        let cut = cut_in(b"ijklmnop", 8, &mut skipping, false, (b"", 8));
        assert!(skipping && !cut.skip_ended && !cut.truncated);

        // ... and up to the newline that ends it; what follows is not
        // looked at (read again from the file).
        let cut = cut_in(b"qr\nnext\n", 16, &mut skipping, false, (b"", 3));
        assert!(cut.skip_ended && !skipping);
    }
}
