//! The listener rules of a service whose load balancers carry `advancedConfiguration`: reading
//! how their forward weights split production traffic between each target group and its
//! alternate, and setting them to what the service's deployments ask for
//! ([`berth_scheduler::routing`]). ECS owns these weights while the service lives, as it does
//! on AWS: a change made to them by hand is undone on the next scheduler pass.

use berth_scheduler::Routing;
use serde_json::Value;

use crate::Region;
use crate::elb::actions::{Action, ActionInput, ActionKind, ForwardInput};
use crate::elb::rules::{self, Found};
use crate::error::ControlResult;
use crate::services::ServiceRecord;
use crate::store::array;

/// One load balancer of a service with its blue/green settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub primary: String,
    pub alternate: String,
    pub production_rule: String,
    pub test_rule: Option<String>,
}

/// The service's load balancers that have an alternate target group and a production rule.
pub fn pairs(service: &ServiceRecord) -> Vec<Pair> {
    array(&service.service, "loadBalancers")
        .iter()
        .filter_map(|lb| {
            let advanced = lb.get("advancedConfiguration")?;
            let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Pair {
                primary: text(lb, "targetGroupArn")?,
                alternate: text(advanced, "alternateTargetGroupArn")?,
                production_rule: text(advanced, "productionListenerRule")?,
                test_rule: text(advanced, "testListenerRule"),
            })
        })
        .collect()
}

/// A rule's one action, whether it is a rule or a listener's default rule.
fn action_of(region: &Region<'_>, rule_arn: &str) -> ControlResult<Option<Action>> {
    let actions = match rules::get(region, rule_arn)? {
        Found::Rule(r) => r.record.actions,
        Found::Default(l) => l.record.default_actions,
    };
    Ok(actions.into_iter().next())
}

/// The weight a forward action gives `group` (0 when it does not name it).
fn weight(action: &Action, group: &str) -> u32 {
    match &action.kind {
        ActionKind::Forward { groups, .. } => groups.iter().find(|g| g.arn == group).map_or(0, |g| g.weight),
        _ => 0,
    }
}

/// The percent of a rule's traffic between the pair's groups that the alternate gets.
fn share(action: &Action, pair: &Pair) -> f64 {
    let (p, a) = (weight(action, &pair.primary), weight(action, &pair.alternate));
    if p + a == 0 { 0.0 } else { f64::from(a) * 100.0 / f64::from(p + a) }
}

/// The weights (primary, alternate) that give the alternate `alternate_share` percent.
pub fn weights(alternate_share: f64) -> (u32, u32) {
    let alternate = (alternate_share.clamp(0.0, 100.0) * 10.0).round() as u32;
    ((1000 - alternate).min(999), alternate.min(999))
}

/// The alternate groups' share of production traffic as the rules say now; where the
/// service's pairs disagree, the one furthest from `wanted`, so a shift counts as done only
/// when every rule made it. `None` when the service has no pair or a rule is gone.
pub fn observed_share(region: &Region<'_>, pairs: &[Pair], wanted: Option<Routing>) -> ControlResult<Option<f64>> {
    let target = wanted.map_or(0.0, |r| r.alternate_share);
    let mut worst: Option<f64> = None;
    for pair in pairs {
        let Some(action) = action_of(region, &pair.production_rule).ok().flatten() else { return Ok(None) };
        let s = share(&action, pair);
        if worst.is_none_or(|w| (s - target).abs() > (w - target).abs()) {
            worst = Some(s);
        }
    }
    Ok(worst)
}

/// Sets the forward weights of every pair's production rule (and test rule) to `routing`.
/// Groups other than the pair's keep their weights; a rule already right is not written.
pub async fn apply(region: &Region<'_>, pairs: &[Pair], routing: Routing) -> ControlResult<()> {
    for pair in pairs {
        set(region, pair, &pair.production_rule, weights(routing.alternate_share)).await?;
        if let Some(test) = &pair.test_rule {
            let all = if routing.test_alternate { 100.0 } else { 0.0 };
            set(region, pair, test, weights(all)).await?;
        }
    }
    Ok(())
}

async fn set(region: &Region<'_>, pair: &Pair, rule_arn: &str, (p, a): (u32, u32)) -> ControlResult<()> {
    let Some(action) = action_of(region, rule_arn)? else { return Ok(()) };
    let ActionKind::Forward { groups, stickiness } = &action.kind else { return Ok(()) };
    if weight(&action, &pair.primary) == p && weight(&action, &pair.alternate) == a {
        return Ok(());
    }
    let mut given: Vec<(Option<String>, Option<u32>)> = groups
        .iter()
        .filter(|g| g.arn != pair.primary && g.arn != pair.alternate)
        .map(|g| (Some(g.arn.clone()), Some(g.weight)))
        .collect();
    given.push((Some(pair.primary.clone()), Some(p)));
    given.push((Some(pair.alternate.clone()), Some(a)));
    let input = ActionInput {
        action_type: "forward".into(),
        order: action.order,
        forward: Some(ForwardInput {
            groups: given,
            stickiness: Some((Some(stickiness.enabled), stickiness.duration)),
        }),
        ..Default::default()
    };
    rules::modify(region, rule_arn, None, Some(&[input])).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_give_the_share_asked_for_within_a_tenth_of_a_percent() {
        for tenth in 0..=1000 {
            let wanted = f64::from(tenth) / 10.0;
            let (p, a) = weights(wanted);
            assert!(p <= 999 && a <= 999, "ELB weights are 0 to 999");
            let got = f64::from(a) * 100.0 / f64::from(p + a);
            assert!((got - wanted).abs() <= 0.11, "{wanted}% gave {got}% ({p}/{a})");
        }
        assert_eq!(weights(0.0), (999, 0), "nothing for the alternate");
        assert_eq!(weights(100.0), (0, 999), "everything for the alternate");
    }
}
