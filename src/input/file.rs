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

use crate::batch::Batch;
use crate::checkpoint::{AckedOffsets, Fingerprint, InputState, KnownFile, Mark, Marks, SavedFile};
use crate::config::{MAX_READS_IN_FLIGHT, StartFrom};
use crate::metrics::InputCounters;
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use crate::uring::{Token, WakeRead};
use io_uring::{IoUring, opcode, types};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
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
/// How long a renamed or replaced file must stay idle at its end, fully
/// delivered, before it is closed (its writer may not have reopened yet).
const ROTATED_IDLE: Duration = Duration::from_secs(2);

pub(crate) struct FileReaderConfig {
    pub pattern: String,
    pub from: StartFrom,
    pub exit_on_eof: bool,
    pub max_line_bytes: usize,
    pub max_open_files: usize,
    /// The files ringway writes (file outputs, `--dead-letter`), by name:
    /// never read, whatever path reaches them.
    pub written: Vec<(String, PathBuf)>,
}

/// The (device, inode) of every file ringway writes, looked up again at
/// every scan: an output is created, reopened or rotated while ringway
/// runs, and a match that reaches one under another name (a symlinked
/// directory that appeared, a hard link) must not be read, or ringway
/// would read back what it writes without end. The start-up check in
/// `cli` refuses what is visible at start; this catches the rest.
struct WrittenFiles {
    paths: Vec<(String, PathBuf)>,
    /// `(identity, index into paths)` of those that exist now.
    identities: Vec<((u64, u64), usize)>,
}

impl WrittenFiles {
    fn refresh(&mut self) {
        self.identities.clear();
        for (index, (_, path)) in self.paths.iter().enumerate() {
            if let Ok(metadata) = std::fs::metadata(path) {
                self.identities
                    .push(((metadata.dev(), metadata.ino()), index));
            }
        }
    }

    /// The name of the output that `identity` is, if it is one.
    fn name_of(&self, identity: (u64, u64)) -> Option<&str> {
        self.identities
            .iter()
            .find(|(written, _)| *written == identity)
            .map(|&(_, index)| self.paths[index].0.as_str())
    }
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
    /// The path now names another file, or none: drain, then close.
    rotated: bool,
    /// Deleted and read to its end: close once delivered.
    closing: bool,
    /// Since when this rotated file is at its end, delivered, not growing.
    idle_since: Option<Instant>,
    /// The last bytes read before `offset` (up to 1 KiB): with
    /// `fingerprint`, recognises a copy of this file and where in it
    /// reading stopped.
    tail: Fingerprint,
    /// A new file too short to tell whether it is a copy being written:
    /// held unread until this moment, then checked again.
    copy_check_at: Option<Instant>,
}

/// Where a file was read to when it was truncated: a copy of it made just
/// before (copytruncate) is read from there on.
struct Truncated {
    fingerprint: Fingerprint,
    tail: Fingerprint,
    offset: u64,
    /// Delivered when it was truncated: a copy's checkpoint starts here.
    delivered: u64,
}

enum CopyCheck {
    /// Read the copy from `read`; it is delivered up to `delivered` (the
    /// original's bytes between are still in flight, or were lost with it).
    CopyFrom {
        read: u64,
        delivered: u64,
    },
    /// Too short to tell yet.
    Unsure,
    NotACopy,
}

/// How long a new file that may be a copy still being written is held
/// unread (it is checked at the first rescan after this).
const COPY_CHECK_DELAY: Duration = Duration::from_millis(250);

/// Truncation records kept for recognising copies.
const MAX_TRUNCATED: usize = 16;

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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: FileReaderConfig,
        ring: IoUring,
        pool: Arc<BufferPool>,
        to_cpu: RingSender<Batch>,
        waker: Arc<Waker>,
        counters: Arc<InputCounters>,
        shutdown: Arc<AtomicBool>,
        readers_done: Arc<AtomicUsize>,
        tracking: FileTracking,
    ) -> Self {
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
        let wake_fd = waker
            .eventfd()
            .expect("an I/O worker's waker is an eventfd");
        Self {
            config,
            glob,
            ring,
            pool,
            to_cpu,
            waker,
            counters,
            shutdown,
            readers_done,
            wake: WakeRead::new(wake_fd),
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

    /// The kernel may write into the wake-up and inotify buffers until
    /// their posted reads complete: cancel them and wait, so nothing is
    /// written after the buffers are freed.
    fn cancel_posted_reads(&mut self) {
        if let Some(entry) = self.wake.cancel() {
            self.push_entry(entry);
        }
        if self.inotify_armed {
            let entry = opcode::AsyncCancel::new(Token::Inotify.encode())
                .build()
                .user_data(Token::Cancel.encode());
            self.push_entry(entry);
        }
        // Bounded: cancellation of a pending read completes at once.
        for _ in 0..1000 {
            if !self.wake.is_armed() && !self.inotify_armed {
                return;
            }
            self.submit(true);
            self.reap_completions();
        }
        eprintln!("ringway: warning: posted reads did not cancel; leaking their buffers");
        std::mem::forget(std::mem::take(&mut self.inotify_buf));
        self.wake.leak();
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

    /// Submits queued entries; when `wait`, sleeps until a completion or the
    /// next rescan is due.
    fn submit(&mut self, wait: bool) {
        let timeout = wait.then(|| {
            let mut until = self.next_rescan.saturating_duration_since(Instant::now());
            if !self.waiting.is_empty() {
                // Files wait for a descriptor that frees once an open file's
                // last batch is acked: look again soon.
                until = until.min(WAITING_POLL);
            }
            until.max(Duration::from_millis(1))
        });
        crate::uring::submit(&self.ring, timeout);
    }

    /// Queues an entry; a full submission queue is submitted first.
    fn push_entry(&mut self, entry: io_uring::squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points at is owned by `self`
            // (the wake read's, inotify_buf, or a buffer kept in `reads` until its
            // completion), so it outlives the operation.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return;
            }
            self.submit(false);
        }
    }

    fn arm_wake_reads(&mut self) {
        if let Some(entry) = self.wake.arm() {
            self.push_entry(entry);
        }
        if !self.inotify_armed
            && let Some(fd) = &self.inotify_fd
        {
            let entry = opcode::Read::new(
                types::Fd(fd.as_raw_fd()),
                self.inotify_buf.as_mut_ptr(),
                self.inotify_buf.len() as u32,
            )
            .build()
            .user_data(Token::Inotify.encode());
            self.push_entry(entry);
            self.inotify_armed = true;
        }
    }

    fn reap_completions(&mut self) {
        // Copy out first: handling a completion may push new entries.
        let mut completions = [(0, 0, 0); crate::uring::COMPLETION_BATCH];
        loop {
            let count = crate::uring::take_completions(&mut self.ring, &mut completions);
            if count == 0 {
                return;
            }
            for &(user_data, result, _) in &completions[..count] {
                match Token::decode(user_data) {
                    Some(Token::Read(slot)) => self.on_read(slot as usize, result),
                    Some(Token::Wake) => self.wake.completed(),
                    Some(Token::Inotify) => {
                        self.inotify_armed = false;
                        self.on_inotify(result);
                    }
                    Some(_) => {}
                    None => debug_assert!(false, "unknown user_data {user_data:#x}"),
                }
            }
        }
    }

    fn push_ready(&mut self) {
        while let Some(batch) = self.ready.pop_front() {
            if let Err(batch) = self.to_cpu.push(batch) {
                // Full: the pipeline is behind. Keep it and read nothing new.
                self.ready.push_front(batch);
                return;
            }
        }
    }

    /// Issues reads for readable files, round robin, while a slot, a buffer
    /// and room downstream are free.
    fn issue_reads(&mut self) {
        self.wants_buffer = false;
        if self.stopping() || !self.ready.is_empty() {
            return;
        }
        let count = self.files.len();
        for _ in 0..count {
            if self.in_flight + self.ready.len() >= MAX_READS_IN_FLIGHT {
                return;
            }
            let index = self.cursor % count;
            self.cursor = self.cursor.wrapping_add(1);
            let Some(file) = &self.files[index] else {
                continue;
            };
            if !file.readable || file.reading || file.copy_check_at.is_some() {
                continue;
            }
            if file.check_before_read {
                // It was at its end; what grew since may be new content
                // after a truncation (copytruncate), which a read at our
                // offset would enter mid-line. The bytes just before the
                // offset tell: one small pread per read after an EOF.
                let continues =
                    file.tail.len == 0 || file.tail.matches_before(&file.file, file.offset);
                self.files[index]
                    .as_mut()
                    .expect("checked above")
                    .check_before_read = false;
                if !continues {
                    self.restart_file(index, "was truncated and written again");
                }
            }
            let Some(file) = &self.files[index] else {
                continue;
            };
            let Some(mut buf) = self.pool.take() else {
                self.wants_buffer = true;
                return;
            };
            let slot = self
                .reads
                .iter()
                .position(Option::is_none)
                .expect("in_flight < MAX_READS_IN_FLIGHT leaves a free slot");
            let entry = opcode::Read::new(
                types::Fd(file.file.as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
            .offset(file.offset)
            .build()
            .user_data(Token::Read(slot as u32).encode());
            self.files[index].as_mut().expect("checked above").reading = true;
            self.reads[slot] = Some(ReadOp { file: index, buf });
            self.in_flight += 1;
            self.push_entry(entry);
        }
    }

    fn on_read(&mut self, slot: usize, result: i32) {
        let op = self.reads[slot]
            .take()
            .expect("a read completion matches a read in flight");
        self.in_flight -= 1;
        let ReadOp {
            file: index,
            mut buf,
        } = op;
        let exit_on_eof = self.config.exit_on_eof;
        let max_line = self.config.max_line_bytes;
        let Some(file) = self.files[index].as_mut() else {
            debug_assert!(false, "files with reads in flight stay open");
            return;
        };
        file.reading = false;
        if result < 0 {
            let error = std::io::Error::from_raw_os_error(-result);
            if matches!(-result, libc::EINTR | libc::EAGAIN) {
                return;
            }
            // Keep the file and its offset; the next rescan tries again.
            file.read_failures += 1;
            file.readable = false;
            if file.read_failures.is_power_of_two() {
                eprintln!(
                    "ringway: warning: reading {} at offset {} failed ({} times), retrying every rescan; error = {error}",
                    file.path.display(),
                    file.offset,
                    file.read_failures
                );
            }
            self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        file.read_failures = 0;
        let read = result as usize;
        let capacity = buf.len();
        // At EOF of a run that ends there (or of a deleted file), a last
        // line without a newline is emitted with one.
        let emit_partial = exit_on_eof || file.flush_partial;
        let short = read < capacity;
        let cut = cut_lines(&mut buf, read, &mut file.skipping, emit_partial, max_line);
        if cut.truncated {
            file.skip_from = file.offset;
            self.counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        // A skipped over-long line ended inside this read: the bytes after
        // it are unread (read again from the file next), so this is not EOF
        // even if the read was short.
        let unread_after_skip = cut.skip_ended && cut.consumed < read;
        let LineCut { consumed, emit, .. } = cut;
        if read == 0 && file.skipping && emit_partial {
            // The run ends (or the file is gone) inside an over-long line:
            // its head went out; the line ends here.
            file.skipping = false;
            file.needs_mark = true;
        }
        if consumed > 0 {
            file.tail = Fingerprint::of_bytes(&buf[..consumed]);
            file.idle_since = None;
        }
        file.offset += consumed as u64;
        self.counters
            .bytes
            .fetch_add(consumed as u64, Ordering::Relaxed);
        if consumed > 0 || file.needs_mark {
            file.needs_mark = false;
            self.offsets.set_read(index, file.offset);
            // Bytes only skipped (the rest of an over-long line) travel as
            // an empty batch, so their offsets are acked in order too. Inside
            // an over-long line the mark stays at the line's start: a restart
            // there reads the line again rather than its tail as a record.
            let mut batch = Batch::new(buf, emit);
            batch.marks = Marks::one(Mark {
                slot: index as u32,
                generation: file.generation,
                end: if file.skipping {
                    file.skip_from
                } else {
                    file.offset
                },
            });
            self.ready.push_back(batch);
        }
        // EOF for now; but a short read that ended inside a skipped
        // over-long line is settled by the next read (0 bytes) instead.
        if read == 0 || (short && !file.skipping && !unread_after_skip) {
            self.reached_eof(index);
        }
    }

    /// A read came back short: nothing more past `offset` for now. Checks
    /// for truncation and deletion, which only show at EOF.
    fn reached_eof(&mut self, index: usize) {
        let file = self.files[index].as_mut().expect("open file");
        file.readable = false;
        file.check_before_read = true;
        if file.initial_pending {
            file.initial_pending = false;
            self.initial_remaining -= 1;
        }
        let Ok(metadata) = file.file.metadata() else {
            return;
        };
        file.eof_size = metadata.len();
        if metadata.len() < file.offset {
            let why = format!(
                "was truncated from {} to {} bytes",
                file.offset,
                metadata.len()
            );
            self.restart_file(index, &why);
            return;
        }
        if file.fingerprint.can_grow(metadata.len())
            && let Ok(fingerprint) = Fingerprint::of(&file.file)
        {
            file.fingerprint = fingerprint;
            self.state_dirty = true;
        }
        let file = self.files[index].as_mut().expect("open file");
        if metadata.nlink() == 0 && metadata.len() > file.offset {
            // Deleted with bytes left (a last line without a newline, or a
            // writer that still appends): no writer will finish the last
            // line, so read on and emit it with one.
            file.flush_partial = true;
            file.readable = true;
        } else if metadata.nlink() == 0 && !file.closing {
            eprintln!(
                "ringway: info: {} was deleted; it was read to its end and is closed once delivered",
                file.path.display()
            );
            file.closing = true;
            if self.fully_delivered(index) {
                self.close_file(index);
            }
        }
    }

    /// The file in `index` no longer holds what was read from it
    /// (truncated, or rewritten from the start): read it again from 0.
    /// Marks of the old content still in flight no longer count for it (a
    /// new generation).
    fn restart_file(&mut self, index: usize, why: &str) {
        let generation = self.take_generation();
        let delivered = self.delivered(index);
        let file = self.files[index].as_mut().expect("open file");
        eprintln!(
            "ringway: warning: {} {why}; reading it again from the start",
            file.path.display()
        );
        self.counters
            .files_truncated
            .fetch_add(1, Ordering::Relaxed);
        if file.fingerprint.is_full() && file.offset > 0 {
            if self.truncated.len() == MAX_TRUNCATED {
                self.truncated.pop_front();
            }
            self.truncated.push_back(Truncated {
                fingerprint: file.fingerprint,
                tail: file.tail,
                offset: file.offset,
                delivered,
            });
        }
        file.offset = 0;
        file.tail = Fingerprint::default();
        file.skipping = false;
        file.readable = true;
        file.flush_partial = false;
        file.generation = generation;
        file.fingerprint = Fingerprint::of(&file.file).unwrap_or_default();
        self.offsets.reset(index, generation, 0, 0);
        self.state_dirty = true;
    }

    fn take_generation(&mut self) -> u16 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }

    fn close_file(&mut self, index: usize) {
        if self.files[index].is_some() {
            // Marks of the closed file still in flight (after a shutdown
            // only) must not land on the next file in this slot.
            let generation = self.take_generation();
            self.offsets.reset(index, generation, 0, 0);
        }
        if let Some(file) = self.files[index].take() {
            if file.initial_pending {
                self.initial_remaining -= 1;
            }
            self.open_identities.remove(&file.identity);
            self.state_dirty = true;
            // After a rename rotation a new file may own the name now.
            if let Some((wd, name)) = &file.watch
                && let Some(names) = self.watched.get_mut(wd)
                && names.get(name) == Some(&index)
            {
                names.remove(name);
            }
        }
    }

    fn on_inotify(&mut self, result: i32) {
        if result <= 0 {
            if result < 0 && !matches!(-result, libc::EINTR | libc::ECANCELED) {
                eprintln!(
                    "ringway: warning: reading inotify failed, relying on rescans; error = {}",
                    std::io::Error::from_raw_os_error(-result)
                );
                self.inotify_fd = None;
            }
            return;
        }
        let events = &self.inotify_buf[..result as usize];
        let header = std::mem::size_of::<libc::inotify_event>();
        let mut at = 0;
        while at + header <= events.len() {
            // SAFETY: the kernel wrote whole inotify_event records into the
            // buffer; read_unaligned copes with any alignment.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(events[at..].as_ptr().cast()) };
            let name_end = (at + header + event.len as usize).min(events.len());
            let name = &events[at + header..name_end];
            let name = &name[..memchr::memchr(0, name).unwrap_or(name.len())];
            at = name_end;
            if event.mask & libc::IN_Q_OVERFLOW != 0 {
                for file in self.files.iter_mut().flatten() {
                    file.readable = true;
                }
                self.rescan_now = true;
                continue;
            }
            let known = self
                .watched
                .get(&event.wd)
                .and_then(|names| names.get(name))
                .copied();
            if let Some(index) = known
                && let Some(file) = self.files[index].as_mut()
            {
                file.readable = true;
            }
            // A name that appears may be a new file under a known name (a
            // rotation recreated it): match again at once, since the next
            // rotation may come before the next rescan.
            if event.mask
                & (libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_CREATE | libc::IN_MOVED_TO)
                != 0
            {
                self.rescan_now = true;
            }
        }
    }

    /// The slow safety net: growth, truncation, deletion, new matches.
    fn rescan(&mut self) {
        self.rescan_now = false;
        self.next_rescan = Instant::now() + RESCAN_INTERVAL;
        for index in 0..self.files.len() {
            let Some(file) = self.files[index].as_mut() else {
                continue;
            };
            if file.reading {
                continue;
            }
            if let Some(at) = file.copy_check_at {
                if Instant::now() >= at {
                    self.settle_copy_check(index);
                }
                continue;
            }
            if file.closing {
                // Deleted and read to its end. A writer that still holds it
                // may append: read on; else close once delivered.
                let size = file.file.metadata().map(|m| m.len()).unwrap_or(0);
                if size > file.offset {
                    file.closing = false;
                    file.readable = true;
                } else if file.skipping {
                    file.skipping = false;
                    file.needs_mark = true;
                    file.readable = true;
                } else if self.fully_delivered(index) {
                    self.close_file(index);
                }
                continue;
            }
            if !file.rotated {
                let same = std::fs::metadata(&file.path)
                    .is_ok_and(|now| (now.dev(), now.ino()) == file.identity);
                if !same {
                    eprintln!(
                        "ringway: info: {} was renamed or replaced; reading the old file to its end before closing it",
                        file.path.display()
                    );
                    file.rotated = true;
                    file.readable = true;
                }
            }
            let Ok(metadata) = file.file.metadata() else {
                continue;
            };
            let changed = metadata.len() != file.eof_size || metadata.nlink() == 0;
            // A file truncated and written again past our offset (say
            // copytruncate while backpressure held our reads back) no
            // longer starts with its fingerprint: read it again from 0,
            // before a read at the old offset lands mid-line in new content.
            if changed && metadata.len() >= file.offset && !file.fingerprint.matches(&file.file) {
                self.restart_file(index, "was rewritten from its start");
                continue;
            }
            if file.readable {
                continue;
            }
            if changed {
                // Grown, truncated or deleted: a read settles which.
                file.idle_since = None;
                file.readable = true;
                continue;
            }
            if file.rotated && file.skipping && metadata.len() == file.offset {
                // Rotated away inside an over-long line: nothing will end it.
                file.skipping = false;
                file.needs_mark = true;
                file.readable = true;
                continue;
            }
            let settled = metadata.len() == file.offset && self.fully_delivered(index);
            let file = self.files[index].as_mut().expect("open file");
            if file.rotated && settled {
                let since = *file.idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= ROTATED_IDLE {
                    self.park_file(index);
                }
            }
        }
        if !self.stopping() {
            self.scan_matches(false);
        }
    }

    /// Opens every match of the pattern not already open.
    fn scan_matches(&mut self, at_start: bool) {
        let paths: Vec<PathBuf> = if self.glob.is_some() {
            match glob::glob(&self.config.pattern) {
                Ok(paths) => paths
                    .filter_map(|entry| match entry {
                        Ok(path) => Some(path),
                        Err(error) => {
                            if self.warned.insert(error.path().to_path_buf()) {
                                eprintln!(
                                    "ringway: warning: cannot read {}; skipping it; error = {}",
                                    error.path().display(),
                                    error.error()
                                );
                                self.counters.files_skipped.fetch_add(1, Ordering::Relaxed);
                            }
                            None
                        }
                    })
                    .collect(),
                Err(_) => Vec::new(),
            }
        } else {
            vec![PathBuf::from(&self.config.pattern)]
        };
        if self.warned.len() >= MAX_WARNED_PATHS {
            self.warned.clear();
        }
        // After the matching: an output that exists by the time its name
        // was matched is known here.
        self.written.refresh();
        if !self.initial_waiting.is_empty() {
            // A file matched at start that vanished while it waited for a
            // descriptor no longer holds up --exit-on-eof.
            let matched: HashSet<&PathBuf> = paths.iter().collect();
            let before = self.initial_waiting.len();
            self.initial_waiting
                .retain(|path, _| matched.contains(path));
            self.initial_remaining -= before - self.initial_waiting.len();
            self.waiting.retain(|path| matched.contains(path));
            self.waiting_set.retain(|path| matched.contains(path));
        }
        let mut seen = HashSet::with_capacity(self.known.len());
        for path in paths {
            if let Some(identity) = self.open_match(&path, at_start) {
                seen.insert(identity);
            }
        }
        // Forget offsets of files that no longer match (gone, or renamed
        // out of the pattern after being read to their end).
        let before = self.known.len();
        self.known.retain(|identity, _| seen.contains(identity));

        self.state_dirty |= self.known.len() != before;
    }

    /// Opens `path` unless it is open already or has nothing new; returns
    /// its identity when it exists as a regular file.
    fn open_match(&mut self, path: &Path, at_start: bool) -> Option<(u64, u64)> {
        let Ok(metadata) = std::fs::metadata(path) else {
            if at_start || self.glob.is_some() {
                self.skip(path, "it cannot be opened (dangling link or removed)");
            }
            return None;
        };
        let identity = (metadata.dev(), metadata.ino());
        if self.open_identities.contains(&identity) {
            return Some(identity);
        }
        if self.is_written(path, identity) {
            return None;
        }
        if let Some(why) = not_a_regular_file(&metadata) {
            self.skip(path, &format!("it {why}"));
            return None;
        }
        if self.known.get(&identity).is_some_and(|saved| {
            saved.offset == metadata.len()
                && saved.modified.is_some()
                && saved.modified == metadata.modified().ok()
        }) {
            // Closed at its end, delivered, and neither grown nor rewritten
            // since (a file reusing the inode would differ in mtime too).
            return Some(identity);
        }
        if self.files.iter().flatten().count() >= self.config.max_open_files
            && !self.evict_idle_file()
        {
            if self.waiting_set.insert(path.to_path_buf()) {
                if self.waiting.is_empty() {
                    eprintln!(
                        "ringway: warning: {} and further files wait: --max-open-files ({}) files are open with unread or undelivered bytes (files_waiting counts them)",
                        path.display(),
                        self.config.max_open_files
                    );
                }
                self.waiting.push_back(path.to_path_buf());
                self.counters.files_waiting.fetch_add(1, Ordering::Relaxed);
                if at_start
                    && self
                        .initial_waiting
                        .insert(path.to_path_buf(), metadata.len())
                        .is_none()
                {
                    self.initial_remaining += 1;
                }
            }
            return Some(identity);
        }
        if let Some(at) = self.waiting.iter().position(|waiting| waiting == path) {
            // Its turn came through a rescan.
            self.waiting.remove(at);
            self.waiting_set.remove(path);
        }
        // O_NONBLOCK: if the path was swapped for a FIFO since the stat, the
        // open must not block the I/O worker. Cleared below for the reads.
        let file = match File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(error) => {
                self.skip(path, &format!("opening it failed; error = {error}"));
                return None;
            }
        };
        let Ok(metadata) = file.metadata() else {
            return None;
        };
        if let Some(why) = not_a_regular_file(&metadata) {
            self.skip(path, &format!("it {why}"));
            return None;
        }
        let identity = (metadata.dev(), metadata.ino());
        if self.is_written(path, identity) {
            // Swapped for an output between the stat and the open.
            return None;
        }
        // SAFETY: fcntl and posix_fadvise only take the descriptor and
        // integer arguments.
        unsafe {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0);
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
        let fingerprint = Fingerprint::of(&file).unwrap_or_default();
        let mut hold_for_copy_check = false;
        let mut delivered = None;
        let offset = match self.known.remove(&identity) {
            Some(saved) if saved.fingerprint.matches(&file) => {
                if saved.offset <= metadata.len() {
                    saved.offset
                } else {
                    eprintln!(
                        "ringway: warning: {} is shorter ({} bytes) than its checkpoint ({}): it was truncated; reading it from the start",
                        path.display(),
                        metadata.len(),
                        saved.offset
                    );
                    self.counters
                        .files_truncated
                        .fetch_add(1, Ordering::Relaxed);
                    0
                }
            }
            Some(_) => {
                eprintln!(
                    "ringway: info: {} starts with other bytes than the file checkpointed under its inode (replaced or rewritten); reading it from the start",
                    path.display()
                );
                0
            }
            None if at_start && self.config.from == StartFrom::End => metadata.len(),
            None if self.initial_waiting.contains_key(path)
                && self.config.from == StartFrom::End =>
            {
                // Its end when ringway started, not now: what was appended
                // while it waited for a descriptor is read too.
                let at_start = self.initial_waiting[path];
                if at_start <= metadata.len() {
                    at_start
                } else {
                    0
                }
            }
            None if at_start || self.initial_waiting.contains_key(path) => 0,
            None => match self.copy_of(path, &file, &fingerprint, identity, metadata.len()) {
                CopyCheck::CopyFrom {
                    read,
                    delivered: copied,
                } => {
                    delivered = Some(copied);
                    read
                }
                CopyCheck::Unsure => {
                    // Perhaps a copy still being written: hold it open
                    // unread, and look again once its bytes can tell.
                    hold_for_copy_check = true;
                    0
                }
                CopyCheck::NotACopy => 0,
            },
        };
        self.state_dirty = true;
        let waited_at_start = self.initial_waiting.remove(path).is_some();
        let initial_pending = at_start || waited_at_start;
        if at_start {
            self.initial_remaining += 1;
        }
        let slot = match self.files.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.files.push(None);
                self.files.len() - 1
            }
        };
        let watch = self.watch(path, slot);
        let generation = self.take_generation();
        self.offsets
            .reset(slot, generation, delivered.unwrap_or(offset), offset);
        self.files[slot] = Some(TailedFile {
            path: path.to_path_buf(),
            file,
            identity,
            offset,
            reading: false,
            readable: !hold_for_copy_check,
            skipping: false,
            skip_from: 0,
            check_before_read: false,
            needs_mark: delivered.is_some_and(|delivered| delivered < offset),
            initial_pending,
            watch,
            eof_size: 0,
            flush_partial: false,
            read_failures: 0,
            generation,
            fingerprint,
            rotated: false,
            closing: false,
            idle_since: None,
            tail: Fingerprint::default(),
            copy_check_at: hold_for_copy_check.then(|| Instant::now() + COPY_CHECK_DELAY),
        });
        if hold_for_copy_check {
            self.next_rescan = self.next_rescan.min(Instant::now() + COPY_CHECK_DELAY);
        }
        self.warned.remove(path);
        self.open_identities.insert(identity);
        self.counters.files_opened.fetch_add(1, Ordering::Relaxed);
        Some(identity)
    }

    /// Whether the new file `copy` is a copy of a file being read, or of one
    /// truncated just now (copytruncate); if so, it is read from where that
    /// file was read to, not again from its start. A copy is recognised by
    /// its first KiB and by the KiB before that offset, both matching.
    fn copy_of(
        &self,
        path: &Path,
        copy: &File,
        fingerprint: &Fingerprint,
        identity: (u64, u64),
        size: u64,
    ) -> CopyCheck {
        if !fingerprint.is_full() {
            return CopyCheck::Unsure;
        }
        let open = self
            .files
            .iter()
            .enumerate()
            .filter_map(|(slot, file)| Some((slot, file.as_ref()?)))
            .filter(|(_, file)| file.identity != identity)
            .map(|(slot, file)| {
                let delivered = self.offsets.get(slot, file.generation).unwrap_or(0);
                let delivered = delivered.min(file.offset);
                (
                    file.fingerprint,
                    file.tail,
                    file.offset,
                    delivered,
                    file.path.as_path(),
                )
            });
        let truncated = self.truncated.iter().rev().map(|t| {
            let original = Path::new("a truncated file");
            (t.fingerprint, t.tail, t.offset, t.delivered, original)
        });
        let mut check = CopyCheck::NotACopy;
        for (head, tail, offset, delivered, original) in open.chain(truncated) {
            if head != *fingerprint {
                continue;
            }
            if offset > size {
                check = CopyCheck::Unsure; // the same start, not all copied yet?
                continue;
            }
            if tail.matches_before(copy, offset) {
                eprintln!(
                    "ringway: info: {} is a copy of {} (copytruncate); reading it from byte {offset}, where the original was read to",
                    path.display(),
                    original.display()
                );
                return CopyCheck::CopyFrom {
                    read: offset,
                    delivered,
                };
            }
        }
        check
    }

    /// Decides where a held new file starts: where its original was read
    /// to if it is a copy, else at 0.
    fn settle_copy_check(&mut self, index: usize) {
        let file = self.files[index].as_ref().expect("open file");
        let fingerprint = Fingerprint::of(&file.file).unwrap_or_default();
        let size = file.file.metadata().map(|m| m.len()).unwrap_or(0);
        let (offset, delivered) =
            match self.copy_of(&file.path, &file.file, &fingerprint, file.identity, size) {
                CopyCheck::CopyFrom { read, delivered } => (read, delivered),
                CopyCheck::Unsure | CopyCheck::NotACopy => (0, 0),
            };
        let file = self.files[index].as_mut().expect("open file");
        file.fingerprint = fingerprint;
        file.offset = offset;
        file.copy_check_at = None;
        file.readable = true;
        file.needs_mark = delivered < offset;
        self.offsets
            .reset(index, file.generation, delivered, offset);
        self.state_dirty = true;
    }

    /// Opens waiting files, oldest first, while descriptors free up.
    fn open_waiting(&mut self) {
        while let Some(path) = self.waiting.front().cloned() {
            if self.files.iter().flatten().count() >= self.config.max_open_files
                && !self.evict_idle_file()
            {
                return;
            }
            self.waiting.pop_front();
            self.waiting_set.remove(&path);
            self.open_match(&path, false);
        }
    }

    /// Closes one file that has nothing unread (at EOF, its size unchanged)
    /// and nothing undelivered to make room, remembering its offset. False
    /// when none is idle: a descriptor with unread bytes is never evicted.
    fn evict_idle_file(&mut self) -> bool {
        let idle = (0..self.files.len()).find(|&index| {
            self.files[index].as_ref().is_some_and(|file| {
                !file.reading
                    && !file.readable
                    && !file.skipping
                    && !file.initial_pending
                    && file.copy_check_at.is_none()
                    && file.eof_size == file.offset
            }) && self.fully_delivered(index)
        });
        let Some(index) = idle else {
            return false;
        };
        self.park_file(index);
        true
    }

    /// Closes a file read to its end and fully delivered, remembering where
    /// it was left in case it grows or is matched again.
    fn park_file(&mut self, index: usize) {
        let file = self.files[index].as_ref().expect("open file");
        self.known.insert(
            file.identity,
            SavedFile {
                path: file.path.clone(),
                identity: file.identity,
                fingerprint: file.fingerprint,
                offset: file.offset,
                modified: file.file.metadata().and_then(|m| m.modified()).ok(),
            },
        );
        self.close_file(index);
    }

    /// Watches the file's directory and records the file under its name.
    fn watch(&mut self, path: &Path, slot: usize) -> Option<(i32, Box<[u8]>)> {
        let fd = self.inotify_fd.as_ref()?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name: Box<[u8]> = path.file_name()?.as_bytes().into();
        let c_directory = std::ffi::CString::new(directory.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c_directory` is a valid NUL-terminated string for the call.
        let wd =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_directory.as_ptr(), INOTIFY_MASK) };
        if wd < 0 {
            eprintln!(
                "ringway: warning: cannot watch {} (noticing growth by rescan); error = {}",
                directory.display(),
                std::io::Error::last_os_error()
            );
            return None;
        }
        self.watched
            .entry(wd)
            .or_default()
            .insert(name.clone(), slot);
        Some((wd, name))
    }

    /// Whether the file at `path` (of `identity`) is one ringway writes;
    /// if so it is skipped, warned about once and counted.
    fn is_written(&mut self, path: &Path, identity: (u64, u64)) -> bool {
        let Some(name) = self.written.name_of(identity) else {
            return false;
        };
        let why = format!(
            "it is ringway's own output {name} (the same device and inode); reading it would read back what ringway writes"
        );
        self.skip(path, &why);
        true
    }

    fn skip(&mut self, path: &Path, why: &str) {
        if self.warned.insert(path.to_path_buf()) {
            eprintln!("ringway: warning: skipping {}: {why}", path.display());
            self.counters.files_skipped.fetch_add(1, Ordering::Relaxed);
        }
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

/// A pattern is a glob when it has glob characters and is not the name of
/// an existing file (`app[1].log` may be a literal name).
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[']) && !Path::new(pattern).exists()
}

/// Start-up check of DESIGN §7: a literal path must exist (a glob may
/// match nothing yet). Under `--exit-on-eof` a literal path must also be
/// readable now: skipped with a warning, it would end the run at once
/// having read nothing, with exit 0.
pub(crate) fn check_pattern(pattern: &str, exit_on_eof: bool) -> Result<(), String> {
    if is_glob(pattern) {
        return glob::Pattern::new(pattern)
            .map(|_| ())
            .map_err(|error| format!("'{pattern}' is not a valid glob: {error}"));
    }
    let metadata = match std::fs::metadata(pattern) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(format!(
                "{pattern} is a directory; use a glob such as {pattern}/*.log"
            ));
        }
        Ok(metadata) => metadata,
        Err(error) => return Err(format!("cannot read {pattern}: {error}")),
    };
    if !exit_on_eof {
        return Ok(());
    }
    let unreadable = |why: String| {
        format!("{pattern} {why}, and --exit-on-eof would end the run having read nothing")
    };
    if let Some(why) = not_a_regular_file(&metadata) {
        return Err(unreadable(why.to_string()));
    }
    File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(pattern)
        .map(drop)
        .map_err(|error| unreadable(format!("cannot be opened for reading ({error})")))
}

/// Why a path that is not a regular file cannot be tailed; `None` for a
/// regular file.
pub(crate) fn not_a_regular_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("is a FIFO, not a regular file (read a pipe with --input stdin)")
    } else if kind.is_dir() {
        Some("is a directory, not a regular file")
    } else if kind.is_char_device() {
        Some("is a character device, not a regular file")
    } else if kind.is_block_device() {
        Some("is a block device, not a regular file")
    } else if kind.is_socket() {
        Some("is a socket, not a regular file")
    } else {
        Some("is not a regular file")
    }
}
