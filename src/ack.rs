//! [`Ack`]: what an output does once its sink accepted a batch, and the
//! reply tokens it may carry ([`Replies`], [`RequestDelivery`]).
//!
//! Shared vocabulary between inputs and outputs: a file lane's batch acks
//! its entry in the lane's ack log (`checkpoint`); a batch of an OTLP
//! request under `--otlp-ack delivered` counts down its request and the
//! request's last batch sends the request's token back to the receiver. It
//! lives here, not in the OTLP input, so `batch` and the outputs never
//! import an input's internals.

use crate::checkpoint::AckLog;
use crate::ring::Waker;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What an output does once its sink accepted a batch.
pub(crate) enum Ack {
    /// A file lane's batch: its entry in the lane's ack log.
    File { log: Arc<AckLog>, seq: u64 },
    /// A batch of an OTLP request awaiting delivery: when the last of
    /// `remaining` outputs accepted it, it counts as delivered for its
    /// request, and the request's last batch sends its token back.
    Reply {
        replies: Arc<Replies>,
        request: Arc<RequestDelivery>,
        remaining: AtomicU32,
    },
}

impl Ack {
    /// One output accepted the batch.
    pub fn delivered(&self) {
        match self {
            Ack::File { log, seq } => log.ack(*seq),
            Ack::Reply {
                replies,
                request,
                remaining,
            } => {
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && request.pending.fetch_sub(1, Ordering::AcqRel) == 1
                {
                    replies.send(request.token);
                }
            }
        }
    }
}

impl Ack {
    /// The batch goes to no output (routed nowhere, or every record
    /// filtered): it counts as delivered now. For a file lane the entry
    /// must have been published for one output (`AckLog::publish` counts
    /// at least one).
    pub fn delivered_nowhere(&self) {
        if let Ack::Reply { remaining, .. } = self {
            remaining.store(1, Ordering::Release);
        }
        self.delivered();
    }

    /// How many outputs must accept the batch before it counts as
    /// delivered: for a batch of an OTLP request, the outputs it was routed
    /// to (the receiver set every output). File lanes say it at publish.
    pub fn set_outputs(&self, outputs: u32) {
        if let Ack::Reply { remaining, .. } = self {
            remaining.store(outputs.max(1), Ordering::Release);
        }
    }

    /// Another ack for a part of this batch (routes split it) that goes to
    /// `outputs` outputs: for an OTLP request, one more batch the request
    /// waits for; `None` for a file lane, whose parts take their own
    /// sequence numbers when they are sent.
    pub fn split_off(&self, outputs: u32) -> Option<Ack> {
        match self {
            Ack::File { .. } => None,
            Ack::Reply {
                replies, request, ..
            } => {
                request.pending.fetch_add(1, Ordering::AcqRel);
                Some(Ack::Reply {
                    replies: Arc::clone(replies),
                    request: Arc::clone(request),
                    remaining: AtomicU32::new(outputs.max(1)),
                })
            }
        }
    }
}

/// Tokens of requests whose batches every output accepted, on their way
/// back to the receiver (`--otlp-ack delivered`).
pub(crate) struct Replies {
    /// One token per request, sent once its last batch is delivered. A
    /// token waits here only for a request that had a batch in flight when
    /// the receiver last drained the queue, or for the connection slots;
    /// capacity: the input's buffers plus its slots, so a push never fails.
    queue: ArrayQueue<u64>,
    receiver: Arc<Waker>,
}

impl Replies {
    pub fn new(capacity: usize, receiver: Arc<Waker>) -> Arc<Self> {
        Arc::new(Self {
            queue: ArrayQueue::new(capacity.max(1)),
            receiver,
        })
    }

    /// Called by the last output to accept a batch.
    pub fn send(&self, token: u64) {
        if self.queue.push(token).is_err() {
            debug_assert!(false, "the reply queue holds one token per buffer");
            eprintln!(
                "ringway: error: the OTLP reply queue is full; a request will not be answered"
            );
        }
        self.receiver.wake();
    }

    /// The next token sent back, for the receiver.
    pub fn take(&self) -> Option<u64> {
        self.queue.pop()
    }

    /// No token waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// One request's outstanding batches under `--otlp-ack delivered`. Its
/// token goes back to the receiver once, when the count reaches zero.
pub(crate) struct RequestDelivery {
    /// The connection slot (high 32 bits) and its serial.
    pub token: u64,
    /// Batches pushed and not yet delivered by every output, plus one
    /// while the request is still being emitted.
    pub pending: AtomicU32,
}
