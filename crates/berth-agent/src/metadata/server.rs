//! The endpoint's HTTP server: `GET /v4/ID`, `/v4/ID/task`, `/v4/ID/stats` and
//! `/v4/ID/task/stats`, the same under `/v3/`. An id no running task has is answered 404, a
//! known id asked from an address that is not its container's 403 ([`super::access`]), each
//! with a JSON string saying why (as the ECS agent answers errors). Stats are read when asked:
//! the reading a container's previous request took is kept as the `pre` half of the next.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::render::{self, Version};
use super::stats::{self, Reading, Readings};
use super::view::{ContainerView, TaskView};
use super::{Registry, access};

/// How long a reading is kept as the `pre` half of the next request's stats.
const KEEP_READING: Duration = Duration::from_secs(600);

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Container,
    Task,
    ContainerStats,
    TaskStats,
}

impl What {
    /// The ECS agent's prefix of this handler's error messages.
    fn handler(self) -> &'static str {
        match self {
            What::Container => "container metadata handler",
            What::Task => "task metadata handler",
            What::ContainerStats => "container stats handler",
            What::TaskStats => "task stats handler",
        }
    }
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub version: Version,
    pub id: String,
    pub what: What,
}

/// `/v4/ID[/task][/stats]` (or `/v3/...`); `None` for any other path.
pub fn route(path: &str) -> Option<Route> {
    let mut parts = path.trim_start_matches('/').split('/');
    let version = match parts.next()? {
        "v4" => Version::V4,
        "v3" => Version::V3,
        _ => return None,
    };
    let id = parts.next().filter(|id| !id.is_empty())?.to_string();
    let rest: Vec<&str> = parts.collect();
    let what = match rest.as_slice() {
        [] | [""] => What::Container,
        ["task"] | ["task", ""] => What::Task,
        ["stats"] | ["stats", ""] => What::ContainerStats,
        ["task", "stats"] | ["task", "stats", ""] => What::TaskStats,
        _ => return None,
    };
    Some(Route { version, id, what })
}

/// The server's state: the published tasks, where readings come from, the last readings.
pub struct Server {
    registry: Arc<Registry>,
    readings: Arc<dyn Readings>,
    previous: Mutex<HashMap<String, Reading>>,
}

impl Server {
    pub fn new(registry: Arc<Registry>, readings: Arc<dyn Readings>) -> Self {
        Server { registry, readings, previous: Mutex::default() }
    }

    /// The answer to `path` asked from `source`: a status and a JSON body.
    pub fn answer(&self, path: &str, source: IpAddr) -> (StatusCode, Value) {
        let Some(route) = route(path) else {
            return (StatusCode::NOT_FOUND, json!(format!("no such path: {path}")));
        };
        let refusal =
            |status, why: String| (status, json!(format!("{} {}: {why}", route.version.name(), route.what.handler())));
        let Some((task, n)) = self.registry.lookup(&route.id) else {
            return refusal(
                StatusCode::NOT_FOUND,
                format!("no running task has a container with endpoint id {}", route.id),
            );
        };
        let container = &task.containers[n];
        if !access::admits(&task, container, source) {
            return refusal(
                StatusCode::FORBIDDEN,
                format!("endpoint id {} is not for requests from {source}", route.id),
            );
        }
        match route.what {
            What::Container => (StatusCode::OK, render::container(&task, container, route.version)),
            What::Task => (StatusCode::OK, render::task(&task, route.version)),
            What::ContainerStats => match self.stats(container, route.version) {
                Some(stats) => (StatusCode::OK, stats),
                None => refusal(
                    StatusCode::NOT_FOUND,
                    format!("container {} has no stats: it is not running", container.name),
                ),
            },
            What::TaskStats => (StatusCode::OK, self.task_stats(&task, route.version)),
        }
    }

    /// Docker's stats of a running container, read now.
    fn stats(&self, c: &ContainerView, version: Version) -> Option<Value> {
        let cgroup = c.cgroup.as_ref().filter(|_| c.live)?;
        let now = self.readings.read(cgroup, c.has_own_network())?;
        let before = {
            let mut previous = self.previous.lock().expect("readings");
            previous.retain(|_, r| now.at.duration_since(r.at).is_ok_and(|age| age < KEEP_READING));
            previous.insert(cgroup.clone(), now.clone())
        };
        let id = c.docker_id.as_deref().unwrap_or_default();
        Some(stats::render(&c.docker_name, id, &now, before.as_ref(), version))
    }

    /// Every running container's stats, by its runtime id.
    fn task_stats(&self, task: &TaskView, version: Version) -> Value {
        let mut out = Map::new();
        for c in &task.containers {
            if let (Some(id), Some(stats)) = (&c.docker_id, self.stats(c, version)) {
                out.insert(id.clone(), stats);
            }
        }
        Value::Object(out)
    }
}

async fn handle(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
) -> Response {
    let (status, body) = if method == Method::GET {
        server.answer(uri.path(), peer.ip())
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, json!(format!("the task metadata endpoint answers GET, not {method}")))
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Answers on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, server: Arc<Server>) {
    let app = Router::new().fallback(handle).with_state(server);
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
        tracing::error!(error = %e, "the task metadata endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_by_version_and_member() {
        let r = |path: &str| route(path).map(|r| (r.version, r.id, r.what));
        assert_eq!(r("/v4/abc"), Some((Version::V4, "abc".into(), What::Container)));
        assert_eq!(r("/v4/abc/"), Some((Version::V4, "abc".into(), What::Container)));
        assert_eq!(r("/v3/abc/task"), Some((Version::V3, "abc".into(), What::Task)));
        assert_eq!(r("/v4/abc/stats"), Some((Version::V4, "abc".into(), What::ContainerStats)));
        assert_eq!(r("/v4/abc/task/stats"), Some((Version::V4, "abc".into(), What::TaskStats)));
        for bad in ["/", "/v4", "/v4/", "/v2/metadata", "/v4/abc/tasks", "/v4/abc/task/stats/x", "/v5/abc"] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }
}
