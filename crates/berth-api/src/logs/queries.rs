//! Logs Insights: StartQuery runs a query in the background over the named groups' events
//! (the engine is `berth_logs::insights`); GetQueryResults, StopQuery and DescribeQueries
//! read and stop it. Queries live in the server's memory: the newest [`KEPT`] are kept, and
//! none survive a restart.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use berth_logs::insights::{Query, Record};
use berth_logs::pattern::Pattern;
use berth_logs::segments::{GroupLog, Limits, ScanPosition, Window};
use serde_json::{Value, json};

use super::{Ctx, events_of, group_named, int, invalid, name_of_identifier, now_ms};
use crate::ecs::{Obj, strings, text};
use crate::error::{ApiError, ApiResult};

/// How many queries are remembered.
pub const KEPT: usize = 1000;
const SCAN_BUDGET: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Complete,
    Failed,
    Cancelled,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Running => "Running",
            Status::Complete => "Complete",
            Status::Failed => "Failed",
            Status::Cancelled => "Cancelled",
        }
    }
}

struct QueryState {
    id: String,
    text: String,
    groups: Vec<String>,
    created: i64,
    status: Status,
    results: Vec<Value>,
    scanned: u64,
    matched: u64,
    bytes: u64,
    stop: Arc<AtomicBool>,
}

/// The queries of this server, newest last.
#[derive(Default)]
pub struct Queries(Arc<Mutex<VecDeque<QueryState>>>);

impl Queries {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut QueryState) -> T) -> Option<T> {
        self.0.lock().expect("queries lock").iter_mut().find(|q| q.id == id).map(f)
    }
}

fn not_found() -> ApiError {
    ApiError::new(400, "ResourceNotFoundException", "Query does not exist.")
}

pub fn start(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if text(&input, "queryLanguage").is_some_and(|l| l != "CWLI") {
        return Err(invalid("Berth runs Logs Insights queries (queryLanguage CWLI) only, not SQL or PPL."));
    }
    let mut names: Vec<String> = strings(&input, "logGroupNames");
    if let Some(n) = text(&input, "logGroupName") {
        names.push(n.to_string());
    }
    for id in strings(&input, "logGroupIdentifiers") {
        names.push(name_of_identifier(ctx, &id)?);
    }
    let given = [
        input.contains_key("logGroupName"),
        input.contains_key("logGroupNames"),
        input.contains_key("logGroupIdentifiers"),
    ];
    if given.iter().filter(|g| **g).count() != 1 || names.is_empty() {
        return Err(invalid(
            "Give exactly one of logGroupName, logGroupNames and logGroupIdentifiers, naming at least one log group.",
        ));
    }
    let (start, end) = (int(&input, "startTime").unwrap_or_default(), int(&input, "endTime").unwrap_or_default());
    if end < start {
        return Err(invalid("endTime must not be before startTime."));
    }
    let text_ = text(&input, "queryString").unwrap_or_default().to_string();
    let query = Query::parse(&text_).map_err(|e| ApiError::new(400, "MalformedQueryException", e.to_string()))?;
    let limit = int(&input, "limit").unwrap_or(10_000) as usize;
    if limit > berth_logs::insights::MAX_ROWS {
        return Err(invalid(format!(
            "limit must be at most {}: Berth's queries give that many rows at most.",
            berth_logs::insights::MAX_ROWS
        )));
    }
    let mut logs: Vec<(String, Arc<GroupLog>)> = Vec::new();
    for name in &names {
        let (_, group) = group_named(ctx, name)?;
        logs.push((name.clone(), events_of(ctx.app, &group)?));
    }
    let id = ctx.control.ids.uuid();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut all = ctx.app.queries.0.lock().expect("queries lock");
        if all.len() >= KEPT
            && let Some(i) = all.iter().position(|q| q.status != Status::Running)
        {
            all.remove(i);
        }
        all.push_back(QueryState {
            id: id.clone(),
            text: text_,
            groups: names,
            created: now_ms(ctx),
            status: Status::Running,
            results: Vec::new(),
            scanned: 0,
            matched: 0,
            bytes: 0,
            stop: stop.clone(),
        });
    }
    let queries = Queries(ctx.app.queries.0.clone());
    let account = ctx.config().account.clone();
    let window = Window { start: Some(start * 1000), end: Some((end + 1) * 1000) };
    let run_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = run(&query, limit, &logs, &account, window, &stop);
        queries.with(&run_id, |q| match outcome {
            Ok((rows, scanned, matched, bytes)) => {
                q.status = if stop.load(Ordering::Relaxed) { Status::Cancelled } else { Status::Complete };
                q.results = rows;
                (q.scanned, q.matched, q.bytes) = (scanned, matched, bytes);
            }
            Err(e) => {
                tracing::warn!(error = %e, "logs insights query");
                q.status = Status::Failed;
            }
        });
    });
    Ok(json!({"queryId": id}))
}

type Outcome = (Vec<Value>, u64, u64, u64);

fn run(
    query: &Query,
    limit: usize,
    logs: &[(String, Arc<GroupLog>)],
    account: &str,
    window: Window,
    stop: &AtomicBool,
) -> Result<Outcome, berth_logs::segments::LogError> {
    let mut x = query.start(limit);
    let mut bytes = 0;
    for (name, log) in logs {
        let label = format!("{account}:{name}");
        let mut from: Option<ScanPosition> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let limits = Limits { events: 10_000, bytes: usize::MAX, budget: SCAN_BUDGET };
            let page = log.scan(from, &|_| true, window, &Pattern::All, limits)?;
            bytes += page.scanned_bytes;
            for (stream, key, e) in &page.events {
                let ptr = format!("{name}/{}/{}", key.seq, key.index);
                x.feed(&Record {
                    timestamp: e.timestamp,
                    ingestion_time: e.ingestion_time,
                    message: &e.message,
                    stream,
                    log: &label,
                    ptr,
                });
            }
            match page.next {
                Some(n) => from = Some(n),
                None => break,
            }
        }
    }
    let (scanned, matched) = x.counts();
    let rows = x
        .finish()
        .into_iter()
        .map(|row| {
            Value::Array(row.into_iter().map(|(field, value)| json!({"field": field, "value": value})).collect())
        })
        .collect();
    Ok((rows, scanned, matched, bytes))
}

pub fn results(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let id = text(&input, "queryId").unwrap_or_default();
    let offset = match text(&input, "nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let max = int(&input, "maxItems").map_or(usize::MAX, |n| n as usize);
    ctx.app
        .queries
        .with(id, |q| {
            let page: Vec<Value> = q.results.iter().skip(offset).take(max).cloned().collect();
            let mut out = json!({
                "status": q.status.name(),
                "results": page,
                "statistics": {"recordsMatched": q.matched as f64, "recordsScanned": q.scanned as f64, "bytesScanned": q.bytes as f64},
                "queryLanguage": "CWLI",
            });
            if offset.saturating_add(max) < q.results.len() {
                out["nextToken"] = json!((offset + max).to_string());
            }
            out
        })
        .ok_or_else(not_found)
}

pub fn stop(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let id = text(&input, "queryId").unwrap_or_default();
    let stopped = ctx
        .app
        .queries
        .with(id, |q| {
            let running = q.status == Status::Running;
            if running {
                q.stop.store(true, Ordering::Relaxed);
            }
            running
        })
        .ok_or_else(not_found)?;
    Ok(json!({"success": stopped}))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if text(&input, "queryLanguage").is_some_and(|l| l != "CWLI") {
        return Ok(json!({"queries": []}));
    }
    let group = text(&input, "logGroupName");
    let status = text(&input, "status");
    let limit = int(&input, "maxResults").unwrap_or(1000) as usize;
    let offset = match text(&input, "nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let all = ctx.app.queries.0.lock().expect("queries lock");
    let matching: Vec<Value> = all
        .iter()
        .rev()
        .filter(|q| {
            group.is_none_or(|g| q.groups.iter().any(|n| n == g)) && status.is_none_or(|s| q.status.name() == s)
        })
        .map(|q| {
            json!({
                "queryId": q.id,
                "queryString": q.text,
                "status": q.status.name(),
                "createTime": q.created,
                "logGroupName": q.groups[0],
                "queryLanguage": "CWLI",
            })
        })
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
    let mut out = json!({"queries": page});
    if offset + limit < total {
        out["nextToken"] = json!((offset + limit).to_string());
    }
    Ok(out)
}
