//! Appending to files so that every line stays whole: the `file:` output
//! ([`crate::output::file`]) and the dead-letter file
//! ([`crate::dead_letter`]) open their path with [`open_whole_lines`],
//! which cuts or ends a partial last line a crash left ([`TornTail`]), and
//! write with [`write_from`], which records its progress for a retry.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What an open found at the end of a regular file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TornTail {
    /// Empty, whole lines, not a regular file, or not readable (warned).
    Whole,
    /// A partial last line was cut off (it is written again).
    Cut,
    /// A partial last line was ended with a newline.
    Ended,
}

pub(crate) fn open_for_append(path: &Path, read: bool) -> io::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .read(read)
        .open(path)
}

/// Opens `path` for appending so that what is appended starts on a line of
/// its own: a regular file that ends in a partial line (an interrupted
/// write) is cut back to its last `\n` when `cut` (the caller writes that
/// tail again), else ended with a `\n`. Fails when the file cannot be
/// made to end in a whole line: appending onto the partial line would
/// corrupt the next record.
pub(crate) fn open_whole_lines(path: &Path, cut: bool) -> io::Result<(File, TornTail)> {
    // Regular files are opened readable too, to see their last byte;
    // anything else (a FIFO) write-only, or ringway would be its own reader.
    let regular = match std::fs::metadata(path) {
        Ok(metadata) => metadata.is_file(),
        Err(error) => error.kind() == io::ErrorKind::NotFound,
    };
    if !regular {
        return Ok((open_for_append(path, false)?, TornTail::Whole));
    }
    let file = match open_for_append(path, true) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            let file = open_for_append(path, false)?;
            eprintln!(
                "ringway: warning: output {} is not readable, so a partial last line left by a crash cannot be found and ended",
                path.display()
            );
            return Ok((file, TornTail::Whole));
        }
        other => other?,
    };
    let size = match partial_line_size(&file) {
        Ok(None) => return Ok((file, TornTail::Whole)),
        Ok(Some(size)) => size,
        Err(error) => {
            eprintln!(
                "ringway: warning: output {}: cannot check for a partial last line (writing on after it); error = {error}",
                path.display()
            );
            return Ok((file, TornTail::Whole));
        }
    };
    if cut {
        match cut_torn_line(&file, size) {
            Ok(keep) => {
                eprintln!(
                    "ringway: warning: output {} ended in a partial line (an interrupted write); cut {} bytes back to its last complete line, they are written again from the checkpoint",
                    path.display(),
                    size - keep
                );
                return Ok((file, TornTail::Cut));
            }
            Err(error) => {
                eprintln!(
                    "ringway: warning: output {}: cannot cut a partial last line, ending it with a newline instead; error = {error}",
                    path.display()
                );
                // The cut may have happened before the error (a failed
                // fsync): then there is no partial line left to end.
                if partial_line_size(&file)?.is_none() {
                    return Ok((file, TornTail::Cut));
                }
            }
        }
    }
    (&file).write_all(b"\n")?;
    eprintln!(
        "ringway: warning: output {} ended in a partial line (an interrupted write); ended it with a newline so new lines do not continue it (counted as torn_lines)",
        path.display()
    );
    Ok((file, TornTail::Ended))
}

/// The file's size when it ends in a partial line (it is not empty and
/// its last byte is not `\n`); `None` when it holds whole lines.
fn partial_line_size(file: &File) -> io::Result<Option<u64>> {
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, size - 1)?;
    Ok((last[0] != b'\n').then_some(size))
}

/// Truncates a regular file of `size` bytes that does not end in `\n`
/// back to just after its last `\n` (to empty when it has none); returns
/// the size kept.
fn cut_torn_line(file: &File, size: u64) -> io::Result<u64> {
    let mut chunk = [0u8; 64 * 1024];
    let mut end = size;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(newline) = memchr::memrchr(b'\n', part) {
            keep = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(keep)
}

/// `write_all` that records its progress in `written`.
pub(crate) fn write_from(out: &mut File, bytes: &[u8], written: &mut usize) -> io::Result<()> {
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
