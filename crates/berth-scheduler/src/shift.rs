//! Deployments that shift traffic between two target groups: ECS's BLUE_GREEN, LINEAR and
//! CANARY strategies.
//!
//! Each of a service's load balancers names a target group and an alternate one. A deployment
//! registers its tasks on one *side* of every such pair. A new deployment (green) takes the
//! side the serving one (blue) does not use, scales up there in full beside blue, and once all
//! its tasks are healthy in their groups moves the test listener rule, then the production
//! rule's weights over to its side: at once (BLUE_GREEN), in steps (LINEAR) or a slice first
//! (CANARY). After the bake time blue's tasks are drained and stopped. Failing before that
//! puts blue back in charge, with every weight on its side again.
//!
//! The rules' weights are the caller's effect: [`routing`] says what they should be, the caller
//! sets them and reports what they are ([`crate::Observed::alternate_share`]); a step only
//! bakes, and blue only goes, once the weights say so.

use serde::{Deserialize, Serialize};

use crate::{Deployment, LbHealth, Pass, Rollout, State, TaskView};

/// How the service deploys (ECS `deploymentConfiguration.strategy`), with its settings; times
/// in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Strategy {
    #[default]
    Rolling,
    BlueGreen,
    Linear {
        step_percent: f64,
        step_bake: f64,
    },
    Canary {
        canary_percent: f64,
        canary_bake: f64,
    },
}

impl Strategy {
    pub fn shifts(self) -> bool {
        self != Strategy::Rolling
    }

    /// The production share green gets when its production shift begins.
    fn first_step(self) -> f64 {
        match self {
            Strategy::Linear { step_percent, .. } => step_percent,
            Strategy::Canary { canary_percent, .. } => canary_percent,
            _ => 100.0,
        }
    }

    /// The share after `current`, once the step has baked, and how long a step bakes.
    fn next_step(self, current: f64) -> (f64, f64) {
        match self {
            Strategy::Linear { step_percent, step_bake } => ((current + step_percent).min(100.0), step_bake),
            Strategy::Canary { canary_bake, .. } => (100.0, canary_bake),
            _ => (100.0, 0.0),
        }
    }
}

/// Which target group of each of the service's load balancers a deployment's tasks join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Side {
    /// `targetGroupArn`.
    #[default]
    Primary,
    /// `advancedConfiguration.alternateTargetGroupArn`.
    Alternate,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Primary => Side::Alternate,
            Side::Alternate => Side::Primary,
        }
    }
}

/// ECS's lifecycle stages that Berth passes through (the hook stages, `PRE_`/`POST_`, run
/// no hooks here and are not stopped at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    ScaleUp,
    TestTrafficShift,
    ProductionTrafficShift,
    BakeTime,
    CleanUp,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::ScaleUp => "SCALE_UP",
            Stage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Stage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            Stage::BakeTime => "BAKE_TIME",
            Stage::CleanUp => "CLEAN_UP",
        }
    }
}

/// Where a traffic-shifting deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shift {
    pub stage: Stage,
    /// When the stage (or, in PRODUCTION_TRAFFIC_SHIFT, the current step) began.
    pub since: f64,
    /// The percent of production traffic it asks for.
    pub traffic: f64,
}

/// What the listener rules should say: the percent of production traffic the alternate
/// groups get, and whether test traffic goes to them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routing {
    pub alternate_share: f64,
    pub test_alternate: bool,
}

/// The weights give a side its share to within this many percent.
const WEIGHT_SLACK: f64 = 0.15;

/// The deployment a new one shifts traffic away from: the newest that completed, else the
/// primary still rolling out (the traffic is on its side).
fn serving(state: &State) -> Option<&Deployment> {
    let completed = state.deployments.iter().chain(&state.history).find(|d| d.rollout == Rollout::Completed);
    completed.or_else(|| state.primary().filter(|p| p.rollout == Rollout::InProgress))
}

/// Sets up a new deployment `d` before it becomes the primary: on the serving side when it
/// rolls, on the other side with a shift to run when the strategy shifts and something serves.
pub(crate) fn prepare(state: &State, d: &mut Deployment, strategy: Strategy) {
    let serving = serving(state);
    let serving_side = serving.map(|s| s.side).or_else(|| state.primary().map(|p| p.side)).unwrap_or_default();
    match serving {
        Some(_) if strategy.shifts() => {
            d.side = serving_side.other();
            d.shift = Some(Shift { stage: Stage::ScaleUp, since: d.created_at, traffic: 0.0 });
        }
        _ => d.side = serving_side,
    }
}

/// The primary deployment when it is shifting traffic right now.
pub(crate) fn shifting(state: &State) -> Option<(&Deployment, Shift)> {
    let p = state.primary()?;
    p.shift.filter(|_| p.rollout == Rollout::InProgress).map(|s| (p, s))
}

/// What the rules should say for `state`.
pub fn routing(state: &State) -> Option<Routing> {
    let p = state.primary()?;
    let to_alternate = |share: f64| if p.side == Side::Alternate { share } else { 100.0 - share };
    let on_green = |stage: Stage| (p.side == Side::Alternate) == (stage >= Stage::TestTrafficShift);
    Some(match (p.shift, p.rollout) {
        (Some(shift), Rollout::InProgress) => {
            Routing { alternate_share: to_alternate(shift.traffic), test_alternate: on_green(shift.stage) }
        }
        // A green that failed with nothing to roll back to: everything stays on blue's side.
        (Some(_), Rollout::Failed) => {
            Routing { alternate_share: to_alternate(0.0), test_alternate: p.side != Side::Alternate }
        }
        _ => Routing { alternate_share: to_alternate(100.0), test_alternate: p.side == Side::Alternate },
    })
}

/// The share of production traffic `side` gets, as the rules were observed.
fn observed_share(observed: Option<f64>, side: Side) -> Option<f64> {
    observed.map(|alt| if side == Side::Alternate { alt } else { 100.0 - alt })
}

/// A green task counts once its load balancers found it healthy, whatever else it passes.
fn green_ready(t: &TaskView, now: f64) -> bool {
    t.healthy(now) && t.lb == LbHealth::Healthy
}

/// Which tasks of other deployments a shifting pass lets go: those on green's side (an
/// earlier green it superseded) once no production traffic reaches that side, and blue's once
/// green has all of it and the bake time is over.
pub(crate) fn leaving<'a>(pass: &Pass<'a>, state: &State, observed: Option<f64>) -> Vec<&'a TaskView> {
    let Some((green, shift)) = shifting(state) else { return Vec::new() };
    let side_of = |t: &TaskView| state.deployments.iter().find(|d| d.id == t.deployment).map(|d| d.side);
    let green_share = observed_share(observed, green.side);
    let green_side_idle = green_share.is_some_and(|s| s <= WEIGHT_SLACK);
    let blue_idle = shift.stage == Stage::CleanUp && green_share.is_some_and(|s| s >= 100.0 - WEIGHT_SLACK);
    pass.live
        .iter()
        .copied()
        .filter(|t| t.active() && t.deployment != green.id)
        .filter(|t| match side_of(t) {
            Some(side) if side == green.side => green_side_idle,
            _ => blue_idle,
        })
        .collect()
}

/// Tasks of other deployments that must stay although the primary no longer wants them: those
/// on the other side than the primary's while the rules still send that side production
/// traffic (a rolled-back green, until the weights are back on blue). Stopping them first
/// would leave the rules pointing at groups with nothing in them.
pub(crate) fn still_routed<'a>(pass: &Pass<'a>, state: &State, observed: Option<f64>) -> Vec<&'a TaskView> {
    let Some(p) = state.primary() else { return Vec::new() };
    if shifting(state).is_some() {
        return Vec::new();
    }
    let other = p.side.other();
    if observed_share(observed, other).is_none_or(|s| s <= WEIGHT_SLACK) {
        return Vec::new();
    }
    let side_of = |t: &TaskView| state.deployments.iter().find(|d| d.id == t.deployment).map(|d| d.side);
    pass.live.iter().copied().filter(|t| t.deployment != p.id && side_of(t) == Some(other)).collect()
}

/// Moves the shifting deployment through its stages; `observed` is the alternate groups'
/// production share as the rules say now. Returns the stage it entered, if any.
pub(crate) fn advance(
    strategy: Strategy,
    bake: f64,
    state: &mut State,
    pass: &Pass<'_>,
    desired: u32,
    observed: Option<f64>,
) -> Option<Stage> {
    let now = pass.now;
    let (green, _) = shifting(state)?;
    let green_id = green.id.clone();
    let green_share = observed_share(observed, green.side);
    let ready = pass.live.iter().filter(|t| t.deployment == green_id && green_ready(t, now)).count() as u32;
    let d = state.deployments.iter_mut().find(|d| d.id == green_id)?;
    let shift = d.shift.as_mut()?;
    let applied = green_share.is_some_and(|s| (s - shift.traffic).abs() <= WEIGHT_SLACK);
    let next = match shift.stage {
        Stage::ScaleUp if ready >= desired => Some((Stage::TestTrafficShift, shift.traffic)),
        // Test traffic moved with the pass that entered the stage.
        Stage::TestTrafficShift => Some((Stage::ProductionTrafficShift, strategy.first_step())),
        Stage::ProductionTrafficShift if applied => {
            let (after, step_bake) = strategy.next_step(shift.traffic);
            match () {
                _ if shift.traffic >= 100.0 => Some((Stage::BakeTime, 100.0)),
                _ if now - shift.since >= step_bake => Some((Stage::ProductionTrafficShift, after)),
                _ => None,
            }
        }
        Stage::BakeTime if now - shift.since >= bake => Some((Stage::CleanUp, 100.0)),
        _ => None,
    };
    let (stage, traffic) = next?;
    let entered = (stage != shift.stage).then_some(stage);
    *shift = Shift { stage, since: now, traffic };
    d.updated_at = now;
    entered
}
