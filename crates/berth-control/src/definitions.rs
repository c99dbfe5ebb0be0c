//! Task definition revisions as the domain reads them: the stored record, resolving a
//! `family[:revision]` or ARN to a revision, and purging revisions in DELETE_IN_PROGRESS
//! once nothing uses them (run by housekeeping). Registering and the rest of the API are
//! `berth-api`'s.

use std::collections::HashSet;

use berth_model::arn::task_definition_ref;
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Region;
use crate::error::ControlResult;
use crate::store::{Obj, decode, encode};

/// A stored revision: the definition ECS returns and its tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DefinitionRecord {
    #[serde(rename = "taskDefinition")]
    pub definition: Obj,
    #[serde(default)]
    pub tags: Vec<Value>,
}

impl DefinitionRecord {
    pub fn status(&self) -> &str {
        self.definition.get("status").and_then(Value::as_str).unwrap_or("ACTIVE")
    }

    pub fn arn(&self) -> &str {
        self.definition.get("taskDefinitionArn").and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether a container of it has a health check, so UNKNOWN health is not good enough.
    pub fn health_checked(&self) -> bool {
        self.definition["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c.get("healthCheck").is_some_and(|h| !h.is_null()))
    }
}

/// The revision `given` names (`family:revision`, an ARN, or `family` for its newest ACTIVE
/// revision), if it exists.
pub fn resolve(region: &Region<'_>, given: &str) -> ControlResult<Option<(KeyValue, DefinitionRecord)>> {
    let Some((family, revision)) = task_definition_ref(given) else {
        return Ok(None);
    };
    if let Some(rev) = revision {
        return match region.store().get(&region.keys.task_definition(family, rev))? {
            Some(kv) => {
                let rec = decode(&kv)?;
                Ok(Some((kv, rec)))
            }
            None => Ok(None),
        };
    }
    for kv in region.store().list(&region.keys.family_revisions(family))?.into_iter().rev() {
        let rec: DefinitionRecord = decode(&kv)?;
        if rec.status() == "ACTIVE" {
            return Ok(Some((kv, rec)));
        }
    }
    Ok(None)
}

/// The writes that put a revision into the index of DELETE_IN_PROGRESS revisions (written
/// with its status change).
pub fn deleting_ops(region: &Region<'_>, definition: &Obj) -> Vec<Op> {
    let family = definition.get("family").and_then(Value::as_str).unwrap_or_default();
    let revision = definition.get("revision").and_then(Value::as_u64).unwrap_or(0) as u32;
    let arn = definition.get("taskDefinitionArn").cloned().unwrap_or_default();
    vec![
        Op::put(&region.keys.deleting_definition(family, revision), encode(&arn)),
        Op::put(&region.keys.region(), Vec::new()),
    ]
}

/// Indexes the region's DELETE_IN_PROGRESS revisions once (those deleted before the index
/// existed), so [`purge`] never has to read every revision.
async fn index_deleting(region: &Region<'_>) -> ControlResult<()> {
    let marker = region.keys.deleting_indexed();
    if region.store().get(&marker)?.is_some() {
        return Ok(());
    }
    let mut ops = vec![Op::put(&marker, Vec::new())];
    for kv in region.store().list(&region.keys.task_definitions())? {
        let rec: DefinitionRecord = decode(&kv)?;
        if rec.status() == "DELETE_IN_PROGRESS" {
            ops.extend(deleting_ops(region, &rec.definition));
        }
    }
    region.store().txn(Txn::new().when(vec![Compare::absent(&marker)]).and_then(ops)).await?;
    Ok(())
}

/// Forgets the revisions in DELETE_IN_PROGRESS whose ARN is not in `in_use` (what tasks not
/// yet STOPPED and services still named when the store was at revision `seen`);
/// DescribeTaskDefinition then answers as for any revision that does not exist. The family's
/// revision counter stays, so numbers are never reused. Returns how many were purged.
///
/// New users need an ACTIVE revision (a service keeps naming the revisions its deployments
/// run), so once a revision was DELETE_IN_PROGRESS at `seen`, `in_use` names all of its
/// users; one deleted since waits for the next round.
pub async fn purge(region: &Region<'_>, in_use: &HashSet<String>, seen: u64) -> ControlResult<usize> {
    index_deleting(region).await?;
    let mut purged = 0;
    for entry in region.store().list(&region.keys.deleting_definitions())? {
        let arn: String = decode(&entry)?;
        if in_use.contains(&arn) {
            continue;
        }
        let Some((family, Some(revision))) = task_definition_ref(&arn) else { continue };
        let key = region.keys.task_definition(family, revision);
        let mut compares = vec![Compare::unchanged(&entry.key, entry.mod_revision)];
        let mut ops = vec![Op::delete(&entry.key)];
        if let Some(kv) = region.store().get(&key)? {
            if kv.mod_revision > seen || decode::<DefinitionRecord>(&kv)?.status() != "DELETE_IN_PROGRESS" {
                continue;
            }
            compares.push(Compare::unchanged(&key, kv.mod_revision));
            ops.push(Op::delete(&key));
        }
        if region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            purged += 1;
        }
    }
    Ok(purged)
}
