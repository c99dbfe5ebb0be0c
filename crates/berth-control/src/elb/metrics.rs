//! The load balancers' CloudWatch metrics of one period, from what the data plane counted
//! ([`berth_lb::Counts`]) and its targets' health at the period's end, under ELB's namespaces
//! and dimensions: `AWS/ApplicationELB` and `AWS/NetworkELB`, `LoadBalancer` =
//! `app/NAME/ID` (or `net/...`), `TargetGroup` = `targetgroup/NAME/ID`.
//!
//! As ELB reports them: counts only when non-zero; `HealthyHostCount`,
//! `UnHealthyHostCount` and `RequestCountPerTarget` always (target tracking on the last one
//! must see quiet periods to scale in). `RequestCountPerTarget` is the group's requests over
//! its healthy targets (over all its serving targets when none is healthy).

use std::collections::BTreeMap;

use berth_lb::config::{Action, Config, Health, TargetStatus};
use berth_lb::{Counts, GroupCounts};
use berth_metrics::{Datum, MetricId, Stats};

pub const APPLICATION: &str = "AWS/ApplicationELB";
pub const NETWORK: &str = "AWS/NetworkELB";

/// The `LoadBalancer` dimension of a load balancer ARN (`app/NAME/ID`, `net/NAME/ID`).
pub fn load_balancer_dimension(arn: &str) -> Option<&str> {
    arn.split_once(":loadbalancer/").map(|(_, rest)| rest)
}

/// The `TargetGroup` dimension of a target group ARN (`targetgroup/NAME/ID`).
pub fn target_group_dimension(arn: &str) -> Option<&str> {
    arn.rsplit_once(':').map(|(_, rest)| rest).filter(|r| r.starts_with("targetgroup/"))
}

fn namespace_of(lb: &str) -> &'static str {
    if lb.starts_with("net/") { NETWORK } else { APPLICATION }
}

struct Out {
    at: i64,
    data: Vec<Datum>,
}

impl Out {
    fn put(&mut self, namespace: &str, name: &str, dims: &[(&str, &str)], stats: Stats, unit: &str) {
        let dims = dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.data.push(Datum {
            metric: MetricId::new(namespace, name, dims),
            timestamp: self.at,
            stats,
            unit: Some(unit.into()),
        });
    }

    fn count(&mut self, namespace: &str, name: &str, dims: &[(&str, &str)], n: u64) {
        if n > 0 {
            self.put(namespace, name, dims, Stats::value(n as f64), "Count");
        }
    }
}

/// The datapoints of one period ending at `at_ms`.
pub fn datapoints(config: &Config, counts: &Counts, statuses: &[TargetStatus], at_ms: i64) -> Vec<Datum> {
    let mut out = Out { at: at_ms, data: Vec::new() };
    // Each target group belongs to the one load balancer whose listeners forward to it.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for l in &config.listeners {
        for rule in &l.rules {
            if let Action::Forward { groups, .. } = &rule.action {
                for g in groups {
                    owner.entry(g.target_group_arn.as_str()).or_insert(l.load_balancer_arn.as_str());
                }
            }
        }
    }
    let mut by_lb: BTreeMap<&str, GroupCounts> = BTreeMap::new();
    for (tg_arn, lb_arn) in &owner {
        let (Some(tg), Some(lb)) = (target_group_dimension(tg_arn), load_balancer_dimension(lb_arn)) else { continue };
        let ns = namespace_of(lb);
        let c = counts.target_groups.get(*tg_arn).copied().unwrap_or_default();
        let total = by_lb.entry(lb_arn).or_default();
        total.requests += c.requests;
        total.target_2xx += c.target_2xx;
        total.target_3xx += c.target_3xx;
        total.target_4xx += c.target_4xx;
        total.target_5xx += c.target_5xx;
        total.responses += c.responses;
        total.response_micros += c.response_micros;
        total.connection_errors += c.connection_errors;
        if c.responses > 0 {
            total.fastest_micros =
                if total.fastest_micros == 0 { c.fastest_micros } else { total.fastest_micros.min(c.fastest_micros) };
            total.slowest_micros = total.slowest_micros.max(c.slowest_micros);
        }
        let dims = [("LoadBalancer", lb), ("TargetGroup", tg)];
        let serving: Vec<&TargetStatus> =
            statuses.iter().filter(|s| s.target_group_arn == *tg_arn && !draining(config, tg_arn, s)).collect();
        let healthy = serving.iter().filter(|s| matches!(s.health, Health::Healthy | Health::Unchecked)).count();
        let unhealthy = serving.iter().filter(|s| matches!(s.health, Health::Unhealthy(_))).count();
        out.put(ns, "HealthyHostCount", &dims, Stats::value(healthy as f64), "Count");
        out.put(ns, "UnHealthyHostCount", &dims, Stats::value(unhealthy as f64), "Count");
        if ns == APPLICATION {
            group_metrics(&mut out, &dims, &c);
            let per = if healthy > 0 { healthy } else { serving.len().max(1) };
            let share = Stats::value(c.requests as f64 / per as f64);
            out.put(ns, "RequestCountPerTarget", &[("TargetGroup", tg)], share, "Count");
            out.put(ns, "RequestCountPerTarget", &dims, share, "Count");
        }
    }
    for (lb_arn, c) in &counts.load_balancers {
        let Some(lb) = load_balancer_dimension(lb_arn) else { continue };
        let dims = [("LoadBalancer", lb)];
        if namespace_of(lb) == NETWORK {
            out.count(NETWORK, "NewFlowCount", &dims, c.connections);
            continue;
        }
        out.count(APPLICATION, "NewConnectionCount", &dims, c.connections);
        for (name, n) in [
            ("HTTPCode_ELB_3XX_Count", c.elb_3xx),
            ("HTTPCode_ELB_4XX_Count", c.elb_4xx),
            ("HTTPCode_ELB_5XX_Count", c.elb_5xx),
            ("HTTPCode_ELB_502_Count", c.elb_502),
            ("HTTPCode_ELB_503_Count", c.elb_503),
            ("HTTPCode_ELB_504_Count", c.elb_504),
            ("HTTP_Fixed_Response_Count", c.fixed),
            ("HTTP_Redirect_Count", c.redirects),
        ] {
            out.count(APPLICATION, name, &dims, n);
        }
        if let Some(total) = by_lb.get(lb_arn.as_str()) {
            group_metrics(&mut out, &dims, total);
        }
    }
    out.data
}

/// A draining target counts as neither healthy nor unhealthy (it takes no new requests).
fn draining(config: &Config, tg_arn: &str, status: &TargetStatus) -> bool {
    config
        .target_groups
        .get(tg_arn)
        .and_then(|g| g.targets.iter().find(|t| t.key == status.key))
        .is_some_and(|t| t.draining)
}

/// Requests, targets' answers and response time, by load balancer or by target group.
fn group_metrics(out: &mut Out, dims: &[(&str, &str)], c: &GroupCounts) {
    out.count(APPLICATION, "RequestCount", dims, c.requests);
    for (name, n) in [
        ("HTTPCode_Target_2XX_Count", c.target_2xx),
        ("HTTPCode_Target_3XX_Count", c.target_3xx),
        ("HTTPCode_Target_4XX_Count", c.target_4xx),
        ("HTTPCode_Target_5XX_Count", c.target_5xx),
        ("TargetConnectionErrorCount", c.connection_errors),
    ] {
        out.count(APPLICATION, name, dims, n);
    }
    if c.responses > 0 {
        let seconds = |micros: u64| micros as f64 / 1e6;
        let stats = Stats {
            count: c.responses as f64,
            sum: seconds(c.response_micros),
            min: seconds(c.fastest_micros),
            max: seconds(c.slowest_micros),
        };
        out.put(APPLICATION, "TargetResponseTime", dims, stats, "Seconds");
    }
}

#[cfg(test)]
mod tests;
