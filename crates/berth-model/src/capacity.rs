//! Capacity providers: `FARGATE` and `FARGATE_SPOT`, which every account has, and the
//! capacity provider strategy that shares a launch's tasks among them — `base` tasks on one
//! provider first, the rest in proportion to the `weight`s.
//!
//! Tasks are given out one at a time with a quota method (Balinski and Young's): the next
//! task goes to the provider furthest below its share among those that would not pass the
//! upper end of their share. So at every count, each provider's tasks beyond its base are
//! within one of its exact share, and adding tasks never takes any from a provider — which is
//! what a service growing by one task at a time needs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ModelError;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";
/// The capacity providers every account has.
pub const PROVIDERS: [&str; 2] = [FARGATE, FARGATE_SPOT];

/// ECS's bounds on a strategy.
const MAX_ITEMS: usize = 20;
const MAX_WEIGHT: i64 = 1000;
const MAX_BASE: i64 = 100_000;

/// One item of a `capacityProviderStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub base: u32,
}

/// Reads and checks a strategy as ECS does: named providers, weights 0–1000, bases
/// 0–100000, one base at most, no provider twice, some weight above zero. Whether the
/// providers belong to the cluster is the caller's check.
pub fn parse_strategy(items: &[Value]) -> Result<Vec<StrategyItem>, ModelError> {
    if items.len() > MAX_ITEMS {
        return Err(ModelError::invalid(format!("A capacity provider strategy can have at most {MAX_ITEMS} items.")));
    }
    let mut out: Vec<StrategyItem> = Vec::new();
    for item in items {
        let name = item.get("capacityProvider").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(ModelError::invalid("Each capacity provider strategy item must name a capacityProvider."));
        }
        let number = |key: &str, max: i64| match item.get(key).and_then(Value::as_i64) {
            None => Ok(0),
            Some(n) if (0..=max).contains(&n) => Ok(n as u32),
            Some(n) => Err(ModelError::invalid(format!(
                "The {key} {n} of capacity provider {name} must be between 0 and {max}."
            ))),
        };
        let (weight, base) = (number("weight", MAX_WEIGHT)?, number("base", MAX_BASE)?);
        if out.iter().any(|i| i.capacity_provider == name) {
            return Err(ModelError::invalid(format!(
                "The capacity provider strategy cannot contain the capacity provider {name} twice."
            )));
        }
        out.push(StrategyItem { capacity_provider: name.to_string(), weight, base });
    }
    if out.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(ModelError::invalid("Only one capacity provider in a strategy can have a base defined."));
    }
    if !out.is_empty() && out.iter().all(|i| i.weight == 0) {
        return Err(ModelError::invalid(
            "At least one capacity provider in a strategy must have a weight greater than zero.",
        ));
    }
    Ok(out)
}

/// The provider of the next task, given how many tasks each provider has: the base first,
/// then by weight (see the module's doc). `None` for an empty strategy.
pub fn next<'s>(strategy: &'s [StrategyItem], counts: &HashMap<String, u32>) -> Option<&'s str> {
    let count = |i: &StrategyItem| counts.get(&i.capacity_provider).copied().unwrap_or(0);
    if let Some(i) = strategy.iter().find(|i| count(i) < i.base) {
        return Some(&i.capacity_provider);
    }
    let weighted: Vec<&StrategyItem> = strategy.iter().filter(|i| i.weight > 0).collect();
    let beyond = |i: &StrategyItem| count(i).saturating_sub(i.base) as u64;
    let total_weight: u64 = weighted.iter().map(|i| i.weight as u64).sum();
    let after: u64 = weighted.iter().map(|i| beyond(i)).sum::<u64>() + 1;
    // Within the upper quota once the task is added: beyond + 1 <= ceil(after * w / W), that
    // is (beyond + 1) * W < after * w + W.
    let within = |i: &StrategyItem| (beyond(i) + 1) * total_weight < after * i.weight as u64 + total_weight;
    // The least served by weight: smallest (beyond + 1) / weight, first in order on ties.
    let best = weighted.iter().copied().filter(|i| within(i)).min_by(|a, b| {
        let lhs = (beyond(a) + 1) * b.weight as u64;
        let rhs = (beyond(b) + 1) * a.weight as u64;
        lhs.cmp(&rhs)
    });
    best.or(weighted.first().copied()).map(|i| i.capacity_provider.as_str())
}

/// The providers of `n` more tasks, in order, counting each toward the next.
pub fn distribute(strategy: &[StrategyItem], counts: &mut HashMap<String, u32>, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(provider) = next(strategy, counts) else { break };
        let provider = provider.to_string();
        *counts.entry(provider.clone()).or_default() += 1;
        out.push(provider);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn item(name: &str, weight: u32, base: u32) -> StrategyItem {
        StrategyItem { capacity_provider: name.into(), weight, base }
    }

    #[test]
    fn the_base_comes_first_then_the_weights() {
        let s = [item(FARGATE, 1, 1), item(FARGATE_SPOT, 3, 0)];
        let mut counts = HashMap::new();
        let got = distribute(&s, &mut counts, 5);
        assert_eq!(got[0], FARGATE, "the base");
        assert_eq!((counts[FARGATE], counts[FARGATE_SPOT]), (2, 3));
        // One more goes to the spot provider (3 of the 5 beyond the base would be 3.75).
        assert_eq!(next(&s, &counts), Some(FARGATE_SPOT));
    }

    #[test]
    fn a_provider_with_weight_zero_gets_only_its_base() {
        let s = [item(FARGATE, 0, 2), item(FARGATE_SPOT, 1, 0)];
        let mut counts = HashMap::new();
        assert_eq!(
            distribute(&s, &mut counts, 6),
            [FARGATE, FARGATE, FARGATE_SPOT, FARGATE_SPOT, FARGATE_SPOT, FARGATE_SPOT]
        );
        assert_eq!(next(&[], &counts), None);
    }

    #[test]
    fn strategies_are_checked_as_ecs_checks_them() {
        let ok = parse_strategy(&[json!({"capacityProvider": "FARGATE", "weight": 1, "base": 2})]).unwrap();
        assert_eq!(ok, [item(FARGATE, 1, 2)]);
        let refused = |v: Value| parse_strategy(v.as_array().unwrap()).unwrap_err().to_string();
        assert!(refused(json!([{"weight": 1}])).contains("must name a capacityProvider"));
        assert!(refused(json!([{"capacityProvider": "FARGATE", "weight": 1001}])).contains("between 0 and 1000"));
        assert!(
            refused(json!([{"capacityProvider": "FARGATE", "weight": 1, "base": 100001}]))
                .contains("between 0 and 100000")
        );
        assert!(
            refused(json!([{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE"}]))
                .contains("twice")
        );
        assert!(
            refused(json!([{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                               {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 1}]))
            .contains("Only one capacity provider")
        );
        assert!(refused(json!([{"capacityProvider": "FARGATE", "base": 1}])).contains("weight greater than zero"));
    }

    fn strategy() -> impl Strategy<Value = Vec<StrategyItem>> {
        (1usize..=4, prop::collection::vec(0u32..=5, 4), 0u32..=4, 0usize..4).prop_filter_map(
            "some weight above zero",
            |(n, weights, base, based)| {
                let items: Vec<StrategyItem> =
                    (0..n).map(|k| item(&format!("p{k}"), weights[k], if k == based { base } else { 0 })).collect();
                items.iter().any(|i| i.weight > 0).then_some(items)
            },
        )
    }

    proptest! {
        /// At every total, the base is served first and each provider's tasks beyond its base
        /// are within one of its exact share; giving out more never takes a task away.
        #[test]
        fn every_count_keeps_each_provider_within_its_quota(s in strategy(), n in 0usize..60) {
            let mut counts = HashMap::new();
            let total_weight: u32 = s.iter().map(|i| i.weight).sum();
            let base: u32 = s.iter().map(|i| i.base).sum();
            for placed in 1..=n as u32 {
                let before = counts.clone();
                distribute(&s, &mut counts, 1);
                for (k, v) in &before {
                    prop_assert!(counts[k] >= *v);
                }
                let beyond_total = placed.saturating_sub(base);
                for i in &s {
                    let c = counts.get(&i.capacity_provider).copied().unwrap_or(0);
                    prop_assert!(c >= i.base.min(placed));
                    if placed >= base {
                        let share = beyond_total as f64 * i.weight as f64 / total_weight as f64;
                        let beyond = c.saturating_sub(i.base) as f64;
                        prop_assert!(beyond >= share.floor() && beyond <= share.ceil(),
                            "{} has {} beyond its base, share {} of {}", i.capacity_provider, beyond, share, beyond_total);
                    }
                }
            }
        }
    }
}
