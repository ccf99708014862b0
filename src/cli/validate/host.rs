//! The checks of `run`'s flags against the host: relative paths, outputs
//! that an input also reads (`Landing`), output directories that do not
//! exist.

use super::Problem;
use crate::config::{InputSpec, OutputKind, OutputSpec};
use std::path::PathBuf;

/// The advice for a relative path: the service runs in `/`.
pub(super) fn relative(what: &str) -> Problem {
    Problem::Advice(format!(
        "{what}: the path is relative, so it depends on the working directory (/ under systemd); use an absolute path"
    ))
}

/// An output (or the dead-letter file) that an input also reads would feed
/// itself without end. Paths are compared as typed, then as what they
/// resolve to: the (device, inode) of the files, and of the directory the
/// output is (or will be) created in against the directories a glob reads,
/// so a symlink, a symlinked directory or a hard link is caught too. The
/// file input checks again whenever it opens a file (see
/// `input::file::WrittenFiles`): a match that appears only later is skipped.
pub(super) fn check_outputs_are_not_inputs(
    inputs: &[InputSpec],
    outputs: &[OutputSpec],
    dead_letter: Option<&std::path::Path>,
) -> Result<(), String> {
    let written = outputs
        .iter()
        .filter_map(|output| match &output.kind {
            OutputKind::File(path) => Some((output.name.as_str(), path.as_path())),
            _ => None,
        })
        .chain(dead_letter.map(|path| ("--dead-letter", path)));
    for (name, path) in written {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let landing = Landing::of(&absolute);
        for input in inputs {
            let Some(pattern) = input.file_pattern() else {
                continue;
            };
            let pattern_path =
                std::path::absolute(pattern).unwrap_or_else(|_| PathBuf::from(pattern));
            // As the file input expands a glob: `*` stops at `/`, so
            // /var/log/*.log does not read /var/log/ringway/out.log.
            let options = glob::MatchOptions {
                require_literal_separator: true,
                ..glob::MatchOptions::new()
            };
            let reads_it = pattern_path == absolute
                || glob::Pattern::new(&pattern_path.to_string_lossy())
                    .is_ok_and(|pattern| pattern.matches_path_with(&absolute, options));
            if reads_it {
                return Err(format!(
                    "{name} is also read by input '{}'; ringway would read back its own output",
                    input.name
                ));
            }
            if let Some(how) = landing.read_by(pattern) {
                return Err(format!(
                    "{name} {how}, which input '{}' reads; ringway would read back its own output",
                    input.name
                ));
            }
        }
    }
    Ok(())
}

/// Most entries a glob is expanded to for the start-up check.
const MAX_CHECKED_MATCHES: usize = 100_000;

/// Where writes to an output path land, once symlinks are followed.
struct Landing {
    /// The file's (device, inode), when it exists.
    file: Option<(u64, u64)>,
    /// The (device, inode) of the directory the file is, or will be
    /// created, in.
    directory: Option<(u64, u64)>,
    /// The name it has (or will have) there.
    name: std::ffi::OsString,
}

impl Landing {
    fn of(path: &std::path::Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let identity = |path: &std::path::Path| {
            std::fs::metadata(path)
                .ok()
                .map(|metadata| (metadata.dev(), metadata.ino()))
        };
        // A symlink (even a dangling one) is followed: opening the output
        // creates or appends to its target. Bounded like the kernel's own
        // limit on nested links.
        let mut path = path.to_path_buf();
        for _ in 0..40 {
            let is_link = std::fs::symlink_metadata(&path)
                .is_ok_and(|metadata| metadata.file_type().is_symlink());
            let Some(target) = is_link.then(|| std::fs::read_link(&path).ok()).flatten() else {
                break;
            };
            let base = path.parent().map(std::path::Path::to_path_buf);
            path = match base {
                Some(base) if target.is_relative() => base.join(target),
                _ => target,
            };
        }
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        Self {
            file: identity(&path),
            directory: identity(directory),
            name: path.file_name().unwrap_or_default().to_os_string(),
        }
    }

    /// How the input `pattern` reads this output, if it does: a file it
    /// names or matches is the output's file, or a directory its glob reads
    /// is the output's directory and the glob matches the output's name.
    fn read_by(&self, pattern: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let identity = |path: &std::path::Path| {
            std::fs::metadata(path)
                .ok()
                .map(|metadata| (metadata.dev(), metadata.ino()))
        };
        let expand = |pattern: &str| -> Vec<PathBuf> {
            if !crate::pattern::is_glob(pattern) {
                return vec![PathBuf::from(pattern)];
            }
            glob::glob(pattern)
                .map(|paths| paths.flatten().take(MAX_CHECKED_MATCHES).collect())
                .unwrap_or_default()
        };
        if let Some(file) = self.file {
            for matched in expand(pattern) {
                if identity(&matched) == Some(file) {
                    return Some(format!(
                        "is the same file as {} (same device and inode: a symlink or hard link)",
                        matched.display()
                    ));
                }
            }
        }
        if !crate::pattern::is_glob(pattern) {
            return None;
        }
        let pattern_path = std::path::Path::new(pattern);
        let name_pattern = glob::Pattern::new(&pattern_path.file_name()?.to_string_lossy()).ok()?;
        if !name_pattern.matches(&self.name.to_string_lossy()) {
            return None;
        }
        let directory_pattern = match pattern_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_string_lossy().into_owned(),
            _ => ".".to_string(),
        };
        let directory = self.directory?;
        expand(&directory_pattern)
            .into_iter()
            .find(|matched| identity(matched) == Some(directory))
            .map(|matched| {
                format!(
                    "is written into {} under a name the glob matches (the same directory)",
                    matched.display()
                )
            })
    }
}

/// An output file's directory must exist: otherwise every write would fail
/// and be retried forever. A missing one is for the host to make (the
/// message says how); a directory where the file should be is a mistake.
pub(super) fn check_output_directory(name: &str, path: &std::path::Path) -> Option<Problem> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    if !directory.is_dir() {
        let shown = directory.display();
        // The service's LogsDirectory= makes this one at each start.
        let service = if directory.starts_with("/var/log/ringway") {
            " (the ringway service's unit creates /var/log/ringway)"
        } else {
            ""
        };
        return Some(Problem::MissingOnHost(format!(
            "{name}: directory {shown} does not exist; create it with: mkdir -p {shown}{service}"
        )));
    }
    if path.is_dir() {
        return Some(Problem::Invalid(format!(
            "{name}: {} is a directory",
            path.display()
        )));
    }
    None
}
