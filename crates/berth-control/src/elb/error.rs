//! What can be wrong with a request on the load balancing model: each error names the ELB
//! error code a client sees ([`ElbError::code`]) and reads as ELB's message (its `Display`),
//! so the ELBv2 handlers answer it as it is and the ECS side can quote it.
//!
//! Anything ELB has that Berth does not do (an HTTPS listener, a Lambda target, access logs
//! to S3, ...) is refused with [`ElbError::Unsupported`], a `ValidationError` that says so.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ElbError {
    /// `ValidationError`: a value ELB itself refuses.
    #[error("{0}")]
    Validation(String),
    /// `ValidationError`: something ELB has that Berth does not do.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    LoadBalancerNotFound(String),
    #[error("{0}")]
    TargetGroupNotFound(String),
    #[error("{0}")]
    ListenerNotFound(String),
    #[error("{0}")]
    RuleNotFound(String),
    #[error("A load balancer with the same name '{0}' exists, but with different settings")]
    DuplicateLoadBalancerName(String),
    #[error("A target group with the same name '{0}' exists, but with different settings")]
    DuplicateTargetGroupName(String),
    #[error("A listener already exists on port {port} of load balancer '{load_balancer}'")]
    DuplicateListener { port: u16, load_balancer: String },
    #[error("Tag key was specified more than once: {0}")]
    DuplicateTagKeys(String),
    #[error("Priority '{0}' is currently in use")]
    PriorityInUse(u32),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("{0}")]
    InvalidConfigurationRequest(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    SubnetNotFound(String),
    #[error("{0}")]
    InvalidSubnet(String),
    #[error("{0}")]
    InvalidSecurityGroup(String),
    #[error("{0}")]
    InvalidLoadBalancerAction(String),
    #[error("{0}")]
    IncompatibleProtocols(String),
    #[error("{0}")]
    TargetGroupAssociationLimit(String),
    /// A quota of [`super::limits`] is reached: which one, and the message.
    #[error("{message}")]
    TooMany { limit: Limit, message: String },
}

/// The quotas whose excess has an error code of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    LoadBalancers,
    TargetGroups,
    Listeners,
    Rules,
    Targets,
    Tags,
    Actions,
    TargetGroupsPerAction,
}

impl ElbError {
    /// The ELB error code a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            ElbError::Validation(_) | ElbError::Unsupported(_) => "ValidationError",
            ElbError::LoadBalancerNotFound(_) => "LoadBalancerNotFound",
            ElbError::TargetGroupNotFound(_) => "TargetGroupNotFound",
            ElbError::ListenerNotFound(_) => "ListenerNotFound",
            ElbError::RuleNotFound(_) => "RuleNotFound",
            ElbError::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            ElbError::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            ElbError::DuplicateListener { .. } => "DuplicateListener",
            ElbError::DuplicateTagKeys(_) => "DuplicateTagKeys",
            ElbError::PriorityInUse(_) => "PriorityInUse",
            ElbError::ResourceInUse(_) => "ResourceInUse",
            ElbError::OperationNotPermitted(_) => "OperationNotPermitted",
            ElbError::InvalidConfigurationRequest(_) => "InvalidConfigurationRequest",
            ElbError::InvalidTarget(_) => "InvalidTarget",
            ElbError::SubnetNotFound(_) => "SubnetNotFound",
            ElbError::InvalidSubnet(_) => "InvalidSubnet",
            ElbError::InvalidSecurityGroup(_) => "InvalidSecurityGroup",
            ElbError::InvalidLoadBalancerAction(_) => "InvalidLoadBalancerAction",
            ElbError::IncompatibleProtocols(_) => "IncompatibleProtocols",
            ElbError::TargetGroupAssociationLimit(_) => "TargetGroupAssociationLimit",
            ElbError::TooMany { limit, .. } => match limit {
                Limit::LoadBalancers => "TooManyLoadBalancers",
                Limit::TargetGroups => "TooManyTargetGroups",
                Limit::Listeners => "TooManyListeners",
                Limit::Rules => "TooManyRules",
                Limit::Targets => "TooManyTargets",
                Limit::Tags => "TooManyTags",
                Limit::Actions => "TooManyActions",
                Limit::TargetGroupsPerAction => "TooManyTargetGroups",
            },
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ElbError::Validation(message.into())
    }

    /// What Berth does not do, refused by name.
    pub fn unsupported(message: impl Into<String>) -> Self {
        ElbError::Unsupported(message.into())
    }

    pub fn too_many(limit: Limit, message: impl Into<String>) -> Self {
        ElbError::TooMany { limit, message: message.into() }
    }

    /// `LoadBalancerNotFound` for load balancers asked for by ARN.
    pub fn load_balancers_not_found() -> Self {
        ElbError::LoadBalancerNotFound("One or more load balancers not found".into())
    }

    pub fn target_groups_not_found() -> Self {
        ElbError::TargetGroupNotFound("One or more target groups not found".into())
    }

    pub fn listeners_not_found() -> Self {
        ElbError::ListenerNotFound("One or more listeners not found".into())
    }

    pub fn rules_not_found() -> Self {
        ElbError::RuleNotFound("One or more rules not found".into())
    }

    /// A target group a listener or rule names that does not exist.
    pub fn target_group_not_found(arn: &str) -> Self {
        ElbError::TargetGroupNotFound(format!("Target group '{arn}' not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_elb_writes_them() {
        let e = ElbError::DuplicateLoadBalancerName("web".into());
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (
                "DuplicateLoadBalancerName",
                "A load balancer with the same name 'web' exists, but with different settings"
            )
        );
        assert_eq!(ElbError::PriorityInUse(5).to_string(), "Priority '5' is currently in use");
        assert_eq!(ElbError::unsupported("no HTTPS").code(), "ValidationError");
        assert_eq!(ElbError::too_many(Limit::Rules, "x").code(), "TooManyRules");
    }
}
