//! Whether a dynamic scaling policy's proposal happens, as Application Auto Scaling decides:
//!
//! - capacity stays within the target's min and max; a proposal that cannot move it is a
//!   *not scaled* activity (`AlreadyAtMaxCapacity`, `AlreadyAtMinCapacity`);
//! - a scale-out within the scale-out cooldown of the last one counts the capacity that one
//!   added: the proposal is worked out again from the capacity before it, and happens only
//!   when it asks for more than there is now;
//! - a scale-in waits for the scale-in cooldown of the last scale-in, unless a scale-out came
//!   after it (a scale-out ends the scale-in cooldown);
//! - `DisableScaleIn` and the suspended flags of the target hold changes in their direction.
//!
//! Times are seconds since the epoch; callers pass `now` from their clock.

use serde::{Deserialize, Serialize};

/// The target's `SuspendedState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Suspended {
    pub dynamic_in: bool,
    pub dynamic_out: bool,
    pub scheduled: bool,
}

/// One capacity change a policy made: when, from and to what.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub at: f64,
    pub from: i64,
    pub to: i64,
}

/// What the cooldowns look back on: a target's last dynamic scale-out and scale-in.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Recent {
    pub last_out: Option<Change>,
    pub last_in: Option<Change>,
}

impl Recent {
    /// Remembers a change that happened.
    pub fn record(&mut self, change: Change) {
        if change.to > change.from {
            self.last_out = Some(change);
        } else if change.to < change.from {
            self.last_in = Some(change);
        }
    }
}

/// A policy's cooldowns in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cooldowns {
    pub scale_out: i64,
    pub scale_in: i64,
}

/// A not scaled activity's `NotScaledReason.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotScaledCode {
    AlreadyAtMaxCapacity,
    AlreadyAtMinCapacity,
}

impl NotScaledCode {
    pub fn name(self) -> &'static str {
        match self {
            NotScaledCode::AlreadyAtMaxCapacity => "AlreadyAtMaxCapacity",
            NotScaledCode::AlreadyAtMinCapacity => "AlreadyAtMinCapacity",
        }
    }
}

/// Why a proposal left capacity alone without an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The proposal is the capacity there is.
    Unchanged,
    ScaleOutSuspended,
    ScaleInSuspended,
    ScaleInDisabled,
    ScaleOutCooldown,
    ScaleInCooldown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Set capacity to `to`; `wanted` is the proposal before clamping.
    Scale {
        to: i64,
        wanted: i64,
    },
    /// A not scaled activity: the proposal `wanted` is past a bound capacity already sits at.
    NotScaled {
        wanted: i64,
        code: NotScaledCode,
    },
    Held(Hold),
}

/// The target as a decision sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Situation {
    pub current: i64,
    pub min: i64,
    pub max: i64,
    pub suspended: Suspended,
    pub recent: Recent,
    pub now: f64,
}

/// Decides a dynamic policy's proposal. `propose(capacity)` is what the policy asks for from
/// a capacity (step adjustment or proportional); it is asked again from the capacity before
/// the last scale-out while that one's cooldown runs.
pub fn decide(s: &Situation, propose: impl Fn(i64) -> i64, cooldowns: Cooldowns, scale_in_disabled: bool) -> Outcome {
    let clamp = |n: i64| n.clamp(s.min, s.max.max(s.min));
    let wanted = propose(s.current);
    if wanted > s.current {
        if s.suspended.dynamic_out {
            return Outcome::Held(Hold::ScaleOutSuspended);
        }
        let wanted = match s.recent.last_out {
            Some(last) if s.now < last.at + cooldowns.scale_out as f64 => {
                let again = propose(last.from);
                if clamp(again) <= s.current {
                    return Outcome::Held(Hold::ScaleOutCooldown);
                }
                again
            }
            _ => wanted,
        };
        let to = clamp(wanted);
        if to <= s.current {
            return Outcome::NotScaled { wanted, code: NotScaledCode::AlreadyAtMaxCapacity };
        }
        Outcome::Scale { to, wanted }
    } else if wanted < s.current {
        if scale_in_disabled {
            return Outcome::Held(Hold::ScaleInDisabled);
        }
        if s.suspended.dynamic_in {
            return Outcome::Held(Hold::ScaleInSuspended);
        }
        if let Some(last) = s.recent.last_in
            && s.now < last.at + cooldowns.scale_in as f64
            && s.recent.last_out.is_none_or(|out| out.at < last.at)
        {
            return Outcome::Held(Hold::ScaleInCooldown);
        }
        let to = clamp(wanted);
        if to >= s.current {
            return Outcome::NotScaled { wanted, code: NotScaledCode::AlreadyAtMinCapacity };
        }
        Outcome::Scale { to, wanted }
    } else {
        Outcome::Held(Hold::Unchanged)
    }
}

/// What a target's new min and max (registration or a scheduled action) do to its capacity:
/// the capacity to set when `current` falls outside them.
pub fn within(current: i64, min: i64, max: i64) -> Option<i64> {
    if current < min {
        Some(min)
    } else if current > max {
        Some(max)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(current: i64, now: f64) -> Situation {
        Situation { current, min: 1, max: 10, suspended: Suspended::default(), recent: Recent::default(), now }
    }

    const COOL: Cooldowns = Cooldowns { scale_out: 60, scale_in: 300 };

    #[test]
    fn clamps_to_min_and_max_and_says_why_not() {
        assert_eq!(decide(&at(2, 0.0), |c| c + 3, COOL, false), Outcome::Scale { to: 5, wanted: 5 });
        assert_eq!(decide(&at(8, 0.0), |c| c + 5, COOL, false), Outcome::Scale { to: 10, wanted: 13 });
        assert_eq!(
            decide(&at(10, 0.0), |c| c + 5, COOL, false),
            Outcome::NotScaled { wanted: 15, code: NotScaledCode::AlreadyAtMaxCapacity }
        );
        assert_eq!(
            decide(&at(1, 0.0), |_| 0, COOL, false),
            Outcome::NotScaled { wanted: 0, code: NotScaledCode::AlreadyAtMinCapacity }
        );
        assert_eq!(decide(&at(3, 0.0), |c| c, COOL, false), Outcome::Held(Hold::Unchanged));
    }

    #[test]
    fn scale_out_cooldown_counts_what_the_last_scale_out_added() {
        let mut s = at(4, 100.0);
        s.recent.last_out = Some(Change { at: 80.0, from: 2, to: 4 });
        // +2 again from the 2 before: not more than the 4 there are.
        assert_eq!(decide(&s, |c| c + 2, COOL, false), Outcome::Held(Hold::ScaleOutCooldown));
        // +3 from 2 is 5: one more.
        assert_eq!(decide(&s, |c| c + 3, COOL, false), Outcome::Scale { to: 5, wanted: 5 });
        s.now = 141.0;
        assert_eq!(decide(&s, |c| c + 2, COOL, false), Outcome::Scale { to: 6, wanted: 6 }, "cooldown over");
    }

    #[test]
    fn scale_in_waits_for_its_cooldown_unless_a_scale_out_came_after() {
        let mut s = at(5, 100.0);
        s.recent.last_in = Some(Change { at: 50.0, from: 6, to: 5 });
        assert_eq!(decide(&s, |c| c - 1, COOL, false), Outcome::Held(Hold::ScaleInCooldown));
        s.recent.last_out = Some(Change { at: 60.0, from: 5, to: 6 });
        assert_eq!(decide(&s, |c| c - 1, COOL, false), Outcome::Scale { to: 4, wanted: 4 });
        s.recent.last_out = None;
        s.now = 351.0;
        assert_eq!(decide(&s, |c| c - 1, COOL, false), Outcome::Scale { to: 4, wanted: 4 });
    }

    #[test]
    fn suspension_and_disabled_scale_in_hold_their_direction_only() {
        let mut s = at(5, 0.0);
        s.suspended.dynamic_out = true;
        assert_eq!(decide(&s, |c| c + 1, COOL, false), Outcome::Held(Hold::ScaleOutSuspended));
        assert_eq!(decide(&s, |c| c - 1, COOL, false), Outcome::Scale { to: 4, wanted: 4 });
        s.suspended = Suspended { dynamic_in: true, ..Default::default() };
        assert_eq!(decide(&s, |c| c - 1, COOL, false), Outcome::Held(Hold::ScaleInSuspended));
        assert_eq!(decide(&s, |c| c + 1, COOL, false), Outcome::Scale { to: 6, wanted: 6 });
        s.suspended = Suspended::default();
        assert_eq!(decide(&s, |c| c - 1, COOL, true), Outcome::Held(Hold::ScaleInDisabled));
    }

    #[test]
    fn new_bounds_pull_capacity_inside() {
        assert_eq!(within(1, 2, 5), Some(2));
        assert_eq!(within(7, 2, 5), Some(5));
        assert_eq!(within(3, 2, 5), None);
    }

    proptest! {
        /// Whatever is proposed, from whatever history, on a fake clock: a change lands within
        /// [min, max], moves in the proposal's direction, and never happens in a suspended
        /// direction or inside a scale-in cooldown.
        #[test]
        fn decisions_respect_bounds_and_holds(
            current in 0i64..30, min in 0i64..10, span in 0i64..20, delta in -20i64..20,
            now in 0.0f64..1000.0, last_in_at in proptest::option::of(0.0f64..1000.0),
            last_out_at in proptest::option::of(0.0f64..1000.0),
            dyn_in: bool, dyn_out: bool, disabled: bool,
        ) {
            let max = min + span;
            let recent = Recent {
                last_out: last_out_at.map(|at| Change { at, from: (current - 1).max(0), to: current }),
                last_in: last_in_at.map(|at| Change { at, from: current + 1, to: current }),
            };
            let s = Situation { current, min, max, suspended: Suspended { dynamic_in: dyn_in, dynamic_out: dyn_out, scheduled: false }, recent, now };
            match decide(&s, |c| c + delta, COOL, disabled) {
                Outcome::Scale { to, .. } => {
                    prop_assert!((min..=max).contains(&to));
                    prop_assert_ne!(to, current);
                    if to > current {
                        prop_assert!(delta > 0 && !dyn_out);
                    } else {
                        prop_assert!(delta < 0 && !dyn_in && !disabled);
                        let cooling = recent.last_in.is_some_and(|l| now < l.at + 300.0 && recent.last_out.is_none_or(|o| o.at < l.at));
                        prop_assert!(!cooling);
                    }
                }
                Outcome::NotScaled { code, .. } => match code {
                    NotScaledCode::AlreadyAtMaxCapacity => prop_assert!(current >= max),
                    NotScaledCode::AlreadyAtMinCapacity => prop_assert!(current <= min),
                },
                Outcome::Held(_) => {}
            }
        }
    }
}
