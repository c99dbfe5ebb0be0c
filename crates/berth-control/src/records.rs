//! The records kept in the store for tasks and container instances: typed statuses and the
//! bookkeeping only Berth needs, beside the rest of the ECS-shaped object a client sees.
//!
//! Statuses are enums: a record whose status is unknown does not decode (an error, never a
//! default). Records written before the statuses were typed (inside the ECS object) are
//! read by moving them out, so an older data dir keeps working.

use berth_model::health::Health;
use berth_model::resources::{Requirements, Resources};
use berth_model::task::{DesiredStatus, Failure, StopCode, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::Obj;

/// A task: its lifecycle, typed, and the rest of the ECS `Task` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "StoredTask")]
pub struct TaskRecord {
    /// The ECS `Task` object without the members kept typed below ([`TaskRecord::ecs`] puts
    /// them back).
    pub task: Obj,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health: Health,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// Set when the task failed (what the service scheduler counts), not when it was stopped.
    pub failure: Option<Failure>,
    /// Taken from the instance's remaining resources until the task is STOPPED.
    pub requirements: Requirements,
    /// Whether an agent has taken the task over (reported any state for it).
    pub claimed: bool,
    /// A FARGATE task's host: the container instance whose capacity it runs on, which the
    /// task does not show (an EC2 task's is its `containerInstanceArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Seconds its containers get when stopped, when the stop said (a spot interruption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// A service task's registrations in its service's target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<crate::service_targets::Targets>,
    /// A service task's instances in its service's Cloud Map services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<crate::service_registries::Registration>,
}

/// What an assignment poll sends of a task (see `berth_agent_protocol::assignments`), read
/// without decoding the record whole: the ECS object's other members are skipped, not built.
/// A record written before the statuses were typed does not read this way; decode those
/// whole.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTask {
    pub task: AgentTaskFields,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    #[serde(default)]
    pub host: Option<Host>,
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    #[serde(default)]
    targets: Option<crate::service_targets::Targets>,
}

/// The members of the ECS object an agent reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTaskFields {
    pub task_arn: String,
    pub task_definition_arn: String,
    pub container_instance_arn: Option<String>,
    pub overrides: Option<Obj>,
    pub launch_type: Option<String>,
    pub availability_zone: Option<String>,
    /// `service:NAME` for a service's task.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub containers: Vec<AgentContainer>,
    pub attachments: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentContainer {
    pub name: String,
    pub container_arn: Option<String>,
}

impl AgentTask {
    /// Draining from its load balancers: its agent keeps it running meanwhile.
    pub fn held(&self) -> bool {
        self.targets.as_ref().is_some_and(|t| t.holds())
    }
}

/// What the task index keeps of a record (see `task_index::Summary`), read without building
/// the ECS object: every task change passes through the index, so this read is on the path
/// of each report. Records older than typed statuses do not read this way; decode those
/// whole.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexTask {
    pub task: IndexTaskFields,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health: Health,
    #[serde(default)]
    failure: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    stop_code: Option<StopCode>,
    #[serde(default)]
    pub host: Option<Host>,
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    #[serde(default)]
    targets: Option<crate::service_targets::Targets>,
    #[serde(default)]
    registrations: Vec<serde::de::IgnoredAny>,
}

/// The members of the ECS object the task index reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexTaskFields {
    pub group: Option<String>,
    pub container_instance_arn: Option<String>,
    pub task_definition_arn: Option<String>,
    pub started_by: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub created_at: Option<f64>,
}

impl IndexTask {
    /// Whether it failed, as [`TaskRecord::failure`] says (older records only by stop code).
    pub fn failed(&self) -> bool {
        self.failure.is_some() || self.stop_code.and_then(StopCode::failure).is_some()
    }

    /// Draining from its load balancers: its agent keeps it running meanwhile.
    pub fn held(&self) -> bool {
        self.targets.as_ref().is_some_and(|t| t.holds())
    }

    /// It has load balancer registrations or Cloud Map instances to keep in step.
    pub fn registered(&self) -> bool {
        self.targets.is_some() || !self.registrations.is_empty()
    }

    /// As [`TaskRecord::placed_on`].
    pub fn placed_on(&self, cluster: &str) -> Option<Host> {
        match &self.host {
            Some(h) => Some(h.clone()),
            None => self.instance_id().map(|id| Host { cluster: cluster.to_string(), id: id.to_string() }),
        }
    }

    /// As [`TaskRecord::instance_id`].
    pub fn instance_id(&self) -> Option<&str> {
        self.task.container_instance_arn.as_deref().and_then(|a| a.rsplit('/').next())
    }
}

impl From<&TaskRecord> for IndexTask {
    /// The same view of a record decoded whole (one older than typed statuses).
    fn from(rec: &TaskRecord) -> Self {
        let text = |k: &str| rec.field(k).map(str::to_string);
        let number = |k: &str| rec.task.get(k).and_then(Value::as_f64);
        IndexTask {
            task: IndexTaskFields {
                group: text("group"),
                container_instance_arn: text("containerInstanceArn"),
                task_definition_arn: text("taskDefinitionArn"),
                started_by: text("startedBy"),
                capacity_provider_name: text("capacityProviderName"),
                started_at: number("startedAt"),
                stopped_at: number("stoppedAt"),
                created_at: number("createdAt"),
            },
            last_status: rec.last_status,
            desired_status: rec.desired_status,
            health: rec.health,
            failure: rec.failure.map(|_| serde::de::IgnoredAny),
            stop_code: rec.stop_code,
            host: rec.host.clone(),
            stop_timeout: rec.stop_timeout,
            targets: rec.targets.clone(),
            registrations: rec.registrations.iter().map(|_| serde::de::IgnoredAny).collect(),
        }
    }
}

/// A container instance, by its cluster and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Host {
    pub cluster: String,
    pub id: String,
}

/// How a task record is read: typed members when present, else (older records) from inside
/// the ECS object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTask {
    task: Obj,
    last_status: Option<TaskStatus>,
    desired_status: Option<DesiredStatus>,
    health: Option<Health>,
    stop_code: Option<StopCode>,
    stopped_reason: Option<String>,
    failure: Option<Failure>,
    requirements: Requirements,
    #[serde(default)]
    claimed: bool,
    #[serde(default)]
    host: Option<Host>,
    #[serde(default)]
    stop_timeout: Option<u64>,
    #[serde(default)]
    targets: Option<crate::service_targets::Targets>,
    #[serde(default)]
    registrations: Vec<crate::service_registries::Registration>,
}

/// Takes `key` out of an older record's ECS object, parsed with `parse`.
fn legacy<T>(task: &mut Obj, key: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, String> {
    match task.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse(&s).map(Some).ok_or_else(|| format!("unknown {key} {s:?}")),
        Some(other) => Err(format!("{key} is not a string: {other}")),
    }
}

fn stop_code(s: &str) -> Option<StopCode> {
    serde_json::from_value(json!(s)).ok()
}

impl TryFrom<StoredTask> for TaskRecord {
    type Error = String;

    fn try_from(s: StoredTask) -> Result<Self, String> {
        let mut task = s.task;
        let last_status = legacy(&mut task, "lastStatus", TaskStatus::parse)?;
        let desired_status = legacy(&mut task, "desiredStatus", DesiredStatus::parse)?;
        let health = legacy(&mut task, "healthStatus", Health::parse)?;
        let legacy_code = legacy(&mut task, "stopCode", stop_code)?;
        let legacy_reason = legacy(&mut task, "stoppedReason", |s| Some(s.to_string()))?;
        let last_status = s.last_status.or(last_status).ok_or("a task record without a lastStatus")?;
        let stop_code = s.stop_code.or(legacy_code);
        // Older records named failures only through their stop code.
        let failure = s.failure.or(stop_code.and_then(StopCode::failure));
        Ok(TaskRecord {
            task,
            last_status,
            desired_status: s.desired_status.or(desired_status).unwrap_or(DesiredStatus::Running),
            health: s.health.or(health).unwrap_or_default(),
            stop_code,
            stopped_reason: s.stopped_reason.or(legacy_reason),
            failure,
            requirements: s.requirements,
            claimed: s.claimed,
            host: s.host,
            stop_timeout: s.stop_timeout,
            targets: s.targets,
            registrations: s.registrations,
        })
    }
}

impl TaskRecord {
    /// A new task, PENDING and wanted RUNNING.
    pub fn new(task: Obj, requirements: Requirements) -> TaskRecord {
        TaskRecord {
            task,
            last_status: TaskStatus::Pending,
            desired_status: DesiredStatus::Running,
            health: Health::Unknown,
            stop_code: None,
            stopped_reason: None,
            failure: None,
            requirements,
            claimed: false,
            host: None,
            stop_timeout: None,
            targets: None,
            registrations: Vec::new(),
        }
    }

    /// The whole ECS `Task` object.
    pub fn ecs(&self) -> Obj {
        let mut task = self.task.clone();
        task.insert("lastStatus".into(), json!(self.last_status.as_str()));
        task.insert("desiredStatus".into(), json!(self.desired_status.as_str()));
        task.insert("healthStatus".into(), json!(self.health.as_str()));
        if let Some(code) = self.stop_code {
            task.insert("stopCode".into(), json!(code.as_str()));
        }
        if let Some(reason) = &self.stopped_reason {
            task.insert("stoppedReason".into(), json!(reason));
        }
        task
    }

    /// A text member of the ECS object (`taskArn`, `group`, `startedBy`, ...).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.task.get(key).and_then(Value::as_str)
    }

    /// The id part of the container instance ARN the task was placed on.
    pub fn instance_id(&self) -> Option<&str> {
        self.field("containerInstanceArn").and_then(|a| a.rsplit('/').next())
    }

    /// The container instance the task runs on, for a task of `cluster`: a FARGATE task's
    /// host, else the instance its `containerInstanceArn` names.
    pub fn placed_on(&self, cluster: &str) -> Option<Host> {
        match &self.host {
            Some(h) => Some(h.clone()),
            None => self.instance_id().map(|id| Host { cluster: cluster.to_string(), id: id.to_string() }),
        }
    }

    pub fn live(&self) -> bool {
        self.last_status != TaskStatus::Stopped
    }
}

/// ECS `ContainerInstance.status`, as far as Berth uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Takes tasks.
    Active,
    /// Takes no new tasks; its service tasks move elsewhere.
    Draining,
    /// Deregistered.
    Inactive,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceStatus> {
        [InstanceStatus::Active, InstanceStatus::Draining, InstanceStatus::Inactive]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A container instance: its status, typed, the rest of the ECS `ContainerInstance` object,
/// and when its agent last called.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "StoredInstance")]
pub struct InstanceRecord {
    /// The ECS object without `status` ([`InstanceRecord::ecs`] puts it back).
    pub instance: Obj,
    pub status: InstanceStatus,
    /// Seconds since the epoch of the agent's last contact.
    pub heartbeat: f64,
}

#[derive(Deserialize)]
struct StoredInstance {
    instance: Obj,
    status: Option<InstanceStatus>,
    heartbeat: f64,
}

/// What an assignment poll checks of its instance on every poll, read without decoding the
/// record whole: with thousands of instances polling, decoding each record was a twentieth of
/// the server's time during a big placement.
#[derive(Deserialize)]
pub struct InstancePulse {
    /// `None` in records written before statuses were typed: decode those whole.
    pub status: Option<InstanceStatus>,
    pub heartbeat: f64,
    instance: PulseFields,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PulseFields {
    container_instance_arn: Option<String>,
    agent_connected: Option<bool>,
}

impl InstancePulse {
    pub fn arn(&self) -> Option<&str> {
        self.instance.container_instance_arn.as_deref()
    }

    /// Shown connected, with its last contact less than `within` seconds before `now`.
    pub fn fresh(&self, now: f64, within: f64) -> bool {
        self.instance.agent_connected == Some(true) && now - self.heartbeat < within
    }
}

impl TryFrom<StoredInstance> for InstanceRecord {
    type Error = String;

    fn try_from(s: StoredInstance) -> Result<Self, String> {
        let mut instance = s.instance;
        let legacy = legacy(&mut instance, "status", InstanceStatus::parse)?;
        let status = s.status.or(legacy).ok_or("a container instance record without a status")?;
        Ok(InstanceRecord { instance, status, heartbeat: s.heartbeat })
    }
}

impl InstanceRecord {
    /// The value of one of its attributes (`ecs.availability-zone`, `berth.host-address`).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        let attributes = self.instance.get("attributes").and_then(Value::as_array)?;
        let found = attributes.iter().find(|a| a.get("name").and_then(Value::as_str) == Some(name))?;
        found.get("value").and_then(Value::as_str)
    }

    /// The whole ECS `ContainerInstance` object.
    pub fn ecs(&self) -> Obj {
        let mut instance = self.instance.clone();
        instance.insert("status".into(), json!(self.status.as_str()));
        instance
    }

    pub fn remaining(&self) -> Resources {
        let list = self.instance.get("remainingResources").and_then(Value::as_array).cloned().unwrap_or_default();
        Resources::from_ecs(&list)
    }

    pub fn set_remaining(&mut self, r: &Resources) {
        self.instance.insert("remainingResources".into(), r.to_ecs());
    }

    /// Whether the agent has been silent for longer than `lost_after` seconds (its tasks are
    /// written off).
    pub fn lost(&self, now: f64, lost_after: f64) -> bool {
        now - self.heartbeat > lost_after
    }

    /// Whether the agent has been in touch within `timeout_secs` of `now`.
    pub fn connected(&self, now: f64, timeout_secs: f64) -> bool {
        self.instance.get("agentConnected").and_then(Value::as_bool).unwrap_or(false)
            && now - self.heartbeat <= timeout_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_pulse_reads_what_the_whole_record_says() {
        let mut instance = Obj::new();
        instance.insert("containerInstanceArn".into(), json!("arn:i1"));
        instance.insert("agentConnected".into(), json!(true));
        instance.insert("attributes".into(), json!([{"name": "ecs.availability-zone", "value": "a"}]));
        let rec = InstanceRecord { instance, status: InstanceStatus::Active, heartbeat: 100.0 };
        let pulse: InstancePulse = serde_json::from_slice(&crate::store::encode(&rec)).unwrap();
        assert_eq!((pulse.status, pulse.arn()), (Some(InstanceStatus::Active), Some("arn:i1")));
        assert!(pulse.fresh(110.0, 15.0) && !pulse.fresh(120.0, 15.0));
        // An older record, its status inside the ECS object: no typed status, so decoded whole.
        let old = json!({"instance": {"containerInstanceArn": "arn:i1", "status": "ACTIVE"}, "heartbeat": 1.0});
        assert_eq!(serde_json::from_value::<InstancePulse>(old).unwrap().status, None);
    }

    #[test]
    fn an_agent_task_reads_what_the_whole_record_says() {
        let task = json!({"taskArn": "arn:t1", "taskDefinitionArn": "arn:d:1", "containerInstanceArn": "arn:i1",
            "overrides": {"containerOverrides": [{"name": "web"}]}, "launchType": "EC2", "availabilityZone": "a",
            "containers": [{"name": "web", "containerArn": "arn:c1", "image": "nginx", "lastStatus": "PENDING"}],
            "attachments": [], "group": "service:web", "tags": []});
        let mut rec = TaskRecord::new(task.as_object().unwrap().clone(), Requirements::default());
        rec.last_status = TaskStatus::Running;
        rec.desired_status = DesiredStatus::Stopped;
        rec.stop_timeout = Some(30);
        let read: AgentTask = serde_json::from_slice(&crate::store::encode(&rec)).unwrap();
        assert_eq!(
            (read.last_status, read.desired_status, read.stop_timeout),
            (TaskStatus::Running, DesiredStatus::Stopped, Some(30))
        );
        assert!(!read.held() && read.host.is_none());
        let f = &read.task;
        assert_eq!((f.task_arn.as_str(), f.task_definition_arn.as_str()), ("arn:t1", "arn:d:1"));
        assert_eq!(
            (f.container_instance_arn.as_deref(), f.launch_type.as_deref(), f.availability_zone.as_deref()),
            (Some("arn:i1"), Some("EC2"), Some("a"))
        );
        assert_eq!(f.overrides.as_ref().map(|o| &o["containerOverrides"]), Some(&json!([{"name": "web"}])));
        assert_eq!((f.containers[0].name.as_str(), f.containers[0].container_arn.as_deref()), ("web", Some("arn:c1")));
        assert_eq!(f.attachments, Some(json!([])));
        // An older record, its statuses inside the ECS object, does not read this way.
        let old = json!({"task": {"taskArn": "arn:t1", "taskDefinitionArn": "arn:d:1", "lastStatus": "RUNNING"},
            "requirements": requirements()});
        assert!(serde_json::from_value::<AgentTask>(old).is_err());
    }

    fn requirements() -> Value {
        serde_json::to_value(Requirements::default()).unwrap()
    }

    #[test]
    fn a_task_round_trips_with_typed_statuses_outside_the_ecs_object() {
        let mut rec = TaskRecord::new(Obj::new(), Requirements::default());
        rec.last_status = TaskStatus::Running;
        rec.failure = Some(Failure::HealthCheck);
        let stored = serde_json::to_value(&rec).unwrap();
        assert_eq!(stored["lastStatus"], "RUNNING");
        assert!(stored["task"].get("lastStatus").is_none());
        let back: TaskRecord = serde_json::from_value(stored).unwrap();
        assert_eq!((back.last_status, back.failure), (TaskStatus::Running, Some(Failure::HealthCheck)));
        assert_eq!(back.ecs()["lastStatus"], "RUNNING");
    }

    #[test]
    fn an_older_task_record_is_migrated_and_an_unknown_status_refused() {
        let old = json!({"task": {"taskArn": "t", "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                         "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited"},
                         "requirements": requirements(), "claimed": true});
        let rec: TaskRecord = serde_json::from_value(old).unwrap();
        assert_eq!(rec.last_status, TaskStatus::Stopped);
        assert_eq!(rec.failure, Some(Failure::EssentialContainerExited));
        assert_eq!(rec.stopped_reason.as_deref(), Some("Essential container in task exited"));
        assert!(rec.task.get("stopCode").is_none() && rec.task.get("lastStatus").is_none());

        let unknown = json!({"task": {"lastStatus": "SLEEPING"}, "requirements": requirements()});
        let err = serde_json::from_value::<TaskRecord>(unknown).unwrap_err().to_string();
        assert!(err.contains("unknown lastStatus \"SLEEPING\""), "{err}");
        let typed_unknown = json!({"task": {}, "lastStatus": "SLEEPING", "requirements": requirements()});
        assert!(serde_json::from_value::<TaskRecord>(typed_unknown).is_err());
    }

    #[test]
    fn instance_statuses_are_typed_and_older_records_migrate() {
        let old = json!({"instance": {"status": "DRAINING"}, "heartbeat": 1.0});
        let rec: InstanceRecord = serde_json::from_value(old).unwrap();
        assert_eq!(rec.status, InstanceStatus::Draining);
        assert_eq!(rec.ecs()["status"], "DRAINING");
        assert!(
            serde_json::from_value::<InstanceRecord>(json!({"instance": {"status": "GONE"}, "heartbeat": 1.0}))
                .is_err()
        );
    }
}
