//! From an ECS container definition (plus RunTask overrides) to the [`ContainerSpec`] a
//! runtime driver creates. Pure: the agent passes in where task volumes live.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::runtime::{
    ContainerSpec, HealthSpec, LABEL_CLUSTER, LABEL_CONTAINER, LABEL_INSTANCE, LABEL_TASK, PortSpec, Ulimit,
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
}

/// Builds the spec for `def`, applying the matching entry of `overrides.containerOverrides`.
pub fn container_spec(ctx: &Context<'_>, def: &Obj, overrides: Option<&Obj>) -> Result<ContainerSpec, SpecError> {
    let name = text(def, "name").unwrap_or_default();
    let over =
        overrides.into_iter().flat_map(|o| objects(o, "containerOverrides")).find(|o| text(o, "name") == Some(name));
    let pick = |k: &str| over.and_then(|o| int(o, k)).or_else(|| int(def, k));

    let network_mode = match ctx.network_mode {
        "bridge" | "host" | "none" => ctx.network_mode.to_string(),
        other => {
            return Err(SpecError(format!(
                "CannotCreateContainerError: network mode {other} is not supported by this agent"
            )));
        }
    };
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
    let ulimits = objects(def, "ulimits")
        .filter_map(|u| {
            Some(Ulimit { name: text(u, "name")?.into(), soft: int(u, "softLimit")?, hard: int(u, "hardLimit")? })
        })
        .collect();

    Ok(ContainerSpec {
        name: runtime_name(ctx.task_id, name),
        image: text(def, "image").unwrap_or_default().to_string(),
        entrypoint: strings(def, "entryPoint"),
        command: over.and_then(|o| strings(o, "command")).or_else(|| strings(def, "command")),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: text(def, "workingDirectory").map(str::to_string),
        user: text(def, "user").map(str::to_string),
        cpu_shares: Some(pick("cpu").unwrap_or(0).max(MIN_CPU_SHARES)),
        memory: pick("memory").map(|m| m * MIB),
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
    })
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
        assert!(container_spec(&ctx(&[], "awsvpc"), &def, None).is_err());
    }
}
