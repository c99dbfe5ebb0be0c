//! Security groups: CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup. A
//! group named by name is looked up in the default VPC, as EC2 does.

use berth_control::vpc::groups::{self, SecurityGroupRecord, SgRule};
use berth_control::vpc::permissions::Peer;
use berth_control::vpc::{IdKind, defaults, vpcs};
use serde_json::{Value, json};

use super::security_group_rules::ip_permissions;
use super::{Listing, arn, describe_listed, ready, tag_field, tag_specifications, tags_out};
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiResult;

/// The filters of DescribeSecurityGroups Berth answers.
const FILTERS: &[&str] = &[
    "description",
    "egress.ip-permission.cidr",
    "egress.ip-permission.from-port",
    "egress.ip-permission.group-id",
    "egress.ip-permission.ipv6-cidr",
    "egress.ip-permission.protocol",
    "egress.ip-permission.to-port",
    "egress.ip-permission.user-id",
    "group-id",
    "group-name",
    "ip-permission.cidr",
    "ip-permission.from-port",
    "ip-permission.group-id",
    "ip-permission.ipv6-cidr",
    "ip-permission.protocol",
    "ip-permission.to-port",
    "ip-permission.user-id",
    "owner-id",
    "vpc-id",
    "tag:",
    "tag-key",
    "tag-value",
];

fn output(ctx: &Ctx<'_>, g: &SecurityGroupRecord) -> Value {
    json!({
        "GroupId": g.id,
        "GroupName": g.name,
        "Description": g.description,
        "VpcId": g.vpc_id,
        "OwnerId": ctx.config().account,
        "SecurityGroupArn": arn(ctx, "security-group", &g.id),
        "IpPermissions": ip_permissions(&g.ingress),
        "IpPermissionsEgress": ip_permissions(&g.egress),
        "Tags": tags_out(&g.tags),
    })
}

/// A rule's values for an `ip-permission.*` filter.
fn rule_field(rule: &SgRule, filter: &str) -> Option<String> {
    let port = |p: Option<i32>| p.unwrap_or(-1).to_string();
    match (filter, &rule.peer) {
        ("cidr", Peer::Ipv4(net)) => Some(net.to_string()),
        ("ipv6-cidr", Peer::Ipv6(net)) => Some(net.to_string()),
        ("group-id", Peer::Group { group_id, .. }) => Some(group_id.clone()),
        ("user-id", Peer::Group { user_id, .. }) => Some(user_id.clone()),
        ("protocol", _) => Some(rule.protocol.name()),
        ("from-port", _) => Some(port(rule.from_port)),
        ("to-port", _) => Some(port(rule.to_port)),
        _ => None,
    }
}

fn field(g: &SecurityGroupRecord, account: &str, filter: &str) -> Vec<String> {
    if let Some(values) = tag_field(&g.tags, filter) {
        return values;
    }
    if let Some(f) = filter.strip_prefix("egress.ip-permission.") {
        return g.egress.iter().filter_map(|r| rule_field(r, f)).collect();
    }
    if let Some(f) = filter.strip_prefix("ip-permission.") {
        return g.ingress.iter().filter_map(|r| rule_field(r, f)).collect();
    }
    let one = match filter {
        "description" => g.description.clone(),
        "group-id" => g.id.clone(),
        "group-name" => g.name.clone(),
        "owner-id" => account.into(),
        "vpc-id" => g.vpc_id.clone(),
        _ => return Vec::new(),
    };
    vec![one]
}

pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let listing = Listing { kind: IdKind::SecurityGroup, ids: "GroupIds", filters: FILTERS, member: "SecurityGroups" };
    super::no_paging_with_ids(&input, "GroupNames")?;
    // Names name groups of the default VPC.
    let mut named = Vec::new();
    for name in strings(&input, "GroupNames") {
        named.push(groups::get_by_name(&ctx.region, &name)?.record.id);
    }
    let mut all = groups::list(&ctx.region)?;
    if !named.is_empty() {
        all.retain(|g| named.contains(&g.id));
    }
    let account = ctx.config().account.clone();
    describe_listed(&input, &listing, &all, |g| &g.id, |g, f| field(g, &account, f), |g| output(ctx, g))
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let tags = tag_specifications(&input, "security-group")?;
    ready(ctx).await?;
    let vpc = match text(&input, "VpcId") {
        Some(id) => vpcs::get(&ctx.region, id)?.record,
        None => defaults::require_default_vpc(&ctx.region)?,
    };
    let name = text(&input, "GroupName").unwrap_or_default();
    let description = text(&input, "Description").unwrap_or_default();
    let group = groups::create(&ctx.region, &vpc, name, description, tags).await?;
    Ok(json!({
        "GroupId": group.id,
        "SecurityGroupArn": arn(ctx, "security-group", &group.id),
        "Tags": tags_out(&group.tags),
    }))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let id = groups::delete(&ctx.region, text(&input, "GroupId"), text(&input, "GroupName")).await?;
    Ok(json!({"Return": true, "GroupId": id}))
}
