//! The evaluator allocates nothing per line once warmed up: filter,
//! projection, `*` forms, functions, regexes, json_extract, now() and routes.

use super::*;

#[test]
fn evaluating_lines_allocates_nothing_after_warm_up() {
    let queries = [
        "SELECT * FROM logs WHERE level IN ('WARN', 'ERROR') AND status >= 500",
        "SELECT ts, level, service, msg, status, duration_ms FROM logs",
        "SELECT * EXCEPT (msg), upper(level) AS level FROM logs WHERE NOT (status BETWEEN 200 AND 299)",
        "SELECT lower(msg) AS m, concat(service, ':', status, ':', duration_ms) AS k, \
         replace(msg, 'a', 'bb') AS r, substr(msg, 2, 5) AS sub, trim(msg) AS t, length(msg) AS n, \
         CASE WHEN duration_ms > 5.5 THEN 'slow' ELSE 'fast' END AS speed, \
         CAST(status AS VARCHAR) AS sv, CAST(code AS BIGINT) AS code, status / 7 AS ratio, \
         regexp_extract(msg, '(\\w+) (\\w+)', 2) AS word, \
         regexp_replace(msg, '[aeiou]', '_', 'g') AS vowels, regexp_like(msg, 'ab+c') AS m2, \
         json_extract(payload, '$.user.ids') AS ids, json_extract(payload, '$.user.name') AS name, \
         now() AS at, http.path, \"@timestamp\" FROM logs WHERE msg LIKE '%a%' OR msg ILIKE 'X_%'",
    ];
    let lines: Vec<String> = (0..500)
        .map(|i| {
            let level = ["INFO", "WARN", "ERROR", "DEBUG"][i % 4];
            format!(
                r#"{{"ts":"2026-12-02T10:00:{:02}Z","level":"{level}","service":"api-{i}","msg":"abc {i} \"quoted\" é and more text","status":{},"duration_ms":{}.25,"code":"{i}","payload":"{{\"user\":{{\"name\":\"u{i}\",\"ids\":[{i},2]}}}}","http":{{"path":"/p/{i}"}},"@timestamp":{i}}}"#,
                i % 60,
                200 + (i % 4) * 100,
                i % 13
            )
        })
        .collect();
    for text in queries {
        let query = Arc::new(Query::compile(text).unwrap_or_else(|e| panic!("{text}: {e}")));
        let route =
            Arc::new(Condition::compile("level = 'ERROR' OR lower(service) LIKE '%1%'").unwrap());
        let mut transformer = Transformer::new(Some(query), vec![Some(route), None], 4096);
        let mut run = |lines: &[String]| {
            let mut projected = 0usize;
            for line in lines {
                let result = transformer.process(line.as_bytes(), Shape::Json);
                assert_ne!(result.outcome, Outcome::Invalid, "{line}");
                if result.outcome == Outcome::Projected {
                    projected += transformer.output().len();
                }
                transformer.process(line.as_bytes(), Shape::Raw);
            }
            assert_eq!(
                transformer.process(b"{\"broken\":", Shape::Json).outcome,
                Outcome::Invalid
            );
            projected
        };
        // Warm up: buffers, tapes and regex caches grow to their working size once.
        run(&lines);
        let before = crate::test_alloc::allocations_on_this_thread();
        run(&lines);
        assert_eq!(
            crate::test_alloc::allocations_on_this_thread() - before,
            0,
            "per-line evaluation must not allocate: {text}"
        );
    }
}
