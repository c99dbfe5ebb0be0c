//! JSON patterns: `{ condition }` over selectors (`$.a.b`, `$.list[0]`), with `&&`, `||`
//! and parentheses.

use serde_json::Value as Json;

use super::lex::{Tok, Tokens, lex, value};
use super::{Op, PatternError, Value, compare_text};

/// A step of a selector: a member or an array index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Member(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Vec<Step>, Op, Value),
    IsNull(Vec<Step>),
    IsBool(Vec<Step>, bool),
    NotExists(Vec<Step>),
}

pub(crate) fn parse(source: &str, offset: usize) -> Result<Expr, PatternError> {
    let mut t = Tokens::new(lex(source, offset)?, offset + source.len());
    t.expect(&Tok::Open('{'))?;
    let e = or(&mut t)?;
    t.expect(&Tok::Close('}'))?;
    if !t.done() {
        return Err(t.unexpected("the end of the pattern after '}'"));
    }
    Ok(e)
}

fn or(t: &mut Tokens) -> Result<Expr, PatternError> {
    let mut e = and(t)?;
    while t.eat(&Tok::Or) {
        e = Expr::Or(Box::new(e), Box::new(and(t)?));
    }
    Ok(e)
}

fn and(t: &mut Tokens) -> Result<Expr, PatternError> {
    let mut e = primary(t)?;
    while t.eat(&Tok::And) {
        e = Expr::And(Box::new(e), Box::new(primary(t)?));
    }
    Ok(e)
}

fn primary(t: &mut Tokens) -> Result<Expr, PatternError> {
    if t.eat(&Tok::Open('(')) {
        let e = or(t)?;
        t.expect(&Tok::Close(')'))?;
        return Ok(e);
    }
    let pos = t.position();
    let path = match t.next() {
        Some((Tok::Word(w), p)) if w.starts_with('$') => selector(&w, p)?,
        _ => return Err(PatternError::at(pos, "expected a selector such as $.field")),
    };
    match t.next() {
        Some((Tok::Op(op), _)) => {
            let pos = t.position();
            let tok =
                t.next().ok_or_else(|| PatternError::at(pos, "expected a value before the end of the pattern"))?.0;
            let v = value(&tok, pos)?;
            if matches!(v, Value::Text(_) | Value::Regex(_)) && !matches!(op, Op::Eq | Op::Ne) {
                return Err(PatternError::at(pos, "only = and != compare with text"));
            }
            Ok(Expr::Compare(path, op, v))
        }
        Some((Tok::Word(w), p)) if w == "IS" => match t.next() {
            Some((Tok::Word(w), _)) if w == "NULL" => Ok(Expr::IsNull(path)),
            Some((Tok::Word(w), _)) if w == "TRUE" => Ok(Expr::IsBool(path, true)),
            Some((Tok::Word(w), _)) if w == "FALSE" => Ok(Expr::IsBool(path, false)),
            _ => Err(PatternError::at(p, "expected NULL, TRUE or FALSE after IS")),
        },
        Some((Tok::Word(w), p)) if w == "NOT" => match t.next() {
            Some((Tok::Word(w), _)) if w == "EXISTS" => Ok(Expr::NotExists(path)),
            _ => Err(PatternError::at(p, "expected EXISTS after NOT")),
        },
        _ => Err(PatternError::at(pos, "expected an operator, IS or NOT EXISTS after the selector")),
    }
}

/// `$.a.b[2].c` as steps.
fn selector(text: &str, pos: usize) -> Result<Vec<Step>, PatternError> {
    let bad = |why: &str| PatternError::at(pos, format!("invalid selector '{text}': {why}"));
    let mut rest = text.strip_prefix('$').expect("selectors start with $");
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty member name"));
            }
            steps.push(Step::Member(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed ["))?;
            let index = r[..end].parse().map_err(|_| bad("an index is a whole number"))?;
            steps.push(Step::Index(index));
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected . or ["));
        }
    }
    if steps.is_empty() {
        return Err(bad("it names no field"));
    }
    Ok(steps)
}

fn resolve<'a>(root: &'a Json, path: &[Step]) -> Option<&'a Json> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Member(m) => v.get(m.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

pub(crate) fn matches(e: &Expr, message: &str) -> bool {
    match serde_json::from_str::<Json>(message.trim()) {
        Ok(root @ Json::Object(_)) => eval(e, &root),
        _ => false,
    }
}

fn eval(e: &Expr, root: &Json) -> bool {
    match e {
        Expr::And(a, b) => eval(a, root) && eval(b, root),
        Expr::Or(a, b) => eval(a, root) || eval(b, root),
        Expr::IsNull(p) => resolve(root, p).is_some_and(Json::is_null),
        Expr::IsBool(p, b) => resolve(root, p).and_then(Json::as_bool) == Some(*b),
        Expr::NotExists(p) => resolve(root, p).is_none(),
        Expr::Compare(p, op, v) => match resolve(root, p) {
            Some(Json::String(s)) => compare_text(s, *op, v),
            Some(n @ Json::Number(_)) => compare_text(&n.to_string(), *op, v),
            Some(Json::Bool(b)) => compare_text(if *b { "true" } else { "false" }, *op, v),
            _ => false,
        },
    }
}
