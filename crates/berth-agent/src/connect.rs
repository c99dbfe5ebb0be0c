//! Service Connect on the node: a `berth_connect` proxy inside each Service Connect task's
//! network namespace, started once the task's interface is attached (before its containers
//! start) and stopped when it is detached; a NAT rule in the namespace ([`redirect_batch`])
//! sends the task's connections to the alias range to the proxy's egress listener, as ECS's
//! agent does; and the endpoints of every alias kept up to date
//! from Cloud Map (`DiscoverInstances`, healthy instances or else all) every
//! [`REFRESH`]. The task runner goes through the [`Proxies`] trait; [`fake`] records for tests.

#[cfg(any(test, feature = "fakes"))]
pub mod fake;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_protocol::connect::ServiceConnect;
use berth_connect::{Config, Ejection, Ingress, Listener, TaskProxy};

use crate::control::ControlPlane;
use crate::runtime::BoxFuture;

/// The range the client aliases' addresses are taken from.
pub const ALIAS_RANGE: &str = "127.255.0.0/16";

/// The nftables batch that redirects a task's TCP connections to the alias range to the
/// proxy's egress listener at `port` (replacing what an earlier proxy of the task set).
/// `tests/connect_host.rs` applies it in a namespace of its own.
pub fn redirect_batch(port: u16) -> String {
    format!(
        "table ip berth_connect\ndelete table ip berth_connect\ntable ip berth_connect {{\n  chain egress {{\n    \
         type nat hook output priority -100; policy accept;\n    ip daddr {ALIAS_RANGE} meta l4proto tcp redirect to \
         :{port}\n  }}\n}}\n"
    )
}

/// How often every alias's endpoints are read again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a connection to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Further endpoints tried when a connection cannot be made.
const RETRIES: usize = 2;

/// Starting and stopping tasks' proxies.
pub trait Proxies: Send + Sync + 'static {
    /// Starts task `task_id`'s proxy in the namespace at `netns` (idempotent: a running one is
    /// kept), its aliases' endpoints read once before it returns.
    fn start<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        config: &'a ServiceConnect,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Stops the task's proxy; nothing running is fine.
    fn stop(&self, task_id: &str);
}

struct Running {
    proxy: TaskProxy,
    namespace: String,
}

/// The proxies of this machine.
pub struct HostProxies {
    control: Arc<dyn ControlPlane>,
    running: Mutex<HashMap<String, Running>>,
}

impl HostProxies {
    /// The proxies, and their endpoints refreshed on the current runtime for as long as they live.
    pub fn start(control: Arc<dyn ControlPlane>) -> Arc<Self> {
        let proxies = Arc::new(HostProxies { control, running: Mutex::default() });
        let weak = Arc::downgrade(&proxies);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(proxies) = weak.upgrade() else { return };
                proxies.refresh().await;
            }
        });
        proxies
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstreams in use: `(namespace, service)`.
    fn upstreams(&self) -> BTreeSet<(String, String)> {
        let running = self.running();
        running.values().flat_map(|r| r.proxy.upstreams().map(|u| (r.namespace.clone(), u.to_string()))).collect()
    }

    /// Reads every upstream's endpoints and hands them to the proxies that use it. An upstream
    /// that cannot be read keeps the endpoints it had.
    async fn refresh(&self) {
        let found = self.discover(self.upstreams()).await;
        self.apply(&found, None);
    }

    /// The endpoints of each upstream (namespace, service) that could be read.
    async fn discover(
        &self,
        upstreams: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<(String, String), Vec<SocketAddr>> {
        let mut found = BTreeMap::new();
        for (namespace, service) in upstreams {
            match self.control.discover_instances(&namespace, &service).await {
                Ok(endpoints) => {
                    found.insert((namespace, service), endpoints);
                }
                Err(e) => tracing::debug!(%namespace, %service, error = %e, "reading Service Connect endpoints failed"),
            }
        }
        found
    }

    /// Sets the endpoints found on every proxy (or only task `only`'s) using them.
    fn apply(&self, found: &BTreeMap<(String, String), Vec<SocketAddr>>, only: Option<&str>) {
        let running = self.running();
        for (task, r) in running.iter() {
            if only.is_some_and(|o| o != task) {
                continue;
            }
            let names: Vec<String> = r.proxy.upstreams().map(str::to_string).collect();
            for name in names {
                if let Some(endpoints) = found.get(&(r.namespace.clone(), name.clone()))
                    && r.proxy.endpoints(&name) != *endpoints
                {
                    r.proxy.set_endpoints(&name, endpoints);
                }
            }
        }
    }
}

/// The proxy's configuration for a task's Service Connect assignment.
pub fn proxy_config(sc: &ServiceConnect) -> Config {
    let idle = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    Config {
        listeners: sc
            .aliases
            .iter()
            .map(|a| Listener {
                address: SocketAddr::from((a.address, a.port)),
                upstream: a.service.clone(),
                idle_timeout: idle(a.idle_timeout_seconds),
            })
            .collect(),
        ingress: sc
            .ingress
            .iter()
            .map(|i| Ingress { port: i.port, target: i.target, idle_timeout: idle(i.idle_timeout_seconds) })
            .collect(),
        intercept: berth_connect::Intercept::Redirected,
        connect_timeout: CONNECT_TIMEOUT,
        retries: RETRIES,
        ejection: Ejection::default(),
    }
}

impl Proxies for HostProxies {
    fn start<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        config: &'a ServiceConnect,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.running().contains_key(task_id) {
                return Ok(());
            }
            let (netns_path, netns, proxy_config) = (netns, netns.to_path_buf(), proxy_config(config));
            let proxy = tokio::task::spawn_blocking(move || TaskProxy::start(Some(&netns), proxy_config))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("Service Connect proxy: {e}"))?;
            if let Some(port) = proxy.egress_port() {
                crate::vpc::firewall::apply(netns_path, redirect_batch(port))
                    .await
                    .map_err(|e| format!("Service Connect proxy: redirecting the aliases: {e}"))?;
            }
            let namespace = config.namespace.clone();
            let services: BTreeSet<String> = proxy.upstreams().map(str::to_string).collect();
            self.running().insert(task_id.to_string(), Running { proxy, namespace: namespace.clone() });
            // The first endpoints before the task's containers start.
            let found = self.discover(services.into_iter().map(|service| (namespace.clone(), service))).await;
            self.apply(&found, Some(task_id));
            tracing::info!(task = %task_id, aliases = config.aliases.len(), ingress = config.ingress.len(),
                           "Service Connect proxy started");
            Ok(())
        })
    }

    fn stop(&self, task_id: &str) {
        if self.running().remove(task_id).is_some() {
            tracing::info!(task = %task_id, "Service Connect proxy stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_agent_protocol::connect::{ClientAlias, IngressPort};
    use std::net::Ipv4Addr;

    #[test]
    fn the_proxy_listens_on_each_alias_and_ingress_port() {
        let sc = ServiceConnect {
            namespace: "internal.app".into(),
            aliases: vec![ClientAlias {
                dns_name: "backend".into(),
                port: 80,
                address: Ipv4Addr::new(127, 255, 0, 1),
                service: "web".into(),
                idle_timeout_seconds: 0,
            }],
            ingress: vec![IngressPort { port: 8080, target: 80, idle_timeout_seconds: 300 }],
        };
        let c = proxy_config(&sc);
        assert_eq!(c.listeners[0].address, "127.255.0.1:80".parse::<SocketAddr>().unwrap());
        assert_eq!((c.listeners[0].upstream.as_str(), c.listeners[0].idle_timeout), ("web", None));
        assert_eq!(c.ingress[0], Ingress { port: 8080, target: 80, idle_timeout: Some(Duration::from_secs(300)) });
    }
}
