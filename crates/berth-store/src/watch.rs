//! Watch streams: a backlog from history, then live events, with a history reload when a
//! slow watcher falls behind the live broadcast.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::{Event, StoreError};

/// The events one committed revision produced, as the backend publishes them.
#[derive(Debug, Clone)]
pub struct Published {
    pub revision: u64,
    pub events: Arc<Vec<Event>>,
}

/// Reads history from a revision on: the published batches and the newest revision.
pub type Reload = Box<dyn Fn(u64) -> Result<(Vec<Published>, u64), StoreError> + Send + Sync>;

/// A stream of changes under one prefix, in revision order, each exactly once.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<Event, StoreError>>,
}

impl WatchStream {
    /// The next change; `None` once the store has shut down.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        self.rx.recv().await
    }
}

/// Opens a watch under `prefix` from `start_revision` (0: from `current`, the newest
/// revision). `live` must have subscribed before `current` was read, so nothing committed in
/// between is missed: the stream drops what the history already covered.
pub fn open(
    prefix: &str,
    start_revision: u64,
    live: broadcast::Receiver<Published>,
    current: impl FnOnce() -> Result<u64, StoreError>,
    reload: Reload,
) -> Result<WatchStream, StoreError> {
    let (backlog, seen) = if start_revision == 0 { (Vec::new(), current()?) } else { reload(start_revision)? };
    Ok(spawn(prefix.to_string(), backlog, seen, live, reload))
}

/// Starts the task that feeds a watch. Must be called inside a tokio runtime.
fn spawn(
    prefix: String,
    backlog: Vec<Published>,
    seen: u64,
    mut live: broadcast::Receiver<Published>,
    reload: Reload,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut pending: VecDeque<Event> = VecDeque::new();
        let mut last = seen;
        for p in backlog {
            pending.extend(p.events.iter().cloned());
        }
        loop {
            while let Some(e) = pending.pop_front() {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            match live.recv().await {
                Ok(p) if p.revision <= last => {}
                Ok(p) => {
                    last = p.revision;
                    pending.extend(p.events.iter().filter(|e| e.kv.key.starts_with(&prefix)).cloned());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => match reload(last + 1) {
                    Ok((batches, newest)) => {
                        for p in batches {
                            pending.extend(p.events.iter().cloned());
                        }
                        last = newest;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                },
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    WatchStream { rx }
}
