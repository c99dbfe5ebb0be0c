//! What can be wrong with a request on the VPC model: each error names the EC2 error code a
//! client sees ([`VpcError::code`]) and reads as EC2's message (its `Display`), so the EC2
//! handlers answer it as it is and the ECS side can quote it.

use thiserror::Error;

/// The kinds of EC2 resource ids, for malformed-id and not-found errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Vpc,
    Subnet,
    SecurityGroup,
    NetworkInterface,
    SecurityGroupRule,
}

impl IdKind {
    /// The prefix of ids of this kind (`vpc`, `subnet`, ...), without the dash.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Vpc => "vpc",
            IdKind::Subnet => "subnet",
            IdKind::SecurityGroup => "sg",
            IdKind::NetworkInterface => "eni",
            IdKind::SecurityGroupRule => "sgr",
        }
    }

    fn malformed_code(self) -> &'static str {
        match self {
            IdKind::Vpc => "InvalidVpcID.Malformed",
            IdKind::Subnet => "InvalidSubnetID.Malformed",
            IdKind::SecurityGroup => "InvalidGroupId.Malformed",
            IdKind::NetworkInterface => "InvalidNetworkInterfaceID.Malformed",
            IdKind::SecurityGroupRule => "InvalidSecurityGroupRuleId.Malformed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VpcError {
    #[error("Invalid id: \"{id}\" (expecting \"{}-...\")", kind.prefix())]
    Malformed { kind: IdKind, id: String },
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    #[error("The security group '{0}' does not exist")]
    GroupNotFound(String),
    /// A group named (not by id) in the default VPC, as EC2 looks names up.
    #[error("The security group '{name}' does not exist in default VPC '{vpc}'")]
    GroupNameNotFound { name: String, vpc: String },
    #[error("The networkInterface ID '{0}' does not exist")]
    NetworkInterfaceNotFound(String),
    #[error("The security group rule ID '{0}' does not exist")]
    RuleNotFound(String),
    #[error("The prefix list ID '{0}' does not exist")]
    PrefixListNotFound(String),
    /// CreateTags, DeleteTags: an id of no kind Berth keeps.
    #[error("The ID '{0}' is not valid")]
    InvalidId(String),
    #[error("The security group '{name}' already exists for VPC '{vpc}'")]
    GroupDuplicate { name: String, vpc: String },
    /// EC2's description of the rule: `peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW`.
    #[error("the specified rule \"{0}\" already exists")]
    PermissionDuplicate(String),
    #[error("The specified rule does not exist in this security group.")]
    PermissionNotFound,
    #[error("The maximum number of rules per security group has been reached.")]
    RuleLimit,
    #[error("The maximum number of Tags for a resource has been reached.")]
    TagLimit,
    #[error("The subnet '{0}' has dependencies and cannot be deleted.")]
    SubnetInUse(String),
    #[error("The vpc '{0}' has dependencies and cannot be deleted.")]
    VpcInUse(String),
    #[error("resource {0} has a dependent object")]
    GroupInUse(String),
    #[error("the specified group: \"{0}\" name: \"default\" cannot be deleted by a user")]
    DefaultGroup(String),
    #[error("The CIDR '{0}' is invalid.")]
    SubnetRange(String),
    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),
    #[error("The CIDR '{0}' is invalid.")]
    VpcRange(String),
    #[error("No default VPC for this user")]
    NoDefaultVpc,
    /// No subnet of a request has an address left.
    #[error("The specified subnet does not have enough free addresses to satisfy the request.")]
    NoFreeAddress,
    /// The public address block of the instance a task was placed on has none left.
    #[error("No public IPv4 address is left in {0}, the public address block of the Fargate host chosen.")]
    NoFreePublicAddress(String),
    /// `InvalidPermission.Malformed`: a port or ICMP type out of range.
    #[error("{0}")]
    PermissionMalformed(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// `InvalidParameter`: resources of different networks named together.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    MissingParameter(String),
}

impl VpcError {
    /// The EC2 error code a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            VpcError::Malformed { kind, .. } => kind.malformed_code(),
            VpcError::VpcNotFound(_) => "InvalidVpcID.NotFound",
            VpcError::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            VpcError::GroupNotFound(_) | VpcError::GroupNameNotFound { .. } => "InvalidGroup.NotFound",
            VpcError::NetworkInterfaceNotFound(_) => "InvalidNetworkInterfaceID.NotFound",
            VpcError::RuleNotFound(_) => "InvalidSecurityGroupRuleId.NotFound",
            VpcError::PrefixListNotFound(_) => "InvalidPrefixListId.NotFound",
            VpcError::InvalidId(_) => "InvalidID",
            VpcError::GroupDuplicate { .. } => "InvalidGroup.Duplicate",
            VpcError::PermissionDuplicate(_) => "InvalidPermission.Duplicate",
            VpcError::PermissionNotFound => "InvalidPermission.NotFound",
            VpcError::RuleLimit => "RulesPerSecurityGroupLimitExceeded",
            VpcError::TagLimit => "TagLimitExceeded",
            VpcError::SubnetInUse(_) | VpcError::VpcInUse(_) | VpcError::GroupInUse(_) => "DependencyViolation",
            VpcError::DefaultGroup(_) => "CannotDelete",
            VpcError::SubnetRange(_) => "InvalidSubnet.Range",
            VpcError::SubnetConflict(_) => "InvalidSubnet.Conflict",
            VpcError::VpcRange(_) => "InvalidVpc.Range",
            VpcError::NoDefaultVpc => "VPCIdNotSpecified",
            VpcError::NoFreeAddress => "InsufficientFreeAddressesInSubnet",
            VpcError::NoFreePublicAddress(_) => "AddressLimitExceeded",
            VpcError::PermissionMalformed(_) => "InvalidPermission.Malformed",
            VpcError::InvalidParameterValue(_) => "InvalidParameterValue",
            VpcError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            VpcError::InvalidParameter(_) => "InvalidParameter",
            VpcError::MissingParameter(_) => "MissingParameter",
        }
    }

    /// The not-found error of a resource of `kind`.
    pub fn not_found(kind: IdKind, id: &str) -> Self {
        let id = id.to_string();
        match kind {
            IdKind::Vpc => VpcError::VpcNotFound(id),
            IdKind::Subnet => VpcError::SubnetNotFound(id),
            IdKind::SecurityGroup => VpcError::GroupNotFound(id),
            IdKind::SecurityGroupRule => VpcError::RuleNotFound(id),
            IdKind::NetworkInterface => VpcError::NetworkInterfaceNotFound(id),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        VpcError::InvalidParameterValue(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_ec2_writes_them() {
        let e = VpcError::Malformed { kind: IdKind::SecurityGroup, id: "web".into() };
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("InvalidGroupId.Malformed", "Invalid id: \"web\" (expecting \"sg-...\")")
        );
        let e = VpcError::PermissionDuplicate("peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW".into());
        assert_eq!(
            e.to_string(),
            "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW\" already exists"
        );
        assert_eq!(VpcError::SubnetInUse("subnet-1".into()).code(), "DependencyViolation");
    }
}
