//! Inputs: one I/O worker per input (per socket for UDP). `file` tails
//! files through io_uring; `udp` receives datagrams with a multishot
//! RecvMsg into a provided buffer ring; `otlp` is an HTTP/1.1 server for
//! OTLP logs (multishot accept, receives into per-connection regions).

pub(crate) mod file;
pub(crate) mod net;
pub(crate) mod otlp;
pub(crate) mod udp;
