//! The Elastic Load Balancing (v2) model of a region: load balancers, target groups,
//! listeners, rules and registered targets, each a typed record under its own store key
//! (`keys.rs`, `elb/{region}/...`), with ELB's defaults, limits and error codes
//! ([`ElbError`]).
//!
//! The ELBv2 handlers (`berth-api/src/elbv2/`) read and change them through the functions
//! here. Two other parts of Berth call in:
//! - the data plane glue builds the load balancer's whole configuration with
//!   [`dataplane_config`] and hands back what it observes with [`record_statuses`];
//! - the ECS service integration reads a group with [`get_target_group`], registers and
//!   deregisters tasks inside its own transactions with [`register_target_ops`] and
//!   [`deregister_target_ops`], and follows them with [`target_health`].
//!
//! Housekeeping finishes deregistrations whose delay has passed ([`finish_draining`]).

pub mod actions;
pub mod arns;
pub mod attributes;
pub mod conditions;
pub mod dataplane;
pub mod error;
pub mod limits;
pub mod listeners;
pub mod load_balancers;
pub mod metrics;
pub mod refs;
pub mod rules;
pub mod tags;
pub mod target_groups;
pub mod targets;

pub use dataplane::{SOURCE_IP_STICKINESS, dataplane_config};
pub use error::{ElbError, Limit};
pub use target_groups::{TargetGroupInfo, TargetGroupRecord, get_target_group};
pub use targets::{
    HealthReader, HealthState, Reason, TargetHealth, deregister_target_ops, finish_draining, record_statuses,
    register_target_ops, target_health,
};

use berth_store::{CmpOp, Compare, KeyValue, Op, Txn};
use serde::Serialize;

use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};
use crate::vpc::Stored;

/// The write marking a region as having ELB resources (see `Keys::elb_region`).
fn mark_region(region: &Region<'_>) -> Op {
    Op::put(&region.keys.elb_region(), Vec::new())
}

/// Commits `ops` under `compares`: `Some(())` when done (or there is nothing to do), `None`
/// when a compare failed (the caller's `retry` tries again).
pub(crate) async fn commit(region: &Region<'_>, compares: Vec<Compare>, ops: Vec<Op>) -> ControlResult<Option<()>> {
    if ops.is_empty() {
        return Ok(Some(()));
    }
    Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(()))
}

/// A new named record: its key, the key of its name (holding its id), the prefix of its
/// kind and the revision that prefix was read at (for a quota counted from it).
pub(crate) struct Named<'a> {
    pub key: String,
    pub name_key: String,
    pub id: &'a str,
    pub prefix: String,
    pub at: u64,
}

/// Creates a named record in a VPC: the record and its name absent, no other of its kind
/// created since `named.at`, the VPC still the one read. Whether it was written.
pub(crate) async fn insert_named<T: Serialize>(
    region: &Region<'_>,
    named: Named<'_>,
    vpc: &KeyValue,
    record: &T,
) -> ControlResult<bool> {
    let compares = vec![
        Compare::absent(&named.key),
        Compare::absent(&named.name_key),
        Compare::prefix_unchanged_since(&named.prefix, named.at),
        Compare::CreateRevision(vpc.key.clone(), CmpOp::Equal, vpc.create_revision),
    ];
    let ops = vec![
        Op::put(&named.key, encode(record)),
        Op::put(&named.name_key, named.id.as_bytes().to_vec()),
        mark_region(region),
    ];
    Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded)
}

/// Reads a record with `get`, changes it with `change` and writes it back, guarded by its
/// revision and retried on a lost race. Returns the record written.
pub(crate) async fn update<T: Serialize>(
    region: &Region<'_>,
    get: impl Fn() -> ControlResult<Stored<T>>,
    mut change: impl FnMut(&mut T) -> ControlResult<()>,
) -> ControlResult<T> {
    retry(|| {
        let attempt = get().and_then(|mut stored| change(&mut stored.record).map(|()| stored));
        async move {
            let stored = attempt?;
            let txn = Txn::new()
                .when(vec![Compare::unchanged(&stored.kv.key, stored.kv.mod_revision)])
                .and_then(vec![Op::put(&stored.kv.key, encode(&stored.record))]);
            Ok(region.store().txn(txn).await?.succeeded.then_some(stored.record))
        }
    })
    .await
}

#[cfg(test)]
mod tests;
