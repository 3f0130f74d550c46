//! The type parser: a type at a sqlparser `Parser`'s position, in Proton (snake_case) or
//! ClickHouse (CamelCase) spelling, case-insensitive, with the usual SQL aliases.

use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::{MAX_DECIMAL_PRECISION, MAX_FIXED_STRING, MAX_TYPE_DEPTH, SqlType, TupleField};
use crate::error::{Error, Location, Result};
use crate::lexer;

/// What a type name (case-insensitive, underscores ignored) refers to.
#[derive(Debug, Clone)]
pub(crate) enum TypeName {
    Simple(SqlType),
    Double,
    Varchar,
    FixedString,
    Decimal,
    DecimalN(u8),
    DateTime,
    DateTime64,
    Nullable,
    LowCardinality,
    Array,
    Map,
    Tuple,
    Unsupported,
}

impl TypeName {
    /// Classifies a word; `None` if it is not a type name at all.
    pub(crate) fn lookup(word: &str) -> Option<TypeName> {
        if word.len() > 24 {
            return None;
        }
        let key: String = word.chars().filter(|c| *c != '_').map(|c| c.to_ascii_lowercase()).collect();
        Some(match key.as_str() {
            "int8" | "tinyint" => TypeName::Simple(SqlType::Int8),
            "int16" | "smallint" | "int2" => TypeName::Simple(SqlType::Int16),
            "int32" | "int" | "integer" | "int4" => TypeName::Simple(SqlType::Int32),
            "int64" | "bigint" => TypeName::Simple(SqlType::Int64),
            "uint8" => TypeName::Simple(SqlType::UInt8),
            "uint16" => TypeName::Simple(SqlType::UInt16),
            "uint32" => TypeName::Simple(SqlType::UInt32),
            "uint64" => TypeName::Simple(SqlType::UInt64),
            "float32" | "float" | "real" | "float4" => TypeName::Simple(SqlType::Float32),
            "float64" | "float8" => TypeName::Simple(SqlType::Float64),
            "double" => TypeName::Double,
            "bool" | "boolean" => TypeName::Simple(SqlType::Bool),
            "string" | "text" => TypeName::Simple(SqlType::String),
            "varchar" | "char" => TypeName::Varchar,
            "fixedstring" => TypeName::FixedString,
            "date" => TypeName::Simple(SqlType::Date),
            "date32" => TypeName::Simple(SqlType::Date32),
            "datetime" | "timestamp" => TypeName::DateTime,
            "datetime64" => TypeName::DateTime64,
            "uuid" => TypeName::Simple(SqlType::Uuid),
            "decimal" | "numeric" => TypeName::Decimal,
            "decimal32" => TypeName::DecimalN(9),
            "decimal64" => TypeName::DecimalN(18),
            "decimal128" => TypeName::DecimalN(38),
            "decimal256" => TypeName::DecimalN(76),
            "nullable" => TypeName::Nullable,
            "lowcardinality" => TypeName::LowCardinality,
            "array" => TypeName::Array,
            "map" => TypeName::Map,
            "tuple" => TypeName::Tuple,
            "int128"
            | "int256"
            | "uint128"
            | "uint256"
            | "enum"
            | "enum8"
            | "enum16"
            | "ipv4"
            | "ipv6"
            | "json"
            | "object"
            | "nested"
            | "bfloat16"
            | "float16"
            | "variant"
            | "dynamic"
            | "nothing"
            | "aggregatefunction"
            | "simpleaggregatefunction"
            | "point"
            | "ring"
            | "polygon"
            | "multipolygon"
            | "time"
            | "time64" => TypeName::Unsupported,
            _ => return None,
        })
    }
}

/// Parses a type at the parser's position.
pub(crate) fn parse_sql_type(p: &mut Parser<'_>) -> Result<SqlType> {
    parse_type(p, 0)
}

fn loc(p: &Parser<'_>) -> Location {
    p.peek_token_ref().span.start.into()
}

fn parse_type(p: &mut Parser<'_>, depth: usize) -> Result<SqlType> {
    let start = loc(p);
    if depth > MAX_TYPE_DEPTH {
        return Err(Error::parse(format!("type nested more than {MAX_TYPE_DEPTH} levels deep"), start));
    }
    let token = p.next_token();
    let name = match token.token {
        Token::Word(w) if w.quote_style.is_none() => w.value,
        other => return Err(Error::parse(format!("expected a type name, found `{other}`"), start)),
    };
    let Some(kind) = TypeName::lookup(&name) else {
        return Err(Error::UnknownType { name, location: start });
    };
    let invalid = |message: String| Error::parse(message, start);
    Ok(match kind {
        TypeName::Simple(ty) => ty,
        TypeName::Double => {
            if matches!(&p.peek_token_ref().token, t if lexer::is_word(t, "precision")) {
                p.next_token();
            }
            SqlType::Float64
        }
        TypeName::Varchar => {
            if p.consume_token(&Token::LParen) {
                number(p)?;
                close(p)?;
            }
            SqlType::String
        }
        TypeName::FixedString => {
            open(p, &name)?;
            let n = number(p)?;
            close(p)?;
            match u32::try_from(n) {
                Ok(n) if (1..=MAX_FIXED_STRING).contains(&n) => SqlType::FixedString(n),
                _ => {
                    return Err(invalid(format!(
                        "fixed_string length must be between 1 and {MAX_FIXED_STRING}, not {n}"
                    )));
                }
            }
        }
        TypeName::Decimal => {
            let (precision, scale) = if p.consume_token(&Token::LParen) {
                let precision = number(p)?;
                let scale = if p.consume_token(&Token::Comma) { number(p)? } else { 0 };
                close(p)?;
                (precision, scale)
            } else {
                (10, 0)
            };
            decimal(precision, scale).map_err(invalid)?
        }
        TypeName::DecimalN(precision) => {
            open(p, &name)?;
            let scale = number(p)?;
            close(p)?;
            decimal(u64::from(precision), scale).map_err(invalid)?
        }
        TypeName::DateTime => {
            let tz = if p.consume_token(&Token::LParen) {
                let tz = time_zone(p)?;
                close(p)?;
                Some(tz)
            } else {
                None
            };
            SqlType::DateTime { tz }
        }
        TypeName::DateTime64 => {
            let (precision, tz) = if p.consume_token(&Token::LParen) {
                let precision = number(p)?;
                let tz = if p.consume_token(&Token::Comma) { Some(time_zone(p)?) } else { None };
                close(p)?;
                (precision, tz)
            } else {
                (3, None)
            };
            if precision > 9 {
                return Err(invalid(format!("datetime64 precision must be between 0 and 9, not {precision}")));
            }
            SqlType::DateTime64 { precision: precision as u8, tz }
        }
        TypeName::Nullable => {
            let inner = parenthesized(p, &name, depth)?;
            SqlType::nullable(inner).map_err(invalid)?
        }
        TypeName::LowCardinality => {
            let inner = parenthesized(p, &name, depth)?;
            SqlType::low_cardinality(inner).map_err(invalid)?
        }
        TypeName::Array => SqlType::Array(Box::new(parenthesized(p, &name, depth)?)),
        TypeName::Map => {
            open(p, &name)?;
            let key = parse_type(p, depth + 1)?;
            if !p.consume_token(&Token::Comma) {
                return Err(Error::parse("map(...) needs a key and a value type: map(K, V)", loc(p)));
            }
            let value = parse_type(p, depth + 1)?;
            close(p)?;
            SqlType::map(key, value).map_err(invalid)?
        }
        TypeName::Tuple => SqlType::Tuple(tuple_fields(p, &name, depth)?),
        TypeName::Unsupported => {
            return Err(Error::not_implemented(format!("type `{name}`"), start));
        }
    })
}

fn open(p: &mut Parser<'_>, name: &str) -> Result<()> {
    if p.consume_token(&Token::LParen) {
        Ok(())
    } else {
        Err(Error::parse(format!("type `{name}` needs arguments in parentheses"), loc(p)))
    }
}

fn close(p: &mut Parser<'_>) -> Result<()> {
    let at = loc(p);
    let t = p.next_token();
    if t.token == Token::RParen {
        Ok(())
    } else {
        Err(Error::parse(format!("expected `)` in type, found `{}`", t.token), at))
    }
}

fn parenthesized(p: &mut Parser<'_>, name: &str, depth: usize) -> Result<SqlType> {
    open(p, name)?;
    let inner = parse_type(p, depth + 1)?;
    close(p)?;
    Ok(inner)
}

fn number(p: &mut Parser<'_>) -> Result<u64> {
    let at = loc(p);
    match p.next_token().token {
        Token::Number(n, false) => {
            n.replace('_', "").parse().map_err(|_| Error::parse(format!("expected a whole number, found `{n}`"), at))
        }
        other => Err(Error::parse(format!("expected a whole number, found `{other}`"), at)),
    }
}

fn time_zone(p: &mut Parser<'_>) -> Result<String> {
    let at = loc(p);
    match p.next_token().token {
        Token::SingleQuotedString(tz) if !tz.trim().is_empty() => Ok(tz),
        other => Err(Error::parse(format!("expected a time zone name in quotes, found `{other}`"), at)),
    }
}

fn decimal(precision: u64, scale: u64) -> Result<SqlType, String> {
    if !(1..=u64::from(MAX_DECIMAL_PRECISION)).contains(&precision) {
        return Err(format!("decimal precision must be between 1 and {MAX_DECIMAL_PRECISION}, not {precision}"));
    }
    if scale > precision {
        return Err(format!("decimal scale {scale} is larger than its precision {precision}"));
    }
    Ok(SqlType::Decimal { precision: precision as u8, scale: scale as u8 })
}

fn tuple_fields(p: &mut Parser<'_>, name: &str, depth: usize) -> Result<Vec<TupleField>> {
    open(p, name)?;
    let mut fields = Vec::new();
    loop {
        let at = loc(p);
        // `a int32` (named) vs `int32` / `array(...)` (unnamed): a name is a word followed by a word.
        let named = matches!(&p.peek_token_ref().token, Token::Word(_))
            && matches!(&p.peek_nth_token_ref(1).token, Token::Word(_));
        let field_name = if named {
            match p.next_token().token {
                Token::Word(w) => Some(w.value),
                _ => None,
            }
        } else {
            None
        };
        let ty = parse_type(p, depth + 1)?;
        if let Some(first) = fields.first() {
            let first: &TupleField = first;
            if first.name.is_some() != field_name.is_some() {
                return Err(Error::parse("tuple elements must be all named or all unnamed", at));
            }
        }
        if let Some(n) = &field_name
            && fields.iter().any(|f: &TupleField| f.name.as_deref() == Some(n))
        {
            return Err(Error::parse(format!("tuple element `{n}` is named twice"), at));
        }
        fields.push(TupleField { name: field_name, ty });
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    close(p)?;
    Ok(fields)
}
