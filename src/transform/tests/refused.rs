//! Every refused construct: its exact message and where it points.

use super::*;

#[test]
fn refused_queries_name_the_construct_and_its_position() {
    // Positions are sqlparser's spans: an expression's starts where its
    // first part does (inside CAST( or EXISTS (, for example).
    let cases: &[(&str, &str)] = &[
        (
            "SELECT level, count(*) FROM logs GROUP BY level",
            "unsupported: GROUP BY at line 1 column 34",
        ),
        (
            "SELECT level, count(*) AS n FROM logs",
            "unsupported: the aggregate function count at line 1 column 15",
        ),
        (
            "SELECT level FROM logs WHERE a = 1 GROUP BY level",
            "unsupported: GROUP BY at line 1 column 36",
        ),
        (
            "SELECT * FROM logs ORDER BY ts",
            "unsupported: ORDER BY at line 1 column 20",
        ),
        (
            "SELECT * FROM logs LIMIT 10",
            "unsupported: LIMIT at line 1 column 20",
        ),
        (
            "SELECT * FROM logs OFFSET 10",
            "unsupported: OFFSET at line 1 column 20",
        ),
        (
            "SELECT * FROM users",
            "unsupported: FROM users (the records are FROM logs) at line 1 column 15",
        ),
        (
            "SELECT * FROM logs JOIN other ON logs.a = other.a",
            "unsupported: JOIN at line 1 column 25",
        ),
        (
            "SELECT * FROM logs, other",
            "unsupported: a second table (joins) at line 1 column 21",
        ),
        (
            "SELECT * FROM logs AS l",
            "unsupported: a table alias at line 1 column 23",
        ),
        (
            "SELECT * FROM (SELECT * FROM logs)",
            "unsupported: FROM anything but logs (subqueries, table functions) at line 1 column 16",
        ),
        (
            "SELECT DISTINCT level FROM logs",
            "unsupported: DISTINCT at line 1 column 8",
        ),
        (
            "SELECT * FROM logs WHERE a IN (SELECT a FROM logs)",
            "unsupported: IN with a subquery or table at line 1 column 26",
        ),
        (
            "SELECT * FROM logs WHERE EXISTS (SELECT 1)",
            "unsupported: a subquery at line 1 column 34",
        ),
        (
            "SELECT (SELECT 1) AS x FROM logs",
            "unsupported: a subquery at line 1 column 9",
        ),
        (
            "SELECT foo(level) FROM logs",
            "unsupported: the function foo at line 1 column 8",
        ),
        (
            "SELECT row_number() OVER () AS n FROM logs",
            "unsupported: the window function row_number at line 1 column 8",
        ),
        (
            "SELECT * FROM logs UNION SELECT * FROM logs",
            "unsupported: UNION at line 1 column 20",
        ),
        (
            "WITH t AS (SELECT 1) SELECT * FROM logs",
            "unsupported: WITH at line 1 column 1",
        ),
        (
            "SELECT * FROM logs WHERE a = 1 HAVING a = 1",
            "unsupported: HAVING at line 1 column 32",
        ),
        (
            "SELECT 1 AS one",
            "unsupported: a query without FROM logs at line 1 column 1",
        ),
        (
            "INSERT INTO logs VALUES (1)",
            "unsupported: INSERT (only SELECT … FROM logs) at line 1 column 1",
        ),
        (
            "SELECT * FROM logs; SELECT * FROM logs",
            "unsupported: more than one statement at line 1 column 21",
        ),
        (
            "SELECT a, * FROM logs",
            "unsupported: * after other columns (write it first) at line 1 column 11",
        ),
        (
            "SELECT * REPLACE (1 AS a) FROM logs",
            "unsupported: * REPLACE (1 AS a) (only * EXCEPT (…)) at line 1 column 8",
        ),
        (
            "SELECT a, b AS a FROM logs",
            "duplicate column name \"a\" at line 1 column 11",
        ),
        (
            "SELECT * FROM logs WHERE regexp_like(msg, pattern)",
            "unsupported: a regex pattern that is not a string literal at line 1 column 43",
        ),
        (
            "SELECT * FROM logs WHERE regexp_like(msg, '(')",
            "invalid regular expression \"(\": unclosed group at line 1 column 43",
        ),
        (
            "SELECT regexp_extract(msg, 'a(b)', 2) AS x FROM logs",
            "regexp_extract group 2 is not in the pattern (0 to 1) at line 1 column 8",
        ),
        (
            "SELECT * FROM logs WHERE msg LIKE pattern",
            "unsupported: a LIKE pattern that is not a string literal at line 1 column 35",
        ),
        (
            "SELECT json_extract(payload, 'a.b') AS x FROM logs",
            "bad JSON path \"a.b\" (write $.a.b, $.a[0] or $.\"a.b\") at line 1 column 30",
        ),
        (
            "SELECT CAST(a AS DATE) AS d FROM logs",
            "unsupported: CAST to DATE (BIGINT, DOUBLE, VARCHAR or BOOLEAN) at line 1 column 13",
        ),
        (
            "SELECT lower(a, b) AS x FROM logs",
            "lower takes 1 arguments, not 2 at line 1 column 8",
        ),
        (
            "SELECT * FROM logs WHERE level = 5 AND 'a' = 1",
            "cannot compare VARCHAR with BIGINT at line 1 column 40",
        ),
        (
            "SELECT * FROM logs WHERE 5 IN (1, 'x')",
            "cannot compare BIGINT with VARCHAR at line 1 column 35",
        ),
        (
            "SELECT * FROM logs WHERE CAST(a AS VARCHAR) < 5",
            "cannot compare VARCHAR with BIGINT at line 1 column 31",
        ),
        (
            "SELECT 'x' + 1 AS y FROM logs",
            "cannot apply + to VARCHAR and BIGINT at line 1 column 8",
        ),
        (
            "SELECT * FROM logs WHERE 'yes'",
            "WHERE needs a BOOLEAN, not VARCHAR at line 1 column 26",
        ),
        (
            "SELECT * FROM logs WHERE lower(5) = 'a'",
            "lower needs a VARCHAR, not BIGINT at line 1 column 26",
        ),
        (
            "SELECT * FROM logs WHERE",
            "syntax error: Expected: an expression, found: EOF at line 1 column 25",
        ),
        (
            "SELECT * FROM logs WHERE a = 'open",
            "syntax error: Unterminated string literal at line 1 column 30",
        ),
        (
            "SELECT * FROM logs WHERE a = = 1",
            "syntax error: Expected: an expression, found: = at line 1 column 30",
        ),
        ("", "empty query"),
    ];
    let mut failures = Vec::new();
    for (query, expected) in cases {
        match Query::compile(query) {
            Ok(_) => failures.push(format!("{query}: compiled")),
            Err(error) if error.to_string() != *expected => {
                failures.push(format!("{query}\n   gave {error}\n   want {expected}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn conditions_compile_alone_and_print_back_normalised() {
    let condition = Condition::compile("level  in ('error','fatal') and status>=500").unwrap();
    assert_eq!(
        condition.normalized(),
        "level IN ('error', 'fatal') AND status >= 500"
    );
    let query = Query::compile("select level,msg as m from LOGS where x=1").unwrap();
    assert_eq!(
        query.normalized(),
        "SELECT level, msg AS m FROM LOGS WHERE x = 1"
    );
    assert!(!query.keeps_lines());
    assert!(
        Query::compile("SELECT * FROM logs WHERE a = 1")
            .unwrap()
            .keeps_lines()
    );
    assert!(
        !Query::compile("SELECT * EXCEPT (a) FROM logs")
            .unwrap()
            .keeps_lines()
    );
    for (text, expected) in [
        (
            "level = ",
            "syntax error: Expected: an expression, found: EOF at line 1 column 8",
        ),
        (
            "a = 1 b",
            "syntax error: Expected: end of expression, found: b at line 1 column 7",
        ),
        (
            "'x'",
            "the condition needs a BOOLEAN, not VARCHAR at line 1 column 1",
        ),
        (
            "a IN (SELECT 1)",
            "unsupported: IN with a subquery or table at line 1 column 1",
        ),
    ] {
        assert_eq!(
            Condition::compile(text).unwrap_err().to_string(),
            expected,
            "{text}"
        );
    }
}
