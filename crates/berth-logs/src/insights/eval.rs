//! Evaluating expressions on a row, and the statistics of `stats`.

use std::collections::{HashMap, HashSet};

use super::parse::{Agg, BinOp, Expr};
use super::value::Value;

/// A row: an event's fields (or a `stats` group's), by name.
pub type Row = HashMap<String, Value>;

/// The functions expressions may call.
pub const FUNCTIONS: &[&str] =
    &["ispresent", "isempty", "isblank", "strlen", "toupper", "tolower", "trim", "concat", "abs", "floor", "ceil"];

fn boolean(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

fn arithmetic(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div if b != 0.0 => a / b,
        BinOp::Rem if b != 0.0 => a % b,
        _ => return None,
    })
}

fn equal(a: &Value, b: &Value) -> bool {
    !a.is_null() && !b.is_null() && a.order(b) == std::cmp::Ordering::Equal
}

pub fn eval(e: &Expr, row: &Row) -> Value {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Field(name) => row.get(name).cloned().unwrap_or(Value::Null),
        Expr::Neg(x) => eval(x, row).number().map_or(Value::Null, |n| Value::Num(-n)),
        Expr::Not(x) => boolean(!eval(x, row).truthy()),
        Expr::Bin(a, BinOp::And, b) => boolean(eval(a, row).truthy() && eval(b, row).truthy()),
        Expr::Bin(a, BinOp::Or, b) => boolean(eval(a, row).truthy() || eval(b, row).truthy()),
        Expr::Bin(a, op, b) => {
            let (x, y) = (eval(a, row), eval(b, row));
            match op {
                BinOp::Eq => boolean(equal(&x, &y)),
                BinOp::Ne => boolean(!x.is_null() && !y.is_null() && !equal(&x, &y)),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    if x.is_null() || y.is_null() {
                        return boolean(false);
                    }
                    let o = x.order(&y);
                    boolean(match op {
                        BinOp::Lt => o.is_lt(),
                        BinOp::Le => o.is_le(),
                        BinOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    })
                }
                _ => match (x.number(), y.number()) {
                    (Some(a), Some(b)) => arithmetic(*op, a, b).map_or(Value::Null, Value::Num),
                    _ => Value::Null,
                },
            }
        }
        Expr::Like(x, re, negated) => {
            let v = eval(x, row);
            boolean(!v.is_null() && re.is_match(&v.render()) != *negated)
        }
        Expr::In(x, items, negated) => {
            let v = eval(x, row);
            boolean(!v.is_null() && items.iter().any(|i| equal(&v, &eval(i, row))) != *negated)
        }
        Expr::Call(f, args) => call(f, &args.iter().map(|a| eval(a, row)).collect::<Vec<_>>()),
    }
}

fn call(f: &str, args: &[Value]) -> Value {
    let first = args.first().cloned().unwrap_or(Value::Null);
    let text = |g: fn(&str) -> String| if first.is_null() { Value::Null } else { Value::Str(g(&first.render())) };
    let number = |g: fn(f64) -> f64| first.number().map_or(Value::Null, |n| Value::Num(g(n)));
    match f {
        "ispresent" => boolean(!first.is_null()),
        "isempty" => boolean(first.is_null() || first.render().is_empty()),
        "isblank" => boolean(first.is_null() || first.render().trim().is_empty()),
        "strlen" => {
            if first.is_null() {
                Value::Null
            } else {
                Value::Num(first.render().chars().count() as f64)
            }
        }
        "toupper" => text(|s| s.to_uppercase()),
        "tolower" => text(|s| s.to_lowercase()),
        "trim" => text(|s| s.trim().to_string()),
        "concat" => Value::Str(args.iter().map(Value::render).collect()),
        "abs" => number(f64::abs),
        "floor" => number(f64::floor),
        "ceil" => number(f64::ceil),
        _ => Value::Null,
    }
}

/// The running state of one statistic over a group.
#[derive(Debug, Clone)]
pub enum Acc {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(Option<f64>),
    Avg(f64, u64),
    Min(Value),
    Max(Value),
}

impl Acc {
    pub fn new(agg: &Agg) -> Acc {
        match agg {
            Agg::Count(_) => Acc::Count(0),
            Agg::CountDistinct(_) => Acc::Distinct(HashSet::new()),
            Agg::Sum(_) => Acc::Sum(None),
            Agg::Avg(_) => Acc::Avg(0.0, 0),
            Agg::Min(_) => Acc::Min(Value::Null),
            Agg::Max(_) => Acc::Max(Value::Null),
        }
    }

    pub fn add(&mut self, agg: &Agg, row: &Row) {
        let arg = |e: &Expr| eval(e, row);
        match (self, agg) {
            (Acc::Count(n), Agg::Count(None)) => *n += 1,
            (Acc::Count(n), Agg::Count(Some(e))) => *n += u64::from(!arg(e).is_null()),
            (Acc::Distinct(set), Agg::CountDistinct(e)) => {
                let v = arg(e);
                if !v.is_null() {
                    set.insert(v.render());
                }
            }
            (Acc::Sum(sum), Agg::Sum(e)) => {
                if let Some(n) = arg(e).number() {
                    *sum = Some(sum.unwrap_or(0.0) + n);
                }
            }
            (Acc::Avg(sum, count), Agg::Avg(e)) => {
                if let Some(n) = arg(e).number() {
                    *sum += n;
                    *count += 1;
                }
            }
            (Acc::Min(m), Agg::Min(e)) => {
                let v = arg(e);
                if !v.is_null() && (m.is_null() || v.order(m).is_lt()) {
                    *m = v;
                }
            }
            (Acc::Max(m), Agg::Max(e)) => {
                let v = arg(e);
                if !v.is_null() && (m.is_null() || v.order(m).is_gt()) {
                    *m = v;
                }
            }
            _ => unreachable!("an accumulator is made for its statistic"),
        }
    }

    pub fn value(&self) -> Value {
        match self {
            Acc::Count(n) => Value::Num(*n as f64),
            Acc::Distinct(set) => Value::Num(set.len() as f64),
            Acc::Sum(s) => s.map_or(Value::Null, Value::Num),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(sum, n) => Value::Num(sum / *n as f64),
            Acc::Min(v) | Acc::Max(v) => v.clone(),
        }
    }
}
