//! The container and task lifecycle as the agent drives it, in the manner of the ECS agent:
//! each container has a *known* status (what the runtime has done) and a *desired* one; one
//! pure function says which action moves it on, and one maps a task's containers to the ECS
//! task status the control plane shows.

use berth_model::task::TaskStatus;

/// What the runtime has done for a container, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerStatus {
    None,
    Pulled,
    Created,
    Running,
    Stopped,
}

impl ContainerStatus {
    /// The container status ECS shows (`PENDING`, `RUNNING`, `STOPPED`).
    pub fn ecs(self) -> &'static str {
        match self {
            ContainerStatus::None | ContainerStatus::Pulled | ContainerStatus::Created => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }
}

/// What the agent wants for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
}

/// The runtime action that moves a container towards its desired status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pull the image (reaches Pulled).
    Pull,
    /// Create the container (reaches Created).
    Create,
    /// Start it (reaches Running).
    Start,
    /// Stop it: SIGTERM, then SIGKILL after the stop timeout (reaches Stopped).
    Stop,
    /// It never ran: record it as Stopped without touching the runtime.
    Abandon,
    /// Blocked until its dependencies are satisfied.
    Wait,
    /// Already where it should be.
    Nothing,
}

/// The one place that decides a container's next action.
pub fn next_action(known: ContainerStatus, desired: Desired, dependencies_met: bool) -> Action {
    use ContainerStatus as S;
    match (known, desired) {
        (S::Stopped, _) => Action::Nothing,
        (S::Running, Desired::Stopped) => Action::Stop,
        (_, Desired::Stopped) => Action::Abandon,
        (S::None, Desired::Running) => Action::Pull,
        (S::Pulled, Desired::Running) => Action::Create,
        (S::Created, Desired::Running) if dependencies_met => Action::Start,
        (S::Created, Desired::Running) => Action::Wait,
        (S::Running, Desired::Running) => Action::Nothing,
    }
}

/// The status an action reaches when it succeeds.
pub fn reached_by(action: Action) -> Option<ContainerStatus> {
    match action {
        Action::Pull => Some(ContainerStatus::Pulled),
        Action::Create => Some(ContainerStatus::Created),
        Action::Start => Some(ContainerStatus::Running),
        Action::Stop | Action::Abandon => Some(ContainerStatus::Stopped),
        Action::Wait | Action::Nothing => None,
    }
}

/// The ECS task status for a task whose containers are in `containers` (status, essential).
pub fn task_status(containers: &[(ContainerStatus, bool)], desired: Desired) -> TaskStatus {
    let all_stopped = containers
        .iter()
        .all(|(s, _)| *s == ContainerStatus::Stopped);
    let any_running = containers
        .iter()
        .any(|(s, _)| *s == ContainerStatus::Running);
    let essentials_running = containers
        .iter()
        .filter(|(_, e)| *e)
        .all(|(s, _)| *s == ContainerStatus::Running);
    if all_stopped {
        TaskStatus::Stopped
    } else if desired == Desired::Stopped && any_running {
        TaskStatus::Stopping
    } else if essentials_running && any_running {
        TaskStatus::Running
    } else {
        // Pulling, creating and starting all show as PENDING, as on ECS's EC2 launch type.
        TaskStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerStatus as S;

    const ALL: [ContainerStatus; 5] = [S::None, S::Pulled, S::Created, S::Running, S::Stopped];

    /// Every (known, desired, dependencies) triple, against the rule written out by hand.
    #[test]
    fn next_action_table_is_exhaustive() {
        for known in ALL {
            for desired in [Desired::Running, Desired::Stopped] {
                for deps in [true, false] {
                    let expected = match (known, desired) {
                        (S::Stopped, _) => Action::Nothing,
                        (S::Running, Desired::Stopped) => Action::Stop,
                        (_, Desired::Stopped) => Action::Abandon,
                        (S::None, _) => Action::Pull,
                        (S::Pulled, _) => Action::Create,
                        (S::Created, _) => {
                            if deps {
                                Action::Start
                            } else {
                                Action::Wait
                            }
                        }
                        (S::Running, _) => Action::Nothing,
                    };
                    assert_eq!(
                        next_action(known, desired, deps),
                        expected,
                        "{known:?} {desired:?} {deps}"
                    );
                }
            }
        }
    }

    /// Following the actions from None always reaches the desired status, never going back.
    #[test]
    fn actions_only_move_forward_and_terminate() {
        for desired in [Desired::Running, Desired::Stopped] {
            for start in ALL {
                let mut known = start;
                for _ in 0..10 {
                    let action = next_action(known, desired, true);
                    match reached_by(action) {
                        Some(next) => {
                            assert!(next > known, "{known:?} -> {next:?}");
                            known = next;
                        }
                        None => break,
                    }
                }
                let done = match desired {
                    Desired::Running => known == S::Running || start == S::Stopped,
                    Desired::Stopped => known == S::Stopped,
                };
                assert!(
                    done,
                    "from {start:?} towards {desired:?} ended at {known:?}"
                );
            }
        }
    }

    #[test]
    fn task_status_follows_containers() {
        use TaskStatus as T;
        assert_eq!(
            task_status(&[(S::None, true)], Desired::Running),
            T::Pending
        );
        assert_eq!(
            task_status(&[(S::Pulled, true), (S::None, false)], Desired::Running),
            T::Pending
        );
        assert_eq!(
            task_status(&[(S::Running, true), (S::Created, false)], Desired::Running),
            T::Running
        );
        assert_eq!(
            task_status(&[(S::Running, true), (S::Stopped, false)], Desired::Running),
            T::Running
        );
        assert_eq!(
            task_status(&[(S::Running, true), (S::Running, false)], Desired::Stopped),
            T::Stopping
        );
        assert_eq!(
            task_status(&[(S::Stopped, true), (S::Stopped, false)], Desired::Running),
            T::Stopped
        );
        assert_eq!(
            task_status(&[(S::Created, true), (S::Running, false)], Desired::Running),
            T::Pending
        );
        assert_eq!(S::Created.ecs(), "PENDING");
    }
}
