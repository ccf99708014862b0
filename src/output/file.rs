//! The `file:` output's sink: [`FileSink`], one file shared by the
//! output's workers, written in dispatch order.
//!
//! The file is opened by the first worker that writes, inside the worker
//! thread, so a FIFO with no reader stalls that output instead of failing
//! start-up (a regular file is opened early, see [`FileSink::open_early`]).
//!
//! A regular `file:` output never gets a line appended onto a partial one
//! (a `kill -9` cut a write). With `--data-dir`, on its first open such a
//! file is truncated back to its last newline: that tail was never acked,
//! so it is written again from the checkpoint. Otherwise (no `--data-dir`,
//! where nothing is written again, or a later open such as a SIGHUP
//! reopen) the partial line is ended with a newline and counted
//! (`torn_lines`).
//!
//! SIGHUP ([`crate::signals::request_reopen`]) makes the file close and
//! reopen its path before its next write, so logrotate can rename it away:
//! the batch being written finishes in the old file, the next one goes to a
//! new file at the path.

use crate::append::{TornTail, open_for_append, open_whole_lines, write_from};
use crate::metrics::OutputCounters;
use crate::signals::reopen_generation;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A `file:` output: opened on first write; reopened after a write error
/// and after a SIGHUP.
pub(crate) struct FileSink {
    path: PathBuf,
    file: Mutex<FileState>,
    /// fsync after each batch, before it is acked (`--fsync`).
    fsync: bool,
    /// The output's counters (`torn_lines`).
    counters: Arc<OutputCounters>,
}

impl FileSink {
    /// `repair_torn`: cut a torn last line at the first open (with
    /// `--data-dir`, where the cut bytes are read again from the checkpoint).
    pub fn new(
        path: PathBuf,
        fsync: bool,
        repair_torn: bool,
        counters: Arc<OutputCounters>,
    ) -> Self {
        Self {
            path,
            file: Mutex::new(FileState {
                file: None,
                repair_torn,
                opened_before: false,
                generation: 0,
            }),
            fsync,
            counters,
        }
    }

    /// Writes `bytes[*written..]`, advancing `*written` as bytes go out, so
    /// a retry after an error resumes exactly where the write stopped: no
    /// duplicate, no torn line. The file is reopened on the next attempt.
    pub fn write(&self, bytes: &[u8], written: &mut usize) -> io::Result<()> {
        let mut state = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Under the lock: a batch another worker is writing ends in
        // the old file before this one starts in the new.
        if state.generation != reopen_generation() {
            state.file = None;
        }
        // A retry that resumes inside the batch continues a line
        // of its own: the file's end is not a torn line then.
        let out = state.open(&self.path, *written > 0, &self.counters)?;
        let mut result = write_from(out, bytes, written);
        if result.is_ok() && self.fsync {
            result = out.sync_data();
            if result.is_err() {
                // After a failed fsync the kernel may have dropped
                // the dirty pages: a retry rewrites the whole batch
                // (lines may repeat) rather than trust them.
                *written = 0;
            }
        }
        if result.is_err() {
            state.file = None;
        }
        result
    }

    /// Opens a regular `file:` output now (cutting or ending a torn last
    /// line), so a crash's leftovers are repaired even before new data
    /// arrives. A FIFO or other special file is left to open on first write.
    pub fn open_early(&self) {
        let regular = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.is_file(),
            Err(error) => error.kind() == io::ErrorKind::NotFound,
        };
        if !regular {
            return;
        }
        let mut state = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = state.open(&self.path, false, &self.counters) {
            // The first write retries and reports it.
            eprintln!(
                "ringway: warning: cannot open output {} yet; error = {error}",
                self.path.display()
            );
        }
    }
}

struct FileState {
    file: Option<File>,
    /// Cut a torn last line at the first open (with `--data-dir`, where
    /// the cut bytes are read again from the checkpoint); otherwise a torn
    /// last line is ended with a newline.
    repair_torn: bool,
    /// Opened before: later opens must not truncate, since what this run
    /// wrote was acked and will not be written again.
    opened_before: bool,
    /// The reopen generation ([`crate::signals`]) when `file` was opened.
    generation: u64,
}

impl FileState {
    /// The open file, opened (at the end of whole lines) when it is not.
    /// `resuming`: a retry continues inside its batch, so a partial last
    /// line is this run's own and is left as it is.
    fn open(
        &mut self,
        path: &Path,
        resuming: bool,
        counters: &OutputCounters,
    ) -> io::Result<&mut File> {
        if self.file.is_none() {
            self.generation = reopen_generation();
            let (file, tail) = if resuming {
                (open_for_append(path, false)?, TornTail::Whole)
            } else {
                open_whole_lines(path, self.repair_torn && !self.opened_before)?
            };
            if tail == TornTail::Ended {
                counters.torn_lines.fetch_add(1, Ordering::Relaxed);
            }
            self.opened_before = true;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}
