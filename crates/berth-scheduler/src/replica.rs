//! REPLICA services: keep the desired count of the primary deployment's tasks, within
//! `maximumPercent` alive at once and `minimumHealthyPercent` healthy while replacing.

use std::collections::HashSet;

use crate::{InstanceState, Launch, Pass, Rollout, State, Stop, StopReason, TaskView};

/// The launches and stops of one pass, and the desired count.
pub(crate) fn plan(pass: &Pass<'_>, state: &State) -> (Vec<Launch>, Vec<Stop>, u32) {
    let spec = pass.spec;
    let now = pass.now;
    let desired = spec.desired_count;
    let max_alive = (u64::from(desired) * u64::from(spec.maximum_percent) / 100) as usize;
    let min_healthy = (u64::from(desired) * u64::from(spec.minimum_healthy_percent)).div_ceil(100) as usize;
    let primary = state.primary();
    let pid = primary.map(|p| p.id.as_str()).unwrap_or_default();

    let mut stops = Vec::new();
    let mut stopping: HashSet<&str> = HashSet::new();
    let stop = |t: &TaskView, reason, stops: &mut Vec<Stop>| {
        stops.push(Stop::of(t, reason));
    };

    // Failing health checks past the grace period: replaced whatever the floor says, since
    // they serve nothing.
    for t in pass.live.iter().filter(|t| t.failing_health(now, spec.grace_period)) {
        stopping.insert(&t.id);
        stop(t, StopReason::Unhealthy, &mut stops);
    }
    let active: Vec<&TaskView> =
        pass.live.iter().copied().filter(|t| t.active() && !stopping.contains(t.id.as_str())).collect();
    let draining = |t: &TaskView| pass.instance_state(&t.instance) == InstanceState::Draining;
    let (mut keep, doomed): (Vec<&TaskView>, Vec<&TaskView>) =
        active.iter().copied().partition(|t| t.deployment == pid && !draining(t));

    // More of the primary than wanted: the least useful go first, the healthy oldest stay.
    if keep.len() > desired as usize {
        keep.sort_by(|a, b| usefulness(b, now).partial_cmp(&usefulness(a, now)).expect("finite"));
        for t in keep.drain(desired as usize..) {
            stopping.insert(&t.id);
            stop(t, StopReason::ScaledDown, &mut stops);
        }
    }

    // Launch what the primary lacks, as far as the ceiling allows.
    let mut launch = Vec::new();
    if let Some(p) = primary.filter(|p| p.rollout != Rollout::Failed) {
        let want = (desired as usize).saturating_sub(keep.len());
        let room = max_alive.saturating_sub(pass.live.len());
        for _ in 0..want.min(room) {
            launch.push(Launch {
                deployment: p.id.clone(),
                task_definition: p.task_definition.clone(),
                instance: None,
            });
        }
    }

    // Tasks of older deployments and on draining instances: the unhealthy ones go at once,
    // the healthy ones as far as the floor allows.
    let healthy = active.iter().filter(|t| !stopping.contains(t.id.as_str()) && t.healthy(now)).count();
    let mut spare = healthy.saturating_sub(min_healthy);
    let mut doomed = doomed;
    doomed.sort_by(|a, b| usefulness(a, now).partial_cmp(&usefulness(b, now)).expect("finite"));
    for t in doomed {
        let reason = if draining(t) { StopReason::Draining } else { StopReason::Replaced };
        if !t.healthy(now) {
            stop(t, reason, &mut stops);
        } else if spare > 0 {
            spare -= 1;
            stop(t, reason, &mut stops);
        }
    }
    (launch, stops, desired)
}

/// Orders tasks by how much stopping them would cost: healthy before running before
/// pending, and among equals the older first.
fn usefulness(t: &TaskView, now: f64) -> f64 {
    let rank = if t.healthy(now) {
        2.0
    } else if t.status == berth_model::task::TaskStatus::Running {
        1.0
    } else {
        0.0
    };
    // Older tasks (smaller created_at) rank a little higher within their class.
    rank * 1e12 - t.created_at
}
