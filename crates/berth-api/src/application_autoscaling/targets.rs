//! Scalable targets: RegisterScalableTarget (create, or update min, max and suspended state;
//! capacity outside new bounds is brought inside), DescribeScalableTargets,
//! DeregisterScalableTarget (with its policies, scheduled actions and the alarms target
//! tracking made).

use berth_control::autoscaling::change::{read_service, transact};
use berth_control::autoscaling::records::{TargetRecord, arns};
use berth_control::autoscaling::scheduled::clamp;
use berth_control::autoscaling::{DIMENSION, NAMESPACE, ScalingError};
use berth_scaling::decide::Suspended;
use berth_scheduler::Scheduling;
use berth_store::Op;
use serde_json::{Value, json};

use super::tags::tags_of;
use super::{all_targets, page, scaling_error, suspended_json, target_of, validation};
use crate::ecs::{Ctx, Obj, text};
use crate::error::ApiResult;

fn capacity(input: &Obj, key: &str) -> ApiResult<Option<i64>> {
    match input.get(key).and_then(Value::as_i64) {
        Some(n) if n < 0 => Err(validation(format!("{key} must be 0 or more, not {n}."))),
        other => Ok(other),
    }
}

fn suspended(input: &Obj, before: Suspended) -> Suspended {
    let Some(s) = input.get("SuspendedState") else { return before };
    let flag = |k: &str, was: bool| s.get(k).and_then(Value::as_bool).unwrap_or(was);
    Suspended {
        dynamic_in: flag("DynamicScalingInSuspended", before.dynamic_in),
        dynamic_out: flag("DynamicScalingOutSuspended", before.dynamic_out),
        scheduled: flag("ScheduledScalingSuspended", before.scheduled),
    }
}

/// `RoleARN`: an IAM role of the account (reported; Berth needs no role to scale).
fn role(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<Option<String>> {
    let Some(arn) = text(input, "RoleARN") else { return Ok(None) };
    let prefix = format!("arn:aws:iam::{}:role/", ctx.config().account);
    if !arn.starts_with(&prefix) || arn.len() == prefix.len() {
        return Err(validation(format!("RoleARN {arn} is not an IAM role ARN of account {}.", ctx.config().account)));
    }
    Ok(Some(arn.to_string()))
}

pub async fn register(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    let (min, max) = (capacity(&input, "MinCapacity")?, capacity(&input, "MaxCapacity")?);
    let role = role(ctx, &input)?;
    let tags = tags_of(&input)?;
    let service = read_service(ctx, &resource)?;
    match &service {
        None => return Err(validation(format!("ECS service doesn't exist: {resource}"))),
        Some((_, s)) if s.scheduling() == Scheduling::Daemon => {
            return Err(validation(format!(
                "{resource} uses the DAEMON scheduling strategy: it has no desired count to scale."
            )));
        }
        _ => {}
    }
    let account = ctx.config().account.clone();
    let now = ctx.timestamp();
    let arn = transact(ctx, &resource, |draft| {
        let mut t = match draft.target.clone() {
            Some(t) => t,
            None => {
                let (Some(min), Some(max)) = (min, max) else {
                    return Err(ScalingError::Validation(
                        "MinCapacity and MaxCapacity are required to register a new scalable target.".into(),
                    )
                    .into());
                };
                TargetRecord {
                    resource_id: resource.clone(),
                    arn: arns::target(&ctx.name, &account, &ctx.control.ids.uuid().replace('-', "")),
                    min,
                    max,
                    role_arn: arns::service_linked_role(&account),
                    created: now,
                    suspended: Suspended::default(),
                    tags: Default::default(),
                    recent: Default::default(),
                    policies: Vec::new(),
                    scheduled: Vec::new(),
                    activity_seq: 0,
                    last_not_scaled: None,
                }
            }
        };
        t.min = min.unwrap_or(t.min);
        t.max = max.unwrap_or(t.max);
        if t.min > t.max {
            return Err(ScalingError::Validation(format!(
                "Minimum capacity ({}) cannot be greater than maximum capacity ({}).",
                t.min, t.max
            ))
            .into());
        }
        if let Some(r) = &role {
            t.role_arn = r.clone();
        }
        t.suspended = suspended(&input, t.suspended);
        t.tags.extend(tags.iter().cloned());
        if t.tags.len() > 50 {
            return Err(ScalingError::LimitExceeded("A scalable target can have at most 50 tags.".into()).into());
        }
        let arn = t.arn.clone();
        draft.target = Some(t);
        clamp(ctx, draft, &resource);
        Ok(arn)
    })
    .await
    .map_err(scaling_error)?;
    Ok(json!({"ScalableTargetARN": arn}))
}

pub fn render(t: &TargetRecord) -> Value {
    json!({
        "ServiceNamespace": NAMESPACE, "ResourceId": t.resource_id, "ScalableDimension": DIMENSION,
        "MinCapacity": t.min, "MaxCapacity": t.max, "RoleARN": t.role_arn, "CreationTime": t.created,
        "SuspendedState": suspended_json(&t.suspended), "ScalableTargetARN": t.arn,
    })
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let ecs = text(&input, "ServiceNamespace") == Some(NAMESPACE)
        && text(&input, "ScalableDimension").is_none_or(|d| d == DIMENSION);
    let wanted = super::names(&input, "ResourceIds");
    let items: Vec<(String, Value)> = if ecs {
        all_targets(ctx)?
            .into_iter()
            .filter(|(_, t)| wanted.is_empty() || wanted.contains(&t.resource_id))
            .map(|(kv, t)| (kv.key, render(&t)))
            .collect()
    } else {
        Vec::new()
    };
    page(&input, "ScalableTargets", items)
}

pub async fn deregister(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    transact(ctx, &resource, |draft| {
        let t = draft.target.take().ok_or_else(|| {
            ScalingError::NotFound(format!(
                "No scalable target found for service namespace: {NAMESPACE}, resource ID: {resource}, scalable dimension: {DIMENSION}"
            ))
        })?;
        for alarm in t.policies.iter().flat_map(|p| &p.alarms) {
            draft.ops.push(Op::delete(&ctx.keys.alarm(&alarm.name)));
        }
        Ok(())
    })
    .await
    .map_err(scaling_error)?;
    Ok(json!({}))
}
