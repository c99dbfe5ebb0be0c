//! The client against a small server on loopback that verifies every signature with
//! `berth-sigv4` and answers as the control plane does.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use berth_agent_protocol::ecs::SubmitTaskStateChange;
use berth_model::task::TaskStatus;
use berth_sigv4::KeyRing;
use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct Seen {
    requests: Vec<(String, String, Value)>,
}

async fn answer(
    State(seen): State<Arc<Mutex<Seen>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let keys = KeyRing::new([("AK".to_string(), "SK".to_string())]);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let service =
        if headers.get("x-amz-target").is_some_and(|t| t.to_str().unwrap().starts_with("AmazonEC2ContainerRegistry")) {
            "ecr"
        } else {
            "ecs"
        };
    if let Err(e) = berth_sigv4::verify(&keys, service, method.as_str(), path, &headers, &body, SystemTime::now()) {
        return (StatusCode::from_u16(e.status).unwrap(), json!({"__type": e.code, "message": e.message}).to_string());
    }
    let target = headers.get("x-amz-target").map(|t| t.to_str().unwrap().to_string()).unwrap_or_default();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().requests.push((target.clone(), path.to_string(), input.clone()));
    if path == berth_agent_protocol::task_states::PATH {
        let tasks: Vec<&str> =
            input["reports"].as_array().unwrap().iter().map(|r| r["task"].as_str().unwrap()).collect();
        if tasks.first() == Some(&"slow") {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let results: Vec<Value> = tasks
            .iter()
            .map(|t| match *t {
                "bad" => json!({"error": {"status": 400, "__type": "InvalidParameterException", "message": "no"}}),
                _ => json!({}),
            })
            .collect();
        return (StatusCode::OK, json!({ "results": results }).to_string());
    }
    match (method.as_str(), target.rsplit('.').next().unwrap_or_default()) {
        ("GET", _) if path.contains("containerInstance=gone") => (
            StatusCode::BAD_REQUEST,
            json!({"__type": "InactiveInstanceException", "message": "The container instance is deregistered."})
                .to_string(),
        ),
        ("GET", _) => (
            StatusCode::OK,
            json!({"revision": 5, "tasks": [{"taskArn": "arn:aws:ecs:r:a:task/default/t1",
                "taskDefinitionArn": "arn:td", "desiredStatus": "RUNNING", "lastStatus": "PROVISIONING"}]})
            .to_string(),
        ),
        (_, "SubmitTaskStateChange") => (StatusCode::OK, json!({"acknowledgment": "ACK"}).to_string()),
        (_, "GetAuthorizationToken") => {
            (StatusCode::OK, json!({"authorizationData": [{"authorizationToken": "QVdTOnBhc3N3b3Jk"}]}).to_string())
        }
        (_, "Throttled") => (StatusCode::BAD_REQUEST, json!({"__type": "ThrottlingException"}).to_string()),
        (_, "Broken") => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".to_string()),
        _ => (StatusCode::BAD_REQUEST, json!({"__type": "ClientException", "message": "no"}).to_string()),
    }
}

async fn server() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new().fallback(answer).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn typed_calls_are_signed_and_answers_typed() {
    let (endpoint, seen) = server().await;
    let client = ApiClient::new(&endpoint, "AK", "SK", "us-east-1").unwrap();
    let ack = client.call(&SubmitTaskStateChange::claim("default", "arn:task")).await.unwrap();
    assert_eq!(ack.acknowledgment.as_deref(), Some("ACK"));
    let query = AssignmentsQuery {
        cluster: "default".into(),
        container_instance: "i1".into(),
        since: 0,
        wait: Duration::from_secs(1),
        changes: false,
    };
    let assigned = client.assignments(&query).await.unwrap();
    assert_eq!((assigned.revision, assigned.tasks[0].last_status), (5, TaskStatus::Provisioning));
    let requests = &seen.lock().unwrap().requests;
    assert_eq!(requests[0].0, "AmazonEC2ContainerServiceV20141113.SubmitTaskStateChange");
    assert_eq!(requests[0].2, json!({"cluster": "default", "task": "arn:task", "status": "PENDING"}));
    assert!(requests[1].1.starts_with("/berth/v1/assignments?cluster=default&containerInstance=i1"));
}

#[tokio::test]
async fn errors_say_what_they_are_and_whether_to_retry() {
    let (endpoint, _) = server().await;
    let client = ApiClient::new(&endpoint, "AK", "SK", "us-east-1").unwrap();
    let query = AssignmentsQuery {
        cluster: "default".into(),
        container_instance: "gone".into(),
        since: 0,
        wait: Duration::ZERO,
        changes: false,
    };
    let gone = client.assignments(&query).await.unwrap_err();
    assert_eq!(gone.error_code(), Some(&ErrorCode::InactiveInstance));
    assert!(!gone.is_retryable());
    let refused = client.ecs("Nope", json!({})).await.unwrap_err();
    assert_eq!((refused.code(), refused.is_retryable()), (Some("ClientException"), false));
    assert!(client.ecs("Throttled", json!({})).await.unwrap_err().is_retryable());
    let broken = client.ecs("Broken", json!({})).await.unwrap_err();
    assert!(matches!(broken, ClientError::Transport(ref m) if m.contains("HTTP 502")), "{broken}");
    let wrong_key = ApiClient::new(&endpoint, "AK", "WRONG", "us-east-1").unwrap();
    let e = wrong_key.ecs("Anything", json!({})).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidSignatureException"));
    let nobody = ApiClient::new("http://127.0.0.1:9", "AK", "SK", "us-east-1").unwrap();
    assert!(matches!(nobody.ecs("X", json!({})).await.unwrap_err(), ClientError::Transport(_)));
    assert!(ApiClient::new("https://x", "a", "b", "c").is_err());
}

#[tokio::test]
async fn registry_logins_decode_the_ecr_token_for_the_own_registry_only() {
    let (endpoint, _) = server().await;
    let client = ApiClient::new(&endpoint, "AK", "SK", "us-east-1").unwrap();
    let own = format!("{}/repo:1", client.host());
    assert_eq!(client.registry_auth(&own).await.unwrap(), Some(("AWS".into(), "password".into())));
    assert_eq!(client.registry_auth("docker.io/library/busybox").await.unwrap(), None);
    assert_eq!(client.registry_auth("busybox").await.unwrap(), None);
    assert!(decode_token("not base64!").is_err());
}

/// With several servers, calls stay on one while it answers (even with a client error) and
/// move to the next when it cannot be reached or fails; a login works for any server's images.
#[tokio::test]
async fn calls_move_to_the_next_server_when_one_fails() {
    let (first, first_seen) = server().await;
    let (second, second_seen) = server().await;
    let dead = "http://127.0.0.1:9".to_string();
    let client = ApiClient::with_servers(&[dead, first.clone(), second.clone()], "AK", "SK", "us-east-1").unwrap();
    assert!(matches!(client.ecs("X", json!({})).await.unwrap_err(), ClientError::Transport(_)));
    assert_eq!(client.endpoint(), first, "after the dead server, the next");
    client.call(&SubmitTaskStateChange::claim("default", "arn:task")).await.unwrap();
    assert_eq!(client.ecs("Nope", json!({})).await.unwrap_err().code(), Some("ClientException"));
    assert_eq!(client.endpoint(), first, "a client error is no reason to move");
    assert!(client.ecs("Broken", json!({})).await.is_err());
    assert_eq!(client.endpoint(), second, "a 5xx is");
    client.call(&SubmitTaskStateChange::claim("default", "arn:task")).await.unwrap();
    assert_eq!(first_seen.lock().unwrap().requests.len(), 3);
    assert_eq!(second_seen.lock().unwrap().requests.len(), 1);
    let first_host = first.trim_start_matches("http://");
    assert!(client.registry_auth(&format!("{first_host}/repo:1")).await.unwrap().is_some());
    assert!(ApiClient::with_servers(&[], "a", "b", "c").is_err());
    assert!(ApiClient::with_servers(&["http://".into()], "a", "b", "c").is_err());
}

#[tokio::test]
async fn task_state_changes_waiting_while_a_request_is_in_flight_go_together() {
    let (endpoint, seen) = server().await;
    let client = Arc::new(ApiClient::new(&endpoint, "AK", "SK", "us-east-1").unwrap());
    let reports = TaskStateReports::start(client);
    let report = |task: &str| SubmitTaskStateChange::claim("default", task);
    // The first goes alone and is answered slowly; three more come in meanwhile.
    let (slow, rest) = tokio::join!(reports.submit(report("slow")), async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tokio::join!(reports.submit(report("t1")), reports.submit(report("bad")), reports.submit(report("t2")))
    });
    assert!(slow.is_ok() && rest.0.is_ok() && rest.2.is_ok());
    let refused = rest.1.unwrap_err();
    assert_eq!(refused.code(), Some("InvalidParameterException"));
    assert!(!refused.is_retryable());
    let batches: Vec<Vec<String>> = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(_, _, body)| {
            body["reports"].as_array().unwrap().iter().map(|r| r["task"].as_str().unwrap().into()).collect()
        })
        .collect();
    assert_eq!(batches, [vec!["slow"], vec!["t1", "bad", "t2"]]);
}
