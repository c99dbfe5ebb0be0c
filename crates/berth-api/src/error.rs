//! Errors a client sees: an AWS exception name, an HTTP status and a message, rendered as
//! the AWS JSON error shape `{"__type": ..., "message": ...}`.

use berth_control::ControlError;
use berth_model::ModelError;
use berth_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// ECS `ClientException`: the request is wrong for the resource it names.
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(400, "ClientException", message)
    }

    /// ECS `InvalidParameterException`: a parameter has a value ECS does not accept.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(400, "UnknownOperationException", message)
    }

    pub fn cluster_not_found() -> Self {
        Self::new(400, "ClusterNotFoundException", "Cluster not found.")
    }

    pub fn service_not_found() -> Self {
        Self::new(400, "ServiceNotFoundException", "Service not found.")
    }

    /// What ECS answers for a task definition revision that does not exist.
    pub fn task_definition_not_found() -> Self {
        Self::client("Unable to describe task definition.")
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(500, "ServerException", message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"__type": self.code, "message": self.message})
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Client(m) => ApiError::client(m),
            ModelError::InvalidParameter(m) => ApiError::invalid(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::server(format!("internal store error: {e}"))
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Store(e) => e.into(),
            ControlError::Corrupt { .. } => {
                tracing::error!(error = %e, "corrupt record");
                ApiError::server(e.to_string())
            }
            ControlError::Contention => {
                ApiError::client("Too many concurrent attempts to change this resource. Retry the request.")
            }
            ControlError::ClusterNotFound => ApiError::cluster_not_found(),
            ControlError::TaskNotFound => ApiError::invalid("The referenced task was not found."),
            ControlError::Transition(t) => ApiError::invalid(t.to_string()),
            ControlError::Placement(m) => ApiError::invalid(m),
            // EC2's code and message; the ECS side words them for ECS where it quotes them.
            ControlError::Vpc(e) => e.into(),
            ControlError::Scaling(e) => e.into(),
            ControlError::Elb(e) => e.into(),
            ControlError::Discovery(e) => ApiError::new(400, e.code(), e.to_string()),
        }
    }
}

impl From<berth_control::vpc::VpcError> for ApiError {
    fn from(e: berth_control::vpc::VpcError) -> Self {
        ApiError::new(400, e.code(), e.to_string())
    }
}

impl From<berth_control::elb::ElbError> for ApiError {
    fn from(e: berth_control::elb::ElbError) -> Self {
        ApiError::new(400, e.code(), e.to_string())
    }
}

impl From<berth_store::Contention> for ApiError {
    fn from(e: berth_store::Contention) -> Self {
        ControlError::from(e).into()
    }
}

impl From<berth_control::placement::SpecError> for ApiError {
    fn from(e: berth_control::placement::SpecError) -> Self {
        use berth_control::placement::SpecError;
        match e {
            SpecError::Invalid(m) => ApiError::invalid(m),
            SpecError::Client(m) => ApiError::client(m),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The answer of Berth's own JSON endpoints (`/berth/v1/...`): 200 with the value, or the
/// error's status and AWS JSON error body.
pub fn json_answer<T: serde::Serialize>(outcome: ApiResult<T>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (status, body) = match outcome {
        Ok(v) => (axum::http::StatusCode::OK, serde_json::to_vec(&v)),
        Err(e) => (
            axum::http::StatusCode::from_u16(e.status).unwrap_or(axum::http::StatusCode::BAD_REQUEST),
            serde_json::to_vec(&e.body()),
        ),
    };
    let mut response = (status, body.unwrap_or_default()).into_response();
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/json"));
    response
}
