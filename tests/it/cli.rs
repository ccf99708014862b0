//! The command line: bad usage exits 2 with one clear line on stderr, and
//! `ringway run --help` documents every flag with its default.

use crate::common::*;
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
        ("udp:localhost:99999", "port 99999 is out of range"),
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
        ("--multiline-timeout", Some("1s")),
        ("--read-buf", Some("1MiB")),
        ("--batch-bytes", Some("1MiB")),
        ("--batch-linger", Some("10ms")),
        ("--ring-io-to-cpu", Some("4")),
        ("--ring-cpu-to-dispatcher", Some("16")),
        ("--ring-dispatcher-to-worker", Some("1")),
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
    // The flag reference (docs/flags.md, generated from the clap
    // definitions; tests/it/docs.rs keeps it current) has a row for each,
    // with the same default.
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/flags.md"))
        .expect("docs/flags.md");
    let mut problems = Vec::new();
    for (flag, default) in flags {
        let row = reference
            .lines()
            .find(|line| line.starts_with(&format!("| `{flag}")));
        match (row, default) {
            (None, _) => problems.push(format!("docs/flags.md has no row for {flag}")),
            (Some(row), Some(value))
                if !value.is_empty()
                    && *value != "none"
                    && !row.contains(&format!("`{value}`")) =>
            {
                problems.push(format!(
                    "docs/flags.md's row for {flag} does not give its default {value}: {row}"
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

/// The input every valid-flag run reads: JSON lines, so `--format json`
/// passes them through unchanged too.
const JSON_LINES: &[u8] = b"{\"n\":1}\n{\"n\":2}\n";

/// `ringway run --input file:in.log --output file:out.log --exit-on-eof
/// --stats-interval 0 EXTRA...` in a fresh directory ({DIR} in `extra` is
/// that directory); returns how it ended and what it wrote.
fn run_valid(label: &str, extra: &[&str]) -> (Finished, Vec<u8>, TempDir) {
    let dir = TempDir::new(label);
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    fs::write(&input, JSON_LINES).unwrap();
    // For --config {DIR}/ringway.toml: a key the run then reads.
    fs::write(dir.join("ringway.toml"), "batch_linger = \"5ms\"\n").unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--input".into(),
        format!("file:{}", p(&input)),
        "--output".into(),
        format!("file:{}", p(&output)),
        "--exit-on-eof".into(),
    ];
    if !extra.contains(&"--stats-interval") {
        args.extend(["--stats-interval".into(), "0".into()]);
    }
    args.extend(extra.iter().map(|arg| arg.replace("{DIR}", &p(dir.path()))));
    let done = run_strings(&dir, &args);
    let written = fs::read(&output).unwrap_or_default();
    (done, written, dir)
}

#[test]
fn cpus_runs_with_every_valid_list_and_warns_about_a_missing_core() {
    for list in ["0", "0,1", "0-1", "0,0", "999"] {
        let (done, written, _dir) = run_valid("cpus", &["--cpus", list]);
        done.assert_success();
        assert_bytes_identical(JSON_LINES, &written, &format!("--cpus {list}"));
        assert!(
            !done.stderr.contains("internal error") && !done.stderr.contains("panicked"),
            "--cpus {list}: {}",
            done.stderr
        );
        if list == "999" {
            assert!(
                done.stderr.contains("warning: CPU 999 does not exist"),
                "--cpus 999 must warn that the core does not exist: {}",
                done.stderr
            );
        }
    }
}

/// Every flag of `ringway run --help`, as written there (`--max-line`).
fn run_flags() -> Vec<String> {
    let dir = TempDir::new("help-flags");
    let done = run(&dir, &["run", "--help"], QUICK);
    done.assert_success();
    String::from_utf8_lossy(&done.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line
                .strip_prefix("-h, ")
                .or_else(|| line.strip_prefix("-V, "))
                .unwrap_or(line);
            let flag = line.split([' ', '=', '<', '[']).next()?;
            (flag.starts_with("--") && flag.len() > 2).then(|| flag.to_string())
        })
        .collect()
}

#[test]
fn every_run_flag_runs_with_a_valid_value() {
    // (flag, a valid value other than its default; None for a switch, and
    // whether the run still copies the input: --from end starts at the end
    // of the file, so it copies nothing).
    let valid: &[(&str, Option<&str>, bool)] = &[
        ("--sql", Some("SELECT * FROM logs"), true),
        ("--where", Some("1=true"), true),
        ("--format", Some("json"), true),
        ("--from", Some("end"), false),
        ("--on-invalid", Some("drop"), true),
        ("--dead-letter", Some("{DIR}/dead.log"), true),
        ("--max-line", Some("1.5KiB"), true),
        ("--multiline-timeout", Some("250ms"), true),
        ("--read-buf", Some("64KB"), true),
        ("--batch-bytes", Some("4kb"), true),
        ("--batch-linger", Some("5ms"), true),
        ("--ring-io-to-cpu", Some("2"), true),
        ("--ring-cpu-to-dispatcher", Some("4"), true),
        ("--ring-dispatcher-to-worker", Some("2"), true),
        ("--output-workers", Some("1"), true),
        ("--cpus", Some("0"), true),
        ("--uring-depth", Some("32"), true),
        ("--sqpoll", None, true),
        ("--max-open-files", Some("16"), true),
        ("--udp-rcvbuf", Some("1MB"), true),
        ("--udp-sockets", Some("2"), true),
        ("--udp-max-datagram", Some("1500"), true),
        ("--otlp-ack", Some("delivered"), true),
        ("--otlp-retry-after", Some("2"), true),
        ("--max-body", Some("1MiB"), true),
        ("--otlp-max-connections", Some("8"), true),
        ("--otlp-read-timeout", Some("5s"), true),
        ("--otlp-idle-timeout", Some("0"), true),
        ("--tcp-max-connections", Some("8"), true),
        ("--tcp-idle-timeout", Some("1m"), true),
        ("--tls-handshake-timeout", Some("2s"), true),
        ("--retry-initial", Some("50ms"), true),
        ("--retry-max", Some("1h"), true),
        ("--output-timeout", Some("2.5"), true),
        ("--stats-interval", Some("100ms"), true),
        ("--stats-format", Some("long"), true),
        ("--exit-on-eof", None, true),
        ("--summary-json", Some("{DIR}/summary.json"), true),
        ("--data-dir", Some("{DIR}/state"), true),
        ("--checkpoint-interval", Some("250ms"), true),
        ("--fsync", None, true),
        ("--shutdown-timeout", Some("10s"), true),
        ("--metrics", Some("127.0.0.1:0"), true),
        ("--config", Some("{DIR}/ringway.toml"), true),
    ];
    // A flag added to run without a row here fails this test.
    // --tls-cert, --tls-key and --tls-client-ca need a ,tls input and
    // certificate files: tests/it/tls.rs and mtls.rs run them.
    // --output-header needs an http or otlp output: output_tls.rs runs it.
    let not_run_here = [
        "--input",
        "--output",
        "--help",
        "--version",
        "--tls-cert",
        "--tls-key",
        "--tls-client-ca",
        "--output-header",
    ];
    let flags = run_flags();
    assert!(flags.len() > 30, "run --help lists only {flags:?}");
    let missing: Vec<String> = flags
        .into_iter()
        .filter(|flag| !not_run_here.contains(&flag.as_str()))
        .filter(|flag| !valid.iter().any(|(known, _, _)| known == flag))
        .collect();
    assert!(
        missing.is_empty(),
        "run flags without a valid value in this test: {missing:?}"
    );
    for (flag, value, copies) in valid {
        // Every run here already has --exit-on-eof.
        let mut extra = if *flag == "--exit-on-eof" {
            vec![]
        } else {
            vec![*flag]
        };
        extra.extend(value);
        let label = format!("flag{}", flag.replace('-', "_"));
        let (done, written, dir) = run_valid(&label, &extra);
        done.assert_success();
        let expected: &[u8] = if *copies { JSON_LINES } else { b"" };
        assert_bytes_identical(expected, &written, &format!("ringway run ... {extra:?}"));
        match *flag {
            "--summary-json" => assert!(dir.join("summary.json").exists()),
            "--data-dir" => assert!(dir.join("state").is_dir()),
            _ => {}
        }
    }
}

#[test]
fn old_ring_flag_names_still_work_as_aliases() {
    // Scripts written before the rings got one name each keep working:
    // the old flags are aliases, shown as such in --help.
    let dir = TempDir::new("ring-aliases");
    let help = run(&dir, &["run", "--help"], QUICK);
    help.assert_success();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for alias in ["--io-ring", "--pipeline-ring", "--worker-slot"] {
        assert!(
            help.contains(&format!("[alias: {alias}]")),
            "{alias} is not shown as an alias:\n{help}"
        );
    }
    let extra = [
        "--io-ring",
        "2",
        "--pipeline-ring",
        "4",
        "--worker-slot",
        "2",
    ];
    let (done, written, _dir) = run_valid("ring_aliases", &extra);
    done.assert_success();
    assert_bytes_identical(JSON_LINES, &written, "ringway run with the old ring flags");
    // An alias and its flag are one flag: given both, clap refuses.
    let (done, _, _dir) = run_valid(
        "ring_alias_twice",
        &["--io-ring", "2", "--ring-io-to-cpu", "3"],
    );
    done.assert_code(2);
}

#[test]
fn sizes_are_decimal_with_kb_and_binary_with_kib_through_run() {
    // 0.01KB is 10 bytes: the 16-byte line is cut to 10 plus its newline.
    let dir = TempDir::new("size-decimal");
    let input = dir.join("in.log");
    fs::write(&input, b"0123456789abcdef\nshort\n").unwrap();
    for (size, expected) in [
        ("0.01KB", &b"0123456789\nshort\n"[..]),
        ("0.01kib", &b"0123456789\nshort\n"[..]),
        ("12b", &b"0123456789ab\nshort\n"[..]),
    ] {
        let output = dir.join(format!("out-{size}.log"));
        run(
            &dir,
            &[
                "run",
                "--input",
                &format!("file:{}", p(&input)),
                "--output",
                &format!("file:{}", p(&output)),
                "--exit-on-eof",
                "--max-line",
                size,
            ],
            QUICK,
        )
        .assert_success();
        assert_bytes_identical(expected, &fs::read(&output).unwrap(), size);
    }
    for ambiguous in ["1M", "1m", "64k", "1G"] {
        let label = format!("size-{ambiguous}");
        assert_flags_are_usage_errors(&label, &["--max-line", ambiguous], "ambiguous");
    }
}

/// Exit 2 and the lines on stderr: the first names `mentions` and the help
/// to read, `tip` (if any) is the second.
fn assert_clap_error(args: &[&str], mentions: &str, help: &str, tip: Option<&str>) {
    let dir = TempDir::new("clap-error");
    let done = run(&dir, args, QUICK);
    done.assert_code(2);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert!(
        lines[0].starts_with("ringway: error: ")
            && lines[0].contains(mentions)
            && lines[0].contains(&format!("(see '{help}')")),
        "ringway {args:?}: want an error naming {mentions:?} and '{help}', got:\n{}",
        done.stderr
    );
    match tip {
        Some(tip) => assert!(
            lines.len() == 2 && lines[1].starts_with("ringway: tip: ") && lines[1].contains(tip),
            "ringway {args:?}: want the tip {tip:?} on a second line, got:\n{}",
            done.stderr
        ),
        None => assert_eq!(lines.len(), 1, "ringway {args:?}: {}", done.stderr),
    }
}

#[test]
fn command_line_errors_point_at_the_right_help_and_keep_the_tip() {
    assert_clap_error(&["runn"], "'runn'", "ringway --help", Some("'run'"));
    assert_clap_error(&["-v"], "'-v'", "ringway --help", None);
    assert_clap_error(
        &["run", "--ouput", "null"],
        "'--ouput'",
        "ringway run --help",
        Some("'--output'"),
    );
    assert_clap_error(
        &["check", "--bogus"],
        "'--bogus'",
        "ringway check --help",
        None,
    );
    assert_clap_error(
        &["top", "--metrix", "127.0.0.1:1"],
        "'--metrix'",
        "ringway top --help",
        Some("'--metrics'"),
    );
    assert_clap_error(
        &["run", "--stats-interval"],
        "--stats-interval",
        "ringway run --help",
        None,
    );
    assert_clap_error(
        &["run", "--max-line", "1M"],
        "ambiguous",
        "ringway run --help",
        None,
    );
}

#[test]
fn input_addresses_say_host_names_are_refused_and_ports_out_of_range() {
    for (spec, mentions) in [
        ("udp:localhost:5599", "'localhost' is a host name"),
        ("tcp:localhost:5599", "listens on an IP address"),
        ("otlp:collector:4318", "'collector' is a host name"),
        ("udp::99999", "port 99999 is out of range"),
        ("tcp:127.0.0.1:70000", "port 70000 is out of range"),
        ("udp:::1:5514", "in brackets"),
    ] {
        let dir = TempDir::new("listen-address");
        let done = run(&dir, &["run", "--input", spec, "--output", "null"], QUICK);
        assert_usage_error(&done, mentions);
    }
    for (spec, mentions) in [
        ("tcp:127.0.0.1:99999", "port 99999 is out of range"),
        ("http://127.0.0.1:70000/x", "port 70000 is out of range"),
    ] {
        assert_flags_are_usage_errors("output-port", &["--output", spec], mentions);
    }
}

#[test]
fn stats_interval_below_100ms_is_refused_but_0_turns_it_off() {
    for tiny in ["0.000001", "1us", "99ms"] {
        assert_flags_are_usage_errors(
            "stats-floor",
            &["--stats-interval", tiny],
            "--stats-interval must be 0 (off) or at least 100ms",
        );
    }
    for fine in ["0", "100ms", "0.1", "1h"] {
        let (done, written, _dir) = run_valid("stats-fine", &["--stats-interval", fine]);
        done.assert_success();
        assert_bytes_identical(JSON_LINES, &written, fine);
    }
}

#[test]
fn every_duration_flag_says_a_bare_number_is_seconds() {
    let dir = TempDir::new("help-durations");
    let done = run(&dir, &["run", "--help"], QUICK);
    done.assert_success();
    let help = String::from_utf8_lossy(&done.stdout).into_owned();
    let mut durations = 0;
    for flag in run_flags() {
        let entry = help_entry(&help, &flag).unwrap();
        if entry.lines().next().unwrap().contains("<DURATION>") {
            durations += 1;
            let squashed = entry.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                squashed.contains("A bare number is seconds"),
                "{flag} does not say a bare number is seconds: {entry}"
            );
        }
    }
    assert!(durations >= 11, "only {durations} duration flags found");
    for grammar in ["KiB/MiB/GiB", "KB/MB/GB", "a bare number is seconds"] {
        assert!(help.contains(grammar), "run --help lacks {grammar:?}");
    }
}

#[test]
fn bad_multiline_settings_are_usage_errors() {
    for (spec, mentions) in [
        ("file:{IN},multiline=start:(unclosed", "unclosed group"),
        (
            "file:{IN},multiline=ruby",
            "start:REGEX, java, python or go",
        ),
        (
            "file:{IN},format=json,multiline=java",
            "raw, cri, docker or auto",
        ),
        ("udp:127.0.0.1:0,multiline=java", "file inputs"),
        ("file:{IN},multiline=java,from=end", "comes last"),
    ] {
        assert_flags_are_usage_errors("bad-multiline", &["--input", spec], mentions);
    }
}
