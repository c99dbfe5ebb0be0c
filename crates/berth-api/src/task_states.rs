//! The task-states channel's receiving end (`POST /berth/v1/task-states`, see
//! `berth_agent_protocol::task_states`): several `SubmitTaskStateChange` reports in one
//! request. Each is checked against the ECS model and applied exactly as the operation
//! applies it, with its own result (each cluster of a batch is looked up once). Reports of different tasks are applied concurrently (their
//! store writes share a commit); those of one task in the order sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::to_bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use berth_agent_protocol::task_states::{MAX_REPORTS, ReportError, TaskStateResult, TaskStateResults};
use futures::future::join_all;
use serde::Deserialize;
use serde_json::Value;

use crate::App;
use crate::ecs::{self, Ctx, agent};
use crate::error::{ApiError, ApiResult, json_answer};
use crate::protocol::json;
use crate::sigv4;

const OPERATION: &str = "SubmitTaskStateChange";

/// The request as read here: each report stays JSON until the model has checked it, so one
/// bad report fails alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reports {
    reports: Vec<Value>,
}

pub async fn receive(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap, body: axum::body::Body) -> Response {
    json_answer(match to_bytes(body, 4 << 20).await {
        Ok(raw) => apply(&app, &uri, &headers, &raw).await,
        Err(_) => Err(ApiError::invalid("A batch of task state changes is at most 4 MiB.")),
    })
}

async fn apply(app: &App, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> ApiResult<TaskStateResults> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let caller = sigv4::verify(&app.config.keys, "ecs", "POST", path, headers, raw, SystemTime::now())?;
    let request: Reports = serde_json::from_slice(raw)
        .map_err(|e| ApiError::serialization(format!("A batch of task state changes is not valid: {e}.")))?;
    if request.reports.len() > MAX_REPORTS {
        return Err(ApiError::invalid(format!(
            "A batch carries at most {MAX_REPORTS} task state changes, not {}.",
            request.reports.len()
        )));
    }
    let ctx = Ctx::new(app, caller, SystemTime::now(), raw.len());
    let mut results = vec![TaskStateResult::default(); request.reports.len()];
    // Each report checked as the operation checks it, each cluster looked up once; those that
    // pass, by task, each task's in the order sent.
    let mut clusters: HashMap<String, ApiResult<()>> = HashMap::new();
    let mut by_task: HashMap<String, Vec<(usize, String, ecs::Obj)>> = HashMap::new();
    for (i, report) in request.reports.into_iter().enumerate() {
        let task = task_of(&report);
        let checked = json::validate(&ecs::SERVICE, OPERATION, report).and_then(|input| {
            let cluster = ecs::cluster_arg(&input)?;
            let active =
                clusters.entry(cluster.clone()).or_insert_with(|| ecs::active_cluster(&ctx, &cluster).map(drop));
            active.clone().map(|()| (cluster, input))
        });
        match checked {
            Ok((cluster, input)) => by_task.entry(task).or_default().push((i, cluster, input)),
            Err(e) => results[i].error = Some(refused(e)),
        }
    }
    let ctx = &ctx;
    let applied = join_all(by_task.into_values().map(|reports| async move {
        let mut outcomes = Vec::with_capacity(reports.len());
        for (i, cluster, input) in reports {
            outcomes.push((i, agent::apply_task_state(ctx, &cluster, &input).await));
        }
        outcomes
    }))
    .await;
    for (i, outcome) in applied.into_iter().flatten() {
        if let Err(e) = outcome {
            results[i].error = Some(refused(e));
        }
    }
    Ok(TaskStateResults { results })
}

fn refused(e: ApiError) -> ReportError {
    ReportError { status: e.status, code: e.code.to_string(), message: e.message }
}

/// Which task a report is about, by the last part of its `task` (an id or an ARN).
fn task_of(report: &Value) -> String {
    let task = report.get("task").and_then(Value::as_str).unwrap_or_default();
    task.rsplit('/').next().unwrap_or_default().to_string()
}
