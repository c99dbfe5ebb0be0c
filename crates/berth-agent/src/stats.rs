//! The stats loop: every metric period, each task cgroup's cpu time and memory are read, the
//! cpu time used since the last reading worked out, and the period's use of every task
//! reported to the control plane (`berth_agent_protocol::stats`). A task's first reading only
//! sets its baseline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::stats::{StatsReport, TaskStats};
use tokio::time::Instant;

use crate::cgroup::{TaskCgroups, Usage};
use crate::control::ControlPlane;

/// The readings of the last period, and turning new ones into a period's stats.
#[derive(Default)]
pub struct Sampler {
    last: HashMap<String, (Usage, Instant)>,
}

impl Sampler {
    /// The stats since the last readings of these tasks (tasks seen for the first time only
    /// start being followed; tasks gone are forgotten).
    pub fn sample(&mut self, readings: Vec<(String, Usage)>, now: Instant) -> Vec<TaskStats> {
        let mut out = Vec::new();
        let mut next = HashMap::new();
        for (id, usage) in readings {
            if let Some((before, at)) = self.last.get(&id) {
                let seconds = now.duration_since(*at).as_secs_f64();
                if seconds > 0.0 {
                    out.push(TaskStats {
                        task_id: id.clone(),
                        cpu_seconds: usage.cpu_nanos.saturating_sub(before.cpu_nanos) as f64 / 1e9,
                        seconds,
                        memory_bytes: usage.memory_bytes,
                    });
                }
            }
            next.insert(id, (usage, now));
        }
        self.last = next;
        out
    }
}

/// Samples and reports every `period` until the process ends.
pub async fn run(
    control: Arc<dyn ControlPlane>,
    cgroups: Arc<dyn TaskCgroups>,
    clock: Arc<dyn crate::clock::Clock>,
    cluster: String,
    instance: String,
    period: Duration,
) {
    let mut sampler = Sampler::default();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let tasks = sampler.sample(cgroups.usage(), Instant::now());
        if tasks.is_empty() {
            continue;
        }
        let report = StatsReport {
            cluster: cluster.clone(),
            container_instance: instance.clone(),
            at: clock.timestamp(),
            tasks,
        };
        if let Err(e) = control.report_stats(&report).await {
            tracing::warn!(error = %e, "reporting task stats failed; this period's are dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::RecordingCgroups;
    use crate::clock::TokioClock;
    use crate::control::fake::FakeControlPlane;

    #[test]
    fn a_period_is_the_difference_of_two_readings() {
        let mut s = Sampler::default();
        let t0 = Instant::now();
        let reading = |cpu_s: u64, mem: u64| Usage { cpu_nanos: cpu_s * 1_000_000_000, memory_bytes: mem };
        assert!(s.sample(vec![("a".into(), reading(10, 5))], t0).is_empty());
        let stats =
            s.sample(vec![("a".into(), reading(40, 7)), ("b".into(), reading(1, 1))], t0 + Duration::from_secs(60));
        assert_eq!(stats, [TaskStats { task_id: "a".into(), cpu_seconds: 30.0, seconds: 60.0, memory_bytes: 7 }]);
        let stats = s.sample(vec![("b".into(), reading(3, 2))], t0 + Duration::from_secs(120));
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].task_id, "b");
        // "a" was forgotten when it vanished: seen again, it starts over.
        assert!(s.sample(vec![("a".into(), reading(50, 1))], t0 + Duration::from_secs(180)).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn reports_go_to_the_control_plane_each_period() {
        let control = Arc::new(FakeControlPlane::new("arn:ci"));
        let cgroups = Arc::new(RecordingCgroups::default());
        *cgroups.usage.lock().unwrap() = vec![("t1".into(), Usage { cpu_nanos: 0, memory_bytes: 10 })];
        let clock = Arc::new(TokioClock::new(std::time::UNIX_EPOCH));
        let task = tokio::spawn(run(
            control.clone(),
            cgroups.clone(),
            clock,
            "default".into(),
            "ci1".into(),
            Duration::from_secs(10),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        *cgroups.usage.lock().unwrap() = vec![("t1".into(), Usage { cpu_nanos: 5_000_000_000, memory_bytes: 20 })];
        tokio::time::sleep(Duration::from_secs(10)).await;
        let reports = control.stats();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].container_instance, "ci1");
        assert_eq!(reports[0].tasks[0].cpu_seconds, 5.0);
        assert_eq!(reports[0].tasks[0].memory_bytes, 20);
        task.abort();
    }
}
