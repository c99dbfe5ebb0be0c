//! Berth's load balancer data plane.
//!
//! The control plane (ELBv2 API, `berth-control/src/elb/`) keeps load balancers, listeners,
//! rules, target groups and registered targets in the store; whenever they change it hands
//! the data plane one whole [`config::Config`]. The data plane binds each listener's address,
//! routes every request or connection by the listener's rules to a target of a target group,
//! health-checks every target of every group in use, and reports what it observes (each
//! target's health and in-flight requests) back for DescribeTargetHealth and for the ECS
//! service scheduler. It reads no store and no clock of the control plane: the same config
//! always gives the same routing.
//!
//! The path of a request: `dataplane` (listeners) → `http` or `tcp` (one connection;
//! `server` reads the client's request heads and writes the answers) → `routes` + `matching`
//! (which rule) → `target` + `balance` (which target, `sticky` cookies) → `pool` (a
//! keep-alive connection) → `upstream` (the request written, the answer's head parsed and its
//! body framed) → the body streamed back, or ALB's own answer (`responses`). Health: `checker` (one task per target) → `probe` (one check) →
//! `health` (the state machine). Listeners and their connections run on the data plane's own
//! serving threads (`workers`), one single-threaded runtime each, each on a core of its own
//! (`affinity`).

mod affinity;
mod balance;
mod checker;
pub mod config;
mod dataplane;
mod health;
mod http;
mod matching;
mod meters;
mod pool;
mod probe;
mod responses;
mod routes;
mod server;
mod sticky;
mod target;
mod tcp;
mod upstream;
mod workers;

pub use affinity::Affinity;
pub use balance::slow_start_share;
pub use dataplane::{Counts, DataPlane, ListenerError};
pub use meters::{GroupCounts, LbCounts};
