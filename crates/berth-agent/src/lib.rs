//! The node agent. It registers the machine as a container instance, learns its tasks from
//! the assignment channel, drives each task's containers through the lifecycle with a
//! runtime driver, and reports every state change back to the control plane.
//!
//! - [`lifecycle`]: the pure state machine (what to do next for a container; what the task's
//!   ECS status is).
//! - [`runtime`]: the driver trait and the drivers (Docker Engine today).
//! - [`client`]: the SigV4-signed API client.
//! - [`host`]: what this machine offers (cpu, memory, attributes).
//! - [`agent`]: registration, the assignment loop, reconciliation, and one runner per task.

pub mod agent;
pub mod cgroup;
pub mod client;
pub mod host;
pub mod lifecycle;
pub mod objects;
pub mod runtime;
pub mod spec;
mod task_runner;

pub use agent::{Agent, AgentConfig};
