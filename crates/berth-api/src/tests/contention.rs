//! Two writers racing on one record: every change is a compare-and-swap on what it read, so
//! concurrent requests never spend the same capacity, never lose each other's update, and a
//! stop racing an agent's report ends in one consistent state.

use serde_json::{Value, json};

use crate::testing::Harness;

const DEFINITION: &str = r#"{"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 256}]}"#;

async fn setup(memory: i64) -> Harness {
    let app = Harness::new();
    app.call("CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    let resources = json!([{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                           {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}]);
    app.call("RegisterContainerInstance", json!({"totalResources": resources})).await.unwrap();
    app.call("RegisterTaskDefinition", serde_json::from_str(DEFINITION).unwrap()).await.unwrap();
    app
}

fn remaining_memory(instance: &Value) -> i64 {
    let list = instance["remainingResources"].as_array().unwrap();
    list.iter().find(|r| r["name"] == "MEMORY").unwrap()["integerValue"].as_i64().unwrap()
}

async fn instance(app: &Harness) -> Value {
    let arns = app.call("ListContainerInstances", json!({})).await.unwrap()["containerInstanceArns"].clone();
    app.call("DescribeContainerInstances", json!({"containerInstances": arns})).await.unwrap()["containerInstances"][0]
        .clone()
}

/// Room for three tasks, eight RunTask calls at once: exactly three tasks, the others refused
/// for memory, and the instance's remaining memory is what the three took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_run_tasks_never_spend_the_same_capacity() {
    let app = setup(768).await;
    let runs = (0..8).map(|_| app.call("RunTask", json!({"taskDefinition": "f"})));
    let outcomes = futures::future::join_all(runs).await;
    let mut placed = 0;
    for out in outcomes {
        let out = out.unwrap();
        placed += out["tasks"].as_array().unwrap().len();
        if out["tasks"].as_array().unwrap().is_empty() {
            assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY", "{out}");
        }
    }
    assert_eq!(placed, 3);
    assert_eq!(remaining_memory(&instance(&app).await), 0);
    let listed = app.call("ListTasks", json!({})).await.unwrap();
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 3);
}

/// Two UpdateService calls at once, each changing a different member: both land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_service_both_land() {
    let app = setup(4096).await;
    app.call("CreateService", json!({"serviceName": "web", "taskDefinition": "f", "desiredCount": 0})).await.unwrap();
    for round in 0..10 {
        let grace = app.call("UpdateService", json!({"service": "web", "healthCheckGracePeriodSeconds": round}));
        let scale = app.call("UpdateService", json!({"service": "web", "desiredCount": round}));
        let (a, b) = tokio::join!(grace, scale);
        a.unwrap();
        b.unwrap();
        let s = app.call("DescribeServices", json!({"services": ["web"]})).await.unwrap()["services"][0].clone();
        assert_eq!(
            (s["healthCheckGracePeriodSeconds"].as_i64(), s["desiredCount"].as_i64()),
            (Some(round), Some(round))
        );
    }
}

/// StopTask racing the agent's RUNNING report on a task the agent has claimed: whichever
/// wins, the task ends wanted STOPPED and RUNNING or STOPPED, never back to PENDING, and its
/// resources are given back only once it is STOPPED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_racing_the_agent_report_ends_consistent() {
    for _ in 0..10 {
        let app = setup(4096).await;
        let run = app.call("RunTask", json!({"taskDefinition": "f"})).await.unwrap();
        let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
        app.call("SubmitTaskStateChange", json!({"task": task, "status": "PENDING"})).await.unwrap();
        let stop = app.call("StopTask", json!({"task": task}));
        let running = app.call("SubmitTaskStateChange", json!({"task": task, "status": "RUNNING"}));
        let (stopped, reported) = tokio::join!(stop, running);
        stopped.unwrap();
        reported.unwrap();
        let t = app.call("DescribeTasks", json!({"tasks": [task]})).await.unwrap()["tasks"][0].clone();
        assert_eq!(t["desiredStatus"], "STOPPED");
        assert_eq!(t["lastStatus"], "RUNNING", "a claimed task is stopped by its agent, not by the control plane");
        assert_eq!(remaining_memory(&instance(&app).await), 4096 - 256);
        app.call("SubmitTaskStateChange", json!({"task": task, "status": "STOPPED"})).await.unwrap();
        assert_eq!(remaining_memory(&instance(&app).await), 4096);
        let again = app.call("SubmitTaskStateChange", json!({"task": task, "status": "RUNNING"})).await;
        assert_eq!(again.unwrap_err().0, "InvalidParameterException", "nothing leaves STOPPED");
    }
}

/// A batch naming a missing or refused instance among good ones reports it in `failures`
/// and changes the rest: a failure of one item is not a lost race of the whole.
#[tokio::test]
async fn batch_failures_are_failures_not_lost_races() {
    let app = setup(1024).await;
    let arns = app.call("ListContainerInstances", json!({})).await.unwrap()["containerInstanceArns"].clone();
    let good = arns[0].as_str().unwrap();
    let ghost = "0123456789abcdef0123456789abcdef";
    let out = app
        .call("UpdateContainerInstancesState", json!({"containerInstances": [ghost, good], "status": "DRAINING"}))
        .await
        .unwrap();
    assert_eq!(out["failures"][0]["reason"], "MISSING", "{out}");
    assert_eq!(out["containerInstances"][0]["status"], "DRAINING");
    let out = app.call("StartTask", json!({"taskDefinition": "f", "containerInstances": [ghost, good]})).await.unwrap();
    assert_eq!(out["failures"][0]["reason"], "MISSING", "{out}");
}
