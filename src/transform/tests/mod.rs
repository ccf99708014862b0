//! The query subset against tables of cases: each query over a line gives
//! an expected record (or outcome) and count of runtime errors; refused
//! queries give their exact message and position. The tables of queries
//! that run are files in `cases/`, read by [`read_cases`].

use super::*;

/// The cases of `cases/FILE`, compiled into the test binary.
macro_rules! cases {
    ($file:literal) => {
        read_cases($file, include_str!(concat!("cases/", $file)))
    };
}

mod alloc;
mod bench;
mod cases;
mod functions;
mod refused;
mod robust;

/// What a case expects of one line.
pub(super) const FILTERED: &str = "<filtered>";
pub(super) const INVALID: &str = "<invalid>";
pub(super) const KEPT: &str = "<kept>";

/// Runs `query` over `line` as `shape`; the record, or one of the markers.
pub(super) fn run_shape(query: &str, line: &str, shape: Shape) -> (String, u32) {
    let query = Query::compile(query).unwrap_or_else(|error| panic!("{query}: {error}"));
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 4096);
    let result = transformer.process(line.as_bytes(), shape);
    let text = match result.outcome {
        Outcome::Invalid => INVALID.to_string(),
        Outcome::Filtered => FILTERED.to_string(),
        Outcome::Kept => KEPT.to_string(),
        Outcome::Projected => {
            String::from_utf8(transformer.output().to_vec()).expect("UTF-8 output")
        }
    };
    (text, result.errors)
}

/// One case of a case file: `query` over `line` gives `expected` (a
/// record, or one of the markers) and `errors` runtime errors.
pub(super) struct Case {
    pub query: String,
    pub line: String,
    pub expected: String,
    pub errors: u32,
}

/// Reads a case file, one case or setting a row:
///
/// ```text
/// # A comment: a row starting with `#`. Blank rows are skipped.
/// line: TEXT               the line the cases below run over, as written
/// line-json: "TEXT"        the same as a JSON string (tabs, spaces at an end)
/// QUERY => EXPECTED        a case with no runtime error
/// QUERY => EXPECTED [N errors]     (or [1 error])
/// ```
///
/// EXPECTED is the record the query writes, or `<kept>`, `<filtered>` or
/// `<invalid>`. Any other row, a case before the first `line:`, a row
/// ending in white space or a file without a case panics, naming the file
/// and row: a mistyped case fails the test instead of being skipped.
pub(super) fn read_cases(file: &str, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut line: Option<String> = None;
    for (index, row) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("{file}:{}: {why}: {row:?}", index + 1) };
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        if row.ends_with(char::is_whitespace) {
            fail("white space ends the row (write a line with it as line-json:)");
        }
        if let Some(text) = row.strip_prefix("line: ") {
            line = Some(text.to_string());
        } else if let Some(json) = row.strip_prefix("line-json: ") {
            let text = serde_json::from_str(json)
                .unwrap_or_else(|error| fail(&format!("not a JSON string ({error})")));
            line = Some(text);
        } else if let Some((query, rest)) = row.split_once(" => ") {
            let Some((expected, errors)) = split_errors(rest) else {
                fail("the brackets after the record hold no count of errors");
            };
            let Some(line) = &line else {
                fail("a case before the first line:");
            };
            if query.is_empty() || expected.is_empty() {
                fail("a case needs a query and what it gives");
            }
            cases.push(Case {
                query: query.to_string(),
                line: line.clone(),
                expected: expected.to_string(),
                errors,
            });
        } else {
            fail("neither a comment, a line: nor a QUERY => EXPECTED case");
        }
    }
    assert!(!cases.is_empty(), "{file} has no case");
    cases
}

/// `EXPECTED [N errors]` as `(EXPECTED, N)`; without brackets N is 0.
/// `None` when the brackets hold anything but a count.
fn split_errors(text: &str) -> Option<(&str, u32)> {
    let Some(counted) = text
        .strip_suffix(" error]")
        .or_else(|| text.strip_suffix(" errors]"))
    else {
        return Some((text, 0));
    };
    let (expected, count) = counted.rsplit_once(" [")?;
    Some((expected, count.parse().ok()?))
}

/// Runs every case as `shape` and fails once, listing every case that gave
/// something else.
pub(super) fn check_all(cases: &[Case], shape: Shape) {
    let mut failures = Vec::new();
    for Case {
        query,
        line,
        expected,
        errors,
    } in cases
    {
        let got = run_shape(query, line, shape);
        if got != (expected.clone(), *errors) {
            failures.push(format!(
                "{query}\n   over {line}\n   gave {:?} with {} errors\n   want {expected:?} with {errors}",
                got.0, got.1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn compiled_queries_are_shared_across_threads_and_transformers_move_to_one() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<Query>();
    shared::<Condition>();
    movable::<Transformer>();
}
