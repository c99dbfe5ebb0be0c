//! The agent's client of the control plane: ECS operations over AWS JSON 1.1 and the
//! assignment long poll, both SigV4-signed with the agent's key pair.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use thiserror::Error;

const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
const ECR_TARGET: &str = "AmazonEC2ContainerRegistry_V20150921";

#[derive(Debug, Clone, Error)]
pub enum ClientError {
    /// The server answered with an AWS error.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// The server could not be reached or answered nonsense; worth retrying.
    #[error("cannot reach the control plane: {0}")]
    Transport(String),
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }
}

pub struct ApiClient {
    host: String,
    base: String,
    access_key: String,
    secret_key: String,
    region: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// `endpoint` is `http://HOST:PORT`.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Result<Self, ClientError> {
        let host = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Transport(format!("endpoint {endpoint} must be http://HOST:PORT")))?
            .trim_end_matches('/')
            .to_string();
        Ok(ApiClient {
            base: format!("http://{host}"),
            host,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
            http: Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        service: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let mut to_sign = vec![("host", self.host.as_str())];
        to_sign.extend_from_slice(headers);
        let signed = berth_api::sigv4::sign_headers(
            &self.access_key,
            &self.secret_key,
            &self.region,
            service,
            SystemTime::now(),
            method,
            path,
            &to_sign,
            &body,
        );
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
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
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Transport(format!("bad response: {e}")))?;
        if status == 200 {
            return Ok(value);
        }
        Err(ClientError::Api {
            status,
            code: value["__type"].as_str().unwrap_or("UnknownError").to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// Calls an ECS operation.
    pub async fn ecs(&self, operation: &str, input: Value) -> Result<Value, ClientError> {
        let target = format!("{ECS_TARGET}.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        self.send("ecs", "POST", "/", &headers, serde_json::to_vec(&input).expect("json"), Duration::from_secs(30))
            .await
    }

    /// Calls an ECR operation.
    pub async fn ecr(&self, operation: &str, input: Value) -> Result<Value, ClientError> {
        let target = format!("{ECR_TARGET}.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        self.send("ecr", "POST", "/", &headers, serde_json::to_vec(&input).expect("json"), Duration::from_secs(30))
            .await
    }

    /// Basic-auth credentials for pulling `image` when it lives in the control plane's own
    /// registry (an ECR token, as the ECS agent gets one for ECR images); `None` otherwise.
    pub async fn registry_auth(&self, image: &str) -> Result<Option<(String, String)>, ClientError> {
        let registry = image.split('/').next().unwrap_or_default();
        if !image.contains('/') || registry != self.host {
            return Ok(None);
        }
        self.registry_login().await.map(Some)
    }

    /// The user and password of an ECR token of the control plane's registry.
    pub async fn registry_login(&self) -> Result<(String, String), ClientError> {
        let out = self.ecr("GetAuthorizationToken", Value::Object(Default::default())).await?;
        let token = out["authorizationData"][0]["authorizationToken"].as_str().unwrap_or_default();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ClientError::Transport("GetAuthorizationToken returned a malformed token".into()))?;
        let (user, password) =
            decoded.split_once(':').ok_or_else(|| ClientError::Transport("registry token without a user".into()))?;
        Ok((user.to_string(), password.to_string()))
    }

    /// The tasks assigned to this instance; waits up to `wait` for a change after `since`.
    pub async fn assignments(
        &self,
        cluster: &str,
        instance_id: &str,
        since: u64,
        wait: Duration,
    ) -> Result<Value, ClientError> {
        let path = format!(
            "/berth/v1/assignments?cluster={cluster}&containerInstance={instance_id}&since={since}&wait={}",
            wait.as_secs()
        );
        self.send("ecs", "GET", &path, &[], Vec::new(), wait + Duration::from_secs(15)).await
    }
}
