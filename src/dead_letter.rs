//! The `--dead-letter` file: one writer, [`DeadLetterFile`], for both kinds
//! of lines that land there.
//!
//! - Invalid JSON lines (`--on-invalid dead-letter`): each CPU worker keeps
//!   its own buffered [`DeadLetter`] (no lock on its path; it writes once
//!   its buffer fills, when it goes idle, and before a file batch is acked).
//! - Lines a network output's receiver rejected for good: the output
//!   workers share one [`SharedDeadLetter`], appended whole by whichever
//!   worker got the reject.
//!
//! Every open starts on a line of its own (a partial last line a crash left
//! is ended with a newline, see [`crate::append::open_whole_lines`]), and
//! after a SIGHUP ([`crate::signals`]) the path is opened again before the
//! next write, so logrotate can rename the file away.

use crate::append::open_whole_lines;
use crate::signals::reopen_generation;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes a CPU worker's dead-letter writer buffers before it writes.
const DEAD_LETTER_BUFFER_BYTES: usize = 64 * 1024;

/// The open dead-letter file and the reopen generation it was opened under.
pub(crate) struct DeadLetterFile {
    path: PathBuf,
    file: File,
    generation: u64,
}

impl DeadLetterFile {
    /// Opens `path` for appending on a line of its own.
    pub fn open(path: &Path) -> io::Result<Self> {
        let generation = reopen_generation();
        // A crash may have cut the last append: end that line, so the
        // lines that follow stay whole.
        let (file, _) = open_whole_lines(path, false)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            generation,
        })
    }

    /// False once a SIGHUP asked for the path to be opened again.
    fn is_current(&self) -> bool {
        self.generation == reopen_generation()
    }

    /// Opens the path again; on failure the old file is kept.
    fn reopen(&mut self) -> io::Result<()> {
        *self = Self::open(&self.path)?;
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }
}

/// A CPU worker's writer of invalid lines: buffered, appended; a failed
/// write is warned about once and the lines are lost (they are counted).
pub(crate) struct DeadLetter {
    file: DeadLetterFile,
    buffer: Vec<u8>,
    failed: bool,
}

impl DeadLetter {
    /// Opens the file now, so a path that cannot be opened fails the start.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: DeadLetterFile::open(path)?,
            buffer: Vec::with_capacity(DEAD_LETTER_BUFFER_BYTES),
            failed: false,
        })
    }

    /// Queues one line (with its `\n`).
    pub fn write_line(&mut self, line: &[u8]) {
        if self.buffer.len() + line.len() > self.buffer.capacity() {
            self.flush();
        }
        if line.len() > self.buffer.capacity() {
            self.write_through(line);
        } else {
            self.buffer.extend_from_slice(line);
        }
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) {
        if !self.buffer.is_empty() {
            let buffer = std::mem::take(&mut self.buffer);
            self.write_through(&buffer);
            self.buffer = buffer;
            self.buffer.clear();
        }
    }

    fn write_through(&mut self, bytes: &[u8]) {
        // Reopens the path after a SIGHUP; keeps the old file if that fails.
        if !self.file.is_current()
            && let Err(error) = self.file.reopen()
        {
            eprintln!(
                "ringway: warning: cannot reopen the dead-letter file {} after SIGHUP; error = {error}",
                self.file.path.display()
            );
        }
        if let Err(error) = self.file.write_all(bytes)
            && !self.failed
        {
            self.failed = true;
            eprintln!("ringway: warning: writing the dead-letter file failed; error = {error}");
        }
    }
}

/// The dead-letter file as the output workers share it: batches a receiver
/// rejected are appended, whole, by whichever worker got the reject.
pub(crate) struct SharedDeadLetter {
    pub path: PathBuf,
    /// Opened on first use, and again after an error or a SIGHUP.
    file: Mutex<Option<DeadLetterFile>>,
}

impl SharedDeadLetter {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Mutex::new(None),
        }
    }

    /// Appends `bytes` (whole lines); an error is the caller's to retry.
    pub fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match file.as_mut() {
            Some(open) if !open.is_current() => open.reopen()?,
            Some(_) => {}
            None => *file = Some(DeadLetterFile::open(&self.path)?),
        }
        let result = file.as_mut().expect("opened above").write_all(bytes);
        if result.is_err() {
            *file = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        crate::test_support::scratch_path(&format!("dead-letter-{name}"))
    }

    #[test]
    fn invalid_lines_are_buffered_and_start_after_a_torn_line() {
        let path = temp_path("invalid");
        std::fs::write(&path, b"whole\ntorn").unwrap();
        let mut dead_letter = DeadLetter::open(&path).unwrap();
        dead_letter.write_line(b"bad 1\n");
        dead_letter.write_line(b"bad 2\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\ntorn\n", "buffered");
        dead_letter.flush();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"whole\ntorn\nbad 1\nbad 2\n"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn rejected_lines_go_to_a_new_file_after_a_reopen_request() {
        let path = temp_path("rejected");
        let rotated = path.with_extension("1");
        let shared = SharedDeadLetter::new(&path);
        shared.append(b"first\n").unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        crate::signals::request_reopen();
        shared.append(b"second\n").unwrap();
        assert_eq!(std::fs::read(&rotated).unwrap(), b"first\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
    }
}
