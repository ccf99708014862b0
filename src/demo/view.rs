//! What the demo shows: the live [`Screen`] (`ringway top`'s view under
//! the light, a legend and each source's reaction), the keys
//! ([`read_keys`]), the per-second table of `--no-tty` ([`print_rows`]) and
//! the tally's text ([`tally_text`]).

use super::tally::Tally;
use super::{History, Light, Pipeline, Sample};
use crate::cli::DemoArgs;
use crate::top::{self, COLUMNS, RawTerminal, Style};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::Stylize;
use std::io::Write;
use std::time::{Duration, Instant};

/// One key press of ← or → changes the green share by this much.
const GREEN_STEP_PERCENT: i16 = 10;
/// Samples in one second (the table's rows, the screen's rates).
const SAMPLES_PER_SECOND: usize = 4;
const _: () = assert!(
    SAMPLES_PER_SECOND as u128 * super::SAMPLE_INTERVAL.as_millis() == 1000,
    "a table row is one second of samples"
);

/// The one-line legend under the light.
const LEGEND: &str = "output writes only on green · on red the rings fill, then each source reacts";

/// The live view's state between frames.
pub(crate) struct Screen {
    duration: Duration,
}

impl Screen {
    pub fn new(duration: Duration) -> Self {
        Self { duration }
    }

    /// Draws the newest snapshot and samples.
    pub fn draw(
        &mut self,
        pipeline: &Pipeline,
        light: &Light,
        history: &History,
    ) -> Result<(), String> {
        let mut lines = self.lines(pipeline, light, history);
        // The lamp in colour; the text says the same without it.
        let (word, lamp) = if light.green_now {
            ("GREEN", "GREEN".green().bold())
        } else {
            ("RED  ", "RED  ".red().bold())
        };
        lines[1] = lines[1].replacen(word, &lamp.to_string(), 1);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(top::screen_frame(&lines).as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|error| format!("cannot draw the view; error = {error}"))
    }

    fn lines(&self, pipeline: &Pipeline, light: &Light, history: &History) -> Vec<String> {
        let latest = history.samples.back().copied().unwrap_or_default();
        let mut lines = vec![
            format!(
                "ringway demo · {:.0}s of {}s · ←/→ green ±10% · space holds red · q quits",
                latest.at_seconds.min(self.duration.as_secs_f64()),
                self.duration.as_secs()
            ),
            light_line(light),
            LEGEND.to_string(),
        ];
        if let (Some(current), Some(previous)) =
            (history.snapshots.back(), history.snapshots.front())
        {
            let previous = (history.snapshots.len() > 1).then_some(previous);
            let address = pipeline.metrics.to_string();
            // `ringway top`'s view, without its title: the demo has its own.
            lines.extend(
                top::draw(&address, previous, current, None, Style::Screen)
                    .into_iter()
                    .skip(2),
            );
        }
        if let Some(current) = history.snapshots.back() {
            lines.extend(input_rings(current, pipeline));
        }
        let earlier = history
            .samples
            .iter()
            .rev()
            .nth(SAMPLES_PER_SECOND)
            .copied()
            .unwrap_or_default();
        lines.extend(reactions(&earlier, &latest));
        lines.iter().map(|line| top::fit(line, COLUMNS)).collect()
    }
}

/// Cells of each per-input ring bar.
const INPUT_BAR_CELLS: usize = 16;

/// One line per input: a bar for each of its two rings.
fn input_rings(snapshot: &top::Snapshot, pipeline: &Pipeline) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<9}{:<27}{}",
        "BY INPUT",
        top::STAGES[0].1,
        top::STAGES[1].1
    )];
    for (short, name) in ["file", "UDP", "OTLP"].iter().zip(&pipeline.input_names) {
        let rings = snapshot
            .input_rings
            .iter()
            .find(|(input, _)| input == name)
            .map(|(_, rings)| *rings)
            .unwrap_or_default();
        let shown = |(occupancy, capacity): (f64, f64)| {
            format!(
                "{} {:>5}",
                top::bar_of(INPUT_BAR_CELLS, occupancy, capacity),
                format!("{occupancy}/{capacity}")
            )
        };
        lines.push(format!(
            "  {short:<7}{}   {}",
            shown(rings[0]),
            shown(rings[1])
        ));
    }
    lines
}

fn light_line(light: &Light) -> String {
    let (lamp, colour) = if light.green_now {
        ("(●) ( )", "GREEN")
    } else {
        ("( ) (●)", "RED")
    };
    let share = if light.held_red {
        "held red (space releases)".to_string()
    } else {
        format!(
            "green {}% of each {}",
            light.green_percent,
            seconds(light.cycle)
        )
    };
    format!("LIGHT {lamp} {colour:<5} · {share}")
}

/// `1s`, `1.5s`, `250ms`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// How each source reacts, from two samples about a second apart.
fn reactions(earlier: &Sample, latest: &Sample) -> Vec<String> {
    let per_second = |now: f64, before: f64| {
        let span = (latest.at_seconds - earlier.at_seconds).max(1e-3);
        (now - before).max(0.0) / span
    };
    // Paused: the reader fell further behind the writer over the second.
    let file_state = if latest.file_behind_bytes > earlier.file_behind_bytes {
        "PAUSED (rings full; the bytes wait on disk)"
    } else if latest.file_behind_bytes < earlier.file_behind_bytes {
        "catching up"
    } else {
        "reading"
    };
    vec![
        format!(
            "REACTION file {} behind · {file_state}",
            kilobytes(latest.file_behind_bytes)
        ),
        format!(
            "         UDP  kernel drops {:.0}/s ({:.0} in all) of {:.0} sent",
            per_second(latest.udp_kernel_drops, earlier.udp_kernel_drops),
            latest.udp_kernel_drops,
            latest.udp_sent
        ),
        format!(
            "         OTLP 429s {:.0}/s ({:.0} in all) · {:.0} retries · {:.0} records sent",
            per_second(latest.otlp_refused, earlier.otlp_refused),
            latest.otlp_refused,
            latest.otlp_retries,
            latest.otlp_sent
        ),
    ]
}

fn kilobytes(bytes: f64) -> String {
    format!("{:.1} KB", bytes / 1e3)
}

/// Waits for keys until `deadline`: ←/→ change the green share, space
/// holds the light red (again: releases it). True at q or Ctrl-C.
pub(crate) fn read_keys(
    _terminal: &RawTerminal,
    light: &mut Light,
    deadline: Instant,
) -> Result<bool, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        // The terminal went away: nothing can ask us anything any more.
        let Ok(ready) = event::poll(left) else {
            return Ok(true);
        };
        if !ready {
            continue;
        }
        let Ok(event) = event::read() else {
            return Ok(true);
        };
        let Event::Key(key) = event else { continue };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        match key.code {
            KeyCode::Char('q' | 'Q') => return Ok(true),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Ok(true);
            }
            KeyCode::Left => light.change_green(-GREEN_STEP_PERCENT),
            KeyCode::Right => light.change_green(GREEN_STEP_PERCENT),
            KeyCode::Char(' ') => light.held_red = !light.held_red,
            _ => continue,
        }
        // A change shows (and switches the light) at once.
        return Ok(false);
    }
}

/// Prints `text` and a newline on stdout. A reader that went away
/// (`| head`) is not an error: the demo still ends in order and cleans up.
pub(crate) fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// The lines before the `--no-tty` table: what runs, and the header.
pub(crate) fn table_intro(args: &DemoArgs, command_line: &str) -> String {
    format!(
        "ringway demo: {} with the light green {}% of each {} ({LEGEND})\npipeline: {command_line}\n{:>6} {:>5} {:>8} {:>8} {:>8} {:>11} {:>9} {:>8} {:>7} {:>8}",
        seconds(args.duration),
        args.green,
        seconds(args.cycle),
        "time",
        "green",
        "io→cpu",
        "cpu→dsp",
        "dsp→wkr",
        "file behind",
        "UDP drop",
        "OTLP 429",
        "retries",
        "written",
    )
}

/// One second of samples as a table row: the green share, each stage's
/// fullest reading, where the file reader stood at its end, and what
/// happened in it.
struct Row {
    second: usize,
    /// The green shares of its samples, summed.
    green: f64,
    samples: usize,
    rings: [(f64, f64); 3],
    last: Sample,
}

/// Prints the complete seconds not printed yet (with `limit` > 1 at the
/// end, also the last, partial one), at most `limit` rows.
pub(crate) fn print_rows(history: &mut History, limit: usize) {
    let samples = history.samples.make_contiguous();
    // From the last second printed on (its end is where the next row's
    // counts start): each call reads only what is new.
    let start =
        samples.partition_point(|sample| sample.at_seconds as usize + 1 < history.rows_printed);
    let mut rows: Vec<Row> = Vec::new();
    for sample in &samples[start..] {
        let second = sample.at_seconds as usize;
        match rows.last_mut() {
            Some(row) if row.second == second => {
                row.green += sample.green_share;
                row.samples += 1;
                fullest(&mut row.rings, sample.rings);
                row.last = *sample;
            }
            _ => rows.push(Row {
                second,
                green: sample.green_share,
                samples: 1,
                rings: sample.rings,
                last: *sample,
            }),
        }
    }
    let complete = if limit > 1 {
        rows.len()
    } else {
        rows.len().saturating_sub(1)
    };
    let mut stdout = std::io::stdout().lock();
    let mut before = Sample::default();
    let mut printed = 0;
    for (index, row) in rows.iter().enumerate().take(complete) {
        if index > 0 {
            before = rows[index - 1].last;
        }
        if row.second < history.rows_printed || printed == limit {
            continue;
        }
        let delta = |field: fn(&Sample) -> f64| (field(&row.last) - field(&before)).max(0.0);
        let ring = |(occupancy, capacity): (f64, f64)| format!("{occupancy}/{capacity}");
        let _ = writeln!(
            stdout,
            "{:>5}s {:>4.0}% {:>8} {:>8} {:>8} {:>11} {:>9} {:>8} {:>7} {:>8}",
            row.second + 1,
            100.0 * row.green / row.samples as f64,
            ring(row.rings[0]),
            ring(row.rings[1]),
            ring(row.rings[2]),
            kilobytes(row.last.file_behind_bytes),
            delta(|sample| sample.udp_kernel_drops),
            delta(|sample| sample.otlp_refused),
            delta(|sample| sample.otlp_retries),
            delta(|sample| sample.written),
        );
        history.rows_printed = row.second + 1;
        printed += 1;
    }
    let _ = stdout.flush();
}

/// Keeps in `peaks` each stage's fullest reading (and its capacity).
fn fullest(peaks: &mut [(f64, f64); 3], rings: [(f64, f64); 3]) {
    for (peak, now) in peaks.iter_mut().zip(rings) {
        peak.0 = peak.0.max(now.0);
        peak.1 = peak.1.max(now.1);
    }
}

/// The tally, with what the run showed around it.
pub(crate) fn tally_text(
    ran: Duration,
    light: &Light,
    history: &History,
    tally: &Tally,
    http_429: u64,
    settled: bool,
) -> String {
    let mut peaks = [(0.0f64, 0.0f64); 3];
    for sample in &history.samples {
        fullest(&mut peaks, sample.rings);
    }
    let rings: Vec<String> = top::STAGES
        .iter()
        .zip(peaks)
        .map(|((_, shown), (peak, capacity))| format!("{shown} {peak}/{capacity}"))
        .collect();
    let mut text = format!(
        "tally after {} at {}% green of each {} (then green to drain):\n{tally}",
        seconds(Duration::from_secs_f64(ran.as_secs_f64().round())),
        light.green_percent,
        seconds(light.cycle),
    );
    text.push_str(&format!(
        "  fullest rings: {}\n  ringway answered 429 {http_429} times\n",
        rings.join(" · ")
    ));
    if !settled {
        text.push_str(&format!(
            "  not everything sent was accounted for within {}s after the sources stopped\n",
            super::SETTLE_TIMEOUT.as_secs()
        ));
    }
    text
}
