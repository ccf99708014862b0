//! Line framing: finds the records of a batch.
//!
//! Every batch the I/O worker hands over is whole lines, each ending in
//! `\n` (the reader cuts reads at the last newline and truncates over-long
//! lines itself), so framing is counting and iterating newline positions:
//! [`count_lines`] with `memchr`, [`newlines`] by a bit mask of each 64
//! bytes, one AVX-512 compare where the CPU has it, else four SSE2 ones (a
//! search call per line, as `memchr` makes, cost the CPU stage 14% of its
//! time on 250-byte container lines).

/// Counts the lines of `bytes`, which ends in `\n` or is empty.
pub(crate) fn count_lines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

/// The positions of the `\n`s of `bytes`, in order.
pub(crate) fn newlines(bytes: &[u8]) -> Newlines<'_> {
    Newlines {
        bytes,
        block: 0,
        mask: bytes.first().map_or(0, |_| newline_mask(bytes)),
    }
}

/// Iterator of [`newlines`]: the 64 bytes at `block` are looked at once,
/// as a mask, and the mask's bits handed out one by one.
pub(crate) struct Newlines<'a> {
    bytes: &'a [u8],
    /// Where the 64 bytes `mask` stands for start.
    block: usize,
    /// Bit i: `bytes[block + i]` is a `\n` not handed out yet.
    mask: u64,
}

impl Iterator for Newlines<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            let rest = self
                .bytes
                .get(self.block..)
                .filter(|rest| !rest.is_empty())?;
            self.mask = newline_mask(rest);
        }
        let at = self.block + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// Bit i set when `bytes[i]` is `\n`, for the first 64 bytes (or fewer).
#[inline]
fn newline_mask(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<64>() {
        Some(block) => block_mask(block),
        None => {
            // The last bytes, padded with zeros (not newlines).
            let mut block = [0u8; 64];
            block[..bytes.len()].copy_from_slice(bytes);
            block_mask(&block)
        }
    }
}

/// [`newline_mask`] of 64 bytes: four 16-byte compares (SSE2, part of
/// every x86_64 CPU).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_mask(block: &[u8; 64]) -> u64 {
    if has_avx512bw() {
        // SAFETY: the CPU has AVX-512 BW (checked just above).
        unsafe { block_mask_avx512(block) }
    } else {
        // SAFETY: every x86_64 CPU has SSE2.
        unsafe { block_mask_sse2(block) }
    }
}

/// Whether this CPU has AVX-512 BW (the standard library looks it up once
/// and keeps the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx512bw() -> bool {
    std::is_x86_feature_detected!("avx512bw")
}

/// [`newline_mask`] of 64 bytes in one compare (AVX-512 BW).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn block_mask_avx512(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8};
    // SAFETY: reads the 64 bytes of the array; `loadu` needs no alignment.
    let bytes = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\n' as i8))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
fn block_mask_sse2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let newline = _mm_set1_epi8(b'\n' as i8);
    let mut mask = 0u64;
    for (index, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: reads the 16 bytes of `part`; `loadu` needs no alignment.
        let part = unsafe { _mm_loadu_si128(part.as_ptr().cast()) };
        let found = _mm_movemask_epi8(_mm_cmpeq_epi8(part, newline)) as u16;
        mask |= u64::from(found) << (16 * index);
    }
    mask
}

/// [`newline_mask`] of 64 bytes, a byte at a time (other CPUs).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_mask(block: &[u8; 64]) -> u64 {
    block.iter().enumerate().fold(0, |mask, (index, &byte)| {
        mask | (u64::from(byte == b'\n') << index)
    })
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

    #[test]
    fn newlines_are_found_where_memchr_finds_them_at_every_length_and_offset() {
        // Newlines alone, in runs, 63-65 bytes apart and none at all,
        // around every block edge; read from every offset of a larger
        // buffer so the blocks fall at every alignment.
        let mut text = Vec::new();
        for (at, gap) in [1, 0, 0, 5, 63, 64, 65, 0, 130, 2, 200, 1]
            .into_iter()
            .enumerate()
        {
            text.extend(std::iter::repeat_n(b'a' + at as u8, gap));
            text.push(b'\n');
        }
        text.extend_from_slice(&[b'\r', 0, 0xff, b'\n' + 1, b'\n' - 1]);
        for start in 0..70 {
            for end in start..text.len() {
                let bytes = &text[start..end];
                let expected: Vec<usize> = memchr::memchr_iter(b'\n', bytes).collect();
                assert_eq!(
                    newlines(bytes).collect::<Vec<_>>(),
                    expected,
                    "bytes {start}..{end}"
                );
            }
        }
        // Both vector versions, whichever one this CPU runs for newlines.
        #[cfg(target_arch = "x86_64")]
        for start in 0..text.len() - 64 {
            let block: &[u8; 64] = text[start..start + 64].try_into().unwrap();
            let expected = block.iter().enumerate().fold(0u64, |mask, (at, &byte)| {
                mask | (u64::from(byte == b'\n') << at)
            });
            // SAFETY: every x86_64 CPU has SSE2.
            let sse2 = unsafe { block_mask_sse2(block) };
            assert_eq!(sse2, expected, "sse2 at {start}");
            if has_avx512bw() {
                // SAFETY: the CPU has AVX-512 BW.
                let avx512 = unsafe { block_mask_avx512(block) };
                assert_eq!(avx512, expected, "avx512 at {start}");
            }
        }
        assert_eq!(newlines(b"").next(), None);
        assert_eq!(newlines(&[b'x'; 200]).next(), None);
    }
}
