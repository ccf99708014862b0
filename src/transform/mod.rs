//! The transform stage (DESIGN §5): a SQL subset over each record, compiled
//! once at start and evaluated in the CPU worker on the parse the JSON check
//! already makes.
//!
//! - [`Query`]: `SELECT … FROM logs [WHERE …]` (`--sql`, `[[input]] sql`).
//! - [`Condition`]: one boolean expression, an output's route
//!   (`--where N=EXPR`, `[[output]] where`).
//! - [`Transformer`]: one per CPU worker; owns the parse buffers and the
//!   scratch it evaluates in, so a line costs no allocation after warm-up.
//!
//! A record is what a line holds: for [`Shape::Json`] its JSON object's
//! fields (nested ones reached with dots), for a JSON line that is not an
//! object and for [`Shape::Raw`] only `body` (the line).

use std::fmt;
use std::sync::Arc;

/// A query that cannot run, with where in the text it went wrong. Its
/// `Display` is the part after `--sql: `, e.g.
/// `unsupported: GROUP BY at line 1 column 38`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompileError {
    pub message: String,
    /// 1-based; 0 when the parser gave no position.
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(
                f,
                "{} at line {} column {}",
                self.message, self.line, self.column
            )
        }
    }
}

/// A compiled `SELECT … FROM logs [WHERE …]`.
#[derive(Debug)]
pub(crate) struct Query {
    // Filled in by the engine.
}

impl Query {
    pub fn compile(_sql: &str) -> Result<Self, CompileError> {
        Err(CompileError {
            message: "the SQL transform is not built yet".into(),
            line: 0,
            column: 0,
        })
    }

    /// The query printed back normalised (what `ringway check` shows).
    pub fn normalized(&self) -> String {
        String::new()
    }

    /// True for `SELECT *` with or without `WHERE`: kept lines keep their
    /// original bytes, so a batch whose lines are all kept passes on as is.
    pub fn keeps_lines(&self) -> bool {
        true
    }
}

/// A compiled route condition: one boolean SQL expression.
#[derive(Debug)]
pub(crate) struct Condition {
    // Filled in by the engine.
}

impl Condition {
    pub fn compile(_expr: &str) -> Result<Self, CompileError> {
        Err(CompileError {
            message: "routes are not built yet".into(),
            line: 0,
            column: 0,
        })
    }

    /// The expression printed back normalised.
    pub fn normalized(&self) -> String {
        String::new()
    }
}

/// How a line is seen as a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A JSON line (`format=json`, the JSON that `syslog` and OTLP lanes
    /// make): its object's fields; a valid non-object has only `body`.
    Json,
    /// The line itself is `body` (`format=raw`, and invalid JSON lines that
    /// `--on-invalid raw` passes on).
    Raw,
}

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// [`Shape::Json`] only: not valid JSON. Nothing was evaluated; the
    /// caller applies `--on-invalid` (and may process it again as Raw).
    Invalid,
    /// `WHERE` did not hold: the record goes nowhere.
    Filtered,
    /// The record is the line's original bytes.
    Kept,
    /// The record is the new object in [`Transformer::output`].
    Projected,
}

/// The result of [`Transformer::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineResult {
    pub outcome: Outcome,
    /// Bit `i` set: route `i` (the `i`-th output, 0-based) takes the
    /// record. An output without a condition takes every record. Zero for
    /// `Invalid` and `Filtered`.
    pub routes: u64,
    /// Runtime errors while evaluating (a failed CAST, a regex on a
    /// non-string…): each gave NULL and is counted, never fatal.
    pub errors: u32,
}

/// One per CPU worker: evaluates the query and the routes over one line at
/// a time, allocation-free after warm-up.
pub(crate) struct Transformer {
    query: Option<Arc<Query>>,
    routes: Vec<Option<Arc<Condition>>>,
    output: Vec<u8>,
}

impl Transformer {
    /// `routes`: one entry per output, in output order (`None`: takes every
    /// record). `max_line_bytes`: the longest line it will be given.
    pub fn new(
        query: Option<Arc<Query>>,
        routes: Vec<Option<Arc<Condition>>>,
        max_line_bytes: usize,
    ) -> Self {
        Self {
            query,
            routes,
            output: Vec::with_capacity(max_line_bytes),
        }
    }

    /// Evaluates one line (without its `\n`).
    pub fn process(&mut self, _line: &[u8], _shape: Shape) -> LineResult {
        let _ = (&self.query, &self.routes);
        unimplemented!("the SQL transform engine")
    }

    /// The record [`Transformer::process`] wrote for [`Outcome::Projected`]:
    /// one JSON object, without a newline.
    pub fn output(&self) -> &[u8] {
        &self.output
    }
}
