//! How far a policy moves capacity. A step scaling policy picks the step adjustment whose
//! interval holds the breach (metric minus the alarm's threshold) and applies it as a change,
//! an exact capacity or a percentage; target tracking scales capacity in proportion to
//! metric / target. Clamping to the target's min and max is [`crate::decide`]'s.

use serde::{Deserialize, Serialize};

/// `AdjustmentType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentType {
    ChangeInCapacity,
    PercentChangeInCapacity,
    ExactCapacity,
}

impl AdjustmentType {
    pub fn parse(s: &str) -> Option<AdjustmentType> {
        Some(match s {
            "ChangeInCapacity" => AdjustmentType::ChangeInCapacity,
            "PercentChangeInCapacity" => AdjustmentType::PercentChangeInCapacity,
            "ExactCapacity" => AdjustmentType::ExactCapacity,
            _ => return None,
        })
    }
}

/// `MetricAggregationType`: how the alarm's datapoints become the one value steps compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Aggregation {
    #[default]
    Average,
    Minimum,
    Maximum,
}

impl Aggregation {
    pub fn parse(s: &str) -> Option<Aggregation> {
        Some(match s {
            "Average" => Aggregation::Average,
            "Minimum" => Aggregation::Minimum,
            "Maximum" => Aggregation::Maximum,
            _ => return None,
        })
    }

    /// The aggregate of `values`, `None` when there are none.
    pub fn of(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        Some(match self {
            Aggregation::Average => values.iter().sum::<f64>() / values.len() as f64,
            Aggregation::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One `StepAdjustment`: bounds relative to the alarm's threshold (`None`: unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub adjustment: i64,
}

/// A step scaling policy's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPolicy {
    pub adjustment_type: AdjustmentType,
    pub steps: Vec<Step>,
    /// Only with PercentChangeInCapacity.
    pub min_adjustment_magnitude: Option<i64>,
    /// Seconds.
    pub cooldown: i64,
    pub aggregation: Aggregation,
}

/// Checks step adjustments as Application Auto Scaling does: each has a bound, lower below
/// upper; together they neither overlap nor leave gaps; one unbounded below at most and one
/// unbounded above at most; a negative lower bound needs a step unbounded below, a positive
/// upper bound one unbounded above. The message names the rule broken.
pub fn check_steps(steps: &[Step]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("StepAdjustments must have at least one step adjustment.".into());
    }
    for s in steps {
        if let (Some(l), Some(u)) = (s.lower, s.upper)
            && l >= u
        {
            return Err(format!("The lower bound ({l}) of a step adjustment must be less than its upper bound ({u})."));
        }
        if s.lower.is_none() && s.upper.is_none() {
            return Err("A step adjustment must have a lower bound, an upper bound or both.".into());
        }
    }
    if steps.iter().filter(|s| s.lower.is_none()).count() > 1 {
        return Err("Only one step adjustment can have a null lower bound.".into());
    }
    if steps.iter().filter(|s| s.upper.is_none()).count() > 1 {
        return Err("Only one step adjustment can have a null upper bound.".into());
    }
    let mut sorted = steps.to_vec();
    sorted.sort_by(|a, b| a.lower.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY)));
    for pair in sorted.windows(2) {
        match (pair[0].upper, pair[1].lower) {
            (Some(u), Some(l)) if u == l => {}
            (Some(u), Some(l)) if u > l => return Err(format!("Step adjustments overlap between {l} and {u}.")),
            (Some(u), Some(l)) => return Err(format!("Step adjustments leave a gap between {u} and {l}.")),
            _ => return Err("Step adjustments overlap.".into()),
        }
    }
    if sorted[0].lower.is_some_and(|l| l < 0.0) {
        return Err("A step adjustment has a negative lower bound, so one must have a null lower bound.".into());
    }
    if sorted[sorted.len() - 1].upper.is_some_and(|u| u > 0.0) {
        return Err("A step adjustment has a positive upper bound, so one must have a null upper bound.".into());
    }
    Ok(())
}

/// The step whose interval holds `breach` (metric minus threshold). At or above the threshold
/// a lower bound is inclusive and an upper bound exclusive; below it, the reverse.
pub fn step_for(steps: &[Step], breach: f64) -> Option<&Step> {
    let above = breach >= 0.0;
    steps.iter().find(|s| {
        let over_lower = s.lower.is_none_or(|l| if above { breach >= l } else { breach > l });
        let under_upper = s.upper.is_none_or(|u| if above { breach < u } else { breach <= u });
        over_lower && under_upper
    })
}

/// `current` after one adjustment. A percentage is rounded as Application Auto Scaling rounds
/// it — results above 1 down, between 0 and 1 up to 1, between -1 and 0 to -1, below -1 up
/// (toward zero) — and then made at least `min_magnitude` in size.
pub fn adjust(current: i64, kind: AdjustmentType, adjustment: i64, min_magnitude: Option<i64>) -> i64 {
    match kind {
        AdjustmentType::ChangeInCapacity => current.saturating_add(adjustment),
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let raw = current as f64 * adjustment as f64 / 100.0;
            let mut change = if raw > 1.0 {
                raw.floor()
            } else if raw > 0.0 {
                1.0
            } else if (-1.0..0.0).contains(&raw) {
                -1.0
            } else {
                raw.ceil()
            } as i64;
            if let Some(m) = min_magnitude
                && change != 0
                && change.abs() < m
            {
                change = change.signum() * m;
            }
            current.saturating_add(change)
        }
    }
}

impl StepPolicy {
    /// The capacity the policy asks for from `current` when the metric breaches the threshold
    /// by `breach`; `None` when no step covers it.
    pub fn propose(&self, current: i64, breach: f64) -> Option<i64> {
        let step = step_for(&self.steps, breach)?;
        Some(adjust(current, self.adjustment_type, step.adjustment, self.min_adjustment_magnitude))
    }
}

/// Target tracking: the capacity that brings `value` to `target` if load spreads evenly,
/// `current × value / target` rounded up (rounding up keeps capacity on the safe side). A
/// target at zero capacity goes to one when the metric is above target.
pub fn proportional(current: i64, value: f64, target: f64) -> i64 {
    if target <= 0.0 || !value.is_finite() {
        return current;
    }
    if current == 0 {
        return i64::from(value > target);
    }
    let exact = current as f64 * value / target;
    // Forgive float noise: 2 × 50 / 50 must stay 2.
    let wanted = (exact - 1e-9).ceil();
    if wanted >= i64::MAX as f64 { i64::MAX } else { wanted.max(0.0) as i64 }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn step(lower: Option<f64>, upper: Option<f64>, adjustment: i64) -> Step {
        Step { lower, upper, adjustment }
    }

    #[test]
    fn steps_are_checked_as_aws_checks_them() {
        let good = [step(Some(0.0), Some(10.0), 1), step(Some(10.0), None, 3)];
        assert_eq!(check_steps(&good), Ok(()));
        let scale_in = [step(None, Some(-10.0), -2), step(Some(-10.0), Some(0.0), -1)];
        assert_eq!(check_steps(&scale_in), Ok(()));
        let gap = [step(Some(0.0), Some(10.0), 1), step(Some(20.0), None, 3)];
        assert!(check_steps(&gap).unwrap_err().contains("gap"));
        let overlap = [step(Some(0.0), Some(15.0), 1), step(Some(10.0), None, 3)];
        assert!(check_steps(&overlap).unwrap_err().contains("overlap"));
        assert!(check_steps(&[step(None, None, 1)]).unwrap_err().contains("bound"));
        assert!(check_steps(&[step(Some(5.0), Some(1.0), 1)]).unwrap_err().contains("less than"));
        assert!(check_steps(&[step(Some(0.0), Some(10.0), 1)]).unwrap_err().contains("null upper"));
        assert!(check_steps(&[step(Some(-10.0), Some(0.0), 1)]).unwrap_err().contains("null lower"));
        assert!(check_steps(&[step(None, Some(0.0), -1), step(None, Some(-5.0), -1)]).is_err());
        assert!(check_steps(&[]).is_err());
    }

    #[test]
    fn bounds_are_inclusive_on_the_side_of_the_threshold() {
        let steps = [step(Some(0.0), Some(10.0), 1), step(Some(10.0), None, 3)];
        assert_eq!(step_for(&steps, 0.0).unwrap().adjustment, 1);
        assert_eq!(step_for(&steps, 9.99).unwrap().adjustment, 1);
        assert_eq!(step_for(&steps, 10.0).unwrap().adjustment, 3, "above: lower bound inclusive");
        assert!(step_for(&steps, -1.0).is_none());
        let below = [step(None, Some(-10.0), -2), step(Some(-10.0), Some(0.0), -1)];
        assert_eq!(step_for(&below, -10.0).unwrap().adjustment, -2, "below: upper bound inclusive");
        assert_eq!(step_for(&below, -0.5).unwrap().adjustment, -1);
    }

    #[test]
    fn adjustments_change_add_set_or_scale_by_percent() {
        use AdjustmentType::*;
        assert_eq!(adjust(4, ChangeInCapacity, 2, None), 6);
        assert_eq!(adjust(4, ChangeInCapacity, -5, None), -1, "clamping is not ours");
        assert_eq!(adjust(4, ExactCapacity, 9, None), 9);
        assert_eq!(adjust(10, PercentChangeInCapacity, 127, None), 22, "12.7 rounds down");
        assert_eq!(adjust(2, PercentChangeInCapacity, 30, None), 3, "0.6 rounds up to 1");
        assert_eq!(adjust(2, PercentChangeInCapacity, -30, None), 1, "-0.6 rounds to -1");
        assert_eq!(adjust(10, PercentChangeInCapacity, -67, None), 4, "-6.7 rounds toward zero");
        assert_eq!(adjust(10, PercentChangeInCapacity, 10, Some(3)), 13, "at least the magnitude");
        assert_eq!(adjust(10, PercentChangeInCapacity, -10, Some(3)), 7);
        assert_eq!(adjust(10, PercentChangeInCapacity, 0, Some(3)), 10, "no change stays none");
    }

    #[test]
    fn target_tracking_is_proportional_and_rounds_up() {
        assert_eq!(proportional(1, 400.0, 50.0), 8);
        assert_eq!(proportional(2, 50.0, 50.0), 2);
        assert_eq!(proportional(3, 10.0, 50.0), 1);
        assert_eq!(proportional(3, 0.0, 50.0), 0);
        assert_eq!(proportional(4, 60.0, 50.0), 5);
        assert_eq!(proportional(0, 60.0, 50.0), 1);
        assert_eq!(proportional(0, 10.0, 50.0), 0);
    }

    #[test]
    fn aggregation_of_datapoints() {
        assert_eq!(Aggregation::Average.of(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(Aggregation::Minimum.of(&[4.0, 2.0]), Some(2.0));
        assert_eq!(Aggregation::Maximum.of(&[4.0, 2.0]), Some(4.0));
        assert_eq!(Aggregation::Average.of(&[]), None);
    }

    proptest! {
        /// Proportional capacity moves with the metric: above target never shrinks, below
        /// never grows, and capacity × target covers the load.
        #[test]
        fn proportional_follows_the_metric(current in 1i64..1000, value in 0.0f64..1000.0, target in 1.0f64..100.0) {
            let wanted = proportional(current, value, target);
            if value > target { prop_assert!(wanted >= current); }
            if value < target { prop_assert!(wanted <= current); }
            prop_assert!(wanted as f64 * target + 1e-6 >= current as f64 * value);
        }

        /// Valid contiguous steps cover every breach on their span exactly once.
        #[test]
        fn contiguous_steps_cover_each_breach_once(cuts in proptest::collection::btree_set(1i32..100, 1..5), breach in 0.0f64..150.0) {
            let mut bounds: Vec<Option<f64>> = vec![Some(0.0)];
            bounds.extend(cuts.iter().map(|c| Some(*c as f64)));
            bounds.push(None);
            let steps: Vec<Step> = bounds.windows(2).enumerate().map(|(i, w)| step(w[0], w[1], i as i64 + 1)).collect();
            prop_assert_eq!(check_steps(&steps), Ok(()));
            let covering = steps.iter().filter(|s| step_for(std::slice::from_ref(s), breach).is_some()).count();
            prop_assert_eq!(covering, 1);
        }

        /// A percentage change is never zero unless asked, and moves the way it is asked.
        #[test]
        fn percentages_move_in_their_direction(current in 1i64..500, pct in -100i64..300) {
            let after = adjust(current, AdjustmentType::PercentChangeInCapacity, pct, None);
            prop_assert_eq!(after.cmp(&current), pct.cmp(&0));
        }
    }
}
