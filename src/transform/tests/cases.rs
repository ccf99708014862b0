//! Filters, projections, NULL logic, nested and quoted fields, duplicates.

use super::*;

const LINE: &str = r#"{"level":"error","status":503,"ms":12.5,"ok":false,"msg":"disk \"full\"","http":{"status":200,"path":"/a"},"tags":["x","y"],"@timestamp":"2026-12-02T10:00:00Z","a.b":"dotted","n":null}"#;

#[test]
fn select_star_and_filters() {
    check(
        &[
            ("SELECT * FROM logs", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE level = 'error'", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE level = 'warn'", LINE, FILTERED, 0),
            ("SELECT * FROM logs WHERE level != 'warn'", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE level <> 'error'",
                LINE,
                FILTERED,
                0,
            ),
            (
                "SELECT * FROM logs WHERE status >= 500 AND status < 600",
                LINE,
                KEPT,
                0,
            ),
            ("SELECT * FROM logs WHERE status > 503", LINE, FILTERED, 0),
            ("SELECT * FROM logs WHERE status <= 503", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE ms > 12", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE ms = 12.5", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE status = 503.0", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE ok = false", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE NOT ok", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE ok", LINE, FILTERED, 0),
            (
                "SELECT * FROM logs WHERE level IN ('warn', 'error')",
                LINE,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE level NOT IN ('warn', 'error')",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE status IN (1, 503)", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE http.status = 200", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE http.path = '/a'", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE \"@timestamp\" > '2026'",
                LINE,
                KEPT,
                0,
            ),
            ("SELECT * FROM logs WHERE \"a.b\" = 'dotted'", LINE, KEPT, 0),
            // Unquoted `a.b` is b inside a, or the key "a.b" (as here).
            ("SELECT * FROM logs WHERE a.b = 'dotted'", LINE, KEPT, 0),
            // Quoted parts are keys as written: never joined.
            ("SELECT * FROM logs WHERE \"a\".b IS NULL", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE msg = 'disk \"full\"'",
                LINE,
                KEPT,
                0,
            ),
            // Identifiers match keys case-sensitively, quoted or not.
            (
                "SELECT * FROM logs WHERE LEVEL = 'error'",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE \"Level\" IS NULL", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE missing IS NULL", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE n IS NULL", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE level IS NOT NULL", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE status BETWEEN 500 AND 599",
                LINE,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE status NOT BETWEEN 500 AND 599",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE msg LIKE 'disk%'", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE msg LIKE '%full%'", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE msg LIKE '%\"'", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE msg LIKE 'd_sk%'", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE msg LIKE 'DISK%'",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE msg ILIKE 'DISK%'", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE msg NOT LIKE 'disk%'",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE level LIKE 'error'", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE http.path LIKE '/!_%' ESCAPE '!'",
                LINE,
                FILTERED,
                0,
            ),
            ("SELECT * FROM logs WHERE tags = tags", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE status + 1 = 504", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE status * 2 - 6 = 1000",
                LINE,
                KEPT,
                0,
            ),
            ("SELECT * FROM logs WHERE status % 10 = 3", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE status / 2 = 251.5", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE -status = -503", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE (level = 'warn' OR status = 503) AND NOT (ms < 1)",
                LINE,
                KEPT,
                0,
            ),
        ],
        Shape::Json,
    );
}

#[test]
fn null_logic_is_three_valued() {
    // n is null, missing is absent: both NULL.
    check(
        &[
            ("SELECT * FROM logs WHERE n = 1", LINE, FILTERED, 0),
            ("SELECT * FROM logs WHERE NOT (n = 1)", LINE, FILTERED, 0),
            ("SELECT * FROM logs WHERE n = 1 OR true", LINE, KEPT, 0),
            ("SELECT * FROM logs WHERE n = 1 OR false", LINE, FILTERED, 0),
            (
                "SELECT * FROM logs WHERE NOT (n = 1 AND false)",
                LINE,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE NOT (n = 1 AND true)",
                LINE,
                FILTERED,
                0,
            ),
            (
                "SELECT * FROM logs WHERE missing IN (1, 2)",
                LINE,
                FILTERED,
                0,
            ),
            (
                "SELECT * FROM logs WHERE NOT (status IN (1, NULL))",
                LINE,
                FILTERED,
                0,
            ),
            (
                "SELECT * FROM logs WHERE status IN (503, NULL)",
                LINE,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE (missing = 1) IS NULL",
                LINE,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE (missing = 1) IS NOT TRUE",
                LINE,
                KEPT,
                0,
            ),
            ("SELECT * FROM logs WHERE NULL IS NULL", LINE, KEPT, 0),
            (
                "SELECT * FROM logs WHERE missing BETWEEN 1 AND 2",
                LINE,
                FILTERED,
                0,
            ),
            (
                "SELECT * FROM logs WHERE COALESCE(missing, n, status) = 503",
                LINE,
                KEPT,
                0,
            ),
        ],
        Shape::Json,
    );
    let mut failures = Vec::new();
    for (a, b, and, or) in [
        ("true", "NULL", "NULL", "true"),
        ("false", "NULL", "false", "NULL"),
        ("NULL", "NULL", "NULL", "NULL"),
        ("true", "false", "false", "true"),
    ] {
        for (op, want) in [("AND", and), ("OR", or)] {
            for (left, right) in [(a, b), (b, a)] {
                let query = format!("SELECT ({left} {op} {right}) AS v FROM logs");
                let got = run_shape(&query, "{}", Shape::Json).0;
                if got != format!("{{\"v\":{}}}", want.to_lowercase()) {
                    failures.push(format!("{query}: {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn projections_copy_raw_bytes_and_compute_values() {
    let line =
        r#"{"a":1.50,"s":"x\u00e9\n","o":{"k":[1, 2]},"a":2,"t":true,"big":12345678901234567890}"#;
    check(
        &[
            ("SELECT a FROM logs", line, r#"{"a":1.50}"#, 0),
            (
                "SELECT s, o, o.k AS k FROM logs",
                line,
                r#"{"s":"x\u00e9\n","o":{"k":[1, 2]},"k":[1, 2]}"#,
                0,
            ),
            (
                "SELECT t AS flag, missing FROM logs",
                line,
                r#"{"flag":true,"missing":null}"#,
                0,
            ),
            (
                "SELECT big FROM logs",
                line,
                r#"{"big":12345678901234567890}"#,
                0,
            ),
            (
                "SELECT big + 0 AS b FROM logs",
                line,
                r#"{"b":1.2345678901234567e+19}"#,
                0,
            ),
            ("SELECT o.k FROM logs", line, r#"{"o.k":[1, 2]}"#, 0),
            // An unquoted leading `logs.` is the table (DuckDB's reading).
            (
                "SELECT logs.t, LOGS.o.k FROM logs",
                line,
                r#"{"t":true,"o.k":[1, 2]}"#,
                0,
            ),
            (
                "SELECT \"logs\".t FROM logs",
                r#"{"logs":{"t":1},"t":2}"#,
                r#"{"logs.t":1}"#,
                0,
            ),
            (
                "SELECT a * 2 AS d, s AS s2 FROM logs",
                line,
                r#"{"d":3.0,"s2":"x\u00e9\n"}"#,
                0,
            ),
            (
                "SELECT upper(s) AS u FROM logs",
                line,
                "{\"u\":\"XÉ\\n\"}",
                0,
            ),
            ("SELECT a + 1 FROM logs", line, r#"{"a + 1":2.5}"#, 0),
            (
                "SELECT 1 AS one, 'q\"' AS q, NULL AS z, 2.50 AS f FROM logs",
                line,
                r#"{"one":1,"q":"q\"","z":null,"f":2.5}"#,
                0,
            ),
            (
                "SELECT * EXCEPT (a) FROM logs",
                line,
                r#"{"s":"x\u00e9\n","o":{"k":[1, 2]},"t":true,"big":12345678901234567890}"#,
                0,
            ),
            (
                "SELECT * EXCEPT (s, big) FROM logs",
                line,
                r#"{"a":1.50,"o":{"k":[1, 2]},"a":2,"t":true}"#,
                0,
            ),
            (
                "SELECT * EXCLUDE (t) FROM logs WHERE t",
                line,
                r#"{"a":1.50,"s":"x\u00e9\n","o":{"k":[1, 2]},"a":2,"big":12345678901234567890}"#,
                0,
            ),
            (
                "SELECT *, a + 1 AS a FROM logs",
                line,
                r#"{"s":"x\u00e9\n","o":{"k":[1, 2]},"t":true,"big":12345678901234567890,"a":2.5}"#,
                0,
            ),
            (
                "SELECT *, 'n' AS new FROM logs WHERE false",
                line,
                FILTERED,
                0,
            ),
            ("SELECT *, 7 AS x FROM logs", "{}", r#"{"x":7}"#, 0),
            (
                "SELECT *, 7 AS x FROM logs",
                r#" { "y" : 1 } "#,
                r#"{"y" : 1,"x":7}"#,
                0,
            ),
            ("SELECT * EXCEPT (y) FROM logs", r#"{"y":1}"#, "{}", 0),
            ("SELECT body FROM logs", "[1,2]", r#"{"body":"[1,2]"}"#, 0),
            (
                "SELECT *, 1 AS x FROM logs",
                r#""str""#,
                r#"{"body":"\"str\"","x":1}"#,
                0,
            ),
            ("SELECT a FROM logs", "{\"a\":", INVALID, 0),
        ],
        Shape::Json,
    );
}

#[test]
fn raw_lines_are_body() {
    check(
        &[
            (
                "SELECT * FROM logs WHERE body LIKE '%ERROR%'",
                "x ERROR y",
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE body LIKE '%ERROR%'",
                "x info y",
                FILTERED,
                0,
            ),
            (
                "SELECT body, level FROM logs",
                "a \"q\"\tb",
                r#"{"body":"a \"q\"\tb","level":null}"#,
                0,
            ),
            (
                "SELECT length(body) AS n FROM logs",
                "héllo",
                r#"{"n":5}"#,
                0,
            ),
            (
                "SELECT *, 1 AS x FROM logs",
                "{not json",
                r#"{"body":"{not json","x":1}"#,
                0,
            ),
            ("SELECT * EXCEPT (body) FROM logs", "abc", "{}", 0),
            // trim cuts spaces, not tabs or newlines (as DuckDB).
            (
                "SELECT trim(body) AS t FROM logs",
                "\t a  ",
                r#"{"t":"\t a"}"#,
                0,
            ),
        ],
        Shape::Raw,
    );
    // Bytes that are not UTF-8 are written as U+FFFD.
    let query = Query::compile("SELECT body FROM logs").unwrap();
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 64);
    let result = transformer.process(b"a\xffb", Shape::Raw);
    assert_eq!(result.outcome, Outcome::Projected);
    assert_eq!(transformer.output(), "{\"body\":\"a\u{fffd}b\"}".as_bytes());
}

#[test]
fn duplicate_keys_first_wins() {
    let line = r#"{"a":1,"a":2,"o":{"k":1},"o":{"k":2},"p":3,"p":{"q":4}}"#;
    check(
        &[
            (
                "SELECT a, o.k, p.q FROM logs",
                line,
                r#"{"a":1,"o.k":1,"p.q":null}"#,
                0,
            ),
            ("SELECT * FROM logs WHERE a = 2", line, FILTERED, 0),
            ("SELECT o FROM logs", line, r#"{"o":{"k":1}}"#, 0),
        ],
        Shape::Json,
    );
}

#[test]
fn dotted_names_match_nested_keys_or_keys_with_dots_first_found_wins() {
    // OTLP records keep resource attributes as dotted keys.
    let otlp = r#"{"severity_text":"ERROR","body":"x","attributes":{"http.status":500,"n":1},"resource":{"service.name":"api","host":{"name":"h1"}}}"#;
    check(
        &[
            (
                "SELECT resource.service.name, attributes.http.status, resource.host.name FROM logs",
                otlp,
                r#"{"resource.service.name":"api","attributes.http.status":500,"resource.host.name":"h1"}"#,
                0,
            ),
            (
                "SELECT * FROM logs WHERE resource.\"service.name\" = 'api'",
                otlp,
                KEPT,
                0,
            ),
            (
                "SELECT * FROM logs WHERE resource.\"service\".name IS NULL",
                otlp,
                KEPT,
                0,
            ),
            // Both spellings present: the first in the line wins.
            (
                "SELECT a.b FROM logs",
                r#"{"a.b":1,"a":{"b":2}}"#,
                r#"{"a.b":1}"#,
                0,
            ),
            (
                "SELECT a.b FROM logs",
                r#"{"a":{"b":2},"a.b":1}"#,
                r#"{"a.b":2}"#,
                0,
            ),
            (
                "SELECT a.b.c FROM logs",
                r#"{"a":{"b.c":3}}"#,
                r#"{"a.b.c":3}"#,
                0,
            ),
            (
                "SELECT a.b.c FROM logs",
                r#"{"a.b":{"c":4}}"#,
                r#"{"a.b.c":4}"#,
                0,
            ),
        ],
        Shape::Json,
    );
}
