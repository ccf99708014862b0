//! `${VAR}` in a config file: [`expand_table`] replaces references to
//! environment variables in every string value of the parsed TOML (inside
//! arrays and inline tables too), and returns the [`Redactions`] that keep
//! what came from the environment out of everything ringway prints.
//!
//! Expansion runs on values after TOML parsing, never on the raw text, so a
//! variable can only ever be text inside one string: it cannot add a key,
//! close a quote or start a table. Keys, numbers and booleans are not
//! expanded.
//!
//! The grammar of a string value:
//! - `${NAME}` is the variable's value; an unset variable is an error that
//!   names it. A set but empty variable is the empty string.
//! - `${NAME:-default}` is the default, taken as written up to the first
//!   `}`, when the variable is unset *or empty* (as in the shell).
//! - `$$` is a literal `$`.
//! - `$` followed by a letter or `_` (`$TOKEN`) is an error, because it is
//!   almost always a mistyped `${TOKEN}` that would otherwise reach a peer as
//!   the literal text `$TOKEN`; `$$TOKEN` is the literal.
//! - Any other `$` (`a$`, `$1`, `$.field`, a lone `$` at the end) is
//!   literal, so regexes and SQL read as they are written.
//! - `${` without its `}` is an error, and so is a name that is not letters,
//!   digits and `_` (not starting with a digit).

use std::ffi::OsString;

/// Longest variable name read: a name longer than this is a mistake (a
/// value pasted in place of a name), not a variable.
const MAX_NAME_BYTES: usize = 256;

/// Where variables come from: the process environment for `run` and
/// `check`, a map in tests (so that tests never mutate the process's
/// environment and stay safe to run in parallel).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process's environment.
pub(crate) fn process_environment(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// One string value after expansion.
#[derive(Debug, PartialEq, Eq)]
struct Expansion {
    value: String,
    /// `(reference as written, its value)` for each reference that took
    /// its value from the environment (a default used is not one: it is
    /// written in the file).
    from_environment: Vec<(String, String)>,
}

/// Expands `text`; the error says what is wrong, without the key (the
/// caller adds it) and without any variable's value.
fn expand(text: &str, lookup: Lookup) -> Result<Expansion, String> {
    let mut value = String::with_capacity(text.len());
    let mut from_environment = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        value.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            value.push('$');
            rest = after;
        } else if let Some(inside) = after.strip_prefix('{') {
            let Some(end) = inside.find('}') else {
                return Err(format!(
                    "'${{{}' is not closed with '}}' (write $$ for a literal $)",
                    shorten(inside)
                ));
            };
            let reference = &rest[at..at + 3 + end];
            let (name, default) = match inside[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&inside[..end], None),
            };
            if !is_name(name) {
                return Err(format!(
                    "'{}' does not name a variable (a name is letters, digits and _, not starting with a digit; write $$ for a literal $)",
                    shorten(reference)
                ));
            }
            let set = match lookup(name) {
                Some(os) => Some(os.into_string().map_err(|_| {
                    format!("variable {name} is not valid UTF-8 (in '{reference}')")
                })?),
                None => None,
            };
            match (set, default) {
                (Some(set), Some(default)) if set.is_empty() => value.push_str(default),
                (Some(set), _) => {
                    value.push_str(&set);
                    from_environment.push((reference.to_string(), set));
                }
                (None, Some(default)) => value.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "variable {name} is not set (set it in the environment, e.g. the unit's EnvironmentFile=, or give a default: ${{{name}:-…}})"
                    ));
                }
            }
            rest = &inside[end + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(MAX_NAME_BYTES)
                .collect();
            return Err(format!(
                "'${name}' is not expanded: write ${{{name}}} for the variable, or $${name} for a literal $"
            ));
        } else {
            value.push('$');
            rest = after;
        }
    }
    value.push_str(rest);
    Ok(Expansion {
        value,
        from_environment,
    })
}

fn is_name(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// At most the first 40 characters of `text`, for an error message.
fn shorten(text: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Expands every string value of `table` in place. Each error is
/// `(where, message)`: `where` is `key 'max_line'` or, inside an `[[input]]`
/// or `[[output]]` table, `[[output]] #2: key 'headers.Authorization'`.
pub(crate) fn expand_table(
    table: &mut toml::Table,
    lookup: Lookup,
) -> (Redactions, Vec<(String, String)>) {
    let mut redactions = Redactions::default();
    let mut errors = Vec::new();
    for (key, value) in table.iter_mut() {
        let original = value.clone();
        let before = redactions.needles.len();
        match (key.as_str(), &mut *value) {
            ("input" | "output", toml::Value::Array(tables)) => {
                for (index, item) in tables.iter_mut().enumerate() {
                    let place = |inner: &str| format!("[[{key}]] #{}: key '{inner}'", index + 1);
                    match item {
                        toml::Value::Table(entries) => {
                            for (inner, value) in entries.iter_mut() {
                                walk(value, inner, &place, lookup, &mut redactions, &mut errors);
                            }
                        }
                        other => walk(other, key, &place, lookup, &mut redactions, &mut errors),
                    }
                }
            }
            (_, value) => {
                let place = |inner: &str| format!("key '{inner}'");
                walk(value, key, &place, lookup, &mut redactions, &mut errors);
            }
        }
        if redactions.needles.len() > before {
            redactions.templates.push((key.clone(), original));
        }
    }
    (redactions, errors)
}

/// Expands the strings in `value`, whose key is `key` (dotted inside
/// inline tables); `place` renders a key for an error.
fn walk(
    value: &mut toml::Value,
    key: &str,
    place: &dyn Fn(&str) -> String,
    lookup: Lookup,
    redactions: &mut Redactions,
    errors: &mut Vec<(String, String)>,
) {
    match value {
        toml::Value::String(text) => match expand(text, lookup) {
            Ok(expansion) => {
                redactions.add(text, &expansion);
                *text = expansion.value;
            }
            Err(error) => errors.push((place(key), error)),
        },
        toml::Value::Array(items) => {
            for item in items {
                walk(item, key, place, lookup, redactions, errors);
            }
        }
        toml::Value::Table(entries) => {
            for (inner, item) in entries.iter_mut() {
                walk(
                    item,
                    &format!("{key}.{inner}"),
                    place,
                    lookup,
                    redactions,
                    errors,
                );
            }
        }
        toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_) => {}
    }
}

/// What came from the environment, and what to show in its place: every
/// value a variable gave is shown as the reference it came from
/// (`${OTLP_TOKEN}`), and every string value that took one as the value as
/// written (`"${CREDENTIALS_DIRECTORY}/tls.key"`). Shown this way, what
/// `check` prints stays a config that reads back the same.
#[derive(Debug, Default, Clone)]
pub(crate) struct Redactions {
    /// `(text to hide, what to show instead)`, longest first once
    /// [`Redactions::add`] has sorted them.
    needles: Vec<(String, String)>,
    /// Each top-level key that took a value from the environment, with its
    /// value as written in the file.
    templates: Vec<(String, toml::Value)>,
}

impl Redactions {
    /// Hides `expansion` (of `template`) wherever it is printed: its whole
    /// value, and each variable's value, each as written and as escaped in
    /// a TOML string or a Rust debug string.
    fn add(&mut self, template: &str, expansion: &Expansion) {
        let mut hidden = false;
        for (reference, set) in &expansion.from_environment {
            hidden |= self.hide(set, reference);
        }
        if hidden {
            self.hide(&expansion.value, template);
        }
        self.needles
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.needles.dedup_by(|(a, _), (b, _)| a == b);
    }

    /// Adds `secret` as a needle (and its escaped spellings); false when it
    /// is too plain to hide.
    fn hide(&mut self, secret: &str, shown: &str) -> bool {
        // Blank text and short numbers (a port, a count) are no secret, and
        // hiding them would hide every count `check` prints.
        const MAX_PLAIN_DIGITS: usize = 5;
        if secret.trim().is_empty()
            || (secret.len() <= MAX_PLAIN_DIGITS && secret.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        let toml_inner = |text: &str| {
            let quoted = toml::Value::String(text.to_string()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        };
        let debug_inner = |text: &str| {
            let quoted = format!("{text:?}");
            quoted[1..quoted.len() - 1].to_string()
        };
        self.needles.push((secret.to_string(), shown.to_string()));
        self.needles.push((toml_inner(secret), toml_inner(shown)));
        self.needles.push((debug_inner(secret), debug_inner(shown)));
        true
    }

    /// True when nothing came from the environment.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The value of top-level `key` as written, when it took a value from
    /// the environment.
    pub fn template(&self, key: &str) -> Option<&toml::Value> {
        self.templates
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// `text` with every value from the environment replaced by what to
    /// show. The leftmost, longest match wins; a needle that begins (ends)
    /// with a letter or digit matches only where the text before (after) it
    /// is not one, so a value `json` hides `"json"` but not `jsonl`.
    pub fn redact(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_string();
        }
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        'scan: while at < text.len() {
            let rest = &text[at..];
            let before = text[..at].chars().next_back();
            for (needle, shown) in &self.needles {
                if !rest.starts_with(needle.as_str()) {
                    continue;
                }
                let after = rest[needle.len()..].chars().next();
                let first = needle.chars().next();
                let last = needle.chars().next_back();
                if (word(first) && word(before)) || (word(last) && word(after)) {
                    continue;
                }
                out.push_str(shown);
                at += needle.len();
                continue 'scan;
            }
            let c = rest.chars().next().expect("at < text.len()");
            out.push(c);
            at += c.len_utf8();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of `pairs` only.
    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), OsString::from(value)))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn expanded(text: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        expand(text, &environment(pairs)).map(|expansion| expansion.value)
    }

    #[test]
    fn a_reference_is_replaced_by_the_variables_value() {
        let pairs = [("DIR", "/run/credentials/ringway.service"), ("N", "2")];
        assert_eq!(
            expanded("${DIR}/tls.key", &pairs).unwrap(),
            "/run/credentials/ringway.service/tls.key"
        );
        assert_eq!(expanded("a${N}b${N}", &pairs).unwrap(), "a2b2");
        assert_eq!(expanded("no references", &pairs).unwrap(), "no references");
        let expansion = expand("Bearer ${N}", &environment(&pairs)).unwrap();
        assert_eq!(
            expansion.from_environment,
            [("${N}".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn a_set_but_empty_variable_is_empty() {
        assert_eq!(expanded("a${E}b", &[("E", "")]).unwrap(), "ab");
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it() {
        let error = expanded("Bearer ${OTLP_TOKEN}", &[]).unwrap_err();
        assert!(error.contains("variable OTLP_TOKEN is not set"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_default_applies_when_the_variable_is_unset_or_empty() {
        assert_eq!(expanded("${PORT:-4318}", &[]).unwrap(), "4318");
        assert_eq!(expanded("${PORT:-4318}", &[("PORT", "")]).unwrap(), "4318");
        assert_eq!(expanded("${PORT:-4318}", &[("PORT", "9")]).unwrap(), "9");
        // An empty default, and a default taken as written.
        assert_eq!(expanded("a${X:-}b", &[]).unwrap(), "ab");
        assert_eq!(expanded("${X:-a:-b$c}", &[]).unwrap(), "a:-b$c");
        // A default used is from the file, not from the environment.
        let expansion = expand("${PORT:-4318}", &environment(&[])).unwrap();
        assert!(expansion.from_environment.is_empty());
    }

    #[test]
    fn two_dollars_are_one_literal_dollar() {
        assert_eq!(expanded("$$", &[]).unwrap(), "$");
        assert_eq!(expanded("$${X}", &[("X", "no")]).unwrap(), "${X}");
        assert_eq!(expanded("$$TOKEN", &[]).unwrap(), "$TOKEN");
        assert_eq!(expanded("$$$${X}", &[("X", "v")]).unwrap(), "$${X}");
        assert_eq!(expanded("$$${X}", &[("X", "v")]).unwrap(), "$v");
    }

    #[test]
    fn a_dollar_before_anything_but_a_name_is_literal() {
        for text in [
            "a$",
            "$",
            "^x.*$",
            "$1",
            "$.field",
            "'$' || x",
            "cost: 5 $ ",
        ] {
            assert_eq!(expanded(text, &[]).unwrap(), text);
        }
    }

    #[test]
    fn a_dollar_before_a_name_is_an_error_suggesting_both_spellings() {
        let error = expanded("Bearer $OTLP_TOKEN", &[("OTLP_TOKEN", "s3cret")]).unwrap_err();
        assert!(
            error.contains("${OTLP_TOKEN}") && error.contains("$$OTLP_TOKEN"),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn an_unterminated_or_malformed_reference_is_an_error() {
        for text in [
            "${X",
            "abc ${X:-d",
            "${}",
            "${1X}",
            "${A-B}",
            "${A B}",
            "${X:y}",
        ] {
            let error = expanded(text, &[("X", "v"), ("A", "v")]).unwrap_err();
            assert!(error.contains("${"), "{text}: {error}");
        }
        let long = format!("${{{}}}", "N".repeat(MAX_NAME_BYTES + 1));
        assert!(expanded(&long, &[]).is_err());
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |_: &str| Some(OsString::from_vec(vec![0xff, 0xfe]));
        let error = expand("${BIN}", &lookup).unwrap_err();
        assert!(error.contains("BIN") && error.contains("UTF-8"), "{error}");
    }

    #[test]
    fn a_value_cannot_inject_toml() {
        // Expansion runs after parsing: the value stays one string.
        let mut table: toml::Table = toml::from_str("path = \"${P}\"\n").unwrap();
        let injected = "/x\"\n[[output]]\nkind = \"stdout";
        let (_, errors) = expand_table(&mut table, &environment(&[("P", injected)]));
        assert!(errors.is_empty());
        assert_eq!(table.len(), 1);
        assert_eq!(table["path"].as_str(), Some(injected));
    }

    #[test]
    fn every_string_is_expanded_in_arrays_inline_tables_and_input_tables() {
        let text = r#"
            cpus = ["${C}", 2]
            max_line = 1048576
            sqpoll = true
            [[input]]
            kind = "file"
            path = "${LOGS}/*.log"
            [[output]]
            kind = "otlp"
            headers = { Authorization = "Bearer ${TOKEN}", nested = { deep = ["${C}"] } }
        "#;
        let mut table: toml::Table = toml::from_str(text).unwrap();
        let lookup = environment(&[("C", "0"), ("LOGS", "/var/log/app"), ("TOKEN", "t0k3n")]);
        let (_, errors) = expand_table(&mut table, &lookup);
        assert!(errors.is_empty(), "{errors:?}");
        // What the text parses to with each reference written as its value
        // (safe here: no value holds a character TOML would read).
        let written_out = text
            .replace("${C}", "0")
            .replace("${LOGS}", "/var/log/app")
            .replace("${TOKEN}", "t0k3n");
        assert!(!written_out.contains('$'), "{written_out}");
        let want: toml::Table = toml::from_str(&written_out).unwrap();
        assert_eq!(table, want);
    }

    #[test]
    fn every_error_names_its_key() {
        let text = r#"
            data_dir = "${NOPE}"
            cpus = ["${C}"]
            [[input]]
            kind = "file"
            path = "${A}"
            [[output]]
            kind = "otlp"
            [[output]]
            kind = "otlp"
            headers = { Authorization = "Bearer ${B}" }
        "#;
        let mut table: toml::Table = toml::from_str(text).unwrap();
        let (_, errors) = expand_table(&mut table, &environment(&[]));
        let mut places: Vec<&str> = errors.iter().map(|(place, _)| place.as_str()).collect();
        places.sort();
        assert_eq!(
            places,
            [
                "[[input]] #1: key 'path'",
                "[[output]] #2: key 'headers.Authorization'",
                "key 'cpus'",
                "key 'data_dir'",
            ]
        );
        assert!(
            errors.iter().any(|(place, error)| place.contains("headers")
                && error.contains("variable B is not set")),
            "{errors:?}"
        );
    }

    fn redactions(text: &str, pairs: &[(&str, &str)]) -> Redactions {
        let mut table: toml::Table = toml::from_str(text).unwrap();
        let (redactions, errors) = expand_table(&mut table, &environment(pairs));
        assert!(errors.is_empty(), "{errors:?}");
        redactions
    }

    #[test]
    fn a_value_from_the_environment_is_shown_as_its_reference() {
        let redactions = redactions(
            "[[output]]\nurl = \"https://user:${PASS}@collector/v1/logs\"\npath = \"${DIR}/tls.key\"\n",
            &[("PASS", "hunter2-long"), ("DIR", "/run/credentials/r")],
        );
        assert!(!redactions.is_empty());
        // The whole value, as written.
        assert_eq!(
            redactions.redact("otlp:https://user:hunter2-long@collector/v1/logs,gzip"),
            "otlp:https://user:${PASS}@collector/v1/logs,gzip"
        );
        // A variable's value in another spelling of the value (a URL
        // rewritten by a parser).
        assert_eq!(
            redactions.redact("https://user:hunter2-long@collector:443/"),
            "https://user:${PASS}@collector:443/"
        );
        assert_eq!(
            redactions.redact("directory /run/credentials/r does not exist"),
            "directory ${DIR} does not exist"
        );
        assert_eq!(
            redactions.redact("path = \"/run/credentials/r/tls.key\""),
            "path = \"${DIR}/tls.key\""
        );
    }

    #[test]
    fn an_escaped_value_is_hidden_too() {
        let redactions = redactions("token = \"${T}\"\n", &[("T", "a\"b\\c")]);
        let in_toml = toml::Value::String("a\"b\\c".to_string()).to_string();
        let shown = redactions.redact(&format!("token = {in_toml}"));
        assert!(!shown.contains("b\\c") && shown.contains("${T}"), "{shown}");
        let shown = redactions.redact(&format!("token {:?}", "a\"b\\c"));
        assert!(
            !shown.contains("b\\\\c") && shown.contains("${T}"),
            "{shown}"
        );
    }

    #[test]
    fn a_value_hides_whole_words_only_and_plain_numbers_not_at_all() {
        let redactions = redactions(
            "format = \"${F}\"\nworkers = \"${W}\"\nspaces = \"${S}\"\n",
            &[("F", "json"), ("W", "2"), ("S", "  ")],
        );
        assert_eq!(
            redactions.redact("format = \"json\"  # jsonl, ajson"),
            "format = \"${F}\"  # jsonl, ajson"
        );
        assert_eq!(
            redactions.redact("sockets = 2  # default"),
            "sockets = 2  # default"
        );
        assert_eq!(redactions.redact("a  b"), "a  b");
    }

    #[test]
    fn a_default_used_or_an_empty_value_is_not_hidden() {
        let redactions = redactions(
            "a = \"${UNSET:-debug}\"\nb = \"x${EMPTY}y\"\n",
            &[("EMPTY", "")],
        );
        assert!(redactions.is_empty());
        assert_eq!(redactions.redact("level debug xy"), "level debug xy");
    }

    #[test]
    fn the_template_of_a_top_level_key_is_kept() {
        let redactions = redactions(
            "max_line = \"${MAX}\"\ndata_dir = \"/var/lib\"\n",
            &[("MAX", "1MiB")],
        );
        assert_eq!(
            redactions.template("max_line"),
            Some(&toml::Value::String("${MAX}".to_string()))
        );
        assert_eq!(redactions.template("data_dir"), None);
    }
}
