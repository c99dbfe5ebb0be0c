//! The control plane's domain: what happens to tasks, instances and services once a request
//! has been understood, and the work nobody asks for — the service scheduler's effects,
//! housekeeping, the registry's loops — run by the one server holding the leader lease.
//!
//! Everything here takes a [`Control`] (the store, a clock, an id source and the
//! installation's settings) and, for one region at one moment, a [`Region`]; nothing knows
//! about HTTP or callers. `berth-api` parses requests and calls in; tests drive it with a
//! [`clock::ManualClock`] and [`ids::SequentialIds`] over a real store.

pub mod alarms;
pub mod autoscaling;
pub mod clock;
pub mod definitions;
pub mod discovery;
pub mod elb;
pub mod error;
pub mod fargate;
pub mod housekeeping;
pub mod ids;
pub mod keys;
pub mod leader;
pub mod lease;
pub mod logs;
pub mod placement;
pub mod records;
pub mod registry;
pub mod scheduler;
pub mod service_connect;
pub mod service_registries;
pub mod service_targets;
pub mod services;
pub mod store;
pub mod task_index;
pub mod task_network;
pub mod tasks;
pub mod traffic;
pub mod vpc;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_model::arn::ArnScope;
use berth_store::Store;

pub use error::{ControlError, ControlResult};

use crate::clock::Clock;
use crate::ids::Ids;
use crate::keys::Keys;

/// The installation's settings the domain needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Account id written into every ARN.
    pub account: String,
    /// The region Berth reports for itself, and where background work starts.
    pub region: String,
    /// How long after its last contact an agent still counts as connected.
    pub agent_timeout: Duration,
    /// How long after its last contact an agent's tasks are written off as lost.
    pub lost_agent_timeout: Duration,
    /// How long STOPPED tasks stay describable before they are forgotten.
    pub stopped_task_retention: Duration,
    /// Names this server when servers share a store: the holder of the leader lease.
    pub node: String,
    /// The period of the built-in task metrics (`--metric-period`); the alarms target
    /// tracking makes evaluate over it.
    pub metric_period: Duration,
}

#[cfg(test)]
impl Config {
    /// Settings for in-process tests: account `000000000000` in `us-east-1`, as `node`.
    pub(crate) fn testing(node: &str) -> Config {
        Config {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            agent_timeout: Duration::from_secs(60),
            lost_agent_timeout: Duration::from_secs(300),
            stopped_task_retention: Duration::from_secs(3600),
            node: node.into(),
            metric_period: Duration::from_secs(60),
        }
    }
}

/// The store, the clock, the id source and the settings: all a domain transaction needs.
pub struct Control {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
    /// Wakes the service scheduler before its next tick (a service or task changed).
    pub scheduler_wake: tokio::sync::Notify,
    /// Every task in summary, by instance and by group; see [`task_index`].
    pub tasks: task_index::TaskIndex,
    /// What the scheduler's passes cost (`GET /metrics` shows it).
    pub passes: Arc<scheduler::PassStats>,
    /// What each service's last reconcile read (see [`scheduler::Reconciled`]).
    pub reconciled: scheduler::Reconciled,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Control {
    pub fn new(config: Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Arc<dyn Ids>) -> Arc<Control> {
        let closing = tokio::sync::watch::channel(false).0;
        Arc::new(Control {
            config,
            store,
            clock,
            ids,
            scheduler_wake: Default::default(),
            tasks: Default::default(),
            passes: Default::default(),
            reconciled: Default::default(),
            closing,
        })
    }

    /// Tells background loops (and long polls) to finish: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Control::close`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Asks the service scheduler for a pass now.
    pub fn wake_scheduler(&self) {
        self.scheduler_wake.notify_one();
    }

    /// The task index, showing at least what the store holds now.
    pub async fn task_index(&self) -> ControlResult<task_index::Index<'_>> {
        self.tasks.reach(&self.store).await
    }

    /// One region of this installation, now.
    pub fn region(&self, region: &str) -> Region<'_> {
        self.region_at(region, self.clock.now())
    }

    pub fn region_at(&self, region: &str, now: SystemTime) -> Region<'_> {
        Region {
            control: self,
            name: region.to_string(),
            keys: Keys::new(region),
            arns: ArnScope::new(region, &self.config.account),
            now,
        }
    }
}

/// One region at one moment: where its records live and how its ARNs are written.
pub struct Region<'a> {
    pub control: &'a Control,
    pub name: String,
    pub keys: Keys,
    pub arns: ArnScope,
    pub now: SystemTime,
}

impl Region<'_> {
    pub fn store(&self) -> &dyn Store {
        self.control.store.as_ref()
    }

    /// Now as ECS timestamps it: seconds since the epoch, millisecond precision.
    pub fn timestamp(&self) -> f64 {
        clock::epoch_seconds(self.now)
    }

    pub fn config(&self) -> &Config {
        &self.control.config
    }
}
