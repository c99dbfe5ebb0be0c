//! The ECS task lifecycle as the control plane sees it: the statuses, the one function that
//! decides whether a status change is allowed, and the stop codes.
//!
//! Agents own the lifecycle of a task they have claimed and report it; the control plane
//! only accepts reports that move forward. Before any agent has claimed a task, the control
//! plane may stop it on its own (nothing runs yet, so there is nothing to tear down).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// ECS task statuses, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Counted by ECS as a pending task (cluster and instance `pendingTasksCount`).
    pub fn is_pending(self) -> bool {
        matches!(self, TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating)
    }

    /// Counted by ECS as a running task (`runningTasksCount`).
    pub fn is_running(self) -> bool {
        self == TaskStatus::Running
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An unknown status is an error, never a default.
impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TaskStatus::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("unknown task status {raw:?}")))
    }
}

/// What a task should become (ECS `desiredStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<DesiredStatus> {
        [DesiredStatus::Running, DesiredStatus::Stopped].into_iter().find(|d| d.as_str() == s)
    }
}

/// Why a task failed, when it did: what the service scheduler counts toward its circuit
/// breaker and back-off (a task stopped by a user, a scale-in or a lost agent did not fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Failure {
    /// It ran, and an essential container exited.
    EssentialContainerExited,
    /// It never ran: pulling, creating or starting a container failed.
    FailedToStart,
    /// The service scheduler stopped it for failing its container health checks.
    HealthCheck,
}

/// What happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    /// The agent that claimed the task reports a status.
    Reported(TaskStatus),
    /// A stop request for a task no agent has claimed yet: nothing runs, so it is STOPPED now.
    StopUnclaimed,
    /// Its agent is lost: it is STOPPED now, whatever the agent last said.
    WriteOff,
    /// The control plane begins taking a RUNNING task out of its load balancers before its
    /// agent stops it: DEACTIVATING. The agent keeps running it meanwhile, and its reports of
    /// RUNNING leave it DEACTIVATING.
    Deactivate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("task is already STOPPED")]
    AlreadyStopped,
    #[error("task cannot go back from {from} to {to}", from = .from.as_str(), to = .to.as_str())]
    Backwards { from: TaskStatus, to: TaskStatus },
    #[error("task is {state} on an agent and only the agent can stop it", state = .0.as_str())]
    Claimed(TaskStatus),
    #[error("task is {state}, not RUNNING", state = .0.as_str())]
    NotRunning(TaskStatus),
}

/// The one place that decides a task's next status.
pub fn transition(current: TaskStatus, event: TaskEvent) -> Result<TaskStatus, TransitionError> {
    match event {
        TaskEvent::Reported(_) if current == TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
        TaskEvent::Reported(TaskStatus::Running) if current == TaskStatus::Deactivating => Ok(current),
        TaskEvent::Reported(to) if to < current => Err(TransitionError::Backwards { from: current, to }),
        TaskEvent::Reported(to) => Ok(to),
        TaskEvent::StopUnclaimed => match current {
            TaskStatus::Provisioning | TaskStatus::Pending => Ok(TaskStatus::Stopped),
            TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
            other => Err(TransitionError::Claimed(other)),
        },
        TaskEvent::WriteOff if current == TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
        TaskEvent::WriteOff => Ok(TaskStatus::Stopped),
        TaskEvent::Deactivate => match current {
            TaskStatus::Running => Ok(TaskStatus::Deactivating),
            TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
            other => Err(TransitionError::NotRunning(other)),
        },
    }
}

/// ECS `stopCode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
}

impl StopCode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopCode::TaskFailedToStart => "TaskFailedToStart",
            StopCode::EssentialContainerExited => "EssentialContainerExited",
            StopCode::UserInitiated => "UserInitiated",
            StopCode::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
            StopCode::SpotInterruption => "SpotInterruption",
            StopCode::TerminationNotice => "TerminationNotice",
        }
    }

    /// The failure a stop code implies, for records written before failures were kept apart
    /// from stop codes.
    pub fn failure(self) -> Option<Failure> {
        match self {
            StopCode::EssentialContainerExited => Some(Failure::EssentialContainerExited),
            StopCode::TaskFailedToStart => Some(Failure::FailedToStart),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("running"), None);
    }

    fn event() -> impl Strategy<Value = TaskEvent> {
        prop_oneof![
            4 => proptest::sample::select(TaskStatus::ALL.to_vec()).prop_map(TaskEvent::Reported),
            1 => Just(TaskEvent::StopUnclaimed),
            1 => Just(TaskEvent::WriteOff),
            1 => Just(TaskEvent::Deactivate),
        ]
    }

    proptest! {
        /// Named invariants of any history of events, applied as the control plane does
        /// (refused events change nothing):
        /// - a task's status never moves backwards;
        /// - nothing leaves STOPPED;
        /// - the control plane alone (a stop before any claim) never stops a task that an agent
        ///   has taken past PENDING: only the agent's report or a write-off of a lost agent does;
        /// - a write-off always ends a live task;
        /// - only a RUNNING task is deactivated, and a deactivating one never runs again.
        #[test]
        fn any_history_moves_forward_and_ends_once(events in proptest::collection::vec(event(), 1..40)) {
            let mut status = TaskStatus::Pending;
            for e in events {
                match transition(status, e) {
                    Ok(next) => {
                        prop_assert!(next >= status, "{status:?} went back to {next:?} on {e:?}");
                        prop_assert!(status != TaskStatus::Stopped, "left STOPPED on {e:?}");
                        if e == TaskEvent::StopUnclaimed {
                            prop_assert!(status <= TaskStatus::Pending, "stopped a claimed {status:?} alone");
                        }
                        if e == TaskEvent::Deactivate {
                            prop_assert_eq!(status, TaskStatus::Running, "deactivated a task that was not running");
                        }
                        if status == TaskStatus::Deactivating {
                            prop_assert!(next != TaskStatus::Running, "a deactivating task went back to RUNNING");
                        }
                        status = next;
                    }
                    Err(err) => {
                        prop_assert!(e != TaskEvent::WriteOff || status == TaskStatus::Stopped, "{err}");
                    }
                }
            }
        }
    }

    #[test]
    fn statuses_serialise_as_ecs_names_and_unknown_ones_are_refused() {
        assert_eq!(serde_json::to_string(&TaskStatus::Running).unwrap(), "\"RUNNING\"");
        assert_eq!(serde_json::from_str::<TaskStatus>("\"DEPROVISIONING\"").unwrap(), TaskStatus::Deprovisioning);
        assert!(serde_json::from_str::<TaskStatus>("\"running\"").is_err());
        assert!(serde_json::from_str::<TaskStatus>("\"SLEEPING\"").is_err());
        assert_eq!(serde_json::to_string(&DesiredStatus::Stopped).unwrap(), "\"STOPPED\"");
        assert_eq!(serde_json::to_string(&StopCode::TaskFailedToStart).unwrap(), "\"TaskFailedToStart\"");
    }

    #[test]
    fn counted_states() {
        let pending: Vec<_> = TaskStatus::ALL.into_iter().filter(|s| s.is_pending()).collect();
        assert_eq!(pending, [TaskStatus::Provisioning, TaskStatus::Pending, TaskStatus::Activating]);
        assert!(TaskStatus::Running.is_running() && !TaskStatus::Stopping.is_running());
    }
}
