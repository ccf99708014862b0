//! Inputs: one I/O worker per input (per socket for UDP). `file` tails
//! files through io_uring; `udp` receives datagrams with a multishot
//! RecvMsg into a provided buffer ring; `tcp` and `otlp` accept with a
//! multishot accept and receive into per-connection regions (`net`):
//! `tcp` frames records, `otlp` is an HTTP/1.1 server for OTLP logs;
//! with `,tls` both serve TLS sessions fed from those receives (`tls`).
//! `stdin` reads standard input to its end, cutting lines like `file`.
//! `batcher` fills batches for the inputs that gather many small records
//! per batch (UDP, TCP); `lines` cuts reads into whole lines (file, stdin).
//! [`LaneParts`] is the lane plumbing the file, stdin, TCP and OTLP workers
//! are each built from.

pub(crate) mod batcher;
pub(crate) mod file;
pub(crate) mod lines;
pub(crate) mod net;
pub(crate) mod otlp;
pub(crate) mod stdin;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;

use crate::batch::Batch;
use crate::metrics::InputCounters;
use crate::pool::BufferPool;
use crate::ring::{RingSender, Waker};
use crate::uring::WakeRead;
use io_uring::IoUring;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

/// What every file, stdin, TCP and OTLP worker is built from: its lane's
/// plumbing, set up once by the pipeline (one place, not one per kind).
pub(crate) struct LaneParts {
    pub ring: IoUring,
    pub pool: Arc<BufferPool>,
    /// ring(4), to the lane's CPU worker.
    pub to_cpu: RingSender<Batch>,
    pub waker: Arc<Waker>,
    pub counters: Arc<InputCounters>,
    pub shutdown: Arc<AtomicBool>,
    /// Incremented once everything read is handed over (stdin counts with
    /// the file readers: `--exit-on-eof` waits for both).
    pub readers_done: Arc<AtomicUsize>,
    pub max_line_bytes: usize,
    /// `source=true`: network inputs note each record's sender (see
    /// `crate::source`).
    pub source: bool,
}

impl LaneParts {
    /// The read of the waker's eventfd that wakes the worker's io_uring.
    pub fn wake_read(&self) -> WakeRead {
        let wake_fd = self
            .waker
            .eventfd()
            .expect("an I/O worker's waker is an eventfd");
        WakeRead::new(wake_fd)
    }
}
