//! The assignment channel: how an agent learns which tasks it should be running.
//!
//! `GET /berth/v1/assignments?cluster=C&containerInstance=ID&since=REV&wait=SECONDS`,
//! SigV4-signed for the `ecs` service. The answer is level-triggered: every task placed on
//! the instance that is not STOPPED (with its desiredStatus), and the store revision it was
//! read at. When nothing for the instance changed after `since`, the call waits on a store
//! watch for up to `wait` seconds (at most 60) first. Each call also counts as the agent's
//! heartbeat. An awsvpc task carries `berthNetwork` (Berth's extension): its ENI and the
//! rules of its security groups now; a change of any security group or interface of the
//! region ends a waiting poll, so rule changes reach running tasks at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use berth_store::{Compare, Op, Txn};
use serde_json::{Value, json};

use crate::App;
use crate::ecs::{self, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::sigv4;
use berth_control::fargate;
use berth_control::records::{Host, InstanceRecord, InstanceStatus, TaskRecord};
use berth_control::task_network;

/// Longest a poll may wait for a change.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

pub async fn poll(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    crate::error::json_answer(answer(&app, &uri, &headers, &q).await)
}

async fn answer(app: &App, uri: &Uri, headers: &HeaderMap, q: &HashMap<String, String>) -> ApiResult<Value> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let caller = sigv4::verify(&app.config.keys, "ecs", "GET", path, headers, b"", SystemTime::now())?;
    let ctx = Ctx::new(app, caller, SystemTime::now(), 0);
    let arg = |k: &str| q.get(k).map(String::as_str);
    let mut input = ecs::Obj::new();
    if let Some(c) = arg("cluster") {
        input.insert("cluster".into(), json!(c));
    }
    let cluster = ecs::cluster_arg(&input)?;
    ecs::active_cluster(&ctx, &cluster)?;
    let id = arg("containerInstance")
        .and_then(|g| berth_model::arn::scoped_id(g, "container-instance"))
        .map(|(_, id)| id.to_string())
        .ok_or_else(|| ApiError::invalid("containerInstance is required."))?;
    let since: u64 =
        arg("since").unwrap_or("0").parse().map_err(|_| ApiError::invalid("since must be a revision number."))?;
    let wait = Duration::from_secs(
        arg("wait").unwrap_or("0").parse().map_err(|_| ApiError::invalid("wait must be seconds."))?,
    )
    .min(MAX_WAIT)
    // An idle agent must call again before it would count as disconnected.
    .min(app.control.config.agent_timeout / 2);
    let instance_arn = heartbeat(&ctx, &cluster, &id).await?;
    let me = Placed { arn: instance_arn, host: Host { cluster: cluster.clone(), id: id.clone() } };
    // An instance lending to Fargate also runs FARGATE tasks of other clusters.
    let lends = ctx.store().get(&ctx.keys.fargate_host(&cluster, &id))?.is_some();
    let prefix = ctx.keys.tasks(&cluster);
    let watched = if lends { ctx.keys.all_tasks() } else { prefix.clone() };
    // Watch before reading so a change between the read and the wait is not missed.
    let mut watch = ctx.store().watch(&watched, 0)?;
    let mut groups = ctx.store().watch(&ctx.keys.security_groups(), 0)?;
    let mut interfaces = ctx.store().watch(&ctx.keys.network_interfaces(), 0)?;
    let (revision, tasks, changed) = snapshot(&ctx, &prefix, &me, lends, since)?;
    if changed || wait.is_zero() {
        return Ok(json!({"revision": revision, "tasks": tasks}));
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::select! {
            event = tokio::time::timeout_at(deadline, watch.next()) => event,
            _ = groups.next() => break,
            _ = interfaces.next() => break,
            _ = app.closed() => break,
        };
        match next {
            Ok(Some(Ok(event))) => {
                let ours = serde_json::from_slice::<TaskRecord>(&event.kv.value).is_ok_and(|r| me.holds(&r));
                if ours {
                    break;
                }
            }
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) | Err(_) => break,
        }
    }
    let (revision, tasks, _) = snapshot(&ctx, &prefix, &me, lends, since)?;
    Ok(json!({"revision": revision, "tasks": tasks}))
}

/// The polling instance: its ARN (what its EC2 tasks name) and its key (its FARGATE tasks').
struct Placed {
    arn: String,
    host: Host,
}

impl Placed {
    fn holds(&self, task: &TaskRecord) -> bool {
        match &task.host {
            Some(h) => *h == self.host,
            None => task.field("containerInstanceArn") == Some(self.arn.as_str()),
        }
    }
}

/// Live tasks on the instance (its cluster's, read under `prefix`, and, when it lends to
/// Fargate, the FARGATE tasks it hosts), the revision read at, and whether any changed
/// after `since`.
fn snapshot(ctx: &Ctx<'_>, prefix: &str, me: &Placed, lends: bool, since: u64) -> ApiResult<(u64, Vec<Value>, bool)> {
    let range = ctx.store().range(&berth_store::KeyRange::prefix(prefix))?;
    let hosted = if lends { fargate::hosted_records(ctx, &me.host)? } else { Vec::new() };
    let mut tasks = Vec::new();
    let mut changed = since == 0;
    let mut seen = std::collections::HashSet::new();
    for kv in range.kvs.iter().chain(&hosted) {
        let rec: TaskRecord = ecs::decode(kv)?;
        // A FARGATE task of the instance's own cluster is read twice.
        if !me.holds(&rec) || !seen.insert(kv.key.as_str()) {
            continue;
        }
        changed |= kv.mod_revision > since;
        if rec.last_status != berth_model::task::TaskStatus::Stopped {
            let mut task = ecs::tasks::render(kv, &rec, false);
            // Draining from its load balancers: its agent keeps it running meanwhile.
            if rec.targets.as_ref().is_some_and(|t| t.holds()) {
                task["desiredStatus"] = json!("RUNNING");
            }
            if let Some(seconds) = rec.stop_timeout {
                task["berthStopTimeout"] = json!(seconds);
            }
            if let Some(network) = task_network::assigned_network(ctx, &rec.task)? {
                task[berth_agent_protocol::network::MEMBER] = network;
            }
            tasks.push(task);
        }
    }
    Ok((range.revision, tasks, changed))
}

/// Records that the agent is alive (written at most every quarter of the timeout).
async fn heartbeat(ctx: &Ctx<'_>, cluster: &str, id: &str) -> ApiResult<String> {
    let key = ctx.keys.instance(cluster, id);
    let kv =
        ctx.store().get(&key)?.ok_or_else(|| ApiError::invalid("The referenced container instance was not found."))?;
    let mut rec: InstanceRecord = ecs::decode(&kv)?;
    if rec.status == InstanceStatus::Inactive {
        return Err(ApiError::new(
            400,
            berth_agent_protocol::error::INACTIVE_INSTANCE,
            "The container instance is deregistered.",
        ));
    }
    let arn = rec.instance["containerInstanceArn"].as_str().unwrap_or_default().to_string();
    let now = ctx.timestamp();
    let fresh = rec.instance.get("agentConnected").and_then(Value::as_bool) == Some(true)
        && now - rec.heartbeat < ctx.config().agent_timeout.as_secs_f64() / 4.0;
    if !fresh {
        rec.heartbeat = now;
        rec.instance.insert("agentConnected".into(), json!(true));
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&key, kv.mod_revision)])
            .and_then(vec![Op::put(&key, ecs::encode(&rec))]);
        // Losing this race only means another write beat us; the next poll refreshes it.
        ctx.store().txn(txn).await?;
    }
    Ok(arn)
}
