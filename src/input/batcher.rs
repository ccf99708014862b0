//! [`Batcher`]: fills batch buffers with records and hands them to ring(4),
//! for the inputs that gather many small records per batch (UDP, TCP).
//!
//! One batch is being filled (`current`); when a record does not fit, it
//! becomes `full` and is pushed into ring(4), and a new buffer is taken
//! from the pool. At most one full batch waits for room in ring(4): while
//! it waits, nothing more is accepted (backpressure: the caller keeps its
//! record and tries again later). A partly filled batch is handed on once
//! it waited `--batch-linger` ([`Batcher::flush_current`]), so a trickle
//! flows.

use crate::batch::Batch;
use crate::pool::BufferPool;
use crate::ring::RingSender;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct Batcher {
    pool: Arc<BufferPool>,
    to_cpu: RingSender<Batch>,
    /// The batch being filled.
    current: Option<Batch>,
    /// When `current` got its first record.
    current_since: Option<Instant>,
    /// A full batch waiting for room in ring(4).
    full: Option<Batch>,
}

impl Batcher {
    pub fn new(pool: Arc<BufferPool>, to_cpu: RingSender<Batch>) -> Self {
        Self {
            pool,
            to_cpu,
            current: None,
            current_since: None,
            full: None,
        }
    }

    /// The batch to append a record of `needed` bytes (its newline
    /// included) from `sender` to: the current one if it has room, else a
    /// new one (the current one goes on as full). `None` when there is no
    /// room downstream: no free buffer, or a full batch still waits.
    ///
    /// When the pool keeps sender runs (`source=true`) the sender is noted
    /// (`None` too, so runs and records stay in step), and a batch whose
    /// runs are full goes on as full too. Call only when the record is
    /// then written.
    #[inline]
    pub fn batch_for(&mut self, needed: usize, sender: Option<SocketAddr>) -> Option<&mut Batch> {
        if self.current.as_ref().is_some_and(|batch| {
            batch.room() < needed || batch.buf.senders().is_some_and(|runs| !runs.fits(sender))
        }) {
            if self.full.is_some() {
                self.push_full();
                if self.full.is_some() {
                    return None;
                }
            }
            self.full = self.current.take();
            self.current_since = None;
            self.push_full();
        }
        if self.current.is_none() {
            let mut buf = self.pool.take()?;
            if let Some(runs) = buf.senders_mut() {
                runs.clear();
            }
            self.current = Some(Batch::new(buf, 0));
            self.current_since = Some(Instant::now());
        }
        let batch = self.current.as_mut()?;
        if let Some(runs) = batch.buf.senders_mut() {
            runs.note(sender);
        }
        Some(batch)
    }

    /// Pushes the full batch into ring(4) if there is room.
    pub fn push_full(&mut self) {
        if let Some(batch) = self.full.take()
            && let Err(batch) = self.to_cpu.push(batch)
        {
            self.full = Some(batch);
        }
    }

    /// Hands the partly filled batch on (once it waited --batch-linger, or
    /// at the stop), so a trickle flows; the CPU worker sends it on at once.
    pub fn flush_current(&mut self) {
        self.push_full();
        if self.full.is_none() && self.current.as_ref().is_some_and(|batch| batch.len > 0) {
            self.full = self.current.take();
            self.current_since = None;
            self.push_full();
        }
    }

    /// When the batch being filled got its first record.
    pub fn current_since(&self) -> Option<Instant> {
        self.current_since
    }

    pub fn has_current(&self) -> bool {
        self.current.is_some()
    }

    /// A full batch waits for room in ring(4).
    pub fn has_full(&self) -> bool {
        self.full.is_some()
    }

    /// Nothing is held: every record went into ring(4).
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.full.is_none()
    }

    /// Free buffers in the input's pool.
    pub fn buffers_free(&self) -> usize {
        self.pool.available()
    }

    /// Ring(4) has room for a batch.
    pub fn ring_has_room(&self) -> bool {
        self.to_cpu.has_room()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Gauge, Waker, ring};

    /// Appends `line` as one record; false under backpressure.
    fn record(batcher: &mut Batcher, line: &[u8]) -> bool {
        let Some(batch) = batcher.batch_for(line.len(), None) else {
            return false;
        };
        batch.buf[batch.len..batch.len + line.len()].copy_from_slice(line);
        batch.len += line.len();
        true
    }

    #[test]
    fn batches_fill_in_order_and_one_full_batch_waits_for_the_ring() {
        let pool = BufferPool::new(3, 8, Waker::for_test()).unwrap();
        let gauge = Arc::new(Gauge::default());
        let (to_cpu, mut from_io) = ring(1, Waker::for_test(), Waker::for_test(), gauge);
        let mut batcher = Batcher::new(pool, to_cpu);
        assert!(batcher.is_empty() && batcher.current_since().is_none());

        assert!(record(&mut batcher, b"aaaa\n"));
        assert!(batcher.has_current() && batcher.current_since().is_some());
        assert!(record(&mut batcher, b"bb\n"), "fills the 8 bytes exactly");
        // Does not fit: the full batch goes into ring(4) at once.
        assert!(record(&mut batcher, b"cccc\n"));
        assert!(!batcher.has_full() && !batcher.ring_has_room());
        // The ring is full: this full batch waits, a third buffer fills.
        assert!(record(&mut batcher, b"dddd\n"));
        assert!(batcher.has_full());
        assert_eq!(batcher.buffers_free(), 0);
        // A second full batch cannot wait too: backpressure.
        assert!(!record(&mut batcher, b"eeeee\n"));

        let first = from_io.pop().unwrap();
        assert_eq!(first.bytes(), b"aaaa\nbb\n");
        drop(first); // its buffer goes back to the pool
        assert!(record(&mut batcher, b"eeeee\n"));
        assert_eq!(from_io.pop().unwrap().bytes(), b"cccc\n");

        // Lingered: the partly filled batch goes on after the full one.
        batcher.flush_current();
        assert!(batcher.has_full() && !batcher.has_current());
        assert_eq!(from_io.pop().unwrap().bytes(), b"dddd\n");
        batcher.push_full();
        assert!(batcher.is_empty());
        assert_eq!(from_io.pop().unwrap().bytes(), b"eeeee\n");
        assert!(from_io.pop().is_none());
    }

    #[test]
    fn a_batch_whose_sender_runs_are_full_goes_on_and_the_next_notes_afresh() {
        let pool = BufferPool::with_senders(2, 64, 1, Waker::for_test()).unwrap();
        let gauge = Arc::new(Gauge::default());
        let (to_cpu, mut from_io) = ring(2, Waker::for_test(), Waker::for_test(), gauge);
        let mut batcher = Batcher::new(pool, to_cpu);
        let (a, b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        for (sender, line) in [(a, b"a1\n"), (a, b"a2\n"), (b, b"b1\n")] {
            let batch = batcher.batch_for(line.len(), Some(sender)).unwrap();
            batch.buf[batch.len..batch.len + line.len()].copy_from_slice(line);
            batch.len += line.len();
        }
        batcher.flush_current();
        let first = from_io.pop().unwrap();
        assert_eq!(
            first.bytes(),
            b"a1\na2\n",
            "one run fits, a second sender does not"
        );
        let runs: Vec<_> = first.buf.senders().unwrap().runs().collect();
        assert_eq!(runs, vec![(Some(a), 2)]);
        let second = from_io.pop().unwrap();
        assert_eq!(second.bytes(), b"b1\n");
        assert_eq!(
            second.buf.senders().unwrap().runs().collect::<Vec<_>>(),
            vec![(Some(b), 1)]
        );
    }
}
