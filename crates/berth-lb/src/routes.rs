//! A listener's rules compiled for serving: conditions ready to match, forward actions
//! holding their live target groups and weights. Built on every apply and swapped in whole,
//! so a request reads one consistent snapshot without taking a lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::balance::Weighted;
use crate::config::{self, Action};
use crate::matching::{CompiledConditions, RequestView};
use crate::meters::LbMeter;
use crate::target::Group;

pub struct Routes {
    pub port: u16,
    /// The listener port as a header value, for `X-Forwarded-Port`.
    pub port_header: HeaderValue,
    pub idle_timeout: Duration,
    pub rules: Vec<Rule>,
    /// The counters of the listener's load balancer.
    pub meter: Arc<LbMeter>,
}

pub struct Rule {
    pub conditions: CompiledConditions,
    pub action: RouteAction,
}

pub enum RouteAction {
    Forward(Forward),
    Fixed {
        status: u16,
        content_type: Option<String>,
        body: Option<String>,
    },
    /// [protocol, host, port, path, query] templates.
    Redirect {
        template: [String; 5],
        status: u16,
    },
}

pub struct Forward {
    pub groups: Vec<Arc<Group>>,
    weights: Weighted,
    weight_of: Vec<u32>,
    /// Group stickiness (`AWSALBTG`) for this long.
    pub stickiness: Option<Duration>,
}

impl Forward {
    /// The group for a new request: the one the client's `AWSALBTG` cookie names while it
    /// still has weight, else one chosen by weight. None when every weight is 0.
    pub fn choose(&self, sticky: Option<u64>) -> Option<&Arc<Group>> {
        if let Some(id) = sticky
            && let Some(i) = self.groups.iter().position(|g| g.cookie == id)
            && self.weight_of[i] > 0
        {
            return Some(&self.groups[i]);
        }
        self.weights.pick().map(|i| &self.groups[i])
    }
}

impl Routes {
    /// Compiles `listener`'s rules against the live groups (`lookup` gives the group of an
    /// ARN); `port` is the port it is bound to; `meter` counts for its load balancer.
    pub fn build(
        listener: &config::Listener,
        port: u16,
        lookup: &dyn Fn(&str) -> Arc<Group>,
        meter: Arc<LbMeter>,
    ) -> Self {
        let rules = listener
            .rules
            .iter()
            .map(|r| Rule {
                conditions: CompiledConditions::new(&r.conditions),
                action: compile_action(&r.action, lookup),
            })
            .collect();
        Routes { port, port_header: HeaderValue::from(port), idle_timeout: listener.idle_timeout, rules, meter }
    }

    /// The first rule whose conditions all match.
    pub fn route(&self, req: &RequestView<'_>) -> Option<&RouteAction> {
        self.rules.iter().find(|r| r.conditions.matches(req)).map(|r| &r.action)
    }

    /// A TCP listener's forward action: its default (only) rule's.
    pub fn tcp_forward(&self) -> Option<&Forward> {
        self.rules.iter().find_map(|r| match &r.action {
            RouteAction::Forward(f) => Some(f),
            _ => None,
        })
    }
}

fn compile_action(action: &Action, lookup: &dyn Fn(&str) -> Arc<Group>) -> RouteAction {
    match action {
        Action::Forward { groups, stickiness } => {
            let weight_of: Vec<u32> = groups.iter().map(|g| g.weight).collect();
            RouteAction::Forward(Forward {
                groups: groups.iter().map(|g| lookup(&g.target_group_arn)).collect(),
                weights: Weighted::new(&weight_of),
                weight_of,
                stickiness: *stickiness,
            })
        }
        Action::FixedResponse { status, content_type, body } => {
            RouteAction::Fixed { status: *status, content_type: content_type.clone(), body: body.clone() }
        }
        Action::Redirect { protocol, host, port, path, query, status } => RouteAction::Redirect {
            template: [protocol.clone(), host.clone(), port.clone(), path.clone(), query.clone()],
            status: *status,
        },
    }
}

/// Looks groups up in the live set, making an empty one for an ARN the config lacks (its
/// requests get ALB's 503).
pub fn lookup_in<'a>(groups: &'a BTreeMap<String, Arc<Group>>) -> impl Fn(&str) -> Arc<Group> + 'a {
    move |arn| groups.get(arn).cloned().unwrap_or_else(|| Arc::new(Group::empty(arn)))
}
