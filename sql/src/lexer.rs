//! Tokenizing: sqlparser's tokenizer with the sluice dialect, plus the one lexical rule it lacks.
//!
//! Proton writes short interval literals as a number glued to a unit: `5s`, `2m`, `100ms`.
//! sqlparser's tokenizer reads `5s` as the number `5` directly followed by the word `s`, which
//! the parser would then take for an alias (`5 AS s`). This pass rewrites every such pair into the
//! tokens of `INTERVAL 5 SECOND` (keeping the original spans), and rejects any other number glued
//! to a word (`5x`, `1.5s`, `3f`) instead of letting it turn into an alias.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer, Whitespace, Word};

use crate::dialect::SluiceDialect;
use crate::error::{Error, Result};
use crate::interval::IntervalUnit;

/// Tokens of one statement, without the separating `;`.
pub(crate) type Tokens = Vec<TokenWithSpan>;

/// Tokenizes `sql` and applies the interval rewrite.
pub(crate) fn tokenize(sql: &str) -> Result<Tokens> {
    let dialect = SluiceDialect::new();
    let raw =
        Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| Error::parse(e.message, e.location))?;
    // A control character outside strings and comments is never SQL; sqlparser makes it a
    // `Char` token that some of its parsers skip, so `SHOW<U+0013>STREAMS` would parse as
    // `SHOW STREAMS` seen through sqlparser (a SHOW variable) and display as sluice's own.
    let control = raw.iter().find_map(|t| match t.token {
        Token::Char(c) if c.is_control() => Some((c, t.span.start)),
        _ => None,
    });
    if let Some((c, at)) = control {
        return Err(Error::parse(format!("unexpected control character U+{:04X}", c as u32), at));
    }
    rewrite_intervals(raw)
}

/// Splits a token list into statements at each `;`, dropping statements that hold nothing but
/// whitespace and comments.
pub(crate) fn split_statements(tokens: Tokens) -> Vec<Tokens> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        if t.token == Token::SemiColon {
            if current.iter().any(|t: &TokenWithSpan| is_significant(&t.token)) {
                out.push(std::mem::take(&mut current));
            } else {
                current.clear();
            }
        } else {
            current.push(t);
        }
    }
    if current.iter().any(|t| is_significant(&t.token)) {
        out.push(current);
    }
    out
}

/// Whether a token is more than whitespace, a comment or the end.
pub(crate) fn is_significant(token: &Token) -> bool {
    !matches!(token, Token::Whitespace(_) | Token::EOF)
}

/// Whether `token` is the unquoted word `word` (ASCII case-insensitive).
pub(crate) fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn rewrite_intervals(raw: Tokens) -> Result<Tokens> {
    let mut out = Vec::with_capacity(raw.len());
    let mut iter = raw.into_iter().peekable();
    while let Some(t) = iter.next() {
        let glued_word = match (&t.token, iter.peek().map(|n| &n.token)) {
            (Token::Number(_, false), Some(Token::Word(w))) if w.quote_style.is_none() => Some(w.value.clone()),
            _ => None,
        };
        let Some(unit_text) = glued_word else {
            out.push(t);
            continue;
        };
        let Token::Number(number, _) = &t.token else {
            out.push(t);
            continue;
        };
        let unit_token = iter.next().expect("peeked a word above");
        let written = format!("{number}{unit_text}");
        let Some(unit) = IntervalUnit::from_suffix(&unit_text) else {
            return Err(Error::parse(
                format!(
                    "`{written}` is neither a number nor an interval literal: unknown interval unit \
                     `{unit_text}` (units are case-sensitive: {}; put a space or AS before an alias)",
                    IntervalUnit::SUFFIX_LIST
                ),
                t.span.start,
            ));
        };
        let digits: String = number.chars().filter(|c| *c != '_').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::parse(
                format!("interval literal `{written}` needs a whole number of {}s", unit.keyword()),
                t.span.start,
            ));
        }
        let span = Span::new(t.span.start, unit_token.span.end);
        let keyword = |k: &str| Token::Word(Word { value: k.to_string(), quote_style: None, keyword: kw(k) });
        out.push(TokenWithSpan::new(keyword("INTERVAL"), span));
        out.push(TokenWithSpan::new(Token::Whitespace(Whitespace::Space), t.span));
        out.push(TokenWithSpan::new(Token::Number(digits, false), t.span));
        out.push(TokenWithSpan::new(Token::Whitespace(Whitespace::Space), unit_token.span));
        out.push(TokenWithSpan::new(keyword(unit.keyword()), unit_token.span));
    }
    Ok(out)
}

fn kw(word: &str) -> Keyword {
    match Token::make_keyword(word) {
        Token::Word(w) => w.keyword,
        _ => Keyword::NoKeyword,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn significant(sql: &str) -> Vec<String> {
        tokenize(sql)
            .expect("tokenizes")
            .into_iter()
            .filter(|t| is_significant(&t.token))
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn glued_units_become_interval_tokens() {
        assert_eq!(significant("5s"), ["INTERVAL", "5", "SECOND"]);
        assert_eq!(significant("100ms"), ["INTERVAL", "100", "MILLISECOND"]);
        assert_eq!(significant("2m 2M"), ["INTERVAL", "2", "MINUTE", "INTERVAL", "2", "MONTH"]);
        assert_eq!(significant("1_000s"), ["INTERVAL", "1000", "SECOND"]);
        // With a space the word is not a unit: the parser sees `5` and `s`.
        assert_eq!(significant("5 s"), ["5", "s"]);
        // Strings and quoted names are left alone.
        assert_eq!(significant("'5s' \"5s\""), ["'5s'", "\"5s\""]);
    }

    #[test]
    fn rewritten_tokens_keep_source_spans() {
        let tokens = tokenize("SELECT\n  15m").expect("tokenizes");
        let interval = tokens.iter().find(|t| is_word(&t.token, "interval")).expect("rewritten");
        assert_eq!((interval.span.start.line, interval.span.start.column), (2, 3));
        assert_eq!((interval.span.end.line, interval.span.end.column), (2, 6));
    }

    #[test]
    fn glued_garbage_is_an_error_not_an_alias() {
        for (sql, needle) in [
            ("SELECT 5x", "unknown interval unit `x`"),
            ("SELECT 5S", "unknown interval unit `S`"),
            ("SELECT 1.5s", "needs a whole number"),
            ("SELECT 3f", "unknown interval unit `f`"),
            ("SELECT 1e", "unknown interval unit `e`"),
        ] {
            let err = tokenize(sql).expect_err(sql);
            assert!(err.to_string().contains(needle), "{sql}: {err}");
            assert_eq!(err.location().map(|l| l.column), Some(8), "{sql}");
        }
    }

    #[test]
    fn numbers_that_are_whole_tokens_are_untouched() {
        assert_eq!(significant("1e3 0x1F 0b101 1.5 7L"), ["1e3", "0x1F", "0b101", "1.5", "7L"]);
    }

    #[test]
    fn split_drops_empty_statements() {
        let parts = split_statements(tokenize(";; SELECT 1; -- c\n ;SELECT 2").expect("tokenizes"));
        assert_eq!(parts.len(), 2);
        assert!(split_statements(tokenize("  -- only a comment\n").expect("tokenizes")).is_empty());
    }
}
