//! Application Auto Scaling (`AnyScaleFrontendService.*`, AWS JSON 1.1, signing name
//! `application-autoscaling`): the dispatch table, the service's errors, and what the
//! handlers share — reading which target a request names (Berth scales the desired count of
//! ECS services only), paging, rendering. Records and effects are
//! `berth_control::autoscaling`'s; decisions `berth-scaling`'s.

mod activities;
mod policies;
mod scheduled_actions;
mod tags;
mod targets;

use berth_control::ControlError;
use berth_control::autoscaling::records::TargetRecord;
use berth_control::autoscaling::{DIMENSION, NAMESPACE, ScalingError, service_of};
use berth_store::{KeyValue, StoreExt};
use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, decode, text};
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the model not in the table answer `ValidationException`.
pub static SERVICE: Service = Service {
    name: "Application Auto Scaling (application-autoscaling)",
    model: &shapes::APPLICATION_AUTOSCALING,
    operations: operations! {
        "RegisterScalableTarget" => |ctx, input| targets::register(ctx, input).await,
        "DescribeScalableTargets" => |ctx, input| targets::describe(ctx, input),
        "DeregisterScalableTarget" => |ctx, input| targets::deregister(ctx, input).await,
        "PutScalingPolicy" => |ctx, input| policies::put(ctx, input).await,
        "DescribeScalingPolicies" => |ctx, input| policies::describe(ctx, input),
        "DeleteScalingPolicy" => |ctx, input| policies::delete(ctx, input).await,
        "PutScheduledAction" => |ctx, input| scheduled_actions::put(ctx, input).await,
        "DescribeScheduledActions" => |ctx, input| scheduled_actions::describe(ctx, input),
        "DeleteScheduledAction" => |ctx, input| scheduled_actions::delete(ctx, input).await,
        "DescribeScalingActivities" => |ctx, input| activities::describe(ctx, input),
        "TagResource" => |ctx, input| tags::tag(ctx, input).await,
        "UntagResource" => |ctx, input| tags::untag(ctx, input).await,
        "ListTagsForResource" => |ctx, input| tags::list(ctx, input),
    },
    body_limit: 1024 * 1024,
    invalid_input: "ValidationException",
    unimplemented: "ValidationException",
    json_bodies: &[],
};

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "ValidationException", message)
}

/// A domain error in this service's words: its own refusals as they are, a lost race as
/// `ConcurrentUpdateException`, storage trouble as `InternalServiceException`.
pub fn scaling_error(e: ControlError) -> ApiError {
    match e {
        ControlError::Scaling(s) => ApiError::new(400, s.code(), s.to_string()),
        ControlError::Contention => ApiError::new(
            400,
            "ConcurrentUpdateException",
            "Concurrent updates to this scalable target; retry the request.",
        ),
        ControlError::Store(_) | ControlError::Corrupt { .. } => {
            tracing::error!(error = %e, "autoscaling storage failure");
            ApiError::new(500, "InternalServiceException", e.to_string())
        }
        other => ApiError::from(other),
    }
}

impl From<ScalingError> for ApiError {
    fn from(s: ScalingError) -> Self {
        ApiError::new(400, s.code(), s.to_string())
    }
}

/// Refuses a service namespace other than `ecs`, naming it.
pub fn check_namespace(input: &Obj) -> ApiResult<()> {
    let ns = text(input, "ServiceNamespace").unwrap_or_default();
    if ns != NAMESPACE {
        return Err(validation(format!(
            "Berth scales ECS services only: service namespace {ns} is not supported (use {NAMESPACE})."
        )));
    }
    Ok(())
}

/// Refuses a scalable dimension other than `ecs:service:DesiredCount`, naming it.
pub fn check_dimension(dimension: &str) -> ApiResult<()> {
    if dimension != DIMENSION {
        return Err(validation(format!(
            "Unsupported scalable dimension {dimension} for service namespace {NAMESPACE}: Berth scales {DIMENSION} only."
        )));
    }
    Ok(())
}

/// The target a request names by `ServiceNamespace`, `ResourceId` and `ScalableDimension`
/// (all required by the model): its resource id, checked.
pub fn target_of(input: &Obj) -> ApiResult<String> {
    check_namespace(input)?;
    check_dimension(text(input, "ScalableDimension").unwrap_or_default())?;
    let resource = text(input, "ResourceId").unwrap_or_default();
    check_resource(resource)?;
    Ok(resource.to_string())
}

pub fn check_resource(resource: &str) -> ApiResult<()> {
    if service_of(resource).is_none() {
        return Err(validation(format!(
            "Unsupported resource ID {resource} for service namespace {NAMESPACE}: expected service/CLUSTER/SERVICE."
        )));
    }
    Ok(())
}

/// The filters of the Describe operations: namespace (other namespaces simply have nothing),
/// an optional resource id and dimension, the dimension only with a resource id.
pub struct Filter {
    /// `false`: the namespace is not `ecs`, so nothing matches.
    pub ecs: bool,
    pub resource: Option<String>,
}

pub fn filter(input: &Obj) -> ApiResult<Filter> {
    let ecs = text(input, "ServiceNamespace") == Some(NAMESPACE);
    let resource = text(input, "ResourceId").map(str::to_string);
    let dimension = text(input, "ScalableDimension");
    if dimension.is_some() && resource.is_none() {
        return Err(validation("If you specify a scalable dimension, you must also specify a resource ID."));
    }
    let ecs = ecs && dimension.is_none_or(|d| d == DIMENSION);
    Ok(Filter { ecs, resource })
}

/// Every target of the region, in key order.
pub fn all_targets(ctx: &Ctx<'_>) -> ApiResult<Vec<(KeyValue, TargetRecord)>> {
    ctx.store()
        .list(&ctx.keys.scalable_targets())?
        .into_iter()
        .map(|kv| {
            let t = decode(&kv)?;
            Ok((kv, t))
        })
        .collect()
}

/// One target, if registered.
pub fn target(ctx: &Ctx<'_>, resource: &str) -> ApiResult<Option<TargetRecord>> {
    ctx.store().get(&ctx.keys.scalable_target(resource))?.as_ref().map(decode).transpose()
}

/// `MaxResults` (1 to 50, 50 when omitted).
pub fn max_results(input: &Obj) -> ApiResult<usize> {
    match input.get("MaxResults").and_then(Value::as_i64) {
        None => Ok(50),
        Some(n) if (1..=50).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(format!("MaxResults must be between 1 and 50, not {n}."))),
    }
}

/// One page of `items` (sorted by unique key) after `NextToken`, answered as `{list: [...],
/// NextToken}`.
pub fn page(input: &Obj, list: &str, items: Vec<(String, Value)>) -> ApiResult<Value> {
    let limit = max_results(input)?;
    let start = match text(input, "NextToken") {
        None => 0,
        Some(token) => {
            let key = hex::decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::new(400, "InvalidNextTokenException", "Invalid token."))?;
            items.iter().position(|(k, _)| *k > key).unwrap_or(items.len())
        }
    };
    let chunk: Vec<&(String, Value)> = items.iter().skip(start).take(limit).collect();
    let mut out = json!({ list: chunk.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>() });
    if start + chunk.len() < items.len()
        && let Some((last, _)) = chunk.last()
    {
        out["NextToken"] = json!(hex::encode(last));
    }
    Ok(out)
}

/// The names a request filters by (`PolicyNames`, `ScheduledActionNames`).
pub fn names(input: &Obj, key: &str) -> Vec<String> {
    crate::ecs::strings(input, key)
}

/// `SuspendedState` as the API shows it.
pub fn suspended_json(s: &berth_scaling::decide::Suspended) -> Value {
    json!({"DynamicScalingInSuspended": s.dynamic_in, "DynamicScalingOutSuspended": s.dynamic_out,
           "ScheduledScalingSuspended": s.scheduled})
}

#[cfg(test)]
mod tests;
