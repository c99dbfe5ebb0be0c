//! REPLICA services: keep the desired count of the primary deployment's tasks, within
//! `maximumPercent` alive at once and `minimumHealthyPercent` healthy while replacing. A
//! deployment that shifts traffic ([`crate::shift`]) comes up in full beside the serving one
//! instead, which goes only when the shift says so.

use std::collections::HashSet;

use crate::{
    InstanceState, Launch, Pass, Rollout, State, Stop, StopReason, TaskView, give_way, healthy_floor, shift, usefulness,
};

/// The launches and stops of one pass, and the desired count; `alternate_share` as observed
/// (see [`crate::Observed`]).
pub(crate) fn plan(pass: &Pass<'_>, state: &State, alternate_share: Option<f64>) -> (Vec<Launch>, Vec<Stop>, u32) {
    let spec = pass.spec;
    let now = pass.now;
    let desired = spec.desired_count;
    let max_alive = (u64::from(desired) * u64::from(spec.maximum_percent) / 100) as usize;
    let min_healthy = healthy_floor(desired, spec.minimum_healthy_percent);
    let primary = state.primary();
    let pid = primary.map(|p| p.id.as_str()).unwrap_or_default();
    // Green comes up in full beside blue: no ceiling, and blue stays until the shift lets it go.
    let shifting = shift::shifting(state).is_some();
    let max_alive = if shifting { usize::MAX } else { max_alive };
    let leaving: HashSet<&str> = shift::leaving(pass, state, alternate_share).iter().map(|t| t.id.as_str()).collect();
    let routed: HashSet<&str> =
        shift::still_routed(pass, state, alternate_share).iter().map(|t| t.id.as_str()).collect();

    let mut stops = Vec::new();
    let mut stopping: HashSet<&str> = HashSet::new();

    // Failing health checks past the grace period: replaced whatever the floor says, since
    // they serve nothing.
    for t in pass.live.iter().filter(|t| t.failing_health(now, spec.grace_period)) {
        stopping.insert(&t.id);
        stops.push(Stop::failing(t, now, spec.grace_period));
    }
    let active: Vec<&TaskView> =
        pass.live.iter().copied().filter(|t| t.active() && !stopping.contains(t.id.as_str())).collect();
    let draining = |t: &TaskView| pass.instance_state(&t.instance) == InstanceState::Draining;
    let (mut keep, doomed): (Vec<&TaskView>, Vec<&TaskView>) =
        active.iter().copied().partition(|t| t.deployment == pid && !draining(t));

    // More of the primary than wanted: the least useful go first, the healthy oldest stay.
    if keep.len() > desired as usize {
        keep.sort_by(|a, b| usefulness(b, now).total_cmp(&usefulness(a, now)));
        for t in keep.drain(desired as usize..) {
            stopping.insert(&t.id);
            stops.push(Stop::of(t, StopReason::ScaledDown));
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

    // Tasks of older deployments and on draining instances give way within the floor. While
    // the primary has failed nothing replaces the older deployments' tasks: they keep running.
    let primary_failed = primary.is_some_and(|p| p.rollout == Rollout::Failed);
    let healthy = active.iter().filter(|t| !stopping.contains(t.id.as_str()) && t.healthy(now)).count();
    let doomed = doomed
        .into_iter()
        .filter(|t| !routed.contains(t.id.as_str()))
        .filter_map(|t| match (draining(t), primary_failed) {
            (true, _) if !shifting || t.deployment == pid => Some((t, StopReason::Draining)),
            (_, false) if !shifting || leaving.contains(t.id.as_str()) => Some((t, StopReason::Replaced)),
            _ => None,
        })
        .collect();
    stops.extend(give_way(doomed, healthy, min_healthy, now));
    (launch, stops, desired)
}
