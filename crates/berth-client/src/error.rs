//! What can go wrong talking to the control plane, split by what a caller should do about it.

use berth_agent_protocol::ErrorCode;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum ClientError {
    /// The control plane answered with an AWS error.
    #[error("{code}: {message}")]
    Api { status: u16, code: ErrorCode, message: String },
    /// The control plane could not be reached or answered something unreadable.
    #[error("cannot reach the control plane: {0}")]
    Transport(String),
}

/// The AWS JSON error shape.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    code: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

impl ClientError {
    /// The error of a non-200 answer: its AWS error, or a transport failure when the body is
    /// not an AWS error (a proxy's page, a truncated answer).
    pub(crate) fn from_error_body(status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { code: Some(code), message }) => {
                ClientError::Api { status, code: ErrorCode::parse(&code), message: message.unwrap_or_default() }
            }
            _ => ClientError::Transport(format!(
                "HTTP {status} without an AWS error: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }

    /// The AWS error code, if the control plane answered one.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }

    /// The AWS error code's name, if the control plane answered one.
    pub fn code(&self) -> Option<&str> {
        self.error_code().map(ErrorCode::as_str)
    }

    /// Whether the server itself failed (unreachable, or a 5xx): another server of the same
    /// store may answer.
    pub fn server_failed(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => *status >= 500,
        }
    }

    /// Whether sending the same request again later may succeed: the control plane was not
    /// reached, failed itself (5xx, `ServerException`) or throttled.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, code, .. } => *status >= 500 || code.is_transient(),
        }
    }
}
