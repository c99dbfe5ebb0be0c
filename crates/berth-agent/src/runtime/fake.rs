//! A container runtime in memory for tests: it records every call and plays outcomes the test
//! scripts per container name — pull, create, start and stop failures, exits with codes after
//! some time, health verdicts — and can hold containers "found" from an earlier agent process.
//! Time is tokio's, so a paused test runtime controls when scripted exits happen.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Binding, BoxFuture, ContainerSpec, LABEL_CONTAINER, LABEL_INSTANCE, LABEL_TASK, LogStream, Observed};
use super::{Runtime, RuntimeError};
use crate::lifecycle::Health;

/// The exit code of a container stopped with SIGTERM.
pub const SIGTERM_EXIT: i64 = 143;
/// The exit code of a container killed with SIGKILL.
pub const SIGKILL_EXIT: i64 = 137;

/// One call the agent made, with the container's name (its `LABEL_CONTAINER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Pull {
        name: String,
        image: String,
    },
    Create {
        name: String,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
        timeout: Duration,
    },
    Inspect {
        name: String,
    },
    Wait {
        name: String,
    },
    Remove {
        name: String,
    },
    ListManaged,
    Logs {
        name: String,
    },
    /// The network namespace of a task's holder was asked for (`awsvpc`).
    TaskNetns {
        holder: String,
    },
    ReleaseTaskNetns {
        holder: String,
    },
}

impl Call {
    /// The container the call was about (none for `ListManaged`).
    pub fn container(&self) -> Option<&str> {
        match self {
            Call::Pull { name, .. }
            | Call::Create { name }
            | Call::Start { name }
            | Call::Stop { name, .. }
            | Call::Inspect { name }
            | Call::Wait { name }
            | Call::Remove { name }
            | Call::Logs { name } => Some(name),
            Call::ListManaged | Call::TaskNetns { .. } | Call::ReleaseTaskNetns { .. } => None,
        }
    }

    /// Whether the call changes the container (inspect, wait, list and logs only look).
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Call::Pull { .. } | Call::Create { .. } | Call::Start { .. } | Call::Stop { .. } | Call::Remove { .. }
        )
    }
}

/// What happens to one container, by its name.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub pull_error: Option<String>,
    pub create_error: Option<String>,
    pub start_error: Option<String>,
    /// For each start in turn: the container exits on its own this long after starting, with
    /// this code. Once they are used up it runs until stopped.
    pub runs: VecDeque<(Duration, i64)>,
    /// How many stop calls fail before one works.
    pub stop_failures: u32,
    /// SIGTERM does nothing: a stop takes its whole timeout and ends with SIGKILL.
    pub ignores_sigterm: bool,
    /// Its exits are the kernel's OOM kills.
    pub oom: bool,
    /// What it writes, in order: chunks of stdout (`false`) or stderr (`true`), all of it
    /// given by the first `logs` call.
    pub output: Vec<(bool, String)>,
}

impl Script {
    /// A container that exits `after` its first start with `code`.
    pub fn exits(after: Duration, code: i64) -> Self {
        Script { runs: VecDeque::from([(after, code)]), ..Default::default() }
    }
}

#[derive(Debug, Clone)]
struct Container {
    id: String,
    name: String,
    labels: HashMap<String, String>,
    running: bool,
    exit_code: Option<i64>,
    oom_killed: bool,
    health: Health,
    ports: Vec<Binding>,
    /// Bumped at every start, so a scripted exit only ends the run it was planned for.
    run: u64,
    removed: bool,
    /// The spec it was created from (`None` for one "found" from an earlier agent).
    spec: Option<ContainerSpec>,
    /// Its number: bridge-mode containers get the address 10.88.0.N.
    number: u64,
}

impl Container {
    fn observed(&self) -> Observed {
        let spec = self.spec.as_ref();
        let bridged = spec.is_some_and(|s| s.network_mode == "bridge");
        Observed {
            id: self.id.clone(),
            running: self.running,
            exit_code: self.exit_code,
            oom_killed: self.oom_killed,
            bindings: self.ports.clone(),
            labels: self.labels.clone(),
            error: None,
            health: self.health,
            address: bridged.then(|| std::net::Ipv4Addr::from(u32::from_be_bytes([10, 88, 0, 0]) + self.number as u32)),
            image_id: spec.map(|s| format!("sha256:{}", s.image)),
            cgroup: spec.and_then(|s| s.cgroup_parent.as_ref()).map(|parent| format!("{parent}/{}", self.id)),
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    scripts: HashMap<String, Script>,
    containers: Vec<Container>,
    pulled: Vec<String>,
    next_id: u64,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

impl Inner {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state.lock().expect("fake runtime"));
        self.changed.notify_waiters();
        out
    }

    /// Ends the current run of container `id` (if it is still `run`).
    fn exit(&self, id: &str, run: Option<u64>, code: i64) {
        self.with(|s| {
            let oom =
                s.containers.iter().find(|c| c.id == id).is_some_and(|c| s.scripts.get(&c.name).is_some_and(|x| x.oom));
            if let Some(c) = s.containers.iter_mut().find(|c| c.id == id && c.running && run.is_none_or(|r| r == c.run))
            {
                c.running = false;
                c.exit_code = Some(code);
                c.oom_killed = oom;
                c.health = Health::Unknown;
            }
        });
    }
}

#[derive(Clone, Default)]
pub struct FakeRuntime {
    inner: Arc<Inner>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        FakeRuntime::default()
    }

    /// Scripts what happens to the container named `name` (of any task).
    pub fn script(&self, name: &str, script: Script) {
        self.inner.with(|s| s.scripts.insert(name.into(), script));
    }

    /// A container an earlier agent process left: running, or exited with `exit_code`.
    pub fn existing(&self, task_arn: &str, instance_arn: &str, name: &str, exit_code: Option<i64>) -> String {
        self.inner.with(|s| {
            s.next_id += 1;
            let id = format!("fake-{}", s.next_id);
            let labels = HashMap::from([
                (LABEL_TASK.to_string(), task_arn.to_string()),
                (LABEL_INSTANCE.to_string(), instance_arn.to_string()),
                (LABEL_CONTAINER.to_string(), name.to_string()),
            ]);
            s.containers.push(Container {
                id: id.clone(),
                name: name.into(),
                labels,
                running: exit_code.is_none(),
                exit_code,
                oom_killed: false,
                health: Health::Unknown,
                ports: Vec::new(),
                run: 1,
                removed: false,
                spec: None,
                number: s.next_id,
            });
            id
        })
    }

    /// The running container named `name` exits now with `code`.
    pub fn exit(&self, name: &str, code: i64) {
        let id = self.inner.with(|s| s.containers.iter().find(|c| c.name == name && c.running).map(|c| c.id.clone()));
        if let Some(id) = id {
            self.inner.exit(&id, None, code);
        }
    }

    pub fn set_health(&self, name: &str, health: Health) {
        self.inner.with(|s| {
            for c in s.containers.iter_mut().filter(|c| c.name == name && c.running) {
                c.health = health;
            }
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.state.lock().expect("fake runtime").calls.clone()
    }

    /// The calls that changed the container named `name`, in order.
    pub fn actions_on(&self, name: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.acts() && c.container() == Some(name)).collect()
    }

    /// How the container named `name` looks now (the newest one, removed or not).
    pub fn container(&self, name: &str) -> Option<Observed> {
        let s = self.inner.state.lock().expect("fake runtime");
        s.containers.iter().rev().find(|c| c.name == name).map(Container::observed)
    }

    /// The spec the newest container named `name` was created from.
    pub fn spec(&self, name: &str) -> Option<ContainerSpec> {
        let s = self.inner.state.lock().expect("fake runtime");
        s.containers.iter().rev().find(|c| c.name == name).and_then(|c| c.spec.clone())
    }

    /// Whether the container named `name` was removed.
    pub fn removed(&self, name: &str) -> bool {
        let s = self.inner.state.lock().expect("fake runtime");
        s.containers.iter().any(|c| c.name == name && c.removed)
    }

    /// Waits until `check` finds something in the calls made so far.
    pub async fn until<T>(&self, check: impl Fn(&[Call]) -> Option<T>) -> T {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check(&self.inner.state.lock().expect("fake runtime").calls) {
                return found;
            }
            changed.await;
        }
    }

    fn record(&self, s: &mut State, id: &str, call: impl FnOnce(String) -> Call) -> Result<usize, RuntimeError> {
        let found = s.containers.iter().position(|c| c.id == id && !c.removed);
        let name = found.map(|i| s.containers[i].name.clone()).unwrap_or_else(|| id.to_string());
        s.calls.push(call(name));
        found.ok_or_else(|| RuntimeError::Inspect(format!("no container {id}")))
    }

    fn script_of(s: &State, name: &str) -> Script {
        s.scripts.get(name).cloned().unwrap_or_default()
    }
}

fn name_of(spec: &ContainerSpec) -> String {
    spec.labels.get(LABEL_CONTAINER).cloned().unwrap_or_else(|| spec.name.clone())
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn pull<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| {
                let name = name_of(spec);
                s.calls.push(Call::Pull { name: name.clone(), image: spec.image.clone() });
                match Self::script_of(s, &name).pull_error {
                    Some(e) => Err(RuntimeError::Pull(e)),
                    None => {
                        s.pulled.push(spec.image.clone());
                        Ok(())
                    }
                }
            })
        })
    }

    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| {
                let name = name_of(spec);
                s.calls.push(Call::Create { name: name.clone() });
                if let Some(e) = Self::script_of(s, &name).create_error {
                    return Err(RuntimeError::Create(e));
                }
                s.next_id += 1;
                let id = format!("fake-{}", s.next_id);
                let ports = spec
                    .ports
                    .iter()
                    .map(|p| Binding {
                        container_port: p.container_port,
                        host_port: p.host_port.unwrap_or(32768 + p.container_port),
                        protocol: p.protocol.clone(),
                        bind_ip: "0.0.0.0".into(),
                    })
                    .collect();
                s.containers.push(Container {
                    id: id.clone(),
                    name,
                    labels: spec.labels.clone(),
                    running: false,
                    exit_code: None,
                    oom_killed: false,
                    health: Health::Unknown,
                    ports,
                    run: 0,
                    removed: false,
                    spec: Some(spec.clone()),
                    number: s.next_id,
                });
                Ok(id)
            })
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let planned = self.inner.with(|s| {
                let i = self.record(s, id, |name| Call::Start { name })?;
                let mut script = Self::script_of(s, &s.containers[i].name);
                if let Some(e) = script.start_error {
                    return Err(RuntimeError::Start(e));
                }
                let c = &mut s.containers[i];
                if c.running {
                    return Err(RuntimeError::Start(format!("container {id} is already running")));
                }
                c.running = true;
                c.exit_code = None;
                c.oom_killed = false;
                c.run += 1;
                let run = c.run;
                let planned = script.runs.pop_front();
                let name = c.name.clone();
                s.scripts.insert(name, script);
                Ok(planned.map(|p| (p, run)))
            })?;
            if let Some(((after, code), run)) = planned {
                let inner = self.inner.clone();
                let id = id.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    inner.exit(&id, Some(run), code);
                });
            }
            Ok(())
        })
    }

    fn stop<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let ignores_sigterm = self.inner.with(|s| {
                let i = self.record(s, id, |name| Call::Stop { name, timeout })?;
                let name = s.containers[i].name.clone();
                let mut script = Self::script_of(s, &name);
                if script.stop_failures > 0 {
                    script.stop_failures -= 1;
                    s.scripts.insert(name, script);
                    return Err(RuntimeError::Stop(format!("container {id} did not stop")));
                }
                Ok(script.ignores_sigterm)
            })?;
            if ignores_sigterm {
                tokio::time::sleep(timeout).await;
                self.inner.exit(id, None, SIGKILL_EXIT);
            } else {
                self.inner.exit(id, None, SIGTERM_EXIT);
            }
            Ok(())
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Observed, RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| {
                let i = self.record(s, id, |name| Call::Inspect { name })?;
                Ok(s.containers[i].observed())
            })
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| self.record(s, id, |name| Call::Wait { name }))?;
            loop {
                let changed = self.inner.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let s = self.inner.state.lock().expect("fake runtime");
                    match s.containers.iter().find(|c| c.id == id) {
                        None => return Err(RuntimeError::Inspect(format!("no container {id}"))),
                        Some(c) if c.removed => return Err(RuntimeError::Inspect(format!("container {id} is gone"))),
                        Some(c) if !c.running => return Ok(()),
                        Some(_) => {}
                    }
                }
                changed.await;
            }
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| {
                let i = self.record(s, id, |name| Call::Remove { name })?;
                let c = &mut s.containers[i];
                c.running = false;
                c.removed = true;
                Ok(())
            })
        })
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Observed>, RuntimeError>> {
        Box::pin(async move {
            self.inner.with(|s| {
                s.calls.push(Call::ListManaged);
                Ok(s.containers.iter().filter(|c| !c.removed).map(Container::observed).collect())
            })
        })
    }

    fn logs<'a>(&'a self, id: &'a str, _follow: bool) -> LogStream<'a> {
        let recorded = self.inner.with(|s| self.record(s, id, |name| Call::Logs { name }));
        let output: Vec<Result<(bool, bytes::Bytes), RuntimeError>> = match recorded {
            Err(e) => vec![Err(e)],
            Ok(_) => self.inner.with(|s| {
                let name = s.containers.iter().find(|c| c.id == id).map(|c| c.name.clone()).unwrap_or_default();
                let script = s.scripts.get(&name).map(|x| x.output.clone()).unwrap_or_default();
                script.into_iter().map(|(stderr, text)| Ok((stderr, bytes::Bytes::from(text)))).collect()
            }),
        };
        Box::pin(futures::stream::iter(output))
    }

    fn task_netns<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<std::path::PathBuf, RuntimeError>> {
        Box::pin(async move {
            let holder = spec.namespace_holder.clone().ok_or_else(|| RuntimeError::Create("no holder".into()))?;
            let path = std::path::Path::new("/fake/netns").join(&holder);
            self.inner.with(|s| s.calls.push(Call::TaskNetns { holder }));
            Ok(path)
        })
    }

    fn release_task_netns<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.inner.with(|s| s.calls.push(Call::ReleaseTaskNetns { holder: holder.into() })) })
    }
}
