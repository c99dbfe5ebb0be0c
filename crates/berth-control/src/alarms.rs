//! CloudWatch metric alarms as records: what an alarm watches and how it decides, its state
//! and the history of its changes, one store key each; and its actions — run on each
//! transition into the state they are listed under. The decision itself is
//! `berth_metrics::alarm`.
//!
//! The one kind of action Berth carries out is an Application Auto Scaling policy
//! (`arn:aws:autoscaling:...:scalingPolicy:...`); as on AWS, such an action is also invoked
//! again at each evaluation while the alarm stays in its state (cooldowns keep that from
//! scaling too often). Any other action ARN is refused when the alarm is put.

use berth_metrics::alarm::AlarmState;
use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};

use crate::Region;
use crate::autoscaling::records::arns;
use crate::error::ControlResult;
use crate::keys::Keys;
use crate::store::{decode, encode, retry};

/// How many history items an alarm keeps (its newest).
pub const HISTORY: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// Seconds since the epoch.
    pub timestamp: f64,
    /// `StateUpdate`, `ConfigurationUpdate` or `Action`.
    pub kind: String,
    pub summary: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRecord {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period: i64,
    pub evaluation_periods: usize,
    pub datapoints_to_alarm: usize,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    #[serde(default)]
    pub unit: Option<String>,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub state: AlarmState,
    pub state_reason: String,
    #[serde(default)]
    pub state_reason_data: Option<String>,
    pub state_updated: f64,
    pub state_transitioned: f64,
    pub configuration_updated: f64,
    #[serde(default)]
    pub history: Vec<HistoryItem>,
}

impl AlarmRecord {
    /// Moves the alarm to `state` for `reason` at `now` (seconds), with a history item; the
    /// same state only refreshes the reason.
    pub fn set_state(&mut self, state: AlarmState, reason: String, data: Option<String>, now: f64) {
        let from = self.state;
        self.state = state;
        self.state_reason = reason.clone();
        self.state_reason_data = data;
        self.state_updated = now;
        if from != state {
            self.state_transitioned = now;
            self.remember(HistoryItem {
                timestamp: now,
                kind: "StateUpdate".into(),
                summary: format!("Alarm updated from {} to {}", from.name(), state.name()),
                data: serde_json::json!({"oldState": {"stateValue": from.name()}, "newState": {"stateValue": state.name(), "stateReason": reason}}).to_string(),
            });
        }
    }

    /// The actions listed under the state the alarm is in (none while actions are disabled).
    pub fn current_actions(&self) -> &[String] {
        if !self.actions_enabled {
            return &[];
        }
        match self.state {
            AlarmState::Ok => &self.ok_actions,
            AlarmState::Alarm => &self.alarm_actions,
            AlarmState::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// Takes over the state and history of the alarm this one replaces (an update keeps
    /// them, as PutMetricAlarm on an existing alarm does).
    pub fn keep_state_of(&mut self, old: &AlarmRecord) {
        (self.state, self.state_reason, self.state_reason_data) =
            (old.state, old.state_reason.clone(), old.state_reason_data.clone());
        (self.state_updated, self.state_transitioned) = (old.state_updated, old.state_transitioned);
        self.history = old.history.clone();
    }

    pub fn remember(&mut self, item: HistoryItem) {
        self.history.push(item);
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
    }
}

/// The alarms of every region (`REGION/NAME` beneath).
pub const ALARMS: &str = "cloudwatch/alarm/";

impl Keys {
    pub fn alarms(&self) -> String {
        format!("{ALARMS}{}/", self.region)
    }

    pub fn alarm(&self, name: &str) -> String {
        format!("{ALARMS}{}/{name}", self.region)
    }
}

/// An action an alarm can name that Berth carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmAction<'a> {
    /// An Application Auto Scaling policy of a scalable target.
    ScalingPolicy { resource_id: &'a str, policy: &'a str },
}

/// What `arn` names, or why Berth cannot act on it.
pub fn parse_action<'a>(region: &Region<'_>, arn: &'a str) -> Result<AlarmAction<'a>, String> {
    if let Some((resource_id, policy)) = arns::parse_policy(arn, &region.name, &region.config().account) {
        return Ok(AlarmAction::ScalingPolicy { resource_id, policy });
    }
    Err(format!(
        "Berth cannot act on {arn}: alarm actions may name Application Auto Scaling policies of this region and account (no SNS, EC2, EC2 Auto Scaling or Systems Manager actions)."
    ))
}

/// Whether Berth can carry out the action `arn` names: a policy that exists.
pub fn check_action(region: &Region<'_>, arn: &str) -> ControlResult<Result<(), String>> {
    let AlarmAction::ScalingPolicy { resource_id, policy } = match parse_action(region, arn) {
        Ok(a) => a,
        Err(why) => return Ok(Err(why)),
    };
    let key = region.keys.scalable_target(resource_id);
    let target: Option<crate::autoscaling::records::TargetRecord> =
        region.store().get(&key)?.as_ref().map(decode).transpose()?;
    Ok(match target.as_ref().and_then(|t| t.policy(policy)) {
        Some(p) if p.arn == arn => Ok(()),
        _ => Err(format!("{arn} names no scaling policy Berth has.")),
    })
}

/// Why actions run: the alarm moved into its state, or stays in it (only Auto Scaling
/// actions run again then, and leave no history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Transition,
    Repeat,
}

/// Runs the actions listed under the state `alarm` is in. A transition's outcome per action
/// goes into the alarm's history (`Action` items) as AWS writes it.
pub async fn act(region: &Region<'_>, alarm: &AlarmRecord, trigger: Trigger) -> ControlResult<()> {
    let mut items = Vec::new();
    for arn in alarm.current_actions() {
        let outcome = match parse_action(region, arn) {
            Ok(AlarmAction::ScalingPolicy { resource_id, policy }) => {
                crate::autoscaling::policies::on_alarm(region, resource_id, policy, alarm)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(why) => Err(why),
        };
        if let Err(e) = &outcome {
            tracing::warn!(alarm = %alarm.name, action = %arn, error = %e, "alarm action failed");
        }
        if trigger == Trigger::Transition {
            let summary = match &outcome {
                Ok(()) => format!("Successfully executed action {arn}"),
                Err(e) => format!("Failed to execute action {arn}. Received error: \"{e}\""),
            };
            items.push(HistoryItem {
                timestamp: region.timestamp(),
                kind: "Action".into(),
                summary,
                data: String::new(),
            });
        }
    }
    if items.is_empty() {
        return Ok(());
    }
    let key = region.keys.alarm(&alarm.name);
    let items = &items;
    let key = &key;
    retry(move || async move {
        let Some(kv) = region.store().get(key)? else { return Ok(Some(())) };
        let mut current: AlarmRecord = decode(&kv)?;
        for item in items {
            current.remember(item.clone());
        }
        let txn = Txn::new()
            .when(vec![Compare::unchanged(key, kv.mod_revision)])
            .and_then(vec![Op::put(key, encode(&current))]);
        Ok::<_, crate::ControlError>(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}
