//! Load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, their
//! attributes, SetSubnets, SetSecurityGroups, SetIpAddressType and
//! DescribeCapacityReservation. Application and network load balancers over IPv4 subnets of
//! one VPC; what ELB offers beyond that (gateway load balancers, dual stack, Elastic IPs and
//! fixed private addresses per subnet, IPAM pools, ...) is refused by name.

use berth_control::elb::ElbError;
use berth_control::elb::arns::LbType;
use berth_control::elb::attributes::{self, Attributed};
use berth_control::elb::load_balancers::{self, LoadBalancerRecord, NewLoadBalancer, Scheme};
use serde_json::{Value, json};

use super::{attributes_in, attributes_out, page, refuse, required, tags_in, validation};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiResult;

pub(crate) fn output(ctx: &Ctx<'_>, lb: &LoadBalancerRecord) -> Value {
    let zones: Vec<Value> = lb
        .zones
        .iter()
        .map(|z| json!({"ZoneName": z.zone, "SubnetId": z.subnet_id, "LoadBalancerAddresses": []}))
        .collect();
    let mut out = json!({
        "LoadBalancerArn": lb.arn,
        "DNSName": lb.dns_name,
        "CanonicalHostedZoneId": lb.hosted_zone_id(&ctx.caller.region),
        "CreatedTime": lb.created,
        "LoadBalancerName": lb.name,
        "Scheme": lb.scheme.as_str(),
        "VpcId": lb.vpc_id,
        "State": {"Code": lb.state.as_str()},
        "Type": lb.lb_type.as_str(),
        "AvailabilityZones": zones,
        "IpAddressType": "ipv4",
    });
    if lb.lb_type == LbType::Application || !lb.security_groups.is_empty() {
        out["SecurityGroups"] = json!(lb.security_groups);
    }
    out
}

/// The subnets of a request: `Subnets` or `SubnetMappings` (their `SubnetId` only).
fn subnets_in(input: &Obj, operation: &str) -> ApiResult<Vec<String>> {
    let subnets = strings(input, "Subnets");
    let Some(mappings) = input.get("SubnetMappings").and_then(Value::as_array) else { return Ok(subnets) };
    if !subnets.is_empty() {
        return Err(validation("You can specify subnets or subnet mappings, not both"));
    }
    let mut out = Vec::new();
    for m in mappings {
        let extra = ["AllocationId", "PrivateIPv4Address", "IPv6Address", "SourceNatIpv6Prefix"];
        if let Some(member) = extra.iter().find(|k| m.get(**k).is_some()) {
            return Err(super::elb(ElbError::unsupported(format!(
                "Berth does not support SubnetMappings.{member} in {operation}: a load balancer listens on the installation's listener address"
            ))));
        }
        out.push(
            m["SubnetId"].as_str().ok_or_else(|| validation("A subnet mapping must specify a SubnetId"))?.to_string(),
        );
    }
    Ok(out)
}

fn ip_address_type(input: &Obj) -> ApiResult<()> {
    match text(input, "IpAddressType") {
        None | Some("ipv4") => Ok(()),
        Some(other) => Err(super::elb(ElbError::unsupported(format!(
            "Berth does not support the IP address type '{other}': its load balancers are IPv4"
        )))),
    }
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "CreateLoadBalancer", &["CustomerOwnedIpv4Pool", "IpamPools", "EnablePrefixForIpv6SourceNat"])?;
    ip_address_type(&input)?;
    let lb_type = match text(&input, "Type").unwrap_or("application") {
        "application" => LbType::Application,
        "network" => LbType::Network,
        other => {
            return Err(super::elb(ElbError::unsupported(format!(
                "Berth does not support load balancers of type '{other}': application and network only"
            ))));
        }
    };
    let scheme = match text(&input, "Scheme") {
        Some("internal") => Scheme::Internal,
        _ => Scheme::InternetFacing,
    };
    let subnets = subnets_in(&input, "CreateLoadBalancer")?;
    let security_groups = input.contains_key("SecurityGroups").then(|| strings(&input, "SecurityGroups"));
    let new = NewLoadBalancer {
        name: required(&input, "Name")?.to_string(),
        lb_type,
        scheme,
        subnets,
        security_groups,
        tags: tags_in(input.get("Tags")),
    };
    crate::ec2::ready(ctx).await?;
    let lb = load_balancers::create(&ctx.region, new).await?;
    Ok(json!({ "LoadBalancers": [output(ctx, &lb)] }))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let names = strings(&input, "Names");
    let arns = strings(&input, "LoadBalancerArns");
    if !names.is_empty() && !arns.is_empty() {
        return Err(validation("Load balancer names and load balancer ARNs cannot be specified at the same time"));
    }
    let mut found = Vec::new();
    for arn in &arns {
        found.push(load_balancers::get(&ctx.region, arn)?.record);
    }
    if !names.is_empty() {
        let mut missing = Vec::new();
        for name in &names {
            match load_balancers::by_name(&ctx.region, name)? {
                Some(lb) => found.push(lb.record),
                None => missing.push(name.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(super::elb(ElbError::LoadBalancerNotFound(format!(
                "Load balancers '[{}]' not found",
                missing.join(", ")
            ))));
        }
    }
    if names.is_empty() && arns.is_empty() {
        found = load_balancers::list(&ctx.region)?;
    }
    let items = found.iter().map(|lb| (lb.name.clone(), output(ctx, lb))).collect();
    page(&input, items, "LoadBalancers")
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    load_balancers::delete(&ctx.region, required(&input, "LoadBalancerArn")?).await?;
    Ok(json!({}))
}

pub fn describe_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let lb = load_balancers::get(&ctx.region, required(&input, "LoadBalancerArn")?)?.record;
    Ok(attributes_out(attributes::describe(lb.owner(), &lb.attributes)))
}

pub async fn modify_attributes(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let arn = required(&input, "LoadBalancerArn")?;
    let lb = load_balancers::modify_attributes(&ctx.region, arn, &attributes_in(&input)).await?;
    Ok(attributes_out(attributes::describe(lb.owner(), &lb.attributes)))
}

pub async fn set_subnets(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "SetSubnets", &["EnablePrefixForIpv6SourceNat"])?;
    ip_address_type(&input)?;
    let subnets = subnets_in(&input, "SetSubnets")?;
    crate::ec2::ready(ctx).await?;
    let lb = load_balancers::set_subnets(&ctx.region, required(&input, "LoadBalancerArn")?, &subnets).await?;
    let out = output(ctx, &lb);
    Ok(json!({"AvailabilityZones": out["AvailabilityZones"], "IpAddressType": "ipv4"}))
}

pub async fn set_security_groups(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "SetSecurityGroups", &["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"])?;
    let groups = strings(&input, "SecurityGroups");
    let lb = load_balancers::set_security_groups(&ctx.region, required(&input, "LoadBalancerArn")?, &groups).await?;
    Ok(json!({"SecurityGroupIds": lb.security_groups}))
}

pub fn set_ip_address_type(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    load_balancers::get(&ctx.region, required(&input, "LoadBalancerArn")?)?;
    ip_address_type(&input)?;
    Ok(json!({"IpAddressType": "ipv4"}))
}

/// No load balancer has reserved capacity: Berth's serve what their machine can.
pub fn capacity_reservation(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    load_balancers::get(&ctx.region, required(&input, "LoadBalancerArn")?)?;
    Ok(json!({"CapacityReservationState": []}))
}
