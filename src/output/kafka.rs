//! The `kafka:` output: each record of a batch is one Kafka message (the
//! NDJSON line without its newline), produced with librdkafka (the
//! `rdkafka` crate's [`BaseProducer`], polled by the output worker itself:
//! no async runtime and no extra thread of ours).
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
//! Each output worker has its own producer, made when the worker starts
//! (so that every producer gets its producer id at once, not each on its
//! worker's first batch; see [`KafkaSink::worker`]) and made again on the
//! next batch after a fatal error of the idempotent producer (for example
//! a broker that restarted without its state); messages not yet
//! acknowledged then go again, which can duplicate, never lose.
//!
//! When one worker replaces its producer, every other worker of the output
//! replaces its own before its next batch ([`KafkaSink::generation`]). A
//! broker that lost its state (tansu with its memory store, restarted)
//! hands out producer ids from 1 again, so a new producer can get the id an
//! old producer of another worker still holds. That old producer's next
//! sequence numbers are then below what the broker counted for the id, and
//! the broker answers DUPLICATE_SEQUENCE_NUMBER, which librdkafka reports
//! as delivered (it takes it for the answer to a retry of something already
//! written): a whole batch acknowledged and never stored.
//!
//! Per batch the worker keeps one status byte a line ([`Line`]), filled by
//! the delivery reports the polls serve: a retry produces only the lines
//! not yet acknowledged, and a refused line is dead-lettered alone.

use crate::config::KafkaTarget;
use crate::metrics::OutputCounters;
use crate::output::failure::Failure;
use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext, PurgeConfig};
use rdkafka::statistics::Statistics;
use std::ffi::CString;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod key;
use key::top_level_value;

/// Attempts (each `--output-timeout` long) in a row without any
/// acknowledgement after which a worker replaces its producer.
const STALLED_ATTEMPTS: u32 = 5;

/// What became of one line of the batch in hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Line {
    /// Not handed to the producer (yet, or again after a purge).
    Pending = 0,
    /// In the producer's queue or on its way to the broker.
    InFlight = 1,
    /// Acknowledged by the broker.
    Delivered = 2,
    /// Refused for good; its error is in [`Reports::refused`].
    Refused = 3,
}

/// The configuration every producer of one `kafka:` output is made from.
pub(crate) struct KafkaSink {
    config: ClientConfig,
    topic: CString,
    /// The top-level field whose value keys each message (`key=`).
    key: Option<Vec<u8>>,
    /// How long one wait for acknowledgements lasts before it counts as a
    /// failed attempt (`--output-timeout`).
    timeout: Duration,
    counters: Arc<OutputCounters>,
    name: String,
    /// Bumped each time a worker replaces its producer; a producer made
    /// under an older value is replaced before its next batch (see the
    /// module doc: no two producers of ours may share a producer id).
    generation: AtomicU64,
}

impl KafkaSink {
    /// `queue_bytes`: the most bytes a producer may queue (its
    /// `queue.buffering.max.kbytes`), at least one batch; `batch_lines`:
    /// the most messages it may queue.
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
            // A batch is produced at once and then flushed, which sends
            // what lingers: one produce request per partition and batch.
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
            counters,
            name: name.to_string(),
            generation: AtomicU64::new(0),
        })
    }

    /// A worker's own producer state, with its producer made now (or, if
    /// that fails, on its first batch).
    ///
    /// Made when the worker starts rather than on its first batch, so that
    /// the workers' producers get their producer ids while the inputs
    /// start, side by side: an idempotent producer sends nothing before it
    /// has one, and librdkafka asks for it only over a connection to a
    /// broker the metadata names, else retries on a 500 ms timer. Made on
    /// each worker's first batch, in commit order, the waits (~500 ms each
    /// against one broker reached through its bootstrap address) added up.
    pub fn worker(&self) -> KafkaWorker {
        let reports = Arc::new(Reports {
            counters: Arc::clone(&self.counters),
            name: self.name.clone(),
            errors: AtomicU64::new(0),
        });
        let generation = self.generation.load(Ordering::Acquire);
        KafkaWorker {
            producer: Producer0::new(self, &reports, generation).ok(),
            reports,
            batch: Lines::default(),
        }
    }

    /// Produces the lines of `bytes` from `*written` on that are not yet
    /// acknowledged, waits up to `--output-timeout` for the broker, and
    /// advances `*written` past every line acknowledged in order. A line
    /// refused for good is returned as a [`Failure::Reject`] of its bytes
    /// (the worker dead-letters it and calls again); anything else still
    /// unacknowledged is a [`Failure::Retry`].
    pub fn send(
        &self,
        worker: &mut KafkaWorker,
        bytes: &[u8],
        written: &mut usize,
    ) -> Result<(), Failure> {
        let batch = &mut worker.batch;
        if batch.ends.is_empty() && !bytes.is_empty() {
            batch.cut(bytes);
        }
        let generation = self.generation.load(Ordering::Acquire);
        if worker
            .producer
            .as_ref()
            .is_some_and(|producer| producer.generation != generation)
        {
            // Another worker replaced its producer: the brokers may have
            // lost their state, and this producer's id may be another's now.
            worker.producer = None;
            batch.requeue_in_flight();
        }
        if worker.producer.is_none() {
            worker.producer = Some(Producer0::new(self, &worker.reports, generation)?);
        }
        let producer = worker.producer.as_mut().expect("made above");
        producer.open_topic(self)?;
        let producer = &*producer;
        let reports = &worker.reports;
        let first = batch.line_at(*written);
        let deadline = Instant::now() + self.timeout;
        // Hand every line not yet acknowledged to the producer.
        for index in first..batch.ends.len() {
            if batch.status[index] != Line::Pending {
                continue;
            }
            let line = batch.line(bytes, index);
            let key = self
                .key
                .as_deref()
                .and_then(|field| top_level_value(line, field));
            loop {
                match producer.produce(line, key, index) {
                    Ok(()) => {
                        batch.set(index, Line::InFlight);
                        break;
                    }
                    Err(RDKafkaErrorCode::QueueFull) => {
                        // The queue is full: serve delivery reports until
                        // there is room, within this attempt's time.
                        producer.serve(batch, reports, Duration::from_millis(10));
                        if Instant::now() >= deadline {
                            return Err(
                                self.unacknowledged(batch, "the producer's queue stayed full")
                            );
                        }
                    }
                    Err(code) if permanent(code) => {
                        batch.refuse(index, code);
                        break;
                    }
                    Err(code) => {
                        return Err(Failure::Retry {
                            error: io::Error::other(format!("cannot produce: {code}")),
                            retry_after: None,
                        });
                    }
                }
            }
        }
        // Wait for the broker's acknowledgements: a flush with no wait
        // sends what lingers, then the delivery reports are served as they
        // come (rdkafka's own flush and poll wait out their whole timeout).
        let _ = producer.inner.flush(Duration::ZERO);
        let waiting_before = batch.in_flight;
        while batch.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            producer.serve(batch, reports, left.min(Duration::from_millis(100)));
        }
        self.counters.queue_messages.store(
            producer.inner.in_flight_count().max(0) as u64,
            Ordering::Relaxed,
        );
        // Attempts in a row in which lines were in flight and none was
        // acknowledged: a broker that restarted without its state can
        // answer every retry of the idempotent producer with
        // UNKNOWN_PRODUCER_ID forever, and librdkafka keeps retrying.
        if batch.in_flight > 0 && batch.in_flight >= waiting_before {
            batch.stalled += 1;
        } else {
            batch.stalled = 0;
        }
        if batch.stalled >= STALLED_ATTEMPTS {
            batch.stalled = 0;
            self.generation.fetch_add(1, Ordering::AcqRel);
            worker.producer = None;
            batch.requeue_in_flight();
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
            self.generation.fetch_add(1, Ordering::AcqRel);
            worker.producer = None;
            batch.requeue_in_flight();
            return Err(Failure::Retry {
                error: io::Error::other(format!(
                    "the producer failed for good ({code}: {detail}); starting a new one"
                )),
                retry_after: None,
            });
        }
        // Walk the lines in order: acknowledged ones are written.
        for index in first..batch.ends.len() {
            let range = batch.range(index);
            match batch.status[index] {
                Line::Delivered => *written = range.end,
                Line::Refused => {
                    let why = batch
                        .refused
                        .map_or_else(|| "refused".to_string(), |code| format!("Kafka {code}"));
                    return Err(Failure::Reject {
                        why,
                        detail: String::new(),
                        range,
                    });
                }
                Line::InFlight | Line::Pending => {
                    return Err(self.unacknowledged(batch, "not acknowledged"));
                }
            }
        }
        Ok(())
    }

    /// The failure of an attempt that left lines unacknowledged: the
    /// broker's last retriable error when there was one.
    fn unacknowledged(&self, batch: &Lines, what: &str) -> Failure {
        let waiting = batch
            .status
            .iter()
            .filter(|status| matches!(status, Line::InFlight | Line::Pending))
            .count();
        let last = batch.retriable;
        Failure::Retry {
            error: io::Error::other(match last {
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

/// One output worker's producer and the state of the batch in hand.
pub(crate) struct KafkaWorker {
    producer: Option<Producer0>,
    reports: Arc<Reports>,
    batch: Lines,
}

impl KafkaWorker {
    /// A new batch: forget the previous one's lines.
    pub fn start_batch(&mut self) {
        self.batch.ends.clear();
        self.batch.status.clear();
        self.batch.in_flight = 0;
        self.batch.refused = None;
        self.batch.retriable = None;
        self.batch.stalled = 0;
    }
}

/// The lines of the batch in hand and what became of each; the vectors
/// grow to the largest batch's line count and are reused.
#[derive(Default)]
struct Lines {
    /// The end (after its newline) of each line; empty until the batch's
    /// first send.
    ends: Vec<usize>,
    status: Vec<Line>,
    /// Lines in [`Line::InFlight`].
    in_flight: usize,
    /// The error of the last line refused for good.
    refused: Option<RDKafkaErrorCode>,
    /// The last retriable error a delivery report carried.
    retriable: Option<RDKafkaErrorCode>,
    /// Attempts in a row without an acknowledgement (see
    /// [`STALLED_ATTEMPTS`]).
    stalled: u32,
}

impl Lines {
    fn cut(&mut self, bytes: &[u8]) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', bytes) {
            self.ends.push(newline + 1);
            start = newline + 1;
        }
        if start < bytes.len() {
            self.ends.push(bytes.len());
        }
        self.status.clear();
        self.status.resize(self.ends.len(), Line::Pending);
        self.in_flight = 0;
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

    fn set(&mut self, index: usize, line: Line) {
        let Some(status) = self.status.get_mut(index) else {
            return;
        };
        match (*status == Line::InFlight, line == Line::InFlight) {
            (false, true) => self.in_flight += 1,
            (true, false) => self.in_flight -= 1,
            _ => {}
        }
        *status = line;
    }

    fn refuse(&mut self, index: usize, code: RDKafkaErrorCode) {
        self.set(index, Line::Refused);
        self.refused = Some(code);
    }

    /// A delivery report of line `index`: acknowledged, refused for good,
    /// or to go again.
    fn report(&mut self, index: usize, code: RDKafkaErrorCode) {
        match code {
            RDKafkaErrorCode::NoError => self.set(index, Line::Delivered),
            code if permanent(code) => self.refuse(index, code),
            code => {
                // Purged or failed for now: it goes again on the next try.
                self.set(index, Line::Pending);
                if !matches!(
                    code,
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
                ) {
                    self.retriable = Some(code);
                }
            }
        }
    }

    /// After a producer is dropped: what it held goes again.
    fn requeue_in_flight(&mut self) {
        for status in &mut self.status {
            if *status == Line::InFlight {
                *status = Line::Pending;
            }
        }
        self.in_flight = 0;
    }
}

/// A librdkafka producer and the handle of its topic.
struct Producer0 {
    inner: BaseProducer<Context>,
    /// Null until the first batch ([`Producer0::open_topic`]).
    topic: *mut rdsys::rd_kafka_topic_t,
    /// The client's main queue, where its events (delivery reports,
    /// statistics, errors) arrive.
    queue: *mut rdsys::rd_kafka_queue_t,
    /// The [`KafkaSink::generation`] it was made under.
    generation: u64,
}

// SAFETY: librdkafka's producer and topic handles are thread-safe; the
// worker that owns this is the only one that uses it.
unsafe impl Send for Producer0 {}

impl Producer0 {
    fn new(sink: &KafkaSink, reports: &Arc<Reports>, generation: u64) -> Result<Self, Failure> {
        let inner =
            BaseProducer::from_config_and_context(&sink.config, Context(Arc::clone(reports)))
                .map_err(|error| Failure::Retry {
                    error: io::Error::other(format!("cannot make a Kafka producer: {error}")),
                    retry_after: None,
                })?;
        // SAFETY: the client pointer is valid while `inner` lives, and the
        // queue reference is destroyed in Drop, before `inner`.
        let queue = unsafe { rdsys::rd_kafka_queue_get_main(inner.client().native_ptr()) };
        Ok(Self {
            inner,
            topic: std::ptr::null_mut(),
            queue,
            generation,
        })
    }

    /// Makes the topic handle, once, when the first batch is produced.
    ///
    /// Not in [`Producer0::new`]: librdkafka asks for the idempotent
    /// producer's id when a metadata answer arrives while a broker the
    /// metadata names is connected, and otherwise only on a 500 ms timer.
    /// The topic's metadata request, made when the producer is, is
    /// answered before that connection is up; made with the first batch,
    /// it can come after it.
    fn open_topic(&mut self, sink: &KafkaSink) -> Result<(), Failure> {
        if !self.topic.is_null() {
            return Ok(());
        }
        // SAFETY: the client pointer is valid while `inner` lives, and the
        // topic handle is destroyed (in Drop) before `inner` is.
        self.topic = unsafe {
            rdsys::rd_kafka_topic_new(
                self.inner.client().native_ptr(),
                sink.topic.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if self.topic.is_null() {
            return Err(Failure::Retry {
                error: io::Error::other("cannot make the topic handle"),
                retry_after: None,
            });
        }
        Ok(())
    }

    /// Waits up to `timeout` for one event of the client and serves it:
    /// a delivery report sets its lines' [`Line`], statistics update the
    /// gauges, an error is logged. Reads the queue itself (rdkafka's
    /// `poll` keeps waiting until its timeout even after an event, and
    /// allocates per report). No allocation per message.
    fn serve(&self, batch: &mut Lines, reports: &Reports, timeout: Duration) {
        let millis = timeout.as_millis().clamp(0, i32::MAX as u128) as i32;
        // SAFETY: the queue is valid while self lives (see new).
        let event = unsafe { rdsys::rd_kafka_queue_poll(self.queue, millis) };
        if event.is_null() {
            return;
        }
        // SAFETY: `event` is a live event until rd_kafka_event_destroy
        // below; the messages and strings it hands out live as long.
        unsafe {
            match rdsys::rd_kafka_event_type(event) {
                rdsys::RD_KAFKA_EVENT_DR => loop {
                    let message = rdsys::rd_kafka_event_message_next(event);
                    if message.is_null() {
                        break;
                    }
                    let index = (*message)._private as usize;
                    batch.report(index, RDKafkaErrorCode::from((*message).err));
                },
                rdsys::RD_KAFKA_EVENT_STATS => {
                    let json = std::ffi::CStr::from_ptr(rdsys::rd_kafka_event_stats(event));
                    if let Ok(statistics) = serde_json::from_slice::<Statistics>(json.to_bytes()) {
                        reports.stats(&statistics);
                    }
                }
                rdsys::RD_KAFKA_EVENT_ERROR => {
                    let code = RDKafkaErrorCode::from(rdsys::rd_kafka_event_error(event));
                    let text = std::ffi::CStr::from_ptr(rdsys::rd_kafka_event_error_string(event));
                    reports.warn(&format!("{code}: {}", text.to_string_lossy()));
                }
                _ => {}
            }
            rdsys::rd_kafka_event_destroy(event);
        }
    }

    /// Queues one message (librdkafka copies it), with `index` as the
    /// opaque its delivery report brings back. No allocation of ours (the
    /// safe `send` builds a C string of the topic for every message).
    fn produce(
        &self,
        payload: &[u8],
        key: Option<&[u8]>,
        index: usize,
    ) -> Result<(), RDKafkaErrorCode> {
        let (key, key_len) = key.map_or((std::ptr::null(), 0), |key| (key.as_ptr(), key.len()));
        // SAFETY: the topic handle is valid (send calls open_topic before
        // any produce); payload and key are valid for their lengths during
        // the call, and RD_KAFKA_MSG_F_COPY makes librdkafka copy them
        // before it returns.
        let result = unsafe {
            rdsys::rd_kafka_produce(
                self.topic,
                -1, // RD_KAFKA_PARTITION_UA: the partitioner picks
                rdsys::RD_KAFKA_MSG_F_COPY,
                payload.as_ptr() as *mut libc::c_void,
                payload.len(),
                key as *const libc::c_void,
                key_len,
                index as *mut libc::c_void,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            // SAFETY: reads this thread's last error; no pointer involved.
            Err(unsafe { rdsys::rd_kafka_last_error() }.into())
        }
    }
}

impl Drop for Producer0 {
    fn drop(&mut self) {
        // Nothing still queued may refer to this batch's lines after us.
        self.inner.purge(PurgeConfig::default().queue().inflight());
        self.inner.poll(Duration::ZERO);
        // SAFETY: made by rd_kafka_queue_get_main in new and (unless
        // null) rd_kafka_topic_new in open_topic; not used after this.
        unsafe {
            rdsys::rd_kafka_queue_destroy(self.queue);
            if !self.topic.is_null() {
                rdsys::rd_kafka_topic_destroy(self.topic);
            }
        }
    }
}

/// What the client tells outside delivery reports (logs, errors,
/// statistics), shared with its librdkafka context.
pub(crate) struct Reports {
    counters: Arc<OutputCounters>,
    name: String,
    /// Errors librdkafka reported, for logging at powers of two.
    errors: AtomicU64,
}

impl Reports {
    /// The client's statistics (every second): queue depth and the mean
    /// round trip over the brokers that measured one.
    fn stats(&self, statistics: &Statistics) {
        self.counters
            .queue_messages
            .store(statistics.msg_cnt, Ordering::Relaxed);
        let (sum, count) = statistics
            .brokers
            .values()
            .filter_map(|broker| broker.rtt.as_ref())
            .filter(|window| window.cnt > 0)
            .fold((0i64, 0i64), |(sum, count), window| {
                (sum + window.avg, count + 1)
            });
        if count > 0 {
            self.counters
                .rtt_us
                .store((sum / count).max(0) as u64, Ordering::Relaxed);
        }
    }

    /// Logs at the 1st, 2nd, 4th, … time.
    fn warn(&self, what: &str) {
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if errors.is_power_of_two() {
            eprintln!(
                "ringway: warning: output {}: {what} ({errors} Kafka client errors so far)",
                self.name
            );
        }
    }
}

/// The producer's context: the worker's [`Reports`].
struct Context(Arc<Reports>);

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            self.0.warn(&format!("librdkafka {facility}: {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.warn(&format!("{error}: {reason}"));
    }

    fn stats(&self, statistics: Statistics) {
        self.0.stats(&statistics);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    /// Only rdkafka's own polls call this, and only ringway's drop of a
    /// producer makes them (after a purge): what the purged lines become
    /// is decided by [`Lines::requeue_in_flight`], so nothing is done here.
    fn delivery(&self, _result: &DeliveryResult<'_>, _index: usize) {}
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
        sink.config
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
