//! What happens to tasks: placing and committing new ones (RunTask, StartTask and the
//! service scheduler share it), asking one to stop, writing one off, and applying an agent's
//! report. Placing a task and taking its resources from the instance happen in one
//! transaction guarded by the revisions of the cluster and of every instance involved, so two
//! requests never spend the same capacity. A task no agent has claimed is stopped at once,
//! since nothing runs yet.

use std::collections::HashMap;

use berth_model::arn::scoped_id;
use berth_model::capacity::StrategyItem;
use berth_model::launch::LaunchType;
use berth_model::resources::{Requirements, Resources};
use berth_model::task::{DesiredStatus, Failure, StopCode, TaskEvent, TaskStatus, transition};
use berth_placement::{Constraint, Plan, Rejection, Request, Strategy};
use berth_store::{Compare, KeyValue, Op, Txn};
use serde_json::{Value, json};

use crate::Region;
use crate::error::{ControlError, ControlResult};
use crate::records::{InstanceRecord, TaskRecord};
use crate::service_registries;
use crate::service_targets::{self, TargetsEvent};
use crate::store::{MAX_ATTEMPTS, Obj, active_cluster, decode, encode, retry};
use crate::task_network::{self, NetworkRequest};
use crate::{fargate, placement};

/// What RunTask, StartTask and the service scheduler share: the definition to run and how.
#[derive(Clone)]
pub struct Launch {
    pub cluster: String,
    pub definition: Obj,
    pub requirements: Requirements,
    pub constraints: Vec<Constraint>,
    pub strategies: Vec<Strategy>,
    pub overrides: Obj,
    pub started_by: Option<String>,
    pub group: String,
    pub tags: Vec<Value>,
    /// An awsvpc task's `awsvpcConfiguration`: each task gets an ENI in its placement.
    pub network: Option<NetworkRequest>,
    /// EC2: on the cluster's instances; FARGATE: on the instances lending to Fargate.
    pub launch_type: LaunchType,
    /// The capacity provider strategy the tasks are launched by (empty: none).
    pub strategy: Vec<StrategyItem>,
    /// Per new task, in placement order, the provider it is launched by (from `strategy`).
    pub capacity_providers: Vec<String>,
}

impl Launch {
    /// Whether the tasks ask for a public address (`assignPublicIp: ENABLED`).
    pub fn wants_public_ip(&self) -> bool {
        self.network.as_ref().is_some_and(|n| n.assign_public_ip)
    }
}

/// The ECS `Task` object for a new task of `l` on instance `instance`.
pub fn new_task(region: &Region<'_>, l: &Launch, instance: &InstanceRecord, id: &str) -> Obj {
    let task_arn = region.arns.task(&l.cluster, id);
    let containers: Vec<Value> = l.definition["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mut out = json!({
                "containerArn": region.arns.container(&l.cluster, id, &region.control.ids.uuid()),
                "taskArn": task_arn,
                "name": c["name"],
                "image": c["image"],
                "lastStatus": "PENDING",
                "healthStatus": "UNKNOWN",
                "networkInterfaces": [],
                "cpu": c.get("cpu").and_then(Value::as_i64).unwrap_or(0).to_string(),
            });
            for field in ["memory", "memoryReservation"] {
                if let Some(v) = c.get(field).and_then(Value::as_i64) {
                    out[field] = json!(v.to_string());
                }
            }
            out
        })
        .collect();
    let mut overrides = l.overrides.clone();
    if !overrides.contains_key("containerOverrides") {
        let names: Vec<Value> = containers.iter().map(|c| json!({"name": c["name"]})).collect();
        overrides.insert("containerOverrides".into(), Value::Array(names));
    }
    overrides.entry("inferenceAcceleratorOverrides").or_insert(json!([]));
    let mut task = Obj::new();
    task.insert("taskArn".into(), json!(task_arn));
    task.insert("clusterArn".into(), json!(region.arns.cluster(&l.cluster)));
    task.insert("taskDefinitionArn".into(), l.definition["taskDefinitionArn"].clone());
    task.insert("containerInstanceArn".into(), instance.instance["containerInstanceArn"].clone());
    task.insert("overrides".into(), Value::Object(overrides));
    task.insert("cpu".into(), json!(l.requirements.cpu.to_string()));
    task.insert("memory".into(), json!(l.requirements.memory.to_string()));
    task.insert("containers".into(), Value::Array(containers));
    if let Some(s) = &l.started_by {
        task.insert("startedBy".into(), json!(s));
    }
    task.insert("createdAt".into(), json!(region.timestamp()));
    task.insert("group".into(), json!(l.group));
    task.insert("launchType".into(), json!("EC2"));
    task.insert("attachments".into(), json!([]));
    task.insert("tags".into(), Value::Array(l.tags.clone()));
    task.insert("enableExecuteCommand".into(), json!(false));
    let zone = instance.instance["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == "ecs.availability-zone")
        .and_then(|a| a.get("value"));
    if let Some(z) = zone {
        task.insert("availabilityZone".into(), z.clone());
    }
    for field in ["ephemeralStorage", "platformVersion"] {
        if let Some(v) = l.definition.get(field) {
            task.insert(field.into(), v.clone());
        }
    }
    task
}

/// A RunTask `clientToken`: its store key and the failures to remember with the tasks.
pub struct Token<'t> {
    pub key: String,
    pub failures: &'t [Value],
}

/// Commits tasks on the planned instances (`snapshot` holds each instance placed on, by id),
/// answering the new tasks' keys and records; `Ok(None)` means a concurrent change won.
pub async fn commit(
    region: &Region<'_>,
    l: &Launch,
    cluster_kv: &KeyValue,
    snapshot: Vec<(String, KeyValue, InstanceRecord)>,
    placements: &[String],
    token: Option<Token<'_>>,
    guard: Option<&Compare>,
) -> ControlResult<Option<Vec<(String, TaskRecord)>>> {
    let mut compares = vec![Compare::unchanged(&cluster_kv.key, cluster_kv.mod_revision)];
    compares.extend(guard.cloned());
    // Each instance by id (a chunk places thousands of tasks over thousands of instances),
    // with what it has left as the placements so far leave it once one lands on it.
    let mut instances: HashMap<String, (KeyValue, InstanceRecord, Option<Resources>)> =
        snapshot.into_iter().map(|(id, kv, rec)| (id, (kv, rec, None))).collect();
    let mut ops = Vec::new();
    let mut created = Vec::new();
    let mut enis = Vec::new();
    // Plain tasks (no network interface, no FARGATE host): only the resources are counted in
    // placement order; their records are built afterwards, on every core for a large launch.
    let plain = l.network.is_none() && l.launch_type != LaunchType::Fargate;
    let mut planned = Vec::new();
    for (n, id) in placements.iter().enumerate() {
        let (kv, rec, remaining) = instances.get_mut(id).expect("placement names a snapshot instance");
        let remaining = remaining.get_or_insert_with(|| {
            compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
            rec.remaining()
        });
        remaining.reserve(&l.requirements);
        let task_id = region.control.ids.task_id();
        if plain {
            planned.push((n, id.as_str(), task_id));
            continue;
        }
        let mut task = new_task(region, l, rec, &task_id);
        if let Some(req) = &l.network {
            let task_arn = region.arns.task(&l.cluster, &task_id);
            let (eni, eni_compares, eni_ops) = task_network::allocate(region, req, (&task_arn, &rec.instance), &enis)?;
            task_network::show(region, &mut task, &eni);
            compares.extend(eni_compares);
            ops.extend(eni_ops);
            enis.push(eni);
        }
        if let Some(provider) = l.capacity_providers.get(n) {
            task.insert("capacityProviderName".into(), json!(provider));
        }
        let mut record = TaskRecord::new(task, l.requirements.clone());
        if l.launch_type == LaunchType::Fargate {
            let host = fargate::host_of(&kv.key);
            fargate::shape_task(region, &mut record.task, enis.last().map(|e| e.subnet_id.as_str()))?;
            ops.push(Op::put(&region.keys.hosted_task(&host, &l.cluster, &task_id), b"{}".to_vec()));
            record.host = Some(host);
        }
        let key = region.keys.task(&l.cluster, &task_id);
        compares.push(Compare::absent(&key));
        ops.push(Op::put(&key, encode(&record)));
        created.push((key, record));
    }
    let build = |(n, id, task_id): &(usize, &str, String)| {
        let mut task = new_task(region, l, &instances[*id].1, task_id);
        if let Some(provider) = l.capacity_providers.get(*n) {
            task.insert("capacityProviderName".into(), json!(provider));
        }
        let record = TaskRecord::new(task, l.requirements.clone());
        let value = encode(&record);
        (region.keys.task(&l.cluster, task_id), record, value)
    };
    for (key, record, value) in on_all_cores(&planned, build) {
        compares.push(Compare::absent(&key));
        ops.push(Op::put(&key, value));
        created.push((key, record));
    }
    for (kv, mut rec, remaining) in instances.into_values() {
        if let Some(remaining) = remaining {
            rec.set_remaining(&remaining);
            ops.push(Op::put(&kv.key, encode(&rec)));
        }
    }
    if let Some(t) = token {
        // The token and the tasks it made are written together: a retry finds both or neither.
        let arns: Vec<&str> = created.iter().filter_map(|(_, rec)| rec.field("taskArn")).collect();
        compares.push(Compare::absent(&t.key));
        ops.push(Op::put(&t.key, encode(&json!({"taskArns": arns, "failures": t.failures}))));
    }
    Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(created))
}

/// `f` over `items`, in order: split over the machine's cores when there are enough items to
/// be worth the threads (a launch chunk of thousands of tasks builds and encodes each record;
/// that is most of the chunk's time, and the rest of the control plane waits on it).
fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const WORTH_A_THREAD: usize = 1000;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / WORTH_A_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts.into_iter().flat_map(|p| p.join().expect("a launch thread panicked")).collect()
    })
}

/// What a scheduler launch produced: the new tasks' ids, or why nothing could take them.
pub struct Launched {
    pub tasks: Vec<String>,
    /// Per instance that could not take a task: its id and ECS's reason.
    pub rejections: Vec<(String, Rejection)>,
}

/// Most tasks one placement commits: a rollout of 100,000 tasks is placed in transactions of
/// this many, so what one transaction holds in memory stays bounded. Each chunk reads and
/// rewrites every instance it places on, so a chunk well above the instance count keeps that
/// cost small per task: over 5,000 instances, chunks of 20,000 place twice as fast as chunks
/// of 5,000, for about 300 MiB more at the peak.
pub const LAUNCH_CHUNK: usize = 20000;

/// Places and commits `count` tasks of `l` (on instance `only` when given), provided the
/// record at `guard` is still at revision `seen`: a scheduler acting on a stale view of its
/// service launches nothing more (`Ok(None)`; tasks of chunks committed before stay, and the
/// next pass counts them).
pub async fn launch_for(
    region: &Region<'_>,
    l: &Launch,
    count: usize,
    only: Option<&str>,
    guard: (&str, u64),
) -> ControlResult<Option<Launched>> {
    if count <= LAUNCH_CHUNK {
        return launch_chunk(region, l, count, only, guard).await;
    }
    let mut launched = Launched { tasks: Vec::new(), rejections: Vec::new() };
    let mut from = 0;
    while from < count {
        let n = LAUNCH_CHUNK.min(count - from);
        let mut part = l.clone();
        part.capacity_providers = l.capacity_providers.iter().skip(from).take(n).cloned().collect();
        let Some(done) = launch_chunk(region, &part, n, only, guard).await? else { return Ok(None) };
        let short = done.tasks.len() < n;
        launched.tasks.extend(done.tasks);
        launched.rejections = done.rejections;
        if short {
            break;
        }
        from += n;
    }
    Ok(Some(launched))
}

async fn launch_chunk(
    region: &Region<'_>,
    l: &Launch,
    count: usize,
    only: Option<&str>,
    (guard, seen): (&str, u64),
) -> ControlResult<Option<Launched>> {
    let guard_compare = Compare::unchanged(guard, seen);
    let request = Request {
        requirements: l.requirements.clone(),
        count,
        group: l.group.clone(),
        constraints: l.constraints.clone(),
        strategies: l.strategies.clone(),
        seed: region.control.ids.seed(),
    };
    for _ in 0..MAX_ATTEMPTS {
        let (cluster_kv, _) = active_cluster(region, &l.cluster)?;
        let mut candidates = match l.launch_type {
            LaunchType::Ec2 => placement::candidates(region, &l.cluster).await?,
            LaunchType::Fargate => fargate::candidates_for(region, l.wants_public_ip())?,
        };
        candidates.retain(|c| only.is_none_or(|id| c.id == id));
        let views: Vec<_> = candidates.iter().map(|c| c.view.clone()).collect();
        let Plan { placements, rejections } = placement::place(views, request.clone()).await?;
        let snapshot: Vec<_> = candidates.into_iter().map(|c| (c.id, c.kv, c.record)).collect();
        if placements.is_empty() {
            return Ok(Some(Launched { tasks: Vec::new(), rejections }));
        }
        match commit(region, l, &cluster_kv, snapshot, &placements, None, Some(&guard_compare)).await? {
            Some(created) => {
                let tasks = created.iter().filter_map(|(key, _)| key.rsplit('/').next().map(str::to_string)).collect();
                return Ok(Some(Launched { tasks, rejections }));
            }
            None if region.store().get(guard)?.map(|kv| kv.mod_revision) != Some(seen) => return Ok(None),
            None => {}
        }
    }
    Err(ControlError::Contention)
}

/// Finds a task of `cluster` by id or ARN.
pub fn find_task(region: &Region<'_>, cluster: &str, given: &str) -> ControlResult<Option<(KeyValue, TaskRecord)>> {
    let id = match scoped_id(given, "task") {
        Some((Some(c), id)) if c == cluster => id,
        Some((None, id)) => id,
        _ => return Ok(None),
    };
    match region.store().get(&region.keys.task(cluster, id))? {
        Some(kv) => {
            let rec = decode(&kv)?;
            Ok(Some((kv, rec)))
        }
        None => Ok(None),
    }
}

/// Why a task is asked to stop: ECS's stop code and reason, and whether that is a failure
/// (a health-check stop is; a user's or a scale-in is not).
#[derive(Debug, Clone, Copy)]
pub struct StopRequest<'a> {
    pub code: StopCode,
    pub reason: &'a str,
    pub failure: Option<Failure>,
    /// Seconds the containers get between SIGTERM and SIGKILL, instead of each one's
    /// `stopTimeout` (a spot interruption's warning).
    pub warning: Option<u64>,
}

/// ECS's reason for a task its spot capacity was taken back from.
pub const SPOT_INTERRUPTED: &str = "Your Spot Task was interrupted.";

/// Moves a task to STOPPED now through the lifecycle's `event` (a stop before any claim, a
/// write-off, or the agent's report) and gives its resources back to its instance: the
/// compares and writes for the instance, to commit together with the task's own write.
fn stop_now(
    region: &Region<'_>,
    cluster: &str,
    rec: &mut TaskRecord,
    event: TaskEvent,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    rec.last_status = transition(rec.last_status, event)?;
    rec.desired_status = DesiredStatus::Stopped;
    let now = json!(region.timestamp());
    for field in ["stoppingAt", "executionStoppedAt", "stoppedAt"] {
        rec.task.entry(field).or_insert(now.clone());
    }
    if let Some(containers) = rec.task.get_mut("containers").and_then(Value::as_array_mut) {
        for c in containers {
            c["lastStatus"] = json!(TaskStatus::Stopped.as_str());
        }
    }
    // The interface and its address are freed with the move to STOPPED, and whatever target
    // groups still hold the task let it go.
    let (mut compares, mut ops) = task_network::release(region, &mut rec.task)?;
    let (c, o) = service_targets::on_event(region, rec, TargetsEvent::Stopped)?;
    compares.extend(c);
    ops.extend(o);
    let (c, o) = service_registries::leave(region, rec)?;
    compares.extend(c);
    ops.extend(o);
    if let Some(host) = &rec.host {
        let id = rec.field("taskArn").and_then(|a| a.rsplit('/').next()).unwrap_or_default();
        ops.push(Op::delete(&region.keys.hosted_task(host, cluster, id)));
    }
    let instance = match rec.placed_on(cluster) {
        Some(host) => region.store().get(&region.keys.instance(&host.cluster, &host.id))?,
        None => None,
    };
    let Some(kv) = instance else {
        return Ok((compares, ops));
    };
    let mut inst: InstanceRecord = decode(&kv)?;
    let mut remaining = inst.remaining();
    remaining.release(&rec.requirements);
    inst.set_remaining(&remaining);
    compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
    ops.push(Op::put(&kv.key, encode(&inst)));
    Ok((compares, ops))
}

/// Commits a task's change together with `compares`/`ops` (its instance's), guarded by the
/// revision the task was read at; `None` when that lost a race.
async fn save(
    region: &Region<'_>,
    kv: &KeyValue,
    rec: &TaskRecord,
    (mut compares, mut ops): (Vec<Compare>, Vec<Op>),
) -> ControlResult<Option<()>> {
    compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
    ops.push(Op::put(&kv.key, encode(rec)));
    Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(()))
}

/// Asks a task to stop: its agent stops it, or, if no agent has claimed it yet, it is
/// STOPPED at once. A task already asked keeps its first code and reason.
pub async fn request_stop(
    region: &Region<'_>,
    cluster: &str,
    given: &str,
    stop: StopRequest<'_>,
) -> ControlResult<Option<(KeyValue, TaskRecord)>> {
    retry(move || async move {
        let Some((kv, mut rec)) = find_task(region, cluster, given)? else { return Ok(Some(None)) };
        if rec.desired_status == DesiredStatus::Stopped {
            return Ok(Some(Some((kv, rec))));
        }
        rec.stop_code = Some(stop.code);
        rec.stopped_reason = Some(stop.reason.to_string());
        rec.failure = stop.failure;
        rec.stop_timeout = stop.warning;
        let extra = if !rec.claimed && transition(rec.last_status, TaskEvent::StopUnclaimed).is_ok() {
            stop_now(region, cluster, &mut rec, TaskEvent::StopUnclaimed)?
        } else if let Some(draining) = service_targets::begin_draining(region, &mut rec)? {
            // Behind a load balancer: drained first, then stopped by its agent.
            rec.desired_status = DesiredStatus::Stopped;
            rec.task.entry("stoppingAt").or_insert(json!(region.timestamp()));
            draining
        } else {
            rec.desired_status = DesiredStatus::Stopped;
            rec.task.entry("stoppingAt").or_insert(json!(region.timestamp()));
            Default::default()
        };
        // Its names go with the request, before the task stops (ECS deregisters it then too).
        let (mut compares, mut ops) = extra;
        let (c, o) = service_registries::leave(region, &mut rec)?;
        compares.extend(c);
        ops.extend(o);
        match save(region, &kv, &rec, (compares, ops)).await? {
            Some(()) => Ok(Some(Some((region.store().get(&kv.key)?.unwrap_or(kv), rec)))),
            None => Ok(None),
        }
    })
    .await
}

/// Marks a task STOPPED now whatever its agent would say: for tasks whose agent is lost.
pub async fn write_off(region: &Region<'_>, cluster: &str, id: &str, reason: &str) -> ControlResult<()> {
    retry(move || async move {
        let Some((kv, mut rec)) = find_task(region, cluster, id)? else { return Ok(Some(())) };
        if !rec.live() {
            return Ok(Some(()));
        }
        rec.stop_code.get_or_insert(StopCode::ServiceSchedulerInitiated);
        rec.stopped_reason = Some(reason.to_string());
        let extra = stop_now(region, cluster, &mut rec, TaskEvent::WriteOff)?;
        save(region, &kv, &rec, extra).await
    })
    .await
}

/// Applies an agent's report to a task: the status must move forward; reaching STOPPED
/// gives the task's resources back to its instance. `apply` records what else the report
/// says (containers, timestamps, health).
pub async fn report(
    region: &Region<'_>,
    cluster: &str,
    given: &str,
    status: Option<TaskStatus>,
    apply: impl Fn(&mut TaskRecord),
) -> ControlResult<()> {
    let apply = &apply;
    let woke = retry(move || async move {
        let (kv, mut rec) = find_task(region, cluster, given)?.ok_or(ControlError::TaskNotFound)?;
        let current = rec.last_status;
        let event = TaskEvent::Reported(status.unwrap_or(current));
        let next = transition(current, event)?;
        rec.claimed = true;
        apply(&mut rec);
        if next == TaskStatus::Running {
            rec.task.entry("startedAt").or_insert(json!(region.timestamp()));
            task_network::attached(&mut rec.task);
        }
        let extra = if next == TaskStatus::Stopped && current != TaskStatus::Stopped {
            // The agent sends no stop code; ECS derives it: a task that never ran failed to
            // start, one that ran lost an essential container (unless a user or scheduler
            // stop already set the code).
            if rec.stop_code.is_none() {
                let ran = rec.task.contains_key("startedAt");
                rec.stop_code =
                    Some(if ran { StopCode::EssentialContainerExited } else { StopCode::TaskFailedToStart });
                rec.failure = Some(if ran { Failure::EssentialContainerExited } else { Failure::FailedToStart });
            }
            stop_now(region, cluster, &mut rec, event)?
        } else {
            rec.last_status = next;
            if next > TaskStatus::Running {
                // Stopping on its own (an essential container exited): its names go now.
                service_registries::leave(region, &mut rec)?
            } else {
                Default::default()
            }
        };
        let changed = next != current && matches!(next, TaskStatus::Running | TaskStatus::Stopped);
        Ok::<_, ControlError>(save(region, &kv, &rec, extra).await?.map(|()| changed))
    })
    .await?;
    if woke {
        region.control.wake_scheduler();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::on_all_cores;

    #[test]
    fn work_split_over_cores_comes_back_whole_and_in_order() {
        for n in [0, 1, 999, 1000, 2001, 10_007] {
            let items: Vec<usize> = (0..n).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = on_all_cores(&items, |i| {
                threads.lock().unwrap().insert(std::thread::current().id());
                i * 2
            });
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            if n >= 2000 && cores > 1 {
                assert!(threads.lock().unwrap().len() > 1, "{n} items ran on one thread");
            }
        }
    }
}
