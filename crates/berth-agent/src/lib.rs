//! The node agent. It registers the machine as a container instance, learns its tasks from
//! the assignment channel, drives each task's containers through the lifecycle with a
//! runtime driver, and reports every state change back to the control plane.
//!
//! - [`agent`]: registration, the assignment loop, re-adopting containers after a restart, and
//!   one runner per task (`task_runner`: claim, start, watch, restart, stop, report, clean up).
//! - [`lifecycle`]: the pure state machine (what to do next for a container; what the task's
//!   ECS status and health are); [`restart`]: the pure restart-policy rule.
//! - [`spec`]: a container definition turned into a runtime spec (pure).
//! - [`runtime`]: the driver trait and the drivers (`docker` through the Docker Engine API,
//!   `oci`: Berth's own image store, bundles and a shim per container running runc), and a
//!   recording fake.
//! - [`control`]: the control plane as the agent sees it (the real one is `berth-client`), and
//!   an in-memory fake.
//! - [`cgroup`], [`clock`]: the task cgroups and the wall clock, behind traits as well.
//! - [`host`]: what this machine offers (cpu, memory, ports, attributes).
//! - [`objects`]: secrets and S3 objects tasks name, read from local directories.
//! - [`vpc`]: awsvpc networking: a namespace and an interface per task, security groups.
//! - [`metadata`]: the ECS task metadata endpoint (v4 and v3) every task's containers read.
//! - [`hostlock`]: locks shared by every agent of the machine.

pub mod agent;
pub mod awslogs;
pub mod cgroup;
pub mod clock;
pub mod connect;
pub mod control;
pub mod host;
pub mod hostlock;
pub mod lifecycle;
pub mod metadata;
pub mod objects;
pub mod restart;
pub mod runtime;
pub mod spec;
pub mod stats;
mod task_runner;
pub mod vpc;

pub use agent::{Agent, AgentConfig, AgentError, Effects};
