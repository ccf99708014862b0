//! The dispatcher and the output worker pools.
//!
//! The [`Dispatcher`] polls every input's ring(16) round robin and hands each
//! batch (shared behind an `Arc`) to one worker of every output's
//! [`OutputPool`], through that worker's ring(1) slot. Within a pool it picks
//! the most recently used worker whose slot has room: the MRU list is a true
//! recency order (a worker that finishes a job moves to the front), which
//! keeps few workers hot under light load. When no worker of a pool has
//! room, the dispatcher waits for whichever frees first and stops taking
//! from ring(16), which is how backpressure reaches the CPU workers.
//!
//! An [`OutputWorker`] writes its jobs to the output's sink, retrying a
//! failure with exponential backoff and jitter until it succeeds, or after
//! the server's `Retry-After` (429, 503; capped by `--retry-max`). A batch
//! the receiver rejects for good (a 4xx other than 408 and 429) is never
//! retried: its lines go to `--dead-letter` (or, without one, are counted
//! and logged) and it is acked. Ordered
//! sinks (`file:`, `stdout`, `tcp:`) commit in the order the dispatcher assigned
//! (`seq`), whatever the number of workers: a worker waits for its turn
//! ([`CommitOrder`]) before writing. The batch's buffer returns to its pool
//! when the last output drops its `Arc`.

use crate::batch::Batch;
use crate::metrics::{Held, LatencyHistogram, OutputCounters};
use crate::output::sink::{Connection, DeadLetterFile, Failure, Sink};
use crate::ring::{RingReceiver, RingSender, Waker};
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Outputs one dispatcher can fan out to (a bitmask of pools given a batch).
pub(crate) const MAX_OUTPUTS: usize = 64;

/// What a worker's slot carries: a shared batch and its commit position.
pub(crate) struct Job {
    pub batch: Arc<Batch>,
    /// Position in the output's dispatch order; ordered sinks commit by it.
    pub seq: u64,
}

/// The commit turn of an ordered output, shared by its workers.
pub(crate) struct CommitOrder {
    /// The `seq` allowed to write next.
    next: AtomicU64,
    /// Every worker of the output, woken when the turn moves.
    workers: Vec<Arc<Waker>>,
}

impl CommitOrder {
    pub fn new(workers: Vec<Arc<Waker>>) -> Arc<Self> {
        Arc::new(Self {
            next: AtomicU64::new(0),
            workers,
        })
    }
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
                    *batch.outputs_pending.get_mut() = self.pools.len() as u32;
                    self.held.take(batch.records);
                    in_hand = Some((Arc::new(batch), 0));
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

pub(crate) struct OutputWorker {
    pub index: usize,
    pub slot: RingReceiver<Job>,
    pub waker: Arc<Waker>,
    pub sink: Arc<Sink>,
    pub name: String,
    /// Present for ordered sinks.
    pub order: Option<Arc<CommitOrder>>,
    pub counters: Arc<OutputCounters>,
    pub finished: Arc<ArrayQueue<usize>>,
    pub dispatcher: Arc<Waker>,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Where batches the receiver rejected go (`--dead-letter`).
    pub dead_letter: Option<Arc<DeadLetterFile>>,
    /// Batch latency, observed by the last output to accept a batch.
    pub latency: Arc<LatencyHistogram>,
}

impl OutputWorker {
    pub fn run(mut self) {
        self.waker.register_current_thread();
        if self.index == 0 {
            self.sink.open_early();
        }
        let mut jitter = Jitter::new(self.index as u64);
        let mut connection = self.sink.connection();
        loop {
            if let Some(job) = self.slot.pop() {
                self.process(job, &mut jitter, &mut connection);
                // Full only costs recency information (see OutputPool).
                let _ = self.finished.push(self.index);
                self.dispatcher.wake();
                continue;
            }
            if self.slot.is_finished() {
                return;
            }
            let slot = &self.slot;
            self.waker
                .wait(|| !slot.is_empty() || slot.is_finished(), None);
        }
    }

    fn process(&mut self, job: Job, jitter: &mut Jitter, connection: &mut Connection) {
        if let Some(order) = &self.order {
            while order.next.load(Ordering::Acquire) != job.seq {
                self.waker
                    .wait(|| order.next.load(Ordering::Acquire) == job.seq, None);
            }
        }
        let bytes = job.batch.bytes();
        self.sink.prepare(connection, bytes);
        let mut backoff = self.retry_initial;
        let mut failures = 0u64;
        let mut first_failure = None;
        // Bytes of this batch already written: a retry resumes there, so a
        // partial write neither duplicates nor tears a line.
        let mut written = 0;
        // Lines of the batch refused for good (and dead-lettered).
        let mut rejected_records = 0u64;
        let mut rejected_bytes = 0usize;
        loop {
            let (error, retry_after) = match self.sink.send(connection, bytes, &mut written) {
                Ok(()) => break,
                Err(Failure::Reject {
                    status,
                    detail,
                    range,
                }) => {
                    // That part is refused for good; the rest still goes.
                    let part = &bytes[range.clone()];
                    rejected_records += self.reject(part, status, &detail, jitter);
                    rejected_bytes += part.len();
                    written = range.end;
                    continue;
                }
                Err(Failure::Retry { error, retry_after }) => (error, retry_after),
            };
            if failures == 0 {
                // Until this batch is written, the output counts as failing
                // (`/healthz`).
                self.counters
                    .failing_workers
                    .fetch_add(1, Ordering::Relaxed);
            }
            failures += 1;
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let since = *first_failure.get_or_insert_with(Instant::now);
            // The server's Retry-After when it gave one (at least
            // --retry-initial, at most --retry-max); else the backoff.
            let wait = match retry_after {
                Some(after) => after.clamp(self.retry_initial, self.retry_max),
                None => {
                    let wait = jitter.spread(backoff);
                    backoff = (backoff * 2).min(self.retry_max);
                    wait
                }
            };
            if failures.is_power_of_two() {
                eprintln!(
                    "ringway: warning: output {} failed to write ({} attempts in {:.1}s), retrying in {:?}{}; error = {error}",
                    self.name,
                    failures,
                    since.elapsed().as_secs_f64(),
                    wait,
                    if retry_after.is_some() {
                        " (the server's Retry-After)"
                    } else {
                        ""
                    },
                );
            }
            std::thread::sleep(wait);
        }
        if failures > 0 {
            self.counters
                .failing_workers
                .fetch_sub(1, Ordering::Relaxed);
            eprintln!(
                "ringway: info: output {} recovered after {failures} failed attempts",
                self.name
            );
        }
        self.counters.records.fetch_add(
            u64::from(job.batch.records).saturating_sub(rejected_records),
            Ordering::Relaxed,
        );
        self.counters
            .bytes
            .fetch_add((bytes.len() - rejected_bytes) as u64, Ordering::Relaxed);
        // The sink accepted it (and synced it with --fsync), or rejected it
        // for good: ack it.
        if let Some(ack) = &job.batch.ack {
            ack.delivered();
        }
        if job.batch.outputs_pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.latency.observe(job.batch.created.elapsed());
        }
        self.counters.held.release(job.batch.records);
        if let Some(order) = &self.order {
            order.next.store(job.seq + 1, Ordering::Release);
            for worker in &order.workers {
                worker.wake();
            }
        }
    }

    /// Lines the receiver refused for good: to the dead-letter file when
    /// there is one (an append that fails is retried with backoff: the
    /// batch is not acked before its lines are somewhere), else dropped;
    /// counted, and logged at the 1st, 2nd, 4th, … reject. Returns the
    /// number of lines.
    fn reject(&self, lines: &[u8], status: u16, detail: &str, jitter: &mut Jitter) -> u64 {
        let records = memchr::memchr_iter(b'\n', lines).count() as u64;
        let rejects = self.counters.rejects.fetch_add(1, Ordering::Relaxed) + 1;
        let outcome = match &self.dead_letter {
            Some(dead_letter) => {
                let mut backoff = self.retry_initial;
                let mut failures = 0u64;
                while let Err(error) = dead_letter.append(lines) {
                    if failures == 0 {
                        // Stuck on the dead-letter file: failing (`/healthz`).
                        self.counters
                            .failing_workers
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    failures += 1;
                    if failures.is_power_of_two() {
                        eprintln!(
                            "ringway: error: output {} cannot append {records} rejected records to --dead-letter {} ({failures} attempts), retrying; error = {error}",
                            self.name,
                            dead_letter.path.display()
                        );
                    }
                    std::thread::sleep(jitter.spread(backoff));
                    backoff = (backoff * 2).min(self.retry_max);
                }
                if failures > 0 {
                    self.counters
                        .failing_workers
                        .fetch_sub(1, Ordering::Relaxed);
                }
                self.counters
                    .dead_lettered
                    .fetch_add(records, Ordering::Relaxed);
                format!("written to --dead-letter {}", dead_letter.path.display())
            }
            None => {
                self.counters
                    .rejected_dropped
                    .fetch_add(records, Ordering::Relaxed);
                "dropped (no --dead-letter)".to_string()
            }
        };
        if rejects.is_power_of_two() {
            eprintln!(
                "ringway: warning: output {} rejected a request of {records} records with HTTP {status} ({rejects} rejected requests so far); {outcome}; response = {detail:?}",
                self.name,
            );
        }
        records
    }
}

/// Backoff jitter: spreads each wait over [d/2, d] so workers that failed
/// together do not retry together. A xorshift generator; no allocation.
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(1);
        Self((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos) | 1)
    }

    fn spread(&mut self, duration: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let fraction = 0.5 + (self.0 % 1000) as f64 / 2000.0;
        duration.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RingGauges;
    use crate::pool::BufferPool;
    use crate::ring::ring;

    fn batch(pool: &Arc<BufferPool>, text: &[u8]) -> Batch {
        let mut buf = pool.take().unwrap();
        buf[..text.len()].copy_from_slice(text);
        let mut batch = Batch::new(buf, text.len());
        batch.records = 1;
        batch
    }

    fn test_pool(workers: usize) -> (OutputPool, Vec<RingReceiver<Job>>) {
        let gauges = RingGauges::default();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = ring(
                1,
                Waker::for_test(),
                Waker::for_test(),
                gauges.worker_slots.clone(),
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

    #[test]
    fn ordered_output_commits_in_dispatch_order_with_many_workers() {
        let path = std::env::temp_dir().join(format!("ringway-order-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let buffers = BufferPool::new(64, 16, Waker::for_test()).unwrap();
        let workers = 4;
        let gauges = RingGauges::default();
        let dispatcher_waker = Waker::for_thread();
        let worker_wakers: Vec<_> = (0..workers).map(|_| Waker::for_thread()).collect();
        let order = CommitOrder::new(worker_wakers.clone());
        let finished = Arc::new(ArrayQueue::new(workers * 2));
        let counters = Arc::new(OutputCounters::default());
        let sink = Arc::new(Sink::new(
            &crate::config::OutputKind::File(path.clone()),
            false,
            false,
            Duration::from_secs(1),
            counters.clone(),
        ));
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for (index, waker) in worker_wakers.iter().enumerate() {
            let (tx, rx) = ring(
                1,
                dispatcher_waker.clone(),
                waker.clone(),
                gauges.worker_slots.clone(),
            );
            senders.push(tx);
            let worker = OutputWorker {
                index,
                slot: rx,
                waker: waker.clone(),
                sink: sink.clone(),
                name: "test".into(),
                order: Some(order.clone()),
                counters: counters.clone(),
                finished: finished.clone(),
                dispatcher: dispatcher_waker.clone(),
                retry_initial: Duration::from_millis(1),
                retry_max: Duration::from_millis(10),
                dead_letter: None,
                latency: Arc::default(),
            };
            handles.push(std::thread::spawn(move || worker.run()));
        }
        let pool = OutputPool::new(senders, finished, counters.clone());
        let (mut input_tx, input_rx) = ring(
            16,
            dispatcher_waker.clone(),
            Waker::for_test(),
            gauges.cpu_to_dispatch.clone(),
        );
        let held = Arc::new(Held::default());
        let dispatcher = Dispatcher {
            inputs: vec![input_rx],
            pools: vec![pool],
            waker: dispatcher_waker,
            held: Arc::clone(&held),
        };
        let dispatcher = std::thread::spawn(move || dispatcher.run());
        let mut expected = Vec::new();
        for n in 0..500u32 {
            let line = format!("{n}\n");
            expected.extend_from_slice(line.as_bytes());
            let mut item = batch(&buffers, line.as_bytes());
            loop {
                match input_tx.push(item) {
                    Ok(()) => break,
                    Err(back) => {
                        item = back;
                        std::thread::yield_now();
                    }
                }
            }
        }
        drop(input_tx);
        dispatcher.join().unwrap();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(counters.records.load(Ordering::Relaxed), 500);
        assert_eq!(counters.held.load(), (0, 0), "every batch released");
        assert_eq!(held.load(), (0, 0), "the dispatcher let go of every batch");
        assert_eq!(
            buffers.available(),
            buffers.count(),
            "every buffer returned"
        );
        assert_eq!(gauges.worker_slots.occupancy(), 0);
        let _ = std::fs::remove_file(&path);
    }
}
