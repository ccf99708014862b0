//! Compiling one SQL expression: sqlparser's [`sql::Expr`] to an [`Expr`]
//! and its static [`Ty`]. Types known on both sides are checked here, so a
//! string compared with a number is a start-up error rather than a NULL on
//! every line.

use super::CompileError;
use super::compile::{Compiler, error, field_path, key_paths, unsupported};
use super::expr::{ArithOp, CmpOp, Expr, Func, JsonStep, Matcher, TrimEnds, Ty};
use super::raw::StringSet;
use super::record::Val;
use sqlparser::ast::{self as sql, Spanned};

type Compiled = Result<(Expr, Ty), CompileError>;

/// Aggregates are named as such when refused (a query sees one record at
/// a time).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "any_value",
    "first",
    "last",
    "median",
    "mode",
    "stddev",
    "variance",
    "list",
];

/// The type of `a op b` for arithmetic, or `None` when not numeric.
fn arith_type(op: ArithOp, left: Ty, right: Ty) -> Option<Ty> {
    let numeric = |ty: Ty| matches!(ty, Ty::Any | Ty::Null | Ty::Int | Ty::Double);
    if !numeric(left) || !numeric(right) {
        return None;
    }
    Some(if left == Ty::Null || right == Ty::Null {
        Ty::Null
    } else if op == ArithOp::Div || left == Ty::Double || right == Ty::Double {
        // `/` gives DOUBLE as in DuckDB; a DOUBLE operand makes it DOUBLE.
        if op == ArithOp::Div || (left != Ty::Any && right != Ty::Any) {
            Ty::Double
        } else {
            Ty::Any
        }
    } else if left == Ty::Int && right == Ty::Int {
        Ty::Int
    } else {
        Ty::Any
    })
}

/// Whether values of these static types can be compared.
fn comparable(left: Ty, right: Ty, ordered: bool) -> bool {
    match (left, right) {
        (Ty::Any | Ty::Null, _) | (_, Ty::Any | Ty::Null) => true,
        (Ty::Json, Ty::Json) => !ordered,
        (a, b) if a.is_numeric() && b.is_numeric() => true,
        (a, b) => a == b,
    }
}

/// The single type all `types` share, or `Ty::Any`.
fn common(types: impl IntoIterator<Item = Ty>) -> Ty {
    let mut result = Ty::Null;
    for ty in types {
        result = match (result, ty) {
            (Ty::Null, ty) | (ty, Ty::Null) => ty,
            (a, b) if a == b => a,
            _ => Ty::Any,
        };
    }
    result
}

impl Compiler<'_> {
    pub(super) fn expr(&mut self, expr: &sql::Expr) -> Compiled {
        let at = self.start(expr.span());
        match expr {
            sql::Expr::Identifier(ident) => Ok((
                self.field(vec![vec![ident.value.as_bytes().into()]]),
                Ty::Any,
            )),
            sql::Expr::CompoundIdentifier(idents) => {
                Ok((self.field(key_paths(field_path(idents))), Ty::Any))
            }
            sql::Expr::Value(value) => self.literal(&value.value, at),
            sql::Expr::Nested(inner) => self.expr(inner),
            sql::Expr::UnaryOp { op, expr: inner } => {
                let (inner_compiled, ty) = self.expr(inner)?;
                match op {
                    sql::UnaryOperator::Not => {
                        self.check_boolean(ty, "NOT", inner)?;
                        Ok((Expr::Not(Box::new(inner_compiled)), Ty::Bool))
                    }
                    sql::UnaryOperator::Minus | sql::UnaryOperator::Plus => {
                        if !matches!(ty, Ty::Any | Ty::Null | Ty::Int | Ty::Double) {
                            return Err(error(format!("cannot apply {op} to {ty}"), at));
                        }
                        if *op == sql::UnaryOperator::Plus {
                            Ok((inner_compiled, ty))
                        } else {
                            Ok((Expr::Neg(Box::new(inner_compiled)), ty))
                        }
                    }
                    other => Err(unsupported(format!("the operator {other}"), at)),
                }
            }
            sql::Expr::BinaryOp { left, op, right } => self.binary(left, op, right, at),
            sql::Expr::IsNull(inner) | sql::Expr::IsNotNull(inner) => {
                let (inner, _) = self.expr(inner)?;
                let negated = matches!(expr, sql::Expr::IsNotNull(_));
                Ok((Expr::IsNull(Box::new(inner), negated), Ty::Bool))
            }
            sql::Expr::IsTrue(inner)
            | sql::Expr::IsFalse(inner)
            | sql::Expr::IsNotTrue(inner)
            | sql::Expr::IsNotFalse(inner) => {
                let (compiled, ty) = self.expr(inner)?;
                self.check_boolean(ty, "IS TRUE/FALSE", inner)?;
                let (value, negated) = match expr {
                    sql::Expr::IsTrue(_) => (true, false),
                    sql::Expr::IsFalse(_) => (false, false),
                    sql::Expr::IsNotTrue(_) => (true, true),
                    _ => (false, true),
                };
                Ok((Expr::IsBool(Box::new(compiled), value, negated), Ty::Bool))
            }
            sql::Expr::In {
                expr: inner,
                target,
                negated,
                ..
            } => {
                let sql::InTarget::List(list) = target else {
                    return Err(unsupported("IN with a subquery or table", at));
                };
                let (compiled, ty) = self.expr(inner)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let (item_compiled, item_ty) = self.expr(item)?;
                    if !comparable(ty, item_ty, false) {
                        return Err(error(
                            format!("cannot compare {ty} with {item_ty}"),
                            self.start(item.span()),
                        ));
                    }
                    items.push(item_compiled);
                }
                Ok((self.field_in_strings(compiled, items, *negated), Ty::Bool))
            }
            sql::Expr::Between {
                expr: inner,
                negated,
                low,
                high,
            } => {
                let (compiled, ty) = self.expr(inner)?;
                let (low_compiled, low_ty) = self.expr(low)?;
                let (high_compiled, high_ty) = self.expr(high)?;
                for bound in [low_ty, high_ty] {
                    if !comparable(ty, bound, true) {
                        return Err(error(format!("cannot compare {ty} with {bound}"), at));
                    }
                }
                Ok((
                    Expr::Between {
                        expr: Box::new(compiled),
                        low: Box::new(low_compiled),
                        high: Box::new(high_compiled),
                        negated: *negated,
                    },
                    Ty::Bool,
                ))
            }
            sql::Expr::Like {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            }
            | sql::Expr::ILike {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY", at));
                }
                let case_insensitive = matches!(expr, sql::Expr::ILike { .. });
                let (compiled, ty) = self.expr(inner)?;
                if !matches!(ty, Ty::Any | Ty::Null | Ty::Str) {
                    return Err(error(format!("LIKE needs a VARCHAR, not {ty}"), at));
                }
                let pattern_text = self.literal_string(pattern, "a LIKE pattern")?;
                let escape = match escape_char {
                    None => None,
                    Some(escape) => {
                        let text = self.literal_string(escape, "an ESCAPE")?;
                        let mut chars = text.chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) => Some(c),
                            _ => {
                                return Err(error(
                                    "ESCAPE takes one character",
                                    self.start(escape.span()),
                                ));
                            }
                        }
                    }
                };
                let matcher = self.like_matcher(pattern_text, escape, case_insensitive, at)?;
                Ok((
                    Expr::Like {
                        expr: Box::new(compiled),
                        matcher,
                        negated: *negated,
                    },
                    Ty::Bool,
                ))
            }
            sql::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    None => None,
                    Some(operand) => Some(self.expr(operand)?),
                };
                let mut whens = Vec::with_capacity(conditions.len());
                let mut types = Vec::with_capacity(conditions.len() + 1);
                for case in conditions {
                    let (condition, condition_ty) = self.expr(&case.condition)?;
                    match &operand {
                        None => self.check_boolean(condition_ty, "WHEN", &case.condition)?,
                        Some((_, operand_ty)) if !comparable(*operand_ty, condition_ty, false) => {
                            return Err(error(
                                format!("cannot compare {operand_ty} with {condition_ty}"),
                                self.start(case.condition.span()),
                            ));
                        }
                        Some(_) => {}
                    }
                    let (result, result_ty) = self.expr(&case.result)?;
                    types.push(result_ty);
                    whens.push((condition, result));
                }
                let otherwise = match else_result {
                    None => None,
                    Some(otherwise) => {
                        let (compiled, ty) = self.expr(otherwise)?;
                        types.push(ty);
                        Some(Box::new(compiled))
                    }
                };
                Ok((
                    Expr::Case {
                        operand: operand.map(|(compiled, _)| Box::new(compiled)),
                        whens,
                        otherwise,
                    },
                    common(types),
                ))
            }
            sql::Expr::Cast {
                kind,
                expr: inner,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return Err(unsupported("CAST … FORMAT", at));
                }
                let to = match data_type {
                    sql::DataType::BigInt(_) | sql::DataType::Int64 => Ty::Int,
                    sql::DataType::Double(_)
                    | sql::DataType::DoublePrecision
                    | sql::DataType::Float8 => Ty::Double,
                    sql::DataType::Varchar(_) | sql::DataType::Text | sql::DataType::String(_) => {
                        Ty::Str
                    }
                    sql::DataType::Boolean | sql::DataType::Bool => Ty::Bool,
                    other => {
                        return Err(unsupported(
                            format!("CAST to {other} (BIGINT, DOUBLE, VARCHAR or BOOLEAN)"),
                            at,
                        ));
                    }
                };
                let (compiled, _) = self.expr(inner)?;
                Ok((
                    Expr::Cast {
                        expr: Box::new(compiled),
                        to,
                        counted: !matches!(kind, sql::CastKind::TryCast | sql::CastKind::SafeCast),
                    },
                    to,
                ))
            }
            sql::Expr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.arg(VARCHAR, inner, "substr", at)?];
                let from = match substring_from {
                    Some(from) => self.arg(BIGINT, from, "substr", at)?,
                    None => Expr::Const(Val::Int(1)),
                };
                args.push(from);
                if let Some(length) = substring_for {
                    args.push(self.arg(BIGINT, length, "substr", at)?);
                }
                Ok((Expr::Call(Func::Substr, args), Ty::Str))
            }
            sql::Expr::Trim {
                expr: inner,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let ends = match trim_where {
                    None | Some(sql::TrimWhereField::Both) => TrimEnds::Both,
                    Some(sql::TrimWhereField::Leading) => TrimEnds::Leading,
                    Some(sql::TrimWhereField::Trailing) => TrimEnds::Trailing,
                };
                let mut args = vec![self.arg(VARCHAR, inner, "trim", at)?];
                match (trim_what, trim_characters.as_deref()) {
                    (Some(what), None) => args.push(self.arg(VARCHAR, what, "trim", at)?),
                    (None, Some([what])) => args.push(self.arg(VARCHAR, what, "trim", at)?),
                    (None, None) => {}
                    _ => return Err(unsupported("this form of TRIM", at)),
                }
                Ok((Expr::Call(Func::Trim(ends), args), Ty::Str))
            }
            sql::Expr::Function(function) => self.function(function, at),
            sql::Expr::Subquery(_) | sql::Expr::Exists { .. } => Err(unsupported("a subquery", at)),
            other => Err(unsupported(format!("the expression {other}"), at)),
        }
    }

    fn literal(&mut self, value: &sql::Value, at: sqlparser::tokenizer::Location) -> Compiled {
        match value {
            sql::Value::Number(text, _) => {
                if let Ok(n) = text.parse::<i64>() {
                    Ok((Expr::Const(Val::Int(n)), Ty::Int))
                } else if let Ok(x) = text.parse::<f64>() {
                    Ok((Expr::Const(Val::Double(x)), Ty::Double))
                } else {
                    Err(error(format!("bad number {text}"), at))
                }
            }
            sql::Value::SingleQuotedString(text) => {
                Ok((Expr::Const(self.string_const(text)), Ty::Str))
            }
            sql::Value::Boolean(b) => Ok((Expr::Const(Val::Bool(*b)), Ty::Bool)),
            sql::Value::Null => Ok((Expr::Const(Val::Null), Ty::Null)),
            other => Err(unsupported(format!("the literal {other}"), at)),
        }
    }

    fn binary(
        &mut self,
        left: &sql::Expr,
        op: &sql::BinaryOperator,
        right: &sql::Expr,
        at: sqlparser::tokenizer::Location,
    ) -> Compiled {
        use sql::BinaryOperator as B;
        let (left_compiled, left_ty) = self.expr(left)?;
        let (right_compiled, right_ty) = self.expr(right)?;
        let (l, r) = (Box::new(left_compiled), Box::new(right_compiled));
        let compare = |op: CmpOp| {
            let ordered = !matches!(op, CmpOp::Eq | CmpOp::NotEq);
            if comparable(left_ty, right_ty, ordered) {
                Ok(op)
            } else {
                Err(error(
                    format!("cannot compare {left_ty} with {right_ty}"),
                    at,
                ))
            }
        };
        let arith = |op: ArithOp, sign: &str| match arith_type(op, left_ty, right_ty) {
            Some(ty) => Ok((op, ty)),
            None => Err(error(
                format!("cannot apply {sign} to {left_ty} and {right_ty}"),
                at,
            )),
        };
        let (op, ty) = match op {
            B::Eq => (compare(CmpOp::Eq)?, Ty::Bool),
            B::NotEq => (compare(CmpOp::NotEq)?, Ty::Bool),
            B::Lt => (compare(CmpOp::Lt)?, Ty::Bool),
            B::LtEq => (compare(CmpOp::LtEq)?, Ty::Bool),
            B::Gt => (compare(CmpOp::Gt)?, Ty::Bool),
            B::GtEq => (compare(CmpOp::GtEq)?, Ty::Bool),
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                let (op, ty) = match op {
                    B::Plus => arith(ArithOp::Add, "+")?,
                    B::Minus => arith(ArithOp::Sub, "-")?,
                    B::Multiply => arith(ArithOp::Mul, "*")?,
                    B::Divide => arith(ArithOp::Div, "/")?,
                    _ => arith(ArithOp::Mod, "%")?,
                };
                return Ok((Expr::Arith(op, l, r), ty));
            }
            B::And | B::Or => {
                self.check_boolean(left_ty, &op.to_string(), left)?;
                self.check_boolean(right_ty, &op.to_string(), right)?;
                return Ok((
                    if *op == B::And {
                        Expr::And(l, r)
                    } else {
                        Expr::Or(l, r)
                    },
                    Ty::Bool,
                ));
            }
            B::StringConcat => return Ok((Expr::Call(Func::ConcatOp, vec![*l, *r]), Ty::Str)),
            other => return Err(unsupported(format!("the operator {other}"), at)),
        };
        if matches!(op, CmpOp::Eq | CmpOp::NotEq) {
            // `field = 'x'` (either way round) is `field IN ('x')`.
            let negated = op == CmpOp::NotEq;
            return Ok(match (*l, *r) {
                (field @ Expr::Field(_), literal @ Expr::Const(Val::Str(_)))
                | (literal @ Expr::Const(Val::Str(_)), field @ Expr::Field(_)) => {
                    (self.field_in_strings(field, vec![literal], negated), ty)
                }
                (l, r) => (Expr::Cmp(op, Box::new(l), Box::new(r)), ty),
            });
        }
        Ok((Expr::Cmp(op, l, r), ty))
    }

    /// `expr IN (list)`, as [`Expr::FieldInStrings`] when it is a field
    /// against string literals.
    fn field_in_strings(&self, expr: Expr, list: Vec<Expr>, negated: bool) -> Expr {
        let strings: Option<Vec<Box<[u8]>>> = list
            .iter()
            .map(|item| match item {
                Expr::Const(Val::Str(span)) => Some(self.program.consts[span.range()].into()),
                _ => None,
            })
            .collect();
        match (expr, strings) {
            (Expr::Field(slot), Some(values)) => Expr::FieldInStrings {
                slot,
                values: StringSet::new(values),
                negated,
            },
            (expr, _) => Expr::In {
                expr: Box::new(expr),
                list,
                negated,
            },
        }
    }

    fn like_matcher(
        &mut self,
        pattern: &str,
        escape: Option<char>,
        case_insensitive: bool,
        at: sqlparser::tokenizer::Location,
    ) -> Result<Matcher, CompileError> {
        // Split into literal runs and wildcards; the common shapes get a
        // plain byte test, the rest an anchored regex.
        let mut regex = String::from("(?s)^");
        let mut literal = String::new();
        let mut shape: Vec<Option<String>> = Vec::new(); // None: `%`
        let mut only_percent = true;
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                let Some(escaped) = chars.next() else {
                    return Err(error("LIKE pattern ends with its ESCAPE character", at));
                };
                literal.push(escaped);
                regex.push_str(&regex::escape(&escaped.to_string()));
                continue;
            }
            match c {
                '%' => {
                    if !literal.is_empty() {
                        shape.push(Some(std::mem::take(&mut literal)));
                    }
                    shape.push(None);
                    regex.push_str(".*");
                }
                '_' => {
                    only_percent = false;
                    regex.push('.');
                }
                c => {
                    literal.push(c);
                    regex.push_str(&regex::escape(&c.to_string()));
                }
            }
        }
        if !literal.is_empty() {
            shape.push(Some(literal));
        }
        regex.push('$');
        if !case_insensitive && only_percent {
            let bytes = |text: &String| -> Box<[u8]> { text.as_bytes().into() };
            match shape.as_slice() {
                [] => return Ok(Matcher::Exact(Box::default())),
                [Some(text)] => return Ok(Matcher::Exact(bytes(text))),
                [Some(text), None] => return Ok(Matcher::Prefix(bytes(text))),
                [None, Some(text)] => return Ok(Matcher::Suffix(bytes(text))),
                [None, Some(text), None] => {
                    return Ok(Matcher::Contains(Box::new(
                        memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
                    )));
                }
                _ => {}
            }
        }
        let index = self.regex(&regex, case_insensitive, at)?;
        Ok(Matcher::Regex(self.program.regexes.swap_remove(index)))
    }

    /// `arg` compiled, or refused unless its type may be what `want` names.
    fn arg(
        &mut self,
        want: Want,
        arg: &sql::Expr,
        function: &str,
        at: sqlparser::tokenizer::Location,
    ) -> Result<Expr, CompileError> {
        let (compiled, ty) = self.expr(arg)?;
        if !(want.accepts)(ty) {
            return Err(error(
                format!("{function} needs a {}, not {ty}", want.name),
                at,
            ));
        }
        Ok(compiled)
    }

    fn function(
        &mut self,
        function: &sql::Function,
        at: sqlparser::tokenizer::Location,
    ) -> Compiled {
        let name = match function.name.0.as_slice() {
            [sql::ObjectNamePart::Identifier(ident)] => ident.value.to_ascii_lowercase(),
            _ => return Err(unsupported(format!("the function {}", function.name), at)),
        };
        if function.over.is_some() {
            return Err(unsupported(format!("the window function {name}"), at));
        }
        if AGGREGATES.contains(&name.as_str()) {
            return Err(unsupported(format!("the aggregate function {name}"), at));
        }
        if function.filter.is_some()
            || function.null_treatment.is_some()
            || !function.within_group.is_empty()
            || !matches!(function.parameters, sql::FunctionArguments::None)
        {
            return Err(unsupported(format!("this form of {name}(…)"), at));
        }
        let args: Vec<&sql::Expr> = match &function.args {
            sql::FunctionArguments::None => Vec::new(),
            sql::FunctionArguments::Subquery(_) => return Err(unsupported("a subquery", at)),
            sql::FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                    return Err(unsupported(format!("this form of {name}(…)"), at));
                }
                let mut args = Vec::with_capacity(list.args.len());
                for arg in &list.args {
                    match arg {
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(expr)) => {
                            args.push(expr)
                        }
                        other => {
                            return Err(unsupported(
                                format!("the argument {other} of {name}"),
                                self.start(other.span()),
                            ));
                        }
                    }
                }
                args
            }
        };
        let arity = |range: std::ops::RangeInclusive<usize>| {
            if range.contains(&args.len()) {
                Ok(())
            } else {
                let wanted = if range.start() == range.end() {
                    range.start().to_string()
                } else if *range.end() == usize::MAX {
                    format!("at least {}", range.start())
                } else {
                    format!("{} to {}", range.start(), range.end())
                };
                Err(error(
                    format!("{name} takes {wanted} arguments, not {}", args.len()),
                    at,
                ))
            }
        };
        match name.as_str() {
            "lower" | "upper" | "length" => {
                arity(1..=1)?;
                let arg = self.arg(VARCHAR, args[0], &name, at)?;
                let (func, ty) = match name.as_str() {
                    "lower" => (Func::Lower, Ty::Str),
                    "upper" => (Func::Upper, Ty::Str),
                    _ => (Func::Length, Ty::Int),
                };
                Ok((Expr::Call(func, vec![arg]), ty))
            }
            "concat" => {
                arity(1..=usize::MAX)?;
                let mut compiled = Vec::with_capacity(args.len());
                for arg in &args {
                    compiled.push(self.expr(arg)?.0);
                }
                Ok((Expr::Call(Func::Concat, compiled), Ty::Str))
            }
            "replace" => {
                arity(3..=3)?;
                let mut compiled = Vec::with_capacity(3);
                for arg in &args {
                    compiled.push(self.arg(VARCHAR, arg, &name, at)?);
                }
                Ok((Expr::Call(Func::Replace, compiled), Ty::Str))
            }
            "ltrim" | "rtrim" => {
                arity(1..=2)?;
                let mut compiled = Vec::with_capacity(2);
                for arg in &args {
                    compiled.push(self.arg(VARCHAR, arg, &name, at)?);
                }
                let ends = if name == "ltrim" {
                    TrimEnds::Leading
                } else {
                    TrimEnds::Trailing
                };
                Ok((Expr::Call(Func::Trim(ends), compiled), Ty::Str))
            }
            "starts_with" => {
                arity(2..=2)?;
                let s = self.arg(VARCHAR, args[0], &name, at)?;
                let prefix = self.arg(VARCHAR, args[1], &name, at)?;
                Ok((Expr::Call(Func::StartsWith, vec![s, prefix]), Ty::Bool))
            }
            "regexp_like" | "regexp_matches" => {
                arity(2..=2)?;
                let s = self.arg(VARCHAR, args[0], &name, at)?;
                let pattern = self.literal_string(args[1], "a regex pattern")?;
                let regex = self.regex(pattern, false, self.start(args[1].span()))?;
                Ok((Expr::Call(Func::RegexpLike(regex), vec![s]), Ty::Bool))
            }
            "regexp_extract" => {
                arity(2..=3)?;
                let s = self.arg(VARCHAR, args[0], &name, at)?;
                let pattern = self.literal_string(args[1], "a regex pattern")?;
                let regex = self.regex(pattern, false, self.start(args[1].span()))?;
                let group = match args.get(2) {
                    None => 0,
                    Some(group) => self.literal_int(group, "a group")?,
                };
                let groups = self.program.regexes[regex].captures_len();
                let group = usize::try_from(group)
                    .ok()
                    .filter(|&g| g < groups)
                    .ok_or_else(|| {
                        error(
                            format!(
                                "regexp_extract group {group} is not in the pattern (0 to {})",
                                groups - 1
                            ),
                            at,
                        )
                    })?;
                Ok((
                    Expr::Call(Func::RegexpExtract { regex, group }, vec![s]),
                    Ty::Str,
                ))
            }
            "regexp_replace" => {
                arity(3..=4)?;
                let s = self.arg(VARCHAR, args[0], &name, at)?;
                let pattern = self.literal_string(args[1], "a regex pattern")?;
                let replacement = self.arg(VARCHAR, args[2], &name, at)?;
                let options = match args.get(3) {
                    None => "",
                    Some(options) => self.literal_string(options, "regexp_replace options")?,
                };
                if let Some(bad) = options.chars().find(|c| !matches!(c, 'g' | 'i')) {
                    return Err(unsupported(
                        format!("the regexp_replace option {bad:?} (g, i)"),
                        at,
                    ));
                }
                let regex =
                    self.regex(pattern, options.contains('i'), self.start(args[1].span()))?;
                Ok((
                    Expr::Call(
                        Func::RegexpReplace {
                            regex,
                            global: options.contains('g'),
                        },
                        vec![s, replacement],
                    ),
                    Ty::Str,
                ))
            }
            "json_extract" => {
                arity(2..=2)?;
                let s = self.arg(VARCHAR, args[0], &name, at)?;
                let path = self.literal_string(args[1], "a JSON path")?;
                let steps = json_path(path).ok_or_else(|| {
                    error(
                        format!("bad JSON path {path:?} (write $.a.b, $.a[0] or $.\"a.b\")"),
                        self.start(args[1].span()),
                    )
                })?;
                Ok((Expr::Call(Func::JsonExtract(steps), vec![s]), Ty::Any))
            }
            "coalesce" => {
                arity(1..=usize::MAX)?;
                let mut compiled = Vec::with_capacity(args.len());
                let mut types = Vec::with_capacity(args.len());
                for arg in &args {
                    let (expr, ty) = self.expr(arg)?;
                    compiled.push(expr);
                    types.push(ty);
                }
                Ok((Expr::Coalesce(compiled), common(types)))
            }
            "now" => {
                arity(0..=0)?;
                Ok((Expr::Call(Func::Now, Vec::new()), Ty::Str))
            }
            _ => Err(unsupported(format!("the function {name}"), at)),
        }
    }
}

/// `$.a.b[0]."c.d"` as steps; `None` when malformed.
fn json_path(path: &str) -> Option<Vec<JsonStep>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                steps.push(JsonStep::Key(quoted.as_bytes()[..end].into()));
                rest = &quoted[end + 1..];
            } else {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return None;
                }
                steps.push(JsonStep::Key(after.as_bytes()[..end].into()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(JsonStep::Index(after[..end].trim().parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The type a function's argument must be able to have.
#[derive(Clone, Copy)]
struct Want {
    name: &'static str,
    accepts: fn(Ty) -> bool,
}

/// A string argument: any type but one known not to be a string.
const VARCHAR: Want = Want {
    name: "VARCHAR",
    accepts: |ty| !matches!(ty, Ty::Int | Ty::Double | Ty::Bool | Ty::Json),
};

/// An integer argument: a BIGINT, or a type each line decides.
const BIGINT: Want = Want {
    name: "BIGINT",
    accepts: |ty| matches!(ty, Ty::Any | Ty::Null | Ty::Int),
};
