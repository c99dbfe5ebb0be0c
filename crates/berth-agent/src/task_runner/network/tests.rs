//! An awsvpc task's runner on fakes: the interface attached in the holder's namespace before
//! any container exists, rules applied while it runs, detached before STOPPED.

use std::net::Ipv4Addr;
use std::time::Duration;

use berth_agent_protocol::DesiredStatus;
use berth_agent_protocol::network::{Eni, Rule, SecurityRules, TaskNetwork};
use berth_model::task::TaskStatus;
use serde_json::json;

use super::super::tests::{DEFINITION, Harness, INSTANCE, TASK, assigned, container, harness, within};
use super::super::{Desired, spawn};
use crate::runtime::fake::Call;

fn network(ports: u16) -> TaskNetwork {
    TaskNetwork {
        eni: Eni {
            id: "eni-0123456789abcdef0".into(),
            subnet_id: "subnet-0123456789abcdef0".into(),
            vpc_id: "vpc-1".into(),
            subnet_cidr: "172.31.0.0/20".into(),
            gateway: Ipv4Addr::new(172, 31, 0, 1),
            private_ip: Ipv4Addr::new(172, 31, 0, 5),
            mac: "0a:00:00:00:00:05".into(),
            private_dns_name: "ip-172-31-0-5.ec2.internal".into(),
            public_ip: None,
            security_groups: vec!["sg-1".into()],
        },
        rules: SecurityRules {
            ingress: vec![Rule {
                protocol: "tcp".into(),
                ports: Some((ports, ports)),
                cidrs: vec!["0.0.0.0/0".into()],
            }],
            egress: vec![],
        },
    }
}

fn define_awsvpc(h: &Harness) {
    h.control.define(
        DEFINITION,
        json!({"taskDefinitionArn": DEFINITION, "networkMode": "awsvpc",
               "containerDefinitions": [container("web", json!({})), container("side", json!({"essential": false}))]}),
    );
}

fn awsvpc_task(net: Option<TaskNetwork>) -> berth_agent_protocol::assignments::AssignedTask {
    let mut task = assigned(TASK, TaskStatus::Provisioning, DesiredStatus::Running);
    task.network = net;
    task
}

#[tokio::test(start_paused = true)]
async fn the_interface_is_attached_before_any_container_and_detached_before_stopped() {
    let h = harness(Duration::from_secs(3600));
    define_awsvpc(&h);
    let runner = spawn(h.shared.clone(), awsvpc_task(Some(network(80))), Vec::new());
    h.reported(TaskStatus::Running).await;
    let calls = h.runtime.calls();
    let netns = calls.iter().position(|c| matches!(c, Call::TaskNetns { holder } if holder == "berth-t1.ns"));
    let first_create = calls.iter().position(|c| matches!(c, Call::Create { .. }));
    assert!(netns.unwrap() < first_create.unwrap(), "{calls:?}");
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::TaskNetns { .. })).count(), 1, "one namespace per task");
    let attached = h.networking.attached.lock().unwrap().get("t1").cloned().unwrap();
    assert_eq!(attached, ("/fake/netns/berth-t1.ns".into(), network(80)));

    // A security group change reaches the running task.
    runner.network.send_replace(Some(network(8080)));
    within(async {
        while !h.networking.calls().contains(&"rules t1".to_string()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(h.networking.attached.lock().unwrap()["t1"].1, network(8080));

    runner.desired.send_replace(Desired::Stopped);
    h.reported(TaskStatus::Stopped).await;
    // Cleanup waits an hour: the detach came with the stop, before STOPPED was reported.
    assert_eq!(h.networking.calls(), ["attach t1", "rules t1", "detach t1"]);
    assert!(h.networking.attached.lock().unwrap().is_empty());
    within(runner.handle).await.unwrap();
    assert!(h.runtime.calls().contains(&Call::ReleaseTaskNetns { holder: "berth-t1.ns".into() }));
}

#[tokio::test(start_paused = true)]
async fn an_awsvpc_task_without_an_interface_or_whose_attach_fails_never_starts_a_container() {
    for (net, fail, expected) in [
        (None, None, "the control plane assigned the task no network interface"),
        (Some(network(80)), Some("no bridge"), "netlink: no bridge"),
    ] {
        let h = harness(Duration::ZERO);
        define_awsvpc(&h);
        *h.networking.fail_attach.lock().unwrap() = fail.map(str::to_string);
        let runner = spawn(h.shared.clone(), awsvpc_task(net.clone()), Vec::new());
        let stopped = h.reported(TaskStatus::Stopped).await;
        let reason = stopped.reason.unwrap();
        assert!(reason.starts_with("ResourceInitializationError: failed to set up the task's network interface"));
        assert!(reason.ends_with(expected), "{reason}");
        within(runner.handle).await.unwrap();
        let calls = h.runtime.calls();
        assert!(!calls.iter().any(|c| matches!(c, Call::Start { .. })), "a container was started");
        // Without an interface nothing is created; a container created while the attach
        // failed is removed.
        let created: Vec<_> =
            calls.iter().filter_map(|c| if let Call::Create { name } = c { Some(name) } else { None }).collect();
        assert_eq!(created.is_empty(), net.is_none(), "{calls:?}");
        for name in created {
            assert!(
                calls.contains(&Call::Remove { name: name.clone() }),
                "{name} was created and not removed: {calls:?}"
            );
        }
        // A failed attachment is undone; the holder goes.
        let detached = h.networking.calls().contains(&"detach t1".to_string());
        assert_eq!(detached, net.is_some());
        assert!(h.runtime.calls().iter().any(|c| matches!(c, Call::ReleaseTaskNetns { .. })) == net.is_some());
    }
}

#[tokio::test(start_paused = true)]
async fn an_adopted_task_gets_its_interface_again_with_the_rules_of_now() {
    let h = harness(Duration::ZERO);
    define_awsvpc(&h);
    for name in ["web", "side"] {
        h.runtime.existing(TASK, INSTANCE, name, None);
    }
    let adopted = vec![h.runtime.container("web").unwrap(), h.runtime.container("side").unwrap()];
    let _runner = spawn(h.shared.clone(), awsvpc_task(Some(network(443))), adopted);
    h.reported(TaskStatus::Running).await;
    assert_eq!(h.networking.calls(), ["attach t1"]);
    assert_eq!(h.networking.attached.lock().unwrap()["t1"].1, network(443));
    assert!(
        !h.runtime.calls().iter().any(|c| matches!(c, Call::Create { .. })),
        "adopted containers were created again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rule_update_that_failed_is_tried_again_with_the_next_poll() {
    let h = harness(Duration::ZERO);
    define_awsvpc(&h);
    let runner = spawn(h.shared.clone(), awsvpc_task(Some(network(80))), Vec::new());
    h.reported(TaskStatus::Running).await;
    *h.networking.fail_rules.lock().unwrap() = Some("nft: busy".into());
    let rules_calls = || h.networking.calls().iter().filter(|c| *c == "rules t1").count();
    runner.network.send_replace(Some(network(8080)));
    within(async {
        while rules_calls() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(h.networking.attached.lock().unwrap()["t1"].1, network(80), "the failed update changed nothing");
    *h.networking.fail_rules.lock().unwrap() = None;
    // The next poll brings the same network: what was not applied is applied now.
    runner.network.send_replace(Some(network(8080)));
    within(async {
        while rules_calls() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(h.networking.attached.lock().unwrap()["t1"].1, network(8080));
    // Once applied, the same network again changes nothing.
    runner.network.send_replace(Some(network(8080)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rules_calls(), 2);
}

fn service_connect() -> berth_agent_protocol::connect::ServiceConnect {
    berth_agent_protocol::connect::ServiceConnect {
        namespace: "internal.app".into(),
        aliases: vec![berth_agent_protocol::connect::ClientAlias {
            dns_name: "backend".into(),
            port: 80,
            address: Ipv4Addr::new(127, 255, 0, 1),
            service: "web".into(),
            idle_timeout_seconds: 3600,
        }],
        ingress: vec![],
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_connect_task_gets_its_proxy_and_alias_names_before_its_containers_start() {
    let h = harness(Duration::from_secs(3600));
    define_awsvpc(&h);
    let mut task = awsvpc_task(Some(network(80)));
    task.service_connect = Some(service_connect());
    let runner = spawn(h.shared.clone(), task, Vec::new());
    h.reported(TaskStatus::Running).await;
    let (netns, sc) = h.proxies.running.lock().unwrap().get("t1").cloned().expect("a proxy runs");
    assert_eq!((netns, sc), ("/fake/netns/berth-t1.ns".into(), service_connect()));
    for name in ["web", "side"] {
        let spec = h.runtime.spec(name).expect("created");
        assert!(spec.extra_hosts.contains(&"backend:127.255.0.1".to_string()), "{:?}", spec.extra_hosts);
    }
    runner.desired.send_replace(Desired::Stopped);
    h.reported(TaskStatus::Stopped).await;
    assert_eq!(h.proxies.calls(), ["start t1", "stop t1"]);
    assert_eq!(h.networking.calls(), ["attach t1", "detach t1"], "the proxy stops before the interface goes");
}

#[tokio::test(start_paused = true)]
async fn a_proxy_that_cannot_start_fails_the_task_before_any_container_starts() {
    let h = harness(Duration::ZERO);
    define_awsvpc(&h);
    *h.proxies.fail_start.lock().unwrap() = Some("listening on 127.255.0.1:80: address in use".into());
    let mut task = awsvpc_task(Some(network(80)));
    task.service_connect = Some(service_connect());
    let runner = spawn(h.shared.clone(), task, Vec::new());
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert!(stopped.reason.unwrap().ends_with("address in use"));
    within(runner.handle).await.unwrap();
    assert!(!h.runtime.calls().iter().any(|c| matches!(c, Call::Start { .. })));
    assert!(h.networking.calls().contains(&"detach t1".to_string()));
}
