//! What this machine offers as a container instance: cpu units, memory, the ports already
//! taken, and ECS's built-in attributes.

use std::collections::BTreeSet;

use berth_agent_protocol::ecs::Attribute;
use berth_model::resources::{RESERVED_PORTS, Resources};

/// CPU units: 1024 per core, as ECS counts them.
pub fn cpu_units() -> i64 {
    std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1) * 1024
}

/// Total memory in MiB, from /proc/meminfo.
pub fn memory_mib() -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kib| kib / 1024)
        .unwrap_or(0)
}

/// Ports something on the host already listens on (TCP) or has bound (UDP).
pub fn ports_in_use(udp: bool) -> BTreeSet<u16> {
    let files: &[&str] = if udp { &["/proc/net/udp", "/proc/net/udp6"] } else { &["/proc/net/tcp", "/proc/net/tcp6"] };
    let mut ports = BTreeSet::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is "HEXIP:HEXPORT"; state 0A is LISTEN (TCP), 07 is unconnected (UDP).
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let wanted = if udp { *state == "07" } else { *state == "0A" };
            if let Some(port) = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok())
                && wanted
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// The resources to register: cpu, memory minus `reserved_mib`, ports in use plus ECS's
/// reserved ones.
pub fn resources(reserved_mib: i64) -> Resources {
    let mut tcp = ports_in_use(false);
    tcp.extend(RESERVED_PORTS);
    Resources {
        cpu: cpu_units(),
        memory: (memory_mib() - reserved_mib).max(0),
        tcp_ports: tcp,
        udp_ports: ports_in_use(true),
    }
}

/// The attribute that lends this machine's capacity to FARGATE tasks.
pub fn fargate_attribute() -> Attribute {
    Attribute::new(berth_model::launch::FARGATE_ATTRIBUTE, None)
}

/// The attribute that offers this machine's block of public addresses to FARGATE tasks.
pub fn public_pool_attribute(pool: &str) -> Attribute {
    Attribute::new(berth_model::launch::PUBLIC_POOL_ATTRIBUTE, Some(pool))
}

/// ECS's built-in attributes plus the custom ones (a custom one replaces a built-in of its name).
pub fn attributes(instance_type: &str, zone: &str, custom: &[(String, String)]) -> Vec<Attribute> {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let mut out = vec![
        Attribute::new("ecs.os-type", Some("linux")),
        Attribute::new("ecs.cpu-architecture", Some(arch)),
        Attribute::new("ecs.instance-type", Some(instance_type)),
        Attribute::new("ecs.availability-zone", Some(zone)),
        Attribute::new("ecs.capability.container-health-check", None),
        Attribute::new("com.amazonaws.ecs.capability.docker-remote-api.1.41", None),
    ];
    for (k, v) in custom {
        out.retain(|a| a.name != *k);
        out.push(Attribute::new(k, Some(v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        assert!(cpu_units() >= 1024 && cpu_units() % 1024 == 0);
        assert!(memory_mib() > 0);
        let r = resources(128);
        assert!(RESERVED_PORTS.iter().all(|p| r.tcp_ports.contains(p)));
        assert_eq!(r.memory, memory_mib() - 128);
    }

    #[test]
    fn sees_a_listening_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(ports_in_use(false).contains(&port));
    }

    #[test]
    fn custom_attributes_override_builtins() {
        let attrs = attributes(
            "m5.large",
            "zone-a",
            &[("ecs.availability-zone".into(), "zone-b".into()), ("team".into(), "x".into())],
        );
        let zone: Vec<_> = attrs.iter().filter(|a| a.name == "ecs.availability-zone").collect();
        assert_eq!(zone.len(), 1);
        assert_eq!(zone[0].value.as_deref(), Some("zone-b"));
        assert!(attrs.contains(&Attribute::new("team", Some("x"))));
    }
}
