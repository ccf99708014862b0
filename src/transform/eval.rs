//! Evaluating an [`Expr`] over one located record, with SQL's three-valued
//! logic. A runtime error (a string compared with a number, a failed CAST,
//! overflow, division by zero…) gives NULL and counts one in
//! [`Cx::errors`]; nothing here panics on data or allocates once the
//! arena has grown to its working size.

use super::expr::{ArithOp, CmpOp, Expr, Matcher, Ty};
use super::raw::{StringSet, bytes_eq};
use super::record::{Slot, Span, Src, Val};
use std::cmp::Ordering;

/// A string compared with a value of another type: NULL, and an error.
pub(super) struct TypeMismatch;

/// [`Expr::FieldInStrings`] of a field's `value` (`bytes` reads a string's
/// span): `None` for NULL. Also evaluated without a [`Cx`], for a filter
/// that is only this.
#[inline]
pub(super) fn in_strings<'b>(
    value: Val,
    values: &StringSet,
    negated: bool,
    bytes: impl FnOnce(Span) -> &'b [u8],
) -> Result<Option<bool>, TypeMismatch> {
    match value {
        Val::Null => Ok(None),
        Val::Str(span) => Ok(Some(values.contains(bytes(span)) != negated)),
        _ => Err(TypeMismatch),
    }
}

/// Per-line buffers that outlive one program's evaluation: the arena of
/// computed strings and the staging copy functions read from.
pub(super) struct Scratchpad {
    pub arena: Vec<u8>,
    pub tmp: Vec<u8>,
    pub json: crate::json_parse::PaddedParser,
    pub now: super::functions::NowCache,
    pub locations: Vec<Vec<regex::bytes::CaptureLocations>>,
}

/// Everything one program's evaluation over one line reads and writes.
pub(super) struct Cx<'a> {
    pub line: &'a [u8],
    pub scratch: &'a [u8],
    pub consts: &'a [u8],
    pub slots: &'a [Slot],
    /// Program slot → transformer slot.
    pub map: &'a [u16],
    pub regexes: &'a [regex::bytes::Regex],
    pub locations: &'a mut [regex::bytes::CaptureLocations],
    pub arena: &'a mut Vec<u8>,
    pub tmp: &'a mut Vec<u8>,
    pub json: &'a mut crate::json_parse::PaddedParser,
    pub now: &'a mut super::functions::NowCache,
    /// A computed string longer than this is NULL (and an error): the
    /// arena and the output stay bounded by construction.
    pub max_string_bytes: usize,
    pub errors: u32,
}

impl Cx<'_> {
    pub fn bytes(&self, span: Span) -> &[u8] {
        let buffer: &[u8] = match span.src {
            Src::Line => self.line,
            Src::Scratch => self.scratch,
            Src::Arena => self.arena,
            Src::Const => self.consts,
        };
        &buffer[span.range()]
    }

    #[inline]
    pub fn slot(&self, slot: u16) -> Slot {
        self.slots[usize::from(self.map[usize::from(slot)])]
    }

    /// Counts a runtime error; its value is NULL.
    pub fn fail(&mut self) -> Val {
        self.errors += 1;
        Val::Null
    }

    /// The arena from `start` as a string result, or NULL (an error) when
    /// it grew past the bound.
    pub fn finish_string(&mut self, start: usize) -> Val {
        let len = self.arena.len() - start;
        if len > self.max_string_bytes {
            self.arena.truncate(start);
            return self.fail();
        }
        Val::Str(Span::new(Src::Arena, start, len))
    }

    /// Copies `span`'s bytes to the end of `tmp` (so a function can read
    /// them while it appends to the arena) and returns where they are.
    pub fn stage(&mut self, span: Span) -> std::ops::Range<usize> {
        let start = self.tmp.len();
        let buffer: &[u8] = match span.src {
            Src::Line => self.line,
            Src::Scratch => self.scratch,
            Src::Arena => self.arena,
            Src::Const => self.consts,
        };
        self.tmp.extend_from_slice(&buffer[span.range()]);
        start..self.tmp.len()
    }

    /// AND (`decisive` false) or OR (`decisive` true), three-valued: a side
    /// that is `decisive` decides (the right is not evaluated when the left
    /// does), both sides the other way give the other way, else NULL.
    fn connective(&mut self, left: &Expr, right: &Expr, decisive: bool) -> Val {
        let left = self.eval_bool(left);
        if left == Some(decisive) {
            return Val::Bool(decisive);
        }
        match (left, self.eval_bool(right)) {
            (_, Some(right)) if right == decisive => Val::Bool(decisive),
            (Some(_), Some(_)) => Val::Bool(!decisive),
            _ => Val::Null,
        }
    }

    pub fn eval(&mut self, expr: &Expr) -> Val {
        match expr {
            Expr::Field(slot) => self.slot(*slot).val,
            Expr::Const(val) => *val,
            Expr::Not(inner) => match self.eval_bool(inner) {
                Some(b) => Val::Bool(!b),
                None => Val::Null,
            },
            Expr::And(left, right) => self.connective(left, right, false),
            Expr::Or(left, right) => self.connective(left, right, true),
            Expr::Cmp(op, left, right) => {
                let left = self.eval(left);
                let right = self.eval(right);
                match self.compare(left, right, *op) {
                    Some(b) => Val::Bool(b),
                    None => Val::Null,
                }
            }
            Expr::IsNull(inner, negated) => {
                let is_null = matches!(self.eval(inner), Val::Null);
                Val::Bool(is_null != *negated)
            }
            Expr::IsBool(inner, value, negated) => {
                let is = self.eval_bool(inner) == Some(*value);
                Val::Bool(is != *negated)
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                let value = self.eval(expr);
                if matches!(value, Val::Null) {
                    return Val::Null;
                }
                let mut unknown = false;
                for item in list {
                    let item = self.eval(item);
                    match self.compare(value, item, CmpOp::Eq) {
                        Some(true) => return Val::Bool(!negated),
                        Some(false) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    Val::Null
                } else {
                    Val::Bool(*negated)
                }
            }
            Expr::FieldInStrings {
                slot,
                values,
                negated,
            } => {
                let value = self.slot(*slot).val;
                match in_strings(value, values, *negated, |span| self.bytes(span)) {
                    Ok(Some(b)) => Val::Bool(b),
                    Ok(None) => Val::Null,
                    Err(TypeMismatch) => self.fail(),
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let value = self.eval(expr);
                let low = self.eval(low);
                let high = self.eval(high);
                let above = self.compare(value, low, CmpOp::GtEq);
                let below = self.compare(value, high, CmpOp::LtEq);
                let within = match (above, below) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                match within {
                    Some(b) => Val::Bool(b != *negated),
                    None => Val::Null,
                }
            }
            Expr::Like {
                expr,
                matcher,
                negated,
            } => match self.eval(expr) {
                Val::Null => Val::Null,
                Val::Str(span) => Val::Bool(like(matcher, self.bytes(span)) != *negated),
                _ => self.fail(),
            },
            Expr::Arith(op, left, right) => {
                let left = self.eval(left);
                let right = self.eval(right);
                self.arith(*op, left, right)
            }
            Expr::Neg(inner) => match self.eval(inner) {
                Val::Null => Val::Null,
                Val::Int(n) => n.checked_neg().map_or_else(|| self.fail(), Val::Int),
                Val::Double(x) => Val::Double(-x),
                _ => self.fail(),
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let operand = operand.as_ref().map(|operand| self.eval(operand));
                for (condition, result) in whens {
                    let holds = match operand {
                        None => self.eval_bool(condition) == Some(true),
                        Some(value) => {
                            let candidate = self.eval(condition);
                            self.compare(value, candidate, CmpOp::Eq) == Some(true)
                        }
                    };
                    if holds {
                        return self.eval(result);
                    }
                }
                match otherwise {
                    Some(otherwise) => self.eval(otherwise),
                    None => Val::Null,
                }
            }
            Expr::Coalesce(items) => {
                for item in items {
                    let value = self.eval(item);
                    if !matches!(value, Val::Null) {
                        return value;
                    }
                }
                Val::Null
            }
            Expr::Cast { expr, to, counted } => {
                let value = self.eval(expr);
                match self.cast(value, *to) {
                    Some(value) => value,
                    None if *counted => self.fail(),
                    None => Val::Null,
                }
            }
            Expr::Call(func, args) => self.call(func, args),
        }
    }

    /// A boolean operand: `None` for NULL; a value that is not a boolean
    /// counts an error and is NULL.
    pub fn eval_bool(&mut self, expr: &Expr) -> Option<bool> {
        match self.eval(expr) {
            Val::Bool(b) => Some(b),
            Val::Null => None,
            _ => {
                self.errors += 1;
                None
            }
        }
    }

    /// `left op right`; `None` when either is NULL, or (an error) when
    /// their types cannot be compared.
    pub fn compare(&mut self, left: Val, right: Val, op: CmpOp) -> Option<bool> {
        let ordering = match (left, right) {
            (Val::Null, _) | (_, Val::Null) => return None,
            (Val::Int(a), Val::Int(b)) => a.cmp(&b),
            (Val::Int(a), Val::Double(b)) => compare_int_double(a, b)?,
            (Val::Double(a), Val::Int(b)) => compare_int_double(b, a)?.reverse(),
            (Val::Double(a), Val::Double(b)) => a.partial_cmp(&b)?,
            (Val::Bool(a), Val::Bool(b)) => a.cmp(&b),
            (Val::Str(a), Val::Str(b)) => {
                if matches!(op, CmpOp::Eq | CmpOp::NotEq) {
                    let equal = bytes_eq(self.bytes(a), self.bytes(b));
                    return Some(equal == (op == CmpOp::Eq));
                }
                self.bytes(a).cmp(self.bytes(b))
            }
            (Val::Json(a), Val::Json(b)) if matches!(op, CmpOp::Eq | CmpOp::NotEq) => {
                // Arrays and objects are equal when written the same.
                self.bytes(a).cmp(self.bytes(b))
            }
            _ => {
                self.errors += 1;
                return None;
            }
        };
        Some(match op {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::NotEq => ordering != Ordering::Equal,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::LtEq => ordering != Ordering::Greater,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::GtEq => ordering != Ordering::Less,
        })
    }

    fn arith(&mut self, op: ArithOp, left: Val, right: Val) -> Val {
        let (a, b) = match (left, right) {
            (Val::Null, _) | (_, Val::Null) => return Val::Null,
            (Val::Int(a), Val::Int(b)) if op != ArithOp::Div => {
                let result = match op {
                    ArithOp::Add => a.checked_add(b),
                    ArithOp::Sub => a.checked_sub(b),
                    ArithOp::Mul => a.checked_mul(b),
                    // checked_rem: None for b == 0 and for MIN % -1.
                    ArithOp::Mod => a.checked_rem(b),
                    ArithOp::Div => None,
                };
                return result.map_or_else(|| self.fail(), Val::Int);
            }
            (Val::Int(a), Val::Int(b)) => (a as f64, b as f64),
            (Val::Int(a), Val::Double(b)) => (a as f64, b),
            (Val::Double(a), Val::Int(b)) => (a, b as f64),
            (Val::Double(a), Val::Double(b)) => (a, b),
            _ => return self.fail(),
        };
        match op {
            ArithOp::Add => Val::Double(a + b),
            ArithOp::Sub => Val::Double(a - b),
            ArithOp::Mul => Val::Double(a * b),
            ArithOp::Div | ArithOp::Mod if b == 0.0 => self.fail(),
            ArithOp::Div => Val::Double(a / b),
            ArithOp::Mod => Val::Double(a % b),
        }
    }

    /// `CAST(value AS to)`; `None` when the value does not convert.
    fn cast(&mut self, value: Val, to: Ty) -> Option<Val> {
        Some(match (value, to) {
            (Val::Null, _) => Val::Null,
            (Val::Int(_), Ty::Int)
            | (Val::Double(_), Ty::Double)
            | (Val::Bool(_), Ty::Bool)
            | (Val::Str(_), Ty::Str) => value,
            (Val::Int(n), Ty::Double) => Val::Double(n as f64),
            (Val::Double(x), Ty::Int) => {
                // DuckDB rounds half away from zero; out of range fails.
                let rounded = x.round();
                if rounded.is_finite() && rounded >= -(2f64.powi(63)) && rounded < 2f64.powi(63) {
                    Val::Int(rounded as i64)
                } else {
                    return None;
                }
            }
            (Val::Bool(b), Ty::Int) => Val::Int(i64::from(b)),
            (Val::Bool(b), Ty::Double) => Val::Double(if b { 1.0 } else { 0.0 }),
            (Val::Int(n), Ty::Bool) => Val::Bool(n != 0),
            (Val::Double(x), Ty::Bool) => Val::Bool(x != 0.0),
            (Val::Str(span), Ty::Int) => {
                // As DuckDB: the trimmed text as an integer, else as a
                // number rounded half away from zero ('1.5' → 2).
                let text = std::str::from_utf8(self.bytes(span)).ok()?.trim();
                match text.parse() {
                    Ok(n) => Val::Int(n),
                    Err(_) => return self.cast(Val::Double(text.parse().ok()?), Ty::Int),
                }
            }
            (Val::Str(span), Ty::Double) => {
                let text = std::str::from_utf8(self.bytes(span)).ok()?.trim();
                Val::Double(text.parse().ok()?)
            }
            (Val::Str(span), Ty::Bool) => {
                // DuckDB's words, in any case, untrimmed.
                let text = self.bytes(span);
                let is = |word: &[u8]| text.eq_ignore_ascii_case(word);
                if is(b"true") || is(b"t") || is(b"1") || is(b"yes") || is(b"y") {
                    Val::Bool(true)
                } else if is(b"false") || is(b"f") || is(b"0") || is(b"no") || is(b"n") {
                    Val::Bool(false)
                } else {
                    return None;
                }
            }
            (_, Ty::Str) => {
                let start = self.arena.len();
                self.write_text(value);
                self.finish_string(start)
            }
            _ => return None,
        })
    }

    /// Appends `value` as text (what CAST AS VARCHAR and concat give) to
    /// the arena; NULL appends nothing.
    pub fn write_text(&mut self, value: Val) {
        use std::io::Write as _;
        match value {
            Val::Null => {}
            Val::Bool(b) => self
                .arena
                .extend_from_slice(if b { b"true" } else { b"false" }),
            // Writing into a Vec cannot fail.
            Val::Int(n) => {
                let _ = write!(self.arena, "{n}");
            }
            Val::Double(x) => write_double(self.arena, x),
            Val::Str(span) | Val::Json(span) => {
                let range = self.stage(span);
                self.arena.extend_from_slice(&self.tmp[range.clone()]);
                self.tmp.truncate(range.start);
            }
        }
    }
}

/// A DOUBLE as text, as DuckDB writes it: shortest round-trip digits,
/// plain between 1e-5 and 1e16 (`1.5`, `3.0`, `0.0001`), else with a signed
/// two-digit exponent (`1e+20`, `1e-05`); `nan`, `inf` and `-inf` for the
/// non-finite.
pub(super) fn write_double(out: &mut Vec<u8>, x: f64) {
    let mut text = [0u8; 32];
    out.extend_from_slice(format_double(x, &mut text));
}

/// [`write_double`]'s text, in `text` (24 bytes at the most).
pub(super) fn format_double(x: f64, text: &mut [u8; 32]) -> &[u8] {
    use std::io::Write as _;
    if x.is_nan() {
        return b"nan";
    }
    if x.is_infinite() {
        return if x > 0.0 { b"inf" } else { b"-inf" };
    }
    if x == 0.0 || (1e-4..1e16).contains(&x.abs()) {
        let mut buffer = ryu::Buffer::new();
        let digits = buffer.format_finite(x).as_bytes();
        text[..digits.len()].copy_from_slice(digits);
        return &text[..digits.len()];
    }
    // `{:e}` is the shortest round-trip form too (`1e20`, `1.5e-10`);
    // DuckDB signs the exponent and gives it two digits at least.
    let mut plain = [0u8; 32];
    let len = {
        let mut cursor = &mut plain[..];
        // At most 24 bytes (`-2.2250738585072014e-308`): it fits.
        let _ = write!(cursor, "{x:e}");
        32 - cursor.len()
    };
    let Some(at) = plain[..len].iter().position(|&b| b == b'e') else {
        // Not reached: `{:e}` writes an exponent.
        text[..len].copy_from_slice(&plain[..len]);
        return &text[..len];
    };
    let negative = plain[at + 1] == b'-';
    let digits = len - at - 1 - usize::from(negative);
    text[..=at].copy_from_slice(&plain[..=at]);
    let mut end = at + 1;
    text[end] = if negative { b'-' } else { b'+' };
    end += 1;
    if digits < 2 {
        text[end] = b'0';
        end += 1;
    }
    text[end..end + digits].copy_from_slice(&plain[len - digits..len]);
    &text[..end + digits]
}

/// Compares an integer with a double exactly (no rounding of large
/// integers); `None` for NaN.
fn compare_int_double(a: i64, b: f64) -> Option<Ordering> {
    if b.is_nan() {
        return None;
    }
    // 2^63: the first double past i64::MAX.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if b >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if b < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let truncated = b.trunc();
    match a.cmp(&(truncated as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(b - truncated)),
        other => Some(other),
    }
}

fn like(matcher: &Matcher, text: &[u8]) -> bool {
    match matcher {
        Matcher::Exact(literal) => text == &literal[..],
        Matcher::Prefix(literal) => text.starts_with(literal),
        Matcher::Suffix(literal) => text.ends_with(literal),
        Matcher::Contains(finder) => finder.find(text).is_some(),
        Matcher::Regex(regex) => regex.is_match(text),
    }
}
