//! Interval literals: Proton's `5s` / `2m` / `1h` and SQL's `INTERVAL 5 SECOND`.
//!
//! Both spellings parse into sqlparser's `Expr::Interval` (the lexer rewrites `5s` into
//! `INTERVAL 5 SECOND`); [`IntervalLiteral::from_expr`] reads either back as a typed value for
//! window sizes, EMIT policies and delays.

use std::fmt;

use sqlparser::ast::{DateTimeField, Expr, Interval, UnaryOperator, Value};

use crate::error::{Error, Result};

/// The unit of an interval literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntervalUnit {
    /// `ns`, `NANOSECOND` (sluice extension of Proton's suffixes).
    Nanosecond,
    /// `us`, `MICROSECOND` (sluice extension).
    Microsecond,
    /// `ms`, `MILLISECOND` (sluice extension).
    Millisecond,
    /// `s`, `SECOND`.
    Second,
    /// `m`, `MINUTE`.
    Minute,
    /// `h`, `HOUR`.
    Hour,
    /// `d`, `DAY`.
    Day,
    /// `w`, `WEEK`.
    Week,
    /// `M` (capital), `MONTH`.
    Month,
    /// `q`, `QUARTER`.
    Quarter,
    /// `y`, `YEAR`.
    Year,
}

impl IntervalUnit {
    /// Every unit, shortest first.
    pub const ALL: [IntervalUnit; 11] = [
        IntervalUnit::Nanosecond,
        IntervalUnit::Microsecond,
        IntervalUnit::Millisecond,
        IntervalUnit::Second,
        IntervalUnit::Minute,
        IntervalUnit::Hour,
        IntervalUnit::Day,
        IntervalUnit::Week,
        IntervalUnit::Month,
        IntervalUnit::Quarter,
        IntervalUnit::Year,
    ];

    /// The suffixes, for error messages.
    pub(crate) const SUFFIX_LIST: &'static str = "ns, us, ms, s, m, h, d, w, M (month), q, y";

    /// The unit a glued suffix names (`"s"` in `5s`). Case-sensitive: `m` is minutes, `M` months.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        IntervalUnit::ALL.into_iter().find(|u| u.suffix() == suffix)
    }

    /// The glued suffix of this unit.
    pub fn suffix(self) -> &'static str {
        match self {
            IntervalUnit::Nanosecond => "ns",
            IntervalUnit::Microsecond => "us",
            IntervalUnit::Millisecond => "ms",
            IntervalUnit::Second => "s",
            IntervalUnit::Minute => "m",
            IntervalUnit::Hour => "h",
            IntervalUnit::Day => "d",
            IntervalUnit::Week => "w",
            IntervalUnit::Month => "M",
            IntervalUnit::Quarter => "q",
            IntervalUnit::Year => "y",
        }
    }

    /// The SQL keyword of this unit (`SECOND`).
    pub fn keyword(self) -> &'static str {
        match self {
            IntervalUnit::Nanosecond => "NANOSECOND",
            IntervalUnit::Microsecond => "MICROSECOND",
            IntervalUnit::Millisecond => "MILLISECOND",
            IntervalUnit::Second => "SECOND",
            IntervalUnit::Minute => "MINUTE",
            IntervalUnit::Hour => "HOUR",
            IntervalUnit::Day => "DAY",
            IntervalUnit::Week => "WEEK",
            IntervalUnit::Month => "MONTH",
            IntervalUnit::Quarter => "QUARTER",
            IntervalUnit::Year => "YEAR",
        }
    }

    /// The unit of a sqlparser date/time field, singular or plural.
    pub fn from_field(field: &DateTimeField) -> Option<Self> {
        Some(match field {
            DateTimeField::Nanosecond | DateTimeField::Nanoseconds => IntervalUnit::Nanosecond,
            DateTimeField::Microsecond | DateTimeField::Microseconds => IntervalUnit::Microsecond,
            DateTimeField::Millisecond | DateTimeField::Milliseconds => IntervalUnit::Millisecond,
            DateTimeField::Second | DateTimeField::Seconds => IntervalUnit::Second,
            DateTimeField::Minute | DateTimeField::Minutes => IntervalUnit::Minute,
            DateTimeField::Hour | DateTimeField::Hours => IntervalUnit::Hour,
            DateTimeField::Day | DateTimeField::Days => IntervalUnit::Day,
            DateTimeField::Week(None) | DateTimeField::Weeks => IntervalUnit::Week,
            DateTimeField::Month | DateTimeField::Months => IntervalUnit::Month,
            DateTimeField::Quarter => IntervalUnit::Quarter,
            DateTimeField::Year | DateTimeField::Years => IntervalUnit::Year,
            _ => return None,
        })
    }

    /// The sqlparser date/time field of this unit.
    pub fn to_field(self) -> DateTimeField {
        match self {
            IntervalUnit::Nanosecond => DateTimeField::Nanosecond,
            IntervalUnit::Microsecond => DateTimeField::Microsecond,
            IntervalUnit::Millisecond => DateTimeField::Millisecond,
            IntervalUnit::Second => DateTimeField::Second,
            IntervalUnit::Minute => DateTimeField::Minute,
            IntervalUnit::Hour => DateTimeField::Hour,
            IntervalUnit::Day => DateTimeField::Day,
            IntervalUnit::Week => DateTimeField::Week(None),
            IntervalUnit::Month => DateTimeField::Month,
            IntervalUnit::Quarter => DateTimeField::Quarter,
            IntervalUnit::Year => DateTimeField::Year,
        }
    }

    /// Nanoseconds in one unit, or `None` for the calendar units (month, quarter, year).
    pub fn nanos(self) -> Option<i128> {
        const S: i128 = 1_000_000_000;
        Some(match self {
            IntervalUnit::Nanosecond => 1,
            IntervalUnit::Microsecond => 1_000,
            IntervalUnit::Millisecond => 1_000_000,
            IntervalUnit::Second => S,
            IntervalUnit::Minute => 60 * S,
            IntervalUnit::Hour => 3_600 * S,
            IntervalUnit::Day => 86_400 * S,
            IntervalUnit::Week => 7 * 86_400 * S,
            IntervalUnit::Month | IntervalUnit::Quarter | IntervalUnit::Year => return None,
        })
    }
}

/// A constant interval: a whole number of one unit. Displays as Proton's short form (`5s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntervalLiteral {
    /// How many units; may be negative (`-5s`).
    pub value: i64,
    /// Which unit.
    pub unit: IntervalUnit,
}

impl IntervalLiteral {
    /// An interval of `value` `unit`s.
    pub const fn new(value: i64, unit: IntervalUnit) -> Self {
        IntervalLiteral { value, unit }
    }

    /// Reads a constant interval from an expression: `5s`, `INTERVAL 5 SECOND`,
    /// `INTERVAL '5' SECONDS`, `-5s`, or a parenthesized one. Anything else is an error that says
    /// what was found.
    pub fn from_expr(expr: &Expr) -> Result<Self> {
        match expr {
            Expr::Nested(inner) => IntervalLiteral::from_expr(inner),
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => {
                let inner = IntervalLiteral::from_expr(expr)?;
                Ok(IntervalLiteral::new(-inner.value, inner.unit))
            }
            Expr::Interval(Interval { value, leading_field: Some(field), last_field: None, .. }) => {
                let unit = IntervalUnit::from_field(field).ok_or_else(|| Error::InvalidValue {
                    message: format!("`{field}` is not an interval unit sluice supports"),
                })?;
                let (text, negative) = match value.as_ref() {
                    Expr::Value(v) => (literal_text(&v.value), false),
                    Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match expr.as_ref() {
                        Expr::Value(v) => (literal_text(&v.value), true),
                        _ => (None, false),
                    },
                    _ => (None, false),
                };
                let value = text.and_then(|t| t.trim().replace('_', "").parse::<i64>().ok()).ok_or_else(|| {
                    Error::InvalidValue {
                        message: format!("interval `{expr}` must be a whole constant number of {field}s"),
                    }
                })?;
                Ok(IntervalLiteral::new(if negative { -value } else { value }, unit))
            }
            other => Err(Error::InvalidValue {
                message: format!("expected an interval such as `5s` or `INTERVAL 5 SECOND`, found `{other}`"),
            }),
        }
    }

    /// The expression sqlparser would have produced for this interval.
    pub fn to_expr(&self) -> Expr {
        let number = Expr::value(Value::Number(self.value.unsigned_abs().to_string(), false));
        let interval = Expr::Interval(Interval {
            value: Box::new(number),
            leading_field: Some(self.unit.to_field()),
            leading_precision: None,
            last_field: None,
            fractional_seconds_precision: None,
        });
        if self.value < 0 { Expr::UnaryOp { op: UnaryOperator::Minus, expr: Box::new(interval) } } else { interval }
    }

    /// The length in nanoseconds, or `None` for calendar units or on overflow.
    pub fn as_nanos(&self) -> Option<i128> {
        self.unit.nanos().and_then(|n| n.checked_mul(i128::from(self.value)))
    }
}

fn literal_text(v: &Value) -> Option<&str> {
    match v {
        Value::Number(n, false) => Some(n),
        Value::SingleQuotedString(s) => Some(s),
        _ => None,
    }
}

impl fmt::Display for IntervalLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_expr;

    fn lit(sql: &str) -> Result<IntervalLiteral> {
        IntervalLiteral::from_expr(&parse_expr(sql)?)
    }

    #[test]
    fn short_and_long_spellings_agree() -> Result<()> {
        for unit in IntervalUnit::ALL {
            let short = lit(&format!("7{}", unit.suffix()))?;
            let long = lit(&format!("INTERVAL 7 {}", unit.keyword()))?;
            assert_eq!(short, IntervalLiteral::new(7, unit));
            assert_eq!(long, short);
            assert_eq!(short.to_string(), format!("7{}", unit.suffix()));
            assert_eq!(IntervalLiteral::from_expr(&short.to_expr())?, short);
        }
        assert_eq!(lit("INTERVAL '3' SECONDS")?, IntervalLiteral::new(3, IntervalUnit::Second));
        assert_eq!(lit("-5s")?, IntervalLiteral::new(-5, IntervalUnit::Second));
        assert_eq!(lit("(2h)")?.as_nanos(), Some(7_200_000_000_000));
        assert_eq!(lit("1M")?.as_nanos(), None);
        Ok(())
    }

    #[test]
    fn non_constant_intervals_are_errors() {
        for sql in ["INTERVAL x SECOND", "5", "'5s'", "INTERVAL 1.5 SECOND", "now()"] {
            assert!(lit(sql).is_err(), "{sql}");
        }
    }
}
