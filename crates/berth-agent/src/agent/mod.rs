//! The agent process: registers this machine as a container instance, re-adopts the
//! containers an earlier run left, then follows the assignment channel and keeps one
//! [`task_runner`](crate::task_runner) per assigned task, beside the task metadata endpoint
//! ([`crate::metadata`]) and the stats loop.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::ErrorCode;
use berth_agent_protocol::assignments::{Assigned, AssignedTask, AssignmentsQuery};
use berth_agent_protocol::ecs::{RegisterContainerInstance, VersionInfo};
use berth_client::ClientError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cgroup::{HostCgroups, TaskCgroups};
use crate::clock::{Clock, SystemClock};
use crate::control::ControlPlane;
use crate::host;
use crate::lifecycle::Desired;
use crate::metadata::{self, Endpoint, MetadataError, Registry};
use crate::runtime::{LABEL_INSTANCE, LABEL_TASK, Observed, Runtime, RuntimeError};
use crate::task_runner::{self, Runner, Shared};
use crate::vpc::{HostNetworking, TaskNetworking};

/// How long one assignment poll may wait for a change.
pub const POLL_WAIT: Duration = Duration::from_secs(20);
/// Pause after a failed poll before the next.
const POLL_RETRY: Duration = Duration::from_secs(1);
/// How long containers of tasks no longer assigned get between SIGTERM and SIGKILL.
const ORPHAN_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many finished task ARNs are remembered so a stale snapshot never restarts one.
const FINISHED_MEMORY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub cluster: String,
    /// Where the agent keeps its identity and task scratch volumes.
    pub state_dir: PathBuf,
    /// Where secrets named by tasks (`repositoryCredentials`) are read.
    pub secrets_dir: PathBuf,
    /// Where S3 objects named by tasks (`environmentFiles`) are read.
    pub s3_dir: PathBuf,
    /// MiB of memory kept back from tasks.
    pub reserved_memory_mib: i64,
    pub instance_type: String,
    pub availability_zone: String,
    pub attributes: Vec<(String, String)>,
    pub allow_privileged: bool,
    /// How long a stopped task's containers are kept before they are removed.
    pub cleanup_wait: Duration,
    /// How often the tasks' cpu and memory are reported (see `stats`).
    pub metric_period: Duration,
    /// The task metadata endpoint's port (see `metadata::host`).
    pub metadata_port: metadata::Port,
    /// Whether this machine lends its capacity to FARGATE tasks of every cluster.
    pub fargate: bool,
    /// Where this machine's public addresses live (`--public-cidr`), if it gives any out.
    pub public: Option<crate::vpc::public::PublicSide>,
    /// The OCI runtime FARGATE tasks' containers run with (`--fargate-runtime`).
    pub fargate_runtime: String,
    /// The nameservers of every task's containers whose definition sets no `dnsServers`
    /// (Berth's DNS server); empty: the host's resolvers, as before.
    pub dns_servers: Vec<String>,
}

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("registering the container instance: {0}")]
    Register(ClientError),
    #[error("the container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("the container instance {0} was deregistered")]
    Deregistered(String),
    #[error("agent state in {path}: {error}")]
    State { path: PathBuf, error: String },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// Everything the agent does to the world goes through these.
pub struct Effects {
    pub control: Arc<dyn ControlPlane>,
    pub runtime: Arc<dyn Runtime>,
    pub cgroups: Arc<dyn TaskCgroups>,
    pub clock: Arc<dyn Clock>,
    pub networking: Arc<dyn TaskNetworking>,
    /// Service Connect tasks' proxies.
    pub proxies: Arc<dyn crate::connect::Proxies>,
    /// Where the task metadata endpoint listens (`None`: no endpoint, no URIs).
    pub metadata: Option<Endpoint>,
}

impl Effects {
    /// This machine's cgroups, clock and network (what it attached recorded in
    /// `STATE_DIR/vpc`), and its task metadata endpoint on `port`.
    pub async fn host(
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
        state_dir: &std::path::Path,
        port: metadata::Port,
        public: Option<crate::vpc::public::PublicSide>,
    ) -> Result<Self, AgentError> {
        let networking = Arc::new(HostNetworking::new(state_dir.join("vpc"), public));
        std::fs::create_dir_all(state_dir)
            .map_err(|e| AgentError::State { path: state_dir.to_path_buf(), error: e.to_string() })?;
        let metadata = metadata::host::open(port, state_dir).await?;
        Ok(Effects {
            proxies: crate::connect::HostProxies::start(control.clone()),
            control,
            runtime,
            cgroups: Arc::new(HostCgroups),
            clock: Arc::new(SystemClock),
            networking,
            metadata,
        })
    }
}

/// What the agent remembers across restarts.
#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    cluster: String,
    container_instance_arn: String,
}

pub struct Agent {
    config: AgentConfig,
    shared: Arc<Shared>,
    instance_arn: String,
    runners: HashMap<String, Runner>,
    finished: (HashSet<String>, VecDeque<String>),
    /// Containers found at start, by task ARN, waiting for their task to show up.
    adopted: HashMap<String, Vec<Observed>>,
    /// The task metadata endpoint, served once the agent runs.
    endpoint: Option<Endpoint>,
}

impl Agent {
    /// Registers (or re-registers) this machine and takes stock of existing containers.
    pub async fn register(
        config: AgentConfig,
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Agent, AgentError> {
        let effects =
            Effects::host(control, runtime, &config.state_dir, config.metadata_port, config.public.clone()).await?;
        Self::register_with(config, effects).await
    }

    /// [`Agent::register`] with every side effect given.
    pub async fn register_with(config: AgentConfig, effects: Effects) -> Result<Agent, AgentError> {
        let state_err = |e: std::io::Error| AgentError::State { path: config.state_dir.clone(), error: e.to_string() };
        std::fs::create_dir_all(&config.state_dir).map_err(state_err)?;
        let identity_path = config.state_dir.join("instance.json");
        let previous: Option<Identity> = std::fs::read(&identity_path)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .filter(|i: &Identity| i.cluster == config.cluster);
        let runtime = effects.runtime.clone();
        let input = RegisterContainerInstance {
            cluster: config.cluster.clone(),
            container_instance_arn: previous.map(|p| p.container_instance_arn),
            total_resources: host::resources(config.reserved_memory_mib),
            version_info: VersionInfo {
                agent_version: env!("CARGO_PKG_VERSION").into(),
                agent_hash: "berth".into(),
                docker_version: runtime.name().into(),
            },
            attributes: host::attributes(&config.instance_type, &config.availability_zone, &config.attributes)
                .into_iter()
                .chain(config.fargate.then(host::fargate_attribute))
                .chain(config.public.as_ref().map(|p| host::public_pool_attribute(&p.pool.to_string())))
                .collect(),
        };
        let registered = effects.control.register(&input).await.map_err(AgentError::Register)?;
        let instance_arn = registered.container_instance_arn;
        let identity = Identity { cluster: config.cluster.clone(), container_instance_arn: instance_arn.clone() };
        std::fs::write(&identity_path, serde_json::to_vec(&identity).expect("json")).map_err(state_err)?;

        let mut adopted: HashMap<String, Vec<Observed>> = HashMap::new();
        for c in runtime.list_managed().await? {
            // Only this instance's containers: other agents may share the machine.
            if c.labels.get(LABEL_INSTANCE) == Some(&instance_arn)
                && let Some(task) = c.labels.get(LABEL_TASK)
            {
                adopted.entry(task.clone()).or_default().push(c);
            }
        }
        tracing::info!(instance = %instance_arn, adopted = adopted.len(), runtime = runtime.name(), "agent registered");
        let key = metadata::ids::load_or_create(&config.state_dir)?;
        let registry = Arc::new(Registry::new(key, effects.metadata.as_ref().map(|e| e.base_url.clone())));
        let shared = Arc::new(Shared {
            control: effects.control,
            runtime: effects.runtime,
            cgroups: effects.cgroups,
            clock: effects.clock,
            networking: effects.networking,
            proxies: effects.proxies,
            metadata: registry,
            instance_arn: instance_arn.clone(),
            state_dir: config.state_dir.clone(),
            secrets_dir: config.secrets_dir.clone(),
            s3_dir: config.s3_dir.clone(),
            allow_privileged: config.allow_privileged,
            fargate_runtime: config.fargate_runtime.clone(),
            dns_servers: config.dns_servers.clone(),
            cleanup_wait: config.cleanup_wait,
            definitions: Default::default(),
        });
        Ok(Agent {
            config,
            shared,
            instance_arn,
            runners: HashMap::new(),
            finished: Default::default(),
            adopted,
            endpoint: effects.metadata,
        })
    }

    pub fn instance_arn(&self) -> &str {
        &self.instance_arn
    }

    /// Follows the assignment channel until the instance is deregistered.
    pub async fn run(mut self) -> Result<(), AgentError> {
        let mut query = AssignmentsQuery {
            cluster: self.config.cluster.clone(),
            container_instance: self.instance_arn.rsplit('/').next().unwrap_or_default().to_string(),
            since: 0,
            wait: POLL_WAIT,
            changes: false,
        };
        let mut assigned = Assigned::default();
        let mut first = true;
        let stats = tokio::spawn(crate::stats::run(
            self.shared.control.clone(),
            self.shared.cgroups.clone(),
            self.shared.clock.clone(),
            self.config.cluster.clone(),
            query.container_instance.clone(),
            self.config.metric_period,
        ));
        let _stop_stats = AbortOnDrop(stats);
        let _stop_endpoint = self.endpoint.take().map(|e| {
            let server = metadata::server::Server::new(self.shared.metadata.clone(), e.readings);
            AbortOnDrop(tokio::spawn(metadata::server::serve(e.listener, Arc::new(server))))
        });
        loop {
            match self.shared.control.assignments(&query).await {
                Ok(answer) => {
                    query.since = answer.revision;
                    // After the first whole answer, only what changed is sent.
                    query.changes = true;
                    assigned.merge(answer);
                    self.sync(assigned.all().cloned().collect(), first);
                    first = false;
                }
                Err(e) if e.error_code() == Some(&ErrorCode::InactiveInstance) => {
                    return Err(AgentError::Deregistered(self.instance_arn.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "assignment poll failed");
                    tokio::time::sleep(POLL_RETRY).await;
                }
            }
            self.reap();
        }
    }

    /// Starts runners for new tasks and passes desired status changes to existing ones; a
    /// task no longer assigned is stopped. The first answer also settles the containers an
    /// earlier agent process left: those of tasks no longer assigned are removed.
    fn sync(&mut self, tasks: Vec<AssignedTask>, first: bool) {
        let mut listed = HashSet::new();
        for task in tasks {
            listed.insert(task.task_arn.clone());
            let desired = if task.stop_wanted() { Desired::Stopped } else { Desired::Running };
            match self.runners.get(&task.task_arn) {
                Some(runner) => {
                    if task.stop_timeout.is_some() {
                        runner.stop_timeout.send_replace(task.stop_timeout);
                    }
                    if desired == Desired::Stopped {
                        runner.desired.send_if_modified(|d| std::mem::replace(d, Desired::Stopped) != Desired::Stopped);
                    }
                    // Every poll's network reaches an awsvpc task's runner, which applies
                    // what differs from what it applied (so a failed update is tried again).
                    if task.network.is_some() {
                        runner.network.send_replace(task.network.clone());
                    }
                }
                None if self.finished.0.contains(&task.task_arn) => {}
                None => {
                    let adopted = self.adopted.remove(&task.task_arn).unwrap_or_default();
                    let arn = task.task_arn.clone();
                    let runner = task_runner::spawn(self.shared.clone(), task, adopted);
                    self.runners.insert(arn, runner);
                }
            }
        }
        for (arn, runner) in &self.runners {
            if !listed.contains(arn) {
                runner.desired.send_if_modified(|d| std::mem::replace(d, Desired::Stopped) != Desired::Stopped);
            }
        }
        if first {
            self.detach_orphans();
            // Containers of tasks the control plane no longer wants: stop and remove them.
            for (task, containers) in self.adopted.drain() {
                tracing::info!(%task, "removing containers of a task that is no longer assigned");
                let runtime = self.shared.runtime.clone();
                tokio::spawn(async move {
                    for c in containers {
                        let _ = runtime.stop(&c.id, ORPHAN_STOP_TIMEOUT).await;
                        let _ = runtime.remove(&c.id).await;
                    }
                });
            }
        }
    }

    /// Removes the network interfaces an earlier agent process attached for tasks that are no
    /// longer assigned (the runners of the others found theirs again).
    fn detach_orphans(&self) {
        let running: HashSet<&str> = self.runners.keys().filter_map(|arn| arn.rsplit('/').next()).collect();
        for task in self.shared.networking.attached() {
            if running.contains(task.as_str()) {
                continue;
            }
            tracing::info!(%task, "detaching the network interface of a task that is no longer assigned");
            let networking = self.shared.networking.clone();
            tokio::spawn(async move {
                if let Err(e) = networking.detach(&task).await {
                    tracing::warn!(%task, error = %e, "detaching failed");
                }
            });
        }
    }

    /// Forgets runners whose task has finished (remembering the task so it is never rerun).
    fn reap(&mut self) {
        let done: Vec<String> =
            self.runners.iter().filter(|(_, r)| r.handle.is_finished()).map(|(a, _)| a.clone()).collect();
        for arn in done {
            self.runners.remove(&arn);
            let (set, order) = &mut self.finished;
            if set.insert(arn.clone()) {
                order.push_back(arn);
            }
            if order.len() > FINISHED_MEMORY
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}
/// Aborts a background task when the agent's run ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
