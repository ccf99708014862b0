//! The message key of a `kafka:` output's `key=FIELD`: [`top_level_value`]
//! finds a top-level member's value in a record's NDJSON line by scanning
//! its bytes, without parsing or allocating.

/// The value of the top-level member `field` of the JSON object `line`:
/// a string's contents as written (escapes kept), or a number's, `true`'s,
/// … text; `None` when the line is not an object with that member, or the
/// value is `null`, an object or an array. A scan of the line's bytes that
/// skips nested values and strings; no allocation.
pub(crate) fn top_level_value<'a>(line: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    let mut at = skip_space(line, 0);
    if line.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_space(line, at);
        if line.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(line, at)?;
        let key = &line[at + 1..key_end - 1];
        at = skip_space(line, key_end);
        if line.get(at) != Some(&b':') {
            return None;
        }
        at = skip_space(line, at + 1);
        let value_end = value_end(line, at)?;
        if key == field {
            let value = &line[at..value_end];
            return match value.first()? {
                b'"' => Some(&value[1..value.len() - 1]),
                b'{' | b'[' | b'n' => None,
                _ => Some(value),
            };
        }
        at = skip_space(line, value_end);
        match line.get(at)? {
            b',' => at += 1,
            _ => return None,
        }
    }
}

fn skip_space(line: &[u8], mut at: usize) -> usize {
    while line.get(at).is_some_and(|byte| b" \t\r\n".contains(byte)) {
        at += 1;
    }
    at
}

/// The end (after the closing quote) of the string starting at `at`.
fn string_end(line: &[u8], at: usize) -> Option<usize> {
    let mut index = at + 1;
    loop {
        index += memchr::memchr2(b'"', b'\\', &line[index..])?;
        if line[index] == b'\\' {
            index += 2;
        } else {
            return Some(index + 1);
        }
    }
}

/// The end of the value starting at `at`.
fn value_end(line: &[u8], at: usize) -> Option<usize> {
    match line.get(at)? {
        b'"' => string_end(line, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut index = at;
            while index < line.len() {
                match line[index] {
                    b'"' => {
                        index = string_end(line, index)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(index + 1);
                        }
                    }
                    _ => {}
                }
                index += 1;
            }
            None
        }
        _ => {
            let len = line[at..]
                .iter()
                .position(|byte| b",} \t\r\n]".contains(byte))
                .unwrap_or(line.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::top_level_value;

    #[test]
    fn the_key_is_the_top_level_members_value() {
        let line = br#"{"a":{"host":"inner"},"s":"x\"y","host":"web-1","n":42,"t":true,"z":null,"arr":[1,{"host":2}]}"#;
        assert_eq!(top_level_value(line, b"host"), Some(&b"web-1"[..]));
        assert_eq!(top_level_value(line, b"n"), Some(&b"42"[..]));
        assert_eq!(top_level_value(line, b"t"), Some(&b"true"[..]));
        assert_eq!(top_level_value(line, b"s"), Some(&br#"x\"y"#[..]));
        assert_eq!(top_level_value(line, b"z"), None);
        assert_eq!(top_level_value(line, b"a"), None);
        assert_eq!(top_level_value(line, b"arr"), None);
        assert_eq!(top_level_value(line, b"missing"), None);
        assert_eq!(
            top_level_value(br#" { "host" : "spaced" } "#, b"host"),
            Some(&b"spaced"[..])
        );
    }

    #[test]
    fn no_key_from_what_is_not_a_json_object() {
        for line in [
            &b"plain text host=web-1"[..],
            b"",
            b"{",
            br#"{"host""#,
            br#"{"host":"unterminated"#,
            br#"["host","x"]"#,
            b"{\"a\":[1,2",
        ] {
            assert_eq!(top_level_value(line, b"host"), None, "{line:?}");
        }
    }
}
