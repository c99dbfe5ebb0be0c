//! The Docker Engine driver, through bollard: what the ECS agent does on EC2.
//!
//! Tasks with shared PID or IPC namespaces (`pidMode`/`ipcMode` `task`) get a holder
//! container running the pause program ([`super::pause`], imported as the image
//! `berth-pause`): the task's containers join its namespaces, and it is removed with the last
//! of them. A setting the engine says it would discard (its create warnings) fails the
//! container instead of being dropped.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig,
    NetworkSettings, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptions,
};
use futures::StreamExt;

use crate::lifecycle::Health;

use super::{
    Binding, BoxFuture, ContainerSpec, LABEL_HOLDER, LABEL_INSTANCE, LABEL_TASK, LogStream, NamespaceMode, Observed,
    Runtime, RuntimeError, jsonlog,
};

/// The repository of the pause image the driver imports.
const PAUSE_REPOSITORY: &str = "berth-pause";

pub struct DockerRuntime {
    docker: Docker,
    /// Held while a task's namespace holder is looked for, created or removed.
    holders: tokio::sync::Mutex<()>,
}

impl DockerRuntime {
    /// The container's output through the engine's logs API.
    fn api_logs<'a>(&'a self, id: &'a str, follow: bool) -> LogStream<'a> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(follow).build();
        Box::pin(self.docker.logs(id, Some(options)).filter_map(|item| async move {
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => Some(Ok((false, message))),
                Ok(LogOutput::StdErr { message }) => Some(Ok((true, message))),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(RuntimeError::Inspect(message(e)))),
            }
        }))
    }

    /// Whether the container no longer runs (or is gone). The engine marks a container
    /// stopped only after its output is copied and its log closed, so the json-file is
    /// complete then.
    async fn exited(&self, id: &str) -> bool {
        match self.docker.inspect_container(id, None).await {
            Ok(info) => !info.state.and_then(|s| s.running).unwrap_or(false),
            Err(_) => true,
        }
    }

    /// Connects to the local engine (`DOCKER_HOST` or /var/run/docker.sock) and agrees on an
    /// API version with it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let docker = docker.negotiate_version().await.map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        docker.ping().await.map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        Ok(DockerRuntime { docker, holders: tokio::sync::Mutex::new(()) })
    }

    /// Whether the engine still has the container (`false` only when it says it has not).
    async fn exists(&self, id: &str) -> bool {
        !matches!(
            self.docker.inspect_container(id, None).await,
            Err(DockerError::DockerResponseServerError { status_code: 404, .. })
        )
    }
}

fn message(e: DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// A bridge-mode container's address on its network (the first endpoint that has one).
fn bridge_address(settings: &NetworkSettings) -> Option<std::net::Ipv4Addr> {
    let endpoints = settings.networks.as_ref()?.values();
    endpoints.filter_map(|e| e.ip_address.as_deref()?.parse().ok()).next()
}

/// `repo:tag` split as the engine's create-image call wants it.
fn split_reference(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn pull<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            if self.docker.inspect_image(&spec.image).await.is_ok() {
                return Ok(());
            }
            let (repo, tag) = split_reference(&spec.image);
            let options = CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
            let credentials = spec.registry_auth.as_ref().map(|(u, p)| DockerCredentials {
                username: Some(u.clone()),
                password: Some(p.clone()),
                ..Default::default()
            });
            let mut progress = self.docker.create_image(Some(options), None, credentials);
            while let Some(item) = progress.next().await {
                let item = item.map_err(|e| RuntimeError::Pull(format!("{}: {}", spec.image, message(e))))?;
                if let Some(err) = item.error_detail.and_then(|d| d.message) {
                    return Err(RuntimeError::Pull(format!("{}: {err}", spec.image)));
                }
            }
            self.docker
                .inspect_image(&spec.image)
                .await
                .map(|_| ())
                .map_err(|e| RuntimeError::Pull(format!("{}: {}", spec.image, message(e))))
        })
    }

    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(async move {
            if let Some(holder) = &spec.namespace_holder {
                self.ensure_holder(holder, spec).await?;
            }
            let created = self.create_container(spec).await;
            if created.is_err()
                && let Some(holder) = &spec.namespace_holder
            {
                self.release_holder(holder).await;
            }
            created
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(
            async move { self.docker.start_container(id, None).await.map_err(|e| RuntimeError::Start(message(e))) },
        )
    }

    fn stop<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let options = StopContainerOptionsBuilder::new().t(timeout.as_secs() as i32).build();
            match self.docker.stop_container(id, Some(options)).await {
                Ok(()) => Ok(()),
                // 304: already stopped.
                Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
                Err(e) => Err(RuntimeError::Stop(message(e))),
            }
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Observed, RuntimeError>> {
        Box::pin(async move {
            let info = self.docker.inspect_container(id, None).await.map_err(|e| RuntimeError::Inspect(message(e)))?;
            let state = info.state.unwrap_or_default();
            let running = state.running.unwrap_or(false);
            let mut bindings = Vec::new();
            let address = info.network_settings.as_ref().and_then(bridge_address);
            // Docker's cgroupfs driver puts a container beneath its parent by its full id.
            let cgroup = info.host_config.as_ref().and_then(|h| h.cgroup_parent.clone()).filter(|p| !p.is_empty());
            let ports = info.network_settings.and_then(|n| n.ports).unwrap_or_default();
            for (key, list) in ports {
                let (port, protocol) = key.split_once('/').unwrap_or((&key, "tcp"));
                for b in list.unwrap_or_default() {
                    let (Ok(container_port), Some(Ok(host_port))) =
                        (port.parse(), b.host_port.as_deref().map(str::parse))
                    else {
                        continue;
                    };
                    bindings.push(Binding {
                        container_port,
                        host_port,
                        protocol: protocol.to_string(),
                        bind_ip: b.host_ip.unwrap_or_default(),
                    });
                }
            }
            bindings.sort_by(|a, b| (a.container_port, &a.bind_ip).cmp(&(b.container_port, &b.bind_ip)));
            let started = state.started_at.as_deref().is_some_and(|s| !s.starts_with("0001"));
            let id = info.id.unwrap_or_default();
            let exit_code = (!running && started).then_some(state.exit_code.unwrap_or(0));
            let mut oom_killed = state.oom_killed.unwrap_or(false);
            if exit_code == Some(137) && !oom_killed {
                // Docker misses a kill that comes before its watcher: ask the kernel's log.
                let leaf = id.clone();
                oom_killed =
                    tokio::task::spawn_blocking(move || super::kmsg::oom_kill_logged(&leaf)).await.unwrap_or(false);
            }
            Ok(Observed {
                cgroup: cgroup.map(|parent| format!("{}/{id}", parent.trim_end_matches('/'))),
                id,
                address,
                image_id: info.image.filter(|i| !i.is_empty()),
                running,
                exit_code,
                oom_killed,
                bindings,
                labels: info.config.and_then(|c| c.labels).unwrap_or_default(),
                error: state.error.filter(|e| !e.is_empty()),
                health: match state.health.and_then(|h| h.status) {
                    Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
                    Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
                    _ => Health::Unknown,
                },
            })
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut stream = self.docker.wait_container(id, None::<WaitContainerOptions>);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(_) => {}
                    // bollard reports a non-zero exit as an error carrying the code: an exit.
                    Err(DockerError::DockerContainerWaitError { .. }) => {}
                    Err(e) => return Err(RuntimeError::Inspect(message(e))),
                }
            }
            Ok(())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let holder = match self.docker.inspect_container(id, None).await {
                Ok(info) => info.config.and_then(|c| c.labels).and_then(|mut l| l.remove(LABEL_HOLDER)),
                Err(_) => None,
            };
            self.remove_container(id).await?;
            if let Some(holder) = holder {
                self.release_holder(&holder).await;
            }
            Ok(())
        })
    }

    fn task_netns<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<std::path::PathBuf, RuntimeError>> {
        Box::pin(async move {
            let holder = spec.namespace_holder.as_deref().ok_or_else(|| no_holder(spec))?;
            self.ensure_holder(holder, spec).await?;
            let info =
                self.docker.inspect_container(holder, None).await.map_err(|e| RuntimeError::Create(message(e)))?;
            match info.state.and_then(|s| s.pid).filter(|pid| *pid > 0) {
                Some(pid) => Ok(std::path::PathBuf::from(format!("/proc/{pid}/ns/net"))),
                None => Err(RuntimeError::Create("the task's namespace holder is not running".into())),
            }
        })
    }

    fn release_task_netns<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.release_holder(holder))
    }

    /// The engine's json-file read directly when it is on this machine (the engine's logs API
    /// decodes and re-frames every line, and is the slower of the two by far); through the
    /// API otherwise.
    fn logs<'a>(&'a self, id: &'a str, follow: bool) -> LogStream<'a> {
        let opened = async move {
            let info = self.docker.inspect_container(id, None).await.ok();
            let kept = info.and_then(|i| i.log_path).filter(|p| std::fs::File::open(p).is_ok());
            match kept {
                Some(path) => {
                    let exited: Option<jsonlog::Exited<'a>> = follow.then(|| {
                        Box::new(move || Box::pin(self.exited(id)) as BoxFuture<'a, bool>) as jsonlog::Exited<'a>
                    });
                    jsonlog::follow(path.into(), exited)
                }
                None => self.api_logs(id, follow),
            }
        };
        Box::pin(futures::stream::once(opened).flatten())
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Observed>, RuntimeError>> {
        Box::pin(async move {
            let filters = HashMap::from([("label".to_string(), vec![LABEL_TASK.to_string()])]);
            let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
            let list =
                self.docker.list_containers(Some(options)).await.map_err(|e| RuntimeError::Inspect(message(e)))?;
            let mut out = Vec::new();
            for id in list.into_iter().filter_map(|c| c.id) {
                match self.inspect(&id).await {
                    Ok(observed) => out.push(observed),
                    // Removed since the list was taken (another agent shares the engine).
                    Err(_) if !self.exists(&id).await => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }
}

impl DockerRuntime {
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let (exposed, bindings) = port_bindings(spec)?;
        let mut labels = spec.labels.clone();
        if let Some(holder) = &spec.namespace_holder {
            labels.insert(LABEL_HOLDER.into(), holder.clone());
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.command.clone(),
            env: Some(spec.env.clone()),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            // A container in another's network namespace has that one's name (the engine
            // refuses one of its own).
            hostname: if spec.network_mode == "awsvpc" { None } else { spec.hostname.clone() },
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            stop_timeout: Some(spec.stop_timeout.as_secs() as i64),
            tty: Some(spec.tty),
            open_stdin: Some(spec.interactive),
            healthcheck: spec.health.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval.as_nanos() as i64),
                timeout: Some(h.timeout.as_nanos() as i64),
                retries: Some(h.retries),
                start_period: Some(h.start_period.as_nanos() as i64),
                start_interval: None,
            }),
            host_config: Some(host_config(spec, bindings)),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let created =
            self.docker.create_container(Some(options), body).await.map_err(|e| RuntimeError::Create(message(e)))?;
        let discarded: Vec<&String> = created.warnings.iter().filter(|w| refuses(spec, w)).collect();
        if !discarded.is_empty() {
            let _ = self.remove_container(&created.id).await;
            return Err(RuntimeError::Create(format!(
                "the engine would not apply the container's settings: {}",
                discarded.iter().map(|w| w.as_str()).collect::<Vec<_>>().join("; ")
            )));
        }
        Ok(created.id)
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(RuntimeError::Stop(message(e))),
        }
    }

    /// The pause image, imported from the pause program on first use.
    async fn pause_image(&self) -> Result<String, RuntimeError> {
        let program = super::pause::program().ok_or_else(|| {
            RuntimeError::Create(format!(
                "pidMode and ipcMode task are not supported on {} machines",
                std::env::consts::ARCH
            ))
        })?;
        let tag = format!("{:016x}", fnv(&program));
        let image = format!("{PAUSE_REPOSITORY}:{tag}");
        if self.docker.inspect_image(&image).await.is_ok() {
            return Ok(image);
        }
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(program.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        archive
            .append_data(&mut header, "pause", program.as_slice())
            .map_err(|e| RuntimeError::Create(format!("the pause image: {e}")))?;
        let archive = archive.into_inner().map_err(|e| RuntimeError::Create(format!("the pause image: {e}")))?;
        let options = CreateImageOptionsBuilder::new().from_src("-").repo(PAUSE_REPOSITORY).tag(&tag).build();
        let mut progress = self.docker.create_image(Some(options), Some(bollard::body_full(archive.into())), None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| RuntimeError::Create(format!("importing the pause image: {}", message(e))))?;
        }
        Ok(image)
    }

    /// Makes sure the task's namespace holder runs: created (and the pause image imported)
    /// with the task's first container.
    async fn ensure_holder(&self, holder: &str, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let _guard = self.holders.lock().await;
        match self.docker.inspect_container(holder, None).await {
            Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => return Ok(()),
            Ok(_) => {
                return self.docker.start_container(holder, None).await.map_err(|e| RuntimeError::Create(message(e)));
            }
            Err(_) => {}
        }
        let image = self.pause_image().await?;
        let ipc = spec.ipc_mode == NamespaceMode::Task;
        let mut labels = HashMap::from([(LABEL_HOLDER.to_string(), holder.to_string())]);
        if let Some(instance) = spec.labels.get(LABEL_INSTANCE) {
            labels.insert(LABEL_INSTANCE.into(), instance.clone());
        }
        let body = ContainerCreateBody {
            image: Some(image),
            entrypoint: Some(vec!["/pause".into()]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                // The resolv.conf an awsvpc task's containers share.
                dns: (spec.network_mode == "awsvpc" && !spec.dns.is_empty()).then(|| spec.dns.clone()),
                // The /etc/hosts entries they share (Service Connect's aliases).
                extra_hosts: (spec.network_mode == "awsvpc" && !spec.extra_hosts.is_empty())
                    .then(|| spec.extra_hosts.clone()),
                ipc_mode: ipc.then(|| "shareable".into()),
                shm_size: if ipc { spec.shm_size_mib.map(|m| m << 20) } else { None },
                cgroup_parent: spec.cgroup_parent.clone(),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(holder).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| RuntimeError::Create(format!("the task's namespace holder: {}", message(e))))?;
        self.docker
            .start_container(holder, None)
            .await
            .map_err(|e| RuntimeError::Create(format!("the task's namespace holder: {}", message(e))))
    }

    /// Removes the task's namespace holder once no container of the task is left.
    async fn release_holder(&self, holder: &str) {
        let _guard = self.holders.lock().await;
        // Label filters are all required: the task's containers, not the holder itself.
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{LABEL_HOLDER}={holder}"), LABEL_TASK.to_string()])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let Ok(members) = self.docker.list_containers(Some(options)).await else { return };
        if members.is_empty()
            && let Err(e) = self.remove_container(holder).await
        {
            tracing::warn!(%holder, error = %e, "removing a namespace holder failed");
        }
    }
}

/// The error of an `awsvpc` container spec without a namespace holder (a bug of the caller).
fn no_holder(spec: &ContainerSpec) -> RuntimeError {
    RuntimeError::Create(format!("container {} is in the awsvpc network mode but has no namespace holder", spec.name))
}

/// A stable 64-bit digest (FNV-1a) naming the pause image's version.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

/// The exposed ports and, in bridge mode, their host bindings: single ports as given (empty:
/// dynamic), port ranges on a free run of host ports.
fn port_bindings(spec: &ContainerSpec) -> Result<(Vec<String>, PortMap), RuntimeError> {
    let mut exposed = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    let bridge = spec.network_mode == "bridge";
    // The engine publishes nothing of a container in another's network namespace: an awsvpc
    // task is reached at its own address.
    if spec.network_mode == "awsvpc" {
        return Ok((exposed, bindings));
    }
    let mut publish = |container_port: u16, protocol: &str, host_port: String| {
        let key = format!("{container_port}/{protocol}");
        exposed.push(key.clone());
        if bridge {
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding { host_ip: Some(String::new()), host_port: Some(host_port) });
        }
    };
    for p in &spec.ports {
        publish(p.container_port, &p.protocol, p.host_port.map(|h| h.to_string()).unwrap_or_default());
    }
    for r in &spec.port_ranges {
        let len = r.last - r.first + 1;
        let host_first = if bridge {
            super::ports::free_run(len, r.protocol == "udp").map_err(RuntimeError::Create)?
        } else {
            r.first
        };
        for n in 0..len {
            publish(r.first + n, &r.protocol, (host_first + n).to_string());
        }
    }
    Ok((exposed, bindings))
}

/// The engine's name of a PID or IPC namespace mode (`None`: the engine's default).
fn namespace(mode: NamespaceMode, holder: Option<&String>) -> Option<String> {
    match (mode, holder) {
        (NamespaceMode::Host, _) => Some("host".into()),
        (NamespaceMode::Task, Some(h)) => Some(format!("container:{h}")),
        (NamespaceMode::None, _) => Some("none".into()),
        _ => None,
    }
}

fn host_config(spec: &ContainerSpec, bindings: PortMap) -> HostConfig {
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let holder = spec.namespace_holder.as_ref();
    let own_shm = matches!(spec.ipc_mode, NamespaceMode::Private);
    HostConfig {
        cpu_shares: spec.cpu_shares,
        memory: spec.memory,
        memory_reservation: spec.memory_reservation,
        memory_swap: spec.memory_swap,
        memory_swappiness: spec.swappiness,
        network_mode: Some(match (spec.network_mode.as_str(), holder) {
            ("awsvpc", Some(h)) => format!("container:{h}"),
            (mode, _) => mode.to_string(),
        }),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        // A container in another's network namespace has that one's /etc/hosts (the engine
        // refuses entries of its own): an awsvpc task's entries are its holder's.
        extra_hosts: if spec.network_mode == "awsvpc" { None } else { nonempty(&spec.extra_hosts) },
        // A container in another's network namespace uses that one's resolv.conf (the engine
        // refuses nameservers of its own): an awsvpc task's are its holder's.
        dns: if spec.network_mode == "awsvpc" { None } else { nonempty(&spec.dns) },
        dns_search: nonempty(&spec.dns_search),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits { name: Some(u.name.clone()), soft: Some(u.soft), hard: Some(u.hard) })
                .collect()
        }),
        readonly_rootfs: Some(spec.readonly_rootfs),
        privileged: Some(spec.privileged),
        init: spec.init.then_some(true),
        cap_add: nonempty(&spec.cap_add),
        cap_drop: nonempty(&spec.cap_drop),
        binds: nonempty(&spec.binds),
        cgroup_parent: spec.cgroup_parent.clone(),
        devices: (!spec.devices.is_empty()).then(|| {
            spec.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host_path.clone()),
                    path_in_container: Some(d.container_path.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs
                .iter()
                .map(|t| {
                    let options = t.options.iter().cloned().chain([format!("size={}m", t.size_mib)]);
                    (t.container_path.clone(), options.collect::<Vec<_>>().join(","))
                })
                .collect()
        }),
        shm_size: if own_shm { spec.shm_size_mib.map(|m| m << 20) } else { None },
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        pid_mode: namespace(spec.pid_mode, holder),
        ipc_mode: namespace(spec.ipc_mode, holder),
        security_opt: spec.no_new_privileges.then(|| vec!["no-new-privileges".into()]),
        // stdout/stderr kept in a file per container, rotated.
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_string(), spec.log.max_bytes.to_string()),
                ("max-file".to_string(), spec.log.files.to_string()),
            ])),
        }),
        ..Default::default()
    }
}

/// Whether a create warning means the engine would drop a setting this container asked for.
/// Engines without swap accounting warn "does not support swap limit capabilities ... Memory
/// limited without swap." for every memory limit: the memory limit holds, so that warning
/// fails only a container that asked for `maxSwap` or `swappiness`.
fn refuses(spec: &ContainerSpec, warning: &str) -> bool {
    let dropped = warning.contains("discarded") || warning.contains("does not support");
    let about_swap = warning.to_ascii_lowercase().contains("swap");
    dropped && (!about_swap || spec.memory_swap.is_some() || spec.swappiness.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{DeviceSpec, LogSpec, PortRangeSpec, PortSpec, TmpfsSpec};

    #[test]
    fn references_split_into_repo_and_tag_or_digest() {
        assert_eq!(split_reference("127.0.0.1:5000/busybox:1"), ("127.0.0.1:5000/busybox", "1"));
        assert_eq!(split_reference("127.0.0.1:5000/busybox"), ("127.0.0.1:5000/busybox", "latest"));
        assert_eq!(split_reference("busybox@sha256:abc"), ("busybox", "sha256:abc"));
        assert_eq!(split_reference("nginx"), ("nginx", "latest"));
    }

    #[test]
    fn the_host_config_carries_the_acted_on_members() {
        let spec = ContainerSpec {
            network_mode: "bridge".into(),
            devices: vec![DeviceSpec {
                host_path: "/dev/fuse".into(),
                container_path: "/dev/f".into(),
                permissions: "rw".into(),
            }],
            tmpfs: vec![TmpfsSpec { container_path: "/scratch".into(), size_mib: 16, options: vec!["noexec".into()] }],
            shm_size_mib: Some(128),
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            swappiness: Some(5),
            sysctls: [("net.core.somaxconn".to_string(), "512".to_string())].into(),
            dns: vec!["169.254.169.253".into()],
            dns_search: vec!["svc.local".into()],
            no_new_privileges: true,
            pid_mode: NamespaceMode::Host,
            ipc_mode: NamespaceMode::None,
            log: LogSpec { max_bytes: 1 << 20, files: 2 },
            ..Default::default()
        };
        let host = host_config(&spec, HashMap::new());
        let device = &host.devices.as_ref().unwrap()[0];
        assert_eq!(
            (device.path_on_host.as_deref(), device.path_in_container.as_deref(), device.cgroup_permissions.as_deref()),
            (Some("/dev/fuse"), Some("/dev/f"), Some("rw"))
        );
        assert_eq!(host.tmpfs.as_ref().unwrap()["/scratch"], "noexec,size=16m");
        assert_eq!(host.shm_size, None, "ipcMode none has no /dev/shm to size");
        assert_eq!((host.memory_swap, host.memory_swappiness), (Some(96 << 20), Some(5)));
        assert_eq!(host.sysctls.as_ref().unwrap()["net.core.somaxconn"], "512");
        assert_eq!(host.dns_search, Some(vec!["svc.local".to_string()]));
        assert_eq!(host.dns, Some(vec!["169.254.169.253".to_string()]));
        let awsvpc = ContainerSpec {
            network_mode: "awsvpc".into(),
            namespace_holder: Some("berth-t.ns".into()),
            dns: vec!["169.254.169.253".into()],
            ..Default::default()
        };
        assert_eq!(host_config(&awsvpc, HashMap::new()).dns, None, "the holder's resolv.conf is the task's");
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!((host.pid_mode.as_deref(), host.ipc_mode.as_deref()), (Some("host"), Some("none")));
        let log = host.log_config.unwrap().config.unwrap();
        assert_eq!((log["max-size"].as_str(), log["max-file"].as_str()), ("1048576", "2"));
        let shared = ContainerSpec {
            pid_mode: NamespaceMode::Task,
            ipc_mode: NamespaceMode::Task,
            namespace_holder: Some("berth-t.ns".into()),
            shm_size_mib: Some(128),
            ..Default::default()
        };
        let host = host_config(&shared, HashMap::new());
        assert_eq!(
            (host.pid_mode.as_deref(), host.ipc_mode.as_deref()),
            (Some("container:berth-t.ns"), Some("container:berth-t.ns"))
        );
        assert_eq!(host.shm_size, None, "the holder's /dev/shm is the task's");
        let own = host_config(&ContainerSpec { shm_size_mib: Some(128), ..Default::default() }, HashMap::new());
        assert_eq!((own.shm_size, own.pid_mode, own.ipc_mode), (Some(128 << 20), None, None));
    }

    #[test]
    fn port_ranges_bind_a_run_of_host_ports_in_bridge_mode() {
        let mut spec = ContainerSpec {
            network_mode: "bridge".into(),
            port_ranges: vec![PortRangeSpec { first: 9000, last: 9003, protocol: "udp".into() }],
            ..Default::default()
        };
        let (exposed, bindings) = port_bindings(&spec).unwrap();
        assert_eq!(exposed.len(), 4);
        let host = |port: u16| -> u16 {
            bindings[&format!("{port}/udp")].as_ref().unwrap()[0].host_port.as_deref().unwrap().parse().unwrap()
        };
        assert_eq!((host(9001) - host(9000), host(9003) - host(9000)), (1, 3), "one run of host ports");
        spec.network_mode = "none".into();
        let (exposed, bindings) = port_bindings(&spec).unwrap();
        assert_eq!((exposed.len(), bindings.len()), (4, 0));
    }

    #[test]
    fn an_awsvpc_container_joins_its_holders_network_and_publishes_nothing() {
        let spec = ContainerSpec {
            network_mode: "awsvpc".into(),
            namespace_holder: Some("berth-t.ns".into()),
            ports: vec![PortSpec { container_port: 80, host_port: Some(80), protocol: "tcp".into() }],
            ..Default::default()
        };
        let (exposed, bindings) = port_bindings(&spec).unwrap();
        assert!(exposed.is_empty() && bindings.is_empty());
        assert_eq!(host_config(&spec, bindings).network_mode.as_deref(), Some("container:berth-t.ns"));
    }

    #[test]
    fn a_swap_warning_fails_only_a_container_that_asked_for_swap() {
        let swap = "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.";
        let plain = ContainerSpec { memory: Some(64 << 20), ..Default::default() };
        assert!(!refuses(&plain, swap), "the memory limit still holds");
        let asked = ContainerSpec { memory_swap: Some(128 << 20), ..plain.clone() };
        assert!(refuses(&asked, swap));
        let shares = "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.";
        assert!(refuses(&plain, shares));
        assert!(!refuses(&plain, "some other notice"));
    }
}
