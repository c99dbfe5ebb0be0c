//! What can go wrong in a domain transaction. The API turns each into the exception its
//! service names; background loops log them.

use berth_model::task::TransitionError;
use berth_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record the store holds does not decode: a bug or a damaged store, never retried.
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// Every compare-and-swap attempt lost a race.
    #[error("too many concurrent attempts to change this resource")]
    Contention,
    #[error("cluster not found")]
    ClusterNotFound,
    #[error("the referenced task was not found")]
    TaskNotFound,
    /// A report or stop the task's lifecycle does not allow.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A stored placement constraint or strategy no longer parses (it was checked when given).
    #[error("{0}")]
    Placement(String),
    /// A request the VPC model refuses: EC2's error code (`VpcError::code`) and message.
    #[error(transparent)]
    Vpc(#[from] crate::vpc::VpcError),
    /// A request Application Auto Scaling refuses: its exception name
    /// (`ScalingError::code`) and message.
    #[error(transparent)]
    Scaling(#[from] crate::autoscaling::ScalingError),
    /// A request the load balancing model refuses: ELB's error code (`ElbError::code`) and
    /// message.
    #[error(transparent)]
    Elb(#[from] crate::elb::ElbError),
    /// A request Cloud Map refuses: its exception name (`DiscoveryError::code`) and message.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
}

impl From<berth_store::Contention> for ControlError {
    fn from(_: berth_store::Contention) -> Self {
        ControlError::Contention
    }
}

impl ControlError {
    /// Whether trying the same thing again may succeed.
    pub fn retriable(&self) -> bool {
        matches!(self, ControlError::Contention | ControlError::Store(_))
    }
}

pub type ControlResult<T> = Result<T, ControlError>;
