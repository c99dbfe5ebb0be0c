//! A service's `loadBalancers` (CreateService, UpdateService): each names a target group of an
//! Application or Network Load Balancer and the container and port its tasks serve on. They
//! are checked as ECS checks them — the group exists and a load balancer uses it, the container
//! and its port are in the task definition, the group's target type fits the network mode —
//! and kept on the service; the scheduler registers each RUNNING task
//! (`berth-control/src/service_targets.rs`). An `advancedConfiguration` names the alternate
//! group and the listener rules a BLUE_GREEN, LINEAR or CANARY deployment shifts traffic with
//! (`berth-control/src/traffic.rs`).

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
    let target_group = attached_group(ctx, group)?;
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
    let mut out = json!({"targetGroupArn": group, "containerName": container, "containerPort": port});
    if let Some(advanced) = entry.get("advancedConfiguration").filter(|v| !v.is_null()) {
        out["advancedConfiguration"] = advanced_configuration(ctx, &target_group, advanced)?;
    }
    Ok(out)
}

/// A target group a service may name: it exists and a load balancer uses it.
fn attached_group(ctx: &Ctx<'_>, arn: &str) -> ApiResult<elb::TargetGroupInfo> {
    let group = elb::get_target_group(ctx, arn)
        .map_err(|_| ApiError::invalid(format!("The target group with targetGroupArn {arn} does not exist.")))?;
    if group.load_balancer_arns.is_empty() {
        return Err(ApiError::invalid(format!(
            "The target group with targetGroupArn {arn} does not have an associated load balancer."
        )));
    }
    Ok(group)
}

/// An `advancedConfiguration`: an alternate group like the primary one, and listener rules of
/// an Application Load Balancer that forward to them.
fn advanced_configuration(ctx: &Ctx<'_>, primary: &elb::TargetGroupInfo, given: &Value) -> ApiResult<Value> {
    let text = |k: &str| given.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let required =
        |k: &str| text(k).ok_or_else(|| ApiError::invalid(format!("advancedConfiguration.{k} is required.")));
    let group = primary.record.arn.as_str();
    let alternate = required("alternateTargetGroupArn")?;
    if alternate == group {
        return Err(ApiError::invalid("The alternate target group must differ from the target group."));
    }
    let alt = attached_group(ctx, alternate)?;
    if (alt.record.target_type, alt.record.port) != (primary.record.target_type, primary.record.port) {
        return Err(ApiError::invalid(
            "The alternate target group must have the target type and port of the target group.",
        ));
    }
    let production = required("productionListenerRule")?;
    forwards(ctx, production, &[group, alternate], "productionListenerRule")?;
    let test = text("testListenerRule");
    if let Some(t) = test {
        if t == production {
            return Err(ApiError::invalid("testListenerRule must differ from productionListenerRule."));
        }
        forwards(ctx, t, &[], "testListenerRule")?;
    }
    let mut out = json!({"alternateTargetGroupArn": alternate, "productionListenerRule": production});
    if let Some(t) = test {
        out["testListenerRule"] = json!(t);
    }
    if let Some(role) = text("roleArn") {
        out["roleArn"] = json!(role);
    }
    Ok(out)
}

/// Checks that `rule_arn` is a listener rule of an Application Load Balancer whose action
/// forwards to every group of `groups`.
fn forwards(ctx: &Ctx<'_>, rule_arn: &str, groups: &[&str], field: &str) -> ApiResult<()> {
    use elb::rules::Found;
    let actions = match elb::rules::get(ctx, rule_arn) {
        Ok(Found::Rule(r)) => r.record.actions,
        Ok(Found::Default(l)) => l.record.default_actions,
        Err(_) if elb::listeners::find(ctx, rule_arn).ok().flatten().is_some() => {
            return Err(ApiError::invalid(format!(
                "{field} {rule_arn} is a listener: Berth shifts traffic with the weights of an Application Load \
                 Balancer's listener rule, and Network Load Balancer listeners forward to one target group."
            )));
        }
        Err(_) => {
            return Err(ApiError::invalid(format!("The listener rule {rule_arn} given as {field} does not exist.")));
        }
    };
    let named: Vec<&str> = actions.iter().flat_map(|a| a.target_groups()).collect();
    if named.is_empty() {
        return Err(ApiError::invalid(format!("{field} {rule_arn} must have a forward action.")));
    }
    if let Some(missing) = groups.iter().find(|g| !named.contains(g)) {
        return Err(ApiError::invalid(format!("{field} {rule_arn} does not forward to the target group {missing}.")));
    }
    Ok(())
}

/// A service whose deployments shift traffic (BLUE_GREEN, LINEAR, CANARY) needs a load balancer,
/// and every one of them with an `advancedConfiguration`.
pub fn check_shifting(configuration: &Value, load_balancers: &Value) -> ApiResult<()> {
    let strategy = configuration["strategy"].as_str().unwrap_or("ROLLING");
    if strategy == "ROLLING" {
        return Ok(());
    }
    let list = load_balancers.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return Err(ApiError::invalid(format!(
            "The {strategy} deployment strategy needs loadBalancers with an advancedConfiguration (Berth has no \
             Service Connect to shift traffic with)."
        )));
    }
    if list.iter().any(|lb| lb.get("advancedConfiguration").is_none()) {
        return Err(ApiError::invalid(format!(
            "Every load balancer of a service with the {strategy} deployment strategy needs an advancedConfiguration."
        )));
    }
    Ok(())
}
