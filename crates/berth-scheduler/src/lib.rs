//! The ECS service scheduler as a pure function.
//!
//! [`reconcile`] takes what a service wants ([`Spec`]), what the scheduler remembers between
//! passes ([`State`]: the deployments, failure counts, back-off) and a snapshot of what is
//! ([`Observed`]: the service's tasks and the cluster's instances, the store revision it was
//! read at, `now`), and returns a [`Plan`]: tasks to launch, tasks to stop, tasks to write off
//! as lost, the new state and the events to tell. It does no I/O and reads no clock, so the
//! same inputs always give the same plan; the caller applies the plan with compare-and-swap
//! writes and runs the next pass on fresh observations. Nothing in a plan depends on an
//! earlier plan having been applied, so a crash between passes loses nothing.
//!
//! Counting follows ECS's rolling update: `maximumPercent` caps the tasks alive at once (those
//! still stopping included), `minimumHealthyPercent` floors the healthy ones while old tasks
//! are stopped. See `docs/deployments.md` for the rules in prose.

mod daemon;
mod deployment;
pub mod messages;
mod replica;
mod shift;
mod task_set;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use berth_model::task::TaskStatus;
use serde::{Deserialize, Serialize};

pub use deployment::{BREAKER_MAX, BREAKER_MIN, STABLE_SECS, breaker_threshold, roll_back, rollback_target};
pub use shift::{Routing, Shift, Side, Stage, Strategy, routing};
pub use task_set::{AwsVpcConfiguration, Stability, Tag, TaskSet, TaskSetStatus};

/// How a service places its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheduling {
    /// `desiredCount` tasks across the cluster.
    Replica,
    /// One task on every instance that matches the service's constraints.
    Daemon,
}

/// Who makes a service's deployments (ECS `deploymentController`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Controller {
    /// The scheduler: rolling deployments of the service's task definition.
    Ecs,
    /// CodeDeploy: task sets; Berth's service starts with one PRIMARY set at 100%.
    CodeDeploy,
    /// The user, through the task set API.
    External,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Ecs => "ECS",
            Controller::CodeDeploy => "CODE_DEPLOY",
            Controller::External => "EXTERNAL",
        }
    }

    /// Whether the service runs task sets rather than the scheduler's deployments.
    pub fn task_sets(self) -> bool {
        self != Controller::Ecs
    }
}

/// What the service asks for: the parts of CreateService/UpdateService the scheduler reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub scheduling: Scheduling,
    pub controller: Controller,
    /// Replica services only; a daemon's desired count is its number of eligible instances.
    pub desired_count: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// `Some(rollback)` when the deployment circuit breaker is on.
    pub circuit_breaker: Option<bool>,
    /// Seconds after a task starts during which failing health checks are not acted on.
    pub grace_period: f64,
    /// The service is being deleted: every task stops, health floors no longer apply.
    pub deleting: bool,
    /// How new deployments roll out.
    pub strategy: Strategy,
    /// Seconds blue keeps running after all production traffic moved to green.
    pub bake: f64,
}

/// Where a deployment's rollout stands (ECS `rolloutState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::InProgress => "IN_PROGRESS",
            Rollout::Completed => "COMPLETED",
            Rollout::Failed => "FAILED",
        }
    }
}

/// How a deployment left the service's list (ECS `ServiceDeployment.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It completed and a later one replaced it, or it is the last completed one.
    Successful,
    /// A newer deployment superseded it before it completed.
    Stopped,
    /// It failed and the service rolled back to an earlier one that then completed.
    RolledBack,
}

/// One deployment of a service: a task definition being rolled out or kept running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits, as ECS names them; tasks carry it as `startedBy`.
    pub id: String,
    pub task_definition: String,
    /// The deployment new tasks are launched from (ECS status PRIMARY; the others ACTIVE).
    pub primary: bool,
    pub rollout: Rollout,
    pub rollout_reason: String,
    /// Tasks of this deployment that stopped on their own or failed their health checks.
    pub failed_tasks: u32,
    /// Failures the circuit breaker counts: since the last task that proved healthy.
    pub breaker_failures: u32,
    /// Failed tasks stopped at or before this store revision are already counted.
    pub seen_revision: u64,
    pub created_at: f64,
    pub updated_at: f64,
    /// Set once the deployment left the list, with how it ended.
    #[serde(default)]
    pub finished: Option<(f64, Outcome)>,
    /// The deployment that failed and made this one (a rollback), or that failed and gave
    /// this one back the traffic, if any.
    #[serde(default)]
    pub rollback_of: Option<String>,
    /// The target group of each load balancer pair its tasks join.
    #[serde(default)]
    pub side: Side,
    /// For a deployment that shifts traffic (BLUE_GREEN, LINEAR, CANARY): where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<Shift>,
}

impl Deployment {
    pub fn new(id: String, task_definition: String, now: f64, revision: u64) -> Self {
        Deployment {
            rollout_reason: messages::in_progress(&id),
            id,
            task_definition,
            primary: true,
            rollout: Rollout::InProgress,
            failed_tasks: 0,
            breaker_failures: 0,
            seen_revision: revision,
            created_at: now,
            updated_at: now,
            finished: None,
            rollback_of: None,
            side: Side::Primary,
            shift: None,
        }
    }
}

/// Launch throttling for a service whose tasks keep failing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Failed tasks since a task last proved healthy.
    pub consecutive: u32,
    /// No launches before this time (seconds since the epoch).
    pub until: f64,
}

/// What the scheduler keeps between passes, stored with the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Newest first; the primary is one of them.
    pub deployments: Vec<Deployment>,
    /// Deployments that left the list, newest first, at most [`HISTORY`].
    #[serde(default)]
    pub history: Vec<Deployment>,
    #[serde(default)]
    pub backoff: Backoff,
    /// Whether "has reached a steady state" was told and nothing changed since.
    #[serde(default)]
    pub steady: bool,
    /// The task sets of a service an external controller deploys, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_sets: Vec<TaskSet>,
}

/// How many finished deployments a service remembers.
pub const HISTORY: usize = 20;

impl State {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.primary)
    }

    pub fn primary_task_set(&self) -> Option<&TaskSet> {
        self.task_sets.iter().find(|s| s.status == TaskSetStatus::Primary)
    }

    /// Makes `d` the primary deployment: the others stay as ACTIVE until their tasks are gone.
    /// Under a strategy that shifts traffic it comes up on the side the serving deployment
    /// does not use; otherwise on the serving side.
    pub fn start_deployment(&mut self, mut d: Deployment, strategy: Strategy) {
        shift::prepare(self, &mut d, strategy);
        for other in &mut self.deployments {
            other.primary = false;
        }
        self.deployments.insert(0, d);
        self.backoff = Backoff::default();
        self.steady = false;
    }
}

/// A task's health (ECS task `healthStatus`): the model's one health type.
pub use berth_model::health::Health;

/// A task's health in its service's target groups (ELB health checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LbHealth {
    /// The service has no load balancer, or the task is not registered (yet).
    #[default]
    None,
    /// Registered; not every target group has found it healthy yet.
    Initial,
    /// Healthy in every target group it is registered with.
    Healthy,
    /// Unhealthy in this target group.
    Unhealthy { target_group: String },
}

/// Why a task that is STOPPED stopped, as far as the scheduler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It failed: an essential container exited, it failed to start, or its health checks failed.
    Failed,
    /// Someone stopped it: the scheduler for a reason other than health, a user, a lost agent.
    Stopped,
}

/// One task of the service, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    /// The deployment that launched it (`startedBy`).
    pub deployment: String,
    pub instance: String,
    pub status: TaskStatus,
    /// `desiredStatus` is RUNNING (nobody has asked it to stop yet).
    pub desired_running: bool,
    pub health: Health,
    /// Its task definition has container health checks, so UNKNOWN is not good enough.
    pub health_checked: bool,
    pub started_at: Option<f64>,
    pub created_at: f64,
    /// For STOPPED tasks.
    pub ending: Option<Ending>,
    /// How the service's load balancers see it.
    pub lb: LbHealth,
    /// The store revision of its last change.
    pub revision: u64,
}

impl TaskView {
    /// Still holds resources on its instance (counts toward `maximumPercent`).
    pub fn live(&self) -> bool {
        self.status != TaskStatus::Stopped
    }

    /// Wanted running and not yet asked to stop.
    pub fn active(&self) -> bool {
        self.live() && self.desired_running
    }

    /// Running and healthy enough to count toward `minimumHealthyPercent`: HEALTHY when it has
    /// health checks, otherwise RUNNING for at least [`STABLE_SECS`].
    pub fn healthy(&self, now: f64) -> bool {
        self.active()
            && self.status == TaskStatus::Running
            && matches!(self.lb, LbHealth::None | LbHealth::Healthy)
            && match (self.health_checked, self.health) {
                (true, h) => h == Health::Healthy,
                (false, Health::Unhealthy) => false,
                (false, _) => self.started_at.is_some_and(|t| now - t >= STABLE_SECS),
            }
    }

    /// Failing its container or load balancer health checks after the grace period: to be
    /// replaced, for [`TaskView::failure`]'s reason.
    pub fn failing_health(&self, now: f64, grace: f64) -> bool {
        self.failure(now, grace).is_some()
    }

    /// Why it is to be replaced for its health, if it is: container health checks first.
    pub fn failure(&self, now: f64, grace: f64) -> Option<StopReason> {
        if !(self.active() && self.status == TaskStatus::Running && self.started_at.is_none_or(|t| now - t >= grace)) {
            return None;
        }
        if self.health == Health::Unhealthy {
            Some(StopReason::Unhealthy)
        } else if matches!(self.lb, LbHealth::Unhealthy { .. }) {
            Some(StopReason::ElbUnhealthy)
        } else {
            None
        }
    }
}

/// How a container instance looks to the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// ACTIVE with a connected agent.
    Active,
    /// ACTIVE but its agent is out of touch, not yet for long: its tasks are left alone.
    Disconnected,
    /// DRAINING: its service tasks are replaced elsewhere, then stopped.
    Draining,
    /// Its agent has been gone past the lost-agent timeout, or it was deregistered: its tasks
    /// are written off and replaced.
    Lost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub id: String,
    pub state: InstanceState,
    /// For daemon services: matches the service's constraints and could hold its task.
    pub daemon_eligible: bool,
}

/// One pass's observations.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub now: f64,
    /// The store revision the tasks were read at.
    pub revision: u64,
    /// Every task of the service the store still has, STOPPED ones included.
    pub tasks: &'a [TaskView],
    pub instances: &'a [InstanceView],
    /// An id for a deployment this pass may create (a rollback); unused otherwise.
    pub fresh_id: &'a str,
    /// The percent of production traffic the listener rules give the alternate target groups
    /// now; `None` when the service's load balancers have none.
    pub alternate_share: Option<f64>,
}

/// A task to start: from `deployment`, on `instance` (daemons) or where placement decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub deployment: String,
    pub task_definition: String,
    pub instance: Option<String>,
}

/// Why the scheduler stops a task ([`Stop::stopped_reason`] words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopReason {
    /// Fewer tasks are wanted.
    ScaledDown,
    /// A newer deployment replaces it.
    Replaced,
    /// Its container health checks failed.
    Unhealthy,
    /// A target group of its load balancers found it unhealthy.
    ElbUnhealthy,
    /// Its instance is DRAINING.
    Draining,
    /// The instance no longer matches the daemon's constraints.
    NotEligible,
    /// The service is being deleted.
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub task: String,
    /// The deployment that launched the task.
    pub deployment: String,
    pub reason: StopReason,
    /// For [`StopReason::ElbUnhealthy`]: the target group that found it unhealthy.
    pub target_group: Option<String>,
}

impl Stop {
    pub fn of(task: &TaskView, reason: StopReason) -> Stop {
        let target_group = match (&task.lb, reason) {
            (LbHealth::Unhealthy { target_group }, StopReason::ElbUnhealthy) => Some(target_group.clone()),
            _ => None,
        };
        Stop { task: task.id.clone(), deployment: task.deployment.clone(), reason, target_group }
    }

    /// The stop of a task [`TaskView::failing_health`] says is failing, for its reason.
    pub fn failing(task: &TaskView, now: f64, grace: f64) -> Stop {
        Stop::of(task, task.failure(now, grace).unwrap_or(StopReason::Unhealthy))
    }

    /// The task's `stoppedReason`, as ECS words it.
    pub fn stopped_reason(&self) -> String {
        let text = match self.reason {
            StopReason::ScaledDown => return format!("Scaling activity initiated by (deployment {})", self.deployment),
            StopReason::Replaced => "ECS is replacing this task with a task of the service's newer deployment.",
            StopReason::Unhealthy => messages::FAILED_HEALTH_CHECKS,
            StopReason::ElbUnhealthy => {
                return messages::failed_elb_health_checks(self.target_group.as_deref().unwrap_or_default());
            }
            StopReason::Draining => "Container instance is draining.",
            StopReason::NotEligible => "The container instance no longer matches the service's constraints.",
            StopReason::Deleting => "The service is being deleted.",
        };
        text.to_string()
    }
}

/// Running and pending tasks of one deployment, and how many it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
}

/// What one pass decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub state: State,
    pub launch: Vec<Launch>,
    pub stop: Vec<Stop>,
    /// Tasks on lost instances: to be marked STOPPED now (their agent cannot do it).
    pub lost: Vec<String>,
    /// New service events, oldest first.
    pub events: Vec<String>,
    /// The service's desired count as ECS reports it (a daemon's: its eligible instances).
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    /// Per deployment id, for the `deployments` list.
    pub per_deployment: Vec<(String, Counts)>,
    /// A deleted service with no tasks left: it can become INACTIVE.
    pub finished_deleting: bool,
}

/// The tasks the scheduler works with this pass: live ones not written off as lost.
pub(crate) struct Pass<'a> {
    pub spec: &'a Spec,
    pub now: f64,
    pub live: Vec<&'a TaskView>,
    pub instances: &'a [InstanceView],
    /// `instances` by id (the first of an id, should it appear twice): a pass asks for each
    /// task's instance, and 100,000 tasks over 5,000 instances must not search a list each.
    by_id: HashMap<&'a str, &'a InstanceView>,
}

impl<'a> Pass<'a> {
    fn new(spec: &'a Spec, now: f64, instances: &'a [InstanceView]) -> Pass<'a> {
        let mut by_id = HashMap::with_capacity(instances.len());
        for i in instances {
            by_id.entry(i.id.as_str()).or_insert(i);
        }
        Pass { spec, now, live: Vec::new(), instances, by_id }
    }

    pub fn instance(&self, id: &str) -> Option<&'a InstanceView> {
        self.by_id.get(id).copied()
    }

    pub fn instance_state(&self, id: &str) -> InstanceState {
        self.instance(id).map(|i| i.state).unwrap_or(InstanceState::Lost)
    }
}

/// One scheduler pass for one service.
pub fn reconcile(spec: &Spec, state: &State, observed: &Observed<'_>) -> Plan {
    let now = observed.now;
    let mut state = state.clone();
    let mut events = Vec::new();
    let mut pass = Pass::new(spec, now, observed.instances);

    // Tasks on lost instances are written off first, so their replacements go out this pass.
    let mut lost = Vec::new();
    for t in observed.tasks.iter().filter(|t| t.live()) {
        if pass.instance_state(&t.instance) == InstanceState::Lost {
            lost.push(t.id.clone());
        } else {
            pass.live.push(t);
        }
    }

    deployment::account_failures(spec, &mut state, observed, &mut events);

    let (launch, stop, desired) = match spec.scheduling {
        _ if spec.deleting => (Vec::new(), deleting_stops(&pass), 0),
        _ if spec.controller.task_sets() => task_set::plan(&pass, &state),
        Scheduling::Replica => replica::plan(&pass, &state, observed.alternate_share),
        Scheduling::Daemon => daemon::plan(&pass, &state),
    };
    let launch = if now < state.backoff.until { Vec::new() } else { launch };

    let changed = !launch.is_empty() || !stop.is_empty() || !lost.is_empty();
    if spec.controller.task_sets() {
        task_set::settle(&mut state, &pass, &launch, &stop, &mut events);
    } else {
        let entered = shift::advance(spec.strategy, spec.bake, &mut state, &pass, desired, observed.alternate_share);
        if let (Some(stage), Some(p)) = (entered, state.primary()) {
            events.push(messages::stage(&spec.name, &p.id, stage));
        }
        deployment::settle(spec, &mut state, &pass, desired, changed, &mut events);
    }

    let mut per_deployment = Vec::new();
    let count = |id: &str| {
        let mut c = Counts::default();
        for t in pass.live.iter().filter(|t| t.deployment == id) {
            match t.status {
                TaskStatus::Running => c.running += 1,
                s if s.is_pending() => c.pending += 1,
                _ => {}
            }
            c.desired += t.active() as u32;
        }
        c
    };
    for d in &state.deployments {
        let mut c = count(&d.id);
        if d.primary {
            c.desired = desired;
        }
        per_deployment.push((d.id.clone(), c));
    }
    for s in &state.task_sets {
        let c = Counts { desired: s.computed_desired(spec.desired_count), ..count(&s.id) };
        per_deployment.push((s.id.clone(), c));
    }
    let running = per_deployment.iter().map(|(_, c)| c.running).sum();
    let pending = per_deployment.iter().map(|(_, c)| c.pending).sum();
    let finished_deleting = spec.deleting && pass.live.is_empty() && lost.is_empty();
    Plan { state, launch, stop, lost, events, desired, running, pending, per_deployment, finished_deleting }
}

/// Healthy tasks `minimum_healthy_percent` of `desired` keeps (rounded up, as ECS does).
pub fn healthy_floor(desired: u32, minimum_healthy_percent: u32) -> usize {
    (u64::from(desired) * u64::from(minimum_healthy_percent)).div_ceil(100) as usize
}

/// Stops the tasks that should give way (older deployments', on draining instances, no longer
/// eligible) without letting the service's healthy tasks fall below `floor`: healthy ones only
/// while `healthy` stays at or above it, and ones still coming up only when the floor already
/// holds without them, since they may be all the service is about to have. `healthy` counts
/// every healthy task of the service not already being stopped, whatever its deployment.
pub(crate) fn give_way(mut doomed: Vec<(&TaskView, StopReason)>, healthy: usize, floor: usize, now: f64) -> Vec<Stop> {
    let mut spare = healthy.saturating_sub(floor);
    let floor_holds = healthy >= floor;
    doomed.sort_by(|a, b| usefulness(a.0, now).total_cmp(&usefulness(b.0, now)));
    let mut stops = Vec::new();
    for (t, reason) in doomed {
        if !t.healthy(now) {
            if floor_holds {
                stops.push(Stop::of(t, reason));
            }
        } else if spare > 0 {
            spare -= 1;
            stops.push(Stop::of(t, reason));
        }
    }
    stops
}

/// Orders tasks by how much stopping them would cost: healthy before running before
/// pending, and among equals the older first.
pub(crate) fn usefulness(t: &TaskView, now: f64) -> f64 {
    let rank = if t.healthy(now) {
        2.0
    } else if t.status == TaskStatus::Running {
        1.0
    } else {
        0.0
    };
    // Older tasks (smaller created_at) rank a little higher within their class.
    rank * 1e12 - t.created_at
}

fn deleting_stops(pass: &Pass<'_>) -> Vec<Stop> {
    pass.live.iter().filter(|t| t.active()).map(|t| Stop::of(t, StopReason::Deleting)).collect()
}
