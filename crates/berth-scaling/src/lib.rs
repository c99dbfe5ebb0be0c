//! Application Auto Scaling as pure functions: what a scaling policy, a cooldown or a schedule
//! decides, given the target's state and `now` — no store, no clock, no I/O. `berth-control`
//! reads the records, calls in here, and writes what comes out.
//!
//! - [`capacity`]: step adjustments (ChangeInCapacity, ExactCapacity, PercentChangeInCapacity,
//!   MinAdjustmentMagnitude) picked by how far the metric breaches its alarm's threshold, and
//!   target tracking's capacity proportional to metric / target;
//! - [`decide`]: whether a proposed change happens — min/max clamps, cooldowns, DisableScaleIn,
//!   suspended dynamic scaling — and the not-scaled reason when it does not;
//! - [`schedule`]: `at()`, `rate()` and `cron()` schedules with time zones, start and end times:
//!   when a scheduled action runs next.

pub mod capacity;
pub mod decide;
pub mod schedule;
