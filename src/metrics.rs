//! Counters, the periodic stats line and the exit summary.
//!
//! Each input has one [`InputCounters`] and each output one
//! [`OutputCounters`], written by the stages with relaxed atomic adds (one
//! per batch, never per record) and read here. [`RingGauges`] hold the
//! occupancy of every ring, summed per stage ([`InputRings`]: per input). [`LatencyHistogram`] counts
//! batch latencies into fixed buckets and [`Health`] says whether every
//! stage is running; `metrics_server` serves all of it over HTTP.
//!
//! [`table`] names every counter once: its summary key, its metric, its
//! words on the stats line. The [`Registry`] reads an entry's counters
//! through it ([`Registry::input_counters`], [`Registry::output_counters`])
//! for the summary and `/metrics`, and [`stats`] for the stats line.
//! Which counters an input shows depends on its [`SourceKind`].

#[cfg(test)]
mod docs;
mod stats;
pub(crate) mod table;

pub(crate) use stats::StatsReporter;

// The one place metrics reads socket options (SO_MEMINFO drop counts):
// `UdpInputStats::kernel_drops`.
use crate::ring::Gauge;
use crate::sockopt::SocketStats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Adds `amount` to `counter` unless it is 0: the counts of rare events
/// (invalid, truncated records), tallied per batch, then added once, so a
/// clean batch writes no shared cache line.
pub(crate) fn add_count(counter: &AtomicU64, amount: u64) {
    if amount > 0 {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub(crate) struct InputCounters {
    /// Records framed, invalid ones included.
    pub records: AtomicU64,
    /// Bytes consumed from the source.
    pub bytes: AtomicU64,
    pub invalid: AtomicU64,
    pub truncated: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub files_opened: AtomicU64,
    /// Matches that could not be opened or are not regular files.
    pub files_skipped: AtomicU64,
    pub files_truncated: AtomicU64,
    pub read_errors: AtomicU64,
    /// New files that waited because `--max-open-files` were open.
    pub files_waiting: AtomicU64,
    /// Records the transform evaluated and kept (`--sql`, routes).
    pub kept: AtomicU64,
    /// Records the query's `WHERE` dropped.
    pub filtered: AtomicU64,
    /// Records whose evaluation had at least one runtime error (a value
    /// became NULL).
    pub transform_errors: AtomicU64,
}

#[derive(Default)]
pub(crate) struct OutputCounters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Failed attempts that were retried (equal to `write_errors`).
    pub retries: AtomicU64,
    pub write_errors: AtomicU64,
    /// Batches a receiver refused for good (HTTP 4xx other than 408/429).
    pub rejects: AtomicU64,
    /// Records of rejected batches appended to `--dead-letter`.
    pub dead_lettered: AtomicU64,
    /// Records of rejected batches dropped (no `--dead-letter`).
    pub rejected_dropped: AtomicU64,
    /// Workers retrying a batch right now: the output is failing while
    /// this is above zero.
    pub failing_workers: AtomicU32,
    /// Batches handed to this output's workers (queued in their
    /// dispatcher→worker rings or in a worker's hands) and not yet written
    /// or rejected.
    pub held: Held,
    /// Partial last lines (a crash cut a write) a `file:` output found at
    /// an open and ended with a newline, where they could not be cut and
    /// written again (no `--data-dir`, or a file reopened after SIGHUP).
    pub torn_lines: AtomicU64,
    /// Records the routes sent to this output (counted while any output
    /// has a route).
    pub routed: AtomicU64,
    /// Records the output's route condition turned away.
    pub skipped: AtomicU64,
    /// Messages a `kafka:` output's producers hold (queued or awaiting the
    /// broker's acknowledgement); 0 for other outputs.
    pub queue_messages: AtomicU64,
    /// The mean broker round-trip time a `kafka:` output's client last
    /// measured, in microseconds; 0 until measured and for other outputs.
    pub rtt_us: AtomicU64,
}

/// Batches, and the records they carry, that a stage holds outside any
/// ring: one add when it takes a batch and one subtract when it lets go
/// (per batch, never per record). Read to say what a drain left behind.
#[derive(Default)]
pub(crate) struct Held {
    batches: AtomicU64,
    records: AtomicU64,
}

impl Held {
    pub fn take(&self, records: u32) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records
            .fetch_add(u64::from(records), Ordering::Relaxed);
    }

    pub fn release(&self, records: u32) {
        self.batches.fetch_sub(1, Ordering::Relaxed);
        self.records
            .fetch_sub(u64::from(records), Ordering::Relaxed);
    }

    /// `(batches, records)`.
    pub fn load(&self) -> (u64, u64) {
        (load(&self.batches), load(&self.records))
    }
}

impl OutputCounters {
    pub fn is_failing(&self) -> bool {
        self.failing_workers.load(Ordering::Relaxed) > 0
    }
}

/// The crate version this binary was built from.
pub(crate) const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Its git commit (`abc1234`, `abc1234-dirty` or `unknown`; see build.rs).
pub(crate) const BUILD_COMMIT: &str = env!("RINGWAY_GIT_COMMIT");
/// The cargo profile it was built with (`release` or `debug`).
pub(crate) const BUILD_PROFILE: &str = env!("RINGWAY_BUILD_PROFILE");
/// What `--version` prints after the name: `0.1.0 (abc1234, release)`.
pub(crate) const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("RINGWAY_GIT_COMMIT"),
    ", ",
    env!("RINGWAY_BUILD_PROFILE"),
    ")"
);

/// Upper bounds of `ringway_batch_latency_seconds`'s buckets, in seconds;
/// a last bucket (`+Inf`) takes everything above.
pub(crate) const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Time from a batch's creation by its input to its acceptance by the last
/// output: one relaxed add per bucket hit and one to the sum, no lock, no
/// allocation.
#[derive(Default)]
pub(crate) struct LatencyHistogram {
    /// Observations per bucket, not cumulative; the last is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let index = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations per bucket (not cumulative) and their sum in seconds.
    pub fn snapshot(&self) -> ([u64; LATENCY_BUCKETS_SECONDS.len() + 1], f64) {
        let buckets = std::array::from_fn(|index| load(&self.buckets[index]));
        (buckets, load(&self.sum_nanos) as f64 / 1e9)
    }
}

/// What `/healthz` looks at: atomics only.
pub(crate) struct Health {
    /// Set at a stop signal or when the drain at EOF starts.
    pub shutdown: Arc<AtomicBool>,
    /// Every stage thread by name, with a flag that its end clears.
    pub threads: Vec<(String, Arc<AtomicBool>)>,
}

/// HTTP status codes the OTLP receiver sends, in the order they are counted.
pub(crate) const HTTP_STATUS_CODES: [u16; 13] = [
    200, 400, 401, 404, 405, 408, 411, 413, 415, 429, 431, 500, 503,
];

/// An OTLP input's counters, written by its I/O worker.
#[derive(Default)]
pub(crate) struct OtlpCounters {
    /// Responses sent, by status code (indexed like [`HTTP_STATUS_CODES`]).
    pub responses: [AtomicU64; HTTP_STATUS_CODES.len()],
    /// Log records of accepted requests put into the pipeline.
    pub records_accepted: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// New connections closed at once: the table was full and none idle.
    pub connections_refused: AtomicU64,
    /// Idle keep-alive connections closed to make room for a new one.
    pub connections_evicted: AtomicU64,
    /// Requests that did not arrive whole within --otlp-read-timeout.
    pub read_timeouts: AtomicU64,
    /// Keep-alive connections closed after --otlp-idle-timeout.
    pub idle_closed: AtomicU64,
    /// Arrays and maps nested more than 32 deep in accepted requests,
    /// written as null.
    pub values_too_deep: AtomicU64,
    /// Requests answered 401: no `Authorization: Bearer` with a token of
    /// the input's `auth_token_file`.
    pub auth_refused: AtomicU64,
    /// TLS (`otlp:…,tls`, HTTPS) and reloads of its credentials.
    pub tls: Arc<TlsCounters>,
}

impl OtlpCounters {
    pub fn count_response(&self, status: u16) {
        let index = HTTP_STATUS_CODES
            .iter()
            .position(|&code| code == status)
            .unwrap_or(HTTP_STATUS_CODES.len() - 2); // an unlisted code counts as 500
        self.responses[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn responses(&self, status: u16) -> u64 {
        HTTP_STATUS_CODES
            .iter()
            .position(|&code| code == status)
            .map_or(0, |index| load(&self.responses[index]))
    }

    /// `{"200": n, ...}` with every code sent at least once.
    fn responses_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (index, code) in HTTP_STATUS_CODES.iter().enumerate() {
            let count = load(&self.responses[index]);
            if count > 0 {
                map.insert(code.to_string(), count.into());
            }
        }
        map.into()
    }
}

/// A TCP input's connection counters, written by its I/O worker.
#[derive(Default)]
pub(crate) struct TcpCounters {
    pub connections_accepted: AtomicU64,
    /// New connections closed at once: --tcp-max-connections were open
    /// and none of them was still in its TLS handshake.
    pub connections_refused: AtomicU64,
    /// Connections still in their TLS handshake closed (the oldest first)
    /// to make room for a new one.
    pub connections_evicted: AtomicU64,
    /// Connections closed after --tcp-idle-timeout without data.
    pub idle_closed: AtomicU64,
    /// TLS (`tcp:…,tls`, RFC 5425) and reloads of its credentials.
    pub tls: Arc<TlsCounters>,
}

/// The TLS counters of a TCP or OTLP input (zero on a plaintext one),
/// written by its I/O worker, and its credential reloads, written by the
/// signal thread at SIGHUP (`crate::reload`).
#[derive(Default)]
pub(crate) struct TlsCounters {
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// TLS connections closed for a handshake not done within
    /// --tls-handshake-timeout.
    pub tls_handshake_timeouts: AtomicU64,
    /// TLS connections closed because they failed their handshake.
    pub tls_handshake_errors: AtomicU64,
    /// TLS connections closed because they opened with plaintext.
    pub tls_plaintext: AtomicU64,
    /// TLS connections closed for a record that is not TLS or does not
    /// decrypt.
    pub tls_bad_records: AtomicU64,
    /// TLS connections refused under mutual TLS: no client certificate,
    /// or one that does not chain to the client CA.
    pub tls_client_cert_refused: AtomicU64,
    /// SIGHUPs after which the input serves with its files read anew
    /// (certificate, key and client CA; an OTLP input's auth_token_file).
    pub credential_reloads: AtomicU64,
    /// SIGHUPs after which a file was bad: the input kept what it had.
    pub credential_reload_failures: AtomicU64,
}

/// A UDP input's drop counters: its sockets (read with SO_MEMINFO) and the
/// highest SO_RXQ_OVFL count each socket's worker saw.
#[derive(Default)]
pub(crate) struct UdpInputStats {
    pub sockets: Vec<SocketStats>,
    pub rxq_overflow: Vec<Arc<AtomicU64>>,
}

impl UdpInputStats {
    /// Datagrams the kernel dropped on this input's sockets.
    pub fn kernel_drops(&self) -> u64 {
        self.sockets
            .iter()
            .filter_map(SocketStats::kernel_drops)
            .sum()
    }

    /// The same, as the SO_RXQ_OVFL ancillary data last reported it (it
    /// arrives with the next datagram, so it may lag).
    pub fn rxq_overflow_drops(&self) -> u64 {
        self.rxq_overflow.iter().map(|count| load(count)).sum()
    }
}

/// The gauges of one input's rings, shared by its lanes (the stages'
/// totals in [`RingGauges`] are their sums).
#[derive(Default)]
pub(crate) struct InputRings {
    pub io_to_cpu: Arc<Gauge>,
    pub cpu_to_dispatcher: Arc<Gauge>,
}

/// One gauge per stage: the dispatcher→worker rings share theirs; the two
/// per-input stages read the sum of every input's [`InputRings`].
#[derive(Default)]
pub(crate) struct RingGauges {
    pub io_to_cpu: Arc<Gauge>,
    pub cpu_to_dispatcher: Arc<Gauge>,
    pub dispatcher_to_worker: Arc<Gauge>,
}

pub(crate) fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

pub(crate) struct Registry {
    pub input_names: Vec<String>,
    pub inputs: Vec<Arc<InputCounters>>,
    /// Per input: its UDP drop counters, `None` for other kinds.
    pub udp: Vec<Option<UdpInputStats>>,
    pub output_names: Vec<String>,
    pub outputs: Vec<Arc<OutputCounters>>,
    pub rings: RingGauges,
    /// Per input: its rings' gauges (`ringway_input_ring_occupancy`).
    pub input_rings: Vec<InputRings>,
    /// The batch the dispatcher holds until every output has taken it.
    pub dispatcher_held: Arc<Held>,
    /// Per input: an OTLP input's HTTP counters, `None` for other kinds.
    pub otlp: Vec<Option<Arc<OtlpCounters>>>,
    /// Per input: a TCP input's connection counters, `None` for others.
    pub tcp: Vec<Option<Arc<TcpCounters>>>,
    /// Per input: delivered watermarks of a file input, `None` for others.
    pub file_offsets: Vec<Option<Arc<crate::checkpoint::AckedOffsets>>>,
    pub latency: Arc<LatencyHistogram>,
    pub health: Health,
}

/// Totals at one instant, for rates.
#[derive(Clone, Copy, Default)]
struct Totals {
    records_in: u64,
    bytes_in: u64,
    records_out: u64,
    bytes_out: u64,
}

/// Which kind of source an input reads; it picks the counters the input
/// shows beside the ones every input has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    File,
    Udp,
    Tcp,
    Otlp,
    /// A kind with no counters of its own.
    Other,
}

impl Registry {
    fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for input in &self.inputs {
            totals.records_in += load(&input.records);
            totals.bytes_in += load(&input.bytes);
        }
        // With several outputs, "out" is the first output's view: every
        // output receives every batch.
        if let Some(output) = self.outputs.first() {
            totals.records_out = load(&output.records);
            totals.bytes_out = load(&output.bytes);
        }
        totals
    }

    fn sum(&self, field: impl Fn(&InputCounters) -> &AtomicU64) -> u64 {
        self.inputs.iter().map(|c| load(field(c))).sum()
    }

    /// `Ok` when every stage thread runs and no output is failing; else
    /// why not, on one line.
    pub fn health(&self) -> Result<(), String> {
        if self.health.shutdown.load(Ordering::Relaxed) {
            return Err("shutting down: inputs are closed and the pipeline drains".to_string());
        }
        let mut problems = Vec::new();
        for (name, running) in &self.health.threads {
            if !running.load(Ordering::Acquire) {
                problems.push(format!("stage thread {name} ended"));
            }
        }
        for (name, output) in self.output_names.iter().zip(&self.outputs) {
            if output.is_failing() {
                problems.push(format!("output {name} is failing (retrying a batch)"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Bytes a file input read that are not delivered yet (by every output).
    pub fn checkpoint_lag(&self, input: usize) -> Option<u64> {
        Some(self.file_offsets.get(input)?.as_ref()?.lag())
    }

    fn total_checkpoint_lag(&self) -> u64 {
        (0..self.inputs.len())
            .filter_map(|input| self.checkpoint_lag(input))
            .sum()
    }

    /// Human description of what is still inside the pipeline: what each
    /// output's workers hold (in their dispatcher→worker rings and in hand,
    /// e.g. blocked in `open()` on a FIFO with no reader), what the
    /// dispatcher holds and what the rings before it hold.
    pub fn in_flight_description(&self) -> String {
        let rings = &self.rings;
        let mut parts: Vec<String> = self
            .output_names
            .iter()
            .zip(&self.outputs)
            .map(|(name, output)| {
                let (batches, records) = output.held.load();
                format!(
                    "output {name} holds {batches} batches ({records} records) in its workers' dispatcher→worker rings and hands"
                )
            })
            .collect();
        let (batches, records) = self.dispatcher_held.load();
        parts.push(format!(
            "the dispatcher holds {batches} batches ({records} records) not yet taken by every output"
        ));
        parts.push(format!(
            "{} io→cpu and {} cpu→dispatcher batches are queued",
            rings.io_to_cpu.occupancy(),
            rings.cpu_to_dispatcher.occupancy(),
        ));
        format!(
            "{}; read {} records, wrote {}",
            parts.join(", "),
            self.totals().records_in,
            self.totals().records_out,
        )
    }

    /// The kind of source input `input` reads.
    pub fn source_kind(&self, input: usize) -> SourceKind {
        if matches!(self.file_offsets.get(input), Some(Some(_))) {
            SourceKind::File
        } else if matches!(self.udp.get(input), Some(Some(_))) {
            SourceKind::Udp
        } else if matches!(self.tcp.get(input), Some(Some(_))) {
            SourceKind::Tcp
        } else if matches!(self.otlp.get(input), Some(Some(_))) {
            SourceKind::Otlp
        } else {
            SourceKind::Other
        }
    }

    /// Input `index`'s counters of the table, in table order: those every
    /// input has, then those of its kind.
    pub fn input_counters(&self, index: usize) -> Vec<(&'static table::Meta, u64)> {
        let mut counters: Vec<_> = table::INPUT.read(&*self.inputs[index]).collect();
        if let Some(rings) = self.input_rings.get(index) {
            counters.extend(table::INPUT_RINGS.read(rings));
        }
        match self.source_kind(index) {
            SourceKind::File => {
                counters.extend(table::FILE.read(&*self.inputs[index]));
                if let Some(Some(offsets)) = self.file_offsets.get(index) {
                    counters.extend(table::CHECKPOINT.read(&**offsets));
                }
            }
            SourceKind::Udp => {
                let udp = self.udp[index].as_ref().expect("a UDP input has UDP stats");
                counters.extend(table::UDP.read(udp));
            }
            SourceKind::Tcp => {
                let tcp = self.tcp[index].as_deref().expect("a TCP input's");
                counters.extend(table::TCP.read(tcp).chain(table::TLS.read(&tcp.tls)));
            }
            SourceKind::Otlp => {
                let otlp = self.otlp[index].as_deref().expect("an OTLP input's");
                counters.extend(table::OTLP.read(otlp).chain(table::TLS.read(&otlp.tls)));
            }
            SourceKind::Other => {}
        }
        counters
    }

    /// Output `index`'s counters of the table, in table order.
    pub fn output_counters(&self, index: usize) -> Vec<(&'static table::Meta, u64)> {
        table::OUTPUT.read(&*self.outputs[index]).collect()
    }

    /// An entry of the summary: its name and every counter with a summary
    /// key.
    fn summary_entry(
        name: &str,
        counters: Vec<(&'static table::Meta, u64)>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut entry = serde_json::Map::new();
        entry.insert("name".into(), name.into());
        for (meta, value) in counters {
            if let Some(key) = meta.key {
                entry.insert(key.into(), value.into());
            }
        }
        entry
    }

    pub fn summary_json(&self, elapsed: Duration) -> String {
        let inputs: Vec<serde_json::Value> = self
            .input_names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let mut entry = Self::summary_entry(name, self.input_counters(index));
                if let Some(Some(otlp)) = self.otlp.get(index) {
                    entry.insert("http_responses".into(), otlp.responses_json());
                }
                entry.into()
            })
            .collect();
        let outputs: Vec<serde_json::Value> = self
            .output_names
            .iter()
            .enumerate()
            .map(|(index, name)| Self::summary_entry(name, self.output_counters(index)).into())
            .collect();
        let summary = serde_json::json!({
            "elapsed_s": elapsed.as_secs_f64(),
            "inputs": inputs,
            "outputs": outputs,
        });
        format!("{summary:#}\n")
    }

    /// The one-line summary printed to stderr at exit.
    pub fn exit_line(&self, elapsed: Duration) -> String {
        let totals = self.totals();
        // Only file inputs skip files.
        let has_files = (0..self.inputs.len()).any(|i| self.source_kind(i) == SourceKind::File);
        let files_skipped = if has_files {
            format!(", files skipped {}", self.sum(|c| &c.files_skipped))
        } else {
            String::new()
        };
        let seconds = elapsed.as_secs_f64().max(1e-9);
        format!(
            "ringway: done in {:.2}s: read {} records ({:.1} MB), wrote {} records ({:.1} MB), {:.0} records/s; invalid {}, truncated {}{}",
            seconds,
            totals.records_in,
            totals.bytes_in as f64 / 1e6,
            totals.records_out,
            totals.bytes_out as f64 / 1e6,
            totals.records_in as f64 / seconds,
            self.sum(|c| &c.invalid),
            self.sum(|c| &c.truncated),
            files_skipped,
        )
    }
}
