//! Imports flow one way (issue 15): reads `src/**/*.rs`, builds the graph of
//! which module refers to which (`use` trees, `crate::` and `super::` paths)
//! and fails on an import cycle, or on a stage reaching into another stage's
//! internals. Principal types: `Graph` (nodes, edges with the file:line
//! that makes each), `Source` (one file, comments, strings and test modules
//! blanked out).
//!
//! A node is a top-level module (`batch`, `metrics`, …) or, inside the three
//! stages `input`, `scan` and `output`, one child module (`input::udp`);
//! deeper modules fold into their ancestor (`input::otlp::decode` is
//! `input::otlp`). The crate root (`lib.rs`, `main.rs`) is left out: it
//! declares every module and calls the composition, by definition.
//! `#[cfg(test)]` items are left out too: a unit test may build whatever
//! fixture it needs.
//!
//! The rules:
//! - no cycle: no two nodes reach each other;
//! - a stage module refers to no module of another stage: what stages share
//!   lives in a vocabulary module outside them (batch, ack, pool, ring,
//!   config, metrics, sockopt, signals, the JSON writer, uring, …);
//! - within a stage, one kind (`input::tcp`) refers to no other kind
//!   (`input::udp`); machinery the kinds share sits in a stage module that is
//!   not a kind (`input::net`), which any kind of the stage may use;
//! - only the composition ([`COMPOSERS`]) refers to stage modules from
//!   outside the stages; vocabulary modules never do (that is what makes
//!   them vocabulary).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The stages of DESIGN §1, each a directory of modules.
const STAGES: &[&str] = &["input", "scan", "output"];

/// The kinds of each stage: the modules named after a user-facing kind
/// (`--input KIND:…`, `--output KIND:…`) or format. One kind never refers to
/// another; a stage module not listed here is machinery the kinds share.
const KINDS: &[(&str, &[&str])] = &[
    ("input", &["file", "udp", "tcp", "otlp", "stdin"]),
    ("scan", &["json", "syslog"]),
    ("output", &["tcp", "http", "otlp"]),
];

/// Stage workers that live at the top level under the name of their box in
/// DESIGN §1 (`src/cpu_worker.rs`) and drive one stage's modules: each
/// counts as a module of that stage that is not a kind.
const STAGE_WORKERS: &[(&str, &str)] = &[("cpu_worker", "scan")];

/// Top-level modules that compose the stages (build lanes, outputs,
/// threads); the only ones outside the stages that may refer to them.
/// `demo` drives a whole pipeline from outside, and its OTLP sender is the
/// `http`/`otlp` outputs' own client (as `bench_api` lends it to bench/).
const COMPOSERS: &[&str] = &["pipeline", "demo"];

#[test]
fn imports_flow_one_way_with_no_cycle_and_no_stage_reaching_into_another() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::of_tree(&src);
    // The reading itself works: a graph of nothing would pass every rule.
    assert!(
        graph.nodes.len() >= 10 && graph.edges.len() >= 10,
        "read only {} modules and {} edges under {}: the reader is broken",
        graph.nodes.len(),
        graph.edges.len(),
        src.display()
    );
    for shared in ["batch", "ring", "pool", "config"] {
        assert!(
            graph.nodes.contains(shared),
            "no module {shared} found under {}",
            src.display()
        );
    }
    let cycles = graph.cycles();
    let crossings = graph.crossings();
    for (members, edges) in &cycles {
        eprintln!("import cycle among {}:", members.join(", "));
        for path in shortest_loops(edges) {
            eprintln!("  loop: {}", path.join(" -> "));
        }
        for edge in edges {
            eprintln!("  {edge}");
        }
    }
    for (edge, why) in &crossings {
        eprintln!("{edge}: {why}");
    }
    assert!(
        cycles.is_empty() && crossings.is_empty(),
        "{} import cycle(s) and {} edge(s) against the layering (listed above, \
         each with the file:line that makes it)",
        cycles.len(),
        crossings.len()
    );
}

/// The reader on sources written here: `use` trees, `super::` and inline
/// `crate::` paths, children of the current module, and what it must not
/// count (comments, strings, test modules, other crates).
#[test]
fn the_layering_reader_resolves_use_trees_super_and_crate_paths() {
    let files = [
        (
            "input/tcp.rs",
            r#"//! Doc naming crate::metrics, which is no import.
use crate::{batch::Batch, ring::{RingSender, Waker}};
use super::udp::{escaped_len, write_escaped};
use std::sync::Arc;
fn f() {
    let s = "crate::cli in a string";
    crate::uring::submit(1); /* crate::top in a comment */
    let _ = io_uring::opcode::Nop::new();
}
#[cfg(test)]
mod tests {
    use crate::output::sink::Sink;
}
"#,
        ),
        (
            "input/otlp/mod.rs",
            "mod decode;\nuse decode::Decoded;\nuse self::decode::X;\nuse crate::input::net::Acceptor;\n",
        ),
        (
            "input/otlp/decode.rs",
            "use super::super::file::cut;\nuse super::Decoded;\n",
        ),
        (
            "input/udp.rs",
            "pub(crate) use crate::metrics::InputCounters;\n",
        ),
        ("input/file.rs", ""),
        ("input/net.rs", ""),
        ("input/mod.rs", "pub(crate) mod tcp;\n"),
        (
            "metrics.rs",
            "fn f() -> crate::input::udp::SocketStats { todo!() }\n",
        ),
        ("batch.rs", "use crate::ring::Waker;\n"),
        ("ring.rs", ""),
        ("uring.rs", ""),
        ("lib.rs", "mod cli;\nfn main() { crate::cli::run(); }\n"),
    ];
    let graph = Graph::of_files(
        files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string())),
    );
    let edges: BTreeSet<(String, String)> = graph
        .edges
        .iter()
        .map(|edge| (edge.from.clone(), edge.to.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("input::tcp", "batch"),
        ("input::tcp", "ring"),
        ("input::tcp", "input::udp"),
        ("input::tcp", "uring"),
        ("input::otlp", "input::net"),
        ("input::otlp", "input::file"),
        ("input::udp", "metrics"),
        ("metrics", "input::udp"),
        ("batch", "ring"),
    ]
    .iter()
    .map(|(from, to)| (from.to_string(), to.to_string()))
    .collect();
    assert_eq!(edges, want, "edges read from the sources");
    let tcp_to_udp = graph
        .edges
        .iter()
        .find(|edge| edge.from == "input::tcp" && edge.to == "input::udp")
        .unwrap();
    assert_eq!(tcp_to_udp.at, "input/tcp.rs:3", "where an edge is made");

    let cycles = graph.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].0, ["input::udp", "metrics"]);
    assert_eq!(
        shortest_loops(&cycles[0].1),
        [["input::udp", "metrics", "input::udp"]]
    );
    let crossings: Vec<String> = graph
        .crossings()
        .iter()
        .map(|(edge, _)| format!("{} -> {}", edge.from, edge.to))
        .collect();
    assert_eq!(
        crossings,
        [
            "input::otlp -> input::file",
            "input::tcp -> input::udp",
            "metrics -> input::udp"
        ],
        "input::net is shared machinery, input::udp and input::file are kinds"
    );
}

// ---------------------------------------------------------------------------
// The graph

/// One reference from a module to another, and where it is made.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    /// `path/in/src.rs:LINE` of the first reference that makes the edge.
    at: String,
    /// The path as written there, resolved (`crate::input::udp::x`).
    path: String,
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} ({} at src/{})",
            self.from, self.to, self.path, self.at
        )
    }
}

#[derive(Debug, Default)]
struct Graph {
    nodes: BTreeSet<String>,
    /// One per (from, to), the first reference found (files in path order).
    edges: Vec<Edge>,
}

impl Graph {
    /// Every `.rs` file under `src`.
    fn of_tree(src: &Path) -> Graph {
        let mut files = Vec::new();
        collect_rs(src, src, &mut files);
        files.sort();
        let files: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|relative| {
                let text = fs::read_to_string(src.join(&relative))
                    .unwrap_or_else(|e| panic!("read src/{}: {e}", relative.display()));
                (relative, text)
            })
            .collect();
        // A file declared `#[cfg(test)] mod tests;` is test code, like a
        // `#[cfg(test)] mod tests { … }` written inline: left out too.
        let test_only: BTreeSet<Vec<String>> = files
            .iter()
            .filter_map(|(relative, text)| Some((module_of(relative)?, text)))
            .flat_map(|(module, text)| {
                test_module_declarations(text).into_iter().map(move |name| {
                    let mut child = module.clone();
                    child.push(name);
                    child
                })
            })
            .collect();
        Graph::of_files(files.into_iter().filter(|(relative, _)| {
            module_of(relative)
                .is_none_or(|module| !test_only.iter().any(|test| module.starts_with(test)))
        }))
    }

    /// `files`: (path relative to `src/`, text).
    fn of_files(files: impl Iterator<Item = (PathBuf, String)>) -> Graph {
        let files: Vec<(Vec<String>, String, String)> = files
            .filter_map(|(relative, text)| {
                let module = module_of(&relative)?;
                Some((module, relative.to_string_lossy().into_owned(), text))
            })
            .collect();
        let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _, _)| m.clone()).collect();
        let mut graph = Graph::default();
        let mut seen = BTreeSet::new();
        for (module, relative, text) in &files {
            let from = node_of(module, &modules).expect("a file's own module exists");
            graph.nodes.insert(from.clone());
            let source = Source::new(text);
            for (offset, path) in source.references(module, &modules) {
                // An item of the crate root (`crate::EXIT_USAGE`) is no module.
                let Some(to) = node_of(&path, &modules) else {
                    continue;
                };
                if to == from || !seen.insert((from.clone(), to.clone())) {
                    continue;
                }
                graph.edges.push(Edge {
                    from: from.clone(),
                    to,
                    at: format!("{relative}:{}", source.line_of(offset)),
                    path: format!("crate::{}", path.join("::")),
                });
            }
        }
        graph
    }

    /// Each set of two or more nodes that reach each other (a strongly
    /// connected component), sorted, with the edges among them.
    fn cycles(&self) -> Vec<(Vec<String>, Vec<Edge>)> {
        let mut out = Vec::new();
        for component in strongly_connected(&self.nodes, &self.edges) {
            if component.len() < 2 {
                continue;
            }
            let edges = self
                .edges
                .iter()
                .filter(|edge| component.contains(&edge.from) && component.contains(&edge.to))
                .cloned()
                .collect();
            out.push((component.into_iter().collect(), edges));
        }
        out
    }

    /// The edges against the stage rules, with the rule each breaks.
    fn crossings(&self) -> Vec<(Edge, &'static str)> {
        let mut out: Vec<(Edge, &'static str)> = self
            .edges
            .iter()
            .filter_map(|edge| Some((edge.clone(), stage_rule_broken(&edge.from, &edge.to)?)))
            .collect();
        out.sort_by(|a, b| (&a.0.from, &a.0.to).cmp(&(&b.0.from, &b.0.to)));
        out
    }
}

/// For each edge of a strongly connected component, the shortest loop
/// through it (`a -> b -> a`), each loop once: what to cut, in short.
fn shortest_loops(edges: &[Edge]) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for edge in edges {
        next.entry(&edge.from).or_default().push(&edge.to);
    }
    let mut loops = BTreeSet::new();
    for edge in edges {
        // Breadth-first from the edge's head back to its tail.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([edge.to.as_str()]);
        while let Some(node) = queue.pop_front() {
            if node == edge.from {
                break;
            }
            for &to in next.get(node).map(Vec::as_slice).unwrap_or_default() {
                if to != edge.to && !came_from.contains_key(to) {
                    came_from.insert(to, node);
                    queue.push_back(to);
                }
            }
        }
        let mut path = vec![edge.from.clone()];
        let mut node = edge.from.as_str();
        while node != edge.to {
            let Some(&previous) = came_from.get(node) else {
                break; // no way back (cannot happen inside a component)
            };
            path.push(previous.to_string());
            node = previous;
        }
        path.reverse();
        // Now edge.to ... edge.from; close the loop and start it at its
        // smallest node, so each loop is listed once.
        path.insert(0, edge.from.clone());
        path.pop();
        let start = (0..path.len()).min_by_key(|&i| &path[i]).unwrap_or(0);
        path.rotate_left(start);
        path.push(path[0].clone());
        loops.insert(path);
    }
    loops.into_iter().collect()
}

/// `(stage, child)` of a node inside a stage: `input::udp` is
/// `("input", Some("udp"))`, `input` is `("input", None)`.
fn stage_of(node: &str) -> Option<(&str, Option<&str>)> {
    if let Some(&(worker, stage)) = STAGE_WORKERS.iter().find(|(worker, _)| *worker == node) {
        return Some((stage, Some(worker)));
    }
    let mut parts = node.splitn(2, "::");
    let stage = parts.next()?;
    STAGES.contains(&stage).then_some((stage, parts.next()))
}

fn is_kind(stage: &str, child: &str) -> bool {
    KINDS
        .iter()
        .any(|(s, kinds)| *s == stage && kinds.contains(&child))
}

/// Which rule the edge `from -> to` breaks, if any (cycles aside).
fn stage_rule_broken(from: &str, to: &str) -> Option<&'static str> {
    let (to_stage, to_child) = stage_of(to)?;
    match stage_of(from) {
        None if COMPOSERS.contains(&from) => None,
        None => Some(
            "a module outside the stages refers to a stage's module (only the composition may; \
             move what both need into a vocabulary module)",
        ),
        Some((from_stage, _)) if from_stage != to_stage => Some(
            "a stage refers to another stage's module (what stages share belongs in a \
             vocabulary module outside them)",
        ),
        Some((stage, Some(from_child))) => match to_child {
            Some(to_child) if is_kind(stage, from_child) && is_kind(stage, to_child) => Some(
                "one kind refers to another kind of its stage (shared machinery belongs in a \
                 stage module that is not a kind, or a vocabulary module)",
            ),
            _ => None,
        },
        Some((_, None)) => None,
    }
}

/// Tarjan's algorithm over the nodes; each component's members.
fn strongly_connected(nodes: &BTreeSet<String>, edges: &[Edge]) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let i = state.index.len();
        state.index.insert(node, i);
        state.low.insert(node, i);
        state.stack.push(node);
        state.on_stack.insert(node);
        for to in state.next.get(node).cloned().unwrap_or_default() {
            if !state.index.contains_key(to) {
                visit(state, to);
                let low = state.low[node].min(state.low[to]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(to) {
                let low = state.low[node].min(state.index[to]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.insert(member.to_string());
                if member == node {
                    break;
                }
            }
            state.out.push(component);
        }
    }
    let mut state = State {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for edge in edges {
        state
            .next
            .entry(edge.from.as_str())
            .or_default()
            .push(edge.to.as_str());
    }
    for node in nodes.iter().chain(edges.iter().map(|edge| &edge.to)) {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.out
}

fn collect_rs(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rs(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// The module path of a file under `src/` (`input/otlp/mod.rs` is
/// `[input, otlp]`); None for the crate root (`lib.rs`, `main.rs`).
fn module_of(relative: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    (!parts.is_empty()).then_some(parts)
}

/// The node a module path falls in: its top-level module, or in a stage
/// the stage's child when that child is a module; None when the path names
/// no module (an item of the crate root).
fn node_of(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<String> {
    let top = path.first()?;
    if STAGES.contains(&top.as_str())
        && let Some(child) = path.get(1)
        && modules
            .iter()
            .any(|m| m.len() >= 2 && m[0] == *top && m[1] == *child)
    {
        return Some(format!("{top}::{child}"));
    }
    modules.iter().any(|m| m[0] == *top).then(|| top.clone())
}

// ---------------------------------------------------------------------------
// Reading one file

/// A file's text with comments, string and char literals and `#[cfg(test)]`
/// items blanked to spaces (newlines kept, so offsets keep their lines).
struct Source {
    code: String,
}

impl Source {
    fn new(text: &str) -> Source {
        let code = blank_test_items(&blank_comments_and_strings(text));
        Source { code }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.code[..offset].matches('\n').count() + 1
    }

    /// Every module path this file refers to, absolute (without `crate`),
    /// with the offset of the reference: `use` trees first, then inline
    /// `crate::` / `super::` paths. Paths into other crates are dropped.
    fn references(
        &self,
        module: &[String],
        modules: &BTreeSet<Vec<String>>,
    ) -> Vec<(usize, Vec<String>)> {
        let mut out = Vec::new();
        let code = self.code.as_str();
        // `use` items: `use TREE;`, with any visibility before.
        for (at, _) in code.match_indices("use ") {
            if !starts_word(code, at) {
                continue;
            }
            let Some(end) = code[at..].find(';') else {
                continue;
            };
            // `X as Y` keeps X: mark the rename before dropping whitespace.
            let words: Vec<&str> = code[at + 4..at + end].split_whitespace().collect();
            let tree: String = words.join(" ").replace(" as ", "@").replace(' ', "");
            for path in expand_use_tree(&tree) {
                if let Some(absolute) = resolve(&path, module, modules, true) {
                    out.push((at, absolute));
                }
            }
        }
        // Inline paths: `crate::a::b` and `super::a` outside `use` items too.
        for prefix in ["crate::", "super::"] {
            for (at, _) in code.match_indices(prefix) {
                if !starts_word(code, at) || code[..at].ends_with("::") {
                    continue;
                }
                let path: Vec<String> = code[at..]
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|segment| !segment.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(absolute) = resolve(&path, module, modules, false) {
                    out.push((at, absolute));
                }
            }
        }
        out.sort();
        out
    }
}

/// True when `at` starts a word (not inside an identifier like `reuse `).
fn starts_word(code: &str, at: usize) -> bool {
    code[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

/// `crate::{a::X, b::{c, d}}` → `crate::a::X`, `crate::b::c`, `crate::b::d`
/// (whitespace already removed, `X as Y` written `X@Y`; globs kept as
/// segments).
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim_start_matches("::");
        if tree.is_empty() {
            return;
        }
        // Split at the first `{` that is on this level.
        match tree.find('{') {
            Some(open) if tree.ends_with('}') => {
                let mut head = prefix.to_vec();
                head.extend(segments(&tree[..open]));
                for item in split_top_level(&tree[open + 1..tree.len() - 1]) {
                    expand(&head, item, out);
                }
            }
            _ => {
                let mut path = prefix.to_vec();
                path.extend(segments(tree));
                out.push(path);
            }
        }
    }
    fn segments(text: &str) -> Vec<String> {
        text.split("::")
            .filter(|segment| !segment.is_empty())
            .map(|segment| segment.split('@').next().unwrap_or(segment).to_string())
            .collect()
    }
    let mut out = Vec::new();
    expand(&[], tree, &mut out);
    out
}

/// Splits `a,b::{c,d},e` at the commas outside braces.
fn split_top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

/// `path` as written in `module`, made absolute (without `crate`) when it
/// names a module of this crate: `crate::…`, `super::…`, `self::…` and, in
/// a `use`, a child module of `module` (`use decode::X` in `input::otlp`).
fn resolve(
    path: &[String],
    module: &[String],
    modules: &BTreeSet<Vec<String>>,
    in_use: bool,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut absolute: Vec<String> = match first.as_str() {
        "crate" => path[1..].to_vec(),
        "self" => module.iter().chain(&path[1..]).cloned().collect(),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            let base = module.len().checked_sub(supers)?;
            module[..base]
                .iter()
                .chain(&path[supers..])
                .cloned()
                .collect()
        }
        _ if in_use => {
            let mut child = module.to_vec();
            child.push(first.clone());
            if !modules.contains(&child) {
                return None; // another crate (std, io_uring, …)
            }
            module.iter().chain(path).cloned().collect()
        }
        _ => return None,
    };
    absolute.retain(|segment| segment != "*");
    (!absolute.is_empty()).then_some(absolute)
}

/// Blanks `//` and (nested) `/* */` comments, string literals (`"…"`,
/// `b"…"`, `r#"…"#`) and char literals, keeping newlines.
fn blank_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = i;
            while j < bytes.len() {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r#") || rest.starts_with(b"r\"") || rest.starts_with(b"br"))
            && (i == 0 || !is_ident_byte(bytes[i - 1]))
            && let Some(end) = raw_string_end(bytes, i)
        {
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter()
                    .skip(2)
                    .position(|&b| b == b'\'')
                    .map(|n| i + n + 3)
            } else {
                std::str::from_utf8(&bytes[i + 1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map(|c| i + 1 + c.len_utf8())
                    .filter(|&close| bytes.get(close) == Some(&b'\''))
                    .map(|close| close + 1)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8: only ASCII was replaced, whole chars")
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The end of the raw string starting at `i` (`r"…"`, `r#"…"#`, `br#"…"#`).
fn raw_string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if bytes[j] == b'b' {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = bytes[j..].iter().take_while(|&&b| b == b'#').count();
    j += hashes;
    if bytes.get(j) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = j + 1;
    bytes[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map(|n| body + n + close.len())
}

/// Blanks each item under `#[cfg(test)]`: up to its `;`, or through the
/// `{ … }` block that follows (a test module, a test-only function).
fn blank_test_items(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(found) = code[from..].find("#[cfg(test)]") {
        let start = from + found;
        let mut j = start + "#[cfg(test)]".len();
        while j < bytes.len() && bytes[j] != b';' && bytes[j] != b'{' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            let mut depth = 0;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        let end = (j + 1).min(bytes.len());
        for b in &mut out[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).expect("blanking keeps UTF-8")
}

/// The names of the modules `text` declares as `#[cfg(test)] mod NAME;`
/// (a file of their own that only tests compile).
fn test_module_declarations(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        rest = &rest[at + "#[cfg(test)]".len()..];
        let declaration = rest.trim_start();
        if let Some(after) = declaration.strip_prefix("mod ")
            && let Some(end) = after.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            && after[end..].trim_start().starts_with(';')
        {
            names.push(after[..end].to_string());
        }
    }
    names
}
