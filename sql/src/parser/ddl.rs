//! CREATE STREAM / VIEW, ALTER STREAM, DROP.

use sqlparser::ast::{Expr, Function, FunctionArguments};
use sqlparser::tokenizer::Token;

use super::{Cursor, object_kind, query};
use crate::ast::Statement;
use crate::ast::ddl::{
    AlterAction, AlterStream, CODEC_NAMES, Codec, ColumnDef, ColumnDefault, CreateStream, CreateView, IndexDef, Ttl,
};
use crate::error::{Error, Result};
use crate::settings::{StreamSetting, StreamSettings};
use crate::types::{SqlType, TypeName};

pub(super) fn create(c: &mut Cursor<'_>) -> Result<Statement> {
    let at = c.loc();
    c.expect("CREATE")?;
    if c.eat_all(&["OR", "REPLACE"]) {
        return Err(Error::not_implemented("CREATE OR REPLACE", at));
    }
    if c.eat("STREAM") {
        return create_stream(c);
    }
    if c.eat_all(&["MATERIALIZED", "VIEW"]) {
        return create_view(c, true);
    }
    if c.eat("VIEW") {
        return create_view(c, false);
    }
    let what = c.leading_words(2);
    let hint = match what.split(' ').next().unwrap_or_default() {
        "EXTERNAL" => "; sluice has no external streams or tables",
        "RANDOM" => "; generate rows with INSERT ... SELECT ... FROM numbers(n) instead",
        "MUTABLE" => "; use CREATE STREAM ... SETTINGS mode = 'versioned_kv'",
        "TABLE" => "; sluice stores streams: use CREATE STREAM (and table(s) to query its history)",
        _ => "",
    };
    Err(Error::not_implemented(format!("CREATE {what}{hint}"), at))
}

fn create_stream(c: &mut Cursor<'_>) -> Result<Statement> {
    let if_not_exists = c.eat_all(&["IF", "NOT", "EXISTS"]);
    let name = c.object_name()?;
    if c.peek_is(0, "AS") {
        return Err(Error::not_implemented(
            "CREATE STREAM ... AS SELECT; use CREATE MATERIALIZED VIEW ... INTO",
            c.loc(),
        ));
    }
    c.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    let mut indexes = Vec::new();
    loop {
        // Trailing comma before `)` is allowed (Timeplus' own examples have one).
        if (!columns.is_empty() || !indexes.is_empty()) && c.peek_token(0) == &Token::RParen {
            break;
        }
        if is_index_start(c) {
            indexes.push(index_def(c)?);
        } else if c.peek_is(0, "CONSTRAINT") || c.peek_is(0, "PROJECTION") {
            return Err(Error::not_implemented(format!("{} in CREATE STREAM", c.leading_words(1)), c.loc()));
        } else {
            columns.push(column_def(c)?);
        }
        if !c.eat_token(&Token::Comma) {
            break;
        }
    }
    c.expect_token(&Token::RParen)?;

    let mut stream = CreateStream {
        name,
        if_not_exists,
        columns,
        indexes,
        order_by: Vec::new(),
        partition_by: None,
        primary_key: Vec::new(),
        ttl: None,
        comment: None,
        settings: StreamSettings::default(),
    };
    let mut seen: Vec<&str> = Vec::new();
    while !c.at_end() {
        let at = c.loc();
        let clause = if c.eat_all(&["ORDER", "BY"]) {
            stream.order_by = key_list(c)?;
            "ORDER BY"
        } else if c.eat_all(&["PARTITION", "BY"]) {
            stream.partition_by = Some(c.expr()?);
            "PARTITION BY"
        } else if c.eat_all(&["PRIMARY", "KEY"]) {
            stream.primary_key = key_list(c)?;
            "PRIMARY KEY"
        } else if c.eat("TTL") {
            stream.ttl = Some(ttl(c, false)?);
            "TTL"
        } else if c.eat("COMMENT") {
            stream.comment = Some(c.string()?);
            "COMMENT"
        } else if c.eat("SETTINGS") {
            stream.settings = stream_settings(c, false)?;
            "SETTINGS"
        } else if c.peek_is(0, "ENGINE") || c.peek_is(0, "SAMPLE") {
            return Err(Error::not_implemented(format!("{} in CREATE STREAM", c.leading_words(2)), at));
        } else {
            return Err(c.unexpected(
                "expected ORDER BY, PARTITION BY, PRIMARY KEY, TTL, COMMENT or SETTINGS after the column list",
            ));
        };
        if seen.contains(&clause) {
            return Err(Error::parse(format!("{clause} given more than once"), at));
        }
        seen.push(clause);
    }
    stream.validate()?;
    Ok(Statement::CreateStream(Box::new(stream)))
}

/// `INDEX name expr TYPE ...` as opposed to a column called `index`.
fn is_index_start(c: &Cursor<'_>) -> bool {
    c.peek_is(0, "INDEX")
        && matches!(c.peek_token(1), Token::Word(_))
        && c.peek_word(1).is_none_or(|w| TypeName::lookup(w).is_none())
}

fn index_def(c: &mut Cursor<'_>) -> Result<IndexDef> {
    c.expect("INDEX")?;
    let name = c.ident()?;
    let expr = c.expr()?;
    c.expect("TYPE")?;
    let index_type = c.expr()?;
    let granularity = if c.eat("GRANULARITY") { Some(c.uint()?) } else { None };
    Ok(IndexDef { name, expr, index_type, granularity })
}

/// Words that end a column's name-and-type part.
const COLUMN_OPTIONS: &[&str] = &["DEFAULT", "ALIAS", "MATERIALIZED", "EPHEMERAL", "COMMENT", "CODEC", "TTL"];

pub(super) fn column_def(c: &mut Cursor<'_>) -> Result<ColumnDef> {
    let at = c.loc();
    let name = c.ident()?;
    let has_type = matches!(c.peek_token(0), Token::Word(_)) && !COLUMN_OPTIONS.iter().any(|w| c.peek_is(0, w));
    let mut data_type = if has_type { Some(c.sql_type()?) } else { None };
    if c.eat_all(&["NOT", "NULL"]) {
        // The default: ClickHouse columns are not nullable unless declared so.
    } else if c.peek_is(0, "NULL") {
        let null_at = c.loc();
        c.expect("NULL")?;
        data_type = match data_type {
            Some(t) => Some(SqlType::nullable(t).map_err(|m| Error::parse(m, null_at))?),
            None => return Err(Error::parse("NULL needs a column type before it", null_at)),
        };
    }
    let default = if c.eat("DEFAULT") {
        Some(ColumnDefault::Default(c.expr()?))
    } else if c.eat("ALIAS") {
        Some(ColumnDefault::Alias(c.expr()?))
    } else if c.peek_is(0, "MATERIALIZED") || c.peek_is(0, "EPHEMERAL") {
        return Err(Error::not_implemented(format!("{} columns; use DEFAULT or ALIAS", c.leading_words(1)), c.loc()));
    } else {
        None
    };
    if data_type.is_none() && default.is_none() {
        return Err(Error::parse(format!("column `{name}` needs a type or a DEFAULT / ALIAS expression"), at));
    }
    let comment = if c.eat("COMMENT") { Some(c.string()?) } else { None };
    let codecs = if c.eat("CODEC") { codecs(c)? } else { Vec::new() };
    if c.peek_is(0, "TTL") {
        return Err(Error::not_implemented("column TTL; use a stream TTL", c.loc()));
    }
    Ok(ColumnDef { name, data_type, default, comment, codecs })
}

fn codecs(c: &mut Cursor<'_>) -> Result<Vec<Codec>> {
    c.expect_token(&Token::LParen)?;
    let mut out = Vec::new();
    loop {
        let at = c.loc();
        let word = c.ident()?.value;
        let Some(name) = CODEC_NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(&word)) else {
            return Err(Error::parse(format!("unknown codec `{word}` (known: {})", CODEC_NAMES.join(", ")), at));
        };
        let mut args = Vec::new();
        if c.eat_token(&Token::LParen) {
            loop {
                args.push(c.uint()?);
                if !c.eat_token(&Token::Comma) {
                    break;
                }
            }
            c.expect_token(&Token::RParen)?;
        }
        out.push(Codec { name, args });
        if !c.eat_token(&Token::Comma) {
            break;
        }
    }
    c.expect_token(&Token::RParen)?;
    Ok(out)
}

/// `ORDER BY` / `PRIMARY KEY` expression(s), flattened: `(a, b)` and `a, b` are `[a, b]`,
/// `tuple()` is `[]`.
fn key_list(c: &mut Cursor<'_>) -> Result<Vec<Expr>> {
    let mut out = Vec::new();
    loop {
        match c.expr()? {
            Expr::Tuple(items) => out.extend(items),
            Expr::Nested(inner) => out.push(*inner),
            Expr::Function(Function { name, args: FunctionArguments::List(list), .. })
                if name.to_string().eq_ignore_ascii_case("tuple") && list.args.is_empty() => {}
            e => out.push(e),
        }
        if !c.eat_token(&Token::Comma) {
            return Ok(out);
        }
    }
}

/// A TTL rule; in CREATE a comma would start a second rule, in ALTER it starts the next action.
fn ttl(c: &mut Cursor<'_>, in_alter: bool) -> Result<Ttl> {
    let expr = c.expr()?;
    let _ = c.eat("DELETE");
    if c.peek_is(0, "TO") || c.peek_is(0, "RECOMPRESS") || c.peek_is(0, "GROUP") {
        return Err(Error::not_implemented(
            format!("TTL ... {}; only DELETE is supported", c.leading_words(2)),
            c.loc(),
        ));
    }
    let where_clause = if c.eat("WHERE") { Some(c.expr()?) } else { None };
    if !in_alter && c.peek_token(0) == &Token::Comma {
        return Err(Error::not_implemented("more than one TTL rule", c.loc()));
    }
    Ok(Ttl { expr, where_clause })
}

/// `k = v, ...` validated as stream settings; `alter` restricts them to the alterable ones.
fn stream_settings(c: &mut Cursor<'_>, alter: bool) -> Result<StreamSettings> {
    let mut settings = StreamSettings::default();
    for (name, value, _) in c.setting_list()? {
        let setting = StreamSetting::parse(&name, &value, crate::parse_expr)?;
        if settings.explicit.iter().any(|s| s.name() == setting.name()) {
            return Err(Error::setting(&name, "given more than once"));
        }
        if alter && !setting.is_alterable() {
            return Err(Error::setting(&name, "cannot be changed after the stream is created"));
        }
        settings.apply(setting);
    }
    Ok(settings)
}

fn create_view(c: &mut Cursor<'_>, materialized: bool) -> Result<Statement> {
    let if_not_exists = c.eat_all(&["IF", "NOT", "EXISTS"]);
    let name = c.object_name()?;
    let target = if c.peek_is(0, "INTO") {
        if !materialized {
            return Err(c.unexpected("expected AS (only a materialized view has INTO)"));
        }
        c.expect("INTO")?;
        Some(c.object_name()?)
    } else {
        None
    };
    if c.peek_token(0) == &Token::LParen {
        return Err(Error::not_implemented("a column list in CREATE VIEW; name the columns in the SELECT", c.loc()));
    }
    c.expect("AS")?;
    let query = query::sluice_query(c.rest())?;
    Ok(Statement::CreateView(Box::new(CreateView { name, if_not_exists, materialized, target, query })))
}

pub(super) fn drop(c: &mut Cursor<'_>) -> Result<Statement> {
    let at = c.loc();
    c.expect("DROP")?;
    let Some(kind) = object_kind(c, false) else {
        let what = c.leading_words(1);
        let hint = if what == "TABLE" { "; use DROP STREAM" } else { "" };
        return Err(Error::not_implemented(format!("DROP {what}{hint}"), at));
    };
    let if_exists = c.eat_all(&["IF", "EXISTS"]);
    let name = c.object_name()?;
    c.expect_end()?;
    Ok(Statement::Drop { kind, name, if_exists })
}

pub(super) fn alter(c: &mut Cursor<'_>) -> Result<Statement> {
    let at = c.loc();
    c.expect("ALTER")?;
    if !c.eat("STREAM") {
        let what = c.leading_words(1);
        let hint = if what == "TABLE" { "; use ALTER STREAM" } else { "" };
        return Err(Error::not_implemented(format!("ALTER {what}{hint}"), at));
    }
    let name = c.object_name()?;
    let mut actions = Vec::new();
    loop {
        let at = c.loc();
        let action = if c.eat_all(&["ADD", "COLUMN"]) {
            let if_not_exists = c.eat_all(&["IF", "NOT", "EXISTS"]);
            let column = column_def(c)?;
            if c.peek_is(0, "AFTER") || c.peek_is(0, "FIRST") {
                return Err(Error::not_implemented("column positions (AFTER / FIRST); new columns go last", c.loc()));
            }
            AlterAction::AddColumn { column, if_not_exists }
        } else if c.eat_all(&["DROP", "COLUMN"]) {
            let if_exists = c.eat_all(&["IF", "EXISTS"]);
            AlterAction::DropColumn { name: c.ident()?, if_exists }
        } else if c.eat_all(&["MODIFY", "TTL"]) {
            AlterAction::ModifyTtl(ttl(c, true)?)
        } else if c.eat_all(&["REMOVE", "TTL"]) {
            AlterAction::RemoveTtl
        } else if c.eat_all(&["MODIFY", "SETTING"]) || c.eat_all(&["MODIFY", "SETTINGS"]) {
            AlterAction::ModifySettings(stream_settings(c, true)?.explicit)
        } else if ["MODIFY", "RENAME", "CLEAR", "COMMENT", "RESET", "ADD", "DROP", "DELETE", "UPDATE"]
            .iter()
            .any(|w| c.peek_is(0, w))
        {
            return Err(Error::not_implemented(format!("ALTER STREAM ... {}", c.leading_words(2)), at));
        } else {
            return Err(c.unexpected("expected ADD COLUMN, DROP COLUMN, MODIFY TTL, REMOVE TTL or MODIFY SETTING"));
        };
        actions.push(action);
        if !c.eat_token(&Token::Comma) {
            break;
        }
    }
    c.expect_end()?;
    Ok(Statement::AlterStream(Box::new(AlterStream { name, actions })))
}
