//! CloudWatch metric alarms as records: what an alarm watches and how it decides, its state
//! and the history of its changes, one store key each. The decision itself is
//! `berth_metrics::alarm`.

use berth_metrics::alarm::AlarmState;
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

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
