//! Elastic Load Balancing v2 (AWS query protocol, signing name `elasticloadbalancing`) over
//! the load balancing model (`berth_control::elb`): the dispatch table, and helpers the
//! handlers share (members Berth refuses, attributes, tags, paging). One module per resource.
//!
//! Every answer carries an ELB error code: the model's own ([`berth_control::elb::ElbError`]),
//! and anything else a handler meets (an EC2 code from the VPC model, the domain's
//! "too many concurrent attempts") is reworded by [`finish`].

mod account;
mod actions;
mod listeners;
mod load_balancers;
mod rules;
mod tags;
mod target_groups;
mod targets;

use berth_control::elb::ElbError;
use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the model not in the table answer `OperationNotPermitted`, the model's own
/// name for an operation it refuses.
pub static SERVICE: Service = Service {
    name: "ELBv2",
    model: &shapes::ELBV2,
    operations: operations! {
        finish: finish;
        "AddTags" => |ctx, input| tags::add(ctx, input).await,
        "CreateListener" => |ctx, input| listeners::create(ctx, input).await,
        "CreateLoadBalancer" => |ctx, input| load_balancers::create(ctx, input).await,
        "CreateRule" => |ctx, input| rules::create(ctx, input).await,
        "CreateTargetGroup" => |ctx, input| target_groups::create(ctx, input).await,
        "DeleteListener" => |ctx, input| listeners::delete(ctx, input).await,
        "DeleteLoadBalancer" => |ctx, input| load_balancers::delete(ctx, input).await,
        "DeleteRule" => |ctx, input| rules::delete(ctx, input).await,
        "DeleteTargetGroup" => |ctx, input| target_groups::delete(ctx, input).await,
        "DeregisterTargets" => |ctx, input| targets::deregister(ctx, input).await,
        "DescribeAccountLimits" => |_ctx, input| account::limits(input),
        "DescribeCapacityReservation" => |ctx, input| load_balancers::capacity_reservation(ctx, input),
        "DescribeListenerAttributes" => |ctx, input| listeners::describe_attributes(ctx, input),
        "DescribeListenerCertificates" => |ctx, input| listeners::certificates(ctx, input),
        "DescribeListeners" => |ctx, input| listeners::describe(ctx, input),
        "DescribeLoadBalancerAttributes" => |ctx, input| load_balancers::describe_attributes(ctx, input),
        "DescribeLoadBalancers" => |ctx, input| load_balancers::describe(ctx, input),
        "DescribeRules" => |ctx, input| rules::describe(ctx, input),
        "DescribeTags" => |ctx, input| tags::describe(ctx, input),
        "DescribeTargetGroupAttributes" => |ctx, input| target_groups::describe_attributes(ctx, input),
        "DescribeTargetGroups" => |ctx, input| target_groups::describe(ctx, input),
        "DescribeTargetHealth" => |ctx, input| targets::describe_health(ctx, input),
        "ModifyListener" => |ctx, input| listeners::modify(ctx, input).await,
        "ModifyListenerAttributes" => |ctx, input| listeners::modify_attributes(ctx, input).await,
        "ModifyLoadBalancerAttributes" => |ctx, input| load_balancers::modify_attributes(ctx, input).await,
        "ModifyRule" => |ctx, input| rules::modify(ctx, input).await,
        "ModifyTargetGroup" => |ctx, input| target_groups::modify(ctx, input).await,
        "ModifyTargetGroupAttributes" => |ctx, input| target_groups::modify_attributes(ctx, input).await,
        "RegisterTargets" => |ctx, input| targets::register(ctx, input).await,
        "RemoveTags" => |ctx, input| tags::remove(ctx, input).await,
        "SetIpAddressType" => |ctx, input| load_balancers::set_ip_address_type(ctx, input),
        "SetRulePriorities" => |ctx, input| rules::set_priorities(ctx, input).await,
        "SetSecurityGroups" => |ctx, input| load_balancers::set_security_groups(ctx, input).await,
        "SetSubnets" => |ctx, input| load_balancers::set_subnets(ctx, input).await,
    },
    body_limit: 1024 * 1024,
    invalid_input: "ValidationError",
    unimplemented: "OperationNotPermitted",
    json_bodies: &[],
};

/// Every error in ELB's words: a lost race as `PriorRequestNotComplete` (retry later), any
/// other code ELB does not have (an EC2 code from the VPC model) as `ValidationError` with
/// its message.
fn finish(_ctx: &Ctx<'_>, result: ApiResult<Value>) -> ApiResult<Value> {
    result.map_err(|e| {
        let model = SERVICE.model();
        let known = |code: &str| {
            model.error_codes.iter().any(|c| c == code) || crate::protocol::query::COMMON_ERRORS.contains(&code)
        };
        match e.code {
            "ClientException" => ApiError::new(429, "PriorRequestNotComplete", e.message),
            code if e.status < 500 && !known(code) => ApiError::new(400, "ValidationError", e.message),
            _ => e,
        }
    })
}

fn elb(e: ElbError) -> ApiError {
    e.into()
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    elb(ElbError::validation(message))
}

/// Members of the model Berth does not act on are refused by name, never ignored.
pub(crate) fn refuse(input: &Obj, operation: &str, members: &[&str]) -> ApiResult<()> {
    match members.iter().find(|m| input.contains_key(**m)) {
        Some(member) => {
            Err(elb(ElbError::unsupported(format!("Berth does not support the parameter {member} of {operation}"))))
        }
        None => Ok(()),
    }
}

/// A required text member (the model leaves some optional that ELB requires).
pub(crate) fn required<'v>(input: &'v Obj, member: &str) -> ApiResult<&'v str> {
    text(input, member).ok_or_else(|| validation(format!("{member} must be specified")))
}

pub(crate) fn u32_of(value: Option<&Value>) -> Option<u32> {
    value.and_then(Value::as_u64).map(|n| n.min(u64::from(u32::MAX)) as u32)
}

pub(crate) fn u16_of(value: Option<&Value>) -> Option<u16> {
    value.and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())
}

/// `[{Key, Value}]` in, as pairs (a missing value is empty).
pub(crate) fn attributes_in(input: &Obj) -> Vec<(String, String)> {
    let items = input.get("Attributes").and_then(Value::as_array).into_iter().flatten();
    items
        .map(|a| {
            (a["Key"].as_str().unwrap_or_default().to_string(), a["Value"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

pub(crate) fn attributes_out(all: Vec<(String, String)>) -> Value {
    json!({ "Attributes": all.into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>() })
}

pub(crate) use crate::ec2::{tags_in, tags_out};

/// At most this many per page when `PageSize` is not given (ELB's largest page).
const PAGE: usize = 400;

/// One page of `items` (sorted by their unique keys) under `member`, after the position a
/// `Marker` names, `PageSize` long; `NextMarker` when more follow. Markers are the hex of
/// the last key given.
pub(crate) fn page(input: &Obj, mut items: Vec<(String, Value)>, member: &str) -> ApiResult<Value> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match text(input, "Marker") {
        None => 0,
        Some(marker) => {
            let after = hex::decode(marker)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| validation(format!("The marker '{marker}' is not valid")))?;
            items.iter().position(|(k, _)| *k > after).unwrap_or(items.len())
        }
    };
    let size = input.get("PageSize").and_then(Value::as_u64).map_or(PAGE, |n| n as usize);
    let total = items.len();
    let taken: Vec<(String, Value)> = items.into_iter().skip(start).take(size).collect();
    let mut out = Obj::new();
    if start + taken.len() < total
        && let Some((last, _)) = taken.last()
    {
        out.insert("NextMarker".into(), Value::String(hex::encode(last)));
    }
    out.insert(member.into(), Value::Array(taken.into_iter().map(|(_, v)| v).collect()));
    Ok(Value::Object(out))
}

/// Resource ARNs of a tagging call: at most 20.
pub(crate) fn resource_arns(input: &Obj) -> ApiResult<Vec<String>> {
    let arns = crate::ecs::strings(input, "ResourceArns");
    if arns.len() > 20 {
        return Err(validation("At most 20 resource ARNs can be specified"));
    }
    Ok(arns)
}

#[cfg(test)]
mod tests;
