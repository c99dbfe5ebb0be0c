//! Scheduled actions, run by the leader: each second it looks for actions whose next run
//! has come (`next_ms`), sets the target's min and max as the action says and, when the
//! service's desired count falls outside them, scales it inside — two activities, worded as
//! AWS words them. A target with `ScheduledScalingSuspended` skips the run. A run missed while
//! no server led happens once, late; then the next run is worked out from now.

use berth_store::KeyRange;

use super::change::{Draft, Failed, transact};
use super::records::{ScheduledRecord, TARGETS, TargetRecord};
use crate::error::ControlResult;
use crate::store::decode;
use crate::{Control, Region};

/// One pass over every region's targets; the number of actions run.
pub async fn pass(control: &Control) -> ControlResult<usize> {
    let now = control.clock.now();
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut ran = 0;
    for kv in control.store.range(&KeyRange::prefix(TARGETS))?.kvs {
        let target: TargetRecord = decode(&kv)?;
        if !target.scheduled.iter().any(|a| a.next_ms.is_some_and(|n| n <= now_ms)) {
            continue;
        }
        let Some((region, _)) = kv.key.strip_prefix(TARGETS).and_then(|k| k.split_once('/')) else { continue };
        let region = control.region_at(region, now);
        ran += run_due(&region, &target.resource_id, now_ms).await?;
    }
    Ok(ran)
}

async fn run_due(region: &Region<'_>, resource_id: &str, now_ms: i64) -> ControlResult<usize> {
    transact(region, resource_id, |draft| {
        let Some(target) = draft.target.clone() else { return Ok(0) };
        let mut due: Vec<ScheduledRecord> =
            target.scheduled.iter().filter(|a| a.next_ms.is_some_and(|n| n <= now_ms)).cloned().collect();
        due.sort_by_key(|a| a.next_ms);
        for action in &due {
            if !target.suspended.scheduled {
                run(region, draft, resource_id, action);
            }
            let next = action.parsed().ok().and_then(|s| s.next_after(now_ms, (action.created * 1000.0) as i64));
            if let Some(t) = draft.target.as_mut()
                && let Some(a) = t.scheduled.iter_mut().find(|a| a.name == action.name)
            {
                a.next_ms = next;
            }
        }
        Ok(if target.suspended.scheduled { 0 } else { due.len() })
    })
    .await
}

/// The words AWS uses for new bounds: "min capacity to 2 and max capacity to 5".
fn bounds_text(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("min capacity to {a} and max capacity to {b}"),
        (Some(a), None) => format!("min capacity to {a}"),
        (None, Some(b)) => format!("max capacity to {b}"),
        (None, None) => "no capacity".into(),
    }
}

/// Runs one scheduled action on the draft.
fn run(region: &Region<'_>, draft: &mut Draft, resource_id: &str, action: &ScheduledRecord) {
    let Some(target) = draft.target.as_mut() else { return };
    let cause = format!("scheduled action name {} was triggered", action.name);
    let (min, max) = (action.min.unwrap_or(target.min), action.max.unwrap_or(target.max));
    let text = bounds_text(action.min, action.max);
    if min > max {
        draft.failed(
            region,
            resource_id,
            Failed {
                description: format!("Setting {text}"),
                cause,
                message: format!("Failed to set {text}: the minimum capacity {min} would be above the maximum {max}"),
                not_scaled: None,
            },
        );
        return;
    }
    (target.min, target.max) = (min, max);
    draft.succeeded(region, resource_id, format!("Setting {text}"), cause, format!("Successfully set {text}"));
    clamp(region, draft, resource_id);
}

/// Brings the service's desired count within the target's bounds, as a change of min or max
/// does: "Setting desired count to 2." because "minimum capacity was set to 2".
pub fn clamp(region: &Region<'_>, draft: &mut Draft, resource_id: &str) {
    let (Some(current), Some(t)) = (draft.current(), draft.target.as_ref()) else { return };
    let Some(to) = berth_scaling::decide::within(current, t.min, t.max) else { return };
    let bound = if to > current { "minimum" } else { "maximum" };
    let cause = format!("{bound} capacity was set to {to}");
    if let Err(e) = draft.set_capacity(region, resource_id, to, cause.clone()) {
        draft.failed(
            region,
            resource_id,
            Failed {
                description: format!("Setting desired count to {to}."),
                cause,
                message: format!("Failed to set desired count to {to}. Reason: {e}"),
                not_scaled: None,
            },
        );
    }
}
