//! Logs Insights queries, the useful subset: `fields`, `filter`, `parse` (glob or regular
//! expression), `stats` (count, count_distinct, sum, avg, min, max, `by` fields and
//! `bin(period)`), `sort`, `limit`, `display`, `dedup`; expressions with arithmetic,
//! comparisons, `and`/`or`/`not`, `like`/`=~`, `in [...]` and a few functions.
//!
//! Each event is a row with `@timestamp`, `@message`, `@logStream`, `@log`,
//! `@ingestionTime`, and, when the message is a JSON object, its members (nested ones as
//! `a.b`). An [`Execution`] is fed the events of the query's groups and time range: the
//! commands before the first `stats`, `sort`, `limit` or `dedup` run on each event as it
//! comes, the rest on what they kept. Without `sort` or `stats`, the newest events come first.
//! Event rows carry `@ptr` unless `display` names the fields.

mod eval;
mod lex;
mod parse;
pub mod value;

use std::collections::HashMap;

use thiserror::Error;

use eval::{Acc, Row, eval};
use parse::{Command, Group, ParseHow};
pub use value::Value;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid query at character {position}: {message}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

impl QueryError {
    fn at(position: usize, message: impl Into<String>) -> Self {
        QueryError { position, message: message.into() }
    }
}

/// The most rows a query gives.
pub const MAX_ROWS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Query {
    commands: Vec<Command>,
}

/// One event as a query sees it.
pub struct Record<'a> {
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: &'a str,
    pub stream: &'a str,
    /// `ACCOUNT:GROUP`, as `@log` shows it.
    pub log: &'a str,
    /// Names the event for `@ptr`.
    pub ptr: String,
}

/// A result row: its fields in order, as text.
pub type ResultRow = Vec<(String, String)>;

impl Query {
    pub fn parse(source: &str) -> Result<Query, QueryError> {
        Ok(Query { commands: parse::parse(source)? })
    }

    /// Starts running the query; at most `limit` rows (and never more than [`MAX_ROWS`]).
    pub fn start(&self, limit: usize) -> Execution<'_> {
        let streaming = self
            .commands
            .iter()
            .position(|c| matches!(c, Command::Stats { .. } | Command::Sort(_) | Command::Limit(_) | Command::Dedup(_)))
            .unwrap_or(self.commands.len());
        Execution { query: self, streaming, rows: Vec::new(), limit: limit.min(MAX_ROWS), scanned: 0 }
    }
}

pub struct Execution<'q> {
    query: &'q Query,
    /// The commands `[..streaming]` run on each event as it comes.
    streaming: usize,
    rows: Vec<Row>,
    limit: usize,
    scanned: u64,
}

fn flatten(prefix: &str, value: &serde_json::Value, row: &mut Row) {
    match value {
        serde_json::Value::Object(members) => {
            for (k, v) in members {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, v, row);
            }
        }
        other => {
            row.insert(prefix.to_string(), Value::from(other));
        }
    }
}

/// Applies a row-wise command; false when `filter` drops the row.
fn apply(command: &Command, row: &mut Row) -> bool {
    match command {
        Command::Fields(items) => {
            let values: Vec<(String, Value)> = items.iter().map(|(n, e)| (n.clone(), eval(e, row))).collect();
            row.extend(values);
            true
        }
        Command::Filter(e) => eval(e, row).truthy(),
        Command::Parse { source, how, names } => {
            let text = eval(source, row).render();
            match how {
                ParseHow::Glob(re) => {
                    if let Some(c) = re.captures(&text) {
                        for (i, name) in names.iter().enumerate() {
                            if let Some(m) = c.get(i + 1) {
                                row.insert(name.clone(), Value::Str(m.as_str().to_string()));
                            }
                        }
                    }
                }
                ParseHow::Regex(re) => {
                    if let Some(c) = re.captures(&text) {
                        for name in names {
                            if let Some(m) = c.name(name) {
                                row.insert(name.clone(), Value::Str(m.as_str().to_string()));
                            }
                        }
                    }
                }
            }
            true
        }
        Command::Display(_) | Command::Stats { .. } | Command::Sort(_) | Command::Limit(_) | Command::Dedup(_) => true,
    }
}

fn stats(rows: Vec<Row>, aggs: &[(String, parse::Agg)], by: &[(String, Group)]) -> Vec<Row> {
    let mut groups: Vec<(Vec<Value>, Vec<Acc>)> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for row in &rows {
        let keys: Vec<Value> = by
            .iter()
            .map(|(_, g)| match g {
                Group::Expr(e) => eval(e, row),
                Group::Bin(period) => match row.get("@timestamp") {
                    Some(Value::Time(t)) => Value::Time(t.div_euclid(*period) * period),
                    _ => Value::Null,
                },
            })
            .collect();
        let id: Vec<String> = keys.iter().map(Value::render).collect();
        let slot = *index.entry(id).or_insert_with(|| {
            groups.push((keys, aggs.iter().map(|(_, a)| Acc::new(a)).collect()));
            groups.len() - 1
        });
        for (acc, (_, agg)) in groups[slot].1.iter_mut().zip(aggs) {
            acc.add(agg, row);
        }
    }
    groups
        .into_iter()
        .map(|(keys, accs)| {
            let mut row: Row = by.iter().map(|(n, _)| n.clone()).zip(keys).collect();
            row.extend(aggs.iter().map(|(n, _)| n.clone()).zip(accs.iter().map(Acc::value)));
            row
        })
        .collect()
}

impl Execution<'_> {
    /// Runs the row-wise commands on one event; whether it was kept.
    pub fn feed(&mut self, r: &Record<'_>) -> bool {
        self.scanned += 1;
        let mut row = Row::new();
        if r.message.trim_start().starts_with('{')
            && let Ok(json @ serde_json::Value::Object(_)) = serde_json::from_str(r.message)
        {
            flatten("", &json, &mut row);
        }
        row.insert("@timestamp".into(), Value::Time(r.timestamp));
        row.insert("@ingestionTime".into(), Value::Time(r.ingestion_time));
        row.insert("@message".into(), Value::Str(r.message.to_string()));
        row.insert("@logStream".into(), Value::Str(r.stream.to_string()));
        row.insert("@log".into(), Value::Str(r.log.to_string()));
        row.insert("@ptr".into(), Value::Str(r.ptr.clone()));
        for c in &self.query.commands[..self.streaming] {
            if !apply(c, &mut row) {
                return false;
            }
        }
        self.rows.push(row);
        true
    }

    /// Events seen and events kept by the row-wise commands so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.scanned, self.rows.len() as u64)
    }

    /// Runs the remaining commands and gives the result rows.
    pub fn finish(mut self) -> Vec<ResultRow> {
        let commands = &self.query.commands;
        let mut rows = std::mem::take(&mut self.rows);
        let mut grouped = false;
        let mut sorted = false;
        for c in &commands[self.streaming..] {
            match c {
                Command::Stats { aggs, by } => {
                    rows = stats(rows, aggs, by);
                    grouped = true;
                }
                Command::Sort(keys) => {
                    rows.sort_by(|a, b| {
                        keys.iter()
                            .map(|(e, desc)| {
                                let o = eval(e, a).order(&eval(e, b));
                                if *desc { o.reverse() } else { o }
                            })
                            .find(|o| o.is_ne())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    sorted = true;
                }
                Command::Limit(n) => rows.truncate(*n),
                Command::Dedup(names) => {
                    let mut seen = std::collections::HashSet::new();
                    rows.retain(|r| seen.insert(names.iter().map(|n| r.get(n).map(Value::render)).collect::<Vec<_>>()));
                }
                other => rows.retain_mut(|r| apply(other, r)),
            }
        }
        if !sorted && !grouped {
            let time = |r: &Row| match r.get("@timestamp") {
                Some(Value::Time(t)) => *t,
                _ => i64::MIN,
            };
            rows.sort_by_key(|r| std::cmp::Reverse(time(r)));
        }
        rows.truncate(self.limit);
        let shown = self.shown_fields(grouped);
        let displayed = commands.iter().any(|c| matches!(c, Command::Display(_)));
        rows.into_iter()
            .map(|r| {
                let mut out: ResultRow = shown
                    .iter()
                    .filter_map(|n| r.get(n).filter(|v| !v.is_null()).map(|v| (n.clone(), v.render())))
                    .collect();
                if !grouped
                    && !displayed
                    && let Some(p) = r.get("@ptr")
                {
                    out.push(("@ptr".into(), p.render()));
                }
                out
            })
            .collect()
    }

    /// The fields a result row shows: the last `display`'s, else those `fields`, `parse` and
    /// the last `stats` made (in order), else `@timestamp` and `@message`.
    fn shown_fields(&self, grouped: bool) -> Vec<String> {
        let commands = &self.query.commands;
        if let Some(Command::Display(names)) = commands.iter().rev().find(|c| matches!(c, Command::Display(_))) {
            return names.clone();
        }
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: &String| {
            if !names.contains(n) {
                names.push(n.clone());
            }
        };
        let last_stats = commands.iter().rposition(|c| matches!(c, Command::Stats { .. }));
        let from = if grouped { last_stats.unwrap_or(0) } else { 0 };
        for c in &commands[from..] {
            match c {
                Command::Fields(items) => items.iter().for_each(|(n, _)| add(n)),
                Command::Parse { names: parsed, .. } => parsed.iter().for_each(&mut add),
                Command::Stats { aggs, by } => {
                    by.iter().for_each(|(n, _)| add(n));
                    aggs.iter().for_each(|(n, _)| add(n));
                }
                _ => {}
            }
        }
        if names.is_empty() {
            names = vec!["@timestamp".into(), "@message".into()];
        }
        names
    }
}

#[cfg(test)]
mod tests;
