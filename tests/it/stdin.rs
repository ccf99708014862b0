//! The `stdin` input: lines piped into ringway reach the outputs byte for
//! byte, the input ends at EOF (which `--exit-on-eof` counts like a file's),
//! and `file:/dev/stdin` points at `--input stdin`.

use crate::common::*;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where a run's standard input comes from.
enum Input<'a> {
    /// A pipe the test writes these bytes into, in chunks of varied size,
    /// then closes.
    Pipe(&'a [u8]),
    /// A regular file opened for reading (`ringway < FILE`).
    File(&'a Path),
}

/// Runs `ringway ARGS...` with `input` on its standard input, to its end
/// (bounded by [`TIMEOUT`]).
fn run_with_stdin(dir: &TempDir, args: &[&str], input: Input) -> Finished {
    let stdout_path = dir.join("ringway.stdout");
    let stderr_path = dir.join("ringway.stderr");
    let stdin = match &input {
        Input::Pipe(_) => Stdio::piped(),
        Input::File(path) => Stdio::from(File::open(path).expect("open stdin file")),
    };
    let mut child = Command::new(ringway_bin())
        .args(args)
        .stdin(stdin)
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn ringway");
    let writer = match input {
        Input::Pipe(bytes) => {
            let bytes = bytes.to_vec();
            let mut pipe = child.stdin.take().expect("piped stdin");
            Some(thread::spawn(move || {
                // Chunks of varied size, so lines straddle pipe reads.
                let mut rng = Rng::new(7);
                let mut at = 0;
                while at < bytes.len() {
                    let chunk = (1 + rng.below(100_000) as usize).min(bytes.len() - at);
                    if pipe.write_all(&bytes[at..at + chunk]).is_err() {
                        return; // ringway exited early; the test says why
                    }
                    at += chunk;
                }
            }))
        }
        Input::File(_) => None,
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ringway {args:?} did not exit within {TIMEOUT:?}\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    Finished {
        status,
        stdout: fs::read(&stdout_path).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
        args: args.iter().map(|arg| arg.to_string()).collect(),
        elapsed: started.elapsed(),
    }
}

#[test]
fn lines_piped_to_stdin_reach_the_output_byte_for_byte() {
    let dir = TempDir::new("stdin-pipe");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut input = numbered_lines("stdin", 0..1000);
    input.extend_from_slice(b"the last line has no newline");
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin",
            "--exit-on-eof",
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "0",
        ],
        Input::Pipe(&input),
    );
    done.assert_success();
    let mut expected = input.clone();
    expected.push(b'\n');
    assert_bytes_identical(&expected, &read_output(&output), "stdin to file");
    let summary = read_summary(&summary);
    assert_eq!(summary.inputs_len(), 1, "{summary}");
    assert_eq!(summary.input_name(0), "stdin");
    assert_eq!(summary.input(0, "records"), 1001, "{summary}");
    assert_eq!(summary.input(0, "bytes"), input.len() as u64, "{summary}");
}

#[test]
fn json_on_stdin_passes_an_invalid_line_through_and_counts_it() {
    let dir = TempDir::new("stdin-json");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let input = b"{\"n\":1}\nnot json at all\n{\"n\":2,\"msg\":\"x\"}\n{\"n\":3}";
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin,format=json",
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ],
        Input::Pipe(input),
    );
    done.assert_success();
    let mut expected = input.to_vec();
    expected.push(b'\n');
    assert_bytes_identical(&expected, &read_output(&output), "json stdin");
    let summary = read_summary(&summary);
    assert_eq!(summary.input_name(0), "stdin,format=json");
    assert_eq!(summary.input(0, "records"), 4, "{summary}");
    assert_eq!(summary.input(0, "invalid"), 1, "{summary}");
    assert_eq!(summary.input(0, "bytes"), input.len() as u64, "{summary}");
}

#[test]
fn a_large_stdin_input_spanning_many_buffers_arrives_whole_and_in_order() {
    let dir = TempDir::new("stdin-large");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut rng = Rng::new(42);
    let mut input = Vec::new();
    let mut lines = 0u64;
    while input.len() < 24 << 20 {
        input.extend_from_slice(raw_line(lines, &mut rng).as_bytes());
        input.push(b'\n');
        lines += 1;
    }
    // 64 KiB buffers: the input spans hundreds of them.
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin",
            "--exit-on-eof",
            "--read-buf",
            "64KiB",
            "--max-line",
            "16KiB",
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "0",
        ],
        Input::Pipe(&input),
    );
    done.assert_success();
    assert_bytes_identical(&input, &read_output(&output), "24 MiB through stdin");
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "records"), lines, "{summary}");
    assert_eq!(summary.input(0, "truncated"), 0, "{summary}");
}

#[test]
fn an_over_long_stdin_line_is_cut_at_max_line_and_the_rest_skipped() {
    let dir = TempDir::new("stdin-long");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut input = b"before\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 300_000));
    input.extend_from_slice(b"\nafter\n");
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin",
            "--exit-on-eof",
            "--read-buf",
            "64KiB",
            "--max-line",
            "16KiB",
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "0",
        ],
        Input::Pipe(&input),
    );
    done.assert_success();
    let mut expected = b"before\n".to_vec();
    expected.extend(std::iter::repeat_n(b'x', 16 << 10));
    expected.extend_from_slice(b"\nafter\n");
    assert_bytes_identical(&expected, &read_output(&output), "over-long line");
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "truncated"), 1, "{summary}");
    assert_eq!(summary.input(0, "records"), 3, "{summary}");
}

#[test]
fn a_stdin_only_run_ends_at_eof_without_exit_on_eof() {
    let dir = TempDir::new("stdin-ends");
    let input = numbered_lines("end", 0..100);
    let done = run_with_stdin(
        &dir,
        &["run", "--input", "stdin", "--stats-interval", "0"],
        Input::Pipe(&input),
    );
    done.assert_success();
    assert_bytes_identical(&input, &done.stdout, "stdin to stdout");
}

#[test]
fn stdin_redirected_from_a_regular_file_is_read_like_a_pipe() {
    let dir = TempDir::new("stdin-file");
    let source = dir.join("source.log");
    let output = dir.join("out.log");
    let input = numbered_lines("redirect", 0..20_000);
    fs::write(&source, &input).unwrap();
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin",
            "--exit-on-eof",
            "--output",
            &format!("file:{}", p(&output)),
            "--stats-interval",
            "0",
        ],
        Input::File(&source),
    );
    done.assert_success();
    assert_bytes_identical(&input, &read_output(&output), "stdin < file");
}

#[test]
fn a_stdin_input_in_a_config_file_reads_standard_input() {
    let dir = TempDir::new("stdin-config");
    let output = dir.join("out.log");
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "exit_on_eof = true\nstats_interval = \"0\"\n[[input]]\nkind = \"stdin\"\nformat = \"json\"\n[[output]]\nkind = \"file\"\npath = \"{}\"\n",
            p(&output)
        ),
    )
    .unwrap();
    let input = b"{\"a\":1}\n{\"a\":2}\n";
    let done = run_with_stdin(&dir, &["run", "--config", &p(&config)], Input::Pipe(input));
    done.assert_success();
    assert_bytes_identical(input, &read_output(&output), "config stdin");
    // `check` shows it, and refuses keys a stdin input does not take.
    let checked = run(&dir, &["check", "--config", &p(&config)], TIMEOUT);
    checked.assert_success();
    let shown = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(shown.contains("kind = \"stdin\""), "{shown}");
    fs::write(
        &config,
        "[[input]]\nkind = \"stdin\"\npath = \"/var/log/x.log\"\n",
    )
    .unwrap();
    let refused = run(&dir, &["check", "--config", &p(&config)], TIMEOUT);
    refused.assert_code(2);
    assert!(refused.stderr.contains("'path'"), "{}", refused.stderr);
}

#[test]
fn file_dev_stdin_points_to_the_stdin_input() {
    let dir = TempDir::new("stdin-devstdin");
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "file:/dev/stdin",
            "--exit-on-eof",
            "--output",
            "null",
        ],
        Input::Pipe(b"hi\n"),
    );
    done.assert_code(2);
    assert!(done.stderr.contains("--input stdin"), "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
}

#[test]
fn stdin_bad_specs_are_one_line_errors() {
    let dir = TempDir::new("stdin-bad");
    for (args, says) in [
        (vec!["--input", "stdin,from=end"], "from"),
        (vec!["--input", "stdin", "--input", "stdin"], "one"),
        (vec!["--input", "stdin:/x"], "stdin"),
    ] {
        let mut all = vec!["run"];
        all.extend(args.iter().copied());
        all.extend(["--output", "null", "--exit-on-eof"]);
        let done = run(&dir, &all, TIMEOUT);
        done.assert_code(2);
        assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
        assert!(
            done.stderr.starts_with("ringway: error: "),
            "{}",
            done.stderr
        );
    }
}

#[test]
fn stdin_under_backpressure_from_a_slow_output_loses_and_repeats_nothing() {
    use std::io::Read;
    let dir = TempDir::new("stdin-slow");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    // A reader that takes 16 KiB at a time with a pause between: the
    // pipeline fills, and the stdin reader waits for buffers.
    let reader = {
        let fifo = fifo.clone();
        thread::spawn(move || {
            let mut out = File::open(&fifo).expect("open FIFO");
            let mut got = Vec::new();
            let mut buf = vec![0u8; 16 << 10];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(error) => panic!("reading FIFO: {error}"),
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut rng = Rng::new(9);
    let mut input = Vec::new();
    let mut n = 0;
    while input.len() < 8 << 20 {
        input.extend_from_slice(raw_line(n, &mut rng).as_bytes());
        input.push(b'\n');
        n += 1;
    }
    let done = run_with_stdin(
        &dir,
        &[
            "run",
            "--input",
            "stdin",
            "--output",
            &format!("file:{}", p(&fifo)),
            "--read-buf",
            "64KiB",
            "--max-line",
            "16KiB",
            "--batch-bytes",
            "16KiB",
            "--io-ring",
            "1",
            "--pipeline-ring",
            "1",
            "--output-workers",
            "1",
            "--stats-interval",
            "0",
        ],
        Input::Pipe(&input),
    );
    done.assert_success();
    let got = reader.join().expect("FIFO reader");
    assert_bytes_identical(&input, &got, "8 MiB through stdin to a slow FIFO");
}
