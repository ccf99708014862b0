//! File input → file output pipelines: pass-through must be byte-exact,
//! follow mode must deliver appended data, SIGTERM must drain.

use crate::common::*;
use std::fs;
use std::thread;
use std::time::Duration;

const MILLION: u64 = 1_000_000;

/// Runs a million generated lines through `--exit-on-eof` with four output
/// workers and checks bytes and summary counters.
fn million_lines_pass_through(label: &str, format: &str, line: fn(u64, &mut Rng) -> String) {
    let dir = TempDir::new(label);
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut rng = Rng::new(42);
    let in_bytes = write_lines(&input, MILLION, |i| line(i, &mut rng));

    let input_spec = format!("file:{},format={format}", p(&input));
    let output_spec = format!("file:{}", p(&output));
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            &input_spec,
            "--output",
            &output_spec,
            "--exit-on-eof",
            "--output-workers",
            "4",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    done.assert_success();
    assert_files_identical(&input, &output, label);

    let s = read_summary(&summary);
    assert_eq!(
        s.input_name(0),
        input_spec,
        "summary input name is the SPEC as typed: {s}"
    );
    assert_eq!(
        s.output_name(0),
        output_spec,
        "summary output name is the SPEC as typed: {s}"
    );
    assert_eq!(s.input(0, "records"), MILLION, "input records: {s}");
    assert_eq!(s.input(0, "invalid"), 0, "input invalid: {s}");
    assert_eq!(s.input(0, "truncated"), 0, "input truncated: {s}");
    assert_eq!(
        s.input(0, "bytes"),
        in_bytes,
        "input bytes == file size: {s}"
    );
    assert_eq!(s.output(0, "records"), MILLION, "output records: {s}");
    assert_eq!(
        s.output(0, "bytes"),
        in_bytes,
        "output bytes == file size: {s}"
    );
}

#[test]
fn json_million_lines_pass_through_byte_identical() {
    // The generator must produce valid JSON, or the test proves nothing.
    let mut rng = Rng::new(42);
    for i in 0..2000 {
        let l = json_line(i, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&l).expect("generator makes valid JSON");
        assert!(v.as_object().unwrap().len() >= 6);
    }
    million_lines_pass_through("json-million", "json", json_line);
}

#[test]
fn raw_million_lines_pass_through_byte_identical() {
    million_lines_pass_through("raw-million", "raw", raw_line);
}

#[test]
fn loghub_samples_pass_through_raw_byte_identical() {
    let Some(loghub) = loghub_samples() else {
        return;
    };
    let mut files: Vec<_> = fs::read_dir(&loghub)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.log in {}", loghub.display());

    let dir = TempDir::new("loghub");
    for file in files {
        let file = file.canonicalize().unwrap();
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let output = dir.join(format!("{name}.out"));
        let summary = dir.join(format!("{name}.summary.json"));
        let done = run(
            &dir,
            &[
                "run",
                "--input",
                &format!("file:{}", p(&file)),
                "--format",
                "raw",
                "--output",
                &format!("file:{}", p(&output)),
                "--exit-on-eof",
                "--summary-json",
                &p(&summary),
            ],
            TIMEOUT,
        );
        done.assert_success();
        let mut expected = fs::read(&file).unwrap();
        // The samples' last line has no newline: --exit-on-eof adds one.
        if !expected.ends_with(b"\n") {
            expected.push(b'\n');
        }
        let actual = read_output(&output);
        assert_bytes_identical(&expected, &actual, &name);
        let lines = split_lines(&expected).len() as u64;
        let s = read_summary(&summary);
        assert_eq!(s.input(0, "records"), lines, "{name} input records: {s}");
        assert_eq!(s.output(0, "records"), lines, "{name} output records: {s}");
    }
}

#[test]
fn last_line_without_newline_gets_one_at_eof() {
    let dir = TempDir::new("no-final-newline");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    fs::write(
        &input,
        b"first line\nsecond line\nthird line without newline",
    )
    .unwrap();
    run_to_eof(&dir, &input, &output, &summary).assert_success();
    assert_bytes_identical(
        b"first line\nsecond line\nthird line without newline\n",
        &read_output(&output),
        "last line gets a newline",
    );
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), 3, "{s}");
    assert_eq!(s.output(0, "records"), 3, "{s}");
}

#[test]
fn crlf_lines_are_kept() {
    let dir = TempDir::new("crlf");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut data = Vec::new();
    for i in 0..5000 {
        data.extend_from_slice(format!("crlf line {i} with a\rbare CR inside\r\n").as_bytes());
        data.extend_from_slice(format!("lf line {i}\n").as_bytes());
    }
    data.extend_from_slice(b"\r\n"); // a line that is only a CR
    fs::write(&input, &data).unwrap();
    run_to_eof(&dir, &input, &output, &summary).assert_success();
    assert_bytes_identical(&data, &read_output(&output), "CRLF pass-through");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), 10_001, "{s}");
}

#[test]
fn many_files_from_a_glob_all_arrive() {
    let dir = TempDir::new("glob-many");
    let logs = dir.subdir("logs");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut contents = Vec::new();
    for f in 0..20u64 {
        let tag = format!("file{f:02}");
        let data = numbered_lines(&tag, 0..10_000);
        fs::write(logs.join(format!("{tag}.log")), &data).unwrap();
        contents.push((tag, data));
    }
    // A file that the glob must not match.
    fs::write(logs.join("other.txt"), b"not matched\n").unwrap();

    let input_spec = format!("file:{}/*.log", p(&logs));
    run(
        &dir,
        &[
            "run",
            "--input",
            &input_spec,
            "--output",
            &format!("file:{}", p(&output)),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    let out = read_output(&output);
    let sources: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(t, d)| (t.as_str(), d.as_slice()))
        .collect();
    assert_interleaving_of(&sources, &out, "20 files × 10k lines");
    let s = read_summary(&summary);
    assert_eq!(s.input_name(0), input_spec, "{s}");
    assert_eq!(s.input(0, "records"), 200_000, "{s}");
    assert_eq!(s.input(0, "files_opened"), 20, "{s}");
    assert_eq!(s.output(0, "records"), 200_000, "{s}");
}

#[test]
fn from_end_skips_existing_lines() {
    let dir = TempDir::new("from-end");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    fs::write(&input, numbered_lines("old", 0..1000)).unwrap();

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--from",
            "end",
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
        ],
    );
    // ringway opened the file (and took its end as the start then).
    assert!(
        wait_until(TIMEOUT, || !rw.is_running()
            || open_descriptors_to(rw.pid(), &input) == 1),
        "ringway never opened {}",
        input.display()
    );
    rw.assert_running("after start with --from end");
    let new = numbered_lines("new", 0..500);
    append(&input, &new);
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= new.len() as u64
    });
    rw.terminate();
    let done = rw.wait(TIMEOUT);
    done.assert_success();
    assert!(
        arrived,
        "appended lines did not reach the output within 60 s"
    );
    assert_bytes_identical(&new, &read_output(&output), "--from end output");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), 500, "{s}");
    assert_eq!(s.output(0, "records"), 500, "{s}");
}

#[test]
fn follows_appended_data_and_sigterm_drains() {
    let dir = TempDir::new("follow");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");
    let mut expected = numbered_lines("burst0", 0..100);
    fs::write(&input, &expected).unwrap();

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
        ],
    );
    for burst in 1..=5 {
        // Pacing: bursts apart in time, so each is read as an append.
        thread::sleep(Duration::from_millis(400));
        rw.assert_running("while following");
        let data = numbered_lines(&format!("burst{burst}"), 0..2000);
        append(&input, &data);
        expected.extend_from_slice(&data);
    }
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= expected.len() as u64
    });
    rw.assert_running("after the bursts (no --exit-on-eof: it must keep following)");
    rw.terminate();
    let done = rw.wait(TIMEOUT);
    done.assert_success();
    assert!(
        arrived,
        "appended lines did not reach the output within 60 s"
    );
    assert_bytes_identical(&expected, &read_output(&output), "followed output");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), 10_100, "{s}");
    assert_eq!(s.output(0, "records"), 10_100, "{s}");
}

#[test]
fn glob_matching_nothing_waits_for_new_files() {
    let dir = TempDir::new("glob-empty");
    let logs = dir.subdir("logs");
    let output = dir.join("out.log");
    let summary = dir.join("summary.json");

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}/*.log", p(&logs)),
            "--output",
            &format!("file:{}", p(&output)),
            "--summary-json",
            &p(&summary),
        ],
    );
    assert!(
        wait_for_stderr(&mut rw, "no file matches", TIMEOUT),
        "no word of the glob matching nothing: {}",
        rw.stderr_now()
    );
    rw.assert_running("with a glob that matches nothing (it must wait, not exit)");
    let data = numbered_lines("late", 0..1000);
    fs::write(logs.join("late.log"), &data).unwrap();
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= data.len() as u64
    });
    rw.terminate();
    let done = rw.wait(TIMEOUT);
    done.assert_success();
    assert!(
        arrived,
        "lines of a file created after start did not arrive within 60 s"
    );
    assert_bytes_identical(&data, &read_output(&output), "late file output");
    assert!(
        done.stderr.to_lowercase().contains("warn"),
        "a glob that matches nothing must be warned about on stderr; stderr was:\n{}",
        done.stderr
    );
}

#[test]
fn fan_out_to_two_file_outputs() {
    let dir = TempDir::new("fan-out");
    let input = dir.join("in.log");
    let out_a = dir.join("a.out");
    let out_b = dir.join("b.out");
    let summary = dir.join("summary.json");
    let mut rng = Rng::new(7);
    let n = 100_000;
    let in_bytes = write_lines(&input, n, |i| raw_line(i, &mut rng));
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&out_a)),
            "--output",
            &format!("file:{}", p(&out_b)),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    assert_files_identical(&input, &out_a, "first output");
    assert_files_identical(&input, &out_b, "second output");
    let s = read_summary(&summary);
    assert_eq!(s.outputs_len(), 2, "{s}");
    for o in 0..2 {
        assert_eq!(s.output(o, "records"), n, "{s}");
        assert_eq!(s.output(o, "bytes"), in_bytes, "{s}");
    }
}

#[test]
fn syslog_files_convert_every_line_to_one_json_object() {
    let Some(loghub) = loghub_samples() else {
        return;
    };
    let dir = TempDir::new("syslog-file");
    // Enough lines that conversion spans many encode buffers.
    let input = dir.join("big.log");
    let sample = fs::read(loghub.join("Linux_2k.log")).unwrap();
    let mut data = Vec::new();
    for _ in 0..50 {
        data.extend_from_slice(&sample);
    }
    fs::write(&input, &data).unwrap();
    let expected = split_lines(&data).len() as u64;
    let output = dir.join("out.ndjson");
    let summary = dir.join("summary.json");
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=syslog", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
            "--output-workers",
            "4",
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    )
    .assert_success();
    let summary = read_summary(&summary);
    assert_eq!(summary.input(0, "records"), expected);
    assert_eq!(summary.input(0, "invalid"), 0, "every Linux line parses");
    assert_eq!(summary.output(0, "records"), expected);
    let out = fs::read(&output).unwrap();
    let lines = split_lines(&out);
    assert_eq!(lines.len() as u64, expected);
    let originals = split_lines(&data);
    for (index, (line, original)) in lines.iter().zip(&originals).enumerate() {
        let value: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("line {index} is not JSON ({e})"));
        // In order: each object's message ends the line it came from.
        let message = value["message"].as_str().unwrap_or("");
        let original = String::from_utf8_lossy(original);
        assert!(
            original.trim_end_matches('\r').ends_with(message),
            "line {index}: {message:?} is not the end of {original:?}"
        );
    }
}
