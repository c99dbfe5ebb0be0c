//! Services whose deployments an external controller makes (ECS `deploymentController`
//! EXTERNAL or CODE_DEPLOY): the scheduler makes no deployments of its own and keeps each
//! task set at its share of the desired count, `ceil(desiredCount x scale%)`. Task sets are
//! not paced by `minimumHealthyPercent`/`maximumPercent` (ECS applies those only to tasks on
//! draining instances), so a set's missing tasks go out at once and its surplus stops at once.

use serde::{Deserialize, Serialize};

use crate::{InstanceState, Launch, Pass, State, Stop, StopReason, TaskView, give_way, healthy_floor, usefulness};

/// ECS `TaskSet.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskSetStatus {
    /// Serves production traffic; the service shows its task definition.
    Primary,
    Active,
    /// Deleted: its tasks stop, then it leaves the list.
    Draining,
}

impl TaskSetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSetStatus::Primary => "PRIMARY",
            TaskSetStatus::Active => "ACTIVE",
            TaskSetStatus::Draining => "DRAINING",
        }
    }
}

/// ECS `TaskSet.stabilityStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stability {
    /// Exactly its computed count runs, all healthy, none pending or on a draining instance.
    SteadyState,
    Stabilizing,
}

impl Stability {
    pub fn as_str(self) -> &'static str {
        match self {
            Stability::SteadyState => "STEADY_STATE",
            Stability::Stabilizing => "STABILIZING",
        }
    }
}

/// A tag of a task set, in ECS's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One task set, as the service record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSet {
    /// `ecs-svc/` and 19 digits; its tasks carry it as `startedBy`.
    pub id: String,
    pub task_definition: String,
    /// Percent of the service's desired count, 0 to 100.
    pub scale: f64,
    pub status: TaskSetStatus,
    pub stability: Stability,
    pub stability_at: f64,
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default)]
    pub external_id: Option<String>,
    /// `CODE_DEPLOY` for the set a CODE_DEPLOY service starts with; unset for EXTERNAL ones.
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Failed tasks stopped at or before this store revision are already counted.
    #[serde(default)]
    pub seen_revision: u64,
    /// The set's `networkConfiguration.awsvpcConfiguration` (awsvpc task definitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// ECS `AwsVpcConfiguration`, as a task set keeps it (checked when the set was created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
}

impl TaskSet {
    pub fn new(id: String, task_definition: String, scale: f64, now: f64, revision: u64) -> TaskSet {
        TaskSet {
            id,
            task_definition,
            scale,
            status: TaskSetStatus::Active,
            stability: Stability::Stabilizing,
            stability_at: now,
            created_at: now,
            updated_at: now,
            external_id: None,
            started_by: None,
            client_token: None,
            tags: Vec::new(),
            seen_revision: revision,
            awsvpc_configuration: None,
        }
    }

    /// ECS `computedDesiredCount`: the scale's share of the service's desired count, rounded
    /// up; nothing while draining.
    pub fn computed_desired(&self, desired: u32) -> u32 {
        if self.status == TaskSetStatus::Draining {
            return 0;
        }
        // Hundredths of a percent, so 10 x 33.33% is 3.333 and rounds up to 4 exactly.
        let hundredths = (self.scale * 100.0).round() as u64;
        (u64::from(desired) * hundredths).div_ceil(10_000) as u32
    }
}

/// The launches and stops of one pass over a service's task sets, and its desired count.
pub(crate) fn plan(pass: &Pass<'_>, state: &State) -> (Vec<Launch>, Vec<Stop>, u32) {
    let now = pass.now;
    let desired = pass.spec.desired_count;
    let draining = |t: &TaskView| pass.instance_state(&t.instance) == InstanceState::Draining;
    let mut stops = Vec::new();
    let mut launch = Vec::new();
    let mut doomed = Vec::new();

    for t in pass.live.iter().filter(|t| t.failing_health(now, pass.spec.grace_period)) {
        stops.push(Stop::failing(t, now, pass.spec.grace_period));
    }
    let active: Vec<&TaskView> =
        pass.live.iter().copied().filter(|t| t.active() && !t.failing_health(now, pass.spec.grace_period)).collect();
    let mut total = 0;
    for set in &state.task_sets {
        let want = set.computed_desired(desired) as usize;
        total += want;
        let mut keep: Vec<&TaskView> =
            active.iter().copied().filter(|t| t.deployment == set.id && !draining(t)).collect();
        keep.sort_by(|a, b| usefulness(b, now).total_cmp(&usefulness(a, now)));
        for t in keep.iter().skip(want) {
            stops.push(Stop::of(t, StopReason::ScaledDown));
        }
        for _ in keep.len()..want {
            launch.push(Launch {
                deployment: set.id.clone(),
                task_definition: set.task_definition.clone(),
                instance: None,
            });
        }
    }
    // Tasks on draining instances, and tasks of sets that are gone, give way within the floor.
    for t in &active {
        let known = state.task_sets.iter().any(|s| s.id == t.deployment);
        if !known {
            doomed.push((*t, StopReason::Replaced));
        } else if draining(t) {
            doomed.push((*t, StopReason::Draining));
        }
    }
    let stopping: Vec<&str> = stops.iter().map(|s| s.task.as_str()).collect();
    let healthy = active.iter().filter(|t| !stopping.contains(&t.id.as_str()) && t.healthy(now)).count();
    let floor = healthy_floor(total as u32, pass.spec.minimum_healthy_percent);
    stops.extend(give_way(doomed, healthy, floor, now));
    (launch, stops, desired)
}

/// After the pass's actions are known: each set's stability (and when it last changed),
/// drained sets leave the list, and the service tells when every set is steady.
pub(crate) fn settle(state: &mut State, pass: &Pass<'_>, launch: &[Launch], stop: &[Stop], events: &mut Vec<String>) {
    let now = pass.now;
    let desired = pass.spec.desired_count;
    let draining = |t: &TaskView| pass.instance_state(&t.instance) == InstanceState::Draining;
    state.task_sets.retain(|s| s.status != TaskSetStatus::Draining || pass.live.iter().any(|t| t.deployment == s.id));
    for set in &mut state.task_sets {
        let mine: Vec<&&TaskView> = pass.live.iter().filter(|t| t.deployment == set.id).collect();
        let steady =
            mine.len() == set.computed_desired(desired) as usize && mine.iter().all(|t| t.healthy(now) && !draining(t));
        let acted = launch.iter().any(|l| l.deployment == set.id) || stop.iter().any(|s| s.deployment == set.id);
        let stability = if steady && !acted { Stability::SteadyState } else { Stability::Stabilizing };
        if stability != set.stability {
            set.stability = stability;
            set.stability_at = now;
        }
    }
    let known = |t: &&TaskView| state.task_sets.iter().any(|s| s.id == t.deployment);
    let steady = !pass.spec.deleting
        && pass.live.iter().all(known)
        && state.task_sets.iter().all(|s| s.stability == Stability::SteadyState);
    if steady && !state.steady {
        events.push(crate::messages::steady(&pass.spec.name));
    }
    state.steady = steady;
}
