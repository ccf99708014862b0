//! Every function, CAST's successes and failures, and runtime errors
//! (each NULL and counted).

use super::*;

const LINE: &str = r#"{"s":"  Hello World  ","u":"ÉtÉ","n":7,"big":9223372036854775807,"x":2.5,"z":0,"b":true,"e":"","p":"{\"user\":{\"name\":\"bob\",\"ids\":[3,4]},\"ok\":true,\"n\":1.5,\"s\":\"a\\\"b\"}","bad":"{not json","ts":"2026-12-02T10:00:00Z","num":"42","f":"1.5e2","t":"TRUE"}"#;

fn v(expr: &str) -> String {
    format!("SELECT {expr} AS v FROM logs")
}

#[test]
fn functions_give_their_values() {
    let cases: Vec<(String, &str, u32)> = vec![
        (v("lower(s)"), r#"{"v":"  hello world  "}"#, 0),
        (v("upper(s)"), r#"{"v":"  HELLO WORLD  "}"#, 0),
        (v("lower(u)"), r#"{"v":"été"}"#, 0),
        (v("upper(lower(u))"), r#"{"v":"ÉTÉ"}"#, 0),
        (v("length(u)"), r#"{"v":3}"#, 0),
        (v("length(e)"), r#"{"v":0}"#, 0),
        (v("length(missing)"), r#"{"v":null}"#, 0),
        (v("substr(ts, 1, 4)"), r#"{"v":"2026"}"#, 0),
        (v("substr(ts, 12)"), r#"{"v":"10:00:00Z"}"#, 0),
        (v("substr(u, 2, 1)"), r#"{"v":"t"}"#, 0),
        (v("substr(ts, -3)"), r#"{"v":"00Z"}"#, 0),
        (v("substr(ts, 0, 2)"), r#"{"v":"2"}"#, 0),
        (v("substr(ts, 100)"), r#"{"v":""}"#, 0),
        (v("substring(ts FROM 6 FOR 2)"), r#"{"v":"12"}"#, 0),
        (v("substr(ts, 1, -1)"), r#"{"v":""}"#, 0),
        (v("substr(ts, 3, -2)"), r#"{"v":"20"}"#, 0),
        (v("substr(ts, -30, 3)"), r#"{"v":""}"#, 0),
        (
            v("concat(n, '-', x, '-', b, missing, '-', s)"),
            r#"{"v":"7-2.5-true-  Hello World  "}"#,
            0,
        ),
        (
            v("concat(p)"),
            r#"{"v":"{\"user\":{\"name\":\"bob\",\"ids\":[3,4]},\"ok\":true,\"n\":1.5,\"s\":\"a\\\"b\"}"}"#,
            0,
        ),
        // Arguments that compute their strings (found by the DuckDB
        // differential test: each once came out twice).
        (v("concat(upper(u), 'z')"), r#"{"v":"ÉTÉz"}"#, 0),
        (v("concat(CAST(n AS VARCHAR), '')"), r#"{"v":"7"}"#, 0),
        (
            v("concat(concat(u, 'b'), 'c', lower(u))"),
            r#"{"v":"ÉtÉbcété"}"#,
            0,
        ),
        (v("upper(u) || '-' || lower(u)"), r#"{"v":"ÉTÉ-été"}"#, 0),
        (v("replace(concat(u, u), 'tÉ', '')"), r#"{"v":"ÉÉ"}"#, 0),
        (v("'a' || n"), r#"{"v":"a7"}"#, 0),
        (v("'a' || missing"), r#"{"v":null}"#, 0),
        (v("replace(s, 'o', '0')"), r#"{"v":"  Hell0 W0rld  "}"#, 0),
        (v("replace(s, '', 'x')"), r#"{"v":"  Hello World  "}"#, 0),
        (v("replace(u, 'É', 'e')"), r#"{"v":"ete"}"#, 0),
        (v("trim(s)"), r#"{"v":"Hello World"}"#, 0),
        (v("ltrim(s)"), r#"{"v":"Hello World  "}"#, 0),
        (v("rtrim(s)"), r#"{"v":"  Hello World"}"#, 0),
        (
            v("trim(BOTH 'Z' FROM ts)"),
            r#"{"v":"2026-12-02T10:00:00"}"#,
            0,
        ),
        (
            v("trim(LEADING '20' FROM ts)"),
            r#"{"v":"6-12-02T10:00:00Z"}"#,
            0,
        ),
        (v("trim(ts, '2Z')"), r#"{"v":"026-12-02T10:00:00"}"#, 0),
        (v("starts_with(ts, '2026-')"), r#"{"v":true}"#, 0),
        (v("starts_with(ts, '2025-')"), r#"{"v":false}"#, 0),
        (v("regexp_like(s, 'W[aeiou]r')"), r#"{"v":true}"#, 0),
        (v("regexp_matches(s, '^W')"), r#"{"v":false}"#, 0),
        (
            v("regexp_extract(ts, '(\\d+)-(\\d+)', 2)"),
            r#"{"v":"12"}"#,
            0,
        ),
        (v("regexp_extract(ts, '\\d+')"), r#"{"v":"2026"}"#, 0),
        (v("regexp_extract(ts, 'x(y)?', 1)"), r#"{"v":""}"#, 0),
        (
            v("regexp_replace(ts, '(\\d+)-(\\d+)', '\\2/\\1')"),
            r#"{"v":"12/2026-02T10:00:00Z"}"#,
            0,
        ),
        (
            v("regexp_replace(ts, '0', '_', 'g')"),
            r#"{"v":"2_26-12-_2T1_:__:__Z"}"#,
            0,
        ),
        (
            v("regexp_replace(s, 'hello', 'bye', 'i')"),
            r#"{"v":"  bye World  "}"#,
            0,
        ),
        (v("regexp_replace(e, 'x*', '-', 'g')"), r#"{"v":"-"}"#, 0),
        (v("regexp_like(n, 'x')"), r#"{"v":null}"#, 1),
        (v("json_extract(p, '$.user.name')"), r#"{"v":"bob"}"#, 0),
        (v("json_extract(p, '$.user.ids')"), r#"{"v":[3,4]}"#, 0),
        (v("json_extract(p, '$.user.ids[1]')"), r#"{"v":4}"#, 0),
        (
            v("json_extract(p, '$.user')"),
            r#"{"v":{"name":"bob","ids":[3,4]}}"#,
            0,
        ),
        (
            v("json_extract(p, '$')"),
            r#"{"v":{"user":{"name":"bob","ids":[3,4]},"ok":true,"n":1.5,"s":"a\"b"}}"#,
            0,
        ),
        (v("json_extract(p, '$.ok')"), r#"{"v":true}"#, 0),
        (v("json_extract(p, '$.n')"), r#"{"v":1.5}"#, 0),
        (v("json_extract(p, '$.s')"), r#"{"v":"a\"b"}"#, 0),
        (v("json_extract(p, '$.nope.deeper')"), r#"{"v":null}"#, 0),
        (v("json_extract(p, '$.user.ids[9]')"), r#"{"v":null}"#, 0),
        (v("json_extract(bad, '$.a')"), r#"{"v":null}"#, 1),
        (v("json_extract(n, '$.a')"), r#"{"v":null}"#, 1),
        (v("COALESCE(missing, e, s)"), r#"{"v":""}"#, 0),
        (v("COALESCE(missing, NULL)"), r#"{"v":null}"#, 0),
        (
            v("CASE WHEN n > 5 THEN 'big' ELSE 'small' END"),
            r#"{"v":"big"}"#,
            0,
        ),
        (v("CASE WHEN n > 50 THEN 'big' END"), r#"{"v":null}"#, 0),
        (
            v("CASE n WHEN 1 THEN 'one' WHEN 7 THEN 'seven' ELSE 'other' END"),
            r#"{"v":"seven"}"#,
            0,
        ),
        (
            v("CASE WHEN missing THEN 1 WHEN b THEN 2 END"),
            r#"{"v":2}"#,
            0,
        ),
        (v("n / 2"), r#"{"v":3.5}"#, 0),
        (v("n / z"), r#"{"v":null}"#, 1),
        (v("n % z"), r#"{"v":null}"#, 1),
        (v("x % 2"), r#"{"v":0.5}"#, 0),
        (v("n * x"), r#"{"v":17.5}"#, 0),
        (v("big + 1"), r#"{"v":null}"#, 1),
        (v("-big - 2"), r#"{"v":null}"#, 1),
        (v("big * 2.0"), r#"{"v":1.8446744073709552e+19}"#, 0),
        (v("s + 1"), r#"{"v":null}"#, 1),
        (v("n = s"), r#"{"v":null}"#, 1),
        (v("n < 7.5"), r#"{"v":true}"#, 0),
        (v("b = true"), r#"{"v":true}"#, 0),
        (v("NOT n"), r#"{"v":null}"#, 1),
        (
            v("length(now()) = 24 AND now() LIKE '____-__-__T__:__:__.___Z'"),
            r#"{"v":true}"#,
            0,
        ),
    ];
    check_all(
        cases
            .iter()
            .map(|(query, expected, errors)| (query, LINE, expected, *errors)),
        Shape::Json,
    );
}

#[test]
fn casts_convert_or_give_null_and_an_error() {
    let cases: &[(&str, &str, u32)] = &[
        ("CAST(num AS BIGINT)", "42", 0),
        ("CAST(' 42 ' AS BIGINT)", "42", 0),
        ("CAST(f AS DOUBLE)", "150.0", 0),
        ("CAST(x AS BIGINT)", "3", 0),
        ("CAST(-2.5 AS BIGINT)", "-3", 0),
        ("CAST(n AS DOUBLE)", "7.0", 0),
        ("CAST(n AS VARCHAR)", "\"7\"", 0),
        ("CAST(x AS VARCHAR)", "\"2.5\"", 0),
        ("CAST(b AS VARCHAR)", "\"true\"", 0),
        ("CAST(b AS BIGINT)", "1", 0),
        ("CAST(t AS BOOLEAN)", "true", 0),
        ("CAST('f' AS BOOLEAN)", "false", 0),
        ("CAST(z AS BOOLEAN)", "false", 0),
        ("CAST(s AS VARCHAR)", "\"  Hello World  \"", 0),
        ("CAST(missing AS BIGINT)", "null", 0),
        ("CAST(s AS BIGINT)", "null", 1),
        ("CAST(f AS BIGINT)", "150", 0),
        ("CAST('2.5' AS BIGINT)", "3", 0),
        ("CAST('yes' AS BOOLEAN)", "true", 0),
        ("CAST('N' AS BOOLEAN)", "false", 0),
        ("CAST(' true' AS BOOLEAN)", "null", 1),
        ("CAST(1e20 AS VARCHAR)", "\"1e+20\"", 0),
        ("CAST(0.00001 AS VARCHAR)", "\"1e-05\"", 0),
        ("CAST(0.0001 AS VARCHAR)", "\"0.0001\"", 0),
        ("CAST(1e15 AS VARCHAR)", "\"1000000000000000.0\"", 0),
        ("CAST(s AS DOUBLE)", "null", 1),
        ("CAST(s AS BOOLEAN)", "null", 1),
        ("CAST(1e300 AS BIGINT)", "null", 1),
        ("TRY_CAST(s AS BIGINT)", "null", 0),
        ("num::BIGINT + 1", "43", 0),
        ("CAST(p AS VARCHAR) = p", "true", 0),
    ];
    check_all(
        cases
            .iter()
            .map(|&(expr, value, errors)| (v(expr), LINE, format!("{{\"v\":{value}}}"), errors)),
        Shape::Json,
    );
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
