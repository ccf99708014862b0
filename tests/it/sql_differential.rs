//! `--sql` against DuckDB: generated queries over generated NDJSON lines run
//! through ringway (`ringway sql`, and a few through `ringway run --sql`)
//! and through DuckDB (the Python package `duckdb`, `read_ndjson` with the
//! columns' types given), and the records must agree. Also: every construct
//! ringway refuses gives exit 2 and one stderr line `ringway: error: --sql: …`.
//!
//! Both sides are parsed as JSON and compared value by value: integers
//! exactly, doubles within 1e-9 relative, strings and booleans exactly, a
//! missing key the same as `null` (ringway's `SELECT *` passes the line as it
//! is, DuckDB writes every declared column), records in input order.
//!
//! The generator stays inside the subset where both engines mean the same
//! thing. Left out, and why (ringway's semantics are its own, not DuckDB's):
//! - `x / 0`: ringway gives NULL, DuckDB 2 gives ±inf. The DuckDB text of a
//!   division is `a / NULLIF(b, 0)`, which is ringway's rule.
//! - A CAST that fails: ringway gives NULL (and counts it), DuckDB's CAST
//!   stops the query; the DuckDB text is TRY_CAST. Casts that succeed are
//!   generated as they come (padded and fractional strings to BIGINT,
//!   DOUBLE to BIGINT and to VARCHAR): ringway's CAST follows DuckDB's.
//! - A string compared with a number: NULL in ringway, an implicit cast or a
//!   binder error in DuckDB. Operands always have one type (ints and doubles
//!   mix, as both promote to DOUBLE); CASE and COALESCE arms too.
//! - Duplicate keys in a line (ringway: the first wins; DuckDB's reader is
//!   not specified) and identifiers that differ only in case (ringway is
//!   case-sensitive, DuckDB is not): the lines have neither.
//! - `regexp_like` is spelled `regexp_matches` in DuckDB (ringway takes
//!   both names).
//! - `\w`, `\d`, `\s` (Unicode-aware in Rust's regex, ASCII in DuckDB's
//!   RE2): patterns use explicit ASCII classes.
//! - Characters whose case mapping differs between Unicode's simple and full
//!   mappings (ß, İ): the strings have none.
//! - Integer overflow (DuckDB stops the query): values stay small.
//! - DECIMAL: DuckDB reads `1.5` as a DECIMAL, ringway as a DOUBLE; the
//!   DuckDB text of a fractional literal is CAST(1.5 AS DOUBLE).

use crate::common::{TempDir, p, ringway_bin, test_python};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const SEED: u64 = 0x5eed_0016;
const LINES: u64 = 300;
const QUERIES: usize = 260;
/// Queries also run through `ringway run --sql … --exit-on-eof` (slower:
/// a whole pipeline each), not only `ringway sql`.
const THROUGH_RUN: usize = 12;

/// The columns of the generated lines with their DuckDB types, as given to
/// `read_ndjson(columns=…)`.
const COLUMNS: &[(&str, &str)] = &[
    ("id", "BIGINT"),
    ("level", "VARCHAR"),
    ("msg", "VARCHAR"),
    ("n", "BIGINT"),
    ("x", "DOUBLE"),
    ("ok", "BOOLEAN"),
    ("code", "VARCHAR"),
    ("tag", "VARCHAR"),
    ("http", "STRUCT(status BIGINT, path VARCHAR)"),
];

/// xorshift64* (as common::Rng), local so the stream of this test never
/// changes when the shared one gains a use.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn int(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// The lines

/// Pieces of `msg`, as JSON string contents: escapes (quote, backslash,
/// newline, tab, \u escapes incl. a surrogate pair) and raw UTF-8.
const MSG_PIECES: &[&str] = &[
    "request",
    "completed",
    "cache miss",
    "upstream timeout",
    "said \\\"hi\\\"",
    "C:\\\\temp\\\\x",
    "two\\nlines",
    "tab\\there",
    "café",
    "日本語",
    "\\u00e9t\\u00e9",
    "rocket 🚀",
    "\\ud83d\\ude80 escaped",
    "abc123",
    "ERROR 42",
    "user=alice id=7",
    "50% done",
    "under_score",
];
const LEVELS: &[&str] = &["INFO", "INFO", "WARN", "ERROR", "DEBUG", "info", "Warn"];
const CODES: &[&str] = &[
    "42", "-7", "0", "1000", "abc", "", "12x", "x9", " 12", "7 ", "1.5", "-2.5", "1.5e2",
];
const TAGS: &[&str] = &[
    "alpha", "  alpha ", "beta", " gamma", "Delta  ", "é t", "  ", "\\tbeta ",
];
const PATHS: &[&str] = &["/v1/orders", "/healthz", "/api/ünï", "/v1/users/me", ""];

/// A value present (Some(json)), explicitly null (Some("null")) or missing
/// (None): 6% null, 6% missing.
fn sometimes(rng: &mut Rng, value: String) -> Option<String> {
    match rng.below(100) {
        0..=5 => Some("null".to_string()),
        6..=11 => None,
        _ => Some(value),
    }
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn generate_line(rng: &mut Rng, id: u64) -> String {
    let mut fields: Vec<(&str, String)> = vec![("id", id.to_string())];
    let level = quoted(rng.pick(LEVELS));
    let mut msg = String::new();
    for i in 0..rng.int(1, 3) {
        if i > 0 {
            msg.push(' ');
        }
        msg.push_str(rng.pick(MSG_PIECES));
    }
    let n = rng.int(-500, 500).to_string();
    // Always with a fraction or an exponent: the value is a JSON double.
    let x = match rng.below(4) {
        0 => format!("{}.5", rng.int(-100, 100)),
        1 => format!("{}e-3", rng.int(1, 90000)),
        _ => format!("{:.3}", rng.int(-999_999, 999_999) as f64 / 1000.0),
    };
    let ok = if rng.chance(50) { "true" } else { "false" }.to_string();
    let code = quoted(rng.pick(CODES));
    let tag = quoted(rng.pick(TAGS));
    let mut http_fields = Vec::new();
    if !rng.chance(10) {
        http_fields.push(format!(
            "\"status\":{}",
            rng.pick(&["200", "200", "404", "500", "null"])
        ));
    }
    if !rng.chance(10) {
        http_fields.push(format!("\"path\":{}", quoted(rng.pick(PATHS))));
    }
    let http = format!("{{{}}}", http_fields.join(","));
    for (name, value) in [
        ("level", level),
        ("msg", quoted(&msg)),
        ("n", n),
        ("x", x),
        ("ok", ok),
        ("code", code),
        ("tag", tag),
        ("http", http),
    ] {
        if let Some(value) = sometimes(rng, value) {
            fields.push((name, value));
        }
    }
    // Keys in a shuffled order (id first): nothing may depend on it.
    for i in (2..fields.len()).rev() {
        let j = 1 + rng.below(i as u64) as usize;
        fields.swap(i, j);
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

// ---------------------------------------------------------------------------
// The queries: every expression is generated once and rendered twice, for
// ringway and for DuckDB (the same text but for the renderings listed at the
// top).

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Dbl,
    Str,
    Bool,
}

/// An expression in both spellings.
struct Expr {
    ringway: String,
    duckdb: String,
}

fn same(text: String) -> Expr {
    Expr {
        duckdb: text.clone(),
        ringway: text,
    }
}

fn both(ringway: String, duckdb: String) -> Expr {
    Expr { ringway, duckdb }
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Gen {
    rng: Rng,
}

impl Gen {
    fn column(&mut self, ty: Ty) -> Expr {
        let names: &[&str] = match ty {
            Ty::Int => &["n", "id", "http.status"],
            Ty::Dbl => &["x"],
            Ty::Str => &["level", "msg", "code", "tag", "http.path"],
            Ty::Bool => &["ok"],
        };
        same(self.rng.pick(names).to_string())
    }

    fn literal(&mut self, ty: Ty) -> Expr {
        let rng = &mut self.rng;
        same(match ty {
            Ty::Int => rng.int(-20, 600).to_string(),
            Ty::Dbl => {
                // DuckDB reads 1.5 as a DECIMAL; ringway as a DOUBLE.
                let text = format!("{}.{}", rng.int(-50, 500), rng.int(0, 99));
                return both(text.clone(), format!("CAST({text} AS DOUBLE)"));
            }
            Ty::Str => sql_string(rng.pick(&[
                "INFO",
                "WARN",
                "ERROR",
                "alpha",
                "café",
                "日本語",
                "it's",
                "",
                "42",
                "/healthz",
            ])),
            Ty::Bool => rng.pick(&["TRUE", "FALSE"]).to_string(),
        })
    }

    fn leaf(&mut self, ty: Ty) -> Expr {
        if self.rng.chance(75) {
            self.column(ty)
        } else {
            self.literal(ty)
        }
    }

    /// A numeric operand: Int or Dbl (both promote to DOUBLE together).
    fn numeric(&mut self, depth: u32) -> Expr {
        let ty = if self.rng.chance(60) {
            Ty::Int
        } else {
            Ty::Dbl
        };
        self.expr(ty, depth)
    }

    fn expr(&mut self, ty: Ty, depth: u32) -> Expr {
        if depth == 0 || self.rng.chance(30) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match ty {
            Ty::Int => match self.rng.below(7) {
                0 | 1 => {
                    let op = self.rng.pick(&["+", "-", "*"]);
                    let (a, b) = (self.expr(Ty::Int, d), self.expr(Ty::Int, d));
                    bin(&a, op, &b)
                }
                2 => {
                    let s = self.expr(Ty::Str, d);
                    call("length", &[&s])
                }
                3 => self.case(Ty::Int, d),
                4 => self.coalesce(Ty::Int, d),
                5 => {
                    let code = self.column(Ty::Str);
                    let code = match self.rng.below(5) {
                        0..=2 => same("code".into()),
                        3 => code,
                        // DOUBLE to BIGINT rounds half away from zero in both.
                        _ => self.expr(Ty::Dbl, d),
                    };
                    cast(&code, "BIGINT")
                }
                _ => {
                    let a = self.expr(Ty::Int, d);
                    let b = same(self.rng.int(1, 9).to_string());
                    bin(&a, "%", &b)
                }
            },
            Ty::Dbl => match self.rng.below(5) {
                0 | 1 => {
                    let op = self.rng.pick(&["+", "-", "*"]);
                    let a = self.expr(Ty::Dbl, d);
                    let b = self.numeric(d);
                    if self.rng.chance(50) {
                        bin(&a, op, &b)
                    } else {
                        bin(&b, op, &a)
                    }
                }
                2 => {
                    let (a, b) = (self.numeric(d), self.numeric(d));
                    both(
                        format!("({} / {})", a.ringway, b.ringway),
                        format!("({} / NULLIF({}, 0))", a.duckdb, b.duckdb),
                    )
                }
                3 => {
                    let a = self.expr(Ty::Int, d);
                    cast(&a, "DOUBLE")
                }
                _ => {
                    if self.rng.chance(50) {
                        self.case(Ty::Dbl, d)
                    } else {
                        self.coalesce(Ty::Dbl, d)
                    }
                }
            },
            Ty::Str => match self.rng.below(11) {
                0 => {
                    let s = self.expr(Ty::Str, d);
                    call(self.rng.pick(&["lower", "upper"]), &[&s])
                }
                1 => {
                    let s = self.expr(Ty::Str, d);
                    call("trim", &[&s])
                }
                2 => {
                    let s = self.expr(Ty::Str, d);
                    let start = same(self.rng.int(1, 6).to_string());
                    let len = same(self.rng.int(0, 8).to_string());
                    call("substr", &[&s, &start, &len])
                }
                3 => {
                    let (a, b) = (self.expr(Ty::Str, d), self.expr(Ty::Str, d));
                    call("concat", &[&a, &b])
                }
                4 => {
                    let s = self.expr(Ty::Str, d);
                    let from = same(sql_string(
                        self.rng.pick(&["a", "e", " ", "é", "/", "it's"]),
                    ));
                    let to = same(sql_string(self.rng.pick(&["", "_", "XY", "ü"])));
                    call("replace", &[&s, &from, &to])
                }
                5 => {
                    let s = self.expr(Ty::Str, d);
                    let (pattern, group) = *self.rng.pick(&[
                        &("([a-z]+)", 1),
                        &("([A-Z]+) ([0-9]+)", 2),
                        &("[0-9]+", 0),
                        &("id=([0-9]+)", 1),
                        &("/([a-z0-9]+)", 1),
                    ]);
                    let (pattern, group) = (same(sql_string(pattern)), same(group.to_string()));
                    call("regexp_extract", &[&s, &pattern, &group])
                }
                6 => {
                    let s = self.expr(Ty::Str, d);
                    let pattern = same(sql_string(self.rng.pick(&[
                        "[0-9]+",
                        "[aeiou]",
                        "^ +| +$",
                        "é",
                        "[A-Z][a-z]",
                    ])));
                    let to = same(sql_string(self.rng.pick(&["#", "", "<>"])));
                    if self.rng.chance(50) {
                        call("regexp_replace", &[&s, &pattern, &to])
                    } else {
                        let options = same(sql_string(self.rng.pick(&["g", "i", "gi"])));
                        call("regexp_replace", &[&s, &pattern, &to, &options])
                    }
                }
                7 => {
                    let a = self.expr(Ty::Int, d);
                    cast(&a, "VARCHAR")
                }
                8 => {
                    let a = if self.rng.chance(50) {
                        self.expr(Ty::Bool, d)
                    } else {
                        // A DOUBLE's text: shortest round trip in both.
                        self.expr(Ty::Dbl, d)
                    };
                    cast(&a, "VARCHAR")
                }
                9 => self.case(Ty::Str, d),
                _ => self.coalesce(Ty::Str, d),
            },
            Ty::Bool => self.predicate(d),
        }
    }

    fn case(&mut self, ty: Ty, d: u32) -> Expr {
        let mut r = String::from("CASE");
        let mut k = String::from("CASE");
        for _ in 0..self.rng.int(1, 2) {
            let (c, v) = (self.predicate(d), self.expr(ty, d));
            write!(r, " WHEN {} THEN {}", c.ringway, v.ringway).unwrap();
            write!(k, " WHEN {} THEN {}", c.duckdb, v.duckdb).unwrap();
        }
        if self.rng.chance(70) {
            let v = self.expr(ty, d);
            write!(r, " ELSE {}", v.ringway).unwrap();
            write!(k, " ELSE {}", v.duckdb).unwrap();
        }
        both(r + " END", k + " END")
    }

    fn coalesce(&mut self, ty: Ty, d: u32) -> Expr {
        let (a, b) = (self.expr(ty, d), self.expr(ty, d));
        if self.rng.chance(50) {
            let c = self.literal(ty);
            call("COALESCE", &[&a, &b, &c])
        } else {
            call("COALESCE", &[&a, &b])
        }
    }

    fn predicate(&mut self, depth: u32) -> Expr {
        if depth == 0 {
            return self.comparison(0);
        }
        let d = depth - 1;
        match self.rng.below(14) {
            0..=3 => self.comparison(d),
            4 => {
                let (a, b) = (self.predicate(d), self.predicate(d));
                bin(&a, self.rng.pick(&["AND", "OR"]), &b)
            }
            5 => {
                let a = self.predicate(d);
                both(
                    format!("(NOT {})", a.ringway),
                    format!("(NOT {})", a.duckdb),
                )
            }
            6 => {
                // IN / NOT IN over literals of one type.
                let ty = *self.rng.pick(&[&Ty::Int, &Ty::Str, &Ty::Str]);
                let e = self.expr(ty, d);
                let items: Vec<String> = (0..self.rng.int(1, 4))
                    .map(|_| self.literal(ty).ringway)
                    .collect();
                let not = if self.rng.chance(30) { "NOT " } else { "" };
                both(
                    format!("({} {not}IN ({}))", e.ringway, items.join(", ")),
                    format!("({} {not}IN ({}))", e.duckdb, items.join(", ")),
                )
            }
            7 => {
                let (e, low, high) = (self.numeric(d), self.literal(Ty::Int), self.numeric(0));
                let not = if self.rng.chance(25) { "NOT " } else { "" };
                both(
                    format!(
                        "({} {not}BETWEEN {} AND {})",
                        e.ringway, low.ringway, high.ringway
                    ),
                    format!(
                        "({} {not}BETWEEN {} AND {})",
                        e.duckdb, low.duckdb, high.duckdb
                    ),
                )
            }
            8 => {
                let e = self.expr(Ty::Str, d);
                let op = self.rng.pick(&["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"]);
                let pattern = sql_string(self.rng.pick(&[
                    "%a%", "INFO", "info", "w%", "%R", "_____", "%é%", "%\"%", "50%%", "c_f%", "",
                    "%",
                ]));
                both(
                    format!("({} {op} {pattern})", e.ringway),
                    format!("({} {op} {pattern})", e.duckdb),
                )
            }
            9 => {
                let ty = *self.rng.pick(&[&Ty::Int, &Ty::Dbl, &Ty::Str, &Ty::Bool]);
                let e = self.expr(ty, d);
                let not = if self.rng.chance(40) { " NOT" } else { "" };
                both(
                    format!("({} IS{not} NULL)", e.ringway),
                    format!("({} IS{not} NULL)", e.duckdb),
                )
            }
            10 => {
                let s = self.expr(Ty::Str, d);
                let prefix = same(sql_string(
                    self.rng.pick(&["a", "ERR", "/v1", "", "ca", "日"]),
                ));
                call("starts_with", &[&s, &prefix])
            }
            11 => {
                let s = self.expr(Ty::Str, d);
                let pattern = sql_string(self.rng.pick(&[
                    "^[A-Z]+$",
                    "[0-9]",
                    "a.c",
                    "^/v[0-9]/",
                    "(WARN|ERROR)",
                    "é|日",
                ]));
                both(
                    format!("regexp_like({}, {pattern})", s.ringway),
                    format!("regexp_matches({}, {pattern})", s.duckdb),
                )
            }
            12 => {
                let (a, b) = (self.expr(Ty::Bool, d), self.leaf(Ty::Bool));
                bin(&a, self.rng.pick(&["=", "!="]), &b)
            }
            _ => self.leaf(Ty::Bool),
        }
    }

    fn comparison(&mut self, d: u32) -> Expr {
        let op = self.rng.pick(&["=", "!=", "<>", "<", "<=", ">", ">="]);
        if self.rng.chance(35) {
            let (a, b) = (self.expr(Ty::Str, d), self.expr(Ty::Str, d));
            let b = if self.rng.chance(60) {
                self.literal(Ty::Str)
            } else {
                b
            };
            bin(&a, op, &b)
        } else {
            let a = self.numeric(d);
            let b = if self.rng.chance(60) {
                self.literal(Ty::Int)
            } else {
                self.numeric(d)
            };
            bin(&a, op, &b)
        }
    }

    /// One query in both spellings (DuckDB's with `logs` still in it) and
    /// a description of its shape.
    fn query(&mut self) -> (String, String) {
        let mut select_r = Vec::new();
        let mut select_d = Vec::new();
        match self.rng.below(10) {
            0..=2 => {
                select_r.push("*".to_string());
                select_d.push("*".to_string());
            }
            3 => {
                // SELECT *, expr AS new
                select_r.push("*".to_string());
                select_d.push("*".to_string());
                let ty = *self.rng.pick(&[&Ty::Int, &Ty::Dbl, &Ty::Str, &Ty::Bool]);
                let e = self.expr(ty, 2);
                select_r.push(format!("{} AS extra", e.ringway));
                select_d.push(format!("{} AS extra", e.duckdb));
            }
            4 => {
                let mut names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
                let mut dropped = Vec::new();
                for _ in 0..self.rng.int(1, 3) {
                    let at = self.rng.below(names.len() as u64) as usize;
                    dropped.push(names.remove(at));
                }
                select_r.push(format!("* EXCEPT ({})", dropped.join(", ")));
                select_d.push(format!("* EXCLUDE ({})", dropped.join(", ")));
            }
            _ => {
                // A projection: plain columns, renamed columns, expressions.
                let mut used: Vec<&str> = Vec::new();
                for i in 0..self.rng.int(1, 6) {
                    match self.rng.below(3) {
                        0 => {
                            let (name, _) = *self.rng.pick(&COLUMNS.iter().collect::<Vec<_>>());
                            if !used.contains(&name) {
                                used.push(name);
                                select_r.push(name.to_string());
                                select_d.push(name.to_string());
                            }
                        }
                        1 => {
                            let ty = *self.rng.pick(&[&Ty::Int, &Ty::Dbl, &Ty::Str, &Ty::Bool]);
                            let col = self.column(ty);
                            select_r.push(format!("{} AS c{i}", col.ringway));
                            select_d.push(format!("{} AS c{i}", col.duckdb));
                        }
                        _ => {
                            let ty = *self.rng.pick(&[&Ty::Int, &Ty::Dbl, &Ty::Str, &Ty::Bool]);
                            let e = self.expr(ty, 3);
                            select_r.push(format!("{} AS e{i}", e.ringway));
                            select_d.push(format!("{} AS e{i}", e.duckdb));
                        }
                    }
                }
                if select_r.is_empty() {
                    select_r.push("id".into());
                    select_d.push("id".into());
                }
            }
        }
        let mut ringway = format!("SELECT {} FROM logs", select_r.join(", "));
        let mut duckdb = format!("SELECT {} FROM logs", select_d.join(", "));
        if self.rng.chance(75) {
            let w = self.predicate(3);
            write!(ringway, " WHERE {}", w.ringway).unwrap();
            write!(duckdb, " WHERE {}", w.duckdb).unwrap();
        }
        (ringway, duckdb)
    }
}

fn bin(a: &Expr, op: &str, b: &Expr) -> Expr {
    both(
        format!("({} {op} {})", a.ringway, b.ringway),
        format!("({} {op} {})", a.duckdb, b.duckdb),
    )
}

fn call(name: &str, args: &[&Expr]) -> Expr {
    let r: Vec<&str> = args.iter().map(|a| a.ringway.as_str()).collect();
    let d: Vec<&str> = args.iter().map(|a| a.duckdb.as_str()).collect();
    both(
        format!("{name}({})", r.join(", ")),
        format!("{name}({})", d.join(", ")),
    )
}

fn cast(e: &Expr, ty: &str) -> Expr {
    both(
        format!("CAST({} AS {ty})", e.ringway),
        format!("TRY_CAST({} AS {ty})", e.duckdb),
    )
}

// ---------------------------------------------------------------------------
// DuckDB's side: one Python process runs every query and writes, per query,
// one line: {"rows": [...]} or {"error": "..."}.

const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys
queries_path, data_path, columns_json, out_path = sys.argv[1:5]
columns = json.loads(columns_json)
source = "read_ndjson(%s, columns={%s})" % (
    "'" + data_path.replace("'", "''") + "'",
    ", ".join("'%s': '%s'" % (name, ty) for name, ty in columns))
con = duckdb.connect()
# One thread: records come back in input order.
con.execute("SET threads = 1")
with open(queries_path) as queries, open(out_path, "w") as out:
    for query in queries.read().split("\n"):
        if not query:
            continue
        try:
            cursor = con.execute(query.replace("FROM logs", "FROM " + source))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
            out.write(json.dumps({"rows": rows}, ensure_ascii=False, allow_nan=False) + "\n")
        except Exception as error:
            out.write(json.dumps({"error": str(error)}) + "\n")
"#;

fn run_duckdb(python: &Path, dir: &TempDir, data: &Path, queries: &[String]) -> Vec<Value> {
    let queries_path = dir.join("duckdb-queries.sql");
    fs::write(&queries_path, queries.join("\n") + "\n").unwrap();
    let out_path = dir.join("duckdb-results.ndjson");
    let columns = serde_json::to_string(
        &COLUMNS
            .iter()
            .map(|(n, t)| vec![*n, *t])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let done = Command::new(python)
        .args([
            "-c",
            DUCKDB_SCRIPT,
            &p(&queries_path),
            &p(data),
            &columns,
            &p(&out_path),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(
        done.status.success(),
        "the DuckDB script failed ({}): {}",
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );
    let text = fs::read_to_string(&out_path).unwrap();
    let results: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), queries.len(), "one DuckDB result per query");
    results
}

// ---------------------------------------------------------------------------
// Comparing records

/// Equal as records: ints exact, doubles within 1e-9 relative, a missing key
/// the same as null, recursively into objects.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                return i == j;
            }
            if x.is_f64() != y.is_f64() {
                return false;
            }
            let (f, g) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            f == g || (f - g).abs() <= 1e-9 * f.abs().max(g.abs())
        }
        (Value::Object(x), Value::Object(y)) => {
            let null = Value::Null;
            x.keys()
                .chain(y.keys())
                .all(|k| same_value(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        _ => a == b,
    }
}

/// None when the records agree, else what differs first.
fn compare_records(ringway: &[Value], duckdb: &[Value]) -> Option<String> {
    for (i, (r, d)) in ringway.iter().zip(duckdb).enumerate() {
        if !same_value(r, d) {
            return Some(format!("record {i}:\n  ringway: {r}\n  duckdb:  {d}"));
        }
    }
    if ringway.len() != duckdb.len() {
        let (longer, who) = if ringway.len() > duckdb.len() {
            (ringway, "ringway")
        } else {
            (duckdb, "duckdb")
        };
        let extra = &longer[ringway.len().min(duckdb.len())];
        return Some(format!(
            "ringway has {} records, duckdb {}; first extra one ({who}): {extra}",
            ringway.len(),
            duckdb.len()
        ));
    }
    None
}

fn parse_lines(bytes: &[u8], what: &str) -> Result<Vec<Value>, String> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| format!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

fn ringway_sql(query: &str, data: &Path) -> Result<Vec<Value>, String> {
    let done = Command::new(ringway_bin())
        .args(["sql", query, &p(data)])
        .stdin(Stdio::null())
        .output()
        .expect("run ringway sql");
    if !done.status.success() {
        return Err(format!(
            "ringway sql exited {}: {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    parse_lines(&done.stdout, "ringway sql")
}

fn ringway_run(dir: &TempDir, n: usize, query: &str, data: &Path) -> Result<Vec<Value>, String> {
    let out = dir.join(format!("run-{n}.ndjson"));
    let done = Command::new(ringway_bin())
        .args([
            "run",
            "--input",
            &format!("file:{},format=json", p(data)),
            "--output",
            &format!("file:{}", p(&out)),
            "--sql",
            query,
            "--exit-on-eof",
            "--stats-interval",
            "0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ringway run");
    if !done.status.success() {
        return Err(format!(
            "ringway run --sql exited {}: {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    parse_lines(&fs::read(&out).unwrap_or_default(), "ringway run --sql")
}

#[test]
fn generated_queries_agree_with_duckdb() {
    let Some(python) = test_python("import duckdb", "the Python package duckdb") else {
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new("sql-differential");
    let mut rng = Rng::new(SEED);
    let data = dir.join("logs.ndjson");
    let mut text = String::new();
    for id in 0..LINES {
        text.push_str(&generate_line(&mut rng, id));
        text.push('\n');
    }
    fs::write(&data, &text).unwrap();
    // Every generated line is valid JSON (the generator writes it by hand).
    parse_lines(text.as_bytes(), "generated line").unwrap();

    let mut generator = Gen { rng };
    let mut ringway_queries = vec!["SELECT * FROM logs".to_string()];
    let mut duckdb_queries = vec!["SELECT * FROM logs".to_string()];
    while ringway_queries.len() < QUERIES {
        let (r, d) = generator.query();
        ringway_queries.push(r);
        duckdb_queries.push(d);
    }
    // Every construct of the subset is in some query: a change to the
    // generator cannot quietly drop one.
    let constructs = [
        "SELECT *,",
        "* EXCEPT (",
        " AS ",
        " WHERE ",
        " = ",
        " != ",
        " <> ",
        " < ",
        " <= ",
        " > ",
        " >= ",
        " AND ",
        " OR ",
        "NOT ",
        " IN (",
        " NOT IN (",
        " BETWEEN ",
        " LIKE ",
        " ILIKE ",
        " IS NULL",
        " IS NOT NULL",
        " + ",
        " - ",
        " * ",
        " / ",
        " % ",
        "CASE WHEN",
        " ELSE ",
        "COALESCE(",
        "AS BIGINT)",
        "AS DOUBLE)",
        "AS VARCHAR)",
        "lower(",
        "upper(",
        "length(",
        "substr(",
        "concat(",
        "replace(",
        "trim(",
        "starts_with(",
        "regexp_like(",
        "regexp_extract(",
        "regexp_replace(",
        "http.status",
        "http.path",
    ];
    let missing: Vec<&str> = constructs
        .iter()
        .filter(|c| !ringway_queries.iter().any(|q| q.contains(*c)))
        .copied()
        .collect();
    assert!(missing.is_empty(), "no generated query uses {missing:?}");
    let expected = run_duckdb(&python, &dir, &data, &duckdb_queries);

    let mut failures = Vec::new();
    let mut kept_total = 0usize;
    let mut empty = 0usize;
    for (i, (query, want)) in ringway_queries.iter().zip(&expected).enumerate() {
        let Some(rows) = want.get("rows").and_then(Value::as_array) else {
            // A generator bug, not a ringway one: the DuckDB text is invalid.
            failures.push(format!(
                "query {i}: DuckDB refused its rendering: {}\n  {}",
                want["error"], duckdb_queries[i]
            ));
            continue;
        };
        kept_total += rows.len();
        empty += usize::from(rows.is_empty());
        let mut outcomes = vec![("ringway sql", ringway_sql(query, &data))];
        if i < THROUGH_RUN {
            outcomes.push(("ringway run --sql", ringway_run(&dir, i, query, &data)));
        }
        for (how, got) in outcomes {
            match got {
                Err(e) => failures.push(format!("query {i} ({how}): {e}\n  {query}")),
                Ok(got) => {
                    if let Some(diff) = compare_records(&got, rows) {
                        failures.push(format!(
                            "query {i} ({how}) differs from DuckDB: {diff}\n  ringway: {query}\n  duckdb:  {}",
                            duckdb_queries[i]
                        ));
                    }
                }
            }
        }
    }
    // The generated queries exercise something: not (nearly) all empty.
    assert!(
        empty * 2 < QUERIES,
        "{empty} of {QUERIES} queries kept no record: the generator is too strict"
    );
    eprintln!(
        "sql differential: {QUERIES} queries over {LINES} lines, {kept_total} records compared, \
         {empty} queries kept nothing, {} failures, {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    // All of them, for RINGWAY_TEST_KEEP=1 (the message shows the first).
    fs::write(dir.join("failures.txt"), failures.join("\n\n")).unwrap();
    assert!(
        failures.is_empty(),
        "{} of {QUERIES} queries disagree with DuckDB (seed {SEED:#x}); the first ones \
         (all: failures.txt in the test's directory, kept with RINGWAY_TEST_KEEP=1):\n\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// Every construct outside the subset: exit 2 and exactly one stderr line,
/// `ringway: error: --sql: …`, before anything is read.
#[test]
fn refused_constructs_give_one_line_and_exit_2() {
    let dir = TempDir::new("sql-refused");
    let data = dir.join("in.ndjson");
    fs::write(&data, "{\"level\":\"INFO\",\"a\":1}\n").unwrap();
    // Each query, and the part its line must point at ("" where the
    // parser's own message is all there is).
    let refused = [
        ("SELECT * FROM logs JOIN other ON logs.a = other.a", "JOIN"),
        ("SELECT * FROM logs, other", "line 1 column"),
        ("SELECT level FROM logs GROUP BY level", "GROUP BY"),
        ("SELECT * FROM logs ORDER BY a", "ORDER BY"),
        ("SELECT * FROM logs LIMIT 10", "LIMIT"),
        (
            "SELECT * FROM logs WHERE a IN (SELECT a FROM logs)",
            "line 1 column",
        ),
        ("SELECT * FROM (SELECT * FROM logs)", "line 1 column"),
        ("SELECT no_such_function(a) FROM logs", "no_such_function"),
        ("SELECT * FROM other", "other"),
        ("SELECT count(*) FROM logs", "count"),
        ("SELECT * FROM logs HAVING a > 1", "HAVING"),
        ("SELECT DISTINCT level FROM logs", "DISTINCT"),
        ("SELECT * FROM logs UNION SELECT * FROM logs", "UNION"),
        ("WITH t AS (SELECT * FROM logs) SELECT * FROM t", "WITH"),
        ("DELETE FROM logs", "DELETE"),
        ("SELECT * FROM logs WHERE", ""),
        ("SELECT * FROM logs; SELECT * FROM logs", "line 1 column"),
    ];
    let mut failures = Vec::new();
    for (query, part) in refused {
        let out = dir.join("out.ndjson");
        let done = Command::new(ringway_bin())
            .args([
                "run",
                "--input",
                &format!("file:{},format=json", p(&data)),
                "--output",
                &format!("file:{}", p(&out)),
                "--sql",
                query,
                "--exit-on-eof",
            ])
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .output()
            .expect("run ringway");
        let stderr = String::from_utf8_lossy(&done.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        // One line that quotes the query and points at the part.
        let one_line = lines.len() == 1
            && lines[0].starts_with("ringway: error: --sql:")
            && lines[0].contains(query)
            && lines[0].contains(part);
        if done.status.code() != Some(2) || !one_line {
            failures.push(format!(
                "{query:?}: exit {:?}, stderr {stderr:?} (want exit 2 and one line \
                 `ringway: error: --sql: …` quoting the query and naming {part:?})",
                done.status.code()
            ));
        }
        // Refused at start: nothing was written.
        if fs::read(&out).is_ok_and(|b| !b.is_empty()) {
            failures.push(format!("{query:?}: wrote output before refusing"));
        }
    }
    assert!(
        failures.is_empty(),
        "refused queries misbehaved:\n{}",
        failures.join("\n")
    );
}
