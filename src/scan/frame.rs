//! Line framing: finds the records of a batch with `memchr`.
//!
//! Every batch the I/O worker hands over is whole lines, each ending in
//! `\n` (the reader cuts reads at the last newline and truncates over-long
//! lines itself), so framing is counting and iterating newline positions.

/// Counts the lines of `bytes`, which ends in `\n` or is empty.
pub(crate) fn count_lines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_at_newlines_and_keep_carriage_returns() {
        let bytes = b"a\r\n\nbc\n";
        assert_eq!(count_lines(bytes), 3);
        assert_eq!(count_lines(b""), 0);
    }
}
