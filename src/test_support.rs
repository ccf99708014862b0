//! What the crate's unit tests share: [`scratch_path`], a fresh place in
//! the temp directory per test and process.

use std::path::PathBuf;

/// `ringway-{name}-{pid}` in the temp directory, with nothing at it: a
/// file or directory a previous run left there is removed. Named after the
/// process so that parallel test runs do not meet.
pub(crate) fn scratch_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ringway-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&path);
    path
}
