//! The x86_64 vector part of `escape`'s one-pass JSON writer: blocks of
//! bytes escaped as JSON string content, while noting whether any byte is
//! outside ASCII (only then must the text be checked as UTF-8).
//!
//! [`write_json_blocks`] runs the best writer this CPU has ([`Writer`],
//! looked up once): AVX-512 with VBMI2 ([`write_blocks_avx512`], which
//! writes every byte), else AVX2 ([`write_blocks_avx2`]), else SSE2
//! ([`write_blocks_sse2`], part of every x86_64 CPU); the last two leave
//! the last bytes (fewer than a block, or the last ones when `out` is
//! nearly full) to the caller's byte-by-byte loop.
//!
//! The AVX-512 and AVX2 writers do not stop at each escape: messages that
//! are themselves JSON have a quote every few bytes. A backslash goes
//! before each quote or backslash by one byte expand a half block
//! (AVX-512), or one byte shuffle each 8 bytes ([`SPREAD`]: 8 bytes and 8
//! backslashes in, the escaped bytes out; AVX2), so the cost does not
//! depend on how many there are. AVX2 spreads tabs, newlines and carriage
//! returns the same way, as `\t`, `\n` and `\r` (a joined stack trace has
//! them in nearly every block); a block with another control byte (rare:
//! `\u00XX`), and with AVX-512 any control byte, goes byte by byte.
//!
//! `unsafe` here is only the loads and stores of vector registers from and
//! to byte arrays (masked ones for AVX-512, touching only the bytes of the
//! slice), and the calls of the writers once the CPU was checked.

use super::{NonAscii, Progress, write_json_byte};
use std::arch::x86_64::{
    __m128i, __m256i, __m512i, _bzhi_u64, _mm_cmpeq_epi8, _mm_cvtsi64_si128, _mm_loadu_si128,
    _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_shuffle_epi8,
    _mm_storeu_si128, _mm_unpacklo_epi64, _mm256_and_si256, _mm256_andnot_si256,
    _mm256_castsi256_si128, _mm256_cmpeq_epi8, _mm256_extracti128_si256, _mm256_loadu_si256,
    _mm256_max_epu8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set_m128i, _mm256_set1_epi8,
    _mm256_shuffle_epi8, _mm256_storeu_si256, _mm256_unpackhi_epi64, _mm256_unpacklo_epi64,
    _mm512_castsi256_si512, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask,
    _mm512_extracti64x4_epi64, _mm512_mask_expand_epi8, _mm512_mask_storeu_epi8,
    _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_set1_epi8, _pdep_u64, _pext_u64,
};
use std::sync::atomic::{AtomicU8, Ordering};

/// Writes `bytes` as JSON string content into `out` (which holds at least
/// what they take) by whole blocks, with the best writer this CPU has.
#[inline]
pub(super) fn write_json_blocks(bytes: &[u8], out: &mut [u8]) -> Progress {
    match writer() {
        // SAFETY: `best_writer` picks it only when the CPU has what it needs.
        Writer::Avx512 => unsafe { write_blocks_avx512(bytes, out) },
        // SAFETY: as above.
        Writer::Avx2 => unsafe { write_blocks_avx2(bytes, out) },
        // SAFETY: every x86_64 CPU has SSE2.
        Writer::Sse2 => unsafe { write_blocks_sse2(bytes, out) },
    }
}

/// The block writers, by the CPU features they need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Writer {
    /// SSE2 (every x86_64 CPU).
    Sse2 = 1,
    /// AVX2 and POPCNT.
    Avx2 = 2,
    /// AVX-512 F, BW and VBMI2 (the byte expand), BMI2 and POPCNT.
    Avx512 = 3,
}

/// The [`Writer`] this CPU runs, as a `u8` (0 until the first call looks).
static WRITER: AtomicU8 = AtomicU8::new(0);

#[inline]
fn writer() -> Writer {
    match WRITER.load(Ordering::Relaxed) {
        3 => Writer::Avx512,
        2 => Writer::Avx2,
        1 => Writer::Sse2,
        _ => {
            let writer = best_writer();
            WRITER.store(writer as u8, Ordering::Relaxed);
            writer
        }
    }
}

fn best_writer() -> Writer {
    use std::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512bw") && has!("avx512vbmi2") && has!("bmi2") && has!("popcnt")
    {
        Writer::Avx512
    } else if has!("avx2") && has!("popcnt") {
        Writer::Avx2
    } else {
        Writer::Sse2
    }
}

/// Shuffle controls that spread 8 bytes with quotes and backslashes in
/// them: entry `mask` (bit i set: byte i is a `"` or `\`), applied to a
/// register of the 8 bytes followed by 8 backslashes, gives the bytes with
/// a backslash before each marked one (`8 + mask.count_ones()` bytes; the
/// rest of the 16 are zero).
static SPREAD: [[u8; 16]; 256] = spread_table();

const fn spread_table() -> [[u8; 16]; 256] {
    // A control byte with its high bit set writes a zero.
    let mut table = [[0x80u8; 16]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut from, mut to) = (0, 0);
        while from < 8 {
            if mask & (1 << from) != 0 {
                // Any of the upper 8 bytes: each is a backslash.
                table[mask][to] = 8;
                to += 1;
            }
            table[mask][to] = from as u8;
            to += 1;
            from += 1;
        }
        mask += 1;
    }
    table
}

#[inline(always)]
fn load16(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: reads the 16 bytes of the array; `loadu` needs no alignment,
    // and SSE2 is part of every x86_64 CPU.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

#[inline(always)]
fn store16(out: &mut [u8; 16], value: __m128i) {
    // SAFETY: writes the 16 bytes of the array; `storeu` needs no
    // alignment, and SSE2 is part of every x86_64 CPU.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), value) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load32(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: reads the 32 bytes of the array; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store32(out: &mut [u8; 32], value: __m256i) {
    // SAFETY: writes the 32 bytes of the array; `storeu` needs no alignment.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), value) }
}

#[inline(always)]
fn array<const N: usize>(bytes: &[u8]) -> &[u8; N] {
    bytes.try_into().expect("a slice of N bytes")
}

#[inline(always)]
fn array_mut<const N: usize>(bytes: &mut [u8]) -> &mut [u8; N] {
    bytes.try_into().expect("a slice of N bytes")
}

/// The bytes of a block, as bit masks (bit i: byte i).
#[derive(Clone, Copy)]
struct Masks {
    /// `"` or `\`: written with a backslash in front.
    quotes: u32,
    /// Below 0x20: written by name or as `\u00XX`.
    controls: u32,
    /// 0x80 or above: part of a UTF-8 sequence, or invalid.
    non_ascii: u32,
}

#[inline]
#[target_feature(enable = "avx2")]
fn masks32(block: __m256i) -> Masks {
    let quotes = _mm256_or_si256(
        _mm256_cmpeq_epi8(block, _mm256_set1_epi8(b'"' as i8)),
        _mm256_cmpeq_epi8(block, _mm256_set1_epi8(b'\\' as i8)),
    );
    // Unsigned `byte <= 0x1f`: the larger of the two is 0x1f.
    let most_control = _mm256_set1_epi8(0x1f);
    let controls = _mm256_cmpeq_epi8(_mm256_max_epu8(block, most_control), most_control);
    Masks {
        quotes: _mm256_movemask_epi8(quotes) as u32,
        controls: _mm256_movemask_epi8(controls) as u32,
        non_ascii: _mm256_movemask_epi8(block) as u32,
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn masks16(block: __m128i) -> Masks {
    let quotes = _mm_or_si128(
        _mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8)),
        _mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8)),
    );
    let most_control = _mm_set1_epi8(0x1f);
    let controls = _mm_cmpeq_epi8(_mm_max_epu8(block, most_control), most_control);
    Masks {
        quotes: _mm_movemask_epi8(quotes) as u32,
        controls: _mm_movemask_epi8(controls) as u32,
        non_ascii: _mm_movemask_epi8(block) as u32,
    }
}

/// Writes the 8 bytes in the low half of `bytes` at `out[len..]` with a
/// backslash before each one `quotes` (8 bits) marks; returns the bytes
/// written. Stores 16 bytes: `out` must have them.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
fn spread8(bytes: __m128i, quotes: u32, out: &mut [u8], len: usize) -> usize {
    let control = load16(&SPREAD[(quotes & 0xff) as usize]);
    let source = _mm_unpacklo_epi64(bytes, _mm_set1_epi8(b'\\' as i8));
    store16(
        array_mut(&mut out[len..len + 16]),
        _mm_shuffle_epi8(source, control),
    );
    8 + (quotes & 0xff).count_ones() as usize
}

/// [`spread8`] for the four 8 bytes of a block, two at a time (each
/// 128-bit half of a register is shuffled on its own): writes the block
/// with a backslash before each byte `quotes` marks at the start of `out`
/// (which takes the most it can be, 64 bytes) and returns its length.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
fn spread32(block: __m256i, quotes: u32, out: &mut [u8; 64]) -> usize {
    let backslashes = _mm256_set1_epi8(b'\\' as i8);
    // Bytes 0..8 and 16..24, then bytes 8..16 and 24..32, each beside 8
    // backslashes in its half.
    let even = _mm256_unpacklo_epi64(block, backslashes);
    let odd = _mm256_unpackhi_epi64(block, backslashes);
    let control = |at: u32| load16(&SPREAD[((quotes >> at) & 0xff) as usize]);
    let even = _mm256_shuffle_epi8(even, _mm256_set_m128i(control(16), control(0)));
    let odd = _mm256_shuffle_epi8(odd, _mm256_set_m128i(control(24), control(8)));
    // Where each 8 bytes start: 8 a step, and a byte for each escape
    // before. Stored in order, each over the zeros the last left.
    let starts = [
        0,
        8 + (quotes & 0xff).count_ones() as usize,
        16 + (quotes & 0xffff).count_ones() as usize,
        24 + (quotes & 0xff_ffff).count_ones() as usize,
    ];
    store16(
        array_mut(&mut out[starts[0]..starts[0] + 16]),
        _mm256_castsi256_si128(even),
    );
    store16(
        array_mut(&mut out[starts[1]..starts[1] + 16]),
        _mm256_castsi256_si128(odd),
    );
    store16(
        array_mut(&mut out[starts[2]..starts[2] + 16]),
        _mm256_extracti128_si256::<1>(even),
    );
    store16(
        array_mut(&mut out[starts[3]..starts[3] + 16]),
        _mm256_extracti128_si256::<1>(odd),
    );
    32 + quotes.count_ones() as usize
}

/// A block whose every escape is a backslash and one byte: the block with
/// each tab, newline and carriage return replaced by `t`, `n` and `r`, and
/// the mask of the bytes a backslash goes before (those and the quotes and
/// backslashes). `None` when a control byte needs `\u00XX`. Joined
/// records (`multiline=`, stack traces) have a `\n` or `\t` in nearly
/// every block, which went byte by byte.
#[inline]
#[target_feature(enable = "avx2")]
fn backslashed(block: __m256i, masks: Masks) -> Option<(__m256i, u32)> {
    if masks.controls == 0 {
        return Some((block, masks.quotes));
    }
    let named = |byte: u8, letter: u8| {
        let is = _mm256_cmpeq_epi8(block, _mm256_set1_epi8(byte as i8));
        (is, _mm256_and_si256(is, _mm256_set1_epi8(letter as i8)))
    };
    let (tabs, t) = named(b'\t', b't');
    let (newlines, n) = named(b'\n', b'n');
    let (returns, r) = named(b'\r', b'r');
    let names = _mm256_or_si256(_mm256_or_si256(tabs, newlines), returns);
    let named_mask = _mm256_movemask_epi8(names) as u32;
    if named_mask != masks.controls {
        return None;
    }
    let letters = _mm256_or_si256(_mm256_or_si256(t, n), r);
    let renamed = _mm256_or_si256(_mm256_andnot_si256(names, block), letters);
    Some((renamed, masks.quotes | named_mask))
}

/// Writes bytes one at a time (a block with a control byte in it).
fn write_each(bytes: &[u8], out: &mut [u8], mut len: usize) -> usize {
    for &byte in bytes {
        len += write_json_byte(byte, &mut out[len..]);
    }
    len
}

/// [`write_json_blocks`] with AVX2: 32 bytes a step while `out` has room
/// for the most they can take; then the last fewer than 32 as the end of
/// the text's last 32 bytes (one step where the 8-byte steps below took up
/// to four: escaping the bench's 250-byte lines went 8% faster);
/// else 8 at a time, the last fewer than 8 too when the text has 8 (read
/// with the 8 before them).
#[target_feature(enable = "avx2,popcnt")]
fn write_blocks_avx2(bytes: &[u8], out: &mut [u8]) -> Progress {
    let (mut read, mut len, mut non_ascii) = (0, 0, NonAscii::NONE);
    while read + 32 <= bytes.len() && len + 64 <= out.len() {
        let block = &bytes[read..read + 32];
        let vector = load32(array(block));
        let masks = masks32(vector);
        non_ascii.note_mask(read, masks.non_ascii.into());
        if masks.quotes | masks.controls == 0 {
            store32(array_mut(&mut out[len..len + 32]), vector);
            len += 32;
        } else if let Some((spread, marked)) = backslashed(vector, masks) {
            len += spread32(spread, marked, array_mut(&mut out[len..len + 64]));
        } else {
            len = write_each(block, out, len);
        }
        read += 32;
    }
    // The last fewer than 32 bytes as the end of the text's last 32: the
    // bytes before them are written again, over what they were written as
    // (the same bytes, with no control byte written as `\u00XX` among
    // them).
    if read >= 32 && read < bytes.len() && bytes.len() - read < 32 {
        let start = bytes.len() - 32;
        let vector = load32(array(&bytes[start..]));
        let masks = masks32(vector);
        if let Some((spread, marked)) = backslashed(vector, masks) {
            let again = read - start;
            let back = again + (marked & ((1u32 << again) - 1)).count_ones() as usize;
            let at = len - back;
            if at + 64 <= out.len() {
                non_ascii.note_mask(start, masks.non_ascii.into());
                len = at + spread32(spread, marked, array_mut(&mut out[at..at + 64]));
                read = bytes.len();
            }
        }
    }
    while read < bytes.len() && bytes.len() >= 8 && len + 16 <= out.len() {
        // The next 8 bytes; the last fewer than 8 as the top bytes of the
        // text's last 8, moved down (zeros above them).
        let (word, count) = match bytes.get(read..read + 8) {
            Some(word) => (u64::from_le_bytes(*array(word)), 8),
            None => {
                let last = u64::from_le_bytes(*array(&bytes[bytes.len() - 8..]));
                let count = bytes.len() - read;
                (last >> (8 * (8 - count)), count)
            }
        };
        let vector = _mm_cvtsi64_si128(word as i64);
        let masks = masks16(vector);
        // Only the low `count` bytes are the text's (the rest are zeros).
        let mine = (1u32 << count) - 1;
        non_ascii.note_mask(read, (masks.non_ascii & mine).into());
        if masks.controls & mine == 0 {
            let quotes = masks.quotes & mine;
            // The spread writes the zeros after the text's bytes too; they
            // are not counted.
            spread8(vector, quotes, out, len);
            len += count + quotes.count_ones() as usize;
        } else {
            len = write_each(&bytes[read..read + count], out, len);
        }
        read += count;
    }
    Progress {
        read,
        len,
        non_ascii,
    }
}

/// [`write_json_blocks`] with AVX-512: 64 bytes a step, the last fewer
/// with a masked load (no byte after them is read), so every byte is
/// written here, and nothing past the output (masked stores). Each half of
/// a block with quotes or backslashes is spread by one byte expand: its
/// mask has a 0 (a backslash, from the fill) before each marked byte's 1,
/// built with one bit deposit and one bit extract.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,bmi2,popcnt")]
fn write_blocks_avx512(bytes: &[u8], out: &mut [u8]) -> Progress {
    let (mut read, mut len, mut non_ascii) = (0, 0, NonAscii::NONE);
    let backslashes = _mm512_set1_epi8(b'\\' as i8);
    let quote_bytes = _mm512_set1_epi8(b'"' as i8);
    let first_printable = _mm512_set1_epi8(0x20);
    while read < bytes.len() {
        let block = &bytes[read..bytes.len().min(read + 64)];
        let count = block.len();
        let vector = load_up_to_64(block);
        // Bytes past `count` are zeros: neither quotes nor outside ASCII,
        // but below 0x20.
        let quotes = _mm512_cmpeq_epi8_mask(vector, quote_bytes)
            | _mm512_cmpeq_epi8_mask(vector, backslashes);
        let controls =
            _mm512_cmplt_epu8_mask(vector, first_printable) & _bzhi_u64(!0, count as u32);
        non_ascii.note_mask(read, _mm512_movepi8_mask(vector));
        if controls != 0 {
            len = write_each(block, out, len);
        } else {
            let low = count.min(32);
            len += expand_quotes(vector, quotes as u32, low, backslashes, out, len);
            if count > 32 {
                let high = _mm512_castsi256_si512(_mm512_extracti64x4_epi64::<1>(vector));
                let high_quotes = (quotes >> 32) as u32;
                len += expand_quotes(high, high_quotes, count - 32, backslashes, out, len);
            }
        }
        read += count;
    }
    Progress {
        read,
        len,
        non_ascii,
    }
}

/// Writes the first `count` (at most 32) bytes of `bytes` at `out[at..]`
/// with a backslash before each one `quotes` marks (none after `count`);
/// returns the bytes written, the only ones stored.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,bmi2,popcnt")]
fn expand_quotes(
    bytes: __m512i,
    quotes: u32,
    count: usize,
    backslashes: __m512i,
    out: &mut [u8],
    at: usize,
) -> usize {
    const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
    const EVEN: u64 = 0x5555_5555_5555_5555;
    // Two bits a byte: the odd one (a 1) for the byte itself, the even one
    // (a 0) kept only before a marked byte. Packed, the 1s say where the
    // bytes go and the 0s where backslashes do.
    let slots = ODD | _pdep_u64(u64::from(quotes), EVEN);
    let places = _pext_u64(ODD, slots);
    let written = count + quotes.count_ones() as usize;
    store_up_to_64(
        &mut out[at..at + written],
        _mm512_mask_expand_epi8(backslashes, places, bytes),
    );
    written
}

/// The bytes of `block` (at most 64), zeros after them; reads no byte
/// past it.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
fn load_up_to_64(block: &[u8]) -> __m512i {
    assert!(block.len() <= 64);
    let lanes = _bzhi_u64(!0, block.len() as u32);
    // SAFETY: the mask has a bit for each of the block's bytes only, and a
    // masked load touches no byte whose bit is clear.
    unsafe { _mm512_maskz_loadu_epi8(lanes, block.as_ptr().cast()) }
}

/// Writes the first `out.len()` (at most 64) bytes of `bytes` into `out`;
/// writes no byte past it.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
fn store_up_to_64(out: &mut [u8], bytes: __m512i) {
    assert!(out.len() <= 64);
    let lanes = _bzhi_u64(!0, out.len() as u32);
    // SAFETY: the mask has a bit for each byte of `out` only, and a masked
    // store touches no byte whose bit is clear.
    unsafe { _mm512_mask_storeu_epi8(out.as_mut_ptr().cast(), lanes, bytes) }
}

/// [`write_json_blocks`] with SSE2 (no byte shuffle): 16 bytes a step,
/// stopping at each byte to escape. Each step stores 16 bytes before it
/// knows how many it keeps, so `out` must have them.
#[target_feature(enable = "sse2")]
fn write_blocks_sse2(bytes: &[u8], out: &mut [u8]) -> Progress {
    let (mut read, mut len, mut non_ascii) = (0, 0, NonAscii::NONE);
    while read + 16 <= bytes.len() && len + 16 <= out.len() {
        let block: &[u8; 16] = array(&bytes[read..read + 16]);
        let vector = load16(block);
        store16(array_mut(&mut out[len..len + 16]), vector);
        let masks = masks16(vector);
        let escapes = masks.quotes | masks.controls;
        if escapes == 0 {
            non_ascii.note_mask(read, masks.non_ascii.into());
            read += 16;
            len += 16;
            continue;
        }
        let at = escapes.trailing_zeros() as usize;
        // Bytes after `at` are read again from the next step.
        non_ascii.note_mask(read, (masks.non_ascii & ((1 << at) - 1)).into());
        len += at;
        // The escape is part of the output, which `out` holds.
        len += write_json_byte(block[at], &mut out[len..]);
        read += at + 1;
    }
    Progress {
        read,
        len,
        non_ascii,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each block writer (and the words writer of other CPUs) does with `bytes`, into room of exactly
    /// what it takes and with spare room, against the byte-by-byte
    /// writer: the same bytes for what it read, and its ASCII flag right.
    fn check_writers(bytes: &[u8]) {
        let want_len = escaped(bytes).len();
        type WriterFn = fn(&[u8], &mut [u8]) -> Progress;
        // Each writer, and the most bytes it leaves when `out` has room.
        let mut writers: Vec<(&str, WriterFn, usize)> = vec![(
            "sse2",
            // SAFETY: every x86_64 CPU has SSE2.
            |bytes, out| unsafe { write_blocks_sse2(bytes, out) },
            16,
        )];
        writers.push(("words", super::super::write_json_words, 8));
        if best_writer() as u8 >= Writer::Avx2 as u8 {
            // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
            writers.push((
                "avx2",
                |bytes, out| unsafe { write_blocks_avx2(bytes, out) },
                8,
            ));
        }
        if best_writer() == Writer::Avx512 {
            // SAFETY: the CPU has what it needs, checked just above.
            writers.push((
                "avx512",
                |bytes, out| unsafe { write_blocks_avx512(bytes, out) },
                1,
            ));
        }
        for (name, writer, block) in writers {
            for spare in [0, 1, 17, 200] {
                let mut out = vec![0xaa; want_len + spare];
                let progress = writer(bytes, &mut out);
                // What it read is written as the reference writes it.
                assert_eq!(
                    &out[..progress.len],
                    &escaped(&bytes[..progress.read])[..],
                    "{name} {bytes:?} spare {spare}"
                );
                // AVX-512 writes all, and nothing past it.
                if name == "avx512" {
                    assert_eq!(progress.read, bytes.len(), "{bytes:?}");
                    assert!(out[progress.len..].iter().all(|&b| b == 0xaa), "{bytes:?}");
                }
                // Every byte outside ASCII it read is in its span; the
                // span may also take in bytes it looked at and left for
                // the next step, and it starts and ends at such bytes.
                let span = progress.non_ascii;
                for (at, &byte) in bytes[..progress.read].iter().enumerate() {
                    if byte >= 0x80 {
                        assert!(span.start <= at && at < span.end, "{name} {bytes:?}");
                    }
                }
                if !span.is_empty() {
                    assert!(span.end <= bytes.len(), "{name} {bytes:?}");
                    assert!(bytes[span.start] >= 0x80, "{name} {bytes:?} {span:?}");
                    assert!(bytes[span.end - 1] >= 0x80, "{name} {bytes:?} {span:?}");
                }
                // With room, whole blocks are all written; the rest is
                // shorter than a block.
                if spare == 200 {
                    assert!(bytes.len() - progress.read < block, "{name} {bytes:?}");
                    // AVX2 reads the last few bytes with the 8 before.
                    if name == "avx2" && bytes.len() >= 8 {
                        assert_eq!(progress.read, bytes.len(), "{bytes:?}");
                    }
                }
            }
        }
    }

    /// The reference: the pieces `json_string_content` hands out.
    fn escaped(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::json_string_content(bytes, |piece| out.extend_from_slice(piece));
        out
    }

    #[test]
    fn the_spread_table_puts_a_backslash_before_each_marked_byte() {
        for (mask, entry) in SPREAD.iter().enumerate() {
            let mut expected = Vec::new();
            for from in 0..8u8 {
                if mask & (1 << from) != 0 {
                    expected.push(8);
                }
                expected.push(from);
            }
            assert_eq!(&entry[..expected.len()], &expected[..], "{mask:08b}");
            assert!(entry[expected.len()..].iter().all(|&c| c == 0x80));
        }
    }

    #[test]
    fn block_writers_escape_each_special_byte_at_each_position_and_offset() {
        let specials = [
            b'"', b'\\', b'\n', b'\t', 0, 0x1f, 0x7f, 0x80, 0xc3, 0xff, b'a', b' ',
        ];
        // A buffer read at every offset within a word, for misaligned
        // vector loads.
        let mut buffer = [b'x'; 8 + 100];
        for special in specials {
            for at in 0..80 {
                for offset in 0..8 {
                    buffer.fill(b'x');
                    buffer[offset + at] = special;
                    check_writers(&buffer[offset..offset + 80]);
                }
            }
        }
    }

    #[test]
    fn block_writers_write_every_length_and_dense_escapes() {
        let mut buffer = Vec::new();
        for len in 0..100 {
            for offset in [0, 1, 3, 7] {
                for fill in [
                    &b"x"[..],
                    b"\"",
                    b"a\\",
                    b"\"k\":\"v\",",
                    b"\xc3\xa9\"",
                    b"\n\"x",
                    // Named escapes only (a stack trace's), and beside ones
                    // written as \u00XX.
                    b"\n\tat x.y(Z.java:1)\r\"",
                    b"\t\x01\n\x1f",
                ] {
                    buffer.clear();
                    buffer.resize(offset, b'-');
                    buffer.extend(fill.iter().cycle().take(len));
                    check_writers(&buffer[offset..]);
                }
            }
        }
    }
}
