//! Application Auto Scaling's effects: scalable targets (ECS services' desired counts) with
//! their scaling policies and scheduled actions as records, the scaling activities they
//! leave, and the changes they make — an ECS service's `desiredCount` set as UpdateService
//! sets it, with the target's cooldown memory and the activity in the same transaction.
//!
//! - [`records`]: the records, their keys and ARNs;
//! - [`change`]: reading a target and its service, and committing what a decision changed;
//! - [`policies`]: running a policy when an alarm names it;
//! - [`scheduled`]: the leader's pass over scheduled actions;
//! - [`tracking`]: the alarms target tracking makes.
//!
//! What to do is decided by `berth-scaling` (pure); this module reads and writes.

pub mod change;
pub mod policies;
pub mod records;
pub mod scheduled;
pub mod tracking;

use thiserror::Error;

/// The one service namespace and scalable dimension Berth scales.
pub const NAMESPACE: &str = "ecs";
pub const DIMENSION: &str = "ecs:service:DesiredCount";

/// A request Application Auto Scaling refuses, with its exception name ([`ScalingError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScalingError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
}

impl ScalingError {
    pub fn code(&self) -> &'static str {
        match self {
            ScalingError::Validation(_) => "ValidationException",
            ScalingError::NotFound(_) => "ObjectNotFoundException",
            ScalingError::LimitExceeded(_) => "LimitExceededException",
        }
    }
}

/// An ECS service's resource id, `service/CLUSTER/SERVICE`: the cluster and service names.
pub fn service_of(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    let valid = |n: &str| berth_model::names::is_valid_name(n);
    (valid(cluster) && valid(service)).then_some((cluster, service))
}

/// `No scalable target registered for ...`: what AWS answers for a target it does not have.
pub fn no_target(resource_id: &str) -> ScalingError {
    ScalingError::NotFound(format!(
        "No scalable target registered for service namespace: {NAMESPACE}, resource ID: {resource_id}, scalable dimension: {DIMENSION}"
    ))
}

#[cfg(test)]
mod tests;
