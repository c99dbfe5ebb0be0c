//! Task definitions: the checks ECS makes at RegisterTaskDefinition, the normalisation it
//! applies (cpu and memory strings, defaults it fills in), and what a task of a definition
//! needs from a container instance.
//!
//! A definition is kept as the JSON object ECS returns, so every field a client sent comes
//! back exactly, including the ones no agent acts on yet. The request has already been
//! checked against the service model's shapes, so member types are known to be right here.

use serde_json::{Map, Value, json};

use crate::ModelError;
use crate::names::is_valid_name;
use crate::resources::Requirements;

/// Most containers one task definition may hold.
pub const MAX_CONTAINERS: usize = 10;
/// Largest task definition ECS accepts, in bytes of JSON.
pub const MAX_SIZE: usize = 64 * 1024;

/// Request members that are not part of the stored definition.
const NOT_STORED: &[&str] = &["tags"];

type Obj = Map<String, Value>;

fn int(obj: &Obj, key: &str) -> Option<i64> {
    obj.get(key).and_then(Value::as_i64)
}

fn text<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn objects<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Obj> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// Task cpu as CPU units: `"1024"`, `"1 vCPU"`, `".25 vcpu"`.
pub fn parse_cpu(raw: &str) -> Option<u32> {
    let s = raw.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let lower = s.to_ascii_lowercase();
    scaled(lower.strip_suffix("vcpu")?, 1024)
}

/// Task memory in MiB: `"512"`, `"2 GB"`, `"2GB"`, `"0.5 gb"`.
pub fn parse_memory(raw: &str) -> Option<u32> {
    let s = raw.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let lower = s.to_ascii_lowercase();
    scaled(lower.strip_suffix("gb")?, 1024)
}

/// `number * unit` when the number is a plain decimal and the product is whole.
fn scaled(number: &str, unit: u32) -> Option<u32> {
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let product = value * f64::from(unit);
    (product.fract() == 0.0 && product > 0.0 && product <= f64::from(u32::MAX)).then_some(product as u32)
}

/// Whether Fargate offers this task size (cpu units, memory MiB).
pub fn fargate_size_allowed(cpu: u32, memory: u32) -> bool {
    let (lo, hi, step) = match cpu {
        256 => return matches!(memory, 512 | 1024 | 2048),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return false,
    };
    (lo..=hi).contains(&memory) && (memory - lo).is_multiple_of(step)
}

fn invalid_container(name: &str, why: &str) -> ModelError {
    ModelError::client(format!("Invalid setting for container '{name}'. {why}"))
}

/// Checks a RegisterTaskDefinition request as ECS does and returns the definition body ECS
/// would store: the request minus tags, cpu/memory in stored form, defaults filled in.
/// The caller adds family revision, ARN, status and registration time.
pub fn prepare(request: &Obj) -> Result<Obj, ModelError> {
    let family = text(request, "family").unwrap_or_default();
    if !is_valid_name(family) {
        return Err(ModelError::client("Family contains invalid characters."));
    }
    crate::members::check_registration(request)?;
    let mut def: Obj = request
        .iter()
        .filter(|(k, _)| !NOT_STORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let network_mode = text(request, "networkMode").unwrap_or("bridge");
    if !matches!(network_mode, "bridge" | "host" | "awsvpc" | "none") {
        return Err(ModelError::client(format!(
            "Invalid networkMode '{network_mode}'. Valid values: bridge, host, awsvpc, none."
        )));
    }
    let (task_cpu, task_memory) = task_size(request, network_mode)?;
    if let Some(cpu) = task_cpu {
        def.insert("cpu".into(), json!(cpu.to_string()));
    }
    if let Some(mem) = task_memory {
        def.insert("memory".into(), json!(mem.to_string()));
    }
    let normalised = containers(request, network_mode, task_cpu, task_memory)?;
    def.insert("containerDefinitions".into(), Value::Array(normalised));
    def.entry("volumes").or_insert(json!([]));
    def.entry("placementConstraints").or_insert(json!([]));
    crate::launch::check_ephemeral_storage(&def)?;
    let violation = crate::launch::fargate_violation(&def);
    if let Some(why) = &violation
        && requires_fargate(request)
    {
        return Err(ModelError::client(why.clone()));
    }
    let fargate_ok = violation.is_none()
        && network_mode == "awsvpc"
        && matches!((task_cpu, task_memory), (Some(c), Some(m)) if fargate_size_allowed(c, m));
    let mut compat = vec![json!("EC2")];
    if fargate_ok {
        compat.push(json!("FARGATE"));
    }
    def.insert("compatibilities".into(), Value::Array(compat));
    def.insert("requiresAttributes".into(), json!([]));
    Ok(def)
}

/// Whether the request lists FARGATE in `requiresCompatibilities`.
fn requires_fargate(request: &Obj) -> bool {
    request.get("requiresCompatibilities").and_then(Value::as_array).is_some_and(|c| c.iter().any(|v| v == "FARGATE"))
}

/// The task-level `cpu` (units) and `memory` (MiB), checked, and the sizes a definition that
/// requires FARGATE must have.
fn task_size(request: &Obj, network_mode: &str) -> Result<(Option<u32>, Option<u32>), ModelError> {
    let fargate = requires_fargate(request);
    let task_cpu = match text(request, "cpu") {
        None => None,
        Some(raw) => match parse_cpu(raw) {
            Some(units) if (128..=196_608).contains(&units) || fargate => Some(units),
            _ => {
                return Err(ModelError::client(
                    "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
                ));
            }
        },
    };
    let task_memory = match text(request, "memory") {
        None => None,
        Some(raw) => match parse_memory(raw) {
            Some(mib) if mib >= 6 => Some(mib),
            _ => {
                return Err(ModelError::client(
                    "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
                ));
            }
        },
    };
    if fargate {
        if network_mode != "awsvpc" {
            return Err(ModelError::client("Fargate only supports network mode \u{2018}awsvpc\u{2019}."));
        }
        let cpu =
            task_cpu.ok_or_else(|| ModelError::client("Fargate requires that 'cpu' be defined at the task level."))?;
        let mem = task_memory
            .ok_or_else(|| ModelError::client("Fargate requires that 'memory' be defined at the task level."))?;
        if !fargate_size_allowed(cpu, mem) {
            return Err(ModelError::client(format!(
                "No Fargate configuration exists for given values: {cpu} CPU, {mem} memory. See the Amazon ECS documentation for the valid values."
            )));
        }
    }
    Ok((task_cpu, task_memory))
}

/// What the checks of one container share with the others of its task definition.
struct Task<'a> {
    network_mode: &'a str,
    task_memory: Option<u32>,
    volumes: Vec<&'a str>,
    names: std::collections::BTreeSet<String>,
    /// Host ports already mapped, with their protocol.
    host_ports: std::collections::BTreeSet<(i64, String)>,
    any_essential: bool,
    cpu_sum: i64,
    memory_sum: i64,
}

/// Every container definition, checked and normalised, then the rules across them.
fn containers(
    request: &Obj,
    network_mode: &str,
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> Result<Vec<Value>, ModelError> {
    let list = request.get("containerDefinitions").and_then(Value::as_array).cloned().unwrap_or_default();
    if list.is_empty() {
        return Err(ModelError::client("Container list cannot be empty."));
    }
    if list.len() > MAX_CONTAINERS {
        return Err(ModelError::client("Too many containers."));
    }
    let mut task = Task {
        network_mode,
        task_memory,
        volumes: objects(request, "volumes").filter_map(|v| text(v, "name")).collect(),
        names: Default::default(),
        host_ports: Default::default(),
        any_essential: false,
        cpu_sum: 0,
        memory_sum: 0,
    };
    let normalised = list
        .iter()
        .map(|c| container(c.as_object().cloned().unwrap_or_default(), &mut task))
        .collect::<Result<Vec<_>, _>>()?;
    if !task.any_essential {
        return Err(ModelError::client("Task definition doesn't have any essential container."));
    }
    check_depends_on(&normalised)?;
    if let Some(t) = task_cpu
        && task.cpu_sum > i64::from(t)
    {
        return Err(ModelError::client(format!(
            "The sum of container 'cpu' values ({}) exceeds the task's 'cpu' ({t}).",
            task.cpu_sum
        )));
    }
    if let Some(t) = task_memory
        && task.memory_sum > i64::from(t)
    {
        return Err(ModelError::client(
            "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.",
        ));
    }
    Ok(normalised)
}

/// One container definition: its name, image, memory and cpu checked, its port mappings and
/// mount points checked and normalised, ECS's defaults filled in.
fn container(mut c: Obj, task: &mut Task<'_>) -> Result<Value, ModelError> {
    let name = text(&c, "name").unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(ModelError::client("Container.name should not be null or empty."));
    }
    if !is_valid_name(&name) {
        return Err(ModelError::client("Container.name contains invalid characters."));
    }
    if !task.names.insert(name.clone()) {
        return Err(ModelError::client(format!(
            "Duplicate container name '{name}': container names must be unique within a task definition."
        )));
    }
    if text(&c, "image").unwrap_or_default().trim().is_empty() {
        return Err(ModelError::client("Container.image should not be null or empty."));
    }
    let essential = c.get("essential").and_then(Value::as_bool).unwrap_or(true);
    task.any_essential |= essential;
    container_size(&c, &name, task)?;
    let mappings = port_mappings(&c, &name, task)?;
    for mp in objects(&c, "mountPoints") {
        if let Some(src) = text(mp, "sourceVolume")
            && !task.volumes.contains(&src)
        {
            return Err(invalid_container(&name, &format!("Unknown volume '{src}'.")));
        }
    }
    c.insert("portMappings".into(), Value::Array(mappings));
    c.insert("essential".into(), json!(essential));
    c.entry("cpu").or_insert(json!(0));
    for list in ["environment", "mountPoints", "volumesFrom"] {
        c.entry(list).or_insert(json!([]));
    }
    Ok(Value::Object(c))
}

/// A container's `memory`, `memoryReservation` and `cpu`, checked and added to the task's sums.
fn container_size(c: &Obj, name: &str, task: &mut Task<'_>) -> Result<(), ModelError> {
    let (memory, reservation) = (int(c, "memory"), int(c, "memoryReservation"));
    if memory.is_none() && reservation.is_none() && task.task_memory.is_none() {
        return Err(invalid_container(name, "At least one of 'memory' or 'memoryReservation' must be specified."));
    }
    for (field, value) in [("memory", memory), ("memoryReservation", reservation)] {
        if value.is_some_and(|v| v < 6) {
            return Err(invalid_container(name, &format!("'{field}' must be at least 6 MiB.")));
        }
    }
    if let (Some(m), Some(r)) = (memory, reservation)
        && r > m
    {
        return Err(invalid_container(name, "'memory' must be greater than or equal to 'memoryReservation'."));
    }
    if let (Some(m), Some(t)) = (memory, task.task_memory)
        && m > i64::from(t)
    {
        return Err(ModelError::client(format!(
            "The 'memory' setting for container '{name}' is greater than for the task."
        )));
    }
    task.memory_sum += reservation.or(memory).unwrap_or(0);
    let cpu = int(c, "cpu").unwrap_or(0);
    if cpu < 0 {
        return Err(invalid_container(name, "'cpu' must not be negative."));
    }
    task.cpu_sum += cpu;
    Ok(())
}

/// A container's `portMappings`, checked and normalised: the protocol spelled out, the host
/// port filled in (the container port in awsvpc and host modes, 0 for a dynamic one), no
/// host port mapped twice.
fn port_mappings(c: &Obj, name: &str, task: &mut Task<'_>) -> Result<Vec<Value>, ModelError> {
    let network_mode = task.network_mode;
    let mut mappings = Vec::new();
    for pm in objects(c, "portMappings") {
        let mut pm = pm.clone();
        let protocol = text(&pm, "protocol").unwrap_or("tcp").to_string();
        if !matches!(protocol.as_str(), "tcp" | "udp") {
            return Err(invalid_container(name, &format!("Invalid port mapping protocol '{protocol}'.")));
        }
        pm.insert("protocol".into(), json!(protocol));
        let container_port = int(&pm, "containerPort");
        let host_port = int(&pm, "hostPort");
        for p in [container_port, host_port].into_iter().flatten() {
            if !(0..=65535).contains(&p) {
                return Err(invalid_container(name, &format!("Invalid port {p}: ports are 0-65535.")));
            }
        }
        if pm.contains_key("containerPortRange") {
            mappings.push(Value::Object(pm));
            continue;
        }
        let Some(container_port) = container_port else {
            return Err(invalid_container(name, "Port mappings need a 'containerPort' or a 'containerPortRange'."));
        };
        let host_port = match network_mode {
            "awsvpc" | "host" => {
                if host_port.is_some_and(|h| h != container_port) {
                    return Err(ModelError::client(format!(
                        "When networkMode={network_mode}, the host ports and container ports in port mappings must match."
                    )));
                }
                container_port
            }
            _ => host_port.unwrap_or(0),
        };
        pm.insert("hostPort".into(), json!(host_port));
        if host_port != 0 && network_mode != "awsvpc" && !task.host_ports.insert((host_port, protocol.clone())) {
            return Err(ModelError::client(format!(
                "Port conflict: host port {host_port}/{protocol} is mapped more than once in this task definition."
            )));
        }
        mappings.push(Value::Object(pm));
    }
    Ok(mappings)
}

fn check_depends_on(containers: &[Value]) -> Result<(), ModelError> {
    let by_name: std::collections::BTreeMap<&str, &Obj> =
        containers.iter().filter_map(Value::as_object).filter_map(|c| Some((text(c, "name")?, c))).collect();
    for (name, c) in &by_name {
        for dep in objects(c, "dependsOn") {
            let target = text(dep, "containerName").unwrap_or_default();
            let Some(other) = by_name.get(target) else {
                return Err(invalid_container(name, &format!("'dependsOn' names unknown container '{target}'.")));
            };
            let condition = text(dep, "condition").unwrap_or_default();
            if matches!(condition, "SUCCESS" | "COMPLETE")
                && other.get("essential").and_then(Value::as_bool).unwrap_or(true)
            {
                return Err(ModelError::client(
                    "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container",
                ));
            }
        }
    }
    Ok(())
}

/// What one task of `def` needs from a container instance, after RunTask overrides.
pub fn requirements(def: &Obj, overrides: Option<&Obj>) -> Requirements {
    let task_level = |key: &str, parse: fn(&str) -> Option<u32>| {
        overrides.and_then(|o| text(o, key)).or_else(|| text(def, key)).and_then(parse)
    };
    let container_override = |name: &str| {
        overrides.into_iter().flat_map(|o| objects(o, "containerOverrides")).find(|co| text(co, "name") == Some(name))
    };
    let network_mode = text(def, "networkMode").unwrap_or("bridge");
    let mut req = Requirements::default();
    let (mut cpu_sum, mut mem_sum) = (0i64, 0i64);
    for c in objects(def, "containerDefinitions") {
        let name = text(c, "name").unwrap_or_default();
        let over = container_override(name);
        let field = |key: &str| over.and_then(|o| int(o, key)).or_else(|| int(c, key));
        cpu_sum += field("cpu").unwrap_or(0);
        mem_sum += field("memoryReservation").or_else(|| field("memory")).unwrap_or(0);
        if network_mode == "awsvpc" {
            continue;
        }
        for pm in objects(c, "portMappings") {
            let host = int(pm, "hostPort").unwrap_or(0);
            if host > 0 {
                let port = host as u16;
                match text(pm, "protocol") {
                    Some("udp") => req.udp_ports.push(port),
                    _ => req.tcp_ports.push(port),
                }
            }
        }
    }
    req.cpu = task_level("cpu", parse_cpu).map(i64::from).unwrap_or(cpu_sum);
    req.memory = task_level("memory", parse_memory).map(i64::from).unwrap_or(mem_sum);
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    fn err(v: Value) -> String {
        prepare(&obj(v)).unwrap_err().to_string()
    }

    fn container(name: &str) -> Value {
        json!({"name": name, "image": "busybox", "memory": 128})
    }

    #[test]
    fn cpu_and_memory_strings() {
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu(".25 vcpu"), Some(256));
        assert_eq!(parse_cpu("0.5vcpu"), Some(512));
        assert_eq!(parse_cpu("512"), Some(512));
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("512"), Some(512));
        for bad in ["", "abc", "1 cpu", "-1", "1.2.3 vcpu", "0 vcpu", "1e3 vcpu", "0.1 vcpu"] {
            assert_eq!(parse_cpu(bad), None, "{bad}");
        }
        for bad in ["", "GB", "2 TB", "1.0001 GB"] {
            assert_eq!(parse_memory(bad), None, "{bad}");
        }
    }

    #[test]
    fn fargate_sizes() {
        assert!(fargate_size_allowed(256, 512));
        assert!(!fargate_size_allowed(256, 4096));
        assert!(fargate_size_allowed(1024, 3072));
        assert!(!fargate_size_allowed(1024, 1024));
        assert!(fargate_size_allowed(8192, 20480));
        assert!(!fargate_size_allowed(8192, 17408));
        assert!(fargate_size_allowed(16384, 122880));
        assert!(!fargate_size_allowed(300, 1024));
    }

    #[test]
    fn normalises_and_fills_defaults() {
        let def = prepare(&obj(json!({
            "family": "mytask", "cpu": "1 vCPU", "memory": "2 GB",
            "containerDefinitions": [
                {"name": "a", "image": "x", "cpu": 256, "memoryReservation": 512,
                 "portMappings": [{"containerPort": 80}]},
                {"name": "b", "image": "y", "cpu": 768, "memoryReservation": 512, "essential": false}
            ],
            "tags": [{"key": "k", "value": "v"}]
        })))
        .unwrap();
        assert_eq!(def["cpu"], "1024");
        assert_eq!(def["memory"], "2048");
        assert!(!def.contains_key("tags"));
        let a = &def["containerDefinitions"][0];
        assert_eq!(a["essential"], true);
        assert_eq!(a["portMappings"][0], json!({"containerPort": 80, "protocol": "tcp", "hostPort": 0}));
        assert_eq!(a["environment"], json!([]));
        assert_eq!(def["containerDefinitions"][1]["essential"], false);
        assert_eq!(def["compatibilities"], json!(["EC2"]));
    }

    #[test]
    fn fargate_rules() {
        let base = |mode: &str, cpu: &str, mem: &str| {
            json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": mode, "cpu": cpu, "memory": mem,
                   "containerDefinitions": [{"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}]}]})
        };
        let ok = prepare(&obj(base("awsvpc", "256", "512"))).unwrap();
        assert_eq!(ok["compatibilities"], json!(["EC2", "FARGATE"]));
        assert_eq!(ok["containerDefinitions"][0]["portMappings"][0]["hostPort"], 80);
        assert!(err(base("bridge", "256", "512")).contains("Fargate only supports network mode"));
        assert!(
            err(base("awsvpc", "256", "4096"))
                .starts_with("No Fargate configuration exists for given values: 256 CPU, 4096 memory")
        );
        let mut no_cpu = base("awsvpc", "256", "512");
        no_cpu.as_object_mut().unwrap().remove("cpu");
        assert_eq!(err(no_cpu), "Fargate requires that 'cpu' be defined at the task level.");
    }

    #[test]
    fn container_rules() {
        let with = |containers: Vec<Value>| json!({"family": "f", "containerDefinitions": containers});
        assert_eq!(err(with(vec![])), "Container list cannot be empty.");
        assert_eq!(err(with((0..11).map(|i| container(&format!("c{i}"))).collect())), "Too many containers.");
        assert!(err(with(vec![container("a"), container("a")])).contains("Duplicate container name 'a'"));
        let mut lazy = container("a");
        lazy["essential"] = json!(false);
        assert_eq!(err(with(vec![lazy])), "Task definition doesn't have any essential container.");
        assert!(
            err(with(vec![json!({"name": "a", "image": "x"})]))
                .contains("At least one of 'memory' or 'memoryReservation'")
        );
        assert!(
            err(with(vec![json!({"name": "a", "image": "x", "memory": 100, "memoryReservation": 200})]))
                .contains("memoryReservation")
        );
        assert_eq!(
            err(with(vec![json!({"name": "a", "memory": 100})])),
            "Container.image should not be null or empty."
        );
        assert_eq!(
            err(with(vec![json!({"name": "a b", "image": "x", "memory": 100})])),
            "Container.name contains invalid characters."
        );
        let mut p1 = container("a");
        p1["portMappings"] = json!([{"containerPort": 80, "hostPort": 8080}]);
        let mut p2 = container("b");
        p2["portMappings"] = json!([{"containerPort": 81, "hostPort": 8080}]);
        assert!(err(with(vec![p1.clone(), p2])).contains("host port 8080/tcp"));
        let mut v = container("v");
        v["mountPoints"] = json!([{"sourceVolume": "nope", "containerPath": "/x"}]);
        assert!(err(with(vec![v])).contains("Unknown volume 'nope'"));
        assert!(
            err(json!({"family": "bad name!", "containerDefinitions": [container("a")]}))
                .starts_with("Family contains invalid characters.")
        );
        assert!(
            err(json!({"family": "f", "networkMode": "weird", "containerDefinitions": [container("a")]}))
                .contains("networkMode")
        );
        assert!(
            err(json!({"family": "f", "cpu": "lots", "containerDefinitions": [container("a")]}))
                .starts_with("Invalid 'cpu' setting for task.")
        );
        assert!(
            err(json!({"family": "f", "memory": "100", "containerDefinitions": [container("a")]}))
                .contains("greater than for the task")
        );
        let two = json!({"family": "f", "memory": "200", "containerDefinitions": [
            {"name": "a", "image": "x", "memoryReservation": 150}, {"name": "b", "image": "x", "memoryReservation": 100}]});
        assert!(err(two).starts_with("The sum of all container 'memoryReservation'"));
    }

    #[test]
    fn awsvpc_ports_must_match() {
        let e = err(json!({"family": "f", "networkMode": "awsvpc", "containerDefinitions": [
            {"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 81}]}]}));
        assert!(e.contains("must match"));
    }

    #[test]
    fn requirements_follow_task_level_then_containers_then_overrides() {
        let def = prepare(&obj(json!({"family": "f", "containerDefinitions": [
            {"name": "a", "image": "x", "cpu": 100, "memory": 300, "memoryReservation": 200,
             "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "udp"}, {"containerPort": 81}]},
            {"name": "b", "image": "x", "cpu": 50, "memory": 100}]})))
        .unwrap();
        let r = requirements(&def, None);
        assert_eq!((r.cpu, r.memory, r.tcp_ports.clone(), r.udp_ports.clone()), (150, 300, vec![8080], vec![53]));
        let o = obj(json!({"containerOverrides": [{"name": "b", "memory": 400}]}));
        assert_eq!(requirements(&def, Some(&o)).memory, 600);
        let o = obj(json!({"cpu": "2 vcpu", "memory": "1 GB"}));
        let r = requirements(&def, Some(&o));
        assert_eq!((r.cpu, r.memory), (2048, 1024));
    }
}
