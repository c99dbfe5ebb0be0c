//! The registry's background work, run by the leader: garbage collection and lifecycle
//! policies on their schedules, and the replication worker (a pass at start resumes copies a
//! restart interrupted; then pushes wake it, and copies still to retry bring it back after
//! [`REPLICATION_RETRY`]). A server that does not lead skips its turn.

use std::sync::Arc;
use std::time::Duration;

use berth_registry::Registry;

use crate::{Control, lease};

/// How often the replication worker looks for copies to retry when no push wakes it.
pub const REPLICATION_RETRY: Duration = Duration::from_secs(5);

/// When the periodic registry work runs; `None` turns a job off.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub gc_every: Option<Duration>,
    pub lifecycle_every: Option<Duration>,
}

/// Starts the registry's loops; they end with [`Control::close`].
pub fn spawn(control: Arc<Control>, registry: Arc<Registry>, schedule: Schedule) {
    if let Some(every) = schedule.gc_every {
        let (control, registry) = (control.clone(), registry.clone());
        tokio::spawn(periodic(control.clone(), every, move || {
            let (control, registry) = (control.clone(), registry.clone());
            async move {
                match registry.collect_garbage(control.clock.now()).await {
                    Ok(report) => tracing::info!(?report, "registry garbage collected"),
                    Err(e) => tracing::warn!(error = %e, "registry garbage collection failed"),
                }
            }
        }));
    }
    if let Some(every) = schedule.lifecycle_every {
        let (control, registry) = (control.clone(), registry.clone());
        tokio::spawn(periodic(control.clone(), every, move || {
            let (control, registry) = (control.clone(), registry.clone());
            async move {
                match registry.sweep_lifecycle(control.clock.now()).await {
                    Ok(n) => tracing::info!(expired = n, "lifecycle policies applied"),
                    Err(e) => tracing::warn!(error = %e, "applying lifecycle policies failed"),
                }
            }
        }));
    }
    tokio::spawn(replicate(control, registry));
}

/// Runs `job` every `every` while leading, until the server closes.
async fn periodic<F: Future<Output = ()>>(control: Arc<Control>, every: Duration, job: impl Fn() -> F) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = control.closed() => return,
        }
        if leading(&control).await {
            job().await;
        }
    }
}

async fn leading(control: &Control) -> bool {
    lease::lead(control).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "leader lease failed");
        false
    })
}

async fn replicate(control: Arc<Control>, registry: Arc<Registry>) {
    loop {
        let retry = if leading(&control).await {
            match registry.replicate_pending().await {
                Ok(pass) => pass.pending > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "replication pass failed");
                    true
                }
            }
        } else {
            true
        };
        let wake = registry.replication_wake.notified();
        tokio::select! {
            _ = control.closed() => return,
            _ = async { if retry { let _ = tokio::time::timeout(REPLICATION_RETRY, wake).await; } else { wake.await; } } => {}
        }
    }
}
