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
use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape};

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
    /// Offset in the line of the first byte of the member's key (after its
    /// quote), from which the value's raw bytes are found when a projection
    /// copies them; `NO_KEY` when the value has no JSON spelling in the
    /// line (`body`), so it is written as a string.
    pub key_at: u32,
    /// The key's length unescaped: when the key has no escapes, its
    /// closing quote is right after it, found without a scan.
    pub key_len: u32,
}

pub(super) const NO_KEY: u32 = u32::MAX;

impl Slot {
    pub const MISSING: Slot = Slot {
        val: Val::Null,
        key_at: NO_KEY,
        key_len: 0,
    };
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
    children: Vec<u32>,
    /// `tag` of each child, in `children`'s order (scanned per member).
    child_tags: Vec<u32>,
}

/// The field paths the compiled programs name, as a trie over their keys.
/// A slot can have several paths (the spellings of one dotted name); the
/// first found in the line fills it.
#[derive(Debug, Default)]
pub(super) struct Fields {
    nodes: Vec<TrieNode>,
    roots: Vec<u32>,
    /// `tag` of each root, in `roots`' order.
    root_tags: Vec<u32>,
    slot_count: usize,
    /// Each slot's paths, to give the same paths the same slot.
    known: Vec<(Vec<KeyPath>, u16)>,
    /// Slots of the path `["body"]`, the only field of a line that is not
    /// a JSON object.
    body_slot: Option<u16>,
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
                        children: Vec::new(),
                        child_tags: Vec::new(),
                    });
                    match level {
                        None => {
                            self.roots.push(node);
                            self.root_tags.push(tag(key));
                        }
                        Some(parent) => {
                            let parent = &mut self.nodes[parent as usize];
                            parent.children.push(node);
                            parent.child_tags.push(tag(key));
                        }
                    }
                    node
                }
            };
            level = Some(node);
        }
        level.expect("a path has at least one key")
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
                key_at: NO_KEY,
                key_len: 0,
            };
        }
    }
}

/// simd-json's parse of one line, reused for every line.
pub(super) struct JsonParse {
    /// Holds one line plus simd-json's padding; fixed size.
    pub scratch: Vec<u8>,
    buffers: Buffers,
    /// Empty between calls; kept only for its allocation (`Tape::null()`
    /// allocates, so it is taken out and put back rather than replaced).
    tape: Option<Tape<'static>>,
    /// Per trie node: seen on this line (first occurrence wins).
    seen: Vec<bool>,
}

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
            scratch: vec![0; max_line_bytes + 1 + INPUT_PADDING],
            buffers: Buffers::new(max_line_bytes + 1),
            tape: Some(Tape::null()),
            seen: Vec::new(),
        }
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
        let len = line.len();
        if len + INPUT_PADDING > self.scratch.len() {
            // Longer than the size given at start (a syslog line's JSON can
            // be, when the caller passed --max-line): grow once to it, so
            // validity depends on the JSON alone. Bounded by the caller's
            // longest line.
            self.scratch.resize(len + 1 + INPUT_PADDING, 0);
            self.buffers = Buffers::new(len + 1);
        }
        self.scratch[..len].copy_from_slice(line);
        let base = self.scratch.as_ptr() as usize;
        let mut tape = self
            .tape
            .take()
            .expect("tape is back after each call")
            .reset();
        let parsed = simd_json::fill_tape_padded(
            &mut self.scratch[..len + INPUT_PADDING],
            len,
            &mut self.buffers,
            &mut tape,
        );
        let result = if parsed.is_err() {
            Parsed::Invalid
        } else if fields.nodes.is_empty() && members.is_none() {
            // Nothing to locate (`SELECT *` [WHERE on constants], no
            // routes): the parse was the validity check, and that is all.
            if matches!(tape.0.first(), Some(Node::Object { .. })) {
                Parsed::Object
            } else {
                Parsed::NotObject
            }
        } else if let Some(Node::Object { .. }) = tape.0.first() {
            slots.fill(Slot::MISSING);
            if let Some(members) = members.as_deref_mut() {
                members.clear();
            }
            if self.seen.len() == fields.nodes.len() {
                self.seen.fill(false);
            } else {
                self.seen.clear();
                self.seen.resize(fields.nodes.len(), false);
            }
            let mut walk = Walk {
                tape: &tape.0,
                line,
                base,
                fields,
                seen: &mut self.seen,
                slots,
            };
            walk.object(0, &fields.roots, &fields.root_tags, members);
            Parsed::Object
        } else {
            fields.fill_body(len, slots);
            if let Some(members) = members {
                members.clear();
            }
            Parsed::NotObject
        };
        self.tape = Some(tape.reset());
        result
    }
}

struct Walk<'t, 'a> {
    tape: &'t [Node<'t>],
    line: &'a [u8],
    base: usize,
    fields: &'a Fields,
    seen: &'a mut [bool],
    slots: &'a mut [Slot],
}

impl Walk<'_, '_> {
    /// The offset of a tape string in the line (and the scratch).
    fn offset(&self, text: &str) -> usize {
        text.as_ptr() as usize - self.base
    }

    /// Walks the object at tape index `at` for the trie nodes `wanted`
    /// (whose tags are `tags`).
    fn object(
        &mut self,
        at: usize,
        wanted: &[u32],
        tags: &[u32],
        mut members: Option<&mut Vec<Member>>,
    ) {
        let Node::Object { len, .. } = self.tape[at] else {
            return;
        };
        let mut unseen = wanted.len();
        let mut index = at + 1;
        for _ in 0..len {
            if unseen == 0 && members.is_none() {
                // First occurrence wins: nothing later can change a slot.
                break;
            }
            let Node::String(key) = self.tape[index] else {
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
            index = next_node(self.tape, value_at);
            if unseen == 0 {
                continue;
            }
            // Most keys are told apart by their tag; the bytes are compared
            // only when it matches.
            let key_bytes = key.as_bytes();
            let key_tag = tag(key_bytes);
            let mut matched = None;
            for (index, &candidate) in tags.iter().enumerate() {
                if candidate == key_tag {
                    let node = wanted[index];
                    if !self.seen[node as usize]
                        && *self.fields.nodes[node as usize].key == *key_bytes
                    {
                        matched = Some(node);
                        break;
                    }
                }
            }
            let Some(node) = matched else { continue };
            self.seen[node as usize] = true;
            unseen -= 1;
            let trie = &self.fields.nodes[node as usize];
            for &slot in &trie.slots {
                let slot = usize::from(slot);
                // Another spelling of the same name may have come first.
                if self.slots[slot].key_at == NO_KEY {
                    self.slots[slot] = Slot {
                        val: self.value(value_at, key_at, key.len()),
                        key_at: key_at as u32,
                        key_len: key.len() as u32,
                    };
                }
            }
            if !trie.children.is_empty() {
                self.object(value_at, &trie.children, &trie.child_tags, None);
            }
        }
    }

    fn value(&self, at: usize, key_at: usize, key_len: usize) -> Val {
        match self.tape[at] {
            Node::String(text) => Val::Str(Span::new(Src::Scratch, self.offset(text), text.len())),
            Node::Static(StaticNode::I64(n)) => Val::Int(n),
            Node::Static(StaticNode::U64(n)) => match i64::try_from(n) {
                Ok(n) => Val::Int(n),
                // Past BIGINT: the nearest DOUBLE, as DuckDB reads it.
                Err(_) => Val::Double(n as f64),
            },
            Node::Static(StaticNode::F64(n)) => Val::Double(n),
            Node::Static(StaticNode::Bool(b)) => Val::Bool(b),
            Node::Static(StaticNode::Null) => Val::Null,
            Node::Object { .. } | Node::Array { .. } => {
                let start = value_start(self.line, key_at, key_len);
                let end = value_end(self.line, start);
                Val::Json(Span::new(Src::Line, start, end - start))
            }
        }
    }
}

/// A key's length and first byte in one word, compared before its bytes.
#[inline]
fn tag(key: &[u8]) -> u32 {
    ((key.len() as u32) << 8) | u32::from(key.first().copied().unwrap_or(0))
}

/// `a == b`, without a call to `memcmp` for the short strings keys and
/// most compared values are.
#[inline]
pub(super) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

/// The tape index after the value at `at`.
fn next_node(tape: &[Node<'_>], at: usize) -> usize {
    match tape[at] {
        Node::Object { count, .. } | Node::Array { count, .. } => at + 1 + count,
        _ => at + 1,
    }
}

/// Index of the closing quote of the JSON string whose content starts at
/// `from` (the line is valid JSON, so there is one).
pub(super) fn string_end(bytes: &[u8], mut from: usize) -> usize {
    // Keys and most values are short: a plain loop over the first bytes
    // beats setting up a vector search.
    let short_end = bytes.len().min(from + 24);
    while from < short_end {
        match bytes[from] {
            b'"' => return from,
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
    while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[from.min(bytes.len())..]) {
        let at = from + found;
        if bytes[at] == b'"' {
            return at;
        }
        from = at + 2;
    }
    bytes.len()
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The raw bytes `[start, end)` of the value of the member whose key's
/// content starts at `key_at` in `bytes` (valid JSON).
#[cfg(test)]
pub(super) fn raw_value(bytes: &[u8], key_at: usize) -> (usize, usize) {
    let colon = skip_whitespace(bytes, string_end(bytes, key_at) + 1);
    let start = skip_whitespace(bytes, colon + 1);
    (start, value_end(bytes, start))
}

/// True when `bytes[at..at + len]` is a whole string's content without
/// escapes: then its closing quote is at `at + len`. (Without a backslash
/// the first quote closes the string, and the unescaped length is the raw
/// one.)
fn unescaped_at(bytes: &[u8], at: usize, len: usize) -> bool {
    bytes.get(at + len) == Some(&b'"') && memchr::memchr(b'\\', &bytes[at..at + len]).is_none()
}

/// Where the value of the member whose key (`key_len` bytes unescaped)
/// starts at `key_at` begins.
fn value_start(bytes: &[u8], key_at: usize, key_len: usize) -> usize {
    let key_end = if unescaped_at(bytes, key_at, key_len) {
        key_at + key_len
    } else {
        string_end(bytes, key_at)
    };
    let colon = skip_whitespace(bytes, key_end + 1);
    skip_whitespace(bytes, colon + 1)
}

/// The raw bytes `[start, end)` of a located field's value in `line`
/// (`slot.key_at` is not `NO_KEY`), found from what the walk recorded.
pub(super) fn raw_of(line: &[u8], slot: &Slot) -> (usize, usize) {
    match slot.val {
        Val::Json(span) => (span.start as usize, (span.start + span.len) as usize),
        Val::Str(span) if span.src == Src::Scratch => {
            // The string's content sits at the same offset in the line.
            let (at, len) = (span.start as usize, span.len as usize);
            if unescaped_at(line, at, len) {
                (at - 1, at + len + 1)
            } else {
                (at - 1, string_end(line, at) + 1)
            }
        }
        _ => {
            let start = value_start(line, slot.key_at as usize, slot.key_len as usize);
            (start, value_end(line, start))
        }
    }
}

/// The end of the JSON value starting at `start` in valid JSON.
pub(super) fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start + 1) + 1,
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut at = start;
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => at = string_end(bytes, at + 1),
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bytes.len()
        }
        _ => {
            let mut at = start;
            while at < bytes.len()
                && !matches!(bytes[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                at += 1;
            }
            at
        }
    }
}

/// The end of top-level member `index` of `members` (before the comma that
/// follows it, or the object's closing brace), trailing whitespace trimmed.
pub(super) fn member_end(line: &[u8], members: &[Member], index: usize) -> usize {
    let mut end = match members.get(index + 1) {
        Some(next) => next.start as usize,
        None => line.len(),
    };
    // Back over whitespace to the comma (or, for the last member, past the
    // line's trailing whitespace to the closing brace), then over the
    // whitespace before it.
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    end -= 1; // the comma or the brace
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

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
                parse.scratch[span.range()].to_vec()
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
            let key_at = slots[usize::from(*slot)].key_at as usize;
            let (start, end) = raw_value(line, key_at);
            assert_eq!(&line[start..end], raw);
        }
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
        let (start, end) = raw_value(line, slots[usize::from(n)].key_at as usize);
        assert_eq!(&line[start..end], b"-1.50e3");
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
