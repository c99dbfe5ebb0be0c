//! The agent's side of the control plane: the few calls it makes, as a trait. The real one is
//! [`Remote`], `berth-client`'s SigV4-signed [`ApiClient`] with the agent's task state
//! changes sent in batches; [`fake::FakeControlPlane`] answers from memory for tests. Replies
//! and errors are the typed messages of `berth-agent-protocol`.

use berth_agent_protocol::assignments::{Assignments, AssignmentsQuery};
use berth_agent_protocol::connect::DiscoverInstances;
use berth_agent_protocol::ecs::{
    DescribeTaskDefinition, RegisterContainerInstance, RegisteredInstance, SubmitTaskStateChange,
};
use berth_agent_protocol::logs::{CreateLogGroup, CreateLogStream, PutLogEvents};
use berth_agent_protocol::stats::StatsReport;
use std::sync::Arc;

use berth_client::{ApiClient, ClientError, TaskStateReports};
use serde_json::{Map, Value};

use crate::runtime::BoxFuture;

#[cfg(any(test, feature = "fakes"))]
pub mod fake;

/// An ECS task definition as `DescribeTaskDefinition` shows it.
pub type TaskDefinition = Map<String, Value>;

pub trait ControlPlane: Send + Sync + 'static {
    /// Registers (or, with its ARN, re-registers) this machine as a container instance.
    fn register<'a>(
        &'a self,
        input: &'a RegisterContainerInstance,
    ) -> BoxFuture<'a, Result<RegisteredInstance, ClientError>>;
    /// The tasks assigned to the instance (a long poll).
    fn assignments<'a>(&'a self, query: &'a AssignmentsQuery) -> BoxFuture<'a, Result<Assignments, ClientError>>;
    fn task_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<TaskDefinition, ClientError>>;
    /// Reports a task's state (the first report of a task is its claim).
    fn submit_task_state<'a>(&'a self, report: &'a SubmitTaskStateChange) -> BoxFuture<'a, Result<(), ClientError>>;
    /// Credentials for pulling `image` when it lives in the control plane's registry.
    fn registry_auth<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<(String, String)>, ClientError>>;
    /// CloudWatch Logs, for the `awslogs` driver.
    fn create_log_group<'a>(&'a self, input: &'a CreateLogGroup) -> BoxFuture<'a, Result<(), ClientError>>;
    fn create_log_stream<'a>(&'a self, input: &'a CreateLogStream) -> BoxFuture<'a, Result<(), ClientError>>;
    fn put_log_events<'a>(&'a self, input: &'a PutLogEvents) -> BoxFuture<'a, Result<(), ClientError>>;
    /// The tasks' cpu and memory use of the last metric period.
    fn report_stats<'a>(&'a self, report: &'a StatsReport) -> BoxFuture<'a, Result<(), ClientError>>;
    /// Where the instances of Cloud Map service `service` of namespace `namespace` are reached
    /// (healthy ones, else all), for Service Connect.
    fn discover_instances<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<std::net::SocketAddr>, ClientError>>;
}

/// The control plane over the network. Task state changes go through one
/// [`TaskStateReports`] per agent: those that wait while a request is in flight go together.
pub struct Remote {
    client: Arc<ApiClient>,
    reports: TaskStateReports,
}

impl Remote {
    /// Starts the report sender on the current tokio runtime.
    pub fn new(client: Arc<ApiClient>) -> Self {
        Remote { reports: TaskStateReports::start(client.clone()), client }
    }
}

impl ControlPlane for Remote {
    fn register<'a>(
        &'a self,
        input: &'a RegisterContainerInstance,
    ) -> BoxFuture<'a, Result<RegisteredInstance, ClientError>> {
        Box::pin(async move { Ok(self.client.call(input).await?.container_instance) })
    }

    fn assignments<'a>(&'a self, query: &'a AssignmentsQuery) -> BoxFuture<'a, Result<Assignments, ClientError>> {
        Box::pin(self.client.assignments(query))
    }

    fn task_definition<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<TaskDefinition, ClientError>> {
        Box::pin(async move {
            let input = DescribeTaskDefinition { task_definition: arn.to_string() };
            Ok(self.client.call(&input).await?.task_definition)
        })
    }

    fn submit_task_state<'a>(&'a self, report: &'a SubmitTaskStateChange) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(self.reports.submit(report.clone()))
    }

    fn registry_auth<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<(String, String)>, ClientError>> {
        Box::pin(self.client.registry_auth(image))
    }

    fn create_log_group<'a>(&'a self, input: &'a CreateLogGroup) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { self.client.call(input).await.map(drop) })
    }

    fn create_log_stream<'a>(&'a self, input: &'a CreateLogStream) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { self.client.call(input).await.map(drop) })
    }

    fn put_log_events<'a>(&'a self, input: &'a PutLogEvents) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move { self.client.call(input).await.map(drop) })
    }

    fn report_stats<'a>(&'a self, report: &'a StatsReport) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(self.client.stats(report))
    }

    fn discover_instances<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<std::net::SocketAddr>, ClientError>> {
        Box::pin(async move {
            let input = DiscoverInstances {
                namespace_name: namespace.to_string(),
                service_name: service.to_string(),
                max_results: Some(1000),
                health_status: Some("HEALTHY_OR_ELSE_ALL".into()),
            };
            Ok(self.client.call(&input).await?.instances.iter().filter_map(|i| i.endpoint()).collect())
        })
    }
}
