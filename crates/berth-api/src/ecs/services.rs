//! Services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices,
//! ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment.
//!
//! A handler only records what the user wants (and, for a new task definition, a new primary
//! deployment); the service scheduler (`scheduler.rs`) does the launching and stopping. The
//! record keeps the ECS `Service` object, the scheduler's memory and the counts of its last
//! pass together, so one compare-and-swap covers them all.

use std::collections::BTreeMap;

pub use berth_control::services::{ServiceRecord, ServiceStatus};
use berth_model::arn::scoped_id;
use berth_scheduler::{Controller, Deployment, Outcome, Rollout, Scheduling, State, Strategy, TaskSet, TaskSetStatus};
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::task_definitions::resolve;
use super::tasks::{check_launch_type, check_network, check_platform};
use super::{
    Ctx, Obj, active_cluster, array, check_tags, cluster_arg, decode, encode, max_results, missing, page, placement,
    strings, text, with_token,
};
use super::{load_balancers, service_connect, service_registries};
use crate::error::{ApiError, ApiResult};
use berth_control::definitions::DefinitionRecord;
use berth_control::store::retry;
use berth_model::launch::LaunchType;

/// How services are rendered as ECS `Service` objects (the record is the domain's).
pub trait RenderService {
    fn render(&self, ctx: &Ctx<'_>, with_tags: bool) -> Value;
    fn deployment(&self, d: &Deployment) -> Value;
}

impl RenderService for ServiceRecord {
    /// The ECS `Service` object.
    fn render(&self, ctx: &Ctx<'_>, with_tags: bool) -> Value {
        let mut s = self.service.clone();
        s.insert("status".into(), json!(self.status.as_str()));
        let connect = service_connect::shown(&mut s);
        let deployments: Vec<Value> = self
            .scheduler
            .deployments
            .iter()
            .map(|d| {
                let mut shown = self.deployment(d);
                if let Some((config, resources)) = &connect {
                    shown[service_connect::CONFIG] = config.clone();
                    shown[service_connect::RESOURCES] = resources.clone();
                }
                shown
            })
            .collect();
        s.insert("deployments".into(), Value::Array(deployments));
        if self.controller().task_sets() {
            let sets = self.scheduler.task_sets.iter().map(|t| super::task_sets::render(ctx, self, t, false)).collect();
            s.insert("taskSets".into(), Value::Array(sets));
            match self.scheduler.primary_task_set() {
                Some(p) => s.insert("taskDefinition".into(), json!(p.task_definition)),
                None => s.remove("taskDefinition"),
            };
        }
        if let Some(p) = self.scheduler.primary() {
            s.insert("taskDefinition".into(), json!(p.task_definition));
            let cluster = self.cluster();
            s.insert("currentServiceDeployment".into(), json!(deployment_arn(ctx, &cluster, self.name(), &p.id)));
        }
        if !with_tags {
            s.remove("tags");
        }
        Value::Object(s)
    }

    /// One entry of `deployments`.
    fn deployment(&self, d: &Deployment) -> Value {
        let [desired, running, pending] = self.counts.get(&d.id).copied().unwrap_or_default();
        json!({
            "id": d.id,
            "status": if d.primary { "PRIMARY" } else { "ACTIVE" },
            "taskDefinition": d.task_definition,
            "desiredCount": desired,
            "pendingCount": pending,
            "runningCount": running,
            "failedTasks": d.failed_tasks,
            "createdAt": d.created_at,
            "updatedAt": d.updated_at,
            "launchType": self.service.get("launchType"),
            "capacityProviderStrategy": self.service.get("capacityProviderStrategy"),
            "rolloutState": d.rollout.as_str(),
            "rolloutStateReason": d.rollout_reason,
        })
    }
}

pub(super) fn service_not_found() -> ApiError {
    ApiError::service_not_found()
}

pub(super) fn service_not_active() -> ApiError {
    ApiError::new(400, "ServiceNotActiveException", "Service was not ACTIVE.")
}

fn deployment_arn(ctx: &Ctx<'_>, cluster: &str, service: &str, id: &str) -> String {
    ctx.arns.service_deployment(cluster, service, id.trim_start_matches("ecs-svc/"))
}

/// A service given by name or ARN: its name, if the ARN's cluster (when it names one) matches.
fn service_name<'a>(given: &'a str, cluster: &str) -> Option<&'a str> {
    match scoped_id(given, "service")? {
        (Some(c), name) if c == cluster => Some(name),
        (None, name) => Some(name),
        _ => None,
    }
}

pub fn find(ctx: &Ctx<'_>, cluster: &str, given: &str) -> ApiResult<Option<(KeyValue, ServiceRecord)>> {
    let Some(name) = service_name(given, cluster) else { return Ok(None) };
    match ctx.store().get(&ctx.keys.service(cluster, name))? {
        Some(kv) => {
            let rec = decode(&kv)?;
            Ok(Some((kv, rec)))
        }
        None => Ok(None),
    }
}

/// A task definition a service may run: ACTIVE, resolved to its record.
pub(super) fn runnable(ctx: &Ctx<'_>, given: &str) -> ApiResult<DefinitionRecord> {
    let (_, rec) = resolve(ctx, given)?.ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    if rec.definition.get("status").and_then(Value::as_str) != Some("ACTIVE") {
        return Err(ApiError::client("TaskDefinition is inactive"));
    }
    Ok(rec)
}

/// Fields Berth does not act on yet: refused rather than silently ignored.
pub(super) fn refuse_unsupported(input: &Obj) -> ApiResult<()> {
    for (field, what) in
        [("volumeConfigurations", "service volume configurations"), ("vpcLatticeConfigurations", "VPC Lattice")]
    {
        let given = match input.get(field) {
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if given {
            return Err(ApiError::invalid(format!("Berth does not support {what} for services yet.")));
        }
    }
    Ok(())
}

/// `clientToken`: 1 to 36 ASCII characters in 33-126, as ECS allows.
pub(super) fn client_token(input: &Obj) -> ApiResult<Option<String>> {
    let token = text(input, "clientToken").map(str::to_string);
    if token.as_ref().is_some_and(|t| t.is_empty() || t.len() > 36 || !t.bytes().all(|b| (33..=126).contains(&b))) {
        return Err(ApiError::invalid("clientToken must be 1 to 36 ASCII characters in the range 33-126."));
    }
    Ok(token)
}

/// `deploymentController.type`, ECS when omitted.
fn controller_arg(input: &Obj) -> Controller {
    match input.get("deploymentController").and_then(|c| c["type"].as_str()) {
        Some("EXTERNAL") => Controller::External,
        Some("CODE_DEPLOY") => Controller::CodeDeploy,
        _ => Controller::Ecs,
    }
}

/// What CreateService may not name when task sets carry it (ECS's messages where known).
fn check_task_set_service(input: &Obj, controller: Controller, scheduling: Scheduling) -> ApiResult<()> {
    if scheduling == Scheduling::Daemon {
        return Err(ApiError::invalid(format!(
            "The DAEMON scheduling strategy does not support the {} deployment controller.",
            controller.as_str()
        )));
    }
    if controller == Controller::External {
        match text(input, "taskDefinition") {
            Some("") => return Err(ApiError::invalid("Family should not be null or empty.")),
            Some(_) => return Err(ApiError::invalid("TaskDefinition must be blank.")),
            None => {}
        }
        if input.get("loadBalancers").and_then(Value::as_array).is_some_and(|l| !l.is_empty()) {
            return Err(ApiError::invalid("LoadBalancers must be empty or null."));
        }
        for (field, name) in [
            ("networkConfiguration", "NetworkConfiguration"),
            ("launchType", "LaunchType"),
            ("platformVersion", "PlatformVersion"),
            ("serviceRegistries", "ServiceRegistries"),
            ("capacityProviderStrategy", "CapacityProviderStrategy"),
        ] {
            if input.get(field).is_some_and(|v| !v.is_null()) {
                return Err(ApiError::invalid(format!("{name} must be null.")));
            }
        }
    }
    Ok(())
}

/// `deploymentConfiguration` merged over `current`, with ECS's defaults and bounds.
fn deployment_configuration(
    given: Option<&Value>,
    current: Option<&Value>,
    scheduling: Scheduling,
    controller: Controller,
) -> ApiResult<Value> {
    let (default_max, default_min) = match scheduling {
        Scheduling::Replica => (200, 100),
        Scheduling::Daemon => (100, 0),
    };
    let pick = |field: &str, default: i64| {
        given
            .and_then(|g| g.get(field))
            .and_then(Value::as_i64)
            .or_else(|| current.and_then(|c| c.get(field)).and_then(Value::as_i64))
            .unwrap_or(default)
    };
    let max = pick("maximumPercent", default_max);
    let min = pick("minimumHealthyPercent", default_min);
    if !(0..=100).contains(&min) {
        return Err(ApiError::invalid("minimumHealthyPercent must be between 0 and 100."));
    }
    if scheduling == Scheduling::Replica && !(100..=200).contains(&max) {
        return Err(ApiError::invalid(
            "maximumPercent must be between 100 and 200 for the REPLICA scheduling strategy.",
        ));
    }
    if scheduling == Scheduling::Daemon && max != 100 {
        return Err(ApiError::invalid("maximumPercent must be 100 for the DAEMON scheduling strategy."));
    }
    if min == 100 && max == 100 {
        return Err(ApiError::invalid(
            "minimumHealthyPercent 100 with maximumPercent 100 leaves no room to replace a task.",
        ));
    }
    let breaker = given
        .and_then(|g| g.get("deploymentCircuitBreaker"))
        .or_else(|| current.and_then(|c| c.get("deploymentCircuitBreaker")))
        .cloned()
        .unwrap_or_else(|| json!({"enable": false, "rollback": false}));
    if controller.task_sets() {
        // ECS keeps the defaults for task sets: they bound only tasks on draining instances.
        if (min, max) != (100, 200) {
            return Err(ApiError::invalid(format!(
                "minimumHealthyPercent and maximumPercent keep their defaults (100 and 200) with the {} deployment \
                 controller.",
                controller.as_str()
            )));
        }
        if breaker["enable"].as_bool() == Some(true) {
            return Err(ApiError::invalid(
                "The deployment circuit breaker can only be used for services using the rolling update (ECS) \
                 deployment type.",
            ));
        }
    }
    for unsupported in ["alarms", "lifecycleHooks"] {
        if given.and_then(|g| g.get(unsupported)).is_some_and(|v| !v.is_null()) {
            let why = if unsupported == "alarms" { "yet" } else { "(its hooks are Lambda functions)" };
            return Err(ApiError::invalid(format!(
                "Berth does not support deploymentConfiguration.{unsupported} {why}."
            )));
        }
    }
    let mut out = json!({
        "deploymentCircuitBreaker": breaker,
        "maximumPercent": max,
        "minimumHealthyPercent": min,
    });
    out.as_object_mut().expect("object").extend(shifting(given, current, scheduling, controller)?);
    Ok(out)
}

/// The strategy part of `deploymentConfiguration` (`strategy`, `bakeTimeInMinutes`,
/// `linearConfiguration`, `canaryConfiguration`) merged over `current`, checked on its own;
/// whether the service's load balancers can shift traffic is [`check_shifting`]'s.
fn shifting(
    given: Option<&Value>,
    current: Option<&Value>,
    scheduling: Scheduling,
    controller: Controller,
) -> ApiResult<Obj> {
    let pick = |field: &str| {
        given.and_then(|g| g.get(field)).filter(|v| !v.is_null()).or_else(|| current.and_then(|c| c.get(field)))
    };
    let strategy = match pick("strategy") {
        None => "ROLLING",
        Some(Value::String(s)) if ["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"].contains(&s.as_str()) => s.as_str(),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "strategy {other} is not one of ROLLING, BLUE_GREEN, LINEAR and CANARY."
            )));
        }
    };
    let mut out = Obj::new();
    out.insert("strategy".into(), json!(strategy));
    if strategy != "ROLLING" && (scheduling == Scheduling::Daemon || controller.task_sets()) {
        return Err(ApiError::invalid(format!(
            "The {strategy} deployment strategy needs the REPLICA scheduling strategy and the ECS deployment controller."
        )));
    }
    let minutes = |field: &str, v: &Value| match v.as_i64() {
        Some(n) if (0..=1440).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(format!("{field} must be between 0 and 1440."))),
    };
    if let Some(b) = pick("bakeTimeInMinutes") {
        out.insert("bakeTimeInMinutes".into(), json!(minutes("bakeTimeInMinutes", b)?));
    }
    let settings = [
        ("linearConfiguration", "LINEAR", "stepPercent", 3.0, "stepBakeTimeInMinutes"),
        ("canaryConfiguration", "CANARY", "canaryPercent", 0.1, "canaryBakeTimeInMinutes"),
    ];
    for (field, owner, percent, least, bake) in settings {
        let Some(v) = pick(field) else {
            if strategy == owner {
                return Err(ApiError::invalid(format!("{field} is required with the {owner} deployment strategy.")));
            }
            continue;
        };
        // A configuration kept from an earlier strategy stays; one given now must fit.
        if strategy != owner && given.and_then(|g| g.get(field)).is_some_and(|g| !g.is_null()) {
            return Err(ApiError::invalid(format!("{field} applies to the {owner} deployment strategy only.")));
        }
        let p = match v.get(percent).and_then(Value::as_f64) {
            Some(p) if (least..=100.0).contains(&p) => p,
            _ => return Err(ApiError::invalid(format!("{field}.{percent} must be between {least} and 100."))),
        };
        let b = minutes(&format!("{field}.{bake}"), v.get(bake).unwrap_or(&json!(0)))?;
        out.insert(field.into(), json!({percent: p, bake: b}));
    }
    Ok(out)
}

fn grace_period(input: &Obj) -> ApiResult<Option<i64>> {
    match input.get("healthCheckGracePeriodSeconds").and_then(Value::as_i64) {
        Some(n) if !(0..=2_147_483_647).contains(&n) => {
            Err(ApiError::invalid("healthCheckGracePeriodSeconds must be between 0 and 2147483647."))
        }
        other => Ok(other),
    }
}

/// A CreateService request, checked: everything a new record is built from.
struct NewService {
    cluster: String,
    name: String,
    controller: Controller,
    scheduling: Scheduling,
    desired: i64,
    definition: Option<String>,
    configuration: Value,
    grace: Option<i64>,
    token: Option<String>,
    launch_type: LaunchType,
    /// The capacity provider strategy, when the service launches by one (then it shows no
    /// `launchType`).
    strategy: Option<Value>,
    /// The checked `loadBalancers`.
    load_balancers: Value,
    /// The checked `serviceRegistries`.
    registries: Value,
    /// The checked `serviceConnectConfiguration`, when Service Connect is on.
    connect: Option<service_connect::Plan>,
}

/// Checks a CreateService request against ECS's rules (and what Berth cannot do yet).
fn new_service(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<NewService> {
    let cluster = cluster_arg(input)?;
    let name = text(input, "serviceName").unwrap_or_default().to_string();
    if !berth_model::names::is_valid_name(&name) {
        return Err(ApiError::invalid(
            "Service name can have up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.",
        ));
    }
    let (_, cluster_record) = active_cluster(ctx, &cluster)?;
    let controller = controller_arg(input);
    let scheduling = match text(input, "schedulingStrategy") {
        Some("DAEMON") => Scheduling::Daemon,
        _ => Scheduling::Replica,
    };
    if controller.task_sets() {
        check_task_set_service(input, controller, scheduling)?;
    }
    refuse_unsupported(input)?;
    let token = client_token(input)?;
    let desired = match (scheduling, input.get("desiredCount").and_then(Value::as_i64)) {
        (Scheduling::Replica, None) => {
            return Err(ApiError::invalid("desiredCount is required for the REPLICA scheduling strategy."));
        }
        (Scheduling::Replica, Some(n)) if n < 0 => return Err(ApiError::invalid("desiredCount must be 0 or more.")),
        (Scheduling::Replica, Some(n)) => n,
        (Scheduling::Daemon, Some(_)) => {
            return Err(ApiError::invalid(
                "The daemon scheduling strategy does not support a desired count for services.",
            ));
        }
        (Scheduling::Daemon, None) => 0,
    };
    let definition = match text(input, "taskDefinition") {
        _ if controller == Controller::External => None,
        Some(given) => Some(runnable(ctx, given)?),
        None => {
            return Err(ApiError::invalid(format!(
                "A task definition is required for the {} deployment controller.",
                controller.as_str()
            )));
        }
    };
    // A capacity provider strategy (given, or the cluster's default) launches on FARGATE.
    let strategy =
        if controller.task_sets() { None } else { super::capacity_providers::of_launch(&cluster_record, input)? };
    let asked = if strategy.is_some() { Some(LaunchType::Fargate.as_str()) } else { text(input, "launchType") };
    let launch_type = match (&definition, asked) {
        (Some(d), given) => check_launch_type(&d.definition, given)?,
        (None, None) => LaunchType::Ec2,
        (None, Some(lt)) => LaunchType::parse(lt).ok_or_else(|| {
            ApiError::invalid(format!("Berth does not run the {lt} launch type; use EC2 or FARGATE."))
        })?,
    };
    check_platform(input, launch_type)?;
    if let Some(d) = &definition {
        check_network(ctx, &d.definition, input, launch_type)?;
    }
    if controller == Controller::CodeDeploy && !array(input, "loadBalancers").is_empty() {
        return Err(ApiError::invalid(
            "Berth does not support load balancers for services of the CODE_DEPLOY deployment controller yet.",
        ));
    }
    let load_balancers = match &definition {
        Some(d) => load_balancers::check(ctx, input.get("loadBalancers"), &d.definition)?,
        None => json!([]),
    };
    let registries = match &definition {
        Some(d) => service_registries::check(ctx, input.get("serviceRegistries"), &d.definition)?,
        None => json!([]),
    };
    let connect = match &definition {
        Some(d) => service_connect::check(ctx, input.get(service_connect::CONFIG), &cluster_record, &d.definition)?,
        None => None,
    };
    if controller != Controller::Ecs && input.get(service_connect::CONFIG).is_some_and(|c| !c.is_null()) {
        return Err(ApiError::invalid(format!(
            "Berth supports Service Connect for services of the ECS deployment controller only, not {}.",
            controller.as_str()
        )));
    }
    let strategies = array(input, "placementStrategy");
    let constraints = array(input, "placementConstraints");
    placement::constraints(&constraints, false)?;
    placement::strategies(&strategies)?;
    if scheduling == Scheduling::Daemon && !strategies.is_empty() {
        return Err(ApiError::invalid("Placement strategies are not supported with the DAEMON scheduling strategy."));
    }
    if launch_type == LaunchType::Fargate {
        if scheduling == Scheduling::Daemon {
            return Err(ApiError::invalid(
                "The DAEMON scheduling strategy is not supported with the FARGATE launch type.",
            ));
        }
        if !strategies.is_empty() || !constraints.is_empty() {
            return Err(ApiError::invalid(
                "Task placement constraints and strategies are not supported with the FARGATE launch type.",
            ));
        }
    }
    let configuration = deployment_configuration(input.get("deploymentConfiguration"), None, scheduling, controller)?;
    load_balancers::check_shifting(&configuration, &load_balancers)?;
    let grace = grace_period(input)?;
    check_tags(&array(input, "tags"))?;
    let definition = definition.and_then(|d| d.definition["taskDefinitionArn"].as_str().map(str::to_string));
    Ok(NewService {
        cluster,
        name,
        controller,
        scheduling,
        desired,
        definition,
        configuration,
        grace,
        token,
        launch_type,
        strategy: strategy.map(|s| serde_json::to_value(s).unwrap_or_default()),
        load_balancers,
        registries,
        connect,
    })
}

/// A check of a service member against the task definition its tasks run.
type Check = fn(&Ctx<'_>, Option<&Value>, &Obj) -> ApiResult<Value>;

/// The ECS `Service` object of a new service, and its first deployment.
fn new_record(
    ctx: &Ctx<'_>,
    new: &NewService,
    input: &Obj,
    revision: u64,
    connect: Option<&service_connect::Made>,
) -> ServiceRecord {
    let now = ctx.timestamp();
    let flag = |k: &str| json!(input.get(k).and_then(Value::as_bool).unwrap_or(false));
    let mut service = Obj::new();
    service.insert("serviceArn".into(), json!(ctx.arns.service(&new.cluster, &new.name)));
    service.insert("serviceName".into(), json!(new.name));
    service.insert("clusterArn".into(), json!(ctx.arns.cluster(&new.cluster)));
    service.insert("loadBalancers".into(), new.load_balancers.clone());
    service.insert("serviceRegistries".into(), new.registries.clone());
    service_connect::keep(&mut service, connect);
    service.insert("desiredCount".into(), json!(new.desired));
    service.insert("runningCount".into(), json!(0));
    service.insert("pendingCount".into(), json!(0));
    match &new.strategy {
        Some(strategy) => service.insert("capacityProviderStrategy".into(), strategy.clone()),
        None => service.insert("launchType".into(), json!(new.launch_type.as_str())),
    };
    if new.launch_type == LaunchType::Fargate {
        service.insert("platformVersion".into(), json!(text(input, "platformVersion").unwrap_or("LATEST")));
        service.insert("platformFamily".into(), json!("Linux"));
    }
    if let Some(arn) = &new.definition {
        service.insert("taskDefinition".into(), json!(arn));
    }
    service.insert("deploymentConfiguration".into(), new.configuration.clone());
    if let Some(role) = text(input, "role") {
        service.insert("roleArn".into(), json!(role));
    }
    service.insert("events".into(), json!([]));
    service.insert("createdAt".into(), json!(now));
    service.insert("placementConstraints".into(), Value::Array(array(input, "placementConstraints")));
    service.insert("placementStrategy".into(), Value::Array(array(input, "placementStrategy")));
    if let Some(n) = input.get("networkConfiguration").filter(|n| !n.is_null()) {
        service.insert("networkConfiguration".into(), n.clone());
    }
    if let Some(g) = new.grace {
        service.insert("healthCheckGracePeriodSeconds".into(), json!(g));
    }
    let scheduling = if new.scheduling == Scheduling::Daemon { "DAEMON" } else { "REPLICA" };
    service.insert("schedulingStrategy".into(), json!(scheduling));
    service.insert("deploymentController".into(), json!({"type": new.controller.as_str()}));
    service.insert("tags".into(), Value::Array(array(input, "tags")));
    service.insert("createdBy".into(), json!(ctx.principal()));
    service.insert("enableECSManagedTags".into(), flag("enableECSManagedTags"));
    service.insert("propagateTags".into(), json!(text(input, "propagateTags").unwrap_or("NONE")));
    service.insert("enableExecuteCommand".into(), flag("enableExecuteCommand"));
    let id = ctx.control.ids.deployment_id();
    ServiceRecord {
        service,
        status: ServiceStatus::Active,
        scheduler: first_deployment(new.controller, new.definition.clone(), now, revision, id),
        counts: BTreeMap::new(),
        client_token: new.token.clone(),
    }
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let new = &new_service(ctx, &input)?;
    let (input, key) = (&input, &ctx.keys.service(&new.cluster, &new.name));
    // Service Connect's Cloud Map services are made first, unless the request would fail as
    // a duplicate anyway (a retry with the same token answers the service as it is).
    let connect = match &new.connect {
        Some(plan) if !duplicate(ctx, key)? => Some(service_connect::make(ctx, plan).await?),
        _ => None,
    };
    let connect = &connect;
    retry(move || async move {
        let existing = ctx.store().get(key)?;
        if let Some(kv) = &existing {
            let rec: ServiceRecord = decode(kv)?;
            if rec.status != ServiceStatus::Inactive {
                if new.token.is_some() && rec.client_token == new.token {
                    return Ok(Some(json!({"service": rec.render(ctx, false)})));
                }
                return Err(ApiError::invalid("Creation of service was not idempotent."));
            }
        }
        if new.connect.is_some() && connect.is_none() {
            // Made meanwhile: answered below as the duplicate it is.
            if let Some(kv) = &existing {
                let rec: ServiceRecord = decode(kv)?;
                if new.token.is_some() && rec.client_token == new.token {
                    return Ok(Some(json!({"service": rec.render(ctx, false)})));
                }
            }
            return Err(ApiError::invalid("Creation of service was not idempotent."));
        }
        let rec = new_record(ctx, new, input, ctx.store().revision()?, connect.as_ref());
        let (cluster_kv, _) = active_cluster(ctx, &new.cluster)?;
        let compares = vec![
            Compare::unchanged(key, existing.as_ref().map(|kv| kv.mod_revision).unwrap_or(0)),
            Compare::unchanged(&cluster_kv.key, cluster_kv.mod_revision),
        ];
        let ops = vec![Op::put(key, encode(&rec)), Op::put(&ctx.keys.scheduled(&new.cluster, &new.name), Vec::new())];
        if ctx.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            ctx.control.wake_scheduler();
            return Ok(Some(json!({"service": rec.render(ctx, false)})));
        }
        Ok(None)
    })
    .await
}

/// Whether a service of that key exists and is not INACTIVE (CreateService then makes nothing).
fn duplicate(ctx: &Ctx<'_>, key: &str) -> ApiResult<bool> {
    match ctx.store().get(key)? {
        Some(kv) => Ok(decode::<ServiceRecord>(&kv)?.status != ServiceStatus::Inactive),
        None => Ok(false),
    }
}

/// What the scheduler starts a new service with: a deployment of its task definition (ECS),
/// one PRIMARY task set of it at 100% (CODE_DEPLOY, as ECS creates one), or nothing
/// (EXTERNAL: the user creates task sets).
fn first_deployment(controller: Controller, definition: Option<String>, now: f64, revision: u64, id: String) -> State {
    let mut state = State::default();
    match (controller, definition) {
        // The first deployment has nothing to shift traffic from: it rolls out on the primary
        // target groups.
        (Controller::Ecs, Some(d)) => state.start_deployment(Deployment::new(id, d, now, revision), Strategy::Rolling),
        (Controller::CodeDeploy, Some(d)) => {
            let mut set = TaskSet::new(id, d, 100.0, now, revision);
            set.status = TaskSetStatus::Primary;
            state.task_sets.push(set);
        }
        _ => {}
    }
    state
}

/// Writes a changed service record unless someone else changed it first (`false`: retry),
/// and wakes the scheduler.
pub(super) async fn save_record(ctx: &Ctx<'_>, kv: &KeyValue, rec: &ServiceRecord) -> ApiResult<bool> {
    let txn = Txn::new()
        .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
        .and_then(vec![Op::put(&kv.key, encode(rec))]);
    let saved = ctx.store().txn(txn).await?.succeeded;
    if saved {
        ctx.control.wake_scheduler();
    }
    Ok(saved)
}

/// [`save_record`], answering with the service.
async fn save(ctx: &Ctx<'_>, kv: &KeyValue, rec: &ServiceRecord) -> ApiResult<Option<Value>> {
    Ok(save_record(ctx, kv, rec).await?.then(|| json!({"service": rec.render(ctx, false)})))
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let given = text(&input, "service").unwrap_or_default().to_string();
    active_cluster(ctx, &cluster)?;
    refuse_unsupported(&input)?;
    if !array(&input, "capacityProviderStrategy").is_empty() {
        return Err(ApiError::invalid("Berth does not change a service's capacity provider strategy yet."));
    }
    let grace = grace_period(&input)?;
    let constraints = input.get("placementConstraints").and_then(Value::as_array).cloned();
    let strategies = input.get("placementStrategy").and_then(Value::as_array).cloned();
    if let Some(c) = &constraints {
        placement::constraints(c, false)?;
    }
    if let Some(s) = &strategies {
        placement::strategies(s)?;
    }
    let force = input.get("forceNewDeployment").and_then(Value::as_bool).unwrap_or(false);
    let (cluster, constraints, given, input, strategies) = (&cluster, &constraints, &given, &input, &strategies);
    retry(move || async move {
        let (kv, mut rec) = find(ctx, cluster, given)?.ok_or_else(service_not_found)?;
        if rec.status != ServiceStatus::Active {
            return Err(service_not_active());
        }
        let controller = rec.controller();
        check_update(controller, input)?;
        let definition = match text(input, "taskDefinition") {
            Some(t) => Some(runnable(ctx, t)?),
            None => None,
        };
        let scheduling = rec.scheduling();
        if let Some(n) = input.get("desiredCount").and_then(Value::as_i64) {
            rec.set_desired(n).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        if scheduling == Scheduling::Daemon && strategies.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid(
                "Placement strategies are not supported with the DAEMON scheduling strategy.",
            ));
        }
        let configuration = deployment_configuration(
            input.get("deploymentConfiguration"),
            rec.service.get("deploymentConfiguration"),
            scheduling,
            controller,
        )?;
        rec.service.insert("deploymentConfiguration".into(), configuration);
        if let Some(g) = grace {
            rec.service.insert("healthCheckGracePeriodSeconds".into(), json!(g));
        }
        if let Some(c) = &constraints {
            rec.service.insert("placementConstraints".into(), Value::Array(c.clone()));
        }
        if let Some(s) = &strategies {
            rec.service.insert("placementStrategy".into(), Value::Array(s.clone()));
        }
        for flag in ["enableECSManagedTags", "enableExecuteCommand"] {
            if let Some(b) = input.get(flag).and_then(Value::as_bool) {
                rec.service.insert(flag.into(), json!(b));
            }
        }
        if let Some(p) = text(input, "propagateTags") {
            rec.service.insert("propagateTags".into(), json!(p));
        }
        let current = rec.scheduler.primary().map(|p| p.task_definition.clone()).unwrap_or_default();
        let wanted = match &definition {
            Some(d) => d.definition["taskDefinitionArn"].as_str().unwrap_or_default().to_string(),
            None => current.clone(),
        };
        // The network the service's tasks get: the one given now, else the one it has.
        let mut network = Obj::new();
        if let Some(n) = input.get("networkConfiguration").or_else(|| rec.service.get("networkConfiguration")) {
            network.insert("networkConfiguration".into(), n.clone());
        }
        if let Some(d) = &definition {
            check_launch_type(&d.definition, Some(rec.launch_type().as_str()))?;
            check_network(ctx, &d.definition, &network, rec.launch_type())?;
        } else if input.contains_key("networkConfiguration")
            && let Some(d) = berth_control::definitions::resolve(ctx, &current)?
        {
            check_network(ctx, &d.1.definition, &network, rec.launch_type())?;
        }
        if let Some(n) = input.get("networkConfiguration") {
            rec.service.insert("networkConfiguration".into(), n.clone());
        }
        // Load balancers and service registries, given now or kept, must fit the task
        // definition new tasks run; a change reaches the service's tasks through a new
        // deployment, as on ECS.
        let mut rebalanced = false;
        let checks: [(&str, Check); 2] =
            [("loadBalancers", load_balancers::check), ("serviceRegistries", service_registries::check)];
        for (field, check) in checks {
            if !input.contains_key(field) && definition.is_none() {
                continue;
            }
            let runs = match &definition {
                Some(d) => Some(d.definition.clone()),
                None => berth_control::definitions::resolve(ctx, &current)?.map(|d| d.1.definition),
            };
            if let Some(runs) = runs {
                let checked = check(ctx, input.get(field).or_else(|| rec.service.get(field)), &runs)?;
                rebalanced |= rec.service.get(field) != Some(&checked);
                rec.service.insert(field.into(), checked);
            }
        }
        if input.get(service_connect::CONFIG).is_some_and(|c| !c.is_null())
            || (definition.is_some() && rec.service.contains_key(service_connect::CONFIG))
        {
            if controller != Controller::Ecs {
                return Err(ApiError::invalid(format!(
                    "Berth supports Service Connect for services of the ECS deployment controller only, not {}.",
                    controller.as_str()
                )));
            }
            let runs = match &definition {
                Some(d) => Some(d.definition.clone()),
                None => berth_control::definitions::resolve(ctx, &current)?.map(|d| d.1.definition),
            };
            if let Some(runs) = runs {
                let (_, cluster_record) = active_cluster(ctx, cluster)?;
                let given = input.get(service_connect::CONFIG).or_else(|| rec.service.get(service_connect::CONFIG));
                let made = match service_connect::check(ctx, given, &cluster_record, &runs)? {
                    Some(plan) => Some(service_connect::make(ctx, &plan).await?),
                    None => None,
                };
                rebalanced |= service_connect::keep(&mut rec.service, made.as_ref());
            }
        }
        let field = |k: &str| rec.service.get(k).cloned().unwrap_or_default();
        load_balancers::check_shifting(&field("deploymentConfiguration"), &field("loadBalancers"))?;
        if !controller.task_sets() && (wanted != current || force || rebalanced) {
            let revision = ctx.store().revision()?;
            rec.start_deployment(Deployment::new(
                ctx.control.ids.deployment_id(),
                wanted.clone(),
                ctx.timestamp(),
                revision,
            ));
            rec.service.insert("taskDefinition".into(), json!(wanted));
        }
        rec.scheduler.steady = false;
        if let Some(done) = save(ctx, &kv, &rec).await? {
            return Ok(Some(done));
        }
        Ok(None)
    })
    .await
}

/// What UpdateService may not change on a service, given who makes its deployments (ECS's
/// messages for CODE_DEPLOY; the same shape for EXTERNAL).
fn check_update(controller: Controller, input: &Obj) -> ApiResult<()> {
    if let Some(kind) = input.get("deploymentController").and_then(|c| c["type"].as_str())
        && kind != controller.as_str()
    {
        return Err(ApiError::invalid(format!(
            "Berth does not support changing the deployment controller of a service (from {} to {kind}) yet.",
            controller.as_str()
        )));
    }
    let how = match controller {
        Controller::Ecs => return Ok(()),
        Controller::CodeDeploy => "Use AWS CodeDeploy to trigger a new deployment.",
        Controller::External => "Create a task set to deploy it.",
    };
    let kind = controller.as_str();
    let refused = if input.contains_key("taskDefinition") {
        "update task definition"
    } else if input.contains_key("networkConfiguration") {
        "update network parameters"
    } else if input.get("forceNewDeployment").and_then(Value::as_bool) == Some(true) {
        "force a new deployment"
    } else {
        return Ok(());
    };
    Err(ApiError::invalid(format!("Unable to {refused} on services with a {kind} deployment controller. {how}")))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    let given = text(&input, "service").unwrap_or_default().to_string();
    let force = input.get("force").and_then(Value::as_bool).unwrap_or(false);
    active_cluster(ctx, &cluster)?;
    let (cluster, given) = (&cluster, &given);
    retry(move || async move {
        let (kv, mut rec) = find(ctx, cluster, given)?.ok_or_else(service_not_found)?;
        match rec.status {
            ServiceStatus::Inactive => return Err(service_not_found()),
            ServiceStatus::Draining => return Ok(Some(json!({"service": rec.render(ctx, false)}))),
            _ => {}
        }
        let desired = rec.int("/desiredCount").unwrap_or(0);
        if rec.scheduling() == Scheduling::Replica && desired > 0 && !force {
            return Err(ApiError::invalid("The service cannot be stopped while it is scaled above 0."));
        }
        rec.status = ServiceStatus::Draining;
        rec.service.insert("desiredCount".into(), json!(0));
        for set in &mut rec.scheduler.task_sets {
            set.status = TaskSetStatus::Draining;
        }
        rec.scheduler.steady = false;
        if let Some(done) = save(ctx, &kv, &rec).await? {
            return Ok(Some(done));
        }
        Ok(None)
    })
    .await
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let wanted = strings(&input, "services");
    if wanted.is_empty() {
        return Err(ApiError::invalid("Services cannot be empty."));
    }
    if wanted.len() > 10 {
        return Err(ApiError::invalid("At most 10 services can be described at once."));
    }
    let with_tags = strings(&input, "include").iter().any(|i| i == "TAGS");
    let (mut services, mut failures) = (Vec::new(), Vec::new());
    for given in wanted {
        match find(ctx, &cluster, &given)? {
            Some((_, rec)) => services.push(rec.render(ctx, with_tags)),
            None => failures.push(missing(&given, |name| ctx.arns.service(&cluster, name))),
        }
    }
    Ok(json!({"services": services, "failures": failures}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let limit = match input.get("maxResults") {
        Some(_) => max_results(&input, 100)?,
        None => 10,
    };
    let launch_type = text(&input, "launchType");
    let scheduling = text(&input, "schedulingStrategy");
    let mut items = Vec::new();
    for kv in ctx.store().list(&ctx.keys.services(&cluster))? {
        let rec: ServiceRecord = decode(&kv)?;
        let keep = rec.status != ServiceStatus::Inactive
            && launch_type.is_none_or(|t| t == "EC2")
            && scheduling.is_none_or(|s| rec.service.get("schedulingStrategy").and_then(Value::as_str) == Some(s));
        if keep {
            items.push((kv.key.clone(), rec.service["serviceArn"].clone()));
        }
    }
    let (arns, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("serviceArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}

/// ECS's `ServiceDeployment.status` of deployment `d`.
fn deployment_status(d: &Deployment) -> &'static str {
    match (d.finished, d.rollout, d.rollback_of.is_some()) {
        (Some((_, Outcome::Successful)), ..) => "SUCCESSFUL",
        (Some((_, Outcome::RolledBack)), ..) => "ROLLBACK_SUCCESSFUL",
        (Some((_, Outcome::Stopped)), ..) => "STOPPED",
        (None, Rollout::Completed, _) => "SUCCESSFUL",
        (None, Rollout::Failed, _) => "ROLLBACK_REQUESTED",
        (None, Rollout::InProgress, true) => "ROLLBACK_IN_PROGRESS",
        (None, Rollout::InProgress, false) => "IN_PROGRESS",
    }
}

/// Every deployment of a service, current and finished, newest first.
fn all_deployments(rec: &ServiceRecord) -> impl Iterator<Item = &Deployment> {
    rec.scheduler.deployments.iter().chain(rec.scheduler.history.iter())
}

fn deployment_brief(ctx: &Ctx<'_>, cluster: &str, rec: &ServiceRecord, d: &Deployment) -> Value {
    let mut out = json!({
        "serviceDeploymentArn": deployment_arn(ctx, cluster, rec.name(), &d.id),
        "serviceArn": rec.service["serviceArn"],
        "clusterArn": rec.service["clusterArn"],
        "startedAt": d.created_at,
        "createdAt": d.created_at,
        "targetServiceRevisionArn": d.task_definition,
        "status": deployment_status(d),
        "statusReason": d.rollout_reason,
    });
    if let Some((at, _)) = d.finished {
        out["finishedAt"] = json!(at);
    }
    out
}

pub fn list_deployments(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let cluster = cluster_arg(&input)?;
    active_cluster(ctx, &cluster)?;
    let given = text(&input, "service").unwrap_or_default();
    let (_, rec) = find(ctx, &cluster, given)?.ok_or_else(service_not_found)?;
    let limit = max_results(&input, 100)?;
    let statuses = strings(&input, "status");
    let created = input.get("createdAt");
    let after = created.and_then(|c| c["after"].as_f64()).unwrap_or(f64::MIN);
    let before = created.and_then(|c| c["before"].as_f64()).unwrap_or(f64::MAX);
    let mut items = Vec::new();
    for d in all_deployments(&rec) {
        let brief = deployment_brief(ctx, &cluster, &rec, d);
        let keep = (statuses.is_empty() || statuses.iter().any(|s| brief["status"] == s.as_str()))
            && d.created_at >= after
            && d.created_at <= before;
        if keep {
            // Newest first; the sort key only has to be unique and ordered for paging.
            items.push((format!("{:020}", u64::MAX - (d.created_at * 1000.0) as u64) + &d.id, brief));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (briefs, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("serviceDeployments".into(), Value::Array(briefs));
    Ok(with_token(out, next))
}

pub fn describe_deployments(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let wanted = strings(&input, "serviceDeploymentArns");
    if wanted.is_empty() || wanted.len() > 20 {
        return Err(ApiError::invalid("serviceDeploymentArns must name between 1 and 20 service deployments."));
    }
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for arn in wanted {
        let hit = match deployment_parts(&arn) {
            Some((cluster, service, id)) => find(ctx, &cluster, &service)?.and_then(|(_, rec)| {
                all_deployments(&rec).find(|d| d.id == id).map(|d| (cluster.clone(), rec.clone(), d.clone()))
            }),
            None => None,
        };
        match hit {
            Some((cluster, rec, d)) => found.push(service_deployment(ctx, &cluster, &rec, &d)),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"serviceDeployments": found, "failures": failures}))
}

/// A service deployment ARN's cluster, service and deployment id (`ecs-svc/...`).
fn deployment_parts(arn: &str) -> Option<(String, String, String)> {
    let p = berth_model::arn::parse(arn).filter(|p| p.kind == "service-deployment")?;
    let mut it = p.rest.splitn(3, '/');
    Some((it.next()?.to_string(), it.next()?.to_string(), format!("ecs-svc/{}", it.next()?)))
}

fn deployment_not_found() -> ApiError {
    ApiError::new(400, "ServiceDeploymentNotFoundException", "The service deployment does not exist.")
}

/// StopServiceDeployment: rolls the service's deployment in progress back to the last one
/// that completed (ROLLBACK, the one stop type ECS takes). A deployment that shifts traffic
/// hands it back to the blue tasks at once; a rolling one is replaced by a new deployment of
/// the completed task definition.
pub async fn stop_deployment(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn =
        text(&input, "serviceDeploymentArn").ok_or_else(|| ApiError::invalid("serviceDeploymentArn is required."))?;
    match text(&input, "stopType") {
        None | Some("ROLLBACK") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!("stopType {other} is not supported: the valid value is ROLLBACK.")));
        }
    }
    let (cluster, service, id) = deployment_parts(arn).ok_or_else(deployment_not_found)?;
    retry(|| async {
        let (kv, mut rec) = find(ctx, &cluster, &service)?.ok_or_else(deployment_not_found)?;
        let d = all_deployments(&rec).find(|d| d.id == id).cloned().ok_or_else(deployment_not_found)?;
        if d.rollout == Rollout::Failed {
            // Already failed and rolling back (or rolled back): nothing more to do.
            return Ok(Some(json!({"serviceDeploymentArn": arn})));
        }
        if !d.primary || d.rollout != Rollout::InProgress || d.finished.is_some() {
            return Err(ApiError::new(
                400,
                "ConflictException",
                format!(
                    "The service deployment {arn} is not in progress: only a deployment in progress can be stopped."
                ),
            ));
        }
        let now = ctx.timestamp();
        let revision = ctx.store().revision()?;
        let state = &mut rec.scheduler;
        let Some(p) = state.deployments.iter_mut().find(|x| x.id == id) else { return Err(deployment_not_found()) };
        p.rollout = Rollout::Failed;
        p.rollout_reason = "Service deployment rolled back because of a stop request.".into();
        p.updated_at = now;
        let reason = |to: &str| format!("Rolling back to deploymentId {to} on a stop request.");
        let fresh = ctx.control.ids.deployment_id();
        let Some(to) = berth_scheduler::roll_back(state, &id, &reason, &fresh, now, revision) else {
            return Err(ApiError::new(
                400,
                "ConflictException",
                format!("The service deployment {arn} has no completed deployment before it to roll back to."),
            ));
        };
        let name = rec.name().to_string();
        rec.tell(&[berth_scheduler::messages::rolling_back(&name, &to)], now, ctx.control.ids.as_ref());
        Ok(save_record(ctx, &kv, &rec).await?.then(|| json!({"serviceDeploymentArn": arn})))
    })
    .await
}

fn service_deployment(ctx: &Ctx<'_>, cluster: &str, rec: &ServiceRecord, d: &Deployment) -> Value {
    let [desired, running, pending] = rec.counts.get(&d.id).copied().unwrap_or_default();
    let mut out = deployment_brief(ctx, cluster, rec, d);
    out.as_object_mut().expect("object").remove("targetServiceRevisionArn");
    out["updatedAt"] = json!(d.updated_at);
    out["targetServiceRevision"] = json!({
        "arn": d.task_definition,
        "requestedTaskCount": desired,
        "runningTaskCount": running,
        "pendingTaskCount": pending,
    });
    if let Some(shift) = d.shift {
        out["lifecycleStage"] = json!(shift.stage.as_str());
        let test = if shift.stage >= berth_scheduler::Stage::TestTrafficShift { 100.0 } else { 0.0 };
        out["targetServiceRevision"]["requestedProductionTrafficWeight"] = json!(shift.traffic);
        out["targetServiceRevision"]["requestedTestTrafficWeight"] = json!(test);
    }
    let sources: Vec<Value> = all_deployments(rec)
        .filter(|o| o.id != d.id && o.created_at < d.created_at)
        .take(1)
        .map(|o| json!({"arn": o.task_definition, "requestedTaskCount": 0, "runningTaskCount": 0, "pendingTaskCount": 0}))
        .collect();
    out["sourceServiceRevisions"] = Value::Array(sources);
    out["deploymentConfiguration"] = rec.service.get("deploymentConfiguration").cloned().unwrap_or(Value::Null);
    let breaker = rec.field("/deploymentConfiguration/deploymentCircuitBreaker/enable").and_then(Value::as_bool);
    let breaker = breaker.unwrap_or(false);
    let desired_total = rec.int("/desiredCount").unwrap_or(0).max(0) as u32;
    out["deploymentCircuitBreaker"] = json!({
        "status": match (breaker, d.rollout) {
            (false, _) => "DISABLED",
            (true, Rollout::Failed) => "TRIGGERED",
            (true, Rollout::Completed) => "MONITORING_COMPLETE",
            (true, Rollout::InProgress) => "MONITORING",
        },
        "failureCount": d.breaker_failures,
        "threshold": berth_scheduler::breaker_threshold(desired_total),
    });
    if d.rollback_of.is_some() {
        out["rollback"] = json!({
            "reason": d.rollout_reason,
            "startedAt": d.created_at,
            "serviceRevisionArn": d.task_definition,
        });
    }
    out
}
