//! Berth's Service Connect proxy: what ECS runs as the Service Connect agent (Envoy) in each
//! task of a service with `serviceConnectConfiguration`, built into the node agent instead.
//!
//! Each task gets a [`TaskProxy`]: a thread inside the task's network namespace that takes the
//! connections to its client aliases (each an address of 127.255.0.0/16 that the task's
//! `/etc/hosts` maps the alias's name to, redirected to the proxy's egress listener) and relays
//! each one to an endpoint of the Cloud Map service behind the alias,
//! chosen round robin, with failing endpoints ejected for a while (`upstream`); and, for
//! `ingressPortOverride`, listeners in front of the task's own ports. The proxy's owner (the
//! agent) keeps every upstream's endpoints up to date; this crate reads no store and no API.
//!
//! - [`upstream`]: endpoints, the choice among them, outlier ejection (pure, time passed in);
//! - [`proxy`]: the thread, its listeners and the relaying of bytes.

pub mod proxy;
pub mod upstream;

pub use proxy::{Config, Ingress, Intercept, Listener, ProxyError, TaskProxy};
pub use upstream::{Ejection, Upstream};
