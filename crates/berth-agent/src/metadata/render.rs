//! Task and container views as the endpoint's JSON, with AWS's field names and the documented
//! differences between the versions: version 3 has no `LaunchType`, `LogDriver`,
//! `LogOptions` or `ContainerARN`, and its `Networks` name only the mode and the addresses;
//! version 4 adds the awsvpc interface's index, MAC, subnet, DNS name and gateway. A member
//! AWS omits when unset (an exit code before the exit, a start time before the start, task
//! limits not given) is omitted here too. Pure.

use std::time::SystemTime;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::view::{ContainerView, PortView, TaskView};

/// Which version of the endpoint a path asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V3 => "V3",
            Version::V4 => "V4",
        }
    }
}

/// An RFC 3339 time in UTC with as many fraction digits as it needs, as Go writes them.
pub fn timestamp(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

fn put_time(out: &mut Map<String, Value>, key: &str, t: Option<SystemTime>) {
    if let Some(t) = t {
        out.insert(key.into(), json!(timestamp(t)));
    }
}

/// A number of vCPUs from cpu units: whole numbers as integers (`1`, not `1.0`).
fn vcpus(units: u64) -> Value {
    if units.is_multiple_of(1024) { json!(units / 1024) } else { json!(units as f64 / 1024.0) }
}

/// `${URI}/task`: the task and all of its containers.
pub fn task(view: &TaskView, version: Version) -> Value {
    let mut out = Map::new();
    out.insert("Cluster".into(), json!(view.cluster));
    out.insert("TaskARN".into(), json!(view.task_arn));
    out.insert("Family".into(), json!(view.family));
    out.insert("Revision".into(), json!(view.revision));
    out.insert("DesiredStatus".into(), json!(view.desired_status));
    out.insert("KnownStatus".into(), json!(view.known_status));
    let mut limits = Map::new();
    if let Some(cpu) = view.cpu {
        limits.insert("CPU".into(), vcpus(cpu));
    }
    if let Some(memory) = view.memory {
        limits.insert("Memory".into(), json!(memory));
    }
    if !limits.is_empty() {
        out.insert("Limits".into(), Value::Object(limits));
    }
    put_time(&mut out, "PullStartedAt", view.pull_started_at);
    put_time(&mut out, "PullStoppedAt", view.pull_stopped_at);
    put_time(&mut out, "ExecutionStoppedAt", view.execution_stopped_at);
    if let Some(zone) = &view.availability_zone {
        out.insert("AvailabilityZone".into(), json!(zone));
    }
    if let (Version::V4, Some(launch_type)) = (version, &view.launch_type) {
        out.insert("LaunchType".into(), json!(launch_type));
    }
    let containers: Vec<Value> = view.containers.iter().map(|c| container(view, c, version)).collect();
    out.insert("Containers".into(), Value::Array(containers));
    Value::Object(out)
}

/// `${URI}`: one container.
pub fn container(task: &TaskView, c: &ContainerView, version: Version) -> Value {
    let mut out = Map::new();
    out.insert("DockerId".into(), json!(c.docker_id.as_deref().unwrap_or_default()));
    out.insert("Name".into(), json!(c.name));
    out.insert("DockerName".into(), json!(c.docker_name));
    out.insert("Image".into(), json!(c.image));
    out.insert("ImageID".into(), json!(c.image_id.as_deref().unwrap_or_default()));
    if !c.ports.is_empty() {
        out.insert("Ports".into(), Value::Array(c.ports.iter().map(port).collect()));
    }
    if !c.labels.is_empty() {
        out.insert("Labels".into(), json!(c.labels));
    }
    out.insert("DesiredStatus".into(), json!(c.desired_status));
    out.insert("KnownStatus".into(), json!(c.known_status));
    if let Some(code) = c.exit_code {
        out.insert("ExitCode".into(), json!(code));
    }
    out.insert("Limits".into(), json!({"CPU": c.cpu, "Memory": c.memory}));
    put_time(&mut out, "CreatedAt", c.created_at);
    put_time(&mut out, "StartedAt", c.started_at);
    put_time(&mut out, "FinishedAt", c.finished_at);
    out.insert("Type".into(), json!("NORMAL"));
    if version == Version::V4 {
        if let Some(driver) = &c.log_driver {
            out.insert("LogDriver".into(), json!(driver));
            out.insert("LogOptions".into(), Value::Object(c.log_options.clone()));
        }
        if let Some(arn) = &c.container_arn {
            out.insert("ContainerARN".into(), json!(arn));
        }
        if let Some(count) = c.restart_count {
            out.insert("RestartCount".into(), json!(count));
        }
    }
    if let Some(network) = network(task, c, version) {
        out.insert("Networks".into(), json!([network]));
    }
    Value::Object(out)
}

fn port(p: &PortView) -> Value {
    let mut out = json!({"ContainerPort": p.container_port, "Protocol": p.protocol, "HostPort": p.host_port});
    if let Some(ip) = &p.host_ip {
        out["HostIp"] = json!(ip);
    }
    out
}

/// The container's one network, or `None` without one (`none`).
fn network(task: &TaskView, c: &ContainerView, version: Version) -> Option<Value> {
    let mut out = Map::new();
    out.insert("NetworkMode".into(), json!(c.network_mode));
    match c.network_mode.as_str() {
        "none" => return None,
        "awsvpc" => {
            let eni = task.eni.as_ref()?;
            out.insert("IPv4Addresses".into(), json!([eni.private_ip]));
            if version == Version::V4 {
                let prefix = eni.subnet_cidr.split_once('/').map_or("", |(_, p)| p);
                out.insert("AttachmentIndex".into(), json!(0));
                out.insert("MACAddress".into(), json!(eni.mac));
                out.insert("IPv4SubnetCIDRBlock".into(), json!(eni.subnet_cidr));
                out.insert("PrivateDNSName".into(), json!(eni.private_dns_name));
                out.insert("SubnetGatewayIpv4Address".into(), json!(format!("{}/{prefix}", eni.gateway)));
            }
        }
        _ => {
            if let Some(address) = c.address {
                out.insert("IPv4Addresses".into(), json!([address]));
            }
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::metadata::tests::{bridge_task, vpc_task};

    #[test]
    fn a_v4_task_has_awss_members_in_awss_shape() {
        let view = vpc_task();
        let t = task(&view, Version::V4);
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Cluster",
                "TaskARN",
                "Family",
                "Revision",
                "DesiredStatus",
                "KnownStatus",
                "Limits",
                "PullStartedAt",
                "PullStoppedAt",
                "AvailabilityZone",
                "LaunchType",
                "Containers"
            ]
        );
        assert_eq!(t["Limits"], json!({"CPU": 0.25, "Memory": 512}));
        assert_eq!((t["Family"].as_str(), t["Revision"].as_str()), (Some("web"), Some("3")));
        assert_eq!(t["LaunchType"], "FARGATE");
        assert_eq!(t["PullStartedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(t["PullStoppedAt"], "2023-11-14T22:13:20.5Z");
        let c = &t["Containers"][0];
        assert_eq!(
            c["Networks"],
            json!([{
            "NetworkMode": "awsvpc", "IPv4Addresses": ["172.31.0.5"], "AttachmentIndex": 0,
            "MACAddress": "0a:00:ac:1f:00:05", "IPv4SubnetCIDRBlock": "172.31.0.0/20",
            "PrivateDNSName": "ip-172-31-0-5.ec2.internal", "SubnetGatewayIpv4Address": "172.31.0.1/20"}])
        );
        assert_eq!(c["Limits"], json!({"CPU": 99, "Memory": 100}));
        assert_eq!((c["Type"].as_str(), c["KnownStatus"].as_str()), (Some("NORMAL"), Some("RUNNING")));
        assert_eq!(c["ContainerARN"], "arn:aws:ecs:us-east-1:000000000000:container/default/t1/c-1");
        assert_eq!(c["LogDriver"], "awslogs");
        assert_eq!(c["LogOptions"]["awslogs-group"], "/ecs/web");
        assert_eq!(c["Ports"], json!([{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 80}]));
        assert!(c.get("ExitCode").is_none() && c.get("FinishedAt").is_none(), "not exited yet");
        assert_eq!(c["RestartCount"], 2, "a restart policy's count");
        assert_eq!(container(&view, &view.containers[0], Version::V4), *c, "${{URI}} is the task's entry");
    }

    #[test]
    fn v3_leaves_out_what_v4_added() {
        let view = vpc_task();
        let t = task(&view, Version::V3);
        assert!(t.get("LaunchType").is_none());
        let c = &t["Containers"][0];
        for member in ["LogDriver", "LogOptions", "ContainerARN", "RestartCount"] {
            assert!(c.get(member).is_none(), "{member} in v3: {c}");
        }
        assert_eq!(c["Networks"], json!([{"NetworkMode": "awsvpc", "IPv4Addresses": ["172.31.0.5"]}]));
        assert_eq!(t["Cluster"], "default");
    }

    #[test]
    fn bridge_host_and_none_networks_and_optional_members() {
        let mut view = bridge_task();
        view.cpu = Some(2048);
        view.memory = None;
        let t = task(&view, Version::V4);
        assert_eq!(t["Limits"], json!({"CPU": 2}), "whole vCPUs are integers, an unset member is left out");
        assert!(t.get("LaunchType").is_none(), "not known: left out");
        let c = &t["Containers"][0];
        assert_eq!(c["Networks"], json!([{"NetworkMode": "bridge", "IPv4Addresses": ["10.88.0.2"]}]));
        assert_eq!(
            c["Ports"],
            json!([{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 32768, "HostIp": "0.0.0.0"}])
        );
        assert_eq!(c["ExitCode"], 3);
        assert_eq!(c["FinishedAt"], timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_010)));
        assert!(c.get("LogDriver").is_none() && c.get("ContainerARN").is_none());
        assert!(c.get("RestartCount").is_none(), "no restart policy, no count");
        view.cpu = None;
        view.containers[0].network_mode = "host".into();
        view.containers[0].address = None;
        let t = task(&view, Version::V4);
        assert!(t.get("Limits").is_none());
        assert_eq!(t["Containers"][0]["Networks"], json!([{"NetworkMode": "host"}]));
        view.containers[0].network_mode = "none".into();
        assert!(task(&view, Version::V4)["Containers"][0].get("Networks").is_none());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_nanos(1_601_597_707_620_912_337)),
            "2020-10-02T00:15:07.620912337Z"
        );
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
