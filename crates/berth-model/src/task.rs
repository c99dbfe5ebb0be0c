//! The ECS task lifecycle as the control plane sees it: the statuses, the one function that
//! decides whether a status change is allowed, and the stop codes.
//!
//! Agents own the lifecycle of a task they have claimed and report it; the control plane
//! only accepts reports that move forward. Before any agent has claimed a task, the control
//! plane may stop it on its own (nothing runs yet, so there is nothing to tear down).

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

/// What happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    /// The agent that claimed the task reports a status.
    Reported(TaskStatus),
    /// A stop request for a task no agent has claimed yet.
    StopUnclaimed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("task is already STOPPED")]
    AlreadyStopped,
    #[error("task cannot go back from {from} to {to}", from = .from.as_str(), to = .to.as_str())]
    Backwards { from: TaskStatus, to: TaskStatus },
    #[error("task is {state} on an agent and only the agent can stop it", state = .0.as_str())]
    Claimed(TaskStatus),
}

/// The one place that decides a task's next status.
pub fn transition(current: TaskStatus, event: TaskEvent) -> Result<TaskStatus, TransitionError> {
    match event {
        TaskEvent::Reported(_) if current == TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
        TaskEvent::Reported(to) if to < current => Err(TransitionError::Backwards { from: current, to }),
        TaskEvent::Reported(to) => Ok(to),
        TaskEvent::StopUnclaimed => match current {
            TaskStatus::Provisioning | TaskStatus::Pending => Ok(TaskStatus::Stopped),
            TaskStatus::Stopped => Err(TransitionError::AlreadyStopped),
            other => Err(TransitionError::Claimed(other)),
        },
    }
}

/// ECS `stopCode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("running"), None);
    }

    /// Every (status, event) pair, against the rule written out independently.
    #[test]
    fn transition_table_is_exhaustive() {
        let rank = |s: TaskStatus| TaskStatus::ALL.iter().position(|x| *x == s).unwrap();
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let got = transition(from, TaskEvent::Reported(to));
                if from == TaskStatus::Stopped {
                    assert_eq!(got, Err(TransitionError::AlreadyStopped));
                } else if rank(to) < rank(from) {
                    assert_eq!(got, Err(TransitionError::Backwards { from, to }));
                } else {
                    assert_eq!(got, Ok(to), "{from:?} -> {to:?}");
                }
            }
            let stop = transition(from, TaskEvent::StopUnclaimed);
            match from {
                TaskStatus::Provisioning | TaskStatus::Pending => {
                    assert_eq!(stop, Ok(TaskStatus::Stopped))
                }
                TaskStatus::Stopped => assert_eq!(stop, Err(TransitionError::AlreadyStopped)),
                _ => assert_eq!(stop, Err(TransitionError::Claimed(from))),
            }
        }
    }

    #[test]
    fn counted_states() {
        let pending: Vec<_> = TaskStatus::ALL.into_iter().filter(|s| s.is_pending()).collect();
        assert_eq!(pending, [TaskStatus::Provisioning, TaskStatus::Pending, TaskStatus::Activating]);
        assert!(TaskStatus::Running.is_running() && !TaskStatus::Stopping.is_running());
    }
}
