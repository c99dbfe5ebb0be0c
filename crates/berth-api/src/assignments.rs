//! The assignment channel: how an agent learns which tasks it should be running.
//!
//! `GET /berth/v1/assignments?cluster=C&containerInstance=ID&since=REV&wait=SECONDS[&changes=1]`,
//! SigV4-signed for the `ecs` service. The answer is level-triggered: every task placed on
//! the instance that is not STOPPED (with its desiredStatus), and the store revision it was
//! read at; with `changes=1`, only those changed after `since` and the ARNs of all (`live`).
//! When nothing the instance's agent acts on changed after `since` (a task placed on it or
//! gone, a desired status, a drain hold, a stop timeout: not the agent's own reports coming
//! back), the call waits for up to `wait` seconds (at most 60) first, on the task index's
//! wake-up for this instance alone (see `berth_control::task_index`), so a change wakes one
//! poll, not every agent's. Nor is a task changed by its agent's reports alone sent again in
//! an answer of changes: it is only listed in `live`. Each call
//! also counts as the agent's heartbeat. An awsvpc task carries `berthNetwork` (Berth's
//! extension): its ENI and the rules of its security groups now; a change of any security
//! group or interface of the region ends a waiting poll and is answered whole, so rule
//! changes reach running tasks at once. A task of a Service Connect service carries
//! `berthServiceConnect`: the client aliases of its namespace (which its agent acts on when the
//! task starts, as ECS fixes them then). Tasks are sent as the agent reads them
//! (`berth_agent_protocol::assignments::AssignedTask`), not whole.

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
use berth_agent_protocol::assignments::{AssignedContainer, AssignedTask, Assignments};
use berth_agent_protocol::connect::ServiceConnect;
use berth_agent_protocol::status::DesiredStatus;
use berth_control::records::{AgentTask, Host, InstancePulse, InstanceRecord, InstanceStatus, TaskRecord};
use berth_control::task_index::Index;
use berth_control::{service_connect, task_network};
use berth_model::task::TaskStatus;

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

async fn answer(app: &App, uri: &Uri, headers: &HeaderMap, q: &HashMap<String, String>) -> ApiResult<Assignments> {
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
    let changes = match arg("changes") {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(ApiError::invalid("changes must be 0 or 1.")),
    };
    let instance_arn = heartbeat(&ctx, &cluster, &id).await?;
    let me = Placed { arn: instance_arn, host: Host { cluster: cluster.clone(), id: id.clone() } };
    // The index knows the tasks each instance holds (its cluster's, and the FARGATE tasks of
    // any cluster it hosts) and wakes this poll alone when one of them changes in a way its
    // agent acts on.
    let index = ctx.control.task_index().await?;
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut mine = index.subscribe_host(&ctx.name, &me.host);
    let mut network = index.subscribe_network();
    let (answer, changed) = snapshot(&ctx, &index, &me, since, changes)?;
    if changed || wait.is_zero() {
        return Ok(answer);
    }
    let deadline = tokio::time::Instant::now() + wait;
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => {}
        _ = mine.changed() => {}
        _ = network.changed() => {}
        _ = app.closed() => {}
    }
    Ok(snapshot(&ctx, &index, &me, since, changes)?.0)
}

/// The polling instance: its ARN (what its EC2 tasks name) and its key (its FARGATE tasks').
struct Placed {
    arn: String,
    host: Host,
}

impl Placed {
    fn holds(&self, task: &AgentTask) -> bool {
        match &task.host {
            Some(h) => *h == self.host,
            None => task.task.container_instance_arn.as_deref() == Some(self.arn.as_str()),
        }
    }
}

/// The answer: live tasks on the instance (with `changes`, those changed after `since` in a
/// way its agent acts on, and the ARNs of all) and the index revision they were read at; and whether any task the
/// instance holds or held changed after `since` in a way its agent acts on (see
/// `task_index::AgentView`). The records are read from the store (they may be newer than the
/// revision: a change then wakes the next poll at once). Each task is sent as the agent reads
/// it ([`AssignedTask`]), not as DescribeTasks shows it.
fn snapshot(
    ctx: &Ctx<'_>,
    index: &Index<'_>,
    me: &Placed,
    since: u64,
    changes: bool,
) -> ApiResult<(Assignments, bool)> {
    let held = index.host(&ctx.name, &me.host);
    // A security group or interface change reaches every awsvpc task: answer whole then.
    let whole = !changes || since == 0 || index.network_changed() > since;
    let mut tasks = Vec::new();
    let mut live = Vec::new();
    let mut connects: std::collections::HashMap<(String, Option<String>), Option<ServiceConnect>> =
        std::collections::HashMap::new();
    for summary in held.tasks.iter().filter(|t| t.live()) {
        if !whole && summary.agent_revision <= since {
            live.push(ctx.arns.task(&summary.cluster, &summary.id));
            continue;
        }
        let Some(kv) = ctx.store().get(&summary.key)? else { continue };
        let rec = agent_task(&kv)?;
        if !me.holds(&rec) || rec.last_status == TaskStatus::Stopped {
            continue;
        }
        let network = task_network::assigned_network(ctx, rec.task.attachments.as_ref())?;
        // Every task of a service is told the same aliases: read once per answer.
        let group = (summary.cluster.clone(), rec.task.group.clone());
        let connect = match connects.get(&group) {
            Some(c) => c.clone(),
            None => {
                let c = service_connect::assigned(ctx, &group.0, group.1.as_deref())?;
                connects.insert(group, c.clone());
                c
            }
        };
        let task = assigned(rec, network, connect)?;
        live.push(task.task_arn.clone());
        tasks.push(task);
    }
    let answer = Assignments { revision: held.revision, tasks, live: (!whole).then_some(live) };
    Ok((answer, since == 0 || held.changed > since))
}

/// A task record as the agent reads it; a record older than typed statuses is decoded whole
/// and read from its current form.
fn agent_task(kv: &berth_store::KeyValue) -> ApiResult<AgentTask> {
    if let Ok(task) = serde_json::from_slice::<AgentTask>(&kv.value) {
        return Ok(task);
    }
    let rec: TaskRecord = ecs::decode(kv)?;
    serde_json::from_slice(&ecs::encode(&rec)).map_err(|e| ApiError::server(e.to_string()))
}

/// What the agent is sent of a task. One draining from its load balancers is sent as wanted
/// RUNNING: its agent keeps it running meanwhile.
fn assigned(
    rec: AgentTask,
    network: Option<Value>,
    service_connect: Option<ServiceConnect>,
) -> ApiResult<AssignedTask> {
    let desired = match rec.desired_status {
        _ if rec.held() => DesiredStatus::Running,
        berth_model::task::DesiredStatus::Running => DesiredStatus::Running,
        berth_model::task::DesiredStatus::Stopped => DesiredStatus::Stopped,
    };
    let network = network.map(serde_json::from_value).transpose().map_err(|e| ApiError::server(e.to_string()))?;
    let f = rec.task;
    Ok(AssignedTask {
        task_arn: f.task_arn,
        task_definition_arn: f.task_definition_arn,
        desired_status: desired,
        last_status: rec.last_status,
        overrides: f.overrides,
        network,
        service_connect,
        stop_timeout: rec.stop_timeout,
        launch_type: f.launch_type,
        availability_zone: f.availability_zone,
        containers: f
            .containers
            .into_iter()
            .map(|c| AssignedContainer { name: c.name, container_arn: c.container_arn })
            .collect(),
    })
}

/// Records that the agent is alive (written at most every quarter of the timeout).
async fn heartbeat(ctx: &Ctx<'_>, cluster: &str, id: &str) -> ApiResult<String> {
    let key = ctx.keys.instance(cluster, id);
    let kv =
        ctx.store().get(&key)?.ok_or_else(|| ApiError::invalid("The referenced container instance was not found."))?;
    let now = ctx.timestamp();
    let within = ctx.config().agent_timeout.as_secs_f64() / 4.0;
    // Most polls find the instance active and its last contact recent: nothing to write.
    if let Ok(pulse) = serde_json::from_slice::<InstancePulse>(&kv.value)
        && pulse.status.is_some_and(|s| s != InstanceStatus::Inactive)
        && pulse.fresh(now, within)
        && let Some(arn) = pulse.arn()
    {
        return Ok(arn.to_string());
    }
    let mut rec: InstanceRecord = ecs::decode(&kv)?;
    if rec.status == InstanceStatus::Inactive {
        return Err(ApiError::new(
            400,
            berth_agent_protocol::error::INACTIVE_INSTANCE,
            "The container instance is deregistered.",
        ));
    }
    let arn = rec.instance["containerInstanceArn"].as_str().unwrap_or_default().to_string();
    let fresh =
        rec.instance.get("agentConnected").and_then(Value::as_bool) == Some(true) && now - rec.heartbeat < within;
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
