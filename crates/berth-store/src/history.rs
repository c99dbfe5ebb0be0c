//! The recent changes a backend keeps in memory, per revision, for watches that start in the
//! past or fall behind the live broadcast: the last so many revisions, and no more than so
//! many bytes of keys and values. A watch from before what is kept is refused as compacted,
//! and its watcher lists again.
//!
//! Both backends serve their watches from the server's own memory: the embedded store's
//! watchers all live in its one process (after a restart every one starts from a fresh
//! list), and the etcd backend's are fed by its mirror. So the history is a cache for lagging
//! watchers, not state: nothing of it needs to be durable.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::watch::Published;
use crate::{Event, StoreError};

/// How much history to keep: a revision is dropped once either bound is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub revisions: usize,
    pub bytes: usize,
}

pub(crate) struct History {
    batches: VecDeque<Published>,
    /// The bytes of `batches` as [`size`] counts them.
    bytes: usize,
    /// Watches may start at this revision or later; earlier ones were dropped or never seen.
    oldest: u64,
    /// The newest revision pushed (or the revision the history started at).
    newest: u64,
    limits: Limits,
}

/// What one revision's changes hold in memory, near enough to bound the total.
fn size(events: &[Event]) -> usize {
    events.iter().map(|e| std::mem::size_of::<Event>() + e.kv.key.len() + e.kv.value.len()).sum()
}

impl History {
    /// An empty history of a store at `revision`: watches from the next revision on.
    pub fn new(revision: u64, limits: Limits) -> Self {
        let limits = Limits { revisions: limits.revisions.max(1), ..limits };
        History { batches: VecDeque::new(), bytes: 0, oldest: revision + 1, newest: revision, limits }
    }

    /// Keeps the changes of the next revision, dropping the oldest kept while a bound is
    /// passed (the newest revision is always kept, however big).
    pub fn push(&mut self, published: Published) {
        self.newest = published.revision;
        self.bytes += size(&published.events);
        self.batches.push_back(published);
        while self.batches.len() > 1
            && (self.batches.len() > self.limits.revisions || self.bytes > self.limits.bytes)
            && let Some(dropped) = self.batches.pop_front()
        {
            self.bytes -= size(&dropped.events);
            self.oldest = dropped.revision + 1;
        }
    }

    /// Forgets everything: watches may start at `revision` (whose changes come next) or later.
    pub fn reset(&mut self, revision: u64) {
        self.batches.clear();
        self.bytes = 0;
        self.oldest = revision;
        self.newest = revision.saturating_sub(1);
    }

    /// The changes under `prefix` of revisions `from..`, and the revision the watch has seen
    /// up to: the newest kept, or `from - 1` when that is later (a revision the store has
    /// committed but not yet handed to the history, or one not yet reached: the watch then
    /// drops it from the live broadcast, as it asked to start after it).
    pub fn since(&self, from: u64, prefix: &str) -> Result<(Vec<Published>, u64), StoreError> {
        if from < self.oldest && from <= self.newest {
            return Err(StoreError::Compacted { requested: from, oldest: self.oldest });
        }
        let batches = self
            .batches
            .iter()
            .filter(|p| p.revision >= from)
            .map(|p| Published {
                revision: p.revision,
                events: if prefix.is_empty() {
                    p.events.clone()
                } else {
                    Arc::new(p.events.iter().filter(|e| e.kv.key.starts_with(prefix)).cloned().collect())
                },
            })
            .collect();
        Ok((batches, self.newest.max(from.saturating_sub(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, KeyValue};

    fn published(revision: u64, key: &str, value_len: usize) -> Published {
        let kv = KeyValue {
            key: key.into(),
            value: vec![0; value_len],
            create_revision: 1,
            mod_revision: revision,
            version: 1,
        };
        Published { revision, events: Arc::new(vec![Event { kind: EventKind::Put, kv }]) }
    }

    fn revisions(h: &History, from: u64) -> Vec<u64> {
        h.since(from, "").unwrap().0.iter().map(|p| p.revision).collect()
    }

    #[test]
    fn keeps_the_last_revisions_it_is_told_to() {
        let mut h = History::new(0, Limits { revisions: 2, bytes: usize::MAX });
        for rev in 1..=4 {
            h.push(published(rev, "k", 1));
        }
        assert!(matches!(h.since(2, ""), Err(StoreError::Compacted { requested: 2, oldest: 3 })));
        assert_eq!(revisions(&h, 3), [3, 4]);
        assert_eq!(revisions(&h, 5), Vec::<u64>::new(), "the next revision is no compaction");
    }

    #[test]
    fn drops_the_oldest_while_over_its_bytes_but_keeps_the_newest() {
        let one = size(&published(1, "k", 1000).events);
        let mut h = History::new(0, Limits { revisions: 100, bytes: 2 * one });
        for rev in 1..=3 {
            h.push(published(rev, "k", 1000));
        }
        assert_eq!(revisions(&h, 2), [2, 3]);
        h.push(published(4, "k", 10_000));
        assert_eq!(revisions(&h, 4), [4], "a revision bigger than the bound alone is still kept");
        assert!(h.since(3, "").is_err());
    }

    #[test]
    fn a_fresh_or_reset_history_serves_watches_from_the_next_revision_only() {
        let mut h = History::new(7, Limits { revisions: 10, bytes: 1 << 20 });
        assert!(h.since(7, "").is_err());
        let (batches, newest) = h.since(8, "").unwrap();
        assert!(batches.is_empty());
        assert_eq!(newest, 7);
        let (batches, seen) = h.since(10, "").unwrap();
        assert!(batches.is_empty());
        assert_eq!(seen, 9, "a watch from 10 has nothing before it to see");
        h.push(published(8, "a/1", 1));
        h.reset(12);
        assert!(h.since(8, "").is_err());
        h.push(published(12, "b/1", 1));
        h.push(published(13, "a/2", 1));
        let (batches, newest) = h.since(12, "a/").unwrap();
        assert_eq!(newest, 13);
        assert_eq!(batches.iter().map(|p| (p.revision, p.events.len())).collect::<Vec<_>>(), [(12, 0), (13, 1)]);
    }
}
