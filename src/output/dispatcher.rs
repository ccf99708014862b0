//! The dispatcher: [`Dispatcher`] polls every input's ring(16) round robin
//! and hands each batch (shared behind an `Arc`) to one worker of every
//! output's [`OutputPool`], through that worker's ring(1) slot as a
//! [`Job`]. Within a pool it picks the most recently used worker whose slot
//! has room: the MRU list is a true recency order (a worker that finishes a
//! job moves to the front), which keeps few workers hot under light load.
//! When no worker of a pool has room, the dispatcher waits for whichever
//! frees first and stops taking from ring(16), which is how backpressure
//! reaches the CPU workers. The batch's buffer returns to its pool when the
//! last output drops its `Arc` (see [`crate::output::worker`]). A batch goes
//! only to the outputs its `targets` name (routes: the CPU worker splits a
//! batch whose records go to different outputs).

use crate::batch::Batch;
use crate::config::MAX_OUTPUTS;
use crate::metrics::{Held, OutputCounters};
use crate::ring::{RingReceiver, RingSender, Waker};
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// What a worker's slot carries: a shared batch and its commit position.
pub(crate) struct Job {
    pub batch: Arc<Batch>,
    /// Position in the output's dispatch order; ordered sinks commit by it.
    pub seq: u64,
}

/// The dispatcher's side of one output.
pub(crate) struct OutputPool {
    slots: Vec<RingSender<Job>>,
    /// Worker indices, most recently used first.
    mru: Vec<usize>,
    /// Workers report each finished job here, for the MRU order only (a
    /// slot's room, not this queue, decides who may take a job). Capacity
    /// workers × (slot + 2): what workers hold at a drain plus what the
    /// dispatcher hands out before the next; a report that still does not
    /// fit only costs recency information.
    finished: Arc<ArrayQueue<usize>>,
    next_seq: u64,
    /// The output's counters: a batch pushed into a slot counts as held
    /// (`OutputCounters::held`) until its worker is done with it.
    counters: Arc<OutputCounters>,
}

impl OutputPool {
    pub fn new(
        slots: Vec<RingSender<Job>>,
        finished: Arc<ArrayQueue<usize>>,
        counters: Arc<OutputCounters>,
    ) -> Self {
        let mru = (0..slots.len()).collect();
        Self {
            slots,
            mru,
            finished,
            next_seq: 0,
            counters,
        }
    }

    /// Moves workers that finished a job to the front, in the order they
    /// finished (the last to finish ends up first).
    fn note_finished(&mut self) {
        while let Some(worker) = self.finished.pop() {
            let at = self
                .mru
                .iter()
                .position(|&w| w == worker)
                .expect("finished worker belongs to this pool");
            self.mru[..=at].rotate_right(1);
        }
    }

    /// The most recently used worker with room in its slot.
    fn pick(&self) -> Option<usize> {
        self.mru
            .iter()
            .copied()
            .find(|&worker| self.slots[worker].has_room())
    }

    fn has_room(&self) -> bool {
        self.slots.iter().any(RingSender::has_room)
    }

    /// Gives the batch to the MRU worker with room; false when all are full.
    fn offer(&mut self, batch: &Arc<Batch>) -> bool {
        let Some(worker) = self.pick() else {
            return false;
        };
        let job = Job {
            batch: Arc::clone(batch),
            seq: self.next_seq,
        };
        // Counted before the push: the worker may be done with it (and
        // release it) before push returns.
        self.counters.held.take(batch.records);
        if self.slots[worker].push(job).is_err() {
            self.counters.held.release(batch.records);
            debug_assert!(false, "pick() saw room in this slot");
            return false;
        }
        self.next_seq += 1;
        true
    }
}

pub(crate) struct Dispatcher {
    pub inputs: Vec<RingReceiver<Batch>>,
    pub pools: Vec<OutputPool>,
    /// Woken by CPU workers' pushes and output workers' pops and reports.
    pub waker: Arc<Waker>,
    /// The batch in hand, counted from when it leaves ring(16) until every
    /// output took it.
    pub held: Arc<Held>,
}

impl Dispatcher {
    pub fn run(mut self) {
        assert!(self.pools.len() <= MAX_OUTPUTS);
        self.waker.register_current_thread();
        let all_given: u64 = if self.pools.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.pools.len()) - 1
        };
        let mut cursor = 0usize;
        // The batch being handed out and the pools that already have it.
        let mut in_hand: Option<(Arc<Batch>, u64)> = None;
        loop {
            for pool in &mut self.pools {
                pool.note_finished();
            }
            if let Some((batch, given)) = &mut in_hand {
                for (index, pool) in self.pools.iter_mut().enumerate() {
                    if *given & (1 << index) == 0 && pool.offer(batch) {
                        *given |= 1 << index;
                    }
                }
                if *given == all_given {
                    self.held.release(batch.records);
                    in_hand = None;
                    continue;
                }
                let given = *given;
                let pools = &self.pools;
                self.waker.wait(
                    || {
                        pools
                            .iter()
                            .enumerate()
                            .any(|(index, pool)| given & (1 << index) == 0 && pool.has_room())
                    },
                    None,
                );
                continue;
            }
            let count = self.inputs.len();
            let mut taken = None;
            for step in 0..count {
                let index = (cursor + step) % count;
                if let Some(batch) = self.inputs[index].pop() {
                    taken = Some(batch);
                    cursor = index + 1;
                    break;
                }
            }
            match taken {
                Some(mut batch) => {
                    // Routes (DESIGN §5): only the batch's targets get it;
                    // the others count as given already.
                    let targets = batch.targets & all_given;
                    if targets == 0 {
                        // The CPU worker acks a batch routed nowhere itself;
                        // one that still gets here is delivered (to no one).
                        debug_assert!(false, "a batch routed nowhere reached the dispatcher");
                        if let Some(ack) = &batch.ack {
                            ack.delivered_nowhere();
                        }
                        continue;
                    }
                    *batch.outputs_pending.get_mut() = targets.count_ones();
                    self.held.take(batch.records);
                    in_hand = Some((Arc::new(batch), all_given & !targets));
                }
                None => {
                    if self.inputs.iter().all(RingReceiver::is_finished) {
                        break;
                    }
                    let inputs = &self.inputs;
                    self.waker.wait(
                        || inputs.iter().any(|i| !i.is_empty() || i.is_finished()),
                        None,
                    );
                }
            }
        }
        // Dropping the pools closes every slot: workers drain and exit.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::one_record as batch;
    use crate::metrics::RingGauges;
    use crate::pool::BufferPool;
    use crate::ring::ring;

    fn test_pool(workers: usize) -> (OutputPool, Vec<RingReceiver<Job>>) {
        let gauges = RingGauges::default();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = ring(
                1,
                Waker::for_test(),
                Waker::for_test(),
                gauges.dispatcher_to_worker.clone(),
            );
            senders.push(tx);
            receivers.push(rx);
        }
        (
            OutputPool::new(
                senders,
                Arc::new(ArrayQueue::new(workers * 2)),
                Arc::default(),
            ),
            receivers,
        )
    }

    #[test]
    fn dispatch_picks_the_most_recently_used_worker_with_room() {
        let buffers = BufferPool::new(8, 16, Waker::for_test()).unwrap();
        let (mut pool, mut slots) = test_pool(3);
        // Worker 2 then worker 0 finished last: order is 0, 2, 1.
        pool.finished.push(2).unwrap();
        pool.finished.push(0).unwrap();
        pool.note_finished();
        assert_eq!(pool.mru, vec![0, 2, 1]);
        let shared = Arc::new(batch(&buffers, b"a\n"));
        assert!(pool.offer(&shared));
        assert!(slots[0].pop().is_some(), "most recently used got it");
        // Slot 0 is empty again, so it is picked again: MRU, not round robin.
        assert!(pool.offer(&shared));
        assert!(pool.offer(&shared), "next MRU worker with room");
        assert!(pool.offer(&shared));
        assert!(!pool.offer(&shared), "every slot (capacity 1) is full");
        let seqs: Vec<u64> = [0, 2, 1]
            .iter()
            .map(|&w| slots[w].pop().unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "seq follows dispatch order");
        // Worker 1 finishes: it moves to the front, ahead of 0 and 2.
        pool.finished.push(1).unwrap();
        pool.note_finished();
        assert_eq!(pool.mru, vec![1, 0, 2]);
    }
}
