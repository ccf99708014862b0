//! The query subset against tables of cases: each query over a line gives
//! an expected record (or outcome) and count of runtime errors; refused
//! queries give their exact message and position.

use super::*;

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

pub(super) fn check(cases: &[(&str, &str, &str, u32)], shape: Shape) {
    let mut failures = Vec::new();
    for &(query, line, expected, errors) in cases {
        let got = run_shape(query, line, shape);
        if got != (expected.to_string(), errors) {
            failures.push(format!(
                "{query}\n   over {line}\n   gave {:?} with {} errors\n   want {expected:?} with {errors}",
                got.0, got.1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
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
