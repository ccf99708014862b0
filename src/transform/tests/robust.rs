//! Bad input never crashes the evaluator: every query over lines mangled
//! at random (bytes flipped, cut short, nested deep) gives an outcome, and
//! a valid JSON line is never called invalid.

use super::*;

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mangled_lines_never_panic_and_valid_ones_are_never_invalid() {
    let seeds: &[&[u8]] = &[
        br#"{"level":"ERROR","status":503,"ms":1.5e3,"msg":"a \"b\" \\ \u00e9 \n","http":{"path":"/x","q":[1,{"a":null}]},"p":"{\"k\":[1,2]}","t":true}"#,
        br#"[{"a":1},"x",2.5,null]"#,
        br#"{"a":{"a":{"a":{"a":{"b":"deep"}}}},"a":1}"#,
        b"plain text line with \"quotes\" and \\ and \xff bytes",
    ];
    let queries = [
        "SELECT * FROM logs WHERE level IN ('ERROR', 'WARN') OR status > 500",
        "SELECT level, msg, http.path, http.q, a.a.a.a.b, \"p\" FROM logs",
        "SELECT * EXCEPT (msg), upper(msg) AS msg, json_extract(p, '$.k[1]') AS k FROM logs",
        "SELECT substr(msg, -3, 2) AS s, regexp_replace(msg, '[a-z]+', '<\\0>', 'g') AS r, \
         regexp_extract(body, '(\\w+) (\\w+)', 2) AS w, trim(msg) AS t, length(body) AS n, \
         CAST(ms AS BIGINT) AS i, ms / status AS d, status % 0 AS z, concat(a, t, http) AS c \
         FROM logs WHERE msg LIKE '%b%' OR body ILIKE '%TEXT%' OR NOT t",
    ];
    let mut checker = crate::scan::json::JsonChecker::new(1024);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut transformers: Vec<Transformer> = queries
        .iter()
        .map(|query| {
            let route = Arc::new(Condition::compile("status >= 500 OR body LIKE '%x%'").unwrap());
            Transformer::new(
                Some(Arc::new(Query::compile(query).unwrap())),
                vec![Some(route)],
                1024,
            )
        })
        .collect();
    let mut line = Vec::new();
    for round in 0..4000 {
        let seed = seeds[round % seeds.len()];
        line.clear();
        line.extend_from_slice(seed);
        for _ in 0..1 + rng.below(3) {
            match rng.below(4) {
                0 if !line.is_empty() => {
                    let at = rng.below(line.len());
                    line[at] = rng.next() as u8;
                }
                0 | 1 => line.truncate(rng.below(line.len() + 1)),
                2 => {
                    let at = rng.below(line.len() + 1);
                    let bytes = b"{}[]\",:\\0 ";
                    let byte = bytes[rng.below(bytes.len())];
                    line.insert(at, byte);
                }
                _ => {
                    let depth = rng.below(300);
                    let mut nested = vec![b'['; depth];
                    nested.extend_from_slice(&line);
                    nested.extend(std::iter::repeat_n(b']', depth));
                    line = nested;
                }
            }
        }
        line.truncate(1000);
        let valid = checker.is_valid(&line);
        for transformer in &mut transformers {
            let result = transformer.process(&line, Shape::Json);
            assert_eq!(
                result.outcome == Outcome::Invalid,
                !valid,
                "{:?}",
                String::from_utf8_lossy(&line)
            );
            if result.outcome == Outcome::Projected {
                let output = transformer.output();
                assert!(
                    serde_json::from_slice::<serde_json::Value>(output).is_ok(),
                    "not JSON: {:?} from {:?}",
                    String::from_utf8_lossy(output),
                    String::from_utf8_lossy(&line)
                );
            }
            let result = transformer.process(&line, Shape::Raw);
            assert_ne!(result.outcome, Outcome::Invalid);
        }
    }
}
