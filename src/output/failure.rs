//! [`Failure`]: why a sink's write did not go through, shared by the
//! sinks (`output/sink.rs`, `output/kafka.rs`) and the output worker.

use std::io;
use std::time::Duration;

/// Why a write did not go through.
pub(crate) enum Failure {
    /// Worth trying again: after `retry_after` when the server gave one,
    /// else after the worker's backoff.
    Retry {
        error: io::Error,
        retry_after: Option<Duration>,
    },
    /// The receiver refused the bytes `range` of the batch for good: `why`
    /// (`HTTP 400`, `Kafka …`); `detail` is the start of its answer. What
    /// comes after `range` is still to be sent.
    Reject {
        why: String,
        detail: String,
        range: std::ops::Range<usize>,
    },
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Retry {
            error,
            retry_after: None,
        }
    }
}
