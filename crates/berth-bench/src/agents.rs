//! `berth-bench agents`: many simulated agents for scale tests. Each registers a container
//! instance, long-polls its assignments as `berth agent` does, and answers every task at once
//! without running anything: a task to run is reported RUNNING (its containers too), a task
//! to stop is reported STOPPED. It prints one JSON line per second: instances registered,
//! tasks reported running and stopped so far, and failed calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_client::protocol::assignments::AssignmentsQuery;
use berth_client::protocol::ecs::{
    Attribute, ContainerStateChange, RegisterContainerInstance, SubmitTaskStateChange, VersionInfo,
};
use berth_client::protocol::status::ContainerStatus;
use berth_client::{ApiClient, TaskStateReports};
use berth_model::resources::Resources;
use berth_model::task::TaskStatus;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    server: crate::Server,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// How many container instances to simulate.
    #[arg(long)]
    instances: usize,
    /// CPU units and MiB of memory each instance offers.
    #[arg(long, default_value_t = 4096)]
    cpu: i64,
    #[arg(long, default_value_t = 16384)]
    memory: i64,
    /// Availability zones the instances are spread over (`ZONE-a`, `ZONE-b`, ...).
    #[arg(long, default_value_t = 3)]
    zones: usize,
    /// Seconds to run (0: until killed).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
}

#[derive(Default)]
struct Counts {
    registered: AtomicU64,
    running: AtomicU64,
    stopped: AtomicU64,
    failures: AtomicU64,
}

pub fn main(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = Args::parse_from(args);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = Arc::new(
        ApiClient::new(&args.server.endpoint, &args.server.access_key, &args.server.secret_key, &args.server.region)
            .context("--endpoint must be http://HOST:PORT")?,
    );
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    for n in 0..args.instances {
        let zone = format!("{}{}", args.server.region, (b'a' + (n % args.zones.max(1)) as u8) as char);
        let register = RegisterContainerInstance {
            cluster: args.cluster.clone(),
            container_instance_arn: None,
            total_resources: Resources { cpu: args.cpu, memory: args.memory, ..Resources::default() },
            version_info: VersionInfo {
                agent_version: "bench".into(),
                agent_hash: "bench".into(),
                docker_version: "simulated".into(),
            },
            attributes: vec![Attribute::new("ecs.availability-zone", Some(&zone))],
        };
        let (client, counts, cluster) = (client.clone(), counts.clone(), args.cluster.clone());
        tokio::spawn(async move { agent(client, counts, cluster, register).await });
    }
    let end = (args.duration > 0.0).then(|| started + Duration::from_secs_f64(args.duration));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let line = serde_json::json!({
            "seconds": started.elapsed().as_secs_f64(),
            "registered": counts.registered.load(Ordering::Relaxed),
            "running": counts.running.load(Ordering::Relaxed),
            "stopped": counts.stopped.load(Ordering::Relaxed),
            "failures": counts.failures.load(Ordering::Relaxed),
        });
        println!("{line}");
        if end.is_some_and(|e| Instant::now() >= e) {
            return Ok(());
        }
    }
}

/// One simulated agent: registers (retrying), then polls and reports forever.
async fn agent(client: Arc<ApiClient>, counts: Arc<Counts>, cluster: String, register: RegisterContainerInstance) {
    let arn = loop {
        match client.call(&register).await {
            Ok(r) => break r.container_instance.container_instance_arn,
            Err(_) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    counts.registered.fetch_add(1, Ordering::Relaxed);
    let mut query = AssignmentsQuery {
        cluster: cluster.clone(),
        container_instance: arn,
        since: 0,
        wait: Duration::from_secs(20),
        changes: false,
    };
    // As `berth agent` does, reports go through one batching sender: those of one answer
    // travel together.
    let reports = TaskStateReports::start(client.clone());
    // Tasks already reported in the status they are in, so each is reported once per change.
    let mut reported: std::collections::HashMap<String, TaskStatus> = Default::default();
    loop {
        let answer = match client.assignments(&query).await {
            Ok(a) => a,
            Err(_) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        query.since = answer.revision;
        // As `berth agent` does: after the first whole answer, changes only.
        query.changes = true;
        let mut sent = Vec::new();
        for task in answer.tasks {
            let want = if task.stop_wanted() { TaskStatus::Stopped } else { TaskStatus::Running };
            if task.last_status == want || reported.get(&task.task_arn) == Some(&want) {
                continue;
            }
            let status = if want == TaskStatus::Stopped { ContainerStatus::Stopped } else { ContainerStatus::Running };
            let containers = task
                .containers
                .iter()
                .map(|c| ContainerStateChange {
                    container_name: c.name.clone(),
                    status,
                    runtime_id: None,
                    exit_code: (want == TaskStatus::Stopped).then_some(0),
                    reason: None,
                    network_bindings: Vec::new(),
                    health_status: None,
                })
                .collect();
            let report = SubmitTaskStateChange {
                status: want,
                containers,
                ..SubmitTaskStateChange::claim(&cluster, &task.task_arn)
            };
            sent.push(((task.task_arn, want), reports.submit(report)));
        }
        let (tasks, outcomes): (Vec<_>, Vec<_>) = sent.into_iter().unzip();
        for ((arn, want), outcome) in tasks.into_iter().zip(futures::future::join_all(outcomes).await) {
            match outcome {
                Ok(()) => {
                    reported.insert(arn, want);
                    let counter = if want == TaskStatus::Stopped { &counts.stopped } else { &counts.running };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    counts.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
