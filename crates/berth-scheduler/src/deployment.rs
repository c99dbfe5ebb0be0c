//! A deployment's life: counting its failed tasks, the circuit breaker and rollback, launch
//! back-off, completion, and the steady-state event.

use crate::{
    Deployment, Ending, HISTORY, InstanceState, Observed, Outcome, Pass, Rollout, Scheduling, Spec, State, Strategy,
    messages,
};

/// A task without health checks counts as healthy once it has run this long.
pub const STABLE_SECS: f64 = 3.0;

/// The circuit breaker's bounds on 0.5 x the desired count.
pub const BREAKER_MIN: u32 = 3;
pub const BREAKER_MAX: u32 = 200;

/// Consecutive failures before launches are throttled, the first delay, and the longest.
const BACKOFF_AFTER: u32 = 3;
const BACKOFF_FIRST: f64 = 10.0;
const BACKOFF_MAX: f64 = 900.0;

/// Failed tasks that fail a deployment of `desired` tasks: half of them, within 3..=200.
pub fn breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(BREAKER_MIN, BREAKER_MAX)
}

/// The deployment a failed one rolls back to: the newest other one that completed.
pub fn rollback_target<'s>(state: &'s State, failed: &str) -> Option<&'s Deployment> {
    let completed = |d: &&Deployment| d.id != failed && d.rollout == Rollout::Completed;
    state.deployments.iter().find(completed).or_else(|| state.history.iter().find(completed))
}

fn backoff_delay(consecutive: u32) -> f64 {
    let doublings = consecutive.saturating_sub(BACKOFF_AFTER).min(16);
    (BACKOFF_FIRST * f64::from(1u32 << doublings)).min(BACKOFF_MAX)
}

/// The desired count the circuit breaker and completion measure against.
pub(crate) fn target_count(spec: &Spec, observed_instances: &[crate::InstanceView]) -> u32 {
    match spec.scheduling {
        _ if spec.deleting => 0,
        Scheduling::Replica => spec.desired_count,
        Scheduling::Daemon => {
            observed_instances.iter().filter(|i| i.state == InstanceState::Active && i.daemon_eligible).count() as u32
        }
    }
}

/// Counts the failures observed since the last pass into each deployment, resets counts that
/// a healthy task clears, throttles launches, and trips the circuit breaker.
pub(crate) fn account_failures(spec: &Spec, state: &mut State, observed: &Observed<'_>, events: &mut Vec<String>) {
    let now = observed.now;
    let mut new_failures = 0;
    let mut primary_proven = false;
    for d in &mut state.deployments {
        let mine = || observed.tasks.iter().filter(|t| t.deployment == d.id);
        let new = mine().filter(|t| t.ending == Some(Ending::Failed) && t.revision > d.seen_revision).count() as u32;
        let proven = mine().any(|t| t.healthy(now));
        if proven {
            d.breaker_failures = 0;
            primary_proven |= d.primary;
        }
        if new > 0 {
            d.failed_tasks += new;
            d.breaker_failures += new;
            d.updated_at = now;
        }
        d.seen_revision = d.seen_revision.max(observed.revision);
        new_failures += new;
    }
    // Task sets have no circuit breaker, but their failures throttle launches too.
    for s in &mut state.task_sets {
        let mine = || observed.tasks.iter().filter(|t| t.deployment == s.id);
        new_failures +=
            mine().filter(|t| t.ending == Some(Ending::Failed) && t.revision > s.seen_revision).count() as u32;
        primary_proven |= mine().any(|t| t.healthy(now));
        s.seen_revision = s.seen_revision.max(observed.revision);
    }

    if new_failures > 0 {
        let was_throttled = state.backoff.until > now;
        state.backoff.consecutive += new_failures;
        if state.backoff.consecutive >= BACKOFF_AFTER {
            state.backoff.until = now + backoff_delay(state.backoff.consecutive);
            if !was_throttled {
                events.push(messages::throttled(&spec.name));
            }
        }
    } else if primary_proven {
        state.backoff = Default::default();
    }

    let Some(rollback) = spec.circuit_breaker else { return };
    let threshold = breaker_threshold(target_count(spec, observed.instances));
    let Some(p) = state.deployments.iter_mut().find(|d| d.primary) else { return };
    if p.rollout != Rollout::InProgress || p.breaker_failures < threshold {
        return;
    }
    p.rollout = Rollout::Failed;
    p.rollout_reason = messages::BREAKER_FAILED.into();
    p.updated_at = now;
    state.steady = false;
    let failed = p.id.clone();
    events.push(messages::deployment_failed(&spec.name, &failed));
    if !rollback {
        return;
    }
    let reason = |to: &str| messages::breaker_rollback(to);
    match roll_back(state, &failed, &reason, observed.fresh_id, now, observed.revision) {
        Some(to) => events.push(messages::rolling_back(&spec.name, &to)),
        None => events.push(messages::nothing_to_roll_back(&spec.name, &failed)),
    }
}

/// Puts the service back on the newest completed deployment once the primary, `failed`, has
/// failed (its rollout already marked so). A deployment that was shifting traffic hands it
/// back to the blue deployment whose tasks still run; otherwise a new deployment of the
/// completed one's task definition rolls out. `reason` words the rollout reason from the id
/// rolled back to. Returns that id; `None` when nothing completed before.
pub fn roll_back(
    state: &mut State,
    failed: &str,
    reason: &dyn Fn(&str) -> String,
    fresh_id: &str,
    now: f64,
    revision: u64,
) -> Option<String> {
    let target = rollback_target(state, failed)?;
    let to = target.id.clone();
    let definition = target.task_definition.clone();
    let shifted = state.deployments.iter().any(|d| d.id == failed && d.shift.is_some());
    let blue_runs = state.deployments.iter().any(|d| d.id == to);
    state.steady = false;
    if shifted && blue_runs {
        for d in &mut state.deployments {
            d.primary = d.id == to;
            if d.primary {
                d.rollback_of = Some(failed.to_string());
                d.rollout_reason = reason(&to);
                d.updated_at = now;
            }
        }
        state.backoff = Default::default();
        return Some(to);
    }
    let mut back = Deployment::new(fresh_id.to_string(), definition, now, revision);
    back.rollout_reason = reason(&to);
    back.rollback_of = Some(failed.to_string());
    state.start_deployment(back, Strategy::Rolling);
    Some(to)
}

/// After the pass's actions are known: completes the primary deployment when it runs the
/// desired count alone, retires the others, and tells when the service is steady.
pub(crate) fn settle(
    spec: &Spec,
    state: &mut State,
    pass: &Pass<'_>,
    desired: u32,
    changed: bool,
    events: &mut Vec<String>,
) {
    let now = pass.now;
    let Some(p) = state.deployments.iter().position(|d| d.primary) else { return };
    let pid = state.deployments[p].id.clone();
    let alone = pass.live.iter().all(|t| t.deployment == pid);
    let active = pass.live.iter().filter(|t| t.active()).count() as u32;
    let healthy = pass.live.iter().filter(|t| t.healthy(now)).count() as u32;
    let full = alone && active == desired && healthy == desired && !changed;

    if full && state.deployments[p].rollout == Rollout::InProgress {
        let d = &mut state.deployments[p];
        d.rollout = Rollout::Completed;
        d.rollout_reason = messages::completed(&d.id);
        d.updated_at = now;
        events.push(messages::deployment_completed(&spec.name, &pid));
    }
    if full && state.deployments.len() > 1 {
        let rolled_back = state.deployments[p].rollback_of.clone();
        let (keep, gone): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.deployments).into_iter().partition(|d| d.primary);
        state.deployments = keep;
        for mut d in gone {
            let outcome = match d.rollout {
                Rollout::Completed => Outcome::Successful,
                _ if rolled_back.as_deref() == Some(d.id.as_str()) => Outcome::RolledBack,
                _ => Outcome::Stopped,
            };
            d.finished = Some((now, outcome));
            state.history.insert(0, d);
        }
        state.history.truncate(HISTORY);
    }

    let steady = full && state.deployments[0].rollout == Rollout::Completed && !spec.deleting;
    if steady && !state.steady {
        events.push(messages::steady(&spec.name));
    }
    state.steady = steady;
}
