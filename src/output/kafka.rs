//! The `kafka:` output: each record of a batch is one Kafka message (the
//! NDJSON line without its newline), produced with librdkafka (the
//! `rdkafka` crate's [`BaseProducer`]: no async runtime).
//!
//! A batch counts as written only when the broker acknowledged every one
//! of its messages (`acks=all` and idempotence by default), so checkpoints
//! and `--otlp-ack delivered` never run ahead of the broker. Messages never
//! time out inside librdkafka (`message.timeout.ms=0`): while a broker is
//! down or slow they wait in its queue, whose size is bounded from
//! ringway's flags, and the worker reports the wait as a retriable failure
//! each `--output-timeout`, so the rings behind it fill and the sources
//! feel it. A message the broker (or librdkafka) refuses for good — too
//! large, an invalid record, no authorization for the topic — goes to
//! `--dead-letter` like an HTTP 4xx. A topic the brokers do not have is
//! waited for (retried and logged): records are not lost while an
//! operator creates it.
//!
//! **One producer for the output, several batches in flight.** The
//! workers of the output share one producer. A worker hands its batch's
//! lines to it in the output's commit order (the worker's turn, as for
//! the other ordered sinks) and passes the turn on as soon as every line
//! is handed, then waits for the broker's acknowledgements while the next
//! worker hands the next batch: up to `--output-workers` batches are in
//! flight on one connection a broker, and librdkafka's idempotent producer
//! keeps each partition in the order the lines were handed. A thread of
//! the output (the report server) reads the producer's events and sets
//! each line's status in its worker's [`Slot`] (the delivery report's
//! opaque names the worker and the line), waking the worker.
//!
//! The producer is made when the first worker starts (so that it has its
//! producer id before the first batch) and made again after a fatal error
//! of the idempotent producer (for example a broker that restarted without
//! its state) or after [`STALLED_ATTEMPTS`] attempts without any
//! acknowledgement. Every worker then hands the lines the old producer
//! had not got acknowledged to the new one, which can duplicate, never
//! lose; lines handed again after a replacement can come after lines of a
//! later batch in their partition.
//!
//! A new producer is made only once the old one is gone (purged and
//! closed). A broker that lost its state (tansu with its memory store,
//! restarted) hands out producer ids from 1 again, so a new producer can
//! get the id an old producer still holds. That old producer's next
//! sequence numbers are then below what the broker counted for the id, and
//! the broker answers DUPLICATE_SEQUENCE_NUMBER, which librdkafka reports
//! as delivered (it takes it for the answer to a retry of something already
//! written): a whole batch acknowledged and never stored.

use crate::config::KafkaTarget;
use crate::metrics::OutputCounters;
use crate::output::failure::Failure;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;
use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod key;
mod producer;
mod slot;
use key::top_level_value;
use producer::{Producer0, Reports};
use slot::{Line, Slot};

/// Attempts (each `--output-timeout` long) in a row without any
/// acknowledgement after which a worker replaces the producer.
const STALLED_ATTEMPTS: u32 = 5;

/// How long the report server waits for an event before it looks again
/// whether the producer was replaced or the output stops.
const SERVE_WAIT: Duration = Duration::from_millis(100);

/// The configuration the producer of one `kafka:` output is made from,
/// the producer, and the workers' slots.
pub(crate) struct KafkaSink {
    config: ClientConfig,
    topic: CString,
    /// The top-level field whose value keys each message (`key=`).
    key: Option<Vec<u8>>,
    /// How long one wait for acknowledgements lasts before it counts as a
    /// failed attempt (`--output-timeout`).
    timeout: Duration,
    counters: Arc<OutputCounters>,
    shared: Arc<Shared>,
    /// The report server, started with the first worker.
    server: OnceLock<JoinHandle<()>>,
}

/// What the workers of one output and its report server share.
struct Shared {
    current: Mutex<Current>,
    /// [`Current::generation`], to read without the lock.
    generation: AtomicU64,
    /// Each worker's batch state, by the index its reports' opaques carry.
    slots: RwLock<Vec<Arc<Slot>>>,
    reports: Arc<Reports>,
    /// Set when the output stops: the report server returns.
    stop: AtomicBool,
    /// The partition the next keyless batch goes to (modulo the count).
    next_partition: AtomicU32,
}

/// The output's producer.
struct Current {
    /// `None` before the first one and after a replacement, until a worker
    /// makes the next.
    producer: Option<Arc<Producer0>>,
    /// Bumped at each replacement.
    generation: u64,
    /// The replaced producer, while it is still being purged and closed.
    retired: Weak<Producer0>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the producer's events until the output stops: each delivery
    /// report sets its line's status in its worker's slot (under the
    /// slot's lock, taken once per run of one worker's reports), and the
    /// worker is woken.
    fn serve(&self) {
        while !self.stop.load(Ordering::Acquire) {
            let (producer, generation) = {
                let current = self.lock();
                (current.producer.clone(), current.generation)
            };
            let Some(producer) = producer else {
                std::thread::sleep(SERVE_WAIT);
                continue;
            };
            let Some(event) = producer.next_report(SERVE_WAIT, &self.reports) else {
                continue;
            };
            let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
            let mut held: Option<(usize, MutexGuard<'_, slot::SlotState>)> = None;
            event.for_each(|opaque, code| {
                let (index, line) = slot::slot_and_line(opaque);
                let Some(slot) = slots.get(index) else {
                    return;
                };
                if held.as_ref().is_none_or(|(at, _)| *at != index) {
                    if let Some((at, state)) = held.take() {
                        drop(state);
                        slots[at].notify();
                    }
                    held = Some((index, slot.lock()));
                }
                let (_, state) = held.as_mut().expect("held above");
                // A report of a replaced producer is not the batch's now.
                if state.generation == generation {
                    state.report(line, code);
                }
            });
            if let Some((at, state)) = held {
                drop(state);
                slots[at].notify();
            }
        }
    }
}

impl KafkaSink {
    /// `queue_bytes`: the most bytes the producer may queue (its
    /// `queue.buffering.max.kbytes`), at least one batch a worker.
    pub fn new(
        target: &KafkaTarget,
        name: &str,
        queue_bytes: usize,
        timeout: Duration,
        counters: Arc<OutputCounters>,
    ) -> Result<Self, String> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", target.brokers.join(","))
            .set("client.id", "ringway")
            .set("compression.codec", target.compression.name())
            .set("acks", if target.acks_all { "all" } else { "1" })
            .set("enable.idempotence", target.acks_all.to_string())
            // Never give up inside librdkafka: a message waits in the
            // bounded queue until the broker takes it (see the module doc).
            .set("message.timeout.ms", "0")
            .set(
                "queue.buffering.max.kbytes",
                (queue_bytes.div_ceil(1024)).clamp(1, 2_097_151).to_string(),
            )
            // Bounded by the bytes above; a line is at least one byte.
            .set(
                "queue.buffering.max.messages",
                queue_bytes.clamp(1, 2_147_483_647).to_string(),
            )
            // A batch is handed at once and then flushed, which sends what
            // lingers (Producer0::send_lingering).
            .set("linger.ms", "5")
            .set("statistics.interval.ms", "1000")
            .set(
                "socket.timeout.ms",
                timeout.as_millis().clamp(10, 300_000).to_string(),
            )
            .set("log.connection.close", "false")
            // Connect to every broker the metadata names as soon as it is
            // known, not when a message first needs one: an idempotent
            // producer asks for its producer id only over such a
            // connection (see KafkaSink::worker and Producer0::open_topic).
            .set("enable.sparse.connections", "false")
            .set_log_level(RDKafkaLogLevel::Warning);
        let protocol = match (&target.tls, &target.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some(tls) = &target.tls {
            // Without ca=, OpenSSL's default CA paths (the system's).
            let path = |path: &std::path::PathBuf| path.to_string_lossy().into_owned();
            if let Some(ca) = &tls.ca {
                config.set("ssl.ca.location", path(ca));
            }
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                config
                    .set("ssl.certificate.location", path(cert))
                    .set("ssl.key.location", path(key));
            }
            if tls.insecure_skip_verify {
                config
                    .set("enable.ssl.certificate.verification", "false")
                    .set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        if let Some(sasl) = &target.sasl {
            config
                .set("sasl.mechanism", sasl.mechanism.librdkafka_name())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        let topic = CString::new(target.topic.as_str())
            .map_err(|_| format!("output '{name}': the topic has a NUL byte"))?;
        Ok(Self {
            config,
            topic,
            key: target.key.as_ref().map(|field| field.as_bytes().to_vec()),
            timeout,
            counters: Arc::clone(&counters),
            shared: Arc::new(Shared {
                current: Mutex::new(Current {
                    producer: None,
                    generation: 0,
                    retired: Weak::new(),
                }),
                generation: AtomicU64::new(0),
                slots: RwLock::new(Vec::new()),
                reports: Arc::new(Reports::new(counters, name)),
                stop: AtomicBool::new(false),
                next_partition: AtomicU32::new(0),
            }),
            server: OnceLock::new(),
        })
    }

    /// A worker's own state: its slot, registered with the report server.
    /// The first worker starts the server and makes the producer (or, if
    /// that fails, the first batch does).
    ///
    /// Made when the worker starts rather than on its first batch, so that
    /// the producer gets its producer id while the inputs start: an
    /// idempotent producer sends nothing before it has one, and librdkafka
    /// asks for it only over a connection to a broker the metadata names,
    /// else retries on a 500 ms timer.
    pub fn worker(&self) -> KafkaWorker {
        self.server.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name("ringway-kafka".into())
                .spawn(move || shared.serve())
                .expect("cannot start the Kafka report thread")
        });
        let _ = self.producer(false);
        let slot = Arc::new(Slot::default());
        let mut slots = self
            .shared
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        slots.push(Arc::clone(&slot));
        KafkaWorker {
            index: slots.len() - 1,
            slot,
            ends: Vec::new(),
            handing: Vec::new(),
            messages: Vec::new(),
            stalled: 0,
        }
    }

    /// The output's producer and its generation, made now if there is
    /// none (once the replaced one is gone), with its topic handle when
    /// `open` is set.
    fn producer(&self, open: bool) -> Result<(Arc<Producer0>, u64), Failure> {
        let mut current = self.shared.lock();
        if current.producer.is_none() {
            if current.retired.strong_count() > 0 {
                return Err(Failure::Retry {
                    error: io::Error::other("the replaced Kafka producer is still closing"),
                    retry_after: None,
                });
            }
            current.producer = Some(Arc::new(Producer0::new(
                &self.config,
                &self.shared.reports,
                &self.topic,
            )?));
        }
        let producer = Arc::clone(current.producer.as_ref().expect("made above"));
        if open {
            producer.open_topic(&self.topic)?;
        }
        Ok((producer, current.generation))
    }

    /// Retires the producer of `generation` (unless another worker did
    /// already): every worker hands what it had not got acknowledged to
    /// the next one.
    fn replace(&self, generation: u64) {
        let old = {
            let mut current = self.shared.lock();
            if current.generation != generation {
                return;
            }
            current.generation += 1;
            self.shared
                .generation
                .store(current.generation, Ordering::Release);
            let old = current.producer.take();
            current.retired = old.as_ref().map_or_else(Weak::new, Arc::downgrade);
            old
        };
        // Purged and closed here unless the report server or another
        // worker still holds it; then by the last of them.
        drop(old);
    }

    /// Produces the lines of `bytes` from `*written` on that are not yet
    /// acknowledged, calls `handed` once every one of them is with the
    /// producer (the next batch may be handed then), waits up to
    /// `--output-timeout` for the broker, and advances `*written` past
    /// every line acknowledged in order. A line refused for good is
    /// returned as a [`Failure::Reject`] of its bytes (the worker
    /// dead-letters it and calls again); anything else still
    /// unacknowledged is a [`Failure::Retry`].
    pub fn send(
        &self,
        worker: &mut KafkaWorker,
        bytes: &[u8],
        written: &mut usize,
        handed: &mut dyn FnMut(),
    ) -> Result<(), Failure> {
        if worker.ends.is_empty() && !bytes.is_empty() {
            worker.cut(bytes);
        }
        let (producer, generation) = self.producer(true)?;
        let deadline = Instant::now() + self.timeout;
        let first = worker.line_at(*written);
        self.hand(worker, &producer, generation, bytes, first, deadline)?;
        handed();
        // Send what lingers now, not after linger.ms.
        producer.send_lingering();
        let slot = Arc::clone(&worker.slot);
        let mut state = slot.lock();
        let waiting_before = state.in_flight;
        while state.in_flight > 0 {
            if self.shared.generation.load(Ordering::Acquire) != generation {
                // Another worker replaced the producer: what it held goes
                // to the next one.
                state.requeue_in_flight();
                return Err(self.unacknowledged(&state, "not acknowledged before a new producer"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = slot.wait(state, left.min(SERVE_WAIT));
        }
        self.counters.queue_messages.store(
            producer.inner.in_flight_count().max(0) as u64,
            Ordering::Relaxed,
        );
        // Attempts in a row in which lines were in flight and none was
        // acknowledged: a broker that restarted without its state can
        // answer every retry of the idempotent producer with
        // UNKNOWN_PRODUCER_ID forever, and librdkafka keeps retrying.
        if state.in_flight > 0 && state.in_flight >= waiting_before {
            worker.stalled += 1;
        } else {
            worker.stalled = 0;
        }
        if worker.stalled >= STALLED_ATTEMPTS {
            worker.stalled = 0;
            state.requeue_in_flight();
            drop(state);
            self.replace(generation);
            return Err(Failure::Retry {
                error: io::Error::other(format!(
                    "no acknowledgement in {STALLED_ATTEMPTS} attempts of {:?}; starting a new producer (what was not acknowledged goes again)",
                    self.timeout
                )),
                retry_after: None,
            });
        }
        if let Some((code, detail)) = producer.inner.client().fatal_error() {
            // The idempotent producer cannot go on (e.g. the broker lost
            // its state): a new one sends what is not acknowledged.
            state.requeue_in_flight();
            drop(state);
            self.replace(generation);
            return Err(Failure::Retry {
                error: io::Error::other(format!(
                    "the producer failed for good ({code}: {detail}); starting a new one"
                )),
                retry_after: None,
            });
        }
        // Walk the lines in order: acknowledged ones are written.
        for index in first..worker.ends.len() {
            let range = worker.range(index);
            match state.status[index] {
                Line::Delivered => *written = range.end,
                Line::Refused => {
                    let why = state
                        .refused
                        .map_or_else(|| "refused".to_string(), |code| format!("Kafka {code}"));
                    return Err(Failure::Reject {
                        why,
                        detail: String::new(),
                        range,
                    });
                }
                Line::InFlight | Line::Pending => {
                    return Err(self.unacknowledged(&state, "not acknowledged"));
                }
            }
        }
        Ok(())
    }

    /// Hands the producer every line from `first` on that is not yet
    /// acknowledged nor in flight, in order. Each is marked in flight
    /// before it is produced, so its report can never come first.
    fn hand(
        &self,
        worker: &mut KafkaWorker,
        producer: &Producer0,
        generation: u64,
        bytes: &[u8],
        first: usize,
        deadline: Instant,
    ) -> Result<(), Failure> {
        worker.handing.clear();
        {
            let mut state = worker.slot.lock();
            if state.generation != generation {
                // Lines in flight went to a replaced producer.
                state.requeue_in_flight();
                state.generation = generation;
            }
            for index in first..worker.ends.len() {
                if state.status[index] == Line::Pending {
                    state.set(index, Line::InFlight);
                    worker.handing.push(index);
                }
            }
        }
        // Keyless lines go to one partition a batch, the batches taking
        // the partitions that have a leader in turn (librdkafka's
        // partitioner would pick one per message, reading the clock for
        // its sticky partition each time); keyed lines to the partition
        // of their key.
        let partition = match &self.key {
            None => {
                producer.partition_for(self.shared.next_partition.fetch_add(1, Ordering::Relaxed))
            }
            Some(_) => -1,
        };
        let mut at = 0;
        let mut failure = None;
        while at < worker.handing.len() {
            // One produce call for every line from `at` on.
            worker.messages.clear();
            for &index in &worker.handing[at..] {
                let line = worker.line(bytes, index);
                let key = self
                    .key
                    .as_deref()
                    .and_then(|field| top_level_value(line, field));
                let opaque = slot::opaque(worker.index, index);
                worker.messages.push(producer::message(line, key, opaque));
            }
            producer.produce_batch(&mut worker.messages, partition);
            let mut full_from = None;
            {
                let mut state = worker.slot.lock();
                for (offset, message) in worker.messages.iter().enumerate() {
                    let index = worker.handing[at + offset];
                    match RDKafkaErrorCode::from(message.err) {
                        RDKafkaErrorCode::NoError => {}
                        RDKafkaErrorCode::QueueFull => {
                            // This one and every later one were not queued.
                            full_from = Some(at + offset);
                            break;
                        }
                        code if permanent(code) => state.refuse(index, code),
                        code => {
                            // Not handed: it goes on the next try.
                            state.set(index, Line::Pending);
                            failure = Some(Failure::Retry {
                                error: io::Error::other(format!("cannot produce: {code}")),
                                retry_after: None,
                            });
                        }
                    }
                }
            }
            worker.messages.clear();
            let Some(from) = full_from else {
                break;
            };
            if Instant::now() < deadline
                && self.shared.generation.load(Ordering::Acquire) == generation
            {
                // The queue is full: the report server makes room as the
                // broker acknowledges.
                std::thread::sleep(Duration::from_millis(2));
                at = from;
                continue;
            }
            let mut state = worker.slot.lock();
            for &index in &worker.handing[from..] {
                state.set(index, Line::Pending);
            }
            return Err(self.unacknowledged(
                &state,
                "not handed (the producer's queue stayed full, or it was replaced)",
            ));
        }
        failure.map_or(Ok(()), Err)
    }

    /// The failure of an attempt that left lines unacknowledged: the
    /// broker's last retriable error when there was one.
    fn unacknowledged(&self, state: &slot::SlotState, what: &str) -> Failure {
        let waiting = state.waiting();
        Failure::Retry {
            error: io::Error::other(match state.retriable {
                Some(code) => format!(
                    "{waiting} messages {what} within {:?}; last error from the brokers: {code}",
                    self.timeout
                ),
                None => format!("{waiting} messages {what} within {:?}", self.timeout),
            }),
            retry_after: None,
        }
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// One output worker's side: its slot and the lines of the batch in hand.
pub(crate) struct KafkaWorker {
    /// The slot's index among the output's (in its reports' opaques).
    index: usize,
    slot: Arc<Slot>,
    /// The end (after its newline) of each line; empty until the batch's
    /// first send. Grows to the largest batch's line count and is reused.
    ends: Vec<usize>,
    /// The lines one attempt hands the producer.
    handing: Vec<usize>,
    /// Their messages, for one produce call (pointers into the batch,
    /// cleared after the call).
    messages: Vec<rdkafka::bindings::rd_kafka_message_t>,
    /// Attempts in a row without an acknowledgement (see
    /// [`STALLED_ATTEMPTS`]).
    stalled: u32,
}

impl KafkaWorker {
    /// A new batch: forget the previous one's lines.
    pub fn start_batch(&mut self) {
        self.ends.clear();
        self.slot.lock().reset(0);
        self.stalled = 0;
    }

    fn cut(&mut self, bytes: &[u8]) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', bytes) {
            self.ends.push(newline + 1);
            start = newline + 1;
        }
        if start < bytes.len() {
            self.ends.push(bytes.len());
        }
        self.slot.lock().reset(self.ends.len());
    }

    /// The index of the line that starts at byte `offset`.
    fn line_at(&self, offset: usize) -> usize {
        self.ends.partition_point(|&end| end <= offset)
    }

    fn range(&self, index: usize) -> std::ops::Range<usize> {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        start..self.ends[index]
    }

    /// The line's bytes without its newline: the message.
    fn line<'a>(&self, bytes: &'a [u8], index: usize) -> &'a [u8] {
        let line = &bytes[self.range(index)];
        line.strip_suffix(b"\n").unwrap_or(line)
    }
}

/// Whether the broker (or librdkafka) refuses the message for good: trying
/// again cannot help, so it is dead-lettered.
fn permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::PolicyViolation
    )
}

#[cfg(test)]
mod tests {
    use super::KafkaSink;
    use crate::config::{OutputKind, parse_output_spec};
    use std::time::Duration;

    /// The librdkafka configuration a `kafka:` SPEC gives.
    fn client_config(spec: &str) -> rdkafka::config::ClientConfig {
        let OutputKind::Kafka(target) = parse_output_spec(spec).unwrap().kind else {
            panic!("{spec}");
        };
        let sink = KafkaSink::new(
            &target,
            "test",
            1 << 20,
            Duration::from_secs(1),
            Default::default(),
        )
        .unwrap();
        sink.config.clone()
    }

    #[test]
    fn tls_and_sasl_options_reach_librdkafka() {
        let config = client_config(
            "kafka:k1:9093/logs,key=host,tls,ca=/ca.pem,cert=/c.pem,tls_key=/k.pem,sasl=scram-sha-512,username=ringway,password=p%2Cw",
        );
        for (key, value) in [
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.key.location", "/k.pem"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "ringway"),
            ("sasl.password", "p,w"),
        ] {
            assert_eq!(config.get(key), Some(value), "{key}");
        }
        assert_eq!(config.get("enable.ssl.certificate.verification"), None);
        let plain = client_config("kafka:k1:9092/logs");
        assert_eq!(plain.get("security.protocol"), Some("plaintext"));
        assert_eq!(plain.get("sasl.mechanism"), None);
        let sasl = client_config("kafka:k1:9092/logs,sasl=plain,username=u,password=s");
        assert_eq!(sasl.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(sasl.get("sasl.mechanism"), Some("PLAIN"));
        let unchecked = client_config("kafka:k1:9093/logs,tls,insecure_skip_verify=true");
        assert_eq!(unchecked.get("security.protocol"), Some("ssl"));
        assert_eq!(
            unchecked.get("enable.ssl.certificate.verification"),
            Some("false")
        );
    }
}
