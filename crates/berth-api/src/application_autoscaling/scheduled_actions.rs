//! Scheduled actions: PutScheduledAction (create or update; `at()`, `rate()` and `cron()`
//! schedules with `Timezone`, `StartTime`/`EndTime`, new min and max), DescribeScheduledActions,
//! DeleteScheduledAction. The leader runs them (`berth_control::autoscaling::scheduled`).

use berth_control::autoscaling::change::transact;
use berth_control::autoscaling::records::{ScheduledRecord, arns};
use berth_control::autoscaling::{DIMENSION, NAMESPACE, ScalingError, no_target};
use serde_json::{Value, json};

use super::{all_targets, filter, names, page, scaling_error, target_of, validation};
use crate::ecs::{Ctx, Obj, text};
use crate::error::ApiResult;

/// Scheduled actions one target may have.
const MAX_ACTIONS: usize = 200;

fn capacity(action: Option<&Value>, key: &str) -> ApiResult<Option<i64>> {
    match action.and_then(|a| a.get(key)).and_then(Value::as_i64) {
        Some(n) if n < 0 => Err(validation(format!("ScalableTargetAction.{key} must be 0 or more, not {n}."))),
        other => Ok(other),
    }
}

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    let name = text(&input, "ScheduledActionName").unwrap_or_default().to_string();
    let action = input.get("ScalableTargetAction");
    let (min, max) = (capacity(action, "MinCapacity")?, capacity(action, "MaxCapacity")?);
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(validation(format!(
            "ScalableTargetAction.MinCapacity ({a}) cannot be greater than MaxCapacity ({b})."
        )));
    }
    let start = input.get("StartTime").and_then(Value::as_f64);
    let end = input.get("EndTime").and_then(Value::as_f64);
    let now = ctx.timestamp();
    let account = ctx.config().account.clone();
    let (schedule, timezone) = (text(&input, "Schedule"), text(&input, "Timezone"));
    transact(ctx, &resource, |draft| {
        let target = draft.target.as_mut().ok_or_else(|| no_target(&resource))?;
        let existing = target.scheduled.iter().position(|a| a.name == name);
        let before = existing.map(|i| target.scheduled[i].clone());
        if before.is_none() && target.scheduled.len() >= MAX_ACTIONS {
            return Err(ScalingError::LimitExceeded(format!(
                "A scalable target can have at most {MAX_ACTIONS} scheduled actions."
            ))
            .into());
        }
        let schedule = match (schedule, &before) {
            (Some(s), _) => s.to_string(),
            (None, Some(b)) => b.schedule.clone(),
            (None, None) => {
                return Err(ScalingError::Validation("Schedule is required for a new scheduled action.".into()).into());
            }
        };
        let (min, max) = (min.or(before.as_ref().and_then(|b| b.min)), max.or(before.as_ref().and_then(|b| b.max)));
        if min.is_none() && max.is_none() {
            return Err(ScalingError::Validation(
                "ScalableTargetAction needs MinCapacity, MaxCapacity or both.".into(),
            )
            .into());
        }
        let mut record = ScheduledRecord {
            arn: match &before {
                Some(b) => b.arn.clone(),
                None => arns::scheduled_action(&ctx.name, &account, &ctx.control.ids.uuid(), &resource, &name),
            },
            name: name.clone(),
            schedule,
            timezone: timezone.map(str::to_string).or_else(|| before.as_ref().and_then(|b| b.timezone.clone())),
            start: start.or_else(|| before.as_ref().and_then(|b| b.start)),
            end: end.or_else(|| before.as_ref().and_then(|b| b.end)),
            min,
            max,
            created: before.as_ref().map_or(now, |b| b.created),
            next_ms: None,
        };
        let parsed = record.parsed().map_err(|e| ScalingError::Validation(format!("{}: {e}.", record.schedule)))?;
        record.next_ms = parsed.next_after((now * 1000.0) as i64, (record.created * 1000.0) as i64);
        if record.next_ms.is_none() {
            return Err(ScalingError::Validation(format!(
                "{} never runs: its times are in the past or after EndTime.",
                record.schedule
            ))
            .into());
        }
        match existing {
            Some(i) => target.scheduled[i] = record,
            None => target.scheduled.push(record),
        }
        Ok(())
    })
    .await
    .map_err(scaling_error)?;
    Ok(json!({}))
}

fn render(resource: &str, a: &ScheduledRecord) -> Value {
    let mut bounds = json!({});
    if let Some(m) = a.min {
        bounds["MinCapacity"] = json!(m);
    }
    if let Some(m) = a.max {
        bounds["MaxCapacity"] = json!(m);
    }
    let mut out = json!({
        "ScheduledActionName": a.name, "ScheduledActionARN": a.arn, "ServiceNamespace": NAMESPACE,
        "Schedule": a.schedule, "ResourceId": resource, "ScalableDimension": DIMENSION,
        "ScalableTargetAction": bounds, "CreationTime": a.created,
    });
    for (k, v) in [("StartTime", a.start), ("EndTime", a.end)] {
        if let Some(t) = v {
            out[k] = json!(t);
        }
    }
    if let Some(tz) = &a.timezone {
        out["Timezone"] = json!(tz);
    }
    out
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let f = filter(&input)?;
    let wanted = names(&input, "ScheduledActionNames");
    let mut items = Vec::new();
    if f.ecs {
        for (_, t) in all_targets(ctx)? {
            if f.resource.as_ref().is_some_and(|r| *r != t.resource_id) {
                continue;
            }
            for a in t.scheduled.iter().filter(|a| wanted.is_empty() || wanted.contains(&a.name)) {
                items.push((format!("{}\u{0}{}", t.resource_id, a.name), render(&t.resource_id, a)));
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    page(&input, "ScheduledActions", items)
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    let name = text(&input, "ScheduledActionName").unwrap_or_default().to_string();
    transact(ctx, &resource, |draft| {
        let missing = || {
            ScalingError::NotFound(format!(
                "No scheduled action found for service namespace: {NAMESPACE}, resource ID: {resource}, scalable dimension: {DIMENSION}, scheduled action name: {name}"
            ))
        };
        let target = draft.target.as_mut().ok_or_else(missing)?;
        let i = target.scheduled.iter().position(|a| a.name == name).ok_or_else(missing)?;
        target.scheduled.remove(i);
        Ok(())
    })
    .await
    .map_err(scaling_error)?;
    Ok(json!({}))
}
