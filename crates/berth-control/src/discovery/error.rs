//! What Cloud Map refuses: each error names the exception a client sees
//! ([`DiscoveryError::code`]) and reads as its message, so the handlers answer it as it is.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiscoveryError {
    /// A parameter Cloud Map does not accept, or a request Berth cannot honour.
    #[error("{0}")]
    InvalidInput(String),
    #[error("No namespace exists with ID: {0}")]
    NamespaceNotFound(String),
    #[error("No namespace exists with name: {0}")]
    NamespaceNameNotFound(String),
    #[error("No service exists with ID: {0}")]
    ServiceNotFound(String),
    #[error("No service exists with name: {0}")]
    ServiceNameNotFound(String),
    #[error("No instance exists with ID: {0}")]
    InstanceNotFound(String),
    #[error("No operation exists with ID: {0}")]
    OperationNotFound(String),
    #[error("Namespace with name {name} already exists: {id}")]
    NamespaceAlreadyExists { name: String, id: String },
    #[error("Service with name {name} already exists in this namespace: {id}")]
    ServiceAlreadyExists { name: String, id: String },
    /// A namespace with services, a service with instances.
    #[error("{0}")]
    ResourceInUse(String),
    /// A `CreatorRequestId` or `UpdaterRequestId` already used for another request.
    #[error("The request with ID {token} was already made for another change (operation {operation_id}).")]
    DuplicateRequest { token: String, operation_id: String },
    #[error("The service {0} has no custom health check (HealthCheckCustomConfig).")]
    CustomHealthNotFound(String),
    /// Tagging a resource that does not exist.
    #[error("No resource exists with ARN: {0}")]
    ResourceNotFound(String),
    #[error("A resource can have at most {0} tags.")]
    TooManyTags(usize),
    #[error("A service can have at most {0} attributes.")]
    ServiceAttributesLimit(usize),
    #[error("{0}")]
    ResourceLimitExceeded(String),
}

impl DiscoveryError {
    /// The exception name a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            DiscoveryError::InvalidInput(_) => "InvalidInput",
            DiscoveryError::NamespaceNotFound(_) | DiscoveryError::NamespaceNameNotFound(_) => "NamespaceNotFound",
            DiscoveryError::ServiceNotFound(_) | DiscoveryError::ServiceNameNotFound(_) => "ServiceNotFound",
            DiscoveryError::InstanceNotFound(_) => "InstanceNotFound",
            DiscoveryError::OperationNotFound(_) => "OperationNotFound",
            DiscoveryError::NamespaceAlreadyExists { .. } => "NamespaceAlreadyExists",
            DiscoveryError::ServiceAlreadyExists { .. } => "ServiceAlreadyExists",
            DiscoveryError::ResourceInUse(_) => "ResourceInUse",
            DiscoveryError::DuplicateRequest { .. } => "DuplicateRequest",
            DiscoveryError::CustomHealthNotFound(_) => "CustomHealthNotFound",
            DiscoveryError::ResourceNotFound(_) => "ResourceNotFoundException",
            DiscoveryError::TooManyTags(_) => "TooManyTagsException",
            DiscoveryError::ServiceAttributesLimit(_) => "ServiceAttributesLimitExceededException",
            DiscoveryError::ResourceLimitExceeded(_) => "ResourceLimitExceeded",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        DiscoveryError::InvalidInput(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_cloud_maps_names() {
        let e = DiscoveryError::NamespaceAlreadyExists { name: "internal.app".into(), id: "ns-1".into() };
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("NamespaceAlreadyExists", "Namespace with name internal.app already exists: ns-1")
        );
        assert_eq!(DiscoveryError::ServiceNameNotFound("web".into()).code(), "ServiceNotFound");
        assert_eq!(DiscoveryError::TooManyTags(50).code(), "TooManyTagsException");
    }
}
