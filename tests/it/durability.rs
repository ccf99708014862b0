//! Durable file tailing (DESIGN §3): ack-driven checkpoints in --data-dir,
//! restart after `kill -9`, torn output lines, corrupt state files, a stalled
//! output, many files under --max-open-files.

use crate::common::*;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The default --checkpoint-interval.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

fn tail_args(input: &Path, output: &Path, data: &Path) -> Vec<String> {
    vec![
        "run".into(),
        "--input".into(),
        format!("file:{}", p(input)),
        "--output".into(),
        format!("file:{}", p(output)),
        "--data-dir".into(),
        p(data),
        "--stats-interval".into(),
        "0".into(),
    ]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A directory with `in.log`, `out.log` and a data dir, and the arguments
/// of a run that reads to EOF with checkpoints.
struct EofSetup {
    dir: TempDir,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    data: std::path::PathBuf,
    eof_args: Vec<String>,
}

impl EofSetup {
    fn new(label: &str) -> Self {
        let dir = TempDir::new(label);
        let input = dir.join("in.log");
        let output = dir.join("out.log");
        let data = dir.join("data");
        let mut eof_args = tail_args(&input, &output, &data);
        eof_args.push("--exit-on-eof".into());
        Self {
            dir,
            input,
            output,
            data,
            eof_args,
        }
    }

    fn run(&self) -> Finished {
        run(&self.dir, &as_strs(&self.eof_args), TIMEOUT)
    }
}

/// The saved offsets of every file of every input, by path.
fn checkpoint_offsets(data: &Path) -> Vec<(String, u64)> {
    let Ok(text) = fs::read(data.join("checkpoints.json")) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_slice(&text).expect("checkpoint is JSON");
    let mut offsets = Vec::new();
    for files in state["inputs"].as_object().expect("inputs").values() {
        for file in files.as_array().expect("files") {
            offsets.push((
                file["path"].as_str().expect("path").to_string(),
                file["offset"].as_u64().expect("offset"),
            ));
        }
    }
    offsets
}

fn checkpoint_offset(data: &Path, path: &Path) -> Option<u64> {
    checkpoint_offsets(data)
        .into_iter()
        .find(|(saved, _)| Path::new(saved) == path)
        .map(|(_, offset)| offset)
}

/// When the checkpoint file was last written, as an `Instant`.
fn checkpoint_written_at(data: &Path) -> Option<Instant> {
    let modified = fs::metadata(data.join("checkpoints.json"))
        .ok()?
        .modified()
        .ok()?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Instant::now().checked_sub(age)
}

/// The number in a `numbered_line("crash", n)` line.
fn line_number(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

/// The number of the last complete line of `path` (None when it has none).
fn last_complete_line(path: &Path, line_len: u64) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let start = size.saturating_sub(3 * line_len);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let end = memchr_last(&tail)?;
    let before = tail[..end].iter().rposition(|&b| b == b'\n');
    let begin = before.map_or(0, |at| at + 1);
    if begin == 0 && start > 0 {
        return None;
    }
    line_number(&tail[begin..end])
}

fn memchr_last(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'\n')
}

struct Kill {
    lived: Duration,
    /// Last complete line in the output when the process died.
    output_line: Option<u64>,
    /// Lines before the checkpoint's offset.
    checkpoint_line: Option<u64>,
    /// The checkpoint on disk was written during this run.
    written_this_run: bool,
}

#[test]
fn kill_9_at_random_moments_while_tailing_loses_nothing_and_adds_nothing() {
    const LINES: u64 = 2_000_000;
    const KILLS: usize = 12;
    const CHUNK: u64 = 2_000;
    let dir = TempDir::new("crash");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    File::create(&input).unwrap();
    let line_len = numbered_line("crash", 0).len() as u64 + 1;

    // The application: about 200,000 lines a second, in chunks.
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let input = input.clone();
        let written = Arc::clone(&written);
        thread::spawn(move || {
            let mut next = 0;
            while next < LINES {
                let end = (next + CHUNK).min(LINES);
                append(&input, &numbered_lines("crash", next..end));
                next = end;
                written.store(next, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let args = tail_args(&input, &output, &data);
    let mut rng = Rng::new(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut kills = Vec::new();
    for round in 0..KILLS {
        let size_at_start = file_len(&output);
        let mut ringway = spawn(&dir, &as_strs(&args));
        let started = Instant::now();
        // Some runs die before their first checkpoint, most after a few.
        let life = Duration::from_millis(150 + rng.below(2_350));
        // What this run had delivered (last output line) at which moment;
        // only once the output grew past its size at the start, so the last
        // line is this run's, not the killed run's (a torn tail it cuts is
        // shorter than a line).
        let mut samples: Vec<(Instant, u64)> = Vec::new();
        while started.elapsed() < life {
            if file_len(&output) > size_at_start
                && let Some(line) = last_complete_line(&output, line_len)
            {
                samples.push((Instant::now(), line));
            }
            thread::sleep(Duration::from_millis(25));
        }
        ringway.assert_running(&format!("before kill {round}"));
        let still_writing = written.load(Ordering::SeqCst) < LINES;
        ringway.signal(libc::SIGKILL);
        let finished = ringway.wait(TIMEOUT);
        assert_eq!(finished.status.code(), None, "killed by a signal");
        let output_line = last_complete_line(&output, line_len);
        let offset = checkpoint_offset(&data, &input);
        let written_at = checkpoint_written_at(&data);
        let written_this_run = written_at.is_some_and(|at| at >= started);
        if let Some(offset) = offset {
            assert_eq!(
                offset % line_len,
                0,
                "kill {round}: checkpoint {offset} is not at a line boundary"
            );
            let checkpoint_line = offset / line_len;
            // The checkpoint never passes what the output holds.
            if let Some(last) = output_line {
                assert!(
                    checkpoint_line <= last + 1,
                    "kill {round}: checkpoint at line {checkpoint_line} passes the output's last line {last}"
                );
            } else {
                assert_eq!(
                    checkpoint_line, 0,
                    "kill {round}: checkpoint without output"
                );
            }
            // A checkpoint written during the run covers what was delivered
            // well before it was written (300 ms for the ack and the write).
            if written_this_run && let Some(at) = written_at {
                let delivered_before = samples
                    .iter()
                    .filter(|(when, _)| *when + Duration::from_millis(300) <= at)
                    .map(|(_, line)| *line)
                    .max();
                if let Some(line) = delivered_before {
                    assert!(
                        checkpoint_line > line,
                        "kill {round}: checkpoint line {checkpoint_line} written at +{:?} lags line {line} delivered 300 ms earlier",
                        at - started
                    );
                }
            }
        }
        // A run that lived past two intervals while lines kept coming wrote
        // a checkpoint (an idle run has nothing new to write).
        if still_writing && started.elapsed() > 2 * CHECKPOINT_INTERVAL + Duration::from_millis(500)
        {
            assert!(
                written_this_run,
                "kill {round}: no checkpoint written in {:?}",
                started.elapsed()
            );
        }
        kills.push(Kill {
            lived: life,
            output_line,
            checkpoint_line: offset.map(|offset| offset / line_len),
            written_this_run,
        });
    }
    writer.join().unwrap();
    assert_eq!(written.load(Ordering::SeqCst), LINES);

    let mut final_args = args.clone();
    final_args.extend(["--exit-on-eof".into(), "--summary-json".into()]);
    final_args.push(p(&dir.join("summary.json")));
    run(&dir, &as_strs(&final_args), TIMEOUT).assert_success();

    // Every line the application wrote is in the output, nothing else is,
    // and no line is torn.
    let mut seen = vec![0u32; LINES as usize];
    let mut total = 0u64;
    let reader = BufReader::with_capacity(1 << 20, File::open(&output).unwrap());
    for line in reader.split(b'\n') {
        let line = line.unwrap();
        let n = line_number(&line)
            .unwrap_or_else(|| panic!("foreign line {:?}", String::from_utf8_lossy(&line)));
        assert!(n < LINES, "line number {n} was never written");
        assert_eq!(
            line,
            numbered_line("crash", n).as_bytes(),
            "line {n} differs from what was written"
        );
        seen[n as usize] += 1;
        total += 1;
    }
    let bytes = fs::read(&output).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "output ends in a torn line");
    let missing: Vec<usize> = (0..LINES as usize).filter(|&n| seen[n] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates = total - LINES;
    // Each duplicate is a line replayed after a kill: at most what was
    // delivered past the checkpoint on disk at that moment.
    let replayable: u64 = kills
        .iter()
        .map(|kill| match (kill.output_line, kill.checkpoint_line) {
            (Some(last), Some(checkpoint)) => (last + 1).saturating_sub(checkpoint),
            (Some(last), None) => last + 1,
            _ => 0,
        })
        .sum();
    eprintln!(
        "crash test: {KILLS} kills (lives {:?}), {} with a checkpoint written in the run; {duplicates} duplicate lines, {replayable} delivered past the checkpoint at the kills",
        kills
            .iter()
            .map(|k| k.lived.as_millis())
            .collect::<Vec<_>>(),
        kills.iter().filter(|k| k.written_this_run).count(),
    );
    assert!(
        duplicates <= replayable,
        "{duplicates} duplicates, but only {replayable} lines were delivered past a checkpoint"
    );
}

#[test]
fn an_orderly_restart_resumes_exactly_where_delivery_stopped() {
    let dir = TempDir::new("resume");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    append(&input, &numbered_lines("resume", 0..50_000));
    let args = tail_args(&input, &output, &data);
    let mut first = spawn(&dir, &as_strs(&args));
    assert!(wait_until(TIMEOUT, || file_len(&output) == file_len(&input)));
    first.assert_running("while tailing");
    first.terminate();
    first.wait(TIMEOUT).assert_success();
    assert_eq!(checkpoint_offset(&data, &input), Some(file_len(&input)));

    append(&input, &numbered_lines("resume", 50_000..80_000));
    let mut eof_args = args.clone();
    eof_args.push("--exit-on-eof".into());
    let started = Instant::now();
    run(&dir, &as_strs(&eof_args), TIMEOUT).assert_success();
    eprintln!("resume run took {:?}", started.elapsed());
    assert_bytes_identical(
        &numbered_lines("resume", 0..80_000),
        &read_output(&output),
        "each line exactly once across an orderly restart",
    );
}

#[test]
fn a_torn_output_line_is_cut_and_replayed() {
    let setup = EofSetup::new("torn");
    let (input, output) = (&setup.input, &setup.output);
    append(input, &numbered_lines("torn", 0..1_000));
    setup.run().assert_success();
    // A crash cut the next batch's write mid-line; its offsets were never
    // checkpointed.
    let next = numbered_lines("torn", 1_000..2_000);
    append(input, &next);
    append(output, &next[..next.len() / 2 + 7]);
    let finished = setup.run();
    finished.assert_success();
    assert!(
        finished.stderr.contains("ended in a partial line"),
        "the cut is reported: {}",
        finished.stderr
    );
    let mut expected = numbered_lines("torn", 0..1_000);
    // Whole lines the torn write got out are written again: duplicates.
    let whole = next[..next.len() / 2 + 7]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    expected.extend_from_slice(&next[..whole]);
    expected.extend_from_slice(&next);
    assert_bytes_identical(
        &expected,
        &read_output(output),
        "torn tail cut, batch replayed",
    );
}

/// Two runs, then the state file is damaged in `damage` ways.
fn run_with_damaged_state(damage: impl Fn(&Path), expect_fallback: &str) -> (Vec<u8>, String) {
    let setup = EofSetup::new("corrupt");
    let (input, data) = (&setup.input, &setup.data);
    append(input, &numbered_lines("state", 0..1_000));
    setup.run().assert_success();
    append(input, &numbered_lines("state", 1_000..2_000));
    setup.run().assert_success();
    assert!(data.join("checkpoints.json.prev").exists());
    damage(data);
    append(input, &numbered_lines("state", 2_000..3_000));
    let finished = setup.run();
    finished.assert_success();
    assert!(
        finished.stderr.contains(expect_fallback),
        "stderr names the fallback ({expect_fallback}): {}",
        finished.stderr
    );
    assert!(!finished.stderr.contains("panicked"));
    // Afterwards the state is good again.
    assert_eq!(checkpoint_offset(data, input), Some(file_len(input)));
    (read_output(&setup.output), finished.stderr)
}

#[test]
fn a_corrupt_empty_or_truncated_state_file_falls_back_to_the_previous_copy() {
    let mut expected = numbered_lines("state", 0..2_000);
    // The previous copy is the state after the first run: lines 1,000 on
    // are delivered again.
    expected.extend_from_slice(&numbered_lines("state", 1_000..3_000));
    type Damage = Box<dyn Fn(&Path)>;
    let damages: [(&str, Damage); 3] = [
        (
            "corrupt",
            Box::new(|data: &Path| {
                fs::write(data.join("checkpoints.json"), b"\x00\xffgarbage{{").unwrap()
            }),
        ),
        (
            "empty",
            Box::new(|data: &Path| fs::write(data.join("checkpoints.json"), b"").unwrap()),
        ),
        (
            "truncated",
            Box::new(|data: &Path| {
                let text = fs::read(data.join("checkpoints.json")).unwrap();
                fs::write(data.join("checkpoints.json"), &text[..text.len() / 2]).unwrap()
            }),
        ),
    ];
    for (name, damage) in damages {
        let (output, stderr) = run_with_damaged_state(damage, "trying the previous copy");
        assert!(stderr.contains("resuming from the previous checkpoint copy"));
        assert_bytes_identical(&expected, &output, name);
    }
}

#[test]
fn with_both_state_copies_unusable_files_start_per_from() {
    let (output, _) = run_with_damaged_state(
        |data| {
            fs::write(data.join("checkpoints.json"), b"{\"version\":1,\"inp").unwrap();
            fs::write(data.join("checkpoints.json.prev"), b"").unwrap();
        },
        "every file starts per --from",
    );
    // --from beginning: the whole file again after the first two runs.
    let mut expected = numbered_lines("state", 0..2_000);
    expected.extend_from_slice(&numbered_lines("state", 0..3_000));
    assert_bytes_identical(&expected, &output, "both copies unusable");
}

#[test]
fn a_file_rewritten_while_ringway_was_down_is_read_from_its_start() {
    let setup = EofSetup::new("rewritten");
    append(&setup.input, &numbered_lines("old", 0..1_000));
    setup.run().assert_success();
    // Same inode, new content, longer than the checkpoint offset: only the
    // fingerprint tells it is not the file that was read.
    let new = numbered_lines("new", 0..3_000);
    fs::write(&setup.input, &new).unwrap();
    let finished = setup.run();
    finished.assert_success();
    let mut expected = numbered_lines("old", 0..1_000);
    expected.extend_from_slice(&new);
    assert_bytes_identical(&expected, &read_output(&setup.output), "rewritten file");
    assert!(finished.stderr.contains("starts with other bytes"));
}

#[test]
fn a_stalled_output_holds_the_checkpoint_and_memory_until_it_recovers() {
    let dir = TempDir::new("stall");
    let input = dir.join("in.log");
    let fifo = dir.join("out.fifo");
    let data = dir.join("data");
    mkfifo(&fifo);
    let lines = numbered_lines("stall", 0..400_000);
    append(&input, &lines);
    let summary = dir.join("summary.json");
    let mut args = tail_args(&input, &fifo, &data);
    // Stats every second instead of never (the last two arguments).
    args.truncate(args.len() - 2);
    args.extend(["--stats-interval".into(), "1s".into()]);
    args.extend(["--checkpoint-interval".into(), "200ms".into()]);
    args.extend(["--read-buf".into(), "256KiB".into()]);
    args.extend(["--summary-json".into(), p(&summary)]);
    let mut ringway = spawn(&dir, &as_strs(&args));
    // Nobody reads the FIFO for 30 s: nothing is delivered.
    let stalled_until = Instant::now() + Duration::from_secs(30);
    let mut peak_rss = 0;
    while Instant::now() < stalled_until {
        ringway.assert_running("while the output is stalled");
        peak_rss = peak_rss.max(vm_rss_kib(ringway.pid()).expect("read VmRSS from /proc"));
        // Before the first checkpoint there is none; after it, it stays at 0
        // (its existence is asserted after the loop).
        if let Some(offset) = checkpoint_offset(&data, &input) {
            assert_eq!(offset, 0, "the checkpoint passed undelivered data");
        }
        // The sampling period: the stall is watched for 30 s.
        thread::sleep(Duration::from_millis(250));
    }
    assert!(
        checkpoint_offset(&data, &input).is_some(),
        "checkpoints are written during the stall"
    );
    assert!(
        peak_rss < 96 * 1024,
        "memory bounded during the stall: {peak_rss} KiB"
    );
    // The stats line shows what was read but not delivered.
    let stderr = ringway.stderr_now();
    let lag_line = stderr
        .lines()
        .rev()
        .find(|line| line.contains("checkpoint lag"))
        .expect("a stats line");
    assert!(
        !lag_line.contains("checkpoint lag 0 bytes"),
        "lag shows during the stall: {lag_line}"
    );
    // The output recovers.
    let progress = Arc::new(AtomicU64::new(0));
    let received = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    assert!(
        wait_until(TIMEOUT, || progress.load(Ordering::SeqCst)
            == lines.len() as u64),
        "everything arrives after the stall ({} of {} bytes)",
        progress.load(Ordering::SeqCst),
        lines.len()
    );
    assert!(wait_until(TIMEOUT, || checkpoint_offset(&data, &input)
        == Some(lines.len() as u64)));
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let got = received.recv_timeout(TIMEOUT).expect("FIFO closed at exit");
    assert_bytes_identical(&lines, &got, "stalled then recovered");
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "checkpoint_lag_bytes"), 0);
    assert_eq!(summary.input(0, "bytes"), lines.len() as u64);
    eprintln!("stall test: peak RSS {peak_rss} KiB");
}

#[test]
fn two_thousand_files_through_64_descriptors_deliver_every_line() {
    let dir = TempDir::new("many");
    let logs = dir.subdir("logs");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    for file in 0..2_000u64 {
        append(
            &logs.join(format!("f{file:04}.log")),
            &numbered_lines(&format!("f{file:04}"), 0..100),
        );
    }
    let finished = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&output)),
            "--max-open-files",
            "64",
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "files_opened"), 2_000);
    assert!(summary.input(0, "files_waiting") >= 2_000 - 64);
    assert_eq!(summary.output(0, "records"), 200_000);
    let out = read_output(&output);
    let sources: Vec<(String, Vec<u8>)> = (0..2_000u64)
        .map(|file| {
            let tag = format!("f{file:04}");
            let lines = numbered_lines(&tag, 0..100);
            (tag, lines)
        })
        .collect();
    let sources: Vec<(&str, &[u8])> = sources
        .iter()
        .map(|(tag, lines)| (tag.as_str(), lines.as_slice()))
        .collect();
    assert_interleaving_of(&sources, &out, "2,000 files, 64 descriptors");
    // Fewer than one descriptor per file was open at once.
    assert!(finished.stderr.contains("further files wait"));
}

#[test]
fn without_a_data_dir_every_run_delivers_the_whole_file() {
    let dir = TempDir::new("nodatadir");
    let input = dir.join("in.log");
    append(&input, &numbered_lines("again", 0..20_000));
    for round in 0..2 {
        let output = dir.join(format!("out-{round}.log"));
        run_to_eof(&dir, &input, &output, &dir.join("summary.json")).assert_success();
        assert_files_identical(&input, &output, "a run without --data-dir");
    }
    assert!(!dir.join("data").exists());
}

#[test]
fn a_data_dir_in_use_is_refused_with_one_line() {
    let dir = TempDir::new("locked");
    let input = dir.join("in.log");
    let data = dir.join("data");
    append(&input, b"one\n");
    let args = tail_args(&input, &dir.join("out.log"), &data);
    let mut first = spawn(&dir, &as_strs(&args));
    // The lock file exists before it is locked: wait for the lock itself.
    assert!(
        wait_until(TIMEOUT, || holds_flock(first.pid(), &data.join("lock"))),
        "the first ringway never locked {}: {}",
        data.join("lock").display(),
        first.stderr_now()
    );
    let second = run(&dir, &as_strs(&args), TIMEOUT);
    second.assert_code(1);
    assert!(
        second.stderr.contains("in use by another ringway"),
        "{}",
        second.stderr
    );
    first.assert_running("after the second was refused");
    first.terminate();
    first.wait(TIMEOUT).assert_success();
}

#[test]
fn a_deleted_file_is_read_to_its_end_delivered_and_closed() {
    let dir = TempDir::new("deleted");
    let logs = dir.subdir("logs");
    let log = logs.join("app.log");
    let output = dir.join("out.log");
    append(&log, &numbered_lines("gone", 0..100_000));
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&output)),
        ],
    );
    assert!(wait_until(TIMEOUT, || open_descriptors_to(
        ringway.pid(),
        &log
    ) == 1));
    // The last line has no newline: nobody will finish it once deleted.
    append(&log, b"last words");
    fs::remove_file(&log).unwrap();
    assert!(
        wait_until(TIMEOUT, || open_descriptors_to(ringway.pid(), &log) == 0),
        "the deleted file is still open: {}",
        ringway.stderr_now()
    );
    ringway.assert_running("after the deletion");
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let mut expected = numbered_lines("gone", 0..100_000);
    expected.extend_from_slice(b"last words\n");
    assert_bytes_identical(&expected, &read_output(&output), "deleted file");
}

#[test]
fn a_checkpoint_inside_an_over_long_line_resumes_at_the_line_start() {
    let dir = TempDir::new("overlong");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    // A line far over --max-line, still being written when ringway stops.
    append(&input, b"first\n");
    append(&input, &vec![b'L'; 200 * 1024]);
    let mut args = tail_args(&input, &output, &data);
    args.extend(["--max-line".into(), "64KiB".into()]);
    args.extend(["--read-buf".into(), "64KiB".into()]);
    let head_len = 64 * 1024 + 1;
    let mut with_metrics = args.clone();
    with_metrics.extend(["--metrics".into(), "127.0.0.1:0".into()]);
    let mut ringway = spawn(&dir, &as_strs(&with_metrics));
    let metrics = metrics_address(&mut ringway);
    assert!(wait_until(TIMEOUT, || file_len(&output) == 6 + head_len as u64));
    // Let the skipped rest be read (the byte count includes skipped bytes;
    // the drain at SIGTERM acks what was read), then stop in the middle of
    // the line, whose newline never came.
    let whole = file_len(&input);
    assert!(
        wait_until(TIMEOUT, || metric_sum(metrics, "ringway_input_bytes_total")
            == Some(whole)),
        "the skipped rest was not read: {:?} of {whole} bytes",
        metric_sum(metrics, "ringway_input_bytes_total")
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(
        checkpoint_offset(&data, &input),
        Some(6),
        "the checkpoint is at the over-long line's start, not inside it"
    );
    append(&input, &vec![b'M'; 1000]);
    append(&input, b"\nlast\n");
    args.push("--exit-on-eof".into());
    run(&dir, &as_strs(&args), TIMEOUT).assert_success();
    let out = read_output(&output);
    let lines = split_lines(&out);
    let head = vec![b'L'; 64 * 1024];
    // The head again (at least once delivery), never the tail as a record.
    assert_eq!(
        lines,
        vec![&b"first"[..], &head[..], &head[..], &b"last"[..]],
        "lines: {:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
}

#[test]
fn a_file_rewritten_past_its_offset_while_reads_wait_is_read_again_from_its_start() {
    let dir = TempDir::new("rewrite-under-pressure");
    let input = dir.join("in.log");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let old = numbered_lines("old", 0..400_000);
    append(&input, &old);
    // Small buffers: the stalled pipeline holds ~2 MB of the file.
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--read-buf",
            "64KiB",
            "--max-line",
            "64KiB",
            "--stats-interval",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The reads wait: the reader filled the stalled pipeline and paused.
    let metrics = metrics_address(&mut ringway);
    let paused_at = wait_until_steady(
        TIMEOUT,
        Duration::from_millis(500),
        || metric_sum(metrics, "ringway_input_bytes_total"),
        |bytes| bytes > 0,
    );
    assert!(
        paused_at.is_some_and(|bytes| bytes < old.len() as u64),
        "the reader did not pause inside the old content: {paused_at:?}"
    );
    // copytruncate, then the application writes more than was read.
    let new = numbered_lines("new", 0..400_000);
    truncate_in_place(&input);
    append(&input, &new);
    // A rescan (every second) sees it while the reads still wait.
    let noticed = wait_for_stderr(&mut ringway, "was rewritten from its start", TIMEOUT);
    let (arrived_so_far, received) = attach_fifo_collector(fifo.clone());
    let stderr = ringway.stderr_now();
    ringway.assert_running("before the reader came");
    assert!(noticed, "the rescan noticed it: {stderr}");
    // Everything new arrived once the last new line did.
    let last_new = numbered_lines("new", 399_999..400_000);
    assert!(
        wait_until(TIMEOUT, || arrived_so_far
            .lock()
            .unwrap()
            .ends_with(&last_new)),
        "the last new line never arrived"
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let got = received.recv_timeout(TIMEOUT).expect("FIFO closed at exit");
    // Whole lines only: a prefix of the old content, then all of the new.
    let arrived = check_interleaving(
        &[("old", &old[..]), ("new", &new[..])],
        &got,
        "rewritten while reads waited",
    );
    assert_eq!(arrived[1], 400_000, "every new line arrived");
    assert!(arrived[0] < 400_000, "the old content was cut short");
}

#[test]
fn with_two_outputs_the_checkpoint_waits_for_the_slower_one() {
    let dir = TempDir::new("two-outputs");
    let input = dir.join("in.log");
    let fast = dir.join("fast.log");
    let fifo = dir.join("slow.fifo");
    let data = dir.join("data");
    mkfifo(&fifo);
    let lines = numbered_lines("two", 0..50_000);
    append(&input, &lines);
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&fast)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--data-dir",
            &p(&data),
            "--checkpoint-interval",
            "100ms",
            "--stats-interval",
            "0",
        ],
    );
    // The file output has everything; the FIFO nobody reads has nothing.
    assert!(wait_until(TIMEOUT, || file_len(&fast) == lines.len() as u64));
    assert!(wait_until(TIMEOUT, || checkpoint_offset(&data, &input).is_some()));
    // Time passes on purpose: five checkpoint intervals in which the
    // checkpoint must not move.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        checkpoint_offset(&data, &input),
        Some(0),
        "delivered by one output of two is not delivered"
    );
    let progress = Arc::new(AtomicU64::new(0));
    let received = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    assert!(wait_until(TIMEOUT, || checkpoint_offset(&data, &input)
        == Some(lines.len() as u64)));
    ringway.assert_running("after the slow output caught up");
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let got = received.recv_timeout(TIMEOUT).expect("FIFO closed at exit");
    assert_bytes_identical(&lines, &got, "the slow output");
    assert_files_identical(&input, &fast, "the fast output");
}

#[test]
fn a_copytruncate_copy_of_undelivered_bytes_reaches_its_checkpoint() {
    let dir = TempDir::new("copy-undelivered");
    let logs = dir.subdir("logs");
    let log = logs.join("app.log");
    let copy = logs.join("app.log.1");
    let fifo = dir.join("out.fifo");
    let data = dir.join("data");
    let summary = dir.join("summary.json");
    mkfifo(&fifo);
    // Small enough to be read whole while the output stalls: the copy holds
    // nothing past where the original was read to, only undelivered bytes.
    let old = numbered_lines("old", 0..10_000);
    append(&log, &old);
    let mut ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/app.log*", p(&logs)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--data-dir",
            &p(&data),
            "--checkpoint-interval",
            "100ms",
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The whole original was read (and waits for the stalled output).
    let metrics = metrics_address(&mut ringway);
    assert!(
        wait_until(TIMEOUT, || metric_sum(metrics, "ringway_input_bytes_total")
            == Some(old.len() as u64)),
        "the original was not read whole: {:?} of {} bytes",
        metric_sum(metrics, "ringway_input_bytes_total"),
        old.len()
    );
    fs::copy(&log, &copy).unwrap();
    truncate_in_place(&log);
    let new = numbered_lines("new", 0..1_000);
    append(&log, &new);
    assert!(
        wait_for_stderr(&mut ringway, "is a copy of", TIMEOUT),
        "{}",
        ringway.stderr_now()
    );
    let progress = Arc::new(AtomicU64::new(0));
    let received = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    let total = (old.len() + new.len()) as u64;
    assert!(wait_until(TIMEOUT, || progress.load(Ordering::SeqCst) >= total));
    // Both files' checkpoints reach their ends: the copy's too, though it
    // had nothing left to read.
    assert!(
        wait_until(TIMEOUT, || {
            checkpoint_offset(&data, &copy) == Some(old.len() as u64)
                && checkpoint_offset(&data, &log) == Some(new.len() as u64)
        }),
        "checkpoints: {:?}",
        checkpoint_offsets(&data)
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let got = received.recv_timeout(TIMEOUT).expect("FIFO closed at exit");
    assert_interleaving_of(
        &[("old", &old[..]), ("new", &new[..])],
        &got,
        "copytruncate of undelivered bytes",
    );
    assert_eq!(read_summary(&summary).input(0, "checkpoint_lag_bytes"), 0);
}

#[test]
fn a_checkpoint_interval_of_zero_writes_only_at_exit() {
    let dir = TempDir::new("interval-0");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = dir.join("data");
    append(&input, &numbered_lines("zero", 0..10_000));
    let mut args = tail_args(&input, &output, &data);
    args.extend(["--checkpoint-interval".into(), "0".into()]);
    let ringway = spawn(&dir, &as_strs(&args));
    assert!(wait_until(TIMEOUT, || file_len(&output) == file_len(&input)));
    // Time passes on purpose: with --checkpoint-interval 0 no checkpoint
    // may appear before exit.
    thread::sleep(Duration::from_millis(1_500));
    assert!(
        !data.join("checkpoints.json").exists(),
        "no checkpoint before exit"
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(checkpoint_offset(&data, &input), Some(file_len(&input)));
}

#[test]
fn a_file_truncated_and_rewritten_with_the_same_start_is_not_read_mid_line() {
    let dir = TempDir::new("same-start");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    // The same first 2 KiB before and after: the first-KiB fingerprint
    // cannot tell the rewrite; the bytes before the read offset can.
    let header: Vec<u8> = (0..40)
        .flat_map(|n| format!("header line {n:02} of this application's log\n").into_bytes())
        .collect();
    let mut old = header.clone();
    old.extend_from_slice(&numbered_lines("old", 0..1_000));
    append(&input, &old);
    let ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--stats-interval",
            "0",
        ],
    );
    assert!(wait_until(TIMEOUT, || file_len(&output) == old.len() as u64));
    // While ringway is stopped: truncate, then write more than was read.
    ringway.signal(libc::SIGSTOP);
    truncate_in_place(&input);
    let mut new = header.clone();
    // Lines of another length, so the old offset falls mid-line.
    new.extend_from_slice(&numbered_lines("renewed", 0..3_000));
    append(&input, &new);
    ringway.signal(libc::SIGCONT);
    // (Checked line by line below, which says what went wrong.)
    let _ = wait_until(Duration::from_secs(10), || {
        file_len(&output) >= (old.len() + new.len()) as u64
    });
    // Time passes on purpose: a line read twice would show up now.
    thread::sleep(Duration::from_millis(300));
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    let out = read_output(&output);
    let header_lines = split_lines(&header);
    let mut new_seen = 0;
    for line in split_lines(&out) {
        let text = String::from_utf8_lossy(line);
        let whole = header_lines.contains(&line)
            || text.starts_with("old ")
            || text.starts_with("renewed ");
        assert!(whole, "a line that was never written: {text:?}");
        new_seen += usize::from(text.starts_with("renewed "));
    }
    assert_eq!(new_seen, 3_000, "every new line once");
    assert!(finished.stderr.contains("truncated and written again"));
}

/// Whether `line` is a whole input line `numbered_line(tag, n)` (`Some(true)`),
/// the start of one (`Some(false)`: a line a crash cut short), or neither
/// (`None`: two lines run together, or garbage).
fn whole_or_torn(tag: &str, line: &[u8]) -> Option<bool> {
    let head = format!("{tag} ");
    if line.len() <= head.len() {
        return head.as_bytes().starts_with(line).then_some(false);
    }
    if !line.starts_with(head.as_bytes()) {
        return None;
    }
    let digits = &line[head.len()..line.len().min(head.len() + 8)];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() < 8 {
        return Some(false);
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let whole = numbered_line(tag, n);
    if line == whole.as_bytes() {
        Some(true)
    } else if whole.as_bytes().starts_with(line) {
        Some(false)
    } else {
        None
    }
}

#[test]
fn without_a_data_dir_a_torn_output_line_is_ended_before_new_lines() {
    // A crash (kill -9) cut the output's last line; without --data-dir it
    // cannot be written again, so the next run ends it with a newline and
    // counts it instead of appending its first line onto it.
    let dir = TempDir::new("torn-nodata");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let lines = numbered_lines("fresh", 0..5_000);
    append(&input, &lines);
    let before = b"earlier 1\nearlier 2\n{\"time_unix_nano\":17,\"sever".to_vec();
    append(&output, &before);
    let finished = run_to_eof(&dir, &input, &output, &summary);
    finished.assert_success();
    let mut expected = before.clone();
    expected.push(b'\n');
    expected.extend_from_slice(&lines);
    assert_bytes_identical(
        &expected,
        &read_output(&output),
        "the torn line ended with a newline, every later line whole",
    );
    let s = read_summary(&summary);
    assert_eq!(s.output(0, "torn_lines"), 1, "{s}");
    assert_eq!(s.output(0, "records"), 5_000, "{s}");
    assert!(
        finished.stderr.contains("ended in a partial line"),
        "the torn line is reported: {}",
        finished.stderr
    );
    // A second run finds whole lines: nothing more is added or counted.
    let finished = run_to_eof(&dir, &input, &output, &summary);
    finished.assert_success();
    expected.extend_from_slice(&lines);
    assert_bytes_identical(&expected, &read_output(&output), "a clean reopen");
    assert_eq!(read_summary(&summary).output(0, "torn_lines"), 0);
}

#[test]
fn a_torn_line_at_the_path_reopened_after_sighup_is_ended_first() {
    // SIGHUP reopens the output path; whatever file is there now, and with
    // or without --data-dir, new lines never continue a partial line.
    for with_data_dir in [false, true] {
        let dir = TempDir::new("torn-sighup");
        let input = dir.join("in.log");
        let output = dir.join("out.log");
        let summary = dir.join("summary.json");
        append(&input, &numbered_lines("hup", 0..1_000));
        let mut args = vec![
            "run".to_string(),
            "--input".into(),
            format!("file:{}", p(&input)),
            "--output".into(),
            format!("file:{}", p(&output)),
            "--summary-json".into(),
            p(&summary),
            "--stats-interval".into(),
            "0".into(),
        ];
        if with_data_dir {
            args.extend(["--data-dir".into(), p(&dir.join("data"))]);
        }
        let mut ringway = spawn(&dir, &as_strs(&args));
        let first = numbered_lines("hup", 0..1_000);
        assert!(
            wait_until(TIMEOUT, || file_len(&output) == first.len() as u64),
            "the first lines were not delivered: {}",
            ringway.stderr_now()
        );
        // logrotate moved the file away; something left a partial line at
        // the path before ringway reopens it.
        fs::rename(&output, dir.join("out.log.1")).unwrap();
        append(&output, b"hup 0000");
        ringway.signal(libc::SIGHUP);
        assert!(
            wait_until(TIMEOUT, || ringway.stderr_now().contains("SIGHUP")),
            "no word of the SIGHUP: {}",
            ringway.stderr_now()
        );
        let second = numbered_lines("hup", 1_000..2_000);
        append(&input, &second);
        let mut expected = b"hup 0000\n".to_vec();
        expected.extend_from_slice(&second);
        assert!(
            wait_until(TIMEOUT, || read_output(&output).ends_with(&second)),
            "the later lines were not delivered (with --data-dir: {with_data_dir}): {}",
            ringway.stderr_now()
        );
        ringway.assert_running("after SIGHUP");
        ringway.terminate();
        ringway.wait(TIMEOUT).assert_success();
        assert_bytes_identical(
            &expected,
            &read_output(&output),
            &format!("the reopened file (with --data-dir: {with_data_dir})"),
        );
        assert_bytes_identical(&first, &read_output(&dir.join("out.log.1")), "moved file");
        assert_eq!(read_summary(&summary).output(0, "torn_lines"), 1);
    }
}

#[test]
fn kill_9_loop_without_a_data_dir_never_glues_a_line_to_a_torn_one() {
    // Every run re-reads the whole file (no --data-dir) into the same
    // output and is killed mid-write; every line of the output must be a
    // whole input line or one a kill cut short, never two run together.
    const KILLS: usize = 12;
    let dir = TempDir::new("torn-kill-loop");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let lines = numbered_lines("loop", 0..400_000);
    append(&input, &lines);
    let args = [
        "run",
        "--input",
        &format!("file:{}", p(&input)),
        "--output",
        &format!("file:{}", p(&output)),
        "--stats-interval",
        "0",
        // Large batches: long writes, which a kill is likely to cut.
        "--read-buf",
        "16MiB",
        "--batch-bytes",
        "16MiB",
    ];
    let mut rng = Rng::new(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut torn_at_kill = 0;
    for round in 0..KILLS {
        let size_at_start = file_len(&output);
        let mut ringway = spawn(&dir, &args);
        // Killed soon after this run starts writing, while it still
        // writes (it writes the whole file in a fraction of a second).
        let started = std::time::Instant::now();
        while file_len(&output) == size_at_start && started.elapsed() < TIMEOUT {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_micros(rng.below(20_000)));
        ringway.assert_running(&format!("before kill {round}"));
        ringway.signal(libc::SIGKILL);
        let _ = ringway.wait(TIMEOUT);
        if read_output(&output).last() != Some(&b'\n') {
            torn_at_kill += 1;
        }
    }
    let ended_torn = read_output(&output).last() != Some(&b'\n');
    let size_before_last = file_len(&output);
    let summary_arg = p(&summary);
    let mut last = args.to_vec();
    last.extend(["--exit-on-eof", "--summary-json", &summary_arg]);
    run(&dir, &last, TIMEOUT).assert_success();
    eprintln!("{torn_at_kill} of {KILLS} kills left a torn line");
    let out = read_output(&output);
    let mut torn = 0;
    for (index, line) in split_lines(&out).into_iter().enumerate() {
        match whole_or_torn("loop", line) {
            Some(true) => {}
            Some(false) => torn += 1,
            None => panic!(
                "output line {index} is two lines run together or garbage: {:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }
    assert!(
        torn <= torn_at_kill,
        "{torn} torn lines, {torn_at_kill} kills tore one"
    );
    // The last run ended what the last kill tore, then wrote the file whole.
    assert_eq!(
        read_summary(&summary).output(0, "torn_lines"),
        u64::from(ended_torn)
    );
    let start = size_before_last as usize + usize::from(ended_torn);
    assert_bytes_identical(&lines, &out[start..], "the last run's lines");
}

/// Runs `ringway run --input SPEC --output file:OUTPUT --data-dir DATA
/// --exit-on-eof` to its end and returns its stderr.
fn run_spec_to_eof(setup: &EofSetup, spec: &str) -> String {
    let done = run(
        &setup.dir,
        &[
            "run",
            "--input",
            spec,
            "--output",
            &format!("file:{}", p(&setup.output)),
            "--data-dir",
            &p(&setup.data),
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ],
        TIMEOUT,
    );
    done.assert_success();
    done.stderr
}

#[test]
fn editing_an_input_spec_keeps_its_checkpoints() {
    let setup = EofSetup::new("edit-spec");
    let path = p(&setup.input);
    append(&setup.input, &numbered_lines("edit", 0..1000));
    run_spec_to_eof(&setup, &format!("file:{path}"));
    // `format=raw` is the default: the same input, so no line again.
    append(&setup.input, &numbered_lines("edit", 1000..2000));
    let stderr = run_spec_to_eof(&setup, &format!("file:{path},format=raw"));
    assert!(!stderr.contains("checkpoint"), "{stderr}");
    assert_bytes_identical(
        &numbered_lines("edit", 0..2000),
        &read_output(&setup.output),
        "format=raw added: no duplicates",
    );
    // `from=end` applies to files without a checkpoint: this one resumes.
    append(&setup.input, &numbered_lines("edit", 2000..3000));
    let stderr = run_spec_to_eof(&setup, &format!("file:{path},format=raw,from=end"));
    assert!(!stderr.contains("checkpoint"), "{stderr}");
    assert_bytes_identical(
        &numbered_lines("edit", 0..3000),
        &read_output(&setup.output),
        "from=end added: no loss",
    );
    // Back to the plain spec, with format=json: still the same file.
    append(&setup.input, &numbered_lines("edit", 3000..4000));
    run_spec_to_eof(&setup, &format!("file:{path},format=json"));
    assert_bytes_identical(
        &numbered_lines("edit", 0..4000),
        &read_output(&setup.output),
        "format=json: each line once",
    );
}

#[test]
fn a_changed_path_pattern_keeps_the_files_it_still_matches_and_warns_about_the_rest() {
    let setup = EofSetup::new("edit-pattern");
    let logs = setup.dir.subdir("logs");
    let app = logs.join("app.log");
    let other = logs.join("other.log");
    append(&app, &numbered_lines("app", 0..500));
    append(&other, &numbered_lines("other", 0..500));
    run_spec_to_eof(&setup, &format!("file:{}/*.log", p(&logs)));
    assert_eq!(file_len(&setup.output), file_len(&app) + file_len(&other));
    // A narrower glob still matches app.log: it resumes there.
    append(&app, &numbered_lines("app", 500..600));
    let stderr = run_spec_to_eof(&setup, &format!("file:{}/app*.log", p(&logs)));
    assert!(
        stderr.contains("checkpoint"),
        "the change is said: {stderr}"
    );
    let output = read_output(&setup.output);
    let lines = split_lines(&output);
    let app_lines = lines.iter().filter(|l| l.starts_with(b"app ")).count();
    assert_eq!(app_lines, 600, "app.log once, across the pattern change");
    // A pattern that matches none of the saved files: a warning says the
    // saved checkpoints were not matched.
    let moved = setup.dir.join("moved.log");
    append(&moved, &numbered_lines("moved", 0..10));
    let stderr = run_spec_to_eof(&setup, &format!("file:{}", p(&moved)));
    assert!(
        stderr.contains("warning") && stderr.contains("checkpoint") && stderr.contains("app"),
        "{stderr}"
    );
}
