//! Sinks: where an output worker writes a batch (`file:`, `stdout`, `null`).
//!
//! A [`Sink`] is shared by the workers of one output. `file:` is opened by
//! the first worker that writes, inside the worker thread, so a FIFO with no
//! reader stalls that output instead of failing start-up.

use crate::config::OutputKind;
use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

pub(crate) enum Sink {
    /// Opened on first write; reopened after a write error.
    File {
        path: PathBuf,
        file: Mutex<Option<File>>,
    },
    Stdout,
    Null,
}

impl Sink {
    pub fn new(kind: &OutputKind) -> Self {
        match kind {
            OutputKind::File(path) => Sink::File {
                path: path.clone(),
                file: Mutex::new(None),
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
            Sink::File { path, file } => {
                let mut guard = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if guard.is_none() {
                    *guard = Some(File::options().create(true).append(true).open(path)?);
                }
                let result = write_from(guard.as_mut().expect("opened above"), bytes, written);
                if result.is_err() {
                    *guard = None;
                }
                result
            }
        }
    }
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
