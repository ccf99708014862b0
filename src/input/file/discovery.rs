//! Finding the files to tail: matching the path or glob (`is_glob`,
//! `crate::pattern::check_pattern`), opening a match where its checkpoint or its original
//! (a copy) left it, never a file ringway writes ([`WrittenFiles`]),
//! waiting for a descriptor under `--max-open-files` and closing idle
//! files to make room, and watching each file's directory with inotify.

use super::rotation::{COPY_CHECK_DELAY, CopyCheck, Lifecycle};
use super::{FileReader, INOTIFY_MASK, MAX_WARNED_PATHS, TailedFile};
use crate::checkpoint::{Fingerprint, SavedFile};
use crate::config::StartFrom;
use crate::pattern::not_a_regular_file;
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The (device, inode) of every file ringway writes, looked up again at
/// every scan: an output is created, reopened or rotated while ringway
/// runs, and a match that reaches one under another name (a symlinked
/// directory that appeared, a hard link) must not be read, or ringway
/// would read back what it writes without end. The start-up check in
/// `cli` refuses what is visible at start; this catches the rest.
pub(super) struct WrittenFiles {
    pub paths: Vec<(String, PathBuf)>,
    /// `(identity, index into paths)` of those that exist now.
    pub identities: Vec<((u64, u64), usize)>,
}

impl WrittenFiles {
    pub fn refresh(&mut self) {
        self.identities.clear();
        for (index, (_, path)) in self.paths.iter().enumerate() {
            if let Ok(metadata) = std::fs::metadata(path) {
                self.identities
                    .push(((metadata.dev(), metadata.ino()), index));
            }
        }
    }

    /// The name of the output that `identity` is, if it is one.
    pub fn name_of(&self, identity: (u64, u64)) -> Option<&str> {
        self.identities
            .iter()
            .find(|(written, _)| *written == identity)
            .map(|&(_, index)| self.paths[index].0.as_str())
    }
}

impl FileReader {
    /// Opens every match of the pattern not already open.
    pub(super) fn scan_matches(&mut self, at_start: bool) {
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
    pub(super) fn open_match(&mut self, path: &Path, at_start: bool) -> Option<(u64, u64)> {
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
        // Blocking reads again, read front to back (hints: errors ignored).
        let _ = rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty());
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
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
            None => {
                match self.copy_of(path, &file, &fingerprint, identity, metadata.len(), false) {
                    CopyCheck::CopyFrom {
                        read,
                        delivered: copied,
                    } => {
                        delivered = Some(copied);
                        read
                    }
                    CopyCheck::Unsure | CopyCheck::Pending => {
                        // Perhaps a copy still being written, or of an
                        // open file about to be truncated: hold it open
                        // unread, and look again once that can tell.
                        hold_for_copy_check = true;
                        0
                    }
                    CopyCheck::NotACopy => 0,
                }
            }
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
        self.offsets.set_path(slot, generation, path);
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
            lifecycle: Lifecycle::Tailing,
            tail: Fingerprint::default(),
            copy_check_at: hold_for_copy_check.then(|| Instant::now() + COPY_CHECK_DELAY),
            copy_checks: 0,
        });
        if hold_for_copy_check {
            self.next_rescan = self.next_rescan.min(Instant::now() + COPY_CHECK_DELAY);
        }
        self.warned.remove(path);
        self.open_identities.insert(identity);
        self.counters.files_opened.fetch_add(1, Ordering::Relaxed);
        Some(identity)
    }

    /// Opens waiting files, oldest first, while descriptors free up.
    pub(super) fn open_waiting(&mut self) {
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
    pub(super) fn evict_idle_file(&mut self) -> bool {
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
    pub(super) fn park_file(&mut self, index: usize) {
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

    pub(super) fn close_file(&mut self, index: usize) {
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

    /// Watches the file's directory and records the file under its name.
    pub(super) fn watch(&mut self, path: &Path, slot: usize) -> Option<(i32, Box<[u8]>)> {
        let fd = self.inotify_fd.as_ref()?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name: Box<[u8]> = path.file_name()?.as_bytes().into();
        let mask = rustix::fs::inotify::WatchFlags::from_bits_retain(INOTIFY_MASK);
        let wd = match rustix::fs::inotify::add_watch(fd, directory, mask) {
            Ok(wd) => wd,
            Err(error) => {
                eprintln!(
                    "ringway: warning: cannot watch {} (noticing growth by rescan); error = {}",
                    directory.display(),
                    std::io::Error::from(error)
                );
                return None;
            }
        };
        self.watched
            .entry(wd)
            .or_default()
            .insert(name.clone(), slot);
        Some((wd, name))
    }

    /// Whether the file at `path` (of `identity`) is one ringway writes;
    /// if so it is skipped, warned about once and counted.
    pub(super) fn is_written(&mut self, path: &Path, identity: (u64, u64)) -> bool {
        let Some(name) = self.written.name_of(identity) else {
            return false;
        };
        let why = format!(
            "it is ringway's own output {name} (the same device and inode); reading it would read back what ringway writes"
        );
        self.skip(path, &why);
        true
    }

    pub(super) fn skip(&mut self, path: &Path, why: &str) {
        if self.warned.insert(path.to_path_buf()) {
            eprintln!("ringway: warning: skipping {}: {why}", path.display());
            self.counters.files_skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
