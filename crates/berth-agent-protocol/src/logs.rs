//! The CloudWatch Logs operations the agent's `awslogs` driver calls: making the group (when
//! `awslogs-create-group` asks) and the stream, and putting batches of events.

use serde::{Deserialize, Serialize};

use crate::operation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroup {
    pub log_group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogStream {
    pub log_group_name: String,
    pub log_stream_name: String,
}

/// What a create answers: nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// One event: when (milliseconds since the epoch) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLogEvent {
    pub timestamp: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEvents {
    pub log_group_name: String,
    pub log_stream_name: String,
    pub log_events: Vec<InputLogEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    #[serde(default)]
    pub rejected_log_events_info: Option<serde_json::Value>,
}

operation!(Logs, CreateLogGroup => Empty);
operation!(Logs, CreateLogStream => Empty);
operation!(Logs, PutLogEvents => PutLogEventsResponse);
