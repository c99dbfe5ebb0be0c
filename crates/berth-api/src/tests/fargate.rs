//! FARGATE tasks through the handlers: placed on an instance that lends itself to Fargate,
//! whatever the cluster; the instance's one account of resources pays for them and gets them
//! back at the stop; the task names no container instance; a host whose agent is lost has its
//! tasks written off.

use berth_control::fargate;
use berth_control::records::Host;
use berth_model::launch::FARGATE_ATTRIBUTE;
use serde_json::{Value, json};

use crate::testing::{Harness, REGION};

const SIZED: &str = r#"{"family": "web", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
    "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [{"name": "c", "image": "x"}]}"#;

/// A harness with the default VPC, cluster `default` holding one instance (lending to
/// Fargate when `lends`), and the cluster `apps` with none.
async fn setup(lends: bool) -> (Harness, String, Value) {
    let app = Harness::new();
    app.call("CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    app.call("CreateCluster", json!({"clusterName": "apps"})).await.unwrap();
    let resources = json!([{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                           {"name": "MEMORY", "type": "INTEGER", "integerValue": 1536}]);
    let mut attributes = vec![json!({"name": "ecs.availability-zone", "value": "us-east-1a"})];
    if lends {
        attributes.push(json!({"name": FARGATE_ATTRIBUTE}));
    }
    let registered = app
        .call("RegisterContainerInstance", json!({"totalResources": resources, "attributes": attributes}))
        .await
        .unwrap();
    let instance = registered["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string();
    let region = app.app.control.region(REGION);
    berth_control::vpc::defaults::ensure(&region).await.unwrap();
    let subnet = berth_control::vpc::subnets::list(&region).unwrap()[0].id.clone();
    app.call("RegisterTaskDefinition", serde_json::from_str(SIZED).unwrap()).await.unwrap();
    let network = json!({"awsvpcConfiguration": {"subnets": [subnet]}});
    (app, instance, network)
}

async fn memory_left(app: &Harness, instance: &str) -> i64 {
    let out = app.call("DescribeContainerInstances", json!({"containerInstances": [instance]})).await.unwrap();
    let list = out["containerInstances"][0]["remainingResources"].as_array().unwrap().clone();
    list.iter().find(|r| r["name"] == "MEMORY").unwrap()["integerValue"].as_i64().unwrap()
}

fn host(instance: &str) -> Host {
    Host { cluster: "default".into(), id: instance.rsplit('/').next().unwrap().into() }
}

#[tokio::test]
async fn fargate_tasks_of_any_cluster_run_on_a_lending_instance_and_give_back_what_they_took() {
    let (app, instance, network) = setup(true).await;
    let run = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE", "count": 3,
                     "networkConfiguration": network});
    let out = app.call("RunTask", run).await.unwrap();
    let tasks = out["tasks"].as_array().unwrap().clone();
    // 1536 MiB hold three tasks of 512 MiB: the instance is full after them.
    assert_eq!(tasks.len(), 3, "{out}");
    for t in &tasks {
        assert!(t.get("containerInstanceArn").is_none(), "{t}");
        assert_eq!((t["launchType"].as_str(), t["platformVersion"].as_str()), (Some("FARGATE"), Some("1.4.0")));
        assert_eq!(t["availabilityZone"], "us-east-1a");
    }
    assert_eq!(memory_left(&app, &instance).await, 0);
    let region = app.app.control.region(REGION);
    assert_eq!(fargate::hosted(&region, &host(&instance)).unwrap().len(), 3);

    // No room left: a failure in ECS's words, and nothing made.
    let more = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE",
                      "networkConfiguration": network});
    let out = app.call("RunTask", more).await.unwrap();
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"][0]["reason"], fargate::NO_CAPACITY);
    assert!(out["failures"][0]["detail"].as_str().unwrap().contains("memory"), "{out}");

    // The cluster's EC2 view does not show them.
    let listed = app.call("ListTasks", json!({"cluster": "default"})).await.unwrap();
    assert_eq!(listed["taskArns"], json!([]));
    let arn = tasks[0]["taskArn"].as_str().unwrap();
    app.call("StopTask", json!({"cluster": "apps", "task": arn})).await.unwrap();
    // Never claimed by an agent: STOPPED at once, its size given back to its host.
    assert_eq!(memory_left(&app, &instance).await, 512);
    assert_eq!(fargate::hosted(&region, &host(&instance)).unwrap().len(), 2);
}

#[tokio::test]
async fn an_instance_that_does_not_lend_runs_no_fargate_task() {
    let (app, instance, network) = setup(false).await;
    let run = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE",
                     "networkConfiguration": network});
    let out = app.call("RunTask", run).await.unwrap();
    assert_eq!(out["tasks"], json!([]));
    assert!(out["failures"][0]["detail"].as_str().unwrap().contains("no agent lends"), "{out}");
    assert_eq!(memory_left(&app, &instance).await, 1536);

    // Registering again with the attribute makes it lend; again without, it stops lending.
    let region = app.app.control.region(REGION);
    let again = |attributes: Value| {
        json!({"containerInstanceArn": instance, "attributes": attributes,
               "totalResources": [{"name": "MEMORY", "type": "INTEGER", "integerValue": 1536}]})
    };
    app.call("RegisterContainerInstance", again(json!([{"name": FARGATE_ATTRIBUTE}]))).await.unwrap();
    assert_eq!(fargate::candidates(&region).unwrap().len(), 1);
    app.call("RegisterContainerInstance", again(json!([]))).await.unwrap();
    assert!(fargate::candidates(&region).unwrap().is_empty());
}

#[tokio::test]
async fn the_tasks_of_a_lost_fargate_host_are_written_off() {
    let (app, instance, network) = setup(true).await;
    let run = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE",
                     "networkConfiguration": network});
    let arn = app.call("RunTask", run).await.unwrap()["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    app.clock.advance(std::time::Duration::from_secs(301));
    berth_control::housekeeping::sweep(&app.app.control).await.unwrap();
    let out = app.call("DescribeTasks", json!({"cluster": "apps", "tasks": [arn]})).await.unwrap();
    assert_eq!(out["tasks"][0]["lastStatus"], "STOPPED", "{out}");
    assert_eq!(out["tasks"][0]["stoppedReason"], berth_control::housekeeping::LOST);
    assert_eq!(memory_left(&app, &instance).await, 1536);
    let region = app.app.control.region(REGION);
    assert!(fargate::hosted(&region, &host(&instance)).unwrap().is_empty());
}

#[tokio::test]
async fn fargate_tasks_spread_over_the_lending_instances_of_every_cluster() {
    let (app, first, network) = setup(true).await;
    let resources = json!([{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                           {"name": "MEMORY", "type": "INTEGER", "integerValue": 1536}]);
    let attributes = json!([{"name": "ecs.availability-zone", "value": "us-east-1a"}, {"name": FARGATE_ATTRIBUTE}]);
    let second = app
        .call(
            "RegisterContainerInstance",
            json!({"cluster": "apps", "totalResources": resources, "attributes": attributes}),
        )
        .await
        .unwrap()["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    let run = json!({"cluster": "default", "taskDefinition": "web", "launchType": "FARGATE", "count": 2,
                     "networkConfiguration": network});
    assert_eq!(app.call("RunTask", run).await.unwrap()["tasks"].as_array().unwrap().len(), 2);
    let region = app.app.control.region(REGION);
    let on = |arn: &str, cluster: &str| {
        let host = Host { cluster: cluster.into(), id: arn.rsplit('/').next().unwrap().into() };
        fargate::hosted(&region, &host).unwrap().len()
    };
    assert_eq!((on(&first, "default"), on(&second, "apps")), (1, 1));
}

#[tokio::test]
async fn a_cluster_default_strategy_shares_one_run_task_among_the_providers() {
    let (app, instance, network) = setup(true).await;
    let strategy = json!([{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                          {"capacityProvider": "FARGATE_SPOT", "weight": 3}]);
    app.call(
        "PutClusterCapacityProviders",
        json!({"cluster": "apps", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
               "defaultCapacityProviderStrategy": strategy}),
    )
    .await
    .unwrap();
    // Room for three 512 MiB tasks: the base, then the weights (two spot to one).
    let run = json!({"cluster": "apps", "taskDefinition": "web", "count": 3, "networkConfiguration": network});
    let out = app.call("RunTask", run).await.unwrap();
    let providers: Vec<&str> =
        out["tasks"].as_array().unwrap().iter().map(|t| t["capacityProviderName"].as_str().unwrap()).collect();
    assert_eq!(providers, ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT"], "{out}");
    assert!(out["tasks"].as_array().unwrap().iter().all(|t| t["launchType"] == "FARGATE"));
    assert_eq!(memory_left(&app, &instance).await, 0);
    // A launch type given instead: the default strategy does not apply, and EC2 finds the
    // machine's one account spent by the FARGATE tasks.
    let ec2 =
        json!({"cluster": "default", "taskDefinition": "web", "launchType": "EC2", "networkConfiguration": network});
    let out = app.call("RunTask", ec2).await.unwrap();
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY", "{out}");
}

/// `assignPublicIp: ENABLED`: refused while no Fargate host gives out public addresses; then
/// each task gets one of its host's block (`berth.public-ipv4-pool`), shown on the task and on
/// its interface, given back when it stops.
#[tokio::test]
async fn public_addresses_come_from_the_hosts_block() {
    use berth_model::launch::PUBLIC_POOL_ATTRIBUTE;
    let (app, instance, network) = setup(true).await;
    let mut public = network.clone();
    public["awsvpcConfiguration"]["assignPublicIp"] = json!("ENABLED");
    let run = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE",
                     "networkConfiguration": public});
    let e = app.call("RunTask", run.clone()).await.unwrap_err();
    assert_eq!(e, ("InvalidParameterException".to_string(), fargate::NO_PUBLIC_ADDRESSES.to_string()));
    let region = app.app.control.region(REGION);
    assert!(berth_control::vpc::enis::list(&region).unwrap().is_empty(), "nothing made");

    let attributes = json!([{"name": FARGATE_ATTRIBUTE}, {"name": "ecs.availability-zone", "value": "us-east-1a"},
                            {"name": PUBLIC_POOL_ATTRIBUTE, "value": "203.0.113.0/30"}]);
    let again = json!({"containerInstanceArn": instance, "attributes": attributes,
                       "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                                          {"name": "MEMORY", "type": "INTEGER", "integerValue": 1536}]});
    app.call("RegisterContainerInstance", again).await.unwrap();
    let mut run_two = run.clone();
    run_two["count"] = json!(2);
    let out = app.call("RunTask", run_two).await.unwrap();
    let tasks = out["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 2, "{out}");
    let detail = |t: &Value, name: &str| {
        let details = t["attachments"][0]["details"].as_array().unwrap().clone();
        details.iter().find(|d| d["name"] == name).map(|d| d["value"].as_str().unwrap().to_string())
    };
    let mut given: Vec<String> = tasks.iter().map(|t| detail(t, "publicIPv4Address").unwrap()).collect();
    given.sort();
    assert_eq!(given, ["203.0.113.1", "203.0.113.2"], "two tasks of one launch never share one");
    let mut held: Vec<String> = berth_control::vpc::enis::list(&region)
        .unwrap()
        .iter()
        .filter_map(|r| r.eni.public_ip)
        .map(|a| a.to_string())
        .collect();
    held.sort();
    assert_eq!(held, given, "the interfaces hold them");
    // A task that does not ask gets none.
    let quiet = json!({"cluster": "apps", "taskDefinition": "web", "launchType": "FARGATE",
                       "networkConfiguration": network});
    let out = app.call("RunTask", quiet).await.unwrap();
    assert_eq!(detail(&out["tasks"][0], "publicIPv4Address"), None);
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    app.call("StopTask", json!({"cluster": "apps", "task": arn})).await.unwrap();

    // The block is used up: an error in EC2's words, and nothing made.
    let (code, message) = app.call("RunTask", run.clone()).await.unwrap_err();
    assert_eq!(code, "AddressLimitExceeded");
    assert!(message.contains("203.0.113.0/30"), "{message}");
    let arn = tasks[0]["taskArn"].as_str().unwrap();
    app.call("StopTask", json!({"cluster": "apps", "task": arn})).await.unwrap();
    let out = app.call("RunTask", run).await.unwrap();
    assert_eq!(detail(&out["tasks"][0], "publicIPv4Address"), detail(&tasks[0], "publicIPv4Address"));
}
