//! The records kept in the store for tasks and container instances: the ECS-shaped object a
//! client sees, plus the bookkeeping only Berth needs.

use berth_model::resources::{Requirements, Resources};
use berth_model::task::TaskStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Obj;

/// A task: the ECS `Task` object and what it holds on its container instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: Obj,
    /// Taken from the instance's remaining resources until the task is STOPPED.
    pub requirements: Requirements,
    /// Whether an agent has taken the task over (reported any state for it).
    #[serde(default)]
    pub claimed: bool,
}

impl TaskRecord {
    pub fn last_status(&self) -> TaskStatus {
        self.task.get("lastStatus").and_then(Value::as_str).and_then(TaskStatus::parse).unwrap_or(TaskStatus::Pending)
    }

    pub fn field(&self, key: &str) -> Option<&str> {
        self.task.get(key).and_then(Value::as_str)
    }

    /// The id part of the container instance ARN the task was placed on.
    pub fn instance_id(&self) -> Option<&str> {
        self.field("containerInstanceArn").and_then(|a| a.rsplit('/').next())
    }
}

/// A container instance: the ECS `ContainerInstance` object and when its agent last called.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub instance: Obj,
    /// Seconds since the epoch of the agent's last contact.
    pub heartbeat: f64,
}

impl InstanceRecord {
    pub fn status(&self) -> &str {
        self.instance.get("status").and_then(Value::as_str).unwrap_or("ACTIVE")
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
