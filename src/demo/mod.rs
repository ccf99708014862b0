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

mod child;
mod plot;
mod sources;
mod tally;
mod view;

use crate::cli::DemoArgs;
use crate::top::{RawTerminal, Snapshot};
use child::{Pipeline, TempDir};
use sources::SourceCounters;
use std::collections::VecDeque;
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
/// Longest the end waits for everything sent to be accounted for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

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
