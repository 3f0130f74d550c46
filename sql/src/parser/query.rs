//! Queries: lifting `EMIT` and `PARTITION BY` out of the token stream, sqlparser for the rest;
//! the EMIT grammar; INSERT.

use sqlparser::ast::{Query, SetExpr};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::Cursor;
use crate::ast::Statement;
use crate::ast::query::{Emit, EmitMode, Insert, InsertSource, SluiceQuery};
use crate::error::{Error, Location, Result};
use crate::interval::IntervalLiteral;
use crate::lexer::{is_significant, is_word};
use crate::settings::{SettingList, SettingValue};

/// Words that may follow `EMIT` to start an EMIT clause.
const EMIT_STARTERS: &[&str] = &["STREAM", "CHANGELOG", "AFTER", "PERIODIC", "ON", "TIMEOUT", "LAST", "DELAY"];

/// Words after which `emit` is a name, not a clause (`FROM emit`, `AS emit`, `JOIN emit ON`).
const NAME_CONTEXT: &[&str] = &[
    "FROM", "JOIN", "AS", "SELECT", "DISTINCT", "ALL", "INTO", "TABLE", "BY", "WHERE", "AND", "OR", "NOT", "ON",
    "USING", "WITH", "HAVING", "PREWHERE", "IN", "LIKE", "ILIKE", "IS", "THEN", "WHEN", "ELSE", "CASE", "INTERVAL",
];

/// Depth-0 words that end a lifted clause.
const CLAUSE_END: &[&str] =
    &["ORDER", "LIMIT", "OFFSET", "FETCH", "SETTINGS", "FORMAT", "UNION", "EXCEPT", "INTERSECT"];

/// Depth-0 words that also end a PARTITION BY clause.
const PARTITION_END: &[&str] = &["GROUP", "HAVING", "WINDOW", "QUALIFY"];

pub(super) fn query_statement(c: &mut Cursor<'_>) -> Result<Statement> {
    Ok(Statement::Query(Box::new(sluice_query(c.rest())?)))
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<&TokenWithSpan> {
    tokens.get(from..)?.iter().find(|t| is_significant(&t.token))
}

fn prev_significant(tokens: &[TokenWithSpan], before: usize) -> Option<&TokenWithSpan> {
    tokens[..before].iter().rev().find(|t| is_significant(&t.token))
}

/// Whether `tokens[i]` starts an EMIT clause.
fn is_emit_start(tokens: &[TokenWithSpan], i: usize) -> bool {
    if !is_word(&tokens[i].token, "EMIT") {
        return false;
    }
    let next_ok = match next_significant(tokens, i + 1).map(|t| &t.token) {
        None => true,
        Some(t) => EMIT_STARTERS.iter().chain(CLAUSE_END).any(|w| is_word(t, w)),
    };
    let prev_ok = match prev_significant(tokens, i).map(|t| &t.token) {
        Some(Token::Word(w)) => {
            w.quote_style.is_some() || !NAME_CONTEXT.iter().any(|k| w.value.eq_ignore_ascii_case(k))
        }
        Some(Token::Number(..) | Token::SingleQuotedString(_) | Token::RParen | Token::RBracket) => true,
        _ => false,
    };
    next_ok && prev_ok
}

fn is_partition_start(tokens: &[TokenWithSpan], i: usize) -> bool {
    is_word(&tokens[i].token, "PARTITION") && next_significant(tokens, i + 1).is_some_and(|t| is_word(&t.token, "BY"))
}

/// Index one past the end of the clause starting at `start` (depth 0): the next depth-0 clause
/// word, closing parenthesis or the end.
fn clause_end(tokens: &[TokenWithSpan], start: usize, partition: bool) -> usize {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(start + 1) {
        match &t.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket if depth == 0 => return i,
            Token::RParen | Token::RBracket => depth -= 1,
            tok if depth == 0 => {
                let ends = CLAUSE_END.iter().any(|w| is_word(tok, w))
                    || (partition && PARTITION_END.iter().any(|w| is_word(tok, w)))
                    || is_emit_start(tokens, i)
                    || is_partition_start(tokens, i);
                if ends {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Parses a query with sluice's extras from its tokens.
pub(super) fn sluice_query(tokens: &[TokenWithSpan]) -> Result<SluiceQuery> {
    let start = next_significant(tokens, 0).map(|t| Location::from(t.span.start)).unwrap_or_default();
    let mut kept: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut emit_tokens: Option<&[TokenWithSpan]> = None;
    let mut partition_tokens: Option<&[TokenWithSpan]> = None;
    let mut set_operation: Option<Location> = None;
    let mut depth = 0i64;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth -= 1,
            _ => {}
        }
        if is_emit_start(tokens, i) {
            if depth != 0 {
                return Err(Error::not_implemented(
                    "EMIT in a subquery (only the outermost query may have one)",
                    t.span.start,
                ));
            }
            if emit_tokens.is_some() {
                return Err(Error::parse("EMIT given more than once", t.span.start));
            }
            let end = clause_end(tokens, i, false);
            emit_tokens = Some(&tokens[i..end]);
            i = end;
            continue;
        }
        if depth == 0 && is_partition_start(tokens, i) {
            if partition_tokens.is_some() {
                return Err(Error::parse("PARTITION BY given more than once", t.span.start));
            }
            let end = clause_end(tokens, i, true);
            partition_tokens = Some(&tokens[i..end]);
            i = end;
            continue;
        }
        if ["ASOF", "LATEST"].iter().any(|w| is_word(&t.token, w))
            && next_significant(tokens, i + 1)
                .is_some_and(|n| ["JOIN", "LEFT", "INNER"].iter().any(|w| is_word(&n.token, w)))
        {
            return Err(Error::not_implemented(
                format!(
                    "{} JOIN (Proton's streaming joins are not in the parser yet)",
                    t.token.to_string().to_uppercase()
                ),
                t.span.start,
            ));
        }
        if depth == 0 && ["UNION", "EXCEPT", "INTERSECT"].iter().any(|w| is_word(&t.token, w)) {
            set_operation.get_or_insert(t.span.start.into());
        }
        kept.push(t.clone());
        i += 1;
    }
    if let Some(at) = set_operation
        && (emit_tokens.is_some() || partition_tokens.is_some())
    {
        return Err(Error::not_implemented("EMIT or PARTITION BY on a UNION / EXCEPT / INTERSECT query", at));
    }

    let emit = emit_tokens.map(parse_emit_clause).transpose()?;
    let partition_by = match partition_tokens {
        Some(tokens) => {
            let mut c = Cursor::new(tokens);
            c.expect("PARTITION")?;
            c.expect("BY")?;
            let exprs = c.p.parse_comma_separated(|p| p.parse_expr()).map_err(|e| c.error(e))?;
            c.expect_end()?;
            exprs
        }
        None => Vec::new(),
    };

    let mut c = Cursor::new(&kept);
    let query = c.p.parse_query().map_err(|e| c.error(e))?;
    c.expect_end()?;
    finish_query(query, partition_by, emit, start)
}

/// Checks the outermost query and moves its SETTINGS out.
pub(super) fn finish_query(
    mut query: Box<Query>,
    partition_by: Vec<sqlparser::ast::Expr>,
    emit: Option<Emit>,
    at: Location,
) -> Result<SluiceQuery> {
    let unsupported = match query.body.as_ref() {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            Some("a data-modifying statement inside WITH")
        }
        _ if !query.locks.is_empty() => Some("FOR UPDATE / FOR SHARE"),
        _ if query.for_clause.is_some() => Some("FOR XML / FOR JSON"),
        _ if query.format_clause.is_some() => Some("FORMAT in a query (results are Arrow / Postgres rows)"),
        _ if !query.pipe_operators.is_empty() => Some("pipe operators"),
        _ => None,
    };
    if let Some(feature) = unsupported {
        return Err(Error::not_implemented(feature, at));
    }
    let mut settings = Vec::new();
    for s in query.settings.take().unwrap_or_default() {
        let value = SettingValue::from_expr(&s.key.value, &s.value)?;
        settings.push((s.key.value, value));
    }
    Ok(SluiceQuery { query, partition_by, emit, settings: SettingList(settings) })
}

fn parse_emit_clause(tokens: &[TokenWithSpan]) -> Result<Emit> {
    let mut c = Cursor::new(tokens);
    let emit = parse_emit(&mut c)?;
    if !c.at_end() {
        return Err(
            c.unexpected("expected AND, TIMEOUT, LAST, PERIODIC, ORDER BY, LIMIT or SETTINGS after the EMIT policy")
        );
    }
    Ok(emit)
}

fn parse_emit(c: &mut Cursor<'_>) -> Result<Emit> {
    c.expect("EMIT")?;
    let mut emit = Emit::default();
    let explicit_mode = if c.eat("STREAM") {
        true
    } else if c.eat("CHANGELOG") {
        emit.mode = EmitMode::Changelog;
        true
    } else {
        false
    };
    let mut any = false;
    let mut delay_at = None;
    loop {
        let and = any && c.eat("AND");
        let at = c.loc();
        let duplicate = |what: &str| Error::parse(format!("{what} given more than once in EMIT"), at);
        if c.eat_all(&["AFTER", "WATERMARK"]) {
            if emit.after_watermark {
                return Err(duplicate("AFTER WATERMARK"));
            }
            emit.after_watermark = true;
            if c.eat_all(&["WITH", "DELAY"]) {
                if emit.delay.is_some() {
                    return Err(duplicate("DELAY"));
                }
                delay_at = Some(at);
                emit.delay = Some(interval(c)?);
            }
        } else if c.eat("DELAY") {
            if emit.delay.is_some() {
                return Err(duplicate("DELAY"));
            }
            delay_at = Some(at);
            emit.delay = Some(interval(c)?);
        } else if c.eat("PERIODIC") {
            if emit.periodic.is_some() {
                return Err(duplicate("PERIODIC"));
            }
            emit.periodic = Some(interval(c)?);
            emit.repeat = c.eat("REPEAT");
        } else if c.eat("ON") {
            if !c.eat("UPDATE") {
                return Err(c.unexpected("expected UPDATE after ON in EMIT"));
            }
            if emit.on_update {
                return Err(duplicate("ON UPDATE"));
            }
            emit.on_update = true;
        } else if c.eat("TIMEOUT") {
            if emit.timeout.is_some() {
                return Err(duplicate("TIMEOUT"));
            }
            emit.timeout = Some(interval(c)?);
        } else if c.eat("LAST") {
            if emit.last.is_some() {
                return Err(duplicate("LAST"));
            }
            emit.last = Some(interval(c)?);
            if c.eat("ON") {
                if !c.eat("PROCTIME") {
                    return Err(c.unexpected("expected PROCTIME after LAST ... ON"));
                }
                emit.on_proctime = true;
            }
        } else if and || !(any || explicit_mode) {
            let what = if and { "expected" } else { "EMIT needs a policy: expected" };
            return Err(c.unexpected(&format!(
                "{what} STREAM, CHANGELOG, AFTER WATERMARK, PERIODIC, ON UPDATE, TIMEOUT, LAST or DELAY"
            )));
        } else {
            break;
        }
        any = true;
    }
    if let Some(at) = delay_at
        && !emit.after_watermark
    {
        return Err(Error::parse("DELAY in EMIT needs AFTER WATERMARK", at));
    }
    Ok(emit)
}

/// A positive constant interval (`5s`, `INTERVAL 5 SECOND`).
fn interval(c: &mut Cursor<'_>) -> Result<IntervalLiteral> {
    let at = c.loc();
    let expr = c.p.parse_prefix().map_err(|e| c.error(e))?;
    let lit = IntervalLiteral::from_expr(&expr).map_err(|e| match e {
        Error::InvalidValue { message } => Error::parse(message, at),
        other => other,
    })?;
    if lit.value <= 0 {
        return Err(Error::parse(format!("interval `{lit}` must be positive"), at));
    }
    Ok(lit)
}

pub(super) fn insert(c: &mut Cursor<'_>) -> Result<Statement> {
    c.expect("INSERT")?;
    c.expect("INTO")?;
    let _ = c.eat("TABLE");
    if c.peek_is(0, "FUNCTION") {
        return Err(Error::not_implemented("INSERT INTO FUNCTION", c.loc()));
    }
    let stream = c.object_name()?;
    let mut columns = Vec::new();
    if c.eat_token(&Token::LParen) {
        columns = c.p.parse_comma_separated(|p| p.parse_identifier()).map_err(|e| c.error(e))?;
        c.expect_token(&Token::RParen)?;
    }
    let settings = if c.eat("SETTINGS") {
        SettingList(c.setting_list()?.into_iter().map(|(k, v, _)| (k, v)).collect())
    } else {
        SettingList::default()
    };
    let at = c.loc();
    let source = if c.eat("VALUES") {
        let mut rows: Vec<Vec<sqlparser::ast::Expr>> = Vec::new();
        loop {
            let row_at = c.loc();
            c.expect_token(&Token::LParen)?;
            let row = c.p.parse_comma_separated(|p| p.parse_expr()).map_err(|e| c.error(e))?;
            c.expect_token(&Token::RParen)?;
            let expected = if columns.is_empty() { rows.first().map(Vec::len) } else { Some(columns.len()) };
            if let Some(n) = expected
                && n != row.len()
            {
                return Err(Error::bind(
                    format!("row {} of the INSERT has {} values, expected {n}", rows.len() + 1, row.len()),
                    Some(crate::error::Span { start: row_at, end: c.loc() }),
                ));
            }
            rows.push(row);
            // ClickHouse also accepts rows without commas between them.
            let comma = c.eat_token(&Token::Comma);
            if !comma && c.peek_token(0) != &Token::LParen {
                break;
            }
        }
        c.expect_end()?;
        InsertSource::Values(rows)
    } else if c.peek_is(0, "SELECT") || c.peek_is(0, "WITH") || c.peek_token(0) == &Token::LParen {
        InsertSource::Query(Box::new(sluice_query(c.rest())?))
    } else if c.peek_is(0, "FORMAT") {
        return Err(Error::not_implemented("INSERT ... FORMAT (use COPY or the HTTP ingest API)", at));
    } else {
        return Err(c.unexpected("expected VALUES or SELECT"));
    };
    Ok(Statement::Insert(Box::new(Insert { stream, columns, source, settings })))
}
