//! Listener rules of application load balancers: conditions, one action and a priority
//! (1 to 50000, unique per listener; `PriorityInUse` otherwise), evaluated in ascending
//! priority before the listener's default rule. At most 100 per load balancer. The default
//! rule (kept in its listener's record) shows here with priority `default`: its actions can
//! change, it has no conditions and no priority to set, and it cannot be deleted.

use std::collections::{BTreeMap, BTreeSet};

use berth_store::{CmpOp, Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use super::actions::{self, Action, ActionInput};
use super::arns::{self, ArnKind, LbType, Resource};
use super::conditions::{self, Condition, ConditionInput};
use super::limits::RULES;
use super::listeners::{self, ListenerChange, ListenerRecord, check_forwards};
use super::load_balancers;
use super::refs::{Forwarder, Refs};
use super::tags::{self, Tag};
use super::{ElbError, Limit};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};
use crate::vpc::{Stored, read};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRecord {
    pub arn: String,
    pub id: String,
    pub listener_arn: String,
    pub listener_id: String,
    pub lb_id: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A rule as DescribeRules shows it: a rule, or a listener's default rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleView {
    pub arn: String,
    /// None: the default rule.
    pub priority: Option<u32>,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

impl RuleView {
    pub fn is_default(&self) -> bool {
        self.priority.is_none()
    }

    fn of(rule: &RuleRecord) -> RuleView {
        RuleView {
            arn: rule.arn.clone(),
            priority: Some(rule.priority),
            conditions: rule.conditions.clone(),
            actions: rule.actions.clone(),
        }
    }

    pub fn default_of(listener: &ListenerRecord) -> RuleView {
        RuleView {
            arn: listener.default_rule_arn.clone(),
            priority: None,
            conditions: Vec::new(),
            actions: listener.default_actions.clone(),
        }
    }
}

/// Evaluation order: ascending priority, the default rule last.
pub fn sort(views: &mut [RuleView]) {
    views.sort_by_key(|v| v.priority.unwrap_or(u32::MAX));
}

/// What a rule ARN names: a rule, the default rule of a listener, or nothing.
pub enum Found {
    Rule(Stored<RuleRecord>),
    Default(Stored<ListenerRecord>),
}

/// A rule ARN's rule (`ValidationError` when malformed, `RuleNotFound` when none).
pub fn get(region: &Region<'_>, arn: &str) -> ControlResult<Found> {
    let Some(Resource::Rule { lb, listener, id }) = arns::expect(region, ArnKind::Rule, arn)? else {
        return Err(ElbError::rules_not_found().into());
    };
    if let Some(rule) = read::<RuleRecord>(region, &region.keys.rule(&listener, &id))?.filter(|r| r.record.arn == arn) {
        return Ok(Found::Rule(rule));
    }
    match read::<ListenerRecord>(region, &region.keys.listener(&lb.id, &listener))? {
        Some(l) if l.record.default_rule_arn == arn => Ok(Found::Default(l)),
        _ => Err(ElbError::rules_not_found().into()),
    }
}

/// A listener's rules, its default rule last.
pub fn of_listener(region: &Region<'_>, listener_arn: &str) -> ControlResult<Vec<RuleView>> {
    let listener = listeners::get(region, listener_arn)?.record;
    let rules = crate::vpc::read_all::<RuleRecord>(region, &region.keys.rules(&listener.id))?.1;
    let mut views: Vec<RuleView> = rules.iter().map(|r| RuleView::of(&r.record)).collect();
    views.push(RuleView::default_of(&listener));
    sort(&mut views);
    Ok(views)
}

/// The rules `arns` name, each once, in evaluation order.
pub fn by_arns(region: &Region<'_>, arns: &[String]) -> ControlResult<Vec<RuleView>> {
    let mut views = Vec::new();
    for arn in arns.iter().collect::<BTreeSet<_>>() {
        views.push(match get(region, arn)? {
            Found::Rule(r) => RuleView::of(&r.record),
            Found::Default(l) => RuleView::default_of(&l.record),
        });
    }
    sort(&mut views);
    Ok(views)
}

/// What CreateRule asks for.
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    pub priority: u32,
    pub conditions: Vec<ConditionInput>,
    pub actions: Vec<ActionInput>,
    pub tags: Vec<Tag>,
}

/// The listener of a rule change and its load balancer, which must be an application one.
fn listener_and_lb(
    region: &Region<'_>,
    listener_arn: &str,
) -> ControlResult<(Stored<ListenerRecord>, load_balancers::LoadBalancerRecord)> {
    let listener = listeners::get(region, listener_arn)?;
    let lb = load_balancers::get(region, &listener.record.load_balancer_arn)?.record;
    if lb.lb_type == LbType::Network {
        return Err(ElbError::validation(
            "Listeners of Network Load Balancers have only their default rule: rules are for Application Load Balancers",
        )
        .into());
    }
    Ok((listener, lb))
}

fn priority_taken(refs: &Refs, listener_id: &str, priority: u32, except: Option<&str>) -> bool {
    refs.rules.iter().any(|r| {
        r.record.listener_id == listener_id && r.record.priority == priority && Some(r.record.arn.as_str()) != except
    })
}

/// CreateRule.
pub async fn create(region: &Region<'_>, listener_arn: &str, new: NewRule) -> ControlResult<RuleRecord> {
    tags::check_new(&new.tags)?;
    let conditions = conditions::check(&new.conditions)?;
    retry(|| async {
        let (listener, lb) = listener_and_lb(region, listener_arn)?;
        let actions = actions::check(lb.lb_type, &new.actions)?;
        let refs = Refs::read(region)?;
        if priority_taken(&refs, &listener.record.id, new.priority, None) {
            return Err(ElbError::PriorityInUse(new.priority).into());
        }
        if refs.rules.iter().filter(|r| r.record.lb_id == lb.id).count() >= RULES {
            let message = format!("A load balancer can have at most {RULES} rules besides its default rules");
            return Err(ElbError::too_many(Limit::Rules, message).into());
        }
        let mut compares = check_forwards(region, &lb, listener.record.protocol, &actions, &refs, None)?;
        compares.extend(refs.guards(region));
        compares.push(Compare::CreateRevision(listener.kv.key.clone(), CmpOp::Equal, listener.kv.create_revision));
        let id = arns::new_id(region);
        let rule = RuleRecord {
            arn: lb.lb_ref().rule_arn(region, &listener.record.id, &id),
            id,
            listener_arn: listener.record.arn.clone(),
            listener_id: listener.record.id.clone(),
            lb_id: lb.id.clone(),
            priority: new.priority,
            conditions: conditions.clone(),
            actions,
            tags: new.tags.clone(),
        };
        let key = region.keys.rule(&rule.listener_id, &rule.id);
        compares.push(Compare::absent(&key));
        let txn = Txn::new().when(compares).and_then(vec![Op::put(&key, encode(&rule))]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(rule))
    })
    .await
}

/// ModifyRule: new conditions and/or actions. A default rule takes new actions only.
pub async fn modify(
    region: &Region<'_>,
    arn: &str,
    conditions: Option<&[ConditionInput]>,
    actions: Option<&[ActionInput]>,
) -> ControlResult<RuleView> {
    if conditions.is_none() && actions.is_none() {
        return Err(ElbError::validation("Either conditions or actions must be specified").into());
    }
    let new_conditions = conditions.map(conditions::check).transpose()?;
    if let Found::Default(listener) = get(region, arn)? {
        if new_conditions.is_some() {
            return Err(ElbError::OperationNotPermitted(format!("Default rule '{arn}' cannot have conditions")).into());
        }
        let change = ListenerChange { default_actions: actions.map(<[ActionInput]>::to_vec), ..Default::default() };
        let listener = listeners::modify(region, &listener.record.arn, &change).await?;
        return Ok(RuleView::default_of(&listener));
    }
    retry(|| async {
        let Found::Rule(current) = get(region, arn)? else { return Err(ElbError::rules_not_found().into()) };
        let (_, lb) = listener_and_lb(region, &current.record.listener_arn)?;
        let mut rule = current.record.clone();
        if let Some(c) = &new_conditions {
            rule.conditions = c.clone();
        }
        let mut compares = vec![Compare::unchanged(&current.kv.key, current.kv.mod_revision)];
        if let Some(inputs) = actions {
            rule.actions = actions::check(lb.lb_type, inputs)?;
            let refs = Refs::read(region)?;
            let listener = listeners::get(region, &rule.listener_arn)?.record;
            let except = Some(Forwarder::Rule(arn));
            compares.extend(check_forwards(region, &lb, listener.protocol, &rule.actions, &refs, except)?);
            compares.extend(refs.guards(region));
        }
        let txn = Txn::new().when(compares).and_then(vec![Op::put(&current.kv.key, encode(&rule))]);
        Ok(region.store().txn(txn).await?.succeeded.then(|| RuleView::of(&rule)))
    })
    .await
}

/// DeleteRule: not a default rule.
pub async fn delete(region: &Region<'_>, arn: &str) -> ControlResult<()> {
    retry(|| async {
        let rule = match get(region, arn)? {
            Found::Rule(r) => r,
            Found::Default(_) => {
                return Err(ElbError::OperationNotPermitted(format!("Default rule '{arn}' cannot be deleted")).into());
            }
        };
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&rule.kv.key, rule.kv.mod_revision)])
            .and_then(vec![Op::delete(&rule.kv.key)]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}

/// SetRulePriorities: every rule named gets its new priority, all at once; afterwards no
/// two rules of a listener share one.
pub async fn set_priorities(region: &Region<'_>, pairs: &[(String, u32)]) -> ControlResult<Vec<RuleView>> {
    let mut seen_arns = BTreeSet::new();
    for (arn, _) in pairs {
        if !seen_arns.insert(arn) {
            return Err(ElbError::validation(format!("Rule '{arn}' was provided multiple times")).into());
        }
    }
    retry(|| async {
        let mut changed: BTreeMap<String, Stored<RuleRecord>> = BTreeMap::new();
        for (arn, priority) in pairs {
            let mut rule = match get(region, arn)? {
                Found::Rule(r) => r,
                Found::Default(_) => {
                    return Err(ElbError::OperationNotPermitted(format!(
                        "The priority of default rule '{arn}' cannot be set"
                    ))
                    .into());
                }
            };
            rule.record.priority = *priority;
            changed.insert(arn.clone(), rule);
        }
        let refs = Refs::read(region)?;
        let mut taken: BTreeSet<(String, u32)> = BTreeSet::new();
        let unchanged = refs.rules.iter().filter(|r| !changed.contains_key(&r.record.arn)).map(|r| &r.record);
        for rule in changed.values().map(|r| &r.record).chain(unchanged) {
            if !taken.insert((rule.listener_id.clone(), rule.priority)) {
                return Err(ElbError::PriorityInUse(rule.priority).into());
            }
        }
        let mut compares = refs.guards(region);
        compares.extend(changed.values().map(|r| Compare::unchanged(&r.kv.key, r.kv.mod_revision)));
        let ops = changed.values().map(|r| Op::put(&r.kv.key, encode(&r.record))).collect();
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        let mut views: Vec<RuleView> = changed.values().map(|r| RuleView::of(&r.record)).collect();
        sort(&mut views);
        Ok(done.then_some(views))
    })
    .await
}
