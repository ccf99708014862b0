//! [`Batch`]: the item that travels on every ring.
//!
//! A batch owns one pooled buffer whose first `len` bytes are whole lines,
//! each ending in `\n`. The I/O worker makes it from one read; the CPU worker
//! counts and checks its records and may append later small batches into it;
//! the dispatcher shares it (behind an `Arc`) with one worker per output. The
//! buffer goes back to its pool when the last output drops it.
//!
//! A batch from a file input also carries the file [`Marks`] it completes
//! and, once the CPU worker sent it on, its place in the lane's ack log
//! (see `checkpoint`). A batch from an OTLP request under
//! `--otlp-ack delivered` carries the request it belongs to instead: the
//! last output to accept it sends that request's token back to the
//! receiver ([`Ack::Reply`], in `ack`).
//!
//! Every batch carries the instant its input made it and how many outputs
//! still have to accept it, so the last output to accept it can observe the
//! batch's latency (`ringway_batch_latency_seconds`).

use crate::ack::Ack;
use crate::checkpoint::Marks;
use crate::pool::PooledBuffer;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

pub(crate) struct Batch {
    pub buf: PooledBuffer,
    /// Bytes of `buf` in use; `buf[..len]` is whole lines, each ending in `\n`.
    pub len: usize,
    /// Records in `buf[..len]`. Zero until the CPU worker framed it.
    pub records: u32,
    /// File offsets this batch completes (file inputs only).
    pub marks: Marks,
    /// File inputs, as the reader made it: the offset in its mark's file
    /// of `buf[0]`, so the CPU worker can tell each line's offset (what
    /// joined container lines hold the checkpoint at).
    pub file_offset: u64,
    /// Set by the CPU worker for file inputs: outputs ack this.
    pub ack: Option<Ack>,
    /// When the input made this batch; a batch that absorbed others keeps
    /// the earliest instant.
    pub created: Instant,
    /// Outputs that have not accepted the batch yet: set by the dispatcher
    /// to the number of outputs it goes to, counted down by each output's
    /// worker; the one that takes it to zero observes the batch's latency.
    pub outputs_pending: AtomicU32,
    /// The outputs the batch goes to: bit `i` is the `i`-th output (routes,
    /// DESIGN §5). [`ALL_OUTPUTS`] unless the CPU worker's routes split it.
    pub targets: u64,
}

/// A batch's `targets` when it goes to every output.
pub(crate) const ALL_OUTPUTS: u64 = u64::MAX;

impl Batch {
    pub fn new(buf: PooledBuffer, len: usize) -> Self {
        Self {
            buf,
            len,
            records: 0,
            marks: Marks::default(),
            file_offset: 0,
            ack: None,
            created: Instant::now(),
            outputs_pending: AtomicU32::new(0),
            targets: ALL_OUTPUTS,
        }
    }

    /// Takes the earlier creation instant of this batch and `other`'s, for a
    /// batch that carries lines of both.
    pub fn absorb_created(&mut self, other: &Batch) {
        self.created = self.created.min(other.created);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Whether `other` can be appended: its bytes fit, its marks merge and
    /// it goes to the same outputs (an empty batch only carries marks, which
    /// are safe to deliver with any later batch). A batch that answers an
    /// OTLP request is never merged: its ack is its own.
    pub fn can_append(&self, other: &Batch) -> bool {
        self.room() >= other.len
            && self.marks.can_absorb(&other.marks)
            && (self.targets == other.targets || other.len == 0)
            && !matches!(other.ack, Some(Ack::Reply { .. }))
            && !matches!(self.ack, Some(Ack::Reply { .. }))
    }

    /// Appends another batch's lines (already framed) and takes over its
    /// records and marks; the other batch's buffer goes back to the pool.
    pub fn append(&mut self, other: Batch) {
        let end = self.len + other.len;
        assert!(end <= self.buf.len(), "append checked against room()");
        self.buf[self.len..end].copy_from_slice(other.bytes());
        self.len = end;
        self.records += other.records;
        self.marks.absorb(&other.marks);
        self.absorb_created(&other);
    }
}

/// A one-record batch holding `text`, for the tests of the stages that
/// move batches (dispatcher, output workers).
#[cfg(test)]
pub(crate) fn one_record(pool: &std::sync::Arc<crate::pool::BufferPool>, text: &[u8]) -> Batch {
    let mut buf = pool.take().unwrap();
    buf[..text.len()].copy_from_slice(text);
    let mut batch = Batch::new(buf, text.len());
    batch.records = 1;
    batch
}
