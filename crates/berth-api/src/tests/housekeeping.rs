//! Housekeeping through the handlers: DELETE_IN_PROGRESS revisions are purged once nothing
//! uses them, found even when deleted before their index existed, and never while a round may
//! have missed a new user.
use berth_store::{Op, Txn};
use serde_json::{Value, json};

use crate::ecs::Ctx;
use crate::sigv4::Caller;
use crate::testing::Harness;
use berth_control::housekeeping::sweep;

async fn call(app: &Harness, operation: &str, input: Value) -> Result<Value, String> {
    app.call(operation, input).await.map_err(|(code, _)| code)
}

async fn status(app: &Harness, revision: &str) -> Result<String, String> {
    let out = call(app, "DescribeTaskDefinition", json!({"taskDefinition": revision})).await?;
    Ok(out["taskDefinition"]["status"].as_str().unwrap().to_string())
}

/// Registers `f` and moves it to DELETE_IN_PROGRESS; returns its `family:revision`.
async fn deleted_revision(app: &Harness, run_first: bool) -> (String, Option<String>) {
    let def = json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
    let out = call(app, "RegisterTaskDefinition", def).await.unwrap();
    let revision = format!("f:{}", out["taskDefinition"]["revision"]);
    let task = if run_first {
        let run = call(app, "RunTask", json!({"taskDefinition": revision})).await.unwrap();
        Some(run["tasks"][0]["taskArn"].as_str().unwrap().to_string())
    } else {
        None
    };
    call(app, "DeregisterTaskDefinition", json!({"taskDefinition": revision})).await.unwrap();
    let out = call(app, "DeleteTaskDefinitions", json!({"taskDefinitions": [revision]})).await.unwrap();
    assert_eq!(out["failures"], json!([]));
    (revision, task)
}

/// Revisions in DELETE_IN_PROGRESS are purged once no task that is not STOPPED and no
/// service uses them; revision numbers are not reused afterwards.
#[tokio::test]
async fn deleted_revisions_are_purged_once_unused() {
    let app = Harness::new();
    call(&app, "CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    let cpu = json!({"name": "CPU", "type": "INTEGER", "integerValue": 1024});
    let memory = json!({"name": "MEMORY", "type": "INTEGER", "integerValue": 1024});
    call(&app, "RegisterContainerInstance", json!({"totalResources": [cpu, memory]})).await.unwrap();

    let (used, task) = deleted_revision(&app, true).await;
    let (unused, _) = deleted_revision(&app, false).await;
    let service_def = json!({"family": "s", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
    call(&app, "RegisterTaskDefinition", service_def).await.unwrap();
    call(&app, "CreateService", json!({"serviceName": "web", "taskDefinition": "s:1", "desiredCount": 0}))
        .await
        .unwrap();
    call(&app, "DeregisterTaskDefinition", json!({"taskDefinition": "s:1"})).await.unwrap();
    call(&app, "DeleteTaskDefinitions", json!({"taskDefinitions": ["s:1"]})).await.unwrap();

    sweep(&app.app.control).await.unwrap();
    assert_eq!(status(&app, &unused).await, Err("ClientException".into()), "an unused revision is purged");
    assert_eq!(status(&app, &used).await.unwrap(), "DELETE_IN_PROGRESS", "a PENDING task keeps its revision");
    assert_eq!(status(&app, "s:1").await.unwrap(), "DELETE_IN_PROGRESS", "a service keeps its revision");

    call(&app, "StopTask", json!({"task": task.unwrap()})).await.unwrap();
    sweep(&app.app.control).await.unwrap();
    assert_eq!(status(&app, &used).await, Err("ClientException".into()), "a STOPPED task does not keep it");
    assert_eq!(status(&app, "s:1").await.unwrap(), "DELETE_IN_PROGRESS");
    let out = call(&app, "DeleteTaskDefinitions", json!({"taskDefinitions": [unused]})).await.unwrap();
    assert!(out["failures"][0]["reason"].as_str().unwrap().starts_with("The specified task definition does not exist"));

    let def = json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
    let out = call(&app, "RegisterTaskDefinition", def).await.unwrap();
    assert_eq!(out["taskDefinition"]["revision"], 3, "revision numbers are never reused");
}

/// Revisions deleted before the index of DELETE_IN_PROGRESS revisions existed are found
/// once and purged too.
#[tokio::test]
async fn revisions_deleted_before_the_index_are_purged() {
    let app = Harness::new();
    call(&app, "CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    let (revision, _) = deleted_revision(&app, false).await;
    let keys = berth_control::keys::Keys::new("us-east-1");
    let unindexed =
        Txn::new().and_then(vec![Op::delete(&keys.deleting_definition("f", 1)), Op::delete(&keys.deleting_indexed())]);
    app.app.store().txn(unindexed).await.unwrap();
    assert_eq!(status(&app, &revision).await.unwrap(), "DELETE_IN_PROGRESS");
    sweep(&app.app.control).await.unwrap();
    assert_eq!(status(&app, &revision).await, Err("ClientException".into()));
}

/// A revision deleted after a round began (after it collected what is in use) waits for the
/// next round: a service created just before the revision was deregistered may not have
/// been seen.
#[tokio::test]
async fn revisions_deleted_during_a_round_wait_for_the_next() {
    let app = Harness::new();
    let before = app.app.store().revision().unwrap();
    let (revision, _) = deleted_revision(&app, false).await;
    let caller = Caller { access_key: String::new(), region: "us-east-1".into() };
    let ctx = Ctx::new(&app.app, caller, app.app.control.clock.now(), 0);
    let none = std::collections::HashSet::new();
    assert_eq!(berth_control::definitions::purge(&ctx, &none, before).await.unwrap(), 0);
    assert_eq!(status(&app, &revision).await.unwrap(), "DELETE_IN_PROGRESS");
    let now = app.app.store().revision().unwrap();
    assert_eq!(berth_control::definitions::purge(&ctx, &none, now).await.unwrap(), 1);
    assert_eq!(status(&app, &revision).await, Err("ClientException".into()));
}

/// Tasks of an agent silent past `--lost-agent-timeout` are written off (STOPPED, resources
/// back) by the next sweep, not before; STOPPED tasks are forgotten after the retention.
#[tokio::test]
async fn tasks_of_lost_agents_are_written_off_then_forgotten() {
    let app = Harness::new();
    call(&app, "CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    let cpu = json!({"name": "CPU", "type": "INTEGER", "integerValue": 1024});
    let memory = json!({"name": "MEMORY", "type": "INTEGER", "integerValue": 1024});
    call(&app, "RegisterContainerInstance", json!({"totalResources": [cpu, memory]})).await.unwrap();
    let def = json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 32}]});
    call(&app, "RegisterTaskDefinition", def).await.unwrap();
    let run = call(&app, "RunTask", json!({"taskDefinition": "f"})).await.unwrap();
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let describe = async |app: &Harness| {
        let out = call(app, "DescribeTasks", json!({"tasks": [task]})).await.unwrap();
        (out["tasks"].get(0).cloned(), out["failures"].clone())
    };

    app.clock.advance(std::time::Duration::from_secs(299));
    sweep(&app.app.control).await.unwrap();
    assert_eq!(describe(&app).await.0.unwrap()["lastStatus"], "PENDING", "not lost yet");

    app.clock.advance(std::time::Duration::from_secs(2));
    sweep(&app.app.control).await.unwrap();
    let stopped = describe(&app).await.0.unwrap();
    assert_eq!(stopped["lastStatus"], "STOPPED");
    assert_eq!(stopped["stoppedReason"], berth_control::housekeeping::LOST);
    let instances = call(&app, "ListContainerInstances", json!({})).await.unwrap();
    let described =
        call(&app, "DescribeContainerInstances", json!({"containerInstances": instances["containerInstanceArns"]}))
            .await
            .unwrap();
    let remaining = &described["containerInstances"][0]["remainingResources"];
    assert_eq!(remaining.as_array().unwrap().iter().find(|r| r["name"] == "MEMORY").unwrap()["integerValue"], 1024);

    app.clock.advance(std::time::Duration::from_secs(3601));
    sweep(&app.app.control).await.unwrap();
    let (task, failures) = describe(&app).await;
    assert!(task.is_none());
    assert_eq!(failures[0]["reason"], "MISSING");
}
