//! The periodic stats line on stderr (`--stats-interval`,
//! `--stats-format`).
//!
//! [`StatsReporter`] takes a [`Reading`] of the counters each interval and
//! prints the rates since the previous one, then the counters of the
//! table (`table::Stats`) that say something went wrong: on the short line
//! those that grew in the interval, on the long line their totals.

use super::table::{self, RING_STAGES, Scope, Stats};
use super::{HTTP_STATUS_CODES, Registry};
use crate::ring::Gauge;
use std::time::{Duration, Instant};

use crate::config::StatsFormat;

/// While nothing moves, a line at most this often (a sign of life).
const IDLE_LINE_INTERVAL: Duration = Duration::from_secs(60);

/// The counters the stats line compares between two readings: when none
/// changed, every ring is empty and nothing waits for delivery, the
/// interval was idle.
#[derive(Clone, Default, PartialEq, Eq)]
struct Reading {
    /// Records and bytes in, records and bytes out.
    totals: (u64, u64, u64, u64),
    /// Every input counter of the table the stats line shows, summed over
    /// the inputs, in table order.
    inputs: Vec<(Stats, u64)>,
    /// The same of the outputs.
    outputs: Vec<(Stats, u64)>,
    /// OTLP responses: 200, 429 and every other code.
    otlp: (u64, u64, u64),
}

/// Each counter of `scope` the stats line shows, summed over `sources`.
fn shown<'a, T: 'a>(
    scope: &'static Scope<T>,
    sources: impl Iterator<Item = &'a T> + Clone,
) -> impl Iterator<Item = (Stats, u64)> {
    scope
        .counters
        .iter()
        .filter(|counter| counter.meta.stats.short.is_some() || counter.meta.stats.long.is_some())
        .map(move |counter| {
            let sum = sources.clone().map(|source| (counter.value)(source)).sum();
            (counter.meta.stats, sum)
        })
}

impl Reading {
    fn take(registry: &Registry) -> Self {
        let totals = registry.totals();
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
        // The file scope is summed over every input: standard input counts
        // its read errors there too.
        let inputs = || registry.inputs.iter().map(|c| &**c);
        let mut input_counts: Vec<(Stats, u64)> = shown(&table::INPUT, inputs()).collect();
        input_counts.extend(shown(&table::FILE, inputs()));
        input_counts.extend(shown(
            &table::CHECKPOINT,
            registry.file_offsets.iter().flatten().map(|o| &**o),
        ));
        input_counts.extend(shown(&table::UDP, registry.udp.iter().flatten()));
        input_counts.extend(shown(
            &table::TCP,
            registry.tcp.iter().flatten().map(|c| &**c),
        ));
        input_counts.extend(shown(
            &table::OTLP,
            registry.otlp.iter().flatten().map(|c| &**c),
        ));
        let tls = registry.tcp.iter().flatten().map(|c| &*c.tls);
        input_counts.extend(shown(
            &table::TLS,
            tls.chain(registry.otlp.iter().flatten().map(|c| &*c.tls)),
        ));
        Self {
            totals: (
                totals.records_in,
                totals.bytes_in,
                totals.records_out,
                totals.bytes_out,
            ),
            inputs: input_counts,
            outputs: shown(&table::OUTPUT, registry.outputs.iter().map(|c| &**c)).collect(),
            otlp: (ok, busy, all - ok - busy),
        }
    }

    /// A reading of the same counters, all zero: what there was at start.
    fn zero_like(&self) -> Self {
        let zero = |counts: &[(Stats, u64)]| counts.iter().map(|&(stats, _)| (stats, 0)).collect();
        Self {
            inputs: zero(&self.inputs),
            outputs: zero(&self.outputs),
            ..Self::default()
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
        if self.last.inputs.len() != reading.inputs.len()
            || self.last.outputs.len() != reading.outputs.len()
        {
            // The first reading: compare with all zero, as at start.
            self.last = reading.zero_like();
        }
        let stages: Vec<(&str, &Gauge)> = RING_STAGES
            .iter()
            .map(|stage| (stage.stats, (stage.gauge)(&registry.rings)))
            .collect();
        let queued = stages.iter().any(|(_, gauge)| gauge.occupancy() > 0);
        // Read bytes not yet delivered are a stall, not idleness, even when
        // no ring holds them (a worker blocked in a write does).
        let checkpoint_lag = registry.total_checkpoint_lag();
        let idle = reading == self.last && !queued && checkpoint_lag == 0;
        let before = std::mem::replace(&mut self.last, reading.clone());
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
    stages: &[(&str, &Gauge)],
    checkpoint_lag: u64,
) -> String {
    let [records_in, bytes_in, records_out, bytes_out] = rates(before, now, seconds);
    let mut line = format!(
        "ringway: in {} rec/s {}, out {} rec/s {} over {seconds:.1}s",
        records_in, bytes_in, records_out, bytes_out,
    );
    // A UDP input's kernel drops are read from its sockets and may go
    // down when one closes: the interval counts growth only.
    let grown = |now: &[(Stats, u64)], before: &[(Stats, u64)]| -> Vec<(&'static str, u64)> {
        now.iter()
            .zip(before)
            .filter_map(|((stats, now), (_, before))| {
                Some((stats.short?, now.saturating_sub(*before)))
            })
            .collect()
    };
    let problems: Vec<String> = grown(&now.inputs, &before.inputs)
        .into_iter()
        .chain(grown(&now.outputs, &before.outputs))
        .chain([
            ("otlp 429", now.otlp.1 - before.otlp.1),
            ("otlp errors", now.otlp.2 - before.otlp.2),
        ])
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

/// Everything on one line: rates, every ring, the input error counters'
/// totals and the checkpoint lag; the outputs' once any is above zero.
fn long_line(
    registry: &Registry,
    before: &Reading,
    now: &Reading,
    seconds: f64,
    stages: &[(&str, &Gauge)],
) -> String {
    let [records_in, bytes_in, records_out, bytes_out] = rates(before, now, seconds);
    let rings: Vec<String> = stages
        .iter()
        .map(|(stage, gauge)| format!("{stage} {}/{}", gauge.occupancy(), gauge.capacity()))
        .collect();
    let totals = |counts: &[(Stats, u64)]| -> Vec<String> {
        counts
            .iter()
            .filter_map(|(stats, count)| Some(format!("{} {count}", stats.long?)))
            .collect()
    };
    let mut line = format!(
        "ringway: in {} rec/s {} | out {} rec/s {} | over {seconds:.1}s | rings {} | {} checkpoint lag {} bytes",
        records_in,
        bytes_in,
        records_out,
        bytes_out,
        rings.join(" "),
        totals(&now.inputs).join(" "),
        registry.total_checkpoint_lag(),
    );
    let outputs_shown = now
        .outputs
        .iter()
        .any(|(stats, count)| stats.long.is_some() && *count > 0);
    if outputs_shown {
        line.push_str(&format!(" | {}", totals(&now.outputs).join(" ")));
    }
    if registry.otlp.iter().any(Option::is_some) {
        let (ok, busy, other) = now.otlp;
        line.push_str(&format!(" | otlp 200 {ok} 429 {busy} other {other}"));
    }
    line
}

/// The interval's rates of both lines: records and bytes in, records and
/// bytes out, per second.
fn rates(before: &Reading, now: &Reading, seconds: f64) -> [String; 4] {
    let (records_in, bytes_in, records_out, bytes_out) = now.totals;
    let (was_records_in, was_bytes_in, was_records_out, was_bytes_out) = before.totals;
    [
        per_second(records_in - was_records_in, seconds),
        bytes_per_second(bytes_in - was_bytes_in, seconds),
        per_second(records_out - was_records_out, seconds),
        bytes_per_second(bytes_out - was_bytes_out, seconds),
    ]
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
    use crate::metrics::{Health, OtlpCounters, RingGauges, UdpInputStats};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// A registry of one input and one output, nothing else.
    fn registry() -> Registry {
        Registry {
            input_names: vec!["tcp:127.0.0.1:0".into()],
            inputs: vec![Arc::default()],
            udp: vec![None],
            output_names: vec!["null".into()],
            outputs: vec![Arc::default()],
            rings: RingGauges::default(),
            input_rings: Vec::new(),
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

    /// The words and order of both lines, as they were before the counter
    /// table drew them: a UDP, a TCP and an OTLP input and one output.
    #[test]
    fn both_lines_name_the_problems_in_their_order() {
        let mut registry = registry();
        registry.input_names = vec!["udp:a".into(), "tcp:b".into(), "otlp:c".into()];
        registry.inputs = vec![Arc::default(), Arc::default(), Arc::default()];
        registry.udp = vec![Some(UdpInputStats::default()), None, None];
        registry.tcp = vec![None, Some(Arc::default()), None];
        let otlp: Arc<OtlpCounters> = Arc::default();
        registry.otlp = vec![None, None, Some(Arc::clone(&otlp))];
        registry.file_offsets = vec![None, None, None];
        let mut short = StatsReporter::new(StatsFormat::Short);
        let mut long = StatsReporter::new(StatsFormat::Long);
        let add = |counter: &std::sync::atomic::AtomicU64, n| {
            counter.fetch_add(n, Ordering::Relaxed);
        };
        add(&registry.inputs[0].records, 10);
        add(&registry.inputs[0].invalid, 2);
        add(&registry.inputs[1].truncated, 1);
        add(&registry.inputs[2].dead_lettered, 4);
        add(&registry.inputs[0].files_skipped, 5);
        add(&registry.inputs[1].read_errors, 6);
        add(&registry.outputs[0].retries, 3);
        add(&registry.outputs[0].write_errors, 3);
        add(&registry.outputs[0].rejects, 1);
        otlp.count_response(200);
        otlp.count_response(429);
        otlp.count_response(400);
        let line = short.line(&registry).expect("a short line");
        let (_, problems) = line.split_once("; ").expect("problems");
        assert_eq!(
            problems,
            "invalid +2, truncated +1, dead-lettered +4, files skipped +5, read errors +6, output retries +3, rejects +1, otlp 429 +1, otlp errors +1"
        );
        let line = long.line(&registry).expect("a long line");
        let (_, totals) = line.split_once("| rings ").expect("rings");
        assert_eq!(
            totals,
            "io→cpu 0/0 cpu→dispatcher 0/0 dispatcher→worker 0/0 | invalid 2 truncated 1 skipped files 5 kernel drops 0 checkpoint lag 0 bytes | output retries 3 rejects 1 | otlp 200 1 429 1 other 1"
        );
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
