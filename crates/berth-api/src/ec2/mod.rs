//! EC2 (EC2 query protocol, signing name `ec2`): the subset of the API the Fargate work needs
//! (availability zones, VPCs, subnets, security groups, network interfaces, tags; the
//! embedded model holds only those operations). The dispatch table, and helpers the
//! handlers share. One module per resource.

mod availability_zones;
pub mod filters;

use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the embedded subset not in the table answer `UnsupportedOperation`, one of
/// EC2's documented common errors (its model declares none); operations outside the subset
/// answer `InvalidAction`.
pub static SERVICE: Service = Service {
    name: "EC2",
    model: &shapes::EC2,
    operations: operations! {
        "DescribeAvailabilityZones" => |ctx, input| availability_zones::describe(ctx, input),
    },
    body_limit: 1024 * 1024,
    invalid_input: "InvalidParameterValue",
    unimplemented: "UnsupportedOperation",
};

#[cfg(test)]
mod tests {
    use crate::protocol::service::assert_coverage;

    /// docs/api-coverage.md's EC2 table lists exactly the embedded operations, and its
    /// implemented and partial rows are exactly the dispatch table.
    #[test]
    fn coverage_table_is_true() {
        assert_coverage(&super::SERVICE);
    }
}
