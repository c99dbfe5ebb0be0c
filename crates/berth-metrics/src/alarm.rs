//! Metric alarms' evaluation, without I/O: given the datapoints of an alarm's last
//! `EvaluationPeriods` periods, its state — as CloudWatch decides it: ALARM when at least
//! `DatapointsToAlarm` of them breach the threshold, with missing datapoints treated as the
//! alarm's `TreatMissingData` says.

use serde::{Deserialize, Serialize};

/// An alarm's state; [`AlarmState::after`] is the one way it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub fn name(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmState> {
        [AlarmState::Ok, AlarmState::Alarm, AlarmState::InsufficientData].into_iter().find(|a| a.name() == s)
    }

    /// The state after an evaluation: what it found, or (when it found nothing to go by, with
    /// missing data ignored) the state as it was.
    pub fn after(self, verdict: Option<AlarmState>) -> AlarmState {
        verdict.unwrap_or(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn parse(s: &str) -> Option<Comparison> {
        Some(match s {
            "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqualToThreshold,
            "GreaterThanThreshold" => Comparison::GreaterThanThreshold,
            "LessThanThreshold" => Comparison::LessThanThreshold,
            "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqualToThreshold,
            _ => return None,
        })
    }

    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    /// The default: missing datapoints do not count; with none at all, INSUFFICIENT_DATA.
    Missing,
    /// Missing datapoints do not count; with none at all, the state stays.
    Ignore,
    Breaching,
    NotBreaching,
}

impl Missing {
    pub fn parse(s: &str) -> Option<Missing> {
        Some(match s {
            "missing" => Missing::Missing,
            "ignore" => Missing::Ignore,
            "breaching" => Missing::Breaching,
            "notBreaching" => Missing::NotBreaching,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub comparison: Comparison,
    pub threshold: f64,
    /// M of "M out of N".
    pub datapoints_to_alarm: usize,
    pub missing: Missing,
}

/// What the last N periods' datapoints (oldest first; `None` where a period has no data) say:
/// a state, or `None` when the alarm should stay as it is.
pub fn verdict(rule: &Rule, points: &[Option<f64>]) -> Option<AlarmState> {
    let mut breaching = 0;
    let mut present = 0;
    for p in points {
        let breach = match (p, rule.missing) {
            (Some(v), _) => Some(rule.comparison.breaches(*v, rule.threshold)),
            (None, Missing::Breaching) => Some(true),
            (None, Missing::NotBreaching) => Some(false),
            (None, _) => None,
        };
        if let Some(b) = breach {
            present += 1;
            breaching += usize::from(b);
        }
    }
    if present == 0 {
        return match rule.missing {
            Missing::Ignore => None,
            _ => Some(AlarmState::InsufficientData),
        };
    }
    Some(if breaching >= rule.datapoints_to_alarm { AlarmState::Alarm } else { AlarmState::Ok })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rule(m: usize, missing: Missing) -> Rule {
        Rule { comparison: Comparison::GreaterThanThreshold, threshold: 50.0, datapoints_to_alarm: m, missing }
    }

    #[test]
    fn m_out_of_n() {
        let r = rule(2, Missing::Missing);
        assert_eq!(verdict(&r, &[Some(60.0), Some(10.0), Some(70.0)]), Some(AlarmState::Alarm));
        assert_eq!(verdict(&r, &[Some(60.0), Some(10.0), Some(20.0)]), Some(AlarmState::Ok));
        assert_eq!(verdict(&r, &[Some(50.0), Some(50.0), Some(50.0)]), Some(AlarmState::Ok), "equal does not exceed");
    }

    #[test]
    fn missing_data_as_the_alarm_says() {
        let none = [None, None, None];
        assert_eq!(verdict(&rule(1, Missing::Missing), &none), Some(AlarmState::InsufficientData));
        assert_eq!(verdict(&rule(1, Missing::Ignore), &none), None);
        assert_eq!(AlarmState::Alarm.after(verdict(&rule(1, Missing::Ignore), &none)), AlarmState::Alarm);
        assert_eq!(verdict(&rule(2, Missing::Breaching), &[None, Some(60.0), None]), Some(AlarmState::Alarm));
        assert_eq!(verdict(&rule(2, Missing::NotBreaching), &[None, Some(60.0), None]), Some(AlarmState::Ok));
        assert_eq!(verdict(&rule(1, Missing::Missing), &[None, Some(60.0), None]), Some(AlarmState::Alarm));
    }

    proptest! {
        /// Raising every datapoint never takes a "greater than" alarm out of ALARM; the verdict
        /// is ALARM exactly when at least M counted datapoints exceed the threshold.
        #[test]
        fn verdicts_follow_the_count(points in proptest::collection::vec(proptest::option::of(0.0f64..100.0), 1..8), m in 1usize..5) {
            let r = rule(m, Missing::NotBreaching);
            let over = points.iter().filter(|p| p.is_some_and(|v| v > 50.0)).count();
            let expected = if over >= m { AlarmState::Alarm } else { AlarmState::Ok };
            prop_assert_eq!(verdict(&r, &points), Some(expected));
            let raised: Vec<Option<f64>> = points.iter().map(|p| p.map(|v| v + 10.0)).collect();
            if expected == AlarmState::Alarm {
                prop_assert_eq!(verdict(&r, &raised), Some(AlarmState::Alarm));
            }
        }
    }
}
