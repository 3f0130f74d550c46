//! Statement parameters (`$1`, `$2`, ...): where they are in the SQL text, what type each one
//! probably has (for clients that let the server choose), and their values as SQL literals.
//!
//! Values are never pasted into SQL as the client sent them: each is decoded by its type
//! (text or binary format), checked, and written back as a literal of that type; strings are
//! quoted and escaped so that any input, `'; DROP STREAM s; --` included, stays one string.

use bytes::Bytes;
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError};
use sluice::Database;
use sluice::arrow::datatypes::TimeUnit;
use sluice_sql::SluiceDialect;
use sluice_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// Placeholders found in a statement's text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placeholders {
    /// (byte start, byte end, 1-based index) in text order.
    spans: Vec<(usize, usize, usize)>,
    /// The highest index.
    pub count: usize,
}

pub(crate) fn tokens(sql: &str) -> Vec<TokenWithSpan> {
    let dialect = SluiceDialect::new();
    Tokenizer::new(&dialect, sql).tokenize_with_location().unwrap_or_default()
}

/// Byte offsets of 1-based (line, column) token positions. Positions asked in text order
/// (as the tokenizer yields them) cost linear time in all: each walks on from the previous one
/// instead of counting characters from the start of its line, which made long one-line
/// statements (a 1,000-row INSERT) quadratic.
pub(crate) struct Offsets<'a> {
    sql: &'a str,
    line_starts: Vec<usize>,
    /// The last position found: line, column, byte.
    last: (u64, u64, usize),
}

impl<'a> Offsets<'a> {
    pub fn new(sql: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Offsets { sql, line_starts, last: (1, 1, 0) }
    }

    /// The byte offset of (line, column); past the end of the text, its length.
    pub fn at(&mut self, line: u64, column: u64) -> Option<usize> {
        let line_start = *self.line_starts.get(line.checked_sub(1)? as usize)?;
        let skip = column.checked_sub(1)? as usize;
        let (from_col, from) = match self.last {
            (l, c, b) if l == line && c <= column => ((c - 1) as usize, b),
            _ => (0, line_start),
        };
        let byte = match self.sql[from..].char_indices().nth(skip - from_col) {
            Some((i, _)) => from + i,
            None => return Some(self.sql.len()),
        };
        self.last = (line, column, byte);
        Some(byte)
    }
}

/// Finds `$n` placeholders with the SQL lexer (so `'$1'` in a string or comment is not one).
pub(crate) fn scan(sql: &str) -> Placeholders {
    let mut offsets = Offsets::new(sql);
    let mut p = Placeholders::default();
    for t in tokens(sql) {
        if let Token::Placeholder(name) = &t.token
            && let Some(n) = name.strip_prefix('$').and_then(|d| d.parse::<usize>().ok())
            && n >= 1
            && let Some(start) = offsets.at(t.span.start.line, t.span.start.column)
        {
            let end = start + name.len();
            if sql.get(start..end) == Some(name.as_str()) {
                p.spans.push((start, end, n));
                p.count = p.count.max(n);
            }
        }
    }
    p
}

/// The SQL with each placeholder replaced by `literals[n - 1]`.
pub(crate) fn substitute(sql: &str, p: &Placeholders, literals: &[String]) -> String {
    let mut out = String::with_capacity(sql.len() + 16 * literals.len());
    let mut at = 0;
    for &(start, end, n) in &p.spans {
        out.push_str(&sql[at..start]);
        out.push(' ');
        out.push_str(literals.get(n - 1).map(String::as_str).unwrap_or("NULL"));
        out.push(' ');
        at = end;
    }
    out.push_str(&sql[at..]);
    out
}

/// A SQL string literal: quotes and backslashes escaped (sluice's lexer honours backslash
/// escapes, as ClickHouse does).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn bad_value(ty: &Type, why: impl std::fmt::Display) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "22P02".into(),
        format!("invalid value for parameter of type {}: {why}", ty.name()),
    )))
}

fn signed(v: String) -> String {
    if v.starts_with('-') { format!("({v})") } else { v }
}

fn text_of(ty: &Type, raw: &[u8]) -> Result<String, PgWireError> {
    String::from_utf8(raw.to_vec()).map_err(|_| bad_value(ty, "not UTF-8"))
}

/// The literal for one parameter value (`None` = NULL) of type `ty` in text or binary format.
pub(crate) fn literal(ty: &Type, raw: Option<&Bytes>, binary: bool) -> Result<String, PgWireError> {
    let Some(raw) = raw else { return Ok("NULL".into()) };
    let raw: &[u8] = raw;
    let fixed = |n: usize| -> Result<&[u8], PgWireError> {
        if raw.len() == n { Ok(raw) } else { Err(bad_value(ty, format!("{} bytes, expected {n}", raw.len()))) }
    };
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            let v: i64 = if binary {
                match raw.len() {
                    2 => i16::from_be_bytes([raw[0], raw[1]]) as i64,
                    4 => i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad_value(ty, "length"))?) as i64,
                    8 => i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad_value(ty, "length"))?),
                    n => return Err(bad_value(ty, format!("{n} bytes"))),
                }
            } else {
                let s = text_of(ty, raw)?;
                s.trim().parse().map_err(|e| bad_value(ty, format!("'{s}': {e}")))?
            };
            Ok(signed(v.to_string()))
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            let v: f64 = if binary {
                match raw.len() {
                    4 => f32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as f64,
                    8 => f64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad_value(ty, "length"))?),
                    n => return Err(bad_value(ty, format!("{n} bytes"))),
                }
            } else {
                let s = text_of(ty, raw)?;
                match s.trim().to_ascii_lowercase().as_str() {
                    "nan" => f64::NAN,
                    "infinity" | "inf" => f64::INFINITY,
                    "-infinity" | "-inf" => f64::NEG_INFINITY,
                    t => t.parse().map_err(|e| bad_value(ty, format!("'{s}': {e}")))?,
                }
            };
            Ok(if v.is_nan() {
                "CAST('nan' AS float64)".into()
            } else if v.is_infinite() {
                format!("CAST('{}' AS float64)", if v > 0.0 { "inf" } else { "-inf" })
            } else {
                signed(format!("{v:?}"))
            })
        }
        Type::BOOL => {
            let v = if binary {
                fixed(1)?[0] != 0
            } else {
                match text_of(ty, raw)?.trim().to_ascii_lowercase().as_str() {
                    "t" | "true" | "1" | "on" | "yes" | "y" => true,
                    "f" | "false" | "0" | "off" | "no" | "n" => false,
                    s => return Err(bad_value(ty, format!("'{s}'"))),
                }
            };
            Ok(if v { "true" } else { "false" }.into())
        }
        Type::NUMERIC => {
            let s = if binary {
                numeric_from_binary(raw).ok_or_else(|| bad_value(ty, "malformed numeric"))?
            } else {
                text_of(ty, raw)?
            };
            let s = s.trim().to_string();
            let body = s.strip_prefix('-').unwrap_or(&s);
            let ok = !body.is_empty()
                && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && body.bytes().filter(|&b| b == b'.').count() <= 1
                && body.bytes().any(|b| b.is_ascii_digit());
            if ok { Ok(signed(s)) } else { Err(bad_value(ty, format!("'{s}'"))) }
        }
        Type::DATE if binary => {
            let days = i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| bad_value(ty, "length"))?) as i64 + 10_957;
            let mut out = String::new();
            sluice_sql::temporal::format_date(days, &mut out);
            Ok(quote(&out))
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ if binary => {
            let micros = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| bad_value(ty, "length"))?);
            let mut out = String::new();
            sluice_sql::temporal::format_timestamp(
                micros.saturating_add(946_684_800_000_000),
                TimeUnit::Microsecond,
                0,
                &mut out,
            );
            Ok(quote(&out))
        }
        Type::UUID if binary => {
            let b = fixed(16)?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Ok(quote(&format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])))
        }
        Type::BYTEA => {
            let bytes = if binary {
                raw.to_vec()
            } else {
                let s = text_of(ty, raw)?;
                match s.strip_prefix("\\x") {
                    Some(hex) => decode_hex(hex).ok_or_else(|| bad_value(ty, "malformed hex"))?,
                    None => s.into_bytes(),
                }
            };
            let s = String::from_utf8(bytes).map_err(|_| {
                PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".into(),
                    "0A000".into(),
                    "bytea parameters that are not UTF-8 are not supported".into(),
                )))
            })?;
            Ok(quote(&s))
        }
        Type::JSONB if binary => {
            let body = raw.strip_prefix(&[1u8]).unwrap_or(raw);
            Ok(quote(&text_of(ty, body)?))
        }
        // Text, varchar, name, unknown, json, and the text form of dates, timestamps, uuids:
        // a string literal (the engine converts strings compared with or inserted into typed
        // columns).
        _ => {
            let s = text_of(ty, raw)?;
            if s.contains('\0') {
                return Err(bad_value(ty, "contains a NUL character"));
            }
            Ok(quote(&s))
        }
    }
}

/// A harmless value of type `ty`, for describing a statement before its parameters are known.
pub(crate) fn dummy_literal(ty: &Type) -> String {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID | Type::NUMERIC => "0".into(),
        Type::FLOAT4 | Type::FLOAT8 => "0.0".into(),
        Type::BOOL => "false".into(),
        Type::DATE => quote("1970-01-01"),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => quote("1970-01-01 00:00:00"),
        Type::UUID => quote("00000000-0000-0000-0000-000000000000"),
        _ => quote(""),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Postgres' binary numeric as decimal text.
fn numeric_from_binary(raw: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?])) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign == 0xC000 {
        return None;
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| word(8 + 2 * i)).collect::<Option<_>>()?;
    let mut int = String::new();
    let mut frac = String::new();
    for (i, d) in digits.iter().enumerate() {
        let pos = weight - i as i32;
        if pos >= 0 {
            int.push_str(&format!("{d:04}"));
        } else {
            if frac.is_empty() {
                for _ in 0..(-pos - 1) {
                    frac.push_str("0000");
                }
            }
            frac.push_str(&format!("{d:04}"));
        }
    }
    if weight >= ndigits as i32 {
        for _ in 0..(weight - ndigits as i32 + 1) {
            int.push_str("0000");
        }
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    while frac.len() < dscale {
        frac.push('0');
    }
    frac.truncate(dscale);
    let neg = if sign == 0x4000 { "-" } else { "" };
    Some(if frac.is_empty() { format!("{neg}{int}") } else { format!("{neg}{int}.{frac}") })
}

/// The Postgres type of a type name written in SQL (Postgres or sluice spelling).
fn type_by_name(name: &str) -> Option<Type> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "int2" | "smallint" | "int16" | "uint8" => Type::INT2,
        "int8" | "bigint" | "int64" | "uint32" => Type::INT8,
        "int" | "int4" | "integer" | "int32" | "uint16" => Type::INT4,
        "float4" | "real" | "float32" => Type::FLOAT4,
        "float8" | "float64" | "double" | "float" => Type::FLOAT8,
        "bool" | "boolean" => Type::BOOL,
        "numeric" | "decimal" | "uint64" => Type::NUMERIC,
        "date" | "date32" => Type::DATE,
        "timestamp" | "datetime" | "datetime64" => Type::TIMESTAMP,
        "timestamptz" => Type::TIMESTAMPTZ,
        "uuid" => Type::UUID,
        "bytea" => Type::BYTEA,
        "text" | "varchar" | "string" | "char" | "name" => Type::TEXT,
        _ => return None,
    })
}

/// Guesses each parameter's type from the text around it: `$1::int8`, `CAST($1 AS int8)`,
/// `column = $1` / `$1 < column` for a column of a stream the statement names, and the target
/// columns of `INSERT INTO s (a, b) VALUES ($1, $2)`. Unknown ones are `text`.
pub(crate) fn infer_types(sql: &str, p: &Placeholders, db: &Database) -> Vec<Type> {
    let mut types: Vec<Option<Type>> = vec![None; p.count];
    let toks: Vec<Token> =
        tokens(sql).into_iter().map(|t| t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let word = |i: usize| -> Option<String> {
        match toks.get(i) {
            Some(Token::Word(w)) => Some(w.value.clone()),
            _ => None,
        }
    };
    let streams: Vec<_> = toks
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => db.stream_def(&w.value).ok(),
            _ => None,
        })
        .collect();
    let column_type = |name: &str| -> Option<Type> {
        streams.iter().find_map(|d| {
            d.columns.iter().find(|c| c.field.name() == name).map(|c| crate::pg::encode::pg_type(c.field.data_type()))
        })
    };
    let is_cmp = |t: Option<&Token>| {
        matches!(t, Some(Token::Eq | Token::Neq | Token::Lt | Token::Gt | Token::LtEq | Token::GtEq | Token::DoubleEq))
    };
    // INSERT INTO s [(cols)] VALUES (...), (...)
    let mut insert_cols: Vec<String> = vec![];
    let mut values_at = None;
    if word(0).is_some_and(|w| w.eq_ignore_ascii_case("insert")) {
        let mut i = 1;
        if word(i).is_some_and(|w| w.eq_ignore_ascii_case("into")) {
            i += 1;
        }
        if let Some(name) = word(i)
            && let Ok(def) = db.stream_def(&name)
        {
            i += 1;
            if matches!(toks.get(i), Some(Token::LParen)) {
                i += 1;
                while let Some(t) = toks.get(i) {
                    match t {
                        Token::Word(w) => insert_cols.push(w.value.clone()),
                        Token::RParen => break,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            } else {
                insert_cols =
                    def.columns.iter().map(|c| c.field.name().clone()).filter(|n| n != sluice::TP_TIME).collect();
            }
            if word(i).is_some_and(|w| w.eq_ignore_ascii_case("values")) {
                values_at = Some(i + 1);
            }
        }
    }
    let (mut depth, mut position) = (0usize, 0usize);
    for (i, t) in toks.iter().enumerate() {
        if let Some(start) = values_at
            && i >= start
        {
            match t {
                Token::LParen => {
                    depth += 1;
                    if depth == 1 {
                        position = 0;
                    }
                }
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Comma if depth == 1 => position += 1,
                _ => {}
            }
        }
        let Token::Placeholder(name) = t else { continue };
        let Some(n) = name.strip_prefix('$').and_then(|d| d.parse::<usize>().ok()).filter(|&n| n >= 1) else {
            continue;
        };
        let slot = &mut types[n - 1];
        if slot.is_some() {
            continue;
        }
        let guess = if matches!(toks.get(i + 1), Some(Token::DoubleColon)) {
            word(i + 2).and_then(|w| type_by_name(&w))
        } else if i >= 2
            && matches!(toks.get(i - 1), Some(Token::LParen))
            && word(i - 2).is_some_and(|w| w.eq_ignore_ascii_case("cast"))
            && word(i + 1).is_some_and(|w| w.eq_ignore_ascii_case("as"))
        {
            word(i + 2).and_then(|w| type_by_name(&w))
        } else if values_at.is_some_and(|s| i > s) && depth == 1 {
            insert_cols.get(position).and_then(|c| column_type(c))
        } else if i >= 2 && is_cmp(toks.get(i - 1)) {
            word(i - 2).and_then(|c| column_type(&c))
        } else if is_cmp(toks.get(i + 1)) {
            word(i + 2).and_then(|c| column_type(&c))
        } else {
            None
        };
        *slot = guess;
    }
    types.into_iter().map(|t| t.unwrap_or(Type::TEXT)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_strings_only() {
        let sql = "SELECT '$1', $1, \"$2\" -- $3\n, $2";
        let p = scan(sql);
        assert_eq!(p.count, 2);
        let out = substitute(sql, &p, &["1".into(), quote("x'y")]);
        assert_eq!(out, "SELECT '$1',  1 , \"$2\" -- $3\n,  'x''y' ");
    }

    #[test]
    fn token_offsets_are_byte_offsets() {
        let sql = "SELECT 'é', $1\n  ,ü, $2; SELECT 1";
        let mut o = Offsets::new(sql);
        for t in tokens(sql) {
            if matches!(t.token, Token::EOF) {
                continue;
            }
            let at = o.at(t.span.start.line, t.span.start.column).unwrap();
            assert!(sql[at..].starts_with(&t.token.to_string()), "{:?} at {at}", t.token);
        }
        // A long one-line statement is lexed in linear time (it was quadratic).
        let values: Vec<String> = (0..20_000).map(|i| format!("({i}, 'v{i}')")).collect();
        let sql = format!("INSERT INTO s (a, b) VALUES {}", values.join(","));
        let t = std::time::Instant::now();
        let mut o = Offsets::new(&sql);
        let last = tokens(&sql).into_iter().filter_map(|t| o.at(t.span.start.line, t.span.start.column)).last();
        assert_eq!(last, Some(sql.len() - 1), "the closing parenthesis");
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn quoted_strings_stay_one_token() {
        for s in ["'; DROP STREAM s; --", "a\\'b", "\\", "''", "x\\", "é 'ü' \\n"] {
            let lit = quote(s);
            let toks: Vec<Token> = tokens(&lit).into_iter().map(|t| t.token).collect();
            assert_eq!(toks, vec![Token::SingleQuotedString(s.to_string())], "{s:?}");
        }
    }

    #[test]
    fn numbers_are_checked() {
        let b = |s: &str| Bytes::from(s.to_string());
        assert_eq!(literal(&Type::INT8, Some(&b("-5")), false).unwrap(), "(-5)");
        assert!(literal(&Type::INT8, Some(&b("5; DROP STREAM s")), false).is_err());
        assert_eq!(literal(&Type::INT4, Some(&Bytes::from(vec![0, 0, 1, 0])), true).unwrap(), "256");
        assert_eq!(literal(&Type::FLOAT8, Some(&b("0.5")), false).unwrap(), "0.5");
        assert_eq!(literal(&Type::NUMERIC, Some(&b("12.50")), false).unwrap(), "12.50");
        assert!(literal(&Type::NUMERIC, Some(&b("1) OR (1")), false).is_err());
        assert_eq!(literal(&Type::TEXT, None, false).unwrap(), "NULL");
    }

    #[test]
    fn numeric_binary_round_trips() {
        for s in ["12345.678", "-0.5", "0", "10000", "0.0001", "18446744073709551615"] {
            let mut b = bytes::BytesMut::new();
            crate::pg::encode::numeric_binary(s, &mut b);
            assert_eq!(numeric_from_binary(&b).as_deref(), Some(s), "{s}");
        }
    }
}
