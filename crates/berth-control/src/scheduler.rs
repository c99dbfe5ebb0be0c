//! The service scheduler's effects: every second, and whenever a service or a task's state
//! changes, each service's observations are read from the store, handed to the pure
//! [`berth_scheduler::reconcile`], and its plan carried out with compare-and-swap writes
//! guarded by the service record's revision, so a plan made on a stale view changes nothing.
//! Everything the scheduler remembers lives in the service record; a restarted server just
//! runs the next pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_model::capacity;
use berth_model::resources::Shortfall;
use berth_model::task::{DesiredStatus, Failure, StopCode};
use berth_model::task_definition::requirements;
use berth_placement::{Constraint, Rejection, matches};
use berth_scheduler::{
    Ending, InstanceState, InstanceView, LbHealth, Observed, Plan, Scheduling, Spec, StopReason, TaskView, messages,
    reconcile, routing,
};
use berth_store::{Compare, KeyRange, Op, Txn};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::definitions::{DefinitionRecord, resolve};
use crate::error::ControlResult;
use crate::keys::SCHEDULED;
use crate::records::{InstanceStatus, TaskRecord};
use crate::services::{ServiceRecord, ServiceStatus};
use crate::store::{array, decode, encode};
use crate::task_index::{Index, Summary};
use crate::tasks::{Launch, StopRequest, launch_for, request_stop, write_off};
use crate::{Control, Region, placement};
use crate::{service_registries, service_targets, traffic};

/// What the passes have cost so far: for `GET /metrics`, and the scale benchmark's per-pass
/// figure (the time of a pass against the tasks it observed).
#[derive(Debug, Default)]
pub struct PassStats {
    passes: AtomicU64,
    nanos: AtomicU64,
    last_nanos: AtomicU64,
    last_tasks: AtomicU64,
}

/// A reading of [`PassStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassFigures {
    pub passes: u64,
    /// The time of all passes together.
    pub seconds: f64,
    pub last_seconds: f64,
    /// The tasks the last pass observed, over all services.
    pub last_tasks: u64,
}

impl PassStats {
    pub fn record(&self, took: Duration, tasks: usize) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.last_nanos.store(nanos, Ordering::Relaxed);
        self.last_tasks.store(tasks as u64, Ordering::Relaxed);
    }

    pub fn read(&self) -> PassFigures {
        let seconds = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        PassFigures {
            passes: self.passes.load(Ordering::Relaxed),
            seconds: seconds(&self.nanos),
            last_seconds: seconds(&self.last_nanos),
            last_tasks: self.last_tasks.load(Ordering::Relaxed),
        }
    }
}

/// How long a service whose inputs have not changed goes without a reconcile: what depends on
/// time alone (an agent gone quiet, a grace period, a bake time) is seen this late at most.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// What a service's last reconcile read, for passes woken by changes elsewhere to pass it by:
/// with 100,000 tasks in a cluster, a rollout of one service should not re-reconcile all the
/// others on every report. Only the leader's passes use it; a new leader starts empty.
#[derive(Default)]
pub struct Reconciled(std::sync::Mutex<HashMap<String, Seen>>);

/// A service's inputs as a reconcile read them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Inputs {
    /// The service record's revision.
    record: u64,
    /// The last change to a task of its group.
    group: u64,
    /// Its cluster's instances (see [`ClusterView::instances`]).
    instances: (u64, usize),
}

struct Seen {
    inputs: Inputs,
    at: std::time::SystemTime,
}

impl Reconciled {
    /// Whether a reconcile of `service` on `inputs` at `now` would decide what the last one
    /// did: it read the same inputs less than [`RECONCILE_EVERY`] ago and its plan did nothing.
    fn unchanged(&self, service: &str, inputs: Inputs, now: std::time::SystemTime) -> bool {
        let seen = self.0.lock().expect("scheduler memory lock");
        seen.get(service)
            .is_some_and(|s| s.inputs == inputs && now.duration_since(s.at).is_ok_and(|since| since < RECONCILE_EVERY))
    }

    /// A reconcile read `inputs` at `now`; `quiet`: its plan did nothing (anything else
    /// changes the inputs, and the next pass reconciles again anyway).
    fn record(&self, service: &str, inputs: Inputs, now: std::time::SystemTime, quiet: bool) {
        let mut seen = self.0.lock().expect("scheduler memory lock");
        if quiet {
            seen.insert(service.to_string(), Seen { inputs, at: now });
        } else {
            seen.remove(service);
        }
    }
}

/// One pass over every service in the index, then over the tasks draining from their load
/// balancers.
pub async fn pass(control: &Control) -> ControlResult<()> {
    let started = Instant::now();
    let observed = services_pass(control).await?;
    service_targets::release_drained(control).await?;
    control.passes.record(started.elapsed(), observed);
    Ok(())
}

/// Reconciles every service; answers how many tasks the pass observed.
async fn services_pass(control: &Control) -> ControlResult<usize> {
    // The index is ordered by region and cluster: each cluster is read once for all of its
    // services.
    let mut by_cluster: Vec<((String, String), Vec<String>)> = Vec::new();
    for kv in control.store.range(&KeyRange::prefix(SCHEDULED))?.kvs {
        let mut parts = kv.key[SCHEDULED.len()..].splitn(3, '/');
        let (Some(region), Some(cluster), Some(name)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let place = (region.to_string(), cluster.to_string());
        match by_cluster.last_mut() {
            Some((p, names)) if *p == place => names.push(name.to_string()),
            _ => by_cluster.push((place, vec![name.to_string()])),
        }
    }
    // Whatever the store held when the pass began, the index shows.
    let index = control.task_index().await?;
    let mut observed = 0;
    for ((region, cluster), names) in by_cluster {
        let region = control.region(&region);
        let view = match ClusterView::read(&region, &cluster, &index) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(cluster, error = %e, "reading a cluster failed");
                continue;
            }
        };
        let mut definitions = Definitions::default();
        for name in names {
            match service_pass(&region, &cluster, &name, &view, &mut definitions).await {
                Ok(tasks) => observed += tasks,
                Err(e) => tracing::warn!(service = name, cluster, error = %e, "service pass failed"),
            }
        }
    }
    Ok(observed)
}

/// What a pass reads of a cluster once, for all of its services: the task index (caught up
/// with the store when the pass began, and following it as the pass goes: each service reads
/// its tasks as they are when its turn comes), and its instances. A service's launches
/// re-read what they need, and a plan made on this view is guarded by its service record's
/// revision.
struct ClusterView<'i> {
    index: &'i Index<'i>,
    candidates: Vec<placement::Candidate>,
    /// The instances lending to Fargate, where the cluster's FARGATE tasks run.
    fargate: Vec<placement::Candidate>,
    /// The newest revision among those instances' records, and how many there are: what
    /// changes when any of them changes, comes or goes.
    instances: (u64, usize),
}

impl<'i> ClusterView<'i> {
    fn read(region: &Region<'_>, cluster: &str, index: &'i Index<'i>) -> ControlResult<ClusterView<'i>> {
        // Without their tasks' groups: only a daemon's memberOf constraints read them.
        let candidates = placement::instances_in(region, cluster)?;
        // Only the hosts' states matter here (their task groups are placement's concern).
        let fargate = crate::fargate::hosts(region)?
            .into_iter()
            .map(|(_, kv, record)| placement::candidate(region, kv, record, Vec::new()))
            .collect();
        let all = candidates.iter().chain(&fargate);
        let instances = (all.clone().map(|c| c.kv.mod_revision).max().unwrap_or(0), all.count());
        Ok(ClusterView { index, candidates, fargate, instances })
    }
}

/// Task definitions by ARN, read once per pass.
#[derive(Default)]
struct Definitions(HashMap<String, Option<DefinitionRecord>>);

impl Definitions {
    fn get(&mut self, region: &Region<'_>, arn: &str) -> ControlResult<Option<&DefinitionRecord>> {
        if !self.0.contains_key(arn) {
            let rec = resolve(region, arn)?.map(|(_, r)| r);
            self.0.insert(arn.to_string(), rec);
        }
        Ok(self.0[arn].as_ref())
    }

    fn health_checked(&mut self, region: &Region<'_>, arn: &str) -> ControlResult<bool> {
        Ok(self.get(region, arn)?.is_some_and(DefinitionRecord::health_checked))
    }
}

fn spec(rec: &ServiceRecord) -> Spec {
    let breaker = rec.field("/deploymentConfiguration/deploymentCircuitBreaker");
    let flag = |k: &str| breaker.and_then(|b| b.get(k)).and_then(Value::as_bool).unwrap_or(false);
    let (strategy, bake) = rec.deployment_strategy();
    Spec {
        name: rec.name().to_string(),
        scheduling: rec.scheduling(),
        controller: rec.controller(),
        desired_count: rec.int("/desiredCount").unwrap_or(0).max(0) as u32,
        minimum_healthy_percent: rec.int("/deploymentConfiguration/minimumHealthyPercent").unwrap_or(100) as u32,
        maximum_percent: rec.int("/deploymentConfiguration/maximumPercent").unwrap_or(200) as u32,
        circuit_breaker: flag("enable").then(|| flag("rollback")),
        grace_period: rec.int("/healthCheckGracePeriodSeconds").unwrap_or(0) as f64,
        deleting: rec.status == ServiceStatus::Draining,
        strategy,
        bake,
    }
}

fn task_view(t: &Summary, health_checked: bool, lb: LbHealth) -> TaskView {
    let ending = (!t.live()).then_some(if t.failed { Ending::Failed } else { Ending::Stopped });
    TaskView {
        id: t.id.clone(),
        deployment: t.started_by.clone(),
        instance: t.host.as_ref().map(|h| h.id.clone()).unwrap_or_default(),
        status: t.last_status,
        desired_running: t.desired_status == DesiredStatus::Running,
        health: t.health,
        health_checked,
        started_at: t.started_at,
        created_at: t.created_at,
        ending,
        revision: t.revision,
        lb,
    }
}

/// ECS's words for why the closest instance could not take a task.
fn placement_reason(rejections: &[(String, Rejection)]) -> String {
    let Some((id, why)) = rejections.first() else {
        return "No Container Instances were found in your cluster.".into();
    };
    let problem = match why {
        Rejection::Resource(Shortfall::Memory) => "has insufficient memory available",
        Rejection::Resource(Shortfall::Cpu) => "has insufficient CPU units available",
        Rejection::Resource(Shortfall::Ports) => "is already using a port required by your task",
        Rejection::Agent => "has an agent that is not connected",
        Rejection::MemberOf => "does not match the placement constraints",
        Rejection::DistinctInstance => "is already running a task of this service",
    };
    format!("The closest matching (container-instance {id}) {problem}.")
}

async fn service_pass(
    region: &Region<'_>,
    cluster: &str,
    name: &str,
    view: &ClusterView<'_>,
    definitions: &mut Definitions,
) -> ControlResult<usize> {
    let index_key = region.keys.scheduled(cluster, name);
    let Some(kv) = region.store().get(&region.keys.service(cluster, name))? else {
        region.store().txn(Txn::new().and_then(vec![Op::delete(&index_key)])).await?;
        return Ok(0);
    };
    let mut rec: ServiceRecord = decode(&kv)?;
    if rec.status == ServiceStatus::Inactive {
        region.store().txn(Txn::new().and_then(vec![Op::delete(&index_key)])).await?;
        return Ok(0);
    }
    let spec = spec(&rec);
    let now = region.timestamp();
    let group = format!("service:{name}");
    let balanced = !service_targets::service_load_balancers(&rec).is_empty();
    let named = !service_registries::service_registries(&rec).is_empty();
    let pairs = traffic::pairs(&rec);

    // A service whose every input is as its last quiet reconcile read it is passed by. Load
    // balancer and Cloud Map health, and traffic shifted between target groups, are inputs
    // this cannot see: such services are reconciled every pass.
    let inputs = Inputs {
        record: kv.mod_revision,
        group: view.index.group_changed(&region.name, cluster, &group),
        instances: view.instances,
    };
    let watched = !balanced && !named && pairs.is_empty();
    let memory = &region.control.reconciled;
    if watched && memory.unchanged(&kv.key, inputs, region.now) {
        return Ok(0);
    }

    // Observe: the service's tasks and the cluster's instances, from the pass's view.
    let mut tasks = Vec::new();
    // The service's wanted tasks per capacity provider.
    let mut providers: HashMap<String, u32> = HashMap::new();
    let mut target_events = TargetEvents::default();
    let mut health = crate::elb::HealthReader::new(region);
    // The observation is the index's, read at once (whole revisions); records are read only
    // to keep a task's registrations in step.
    // A service's tasks share a definition or two: asked once per run of equal ones.
    let mut last_checked: Option<(String, bool)> = None;
    for summary in view.index.group(&region.name, cluster, &group) {
        let checked = match &last_checked {
            Some((arn, checked)) if *arn == summary.definition => *checked,
            _ => {
                let checked = definitions.health_checked(region, &summary.definition)?;
                last_checked = Some((summary.definition.clone(), checked));
                checked
            }
        };
        let mut lb = LbHealth::None;
        if balanced || named || summary.registered {
            // Registrations are kept in step with the record itself: read it.
            let Some(kv) = region.store().get(&summary.key)? else { continue };
            let task: TaskRecord = decode(&kv)?;
            let revision = kv.mod_revision;
            let key = kv.key.as_str();
            // Registered once RUNNING, let go once drained: the task's own write, so this
            // pass sees the task as it was read.
            if balanced || task.targets.is_some() {
                match service_targets::sync(region, cluster, &rec, (key, revision), &task).await {
                    Ok(change) => target_events.add(change),
                    Err(e) => {
                        tracing::warn!(service = name, task = key, error = %e, "load balancer registration failed")
                    }
                }
            }
            if named || !task.registrations.is_empty() {
                let synced = service_registries::sync(region, (cluster, &rec), (key, revision), &task, checked).await;
                if let Err(e) = synced {
                    tracing::warn!(service = name, task = key, error = %e, "Cloud Map registration failed");
                }
            }
            if balanced || task.targets.is_some() {
                lb = service_targets::lb_health(&mut health, &task)?;
            }
        }
        if let Some(p) = summary.capacity_provider.as_ref().filter(|_| summary.desired_status == DesiredStatus::Running)
        {
            *providers.entry(p.clone()).or_default() += 1;
        }
        tasks.push(task_view(&summary, checked, lb));
    }
    let constraints = placement::constraints(&array(&rec.service, "placementConstraints"), false)?;
    let lost_after = region.config().lost_agent_timeout.as_secs_f64();
    // The cluster's instances, then the Fargate hosts of other clusters (where FARGATE tasks
    // run, never daemons).
    let own = view.candidates.iter().enumerate().map(|(i, c)| (c, Some(i)));
    let foreign = view.fargate.iter().filter(|f| !view.candidates.iter().any(|c| c.id == f.id)).map(|c| (c, None));
    // memberOf may read the groups of an instance's tasks: the views with them, when asked.
    let member_of = constraints.iter().any(|k| matches!(k, Constraint::MemberOf(_)));
    let grouped =
        if member_of { placement::with_task_groups(region, cluster, &view.candidates, view.index) } else { Vec::new() };
    let instances: Vec<InstanceView> = own
        .chain(foreign)
        .map(|(c, own_at)| {
            let state = if c.view.agent_connected {
                if c.record.status == InstanceStatus::Draining {
                    InstanceState::Draining
                } else {
                    InstanceState::Active
                }
            } else if c.record.lost(now, lost_after) {
                InstanceState::Lost
            } else if c.record.status == InstanceStatus::Draining {
                InstanceState::Draining
            } else {
                InstanceState::Disconnected
            };
            let daemon_eligible = own_at.is_some_and(|i| {
                constraints.iter().all(|k| match k {
                    Constraint::MemberOf(expr) => matches(&grouped[i], expr),
                    _ => true,
                })
            });
            InstanceView { id: c.id.clone(), state, daemon_eligible }
        })
        .collect();
    let fresh = region.control.ids.deployment_id();
    let alternate_share =
        if pairs.is_empty() { None } else { traffic::observed_share(region, &pairs, routing(&rec.scheduler))? };
    // Every observed task's last change is at or below the observation's revision (the
    // circuit breaker counts each failure once by it). It moves only when a task of the
    // service changes: with the store's revision, every pass rewrote every service's record.
    let revision = tasks.iter().map(|t| t.revision).fold(inputs.group, u64::max);
    let observed = Observed { now, revision, tasks: &tasks, instances: &instances, fresh_id: &fresh, alternate_share };
    let plan = reconcile(&spec, &rec.scheduler, &observed);

    let mut events = target_events.messages(name);
    events.extend(plan.events.iter().cloned());
    let new_deployment = plan.state.deployments.iter().any(|d| !rec.scheduler.deployments.iter().any(|o| o.id == d.id));
    // A plan that made a deployment (a rollback) is recorded before anything is launched
    // from it, so no task ever names a deployment the service does not know.
    if !new_deployment
        && !act(
            region,
            cluster,
            &mut Acting { rec: &rec, guard: (&kv.key, kv.mod_revision), providers },
            &plan,
            definitions,
            &mut events,
        )
        .await?
    {
        return Ok(tasks.len());
    }

    let before = encode(&rec);
    rec.scheduler = plan.state.clone();
    rec.counts = plan
        .per_deployment
        .iter()
        .map(|(id, c)| (id.clone(), [c.desired, c.running, c.pending]))
        .collect::<BTreeMap<_, _>>();
    rec.service.insert("runningCount".into(), json!(plan.running));
    rec.service.insert("pendingCount".into(), json!(plan.pending));
    if spec.scheduling == Scheduling::Daemon && !spec.deleting {
        rec.service.insert("desiredCount".into(), json!(plan.desired));
    }
    rec.tell(&events, now, region.control.ids.as_ref());
    let mut ops = Vec::new();
    if plan.finished_deleting {
        rec.status = ServiceStatus::Inactive;
        ops.push(Op::delete(&index_key));
    }
    let after = encode(&rec);
    let quiet = plan.lost.is_empty() && plan.stop.is_empty() && plan.launch.is_empty() && after == before;
    memory.record(&kv.key, inputs, region.now, watched && quiet);
    if after != before {
        ops.push(Op::put(&kv.key, after));
        let guard = vec![Compare::unchanged(&kv.key, kv.mod_revision)];
        if !region.store().txn(Txn::new().when(guard).and_then(ops)).await?.succeeded {
            return Ok(tasks.len());
        }
    }
    // The rules follow the deployments as recorded (again each pass, so a rule changed by
    // hand or a write that failed is put right).
    if let Some(wanted) = routing(&rec.scheduler).filter(|_| !pairs.is_empty() && !spec.deleting) {
        traffic::apply(region, &pairs, wanted).await?;
    }
    Ok(tasks.len())
}

/// Targets registered and deregistered in one pass, per target group, for the service's
/// events.
#[derive(Default)]
struct TargetEvents {
    registered: BTreeMap<String, usize>,
    deregistered: BTreeMap<String, usize>,
}

impl TargetEvents {
    fn add(&mut self, change: Option<service_targets::Change>) {
        let (into, targets) = match change {
            Some(service_targets::Change::Registered(t)) => (&mut self.registered, t),
            Some(service_targets::Change::Drained(t)) => (&mut self.deregistered, t),
            None => return,
        };
        for t in targets {
            *into.entry(t.target_group_arn).or_default() += 1;
        }
    }

    fn messages(&self, service: &str) -> Vec<String> {
        let registered = self.registered.iter().map(|(g, n)| messages::registered_targets(service, *n, g));
        let deregistered = self.deregistered.iter().map(|(g, n)| messages::deregistered_targets(service, *n, g));
        registered.chain(deregistered).collect()
    }
}

/// The service a pass acts for: its record, its store key and the revision it was read at,
/// and how many of its wanted tasks each capacity provider launched.
struct Acting<'a> {
    rec: &'a ServiceRecord,
    guard: (&'a str, u64),
    providers: HashMap<String, u32>,
}

/// One of a plan's stops, with the stop it was.
async fn stop_one<'s>(
    region: &Region<'_>,
    cluster: &str,
    s: &'s berth_scheduler::Stop,
) -> ControlResult<(&'s berth_scheduler::Stop, Option<(berth_store::KeyValue, TaskRecord)>)> {
    let reason = s.stopped_reason();
    let failed = matches!(s.reason, StopReason::Unhealthy | StopReason::ElbUnhealthy);
    let failure = failed.then_some(Failure::HealthCheck);
    let stop = StopRequest { code: StopCode::ServiceSchedulerInitiated, reason: &reason, failure, warning: None };
    Ok((s, request_stop(region, cluster, &s.task, stop).await?))
}

/// How many of a plan's stops are in flight at once.
const STOPS_IN_FLIGHT: usize = 64;

/// Carries out a plan's write-offs, stops and launches; `false` when the service changed
/// meanwhile (the rest of the plan is dropped; the next pass decides afresh).
async fn act(
    region: &Region<'_>,
    cluster: &str,
    acting: &mut Acting<'_>,
    plan: &Plan,
    definitions: &mut Definitions,
    events: &mut Vec<String>,
) -> ControlResult<bool> {
    let (rec, guard) = (acting.rec, acting.guard);
    let name = rec.name();
    if !plan.lost.is_empty() {
        for id in &plan.lost {
            write_off(region, cluster, id, crate::housekeeping::LOST).await?;
        }
        events.extend(messages::lost(name, &plan.lost));
    }

    let mut stopped = Vec::new();
    let mut draining = 0;
    for s in &plan.stop {
        match (s.reason, &s.target_group) {
            (StopReason::Unhealthy, _) => events.push(messages::unhealthy(name, &s.task)),
            (StopReason::ElbUnhealthy, Some(group)) => events.push(messages::elb_unhealthy(name, &s.task, group)),
            _ => {}
        }
    }
    // Each stop is its own transaction: many in flight share the store's commits (a rollout
    // stops thousands at once), and the results come back in the plan's order.
    let stops: Vec<_> = plan.stop.iter().map(|s| stop_one(region, cluster, s)).collect();
    let stops = futures::stream::iter(stops).buffered(STOPS_IN_FLIGHT).collect::<Vec<_>>().await;
    for result in stops {
        if let (s, Some((_, task))) = result? {
            stopped.push(s.task.clone());
            draining += usize::from(task.targets.as_ref().is_some_and(|t| t.holds()));
        }
    }
    if draining > 0 {
        events.push(messages::draining(name, draining));
    }
    if !stopped.is_empty() {
        events.extend(messages::stopped(name, &stopped));
    }

    // Launches, one placement request per deployment and target instance.
    let mut batches: BTreeMap<(String, Option<String>), (String, usize)> = BTreeMap::new();
    for l in &plan.launch {
        batches.entry((l.deployment.clone(), l.instance.clone())).or_insert((l.task_definition.clone(), 0)).1 += 1;
    }
    let mut started = Vec::new();
    let mut unplaced = None;
    for ((deployment, instance), (definition_arn, count)) in batches {
        let Some(definition) = definitions.get(region, &definition_arn)?.cloned() else {
            tracing::warn!(service = name, definition = definition_arn, "task definition of a deployment is gone");
            continue;
        };
        let mut launch = service_launch(cluster, rec, &definition, deployment)?;
        // The strategy's base and weights count over all of the service's live tasks.
        launch.capacity_providers = capacity::distribute(&launch.strategy, &mut acting.providers, count);
        match launch_for(region, &launch, count, instance.as_deref(), guard).await? {
            None => return Ok(false),
            Some(done) => {
                if done.tasks.len() < count {
                    unplaced = Some(placement_reason(&done.rejections));
                }
                started.extend(done.tasks);
            }
        }
    }
    if !started.is_empty() {
        events.extend(messages::started(name, &started));
    }
    if let Some(reason) = unplaced {
        events.push(messages::unable_to_place(name, &reason));
    }
    Ok(true)
}

/// A launch of the service's tasks: its constraints and strategies, its group, the
/// deployment as `startedBy`, and the tags `propagateTags` and managed tags call for.
fn service_launch(
    cluster: &str,
    rec: &ServiceRecord,
    definition: &DefinitionRecord,
    deployment: String,
) -> ControlResult<Launch> {
    let mut constraints = placement::constraints(&array(&rec.service, "placementConstraints"), false)?;
    let in_definition = definition.definition.get("placementConstraints").and_then(Value::as_array).cloned();
    constraints.extend(placement::constraints(&in_definition.unwrap_or_default(), true)?);
    let strategies = placement::strategies(&array(&rec.service, "placementStrategy"))?;
    let mut tags = match rec.service.get("propagateTags").and_then(Value::as_str) {
        Some("SERVICE") => array(&rec.service, "tags"),
        Some("TASK_DEFINITION") => definition.tags.clone(),
        _ => Vec::new(),
    };
    if rec.service.get("enableECSManagedTags").and_then(Value::as_bool) == Some(true) {
        tags.push(json!({"key": "aws:ecs:serviceName", "value": rec.name()}));
        tags.push(json!({"key": "aws:ecs:clusterName", "value": cluster}));
    }
    // Checked when the service was created or updated; a refusal now names the service.
    let mode = definition.definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge");
    // A task set's own configuration, else the service's.
    let set = rec.scheduler.task_sets.iter().find(|s| s.id == deployment);
    let of_set = set.and_then(|s| s.awsvpc_configuration.as_ref()).map(|c| json!({"awsvpcConfiguration": c}));
    let configuration = of_set.as_ref().or(rec.service.get("networkConfiguration"));
    let network = crate::task_network::parse(mode, configuration, rec.launch_type())
        .map_err(|e| crate::ControlError::Placement(format!("service {}: {e}", rec.name())))?;
    Ok(Launch {
        cluster: cluster.to_string(),
        requirements: requirements(&definition.definition, None),
        definition: definition.definition.clone(),
        constraints,
        strategies,
        overrides: Default::default(),
        started_by: Some(deployment),
        group: format!("service:{}", rec.name()),
        tags,
        network,
        launch_type: rec.launch_type(),
        strategy: rec.strategy(),
        capacity_providers: Vec::new(),
    })
}
