//! Berth's client of the control plane, used by the agent and the `berth` commands: AWS JSON 1.1
//! calls and the assignment long poll, SigV4-signed with a key pair.
//!
//! Typed operations ([`ApiClient::call`]) send and read the messages of `berth-agent-protocol`;
//! [`ApiClient::ecs`] and [`ApiClient::ecr`] send any operation as JSON (for the CLI).
//! Every failure is a [`ClientError`] that says whether sending again may help. Given several
//! servers (of one store), the client talks to one and moves to the next when it cannot reach
//! it or it fails (5xx): the caller's retry then goes to another server.

mod error;
mod reports;

pub use berth_agent_protocol as protocol;
pub use error::ClientError;
pub use reports::TaskStateReports;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use berth_agent_protocol::assignments::{Assignments, AssignmentsQuery};
use berth_agent_protocol::ecr::GetAuthorizationToken;
use berth_agent_protocol::ecs::SubmitTaskStateChange;
use berth_agent_protocol::task_states::{self, TaskStateChanges, TaskStateResults};
use berth_agent_protocol::{ErrorCode, Operation, Service};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How long an operation may take before the call counts as a transport failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than its `wait` an assignment poll may take.
pub const POLL_GRACE: Duration = Duration::from_secs(15);

pub struct ApiClient {
    /// `HOST:PORT` of each server.
    hosts: Vec<String>,
    /// Index into `hosts` of the server calls go to.
    current: AtomicUsize,
    access_key: String,
    secret_key: String,
    region: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// `endpoint` is `http://HOST:PORT`.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Result<Self, ClientError> {
        Self::with_servers(&[endpoint.to_string()], access_key, secret_key, region)
    }

    /// A client of several servers sharing one store, each `http://HOST:PORT`; calls go to the
    /// first until it fails.
    pub fn with_servers(
        endpoints: &[String],
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Result<Self, ClientError> {
        let mut hosts = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let host = endpoint
                .strip_prefix("http://")
                .filter(|h| !h.trim_end_matches('/').is_empty())
                .ok_or_else(|| ClientError::Transport(format!("endpoint {endpoint} must be http://HOST:PORT")))?;
            hosts.push(host.trim_end_matches('/').to_string());
        }
        if hosts.is_empty() {
            return Err(ClientError::Transport("no control plane endpoint given".into()));
        }
        Ok(ApiClient {
            hosts,
            current: AtomicUsize::new(0),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
            http: Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http(),
        })
    }

    /// `http://HOST:PORT` of the server calls go to now.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `HOST:PORT` of the server calls go to now (and of its registry).
    pub fn host(&self) -> &str {
        &self.hosts[self.current.load(Ordering::Relaxed) % self.hosts.len()]
    }

    /// After a failure of the server at `index`, the next calls go to the next server (unless
    /// a concurrent call moved on already).
    fn move_on(&self, index: usize) {
        if self.hosts.len() > 1 {
            let next = (index + 1) % self.hosts.len();
            let _ = self.current.compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Sends one signed request; a 200 answer is decoded as `T`, any other as an AWS error.
    async fn send<T: DeserializeOwned>(
        &self,
        service: Service,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let index = self.current.load(Ordering::Relaxed) % self.hosts.len();
        let answer = self.send_to(&self.hosts[index], service, method, path, headers, body, timeout).await;
        if let Err(e) = &answer
            && e.server_failed()
        {
            self.move_on(index);
        }
        answer
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_to<T: DeserializeOwned>(
        &self,
        host: &str,
        service: Service,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let mut to_sign = vec![("host", host)];
        to_sign.extend_from_slice(headers);
        let signed = berth_sigv4::sign_headers(
            &self.access_key,
            &self.secret_key,
            &self.region,
            service.signing_name(),
            SystemTime::now(),
            method,
            path,
            &to_sign,
            &body,
        );
        let mut req = Request::builder().method(method).uri(format!("http://{host}{path}"));
        for (k, v) in to_sign.iter().copied().chain(signed.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::Transport(e.to_string()))?;
        let response = tokio::time::timeout(timeout, self.http.request(req))
            .await
            .map_err(|_| ClientError::Transport(format!("no answer within {timeout:?}")))?
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| ClientError::Transport(e.to_string()))?.to_bytes();
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Transport(format!("unreadable answer to {method} {path}: {e}")));
        }
        Err(ClientError::from_error_body(status, &bytes))
    }

    async fn json_call<T: DeserializeOwned>(
        &self,
        service: Service,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let target = format!("{}.{operation}", service.target_prefix());
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        self.send(service, "POST", "/", &headers, body, CALL_TIMEOUT).await
    }

    /// Calls a typed operation.
    pub async fn call<O: Operation>(&self, input: &O) -> Result<O::Output, ClientError> {
        let body =
            serde_json::to_vec(input).map_err(|e| ClientError::Transport(format!("encoding {}: {e}", O::NAME)))?;
        self.json_call(O::SERVICE, O::NAME, body).await
    }

    /// Calls any ECS operation with a JSON input.
    pub async fn ecs(&self, operation: &str, input: Value) -> Result<Value, ClientError> {
        self.json_call(Service::Ecs, operation, input.to_string().into_bytes()).await
    }

    /// Calls any ECR operation with a JSON input.
    pub async fn ecr(&self, operation: &str, input: Value) -> Result<Value, ClientError> {
        self.json_call(Service::Ecr, operation, input.to_string().into_bytes()).await
    }

    /// The tasks assigned to an instance; waits up to `query.wait` for a change after `query.since`.
    pub async fn assignments(&self, query: &AssignmentsQuery) -> Result<Assignments, ClientError> {
        self.send(Service::Ecs, "GET", &query.path_and_query(), &[], Vec::new(), query.wait + POLL_GRACE).await
    }

    /// POSTs `body` as JSON to one of Berth's own channels (`path`).
    async fn post_json<T: DeserializeOwned>(&self, path: &str, body: &impl serde::Serialize) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Transport(format!("encoding for {path}: {e}")))?;
        let headers = [("content-type", "application/json")];
        self.send(Service::Ecs, "POST", path, &headers, body, CALL_TIMEOUT).await
    }

    /// Reports the tasks' use of the last period (Berth's stats channel).
    pub async fn stats(&self, report: &berth_agent_protocol::stats::StatsReport) -> Result<(), ClientError> {
        self.post_json::<Value>(berth_agent_protocol::stats::PATH, report).await.map(drop)
    }

    /// Takes a FARGATE_SPOT task's capacity back (Berth's spot channel); the answer is the task.
    pub async fn interrupt_spot(
        &self,
        request: &berth_agent_protocol::spot::SpotInterruption,
    ) -> Result<Value, ClientError> {
        self.post_json(berth_agent_protocol::spot::PATH, request).await
    }

    /// Sends several task state changes in one request (Berth's task-states channel): the
    /// outcome of each, in order, or the request's own failure.
    pub async fn task_states(
        &self,
        reports: Vec<SubmitTaskStateChange>,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let sent = reports.len();
        let answer: TaskStateResults = self.post_json(task_states::PATH, &TaskStateChanges { reports }).await?;
        if answer.results.len() != sent {
            return Err(ClientError::Transport(format!(
                "{} results for {sent} task state changes",
                answer.results.len()
            )));
        }
        Ok(answer
            .results
            .into_iter()
            .map(|r| match r.error {
                None => Ok(()),
                Some(e) => {
                    Err(ClientError::Api { status: e.status, code: ErrorCode::parse(&e.code), message: e.message })
                }
            })
            .collect())
    }

    /// Basic-auth credentials for pulling `image` when it lives in the control plane's own
    /// registry (an ECR token, as the ECS agent gets one for ECR images); `None` otherwise.
    pub async fn registry_auth(&self, image: &str) -> Result<Option<(String, String)>, ClientError> {
        match image.split_once('/') {
            Some((registry, _)) if self.hosts.iter().any(|h| h == registry) => self.registry_login().await.map(Some),
            _ => Ok(None),
        }
    }

    /// The user and password of an ECR token of the control plane's registry.
    pub async fn registry_login(&self) -> Result<(String, String), ClientError> {
        let answer = self.call(&GetAuthorizationToken::default()).await?;
        let token = answer.authorization_data.first().map(|d| d.authorization_token.as_str()).unwrap_or_default();
        decode_token(token)
    }
}

/// `USER:PASSWORD` out of a base64 ECR token.
fn decode_token(token: &str) -> Result<(String, String), ClientError> {
    use base64::Engine;
    let malformed = |why: &str| ClientError::Api {
        status: 200,
        code: ErrorCode::Other("MalformedToken".into()),
        message: format!("GetAuthorizationToken returned {why}"),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| malformed("a token that is not base64 text"))?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| malformed("a token without a user"))?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests;
