//! The data plane's configuration ([`berth_lb::config::Config`]) built from the records:
//! every listener of every active load balancer of every region, bound on the one listener
//! address; its rules in evaluation order with ELB's defaults filled in; and every target
//! group those rules forward to, with its registered targets (draining ones flagged) resolved
//! to socket addresses — an `ip` target is its address, an `instance` target its container
//! instance's `berth.host-address` attribute (the loopback address when it has none), with
//! the target's port.
//!
//! Everything it reads lives under [`crate::keys::Keys::elb`] (besides the container
//! instances' attributes), so a watch on that prefix tells when to build it again.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use berth_lb::config as lb;
use berth_store::KeyRange;

use super::actions::{Action, ActionKind};
use super::arns::LbType;
use super::attributes::{self, Attributed};
use super::conditions::Condition;
use super::load_balancers::{self, LbState};
use super::refs::Refs;
use super::rules::{RuleView, sort};
use super::target_groups::{self, HealthCheck, Protocol, TargetGroupRecord, parse_matcher};
use super::targets::{self, TargetRecord, TargetState};
use crate::error::ControlResult;
use crate::keys::ELB_REGIONS;
use crate::vpc::read_all;
use crate::{Control, Region};

/// What a TCP group's `source_ip` stickiness is given as in [`lb::TargetGroup::stickiness`]
/// (which has no other way to say it): affinity by client address, without expiry.
pub const SOURCE_IP_STICKINESS: Duration = Duration::MAX;

/// The whole configuration the data plane serves, listening on `address`.
pub fn dataplane_config(control: &Control, address: IpAddr) -> ControlResult<lb::Config> {
    let mut config = lb::Config::default();
    for kv in control.store.range(&KeyRange::prefix(ELB_REGIONS))?.kvs {
        region_config(&control.region(&kv.key[ELB_REGIONS.len()..]), address, &mut config)?;
    }
    config.listeners.sort_by_key(|l| l.address.port());
    Ok(config)
}

fn region_config(region: &Region<'_>, address: IpAddr, config: &mut lb::Config) -> ControlResult<()> {
    let lbs: HashMap<String, load_balancers::LoadBalancerRecord> = load_balancers::list(region)?
        .into_iter()
        .filter(|l| l.state == LbState::Active)
        .map(|l| (l.id.clone(), l))
        .collect();
    let refs = Refs::read(region)?;
    let mut used: BTreeSet<String> = BTreeSet::new();
    for listener in refs.listeners.iter().map(|l| &l.record) {
        let Some(balancer) = lbs.get(&listener.lb_id) else { continue };
        let mut views: Vec<RuleView> = refs
            .rules
            .iter()
            .filter(|r| r.record.listener_id == listener.id)
            .map(|r| RuleView {
                arn: r.record.arn.clone(),
                priority: Some(r.record.priority),
                conditions: r.record.conditions.clone(),
                actions: r.record.actions.clone(),
            })
            .collect();
        views.push(RuleView::default_of(listener));
        sort(&mut views);
        let mut rules = Vec::new();
        for view in views {
            let Some(action) = view.actions.first() else { continue };
            used.extend(action.target_groups().map(str::to_string));
            rules.push(lb::Rule {
                arn: view.arn,
                conditions: view.conditions.iter().map(condition).collect(),
                action: self::action(action),
            });
        }
        let idle = match balancer.lb_type {
            LbType::Application => {
                attributes::number(balancer.owner(), &balancer.attributes, "idle_timeout.timeout_seconds")
            }
            LbType::Network => attributes::number(listener.owner(), &listener.attributes, "tcp.idle_timeout.seconds"),
        };
        config.listeners.push(lb::Listener {
            arn: listener.arn.clone(),
            load_balancer_arn: listener.load_balancer_arn.clone(),
            address: SocketAddr::new(address, listener.port),
            protocol: protocol(listener.protocol),
            idle_timeout: Duration::from_secs(idle),
            rules,
        });
    }
    let groups: HashMap<String, TargetGroupRecord> = target_groups::list(region)?
        .into_iter()
        .filter(|g| used.contains(&g.arn))
        .map(|g| (g.arn.clone(), g))
        .collect();
    let instances = if groups.values().any(|g| g.target_type == target_groups::TargetType::Instance) {
        targets::instance_hosts(region)?
    } else {
        HashMap::new()
    };
    for tg in groups.values() {
        let registered: Vec<TargetRecord> =
            read_all(region, &region.keys.targets(&tg.id))?.1.into_iter().map(|s| s.record).collect();
        config.target_groups.insert(tg.arn.clone(), group(tg, &registered, &instances));
    }
    Ok(())
}

fn protocol(p: Protocol) -> lb::Protocol {
    match p {
        Protocol::Http => lb::Protocol::Http,
        Protocol::Tcp => lb::Protocol::Tcp,
    }
}

fn condition(c: &Condition) -> lb::Condition {
    match c {
        Condition::PathPattern { values } => lb::Condition::PathPattern(values.clone()),
        Condition::HostHeader { values } => lb::Condition::HostHeader(values.clone()),
        Condition::HttpHeader { name, values } => {
            lb::Condition::HttpHeader { name: name.clone(), values: values.clone() }
        }
        Condition::HttpRequestMethod { values } => lb::Condition::HttpRequestMethod(values.clone()),
        Condition::QueryString { values } => {
            lb::Condition::QueryString(values.iter().map(|p| (p.key.clone(), p.value.clone())).collect())
        }
        Condition::SourceIp { values } => lb::Condition::SourceIp(values.clone()),
    }
}

fn action(a: &Action) -> lb::Action {
    match &a.kind {
        ActionKind::Forward { groups, stickiness } => lb::Action::Forward {
            groups: groups
                .iter()
                .map(|g| lb::WeightedGroup { target_group_arn: g.arn.clone(), weight: g.weight })
                .collect(),
            stickiness: stickiness.enabled.then(|| Duration::from_secs(u64::from(stickiness.duration.unwrap_or(1)))),
        },
        ActionKind::FixedResponse { status, content_type, body } => lb::Action::FixedResponse {
            status: status.parse().unwrap_or(500),
            content_type: content_type.clone(),
            body: body.clone(),
        },
        ActionKind::Redirect { protocol, host, port, path, query, status } => lb::Action::Redirect {
            protocol: protocol.clone(),
            host: host.clone(),
            port: port.clone(),
            path: path.clone(),
            query: query.clone(),
            status: status.code(),
        },
    }
}

fn health_check(group: Protocol, hc: &HealthCheck) -> lb::HealthCheck {
    let (lo, hi) = HealthCheck::matcher_bounds(group);
    lb::HealthCheck {
        enabled: hc.enabled,
        protocol: protocol(hc.protocol),
        port: hc.port,
        path: hc.path.clone().unwrap_or_else(|| "/".into()),
        interval: Duration::from_secs(u64::from(hc.interval)),
        timeout: Duration::from_secs(u64::from(hc.timeout)),
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
        matcher: hc.matcher.as_deref().and_then(|m| parse_matcher(m, lo, hi)).unwrap_or_default(),
    }
}

fn group(
    tg: &TargetGroupRecord,
    registered: &[TargetRecord],
    instances: &HashMap<String, targets::InstanceHost>,
) -> lb::TargetGroup {
    let http = tg.protocol == Protocol::Http;
    let algorithm = if http && tg.attribute("load_balancing.algorithm.type") == "least_outstanding_requests" {
        lb::Algorithm::LeastOutstandingRequests
    } else {
        lb::Algorithm::RoundRobin
    };
    let slow_start = if http { tg.attribute("slow_start.duration_seconds").parse().unwrap_or(0) } else { 0 };
    let stickiness = (tg.attribute("stickiness.enabled") == "true").then(|| {
        if http {
            Duration::from_secs(tg.attribute("stickiness.lb_cookie.duration_seconds").parse().unwrap_or(86_400))
        } else {
            SOURCE_IP_STICKINESS
        }
    });
    let targets = registered
        .iter()
        .filter_map(|t| {
            Some(lb::Target {
                key: lb::TargetKey { id: t.id.clone(), port: t.port },
                address: targets::address_of(tg, t, instances)?,
                draining: matches!(t.state, TargetState::Draining { .. }),
            })
        })
        .collect();
    lb::TargetGroup {
        arn: tg.arn.clone(),
        protocol: protocol(tg.protocol),
        algorithm,
        slow_start: Duration::from_secs(slow_start),
        stickiness,
        health_check: health_check(tg.protocol, &tg.health_check),
        targets,
    }
}
