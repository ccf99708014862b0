//! `--config FILE` and `ringway check`: the shipped examples are valid,
//! broken files are refused with one line naming the key, and a flag on the
//! command line wins over its key.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const QUICK: Duration = Duration::from_secs(60);

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("examples/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    found.sort();
    found
}

/// Exit 2, one line on stderr (`check`: a line per error) that starts like
/// every ringway error, and the lines name each of `mentions`.
fn assert_config_error(done: &Finished, mentions: &[&str]) {
    done.assert_code(2);
    let text = done.stderr.trim_end();
    let one_line = !text.contains('\n') || done.args[0] == "check";
    assert!(
        !text.is_empty()
            && one_line
            && text.lines().all(|line| line.starts_with("ringway: error:")),
        "ringway {:?}: want one error line (check: a line per error), got:\n{}",
        done.args,
        done.stderr
    );
    for mention in mentions {
        assert!(
            text.contains(mention),
            "ringway {:?}: the error should name {mention:?}: {text}",
            done.args
        );
    }
}

/// `ringway check --config` on `text`, written to `dir/NAME`.
fn check_text(dir: &TempDir, name: &str, text: &str) -> Finished {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    run(dir, &["check", "--config", &p(&path)], QUICK)
}

/// Every line of `stderr` is a warning (none is an error).
fn assert_only_warnings(done: &Finished) {
    for line in done.stderr.lines() {
        assert!(
            line.starts_with("ringway: warning: "),
            "ringway {:?}: want only warnings, got:\n{}",
            done.args,
            done.stderr
        );
    }
}

#[test]
fn check_accepts_every_shipped_example_as_shipped() {
    let found = examples();
    let roles = ["syslog-relay", "file-shipper", "otlp-gateway"];
    for role in roles {
        assert!(
            found
                .iter()
                .any(|path| path.ends_with(format!("{role}.toml"))),
            "examples/{role}.toml is missing"
        );
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ringway.toml");
    for example in found.into_iter().chain([installed]) {
        // As shipped: /var/log/ringway/ may not exist on this machine (the
        // service's LogsDirectory= creates it); check says how to make it,
        // as a warning, and still calls the file valid.
        let dir = TempDir::new("check-example");
        let done = run(&dir, &["check", "--config", &p(&example)], QUICK);
        done.assert_success();
        assert_only_warnings(&done);
        if !Path::new("/var/log/ringway").is_dir() {
            assert!(
                done.stderr.contains("mkdir -p /var/log/ringway"),
                "{}: check must say how to make the missing directory:\n{}",
                example.display(),
                done.stderr
            );
        }
        let dump = String::from_utf8_lossy(&done.stdout).into_owned();
        assert!(
            dump.contains("[[input]]") && dump.contains("[[output]]"),
            "{}: check prints the resolved inputs and outputs:\n{dump}",
            example.display()
        );
        assert!(dump.contains("max_line = "), "{dump}");
        // What check prints is itself a valid config.
        let dumped = dir.join("dump.toml");
        fs::write(&dumped, &dump).unwrap();
        let again = run(&dir, &["check", "--config", &p(&dumped)], QUICK);
        again.assert_success();
        assert_only_warnings(&again);
        // With the directory there, there is nothing to warn about.
        let logs = dir.subdir("log");
        let text = fs::read_to_string(&example)
            .unwrap()
            .replace("/var/log/ringway/", &format!("{}/", p(&logs)));
        let here = check_text(&dir, "example.toml", &text);
        here.assert_success();
        assert!(
            !here.stderr.contains("mkdir"),
            "{}: {}",
            example.display(),
            here.stderr
        );
    }
}

/// The commands of a sh block, as words: `\`-continued lines joined,
/// comments and blank lines skipped, and what a pipe feeds ringway
/// (`zcat old.log.gz | ringway run …`) left out.
fn sh_block_commands(block: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            let command = match current.rfind("| ringway ") {
                Some(pipe) => &current[pipe + 2..],
                None => &current[..],
            };
            commands.push(shell_words(command));
            current.clear();
        }
    }
    commands
}

/// The `ringway run …` commands of README's Examples section, as words.
fn readme_usage_commands() -> Vec<Vec<String>> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let usage = readme
        .split("\n## Examples\n")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|block| block.split("\n```").next())
        .expect("README has a ## Examples section with a sh block");
    sh_block_commands(usage)
}

/// The `ringway run …` commands of every sh block of docs/*.md, as words
/// (the examples that moved from the README to the page of their topic).
fn docs_usage_commands() -> Vec<Vec<String>> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages: Vec<_> = fs::read_dir(&docs)
        .expect("docs/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    let mut commands = Vec::new();
    for page in pages {
        let text = fs::read_to_string(&page).unwrap();
        for block in text.split("```sh\n").skip(1) {
            let block = block.split("\n```").next().unwrap_or_default();
            commands.extend(
                sh_block_commands(block)
                    .into_iter()
                    .filter(|words| words.len() >= 2 && words[..2] == ["ringway", "run"]),
            );
        }
    }
    commands
}

/// Splits a command line as sh does for plain words, '…' quotes and "…"
/// quotes without escapes (what the examples use: a query in "…" holds
/// SQL's '…' strings).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (c, quote) {
            ('\'' | '"', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, Some(open)) if c == open => quote = None,
            (' ', None) => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (c, _) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `word` with the path after `key` (up to the next comma) replaced by
/// `path`.
fn with_file(word: &str, key: &str, path: &Path) -> String {
    let Some(at) = word.find(key) else {
        return word.to_string();
    };
    let start = at + key.len();
    let end = word[start..]
        .find(',')
        .map_or(word.len(), |comma| start + comma);
    format!("{}{}{}", &word[..start], p(path), &word[end..])
}

#[test]
fn check_accepts_every_usage_example_of_the_readme() {
    let mut commands = readme_usage_commands();
    assert!(commands.len() >= 5, "{commands:?}");
    // The stdin and fan-out examples live in docs/inputs.md and outputs.md.
    let docs = docs_usage_commands();
    assert!(docs.len() >= 2, "{docs:?}");
    commands.extend(docs);
    for mut words in commands {
        assert_eq!(words[..2], ["ringway", "run"], "{words:?}");
        let dir = TempDir::new("check-readme");
        // A TLS example names its certificate files where a host keeps
        // them; check reads them, so it gets a pair made here instead.
        if let Some(at) = words.iter().position(|word| word == "--tls-cert") {
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            let made = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=x"])
                .args(["-keyout", &p(&key), "-out", &p(&cert)])
                .output()
                .expect("openssl (scripts/test.sh installs it)");
            assert!(made.status.success(), "openssl req: {made:?}");
            words[at + 1] = p(&cert);
            let at = words.iter().position(|word| word == "--tls-key").unwrap();
            words[at + 1] = p(&key);
            // A client CA file: the certificate made here is one.
            for word in &mut words {
                *word = with_file(word, "client_ca=", &cert);
            }
        }
        // So is a bearer token file.
        let tokens = dir.join("tokens");
        fs::write(&tokens, "a-token\n").unwrap();
        for word in &mut words {
            *word = with_file(word, "auth_token_file=", &tokens);
        }
        let mut args = vec!["check"];
        args.extend(words[2..].iter().map(String::as_str));
        let done = run(&dir, &args, QUICK);
        done.assert_success();
        assert_only_warnings(&done);
    }
}

#[test]
fn check_warns_about_a_missing_output_directory_that_run_refuses() {
    let dir = TempDir::new("check-missing-dir");
    let missing = dir.join("not/yet");
    let text = format!(
        "[[input]]\nkind = \"udp\"\naddress = \"127.0.0.1:5514\"\n\
         [[output]]\nkind = \"file\"\npath = \"{}/out.log\"\n",
        p(&missing)
    );
    let done = check_text(&dir, "missing.toml", &text);
    done.assert_success();
    let mkdir = format!("mkdir -p {}", p(&missing));
    assert!(
        done.stderr.starts_with("ringway: warning: ")
            && done.stderr.contains(&mkdir)
            && done.stderr.contains("[[output]] #1"),
        "{}",
        done.stderr
    );
    // run cannot write there: it refuses to start, saying the same.
    let refused = run(
        &dir,
        &["run", "--config", &p(&dir.join("missing.toml"))],
        QUICK,
    );
    assert_config_error(&refused, &[&mkdir, "[[output]] #1"]);
    // A syntax error stays an error.
    let broken = check_text(&dir, "broken.toml", &format!("{text}max_line = \"1MiB\n"));
    assert_config_error(&broken, &["line 7"]);
}

#[test]
fn check_warns_about_relative_paths() {
    let dir = TempDir::new("check-relative");
    let done = run(
        &dir,
        &[
            "check",
            "--input",
            "udp:127.0.0.1:5514",
            "--output",
            "file:relative-out.log",
            "--data-dir",
            "state",
        ],
        QUICK,
    );
    done.assert_success();
    assert_only_warnings(&done);
    for what in ["output 'file:relative-out.log'", "--data-dir"] {
        assert!(
            done.stderr.lines().any(|line| line.contains(what)
                && line.contains("relative")
                && line.contains("use an absolute path")),
            "no warning about {what}:\n{}",
            done.stderr
        );
    }
}

#[test]
fn check_reports_every_error_and_run_the_first_with_a_count() {
    let dir = TempDir::new("check-every-error");
    let udp = "[[input]]\nkind = \"udp\"\naddress = \"127.0.0.1:5514\"\n";
    // Three settings that are each wrong.
    let text = format!("output_workers = 0\nio_ring = 0\nuring_depth = 1\n{udp}");
    let done = check_text(&dir, "three.toml", &text);
    done.assert_code(2);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", done.stderr);
    for (line, key) in lines
        .iter()
        .zip(["io_ring", "output_workers", "uring_depth"])
    {
        assert!(
            line.starts_with("ringway: error: ") && line.contains(&format!("key '{key}'")),
            "{}",
            done.stderr
        );
    }
    let refused = run(
        &dir,
        &["run", "--config", &p(&dir.join("three.toml"))],
        QUICK,
    );
    assert_config_error(&refused, &["and 2 more", "ringway check"]);
    // Keys of the file itself: every one too.
    let done = check_text(
        &dir,
        "keys.toml",
        "colour = 1\nshape = 2\nmax_line = \"8XB\"\n",
    );
    done.assert_code(2);
    assert_eq!(done.stderr.lines().count(), 2, "{}", done.stderr);
    assert!(done.stderr.contains("colour") && done.stderr.contains("shape"));
}

#[test]
fn check_echoes_resolved_sizes_durations_and_cpu_lists() {
    let dir = TempDir::new("check-echo");
    let config = dir.join("echo.toml");
    fs::write(
        &config,
        "max_line = \"1MB\"\nread_buf = \"1.5MiB\"\nbatch_bytes = \"64kib\"\n\
         batch_linger = 0.25\nretry_max = \"120\"\ncpus = \"0-1\"\n\
         [[input]]\nkind = \"udp\"\naddress = \"127.0.0.1:5514\"\nrcvbuf = \"1MB\"\n",
    )
    .unwrap();
    let done = run(
        &dir,
        &["check", "--config", &p(&config), "--udp-rcvbuf", "2KiB"],
        QUICK,
    );
    done.assert_success();
    let dump = String::from_utf8_lossy(&done.stdout).into_owned();
    for line in [
        "max_line = 1000000  # config: 1MB",
        "read_buf = 1572864  # config: 1.5MiB",
        "batch_bytes = 65536  # config: 64kib",
        "batch_linger = \"250ms\"  # config: 0.25",
        "retry_max = \"2m\"  # config: 120",
        "cpus = [0, 1]  # config: 0-1",
        "udp_rcvbuf = 2048  # command line: 2KiB",
        "max_body = 8388608  # default: 8MiB",
        "stats_interval = \"10s\"  # default",
        "rcvbuf = 1000000",
    ] {
        assert!(
            dump.lines().any(|l| l == line),
            "check does not echo {line:?}:\n{dump}"
        );
    }
    // The echo reads back as the same settings.
    let dumped = dir.join("dump.toml");
    fs::write(&dumped, &dump).unwrap();
    let again = run(&dir, &["check", "--config", &p(&dumped)], QUICK);
    again.assert_success();
    let again = String::from_utf8_lossy(&again.stdout).into_owned();
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split("  #").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&dump), values(&again));
}

#[test]
fn cpus_in_a_config_runs_and_checks() {
    for value in ["\"0\"", "[0, 2]", "\"0,1\"", "[999]"] {
        let dir = TempDir::new("config-cpus");
        let config = truncating_config(&dir);
        let text = fs::read_to_string(&config).unwrap();
        fs::write(&config, format!("cpus = {value}\n{text}")).unwrap();
        let done = run(&dir, &["run", "--config", &p(&config)], QUICK);
        done.assert_success();
        assert_bytes_identical(
            b"01234567\nshort\n",
            &fs::read(dir.join("out.log")).unwrap(),
            &format!("cpus = {value}"),
        );
        let checked = run(&dir, &["check", "--config", &p(&config)], QUICK);
        checked.assert_success();
        let dump = String::from_utf8_lossy(&checked.stdout).into_owned();
        let expanded = value.replace('"', "").replace("0,1", "0, 1");
        let expanded = if expanded.starts_with('[') {
            expanded
        } else {
            format!("[{expanded}]")
        };
        assert!(
            dump.lines()
                .any(|line| line.starts_with(&format!("cpus = {expanded}  # config"))),
            "cpus = {value}:\n{dump}"
        );
    }
}

#[test]
fn check_rejects_broken_files_naming_the_key() {
    let dir = TempDir::new("check-broken");
    let udp = "[[input]]\nkind = \"udp\"\naddress = \"127.0.0.1:5514\"\n";
    for (text, mentions) in [
        (
            "colour = \"red\"\n".to_string(),
            &["colour", "bad.toml"][..],
        ),
        ("max_line = \"8XB\"\n".to_string(), &["max_line", "8XB"][..]),
        (
            "batch_linger = \"soon\"\n".to_string(),
            &["batch_linger"][..],
        ),
        ("output_workers = 0\n".to_string(), &["output_workers"][..]),
        ("otlp_ack = \"eventually\"\n".to_string(), &["otlp_ack"][..]),
        ("sqpoll = \"yes\"\n".to_string(), &["sqpoll"][..]),
        (
            "[[input]]\nkind = \"udp\"\naddress = \"localhost:99999\"\n".to_string(),
            &["address", "localhost:99999"][..],
        ),
        (format!("{udp}rcvbuf = \"lots\"\n"), &["rcvbuf", "lots"][..]),
        (format!("{udp}colour = 1\n"), &["colour"][..]),
        (format!("{udp}from = \"end\"\n"), &["from"][..]),
        (
            "[[input]]\nkind = \"pigeon\"\npath = \"/x\"\n".to_string(),
            &["kind", "pigeon"][..],
        ),
        (
            format!("{udp}[[output]]\nkind = \"otlp\"\nurl = \"ftp://x/v1/logs\"\n"),
            &["url", "ftp"][..],
        ),
        (
            format!(
                "{udp}[[output]]\nkind = \"otlp\"\nurl = \"https://x/v1/logs\"\nserver_name = \"a b\"\n"
            ),
            &["server_name"][..],
        ),
        (
            format!("{udp}[[output]]\nkind = \"tcp\"\naddress = \"nohost\"\n"),
            &["address"][..],
        ),
        (
            format!("{udp}on_invalid = \"deadletter\"\n"),
            &["on_invalid"][..],
        ),
        ("max_line = \"1MiB\n".to_string(), &["line 1"][..]),
        ("data_dir = \"/tmp\"\n".to_string(), &["[[input]]"][..]),
    ] {
        let done = check_text(&dir, "bad.toml", &text);
        assert_config_error(&done, mentions);
    }
    let missing = run(
        &dir,
        &["check", "--config", "/nonexistent/ringway.toml"],
        QUICK,
    );
    assert_config_error(&missing, &["/nonexistent/ringway.toml"]);
    // run refuses the same file the same way.
    fs::write(dir.join("bad.toml"), "colour = \"red\"\n").unwrap();
    let done = run(&dir, &["run", "--config", &p(&dir.join("bad.toml"))], QUICK);
    assert_config_error(&done, &["colour"]);
}

/// A config that reads `in.log` to EOF into `out.log`, cutting lines at 8
/// bytes.
fn truncating_config(dir: &TempDir) -> PathBuf {
    fs::write(dir.join("in.log"), b"0123456789abcdef\nshort\n").unwrap();
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "max_line = \"8B\"\nexit_on_eof = true\nstats_interval = 0\n\
             [[input]]\nkind = \"file\"\npath = \"{}\"\n\
             [[output]]\nkind = \"file\"\npath = \"{}\"\n",
            p(&dir.join("in.log")),
            p(&dir.join("out.log"))
        ),
    )
    .unwrap();
    config
}

#[test]
fn config_keys_apply_when_no_flag_is_given() {
    let dir = TempDir::new("config-applies");
    let config = truncating_config(&dir);
    run(&dir, &["run", "--config", &p(&config)], QUICK).assert_success();
    assert_bytes_identical(
        b"01234567\nshort\n",
        &fs::read(dir.join("out.log")).unwrap(),
        "max_line from the config",
    );
}

#[test]
fn flags_override_config_keys_and_replace_its_lists() {
    let dir = TempDir::new("config-override");
    let config = truncating_config(&dir);
    let other = dir.join("other.log");
    run(
        &dir,
        &[
            "run",
            "--config",
            &p(&config),
            "--max-line",
            "1KiB",
            "--output",
            &format!("file:{}", p(&other)),
        ],
        QUICK,
    )
    .assert_success();
    assert_bytes_identical(
        b"0123456789abcdef\nshort\n",
        &fs::read(&other).unwrap(),
        "--max-line over max_line, --output instead of [[output]]",
    );
    assert!(
        !dir.join("out.log").exists(),
        "--output replaces the config's outputs"
    );
    // check shows where each value came from.
    let done = run(
        &dir,
        &["check", "--config", &p(&config), "--max-line", "1KiB"],
        QUICK,
    );
    done.assert_success();
    let dump = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        dump.contains("max_line = 1024  # command line: 1KiB"),
        "{dump}"
    );
    assert!(dump.contains("exit_on_eof = true  # config"), "{dump}");
}

/// Lines in `path` (0 when it does not exist).
fn line_count(path: &Path) -> usize {
    fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn sighup_reopens_a_file_output_renamed_away_without_losing_a_line() {
    let dir = TempDir::new("sighup-reopen");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let rotated = dir.join("out.log.1");
    append(&input, &numbered_lines("hup", 0..1000));
    let mut ringway = spawn(
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
    assert!(
        wait_until(TIMEOUT, || line_count(&output) == 1000),
        "the first 1000 lines were not written: {}",
        ringway.stderr_now()
    );
    // logrotate: rename the output away, then signal. Lines keep arriving
    // meanwhile; whatever was in flight may land in either file.
    fs::rename(&output, &rotated).unwrap();
    let writer = {
        let input = input.clone();
        std::thread::spawn(move || {
            for chunk in 0..20 {
                let start = 1000 + chunk * 50;
                append(&input, &numbered_lines("hup", start..start + 50));
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Pacing: the SIGHUP lands while lines are still being appended.
    std::thread::sleep(Duration::from_millis(30));
    ringway.signal(libc::SIGHUP);
    writer.join().unwrap();
    assert!(
        wait_until(TIMEOUT, || ringway.stderr_now().contains("SIGHUP")),
        "no word of the SIGHUP: {}",
        ringway.stderr_now()
    );
    // Lines written after the reopen go to a new file at the original path.
    append(&input, &numbered_lines("hup", 2000..3000));
    assert!(
        wait_until(TIMEOUT, || line_count(&rotated) + line_count(&output)
            == 3000),
        "lines are missing: {} in the old file, {} in the new; {}",
        line_count(&rotated),
        line_count(&output),
        ringway.stderr_now()
    );
    ringway.assert_running("after SIGHUP");
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let old = fs::read(&rotated).unwrap();
    let new = fs::read(&output).expect("a new file at the original path");
    assert!(
        new.ends_with(&numbered_lines("hup", 2999..3000)),
        "the last line belongs in the new file"
    );
    assert!(
        old.starts_with(&numbered_lines("hup", 0..1000)),
        "the old file keeps what it had"
    );
    let mut both = old;
    both.extend_from_slice(&new);
    assert_bytes_identical(
        &numbered_lines("hup", 0..3000),
        &both,
        "old file then new file: every line once, in order",
    );
}

fn install_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh")
}

/// Runs `scripts/install.sh` with `DESTDIR=dest` and `env`; returns its
/// combined output, panicking unless it succeeds.
fn install_into(dest: &Path, env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new("bash");
    command
        .arg(install_script())
        .env("DESTDIR", dest)
        .env_remove("BINARY")
        .env_remove("CARGO_TARGET_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    let done = command.output().expect("run scripts/install.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(done.status.success(), "install.sh failed:\n{text}");
    text
}

#[test]
fn install_with_destdir_lays_out_binary_config_user_and_unit() {
    let dir = TempDir::new("install");
    let dest = dir.join("root");
    install_into(&dest, &[("BINARY", ringway_bin())]);

    let binary = dest.join("usr/bin/ringway");
    assert_eq!(
        fs::read(&binary).unwrap(),
        fs::read(ringway_bin()).unwrap(),
        "the installed binary is BINARY"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let config_path = dest.join("etc/ringway/ringway.toml");
    let config = fs::read_to_string(&config_path).unwrap();
    assert!(
        config
            .lines()
            .any(|line| line == "data_dir = \"/var/lib/ringway\""),
        "{config}"
    );
    let sysusers = fs::read_to_string(dest.join("usr/lib/sysusers.d/ringway.conf")).unwrap();
    assert!(
        sysusers
            .lines()
            .any(|line| line.starts_with("u ringway ") && line.ends_with(" /var/lib/ringway")),
        "{sysusers}"
    );
    let unit = fs::read_to_string(dest.join("usr/lib/systemd/system/ringway.service")).unwrap();
    for line in [
        "User=ringway",
        "StateDirectory=ringway",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN",
        "SupplementaryGroups=adm",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/ringway /var/log/ringway",
        "NoNewPrivileges=yes",
        "LimitMEMLOCK=infinity",
        "LimitNOFILE=1048576",
        "Restart=on-failure",
        "ExecStart=/usr/bin/ringway run --config /etc/ringway/ringway.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EnvironmentFile=-/etc/ringway/env",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "the unit lacks {line:?}:\n{unit}"
        );
    }
    // Nothing but those four files.
    let mut files = Vec::new();
    let mut stack = vec![dest.clone()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(p(path.strip_prefix(&dest).unwrap()));
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "etc/ringway/ringway.toml",
            "usr/bin/ringway",
            "usr/lib/systemd/system/ringway.service",
            "usr/lib/sysusers.d/ringway.conf",
        ]
    );

    // The installed config is valid (its log directory is the unit's
    // LogsDirectory=; a temporary one stands in here).
    let logs = dir.subdir("log");
    let local = dir.join("local.toml");
    fs::write(
        &local,
        config.replace("/var/log/ringway/", &format!("{}/", p(&logs))),
    )
    .unwrap();
    let checked = std::process::Command::new(&binary)
        .args(["check", "--config", &p(&local)])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "the installed config fails check: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // A second install keeps an edited config.
    fs::write(&config_path, "# mine\n").unwrap();
    install_into(&dest, &[("BINARY", ringway_bin())]);
    assert_eq!(fs::read_to_string(&config_path).unwrap(), "# mine\n");
}

#[test]
fn install_takes_the_binary_from_cargo_target_dir_without_binary() {
    let dir = TempDir::new("install-target");
    let target = dir.subdir("target");
    let release = target.join("release");
    fs::create_dir_all(&release).unwrap();
    fs::write(release.join("ringway"), "#!/bin/sh\necho stand-in\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(release.join("ringway"), fs::Permissions::from_mode(0o755)).unwrap();
    let dest = dir.join("root");
    install_into(&dest, &[("CARGO_TARGET_DIR", &p(&target))]);
    assert_eq!(
        fs::read_to_string(dest.join("usr/bin/ringway")).unwrap(),
        "#!/bin/sh\necho stand-in\n"
    );
}

#[test]
fn installed_unit_passes_systemd_analyze_verify() {
    let available = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !available {
        not_run("systemd-analyze (Debian: systemd)");
        return;
    }
    let dir = TempDir::new("install-verify");
    let dest = dir.join("root");
    install_into(&dest, &[("BINARY", ringway_bin())]);
    // verify wants ExecStart= to exist on this host: point it at the
    // binary laid out under DESTDIR (nothing else changes).
    let unit = fs::read_to_string(dest.join("usr/lib/systemd/system/ringway.service"))
        .unwrap()
        .replace(
            "ExecStart=/usr/bin/ringway ",
            &format!("ExecStart={} ", p(&dest.join("usr/bin/ringway"))),
        );
    let verify_dir = dir.subdir("verify");
    fs::write(verify_dir.join("ringway.service"), unit).unwrap();
    let done = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(verify_dir.join("ringway.service"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    // verify exits 0 on unknown keys too; it only warns: any word about
    // the unit is a failure.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("ringway"))
        .collect();
    assert!(
        done.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        done.status
    );
}

#[test]
fn check_accepts_an_output_below_a_tailed_directory() {
    // /var/log/*.log does not read /var/log/ringway/out.log: `*` stops at `/`.
    let dir = TempDir::new("check-below");
    let logs = dir.subdir("ringway");
    let done = check_text(
        &dir,
        "below.toml",
        &format!(
            "[[input]]\nkind = \"file\"\npath = \"{}/*.log\"\n\
             [[output]]\nkind = \"file\"\npath = \"{}/out.log\"\n",
            p(dir.path()),
            p(&logs)
        ),
    );
    done.assert_success();
}

#[test]
fn sighup_reopens_the_dead_letter_file_of_invalid_lines() {
    let dir = TempDir::new("sighup-dead-letter");
    let input = dir.join("in.log");
    let dead = dir.join("invalid.log");
    let rotated = dir.join("invalid.log.1");
    append(&input, b"{\"ok\":1}\nnot json 1\n");
    let ringway = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            "null",
            "--on-invalid",
            "deadletter",
            "--dead-letter",
            &p(&dead),
            "--stats-interval",
            "0",
        ],
    );
    assert!(
        wait_until(TIMEOUT, || line_count(&dead) == 1),
        "the first invalid line was not dead-lettered: {}",
        ringway.stderr_now()
    );
    fs::rename(&dead, &rotated).unwrap();
    ringway.signal(libc::SIGHUP);
    assert!(
        wait_until(TIMEOUT, || ringway.stderr_now().contains("SIGHUP")),
        "no word of the SIGHUP: {}",
        ringway.stderr_now()
    );
    append(&input, b"not json 2\n");
    assert!(
        wait_until(TIMEOUT, || line_count(&dead) == 1),
        "the invalid line after SIGHUP is not in a new file at the path: {}",
        ringway.stderr_now()
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    assert_eq!(fs::read(&rotated).unwrap(), b"not json 1\n");
    assert_eq!(fs::read(&dead).unwrap(), b"not json 2\n");
}
