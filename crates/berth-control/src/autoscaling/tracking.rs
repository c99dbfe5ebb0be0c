//! The CloudWatch alarms a target tracking policy makes and owns, as AWS makes them:
//! `TargetTracking-RESOURCE-AlarmHigh-UUID` (above the target for 3 of 3 periods) and, unless
//! scale-in is disabled, `TargetTracking-RESOURCE-AlarmLow-UUID` (below 90% of the target for
//! 15 of 15), on the policy's metric, with the policy as their alarm action. Their period is
//! the installation's metric period (`--metric-period`, AWS's 60 seconds by default), so
//! with a shorter one scaling answers in seconds.

use berth_metrics::alarm::AlarmState;

use super::records::{AlarmRef, TargetTracking};
use crate::Region;
use crate::alarms::{AlarmRecord, HistoryItem};

/// 3 periods above the target to scale out, 15 below 90% of it to scale in.
pub const HIGH_PERIODS: usize = 3;
pub const LOW_PERIODS: usize = 15;
pub const LOW_RATIO: f64 = 0.9;

/// Which of the two alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    High,
    Low,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::High => "AlarmHigh",
            Side::Low => "AlarmLow",
        }
    }

    /// Which side an alarm the policy made is.
    pub fn of(name: &str) -> Option<Side> {
        if name.contains("-AlarmHigh-") {
            Some(Side::High)
        } else if name.contains("-AlarmLow-") {
            Some(Side::Low)
        } else {
            None
        }
    }
}

/// The name of a new alarm for `resource_id`.
pub fn alarm_name(region: &Region<'_>, resource_id: &str, side: Side) -> String {
    format!("TargetTracking-{resource_id}-{}-{}", side.word(), region.control.ids.uuid())
}

/// The alarm `name` for a policy, made new or (given the alarm as it is) updated in place
/// keeping its state and history.
pub fn alarm(
    region: &Region<'_>,
    name: &str,
    side: Side,
    policy_arn: &str,
    tracking: &TargetTracking,
    existing: Option<AlarmRecord>,
) -> AlarmRecord {
    let now = region.timestamp();
    let (periods, threshold, comparison) = match side {
        Side::High => (HIGH_PERIODS, tracking.target_value, "GreaterThanThreshold"),
        Side::Low => (LOW_PERIODS, tracking.target_value * LOW_RATIO, "LessThanThreshold"),
    };
    let m = &tracking.metric;
    let mut a = AlarmRecord {
        name: name.to_string(),
        arn: format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", region.name, region.config().account),
        description: Some(format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}.")),
        namespace: m.namespace.clone(),
        metric_name: m.name.clone(),
        dimensions: m.dimensions.clone(),
        statistic: m.statistic.clone(),
        period: region.config().metric_period.as_secs().max(1) as i64,
        evaluation_periods: periods,
        datapoints_to_alarm: periods,
        threshold,
        comparison: comparison.into(),
        treat_missing_data: "missing".into(),
        unit: m.unit.clone(),
        actions_enabled: true,
        alarm_actions: vec![policy_arn.to_string()],
        ok_actions: Vec::new(),
        insufficient_data_actions: Vec::new(),
        state: AlarmState::InsufficientData,
        state_reason: "Unchecked: Initial alarm creation".into(),
        state_reason_data: None,
        state_updated: now,
        state_transitioned: now,
        configuration_updated: now,
        history: Vec::new(),
    };
    let verb = match existing {
        Some(old) => {
            a.keep_state_of(&old);
            "updated"
        }
        None => "created",
    };
    a.remember(HistoryItem {
        timestamp: now,
        kind: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{name}\" {verb}"),
        data: String::new(),
    });
    a
}

/// The reference a policy keeps to an alarm it made.
pub fn reference(a: &AlarmRecord) -> AlarmRef {
    AlarmRef { name: a.name.clone(), arn: a.arn.clone() }
}
