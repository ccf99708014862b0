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
//!
//! How it fits: `compile.rs` and `compile_expr.rs` turn sqlparser's AST
//! into a `Program` (`expr.rs`) over field slots; `record.rs` parses a line
//! with simd-json (that parse is the validity check: [`Outcome::Invalid`]
//! exactly when `JsonChecker::is_valid` is false for a line of up to
//! `max_line_bytes`; a longer one is parsed, not refused) and fills the slots in one
//! tape walk; `eval.rs` and `functions.rs` evaluate; `project.rs` writes the
//! projected object.
//!
//! Semantics (docs/transform.md "Semantics" says it for users):
//! - Identifiers match JSON keys case-sensitively, exactly as written,
//!   quoted or not; a quoted identifier is one key (`"a.b"` is the key
//!   `a.b`); an unquoted dotted name is any spelling of it (`a.b`: `b`
//!   inside `a`, or the key `a.b`; `resource.service.name` finds OTLP's
//!   `{"resource":{"service.name":…}}`), the first found in the line
//!   winning; an unquoted leading `logs.` is the table (`logs.level` is
//!   `level`).
//! - Duplicate keys: the first occurrence wins (so the walk stops once every
//!   named field was seen).
//! - JSON strings, integers (i64; past it a DOUBLE), doubles, booleans and
//!   null map to VARCHAR, BIGINT, DOUBLE, BOOLEAN and NULL; arrays and
//!   objects are JSON values, equal when their raw bytes are.
//! - A string compared with a number is NULL at run time (an error) and a
//!   start-up [`CompileError`] when both types are known; BIGINT and DOUBLE
//!   compare numerically. `/` gives DOUBLE (DuckDB); division by zero and
//!   integer overflow are NULL (an error).
//! - Runtime errors (a failed CAST, a regex on a non-string, a computed
//!   string longer than the line bound…) give NULL and are counted in
//!   [`LineResult::errors`]; nothing panics on data.
//! - `SELECT *` [WHERE] keeps the line's bytes ([`Outcome::Kept`]); other
//!   queries write a new object ([`Outcome::Projected`]): keys in SELECT
//!   order, a plain field reference copies the value's raw bytes, computed
//!   values are written in their JSON types. `SELECT *, e AS k` drops the
//!   line's own `k` members and appends `k`.
//! - `now()` is RFC 3339 UTC with milliseconds, read per record.
//! - Routes see the line's record, not the query's projection.

mod compile;
mod compile_expr;
mod eval;
mod expr;
mod functions;
mod project;
mod raw;
mod record;
#[cfg(test)]
mod tests;

use eval::{Cx, Scratchpad};
use expr::{Program, Projection};
use record::{Fields, JsonParse, Member, Parsed, Slot};
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
    program: Program,
    normalized: String,
}

impl Query {
    pub fn compile(sql: &str) -> Result<Self, CompileError> {
        let (program, normalized) = compile::compile_query(sql)?;
        Ok(Self {
            program,
            normalized,
        })
    }

    /// The query printed back normalised (what `ringway check` shows).
    pub fn normalized(&self) -> String {
        self.normalized.clone()
    }

    /// The fields the query names other than `body`, each as its first
    /// spelling (keys joined with dots): on a `raw` lane those are always
    /// NULL, which start-up warns about.
    pub fn fields_besides_body(&self) -> Vec<String> {
        self.program.fields_besides_body()
    }

    /// True for `SELECT *` with or without `WHERE`: kept lines keep their
    /// original bytes, so a batch whose lines are all kept passes on as is.
    pub fn keeps_lines(&self) -> bool {
        matches!(self.program.projection, Projection::Keep)
    }

    /// True for `SELECT * FROM logs` without `WHERE`: every record is its
    /// line as it is, so a lane passes each batch on as without a query.
    pub fn is_identity(&self) -> bool {
        self.keeps_lines() && self.program.filter.is_none()
    }
}

/// A compiled route condition: one boolean SQL expression.
#[derive(Debug)]
pub(crate) struct Condition {
    program: Program,
    normalized: String,
}

impl Condition {
    pub fn compile(expr: &str) -> Result<Self, CompileError> {
        let (program, normalized) = compile::compile_condition(expr)?;
        Ok(Self {
            program,
            normalized,
        })
    }

    /// The expression printed back normalised.
    pub fn normalized(&self) -> String {
        self.normalized.clone()
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

// One route bit per output in `LineResult::routes`.
const _: () = assert!(crate::config::MAX_OUTPUTS <= u64::BITS as usize);

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

/// The first size of [`Transformer::output`]'s room: a few of the
/// ~200-byte records most lines make.
const OUTPUT_START_BYTES: usize = 1024;

/// One per CPU worker: evaluates the query and the routes over one line at
/// a time, allocation-free after warm-up.
pub(crate) struct Transformer {
    query: Option<Arc<Query>>,
    routes: Vec<Option<Arc<Condition>>>,
    /// When no route has a condition, the routes every record takes.
    unconditional_routes: Option<u64>,
    /// Every field the query and the routes name, located in one walk.
    fields: Fields,
    /// Per program (the query first, then each route): its slot → `slots`.
    maps: Vec<Vec<u16>>,
    /// A `*` projection needs the list of the line's top-level members.
    needs_members: bool,
    /// The query's projection when all its columns are plain fields.
    plain: Option<project::PlainColumns>,
    parse: JsonParse,
    slots: Vec<Slot>,
    members: Vec<Member>,
    pad: Scratchpad,
    max_line_bytes: usize,
    /// The line last evaluated is an object (its members are listed).
    is_object: bool,
    /// Room for [`Transformer::output`]: its first `output_len` bytes are
    /// the record. Written as a [`project::Room`] (short inline copies, no
    /// capacity check per piece) and doubled when a record does not fit.
    output: Vec<u8>,
    output_len: usize,
}

/// The program of each slot of [`Transformer::maps`]: the query's (if any)
/// then the routes'.
fn programs<'a>(
    query: &'a Option<Arc<Query>>,
    routes: &'a [Option<Arc<Condition>>],
) -> impl Iterator<Item = Option<&'a Program>> {
    std::iter::once(query.as_ref().map(|query| &query.program)).chain(
        routes
            .iter()
            .map(|route| route.as_ref().map(|route| &route.program)),
    )
}

/// The located line every program of a transformer evaluates over.
struct Record<'a> {
    line: &'a [u8],
    scratch: &'a [u8],
    slots: &'a [Slot],
    maps: &'a [Vec<u16>],
    max_string_bytes: usize,
}

impl<'a> Record<'a> {
    fn new(
        line: &'a [u8],
        parse: &'a JsonParse,
        slots: &'a [Slot],
        maps: &'a [Vec<u16>],
        max_string_bytes: usize,
    ) -> Self {
        Self {
            line,
            scratch: parse.scratch(),
            slots,
            maps,
            max_string_bytes,
        }
    }

    /// The bytes of a slot's string (the walk's are in the line or the
    /// scratch).
    fn bytes(&self, span: record::Span) -> &'a [u8] {
        let buffer = match span.src {
            record::Src::Line => self.line,
            record::Src::Scratch => self.scratch,
            record::Src::Arena | record::Src::Const => {
                debug_assert!(false, "slots hold no computed strings");
                &[]
            }
        };
        buffer.get(span.range()).unwrap_or_default()
    }

    /// An evaluation of program `index` (0: the query, then the routes).
    fn cx<'p>(&'p self, index: usize, program: &'p Program, pad: &'p mut Scratchpad) -> Cx<'p> {
        let Scratchpad {
            arena,
            tmp,
            json,
            now,
            locations,
        } = pad;
        Cx {
            line: self.line,
            scratch: self.scratch,
            consts: &program.consts,
            slots: self.slots,
            map: &self.maps[index],
            regexes: &program.regexes,
            locations: &mut locations[index],
            arena,
            tmp,
            json,
            now,
            max_string_bytes: self.max_string_bytes,
            errors: 0,
        }
    }
}

impl Transformer {
    /// `routes`: one entry per output, in output order (`None`: takes every
    /// record). `max_line_bytes`: the longest line it will be given (a
    /// longer one makes the parse buffers grow once to it; a computed
    /// string longer than this is NULL).
    pub fn new(
        query: Option<Arc<Query>>,
        routes: Vec<Option<Arc<Condition>>>,
        max_line_bytes: usize,
    ) -> Self {
        let mut fields = Fields::default();
        let mut maps = Vec::new();
        let mut locations = Vec::new();
        let mut needs_members = false;
        for program in programs(&query, &routes) {
            match program {
                Some(program) => {
                    maps.push(program.register(&mut fields));
                    locations.push(
                        program
                            .regexes
                            .iter()
                            .map(|regex| regex.capture_locations())
                            .collect(),
                    );
                    needs_members |= program.needs_members();
                }
                None => {
                    maps.push(Vec::new());
                    locations.push(Vec::new());
                }
            }
        }
        if query.as_ref().is_none_or(|query| query.keeps_lines()) {
            // Only a projection copies raw bytes; filters and routes
            // read values.
            fields.skip_raw_spans();
        }
        let slots = vec![record::Slot::MISSING; fields.slot_count()];
        let plain = query
            .as_ref()
            .and_then(|query| project::PlainColumns::new(&query.program.projection, &maps[0]));
        let unconditional_routes = routes.iter().all(Option::is_none).then(|| {
            (0..routes.len().min(u64::BITS as usize)).fold(0u64, |mask, index| mask | 1 << index)
        });
        Self {
            query,
            routes,
            unconditional_routes,
            fields,
            maps,
            needs_members,
            plain,
            parse: JsonParse::new(max_line_bytes),
            slots,
            members: Vec::new(),
            pad: Scratchpad {
                arena: Vec::new(),
                tmp: Vec::new(),
                // Grown on the first json_extract (most queries have none).
                json: crate::json_parse::PaddedParser::new(0),
                now: functions::NowCache::new(),
                locations,
            },
            max_line_bytes,
            is_object: false,
            // Grows to the longest record written (bounded: every value is
            // at most max_line_bytes); most are far shorter than a line limit.
            output: Vec::new(),
            output_len: 0,
        }
    }

    /// True when the transformer keeps every line as it is: no query or
    /// `SELECT * FROM logs` without `WHERE`, and no route with a condition.
    /// Its only work is then the JSON check, [`Transformer::is_valid_json`].
    pub fn is_identity(&self) -> bool {
        self.query.as_ref().is_none_or(|query| query.is_identity())
            && self.routes.iter().all(Option::is_none)
    }

    /// True unless `line` (without its `\n`) is [`Outcome::Invalid`] as
    /// [`Shape::Json`]; for an identity transformer, exactly what
    /// [`Transformer::process`] would say, without evaluating anything.
    pub fn is_valid_json(&mut self, line: &[u8]) -> bool {
        let members = self.needs_members.then_some(&mut self.members);
        let parsed = self
            .parse
            .locate(line, &self.fields, &mut self.slots, members);
        parsed != Parsed::Invalid
    }

    /// Evaluates one line (without its `\n`); a projected record is
    /// written to [`Transformer::output`].
    pub fn process(&mut self, line: &[u8], shape: Shape) -> LineResult {
        let mut result = self.select(line, shape);
        if result.outcome == Outcome::Projected {
            result.errors += self.project_again(line);
        }
        result
    }

    /// [`Transformer::process`], writing a projected record straight into
    /// `room` instead: for [`Outcome::Projected`], how many bytes of `room`
    /// it took, or `None` when it did not fit (then nothing of it counts:
    /// [`Transformer::project_into`] or [`Transformer::project_again`]
    /// write the same record elsewhere).
    pub fn process_into(
        &mut self,
        line: &[u8],
        shape: Shape,
        room: &mut [u8],
    ) -> (LineResult, Option<usize>) {
        let mut result = self.select(line, shape);
        if result.outcome != Outcome::Projected {
            return (result, None);
        }
        let (written, errors) = self.project_into(line, room);
        if written.is_some() {
            result.errors += errors;
        }
        (result, written)
    }

    /// Writes the projected record of `line`, the line last given to
    /// [`Transformer::process_into`], into `room`: the bytes it took (or
    /// `None`, as there) and its runtime errors.
    pub fn project_into(&mut self, line: &[u8], room: &mut [u8]) -> (Option<usize>, u32) {
        let mut out = project::Room::new(room);
        let errors = self.project(line, &mut out);
        (out.written(), errors)
    }

    /// Writes the projected record of `line`, the line last evaluated, to
    /// [`Transformer::output`]; returns its runtime errors.
    pub fn project_again(&mut self, line: &[u8]) -> u32 {
        let mut output = std::mem::take(&mut self.output);
        let errors = loop {
            let mut room = project::Room::new(&mut output);
            let errors = self.project(line, &mut room);
            if let Some(len) = room.written() {
                self.output_len = len;
                break errors;
            }
            // Not written whole: doubled and written again. Bounded: a
            // record is at most its values (each at most a line) and keys.
            let grown = (output.len() * 2).max(OUTPUT_START_BYTES);
            output.resize(grown, 0);
        };
        self.output = output;
        errors
    }

    /// The query's projection of `line` (the line last evaluated) to `out`;
    /// returns its runtime errors.
    fn project(&mut self, line: &[u8], out: &mut impl project::Out) -> u32 {
        let Self {
            query,
            maps,
            plain,
            parse,
            slots,
            members,
            pad,
            max_line_bytes,
            is_object,
            ..
        } = self;
        let Some(query) = query else {
            return 0;
        };
        if let Some(plain) = plain
            && plain.write(line, slots, out)
        {
            return 0;
        }
        let record = Record::new(line, parse, slots, maps, *max_line_bytes);
        let mut eval = record.cx(0, &query.program, pad);
        let members = is_object.then_some(&members[..]);
        eval.project(&query.program.projection, members, out);
        eval.errors
    }

    /// Parses `line` and evaluates the query's filter and the routes: the
    /// outcome, [`Outcome::Projected`] before the record is written (by
    /// [`Transformer::project_into`]); all of [`Transformer::process`] for
    /// a query that keeps lines. Inline: a filter's batch loop calls it
    /// for every line.
    #[inline(always)]
    pub fn select(&mut self, line: &[u8], shape: Shape) -> LineResult {
        let is_object = match shape {
            Shape::Json => {
                let members = self.needs_members.then_some(&mut self.members);
                match self
                    .parse
                    .locate(line, &self.fields, &mut self.slots, members)
                {
                    Parsed::Invalid => {
                        return LineResult {
                            outcome: Outcome::Invalid,
                            routes: 0,
                            errors: 0,
                        };
                    }
                    Parsed::Object => true,
                    Parsed::NotObject => false,
                }
            }
            Shape::Raw => {
                self.fields.fill_body(line.len(), &mut self.slots);
                false
            }
        };
        self.is_object = is_object;
        self.pad.arena.clear();
        self.pad.tmp.clear();
        let mut errors = 0;
        let Self {
            query,
            routes,
            unconditional_routes,
            maps,
            parse,
            slots,
            pad,
            max_line_bytes,
            ..
        } = self;
        let record = Record::new(line, parse, slots, maps, *max_line_bytes);
        if let Some(query) = query
            && let Some(filter) = &query.program.filter
        {
            let keep = match filter {
                // The common filter, read straight from its slot.
                expr::Expr::FieldInStrings {
                    slot,
                    values,
                    negated,
                } => {
                    let value = record.slots[usize::from(record.maps[0][usize::from(*slot)])].val;
                    match eval::in_strings(value, values, *negated, |span| record.bytes(span)) {
                        Ok(holds) => holds == Some(true),
                        Err(eval::TypeMismatch) => {
                            errors += 1;
                            false
                        }
                    }
                }
                _ => {
                    let mut eval = record.cx(0, &query.program, pad);
                    let keep = eval.eval_bool(filter) == Some(true);
                    errors += eval.errors;
                    keep
                }
            };
            if !keep {
                return LineResult {
                    outcome: Outcome::Filtered,
                    routes: 0,
                    errors,
                };
            }
        }
        let mut taken = 0u64;
        let conditions = match unconditional_routes {
            // No route has a condition: every output takes the record.
            Some(every) => {
                taken = *every;
                &routes[..0]
            }
            None => &routes[..],
        };
        for (index, route) in conditions.iter().enumerate().take(u64::BITS as usize) {
            let holds = match route {
                None => true,
                Some(condition) => {
                    let mut eval = record.cx(index + 1, &condition.program, pad);
                    let filter = condition.program.filter.as_ref();
                    let holds = filter.is_none_or(|filter| eval.eval_bool(filter) == Some(true));
                    errors += eval.errors;
                    holds
                }
            };
            if holds {
                taken |= 1 << index;
            }
        }
        let outcome = match query {
            Some(query) if !query.keeps_lines() => Outcome::Projected,
            _ => Outcome::Kept,
        };
        LineResult {
            outcome,
            routes: taken,
            errors,
        }
    }

    /// The record [`Transformer::process`] wrote for [`Outcome::Projected`]:
    /// one JSON object, without a newline.
    pub fn output(&self) -> &[u8] {
        &self.output[..self.output_len]
    }
}
