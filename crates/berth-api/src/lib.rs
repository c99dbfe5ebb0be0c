//! Berth's API front end: one HTTP port that speaks the AWS protocols (AWS JSON for ECS and
//! ECR, AWS query for ELBv2, EC2 query for EC2; SigV4-signed, on `/`), and serves the OCI
//! registry on `/v2/`.
//!
//! A request flows: [`protocol`] (route, body, signature, the model-driven protocol module)
//! → the service's dispatch table in [`ecs`], [`ecr`], [`ec2`] or [`elbv2`] (one handler
//! module per resource) → the store (and, for ECR, the registry).

pub mod assignments;
pub mod combiner;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod keys;
pub mod protocol;
pub mod sigv4;

pub use protocol::shapes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use berth_store::Store;

/// What the API needs to know about the deployment it serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Account id written into every ARN.
    pub account: String,
    /// The region Berth reports for itself (requests name theirs in the credential scope).
    pub region: String,
    pub keys: sigv4::KeyRing,
    /// How long after its last contact an agent still counts as connected.
    pub agent_timeout: Duration,
    /// The URL agents are told to use (DiscoverPollEndpoint).
    pub endpoint: String,
    /// How long after its last contact an agent's tasks are written off as lost (and service
    /// tasks replaced elsewhere).
    pub lost_agent_timeout: Duration,
    /// How long STOPPED tasks stay describable before they are forgotten.
    pub stopped_task_retention: Duration,
    /// Names this server when servers share a store: the holder of the scheduler's lease. A
    /// restarted server with the same name takes its lease back at once.
    pub node: String,
}

/// Shared state of every request handler.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// The private registry, shared by the ECR handlers and `/v2/`.
    pub registry: Arc<berth_registry::Registry>,
    /// Batches RegisterTaskDefinition calls per family (see `combiner`).
    pub registrations: combiner::Combiner<ecs::Registration, serde_json::Value>,
    /// Wakes the service scheduler before its next tick (a service or task changed).
    pub scheduler_wake: tokio::sync::Notify,
    closing: tokio::sync::watch::Sender<bool>,
}

impl App {
    pub fn new(config: Config, store: Arc<dyn Store>, registry: Arc<berth_registry::Registry>) -> Arc<Self> {
        Arc::new(App {
            config,
            store,
            registry,
            registrations: Default::default(),
            scheduler_wake: Default::default(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    /// Asks the service scheduler for a pass now.
    pub fn wake_scheduler(&self) {
        self.scheduler_wake.notify_one();
    }

    /// Tells long-running requests (assignment polls) to answer now: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`App::close`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }
}

/// The HTTP routes: the AWS APIs on `/` (`POST`, and `GET` with a query string), the
/// registry on `/v2/`, a readiness probe on `GET /healthz`.
pub fn router(app: Arc<App>) -> Router {
    let registry = berth_registry::http::router(app.registry.clone());
    Router::new()
        .route("/", post(protocol::serve).get(protocol::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/berth/v1/assignments", get(assignments::poll))
        .with_state(app)
        .merge(registry)
}

/// Creates the `default` cluster in the configured region unless it exists.
pub async fn ensure_default_cluster(app: &App) -> Result<(), error::ApiError> {
    let caller = sigv4::Caller { access_key: String::new(), region: app.config.region.clone() };
    let ctx = ecs::Ctx::new(app, caller, std::time::SystemTime::now(), 0);
    let mut input = ecs::Obj::new();
    input.insert("clusterName".into(), serde_json::json!("default"));
    ecs::dispatch(&ctx, "CreateCluster", input).await.map(|_| ())
}
