//! Term patterns: words, quoted phrases and `%regex%`, each plain, `-` (must not occur) or
//! `?` (one of the `?` terms must occur).

use super::PatternError;
use super::lex::{percent, quoted};

#[derive(Debug, Clone)]
pub enum Term {
    /// A substring, searched for with a precompiled (SIMD) finder.
    Text(Box<memchr::memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Term {
    fn text(t: &str) -> Term {
        Term::Text(Box::new(memchr::memmem::Finder::new(t.as_bytes()).into_owned()))
    }

    fn occurs_in(&self, message: &[u8]) -> bool {
        match self {
            Term::Text(f) => f.find(message).is_some(),
            Term::Regex(r) => r.is_match(message),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Terms {
    required: Vec<Term>,
    excluded: Vec<Term>,
    any_of: Vec<Term>,
}

impl Terms {
    pub(crate) fn matches(&self, message: &[u8]) -> bool {
        self.required.iter().all(|t| t.occurs_in(message))
            && !self.excluded.iter().any(|t| t.occurs_in(message))
            && (self.any_of.is_empty() || self.any_of.iter().any(|t| t.occurs_in(message)))
    }
}

pub(crate) fn parse(source: &str, offset: usize) -> Result<Terms, PatternError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut terms = Terms::default();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let start = offset + chars[i].0;
        let kind = chars[i].1;
        if matches!(kind, '-' | '?') {
            i += 1;
        }
        let (term, len) = term(&chars[i..], offset)?;
        if len == 0 {
            return Err(PatternError::at(start, format!("'{kind}' needs a term after it")));
        }
        i += len;
        match kind {
            '-' => terms.excluded.push(term),
            '?' => terms.any_of.push(term),
            _ => terms.required.push(term),
        }
    }
    Ok(terms)
}

/// The term at the start of `chars` and the characters it spans (0: none there).
fn term(chars: &[(usize, char)], offset: usize) -> Result<(Term, usize), PatternError> {
    let Some(&(at, first)) = chars.first() else { return Ok((Term::text(""), 0)) };
    let pos = offset + at;
    match first {
        c if c.is_whitespace() => Ok((Term::text(""), 0)),
        '"' => {
            let (text, len) = quoted(chars).ok_or_else(|| PatternError::at(pos, "unterminated quoted string"))?;
            Ok((Term::text(&text), len))
        }
        '%' => {
            let (source, len) = percent(chars, pos)?;
            let re = regex::bytes::Regex::new(&source)
                .map_err(|e| PatternError::at(pos, format!("invalid regular expression: {e}")))?;
            Ok((Term::Regex(re), len))
        }
        _ => {
            let len = chars.iter().take_while(|&&(_, c)| !c.is_whitespace()).count();
            let word: String = chars[..len].iter().map(|&(_, c)| c).collect();
            if let Some(q) = word.find('"') {
                return Err(PatternError::at(pos + q, "a quote inside a term: quote the whole term"));
            }
            Ok((Term::text(&word), len))
        }
    }
}
