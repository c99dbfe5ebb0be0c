//! An awsvpc task's network, as its runner sees it: the namespace of the task's holder
//! (asked of the runtime driver), given its interface and security group rules through
//! [`TaskNetworking`](crate::vpc::TaskNetworking) — and, for a Service Connect task, its proxy
//! through [`Proxies`](crate::connect::Proxies) — while the first container is created and
//! before it starts;
//! rules replaced when the assignment's change; the interface detached once every container
//! stopped, before STOPPED is reported (the control plane then frees the address).

use berth_agent_protocol::network::TaskNetwork;

use super::TaskRun;
use crate::runtime::ContainerSpec;

/// What the runner knows of its task's network.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The namespace holder whose network namespace the task has (set once asked for).
    holder: Option<String>,
    /// The network as last applied (`None`: nothing attached).
    applied: Option<TaskNetwork>,
}

/// ECS's reason prefix for a task whose network could not be set up.
const FAILED: &str = "ResourceInitializationError: failed to set up the task's network interface";

impl TaskRun {
    /// Attaches the task's interface in its holder's namespace, unless it is already
    /// attached. `Err` is the reason the task fails.
    pub(super) async fn attach_network(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        if self.net.applied.is_some() {
            return Ok(());
        }
        let network = self.assigned_network()?;
        self.net.holder = spec.namespace_holder.clone();
        let started = std::time::Instant::now();
        let netns = self.shared.runtime.task_netns(spec).await.map_err(|e| format!("{FAILED}: {e}"))?;
        let held = started.elapsed();
        // Recorded first: a failed attachment still gets detached (its steps are undone).
        self.net.applied = Some(network.clone());
        self.shared.networking.attach(self.task.id(), &netns, &network).await.map_err(|e| format!("{FAILED}: {e}"))?;
        if let Some(sc) = &self.task.service_connect {
            self.shared.proxies.start(self.task.id(), &netns, sc).await.map_err(|e| format!("{FAILED}: {e}"))?;
        }
        tracing::info!(task = %self.task.id(), address = %network.eni.private_ip, ?held, elapsed = ?started.elapsed(),
                       "network interface attached");
        Ok(())
    }

    /// The interface the control plane assigned the task; `Err` is the reason the task fails
    /// without one.
    pub(super) fn assigned_network(&self) -> Result<TaskNetwork, String> {
        self.task
            .network
            .clone()
            .ok_or_else(|| format!("{FAILED}: the control plane assigned the task no network interface"))
    }

    /// After an agent restart: the adopted task's interface found again (attach is
    /// idempotent) with the rules assigned now. A task that cannot get it back stops.
    pub(super) async fn readopt_network(&mut self) {
        let Some(spec) = self.containers.iter().find_map(|c| c.spec.clone()) else { return };
        if spec.network_mode != "awsvpc" || self.containers.iter().all(|c| c.id.is_none()) {
            return;
        }
        if let Err(reason) = self.attach_network(&spec).await {
            self.fail(reason);
        }
    }

    /// The assignment's network (each poll's): rules that differ from those applied (a
    /// security group changed, or an earlier update failed) are applied to the running task.
    pub(super) async fn network_changed(&mut self, assigned: Option<TaskNetwork>) {
        let Some(network) = assigned else { return };
        self.task.network = Some(network.clone());
        if self.net.applied.as_ref().is_none_or(|applied| applied == &network) {
            return;
        }
        match self.shared.networking.update_rules(self.task.id(), &network).await {
            Ok(()) => {
                tracing::info!(task = %self.task.id(), "security group rules updated");
                self.net.applied = Some(network);
            }
            Err(e) => tracing::warn!(task = %self.task.id(), error = %e, "updating security group rules failed"),
        }
    }

    /// Removes the task's proxy, interface and rules (nothing attached: nothing to do).
    pub(super) async fn detach_network(&mut self) {
        if self.task.service_connect.is_some() {
            self.shared.proxies.stop(self.task.id());
        }
        if self.net.applied.take().is_none() {
            return;
        }
        match self.shared.networking.detach(self.task.id()).await {
            Ok(()) => tracing::info!(task = %self.task.id(), "network interface detached"),
            Err(e) => tracing::warn!(task = %self.task.id(), error = %e, "detaching the network interface failed"),
        }
    }

    /// Removes the task's holder if no container joined it (the drivers remove it with the
    /// last container otherwise).
    pub(super) async fn release_netns(&mut self) {
        if let Some(holder) = self.net.holder.take() {
            self.shared.runtime.release_task_netns(&holder).await;
        }
    }
}

#[cfg(test)]
mod tests;
