//! Statements the server parses itself because they are about the connection, not the
//! engine: `COPY ... FROM STDIN`, `COPY ... TO STDOUT`, `DECLARE ... CURSOR`, `FETCH`, `MOVE`
//! and `CLOSE`. The query inside `COPY (query) TO STDOUT` and `DECLARE c CURSOR FOR query` is
//! kept as text and planned like any other statement, so it may use all of sluice's dialect.
//!
//! Also here: splitting a simple query's text into statements, so that these commands can sit
//! next to engine statements in one query string.

use sluice_sql::sqlparser::tokenizer::Token;

use super::params;
use crate::error::WireError;

/// A statement the server handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `COPY stream [(columns)] FROM STDIN [options]`.
    CopyFrom {
        /// The stream.
        stream: String,
        /// The columns given, in input order (`None`: every column but `_tp_time`).
        columns: Option<Vec<String>>,
        /// Text or CSV, and their options.
        format: CopyFormat,
    },
    /// `COPY (query) TO STDOUT [options]` or `COPY stream [(columns)] TO STDOUT [options]`.
    CopyTo {
        /// The query whose rows are copied out.
        query: String,
        /// Text or CSV, and their options.
        format: CopyFormat,
    },
    /// `DECLARE name [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR query`.
    Declare {
        /// The cursor's name.
        name: String,
        /// `WITH HOLD`: the cursor outlives COMMIT.
        hold: bool,
        /// The query.
        query: String,
    },
    /// `FETCH` (or `MOVE`, which skips rows instead of sending them).
    Fetch {
        /// The cursor's name.
        name: String,
        /// How many rows.
        count: Count,
        /// `MOVE`.
        skip: bool,
    },
    /// `CLOSE name` (`None`: `CLOSE ALL`).
    Close {
        /// The cursor's name.
        name: Option<String>,
    },
}

/// How many rows a FETCH asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Up to this many.
    Rows(u64),
    /// All that are left (for a streaming query: until it ends or is cancelled).
    All,
}

/// Whether the first line of COPY input is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// No header.
    No,
    /// A header line, skipped on input and written on output.
    Yes,
    /// A header line whose names must match the columns (input only).
    Match,
}

/// The format of COPY data: Postgres' text or CSV format with their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyFormat {
    /// CSV (else text).
    pub csv: bool,
    /// A header line.
    pub header: Header,
    /// The field separator (tab for text, comma for CSV).
    pub delimiter: u8,
    /// The spelling of NULL (`\N` for text, an empty unquoted field for CSV).
    pub null: String,
    /// The CSV quote character.
    pub quote: u8,
    /// The CSV escape character (inside quotes; defaults to the quote).
    pub escape: u8,
}

impl CopyFormat {
    fn text() -> Self {
        CopyFormat { csv: false, header: Header::No, delimiter: b'\t', null: "\\N".into(), quote: b'"', escape: b'"' }
    }

    fn make_csv(&mut self, delimiter_given: bool, null_given: bool) {
        self.csv = true;
        if !delimiter_given {
            self.delimiter = b',';
        }
        if !null_given {
            self.null = String::new();
        }
    }
}

/// A token with the byte offset where it starts.
#[derive(Debug)]
struct Tok {
    token: Token,
    start: usize,
}

/// The significant tokens of `sql` (no whitespace or comments); `None` if it does not lex.
fn lex(sql: &str) -> Option<Vec<Tok>> {
    let mut offsets = params::Offsets::new(sql);
    let all = params::tokens(sql);
    if all.is_empty() && !sql.trim().is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(all.len());
    for t in all {
        if matches!(t.token, Token::Whitespace(_) | Token::EOF) {
            continue;
        }
        let start = offsets.at(t.span.start.line, t.span.start.column)?;
        out.push(Tok { token: t.token, start });
    }
    Some(out)
}

/// The statements of a query string, as slices of it (empty statements left out). Semicolons
/// in strings and comments do not split.
pub(crate) fn split(sql: &str) -> Vec<&str> {
    let Some(tokens) = lex(sql) else { return vec![sql] };
    let mut out = vec![];
    let mut from = 0;
    for t in tokens.iter().filter(|t| t.token == Token::SemiColon) {
        out.push(&sql[from..t.start]);
        from = t.start + 1;
    }
    out.push(&sql[from..]);
    out.retain(|s| lex(s).is_some_and(|t| !t.is_empty()));
    out
}

/// Whether a statement starts with one of the words [`parse`] handles.
pub(crate) fn is_command(sql: &str) -> bool {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
    ["copy", "declare", "fetch", "move", "close"].iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// Parses one statement the server handles itself; `None` if it is not one of them.
pub(crate) fn parse(sql: &str) -> Option<Result<Command, WireError>> {
    if !is_command(sql) {
        return None;
    }
    let tokens = lex(sql)?;
    let mut p = P { sql, tokens, at: 0 };
    let first = p.word()?.to_ascii_lowercase();
    let result = match first.as_str() {
        "copy" => p.copy(),
        "declare" => p.declare(),
        "fetch" => p.fetch(false),
        "move" => p.fetch(true),
        "close" => p.close(),
        _ => return None,
    };
    Some(result)
}

fn syntax(msg: impl Into<String>) -> WireError {
    WireError::Syntax(msg.into())
}

/// A cursor over the tokens of one statement.
struct P<'a> {
    sql: &'a str,
    tokens: Vec<Tok>,
    at: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at).map(|t| &t.token);
        self.at += 1;
        t
    }

    /// The next token as an unquoted keyword-like word.
    fn word(&mut self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) if w.quote_style.is_none() => {
                let v = w.value.clone();
                self.at += 1;
                Some(v)
            }
            _ => None,
        }
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_token(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), WireError> {
        if self.eat(word) { Ok(()) } else { Err(syntax(format!("expected {word} at {}", self.here()))) }
    }

    fn here(&self) -> String {
        match self.peek() {
            Some(t) => format!("'{t}'"),
            None => "the end of the statement".into(),
        }
    }

    fn end(&self) -> Result<(), WireError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(syntax(format!("unexpected {} at the end of the statement", self.here()))),
        }
    }

    /// The rest of the statement's text from the current token.
    fn rest(&self) -> &str {
        match self.tokens.get(self.at) {
            Some(t) => self.sql[t.start..].trim(),
            None => "",
        }
    }

    /// An identifier: unquoted ones keep their spelling when `fold` is false (stream names
    /// are case-sensitive in sluice) and are lowercased when it is true (cursor names, as in
    /// Postgres).
    fn ident(&mut self, fold: bool) -> Result<String, WireError> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let v = if w.quote_style.is_none() && fold { w.value.to_ascii_lowercase() } else { w.value.clone() };
                self.at += 1;
                Ok(v)
            }
            _ => Err(syntax(format!("expected a name at {}", self.here()))),
        }
    }

    /// `a` or `a.b` (kept as written, dots included).
    fn object_name(&mut self) -> Result<String, WireError> {
        let mut name = self.ident(false)?;
        while self.eat_token(&Token::Period) {
            name.push('.');
            name.push_str(&self.ident(false)?);
        }
        Ok(name)
    }

    /// `(a, b, c)`.
    fn column_list(&mut self) -> Result<Vec<String>, WireError> {
        let mut cols = vec![];
        loop {
            cols.push(self.ident(false)?);
            if self.eat_token(&Token::RParen) {
                return Ok(cols);
            }
            if !self.eat_token(&Token::Comma) {
                return Err(syntax(format!("expected ',' or ')' in the column list at {}", self.here())));
            }
        }
    }

    fn string(&mut self) -> Result<String, WireError> {
        match self.next().cloned() {
            Some(
                Token::SingleQuotedString(s)
                | Token::EscapedStringLiteral(s)
                | Token::NationalStringLiteral(s)
                | Token::DoubleQuotedString(s),
            ) => Ok(s),
            Some(t) => Err(syntax(format!("expected a string, found '{t}'"))),
            None => Err(syntax("expected a string at the end of the statement")),
        }
    }

    fn copy(&mut self) -> Result<Command, WireError> {
        let source = if self.eat_token(&Token::LParen) {
            // The query runs to the matching parenthesis.
            let from = self.tokens.get(self.at).map(|t| t.start).ok_or_else(|| syntax("COPY ( without a query"))?;
            let mut depth = 1usize;
            let mut to = None;
            while let Some(t) = self.tokens.get(self.at) {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            to = Some(t.start);
                            self.at += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                self.at += 1;
            }
            let to = to.ok_or_else(|| syntax("COPY (query: missing ')'"))?;
            Err(self.sql[from..to].trim().to_string())
        } else {
            let stream = self.object_name()?;
            let columns = if self.eat_token(&Token::LParen) { Some(self.column_list()?) } else { None };
            Ok((stream, columns))
        };
        let from = if self.eat("FROM") {
            true
        } else if self.eat("TO") {
            false
        } else {
            return Err(syntax(format!("expected FROM or TO at {}", self.here())));
        };
        let endpoint = self.word().map(|w| w.to_ascii_uppercase());
        match (from, endpoint.as_deref()) {
            (true, Some("STDIN")) | (false, Some("STDOUT")) => {}
            (_, Some("PROGRAM")) | (_, None) => {
                return Err(WireError::NotSupported(
                    "COPY to or from a server file or program is not supported: use STDIN or STDOUT \
                     (psql's \\copy reads and writes files on the client)"
                        .into(),
                ));
            }
            (_, Some(other)) => {
                return Err(syntax(format!("expected {} at '{other}'", if from { "STDIN" } else { "STDOUT" })));
            }
        }
        let format = self.copy_options()?;
        self.end()?;
        match (source, from) {
            (Ok((stream, columns)), true) => Ok(Command::CopyFrom { stream, columns, format }),
            (Err(_), true) => Err(syntax("COPY (query) FROM is not possible: a query can only be copied TO")),
            (Ok((stream, columns)), false) => {
                let cols = match columns {
                    Some(c) => c.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "),
                    None => "*".into(),
                };
                Ok(Command::CopyTo { query: format!("SELECT {cols} FROM table({})", quote_ident(&stream)), format })
            }
            (Err(query), false) => Ok(Command::CopyTo { query, format }),
        }
    }

    /// `WITH (FORMAT csv, HEADER, ...)` or the pre-9.0 spelling `WITH CSV HEADER ...`.
    fn copy_options(&mut self) -> Result<CopyFormat, WireError> {
        let mut f = CopyFormat::text();
        let (mut delimiter_given, mut null_given, mut escape_given) = (false, false, false);
        let with = self.eat("WITH");
        if self.eat_token(&Token::LParen) {
            loop {
                let name = self.word().ok_or_else(|| syntax(format!("expected a COPY option at {}", self.here())))?;
                let name = name.to_ascii_lowercase();
                // An option's value: a word, a string or nothing (booleans).
                let value = match self.peek().cloned() {
                    Some(Token::Comma | Token::RParen) | None => None,
                    Some(Token::Word(w)) => {
                        self.at += 1;
                        Some(w.value)
                    }
                    Some(Token::Number(n, _)) => {
                        self.at += 1;
                        Some(n)
                    }
                    Some(_) => Some(self.string()?),
                };
                match name.as_str() {
                    "format" => match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                        Some("text") => f.csv = false,
                        Some("csv") => f.csv = true,
                        Some("binary") => {
                            return Err(WireError::NotSupported("COPY in binary format is not supported".into()));
                        }
                        other => return Err(syntax(format!("COPY format {other:?} not recognized"))),
                    },
                    "header" => {
                        f.header = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                            None | Some("true" | "on" | "1") => Header::Yes,
                            Some("false" | "off" | "0") => Header::No,
                            Some("match") => Header::Match,
                            Some(other) => {
                                return Err(syntax(format!(
                                    "header requires a Boolean value or \"match\", got {other}"
                                )));
                            }
                        }
                    }
                    "delimiter" => {
                        f.delimiter = one_byte("delimiter", value.as_deref())?;
                        delimiter_given = true;
                    }
                    "null" => {
                        f.null = value.ok_or_else(|| syntax("NULL needs a string"))?;
                        null_given = true;
                    }
                    "quote" => f.quote = one_byte("quote", value.as_deref())?,
                    "escape" => {
                        f.escape = one_byte("escape", value.as_deref())?;
                        escape_given = true;
                    }
                    "encoding" => {
                        let e = value.unwrap_or_default().to_ascii_lowercase().replace(['-', '_'], "");
                        if e != "utf8" {
                            return Err(WireError::NotSupported("COPY only reads and writes UTF8".into()));
                        }
                    }
                    other => return Err(WireError::NotSupported(format!("COPY option \"{other}\" is not supported"))),
                }
                if self.eat_token(&Token::RParen) {
                    break;
                }
                if !self.eat_token(&Token::Comma) {
                    return Err(syntax(format!("expected ',' or ')' in the COPY options at {}", self.here())));
                }
            }
        } else {
            // [BINARY] [DELIMITER [AS] 'x'] [NULL [AS] 'x'] [CSV [HEADER] [QUOTE [AS] 'q'] [ESCAPE [AS] 'e']]
            let _ = with;
            loop {
                if self.eat("BINARY") {
                    return Err(WireError::NotSupported("COPY in binary format is not supported".into()));
                } else if self.eat("DELIMITER") {
                    self.eat("AS");
                    f.delimiter = one_byte("delimiter", Some(&self.string()?))?;
                    delimiter_given = true;
                } else if self.eat("NULL") {
                    self.eat("AS");
                    f.null = self.string()?;
                    null_given = true;
                } else if self.eat("CSV") {
                    f.csv = true;
                } else if self.eat("HEADER") {
                    f.header = Header::Yes;
                } else if self.eat("QUOTE") {
                    self.eat("AS");
                    f.quote = one_byte("quote", Some(&self.string()?))?;
                } else if self.eat("ESCAPE") {
                    self.eat("AS");
                    f.escape = one_byte("escape", Some(&self.string()?))?;
                    escape_given = true;
                } else {
                    break;
                }
            }
        }
        if f.csv {
            f.make_csv(delimiter_given, null_given);
            if !escape_given {
                f.escape = f.quote;
            }
            if f.delimiter == f.quote {
                return Err(syntax("COPY delimiter and quote must be different"));
            }
        } else if f.delimiter == b'\\' || f.delimiter == b'\n' || f.delimiter == b'\r' {
            return Err(syntax("COPY delimiter cannot be a backslash or a newline"));
        }
        if f.null.contains(['\r', '\n']) {
            return Err(syntax("COPY null representation cannot use newline or carriage return"));
        }
        Ok(f)
    }

    fn declare(&mut self) -> Result<Command, WireError> {
        let name = self.ident(true)?;
        let mut hold = false;
        loop {
            if self.eat("BINARY") {
                return Err(WireError::NotSupported(
                    "binary cursors are not supported: ask for binary results in the extended protocol".into(),
                ));
            } else if self.eat("INSENSITIVE") || self.eat("ASENSITIVE") {
            } else if self.eat("NO") {
                self.expect("SCROLL")?;
            } else if self.eat("SCROLL") {
                return Err(WireError::NotSupported("scrollable cursors are not supported (use NO SCROLL)".into()));
            } else {
                break;
            }
        }
        self.expect("CURSOR")?;
        if self.eat("WITH") {
            self.expect("HOLD")?;
            hold = true;
        } else if self.eat("WITHOUT") {
            self.expect("HOLD")?;
        }
        self.expect("FOR")?;
        let query = self.rest().to_string();
        if query.is_empty() {
            return Err(syntax("DECLARE ... CURSOR FOR needs a query"));
        }
        Ok(Command::Declare { name, hold, query })
    }

    fn fetch(&mut self, skip: bool) -> Result<Command, WireError> {
        let count_of = |p: &mut Self| -> Result<Option<Count>, WireError> {
            if p.eat("ALL") {
                return Ok(Some(Count::All));
            }
            match p.peek().cloned() {
                Some(Token::Number(n, _)) => {
                    p.at += 1;
                    let n: i64 = n.parse().map_err(|_| syntax(format!("bad row count {n}")))?;
                    if n < 0 {
                        return Err(WireError::ForwardOnly);
                    }
                    Ok(Some(Count::Rows(n as u64)))
                }
                Some(Token::Minus) => Err(WireError::ForwardOnly),
                _ => Ok(None),
            }
        };
        let count = if self.eat("NEXT") {
            Count::Rows(1)
        } else if self.eat("FORWARD") {
            count_of(self)?.unwrap_or(Count::Rows(1))
        } else if ["PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE", "BACKWARD"].iter().any(|w| self.peek_word(w)) {
            return Err(WireError::ForwardOnly);
        } else {
            count_of(self)?.unwrap_or(Count::Rows(1))
        };
        if !self.eat("FROM") {
            self.eat("IN");
        }
        let name = self.ident(true)?;
        self.end()?;
        Ok(Command::Fetch { name, count, skip })
    }

    fn close(&mut self) -> Result<Command, WireError> {
        if self.eat("ALL") {
            self.end()?;
            return Ok(Command::Close { name: None });
        }
        let name = self.ident(true)?;
        self.end()?;
        Ok(Command::Close { name: Some(name) })
    }
}

fn one_byte(what: &str, v: Option<&str>) -> Result<u8, WireError> {
    match v.map(str::as_bytes) {
        Some([b]) if b.is_ascii() => Ok(*b),
        _ => Err(syntax(format!("COPY {what} must be a single one-byte character"))),
    }
}

/// A double-quoted identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(sql: &str) -> Command {
        parse(sql).expect("a command").expect("parses")
    }

    fn err(sql: &str) -> WireError {
        parse(sql).expect("a command").expect_err("refused")
    }

    #[test]
    fn splits_on_semicolons_outside_strings() {
        assert_eq!(split("BEGIN; SELECT ';'; ; COMMIT;"), vec!["BEGIN", " SELECT ';'", " COMMIT"]);
        assert_eq!(split("SELECT 1 -- a; comment\n"), vec!["SELECT 1 -- a; comment\n"]);
    }

    #[test]
    fn copy_from_forms() {
        let text = cmd("COPY s FROM STDIN");
        let Command::CopyFrom { stream, columns, format } = text else { panic!() };
        assert_eq!((stream.as_str(), columns, format.csv, format.delimiter), ("s", None, false, b'\t'));
        assert_eq!(format.null, "\\N");
        let Command::CopyFrom { columns, format, .. } =
            cmd("copy s (a, \"B\") from stdin with (format csv, header, delimiter ';', null 'NA')")
        else {
            panic!()
        };
        assert_eq!(columns, Some(vec!["a".to_string(), "B".to_string()]));
        assert_eq!(
            (format.csv, format.header, format.delimiter, format.null.as_str()),
            (true, Header::Yes, b';', "NA")
        );
        let Command::CopyFrom { format, .. } = cmd("COPY s FROM STDIN WITH CSV HEADER") else { panic!() };
        assert_eq!((format.csv, format.header, format.delimiter, format.null.as_str()), (true, Header::Yes, b',', ""));
        let Command::CopyFrom { format, .. } = cmd("COPY s FROM STDIN (FORMAT 'csv', HEADER false)") else { panic!() };
        assert_eq!((format.csv, format.header), (true, Header::No));
        assert!(matches!(err("COPY s FROM '/etc/passwd'"), WireError::NotSupported(_)));
        assert!(matches!(err("COPY s FROM STDIN (FORMAT binary)"), WireError::NotSupported(_)));
        assert!(matches!(err("COPY s FROM STDIN (DELIMITER 'ab')"), WireError::Syntax(_)));
        assert!(matches!(err("COPY s FROM STDIN garbage"), WireError::Syntax(_)));
    }

    #[test]
    fn copy_to_forms() {
        let Command::CopyTo { query, format } =
            cmd("COPY (SELECT a, (1 + 2) FROM table(s)) TO STDOUT WITH (FORMAT csv)")
        else {
            panic!()
        };
        assert_eq!(query, "SELECT a, (1 + 2) FROM table(s)");
        assert!(format.csv);
        let Command::CopyTo { query, .. } = cmd("COPY s (a, b) TO STDOUT") else { panic!() };
        assert_eq!(query, "SELECT \"a\", \"b\" FROM table(\"s\")");
        assert!(matches!(err("COPY (SELECT 1) FROM STDIN"), WireError::Syntax(_)));
    }

    #[test]
    fn cursor_forms() {
        assert_eq!(
            cmd("DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT * FROM table(s)"),
            Command::Declare { name: "_psql_cursor".into(), hold: false, query: "SELECT * FROM table(s)".into() }
        );
        assert_eq!(
            cmd("declare \"C\" cursor with hold for select 1"),
            Command::Declare { name: "C".into(), hold: true, query: "select 1".into() }
        );
        assert_eq!(
            cmd("FETCH FORWARD 100 FROM _psql_cursor"),
            Command::Fetch { name: "_psql_cursor".into(), count: Count::Rows(100), skip: false }
        );
        assert_eq!(cmd("FETCH ALL IN C"), Command::Fetch { name: "c".into(), count: Count::All, skip: false });
        assert_eq!(cmd("fetch c"), Command::Fetch { name: "c".into(), count: Count::Rows(1), skip: false });
        assert_eq!(cmd("MOVE 5 c"), Command::Fetch { name: "c".into(), count: Count::Rows(5), skip: true });
        assert_eq!(cmd("CLOSE ALL"), Command::Close { name: None });
        assert_eq!(cmd("close C"), Command::Close { name: Some("c".into()) });
        assert_eq!(err("FETCH BACKWARD 1 FROM c"), WireError::ForwardOnly);
        assert_eq!(err("FETCH -1 FROM c"), WireError::ForwardOnly);
        assert!(matches!(err("DECLARE c SCROLL CURSOR FOR SELECT 1"), WireError::NotSupported(_)));
        assert!(parse("SELECT 1").is_none());
    }
}
