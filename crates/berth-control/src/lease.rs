//! The leader lease: servers sharing a store agree on one of them to run the background work
//! (scheduler passes, housekeeping, the registry's loops). A store with an election of its
//! own (etcd: a key tied to the server's etcd lease) decides, with no clock compared. Otherwise
//! (the embedded store, which serves one server) the lease is a record in the store taken and
//! renewed with compare-and-swap, expiring by the servers' clocks; a restarted server with
//! the same name takes its lease back at once.

use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use crate::Control;
use crate::clock::epoch_seconds;
use crate::error::ControlResult;
use crate::store::{decode, encode};

/// The lease's key.
const LEASE_KEY: &str = "lease/scheduler";
/// How long a lease lasts unless renewed; it is renewed when half of it is left.
pub const LEASE_SECS: f64 = 10.0;

#[derive(Serialize, Deserialize)]
struct Lease {
    holder: String,
    until: f64,
}

/// Whether this server leads now: it holds the lease (renewing it when half is gone) or
/// takes it, free or expired.
pub async fn lead(control: &Control) -> ControlResult<bool> {
    let node = &control.config.node;
    if let Some(elected) = control.store.elect("scheduler", node).await {
        return Ok(elected?);
    }
    let now = epoch_seconds(control.clock.now());
    let kv = control.store.get(LEASE_KEY)?;
    let current: Option<Lease> = kv.as_ref().map(decode).transpose()?;
    match &current {
        Some(l) if &l.holder != node && l.until > now => return Ok(false),
        Some(l) if &l.holder == node && l.until - now > LEASE_SECS / 2.0 => return Ok(true),
        _ => {}
    }
    let lease = Lease { holder: node.clone(), until: now + LEASE_SECS };
    let seen = kv.map(|k| k.mod_revision).unwrap_or(0);
    let txn =
        Txn::new().when(vec![Compare::unchanged(LEASE_KEY, seen)]).and_then(vec![Op::put(LEASE_KEY, encode(&lease))]);
    if control.store.txn(txn).await?.succeeded {
        return Ok(true);
    }
    // Another renewal won the race: it may have been this server's own (loops of one server
    // renew concurrently).
    let now_held: Option<Lease> = control.store.get(LEASE_KEY)?.as_ref().map(decode).transpose()?;
    Ok(now_held.is_some_and(|l| &l.holder == node && l.until > now))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use berth_store::{Embedded, EmbeddedOptions, Store};

    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::SequentialIds;

    fn server(store: &Arc<dyn Store>, clock: &Arc<ManualClock>, node: &str) -> Arc<Control> {
        let config = crate::Config::testing(node);
        Control::new(config, store.clone(), clock.clone(), Arc::new(SequentialIds::default()))
    }

    /// One leader at a time; it keeps the lease by renewing it (concurrent renewals of one
    /// server all lead); another server takes over only once the lease expired.
    #[tokio::test]
    async fn one_leader_until_its_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(Embedded::open(&dir.path().join("s.redb"), EmbeddedOptions::default()).unwrap());
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)));
        let (a, b) = (server(&store, &clock, "a"), server(&store, &clock, "b"));
        assert!(lead(&a).await.unwrap());
        assert!(!lead(&b).await.unwrap());
        for _ in 0..5 {
            clock.advance(Duration::from_secs(6));
            let (x, y) = tokio::join!(lead(&a), lead(&a));
            assert!(x.unwrap() && y.unwrap(), "renewals by the holder all lead");
            assert!(!lead(&b).await.unwrap());
        }
        clock.advance(Duration::from_secs(11));
        assert!(lead(&b).await.unwrap(), "an expired lease is taken");
        assert!(!lead(&a).await.unwrap());
    }
}
