//! The messages against the AWS service models the API validates with (the botocore models
//! distilled into `crates/berth-api/models/`): every member a message sends is a member of the
//! operation's input shape, with a value of the shape's type.

use berth_model::resources::Resources;
use berth_model::task::TaskStatus;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ecr::GetAuthorizationToken;
use crate::ecs::*;
use crate::logs::{CreateLogGroup, CreateLogStream, InputLogEvent, PutLogEvents};
use crate::{ContainerStatus, Health, Operation, Service};

const ECS_MODEL: &str = include_str!("../../berth-api/models/ecs.json");
const ECR_MODEL: &str = include_str!("../../berth-api/models/ecr.json");
const LOGS_MODEL: &str = include_str!("../../berth-api/models/logs.json");
const SD_MODEL: &str = include_str!("../../berth-api/models/servicediscovery.json");

/// Panics with the path of the first member `value` has that `shape` does not allow.
fn conforms(model: &Value, shape: &str, value: &Value, path: &str) {
    let s = &model["shapes"][shape];
    let kind = s["type"].as_str().unwrap_or_else(|| panic!("{path}: the model has no shape {shape}"));
    match kind {
        "structure" => {
            let object = value.as_object().unwrap_or_else(|| panic!("{path}: {shape} is an object, got {value}"));
            for (name, member) in object {
                let target = s["members"][name]["shape"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}.{name} is not a member of {shape}"));
                conforms(model, target, member, &format!("{path}.{name}"));
            }
        }
        "list" => {
            let items = value.as_array().unwrap_or_else(|| panic!("{path}: {shape} is a list, got {value}"));
            let target = s["member"]["shape"].as_str().expect("a list names its member shape");
            for (i, item) in items.iter().enumerate() {
                conforms(model, target, item, &format!("{path}[{i}]"));
            }
        }
        "string" => {
            let text = value.as_str().unwrap_or_else(|| panic!("{path}: {shape} is a string, got {value}"));
            if let Some(allowed) = s["enum"].as_array() {
                assert!(allowed.iter().any(|a| a == text), "{path}: {text} is not one of {shape}'s values");
            }
        }
        "integer" | "long" => assert!(value.is_i64(), "{path}: {shape} is an integer, got {value}"),
        "double" | "float" | "timestamp" => assert!(value.is_number(), "{path}: {shape} is a number, got {value}"),
        "boolean" => assert!(value.is_boolean(), "{path}: {shape} is a boolean, got {value}"),
        other => panic!("{path}: no check for {other} shapes"),
    }
}

fn check<O: Operation + Serialize>(request: &O) {
    let model: Value = serde_json::from_str(match O::SERVICE {
        Service::Ecs => ECS_MODEL,
        Service::Ecr => ECR_MODEL,
        Service::Logs => LOGS_MODEL,
        Service::ServiceDiscovery => SD_MODEL,
    })
    .expect("the model is JSON");
    let input = model["operations"][O::NAME]["input"]
        .as_str()
        .unwrap_or_else(|| panic!("the model has no operation {}", O::NAME));
    conforms(&model, input, &serde_json::to_value(request).unwrap(), O::NAME);
}

#[test]
fn every_message_conforms_to_its_operation_in_the_service_model() {
    let mut resources = Resources { cpu: 1024, memory: 512, ..Default::default() };
    resources.tcp_ports.insert(22);
    check(&RegisterContainerInstance {
        cluster: "default".into(),
        container_instance_arn: Some("arn:ci".into()),
        total_resources: resources,
        version_info: VersionInfo {
            agent_version: "1".into(),
            agent_hash: "h".into(),
            docker_version: "docker".into(),
        },
        attributes: vec![Attribute::new("a", Some("b")), Attribute::new("c", None)],
    });
    check(&crate::connect::DiscoverInstances {
        namespace_name: "internal.app".into(),
        service_name: "web".into(),
        max_results: Some(1000),
        health_status: Some("HEALTHY_OR_ELSE_ALL".into()),
    });
    let binding = NetworkBinding::port("0.0.0.0", 80, 8080, "tcp");
    let range = NetworkBinding {
        container_port: None,
        host_port: None,
        container_port_range: Some("8000-8002".into()),
        host_port_range: Some("40000-40002".into()),
        ..NetworkBinding::port("::", 0, 0, "udp")
    };
    check(&SubmitTaskStateChange {
        reason: Some("why".into()),
        containers: vec![ContainerStateChange {
            container_name: "web".into(),
            status: ContainerStatus::Stopped,
            runtime_id: Some("id".into()),
            exit_code: Some(1),
            reason: Some("oom".into()),
            network_bindings: vec![binding.clone(), range],
            health_status: Some(Health::Unhealthy),
        }],
        health_status: Some(Health::Healthy),
        pull_started_at: Some(1.5),
        pull_stopped_at: Some(2.5),
        execution_stopped_at: Some(3.5),
        status: TaskStatus::Stopped,
        ..SubmitTaskStateChange::claim("default", "arn:task")
    });
    check(&SubmitContainerStateChange {
        cluster: "default".into(),
        task: "arn:task".into(),
        container_name: "web".into(),
        status: ContainerStatus::Running,
        runtime_id: Some("id".into()),
        exit_code: Some(0),
        reason: Some("r".into()),
        network_bindings: vec![binding],
    });
    check(&DiscoverPollEndpoint { cluster: Some("default".into()), container_instance: Some("arn:ci".into()) });
    check(&DescribeTaskDefinition { task_definition: "web:1".into() });
    check(&GetAuthorizationToken { registry_ids: Some(vec!["000000000000".into()]) });
    check(&CreateLogGroup { log_group_name: "/ecs/web".into() });
    check(&CreateLogStream { log_group_name: "/ecs/web".into(), log_stream_name: "web/web/1".into() });
    check(&PutLogEvents {
        log_group_name: "/ecs/web".into(),
        log_stream_name: "web/web/1".into(),
        log_events: vec![InputLogEvent { timestamp: 1, message: "m".into() }],
    });
}

#[test]
fn a_member_the_model_lacks_is_caught() {
    let model: Value = serde_json::from_str(ECS_MODEL).unwrap();
    let bad = json!({"task": "t", "restarts": 2});
    let caught = std::panic::catch_unwind(|| conforms(&model, "SubmitTaskStateChangeRequest", &bad, "x"));
    assert!(caught.is_err());
}
