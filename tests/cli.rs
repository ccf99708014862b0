//! The command line: bad usage exits 2 with one clear line on stderr, and
//! `ringway run --help` documents every flag with its default.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const QUICK: Duration = Duration::from_secs(60);

/// A valid run (`--exit-on-eof` on a small file) that `extra` flags spoil.
fn baseline(dir: &TempDir) -> Vec<String> {
    let input = dir.join("in.log");
    fs::write(&input, b"one\ntwo\n").unwrap();
    vec![
        "run".into(),
        "--input".into(),
        format!("file:{}", p(&input)),
        "--output".into(),
        format!("file:{}", p(&dir.join("out.log"))),
        "--exit-on-eof".into(),
    ]
}

fn run_strings(dir: &TempDir, args: &[String]) -> Finished {
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run(dir, &refs, QUICK)
}

/// Exit code 2 and exactly one non-empty line on stderr, no panic text; the
/// line names `mentions` (the offending value or flag).
fn assert_usage_error(done: &Finished, mentions: &str) {
    done.assert_code(2);
    let stderr = done.stderr.strip_suffix('\n').unwrap_or(&done.stderr);
    assert!(
        !stderr.is_empty() && !stderr.contains('\n'),
        "ringway {:?}: stderr must be exactly one non-empty line, was:\n{}",
        done.args,
        done.stderr
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "ringway {:?} panicked: {}",
        done.args,
        done.stderr
    );
    assert!(
        stderr.starts_with("ringway: error:") || stderr.starts_with("error:"),
        "ringway {:?}: the line must start with \"ringway: error:\" or \"error:\": {stderr}",
        done.args
    );
    assert!(
        stderr.contains(mentions),
        "ringway {:?}: the error should name {mentions:?}: {stderr}",
        done.args
    );
}

fn assert_flags_are_usage_errors(label: &str, extra: &[&str], mentions: &str) {
    let dir = TempDir::new(label);
    let mut args = baseline(&dir);
    let input = p(&dir.join("in.log"));
    args.extend(extra.iter().map(|s| s.replace("{IN}", &input)));
    assert_usage_error(&run_strings(&dir, &args), mentions);
}

#[test]
fn baseline_run_for_the_usage_tests_succeeds() {
    // Shows that each usage error below comes from the flag it adds.
    let dir = TempDir::new("cli-baseline");
    let done = run_strings(&dir, &baseline(&dir));
    done.assert_success();
    let out = fs::read(dir.join("out.log")).unwrap_or_default();
    assert_bytes_identical(b"one\ntwo\n", &out, "baseline output");
}

#[test]
fn bad_size_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-size", &["--read-buf", "8XB"], "8XB");
}

#[test]
fn bad_size_suffixes_and_negatives_are_usage_errors() {
    assert_flags_are_usage_errors("bad-size-2", &["--max-line", "-5"], "-5");
    assert_flags_are_usage_errors("bad-size-3", &["--batch-bytes", "1.5MiB!"], "1.5MiB!");
}

#[test]
fn bad_duration_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-duration", &["--batch-linger", "5parsecs"], "5parsecs");
}

#[test]
fn unknown_input_spec_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-input-bogus", &["--input", "bogus"], "bogus");
}

#[test]
fn unknown_input_kind_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-input-kind", &["--input", "nothing:/x"], "nothing");
}

#[test]
fn unknown_output_kind_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-output", &["--output", "ftp://x"], "ftp");
}

#[test]
fn bad_format_value_in_input_spec_is_a_usage_error() {
    assert_flags_are_usage_errors(
        "bad-format-key",
        &["--input", "file:{IN},format=xml"],
        "xml",
    );
}

#[test]
fn bad_global_format_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-format", &["--format", "xml"], "xml");
}

#[test]
fn missing_literal_path_is_a_usage_error() {
    let dir = TempDir::new("missing-path");
    let done = run(
        &dir,
        &[
            "run",
            "--input",
            "file:/nonexistent/x.log",
            "--output",
            "null",
            "--exit-on-eof",
        ],
        QUICK,
    );
    assert_usage_error(&done, "/nonexistent/x.log");
}

#[test]
fn exit_on_eof_without_file_input_is_a_usage_error() {
    let dir = TempDir::new("exit-on-eof-alone");
    // The embedded default configuration has no file input.
    let done = run(&dir, &["run", "--exit-on-eof"], QUICK);
    assert_usage_error(&done, "exit-on-eof");
}

#[test]
fn bad_tcp_specs_and_flags_are_usage_errors() {
    for (args, mentions) in [
        (&["--input", "tcp:127.0.0.1"][..], "ADDRESS:PORT"),
        (&["--input", "tcp:127.0.0.1:6514,from=end"][..], "from"),
        (
            &[
                "--input",
                "tcp:127.0.0.1:6514",
                "--tcp-max-connections",
                "0",
            ][..],
            "--tcp-max-connections",
        ),
        (
            &[
                "--input",
                "tcp:127.0.0.1:6514",
                "--tcp-idle-timeout",
                "soon",
            ][..],
            "soon",
        ),
    ] {
        let dir = TempDir::new("bad-tcp");
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--output", "null"]);
        let done = run(&dir, &all, QUICK);
        assert_usage_error(&done, mentions);
    }
}

#[test]
fn bad_otlp_specs_and_flags_are_usage_errors() {
    for (args, mentions) in [
        (&["--input", "otlp:127.0.0.1"][..], "ADDRESS:PORT"),
        (
            &["--input", "otlp:127.0.0.1:4318,rcvbuf=1MiB"][..],
            "rcvbuf",
        ),
        (
            &["--input", "otlp:127.0.0.1:4318", "--otlp-ack", "eventually"][..],
            "eventually",
        ),
        (
            &["--input", "otlp:127.0.0.1:4318", "--max-body", "2GiB"][..],
            "--max-body",
        ),
        (
            &[
                "--input",
                "otlp:127.0.0.1:4318",
                "--otlp-max-connections",
                "0",
            ][..],
            "--otlp-max-connections",
        ),
        (
            &["--input", "otlp:127.0.0.1:4318", "--otlp-read-timeout", "0"][..],
            "--otlp-read-timeout",
        ),
    ] {
        let dir = TempDir::new("bad-otlp");
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--output", "null"]);
        let done = run(&dir, &all, QUICK);
        assert_usage_error(&done, mentions);
    }
}

#[test]
fn bad_udp_specs_are_usage_errors() {
    for (spec, mentions) in [
        ("udp:127.0.0.1", "ADDRESS:PORT"),
        ("udp:localhost:99999", "ADDRESS:PORT"),
        ("udp:127.0.0.1:5514,sockets=0", "sockets"),
        ("udp:127.0.0.1:5514,rcvbuf=lots", "lots"),
        ("udp:127.0.0.1:5514,from=end", "from"),
    ] {
        let dir = TempDir::new("bad-udp");
        let done = run(&dir, &["run", "--input", spec, "--output", "null"], QUICK);
        assert_usage_error(&done, mentions);
    }
}

#[test]
fn exit_on_eof_with_only_network_inputs_is_a_usage_error() {
    let dir = TempDir::new("eof-udp");
    let done = run(
        &dir,
        &["run", "--input", "udp:127.0.0.1:0", "--exit-on-eof"],
        QUICK,
    );
    assert_usage_error(&done, "--exit-on-eof");
}

#[test]
fn dead_letter_policy_without_path_is_a_usage_error() {
    assert_flags_are_usage_errors(
        "deadletter-no-path",
        &["--on-invalid", "deadletter"],
        "dead-letter",
    );
}

#[test]
fn bad_cpu_list_is_a_usage_error() {
    assert_flags_are_usage_errors("bad-cpus", &["--cpus", "0-"], "0-");
}

#[test]
fn run_help_documents_every_flag_with_its_default() {
    let dir = TempDir::new("help");
    let done = run(&dir, &["run", "--help"], QUICK);
    done.assert_success();
    let help = String::from_utf8_lossy(&done.stdout).into_owned();

    // (flag, expected default; None for flags without a default value)
    let flags: &[(&str, Option<&str>)] = &[
        ("--input", None),
        ("--output", Some("stdout")),
        ("--format", Some("raw")),
        ("--from", Some("beginning")),
        ("--on-invalid", Some("raw")),
        ("--dead-letter", None),
        ("--max-line", Some("1MiB")),
        ("--read-buf", Some("1MiB")),
        ("--batch-bytes", Some("1MiB")),
        ("--batch-linger", Some("10ms")),
        ("--io-ring", Some("4")),
        ("--pipeline-ring", Some("16")),
        ("--worker-slot", Some("1")),
        ("--output-workers", Some("2")),
        ("--cpus", Some("")),
        ("--uring-depth", Some("64")),
        ("--sqpoll", None),
        ("--max-open-files", Some("1024")),
        ("--udp-rcvbuf", Some("8MiB")),
        ("--udp-sockets", Some("1")),
        ("--udp-max-datagram", Some("9000")),
        ("--retry-initial", Some("100ms")),
        ("--retry-max", Some("30s")),
        ("--stats-interval", Some("10s")),
        ("--exit-on-eof", None),
        ("--summary-json", None),
        ("--data-dir", Some("none")),
        ("--checkpoint-interval", Some("1s")),
        ("--fsync", None),
        ("--shutdown-timeout", Some("30s")),
        ("--metrics", Some("")),
    ];
    // README's flags table has a row for each, with the same default.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut problems = Vec::new();
    for (flag, default) in flags {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{flag}")));
        match (row, default) {
            (None, _) => problems.push(format!("README's flags table has no row for {flag}")),
            (Some(row), Some(value))
                if !value.is_empty()
                    && *value != "none"
                    && !row.contains(&format!("`{value}`")) =>
            {
                problems.push(format!(
                    "README's row for {flag} does not give its default {value}: {row}"
                ))
            }
            _ => {}
        }
    }
    for (flag, default) in flags {
        let Some(entry) = help_entry(&help, flag) else {
            problems.push(format!("{flag} is not documented"));
            continue;
        };
        if *flag == "--output" {
            if !entry.contains("stdout") {
                problems.push(format!(
                    "--output does not say it defaults to stdout: {entry}"
                ));
            }
            continue;
        }
        if let Some(value) = default {
            let squashed: String = entry.split_whitespace().collect();
            let want = format!("[default:{value}");
            if !squashed.contains(&want) {
                problems.push(format!(
                    "{flag} does not show \"[default: {value}…\": {entry}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n--- ringway run --help ---\n{help}",
        problems.join("\n")
    );
}

/// The help text of `flag`: from the line that introduces it up to the next
/// line that introduces another flag.
fn help_entry(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let introduces = |line: &str, f: &str| {
        let t = line.trim_start();
        t.starts_with('-')
            && t.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<' || c == '[')
                .any(|w| w == f)
    };
    let start = lines.iter().position(|l| introduces(l, flag))?;
    let mut entry = lines[start].to_string();
    for l in &lines[start + 1..] {
        let t = l.trim_start();
        if t.starts_with("--")
            || (t.starts_with('-') && t.len() > 1 && t.as_bytes()[1].is_ascii_alphabetic())
        {
            break;
        }
        entry.push('\n');
        entry.push_str(l);
    }
    Some(entry)
}
