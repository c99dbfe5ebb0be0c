//! `GetAuthorizationToken`: what the agent pulls images of the control plane's own registry
//! with, as the ECS agent gets a token for ECR images.

use serde::{Deserialize, Serialize};

use crate::operation;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    pub authorization_data: Vec<AuthorizationData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    /// base64 of `USER:PASSWORD`.
    pub authorization_token: String,
    #[serde(default)]
    pub expires_at: Option<f64>,
    #[serde(default)]
    pub proxy_endpoint: Option<String>,
}

operation!(Ecr, GetAuthorizationToken => GetAuthorizationTokenResponse);
