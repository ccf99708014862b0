//! The compiled form of a query: a [`Program`] of [`Expr`] trees over field
//! slots, built by `compile.rs` from sqlparser's AST and evaluated by
//! `eval.rs`. Literals, regexes and JSON paths are resolved here, at start,
//! so evaluation only reads them.

use super::raw::StringSet;
use super::record::{Fields, Val};
use regex::bytes::Regex;
use std::fmt;

/// A SQL type as far as it is known before any line is seen: a field's is
/// [`Ty::Any`] (each line decides), a literal's or a cast's is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Any,
    Null,
    Bool,
    Int,
    Double,
    Str,
    Json,
}

impl Ty {
    pub fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Double)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Any => "ANY",
            Ty::Null => "NULL",
            Ty::Bool => "BOOLEAN",
            Ty::Int => "BIGINT",
            Ty::Double => "DOUBLE",
            Ty::Str => "VARCHAR",
            Ty::Json => "JSON",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// How `LIKE` / `ILIKE` matches, chosen at compile time from the pattern.
#[derive(Debug)]
pub(super) enum Matcher {
    /// No wildcard: equality with the literal.
    Exact(Box<[u8]>),
    /// `abc%`.
    Prefix(Box<[u8]>),
    /// `%abc`.
    Suffix(Box<[u8]>),
    /// `%abc%`.
    Contains(Box<memchr::memmem::Finder<'static>>),
    /// Anything else, and every `ILIKE`: an anchored regex.
    Regex(Regex),
}

/// Which end(s) `trim` cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrimEnds {
    Both,
    Leading,
    Trailing,
}

/// One step of a `json_extract` path (`$.a[0].b`).
#[derive(Debug)]
pub(super) enum JsonStep {
    Key(Box<[u8]>),
    Index(usize),
}

#[derive(Debug)]
pub(super) enum Func {
    Lower,
    Upper,
    Length,
    /// `substr(s, start[, length])`, in characters.
    Substr,
    /// `concat(…)`: NULL arguments are skipped.
    Concat,
    /// `a || b`: NULL if either is.
    ConcatOp,
    Replace,
    /// `trim` and friends; argument 1, when present, is the set of
    /// characters to cut (default: whitespace).
    Trim(TrimEnds),
    StartsWith,
    /// Index into `Program::regexes`.
    RegexpLike(usize),
    RegexpExtract {
        regex: usize,
        group: usize,
    },
    RegexpReplace {
        regex: usize,
        global: bool,
    },
    JsonExtract(Vec<JsonStep>),
    Now,
}

#[derive(Debug)]
pub(super) enum Expr {
    /// A field of the record: the program's slot index.
    Field(u16),
    Const(Val),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `IS [NOT] NULL` (`true`: `IS NOT NULL`).
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] TRUE|FALSE`: (expr, the value tested, negated).
    IsBool(Box<Expr>, bool, bool),
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `field IN ('a', 'b')`, `field = 'a'` (and their negations): the
    /// common filter, compiled to a few integer compares per literal.
    FieldInStrings {
        slot: u16,
        values: StringSet,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        matcher: Matcher,
        negated: bool,
    },
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Coalesce(Vec<Expr>),
    /// `CAST(e AS t)`; `counted`: false for `TRY_CAST`, whose failures are
    /// expected and not runtime errors.
    Cast {
        expr: Box<Expr>,
        to: Ty,
        counted: bool,
    },
    Call(Func, Vec<Expr>),
}

/// One column of a projection.
#[derive(Debug)]
pub(super) struct Column {
    /// `,"key":` as written to the output, escaped (without the comma
    /// when it is the record's first member).
    pub key_json: Box<[u8]>,
    /// The key unescaped (what `SELECT *, x AS key` drops from the line).
    pub key: Box<[u8]>,
    pub value: ColumnValue,
}

#[derive(Debug)]
pub(super) enum ColumnValue {
    /// A plain field reference: its raw bytes are copied from the line.
    Field(u16),
    Expr(Expr),
}

#[derive(Debug)]
pub(super) enum Projection {
    /// `SELECT *`: the line's bytes as they are.
    Keep,
    /// `SELECT a, b AS c, expr AS d`.
    Columns(Vec<Column>),
    /// `SELECT * [EXCEPT (…)][, expr AS new…]`: the line's top-level members
    /// minus `drop` (every occurrence), then `appended`.
    Star {
        drop: Vec<Box<[u8]>>,
        appended: Vec<Column>,
    },
}

/// The keys of one path into a record, from the outermost.
pub(super) type KeyPath = Vec<Box<[u8]>>;

/// A compiled query or condition.
#[derive(Debug)]
pub(super) struct Program {
    /// The fields named: slot `i` of [`Expr::Field`] is the first of
    /// `paths[i]` found in the line (one dotted name can be spelled as
    /// nested keys or as keys with dots in them).
    pub paths: Vec<Vec<KeyPath>>,
    pub filter: Option<Expr>,
    pub projection: Projection,
    /// The bytes of string literals (`Src::Const` spans).
    pub consts: Vec<u8>,
    pub regexes: Vec<Regex>,
}

impl Program {
    /// Registers this program's paths in `fields` (shared by every program
    /// a transformer runs) and returns each slot's index there.
    pub fn register(&self, fields: &mut Fields) -> Vec<u16> {
        self.paths.iter().map(|paths| fields.add(paths)).collect()
    }

    /// See `Query::fields_besides_body`.
    pub fn fields_besides_body(&self) -> Vec<String> {
        self.paths
            .iter()
            .filter_map(|spellings| spellings.first())
            .map(|keys| {
                let keys: Vec<_> = keys
                    .iter()
                    .map(|key| String::from_utf8_lossy(key))
                    .collect();
                keys.join(".")
            })
            .filter(|name| name != "body")
            .collect()
    }

    pub fn needs_members(&self) -> bool {
        matches!(self.projection, Projection::Star { .. })
    }
}
