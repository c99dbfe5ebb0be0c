//! Running a scaling policy when an alarm that names it is in the state it is listed under.
//! The metric value comes from the datapoints the alarm's evaluation saw (its
//! `StateReasonData`): step scaling aggregates them by the policy's `MetricAggregationType`
//! and picks the step holding value minus threshold (the threshold itself when the state was
//! set by hand without datapoints); target tracking takes the newest and scales capacity in
//! proportion to value / target. `berth_scaling::decide` then applies bounds, cooldowns and
//! suspension, and [`super::change`] writes the outcome.

use berth_metrics::alarm::AlarmState;
use berth_scaling::capacity::proportional;
use berth_scaling::decide::{Change, Cooldowns, Outcome, Situation, decide};
use serde_json::Value;

use super::change::{Failed, transact};
use super::records::{NotScaled, PolicyConfig};
use super::{ScalingError, no_target};
use crate::Region;
use crate::alarms::AlarmRecord;
use crate::error::ControlResult;

/// The datapoints an alarm's last evaluation saw, newest first.
pub fn datapoints(alarm: &AlarmRecord) -> Vec<f64> {
    let data: Option<Value> = alarm.state_reason_data.as_deref().and_then(|d| serde_json::from_str(d).ok());
    data.and_then(|d| d.get("recentDatapoints").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}

/// What a policy asks for from a capacity, given the alarm: `None` when it cannot say (no
/// datapoint for target tracking, no step holding the breach).
fn proposal(config: &PolicyConfig, alarm: &AlarmRecord) -> Result<impl Fn(i64) -> i64, ScalingError> {
    let points = datapoints(alarm);
    let (step, tracking) = match config {
        PolicyConfig::StepScaling(s) => {
            let value = s.aggregation.of(&points).unwrap_or(alarm.threshold);
            let breach = value - alarm.threshold;
            if berth_scaling::capacity::step_for(&s.steps, breach).is_none() {
                return Err(ScalingError::Validation(format!(
                    "No step adjustment found for metric value [{value}] and breach threshold {}",
                    alarm.threshold
                )));
            }
            (Some((s.clone(), breach)), None)
        }
        PolicyConfig::TargetTrackingScaling(t) => {
            let Some(value) = points.first().copied() else {
                return Err(ScalingError::Validation(format!(
                    "Alarm {} has no datapoint for target tracking to act on",
                    alarm.name
                )));
            };
            (None, Some((value, t.target_value)))
        }
    };
    Ok(move |capacity: i64| match (&step, tracking) {
        (Some((s, breach)), _) => s.propose(capacity, *breach).unwrap_or(capacity),
        (None, Some((value, target))) => proportional(capacity, value, target),
        (None, None) => capacity,
    })
}

/// Runs the policy `name` of the target `resource_id` because `alarm` is in its state.
pub async fn on_alarm(region: &Region<'_>, resource_id: &str, name: &str, alarm: &AlarmRecord) -> ControlResult<()> {
    transact(region, resource_id, |draft| {
        let target = draft.target.clone().ok_or_else(|| no_target(resource_id))?;
        let policy = target
            .policy(name)
            .ok_or_else(|| ScalingError::NotFound(format!("No scaling policy {name} on {resource_id}")))?;
        let propose = proposal(&policy.config, alarm)?;
        let state = match alarm.state {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        };
        let cause = format!("monitor alarm {} in state {state} triggered policy {name}", alarm.name);
        let Some(current) = draft.current() else {
            draft.failed(
                region,
                resource_id,
                Failed {
                    description: "Attempting to scale due to alarm triggered".into(),
                    cause,
                    message: format!("Failed to set desired count. Reason: ECS service doesn't exist: {resource_id}"),
                    not_scaled: None,
                },
            );
            return Ok(());
        };
        let (cooldowns, disable_in) = match &policy.config {
            PolicyConfig::StepScaling(s) => (Cooldowns { scale_out: s.cooldown, scale_in: s.cooldown }, false),
            PolicyConfig::TargetTrackingScaling(t) => {
                (Cooldowns { scale_out: t.scale_out_cooldown, scale_in: t.scale_in_cooldown }, t.disable_scale_in)
            }
        };
        let now = region.timestamp();
        let situation = Situation {
            current,
            min: target.min,
            max: target.max,
            suspended: target.suspended,
            recent: target.recent,
            now,
        };
        match decide(&situation, propose, cooldowns, disable_in) {
            Outcome::Scale { to, .. } => {
                draft.set_capacity(region, resource_id, to, cause)?;
                if let Some(t) = draft.target.as_mut() {
                    t.recent.record(Change { at: now, from: current, to });
                }
            }
            Outcome::NotScaled { wanted, code } => draft.failed(
                region,
                resource_id,
                Failed {
                    description: format!("Setting desired count to {wanted}."),
                    cause,
                    message: format!("Failed to set desired count to {wanted}"),
                    not_scaled: Some(NotScaled { code: code.name().into(), min: target.min, max: target.max, current }),
                },
            ),
            Outcome::Held(_) => {}
        }
        Ok(())
    })
    .await
}
