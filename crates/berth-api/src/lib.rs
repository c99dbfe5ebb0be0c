//! Berth's API front end: one HTTP port that speaks the AWS protocols (AWS JSON for ECS,
//! ECR, CloudWatch Logs and Application Auto Scaling, AWS query for ELBv2, EC2 query for EC2,
//! Smithy RPC v2 CBOR, JSON 1.0 and query for CloudWatch; SigV4-signed), and serves the OCI
//! registry on `/v2/`.
//!
//! A request flows: [`protocol`] (route, body, signature, the model-driven protocol module)
//! → the service's dispatch table in [`ecs`], [`ecr`], [`ec2`], [`elbv2`], [`logs`],
//! [`cloudwatch`] or [`application_autoscaling`] (one handler
//! module per resource) → the store (and, for ECR, the registry).

pub mod application_autoscaling;
pub mod assignments;
pub mod cloudwatch;
pub mod combiner;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod logs;
pub mod protocol;
pub mod servicediscovery;
pub mod sigv4;
pub mod spot;
pub mod stats;
pub mod task_states;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use protocol::shapes;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use berth_control::Control;
use berth_store::Store;

/// What the API needs to know beyond the domain's settings (`berth_control::Config`).
#[derive(Debug, Clone)]
pub struct Config {
    pub keys: sigv4::KeyRing,
    /// The URL agents are told to use (DiscoverPollEndpoint).
    pub endpoint: String,
}

/// Shared state of every request handler.
pub struct App {
    pub config: Config,
    /// The domain: store, clock, ids, settings (see `berth-control`).
    pub control: Arc<Control>,
    /// The private registry, shared by the ECR handlers and `/v2/`.
    pub registry: Arc<berth_registry::Registry>,
    /// Batches RegisterTaskDefinition calls per family (see `combiner`).
    pub registrations: combiner::Combiner<ecs::Registration, serde_json::Value>,
    /// The events of every log group (CloudWatch Logs).
    pub logs: Arc<berth_logs::segments::LogStore>,
    /// The Logs Insights queries this server ran.
    pub queries: logs::queries::Queries,
    /// CloudWatch metrics.
    pub metrics: Arc<berth_metrics::Metrics>,
    /// Prometheus metrics of the server itself (`GET /metrics`).
    pub telemetry: telemetry::Telemetry,
}

impl App {
    pub fn new(
        config: Config,
        control: Arc<Control>,
        registry: Arc<berth_registry::Registry>,
        logs: Arc<berth_logs::segments::LogStore>,
        metrics: Arc<berth_metrics::Metrics>,
    ) -> Arc<Self> {
        let telemetry = telemetry::Telemetry::default().with_passes(control.passes.clone());
        Arc::new(App {
            config,
            control,
            registry,
            registrations: Default::default(),
            logs,
            queries: Default::default(),
            metrics,
            telemetry,
        })
    }

    pub fn store(&self) -> &dyn Store {
        self.control.store.as_ref()
    }

    /// Tells long-running requests (assignment polls) and background loops to finish: the
    /// server is stopping.
    pub fn close(&self) {
        self.control.close();
    }

    /// Resolves once [`App::close`] has been called.
    pub async fn closed(&self) {
        self.control.closed().await
    }
}

/// The HTTP routes: the AWS APIs on `/` (`POST`, and `GET` with a query string), the
/// registry on `/v2/`, a readiness probe on `GET /healthz`.
pub fn router(app: Arc<App>) -> Router {
    let registry = berth_registry::http::router(app.registry.clone());
    Router::new()
        .route("/", post(protocol::serve).get(protocol::serve))
        .route("/service/{service}/operation/{operation}", post(protocol::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(telemetry::serve))
        .route("/berth/v1/assignments", get(assignments::poll))
        .route(berth_agent_protocol::stats::PATH, post(stats::receive))
        .route(berth_agent_protocol::spot::PATH, post(spot::receive))
        .route(berth_agent_protocol::task_states::PATH, post(task_states::receive))
        .with_state(app)
        .merge(registry)
}

/// Creates the `default` cluster in the configured region unless it exists.
pub async fn ensure_default_cluster(app: &App) -> Result<(), error::ApiError> {
    let caller = sigv4::Caller { access_key: String::new(), region: app.control.config.region.clone() };
    let ctx = ecs::Ctx::new(app, caller, std::time::SystemTime::now(), 0);
    let mut input = ecs::Obj::new();
    input.insert("clusterName".into(), serde_json::json!("default"));
    ecs::dispatch(&ctx, "CreateCluster", input).await.map(|_| ())
}
