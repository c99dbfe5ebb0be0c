//! awsvpc networking: each task of the `awsvpc` network mode gets its own network namespace
//! (made by the runtime driver, see [`crate::runtime::Runtime::task_netns`]) with one interface
//! on its subnet, and its security groups enforced.
//!
//! The layout on a machine:
//!
//! ```text
//!  host netns                     router netns "berth-vpc"                task netns
//!  bvpc0 169.254.99.1/30 ──veth── bvpc0r 169.254.99.2/30
//!  route SUBNET via .99.2         bsn-<subnet> (bridge, GATEWAY/prefix) ── vXXXX ══ eth0 PRIVATE_IP, MAC
//!                                 nftables table inet berth                        default via GATEWAY
//! ```
//!
//! The subnets' bridges live in a namespace of Berth's own so that no other program's firewall
//! (Docker's `FORWARD` policy drop, in `iptables-nft` or legacy) ever sees traffic between
//! tasks, and Berth's rules ([`firewall`]) sit in a table nobody else writes. The host reaches
//! a task at its private address through the uplink, from `169.254.99.1`.
//!
//! - [`plan`]: names and addresses computed from the ENI (pure);
//! - [`link`]: netlink steps; [`netns`]: named namespaces; [`firewall`]: nftables rules;
//! - [`public`]: the router's side on an outside network, for tasks with a public address;
//! - [`HostNetworking`]: the real [`TaskNetworking`]; [`fake`]: a recording one for tests.

#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod firewall;
pub mod libnft;
pub mod link;
pub mod netns;
pub mod plan;
pub mod public;

use std::path::{Path, PathBuf};

use berth_agent_protocol::network::{Eni, TaskNetwork};
use thiserror::Error;

use crate::runtime::BoxFuture;
use plan::Plan;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum NetError {
    #[error("{0}")]
    Plan(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("security group rules: {0}")]
    Rules(String),
    #[error("firewall: {0}")]
    Firewall(String),
    #[error("network state in {0}")]
    State(String),
}

/// The side effects of awsvpc networking, behind a trait so the task runner is tested on a
/// fake.
pub trait TaskNetworking: Send + Sync + 'static {
    /// Gives task `task_id` its interface in the namespace at `netns` and applies its rules.
    /// Idempotent: after an agent restart it finds (or repairs) what it made.
    fn attach<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        network: &'a TaskNetwork,
    ) -> BoxFuture<'a, Result<(), NetError>>;
    /// Replaces the task's security group rules (one atomic change).
    fn update_rules<'a>(&'a self, task_id: &'a str, network: &'a TaskNetwork) -> BoxFuture<'a, Result<(), NetError>>;
    /// Removes the task's interface and rules; nothing attached is fine.
    fn detach<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<(), NetError>>;
    /// The tasks this machine has attachments for.
    fn attached(&self) -> Vec<String>;
}

/// The real networking of this machine. What each task was given is recorded in
/// `DIR/<task id>.json` (its ENI), so a restarted agent can remove attachments of tasks that
/// are gone.
pub struct HostNetworking {
    dir: PathBuf,
    /// The router's netlink handle, made on first use.
    router: tokio::sync::Mutex<Option<rtnetlink::Handle>>,
    /// The tasks' rule changes in the router namespace.
    rules: firewall::Coalescer,
    /// Where public addresses live on this machine, if it gives them out.
    public: Option<public::PublicSide>,
}

impl HostNetworking {
    pub fn new(dir: PathBuf, public: Option<public::PublicSide>) -> Self {
        HostNetworking {
            dir,
            router: tokio::sync::Mutex::new(None),
            rules: firewall::Coalescer::nft(netns::path(plan::ROUTER_NETNS)),
            public,
        }
    }

    fn record(&self, task_id: &str) -> PathBuf {
        self.dir.join(format!("{task_id}.json"))
    }

    async fn router(&self) -> Result<rtnetlink::Handle, NetError> {
        let mut router = self.router.lock().await;
        if let Some(h) = router.as_ref() {
            return Ok(h.clone());
        }
        let handle = link::ensure_router().await?;
        firewall::apply(&netns::path(plan::ROUTER_NETNS), firewall::base()).await?;
        if let Some(side) = &self.public {
            public::ensure(&handle, side).await?;
        }
        *router = Some(handle.clone());
        Ok(handle)
    }

    async fn attach_now(&self, task_id: &str, task_ns: &Path, network: &TaskNetwork) -> Result<(), NetError> {
        let p = Plan::new(task_id, &network.eni)?;
        if let (Some(address), None) = (p.public, &self.public) {
            return Err(NetError::Plan(format!(
                "the task has the public address {address}, and this agent gives out none (--public-cidr)"
            )));
        }
        let router = self.router().await?;
        let state = |e: std::io::Error| NetError::State(format!("{}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(state)?;
        std::fs::write(self.record(task_id), serde_json::to_vec(&network.eni).expect("json")).map_err(state)?;
        let started = std::time::Instant::now();
        link::ensure_subnet(&router, &p).await?;
        let subnet = started.elapsed();
        // The rules are in place before the interface is up: no packet passes unchecked. A
        // batch is all or nothing; one refused because a dead task's entries still claim the
        // address goes again once they are evicted (rare: only then does it cost more nft runs).
        let router_ns = netns::path(plan::ROUTER_NETNS);
        let batch = firewall::task(&p, &network.rules)?;
        if let Err(e) = self.rules.apply(batch.clone()).await {
            if !firewall::refused_as_existing(&e) {
                return Err(e);
            }
            firewall::evict_stale(&router_ns, &p).await?;
            // The dead task's interface, if it is still on the bridge, goes too.
            link::evict_stale_ports(&router, &p).await?;
            self.rules.apply(batch).await?;
        }
        let rules = started.elapsed();
        if let Some(address) = p.public {
            public::hold(&router, address).await?;
        }
        link::attach(&router, &p, task_ns).await?;
        tracing::debug!(task = task_id, ?subnet, ?rules, linked = ?started.elapsed(), "interface steps");
        Ok(())
    }
}

impl TaskNetworking for HostNetworking {
    fn attach<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        network: &'a TaskNetwork,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(self.attach_now(task_id, netns, network))
    }

    fn update_rules<'a>(&'a self, task_id: &'a str, network: &'a TaskNetwork) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let p = Plan::new(task_id, &network.eni)?;
            self.router().await?;
            self.rules.apply(firewall::task(&p, &network.rules)?).await
        })
    }

    fn detach<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let Ok(raw) = std::fs::read(self.record(task_id)) else { return Ok(()) };
            let eni: Eni = serde_json::from_slice(&raw).map_err(|e| NetError::State(e.to_string()))?;
            let p = Plan::new(task_id, &eni)?;
            let router = self.router().await?;
            link::detach(&router, &p).await?;
            self.rules.apply(firewall::remove(&p)).await?;
            if let Some(address) = p.public {
                public::release(&router, address).await?;
            }
            let _ = std::fs::remove_file(self.record(task_id));
            Ok(())
        })
    }

    fn attached(&self) -> Vec<String> {
        let entries = std::fs::read_dir(&self.dir).into_iter().flatten().flatten();
        entries.filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string)).collect()
    }
}
