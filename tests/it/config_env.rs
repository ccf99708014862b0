//! `${VAR}` in a config file, through the real binary with a real
//! environment: `check` uses the expanded values and shows each as the
//! `${VAR}` it came from, an unset variable is one error line naming it and
//! its key (exit 2), and a value from the environment never appears on
//! stdout or stderr, in the effective settings or in any message.

use crate::common::*;
use std::fs;
use std::process::{Command, Output};

/// A value no output of ringway may contain.
const SECRET: &str = "s3cr3t-t0ken-4f9a";

/// `ringway ARGS` with `set` added to the environment and `unset` removed.
fn ringway_with_env(args: &[&str], set: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut command = Command::new(ringway_bin());
    command.args(args).env_remove("RUST_BACKTRACE");
    for (name, value) in set {
        command.env(name, value);
    }
    for name in unset {
        command.env_remove(name);
    }
    command.output().expect("run ringway")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Neither stream holds `SECRET`.
fn assert_secret_hidden(done: &Output) {
    let (stdout, stderr) = (text(&done.stdout), text(&done.stderr));
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "a value from the environment was printed:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
}

/// A config whose input path, output directory, size and route come
/// from the environment (the route's string literal is the secret).
const CONFIG: &str = r#"
max_line = "${RW_MAX_LINE}"

[[input]]
kind = "file"
path = "${RW_LOGS}/app.log"

[[output]]
kind = "file"
path = "${RW_OUT}/out.ndjson"
where = "token <> '${RW_TOKEN}'"
"#;

#[test]
fn check_expands_variables_and_shows_each_as_its_reference() {
    let dir = TempDir::new("config-env-check");
    let logs = dir.subdir("logs");
    fs::write(logs.join("app.log"), "").unwrap();
    let out = dir.subdir("out");
    let config = dir.join("env.toml");
    fs::write(&config, CONFIG).unwrap();
    let set = [
        ("RW_LOGS", p(&logs)),
        ("RW_OUT", p(&out)),
        ("RW_MAX_LINE", "2MiB".to_string()),
        ("RW_TOKEN", SECRET.to_string()),
    ];
    let set: Vec<(&str, &str)> = set.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = ringway_with_env(&["check", "--config", &p(&config)], &set, &[]);
    let stdout = text(&done.stdout);
    assert!(
        done.status.success() && done.stderr.is_empty(),
        "{:?}\n{}\n{stdout}",
        done.status,
        text(&done.stderr)
    );
    assert_secret_hidden(&done);
    for line in [
        "max_line = \"${RW_MAX_LINE}\"  # config, from the environment",
        "path = \"${RW_LOGS}/app.log\"",
        "path = \"${RW_OUT}/out.ndjson\"",
        "# Values from the environment are shown as the ${VAR} they came from.",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("'${RW_TOKEN}'"), "{stdout}");
    assert!(!stdout.contains(&p(&out)), "{stdout}");

    // The paths were expanded before the host checks: the same config
    // with the output directory elsewhere is warned about (shown as its
    // reference), which an unexpanded "${RW_OUT}" would not say.
    let elsewhere = dir.join("not-made");
    let mut moved = set.clone();
    let elsewhere_text = p(&elsewhere);
    moved[1] = ("RW_OUT", &elsewhere_text);
    let warned = ringway_with_env(&["check", "--config", &p(&config)], &moved, &[]);
    let stderr = text(&warned.stderr);
    assert!(warned.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("ringway: warning: not on this host yet: ")
            && stderr.contains("mkdir -p ${RW_OUT}")
            && !stderr.contains(&elsewhere_text),
        "{stderr}"
    );
    assert_secret_hidden(&warned);

    // What check printed is a config that, in the same environment, reads
    // back to the same inputs and outputs (its scalars then all come from
    // the config, and its tables spell out every key, so the comments
    // naming sources and SPECs differ).
    let again = dir.join("again.toml");
    fs::write(&again, &done.stdout).unwrap();
    let reread = ringway_with_env(&["check", "--config", &p(&again)], &set, &[]);
    assert!(reread.status.success(), "{}", text(&reread.stderr));
    assert_secret_hidden(&reread);
    let tables = |out: &[u8]| {
        let out = text(out);
        out[out.find("\n[[input]]").expect("an input table")..]
            .lines()
            .map(|line| match line.split_once("  # ") {
                Some((table, _)) if table.starts_with("[[") => table,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(tables(&reread.stdout), tables(&done.stdout));
}

#[test]
fn an_unset_variable_is_one_error_line_naming_it_and_its_key() {
    let dir = TempDir::new("config-env-unset");
    let config = dir.join("unset.toml");
    fs::write(
        &config,
        "[[input]]\nkind = \"stdin\"\n[[output]]\nkind = \"http\"\nurl = \"${RW_UNSET_URL}\"\n",
    )
    .unwrap();
    for command in ["check", "run"] {
        let done = ringway_with_env(&[command, "--config", &p(&config)], &[], &["RW_UNSET_URL"]);
        let stderr = text(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.starts_with("ringway: error: config ")
                && stderr.contains("variable RW_UNSET_URL is not set")
                && stderr.contains("[[output]] #1: key 'url'"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn a_bad_value_from_the_environment_is_refused_without_showing_it() {
    let dir = TempDir::new("config-env-bad");
    let config = dir.join("bad.toml");
    fs::write(
        &config,
        "max_line = \"${RW_MAX_LINE}\"\n\
         [[input]]\nkind = \"udp\"\naddress = \"${RW_ADDRESS}\"\n\
         [[output]]\nkind = \"otlp\"\nurl = \"${RW_URL}\"\n",
    )
    .unwrap();
    let set = [
        ("RW_MAX_LINE", SECRET),
        ("RW_ADDRESS", SECRET),
        ("RW_URL", "ftp://s3cr3t-t0ken-4f9a@collector/v1/logs"),
    ];
    let done = ringway_with_env(&["check", "--config", &p(&config)], &set, &[]);
    let stderr = text(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{stderr}");
    assert_secret_hidden(&done);
    for (place, reference) in [
        ("[[input]] #1", "${RW_ADDRESS}"),
        ("[[output]] #1", "${RW_URL}"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|line| line.contains(place) && line.contains(reference)),
            "no error about {place} showing {reference}:\n{stderr}"
        );
    }
    // The scalar is checked once the tables are right; `run` says it too.
    let fixed =
        "max_line = \"${RW_MAX_LINE}\"\n[[input]]\nkind = \"stdin\"\n[[output]]\nkind = \"null\"\n";
    fs::write(&config, fixed).unwrap();
    for command in ["check", "run"] {
        let done = ringway_with_env(&[command, "--config", &p(&config)], &set, &[]);
        let stderr = text(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{command}: {stderr}");
        assert_secret_hidden(&done);
        assert!(
            stderr.contains("key 'max_line'") && stderr.contains("${RW_MAX_LINE}"),
            "{command}: {stderr}"
        );
    }
}
