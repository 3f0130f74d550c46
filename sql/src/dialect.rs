//! The sluice dialect: sqlparser's `ClickHouseDialect` with Proton's differences.
//!
//! Every hook ClickHouse overrides is forwarded, and [`Dialect::dialect`] reports ClickHouse's
//! type id so sqlparser's internal `dialect_of!(ClickHouseDialect)` checks still take the
//! ClickHouse paths. On top of that:
//!
//! - type names in casts (`x::uint64`, `CAST(x AS low_cardinality(string))`) are parsed by
//!   [`crate::SqlType`]'s parser and come back as `DataType::Custom` carrying the canonical
//!   spelling, so every type in the AST is one sluice understands;
//! - `date '2024-01-01'`-style typed literals use the same type names;
//! - a select-list alias needs `AS` (Proton: "don't allow aliases without AS keyword"), so
//!   `SELECT 5 s` is an error rather than `5 AS s`, and `SELECT a b` is a missing comma, not an
//!   alias. Table aliases (`FROM s x`) keep the optional `AS`;
//! - `0x1F` / `0b101` are integers, as in ClickHouse (sqlparser's ClickHouse dialect would read
//!   `0x1F` as the byte string `X'1F'`). The literal keeps its text; the binder reads the radix.

use std::any::TypeId;

use sqlparser::ast::{DataType, Expr, Ident, ObjectName, TypedString};
use sqlparser::dialect::{ClickHouseDialect, Dialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

use crate::types::{SqlType, TypeName};

/// sqlparser dialect used by sluice. Stateless; cheap to create.
#[derive(Debug, Default, Clone, Copy)]
pub struct SluiceDialect {
    base: ClickHouseDialect,
}

impl SluiceDialect {
    /// The dialect.
    pub const fn new() -> Self {
        SluiceDialect { base: ClickHouseDialect {} }
    }
}

/// The unquoted word of the next significant token, if it is a word that names a sluice type.
fn peek_type_name(parser: &Parser<'_>, n: usize) -> bool {
    match &parser.peek_nth_token_ref(n).token {
        Token::Word(w) if w.quote_style.is_none() => TypeName::lookup(&w.value).is_some(),
        _ => false,
    }
}

fn custom_type(ty: &SqlType) -> DataType {
    DataType::Custom(ObjectName::from(vec![Ident::new(ty.to_string())]), vec![])
}

fn parser_error(e: crate::Error) -> ParserError {
    let at = e.location().map(|l| format!(" at Line: {}, Column: {}", l.line, l.column)).unwrap_or_default();
    let message = match e {
        crate::Error::Parse { message, .. } => message,
        other => other.to_string(),
    };
    ParserError::ParserError(format!("{message}{at}"))
}

impl Dialect for SluiceDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<ClickHouseDialect>()
    }

    // --- sluice's own hooks -------------------------------------------------------------------

    fn parse_data_type(&self, parser: &mut Parser<'_>) -> Option<Result<DataType, ParserError>> {
        if !peek_type_name(parser, 0) {
            return None;
        }
        Some(crate::types::parse_sql_type(parser).map(|t| custom_type(&t)).map_err(parser_error))
    }

    fn parse_prefix(&self, parser: &mut Parser<'_>) -> Option<Result<Expr, ParserError>> {
        // `date '2024-01-01'`, `datetime64 '...'`: a bare type name followed by a string literal.
        if !(peek_type_name(parser, 0) && matches!(parser.peek_nth_token_ref(1).token, Token::SingleQuotedString(_))) {
            return None;
        }
        Some((|| {
            let data_type = crate::types::parse_sql_type(parser).map(|t| custom_type(&t)).map_err(parser_error)?;
            let value = parser.parse_value()?;
            Ok(Expr::TypedString(TypedString { data_type, value, uses_odbc_syntax: false }))
        })())
    }

    /// ClickHouse reads `0x1F` and `0b101` as integers; sqlparser's ClickHouse dialect would make
    /// `0x1F` the byte string `X'1F'`.
    fn supports_non_decimal_integer_literals(&self) -> bool {
        true
    }

    fn is_select_item_alias(&self, explicit: bool, _kw: &Keyword, _parser: &mut Parser<'_>) -> bool {
        explicit
    }

    // --- forwarded to ClickHouse ----------------------------------------------------------------

    fn is_identifier_start(&self, ch: char) -> bool {
        self.base.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.base.is_identifier_part(ch)
    }
    fn supports_string_literal_column_alias(&self, explicit: bool) -> bool {
        self.base.supports_string_literal_column_alias(explicit)
    }
    fn supports_string_literal_table_alias(&self, explicit: bool) -> bool {
        self.base.supports_string_literal_table_alias(explicit)
    }
    fn is_table_factor(&self, kw: &Keyword, parser: &mut Parser<'_>) -> bool {
        self.base.is_table_factor(kw, parser)
    }
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.base.identifier_quote_style(identifier)
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        self.base.supports_string_literal_backslash_escape()
    }
    fn supports_select_wildcard_except(&self) -> bool {
        self.base.supports_select_wildcard_except()
    }
    fn describe_requires_table_keyword(&self) -> bool {
        self.base.describe_requires_table_keyword()
    }
    fn require_interval_qualifier(&self) -> bool {
        self.base.require_interval_qualifier()
    }
    fn supports_limit_comma(&self) -> bool {
        self.base.supports_limit_comma()
    }
    fn supports_insert_table_function(&self) -> bool {
        self.base.supports_insert_table_function()
    }
    fn supports_insert_format(&self) -> bool {
        self.base.supports_insert_format()
    }
    fn supports_numeric_literal_underscores(&self) -> bool {
        self.base.supports_numeric_literal_underscores()
    }
    fn supports_partition_by_after_order_by(&self) -> bool {
        self.base.supports_partition_by_after_order_by()
    }
    fn supports_array_join_syntax(&self) -> bool {
        self.base.supports_array_join_syntax()
    }
    fn supports_array_typedef_with_parentheses(&self) -> bool {
        self.base.supports_array_typedef_with_parentheses()
    }
    fn supports_map_typedef_with_parentheses(&self) -> bool {
        self.base.supports_map_typedef_with_parentheses()
    }
    fn supports_dictionary_syntax(&self) -> bool {
        self.base.supports_dictionary_syntax()
    }
    fn supports_in_unparenthesized_expr(&self) -> bool {
        self.base.supports_in_unparenthesized_expr()
    }
    fn supports_global_in(&self) -> bool {
        self.base.supports_global_in()
    }
    fn supports_lambda_functions(&self) -> bool {
        self.base.supports_lambda_functions()
    }
    fn supports_from_first_select(&self) -> bool {
        self.base.supports_from_first_select()
    }
    fn supports_order_by_all(&self) -> bool {
        self.base.supports_order_by_all()
    }
    fn supports_group_by_expr(&self) -> bool {
        self.base.supports_group_by_expr()
    }
    fn supports_group_by_with_modifier(&self) -> bool {
        self.base.supports_group_by_with_modifier()
    }
    fn supports_nested_comments(&self) -> bool {
        self.base.supports_nested_comments()
    }
    fn supports_hash_comment(&self) -> bool {
        self.base.supports_hash_comment()
    }
    fn requires_hash_comment_space(&self) -> bool {
        self.base.requires_hash_comment_space()
    }
    fn supports_optimize_table(&self) -> bool {
        self.base.supports_optimize_table()
    }
    fn supports_prewhere(&self) -> bool {
        self.base.supports_prewhere()
    }
    fn supports_with_fill(&self) -> bool {
        self.base.supports_with_fill()
    }
    fn supports_limit_by(&self) -> bool {
        self.base.supports_limit_by()
    }
    fn supports_interpolate(&self) -> bool {
        self.base.supports_interpolate()
    }
    fn supports_settings(&self) -> bool {
        self.base.supports_settings()
    }
    fn supports_select_format(&self) -> bool {
        self.base.supports_select_format()
    }
    fn supports_select_wildcard_replace(&self) -> bool {
        self.base.supports_select_wildcard_replace()
    }
    fn supports_comma_separated_trim(&self) -> bool {
        self.base.supports_comma_separated_trim()
    }
    fn supports_alter_column_position(&self) -> bool {
        self.base.supports_alter_column_position()
    }
    fn supports_tuple_element_access(&self) -> bool {
        self.base.supports_tuple_element_access()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(sql: &str) -> (String, String) {
        let ours = Parser::parse_sql(&SluiceDialect::new(), sql).map(|s| format!("{s:?}"));
        let theirs = Parser::parse_sql(&ClickHouseDialect {}, sql).map(|s| format!("{s:?}"));
        (format!("{ours:?}"), format!("{theirs:?}"))
    }

    /// Plain ClickHouse SQL without casts, typed literals or implicit column aliases parses the
    /// same with the wrapper as with ClickHouseDialect: nothing was lost in forwarding.
    #[test]
    fn forwards_clickhouse_behaviour() {
        for sql in [
            "SELECT a, b AS c FROM t PREWHERE x > 1 WHERE y GROUP BY a WITH ROLLUP LIMIT 1, 2",
            "SELECT * EXCEPT (a) REPLACE (b + 1 AS b) FROM t FINAL",
            "SELECT arrayMap(x -> x + 1, [1, 2]) FROM t ARRAY JOIN arr AS a",
            "SELECT 1_000, `quoted id`, 'it\\'s' FROM t GLOBAL IN (SELECT 1) SETTINGS a = 1",
            "SELECT x FROM t ORDER BY ALL WITH FILL LIMIT 2 BY x",
            "SELECT t.1, tuple_elem FROM t # hash comment\n /* nested /* comment */ */",
            "SELECT a FROM t WHERE d > INTERVAL 1 DAY AND x IN 1, 2",
        ] {
            let (ours, theirs) = both(sql);
            assert_eq!(ours, theirs, "{sql}");
        }
    }

    #[test]
    fn implicit_select_alias_is_rejected_but_table_alias_is_not() {
        assert!(Parser::parse_sql(&SluiceDialect::new(), "SELECT 5 s").is_err());
        assert!(Parser::parse_sql(&SluiceDialect::new(), "SELECT a b FROM t").is_err());
        assert!(Parser::parse_sql(&SluiceDialect::new(), "SELECT x.a FROM t x").is_ok());
        assert!(Parser::parse_sql(&SluiceDialect::new(), "SELECT 5 AS s").is_ok());
    }
}
