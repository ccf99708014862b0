//! Multiline joins (`multiline=` on a file input): which lines start a
//! record and which continue the one before ([`Multiline::step`]).
//!
//! `config::MultilineRule` is the setting as written (checked when the
//! SPEC is parsed); [`Multiline`] is it compiled once at start. The CPU worker
//! (`cpu_worker::container`) keeps one pending record per (file, stream)
//! and a [`State`] for it; this module keeps no state and allocates
//! nothing per line (a compiled `regex` reuses its scratch space).
//!
//! - `start:REGEX`: a line that matches starts a record; any other line
//!   continues the pending one (with none pending it starts one itself).
//!   A record is sent when the next one starts or on the timeout.
//! - `java`, `python`, `go`: Fluent Bit's built-in multiline parsers of the
//!   same names (from Google's fluent-plugin-detect-exceptions), as tables
//!   of rules (`from` states, pattern, `to` state) in [`JAVA`], [`PYTHON`]
//!   and [`GO`]. A line that matches a rule of [`START`] starts a record;
//!   one that matches a rule of the pending record's state continues it;
//!   any other line ends the pending record and, unless it starts one, is
//!   a record of its own at once. A rule whose `to` is [`START`] ends the
//!   record with its line (Python's exception line): it is sent at once.

use crate::config::{MultilineRule, compile_regex};
use memchr::memmem;
use regex::bytes::Regex;

/// Where a pending record stands. [`START`]: no record is open (for a
/// pending record: it ends with the message it holds).
pub(crate) type State = u8;
pub(crate) const START: State = 0;
/// `start:REGEX`'s one state of a pending record.
const IN_RECORD: State = 1;

/// One rule of a preset: a line in a state of `from` (bit `s` for state
/// `s`) that matches `pattern` moves the record to `to`.
struct Rule {
    from: u16,
    pattern: &'static str,
    to: State,
    /// Words one of which every line that matches contains (none: no such
    /// words): a quick test that spares most lines the regex's search.
    words: &'static [&'static str],
}

const fn bit(state: State) -> u16 {
    1 << state
}

const fn rule(from: u16, pattern: &'static str, to: State) -> Rule {
    Rule {
        from,
        pattern,
        to,
        words: &[],
    }
}

/// Fluent Bit's `java` (Java, and C# stack traces); its exception pattern
/// `[:\r\n]` also takes the end of the line here, as lines carry no `\n`,
/// and its `...` is taken literally.
const JAVA: &[Rule] = {
    const AFTER_EXCEPTION: State = 1;
    const FRAMES: State = 2;
    const NESTED: State = 3;
    &[
        // Tried on every line that no trace continues: its words are
        // looked for first (the regex, unanchored, has no prefix to search).
        Rule {
            words: &["Exception", "Error", "Throwable", "V8 errors stack trace"],
            ..rule(
                bit(START) | bit(NESTED),
                r".(?:Exception|Error|Throwable|V8 errors stack trace)(?::|\r|$)",
                AFTER_EXCEPTION,
            )
        },
        rule(
            bit(AFTER_EXCEPTION),
            r"^[\t ]*nested exception is:[\t ]*",
            NESTED,
        ),
        rule(bit(AFTER_EXCEPTION), r"^\r*$", AFTER_EXCEPTION),
        rule(
            bit(AFTER_EXCEPTION) | bit(FRAMES),
            r"^[\t ]+(?:eval )?at ",
            FRAMES,
        ),
        rule(
            bit(AFTER_EXCEPTION) | bit(FRAMES),
            r"^[\t ]+--- End of inner exception stack trace ---$",
            FRAMES,
        ),
        rule(
            bit(AFTER_EXCEPTION) | bit(FRAMES),
            r"^--- End of stack trace from previous location where exception was thrown ---$",
            FRAMES,
        ),
        rule(
            bit(AFTER_EXCEPTION) | bit(FRAMES),
            r"^[\t ]*(?:Caused by|Suppressed):",
            AFTER_EXCEPTION,
        ),
        rule(
            bit(AFTER_EXCEPTION) | bit(FRAMES),
            r"^[\t ]*\.\.\. \d+ (?:more|common frames omitted)",
            FRAMES,
        ),
    ]
};

/// Fluent Bit's `python`: the traceback header, `File` lines each with
/// the code line after it, and the exception line, which ends the record.
const PYTHON: &[Rule] = {
    const FRAMES: State = 1;
    const CODE: State = 2;
    &[
        rule(
            bit(START),
            r"^Traceback \(most recent call last\):$",
            FRAMES,
        ),
        rule(bit(FRAMES), r"^[\t ]+File ", CODE),
        rule(bit(CODE), r"[^\t ]", FRAMES),
        rule(bit(FRAMES), r"^(?:[^\s.():]+\.)*[^\s.():]+:", START),
    ]
};

/// Fluent Bit's `go`: `panic: ` (or `http: panic serving`), an optional
/// `[signal …]` line, then blank-line separated `goroutine N [state]:`
/// blocks of function lines each followed by an indented file line.
const GO: &[Rule] = {
    const AFTER_PANIC: State = 1;
    const AFTER_SIGNAL: State = 2;
    const GOROUTINE: State = 3;
    const FUNCTION: State = 4;
    const FILE: State = 5;
    &[
        rule(bit(START), r"\bpanic: ", AFTER_PANIC),
        rule(bit(START), r"http: panic serving", GOROUTINE),
        rule(
            bit(AFTER_PANIC) | bit(AFTER_SIGNAL) | bit(FUNCTION),
            r"^$",
            GOROUTINE,
        ),
        rule(bit(AFTER_PANIC), r"^\[signal ", AFTER_SIGNAL),
        rule(bit(GOROUTINE), r"^goroutine \d+ \[[^\]]+\]:$", FUNCTION),
        rule(
            bit(FUNCTION),
            r"^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by ",
            FILE,
        ),
        rule(bit(FILE), r"^\s", FUNCTION),
    ]
};

/// What a line does to the pending record of its (file, stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Joined to the pending record (after a `\n`), which moves to the
    /// state; [`START`]: the record ends with this line.
    Continue(State),
    /// Ends the pending record, if any, and opens a new one in the state.
    Start(State),
    /// Ends the pending record, if any, and is a record of its own.
    Single,
}

/// `multiline=` compiled.
pub(crate) enum Multiline {
    Start(Regex),
    Rules(Vec<CompiledRule>),
}

/// A [`Rule`] compiled.
pub(crate) struct CompiledRule {
    regex: Regex,
    from: u16,
    to: State,
    words: Vec<memmem::Finder<'static>>,
}

impl CompiledRule {
    fn matches(&self, line: &[u8]) -> bool {
        (self.words.is_empty() || self.words.iter().any(|word| word.find(line).is_some()))
            && self.regex.is_match(line)
    }
}

impl Multiline {
    pub fn new(rule: &MultilineRule) -> Result<Self, String> {
        let table = match rule {
            MultilineRule::Start(pattern) => return Ok(Self::Start(compile_regex(pattern)?)),
            MultilineRule::Java => JAVA,
            MultilineRule::Python => PYTHON,
            MultilineRule::Go => GO,
        };
        let rules = table
            .iter()
            .map(|rule| {
                Ok(CompiledRule {
                    regex: compile_regex(rule.pattern)?,
                    from: rule.from,
                    to: rule.to,
                    words: rule.words.iter().map(memmem::Finder::new).collect(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self::Rules(rules))
    }

    /// What `line` (a whole message, or its first part when a runtime split
    /// it) does, given the state of its stream's pending record
    /// ([`START`]: none is pending).
    pub fn step(&self, pending: State, line: &[u8]) -> Step {
        match self {
            Self::Start(regex) => {
                if pending != START && !regex.is_match(line) {
                    Step::Continue(pending)
                } else {
                    Step::Start(IN_RECORD)
                }
            }
            Self::Rules(rules) => {
                let first = |state: State| {
                    rules
                        .iter()
                        .find(|rule| rule.from & bit(state) != 0 && rule.matches(line))
                        .map(|rule| rule.to)
                };
                if pending != START
                    && let Some(to) = first(pending)
                {
                    return Step::Continue(to);
                }
                first(START).map_or(Step::Single, Step::Start)
            }
        }
    }
}

#[cfg(test)]
mod tests;
