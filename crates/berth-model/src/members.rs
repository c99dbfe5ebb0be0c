//! What Berth does with each member of a task definition (RegisterTaskDefinition's input and
//! the shapes it nests): it acts on it, refuses it at registration because it can never work
//! here, refuses it when a task is launched with a launch type it depends on, or stores and
//! reports it only because it is informational. Nothing is accepted to no effect.
//!
//! `docs/differences.md` holds the whole table; a test keeps it equal to the service model's
//! member lists and to the refusal lists here. Paths go through lists transparently:
//! `volumes.efsVolumeConfiguration` is that member of any volume.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::ModelError;

type Obj = Map<String, Value>;

/// A member refused whenever a definition gives it, and why Berth cannot honour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub member: &'static str,
    pub why: &'static str,
}

const fn refusal(member: &'static str, why: &'static str) -> Refusal {
    Refusal { member, why }
}

/// Task-level members refused at RegisterTaskDefinition whenever given.
pub const REFUSED_TASK_MEMBERS: &[Refusal] = &[
    refusal("taskRoleArn", "there is no IAM yet to give a task role's credentials to its containers"),
    refusal("proxyConfiguration", "the agent sets up no App Mesh proxy"),
    refusal("inferenceAccelerators", "there are no Elastic Inference accelerators"),
    refusal("volumes.efsVolumeConfiguration", "the agent mounts no Amazon EFS file systems"),
    refusal("volumes.fsxWindowsFileServerVolumeConfiguration", "the agent mounts no Amazon FSx file systems"),
    refusal("volumes.s3filesVolumeConfiguration", "the agent mounts no Amazon S3 Files file systems"),
    refusal(
        "volumes.dockerVolumeConfiguration.autoprovision",
        "only task-scoped Docker volumes exist here, and autoprovision applies to shared ones",
    ),
    refusal("volumes.dockerVolumeConfiguration.driverOpts", "Docker volumes are plain task directories here"),
    refusal("volumes.dockerVolumeConfiguration.labels", "Docker volumes are plain task directories here"),
];

/// Container-level members refused at RegisterTaskDefinition whenever given.
pub const REFUSED_CONTAINER_MEMBERS: &[Refusal] = &[
    refusal("secrets", "there is no secret store yet"),
    refusal("logConfiguration.secretOptions", "there is no secret store yet"),
    refusal("resourceRequirements", "the agent offers no GPUs or inference accelerators"),
    refusal("firelensConfiguration", "the agent runs no FireLens log router"),
    refusal("credentialSpecs", "there is no Active Directory (gMSA) integration"),
    refusal(
        "links",
        "Docker links need the linked container started first, which the agent does not order; use extraHosts",
    ),
];

/// Members refused when a task is launched with the EC2 launch type (RunTask, StartTask,
/// CreateService, UpdateService, CreateTaskSet): they belong to Fargate.
pub const REFUSED_FOR_EC2: &[Refusal] = &[refusal("ephemeralStorage", "it sizes a Fargate task's storage")];

/// The json-file log driver options both runtime drivers honour.
pub const LOG_OPTIONS: [&str; 2] = ["max-size", "max-file"];

/// Sysctls Docker lets a container set: those of its own IPC namespace...
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
/// ... and these prefixes (`fs.mqueue.` is IPC too, `net.` is the network namespace's).
const IPC_SYSCTL_PREFIX: &str = "fs.mqueue.";
const NET_SYSCTL_PREFIX: &str = "net.";

/// tmpfs mount options ECS accepts (those taking `=value` listed without it), less the ones
/// that make no sense for a tmpfs (`bind`, `rbind`, `remount`).
const TMPFS_FLAGS: [&str; 30] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];
const TMPFS_VALUED: [&str; 6] = ["mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/// Most port ranges one container may map, as in ECS.
const MAX_PORT_RANGES: usize = 100;

/// The values at `path` under `root` (lists flattened), leaving out nulls, empty lists and
/// `false`, which ask for nothing.
pub fn given<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    for key in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            let field = v.as_object().and_then(|o| o.get(key));
            match field {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(Value::Null | Value::Bool(false)) | None => {}
                Some(other) => next.push(other),
            }
        }
        current = next;
    }
    current
}

fn text<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn int(obj: &Obj, key: &str) -> Option<i64> {
    obj.get(key).and_then(Value::as_i64)
}

fn objects<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Obj> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

fn cannot(member: &str, container: Option<&str>, why: &str) -> ModelError {
    let place = container.map(|c| format!(" in container '{c}'")).unwrap_or_default();
    ModelError::client(format!("Berth cannot honour '{member}'{place}: {why}."))
}

fn invalid(member: &str, container: &str, why: &str) -> ModelError {
    ModelError::client(format!("Invalid '{member}' in container '{container}': {why}."))
}

/// The refusals and rules of RegisterTaskDefinition for the members Berth refuses or acts on
/// beyond ECS's basic rules (see `task_definition::prepare`).
pub fn check_registration(request: &Obj) -> Result<(), ModelError> {
    let root = Value::Object(request.clone());
    for r in REFUSED_TASK_MEMBERS {
        if !given(&root, r.member).is_empty() {
            return Err(cannot(r.member, None, r.why));
        }
    }
    check_task_values(request)?;
    for c in objects(request, "containerDefinitions") {
        let name = text(c, "name").unwrap_or_default();
        let container = Value::Object(c.clone());
        for r in REFUSED_CONTAINER_MEMBERS {
            if !given(&container, r.member).is_empty() {
                return Err(cannot(r.member, Some(name), r.why));
            }
        }
        check_container(request, c, name)?;
    }
    Ok(())
}

/// Task-level members of which some values cannot be honoured.
fn check_task_values(request: &Obj) -> Result<(), ModelError> {
    if request.get("enableFaultInjection").and_then(Value::as_bool) == Some(true) {
        return Err(cannot("enableFaultInjection", None, "there are no fault injection endpoints"));
    }
    let platform = request.get("runtimePlatform").and_then(Value::as_object);
    if let Some(os) = platform.and_then(|p| text(p, "operatingSystemFamily"))
        && os != "LINUX"
    {
        return Err(cannot(
            "runtimePlatform.operatingSystemFamily",
            None,
            &format!("Berth runs Linux containers only, not {os}"),
        ));
    }
    for v in objects(request, "volumes") {
        let name = text(v, "name").unwrap_or_default();
        if v.get("configuredAtLaunch").and_then(Value::as_bool) == Some(true) {
            return Err(cannot(
                "volumes.configuredAtLaunch",
                None,
                &format!(
                    "volume '{name}' would be an Amazon EBS volume configured at launch, which Berth does not provide"
                ),
            ));
        }
        let Some(docker) = v.get("dockerVolumeConfiguration").and_then(Value::as_object) else { continue };
        if let Some(scope) = text(docker, "scope")
            && scope != "task"
        {
            return Err(cannot(
                "volumes.dockerVolumeConfiguration.scope",
                None,
                &format!("volume '{name}' asks for scope '{scope}'; only task-scoped Docker volumes exist here"),
            ));
        }
        if let Some(driver) = text(docker, "driver")
            && driver != "local"
        {
            return Err(cannot(
                "volumes.dockerVolumeConfiguration.driver",
                None,
                &format!("volume '{name}' asks for driver '{driver}'; only the local driver exists here"),
            ));
        }
    }
    Ok(())
}

fn check_container(request: &Obj, c: &Obj, name: &str) -> Result<(), ModelError> {
    let network_mode = text(request, "networkMode").unwrap_or("bridge");
    let ipc_mode = text(request, "ipcMode");
    if let Some(log) = c.get("logConfiguration").and_then(Value::as_object) {
        check_log(log, name)?;
    }
    if text(c, "versionConsistency") == Some("enabled") {
        return Err(cannot(
            "versionConsistency",
            Some(name),
            "image tags are not pinned to digests for a deployment; set 'disabled'",
        ));
    }
    for option in c.get("dockerSecurityOptions").and_then(Value::as_array).into_iter().flatten() {
        let option = option.as_str().unwrap_or_default();
        if option != "no-new-privileges" {
            return Err(cannot(
                "dockerSecurityOptions",
                Some(name),
                &format!("only no-new-privileges is supported, not '{option}'"),
            ));
        }
    }
    if c.get("disableNetworking").and_then(Value::as_bool) == Some(true) && objects(c, "portMappings").next().is_some()
    {
        return Err(invalid("disableNetworking", name, "a container without networking cannot map ports"));
    }
    check_port_ranges(c, name, network_mode)?;
    for sc in objects(c, "systemControls") {
        check_sysctl(sc, name, network_mode, ipc_mode)?;
    }
    if let Some(linux) = c.get("linuxParameters").and_then(Value::as_object) {
        check_linux(linux, c, name, ipc_mode)?;
    }
    Ok(())
}

fn check_log(log: &Obj, name: &str) -> Result<(), ModelError> {
    let driver = text(log, "logDriver").unwrap_or_default();
    let no_options = Obj::new();
    let options = log.get("options").and_then(Value::as_object).unwrap_or(&no_options);
    match driver {
        "json-file" => {}
        "awslogs" => {
            return crate::awslogs::AwsLogs::parse(options)
                .map(drop)
                .map_err(|why| invalid("logConfiguration.options", name, &why));
        }
        other => {
            return Err(cannot(
                "logConfiguration.logDriver",
                Some(name),
                &format!(
                    "the agent keeps container logs itself (json-file) or sends them to CloudWatch Logs (awslogs); it cannot send them to {other}"
                ),
            ));
        }
    }
    for (key, value) in options {
        let value = value.as_str().unwrap_or_default();
        let ok = match key.as_str() {
            "max-size" => parse_size(value).is_some(),
            "max-file" => value.parse::<u32>().is_ok_and(|n| n > 0),
            _ => {
                return Err(cannot(
                    "logConfiguration.options",
                    Some(name),
                    &format!("json-file option '{key}' is not supported; only {}", LOG_OPTIONS.join(" and ")),
                ));
            }
        };
        if !ok {
            return Err(invalid("logConfiguration.options", name, &format!("'{value}' is not a valid {key}")));
        }
    }
    Ok(())
}

/// A Docker size (`10m`, `1g`, `512k`, `2048`) in bytes.
pub fn parse_size(raw: &str) -> Option<u64> {
    let raw = raw.trim().to_ascii_lowercase();
    let (digits, unit) = match raw.find(|ch: char| !ch.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw.as_str(), ""),
    };
    let factor: u64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok().filter(|n| *n > 0)?.checked_mul(factor)
}

/// `first-last` of a `containerPortRange`.
pub fn parse_port_range(raw: &str) -> Option<(u16, u16)> {
    let (a, b) = raw.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a < b).then_some((a, b))
}

fn check_port_ranges(c: &Obj, name: &str, network_mode: &str) -> Result<(), ModelError> {
    let member = "portMappings.containerPortRange";
    let mut taken: BTreeSet<(u16, String)> = BTreeSet::new();
    let mut ranges = 0;
    let mappings: Vec<&Obj> = objects(c, "portMappings").collect();
    for pm in mappings.iter().filter(|pm| !pm.contains_key("containerPortRange")) {
        if let Some(port) = int(pm, "containerPort").and_then(|p| u16::try_from(p).ok()) {
            taken.insert((port, text(pm, "protocol").unwrap_or("tcp").to_string()));
        }
    }
    for pm in mappings.iter().filter(|pm| pm.contains_key("containerPortRange")) {
        let raw = text(pm, "containerPortRange").unwrap_or_default();
        if !matches!(network_mode, "bridge" | "awsvpc") {
            return Err(invalid(member, name, "port ranges need the bridge or awsvpc network mode"));
        }
        if pm.contains_key("containerPort") || pm.contains_key("hostPort") {
            return Err(invalid(
                member,
                name,
                "a mapping with a port range takes neither containerPort nor hostPort (host ports are assigned)",
            ));
        }
        let Some((first, last)) = parse_port_range(raw) else {
            return Err(invalid(
                member,
                name,
                &format!("'{raw}' is not a range FIRST-LAST of ports 1-65535 with FIRST below LAST"),
            ));
        };
        ranges += 1;
        if ranges > MAX_PORT_RANGES {
            return Err(invalid(member, name, &format!("at most {MAX_PORT_RANGES} port ranges are allowed")));
        }
        let protocol = text(pm, "protocol").unwrap_or("tcp");
        for port in first..=last {
            if !taken.insert((port, protocol.to_string())) {
                return Err(invalid(member, name, &format!("port {port}/{protocol} is in more than one port mapping")));
            }
        }
    }
    Ok(())
}

/// Docker's rule: only sysctls of the container's own namespaces, and none of a namespace it
/// shares with the host or (IPC) with the other containers of its task.
fn check_sysctl(sc: &Obj, name: &str, network_mode: &str, ipc_mode: Option<&str>) -> Result<(), ModelError> {
    let member = "systemControls";
    let key = text(sc, "namespace").unwrap_or_default();
    if key.is_empty() || text(sc, "value").is_none_or(str::is_empty) {
        return Err(invalid(member, name, "each system control needs a namespace and a value"));
    }
    let ipc = IPC_SYSCTLS.contains(&key) || key.starts_with(IPC_SYSCTL_PREFIX);
    let net = key.starts_with(NET_SYSCTL_PREFIX);
    if !ipc && !net {
        return Err(cannot(
            member,
            Some(name),
            &format!("'{key}' is not namespaced; only net.*, fs.mqueue.* and the kernel IPC limits may be set"),
        ));
    }
    if net && network_mode == "host" {
        return Err(cannot(member, Some(name), &format!("'{key}' would change the host's network namespace")));
    }
    match ipc_mode {
        Some("host") if ipc => {
            Err(cannot(member, Some(name), &format!("'{key}' would change the host's IPC namespace (ipcMode host)")))
        }
        Some("task") if ipc => Err(cannot(
            member,
            Some(name),
            &format!("'{key}' would change the IPC namespace the task's containers share (ipcMode task)"),
        )),
        _ => Ok(()),
    }
}

fn absolute(path: &str) -> bool {
    path.starts_with('/')
}

fn check_linux(linux: &Obj, c: &Obj, name: &str, ipc_mode: Option<&str>) -> Result<(), ModelError> {
    for d in objects(linux, "devices") {
        let host = text(d, "hostPath").unwrap_or_default();
        let inside = text(d, "containerPath").unwrap_or(host);
        if !absolute(host) || !absolute(inside) {
            return Err(invalid("linuxParameters.devices", name, "device paths must be absolute"));
        }
    }
    for t in objects(linux, "tmpfs") {
        let member = "linuxParameters.tmpfs";
        if !absolute(text(t, "containerPath").unwrap_or_default()) {
            return Err(invalid(member, name, "containerPath must be absolute"));
        }
        if int(t, "size").is_none_or(|s| s <= 0) {
            return Err(invalid(member, name, "size must be a positive number of MiB"));
        }
        for option in t.get("mountOptions").and_then(Value::as_array).into_iter().flatten() {
            let option = option.as_str().unwrap_or_default();
            let ok = match option.split_once('=') {
                Some((key, value)) => TMPFS_VALUED.contains(&key) && !value.is_empty(),
                None => TMPFS_FLAGS.contains(&option),
            };
            if !ok {
                return Err(invalid(member, name, &format!("'{option}' is not a tmpfs mount option")));
            }
        }
    }
    if let Some(size) = int(linux, "sharedMemorySize") {
        let member = "linuxParameters.sharedMemorySize";
        if size <= 0 {
            return Err(invalid(member, name, "it must be a positive number of MiB"));
        }
        if let Some(mode @ ("host" | "none")) = ipc_mode {
            return Err(invalid(
                member,
                name,
                &format!("there is no /dev/shm of the task to size with ipcMode {mode}"),
            ));
        }
    }
    if let Some(swap) = int(linux, "maxSwap") {
        if swap < 0 {
            return Err(invalid("linuxParameters.maxSwap", name, "it must be 0 or a positive number of MiB"));
        }
        if int(c, "memory").is_none() {
            return Err(invalid("linuxParameters.maxSwap", name, "it needs the container's 'memory' hard limit"));
        }
    }
    if int(linux, "swappiness").is_some_and(|s| !(0..=100).contains(&s)) {
        return Err(invalid("linuxParameters.swappiness", name, "it must be between 0 and 100"));
    }
    Ok(())
}

/// The refusals of a definition's members for `launch_type` (RunTask, StartTask and the
/// service paths). Fargate will act on what EC2 refuses here.
pub fn check_launch(definition: &Obj, launch_type: &str) -> Result<(), ModelError> {
    if launch_type != "EC2" {
        return Ok(());
    }
    let root = Value::Object(definition.clone());
    for r in REFUSED_FOR_EC2 {
        if !given(&root, r.member).is_empty() {
            return Err(ModelError::invalid(format!(
                "Berth cannot honour '{}' for the EC2 launch type: {}.",
                r.member, r.why
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::task_definition::prepare;

    /// The ECS service model Berth validates requests with.
    const MODEL: &str = include_str!("../../berth-api/models/ecs.json");

    fn shapes() -> Obj {
        let model: Value = serde_json::from_str(MODEL).unwrap();
        model["shapes"].as_object().unwrap().clone()
    }

    /// The two tables of "Task definition members": member path -> (status, note).
    fn tables() -> [BTreeMap<String, (String, String)>; 2] {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/differences.md")).unwrap();
        let section = doc.split("\n## Task definition members\n").nth(1).unwrap().split("\n## ").next().unwrap();
        let table = |heading: &str| {
            let part = section.split(&format!("### {heading}\n")).nth(1).unwrap().split("\n### ").next().unwrap();
            let mut rows = BTreeMap::new();
            for row in part.lines().filter(|l| l.starts_with("| `")) {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let member = cells[1].trim_matches('`').to_string();
                let status = cells[2].to_string();
                assert!(
                    ["acted on", "partly refused", "refused", "refused for EC2", "reported"].contains(&status.as_str()),
                    "{member}: unknown status {status}"
                );
                assert!(rows.insert(member.clone(), (status, cells[3].to_string())).is_none(), "{member} twice");
            }
            rows
        };
        [table("Task definition"), table("Container definition")]
    }

    /// The shape a member names, with lists looked through.
    fn member_shape(shapes: &Obj, shape: &str, member: &str) -> Option<String> {
        let mut target = shapes[shape]["members"].get(member)?["shape"].as_str()?.to_string();
        while shapes[&target]["type"] == "list" {
            target = shapes[&target]["member"]["shape"].as_str().unwrap().to_string();
        }
        Some(target)
    }

    /// Checks that the rows cover the members of `shape` exactly once: a member is listed, or
    /// it is a structure whose members are all covered. Returns the rows it met.
    fn cover(shapes: &Obj, shape: &str, prefix: &str, rows: &BTreeMap<String, (String, String)>) -> Vec<String> {
        let mut met = Vec::new();
        for member in shapes[shape]["members"].as_object().unwrap().keys() {
            let path = if prefix.is_empty() { member.clone() } else { format!("{prefix}.{member}") };
            let target = member_shape(shapes, shape, member).unwrap();
            if rows.contains_key(&path) {
                assert!(
                    !rows.keys().any(|k| k.starts_with(&format!("{path}."))),
                    "{path} is listed and so are members of it"
                );
                met.push(path);
            } else {
                assert_eq!(shapes[&target]["type"], "structure", "the table does not list {path}");
                met.extend(cover(shapes, &target, &path, rows));
            }
        }
        met
    }

    #[test]
    fn the_docs_table_lists_every_member_of_the_model() {
        let shapes = shapes();
        let [task, container] = tables();
        for (root, rows) in [("RegisterTaskDefinitionRequest", &task), ("ContainerDefinition", &container)] {
            let met: BTreeSet<String> = cover(&shapes, root, "", rows).into_iter().collect();
            let listed: BTreeSet<String> = rows.keys().cloned().collect();
            assert_eq!(listed, met, "rows of {root} that are not members of the model");
        }
    }

    #[test]
    fn the_docs_table_states_the_refusals_of_the_code() {
        let [task, container] = tables();
        let with = |rows: &BTreeMap<String, (String, String)>, status: &str| -> BTreeMap<String, String> {
            rows.iter().filter(|(_, (s, _))| s == status).map(|(m, (_, note))| (m.clone(), note.clone())).collect()
        };
        for (rows, refusals) in [(&task, REFUSED_TASK_MEMBERS), (&container, REFUSED_CONTAINER_MEMBERS)] {
            let in_code: BTreeMap<String, String> =
                refusals.iter().map(|r| (r.member.to_string(), r.why.to_string())).collect();
            assert_eq!(with(rows, "refused"), in_code);
        }
        let in_code: BTreeMap<String, String> =
            REFUSED_FOR_EC2.iter().map(|r| (r.member.to_string(), r.why.to_string())).collect();
        assert_eq!(with(&task, "refused for EC2"), in_code);
        assert!(with(&container, "refused for EC2").is_empty());
    }

    /// The smallest value of `shape` the model accepts: required members only, first enum value.
    fn sample(shapes: &Obj, shape: &str) -> Value {
        let s = &shapes[shape];
        match s["type"].as_str().unwrap() {
            "structure" => {
                let mut out = Obj::new();
                for r in s["required"].as_array().into_iter().flatten() {
                    let target = s["members"][r.as_str().unwrap()]["shape"].as_str().unwrap();
                    out.insert(r.as_str().unwrap().into(), sample(shapes, target));
                }
                Value::Object(out)
            }
            "list" => json!([sample(shapes, s["member"]["shape"].as_str().unwrap())]),
            "map" => json!({"k": sample(shapes, s["value"]["shape"].as_str().unwrap())}),
            "integer" | "long" => json!(1),
            "boolean" => json!(true),
            _ => s["enum"].get(0).cloned().unwrap_or(json!("x")),
        }
    }

    /// The member at `path` of `shape` (one key) with a sample value, and below it what the
    /// model requires.
    fn with_member(shapes: &Obj, shape: &str, path: &str) -> Value {
        let first = path.split('.').next().unwrap();
        json!({first: member_value(shapes, shape, path)[first]})
    }

    /// An object of `shape` holding a sample value at `path`.
    fn member_value(shapes: &Obj, shape: &str, path: &str) -> Value {
        let (first, rest) = path.split_once('.').map_or((path, None), |(a, b)| (a, Some(b)));
        let raw = shapes[shape]["members"][first]["shape"].as_str().unwrap();
        let target = member_shape(shapes, shape, first).unwrap();
        let value = match rest {
            None => sample(shapes, raw),
            Some(rest) => {
                let inner = member_value(shapes, &target, rest);
                if shapes[raw]["type"] == "list" { json!([inner]) } else { inner }
            }
        };
        let mut out = sample(shapes, shape);
        out[first] = value;
        out
    }

    fn request(extra: Value, container_extra: Value) -> Obj {
        let mut c = json!({"name": "web", "image": "busybox", "memory": 64});
        for (k, v) in container_extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut r = json!({"family": "f", "containerDefinitions": [c]});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r.as_object().unwrap().clone()
    }

    #[test]
    fn every_refused_member_is_refused_by_name_and_registers_nothing() {
        let shapes = shapes();
        for r in REFUSED_TASK_MEMBERS {
            let req = request(with_member(&shapes, "RegisterTaskDefinitionRequest", r.member), json!({}));
            let e = prepare(&req).unwrap_err();
            assert_eq!(e.exception(), "ClientException");
            assert_eq!(e.to_string(), format!("Berth cannot honour '{}': {}.", r.member, r.why));
        }
        for r in REFUSED_CONTAINER_MEMBERS {
            let req = request(json!({}), with_member(&shapes, "ContainerDefinition", r.member));
            assert_eq!(
                prepare(&req).unwrap_err().to_string(),
                format!("Berth cannot honour '{}' in container 'web': {}.", r.member, r.why)
            );
        }
        for r in REFUSED_FOR_EC2 {
            let mut req = request(with_member(&shapes, "RegisterTaskDefinitionRequest", r.member), json!({}));
            if r.member == "ephemeralStorage" {
                // The model's sample size is below the 21 GiB registration accepts.
                req.insert(r.member.into(), json!({"sizeInGiB": 21}));
            }
            let def = prepare(&req).expect("kept at registration for Fargate");
            let e = check_launch(&def, "EC2").unwrap_err();
            assert_eq!(e.exception(), "InvalidParameterException");
            assert!(e.to_string().starts_with(&format!("Berth cannot honour '{}' for the EC2", r.member)), "{e}");
            assert!(check_launch(&def, "FARGATE").is_ok());
        }
    }

    #[test]
    fn empty_lists_and_false_ask_for_nothing() {
        assert!(prepare(&request(json!({}), json!({"secrets": [], "links": []}))).is_ok());
        assert!(prepare(&request(json!({"inferenceAccelerators": []}), json!({}))).is_ok());
        let volume = json!({"volumes": [{"name": "v", "dockerVolumeConfiguration": {"autoprovision": false}}]});
        assert!(prepare(&request(volume, json!({}))).is_ok());
    }

    fn refused(extra: Value, container: Value) -> String {
        prepare(&request(extra, container)).unwrap_err().to_string()
    }

    fn accepted(extra: Value, container: Value) {
        prepare(&request(extra.clone(), container.clone())).unwrap_or_else(|e| panic!("{extra} {container}: {e}"));
    }

    #[test]
    fn values_that_cannot_act_are_refused_and_the_others_accepted() {
        accepted(
            json!({"enableFaultInjection": false, "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}}),
            json!({}),
        );
        assert!(refused(json!({"enableFaultInjection": true}), json!({})).contains("'enableFaultInjection'"));
        assert!(
            refused(json!({"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}), json!({}))
                .contains("Linux containers only, not WINDOWS_SERVER_2022_CORE")
        );
        let volume = |v: Value| json!({"volumes": [v]});
        accepted(
            volume(
                json!({"name": "v", "configuredAtLaunch": false, "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}),
            ),
            json!({}),
        );
        assert!(refused(volume(json!({"name": "v", "configuredAtLaunch": true})), json!({})).contains("EBS"));
        assert!(
            refused(volume(json!({"name": "v", "dockerVolumeConfiguration": {"scope": "shared"}})), json!({}))
                .contains("'volumes.dockerVolumeConfiguration.scope'")
        );
        assert!(
            refused(volume(json!({"name": "v", "dockerVolumeConfiguration": {"driver": "rexray"}})), json!({}))
                .contains("driver 'rexray'")
        );
        accepted(json!({}), json!({"versionConsistency": "disabled", "dockerSecurityOptions": ["no-new-privileges"]}));
        assert!(refused(json!({}), json!({"versionConsistency": "enabled"})).contains("'versionConsistency'"));
        assert!(refused(json!({}), json!({"dockerSecurityOptions": ["apparmor:x"]})).contains("not 'apparmor:x'"));
    }

    #[test]
    fn log_configuration_is_json_file_with_its_rotation_or_awslogs() {
        let log = |driver: &str, options: Value| json!({"logConfiguration": {"logDriver": driver, "options": options}});
        accepted(json!({}), log("json-file", json!({"max-size": "5m", "max-file": "2"})));
        accepted(
            json!({}),
            log(
                "awslogs",
                json!({"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}),
            ),
        );
        let awslogs = refused(json!({}), log("awslogs", json!({"awslogs-group": "g"})));
        assert_eq!(awslogs, "Invalid 'logConfiguration.options' in container 'web': awslogs-region is required.");
        for driver in ["syslog", "journald", "gelf", "fluentd", "splunk", "awsfirelens"] {
            assert!(refused(json!({}), log(driver, json!({}))).contains(&format!("cannot send them to {driver}")));
        }
        assert!(refused(json!({}), log("json-file", json!({"compress": "true"}))).contains("'compress'"));
        assert!(refused(json!({}), log("json-file", json!({"max-size": "lots"}))).contains("'lots'"));
        assert!(refused(json!({}), log("json-file", json!({"max-file": "0"}))).contains("max-file"));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1kb"), Some(1024));
        for bad in ["", "m", "0", "1t", "-1m"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn port_ranges_follow_ecs_rules() {
        let ranges = |mode: &str, mappings: Value| (json!({"networkMode": mode}), json!({"portMappings": mappings}));
        let (t, c) = ranges("bridge", json!([{"containerPortRange": "8000-8010"}, {"containerPort": 80}]));
        let def = prepare(&request(t, c)).unwrap();
        assert_eq!(
            def["containerDefinitions"][0]["portMappings"][0],
            json!({"containerPortRange": "8000-8010", "protocol": "tcp"})
        );
        let (t, c) = ranges("awsvpc", json!([{"containerPortRange": "8000-8010"}]));
        accepted(t, c);
        for (mode, mappings, why) in [
            ("host", json!([{"containerPortRange": "8000-8010"}]), "bridge or awsvpc"),
            ("bridge", json!([{"containerPortRange": "8010-8000"}]), "not a range"),
            ("bridge", json!([{"containerPortRange": "0-10"}]), "not a range"),
            ("bridge", json!([{"containerPortRange": "80-x"}]), "not a range"),
            ("bridge", json!([{"containerPortRange": "80-90", "hostPort": 80}]), "neither containerPort"),
            ("bridge", json!([{"containerPortRange": "80-90"}, {"containerPortRange": "90-95"}]), "port 90/tcp"),
            ("bridge", json!([{"containerPort": 85}, {"containerPortRange": "80-90"}]), "port 85/tcp"),
        ] {
            let (t, c) = ranges(mode, mappings);
            let e = refused(t, c);
            assert!(e.starts_with("Invalid 'portMappings.containerPortRange' in container 'web'"), "{e}");
            assert!(e.contains(why), "{e}");
        }
        let (t, c) =
            ranges("bridge", json!([{"containerPortRange": "80-90", "protocol": "udp"}, {"containerPort": 85}]));
        accepted(t, c);
        let many: Vec<Value> =
            (0..101).map(|i| json!({"containerPortRange": format!("{}-{}", 1000 + 2 * i, 1001 + 2 * i)})).collect();
        let (t, c) = ranges("bridge", Value::Array(many));
        assert!(refused(t, c).contains("at most 100"));
    }

    #[test]
    fn only_namespaced_sysctls_of_unshared_namespaces() {
        let sysctl = |key: &str| json!({"systemControls": [{"namespace": key, "value": "1"}]});
        accepted(json!({}), sysctl("net.ipv4.ip_forward"));
        accepted(json!({}), sysctl("kernel.shmmax"));
        accepted(json!({}), sysctl("fs.mqueue.msg_max"));
        accepted(json!({"ipcMode": "task"}), sysctl("net.core.somaxconn"));
        assert!(refused(json!({}), sysctl("kernel.panic")).contains("'kernel.panic' is not namespaced"));
        assert!(refused(json!({}), sysctl("vm.swappiness")).contains("not namespaced"));
        assert!(refused(json!({"networkMode": "host"}), sysctl("net.ipv4.ip_forward")).contains("host's network"));
        assert!(refused(json!({"ipcMode": "host"}), sysctl("kernel.sem")).contains("ipcMode host"));
        assert!(refused(json!({"ipcMode": "task"}), sysctl("fs.mqueue.msg_max")).contains("ipcMode task"));
        assert!(
            refused(json!({}), json!({"systemControls": [{"namespace": "net.x"}]}))
                .contains("needs a namespace and a value")
        );
    }

    #[test]
    fn linux_parameters_rules() {
        let linux = |v: Value| json!({"linuxParameters": v});
        accepted(
            json!({}),
            linux(json!({"devices": [{"hostPath": "/dev/null", "containerPath": "/dev/x", "permissions": ["read"]}],
                "tmpfs": [{"containerPath": "/scratch", "size": 16, "mountOptions": ["noexec", "mode=1777", "uid=1000"]}],
                "sharedMemorySize": 128, "maxSwap": 0, "swappiness": 10})),
        );
        for (v, why) in [
            (json!({"devices": [{"hostPath": "dev/null"}]}), "absolute"),
            (json!({"tmpfs": [{"containerPath": "scratch", "size": 1}]}), "absolute"),
            (json!({"tmpfs": [{"containerPath": "/s", "size": 0}]}), "positive"),
            (json!({"tmpfs": [{"containerPath": "/s", "size": 1, "mountOptions": ["rbind"]}]}), "'rbind'"),
            (json!({"tmpfs": [{"containerPath": "/s", "size": 1, "mountOptions": ["size=5m"]}]}), "'size=5m'"),
            (json!({"tmpfs": [{"containerPath": "/s", "size": 1, "mountOptions": ["mode"]}]}), "'mode'"),
            (json!({"sharedMemorySize": 0}), "positive"),
            (json!({"maxSwap": -1}), "0 or a positive"),
            (json!({"swappiness": 101}), "between 0 and 100"),
        ] {
            assert!(refused(json!({}), linux(v.clone())).contains(why), "{v}");
        }
        let no_memory = json!({"memoryReservation": 64, "linuxParameters": {"maxSwap": 10}});
        let mut r = request(json!({}), no_memory);
        r["containerDefinitions"][0].as_object_mut().unwrap().remove("memory");
        assert!(prepare(&r).unwrap_err().to_string().contains("needs the container's 'memory'"));
        for mode in ["host", "none"] {
            assert!(
                refused(json!({"ipcMode": mode}), linux(json!({"sharedMemorySize": 64})))
                    .contains(&format!("ipcMode {mode}"))
            );
        }
        accepted(json!({"ipcMode": "task", "pidMode": "task"}), linux(json!({"sharedMemorySize": 64})));
        assert!(
            refused(json!({}), json!({"disableNetworking": true, "portMappings": [{"containerPort": 80}]}))
                .contains("cannot map ports")
        );
        accepted(json!({}), json!({"disableNetworking": true}));
    }

    #[test]
    fn awsvpc_runs_on_ec2() {
        let def = prepare(&request(json!({"networkMode": "awsvpc"}), json!({}))).unwrap();
        assert!(check_launch(&def, "EC2").is_ok());
    }
}
