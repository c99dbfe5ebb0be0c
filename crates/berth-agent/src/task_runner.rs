//! One task on this machine, from assignment to cleanup. The runner is the only writer of
//! its task's state: it moves each container on with [`lifecycle::next_action`], watches
//! for exits and for the desired status the control plane sends, and reports every change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_model::task::TaskStatus;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{ApiClient, ClientError};
use crate::lifecycle::{
    Action, Condition, ContainerStatus, Dependency, Desired, Health, dependency, next_action, task_health, task_status,
};
use crate::runtime::{Binding, ContainerSpec, LABEL_CONTAINER, Observed, Runtime};
use crate::spec::{self, Context};

/// ECS's reason for a container the kernel killed for memory.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
/// ECS's stop reason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";
/// Pause between retries of a report the control plane did not receive.
const REPORT_RETRY: Duration = Duration::from_secs(1);
/// How often running containers with a health check are asked for their health.
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// What every runner shares.
pub struct Shared {
    pub client: Arc<ApiClient>,
    pub runtime: Arc<dyn Runtime>,
    pub cluster: String,
    pub instance_arn: String,
    pub state_dir: PathBuf,
    /// Where secrets named by tasks are read (see `secrets`).
    pub secrets_dir: PathBuf,
    /// Where S3 objects named by tasks (`environmentFiles`) are read (see `objects`).
    pub s3_dir: PathBuf,
    pub allow_privileged: bool,
    /// How long a stopped task's containers are kept (for their logs) before removal.
    pub cleanup_wait: Duration,
    /// Task definitions by ARN: they never change, so each is read from the API once.
    pub definitions: std::sync::Mutex<std::collections::HashMap<String, Value>>,
}

pub struct Runner {
    pub desired: watch::Sender<Desired>,
    pub handle: JoinHandle<()>,
}

pub fn spawn(shared: Arc<Shared>, task: Value, adopted: Vec<Observed>) -> Runner {
    let initial = if task["desiredStatus"] == "STOPPED" { Desired::Stopped } else { Desired::Running };
    let (desired, rx) = watch::channel(initial);
    let handle = tokio::spawn(async move { TaskRun::new(shared, task).run(adopted, rx).await });
    Runner { desired, handle }
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
}

struct TaskRun {
    shared: Arc<Shared>,
    task: Value,
    arn: String,
    id: String,
    containers: Vec<Container>,
    desired: Desired,
    /// Why the task is stopping, when the agent decided it (failure, essential exit).
    stop_reason: Option<String>,
    pull_started: Option<f64>,
    pull_stopped: Option<f64>,
    last_report: Option<Value>,
    /// Whether the control plane knows this agent runs the task (nothing starts before).
    claimed: bool,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or(0.0)
}

impl TaskRun {
    fn new(shared: Arc<Shared>, task: Value) -> Self {
        let arn = task["taskArn"].as_str().unwrap_or_default().to_string();
        let id = arn.rsplit('/').next().unwrap_or_default().to_string();
        TaskRun {
            shared,
            task,
            arn,
            id,
            containers: Vec::new(),
            desired: Desired::Running,
            stop_reason: None,
            pull_started: None,
            pull_stopped: None,
            last_report: None,
            claimed: false,
        }
    }

    fn scratch_dir(&self) -> PathBuf {
        self.shared.state_dir.join("volumes").join(&self.id)
    }

    /// Reads the task definition and builds each container's spec.
    async fn prepare(&mut self) -> Result<(), String> {
        let definition_arn = self.task["taskDefinitionArn"].as_str().unwrap_or_default().to_string();
        let cached = self.shared.definitions.lock().expect("definition cache").get(&definition_arn).cloned();
        let described = if let Some(d) = cached {
            d
        } else {
            loop {
                match self.shared.client.ecs("DescribeTaskDefinition", json!({"taskDefinition": definition_arn})).await
                {
                    Ok(v) => break v,
                    Err(ClientError::Transport(e)) => {
                        tracing::warn!(task = %self.arn, error = %e, "cannot read the task definition yet");
                        tokio::time::sleep(REPORT_RETRY).await;
                    }
                    Err(e) => return Err(format!("CannotReadTaskDefinitionError: {e}")),
                }
            }
        };
        self.shared.definitions.lock().expect("definition cache").insert(definition_arn.clone(), described.clone());
        let def = &described["taskDefinition"];
        let volumes = def["volumes"].as_array().cloned().unwrap_or_default();
        let scratch = self.scratch_dir();
        let ctx = Context {
            cluster: &self.shared.cluster,
            instance_arn: &self.shared.instance_arn,
            task_arn: &self.arn,
            task_id: &self.id,
            network_mode: def["networkMode"].as_str().unwrap_or("bridge"),
            volumes: &volumes,
            containers: def["containerDefinitions"].as_array().map(Vec::as_slice).unwrap_or_default(),
            scratch_dir: &scratch,
            allow_privileged: self.shared.allow_privileged,
            definition: def,
        };
        let overrides = self.task["overrides"].as_object().cloned();
        let mut failure = None;
        for c in def["containerDefinitions"].as_array().into_iter().flatten() {
            let c = c.as_object().cloned().unwrap_or_default();
            let spec = match spec::container_spec(&ctx, &c, overrides.as_ref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    failure.get_or_insert(e.0);
                    None
                }
            };
            let depends_on = c
                .get("dependsOn")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    Some((d["containerName"].as_str()?.to_string(), Condition::parse(d["condition"].as_str()?)?))
                })
                .collect();
            self.containers.push(Container {
                checked: spec.as_ref().is_some_and(|s| s.health.is_some()),
                health: Health::Unknown,
                depends_on,
                name: c.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                essential: c.get("essential").and_then(Value::as_bool).unwrap_or(true),
                spec,
                known: ContainerStatus::None,
                id: None,
                exit_code: None,
                reason: None,
                bindings: Vec::new(),
            });
        }
        // One task cgroup around the containers, with the task-level cpu and memory.
        let task_level = |key: &str, parse: fn(&str) -> Option<u32>| {
            self.task["overrides"][key].as_str().or_else(|| def[key].as_str()).and_then(parse).map(u64::from)
        };
        let cpu = task_level("cpu", berth_model::task_definition::parse_cpu);
        let memory = task_level("memory", berth_model::task_definition::parse_memory);
        let parent = crate::cgroup::create(&self.id, cpu, memory)
            .map_err(|e| format!("CannotCreateContainerError: task cgroup: {e}"))?;
        for c in self.containers.iter_mut() {
            if let Some(spec) = c.spec.as_mut() {
                spec.cgroup_parent = Some(parent.clone());
            }
        }
        if volumes.iter().any(|v| v.get("host").is_none()) {
            std::fs::create_dir_all(&scratch).map_err(|e| format!("CannotCreateVolumeError: {e}"))?;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Takes over containers a previous agent process created for this task.
    fn adopt(&mut self, adopted: Vec<Observed>, exits: &mpsc::Sender<String>) {
        for observed in adopted {
            let Some(name) = observed.labels.get(LABEL_CONTAINER) else {
                continue;
            };
            let Some(c) = self.containers.iter_mut().find(|c| &c.name == name) else {
                continue;
            };
            c.id = Some(observed.id.clone());
            c.bindings = observed.bindings.clone();
            if observed.running {
                c.known = ContainerStatus::Running;
                watch_exit(&self.shared, observed.id.clone(), c.name.clone(), exits.clone());
            } else if observed.exit_code.is_some() {
                c.known = ContainerStatus::Stopped;
                c.exit_code = observed.exit_code;
                c.reason = observed.oom_killed.then(|| OOM_REASON.to_string());
            } else {
                c.known = ContainerStatus::Created;
            }
        }
        if self.containers.iter().any(|c| c.essential && c.known == ContainerStatus::Stopped) {
            self.desired = Desired::Stopped;
            self.stop_reason.get_or_insert_with(|| ESSENTIAL_EXITED.to_string());
        }
    }

    async fn run(mut self, adopted: Vec<Observed>, mut desired_rx: watch::Receiver<Desired>) {
        let (exit_tx, mut exit_rx) = mpsc::channel::<String>(32);
        self.desired = *desired_rx.borrow_and_update();
        // The claim travels while images are pulled and containers created; nothing starts
        // before it is acknowledged (containers wait as for an unmet dependency).
        let pending_claim = adopted.is_empty().then(|| tokio::spawn(claim(self.shared.clone(), self.task.clone())));
        self.claimed = pending_claim.is_none();
        if let Err(reason) = self.prepare().await {
            self.fail(reason);
        }
        tracing::debug!(task = %self.id, "prepared");
        self.adopt(adopted, &exit_tx);
        if let Some(pending) = pending_claim {
            self.advance(&exit_tx).await;
            if !pending.await.unwrap_or(false) {
                // Stopped before the claim: remove what was created; nothing ever ran.
                for c in &self.containers {
                    if let Some(id) = &c.id {
                        let _ = self.shared.runtime.remove(id).await;
                    }
                }
                crate::cgroup::remove(&self.id);
                return;
            }
            self.claimed = true;
            tracing::debug!(task = %self.id, "claim acknowledged");
        }
        loop {
            self.advance(&exit_tx).await;
            self.report().await;
            if self.containers.iter().all(|c| c.known == ContainerStatus::Stopped) {
                self.cleanup().await;
                return;
            }
            let polling = self.containers.iter().any(|c| c.checked && c.known == ContainerStatus::Running);
            tokio::select! {
                _ = tokio::time::sleep(HEALTH_POLL), if polling => self.refresh_health().await,
                changed = desired_rx.changed() => {
                    // The agent is going away (shutdown): leave the containers running for
                    // the next agent process to adopt.
                    if changed.is_err() {
                        return;
                    }
                    if *desired_rx.borrow_and_update() == Desired::Stopped {
                        self.desired = Desired::Stopped;
                    }
                }
                Some(name) = exit_rx.recv() => self.exited(&name).await,
            }
        }
    }

    /// Marks the task as failing to start: everything still pending is abandoned.
    fn fail(&mut self, reason: String) {
        tracing::warn!(task = %self.arn, %reason, "task failed");
        self.stop_reason.get_or_insert(reason);
        self.desired = Desired::Stopped;
    }

    /// Applies the next action of every container until none can move.
    async fn advance(&mut self, exits: &mpsc::Sender<String>) {
        loop {
            let before: Vec<ContainerStatus> = self.containers.iter().map(|c| c.known).collect();
            self.advance_once(exits).await;
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

    /// Whether container `n`'s dependencies are met; `Err` names one that never will be.
    fn dependencies(&self, n: usize) -> Result<bool, String> {
        let c = &self.containers[n];
        let mut met = true;
        for (name, condition) in &c.depends_on {
            let Some(dep) = self.containers.iter().find(|d| &d.name == name) else { continue };
            match dependency(*condition, dep.known, dep.exit_code, dep.health) {
                Dependency::Met => {}
                Dependency::Pending => met = false,
                Dependency::Never => {
                    return Err(format!(
                        "DependencyConditionNotMet: container {} depends on {name} reaching {condition:?}, which it no longer can",
                        c.name
                    ));
                }
            }
        }
        Ok(met)
    }

    /// One pass over the containers, each moved on as far as it can go.
    async fn advance_once(&mut self, exits: &mpsc::Sender<String>) {
        if self.desired == Desired::Stopped {
            self.stop_all().await;
        }
        let runtime = self.shared.runtime.clone();
        for n in 0..self.containers.len() {
            loop {
                let deps_met = match self.dependencies(n) {
                    Ok(met) => met && self.claimed,
                    Err(reason) => {
                        if self.desired == Desired::Running {
                            self.containers[n].reason = Some(reason.clone());
                            self.fail(reason);
                        }
                        false
                    }
                };
                let c = &mut self.containers[n];
                let action = next_action(c.known, self.desired, deps_met);
                let outcome = match (action, &c.spec) {
                    (Action::Nothing | Action::Wait, _) => break,
                    (Action::Abandon, _) => {
                        c.known = ContainerStatus::Stopped;
                        continue;
                    }
                    (Action::Stop, _) => break,
                    (_, None) => Err("container has no runnable spec".to_string()),
                    (Action::Pull, Some(spec)) => {
                        self.pull_started.get_or_insert_with(now);
                        let auth = match &spec.repository_credentials {
                            Some(secret) => crate::objects::registry_credentials(&self.shared.secrets_dir, secret)
                                .map(Some)
                                .map_err(|e| {
                                    format!("ResourceInitializationError: unable to pull secrets or registry auth: {e}")
                                }),
                            None => self
                                .shared
                                .client
                                .registry_auth(&spec.image)
                                .await
                                .map_err(|e| format!("getting a registry token: {e}")),
                        };
                        // The spec never carries credentials of its own: they are found here.
                        let r = match auth {
                            Ok(registry_auth) => runtime
                                .pull(&ContainerSpec { registry_auth, ..spec.clone() })
                                .await
                                .map(|_| ContainerStatus::Pulled)
                                .map_err(|e| e.to_string()),
                            Err(e) => Err(e),
                        };
                        self.pull_stopped = Some(now());
                        r
                    }
                    (Action::Create, Some(spec)) => {
                        match crate::objects::with_env_files(&self.shared.s3_dir, &spec.env_files, &spec.env) {
                            Err(e) => Err(format!("ResourceInitializationError: failed to download env files: {e}")),
                            Ok(env) => match runtime.create(&ContainerSpec { env, ..spec.clone() }).await {
                                Ok(id) => {
                                    c.id = Some(id);
                                    Ok(ContainerStatus::Created)
                                }
                                Err(e) => Err(e.to_string()),
                            },
                        }
                    }
                    (Action::Start, Some(_)) => {
                        let id = c.id.clone().unwrap_or_default();
                        match runtime.start(&id).await {
                            Ok(()) => {
                                c.bindings = runtime.inspect(&id).await.map(|o| o.bindings).unwrap_or_default();
                                watch_exit(&self.shared, id, c.name.clone(), exits.clone());
                                Ok(ContainerStatus::Running)
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                };
                let c = &mut self.containers[n];
                tracing::debug!(task = %self.id, container = %c.name, ?action, ok = outcome.is_ok(), "container step");
                match outcome {
                    Ok(status) => c.known = status,
                    Err(reason) => {
                        c.reason = Some(reason.clone());
                        c.known = ContainerStatus::Stopped;
                        self.fail(reason);
                        break;
                    }
                }
            }
        }
        if self.desired == Desired::Stopped {
            self.stop_all().await;
        }
    }

    /// Stops every running container at once, each with its own stop timeout.
    async fn stop_all(&mut self) {
        let runtime = self.shared.runtime.clone();
        let stops = self.containers.iter().filter(|c| c.known == ContainerStatus::Running).filter_map(|c| {
            let id = c.id.clone()?;
            let timeout = c.spec.as_ref().map(|s| s.stop_timeout).unwrap_or(spec::DEFAULT_STOP_TIMEOUT);
            let runtime = runtime.clone();
            Some(async move {
                if let Err(e) = runtime.stop(&id, timeout).await {
                    tracing::warn!(container = %id, error = %e, "stop failed");
                }
            })
        });
        futures::future::join_all(stops).await;
        for n in 0..self.containers.len() {
            if self.containers[n].known == ContainerStatus::Running {
                let name = self.containers[n].name.clone();
                self.exited(&name).await;
            }
        }
    }

    /// Records a container's exit with what the runtime says about it.
    async fn exited(&mut self, name: &str) {
        let runtime = self.shared.runtime.clone();
        let Some(c) = self.containers.iter_mut().find(|c| c.name == name) else {
            return;
        };
        if c.known == ContainerStatus::Stopped {
            return;
        }
        let observed = match &c.id {
            Some(id) => runtime.inspect(id).await.ok(),
            None => None,
        };
        if observed.as_ref().is_some_and(|o| o.running) {
            return;
        }
        c.known = ContainerStatus::Stopped;
        if let Some(o) = observed {
            c.exit_code = o.exit_code;
            if o.oom_killed {
                c.reason = Some(OOM_REASON.to_string());
            }
        }
        if c.essential && self.desired == Desired::Running {
            self.desired = Desired::Stopped;
            self.stop_reason.get_or_insert_with(|| ESSENTIAL_EXITED.to_string());
        }
    }

    fn container_report(c: &Container) -> Value {
        let mut out = Map::new();
        out.insert("containerName".into(), json!(c.name));
        out.insert("status".into(), json!(c.known.ecs()));
        if let Some(id) = &c.id {
            out.insert("runtimeId".into(), json!(id));
        }
        if let Some(code) = c.exit_code {
            out.insert("exitCode".into(), json!(code));
        }
        if let Some(reason) = &c.reason {
            out.insert("reason".into(), json!(reason.chars().take(255).collect::<String>()));
        }
        out.insert("networkBindings".into(), Value::Array(spec::network_bindings(c.spec.as_ref(), &c.bindings)));
        if c.checked {
            out.insert("healthStatus".into(), json!(c.health.ecs()));
        }
        Value::Object(out)
    }

    /// Tells the control plane the task's state when it changed, retrying until heard.
    async fn report(&mut self) {
        let states: Vec<(ContainerStatus, bool)> = self.containers.iter().map(|c| (c.known, c.essential)).collect();
        let status = if states.is_empty() { TaskStatus::Stopped } else { task_status(&states, self.desired) };
        if status == TaskStatus::Pending && self.last_report.is_none() && self.pull_started.is_none() {
            return;
        }
        let health: Vec<(Health, bool, bool)> =
            self.containers.iter().map(|c| (c.health, c.essential, c.checked)).collect();
        let mut body = json!({
            "cluster": self.shared.cluster,
            "task": self.arn,
            "status": status.as_str(),
            "healthStatus": task_health(&health).ecs(),
            "containers": self.containers.iter().map(Self::container_report).collect::<Vec<_>>(),
        });
        for (key, value) in [("pullStartedAt", self.pull_started), ("pullStoppedAt", self.pull_stopped)] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        if status == TaskStatus::Stopped {
            body["executionStoppedAt"] = json!(now());
            if let Some(reason) = &self.stop_reason {
                body["reason"] = json!(reason.chars().take(255).collect::<String>());
            }
        }
        let mut comparable = body.clone();
        comparable.as_object_mut().map(|o| o.remove("executionStoppedAt"));
        if self.last_report.as_ref() == Some(&comparable) {
            return;
        }
        loop {
            match self.shared.client.ecs("SubmitTaskStateChange", body.clone()).await {
                Ok(_) => {
                    tracing::debug!(task = %self.id, status = %status.as_str(), "reported");
                    break;
                }
                Err(ClientError::Transport(e)) => {
                    tracing::warn!(task = %self.arn, error = %e, "report not delivered; retrying");
                    tokio::time::sleep(REPORT_RETRY).await;
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn, error = %e, "report refused");
                    break;
                }
            }
        }
        self.last_report = Some(comparable);
    }

    /// Removes the task's containers and scratch volumes a while after it is reported STOPPED.
    async fn cleanup(&mut self) {
        tokio::time::sleep(self.shared.cleanup_wait).await;
        for c in &self.containers {
            if let Some(id) = &c.id
                && let Err(e) = self.shared.runtime.remove(id).await
            {
                tracing::warn!(container = %id, error = %e, "remove failed");
            }
        }
        let _ = std::fs::remove_dir_all(self.scratch_dir());
        crate::cgroup::remove(&self.id);
    }
}

/// Claims a task no agent has worked on yet: once claimed, only this agent may stop it.
/// `false` if the control plane refused (the task was stopped before the claim).
async fn claim(shared: Arc<Shared>, task: Value) -> bool {
    if !matches!(task["lastStatus"].as_str(), Some("PENDING" | "PROVISIONING") | None) {
        return true;
    }
    let body = json!({"cluster": shared.cluster, "task": task["taskArn"], "status": "PENDING"});
    loop {
        match shared.client.ecs("SubmitTaskStateChange", body.clone()).await {
            Ok(_) => return true,
            Err(ClientError::Transport(e)) => {
                tracing::warn!(task = %task["taskArn"], error = %e, "claim not delivered; retrying");
                tokio::time::sleep(REPORT_RETRY).await;
            }
            Err(e) => {
                tracing::info!(task = %task["taskArn"], error = %e, "task not claimed; leaving it alone");
                return false;
            }
        }
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
