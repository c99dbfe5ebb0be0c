//! DAEMON services: one task of the primary deployment on every eligible instance. An
//! instance's old task is stopped before its replacement starts (a daemon never runs two
//! tasks on one instance), as many at once as `minimumHealthyPercent` allows, and tasks on
//! instances that drain or stop matching go.

use std::collections::{HashMap, HashSet};

use crate::{InstanceState, Launch, Pass, Rollout, State, Stop, StopReason, TaskView, give_way, healthy_floor};

pub(crate) fn plan(pass: &Pass<'_>, state: &State) -> (Vec<Launch>, Vec<Stop>, u32) {
    let now = pass.now;
    let grace = pass.spec.grace_period;
    let primary_failed = state.primary().is_some_and(|p| p.rollout == Rollout::Failed);
    let pid = state.primary().map(|p| p.id.as_str()).unwrap_or_default();
    let eligible: Vec<_> =
        pass.instances.iter().filter(|i| i.state == InstanceState::Active && i.daemon_eligible).collect();
    let desired = eligible.len() as u32;

    // Failing health checks and a second task of ours on one instance go at once; the rest
    // that should give way do so within the floor.
    let mut stops = Vec::new();
    let mut doomed = Vec::new();
    let mut seen_on: HashSet<&str> = HashSet::new();
    let mut active: Vec<&TaskView> = pass.live.iter().copied().filter(|t| t.active()).collect();
    active.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    for t in &active {
        let here = pass.instance(&t.instance).map(|i| (i.state, i.daemon_eligible));
        match here {
            _ if t.failing_health(now, grace) => stops.push(Stop::failing(t, now, grace)),
            Some((InstanceState::Draining, _)) => doomed.push((*t, StopReason::Draining)),
            Some((InstanceState::Active, false)) => doomed.push((*t, StopReason::NotEligible)),
            // Nothing replaces an older deployment's task while the primary has failed.
            _ if t.deployment != pid && primary_failed => {}
            _ if t.deployment != pid => doomed.push((*t, StopReason::Replaced)),
            // Two of ours on one instance: keep the one that has run longest.
            _ if !seen_on.insert(t.instance.as_str()) => stops.push(Stop::of(t, StopReason::ScaledDown)),
            _ => {}
        }
    }
    let stopping: HashSet<&str> = stops.iter().map(|s| s.task.as_str()).collect();
    let healthy = active.iter().filter(|t| !stopping.contains(t.id.as_str()) && t.healthy(now)).count();
    stops.extend(give_way(doomed, healthy, healthy_floor(desired, pass.spec.minimum_healthy_percent), now));

    // An instance gets the primary's task once nothing else holds it.
    let mut launch = Vec::new();
    if let Some(p) = state.primary().filter(|_| !primary_failed) {
        let mut by_instance: HashMap<&str, Vec<&TaskView>> = HashMap::new();
        for t in &pass.live {
            by_instance.entry(t.instance.as_str()).or_default().push(t);
        }
        for i in eligible {
            let on = || by_instance.get(i.id.as_str()).into_iter().flatten();
            let ours = on().any(|t| t.active() && t.deployment == pid);
            let busy = on().any(|t| t.deployment != pid || !t.active() || t.failing_health(now, grace));
            if !ours && !busy {
                launch.push(Launch {
                    deployment: p.id.clone(),
                    task_definition: p.task_definition.clone(),
                    instance: Some(i.id.clone()),
                });
            }
        }
    }
    (launch, stops, desired)
}
