//! Container restart policies (ECS `restartPolicy`): a container that exits while its task
//! should run is started again in place, without replacing the task, unless
//! - its exit code is one of `ignoredExitCodes`, or
//! - it ran less than `restartAttemptPeriod` (default 300 s) since it started or was last
//!   restarted: a container failing fast is not restarted over and over.
//!
//! Pure: the runner passes in the times.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

/// How long a container must have run before an exit restarts it, when the policy says nothing.
pub const DEFAULT_ATTEMPT_PERIOD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub ignored_exit_codes: Vec<i64>,
    pub attempt_period: Duration,
}

/// What to do about one exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Restart,
    /// The exit code is one the policy ignores.
    Ignored(i64),
    /// It ran only this long since it (re)started: less than the attempt period.
    TooSoon(Duration),
    /// The runtime has no exit code for it (it never ran, or vanished).
    NoExitCode,
}

impl RestartPolicy {
    /// The policy of a container definition: `None` when it has none or it is not enabled.
    pub fn of(definition: &Map<String, Value>) -> Option<RestartPolicy> {
        let policy = definition.get("restartPolicy")?.as_object()?;
        if policy.get("enabled").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let ignored_exit_codes = policy
            .get("ignoredExitCodes")
            .and_then(Value::as_array)
            .map(|codes| codes.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let attempt_period = policy
            .get("restartAttemptPeriod")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_ATTEMPT_PERIOD);
        Some(RestartPolicy { ignored_exit_codes, attempt_period })
    }

    /// Whether a container that has been running since `since` (its start, or its last
    /// restart) and exited at `now` with `exit_code` is restarted.
    pub fn verdict(&self, exit_code: Option<i64>, since: Instant, now: Instant) -> Verdict {
        let Some(code) = exit_code else {
            return Verdict::NoExitCode;
        };
        if self.ignored_exit_codes.contains(&code) {
            return Verdict::Ignored(code);
        }
        let ran = now.saturating_duration_since(since);
        if ran < self.attempt_period {
            return Verdict::TooSoon(ran);
        }
        Verdict::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn policies_are_read_from_the_definition_with_ecs_defaults() {
        assert_eq!(RestartPolicy::of(&definition(json!({"name": "a"}))), None);
        assert_eq!(RestartPolicy::of(&definition(json!({"restartPolicy": {"enabled": false}}))), None);
        let default = RestartPolicy::of(&definition(json!({"restartPolicy": {"enabled": true}}))).unwrap();
        assert_eq!(default, RestartPolicy { ignored_exit_codes: vec![], attempt_period: DEFAULT_ATTEMPT_PERIOD });
        let given = definition(
            json!({"restartPolicy": {"enabled": true, "ignoredExitCodes": [0, 2], "restartAttemptPeriod": 60}}),
        );
        let policy = RestartPolicy::of(&given).unwrap();
        assert_eq!(
            (policy.ignored_exit_codes.as_slice(), policy.attempt_period),
            (&[0, 2][..], Duration::from_secs(60))
        );
    }

    #[test]
    fn exits_restart_unless_ignored_too_soon_or_without_a_code() {
        let policy = RestartPolicy { ignored_exit_codes: vec![0], attempt_period: Duration::from_secs(60) };
        let since = Instant::now();
        let later = |s: u64| since + Duration::from_secs(s);
        assert_eq!(policy.verdict(Some(1), since, later(60)), Verdict::Restart);
        assert_eq!(policy.verdict(Some(137), since, later(600)), Verdict::Restart);
        assert_eq!(policy.verdict(Some(0), since, later(600)), Verdict::Ignored(0));
        assert_eq!(policy.verdict(Some(1), since, later(59)), Verdict::TooSoon(Duration::from_secs(59)));
        assert_eq!(policy.verdict(None, since, later(600)), Verdict::NoExitCode);
    }
}
