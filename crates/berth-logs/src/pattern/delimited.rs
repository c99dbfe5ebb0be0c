//! Space-delimited patterns: `[name, name = value, ..., name > 5 || name < 1]`.

use super::lex::{Tok, Tokens, lex, value};
use super::{Op, PatternError, Value, compare_text};

#[derive(Debug, Clone)]
enum Slot {
    /// Binds one field to a name (or to nothing, when unnamed conditions are absent).
    Field(String),
    /// Binds any number of fields.
    Any,
}

/// A condition on the fields named in the pattern: alternatives of conjunctions.
#[derive(Debug, Clone)]
struct Condition {
    any_of: Vec<Vec<(String, Op, Value)>>,
}

#[derive(Debug, Clone)]
pub struct Fields {
    slots: Vec<Slot>,
    conditions: Vec<Condition>,
}

pub(crate) fn parse(source: &str, offset: usize) -> Result<Fields, PatternError> {
    let mut t = Tokens::new(lex(source, offset)?, offset + source.len());
    t.expect(&Tok::Open('['))?;
    let mut fields = Fields { slots: Vec::new(), conditions: Vec::new() };
    loop {
        if t.eat(&Tok::Ellipsis) {
            fields.slots.push(Slot::Any);
        } else {
            let pos = t.position();
            let name = match t.next() {
                Some((Tok::Word(w), _)) => w,
                _ => return Err(PatternError::at(pos, "expected a field name or ...")),
            };
            if fields.slots.iter().any(|s| matches!(s, Slot::Field(n) if *n == name)) {
                return Err(PatternError::at(pos, format!("the field name '{name}' is used twice")));
            }
            fields.slots.push(Slot::Field(name.clone()));
            if matches!(t.peek(), Some(Tok::Op(_))) {
                fields.conditions.push(condition(&mut t, name)?);
            }
        }
        if t.eat(&Tok::Close(']')) {
            break;
        }
        t.expect(&Tok::Comma)?;
    }
    if !t.done() {
        return Err(t.unexpected("the end of the pattern after ']'"));
    }
    for c in &fields.conditions {
        for (name, _, _) in c.any_of.iter().flatten() {
            if !fields.slots.iter().any(|s| matches!(s, Slot::Field(n) if n == name)) {
                return Err(PatternError::at(
                    offset,
                    format!("the condition names '{name}', which is not a field of the pattern"),
                ));
            }
        }
    }
    Ok(fields)
}

/// `op value (&& name op value | || name op value)*`, the first name given.
fn condition(t: &mut Tokens, first: String) -> Result<Condition, PatternError> {
    let mut any_of = vec![vec![comparison(t, first)?]];
    loop {
        let or = if t.eat(&Tok::Or) {
            true
        } else if t.eat(&Tok::And) {
            false
        } else {
            return Ok(Condition { any_of });
        };
        let pos = t.position();
        let name = match t.next() {
            Some((Tok::Word(w), _)) => w,
            _ => return Err(PatternError::at(pos, "expected a field name after && or ||")),
        };
        let c = comparison(t, name)?;
        if or {
            any_of.push(vec![c]);
        } else {
            any_of.last_mut().expect("one alternative at least").push(c);
        }
    }
}

fn comparison(t: &mut Tokens, name: String) -> Result<(String, Op, Value), PatternError> {
    let pos = t.position();
    let Some((Tok::Op(op), _)) = t.next() else { return Err(PatternError::at(pos, "expected an operator")) };
    let pos = t.position();
    let tok = t.next().ok_or_else(|| PatternError::at(pos, "expected a value before the end of the pattern"))?.0;
    Ok((name, op, value(&tok, pos)?))
}

/// A message's fields: split at spaces, a `"…"` or `[…]` run being one field (without its
/// quotes or brackets).
pub(crate) fn split(message: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = message.trim_start();
    while !rest.is_empty() {
        let close = match rest.as_bytes()[0] {
            b'"' => Some('"'),
            b'[' => Some(']'),
            _ => None,
        };
        let (field, after) = match close.and_then(|c| rest[1..].find(c).map(|i| (c, i))) {
            Some((_, i)) => (&rest[1..1 + i], &rest[i + 2..]),
            None => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        out.push(field);
        rest = after.trim_start();
    }
    out
}

impl Fields {
    pub(crate) fn matches(&self, message: &str) -> bool {
        let values = split(message);
        let mut bound = Vec::new();
        self.bind(&self.slots, &values, &mut bound)
    }

    /// Tries every way to bind `slots` to `values` (the `...` slots take any number), and
    /// checks the conditions on each complete binding.
    fn bind<'p, 'm>(&'p self, slots: &'p [Slot], values: &[&'m str], bound: &mut Vec<(&'p str, &'m str)>) -> bool {
        match slots.split_first() {
            None => values.is_empty() && self.conditions.iter().all(|c| c.holds(bound)),
            Some((Slot::Any, rest)) => (0..=values.len()).any(|n| self.bind(rest, &values[n..], bound)),
            Some((Slot::Field(name), rest)) => {
                let Some((first, others)) = values.split_first() else { return false };
                bound.push((name, first));
                let ok = self.bind(rest, others, bound);
                bound.pop();
                ok
            }
        }
    }
}

impl Condition {
    fn holds(&self, bound: &[(&str, &str)]) -> bool {
        let value = |name: &str| bound.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        self.any_of
            .iter()
            .any(|all| all.iter().all(|(name, op, v)| value(name).is_some_and(|field| compare_text(field, *op, v))))
    }
}
