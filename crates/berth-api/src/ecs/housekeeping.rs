//! Cluster housekeeping, run by the scheduler's leader every few seconds: tasks of agents lost
//! past `--lost-agent-timeout` that no service owns are written off (service tasks are the
//! service scheduler's, which replaces them), and STOPPED tasks older than
//! `--stopped-task-retention` are forgotten, as ECS forgets them.

use std::time::SystemTime;

use berth_model::task::TaskStatus;
use berth_store::{Compare, KeyRange, Op, StoreExt, Txn};
use serde_json::Value;

use super::records::{InstanceRecord, TaskRecord};
use super::tasks::write_off;
use super::{Ctx, decode};
use crate::App;
use crate::error::ApiResult;
use crate::keys::REGIONS;
use crate::sigv4::Caller;

/// The reason a task of a lost agent is stopped with (service tasks get the same).
pub const LOST: &str = "Task stopped: the agent of its container instance was lost.";

/// One round over every cluster of every region.
pub async fn sweep(app: &App) -> ApiResult<()> {
    let mut regions = vec![app.config.region.clone()];
    for kv in app.store.range(&KeyRange::prefix(REGIONS))?.kvs {
        let region = kv.key[REGIONS.len()..].to_string();
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    for region in regions {
        let caller = Caller { access_key: String::new(), region };
        let ctx = Ctx::new(app, caller, SystemTime::now(), 0);
        for kv in ctx.store().list(&ctx.keys.clusters())? {
            let name = kv.key.rsplit('/').next().unwrap_or_default().to_string();
            if let Err(e) = cluster(&ctx, &name).await {
                tracing::warn!(cluster = name, code = e.code, message = %e.message, "housekeeping failed");
            }
        }
    }
    Ok(())
}

async fn cluster(ctx: &Ctx<'_>, cluster: &str) -> ApiResult<()> {
    let now = ctx.timestamp();
    let lost_after = ctx.app.config.lost_agent_timeout.as_secs_f64();
    let retention = ctx.app.config.stopped_task_retention.as_secs_f64();
    let mut lost = Vec::new();
    for kv in ctx.store().list(&ctx.keys.instances(cluster))? {
        let rec: InstanceRecord = decode(&kv)?;
        if rec.status() != "INACTIVE" && rec.lost(now, lost_after) {
            lost.push(rec.instance["containerInstanceArn"].as_str().unwrap_or_default().to_string());
        }
    }
    for kv in ctx.store().list(&ctx.keys.tasks(cluster))? {
        let task: TaskRecord = decode(&kv)?;
        let on_lost = task.field("containerInstanceArn").is_some_and(|i| lost.iter().any(|l| l == i));
        let of_service = task.field("group").is_some_and(|g| g.starts_with("service:"));
        match task.last_status() {
            TaskStatus::Stopped => {
                let stopped = task.task.get("stoppedAt").and_then(Value::as_f64).unwrap_or(now);
                if now - stopped > retention {
                    let txn = Txn::new()
                        .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
                        .and_then(vec![Op::delete(&kv.key)]);
                    ctx.store().txn(txn).await?;
                }
            }
            _ if on_lost && !of_service => {
                let id = kv.key.rsplit('/').next().unwrap_or_default();
                write_off(ctx, cluster, id, LOST).await?;
            }
            _ => {}
        }
    }
    Ok(())
}
