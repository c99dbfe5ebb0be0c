//! The stats channel's receiving end (`POST /berth/v1/stats`, see
//! `berth_agent_protocol::stats`): an agent's report of its tasks' cpu and memory over a
//! metric period becomes the built-in metrics of their clusters and services:
//!
//! - `AWS/ECS` `CPUUtilization` and `MemoryUtilization` (Percent) by `ClusterName` and by
//!   `ClusterName`, `ServiceName`: one datapoint per task, the share of its reservation it
//!   used (cpu units of 1024 a vCPU; memory MiB), so Average is the tasks' average;
//! - `ECS/ContainerInsights` `CpuUtilized` (cpu units), `CpuReserved`, `MemoryUtilized` and
//!   `MemoryReserved` (Megabytes) by `ClusterName`, `ClusterName`+`ServiceName` and
//!   `ClusterName`+`TaskDefinitionFamily`, and `RunningTaskCount` per report.
//!
//! A task without a cpu reservation counts against one vCPU (1024 units).

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Bytes, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use berth_agent_protocol::stats::StatsReport;
use berth_control::fargate;
use berth_control::records::{Host, TaskRecord};
use berth_metrics::{Datum, MetricId, Stats};
use serde_json::{Value, json};

use crate::App;
use crate::ecs::{self, Ctx};
use crate::error::{ApiError, ApiResult, json_answer};
use crate::sigv4;

const MIB: f64 = 1_048_576.0;

pub async fn receive(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap, body: axum::body::Body) -> Response {
    json_answer(match to_bytes(body, 4 << 20).await {
        Ok(raw) => record(&app, &uri, &headers, &raw).await,
        Err(_) => Err(ApiError::invalid("A stats report is at most 4 MiB.")),
    })
}

fn text<'a>(task: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    task.get(key).and_then(Value::as_str)
}

/// A task's cpu units (one vCPU when it reserves none) and memory MiB reserved.
fn reservation(rec: &TaskRecord) -> (f64, f64) {
    let task = &rec.task;
    let cpu = text(task, "cpu").and_then(|c| c.parse::<f64>().ok()).unwrap_or(rec.requirements.cpu as f64);
    let memory = text(task, "memory").and_then(|m| m.parse::<f64>().ok()).unwrap_or(rec.requirements.memory as f64);
    (if cpu > 0.0 { cpu } else { 1024.0 }, memory)
}

/// The service a task belongs to, if any.
fn service_of(rec: &TaskRecord) -> Option<&str> {
    text(&rec.task, "group").and_then(|g| g.strip_prefix("service:"))
}

/// The datapoints one task's stats stand for.
fn datapoints(cluster: &str, rec: &TaskRecord, used_cpu_units: f64, memory_mib: f64, at: i64) -> Vec<Datum> {
    let task = &rec.task;
    let (reserved_cpu, reserved_memory) = reservation(rec);
    let service = service_of(rec);
    let family = text(task, "taskDefinitionArn").and_then(|a| a.rsplit('/').next()).and_then(|f| f.split(':').next());
    let dims = |extra: Option<(&str, &str)>| {
        let mut d = vec![("ClusterName".to_string(), cluster.to_string())];
        if let Some((k, v)) = extra {
            d.push((k.to_string(), v.to_string()));
        }
        d
    };
    let point = |ns: &str, name: &str, d: Vec<(String, String)>, v: f64, unit: &str| Datum {
        metric: MetricId::new(ns, name, d),
        timestamp: at,
        stats: Stats::value(v),
        unit: Some(unit.into()),
    };
    let mut out = Vec::new();
    let mut scopes = vec![None];
    scopes.extend(service.map(|s| Some(("ServiceName", s))));
    for scope in &scopes {
        out.push(point("AWS/ECS", "CPUUtilization", dims(*scope), 100.0 * used_cpu_units / reserved_cpu, "Percent"));
        if reserved_memory > 0.0 {
            out.push(point(
                "AWS/ECS",
                "MemoryUtilization",
                dims(*scope),
                100.0 * memory_mib / reserved_memory,
                "Percent",
            ));
        }
    }
    scopes.extend(family.map(|f| Some(("TaskDefinitionFamily", f))));
    for scope in &scopes {
        out.push(point("ECS/ContainerInsights", "CpuUtilized", dims(*scope), used_cpu_units, "None"));
        out.push(point("ECS/ContainerInsights", "CpuReserved", dims(*scope), reserved_cpu, "None"));
        out.push(point("ECS/ContainerInsights", "MemoryUtilized", dims(*scope), memory_mib, "Megabytes"));
        out.push(point("ECS/ContainerInsights", "MemoryReserved", dims(*scope), reserved_memory, "Megabytes"));
    }
    out
}

async fn record(app: &App, uri: &Uri, headers: &HeaderMap, raw: &Bytes) -> ApiResult<Value> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let caller = sigv4::verify(&app.config.keys, "ecs", "POST", path, headers, raw, SystemTime::now())?;
    let report: StatsReport = serde_json::from_slice(raw)
        .map_err(|e| ApiError::serialization(format!("A stats report is not valid: {e}.")))?;
    let ctx = Ctx::new(app, caller, SystemTime::now(), raw.len());
    let mut input = ecs::Obj::new();
    input.insert("cluster".into(), json!(report.cluster));
    let cluster = ecs::cluster_arg(&input)?;
    ecs::active_cluster(&ctx, &cluster)?;
    let at = (report.at * 1000.0).round() as i64;
    let mut points = Vec::new();
    // Running tasks per cluster: the instance's own, and those of the FARGATE tasks it hosts.
    let mut running: std::collections::BTreeMap<String, f64> = [(cluster.clone(), 0.0)].into();
    let host = Host { cluster: cluster.clone(), id: report.container_instance.clone() };
    let hosted: std::collections::HashMap<String, String> =
        fargate::hosted(&ctx, &host)?.into_iter().map(|(c, id)| (id, c)).collect();
    for t in &report.tasks {
        let cluster = hosted.get(&t.task_id).unwrap_or(&cluster).clone();
        // Tasks the control plane no longer knows (forgotten after they stopped) are skipped.
        let Some(kv) = ctx.store().get(&ctx.keys.task(&cluster, &t.task_id))? else { continue };
        let rec: TaskRecord = ecs::decode(&kv)?;
        let units = if t.seconds > 0.0 { 1024.0 * t.cpu_seconds / t.seconds } else { 0.0 };
        let labels = crate::telemetry::TaskLabels {
            cluster: cluster.clone(),
            service: service_of(&rec).unwrap_or_default().into(),
            task: t.task_id.clone(),
        };
        app.telemetry.task(labels, 100.0 * units / reservation(&rec).0, t.memory_bytes);
        let new = datapoints(&cluster, &rec, units, t.memory_bytes as f64 / MIB, at);
        points.extend(new);
        *running.entry(cluster).or_default() += 1.0;
    }
    for (cluster, count) in running {
        points.push(Datum {
            metric: MetricId::new("ECS/ContainerInsights", "RunningTaskCount", vec![("ClusterName".into(), cluster)]),
            timestamp: at,
            stats: Stats::value(count),
            unit: Some("Count".into()),
        });
    }
    app.metrics.put(&points)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(task: Value, cpu: i64, memory: i64) -> TaskRecord {
        let stored = json!({"task": task, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
                            "requirements": {"cpu": cpu, "memory": memory, "tcp_ports": [], "udp_ports": []}});
        serde_json::from_value(stored).unwrap()
    }

    fn find<'a>(points: &'a [Datum], ns: &str, name: &str, dims: usize) -> Vec<&'a Datum> {
        points
            .iter()
            .filter(|d| d.metric.namespace == ns && d.metric.name == name && d.metric.dimensions.len() == dims)
            .collect()
    }

    #[test]
    fn a_service_task_counts_for_its_cluster_service_and_family() {
        let rec = record(
            json!({"group": "service:web", "cpu": "512", "memory": "1024",
                                "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"}),
            512,
            1024,
        );
        let points = datapoints("default", &rec, 256.0, 256.0, 1000);
        let cpu = find(&points, "AWS/ECS", "CPUUtilization", 2);
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu[0].stats.sum, 50.0);
        assert!(cpu[0].metric.dimensions.contains(&("ServiceName".into(), "web".into())));
        assert_eq!(find(&points, "AWS/ECS", "MemoryUtilization", 1)[0].stats.sum, 25.0);
        let utilized = find(&points, "ECS/ContainerInsights", "CpuUtilized", 2);
        assert_eq!(utilized.len(), 2, "by service and by family");
    }

    #[test]
    fn a_task_without_cpu_counts_against_one_vcpu() {
        let rec = record(json!({"group": "family:batch"}), 0, 0);
        let points = datapoints("default", &rec, 512.0, 10.0, 1000);
        assert_eq!(find(&points, "AWS/ECS", "CPUUtilization", 1)[0].stats.sum, 50.0);
        assert!(find(&points, "AWS/ECS", "MemoryUtilization", 1).is_empty(), "nothing reserved: no share");
        assert!(find(&points, "AWS/ECS", "CPUUtilization", 2).is_empty(), "not a service task");
    }
}
