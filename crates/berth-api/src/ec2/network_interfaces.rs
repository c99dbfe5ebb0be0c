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

#[cfg(test)]
mod tests {
    use berth_control::vpc::{EniRequest, allocate_eni_ops, subnets};
    use berth_store::Txn;
    use serde_json::json;

    use crate::sigv4::Caller;
    use crate::testing::{ACCOUNT, Harness, REGION};

    use super::*;

    async fn ec2(h: &Harness, operation: &str, input: Value) -> Result<Value, (String, String)> {
        let caller = Caller { access_key: String::new(), region: REGION.into() };
        let ctx = Ctx::new(&h.app, caller, h.app.control.clock.now(), 0);
        let input: Obj = serde_json::from_value(input).unwrap();
        super::super::SERVICE.call(&ctx, operation, input).await.map_err(|e| (e.code.to_string(), e.message))
    }

    /// An interface allocated for a task (as the ECS side does) shows in EC2's shape, with
    /// its groups' names, and the filters find it.
    #[tokio::test]
    async fn a_task_interface_is_described() {
        let h = Harness::new();
        ec2(&h, "DescribeVpcs", json!({})).await.unwrap();
        let region = h.app.control.region(REGION);
        let subnet = subnets::list(&region).unwrap().remove(0);
        let subnet_ids = [subnet.id.clone()];
        let task = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/1");
        let req = EniRequest {
            subnets: &subnet_ids,
            security_groups: &[],
            assign_public_ip: true,
            public_pool: None,
            task_arn: &task,
        };
        let (eni, compares, ops) = allocate_eni_ops(&region, &req).unwrap();
        assert!(region.store().txn(Txn::new().when(compares).and_then(ops)).await.unwrap().succeeded);

        let out = ec2(&h, "DescribeNetworkInterfaces", json!({})).await.unwrap();
        let i = &out["NetworkInterfaces"][0];
        assert_eq!(i["NetworkInterfaceId"], eni.id);
        assert_eq!((i["SubnetId"].clone(), i["AvailabilityZone"].clone()), (json!(subnet.id), json!("us-east-1a")));
        assert_eq!(i["PrivateIpAddress"], eni.private_ip.to_string());
        assert_eq!(i["MacAddress"], eni.mac);
        assert_eq!(i["Groups"][0]["GroupName"], "default");
        assert_eq!((i["Status"].clone(), i["Attachment"]["Status"].clone()), (json!("in-use"), json!("attached")));
        assert_eq!(i["Description"], format!("Berth awsvpc interface of {task}"));

        let by = |name: &str, value: &str| json!({"Filters": [{"Name": name, "Values": [value]}]});
        let found = |out: Value| out["NetworkInterfaces"].as_array().unwrap().len();
        assert_eq!(
            found(
                ec2(&h, "DescribeNetworkInterfaces", by("private-ip-address", &eni.private_ip.to_string()))
                    .await
                    .unwrap()
            ),
            1
        );
        assert_eq!(found(ec2(&h, "DescribeNetworkInterfaces", by("group-name", "default")).await.unwrap()), 1);
        assert_eq!(
            found(ec2(&h, "DescribeNetworkInterfaces", by("subnet-id", "subnet-0000000000000000f")).await.unwrap()),
            0
        );
        let one = ec2(&h, "DescribeNetworkInterfaces", json!({"NetworkInterfaceIds": [eni.id]})).await.unwrap();
        assert_eq!(found(one), 1);
        // The subnet counts the address, and cannot go while it is held.
        let s = ec2(&h, "DescribeSubnets", json!({"SubnetIds": [subnet.id]})).await.unwrap();
        assert_eq!(s["Subnets"][0]["AvailableIpAddressCount"], 4090);
        let e = ec2(&h, "DeleteSubnet", json!({"SubnetId": subnet.id})).await.unwrap_err();
        assert_eq!(e.0, "DependencyViolation");
        // Tags reach it.
        ec2(&h, "CreateTags", json!({"Resources": [eni.id], "Tags": [{"Key": "k", "Value": "v"}]})).await.unwrap();
        let tagged = ec2(&h, "DescribeNetworkInterfaces", by("tag:k", "v")).await.unwrap();
        assert_eq!(tagged["NetworkInterfaces"][0]["TagSet"], json!([{"Key": "k", "Value": "v"}]));
    }
}
