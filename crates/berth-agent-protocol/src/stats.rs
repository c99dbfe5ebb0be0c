//! Berth's stats channel: `POST /berth/v1/stats`, SigV4-signed for `ecs`, where an agent
//! reports, each metric period, how much cpu and memory each of its tasks used. The control
//! plane turns a report into the `AWS/ECS` and `ECS/ContainerInsights` metrics of the tasks'
//! services and clusters.

use serde::{Deserialize, Serialize};

pub const PATH: &str = "/berth/v1/stats";

/// One task's use over the last period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    pub task_id: String,
    /// CPU time the task's processes used in the period, in seconds.
    pub cpu_seconds: f64,
    /// The period's length, in seconds.
    pub seconds: f64,
    /// Memory in use at the end of the period.
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub cluster: String,
    /// The container instance's id (the last part of its ARN).
    pub container_instance: String,
    /// When the period ended, in seconds since the epoch.
    pub at: f64,
    pub tasks: Vec<TaskStats>,
}
