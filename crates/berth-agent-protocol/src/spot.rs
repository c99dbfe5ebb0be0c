//! Berth's spot channel: `POST /berth/v1/spot-interruptions`, SigV4-signed for `ecs`. It
//! stands in for AWS taking FARGATE_SPOT capacity back: the named task is stopped with the
//! stop code `SpotInterruption`, its containers getting SIGTERM at once and SIGKILL once the
//! warning has passed. The answer is the task, as DescribeTasks shows it.

use serde::{Deserialize, Serialize};

/// The channel's path.
pub const PATH: &str = "/berth/v1/spot-interruptions";

/// The warning AWS gives a Fargate Spot task, in seconds.
pub const DEFAULT_WARNING: u64 = 120;

/// The longest warning a request may ask for, in seconds.
pub const MAX_WARNING: u64 = 3600;

/// One interruption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpotInterruption {
    /// The task's cluster (name or ARN); `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The task's id or ARN.
    pub task: String,
    /// Seconds between SIGTERM and SIGKILL; [`DEFAULT_WARNING`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_seconds: Option<u64>,
}
