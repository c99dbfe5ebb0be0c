//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
//!
//! Placing a task and taking its resources from the instance happen in one transaction,
//! guarded by the revisions of the cluster and of every instance involved, so two requests
//! never spend the same capacity. A task no agent has claimed is PENDING and stays so; a
//! stop before any agent claimed it ends it at once, since nothing runs yet.

use std::collections::HashMap;

use berth_model::arn::scoped_id;
use berth_model::resources::Requirements;
use berth_model::task::{StopCode, TaskEvent, TaskStatus, transition};
use berth_model::task_definition::requirements;
use berth_placement::{Constraint, Plan, Request, Strategy, place};
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::records::{InstanceRecord, TaskRecord};
use super::task_definitions::{DefinitionRecord, resolve};
use super::{
    Ctx, MAX_ATTEMPTS, Obj, active_cluster, check_tags, cluster_arg, contention, decode, encode, max_results, page,
    strings, text, with_token,
};
use super::{array, missing, placement};
use crate::error::{ApiError, ApiResult};

/// What RunTask, StartTask and the service scheduler share: the definition to run and how.
pub(crate) struct Launch {
    pub cluster: String,
    pub definition: Obj,
    pub requirements: Requirements,
    pub constraints: Vec<Constraint>,
    pub strategies: Vec<Strategy>,
    pub overrides: Obj,
    pub started_by: Option<String>,
    pub group: String,
    pub tags: Vec<Value>,
}

fn launch(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<Launch> {
    let cluster = cluster_arg(input)?;
    active_cluster(ctx, &cluster)?;
    let given = text(input, "taskDefinition").unwrap_or_default();
    let (_, DefinitionRecord { definition, .. }) =
        resolve(ctx, given)?.ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    if definition.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return Err(ApiError::invalid("TaskDefinition is inactive"));
    }
    check_launch_type(&definition, text(input, "launchType"))?;
    if input.contains_key("capacityProviderStrategy") {
        return Err(ApiError::invalid("Berth does not support capacity provider strategies yet."));
    }
    let mut constraints = placement::constraints(&array(input, "placementConstraints"), false)?;
    let strategies = placement::strategies(&array(input, "placementStrategy"))?;
    check_network(&definition, input)?;
    let started_by = text(input, "startedBy").map(str::to_string);
    if started_by.as_ref().is_some_and(|s| s.chars().count() > 128) {
        return Err(ApiError::invalid("startedBy can be at most 128 characters."));
    }
    let family = definition.get("family").and_then(Value::as_str).unwrap_or_default();
    let group = text(input, "group").map(str::to_string).unwrap_or_else(|| format!("family:{family}"));
    if group.chars().count() > 255 {
        return Err(ApiError::invalid("group can be at most 255 characters."));
    }
    let tags = array(input, "tags");
    check_tags(&tags)?;
    let overrides = input.get("overrides").and_then(Value::as_object).cloned().unwrap_or_default();
    let names: Vec<&str> = definition["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for co in overrides.get("containerOverrides").and_then(Value::as_array).into_iter().flatten() {
        let name = co.get("name").and_then(Value::as_str).unwrap_or_default();
        if !names.contains(&name) {
            return Err(ApiError::invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    let requirements = requirements(&definition, Some(&overrides));
    let in_definition = definition.get("placementConstraints").and_then(Value::as_array).cloned().unwrap_or_default();
    constraints.extend(placement::constraints(&in_definition, true)?);
    Ok(Launch { cluster, definition, requirements, constraints, strategies, overrides, started_by, group, tags })
}

/// A launch type the definition is not compatible with gets ECS's refusal; one it is
/// compatible with but Berth cannot run yet (anything but EC2) gets Berth's.
fn check_launch_type(definition: &Obj, launch_type: Option<&str>) -> ApiResult<()> {
    let Some(lt) = launch_type else { return Ok(()) };
    let compatible =
        definition.get("compatibilities").and_then(Value::as_array).is_some_and(|c| c.iter().any(|v| v == lt));
    if !compatible {
        return Err(ApiError::invalid(format!("Task definition does not support launch_type {lt}.")));
    }
    if lt != "EC2" {
        return Err(ApiError::invalid(format!("Berth does not run the {lt} launch type yet; use EC2.")));
    }
    Ok(())
}

/// `networkConfiguration` is required with the awsvpc network mode and refused without it;
/// before that, the definition's members that depend on the launch type are checked.
pub(crate) fn check_network(definition: &Obj, input: &Obj) -> ApiResult<()> {
    berth_model::members::check_launch(definition, text(input, "launchType").unwrap_or("EC2"))?;
    let awsvpc = definition.get("networkMode").and_then(Value::as_str) == Some("awsvpc");
    match (awsvpc, input.contains_key("networkConfiguration")) {
        (true, false) => {
            Err(ApiError::invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified."))
        }
        (false, true) => Err(ApiError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        )),
        _ => Ok(()),
    }
}

/// The ECS `Task` object for a new task of `l` on instance `instance`.
fn new_task(ctx: &Ctx<'_>, l: &Launch, instance: &InstanceRecord, id: &str) -> Obj {
    let task_arn = ctx.arns.task(&l.cluster, id);
    let containers: Vec<Value> = l.definition["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mut out = json!({
                "containerArn": ctx.arns.container(&l.cluster, id, &uuid::Uuid::new_v4().to_string()),
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
    task.insert("clusterArn".into(), json!(ctx.arns.cluster(&l.cluster)));
    task.insert("taskDefinitionArn".into(), l.definition["taskDefinitionArn"].clone());
    task.insert("containerInstanceArn".into(), instance.instance["containerInstanceArn"].clone());
    task.insert("overrides".into(), Value::Object(overrides));
    task.insert("lastStatus".into(), json!("PENDING"));
    task.insert("healthStatus".into(), json!("UNKNOWN"));
    task.insert("desiredStatus".into(), json!("RUNNING"));
    task.insert("cpu".into(), json!(l.requirements.cpu.to_string()));
    task.insert("memory".into(), json!(l.requirements.memory.to_string()));
    task.insert("containers".into(), Value::Array(containers));
    if let Some(s) = &l.started_by {
        task.insert("startedBy".into(), json!(s));
    }
    task.insert("createdAt".into(), json!(ctx.timestamp()));
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

/// Commits tasks on the planned instances; `Ok(None)` means a concurrent change won.
/// A RunTask `clientToken`: its store key and the failures to remember with the tasks.
struct Token<'t> {
    key: String,
    failures: &'t [Value],
}

async fn commit(
    ctx: &Ctx<'_>,
    l: &Launch,
    cluster_kv: &KeyValue,
    snapshot: &[(String, KeyValue, InstanceRecord)],
    placements: &[String],
    token: Option<Token<'_>>,
    guard: Option<&Compare>,
) -> ApiResult<Option<Vec<(String, Obj)>>> {
    let mut compares = vec![Compare::unchanged(&cluster_kv.key, cluster_kv.mod_revision)];
    compares.extend(guard.cloned());
    let mut updated: HashMap<&str, InstanceRecord> = HashMap::new();
    let mut ops = Vec::new();
    let mut created = Vec::new();
    for id in placements {
        let (_, kv, rec) = snapshot.iter().find(|(i, ..)| i == id).expect("placement names a snapshot instance");
        let rec = updated.entry(id.as_str()).or_insert_with(|| {
            compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
            rec.clone()
        });
        let mut remaining = rec.remaining();
        remaining.reserve(&l.requirements);
        rec.set_remaining(&remaining);
        let task_id = uuid::Uuid::new_v4().simple().to_string();
        let task = new_task(ctx, l, rec, &task_id);
        let record = TaskRecord { task: task.clone(), requirements: l.requirements.clone(), claimed: false };
        let key = ctx.keys.task(&l.cluster, &task_id);
        compares.push(Compare::absent(&key));
        ops.push(Op::put(&key, encode(&record)));
        created.push((key, task));
    }
    for (id, rec) in &updated {
        ops.push(Op::put(&ctx.keys.instance(&l.cluster, id), encode(rec)));
    }
    if let Some(t) = token {
        // The token and the tasks it made are written together: a retry finds both or neither.
        let arns: Vec<&Value> = created.iter().map(|(_, task)| &task["taskArn"]).collect();
        compares.push(Compare::absent(&t.key));
        ops.push(Op::put(&t.key, encode(&json!({"taskArns": arns, "failures": t.failures}))));
    }
    Ok(ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(created))
}

/// Renders freshly created tasks with their store version.
fn created_tasks(ctx: &Ctx<'_>, created: Vec<(String, Obj)>) -> ApiResult<Vec<Value>> {
    created
        .into_iter()
        .map(|(key, mut task)| {
            let version = ctx.store().get(&key)?.map(|kv| kv.version).unwrap_or(1);
            task.insert("version".into(), json!(version));
            Ok(Value::Object(task))
        })
        .collect()
}

pub async fn run(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let count = input.get("count").and_then(Value::as_i64).unwrap_or(1);
    if count > 10 {
        return Err(ApiError::invalid("Task count can not be greater than 10"));
    }
    if count < 1 {
        return Err(ApiError::invalid("Task count must be at least 1"));
    }
    let l = launch(ctx, &input)?;
    let token = text(&input, "clientToken").map(str::to_string);
    if token.as_ref().is_some_and(|t| t.is_empty() || t.chars().count() > 64) {
        return Err(ApiError::invalid("clientToken must be 1 to 64 characters."));
    }
    let token_key = token.as_ref().map(|t| ctx.keys.run_token(&l.cluster, t));
    let request = Request {
        requirements: l.requirements.clone(),
        count: count as usize,
        group: l.group.clone(),
        constraints: l.constraints.clone(),
        strategies: l.strategies.clone(),
        seed: placement::seed(),
    };
    for _ in 0..MAX_ATTEMPTS {
        // A request already made with this clientToken: answer what it produced.
        if let Some(key) = &token_key
            && let Some(kv) = ctx.store().get(key)?
        {
            let done: Value = decode(&kv)?;
            let mut tasks = Vec::new();
            for arn in done["taskArns"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if let Some((kv, rec)) = find_task(ctx, &l.cluster, arn)? {
                    tasks.push(render(&kv, &rec, false));
                }
            }
            return Ok(json!({"tasks": tasks, "failures": done["failures"]}));
        }
        let (cluster_kv, _) = active_cluster(ctx, &l.cluster)?;
        let candidates = placement::candidates(ctx, &l.cluster)?;
        if candidates.is_empty() {
            return Err(ApiError::invalid("No Container Instances were found in your cluster."));
        }
        let views: Vec<_> = candidates.iter().map(|c| c.view.clone()).collect();
        let Plan { placements, rejections } = place(&views, &request);
        let failures: Vec<Value> = rejections
            .iter()
            .map(|(id, why)| json!({"arn": ctx.arns.container_instance(&l.cluster, id), "reason": why.reason()}))
            .collect();
        let snapshot: Vec<_> = candidates.into_iter().map(|c| (c.id, c.kv, c.record)).collect();
        let token = token_key.as_ref().map(|key| Token { key: key.clone(), failures: &failures });
        if let Some(created) = commit(ctx, &l, &cluster_kv, &snapshot, &placements, token, None).await? {
            return Ok(json!({"tasks": created_tasks(ctx, created)?, "failures": failures}));
        }
    }
    Err(contention())
}

pub async fn start(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let l = launch(ctx, &input)?;
    let wanted = strings(&input, "containerInstances");
    if wanted.is_empty() || wanted.len() > 10 {
        return Err(ApiError::invalid("containerInstances must name between 1 and 10 container instances."));
    }
    let timeout = ctx.app.config.agent_timeout.as_secs_f64();
    for _ in 0..MAX_ATTEMPTS {
        let (cluster_kv, _) = active_cluster(ctx, &l.cluster)?;
        let mut snapshot = Vec::new();
        let (mut placements, mut failures) = (Vec::new(), Vec::new());
        for given in &wanted {
            let id = match scoped_id(given, "container-instance") {
                Some((Some(c), id)) if c == l.cluster => Some(id),
                Some((None, id)) => Some(id),
                _ => None,
            };
            let arn = id.map(|id| ctx.arns.container_instance(&l.cluster, id)).unwrap_or_else(|| given.clone());
            let Some(kv) = id.map(|id| ctx.store().get(&ctx.keys.instance(&l.cluster, id))).transpose()?.flatten()
            else {
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
                continue;
            };
            let rec: InstanceRecord = decode(&kv)?;
            let id = id.expect("found by id").to_string();
            let mut remaining = rec.remaining();
            // An instance named twice takes two tasks: count what earlier ones took.
            for _ in placements.iter().filter(|p| **p == id) {
                remaining.reserve(&l.requirements);
            }
            let reason = match rec.status() {
                "INACTIVE" => Some("INACTIVE"),
                _ if !rec.connected(ctx.timestamp(), timeout) => Some("AGENT"),
                _ => remaining.shortfall(&l.requirements).map(|s| s.reason()),
            };
            match reason {
                Some(r) => failures.push(json!({"arn": arn, "reason": r})),
                None => placements.push(id.clone()),
            }
            snapshot.push((id, kv, rec));
        }
        if let Some(created) = commit(ctx, &l, &cluster_kv, &snapshot, &placements, None, None).await? {
            return Ok(json!({"tasks": created_tasks(ctx, created)?, "failures": failures}));
        }
    }
    Err(contention())
}

/// What a scheduler launch produced: the new tasks' ids, or why nothing could take them.
pub(crate) struct Launched {
    pub tasks: Vec<String>,
    /// Per instance that could not take a task: its id and ECS's reason.
    pub rejections: Vec<(String, &'static str)>,
}

/// Places and commits `count` tasks of `l` (on instance `only` when given), provided the
/// record at `guard` is still at revision `seen`: a scheduler acting on a stale view of its
/// service launches nothing (`Ok(None)`).
pub(crate) async fn launch_for(
    ctx: &Ctx<'_>,
    l: &Launch,
    count: usize,
    only: Option<&str>,
    (guard, seen): (&str, u64),
) -> ApiResult<Option<Launched>> {
    let guard_compare = Compare::unchanged(guard, seen);
    let request = Request {
        requirements: l.requirements.clone(),
        count,
        group: l.group.clone(),
        constraints: l.constraints.clone(),
        strategies: l.strategies.clone(),
        seed: placement::seed(),
    };
    for _ in 0..MAX_ATTEMPTS {
        let (cluster_kv, _) = active_cluster(ctx, &l.cluster)?;
        let mut candidates = placement::candidates(ctx, &l.cluster)?;
        candidates.retain(|c| only.is_none_or(|id| c.id == id));
        let views: Vec<_> = candidates.iter().map(|c| c.view.clone()).collect();
        let Plan { placements, rejections } = place(&views, &request);
        let rejections = rejections.iter().map(|(id, why)| (id.clone(), why.reason())).collect();
        let snapshot: Vec<_> = candidates.into_iter().map(|c| (c.id, c.kv, c.record)).collect();
        if placements.is_empty() {
            return Ok(Some(Launched { tasks: Vec::new(), rejections }));
        }
        match commit(ctx, l, &cluster_kv, &snapshot, &placements, None, Some(&guard_compare)).await? {
            Some(created) => {
                let tasks = created.iter().filter_map(|(key, _)| key.rsplit('/').next().map(str::to_string)).collect();
                return Ok(Some(Launched { tasks, rejections }));
            }
            None if ctx.store().get(guard)?.map(|kv| kv.mod_revision) != Some(seen) => return Ok(None),
            None => {}
        }
    }
    Err(contention())
}

/// Finds a task of `cluster` by id or ARN.
pub fn find_task(ctx: &Ctx<'_>, cluster: &str, given: &str) -> ApiResult<Option<(KeyValue, TaskRecord)>> {
    let id = match scoped_id(given, "task") {
        Some((Some(c), id)) if c == cluster => id,
        Some((None, id)) => id,
        _ => return Ok(None),
    };
    match ctx.store().get(&ctx.keys.task(cluster, id))? {
        Some(kv) => {
            let rec = decode(&kv)?;
            Ok(Some((kv, rec)))
        }
        None => Ok(None),
    }
}

pub fn render(kv: &KeyValue, rec: &TaskRecord, with_tags: bool) -> Value {
    let mut task = rec.task.clone();
    task.insert("version".into(), json!(kv.version));
    if !with_tags {
        task.remove("tags");
    }
    Value::Object(task)
}

/// Marks a task STOPPED now and gives its resources back to its instance: the compares and
/// writes for the instance, to commit together with the task's own write.
pub fn stopped_ops(ctx: &Ctx<'_>, cluster: &str, rec: &mut TaskRecord) -> ApiResult<(Vec<Compare>, Vec<Op>)> {
    let now = json!(ctx.timestamp());
    rec.task.insert("lastStatus".into(), json!("STOPPED"));
    rec.task.insert("desiredStatus".into(), json!("STOPPED"));
    for field in ["stoppingAt", "executionStoppedAt", "stoppedAt"] {
        rec.task.entry(field).or_insert(now.clone());
    }
    if let Some(containers) = rec.task.get_mut("containers").and_then(Value::as_array_mut) {
        for c in containers {
            c["lastStatus"] = json!("STOPPED");
        }
    }
    let instance = match rec.instance_id() {
        Some(id) => ctx.store().get(&ctx.keys.instance(cluster, id))?,
        None => None,
    };
    let Some(kv) = instance else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut inst: InstanceRecord = decode(&kv)?;
    let mut remaining = inst.remaining();
    remaining.release(&rec.requirements);
    inst.set_remaining(&remaining);
    Ok((vec![Compare::unchanged(&kv.key, kv.mod_revision)], vec![Op::put(&kv.key, encode(&inst))]))
}

pub async fn stop(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let given = text(&input, "task").unwrap_or_default().to_string();
    let reason = text(&input, "reason").unwrap_or("Task stopped by user").to_string();
    if reason.chars().count() > 255 {
        return Err(ApiError::invalid("reason can be at most 255 characters."));
    }
    active_cluster(ctx, &cluster)?;
    let (kv, rec) = request_stop(ctx, &cluster, &given, StopCode::UserInitiated, &reason)
        .await?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    Ok(json!({"task": render(&kv, &rec, false)}))
}

/// Asks a task to stop: its agent stops it, or, if no agent has claimed it yet, it is
/// STOPPED at once. A task already asked keeps its first code and reason.
pub(crate) async fn request_stop(
    ctx: &Ctx<'_>,
    cluster: &str,
    given: &str,
    code: StopCode,
    reason: &str,
) -> ApiResult<Option<(KeyValue, TaskRecord)>> {
    for _ in 0..MAX_ATTEMPTS {
        let Some((kv, mut rec)) = find_task(ctx, cluster, given)? else { return Ok(None) };
        if rec.field("desiredStatus") == Some("STOPPED") {
            return Ok(Some((kv, rec)));
        }
        rec.task.insert("stopCode".into(), json!(code.as_str()));
        rec.task.insert("stoppedReason".into(), json!(reason));
        let (mut compares, mut ops) = (vec![Compare::unchanged(&kv.key, kv.mod_revision)], Vec::new());
        if !rec.claimed && transition(rec.last_status(), TaskEvent::StopUnclaimed).is_ok() {
            let (c, o) = stopped_ops(ctx, cluster, &mut rec)?;
            compares.extend(c);
            ops.extend(o);
        } else {
            rec.task.insert("desiredStatus".into(), json!("STOPPED"));
            rec.task.entry("stoppingAt").or_insert(json!(ctx.timestamp()));
        }
        ops.push(Op::put(&kv.key, encode(&rec)));
        if ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            let kv = ctx.store().get(&kv.key)?.unwrap_or(kv);
            return Ok(Some((kv, rec)));
        }
    }
    Err(contention())
}

/// Marks a task STOPPED now whatever its agent would say: for tasks whose agent is lost.
pub(crate) async fn write_off(ctx: &Ctx<'_>, cluster: &str, id: &str, reason: &str) -> ApiResult<()> {
    for _ in 0..MAX_ATTEMPTS {
        let Some((kv, mut rec)) = find_task(ctx, cluster, id)? else { return Ok(()) };
        if rec.last_status() == TaskStatus::Stopped {
            return Ok(());
        }
        rec.task.entry("stopCode").or_insert(json!(StopCode::ServiceSchedulerInitiated.as_str()));
        rec.task.insert("stoppedReason".into(), json!(reason));
        let (mut compares, mut ops) = stopped_ops(ctx, cluster, &mut rec)?;
        compares.push(Compare::unchanged(&kv.key, kv.mod_revision));
        ops.push(Op::put(&kv.key, encode(&rec)));
        if ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            return Ok(());
        }
    }
    Err(contention())
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let wanted = strings(&input, "tasks");
    if wanted.is_empty() {
        return Err(ApiError::invalid("Tasks cannot be empty."));
    }
    if wanted.len() > 100 {
        return Err(ApiError::invalid("At most 100 tasks can be described at once."));
    }
    let with_tags = strings(&input, "include").iter().any(|i| i == "TAGS");
    let (mut tasks, mut failures) = (Vec::new(), Vec::new());
    for given in wanted {
        match find_task(ctx, &cluster, &given)? {
            Some((kv, rec)) => tasks.push(render(&kv, &rec, with_tags)),
            None => failures.push(missing(&given, |id| ctx.arns.task(&cluster, id))),
        }
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let limit = max_results(&input, 100)?;
    let instance = match text(&input, "containerInstance") {
        Some(given) => match scoped_id(given, "container-instance") {
            Some((_, id)) => Some(ctx.arns.container_instance(&cluster, id)),
            None => return Err(ApiError::invalid("Invalid containerInstance identifier.")),
        },
        None => None,
    };
    let family = text(&input, "family");
    let started_by = text(&input, "startedBy");
    // The service must exist (ECS: ServiceNotFoundException); given by ARN, its name.
    let service = match text(&input, "serviceName") {
        Some(given) => {
            let (_, rec) = super::services::find(ctx, &cluster, given)?.ok_or_else(ApiError::service_not_found)?;
            Some(rec.name().to_string())
        }
        None => None,
    };
    let launch_type = text(&input, "launchType");
    let desired = text(&input, "desiredStatus").unwrap_or("RUNNING");
    let mut items = Vec::new();
    for kv in ctx.store().list(&ctx.keys.tasks(&cluster))? {
        let rec: TaskRecord = decode(&kv)?;
        let definition_family =
            rec.field("taskDefinitionArn").and_then(berth_model::arn::task_definition_ref).map(|(f, _)| f);
        let keep = rec.field("desiredStatus") == Some(desired)
            && instance.as_deref().is_none_or(|i| rec.field("containerInstanceArn") == Some(i))
            && family.is_none_or(|f| definition_family == Some(f))
            && started_by.is_none_or(|s| rec.field("startedBy") == Some(s))
            && service.as_deref().is_none_or(|s| rec.field("group") == Some(&format!("service:{s}")))
            && launch_type.is_none_or(|t| rec.field("launchType") == Some(t));
        if keep {
            items.push((kv.key.clone(), rec.task["taskArn"].clone()));
        }
    }
    let (arns, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("taskArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}

/// Applies an agent's report to a task: the status must move forward; reaching STOPPED
/// gives the task's resources back to its instance.
pub async fn report(
    ctx: &Ctx<'_>,
    cluster: &str,
    given: &str,
    status: Option<TaskStatus>,
    apply: impl Fn(&mut TaskRecord),
) -> ApiResult<()> {
    for _ in 0..MAX_ATTEMPTS {
        let (kv, mut rec) =
            find_task(ctx, cluster, given)?.ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
        let current = rec.last_status();
        let next = transition(current, TaskEvent::Reported(status.unwrap_or(current)))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        rec.claimed = true;
        apply(&mut rec);
        let now = json!(ctx.timestamp());
        rec.task.insert("lastStatus".into(), json!(next.as_str()));
        if next == TaskStatus::Running {
            rec.task.entry("startedAt").or_insert(now.clone());
        }
        let (mut compares, mut ops) = (vec![Compare::unchanged(&kv.key, kv.mod_revision)], Vec::new());
        if next == TaskStatus::Stopped && current != TaskStatus::Stopped {
            // The agent does not send a stop code; ECS derives it: a task that never ran
            // failed to start, one that ran lost an essential container (unless a user or
            // scheduler stop already set the code).
            if !rec.task.contains_key("stopCode") {
                let code = if rec.task.contains_key("startedAt") {
                    StopCode::EssentialContainerExited
                } else {
                    StopCode::TaskFailedToStart
                };
                rec.task.insert("stopCode".into(), json!(code.as_str()));
            }
            let (c, o) = stopped_ops(ctx, cluster, &mut rec)?;
            compares.extend(c);
            ops.extend(o);
        }
        ops.push(Op::put(&kv.key, encode(&rec)));
        if ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            if next != current && matches!(next, TaskStatus::Running | TaskStatus::Stopped) {
                ctx.app.wake_scheduler();
            }
            return Ok(());
        }
    }
    Err(contention())
}
