//! `ringway demo`: the backpressure cascade of DESIGN §2, live, with a
//! traffic light at the exit that the user controls.
//!
//! The pipeline is a real `ringway run`, started as a **child process** of
//! this one (the same binary): three inputs (a file, UDP syslog, OTLP/HTTP)
//! and one `file:` output, on 127.0.0.1 with ports the kernel picks, in a
//! temporary directory. A child rather than threads of this process,
//! because then the demo watches exactly what an operator runs — the same
//! command line (printed at the start), the same `--metrics` endpoint
//! `ringway top` reads (its parser and view are reused here), the same
//! `--summary-json` at exit — and the pipeline's own signal handling,
//! warnings and drain stay untouched by the terminal this process owns.
//! The light is the only hook: the child runs with the hidden
//! `--traffic-light`, and this process switches it by writing `green` and
//! `red` lines to the child's standard input on the cycle's schedule
//! ([`Light`]). Closing that pipe (at the end, or if this process dies)
//! turns the light green and stops the child, so nothing outlives the
//! demo; the child's process group is its own, so a Ctrl-C reaches only
//! this process, which then shuts everything down in order.
//!
//! [`run`] starts the child ([`Pipeline`]), the three sources
//! ([`sources`]), then samples `/metrics` every [`SAMPLE_INTERVAL`] into a
//! bounded [`History`] and shows it ([`view`]: the live screen, or the
//! per-second table with `--no-tty`). At the end it stops the sources,
//! turns the light green until everything sent is accounted for, stops the
//! child, and prints the [`tally`]; `--plot` writes the history as SVG
//! ([`plot`]). The temporary directory ([`TempDir`]) is removed on every way
//! out but a crash.

mod plot;
mod sources;
mod tally;
mod view;

use crate::cli::DemoArgs;
use crate::top::{self, RawTerminal, Snapshot};
use sources::SourceCounters;
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often `/metrics` is read (four times per default cycle, so the
/// sawtooth of each cycle shows).
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// Samples are taken this long before the light's cycle restarts (and
/// every [`SAMPLE_INTERVAL`] from there), so one falls at the end of every
/// red part, when the rings are fullest, whatever the green share.
const SAMPLE_LEAD: Duration = Duration::from_millis(30);
/// Samples kept for `--plot`: an hour at four a second (`--duration` is
/// at most an hour; the drain adds a little).
const MAX_SAMPLES: usize = 4 * 3600 + 4 * 120;
/// Longest the child may take to start and say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the end waits for everything sent to be accounted for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The child's own `--shutdown-timeout`, and how much longer this process
/// waits for it before killing it.
const CHILD_SHUTDOWN: Duration = Duration::from_secs(10);
const CHILD_EXIT_GRACE: Duration = Duration::from_secs(5);
/// Receive buffer of the UDP input: under the kernel's default
/// net.core.rmem_max, so every box drops alike, and small enough that a
/// red light fills it within the cycle; large enough (about 250 ms of the
/// sender's datagrams) that a busy machine's scheduling stalls of the I/O
/// thread do not drop on green (128 KiB, 60 ms, dropped in CI at 100%).
const UDP_RCVBUF: &str = "512KiB";
/// Reads, batches and lines of the pipeline are small, so what its
/// buffers can hold beyond the rings (a reader's reads ahead, a partly
/// filled batch) is small beside what a red light holds back: the sources
/// feel the red within the cycle.
const BUFFER_SIZE: &str = "8KiB";
const MAX_LINE: &str = "4KiB";
/// Lines of the child's stderr shown when it fails.
const LOG_TAIL_LINES: usize = 20;

/// Runs the demo; returns the exit code (1 when a promise of the tally
/// failed or the pipeline could not run).
pub(crate) fn run(args: &DemoArgs) -> i32 {
    // Taken before any thread starts, so every thread inherits the mask and
    // only the signal thread sees SIGINT/SIGTERM.
    let signals = crate::signals::block_termination_signals();
    let stop = Arc::new(AtomicBool::new(false));
    spawn_signal_thread(signals, Arc::clone(&stop));
    let dir = match TempDir::create() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!(
                "ringway: error: cannot create the demo's temporary directory; error = {error}"
            );
            return 1;
        }
    };
    let mut pipeline = match Pipeline::start(&dir) {
        Ok(pipeline) => pipeline,
        Err(message) => {
            eprintln!("ringway: error: {message}");
            return 1;
        }
    };
    match demo(args, &dir, &mut pipeline, &stop) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ringway: error: {message}");
            pipeline.show_log();
            1
        }
    }
}

/// Takes SIGINT and SIGTERM (blocked in every thread) and asks the demo to
/// stop; it then ends as at `q`.
fn spawn_signal_thread(set: nix::sys::signal::SigSet, stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            loop {
                if let Ok(signal) = set.wait()
                    && signal != nix::sys::signal::Signal::SIGHUP
                {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        });
}

/// The sources, the live part, the end and the tally.
fn demo(
    args: &DemoArgs,
    dir: &TempDir,
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
) -> Result<i32, String> {
    let sources_stop = Arc::new(AtomicBool::new(false));
    let started = (|| {
        Ok::<_, std::io::Error>([
            sources::append_file(dir.source_file(), Arc::clone(&sources_stop))?,
            sources::send_udp(pipeline.udp, Arc::clone(&sources_stop))?,
            sources::send_otlp(pipeline.otlp, Arc::clone(&sources_stop))?,
        ])
    })();
    let sources = started.map_err(|error| format!("cannot start the demo's sources: {error}"))?;
    let counters = sources
        .each_ref()
        .map(|source| Arc::clone(&source.counters));
    let mut light = Light::new(args.cycle, args.green);
    let mut history = History::new(args.duration);
    // The live view needs a terminal to draw on and to read keys from
    // (`RawTerminal::enter` checks stdin); otherwise the table.
    let terminal = (!args.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .then(RawTerminal::enter)
        .flatten();
    let tty = terminal.is_some();
    if !tty {
        view::say(&view::table_intro(args, &pipeline.command_line));
    }
    let outcome = live(
        args,
        pipeline,
        &counters,
        &mut light,
        &mut history,
        stop,
        terminal.as_ref(),
    );
    // Back to the normal screen, where the tally goes.
    drop(terminal);
    if tty {
        view::say(
            "ringway demo: the sources stopped; the light stays green until all they sent is accounted for",
        );
    }
    let ran = light.epoch.elapsed();
    // Whatever ended the live part, the sources stop and the light turns
    // green, so what is in flight can arrive.
    sources_stop.store(true, Ordering::SeqCst);
    light.hold_green();
    let _ = pipeline.set_light(true);
    for source in sources {
        source.join();
    }
    outcome?;
    let settled = settle(pipeline, &counters, &mut light, &mut history);
    let summary = pipeline.stop()?;
    if !tty {
        view::print_rows(&mut history, usize::MAX);
    }
    let sent = [
        SourceCounters::get(&counters[0].records),
        SourceCounters::get(&counters[1].records),
        SourceCounters::get(&counters[2].records),
    ];
    let written = tally::count_output(&dir.sink_file(), sent)
        .map_err(|error| format!("cannot read the demo's output file: {error}"))?;
    let tally = tally::Tally {
        written,
        file_appended: sent[0],
        udp_sent: sent[1],
        udp_kernel_drops: summary.kernel_drops,
        otlp_sent: sent[2],
        otlp_retries: SourceCounters::get(&counters[2].retries),
        otlp_abandoned: SourceCounters::get(&counters[2].abandoned),
    };
    let failures = tally.failures();
    view::say(
        view::tally_text(ran, &light, &history, &tally, summary.http_429, settled).trim_end(),
    );
    if let Some(path) = &args.plot {
        let svg = plot::svg(history.samples.make_contiguous(), args);
        std::fs::write(path, svg)
            .map_err(|error| format!("cannot write --plot {}: {error}", path.display()))?;
        view::say(&format!("plot: {}", path.display()));
    }
    if failures.is_empty() {
        view::say("tally: every promise holds");
        Ok(0)
    } else {
        view::say(&format!("tally: FAILED: {}", failures.join(", ")));
        Ok(1)
    }
}

/// Samples, switches the light and (with a terminal) draws and reads keys,
/// until `--duration` has passed, `q`, or a signal.
fn live(
    args: &DemoArgs,
    pipeline: &mut Pipeline,
    counters: &[Arc<SourceCounters>; 3],
    light: &mut Light,
    history: &mut History,
    stop: &AtomicBool,
    terminal: Option<&RawTerminal>,
) -> Result<(), String> {
    let end = light.epoch + args.duration;
    let mut next_sample = light.epoch + SAMPLE_INTERVAL - SAMPLE_LEAD;
    let mut screen = view::Screen::new(args.duration);
    loop {
        let now = Instant::now();
        if now >= end || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        light.advance(now);
        pipeline.set_light(light.green_now)?;
        if now >= next_sample {
            let (sample, snapshot) = pipeline.sample(counters, light, now)?;
            history.push(sample, snapshot);
            // Late (a slow answer): skip what was missed, keep the phase.
            while next_sample <= Instant::now() {
                next_sample += SAMPLE_INTERVAL;
            }
            if terminal.is_some() {
                screen.draw(pipeline, light, history)?;
            } else {
                view::print_rows(history, 1);
            }
        }
        let deadline = next_sample.min(light.next_change(now)).min(end);
        if let Some(terminal) = terminal {
            if view::read_keys(terminal, light, deadline)? {
                return Ok(());
            }
        } else {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// After the sources stopped: waits (light green) until ringway read every
/// byte appended, took or counted as dropped every datagram sent, accepted
/// every OTLP record the client counts as sent, and wrote all it read.
/// False when [`SETTLE_TIMEOUT`] passed first (the tally then shows what is
/// missing).
fn settle(
    pipeline: &mut Pipeline,
    counters: &[Arc<SourceCounters>; 3],
    light: &mut Light,
    history: &mut History,
) -> bool {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut next_sample = Instant::now();
    while Instant::now() < deadline {
        let now = Instant::now();
        light.advance(now);
        let Ok(settled) = pipeline.settled(counters) else {
            return false;
        };
        if now >= next_sample {
            if let Ok((sample, snapshot)) = pipeline.sample(counters, light, now) {
                history.push(sample, snapshot);
            }
            next_sample += SAMPLE_INTERVAL;
        }
        if settled {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The light's schedule: green for `green_percent` of every `cycle` from
/// `epoch`, unless held red; and the green time since the last sample.
pub(crate) struct Light {
    pub cycle: Duration,
    pub green_percent: u8,
    pub held_red: bool,
    /// Green for good: the end, when everything in flight must arrive.
    held_green: bool,
    pub epoch: Instant,
    /// What the pipeline was last told.
    pub green_now: bool,
    /// Green time and total time since the last sample (for the plot).
    green_time: Duration,
    since_sample: Duration,
    last_advance: Instant,
}

impl Light {
    fn new(cycle: Duration, green_percent: u8) -> Self {
        let now = Instant::now();
        Self {
            cycle,
            green_percent,
            held_red: false,
            held_green: false,
            epoch: now,
            green_now: true,
            green_time: Duration::ZERO,
            since_sample: Duration::ZERO,
            last_advance: now,
        }
    }

    /// The green part of each cycle.
    fn green_span(&self) -> Duration {
        self.cycle * u32::from(self.green_percent) / 100
    }

    fn phase(&self, now: Instant) -> Duration {
        let nanos = now.duration_since(self.epoch).as_nanos() % self.cycle.as_nanos().max(1);
        Duration::from_nanos(nanos as u64)
    }

    fn is_green_at(&self, now: Instant) -> bool {
        self.held_green || (!self.held_red && self.phase(now) < self.green_span())
    }

    /// Books the time since the last call under the colour it had, then
    /// takes the colour of `now`.
    fn advance(&mut self, now: Instant) {
        let spent = now.saturating_duration_since(self.last_advance);
        if self.green_now {
            self.green_time += spent;
        }
        self.since_sample += spent;
        self.last_advance = now;
        self.green_now = self.is_green_at(now);
    }

    /// When the colour next changes (at the latest a cycle from now).
    fn next_change(&self, now: Instant) -> Instant {
        let phase = self.phase(now);
        let cycle_start = now - phase;
        let green = self.green_span();
        if !self.held_red && !self.held_green && phase < green {
            cycle_start + green
        } else {
            cycle_start + self.cycle
        }
    }

    /// The share of time green since the last call (0 to 1).
    fn take_green_share(&mut self) -> f64 {
        let share = if self.since_sample.is_zero() {
            f64::from(u8::from(self.green_now))
        } else {
            self.green_time.as_secs_f64() / self.since_sample.as_secs_f64()
        };
        self.green_time = Duration::ZERO;
        self.since_sample = Duration::ZERO;
        share
    }

    pub fn change_green(&mut self, by: i16) {
        self.green_percent = (i16::from(self.green_percent) + by).clamp(0, 100) as u8;
    }

    fn hold_green(&mut self) {
        self.held_green = true;
        self.green_now = true;
    }
}

/// One reading of the pipeline and the sources; counters are totals since
/// the start, rates are made from two readings.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sample {
    /// Since the light's first cycle began.
    pub at_seconds: f64,
    /// Share of the time since the previous sample the light was green.
    pub green_share: f64,
    /// Per stage of [`top::STAGES`]: occupancy and capacity, in batches.
    pub rings: [(f64, f64); 3],
    /// Bytes appended to the source file that ringway has not read yet.
    pub file_behind_bytes: f64,
    pub udp_sent: f64,
    pub udp_kernel_drops: f64,
    pub otlp_sent: f64,
    /// 429s ringway answered.
    pub otlp_refused: f64,
    /// Requests the client sent again after a 429.
    pub otlp_retries: f64,
    /// Records the output wrote.
    pub written: f64,
}

/// The samples of the run, oldest first, at most [`MAX_SAMPLES`] (then the
/// oldest go), and the last second of `/metrics` snapshots for the screen.
pub(crate) struct History {
    pub samples: VecDeque<Sample>,
    /// Samples already printed as table rows, in whole seconds.
    pub rows_printed: usize,
    /// The snapshots of the last second or so, oldest first: the screen
    /// shows the newest with rates against the oldest, like `ringway top`.
    pub snapshots: VecDeque<Snapshot>,
}

/// Snapshots kept: a second's worth and one more.
const SNAPSHOTS_KEPT: usize = 5;
const _: () = assert!(SNAPSHOTS_KEPT as u128 * SAMPLE_INTERVAL.as_millis() > 1000);

impl History {
    fn new(duration: Duration) -> Self {
        let expected = (duration.as_secs_f64() / SAMPLE_INTERVAL.as_secs_f64()) as usize + 64;
        Self {
            samples: VecDeque::with_capacity(expected.min(MAX_SAMPLES)),
            rows_printed: 0,
            snapshots: VecDeque::with_capacity(SNAPSHOTS_KEPT + 1),
        }
    }

    fn push(&mut self, sample: Sample, snapshot: Snapshot) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.snapshots.push_back(snapshot);
        if self.snapshots.len() > SNAPSHOTS_KEPT {
            self.snapshots.pop_front();
        }
    }
}

/// What the child's `--summary-json` says at its exit.
struct Summary {
    kernel_drops: u64,
    /// 429s the OTLP input answered.
    http_429: u64,
}

/// The child `ringway run` and how to reach it.
pub(crate) struct Pipeline {
    child: Child,
    /// The light's switch; dropping it turns the light green and stops the
    /// child.
    stdin: Option<ChildStdin>,
    /// Whether the child was last told green.
    told_green: Option<bool>,
    pub metrics: SocketAddr,
    udp: SocketAddr,
    otlp: SocketAddr,
    /// Names of the three inputs, as typed: file, UDP, OTLP.
    pub input_names: [String; 3],
    log: PathBuf,
    summary: PathBuf,
    pub command_line: String,
}

impl Pipeline {
    fn start(dir: &TempDir) -> Result<Self, String> {
        let source = dir.source_file();
        std::fs::write(&source, b"")
            .map_err(|error| format!("cannot create {}: {error}", source.display()))?;
        let input_names = [
            format!("file:{}", source.display()),
            format!("udp:127.0.0.1:0,format=syslog,rcvbuf={UDP_RCVBUF}"),
            "otlp:127.0.0.1:0".to_string(),
        ];
        let sink = dir.sink_file();
        let summary = dir.path.join("summary.json");
        let log = dir.path.join("ringway.log");
        let shutdown = format!("{}s", CHILD_SHUTDOWN.as_secs());
        let mut arguments: Vec<String> = vec!["run".into()];
        for name in &input_names {
            arguments.extend(["--input".into(), name.clone()]);
        }
        arguments.extend(
            [
                "--output",
                &format!("file:{}", sink.display()),
                "--metrics",
                "127.0.0.1:0",
                "--summary-json",
                &summary.display().to_string(),
                "--stats-interval",
                "0",
                "--read-buf",
                BUFFER_SIZE,
                "--batch-bytes",
                BUFFER_SIZE,
                "--max-line",
                MAX_LINE,
                "--shutdown-timeout",
                &shutdown,
                "--traffic-light",
            ]
            .map(String::from),
        );
        let executable = std::env::current_exe()
            .map_err(|error| format!("cannot find ringway's own executable: {error}"))?;
        let log_file = std::fs::File::create(&log)
            .map_err(|error| format!("cannot create {}: {error}", log.display()))?;
        let mut command = Command::new(&executable);
        command
            .args(&arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log_file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", executable.display()))?;
        let stdin = child.stdin.take();
        let command_line = format!("ringway {}", arguments.join(" "));
        let mut pipeline = Self {
            child,
            stdin,
            told_green: None,
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            otlp: SocketAddr::from(([127, 0, 0, 1], 0)),
            input_names,
            log,
            summary,
            command_line,
        };
        if let Err(message) = pipeline.find_addresses() {
            pipeline.show_log();
            return Err(message);
        }
        Ok(pipeline)
    }

    /// Reads the addresses the child announces on stderr (it binds port 0).
    fn find_addresses(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let announced = |prefix: &str| {
                log.lines()
                    .find_map(|line| line.strip_prefix(prefix)?.trim().parse::<SocketAddr>().ok())
            };
            let udp = announced(&format!(
                "ringway: input '{}' listening on ",
                self.input_names[1]
            ));
            let otlp = announced(&format!(
                "ringway: input '{}' listening on ",
                self.input_names[2]
            ));
            let metrics = announced("ringway: metrics listening on ");
            if let (Some(udp), Some(otlp), Some(metrics)) = (udp, otlp, metrics) {
                (self.udp, self.otlp, self.metrics) = (udp, otlp, metrics);
                // Ready once /metrics answers: every stage has started.
                if top::fetch(metrics).is_ok() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the demo's pipeline exited at start ({status})"));
            }
            if Instant::now() >= deadline {
                return Err("the demo's pipeline did not start in time".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells the child the light's colour, when it changed.
    fn set_light(&mut self, green: bool) -> Result<(), String> {
        if self.told_green == Some(green) {
            return Ok(());
        }
        let stdin = self.stdin.as_mut().ok_or("the traffic light is closed")?;
        stdin
            .write_all(if green { b"green\n" } else { b"red\n" })
            .map_err(|error| format!("the demo's pipeline stopped listening ({error})"))?;
        self.told_green = Some(green);
        Ok(())
    }

    /// Reads `/metrics` and the sources' counters.
    fn sample(
        &mut self,
        counters: &[Arc<SourceCounters>; 3],
        light: &mut Light,
        now: Instant,
    ) -> Result<(Sample, Snapshot), String> {
        let text = self.fetch()?;
        let samples = top::parse(&text);
        let snapshot = Snapshot::from_samples(&samples);
        let input = |index: usize| {
            snapshot
                .inputs
                .iter()
                .find(|(name, _)| *name == self.input_names[index])
                .map(|(_, flow)| *flow)
                .unwrap_or_default()
        };
        let rings =
            top::STAGES.map(|(label, _)| snapshot.rings.get(label).copied().unwrap_or_default());
        let refused = samples
            .iter()
            .filter(|sample| {
                sample.name == "ringway_http_responses_total" && sample.label("code") == Some("429")
            })
            .map(|sample| sample.value)
            .sum();
        let written = samples
            .iter()
            .filter(|sample| sample.name == "ringway_output_records_total")
            .map(|sample| sample.value)
            .sum();
        let file_read_bytes = input(0).bytes;
        let get = |counter: &std::sync::atomic::AtomicU64| SourceCounters::get(counter) as f64;
        let sample = Sample {
            at_seconds: now.duration_since(light.epoch).as_secs_f64(),
            green_share: light.take_green_share(),
            rings,
            file_behind_bytes: (get(&counters[0].bytes) - file_read_bytes).max(0.0),
            udp_sent: get(&counters[1].records),
            udp_kernel_drops: snapshot
                .dropped
                .get("kernel_drops")
                .copied()
                .unwrap_or_default(),
            otlp_sent: get(&counters[2].records),
            otlp_refused: refused,
            otlp_retries: get(&counters[2].retries),
            written,
        };
        Ok((sample, snapshot))
    }

    fn fetch(&self) -> Result<String, String> {
        top::fetch(self.metrics).map_err(|error| {
            format!(
                "the demo's pipeline does not answer at {}: {error}",
                self.metrics
            )
        })
    }

    /// True once every source's records are accounted for inside ringway
    /// and the output wrote everything read.
    fn settled(&self, counters: &[Arc<SourceCounters>; 3]) -> Result<bool, String> {
        let samples = top::parse(&self.fetch()?);
        let value = |name: &str, input: Option<&str>| -> u64 {
            samples
                .iter()
                .filter(|sample| {
                    sample.name == name
                        && input.is_none_or(|input| sample.label("input") == Some(input))
                })
                .map(|sample| sample.value as u64)
                .sum()
        };
        let names = &self.input_names;
        let file_read = value("ringway_input_bytes_total", Some(&names[0]));
        let udp_received = value("ringway_input_records_total", Some(&names[1]));
        let udp_dropped = samples
            .iter()
            .filter(|sample| {
                sample.name == "ringway_dropped_records_total"
                    && sample.label("reason") == Some("kernel_drops")
            })
            .map(|sample| sample.value as u64)
            .sum::<u64>();
        let otlp_accepted = value("ringway_otlp_records_accepted_total", Some(&names[2]));
        let read = value("ringway_input_records_total", None);
        let written = value("ringway_output_records_total", None);
        Ok(file_read == SourceCounters::get(&counters[0].bytes)
            && udp_received + udp_dropped == SourceCounters::get(&counters[1].records)
            && otlp_accepted == SourceCounters::get(&counters[2].records)
            && written == read)
    }

    /// Closes the light's pipe (the child turns it green and drains), waits
    /// for the child's exit and reads its summary.
    fn stop(&mut self) -> Result<Summary, String> {
        self.stdin = None;
        let deadline = Instant::now() + CHILD_SHUTDOWN + CHILD_EXIT_GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the demo's pipeline did not stop in time (killed)".to_string());
                }
            }
        };
        if !status.success() {
            return Err(format!("the demo's pipeline ended with {status}"));
        }
        let text = std::fs::read_to_string(&self.summary)
            .map_err(|error| format!("cannot read the pipeline's summary: {error}"))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| format!("the pipeline's summary is not JSON: {error}"))?;
        let inputs = &json["inputs"];
        Ok(Summary {
            kernel_drops: inputs[1]["kernel_drops"].as_u64().unwrap_or_default(),
            http_429: inputs[2]["http_responses"]["429"]
                .as_u64()
                .unwrap_or_default(),
        })
    }

    /// The last lines of the child's stderr, for a failure.
    fn show_log(&self) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        if !tail.is_empty() {
            eprintln!("ringway: the demo pipeline's last messages:");
            for line in tail {
                eprintln!("  {line}");
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the pipe stops the child; a child that does not stop in
        // time (or was never told) is killed: nothing outlives the demo.
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let deadline = Instant::now() + CHILD_SHUTDOWN + CHILD_EXIT_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The demo's temporary directory (the source file, the output file, the
/// child's log and summary), removed with everything in it when dropped.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        let mut attempt = 0;
        loop {
            let path = base.join(format!("ringway-demo-{}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(error)
                    if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn source_file(&self) -> PathBuf {
        self.path.join("source.log")
    }

    fn sink_file(&self) -> PathBuf {
        self.path.join("output.log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_light_is_green_for_its_share_of_each_cycle_unless_held() {
        let mut light = Light::new(Duration::from_secs(1), 30);
        let at = |millis: u64| light.epoch + Duration::from_millis(millis);
        let (early, late, next_cycle) = (at(100), at(500), at(1_100));
        assert!(light.is_green_at(early) && light.is_green_at(next_cycle));
        assert!(!light.is_green_at(late));
        assert_eq!(light.next_change(early), at(300));
        assert_eq!(light.next_change(late), at(1_000));
        light.change_green(-40);
        assert_eq!(light.green_percent, 0);
        assert!(!light.is_green_at(early));
        light.change_green(200);
        assert_eq!(light.green_percent, 100);
        light.held_red = true;
        assert!(!light.is_green_at(early));
        light.hold_green();
        assert!(light.is_green_at(late));
    }

    #[test]
    fn the_green_share_is_the_time_green_since_the_last_sample() {
        let mut light = Light::new(Duration::from_secs(1), 50);
        let epoch = light.epoch;
        light.advance(epoch + Duration::from_millis(500));
        light.advance(epoch + Duration::from_millis(1_000));
        let share = light.take_green_share();
        assert!((share - 0.5).abs() < 1e-9, "{share}");
    }
}
