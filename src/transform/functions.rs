//! The scalar functions: string functions write their result into the
//! per-line arena, regexes run with reusable capture locations,
//! `json_extract` parses with its own reused simd-json buffers, and `now()`
//! formats into a fixed buffer. None allocates after warm-up.

use super::eval::Cx;
use super::expr::{Expr, Func, JsonStep, TrimEnds};
use super::raw::value_end;
use super::record::{Span, Src, Val};
use simd_json::{Node, StaticNode};
use std::time::{SystemTime, UNIX_EPOCH};

/// `now()` as RFC 3339 UTC with milliseconds, formatted at most once per
/// millisecond.
pub(super) struct NowCache {
    millis: u128,
    text: [u8; 24],
}

impl NowCache {
    pub fn new() -> Self {
        Self {
            millis: u128::MAX,
            text: [0; 24],
        }
    }

    fn get(&mut self) -> &[u8; 24] {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        if millis != self.millis {
            self.millis = millis;
            self.text = format_rfc3339_millis(millis);
        }
        &self.text
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (years
/// 1970 to 9999).
pub(super) fn format_rfc3339_millis(millis: u128) -> [u8; 24] {
    let seconds = (millis / 1000) as i64;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for i in (0..width).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day % 3600 / 60);
    put(17, 2, of_day % 60);
    put(20, 3, (millis % 1000) as i64);
    text
}

/// What `trim` cuts when given no characters: spaces (U+0020, and the
/// other Unicode space separators), not tabs or newlines, as DuckDB.
fn is_space(c: char) -> bool {
    c.is_whitespace() && !c.is_control()
}

impl Cx<'_> {
    /// An argument `pick` takes: `Ok(None)` for NULL, `Err(())` (an error
    /// counted) for a value it does not take.
    fn typed<T>(
        &mut self,
        expr: &Expr,
        pick: impl FnOnce(Val) -> Option<T>,
    ) -> Result<Option<T>, ()> {
        match self.eval(expr) {
            Val::Null => Ok(None),
            val => match pick(val) {
                Some(value) => Ok(Some(value)),
                None => {
                    self.errors += 1;
                    Err(())
                }
            },
        }
    }

    /// A string argument (see [`Self::typed`]).
    fn string(&mut self, expr: &Expr) -> Result<Option<Span>, ()> {
        self.typed(expr, |val| match val {
            Val::Str(span) => Some(span),
            _ => None,
        })
    }

    fn int(&mut self, expr: &Expr) -> Result<Option<i64>, ()> {
        self.typed(expr, |val| match val {
            Val::Int(n) => Some(n),
            _ => None,
        })
    }

    pub fn call(&mut self, func: &Func, args: &[Expr]) -> Val {
        match self.call_inner(func, args) {
            Ok(value) => value,
            Err(()) => Val::Null,
        }
    }

    /// `Err(())`: an error already counted, the value is NULL.
    fn call_inner(&mut self, func: &Func, args: &[Expr]) -> Result<Val, ()> {
        macro_rules! string_or_null {
            ($expr:expr) => {
                match self.string($expr)? {
                    Some(span) => span,
                    None => return Ok(Val::Null),
                }
            };
        }
        match func {
            Func::Lower | Func::Upper => {
                let span = string_or_null!(&args[0]);
                self.tmp.clear();
                let range = self.stage(span);
                let start = self.arena.len();
                let upper = matches!(func, Func::Upper);
                for chunk in self.tmp[range].utf8_chunks() {
                    let valid = chunk.valid();
                    if valid.is_ascii() {
                        self.arena.extend(valid.bytes().map(|b| {
                            if upper {
                                b.to_ascii_uppercase()
                            } else {
                                b.to_ascii_lowercase()
                            }
                        }));
                    } else {
                        let mut buffer = [0u8; 4];
                        for c in valid.chars() {
                            let mut push = |c: char| {
                                self.arena
                                    .extend_from_slice(c.encode_utf8(&mut buffer).as_bytes())
                            };
                            if upper {
                                c.to_uppercase().for_each(&mut push);
                            } else {
                                c.to_lowercase().for_each(&mut push);
                            }
                        }
                    }
                    self.arena.extend_from_slice(chunk.invalid());
                }
                Ok(self.finish_string(start))
            }
            Func::Length => {
                let span = string_or_null!(&args[0]);
                let chars = self
                    .bytes(span)
                    .iter()
                    .filter(|&&b| (b & 0xC0) != 0x80)
                    .count();
                Ok(Val::Int(chars as i64))
            }
            Func::Substr => {
                let span = string_or_null!(&args[0]);
                let Some(start) = self.int(&args[1])? else {
                    return Ok(Val::Null);
                };
                let length = match args.get(2) {
                    None => None,
                    Some(length) => match self.int(length)? {
                        None => return Ok(Val::Null),
                        Some(length) => Some(length),
                    },
                };
                let text = self.bytes(span);
                let count = text.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as i64;
                // 1-based; a negative start counts from the end (DuckDB).
                let first = if start < 0 { count + start + 1 } else { start };
                // A negative length takes the characters before `first`
                // (DuckDB).
                let (first, end) = match length {
                    None => (first, count + 1),
                    Some(length) if length < 0 => (first.saturating_add(length), first),
                    Some(length) => (first, first.saturating_add(length)),
                };
                let (first, end) = (first.max(1), end.min(count + 1));
                if first >= end {
                    return Ok(Val::Str(Span::new(Src::Const, 0, 0)));
                }
                let byte_at = |char_index: i64| -> usize {
                    // Byte offset of the char_index-th (1-based) character.
                    let mut seen = 0i64;
                    for (at, &b) in text.iter().enumerate() {
                        if (b & 0xC0) != 0x80 {
                            seen += 1;
                            if seen == char_index {
                                return at;
                            }
                        }
                    }
                    text.len()
                };
                let (from, to) = (byte_at(first), byte_at(end));
                Ok(Val::Str(Span::new(
                    span.src,
                    span.start as usize + from,
                    to - from,
                )))
            }
            Func::Concat | Func::ConcatOp => {
                // The text so far is arena[start..end]. An argument that
                // computes a string (upper(a), a nested concat) leaves it at
                // the arena's end, past `end`: its text is appended after
                // it and moved down to `end`, and what lies past is dropped.
                let start = self.arena.len();
                let mut end = start;
                for arg in args {
                    let value = self.eval(arg);
                    if matches!(value, Val::Null) && matches!(func, Func::ConcatOp) {
                        self.arena.truncate(start);
                        return Ok(Val::Null);
                    }
                    let before = self.arena.len();
                    self.write_text(value);
                    let len = self.arena.len() - before;
                    self.arena.copy_within(before..before + len, end);
                    end += len;
                    self.arena.truncate(end);
                    if end - start > self.max_string_bytes {
                        self.arena.truncate(start);
                        self.errors += 1;
                        return Err(());
                    }
                }
                Ok(self.finish_string(start))
            }
            Func::Replace => {
                let text = string_or_null!(&args[0]);
                let from = string_or_null!(&args[1]);
                let to = string_or_null!(&args[2]);
                self.tmp.clear();
                let text = self.stage(text);
                let from = self.stage(from);
                let to = self.stage(to);
                if from.is_empty() {
                    let start = self.arena.len();
                    self.arena.extend_from_slice(&self.tmp[text]);
                    return Ok(self.finish_string(start));
                }
                let start = self.arena.len();
                let (haystack, needle) = (&self.tmp[text], &self.tmp[from.clone()]);
                let mut last = 0;
                for found in memchr::memmem::find_iter(haystack, needle) {
                    self.arena.extend_from_slice(&haystack[last..found]);
                    self.arena.extend_from_slice(&self.tmp[to.clone()]);
                    last = found + needle.len();
                    if self.arena.len() - start > self.max_string_bytes {
                        break;
                    }
                }
                self.arena.extend_from_slice(&haystack[last..]);
                Ok(self.finish_string(start))
            }
            Func::Trim(ends) => {
                let span = string_or_null!(&args[0]);
                let characters = match args.get(1) {
                    None => None,
                    Some(set) => Some(string_or_null!(set)),
                };
                let text = self.bytes(span);
                let set = characters.map(|set| self.bytes(set));
                let cut = |c: char| match set {
                    None => is_space(c),
                    Some(set) => std::str::from_utf8(set).is_ok_and(|set| set.contains(c)),
                };
                // Invalid UTF-8 (a raw line) is trimmed as far as it is valid.
                let valid_len = text
                    .utf8_chunks()
                    .next()
                    .map_or(0, |chunk| chunk.valid().len());
                let valid = std::str::from_utf8(&text[..valid_len]).unwrap_or("");
                let mut from = 0;
                let mut to = text.len();
                if *ends != TrimEnds::Trailing {
                    from = valid.len() - valid.trim_start_matches(cut).len();
                }
                if *ends != TrimEnds::Leading && valid_len == text.len() {
                    to = valid.trim_end_matches(cut).len().max(from);
                }
                Ok(Val::Str(Span::new(
                    span.src,
                    span.start as usize + from,
                    to - from,
                )))
            }
            Func::StartsWith => {
                let text = string_or_null!(&args[0]);
                let prefix = string_or_null!(&args[1]);
                Ok(Val::Bool(self.bytes(text).starts_with(self.bytes(prefix))))
            }
            Func::RegexpLike(regex) => {
                let span = string_or_null!(&args[0]);
                Ok(Val::Bool(self.regexes[*regex].is_match(self.bytes(span))))
            }
            Func::RegexpExtract { regex, group } => {
                let span = string_or_null!(&args[0]);
                let locations = &mut self.locations[*regex];
                let text = match span.src {
                    Src::Line => self.line,
                    Src::Scratch => self.scratch,
                    Src::Arena => &self.arena[..],
                    Src::Const => self.consts,
                };
                let text = &text[span.range()];
                let found = self.regexes[*regex]
                    .captures_read(locations, text)
                    .is_some();
                // No match, or the group took no part: '' as in DuckDB.
                let (from, to) = match (found, locations.get(*group)) {
                    (true, Some((from, to))) => (from, to),
                    _ => (0, 0),
                };
                Ok(Val::Str(Span::new(
                    span.src,
                    span.start as usize + from,
                    to - from,
                )))
            }
            Func::RegexpReplace { regex, global } => {
                let text = string_or_null!(&args[0]);
                let replacement = string_or_null!(&args[1]);
                self.tmp.clear();
                let text = self.stage(text);
                let replacement = self.stage(replacement);
                let regexes = self.regexes;
                let pattern = &regexes[*regex];
                let locations = &mut self.locations[*regex];
                let haystack = &self.tmp[text];
                let replacement = &self.tmp[replacement];
                let arena = &mut *self.arena;
                let start = arena.len();
                let mut at = 0;
                let mut last = 0;
                while at <= haystack.len() {
                    let Some(found) = pattern.captures_read_at(locations, haystack, at) else {
                        break;
                    };
                    let (from, to) = (found.start(), found.end());
                    arena.extend_from_slice(&haystack[last..from]);
                    expand(replacement, haystack, locations, arena);
                    last = to;
                    // An empty match moves on one byte so the loop ends.
                    at = if to == from { to + 1 } else { to };
                    if !global || arena.len() - start > self.max_string_bytes {
                        break;
                    }
                }
                arena.extend_from_slice(&haystack[last..]);
                Ok(self.finish_string(start))
            }
            Func::JsonExtract(steps) => {
                let span = string_or_null!(&args[0]);
                self.json_extract(span, steps)
            }
            Func::Now => {
                let start = self.arena.len();
                let text = *self.now.get();
                self.arena.extend_from_slice(&text);
                Ok(self.finish_string(start))
            }
        }
    }

    /// The value at `steps` in the JSON text `span` holds: strings, numbers
    /// and booleans as SQL values, arrays and objects as JSON; NULL when the
    /// path is absent; an error when the text is not JSON.
    fn json_extract(&mut self, span: Span, steps: &[JsonStep]) -> Result<Val, ()> {
        self.tmp.clear();
        let range = self.stage(span);
        let len = range.len();
        // What was found, as positions: resolved once the tape is released.
        enum Found {
            Invalid,
            Missing,
            Scalar(Val),
            Text { at: usize, len: usize },
            Raw { at: usize },
        }
        // A string is never longer than its line: the parser grows once to
        // it.
        let tmp = &self.tmp;
        let found = self.json.parse(&tmp[range], |tape, base| {
            let Some(nodes) = tape else {
                return Found::Invalid;
            };
            let mut at = 0usize;
            let mut found = true;
            for step in steps {
                match (step, nodes[at]) {
                    (JsonStep::Key(key), Node::Object { len, .. }) => {
                        let mut index = at + 1;
                        let mut hit = None;
                        for _ in 0..len {
                            let Node::String(name) = nodes[index] else {
                                break;
                            };
                            if name.as_bytes() == &key[..] {
                                hit = Some(index + 1);
                                break;
                            }
                            index = skip(nodes, index + 1);
                        }
                        match hit {
                            Some(value) => at = value,
                            None => found = false,
                        }
                    }
                    (JsonStep::Index(wanted), Node::Array { len, .. }) if *wanted < len => {
                        let mut index = at + 1;
                        for _ in 0..*wanted {
                            index = skip(nodes, index);
                        }
                        at = index;
                    }
                    _ => found = false,
                }
                if !found {
                    break;
                }
            }
            if !found {
                Found::Missing
            } else {
                match nodes[at] {
                    Node::String(text) => Found::Text {
                        at: text.as_ptr() as usize - base,
                        len: text.len(),
                    },
                    Node::Static(StaticNode::I64(n)) => Found::Scalar(Val::Int(n)),
                    Node::Static(StaticNode::U64(n)) => {
                        Found::Scalar(i64::try_from(n).map_or(Val::Double(n as f64), Val::Int))
                    }
                    Node::Static(StaticNode::F64(x)) => Found::Scalar(Val::Double(x)),
                    Node::Static(StaticNode::Bool(b)) => Found::Scalar(Val::Bool(b)),
                    Node::Static(StaticNode::Null) => Found::Missing,
                    Node::Object { .. } | Node::Array { .. } => Found::Raw {
                        at: value_start(&tmp[..len], at),
                    },
                }
            }
        });
        match found {
            Found::Invalid => {
                self.errors += 1;
                Err(())
            }
            Found::Missing => Ok(Val::Null),
            Found::Scalar(value) => Ok(value),
            Found::Text { at, len } => {
                let start = self.arena.len();
                self.arena
                    .extend_from_slice(&self.json.scratch()[at..at + len]);
                Ok(self.finish_string(start))
            }
            Found::Raw { at } => {
                let end = value_end(&self.tmp[..len], at);
                let start = self.arena.len();
                self.arena.extend_from_slice(&self.tmp[at..end]);
                Ok(Val::Json(Span::new(Src::Arena, start, end - at)))
            }
        }
    }
}

fn skip(nodes: &[Node<'_>], at: usize) -> usize {
    match nodes[at] {
        Node::Object { count, .. } | Node::Array { count, .. } => at + 1 + count,
        _ => at + 1,
    }
}

/// The byte offset in `text` of tape node `target`: walks the text and the
/// tape's order together (every `{`, `[`, key and scalar is one node).
/// Only for `json_extract` of an array or object.
fn value_start(text: &[u8], target: usize) -> usize {
    let mut node = 0usize;
    let mut at = 0usize;
    loop {
        while at < text.len()
            && matches!(
                text[at],
                b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'}' | b']'
            )
        {
            at += 1;
        }
        if node == target || at >= text.len() {
            return at;
        }
        node += 1;
        at = match text[at] {
            b'{' | b'[' => at + 1,
            _ => value_end(text, at),
        };
    }
}

/// Appends `replacement` with `\0`…`\9` replaced by the groups of the
/// match in `locations` (RE2's syntax, as DuckDB uses) and `\\` by `\`.
fn expand(
    replacement: &[u8],
    haystack: &[u8],
    locations: &regex::bytes::CaptureLocations,
    out: &mut Vec<u8>,
) {
    let mut i = 0;
    while i < replacement.len() {
        let b = replacement[i];
        if b == b'\\' && i + 1 < replacement.len() {
            let next = replacement[i + 1];
            if next.is_ascii_digit() {
                if let Some((from, to)) = locations.get(usize::from(next - b'0')) {
                    out.extend_from_slice(&haystack[from..to]);
                }
                i += 2;
                continue;
            }
            if next == b'\\' {
                out.push(b'\\');
                i += 2;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
}
