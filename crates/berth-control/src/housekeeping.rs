//! Cluster housekeeping, run by the scheduler's leader every few seconds: tasks of agents lost
//! past `--lost-agent-timeout` that no service owns are written off (service tasks are the
//! service scheduler's, which replaces them), STOPPED tasks older than
//! `--stopped-task-retention` are forgotten, as ECS forgets them, and task definition
//! revisions in DELETE_IN_PROGRESS are purged once no task or service uses them; load
//! balancer targets whose deregistration delay has passed finish deregistering; Cloud Map
//! operations past their retention are pruned.

use std::collections::HashSet;

use berth_model::task::TaskStatus;
use berth_store::{Compare, KeyRange, Op, StoreExt, Txn};
use serde_json::Value;

use crate::error::ControlResult;
use crate::keys::REGIONS;
use crate::records::{InstanceRecord, InstanceStatus};
use crate::services::{ServiceRecord, ServiceStatus};
use crate::store::decode;
use crate::tasks::write_off;
use crate::{Control, Region, definitions};

/// The reason a task of a lost agent is stopped with (service tasks get the same).
pub const LOST: &str = "Task stopped: the agent of its container instance was lost.";

/// One round over every cluster of every region.
pub async fn sweep(control: &Control) -> ControlResult<()> {
    let mut regions = vec![control.config.region.clone()];
    for kv in control.store.range(&KeyRange::prefix(REGIONS))?.kvs {
        let region = kv.key[REGIONS.len()..].to_string();
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    for region in regions {
        region_sweep(&control.region(&region)).await?;
    }
    crate::elb::finish_draining(control).await?;
    crate::discovery::operations::prune_all(control).await
}

/// Every cluster of the caller's region, then the task definitions no cluster uses.
async fn region_sweep(region: &Region<'_>) -> ControlResult<()> {
    let seen = region.store().revision()?;
    let mut in_use = HashSet::new();
    let mut complete = true;
    for kv in region.store().list(&region.keys.clusters())? {
        let name = kv.key.rsplit('/').next().unwrap_or_default().to_string();
        if let Err(e) = cluster(region, &name, &mut in_use).await {
            complete = false;
            tracing::warn!(cluster = name, error = %e, "housekeeping failed");
        }
    }
    // A cluster that could not be read may hold users of a revision: purge nothing then.
    if complete {
        definitions::purge(region, &in_use, seen).await?;
    }
    Ok(())
}

/// One cluster's tasks and services; adds the task definitions they use to `in_use`.
async fn cluster(region: &Region<'_>, cluster: &str, in_use: &mut HashSet<String>) -> ControlResult<()> {
    let now = region.timestamp();
    let lost_after = region.config().lost_agent_timeout.as_secs_f64();
    let retention = region.config().stopped_task_retention.as_secs_f64();
    // The cluster's instances and the Fargate hosts (where its FARGATE tasks run) whose
    // agents are lost.
    let mut lost = Vec::new();
    let own = region.store().list(&region.keys.instances(cluster))?;
    for kv in &own {
        let rec: InstanceRecord = decode(kv)?;
        if rec.status != InstanceStatus::Inactive && rec.lost(now, lost_after) {
            lost.push(crate::fargate::host_of(&kv.key));
        }
    }
    for (host, _, rec) in crate::fargate::hosts(region)? {
        if rec.lost(now, lost_after) {
            lost.push(host);
        }
    }
    // The task index's summaries, not the records: 100,000 tasks decoded every few seconds
    // were most of an idle leader's work.
    let index = region.control.task_index().await?;
    for task in index.cluster(&region.name, cluster) {
        let on_lost = task.host.as_ref().is_some_and(|h| lost.contains(h));
        let of_service = task.group.starts_with("service:");
        if task.live() {
            in_use.insert(task.definition.clone());
        }
        match task.last_status {
            TaskStatus::Stopped => {
                let stopped = task.stopped_at.unwrap_or(now);
                if now - stopped > retention {
                    let txn = Txn::new()
                        .when(vec![Compare::unchanged(&task.key, task.revision)])
                        .and_then(vec![Op::delete(&task.key)]);
                    region.store().txn(txn).await?;
                }
            }
            _ if on_lost && !of_service => write_off(region, cluster, &task.id, LOST).await?,
            _ => {}
        }
    }
    for kv in region.store().list(&region.keys.services(cluster))? {
        let service: ServiceRecord = decode(&kv)?;
        if service.status != ServiceStatus::Inactive {
            definitions_named(&serde_json::to_value(&service).unwrap_or_default(), in_use);
        }
    }
    Ok(())
}

/// Every task definition ARN anywhere in `value`: a service names the revisions of its
/// deployments, current and past (a rollback goes back to one), wherever it keeps them.
fn definitions_named(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) if s.starts_with("arn:") && s.contains(":task-definition/") => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| definitions_named(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| definitions_named(v, out)),
        _ => {}
    }
}
