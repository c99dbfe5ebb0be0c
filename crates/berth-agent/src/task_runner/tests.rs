//! The runner on fakes, in paused tokio time: a recording runtime, an in-memory control plane,
//! cgroups in memory, a clock that follows tokio's.

use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

use berth_agent_protocol::assignments::AssignedTask;
use berth_agent_protocol::ecs::SubmitTaskStateChange;
use berth_agent_protocol::{ContainerStatus as Reported, DesiredStatus, ErrorCode};
use serde_json::{Value, json};

use super::*;
use crate::cgroup::RecordingCgroups;
use crate::clock::TokioClock;
use crate::control::fake::{FakeControlPlane, api_error};
use crate::runtime::fake::{Call, FakeRuntime, SIGTERM_EXIT, Script};

pub const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/i1";
pub const TASK: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/t1";
pub const DEFINITION: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1";

/// Fails the test instead of hanging when what it waits for never comes (paused time jumps
/// to this limit as soon as nothing else can happen).
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(24 * 3600), f).await.expect("waited a simulated day for it")
}

pub struct Harness {
    pub control: Arc<FakeControlPlane>,
    pub runtime: FakeRuntime,
    pub cgroups: Arc<RecordingCgroups>,
    pub networking: Arc<crate::vpc::fake::FakeNetworking>,
    pub proxies: Arc<crate::connect::fake::FakeProxies>,
    pub shared: Arc<Shared>,
    pub _dir: tempfile::TempDir,
}

pub fn harness(cleanup_wait: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(FakeControlPlane::new(INSTANCE));
    let runtime = FakeRuntime::new();
    let cgroups = Arc::new(RecordingCgroups::default());
    let networking = Arc::new(crate::vpc::fake::FakeNetworking::default());
    let proxies = Arc::new(crate::connect::fake::FakeProxies::default());
    let shared = Arc::new(Shared {
        control: control.clone(),
        runtime: Arc::new(runtime.clone()),
        cgroups: cgroups.clone(),
        clock: Arc::new(TokioClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))),
        networking: networking.clone(),
        proxies: proxies.clone(),
        metadata: Arc::new(crate::metadata::Registry::new([9; 32], Some("http://169.254.170.2".into()))),
        instance_arn: INSTANCE.into(),
        state_dir: dir.path().join("state"),
        secrets_dir: dir.path().join("secrets"),
        s3_dir: dir.path().join("s3"),
        allow_privileged: false,
        fargate_runtime: "runc".into(),
        dns_servers: vec!["169.254.169.253".into()],
        cleanup_wait,
        definitions: Default::default(),
    });
    Harness { control, runtime, cgroups, networking, proxies, shared, _dir: dir }
}

pub fn assigned(arn: &str, last: TaskStatus, desired: DesiredStatus) -> AssignedTask {
    AssignedTask {
        task_arn: arn.into(),
        task_definition_arn: DEFINITION.into(),
        desired_status: desired,
        last_status: last,
        overrides: None,
        network: None,
        service_connect: None,
        stop_timeout: None,
        launch_type: Some("EC2".into()),
        availability_zone: Some("us-east-1a".into()),
        containers: Vec::new(),
    }
}

/// A busybox container definition with `extra` members.
pub fn container(name: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": "busybox", "memory": 32});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

impl Harness {
    pub fn define(&self, containers: Vec<Value>) {
        self.control.define(DEFINITION, json!({"taskDefinitionArn": DEFINITION, "containerDefinitions": containers}));
    }

    fn spawn(&self, adopted: Vec<Observed>) -> Runner {
        spawn(self.shared.clone(), assigned(TASK, TaskStatus::Provisioning, DesiredStatus::Running), adopted)
    }

    pub async fn reported(&self, status: TaskStatus) -> SubmitTaskStateChange {
        within(self.control.report_of(TASK, |r| r.status == status)).await
    }

    fn started(&self, name: &str) -> usize {
        self.runtime.actions_on(name).iter().filter(|c| matches!(c, Call::Start { .. })).count()
    }
}

fn container_of<'a>(
    report: &'a SubmitTaskStateChange,
    name: &str,
) -> &'a berth_agent_protocol::ecs::ContainerStateChange {
    report.containers.iter().find(|c| c.container_name == name).expect("the report names every container")
}

#[tokio::test(start_paused = true)]
async fn nothing_starts_before_the_claim_is_acknowledged() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", json!({}))]);
    h.control.hold();
    let _runner = h.spawn(Vec::new());
    let claim = within(h.control.until(|r| r.reports.first().cloned())).await;
    assert_eq!(claim, SubmitTaskStateChange::claim("default", TASK));
    within(h.runtime.until(|calls| calls.iter().find(|c| matches!(c, Call::Create { .. })).cloned())).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.started("web"), 0, "a container started before the claim was acknowledged");
    h.control.release();
    let running = h.reported(TaskStatus::Running).await;
    assert_eq!(container_of(&running, "web").status, Reported::Running);
    assert_eq!(h.started("web"), 1);
    let recorded = h.control.recorded();
    assert_eq!(recorded.acknowledged[0], claim, "the claim is the first report heard");
}

#[tokio::test(start_paused = true)]
async fn a_task_stopped_before_its_claim_never_runs() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", json!({})), container("side", json!({"essential": false}))]);
    h.control.refuse_reports_of(TASK, api_error(ErrorCode::InvalidParameter, "task is already STOPPED"));
    let runner = h.spawn(Vec::new());
    within(runner.handle).await.unwrap();
    assert_eq!(h.started("web") + h.started("side"), 0);
    for name in ["web", "side"] {
        if h.runtime.actions_on(name).iter().any(|c| matches!(c, Call::Create { .. })) {
            assert!(h.runtime.removed(name), "{name} was created and left behind");
        }
    }
    assert_eq!(h.cgroups.removed.lock().unwrap().as_slice(), ["t1"]);
    assert!(h.control.recorded().acknowledged.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_claim_not_delivered_is_sent_again() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", json!({}))]);
    h.control.fail_next_reports([unreachable(), unreachable()]);
    let _runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Running).await;
    let recorded = h.control.recorded();
    assert_eq!(recorded.reports.iter().filter(|r| **r == SubmitTaskStateChange::claim("default", TASK)).count(), 3);
}

/// A transport failure, as the real client reports an unreachable control plane.
pub fn unreachable() -> berth_client::ClientError {
    berth_client::ClientError::Transport("connection refused".into())
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_can_never_be_met_stops_the_task() {
    let h = harness(Duration::ZERO);
    h.runtime.script("init", Script::exits(Duration::from_secs(1), 1));
    h.define(vec![
        container("init", json!({"essential": false})),
        container("app", json!({"dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]})),
    ]);
    let _runner = h.spawn(Vec::new());
    let stopped = h.reported(TaskStatus::Stopped).await;
    let reason = stopped.reason.clone().unwrap();
    assert!(
        reason.starts_with("DependencyConditionNotMet: container app depends on init reaching SUCCESS"),
        "{reason}"
    );
    assert_eq!(container_of(&stopped, "app").reason.as_deref(), Some(reason.as_str()));
    assert_eq!(container_of(&stopped, "init").exit_code, Some(1));
    assert_eq!(h.started("app"), 0, "app started although init failed");
}

fn checked(extra: Value) -> Value {
    let mut c = json!({"healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5}});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

#[tokio::test(start_paused = true)]
async fn a_dependency_past_its_start_timeout_stops_the_task() {
    let h = harness(Duration::ZERO);
    h.define(vec![
        container("db", checked(json!({"startTimeout": 20}))),
        container("app", json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})),
    ]);
    let _runner = h.spawn(Vec::new());
    within(h.runtime.until(|calls| calls.iter().find(|c| matches!(c, Call::Start { .. })).cloned())).await;
    let started = Instant::now();
    let stopped = h.reported(TaskStatus::Stopped).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(20) && waited < Duration::from_secs(22), "gave up after {waited:?}");
    let reason = stopped.reason.unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError: container app gave up waiting for db to reach HEALTHY"),
        "{reason}"
    );
    assert_eq!(h.started("app"), 0);
    assert!(h.runtime.actions_on("db").iter().any(|c| matches!(c, Call::Stop { .. })), "db was left running");
}

#[tokio::test(start_paused = true)]
async fn a_dependency_met_within_its_start_timeout_lets_the_dependent_start() {
    let h = harness(Duration::ZERO);
    h.define(vec![
        container("db", checked(json!({"startTimeout": 20}))),
        container("app", json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})),
        // START has no timeout: it waits as long as its dependency takes to start.
        container("late", json!({"essential": false, "dependsOn": [{"containerName": "app", "condition": "START"}]})),
    ]);
    let _runner = h.spawn(Vec::new());
    within(h.runtime.until(|calls| calls.iter().find(|c| matches!(c, Call::Start { .. })).cloned())).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(h.started("app"), 0, "app started before db was healthy");
    h.runtime.set_health("db", Health::Healthy);
    let running = h.reported(TaskStatus::Running).await;
    assert_eq!(container_of(&running, "db").health_status, Some(Health::Healthy));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!((h.started("app"), h.started("late")), (1, 1));
    assert!(h.control.recorded().of(TASK).iter().all(|r| r.status != TaskStatus::Stopped));
}

#[tokio::test(start_paused = true)]
async fn containers_found_after_a_restart_are_adopted_or_reported() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", json!({})), container("side", json!({"essential": false}))]);
    h.runtime.existing(TASK, INSTANCE, "web", None);
    h.runtime.existing(TASK, INSTANCE, "side", Some(3));
    let adopted = h.runtime.list_managed().await.unwrap();
    let _runner = h.spawn(adopted);
    let running = h.reported(TaskStatus::Running).await;
    assert_eq!(container_of(&running, "web").status, Reported::Running);
    let side = container_of(&running, "side");
    assert_eq!((side.status, side.exit_code), (Reported::Stopped, Some(3)));
    for name in ["web", "side"] {
        assert!(h.runtime.actions_on(name).is_empty(), "{name} was acted on: {:?}", h.runtime.actions_on(name));
    }
    assert!(
        h.control.recorded().reports.iter().all(|r| r.containers.len() == 2),
        "an adopted task is not claimed again"
    );
    // The adopted container is watched like one this process started.
    h.runtime.exit("web", 0);
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert_eq!(container_of(&stopped, "web").exit_code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn an_essential_container_that_exited_while_the_agent_was_away_stops_the_task() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", json!({}))]);
    h.runtime.existing(TASK, INSTANCE, "web", Some(2));
    let adopted = h.runtime.list_managed().await.unwrap();
    let _runner = h.spawn(adopted);
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some(ESSENTIAL_EXITED));
    assert_eq!(container_of(&stopped, "web").exit_code, Some(2));
    assert_eq!(h.started("web"), 0);
}

#[tokio::test(start_paused = true)]
async fn containers_wait_for_their_awslogs_output_before_removal() {
    let h = harness(Duration::ZERO);
    h.control.create_group("/ecs/web");
    h.control.hold_logs(true);
    let output = vec![(false, "one\ntwo\n".to_string())];
    h.runtime.script("web", Script { output, ..Script::exits(Duration::from_secs(1), 0) });
    let options = json!({"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"});
    h.define(vec![container("web", json!({"logConfiguration": {"logDriver": "awslogs", "options": options}}))]);
    let runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Stopped).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!h.runtime.removed("web"), "removed while its output was still being sent");
    h.control.hold_logs(false);
    within(runner.handle).await.unwrap();
    assert!(h.runtime.removed("web"));
    assert_eq!(h.control.logged("/ecs/web", "web/web/t1").unwrap(), ["one", "two"]);
}

#[tokio::test(start_paused = true)]
async fn containers_are_removed_only_after_the_cleanup_wait() {
    let h = harness(Duration::from_secs(600));
    h.runtime.script("web", Script::exits(Duration::from_secs(1), 0));
    h.define(vec![container("web", json!({}))]);
    let runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Stopped).await;
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(599)).await;
    assert!(!h.runtime.removed("web"), "removed before --task-cleanup-wait passed");
    assert!(h.cgroups.removed.lock().unwrap().is_empty());
    within(runner.handle).await.unwrap();
    assert!(h.runtime.removed("web"));
    assert_eq!(stopped_at.elapsed(), Duration::from_secs(600));
    assert_eq!(h.cgroups.removed.lock().unwrap().as_slice(), ["t1"]);
}

#[tokio::test(start_paused = true)]
async fn a_stop_the_runtime_failed_is_tried_again_and_nothing_follows_it() {
    let h = harness(Duration::from_secs(30));
    h.runtime.script("web", Script { stop_failures: 2, ..Default::default() });
    h.define(vec![container("web", json!({"stopTimeout": 7}))]);
    let runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Running).await;
    runner.desired.send(Desired::Stopped).unwrap();
    let asked = Instant::now();
    let stopped = h.reported(TaskStatus::Stopped).await;
    let stopped_after = asked.elapsed();
    assert_eq!(container_of(&stopped, "web").exit_code, Some(SIGTERM_EXIT));
    within(runner.handle).await.unwrap();
    let actions = h.runtime.actions_on("web");
    let stops: Vec<usize> = (0..actions.len()).filter(|&i| matches!(actions[i], Call::Stop { .. })).collect();
    assert_eq!(stops.len(), 3, "the failed stops were not retried: {actions:?}");
    assert_eq!(actions[stops[0]], Call::Stop { name: "web".into(), timeout: Duration::from_secs(7) });
    assert_eq!(&actions[stops[2] + 1..], [Call::Remove { name: "web".into() }], "acted on web after stopping it");
    assert!(stopped_after >= 2 * STOP_RETRY, "stops were retried without a pause: {stopped_after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_pull_stops_the_task_before_anything_runs() {
    let h = harness(Duration::ZERO);
    h.runtime.script("web", Script { pull_error: Some("manifest unknown".into()), ..Default::default() });
    h.define(vec![container("web", json!({}))]);
    let _runner = h.spawn(Vec::new());
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("CannotPullContainerError: manifest unknown"));
    assert!(stopped.pull_started_at.is_some() && stopped.pull_stopped_at >= stopped.pull_started_at);
    assert_eq!(h.runtime.actions_on("web"), [Call::Pull { name: "web".into(), image: "busybox".into() }]);
}

fn restarting(period: u64, ignored: Value) -> Value {
    json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": period, "ignoredExitCodes": ignored}})
}

#[tokio::test(start_paused = true)]
async fn a_container_with_a_restart_policy_restarts_in_place_until_it_fails_too_fast() {
    let h = harness(Duration::ZERO);
    let runs = [(Duration::from_secs(90), 1), (Duration::from_secs(61), 2), (Duration::from_secs(30), 3)];
    h.runtime.script("web", Script { runs: runs.into(), ..Default::default() });
    h.define(vec![container("web", restarting(60, json!([0])))]);
    let _runner = h.spawn(Vec::new());
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert_eq!(h.started("web"), 3, "{:?}", h.runtime.actions_on("web"));
    let creates = h.runtime.actions_on("web").iter().filter(|c| matches!(c, Call::Create { .. })).count();
    assert_eq!(creates, 1, "restarts happen in place");
    assert_eq!(container_of(&stopped, "web").exit_code, Some(3), "the third run ran 30 s, under the 60 s period");
    assert_eq!(stopped.reason.as_deref(), Some(ESSENTIAL_EXITED));
    let reports = h.control.recorded();
    let statuses: Vec<TaskStatus> = reports.of(TASK).iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == TaskStatus::Stopped).count(), 1);
    assert!(statuses.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
}

#[tokio::test(start_paused = true)]
async fn an_ignored_exit_code_is_not_restarted() {
    let h = harness(Duration::ZERO);
    h.runtime.script("web", Script::exits(Duration::from_secs(600), 0));
    h.define(vec![container("web", restarting(60, json!([0])))]);
    let _runner = h.spawn(Vec::new());
    let stopped = h.reported(TaskStatus::Stopped).await;
    assert_eq!((h.started("web"), container_of(&stopped, "web").exit_code), (1, Some(0)));
}

#[tokio::test(start_paused = true)]
async fn a_restart_policy_does_not_fight_a_stop() {
    let h = harness(Duration::ZERO);
    h.define(vec![container("web", restarting(60, json!([])))]);
    let runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Running).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    runner.desired.send(Desired::Stopped).unwrap();
    h.reported(TaskStatus::Stopped).await;
    assert_eq!(h.started("web"), 1);
}

#[tokio::test(start_paused = true)]
async fn reports_carry_timestamps_from_the_clock() {
    let h = harness(Duration::ZERO);
    h.runtime.script("web", Script::exits(Duration::from_secs(5), 4));
    h.define(vec![container("web", json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]}))]);
    let _runner = h.spawn(Vec::new());
    let running = h.reported(TaskStatus::Running).await;
    let bindings = &container_of(&running, "web").network_bindings;
    assert_eq!((bindings[0].container_port, bindings[0].host_port), (Some(80), Some(8080)));
    let stopped = h.reported(TaskStatus::Stopped).await;
    let (pulled, stopped_at) = (stopped.pull_started_at.unwrap(), stopped.execution_stopped_at.unwrap());
    assert!(
        pulled >= 1_700_000_000.0 && stopped_at - pulled >= 5.0 && stopped_at - pulled < 6.0,
        "{pulled} {stopped_at}"
    );
}

#[tokio::test(start_paused = true)]
async fn containers_resolve_through_berths_dns_unless_they_name_their_own() {
    let h = harness(Duration::ZERO);
    h.define(vec![
        container("web", json!({})),
        container("own", json!({"dnsServers": ["10.9.9.9"]})),
        container("quiet", json!({"disableNetworking": true})),
    ]);
    let _runner = h.spawn(Vec::new());
    h.reported(TaskStatus::Running).await;
    assert_eq!(h.runtime.spec("web").unwrap().dns, ["169.254.169.253"]);
    assert_eq!(h.runtime.spec("own").unwrap().dns, ["10.9.9.9"]);
    assert!(h.runtime.spec("quiet").unwrap().dns.is_empty(), "no network, no nameserver");
}
