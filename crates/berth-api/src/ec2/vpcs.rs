//! VPCs: DescribeVpcs, CreateVpc, DeleteVpc. A VPC has one IPv4 block, no IPv6, default
//! tenancy and the default DHCP options; its `default` security group comes and goes with it.

use berth_control::vpc::{IdKind, cidr, vpcs, vpcs::VpcRecord};
use serde_json::{Value, json};

use super::{Listing, describe_listed, flag, invalid, ready, refuse, tag_field, tag_specifications, tags_out};
use crate::ecs::{Ctx, Obj, text};
use crate::error::ApiResult;

/// The filters of DescribeVpcs Berth answers.
const FILTERS: &[&str] = &[
    "cidr",
    "cidr-block-association.association-id",
    "cidr-block-association.cidr-block",
    "cidr-block-association.state",
    "dhcp-options-id",
    "is-default",
    "owner-id",
    "state",
    "vpc-id",
    "tag:",
    "tag-key",
    "tag-value",
];

/// The DHCP options every VPC reports: Berth has no DHCP option sets.
const DHCP_OPTIONS: &str = "default";

fn output(ctx: &Ctx<'_>, vpc: &VpcRecord) -> Value {
    json!({
        "VpcId": vpc.id,
        "CidrBlock": vpc.cidr.to_string(),
        "CidrBlockAssociationSet": [{
            "AssociationId": vpc.cidr_association_id,
            "CidrBlock": vpc.cidr.to_string(),
            "CidrBlockState": {"State": "associated"},
        }],
        "DhcpOptionsId": DHCP_OPTIONS,
        "State": "available",
        "InstanceTenancy": "default",
        "IsDefault": vpc.is_default,
        "OwnerId": ctx.config().account,
        "Tags": tags_out(&vpc.tags),
    })
}

fn field(vpc: &VpcRecord, account: &str, filter: &str) -> Vec<String> {
    if let Some(values) = tag_field(&vpc.tags, filter) {
        return values;
    }
    let one = match filter {
        "cidr" | "cidr-block-association.cidr-block" => vpc.cidr.to_string(),
        "cidr-block-association.association-id" => vpc.cidr_association_id.clone(),
        "cidr-block-association.state" => "associated".into(),
        "dhcp-options-id" => DHCP_OPTIONS.into(),
        "is-default" => flag(vpc.is_default),
        "owner-id" => account.into(),
        "state" => "available".into(),
        "vpc-id" => vpc.id.clone(),
        _ => return Vec::new(),
    };
    vec![one]
}

pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let listing = Listing { kind: IdKind::Vpc, ids: "VpcIds", filters: FILTERS, member: "Vpcs" };
    let account = ctx.config().account.clone();
    let all = vpcs::list(&ctx.region)?;
    describe_listed(&input, &listing, &all, |v| &v.id, |v, f| field(v, &account, f), |v| output(ctx, v))
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(
        &input,
        "CreateVpc",
        &[
            "AmazonProvidedIpv6CidrBlock",
            "Ipv4IpamPoolId",
            "Ipv4NetmaskLength",
            "Ipv6CidrBlock",
            "Ipv6CidrBlockNetworkBorderGroup",
            "Ipv6IpamPoolId",
            "Ipv6NetmaskLength",
            "Ipv6Pool",
            "VpcEncryptionControl",
        ],
    )?;
    if let Some(tenancy) = text(&input, "InstanceTenancy").filter(|t| *t != "default") {
        return Err(invalid(format!("Berth runs every VPC with default tenancy, not {tenancy}.")));
    }
    let block = text(&input, "CidrBlock").ok_or_else(|| {
        crate::error::ApiError::new(400, "MissingParameter", "The request must contain the parameter CidrBlock")
    })?;
    let net = cidr::parse(block).ok_or_else(|| {
        invalid(format!("Value ({block}) for parameter cidrBlock is invalid. This is not a valid CIDR block."))
    })?;
    let tags = tag_specifications(&input, "vpc")?;
    ready(ctx).await?;
    let vpc = vpcs::create(&ctx.region, net, tags).await?;
    Ok(json!({ "Vpc": output(ctx, &vpc) }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let id = text(&input, "VpcId").unwrap_or_default();
    vpcs::delete(&ctx.region, id).await?;
    Ok(json!({}))
}
