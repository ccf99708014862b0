//! `ringway sql`: the real binary runs a query over a file and over
//! standard input and prints each resulting record; a refused query is one
//! line on stderr and exit 2.

use crate::common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `ringway sql ARGS` with `stdin` piped in; (exit code, stdout, stderr).
fn sql_with_stdin(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(ringway_bin())
        .arg("sql")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringway sql");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    // Written from a thread so a large input cannot deadlock on a full
    // stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().expect("ringway sql output");
    writer.join().expect("stdin writer");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

#[test]
fn sql_runs_a_query_over_a_file() {
    let dir = TempDir::new("sql-file");
    let input = dir.join("in.ndjson");
    std::fs::write(
        &input,
        concat!(
            r#"{"level":"error","status":503,"msg":"disk \"full\"","ms":1.50}"#,
            "\n",
            r#"{"level":"info","status":200,"msg":"ok","ms":2}"#,
            "\n",
            "not json\n",
            r#"{"status":500,"level":"warn","http":{"path":"/a"}}"#,
            "\n",
            r#"{"level":"error","status":"oops"}"#,
        ),
    )
    .unwrap();
    let finished = run(
        &dir,
        &[
            "sql",
            "SELECT level, msg AS m, ms * 2 AS double_ms, http.path FROM logs WHERE status >= 500",
            &p(&input),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    assert_eq!(
        String::from_utf8(finished.stdout.clone()).unwrap(),
        concat!(
            r#"{"level":"error","m":"disk \"full\"","double_ms":3.0,"http.path":null}"#,
            "\n",
            r#"{"level":"warn","m":null,"double_ms":null,"http.path":"/a"}"#,
            "\n",
        )
    );
    // The invalid line and the string compared with a number are counted,
    // not fatal.
    assert_eq!(
        finished.stderr,
        "ringway sql: 1 invalid lines\nringway sql: 1 runtime errors (each gave NULL)\n"
    );

    // SELECT * … WHERE keeps the lines' bytes as they are.
    let finished = run(
        &dir,
        &[
            "sql",
            "SELECT * FROM logs WHERE level = 'error'",
            &p(&input),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    assert_eq!(
        String::from_utf8(finished.stdout.clone()).unwrap(),
        concat!(
            r#"{"level":"error","status":503,"msg":"disk \"full\"","ms":1.50}"#,
            "\n",
            r#"{"level":"error","status":"oops"}"#,
            "\n",
        )
    );
}

#[test]
fn sql_reads_standard_input_as_raw_json_or_syslog() {
    let (code, stdout, stderr) = sql_with_stdin(
        &[
            "SELECT upper(body) AS b, length(body) AS n FROM logs WHERE body LIKE '%x%'",
            "--format",
            "raw",
        ],
        b"a x\nno\n\"q\" x\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "{\"b\":\"A X\",\"n\":3}\n{\"b\":\"\\\"Q\\\" X\",\"n\":5}\n"
    );
    assert_eq!(stderr, "");

    let (code, stdout, stderr) = sql_with_stdin(
        &["SELECT * EXCEPT (b), a + 1 AS c FROM logs", "-"],
        b"{\"a\":1,\"b\":2}\n{\"a\":2}",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "{\"a\":1,\"c\":2}\n{\"a\":2,\"c\":3}\n");

    let (code, stdout, stderr) = sql_with_stdin(
        &[
            "SELECT host, app, severity, message FROM logs WHERE severity_code <= 3",
            "--format",
            "syslog",
        ],
        b"<34>1 2026-12-02T10:00:00Z web1 api 123 ID47 - disk full\n<38>1 2026-12-02T10:00:01Z web1 api 123 - - fine\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "{\"host\":\"web1\",\"app\":\"api\",\"severity\":\"crit\",\"message\":\"disk full\"}\n"
    );
}

#[test]
fn sql_refuses_a_query_with_one_line_and_exit_2() {
    for (query, message) in [
        (
            "SELECT level FROM logs GROUP BY level",
            "unsupported: GROUP BY at line 1 column 24",
        ),
        (
            "SELECT * FROM logs ORDER BY ts",
            "unsupported: ORDER BY at line 1 column 20",
        ),
        (
            "SELECT * FROM other",
            "unsupported: FROM other (the records are FROM logs) at line 1 column 15",
        ),
        (
            "SELECT nosuch(a) AS x FROM logs",
            "unsupported: the function nosuch at line 1 column 8",
        ),
        (
            "SELECT * FROM logs WHERE a = 'x' AND 1 = 'y'",
            "cannot compare BIGINT with VARCHAR at line 1 column 38",
        ),
        (
            "SELECT * FROM logs\nWHERE",
            "syntax error: Expected: an expression, found: EOF at line 2 column 6",
        ),
    ] {
        let (code, stdout, stderr) = sql_with_stdin(&[query], b"{}\n");
        assert_eq!(code, Some(2), "{query}: {stderr}");
        assert_eq!(stdout, "", "{query}");
        assert_eq!(
            stderr,
            format!(
                "ringway: error: --sql: {message}: {}\n",
                query.replace('\n', "\\n")
            ),
            "{query}"
        );
    }
}

#[test]
fn sql_with_a_file_that_cannot_be_opened_is_one_line_and_exit_2() {
    let dir = TempDir::new("sql-missing");
    let missing = dir.join("nope.ndjson");
    let finished = run(&dir, &["sql", "SELECT * FROM logs", &p(&missing)], TIMEOUT);
    finished.assert_code(2);
    assert!(finished.stdout.is_empty());
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .starts_with(&format!("ringway: error: cannot open {}: ", p(&missing))),
        "{}",
        finished.stderr
    );
}
