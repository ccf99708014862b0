//! The file input's I/O worker: tails files matched by a path or glob with
//! io_uring reads at explicit offsets into pooled buffers.
//!
//! [`FileReader`] owns a ring, the input's [`BufferPool`], and a table of
//! [`TailedFile`]s. Each read fills one buffer; its completion is cut at the
//! last newline and handed to the CPU worker as a [`Batch`] of whole lines,
//! and the file's next read starts right after that newline. So a partial
//! last line is never split across batches: it is read again with the bytes
//! that complete it. A line that fills a whole buffer without a newline is
//! longer than `--max-line`: it is cut there (counted) and the rest of it is
//! skipped. Each file has one read in flight at a time (its next offset is
//! known only when the previous read completes); several files are read in
//! parallel, up to [`MAX_READS_IN_FLIGHT`].
//!
//! Growth is noticed through inotify on the files' directories, whose fd is
//! read through the same ring, with a slow rescan (every [`RESCAN_INTERVAL`])
//! as a safety net. The worker sleeps in `io_uring_enter`; other threads wake
//! it through an eventfd it keeps a read posted on.
//!
//! Under backpressure (ring(4) full, or no free buffer) the worker simply
//! issues no reads: the bytes wait on disk.
//!
//! Every batch carries a [`Mark`] (file slot, generation, end offset); the
//! outputs' acks turn marks into each file's delivered watermark in
//! [`AckedOffsets`] (see `checkpoint`). A file is identified by (device,
//! inode) and a [`Fingerprint`] of its first bytes. It is closed only once
//! everything read from it is delivered: a deleted or rotated-away file is
//! drained to its end first, and an idle file evicted under
//! `--max-open-files` leaves its offset in `known`. With `--data-dir`, the
//! list of files is published for the checkpointer whenever it changes, and
//! `known` starts as the saved checkpoint, so a restart resumes each file
//! at its watermark.
//!
//! The worker is split by concern: this file holds its state
//! ([`FileReader`], [`TailedFile`]) and its loop; `reader` the io_uring
//! reads and inotify (each read cut into lines by `input::lines`, shared
//! with stdin); `discovery` matching and opening files, and closing idle
//! ones for room; `rotation` a file's [`Lifecycle`] and what happens at
//! its end (truncation, deletion, rename, copytruncate).

mod discovery;
mod reader;
mod rotation;

pub(crate) use crate::pattern::is_glob;

use crate::batch::Batch;
use crate::checkpoint::{AckedOffsets, Fingerprint, InputState, KnownFile, SavedFile};
use crate::config::{MAX_READS_IN_FLIGHT, StartFrom};
use crate::input::LaneParts;
use crate::metrics::InputCounters;
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use crate::uring::WakeRead;
use discovery::WrittenFiles;
use io_uring::IoUring;
use rotation::{Lifecycle, MAX_TRUNCATED, Truncated};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often open files are checked for growth, truncation and deletion, and
/// the glob is matched again, even without inotify events.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read from inotify at once; holds many events.
const INOTIFY_BUFFER_BYTES: usize = 64 * 1024;
const INOTIFY_MASK: u32 = libc::IN_MODIFY
    | libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_CLOSE_WRITE;
const _: () = assert!(MAX_READS_IN_FLIGHT > 0 && MAX_READS_IN_FLIGHT < 64);
/// Bound on the set of paths already warned about.
const MAX_WARNED_PATHS: usize = 4096;
/// How often an I/O worker with files waiting for a descriptor looks for
/// one that was freed (its file read and delivered to the end).
const WAITING_POLL: Duration = Duration::from_millis(10);
pub(crate) struct FileReaderConfig {
    pub pattern: String,
    pub from: StartFrom,
    pub exit_on_eof: bool,
    pub max_open_files: usize,
    /// The files ringway writes (file outputs, `--dead-letter`), by name:
    /// never read, whatever path reaches them.
    pub written: Vec<(String, PathBuf)>,
}

/// What a file reader shares with the rest of the pipeline for acks and
/// checkpoints.
pub(crate) struct FileTracking {
    /// One slot per open file (`--max-open-files`).
    pub offsets: Arc<AckedOffsets>,
    /// `--data-dir` only.
    pub state: Option<Arc<InputState>>,
    /// The saved checkpoint of this input.
    pub saved: HashMap<(u64, u64), SavedFile>,
}

/// One file being tailed.
struct TailedFile {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
    /// Next byte to read: always the start of a line (or of the skipped
    /// rest of an over-long line when `skipping`).
    offset: u64,
    /// A read for this file is in flight (at most one).
    reading: bool,
    /// There may be bytes past `offset`.
    readable: bool,
    /// Inside an over-long line whose head was already emitted: skip to the
    /// next newline.
    skipping: bool,
    /// Where the over-long line being skipped starts.
    skip_from: u64,
    /// It was read to its end: before the next read, check that the bytes
    /// before `offset` are still the ones read (not a truncated, rewritten
    /// file).
    check_before_read: bool,
    /// Send a mark at `offset` with the next read even if it reads nothing:
    /// the watermark is behind it with nothing left to read (a copy
    /// started past its delivered offset, an over-long line ended by EOF).
    needs_mark: bool,
    /// Matched at start and not yet read to EOF (for `--exit-on-eof`).
    initial_pending: bool,
    /// Where inotify reports this file: (watch descriptor, file name).
    watch: Option<(i32, Box<[u8]>)>,
    /// File size when the last read hit EOF: a rescan reads again only if
    /// the size changed, not merely because a partial line is pending.
    eof_size: u64,
    /// The file is deleted with a partial last line: emit it with a newline
    /// on the next read, since no writer will finish it.
    flush_partial: bool,
    /// Consecutive failed reads, for rate-limited warnings.
    read_failures: u64,
    /// Tells this file's marks from those of an earlier file in the slot.
    generation: u16,
    fingerprint: Fingerprint,
    /// Tailing, rotated away (drained, then closed), or deleted and
    /// closed once delivered.
    lifecycle: Lifecycle,
    /// The last bytes read before `offset` (up to 1 KiB): with
    /// `fingerprint`, recognises a copy of this file and where in it
    /// reading stopped.
    tail: Fingerprint,
    /// A new file too short to tell whether it is a copy being written, or
    /// a copy whose start is not known yet ([`rotation::CopyCheck::Pending`]):
    /// held unread until this moment, then checked again.
    copy_check_at: Option<Instant>,
    /// How many times it was checked so far (at most
    /// [`rotation::MAX_COPY_CHECKS`]).
    copy_checks: u32,
}

struct ReadOp {
    file: usize,
    buf: crate::pool::PooledBuffer,
}

pub(crate) struct FileReader {
    config: FileReaderConfig,
    glob: Option<glob::Pattern>,
    ring: IoUring,
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    waker: Arc<Waker>,
    counters: Arc<InputCounters>,
    shutdown: Arc<AtomicBool>,
    /// Incremented when this reader has handed over everything it read.
    readers_done: Arc<AtomicUsize>,
    max_line_bytes: usize,
    /// The eventfd of `waker`, which owns it.
    /// The read kept posted on the waker's eventfd.
    wake: WakeRead,
    inotify_fd: Option<OwnedFd>,
    inotify_buf: Box<[u8]>,
    inotify_armed: bool,
    /// Watch descriptor → (file name → index in `files`).
    watched: HashMap<i32, HashMap<Box<[u8]>, usize>>,
    /// Open files; `None` slots are free. Never longer than `max_open_files`.
    files: Vec<Option<TailedFile>>,
    /// (device, inode) of every open file, so a rescan does not reopen one.
    open_identities: HashSet<(u64, u64)>,
    /// Paths already warned about (skipped or waiting), so warnings are not
    /// repeated every rescan. Cleared when it reaches [`MAX_WARNED_PATHS`].
    warned: HashSet<PathBuf>,
    /// Files not open whose delivered offset is known, by identity: the
    /// saved checkpoint at start, and files closed at EOF to make room under
    /// `--max-open-files`. Reopened where they were left if their
    /// fingerprint still matches. Entries whose file no longer matches the
    /// pattern are pruned every scan.
    known: HashMap<(u64, u64), SavedFile>,
    /// Per slot of `files`: the delivered watermark.
    offsets: Arc<AckedOffsets>,
    /// Where the list of files is published (`--data-dir` only).
    state: Option<Arc<InputState>>,
    /// The set of files changed since it was last published.
    state_dirty: bool,
    next_generation: u16,
    /// Recent truncations, newest last (at most [`MAX_TRUNCATED`]).
    truncated: VecDeque<Truncated>,

    /// Matches found at start that waited for a descriptor: they still count
    /// for `--exit-on-eof`.
    /// (With their size then, where `--from end` starts them.)
    initial_waiting: HashMap<PathBuf, u64>,
    /// Matches waiting for a descriptor under `--max-open-files`, oldest
    /// first; opened as soon as an open file is read and delivered to its
    /// end. Bounded by the pattern's matches (each path once).
    waiting: VecDeque<PathBuf>,
    waiting_set: HashSet<PathBuf>,
    /// Reads in flight, indexed by the slot in their token.
    reads: [Option<ReadOp>; MAX_READS_IN_FLIGHT],
    in_flight: usize,
    /// Completed batches waiting for room in ring(4). Together with
    /// `in_flight` never more than `MAX_READS_IN_FLIGHT`.
    ready: VecDeque<Batch>,
    /// Round-robin position for choosing the next file to read.
    cursor: usize,
    /// Initial files not yet read to EOF.
    initial_remaining: usize,
    next_rescan: Instant,
    rescan_now: bool,
    /// The last `issue_reads` stopped for want of a free buffer.
    wants_buffer: bool,
    /// What ringway writes, never to be read.
    written: WrittenFiles,
}

impl FileReader {
    pub fn new(config: FileReaderConfig, lane: LaneParts, tracking: FileTracking) -> Self {
        assert!(tracking.offsets.slots() >= config.max_open_files);
        let glob = is_glob(&config.pattern)
            .then(|| glob::Pattern::new(&config.pattern).ok())
            .flatten();
        let inotify_fd = match crate::uring::inotify() {
            Ok(fd) => Some(fd),
            Err(error) => {
                eprintln!(
                    "ringway: warning: inotify unavailable, noticing growth by rescan only; error = {error}"
                );
                None
            }
        };
        let max_open_files = config.max_open_files;
        let written = WrittenFiles {
            paths: config.written.clone(),
            identities: Vec::with_capacity(config.written.len()),
        };
        let wake = lane.wake_read();
        Self {
            config,
            glob,
            ring: lane.ring,
            pool: lane.pool,
            to_cpu: lane.to_cpu,
            waker: lane.waker,
            counters: lane.counters,
            shutdown: lane.shutdown,
            readers_done: lane.readers_done,
            max_line_bytes: lane.max_line_bytes,
            wake,
            inotify_fd,
            inotify_buf: vec![0; INOTIFY_BUFFER_BYTES].into_boxed_slice(),
            inotify_armed: false,
            watched: HashMap::new(),
            files: Vec::with_capacity(max_open_files),
            open_identities: HashSet::with_capacity(max_open_files),
            warned: HashSet::new(),
            known: tracking.saved,
            offsets: tracking.offsets,
            state: tracking.state,
            state_dirty: true,
            next_generation: 0,
            truncated: VecDeque::with_capacity(MAX_TRUNCATED),

            initial_waiting: HashMap::new(),
            waiting: VecDeque::new(),
            waiting_set: HashSet::new(),
            reads: std::array::from_fn(|_| None),
            in_flight: 0,
            ready: VecDeque::with_capacity(MAX_READS_IN_FLIGHT),
            cursor: 0,
            initial_remaining: 0,
            next_rescan: Instant::now() + RESCAN_INTERVAL,
            rescan_now: false,
            wants_buffer: false,
            written,
        }
    }

    pub fn run(mut self) {
        self.scan_matches(true);
        if self.files.is_empty() && self.waiting.is_empty() {
            // A path named literally that was skipped has said why; a glob
            // whose every match was skipped must not claim to match nothing.
            if self.glob.is_none() && !self.warned.is_empty() {
                eprintln!(
                    "ringway: warning: {} is tried again every second until it can be read",
                    self.config.pattern
                );
            } else if self.warned.is_empty() {
                eprintln!(
                    "ringway: warning: no file matches '{}' yet; waiting for files to appear",
                    self.config.pattern
                );
            } else {
                eprintln!(
                    "ringway: warning: no readable file matches '{}' yet (see above); waiting for one",
                    self.config.pattern
                );
            }
        }
        loop {
            self.reap_completions();
            self.push_ready();
            if self.is_done() {
                break;
            }
            if self.rescan_now || Instant::now() >= self.next_rescan {
                self.rescan();
            }
            if !self.waiting.is_empty() && !self.stopping() {
                self.open_waiting();
            }
            self.publish_state();
            self.arm_wake_reads();
            self.issue_reads();
            if self.can_progress() {
                self.submit(false);
                continue;
            }
            self.waker.announce_sleep();
            let sleep = !self.can_progress();
            if sleep {
                self.submit(true);
            }
            self.waker.sleep_done();
        }
        self.cancel_posted_reads();
        self.publish_state();
        self.readers_done.fetch_add(1, Ordering::AcqRel);
    }

    /// Publishes the files this reader knows for the checkpointer, when the
    /// set changed (open, close, truncation, fingerprint).
    fn publish_state(&mut self) {
        if !self.state_dirty {
            return;
        }
        self.state_dirty = false;
        let Some(state) = &self.state else {
            return;
        };
        let mut files = Vec::with_capacity(self.files.len() + self.known.len());
        for (slot, file) in self.files.iter().enumerate() {
            let Some(file) = file else { continue };
            let delivered = self
                .offsets
                .get(slot, file.generation)
                .unwrap_or(0)
                .min(file.offset);
            files.push(KnownFile {
                saved: SavedFile {
                    path: file.path.clone(),
                    identity: file.identity,
                    fingerprint: file.fingerprint,
                    offset: delivered,
                    modified: None,
                },
                live: Some((slot, file.generation)),
            });
        }
        files.extend(self.known.values().map(|saved| KnownFile {
            saved: saved.clone(),
            live: None,
        }));
        state.publish(files);
    }

    /// The delivered watermark of the open file in `index`.
    fn delivered(&self, index: usize) -> u64 {
        let file = self.files[index].as_ref().expect("open file");
        self.offsets.get(index, file.generation).unwrap_or(0)
    }

    /// Everything read from the file in `index` is delivered.
    fn fully_delivered(&self, index: usize) -> bool {
        let file = self.files[index].as_ref().expect("open file");
        !file.reading && self.delivered(index) == file.offset
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
            || (self.config.exit_on_eof && self.initial_remaining == 0)
    }

    /// Finished when told to stop and nothing read is left undelivered.
    fn is_done(&self) -> bool {
        self.stopping() && self.in_flight == 0 && self.ready.is_empty()
    }

    /// Whether a loop turn can do something without waiting for the kernel.
    fn can_progress(&self) -> bool {
        (!self.ready.is_empty() && self.to_cpu.has_room())
            || (self.wants_buffer && self.pool.available() > 0 && !self.stopping())
            || self.is_done()
    }

    fn take_generation(&mut self) -> u16 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        // A read still in flight (only after a panic) may be written by the
        // kernel after we are gone: leak its buffer rather than free memory
        // the kernel writes into.
        for op in self.reads.iter_mut() {
            if let Some(op) = op.take() {
                std::mem::forget(op.buf);
            }
        }
    }
}
