//! A runner on fakes publishes what the task metadata endpoint serves: its containers get
//! their URIs, the endpoint answers them with the task as it runs, and forgets it once its
//! containers are removed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use berth_agent_protocol::DesiredStatus;
use berth_agent_protocol::assignments::AssignedContainer;
use berth_model::task::TaskStatus;
use serde_json::{Value, json};

use super::super::tests::{DEFINITION, Harness, TASK, assigned, container, harness, within};
use super::super::{Desired, spawn};
use crate::metadata::server::Server;
use crate::metadata::tests::FakeReadings;
use crate::metadata::{ENV_V3, ENV_V4};

/// The endpoint id in the container's `ECS_CONTAINER_METADATA_URI_V4` (its v3 URI has the same).
fn endpoint_id(h: &Harness, name: &str) -> String {
    let env = h.runtime.spec(name).expect("created").env;
    let uri = |var: &str| env.iter().find_map(|e| e.strip_prefix(&format!("{var}="))).map(str::to_string);
    let v4 = uri(ENV_V4).expect("the v4 URI");
    let id = v4.strip_prefix("http://169.254.170.2/v4/").expect("AWS's address and path").to_string();
    assert_eq!(uri(ENV_V3), Some(format!("http://169.254.170.2/v3/{id}")));
    id
}

fn get(server: &Server, path: &str, source: Ipv4Addr) -> (StatusCode, Value) {
    server.answer(path, IpAddr::V4(source))
}

#[tokio::test(start_paused = true)]
async fn a_running_task_is_served_to_its_own_containers_until_it_is_removed() {
    let h = harness(Duration::from_secs(60));
    h.control.define(
        DEFINITION,
        json!({"taskDefinitionArn": DEFINITION, "family": "app", "revision": 4, "cpu": "512", "memory": "1024",
               "containerDefinitions": [
                   container("web", json!({"cpu": 99, "portMappings": [{"containerPort": 80, "hostPort": 8080}],
                       "restartPolicy": {"enabled": true},
                       "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}}})),
                   container("quiet", json!({"essential": false, "disableNetworking": true}))]}),
    );
    let mut task = assigned(TASK, TaskStatus::Provisioning, DesiredStatus::Running);
    task.containers = vec![AssignedContainer { name: "web".into(), container_arn: Some("arn:c:web".into()) }];
    let runner = spawn(h.shared.clone(), task, Vec::new());
    h.reported(TaskStatus::Running).await;

    let id = endpoint_id(&h, "web");
    assert!(
        h.runtime.spec("quiet").unwrap().env.iter().all(|e| !e.starts_with("ECS_CONTAINER_METADATA")),
        "no network, no URIs"
    );
    let observed = h.runtime.container("web").unwrap();
    let address = observed.address.expect("a bridge container's address");
    let server = Server::new(h.shared.metadata.clone(), Arc::new(FakeReadings::default()));

    let (status, t) = get(&server, &format!("/v4/{id}/task"), address);
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["TaskARN"].as_str(), t["Cluster"].as_str()), (Some(TASK), Some("default")));
    assert_eq!((t["Family"].as_str(), t["Revision"].as_str()), (Some("app"), Some("4")));
    assert_eq!((t["DesiredStatus"].as_str(), t["KnownStatus"].as_str()), (Some("RUNNING"), Some("RUNNING")));
    assert_eq!(t["Limits"], json!({"CPU": 0.5, "Memory": 1024}));
    assert_eq!((t["LaunchType"].as_str(), t["AvailabilityZone"].as_str()), (Some("EC2"), Some("us-east-1a")));
    assert!(t["PullStartedAt"].as_str().unwrap().starts_with("2023-11-14T22:13:20"), "{t}");
    let web = &t["Containers"][0];
    assert_eq!((web["Name"].as_str(), web["DockerId"].as_str()), (Some("web"), Some(observed.id.as_str())));
    assert_eq!((web["DockerName"].as_str(), web["ImageID"].as_str()), (Some("berth-t1-web"), Some("sha256:busybox")));
    assert_eq!(web["Limits"], json!({"CPU": 99, "Memory": 32}));
    assert_eq!(web["Networks"], json!([{"NetworkMode": "bridge", "IPv4Addresses": [address.to_string()]}]));
    assert_eq!(web["Ports"], json!([{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 8080, "HostIp": "0.0.0.0"}]));
    assert_eq!((web["LogDriver"].as_str(), web["ContainerARN"].as_str()), (Some("json-file"), Some("arn:c:web")));
    assert!(web["CreatedAt"].is_string() && web["StartedAt"].is_string() && web.get("FinishedAt").is_none(), "{web}");
    assert_eq!(web["RestartCount"], 0, "a restart policy, not restarted yet");
    assert_eq!(t["Containers"][1]["Name"], "quiet");
    assert!(t["Containers"][1].get("RestartCount").is_none());
    assert!(t["Containers"][1].get("Networks").is_none());

    let (status, own) = get(&server, &format!("/v4/{id}"), address);
    assert_eq!((status, &own), (StatusCode::OK, web));
    let (status, stats) = get(&server, &format!("/v4/{id}/stats"), address);
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["id"].as_str(), Some(observed.id.as_str()));
    assert_eq!(get(&server, &format!("/v4/{id}/task"), Ipv4Addr::new(10, 88, 0, 200)).0, StatusCode::FORBIDDEN);

    runner.desired.send_replace(Desired::Stopped);
    let stopped = h.reported(TaskStatus::Stopped).await;
    let (status, t) = get(&server, &format!("/v4/{id}/task"), address);
    assert_eq!(
        (status, t["KnownStatus"].as_str()),
        (StatusCode::OK, Some("STOPPED")),
        "served until removed: {stopped:?}"
    );
    assert_eq!(t["Containers"][0]["ExitCode"], 143);
    assert!(t["ExecutionStoppedAt"].is_string() && t["Containers"][0]["FinishedAt"].is_string(), "{t}");
    within(runner.handle).await.unwrap();
    assert_eq!(get(&server, &format!("/v4/{id}"), address).0, StatusCode::NOT_FOUND, "the removed task is forgotten");
}
