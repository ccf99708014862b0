//! Log rotation while lines are written fast (DESIGN §3): rename and
//! create, copytruncate, and Debian's logrotate. The writer behaves like an
//! application: it keeps writing to its open descriptor and reopens the
//! path only when it notices the file was rotated away.

use crate::common::*;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

const LINES: u64 = 400_000;
const CHUNK: u64 = 1_000;
const TAG: &str = "rot";

/// How the writer of [`write_like_an_application`] reopens its log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reopen {
    /// It creates the file when the path names none (the rotator only
    /// renames).
    Creating,
    /// It opens the file the rotator created, once that is there
    /// (logrotate's `create`, like an application reopening on its
    /// postrotate signal). One that created the file itself could do so
    /// between logrotate's rename and its create: logrotate then renames
    /// the application's file to `app.log-YYYYMMDDHH.backup` and creates
    /// its own, and that file was named `app.log` for a moment too short
    /// for any tailer of the name to see (docs/durability.md).
    Existing,
}

/// Writes `LINES` numbered lines to `path` in chunks, reopening the path
/// when it names another file than the open descriptor (as an application
/// does after a rotation signal, a little late). Writes the first chunk,
/// then waits until `tailing` says ringway read it: a file rotated away
/// before ringway first looked is not one it can see. Calls `between`
/// every `every` chunks from the writer thread (for rotations that must not
/// race a write).
fn write_like_an_application(
    path: PathBuf,
    reopen: Reopen,
    tailing: impl Fn() -> bool + Send + 'static,
    every: u64,
    between: impl Fn(u64) + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let open = || {
            OpenOptions::new()
                .create(reopen == Reopen::Creating)
                .append(true)
                .open(&path)
        };
        let mut file = open().expect("open the log");
        let mut chunk = 0;
        let mut next = 0;
        while next < LINES {
            let renamed = fs::metadata(&path)
                .map(|now| now.ino() != file.metadata().unwrap().ino())
                .unwrap_or(true);
            // Keep writing to the old descriptor for a chunk after a
            // rotation, like an application that has not reopened yet.
            if renamed && chunk % 2 == 0 {
                match open() {
                    Ok(reopened) => file = reopened,
                    // Not created again yet: the next chunk tries again.
                    Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::NotFound),
                }
            }
            let end = (next + CHUNK).min(LINES);
            file.write_all(&numbered_lines(TAG, next..end))
                .expect("write the log");
            next = end;
            if chunk == 0 {
                assert!(
                    wait_until(TIMEOUT, &tailing),
                    "ringway never read the first chunk"
                );
            }
            chunk += 1;
            if chunk % every == 0 {
                between(chunk / every);
            }
            thread::sleep(Duration::from_millis(3));
        }
    })
}

/// Whether `output` holds a line yet: ringway is tailing.
fn delivers_to(output: &Path) -> impl Fn() -> bool + Send + 'static {
    let output = output.to_path_buf();
    move || count_lines(&output) > 0
}

/// Every file of the rotation family: `app.log` and `app.log.*`.
fn family(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("app.log"))
        })
        .collect();
    files.sort();
    files
}

fn count_lines(path: &Path) -> u64 {
    fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Runs ringway on `input` until the writer is done and the output has
/// held `expected` lines (at least) for three seconds, then stops it.
fn tail_during(
    dir: &TempDir,
    input: &str,
    output: &Path,
    writer: thread::JoinHandle<()>,
    expected: impl Fn() -> u64,
) -> String {
    let mut ringway = spawn(
        dir,
        &[
            "run",
            "--input",
            input,
            "--output",
            &format!("file:{}", p(output)),
            "--stats-interval",
            "0",
        ],
    );
    writer.join().expect("writer");
    let mut stable = 0;
    let mut last = 0;
    let settled = wait_until(TIMEOUT, || {
        let now = count_lines(output);
        stable = if now == last && now >= expected() {
            stable + 1
        } else {
            0
        };
        last = now;
        // 60 polls of 50 ms: three seconds, past two rescans.
        stable >= 60
    });
    ringway.assert_running("after the writer finished");
    assert!(
        settled,
        "output settled at {} lines, expected at least {}\n{}",
        last,
        expected(),
        ringway.stderr_now()
    );
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    finished.stderr
}

/// Every line of every file of the rotation family is in `output` exactly
/// once, each file's lines in that file's order.
fn assert_each_file_once_in_order(logs: &Path, output: &Path, context: &str) {
    let files: Vec<(String, Vec<u8>)> = family(logs)
        .into_iter()
        .map(|path| (p(&path), fs::read(&path).unwrap()))
        .collect();
    let sources: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    assert_interleaving_of(&sources, &read_output(output), context);
}

#[test]
fn rename_and_create_rotation_under_load_delivers_every_line_once() {
    let _race = one_rotation_race_at_a_time();
    let dir = TempDir::new("rename");
    let logs = dir.subdir("logs");
    let log = logs.join("app.log");
    let output = dir.join("out.log");
    File::create(&log).unwrap();
    let rotations = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Rotation by another process: rename away; the writer notices and
    // creates the file again (one chunk late).
    let rotator = {
        let log = log.clone();
        let logs = logs.clone();
        let rotations = Arc::clone(&rotations);
        move |n: u64| {
            fs::rename(&log, logs.join(format!("app.log.{n:03}"))).unwrap();
            rotations.fetch_add(1, Ordering::SeqCst);
        }
    };
    let writer = write_like_an_application(
        log.clone(),
        Reopen::Creating,
        delivers_to(&output),
        50,
        rotator,
    );
    let stderr = tail_during(&dir, &format!("file:{}", p(&log)), &output, writer, || {
        LINES
    });
    assert!(rotations.load(Ordering::SeqCst) >= 5);
    assert!(stderr.contains("was renamed or replaced"), "{stderr}");
    assert_each_file_once_in_order(&logs, &output, "rename rotation");
}

#[test]
fn copytruncate_under_load_loses_nothing_and_reads_copies_from_where_the_original_stopped() {
    let _race = one_rotation_race_at_a_time();
    let dir = TempDir::new("copytruncate");
    let logs = dir.subdir("logs");
    let log = logs.join("app.log");
    let output = dir.join("out.log");
    File::create(&log).unwrap();
    // copytruncate between two of the writer's writes: copy, then truncate
    // the file in place (the writer appends to the same descriptor).
    let rotator = {
        let log = log.clone();
        let logs = logs.clone();
        move |n: u64| {
            fs::copy(&log, logs.join(format!("app.log.{n:03}"))).unwrap();
            truncate_in_place(&log);
        }
    };
    let writer = write_like_an_application(
        log.clone(),
        Reopen::Creating,
        delivers_to(&output),
        50,
        rotator,
    );
    let logs_for_count = logs.clone();
    let stderr = tail_during(
        &dir,
        &format!("file:{}/app.log*", p(&logs)),
        &output,
        writer,
        // Every line of every file: the copies are read as files of their own.
        move || family(&logs_for_count).iter().map(|f| count_lines(f)).sum(),
    );
    assert!(stderr.contains("was truncated"), "{stderr}");
    let out = read_output(&output);
    let mut seen: HashMap<&[u8], u32> = HashMap::new();
    for line in split_lines(&out) {
        *seen.entry(line).or_default() += 1;
    }
    let copies: Vec<Vec<u8>> = family(&logs)
        .iter()
        .filter(|path| *path != &log)
        .map(|path| fs::read(path).unwrap())
        .collect();
    let in_a_copy: std::collections::HashSet<&[u8]> =
        copies.iter().flat_map(|copy| split_lines(copy)).collect();
    let mut duplicates = 0;
    for n in 0..LINES {
        let line = numbered_line(TAG, n);
        let count = seen.get(line.as_bytes()).copied().unwrap_or(0);
        assert!(count >= 1, "line {n} lost");
        if count > 1 {
            assert!(
                in_a_copy.contains(line.as_bytes()) && count == 2,
                "line {n} delivered {count} times but it is in no copy"
            );
            duplicates += 1;
        }
    }
    assert_eq!(
        seen.values().map(|&c| u64::from(c)).sum::<u64>(),
        LINES + duplicates,
        "no foreign lines"
    );
    eprintln!(
        "copytruncate: {} copies, {duplicates} of {LINES} lines delivered twice (from the file, then from its copy)",
        copies.len()
    );
    // Copies are recognised and read from where the original was read to:
    // only what was read from the original after its copy was opened can
    // repeat.
    assert!(
        duplicates <= LINES / 100,
        "{duplicates} duplicates: copies were read from their start"
    );
    assert!(
        stderr.contains("is a copy of"),
        "copies are recognised: {stderr}"
    );
}

fn logrotate_binary() -> Option<&'static str> {
    [
        "/usr/sbin/logrotate",
        "/sbin/logrotate",
        "/usr/bin/logrotate",
    ]
    .into_iter()
    .find(|path| Path::new(path).exists())
}

#[test]
fn debian_logrotate_under_load_delivers_every_line_once() {
    let _race = one_rotation_race_at_a_time();
    let Some(logrotate) = logrotate_binary() else {
        not_run("logrotate");
        return;
    };
    let dir = TempDir::new("logrotate");
    let logs = dir.subdir("logs");
    let log = logs.join("app.log");
    let output = dir.join("out.log");
    let config = dir.join("logrotate.conf");
    let state = dir.join("logrotate.state");
    fs::write(
        &config,
        format!(
            "{} {{\n    rotate 1000\n    create 0644\n    missingok\n    nocompress\n    nodateext\n}}\n",
            p(&log)
        ),
    )
    .unwrap();
    File::create(&log).unwrap();
    let rotated = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // logrotate is its own process, racing the writer.
    let rotator = {
        let (config, state, rotated) = (config.clone(), state.clone(), Arc::clone(&rotated));
        move |_| {
            let status = Command::new(logrotate)
                .args(["--force", "--state"])
                .arg(&state)
                .arg(&config)
                .status()
                .expect("run logrotate");
            assert!(status.success(), "logrotate failed");
            rotated.fetch_add(1, Ordering::SeqCst);
        }
    };
    let writer = {
        // Runs logrotate from a thread of its own every 250 ms.
        let log = log.clone();
        let running = Arc::new(AtomicBool::new(true));
        let rotating = {
            let running = Arc::clone(&running);
            let tailing = delivers_to(&output);
            thread::spawn(move || {
                // Not before ringway has the first file open.
                assert!(wait_until(TIMEOUT, &tailing), "ringway never tailed");
                let mut n = 0;
                while running.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(250));
                    n += 1;
                    rotator(n);
                }
            })
        };
        let writing = write_like_an_application(
            log,
            Reopen::Existing,
            delivers_to(&output),
            u64::MAX,
            |_| {},
        );
        thread::spawn(move || {
            writing.join().unwrap();
            running.store(false, Ordering::SeqCst);
            rotating.join().unwrap();
        })
    };
    let stderr = tail_during(&dir, &format!("file:{}", p(&log)), &output, writer, || {
        LINES
    });
    assert!(
        rotated.load(Ordering::SeqCst) >= 3,
        "logrotate ran {} times",
        rotated.load(Ordering::SeqCst)
    );
    assert!(stderr.contains("was renamed or replaced"), "{stderr}");
    assert_each_file_once_in_order(&logs, &output, "logrotate");
}
