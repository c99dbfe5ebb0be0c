//! From an ECS container definition (plus RunTask overrides) to the [`ContainerSpec`] a
//! runtime driver creates. Pure: the agent passes in where task volumes live.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use berth_agent_protocol::ecs::NetworkBinding;
use serde_json::{Map, Value};

use crate::runtime::{
    Binding, ContainerSpec, DeviceSpec, HealthSpec, LABEL_CLUSTER, LABEL_CONTAINER, LABEL_INSTANCE, LABEL_TASK,
    LogSpec, NamespaceMode, PortRangeSpec, PortSpec, TmpfsSpec, Ulimit,
};

type Obj = Map<String, Value>;

/// Default time between SIGTERM and SIGKILL, as in ECS.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The fewest cpu shares a container gets (the kernel's minimum), as the ECS agent does.
const MIN_CPU_SHARES: i64 = 2;
const MIB: i64 = 1024 * 1024;

/// Why a definition cannot be run here; becomes the task's stop reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn text<'a>(o: &'a Obj, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn int(o: &Obj, k: &str) -> Option<i64> {
    o.get(k).and_then(Value::as_i64)
}

fn objects<'a>(o: &'a Obj, k: &str) -> impl Iterator<Item = &'a Obj> {
    o.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

fn strings(o: &Obj, k: &str) -> Option<Vec<String>> {
    o.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
}

/// The runtime name of a container: unique per task, valid for Docker.
pub fn runtime_name(task_id: &str, container: &str) -> String {
    format!("berth-{task_id}-{container}")
}

/// The runtime name of a task's namespace holder: no container can have it (container names
/// have no dots).
pub fn holder_name(task_id: &str) -> String {
    format!("berth-{task_id}.ns")
}

/// The OCI runtime a task's containers run with: `fargate_runtime` for a FARGATE task, the
/// driver's own (`None`) for any other.
pub fn oci_runtime(launch_type: Option<&str>, fargate_runtime: &str) -> Option<String> {
    (launch_type == Some("FARGATE")).then(|| fargate_runtime.to_string())
}

pub struct Context<'a> {
    pub cluster: &'a str,
    pub instance_arn: &'a str,
    pub task_arn: &'a str,
    pub task_id: &'a str,
    pub network_mode: &'a str,
    /// The task definition's `volumes`.
    pub volumes: &'a [Value],
    /// Every container definition of the task (for `volumesFrom`).
    pub containers: &'a [Value],
    /// Where this task's scratch volumes live on the host.
    pub scratch_dir: &'a Path,
    pub allow_privileged: bool,
    /// The whole task definition, for its task-level members (`pidMode`, `ipcMode`,
    /// `runtimePlatform`).
    pub definition: &'a Value,
    /// The OCI runtime of the task's containers, when not the driver's own ([`oci_runtime`]).
    pub runtime: Option<String>,
}

/// Builds the spec for `def`, applying the matching entry of `overrides.containerOverrides`.
pub fn container_spec(ctx: &Context<'_>, def: &Obj, overrides: Option<&Obj>) -> Result<ContainerSpec, SpecError> {
    let name = text(def, "name").unwrap_or_default();
    let over =
        overrides.into_iter().flat_map(|o| objects(o, "containerOverrides")).find(|o| text(o, "name") == Some(name));
    let pick = |k: &str| over.and_then(|o| int(o, k)).or_else(|| int(def, k));

    let network_mode = match ctx.network_mode {
        "bridge" | "host" | "none" | "awsvpc" => ctx.network_mode.to_string(),
        other => {
            return Err(SpecError(format!(
                "CannotCreateContainerError: network mode {other} is not supported by this agent"
            )));
        }
    };
    check_platform(ctx.definition)?;
    // An awsvpc task's containers share its namespace whatever they say.
    let awsvpc = network_mode == "awsvpc";
    let disabled = def.get("disableNetworking").and_then(Value::as_bool) == Some(true);
    let network_mode = if disabled && !awsvpc { "none".into() } else { network_mode };
    let privileged = def.get("privileged").and_then(Value::as_bool).unwrap_or(false);
    if privileged && !ctx.allow_privileged {
        return Err(SpecError(format!(
            "CannotCreateContainerError: container {name} asks for privileged mode, which this agent does not allow"
        )));
    }

    let mut env: Vec<(String, String)> = objects(def, "environment")
        .filter_map(|e| Some((text(e, "name")?.to_string(), text(e, "value").unwrap_or_default().to_string())))
        .collect();
    for e in over.into_iter().flat_map(|o| objects(o, "environment")) {
        if let Some(k) = text(e, "name") {
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), text(e, "value").unwrap_or_default().to_string()));
        }
    }

    let mut labels: HashMap<String, String> = def
        .get("dockerLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    labels.insert(LABEL_TASK.into(), ctx.task_arn.into());
    labels.insert(LABEL_CONTAINER.into(), name.into());
    labels.insert(LABEL_CLUSTER.into(), ctx.cluster.into());
    labels.insert(LABEL_INSTANCE.into(), ctx.instance_arn.into());

    let port_ranges = objects(def, "portMappings")
        .filter_map(|pm| {
            let (first, last) = berth_model::members::parse_port_range(text(pm, "containerPortRange")?)?;
            Some(PortRangeSpec { first, last, protocol: text(pm, "protocol").unwrap_or("tcp").to_string() })
        })
        .collect();
    let ports = objects(def, "portMappings")
        .filter_map(|pm| {
            let container_port = u16::try_from(int(pm, "containerPort")?).ok()?;
            let host = int(pm, "hostPort").unwrap_or(0);
            Some(PortSpec {
                container_port,
                host_port: (host > 0).then_some(host as u16),
                protocol: text(pm, "protocol").unwrap_or("tcp").to_string(),
            })
        })
        .collect();

    let mut binds = mount_binds(ctx, def, false);
    for from in objects(def, "volumesFrom") {
        let source = text(from, "sourceContainer").unwrap_or_default();
        let other = ctx.containers.iter().filter_map(Value::as_object).find(|c| text(c, "name") == Some(source));
        let Some(other) = other else {
            return Err(SpecError(format!("CannotCreateContainerError: volumesFrom names unknown container {source}")));
        };
        binds.extend(mount_binds(ctx, other, from.get("readOnly").and_then(Value::as_bool).unwrap_or(false)));
    }

    let linux = def.get("linuxParameters").and_then(Value::as_object);
    let caps = linux.and_then(|l| l.get("capabilities")).and_then(Value::as_object);
    let memory = pick("memory").map(|m| m * MIB);
    let max_swap = linux.and_then(|l| int(l, "maxSwap"));
    let (pid_mode, ipc_mode) = (task_mode(ctx.definition, "pidMode"), task_mode(ctx.definition, "ipcMode"));
    let shares_task = pid_mode == NamespaceMode::Task || ipc_mode == NamespaceMode::Task;
    let ulimits = objects(def, "ulimits")
        .filter_map(|u| {
            Some(Ulimit { name: text(u, "name")?.into(), soft: int(u, "softLimit")?, hard: int(u, "hardLimit")? })
        })
        .collect();

    Ok(ContainerSpec {
        runtime: ctx.runtime.clone(),
        name: runtime_name(ctx.task_id, name),
        image: text(def, "image").unwrap_or_default().to_string(),
        entrypoint: strings(def, "entryPoint"),
        command: over.and_then(|o| strings(o, "command")).or_else(|| strings(def, "command")),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: text(def, "workingDirectory").map(str::to_string),
        user: text(def, "user").map(str::to_string),
        cpu_shares: Some(pick("cpu").unwrap_or(0).max(MIN_CPU_SHARES)),
        memory,
        memory_reservation: pick("memoryReservation").map(|m| m * MIB),
        network_mode,
        ports,
        labels,
        hostname: text(def, "hostname").map(str::to_string),
        extra_hosts: objects(def, "extraHosts")
            .filter_map(|h| Some(format!("{}:{}", text(h, "hostname")?, text(h, "ipAddress")?)))
            .collect(),
        dns: strings(def, "dnsServers").unwrap_or_default(),
        ulimits,
        readonly_rootfs: def.get("readonlyRootFilesystem").and_then(Value::as_bool).unwrap_or(false),
        privileged,
        init: linux.and_then(|l| l.get("initProcessEnabled")).and_then(Value::as_bool).unwrap_or(false),
        cap_add: caps.and_then(|c| strings(c, "add")).unwrap_or_default(),
        cap_drop: caps.and_then(|c| strings(c, "drop")).unwrap_or_default(),
        binds,
        stop_timeout: int(def, "stopTimeout")
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(DEFAULT_STOP_TIMEOUT),
        registry_auth: None,
        env_files: objects(def, "environmentFiles").filter_map(|f| text(f, "value")).map(str::to_string).collect(),
        repository_credentials: def
            .get("repositoryCredentials")
            .and_then(|r| r.get("credentialsParameter"))
            .and_then(Value::as_str)
            .map(str::to_string),
        health: health_check(def),
        cgroup_parent: None,
        port_ranges,
        devices: linux.map(devices).unwrap_or_default(),
        tmpfs: linux.map(tmpfs).unwrap_or_default(),
        shm_size_mib: if ipc_mode == NamespaceMode::Task {
            task_shm_size(ctx.containers)
        } else {
            linux.and_then(|l| int(l, "sharedMemorySize"))
        },
        memory_swap: max_swap.and_then(|swap| Some(memory? + swap * MIB)),
        swappiness: linux.and_then(|l| int(l, "swappiness")),
        sysctls: objects(def, "systemControls")
            .filter_map(|sc| Some((text(sc, "namespace")?.to_string(), text(sc, "value")?.to_string())))
            .collect(),
        pid_mode,
        ipc_mode,
        namespace_holder: (shares_task || awsvpc).then(|| holder_name(ctx.task_id)),
        dns_search: strings(def, "dnsSearchDomains").unwrap_or_default(),
        interactive: def.get("interactive").and_then(Value::as_bool).unwrap_or(false),
        tty: def.get("pseudoTerminal").and_then(Value::as_bool).unwrap_or(false),
        no_new_privileges: strings(def, "dockerSecurityOptions")
            .is_some_and(|o| o.iter().any(|o| o == "no-new-privileges")),
        log: log_spec(def),
    })
}

/// `runtimePlatform.cpuArchitecture` against this machine's.
fn check_platform(definition: &Value) -> Result<(), SpecError> {
    let Some(wanted) = definition["runtimePlatform"]["cpuArchitecture"].as_str() else { return Ok(()) };
    let here = match std::env::consts::ARCH {
        "x86_64" => "X86_64",
        "aarch64" => "ARM64",
        other => other,
    };
    if wanted == here {
        return Ok(());
    }
    Err(SpecError(format!(
        "CannotStartContainerError: the task definition's runtimePlatform.cpuArchitecture is {wanted}; this instance is {here}"
    )))
}

/// The task's `pidMode` or `ipcMode`.
fn task_mode(definition: &Value, key: &str) -> NamespaceMode {
    match definition[key].as_str() {
        Some("host") => NamespaceMode::Host,
        Some("task") => NamespaceMode::Task,
        Some("none") => NamespaceMode::None,
        _ => NamespaceMode::Private,
    }
}

/// The size of a task's shared `/dev/shm` (`ipcMode` `task`): the largest
/// `sharedMemorySize` of its containers.
fn task_shm_size(containers: &[Value]) -> Option<i64> {
    containers.iter().filter_map(|c| c["linuxParameters"]["sharedMemorySize"].as_i64()).max()
}

fn devices(linux: &Obj) -> Vec<DeviceSpec> {
    objects(linux, "devices")
        .filter_map(|d| {
            let host_path = text(d, "hostPath")?.to_string();
            let permissions = match strings(d, "permissions") {
                None => "rwm".to_string(),
                Some(list) => ["read", "write", "mknod"]
                    .iter()
                    .zip(['r', 'w', 'm'])
                    .filter(|(name, _)| list.iter().any(|p| p == *name))
                    .map(|(_, letter)| letter)
                    .collect(),
            };
            Some(DeviceSpec {
                container_path: text(d, "containerPath").unwrap_or(&host_path).to_string(),
                host_path,
                permissions,
            })
        })
        .collect()
}

fn tmpfs(linux: &Obj) -> Vec<TmpfsSpec> {
    objects(linux, "tmpfs")
        .filter_map(|t| {
            Some(TmpfsSpec {
                container_path: text(t, "containerPath")?.to_string(),
                size_mib: int(t, "size")?,
                options: strings(t, "mountOptions").unwrap_or_default(),
            })
        })
        .collect()
}

/// The json-file rotation of `logConfiguration`. With `awslogs` the agent follows the kept
/// output to ship it, and following across a rotation loses or repeats lines (Docker before 23
/// re-reads a rotated json-file; the oci shim's file is renamed under the reader), so that
/// output is kept in one file of up to [`AWSLOGS_KEPT`].
fn log_spec(def: &Obj) -> LogSpec {
    let log = def.get("logConfiguration");
    if log.and_then(|l| l.get("logDriver")).and_then(Value::as_str) == Some("awslogs") {
        return LogSpec { max_bytes: AWSLOGS_KEPT, files: 1 };
    }
    let options = log.and_then(|l| l.get("options")).and_then(Value::as_object);
    let option = |key: &str| options.and_then(|o| text(o, key));
    let default = LogSpec::default();
    LogSpec {
        max_bytes: option("max-size").and_then(berth_model::members::parse_size).unwrap_or(default.max_bytes),
        files: option("max-file").and_then(|f| f.parse().ok()).unwrap_or(default.files),
    }
}

/// How much output of an `awslogs` container is kept before the oldest goes.
pub const AWSLOGS_KEPT: u64 = 1 << 30;

/// The `networkBindings` ECS reports for a container: one per published port, except that
/// the ports of a `containerPortRange` bound to a run of host ports are one binding with
/// `containerPortRange` and `hostPortRange`.
pub fn network_bindings(spec: Option<&ContainerSpec>, bindings: &[Binding]) -> Vec<NetworkBinding> {
    let ranges = spec.map(|s| s.port_ranges.as_slice()).unwrap_or_default();
    let in_range = |b: &Binding| {
        ranges.iter().position(|r| r.protocol == b.protocol && (r.first..=r.last).contains(&b.container_port))
    };
    let mut out: Vec<NetworkBinding> = bindings
        .iter()
        .filter(|b| in_range(b).is_none())
        .map(|b| NetworkBinding::port(&b.bind_ip, b.container_port, b.host_port, &b.protocol))
        .collect();
    for (n, range) in ranges.iter().enumerate() {
        let mut ips: Vec<&str> =
            bindings.iter().filter(|b| in_range(b) == Some(n)).map(|b| b.bind_ip.as_str()).collect();
        ips.sort_unstable();
        ips.dedup();
        for ip in ips {
            let mut ports: Vec<(u16, u16)> = bindings
                .iter()
                .filter(|b| in_range(b) == Some(n) && b.bind_ip == ip)
                .map(|b| (b.container_port, b.host_port))
                .collect();
            ports.sort_unstable();
            let offset = |(c, h): (u16, u16)| i32::from(h) - i32::from(c);
            let whole = ports.len() == usize::from(range.last - range.first) + 1
                && ports.iter().all(|p| offset(*p) == offset(ports[0]));
            if whole {
                let host_first = ports[0].1;
                out.push(NetworkBinding {
                    bind_ip: ip.to_string(),
                    container_port: None,
                    host_port: None,
                    protocol: range.protocol.clone(),
                    container_port_range: Some(format!("{}-{}", range.first, range.last)),
                    host_port_range: Some(format!("{host_first}-{}", host_first + (range.last - range.first))),
                });
            } else {
                out.extend(ports.iter().map(|(c, h)| NetworkBinding::port(ip, *c, *h, &range.protocol)));
            }
        }
    }
    out
}

/// A definition's `mountPoints` as `source:destination[:ro]` binds: host volumes at their
/// `sourcePath`, task scratch volumes under the task's scratch directory.
fn mount_binds(ctx: &Context<'_>, def: &Obj, all_read_only: bool) -> Vec<String> {
    let mut binds = Vec::new();
    for mp in objects(def, "mountPoints") {
        let (Some(source), Some(dest)) = (text(mp, "sourceVolume"), text(mp, "containerPath")) else {
            continue;
        };
        let volume = ctx.volumes.iter().filter_map(Value::as_object).find(|v| text(v, "name") == Some(source));
        let host_path =
            match volume.and_then(|v| v.get("host")).and_then(Value::as_object).and_then(|h| text(h, "sourcePath")) {
                Some(path) => path.to_string(),
                None => ctx.scratch_dir.join(source).display().to_string(),
            };
        let ro = all_read_only || mp.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
        binds.push(format!("{host_path}:{dest}{}", if ro { ":ro" } else { "" }));
    }
    binds
}

/// The definition's `healthCheck`, with ECS's defaults (interval 30 s, timeout 5 s, 3 retries).
fn health_check(def: &Obj) -> Option<HealthSpec> {
    let hc = def.get("healthCheck").and_then(Value::as_object)?;
    let test = strings(hc, "command").filter(|c| !c.is_empty())?;
    let seconds = |k: &str, default: i64| Duration::from_secs(int(hc, k).unwrap_or(default).max(0) as u64);
    Some(HealthSpec {
        test,
        interval: seconds("interval", 30),
        timeout: seconds("timeout", 5),
        retries: int(hc, "retries").unwrap_or(3),
        start_period: seconds("startPeriod", 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static NO_DEFINITION: Value = Value::Null;

    #[test]
    fn only_fargate_tasks_take_the_fargate_runtime() {
        assert_eq!(oci_runtime(Some("FARGATE"), "runsc").as_deref(), Some("runsc"));
        assert_eq!(oci_runtime(Some("FARGATE"), "runc").as_deref(), Some("runc"));
        assert_eq!(oci_runtime(Some("EC2"), "runsc"), None);
        assert_eq!(oci_runtime(None, "runsc"), None, "a task without a launch type is an EC2 one");
    }

    fn ctx<'a>(volumes: &'a [Value], mode: &'a str) -> Context<'a> {
        Context {
            cluster: "default",
            instance_arn: "arn:aws:ecs:r:a:container-instance/default/i1",
            task_arn: "arn:aws:ecs:r:a:task/default/t1",
            task_id: "t1",
            network_mode: mode,
            volumes,
            containers: &[],
            scratch_dir: Path::new("/var/lib/berth/volumes/t1"),
            allow_privileged: false,
            definition: &NO_DEFINITION,
            runtime: None,
        }
    }

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn maps_every_honoured_field() {
        let volumes = vec![json!({"name": "data", "host": {"sourcePath": "/srv/data"}}), json!({"name": "scratch"})];
        let def = obj(json!({
            "name": "web", "image": "127.0.0.1:5000/busybox:1", "cpu": 256, "memory": 128, "memoryReservation": 64,
            "entryPoint": ["sh", "-c"], "command": ["httpd -f"], "workingDirectory": "/www", "user": "nobody",
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}, {"containerPort": 53, "hostPort": 0, "protocol": "udp"}],
            "dockerLabels": {"team": "x"}, "hostname": "h", "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.1"}],
            "dnsServers": ["1.1.1.1"], "ulimits": [{"name": "nofile", "softLimit": 100, "hardLimit": 200}],
            "readonlyRootFilesystem": true, "stopTimeout": 5,
            "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}},
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}, {"sourceVolume": "scratch", "containerPath": "/tmp/s"}]
        }));
        let overrides =
            obj(json!({"containerOverrides": [{"name": "web", "command": ["httpd", "-f", "-v"], "memory": 256,
            "environment": [{"name": "B", "value": "3"}]}]}));
        let s = container_spec(&ctx(&volumes, "bridge"), &def, Some(&overrides)).unwrap();
        assert_eq!(s.name, "berth-t1-web");
        assert_eq!(s.command, Some(vec!["httpd".into(), "-f".into(), "-v".into()]));
        assert_eq!(s.entrypoint, Some(vec!["sh".into(), "-c".into()]));
        assert_eq!(s.env, ["A=1", "B=3"]);
        assert_eq!((s.cpu_shares, s.memory, s.memory_reservation), (Some(256), Some(256 * MIB), Some(64 * MIB)));
        assert_eq!(s.ports[0], PortSpec { container_port: 80, host_port: Some(8080), protocol: "tcp".into() });
        assert_eq!(s.ports[1].host_port, None, "hostPort 0 is dynamic");
        assert_eq!(s.labels["team"], "x");
        assert_eq!(s.labels[LABEL_TASK], "arn:aws:ecs:r:a:task/default/t1");
        assert_eq!(s.extra_hosts, ["db:10.0.0.1"]);
        assert_eq!(s.binds, ["/srv/data:/data:ro", "/var/lib/berth/volumes/t1/scratch:/tmp/s"]);
        assert_eq!((s.init, s.readonly_rootfs, s.stop_timeout), (true, true, Duration::from_secs(5)));
        assert_eq!(
            (s.cap_add.as_slice(), s.cap_drop.as_slice()),
            (&["NET_ADMIN".to_string()][..], &["MKNOD".to_string()][..])
        );
        assert_eq!(s.ulimits, [Ulimit { name: "nofile".into(), soft: 100, hard: 200 }]);
    }

    #[test]
    fn defaults_and_refusals() {
        let def = obj(json!({"name": "a", "image": "x"}));
        let s = container_spec(&ctx(&[], "host"), &def, None).unwrap();
        assert_eq!(s.health, None);
        let checked =
            obj(json!({"name": "a", "image": "x", "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5}}));
        let h = container_spec(&ctx(&[], "host"), &checked, None).unwrap().health.unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.retries, h.start_period),
            (Duration::from_secs(5), Duration::from_secs(5), 3, Duration::ZERO)
        );
        assert_eq!((s.cpu_shares, s.stop_timeout, s.memory), (Some(MIN_CPU_SHARES), DEFAULT_STOP_TIMEOUT, None));
        assert_eq!(s.network_mode, "host");
        let privileged = obj(json!({"name": "a", "image": "x", "privileged": true}));
        assert!(container_spec(&ctx(&[], "bridge"), &privileged, None).unwrap_err().0.contains("privileged"));
        assert!(container_spec(&ctx(&[], "nat"), &def, None).is_err());
    }

    #[test]
    fn awsvpc_containers_join_the_tasks_holder() {
        let def = obj(json!({"name": "a", "image": "x", "disableNetworking": true,
            "portMappings": [{"containerPort": 80}]}));
        let s = container_spec(&ctx(&[], "awsvpc"), &def, None).unwrap();
        assert_eq!((s.network_mode.as_str(), s.namespace_holder.as_deref()), ("awsvpc", Some("berth-t1.ns")));
        assert_eq!(s.ports.len(), 1);
        assert_eq!(container_spec(&ctx(&[], "bridge"), &def, None).unwrap().namespace_holder, None);
    }

    #[test]
    fn linux_parameters_and_the_other_acted_on_members() {
        let def = obj(json!({
            "name": "a", "image": "x", "memory": 64,
            "linuxParameters": {
                "devices": [{"hostPath": "/dev/null", "containerPath": "/dev/nothing", "permissions": ["read", "mknod"]},
                            {"hostPath": "/dev/zero"}],
                "tmpfs": [{"containerPath": "/scratch", "size": 16, "mountOptions": ["noexec", "mode=1777"]}],
                "sharedMemorySize": 128, "maxSwap": 32, "swappiness": 10
            },
            "systemControls": [{"namespace": "net.ipv4.ip_forward", "value": "1"}, {"namespace": "kernel.shmmax", "value": "4096"}],
            "dnsSearchDomains": ["svc.local", "corp"], "interactive": true, "pseudoTerminal": true,
            "dockerSecurityOptions": ["no-new-privileges"],
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m", "max-file": "2"}}
        }));
        let s = container_spec(&ctx(&[], "bridge"), &def, None).unwrap();
        assert_eq!(
            s.devices,
            [
                DeviceSpec {
                    host_path: "/dev/null".into(),
                    container_path: "/dev/nothing".into(),
                    permissions: "rm".into()
                },
                DeviceSpec {
                    host_path: "/dev/zero".into(),
                    container_path: "/dev/zero".into(),
                    permissions: "rwm".into()
                },
            ]
        );
        assert_eq!(
            s.tmpfs,
            [TmpfsSpec {
                container_path: "/scratch".into(),
                size_mib: 16,
                options: vec!["noexec".into(), "mode=1777".into()]
            }]
        );
        assert_eq!((s.shm_size_mib, s.memory_swap, s.swappiness), (Some(128), Some(96 * MIB), Some(10)));
        assert_eq!(s.sysctls.get("net.ipv4.ip_forward").map(String::as_str), Some("1"));
        assert_eq!(s.sysctls.len(), 2);
        assert_eq!(s.dns_search, ["svc.local", "corp"]);
        assert!(s.interactive && s.tty && s.no_new_privileges);
        assert_eq!(s.log, LogSpec { max_bytes: 1 << 20, files: 2 });
        let mut shipped = def.clone();
        shipped.insert(
            "logConfiguration".into(),
            json!({"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "r"}}),
        );
        let s = container_spec(&ctx(&[], "bridge"), &shipped, None).unwrap();
        assert_eq!(s.log, LogSpec { max_bytes: AWSLOGS_KEPT, files: 1 }, "one file, never rotated under the shipper");
        assert_eq!(
            (s.pid_mode, s.ipc_mode, s.namespace_holder.as_deref()),
            (NamespaceMode::Private, NamespaceMode::Private, None)
        );
        let plain = container_spec(&ctx(&[], "bridge"), &obj(json!({"name": "a", "image": "x"})), None).unwrap();
        assert_eq!(plain.log, LogSpec { max_bytes: 10 << 20, files: 3 });
        assert!(!plain.interactive && !plain.tty && plain.devices.is_empty() && plain.memory_swap.is_none());
        let no_swap = obj(json!({"name": "a", "image": "x", "memory": 64, "linuxParameters": {"maxSwap": 0}}));
        assert_eq!(container_spec(&ctx(&[], "bridge"), &no_swap, None).unwrap().memory_swap, Some(64 * MIB));
    }

    #[test]
    fn task_namespaces_share_a_holder_and_the_largest_shm() {
        let containers = vec![
            json!({"name": "a", "image": "x", "linuxParameters": {"sharedMemorySize": 32}}),
            json!({"name": "b", "image": "x", "linuxParameters": {"sharedMemorySize": 96}}),
        ];
        let definition = json!({"pidMode": "task", "ipcMode": "task"});
        let mut c = ctx(&[], "bridge");
        c.containers = &containers;
        c.definition = &definition;
        let a = container_spec(&c, containers[0].as_object().unwrap(), None).unwrap();
        assert_eq!((a.pid_mode, a.ipc_mode), (NamespaceMode::Task, NamespaceMode::Task));
        assert_eq!(a.namespace_holder.as_deref(), Some("berth-t1.ns"));
        assert_eq!(a.shm_size_mib, Some(96), "the task's /dev/shm is as large as its largest ask");
        let definition = json!({"pidMode": "host", "ipcMode": "none"});
        c.definition = &definition;
        let b = container_spec(&c, containers[1].as_object().unwrap(), None).unwrap();
        assert_eq!((b.pid_mode, b.ipc_mode, b.namespace_holder), (NamespaceMode::Host, NamespaceMode::None, None));
    }

    #[test]
    fn disabled_networking_is_no_network_and_platforms_must_match() {
        let def = obj(json!({"name": "a", "image": "x", "disableNetworking": true}));
        assert_eq!(container_spec(&ctx(&[], "bridge"), &def, None).unwrap().network_mode, "none");
        let here = if cfg!(target_arch = "aarch64") { "ARM64" } else { "X86_64" };
        let other = if here == "ARM64" { "X86_64" } else { "ARM64" };
        let mut c = ctx(&[], "bridge");
        let matching = json!({"runtimePlatform": {"cpuArchitecture": here}});
        c.definition = &matching;
        assert!(container_spec(&c, &def, None).is_ok());
        let foreign = json!({"runtimePlatform": {"cpuArchitecture": other}});
        c.definition = &foreign;
        let e = container_spec(&c, &def, None).unwrap_err().0;
        assert!(e.starts_with("CannotStartContainerError:") && e.contains(other), "{e}");
    }

    fn binding(container_port: u16, host_port: u16, ip: &str) -> Binding {
        Binding { container_port, host_port, protocol: "tcp".into(), bind_ip: ip.into() }
    }

    #[test]
    fn port_ranges_are_reported_as_ranges() {
        let def = obj(json!({"name": "a", "image": "x", "portMappings": [
            {"containerPortRange": "8000-8002", "protocol": "tcp"}, {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]}));
        let s = container_spec(&ctx(&[], "bridge"), &def, None).unwrap();
        assert_eq!(s.port_ranges, [PortRangeSpec { first: 8000, last: 8002, protocol: "tcp".into() }]);
        assert_eq!(s.ports.len(), 1, "a range is not a single port");
        let mut bindings = vec![binding(80, 8080, "0.0.0.0")];
        for ip in ["0.0.0.0", "::"] {
            bindings.extend((0..3).map(|n| binding(8000 + n, 40000 + n, ip)));
        }
        bindings.sort_by(|a, b| (a.container_port, &a.bind_ip).cmp(&(b.container_port, &b.bind_ip)));
        let out: Vec<Value> = network_bindings(Some(&s), &bindings).iter().map(|b| json!(b)).collect();
        assert_eq!(out[0], json!({"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"}));
        assert_eq!(
            out[1],
            json!({"bindIP": "0.0.0.0", "protocol": "tcp", "containerPortRange": "8000-8002", "hostPortRange": "40000-40002"})
        );
        assert_eq!(out[2]["bindIP"], "::");
        assert_eq!(out.len(), 3);
        // Host ports that are not one run are reported one by one.
        let scattered =
            vec![binding(8000, 40000, "0.0.0.0"), binding(8001, 40005, "0.0.0.0"), binding(8002, 40006, "0.0.0.0")];
        let out = network_bindings(Some(&s), &scattered);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].host_port, Some(40005));
        assert_eq!(network_bindings(None, &scattered).len(), 3);
    }
}
