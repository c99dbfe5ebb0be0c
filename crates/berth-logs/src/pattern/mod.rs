//! CloudWatch Logs filter patterns: what `FilterLogEvents`, metric filters and subscription
//! filters take as `filterPattern`.
//!
//! Three forms, told apart by their first character:
//! - **terms** (`ERROR "disk full" -retry ?WARN %time.?out%`): every plain term must occur in
//!   the message, no `-` term may, and when `?` terms are given at least one of them must;
//!   matching is case-sensitive substring matching; `%…%` is a regular expression;
//! - **JSON** (`{ $.level = "error" && ($.latency > 100 || $.retry IS TRUE) }`): the message
//!   is parsed as JSON and the condition evaluated on it; messages that are not JSON objects
//!   never match;
//! - **space-delimited** (`[ip, user, ..., status = 4* || status = 5*, bytes > 1000]`): the
//!   message is split into fields at spaces (a `"…"` or `[…]` run is one field), bound
//!   positionally to the names (`...` binds any number of fields) and the conditions checked.
//!
//! An empty pattern matches every event. Values with `*` are wildcards. Regular expressions
//! use Rust's `regex` syntax, a superset of the subset CloudWatch accepts.

mod delimited;
mod json;
mod lex;
mod text;

use thiserror::Error;

/// A pattern that could not be parsed: what was wrong and at which character.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid filter pattern at character {position}: {message}")]
pub struct PatternError {
    pub position: usize,
    pub message: String,
}

impl PatternError {
    fn at(position: usize, message: impl Into<String>) -> Self {
        PatternError { position, message: message.into() }
    }
}

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    All,
    Terms(text::Terms),
    Json(json::Expr),
    Delimited(delimited::Fields),
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern, PatternError> {
        let trimmed = source.trim();
        let offset = source.len() - source.trim_start().len();
        match trimmed.chars().next() {
            None => Ok(Pattern::All),
            Some('{') => json::parse(trimmed, offset).map(Pattern::Json),
            Some('[') => delimited::parse(trimmed, offset).map(Pattern::Delimited),
            Some(_) => text::parse(trimmed, offset).map(Pattern::Terms),
        }
    }

    pub fn matches(&self, message: &str) -> bool {
        self.matches_bytes(message.as_bytes())
    }

    /// [`Pattern::matches`] on a message's UTF-8 bytes: term patterns search the bytes as
    /// they are (the scan of stored events needs no text conversion for them).
    pub fn matches_bytes(&self, message: &[u8]) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms(t) => t.matches(message),
            Pattern::Json(e) => std::str::from_utf8(message).is_ok_and(|m| json::matches(e, m)),
            Pattern::Delimited(f) => std::str::from_utf8(message).is_ok_and(|m| f.matches(m)),
        }
    }
}

/// A value a condition compares with.
#[derive(Debug, Clone)]
pub enum Value {
    Number(f64),
    /// A string, possibly with `*` wildcards.
    Text(String),
    Regex(regex::Regex),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
        }
    }
}

/// Whether a field's text satisfies `op value`: numbers compare as numbers when both sides
/// are numbers, text by equality with wildcards (only `=` and `!=`), regular expressions by
/// a match anywhere (only `=` and `!=`).
pub(crate) fn compare_text(field: &str, op: Op, value: &Value) -> bool {
    match value {
        Value::Number(n) => match field.trim().parse::<f64>() {
            Ok(f) => f.partial_cmp(n).is_some_and(|o| op.holds(o)),
            Err(_) => op == Op::Ne,
        },
        Value::Text(pattern) => {
            let equal = glob(pattern, field);
            match op {
                Op::Eq => equal,
                Op::Ne => !equal,
                _ => false,
            }
        }
        Value::Regex(re) => match op {
            Op::Eq => re.is_match(field),
            Op::Ne => !re.is_match(field),
            _ => false,
        },
    }
}

/// Whether `text` equals `pattern`, where each `*` in the pattern stands for any run of
/// characters.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
