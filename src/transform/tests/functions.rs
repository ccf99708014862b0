//! Every function, CAST's successes and failures, and runtime errors
//! (each NULL and counted).

use super::*;

/// `cases/FILE` as cases: each `EXPR => VALUE` there is
/// `SELECT EXPR AS v FROM logs` giving `{"v":VALUE}`.
fn value_cases(cases: Vec<Case>) -> Vec<Case> {
    cases
        .into_iter()
        .map(|case| Case {
            query: format!("SELECT {} AS v FROM logs", case.query),
            expected: format!("{{\"v\":{}}}", case.expected),
            ..case
        })
        .collect()
}

#[test]
fn functions_give_their_values() {
    check_all(&value_cases(cases!("functions.txt")), Shape::Json);
}

#[test]
fn casts_convert_or_give_null_and_an_error() {
    check_all(&value_cases(cases!("casts.txt")), Shape::Json);
}

#[test]
fn strings_past_the_line_bound_become_null() {
    // With --max-line 256, a string of 120 bytes doubled fits; four times
    // or tripled it passes the bound, so it is NULL and an error.
    let line = format!("{{\"s\":\"{}\"}}", "a".repeat(120));
    let query = Query::compile("SELECT concat(s, s) AS two, concat(s, s, s, s) AS four, regexp_replace(s, 'a', 'aaa', 'g') AS tripled FROM logs").unwrap();
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 256);
    let result = transformer.process(line.as_bytes(), Shape::Json);
    assert_eq!(result.outcome, Outcome::Projected);
    assert_eq!(result.errors, 2);
    let output = String::from_utf8(transformer.output().to_vec()).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(parsed["two"].as_str().unwrap().len(), 240);
    assert!(parsed["four"].is_null());
    assert!(parsed["tripled"].is_null());
}

#[test]
fn routes_take_the_records_their_conditions_hold_for() {
    let query = Query::compile("SELECT msg FROM logs WHERE level != 'debug'").unwrap();
    let error = Condition::compile("level IN ('error', 'fatal')").unwrap();
    let slow = Condition::compile("ms > 100 OR ms IS NULL").unwrap();
    let mut transformer = Transformer::new(
        Some(Arc::new(query)),
        vec![Some(Arc::new(error)), None, Some(Arc::new(slow))],
        1024,
    );
    for (line, outcome, routes) in [
        (
            r#"{"level":"error","ms":5,"msg":"a"}"#,
            Outcome::Projected,
            0b011,
        ),
        (
            r#"{"level":"info","ms":500,"msg":"b"}"#,
            Outcome::Projected,
            0b110,
        ),
        (r#"{"level":"fatal","msg":"c"}"#, Outcome::Projected, 0b111),
        (r#"{"level":"debug","msg":"d"}"#, Outcome::Filtered, 0),
        (r#"{"level":"#, Outcome::Invalid, 0),
    ] {
        let result = transformer.process(line.as_bytes(), Shape::Json);
        assert_eq!((result.outcome, result.routes), (outcome, routes), "{line}");
    }
    // No query: every valid line is kept and routed.
    let only = Condition::compile("body LIKE '%x%'").unwrap();
    let mut transformer = Transformer::new(None, vec![Some(Arc::new(only))], 64);
    let result = transformer.process(b"a x b", Shape::Raw);
    assert_eq!((result.outcome, result.routes), (Outcome::Kept, 1));
    let result = transformer.process(b"a b", Shape::Raw);
    assert_eq!((result.outcome, result.routes), (Outcome::Kept, 0));
}

#[test]
fn invalid_exactly_when_the_json_check_says_so() {
    let lines: &[&[u8]] = &[
        br#"{"a":1}"#,
        b"[1,2]",
        b"\"s\"",
        b"12",
        b"  {\"a\" : [true, null]}  \r",
        b"",
        b"{",
        b"{\"a\":1}}",
        b"{\"a\":\"\xff\"}",
        b"\xef\xbb\xbf{}",
        b"nul",
        b"{\"a\":1,}",
        b"{\"a\":\"\\x\"}",
    ];
    let mut checker = crate::scan::json::JsonChecker::new(256);
    for query in [
        "SELECT * FROM logs",
        "SELECT a FROM logs WHERE a IS NOT NULL OR true",
    ] {
        let query = Arc::new(Query::compile(query).unwrap());
        let mut transformer = Transformer::new(Some(query), Vec::new(), 256);
        for line in lines {
            let invalid = transformer.process(line, Shape::Json).outcome == Outcome::Invalid;
            assert_eq!(
                invalid,
                !checker.is_valid(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

#[test]
fn a_line_longer_than_announced_is_parsed_not_refused() {
    // A syslog lane's JSON can be longer than --max-line: the buffers grow
    // to it once rather than call it invalid.
    let query = Query::compile("SELECT b, json_extract(p, '$.k') AS k FROM logs").unwrap();
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 16);
    let long = "x".repeat(300);
    let line = format!(r#"{{"a":"{long}","b":1,"p":"{{\"k\":\"{long}\"}}"}}"#);
    let result = transformer.process(line.as_bytes(), Shape::Json);
    assert_eq!(result.outcome, Outcome::Projected);
    // The 300-byte string is past the announced 16-byte bound: NULL.
    assert_eq!(transformer.output(), br#"{"b":1,"k":null}"#);
    assert_eq!(result.errors, 1);
}

#[test]
fn now_is_rfc3339_utc_with_milliseconds() {
    use crate::transform::functions::format_rfc3339_millis;
    for (millis, text) in [
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_123, "2000-02-29T00:00:00.123Z"),
        (1_796_205_600_123, "2026-12-02T10:00:00.123Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
    ] {
        assert_eq!(&format_rfc3339_millis(millis), text.as_bytes(), "{millis}");
    }
}
