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

/// A container's health as its health check last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn ecs(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// ECS `dependsOn` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The dependency has started.
    Start,
    /// The dependency has run and exited, whatever its exit code.
    Complete,
    /// The dependency has run and exited with code 0.
    Success,
    /// The dependency's health check passes.
    Healthy,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Condition> {
        match s {
            "START" => Some(Condition::Start),
            "COMPLETE" => Some(Condition::Complete),
            "SUCCESS" => Some(Condition::Success),
            "HEALTHY" => Some(Condition::Healthy),
            _ => None,
        }
    }
}

/// Where a dependency stands for a waiting container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Met,
    Pending,
    /// It can no longer be met (the dependency stopped the wrong way).
    Never,
}

/// Whether a dependency in state (`known`, `exit_code`, `health`) satisfies `condition`.
/// A container that reached Stopped without an exit code never ran.
pub fn dependency(condition: Condition, known: ContainerStatus, exit_code: Option<i64>, health: Health) -> Dependency {
    let ran = exit_code.is_some();
    match (condition, known) {
        (Condition::Start, ContainerStatus::Running) => Dependency::Met,
        (Condition::Start, ContainerStatus::Stopped) if ran => Dependency::Met,
        (Condition::Complete, ContainerStatus::Stopped) if ran => Dependency::Met,
        (Condition::Success, ContainerStatus::Stopped) if exit_code == Some(0) => Dependency::Met,
        (Condition::Healthy, ContainerStatus::Running) if health == Health::Healthy => Dependency::Met,
        (_, ContainerStatus::Stopped) => Dependency::Never,
        _ => Dependency::Pending,
    }
}

/// A task's health: UNHEALTHY if an essential checked container is, HEALTHY once all of them
/// are, UNKNOWN otherwise (including when no essential container has a health check).
pub fn task_health(containers: &[(Health, bool, bool)]) -> Health {
    let checked: Vec<Health> =
        containers.iter().filter(|(_, essential, checked)| *essential && *checked).map(|(h, ..)| *h).collect();
    if checked.contains(&Health::Unhealthy) {
        Health::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|h| *h == Health::Healthy) {
        Health::Healthy
    } else {
        Health::Unknown
    }
}

/// The ECS task status for a task whose containers are in `containers` (status, essential).
pub fn task_status(containers: &[(ContainerStatus, bool)], desired: Desired) -> TaskStatus {
    let all_stopped = containers.iter().all(|(s, _)| *s == ContainerStatus::Stopped);
    let any_running = containers.iter().any(|(s, _)| *s == ContainerStatus::Running);
    let essentials_running = containers.iter().filter(|(_, e)| *e).all(|(s, _)| *s == ContainerStatus::Running);
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
                    assert_eq!(next_action(known, desired, deps), expected, "{known:?} {desired:?} {deps}");
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
                assert!(done, "from {start:?} towards {desired:?} ended at {known:?}");
            }
        }
    }

    /// Every condition against every container state, exit code and health.
    #[test]
    fn dependency_conditions_are_exhaustive() {
        use Condition::*;
        use Dependency::*;
        for condition in [Start, Complete, Success, Healthy] {
            for known in ALL {
                for exit in [None, Some(0), Some(1)] {
                    for health in [Health::Unknown, Health::Healthy, Health::Unhealthy] {
                        let ran = exit.is_some();
                        let expected = match (condition, known) {
                            (Start, S::Running) => Met,
                            (Start, S::Stopped) => {
                                if ran {
                                    Met
                                } else {
                                    Never
                                }
                            }
                            (Complete, S::Stopped) => {
                                if ran {
                                    Met
                                } else {
                                    Never
                                }
                            }
                            (Success, S::Stopped) => {
                                if exit == Some(0) {
                                    Met
                                } else {
                                    Never
                                }
                            }
                            (Healthy, S::Running) => {
                                if health == Health::Healthy {
                                    Met
                                } else {
                                    Pending
                                }
                            }
                            (Healthy, S::Stopped) => Never,
                            _ => Pending,
                        };
                        assert_eq!(
                            dependency(condition, known, exit, health),
                            expected,
                            "{condition:?} {known:?} {exit:?} {health:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(Condition::parse("HEALTHY"), Some(Healthy));
        assert_eq!(Condition::parse("healthy"), None);
    }

    #[test]
    fn task_health_follows_essential_checked_containers() {
        use Health::*;
        assert_eq!(task_health(&[(Healthy, true, true), (Unknown, false, true)]), Healthy);
        assert_eq!(task_health(&[(Healthy, true, true), (Unhealthy, true, true)]), Unhealthy);
        assert_eq!(task_health(&[(Unknown, true, false)]), Unknown, "no checks: UNKNOWN");
        assert_eq!(task_health(&[(Healthy, true, true), (Unknown, true, true)]), Unknown);
        assert_eq!(
            task_health(&[(Unhealthy, false, true), (Healthy, true, true)]),
            Healthy,
            "non-essential health does not count"
        );
    }

    #[test]
    fn task_status_follows_containers() {
        use TaskStatus as T;
        assert_eq!(task_status(&[(S::None, true)], Desired::Running), T::Pending);
        assert_eq!(task_status(&[(S::Pulled, true), (S::None, false)], Desired::Running), T::Pending);
        assert_eq!(task_status(&[(S::Running, true), (S::Created, false)], Desired::Running), T::Running);
        assert_eq!(task_status(&[(S::Running, true), (S::Stopped, false)], Desired::Running), T::Running);
        assert_eq!(task_status(&[(S::Running, true), (S::Running, false)], Desired::Stopped), T::Stopping);
        assert_eq!(task_status(&[(S::Stopped, true), (S::Stopped, false)], Desired::Running), T::Stopped);
        assert_eq!(task_status(&[(S::Created, true), (S::Running, false)], Desired::Running), T::Pending);
        assert_eq!(S::Created.ecs(), "PENDING");
    }
}
