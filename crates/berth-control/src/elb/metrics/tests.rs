//! The metrics of a period from a data plane's counts and its targets' health.

use std::time::Duration;

use berth_lb::LbCounts;
use berth_lb::config::{
    Algorithm, Failure, HealthCheck, Listener, Protocol, Rule, Target, TargetGroup, TargetKey, WeightedGroup,
};

use super::*;

const ALB: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188";
const NLB: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/db/6c495c0c918850dc";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/943f017f100becff";
const TCP_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/db/100becff943f017f";

fn listener(lb: &str, protocol: Protocol, tg: &str) -> Listener {
    Listener {
        arn: format!("{lb}/listener"),
        load_balancer_arn: lb.into(),
        address: "127.0.0.1:80".parse().unwrap(),
        protocol,
        idle_timeout: Duration::from_secs(60),
        rules: vec![Rule {
            arn: "rule".into(),
            conditions: vec![],
            action: Action::Forward {
                groups: vec![WeightedGroup { target_group_arn: tg.into(), weight: 1 }],
                stickiness: None,
            },
        }],
    }
}

fn group(arn: &str, targets: &[(&str, bool)]) -> TargetGroup {
    TargetGroup {
        arn: arn.into(),
        protocol: Protocol::Http,
        algorithm: Algorithm::RoundRobin,
        slow_start: Duration::ZERO,
        stickiness: None,
        health_check: HealthCheck::default(),
        targets: targets
            .iter()
            .map(|(id, draining)| Target {
                key: TargetKey { id: id.to_string(), port: 80 },
                address: "127.0.0.1:80".parse().unwrap(),
                draining: *draining,
            })
            .collect(),
    }
}

fn status(tg: &str, id: &str, health: Health) -> TargetStatus {
    TargetStatus { target_group_arn: tg.into(), key: TargetKey { id: id.into(), port: 80 }, health, in_flight: 0 }
}

fn find<'a>(data: &'a [Datum], ns: &str, name: &str, dims: &[(&str, &str)]) -> Option<&'a Stats> {
    let id = MetricId::new(ns, name, dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let mut found = data.iter().filter(|d| d.metric == id);
    let first = found.next().map(|d| &d.stats);
    assert!(found.next().is_none(), "one datapoint per metric and period: {name} {dims:?}");
    first
}

fn config() -> Config {
    Config {
        listeners: vec![listener(ALB, Protocol::Http, TG), listener(NLB, Protocol::Tcp, TCP_TG)],
        target_groups: [
            (TG.to_string(), group(TG, &[("a", false), ("b", false), ("c", false), ("d", true)])),
            (TCP_TG.to_string(), group(TCP_TG, &[("x", false)])),
        ]
        .into(),
    }
}

#[test]
fn dimensions_are_the_arns_last_parts() {
    assert_eq!(load_balancer_dimension(ALB), Some("app/web/50dc6c495c0c9188"));
    assert_eq!(load_balancer_dimension(NLB), Some("net/db/6c495c0c918850dc"));
    assert_eq!(target_group_dimension(TG), Some("targetgroup/web/943f017f100becff"));
    assert_eq!(target_group_dimension(ALB), None);
}

#[test]
fn a_busy_period_reports_requests_answers_times_and_hosts() {
    let statuses = [
        status(TG, "a", Health::Healthy),
        status(TG, "b", Health::Healthy),
        status(TG, "c", Health::Unhealthy(Failure::Timeout)),
        status(TG, "d", Health::Healthy),
        status(TCP_TG, "x", Health::Initial),
    ];
    let mut counts = Counts::default();
    counts
        .load_balancers
        .insert(ALB.into(), LbCounts { connections: 3, elb_5xx: 2, elb_503: 2, fixed: 1, ..LbCounts::default() });
    counts.load_balancers.insert(NLB.into(), LbCounts { connections: 4, ..LbCounts::default() });
    counts.target_groups.insert(
        TG.into(),
        GroupCounts {
            requests: 10,
            target_2xx: 9,
            target_5xx: 1,
            responses: 10,
            response_micros: 50_000,
            fastest_micros: 1_000,
            slowest_micros: 20_000,
            ..GroupCounts::default()
        },
    );
    let data = datapoints(&config(), &counts, &statuses, 60_000);
    assert!(data.iter().all(|d| d.timestamp == 60_000));
    let (lb, tg) = ("app/web/50dc6c495c0c9188", "targetgroup/web/943f017f100becff");
    let both = [("LoadBalancer", lb), ("TargetGroup", tg)];
    let sum = |name: &str, dims: &[(&str, &str)]| find(&data, APPLICATION, name, dims).map(|s| s.sum);
    assert_eq!(sum("RequestCount", &[("LoadBalancer", lb)]), Some(10.0));
    assert_eq!(sum("RequestCount", &both), Some(10.0));
    assert_eq!(sum("HTTPCode_Target_2XX_Count", &both), Some(9.0));
    assert_eq!(sum("HTTPCode_Target_5XX_Count", &[("LoadBalancer", lb)]), Some(1.0));
    assert_eq!(sum("HTTPCode_Target_4XX_Count", &both), None, "zero counts are not reported");
    assert_eq!(sum("HTTPCode_ELB_503_Count", &[("LoadBalancer", lb)]), Some(2.0));
    assert_eq!(sum("HTTP_Fixed_Response_Count", &[("LoadBalancer", lb)]), Some(1.0));
    assert_eq!(sum("NewConnectionCount", &[("LoadBalancer", lb)]), Some(3.0));
    // Two healthy serving targets ("d" drains): 10 requests are 5 per target.
    assert_eq!(sum("HealthyHostCount", &both), Some(2.0));
    assert_eq!(sum("UnHealthyHostCount", &both), Some(1.0));
    assert_eq!(sum("RequestCountPerTarget", &[("TargetGroup", tg)]), Some(5.0));
    assert_eq!(sum("RequestCountPerTarget", &both), Some(5.0));
    let time = find(&data, APPLICATION, "TargetResponseTime", &both).unwrap();
    assert_eq!((time.count, time.average(), time.min, time.max), (10.0, 0.005, 0.001, 0.02));
    assert_eq!(find(&data, APPLICATION, "TargetResponseTime", &[("LoadBalancer", lb)]), Some(time));

    let (nlb, tcp) = ("net/db/6c495c0c918850dc", "targetgroup/db/100becff943f017f");
    let nlb_dims = [("LoadBalancer", nlb), ("TargetGroup", tcp)];
    assert_eq!(find(&data, NETWORK, "NewFlowCount", &[("LoadBalancer", nlb)]).map(|s| s.sum), Some(4.0));
    assert_eq!(find(&data, NETWORK, "HealthyHostCount", &nlb_dims).map(|s| s.sum), Some(0.0));
    assert_eq!(find(&data, NETWORK, "UnHealthyHostCount", &nlb_dims).map(|s| s.sum), Some(0.0));
    assert!(data.iter().filter(|d| d.metric.namespace == NETWORK).all(|d| d.metric.name != "RequestCount"));
}

#[test]
fn a_quiet_period_still_reports_hosts_and_requests_per_target() {
    let statuses = [status(TG, "a", Health::Unhealthy(Failure::Failed)), status(TG, "b", Health::Initial)];
    let data = datapoints(&config(), &Counts::default(), &statuses, 1_000);
    let tg = "targetgroup/web/943f017f100becff";
    assert_eq!(find(&data, APPLICATION, "RequestCountPerTarget", &[("TargetGroup", tg)]).map(|s| s.sum), Some(0.0));
    let names: Vec<&str> = data.iter().map(|d| d.metric.name.as_str()).collect();
    assert!(!names.contains(&"RequestCount") && !names.contains(&"TargetResponseTime"), "{names:?}");
}

#[test]
fn with_no_healthy_target_requests_spread_over_all_serving_ones() {
    let statuses = [status(TG, "a", Health::Unhealthy(Failure::Failed)), status(TG, "b", Health::Initial)];
    let mut counts = Counts::default();
    counts.target_groups.insert(TG.into(), GroupCounts { requests: 8, ..GroupCounts::default() });
    let data = datapoints(&config(), &counts, &statuses, 1_000);
    let tg = "targetgroup/web/943f017f100becff";
    assert_eq!(find(&data, APPLICATION, "RequestCountPerTarget", &[("TargetGroup", tg)]).map(|s| s.sum), Some(4.0));
}
