//! What a file input's path pattern means: [`is_glob`] tells a glob from a
//! literal path. Its own module because the file input, the checkpoints
//! (keyed by pattern) and the command line all ask, and the file input
//! imports the checkpoints: kept there, the question made a cycle.

use std::path::Path;

/// A pattern is a glob when it has glob characters and is not the name of
/// an existing file (`app[1].log` may be a literal name).
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[']) && !Path::new(pattern).exists()
}
