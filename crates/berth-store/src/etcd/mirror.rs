//! The etcd backend's local mirror: every key of Berth's namespace in memory at one etcd
//! revision, kept current by one etcd watch. Reads, read-only transactions and the watches
//! Berth opens are served from it; writes go to etcd and wait until the mirror has seen them,
//! so a server always reads its own writes.
//!
//! The mirror's revision only moves with what it has applied: the revision of the list it
//! started from, then the revision of each change it receives. A range read's revision is
//! therefore an honest "nothing under this range changed after it that the mirror lacks",
//! which callers use in compare-and-swap guards.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch as signal};

use super::convert::Probed;
use crate::history::{History, Limits};
use crate::watch::Published;
use crate::{Compare, Event, EventKind, KeyRange, KeyValue, Op, OpResponse, RangeResult, StoreError, TxnResponse};

struct State {
    kvs: BTreeMap<String, KeyValue>,
    /// The newest revision applied.
    revision: u64,
    /// The changes of the last revisions, for watches that start in the past.
    history: History,
}

pub(crate) struct Mirror {
    state: RwLock<State>,
    events: broadcast::Sender<Published>,
    applied: signal::Sender<u64>,
    /// The etcd revision through which the watch has delivered every change of the namespace
    /// (a progress notification's, a list's, or an applied change's revision). Unlike
    /// `revision`, it also moves past writes to keys outside the namespace.
    delivered: signal::Sender<u64>,
}

impl Mirror {
    /// A mirror of `kvs`, a consistent list at `revision`.
    pub fn new(kvs: Vec<KeyValue>, revision: u64, history: Limits) -> Self {
        let kvs = kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        let state = State { kvs, revision, history: History::new(revision, history) };
        Mirror {
            state: RwLock::new(state),
            events: broadcast::channel(4096).0,
            applied: signal::channel(revision).0,
            delivered: signal::channel(revision).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.read().kvs.get(key).cloned()
    }

    pub fn range(&self, range: &KeyRange) -> RangeResult {
        let state = self.read();
        let (kvs, more) = range_in(&state.kvs, range);
        RangeResult { kvs, more, revision: state.revision }
    }

    /// A transaction that writes nothing, evaluated on one consistent view.
    pub fn read_only_txn(&self, compares: &[Compare], success: &[Op], failure: &[Op]) -> TxnResponse {
        let state = self.read();
        let succeeded = compares.iter().all(|c| match c {
            Compare::PrefixModRevision(prefix, ..) => c.holds(None, &range_in(&state.kvs, &KeyRange::prefix(prefix)).0),
            _ => c.holds(state.kvs.get(c.key()), &[]),
        });
        let ops = if succeeded { success } else { failure };
        let responses = ops
            .iter()
            .filter_map(|op| match op {
                Op::Get { range } => Some(OpResponse::Get { kvs: range_in(&state.kvs, range).0 }),
                _ => None,
            })
            .collect();
        TxnResponse { succeeded, revision: state.revision, responses }
    }

    /// Applies the changes of one revision, in order, and publishes them to watchers.
    pub fn apply(&self, revision: u64, events: Vec<Event>) {
        let mut state = self.write();
        if revision <= state.revision {
            return;
        }
        for e in &events {
            match e.kind {
                EventKind::Put => state.kvs.insert(e.kv.key.clone(), e.kv.clone()),
                EventKind::Delete => state.kvs.remove(&e.kv.key),
            };
        }
        self.publish(&mut state, revision, events);
    }

    /// Replaces everything with a fresh list at `revision` (after the watch's start was
    /// compacted away): watchers receive the difference as the changes of that revision, and
    /// history before it is gone.
    pub fn relist(&self, kvs: Vec<KeyValue>, revision: u64) {
        let mut state = self.write();
        if revision <= state.revision {
            return;
        }
        let fresh: BTreeMap<String, KeyValue> = kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        let mut events = Vec::new();
        for key in state.kvs.keys().filter(|k| !fresh.contains_key(*k)) {
            let tomb = KeyValue {
                key: key.clone(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
            };
            events.push(Event { kind: EventKind::Delete, kv: tomb });
        }
        for (key, kv) in &fresh {
            if state.kvs.get(key).is_none_or(|old| old.mod_revision != kv.mod_revision) {
                events.push(Event { kind: EventKind::Put, kv: kv.clone() });
            }
        }
        state.kvs = fresh;
        state.history.reset(revision);
        self.publish(&mut state, revision, events);
    }

    fn publish(&self, state: &mut State, revision: u64, events: Vec<Event>) {
        state.revision = revision;
        let published = Published { revision, events: Arc::new(events) };
        state.history.push(published.clone());
        // Sent under the lock so watchers see revisions in order; no receivers is fine.
        let _ = self.events.send(published);
        self.applied.send_replace(revision);
        self.delivered_through(revision);
    }

    /// Records that etcd delivered every change up to `revision` (a progress notification,
    /// or a revision the mirror applied).
    pub fn delivered_through(&self, revision: u64) {
        self.delivered.send_if_modified(|d| {
            let newer = revision > *d;
            *d = (*d).max(revision);
            newer
        });
    }

    /// Waits until every change up to etcd revision `revision` was delivered (and so applied),
    /// at most `limit`; whether it was.
    pub async fn delivered(&self, revision: u64, limit: Duration) -> bool {
        let mut delivered = self.delivered.subscribe();
        tokio::time::timeout(limit, delivered.wait_for(|d| *d >= revision)).await.is_ok_and(|r| r.is_ok())
    }

    /// A receiver of every revision published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.events.subscribe()
    }

    /// The changes under `prefix` of revisions `from..`, with the newest revision applied.
    pub fn history(&self, from: u64, prefix: &str) -> Result<(Vec<Published>, u64), StoreError> {
        self.read().history.since(from, prefix)
    }

    /// Waits until the mirror has applied `revision`, at most `limit`; whether it has.
    pub async fn caught_up(&self, revision: u64, limit: Duration) -> bool {
        self.reflects(&Probed { newest: revision, ..Probed::default() }, limit).await
    }

    /// Waits until the mirror is at least as current as what a failed transaction's probes
    /// found, at most `limit`; whether it is.
    pub async fn reflects(&self, probed: &Probed, limit: Duration) -> bool {
        let current = |revision: u64| {
            revision >= probed.newest
                && probed.absent.iter().all(|k| self.get(k).is_none_or(|kv| kv.mod_revision > probed.at))
        };
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(limit, applied.wait_for(|r| current(*r))).await.is_ok_and(|r| r.is_ok())
    }
}

fn range_in(kvs: &BTreeMap<String, KeyValue>, range: &KeyRange) -> (Vec<KeyValue>, bool) {
    let Some(end) = &range.end else {
        return (kvs.get(&range.start).cloned().into_iter().collect(), false);
    };
    let rows: Box<dyn Iterator<Item = &KeyValue>> = if end.is_empty() {
        Box::new(kvs.range(range.start.clone()..).map(|(_, v)| v))
    } else if end.as_str() <= range.start.as_str() {
        Box::new(std::iter::empty())
    } else {
        Box::new(kvs.range(range.start.clone()..end.clone()).map(|(_, v)| v))
    };
    let mut out = Vec::new();
    for kv in rows {
        if range.limit > 0 && out.len() == range.limit {
            return (out, true);
        }
        out.push(kv.clone());
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: u64) -> KeyValue {
        KeyValue { key: key.into(), value: vec![rev as u8], create_revision: rev, mod_revision: rev, version: 1 }
    }

    #[tokio::test]
    async fn relist_publishes_the_difference_and_forgets_history() {
        let m = Mirror::new(vec![kv("a", 1), kv("b", 2)], 2, Limits { revisions: 100, bytes: 1 << 20 });
        m.apply(3, vec![Event { kind: EventKind::Put, kv: kv("c", 3) }]);
        let mut live = m.subscribe();
        // Since revision 3: b changed at 5, c was deleted, d appeared at 6; a is unchanged.
        m.relist(vec![kv("a", 1), kv("b", 5), kv("d", 6)], 7);
        let p = live.recv().await.unwrap();
        assert_eq!(p.revision, 7);
        let mut seen: Vec<(EventKind, String)> = p.events.iter().map(|e| (e.kind, e.kv.key.clone())).collect();
        seen.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(seen, [(EventKind::Put, "b".into()), (EventKind::Delete, "c".into()), (EventKind::Put, "d".into())]);
        assert!(matches!(m.history(4, ""), Err(StoreError::Compacted { oldest: 7, .. })));
        assert_eq!(m.history(7, "").unwrap().0.len(), 1);
        assert_eq!(m.range(&KeyRange::prefix("")).kvs.len(), 3);
    }

    #[tokio::test]
    async fn stale_revisions_are_ignored_and_history_is_bounded() {
        let m = Mirror::new(Vec::new(), 0, Limits { revisions: 2, bytes: 1 << 20 });
        for rev in 1..=4 {
            m.apply(rev, vec![Event { kind: EventKind::Put, kv: kv("k", rev) }]);
        }
        m.apply(2, vec![Event { kind: EventKind::Delete, kv: kv("k", 2) }]);
        assert_eq!(m.get("k").unwrap().mod_revision, 4, "a replayed older revision changes nothing");
        assert!(matches!(m.history(2, ""), Err(StoreError::Compacted { oldest: 3, .. })));
        assert_eq!(m.history(3, "").unwrap().0.len(), 2);
        assert!(m.caught_up(4, Duration::from_millis(1)).await);
        assert!(!m.caught_up(5, Duration::from_millis(1)).await);
    }
}
