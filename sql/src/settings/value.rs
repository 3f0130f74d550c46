//! Literal setting values (`SETTINGS k = v`) and the ordered list a query or INSERT carries.

use std::fmt;

use sqlparser::ast::{Expr, UnaryOperator, Value};

use crate::error::{Error, Result};
use crate::types::{write_ident, write_string};

/// A literal setting value as written after `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// A whole number, possibly negative.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A quoted string, or a bare word (`mode = append` is `mode = 'append'`).
    String(String),
}

impl SettingValue {
    /// Reads a literal expression. `name` is only used in the error.
    pub fn from_expr(name: &str, expr: &Expr) -> Result<Self> {
        let bad = || Error::setting(name, format!("expected a number, string or true/false, found `{expr}`"));
        match expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => number(name, n, false),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(SettingValue::String(s.clone())),
                Value::Boolean(b) => Ok(SettingValue::Bool(*b)),
                _ => Err(bad()),
            },
            Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => number(name, n, true),
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            },
            Expr::Identifier(ident) if ident.quote_style.is_none() => Ok(SettingValue::String(ident.value.clone())),
            _ => Err(bad()),
        }
    }

    /// The value as a string: strings as they are, numbers and booleans as written.
    pub fn as_string(&self) -> String {
        match self {
            SettingValue::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The value as an integer: an `Int`, or a string holding one (`shards = '3'`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SettingValue::Int(i) => Some(*i),
            SettingValue::String(s) => s.trim().parse().ok(),
            SettingValue::Bool(b) => Some(i64::from(*b)),
            SettingValue::Float(_) => None,
        }
    }
}

fn number(name: &str, text: &str, negative: bool) -> Result<SettingValue> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    let signed = if negative { format!("-{digits}") } else { digits };
    if let Ok(i) = signed.parse::<i64>() {
        return Ok(SettingValue::Int(i));
    }
    if signed.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(Error::setting(name, format!("{signed} is out of range")));
    }
    signed
        .parse::<f64>()
        .map(SettingValue::Float)
        .map_err(|_| Error::setting(name, format!("`{signed}` is not a number")))
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::Float(x) => write!(f, "{x:?}"),
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::String(s) => write_string(f, s),
        }
    }
}

/// A `name = value` list as written (query, INSERT and view settings).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingList(pub Vec<(String, SettingValue)>);

impl SettingList {
    /// The value of `name` (ASCII case-insensitive), the last one if it is given twice.
    pub fn get(&self, name: &str) -> Option<&SettingValue> {
        self.0.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Whether there are no settings.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The settings in order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, SettingValue)> {
        self.0.iter()
    }
}

impl fmt::Display for SettingList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_ident(f, k)?;
            write!(f, " = {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SettingValue {
        SettingValue::String(v.into())
    }

    #[test]
    fn setting_values_from_expressions() -> Result<()> {
        let v = |sql: &str| SettingValue::from_expr("x", &crate::parse_expr(sql)?);
        assert_eq!(v("3")?, SettingValue::Int(3));
        assert_eq!(v("-2")?, SettingValue::Int(-2));
        assert_eq!(v("1_000")?, SettingValue::Int(1000));
        assert_eq!(v("0.5")?, SettingValue::Float(0.5));
        assert_eq!(v("'earliest'")?, s("earliest"));
        assert_eq!(v("earliest")?, s("earliest"));
        assert_eq!(v("true")?, SettingValue::Bool(true));
        assert!(v("99999999999999999999").is_err());
        assert!(v("a + 1").is_err());
        assert!(v("`quoted`").is_err());
        Ok(())
    }
}
