//! The scheduler on a simulated cluster: fixtures, a world that starts and stops tasks the
//! way agents do, and the named invariants of rolling deployments checked pass by pass.

use berth_model::task::TaskStatus;
use proptest::prelude::*;
use proptest::strategy::Strategy;

use crate::*;

mod shifting;

const GOOD: &str = "web:1";
const NEXT: &str = "web:2";
const BAD: &str = "web:bad";

fn spec(desired: u32, min: u32, max: u32) -> Spec {
    Spec {
        name: "web".into(),
        scheduling: Scheduling::Replica,
        controller: Controller::Ecs,
        desired_count: desired,
        minimum_healthy_percent: min,
        maximum_percent: max,
        circuit_breaker: None,
        grace_period: 0.0,
        deleting: false,
        strategy: crate::Strategy::Rolling,
        bake: 0.0,
    }
}

fn instances(n: usize) -> Vec<InstanceView> {
    (0..n).map(|i| InstanceView { id: format!("i{i}"), state: InstanceState::Active, daemon_eligible: true }).collect()
}

/// A cluster where agents obey plans: launched tasks start on the next pass (or fail if
/// their definition is `BAD`), stopped ones are gone on the next pass, two seconds apart.
struct World {
    spec: Spec,
    state: State,
    tasks: Vec<TaskView>,
    instances: Vec<InstanceView>,
    now: f64,
    revision: u64,
    next_id: u64,
    events: Vec<String>,
    placed: usize,
    /// Behind a load balancer: a running task's targets turn healthy this long after it starts.
    lb_healthy_after: Option<f64>,
    /// Behind load balancers with alternate groups: the alternate share the rules give now,
    /// set after each pass to what the plan's state asks for (as the control does).
    alternate_share: Option<f64>,
    /// Tasks turn LB-healthy this many seconds apart (by their number, in threes).
    lb_stagger: f64,
}

impl World {
    fn new(spec: Spec, definition: &str) -> World {
        let mut state = State::default();
        state.start_deployment(Deployment::new("ecs-svc/1".into(), definition.into(), 0.0, 0), spec.strategy);
        World {
            spec,
            state,
            tasks: Vec::new(),
            instances: instances(3),
            now: 1000.0,
            revision: 1,
            next_id: 1,
            events: Vec::new(),
            placed: 0,
            lb_healthy_after: None,
            alternate_share: None,
            lb_stagger: 0.0,
        }
    }

    fn definition_of(&self, deployment: &str) -> String {
        self.state
            .deployments
            .iter()
            .chain(&self.state.history)
            .find(|d| d.id == deployment)
            .map(|d| d.task_definition.clone())
            .or_else(|| self.state.task_sets.iter().find(|s| s.id == deployment).map(|s| s.task_definition.clone()))
            .unwrap_or_default()
    }

    /// Agents act on the previous plan.
    fn agents(&mut self) {
        for i in 0..self.tasks.len() {
            let definition = self.definition_of(&self.tasks[i].deployment);
            let t = &mut self.tasks[i];
            if t.status == TaskStatus::Stopped {
                continue;
            }
            self.revision += 1;
            if !t.desired_running {
                t.status = TaskStatus::Stopped;
                t.ending = Some(if t.health == Health::Unhealthy { Ending::Failed } else { Ending::Stopped });
            } else if t.status == TaskStatus::Pending && definition == BAD {
                t.status = TaskStatus::Stopped;
                t.ending = Some(Ending::Failed);
            } else if t.status == TaskStatus::Pending {
                t.status = TaskStatus::Running;
                t.started_at = Some(self.now);
                if self.lb_healthy_after.is_some() {
                    t.lb = LbHealth::Initial;
                }
            } else if let Some(after) = self.lb_healthy_after
                && t.lb == LbHealth::Initial
                && t.started_at.is_some_and(|s| self.now - s >= after + self.lb_stagger * (i % 3) as f64)
            {
                t.lb = LbHealth::Healthy;
            } else {
                self.revision -= 1;
                continue;
            }
            t.revision = self.revision;
        }
    }

    fn pass(&mut self) -> Plan {
        self.now += 2.0;
        self.agents();
        let fresh = format!("ecs-svc/{}", 100 + self.next_id);
        let observed = Observed {
            now: self.now,
            revision: self.revision,
            tasks: &self.tasks,
            instances: &self.instances,
            fresh_id: &fresh,
            alternate_share: self.alternate_share,
        };
        let plan = reconcile(&self.spec, &self.state, &observed);
        if let Err(broken) = floor_and_ceiling(&self.spec, &observed, &plan) {
            panic!("{broken}\ntasks: {:#?}\nplan: {plan:#?}", self.tasks);
        }
        self.apply(&plan);
        plan
    }

    fn apply(&mut self, plan: &Plan) {
        self.state = plan.state.clone();
        if self.alternate_share.is_some() {
            self.alternate_share = routing(&self.state).map(|r| r.alternate_share);
        }
        self.events.extend(plan.events.iter().cloned());
        for id in &plan.lost {
            let t = self.tasks.iter_mut().find(|t| &t.id == id).unwrap();
            t.status = TaskStatus::Stopped;
            t.ending = Some(Ending::Stopped);
        }
        for s in &plan.stop {
            let t = self.tasks.iter_mut().find(|t| t.id == s.task).unwrap();
            assert!(t.desired_running, "a task is stopped twice");
            t.desired_running = false;
        }
        for l in &plan.launch {
            self.next_id += 1;
            self.revision += 1;
            let instance = l.instance.clone().unwrap_or_else(|| {
                let usable: Vec<_> = self.instances.iter().filter(|i| i.state == InstanceState::Active).collect();
                self.placed += 1;
                usable[self.placed % usable.len()].id.clone()
            });
            self.tasks.push(TaskView {
                id: format!("t{}", self.next_id),
                deployment: l.deployment.clone(),
                instance,
                status: TaskStatus::Pending,
                desired_running: true,
                health: Health::Unknown,
                health_checked: false,
                started_at: None,
                created_at: self.now,
                ending: None,
                revision: self.revision,
                lb: LbHealth::None,
            });
        }
    }

    fn live(&self) -> usize {
        self.tasks.iter().filter(|t| t.live()).count()
    }

    fn healthy(&self) -> usize {
        self.tasks.iter().filter(|t| t.healthy(self.now)).count()
    }

    fn healthy_of(&self, definition: &str) -> usize {
        self.tasks.iter().filter(|t| t.healthy(self.now) && self.definition_of(&t.deployment) == definition).count()
    }

    fn run_until_steady(&mut self, max_passes: usize) -> usize {
        for n in 0..max_passes {
            let plan = self.pass();
            if plan.state.steady {
                return n;
            }
        }
        panic!("not steady after {max_passes} passes; events: {:#?}", self.events);
    }

    fn update(&mut self, definition: &str) {
        let id = format!("ecs-svc/{}", 1000 + self.next_id);
        self.next_id += 1;
        self.state
            .start_deployment(Deployment::new(id, definition.into(), self.now, self.revision), self.spec.strategy);
    }
}

/// The named invariants every plan keeps, whatever the deployments' state:
/// - *floor*: a plan that stops a healthy task for any reason but failing its health checks
///   leaves at least `minimumHealthyPercent` of the desired count healthy;
/// - *no premature replacement*: tasks that are still coming up are only stopped to give way
///   (older deployment, draining, no longer eligible) when that floor holds without them;
/// - *ceiling*: launches never take the live tasks above `maximumPercent` (replica services).
fn floor_and_ceiling(spec: &Spec, observed: &Observed<'_>, plan: &Plan) -> Result<(), String> {
    if spec.deleting {
        return Ok(());
    }
    let now = observed.now;
    let usable = |t: &&TaskView| {
        observed.instances.iter().find(|i| i.id == t.instance).is_some_and(|i| i.state != InstanceState::Lost)
    };
    let live: Vec<&TaskView> = observed.tasks.iter().filter(|t| t.live()).filter(usable).collect();
    let healthy = live.iter().filter(|t| t.healthy(now)).count();
    let floor = healthy_floor(plan.desired, spec.minimum_healthy_percent);
    let task = |id: &str| live.iter().find(|t| t.id == id).copied();
    let mut healthy_after = healthy;
    for s in &plan.stop {
        let t = task(&s.task).ok_or_else(|| format!("stops {} which is not live", s.task))?;
        if t.healthy(now) {
            if s.reason == StopReason::Unhealthy {
                return Err(format!("stops healthy {} as unhealthy", t.id));
            }
            // A task set scaled down by its controller gives up its tasks whatever the floor.
            if !(spec.controller.task_sets() && s.reason == StopReason::ScaledDown) {
                healthy_after -= 1;
            }
        }
    }
    if healthy_after < healthy && healthy_after < floor {
        return Err(format!("floor: healthy {healthy} -> {healthy_after}, under the floor {floor}"));
    }
    let gives_way = |r: StopReason| matches!(r, StopReason::Replaced | StopReason::Draining | StopReason::NotEligible);
    for s in plan.stop.iter().filter(|s| gives_way(s.reason)) {
        if !task(&s.task).unwrap().healthy(now) && healthy_after < floor {
            return Err(format!("stops {} that is coming up while healthy {healthy_after} < floor {floor}", s.task));
        }
    }
    // Green comes up in full beside blue: shifting deployments have no ceiling.
    let ceilinged = spec.scheduling == Scheduling::Replica && !spec.controller.task_sets() && !spec.strategy.shifts();
    if ceilinged && !plan.launch.is_empty() {
        let ceiling = (spec.desired_count * spec.maximum_percent / 100) as usize;
        if live.len() + plan.launch.len() > ceiling {
            return Err(format!("ceiling: {} live + {} launched > {ceiling}", live.len(), plan.launch.len()));
        }
    }
    Ok(())
}

#[test]
fn a_new_service_launches_its_desired_count_and_reaches_a_steady_state() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    let first = w.pass();
    assert_eq!(first.launch.len(), 3);
    assert!(first.stop.is_empty());
    w.run_until_steady(10);
    assert_eq!(w.live(), 3);
    assert_eq!(w.state.deployments[0].rollout, Rollout::Completed);
    assert_eq!(w.events.iter().filter(|e| e.contains("has reached a steady state")).count(), 1);
    assert!(w.events.contains(&"(service web) (deployment ecs-svc/1) deployment completed.".to_string()));
    // Steady: nothing more to do, and the steady event is not repeated.
    let quiet = w.pass();
    assert!(quiet.launch.is_empty() && quiet.stop.is_empty() && quiet.events.is_empty());
}

#[test]
fn a_stopped_task_is_replaced_and_counted_once() {
    let mut w = World::new(spec(2, 100, 200), GOOD);
    w.run_until_steady(10);
    let victim = w.tasks.iter_mut().find(|t| t.live()).unwrap();
    victim.status = TaskStatus::Stopped;
    victim.ending = Some(Ending::Failed);
    w.revision += 1;
    victim.revision = w.revision;
    let plan = w.pass();
    assert_eq!(plan.launch.len(), 1, "one replacement");
    assert_eq!(w.state.deployments[0].failed_tasks, 1);
    // Observing the same stopped task again counts nothing new.
    w.pass();
    assert_eq!(w.state.deployments[0].failed_tasks, 1);
    w.run_until_steady(10);
    assert_eq!(w.live(), 2);
}

#[test]
fn a_user_stop_is_replaced_but_is_no_failure() {
    let mut w = World::new(spec(2, 100, 200), GOOD);
    w.run_until_steady(10);
    let victim = w.tasks.iter_mut().find(|t| t.live()).unwrap();
    victim.desired_running = false; // StopTask; the agent stops it on the next pass
    w.pass();
    w.run_until_steady(10);
    assert_eq!(w.state.deployments[0].failed_tasks, 0);
    assert_eq!(w.live(), 2);
}

#[test]
fn scaling_down_stops_the_least_useful_first() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.run_until_steady(10);
    let oldest = w.tasks.iter().map(|t| t.id.clone()).next().unwrap();
    w.spec.desired_count = 1;
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 2);
    assert!(plan.stop.iter().all(|s| s.reason == StopReason::ScaledDown));
    assert_eq!(plan.stop[0].stopped_reason(), "Scaling activity initiated by (deployment ecs-svc/1)");
    assert!(plan.launch.is_empty());
    w.run_until_steady(10);
    assert_eq!(w.live(), 1);
    assert!(w.tasks.iter().any(|t| t.live() && t.id == oldest), "the oldest healthy task stays");
}

#[test]
fn rolling_update_at_100_200_never_drops_below_desired() {
    let mut w = World::new(spec(4, 100, 200), GOOD);
    w.run_until_steady(10);
    w.update(NEXT);
    for _ in 0..30 {
        w.pass();
        assert!(w.healthy() >= 4, "healthy fell to {}", w.healthy());
        assert!(w.live() <= 8, "{} alive over the 200% ceiling", w.live());
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady);
    assert_eq!(w.healthy_of(NEXT), 4);
    assert_eq!(w.live(), 4);
    assert_eq!(w.state.deployments.len(), 1);
    assert_eq!(w.state.history[0].finished.map(|f| f.1), Some(Outcome::Successful));
}

#[test]
fn rolling_update_at_50_100_never_exceeds_desired() {
    let mut w = World::new(spec(4, 50, 100), GOOD);
    w.run_until_steady(10);
    w.update(NEXT);
    for _ in 0..40 {
        w.pass();
        assert!(w.live() <= 4, "{} alive over the 100% ceiling", w.live());
        assert!(w.healthy() >= 2, "healthy fell to {}", w.healthy());
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady);
    assert_eq!(w.healthy_of(NEXT), 4);
}

#[test]
fn breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    assert_eq!(breaker_threshold(0), 3);
    assert_eq!(breaker_threshold(1), 3);
    assert_eq!(breaker_threshold(6), 3);
    assert_eq!(breaker_threshold(7), 4);
    assert_eq!(breaker_threshold(10), 5);
    assert_eq!(breaker_threshold(400), 200);
    assert_eq!(breaker_threshold(1000), 200);
}

#[test]
fn the_circuit_breaker_trips_and_rolls_back_to_the_last_completed_deployment() {
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = Some(true);
    let mut w = World::new(s, GOOD);
    w.run_until_steady(10);
    w.update(BAD);
    let failed_id = w.state.deployments[0].id.clone();
    for _ in 0..40 {
        w.pass();
        assert!(w.healthy_of(GOOD) >= 2, "the old tasks keep serving while the bad ones fail");
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady, "events: {:#?}", w.events);
    let primary = w.state.primary().unwrap();
    assert_eq!(primary.task_definition, GOOD);
    assert_eq!(primary.rollback_of.as_deref(), Some(failed_id.as_str()));
    assert_eq!(primary.rollout, Rollout::Completed);
    let failed = w.state.history.iter().find(|d| d.id == failed_id).unwrap();
    assert_eq!(failed.rollout, Rollout::Failed);
    assert_eq!(failed.rollout_reason, messages::BREAKER_FAILED);
    assert_eq!(failed.finished.map(|f| f.1), Some(Outcome::RolledBack));
    assert!(failed.failed_tasks >= 3);
    assert!(w.events.iter().any(|e| e.contains(&format!("(deployment {failed_id}) deployment failed"))));
    assert!(w.events.iter().any(|e| e.contains("rolling back to deployment ecs-svc/1")));
}

#[test]
fn without_rollback_a_failed_deployment_launches_nothing_more() {
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = Some(false);
    let mut w = World::new(s, GOOD);
    w.run_until_steady(10);
    w.update(BAD);
    for _ in 0..20 {
        w.pass();
    }
    let p = w.state.primary().unwrap();
    assert_eq!((p.task_definition.as_str(), p.rollout), (BAD, Rollout::Failed));
    let plan = w.pass();
    assert!(plan.launch.is_empty());
    assert_eq!(w.healthy_of(GOOD), 2, "the old tasks are left running");
}

#[test]
fn a_first_deployment_that_fails_has_nothing_to_roll_back_to() {
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = Some(true);
    let mut w = World::new(s, BAD);
    for _ in 0..20 {
        w.pass();
    }
    assert_eq!(w.state.deployments.len(), 1);
    assert_eq!(w.state.deployments[0].rollout, Rollout::Failed);
}

#[test]
fn repeated_failures_throttle_launches() {
    let mut w = World::new(spec(1, 100, 200), BAD);
    let mut launches_at = Vec::new();
    for _ in 0..30 {
        let plan = w.pass();
        if !plan.launch.is_empty() {
            launches_at.push(w.now);
        }
    }
    assert!(w.events.iter().any(|e| e.contains("is unable to consistently start tasks successfully")));
    let gaps: Vec<f64> = launches_at.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(gaps.iter().any(|g| *g >= 10.0), "launches were never held back: {gaps:?}");
    assert!(w.state.backoff.until > 0.0);
}

#[test]
fn unhealthy_tasks_are_replaced_after_the_grace_period_only() {
    let mut s = spec(1, 100, 200);
    s.grace_period = 30.0;
    let mut w = World::new(s, GOOD);
    w.run_until_steady(10);
    let t = w.tasks.iter_mut().find(|t| t.live()).unwrap();
    t.health = Health::Unhealthy;
    t.started_at = Some(w.now - 5.0);
    let id = t.id.clone();
    let plan = w.pass();
    assert!(plan.stop.is_empty(), "still within the grace period");
    w.tasks.iter_mut().find(|t| t.id == id).unwrap().started_at = Some(w.now - 60.0);
    let plan = w.pass();
    assert_eq!(
        plan.stop,
        vec![Stop { task: id, deployment: "ecs-svc/1".into(), reason: StopReason::Unhealthy, target_group: None }]
    );
    assert_eq!(plan.launch.len(), 1, "its replacement goes out at once within the 200% ceiling");
    w.run_until_steady(10);
    assert_eq!(w.state.deployments[0].failed_tasks, 1, "a health-check stop counts as a failure");
}

#[test]
fn tasks_on_a_draining_instance_are_replaced_before_they_stop() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.run_until_steady(10);
    let drained = w.tasks.iter().find(|t| t.live()).unwrap().instance.clone();
    w.instances.iter_mut().find(|i| i.id == drained).unwrap().state = InstanceState::Draining;
    for _ in 0..20 {
        w.pass();
        assert!(w.healthy() >= 3);
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady);
    assert!(w.tasks.iter().all(|t| !t.live() || t.instance != drained));
}

#[test]
fn tasks_on_a_lost_instance_are_written_off_and_replaced_at_once() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.run_until_steady(10);
    let gone = w.tasks.iter().find(|t| t.live()).unwrap().instance.clone();
    let on_it = w.tasks.iter().filter(|t| t.live() && t.instance == gone).count();
    w.instances.iter_mut().find(|i| i.id == gone).unwrap().state = InstanceState::Lost;
    let plan = w.pass();
    assert_eq!(plan.lost.len(), on_it);
    assert_eq!(plan.launch.len(), on_it);
    w.run_until_steady(10);
    assert_eq!(w.state.deployments[0].failed_tasks, 0);
}

#[test]
fn disconnected_instances_keep_their_tasks() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.run_until_steady(10);
    for i in &mut w.instances {
        i.state = InstanceState::Disconnected;
    }
    let plan = w.pass();
    assert!(plan.lost.is_empty() && plan.stop.is_empty() && plan.launch.is_empty());
}

#[test]
fn deleting_stops_everything_then_finishes() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.run_until_steady(10);
    w.spec.deleting = true;
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 3);
    assert!(plan.stop.iter().all(|s| s.reason == StopReason::Deleting));
    assert!(!plan.finished_deleting);
    let plan = w.pass();
    assert!(plan.finished_deleting);
}

fn daemon() -> Spec {
    Spec { scheduling: Scheduling::Daemon, ..spec(0, 0, 100) }
}

#[test]
fn a_daemon_runs_one_task_on_every_eligible_instance_including_late_joiners() {
    let mut w = World::new(daemon(), GOOD);
    w.instances[2].daemon_eligible = false;
    let plan = w.pass();
    assert_eq!(plan.desired, 2);
    let mut on: Vec<_> = plan.launch.iter().map(|l| l.instance.clone().unwrap()).collect();
    on.sort();
    assert_eq!(on, ["i0", "i1"]);
    w.run_until_steady(10);
    w.instances.push(InstanceView { id: "i9".into(), state: InstanceState::Active, daemon_eligible: true });
    let plan = w.pass();
    assert_eq!(plan.launch.iter().map(|l| l.instance.clone().unwrap()).collect::<Vec<_>>(), ["i9"]);
    w.run_until_steady(10);
    assert_eq!(w.live(), 3);
}

#[test]
fn a_daemon_leaves_instances_that_drain_or_stop_matching() {
    let mut w = World::new(daemon(), GOOD);
    w.run_until_steady(10);
    w.instances[0].state = InstanceState::Draining;
    w.instances[1].daemon_eligible = false;
    let plan = w.pass();
    let mut reasons: Vec<_> = plan.stop.iter().map(|s| s.reason).collect();
    reasons.sort();
    assert_eq!(reasons, [StopReason::Draining, StopReason::NotEligible]);
    assert!(plan.launch.is_empty());
    w.run_until_steady(10);
    assert_eq!(w.live(), 1);
}

#[test]
fn a_daemon_update_replaces_in_place_one_task_per_instance() {
    let mut w = World::new(daemon(), GOOD);
    w.run_until_steady(10);
    w.update(NEXT);
    for _ in 0..20 {
        w.pass();
        for i in &w.instances {
            let here = w.tasks.iter().filter(|t| t.live() && t.instance == i.id).count();
            assert!(here <= 1, "two tasks on {}", i.id);
        }
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady);
    assert_eq!(w.healthy_of(NEXT), 3);
}

#[test]
fn the_same_inputs_give_the_same_plan() {
    let mut w = World::new(spec(5, 50, 150), GOOD);
    w.run_until_steady(10);
    w.update(NEXT);
    let observed = Observed {
        now: w.now,
        revision: w.revision,
        tasks: &w.tasks,
        instances: &w.instances,
        fresh_id: "x",
        alternate_share: None,
    };
    assert_eq!(reconcile(&w.spec, &w.state, &observed), reconcile(&w.spec, &w.state, &observed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Named invariants of a rolling update, for any desired count and percentages ECS
    /// accepts: never more alive than the ceiling, never fewer healthy than the floor, and it
    /// finishes with the desired count of the new definition.
    #[test]
    fn rolling_updates_keep_within_floor_and_ceiling(desired in 1u32..12, min in 0u32..=100, extra in 0u32..=100) {
        let max = 100 + extra;
        // ECS needs room to move: a floor of 100% with a ceiling of 100% can never replace.
        let ceiling = (desired * max / 100) as usize;
        let floor = (desired * min).div_ceil(100) as usize;
        prop_assume!(ceiling > floor);
        let mut w = World::new(spec(desired, min, max), GOOD);
        w.run_until_steady(20);
        w.update(NEXT);
        let mut steady = false;
        for _ in 0..200 {
            w.pass();
            prop_assert!(w.live() <= ceiling, "{} alive over the ceiling {}", w.live(), ceiling);
            prop_assert!(w.healthy() >= floor, "{} healthy under the floor {}", w.healthy(), floor);
            if w.state.steady {
                steady = true;
                break;
            }
        }
        prop_assert!(steady);
        prop_assert_eq!(w.healthy_of(NEXT), desired as usize);
        prop_assert_eq!(w.live(), desired as usize);
    }
}

/// The outage of issue 9: a second deployment while the first is still coming up, whose
/// tasks exit at once. The first deployment's tasks must not all be stopped; with no
/// completed deployment to roll back to, they keep running and the events say so.
#[test]
fn a_failing_update_of_a_service_still_coming_up_keeps_its_first_tasks() {
    let mut s = spec(2, 50, 200);
    s.circuit_breaker = Some(true);
    let mut w = World::new(s, GOOD);
    let first = w.pass();
    assert_eq!(first.launch.len(), 2);
    w.update(BAD);
    let failed = w.state.deployments[0].id.clone();
    let mut reached = false;
    for _ in 0..60 {
        w.pass();
        reached |= w.healthy_of(GOOD) >= 1;
        if reached {
            assert!(w.healthy_of(GOOD) >= 1, "the first deployment's tasks fell to {}", w.healthy_of(GOOD));
        }
    }
    assert!(reached, "the first deployment never became healthy: {:#?}", w.events);
    let p = w.state.primary().unwrap();
    assert_eq!((p.id.as_str(), p.rollout), (failed.as_str(), Rollout::Failed));
    assert!(w.events.iter().any(|e| e == &messages::nothing_to_roll_back("web", &failed)), "{:#?}", w.events);
    let quiet = w.pass();
    assert!(quiet.launch.is_empty() && quiet.stop.is_empty(), "a failed deployment launches and stops nothing");
}

#[test]
fn older_tasks_still_coming_up_are_not_replaced_while_the_service_is_under_its_floor() {
    let mut w = World::new(spec(4, 50, 200), GOOD);
    w.pass();
    w.update(NEXT);
    let plan = w.pass();
    assert!(plan.stop.is_empty(), "nothing is healthy yet, so nothing gives way: {plan:#?}");
    assert_eq!(plan.launch.len(), 4);
    w.run_until_steady(20);
    assert_eq!(w.healthy_of(NEXT), 4);
}

#[test]
fn a_daemon_update_replaces_within_its_floor() {
    let mut w = World::new(Spec { minimum_healthy_percent: 50, ..daemon() }, GOOD);
    w.instances.push(InstanceView { id: "i3".into(), state: InstanceState::Active, daemon_eligible: true });
    w.run_until_steady(10);
    w.update(NEXT);
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 2, "half of four may be down at once");
    w.run_until_steady(20);
    assert_eq!(w.healthy_of(NEXT), 4);
}

/// What can happen to a service between two scheduler passes.
#[derive(Debug, Clone)]
enum Event {
    Pass,
    Update(&'static str),
    /// A live task's essential container exits.
    Crash(usize),
    /// A running task starts failing its health checks.
    Sicken(usize),
    Scale(u32),
    Drain(usize),
    Lose(usize),
    /// An instance comes back ACTIVE (a drained one reactivated, a lost one re-registered).
    Restore(usize),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => Just(Event::Pass),
        2 => prop_oneof![Just(GOOD), Just(NEXT), Just(BAD)].prop_map(Event::Update),
        2 => (0usize..16).prop_map(Event::Crash),
        1 => (0usize..16).prop_map(Event::Sicken),
        1 => (0u32..8).prop_map(Event::Scale),
        1 => (0usize..3).prop_map(Event::Drain),
        1 => (0usize..3).prop_map(Event::Lose),
        1 => (0usize..3).prop_map(Event::Restore),
    ]
}

impl World {
    fn happen(&mut self, e: &Event) {
        let active = self.instances.iter().filter(|i| i.state == InstanceState::Active).count();
        match *e {
            Event::Pass => {}
            Event::Update(definition) => self.update(definition),
            Event::Crash(n) | Event::Sicken(n) => {
                let live: Vec<usize> = (0..self.tasks.len()).filter(|&i| self.tasks[i].live()).collect();
                let Some(&i) = live.get(n % live.len().max(1)) else { return };
                self.revision += 1;
                let t = &mut self.tasks[i];
                if matches!(e, Event::Crash(_)) {
                    t.status = TaskStatus::Stopped;
                    t.ending = Some(Ending::Failed);
                    t.revision = self.revision;
                } else if t.status == TaskStatus::Running {
                    t.health = Health::Unhealthy;
                }
            }
            Event::Scale(n) => self.spec.desired_count = n,
            // One instance always stays ACTIVE, so there is somewhere to place.
            Event::Drain(i) if active > 1 && self.instances[i].state == InstanceState::Active => {
                self.instances[i].state = InstanceState::Draining
            }
            Event::Lose(i) if active > 1 && self.instances[i].state == InstanceState::Active => {
                self.instances[i].state = InstanceState::Lost
            }
            Event::Restore(i) => self.instances[i].state = InstanceState::Active,
            Event::Drain(_) | Event::Lose(_) => {}
        }
        self.pass();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any sequence of updates (good and failing), crashes, failing health checks, scale
    /// changes, draining and lost instances keeps the floor and the ceiling at every pass
    /// (checked inside `World::pass`), and a last good update always converges.
    #[test]
    fn any_history_keeps_the_floor_and_converges(
        desired in 1u32..7,
        min in 0u32..=100,
        extra in 0u32..=100,
        breaker in prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut s = spec(desired, min, 100 + extra);
        s.circuit_breaker = breaker;
        let mut w = World::new(s, GOOD);
        for e in &events {
            w.happen(e);
        }
        for i in 0..w.instances.len() {
            w.happen(&Event::Restore(i));
        }
        w.update(GOOD);
        // A floor of 100% with a ceiling of 100% could never replace; ECS refuses it.
        let (floor, ceiling) = (healthy_floor(w.spec.desired_count, min), w.spec.desired_count * (100 + extra) / 100);
        prop_assume!(ceiling as usize > floor || w.spec.desired_count == 0);
        w.run_until_steady(200);
        prop_assert_eq!(w.healthy_of(GOOD), w.spec.desired_count as usize);
    }

    #[test]
    fn any_daemon_history_keeps_the_floor(
        min in 0u32..100,
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut w = World::new(Spec { minimum_healthy_percent: min, ..daemon() }, GOOD);
        for e in &events {
            w.happen(e);
        }
    }
}

fn external(desired: u32) -> World {
    let mut w = World::new(Spec { controller: Controller::External, ..spec(desired, 100, 200) }, GOOD);
    w.state = State::default();
    w
}

impl World {
    fn add_set(&mut self, definition: &str, scale: f64) -> String {
        self.next_id += 1;
        let id = format!("ecs-svc/{}", 5000 + self.next_id);
        self.state.task_sets.push(TaskSet::new(id.clone(), definition.into(), scale, self.now, self.revision));
        id
    }

    fn set(&mut self, id: &str) -> &mut TaskSet {
        self.state.task_sets.iter_mut().find(|s| s.id == id).expect("a task set")
    }

    fn live_of(&self, id: &str) -> usize {
        self.tasks.iter().filter(|t| t.live() && t.deployment == id).count()
    }
}

#[test]
fn computed_desired_count_rounds_up_and_is_zero_while_draining() {
    let mut s = TaskSet::new("x".into(), GOOD.into(), 12.0, 0.0, 0);
    assert_eq!(s.computed_desired(10), 2, "1.2 rounds up to 2");
    s.scale = 33.33;
    assert_eq!(s.computed_desired(10), 4);
    s.scale = 100.0;
    assert_eq!(s.computed_desired(7), 7);
    s.scale = 0.0;
    assert_eq!(s.computed_desired(7), 0);
    s.scale = 50.0;
    s.status = TaskSetStatus::Draining;
    assert_eq!(s.computed_desired(7), 0);
}

#[test]
fn each_task_set_keeps_its_share_of_the_desired_count() {
    let mut w = external(4);
    let blue = w.add_set(GOOD, 100.0);
    let green = w.add_set(NEXT, 50.0);
    let first = w.pass();
    assert_eq!(first.launch.len(), 6, "both sets launch at once, unpaced by maximumPercent");
    assert_eq!(w.state.task_sets[0].stability, Stability::Stabilizing);
    w.run_until_steady(10);
    assert_eq!((w.live_of(&blue), w.live_of(&green)), (4, 2));
    assert!(w.state.task_sets.iter().all(|s| s.stability == Stability::SteadyState));
    let plan = w.pass();
    assert_eq!(plan.desired, 4, "the service's desired count stays the user's");
    assert_eq!(plan.running, 6);
    assert_eq!(plan.per_deployment.iter().find(|(id, _)| *id == green).unwrap().1.desired, 2);

    // Traffic moved: blue scaled to 0 gives up its tasks, a larger desired count grows green.
    w.set(&blue).scale = 0.0;
    w.spec.desired_count = 6;
    let plan = w.pass();
    assert_eq!(plan.stop.iter().filter(|s| s.reason == StopReason::ScaledDown).count(), 4);
    assert_eq!(plan.launch.len(), 1);
    w.run_until_steady(10);
    assert_eq!((w.live_of(&blue), w.live_of(&green)), (0, 3));
}

#[test]
fn a_draining_task_set_stops_its_tasks_then_leaves() {
    let mut w = external(2);
    let blue = w.add_set(GOOD, 100.0);
    let green = w.add_set(NEXT, 100.0);
    w.run_until_steady(10);
    w.set(&blue).status = TaskSetStatus::Draining;
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 2);
    assert!(plan.stop.iter().all(|s| s.deployment == blue));
    w.run_until_steady(10);
    assert_eq!(w.state.task_sets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [green.as_str()]);
}

#[test]
fn failing_task_set_tasks_are_throttled() {
    let mut w = external(1);
    w.add_set(BAD, 100.0);
    let mut launches = 0;
    for _ in 0..30 {
        launches += w.pass().launch.len();
    }
    assert!(launches < 15, "{launches} launches in 30 passes: never held back");
    assert!(w.events.iter().any(|e| e.contains("is unable to consistently start tasks successfully")));
}

#[test]
fn task_set_tasks_on_a_draining_instance_move_within_the_floor() {
    let mut w = external(3);
    let set = w.add_set(GOOD, 100.0);
    w.run_until_steady(10);
    let drained = w.tasks.iter().find(|t| t.live()).unwrap().instance.clone();
    w.instances.iter_mut().find(|i| i.id == drained).unwrap().state = InstanceState::Draining;
    for _ in 0..20 {
        w.pass();
        assert!(w.healthy() >= 3, "healthy fell to {}", w.healthy());
    }
    assert_eq!(w.live_of(&set), 3);
    assert!(w.tasks.iter().all(|t| !t.live() || t.instance != drained));
}

#[derive(Debug, Clone)]
enum SetEvent {
    Pass,
    Create(&'static str, u8),
    Scale(usize, u8),
    Delete(usize),
    Desired(u32),
    Crash(usize),
}

fn set_event() -> impl Strategy<Value = SetEvent> {
    prop_oneof![
        4 => Just(SetEvent::Pass),
        2 => (prop_oneof![Just(GOOD), Just(NEXT), Just(BAD)], 0u8..=100).prop_map(|(d, s)| SetEvent::Create(d, s)),
        2 => (0usize..5, 0u8..=100).prop_map(|(i, s)| SetEvent::Scale(i, s)),
        1 => (0usize..5).prop_map(SetEvent::Delete),
        1 => (0u32..8).prop_map(SetEvent::Desired),
        2 => (0usize..16).prop_map(SetEvent::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any history of task set changes keeps the floor on draining instances (checked in every
    /// pass) and ends with each set running exactly its computed count of its definition.
    #[test]
    fn task_sets_converge_to_their_computed_counts(events in proptest::collection::vec(set_event(), 1..50)) {
        let mut w = external(3);
        for e in &events {
            let sets = w.state.task_sets.len();
            match *e {
                SetEvent::Pass => {}
                SetEvent::Create(d, scale) if sets < 5 => { w.add_set(d, f64::from(scale)); }
                SetEvent::Scale(i, scale) if i < sets => w.state.task_sets[i].scale = f64::from(scale),
                SetEvent::Delete(i) if i < sets => w.state.task_sets[i].status = TaskSetStatus::Draining,
                SetEvent::Desired(n) => w.spec.desired_count = n,
                SetEvent::Crash(n) => w.happen(&Event::Crash(n)),
                _ => {}
            }
            w.pass();
        }
        // Failing sets never settle: take them away, then everything else must.
        for s in &mut w.state.task_sets {
            if s.task_definition == BAD {
                s.status = TaskSetStatus::Draining;
            }
        }
        w.state.backoff = Backoff::default();
        w.run_until_steady(100);
        let desired = w.spec.desired_count;
        for s in w.state.task_sets.clone() {
            prop_assert_eq!(w.live_of(&s.id), s.computed_desired(desired) as usize);
            prop_assert_eq!(s.stability, Stability::SteadyState);
        }
        prop_assert!(w.state.task_sets.iter().all(|s| s.status != TaskSetStatus::Draining));
    }
}

#[test]
fn behind_a_load_balancer_old_tasks_stop_only_once_new_targets_are_healthy() {
    let mut w = World::new(spec(3, 100, 200), GOOD);
    w.lb_healthy_after = Some(20.0);
    w.run_until_steady(30);
    w.state.start_deployment(
        Deployment::new("ecs-svc/2".into(), NEXT.into(), w.now, w.revision),
        crate::Strategy::Rolling,
    );
    for _ in 0..40 {
        let plan = w.pass();
        for s in &plan.stop {
            // The floor counts only tasks their target groups found healthy.
            let new_healthy = w.tasks.iter().filter(|t| t.deployment == "ecs-svc/2" && t.lb == LbHealth::Healthy);
            assert!(new_healthy.count() > 0, "{} stopped before any new target was healthy", s.task);
        }
    }
    let running: Vec<_> = w.tasks.iter().filter(|t| t.live()).collect();
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|t| t.deployment == "ecs-svc/2" && t.lb == LbHealth::Healthy));
}

#[test]
fn a_task_its_target_group_finds_unhealthy_is_replaced_after_the_grace_period() {
    let mut s = spec(2, 100, 200);
    s.grace_period = 30.0;
    let mut w = World::new(s, GOOD);
    w.lb_healthy_after = Some(0.0);
    w.run_until_steady(10);
    let group = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef".to_string();
    let t = w.tasks.iter_mut().find(|t| t.live()).unwrap();
    t.lb = LbHealth::Unhealthy { target_group: group.clone() };
    t.started_at = Some(w.now - 5.0);
    let id = t.id.clone();
    assert!(w.pass().stop.is_empty(), "still within the grace period");
    w.tasks.iter_mut().find(|t| t.id == id).unwrap().started_at = Some(w.now - 60.0);
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 1);
    assert_eq!((plan.stop[0].task.as_str(), plan.stop[0].reason), (id.as_str(), StopReason::ElbUnhealthy));
    assert_eq!(plan.stop[0].stopped_reason(), format!("Task failed ELB health checks in (target-group {group})"));
}
