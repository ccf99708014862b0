//! Sinks: where an output worker writes a batch (`file:`, `stdout`, `null`).
//!
//! A [`Sink`] is shared by the workers of one output. `file:` is opened by
//! the first worker that writes, inside the worker thread, so a FIFO with no
//! reader stalls that output instead of failing start-up.
//!
//! With `--data-dir`, on its first open a regular `file:` output that ends
//! in a partial line (a `kill -9` cut a write) is truncated back to its last
//! newline: that tail was never acked, so it is written again from the
//! checkpoint.

use crate::config::OutputKind;
use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) enum Sink {
    /// Opened on first write; reopened after a write error.
    File {
        path: PathBuf,
        file: Mutex<FileState>,
        /// fsync after each batch, before it is acked (`--fsync`).
        fsync: bool,
    },
    Stdout,
    Null,
}

pub(crate) struct FileState {
    file: Option<File>,
    /// Cut a torn last line at the first open (with `--data-dir`, where
    /// the cut bytes are read again from the checkpoint).
    repair_torn: bool,
    /// Opened before: later opens (after an error) must not truncate, since
    /// a retry resumes inside the batch it was writing.
    opened_before: bool,
}

impl Sink {
    pub fn new(kind: &OutputKind, fsync: bool, repair_torn: bool) -> Self {
        match kind {
            OutputKind::File(path) => Sink::File {
                path: path.clone(),
                file: Mutex::new(FileState {
                    file: None,
                    repair_torn,
                    opened_before: false,
                }),
                fsync,
            },
            OutputKind::Stdout => Sink::Stdout,
            OutputKind::Null => Sink::Null,
        }
    }

    /// Whether batches must be written in the order they were dispatched.
    pub fn ordered(&self) -> bool {
        !matches!(self, Sink::Null)
    }

    /// Writes `bytes[*written..]`, advancing `*written` as bytes go out, so
    /// a retry after an error resumes exactly where the write stopped: no
    /// duplicate, no torn line. A file is reopened on the next attempt.
    pub fn write(&self, bytes: &[u8], written: &mut usize) -> io::Result<()> {
        match self {
            Sink::Null => {
                *written = bytes.len();
                Ok(())
            }
            Sink::Stdout => {
                // Raw fd 1: std's stdout is line-buffered, which would split
                // every batch into a write per line.
                // SAFETY: fd 1 is open for the life of the process; the
                // ManuallyDrop keeps us from closing it.
                let mut stdout = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
                let result = write_from(&mut stdout, bytes, written);
                if let Err(error) = &result
                    && error.kind() == io::ErrorKind::BrokenPipe
                {
                    // Nobody will ever read stdout again: retrying forever
                    // would only hide that.
                    eprintln!(
                        "ringway: error: stdout was closed by its reader (broken pipe); exiting"
                    );
                    std::process::exit(1);
                }
                result
            }
            Sink::File { path, file, fsync } => {
                let mut state = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let out = state.open(path)?;
                let mut result = write_from(out, bytes, written);
                if result.is_ok() && *fsync {
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
        }
    }

    /// Opens a regular `file:` output now (cutting a torn last line), so a
    /// crash's leftovers are repaired even before new data arrives. A FIFO
    /// or other special file is left to open on first write.
    pub fn open_early(&self) {
        if let Sink::File { path, file, .. } = self {
            let regular = match std::fs::metadata(path) {
                Ok(metadata) => metadata.is_file(),
                Err(error) => error.kind() == io::ErrorKind::NotFound,
            };
            if !regular {
                return;
            }
            let mut state = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = state.open(path) {
                // The first write retries and reports it.
                eprintln!(
                    "ringway: warning: cannot open output {} yet; error = {error}",
                    path.display()
                );
            }
        }
    }
}

impl FileState {
    fn open(&mut self, path: &Path) -> io::Result<&mut File> {
        if self.file.is_none() {
            // Regular files are opened readable too, to find a torn last
            // line; anything else (a FIFO) write-only, or ringway would be
            // its own reader.
            let repair = self.repair_torn
                && !self.opened_before
                && match std::fs::metadata(path) {
                    Ok(metadata) => metadata.is_file(),
                    Err(error) => error.kind() == io::ErrorKind::NotFound,
                };
            let open = |read| {
                File::options()
                    .create(true)
                    .append(true)
                    .read(read)
                    .open(path)
            };
            let file = match open(repair) {
                Err(error) if repair && error.kind() == io::ErrorKind::PermissionDenied => {
                    let file = open(false)?;
                    eprintln!(
                        "ringway: warning: output {} is not readable, so a torn last line left by a crash cannot be found and cut",
                        path.display()
                    );
                    file
                }
                Ok(file) if repair => {
                    if let Err(error) = cut_torn_line(&file, path) {
                        eprintln!(
                            "ringway: warning: output {}: cannot check or cut a torn last line (writing on after it); error = {error}",
                            path.display()
                        );
                    }
                    file
                }
                other => other?,
            };
            self.opened_before = true;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

/// Truncates a regular file that does not end in `\n` back to just after
/// its last `\n` (to empty when it has none).
fn cut_torn_line(file: &File, path: &Path) -> io::Result<()> {
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return Ok(());
    }
    let size = metadata.len();
    let mut chunk = [0u8; 64 * 1024];
    let mut end = size;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if end == size && part.last() == Some(&b'\n') {
            return Ok(()); // whole lines
        }
        if let Some(newline) = memchr::memrchr(b'\n', part) {
            keep = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    eprintln!(
        "ringway: warning: output {} ended in a partial line (an interrupted write); cut {} bytes back to its last complete line, they are written again from the checkpoint",
        path.display(),
        size - keep
    );
    file.set_len(keep)?;
    file.sync_data()
}

/// `write_all` that records its progress in `written`.
fn write_from(out: &mut File, bytes: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < bytes.len() {
        match out.write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => *written += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
