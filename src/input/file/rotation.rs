//! What happens to a tailed file at its end and after: its [`Lifecycle`]
//! (tailing, rotated away, closing once deleted), truncation and rewriting
//! (read again from 0, remembered as [`Truncated`]), deletion, rename
//! rotation (drained, then closed after [`ROTATED_IDLE`]), and copytruncate
//! (a new file recognised as a copy, [`CopyCheck`], read on from where its
//! original was read to).

use super::FileReader;
use super::RESCAN_INTERVAL;
use crate::checkpoint::Fingerprint;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a renamed or replaced file must stay idle at its end, fully
/// delivered, before it is closed (its writer may not have reopened yet).
pub(super) const ROTATED_IDLE: Duration = Duration::from_secs(2);

/// Where a tailed file stands between its opening and its closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Its path still names it: read as it grows.
    Tailing,
    /// Its path names another file, or none (renamed or replaced): read to
    /// its end, and closed once it stayed there, delivered and not
    /// growing, for [`ROTATED_IDLE`].
    Rotated {
        /// Since when it is at its end, delivered, not growing.
        idle_since: Option<Instant>,
    },
    /// Deleted and read to its end: closed once delivered. A writer that
    /// still holds it may append; then it is read on, back in the state it
    /// left (`after_rotation`: [`Lifecycle::Rotated`], else
    /// [`Lifecycle::Tailing`]).
    Closing { after_rotation: bool },
}

impl Lifecycle {
    pub fn is_rotated(self) -> bool {
        matches!(self, Lifecycle::Rotated { .. })
    }

    pub fn is_closing(self) -> bool {
        matches!(self, Lifecycle::Closing { .. })
    }

    /// Its path no longer names it (a tailing file only).
    pub fn rotate(&mut self) {
        if *self == Lifecycle::Tailing {
            *self = Lifecycle::Rotated { idle_since: None };
        }
    }

    /// Read to its end with no link left: it closes once delivered.
    /// True when it just began closing (say so once).
    pub fn deleted_at_end(&mut self) -> bool {
        if self.is_closing() {
            return false;
        }
        *self = Lifecycle::Closing {
            after_rotation: self.is_rotated(),
        };
        true
    }

    /// A closing file grew (a writer still holds it): read it on.
    pub fn reopen(&mut self) {
        if let Lifecycle::Closing { after_rotation } = *self {
            *self = if after_rotation {
                Lifecycle::Rotated { idle_since: None }
            } else {
                Lifecycle::Tailing
            };
        }
    }

    /// Bytes were read from it, or it changed: it is not idle.
    pub fn active(&mut self) {
        if let Lifecycle::Rotated { idle_since } = self {
            *idle_since = None;
        }
    }

    /// A rotated file is at its end and delivered at `now`: whether it has
    /// been since at least [`ROTATED_IDLE`] (the clock starts at the first
    /// such call after it was last active). Never for a file not rotated.
    pub fn idle_long_enough(&mut self, now: Instant) -> bool {
        match self {
            Lifecycle::Rotated { idle_since } => {
                let since = *idle_since.get_or_insert(now);
                now.saturating_duration_since(since) >= ROTATED_IDLE
            }
            _ => false,
        }
    }
}

/// Whether `path` still names the file of `identity` (device, inode): not
/// after a rename, a new file under the name (rotation), or a deletion.
pub(super) fn path_names(path: &Path, identity: (u64, u64)) -> bool {
    std::fs::metadata(path).is_ok_and(|now| (now.dev(), now.ino()) == identity)
}

/// Where a file was read to when it was truncated: a copy of it made just
/// before (copytruncate) is read from there on.
pub(super) struct Truncated {
    fingerprint: Fingerprint,
    tail: Fingerprint,
    offset: u64,
    /// Delivered when it was truncated: a copy's checkpoint starts here.
    delivered: u64,
}

/// A file a new one may be a copy of: one open, or one truncated lately.
struct Original<'a> {
    head: Fingerprint,
    tail: Fingerprint,
    /// Where it was read to (when it was truncated, for one truncated).
    offset: u64,
    delivered: u64,
    name: &'a Path,
    /// Still open, and perhaps not yet truncated: it may read further.
    open: bool,
}

impl Original<'_> {
    /// What this original says of the new file `copy` (of `size` bytes,
    /// starting with `fingerprint`): `None` if it is no copy of it.
    fn judge(
        &self,
        copy: &File,
        fingerprint: &Fingerprint,
        size: u64,
        last_check: bool,
    ) -> Option<CopyCheck> {
        if self.head != *fingerprint {
            return None;
        }
        if self.offset > size {
            return Some(CopyCheck::Pending);
        }
        if !self.tail.matches_before(copy, self.offset) {
            return None;
        }
        if self.open && self.offset < size && !last_check {
            // Read from here now, the copy would repeat whatever the
            // original still reads of it before its truncation shows.
            return Some(CopyCheck::Pending);
        }
        Some(CopyCheck::CopyFrom {
            read: self.offset,
            delivered: self.delivered,
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum CopyCheck {
    /// Read the copy from `read`; it is delivered up to `delivered` (the
    /// original's bytes between are still in flight, or were lost with it).
    CopyFrom {
        read: u64,
        delivered: u64,
    },
    /// Too short to tell yet.
    Unsure,
    /// Probably a copy, but where to read it from is not known yet: it is
    /// shorter than where its original was read to (still being copied,
    /// slowly on a busy machine), or its original is still open with bytes
    /// of the copy left to read (copytruncate truncates it just after
    /// copying: the truncation, once noticed, tells where it was left).
    Pending,
    NotACopy,
}

/// How long a new file that may be a copy still being written is held
/// unread (it is checked at the first rescan after this).
pub(super) const COPY_CHECK_DELAY: Duration = Duration::from_millis(250);

/// How many times a probable copy ([`CopyCheck::Pending`]) is checked,
/// [`COPY_CHECK_DELAY`] apart, before it is read from where its open
/// original was read to then (or from 0, if it is still shorter).
pub(super) const MAX_COPY_CHECKS: u32 = 40;

/// Truncation records kept for recognising copies.
pub(super) const MAX_TRUNCATED: usize = 16;

impl FileReader {
    /// A read came back short at `end` (the file's size as that read saw
    /// it): nothing more past `offset` for now. Checks for truncation and
    /// deletion, which only show at EOF.
    pub(super) fn reached_eof(&mut self, index: usize, end: u64) {
        let file = self.files[index].as_mut().expect("open file");
        file.readable = false;
        file.check_before_read = true;
        if file.initial_pending {
            file.initial_pending = false;
            self.initial_remaining -= 1;
        }
        // The size the read saw, not the size now: a rescan reads again
        // when the two differ, and bytes written between the read and the
        // look below must count as growth.
        file.eof_size = end;
        let Ok(metadata) = file.file.metadata() else {
            return;
        };
        if metadata.len() < file.offset {
            let why = format!(
                "was truncated from {} to {} bytes",
                file.offset,
                metadata.len()
            );
            self.restart_file(index, &why);
            return;
        }
        if file.fingerprint.can_grow(metadata.len()) {
            // Taken while the file was shorter: hash more of it, but only
            // if it still starts with the bytes hashed, or the longer
            // fingerprint would describe other content than the offset.
            match file.fingerprint.extended(&file.file) {
                Ok(Some(longer)) => {
                    file.fingerprint = longer;
                    self.state_dirty = true;
                }
                Ok(None) => {
                    self.restart_file(index, "was truncated and written again");
                    return;
                }
                Err(_) => {}
            }
        }
        let file = self.files[index].as_mut().expect("open file");
        if metadata.len() > end {
            // Written to since the read found its end. The write's inotify
            // event may have come before this read's completion (and its
            // readable flag was cleared above), or under a name that is not
            // watched (a rotated file's new name): read on now.
            file.readable = true;
        }
        if metadata.nlink() == 0 && metadata.len() > file.offset {
            // Deleted with bytes left (a last line without a newline, or a
            // writer that still appends): no writer will finish the last
            // line, so read on and emit it with one.
            file.flush_partial = true;
            file.readable = true;
        } else if metadata.nlink() == 0 && file.lifecycle.deleted_at_end() {
            eprintln!(
                "ringway: info: {} was deleted; it was read to its end and is closed once delivered",
                file.path.display()
            );
            if self.fully_delivered(index) {
                self.close_file(index);
            }
        }
    }

    /// The file in `index` no longer holds what was read from it
    /// (truncated, or rewritten from the start): read it again from 0.
    /// Marks of the old content still in flight no longer count for it (a
    /// new generation).
    pub(super) fn restart_file(&mut self, index: usize, why: &str) {
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
        self.offsets.set_path(index, generation, &file.path);
        self.state_dirty = true;
    }

    /// The slow safety net: growth, truncation, deletion, new matches.
    pub(super) fn rescan(&mut self) {
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
            if file.lifecycle.is_closing() {
                // Deleted and read to its end. A writer that still holds it
                // may append: read on; else close once delivered.
                let size = file.file.metadata().map(|m| m.len()).unwrap_or(0);
                if size > file.offset {
                    file.lifecycle.reopen();
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
            if !file.lifecycle.is_rotated() && !path_names(&file.path, file.identity) {
                eprintln!(
                    "ringway: info: {} was renamed or replaced; reading the old file to its end before closing it",
                    file.path.display()
                );
                file.lifecycle.rotate();
                file.readable = true;
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
                file.lifecycle.active();
                file.readable = true;
                continue;
            }
            if file.lifecycle.is_rotated() && file.skipping && metadata.len() == file.offset {
                // Rotated away inside an over-long line: nothing will end it.
                file.skipping = false;
                file.needs_mark = true;
                file.readable = true;
                continue;
            }
            let settled = metadata.len() == file.offset && self.fully_delivered(index);
            let file = self.files[index].as_mut().expect("open file");
            if settled && file.lifecycle.idle_long_enough(Instant::now()) {
                self.park_file(index);
            }
        }
        if !self.stopping() {
            self.scan_matches(false);
        }
    }

    /// Whether the new file `copy` is a copy of a file being read, or of one
    /// truncated just now (copytruncate); if so, it is read from where that
    /// file was read to, not again from its start. A copy is recognised by
    /// its first KiB and by the KiB before that offset, both matching. A
    /// copy of an open file that may still read bytes the copy holds is
    /// [`CopyCheck::Pending`] unless this is the `last_check`.
    pub(super) fn copy_of(
        &self,
        path: &Path,
        copy: &File,
        fingerprint: &Fingerprint,
        identity: (u64, u64),
        size: u64,
        last_check: bool,
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
                Original {
                    head: file.fingerprint,
                    tail: file.tail,
                    offset: file.offset,
                    delivered: delivered.min(file.offset),
                    name: file.path.as_path(),
                    open: true,
                }
            });
        let truncated = self.truncated.iter().rev().map(|t| Original {
            head: t.fingerprint,
            tail: t.tail,
            offset: t.offset,
            delivered: t.delivered,
            name: Path::new("a truncated file"),
            open: false,
        });
        let mut check = CopyCheck::NotACopy;
        for original in open.chain(truncated) {
            match original.judge(copy, fingerprint, size, last_check) {
                Some(CopyCheck::CopyFrom { read, delivered }) => {
                    eprintln!(
                        "ringway: info: {} is a copy of {} (copytruncate); reading it from byte {read}, where the original was read to",
                        path.display(),
                        original.name.display()
                    );
                    return CopyCheck::CopyFrom { read, delivered };
                }
                Some(other) => check = other,
                None => {}
            }
        }
        check
    }

    /// Decides where a held new file starts: where its original was read
    /// to if it is a copy, else at 0. A copy still being written is held
    /// again, up to [`MAX_COPY_CHECKS`] times: read from 0, it would repeat
    /// everything its original delivered.
    pub(super) fn settle_copy_check(&mut self, index: usize) {
        let file = self.files[index].as_ref().expect("open file");
        let fingerprint = Fingerprint::of(&file.file).unwrap_or_default();
        let size = file.file.metadata().map(|m| m.len()).unwrap_or(0);
        let last_check = file.copy_checks + 1 >= MAX_COPY_CHECKS;
        let check = self.copy_of(
            &file.path,
            &file.file,
            &fingerprint,
            file.identity,
            size,
            last_check,
        );
        let file = self.files[index].as_mut().expect("open file");
        file.copy_checks += 1;
        let (offset, delivered) = match check {
            CopyCheck::CopyFrom { read, delivered } => (read, delivered),
            CopyCheck::Pending if !last_check => {
                let at = Instant::now() + COPY_CHECK_DELAY;
                file.copy_check_at = Some(at);
                self.next_rescan = self.next_rescan.min(at);
                return;
            }
            CopyCheck::Pending | CopyCheck::Unsure | CopyCheck::NotACopy => (0, 0),
        };
        file.fingerprint = fingerprint;
        file.offset = offset;
        file.copy_check_at = None;
        file.readable = true;
        file.needs_mark = delivered < offset;
        self.offsets
            .reset(index, file.generation, delivered, offset);
        self.state_dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn a_tailed_file_rotates_once_and_parks_after_idling() {
        let mut state = Lifecycle::Tailing;
        let start = Instant::now();
        assert!(!state.idle_long_enough(start), "a tailing file never parks");
        state.rotate();
        assert_eq!(state, Lifecycle::Rotated { idle_since: None });
        assert!(!state.idle_long_enough(start), "the idle clock starts now");
        assert!(!state.idle_long_enough(start + ROTATED_IDLE / 2));
        state.active();
        assert_eq!(state, Lifecycle::Rotated { idle_since: None });
        let later = start + ROTATED_IDLE;
        assert!(
            !state.idle_long_enough(later),
            "activity restarts the clock"
        );
        assert!(state.idle_long_enough(later + ROTATED_IDLE));
        state.rotate();
        assert!(state.is_rotated(), "rotating again changes nothing");
    }

    #[test]
    fn a_deleted_file_closes_once_and_reopens_in_the_state_it_left() {
        let mut tailing = Lifecycle::Tailing;
        assert!(tailing.deleted_at_end());
        assert!(tailing.is_closing() && !tailing.is_rotated());
        assert!(!tailing.deleted_at_end(), "said once");
        tailing.reopen();
        assert_eq!(tailing, Lifecycle::Tailing);

        let mut rotated = Lifecycle::Rotated {
            idle_since: Some(Instant::now()),
        };
        assert!(rotated.deleted_at_end());
        assert!(!rotated.idle_long_enough(Instant::now() + 10 * ROTATED_IDLE));
        rotated.reopen();
        assert_eq!(rotated, Lifecycle::Rotated { idle_since: None });
        rotated.rotate();
        assert!(rotated.is_rotated());
        let mut unchanged = Lifecycle::Tailing;
        unchanged.reopen();
        unchanged.active();
        assert_eq!(unchanged, Lifecycle::Tailing);
        assert!(Duration::ZERO < ROTATED_IDLE);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = crate::test_support::scratch_path(&format!("rotation-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn identity(path: &Path) -> (u64, u64) {
        let metadata = std::fs::metadata(path).unwrap();
        (metadata.dev(), metadata.ino())
    }

    #[test]
    fn a_copy_is_read_from_where_its_original_stopped_once_that_is_known() {
        let dir = scratch("copy-judge");
        let path = dir.join("app.log.1");
        let text: Vec<u8> = (0..4000u32).map(|n| b'a' + (n % 23) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let copy = File::open(&path).unwrap();
        let head = Fingerprint::of(&copy).unwrap();
        let size = text.len() as u64;
        let original = |offset: usize, open: bool| Original {
            head,
            tail: Fingerprint::of_bytes(&text[..offset]),
            offset: offset as u64,
            delivered: offset as u64 - 100,
            name: Path::new("app.log"),
            open,
        };
        let from = |read: u64| {
            Some(CopyCheck::CopyFrom {
                read,
                delivered: read - 100,
            })
        };
        // Truncated where it was read to: the copy starts there.
        assert_eq!(
            original(3000, false).judge(&copy, &head, size, false),
            from(3000)
        );
        // Still open with bytes of the copy unread: not yet, unless it is
        // the last look; read to the copy's end, nothing is left to repeat.
        assert_eq!(
            original(3000, true).judge(&copy, &head, size, false),
            Some(CopyCheck::Pending)
        );
        assert_eq!(
            original(3000, true).judge(&copy, &head, size, true),
            from(3000)
        );
        assert_eq!(
            original(4000, true).judge(&copy, &head, size, false),
            from(4000)
        );
        // Read further than the copy holds yet: still being copied.
        assert_eq!(
            original(3000, false).judge(&copy, &head, 2000, false),
            Some(CopyCheck::Pending)
        );
        // Another start, or other bytes before the offset: no copy of it.
        let other = Fingerprint::of_bytes(b"another file");
        assert_eq!(
            original(3000, false).judge(&copy, &other, size, false),
            None
        );
        let mut moved = original(3000, false);
        moved.offset = 2999;
        assert_eq!(moved.judge(&copy, &head, size, true), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A reader of `path` (from its start) with nothing posted on its ring
    /// but its file reads, and the ring its batches go to.
    fn reader_of(path: &Path) -> (FileReader, crate::ring::RingReceiver<crate::batch::Batch>) {
        use crate::ring::Waker;
        use std::sync::Arc;
        let waker = Waker::for_eventfd(crate::uring::eventfd().unwrap());
        let (to_cpu, batches) =
            crate::ring::ring(4, Arc::clone(&waker), Waker::for_test(), Arc::default());
        let lane = crate::input::LaneParts {
            ring: io_uring::IoUring::new(8).unwrap(),
            pool: crate::pool::BufferPool::new(4, 4096, Arc::clone(&waker)).unwrap(),
            to_cpu,
            waker,
            counters: Arc::default(),
            shutdown: Arc::default(),
            readers_done: Arc::default(),
            max_line_bytes: 4096,
            source: false,
        };
        let config = super::super::FileReaderConfig {
            pattern: path.to_str().unwrap().to_string(),
            from: crate::config::StartFrom::Beginning,
            exit_on_eof: false,
            max_open_files: 4,
            written: Vec::new(),
        };
        let tracking = super::super::FileTracking {
            offsets: crate::checkpoint::AckedOffsets::new(4),
            state: None,
            saved: Default::default(),
        };
        (FileReader::new(config, lane, tracking), batches)
    }

    /// Reads what is readable, waiting for each read, and returns the
    /// bytes of the batches made.
    fn read_what_is_readable(
        reader: &mut FileReader,
        batches: &mut crate::ring::RingReceiver<crate::batch::Batch>,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..8 {
            reader.issue_reads();
            if reader.in_flight == 0 {
                break;
            }
            reader.submit(true);
            reader.reap_completions();
            reader.push_ready();
            while let Some(batch) = batches.pop() {
                bytes.extend_from_slice(&batch.buf[..batch.len]);
            }
        }
        bytes
    }

    #[test]
    fn a_rotated_file_written_between_its_last_read_and_the_look_at_its_size_is_read_to_its_end() {
        let dir = scratch("grown-at-eof");
        let path = dir.join("app.log");
        std::fs::write(&path, b"one\n").unwrap();
        let (mut reader, mut batches) = reader_of(&path);
        reader.scan_matches(true);
        assert_eq!(read_what_is_readable(&mut reader, &mut batches), b"one\n");
        // Rotated: the rescan that notices it reads the old file to its end.
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        reader.rescan();
        reader.issue_reads();
        assert_eq!(reader.in_flight, 1, "the rotated file is read to its end");
        reader.submit(true);
        assert_eq!(reader.ring.completion().len(), 1, "the read completed");
        // That read found the end; the application writes its last line to
        // the old descriptor before the reader handles the read (and looks
        // at the file's size). Its write is reported under the new name,
        // which the reader does not watch: only a rescan can see it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("app.log.1"))
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        reader.reap_completions();
        reader.push_ready();
        let mut after = Vec::new();
        while let Some(batch) = batches.pop() {
            after.extend_from_slice(&batch.buf[..batch.len]);
        }
        assert!(after.is_empty(), "the read found the end before the write");
        for _ in 0..3 {
            reader.rescan();
            after.extend(read_what_is_readable(&mut reader, &mut batches));
        }
        assert_eq!(after, b"two\n", "the last line is read");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_is_seen_on_rename_replacement_and_deletion() {
        let dir = scratch("detect");
        let path = dir.join("app.log");
        std::fs::write(&path, b"one\n").unwrap();
        let first = identity(&path);
        assert!(path_names(&path, first));
        // Appending and truncating keep the inode: not a rotation.
        std::fs::write(&path, b"").unwrap();
        assert!(path_names(&path, first));

        // Renamed away (logrotate's default), and a new file created.
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        assert!(!path_names(&path, first), "nothing under the name");
        std::fs::write(&path, b"two\n").unwrap();
        assert!(!path_names(&path, first), "another file under the name");
        assert!(path_names(&dir.join("app.log.1"), first));

        // Replaced by a rename over it.
        let second = identity(&path);
        std::fs::write(dir.join("next"), b"three\n").unwrap();
        std::fs::rename(dir.join("next"), &path).unwrap();
        assert!(!path_names(&path, second));

        // Deleted.
        let third = identity(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(!path_names(&path, third));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
