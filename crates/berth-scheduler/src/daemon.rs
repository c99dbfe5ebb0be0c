//! DAEMON services: one task of the primary deployment on every eligible instance. An
//! instance's old task is stopped before its replacement starts (a daemon never runs two
//! tasks on one instance), and tasks on instances that drain or stop matching go.

use crate::{InstanceState, Launch, Pass, Rollout, State, Stop, StopReason, TaskView};

pub(crate) fn plan(pass: &Pass<'_>, state: &State) -> (Vec<Launch>, Vec<Stop>, u32) {
    let now = pass.now;
    let primary = state.primary().filter(|p| p.rollout != Rollout::Failed);
    let pid = state.primary().map(|p| p.id.as_str()).unwrap_or_default();
    let mut stops = Vec::new();
    let mut stop = |t: &TaskView, reason| stops.push(Stop::of(t, reason));
    let mut launch = Vec::new();
    let mut desired = 0;

    for t in pass.live.iter().filter(|t| t.active()) {
        let here = pass.instances.iter().find(|i| i.id == t.instance);
        match here.map(|i| (i.state, i.daemon_eligible)) {
            Some((InstanceState::Draining, _)) => stop(t, StopReason::Draining),
            Some((InstanceState::Active, false)) => stop(t, StopReason::NotEligible),
            _ if t.failing_health(now, pass.spec.grace_period) => stop(t, StopReason::Unhealthy),
            _ => {}
        }
    }

    for i in pass.instances.iter().filter(|i| i.state == InstanceState::Active && i.daemon_eligible) {
        desired += 1;
        let on: Vec<&TaskView> = pass.live.iter().copied().filter(|t| t.instance == i.id).collect();
        let mut mine: Vec<&TaskView> = on.iter().copied().filter(|t| t.active() && t.deployment == pid).collect();
        let others: Vec<&TaskView> = on.iter().copied().filter(|t| t.active() && t.deployment != pid).collect();
        // Two of ours on one instance: keep the one that has run longest.
        mine.sort_by(|a, b| a.created_at.partial_cmp(&b.created_at).expect("finite"));
        for t in mine.iter().skip(1) {
            stop(t, StopReason::ScaledDown);
        }
        for t in &others {
            stop(t, StopReason::Replaced);
        }
        let busy =
            on.iter().any(|t| t.deployment != pid || !t.active() || t.failing_health(now, pass.spec.grace_period));
        if mine.is_empty()
            && !busy
            && let Some(p) = primary
        {
            launch.push(Launch {
                deployment: p.id.clone(),
                task_definition: p.task_definition.clone(),
                instance: Some(i.id.clone()),
            });
        }
    }
    (launch, stops, desired)
}
