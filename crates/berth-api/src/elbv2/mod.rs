//! Elastic Load Balancing v2 (AWS query protocol, signing name `elasticloadbalancing`): the
//! dispatch table. One module per resource; the load balancer itself comes with its own
//! issue, so today's operations answer for an account that has none yet.

mod load_balancers;

use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the model not in the table answer `OperationNotPermitted`, the model's own
/// name for an operation it refuses.
pub static SERVICE: Service = Service {
    name: "ELBv2",
    model: &shapes::ELBV2,
    operations: operations! {
        "DescribeLoadBalancers" => |ctx, input| load_balancers::describe(ctx, input),
    },
    body_limit: 1024 * 1024,
    invalid_input: "ValidationError",
    unimplemented: "OperationNotPermitted",
};
