//! Inputs: one I/O worker per input (per socket for UDP). `file` tails
//! files through io_uring; `udp` receives datagrams with a multishot
//! RecvMsg into a provided buffer ring.

pub(crate) mod file;
pub(crate) mod udp;
