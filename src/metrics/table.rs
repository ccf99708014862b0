//! The counter table: every number ringway counts, named once.
//!
//! A [`Family`] is one Prometheus metric: its name, [`Kind`], labels and
//! help. A [`Counter`] is one number an entry (an input, an output or a
//! ring stage) carries: its [`Meta`] (its key in `--summary-json`, the
//! family and fixed labels of its `/metrics` sample, its words on the stats
//! line) and how to read it from the struct that keeps it. Counters are
//! grouped in [`Scope`]s by which entries carry them: [`INPUT`] and
//! [`INPUT_RINGS`] (every input), [`FILE`] and [`CHECKPOINT`] (file inputs), [`UDP`], [`TCP`],
//! [`OTLP`], [`TLS`] (TCP and OTLP inputs), [`OUTPUT`] and [`RINGS`] (each
//! of the [`RING_STAGES`]).
//!
//! The summary JSON, `/metrics`, the stats line and `docs/metrics.md` all
//! iterate these tables, so a counter added here shows in every one of
//! them. Three families are not one number per entry and are written by
//! hand where they are shown: [`BUILD_INFO`] (constant labels),
//! [`HTTP_RESPONSES`] (one sample per status code; the summary's
//! `http_responses` map) and [`BATCH_LATENCY`] (a histogram).

use super::{
    InputCounters, InputRings, OtlpCounters, OutputCounters, RingGauges, TcpCounters, TlsCounters,
};
use super::{UdpInputStats, load};
use crate::checkpoint::AckedOffsets;
use crate::ring::Gauge;

/// What a family's samples mean to Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only grows (from 0 at start); its name ends in `_total`.
    Counter,
    /// Goes up and down: a level at the instant it is read.
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One Prometheus metric family.
pub(crate) struct Family {
    pub name: &'static str,
    pub kind: Kind,
    /// Every label its samples carry, in the order they are written (for
    /// the docs; the counters' labels must match, a test checks).
    #[cfg_attr(not(test), allow(dead_code))]
    pub labels: &'static [&'static str],
    /// The `# HELP` text: one plain sentence.
    pub help: &'static str,
    /// More for docs/metrics.md (Markdown), after the help; may be empty.
    #[cfg_attr(not(test), allow(dead_code))]
    pub details: &'static str,
}

/// What a counter is, whatever struct keeps it.
pub(crate) struct Meta {
    /// Its key in the entry's `--summary-json` object (DESIGN §7: these
    /// never change); `None`: not in the summary (a gauge of the moment).
    pub key: Option<&'static str>,
    pub family: &'static Family,
    /// Labels of its sample besides the entry's own (`input`, `output`,
    /// `stage`): `reason="invalid"` sets it apart in a shared family.
    pub labels: &'static [(&'static str, &'static str)],
    pub stats: Stats,
}

/// How the stats line shows a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Its words on the short line (`files skipped +3`), shown when it
    /// grew in the interval.
    pub short: Option<&'static str>,
    /// Its words on the long line (`skipped files 0`), shown with its total.
    pub long: Option<&'static str>,
}

const NOT_ON_STATS_LINE: Stats = Stats {
    short: None,
    long: None,
};

/// A counter kept in a `T`.
pub(crate) struct Counter<T> {
    pub meta: Meta,
    pub value: fn(&T) -> u64,
}

/// A counter in `family` read by `value`, under `key` in the summary
/// (`None`: not in it).
const fn counter<T>(
    key: Option<&'static str>,
    family: &'static Family,
    value: fn(&T) -> u64,
) -> Counter<T> {
    Counter {
        meta: Meta {
            key,
            family,
            labels: &[],
            stats: NOT_ON_STATS_LINE,
        },
        value,
    }
}

impl<T> Counter<T> {
    /// The same counter, its sample told apart by `labels`.
    const fn labelled(self, labels: &'static [(&'static str, &'static str)]) -> Self {
        Counter {
            meta: Meta {
                labels,
                ..self.meta
            },
            value: self.value,
        }
    }

    /// The same counter, shown on the stats line.
    const fn shown(self, short: &'static str, long: Option<&'static str>) -> Self {
        Counter {
            meta: Meta {
                stats: Stats {
                    short: Some(short),
                    long,
                },
                ..self.meta
            },
            value: self.value,
        }
    }
}

/// The counters a kind of entry carries.
pub(crate) struct Scope<T: 'static> {
    /// Which entries carry them, for the docs: `every input`, `file inputs`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub carried_by: &'static str,
    /// The label naming the entry in `/metrics` (`input`, `output`,
    /// `stage`) and the list of the summary it is in (`input`, `output`).
    pub entry: &'static str,
    pub counters: &'static [Counter<T>],
}

impl<T> Scope<T> {
    /// Every counter of the scope read from `source`, in table order.
    pub fn read<'a>(
        &'static self,
        source: &'a T,
    ) -> impl Iterator<Item = (&'static Meta, u64)> + 'a {
        self.counters
            .iter()
            .map(move |counter| (&counter.meta, (counter.value)(source)))
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub fn metas(&'static self) -> impl Iterator<Item = &'static Meta> {
        self.counters.iter().map(|counter| &counter.meta)
    }
}

// ---------------------------------------------------------------------------
// Families, in the order /metrics and the docs list them

/// Declares each family as a `static` and lists them all, in declaration
/// order, in [`FAMILIES`]. A row is `NAME: Kind "prometheus_name" [labels]`,
/// then its help, then `details "…"` when it has any.
macro_rules! families {
    ($(
        $vis:vis $family:ident: $kind:ident $name:literal [$($label:literal),*]
            $help:literal $(details $details:literal)?;
    )*) => {
        $(
            $vis static $family: Family = Family {
                name: $name,
                kind: Kind::$kind,
                labels: &[$($label),*],
                help: $help,
                details: families!(@details $($details)?),
            };
        )*

        /// Every family, in the order `/metrics` and docs/metrics.md list them.
        pub(crate) static FAMILIES: [&Family; [$(stringify!($family)),*].len()] = [$(&$family),*];
    };
    (@details) => { "" };
    (@details $details:literal) => { $details };
}

families! {
    pub(crate) BUILD_INFO: Gauge "ringway_build_info" ["version", "commit", "profile"]
        "Always 1; the labels say which build runs: version, git commit (-dirty when built with uncommitted changes; unknown outside a git checkout) and cargo profile."
        details "The same as `ringway --version` prints.";

    INPUT_RECORDS: Counter "ringway_input_records_total" ["input"]
        "Records framed by the input, invalid ones included.";

    INPUT_BYTES: Counter "ringway_input_bytes_total" ["input"]
        "Bytes the input consumed from its source.";

    DROPPED_RECORDS: Counter "ringway_dropped_records_total" ["input", "reason"]
        "Records an input lost or set apart, by reason: kernel_drops (UDP datagrams the kernel dropped), invalid (not valid JSON or syslog; dropped, passed raw or dead-lettered per --on-invalid), truncated (cut to --max-line), dead_lettered (written to --dead-letter)."
        details "`kernel_drops` is counted by the kernel (`SO_MEMINFO`) and only UDP inputs carry it.";

    TRANSFORM_RECORDS: Counter "ringway_transform_records_total" ["input", "outcome"]
        "Records the transform (--sql, routes) evaluated, by outcome: kept, filtered (the query's WHERE dropped it), error (at least one runtime error made a value NULL; the record is also kept or filtered)."
        details "`kept` + `filtered` is every record evaluated; lines that are not valid JSON are counted as `invalid` in `ringway_dropped_records_total` instead (or evaluated as raw lines with `--on-invalid raw`). All three stay 0 for an input without a query while no output has a route. Summary keys: `kept`, `filtered`, `transform_errors`.";

    FILES_OPENED: Counter "ringway_input_files_opened_total" ["input"]
        "Files a file input opened to read.";

    FILES_SKIPPED: Counter "ringway_input_files_skipped_total" ["input"]
        "Files a file input matched but skipped: they could not be opened or are not regular files.";

    FILES_TRUNCATED: Counter "ringway_input_files_truncated_total" ["input"]
        "Times a file input found a file truncated or rewritten (while reading it, or shorter than its checkpoint) and read it again from its start.";

    FILES_WAITING: Counter "ringway_input_files_waiting_total" ["input"]
        "New files a file input found while --max-open-files were open, which waited for one to close.";

    READ_ERRORS: Counter "ringway_input_read_errors_total" ["input"]
        "Reads of a file input that failed.";

    CHECKPOINT_LAG: Gauge "ringway_checkpoint_lag_bytes" ["input"]
        "Bytes a file input read that not every output has accepted yet."
        details "What a crash would read again; 0 after a complete drain.";

    UDP_RXQ_OVERFLOW: Counter "ringway_udp_rxq_overflow_drops_total" ["input"]
        "Datagrams the kernel dropped on a UDP input's sockets as SO_RXQ_OVFL last reported them (it lags; the kernel_drops reason of ringway_dropped_records_total is exact).";

    CONNECTIONS_ACCEPTED: Counter "ringway_input_connections_accepted_total" ["input"]
        "Connections a TCP or OTLP input accepted.";

    CONNECTIONS_REFUSED: Counter "ringway_input_connections_refused_total" ["input"]
        "New connections a TCP or OTLP input closed at once because its connection table was full and none could be evicted (TCP: --tcp-max-connections, none in its TLS handshake; OTLP: none idle).";

    CONNECTIONS_EVICTED: Counter "ringway_input_connections_evicted_total" ["input"]
        "Connections an input closed to make room for a new one when its table was full: an OTLP input's idle keep-alive ones (a connection in its TLS handshake counts as idle), a TCP input's ones still in their TLS handshake; the oldest first.";

    CONNECTIONS_IDLE_CLOSED: Counter "ringway_input_connections_idle_closed_total" ["input"]
        "Connections a TCP or OTLP input closed after their idle timeout (--tcp-idle-timeout, --otlp-idle-timeout).";

    TLS_HANDSHAKES: Counter "ringway_input_tls_handshakes_total" ["input"]
        "TLS handshakes a TLS input (tcp:…,tls or otlp:…,tls) completed.";

    TLS_CLOSED: Counter "ringway_input_tls_closed_total" ["input", "reason"]
        "Connections a TLS input (tcp:…,tls or otlp:…,tls) closed before their end, by reason: handshake_timeout (not done within --tls-handshake-timeout), handshake_error (the handshake failed), plaintext (the client sent plaintext, not TLS), bad_record (a record that is not TLS or does not decrypt), client_cert_refused (mutual TLS: the client sent no certificate, or one that does not chain to --tls-client-ca or client_ca=)."
        details "Each is also a warning on stderr at the 1st, 2nd, 4th, 8th, … time. Summary keys: `tls_handshake_timeouts`, `tls_handshake_errors`, `tls_plaintext`, `tls_bad_records`, `tls_client_cert_refused`.";

    CREDENTIAL_RELOADS: Counter "ringway_input_credential_reloads_total" ["input", "outcome"]
        "SIGHUP reloads of a TCP or OTLP input's credentials (the certificate, key and client CA of a TLS input; an OTLP input's auth_token_file), by outcome: ok (read anew; every handshake and request from then on uses them), failed (a file was missing or bad: the input keeps what it had)."
        details "Connections open at the reload keep the certificate they were accepted with. A failure is also one warning on stderr saying which file and why. Summary keys: `credential_reloads`, `credential_reload_failures`.";

    OTLP_RECORDS_ACCEPTED: Counter "ringway_otlp_records_accepted_total" ["input"]
        "Log records of accepted requests an OTLP input put into the pipeline.";

    OTLP_READ_TIMEOUTS: Counter "ringway_otlp_read_timeouts_total" ["input"]
        "Requests to an OTLP input that did not arrive whole within --otlp-read-timeout.";

    pub(crate) HTTP_RESPONSES: Counter "ringway_http_responses_total" ["input", "code"]
        "Responses an OTLP input sent, by HTTP status code."
        details "One sample per status code the receiver can send, 0 included; the summary's `http_responses` object has the codes sent at least once.";

    OTLP_VALUES_TOO_DEEP: Counter "ringway_otlp_values_too_deep_total" ["input"]
        "Arrays and maps an OTLP input wrote as null: nested more than 32 deep.";

    OTLP_AUTH_REFUSED: Counter "ringway_otlp_auth_refused_total" ["input"]
        "Requests an OTLP input with auth_token_file= answered 401: no Authorization: Bearer header with one of its tokens."
        details "Also a warning on stderr at the 1st, 2nd, 4th, 8th, … time (the token is never printed).";

    OUTPUT_RECORDS: Counter "ringway_output_records_total" ["output"]
        "Records the output's sink accepted.";

    OUTPUT_BYTES: Counter "ringway_output_bytes_total" ["output"]
        "Bytes the output's sink accepted.";

    OUTPUT_RETRIES: Counter "ringway_output_retries_total" ["output"]
        "Failed writes of the output that were retried.";

    OUTPUT_WRITE_ERRORS: Counter "ringway_output_write_errors_total" ["output"]
        "Writes of the output that failed (each is retried, so this equals ringway_output_retries_total).";

    OUTPUT_REJECTS: Counter "ringway_output_rejects_total" ["output"]
        "Requests the output's receiver refused for good (HTTP 4xx other than 408/429).";

    OUTPUT_DEAD_LETTERED: Counter "ringway_output_dead_lettered_records_total" ["output"]
        "Records of batches the output's receiver refused for good that were appended to --dead-letter.";

    OUTPUT_REJECTED_DROPPED: Counter "ringway_output_rejected_dropped_records_total" ["output"]
        "Records of batches the output's receiver refused for good that were dropped (no --dead-letter).";

    OUTPUT_TORN_LINES: Counter "ringway_output_torn_lines_total" ["output"]
        "Partial last lines (left by a crash) a file output ended with a newline before appending.";

    ROUTE_RECORDS: Counter "ringway_route_records_total" ["output", "outcome"]
        "Records the routes (--where, [[output]] where) sent to the output (outcome routed) or turned away from it (outcome skipped)."
        details "Counted for every output while any output has a route (an output without one has every record routed); records the query filtered are in neither. Summary keys: `routed`, `skipped`.";

    OUTPUT_HELD_RECORDS: Gauge "ringway_output_held_records" ["output"]
        "Records the output's workers hold (in their dispatcher→worker rings or being written)."
        details "What the drain-timeout message counts.";

    OUTPUT_FAILING: Gauge "ringway_output_failing" ["output"]
        "1 while a worker of the output is retrying a batch, else 0.";

    OUTPUT_QUEUE_MESSAGES: Gauge "ringway_output_queue_messages" ["output"]
        "Messages a kafka output's client holds: queued, or sent and awaiting the broker's acknowledgement (0 for other outputs)."
        details "Bounded by the client's queue (a batch's bytes for each worker and one more, see docs/outputs.md). Summary key: `queue_messages`.";

    OUTPUT_RTT: Gauge "ringway_output_rtt_microseconds" ["output"]
        "The mean round-trip time to the brokers a kafka output's client measured over its last statistics interval (1 s), in microseconds; 0 until measured and for other outputs."
        details "Summary key: `rtt_us`.";

    RING_OCCUPANCY: Gauge "ringway_ring_occupancy" ["stage"]
        "Batches queued in the stage's rings, summed over its rings."
        details "Stages: `io_to_cpu` (I/O worker to CPU worker, a ring of 4 per lane, `--ring-io-to-cpu`), `cpu_to_dispatcher` (CPU worker to dispatcher, a ring of 16 per lane, `--ring-cpu-to-dispatcher`), `dispatcher_to_worker` (dispatcher to output workers, a ring of 1 per worker, `--ring-dispatcher-to-worker`).";

    RING_CAPACITY: Gauge "ringway_ring_capacity" ["stage"]
        "Capacity of the stage's rings in batches, summed over its rings.";

    INPUT_RING_OCCUPANCY: Gauge "ringway_input_ring_occupancy" ["input", "stage"]
        "Batches queued in one input's rings of a stage (io_to_cpu, cpu_to_dispatcher), summed over its lanes."
        details "The same as `ringway_ring_occupancy` split by input: what `ringway demo` draws as one bar per stage and input.";

    INPUT_RING_CAPACITY: Gauge "ringway_input_ring_capacity" ["input", "stage"]
        "Capacity in batches of one input's rings of a stage, summed over its lanes.";

    pub(crate) BATCH_LATENCY: Histogram "ringway_batch_latency_seconds" []
        "Time from a batch's creation by its input to its acceptance by the last output."
        details "Buckets 1 ms, 2.5 ms, 5 ms, 10 ms, 25 ms, 50 ms, 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s, 10 s, 30 s, `+Inf`; observed once per batch with lock-free atomic adds.";
}

// ---------------------------------------------------------------------------
// Counters, by the entries that carry them

/// Declares each [`Scope`] as a `static`: its doc, then
/// `NAME: Scope<Type> carried by "…", entry "…" [rows]`. A row is one
/// counter, in the order the summary and `/metrics` list them:
///
/// - `key => FAMILY`: its summary key, also the name of the atomic field
///   of `Type` it is read from, and the family of its `/metrics` sample;
/// - `key = read => FAMILY`: read by the function `read` instead; a key of
///   `_` leaves it out of the summary (a gauge of the moment);
/// - then, where needed, `{label="value"}`, the label that tells its sample
///   apart in a shared family, and `shown "short" / "long"`, its words on
///   the stats line (without `/ "long"`: on the short line only).
macro_rules! scopes {
    ($(
        $(#[$doc:meta])*
        $vis:vis $scope:ident: Scope<$type:ty>
            carried by $carried_by:literal, entry $entry:literal [$(
            $key:tt $(= $read:expr)? => $family:ident
                $({$label:ident = $value:literal})?
                $(shown $short:literal $(/ $long:literal)?)?;
        )*]
    )*) => {$(
        $(#[$doc])*
        $vis static $scope: Scope<$type> = Scope {
            carried_by: $carried_by,
            entry: $entry,
            counters: &[$(
                counter::<$type>(
                    scopes!(@key $key),
                    &$family,
                    scopes!(@read $type, $key $(, $read)?),
                )
                $(.labelled(&[(stringify!($label), $value)]))?
                $(.shown($short, scopes!(@long $($long)?)))?
            ),*],
        };
    )*};
    (@key _) => { None };
    (@key $key:ident) => { Some(stringify!($key)) };
    (@read $type:ty, $field:ident) => { |counters: &$type| load(&counters.$field) };
    (@read $type:ty, $key:tt, $read:expr) => { $read };
    (@long) => { None };
    (@long $long:literal) => { Some($long) };
}

scopes! {
    /// The counters every input carries, whatever its kind (DESIGN §7).
    pub(crate) INPUT: Scope<InputCounters> carried by "every input", entry "input" [
        records => INPUT_RECORDS;
        bytes => INPUT_BYTES;
        invalid => DROPPED_RECORDS{reason="invalid"} shown "invalid" / "invalid";
        truncated => DROPPED_RECORDS{reason="truncated"} shown "truncated" / "truncated";
        dead_lettered => DROPPED_RECORDS{reason="dead_lettered"} shown "dead-lettered";
        kept => TRANSFORM_RECORDS{outcome="kept"};
        filtered => TRANSFORM_RECORDS{outcome="filtered"} shown "filtered";
        transform_errors => TRANSFORM_RECORDS{outcome="error"} shown "transform errors";
    ]

    /// The counters only a file input carries: the files it found and read.
    pub(crate) FILE: Scope<InputCounters> carried by "file inputs", entry "input" [
        files_opened => FILES_OPENED;
        files_skipped => FILES_SKIPPED shown "files skipped" / "skipped files";
        files_truncated => FILES_TRUNCATED;
        files_waiting => FILES_WAITING;
        read_errors => READ_ERRORS shown "read errors";
    ]

    /// A file input's delivery watermark: what it read and not every output
    /// accepted (the stats line shows it on its own).
    pub(crate) CHECKPOINT: Scope<AckedOffsets> carried by "file inputs", entry "input" [
        checkpoint_lag_bytes = AckedOffsets::lag => CHECKPOINT_LAG;
    ]

    /// A UDP input's drop counters.
    pub(crate) UDP: Scope<UdpInputStats> carried by "UDP inputs", entry "input" [
        kernel_drops = UdpInputStats::kernel_drops => DROPPED_RECORDS{reason="kernel_drops"}
            shown "kernel drops" / "kernel drops";
        kernel_drops_rxq_ovfl = UdpInputStats::rxq_overflow_drops => UDP_RXQ_OVERFLOW;
    ]

    /// A TCP input's connection counters.
    pub(crate) TCP: Scope<TcpCounters> carried by "TCP inputs", entry "input" [
        connections_accepted => CONNECTIONS_ACCEPTED;
        connections_refused => CONNECTIONS_REFUSED;
        connections_evicted => CONNECTIONS_EVICTED;
        idle_closed => CONNECTIONS_IDLE_CLOSED;
    ]

    /// An OTLP input's request and connection counters (its responses by
    /// status code are [`HTTP_RESPONSES`], written by hand).
    pub(crate) OTLP: Scope<OtlpCounters> carried by "OTLP inputs", entry "input" [
        records_accepted => OTLP_RECORDS_ACCEPTED;
        connections_accepted => CONNECTIONS_ACCEPTED;
        connections_refused => CONNECTIONS_REFUSED;
        connections_evicted => CONNECTIONS_EVICTED;
        read_timeouts => OTLP_READ_TIMEOUTS;
        idle_closed => CONNECTIONS_IDLE_CLOSED;
        values_too_deep => OTLP_VALUES_TOO_DEEP;
        auth_refused => OTLP_AUTH_REFUSED shown "OTLP auth refused";
    ]

    /// The TLS counters of a TCP or OTLP input, and its credential reloads
    /// (all zero on a plaintext input without auth_token_file=).
    pub(crate) TLS: Scope<TlsCounters> carried by "TCP and OTLP inputs", entry "input" [
        tls_handshakes => TLS_HANDSHAKES;
        tls_handshake_timeouts => TLS_CLOSED{reason="handshake_timeout"}
            shown "TLS handshake timeouts";
        tls_handshake_errors => TLS_CLOSED{reason="handshake_error"} shown "TLS handshake errors";
        tls_plaintext => TLS_CLOSED{reason="plaintext"} shown "plaintext on TLS";
        tls_bad_records => TLS_CLOSED{reason="bad_record"} shown "bad TLS records";
        tls_client_cert_refused => TLS_CLOSED{reason="client_cert_refused"}
            shown "TLS client certificates refused";
        credential_reloads => CREDENTIAL_RELOADS{outcome="ok"};
        credential_reload_failures => CREDENTIAL_RELOADS{outcome="failed"}
            shown "credential reload failures";
    ]

    /// Every input's share of the two per-input ring stages.
    pub(crate) INPUT_RINGS: Scope<InputRings> carried by "every input", entry "input" [
        _ = |rings| rings.io_to_cpu.occupancy() as u64 => INPUT_RING_OCCUPANCY{stage="io_to_cpu"};
        _ = |rings| rings.cpu_to_dispatcher.occupancy() as u64
            => INPUT_RING_OCCUPANCY{stage="cpu_to_dispatcher"};
        _ = |rings| rings.io_to_cpu.capacity() as u64 => INPUT_RING_CAPACITY{stage="io_to_cpu"};
        _ = |rings| rings.cpu_to_dispatcher.capacity() as u64
            => INPUT_RING_CAPACITY{stage="cpu_to_dispatcher"};
    ]

    /// The counters every output carries.
    pub(crate) OUTPUT: Scope<OutputCounters> carried by "every output", entry "output" [
        records => OUTPUT_RECORDS;
        bytes => OUTPUT_BYTES;
        retries => OUTPUT_RETRIES shown "output retries" / "output retries";
        write_errors => OUTPUT_WRITE_ERRORS;
        rejects => OUTPUT_REJECTS shown "rejects" / "rejects";
        dead_lettered => OUTPUT_DEAD_LETTERED;
        rejected_dropped => OUTPUT_REJECTED_DROPPED;
        torn_lines => OUTPUT_TORN_LINES;
        routed => ROUTE_RECORDS{outcome="routed"};
        skipped => ROUTE_RECORDS{outcome="skipped"};
        _ = |output| output.held.load().1 => OUTPUT_HELD_RECORDS;
        _ = |output| u64::from(output.is_failing()) => OUTPUT_FAILING;
        queue_messages => OUTPUT_QUEUE_MESSAGES;
        rtt_us => OUTPUT_RTT;
    ]

    /// What every ring stage ([`RING_STAGES`]) shows in `/metrics` (the
    /// stats line writes them as `occupancy/capacity`).
    pub(crate) RINGS: Scope<Gauge> carried by "every ring stage", entry "stage" [
        _ = |gauge| gauge.occupancy() as u64 => RING_OCCUPANCY;
        _ = |gauge| gauge.capacity() as u64 => RING_CAPACITY;
    ]
}

/// A stage of rings: its `stage` label in `/metrics`, its name on the
/// stats line and its gauge.
pub(crate) struct RingStage {
    pub label: &'static str,
    pub stats: &'static str,
    pub gauge: fn(&RingGauges) -> &Gauge,
}

pub(crate) static RING_STAGES: [RingStage; 3] = [
    RingStage {
        label: "io_to_cpu",
        stats: "io→cpu",
        gauge: |rings| &rings.io_to_cpu,
    },
    RingStage {
        label: "cpu_to_dispatcher",
        stats: "cpu→dispatcher",
        gauge: |rings| &rings.cpu_to_dispatcher,
    },
    RingStage {
        label: "dispatcher_to_worker",
        stats: "dispatcher→worker",
        gauge: |rings| &rings.dispatcher_to_worker,
    },
];

/// Every scope's counters with the scope's words, in the order the docs
/// list them: inputs', outputs', rings'.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn scopes() -> [(&'static str, &'static str, Vec<&'static Meta>); 10] {
    [
        (INPUT.carried_by, INPUT.entry, INPUT.metas().collect()),
        (
            INPUT_RINGS.carried_by,
            INPUT_RINGS.entry,
            INPUT_RINGS.metas().collect(),
        ),
        (FILE.carried_by, FILE.entry, FILE.metas().collect()),
        (
            CHECKPOINT.carried_by,
            CHECKPOINT.entry,
            CHECKPOINT.metas().collect(),
        ),
        (UDP.carried_by, UDP.entry, UDP.metas().collect()),
        (TCP.carried_by, TCP.entry, TCP.metas().collect()),
        (OTLP.carried_by, OTLP.entry, OTLP.metas().collect()),
        (TLS.carried_by, TLS.entry, TLS.metas().collect()),
        (OUTPUT.carried_by, OUTPUT.entry, OUTPUT.metas().collect()),
        (RINGS.carried_by, RINGS.entry, RINGS.metas().collect()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_listed_once_and_named_as_prometheus_wants() {
        for (index, family) in FAMILIES.iter().enumerate() {
            assert!(family.name.starts_with("ringway_"), "{}", family.name);
            assert!(
                family
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not snake_case",
                family.name
            );
            assert_eq!(
                family.name.ends_with("_total"),
                family.kind == Kind::Counter,
                "{}: counters and only counters end in _total",
                family.name
            );
            assert!(
                FAMILIES[..index]
                    .iter()
                    .all(|other| other.name != family.name),
                "{} is listed twice",
                family.name
            );
        }
        for (_, entry, metas) in scopes() {
            for meta in metas {
                assert!(
                    FAMILIES
                        .iter()
                        .any(|family| std::ptr::eq(*family, meta.family)),
                    "{} is not in FAMILIES",
                    meta.family.name
                );
                let mut labels = vec![entry];
                labels.extend(meta.labels.iter().map(|(label, _)| *label));
                assert_eq!(meta.family.labels, labels, "labels of {}", meta.family.name);
            }
        }
    }

    /// Within one entry (an input of one kind, an output), no two counters
    /// share a summary key or a /metrics sample.
    #[test]
    fn an_entry_has_each_key_and_sample_once() {
        let every_input: Vec<&Meta> = INPUT.metas().chain(INPUT_RINGS.metas()).collect();
        let kinds: [Vec<&Meta>; 5] = [
            FILE.metas().chain(CHECKPOINT.metas()).collect(),
            UDP.metas().collect(),
            TCP.metas().chain(TLS.metas()).collect(),
            OTLP.metas().chain(TLS.metas()).collect(),
            Vec::new(),
        ];
        let mut entries: Vec<Vec<&Meta>> = kinds
            .into_iter()
            .map(|kind| every_input.iter().copied().chain(kind).collect())
            .collect();
        entries.push(OUTPUT.metas().collect());
        entries.push(RINGS.metas().collect());
        for metas in entries {
            for (index, meta) in metas.iter().enumerate() {
                for other in &metas[..index] {
                    if let (Some(key), Some(other_key)) = (meta.key, other.key) {
                        assert_ne!(key, other_key, "summary key {key} twice");
                    }
                    assert!(
                        !(std::ptr::eq(meta.family, other.family) && meta.labels == other.labels),
                        "{}{:?} twice",
                        meta.family.name,
                        meta.labels
                    );
                }
            }
        }
    }
}
