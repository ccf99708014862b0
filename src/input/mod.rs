//! Inputs: one I/O worker per input. `file` tails files through io_uring.

pub(crate) mod file;
