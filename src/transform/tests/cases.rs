//! Filters, projections, NULL logic, nested and quoted fields, duplicates:
//! the tables are in `cases/`.

use super::*;

/// Tests that check one case file each and nothing else: the test's name,
/// then its file (whose lines are read as JSON).
macro_rules! case_file_tests {
    ($($test:ident: $file:literal;)*) => {$(
        #[test]
        fn $test() {
            check_all(&cases!($file), Shape::Json);
        }
    )*};
}

case_file_tests! {
    select_star_and_filters: "filters.txt";
    projections_copy_raw_bytes_and_compute_values: "projections.txt";
    duplicate_keys_first_wins: "duplicate_keys.txt";
    dotted_names_match_nested_keys_or_keys_with_dots_first_found_wins: "dotted_names.txt";
}

#[test]
fn null_logic_is_three_valued() {
    check_all(&cases!("null_logic.txt"), Shape::Json);
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
fn raw_lines_are_body() {
    check_all(&cases!("raw_lines.txt"), Shape::Raw);
    // Bytes that are not UTF-8 are written as U+FFFD.
    let query = Query::compile("SELECT body FROM logs").unwrap();
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 64);
    let result = transformer.process(b"a\xffb", Shape::Raw);
    assert_eq!(result.outcome, Outcome::Projected);
    assert_eq!(transformer.output(), "{\"body\":\"a\u{fffd}b\"}".as_bytes());
}

#[test]
fn plain_field_projection_writes_what_it_would_whatever_the_line_and_room() {
    // All plain fields: written from the raw spans in one piece when every
    // field is there, else by the general path; a room too small takes
    // nothing, and the record written again elsewhere is the same.
    let query = Query::compile("SELECT b, a AS x, n.c FROM logs").unwrap();
    let mut transformer = Transformer::new(Some(Arc::new(query)), Vec::new(), 4096);
    let full = r#"{"a": "s\"1" ,"n":{"c":[1, 2]},"b":2.50}"#;
    let want_full = r#"{"b":2.50,"x":"s\"1","n.c":[1, 2]}"#;
    for (line, shape, want) in [
        (full, Shape::Json, want_full),
        (
            r#"{"b":true,"n":{}}"#,
            Shape::Json,
            r#"{"b":true,"x":null,"n.c":null}"#,
        ),
        ("[1]", Shape::Json, r#"{"b":null,"x":null,"n.c":null}"#),
        ("b", Shape::Raw, r#"{"b":null,"x":null,"n.c":null}"#),
        (full, Shape::Json, want_full),
    ] {
        let result = transformer.process(line.as_bytes(), shape);
        assert_eq!(result.outcome, Outcome::Projected, "{line}");
        assert_eq!(
            String::from_utf8_lossy(transformer.output()),
            want,
            "{line}"
        );
        for room_len in [0, 1, want.len() - 1, want.len(), want.len() + 8] {
            let mut room = vec![b'#'; room_len];
            let (result, written) = transformer.process_into(line.as_bytes(), shape, &mut room);
            assert_eq!(result.outcome, Outcome::Projected);
            if room_len < want.len() {
                assert_eq!(written, None, "{line} in {room_len}");
            } else {
                assert_eq!(written, Some(want.len()), "{line} in {room_len}");
                assert_eq!(&room[..want.len()], want.as_bytes(), "{line} in {room_len}");
            }
        }
    }
}
