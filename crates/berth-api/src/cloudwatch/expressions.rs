//! GetMetricData's metric math, the useful part: arithmetic (`+ - * /`, parentheses, unary
//! minus) between query ids, numbers and functions, and `SUM`, `AVG`, `MIN`, `MAX` of a list
//! (`[a, b]`) or of `METRICS()` (every MetricStat query), point by point over timestamps.

use std::collections::BTreeMap;

/// A series: timestamp (ms) → value.
pub type Series = BTreeMap<i64, f64>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(text.parse().map_err(|_| format!("bad number {text}"))?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Name(chars[start..i].iter().collect()));
        } else if "+-*/()[],".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(format!("unexpected '{c}'"));
        }
    }
    Ok(out)
}

/// A value during evaluation: a number, one series, or a list of series.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    One(Series),
    Many(Vec<Series>),
}

struct Eval<'a> {
    toks: Vec<Tok>,
    at: usize,
    series: &'a BTreeMap<String, Series>,
    /// The ids of the MetricStat queries (`METRICS()`).
    stats: &'a [String],
}

fn zip(a: &Series, b: &Series, f: impl Fn(f64, f64) -> f64) -> Series {
    a.iter().filter_map(|(t, x)| b.get(t).map(|y| (*t, f(*x, *y)))).filter(|(_, v)| v.is_finite()).collect()
}

fn combine(a: Val, b: Val, f: impl Fn(f64, f64) -> f64 + Copy) -> Result<Val, String> {
    Ok(match (a, b) {
        (Val::Num(x), Val::Num(y)) => Val::Num(f(x, y)),
        (Val::One(s), Val::Num(y)) => {
            Val::One(s.into_iter().map(|(t, x)| (t, f(x, y))).filter(|(_, v)| v.is_finite()).collect())
        }
        (Val::Num(x), Val::One(s)) => {
            Val::One(s.into_iter().map(|(t, y)| (t, f(x, y))).filter(|(_, v)| v.is_finite()).collect())
        }
        (Val::One(a), Val::One(b)) => Val::One(zip(&a, &b, f)),
        _ => return Err("arithmetic takes numbers and single series, not lists".into()),
    })
}

impl Eval<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("expected '{c}'")) }
    }

    fn sum(&mut self) -> Result<Val, String> {
        let mut v = self.product()?;
        loop {
            if self.eat('+') {
                v = combine(v, self.product()?, |a, b| a + b)?;
            } else if self.eat('-') {
                v = combine(v, self.product()?, |a, b| a - b)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<Val, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat('*') {
                v = combine(v, self.unary()?, |a, b| a * b)?;
            } else if self.eat('/') {
                v = combine(v, self.unary()?, |a, b| a / b)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&mut self) -> Result<Val, String> {
        if self.eat('-') {
            return combine(Val::Num(0.0), self.unary()?, |a, b| a - b);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Val, String> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Num(n)) => {
                self.at += 1;
                Ok(Val::Num(n))
            }
            Some(Tok::Sym('(')) => {
                self.at += 1;
                let v = self.sum()?;
                self.expect(')')?;
                Ok(v)
            }
            Some(Tok::Sym('[')) => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    match self.sum()? {
                        Val::One(s) => items.push(s),
                        Val::Many(m) => items.extend(m),
                        Val::Num(_) => return Err("a list holds series, not numbers".into()),
                    }
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect(']')?;
                Ok(Val::Many(items))
            }
            Some(Tok::Name(name)) => {
                self.at += 1;
                if self.eat('(') {
                    return self.call(&name);
                }
                self.series.get(&name).cloned().map(Val::One).ok_or_else(|| format!("no query has the id '{name}'"))
            }
            _ => Err("expected a number, an id, a function or '('".into()),
        }
    }

    fn call(&mut self, name: &str) -> Result<Val, String> {
        if name == "METRICS" {
            self.expect(')')?;
            return Ok(Val::Many(self.stats.iter().filter_map(|id| self.series.get(id).cloned()).collect()));
        }
        let arg = self.sum()?;
        self.expect(')')?;
        let list = match arg {
            Val::Many(list) => list,
            Val::One(s) => vec![s],
            Val::Num(_) => return Err(format!("{name} takes series")),
        };
        let reduce: fn(&[f64]) -> f64 = match name {
            "SUM" => |v| v.iter().sum(),
            "AVG" => |v| v.iter().sum::<f64>() / v.len() as f64,
            "MIN" => |v| v.iter().copied().fold(f64::INFINITY, f64::min),
            "MAX" => |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            other => {
                return Err(format!(
                    "Berth does not implement the function {other}; it has SUM, AVG, MIN, MAX and METRICS"
                ));
            }
        };
        let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for s in &list {
            for (t, v) in s {
                at.entry(*t).or_default().push(*v);
            }
        }
        Ok(Val::One(at.into_iter().map(|(t, v)| (t, reduce(&v))).collect()))
    }
}

/// Evaluates `expression` over the series of the other queries (by id); `stats` are the ids
/// of the MetricStat queries.
pub fn evaluate(expression: &str, series: &BTreeMap<String, Series>, stats: &[String]) -> Result<Series, String> {
    let mut e = Eval { toks: lex(expression)?, at: 0, series, stats };
    let v = e.sum()?;
    if e.at < e.toks.len() {
        return Err("unexpected text after the expression".into());
    }
    match v {
        Val::One(s) => Ok(s),
        Val::Num(_) => Err("an expression must give a series, not a number".into()),
        Val::Many(_) => Err("an expression must give one series; use SUM, AVG, MIN or MAX".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    #[test]
    fn arithmetic_and_reductions_point_by_point() {
        let series = BTreeMap::from([
            ("a".to_string(), s(&[(1, 10.0), (2, 20.0)])),
            ("b".to_string(), s(&[(1, 2.0), (2, 0.0), (3, 5.0)])),
        ]);
        let stats = ["a".to_string(), "b".to_string()];
        assert_eq!(evaluate("a + b * 2", &series, &stats).unwrap(), s(&[(1, 14.0), (2, 20.0)]));
        assert_eq!(
            evaluate("a / b", &series, &stats).unwrap(),
            s(&[(1, 5.0)]),
            "division by zero leaves the point out"
        );
        assert_eq!(evaluate("-(a - 1)", &series, &stats).unwrap(), s(&[(1, -9.0), (2, -19.0)]));
        assert_eq!(evaluate("SUM(METRICS())", &series, &stats).unwrap(), s(&[(1, 12.0), (2, 20.0), (3, 5.0)]));
        assert_eq!(evaluate("MAX([a, b])", &series, &stats).unwrap(), s(&[(1, 10.0), (2, 20.0), (3, 5.0)]));
        assert_eq!(evaluate("AVG([a, b]) * 100", &series, &stats).unwrap(), s(&[(1, 600.0), (2, 1000.0), (3, 500.0)]));
        for (bad, why) in [
            ("c", "no query has the id 'c'"),
            ("1 + 2", "not a number"),
            ("[a, b]", "one series"),
            ("ANOMALY_DETECTION_BAND(a)", "does not implement"),
            ("a +", "expected"),
            ("a $ b", "unexpected '$'"),
        ] {
            assert!(evaluate(bad, &series, &stats).unwrap_err().contains(why), "{bad}");
        }
    }
}
