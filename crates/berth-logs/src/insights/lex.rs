//! The tokens of a Logs Insights query.

use super::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name: a field (`@message`, `user.id`, `` `odd name` ``), a command, a function or a
    /// keyword (told apart by the parser, case-insensitively for keywords).
    Ident(String),
    Num(f64),
    /// A period such as `5m`, in milliseconds.
    Period(i64),
    Str(String),
    Regex(String),
    Sym(&'static str),
}

const SYMBOLS: &[&str] =
    &["!=", "<=", ">=", "=~", "|", ",", "(", ")", "[", "]", "+", "-", "*", "/", "%", "=", "<", ">"];

fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        _ => return None,
    })
}

/// Whether a `/` here starts a regular expression (a value is expected) rather than divides:
/// after an operator or a keyword, and after `parse FIELD`.
fn value_expected(toks: &[(Tok, usize)]) -> bool {
    let word = |t: Option<&(Tok, usize)>, w: &str| matches!(t, Some((Tok::Ident(x), _)) if x.eq_ignore_ascii_case(w));
    let n = toks.len();
    if n >= 2 && word(toks.get(n - 2), "parse") && matches!(toks[n - 1].0, Tok::Ident(_)) {
        return true;
    }
    match toks.last().map(|(t, _)| t) {
        None => true,
        Some(Tok::Sym(s)) => *s != ")" && *s != "]",
        Some(Tok::Ident(w)) => {
            matches!(w.to_ascii_lowercase().as_str(), "like" | "filter" | "parse" | "and" | "or" | "not" | "in")
        }
        _ => false,
    }
}

pub fn lex(source: &str) -> Result<Vec<(Tok, usize)>, QueryError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut out: Vec<(Tok, usize)> = Vec::new();
    let mut i = 0;
    let text = |a: usize, b: usize| chars[a..b].iter().map(|&(_, c)| c).collect::<String>();
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let delimited = |close: char| -> Result<(String, usize), QueryError> {
            let mut s = String::new();
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j].1 {
                    '\\' if j + 1 < chars.len() && close != '/' => {
                        s.push(chars[j + 1].1);
                        j += 2;
                    }
                    '\\' if j + 1 < chars.len() && chars[j + 1].1 == '/' => {
                        s.push('/');
                        j += 2;
                    }
                    ch if ch == close => return Ok((s, j + 1)),
                    ch => {
                        s.push(ch);
                        j += 1;
                    }
                }
            }
            Err(QueryError::at(pos, format!("unterminated {close}...{close}")))
        };
        let (tok, next) = if c == '"' || c == '\'' {
            let (s, n) = delimited(c)?;
            (Tok::Str(s), n)
        } else if c == '`' {
            let (s, n) = delimited('`')?;
            (Tok::Ident(s), n)
        } else if c == '/' && value_expected(&out) {
            let (s, n) = delimited('/')?;
            (Tok::Regex(s), n)
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|&(_, d)| d.is_ascii_digit())) {
            let mut j = i;
            while j < chars.len() && (chars[j].1.is_ascii_digit() || chars[j].1 == '.') {
                j += 1;
            }
            let number: f64 =
                text(i, j).parse().map_err(|_| QueryError::at(pos, format!("bad number '{}'", text(i, j))))?;
            let mut k = j;
            while k < chars.len() && chars[k].1.is_ascii_alphabetic() {
                k += 1;
            }
            if k > j {
                let unit = text(j, k);
                let ms = unit_ms(&unit).ok_or_else(|| QueryError::at(pos, format!("unknown time unit '{unit}'")))?;
                (Tok::Period((number * ms as f64) as i64), k)
            } else {
                (Tok::Num(number), j)
            }
        } else if c.is_alphanumeric() || c == '@' || c == '_' || c == '$' {
            let mut j = i;
            while j < chars.len() && (chars[j].1.is_alphanumeric() || "@_$.".contains(chars[j].1)) {
                j += 1;
            }
            (Tok::Ident(text(i, j)), j)
        } else if let Some(sym) = SYMBOLS.iter().find(|s| source[pos..].starts_with(**s)) {
            (Tok::Sym(sym), i + sym.chars().count())
        } else {
            return Err(QueryError::at(pos, format!("unexpected '{c}'")));
        };
        out.push((tok, pos));
        i = next;
    }
    Ok(out)
}
