//! The service scheduler's effects, pass by pass, with agents played by hand (state reports
//! through SubmitTaskStateChange) and a clock moved by hand: launches placed and recorded,
//! completion and the steady-state event, a rolling update that stops old tasks only once
//! new ones are healthy, and passes repeated without new facts changing nothing.

use std::time::Duration;

use berth_control::scheduler::pass;
use serde_json::{Value, json};

use crate::testing::Harness;

async fn setup() -> Harness {
    let app = Harness::new();
    app.call("CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    for _ in 0..3 {
        let resources = json!([{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                               {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]);
        app.call("RegisterContainerInstance", json!({"totalResources": resources})).await.unwrap();
    }
    for image in ["one", "two"] {
        let def = json!({"family": "web", "containerDefinitions": [{"name": "c", "image": image, "memory": 128}]});
        app.call("RegisterTaskDefinition", def).await.unwrap();
    }
    app
}

async fn tasks(app: &Harness, desired: &str) -> Vec<Value> {
    let arns = app.call("ListTasks", json!({"serviceName": "web", "desiredStatus": desired})).await.unwrap();
    let arns = arns["taskArns"].as_array().unwrap().clone();
    if arns.is_empty() {
        return Vec::new();
    }
    app.call("DescribeTasks", json!({"tasks": arns})).await.unwrap()["tasks"].as_array().unwrap().clone()
}

async fn service(app: &Harness) -> Value {
    app.call("DescribeServices", json!({"services": ["web"]})).await.unwrap()["services"][0].clone()
}

/// What an agent would report for each task: RUNNING for the wanted ones not yet running,
/// STOPPED for the ones asked to stop.
async fn agents(app: &Harness) {
    for t in tasks(app, "RUNNING").await.into_iter().filter(|t| t["lastStatus"] == "PENDING") {
        app.call("SubmitTaskStateChange", json!({"task": t["taskArn"], "status": "RUNNING"})).await.unwrap();
    }
    for t in tasks(app, "STOPPED").await.into_iter().filter(|t| t["lastStatus"] != "STOPPED") {
        app.call("SubmitTaskStateChange", json!({"task": t["taskArn"], "status": "STOPPED"})).await.unwrap();
    }
}

/// Moves time past the scheduler's 3 s proof of health, then runs a pass.
async fn later_pass(app: &Harness) {
    app.clock.advance(Duration::from_secs(4));
    pass(&app.app.control).await.unwrap();
}

fn definitions(tasks: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = tasks.iter().map(|t| t["taskDefinitionArn"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_service_is_launched_completed_and_steady_and_a_repeated_pass_changes_nothing() {
    let app = setup().await;
    app.call("CreateService", json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3}))
        .await
        .unwrap();
    pass(&app.app.control).await.unwrap();
    let launched = tasks(&app, "RUNNING").await;
    assert_eq!(launched.len(), 3);
    let instances: std::collections::HashSet<_> = launched.iter().map(|t| t["containerInstanceArn"].clone()).collect();
    assert_eq!(instances.len(), 3, "spread over instances by default");
    assert!(
        service(&app).await["events"][0]["message"].as_str().unwrap().starts_with("(service web) has started 3 tasks")
    );

    // Nothing new happened: another pass launches nothing more (a restarted server does the same).
    pass(&app.app.control).await.unwrap();
    assert_eq!(tasks(&app, "RUNNING").await.len(), 3);

    agents(&app).await;
    later_pass(&app).await;
    let s = service(&app).await;
    assert_eq!(s["runningCount"], 3);
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(s["events"][0]["message"], "(service web) has reached a steady state.");
}

#[tokio::test]
async fn a_rolling_update_stops_old_tasks_only_as_new_ones_prove_healthy() {
    let app = setup().await;
    app.call("CreateService", json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3}))
        .await
        .unwrap();
    pass(&app.app.control).await.unwrap();
    agents(&app).await;
    later_pass(&app).await;
    let v1 = tasks(&app, "RUNNING").await[0]["taskDefinitionArn"].as_str().unwrap().to_string();
    let v2 = v1.replace(":1", ":2");

    app.call("UpdateService", json!({"service": "web", "taskDefinition": "web:2"})).await.unwrap();
    pass(&app.app.control).await.unwrap();
    let wanted = tasks(&app, "RUNNING").await;
    assert_eq!(definitions(&wanted), [v1.clone(), v1.clone(), v1.clone(), v2.clone(), v2.clone(), v2.clone()]);
    assert!(tasks(&app, "STOPPED").await.is_empty(), "no old task stops before a new one is healthy");

    agents(&app).await;
    later_pass(&app).await;
    assert_eq!(definitions(&tasks(&app, "RUNNING").await), [v2.clone(), v2.clone(), v2.clone()]);
    let stopping = tasks(&app, "STOPPED").await;
    assert_eq!(stopping.len(), 3);
    assert!(stopping.iter().all(|t| t["stopCode"] == "ServiceSchedulerInitiated"));

    agents(&app).await;
    later_pass(&app).await;
    let s = service(&app).await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(s["deployments"][0]["taskDefinition"], v2);
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
}

/// A task the agent reports STOPPED on its own (an essential container exited) counts as a
/// failure and is replaced; one stopped by a user is replaced but is no failure.
#[tokio::test]
async fn failures_are_counted_from_the_typed_stop_not_its_text() {
    let app = setup().await;
    app.call("CreateService", json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2}))
        .await
        .unwrap();
    pass(&app.app.control).await.unwrap();
    agents(&app).await;
    later_pass(&app).await;
    let running = tasks(&app, "RUNNING").await;
    app.call("SubmitTaskStateChange", json!({"task": running[0]["taskArn"], "status": "STOPPED", "reason": "exited"}))
        .await
        .unwrap();
    app.call("StopTask", json!({"task": running[1]["taskArn"], "reason": "Essential container in task exited"}))
        .await
        .unwrap();
    agents(&app).await;
    later_pass(&app).await;
    let s = service(&app).await;
    assert_eq!(s["deployments"][0]["failedTasks"], 1, "the user's stop is no failure, whatever its reason says");
    assert_eq!(tasks(&app, "RUNNING").await.len(), 2, "both replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_beyond_one_chunk_is_committed_in_several_transactions() {
    let app = Harness::new();
    app.call("CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    for _ in 0..2 {
        let resources = json!([{"name": "CPU", "type": "INTEGER", "integerValue": 100_000},
                               {"name": "MEMORY", "type": "INTEGER", "integerValue": 100_000}]);
        app.call("RegisterContainerInstance", json!({"totalResources": resources})).await.unwrap();
    }
    let def = json!({"family": "web", "containerDefinitions": [{"name": "c", "image": "one", "memory": 6}]});
    app.call("RegisterTaskDefinition", def).await.unwrap();
    let chunk = berth_control::tasks::LAUNCH_CHUNK;
    app.call("CreateService", json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": chunk + 3}))
        .await
        .unwrap();
    let store = app.app.control.store.clone();
    let before = store.revision().unwrap();
    pass(&app.app.control).await.unwrap();
    // Two placements (a chunk and 3 tasks), then the service record.
    assert_eq!(store.revision().unwrap() - before, 3);
    let index = app.app.control.task_index().await.unwrap();
    assert_eq!(index.group("us-east-1", "default", "service:web").len(), chunk + 3);
    let s = service(&app).await;
    let events = s["events"].as_array().unwrap();
    // Ten tasks per event, the newest hundred kept: the last chunk's 3 on top.
    assert_eq!(events.len(), 100);
    assert!(events[0]["message"].as_str().unwrap().starts_with("(service web) has started 3 tasks: (task "));
    assert!(events[1]["message"].as_str().unwrap().starts_with("(service web) has started 10 tasks: (task "));
}

/// A pass woken by a change to one service reconciles that one; another whose tasks, record
/// and instances are as its last quiet reconcile read them is passed by until a second has
/// gone by.
#[tokio::test]
async fn a_pass_passes_by_services_whose_inputs_have_not_changed() {
    let app = setup().await;
    for (name, count) in [("web", 2), ("batch", 1)] {
        let service = json!({"serviceName": name, "taskDefinition": "web:1", "desiredCount": count});
        app.call("CreateService", service).await.unwrap();
    }
    pass(&app.app.control).await.unwrap();
    let all = app.call("ListTasks", json!({})).await.unwrap()["taskArns"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    for arn in &all {
        app.call("SubmitTaskStateChange", json!({"task": arn, "status": "RUNNING"})).await.unwrap();
    }
    later_pass(&app).await;
    let observed = || app.app.control.passes.read().last_tasks;
    // Completion and steady state are told; then a pass with nothing new observes nothing.
    for _ in 0..3 {
        pass(&app.app.control).await.unwrap();
    }
    assert_eq!(observed(), 0, "nothing changed: both services passed by");

    // One of web's tasks stopped by hand: web alone is reconciled (its two tasks) and replaces it.
    let web = tasks(&app, "RUNNING").await;
    app.call("StopTask", json!({"task": web[0]["taskArn"]})).await.unwrap();
    pass(&app.app.control).await.unwrap();
    assert_eq!(observed(), 2, "web's two tasks observed, batch's one passed by");
    assert_eq!(tasks(&app, "RUNNING").await.len(), 2, "the stopped task is replaced at once");

    // A second later every service is reconciled again, changed or not.
    app.clock.advance(Duration::from_secs(1));
    pass(&app.app.control).await.unwrap();
    assert_eq!(observed(), 4, "web's three tasks and batch's one");
}
