//! Prometheus text at `GET /metrics` (unsigned, for a scraper on the operator's network):
//! the API's requests and their latency by service, operation and status, what the service
//! scheduler's passes cost on this server, and each running task's cpu and memory as its agent
//! last reported them (see `stats`).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_control::scheduler::PassStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A task's gauges go once its agent has not reported it for this long.
const TASK_STALE: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    service: String,
    operation: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub cluster: String,
    pub service: String,
    pub task: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Telemetry {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Family<Operation, Histogram, fn() -> Histogram>,
    task_cpu: Family<TaskLabels, FloatGauge>,
    task_memory: Family<TaskLabels, Gauge>,
    task_seen: Mutex<HashMap<TaskLabels, Instant>>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "api_requests",
            "API requests answered, by service, operation and HTTP status",
            requests.clone(),
        );
        let latency = Family::<Operation, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("api_request_duration_seconds", "Time to answer an API request", latency.clone());
        let task_cpu = Family::<TaskLabels, FloatGauge>::default();
        registry.register(
            "task_cpu_utilization_percent",
            "A task's cpu use over the last period, in percent of its reservation",
            task_cpu.clone(),
        );
        let task_memory = Family::<TaskLabels, Gauge>::default();
        registry.register("task_memory_bytes", "A task's memory in use at its last report", task_memory.clone());
        Telemetry { registry, requests, latency, task_cpu, task_memory, task_seen: Mutex::new(HashMap::new()) }
    }
}

/// The scheduler's passes, read at each scrape.
#[derive(Debug)]
struct Passes(Arc<PassStats>);

impl Collector for Passes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = self.0.read();
        let mut one = |name: &str, help: &str, metric: &dyn EncodeMetric| {
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        one("scheduler_passes", "Service scheduler passes this server ran", &ConstCounter::new(f.passes))?;
        one("scheduler_pass_seconds", "Time spent in service scheduler passes", &ConstCounter::new(f.seconds))?;
        one(
            "scheduler_last_pass_seconds",
            "The time of the last service scheduler pass",
            &ConstGauge::new(f.last_seconds),
        )?;
        let tasks = ConstGauge::new(f.last_tasks);
        one(
            "scheduler_last_pass_tasks",
            "The tasks the last service scheduler pass observed, over all services",
            &tasks,
        )
    }
}

impl Telemetry {
    /// Also shows what the scheduler's passes cost.
    pub fn with_passes(mut self, passes: Arc<PassStats>) -> Self {
        self.registry.register_collector(Box::new(Passes(passes)));
        self
    }

    /// One answered API request.
    pub fn request(&self, service: &str, operation: &str, status: u16, took: Duration) {
        let labels = Request { service: service.into(), operation: operation.into(), code: status.to_string() };
        self.requests.get_or_create(&labels).inc();
        let op = Operation { service: service.into(), operation: operation.into() };
        self.latency.get_or_create(&op).observe(took.as_secs_f64());
    }

    /// A task's use as its agent reported it; tasks not reported for a while are dropped.
    pub fn task(&self, labels: TaskLabels, cpu_percent: f64, memory_bytes: u64) {
        self.task_cpu.get_or_create(&labels).set(cpu_percent);
        self.task_memory.get_or_create(&labels).set(i64::try_from(memory_bytes).unwrap_or(i64::MAX));
        let now = Instant::now();
        let mut seen = self.task_seen.lock().expect("telemetry lock");
        seen.insert(labels, now);
        seen.retain(|l, at| {
            let fresh = now.duration_since(*at) < TASK_STALE;
            if !fresh {
                self.task_cpu.remove(l);
                self.task_memory.remove(l);
            }
            fresh
        });
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }
}

/// `GET /metrics`.
pub async fn serve(State(app): State<std::sync::Arc<crate::App>>) -> Response {
    let mut response = (StatusCode::OK, app.telemetry.encode()).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_tasks_are_exposed_as_prometheus_text() {
        let t = Telemetry::default();
        t.request("ECS", "ListClusters", 200, Duration::from_millis(2));
        t.request("ECS", "ListClusters", 200, Duration::from_millis(3));
        t.request("ECS", "RunTask", 400, Duration::from_millis(1));
        let labels = TaskLabels { cluster: "default".into(), service: "web".into(), task: "t1".into() };
        t.task(labels, 42.5, 1024);
        let text = t.encode();
        assert!(
            text.contains(r#"berth_api_requests_total{service="ECS",operation="ListClusters",code="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"berth_api_requests_total{service="ECS",operation="RunTask",code="400"} 1"#), "{text}");
        assert!(
            text.contains(r#"berth_api_request_duration_seconds_count{service="ECS",operation="ListClusters"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"berth_task_cpu_utilization_percent{cluster="default",service="web",task="t1"} 42.5"#),
            "{text}"
        );
        assert!(text.contains(r#"berth_task_memory_bytes{cluster="default",service="web",task="t1"} 1024"#), "{text}");
    }

    #[test]
    fn scheduler_passes_are_read_at_each_scrape() {
        let passes = Arc::new(PassStats::default());
        let t = Telemetry::default().with_passes(passes.clone());
        assert!(t.encode().contains("berth_scheduler_passes_total 0\n"), "{}", t.encode());
        passes.record(Duration::from_millis(250), 40);
        passes.record(Duration::from_millis(500), 42);
        let text = t.encode();
        assert!(text.contains("berth_scheduler_passes_total 2\n"), "{text}");
        assert!(text.contains("berth_scheduler_pass_seconds_total 0.75\n"), "{text}");
        assert!(text.contains("berth_scheduler_last_pass_seconds 0.5\n"), "{text}");
        assert!(text.contains("berth_scheduler_last_pass_tasks 42\n"), "{text}");
    }
}
