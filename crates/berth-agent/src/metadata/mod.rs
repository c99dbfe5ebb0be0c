//! The ECS task metadata endpoint, versions 4 and 3: every container of a task (of any launch
//! type, on either runtime driver) finds `ECS_CONTAINER_METADATA_URI_V4` and
//! `ECS_CONTAINER_METADATA_URI` in its environment, and reads its container's and its task's
//! metadata and Docker-shaped stats there, as on AWS.
//!
//! The agent answers on `169.254.170.2` (an address it puts on the host's loopback interface,
//! see [`host`]): bridge-mode containers reach it through their default gateway, host-mode ones
//! directly, awsvpc tasks through the VPC router namespace, whose default route leads to the
//! host. Each container's URI ends in an endpoint id of its own ([`ids`]), unguessable and
//! stable across agent restarts; a request with a known id from an address that is not its
//! task's is refused ([`access`]).
//!
//! - [`Registry`] (here): what every task runner publishes about its task ([`view`]), by
//!   task and by endpoint id;
//! - [`render`]: views as the v3 and v4 JSON (pure); [`stats`]: cgroup readings as Docker's
//!   stats JSON (pure); [`cgroups`]: taking those readings on this machine;
//! - [`server`]: the HTTP server; [`host`]: the address, the port and the listener.

pub mod access;
pub mod cgroups;
pub mod host;
pub mod ids;
pub mod render;
pub mod server;
pub mod stats;
pub mod view;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::runtime::ContainerSpec;
pub use host::Port;
pub use stats::Readings;
pub use view::{ContainerView, TaskView};

/// The environment variable of the version 4 URI.
pub const ENV_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// The environment variable of the version 3 URI.
pub const ENV_V3: &str = "ECS_CONTAINER_METADATA_URI";

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error(
        "task metadata endpoint: putting {address} on the loopback interface: {why} (--task-metadata-port off runs without the endpoint)"
    )]
    Address { address: String, why: String },
    #[error("task metadata endpoint: listening on {address}: {why} (see --task-metadata-port)")]
    Listen { address: String, why: String },
    #[error("task metadata endpoint: {path}: {why}")]
    State { path: String, why: String },
}

/// Where the endpoint listens and how its containers' stats are read: what the server needs
/// from the machine (tests give a loopback listener and recorded readings).
pub struct Endpoint {
    pub listener: tokio::net::TcpListener,
    /// `http://169.254.170.2` (with `:PORT` unless 80): what the URIs start with.
    pub base_url: String,
    pub readings: Arc<dyn Readings>,
}

#[derive(Default)]
struct Published {
    /// Task ARN → its latest view.
    tasks: HashMap<String, Arc<TaskView>>,
    /// Endpoint id → (task ARN, container name).
    ids: HashMap<String, (String, String)>,
}

/// What the task runners publish and the server reads: every task's latest view, and which
/// container each endpoint id belongs to.
pub struct Registry {
    key: ids::Key,
    /// `None` when the endpoint is off: containers get no URIs.
    base_url: Option<String>,
    published: Mutex<Published>,
}

impl Registry {
    pub fn new(key: ids::Key, base_url: Option<String>) -> Self {
        Registry { key, base_url, published: Mutex::default() }
    }

    /// The endpoint id of container `name` of task `task_arn`.
    pub fn id(&self, task_arn: &str, name: &str) -> String {
        ids::endpoint_id(&self.key, task_arn, name)
    }

    /// Gives the container of `spec` (named `name` in task `task_arn`) its two URIs, replacing
    /// any variable of the same names; a container without a network (`none`) gets none, as
    /// it could not reach them.
    pub fn inject(&self, task_arn: &str, name: &str, spec: &mut ContainerSpec) {
        let Some(base) = &self.base_url else { return };
        if spec.network_mode == "none" {
            return;
        }
        let id = self.id(task_arn, name);
        spec.env.retain(|e| !e.starts_with(&format!("{ENV_V4}=")) && !e.starts_with(&format!("{ENV_V3}=")));
        spec.env.push(format!("{ENV_V4}={base}/v4/{id}"));
        spec.env.push(format!("{ENV_V3}={base}/v3/{id}"));
    }

    /// Replaces the view of `view.task_arn` (and maps its containers' ids to it).
    pub fn publish(&self, view: TaskView) {
        let mut p = self.published.lock().expect("metadata registry");
        for c in &view.containers {
            p.ids.insert(self.id(&view.task_arn, &c.name), (view.task_arn.clone(), c.name.clone()));
        }
        p.tasks.insert(view.task_arn.clone(), Arc::new(view));
    }

    /// Forgets task `task_arn` (its containers are gone): its ids answer 404 from now on.
    pub fn remove(&self, task_arn: &str) {
        let mut p = self.published.lock().expect("metadata registry");
        p.tasks.remove(task_arn);
        p.ids.retain(|_, (arn, _)| arn != task_arn);
    }

    /// The task view and the index of the container endpoint id `id` belongs to.
    pub fn lookup(&self, id: &str) -> Option<(Arc<TaskView>, usize)> {
        let p = self.published.lock().expect("metadata registry");
        let (arn, name) = p.ids.get(id)?;
        let view = p.tasks.get(arn)?.clone();
        let index = view.containers.iter().position(|c| &c.name == name)?;
        Some((view, index))
    }
}
