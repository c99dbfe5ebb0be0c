//! What the endpoint knows of a task: a snapshot its runner (the only writer of the task's
//! state) builds and publishes whenever something may have changed. Plain data, no I/O.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use berth_agent_protocol::network::Eni;
use serde_json::{Map, Value};

/// A task as the endpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// The cluster's name as the agent knows it.
    pub cluster: String,
    pub task_arn: String,
    pub family: String,
    pub revision: String,
    pub desired_status: String,
    pub known_status: String,
    /// Task-level cpu (units) and memory (MiB), overrides first; `None` when not set.
    pub cpu: Option<u64>,
    pub memory: Option<u64>,
    pub pull_started_at: Option<SystemTime>,
    pub pull_stopped_at: Option<SystemTime>,
    pub execution_stopped_at: Option<SystemTime>,
    pub availability_zone: Option<String>,
    pub launch_type: Option<String>,
    /// The task's network interface (awsvpc).
    pub eni: Option<Eni>,
    pub containers: Vec<ContainerView>,
}

/// A published port: `HostIp` is `None` where the container has its own address (awsvpc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    pub container_port: u16,
    pub protocol: String,
    pub host_port: u16,
    pub host_ip: Option<String>,
}

/// A container of a task as the endpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    /// Its name in the task definition.
    pub name: String,
    /// The runtime's id, once created.
    pub docker_id: Option<String>,
    /// Its name in the runtime.
    pub docker_name: String,
    pub image: String,
    pub image_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub desired_status: String,
    pub known_status: String,
    pub exit_code: Option<i64>,
    /// Container-level cpu units and memory MiB (0 when not set).
    pub cpu: i64,
    pub memory: i64,
    pub created_at: Option<SystemTime>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub log_driver: Option<String>,
    pub log_options: Map<String, Value>,
    pub container_arn: Option<String>,
    /// `bridge`, `host`, `awsvpc` or `none`.
    pub network_mode: String,
    /// Its own address (bridge mode), when the runtime said.
    pub address: Option<Ipv4Addr>,
    pub ports: Vec<PortView>,
    /// Its cgroup relative to each hierarchy's root, while it exists.
    pub cgroup: Option<String>,
    /// Whether it was created and has not stopped: only then are its stats read.
    pub live: bool,
    /// How often its restart policy restarted it (`None` without a restart policy).
    pub restart_count: Option<u32>,
}

impl ContainerView {
    /// Whether its network namespace is its own (or its task's): then its interfaces' counters
    /// are its own, as Docker's stats show them.
    pub fn has_own_network(&self) -> bool {
        matches!(self.network_mode.as_str(), "bridge" | "awsvpc")
    }
}
