//! The ECS operations an agent calls, with the members Berth's agent sends and reads. Member
//! names and shapes are the ECS model's; answers may carry more members than are read here.

use berth_model::resources::Resources;
use berth_model::task::TaskStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::operation;
use crate::status::{ContainerStatus, Health, task_status};

/// A container instance attribute (`ecs.availability-zone`, custom ones, capabilities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        Attribute { name: name.into(), value: value.map(str::to_string) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub agent_version: String,
    pub agent_hash: String,
    /// ECS's name for the container runtime's version; Berth sends its driver's name.
    pub docker_version: String,
}

/// `RegisterContainerInstance`: joins this machine to a cluster, or re-registers the instance
/// it was (`container_instance_arn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstance {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(with = "resources")]
    pub total_resources: Resources,
    pub version_info: VersionInfo,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstanceResponse {
    pub container_instance: RegisteredInstance,
}

/// The part of the registered container instance the agent keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredInstance {
    pub container_instance_arn: String,
}

operation!(Ecs, RegisterContainerInstance => RegisterContainerInstanceResponse);

/// A host port bound for a container port, or a range of host ports for a range of
/// container ports (`containerPortRange`), as ECS reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    pub protocol: String,
    /// `first-last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port_range: Option<String>,
}

impl NetworkBinding {
    pub fn port(bind_ip: &str, container_port: u16, host_port: u16, protocol: &str) -> NetworkBinding {
        NetworkBinding {
            bind_ip: bind_ip.to_string(),
            container_port: Some(container_port),
            host_port: Some(host_port),
            protocol: protocol.to_string(),
            container_port_range: None,
            host_port_range: None,
        }
    }
}

/// One container's state inside a [`SubmitTaskStateChange`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    pub container_name: String,
    pub status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    /// A Berth extension of the model: present when the container has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<Health>,
}

/// `SubmitTaskStateChange`: the agent's report of a task's status (and its first report, the
/// claim: PENDING with nothing else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTaskStateChange {
    pub cluster: String,
    pub task: String,
    #[serde(with = "task_status")]
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStateChange>,
    /// A Berth extension of the model: the task's health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<Health>,
    /// Epoch seconds, as AWS JSON timestamps are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
}

impl SubmitTaskStateChange {
    /// The claim: "this agent runs the task", before anything of it runs.
    pub fn claim(cluster: &str, task: &str) -> Self {
        SubmitTaskStateChange {
            cluster: cluster.into(),
            task: task.into(),
            status: TaskStatus::Pending,
            reason: None,
            containers: Vec::new(),
            health_status: None,
            pull_started_at: None,
            pull_stopped_at: None,
            execution_stopped_at: None,
        }
    }
}

/// What both state-change operations answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Acknowledgement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgment: Option<String>,
}

operation!(Ecs, SubmitTaskStateChange => Acknowledgement);

/// `SubmitContainerStateChange`: one container's state on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitContainerStateChange {
    pub cluster: String,
    pub task: String,
    pub container_name: String,
    pub status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bindings: Vec<NetworkBinding>,
}

operation!(Ecs, SubmitContainerStateChange => Acknowledgement);

/// `DiscoverPollEndpoint`: where the agent's channels are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointResponse {
    pub endpoint: String,
    #[serde(default)]
    pub telemetry_endpoint: Option<String>,
    #[serde(default)]
    pub service_connect_endpoint: Option<String>,
}

operation!(Ecs, DiscoverPollEndpoint => DiscoverPollEndpointResponse);

/// `DescribeTaskDefinition`: the definition of a task the agent was assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinition {
    pub task_definition: String,
}

/// The definition stays the ECS-shaped JSON object: the agent's `spec` module reads the
/// container definitions from it member by member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionResponse {
    pub task_definition: Map<String, Value>,
}

operation!(Ecs, DescribeTaskDefinition => DescribeTaskDefinitionResponse);

/// Serde for [`Resources`] as the ECS `Resource` list (CPU, MEMORY, PORTS, PORTS_UDP).
mod resources {
    use super::*;

    pub fn serialize<S: serde::Serializer>(r: &Resources, s: S) -> Result<S::Ok, S::Error> {
        r.to_ecs().serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Resources, D::Error> {
        Ok(Resources::from_ecs(&Vec::<Value>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_carries_the_ecs_member_names() {
        let report = SubmitTaskStateChange {
            containers: vec![ContainerStateChange {
                container_name: "web".into(),
                status: ContainerStatus::Stopped,
                runtime_id: Some("abc".into()),
                exit_code: Some(3),
                reason: None,
                network_bindings: vec![NetworkBinding::port("0.0.0.0", 80, 8080, "tcp")],
                health_status: Some(Health::Healthy),
            }],
            execution_stopped_at: Some(12.5),
            ..SubmitTaskStateChange::claim("default", "arn:task")
        };
        let wire = serde_json::to_value(&report).unwrap();
        assert_eq!(
            wire,
            json!({"cluster": "default", "task": "arn:task", "status": "PENDING", "executionStoppedAt": 12.5,
                "containers": [{"containerName": "web", "status": "STOPPED", "runtimeId": "abc", "exitCode": 3,
                    "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
                    "healthStatus": "HEALTHY"}]})
        );
        assert_eq!(serde_json::from_value::<SubmitTaskStateChange>(wire).unwrap(), report);
        assert_eq!(
            serde_json::to_value(SubmitTaskStateChange::claim("c", "t")).unwrap(),
            json!({"cluster": "c", "task": "t", "status": "PENDING"})
        );
    }

    #[test]
    fn registration_sends_resources_as_an_ecs_list_and_reads_the_arn_back() {
        let mut total = Resources { cpu: 2048, memory: 1000, ..Default::default() };
        total.tcp_ports.insert(22);
        let request = RegisterContainerInstance {
            cluster: "default".into(),
            container_instance_arn: None,
            total_resources: total.clone(),
            version_info: VersionInfo {
                agent_version: "1".into(),
                agent_hash: "h".into(),
                docker_version: "oci".into(),
            },
            attributes: vec![Attribute::new("ecs.os-type", Some("linux")), Attribute::new("cap", None)],
        };
        let wire = serde_json::to_value(&request).unwrap();
        assert!(wire.get("containerInstanceArn").is_none());
        assert_eq!(wire["totalResources"][0]["name"], "CPU");
        assert_eq!(wire["attributes"][1], json!({"name": "cap"}));
        assert_eq!(serde_json::from_value::<RegisterContainerInstance>(wire).unwrap().total_resources, total);
        let answer: RegisterContainerInstanceResponse = serde_json::from_value(
            json!({"containerInstance": {"containerInstanceArn": "arn:ci", "status": "ACTIVE", "attributes": []}}),
        )
        .unwrap();
        assert_eq!(answer.container_instance.container_instance_arn, "arn:ci");
    }
}
