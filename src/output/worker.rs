//! The output worker: [`OutputWorker`] writes the jobs of its ring(1) slot
//! to the output's sink, retrying a failure with exponential backoff and
//! jitter until it succeeds, or after the server's `Retry-After` (429, 503;
//! capped by `--retry-max`). A batch the receiver rejects for good (a 4xx
//! other than 408 and 429) is never retried: its lines go to
//! `--dead-letter` (or, without one, are counted and logged) and it is
//! acked. Ordered sinks (`file:`, `stdout`, `tcp:`) commit in the order the
//! dispatcher assigned (`seq`), whatever the number of workers: a worker
//! waits for its turn ([`CommitOrder`]) before writing. A `kafka:` output
//! is ordered too, but passes the turn on once its batch is handed to the
//! output's producer, before the broker acknowledged it. The batch's buffer
//! returns to its pool when the last output drops its `Arc`.

use crate::dead_letter::SharedDeadLetter;
use crate::metrics::{LatencyHistogram, OutputCounters};
use crate::output::dispatcher::Job;
use crate::output::failure::Failure;
use crate::output::light::TrafficLight;
use crate::output::sink::{Connection, Sink};
use crate::ring::{RingReceiver, Waker};
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    pub dead_letter: Option<Arc<SharedDeadLetter>>,
    /// Batch latency, observed by the last output to accept a batch.
    pub latency: Arc<LatencyHistogram>,
    /// `ringway demo`'s traffic light (`run --traffic-light`): passed
    /// before each write. `None` otherwise, and then never looked at.
    pub light: Option<Arc<TrafficLight>>,
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
        if let Some(light) = &self.light {
            light.wait_for_green();
        }
        let bytes = job.batch.bytes();
        self.sink.prepare(connection, bytes);
        // Whether this worker still holds the commit turn (ordered sinks);
        // a kafka: output passes it on as soon as the batch is handed.
        let mut turn = self.order.is_some();
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
            let mut handed = || self.pass_turn(job.seq, &mut turn);
            let sent = self.sink.send(connection, bytes, &mut written, &mut handed);
            let (error, retry_after) = match sent {
                Ok(()) => break,
                Err(Failure::Reject { why, detail, range }) => {
                    // That part is refused for good; the rest still goes.
                    let part = &bytes[range.clone()];
                    rejected_records += self.reject(part, &why, &detail, jitter);
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
        self.pass_turn(job.seq, &mut turn);
    }

    /// Passes the commit turn on to the batch after `seq`, if `*turn`
    /// says this worker still holds it.
    fn pass_turn(&self, seq: u64, turn: &mut bool) {
        if !std::mem::take(turn) {
            return;
        }
        if let Some(order) = &self.order {
            order.next.store(seq + 1, Ordering::Release);
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
    fn reject(&self, lines: &[u8], why: &str, detail: &str, jitter: &mut Jitter) -> u64 {
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
                "ringway: warning: output {} rejected a request of {records} records with {why} ({rejects} rejected requests so far); {outcome}; response = {detail:?}",
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
    use crate::batch::one_record as batch;
    use crate::metrics::{Held, RingGauges};
    use crate::output::dispatcher::{Dispatcher, OutputPool};
    use crate::pool::BufferPool;
    use crate::ring::ring;

    #[test]
    fn ordered_output_commits_in_dispatch_order_with_many_workers() {
        let path = crate::test_support::scratch_path("order");
        let buffers = BufferPool::new(64, 16, Waker::for_test()).unwrap();
        let workers = 4;
        let gauges = RingGauges::default();
        let dispatcher_waker = Waker::for_thread();
        let worker_wakers: Vec<_> = (0..workers).map(|_| Waker::for_thread()).collect();
        let order = CommitOrder::new(worker_wakers.clone());
        let finished = Arc::new(ArrayQueue::new(workers * 2));
        let counters = Arc::new(OutputCounters::default());
        let sink = Arc::new(
            Sink::new(
                &crate::config::OutputKind::File(path.clone()),
                "file",
                &[],
                false,
                false,
                Duration::from_secs(1),
                0,
                counters.clone(),
            )
            .unwrap(),
        );
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for (index, waker) in worker_wakers.iter().enumerate() {
            let (tx, rx) = ring(
                1,
                dispatcher_waker.clone(),
                waker.clone(),
                gauges.dispatcher_to_worker.clone(),
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
                light: None,
            };
            handles.push(std::thread::spawn(move || worker.run()));
        }
        let pool = OutputPool::new(senders, finished, counters.clone());
        let (mut input_tx, input_rx) = ring(
            16,
            dispatcher_waker.clone(),
            Waker::for_test(),
            gauges.cpu_to_dispatcher.clone(),
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
        assert_eq!(gauges.dispatcher_to_worker.occupancy(), 0);
        let _ = std::fs::remove_file(&path);
    }
}
