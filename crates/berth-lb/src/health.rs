//! A target's health as a state machine: consecutive check results against the group's
//! healthy and unhealthy thresholds, with one transition function. Pure; the checker
//! (`probe.rs`, `checker.rs`) feeds it results.

use crate::config::{Failure, Health};

/// One health check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(Failure),
}

/// A target's health and the run of equal results that leads to the next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    health: Health,
    successes: u32,
    failures: u32,
}

impl Tracker {
    /// A new target: `Initial` until its checks decide, or `Unchecked` when checks are off.
    pub fn new(checks_enabled: bool) -> Self {
        let health = if checks_enabled { Health::Initial } else { Health::Unchecked };
        Self { health, successes: 0, failures: 0 }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Health checks were turned on or off for the group; returns whether health changed.
    /// Turning them on starts over from `Initial`.
    pub fn set_enabled(&mut self, enabled: bool) -> bool {
        let off = self.health == Health::Unchecked;
        if enabled != off {
            return false;
        }
        *self = Tracker::new(enabled);
        true
    }

    /// The transition function: records one result; returns whether health changed.
    /// A run of `healthy_threshold` successes makes the target healthy, a run of
    /// `unhealthy_threshold` failures unhealthy (with the last failure's reason); a result
    /// of the other kind breaks the run. An unhealthy target's reason follows its latest
    /// failure.
    pub fn observe(&mut self, outcome: Outcome, healthy_threshold: u32, unhealthy_threshold: u32) -> bool {
        if self.health == Health::Unchecked {
            return false;
        }
        let before = self.health.clone();
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes >= healthy_threshold.max(1) {
                    self.health = Health::Healthy;
                }
            }
            Outcome::Failure(reason) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                let is_unhealthy = matches!(self.health, Health::Unhealthy(_));
                if is_unhealthy || self.failures >= unhealthy_threshold.max(1) {
                    self.health = Health::Unhealthy(reason);
                }
            }
        }
        self.health != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(f: Failure) -> Outcome {
        Outcome::Failure(f)
    }

    #[test]
    fn initial_until_the_healthy_threshold() {
        let mut t = Tracker::new(true);
        assert_eq!(t.health(), &Health::Initial);
        assert!(!t.observe(Outcome::Success, 3, 2));
        assert!(!t.observe(Outcome::Success, 3, 2));
        assert_eq!(t.health(), &Health::Initial);
        assert!(t.observe(Outcome::Success, 3, 2));
        assert_eq!(t.health(), &Health::Healthy);
    }

    #[test]
    fn initial_until_the_unhealthy_threshold() {
        let mut t = Tracker::new(true);
        assert!(!t.observe(fail(Failure::Timeout), 3, 2));
        assert_eq!(t.health(), &Health::Initial);
        assert!(t.observe(fail(Failure::ResponseCode(500)), 3, 2));
        assert_eq!(t.health(), &Health::Unhealthy(Failure::ResponseCode(500)));
    }

    #[test]
    fn a_healthy_target_survives_a_broken_run_of_failures() {
        let mut t = Tracker::new(true);
        t.observe(Outcome::Success, 1, 3);
        t.observe(fail(Failure::Failed), 1, 3);
        t.observe(fail(Failure::Failed), 1, 3);
        t.observe(Outcome::Success, 1, 3);
        t.observe(fail(Failure::Failed), 1, 3);
        t.observe(fail(Failure::Failed), 1, 3);
        assert_eq!(t.health(), &Health::Healthy);
        assert!(t.observe(fail(Failure::Timeout), 1, 3));
        assert_eq!(t.health(), &Health::Unhealthy(Failure::Timeout));
    }

    #[test]
    fn unhealthy_reason_follows_the_latest_failure_and_recovers_at_threshold() {
        let mut t = Tracker::new(true);
        t.observe(fail(Failure::Timeout), 2, 1);
        assert!(t.observe(fail(Failure::ResponseCode(404)), 2, 1));
        assert_eq!(t.health(), &Health::Unhealthy(Failure::ResponseCode(404)));
        assert!(!t.observe(Outcome::Success, 2, 1));
        assert!(t.observe(Outcome::Success, 2, 1));
        assert_eq!(t.health(), &Health::Healthy);
    }

    #[test]
    fn disabled_checks_are_unchecked_and_reenabling_starts_over() {
        let mut t = Tracker::new(false);
        assert_eq!(t.health(), &Health::Unchecked);
        assert!(!t.observe(fail(Failure::Failed), 1, 1));
        assert!(!t.set_enabled(false));
        assert!(t.set_enabled(true));
        assert_eq!(t.health(), &Health::Initial);
        t.observe(Outcome::Success, 1, 1);
        assert!(t.set_enabled(false));
        assert_eq!(t.health(), &Health::Unchecked);
    }
}
