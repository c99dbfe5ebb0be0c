//! Launch types and what the FARGATE one means: where a task's capacity comes from, the
//! platform a Fargate task reports, and the attribute by which a container instance lends
//! its capacity to Fargate.
//!
//! Berth's Fargate capacity is the machines whose agents lend it (`berth agent --fargate`,
//! and the machine of `berth up`): a FARGATE task is placed on one of them, but, as on AWS,
//! it names no container instance.

use serde_json::Value;

use crate::error::ModelError;

/// The attribute a container instance registers with when its agent lends its capacity to
/// Fargate (a Berth attribute; shown in DescribeContainerInstances).
pub const FARGATE_ATTRIBUTE: &str = "berth.capacity.fargate";

/// The attribute whose value is the block of public addresses a container instance's agent
/// gives to FARGATE tasks with `assignPublicIp: ENABLED` (`--public-cidr`): a task asking for
/// one is placed only on an instance with it.
pub const PUBLIC_POOL_ATTRIBUTE: &str = "berth.public-ipv4-pool";

/// The platform version a FARGATE task runs on when `LATEST` (or nothing) is asked for.
pub const PLATFORM_VERSION: &str = "1.4.0";

/// Where a task's capacity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LaunchType {
    /// A container instance of the task's cluster.
    #[default]
    Ec2,
    /// Capacity Berth manages; the task names no container instance.
    Fargate,
}

impl LaunchType {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchType::Ec2 => "EC2",
            LaunchType::Fargate => "FARGATE",
        }
    }

    /// A model value Berth runs; `EXTERNAL` and unknown values are `None`.
    pub fn parse(s: &str) -> Option<LaunchType> {
        match s {
            "EC2" => Some(LaunchType::Ec2),
            "FARGATE" => Some(LaunchType::Fargate),
            _ => None,
        }
    }
}

/// The platform version a FARGATE task or service asks for (`platformVersion`), resolved:
/// `LATEST` and nothing are [`PLATFORM_VERSION`].
pub fn platform_version(asked: Option<&str>) -> Result<&'static str, ModelError> {
    match asked {
        None | Some("LATEST") => Ok(PLATFORM_VERSION),
        Some(PLATFORM_VERSION) => Ok(PLATFORM_VERSION),
        Some(other) => Err(ModelError::invalid(format!(
            "The specified platform version: {other} does not exist. Berth runs Fargate platform version {PLATFORM_VERSION} (or LATEST)."
        ))),
    }
}

/// Fargate's rules for containers and volumes, beyond network mode and task size: no
/// privileged container, no host-path or Docker volumes. The first rule broken, in ECS's
/// words (a `ClientException` at registration when FARGATE is required).
pub fn fargate_violation(definition: &serde_json::Map<String, Value>) -> Option<String> {
    let containers = definition.get("containerDefinitions").and_then(Value::as_array).into_iter().flatten();
    for c in containers {
        if c.get("privileged").and_then(Value::as_bool) == Some(true) {
            return Some(
                "Fargate does not support privileged containers: remove 'privileged' from the container definitions."
                    .into(),
            );
        }
    }
    for v in definition.get("volumes").and_then(Value::as_array).into_iter().flatten() {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if v.get("host").and_then(|h| h.get("sourcePath")).is_some_and(|p| !p.is_null()) {
            return Some(format!("Fargate does not support host volumes with a sourcePath (volume '{name}')."));
        }
        if v.get("dockerVolumeConfiguration").is_some_and(|d| !d.is_null()) {
            return Some(format!("Fargate does not support Docker volumes (volume '{name}')."));
        }
    }
    None
}

/// `ephemeralStorage.sizeInGiB` must be 21 to 200 (Fargate's range).
pub fn check_ephemeral_storage(definition: &serde_json::Map<String, Value>) -> Result<(), ModelError> {
    let Some(storage) = definition.get("ephemeralStorage").filter(|v| !v.is_null()) else { return Ok(()) };
    match storage.get("sizeInGiB").and_then(Value::as_i64) {
        Some(21..=200) => Ok(()),
        _ => Err(ModelError::client(
            "The ephemeral storage size (ephemeralStorage.sizeInGiB) must be between 21 and 200 GiB.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn launch_types_round_trip_and_others_are_not_run() {
        for t in [LaunchType::Ec2, LaunchType::Fargate] {
            assert_eq!(LaunchType::parse(t.as_str()), Some(t));
        }
        assert_eq!(LaunchType::parse("EXTERNAL"), None);
        assert_eq!(LaunchType::parse("fargate"), None);
    }

    #[test]
    fn ephemeral_storage_is_21_to_200_gib() {
        let def = |v: Value| json!({"ephemeralStorage": v}).as_object().unwrap().clone();
        assert!(check_ephemeral_storage(&serde_json::Map::new()).is_ok());
        assert!(check_ephemeral_storage(&def(json!({"sizeInGiB": 21}))).is_ok());
        assert!(check_ephemeral_storage(&def(json!({"sizeInGiB": 200}))).is_ok());
        for bad in [json!({"sizeInGiB": 20}), json!({"sizeInGiB": 201}), json!({})] {
            assert!(check_ephemeral_storage(&def(bad)).is_err());
        }
    }

    #[test]
    fn latest_is_the_one_platform_version() {
        assert_eq!(platform_version(None).unwrap(), "1.4.0");
        assert_eq!(platform_version(Some("LATEST")).unwrap(), "1.4.0");
        assert_eq!(platform_version(Some("1.4.0")).unwrap(), "1.4.0");
        assert!(platform_version(Some("1.3.0")).unwrap_err().to_string().contains("1.3.0 does not exist"));
    }

    #[test]
    fn privileged_containers_and_host_or_docker_volumes_break_fargate_rules() {
        let def = |extra: Value| {
            let mut d = json!({"containerDefinitions": [{"name": "a"}], "volumes": []});
            if let Some(o) = extra.as_object() {
                for (k, v) in o {
                    d[k] = v.clone();
                }
            }
            d.as_object().unwrap().clone()
        };
        assert_eq!(fargate_violation(&def(json!({}))), None);
        assert_eq!(fargate_violation(&def(json!({"volumes": [{"name": "scratch", "host": {}}]}))), None);
        let privileged = def(json!({"containerDefinitions": [{"name": "a", "privileged": true}]}));
        assert!(fargate_violation(&privileged).unwrap().contains("privileged"));
        let host = def(json!({"volumes": [{"name": "h", "host": {"sourcePath": "/tmp"}}]}));
        assert!(fargate_violation(&host).unwrap().contains("'h'"));
        let docker = def(json!({"volumes": [{"name": "d", "dockerVolumeConfiguration": {"scope": "task"}}]}));
        assert!(fargate_violation(&docker).unwrap().contains("Docker volumes"));
    }
}
