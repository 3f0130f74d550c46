//! The parser: tokens -> [`Statement`]s.
//!
//! sluice drives sqlparser's `Parser` itself instead of calling `parse_sql`: it looks at the first
//! words of each statement, parses the Proton statements (`CREATE STREAM`, `ALTER STREAM`, `SHOW
//! STREAMS`, ...) with its own grammar on top of sqlparser's expression, identifier and query
//! parsers, lifts `EMIT` / `PARTITION BY` out of queries before sqlparser sees them, and hands
//! everything else to sqlparser, keeping only the statements the server knows what to do with.

use sqlparser::ast::{Expr, Ident, ObjectName};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::ast::{ObjectKind, Statement};
use crate::dialect::SluiceDialect;
use crate::error::{Error, Location, Result};
use crate::lexer::{self, is_significant, is_word};
use crate::settings::SettingValue;
use crate::types::{self, SqlType};

/// CREATE, DROP and ALTER.
mod ddl;
/// Queries, EMIT and INSERT.
mod query;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ddl;
#[cfg(test)]
mod tests_fuzz;

/// How deeply expressions and queries may nest (sqlparser's recursion counter).
pub const RECURSION_LIMIT: usize = 50;

static DIALECT: SluiceDialect = SluiceDialect::new();

/// Parses `sql` (one or more statements separated by `;`) in sluice's dialect.
///
/// Empty statements are skipped. Errors carry the line and column of the offending token.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let tokens = lexer::tokenize(sql)?;
    lexer::split_statements(tokens).iter().map(|t| statement(t)).collect()
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let mut statements = parse(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(Error::parse("empty statement", Location::new(1, 1))),
        n => Err(Error::parse(format!("expected one statement, found {n}"), Location::new(1, 1))),
    }
}

/// Parses one expression in sluice's dialect (interval literals, `::type` casts included).
pub fn parse_expr(sql: &str) -> Result<Expr> {
    let tokens = lexer::tokenize(sql)?;
    let mut c = Cursor::new(&tokens);
    let e = c.expr()?;
    c.expect_end()?;
    Ok(e)
}

fn statement(tokens: &[TokenWithSpan]) -> Result<Statement> {
    let mut c = Cursor::new(tokens);
    if c.peek_token(0) == &Token::LParen {
        return query::query_statement(&mut c);
    }
    let first = c.peek_word(0).map(|w| w.to_ascii_uppercase());
    match first.as_deref() {
        Some("SELECT" | "WITH" | "VALUES") => query::query_statement(&mut c),
        Some("INSERT") => query::insert(&mut c),
        Some("CREATE") => ddl::create(&mut c),
        Some("DROP") => ddl::drop(&mut c),
        Some("ALTER") => ddl::alter(&mut c),
        Some("SHOW") => show(&mut c),
        Some("DESCRIBE" | "DESC") => describe(&mut c),
        Some("EXPLAIN") => explain(&mut c),
        _ => other(&mut c),
    }
}

fn like_pattern(c: &mut Cursor<'_>) -> Result<Option<String>> {
    if c.eat("LIKE") { c.string().map(Some) } else { Ok(None) }
}

fn show(c: &mut Cursor<'_>) -> Result<Statement> {
    let start = c.loc();
    c.expect("SHOW")?;
    let s = if c.eat("STREAMS") {
        Statement::ShowStreams { like: like_pattern(c)? }
    } else if c.eat("VIEWS") || c.eat_all(&["MATERIALIZED", "VIEWS"]) {
        Statement::ShowViews { like: like_pattern(c)? }
    } else if c.eat("CREATE") {
        let kind = object_kind(c, true);
        Statement::ShowCreate { kind, name: c.object_name()? }
    } else if c.peek_is(0, "TABLES") {
        return Err(Error::not_implemented("SHOW TABLES; use SHOW STREAMS or SHOW VIEWS", start));
    } else {
        c.reset();
        return other(c);
    };
    c.expect_end()?;
    Ok(s)
}

/// `STREAM | VIEW | MATERIALIZED VIEW` (and `TABLE` as a stream if `table_is_stream`).
fn object_kind(c: &mut Cursor<'_>, table_is_stream: bool) -> Option<ObjectKind> {
    if c.eat("STREAM") || (table_is_stream && c.eat("TABLE")) {
        Some(ObjectKind::Stream)
    } else if c.eat("VIEW") {
        Some(ObjectKind::View)
    } else if c.eat_all(&["MATERIALIZED", "VIEW"]) {
        Some(ObjectKind::MaterializedView)
    } else {
        None
    }
}

fn describe(c: &mut Cursor<'_>) -> Result<Statement> {
    if !c.eat("DESCRIBE") {
        c.expect("DESC")?;
    }
    object_kind(c, true);
    if c.peek_token(0) == &Token::LParen || c.peek_is(0, "SELECT") {
        return Err(Error::not_implemented("DESCRIBE of a query", c.loc()));
    }
    let name = c.object_name()?;
    c.expect_end()?;
    Ok(Statement::Describe { name })
}

fn explain(c: &mut Cursor<'_>) -> Result<Statement> {
    c.expect("EXPLAIN")?;
    let analyze = c.eat("ANALYZE");
    let at = c.loc();
    let inner = statement(c.rest())?;
    match inner {
        Statement::Query(_) | Statement::Insert(_) => Ok(Statement::Explain { analyze, statement: Box::new(inner) }),
        _ => Err(Error::not_implemented("EXPLAIN of anything but a query or INSERT", at)),
    }
}

/// Statements sqlparser parses that sluice passes through to the server.
fn other(c: &mut Cursor<'_>) -> Result<Statement> {
    use sqlparser::ast::Statement as S;
    let at = c.loc();
    let words = c.leading_words(1);
    let parsed = c.p.parse_statement().map_err(|e| c.error(e))?;
    c.expect_end()?;
    match parsed {
        S::Query(q) => Ok(Statement::Query(Box::new(query::finish_query(q, Vec::new(), None, at)?))),
        S::Set(_)
        | S::ShowVariable { .. }
        | S::StartTransaction { .. }
        | S::Commit { .. }
        | S::Rollback { .. }
        | S::Declare { .. }
        | S::Fetch { .. }
        | S::Close { .. }
        | S::Copy { .. }
        | S::Discard { .. }
        | S::Deallocate { .. }
        | S::Use(_) => Ok(Statement::Other(Box::new(parsed))),
        _ => Err(Error::not_implemented(format!("`{words}` statements"), at)),
    }
}

/// A sqlparser `Parser` over one statement's tokens, with helpers returning sluice errors.
pub(crate) struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    pub(crate) p: Parser<'a>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(tokens: &'a [TokenWithSpan]) -> Self {
        Cursor { tokens, p: Self::parser(tokens) }
    }

    fn parser(tokens: &[TokenWithSpan]) -> Parser<'a> {
        Parser::new(&DIALECT).with_recursion_limit(RECURSION_LIMIT).with_tokens_with_locations(tokens.to_vec())
    }

    /// Back to the first token.
    pub(crate) fn reset(&mut self) {
        self.p = Self::parser(self.tokens);
    }

    /// The tokens not consumed yet.
    pub(crate) fn rest(&self) -> &'a [TokenWithSpan] {
        &self.tokens[self.p.index().min(self.tokens.len())..]
    }

    /// Where the next significant token starts (or the end of the text).
    pub(crate) fn loc(&self) -> Location {
        let t = self.p.peek_token_ref();
        if t.token == Token::EOF {
            self.tokens.last().map(|t| t.span.end.into()).unwrap_or(Location::new(1, 1))
        } else {
            t.span.start.into()
        }
    }

    pub(crate) fn peek_token(&self, n: usize) -> &Token {
        &self.p.peek_nth_token_ref(n).token
    }

    /// The unquoted word `n` significant tokens ahead.
    pub(crate) fn peek_word(&self, n: usize) -> Option<&str> {
        match self.peek_token(n) {
            Token::Word(w) if w.quote_style.is_none() => Some(&w.value),
            _ => None,
        }
    }

    pub(crate) fn peek_is(&self, n: usize, word: &str) -> bool {
        is_word(self.peek_token(n), word)
    }

    /// Consumes the unquoted word `word` (case-insensitive) if it is next.
    pub(crate) fn eat(&mut self, word: &str) -> bool {
        let yes = self.peek_is(0, word);
        if yes {
            self.p.next_token();
        }
        yes
    }

    /// Consumes `words` if all of them are next, else nothing.
    pub(crate) fn eat_all(&mut self, words: &[&str]) -> bool {
        let yes = words.iter().enumerate().all(|(i, w)| self.peek_is(i, w));
        if yes {
            for _ in words {
                self.p.next_token();
            }
        }
        yes
    }

    pub(crate) fn expect(&mut self, word: &str) -> Result<()> {
        if self.eat(word) { Ok(()) } else { Err(self.unexpected(&format!("expected {word}"))) }
    }

    pub(crate) fn eat_token(&mut self, token: &Token) -> bool {
        self.p.consume_token(token)
    }

    pub(crate) fn expect_token(&mut self, token: &Token) -> Result<()> {
        if self.eat_token(token) { Ok(()) } else { Err(self.unexpected(&format!("expected `{token}`"))) }
    }

    /// An error "`what`, found `<next token>`" at the next token.
    pub(crate) fn unexpected(&self, what: &str) -> Error {
        let found = match self.peek_token(0) {
            Token::EOF => "the end of the statement".to_string(),
            t => format!("`{t}`"),
        };
        Error::parse(format!("{what}, found {found}"), self.loc())
    }

    pub(crate) fn at_end(&self) -> bool {
        self.peek_token(0) == &Token::EOF
    }

    /// Fails unless every token was consumed.
    pub(crate) fn expect_end(&self) -> Result<()> {
        if self.at_end() {
            return Ok(());
        }
        let mut e = self.unexpected("expected the end of the statement");
        if let Error::Parse { message, .. } = &mut e {
            message.push_str(&self.alias_hint(self.p.index()));
        }
        Err(e)
    }

    /// A hint for `5 s` / `a b`: a value followed by a bare word looks like an implicit alias.
    fn alias_hint(&self, at: usize) -> String {
        let mut sig = self.tokens.iter().enumerate().filter(|(_, t)| is_significant(&t.token));
        let Some((i, next)) = sig.find(|(i, _)| *i >= at) else { return String::new() };
        let prev = self.tokens[..i].iter().rev().find(|t| is_significant(&t.token));
        let word_next = matches!(&next.token, Token::Word(w) if w.keyword == sqlparser::keywords::Keyword::NoKeyword || w.quote_style.is_some());
        let value_before = matches!(
            prev.map(|t| &t.token),
            Some(Token::Number(..) | Token::SingleQuotedString(_) | Token::Word(_) | Token::RParen | Token::RBracket)
        );
        if word_next && value_before {
            " (a column alias needs AS, as in `expr AS name`; an interval is written without a space, as in `5s`)"
                .to_string()
        } else {
            String::new()
        }
    }

    /// Converts a sqlparser error, recovering its location from the message.
    pub(crate) fn error(&self, e: ParserError) -> Error {
        let message = match e {
            ParserError::RecursionLimitExceeded => {
                return Error::parse(format!("statement nested more than {RECURSION_LIMIT} levels deep"), self.loc());
            }
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        };
        let (text, location) = match message.rsplit_once(" at Line: ") {
            Some((text, at)) => {
                let mut nums = at.split(", Column: ").map(|n| n.trim().parse::<u64>().ok());
                match (nums.next().flatten(), nums.next().flatten()) {
                    (Some(line), Some(column)) => (text.to_string(), Location::new(line, column)),
                    _ => (message.clone(), self.loc()),
                }
            }
            None => (message, self.loc()),
        };
        let mut text = text;
        if text.starts_with("Expected: )") || text.starts_with("Expected: end of statement") {
            let index = self.tokens.iter().position(|t| Location::from(t.span.start) == location);
            if let Some(i) = index {
                text.push_str(&self.alias_hint(i));
            }
        }
        Error::parse(text, location)
    }

    /// Up to `n` leading words of the statement, for messages.
    pub(crate) fn leading_words(&self, n: usize) -> String {
        let words: Vec<String> = (0..n).map_while(|i| self.peek_word(i)).map(|w| w.to_ascii_uppercase()).collect();
        if words.is_empty() { self.peek_token(0).to_string() } else { words.join(" ") }
    }

    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.p.parse_expr().map_err(|e| self.error(e))
    }

    pub(crate) fn ident(&mut self) -> Result<Ident> {
        self.p.parse_identifier().map_err(|e| self.error(e))
    }

    pub(crate) fn object_name(&mut self) -> Result<ObjectName> {
        self.p.parse_object_name(false).map_err(|e| self.error(e))
    }

    pub(crate) fn sql_type(&mut self) -> Result<SqlType> {
        types::parse_sql_type(&mut self.p)
    }

    /// A single-quoted string.
    pub(crate) fn string(&mut self) -> Result<String> {
        match self.peek_token(0).clone() {
            Token::SingleQuotedString(s) => {
                self.p.next_token();
                Ok(s)
            }
            _ => Err(self.unexpected("expected a string in single quotes")),
        }
    }

    /// A whole number.
    pub(crate) fn uint(&mut self) -> Result<u64> {
        let at = self.loc();
        match self.peek_token(0).clone() {
            Token::Number(n, false) => {
                self.p.next_token();
                n.replace('_', "")
                    .parse()
                    .map_err(|_| Error::parse(format!("expected a whole number, found `{n}`"), at))
            }
            _ => Err(self.unexpected("expected a whole number")),
        }
    }

    /// `name = value [, name = value ...]` with literal values.
    pub(crate) fn setting_list(&mut self) -> Result<Vec<(String, SettingValue, Location)>> {
        let mut out = Vec::new();
        loop {
            let at = self.loc();
            let name = self.ident()?.value;
            self.expect_token(&Token::Eq)?;
            let value_at = self.loc();
            let expr = self.expr()?;
            let value = SettingValue::from_expr(&name, &expr).map_err(|e| match e {
                Error::InvalidSetting { reason, .. } => Error::parse(format!("setting `{name}`: {reason}"), value_at),
                other => other,
            })?;
            out.push((name, value, at));
            // In `ALTER ... MODIFY SETTING a = 1, DROP COLUMN x` the comma ends the list.
            if !(self.peek_token(0) == &Token::Comma && self.peek_token(2) == &Token::Eq) {
                break;
            }
            self.p.next_token();
        }
        Ok(out)
    }
}
