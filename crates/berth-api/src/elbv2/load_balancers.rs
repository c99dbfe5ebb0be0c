//! Load balancers: DescribeLoadBalancers. Berth cannot create load balancers yet, so every
//! account has none: the list is empty, and any load balancer asked for by name or ARN is
//! `LoadBalancerNotFound`, worded as ELB words it.

use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::{ApiError, ApiResult};

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "ValidationError", message)
}

/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app|net|gwy/NAME/ID`.
fn is_load_balancer_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let kinds = ["loadbalancer/app/", "loadbalancer/net/", "loadbalancer/gwy/"];
    arn.starts_with("arn:")
        && !partition.is_empty()
        && *service == "elasticloadbalancing"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && kinds.iter().any(|k| resource.strip_prefix(k).is_some_and(|rest| rest.split('/').count() == 2))
}

/// `PageSize` (1-400, checked against the model) pages nothing: there is nothing to page.
pub fn describe(_ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let names = strings(&input, "Names");
    let arns = strings(&input, "LoadBalancerArns");
    if !names.is_empty() && !arns.is_empty() {
        return Err(validation("Load balancer names and load balancer ARNs cannot be specified at the same time"));
    }
    if let Some(marker) = text(&input, "Marker") {
        // No answer ever carried a NextMarker, so no marker can be one of ours.
        return Err(validation(format!("The marker '{marker}' is not valid")));
    }
    if let Some(bad) = arns.iter().find(|a| !is_load_balancer_arn(a)) {
        return Err(validation(format!("'{bad}' is not a valid load balancer ARN")));
    }
    if !arns.is_empty() {
        return Err(ApiError::new(400, "LoadBalancerNotFound", "One or more load balancers not found"));
    }
    if !names.is_empty() {
        return Err(ApiError::new(
            400,
            "LoadBalancerNotFound",
            format!("Load balancers '[{}]' not found", names.join(", ")),
        ));
    }
    Ok(json!({ "LoadBalancers": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_arns() {
        assert!(is_load_balancer_arn(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188"
        ));
        assert!(is_load_balancer_arn("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/n/1"));
        assert!(!is_load_balancer_arn("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/t/1"));
        assert!(!is_load_balancer_arn("arn:aws:ecs:us-east-1:000000000000:loadbalancer/app/web/1"));
        assert!(!is_load_balancer_arn("web"));
        assert!(!is_load_balancer_arn("arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/web/1"));
    }
}
