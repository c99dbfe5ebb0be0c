//! The agent's assignment sync on fakes, in paused tokio time.

use std::path::Path;

use berth_agent_protocol::DesiredStatus;
use berth_agent_protocol::assignments::Assignments;
use berth_model::task::TaskStatus;
use serde_json::json;

use super::*;
use crate::cgroup::RecordingCgroups;
use crate::clock::TokioClock;
use crate::control::fake::{FakeControlPlane, api_error};
use crate::runtime::fake::{Call, FakeRuntime, Script};
use crate::task_runner::tests::{DEFINITION, INSTANCE, TASK, assigned, container, within};

const OTHER: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/t2";

fn config(dir: &Path, cleanup_wait: Duration) -> AgentConfig {
    AgentConfig {
        cluster: "default".into(),
        state_dir: dir.join("state"),
        secrets_dir: dir.join("secrets"),
        s3_dir: dir.join("s3"),
        reserved_memory_mib: 0,
        instance_type: "berth.test".into(),
        availability_zone: "zone-a".into(),
        attributes: vec![("team".into(), "web".into())],
        allow_privileged: false,
        fargate_runtime: "runc".into(),
        public: None,
        dns_servers: vec!["169.254.169.253".into()],
        cleanup_wait,
        metric_period: Duration::from_secs(60),
        metadata_port: crate::metadata::Port::Off,
        fargate: false,
    }
}

struct World {
    control: Arc<FakeControlPlane>,
    runtime: FakeRuntime,
    networking: Arc<crate::vpc::fake::FakeNetworking>,
}

type Running = tokio::task::JoinHandle<Result<(), AgentError>>;

impl World {
    fn new(instance_arn: &str) -> Self {
        let control = Arc::new(FakeControlPlane::new(instance_arn));
        control.define(
            DEFINITION,
            json!({"taskDefinitionArn": DEFINITION, "containerDefinitions": [container("web", json!({}))]}),
        );
        World { control, runtime: FakeRuntime::new(), networking: Default::default() }
    }

    /// Registers an agent keeping its state in `dir` and runs it.
    async fn run(&self, dir: &Path, cleanup_wait: Duration) -> Running {
        tokio::spawn(self.agent(dir, cleanup_wait).await.run())
    }

    /// Deregisters the instance and returns how the agent ended.
    async fn end(&self, run: Running) -> Result<(), AgentError> {
        self.deregister();
        within(run).await.unwrap()
    }

    async fn agent(&self, dir: &Path, cleanup_wait: Duration) -> Agent {
        let effects = Effects {
            control: self.control.clone(),
            runtime: Arc::new(self.runtime.clone()),
            cgroups: Arc::new(RecordingCgroups::default()),
            clock: Arc::new(TokioClock::new(std::time::UNIX_EPOCH)),
            networking: self.networking.clone(),
            proxies: Arc::new(crate::connect::fake::FakeProxies::default()),
            metadata: None,
        };
        Agent::register_with(config(dir, cleanup_wait), effects).await.unwrap()
    }

    fn assign(&self, revision: u64, tasks: Vec<AssignedTask>) {
        self.control.answer(Ok(Assignments { revision, tasks, live: None }));
    }

    fn deregister(&self) {
        self.control.answer(Err(api_error(ErrorCode::InactiveInstance, "The container instance is deregistered.")));
    }

    async fn reported(&self, task: &str, status: TaskStatus) {
        within(self.control.report_of(task, |r| r.status == status)).await;
    }

    fn starts(&self, name: &str) -> usize {
        self.runtime.actions_on(name).iter().filter(|c| matches!(c, Call::Start { .. })).count()
    }
}

fn running(arn: &str) -> AssignedTask {
    assigned(arn, TaskStatus::Provisioning, DesiredStatus::Running)
}

#[tokio::test(start_paused = true)]
async fn registration_describes_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    let agent = world.agent(dir.path(), Duration::ZERO).await;
    assert_eq!(agent.instance_arn(), INSTANCE);
    let registration = &world.control.recorded().registrations[0];
    assert_eq!((registration.cluster.as_str(), registration.container_instance_arn.as_ref()), ("default", None));
    assert_eq!(registration.version_info.docker_version, "fake");
    assert!(registration.total_resources.cpu >= 1024);
    assert!(registration.attributes.contains(&berth_agent_protocol::ecs::Attribute::new("team", Some("web"))));
}

#[tokio::test(start_paused = true)]
async fn new_tasks_get_runners_and_tasks_gone_from_the_assignments_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    let run = world.run(dir.path(), Duration::ZERO).await;
    world.assign(1, vec![running(TASK)]);
    world.reported(TASK, TaskStatus::Running).await;
    world.assign(2, vec![running(OTHER)]);
    world.reported(TASK, TaskStatus::Stopped).await;
    world.reported(OTHER, TaskStatus::Running).await;
    let ended = world.end(run).await;
    assert!(matches!(ended, Err(AgentError::Deregistered(ref arn)) if arn == INSTANCE), "{ended:?}");
    let since: Vec<u64> = world.control.recorded().polls.iter().map(|q| q.since).collect();
    assert_eq!(since, [0, 1, 2], "each poll continues from the revision of the last answer");
    assert_eq!(world.starts("web"), 2);
}

#[tokio::test(start_paused = true)]
async fn desired_stopped_reaches_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    let run = world.run(dir.path(), Duration::ZERO).await;
    world.assign(1, vec![running(TASK)]);
    world.reported(TASK, TaskStatus::Running).await;
    world.assign(2, vec![assigned(TASK, TaskStatus::Running, DesiredStatus::Stopped)]);
    world.reported(TASK, TaskStatus::Stopped).await;
    assert!(world.runtime.actions_on("web").iter().any(|c| matches!(c, Call::Stop { .. })));
    world.end(run).await.unwrap_err();
}

/// A spot interruption: the control plane asks for a stop with its warning, which replaces
/// the container's own stopTimeout between SIGTERM and SIGKILL.
#[tokio::test(start_paused = true)]
async fn a_stop_with_a_warning_gives_the_containers_that_long() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    let run = world.run(dir.path(), Duration::ZERO).await;
    world.assign(1, vec![running(TASK)]);
    world.reported(TASK, TaskStatus::Running).await;
    let mut interrupted = assigned(TASK, TaskStatus::Running, DesiredStatus::Stopped);
    interrupted.stop_timeout = Some(120);
    world.assign(2, vec![interrupted]);
    world.reported(TASK, TaskStatus::Stopped).await;
    let stop = Call::Stop { name: "web".into(), timeout: Duration::from_secs(120) };
    assert!(world.runtime.actions_on("web").contains(&stop), "{:?}", world.runtime.actions_on("web"));
    world.end(run).await.unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn failed_polls_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    let run = world.run(dir.path(), Duration::ZERO).await;
    world.control.answer(Err(crate::task_runner::tests::unreachable()));
    world.control.answer(Err(api_error(ErrorCode::Server, "try again")));
    world.assign(4, vec![running(TASK)]);
    world.reported(TASK, TaskStatus::Running).await;
    world.end(run).await.unwrap_err();
    assert_eq!(world.control.recorded().polls.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_finished_task_is_never_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(INSTANCE);
    world.runtime.script("web", Script::exits(Duration::from_secs(1), 0));
    let run = world.run(dir.path(), Duration::ZERO).await;
    world.assign(1, vec![running(TASK)]);
    world.reported(TASK, TaskStatus::Stopped).await;
    within(world.runtime.until(|calls| calls.iter().find(|c| matches!(c, Call::Remove { .. })).cloned())).await;
    // Snapshots written before the control plane heard the stop still list the task.
    world.assign(2, vec![assigned(TASK, TaskStatus::Running, DesiredStatus::Running)]);
    world.assign(3, vec![assigned(TASK, TaskStatus::Running, DesiredStatus::Running)]);
    world.end(run).await.unwrap_err();
    assert_eq!(world.starts("web"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_re_registers_and_settles_the_containers_it_finds() {
    let dir = tempfile::tempdir().unwrap();
    World::new(INSTANCE).agent(dir.path(), Duration::ZERO).await;
    // The next process: the control plane would hand a new machine another ARN.
    let world = World::new("arn:aws:ecs:us-east-1:000000000000:container-instance/default/new");
    world.runtime.existing(TASK, INSTANCE, "web", None);
    world.runtime.existing(OTHER, INSTANCE, "old", None);
    world.runtime.existing(OTHER, "arn:aws:ecs:us-east-1:000000000000:container-instance/default/i9", "theirs", None);
    // Network interfaces the earlier process attached (awsvpc): t2 is no longer assigned.
    for task in ["t1", "t2"] {
        let net: berth_agent_protocol::network::TaskNetwork = serde_json::from_value(json!({
            "eni": {"id": "eni-1", "subnetId": "subnet-1", "vpcId": "vpc-1", "subnetCidr": "172.31.0.0/20",
                    "gateway": "172.31.0.1", "privateIp": "172.31.0.5", "mac": "0a:00:00:00:00:05",
                    "privateDnsName": "ip-172-31-0-5.ec2.internal"},
            "rules": {"ingress": [], "egress": []}}))
        .unwrap();
        world.networking.attached.lock().unwrap().insert(task.into(), ("/proc/1/ns/net".into(), net));
    }
    let agent = world.agent(dir.path(), Duration::ZERO).await;
    assert_eq!(agent.instance_arn(), INSTANCE);
    assert_eq!(world.control.recorded().registrations[0].container_instance_arn.as_deref(), Some(INSTANCE));
    let run = tokio::spawn(agent.run());
    world.assign(1, vec![assigned(TASK, TaskStatus::Running, DesiredStatus::Running)]);
    within(
        world
            .runtime
            .until(|calls| calls.iter().find(|c| matches!(c, Call::Remove { name } if name == "old")).cloned()),
    )
    .await;
    world.reported(TASK, TaskStatus::Running).await;
    world.end(run).await.unwrap_err();
    assert!(world.runtime.actions_on("web").is_empty(), "the running container is adopted as it is");
    assert!(matches!(world.runtime.actions_on("old")[0], Call::Stop { .. }));
    assert!(world.runtime.actions_on("theirs").is_empty(), "another agent's container was touched");
    assert_eq!(world.networking.calls(), ["detach t2"], "only the interface of the task gone is detached");
    assert!(
        world.control.recorded().reports.iter().all(|r| !r.containers.is_empty()),
        "an adopted task is not claimed"
    );
}
