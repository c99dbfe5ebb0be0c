//! BLUE_GREEN, LINEAR and CANARY deployments on the simulated cluster, with rules that follow
//! [`routing`] after every pass. What must hold at every pass: blue's tasks all stay until
//! green has every bit of production traffic and the bake time is over; traffic only moves
//! once green is fully up and healthy in its groups; steps bake for their time.

use super::*;

const BAKE: f64 = 60.0;

fn shifting_world(strategy: crate::Strategy, desired: u32) -> World {
    let spec = Spec { strategy, bake: BAKE, ..spec(desired, 100, 200) };
    let mut w = World::new(spec, GOOD);
    w.lb_healthy_after = Some(4.0);
    w.lb_stagger = 2.0;
    w.alternate_share = Some(0.0);
    w.run_until_steady(20);
    w
}

fn live_of(w: &World, definition: &str) -> usize {
    w.tasks.iter().filter(|t| t.active() && w.definition_of(&t.deployment) == definition).count()
}

fn green_ready(w: &World, definition: &str) -> usize {
    w.tasks
        .iter()
        .filter(|t| t.healthy(w.now) && t.lb == LbHealth::Healthy && w.definition_of(&t.deployment) == definition)
        .count()
}

/// The production share of the deployment of `definition` as the rules give it now.
fn share_of(w: &World, definition: &str) -> f64 {
    let side = w.state.deployments.iter().find(|d| d.task_definition == definition).map(|d| d.side);
    let alt = w.alternate_share.unwrap();
    if side == Some(Side::Alternate) { alt } else { 100.0 - alt }
}

/// Runs passes until the service is steady on `to`, checking each pass; returns the shares
/// `to` had, with the time each began.
fn deploy(w: &mut World, to: &str, from: &str, desired: usize) -> Vec<(f64, f64)> {
    w.update(to);
    let mut shares: Vec<(f64, f64)> = Vec::new();
    let mut full_since = None;
    for _ in 0..400 {
        let ready_before = green_ready(w, to);
        let share_before = share_of(w, to);
        let stage = |w: &World| w.state.primary().and_then(|p| p.shift).map(|s| s.stage);
        let stage_before = stage(w);
        w.pass();
        if stage_before == Some(Stage::ScaleUp) && stage(w) != stage_before {
            assert_eq!(green_ready(w, to), desired, "green left SCALE_UP before all of it was healthy");
        }
        let share = share_of(w, to);
        if share > share_before {
            assert_eq!(ready_before, desired, "traffic moved to green before all of it was healthy");
        }
        if shares.last().is_none_or(|(_, s)| *s != share) {
            shares.push((w.now, share));
        }
        if share >= 100.0 && full_since.is_none() {
            full_since = Some(w.now);
        }
        if live_of(w, from) < desired {
            let since = full_since.expect("a blue task stopped before green had all production traffic");
            assert!(w.now - since >= BAKE, "blue went {}s after the shift, before the bake time", w.now - since);
        }
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady, "not steady; events: {:#?}", w.events);
    shares
}

#[test]
fn blue_green_shifts_all_production_traffic_at_once_and_keeps_blue_for_the_bake_time() {
    let mut w = shifting_world(crate::Strategy::BlueGreen, 3);
    assert_eq!(w.alternate_share, Some(0.0), "the first deployment serves from the primary groups");
    let shares = deploy(&mut w, NEXT, GOOD, 3);
    let moved: Vec<f64> = shares.iter().map(|(_, s)| *s).collect();
    assert_eq!(moved, [0.0, 100.0], "all at once");
    let p = w.state.primary().unwrap();
    assert_eq!((p.task_definition.as_str(), p.side, p.rollout), (NEXT, Side::Alternate, Rollout::Completed));
    assert_eq!(p.shift.map(|s| s.stage), Some(Stage::CleanUp));
    assert_eq!(w.alternate_share, Some(100.0));
    assert_eq!(live_of(&w, GOOD), 0);
    assert!(w.events.iter().any(|e| e.contains("entered lifecycle stage BAKE_TIME")));

    // The next deployment comes up on the primary groups and takes the traffic back there.
    let shares = deploy(&mut w, GOOD, NEXT, 3);
    assert_eq!(shares.last().map(|s| s.1), Some(100.0));
    assert_eq!(w.state.primary().unwrap().side, Side::Primary);
    assert_eq!(w.alternate_share, Some(0.0));
}

#[test]
fn linear_moves_a_step_per_step_bake_time() {
    let step_bake = 20.0;
    let mut w = shifting_world(crate::Strategy::Linear { step_percent: 25.0, step_bake }, 2);
    let shares = deploy(&mut w, NEXT, GOOD, 2);
    let moved: Vec<f64> = shares.iter().map(|(_, s)| *s).collect();
    assert_eq!(moved, [0.0, 25.0, 50.0, 75.0, 100.0]);
    for pair in shares[1..].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= step_bake, "a step was not baked: {shares:?}");
    }
}

#[test]
fn canary_sends_its_slice_then_the_rest_after_the_canary_bake() {
    let canary_bake = 30.0;
    let mut w = shifting_world(crate::Strategy::Canary { canary_percent: 10.0, canary_bake }, 2);
    let shares = deploy(&mut w, NEXT, GOOD, 2);
    let moved: Vec<f64> = shares.iter().map(|(_, s)| *s).collect();
    assert_eq!(moved, [0.0, 10.0, 100.0]);
    assert!(shares[2].0 - shares[1].0 >= canary_bake);
}

#[test]
fn a_failing_green_hands_traffic_back_to_blue_whose_tasks_never_stopped() {
    let mut w = shifting_world(crate::Strategy::BlueGreen, 2);
    w.spec.circuit_breaker = Some(true);
    let blue = w.state.primary().unwrap().id.clone();
    let blue_tasks: Vec<String> = w.tasks.iter().filter(|t| t.active()).map(|t| t.id.clone()).collect();
    w.update(BAD);
    let green = w.state.primary().unwrap().id.clone();
    for _ in 0..100 {
        w.pass();
        assert_eq!(w.alternate_share, Some(0.0), "no traffic ever reaches a green that never came up");
        if w.state.steady {
            break;
        }
    }
    assert!(w.state.steady, "events: {:#?}", w.events);
    let p = w.state.primary().unwrap();
    assert_eq!((p.id.as_str(), p.rollback_of.as_deref()), (blue.as_str(), Some(green.as_str())));
    let still: Vec<String> = w.tasks.iter().filter(|t| t.active()).map(|t| t.id.clone()).collect();
    assert_eq!(still, blue_tasks, "blue's own tasks serve on; nothing was relaunched");
    let failed = w.state.history.iter().find(|d| d.id == green).unwrap();
    assert_eq!(failed.finished.map(|f| f.1), Some(Outcome::RolledBack));
}

#[test]
fn a_rollback_in_the_middle_of_a_canary_takes_the_slice_back() {
    let mut w = shifting_world(crate::Strategy::Canary { canary_percent: 20.0, canary_bake: 600.0 }, 2);
    w.update(NEXT);
    let green = w.state.primary().unwrap().id.clone();
    for _ in 0..100 {
        w.pass();
        if share_of(&w, NEXT) > 0.0 {
            break;
        }
    }
    assert_eq!(share_of(&w, NEXT), 20.0);
    // StopServiceDeployment's way: fail the primary, then roll back.
    let p = w.state.deployments.iter_mut().find(|d| d.id == green).unwrap();
    p.rollout = Rollout::Failed;
    let to = roll_back(&mut w.state, &green, &|to| format!("back to {to}"), "ecs-svc/x", w.now, w.revision);
    assert_eq!(to.as_deref(), Some("ecs-svc/1"));
    let plan = w.pass();
    assert!(plan.stop.is_empty(), "green keeps its tasks while the rules still send it its slice");
    assert_eq!(w.alternate_share, Some(0.0), "all production traffic is blue's again");
    let plan = w.pass();
    assert_eq!(plan.stop.len(), 2, "then green goes");
    w.run_until_steady(50);
    assert_eq!(live_of(&w, NEXT), 0);
    assert_eq!(live_of(&w, GOOD), 2);
}

#[test]
fn a_deployment_started_during_a_shift_replaces_the_green_once_no_traffic_reaches_it() {
    let mut w = shifting_world(crate::Strategy::Linear { step_percent: 50.0, step_bake: 1000.0 }, 2);
    w.update(NEXT);
    for _ in 0..100 {
        w.pass();
        if share_of(&w, NEXT) > 0.0 {
            break;
        }
    }
    assert_eq!(share_of(&w, NEXT), 50.0);
    let superseded = w.state.primary().unwrap().clone();
    w.update(GOOD);
    let newest = w.state.primary().unwrap().clone();
    assert_eq!(newest.side, superseded.side, "it comes up where the superseded green was, away from the blue");
    let plan = w.pass();
    assert_eq!(w.alternate_share, Some(0.0), "the side it shares with the old green gets no traffic until it is up");
    assert!(plan.stop.is_empty(), "the old green goes only once the rules say it gets nothing");
    let plan = w.pass();
    assert!(plan.stop.iter().all(|s| s.deployment == superseded.id) && !plan.stop.is_empty());
}

#[test]
fn a_rolling_deployment_after_blue_green_stays_on_the_serving_side() {
    let mut w = shifting_world(crate::Strategy::BlueGreen, 2);
    deploy(&mut w, NEXT, GOOD, 2);
    assert_eq!(w.state.primary().unwrap().side, Side::Alternate);
    w.spec.strategy = crate::Strategy::Rolling;
    w.update(GOOD);
    assert_eq!(w.state.primary().unwrap().side, Side::Alternate);
    assert!(w.state.primary().unwrap().shift.is_none());
    w.run_until_steady(50);
    assert_eq!(w.alternate_share, Some(100.0), "traffic stays where the tasks are");
}

#[test]
fn a_shifting_deployment_started_before_the_first_one_completed_shifts_from_it() {
    let spec = Spec { strategy: crate::Strategy::BlueGreen, bake: 0.0, ..spec(2, 100, 200) };
    let mut w = World::new(spec, GOOD);
    w.lb_healthy_after = Some(4.0);
    w.alternate_share = Some(0.0);
    w.pass();
    w.pass();
    assert_eq!(w.state.primary().unwrap().rollout, Rollout::InProgress, "still coming up");
    w.update(NEXT);
    let p = w.state.primary().unwrap();
    assert_eq!((p.side, p.shift.map(|s| s.stage)), (Side::Alternate, Some(Stage::ScaleUp)));
    w.run_until_steady(100);
    assert_eq!(w.alternate_share, Some(100.0));
    assert_eq!(live_of(&w, NEXT), 2);
    assert_eq!(live_of(&w, GOOD), 0);
}

#[test]
fn a_failed_green_with_nothing_to_roll_back_to_gets_no_traffic() {
    let spec = Spec { strategy: crate::Strategy::BlueGreen, circuit_breaker: Some(true), ..spec(2, 100, 200) };
    let mut w = World::new(spec, GOOD);
    w.lb_healthy_after = Some(4.0);
    w.alternate_share = Some(0.0);
    w.pass();
    w.update(BAD);
    let green = w.state.primary().unwrap().id.clone();
    for _ in 0..60 {
        w.pass();
        assert_eq!(w.alternate_share, Some(0.0), "the failing green never gets production traffic");
    }
    let p = w.state.primary().unwrap();
    assert_eq!((p.id.as_str(), p.rollout), (green.as_str(), Rollout::Failed));
    assert!(w.events.iter().any(|e| e.contains("has no completed deployment to roll back to")));
    assert_eq!(live_of(&w, GOOD), 2, "the first deployment's tasks keep serving");
}
