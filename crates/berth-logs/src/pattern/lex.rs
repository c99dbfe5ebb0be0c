//! The tokens of JSON and space-delimited patterns.

use super::{Op, PatternError, Value};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Open(char),
    Close(char),
    Comma,
    Ellipsis,
    Op(Op),
    And,
    Or,
    /// A quoted string, unescaped.
    Quoted(String),
    /// `%…%`, the expression between the signs.
    Regex(String),
    /// A run of other characters: a selector, a name, a number or an unquoted value.
    Word(String),
}

/// A token and the character it starts at (in the whole pattern).
pub(crate) type Spanned = (Tok, usize);

const SPECIAL: &[char] = &['{', '}', '(', ')', '[', ']', ',', '"', '%', '=', '!', '<', '>', '&', '|'];

pub(crate) fn lex(source: &str, offset: usize) -> Result<Vec<Spanned>, PatternError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let pos = offset + at;
        let next = chars.get(i + 1).map(|&(_, c)| c);
        let (tok, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('{' | '(' | '[', _) => (Tok::Open(c), 1),
            ('}' | ')' | ']', _) => (Tok::Close(c), 1),
            (',', _) => (Tok::Comma, 1),
            ('=', _) => (Tok::Op(Op::Eq), 1),
            ('!', Some('=')) => (Tok::Op(Op::Ne), 2),
            ('<', Some('=')) => (Tok::Op(Op::Le), 2),
            ('>', Some('=')) => (Tok::Op(Op::Ge), 2),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('"', _) => {
                let (text, len) =
                    quoted(&chars[i..]).ok_or_else(|| PatternError::at(pos, "unterminated quoted string"))?;
                (Tok::Quoted(text), len)
            }
            ('%', _) => {
                let (source, len) = percent(&chars[i..], pos)?;
                (Tok::Regex(source), len)
            }
            ('.', _) if chars[i..].iter().take(3).all(|&(_, c)| c == '.') && word_len(&chars[i..]) == 3 => {
                (Tok::Ellipsis, 3)
            }
            (c, _) if SPECIAL.contains(&c) => return Err(PatternError::at(pos, format!("unexpected '{c}'"))),
            _ => {
                let len = word_len(&chars[i..]);
                (Tok::Word(chars[i..i + len].iter().map(|&(_, c)| c).collect()), len)
            }
        };
        out.push((tok, pos));
        i += len;
    }
    Ok(out)
}

/// The length of the word at the start of `chars`: up to whitespace or a special character,
/// except that a selector (`$…`) keeps its `[n]` indexes.
fn word_len(chars: &[(usize, char)]) -> usize {
    let selector = chars.first().is_some_and(|&(_, c)| c == '$');
    let mut depth = 0;
    chars
        .iter()
        .take_while(|&&(_, c)| {
            if selector && c == '[' {
                depth += 1;
                return true;
            }
            if selector && c == ']' && depth > 0 {
                depth -= 1;
                return true;
            }
            !c.is_whitespace() && !SPECIAL.contains(&c)
        })
        .count()
}

/// The regular expression between `%` signs at the start of `chars`, and the characters
/// the whole spans.
pub(crate) fn percent(chars: &[(usize, char)], pos: usize) -> Result<(String, usize), PatternError> {
    let end = chars[1..]
        .iter()
        .position(|&(_, c)| c == '%')
        .ok_or_else(|| PatternError::at(pos, "unterminated regular expression (no closing %)"))?;
    Ok((chars[1..1 + end].iter().map(|&(_, c)| c).collect(), end + 2))
}

/// A quoted string at the start of `chars` (which begins with `"`): its text with `\"` and
/// `\\` unescaped, and the characters it spans.
pub(crate) fn quoted(chars: &[(usize, char)]) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut i = 1;
    while i < chars.len() {
        match chars[i].1 {
            '\\' if i + 1 < chars.len() => {
                text.push(chars[i + 1].1);
                i += 2;
            }
            '"' => return Some((text, i + 1)),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    None
}

/// The value a token stands for on the right of a comparison.
pub(crate) fn value(tok: &Tok, pos: usize) -> Result<Value, PatternError> {
    match tok {
        Tok::Quoted(s) => Ok(Value::Text(s.clone())),
        Tok::Regex(r) => regex::Regex::new(r)
            .map(Value::Regex)
            .map_err(|e| PatternError::at(pos, format!("invalid regular expression: {e}"))),
        Tok::Word(w) => Ok(w.parse::<f64>().map(Value::Number).unwrap_or_else(|_| Value::Text(w.clone()))),
        other => Err(PatternError::at(pos, format!("expected a value, found {}", describe(other)))),
    }
}

pub(crate) fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Open(c) | Tok::Close(c) => format!("'{c}'"),
        Tok::Comma => "','".into(),
        Tok::Ellipsis => "'...'".into(),
        Tok::Op(_) => "an operator".into(),
        Tok::And => "'&&'".into(),
        Tok::Or => "'||'".into(),
        Tok::Quoted(s) => format!("\"{s}\""),
        Tok::Regex(r) => format!("%{r}%"),
        Tok::Word(w) => format!("'{w}'"),
    }
}

/// A cursor over tokens, for the recursive-descent parsers.
pub(crate) struct Tokens {
    toks: Vec<Spanned>,
    at: usize,
    end: usize,
}

impl Tokens {
    pub(crate) fn new(toks: Vec<Spanned>, end: usize) -> Self {
        Tokens { toks, at: 0, end }
    }

    pub(crate) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    pub(crate) fn position(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |&(_, p)| p)
    }

    pub(crate) fn next(&mut self) -> Option<Spanned> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    pub(crate) fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, tok: &Tok) -> Result<(), PatternError> {
        if self.eat(tok) { Ok(()) } else { Err(self.unexpected(&describe(tok))) }
    }

    pub(crate) fn unexpected(&self, wanted: &str) -> PatternError {
        match self.peek() {
            Some(t) => PatternError::at(self.position(), format!("expected {wanted}, found {}", describe(t))),
            None => PatternError::at(self.end, format!("expected {wanted} before the end of the pattern")),
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.at >= self.toks.len()
    }
}
