//! The demo's three sources, one thread each, paced to a fixed rate so the
//! pipeline keeps up easily while the light is green: [`append_file`]
//! appends lines to the file input's file, [`send_udp`] sends syslog
//! datagrams to the UDP input, [`send_otlp`] posts OTLP/JSON requests to the
//! OTLP input with the `http`/`otlp` outputs' own client, honouring
//! `Retry-After`. Each counts what it did into its [`SourceCounters`] and
//! stops when the shared stop flag is set.
//!
//! Every record carries its source's [`Marker`] and a sequence number, so
//! the tally can count each source's records in the output file.

use crate::output::http::{Client, Endpoint};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Each source wakes this often and sends what its rate asks for.
const TICK: Duration = Duration::from_millis(10);
/// Lines the file writer appends per tick (2000 lines/s).
const FILE_LINES_PER_TICK: u64 = 20;
/// Datagrams the UDP sender sends per tick (4000 datagrams/s: more than
/// the UDP input's 512 provided buffers, its rings and its socket buffer
/// hold during a red light of a default cycle).
const UDP_DATAGRAMS_PER_TICK: u64 = 40;
/// One OTLP request every this long, of [`OTLP_RECORDS_PER_REQUEST`]
/// records (1000 records/s while no 429 holds the client back).
const OTLP_REQUEST_INTERVAL: Duration = Duration::from_millis(20);
const OTLP_RECORDS_PER_REQUEST: u64 = 20;
/// Connect and response timeout of the OTLP client.
const OTLP_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before resending after a connection failure.
const OTLP_RECONNECT_WAIT: Duration = Duration::from_millis(100);
/// After the stop, the OTLP client keeps trying to deliver the request it
/// holds this long (the light is green by then), then abandons it.
const OTLP_FINISH_WITHIN: Duration = Duration::from_secs(10);

/// What marks a source's records in the output file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    File,
    Udp,
    Otlp,
}

impl Marker {
    pub const ALL: [Marker; 3] = [Marker::File, Marker::Udp, Marker::Otlp];

    /// The word before the sequence number in every record of the source.
    pub fn word(self) -> &'static str {
        match self {
            Marker::File => "demo-file-record",
            Marker::Udp => "demo-udp-record",
            Marker::Otlp => "demo-otlp-record",
        }
    }
}

/// What one source did, written by its thread, read by the demo.
#[derive(Default)]
pub(crate) struct SourceCounters {
    /// Records handed over: lines appended, datagrams sent, log records of
    /// requests answered 200.
    pub records: AtomicU64,
    /// Bytes appended (the file writer only).
    pub bytes: AtomicU64,
    /// OTLP: requests answered 429 (or 503).
    pub refused: AtomicU64,
    /// OTLP: requests sent again after a 429 (or 503) and its Retry-After.
    pub retries: AtomicU64,
    /// OTLP: connection failures, and answers other than 200, 429, 503.
    pub errors: AtomicU64,
    /// OTLP: records of a request given up at the end (never accepted).
    pub abandoned: AtomicU64,
}

impl SourceCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn add(counter: &AtomicU64, value: u64) {
    counter.fetch_add(value, Ordering::Relaxed);
}

/// A source thread and its counters.
pub(crate) struct Source {
    pub counters: Arc<SourceCounters>,
    thread: JoinHandle<()>,
}

impl Source {
    fn spawn(
        name: &str,
        work: impl FnOnce(&SourceCounters) + Send + 'static,
    ) -> std::io::Result<Self> {
        let counters = Arc::new(SourceCounters::default());
        let thread = std::thread::Builder::new().name(name.into()).spawn({
            let counters = Arc::clone(&counters);
            move || work(&counters)
        })?;
        Ok(Self { counters, thread })
    }

    pub fn join(self) {
        // A source that panicked already stopped the process (the hook).
        let _ = self.thread.join();
    }
}

/// Runs `tick` every [`TICK`] until `stop` is set.
fn paced(stop: &AtomicBool, mut tick: impl FnMut()) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tick();
        sleep_until_next(&mut next, TICK);
    }
}

/// Sleeps until `interval` after `next`, which becomes that instant. A
/// source that fell behind (a late wake-up, a Retry-After) goes on from
/// now: no burst to catch up.
fn sleep_until_next(next: &mut Instant, interval: Duration) {
    *next += interval;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

/// A record's text: its source's marker, its sequence number, some words.
fn record_text(marker: Marker, sequence: u64) -> String {
    format!(
        "{} {sequence:08} the light at the exit decides how fast this one goes",
        marker.word()
    )
}

pub(crate) fn append_file(path: PathBuf, stop: Arc<AtomicBool>) -> std::io::Result<Source> {
    let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
    Source::spawn("demo-file", move |counters| {
        let mut sequence = 0;
        let mut chunk = String::new();
        paced(&stop, || {
            chunk.clear();
            for _ in 0..FILE_LINES_PER_TICK {
                chunk.push_str(&record_text(Marker::File, sequence));
                chunk.push('\n');
                sequence += 1;
            }
            // One write of whole lines: the reader never sees half a line
            // that a failed write would leave for good.
            match file.write_all(chunk.as_bytes()) {
                Ok(()) => {
                    add(&counters.records, FILE_LINES_PER_TICK);
                    add(&counters.bytes, chunk.len() as u64);
                }
                Err(error) => {
                    eprintln!(
                        "ringway: error: the demo's file writer cannot append; error = {error}"
                    );
                    stop.store(true, Ordering::Relaxed);
                }
            }
        });
    })
}

pub(crate) fn send_udp(target: SocketAddr, stop: Arc<AtomicBool>) -> std::io::Result<Source> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    Source::spawn("demo-udp", move |counters| {
        let mut sequence = 0;
        paced(&stop, || {
            for _ in 0..UDP_DATAGRAMS_PER_TICK {
                let datagram = format!(
                    "<14>1 2026-12-03T00:00:00Z demo-host demo - - - {}",
                    record_text(Marker::Udp, sequence)
                );
                // On loopback a send fails only for lack of memory; what
                // the kernel drops at the receiver is ringway's to count.
                if socket.send_to(datagram.as_bytes(), target).is_ok() {
                    add(&counters.records, 1);
                    sequence += 1;
                }
            }
        });
    })
}

/// An OTLP/JSON `ExportLogsServiceRequest` with `count` records from
/// `first` on.
fn otlp_body(first: u64, count: u64) -> String {
    let records: Vec<String> = (first..first + count)
        .map(|sequence| {
            format!(
                r#"{{"timeUnixNano":"1796256000000000000","severityNumber":9,"severityText":"INFO","body":{{"stringValue":"{}"}}}}"#,
                record_text(Marker::Otlp, sequence)
            )
        })
        .collect();
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"demo"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

/// Sleeps `wait`, or less once `stop` is set and `finish_by` has passed.
fn sleep_unless_late(wait: Duration, stop: &AtomicBool, finish_by: Option<Instant>) {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) && finish_by.is_some_and(|at| Instant::now() >= at) {
            return;
        }
        std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
    }
}

pub(crate) fn send_otlp(target: SocketAddr, stop: Arc<AtomicBool>) -> std::io::Result<Source> {
    let endpoint = Endpoint::new(
        &target.ip().to_string(),
        target.port(),
        "/v1/logs",
        OTLP_TIMEOUT,
    );
    Source::spawn("demo-otlp", move |counters| {
        let mut client = Client::new();
        let mut sequence = 0;
        let mut next = Instant::now();
        // Set at the stop: the request in hand may still be delivered until then.
        let mut finish_by: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let body = otlp_body(sequence, OTLP_RECORDS_PER_REQUEST);
            // The same request until it is answered 200.
            let mut refusals = 0u64;
            loop {
                if stop.load(Ordering::Relaxed) {
                    let at = *finish_by.get_or_insert_with(|| Instant::now() + OTLP_FINISH_WITHIN);
                    if Instant::now() >= at {
                        add(&counters.abandoned, OTLP_RECORDS_PER_REQUEST);
                        return;
                    }
                }
                if refusals > 0 {
                    add(&counters.retries, 1);
                }
                match client.post(&endpoint, "application/json", false, body.as_bytes()) {
                    Ok(response) if response.status == 200 => {
                        add(&counters.records, OTLP_RECORDS_PER_REQUEST);
                        break;
                    }
                    Ok(response) if matches!(response.status, 429 | 503) => {
                        add(&counters.refused, 1);
                        refusals += 1;
                        let wait = response.retry_after.unwrap_or(Duration::from_secs(1));
                        sleep_unless_late(wait, &stop, finish_by);
                    }
                    Ok(_) | Err(_) => {
                        add(&counters.errors, 1);
                        sleep_unless_late(OTLP_RECONNECT_WAIT, &stop, finish_by);
                    }
                }
            }
            sequence += OTLP_RECORDS_PER_REQUEST;
            sleep_until_next(&mut next, OTLP_REQUEST_INTERVAL);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_body_is_json_with_every_record_marked() {
        let body: serde_json::Value = serde_json::from_str(&otlp_body(40, 3)).unwrap();
        let records = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
        assert_eq!(records.as_array().unwrap().len(), 3);
        let text = records[2]["body"]["stringValue"].as_str().unwrap();
        assert!(text.starts_with("demo-otlp-record 00000042 "), "{text}");
    }
}
