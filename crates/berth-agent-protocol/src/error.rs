//! The AWS error codes (`__type`) an agent tells apart. Anything else stays readable as
//! [`ErrorCode::Other`]: the agent treats it as a refusal of that one request.

use std::fmt;

/// The code the assignment channel answers for a container instance that was deregistered:
/// the agent must stop (ECS's agent channel uses the same name).
pub const INACTIVE_INSTANCE: &str = "InactiveInstanceException";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The container instance was deregistered: polling again cannot help.
    InactiveInstance,
    InvalidParameter,
    Client,
    ClusterNotFound,
    AccessDenied,
    /// The control plane failed; the same request may succeed later.
    Server,
    Throttling,
    /// CloudWatch Logs: the group or stream exists already.
    ResourceAlreadyExists,
    /// CloudWatch Logs: the group or stream does not exist.
    ResourceNotFound,
    Other(String),
}

const NAMED: [(&str, ErrorCode); 9] = [
    (INACTIVE_INSTANCE, ErrorCode::InactiveInstance),
    ("InvalidParameterException", ErrorCode::InvalidParameter),
    ("ClientException", ErrorCode::Client),
    ("ClusterNotFoundException", ErrorCode::ClusterNotFound),
    ("AccessDeniedException", ErrorCode::AccessDenied),
    ("ServerException", ErrorCode::Server),
    ("ThrottlingException", ErrorCode::Throttling),
    ("ResourceAlreadyExistsException", ErrorCode::ResourceAlreadyExists),
    ("ResourceNotFoundException", ErrorCode::ResourceNotFound),
];

impl ErrorCode {
    /// The code of an AWS JSON error's `__type`, which may carry a namespace before `#`.
    pub fn parse(raw: &str) -> ErrorCode {
        let name = raw.rsplit('#').next().unwrap_or(raw);
        NAMED.iter().find(|(n, _)| *n == name).map(|(_, c)| c.clone()).unwrap_or_else(|| ErrorCode::Other(name.into()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(name) => name,
            known => NAMED.iter().find(|(_, c)| c == known).map(|(n, _)| *n).expect("every named code is listed"),
        }
    }

    /// Whether the same request may succeed when sent again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, ErrorCode::Server | ErrorCode::Throttling)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_stay_readable() {
        for (name, code) in NAMED {
            assert_eq!(ErrorCode::parse(name), code);
            assert_eq!(code.as_str(), name);
        }
        assert_eq!(ErrorCode::parse("com.amazonaws.ecs#ClientException"), ErrorCode::Client);
        let other = ErrorCode::parse("RepositoryNotFoundException");
        assert_eq!(other, ErrorCode::Other("RepositoryNotFoundException".into()));
        assert_eq!(other.to_string(), "RepositoryNotFoundException");
        assert!(ErrorCode::Server.is_transient() && !ErrorCode::InactiveInstance.is_transient());
    }
}
