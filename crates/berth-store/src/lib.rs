//! An etcd-shaped store: every key carries create/mod revisions and a version, range reads
//! go by key order, writes are transactions guarded by compare-and-swap, and a watch replays
//! changes from any retained revision. The rest of Berth talks only to [`Store`]; which backend
//! sits behind it (embedded redb, or an etcd cluster) is a start-up choice.

mod codec;
mod embedded;
mod etcd;
mod history;
mod retry;
mod types;
mod watch;

pub use embedded::{Embedded, EmbeddedOptions};
pub use etcd::{Etcd, EtcdOptions, EtcdTls};
pub use history::Limits as HistoryLimits;
pub use retry::{Contention, retry};
pub use types::*;
pub use watch::WatchStream;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that `dyn Store` can be shared across the program.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What every backend provides. Operations map one to one onto etcd's KV and Watch APIs.
pub trait Store: Send + Sync + 'static {
    /// The newest revision the store has committed.
    fn revision(&self) -> Result<u64, StoreError>;

    /// One key, or `None` if it does not exist.
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys in `[range.start, range.end)` in key order, at most `range.limit` of them.
    fn range(&self, range: &KeyRange) -> Result<RangeResult, StoreError>;

    /// Evaluates the compares atomically; applies `success` if all hold, else `failure`.
    /// Returns once the outcome is durable.
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>>;

    /// Every change to keys under `prefix` from `start_revision` on (0 = from now).
    fn watch(&self, prefix: &str, start_revision: u64) -> Result<WatchStream, StoreError>;

    /// Waits until reads here show every write committed before the call, by any server: a
    /// backend that reads from a local copy (etcd's mirror) brings it up to date. Reads may
    /// otherwise trail another server's writes; a caller about to report "not found" to a
    /// client that may have just written through another server syncs and reads again.
    fn sync(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether `candidate` leads the election `name` now (campaigning when nobody does),
    /// through the backend's own election: etcd's is a key tied to this server's lease, gone
    /// a lease TTL after the server stops renewing it. `None` when the backend has no election
    /// of its own (the embedded store serves one server): the caller decides some other way.
    fn elect<'a>(&'a self, name: &'a str, candidate: &'a str) -> BoxFuture<'a, Option<Result<bool, StoreError>>> {
        let _ = (name, candidate);
        Box::pin(async { None })
    }
}

/// Conveniences every caller wants, built from the trait's operations.
pub trait StoreExt: Store {
    /// All keys under `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.range(&KeyRange::prefix(prefix))?.kvs)
    }

    /// Unconditional put.
    fn put(&self, key: &str, value: Vec<u8>) -> BoxFuture<'_, Result<u64, StoreError>> {
        let txn = Txn::new().and_then(vec![Op::put(key, value)]);
        Box::pin(async move { Ok(self.txn(txn).await?.revision) })
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
