//! Berth's batch of task state changes: `POST /berth/v1/task-states`, SigV4-signed for `ecs`.
//! An agent sends every `SubmitTaskStateChange` it has waiting in one request: at thousands
//! of tasks a second, one request per report cost the agent and the control plane more than
//! the reports themselves (docs/performance.md, Scale). Each report is applied as
//! `SubmitTaskStateChange` applies it, on its own: the answer holds one result per report, in
//! order, an error only for the reports that failed.

use serde::{Deserialize, Serialize};

use crate::ecs::SubmitTaskStateChange;

/// The channel's path.
pub const PATH: &str = "/berth/v1/task-states";

/// The most reports one request may carry.
pub const MAX_REPORTS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskStateChanges {
    pub reports: Vec<SubmitTaskStateChange>,
}

/// The answer: `results[i]` is what became of `reports[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateResults {
    pub results: Vec<TaskStateResult>,
}

/// One report's outcome: no error, or the error `SubmitTaskStateChange` would have answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
}

/// An AWS error as the JSON protocols carry it, with the HTTP status it would have had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportError {
    pub status: u16,
    #[serde(rename = "__type")]
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::task::TaskStatus;
    use serde_json::json;

    #[test]
    fn a_batch_carries_reports_and_answers_one_result_each() {
        let batch = TaskStateChanges {
            reports: vec![SubmitTaskStateChange {
                status: TaskStatus::Running,
                ..SubmitTaskStateChange::claim("default", "t1")
            }],
        };
        let wire = serde_json::to_value(&batch).unwrap();
        assert_eq!(wire, json!({"reports": [{"cluster": "default", "task": "t1", "status": "RUNNING"}]}));
        let answer: TaskStateResults = serde_json::from_value(json!({"results": [
            {}, {"error": {"status": 400, "__type": "InvalidParameterException", "message": "no"}}
        ]}))
        .unwrap();
        assert_eq!(answer.results[0], TaskStateResult::default());
        assert_eq!(answer.results[1].error.as_ref().unwrap().code, "InvalidParameterException");
        assert!(serde_json::from_value::<TaskStateChanges>(json!({"reports": [], "extra": 1})).is_err());
    }
}
