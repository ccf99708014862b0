//! Delivery acknowledgements and checkpoints for file inputs (DESIGN §3).
//!
//! * A file read carries a [`Mark`]: (file slot, slot generation, end
//!   offset). The CPU worker merges marks into the batch that completes
//!   them ([`Marks`], at most [`MAX_MARKS`] per batch, inline).
//! * When the CPU worker sends a batch on, it takes the next sequence
//!   number in its lane's [`AckLog`] and copies the batch's marks there.
//!   Every output acks the sequence number once its sink accepted the
//!   batch; the last one makes the entry acked.
//! * Whoever acks advances the log's tail over consecutive acked entries
//!   and applies their marks to [`AckedOffsets`]: per file slot, the offset
//!   below which every byte is delivered (the watermark). Acks arrive out of
//!   order across workers and outputs; the tail only passes an entry once
//!   every earlier one is acked, so the watermark never passes
//!   undelivered data. The log is fixed-size: a CPU worker that finds it
//!   full waits, which is backpressure like any full ring.
//! * The I/O worker publishes the list of files it knows ([`InputState`]),
//!   and the [`Checkpointer`] (`store.rs`) writes them with their
//!   watermarks to `--data-dir` atomically (temp file, fsync, rename, fsync
//!   the directory), keeping the previous good copy; the checkpoint writer
//!   thread ([`writer::CheckpointWriter`]) calls it every interval.
//! * A file's checkpoint is found again by what identifies the file
//!   (device, inode and fingerprint) under its input's path pattern
//!   ([`CheckpointKey`]), not the input's whole SPEC: editing `format=` or
//!   `from=` keeps every file's place. Files saved under a pattern no input
//!   has any more are taken over by an input whose pattern matches their
//!   path, and what is left unmatched is said in a warning and kept.

mod store;
pub(crate) mod writer;

pub(crate) use store::{CheckpointKey, Checkpointer, Loaded, input_keys};

use crate::ring::Waker;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// File marks one batch can carry (distinct files merged into it).
pub(crate) const MAX_MARKS: usize = 8;
/// Bytes at the start of a file hashed into its fingerprint.
pub(crate) const FINGERPRINT_BYTES: usize = 1024;
/// Offsets are packed with a 16-bit slot generation into one atomic word.
const OFFSET_BITS: u32 = 48;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const STATE_FILE: &str = "checkpoints.json";
const PREVIOUS_FILE: &str = "checkpoints.json.prev";
const TEMP_FILE: &str = "checkpoints.json.tmp";
const LOCK_FILE: &str = "lock";
/// Version 2 keys inputs by their absolute path pattern; version 1 (read,
/// never written) keyed them by their SPEC as typed.
const STATE_VERSION: u64 = 2;
const SPEC_KEYED_VERSION: u64 = 1;

/// "Every byte of the file in `slot` (generation `generation`) before `end`
/// has been read into this batch or an earlier one."
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub slot: u32,
    pub generation: u16,
    pub end: u64,
}

/// The marks a batch carries, inline (no allocation per batch).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    marks: [Mark; MAX_MARKS],
    count: u8,
}

impl Marks {
    pub fn one(mark: Mark) -> Self {
        let mut marks = Self::default();
        marks.marks[0] = mark;
        marks.count = 1;
        marks
    }

    pub fn as_slice(&self) -> &[Mark] {
        &self.marks[..self.count as usize]
    }

    /// Whether `later`'s marks fit once merged (a file's later mark replaces
    /// its earlier one).
    pub fn can_absorb(&self, later: &Marks) -> bool {
        let new = later
            .as_slice()
            .iter()
            .filter(|mark| !self.as_slice().iter().any(|m| same_file(m, mark)))
            .count();
        self.count as usize + new <= MAX_MARKS
    }

    /// Merges the marks of a batch that comes after this one.
    pub fn absorb(&mut self, later: &Marks) {
        for mark in later.as_slice() {
            let count = self.count as usize;
            match self.marks[..count].iter_mut().find(|m| same_file(m, mark)) {
                Some(existing) => existing.end = mark.end,
                None => {
                    assert!(count < MAX_MARKS, "absorb checked with can_absorb()");
                    self.marks[count] = *mark;
                    self.count += 1;
                }
            }
        }
    }
}

fn same_file(a: &Mark, b: &Mark) -> bool {
    a.slot == b.slot && a.generation == b.generation
}

fn pack(generation: u16, offset: u64) -> u64 {
    (u64::from(generation) << OFFSET_BITS) | (offset & OFFSET_MASK)
}

/// Per file slot of one file input: the delivered watermark, packed with
/// the slot's generation so a stale mark never lands on a reused slot, the
/// offset read to (for the checkpoint lag), and the file's path (for what
/// the CPU worker derives from it, e.g. Kubernetes metadata).
pub(crate) struct AckedOffsets {
    slots: Box<[AtomicU64]>,
    read: Box<[AtomicU64]>,
    /// The path of the file a slot holds, with its generation: set by the
    /// I/O worker when it opens the file (before any batch of it is
    /// sent), read by the CPU worker once per file. Locked once per file,
    /// never per batch.
    paths: Box<[Mutex<(u16, PathBuf)>]>,
    /// Bytes the watermarks moved forward, ever: tells the checkpoint
    /// thread how much was delivered since its last write.
    delivered_bytes: AtomicU64,
}

impl AckedOffsets {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            read: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            paths: (0..slots)
                .map(|_| Mutex::new((0, PathBuf::new())))
                .collect(),
            delivered_bytes: AtomicU64::new(0),
        })
    }

    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// A file starts in `slot`, delivered up to `delivered` and read up to
    /// `read` (by the I/O worker, before any batch of it is sent; also when
    /// the slot is let go, with a fresh generation and zeros).
    pub fn reset(&self, slot: usize, generation: u16, delivered: u64, read: u64) {
        self.read[slot].store(read, Ordering::Relaxed);
        self.slots[slot].store(pack(generation, delivered), Ordering::Release);
    }

    /// The file in `slot` (generation `generation`) is at `path`.
    pub fn set_path(&self, slot: usize, generation: u16, path: &std::path::Path) {
        if let Some(cell) = self.paths.get(slot) {
            let mut cell = cell.lock().unwrap_or_else(|p| p.into_inner());
            cell.0 = generation;
            cell.1.clear();
            cell.1.push(path);
        }
    }

    /// Calls `read` with the path of the file in `slot` if that slot still
    /// holds generation `generation`.
    pub fn with_path(&self, slot: usize, generation: u16, read: impl FnOnce(&std::path::Path)) {
        if let Some(cell) = self.paths.get(slot) {
            let cell = cell.lock().unwrap_or_else(|p| p.into_inner());
            if cell.0 == generation {
                read(&cell.1);
            }
        }
    }

    /// Bytes the watermarks moved forward since start.
    pub fn delivered_total(&self) -> u64 {
        self.delivered_bytes.load(Ordering::Relaxed)
    }

    /// The I/O worker read the file in `slot` up to `offset`.
    pub fn set_read(&self, slot: usize, offset: u64) {
        self.read[slot].store(offset, Ordering::Relaxed);
    }

    /// Bytes read but not yet delivered by every output, over every file:
    /// what a crash now would read again.
    pub fn lag(&self) -> u64 {
        self.read
            .iter()
            .zip(self.slots.iter())
            .map(|(read, delivered)| {
                let delivered = delivered.load(Ordering::Relaxed) & OFFSET_MASK;
                read.load(Ordering::Relaxed).saturating_sub(delivered)
            })
            .sum()
    }

    /// The watermark of the file in `slot`, if that slot still holds it.
    pub fn get(&self, slot: usize, generation: u16) -> Option<u64> {
        let packed = self.slots.get(slot)?.load(Ordering::Acquire);
        ((packed >> OFFSET_BITS) as u16 == generation).then_some(packed & OFFSET_MASK)
    }

    fn apply(&self, mark: &Mark) {
        let Some(cell) = self.slots.get(mark.slot as usize) else {
            return;
        };
        let new = pack(mark.generation, mark.end);
        let mut current = cell.load(Ordering::Acquire);
        // Only while the slot holds the mark's file (its generation).
        while (current >> OFFSET_BITS) as u16 == mark.generation {
            match cell.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let moved = mark.end.saturating_sub(current & OFFSET_MASK);
                    self.delivered_bytes.fetch_add(moved, Ordering::Relaxed);
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }
}

struct Entry {
    /// Outputs that have not acked yet; 0 once delivered everywhere.
    remaining: AtomicU32,
    count: AtomicU32,
    /// Mark slots and generations, packed as `slot << 16 | generation`.
    files: [AtomicU64; MAX_MARKS],
    ends: [AtomicU64; MAX_MARKS],
}

/// One file lane's acknowledgement log: a fixed ring of batch entries in
/// the order the CPU worker sent them.
pub(crate) struct AckLog {
    entries: Box<[Entry]>,
    /// Next sequence number; written by the CPU worker only.
    head: AtomicU64,
    /// First entry not yet retired; moved by whoever holds `advancing`.
    tail: AtomicU64,
    advancing: AtomicBool,
    offsets: Arc<AckedOffsets>,
    /// The CPU worker, woken when a full log frees room.
    producer: Arc<Waker>,
}

impl AckLog {
    /// The per-slot table whose watermarks this log moves.
    pub fn offsets(&self) -> &Arc<AckedOffsets> {
        &self.offsets
    }

    pub fn new(capacity: usize, offsets: Arc<AckedOffsets>, producer: Arc<Waker>) -> Arc<Self> {
        let capacity = capacity.next_power_of_two().max(2);
        Arc::new(Self {
            entries: (0..capacity)
                .map(|_| Entry {
                    remaining: AtomicU32::new(0),
                    count: AtomicU32::new(0),
                    files: std::array::from_fn(|_| AtomicU64::new(0)),
                    ends: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            advancing: AtomicBool::new(false),
            offsets,
            producer,
        })
    }

    fn entry(&self, seq: u64) -> &Entry {
        &self.entries[(seq as usize) & (self.entries.len() - 1)]
    }

    pub fn has_room(&self) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        head - self.tail.load(Ordering::Acquire) < self.entries.len() as u64
    }

    /// Records a batch that `outputs` outputs must ack; `None` when the log
    /// is full. Called by the lane's CPU worker only.
    pub fn publish(&self, marks: &Marks, outputs: u32) -> Option<u64> {
        if !self.has_room() {
            return None;
        }
        let seq = self.head.load(Ordering::Relaxed);
        let entry = self.entry(seq);
        for (index, mark) in marks.as_slice().iter().enumerate() {
            entry.files[index].store(
                (u64::from(mark.slot) << 16) | u64::from(mark.generation),
                Ordering::Relaxed,
            );
            entry.ends[index].store(mark.end, Ordering::Relaxed);
        }
        entry
            .count
            .store(marks.as_slice().len() as u32, Ordering::Relaxed);
        entry.remaining.store(outputs.max(1), Ordering::Relaxed);
        self.head.store(seq + 1, Ordering::Release);
        Some(seq)
    }

    /// One output delivered batch `seq`.
    pub fn ack(&self, seq: u64) {
        if self.entry(seq).remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.advance();
        }
    }

    /// Retires consecutive acked entries from the tail, applying their
    /// marks. Never blocks: if another thread is advancing, it re-checks
    /// after letting go, so no acked entry is left behind.
    fn advance(&self) {
        let mut moved = false;
        loop {
            if self
                .advancing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                break;
            }
            let head = self.head.load(Ordering::Acquire);
            let mut tail = self.tail.load(Ordering::Relaxed);
            while tail < head && self.entry(tail).remaining.load(Ordering::SeqCst) == 0 {
                let entry = self.entry(tail);
                let count = entry.count.load(Ordering::Relaxed) as usize;
                for index in 0..count.min(MAX_MARKS) {
                    let file = entry.files[index].load(Ordering::Relaxed);
                    self.offsets.apply(&Mark {
                        slot: (file >> 16) as u32,
                        generation: file as u16,
                        end: entry.ends[index].load(Ordering::Relaxed),
                    });
                }
                tail += 1;
                moved = true;
            }
            self.tail.store(tail, Ordering::Release);
            self.advancing.store(false, Ordering::SeqCst);
            let head = self.head.load(Ordering::Acquire);
            if !(tail < head && self.entry(tail).remaining.load(Ordering::SeqCst) == 0) {
                break;
            }
        }
        if moved {
            self.producer.wake();
        }
    }
}

/// A hash of a file's first bytes (up to [`FINGERPRINT_BYTES`]): with
/// (device, inode) it tells a file apart from a new one reusing the inode,
/// and a rewritten file from the one read before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of the file's first `min(size, FINGERPRINT_BYTES)`
    /// bytes.
    pub fn of(file: &File) -> std::io::Result<Self> {
        Self::of_prefix(file, FINGERPRINT_BYTES)
    }

    fn of_prefix(file: &File, len: usize) -> std::io::Result<Self> {
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let filled = read_prefix(file, &mut buf[..len.min(FINGERPRINT_BYTES)])?;
        Ok(Self::of_head(&buf[..filled]))
    }

    /// The fingerprint of a file that starts with `bytes` (their first
    /// [`FINGERPRINT_BYTES`]).
    fn of_head(bytes: &[u8]) -> Self {
        let len = bytes.len().min(FINGERPRINT_BYTES);
        Self {
            len: len as u32,
            hash: fnv1a(&bytes[..len]),
        }
    }

    /// The fingerprint that describes what the file held when `bytes` were
    /// just read from it at offset `at`. Bytes read from the start are its
    /// first bytes: they replace this fingerprint, which may have been taken
    /// before a truncation or while the file was shorter. Bytes read from
    /// where a short fingerprint's prefix ends extend it. Otherwise it is
    /// unchanged.
    pub fn after_read(self, at: u64, bytes: &[u8]) -> Self {
        let len = self.len as usize;
        if bytes.is_empty() {
            self
        } else if at == 0 {
            Self::of_head(bytes)
        } else if len < FINGERPRINT_BYTES && at == len as u64 {
            let take = bytes.len().min(FINGERPRINT_BYTES - len);
            Self {
                len: (len + take) as u32,
                hash: fnv1a_from(self.hash, &bytes[..take]),
            }
        } else {
            self
        }
    }

    /// The fingerprint of the file's first [`FINGERPRINT_BYTES`] now, if
    /// it still starts with the bytes this one was taken of; `None` if it
    /// does not (truncated, and perhaps written again, since).
    pub fn extended(&self, file: &File) -> std::io::Result<Option<Self>> {
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let filled = read_prefix(file, &mut buf)?;
        let len = self.len as usize;
        if len > 0 && (filled < len || Self::of_head(&buf[..len]) != *self) {
            return Ok(None);
        }
        Ok(Some(Self::of_head(&buf[..filled])))
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    /// An empty fingerprint (an empty file, or one that could not be read)
    /// matches every file.
    pub fn matches(&self, file: &File) -> bool {
        if self.len == 0 {
            return true;
        }
        match Self::of_prefix(file, self.len as usize) {
            Ok(now) => now == *self,
            Err(_) => false,
        }
    }

    /// The fingerprint of bytes just read (their last [`FINGERPRINT_BYTES`]).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let start = bytes.len().saturating_sub(FINGERPRINT_BYTES);
        Self {
            len: (bytes.len() - start) as u32,
            hash: fnv1a(&bytes[start..]),
        }
    }

    /// Whether `file` holds, just before `end`, the bytes this fingerprint
    /// was taken of (see [`Fingerprint::of_bytes`]).
    pub fn matches_before(&self, file: &File, end: u64) -> bool {
        let len = u64::from(self.len);
        if len > end || self.len as usize > FINGERPRINT_BYTES {
            return false;
        }
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let buf = &mut buf[..self.len as usize];
        file.read_exact_at(buf, end - len).is_ok() && fnv1a(buf) == self.hash
    }

    /// Hashed over a whole [`FINGERPRINT_BYTES`] prefix: distinctive enough
    /// to recognise a copy by.
    pub fn is_full(&self) -> bool {
        self.len as usize == FINGERPRINT_BYTES
    }

    /// Whether a longer prefix could be hashed now that the file grew.
    pub fn can_grow(&self, size: u64) -> bool {
        (self.len as usize) < FINGERPRINT_BYTES && size > u64::from(self.len)
    }
}

/// Reads the file's first `buf.len()` bytes (fewer if it is shorter);
/// returns how many.
fn read_prefix(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a of more bytes after those that gave `hash`.
fn fnv1a_from(hash: u64, bytes: &[u8]) -> u64 {
    let mut hash = hash;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One file as the checkpoint knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedFile {
    pub path: PathBuf,
    pub identity: (u64, u64),
    pub fingerprint: Fingerprint,
    /// Every byte before this one was delivered.
    pub offset: u64,
    /// When a file closed at its end was last modified (not saved): a
    /// rescan skips it while its size and this are unchanged.
    pub modified: Option<std::time::SystemTime>,
}

/// A file in an I/O worker's published list: open files name their slot,
/// whose live watermark replaces `saved.offset` when the state is written.
pub(crate) struct KnownFile {
    pub saved: SavedFile,
    pub live: Option<(usize, u16)>,
}

/// What one file input shares with the checkpointer.
pub(crate) struct InputState {
    pub name: String,
    pub offsets: Arc<AckedOffsets>,
    /// Replaced by the I/O worker when its set of files changes; `None`
    /// until its first scan (the loaded state is written meanwhile).
    pub files: Mutex<Option<Vec<KnownFile>>>,
}

impl InputState {
    pub fn new(name: String, offsets: Arc<AckedOffsets>) -> Arc<Self> {
        Arc::new(Self {
            name,
            offsets,
            files: Mutex::new(None),
        })
    }

    pub fn publish(&self, files: Vec<KnownFile>) {
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = Some(files);
    }

    /// The files with their delivered offsets now; `None` before the I/O
    /// worker's first scan.
    fn current(&self) -> Option<Vec<SavedFile>> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let files = files.as_ref()?;
        let current = files
            .iter()
            .map(|known| {
                let mut saved = known.saved.clone();
                if let Some((slot, generation)) = known.live
                    && let Some(offset) = self.offsets.get(slot, generation)
                {
                    saved.offset = offset;
                }
                saved
            })
            .collect();
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(slot: u32, end: u64) -> Mark {
        Mark {
            slot,
            generation: 1,
            end,
        }
    }

    #[test]
    fn marks_merge_per_file_and_keep_the_later_end() {
        let mut marks = Marks::one(mark(0, 10));
        marks.absorb(&Marks::one(mark(1, 5)));
        marks.absorb(&Marks::one(mark(0, 20)));
        assert_eq!(marks.as_slice(), &[mark(0, 20), mark(1, 5)]);
        let mut full = Marks::default();
        for slot in 0..MAX_MARKS as u32 {
            full.absorb(&Marks::one(mark(slot, 1)));
        }
        assert!(full.can_absorb(&Marks::one(mark(3, 9))));
        assert!(!full.can_absorb(&Marks::one(mark(99, 9))));
    }

    #[test]
    fn watermark_waits_for_every_earlier_batch() {
        let offsets = AckedOffsets::new(4);
        offsets.reset(0, 1, 0, 250);
        let log = AckLog::new(8, Arc::clone(&offsets), Waker::for_test());
        let first = log.publish(&Marks::one(mark(0, 100)), 2).unwrap();
        let second = log.publish(&Marks::one(mark(0, 250)), 2).unwrap();
        // The second batch is delivered everywhere first: nothing moves.
        log.ack(second);
        log.ack(second);
        assert_eq!(offsets.get(0, 1), Some(0));
        assert_eq!(offsets.lag(), 250);
        // The first batch is delivered by one of two outputs only.
        log.ack(first);
        assert_eq!(offsets.get(0, 1), Some(0));
        log.ack(first);
        assert_eq!(offsets.get(0, 1), Some(250));
        assert_eq!(offsets.lag(), 0);
    }

    #[test]
    fn a_full_log_refuses_until_the_tail_moves() {
        let offsets = AckedOffsets::new(1);
        let log = AckLog::new(2, Arc::clone(&offsets), Waker::for_test());
        let a = log.publish(&Marks::default(), 1).unwrap();
        log.publish(&Marks::default(), 1).unwrap();
        assert!(log.publish(&Marks::default(), 1).is_none());
        log.ack(a);
        assert!(log.publish(&Marks::default(), 1).is_some());
    }

    #[test]
    fn stale_marks_do_not_land_on_a_reused_slot() {
        let offsets = AckedOffsets::new(1);
        offsets.reset(0, 7, 40, 40);
        offsets.apply(&Mark {
            slot: 0,
            generation: 6,
            end: 1000,
        });
        assert_eq!(offsets.get(0, 7), Some(40));
        assert_eq!(offsets.get(0, 6), None);
    }

    #[test]
    fn concurrent_out_of_order_acks_reach_the_last_offset() {
        let offsets = AckedOffsets::new(1);
        offsets.reset(0, 1, 0, 10_000);
        let log = AckLog::new(1024, Arc::clone(&offsets), Waker::for_test());
        let seqs: Vec<u64> = (1..=1000)
            .map(|n| log.publish(&Marks::one(mark(0, n * 10)), 1).unwrap())
            .collect();
        std::thread::scope(|scope| {
            for part in 0..4 {
                let log = &log;
                let seqs = &seqs;
                scope.spawn(move || {
                    for seq in seqs.iter().rev().skip(part).step_by(4) {
                        log.ack(*seq);
                    }
                });
            }
        });
        assert_eq!(offsets.get(0, 1), Some(10_000));
        assert_eq!(offsets.lag(), 0);
    }

    #[test]
    fn fingerprints_recognise_a_prefix_and_the_bytes_before_an_offset() {
        let path = crate::test_support::scratch_path("fp");
        let text: Vec<u8> = (0..5000u32).map(|n| b'a' + (n % 26) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let head = Fingerprint::of(&file).unwrap();
        assert!(head.is_full());
        assert!(head.matches(&file));
        let tail = Fingerprint::of_bytes(&text[..3000]);
        assert_eq!(tail.len as usize, FINGERPRINT_BYTES);
        assert!(tail.matches_before(&file, 3000));
        assert!(!tail.matches_before(&file, 3001));
        std::fs::write(&path, b"other").unwrap();
        assert!(!head.matches(&File::open(&path).unwrap()));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_fingerprint_follows_the_bytes_read_from_the_start_and_grows_from_there() {
        let path = crate::test_support::scratch_path("fp-after-read");
        let text: Vec<u8> = (0..3000u32).map(|n| b'a' + (n % 23) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let full = Fingerprint::of(&File::open(&path).unwrap()).unwrap();
        let empty = Fingerprint::default();
        // A read from the start gives the file's first bytes at once, and
        // replaces a fingerprint of other bytes (taken before a truncation).
        assert_eq!(empty.after_read(0, &text[..2000]), full);
        let other = Fingerprint::of_head(b"other bytes");
        assert_eq!(other.after_read(0, &text), full);
        let shorter = full.after_read(0, &text[..100]);
        assert_eq!((shorter.len, shorter.hash), (100, fnv1a(&text[..100])));
        // Short reads from the start, then on from where the prefix ends.
        let short = empty.after_read(0, &text[..100]);
        let longer = short.after_read(100, &text[100..700]);
        assert_eq!(longer, Fingerprint::of_head(&text[..700]));
        assert_eq!(longer.after_read(700, &text[700..]), full);
        // Reads elsewhere, or of nothing, change nothing.
        assert_eq!(short.after_read(200, &text[200..900]), short);
        assert_eq!(full.after_read(1024, &text[1024..]), full);
        assert_eq!(full.after_read(0, &[]), full);

        // Grown from the file only while it still starts with the prefix.
        let file = File::open(&path).unwrap();
        assert_eq!(short.extended(&file).unwrap(), Some(full));
        assert_eq!(empty.extended(&file).unwrap(), Some(full));
        assert_eq!(other.extended(&file).unwrap(), None);
        std::fs::write(&path, &text[..50]).unwrap();
        assert_eq!(short.extended(&File::open(&path).unwrap()).unwrap(), None);
        std::fs::remove_file(&path).unwrap();
    }
}
