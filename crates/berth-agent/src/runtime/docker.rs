//! The Docker Engine driver, through bollard: what the ECS agent does on EC2.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptions,
};
use futures::StreamExt;

use crate::lifecycle::Health;

use super::{Binding, BoxFuture, ContainerSpec, LABEL_TASK, LogStream, Observed, Runtime, RuntimeError};

pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or /var/run/docker.sock) and agrees on an
    /// API version with it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let docker = docker.negotiate_version().await.map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        docker.ping().await.map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        Ok(DockerRuntime { docker })
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
            let mut exposed = Vec::new();
            let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
            for p in &spec.ports {
                let key = format!("{}/{}", p.container_port, p.protocol);
                exposed.push(key.clone());
                if spec.network_mode == "bridge" {
                    let host_port = p.host_port.map(|h| h.to_string()).unwrap_or_default();
                    bindings
                        .entry(key)
                        .or_default()
                        .get_or_insert_with(Vec::new)
                        .push(PortBinding { host_ip: Some(String::new()), host_port: Some(host_port) });
                }
            }
            let host = HostConfig {
                cpu_shares: spec.cpu_shares,
                memory: spec.memory,
                memory_reservation: spec.memory_reservation,
                network_mode: Some(spec.network_mode.clone()),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
                dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
                ulimits: (!spec.ulimits.is_empty()).then(|| {
                    spec.ulimits
                        .iter()
                        .map(|u| ResourcesUlimits {
                            name: Some(u.name.clone()),
                            soft: Some(u.soft),
                            hard: Some(u.hard),
                        })
                        .collect()
                }),
                readonly_rootfs: Some(spec.readonly_rootfs),
                privileged: Some(spec.privileged),
                init: spec.init.then_some(true),
                cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
                cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
                binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
                cgroup_parent: spec.cgroup_parent.clone(),
                // stdout/stderr kept in a file per container, rotated: three files of 10 MiB.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".to_string(), "10m".to_string()),
                        ("max-file".to_string(), "3".to_string()),
                    ])),
                }),
                ..Default::default()
            };
            let body = ContainerCreateBody {
                image: Some(spec.image.clone()),
                entrypoint: spec.entrypoint.clone(),
                cmd: spec.command.clone(),
                env: Some(spec.env.clone()),
                working_dir: spec.working_dir.clone(),
                user: spec.user.clone(),
                hostname: spec.hostname.clone(),
                labels: Some(spec.labels.clone()),
                exposed_ports: (!exposed.is_empty()).then_some(exposed),
                stop_timeout: Some(spec.stop_timeout.as_secs() as i64),
                healthcheck: spec.health.as_ref().map(|h| HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(h.interval.as_nanos() as i64),
                    timeout: Some(h.timeout.as_nanos() as i64),
                    retries: Some(h.retries),
                    start_period: Some(h.start_period.as_nanos() as i64),
                    start_interval: None,
                }),
                host_config: Some(host),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
            let created = self
                .docker
                .create_container(Some(options), body)
                .await
                .map_err(|e| RuntimeError::Create(message(e)))?;
            Ok(created.id)
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
            Ok(Observed {
                id: info.id.unwrap_or_default(),
                running,
                exit_code: (!running && started).then_some(state.exit_code.unwrap_or(0)),
                oom_killed: state.oom_killed.unwrap_or(false),
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
            let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            match self.docker.remove_container(id, Some(options)).await {
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                Err(e) => Err(RuntimeError::Stop(message(e))),
            }
        })
    }

    fn logs<'a>(&'a self, id: &'a str, follow: bool) -> LogStream<'a> {
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

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_into_repo_and_tag_or_digest() {
        assert_eq!(split_reference("127.0.0.1:5000/busybox:1"), ("127.0.0.1:5000/busybox", "1"));
        assert_eq!(split_reference("127.0.0.1:5000/busybox"), ("127.0.0.1:5000/busybox", "latest"));
        assert_eq!(split_reference("busybox@sha256:abc"), ("busybox", "sha256:abc"));
        assert_eq!(split_reference("nginx"), ("nginx", "latest"));
    }
}
