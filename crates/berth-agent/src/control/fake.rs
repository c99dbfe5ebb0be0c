//! A control plane in memory for tests: it records every registration, poll and report, answers
//! polls with assignments the test scripts, and acknowledges reports — or holds, fails or
//! refuses them when told to.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use berth_agent_protocol::ErrorCode;
use berth_agent_protocol::assignments::{Assignments, AssignmentsQuery};
use berth_agent_protocol::ecs::{RegisterContainerInstance, RegisteredInstance, SubmitTaskStateChange};
use berth_agent_protocol::logs::{CreateLogGroup, CreateLogStream, PutLogEvents};
use berth_agent_protocol::stats::StatsReport;
use berth_client::ClientError;
use serde_json::Value;
use tokio::sync::Notify;

use super::{ControlPlane, TaskDefinition};
use crate::runtime::BoxFuture;

/// Everything the agent sent, in order.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub registrations: Vec<RegisterContainerInstance>,
    pub polls: Vec<AssignmentsQuery>,
    /// Every report as it arrived (acknowledged or not).
    pub reports: Vec<SubmitTaskStateChange>,
    /// The reports that were acknowledged.
    pub acknowledged: Vec<SubmitTaskStateChange>,
}

impl Recorded {
    /// The acknowledged reports of one task.
    pub fn of(&self, task: &str) -> Vec<&SubmitTaskStateChange> {
        self.acknowledged.iter().filter(|r| r.task == task).collect()
    }
}

#[derive(Default)]
struct State {
    instance_arn: String,
    recorded: Recorded,
    definitions: HashMap<String, TaskDefinition>,
    answers: VecDeque<Result<Assignments, ClientError>>,
    /// Every report of these tasks is refused with this error.
    refusals: HashMap<String, ClientError>,
    /// The next reports fail with these, in order.
    failures: VecDeque<ClientError>,
    holding: bool,
    token: Option<(String, String)>,
    /// CloudWatch Logs: groups, their streams, and each stream's messages.
    logs: HashMap<String, HashMap<String, Vec<String>>>,
    /// Every stats report, in order.
    stats: Vec<StatsReport>,
    /// PutLogEvents waits while this is set.
    logs_holding: bool,
    /// Cloud Map: the endpoints of each `(namespace, service)`.
    endpoints: HashMap<(String, String), Vec<std::net::SocketAddr>>,
}

pub struct FakeControlPlane {
    state: Mutex<State>,
    changed: Notify,
}

/// An AWS error as the control plane answers it.
pub fn api_error(code: ErrorCode, message: &str) -> ClientError {
    ClientError::Api { status: 400, code, message: message.into() }
}

impl FakeControlPlane {
    /// A control plane that registers this machine as `instance_arn` (unless it re-registers
    /// under the ARN it had).
    pub fn new(instance_arn: &str) -> Self {
        let state = State { instance_arn: instance_arn.into(), ..Default::default() };
        FakeControlPlane { state: Mutex::new(state), changed: Notify::new() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state.lock().expect("fake control plane"));
        self.changed.notify_waiters();
        out
    }

    pub fn define(&self, arn: &str, definition: Value) {
        let definition = definition.as_object().cloned().expect("a task definition is a JSON object");
        self.with(|s| s.definitions.insert(arn.into(), definition));
    }

    /// The answer to the next poll that finds none queued.
    pub fn answer(&self, answer: Result<Assignments, ClientError>) {
        self.with(|s| s.answers.push_back(answer));
    }

    pub fn refuse_reports_of(&self, task: &str, error: ClientError) {
        self.with(|s| s.refusals.insert(task.into(), error));
    }

    /// The next reports, whatever their task, fail with `errors` in turn.
    pub fn fail_next_reports(&self, errors: impl IntoIterator<Item = ClientError>) {
        self.with(|s| s.failures.extend(errors));
    }

    /// Reports are recorded as they arrive but not acknowledged until [`Self::release`].
    pub fn hold(&self) {
        self.with(|s| s.holding = true);
    }

    pub fn release(&self) {
        self.with(|s| s.holding = false);
    }

    pub fn set_registry_token(&self, user: &str, password: &str) {
        self.with(|s| s.token = Some((user.into(), password.into())));
    }

    pub fn recorded(&self) -> Recorded {
        self.state.lock().expect("fake control plane").recorded.clone()
    }

    /// Waits until `check` finds something in what was recorded.
    pub async fn until<T>(&self, check: impl Fn(&Recorded) -> Option<T>) -> T {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check(&self.state.lock().expect("fake control plane").recorded) {
                return found;
            }
            changed.await;
        }
    }

    /// Waits for an acknowledged report of `task` that satisfies `matches`.
    pub async fn report_of(
        &self,
        task: &str,
        matches: impl Fn(&SubmitTaskStateChange) -> bool,
    ) -> SubmitTaskStateChange {
        self.until(|r| r.of(task).into_iter().find(|x| matches(x)).cloned()).await
    }

    async fn wait_while_holding(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.state.lock().expect("fake control plane").holding {
                return;
            }
            changed.await;
        }
    }
}

impl FakeControlPlane {
    /// The messages put to a log stream so far (None: no such stream).
    pub fn logged(&self, group: &str, stream: &str) -> Option<Vec<String>> {
        self.with(|s| s.logs.get(group).and_then(|g| g.get(stream)).cloned())
    }

    /// The log groups that exist, and their streams.
    pub fn log_streams(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.with(|s| s.logs.iter().flat_map(|(g, ss)| ss.keys().map(|k| (g.clone(), k.clone()))).collect());
        out.sort();
        out
    }

    /// The stats reports received so far.
    /// Sets what DiscoverInstances answers for a Cloud Map service.
    pub fn set_endpoints(&self, namespace: &str, service: &str, endpoints: Vec<std::net::SocketAddr>) {
        self.with(|s| s.endpoints.insert((namespace.into(), service.into()), endpoints));
    }

    pub fn stats(&self) -> Vec<StatsReport> {
        self.with(|s| s.stats.clone())
    }

    /// Holds (or lets go) every PutLogEvents until released.
    pub fn hold_logs(&self, hold: bool) {
        self.with(|s| s.logs_holding = hold);
    }

    pub fn create_group(&self, name: &str) {
        self.with(|s| {
            s.logs.entry(name.into()).or_default();
        });
    }
}

fn exists() -> ClientError {
    api_error(ErrorCode::ResourceAlreadyExists, "The specified resource already exists")
}

impl ControlPlane for FakeControlPlane {
    fn register<'a>(
        &'a self,
        input: &'a RegisterContainerInstance,
    ) -> BoxFuture<'a, Result<RegisteredInstance, ClientError>> {
        Box::pin(async move {
            self.with(|s| {
                s.recorded.registrations.push(input.clone());
                let arn = input.container_instance_arn.clone().unwrap_or_else(|| s.instance_arn.clone());
                Ok(RegisteredInstance { container_instance_arn: arn })
            })
        })
    }

    fn assignments<'a>(&'a self, query: &'a AssignmentsQuery) -> BoxFuture<'a, Result<Assignments, ClientError>> {
        Box::pin(async move {
            self.with(|s| s.recorded.polls.push(query.clone()));
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(answer) = self.state.lock().expect("fake control plane").answers.pop_front() {
                    return answer;
                }
                changed.await;
            }
        })
    }

    fn task_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<TaskDefinition, ClientError>> {
        Box::pin(async move {
            self.with(|s| s.definitions.get(arn).cloned())
                .ok_or_else(|| api_error(ErrorCode::Client, "Unable to describe task definition."))
        })
    }

    fn submit_task_state<'a>(&'a self, report: &'a SubmitTaskStateChange) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            let refused = self.with(|s| {
                s.recorded.reports.push(report.clone());
                s.failures.pop_front().or_else(|| s.refusals.get(&report.task).cloned())
            });
            if let Some(error) = refused {
                return Err(error);
            }
            self.wait_while_holding().await;
            self.with(|s| s.recorded.acknowledged.push(report.clone()));
            Ok(())
        })
    }

    fn registry_auth<'a>(&'a self, _image: &'a str) -> BoxFuture<'a, Result<Option<(String, String)>, ClientError>> {
        Box::pin(async move { Ok(self.state.lock().expect("fake control plane").token.clone()) })
    }

    fn create_log_group<'a>(&'a self, input: &'a CreateLogGroup) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.with(|s| match s.logs.contains_key(&input.log_group_name) {
                true => Err(exists()),
                false => {
                    s.logs.insert(input.log_group_name.clone(), HashMap::new());
                    Ok(())
                }
            })
        })
    }

    fn create_log_stream<'a>(&'a self, input: &'a CreateLogStream) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.with(|s| {
                let group = s
                    .logs
                    .get_mut(&input.log_group_name)
                    .ok_or_else(|| api_error(ErrorCode::ResourceNotFound, "The specified log group does not exist."))?;
                if group.contains_key(&input.log_stream_name) {
                    return Err(exists());
                }
                group.insert(input.log_stream_name.clone(), Vec::new());
                Ok(())
            })
        })
    }

    fn put_log_events<'a>(&'a self, input: &'a PutLogEvents) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if !self.state.lock().expect("fake control plane").logs_holding {
                    break;
                }
                changed.await;
            }
            self.with(|s| {
                let stream =
                    s.logs.get_mut(&input.log_group_name).and_then(|g| g.get_mut(&input.log_stream_name)).ok_or_else(
                        || api_error(ErrorCode::ResourceNotFound, "The specified log stream does not exist."),
                    )?;
                stream.extend(input.log_events.iter().map(|e| e.message.clone()));
                Ok(())
            })
        })
    }

    fn report_stats<'a>(&'a self, report: &'a StatsReport) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.with(|s| s.stats.push(report.clone()));
            Ok(())
        })
    }

    fn discover_instances<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<std::net::SocketAddr>, ClientError>> {
        Box::pin(async move {
            self.with(|s| s.endpoints.get(&(namespace.to_string(), service.to_string())).cloned()).ok_or_else(|| {
                api_error(ErrorCode::parse("ServiceNotFound"), &format!("no service {service} in {namespace}"))
            })
        })
    }
}
