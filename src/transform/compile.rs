//! From SQL text to a [`Program`]: sqlparser (GenericDialect) parses, this
//! module accepts the subset of docs/transform.md and refuses everything
//! else with a [`CompileError`] that points at the construct (line and
//! column from sqlparser's spans, or from its tokens for a clause keyword).

use super::CompileError;
use super::expr::{Column, ColumnValue, Expr, KeyPath, Program, Projection, Ty};
use super::record::{Span, Src, Val};
use sqlparser::ast::{self as sql, Spanned};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, Tokenizer};

/// How deep sqlparser may recurse: a query nested deeper is refused with a
/// message rather than risking the stack.
const RECURSION_LIMIT: usize = 64;
/// Largest compiled regex (the `regex` crate's size limit), so a pattern
/// cannot make start-up take unbounded memory.
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

pub(super) fn error(message: impl Into<String>, at: Location) -> CompileError {
    CompileError {
        message: message.into(),
        line: at.line,
        column: at.column,
    }
}

/// The identifiers of a dotted name that name keys: an unquoted leading
/// `logs.` names the table, as in DuckDB (`logs.level` is `level`);
/// `"logs".level` is key `level` inside `logs`.
pub(super) fn field_path(idents: &[sql::Ident]) -> &[sql::Ident] {
    match idents {
        [table, rest @ ..]
            if !rest.is_empty()
                && table.quote_style.is_none()
                && table.value.eq_ignore_ascii_case("logs") =>
        {
            rest
        }
        all => all,
    }
}

/// Most spellings tried for one dotted name: `a.b.c.d…` with n unquoted
/// parts has 2^(n-1); past this many parts only the nested one is.
const MAX_SPELLED_PARTS: usize = 6;

/// The key paths a name can be: `http.status` is `status` inside `http`,
/// or the key `http.status`, or (`resource.service.name`, as OTLP records
/// have it) `service.name` inside `resource`, and so on. Only adjacent
/// unquoted parts are joined: a quoted identifier is one key as written.
/// The nested spelling comes first.
pub(super) fn key_paths(idents: &[sql::Ident]) -> Vec<KeyPath> {
    let nested: Vec<Box<[u8]>> = idents.iter().map(|i| i.value.as_bytes().into()).collect();
    if idents.len() > MAX_SPELLED_PARTS {
        return vec![nested];
    }
    // Bit i of `joins` set: part i+1 is joined to part i with a dot.
    let mut paths = Vec::new();
    for joins in 0u32..1 << (idents.len() - 1) {
        let joinable = (0..idents.len() - 1).all(|i| {
            joins & (1 << i) == 0
                || (idents[i].quote_style.is_none() && idents[i + 1].quote_style.is_none())
        });
        if !joinable {
            continue;
        }
        let mut path: Vec<Box<[u8]>> = Vec::new();
        let mut key = idents[0].value.clone();
        for (i, ident) in idents.iter().enumerate().skip(1) {
            if joins & (1 << (i - 1)) != 0 {
                key.push('.');
                key.push_str(&ident.value);
            } else {
                path.push(std::mem::take(&mut key).into_bytes().into());
                key = ident.value.clone();
            }
        }
        path.push(key.into_bytes().into());
        paths.push(path);
    }
    debug_assert_eq!(paths.first(), Some(&nested));
    paths
}

pub(super) fn unsupported(what: impl std::fmt::Display, at: Location) -> CompileError {
    error(format!("unsupported: {what}"), at)
}

/// Just past the last character of `text`: where a query that ends too
/// soon is missing something.
fn end_of(text: &str) -> Location {
    let trimmed = text.trim_end();
    let line = trimmed.lines().count().max(1) as u64;
    let last = trimmed.rsplit('\n').next().unwrap_or("");
    Location {
        line,
        column: last.chars().count() as u64 + 1,
    }
}

/// sqlparser's errors end with ` at Line: L, Column: C`; that becomes the
/// error's position. One without (the query ended early) points past the
/// end of `text`.
fn parse_error(text: &str, parse: ParserError) -> CompileError {
    let query = text;
    let text = match parse {
        ParserError::TokenizerError(text) | ParserError::ParserError(text) => text,
        ParserError::RecursionLimitExceeded => {
            return error(
                "the query nests too deeply",
                Location { line: 0, column: 0 },
            );
        }
    };
    if let Some((message, position)) = text.rsplit_once(" at Line: ")
        && let Some((line, column)) = position.split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (line.parse(), column.parse())
    {
        return error(
            format!("syntax error: {message}"),
            Location { line, column },
        );
    }
    error(format!("syntax error: {text}"), end_of(query))
}

fn parser(text: &str) -> Result<Parser<'static>, CompileError> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .map_err(|failure| parse_error(text, failure))
}

/// Parses and compiles a whole query. Returns the program and the
/// statement printed back by sqlparser.
pub(super) fn compile_query(text: &str) -> Result<(Program, String), CompileError> {
    let mut parser = parser(text)?;
    let statements = parser
        .parse_statements()
        .map_err(|failure| parse_error(text, failure))?;
    let statement = match statements.as_slice() {
        [] => return Err(error("empty query", Location { line: 0, column: 0 })),
        [statement] => statement,
        [_, second, ..] => return Err(unsupported("more than one statement", second.span().start)),
    };
    let mut compiler = Compiler::new(text);
    let sql::Statement::Query(query) = statement else {
        let first = statement.to_string();
        let word = first.split_whitespace().next().unwrap_or("");
        return Err(unsupported(
            format!("{word} (only SELECT … FROM logs)"),
            compiler.start(statement.span()),
        ));
    };
    compiler.query(query)?;
    Ok((compiler.program, statement.to_string()))
}

/// Parses and compiles one boolean expression (a route condition).
pub(super) fn compile_condition(text: &str) -> Result<(Program, String), CompileError> {
    let mut parser = parser(text)?;
    let expr = parser
        .parse_expr()
        .map_err(|failure| parse_error(text, failure))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(error(
            format!(
                "syntax error: Expected: end of expression, found: {}",
                next.token
            ),
            next.span.start,
        ));
    }
    let mut compiler = Compiler::new(text);
    let (filter, ty) = compiler.expr(&expr)?;
    compiler.check_boolean(ty, "the condition", &expr)?;
    compiler.program.filter = Some(filter);
    Ok((compiler.program, expr.to_string()))
}

pub(super) struct Compiler<'t> {
    text: &'t str,
    pub program: Program,
}

impl<'t> Compiler<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            program: Program {
                paths: Vec::new(),
                filter: None,
                projection: Projection::Keep,
                consts: Vec::new(),
                regexes: Vec::new(),
            },
        }
    }

    /// A span's start, or the query's first character when sqlparser left
    /// the span empty.
    pub(super) fn start(&self, span: sqlparser::tokenizer::Span) -> Location {
        if span.start.line == 0 {
            Location { line: 1, column: 1 }
        } else {
            span.start
        }
    }

    /// Where the first unquoted `keyword` is, for clauses sqlparser keeps
    /// no keyword span of (subqueries are refused, so the first is the one).
    fn keyword(&self, keyword: Keyword) -> Location {
        static DIALECT: GenericDialect = GenericDialect {};
        let tokens = Tokenizer::new(&DIALECT, self.text)
            .tokenize_with_location()
            .unwrap_or_default();
        tokens
            .iter()
            .find(|token| {
                matches!(&token.token, Token::Word(word)
                    if word.keyword == keyword && word.quote_style.is_none())
            })
            .map_or(Location { line: 0, column: 0 }, |token| token.span.start)
    }

    fn clause(&self, name: &str, keyword: Keyword) -> CompileError {
        unsupported(name, self.keyword(keyword))
    }

    /// Refuses the first of `clauses` (present, name, keyword) present.
    fn refuse_first(&self, clauses: &[(bool, &str, Keyword)]) -> Result<(), CompileError> {
        match clauses.iter().find(|(present, ..)| *present) {
            Some(&(_, name, keyword)) => Err(self.clause(name, keyword)),
            None => Ok(()),
        }
    }

    fn query(&mut self, query: &sql::Query) -> Result<(), CompileError> {
        if query.with.is_some() {
            return Err(self.clause("WITH", Keyword::WITH));
        }
        if query.order_by.is_some() {
            return Err(self.clause("ORDER BY", Keyword::ORDER));
        }
        if let Some(limit) = &query.limit_clause {
            return Err(match limit {
                sql::LimitClause::LimitOffset { limit: None, .. } => {
                    self.clause("OFFSET", Keyword::OFFSET)
                }
                _ => self.clause("LIMIT", Keyword::LIMIT),
            });
        }
        if query.fetch.is_some() {
            return Err(self.clause("FETCH", Keyword::FETCH));
        }
        if !query.locks.is_empty() || query.for_clause.is_some() {
            return Err(self.clause("FOR", Keyword::FOR));
        }
        if query.settings.is_some() {
            return Err(self.clause("SETTINGS", Keyword::SETTINGS));
        }
        if query.format_clause.is_some() {
            return Err(self.clause("FORMAT", Keyword::FORMAT));
        }
        if !query.pipe_operators.is_empty() {
            return Err(unsupported("pipe operators", self.start(query.span())));
        }
        match query.body.as_ref() {
            sql::SetExpr::Select(select) => self.select(select),
            sql::SetExpr::SetOperation { op, .. } => Err(match op {
                sql::SetOperator::Union => self.clause("UNION", Keyword::UNION),
                sql::SetOperator::Intersect => self.clause("INTERSECT", Keyword::INTERSECT),
                sql::SetOperator::Except | sql::SetOperator::Minus => {
                    unsupported(op, self.start(query.body.span()))
                }
            }),
            sql::SetExpr::Query(inner) => Err(unsupported("a subquery", self.start(inner.span()))),
            other => Err(unsupported(
                "a query other than SELECT … FROM logs",
                self.start(other.span()),
            )),
        }
    }

    fn select(&mut self, select: &sql::Select) -> Result<(), CompileError> {
        let grouped = match &select.group_by {
            sql::GroupByExpr::All(_) => true,
            sql::GroupByExpr::Expressions(exprs, modifiers) => {
                !exprs.is_empty() || !modifiers.is_empty()
            }
        };
        // In the order they are checked: the first present is refused.
        self.refuse_first(&[
            (select.distinct.is_some(), "DISTINCT", Keyword::DISTINCT),
            (select.top.is_some(), "TOP", Keyword::TOP),
            (select.into.is_some(), "INTO", Keyword::INTO),
            (
                !select.lateral_views.is_empty(),
                "LATERAL VIEW",
                Keyword::LATERAL,
            ),
            (select.prewhere.is_some(), "PREWHERE", Keyword::PREWHERE),
            (
                !select.connect_by.is_empty(),
                "CONNECT BY",
                Keyword::CONNECT,
            ),
            (grouped, "GROUP BY", Keyword::GROUP),
            (
                !select.cluster_by.is_empty(),
                "CLUSTER BY",
                Keyword::CLUSTER,
            ),
            (
                !select.distribute_by.is_empty(),
                "DISTRIBUTE BY",
                Keyword::DISTRIBUTE,
            ),
            (!select.sort_by.is_empty(), "SORT BY", Keyword::SORT),
            (select.having.is_some(), "HAVING", Keyword::HAVING),
            (!select.named_window.is_empty(), "WINDOW", Keyword::WINDOW),
            (select.qualify.is_some(), "QUALIFY", Keyword::QUALIFY),
            (
                select.exclude.is_some(),
                "EXCLUDE after a column list",
                Keyword::EXCLUDE,
            ),
        ])?;
        if select.value_table_mode.is_some() || select.flavor != sql::SelectFlavor::Standard {
            return Err(unsupported(
                "this form of SELECT",
                self.start(select.span()),
            ));
        }
        self.from(select)?;
        if let Some(selection) = &select.selection {
            let (filter, ty) = self.expr(selection)?;
            self.check_boolean(ty, "WHERE", selection)?;
            self.program.filter = Some(filter);
        }
        self.projection(&select.projection)
    }

    fn from(&self, select: &sql::Select) -> Result<(), CompileError> {
        let table = match select.from.as_slice() {
            [] => {
                return Err(unsupported(
                    "a query without FROM logs",
                    self.start(select.span()),
                ));
            }
            [table] => table,
            [_, second, ..] => {
                return Err(unsupported(
                    "a second table (joins)",
                    self.start(second.span()),
                ));
            }
        };
        if let Some(join) = table.joins.first() {
            return Err(unsupported("JOIN", self.start(join.span())));
        }
        match &table.relation {
            sql::TableFactor::Table {
                name, alias, args, ..
            } => {
                let is_logs = matches!(name.0.as_slice(),
                    [sql::ObjectNamePart::Identifier(ident)] if ident.value.eq_ignore_ascii_case("logs"));
                if !is_logs {
                    return Err(unsupported(
                        format!("FROM {name} (the records are FROM logs)"),
                        self.start(name.span()),
                    ));
                }
                if args.is_some() {
                    return Err(unsupported("a table function", self.start(name.span())));
                }
                if let Some(alias) = alias {
                    return Err(unsupported("a table alias", self.start(alias.span())));
                }
                Ok(())
            }
            other => Err(unsupported(
                "FROM anything but logs (subqueries, table functions)",
                self.start(other.span()),
            )),
        }
    }

    pub(super) fn check_boolean(
        &self,
        ty: Ty,
        what: &str,
        expr: &sql::Expr,
    ) -> Result<(), CompileError> {
        if matches!(ty, Ty::Any | Ty::Null | Ty::Bool) {
            Ok(())
        } else {
            Err(error(
                format!("{what} needs a BOOLEAN, not {ty}"),
                self.start(expr.span()),
            ))
        }
    }

    fn projection(&mut self, items: &[sql::SelectItem]) -> Result<(), CompileError> {
        let mut star: Option<Vec<Box<[u8]>>> = None;
        let mut columns: Vec<Column> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let (expr, key) = match item {
                sql::SelectItem::Wildcard(options) => {
                    if index > 0 {
                        return Err(unsupported(
                            "* after other columns (write it first)",
                            self.start(item.span()),
                        ));
                    }
                    star = Some(self.star_options(options, item)?);
                    continue;
                }
                sql::SelectItem::UnnamedExpr(expr) => {
                    let key = match expr {
                        sql::Expr::Identifier(ident) => ident.value.clone(),
                        sql::Expr::CompoundIdentifier(idents) => field_path(idents)
                            .iter()
                            .map(|ident| ident.value.as_str())
                            .collect::<Vec<_>>()
                            .join("."),
                        other => other.to_string(),
                    };
                    (expr, key)
                }
                sql::SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
                other => {
                    return Err(unsupported(
                        format!("the select item {other}"),
                        self.start(other.span()),
                    ));
                }
            };
            if columns.iter().any(|column| *column.key == *key.as_bytes()) {
                return Err(error(
                    format!("duplicate column name {key:?}"),
                    self.start(item.span()),
                ));
            }
            let (compiled, _) = self.expr(expr)?;
            let value = match compiled {
                Expr::Field(slot) => ColumnValue::Field(slot),
                other => ColumnValue::Expr(other),
            };
            let mut key_json = Vec::with_capacity(key.len() + 4);
            key_json.extend_from_slice(b",\"");
            crate::escape::json_string_content(key.as_bytes(), |part| {
                key_json.extend_from_slice(part)
            });
            key_json.extend_from_slice(b"\":");
            columns.push(Column {
                key_json: key_json.into(),
                key: key.into_bytes().into(),
                value,
            });
        }
        self.program.projection = match star {
            None => Projection::Columns(columns),
            Some(drop) if drop.is_empty() && columns.is_empty() => Projection::Keep,
            Some(mut drop) => {
                drop.extend(columns.iter().map(|column| column.key.clone()));
                Projection::Star {
                    drop,
                    appended: columns,
                }
            }
        };
        Ok(())
    }

    /// The keys `* EXCEPT (…)` / `* EXCLUDE (…)` leave out.
    fn star_options(
        &self,
        options: &sql::WildcardAdditionalOptions,
        item: &sql::SelectItem,
    ) -> Result<Vec<Box<[u8]>>, CompileError> {
        if options.opt_ilike.is_some()
            || options.opt_replace.is_some()
            || options.opt_rename.is_some()
            || options.opt_alias.is_some()
        {
            return Err(unsupported(
                format!("{item} (only * EXCEPT (…))"),
                self.start(item.span()),
            ));
        }
        let mut drop: Vec<Box<[u8]>> = Vec::new();
        if let Some(except) = &options.opt_except {
            drop.push(except.first_element.value.as_bytes().into());
            drop.extend(
                except
                    .additional_elements
                    .iter()
                    .map(|ident| ident.value.as_bytes().into()),
            );
        }
        if let Some(exclude) = &options.opt_exclude {
            let names = match exclude {
                sql::ExcludeSelectItem::Single(name) => std::slice::from_ref(name),
                sql::ExcludeSelectItem::Multiple(names) => names.as_slice(),
            };
            for name in names {
                match name.0.as_slice() {
                    [sql::ObjectNamePart::Identifier(ident)] => {
                        drop.push(ident.value.as_bytes().into())
                    }
                    _ => {
                        return Err(unsupported(
                            format!("EXCLUDE of {name} (top-level keys only)"),
                            self.start(name.span()),
                        ));
                    }
                }
            }
        }
        Ok(drop)
    }

    pub(super) fn field(&mut self, path: Vec<KeyPath>) -> Expr {
        let slot = match self.program.paths.iter().position(|known| *known == path) {
            Some(slot) => slot,
            None => {
                self.program.paths.push(path);
                self.program.paths.len() - 1
            }
        };
        Expr::Field(slot as u16)
    }

    pub(super) fn string_const(&mut self, text: &str) -> Val {
        let start = self.program.consts.len();
        self.program.consts.extend_from_slice(text.as_bytes());
        Val::Str(Span::new(Src::Const, start, text.len()))
    }

    /// The literal string `expr` must be (a regex, a LIKE pattern, a path).
    pub(super) fn literal_string<'e>(
        &self,
        expr: &'e sql::Expr,
        what: &str,
    ) -> Result<&'e str, CompileError> {
        match expr {
            sql::Expr::Value(sql::ValueWithSpan {
                value: sql::Value::SingleQuotedString(text),
                ..
            }) => Ok(text),
            other => Err(unsupported(
                format!("{what} that is not a string literal"),
                self.start(other.span()),
            )),
        }
    }

    pub(super) fn literal_int(&self, expr: &sql::Expr, what: &str) -> Result<i64, CompileError> {
        match expr {
            sql::Expr::Value(sql::ValueWithSpan {
                value: sql::Value::Number(text, _),
                ..
            }) if text.parse::<i64>().is_ok() => Ok(text.parse().unwrap_or(0)),
            other => Err(unsupported(
                format!("{what} that is not an integer literal"),
                self.start(other.span()),
            )),
        }
    }

    pub(super) fn regex(
        &mut self,
        pattern: &str,
        case_insensitive: bool,
        at: Location,
    ) -> Result<usize, CompileError> {
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .size_limit(REGEX_SIZE_LIMIT_BYTES)
            .build()
            .map_err(|failure| {
                // The regex crate's message spans lines (a caret diagram);
                // its last line says what is wrong.
                let text = failure.to_string();
                let reason = text
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ");
                error(
                    format!("invalid regular expression {pattern:?}: {reason}"),
                    at,
                )
            })?;
        self.program.regexes.push(regex);
        Ok(self.program.regexes.len() - 1)
    }
}
