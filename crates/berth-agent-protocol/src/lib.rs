//! The messages a node agent and the control plane exchange, as typed serde structs. Both sides
//! depend on this crate: the agent's client (`berth-client`) sends and reads them, the API can
//! parse and answer them.
//!
//! - [`ecs`]: the ECS operations agents call, shaped as the ECS model shapes them.
//! - [`assignments`]: Berth's long poll `GET /berth/v1/assignments`.
//! - [`network`]: Berth's extension of an assigned awsvpc task (its ENI and security rules).
//! - [`connect`]: Berth's extension of an assigned task of a Service Connect service, and the
//!   Cloud Map call that keeps its endpoints.
//! - [`ecr`]: `GetAuthorizationToken`, the token the agent pulls the control plane's images with.
//! - [`logs`]: the CloudWatch Logs calls of the `awslogs` driver.
//! - [`stats`]: Berth's `POST /berth/v1/stats`, each task's cpu and memory per period.
//! - [`spot`]: Berth's `POST /berth/v1/spot-interruptions`, taking spot capacity back.
//! - [`task_states`]: Berth's `POST /berth/v1/task-states`, several task state changes at once.
//! - [`status`]: the statuses the messages carry; an unknown value is an error, never a default.
//! - [`error`]: the error codes an agent acts on.
//!
//! Every request names its operation ([`Operation`]): a client sends it without spelling the
//! operation's name again, and gets the operation's typed answer back.

pub mod assignments;
pub mod connect;
pub mod ecr;
pub mod ecs;
pub mod error;
pub mod logs;
#[cfg(test)]
mod model_check;
pub mod network;
pub mod spot;
pub mod stats;
pub mod status;
pub mod task_states;

pub use error::ErrorCode;
pub use status::{ContainerStatus, DesiredStatus, Health};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An AWS service the agent calls over AWS JSON 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecs,
    Ecr,
    Logs,
    ServiceDiscovery,
}

impl Service {
    /// The name SigV4 signs for.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Ecr => "ecr",
            Service::Logs => "logs",
            Service::ServiceDiscovery => "servicediscovery",
        }
    }

    /// The `X-Amz-Target` prefix: the target is `PREFIX.Operation`.
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::Ecs => "AmazonEC2ContainerServiceV20141113",
            Service::Ecr => "AmazonEC2ContainerRegistry_V20150921",
            Service::Logs => "Logs_20140328",
            Service::ServiceDiscovery => "Route53AutoNaming_v20170314",
        }
    }
}

/// A request of one AWS JSON operation, and what the operation answers.
pub trait Operation: Serialize {
    const SERVICE: Service;
    /// The operation's name, as in the `X-Amz-Target` header.
    const NAME: &'static str;
    type Output: DeserializeOwned;
}

/// `operation!(Service, Request => Output)`: the request type is named as the operation is.
macro_rules! operation {
    ($service:ident, $request:ident => $output:ty) => {
        impl $crate::Operation for $request {
            const SERVICE: $crate::Service = $crate::Service::$service;
            const NAME: &'static str = stringify!($request);
            type Output = $output;
        }
    };
}
pub(crate) use operation;
