//! The record a query sees, located on the one parse a line gets.
//!
//! [`JsonParse`] owns simd-json's padded scratch copy, its buffers and tape
//! (the same parse `crate::scan::json::JsonChecker` makes; a lane with a
//! query uses this one instead, so a line is parsed once). [`Fields`] is the
//! trie of the field paths the compiled programs name; [`JsonParse::locate`]
//! walks the tape once, fills one [`Slot`] per path (first occurrence of a
//! duplicate key wins, so the walk stops once every named key was seen) and,
//! when a `*` projection needs them, lists the top-level members.
//!
//! Values are [`Val`]s whose strings are [`Span`]s into one of the buffers
//! of a line's evaluation (the line, the unescaped scratch, the per-line
//! arena or the program's constants): indices, not borrows, so the arena can
//! grow while values point into it.
//!
//! simd-json unescapes each string in place in the scratch copy, starting at
//! the same offset as the string's content in the line (the byte after its
//! opening quote); that is how a key's position in the line is known without
//! a second scan. `tests::strings_sit_at_their_line_offsets` fails if a
//! simd-json update changes it.

use super::expr::KeyPath;
use super::raw::{
    bytes_eq, end_before, string_end, token_start, unescaped_at, value_end, value_start,
};
use crate::json_parse::PaddedParser;
use simd_json::{Node, StaticNode};

/// Where a string value's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    /// The line as given (raw JSON spans, `body`).
    Line,
    /// The parse's scratch copy: strings unescaped in place.
    Scratch,
    /// Strings computed for this line (`lower`, `concat`, …).
    Arena,
    /// The program's literals.
    Const,
}

/// A byte range in one of the [`Src`] buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub src: Src,
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn new(src: Src, start: usize, len: usize) -> Self {
        // Lines are at most --max-line (far below 4 GiB) and the arena is
        // bounded by it too, so offsets fit in u32.
        Self {
            src,
            start: start as u32,
            len: len as u32,
        }
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// One SQL value while a line is evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    /// UTF-8 text, unescaped (`body` of a raw line may be any bytes).
    Str(Span),
    /// A JSON array or object: its raw bytes as written.
    Json(Span),
}

/// What the walk found for one named field.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub val: Val,
    /// The value's raw bytes in the line, `raw_start..raw_end`, which a
    /// projection copies (numbers keep their spelling, strings their
    /// escapes); `raw_start` is `NO_RAW` when the value has no JSON
    /// spelling in the line (`body`, a missing field), so it is written in
    /// its type. Strings and numbers have no `raw_end` (0) when the
    /// fields were told to [`Fields::skip_raw_spans`].
    pub raw_start: u32,
    pub raw_end: u32,
}

pub(super) const NO_RAW: u32 = u32::MAX;

impl Slot {
    pub const MISSING: Slot = Slot {
        val: Val::Null,
        raw_start: NO_RAW,
        raw_end: NO_RAW,
    };

    /// The value's raw bytes in the line, when it has them.
    pub fn raw(&self) -> Option<std::ops::Range<usize>> {
        (self.raw_start != NO_RAW).then_some(self.raw_start as usize..self.raw_end as usize)
    }
}

/// One top-level member of an object line, for `*` projections.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    /// Offset in the line of the key's opening quote.
    pub start: u32,
    /// The key, unescaped, in the scratch.
    pub key: Span,
}

/// A node of the trie of referenced paths: one key at its depth.
#[derive(Debug)]
struct TrieNode {
    key: Box<[u8]>,
    /// The slots filled with this node's value (first occurrence in the
    /// line wins), when a path ends here.
    slots: Vec<u16>,
    children: Keys,
}

/// The trie nodes wanted at one depth of an object, with what tells a
/// member's key apart from them quickly.
#[derive(Debug, Default)]
struct Keys {
    nodes: Vec<u32>,
    /// `tag` of each node, in `nodes`' order (scanned per member).
    tags: Vec<u32>,
    /// One bit per tag (hashed) of `nodes`: a key whose bit is clear is
    /// none of them, known without the scan.
    bloom: u64,
}

impl Keys {
    fn push(&mut self, node: u32, key: &[u8]) {
        self.nodes.push(node);
        self.tags.push(tag(key));
        self.bloom |= bloom_bit(tag(key));
    }
}

/// The field paths the compiled programs name, as a trie over their keys.
/// A slot can have several paths (the spellings of one dotted name); the
/// first found in the line fills it.
#[derive(Debug, Default)]
pub(super) struct Fields {
    nodes: Vec<TrieNode>,
    roots: Keys,
    slot_count: usize,
    /// Each slot's paths, to give the same paths the same slot.
    known: Vec<(Vec<KeyPath>, u16)>,
    /// Slots of the path `["body"]`, the only field of a line that is not
    /// a JSON object.
    body_slot: Option<u16>,
    /// No slot's raw bytes are copied (no projection writes them): the
    /// walk does not look for where strings and numbers end in the line,
    /// so their `raw_end` is 0 (objects' and arrays' spans are their
    /// value and always exact).
    no_raw_spans: bool,
}

impl Fields {
    /// Adds a field with its paths (keys from the outermost; any of them
    /// names it); returns its slot. The same paths twice get the same slot.
    pub fn add(&mut self, paths: &[KeyPath]) -> u16 {
        if let Some((_, slot)) = self.known.iter().find(|(known, _)| known == paths) {
            return *slot;
        }
        let slot = self.slot_count as u16;
        self.slot_count += 1;
        for path in paths {
            let node = self.node(path);
            self.nodes[node as usize].slots.push(slot);
        }
        if let [path] = paths
            && let [key] = path.as_slice()
            && &**key == b"body"
        {
            self.body_slot = Some(slot);
        }
        self.known.push((paths.to_vec(), slot));
        slot
    }

    /// The trie node of `path`, added with its ancestors when missing.
    fn node(&mut self, path: &[Box<[u8]>]) -> u32 {
        let mut level: Option<u32> = None;
        for key in path {
            let children = match level {
                None => &self.roots,
                Some(node) => &self.nodes[node as usize].children,
            };
            let found = children
                .nodes
                .iter()
                .copied()
                .find(|&child| *self.nodes[child as usize].key == **key);
            let node = match found {
                Some(node) => node,
                None => {
                    let node = self.nodes.len() as u32;
                    self.nodes.push(TrieNode {
                        key: key.clone(),
                        slots: Vec::new(),
                        children: Keys::default(),
                    });
                    match level {
                        None => self.roots.push(node, key),
                        Some(parent) => self.nodes[parent as usize].children.push(node, key),
                    }
                    node
                }
            };
            level = Some(node);
        }
        level.expect("a path has at least one key")
    }

    /// Leaves out the raw bytes of strings and numbers (see
    /// `no_raw_spans`): for programs that only evaluate (filters, routes).
    pub fn skip_raw_spans(&mut self) {
        self.no_raw_spans = true;
    }

    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Fills the slots for a record that is only `body` = the line (a raw
    /// line, or a JSON line that is not an object).
    pub fn fill_body(&self, line_len: usize, slots: &mut [Slot]) {
        slots.fill(Slot::MISSING);
        if let Some(slot) = self.body_slot {
            slots[usize::from(slot)] = Slot {
                val: Val::Str(Span::new(Src::Line, 0, line_len)),
                ..Slot::MISSING
            };
        }
    }
}

/// simd-json's parse of one line, reused for every line.
pub(super) struct JsonParse {
    /// Sized for one line; grows to a longer one (see [`JsonParse::locate`]).
    parser: PaddedParser,
    /// Per trie node: the `stamp` of the last line it was seen on (first
    /// occurrence wins), so a new line starts without clearing it.
    seen: Vec<u32>,
    /// This line's stamp; never 0, the stamp of nodes not seen yet.
    stamp: u32,
    /// Per top-level member position: the root node the key there was on
    /// the last line that had one (`NO_NODE`: none). Lines of one source
    /// mostly list their keys in the same order, so the guess is checked
    /// first; a wrong one only costs that check. Grows to the most
    /// top-level members one line had.
    predicted: Vec<u32>,
}

const NO_NODE: u32 = u32::MAX;

/// What [`JsonParse::locate`] made of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    /// Not one valid JSON value (exactly when `JsonChecker::is_valid` is false).
    Invalid,
    /// A JSON object: the slots hold its fields.
    Object,
    /// Valid JSON but not an object: the record is `body` alone.
    NotObject,
}

impl JsonParse {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            parser: PaddedParser::new(max_line_bytes),
            seen: Vec::new(),
            stamp: 0,
            predicted: Vec::new(),
        }
    }

    /// The scratch copy of the last line parsed: strings unescaped in place.
    pub fn scratch(&self) -> &[u8] {
        self.parser.scratch()
    }

    /// Parses `line` and fills `slots` (one per path of `fields`, `Slot::MISSING`
    /// when absent). With `members` given, every top-level member of an
    /// object line is listed in it (the walk then reads the whole top level).
    pub fn locate(
        &mut self,
        line: &[u8],
        fields: &Fields,
        slots: &mut [Slot],
        mut members: Option<&mut Vec<Member>>,
    ) -> Parsed {
        // Longer than the size given at start (a syslog line's JSON can be,
        // when the caller passed --max-line): the parser grows once to it,
        // so validity depends on the JSON alone. Bounded by the caller's
        // longest line.
        let (seen, stamp, predicted) = (&mut self.seen, &mut self.stamp, &mut self.predicted);
        self.parser.parse(line, |tape, base| {
            let Some(tape) = tape else {
                return Parsed::Invalid;
            };
            if fields.nodes.is_empty() && members.is_none() {
                // Nothing to locate (`SELECT *` [WHERE on constants], no
                // routes): the parse was the validity check, and that is all.
                if matches!(tape.first(), Some(Node::Object { .. })) {
                    Parsed::Object
                } else {
                    Parsed::NotObject
                }
            } else if let Some(Node::Object { .. }) = tape.first() {
                slots.fill(Slot::MISSING);
                if let Some(members) = members.as_deref_mut() {
                    members.clear();
                }
                *stamp = stamp.wrapping_add(1);
                if *stamp == 0 || seen.len() != fields.nodes.len() {
                    // Once per 2^32 lines, or other fields: cleared.
                    seen.clear();
                    seen.resize(fields.nodes.len(), 0);
                    *stamp = 1;
                }
                let mut walk = Walk {
                    tape,
                    line,
                    base,
                    fields,
                    seen,
                    stamp: *stamp,
                    slots,
                    predicted,
                };
                match members {
                    Some(members) => walk.object(0, &fields.roots, true, Some(members)),
                    None => walk.top(),
                }
                Parsed::Object
            } else {
                fields.fill_body(line.len(), slots);
                if let Some(members) = members {
                    members.clear();
                }
                Parsed::NotObject
            }
        })
    }
}

struct Walk<'t, 'a> {
    tape: &'t [Node<'t>],
    line: &'a [u8],
    base: usize,
    fields: &'a Fields,
    seen: &'a mut [u32],
    /// The line's stamp in `seen`.
    stamp: u32,
    slots: &'a mut [Slot],
    predicted: &'a mut Vec<u32>,
}

impl Walk<'_, '_> {
    /// The offset of a tape string in the line (and the scratch).
    fn offset(&self, text: &str) -> usize {
        text.as_ptr() as usize - self.base
    }

    /// [`Walk::object`] for the line's object when its members are not
    /// listed (every query but a `*` projection): the same walk with the
    /// guesses of [`Walk::find_top`] sized once per line, left as soon as
    /// every wanted key was seen.
    fn top(&mut self) {
        let (tape, fields) = (self.tape, self.fields);
        let wanted = &fields.roots;
        let Some(&Node::Object { len, .. }) = tape.first() else {
            return;
        };
        let mut unseen = wanted.nodes.len();
        if unseen == 0 {
            return;
        }
        if self.predicted.len() < len {
            // Grows to the most members one line had.
            self.predicted.resize(len, NO_NODE);
        }
        let mut index = 1;
        for position in 0..len {
            let Node::String(key) = tape[index] else {
                return;
            };
            let value_at = index + 1;
            let value = tape[value_at];
            index = match value {
                Node::Object { count, .. } | Node::Array { count, .. } => value_at + 1 + count,
                _ => value_at + 1,
            };
            let guess = self.predicted[position];
            let node = if guess != NO_NODE
                && self.seen[guess as usize] != self.stamp
                && bytes_eq(&fields.nodes[guess as usize].key, key.as_bytes())
            {
                guess
            } else {
                let found = self.find(wanted, key.as_bytes());
                self.predicted[position] = found.unwrap_or(NO_NODE);
                match found {
                    Some(node) => node,
                    None => continue,
                }
            };
            self.seen[node as usize] = self.stamp;
            unseen -= 1;
            let raw_end = if self.fields.no_raw_spans && !is_nested(value) {
                None
            } else {
                self.raw_end(index, position + 1 == len, true)
            };
            self.fill(node, value_at, self.offset(key), key.len(), raw_end);
            if unseen == 0 {
                // First occurrence wins: nothing later can change a slot.
                break;
            }
        }
    }

    /// Walks the object at tape index `at` for the trie nodes of `wanted`;
    /// `top`: it is the line's object.
    fn object(
        &mut self,
        at: usize,
        wanted: &Keys,
        top: bool,
        mut members: Option<&mut Vec<Member>>,
    ) {
        let tape = self.tape;
        let Node::Object { len, .. } = tape[at] else {
            return;
        };
        let mut unseen = wanted.nodes.len();
        let mut index = at + 1;
        for position in 0..len {
            if unseen == 0 && members.is_none() {
                // First occurrence wins: nothing later can change a slot.
                break;
            }
            let Node::String(key) = tape[index] else {
                return;
            };
            let key_at = self.offset(key);
            if let Some(members) = members.as_deref_mut() {
                members.push(Member {
                    start: (key_at - 1) as u32,
                    key: Span::new(Src::Scratch, key_at, key.len()),
                });
            }
            let value_at = index + 1;
            let value = tape[value_at];
            index = match value {
                Node::Object { count, .. } | Node::Array { count, .. } => value_at + 1 + count,
                _ => value_at + 1,
            };
            if unseen == 0 {
                continue;
            }
            let found = if top {
                self.find_top(wanted, key.as_bytes(), position)
            } else {
                self.find(wanted, key.as_bytes())
            };
            let Some(node) = found else { continue };
            self.seen[node as usize] = self.stamp;
            unseen -= 1;
            let raw_end = if self.fields.no_raw_spans && !is_nested(value) {
                None
            } else {
                self.raw_end(index, position + 1 == len, top)
            };
            self.fill(node, value_at, key_at, key.len(), raw_end);
        }
    }

    /// Where the raw bytes of a member's value end, when the walk knows
    /// it: before the next member's key, at tape index `next` (its opening
    /// quote is the byte before the key's offset), or, for the `last`
    /// member of the line's object (`top`), before the line's closing brace.
    #[inline(always)]
    fn raw_end(&self, next: usize, last: bool, top: bool) -> Option<usize> {
        let followed_at = if !last {
            match self.tape[next] {
                Node::String(key) => Some(self.offset(key) - 1),
                _ => None,
            }
        } else if top {
            Some(self.line.len())
        } else {
            None
        };
        followed_at.map(|at| end_before(self.line, at))
    }

    /// Fills the slots of trie node `node` with the value at tape index
    /// `value_at`, whose member's key (`key_len` bytes unescaped) starts at
    /// `key_at`, then walks the value for the node's children.
    #[inline(always)]
    fn fill(
        &mut self,
        node: u32,
        value_at: usize,
        key_at: usize,
        key_len: usize,
        raw_end: Option<usize>,
    ) {
        let trie = &self.fields.nodes[node as usize];
        // Located once for every slot of the node (mostly one).
        let located = self.value(self.tape[value_at], key_at, key_len, raw_end);
        for &slot in &trie.slots {
            let slot = &mut self.slots[usize::from(slot)];
            // Another spelling of the same name may have come first.
            if slot.raw_start == NO_RAW {
                *slot = located;
            }
        }
        if !trie.children.nodes.is_empty() {
            self.object(value_at, &trie.children, false, None);
        }
    }

    /// The node of `wanted` (not seen yet) whose key is `key`.
    #[inline]
    fn find(&self, wanted: &Keys, key: &[u8]) -> Option<u32> {
        // Most keys are told apart by their tag; the bytes are compared
        // only when it matches.
        let key_tag = tag(key);
        if wanted.bloom & bloom_bit(key_tag) == 0 {
            return None;
        }
        self.find_tagged(wanted, key, key_tag)
    }

    /// [`Walk::find`] past the bloom filter: the scan of the tags.
    #[inline(never)]
    fn find_tagged(&self, wanted: &Keys, key: &[u8], key_tag: u32) -> Option<u32> {
        wanted
            .tags
            .iter()
            .zip(&wanted.nodes)
            .find(|&(&candidate, &node)| {
                candidate == key_tag
                    && self.seen[node as usize] != self.stamp
                    && bytes_eq(&self.fields.nodes[node as usize].key, key)
            })
            .map(|(_, &node)| node)
    }

    /// [`Walk::find`] for the member at `position` of the line's object:
    /// the node found there on an earlier line is tried first.
    fn find_top(&mut self, wanted: &Keys, key: &[u8], position: usize) -> Option<u32> {
        if let Some(&guess) = self.predicted.get(position)
            && guess != NO_NODE
            && self.seen[guess as usize] != self.stamp
            && bytes_eq(&self.fields.nodes[guess as usize].key, key)
        {
            return Some(guess);
        }
        let found = self.find(wanted, key);
        if self.predicted.len() <= position {
            self.predicted.resize(position + 1, NO_NODE);
        }
        self.predicted[position] = found.unwrap_or(NO_NODE);
        found
    }

    /// The slot of the value `node` (its tape node), whose member's key
    /// (`key_len` bytes unescaped) starts at `key_at`; `raw_end`: where its
    /// raw bytes end, when the walk knows it.
    #[inline(always)]
    fn value(&self, node: Node<'_>, key_at: usize, key_len: usize, raw_end: Option<usize>) -> Slot {
        let line = self.line;
        let (val, start, end) = match node {
            Node::String(text) => {
                // The content sits at the same offset in the line as in
                // the scratch, after the opening quote.
                let content = self.offset(text);
                let end = match raw_end {
                    Some(end) => end,
                    None if self.fields.no_raw_spans => 0,
                    None if unescaped_at(line, content, text.len()) => content + text.len() + 1,
                    None => string_end(line, content) + 1,
                };
                let val = Val::Str(Span::new(Src::Scratch, content, text.len()));
                (val, content - 1, end)
            }
            Node::Object { .. } | Node::Array { .. } => {
                let start = value_start(line, key_at, key_len);
                let end = raw_end.unwrap_or_else(|| value_end(line, start));
                (
                    Val::Json(Span::new(Src::Line, start, end - start)),
                    start,
                    end,
                )
            }
            Node::Static(node) => {
                let (start, end) = match raw_end {
                    // A number, true, false or null: no byte of it is a
                    // colon or white space.
                    Some(end) => (token_start(line, end), end),
                    None if self.fields.no_raw_spans => (0, 0),
                    None => {
                        let start = value_start(line, key_at, key_len);
                        (start, value_end(line, start))
                    }
                };
                let val = match node {
                    StaticNode::I64(n) => Val::Int(n),
                    StaticNode::U64(n) => match i64::try_from(n) {
                        Ok(n) => Val::Int(n),
                        // Past BIGINT: the nearest DOUBLE, as DuckDB reads it.
                        Err(_) => Val::Double(n as f64),
                    },
                    StaticNode::F64(n) => Val::Double(n),
                    StaticNode::Bool(b) => Val::Bool(b),
                    StaticNode::Null => Val::Null,
                };
                (val, start, end)
            }
        };
        Slot {
            val,
            raw_start: start as u32,
            raw_end: end as u32,
        }
    }
}

/// An object or an array: its raw span is its value, always located.
#[inline(always)]
fn is_nested(node: Node<'_>) -> bool {
    matches!(node, Node::Object { .. } | Node::Array { .. })
}

/// A key's length and first byte in one word, compared before its bytes.
#[inline]
fn tag(key: &[u8]) -> u32 {
    ((key.len() as u32) << 8) | u32::from(key.first().copied().unwrap_or(0))
}

/// The bit of a tag in [`Keys::bloom`] (a multiplicative hash's top six
/// bits).
#[inline]
fn bloom_bit(key_tag: u32) -> u64 {
    1 << (key_tag.wrapping_mul(0x9e37_79b9) >> 26)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::raw::member_end;

    fn path(text: &str) -> Vec<Box<[u8]>> {
        text.split('.').map(|key| key.as_bytes().into()).collect()
    }

    #[test]
    fn strings_sit_at_their_line_offsets() {
        // The engine finds keys and values in the line through the offsets
        // of simd-json's in-place strings; an update that moved them would
        // break raw copies, so this pins it down (escapes included).
        let line = r#"{"k\"ey":"v\\al\u00e9","n":{"é":"x"}, "z" : "last"}"#.as_bytes();
        let mut parse = JsonParse::new(1024);
        let mut fields = Fields::default();
        let slots_wanted = [
            fields.add(&[vec![br#"k"ey"#.to_vec().into()]]),
            fields.add(&[path("n.é")]),
            fields.add(&[path("z")]),
        ];
        let mut slots = vec![Slot::MISSING; fields.slot_count()];
        assert_eq!(
            parse.locate(line, &fields, &mut slots, None),
            Parsed::Object
        );
        let text = |slot: u16| match slots[usize::from(slot)].val {
            Val::Str(span) => {
                assert_eq!(span.src, Src::Scratch);
                parse.scratch()[span.range()].to_vec()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(text(slots_wanted[0]), "v\\alé".as_bytes());
        assert_eq!(text(slots_wanted[1]), b"x");
        assert_eq!(text(slots_wanted[2]), b"last");
        for (slot, raw) in
            slots_wanted
                .iter()
                .zip([&br#""v\\al\u00e9""#[..], br#""x""#, br#""last""#])
        {
            let raw_span = slots[usize::from(*slot)].raw().expect("located");
            assert_eq!(&line[raw_span], raw);
        }
    }

    #[test]
    fn raw_spans_are_exact_around_white_space_escapes_and_nesting() {
        // Ends come from the next member's key, or the line's closing
        // brace for the last top-level member; a nested object's last
        // member is scanned. Each field: its raw bytes.
        let line = "{ \"a\" : 1 ,\n\t\"b\":\"x\\\"y\" ,\"c\" : [1, {\"d\": \"}\"}] , \"n\": { \"x\": -2.5e3 , \"y\" : \"last\\\\\" } ,\"z\":null, \"t\" : true }  \r";
        let expected: [(&str, &str); 8] = [
            ("a", "1"),
            ("b", r#""x\"y""#),
            ("c", r#"[1, {"d": "}"}]"#),
            ("n", r#"{ "x": -2.5e3 , "y" : "last\\" }"#),
            ("n.x", "-2.5e3"),
            ("n.y", r#""last\\""#),
            ("z", "null"),
            ("t", "true"),
        ];
        let mut parse = JsonParse::new(1024);
        let mut fields = Fields::default();
        let wanted: Vec<u16> = expected
            .iter()
            .map(|(name, _)| fields.add(&[path(name)]))
            .collect();
        let mut slots = vec![Slot::MISSING; fields.slot_count()];
        // Twice: the second line walks with the member order guessed.
        for _ in 0..2 {
            assert_eq!(
                parse.locate(line.as_bytes(), &fields, &mut slots, None),
                Parsed::Object
            );
            for (slot, (name, raw)) in wanted.iter().zip(expected) {
                let span = slots[usize::from(*slot)].raw().expect("located");
                assert_eq!(&line[span], raw, "{name}");
            }
        }
        // Keys in another order on the next line: the guesses miss and
        // the scan finds them.
        let other = r#"{"t":false,"z":1,"a":"s"}"#;
        parse.locate(other.as_bytes(), &fields, &mut slots, None);
        for (slot, raw) in [
            (wanted[7], "false"),
            (wanted[6], "1"),
            (wanted[0], r#""s""#),
        ] {
            let span = slots[usize::from(slot)].raw().expect("located");
            assert_eq!(&other[span], raw);
        }
        assert!(slots[usize::from(wanted[1])].raw().is_none());
    }

    #[test]
    fn first_duplicate_wins_and_raw_spans_are_exact() {
        let line = br#"{"a":{"b":[1,{"c":"}"}],"b":2},"a":{"b":3}, "n" : -1.50e3 ,"t":true}"#;
        let mut parse = JsonParse::new(1024);
        let mut fields = Fields::default();
        let ab = fields.add(&[path("a.b")]);
        let n = fields.add(&[path("n")]);
        let t = fields.add(&[path("t")]);
        let a = fields.add(&[path("a")]);
        let mut slots = vec![Slot::MISSING; fields.slot_count()];
        let mut members = Vec::new();
        parse.locate(line, &fields, &mut slots, Some(&mut members));
        let Val::Json(span) = slots[usize::from(ab)].val else {
            panic!()
        };
        assert_eq!(&line[span.range()], br#"[1,{"c":"}"}]"#);
        let Val::Json(span) = slots[usize::from(a)].val else {
            panic!()
        };
        assert_eq!(&line[span.range()], br#"{"b":[1,{"c":"}"}],"b":2}"#);
        assert_eq!(slots[usize::from(n)].val, Val::Double(-1500.0));
        let raw_span = slots[usize::from(n)].raw().expect("located");
        assert_eq!(&line[raw_span], b"-1.50e3");
        assert_eq!(slots[usize::from(t)].val, Val::Bool(true));
        assert_eq!(members.len(), 4);
        let spans: Vec<&[u8]> = (0..members.len())
            .map(|i| &line[members[i].start as usize..member_end(line, &members, i)])
            .collect();
        assert_eq!(
            spans,
            [
                &br#""a":{"b":[1,{"c":"}"}],"b":2}"#[..],
                br#""a":{"b":3}"#,
                br#""n" : -1.50e3"#,
                br#""t":true"#
            ]
        );
    }
}
