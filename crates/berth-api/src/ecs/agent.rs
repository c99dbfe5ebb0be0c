//! The operations agents call: SubmitTaskStateChange, SubmitContainerStateChange,
//! DiscoverPollEndpoint. (The assignment channel agents watch is `crate::assignments`.)

use berth_model::health::Health;
use berth_model::task::TaskStatus;
use serde_json::{Value, json};

use super::{Ctx, Obj, active_cluster, cluster_arg, text};
use crate::error::{ApiError, ApiResult};
use berth_control::records::TaskRecord;
use berth_control::tasks::report;

/// Container fields an agent may report, as (request member, task container member).
/// `healthStatus` is a Berth extension of the model (see scripts/gen-models.py).
const CONTAINER_FIELDS: [(&str, &str); 7] = [
    ("healthStatus", "healthStatus"),
    ("status", "lastStatus"),
    ("exitCode", "exitCode"),
    ("reason", "reason"),
    ("networkBindings", "networkBindings"),
    ("runtimeId", "runtimeId"),
    ("imageDigest", "imageDigest"),
];

fn apply_container(rec: &mut TaskRecord, name: &str, change: &Obj) {
    let Some(containers) = rec.task.get_mut("containers").and_then(Value::as_array_mut) else {
        return;
    };
    for c in containers.iter_mut().filter(|c| c["name"] == name) {
        for (from, to) in CONTAINER_FIELDS {
            if let Some(v) = change.get(from) {
                c[to] = v.clone();
            }
        }
    }
}

fn parse_status(raw: Option<&str>) -> ApiResult<Option<TaskStatus>> {
    match raw {
        None => Ok(None),
        Some(s) => {
            TaskStatus::parse(s).map(Some).ok_or_else(|| ApiError::invalid(format!("Invalid task status '{s}'.")))
        }
    }
}

pub async fn submit_task_state_change(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    apply_task_state(ctx, &cluster, &input).await?;
    Ok(json!({"acknowledgment": "ACK"}))
}

/// SubmitTaskStateChange after its cluster was found active (the task-states channel checks
/// each cluster of a batch once).
pub(crate) async fn apply_task_state(ctx: &Ctx<'_>, cluster: &str, input: &Obj) -> ApiResult<()> {
    let task = text(input, "task").ok_or_else(|| ApiError::invalid("task is required."))?;
    let status = parse_status(text(input, "status"))?;
    let health = match text(input, "healthStatus") {
        None => None,
        Some(h) => Some(Health::parse(h).ok_or_else(|| ApiError::invalid(format!("Invalid health status '{h}'.")))?),
    };
    for c in input.get("containers").and_then(Value::as_array).into_iter().flatten() {
        if let Some(s) = c.get("status").and_then(Value::as_str)
            && !matches!(s, "PENDING" | "RUNNING" | "STOPPED")
        {
            return Err(ApiError::invalid(format!("Invalid container status '{s}'.")));
        }
    }
    report(ctx, cluster, task, status, |rec| {
        for c in input.get("containers").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(name), Some(change)) = (c.get("containerName").and_then(Value::as_str), c.as_object()) {
                apply_container(rec, name, change);
            }
        }
        // Timestamps and (Berth extension) task health, stored as reported.
        for field in ["pullStartedAt", "pullStoppedAt", "executionStoppedAt"] {
            if let Some(v) = input.get(field) {
                rec.task.insert(field.into(), v.clone());
            }
        }
        if let Some(h) = health {
            rec.health = h;
        }
        if let Some(reason) = text(input, "reason")
            && rec.stopped_reason.is_none()
            && status == Some(TaskStatus::Stopped)
        {
            rec.stopped_reason = Some(reason.to_string());
        }
    })
    .await?;
    Ok(())
}

pub async fn submit_container_state_change(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let task = text(&input, "task").ok_or_else(|| ApiError::invalid("task is required."))?;
    let name =
        text(&input, "containerName").ok_or_else(|| ApiError::invalid("containerName is required."))?.to_string();
    if let Some(s) = text(&input, "status")
        && !matches!(s, "PENDING" | "RUNNING" | "STOPPED")
    {
        return Err(ApiError::invalid(format!("Invalid container status '{s}'.")));
    }
    let (_, rec) = super::tasks::find_task(ctx, &cluster, task)?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    if !rec.task["containers"].as_array().into_iter().flatten().any(|c| c["name"] == name.as_str()) {
        return Err(ApiError::invalid(format!("The task has no container named '{name}'.")));
    }
    report(ctx, &cluster, task, None, |rec| apply_container(rec, &name, &input)).await?;
    Ok(json!({"acknowledgment": "ACK"}))
}

pub fn discover_poll_endpoint(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if input.contains_key("cluster") {
        active_cluster(ctx, &cluster_arg(&input)?)?;
    }
    let endpoint = &ctx.app.config.endpoint;
    Ok(json!({"endpoint": endpoint, "telemetryEndpoint": endpoint, "serviceConnectEndpoint": endpoint}))
}
