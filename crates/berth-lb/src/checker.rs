//! The health checker: one task per target of every group in use, checking at the group's
//! interval (the first check at a random point of the first interval, so many targets do
//! not all check at once) and feeding the results to the target's state machine. Draining
//! targets are not checked. The task reads the group's current settings before each check,
//! so an apply that changes them needs no restart; it ends when its target is removed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::probe;
use crate::target::{Group, HealthUpdate, TargetState};

/// The shortest pause between two checks of one target, whatever the config says.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A running checker; dropping it stops the checks.
#[derive(Debug)]
pub struct Checker(JoinHandle<()>);

impl Drop for Checker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn spawn(group: &Arc<Group>, target: &Arc<TargetState>) -> Checker {
    Checker(tokio::spawn(run(Arc::downgrade(group), Arc::downgrade(target))))
}

async fn run(group: Weak<Group>, target: Weak<TargetState>) {
    let Some(first) = group.upgrade().map(|g| g.state.load().health_check.interval) else { return };
    tokio::time::sleep(probe::first_delay(first)).await;
    loop {
        let (Some(g), Some(t)) = (group.upgrade(), target.upgrade()) else { return };
        let state = g.state.load_full();
        let check = &state.health_check;
        t.record(HealthUpdate::Enabled(check.enabled), &state);
        if check.enabled && !t.is_draining() {
            let outcome = probe::probe(check, t.address).await;
            t.record(HealthUpdate::Result(outcome), &state);
        }
        let interval = check.interval.max(MIN_INTERVAL);
        drop((g, t, state));
        tokio::time::sleep(interval).await;
    }
}
