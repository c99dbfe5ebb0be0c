//! The retention sweep: removes the segments of events past their group's retention, and the
//! event directories no group names any more (a crash between a group's deletion and its
//! directory's removal).

use std::collections::HashSet;
use std::time::Duration;

use berth_control::logs::{LOG_GROUPS, LogGroup};
use berth_store::StoreExt;

use crate::App;
use crate::ecs::decode;
use crate::error::ApiResult;

/// How often the sweep runs.
pub const EVERY: Duration = Duration::from_secs(60);

/// One sweep over every region's log groups: how many segments were removed.
pub fn sweep(app: &App) -> ApiResult<usize> {
    let now = app.control.clock.now();
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Directories first: a group's record is written before its directory is made, so a
    // directory listed now that no record listed after names is an orphan, not a new group.
    let stored = app.logs.stored_groups()?;
    let mut known = HashSet::new();
    let mut removed = 0;
    for kv in app.store().list(LOG_GROUPS)? {
        let group: LogGroup = decode(&kv)?;
        known.insert(group.id.clone());
        if let Some(days) = group.retention_in_days {
            removed += app.logs.group(&group.id)?.expire_before(now_ms - i64::from(days) * 86_400_000)?;
        }
    }
    for id in stored {
        if !known.contains(&id) {
            app.logs.remove_group(&id)?;
        }
    }
    Ok(removed)
}

/// Sweeps every [`EVERY`] until the server stops.
pub async fn run(app: std::sync::Arc<App>) {
    loop {
        tokio::select! {
            _ = app.closed() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if let Err(e) = sweep(&app) {
            tracing::warn!(error = %e, "log retention sweep");
        }
    }
}
