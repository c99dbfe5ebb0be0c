//! Which load balancers use which target groups: every listener and rule of a region, read
//! together, with the revisions that guard a change computed from them. A change that adds
//! or removes a forward to a group, and deleting a group, both compare these prefixes, so a
//! group is never deleted while something starts forwarding to it.

use std::collections::BTreeSet;

use berth_store::Compare;

use super::actions::Action;
use super::listeners::ListenerRecord;
use super::rules::RuleRecord;
use crate::Region;
use crate::error::ControlResult;
use crate::vpc::{Stored, read_all};

pub struct Refs {
    listeners_at: u64,
    pub listeners: Vec<Stored<ListenerRecord>>,
    rules_at: u64,
    pub rules: Vec<Stored<RuleRecord>>,
}

/// Something that forwards: a listener's default rule, or a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarder<'a> {
    Listener(&'a str),
    Rule(&'a str),
}

impl Refs {
    pub fn read(region: &Region<'_>) -> ControlResult<Refs> {
        let (listeners_at, listeners) = read_all(region, &region.keys.all_listeners())?;
        let (rules_at, rules) = read_all(region, &region.keys.all_rules())?;
        Ok(Refs { listeners_at, listeners, rules_at, rules })
    }

    /// The compares that keep what was read true until the change commits.
    pub fn guards(&self, region: &Region<'_>) -> Vec<Compare> {
        vec![
            Compare::prefix_unchanged_since(&region.keys.all_listeners(), self.listeners_at),
            Compare::prefix_unchanged_since(&region.keys.all_rules(), self.rules_at),
        ]
    }

    /// Every forwarder with its load balancer's id and actions, but `except`.
    fn forwarders<'a>(&'a self, except: Option<Forwarder<'_>>) -> impl Iterator<Item = (&'a str, &'a [Action])> + 'a {
        let (listener_arn, rule_arn) = match except {
            Some(Forwarder::Listener(a)) => (Some(a.to_string()), None),
            Some(Forwarder::Rule(a)) => (None, Some(a.to_string())),
            None => (None, None),
        };
        let listeners = self
            .listeners
            .iter()
            .filter(move |l| listener_arn.as_deref() != Some(l.record.arn.as_str()))
            .map(|l| (l.record.lb_id.as_str(), l.record.default_actions.as_slice()));
        let rules = self
            .rules
            .iter()
            .filter(move |r| rule_arn.as_deref() != Some(r.record.arn.as_str()))
            .map(|r| (r.record.lb_id.as_str(), r.record.actions.as_slice()));
        listeners.chain(rules)
    }

    /// The ids of the load balancers forwarding to `tg_arn`, leaving `except` out.
    pub fn load_balancer_ids(&self, tg_arn: &str, except: Option<Forwarder<'_>>) -> BTreeSet<String> {
        self.forwarders(except)
            .filter(|(_, actions)| actions.iter().any(|a| a.target_groups().any(|g| g == tg_arn)))
            .map(|(lb, _)| lb.to_string())
            .collect()
    }

    /// The ARNs of the load balancers forwarding to `tg_arn` (a rule's load balancer always
    /// has the rule's listener, so the listeners name them all).
    pub fn load_balancers_of(&self, tg_arn: &str) -> BTreeSet<String> {
        let ids = self.load_balancer_ids(tg_arn, None);
        let listeners = self.listeners.iter().map(|l| &l.record);
        listeners.filter(|l| ids.contains(&l.lb_id)).map(|l| l.load_balancer_arn.clone()).collect()
    }

    /// Whether any listener or rule forwards to `tg_arn`.
    pub fn uses(&self, tg_arn: &str) -> bool {
        !self.load_balancer_ids(tg_arn, None).is_empty()
    }
}
