//! One librdkafka producer of a `kafka:` output ([`Producer0`]), the
//! events it hands back ([`Event`]), and what the client says outside
//! delivery reports ([`Reports`]: logs, errors, statistics).

use crate::metrics::OutputCounters;
use crate::output::failure::Failure;
use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext, PurgeConfig};
use rdkafka::statistics::Statistics;
use std::ffi::CStr;
use std::io;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long [`Producer0::send_lingering`] holds its flush, in ms.
const FLUSH_HOLD_MS: libc::c_int = 2;

/// How long each of a new producer's first metadata requests may wait.
const METADATA_WAIT: Duration = Duration::from_millis(500);

/// How often the topic's partition count is asked for while the brokers
/// do not know the topic.
const PARTITIONS_ASKED: Duration = Duration::from_secs(5);

/// A librdkafka producer and the handle of its topic, shared by the
/// workers of one output (they hand it their lines in commit order) and
/// its report server (which reads its events).
pub(super) struct Producer0 {
    /// Dropped by hand in Drop, after the handles made from it.
    pub inner: ManuallyDrop<BaseProducer<Context>>,
    /// Null until the first batch ([`Producer0::open_topic`]).
    topic: AtomicPtr<rdsys::rd_kafka_topic_t>,
    /// The client's main queue, where its events (delivery reports,
    /// statistics, errors) arrive.
    queue: *mut rdsys::rd_kafka_queue_t,
    /// The topic's partition count from the brokers' metadata; 0 until
    /// known (see [`Producer0::partitions`]).
    partitions: AtomicI32,
    /// When the metadata was last asked for while the count was unknown.
    asked: Mutex<Option<Instant>>,
}

// SAFETY: librdkafka's producer, topic and queue handles are thread-safe
// (produce, poll and purge may be called from any thread); the topic
// pointer is set once, under the output's producer lock.
unsafe impl Send for Producer0 {}
// SAFETY: as for Send: every method takes &self and calls librdkafka
// functions documented thread-safe.
unsafe impl Sync for Producer0 {}

impl Producer0 {
    pub fn new(config: &ClientConfig, reports: &Arc<Reports>) -> Result<Self, Failure> {
        let inner = BaseProducer::from_config_and_context(config, Context(Arc::clone(reports)))
            .map_err(|error| Failure::Retry {
                error: io::Error::other(format!("cannot make a Kafka producer: {error}")),
                retry_after: None,
            })?;
        // Two metadata requests, one after the other, so that the
        // idempotent producer asks for its producer id now. librdkafka asks
        // when a metadata answer arrives while a broker the metadata names
        // is connected, and otherwise only on a 500 ms timer. The first
        // answer comes over the bootstrap connection and names the broker
        // (librdkafka connects to it and drops the bootstrap connection);
        // the second comes over the broker's own connection: the id is
        // asked for at once (a one-line run against tansu: 0.03-0.22 s
        // instead of 0.51-0.68 s; docs/outputs.md). A broker that is not
        // there costs this worker's start up to twice METADATA_WAIT.
        for _ in 0..2 {
            let _ = inner.client().fetch_metadata(None, METADATA_WAIT);
        }
        // SAFETY: the client pointer is valid while `inner` lives, and the
        // queue reference is destroyed in Drop, before `inner`.
        let queue = unsafe { rdsys::rd_kafka_queue_get_main(inner.client().native_ptr()) };
        Ok(Self {
            inner: ManuallyDrop::new(inner),
            topic: AtomicPtr::new(std::ptr::null_mut()),
            queue,
            partitions: AtomicI32::new(0),
            asked: Mutex::new(None),
        })
    }

    /// Makes the topic handle, once, when the first batch is produced.
    /// The caller holds the output's producer lock, so no two threads
    /// make it.
    ///
    /// Not in [`Producer0::new`]: librdkafka asks for the idempotent
    /// producer's id when a metadata answer arrives while a broker the
    /// metadata names is connected, and otherwise only on a 500 ms timer.
    /// The topic's metadata request, made when the producer is, is
    /// answered before that connection is up; made with the first batch,
    /// it can come after it.
    pub fn open_topic(&self, topic: &CStr) -> Result<(), Failure> {
        if !self.topic.load(Ordering::Acquire).is_null() {
            return Ok(());
        }
        // SAFETY: the client pointer is valid while `inner` lives, and the
        // topic handle is destroyed (in Drop) before `inner` is.
        let handle = unsafe {
            rdsys::rd_kafka_topic_new(
                self.inner.client().native_ptr(),
                topic.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if handle.is_null() {
            return Err(Failure::Retry {
                error: io::Error::other("cannot make the topic handle"),
                retry_after: None,
            });
        }
        self.topic.store(handle, Ordering::Release);
        Ok(())
    }

    /// The topic's partition count, asked of the brokers once it is
    /// needed and then kept (a topic that grows later gets its new
    /// partitions from the next producer); 0 while the brokers do not
    /// know the topic, asked again at most every [`PARTITIONS_ASKED`].
    pub fn partitions(&self, topic: &CStr) -> i32 {
        let known = self.partitions.load(Ordering::Acquire);
        if known > 0 {
            return known;
        }
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.is_some_and(|at| at.elapsed() < PARTITIONS_ASKED) {
            return 0;
        }
        *asked = Some(Instant::now());
        let Ok(name) = topic.to_str() else {
            return 0;
        };
        let count = self
            .inner
            .client()
            .fetch_metadata(Some(name), METADATA_WAIT)
            .ok()
            .and_then(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .find(|found| found.name() == name && found.error().is_none())
                    .map(|found| found.partitions().len())
            })
            .unwrap_or(0);
        let count = i32::try_from(count).unwrap_or(0);
        self.partitions.store(count, Ordering::Release);
        count
    }

    /// Forgets the partition count: the next [`Producer0::partitions`]
    /// asks the brokers again.
    pub fn forget_partitions(&self) {
        self.partitions.store(0, Ordering::Release);
        *self.asked.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Waits up to `timeout` for one event of the client. Statistics and
    /// errors are served here (gauges, log); a delivery report is handed
    /// back. Reads the queue itself (rdkafka's `poll` keeps waiting until
    /// its timeout even after an event, and allocates per report).
    pub fn next_report(&self, timeout: Duration, reports: &Reports) -> Option<Event> {
        let millis = timeout.as_millis().clamp(0, i32::MAX as u128) as i32;
        // SAFETY: the queue is valid while self lives (see new).
        let event = Event(unsafe { rdsys::rd_kafka_queue_poll(self.queue, millis) });
        if event.0.is_null() {
            return None;
        }
        // SAFETY: `event` is a live event until it is dropped; the strings
        // it hands out live as long.
        unsafe {
            match rdsys::rd_kafka_event_type(event.0) {
                rdsys::RD_KAFKA_EVENT_DR => return Some(event),
                rdsys::RD_KAFKA_EVENT_STATS => {
                    let json = CStr::from_ptr(rdsys::rd_kafka_event_stats(event.0));
                    if let Ok(statistics) = serde_json::from_slice::<Statistics>(json.to_bytes()) {
                        reports.stats(&statistics);
                    }
                }
                rdsys::RD_KAFKA_EVENT_ERROR => {
                    let code = RDKafkaErrorCode::from(rdsys::rd_kafka_event_error(event.0));
                    let text = CStr::from_ptr(rdsys::rd_kafka_event_error_string(event.0));
                    reports.warn(&format!("{code}: {}", text.to_string_lossy()));
                }
                _ => {}
            }
        }
        None
    }

    /// Sends what lingers in the client's queues now. librdkafka skips
    /// `linger.ms` only while a flush is running, and a flush with no
    /// wait ends before its broker threads wake up to look ("then no
    /// flushing will be performed", its source says): a batch's last
    /// lines, past the first full message set, waited out the 5 ms. So
    /// the flush is held for [`FLUSH_HOLD_MS`]. With delivery reports as
    /// events (rdkafka's BaseProducer) it only waits for the message
    /// count, reading no event (rdkafka's own `flush` polls the queue and
    /// would take the report server's). Its caller then waits for its
    /// acknowledgements anyway.
    pub fn send_lingering(&self) {
        // SAFETY: the client pointer is valid while self lives.
        unsafe {
            rdsys::rd_kafka_flush(self.inner.client().native_ptr(), FLUSH_HOLD_MS);
        }
    }

    /// Queues the messages (librdkafka copies them) in one call, in
    /// order: one call per batch rather than per line (the topic's lock,
    /// the clock and the checks are taken once). Each message's `err`
    /// says what became of it; after a full queue every later message
    /// fails the same way, so none of them overtakes an earlier one.
    ///
    /// `partition`: every message goes to that partition, or with -1
    /// (RD_KAFKA_PARTITION_UA) the partitioner picks one per message.
    pub fn produce_batch(&self, messages: &mut [rdsys::rd_kafka_message_t], partition: i32) {
        if messages.is_empty() {
            return;
        }
        // SAFETY: the topic handle is valid (the sink opens it before any
        // produce); each message's payload and key point into the batch,
        // valid for their lengths during the call, and RD_KAFKA_MSG_F_COPY
        // makes librdkafka copy them before it returns. The count fits an
        // int: a batch holds far fewer lines than 2^31.
        unsafe {
            rdsys::rd_kafka_produce_batch(
                self.topic.load(Ordering::Acquire),
                partition,
                rdsys::RD_KAFKA_MSG_F_COPY,
                messages.as_mut_ptr(),
                messages.len() as libc::c_int,
            );
        }
    }
}

/// A message for [`Producer0::produce_batch`], with `opaque` as what its
/// delivery report brings back. The pointers are only read during that
/// call.
pub(super) fn message(
    payload: &[u8],
    key: Option<&[u8]>,
    opaque: usize,
) -> rdsys::rd_kafka_message_t {
    let (key, key_len) = key.map_or((std::ptr::null(), 0), |key| (key.as_ptr(), key.len()));
    rdsys::rd_kafka_message_t {
        err: rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        rkt: std::ptr::null_mut(),
        partition: -1,
        payload: payload.as_ptr() as *mut libc::c_void,
        len: payload.len(),
        key: key as *mut libc::c_void,
        key_len,
        offset: 0,
        _private: opaque as *mut libc::c_void,
    }
}

impl Drop for Producer0 {
    fn drop(&mut self) {
        // Nothing still queued goes out after us: what it held is handed
        // to the next producer by the workers (see KafkaSink::send).
        self.inner.purge(PurgeConfig::default().queue().inflight());
        self.inner.poll(Duration::ZERO);
        // SAFETY: made by rd_kafka_queue_get_main in new and (unless
        // null) rd_kafka_topic_new in open_topic; not used after this.
        unsafe {
            rdsys::rd_kafka_queue_destroy(self.queue);
            let topic = *self.topic.get_mut();
            if !topic.is_null() {
                rdsys::rd_kafka_topic_destroy(topic);
            }
        }
        // SAFETY: dropped once, here, after every handle made from it;
        // nothing uses `inner` after this.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        // The closed client's threads allocated with the C allocator
        // (message copies, request and compression buffers), in arenas
        // glibc keeps after the threads end: give what they freed back.
        // Only a producer replacement (a broker restarted without its
        // state) or the output's end gets here.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory of the allocator.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// A delivery report event: the reports of one or more messages.
pub(super) struct Event(*mut rdsys::rd_kafka_event_t);

impl Event {
    /// Each message's opaque (as given to [`Producer0::produce`]) and
    /// outcome, in the order the event holds them.
    pub fn for_each(&self, mut report: impl FnMut(usize, RDKafkaErrorCode)) {
        loop {
            // SAFETY: the event is live until Drop; so are its messages.
            let message = unsafe { rdsys::rd_kafka_event_message_next(self.0) };
            if message.is_null() {
                return;
            }
            // SAFETY: a message of a live event (see above).
            let (opaque, code) = unsafe { ((*message)._private as usize, (*message).err) };
            report(opaque, RDKafkaErrorCode::from(code));
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: returned by rd_kafka_queue_poll, destroyed once.
            unsafe { rdsys::rd_kafka_event_destroy(self.0) };
        }
    }
}

/// What the client tells outside delivery reports (logs, errors,
/// statistics), shared by an output's producers.
pub(super) struct Reports {
    pub counters: Arc<OutputCounters>,
    pub name: String,
    /// Errors librdkafka reported, for logging at powers of two.
    errors: AtomicU64,
}

impl Reports {
    pub fn new(counters: Arc<OutputCounters>, name: &str) -> Self {
        Self {
            counters,
            name: name.to_string(),
            errors: AtomicU64::new(0),
        }
    }

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
    pub fn warn(&self, what: &str) {
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if errors.is_power_of_two() {
            eprintln!(
                "ringway: warning: output {}: {what} ({errors} Kafka client errors so far)",
                self.name
            );
        }
    }
}

/// The producer's context: the output's [`Reports`].
pub(super) struct Context(Arc<Reports>);

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

    /// Only rdkafka's own polls call this, and only the drop of a producer
    /// makes them (after a purge): the workers hand what the purged lines
    /// held to the next producer, so nothing is done here.
    fn delivery(&self, _result: &DeliveryResult<'_>, _opaque: usize) {}
}
