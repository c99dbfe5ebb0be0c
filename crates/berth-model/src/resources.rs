//! Container instance resources: what an instance registered, what is left, what a task needs,
//! and the conversion to and from ECS's `Resource` list.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Ports ECS reserves on every container instance (ssh, Docker, the agent).
pub const RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// CPU units, memory in MiB and host ports in use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    pub tcp_ports: BTreeSet<u16>,
    pub udp_ports: BTreeSet<u16>,
}

/// What one task takes from an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Requirements {
    pub cpu: i64,
    pub memory: i64,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
}

/// Why an instance cannot take a task, as ECS names it in `failures[].reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    Cpu,
    Memory,
    Ports,
}

impl Shortfall {
    pub fn reason(self) -> &'static str {
        match self {
            Shortfall::Cpu => "RESOURCE:CPU",
            Shortfall::Memory => "RESOURCE:MEMORY",
            Shortfall::Ports => "RESOURCE:PORTS",
        }
    }
}

impl Resources {
    /// The first resource that cannot cover `req`, checked in ECS's order.
    pub fn shortfall(&self, req: &Requirements) -> Option<Shortfall> {
        if req.cpu > self.cpu {
            return Some(Shortfall::Cpu);
        }
        if req.memory > self.memory {
            return Some(Shortfall::Memory);
        }
        let taken = |want: &[u16], used: &BTreeSet<u16>| want.iter().any(|p| used.contains(p));
        if taken(&req.tcp_ports, &self.tcp_ports) || taken(&req.udp_ports, &self.udp_ports) {
            return Some(Shortfall::Ports);
        }
        None
    }

    /// Takes `req` out of what remains.
    pub fn reserve(&mut self, req: &Requirements) {
        self.cpu -= req.cpu;
        self.memory -= req.memory;
        self.tcp_ports.extend(&req.tcp_ports);
        self.udp_ports.extend(&req.udp_ports);
    }

    /// Gives `req` back.
    pub fn release(&mut self, req: &Requirements) {
        self.cpu += req.cpu;
        self.memory += req.memory;
        for p in &req.tcp_ports {
            self.tcp_ports.remove(p);
        }
        for p in &req.udp_ports {
            self.udp_ports.remove(p);
        }
    }

    /// Reads ECS `Resource` entries (CPU, MEMORY, PORTS, PORTS_UDP); others are ignored.
    pub fn from_ecs(list: &[Value]) -> Resources {
        let mut r = Resources::default();
        for item in list {
            let number = || {
                item.get("integerValue")
                    .and_then(Value::as_i64)
                    .filter(|v| *v != 0)
                    .or_else(|| item.get("longValue").and_then(Value::as_i64).filter(|v| *v != 0))
                    .or_else(|| item.get("doubleValue").and_then(Value::as_f64).map(|d| d as i64))
                    .unwrap_or(0)
            };
            let ports = || -> BTreeSet<u16> {
                item.get("stringSetValue")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str()?.parse().ok())
                    .collect()
            };
            match item.get("name").and_then(Value::as_str) {
                Some("CPU") => r.cpu = number(),
                Some("MEMORY") => r.memory = number(),
                Some("PORTS") => r.tcp_ports = ports(),
                Some("PORTS_UDP") => r.udp_ports = ports(),
                _ => {}
            }
        }
        r
    }

    /// ECS's four-entry `Resource` list, every numeric field present as ECS returns them.
    pub fn to_ecs(&self) -> Value {
        let integer = |name: &str, v: i64| json!({"name": name, "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": v});
        let set = |name: &str, ports: &BTreeSet<u16>| {
            let values: Vec<String> = ports.iter().map(u16::to_string).collect();
            json!({"name": name, "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0, "stringSetValue": values})
        };
        json!([
            integer("CPU", self.cpu),
            integer("MEMORY", self.memory),
            set("PORTS", &self.tcp_ports),
            set("PORTS_UDP", &self.udp_ports)
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_and_shortfalls() {
        let mut r = Resources {
            cpu: 1024,
            memory: 2048,
            tcp_ports: RESERVED_PORTS.into_iter().collect(),
            udp_ports: BTreeSet::new(),
        };
        let before = r.clone();
        let task = Requirements { cpu: 512, memory: 1024, tcp_ports: vec![80], udp_ports: vec![] };
        assert_eq!(r.shortfall(&task), None);
        r.reserve(&task);
        assert_eq!(r.shortfall(&task), Some(Shortfall::Ports));
        assert_eq!(r.shortfall(&Requirements { cpu: 600, ..Default::default() }), Some(Shortfall::Cpu));
        assert_eq!(r.shortfall(&Requirements { memory: 1025, ..Default::default() }), Some(Shortfall::Memory));
        assert_eq!(r.shortfall(&Requirements { tcp_ports: vec![22], ..Default::default() }), Some(Shortfall::Ports));
        r.release(&task);
        assert_eq!(r, before);
    }

    #[test]
    fn ecs_resource_list_round_trips() {
        let r = Resources { cpu: 2048, memory: 3767, tcp_ports: [22, 8080].into(), udp_ports: [53].into() };
        let list = r.to_ecs();
        assert_eq!(list[0]["integerValue"], 2048);
        assert_eq!(list[2]["stringSetValue"], json!(["22", "8080"]));
        assert_eq!(Resources::from_ecs(list.as_array().unwrap()), r);
        let long = json!([{"name": "MEMORY", "type": "LONG", "longValue": 4096}]);
        assert_eq!(Resources::from_ecs(long.as_array().unwrap()).memory, 4096);
    }
}
