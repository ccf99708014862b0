//! `ringway top`: a live terminal view of a running ringway, read from its
//! `--metrics` endpoint once a second.
//!
//! [`fetch`] gets `/metrics` over plain HTTP/1.1, [`parse`] reads the
//! exposition text line by line into [`Sample`]s, [`Snapshot`] keeps what
//! the view needs, and [`draw`] renders two snapshots (for rates) into at
//! most [`COLUMNS`] columns. [`RawTerminal`] puts the terminal in raw mode
//! on the alternate screen and restores it when dropped, on every way out.
//! When stdout is not a terminal (a pipe, a file), [`run`] prints one plain
//! snapshot instead, with rates over one poll interval, and exits.

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Width the view fits in.
pub(crate) const COLUMNS: usize = 80;
/// How often /metrics is polled.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Connect and read timeout of one poll.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest /metrics answer read.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;
/// Characters of an input or output name shown (longer ones are cut).
const NAME_COLUMNS: usize = 46;
/// Cells of a ring's bar.
const BAR_CELLS: usize = 30;

/// Stages in pipeline order: metric label and what the view calls it.
pub(crate) const STAGES: [(&str, &str); 3] = [
    ("io_to_cpu", "io→cpu"),
    ("cpu_to_dispatcher", "cpu→dispatcher"),
    ("dispatcher_to_worker", "dispatcher→worker"),
];

/// Runs the view until q or Ctrl-C; returns the exit code.
pub(crate) fn run(address: &str) -> i32 {
    let resolved = match address.to_socket_addrs().map(|mut all| all.next()) {
        Ok(Some(resolved)) => resolved,
        Ok(None) | Err(_) => {
            eprintln!("ringway: error: --metrics {address} is not a HOST:PORT address");
            return 1;
        }
    };
    let Some(first) = poll(resolved, || {
        format!("nothing answers at {address} (is ringway running with --metrics {address}?)")
    }) else {
        return 1;
    };
    if !std::io::stdout().is_terminal() {
        return snapshot(address, resolved, first);
    }
    let terminal = RawTerminal::enter();
    let outcome = view(address, resolved, first, terminal.as_ref());
    drop(terminal);
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("ringway: error: cannot draw the view; error = {error}");
            1
        }
    }
}

/// For a pipe or a file: a second poll one interval after the first, then
/// one plain frame (no escape codes, `\n` line ends, no padding) with the
/// rates between the two; returns the exit code.
fn snapshot(address: &str, resolved: SocketAddr, first: Snapshot) -> i32 {
    std::thread::sleep(POLL_INTERVAL);
    let Some(second) = poll(resolved, || {
        format!("no answer from {address} at the second poll")
    }) else {
        return 1;
    };
    let mut text = String::new();
    for line in draw(address, Some(&first), &second, None, Style::Plain) {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        // A reader that went away (`| head`) is not worth a message.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            eprintln!("ringway: error: cannot write the snapshot; error = {error}");
            1
        }
    }
}

fn view(
    address: &str,
    resolved: SocketAddr,
    first: Snapshot,
    terminal: Option<&RawTerminal>,
) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut previous: Option<Snapshot> = None;
    let mut current = first;
    let mut problem: Option<String> = None;
    loop {
        let lines = draw(
            address,
            previous.as_ref(),
            &current,
            problem.as_deref(),
            Style::Screen,
        );
        stdout.write_all(screen_frame(&lines).as_bytes())?;
        stdout.flush()?;
        let next_poll = Instant::now() + POLL_INTERVAL;
        if wait_for_quit(terminal, next_poll) {
            return Ok(());
        }
        match fetch(resolved) {
            Ok(text) => {
                previous = Some(std::mem::replace(
                    &mut current,
                    Snapshot::from_samples(&parse(&text)),
                ));
                problem = None;
            }
            Err(error) => problem = Some(format!("no answer from {address}: {error}")),
        }
    }
}

/// Waits until `deadline` for a key; true when it was q or Ctrl-C.
fn wait_for_quit(terminal: Option<&RawTerminal>, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let Some(_) = terminal else {
            std::thread::sleep(left);
            return false;
        };
        match event::poll(left) {
            Ok(true) => {}
            Ok(false) => continue,
            // The terminal went away: nothing can ask us to quit any more.
            Err(_) => return true,
        }
        match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                let quit = match key.code {
                    KeyCode::Char('q' | 'Q') => true,
                    KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
                    _ => false,
                };
                if quit {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

/// The terminal in raw mode (no echo, no line editing, Ctrl-C as a key) on
/// the alternate screen with the cursor hidden; dropping it restores all.
pub(crate) struct RawTerminal;

impl RawTerminal {
    /// `None` when stdin is not a terminal: the view then only draws.
    pub fn enter() -> Option<Self> {
        if !std::io::stdin().is_terminal() || terminal::enable_raw_mode().is_err() {
            return None;
        }
        let _ = execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide);
        Some(Self)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), cursor::Show, LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// One poll of the endpoint, or `None` after saying on stderr what did not
/// answer (`failure`) and why.
fn poll(resolved: SocketAddr, failure: impl FnOnce() -> String) -> Option<Snapshot> {
    match fetch(resolved) {
        Ok(text) => Some(Snapshot::from_samples(&parse(&text))),
        Err(error) => {
            eprintln!("ringway: error: {}; error = {error}", failure());
            None
        }
    }
}

/// GET /metrics; the body of a 200 answer.
pub(crate) fn fetch(address: SocketAddr) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, FETCH_TIMEOUT).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(FETCH_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(FETCH_TIMEOUT)))
        .and_then(|()| {
            stream.write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        })
        .map_err(|error| error.to_string())?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .map_err(|error| error.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the answer is {status:?}, not 200"));
    }
    Ok(body.to_string())
}

/// One sample of the exposition text.
#[derive(Debug, PartialEq)]
pub(crate) struct Sample {
    pub name: String,
    labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Every sample of an exposition text; comments and lines it cannot read
/// are skipped.
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// `name{label="value",...} value [timestamp]`.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            // Skip separators before a key, or end at the closing brace.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &after_brace[start + 1..];
                break;
            }
            let mut key = String::from(c);
            loop {
                let (_, c) = chars.next()?;
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.push((key.trim().to_string(), value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Per-name figures of one input or output.
#[derive(Clone, Copy, Default)]
pub(crate) struct Flow {
    pub records: f64,
    pub bytes: f64,
    failing: bool,
}

/// What the view shows of one poll.
pub(crate) struct Snapshot {
    at: Instant,
    /// In the order the exposition lists them (the order of the flags).
    pub inputs: Vec<(String, Flow)>,
    outputs: Vec<(String, Flow)>,
    /// Per stage label: (occupancy, capacity).
    pub rings: BTreeMap<String, (f64, f64)>,
    /// Per input, in the exposition's order: (occupancy, capacity) of its
    /// io→cpu and cpu→dispatcher rings.
    pub input_rings: Vec<(String, [(f64, f64); 2])>,
    /// Dropped records by reason, over every input.
    pub dropped: BTreeMap<String, f64>,
    retries: f64,
    rejects: f64,
    checkpoint_lag_bytes: f64,
    latency_sum_seconds: f64,
    latency_count: f64,
}

fn entry<'a>(list: &'a mut Vec<(String, Flow)>, name: &str) -> &'a mut Flow {
    let index = match list.iter().position(|(existing, _)| existing == name) {
        Some(index) => index,
        None => {
            list.push((name.to_string(), Flow::default()));
            list.len() - 1
        }
    };
    &mut list[index].1
}

impl Snapshot {
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut snapshot = Snapshot {
            at: Instant::now(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            rings: BTreeMap::new(),
            input_rings: Vec::new(),
            dropped: BTreeMap::new(),
            retries: 0.0,
            rejects: 0.0,
            checkpoint_lag_bytes: 0.0,
            latency_sum_seconds: 0.0,
            latency_count: 0.0,
        };
        for sample in samples {
            let input = sample.label("input").unwrap_or_default();
            let output = sample.label("output").unwrap_or_default();
            let stage = sample.label("stage").unwrap_or_default();
            match sample.name.as_str() {
                "ringway_input_records_total" => {
                    entry(&mut snapshot.inputs, input).records = sample.value
                }
                "ringway_input_bytes_total" => {
                    entry(&mut snapshot.inputs, input).bytes = sample.value
                }
                "ringway_output_records_total" => {
                    entry(&mut snapshot.outputs, output).records = sample.value
                }
                "ringway_output_bytes_total" => {
                    entry(&mut snapshot.outputs, output).bytes = sample.value
                }
                "ringway_output_failing" => {
                    entry(&mut snapshot.outputs, output).failing = sample.value > 0.0
                }
                "ringway_output_retries_total" => snapshot.retries += sample.value,
                "ringway_output_rejects_total" => snapshot.rejects += sample.value,
                "ringway_checkpoint_lag_bytes" => snapshot.checkpoint_lag_bytes += sample.value,
                "ringway_dropped_records_total" => {
                    let reason = sample.label("reason").unwrap_or("other").to_string();
                    *snapshot.dropped.entry(reason).or_default() += sample.value;
                }
                "ringway_ring_occupancy" => {
                    snapshot.rings.entry(stage.to_string()).or_default().0 = sample.value
                }
                "ringway_ring_capacity" => {
                    snapshot.rings.entry(stage.to_string()).or_default().1 = sample.value
                }
                "ringway_input_ring_occupancy" | "ringway_input_ring_capacity" => {
                    let index = STAGES.iter().position(|(label, _)| *label == stage);
                    if let Some(index) = index.filter(|&index| index < 2) {
                        let rings = match snapshot
                            .input_rings
                            .iter()
                            .position(|(name, _)| name == input)
                        {
                            Some(at) => &mut snapshot.input_rings[at].1,
                            None => {
                                snapshot
                                    .input_rings
                                    .push((input.to_string(), Default::default()));
                                &mut snapshot.input_rings.last_mut().expect("pushed").1
                            }
                        };
                        if sample.name == "ringway_input_ring_occupancy" {
                            rings[index].0 = sample.value;
                        } else {
                            rings[index].1 = sample.value;
                        }
                    }
                }
                "ringway_batch_latency_seconds_sum" => snapshot.latency_sum_seconds = sample.value,
                "ringway_batch_latency_seconds_count" => snapshot.latency_count = sample.value,
                _ => {}
            }
        }
        snapshot
    }
}

/// Where a frame goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// The live view on a terminal, redrawn every poll.
    Screen,
    /// One snapshot for a pipe or a file.
    Plain,
}

/// The view's lines, each cut and padded to [`COLUMNS`].
pub(crate) fn draw(
    address: &str,
    previous: Option<&Snapshot>,
    current: &Snapshot,
    problem: Option<&str>,
    style: Style,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    lines.push(match style {
        Style::Screen => format!(
            "ringway top · {address} · every {}s · q quits",
            POLL_INTERVAL.as_secs()
        ),
        Style::Plain => format!(
            "ringway top · {address} · rates over {}s",
            POLL_INTERVAL.as_secs()
        ),
    });
    lines.push(problem.map_or_else(String::new, |problem| format!("! {problem} (retrying)")));
    let seconds = previous.map(|previous| {
        current
            .at
            .duration_since(previous.at)
            .as_secs_f64()
            .max(1e-3)
    });
    let rate = |now: f64, before: Option<f64>, decimals: usize| -> String {
        match (seconds, before) {
            (Some(seconds), Some(before)) => {
                format!("{:.decimals$}", (now - before).max(0.0) / seconds)
            }
            _ => "-".to_string(),
        }
    };
    let flows = |title: &str,
                 now: &[(String, Flow)],
                 before: Option<&[(String, Flow)]>,
                 lines: &mut Vec<String>| {
        lines.push(format!(
            "{:<width$} {:>12} {:>10}",
            title,
            "records/s",
            "MB/s",
            width = NAME_COLUMNS + 2
        ));
        for (name, flow) in now {
            let earlier = before
                .and_then(|before| before.iter().find(|(other, _)| other == name))
                .map(|(_, flow)| *flow);
            let megabytes = |flow: Flow| flow.bytes / 1e6;
            let mut line = format!(
                "  {} {:>12} {:>10}",
                fit(name, NAME_COLUMNS),
                rate(flow.records, earlier.map(|flow| flow.records), 1),
                rate(megabytes(*flow), earlier.map(megabytes), 2),
            );
            if flow.failing {
                line.push_str(" FAILING");
            }
            lines.push(line);
        }
    };
    flows(
        "INPUTS",
        &current.inputs,
        previous.map(|p| p.inputs.as_slice()),
        &mut lines,
    );
    flows(
        "OUTPUTS",
        &current.outputs,
        previous.map(|p| p.outputs.as_slice()),
        &mut lines,
    );
    lines.push("RINGS (batches queued / capacity)".to_string());
    for (label, shown) in STAGES {
        let (occupancy, capacity) = current.rings.get(label).copied().unwrap_or_default();
        lines.push(format!(
            "  {shown:<18} {} {:>5}/{}",
            bar(occupancy, capacity),
            occupancy,
            capacity
        ));
    }
    let dropped: Vec<String> = current
        .dropped
        .iter()
        .map(|(reason, count)| format!("{} {count}", reason.replace('_', " ")))
        .collect();
    lines.push(format!("dropped: {}", dropped.join(", ")));
    lines.push(format!(
        "output retries {} rejects {} · checkpoint lag {} bytes",
        current.retries, current.rejects, current.checkpoint_lag_bytes
    ));
    let latency = match previous {
        Some(previous) if current.latency_count > previous.latency_count => {
            let count = current.latency_count - previous.latency_count;
            let sum = current.latency_sum_seconds - previous.latency_sum_seconds;
            format!(
                "{:.1} ms mean over the last {count} batches",
                1e3 * sum / count
            )
        }
        _ => "no batch delivered since the last poll".to_string(),
    };
    lines.push(format!("batch latency: {latency}"));

    lines.iter().map(|line| fit(line, COLUMNS)).collect()
}

/// A frame for the terminal: home the cursor, clear, then the lines (raw
/// mode needs `\r\n`).
pub(crate) fn screen_frame(lines: &[String]) -> String {
    let mut frame = format!("{}{}", cursor::MoveTo(0, 0), Clear(ClearType::All));
    for line in lines {
        frame.push_str(line);
        frame.push_str("\r\n");
    }
    frame
}

/// `text` cut to `columns` characters (a cut one ends in `…`), padded to it.
pub(crate) fn fit(text: &str, columns: usize) -> String {
    let count = text.chars().count();
    if count <= columns {
        return format!("{text:<columns$}");
    }
    let mut cut: String = text.chars().take(columns - 1).collect();
    cut.push('…');
    cut
}

/// `[####------]`: filled in proportion to occupancy; any occupancy shows
/// at least one cell.
pub(crate) fn bar(occupancy: f64, capacity: f64) -> String {
    bar_of(BAR_CELLS, occupancy, capacity)
}

/// A [`bar`] of `cells` cells.
pub(crate) fn bar_of(cells: usize, occupancy: f64, capacity: f64) -> String {
    let fraction = if capacity > 0.0 {
        (occupancy / capacity).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut filled = (fraction * cells as f64).round() as usize;
    if occupancy > 0.0 {
        filled = filled.max(1);
    }
    format!("[{}{}]", "#".repeat(filled), "-".repeat(cells - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_with_escapes_and_values() {
        let samples = parse(
            "# HELP x y\n# TYPE x counter\nx_total{input=\"a\\\"b\\\\c\\nd\",code=\"200\"} 12\nplain 3.5 1700000000\nbad line\nh_bucket{le=\"+Inf\"} 7\n",
        );
        assert_eq!(
            samples,
            vec![
                Sample {
                    name: "x_total".into(),
                    labels: vec![
                        ("input".into(), "a\"b\\c\nd".into()),
                        ("code".into(), "200".into())
                    ],
                    value: 12.0,
                },
                Sample {
                    name: "plain".into(),
                    labels: vec![],
                    value: 3.5,
                },
                Sample {
                    name: "h_bucket".into(),
                    labels: vec![("le".into(), "+Inf".into())],
                    value: 7.0,
                },
            ]
        );
    }

    #[test]
    fn bars_show_occupancy_against_capacity() {
        assert_eq!(bar(0.0, 4.0), format!("[{}]", "-".repeat(BAR_CELLS)));
        assert_eq!(bar(4.0, 4.0), format!("[{}]", "#".repeat(BAR_CELLS)));
        assert_eq!(bar(1.0, 1000.0).matches('#').count(), 1);
        assert_eq!(bar(2.0, 4.0).matches('#').count(), BAR_CELLS / 2);
    }

    #[test]
    fn every_line_of_a_frame_fits_80_columns() {
        let text = "ringway_input_records_total{input=\"file:/a/very/long/path/that/goes/on/and/on/and/on/forever/app.log\"} 1\n\
                    ringway_output_records_total{output=\"null\"} 1\n\
                    ringway_ring_occupancy{stage=\"io_to_cpu\"} 2\n\
                    ringway_ring_capacity{stage=\"io_to_cpu\"} 4\n";
        let snapshot = Snapshot::from_samples(&parse(text));
        for style in [Style::Screen, Style::Plain] {
            let lines = draw(
                "127.0.0.1:9464",
                Some(&snapshot),
                &snapshot,
                Some("x"),
                style,
            );
            for line in &lines {
                assert!(line.chars().count() <= COLUMNS, "{line:?}");
                assert!(!line.contains('\x1b'), "{line:?}");
            }
            assert!(lines.iter().any(|line| line.contains("io→cpu")));
        }
    }
}
