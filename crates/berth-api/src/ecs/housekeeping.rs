//! Cluster housekeeping, run by the scheduler's leader every few seconds: tasks of agents lost
//! past `--lost-agent-timeout` that no service owns are written off (service tasks are the
//! service scheduler's, which replaces them), STOPPED tasks older than
//! `--stopped-task-retention` are forgotten, as ECS forgets them, and task definition
//! revisions in DELETE_IN_PROGRESS are purged once no task or service uses them.

use std::collections::HashSet;
use std::time::SystemTime;

use berth_model::task::TaskStatus;
use berth_store::{Compare, KeyRange, Op, StoreExt, Txn};
use serde_json::Value;

use super::records::{InstanceRecord, TaskRecord};
use super::tasks::write_off;
use super::{Ctx, decode, task_definitions};
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
        region_sweep(&ctx).await?;
    }
    Ok(())
}

/// Every cluster of the caller's region, then the task definitions no cluster uses.
async fn region_sweep(ctx: &Ctx<'_>) -> ApiResult<()> {
    let seen = ctx.store().revision()?;
    let mut in_use = HashSet::new();
    let mut complete = true;
    for kv in ctx.store().list(&ctx.keys.clusters())? {
        let name = kv.key.rsplit('/').next().unwrap_or_default().to_string();
        if let Err(e) = cluster(ctx, &name, &mut in_use).await {
            complete = false;
            tracing::warn!(cluster = name, code = e.code, message = %e.message, "housekeeping failed");
        }
    }
    // A cluster that could not be read may hold users of a revision: purge nothing then.
    if complete {
        task_definitions::purge(ctx, &in_use, seen).await?;
    }
    Ok(())
}

/// One cluster's tasks and services; adds the task definitions they use to `in_use`.
async fn cluster(ctx: &Ctx<'_>, cluster: &str, in_use: &mut HashSet<String>) -> ApiResult<()> {
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
        if task.last_status() != TaskStatus::Stopped {
            in_use.extend(task.field("taskDefinitionArn").map(str::to_string));
        }
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
    for kv in ctx.store().list(&ctx.keys.services(cluster))? {
        let service: Value = decode(&kv)?;
        if service.pointer("/service/status").and_then(Value::as_str) != Some("INACTIVE") {
            definitions_named(&service, in_use);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use berth_store::{Embedded, EmbeddedOptions, Op, Store, Txn};
    use serde_json::{Value, json};

    use super::sweep;
    use crate::ecs::{Ctx, Obj, dispatch};
    use crate::sigv4::{Caller, KeyRing};
    use crate::{App, Config};

    fn app(dir: &std::path::Path) -> Arc<App> {
        let store: Arc<dyn Store> =
            Arc::new(Embedded::open(&dir.join("state.redb"), EmbeddedOptions::default()).unwrap());
        let options = berth_registry::Options {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            host: "127.0.0.1:1".into(),
            create_on_push: false,
            gc_grace: Duration::from_secs(60),
            secrets_dir: dir.join("secrets"),
        };
        let registry = berth_registry::Registry::open(&dir.join("registry"), store.clone(), options).unwrap();
        let config = Config {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            keys: KeyRing::new([]),
            agent_timeout: Duration::from_secs(60),
            endpoint: "http://127.0.0.1:1".into(),
            lost_agent_timeout: Duration::from_secs(300),
            stopped_task_retention: Duration::from_secs(3600),
            node: "test".into(),
        };
        App::new(config, store, registry)
    }

    async fn call(app: &App, operation: &str, input: Value) -> Result<Value, String> {
        let caller = Caller { access_key: String::new(), region: "us-east-1".into() };
        let ctx = Ctx::new(app, caller, SystemTime::now(), 0);
        let input: Obj = serde_json::from_value(input).unwrap();
        dispatch(&ctx, operation, input).await.map_err(|e| e.code.to_string())
    }

    async fn status(app: &App, revision: &str) -> Result<String, String> {
        let out = call(app, "DescribeTaskDefinition", json!({"taskDefinition": revision})).await?;
        Ok(out["taskDefinition"]["status"].as_str().unwrap().to_string())
    }

    /// Registers `f` and moves it to DELETE_IN_PROGRESS; returns its `family:revision`.
    async fn deleted_revision(app: &App, run_first: bool) -> (String, Option<String>) {
        let def = json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
        let out = call(app, "RegisterTaskDefinition", def).await.unwrap();
        let revision = format!("f:{}", out["taskDefinition"]["revision"]);
        let task = if run_first {
            let run = call(app, "RunTask", json!({"taskDefinition": revision})).await.unwrap();
            Some(run["tasks"][0]["taskArn"].as_str().unwrap().to_string())
        } else {
            None
        };
        call(app, "DeregisterTaskDefinition", json!({"taskDefinition": revision})).await.unwrap();
        let out = call(app, "DeleteTaskDefinitions", json!({"taskDefinitions": [revision]})).await.unwrap();
        assert_eq!(out["failures"], json!([]));
        (revision, task)
    }

    /// Revisions in DELETE_IN_PROGRESS are purged once no task that is not STOPPED and no
    /// service uses them; revision numbers are not reused afterwards.
    #[tokio::test]
    async fn deleted_revisions_are_purged_once_unused() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        call(&app, "CreateCluster", json!({"clusterName": "default"})).await.unwrap();
        let cpu = json!({"name": "CPU", "type": "INTEGER", "integerValue": 1024});
        let memory = json!({"name": "MEMORY", "type": "INTEGER", "integerValue": 1024});
        call(&app, "RegisterContainerInstance", json!({"totalResources": [cpu, memory]})).await.unwrap();

        let (used, task) = deleted_revision(&app, true).await;
        let (unused, _) = deleted_revision(&app, false).await;
        let service_def = json!({"family": "s", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
        call(&app, "RegisterTaskDefinition", service_def).await.unwrap();
        call(&app, "CreateService", json!({"serviceName": "web", "taskDefinition": "s:1", "desiredCount": 0}))
            .await
            .unwrap();
        call(&app, "DeregisterTaskDefinition", json!({"taskDefinition": "s:1"})).await.unwrap();
        call(&app, "DeleteTaskDefinitions", json!({"taskDefinitions": ["s:1"]})).await.unwrap();

        sweep(&app).await.unwrap();
        assert_eq!(status(&app, &unused).await, Err("ClientException".into()), "an unused revision is purged");
        assert_eq!(status(&app, &used).await.unwrap(), "DELETE_IN_PROGRESS", "a PENDING task keeps its revision");
        assert_eq!(status(&app, "s:1").await.unwrap(), "DELETE_IN_PROGRESS", "a service keeps its revision");

        call(&app, "StopTask", json!({"task": task.unwrap()})).await.unwrap();
        sweep(&app).await.unwrap();
        assert_eq!(status(&app, &used).await, Err("ClientException".into()), "a STOPPED task does not keep it");
        assert_eq!(status(&app, "s:1").await.unwrap(), "DELETE_IN_PROGRESS");
        let out = call(&app, "DeleteTaskDefinitions", json!({"taskDefinitions": [unused]})).await.unwrap();
        assert!(
            out["failures"][0]["reason"].as_str().unwrap().starts_with("The specified task definition does not exist")
        );

        let def = json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
        let out = call(&app, "RegisterTaskDefinition", def).await.unwrap();
        assert_eq!(out["taskDefinition"]["revision"], 3, "revision numbers are never reused");
    }

    /// Revisions deleted before the index of DELETE_IN_PROGRESS revisions existed are found
    /// once and purged too.
    #[tokio::test]
    async fn revisions_deleted_before_the_index_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        call(&app, "CreateCluster", json!({"clusterName": "default"})).await.unwrap();
        let (revision, _) = deleted_revision(&app, false).await;
        let keys = crate::keys::Keys::new("us-east-1");
        let unindexed = Txn::new()
            .and_then(vec![Op::delete(&keys.deleting_definition("f", 1)), Op::delete(&keys.deleting_indexed())]);
        app.store.txn(unindexed).await.unwrap();
        assert_eq!(status(&app, &revision).await.unwrap(), "DELETE_IN_PROGRESS");
        sweep(&app).await.unwrap();
        assert_eq!(status(&app, &revision).await, Err("ClientException".into()));
    }

    /// A revision deleted after a round began (after it collected what is in use) waits for the
    /// next round: a service created just before the revision was deregistered may not have
    /// been seen.
    #[tokio::test]
    async fn revisions_deleted_during_a_round_wait_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let before = app.store.revision().unwrap();
        let (revision, _) = deleted_revision(&app, false).await;
        let caller = Caller { access_key: String::new(), region: "us-east-1".into() };
        let ctx = Ctx::new(&app, caller, SystemTime::now(), 0);
        let none = std::collections::HashSet::new();
        assert_eq!(crate::ecs::task_definitions::purge(&ctx, &none, before).await.unwrap(), 0);
        assert_eq!(status(&app, &revision).await.unwrap(), "DELETE_IN_PROGRESS");
        let now = app.store.revision().unwrap();
        assert_eq!(crate::ecs::task_definitions::purge(&ctx, &none, now).await.unwrap(), 1);
        assert_eq!(status(&app, &revision).await, Err("ClientException".into()));
    }
}
