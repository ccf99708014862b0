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
//!   and the [`Checkpointer`] writes them with their watermarks to
//!   `--data-dir` atomically (temp file, fsync, rename, fsync the
//!   directory), keeping the previous good copy.
//! * A file's checkpoint is found again by what identifies the file
//!   (device, inode and fingerprint) under its input's path pattern
//!   ([`CheckpointKey`]), not the input's whole SPEC: editing `format=` or
//!   `from=` keeps every file's place. Files saved under a pattern no input
//!   has any more are taken over by an input whose pattern matches their
//!   path, and what is left unmatched is said in a warning and kept.

use crate::ring::Waker;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
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
/// the slot's generation so a stale mark never lands on a reused slot, and
/// the offset read to (for the checkpoint lag).
pub(crate) struct AckedOffsets {
    slots: Box<[AtomicU64]>,
    read: Box<[AtomicU64]>,
    /// Bytes the watermarks moved forward, ever: tells the checkpoint
    /// thread how much was delivered since its last write.
    delivered_bytes: AtomicU64,
}

impl AckedOffsets {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            read: (0..slots).map(|_| AtomicU64::new(0)).collect(),
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
        let len = len.min(FINGERPRINT_BYTES);
        let mut filled = 0;
        while filled < len {
            match file.read_at(&mut buf[filled..len], filled as u64) {
                Ok(0) => break,
                Ok(count) => filled += count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Self {
            len: filled as u32,
            hash: fnv1a(&buf[..filled]),
        })
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

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
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

/// Saved offsets by checkpoint key, then by (device, inode).
pub(crate) type Loaded = HashMap<String, HashMap<(u64, u64), SavedFile>>;

/// Under what a file input's checkpoints are saved: its path pattern made
/// absolute, so that keys other than the path (`format`, `from`) can change
/// without losing any file's place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckpointKey {
    /// The key in the state file: `pattern`, with ` #N` for the N-th
    /// (N > 1) input of this run with the same pattern.
    pub key: String,
    /// The absolute path pattern (a path or a glob).
    pub pattern: String,
    /// The input's SPEC, for messages.
    pub input: String,
}

/// The checkpoint key of each input (`None` for inputs other than files).
pub(crate) fn input_keys(inputs: &[crate::config::InputSpec]) -> Vec<Option<CheckpointKey>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    inputs
        .iter()
        .map(|input| {
            let pattern = absolute_pattern(input.file_pattern()?);
            let count = seen.entry(pattern.clone()).or_default();
            *count += 1;
            let key = match *count {
                1 => pattern.clone(),
                n => format!("{pattern} #{n}"),
            };
            Some(CheckpointKey {
                key,
                pattern,
                input: input.name.clone(),
            })
        })
        .collect()
}

fn absolute_pattern(pattern: &str) -> String {
    std::path::absolute(pattern)
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_else(|_| pattern.to_string())
}

/// The key a version 1 state file's input SPEC (`file:PATTERN[,k=v]...`)
/// has now: its pattern, made absolute.
fn key_of_spec(spec: &str) -> String {
    let target = spec.strip_prefix("file:").unwrap_or(spec);
    let pattern = target.split(',').next().unwrap_or(target);
    absolute_pattern(pattern)
}

/// Whether a file input with this (absolute) pattern reads `path`.
fn pattern_reads(pattern: &str, path: &Path) -> bool {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if !crate::pattern::is_glob(pattern) {
        return Path::new(pattern) == path;
    }
    // As the file input expands a glob: `*` stops at `/`.
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    glob::Pattern::new(pattern).is_ok_and(|glob| glob.matches_path_with(&path, options))
}

/// Writes the state of every file input to `--data-dir`.
pub(crate) struct Checkpointer {
    dir: PathBuf,
    dir_handle: File,
    inputs: Vec<Arc<InputState>>,
    /// Files saved under keys no input of this run has (and no input took
    /// over): kept as they were, so removing an input for one run does not
    /// lose its place.
    carried: BTreeMap<String, Vec<SavedFile>>,
    /// The loaded state of this run's inputs, written for an input until
    /// its reader has published its own list.
    loaded: HashMap<String, Vec<SavedFile>>,
    last_written: Option<Vec<u8>>,
    /// Held (flock) for the life of the process: one ringway per data dir.
    _lock: File,
}

impl Checkpointer {
    /// Opens (creating it if needed) and locks the data directory, and loads
    /// the saved state for the inputs of `keys`. Errors are one line for
    /// the operator; checkpoints that no input matches are warned about.
    pub fn open(dir: &Path, keys: &[CheckpointKey]) -> Result<(Self, Loaded), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create --data-dir {}: {e}", dir.display()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| format!("cannot write in --data-dir {}: {e}", dir.display()))?;
        // SAFETY: flock takes a descriptor we own and integer flags.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "--data-dir {} is in use by another ringway (its lock file is held)",
                dir.display()
            ));
        }
        let dir_handle = File::open(dir)
            .map_err(|e| format!("cannot open --data-dir {}: {e}", dir.display()))?;
        let saved = load_document(dir).map(saved_by_key).unwrap_or_default();
        let (loaded, carried) = match_saved(saved, keys);
        let loaded_map = loaded
            .iter()
            .map(|(key, files)| {
                let files = files
                    .iter()
                    .map(|file| (file.identity, file.clone()))
                    .collect();
                (key.clone(), files)
            })
            .collect();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                dir_handle,
                inputs: Vec::new(),
                carried,
                loaded,
                last_written: None,
                _lock: lock,
            },
            loaded_map,
        ))
    }

    pub fn add_input(&mut self, input: Arc<InputState>) {
        self.inputs.push(input);
    }

    /// Bytes delivered (watermarks moved forward) since start, over every
    /// file input.
    pub fn delivered_total(&self) -> u64 {
        self.inputs
            .iter()
            .map(|input| input.offsets.delivered_total())
            .sum()
    }

    /// Writes the state if it changed since the last write: temp file,
    /// fsync, keep the current file as the previous copy, rename, fsync
    /// the directory.
    pub fn write(&mut self) -> std::io::Result<()> {
        let files_json = |files: &[SavedFile]| -> serde_json::Value {
            files.iter().map(file_json).collect::<Vec<_>>().into()
        };
        let mut inputs: serde_json::Map<String, serde_json::Value> = self
            .carried
            .iter()
            .map(|(key, files)| (key.clone(), files_json(files)))
            .collect();
        for input in &self.inputs {
            let Some(current) = input.current() else {
                if let Some(files) = self.loaded.get(&input.name) {
                    inputs.insert(input.name.clone(), files_json(files));
                }
                continue;
            };
            inputs.insert(input.name.clone(), files_json(&current));
        }
        let document = serde_json::json!({ "version": STATE_VERSION, "inputs": inputs });
        let mut text = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
        text.push(b'\n');
        if self.last_written.as_ref() == Some(&text) {
            return Ok(());
        }
        let temp = self.dir.join(TEMP_FILE);
        let mut file = File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        let current = self.dir.join(STATE_FILE);
        if current.exists() {
            let previous_temp = self.dir.join("checkpoints.json.prev.tmp");
            let _ = std::fs::remove_file(&previous_temp);
            // A hard link keeps the previous copy without copying it; a
            // file system without links gets a copy.
            if std::fs::hard_link(&current, &previous_temp).is_err() {
                std::fs::copy(&current, &previous_temp)?;
            }
            std::fs::rename(&previous_temp, self.dir.join(PREVIOUS_FILE))?;
        }
        std::fs::rename(&temp, &current)?;
        self.dir_handle.sync_all()?;
        self.last_written = Some(text);
        Ok(())
    }
}

/// Reads the state file, falling back to the previous copy with a warning
/// when it is missing, empty, truncated or corrupt; `None` (start per
/// `--from`) when neither is good.
fn load_document(dir: &Path) -> Option<serde_json::Value> {
    let current = dir.join(STATE_FILE);
    let previous = dir.join(PREVIOUS_FILE);
    match read_document(&current) {
        Ok(document) => return Some(document),
        Err(None) if !previous.exists() => return None, // a first run
        Err(why) => eprintln!(
            "ringway: warning: checkpoint file {} is unusable ({}); trying the previous copy",
            current.display(),
            why.unwrap_or_else(|| "missing".into())
        ),
    }
    match read_document(&previous) {
        Ok(document) => {
            eprintln!(
                "ringway: warning: resuming from the previous checkpoint copy {} (files may repeat up to one checkpoint interval)",
                previous.display()
            );
            Some(document)
        }
        Err(why) => {
            eprintln!(
                "ringway: warning: previous checkpoint copy {} is unusable too ({}); every file starts per --from",
                previous.display(),
                why.unwrap_or_else(|| "missing".into())
            );
            None
        }
    }
}

/// `Err(None)` when the file does not exist; `Err(Some(why))` when it is
/// not a state file.
fn read_document(path: &Path) -> Result<serde_json::Value, Option<String>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(error) => return Err(Some(error.to_string())),
    };
    if text.is_empty() {
        return Err(Some("it is empty".into()));
    }
    let document: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Some(format!("not valid JSON: {e}")))?;
    if !matches!(
        document["version"].as_u64(),
        Some(STATE_VERSION | SPEC_KEYED_VERSION)
    ) {
        return Err(Some(format!("unknown version {}", document["version"])));
    }
    let Some(inputs) = document["inputs"].as_object() else {
        return Err(Some("no \"inputs\" object".into()));
    };
    for files in inputs.values() {
        let Some(files) = files.as_array() else {
            return Err(Some("an input's files are not a list".into()));
        };
        if files.iter().any(|file| parse_file(file).is_none()) {
            return Err(Some("a file entry is malformed".into()));
        }
    }
    Ok(document)
}

fn parse_file(value: &serde_json::Value) -> Option<SavedFile> {
    Some(SavedFile {
        path: PathBuf::from(value["path"].as_str()?),
        identity: (value["dev"].as_u64()?, value["ino"].as_u64()?),
        fingerprint: Fingerprint {
            len: u32::try_from(value["fingerprint_len"].as_u64()?)
                .ok()
                .filter(|&len| len as usize <= FINGERPRINT_BYTES)?,
            hash: value["fingerprint"].as_u64()?,
        },
        offset: value["offset"].as_u64().filter(|&o| o <= OFFSET_MASK)?,
        modified: None,
    })
}

fn file_json(file: &SavedFile) -> serde_json::Value {
    serde_json::json!({
        "path": file.path.to_string_lossy(),
        "dev": file.identity.0,
        "ino": file.identity.1,
        "fingerprint_len": file.fingerprint.len,
        "fingerprint": file.fingerprint.hash,
        "offset": file.offset,
    })
}

/// The saved files of a state document by key; a version 1 document's
/// SPEC keys become path patterns, and SPECs with the same pattern are
/// merged (per file, the furthest offset: the newest run's).
fn saved_by_key(document: serde_json::Value) -> BTreeMap<String, Vec<SavedFile>> {
    let spec_keyed = document["version"].as_u64() == Some(SPEC_KEYED_VERSION);
    let mut saved: BTreeMap<String, Vec<SavedFile>> = BTreeMap::new();
    let Some(inputs) = document["inputs"].as_object() else {
        return saved;
    };
    for (key, files) in inputs {
        let key = if spec_keyed {
            key_of_spec(key)
        } else {
            key.clone()
        };
        let entry = saved.entry(key).or_default();
        for file in files
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(parse_file)
        {
            merge_file(entry, file);
        }
    }
    saved
}

/// Adds `file` to `files`, or keeps the furthest offset of the two when
/// the same file (identity and fingerprint) is there already.
fn merge_file(files: &mut Vec<SavedFile>, file: SavedFile) {
    match files
        .iter_mut()
        .find(|known| known.identity == file.identity)
    {
        Some(known) if known.fingerprint == file.fingerprint => {
            known.offset = known.offset.max(file.offset);
        }
        Some(_) => {} // another file under that inode: keep the first
        None => files.push(file),
    }
}

/// Splits the saved files into this run's inputs' (by key) and those kept
/// aside. A file saved under a key no input has is taken over by the first
/// input whose pattern reads its path (the pattern was edited, say from
/// `/var/log/*.log` to `/var/log/app*.log`); what no input takes is kept,
/// and said in a warning.
fn match_saved(
    mut saved: BTreeMap<String, Vec<SavedFile>>,
    keys: &[CheckpointKey],
) -> (
    HashMap<String, Vec<SavedFile>>,
    BTreeMap<String, Vec<SavedFile>>,
) {
    let mut loaded: HashMap<String, Vec<SavedFile>> = keys
        .iter()
        .filter_map(|key| Some((key.key.clone(), saved.remove(&key.key)?)))
        .collect();
    let mut carried = BTreeMap::new();
    for (old_key, files) in saved {
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut left = Vec::new();
        for file in files {
            match keys
                .iter()
                .find(|key| pattern_reads(&key.pattern, &file.path))
            {
                Some(key) => {
                    *taken.entry(key.input.as_str()).or_default() += 1;
                    merge_file(loaded.entry(key.key.clone()).or_default(), file);
                }
                None => left.push(file),
            }
        }
        for (input, count) in taken {
            eprintln!(
                "ringway: info: input '{input}' resumes {count} file(s) from the checkpoints saved for the path pattern '{old_key}' (their paths match it)"
            );
        }
        if let Some(example) = left.first() {
            eprintln!(
                "ringway: warning: the checkpoints of {} file(s) saved for the path pattern '{old_key}' (such as {}) match no file input of this run; they are kept unused until an input with that pattern returns",
                left.len(),
                example.path.display()
            );
            carried.insert(old_key, left);
        }
    }
    (loaded, carried)
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
        let path = std::env::temp_dir().join(format!("ringway-fp-{}", std::process::id()));
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
    fn state_round_trips_and_falls_back_to_the_previous_copy() {
        let dir = std::env::temp_dir().join(format!("ringway-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = vec![key("/x/*.log")];
        let names = [keys[0].key.clone()];
        let offsets = AckedOffsets::new(2);
        offsets.reset(1, 3, 77, 77);
        let input = InputState::new(names[0].clone(), Arc::clone(&offsets));
        let saved = SavedFile {
            path: "/x/a.log".into(),
            identity: (1, 2),
            fingerprint: Fingerprint { len: 5, hash: 9 },
            offset: 0,
            modified: None,
        };
        input.publish(vec![KnownFile {
            saved: saved.clone(),
            live: Some((1, 3)),
        }]);
        {
            let (mut checkpointer, loaded) = Checkpointer::open(&dir, &keys).unwrap();
            assert!(loaded.is_empty());
            checkpointer.add_input(Arc::clone(&input));
            checkpointer.write().unwrap();
            offsets.reset(1, 3, 99, 99);
            checkpointer.write().unwrap();
        }
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert_eq!(loaded[&names[0]][&(1, 2)].offset, 99);
        // A torn current file: the previous copy (offset 77) is used.
        std::fs::write(dir.join(STATE_FILE), b"{\"version\":2,\"inp").unwrap();
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert_eq!(loaded[&names[0]][&(1, 2)].offset, 77);
        // Both unusable: start per --from.
        std::fs::write(dir.join(PREVIOUS_FILE), b"").unwrap();
        let (_, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        assert!(loaded.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn key(pattern: &str) -> CheckpointKey {
        CheckpointKey {
            key: pattern.to_string(),
            pattern: pattern.to_string(),
            input: format!("file:{pattern}"),
        }
    }

    fn saved_file(path: &str, ino: u64, offset: u64) -> serde_json::Value {
        serde_json::json!({
            "path": path, "dev": 1, "ino": ino,
            "fingerprint_len": 5, "fingerprint": 9, "offset": offset,
        })
    }

    #[test]
    fn spec_keyed_state_files_are_read_under_their_path_pattern() {
        let dir = std::env::temp_dir().join(format!("ringway-ckpt-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // What version 1 wrote after the input was edited once: the old
        // SPEC's entry carried, the new one's further on.
        let v1 = serde_json::json!({
            "version": 1,
            "inputs": {
                "file:/x/*.log": [saved_file("/x/a.log", 2, 100)],
                "file:/x/*.log,format=json,from=end": [
                    saved_file("/x/a.log", 2, 300),
                    saved_file("/x/b.log", 3, 50),
                ],
                "file:/y/c.log": [saved_file("/y/c.log", 4, 7)],
            }
        });
        std::fs::write(dir.join(STATE_FILE), v1.to_string()).unwrap();
        let keys = vec![key("/x/*.log")];
        let (mut checkpointer, loaded) = Checkpointer::open(&dir, &keys).unwrap();
        let files = &loaded["/x/*.log"];
        assert_eq!(
            files[&(1, 2)].offset,
            300,
            "the furthest of the merged SPECs"
        );
        assert_eq!(files[&(1, 3)].offset, 50);
        assert_eq!(files.len(), 2);
        // Written back as version 2 (before the input's reader published
        // its list: as loaded), the unmatched input kept.
        checkpointer.add_input(InputState::new("/x/*.log".into(), AckedOffsets::new(1)));
        checkpointer.write().unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(written["version"], 2);
        assert_eq!(written["inputs"]["/x/*.log"].as_array().unwrap().len(), 2);
        assert_eq!(written["inputs"]["/y/c.log"][0]["offset"], 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_saved_under_an_edited_pattern_go_to_the_input_that_matches_them() {
        let mut saved = BTreeMap::new();
        saved.insert(
            "/x/*.log".to_string(),
            vec![
                parse_file(&saved_file("/x/app.log", 2, 10)).unwrap(),
                parse_file(&saved_file("/x/other.log", 3, 20)).unwrap(),
            ],
        );
        let keys = vec![key("/x/app*.log")];
        let (loaded, carried) = match_saved(saved, &keys);
        assert_eq!(loaded["/x/app*.log"].len(), 1);
        assert_eq!(loaded["/x/app*.log"][0].offset, 10);
        assert_eq!(carried["/x/*.log"].len(), 1);
        assert_eq!(carried["/x/*.log"][0].path, Path::new("/x/other.log"));
    }

    #[test]
    fn inputs_are_keyed_by_their_absolute_pattern_alone() {
        let defaults = crate::config::InputDefaults {
            format: crate::config::Format::Raw,
            from: crate::config::StartFrom::Beginning,
            udp_rcvbuf_bytes: 1 << 20,
            udp_sockets: 1,
        };
        let inputs: Vec<_> = [
            "file:/x/*.log",
            "file:/x/*.log,format=json",
            "udp:127.0.0.1:5514",
            "file:rel.log,from=end",
        ]
        .iter()
        .map(|spec| crate::config::parse_input_spec(spec, &defaults).unwrap())
        .collect();
        let keys = input_keys(&inputs);
        assert_eq!(keys[0].as_ref().unwrap().key, "/x/*.log");
        assert_eq!(keys[1].as_ref().unwrap().key, "/x/*.log #2");
        assert!(keys[2].is_none());
        let relative = keys[3].as_ref().unwrap();
        assert!(relative.key.starts_with('/') && relative.key.ends_with("/rel.log"));
    }
}
