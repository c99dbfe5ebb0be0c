//! The container and task lifecycle as the agent drives it, in the manner of the ECS agent:
//! each container has a *known* status (what the runtime has done) and a *desired* one; one
//! pure function says which action moves it on, and one maps a task's containers to the ECS
//! task status the control plane shows.
//!
//! Two more pure rules live here: when a dependency's `startTimeout` runs out
//! ([`dependency_deadline`]), and what a task's health is ([`task_health`]).

use std::time::Duration;

use berth_agent_protocol::ContainerStatus as Reported;
pub use berth_agent_protocol::Health;
use berth_model::task::TaskStatus;
use tokio::time::Instant;

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
    pub fn reported(self) -> Reported {
        match self {
            ContainerStatus::None | ContainerStatus::Pulled | ContainerStatus::Created => Reported::Pending,
            ContainerStatus::Running => Reported::Running,
            ContainerStatus::Stopped => Reported::Stopped,
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
    const NAMES: [(&str, Condition); 4] = [
        ("START", Condition::Start),
        ("COMPLETE", Condition::Complete),
        ("SUCCESS", Condition::Success),
        ("HEALTHY", Condition::Healthy),
    ];

    pub fn parse(s: &str) -> Option<Condition> {
        Self::NAMES.iter().find(|(name, _)| *name == s).map(|(_, c)| *c)
    }

    /// ECS's name of the condition.
    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(_, c)| *c == self).map(|(name, _)| *name).expect("every condition is named")
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

/// When a dependent container gives up waiting for `condition` of a dependency that started at
/// `dependency_started` and has `start_timeout` (ECS: the dependency's `startTimeout`, counted
/// from its start, for COMPLETE, SUCCESS and HEALTHY; START waits as long as it takes). `None`:
/// it waits as long as it takes.
pub fn dependency_deadline(
    condition: Condition,
    dependency_started: Option<Instant>,
    start_timeout: Option<Duration>,
) -> Option<Instant> {
    match condition {
        Condition::Start => None,
        Condition::Complete | Condition::Success | Condition::Healthy => Some(dependency_started? + start_timeout?),
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

/// Named invariants of the rules above, checked on generated states and event sequences
/// (rather than against a second copy of the rules).
#[cfg(test)]
mod tests {
    use super::*;
    use ContainerStatus as S;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = ContainerStatus> {
        prop_oneof![Just(S::None), Just(S::Pulled), Just(S::Created), Just(S::Running), Just(S::Stopped)]
    }

    fn desired() -> impl Strategy<Value = Desired> {
        prop_oneof![Just(Desired::Running), Just(Desired::Stopped)]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::Start),
            Just(Condition::Complete),
            Just(Condition::Success),
            Just(Condition::Healthy)
        ]
    }

    fn health() -> impl Strategy<Value = Health> {
        prop_oneof![Just(Health::Unknown), Just(Health::Healthy), Just(Health::Unhealthy)]
    }

    /// What can happen to one container between two decisions of the runner.
    #[derive(Debug, Clone)]
    enum Event {
        /// The runner applies the next action and the runtime does it.
        Step,
        /// The runner applies the next action and the runtime fails it (the container is then
        /// given up as Stopped, except a failed stop, which leaves it running).
        Fail,
        /// Its dependencies become met, or not.
        Dependencies(bool),
        /// The control plane (or a failure elsewhere) asks for the task to stop.
        DesireStop,
        /// A running container exits on its own.
        Exit,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => Just(Event::Step),
            1 => Just(Event::Fail),
            2 => any::<bool>().prop_map(Event::Dependencies),
            1 => Just(Event::DesireStop),
            1 => Just(Event::Exit),
        ]
    }

    /// One decision taken during a run: the state it was taken in and the action.
    struct Decision {
        known: ContainerStatus,
        desired: Desired,
        dependencies_met: bool,
        action: Action,
    }

    /// Plays `events` on a container from None, returning every decision and every status.
    fn play(events: &[Event]) -> (Vec<Decision>, Vec<ContainerStatus>) {
        let (mut known, mut desired, mut met) = (S::None, Desired::Running, false);
        let (mut decisions, mut statuses) = (Vec::new(), vec![known]);
        for e in events {
            match e {
                Event::Dependencies(m) => met = *m,
                Event::DesireStop => desired = Desired::Stopped,
                Event::Exit if known == S::Running => known = S::Stopped,
                Event::Exit => {}
                Event::Step | Event::Fail => {
                    let action = next_action(known, desired, met);
                    decisions.push(Decision { known, desired, dependencies_met: met, action });
                    known = match (e, action) {
                        (Event::Fail, Action::Stop) => known,
                        (Event::Fail, Action::Pull | Action::Create | Action::Start) => S::Stopped,
                        _ => reached_by(action).unwrap_or(known),
                    };
                }
            }
            statuses.push(known);
        }
        (decisions, statuses)
    }

    proptest! {
        #[test]
        fn never_starts_before_its_dependencies_are_met(events in prop::collection::vec(event(), 0..40)) {
            for d in play(&events).0 {
                prop_assert!(d.action != Action::Start || d.dependencies_met, "started from {:?} with unmet dependencies", d.known);
            }
        }

        #[test]
        fn nothing_is_done_to_a_container_once_stopped(events in prop::collection::vec(event(), 0..40)) {
            for d in play(&events).0.into_iter().filter(|d| d.known == S::Stopped) {
                prop_assert_eq!(d.action, Action::Nothing);
            }
        }

        #[test]
        fn status_never_moves_backwards(events in prop::collection::vec(event(), 0..40)) {
            let statuses = play(&events).1;
            prop_assert!(statuses.windows(2).all(|w| w[0] <= w[1]), "{:?}", statuses);
        }

        #[test]
        fn nothing_is_pulled_created_or_started_once_stop_is_desired(events in prop::collection::vec(event(), 0..40)) {
            for d in play(&events).0.into_iter().filter(|d| d.desired == Desired::Stopped) {
                prop_assert!(matches!(d.action, Action::Stop | Action::Abandon | Action::Nothing), "{:?}", d.action);
            }
        }

        /// From any state, whatever the dependencies, one successful action reaches Stopped.
        #[test]
        fn desired_stopped_always_leads_to_stopped(known in status(), met in any::<bool>()) {
            let action = next_action(known, Desired::Stopped, met);
            let reached = reached_by(action).unwrap_or(known);
            prop_assert_eq!(reached, S::Stopped, "{:?} via {:?}", known, action);
        }

        /// With its dependencies met, a container that has not stopped reaches Running, one
        /// status at a time.
        #[test]
        fn desired_running_with_met_dependencies_leads_to_running(known in status()) {
            prop_assume!(known != S::Stopped);
            let mut at = known;
            for _ in 0..3 {
                match reached_by(next_action(at, Desired::Running, true)) {
                    Some(next) => { prop_assert!(next > at); at = next; }
                    None => break,
                }
            }
            prop_assert_eq!(at, S::Running);
        }

        /// A dependency that has stopped is decided for good: no container waits forever on it.
        #[test]
        fn a_stopped_dependency_is_met_or_never(c in condition(), exit in prop::option::of(-1i64..3), h in health()) {
            prop_assert_ne!(dependency(c, S::Stopped, exit, h), Dependency::Pending);
        }

        /// Only a dependency that ran (it has an exit code) can complete; SUCCESS means code 0;
        /// HEALTHY means running and healthy now.
        #[test]
        fn a_met_condition_means_what_it_says(c in condition(), known in status(), exit in prop::option::of(-1i64..3), h in health()) {
            if dependency(c, known, exit, h) == Dependency::Met {
                match c {
                    Condition::Start => prop_assert!(known == S::Running || (known == S::Stopped && exit.is_some())),
                    Condition::Complete => prop_assert!(known == S::Stopped && exit.is_some()),
                    Condition::Success => prop_assert!(known == S::Stopped && exit == Some(0)),
                    Condition::Healthy => prop_assert!(known == S::Running && h == Health::Healthy),
                }
            }
        }

        /// A dependency moving forward never un-meets START, COMPLETE or SUCCESS, and never
        /// revives a verdict of Never.
        #[test]
        fn verdicts_are_stable_as_a_dependency_moves_on(c in condition(), a in status(), b in status(), exit in prop::option::of(-1i64..3), h in health()) {
            let (from, to) = if a <= b { (a, b) } else { (b, a) };
            // A container that was seen running has an exit code once it stopped.
            let exit = if from == S::Running { Some(exit.unwrap_or(0)) } else { exit };
            let exit_at = |s: ContainerStatus| if s == S::Stopped { exit } else { None };
            let before = dependency(c, from, exit_at(from), h);
            let after = dependency(c, to, exit_at(to), h);
            if before == Dependency::Never {
                prop_assert_eq!(after, Dependency::Never);
            }
            if before == Dependency::Met && c != Condition::Healthy {
                prop_assert_eq!(after, Dependency::Met);
            }
        }

        #[test]
        fn start_timeouts_count_from_the_dependency_start(c in condition(), started in prop::option::of(0u64..100), timeout in prop::option::of(1u64..100)) {
            let origin = Instant::now();
            let started_at = started.map(|s| origin + Duration::from_secs(s));
            let deadline = dependency_deadline(c, started_at, timeout.map(Duration::from_secs));
            match (c, started, timeout) {
                (Condition::Start, ..) | (_, None, _) | (_, _, None) => prop_assert_eq!(deadline, None),
                (_, Some(s), Some(t)) => prop_assert_eq!(deadline, Some(origin + Duration::from_secs(s + t))),
            }
        }

        #[test]
        fn a_task_is_stopped_exactly_when_every_container_is(containers in prop::collection::vec((status(), any::<bool>()), 1..6), d in desired()) {
            let all_stopped = containers.iter().all(|(s, _)| *s == S::Stopped);
            prop_assert_eq!(task_status(&containers, d) == TaskStatus::Stopped, all_stopped);
        }

        #[test]
        fn a_task_runs_only_with_every_essential_container_running(containers in prop::collection::vec((status(), any::<bool>()), 1..6), d in desired()) {
            let status = task_status(&containers, d);
            if status == TaskStatus::Running {
                prop_assert!(containers.iter().filter(|(_, e)| *e).all(|(s, _)| *s == S::Running));
                prop_assert_eq!(d, Desired::Running);
            }
            if status == TaskStatus::Stopping {
                prop_assert_eq!(d, Desired::Stopped);
                prop_assert!(containers.iter().any(|(s, _)| *s == S::Running));
            }
        }

        /// Only essential containers with a health check count; one unhealthy makes the task so.
        #[test]
        fn task_health_follows_its_essential_checked_containers(containers in prop::collection::vec((health(), any::<bool>(), any::<bool>()), 0..6)) {
            let counted: Vec<Health> = containers.iter().filter(|(_, e, c)| *e && *c).map(|(h, ..)| *h).collect();
            let verdict = task_health(&containers);
            prop_assert_eq!(verdict == Health::Unhealthy, counted.contains(&Health::Unhealthy));
            prop_assert_eq!(verdict == Health::Healthy, !counted.is_empty() && counted.iter().all(|h| *h == Health::Healthy));
        }
    }

    #[test]
    fn examples() {
        assert_eq!(next_action(S::Created, Desired::Running, false), Action::Wait);
        assert_eq!(next_action(S::Running, Desired::Stopped, false), Action::Stop);
        assert_eq!(next_action(S::Pulled, Desired::Stopped, true), Action::Abandon);
        assert_eq!(dependency(Condition::Success, S::Stopped, Some(1), Health::Unknown), Dependency::Never);
        assert_eq!(dependency(Condition::Healthy, S::Running, None, Health::Unhealthy), Dependency::Pending);
        assert_eq!(Condition::parse("HEALTHY"), Some(Condition::Healthy));
        assert_eq!(Condition::parse("healthy"), None);
        assert_eq!(Condition::Success.as_str(), "SUCCESS");
        assert_eq!(S::Created.reported(), Reported::Pending);
        let t = task_status(&[(S::Running, true), (S::Created, false)], Desired::Running);
        assert_eq!(t, TaskStatus::Running, "a non-essential container still starting does not hold the task");
    }
}
