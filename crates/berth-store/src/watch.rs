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
    rx: mpsc::Receiver<Result<(u64, Vec<Event>), StoreError>>,
    /// What is left of the revision [`WatchStream::next`] is handing out, and that revision.
    current: VecDeque<Event>,
    current_revision: u64,
}

impl WatchStream {
    /// The next change; `None` once the store has shut down.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(e) = self.current.pop_front() {
                return Some(Ok(e));
            }
            match self.rx.recv().await? {
                Ok((revision, batch)) => {
                    self.current = batch.into();
                    self.current_revision = revision;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next revision and every remaining change of it together (the rest of the
    /// revision [`Self::next`] was handing out, if it stopped midway): the watcher then knows
    /// its view is whole up to and including that revision. A watch of the whole store (the
    /// empty prefix) also gets revisions without changes (an etcd relist that found none), so
    /// it learns every revision the store reaches.
    pub async fn next_revision(&mut self) -> Option<Result<(u64, Vec<Event>), StoreError>> {
        if !self.current.is_empty() {
            return Some(Ok((self.current_revision, std::mem::take(&mut self.current).into())));
        }
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
    // One message per revision, so a watcher can take a revision whole.
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut pending: VecDeque<(u64, Vec<Event>)> = VecDeque::new();
        let mut last = seen;
        let whole = |p: &Published| (p.revision, p.events.iter().cloned().collect::<Vec<_>>());
        pending.extend(backlog.iter().map(whole));
        let everything = prefix.is_empty();
        loop {
            while let Some(batch) = pending.pop_front() {
                if (everything || !batch.1.is_empty()) && tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
            match live.recv().await {
                Ok(p) if p.revision <= last => {}
                Ok(p) => {
                    last = p.revision;
                    let mine = p.events.iter().filter(|e| e.kv.key.starts_with(&prefix)).cloned().collect();
                    pending.push_back((p.revision, mine));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => match reload(last + 1) {
                    Ok((batches, newest)) => {
                        pending.extend(batches.iter().map(whole));
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
    WatchStream { rx, current: VecDeque::new(), current_revision: 0 }
}
