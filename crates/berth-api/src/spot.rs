//! The spot channel (`berth_agent_protocol::spot`): Berth's stand-in for AWS reclaiming
//! FARGATE_SPOT capacity. Only a live task launched by the FARGATE_SPOT capacity provider can
//! be interrupted; it is asked to stop with ECS's stop code and reason for an interruption,
//! and its agent gives its containers the warning between SIGTERM and SIGKILL. A service
//! replaces it as it replaces any task that stops.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::to_bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use berth_agent_protocol::spot::{DEFAULT_WARNING, MAX_WARNING, SpotInterruption};
use berth_control::tasks::{SPOT_INTERRUPTED, StopRequest, find_task, request_stop};
use berth_model::capacity::FARGATE_SPOT;
use berth_model::task::StopCode;
use serde_json::{Value, json};

use crate::App;
use crate::ecs::{self, Ctx};
use crate::error::{ApiError, ApiResult, json_answer};
use crate::sigv4;

pub async fn receive(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap, body: axum::body::Body) -> Response {
    json_answer(match to_bytes(body, 64 << 10).await {
        Ok(raw) => interrupt(&app, &uri, &headers, &raw).await,
        Err(_) => Err(ApiError::invalid("A spot interruption is at most 64 KiB.")),
    })
}

async fn interrupt(app: &App, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> ApiResult<Value> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let caller = sigv4::verify(&app.config.keys, "ecs", "POST", path, headers, raw, SystemTime::now())?;
    let request: SpotInterruption = serde_json::from_slice(raw)
        .map_err(|e| ApiError::serialization(format!("A spot interruption is not valid: {e}.")))?;
    let warning = request.warning_seconds.unwrap_or(DEFAULT_WARNING);
    if warning > MAX_WARNING {
        return Err(ApiError::invalid(format!("warningSeconds must be between 0 and {MAX_WARNING}.")));
    }
    let ctx = Ctx::new(app, caller, SystemTime::now(), raw.len());
    let mut input = ecs::Obj::new();
    if let Some(c) = &request.cluster {
        input.insert("cluster".into(), json!(c));
    }
    let cluster = ecs::cluster_arg(&input)?;
    ecs::active_cluster(&ctx, &cluster)?;
    let (_, rec) = find_task(&ctx, &cluster, &request.task)?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    if rec.field("capacityProviderName") != Some(FARGATE_SPOT) {
        return Err(ApiError::invalid("Only tasks launched by the FARGATE_SPOT capacity provider can be interrupted."));
    }
    if !rec.live() {
        return Err(ApiError::invalid("The task has stopped already."));
    }
    let stop = StopRequest {
        code: StopCode::SpotInterruption,
        reason: SPOT_INTERRUPTED,
        failure: None,
        warning: Some(warning),
    };
    let (kv, rec) = request_stop(&ctx, &cluster, &request.task, stop)
        .await?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    Ok(json!({"task": ecs::tasks::render(&kv, &rec, false)}))
}
