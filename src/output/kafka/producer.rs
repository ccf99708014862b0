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
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

/// How long [`Producer0::send_lingering`] holds its flush, in ms.
const FLUSH_HOLD_MS: libc::c_int = 2;

/// How long each of a new producer's first metadata requests may wait.
const METADATA_WAIT: Duration = Duration::from_millis(500);

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
    /// The topic's name.
    topic_name: String,
    /// Bit `p` set: partition `p` of the topic had a leader in the last
    /// statistics; 0 before them, or when the topic has more than 64
    /// partitions (see [`Producer0::partition_for`]).
    led: AtomicU64,
}

// SAFETY: librdkafka's producer, topic and queue handles are thread-safe
// (produce, poll and purge may be called from any thread); the topic
// pointer is set once, under the output's producer lock.
unsafe impl Send for Producer0 {}
// SAFETY: as for Send: every method takes &self and calls librdkafka
// functions documented thread-safe.
unsafe impl Sync for Producer0 {}

impl Producer0 {
    /// A producer for `topic` (its handle is made with the first batch).
    pub fn new(
        config: &ClientConfig,
        reports: &Arc<Reports>,
        topic: &CStr,
    ) -> Result<Self, Failure> {
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
        // The second answer also says which of the topic's partitions have
        // a leader, until the first statistics do.
        let name = topic.to_string_lossy().into_owned();
        let mut led = 0;
        for _ in 0..2 {
            if let Ok(metadata) = inner.client().fetch_metadata(None, METADATA_WAIT) {
                led = metadata
                    .topics()
                    .iter()
                    .find(|found| found.name() == name && found.error().is_none())
                    .map_or(0, |found| {
                        leaders_mask(found.partitions().iter().map(|partition| {
                            (
                                partition.id(),
                                partition.leader() >= 0 && partition.error().is_none(),
                            )
                        }))
                    });
            }
        }
        // SAFETY: the client pointer is valid while `inner` lives, and the
        // queue reference is destroyed in Drop, before `inner`.
        let queue = unsafe { rdsys::rd_kafka_queue_get_main(inner.client().native_ptr()) };
        Ok(Self {
            inner: ManuallyDrop::new(inner),
            topic: AtomicPtr::new(std::ptr::null_mut()),
            queue,
            topic_name: name,
            led: AtomicU64::new(led),
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

    /// The partition for a keyless batch: the `turn`-th of the topic's
    /// partitions that had a leader in the client's last statistics (every
    /// second), or -1 (RD_KAFKA_PARTITION_UA: librdkafka's partitioner
    /// picks, per message) before the first statistics, when none had one
    /// or when the topic has more than 64.
    pub fn partition_for(&self, turn: u32) -> i32 {
        pick_partition(self.led.load(Ordering::Acquire), turn)
    }

    /// Notes which partitions of the topic have a leader now.
    fn note_leaders(&self, statistics: &Statistics) {
        let led = statistics.topics.get(&self.topic_name).map_or(0, |topic| {
            leaders_mask(topic.partitions.values().map(|partition| {
                (
                    partition.partition,
                    partition.leader >= 0 && !partition.unknown,
                )
            }))
        });
        self.led.store(led, Ordering::Release);
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
                        self.note_leaders(&statistics);
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

/// The partitions with a leader among `partitions` (a topic's, as
/// (number, has a leader); librdkafka's own "unassigned" one is -1) as a
/// bit mask; 0 when any is numbered 64 or more (the mask cannot say).
fn leaders_mask(partitions: impl Iterator<Item = (i32, bool)>) -> u64 {
    let mut led = 0u64;
    for (number, has_leader) in partitions {
        match number {
            0..=63 if has_leader => led |= 1 << number,
            0..=63 => {}
            64.. => return 0,
            _ => {}
        }
    }
    led
}

/// The `turn`-th (modulo their count) of the partitions `led` marks, or
/// -1 when it marks none.
fn pick_partition(led: u64, turn: u32) -> i32 {
    let count = led.count_ones();
    if count == 0 {
        return -1;
    }
    let mut rest = led;
    for _ in 0..turn % count {
        rest &= rest - 1;
    }
    rest.trailing_zeros() as i32
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
        // The closed client's threads allocated with `malloc` (message
        // copies, request and compression buffers), which is mimalloc's
        // (Cargo.toml: "override"), in heaps it keeps a while after the
        // threads end: give what they freed back. Only a producer
        // replacement (a broker restarted without its state) or the
        // output's end gets here.
        // SAFETY: mi_collect only returns free memory of the allocator.
        unsafe { mi_collect(true) };
    }
}

unsafe extern "C" {
    /// mimalloc's own: frees what its heaps hold back (`force`: all of
    /// it, abandoned heaps of ended threads too).
    fn mi_collect(force: bool);
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

#[cfg(test)]
mod tests {
    use super::{leaders_mask, pick_partition};

    fn partition(number: i32, leader: i32) -> (i32, bool) {
        (number, leader >= 0)
    }

    #[test]
    fn keyless_batches_take_the_led_partitions_in_turn() {
        // Partitions 0, 2 and 3 have leaders; 1 has none; -1 is
        // librdkafka's unassigned partition.
        let partitions = [
            partition(-1, -1),
            partition(0, 1),
            partition(1, -1),
            partition(2, 2),
            partition(3, 1),
        ];
        let led = leaders_mask(partitions.into_iter());
        assert_eq!(led, 0b1101);
        let picked: Vec<i32> = (0..7).map(|turn| pick_partition(led, turn)).collect();
        assert_eq!(picked, [0, 2, 3, 0, 2, 3, 0]);
        // No statistics yet, or no leader anywhere: librdkafka picks.
        assert_eq!(pick_partition(0, 5), -1);
        // More than 64 partitions: the mask cannot say, librdkafka picks.
        assert_eq!(leaders_mask((0..70).map(|p| partition(p, 1))), 0);
        assert_eq!(
            pick_partition(leaders_mask((0..70).map(|p| partition(p, 1))), 3),
            -1
        );
        assert_eq!(leaders_mask((0..64).map(|p| partition(p, 1))), u64::MAX);
        assert_eq!(pick_partition(u64::MAX, 63), 63);
        assert_eq!(pick_partition(u64::MAX, 64), 0);
    }
}
