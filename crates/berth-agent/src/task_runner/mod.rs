//! One task on this machine, from assignment to cleanup. The runner is the only writer of
//! its task's state: it moves each container on with [`lifecycle::next_action`], watches
//! for exits and for the desired status the control plane sends, and reports every change.
//!
//! - [`prepare`]: the task definition, read once per ARN, turned into containers;
//! - [`report`]: what the control plane is told, and the claim;
//! - [`network`]: an awsvpc task's interface, attached before its first container is created
//!   and detached before it is reported STOPPED;
//! - [`metadata`]: the task as the task metadata endpoint shows it, published at every step;
//! - here: the loop, and each action carried out through the runtime.
//!
//! Side effects go through [`Shared`]'s traits (runtime, control plane, cgroups, clock);
//! waiting uses tokio's clock, so tests drive the runner on fakes with paused time.

mod metadata;
mod network;
mod prepare;
mod report;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_protocol::assignments::AssignedTask;
use berth_agent_protocol::network::TaskNetwork;
use berth_model::task::TaskStatus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::awslogs;
use crate::cgroup::TaskCgroups;
use crate::clock::Clock;
use crate::control::{ControlPlane, TaskDefinition};
use crate::lifecycle::{
    self, Action, Condition, ContainerStatus, Dependency, Desired, Health, dependency, dependency_deadline, next_action,
};
use crate::restart::{RestartPolicy, Verdict};
use crate::runtime::{Binding, ContainerSpec, LABEL_CONTAINER, Observed, Runtime};
use crate::spec;
use crate::vpc::TaskNetworking;

/// ECS's reason for a container the kernel killed for memory.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
/// ECS's stop reason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";
/// Pause between retries of a report the control plane did not receive.
const REPORT_RETRY: Duration = Duration::from_secs(1);
/// How often running containers with a health check are asked for their health.
const HEALTH_POLL: Duration = Duration::from_millis(500);
/// Longest a stopped task's removal waits for its containers' output to reach CloudWatch Logs.
const SHIP_WAIT: Duration = Duration::from_secs(60);
/// Pause before a stop the runtime failed is tried again.
const STOP_RETRY: Duration = Duration::from_secs(5);

/// What every runner shares.
pub struct Shared {
    pub control: Arc<dyn ControlPlane>,
    pub runtime: Arc<dyn Runtime>,
    pub cgroups: Arc<dyn TaskCgroups>,
    pub clock: Arc<dyn Clock>,
    /// awsvpc tasks' interfaces and security groups.
    pub networking: Arc<dyn TaskNetworking>,
    /// Service Connect tasks' proxies.
    pub proxies: Arc<dyn crate::connect::Proxies>,
    /// What the task metadata endpoint serves.
    pub metadata: Arc<crate::metadata::Registry>,
    pub instance_arn: String,
    pub state_dir: PathBuf,
    /// Where secrets named by tasks are read (see `objects`).
    pub secrets_dir: PathBuf,
    /// Where S3 objects named by tasks (`environmentFiles`) are read (see `objects`).
    pub s3_dir: PathBuf,
    pub allow_privileged: bool,
    /// The OCI runtime of FARGATE tasks' containers.
    pub fargate_runtime: String,
    /// Nameservers for containers whose definition sets no `dnsServers` (Berth's DNS server).
    pub dns_servers: Vec<String>,
    /// How long a stopped task's containers are kept (for their logs) before removal.
    pub cleanup_wait: Duration,
    /// Task definitions by ARN: they never change, so each is read from the API once.
    pub definitions: Mutex<HashMap<String, TaskDefinition>>,
}

pub struct Runner {
    pub desired: watch::Sender<Desired>,
    /// How long the containers get when stopped, when the control plane says (spot
    /// interruptions); `None`: each container's `stopTimeout`.
    pub stop_timeout: watch::Sender<Option<u64>>,
    /// The network the control plane assigns (awsvpc): its rules change while it runs.
    pub network: watch::Sender<Option<TaskNetwork>>,
    pub handle: JoinHandle<()>,
}

/// Starts the runner of `task`, handing it the containers an earlier agent process left for it.
pub fn spawn(shared: Arc<Shared>, task: AssignedTask, adopted: Vec<Observed>) -> Runner {
    let initial = if task.stop_wanted() { Desired::Stopped } else { Desired::Running };
    let (desired, rx) = watch::channel(initial);
    let (network, network_rx) = watch::channel(task.network.clone());
    let (stop_timeout, stop_timeout_rx) = watch::channel(task.stop_timeout);
    let handle = tokio::spawn(async move {
        let (mut run, exits) = TaskRun::new(shared, task);
        run.stop_timeout = stop_timeout_rx;
        run.run(adopted, rx, exits, network_rx).await
    });
    Runner { desired, stop_timeout, network, handle }
}

struct Container {
    name: String,
    essential: bool,
    spec: Option<ContainerSpec>,
    known: ContainerStatus,
    id: Option<String>,
    exit_code: Option<i64>,
    reason: Option<String>,
    bindings: Vec<Binding>,
    depends_on: Vec<(String, Condition)>,
    /// Whether the definition has a health check, and what it last said.
    checked: bool,
    health: Health,
    /// `startTimeout`: how long containers depending on this one wait for it.
    start_timeout: Option<Duration>,
    restart: Option<RestartPolicy>,
    /// When it first started (dependency timeouts count from there).
    started_at: Option<Instant>,
    /// When it last started or was restarted (the restart policy counts from there).
    running_since: Option<Instant>,
    restarts: u32,
    /// The `awslogs` driver's options, when the definition asks for it, and the shipper of
    /// the container's output (see `awslogs`).
    awslogs: Option<berth_model::awslogs::AwsLogs>,
    shipper: Option<JoinHandle<()>>,
    /// What the task metadata endpoint shows of it beyond its state.
    shown: metadata::ContainerShown,
}

struct TaskRun {
    shared: Arc<Shared>,
    task: AssignedTask,
    containers: Vec<Container>,
    desired: Desired,
    /// Why the task is stopping, when the agent decided it (failure, essential exit).
    stop_reason: Option<String>,
    pull_started: Option<f64>,
    pull_stopped: Option<f64>,
    last_report: Option<berth_agent_protocol::ecs::SubmitTaskStateChange>,
    /// Whether the control plane knows this agent runs the task (nothing starts before).
    claimed: bool,
    /// When to try again stops the runtime failed.
    stop_retry: Option<Instant>,
    /// Where the watcher of each running container sends its name once it exited.
    exits: mpsc::Sender<String>,
    /// An awsvpc task's network: its holder, and whether its interface is attached.
    net: network::State,
    /// What the task metadata endpoint shows of the task beyond its state.
    shown: metadata::TaskShown,
    /// What the control plane says the containers get when stopped (see [`Runner`]).
    stop_timeout: watch::Receiver<Option<u64>>,
}

impl TaskRun {
    fn new(shared: Arc<Shared>, task: AssignedTask) -> (Self, mpsc::Receiver<String>) {
        let (exits, exited) = mpsc::channel(32);
        let run = TaskRun {
            shared,
            task,
            containers: Vec::new(),
            desired: Desired::Running,
            stop_reason: None,
            pull_started: None,
            pull_stopped: None,
            last_report: None,
            claimed: false,
            stop_retry: None,
            exits,
            net: network::State::default(),
            shown: metadata::TaskShown::default(),
            stop_timeout: watch::channel(None).1,
        };
        (run, exited)
    }

    fn id(&self) -> &str {
        self.task.id()
    }

    fn arn(&self) -> &str {
        &self.task.task_arn
    }

    fn cluster(&self) -> &str {
        self.task.cluster()
    }

    fn scratch_dir(&self) -> PathBuf {
        self.shared.state_dir.join("volumes").join(self.id())
    }

    /// Takes over containers a previous agent process created for this task.
    fn adopt(&mut self, adopted: Vec<Observed>) {
        let now = Instant::now();
        let mut ship = Vec::new();
        for observed in adopted {
            let Some(name) = observed.labels.get(LABEL_CONTAINER) else {
                continue;
            };
            let Some(c) = self.containers.iter_mut().find(|c| &c.name == name) else {
                continue;
            };
            c.id = Some(observed.id.clone());
            c.bindings = observed.bindings.clone();
            c.shown.observed(&observed);
            if observed.running {
                c.known = ContainerStatus::Running;
                c.shown.started_at = Some(self.shared.clock.now());
                // When it really started is the runtime's secret: count from the adoption.
                c.started_at = Some(now);
                c.running_since = Some(now);
                watch_exit(&self.shared, observed.id.clone(), c.name.clone(), self.exits.clone());
                ship.push(observed.id.clone());
            } else if observed.exit_code.is_some() {
                c.known = ContainerStatus::Stopped;
                c.exit_code = observed.exit_code;
                c.reason = observed.oom_killed.then(|| OOM_REASON.to_string());
            } else {
                c.known = ContainerStatus::Created;
            }
        }
        for id in ship {
            if let Some(n) = self.containers.iter().position(|c| c.id.as_deref() == Some(&id)) {
                self.ship_logs(n, &id);
            }
        }
        if self.containers.iter().any(|c| c.essential && c.known == ContainerStatus::Stopped) {
            self.desired = Desired::Stopped;
            self.stop_reason.get_or_insert_with(|| ESSENTIAL_EXITED.to_string());
        }
    }

    async fn run(
        mut self,
        adopted: Vec<Observed>,
        mut desired_rx: watch::Receiver<Desired>,
        mut exit_rx: mpsc::Receiver<String>,
        mut network_rx: watch::Receiver<Option<TaskNetwork>>,
    ) {
        self.desired = *desired_rx.borrow_and_update();
        // The claim travels while images are pulled and containers created; nothing starts
        // before it is acknowledged (containers wait as for an unmet dependency).
        let pending_claim =
            adopted.is_empty().then(|| tokio::spawn(report::claim(self.shared.clone(), self.task.clone())));
        self.claimed = pending_claim.is_none();
        if let Err(reason) = self.prepare().await {
            self.fail(reason);
        }
        tracing::debug!(task = %self.id(), "prepared");
        let readopted = !adopted.is_empty();
        self.adopt(adopted);
        if readopted {
            // An earlier agent process attached it: found again (or repaired), rules updated.
            self.readopt_network().await;
        }
        self.publish();
        if let Some(pending) = pending_claim {
            self.advance().await;
            if !pending.await.unwrap_or(false) {
                self.abandon().await;
                return;
            }
            self.claimed = true;
            tracing::debug!(task = %self.id(), "claim acknowledged");
        }
        loop {
            if *desired_rx.borrow_and_update() == Desired::Stopped {
                self.desired = Desired::Stopped;
            }
            self.advance().await;
            if self.containers.iter().all(|c| c.known == ContainerStatus::Stopped) {
                // Before STOPPED is reported: then the control plane frees the address.
                self.detach_network().await;
            }
            self.publish();
            self.report().await;
            if self.containers.iter().all(|c| c.known == ContainerStatus::Stopped) {
                self.cleanup().await;
                return;
            }
            let polling = self.containers.iter().any(|c| c.checked && c.known == ContainerStatus::Running);
            let health_poll = polling.then(|| Instant::now() + HEALTH_POLL);
            let wake = [health_poll, self.stop_retry, self.next_dependency_deadline()].into_iter().flatten().min();
            tokio::select! {
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    if polling {
                        self.refresh_health().await;
                    }
                }
                changed = desired_rx.changed() => {
                    // The agent is going away (shutdown): leave the containers running for
                    // the next agent process to adopt.
                    if changed.is_err() {
                        return;
                    }
                }
                Some(name) = exit_rx.recv() => {
                    if let Some(n) = self.containers.iter().position(|c| c.name == name) {
                        self.exited(n).await;
                    }
                }
                Ok(()) = network_rx.changed() => {
                    let assigned = network_rx.borrow_and_update().clone();
                    self.network_changed(assigned).await;
                }
            }
        }
    }

    /// The claim was refused (the task was stopped before it): removes what was created;
    /// nothing ever ran.
    async fn abandon(&mut self) {
        self.withdraw();
        self.detach_network().await;
        for c in &self.containers {
            if let Some(id) = &c.id {
                let _ = self.shared.runtime.remove(id).await;
            }
        }
        self.release_netns().await;
        self.shared.cgroups.remove(self.id());
    }

    /// Marks the task as failing: everything still pending is abandoned.
    fn fail(&mut self, reason: String) {
        tracing::warn!(task = %self.arn(), %reason, "task failed");
        self.stop_reason.get_or_insert(reason);
        self.desired = Desired::Stopped;
    }

    /// Applies the next action of every container until none can move.
    async fn advance(&mut self) {
        loop {
            let before: Vec<ContainerStatus> = self.containers.iter().map(|c| c.known).collect();
            self.advance_once().await;
            if self.containers.iter().map(|c| c.known).eq(before) {
                return;
            }
        }
    }

    /// Asks the runtime for the health of running containers that have a check.
    async fn refresh_health(&mut self) {
        let runtime = self.shared.runtime.clone();
        for c in self.containers.iter_mut().filter(|c| c.checked && c.known == ContainerStatus::Running) {
            if let Some(id) = &c.id
                && let Ok(observed) = runtime.inspect(id).await
            {
                c.health = observed.health;
            }
        }
    }

    /// Whether container `n`'s dependencies are met; `Err` names one that never will be
    /// (it stopped the wrong way, or its `startTimeout` ran out first).
    fn dependencies(&self, n: usize) -> Result<bool, String> {
        let c = &self.containers[n];
        let mut met = true;
        for (name, condition) in &c.depends_on {
            let Some(dep) = self.containers.iter().find(|d| &d.name == name) else { continue };
            match dependency(*condition, dep.known, dep.exit_code, dep.health) {
                Dependency::Met => {}
                Dependency::Pending => {
                    let deadline = dependency_deadline(*condition, dep.started_at, dep.start_timeout);
                    if c.known < ContainerStatus::Running && deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(format!(
                            "CannotStartContainerError: container {} gave up waiting for {name} to reach {}: the startTimeout of {name} ({} s) ran out",
                            c.name,
                            condition.as_str(),
                            dep.start_timeout.unwrap_or_default().as_secs()
                        ));
                    }
                    met = false;
                }
                Dependency::Never => {
                    return Err(format!(
                        "DependencyConditionNotMet: container {} depends on {name} reaching {}, which it no longer can",
                        c.name,
                        condition.as_str()
                    ));
                }
            }
        }
        Ok(met)
    }

    /// The earliest moment a waiting container gives up on a dependency.
    fn next_dependency_deadline(&self) -> Option<Instant> {
        if self.desired == Desired::Stopped {
            return None;
        }
        let waiting = self.containers.iter().filter(|c| c.known < ContainerStatus::Running);
        waiting
            .flat_map(|c| &c.depends_on)
            .filter_map(|(name, condition)| {
                let dep = self.containers.iter().find(|d| &d.name == name)?;
                let pending = dependency(*condition, dep.known, dep.exit_code, dep.health) == Dependency::Pending;
                pending.then(|| dependency_deadline(*condition, dep.started_at, dep.start_timeout)).flatten()
            })
            .min()
    }

    /// Whether container `n` may start: the claim is acknowledged and its dependencies are
    /// met. A dependency that never will be fails the task.
    fn may_start(&mut self, n: usize) -> bool {
        match self.dependencies(n) {
            Ok(met) => met && self.claimed,
            Err(reason) => {
                if self.desired == Desired::Running {
                    self.containers[n].reason = Some(reason.clone());
                    self.fail(reason);
                }
                false
            }
        }
    }

    /// One pass over the containers: the stops wanted, then each container moved on as far
    /// as it can go, then the stops that became wanted meanwhile.
    async fn advance_once(&mut self) {
        self.stop_wanted().await;
        for n in 0..self.containers.len() {
            loop {
                let may_start = self.may_start(n);
                let action = next_action(self.containers[n].known, self.desired, may_start);
                let outcome = match action {
                    // Stops are carried out for all containers at once (stop_wanted).
                    Action::Nothing | Action::Wait | Action::Stop => break,
                    Action::Abandon => Ok(ContainerStatus::Stopped),
                    Action::Pull => self.pull(n).await,
                    Action::Create => self.create(n).await,
                    Action::Start => self.start(n).await,
                };
                let c = &mut self.containers[n];
                tracing::debug!(task = %self.task.id(), container = %c.name, ?action, ok = outcome.is_ok(), "container step");
                let failed = match outcome {
                    Ok(status) => {
                        c.known = status;
                        None
                    }
                    Err(reason) => {
                        c.reason = Some(reason.clone());
                        c.known = ContainerStatus::Stopped;
                        Some(reason)
                    }
                };
                // The endpoint shows every step (a container asks as soon as it runs).
                self.publish();
                if let Some(reason) = failed {
                    self.fail(reason);
                    break;
                }
            }
        }
        self.stop_wanted().await;
    }

    async fn pull(&mut self, n: usize) -> Result<ContainerStatus, String> {
        let spec = self.containers[n].spec.clone().ok_or("container has no runnable spec")?;
        let now = self.shared.clock.timestamp();
        self.pull_started.get_or_insert(now);
        let auth = match &spec.repository_credentials {
            Some(secret) => crate::objects::registry_credentials(&self.shared.secrets_dir, secret)
                .map(Some)
                .map_err(|e| format!("ResourceInitializationError: unable to pull secrets or registry auth: {e}")),
            None => self
                .shared
                .control
                .registry_auth(&spec.image)
                .await
                .map_err(|e| format!("getting a registry token: {e}")),
        };
        // The spec never carries credentials of its own: they are found here.
        let pulled = match auth {
            Ok(registry_auth) => self
                .shared
                .runtime
                .pull(&ContainerSpec { registry_auth, ..spec })
                .await
                .map(|_| ContainerStatus::Pulled)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        self.pull_stopped = Some(self.shared.clock.timestamp());
        pulled
    }

    /// Creates container `n`. An awsvpc task's interface is attached meanwhile: the container
    /// joins the task's network namespace when created and runs nothing before it is started,
    /// so only the start waits for both. A task with no interface creates nothing.
    async fn create(&mut self, n: usize) -> Result<ContainerStatus, String> {
        let spec = self.containers[n].spec.clone().ok_or("container has no runnable spec")?;
        if spec.network_mode == "awsvpc" {
            self.assigned_network()?;
        }
        let env = crate::objects::with_env_files(&self.shared.s3_dir, &spec.env_files, &spec.env)
            .map_err(|e| format!("ResourceInitializationError: failed to download env files: {e}"))?;
        let shared = self.shared.clone();
        let awsvpc = spec.network_mode == "awsvpc";
        let runnable = ContainerSpec { env, ..spec.clone() };
        let create = async move { shared.runtime.create(&runnable).await.map_err(|e| e.to_string()) };
        let (attached, created) =
            if awsvpc { tokio::join!(self.attach_network(&spec), create) } else { (Ok(()), create.await) };
        let id = created?;
        if let Err(reason) = attached {
            // Kept, so that the task's cleanup removes it.
            self.containers[n].id = Some(id);
            return Err(reason);
        }
        // Its cgroup and image as the runtime has them, for the metadata endpoint.
        let observed = self.shared.runtime.inspect(&id).await.ok();
        let c = &mut self.containers[n];
        c.shown.created_at = Some(self.shared.clock.now());
        if let Some(o) = &observed {
            c.shown.observed(o);
        }
        c.id = Some(id);
        Ok(ContainerStatus::Created)
    }

    async fn start(&mut self, n: usize) -> Result<ContainerStatus, String> {
        let id = self.containers[n].id.clone().ok_or("container was never created")?;
        if let Some(options) = &self.containers[n].awslogs {
            let stream = options.stream_name(&self.containers[n].name, self.task.id(), &id);
            awslogs::prepare(self.shared.control.as_ref(), options, &stream).await?;
        }
        self.shared.runtime.start(&id).await.map_err(|e| e.to_string())?;
        self.running(n, &id).await;
        Ok(ContainerStatus::Running)
    }

    /// Bookkeeping once the runtime started (or restarted) container `n`.
    async fn running(&mut self, n: usize, id: &str) {
        let observed = self.shared.runtime.inspect(id).await.ok();
        let now = Instant::now();
        let started = self.shared.clock.now();
        let c = &mut self.containers[n];
        c.bindings = observed.as_ref().map(|o| o.bindings.clone()).unwrap_or_default();
        if let Some(o) = &observed {
            c.shown.observed(o);
        }
        (c.shown.started_at, c.shown.finished_at) = (Some(started), None);
        c.started_at.get_or_insert(now);
        c.running_since = Some(now);
        watch_exit(&self.shared, id.to_string(), c.name.clone(), self.exits.clone());
        self.ship_logs(n, id);
    }

    /// Starts sending container `n`'s output to CloudWatch Logs, when its definition asks.
    fn ship_logs(&mut self, n: usize, id: &str) {
        let task_id = self.task.id().to_string();
        let c = &mut self.containers[n];
        let Some(options) = c.awslogs.clone() else { return };
        let shipping = awslogs::Shipping {
            runtime: self.shared.runtime.clone(),
            control: self.shared.control.clone(),
            state_dir: self.shared.state_dir.clone(),
            container_id: id.to_string(),
            stream: options.stream_name(&c.name, &task_id, id),
            options,
        };
        c.shipper = Some(awslogs::spawn(shipping, c.shipper.take()));
    }

    /// Stops, all at once and each with its own stop timeout, every container whose next
    /// action is Stop. A stop the runtime fails is tried again after [`STOP_RETRY`].
    async fn stop_wanted(&mut self) {
        if self.stop_retry.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let told = self.stop_timeout.borrow().map(Duration::from_secs);
        let wanted: Vec<(usize, String, Duration)> = (0..self.containers.len())
            .filter(|&n| next_action(self.containers[n].known, self.desired, false) == Action::Stop)
            .filter_map(|n| {
                let c = &self.containers[n];
                let own = c.spec.as_ref().map_or(spec::DEFAULT_STOP_TIMEOUT, |s| s.stop_timeout);
                Some((n, c.id.clone()?, told.unwrap_or(own)))
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let runtime = self.shared.runtime.clone();
        let stops = wanted.into_iter().map(|(n, id, timeout)| {
            let runtime = runtime.clone();
            async move { (n, runtime.stop(&id, timeout).await) }
        });
        self.stop_retry = None;
        for (n, outcome) in futures::future::join_all(stops).await {
            let stopped = match outcome {
                Ok(()) => self.exited(n).await,
                Err(e) => {
                    tracing::warn!(task = %self.task.id(), container = %self.containers[n].name, error = %e, "stop failed");
                    false
                }
            };
            if !stopped {
                self.stop_retry = Some(Instant::now() + STOP_RETRY);
            }
        }
    }

    /// Records that container `n` exited, with what the runtime says about it; restarts it
    /// instead if its restart policy says so. `false` if it is (again) running.
    async fn exited(&mut self, n: usize) -> bool {
        let runtime = self.shared.runtime.clone();
        if self.containers[n].known != ContainerStatus::Running {
            return self.containers[n].known == ContainerStatus::Stopped;
        }
        let id = self.containers[n].id.clone().unwrap_or_default();
        let observed = runtime.inspect(&id).await.ok();
        if observed.as_ref().is_some_and(|o| o.running) {
            return false;
        }
        let (exit_code, oom) = observed.map_or((None, false), |o| (o.exit_code, o.oom_killed));
        if self.desired == Desired::Running && self.restart(n, &id, exit_code).await {
            return false;
        }
        let c = &mut self.containers[n];
        c.known = ContainerStatus::Stopped;
        c.exit_code = exit_code;
        c.shown.finished_at = Some(self.shared.clock.now());
        if oom {
            c.reason = Some(OOM_REASON.to_string());
        }
        if c.essential && self.desired == Desired::Running {
            self.desired = Desired::Stopped;
            self.stop_reason.get_or_insert_with(|| ESSENTIAL_EXITED.to_string());
        }
        true
    }

    /// Restarts container `n` in place if its restart policy wants it; whether it runs again.
    async fn restart(&mut self, n: usize, id: &str, exit_code: Option<i64>) -> bool {
        let c = &self.containers[n];
        let Some(policy) = &c.restart else { return false };
        let now = Instant::now();
        let verdict = policy.verdict(exit_code, c.running_since.unwrap_or(now), now);
        if verdict != Verdict::Restart {
            tracing::info!(task = %self.task.id(), container = %c.name, ?exit_code, ?verdict, "not restarting");
            return false;
        }
        if let Err(e) = self.shared.runtime.start(id).await {
            tracing::warn!(task = %self.task.id(), container = %c.name, error = %e, "restart failed");
            self.containers[n].reason = Some(e.to_string());
            return false;
        }
        self.running(n, id).await;
        let c = &mut self.containers[n];
        c.restarts += 1;
        c.health = Health::Unknown;
        tracing::info!(task = %self.task.id(), container = %c.name, ?exit_code, restarts = c.restarts, "restarted");
        true
    }

    /// Removes the task's containers and scratch volumes a while after it is reported STOPPED.
    async fn cleanup(&mut self) {
        tokio::time::sleep(self.shared.cleanup_wait).await;
        // The awslogs shippers read the kept output: a container goes only once its output
        // was sent (or, at worst, after SHIP_WAIT).
        for c in &mut self.containers {
            if let Some(shipper) = c.shipper.take()
                && tokio::time::timeout(SHIP_WAIT, shipper).await.is_err()
            {
                tracing::warn!(task = %self.task.id(), container = %c.name, "awslogs shipping did not finish; removing anyway");
            }
        }
        for c in &self.containers {
            if let Some(id) = &c.id
                && let Err(e) = self.shared.runtime.remove(id).await
            {
                tracing::warn!(container = %id, error = %e, "remove failed");
            }
        }
        self.withdraw();
        let _ = std::fs::remove_dir_all(self.scratch_dir());
        self.release_netns().await;
        self.shared.cgroups.remove(self.id());
    }

    /// The ECS status of the task now.
    fn status(&self) -> TaskStatus {
        let states: Vec<(ContainerStatus, bool)> = self.containers.iter().map(|c| (c.known, c.essential)).collect();
        if states.is_empty() { TaskStatus::Stopped } else { lifecycle::task_status(&states, self.desired) }
    }
}

/// Sends the container's name on `exits` once it has exited.
fn watch_exit(shared: &Arc<Shared>, id: String, name: String, exits: mpsc::Sender<String>) {
    let runtime = shared.runtime.clone();
    tokio::spawn(async move {
        if let Err(e) = runtime.wait(&id).await {
            tracing::warn!(container = %id, error = %e, "wait failed");
        }
        let _ = exits.send(name).await;
    });
}
