//! The Postgres message path's own parsers, reachable without a connection: for the fuzz
//! targets in `sluice_tests::fuzz` (and the corpus replay in CI). Not an API.
//!
//! The frame codec is the `pgwire` crate's; what sluice adds on top is parsed here: a simple
//! query's text split into statements, the statements the server handles itself (COPY, DECLARE,
//! FETCH, MOVE, CLOSE), `$n` placeholders and parameter values turned into literals, and COPY
//! FROM STDIN data in text and CSV format.

use bytes::Bytes;
use pgwire::api::Type;
use sluice::StreamDef;
use sluice_sql::sqlparser::tokenizer::Token;

use super::command::{self, Command};
use super::copy::CopyIn;
use super::params;

/// Parameter types tried for every parameter value, in text and in binary format.
const PARAM_TYPES: [Type; 15] = [
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::BOOL,
    Type::NUMERIC,
    Type::DATE,
    Type::TIMESTAMP,
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::BYTEA,
    Type::JSONB,
    Type::TEXT,
    Type::VARCHAR,
];

/// Largest COPY input held, as `Config::copy_max_bytes` (small: fuzz inputs are small).
const COPY_LIMIT: usize = 1 << 20;

/// Feeds one client exchange through the server's parsers. `data` is a simple Query message's
/// text up to the first NUL byte (as on the wire, where it is a C string); the bytes after it
/// are what follows: CopyData for a `COPY ... FROM STDIN` into `def` (its stream name is
/// ignored), else parameter values separated by NUL bytes for the statement's `$n`
/// placeholders.
///
/// Returns the rows COPY data gave. Bad input must give errors, never a panic. `Err` is a broken invariant: COPY data cut into
/// messages differently reads differently, a parameter value's literal does not parse as one
/// expression (or, for a string, does not read back as the same string), or placeholders found
/// in the SQL do not match what substitution replaces.
#[doc(hidden)]
pub fn message_path(def: &StreamDef, data: &[u8]) -> Result<usize, String> {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(sql) = std::str::from_utf8(text) else { return Ok(0) };
    let mut rows = 0;
    for stmt in command::split(sql) {
        match command::parse(stmt) {
            Some(Ok(Command::CopyFrom { columns, format, .. })) => rows += copy_in(def, columns, format, rest)?,
            Some(_) => {}
            None => parameters(stmt, rest)?,
        }
    }
    Ok(rows)
}

/// COPY FROM STDIN: the data fed in one message and in small pieces must read the same.
/// Returns the rows read.
fn copy_in(
    def: &StreamDef,
    columns: Option<Vec<String>>,
    format: command::CopyFormat,
    data: &[u8],
) -> Result<usize, String> {
    let run = |piece: usize| -> Option<Result<Option<sluice::arrow::array::RecordBatch>, String>> {
        let mut copy = CopyIn::new(def, columns.clone(), format.clone(), COPY_LIMIT).ok()?;
        let _ = (copy.columns(), copy.stream());
        for chunk in data.chunks(piece.max(1)) {
            copy.feed(chunk);
        }
        Some(copy.finish().map_err(|e| e.to_string()))
    };
    let whole = run(data.len());
    let pieces = run(3);
    if whole != pieces {
        return Err(format!("COPY data read whole gives {whole:?}, in 3-byte messages {pieces:?}"));
    }
    Ok(match whole {
        Some(Ok(Some(batch))) => batch.num_rows(),
        _ => 0,
    })
}

/// Placeholders and parameter values as literals.
fn parameters(stmt: &str, rest: &[u8]) -> Result<(), String> {
    let placeholders = params::scan(stmt);
    let values: Vec<&[u8]> = if rest.is_empty() { vec![] } else { rest.split(|&b| b == 0).collect() };
    let mut literals = Vec::with_capacity(placeholders.count.min(64));
    for (i, raw) in values.iter().enumerate().take(64) {
        let raw = Bytes::copy_from_slice(raw);
        let mut first_ok = None;
        for (k, ty) in PARAM_TYPES.iter().enumerate() {
            for binary in [false, true] {
                let Ok(lit) = params::literal(ty, Some(&raw), binary) else { continue };
                check_literal(ty, &raw, binary, &lit)?;
                if (k + i) % PARAM_TYPES.len() == 0 || first_ok.is_none() {
                    first_ok = Some(lit);
                }
            }
        }
        literals.push(first_ok.unwrap_or_else(|| "NULL".into()));
    }
    let sql = params::substitute(stmt, &placeholders, &literals);
    if placeholders.count > 0 {
        let left = params::scan(&sql);
        if left.count > 0 {
            return Err(format!("placeholders left after substitution: {stmt:?} -> {sql:?}"));
        }
    }
    let _ = sluice_sql::parse(&sql);
    Ok(())
}

/// A literal is one expression; a string literal reads back as the value's text.
fn check_literal(ty: &Type, raw: &[u8], binary: bool, lit: &str) -> Result<(), String> {
    if let Err(e) = sluice_sql::parse_expr(lit) {
        return Err(format!("{ty} value {raw:?} (binary: {binary}) gave literal {lit:?}, which does not parse: {e}"));
    }
    let text_string = !binary && !matches!(*ty, Type::BYTEA) && lit.starts_with('\'');
    if text_string {
        let tokens: Vec<Token> = params::tokens(lit)
            .into_iter()
            .map(|t| t.token)
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
            .collect();
        let expected = String::from_utf8_lossy(raw);
        if tokens != [Token::SingleQuotedString(expected.clone().into_owned())] {
            return Err(format!("{ty} value {expected:?} gave literal {lit:?}, which lexes as {tokens:?}"));
        }
    }
    Ok(())
}
