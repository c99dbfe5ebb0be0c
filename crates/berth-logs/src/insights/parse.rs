//! A query's commands and expressions, parsed from its text.

use regex::Regex;

use super::QueryError;
use super::lex::{Tok, lex};
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Lit(Value),
    Field(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Box<Expr>, BinOp, Box<Expr>),
    /// `like` / `=~`: a regular expression (a string is matched as a substring); `not like`
    /// when negated. Either is false for a field without a value.
    Like(Box<Expr>, Regex, bool),
    /// `in [...]`, or `not in` when negated; false for a field without a value.
    In(Box<Expr>, Vec<Expr>, bool),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone)]
pub enum Agg {
    /// `count(*)` (None) or `count(expr)`: events, or events where expr has a value.
    Count(Option<Expr>),
    CountDistinct(Expr),
    Sum(Expr),
    Avg(Expr),
    Min(Expr),
    Max(Expr),
}

#[derive(Debug, Clone)]
pub enum Group {
    Expr(Expr),
    /// `bin(period)`: `@timestamp` rounded down to the period.
    Bin(i64),
}

#[derive(Debug, Clone)]
pub enum ParseHow {
    /// A pattern with `*` for each captured field, in order.
    Glob(Regex),
    /// A regular expression whose named groups are the fields.
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub enum Command {
    Fields(Vec<(String, Expr)>),
    Display(Vec<String>),
    Filter(Expr),
    Parse { source: Expr, how: ParseHow, names: Vec<String> },
    Stats { aggs: Vec<(String, Agg)>, by: Vec<(String, Group)> },
    Sort(Vec<(Expr, bool)>),
    Limit(usize),
    Dedup(Vec<String>),
}

struct Parser<'s> {
    source: &'s str,
    toks: Vec<(Tok, usize)>,
    at: usize,
}

fn keyword(tok: Option<&Tok>, word: &str) -> bool {
    matches!(tok, Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.source.len(), |&(_, p)| p)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        t
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if keyword(self.peek(), w) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), QueryError> {
        if self.eat_sym(s) { Ok(()) } else { Err(self.error(&format!("expected '{s}'"))) }
    }

    fn error(&self, what: &str) -> QueryError {
        let found = match self.peek() {
            None => "the end of the query".to_string(),
            Some(Tok::Ident(w)) => format!("'{w}'"),
            Some(Tok::Sym(s)) => format!("'{s}'"),
            Some(Tok::Str(s)) => format!("\"{s}\""),
            Some(Tok::Num(n)) => n.to_string(),
            Some(Tok::Period(p)) => format!("a period of {p} ms"),
            Some(Tok::Regex(r)) => format!("/{r}/"),
        };
        QueryError::at(self.pos(), format!("{what}, found {found}"))
    }

    /// The query text from token `from` up to the current token: an expression's name.
    fn text_since(&self, from: usize) -> String {
        let start = self.toks.get(from).map_or(self.source.len(), |&(_, p)| p);
        self.source[start..self.pos()].trim().to_string()
    }

    fn name(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Tok::Ident(w)) => Ok(w),
            _ => {
                self.at -= 1;
                Err(self.error("expected a field name"))
            }
        }
    }

    fn end_of_command(&self) -> bool {
        matches!(self.peek(), None | Some(Tok::Sym("|")))
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        let pos = self.pos();
        let word = self.name().map_err(|_| {
            QueryError::at(pos, "expected a command (fields, filter, parse, stats, sort, limit, display, dedup)")
        })?;
        let command = match word.to_ascii_lowercase().as_str() {
            "fields" => Command::Fields(self.named_list(|p| p.expr())?),
            "display" => Command::Display(self.list(|p| p.name())?),
            "dedup" => Command::Dedup(self.list(|p| p.name())?),
            "filter" => Command::Filter(self.expr()?),
            "parse" => self.parse_command()?,
            "stats" => self.stats()?,
            "sort" => Command::Sort(self.list(|p| {
                let e = p.expr()?;
                let desc = if p.eat_word("desc") {
                    true
                } else {
                    p.eat_word("asc");
                    false
                };
                Ok((e, desc))
            })?),
            "limit" => match self.next() {
                Some(Tok::Num(n)) if n >= 1.0 && n.fract() == 0.0 && n <= 10_000.0 => Command::Limit(n as usize),
                _ => return Err(QueryError::at(pos, "limit takes a whole number from 1 to 10000")),
            },
            other => return Err(QueryError::at(pos, format!("unknown command '{other}'"))),
        };
        if !self.end_of_command() {
            return Err(self.error("expected '|' or the end of the query"));
        }
        Ok(command)
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, QueryError>) -> Result<Vec<T>, QueryError> {
        let mut out = vec![item(self)?];
        while self.eat_sym(",") {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Items each named by `as name` or by their own text.
    fn named_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, QueryError>,
    ) -> Result<Vec<(String, T)>, QueryError> {
        self.list(|p| {
            let from = p.at;
            let value = item(p)?;
            let text = p.text_since(from);
            let name = if p.eat_word("as") { p.name()? } else { text };
            Ok((name, value))
        })
    }

    fn parse_command(&mut self) -> Result<Command, QueryError> {
        // `parse PATTERN as ...` reads @message; `parse FIELD PATTERN ...` another field.
        let source = match self.peek() {
            Some(Tok::Str(_) | Tok::Regex(_)) => Expr::Field("@message".into()),
            _ => self.primary()?,
        };
        let pos = self.pos();
        match self.next() {
            Some(Tok::Str(glob)) => {
                let captures = glob.matches('*').count();
                if captures == 0 {
                    return Err(QueryError::at(pos, "a parse pattern needs a * for each field it captures"));
                }
                let parts: Vec<String> = glob.split('*').map(regex::escape).collect();
                let last = parts.len() - 1;
                let mut re = String::from("(?s)");
                for (i, part) in parts.iter().enumerate() {
                    re.push_str(part);
                    if i < last {
                        re.push_str(if i + 1 == last && parts[last].is_empty() { "(.*)" } else { "(.*?)" });
                    }
                }
                if !self.eat_word("as") {
                    return Err(self.error("expected 'as' and the names of the captured fields"));
                }
                let names = self.list(|p| p.name())?;
                if names.len() != captures {
                    return Err(QueryError::at(
                        pos,
                        format!("the pattern captures {captures} fields but {} names follow 'as'", names.len()),
                    ));
                }
                let re = Regex::new(&re).map_err(|e| QueryError::at(pos, e.to_string()))?;
                Ok(Command::Parse { source, how: ParseHow::Glob(re), names })
            }
            Some(Tok::Regex(r)) => {
                let re = Regex::new(&r).map_err(|e| QueryError::at(pos, format!("invalid regular expression: {e}")))?;
                let names: Vec<String> = re.capture_names().flatten().map(str::to_string).collect();
                if names.is_empty() {
                    return Err(QueryError::at(pos, "a parse regular expression names its fields with (?<name>...)"));
                }
                Ok(Command::Parse { source, how: ParseHow::Regex(re), names })
            }
            _ => {
                self.at -= 1;
                Err(self.error("expected a \"pattern with *\" or a /regular expression/"))
            }
        }
    }

    fn stats(&mut self) -> Result<Command, QueryError> {
        let aggs = self.named_list(|p| p.aggregate())?;
        let by = if self.eat_word("by") {
            self.named_list(|p| {
                if keyword(p.peek(), "bin") {
                    p.next();
                    p.expect_sym("(")?;
                    let pos = p.pos();
                    let period = match p.next() {
                        Some(Tok::Period(ms)) if ms > 0 => ms,
                        _ => return Err(QueryError::at(pos, "bin takes a period such as 5m or 1h")),
                    };
                    p.expect_sym(")")?;
                    Ok(Group::Bin(period))
                } else {
                    Ok(Group::Expr(p.expr()?))
                }
            })?
        } else {
            Vec::new()
        };
        Ok(Command::Stats { aggs, by })
    }

    fn aggregate(&mut self) -> Result<Agg, QueryError> {
        let pos = self.pos();
        let f = self.name()?.to_ascii_lowercase();
        self.expect_sym("(")?;
        // `count(*)` and `count()` count events.
        let agg = if f == "count" && (self.eat_sym("*") || matches!(self.peek(), Some(Tok::Sym(")")))) {
            Agg::Count(None)
        } else {
            let e = self.expr()?;
            match f.as_str() {
                "count" => Agg::Count(Some(e)),
                "count_distinct" => Agg::CountDistinct(e),
                "sum" => Agg::Sum(e),
                "avg" => Agg::Avg(e),
                "min" => Agg::Min(e),
                "max" => Agg::Max(e),
                other => {
                    return Err(QueryError::at(
                        pos,
                        format!("unknown statistic '{other}' (count, count_distinct, sum, avg, min, max)"),
                    ));
                }
            }
        };
        self.expect_sym(")")?;
        Ok(agg)
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.and()?;
        while self.eat_word("or") {
            e = Expr::Bin(Box::new(e), BinOp::Or, Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.not()?;
        while self.eat_word("and") {
            e = Expr::Bin(Box::new(e), BinOp::And, Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.sum()?;
        let negated = keyword(self.peek(), "not") && {
            let after = self.toks.get(self.at + 1).map(|(t, _)| t);
            keyword(after, "like") || keyword(after, "in")
        };
        if negated {
            self.next();
        }
        if self.eat_word("like") || self.eat_sym("=~") {
            let pos = self.pos();
            let re = match self.next() {
                Some(Tok::Regex(r)) => {
                    Regex::new(&r).map_err(|e| QueryError::at(pos, format!("invalid regular expression: {e}")))?
                }
                Some(Tok::Str(s)) => Regex::new(&regex::escape(&s)).expect("an escaped literal"),
                _ => return Err(QueryError::at(pos, "like takes a /regular expression/ or a \"string\"")),
            };
            return Ok(Expr::Like(Box::new(left), re, negated));
        }
        if self.eat_word("in") {
            self.expect_sym("[")?;
            let items = self.list(|p| p.sum())?;
            self.expect_sym("]")?;
            return Ok(Expr::In(Box::new(left), items, negated));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => BinOp::Eq,
            Some(Tok::Sym("!=")) => BinOp::Ne,
            Some(Tok::Sym("<")) => BinOp::Lt,
            Some(Tok::Sym("<=")) => BinOp::Le,
            Some(Tok::Sym(">")) => BinOp::Gt,
            Some(Tok::Sym(">=")) => BinOp::Ge,
            _ => return Ok(left),
        };
        self.next();
        Ok(Expr::Bin(Box::new(left), op, Box::new(self.sum()?)))
    }

    fn sum(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.product()?;
        loop {
            let op = if self.eat_sym("+") {
                BinOp::Add
            } else if self.eat_sym("-") {
                BinOp::Sub
            } else {
                return Ok(e);
            };
            e = Expr::Bin(Box::new(e), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat_sym("*") {
                BinOp::Mul
            } else if self.eat_sym("/") {
                BinOp::Div
            } else if self.eat_sym("%") {
                BinOp::Rem
            } else {
                return Ok(e);
            };
            e = Expr::Bin(Box::new(e), op, Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let pos = self.pos();
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(Value::Num(n))),
            Some(Tok::Period(ms)) => Ok(Expr::Lit(Value::Num(ms as f64))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Value::Str(s))),
            Some(Tok::Sym("(")) => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Some(Tok::Ident(w)) if self.eat_sym("(") => {
                let f = w.to_ascii_lowercase();
                if !super::eval::FUNCTIONS.contains(&f.as_str()) {
                    return Err(QueryError::at(pos, format!("unknown function '{w}'")));
                }
                let args = if self.eat_sym(")") {
                    Vec::new()
                } else {
                    let args = self.list(|p| p.expr())?;
                    self.expect_sym(")")?;
                    args
                };
                Ok(Expr::Call(f, args))
            }
            Some(Tok::Ident(w)) => Ok(Expr::Field(w)),
            _ => {
                self.at -= 1;
                Err(self.error("expected a value, a field or a function"))
            }
        }
    }
}

/// The commands of a query, in order.
pub fn parse(source: &str) -> Result<Vec<Command>, QueryError> {
    let toks = lex(source)?;
    let mut p = Parser { source, toks, at: 0 };
    let mut commands = Vec::new();
    if p.peek().is_none() {
        return Err(QueryError::at(0, "the query is empty"));
    }
    loop {
        commands.push(p.command()?);
        if !p.eat_sym("|") {
            return Ok(commands);
        }
    }
}
