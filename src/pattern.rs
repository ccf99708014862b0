//! What a file input's path pattern means: [`is_glob`] tells a glob from a
//! literal path, [`check_pattern`] is the start-up check of one, and
//! [`not_a_regular_file`] says why a path cannot be tailed. Its own module because the file input, the checkpoints
//! (keyed by pattern) and the command line all ask, and the file input
//! imports the checkpoints: kept there, the question made a cycle.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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
