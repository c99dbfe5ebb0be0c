//! Domain errors, each naming the ECS exception a client sees for it.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// ECS `ClientException`: the request breaks a rule of the resource.
    #[error("{0}")]
    Client(String),
    /// ECS `InvalidParameterException`: a parameter has an unacceptable value.
    #[error("{0}")]
    InvalidParameter(String),
}

impl ModelError {
    pub fn client(msg: impl Into<String>) -> Self {
        ModelError::Client(msg.into())
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        ModelError::InvalidParameter(msg.into())
    }

    /// The AWS exception name.
    pub fn exception(&self) -> &'static str {
        match self {
            ModelError::Client(_) => "ClientException",
            ModelError::InvalidParameter(_) => "InvalidParameterException",
        }
    }
}
