//! Network interfaces: DescribeNetworkInterfaces. Berth makes one interface per awsvpc task
//! (`berth_control::vpc::enis`) and removes it when the task stops; every interface is
//! requester-managed (by ECS, as Fargate's are) and attached to its task.

use std::collections::HashMap;

use berth_control::vpc::enis::{self, EniRecord};
use berth_control::vpc::{IdKind, groups, zones};
use serde_json::{Value, json};

use super::{Listing, describe_listed, flag, ready, refuse, tag_field, tags_out};
use crate::ecs::{Ctx, Obj};
use crate::error::ApiResult;

/// The filters of DescribeNetworkInterfaces Berth answers.
const FILTERS: &[&str] = &[
    "addresses.primary",
    "addresses.private-ip-address",
    "association.public-ip",
    "attachment.attachment-id",
    "attachment.status",
    "availability-zone",
    "description",
    "group-id",
    "group-name",
    "interface-type",
    "mac-address",
    "network-interface-id",
    "owner-id",
    "private-dns-name",
    "private-ip-address",
    "requester-managed",
    "status",
    "subnet-id",
    "vpc-id",
    "tag:",
    "tag-key",
    "tag-value",
];

/// Who made the interfaces, as EC2 reports the requester of managed interfaces.
const REQUESTER: &str = "amazon-ecs";

fn output(ctx: &Ctx<'_>, r: &EniRecord, names: &HashMap<String, String>) -> Value {
    let eni = &r.eni;
    let association = eni.public_ip.map(|ip| json!({"PublicIp": ip.to_string(), "IpOwnerId": "amazon"}));
    let mut primary = json!({
        "Primary": true,
        "PrivateIpAddress": eni.private_ip.to_string(),
        "PrivateDnsName": eni.private_dns_name,
    });
    let mut out = json!({
        "NetworkInterfaceId": eni.id,
        "SubnetId": eni.subnet_id,
        "VpcId": eni.vpc_id,
        "AvailabilityZone": r.zone,
        "AvailabilityZoneId": zones::zone_id(&ctx.caller.region, &r.zone),
        "Description": r.description(),
        "Groups": eni.security_groups.iter().map(|g| json!({
            "GroupId": g,
            "GroupName": names.get(g).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "InterfaceType": "interface",
        "MacAddress": eni.mac,
        "OwnerId": ctx.config().account,
        "PrivateDnsName": eni.private_dns_name,
        "PrivateIpAddress": eni.private_ip.to_string(),
        "RequesterId": REQUESTER,
        "RequesterManaged": true,
        "SourceDestCheck": true,
        "Status": "in-use",
        "Attachment": {
            "AttachmentId": r.attachment_id,
            "AttachTime": r.attached_at,
            "DeleteOnTermination": true,
            "DeviceIndex": 1,
            "NetworkCardIndex": 0,
            "Status": "attached",
        },
        "Ipv6Addresses": [],
        "TagSet": tags_out(&r.tags),
    });
    if let Some(association) = association {
        primary["Association"] = association.clone();
        out["Association"] = association;
    }
    out["PrivateIpAddresses"] = json!([primary]);
    out
}

fn field(r: &EniRecord, names: &HashMap<String, String>, account: &str, filter: &str) -> Vec<String> {
    if let Some(values) = tag_field(&r.tags, filter) {
        return values;
    }
    let eni = &r.eni;
    let one = match filter {
        "addresses.primary" | "requester-managed" => flag(true),
        "addresses.private-ip-address" | "private-ip-address" => eni.private_ip.to_string(),
        "association.public-ip" => match eni.public_ip {
            Some(ip) => ip.to_string(),
            None => return Vec::new(),
        },
        "attachment.attachment-id" => r.attachment_id.clone(),
        "attachment.status" => "attached".into(),
        "availability-zone" => r.zone.clone(),
        "description" => r.description(),
        "group-id" => return eni.security_groups.clone(),
        "group-name" => return eni.security_groups.iter().filter_map(|g| names.get(g).cloned()).collect(),
        "interface-type" => "interface".into(),
        "mac-address" => eni.mac.clone(),
        "network-interface-id" => eni.id.clone(),
        "owner-id" => account.into(),
        "private-dns-name" => eni.private_dns_name.clone(),
        "status" => "in-use".into(),
        "subnet-id" => eni.subnet_id.clone(),
        "vpc-id" => eni.vpc_id.clone(),
        _ => return Vec::new(),
    };
    vec![one]
}

pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "DescribeNetworkInterfaces", &["IncludeManagedResources"])?;
    ready(ctx).await?;
    let listing = Listing {
        kind: IdKind::NetworkInterface,
        ids: "NetworkInterfaceIds",
        filters: FILTERS,
        member: "NetworkInterfaces",
    };
    let names: HashMap<String, String> = groups::list(&ctx.region)?.into_iter().map(|g| (g.id, g.name)).collect();
    let account = ctx.config().account.clone();
    let all = enis::list(&ctx.region)?;
    describe_listed(
        &input,
        &listing,
        &all,
        |r| &r.eni.id,
        |r, f| field(r, &names, &account, f),
        |r| output(ctx, r, &names),
    )
}
