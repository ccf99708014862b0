//! Counters, the periodic stats line and the exit summary.
//!
//! Each input has one [`InputCounters`] and each output one
//! [`OutputCounters`], written by the stages with relaxed atomic adds (one
//! per batch, never per record) and read here. [`RingGauges`] hold the
//! occupancy of every ring, summed per stage. [`LatencyHistogram`] counts
//! batch latencies into fixed buckets and [`Health`] says whether every
//! stage is running; `metrics_server` serves all of it over HTTP.
//!
//! Which counters an input shows depends on its [`SourceKind`]: the tables
//! [`INPUT_COUNTERS`] (every input), [`FILE_INPUT_COUNTERS`],
//! [`TCP_INPUT_COUNTERS`] and [`OTLP_INPUT_COUNTERS`] name them once for
//! the summary. [`StatsReporter`] turns two readings of the counters into
//! the stderr stats line, in the [`StatsFormat`] asked for.

use crate::ring::Gauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Batches handed to this output's workers (queued in their slots or
    /// in a worker's hands) and not yet written or rejected.
    pub held: Held,
    /// Partial last lines (a crash cut a write) a `file:` output found at
    /// an open and ended with a newline, where they could not be cut and
    /// written again (no `--data-dir`, or a file reopened after SIGHUP).
    pub torn_lines: AtomicU64,
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
pub(crate) const HTTP_STATUS_CODES: [u16; 12] =
    [200, 400, 404, 405, 408, 411, 413, 415, 429, 431, 500, 503];

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
    /// New connections closed at once: --tcp-max-connections were open.
    pub connections_refused: AtomicU64,
    /// Connections closed after --tcp-idle-timeout without data.
    pub idle_closed: AtomicU64,
}

/// A UDP input's drop counters: its sockets (read with SO_MEMINFO) and the
/// highest SO_RXQ_OVFL count each socket's worker saw.
#[derive(Default)]
pub(crate) struct UdpInputStats {
    pub sockets: Vec<crate::sockopt::SocketStats>,
    pub rxq_overflow: Vec<Arc<AtomicU64>>,
}

impl UdpInputStats {
    /// Datagrams the kernel dropped on this input's sockets.
    pub fn kernel_drops(&self) -> u64 {
        self.sockets
            .iter()
            .filter_map(crate::sockopt::SocketStats::kernel_drops)
            .sum()
    }

    /// The same, as the SO_RXQ_OVFL ancillary data last reported it (it
    /// arrives with the next datagram, so it may lag).
    pub fn rxq_overflow_drops(&self) -> u64 {
        self.rxq_overflow.iter().map(|count| load(count)).sum()
    }
}

/// One gauge per stage, shared by every ring of that stage.
#[derive(Default)]
pub(crate) struct RingGauges {
    pub io_to_cpu: Arc<Gauge>,
    pub cpu_to_dispatch: Arc<Gauge>,
    pub worker_slots: Arc<Gauge>,
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

/// One counter of a table: its key in the summary and where it is kept.
pub(crate) type Counter<T> = (&'static str, fn(&T) -> &AtomicU64);

/// The counters every input carries, whatever its kind (DESIGN §7).
pub(crate) const INPUT_COUNTERS: [Counter<InputCounters>; 5] = [
    ("records", |c| &c.records),
    ("bytes", |c| &c.bytes),
    ("invalid", |c| &c.invalid),
    ("truncated", |c| &c.truncated),
    ("dead_lettered", |c| &c.dead_lettered),
];

/// The counters only a file input carries: the files it found and read.
pub(crate) const FILE_INPUT_COUNTERS: [Counter<InputCounters>; 5] = [
    ("files_opened", |c| &c.files_opened),
    ("files_skipped", |c| &c.files_skipped),
    ("files_truncated", |c| &c.files_truncated),
    ("files_waiting", |c| &c.files_waiting),
    ("read_errors", |c| &c.read_errors),
];

/// A TCP input's connection counters.
pub(crate) const TCP_INPUT_COUNTERS: [Counter<TcpCounters>; 3] = [
    ("connections_accepted", |c| &c.connections_accepted),
    ("connections_refused", |c| &c.connections_refused),
    ("idle_closed", |c| &c.idle_closed),
];

/// An OTLP input's request and connection counters (its responses by
/// status code are `http_responses`).
pub(crate) const OTLP_INPUT_COUNTERS: [Counter<OtlpCounters>; 7] = [
    ("records_accepted", |c| &c.records_accepted),
    ("connections_accepted", |c| &c.connections_accepted),
    ("connections_refused", |c| &c.connections_refused),
    ("connections_evicted", |c| &c.connections_evicted),
    ("read_timeouts", |c| &c.read_timeouts),
    ("idle_closed", |c| &c.idle_closed),
    ("values_too_deep", |c| &c.values_too_deep),
];

/// How the stats line reads (`--stats-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StatsFormat {
    /// Record and byte rates in and out; problems and queued batches only when there are any.
    #[default]
    Short,
    /// Rates, every stage's ring occupancy, the error counters' totals and the checkpoint lag.
    Long,
}

/// While nothing moves, a line at most this often (a sign of life).
const IDLE_LINE_INTERVAL: Duration = Duration::from_secs(60);

/// The counters the stats line compares between two readings: when none
/// changed, every ring is empty and nothing waits for delivery, the
/// interval was idle.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Reading {
    totals: (u64, u64, u64, u64),
    invalid: u64,
    truncated: u64,
    dead_lettered: u64,
    files_skipped: u64,
    read_errors: u64,
    kernel_drops: u64,
    retries: u64,
    rejects: u64,
    /// OTLP responses: 200, 429 and every other code.
    otlp: (u64, u64, u64),
}

impl Reading {
    fn take(registry: &Registry) -> Self {
        let totals = registry.totals();
        let output_sum = |field: fn(&OutputCounters) -> &AtomicU64| -> u64 {
            registry.outputs.iter().map(|c| load(field(c))).sum()
        };
        let otlp_sum = |status: u16| -> u64 {
            registry
                .otlp
                .iter()
                .flatten()
                .map(|otlp| otlp.responses(status))
                .sum()
        };
        let all: u64 = HTTP_STATUS_CODES.iter().map(|&code| otlp_sum(code)).sum();
        let (ok, busy) = (otlp_sum(200), otlp_sum(429));
        Self {
            totals: (
                totals.records_in,
                totals.bytes_in,
                totals.records_out,
                totals.bytes_out,
            ),
            invalid: registry.sum(|c| &c.invalid),
            truncated: registry.sum(|c| &c.truncated),
            dead_lettered: registry.sum(|c| &c.dead_lettered),
            files_skipped: registry.sum(|c| &c.files_skipped),
            read_errors: registry.sum(|c| &c.read_errors),
            kernel_drops: registry.kernel_drops(),
            retries: output_sum(|c| &c.retries),
            rejects: output_sum(|c| &c.rejects),
            otlp: (ok, busy, all - ok - busy),
        }
    }
}

/// Prints the stats line: rates over the time since the previous reading,
/// taken from the counters, and nothing for an idle interval but a line a
/// minute.
pub(crate) struct StatsReporter {
    format: StatsFormat,
    last: Reading,
    last_at: Instant,
    /// When the last line was printed (or the reporter made).
    last_line_at: Instant,
    /// When the current idle stretch began; `None` while things move.
    idle_since: Option<Instant>,
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

    /// Datagrams dropped by the kernel on every UDP input's sockets.
    pub fn kernel_drops(&self) -> u64 {
        self.udp
            .iter()
            .flatten()
            .map(UdpInputStats::kernel_drops)
            .sum()
    }

    /// Human description of what is still inside the pipeline: what each
    /// output's workers hold (in their slots and in hand, e.g. blocked in
    /// `open()` on a FIFO with no reader), what the dispatcher holds and
    /// what the rings before it hold.
    pub fn in_flight_description(&self) -> String {
        let rings = &self.rings;
        let mut parts: Vec<String> = self
            .output_names
            .iter()
            .zip(&self.outputs)
            .map(|(name, output)| {
                let (batches, records) = output.held.load();
                format!(
                    "output {name} holds {batches} batches ({records} records) in its workers' slots and hands"
                )
            })
            .collect();
        let (batches, records) = self.dispatcher_held.load();
        parts.push(format!(
            "the dispatcher holds {batches} batches ({records} records) not yet taken by every output"
        ));
        parts.push(format!(
            "{} read→scan and {} scan→dispatch batches are queued",
            rings.io_to_cpu.occupancy(),
            rings.cpu_to_dispatch.occupancy(),
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

    /// Input `index`'s summary entry: its name, the counters every input
    /// has, and those of its kind.
    fn input_summary(&self, index: usize, name: &str, c: &InputCounters) -> serde_json::Value {
        let mut entry = serde_json::Map::new();
        entry.insert("name".into(), name.into());
        for (key, field) in INPUT_COUNTERS {
            entry.insert(key.into(), load(field(c)).into());
        }
        match self.source_kind(index) {
            SourceKind::File => {
                for (key, field) in FILE_INPUT_COUNTERS {
                    entry.insert(key.into(), load(field(c)).into());
                }
                if let Some(lag) = self.checkpoint_lag(index) {
                    entry.insert("checkpoint_lag_bytes".into(), lag.into());
                }
            }
            SourceKind::Udp => {
                let udp = self.udp[index].as_ref().expect("a UDP input has UDP stats");
                entry.insert("kernel_drops".into(), udp.kernel_drops().into());
                entry.insert(
                    "kernel_drops_rxq_ovfl".into(),
                    udp.rxq_overflow_drops().into(),
                );
            }
            SourceKind::Tcp => {
                let tcp = self.tcp[index]
                    .as_ref()
                    .expect("a TCP input has TCP counters");
                for (key, field) in TCP_INPUT_COUNTERS {
                    entry.insert(key.into(), load(field(tcp)).into());
                }
            }
            SourceKind::Otlp => {
                let otlp = self.otlp[index]
                    .as_ref()
                    .expect("an OTLP input has OTLP counters");
                entry.insert("http_responses".into(), otlp.responses_json());
                for (key, field) in OTLP_INPUT_COUNTERS {
                    entry.insert(key.into(), load(field(otlp)).into());
                }
            }
            SourceKind::Other => {}
        }
        entry.into()
    }

    pub fn summary_json(&self, elapsed: Duration) -> String {
        let inputs: Vec<serde_json::Value> = self
            .input_names
            .iter()
            .zip(&self.inputs)
            .enumerate()
            .map(|(index, (name, c))| self.input_summary(index, name, c))
            .collect();
        let outputs: Vec<serde_json::Value> = self
            .output_names
            .iter()
            .zip(&self.outputs)
            .map(|(name, c)| {
                serde_json::json!({
                    "name": name,
                    "records": load(&c.records),
                    "bytes": load(&c.bytes),
                    "retries": load(&c.retries),
                    "write_errors": load(&c.write_errors),
                    "rejects": load(&c.rejects),
                    "dead_lettered": load(&c.dead_lettered),
                    "rejected_dropped": load(&c.rejected_dropped),
                    "torn_lines": load(&c.torn_lines),
                })
            })
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

impl StatsReporter {
    pub fn new(format: StatsFormat) -> Self {
        let now = Instant::now();
        Self {
            format,
            last: Reading::default(),
            last_at: now,
            last_line_at: now,
            idle_since: None,
        }
    }

    /// The stats line for the interval since the previous call, or `None`
    /// when nothing moved in it (no counter changed, every ring empty, no
    /// checkpoint lag) and a line was printed less than
    /// [`IDLE_LINE_INTERVAL`] ago.
    pub fn line(&mut self, registry: &Registry) -> Option<String> {
        let now = Instant::now();
        let reading = Reading::take(registry);
        let rings = &registry.rings;
        let stages = [
            ("read→scan", &rings.io_to_cpu),
            ("scan→dispatch", &rings.cpu_to_dispatch),
            ("worker slots", &rings.worker_slots),
        ];
        let queued = stages.iter().any(|(_, gauge)| gauge.occupancy() > 0);
        // Read bytes not yet delivered are a stall, not idleness, even when
        // no ring holds them (a worker blocked in a write does).
        let checkpoint_lag = registry.total_checkpoint_lag();
        let idle = reading == self.last && !queued && checkpoint_lag == 0;
        let before = std::mem::replace(&mut self.last, reading);
        let interval_start = std::mem::replace(&mut self.last_at, now);
        let seconds = now.duration_since(interval_start).as_secs_f64().max(1e-9);
        let line = if idle {
            let since = *self.idle_since.get_or_insert(interval_start);
            if now.duration_since(self.last_line_at) < IDLE_LINE_INTERVAL {
                return None;
            }
            format!(
                "ringway: idle for {}s: nothing read, written or queued",
                now.duration_since(since).as_secs()
            )
        } else {
            self.idle_since = None;
            match self.format {
                StatsFormat::Short => {
                    short_line(&before, &reading, seconds, &stages, checkpoint_lag)
                }
                StatsFormat::Long => long_line(registry, &before, &reading, seconds, &stages),
            }
        };
        self.last_line_at = now;
        Some(line)
    }
}

/// `ringway: in R rec/s B/s, out R rec/s B/s over Ns`, then what went wrong
/// in the interval, which stages hold batches and the checkpoint lag, each
/// only when there is any.
fn short_line(
    before: &Reading,
    now: &Reading,
    seconds: f64,
    stages: &[(&str, &Arc<Gauge>); 3],
    checkpoint_lag: u64,
) -> String {
    let (records_in, bytes_in, records_out, bytes_out) = now.totals;
    let (was_records_in, was_bytes_in, was_records_out, was_bytes_out) = before.totals;
    let mut line = format!(
        "ringway: in {} rec/s {}, out {} rec/s {} over {seconds:.1}s",
        per_second(records_in - was_records_in, seconds),
        bytes_per_second(bytes_in - was_bytes_in, seconds),
        per_second(records_out - was_records_out, seconds),
        bytes_per_second(bytes_out - was_bytes_out, seconds),
    );
    let problems: Vec<String> = [
        ("invalid", now.invalid - before.invalid),
        ("truncated", now.truncated - before.truncated),
        ("dead-lettered", now.dead_lettered - before.dead_lettered),
        ("files skipped", now.files_skipped - before.files_skipped),
        ("read errors", now.read_errors - before.read_errors),
        (
            "kernel drops",
            now.kernel_drops.saturating_sub(before.kernel_drops),
        ),
        ("output retries", now.retries - before.retries),
        ("rejects", now.rejects - before.rejects),
        ("otlp 429", now.otlp.1 - before.otlp.1),
        ("otlp errors", now.otlp.2 - before.otlp.2),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .map(|(what, count)| format!("{what} +{count}"))
    .collect();
    if !problems.is_empty() {
        line.push_str("; ");
        line.push_str(&problems.join(", "));
    }
    let queued: Vec<String> = stages
        .iter()
        .filter(|(_, gauge)| gauge.occupancy() > 0)
        .map(|(stage, gauge)| format!("{stage} {}/{}", gauge.occupancy(), gauge.capacity()))
        .collect();
    if !queued.is_empty() {
        line.push_str("; queued ");
        line.push_str(&queued.join(", "));
    }
    if checkpoint_lag > 0 {
        line.push_str(&format!("; checkpoint lag {checkpoint_lag} bytes"));
    }
    line
}

/// Everything on one line: rates, every ring, the error counters' totals
/// and the checkpoint lag.
fn long_line(
    registry: &Registry,
    before: &Reading,
    now: &Reading,
    seconds: f64,
    stages: &[(&str, &Arc<Gauge>); 3],
) -> String {
    let (records_in, bytes_in, records_out, bytes_out) = now.totals;
    let (was_records_in, was_bytes_in, was_records_out, was_bytes_out) = before.totals;
    let rings: Vec<String> = stages
        .iter()
        .map(|(stage, gauge)| format!("{stage} {}/{}", gauge.occupancy(), gauge.capacity()))
        .collect();
    let mut line = format!(
        "ringway: in {} rec/s {} | out {} rec/s {} | over {seconds:.1}s | rings {} | invalid {} truncated {} skipped files {} kernel drops {} checkpoint lag {} bytes",
        per_second(records_in - was_records_in, seconds),
        bytes_per_second(bytes_in - was_bytes_in, seconds),
        per_second(records_out - was_records_out, seconds),
        bytes_per_second(bytes_out - was_bytes_out, seconds),
        rings.join(" "),
        now.invalid,
        now.truncated,
        now.files_skipped,
        now.kernel_drops,
        registry.total_checkpoint_lag(),
    );
    if now.retries > 0 || now.rejects > 0 {
        line.push_str(&format!(
            " | output retries {} rejects {}",
            now.retries, now.rejects
        ));
    }
    if registry.otlp.iter().any(Option::is_some) {
        let (ok, busy, other) = now.otlp;
        line.push_str(&format!(" | otlp 200 {ok} 429 {busy} other {other}"));
    }
    line
}

/// `count` over `seconds` per second, with enough digits that a count
/// above zero never reads as 0 (`0.25`, `3.3`, `4711`).
fn per_second(count: u64, seconds: f64) -> String {
    significant(count as f64 / seconds)
}

/// A byte rate in decimal units: `512 B/s`, `4.7 kB/s`, `1.0 MB/s`.
fn bytes_per_second(bytes: u64, seconds: f64) -> String {
    let mut rate = bytes as f64 / seconds;
    for unit in ["B/s", "kB/s", "MB/s"] {
        if rate < 1000.0 {
            return format!("{} {unit}", significant(rate));
        }
        rate /= 1000.0;
    }
    format!("{} GB/s", significant(rate))
}

/// Whole numbers from 10 up; below, two significant digits (at least one
/// decimal), so a small rate is shown, not rounded to 0.
fn significant(value: f64) -> String {
    if value <= 0.0 {
        return "0".to_string();
    }
    if value >= 10.0 {
        return format!("{value:.0}");
    }
    let decimals = (1 - value.log10().floor() as i32).clamp(1, 9) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry of one input and one output, nothing else.
    fn registry() -> Registry {
        Registry {
            input_names: vec!["tcp:127.0.0.1:0".into()],
            inputs: vec![Arc::default()],
            udp: vec![None],
            output_names: vec!["null".into()],
            outputs: vec![Arc::default()],
            rings: RingGauges::default(),
            otlp: vec![None],
            tcp: vec![Some(Arc::default())],
            file_offsets: vec![None],
            latency: Arc::default(),
            dispatcher_held: Arc::default(),
            health: Health {
                shutdown: Arc::default(),
                threads: Vec::new(),
            },
        }
    }

    #[test]
    fn idle_intervals_are_quiet_but_for_a_line_a_minute() {
        let registry = registry();
        let mut stats = StatsReporter::new(StatsFormat::Short);
        assert_eq!(stats.line(&registry), None, "nothing moved");
        // A minute after the last line, one idle line; then quiet again.
        stats.last_line_at -= IDLE_LINE_INTERVAL;
        let idle = stats.line(&registry).expect("an idle line a minute");
        assert!(idle.starts_with("ringway: idle for "), "{idle}");
        assert_eq!(stats.line(&registry), None);
        // Records moving print a line at once, with the problems counted
        // in the interval and no zero counters.
        registry.inputs[0].records.fetch_add(5, Ordering::Relaxed);
        registry.inputs[0].bytes.fetch_add(50, Ordering::Relaxed);
        registry.inputs[0].invalid.fetch_add(2, Ordering::Relaxed);
        let line = stats.line(&registry).expect("a line when records moved");
        assert!(line.starts_with("ringway: in "), "{line}");
        assert!(line.contains("; invalid +2"), "{line}");
        assert!(
            !line.contains("truncated") && !line.contains("queued"),
            "{line}"
        );
        assert_eq!(stats.line(&registry), None, "idle again");
    }

    #[test]
    fn small_rates_keep_their_digits() {
        assert_eq!(per_second(0, 10.0), "0");
        assert_eq!(per_second(4, 10.0), "0.40");
        assert_eq!(per_second(1, 60.0), "0.017");
        assert_eq!(per_second(33, 10.0), "3.3");
        assert_eq!(per_second(47_110, 10.0), "4711");
        assert_eq!(bytes_per_second(0, 1.0), "0 B/s");
        assert_eq!(bytes_per_second(120, 10.0), "12 B/s");
        assert_eq!(bytes_per_second(4_700, 1.0), "4.7 kB/s");
        assert_eq!(bytes_per_second(1_000_000, 1.0), "1.0 MB/s");
        assert_eq!(bytes_per_second(2_500_000_000, 1.0), "2.5 GB/s");
    }
}
