//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
//!
//! Placing a task and taking its resources from the instance happen in one transaction,
//! guarded by the revisions of the cluster and of every instance involved, so two requests
//! never spend the same capacity. A task no agent has claimed is PENDING and stays so; a
//! stop before any agent claimed it ends it at once, since nothing runs yet.

use berth_model::arn::scoped_id;
use berth_model::launch::LaunchType;
use berth_model::task::{DesiredStatus, StopCode};
use berth_model::task_definition::requirements;
use berth_placement::{Plan, Rejection, Request, place};
use berth_store::{KeyValue, StoreExt};
use serde_json::{Value, json};

use super::task_definitions::resolve;
use super::{Ctx, Obj, active_cluster, check_tags, cluster_arg, decode, max_results, page, strings, text, with_token};
use super::{array, missing, placement};
use crate::error::{ApiError, ApiResult};
use berth_control::definitions::DefinitionRecord;
use berth_control::fargate;
use berth_control::records::{InstanceRecord, InstanceStatus, TaskRecord};
use berth_control::store::retry;
use berth_control::task_network::{self, NetworkRequest};
pub use berth_control::tasks::{Launch, find_task};
use berth_control::tasks::{StopRequest, Token, commit, request_stop};

/// What RunTask (`run`) and StartTask ask to launch, checked. StartTask always launches on
/// EC2: it names its container instances.
fn launch(ctx: &Ctx<'_>, input: &Obj, run: bool) -> ApiResult<Launch> {
    let cluster = cluster_arg(input)?;
    let (_, cluster_record) = active_cluster(ctx, &cluster)?;
    let given = text(input, "taskDefinition").unwrap_or_default();
    let (_, DefinitionRecord { definition, .. }) =
        resolve(ctx, given)?.ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    if definition.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return Err(ApiError::invalid("TaskDefinition is inactive"));
    }
    // A capacity provider strategy (given, or the cluster's default) launches on FARGATE.
    let strategy = if run { super::capacity_providers::of_launch(&cluster_record, input)? } else { None };
    let asked = if strategy.is_some() { Some(LaunchType::Fargate.as_str()) } else { text(input, "launchType") };
    let launch_type = check_launch_type(&definition, asked)?;
    check_platform(input, launch_type)?;
    let mut constraints = placement::constraints(&array(input, "placementConstraints"), false)?;
    let strategies = placement::strategies(&array(input, "placementStrategy"))?;
    let network = check_network(ctx, &definition, input, launch_type)?;
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
    if launch_type == LaunchType::Fargate && (!constraints.is_empty() || !strategies.is_empty()) {
        return Err(ApiError::invalid(
            "Task placement constraints and strategies are not supported with the FARGATE launch type.",
        ));
    }
    Ok(Launch {
        cluster,
        definition,
        requirements,
        constraints,
        strategies,
        overrides,
        started_by,
        group,
        tags,
        network,
        launch_type,
        strategy: strategy.unwrap_or_default(),
        capacity_providers: Vec::new(),
    })
}

/// A launch type the definition is not compatible with gets ECS's refusal; one it is
/// compatible with but Berth cannot run (EXTERNAL) gets Berth's. Without one, EC2.
pub(crate) fn check_launch_type(definition: &Obj, launch_type: Option<&str>) -> ApiResult<LaunchType> {
    let Some(lt) = launch_type else { return Ok(LaunchType::Ec2) };
    let compatible =
        definition.get("compatibilities").and_then(Value::as_array).is_some_and(|c| c.iter().any(|v| v == lt));
    if !compatible {
        return Err(ApiError::invalid(format!("Task definition does not support launch_type {lt}.")));
    }
    LaunchType::parse(lt)
        .ok_or_else(|| ApiError::invalid(format!("Berth does not run the {lt} launch type; use EC2 or FARGATE.")))
}

/// `platformVersion` belongs to FARGATE, where LATEST and 1.4.0 are what Berth runs.
pub(crate) fn check_platform(input: &Obj, launch_type: LaunchType) -> ApiResult<()> {
    let asked = text(input, "platformVersion");
    match launch_type {
        LaunchType::Fargate => berth_model::launch::platform_version(asked).map(|_| ()).map_err(Into::into),
        LaunchType::Ec2 if asked.is_some() => {
            Err(ApiError::invalid("The platform version must be null when specifying an EC2 launch type."))
        }
        LaunchType::Ec2 => Ok(()),
    }
}

/// `networkConfiguration` is required with the awsvpc network mode and refused without it,
/// its subnets and security groups must exist in one VPC; before that, the definition's
/// members that depend on the launch type are checked. The awsvpc request, if any.
pub(crate) fn check_network(
    ctx: &Ctx<'_>,
    definition: &Obj,
    input: &Obj,
    launch_type: LaunchType,
) -> ApiResult<Option<NetworkRequest>> {
    berth_model::members::check_launch(definition, launch_type.as_str())?;
    let mode = definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge");
    let request = task_network::parse(mode, input.get("networkConfiguration"), launch_type)
        .map_err(|e| ApiError::invalid(e.0))?;
    if let Some(r) = &request {
        task_network::check(ctx, r)?.map_err(|e| ApiError::invalid(e.0))?;
    }
    Ok(request)
}

/// RunTask's `failures`: each instance that could not take a task, by its ARN; for FARGATE
/// (whose hosts are not the user's), one entry per task that found no room, as ECS words it.
fn failures(ctx: &Ctx<'_>, l: &Launch, rejections: &[(String, Rejection)], unplaced: usize) -> Vec<Value> {
    match l.launch_type {
        LaunchType::Ec2 => rejections
            .iter()
            .map(|(id, why)| json!({"arn": ctx.arns.container_instance(&l.cluster, id), "reason": why.reason()}))
            .collect(),
        LaunchType::Fargate => {
            let one = json!({"reason": fargate::NO_CAPACITY, "detail": fargate::shortage(rejections)});
            vec![one; unplaced]
        }
    }
}

/// Renders freshly created tasks with their store version.
fn created_tasks(ctx: &Ctx<'_>, created: Vec<(String, TaskRecord)>) -> ApiResult<Vec<Value>> {
    created
        .into_iter()
        .map(|(key, rec)| {
            let mut task = rec.ecs();
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
    let mut l = launch(ctx, &input, true)?;
    // ECS applies a strategy's base and weights within one RunTask call.
    l.capacity_providers = berth_model::capacity::distribute(&l.strategy, &mut Default::default(), count as usize);
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
        seed: ctx.control.ids.seed(),
    };
    let (l, request, token_key) = (&l, &request, &token_key);
    retry(move || async move {
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
            return Ok(Some(json!({"tasks": tasks, "failures": done["failures"]})));
        }
        let (cluster_kv, _) = active_cluster(ctx, &l.cluster)?;
        let candidates = match l.launch_type {
            LaunchType::Ec2 => placement::candidates(ctx, &l.cluster).await?,
            LaunchType::Fargate => fargate::candidates_for(ctx, l.wants_public_ip())?,
        };
        if candidates.is_empty() && l.launch_type == LaunchType::Ec2 {
            return Err(ApiError::invalid("No Container Instances were found in your cluster."));
        }
        if candidates.is_empty() && l.wants_public_ip() && !fargate::candidates(ctx)?.is_empty() {
            return Err(ApiError::invalid(fargate::NO_PUBLIC_ADDRESSES));
        }
        let views: Vec<_> = candidates.iter().map(|c| c.view.clone()).collect();
        let Plan { placements, rejections } = place(&views, request);
        let failures = failures(ctx, l, &rejections, request.count - placements.len());
        let snapshot: Vec<_> = candidates.into_iter().map(|c| (c.id, c.kv, c.record)).collect();
        let token = token_key.as_ref().map(|key| Token { key: key.clone(), failures: &failures });
        if let Some(created) = commit(ctx, l, &cluster_kv, snapshot, &placements, token, None).await? {
            return Ok(Some(json!({"tasks": created_tasks(ctx, created)?, "failures": failures})));
        }
        Ok(None)
    })
    .await
}

pub async fn start(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let l = launch(ctx, &input, false)?;
    let wanted = strings(&input, "containerInstances");
    if wanted.is_empty() || wanted.len() > 10 {
        return Err(ApiError::invalid("containerInstances must name between 1 and 10 container instances."));
    }
    let timeout = ctx.config().agent_timeout.as_secs_f64();
    let (l, wanted) = (&l, &wanted);
    retry(move || async move {
        let (cluster_kv, _) = active_cluster(ctx, &l.cluster)?;
        let mut snapshot = Vec::new();
        let (mut placements, mut failures) = (Vec::new(), Vec::new());
        for given in wanted {
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
            let reason = match rec.status {
                InstanceStatus::Inactive => Some("INACTIVE"),
                _ if !rec.connected(ctx.timestamp(), timeout) => Some("AGENT"),
                _ => remaining.shortfall(&l.requirements).map(|s| s.reason()),
            };
            match reason {
                Some(r) => failures.push(json!({"arn": arn, "reason": r})),
                None => placements.push(id.clone()),
            }
            snapshot.push((id, kv, rec));
        }
        if let Some(created) = commit(ctx, l, &cluster_kv, snapshot, &placements, None, None).await? {
            return Ok(Some(json!({"tasks": created_tasks(ctx, created)?, "failures": failures})));
        }
        Ok(None)
    })
    .await
}

pub fn render(kv: &KeyValue, rec: &TaskRecord, with_tags: bool) -> Value {
    let mut task = rec.ecs();
    task.insert("version".into(), json!(kv.version));
    if !with_tags {
        task.remove("tags");
    }
    Value::Object(task)
}

pub async fn stop(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let given = text(&input, "task").unwrap_or_default().to_string();
    let reason = text(&input, "reason").unwrap_or("Task stopped by user").to_string();
    if reason.chars().count() > 255 {
        return Err(ApiError::invalid("reason can be at most 255 characters."));
    }
    active_cluster(ctx, &cluster)?;
    let stop = StopRequest { code: StopCode::UserInitiated, reason: &reason, failure: None, warning: None };
    let (kv, rec) = request_stop(ctx, &cluster, &given, stop)
        .await?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    Ok(json!({"task": render(&kv, &rec, false)}))
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
    // The model's enum also has PENDING, which no Berth task ever wants: it lists nothing.
    let desired = text(&input, "desiredStatus").map_or(Some(DesiredStatus::Running), DesiredStatus::parse);
    let mut items = Vec::new();
    for kv in ctx.store().list(&ctx.keys.tasks(&cluster))? {
        let rec: TaskRecord = decode(&kv)?;
        let definition_family =
            rec.field("taskDefinitionArn").and_then(berth_model::arn::task_definition_ref).map(|(f, _)| f);
        let keep = Some(rec.desired_status) == desired
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
