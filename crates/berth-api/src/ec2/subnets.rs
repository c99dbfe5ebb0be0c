//! Subnets: DescribeSubnets, CreateSubnet, DeleteSubnet. IPv4 only, in one of the region's
//! availability zones; the available address count is the subnet's size less AWS's five
//! reserved addresses and the addresses network interfaces hold now.

use std::collections::HashMap;

use berth_control::vpc::subnets::{self, Block, NewSubnet, SubnetRecord};
use berth_control::vpc::{IdKind, VpcError, cidr, vpcs, zones};
use serde_json::{Value, json};

use super::{Listing, arn, describe_listed, flag, invalid, ready, refuse, tag_field, tag_specifications, tags_out};
use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};

/// The filters of DescribeSubnets Berth answers.
const FILTERS: &[&str] = &[
    "availability-zone",
    "availability-zone-id",
    "available-ip-address-count",
    "cidr",
    "cidr-block",
    "cidrBlock",
    "default-for-az",
    "defaultForAz",
    "ipv6-native",
    "map-customer-owned-ip-on-launch",
    "map-public-ip-on-launch",
    "owner-id",
    "state",
    "subnet-arn",
    "subnet-id",
    "vpc-id",
    "tag:",
    "tag-key",
    "tag-value",
];

fn output(ctx: &Ctx<'_>, s: &SubnetRecord, used: &HashMap<String, usize>) -> Value {
    json!({
        "SubnetId": s.id,
        "SubnetArn": arn(ctx, "subnet", &s.id),
        "VpcId": s.vpc_id,
        "CidrBlock": s.cidr.to_string(),
        "AvailabilityZone": s.zone,
        "AvailabilityZoneId": zones::zone_id(&ctx.caller.region, &s.zone),
        "AvailableIpAddressCount": s.available(used.get(&s.id).copied().unwrap_or(0)),
        "DefaultForAz": s.default_for_az,
        "MapPublicIpOnLaunch": s.map_public_ip_on_launch,
        "MapCustomerOwnedIpOnLaunch": false,
        "AssignIpv6AddressOnCreation": false,
        "Ipv6CidrBlockAssociationSet": [],
        "Ipv6Native": false,
        "EnableDns64": false,
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": false,
            "EnableResourceNameDnsAAAARecord": false,
        },
        "State": "available",
        "OwnerId": ctx.config().account,
        "Tags": tags_out(&s.tags),
    })
}

fn field(ctx: &Ctx<'_>, s: &SubnetRecord, used: &HashMap<String, usize>, filter: &str) -> Vec<String> {
    if let Some(values) = tag_field(&s.tags, filter) {
        return values;
    }
    let one = match filter {
        "availability-zone" => s.zone.clone(),
        "availability-zone-id" => zones::zone_id(&ctx.caller.region, &s.zone),
        "available-ip-address-count" => s.available(used.get(&s.id).copied().unwrap_or(0)).to_string(),
        "cidr" | "cidr-block" | "cidrBlock" => s.cidr.to_string(),
        "default-for-az" | "defaultForAz" => flag(s.default_for_az),
        "ipv6-native" | "map-customer-owned-ip-on-launch" => flag(false),
        "map-public-ip-on-launch" => flag(s.map_public_ip_on_launch),
        "owner-id" => ctx.config().account.clone(),
        "state" => "available".into(),
        "subnet-arn" => arn(ctx, "subnet", &s.id),
        "subnet-id" => s.id.clone(),
        "vpc-id" => s.vpc_id.clone(),
        _ => return Vec::new(),
    };
    vec![one]
}

pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let listing = Listing { kind: IdKind::Subnet, ids: "SubnetIds", filters: FILTERS, member: "Subnets" };
    let used = subnets::used_counts(&ctx.region)?;
    let all = subnets::list(&ctx.region)?;
    describe_listed(&input, &listing, &all, |s| &s.id, |s, f| field(ctx, s, &used, f), |s| output(ctx, s, &used))
}

/// The zone a new subnet goes in: as named (by name or id), else the local agent's default
/// zone, else the first.
fn zone(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<String> {
    let names = zones::zone_names(&ctx.region)?;
    let region = &ctx.caller.region;
    let listed = || names.iter().cloned().collect::<Vec<_>>().join(", ");
    match (text(input, "AvailabilityZone"), text(input, "AvailabilityZoneId")) {
        (Some(_), Some(_)) => Err(ApiError::new(
            400,
            "InvalidParameterCombination",
            "Only one of AvailabilityZone or AvailabilityZoneId may be given",
        )),
        (Some(name), None) => names.get(name).cloned().ok_or_else(|| {
            invalid(format!(
                "Value ({name}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                listed()
            ))
        }),
        (None, Some(id)) => names.iter().find(|n| zones::zone_id(region, n) == id).cloned().ok_or_else(|| {
            invalid(format!("Value ({id}) for parameter availabilityZoneId is invalid. No availability zone has this id."))
        }),
        (None, None) => {
            let local = zones::default_zone(region);
            Ok(if names.contains(&local) { local } else { names.into_iter().next().unwrap_or(local) })
        }
    }
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(
        &input,
        "CreateSubnet",
        &["Ipv4IpamPoolId", "Ipv4NetmaskLength", "Ipv6CidrBlock", "Ipv6IpamPoolId", "Ipv6NetmaskLength", "OutpostArn"],
    )?;
    if input.get("Ipv6Native").and_then(Value::as_bool) == Some(true) {
        return Err(invalid("Berth subnets are IPv4 only: Ipv6Native cannot be true."));
    }
    let vpc_id = text(&input, "VpcId").unwrap_or_default();
    let block = text(&input, "CidrBlock")
        .ok_or_else(|| ApiError::new(400, "MissingParameter", "The request must contain the parameter CidrBlock"))?;
    let net = cidr::parse(block).ok_or_else(|| {
        invalid(format!("Value ({block}) for parameter cidrBlock is invalid. This is not a valid CIDR block."))
    })?;
    let tags = tag_specifications(&input, "subnet")?;
    ready(ctx).await?;
    vpcs::get(&ctx.region, vpc_id)?;
    let zone = zone(ctx, &input)?;
    let new = NewSubnet { vpc_id, block: Block::Given(net), zone: &zone, default_for_az: false, tags, marker: None };
    let subnet = subnets::insert(&ctx.region, new).await?.ok_or_else(|| VpcError::SubnetRange(block.into()))?;
    Ok(json!({ "Subnet": output(ctx, &subnet, &HashMap::new()) }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let id = text(&input, "SubnetId").unwrap_or_default();
    subnets::delete(&ctx.region, id).await?;
    Ok(json!({}))
}
