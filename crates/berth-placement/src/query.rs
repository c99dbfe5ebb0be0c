//! The ECS cluster query language, as used by `memberOf` constraints and by
//! ListContainerInstances filters: `subject operator [argument]` expressions joined with
//! `and`/`&&`, `or`/`||`, `not`/`!` and parentheses.
//!
//! Subjects: `agentConnected`, `agentVersion`, `attribute:NAME`, `ec2InstanceId`,
//! `registeredAt`, `runningTasksCount`, `task:group`. Operators (word or symbol form):
//! `==` equals, `!=` not_equals, `exists`, `!exists` not_exists, `>` greater_than,
//! `>=` greater_than_equal, `<` less_than, `<=` less_than_equal, `=~` matches (with `*`
//! wildcards), `in [a, b]`, `not_in [a, b]`. Parsing errors say at which character they failed.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid expression at character {position}: {message}")]
pub struct QueryError {
    /// 1-based character position in the expression.
    pub position: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Exists,
    NotExists,
    Gt,
    Ge,
    Lt,
    Le,
    Matches,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Compare { subject: Subject, op: Op, values: Vec<String> },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// What an expression can ask of a container instance.
pub trait Facts {
    /// The subject's values (empty: it does not exist). `task:group` yields every group of the
    /// tasks on the instance; the comparison holds if any value satisfies it.
    fn values(&self, subject: &Subject) -> Vec<String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    ListOpen,
    ListClose,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Token::Open));
                i += 1;
            }
            ')' => {
                out.push((start, Token::Close));
                i += 1;
            }
            '[' => {
                out.push((start, Token::ListOpen));
                i += 1;
            }
            ']' => {
                out.push((start, Token::ListClose));
                i += 1;
            }
            ',' => {
                out.push((start, Token::Comma));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut word = String::new();
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    word.push(chars[i]);
                    i += 1;
                }
                if i == chars.len() {
                    return Err(QueryError { position: start, message: "unterminated quoted value".into() });
                }
                i += 1;
                out.push((start, Token::Word(word)));
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() && !chars[i].is_whitespace() && !"()[],".contains(chars[i]) {
                    word.push(chars[i]);
                    i += 1;
                }
                out.push((start, Token::Word(word)));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map(|(p, _)| *p).unwrap_or(self.end)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError { position: self.position(), message: message.into() })
    }

    fn word_is(&self, options: &[&str]) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if options.iter().any(|o| o.eq_ignore_ascii_case(w)))
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.word_is(&["or", "||"]) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.word_is(&["and", "&&"]) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.word_is(&["not", "!"]) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return self.fail("expected ')'");
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn word(&mut self, what: &str) -> Result<String, QueryError> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.fail(format!("expected {what}")),
        }
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let subject_at = self.position();
        let raw = self.word("a subject such as attribute:NAME")?;
        let subject = match raw.as_str() {
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            s if s.starts_with("attribute:") && s.len() > "attribute:".len() => {
                Subject::Attribute(s["attribute:".len()..].to_string())
            }
            other => return Err(QueryError { position: subject_at, message: format!("unknown subject '{other}'") }),
        };
        let op_at = self.position();
        let op_word = self.word("an operator")?;
        let op = match op_word.to_ascii_lowercase().as_str() {
            "==" | "equals" => Op::Eq,
            "!=" | "not_equals" => Op::Ne,
            "exists" => Op::Exists,
            "!exists" | "not_exists" => Op::NotExists,
            ">" | "greater_than" => Op::Gt,
            ">=" | "greater_than_equal" => Op::Ge,
            "<" | "less_than" => Op::Lt,
            "<=" | "less_than_equal" => Op::Le,
            "=~" | "matches" => Op::Matches,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            other => return Err(QueryError { position: op_at, message: format!("unknown operator '{other}'") }),
        };
        let values = match op {
            Op::Exists | Op::NotExists => Vec::new(),
            Op::In | Op::NotIn => self.list()?,
            _ => vec![self.word("a value")?],
        };
        Ok(Expr::Compare { subject, op, values })
    }

    fn list(&mut self) -> Result<Vec<String>, QueryError> {
        if self.peek() != Some(&Token::ListOpen) {
            return self.fail("expected '[' to open a list");
        }
        self.at += 1;
        let mut values = Vec::new();
        loop {
            values.push(self.word("a value")?);
            match self.peek() {
                Some(Token::Comma) => self.at += 1,
                Some(Token::ListClose) => {
                    self.at += 1;
                    return Ok(values);
                }
                _ => return self.fail("expected ',' or ']'"),
            }
        }
    }
}

/// Parses an expression.
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(QueryError { position: 1, message: "empty expression".into() });
    }
    let mut p = Parser { tokens, at: 0, end: input.chars().count() + 1 };
    let expr = p.or()?;
    if p.at < p.tokens.len() {
        return p.fail("unexpected text after the expression");
    }
    Ok(expr)
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Orders two values numerically when both are numbers, else as text.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Expr {
    pub fn eval(&self, facts: &impl Facts) -> bool {
        match self {
            Expr::And(a, b) => a.eval(facts) && b.eval(facts),
            Expr::Or(a, b) => a.eval(facts) || b.eval(facts),
            Expr::Not(e) => !e.eval(facts),
            Expr::Compare { subject, op, values } => {
                let have = facts.values(subject);
                let any = |f: &dyn Fn(&str) -> bool| have.iter().any(|h| f(h));
                let arg = values.first().map(String::as_str).unwrap_or_default();
                match op {
                    Op::Exists => !have.is_empty(),
                    Op::NotExists => have.is_empty(),
                    Op::Eq => any(&|h| h == arg),
                    Op::Ne => !any(&|h| h == arg),
                    Op::Gt => any(&|h| order(h, arg).is_gt()),
                    Op::Ge => any(&|h| order(h, arg).is_ge()),
                    Op::Lt => any(&|h| order(h, arg).is_lt()),
                    Op::Le => any(&|h| order(h, arg).is_le()),
                    Op::Matches => any(&|h| wildcard(arg, h)),
                    Op::In => any(&|h| values.iter().any(|v| v == h)),
                    Op::NotIn => !any(&|h| values.iter().any(|v| v == h)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Instance(HashMap<String, Vec<String>>);

    impl Facts for Instance {
        fn values(&self, subject: &Subject) -> Vec<String> {
            let key = match subject {
                Subject::Attribute(name) => format!("attribute:{name}"),
                Subject::TaskGroup => "task:group".into(),
                Subject::RunningTasksCount => "runningTasksCount".into(),
                Subject::Ec2InstanceId => "ec2InstanceId".into(),
                other => format!("{other:?}"),
            };
            self.0.get(&key).cloned().unwrap_or_default()
        }
    }

    fn instance() -> Instance {
        Instance(HashMap::from([
            ("attribute:ecs.availability-zone".into(), vec!["us-east-1a".into()]),
            ("attribute:ecs.instance-type".into(), vec!["t2.micro".into()]),
            ("attribute:team".into(), vec!["web".into()]),
            ("runningTasksCount".into(), vec!["7".into()]),
            ("task:group".into(), vec!["service:db".into(), "family:cache".into()]),
            ("ec2InstanceId".into(), vec!["i-123".into()]),
        ]))
    }

    fn holds(expr: &str) -> bool {
        parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).eval(&instance())
    }

    #[test]
    fn every_operator_in_both_spellings() {
        let cases = [
            ("attribute:team == web", true),
            ("attribute:team equals api", false),
            ("attribute:team != api", true),
            ("attribute:team not_equals web", false),
            ("attribute:team exists", true),
            ("attribute:gpu exists", false),
            ("attribute:gpu !exists", true),
            ("attribute:team not_exists", false),
            ("runningTasksCount > 5", true),
            ("runningTasksCount greater_than 7", false),
            ("runningTasksCount >= 7", true),
            ("runningTasksCount greater_than_equal 8", false),
            ("runningTasksCount < 10", true),
            ("runningTasksCount less_than 7", false),
            ("runningTasksCount <= 7", true),
            ("runningTasksCount less_than_equal 6", false),
            ("attribute:ecs.instance-type =~ t2.*", true),
            ("attribute:ecs.instance-type matches m5.*", false),
            ("attribute:ecs.instance-type =~ *micro", true),
            ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true),
            ("attribute:ecs.availability-zone in [us-east-1c]", false),
            ("attribute:ecs.availability-zone not_in [us-east-1b, us-east-1c]", true),
            ("task:group == service:db", true),
            ("task:group == service:web", false),
            ("ec2InstanceId in ['i-123', \"i-456\"]", true),
        ];
        for (expr, want) in cases {
            assert_eq!(holds(expr), want, "{expr}");
        }
    }

    #[test]
    fn connectives_precedence_and_parentheses() {
        assert!(holds("attribute:team == web and runningTasksCount > 5"));
        assert!(!holds("attribute:team == web && runningTasksCount > 50"));
        assert!(holds("attribute:team == api or runningTasksCount > 5"));
        assert!(holds("attribute:team == api || attribute:team == web"));
        // and binds tighter than or
        assert!(holds("attribute:team == web or attribute:team == api and runningTasksCount > 50"));
        assert!(!holds("(attribute:team == web or attribute:team == api) and runningTasksCount > 50"));
        assert!(holds("not attribute:team == api"));
        assert!(!holds("!(attribute:team == web)"));
        assert!(holds("((attribute:team == web))"));
    }

    #[test]
    fn bad_expressions_say_where_they_fail() {
        let cases = [
            ("", 1, "empty"),
            ("attribute:team", 15, "expected an operator"),
            ("attribute:team === web", 16, "unknown operator '==='"),
            ("colour == red", 1, "unknown subject 'colour'"),
            ("attribute:team == web and", 26, "expected a subject"),
            ("(attribute:team == web", 23, "expected ')'"),
            ("attribute:zone in us-east-1a", 19, "expected '['"),
            ("attribute:zone in [a b]", 22, "expected ',' or ']'"),
            ("attribute:team == web )", 23, "unexpected text"),
            ("attribute:team == 'web", 19, "unterminated"),
            ("attribute: exists", 1, "unknown subject"),
        ];
        for (expr, position, message) in cases {
            let e = parse(expr).expect_err(expr);
            assert_eq!(e.position, position, "{expr}: {e}");
            assert!(e.message.contains(message), "{expr}: {e}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("t2.*", "t2.micro"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxbyy"));
        assert!(wildcard("us-*-1a", "us-east-1a"));
        assert!(!wildcard("t2", "t2.micro"));
    }
}
