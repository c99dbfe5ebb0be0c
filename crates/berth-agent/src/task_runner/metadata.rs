//! What the runner tells the task metadata endpoint ([`crate::metadata`]): a view of its task
//! built from the runner's own state, published after every step that may change what the
//! endpoint shows, and withdrawn once the task's containers are removed.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_model::task::TaskStatus;
use serde_json::{Map, Value};

use super::{Container, TaskRun};
use crate::lifecycle::{ContainerStatus, Desired};
use crate::metadata::view::PortView;
use crate::metadata::{ContainerView, TaskView};
use crate::runtime::Observed;

/// What the endpoint shows of a task beyond its state, from its definition.
#[derive(Debug, Default)]
pub(super) struct TaskShown {
    pub family: String,
    pub revision: String,
    /// Task-level cpu units and memory MiB, overrides first.
    pub cpu: Option<u64>,
    pub memory: Option<u64>,
}

/// What the endpoint shows of a container beyond its state.
#[derive(Debug, Default)]
pub(super) struct ContainerShown {
    /// Container-level cpu units and memory MiB, overrides first (0: not set).
    pub cpu: i64,
    pub memory: i64,
    pub log_driver: Option<String>,
    pub log_options: Map<String, Value>,
    pub created_at: Option<SystemTime>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub address: Option<Ipv4Addr>,
    pub image_id: Option<String>,
    pub cgroup: Option<String>,
}

impl ContainerShown {
    /// From container definition `def` and its entry of `containerOverrides`, if any.
    pub fn of(def: &Map<String, Value>, overrides: Option<&Map<String, Value>>) -> Self {
        let name = def.get("name").and_then(Value::as_str);
        let over = overrides
            .and_then(|o| o.get("containerOverrides"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|o| o.get("name").and_then(Value::as_str) == name);
        let pick = |key: &str| over.and_then(|o| o[key].as_i64()).or_else(|| def.get(key)?.as_i64()).unwrap_or(0);
        let log = def.get("logConfiguration");
        ContainerShown {
            cpu: pick("cpu"),
            memory: pick("memory"),
            log_driver: log.and_then(|l| l["logDriver"].as_str()).map(str::to_string),
            log_options: log.and_then(|l| l["options"].as_object()).cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    /// What the runtime says about the container (what it does not say is kept).
    pub fn observed(&mut self, o: &Observed) {
        self.address = o.address.or(self.address);
        self.image_id = o.image_id.clone().or(self.image_id.take());
        self.cgroup = o.cgroup.clone().or(self.cgroup.take());
    }
}

/// The ECS agent's names of the container statuses.
fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::None => "NONE",
        ContainerStatus::Pulled => "PULLED",
        ContainerStatus::Created => "CREATED",
        ContainerStatus::Running => "RUNNING",
        ContainerStatus::Stopped => "STOPPED",
    }
}

fn desired_name(desired: Desired) -> &'static str {
    match desired {
        Desired::Running => "RUNNING",
        Desired::Stopped => "STOPPED",
    }
}

/// A reported timestamp (seconds, to the millisecond) as a time.
fn wall(seconds: Option<f64>) -> Option<SystemTime> {
    seconds.filter(|s| *s >= 0.0).map(|s| UNIX_EPOCH + Duration::from_millis((s * 1000.0).round() as u64))
}

/// The published ports: what the runtime bound, or, with the task's own address (awsvpc),
/// the container ports themselves.
fn ports(c: &Container) -> Vec<PortView> {
    if !c.bindings.is_empty() {
        let bound = c.bindings.iter().map(|b| PortView {
            container_port: b.container_port,
            protocol: b.protocol.clone(),
            host_port: b.host_port,
            host_ip: Some(b.bind_ip.clone()),
        });
        return bound.collect();
    }
    let Some(spec) = c.spec.as_ref().filter(|s| s.network_mode == "awsvpc") else { return Vec::new() };
    let own = spec.ports.iter().map(|p| PortView {
        container_port: p.container_port,
        protocol: p.protocol.clone(),
        host_port: p.container_port,
        host_ip: None,
    });
    own.collect()
}

impl TaskRun {
    /// Publishes the task as it stands now.
    pub(super) fn publish(&self) {
        self.shared.metadata.publish(self.view());
    }

    /// The task's containers are gone: its endpoint ids answer no more.
    pub(super) fn withdraw(&self) {
        self.shared.metadata.remove(self.arn());
    }

    fn view(&self) -> TaskView {
        let status = self.status();
        let stopped = status == TaskStatus::Stopped;
        TaskView {
            cluster: self.cluster_shown(),
            task_arn: self.arn().to_string(),
            family: self.shown.family.clone(),
            revision: self.shown.revision.clone(),
            desired_status: desired_name(self.desired).into(),
            known_status: status.as_str().into(),
            cpu: self.shown.cpu,
            memory: self.shown.memory,
            pull_started_at: wall(self.pull_started),
            pull_stopped_at: wall(self.pull_stopped),
            execution_stopped_at: stopped
                .then(|| self.containers.iter().filter_map(|c| c.shown.finished_at).max())
                .flatten(),
            availability_zone: self.task.availability_zone.clone(),
            launch_type: self.task.launch_type.clone(),
            eni: self.task.network.as_ref().map(|n| n.eni.clone()),
            containers: self.containers.iter().map(|c| self.container_view(c)).collect(),
        }
    }

    /// The cluster as the endpoint names it: its ARN for a FARGATE task, its name otherwise,
    /// as on AWS.
    fn cluster_shown(&self) -> String {
        let fargate = self.task.launch_type.as_deref() == Some("FARGATE");
        match self.arn().split_once(":task/") {
            Some((prefix, _)) if fargate => format!("{prefix}:cluster/{}", self.cluster()),
            _ => self.cluster().to_string(),
        }
    }

    fn container_view(&self, c: &Container) -> ContainerView {
        let spec = c.spec.as_ref();
        let shown = &c.shown;
        ContainerView {
            name: c.name.clone(),
            docker_id: c.id.clone(),
            docker_name: spec.map(|s| s.name.clone()).unwrap_or_default(),
            image: spec.map(|s| s.image.clone()).unwrap_or_default(),
            image_id: shown.image_id.clone(),
            labels: spec.map(|s| s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
            desired_status: desired_name(self.desired).into(),
            known_status: status_name(c.known).into(),
            exit_code: c.exit_code,
            cpu: shown.cpu,
            memory: shown.memory,
            created_at: shown.created_at,
            started_at: shown.started_at,
            finished_at: shown.finished_at,
            log_driver: shown.log_driver.clone(),
            log_options: shown.log_options.clone(),
            container_arn: self.task.container_arn(&c.name).map(str::to_string),
            network_mode: spec.map(|s| s.network_mode.clone()).unwrap_or_default(),
            address: shown.address,
            ports: ports(c),
            cgroup: shown.cgroup.clone(),
            live: matches!(c.known, ContainerStatus::Created | ContainerStatus::Running),
            restart_count: c.restart.as_ref().map(|_| c.restarts),
        }
    }
}

#[cfg(test)]
mod tests;
