//! Berth's domain: what a task definition, task, cluster and container instance are, the
//! rules ECS applies to them, and the task lifecycle. Pure: no I/O, no clock, no randomness
//! (callers pass times and ids in).

pub mod arn;
pub mod awslogs;
pub mod capacity;
pub mod error;
pub mod health;
pub mod launch;
pub mod members;
pub mod names;
pub mod resources;
pub mod task;
pub mod task_definition;

pub use error::ModelError;
