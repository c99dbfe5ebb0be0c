//! The background work of the server holding the leader lease: a scheduler pass every
//! second (or when woken by a changed service or task, after a pause as long as the last pass),
//! Application Auto Scaling's scheduled actions that are due, and housekeeping every few
//! seconds.

use std::sync::Arc;
use std::time::Duration;

use crate::{Control, autoscaling, housekeeping, lease, scheduler};

/// The longest the scheduler waits between passes when nothing wakes it.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the leader runs cluster housekeeping (see `housekeeping`).
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs until [`Control::close`].
pub async fn run(control: Arc<Control>) {
    let mut tick = tokio::time::interval(PASS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = control.scheduler_wake.notified() => {}
            _ = control.closed() => return,
        }
        match lease::lead(&control).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "leader lease failed");
                continue;
            }
        }
        let started = tokio::time::Instant::now();
        if let Err(e) = scheduler::pass(&control).await {
            tracing::warn!(error = %e, "service scheduler pass failed");
        }
        let took = started.elapsed();
        if let Err(e) = autoscaling::scheduled::pass(&control).await {
            tracing::warn!(error = %e, "scheduled scaling actions failed");
        }
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            last_sweep = tokio::time::Instant::now();
            if let Err(e) = housekeeping::sweep(&control).await {
                tracing::warn!(error = %e, "housekeeping failed");
            }
        }
        // Wake-ups that came during the pass wait as long as it took: while reports stream in,
        // passes over a big cluster take at most about half of a core, and the API the rest.
        tokio::select! {
            _ = tokio::time::sleep(took.min(PASS_INTERVAL)) => {}
            _ = control.closed() => return,
        }
    }
}
