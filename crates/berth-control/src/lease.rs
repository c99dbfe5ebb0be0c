//! The leader lease: servers sharing a store agree on one of them to run the background work
//! (scheduler passes, housekeeping, the registry's loops). The lease is a record in the store
//! taken and renewed with compare-and-swap; a restarted server with the same name takes its
//! lease back at once. Servers compare their clocks here; the embedded store has one server
//! anyway (etcd elections replace this with issue 15).

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
    let now = epoch_seconds(control.clock.now());
    let node = &control.config.node;
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
    Ok(control.store.txn(txn).await?.succeeded)
}
