//! The load balancing model over a real store: load balancers, groups, listeners and rules
//! with their cross-resource rules; targets through registration, health reports, draining
//! and housekeeping; and the data plane's configuration built from all of it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use berth_lb::config::{self as lb, Failure, Health, TargetKey, TargetStatus};
use berth_store::{StoreExt, Txn};
use proptest::prelude::*;

use super::actions::{ActionInput, ForwardInput};
use super::arns::LbType;
use super::conditions::ConditionInput;
use super::listeners::{self, ListenerChange, NewListener};
use super::load_balancers::{self, NewLoadBalancer, Scheme};
use super::rules::{self, NewRule};
use super::target_groups::{self, HealthCheckInput, NewTargetGroup, Protocol, TargetType};
use super::targets::{self, HealthState, Reason, TargetInput};
use super::*;
use crate::ControlError;
use crate::clock::ManualClock;
use crate::vpc::testing::TestRegion;
use crate::vpc::{defaults, subnets, vpcs};

fn code<T: std::fmt::Debug>(r: ControlResult<T>) -> &'static str {
    match r.unwrap_err() {
        ControlError::Elb(e) => e.code(),
        ControlError::Vpc(e) => e.code(),
        other => panic!("not an ELB error: {other}"),
    }
}

use crate::error::ControlResult;

struct World {
    t: TestRegion,
    vpc: String,
    subnet: String,
}

impl World {
    async fn new() -> World {
        let t = TestRegion::new();
        let vpc = defaults::ensure(&t.region()).await.unwrap().unwrap();
        let subnet = subnets::list(&t.region()).unwrap().remove(0).id;
        World { t, vpc: vpc.id, subnet }
    }

    fn region(&self) -> crate::Region<'_> {
        self.t.region()
    }

    fn clock(&self) -> &ManualClock {
        &self.t.clock
    }

    async fn lb(&self, name: &str, lb_type: LbType) -> String {
        let new = NewLoadBalancer {
            name: name.into(),
            lb_type,
            scheme: Scheme::InternetFacing,
            subnets: vec![self.subnet.clone()],
            security_groups: None,
            tags: vec![],
        };
        load_balancers::create(&self.region(), new).await.unwrap().arn
    }

    async fn tg(&self, name: &str, protocol: Protocol, target_type: TargetType) -> String {
        let new = NewTargetGroup {
            name: name.into(),
            protocol,
            port: 80,
            vpc_id: self.vpc.clone(),
            target_type,
            health_check: HealthCheckInput::default(),
            tags: vec![],
        };
        target_groups::create(&self.region(), new).await.unwrap().arn
    }

    async fn listener(&self, lb: &str, port: u16, tg: &str) -> ControlResult<listeners::ListenerRecord> {
        let new = NewListener { port: Some(port), default_actions: vec![forward(tg)], ..Default::default() };
        listeners::create(&self.region(), lb, new).await
    }

    async fn rule(&self, listener: &str, priority: u32, path: &str, tg: &str) -> ControlResult<rules::RuleRecord> {
        let new = NewRule { priority, conditions: vec![path_is(path)], actions: vec![forward(tg)], tags: vec![] };
        rules::create(&self.region(), listener, new).await
    }
}

fn forward(tg: &str) -> ActionInput {
    ActionInput { action_type: "forward".into(), target_group_arn: Some(tg.into()), ..Default::default() }
}

fn path_is(path: &str) -> ConditionInput {
    ConditionInput { field: Some("path-pattern".into()), values: Some(vec![path.into()]), ..Default::default() }
}

fn ip(id: &str) -> TargetInput {
    TargetInput { id: id.into(), port: None, zone: None }
}

#[tokio::test]
async fn load_balancers_are_named_once_and_take_their_listeners_along() {
    let w = World::new().await;
    let r = w.region();
    let arn = w.lb("web", LbType::Application).await;
    let lb = load_balancers::get(&r, &arn).unwrap().record;
    assert_eq!(
        (lb.vpc_id.as_str(), lb.zones[0].zone.as_str(), lb.state),
        (w.vpc.as_str(), "us-east-1a", load_balancers::LbState::Active)
    );
    assert_eq!(lb.security_groups, [vpcs::get(&r, &w.vpc).unwrap().record.default_group_id]);
    assert!(lb.dns_name.starts_with("web-") && lb.dns_name.ends_with(".us-east-1.elb.localhost"), "{}", lb.dns_name);
    // The same again is the same load balancer; other settings are a duplicate.
    assert_eq!(w.lb("web", LbType::Application).await, arn);
    let other = NewLoadBalancer {
        name: "web".into(),
        lb_type: LbType::Network,
        scheme: Scheme::Internal,
        subnets: vec![w.subnet.clone()],
        security_groups: None,
        tags: vec![],
    };
    assert_eq!(code(load_balancers::create(&r, other).await), "DuplicateLoadBalancerName");
    let bad_subnet = NewLoadBalancer {
        name: "x".into(),
        lb_type: LbType::Application,
        scheme: Scheme::Internal,
        subnets: vec!["subnet-0000000000000dead".into()],
        security_groups: None,
        tags: vec![],
    };
    assert_eq!(code(load_balancers::create(&r, bad_subnet).await), "SubnetNotFound");

    let tg = w.tg("app", Protocol::Http, TargetType::Ip).await;
    let listener = w.listener(&arn, 8080, &tg).await.unwrap();
    w.rule(&listener.arn, 10, "/api/*", &tg).await.unwrap();
    // Deletion protection holds it back; then it goes with its listener, rule and port.
    let protect = [("deletion_protection.enabled".to_string(), "true".to_string())];
    load_balancers::modify_attributes(&r, &arn, &protect).await.unwrap();
    assert_eq!(code(load_balancers::delete(&r, &arn).await), "OperationNotPermitted");
    let unprotect = [("deletion_protection.enabled".to_string(), "false".to_string())];
    load_balancers::modify_attributes(&r, &arn, &unprotect).await.unwrap();
    load_balancers::delete(&r, &arn).await.unwrap();
    load_balancers::delete(&r, &arn).await.unwrap();
    assert_eq!(code(load_balancers::get(&r, &arn)), "LoadBalancerNotFound");
    assert!(r.store().list(&r.keys.all_rules()).unwrap().is_empty());
    assert!(r.store().get(&crate::keys::listener_port(8080)).unwrap().is_none());
    // The name and the port are free again; the group was not in use any more.
    let again = w.lb("web", LbType::Application).await;
    w.listener(&again, 8080, &tg).await.unwrap();
}

#[tokio::test]
async fn ports_are_unique_across_load_balancers() {
    let w = World::new().await;
    let (a, b) = (w.lb("a", LbType::Application).await, w.lb("b", LbType::Application).await);
    let (ta, tb) = (w.tg("ta", Protocol::Http, TargetType::Ip).await, w.tg("tb", Protocol::Http, TargetType::Ip).await);
    let first = w.listener(&a, 8080, &ta).await.unwrap();
    assert_eq!(w.listener(&a, 8080, &ta).await.unwrap(), first, "the same listener again");
    assert_eq!(code(w.listener(&a, 8080, &tb).await), "DuplicateListener");
    assert_eq!(code(w.listener(&b, 8080, &tb).await), "InvalidConfigurationRequest");
    let moved = listeners::modify(&w.region(), &first.arn, &ListenerChange { port: Some(8081), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(moved.port, 8081);
    w.listener(&b, 8080, &tb).await.unwrap();
    let back = ListenerChange { port: Some(8080), ..Default::default() };
    assert_eq!(code(listeners::modify(&w.region(), &first.arn, &back).await), "InvalidConfigurationRequest");
}

#[tokio::test]
async fn target_groups_serve_one_load_balancer_of_their_protocol_and_cannot_go_while_used() {
    let w = World::new().await;
    let r = w.region();
    let (a, b) = (w.lb("a", LbType::Application).await, w.lb("b", LbType::Application).await);
    let nlb = w.lb("n", LbType::Network).await;
    let tg = w.tg("web", Protocol::Http, TargetType::Ip).await;
    let tcp = w.tg("tcp", Protocol::Tcp, TargetType::Ip).await;
    let listener = w.listener(&a, 80, &tg).await.unwrap();
    assert_eq!(code(w.listener(&b, 81, &tg).await), "TargetGroupAssociationLimit");
    assert_eq!(code(w.listener(&nlb, 82, &tg).await), "IncompatibleProtocols");
    assert_eq!(code(w.listener(&b, 83, &tcp).await), "IncompatibleProtocols");
    w.listener(&nlb, 84, &tcp).await.unwrap();
    let ghost = tg.replace("/web/", "/ghost/");
    assert_eq!(code(w.listener(&b, 85, &ghost).await), "TargetGroupNotFound");
    let info = target_groups::get_target_group(&r, &tg).unwrap();
    assert_eq!(info.load_balancer_arns, std::slice::from_ref(&a));
    assert_eq!(code(target_groups::delete(&r, &tg).await), "ResourceInUse");
    // Rules of the same load balancer may forward to it too.
    let other = w.tg("other", Protocol::Http, TargetType::Ip).await;
    let change = ListenerChange { default_actions: Some(vec![forward(&other)]), ..Default::default() };
    listeners::modify(&r, &listener.arn, &change).await.unwrap();
    let rule = w.rule(&listener.arn, 5, "/x", &tg).await.unwrap();
    assert_eq!(code(target_groups::delete(&r, &tg).await), "ResourceInUse");
    rules::delete(&r, &rule.arn).await.unwrap();
    target_groups::delete(&r, &tg).await.unwrap();
    assert_eq!(code(target_groups::get(&r, &tg)), "TargetGroupNotFound");
    target_groups::delete(&r, &tg).await.unwrap();
    assert_eq!(code(w.rule(&listener.arn, 6, "/y", &tg).await), "TargetGroupNotFound");
}

#[tokio::test]
async fn rule_priorities_stay_unique_and_the_default_rule_stays() {
    let w = World::new().await;
    let r = w.region();
    let lb = w.lb("web", LbType::Application).await;
    let tg = w.tg("web", Protocol::Http, TargetType::Ip).await;
    let listener = w.listener(&lb, 80, &tg).await.unwrap();
    let one = w.rule(&listener.arn, 1, "/a", &tg).await.unwrap();
    let two = w.rule(&listener.arn, 2, "/b", &tg).await.unwrap();
    assert_eq!(code(w.rule(&listener.arn, 2, "/c", &tg).await), "PriorityInUse");
    // Swapping in one request is fine; moving one onto the other is not.
    let swapped = rules::set_priorities(&r, &[(one.arn.clone(), 2), (two.arn.clone(), 1)]).await.unwrap();
    assert_eq!(
        swapped.iter().map(|v| (v.arn.clone(), v.priority)).collect::<Vec<_>>(),
        [(two.arn.clone(), Some(1)), (one.arn.clone(), Some(2))]
    );
    assert_eq!(code(rules::set_priorities(&r, &[(one.arn.clone(), 1)]).await), "PriorityInUse");
    let all = rules::of_listener(&r, &listener.arn).unwrap();
    assert_eq!(all.iter().map(|v| v.priority).collect::<Vec<_>>(), [Some(1), Some(2), None]);
    let default = all[2].arn.clone();
    assert_eq!(code(rules::delete(&r, &default).await), "OperationNotPermitted");
    assert_eq!(code(rules::set_priorities(&r, &[(default.clone(), 9)]).await), "OperationNotPermitted");
    let conditions = [path_is("/z")];
    assert_eq!(code(rules::modify(&r, &default, Some(&conditions), None).await), "OperationNotPermitted");
    let fixed = ActionInput {
        action_type: "fixed-response".into(),
        fixed_response: Some(super::actions::FixedResponseInput { status: "404".into(), ..Default::default() }),
        ..Default::default()
    };
    let view = rules::modify(&r, &default, None, Some(std::slice::from_ref(&fixed))).await.unwrap();
    assert!(view.is_default() && view.actions[0].type_name() == "fixed-response");
    assert_eq!(listeners::get(&r, &listener.arn).unwrap().record.default_actions, view.actions);
    assert_eq!(rules::by_arns(&r, &[default.clone(), one.arn.clone()]).unwrap().len(), 2);
    rules::delete(&r, &one.arn).await.unwrap();
    assert_eq!(code(rules::delete(&r, &one.arn).await), "RuleNotFound");
    // Rules belong to application load balancers only.
    let nlb = w.lb("n", LbType::Network).await;
    let tcp = w.tg("tcp", Protocol::Tcp, TargetType::Ip).await;
    let nl = w.listener(&nlb, 81, &tcp).await.unwrap();
    assert_eq!(code(w.rule(&nl.arn, 1, "/a", &tcp).await), "ValidationError");
}

#[tokio::test]
async fn targets_go_through_elbs_states() {
    let w = World::new().await;
    let r = w.region();
    let tg = w.tg("web", Protocol::Http, TargetType::Ip).await;
    // Outside the VPC, or not an address at all: refused.
    assert_eq!(code(targets::register(&r, &tg, &[ip("10.9.9.9")]).await), "InvalidTarget");
    assert_eq!(code(targets::register(&r, &tg, &[ip("web")]).await), "ValidationError");
    targets::register(&r, &tg, &[ip("172.31.0.10")]).await.unwrap();
    let state = |id: &str| targets::target_health(&r, &tg, id, 80).unwrap().map(|h| (h.state, h.reason));
    assert_eq!(state("172.31.0.10"), Some((HealthState::Unused, Some(Reason::NotInUse))));
    // Deregistering from a group nothing uses is immediate.
    targets::deregister(&r, &tg, &[ip("172.31.0.10")]).await.unwrap();
    assert_eq!(state("172.31.0.10"), None);
    let all = targets::describe(&r, &tg, Some(&[ip("172.31.0.10")])).unwrap();
    assert_eq!((all[0].health.state, all[0].health.reason), (HealthState::Unused, Some(Reason::NotRegistered)));
    assert_eq!(code(targets::deregister(&r, &tg, &[ip("172.31.0.10")]).await), "InvalidTarget");

    let lb = w.lb("web", LbType::Application).await;
    w.listener(&lb, 80, &tg).await.unwrap();
    targets::register(&r, &tg, &[ip("172.31.0.10"), ip("172.31.0.11")]).await.unwrap();
    targets::register(&r, &tg, &[ip("172.31.0.10")]).await.unwrap();
    assert_eq!(state("172.31.0.10"), Some((HealthState::Initial, Some(Reason::RegistrationInProgress))));
    let status = |id: &str, health: Health, in_flight: u32| TargetStatus {
        target_group_arn: tg.clone(),
        key: TargetKey { id: id.into(), port: 80 },
        health,
        in_flight,
    };
    record_statuses(&w.t.control, &[status("172.31.0.10", Health::Initial, 0)]).await.unwrap();
    assert_eq!(state("172.31.0.10"), Some((HealthState::Initial, Some(Reason::InitialHealthChecking))));
    let before = r.store().revision().unwrap();
    record_statuses(&w.t.control, &[status("172.31.0.10", Health::Initial, 3)]).await.unwrap();
    assert_eq!(r.store().revision().unwrap(), before, "nothing changed, nothing written");
    record_statuses(
        &w.t.control,
        &[
            status("172.31.0.10", Health::Healthy, 0),
            status("172.31.0.11", Health::Unhealthy(Failure::ResponseCode(502)), 0),
        ],
    )
    .await
    .unwrap();
    assert_eq!(state("172.31.0.10"), Some((HealthState::Healthy, None)));
    let h = targets::target_health(&r, &tg, "172.31.0.11", 80).unwrap().unwrap();
    assert_eq!(
        (h.reason, h.description.as_deref()),
        (Some(Reason::ResponseCodeMismatch), Some("Health checks failed with these codes: [502]"))
    );

    // Draining: until nothing is in flight, or until the delay has passed.
    targets::deregister(&r, &tg, &[ip("172.31.0.10"), ip("172.31.0.11")]).await.unwrap();
    assert_eq!(state("172.31.0.10"), Some((HealthState::Draining, Some(Reason::DeregistrationInProgress))));
    record_statuses(&w.t.control, &[status("172.31.0.10", Health::Healthy, 2)]).await.unwrap();
    assert!(state("172.31.0.10").is_some());
    record_statuses(&w.t.control, &[status("172.31.0.10", Health::Healthy, 0)]).await.unwrap();
    assert_eq!(state("172.31.0.10"), None, "nothing in flight: deregistered at once");
    let tg_id = target_groups::get(&r, &tg).unwrap().record.id;
    assert!(r.store().get(&r.keys.target_health(&tg_id, "172.31.0.10", 80)).unwrap().is_none());
    finish_draining(&w.t.control).await.unwrap();
    assert!(state("172.31.0.11").is_some());
    w.clock().advance(Duration::from_secs(301));
    finish_draining(&w.t.control).await.unwrap();
    assert_eq!(state("172.31.0.11"), None, "the delay has passed");
    // Reports of targets that are gone are dropped.
    record_statuses(&w.t.control, &[status("172.31.0.11", Health::Healthy, 0)]).await.unwrap();
    assert!(r.store().list(crate::keys::ELB_HEALTH).unwrap().is_empty());
}

#[tokio::test]
async fn ecs_registers_inside_its_own_transactions() {
    let w = World::new().await;
    let r = w.region();
    let tg = w.tg("web", Protocol::Http, TargetType::Ip).await;
    let lb = w.lb("web", LbType::Application).await;
    w.listener(&lb, 80, &tg).await.unwrap();
    let run = |(c, o): (Vec<berth_store::Compare>, Vec<berth_store::Op>)| {
        let store = r.control.store.clone();
        async move { store.txn(Txn::new().when(c).and_then(o)).await.unwrap().succeeded }
    };
    assert!(run(register_target_ops(&r, &tg, "172.31.0.20", 8080, None).unwrap()).await);
    let (c, o) = register_target_ops(&r, &tg, "172.31.0.20", 8080, None).unwrap();
    assert!(o.is_empty(), "registered already");
    assert!(run((c, o)).await);
    assert_eq!(target_health(&r, &tg, "172.31.0.20", 8080).unwrap().unwrap().state, HealthState::Initial);
    assert!(run(deregister_target_ops(&r, &tg, "172.31.0.20", 8080).unwrap()).await);
    assert_eq!(target_health(&r, &tg, "172.31.0.20", 8080).unwrap().unwrap().state, HealthState::Draining);
    assert!(deregister_target_ops(&r, &tg, "172.31.0.20", 8080).unwrap().1.is_empty());
    // Registering a draining target brings it back.
    assert!(run(register_target_ops(&r, &tg, "172.31.0.20", 8080, None).unwrap()).await);
    assert_eq!(target_health(&r, &tg, "172.31.0.20", 8080).unwrap().unwrap().state, HealthState::Initial);
    assert_eq!(code(register_target_ops(&r, &tg, "172.31.0.20", 8080, Some("us-east-1b"))), "ValidationError");
    let ghost = tg.replace("/web/", "/ghost/");
    assert_eq!(code(register_target_ops(&r, &ghost, "172.31.0.20", 80, None)), "TargetGroupNotFound");
}

/// A cluster with one container instance that has an EC2 instance id and a host address.
async fn instance(r: &crate::Region<'_>, ec2: &str, address: Option<&str>) {
    let mut attributes = vec![serde_json::json!({"name": "ecs.availability-zone", "value": "us-east-1a"})];
    if let Some(a) = address {
        attributes.push(serde_json::json!({"name": "berth.host-address", "value": a}));
    }
    let record = serde_json::json!({
        "instance": {"ec2InstanceId": ec2, "attributes": attributes},
        "status": "ACTIVE",
        "heartbeat": 0.0,
    });
    r.store().put(&r.keys.cluster("default"), b"{}".to_vec()).await.unwrap();
    r.store().put(&r.keys.instance("default", ec2), serde_json::to_vec(&record).unwrap()).await.unwrap();
}

#[tokio::test]
async fn the_data_plane_gets_every_listener_rule_and_target() {
    let w = World::new().await;
    let r = w.region();
    instance(&r, "i-0000000000000000a", Some("10.1.2.3")).await;
    instance(&r, "i-0000000000000000b", None).await;
    let alb = w.lb("web", LbType::Application).await;
    let api = w.tg("api", Protocol::Http, TargetType::Ip).await;
    let site = w.tg("site", Protocol::Http, TargetType::Instance).await;
    let unused = w.tg("unused", Protocol::Http, TargetType::Ip).await;
    let listener = w.listener(&alb, 8080, &site).await.unwrap();
    w.rule(&listener.arn, 20, "/api/*", &api).await.unwrap();
    let weighted = ActionInput {
        action_type: "forward".into(),
        forward: Some(ForwardInput {
            groups: vec![(Some(api.clone()), Some(3)), (Some(site.clone()), Some(1))],
            stickiness: Some((Some(true), Some(60))),
        }),
        ..Default::default()
    };
    let new = NewRule { priority: 10, conditions: vec![path_is("/mix")], actions: vec![weighted], tags: vec![] };
    rules::create(&r, &listener.arn, new).await.unwrap();
    targets::register(&r, &api, &[ip("172.31.0.10")]).await.unwrap();
    targets::register(&r, &unused, &[ip("172.31.0.12")]).await.unwrap();
    assert_eq!(code(targets::register(&r, &site, &[ip("i-0000000000000000c")]).await), "InvalidTarget");
    let zone = TargetInput { zone: Some("us-east-1a".into()), ..ip("i-0000000000000000a") };
    assert_eq!(code(targets::register(&r, &site, &[zone]).await), "ValidationError");
    let inst = |id: &str| TargetInput { id: id.into(), port: Some(9000), zone: None };
    targets::register(&r, &site, &[inst("i-0000000000000000a"), inst("i-0000000000000000b")]).await.unwrap();
    targets::deregister(&r, &site, &[inst("i-0000000000000000b")]).await.unwrap();
    let attrs = [("idle_timeout.timeout_seconds".to_string(), "120".to_string())];
    load_balancers::modify_attributes(&r, &alb, &attrs).await.unwrap();
    let lor = [("load_balancing.algorithm.type".to_string(), "least_outstanding_requests".to_string())];
    target_groups::modify_attributes(&r, &api, &lor).await.unwrap();

    let nlb = w.lb("tcp", LbType::Network).await;
    let tcp = w.tg("tcp", Protocol::Tcp, TargetType::Ip).await;
    w.listener(&nlb, 5432, &tcp).await.unwrap();
    let sticky = [("stickiness.enabled".to_string(), "true".to_string())];
    target_groups::modify_attributes(&r, &tcp, &sticky).await.unwrap();

    let address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let config = dataplane_config(&w.t.control, address).unwrap();
    assert_eq!(config.listeners.len(), 2);
    let http = &config.listeners[1];
    assert_eq!(
        (http.address.port(), http.protocol, http.idle_timeout),
        (8080, lb::Protocol::Http, Duration::from_secs(120))
    );
    let priorities: Vec<_> = http.rules.iter().map(|r| r.conditions.clone()).collect();
    assert_eq!(
        priorities,
        [
            vec![lb::Condition::PathPattern(vec!["/mix".into()])],
            vec![lb::Condition::PathPattern(vec!["/api/*".into()])],
            vec![]
        ]
    );
    assert!(
        matches!(&http.rules[0].action, lb::Action::Forward { groups, stickiness: Some(d) } if groups.len() == 2 && groups[0].weight == 3 && *d == Duration::from_secs(60))
    );
    let tcp_listener = &config.listeners[0];
    assert_eq!(
        (tcp_listener.protocol, tcp_listener.idle_timeout, tcp_listener.rules.len()),
        (lb::Protocol::Tcp, Duration::from_secs(350), 1)
    );
    assert_eq!(config.target_groups.len(), 3, "the unused group is left out");
    let api_group = &config.target_groups[&api];
    assert_eq!(api_group.algorithm, lb::Algorithm::LeastOutstandingRequests);
    assert_eq!(api_group.health_check.matcher, [(200, 200)]);
    assert_eq!(api_group.targets[0].address, "172.31.0.10:80".parse().unwrap());
    let site_group = &config.target_groups[&site];
    let by_id: std::collections::BTreeMap<_, _> =
        site_group.targets.iter().map(|t| (t.key.id.clone(), (t.address, t.draining))).collect();
    assert_eq!(by_id["i-0000000000000000a"], ("10.1.2.3:9000".parse().unwrap(), false));
    assert_eq!(by_id["i-0000000000000000b"], ("127.0.0.1:9000".parse().unwrap(), true));
    let tcp_group = &config.target_groups[&tcp];
    assert_eq!(
        (tcp_group.stickiness, tcp_group.health_check.timeout),
        (Some(SOURCE_IP_STICKINESS), Duration::from_secs(10))
    );
    // A deleted load balancer leaves the configuration.
    load_balancers::delete(&r, &nlb).await.unwrap();
    assert_eq!(dataplane_config(&w.t.control, address).unwrap().listeners.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever SetRulePriorities is asked, a listener's priorities stay unique: a request
    /// either applies whole (and leaves them unique) or is refused and changes nothing.
    #[test]
    fn priorities_stay_unique(requests in prop::collection::vec(prop::collection::vec((0usize..4, 1u32..6), 1..4), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let w = World::new().await;
            let r = w.region();
            let lb = w.lb("web", LbType::Application).await;
            let tg = w.tg("web", Protocol::Http, TargetType::Ip).await;
            let listener = w.listener(&lb, 80, &tg).await.unwrap();
            let mut arns = Vec::new();
            for p in 1..=4 {
                arns.push(w.rule(&listener.arn, p * 10, "/p", &tg).await.unwrap().arn);
            }
            for request in requests {
                let before = rules::of_listener(&r, &listener.arn).unwrap();
                let pairs: Vec<(String, u32)> = request.iter().map(|(i, p)| (arns[*i].clone(), *p)).collect();
                let outcome = rules::set_priorities(&r, &pairs).await;
                let after = rules::of_listener(&r, &listener.arn).unwrap();
                let mut priorities: Vec<u32> = after.iter().filter_map(|v| v.priority).collect();
                let n = priorities.len();
                priorities.dedup();
                assert_eq!(priorities.len(), n, "sorted and unique");
                if outcome.is_err() {
                    assert_eq!(before, after, "a refused request changes nothing");
                } else {
                    for (arn, p) in &pairs {
                        assert!(after.iter().any(|v| v.arn == *arn && v.priority == Some(*p)));
                    }
                }
            }
        });
    }
}
