//! Inputs: one I/O worker per input (per socket for UDP). `file` tails
//! files through io_uring; `udp` receives datagrams with a multishot
//! RecvMsg into a provided buffer ring; `tcp` and `otlp` accept with a
//! multishot accept and receive into per-connection regions (`net`):
//! `tcp` frames records, `otlp` is an HTTP/1.1 server for OTLP logs.
//! `stdin` reads standard input to its end, cutting lines like `file`.
//! `batcher` fills batches for the inputs that gather many small records
//! per batch (UDP, TCP); `lines` cuts reads into whole lines (file, stdin).

pub(crate) mod batcher;
pub(crate) mod file;
pub(crate) mod lines;
pub(crate) mod net;
pub(crate) mod otlp;
pub(crate) mod stdin;
pub(crate) mod tcp;
pub(crate) mod udp;
