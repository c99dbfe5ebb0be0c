//! Runtime drivers: how the agent makes containers exist. Every driver implements
//! [`Runtime`]; the agent never knows which one it talks to. Tests use [`fake`]'s recording
//! runtime.

pub mod docker;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod jsonlog;
pub mod kmsg;
pub mod oci;
pub mod pause;
pub mod ports;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use thiserror::Error;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A container's output: chunks of stdout (`false`) or stderr (`true`).
pub type LogStream<'a> = Pin<Box<dyn futures::Stream<Item = Result<(bool, bytes::Bytes), RuntimeError>> + Send + 'a>>;

/// Labels every container the agent creates carries, so a restarted agent can find its own.
pub const LABEL_TASK: &str = "com.berth.task-arn";
pub const LABEL_CONTAINER: &str = "com.berth.container-name";
pub const LABEL_CLUSTER: &str = "com.berth.cluster";
/// The container instance (agent) that owns the container.
pub const LABEL_INSTANCE: &str = "com.berth.container-instance";
/// On the containers of a task with shared namespaces: their holder's runtime name. On the
/// holder itself: its own name (it has no task label, so it is never taken for a task's).
pub const LABEL_HOLDER: &str = "com.berth.namespace-holder";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    /// `None` for a dynamic host port (the runtime picks one from the ephemeral range).
    pub host_port: Option<u16>,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A port range published as a whole (`containerPortRange`): in bridge mode the driver takes
/// a free run of host ports of the same length from the ephemeral range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRangeSpec {
    pub first: u16,
    pub last: u16,
    pub protocol: String,
}

/// A host device node made available in the container (`linuxParameters.devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: String,
    /// cgroup device permissions: a subset of `rwm`.
    pub permissions: String,
}

/// A tmpfs mounted in the container (`linuxParameters.tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsSpec {
    pub container_path: String,
    pub size_mib: i64,
    /// Mount options as ECS gives them (`noexec`, `mode=1777`, ...).
    pub options: Vec<String>,
}

/// Which PID or IPC namespace a container is in (`pidMode`, `ipcMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    /// Its own (the default).
    #[default]
    Private,
    /// The host's.
    Host,
    /// The one all containers of its task share, held by the task's namespace holder.
    Task,
    /// IPC only: its own, without `/dev/shm`.
    None,
}

/// How a container's output is kept: rotated at `max_bytes`, `files` files in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSpec {
    pub max_bytes: u64,
    pub files: u32,
}

impl Default for LogSpec {
    /// Docker's json-file settings the agent has always used: three files of 10 MiB.
    fn default() -> Self {
        LogSpec { max_bytes: 10 << 20, files: 3 }
    }
}

/// A container health check, as Docker and ECS define it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthSpec {
    /// `["CMD-SHELL", "..."]` or `["CMD", "exe", "arg", ...]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
}

/// Everything a driver needs to create one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Runtime-level name (unique per task and container).
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub cpu_shares: Option<i64>,
    /// Hard limit in bytes.
    pub memory: Option<i64>,
    /// Soft limit in bytes.
    pub memory_reservation: Option<i64>,
    /// `bridge`, `host`, `none` or `awsvpc` (the network namespace of the task's holder,
    /// see [`Runtime::task_netns`]).
    pub network_mode: String,
    pub ports: Vec<PortSpec>,
    pub labels: HashMap<String, String>,
    pub hostname: Option<String>,
    /// `host:ip` entries for /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `source:destination[:ro]` bind mounts.
    pub binds: Vec<String>,
    pub stop_timeout: Duration,
    /// Basic-auth credentials for the image's registry.
    pub registry_auth: Option<(String, String)>,
    /// The secret holding them (`repositoryCredentials.credentialsParameter`), read at pull time.
    pub repository_credentials: Option<String>,
    /// `environmentFiles` (S3 object ARNs), merged beneath `env` at create time.
    pub env_files: Vec<String>,
    pub health: Option<HealthSpec>,
    /// The task cgroup the container goes beneath (`/berth-tasks/<task id>`).
    pub cgroup_parent: Option<String>,
    /// Published port ranges (`containerPortRange`).
    pub port_ranges: Vec<PortRangeSpec>,
    pub devices: Vec<DeviceSpec>,
    pub tmpfs: Vec<TmpfsSpec>,
    /// The size of `/dev/shm` in MiB (the runtime's 64 MiB when `None`); with `ipc_mode`
    /// `Task`, the size of the task's shared `/dev/shm`.
    pub shm_size_mib: Option<i64>,
    /// Memory plus swap limit in bytes (`memory` + `maxSwap`).
    pub memory_swap: Option<i64>,
    pub swappiness: Option<i64>,
    /// Namespaced sysctls (`systemControls`).
    pub sysctls: std::collections::BTreeMap<String, String>,
    pub pid_mode: NamespaceMode,
    pub ipc_mode: NamespaceMode,
    /// The runtime name of the task's namespace holder, when `pid_mode` or `ipc_mode` is
    /// `Task`: a pause process the driver starts with the task's first container and removes
    /// with its last.
    pub namespace_holder: Option<String>,
    /// The OCI runtime to run the container with instead of the driver's own: a FARGATE
    /// task's `--fargate-runtime`.
    pub runtime: Option<String>,
    /// `search` domains of `/etc/resolv.conf`.
    pub dns_search: Vec<String>,
    /// Standard input kept open (`interactive`).
    pub interactive: bool,
    /// A terminal as standard streams (`pseudoTerminal`).
    pub tty: bool,
    /// `dockerSecurityOptions` `no-new-privileges`.
    pub no_new_privileges: bool,
    pub log: LogSpec,
}

/// A host port the runtime bound for a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: String,
    pub bind_ip: String,
}

/// What the runtime says about a container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub running: bool,
    /// Set once the container has exited.
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub bindings: Vec<Binding>,
    pub labels: HashMap<String, String>,
    /// The runtime's own error text, if starting it failed.
    pub error: Option<String>,
    /// The health check's verdict (`Unknown` while starting or without a check).
    pub health: crate::lifecycle::Health,
    /// The container's own address on its bridge (bridge mode), when the runtime gave it one.
    pub address: Option<std::net::Ipv4Addr>,
    /// The image it runs as the runtime names it: Docker's image id, the oci driver's
    /// manifest digest.
    pub image_id: Option<String>,
    /// Its cgroup, relative to the root of each hierarchy (`/berth-tasks/<task id>/<id>`).
    pub cgroup: Option<String>,
}

/// Why a runtime call failed; the variant picks ECS's reason prefix.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("CannotPullContainerError: {0}")]
    Pull(String),
    #[error("CannotCreateContainerError: {0}")]
    Create(String),
    #[error("CannotStartContainerError: {0}")]
    Start(String),
    #[error("CannotStopContainerError: {0}")]
    Stop(String),
    #[error("CannotInspectContainerError: {0}")]
    Inspect(String),
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
}

/// A container runtime. Ids are the runtime's own.
pub trait Runtime: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Makes the image available locally (a cached image is not pulled again).
    fn pull<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), RuntimeError>>;
    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>>;
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// SIGTERM, then SIGKILL once `timeout` has passed.
    fn stop<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, Result<(), RuntimeError>>;
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Observed, RuntimeError>>;
    /// Returns once the container has exited.
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Every container this agent created (found by its labels), running or not.
    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Observed>, RuntimeError>>;
    /// The container's kept stdout/stderr; with `follow`, then what it writes until it exits.
    fn logs<'a>(&'a self, id: &'a str, follow: bool) -> LogStream<'a>;
    /// The network namespace of an `awsvpc` task: its namespace holder `spec.namespace_holder`
    /// started (in `spec`'s cgroup) unless it runs, and the path of the holder's own network
    /// namespace, which the task's containers (network mode `awsvpc`) then join.
    fn task_netns<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<std::path::PathBuf, RuntimeError>>;
    /// Removes namespace holder `holder` unless a container joined it (a task that stopped
    /// before any of its containers was created).
    fn release_task_netns<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, ()>;
    /// The OCI runtime of FARGATE tasks when none is named (`--fargate-runtime auto`): the
    /// engine's own runc for a driver that picks no runtime.
    fn default_fargate_runtime(&self) -> String {
        "runc".into()
    }
    /// Whether containers can be run with the OCI runtime `name` ([`ContainerSpec::runtime`]):
    /// checked at agent start. A driver that picks no runtime takes only runc, its engine's own.
    fn check_runtime(&self, name: &str) -> Result<(), RuntimeError> {
        if name == "runc" {
            return Ok(());
        }
        Err(RuntimeError::Unavailable(format!(
            "the {} driver runs every container with runc; the OCI runtime {name:?} needs --runtime oci",
            self.name()
        )))
    }
}
