//! The embedded backend: a redb file (or redb's in-memory backend for tests).
//!
//! Reads open a redb read transaction and run on the caller's thread. Writes go to one
//! writer thread that drains every transaction waiting in its queue into a single redb write
//! transaction: each store transaction still gets its own revision and its own
//! compare-and-swap outcome, but one fsync makes the whole group durable (group commit).
//! Nobody is answered before that fsync returns. After the commit the group's events are
//! published to watchers in revision order, and kept in memory for a while for watches that
//! start in the past or fall behind (`history`): every watcher of this store lives in the
//! server's process, so the change history is a cache, not state.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::codec::{decode_value, encode_value};
use crate::history::{History, Limits};
use crate::watch::{self, Published};
use crate::{
    BoxFuture, Compare, Event, EventKind, KeyRange, KeyValue, Op, OpResponse, RangeResult, Store, StoreError, Txn,
    TxnResponse, WatchStream,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Where files written before the history moved to memory kept it; dropped on open.
const OLD_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const REVISION: &str = "revision";
const OLD_OLDEST: &str = "oldest_log_revision";
/// Largest number of store transactions folded into one redb commit.
const MAX_GROUP: usize = 512;

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How much change history is kept for watches that resume from the past.
    pub history: Limits,
    /// Bytes of the file redb keeps in its own page cache (the rest is read through the
    /// kernel's, which a server's resident memory does not count). redb's default is 1 GiB.
    pub cache_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions { history: Limits { revisions: 100_000, bytes: 128 << 20 }, cache_bytes: 256 << 20 }
    }
}

struct Request {
    txn: Txn,
    reply: oneshot::Sender<Result<TxnResponse, StoreError>>,
}

/// The embedded store. Cheap to share behind an `Arc`.
pub struct Embedded {
    db: Arc<Database>,
    writer: std_mpsc::Sender<Request>,
    events: broadcast::Sender<Published>,
    history: Arc<Mutex<History>>,
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl Embedded {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let db = Database::builder().set_cache_size(options.cache_bytes).create(path).map_err(engine)?;
        Self::start(db, options)
    }

    /// A store that lives in memory only: for unit tests, never a default.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::in_memory_with(EmbeddedOptions::default())
    }

    /// [`Embedded::in_memory`] keeping the history `options` says.
    pub fn in_memory_with(options: EmbeddedOptions) -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(engine)?;
        Self::start(db, options)
    }

    fn start(db: Database, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let wtx = db.begin_write().map_err(engine)?;
        let revision = {
            wtx.open_table(KV).map_err(engine)?;
            wtx.delete_table(OLD_LOG).map_err(engine)?;
            let mut meta = wtx.open_table(META).map_err(engine)?;
            meta.remove(OLD_OLDEST).map_err(engine)?;
            read_meta(&meta, REVISION)?
        };
        wtx.commit().map_err(engine)?;
        let db = Arc::new(db);
        let (events, _) = broadcast::channel(4096);
        let history = Arc::new(Mutex::new(History::new(revision, options.history)));
        let (writer, queue) = std_mpsc::channel();
        let (wdb, wevents, whistory) = (db.clone(), events.clone(), history.clone());
        std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer_loop(&wdb, &queue, &wevents, &whistory))
            .map_err(engine)?;
        Ok(Embedded { db, writer, events, history })
    }

    fn read_range(&self, range: &KeyRange) -> Result<RangeResult, StoreError> {
        let rtx = self.db.begin_read().map_err(engine)?;
        let revision = read_meta(&rtx.open_table(META).map_err(engine)?, REVISION)?;
        let kv = rtx.open_table(KV).map_err(engine)?;
        let (kvs, more) = range_in(&kv, range)?;
        Ok(RangeResult { kvs, more, revision })
    }
}

impl Store for Embedded {
    fn revision(&self) -> Result<u64, StoreError> {
        let rtx = self.db.begin_read().map_err(engine)?;
        read_meta(&rtx.open_table(META).map_err(engine)?, REVISION)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let rtx = self.db.begin_read().map_err(engine)?;
        let kv = rtx.open_table(KV).map_err(engine)?;
        let found = kv.get(key).map_err(engine)?;
        found.map(|raw| decode_value(key, raw.value())).transpose()
    }

    fn range(&self, range: &KeyRange) -> Result<RangeResult, StoreError> {
        self.read_range(range)
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>> {
        Box::pin(async move {
            if txn.is_read_only() {
                return read_only_txn(&self.db, &txn);
            }
            let (reply, answer) = oneshot::channel();
            self.writer.send(Request { txn, reply }).map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn watch(&self, prefix: &str, start_revision: u64) -> Result<WatchStream, StoreError> {
        let live = self.events.subscribe();
        let history = self.history.clone();
        let prefix_owned = prefix.to_string();
        let reload = move |from: u64| lock(&history).since(from, &prefix_owned);
        watch::open(prefix, start_revision, live, || self.revision(), Box::new(reload))
    }
}

fn lock(history: &Mutex<History>) -> std::sync::MutexGuard<'_, History> {
    history.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_meta(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(meta.get(key).map_err(engine)?.map(|v| v.value()).unwrap_or(0))
}

fn range_in(
    kv: &impl ReadableTable<&'static str, &'static [u8]>,
    range: &KeyRange,
) -> Result<(Vec<KeyValue>, bool), StoreError> {
    let mut kvs = Vec::new();
    match &range.end {
        None => {
            if let Some(raw) = kv.get(range.start.as_str()).map_err(engine)? {
                kvs.push(decode_value(&range.start, raw.value())?);
            }
            Ok((kvs, false))
        }
        Some(end) => {
            let rows = if end.is_empty() {
                kv.range(range.start.as_str()..).map_err(engine)?
            } else {
                kv.range(range.start.as_str()..end.as_str()).map_err(engine)?
            };
            for row in rows {
                let (k, v) = row.map_err(engine)?;
                if range.limit > 0 && kvs.len() == range.limit {
                    return Ok((kvs, true));
                }
                kvs.push(decode_value(k.value(), v.value())?);
            }
            Ok((kvs, false))
        }
    }
}

fn compares_hold(
    kv: &impl ReadableTable<&'static str, &'static [u8]>,
    compares: &[Compare],
) -> Result<bool, StoreError> {
    for c in compares {
        let holds = if let Compare::PrefixModRevision(prefix, ..) = c {
            c.holds(None, &range_in(kv, &KeyRange::prefix(prefix))?.0)
        } else {
            let current = match kv.get(c.key()).map_err(engine)? {
                Some(raw) => Some(decode_value(c.key(), raw.value())?),
                None => None,
            };
            c.holds(current.as_ref(), &[])
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_only_txn(db: &Database, txn: &Txn) -> Result<TxnResponse, StoreError> {
    let rtx = db.begin_read().map_err(engine)?;
    let revision = read_meta(&rtx.open_table(META).map_err(engine)?, REVISION)?;
    let kv = rtx.open_table(KV).map_err(engine)?;
    let succeeded = compares_hold(&kv, &txn.compares)?;
    let ops = if succeeded { &txn.success } else { &txn.failure };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        if let Op::Get { range } = op {
            responses.push(OpResponse::Get { kvs: range_in(&kv, range)?.0 });
        }
    }
    Ok(TxnResponse { succeeded, revision, responses })
}

/// Applies one store transaction inside the group's redb transaction at revision `next`.
fn apply(wtx: &redb::WriteTransaction, next: u64, txn: &Txn) -> Result<(TxnResponse, Vec<Event>), StoreError> {
    let mut kv = wtx.open_table(KV).map_err(engine)?;
    let succeeded = compares_hold(&kv, &txn.compares)?;
    let ops = if succeeded { &txn.success } else { &txn.failure };
    let mut responses = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    for op in ops {
        match op {
            Op::Put { key, value } => {
                let prev = match kv.get(key.as_str()).map_err(engine)? {
                    Some(raw) => Some(decode_value(key, raw.value())?),
                    None => None,
                };
                let (create, version) = match &prev {
                    Some(p) => (p.create_revision, p.version + 1),
                    None => (next, 1),
                };
                kv.insert(key.as_str(), encode_value(create, next, version, value).as_slice()).map_err(engine)?;
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: create,
                    mod_revision: next,
                    version,
                };
                events.push(Event { kind: EventKind::Put, kv });
                responses.push(OpResponse::Put { prev });
            }
            Op::Delete { range } => {
                let (deleted, _) = range_in(&kv, &KeyRange { limit: 0, ..range.clone() })?;
                for d in &deleted {
                    kv.remove(d.key.as_str()).map_err(engine)?;
                    let tomb = KeyValue {
                        key: d.key.clone(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: next,
                        version: 0,
                    };
                    events.push(Event { kind: EventKind::Delete, kv: tomb });
                }
                responses.push(OpResponse::Delete { deleted });
            }
            Op::Get { range } => responses.push(OpResponse::Get { kvs: range_in(&kv, range)?.0 }),
        }
    }
    let revision = if events.is_empty() { next - 1 } else { next };
    Ok((TxnResponse { succeeded, revision, responses }, events))
}

fn writer_loop(
    db: &Database,
    queue: &std_mpsc::Receiver<Request>,
    events: &broadcast::Sender<Published>,
    history: &Mutex<History>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        match commit_group(db, &group) {
            Ok((outcomes, published)) => {
                // Into the history before the broadcast: a watch opening meanwhile finds each
                // revision in one or the other (see `watch::open`).
                let mut kept = lock(history);
                for p in &published {
                    kept.push(p.clone());
                }
                drop(kept);
                for p in published {
                    // No receivers is fine: nobody is watching.
                    let _ = events.send(p);
                }
                for (req, outcome) in group.into_iter().zip(outcomes) {
                    let _ = req.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; {} transactions refused", group.len());
                for req in group {
                    let _ = req.reply.send(Err(StoreError::Engine(e.to_string())));
                }
            }
        }
    }
}

fn commit_group(db: &Database, group: &[Request]) -> Result<(Vec<TxnResponse>, Vec<Published>), StoreError> {
    let mut wtx = db.begin_write().map_err(engine)?;
    wtx.set_durability(redb::Durability::Immediate).map_err(engine)?;
    let mut revision = read_meta(&wtx.open_table(META).map_err(engine)?, REVISION)?;
    let mut outcomes = Vec::with_capacity(group.len());
    let mut published = Vec::new();
    for req in group {
        let (response, events) = apply(&wtx, revision + 1, &req.txn)?;
        if !events.is_empty() {
            revision += 1;
            published.push(Published { revision, events: Arc::new(events) });
        }
        outcomes.push(response);
    }
    wtx.open_table(META).map_err(engine)?.insert(REVISION, revision).map_err(engine)?;
    wtx.commit().map_err(engine)?;
    Ok((outcomes, published))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CmpOp, StoreExt};

    fn store() -> Embedded {
        Embedded::in_memory().unwrap()
    }

    #[tokio::test]
    async fn put_tracks_revisions_and_versions() {
        let s = store();
        assert_eq!(s.revision().unwrap(), 0);
        assert_eq!(s.put("a", b"1".to_vec()).await.unwrap(), 1);
        assert_eq!(s.put("b", b"2".to_vec()).await.unwrap(), 2);
        assert_eq!(s.put("a", b"3".to_vec()).await.unwrap(), 3);
        let a = s.get("a").unwrap().unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version, a.value), (1, 3, 2, b"3".to_vec()));
        assert!(s.get("zz").unwrap().is_none());
    }

    #[tokio::test]
    async fn compare_and_swap_guards_writes() {
        let s = store();
        let create = |v: &[u8]| Txn::new().when(vec![Compare::absent("k")]).and_then(vec![Op::put("k", v.to_vec())]);
        assert!(s.txn(create(b"first")).await.unwrap().succeeded);
        let lost = s.txn(create(b"second")).await.unwrap();
        assert!(!lost.succeeded);
        assert_eq!(lost.revision, 1, "a failed compare writes nothing and takes no revision");
        assert_eq!(s.get("k").unwrap().unwrap().value, b"first");
        let swap = Txn::new()
            .when(vec![Compare::unchanged("k", 1), Compare::Value("k".into(), CmpOp::Equal, b"first".to_vec())])
            .and_then(vec![Op::put("k", b"third".to_vec())])
            .or_else(vec![Op::get("k")]);
        assert!(s.txn(swap.clone()).await.unwrap().succeeded);
        let stale = s.txn(swap).await.unwrap();
        assert!(!stale.succeeded);
        match &stale.responses[0] {
            OpResponse::Get { kvs } => assert_eq!(kvs[0].value, b"third"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn prefix_compare_sees_any_newer_write_under_the_prefix() {
        let s = store();
        s.put("t/a", vec![]).await.unwrap();
        let seen = s.revision().unwrap();
        let guarded = || {
            Txn::new().when(vec![Compare::prefix_unchanged_since("t/", seen)]).and_then(vec![Op::put("done", vec![])])
        };
        assert!(s.txn(guarded()).await.unwrap().succeeded);
        s.put("t/b", vec![]).await.unwrap();
        assert!(!s.txn(guarded()).await.unwrap().succeeded);
        assert!(s.txn(Txn::new().when(vec![Compare::prefix_unchanged_since("empty/", 0)])).await.unwrap().succeeded);
    }

    #[tokio::test]
    async fn one_transaction_is_one_revision() {
        let s = store();
        let r = s
            .txn(Txn::new().and_then(vec![Op::put("x/1", b"a".to_vec()), Op::put("x/2", b"b".to_vec())]))
            .await
            .unwrap();
        assert_eq!(r.revision, 1);
        let all = s.list("x/").unwrap();
        assert!(all.iter().all(|kv| kv.mod_revision == 1));
        let del = s.txn(Txn::new().and_then(vec![Op::delete_prefix("x/")])).await.unwrap();
        assert_eq!(del.revision, 2);
        assert!(s.list("x/").unwrap().is_empty());
    }

    #[tokio::test]
    async fn ranges_are_ordered_limited_and_pageable() {
        let s = store();
        for k in ["p/c", "p/a", "p/b", "q/a", "p"] {
            s.put(k, k.as_bytes().to_vec()).await.unwrap();
        }
        let keys = |r: RangeResult| r.kvs.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
        assert_eq!(keys(s.range(&KeyRange::prefix("p/")).unwrap()), ["p/a", "p/b", "p/c"]);
        let page = s.range(&KeyRange::prefix("p/").with_limit(2)).unwrap();
        assert!(page.more);
        assert_eq!(keys(page), ["p/a", "p/b"]);
        assert_eq!(keys(s.range(&KeyRange::prefix_after("p/", "p/b", 10)).unwrap()), ["p/c"]);
    }

    #[tokio::test]
    async fn concurrent_writers_each_get_a_distinct_revision() {
        let s = Arc::new(store());
        let mut handles = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            handles.push(tokio::spawn(async move { s.put(&format!("k{i}"), vec![]).await.unwrap() }));
        }
        let mut revs = Vec::new();
        for h in handles {
            revs.push(h.await.unwrap());
        }
        revs.sort();
        assert_eq!(revs, (1..=64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn watch_replays_history_then_follows_live() {
        let s = store();
        s.put("w/a", b"1".to_vec()).await.unwrap();
        s.put("other", b"x".to_vec()).await.unwrap();
        s.put("w/b", b"2".to_vec()).await.unwrap();
        let mut w = s.watch("w/", 1).unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kv.key.as_str(), e.kv.mod_revision), ("w/a", 1));
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kv.key.as_str(), e.kv.mod_revision), ("w/b", 3));
        s.txn(Txn::new().and_then(vec![Op::delete("w/a")])).await.unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kind, e.kv.key.as_str(), e.kv.mod_revision), (EventKind::Delete, "w/a", 4));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watch_from_the_next_revision_never_hands_out_an_earlier_one() {
        // Revisions committed while the watch opens may not be in the history yet: the watch
        // must still skip them, not take them from the live broadcast.
        let s = Arc::new(store());
        let writer = s.clone();
        let writes = tokio::spawn(async move {
            for i in 0..3000u32 {
                writer.put("k", i.to_le_bytes().to_vec()).await.unwrap();
            }
        });
        let mut watched = 0;
        while !writes.is_finished() {
            let start = s.revision().unwrap() + 1;
            let mut w = s.watch("", start).unwrap();
            let Ok(Some(first)) = tokio::time::timeout(std::time::Duration::from_secs(1), w.next()).await else {
                break;
            };
            assert!(first.unwrap().kv.mod_revision >= start, "a watch from {start} saw an earlier revision");
            watched += 1;
        }
        assert!(watched > 10, "only {watched} watches opened during the writes");
    }

    #[tokio::test]
    async fn watch_from_a_compacted_revision_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(
            &dir.path().join("db"),
            EmbeddedOptions { history: Limits { revisions: 3, bytes: 1 << 20 }, ..Default::default() },
        )
        .unwrap();
        for i in 0..10 {
            s.put("k", vec![i]).await.unwrap();
        }
        assert!(matches!(s.watch("", 2), Err(StoreError::Compacted { .. })));
        assert!(s.watch("", 8).is_ok());
    }

    #[tokio::test]
    async fn reopening_keeps_everything_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let s = Embedded::open(&path, EmbeddedOptions::default()).unwrap();
            s.put("a", b"1".to_vec()).await.unwrap();
            s.put("a", b"2".to_vec()).await.unwrap();
        }
        // The writer thread holds the database until its queue closes; wait for the file lock.
        let s = loop {
            match Embedded::open(&path, EmbeddedOptions::default()) {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        assert_eq!(s.revision().unwrap(), 2);
        let a = s.get("a").unwrap().unwrap();
        assert_eq!((a.version, a.value.as_slice()), (2, b"2".as_slice()));
        assert_eq!(s.put("b", vec![]).await.unwrap(), 3);
    }
}
