//! The AWS JSON 1.1 protocol: route by `X-Amz-Target`, verify the signature, parse and
//! validate the body against the service model, call the handler, and render the result or
//! the error in the shape botocore parses, with an `x-amzn-RequestId` on every response.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::App;
use crate::ecr;
use crate::ecs::{self, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::shapes;
use crate::sigv4;

/// Largest ECS request body read at all; RegisterTaskDefinition has its own, smaller limit.
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest ECR request body: an UploadLayerPart carries up to 20 MiB, base64-encoded.
pub const MAX_ECR_BODY: usize = 28 * 1024 * 1024;

pub async fn aws_json(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // A request runs to completion in its own task even if the client hangs up, so a
    // multi-step handler (or the leader of a batch of them) is never stopped midway.
    let work = tokio::spawn(async move { handle(&app, &uri, &headers, body).await });
    let outcome = work.await.unwrap_or_else(|e| Err(ApiError::server(format!("request handler failed: {e}"))));
    let (status, payload) = match outcome {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => {
            tracing::debug!(code = e.code, message = %e.message, "request refused");
            (StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.body())
        }
    };
    let mut response = (status, serde_json::to_vec(&payload).unwrap_or_default()).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

/// Which service a target prefix belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Ecs,
    Ecr,
}

async fn handle(app: &App, uri: &Uri, headers: &HeaderMap, body: Body) -> ApiResult<Value> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let (model, service, signing_name, limit) = if prefix == shapes::ECS.target_prefix {
        (&*shapes::ECS, Service::Ecs, "ecs", MAX_BODY)
    } else if prefix == shapes::ECR.target_prefix {
        (&*shapes::ECR, Service::Ecr, "ecr", MAX_ECR_BODY)
    } else {
        return Err(ApiError::unknown_operation(format!("Unknown target '{target}'.")));
    };
    let body = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            413,
            "RequestEntityTooLargeException",
            format!("Request body is larger than {} MiB.", limit >> 20),
        )
    })?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let now = SystemTime::now();
    let caller = sigv4::verify(&app.config.keys, signing_name, "POST", path, headers, &body, now)?;
    if !model.operations.contains_key(operation) {
        return Err(ApiError::unknown_operation(format!("Unknown operation '{operation}'.")));
    }
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::serialization(format!("Request body is not valid JSON: {e}.")))?
    };
    let input = model.validate_input(operation, parsed)?;
    let ctx = Ctx::new(app, caller, now, body.len());
    match service {
        Service::Ecs => ecs::dispatch(&ctx, operation, input).await,
        Service::Ecr => ecr::dispatch(&ctx, operation, input).await,
    }
}
