//! A service's `loadBalancers` (CreateService, UpdateService): each names a target group of an
//! Application or Network Load Balancer and the container and port its tasks serve on. They
//! are checked as ECS checks them — the group exists and a load balancer uses it, the container
//! and its port are in the task definition, the group's target type fits the network mode —
//! and kept on the service; the scheduler registers each RUNNING task
//! (`berth-control/src/service_targets.rs`).

use berth_control::elb;
use serde_json::{Value, json};

use super::{Ctx, Obj};
use crate::error::{ApiError, ApiResult};

/// How many target groups one service may use.
pub const MAX: usize = 5;

/// The checked `loadBalancers` of a service running `definition`, as DescribeServices shows
/// them.
pub fn check(ctx: &Ctx<'_>, given: Option<&Value>, definition: &Obj) -> ApiResult<Value> {
    let list = match given {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::invalid("loadBalancers must be a list.")),
    };
    if list.len() > MAX {
        return Err(ApiError::invalid(format!("A service can use at most {MAX} target groups.")));
    }
    let mut out = Vec::new();
    for entry in list {
        let checked = one(ctx, entry, definition)?;
        if out.iter().any(|o: &Value| o == &checked) {
            return Err(ApiError::invalid("The same target group, container and port are named twice."));
        }
        out.push(checked);
    }
    Ok(Value::Array(out))
}

fn one(ctx: &Ctx<'_>, entry: &Value, definition: &Obj) -> ApiResult<Value> {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(name) = text("loadBalancerName") {
        return Err(ApiError::invalid(format!(
            "Classic Load Balancers are not supported by Berth: {name}. Name a targetGroupArn of an Application or \
             Network Load Balancer."
        )));
    }
    let group = text("targetGroupArn").ok_or_else(|| ApiError::invalid("targetGroupArn is required."))?;
    let container = text("containerName").ok_or_else(|| ApiError::invalid("containerName is required."))?;
    let port = entry
        .get("containerPort")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("containerPort is required."))?;
    if !(1..=65535).contains(&port) {
        return Err(ApiError::invalid("containerPort must be between 1 and 65535."));
    }
    let target_group = elb::get_target_group(ctx, group)
        .map_err(|_| ApiError::invalid(format!("The target group with targetGroupArn {group} does not exist.")))?;
    if target_group.load_balancer_arns.is_empty() {
        return Err(ApiError::invalid(format!(
            "The target group with targetGroupArn {group} does not have an associated load balancer."
        )));
    }
    let containers = definition.get("containerDefinitions").and_then(Value::as_array).cloned().unwrap_or_default();
    let Some(c) = containers.iter().find(|c| c["name"] == container) else {
        return Err(ApiError::invalid(format!("The container {container} does not exist in the task definition.")));
    };
    let mappings = c.get("portMappings").and_then(Value::as_array).cloned().unwrap_or_default();
    if !mappings.iter().any(|m| m["containerPort"].as_i64() == Some(port)) {
        return Err(ApiError::invalid(format!(
            "The container {container} did not have a container port {port} defined."
        )));
    }
    let mode = definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge");
    let kind = target_group.record.target_type.as_str();
    match (mode, kind) {
        ("awsvpc", "instance") | ("bridge" | "host", "ip") => {
            return Err(ApiError::invalid(format!(
                "The provided target group {group} has target type {kind}, which is incompatible with the {mode} \
                 network mode specified in the task definition."
            )));
        }
        _ => {}
    }
    Ok(json!({"targetGroupArn": group, "containerName": container, "containerPort": port}))
}
