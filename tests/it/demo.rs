//! `ringway demo` (issue 20): the tally's three promises hold exactly at
//! 30% green, where the rings fill, OTLP answers 429 and the kernel drops
//! UDP; at 100% green nothing is refused or dropped; the live view under
//! tmux answers ←/→, space and q; bad flags are one line and exit 2; and
//! nothing is left behind (the temporary directory, the child pipeline).
//!
//! The tmux test needs tmux; without it it prints "not run: ..." and
//! passes, except under CI, where it fails.

use crate::common::*;
use std::fs;
use std::time::Duration;

/// How long a demo of a few seconds may take on a loaded machine (its end
/// waits for the drain, bounded by the demo's own timeouts).
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ringway demo ARGS` with its temporary files under `dir`.
fn demo(dir: &TempDir, args: &[&str]) -> Finished {
    let mut words = vec!["demo"];
    words.extend(args);
    let tmp = dir.subdir("tmp");
    spawn_configured(dir, &words, |command| {
        command.env("TMPDIR", &tmp);
    })
    .wait(DEMO_TIMEOUT)
}

/// Runs the demo, which must exit 0; its stdout.
fn demo_holding(dir: &TempDir, args: &[&str]) -> String {
    let finished = demo(dir, args);
    let stdout = String::from_utf8_lossy(&finished.stdout).into_owned();
    assert_eq!(
        finished.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        finished.stderr
    );
    stdout
}

/// The numbers of the first line that starts with `prefix` (after leading
/// spaces), in order; `42/48` gives 42 and 48.
fn numbers(text: &str, prefix: &str) -> Vec<u64> {
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"));
    line[line.find(prefix).unwrap() + prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .map(|word| word.parse().unwrap())
        .collect()
}

/// What the tally says, read back from its lines.
struct Tally {
    file_written: u64,
    file_appended: u64,
    otlp_written: u64,
    otlp_sent: u64,
    otlp_retries: u64,
    udp_received: u64,
    udp_kernel_drops: u64,
    udp_sent: u64,
    /// Per stage: (fullest, capacity).
    rings: Vec<(u64, u64)>,
    answered_429: u64,
}

fn tally(stdout: &str) -> Tally {
    let file = numbers(stdout, "file: lines written");
    let otlp = numbers(stdout, "OTLP: records written");
    let udp = numbers(stdout, "UDP:  received");
    // "io→cpu 12/12 · cpu→dispatcher 48/48 · dispatcher→worker 2/2"
    let rings = numbers(stdout, "fullest rings:");
    Tally {
        file_written: file[0],
        file_appended: file[1],
        otlp_written: otlp[0],
        otlp_sent: otlp[1],
        otlp_retries: otlp[2],
        udp_received: udp[0],
        udp_kernel_drops: udp[1],
        udp_sent: udp[2],
        rings: rings.chunks(2).map(|pair| (pair[0], pair[1])).collect(),
        answered_429: numbers(stdout, "ringway answered 429")[0],
    }
}

/// Panics if the demo left its temporary directory or a process behind.
fn assert_nothing_left(dir: &TempDir) {
    let left: Vec<_> = fs::read_dir(dir.join("tmp"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
    let tmp = p(&dir.join("tmp"));
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !(cmdline.contains(&tmp) && cmdline.contains("--traffic-light")),
            "the demo's pipeline still runs: {cmdline}"
        );
    }
}

#[test]
fn demo_at_30_percent_green_fills_the_rings_refuses_otlp_and_keeps_every_promise() {
    let dir = TempDir::new("demo-30");
    let stdout = demo_holding(&dir, &["--no-tty", "--duration", "10s", "--green", "30%"]);
    let tally = tally(&stdout);
    // The three promises, exactly, on figures the test reads itself.
    assert!(tally.file_appended > 0, "{stdout}");
    assert_eq!(tally.file_written, tally.file_appended, "{stdout}");
    assert!(tally.otlp_sent > 0, "{stdout}");
    assert_eq!(tally.otlp_written, tally.otlp_sent, "{stdout}");
    assert_eq!(
        tally.udp_received + tally.udp_kernel_drops,
        tally.udp_sent,
        "{stdout}"
    );
    // At 30% green the cascade reaches every source.
    assert_eq!(tally.rings.len(), 3, "{stdout}");
    for (fullest, capacity) in &tally.rings {
        assert!(
            *capacity > 0 && fullest == capacity,
            "a ring never filled:\n{stdout}"
        );
    }
    assert!(tally.answered_429 >= 1, "{stdout}");
    assert!(tally.otlp_retries >= 1, "{stdout}");
    assert!(tally.udp_kernel_drops > 0, "{stdout}");
    assert!(stdout.contains("tally: every promise holds"), "{stdout}");
    // One table row per second of the run (and the drain after it).
    let rows = stdout
        .lines()
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or_default();
            first.ends_with('s') && first[..first.len() - 1].parse::<u32>().is_ok()
        })
        .count();
    assert!(rows >= 10, "{rows} table rows:\n{stdout}");
    assert_nothing_left(&dir);
}

#[test]
fn demo_at_full_green_neither_refuses_nor_drops_and_writes_a_plot() {
    let dir = TempDir::new("demo-100");
    let plot = dir.join("demo.svg");
    // At 100% green the light never holds anything back; a 429 or a drop
    // can then only come from the machine stalling ringway's threads,
    // which CI's parallel tests on 2 cores did once in a few runs (a CPU
    // worker held ~100 ms: its ring of 4 filled and OTLP got a 429). So a
    // run that shows one is run once more, and the second must be clean: a
    // light that held anything back would fail both.
    let run = || {
        demo_holding(
            &dir,
            &[
                "--no-tty",
                "--duration",
                "5s",
                "--green",
                "100%",
                "--plot",
                &p(&plot),
            ],
        )
    };
    let mut stdout = run();
    let first = tally(&stdout);
    if first.answered_429 > 0 || first.otlp_retries > 0 || first.udp_kernel_drops > 0 {
        eprintln!(
            "demo at 100% green: a 429 or a drop under load; running it once more:\n{stdout}"
        );
        stdout = run();
    }
    let tally = tally(&stdout);
    assert_eq!(tally.answered_429, 0, "{stdout}");
    assert_eq!(tally.otlp_retries, 0, "{stdout}");
    assert_eq!(tally.udp_kernel_drops, 0, "{stdout}");
    assert_eq!(tally.udp_received, tally.udp_sent, "{stdout}");
    assert_eq!(tally.file_written, tally.file_appended, "{stdout}");
    assert_eq!(tally.otlp_written, tally.otlp_sent, "{stdout}");
    let svg = fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline ").count(), 6, "{svg}");
    assert_nothing_left(&dir);
}

#[test]
fn demo_refuses_bad_flags_with_one_line_and_exit_2() {
    let dir = TempDir::new("demo-flags");
    for (args, names) in [
        (&["--green", "150%"][..], "--green"),
        (&["--duration", "x"][..], "--duration"),
        (&["--green", "abc"][..], "--green"),
        (&["--cycle", "10ms"][..], "--cycle"),
    ] {
        let finished = demo(&dir, args);
        finished.assert_code(2);
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(
            lines[0].starts_with("ringway: error: ") && lines[0].contains(names),
            "{args:?}: {lines:?}"
        );
        assert!(finished.stdout.is_empty(), "{args:?}");
    }
}

/// Waits until the screen shows every one of `wanted`; whether it did,
/// and the last screen.
fn shows(tmux: &Tmux, wanted: &[&str]) -> (bool, String) {
    let mut screen = String::new();
    let shown = wait_until(Duration::from_secs(30), || {
        screen = tmux.capture();
        wanted.iter().all(|text| screen.contains(text))
    });
    (shown, screen)
}

#[test]
fn demo_under_tmux_answers_the_arrows_space_and_q() {
    if !Tmux::available() {
        return;
    }
    let dir = TempDir::new("demo-tmux");
    let tmp = dir.subdir("tmp");
    let status = dir.join("status");
    // After q the tally is printed on the normal screen; the shell then
    // records the exit code and keeps the session for the capture.
    let command = format!(
        "TMPDIR={} {} demo --duration 120s --green 50%; echo $? > {}; sleep 600",
        p(&tmp),
        ringway_bin(),
        p(&status)
    );
    let tmux = Tmux::start("demo", 30, &command);
    let (shown, screen) = shows(
        &tmux,
        &[
            "LIGHT",
            "green 50% of each 1s",
            "io→cpu",
            "BY INPUT",
            "REACTION",
        ],
    );
    assert!(shown, "the demo's screen did not appear:\n{screen}");
    assert!(
        screen.lines().all(|line| line.chars().count() <= 80),
        "{screen}"
    );
    tmux.send_keys(&["Right"]);
    let (shown, screen) = shows(&tmux, &["green 60% of each 1s"]);
    assert!(shown, "→ did not add 10%:\n{screen}");
    tmux.send_keys(&["Left", "Left"]);
    let (shown, screen) = shows(&tmux, &["green 40% of each 1s"]);
    assert!(shown, "← did not take 10%:\n{screen}");
    tmux.send_keys(&["Space"]);
    // Held red, the rings fill and stay full, and the file reader pauses.
    let (shown, screen) = shows(&tmux, &["held red", "RED", "12/12", "48/48", "PAUSED"]);
    assert!(
        shown,
        "space did not hold the light red until the rings filled:\n{screen}"
    );
    // Every input's own bars: io→cpu 4/4 and cpu→dispatcher 16/16 each.
    let full_inputs = screen
        .lines()
        .filter(|line| line.contains(" 4/4 ") && line.trim_end().ends_with("16/16"))
        .count();
    assert_eq!(
        full_inputs, 3,
        "not every input's rings are full:\n{screen}"
    );
    tmux.send_keys(&["Space"]);
    let (shown, screen) = shows(&tmux, &["green 40% of each 1s"]);
    assert!(shown, "space did not release the light:\n{screen}");
    tmux.send_keys(&["q"]);
    assert!(
        wait_until(DEMO_TIMEOUT, || status.exists()),
        "the demo did not end at q:\n{}",
        tmux.capture()
    );
    let screen = tmux.capture();
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "0", "{screen}");
    assert!(screen.contains("tally: every promise holds"), "{screen}");
    assert_nothing_left(&dir);
}
