//! Operations: the record of each change Cloud Map runs asynchronously (creating, updating and
//! deleting a namespace, updating a service, registering and deregistering an instance).
//!
//! Berth applies the change in the transaction of the request itself, so an operation goes
//! `SUBMITTED` → `PENDING` → `SUCCESS` before it is written and is `SUCCESS` as soon as anyone
//! can read it; its `UpdateDate` is its `CreateDate`. Operations are kept [`RETENTION`] after
//! they were made (with the request ids that produced them), then pruned by housekeeping
//! ([`prune_all`]).

use std::collections::BTreeMap;
use std::time::Duration;

use berth_store::{KeyRange, Op, Txn};

use super::records::{OperationRecord, OperationStatus, OperationType};
use super::{DiscoveryError, new_operation_id};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{decode, encode};
use crate::vpc::{Stored, read, read_all};

/// How long operations stay readable.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A finished operation of `kind` on `targets` (`NAMESPACE`, `SERVICE`, `INSTANCE` → id).
pub fn finished(
    region: &Region<'_>,
    kind: OperationType,
    targets: &[(&str, &str)],
    request_key: Option<String>,
) -> OperationRecord {
    let mut status = OperationStatus::Submitted;
    while let Some(next) = status.next(true) {
        status = next;
    }
    OperationRecord {
        id: new_operation_id(region),
        kind,
        status,
        targets: targets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        created: region.timestamp(),
        updated: region.timestamp(),
        error_code: None,
        error_message: None,
        request_key,
    }
}

/// The writes that record an operation: its record and its entry in the time index.
pub fn insert_ops(region: &Region<'_>, op: &OperationRecord) -> Vec<Op> {
    vec![
        Op::put(&region.keys.sd_operation(&op.id), encode(op)),
        Op::put(&region.keys.sd_operation_time(millis(op.created), &op.id), op.id.clone().into_bytes()),
    ]
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(0.0) as u64
}

/// GetOperation: `OperationNotFound` when there is none (or it was pruned).
pub fn get(region: &Region<'_>, id: &str) -> ControlResult<OperationRecord> {
    let found: Option<Stored<OperationRecord>> = read(region, &region.keys.sd_operation(id))?;
    Ok(found.ok_or_else(|| DiscoveryError::OperationNotFound(id.to_string()))?.record)
}

/// Every operation of the region, oldest first.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<OperationRecord>> {
    let mut ops: Vec<OperationRecord> =
        read_all(region, &region.keys.sd_operations())?.1.into_iter().map(|s| s.record).collect();
    ops.sort_by(|a, b| a.created.total_cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    Ok(ops)
}

/// [`prune`] in every region with namespaces (the leader's housekeeping).
pub async fn prune_all(control: &crate::Control) -> ControlResult<()> {
    let prefix = crate::keys::SD_REGIONS;
    for kv in control.store.range(&KeyRange::prefix(prefix))?.kvs {
        prune(&control.region(&kv.key[prefix.len()..])).await?;
    }
    Ok(())
}

/// Removes the operations made more than [`RETENTION`] ago, and the request ids that made
/// them. Returns how many went.
pub async fn prune(region: &Region<'_>) -> ControlResult<usize> {
    let cutoff = millis(region.timestamp()).saturating_sub(RETENTION.as_millis() as u64);
    let prefix = region.keys.sd_operation_times();
    let end = region.keys.sd_operation_time(cutoff, "");
    let old = region.store().range(&KeyRange { start: prefix, end: Some(end), limit: 500 })?.kvs;
    let mut ops = Vec::new();
    for index in &old {
        let id = String::from_utf8_lossy(&index.value).into_owned();
        let key = region.keys.sd_operation(&id);
        if let Some(kv) = region.store().get(&key)? {
            let op: OperationRecord = decode(&kv)?;
            ops.extend(op.request_key.map(|k| Op::delete(&k)));
            ops.push(Op::delete(&key));
        }
        ops.push(Op::delete(&index.key));
    }
    if !ops.is_empty() {
        // Blind deletes: nothing else writes an operation once it is made.
        region.store().txn(Txn::new().and_then(ops)).await?;
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::namespaces::tests::code;
    use crate::discovery::namespaces::{self, NewNamespace};
    use crate::discovery::records::NamespaceType;
    use crate::vpc::testing::TestRegion;

    #[tokio::test]
    async fn operations_are_pruned_after_their_retention_with_their_request_ids() {
        let t = TestRegion::new();
        let r = t.region();
        let new = NewNamespace {
            name: "shop".into(),
            kind: NamespaceType::Http,
            description: None,
            vpc: None,
            soa_ttl: None,
            tags: vec![],
            creator_request_id: Some("once".into()),
        };
        let op = namespaces::create(&r, &new).await.unwrap();
        assert_eq!(list(&r).unwrap().len(), 1);
        let soon = t.control.region_at("us-east-1", r.now + RETENTION / 2);
        assert_eq!(prune(&soon).await.unwrap(), 0);
        assert_eq!(get(&r, &op.id).unwrap().id, op.id);
        let later = t.control.region_at("us-east-1", r.now + RETENTION + Duration::from_secs(1));
        assert_eq!(prune(&later).await.unwrap(), 1);
        assert_eq!(code(get(&r, &op.id).unwrap_err()).0, "OperationNotFound");
        assert!(r.store().get(&r.keys.sd_request("CreateNamespace", "once")).unwrap().is_none());
        assert_eq!(namespaces::list(&r).unwrap().len(), 1, "the namespace stays");
    }
}
