//! The `oci` runtime driver: images from [`berth_image::store`], a rootfs and bundle per
//! container ([`rootfs`](super::rootfs), [`bundle`](super::bundle)), and a [`shim`](super::shim)
//! process per container running it under a runc-compatible runtime.
//!
//! Each container lives in `ROOT/containers/NAME/`: `config.json` and `rootfs/` (the bundle),
//! `upper/` and `work/` (overlayfs), `meta.json` (labels, stop timeout, cgroup, network, the
//! task's namespace holder), `shim.json` (the shim's options), and what the shim writes:
//! `log.json` (rotated) and, once it exited, `exit.json`. A task sharing namespaces has its
//! holder ([`holder`](super::holder)) in `ROOT/holders/`, or in `/run/netns/` when it shares
//! only its network; it is removed with its last container.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_image::store::ImageStore;
use serde::{Deserialize, Serialize};

use super::network::{self, Attachment, Forward};
use super::runtimes::RuntimeCommand;
use super::shim::{
    EXIT_FILE, Exit, FORWARDS_FILE, HEALTH_FILE, HEALTHCHECK_FILE, LOG_FILE, OPTIONS_FILE, Options, PID_FILE,
};
use super::zygote::{self, ShimArgs, Zygote};
use super::{bundle, holder, native, rootfs};
use crate::lifecycle::Health;
use crate::runtime::{
    Binding, BoxFuture, ContainerSpec, LogStream, NamespaceMode, Observed, Runtime, RuntimeError, jsonlog,
};

/// How often waiting calls look for the shim's `exit.json`.
const POLL: Duration = Duration::from_millis(25);
/// How often `start` looks whether the process runs (a stat, cheap).
const START_POLL: Duration = Duration::from_millis(2);
/// Where runc keeps its state (runc's default root when run as root).
const RUNC_ROOT: &str = "/run/runc";
/// How long a container may take to be running after `start`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Written by `start` once a runtime other than runc started the container (runc's own
/// state says so for runc).
const STARTED_FILE: &str = "started";
/// How long starting through runc's exec fifo may wait for the container's init.
const FIFO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    labels: HashMap<String, String>,
    cgroups_path: String,
    /// The bridge network given to the container (bridge mode).
    #[serde(default)]
    attachment: Option<Attachment>,
    /// The task's namespace holder the container joined.
    #[serde(default)]
    holder: Option<String>,
    /// The OCI runtime the container runs under, when not the driver's own (a FARGATE task's).
    #[serde(default)]
    runtime: Option<String>,
    /// The manifest digest of the image it runs.
    #[serde(default)]
    image_id: Option<String>,
}

pub struct OciRuntime {
    root: PathBuf,
    images: ImageStore,
    /// The runc-compatible runtime (`runc`, `crun`, `runsc`, `youki`) of containers that name
    /// none, and of the tasks' namespace holders.
    runtime: RuntimeCommand,
    /// The program started as the shim (the `berth` binary, run as `berth shim ...`).
    shim: PathBuf,
    /// Forks the shims (`berth zygote`, run from `shim`).
    zygote: Arc<Zygote>,
    /// One lock per task's namespace holder, held while it is looked for, started or removed:
    /// the holders of different tasks start and go at once.
    holders: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::Create(format!("{what}: {e}"))
}

impl OciRuntime {
    /// `state_dir` holds images and containers; `runtime` must be on PATH (or a path).
    pub fn new(state_dir: &Path, runtime: &str, shim: PathBuf) -> Result<Self, RuntimeError> {
        let runtime = RuntimeCommand::checked(runtime)?;
        if runtime.is_builtin() {
            // The tasks' namespace holders run under the driver's runtime, which must be a
            // program for that.
            return Err(RuntimeError::Unavailable(format!(
                "the berth runtime runs FARGATE tasks (--fargate-runtime {}); the driver's own runtime must be \
                 runc, crun, youki or runsc",
                native::NAME
            )));
        }
        let images =
            ImageStore::open(&state_dir.join("images")).map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let root = state_dir.join("oci");
        std::fs::create_dir_all(root.join("containers")).map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let zygote = Arc::new(Zygote::new(shim.clone()));
        Ok(OciRuntime { root, images, runtime, shim, zygote, holders: Default::default() })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    fn exit(&self, id: &str) -> Option<Exit> {
        serde_json::from_slice(&std::fs::read(self.dir(id).join(EXIT_FILE)).ok()?).ok()
    }

    /// Starts the container's shim, which creates the container, and waits until it is created
    /// (its pid file) or the shim gave up (its exit record: `start` reports that).
    async fn spawn_shim(&self, id: &str, cgroups_path: &str) -> Result<(), RuntimeError> {
        let dir = self.dir(id);
        let args = ShimArgs {
            runtime: self.runtime_of(id),
            id: id.to_string(),
            bundle: dir.clone(),
            cgroups_path: cgroups_path.to_string(),
        };
        let zygote = self.zygote.clone();
        let forked = tokio::task::spawn_blocking(move || zygote.spawn(&args)).await;
        if let Err(e) = forked.map_err(std::io::Error::other).and_then(|r| r) {
            tracing::warn!(container = %id, error = %e, "the shim zygote did not fork the shim; executing it");
            self.exec_shim(id, cgroups_path)?;
        }
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !dir.join(PID_FILE).exists() && self.exit(id).is_none() {
            if tokio::time::Instant::now() > deadline {
                return Err(RuntimeError::Create(format!("container {id} was not created within {START_TIMEOUT:?}")));
            }
            tokio::time::sleep(START_POLL).await;
        }
        Ok(())
    }

    /// Executes `berth shim` for container `id` (when the zygote cannot fork it).
    fn exec_shim(&self, id: &str, cgroups_path: &str) -> Result<(), RuntimeError> {
        let mut child = std::process::Command::new(&self.shim)
            .arg("shim")
            .args(self.runtime_of(id).shim_args())
            .args(["--id", id, "--cgroups-path", cgroups_path, "--bundle"])
            .arg(self.dir(id))
            .env(zygote::NO_HUGE_PAGES.0, zygote::NO_HUGE_PAGES.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| RuntimeError::Create(format!("starting the shim: {e}")))?;
        // Reap the shim when it ends (it detaches into its own session).
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    /// runc's `start` is: open the container's `exec.fifo`, read the byte its init writes,
    /// remove the fifo. Doing that here saves starting a runc process on every task start.
    /// `None` when the runtime is not runc or has no fifo (the caller runs `runtime start`).
    /// The berth runtime's container has its fifo in its directory, and no other way to start.
    async fn start_through_fifo(&self, id: &str) -> Option<Result<(), RuntimeError>> {
        let runtime = self.runtime_of(id);
        let fifo = if runtime.is_builtin() {
            self.dir(id).join(native::FIFO)
        } else if runtime.is_runc() {
            PathBuf::from(RUNC_ROOT).join(id).join("exec.fifo")
        } else {
            return None;
        };
        if !fifo.exists() {
            return runtime.is_builtin().then(|| {
                Err(RuntimeError::Start(format!("container {id} was started already (it has no exec fifo)")))
            });
        }
        // The init waits in a blocking open of the fifo for writing; if it died meanwhile, our
        // open would wait forever, so it is bounded, and on timeout a writer of our own
        // releases the blocked reader.
        let path = fifo.clone();
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
            use std::io::Read;
            let mut byte = Vec::new();
            std::fs::File::open(&path)?.read_to_end(&mut byte)?;
            Ok(byte.len())
        });
        let outcome = match tokio::time::timeout(FIFO_TIMEOUT, reader).await {
            Ok(joined) => joined.map_err(|e| std::io::Error::other(e.to_string())).and_then(|r| r),
            Err(_) => {
                use std::os::unix::fs::OpenOptionsExt;
                let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
                Err(std::io::Error::other("its init did not answer"))
            }
        };
        let _ = std::fs::remove_file(&fifo);
        Some(match outcome {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(RuntimeError::Start(format!("container {id} is already running"))),
            Err(e) => Err(RuntimeError::Start(format!("starting {id} through its exec fifo: {e}"))),
        })
    }

    /// `runtime delete --force`: the container's processes and the runtime's record of it go.
    async fn delete(&self, id: &str) {
        if !self.runtime_of(id).is_builtin() {
            let _ = self.runtime(id, &["delete", "--force", id]).await;
            return;
        }
        let Some(meta) = self.meta(id) else { return };
        let dir = self.dir(id);
        let deleted = tokio::task::spawn_blocking(move || native::delete(&dir, &meta.cgroups_path)).await;
        if let Ok(Err(e)) = deleted {
            tracing::warn!(container = %id, error = %e, "removing the container's cgroup");
        }
    }

    /// `runtime kill`: `signal` (`TERM`, `KILL`) to the container's process.
    async fn kill(&self, id: &str, signal: &str) {
        if !self.runtime_of(id).is_builtin() {
            let _ = self.runtime(id, &["kill", id, signal]).await;
            return;
        }
        let number = if signal == "KILL" { libc::SIGKILL } else { libc::SIGTERM };
        let pid = std::fs::read_to_string(self.dir(id).join(PID_FILE)).ok().and_then(|p| p.trim().parse().ok());
        if let Some(pid) = pid {
            let _ = native::kill(pid, number);
        }
    }

    /// Runs container `id`'s runtime with `args`.
    async fn runtime(&self, id: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        self.runtime_of(id).tokio_command().args(args).stdin(Stdio::null()).output().await
    }

    /// The runtime container `id` runs under: the one its meta names, else the driver's.
    fn runtime_of(&self, id: &str) -> RuntimeCommand {
        self.meta(id)
            .and_then(|m| m.runtime)
            .and_then(|name| RuntimeCommand::for_name(&name).ok())
            .unwrap_or_else(|| self.runtime.clone())
    }

    /// `/etc/hosts` (localhost, the hostname, `extraHosts`) and `/etc/resolv.conf`
    /// (`dnsServers`, else the host's) for the container, bind-mounted as Docker does.
    fn network_files(
        &self,
        spec: &ContainerSpec,
        dir: &Path,
        attachment: Option<&Attachment>,
        config: &mut oci_spec::runtime::Spec,
    ) -> Result<(), RuntimeError> {
        if spec.network_mode == "host"
            && spec.extra_hosts.is_empty()
            && spec.dns.is_empty()
            && spec.dns_search.is_empty()
        {
            return Ok(());
        }
        let hostname = config.hostname().clone().unwrap_or_default();
        let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        if let Some(a) = attachment {
            hosts.push_str(&format!("{}\t{hostname}\n", a.address));
        }
        for entry in &spec.extra_hosts {
            if let Some((name, address)) = entry.rsplit_once(':') {
                hosts.push_str(&format!("{address}\t{name}\n"));
            }
        }
        let resolv =
            resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(), &spec.dns, &spec.dns_search);
        let mut mounts = config.mounts().clone().unwrap_or_default();
        for (file, contents, target) in [("hosts", hosts, "/etc/hosts"), ("resolv.conf", resolv, "/etc/resolv.conf")] {
            let path = dir.join(file);
            std::fs::write(&path, contents).map_err(io("writing network files"))?;
            let mount: oci_spec::runtime::Mount = serde_json::from_value(serde_json::json!({
                "destination": target, "type": "bind", "source": path, "options": ["rbind", "rw"]
            }))
            .map_err(|e| RuntimeError::Create(e.to_string()))?;
            mounts.push(mount);
        }
        config.set_mounts(Some(mounts));
        Ok(())
    }

    fn meta(&self, id: &str) -> Option<Meta> {
        serde_json::from_slice(&std::fs::read(self.dir(id).join("meta.json")).ok()?).ok()
    }

    /// A bridge address and host ports for `spec`, then its namespace and veth.
    fn attach(&self, spec: &ContainerSpec) -> Result<Attachment, RuntimeError> {
        let mut used = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(self.root.join("containers")).into_iter().flatten().flatten() {
            if let Some(a) = entry.file_name().to_str().and_then(|id| self.meta(id)).and_then(|m| m.attachment) {
                used.insert(a.address);
            }
        }
        let forwards = spec
            .ports
            .iter()
            .map(|p| {
                let protocol = network::Protocol::parse(&p.protocol)
                    .ok_or_else(|| RuntimeError::Create(format!("unknown port protocol {}", p.protocol)))?;
                let host_port = match p.host_port {
                    Some(h) => h,
                    None => network::free_port(protocol).map_err(RuntimeError::Create)?,
                };
                Ok(Forward { host_port, container_port: p.container_port, protocol })
            })
            .collect::<Result<Vec<_>, RuntimeError>>()?;
        let mut forwards = forwards;
        for r in &spec.port_ranges {
            let protocol = network::Protocol::parse(&r.protocol)
                .ok_or_else(|| RuntimeError::Create(format!("unknown port protocol {}", r.protocol)))?;
            let len = r.last - r.first + 1;
            let host_first = crate::runtime::ports::free_run(len, protocol == network::Protocol::Udp)
                .map_err(RuntimeError::Create)?;
            forwards.extend((0..len).map(|n| Forward {
                host_port: host_first + n,
                container_port: r.first + n,
                protocol,
            }));
        }
        let netns = network::netns_name(&spec.name);
        let leases = std::path::Path::new(network::LEASES);
        let address = network::lease(leases, &netns, &used).map_err(RuntimeError::Create)?;
        network::attach(&spec.name, address, forwards).map_err(|e| {
            network::release(leases, &netns, address);
            RuntimeError::Create(format!("bridge network: {e}"))
        })
    }

    /// Whether the container's process runs: created by runc, started (its exec fifo gone),
    /// and not yet exited. Under another runtime: created, and started (the driver's marker).
    fn running(&self, id: &str) -> bool {
        if self.exit(id).is_some() {
            return false;
        }
        if self.runtime_of(id).is_builtin() {
            return self.dir(id).join(PID_FILE).exists() && !self.dir(id).join(native::FIFO).exists();
        }
        if !self.runtime_of(id).is_runc() {
            return self.dir(id).join(PID_FILE).exists() && self.dir(id).join(STARTED_FILE).exists();
        }
        let state = Path::new(RUNC_ROOT).join(id);
        state.join("state.json").exists() && !state.join("exec.fifo").exists()
    }

    /// Creates an exited container again under a new shim: runc's state and the files of the
    /// last run go, the bundle, rootfs, network and log stay.
    async fn rerun(&self, id: &str) -> Result<(), RuntimeError> {
        let meta = self.meta(id).ok_or_else(|| RuntimeError::Start(format!("container {id} has no meta.json")))?;
        self.delete(id).await;
        for file in [EXIT_FILE, PID_FILE, HEALTH_FILE, STARTED_FILE] {
            let _ = std::fs::remove_file(self.dir(id).join(file));
        }
        self.spawn_shim(id, &meta.cgroups_path).await.map_err(|e| RuntimeError::Start(e.to_string()))?;
        match self.exit(id) {
            Some(exit) => Err(RuntimeError::Start(exit.error.unwrap_or_else(|| "the container exited".into()))),
            None => Ok(()),
        }
    }

    async fn wait_exit(&self, id: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.exit(id).is_some() {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        self.exit(id).is_some()
    }
}

impl OciRuntime {
    /// The lock of holder `name`.
    fn holder_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.holders.lock().expect("holder locks");
        // Locks of holders nobody waits for are dropped as the map grows.
        if locks.len() > 64 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(name.to_string()).or_default().clone()
    }

    /// The task's namespace holder, started with its first container: a process when the
    /// task shares PID or IPC namespaces, else a named network namespace.
    async fn ensure_holder(&self, name: &str, spec: &ContainerSpec) -> Result<holder::Holder, RuntimeError> {
        let lock = self.holder_lock(name);
        let _guard = lock.lock().await;
        if let Some(h) = holder::running(&self.root, name) {
            return Ok(h);
        }
        if spec.pid_mode != NamespaceMode::Task && spec.ipc_mode != NamespaceMode::Task {
            return holder::start_netns(name).map_err(RuntimeError::Create);
        }
        let parent = spec.cgroup_parent.as_deref().unwrap_or("/berth");
        let shm = (spec.ipc_mode == NamespaceMode::Task).then_some(spec.shm_size_mib);
        holder::start(&self.root, &self.runtime.program, name, &format!("{parent}/{name}"), shm)
            .await
            .map_err(RuntimeError::Create)
    }

    /// Removes the task's namespace holder once no container that joined it is left.
    async fn release_holder(&self, name: &str) {
        let lock = self.holder_lock(name);
        let _guard = lock.lock().await;
        let entries = std::fs::read_dir(self.root.join("containers")).into_iter().flatten().flatten();
        let joined = entries
            .filter_map(|e| e.file_name().to_str().and_then(|id| self.meta(id)))
            .any(|m| m.holder.as_deref() == Some(name));
        if !joined {
            holder::remove(&self.root, &self.runtime.program, name).await;
        }
    }

    /// Creates the container's directory, bundle and shim; `holder` is what it joins.
    async fn create_in(&self, spec: &ContainerSpec, joined: Option<&holder::Holder>) -> Result<String, RuntimeError> {
        check_memory_controls(spec)?;
        let image = self
            .images
            .cached(&spec.image)
            .ok_or_else(|| RuntimeError::Create(format!("image {} is not in the store", spec.image)))?;
        let dir = self.dir(&spec.name);
        if dir.exists() {
            self.delete(&spec.name).await;
            rootfs::remove(&dir).map_err(io("removing a stale container"))?;
        }
        for bind in &spec.binds {
            if let Some(source) = bind.split(':').next() {
                std::fs::create_dir_all(source).map_err(io("creating a bind mount source"))?;
            }
        }
        let t0 = std::time::Instant::now();
        let fs = rootfs::mount(&image.layers, &dir).map_err(io("mounting the rootfs"))?;
        tracing::debug!(container = %spec.name, elapsed = ?t0.elapsed(), "rootfs mounted");
        let cgroups_path = match &spec.cgroup_parent {
            Some(parent) => format!("{parent}/{}", spec.name),
            None => format!("/berth/{}", spec.name),
        };
        let attachment = if spec.network_mode == "bridge" { Some(self.attach(spec)?) } else { None };
        // Until meta.json records the attachment, nothing else would take it back.
        let mut unrecorded = Detach(attachment.clone());
        if let Some(a) = &attachment {
            let forwards = serde_json::json!({"address": a.address, "forwards": a.forwards});
            std::fs::write(dir.join(FORWARDS_FILE), forwards.to_string()).map_err(io("writing the port forwards"))?;
        }
        let netns = match (&attachment, joined) {
            (Some(a), _) => Some(network::netns_path(a)),
            // awsvpc: the namespace of the task's holder, given its interface by the agent.
            (None, Some(h)) if spec.network_mode == "awsvpc" => Some(h.netns.display().to_string()),
            (None, _) => None,
        };
        let joined = bundle::Joined {
            network: netns.as_deref(),
            holder_pid: joined.and_then(|h| h.pid),
            task_shm: joined.and_then(|h| h.shm.as_deref()),
        };
        let mut config = bundle::runtime_spec(spec, &image.config, &fs.rootfs, &cgroups_path, &joined)
            .map_err(|e| RuntimeError::Create(e.to_string()))?;
        self.network_files(spec, &dir, attachment.as_ref(), &mut config)?;
        if spec.init {
            init_process(&mut config)?;
        }
        config.save(dir.join("config.json")).map_err(|e| RuntimeError::Create(e.to_string()))?;
        if let Some(check) = &spec.health {
            std::fs::write(dir.join(HEALTHCHECK_FILE), serde_json::to_vec(check).expect("json"))
                .map_err(io("writing the health check"))?;
        }
        let options =
            Options { log_max_bytes: spec.log.max_bytes, log_files: spec.log.files, interactive: spec.interactive };
        std::fs::write(dir.join(OPTIONS_FILE), serde_json::to_vec(&options).expect("json"))
            .map_err(io("writing the shim's options"))?;
        let meta = Meta {
            labels: spec.labels.clone(),
            cgroups_path,
            attachment,
            holder: spec.namespace_holder.clone(),
            runtime: spec.runtime.clone(),
            image_id: Some(image.manifest_digest.clone()),
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).expect("json"))
            .map_err(io("writing meta.json"))?;
        unrecorded.0 = None;
        tracing::debug!(container = %spec.name, elapsed = ?t0.elapsed(), "bundle written");
        self.spawn_shim(&spec.name, &meta.cgroups_path).await?;
        tracing::debug!(container = %spec.name, elapsed = ?t0.elapsed(), "created");
        Ok(spec.name.clone())
    }
}

/// A bridge attachment to undo when dropped: a create that fails before `meta.json` records
/// it would otherwise leave its namespace, veth and address lease behind.
struct Detach(Option<Attachment>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            network::detach(&a);
        }
    }
}

/// `/etc/resolv.conf` for a container: `dnsServers` as nameservers (else the host's), and
/// `dnsSearchDomains` as the search list (else the host's).
fn resolv_conf(host: &str, servers: &[String], search: &[String]) -> String {
    let mut out: Vec<String> = if servers.is_empty() {
        host.lines()
            .filter(|l| search.is_empty() || !(l.starts_with("search") || l.starts_with("domain")))
            .map(String::from)
            .collect()
    } else {
        servers.iter().map(|d| format!("nameserver {d}")).collect()
    };
    if !search.is_empty() {
        out.push(format!("search {}", search.join(" ")));
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

/// `maxSwap` and `swappiness` need what the memory cgroup offers here; runc would otherwise
/// leave them out without a word.
fn check_memory_controls(spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if spec.memory_swap.is_some() {
        let accounted = if unified {
            let parent = spec.cgroup_parent.as_deref().unwrap_or_default().trim_start_matches('/');
            Path::new("/sys/fs/cgroup").join(parent).join("memory.swap.max").exists()
        } else {
            Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        };
        if !accounted {
            return Err(RuntimeError::Create(
                "maxSwap needs swap accounting in the memory cgroup, which this machine does not have".into(),
            ));
        }
    }
    if spec.swappiness.is_some() && unified {
        return Err(RuntimeError::Create("swappiness has no equivalent in cgroup v2, which this machine uses".into()));
    }
    Ok(())
}

/// Where an init process (tini) may be found on the host: Debian's docker.io ships it as
/// docker-init, the tini packages as tini or tini-static.
const INIT_CANDIDATES: [&str; 3] = ["/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/tini"];
/// Where the init binary appears inside the container.
const INIT_TARGET: &str = "/sbin/berth-init";

/// `initProcessEnabled`: the host's tini, bind-mounted read-only, runs as PID 1 and starts the
/// container's command, forwarding signals and reaping orphans.
fn init_process(config: &mut oci_spec::runtime::Spec) -> Result<(), RuntimeError> {
    let init = INIT_CANDIDATES.iter().find(|p| Path::new(p).exists()).ok_or_else(|| {
        RuntimeError::Create("initProcessEnabled needs tini on the host (Debian: tini or docker.io)".into())
    })?;
    let mut mounts = config.mounts().clone().unwrap_or_default();
    let mount: oci_spec::runtime::Mount = serde_json::from_value(serde_json::json!({
        "destination": INIT_TARGET, "type": "bind", "source": init, "options": ["bind", "ro"]
    }))
    .map_err(|e| RuntimeError::Create(e.to_string()))?;
    mounts.push(mount);
    config.set_mounts(Some(mounts));
    if let Some(process) = config.process_mut() {
        let mut args = vec![INIT_TARGET.to_string(), "--".to_string()];
        args.extend(process.args().clone().unwrap_or_default());
        process.set_args(Some(args));
    }
    Ok(())
}

impl Runtime for OciRuntime {
    fn name(&self) -> &'static str {
        "oci"
    }

    fn pull<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let auth = spec.registry_auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            self.images.pull(&spec.image, auth).await.map(|_| ()).map_err(|e| RuntimeError::Pull(e.to_string()))
        })
    }

    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(async move {
            let Some(name) = &spec.namespace_holder else { return self.create_in(spec, None).await };
            let holder = self.ensure_holder(name, spec).await?;
            let created = self.create_in(spec, Some(&holder)).await;
            if created.is_err() {
                self.release_holder(name).await;
            }
            created
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            // The shim created the container at create time; creating failed if it recorded
            // an error. A container that ran and exited is run again in place (restart
            // policies), on the same rootfs, as Docker starts an exited container.
            if let Some(exit) = self.exit(id) {
                if let Some(error) = exit.error {
                    return Err(RuntimeError::Start(error));
                }
                self.rerun(id).await?;
            }
            if let Some(started) = self.start_through_fifo(id).await {
                return started;
            }
            let out = self.runtime(id, &["start", id]).await.map_err(|e| RuntimeError::Start(e.to_string()))?;
            if !out.status.success() {
                if let Some(exit) = self.exit(id) {
                    return Err(RuntimeError::Start(exit.error.unwrap_or_else(|| "the container exited".into())));
                }
                return Err(RuntimeError::Start(String::from_utf8_lossy(&out.stderr).trim().to_string()));
            }
            std::fs::write(self.dir(id).join(STARTED_FILE), b"").map_err(|e| RuntimeError::Start(e.to_string()))?;
            Ok(())
        })
    }

    fn stop<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            if self.exit(id).is_some() {
                return Ok(());
            }
            self.kill(id, "TERM").await;
            if self.wait_exit(id, timeout).await {
                return Ok(());
            }
            self.kill(id, "KILL").await;
            if self.wait_exit(id, Duration::from_secs(10)).await {
                Ok(())
            } else {
                Err(RuntimeError::Stop(format!("container {id} did not exit after SIGKILL")))
            }
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Observed, RuntimeError>> {
        Box::pin(async move {
            let meta: Meta = serde_json::from_slice(
                &std::fs::read(self.dir(id).join("meta.json"))
                    .map_err(|e| RuntimeError::Inspect(format!("{id}: {e}")))?,
            )
            .map_err(|e| RuntimeError::Inspect(e.to_string()))?;
            let running = self.running(id);
            let exit = self.exit(id);
            Ok(Observed {
                id: id.to_string(),
                address: meta.attachment.as_ref().map(|a| a.address),
                image_id: meta.image_id.clone(),
                cgroup: Some(meta.cgroups_path.clone()),
                running,
                exit_code: exit.as_ref().map(|e| e.code),
                oom_killed: exit.as_ref().is_some_and(|e| e.oom_killed),
                bindings: meta
                    .attachment
                    .iter()
                    .flat_map(|a| &a.forwards)
                    .map(|f| Binding {
                        container_port: f.container_port,
                        host_port: f.host_port,
                        protocol: f.protocol.as_str().into(),
                        bind_ip: "0.0.0.0".into(),
                    })
                    .collect(),
                labels: meta.labels,
                error: exit.and_then(|e| e.error),
                health: match std::fs::read(self.dir(id).join(HEALTH_FILE))
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                {
                    Some(v) if v["healthy"] == true => Health::Healthy,
                    Some(v) if v["healthy"] == false => Health::Unhealthy,
                    _ => Health::Unknown,
                },
            })
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            while self.exit(id).is_none() {
                if !self.dir(id).exists() {
                    return Err(RuntimeError::Inspect(format!("container {id} is gone")));
                }
                tokio::time::sleep(POLL).await;
            }
            Ok(())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.delete(id).await;
            let meta = self.meta(id);
            if let Some(a) = meta.as_ref().and_then(|m| m.attachment.as_ref()) {
                network::detach(a);
            }
            rootfs::remove(&self.dir(id)).map_err(|e| RuntimeError::Stop(e.to_string()))?;
            if let Some(name) = meta.and_then(|m| m.holder) {
                self.release_holder(&name).await;
            }
            Ok(())
        })
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Observed>, RuntimeError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let entries =
                std::fs::read_dir(self.root.join("containers")).map_err(|e| RuntimeError::Inspect(e.to_string()))?;
            for entry in entries.flatten() {
                if let Some(id) = entry.file_name().to_str()
                    && let Ok(observed) = self.inspect(id).await
                {
                    out.push(observed);
                }
            }
            Ok(out)
        })
    }

    fn task_netns<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<PathBuf, RuntimeError>> {
        Box::pin(async move {
            let name = spec.namespace_holder.as_deref().ok_or_else(|| {
                RuntimeError::Create(format!("container {} is in the awsvpc network mode but has no holder", spec.name))
            })?;
            let holder = self.ensure_holder(name, spec).await?;
            Ok(holder.netns)
        })
    }

    fn release_task_netns<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.release_holder(holder))
    }

    fn check_runtime(&self, name: &str) -> Result<(), RuntimeError> {
        RuntimeCommand::checked(name).map(|_| ())
    }

    /// Berth's own runtime where this host allows it (the cgroup v1 devices controller), else
    /// runc.
    fn default_fargate_runtime(&self) -> String {
        match native::check() {
            Ok(()) => native::NAME.into(),
            Err(why) => {
                tracing::info!(reason = %why, "FARGATE tasks run under runc");
                "runc".into()
            }
        }
    }

    fn logs<'a>(&'a self, id: &'a str, follow: bool) -> LogStream<'a> {
        let exited: Option<jsonlog::Exited<'a>> = follow.then(|| {
            Box::new(move || Box::pin(std::future::ready(self.exit(id).is_some())) as BoxFuture<'a, bool>) as _
        });
        jsonlog::follow(self.dir(id).join(LOG_FILE), exited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_takes_servers_and_search_domains() {
        let host = "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n";
        assert_eq!(resolv_conf(host, &[], &[]), host);
        assert_eq!(
            resolv_conf(host, &[], &["svc.local".into(), "corp".into()]),
            "nameserver 10.0.0.2\noptions ndots:2\nsearch svc.local corp\n"
        );
        assert_eq!(resolv_conf(host, &["1.1.1.1".into()], &["a".into()]), "nameserver 1.1.1.1\nsearch a\n");
    }
}
