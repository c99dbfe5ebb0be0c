//! Security group rules: AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/
//! Egress and DescribeSecurityGroupRules, and the two shapes EC2 writes rules in — `IpPermission`s (rules grouped by
//! protocol and ports, as DescribeSecurityGroups shows them) and `SecurityGroupRule`s (one
//! per rule, with its id). Requests give permissions as `IpPermissions` or in the older
//! top-level form (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`,
//! `SourceSecurityGroupOwnerId`), not both.

use berth_control::vpc::IdKind;
use berth_control::vpc::groups::{Direction, SecurityGroupRecord, SgRule};
use berth_control::vpc::permissions::{self, NewRule, Peer, PeerSpec, PeerTarget, PermissionSpec, Protocol};
use serde_json::{Map, Value, json};

use super::{Listing, arn, describe_listed, ready, refuse, tag_field, tag_specifications, tags_out};
use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};

const TOP_LEVEL: &[&str] =
    &["IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId"];

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn missing(name: &str) -> ApiError {
    ApiError::new(400, "MissingParameter", format!("The request must contain the parameter {name}"))
}

/// The peers of one `IpPermission`.
fn peers(p: &Value) -> ApiResult<Vec<PeerSpec>> {
    let list = |key: &str| p.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut peers = Vec::new();
    for r in list("IpRanges") {
        let cidr = string(&r, "CidrIp").ok_or_else(|| missing("CidrIp"))?;
        peers.push(PeerSpec { target: PeerTarget::Ipv4(cidr), description: string(&r, "Description") });
    }
    for r in list("Ipv6Ranges") {
        let cidr = string(&r, "CidrIpv6").ok_or_else(|| missing("CidrIpv6"))?;
        peers.push(PeerSpec { target: PeerTarget::Ipv6(cidr), description: string(&r, "Description") });
    }
    for r in list("PrefixListIds") {
        let id = string(&r, "PrefixListId").ok_or_else(|| missing("PrefixListId"))?;
        peers.push(PeerSpec { target: PeerTarget::PrefixList(id), description: string(&r, "Description") });
    }
    for r in list("UserIdGroupPairs") {
        for unsupported in ["VpcPeeringConnectionId", "PeeringStatus"] {
            if r.get(unsupported).is_some() {
                return Err(ApiError::new(
                    400,
                    "UnsupportedOperation",
                    format!(
                        "Berth does not support the parameter UserIdGroupPairs.{unsupported}: it has no VPC peering."
                    ),
                ));
            }
        }
        let (id, name) = (string(&r, "GroupId"), string(&r, "GroupName"));
        if id.is_none() && name.is_none() {
            return Err(missing("GroupId"));
        }
        let target = PeerTarget::Group { id, name, user_id: string(&r, "UserId"), vpc_id: string(&r, "VpcId") };
        peers.push(PeerSpec { target, description: string(&r, "Description") });
    }
    Ok(peers)
}

/// The permissions of a request, in either form.
fn specs(input: &Obj) -> ApiResult<Vec<PermissionSpec>> {
    let top: Vec<&str> = TOP_LEVEL.iter().copied().filter(|k| input.contains_key(*k)).collect();
    let given = input.get("IpPermissions").and_then(Value::as_array).cloned().unwrap_or_default();
    if !given.is_empty() && !top.is_empty() {
        return Err(ApiError::new(
            400,
            "InvalidParameterCombination",
            format!("The parameter IpPermissions cannot be used with the parameter {}", top[0]),
        ));
    }
    let port = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64);
    if top.is_empty() {
        let specs = given.iter().map(|p| {
            Ok(PermissionSpec {
                protocol: string(p, "IpProtocol"),
                from_port: port(p, "FromPort"),
                to_port: port(p, "ToPort"),
                peers: peers(p)?,
            })
        });
        return specs.collect();
    }
    let v = Value::Object(input.clone());
    let mut peers = Vec::new();
    match (string(&v, "CidrIp"), string(&v, "SourceSecurityGroupName")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                400,
                "InvalidParameterCombination",
                "The parameter CidrIp cannot be used with the parameter SourceSecurityGroupName",
            ));
        }
        (Some(cidr), None) => peers.push(PeerSpec { target: PeerTarget::Ipv4(cidr), description: None }),
        (None, Some(name)) => {
            let user_id = string(&v, "SourceSecurityGroupOwnerId");
            let target = PeerTarget::Group { id: None, name: Some(name), user_id, vpc_id: None };
            peers.push(PeerSpec { target, description: None });
        }
        (None, None) if input.contains_key("SourceSecurityGroupOwnerId") => {
            return Err(missing("SourceSecurityGroupName"));
        }
        (None, None) => {}
    }
    // A source group alone means every protocol and port from it.
    let protocol =
        string(&v, "IpProtocol").or_else(|| input.contains_key("SourceSecurityGroupName").then(|| "-1".into()));
    Ok(vec![PermissionSpec { protocol, from_port: port(&v, "FromPort"), to_port: port(&v, "ToPort"), peers }])
}

/// `FromPort`/`ToPort` as EC2 writes them: the range (or ICMP type and code), absent for
/// rules of every protocol.
fn ports(out: &mut Map<String, Value>, protocol: Protocol, from: Option<i32>, to: Option<i32>) {
    if protocol == Protocol::All {
        return;
    }
    out.insert("FromPort".into(), json!(from.unwrap_or(-1)));
    out.insert("ToPort".into(), json!(to.unwrap_or(-1)));
}

fn with_description(mut v: Value, description: &Option<String>) -> Value {
    if let Some(d) = description {
        v["Description"] = json!(d);
    }
    v
}

/// What rules of one `IpPermission` share: protocol and ports (ICMP type and code).
type Traffic = (Protocol, Option<i32>, Option<i32>);

/// Rules grouped into `IpPermission`s by protocol and ports, in the order they first appear.
pub fn ip_permissions<'r>(rules: impl IntoIterator<Item = &'r SgRule>) -> Value {
    let mut groups: Vec<(Traffic, Vec<&SgRule>)> = Vec::new();
    for rule in rules {
        let key = (rule.protocol, rule.from_port, rule.to_port);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(rule),
            None => groups.push((key, vec![rule])),
        }
    }
    let permissions = groups.into_iter().map(|((protocol, from, to), members)| {
        let (mut v4, mut v6, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for r in members {
            match &r.peer {
                Peer::Ipv4(net) => v4.push(with_description(json!({"CidrIp": net.to_string()}), &r.description)),
                Peer::Ipv6(net) => v6.push(with_description(json!({"CidrIpv6": net.to_string()}), &r.description)),
                Peer::Group { group_id, user_id } => {
                    pairs.push(with_description(json!({"GroupId": group_id, "UserId": user_id}), &r.description))
                }
            }
        }
        let mut out = Map::new();
        out.insert("IpProtocol".into(), json!(protocol.name()));
        ports(&mut out, protocol, from, to);
        out.insert("IpRanges".into(), json!(v4));
        out.insert("Ipv6Ranges".into(), json!(v6));
        out.insert("UserIdGroupPairs".into(), json!(pairs));
        out.insert("PrefixListIds".into(), json!([]));
        Value::Object(out)
    });
    Value::Array(permissions.collect())
}

/// A rule as a `SecurityGroupRule`.
pub fn rule_output(ctx: &Ctx<'_>, group: &SecurityGroupRecord, rule: &SgRule, egress: bool) -> Value {
    let mut out = Map::new();
    out.insert("SecurityGroupRuleId".into(), json!(rule.id));
    out.insert("GroupId".into(), json!(group.id));
    out.insert("GroupOwnerId".into(), json!(ctx.config().account));
    out.insert("IsEgress".into(), json!(egress));
    out.insert("IpProtocol".into(), json!(rule.protocol.name()));
    out.insert("FromPort".into(), json!(rule.from_port.unwrap_or(-1)));
    out.insert("ToPort".into(), json!(rule.to_port.unwrap_or(-1)));
    match &rule.peer {
        Peer::Ipv4(net) => out.insert("CidrIpv4".into(), json!(net.to_string())),
        Peer::Ipv6(net) => out.insert("CidrIpv6".into(), json!(net.to_string())),
        Peer::Group { group_id, user_id } => {
            out.insert("ReferencedGroupInfo".into(), json!({"GroupId": group_id, "UserId": user_id}))
        }
    };
    if let Some(d) = &rule.description {
        out.insert("Description".into(), json!(d));
    }
    out.insert("Tags".into(), tags_out(&rule.tags));
    out.insert("SecurityGroupRuleArn".into(), json!(arn(ctx, "security-group-rule", &rule.id)));
    Value::Object(out)
}

fn revoked_output(group: &SecurityGroupRecord, rule: &SgRule, egress: bool) -> Value {
    let mut out = json!({
        "SecurityGroupRuleId": rule.id,
        "GroupId": group.id,
        "IsEgress": egress,
        "IpProtocol": rule.protocol.name(),
        "FromPort": rule.from_port.unwrap_or(-1),
        "ToPort": rule.to_port.unwrap_or(-1),
    });
    match &rule.peer {
        Peer::Ipv4(net) => out["CidrIpv4"] = json!(net.to_string()),
        Peer::Ipv6(net) => out["CidrIpv6"] = json!(net.to_string()),
        Peer::Group { group_id, .. } => out["ReferencedGroupId"] = json!(group_id),
    }
    with_description(out, &rule.description)
}

/// The group a request names: `GroupId`, or (ingress only) `GroupName` in the default VPC.
fn group_named(input: &Obj) -> (Option<&str>, Option<&str>) {
    (text(input, "GroupId"), text(input, "GroupName"))
}

async fn authorize(ctx: &Ctx<'_>, input: Obj, direction: Direction) -> ApiResult<Value> {
    let specs = specs(&input)?;
    if specs.is_empty() {
        return Err(missing("IpPermissions"));
    }
    let tags = tag_specifications(&input, "security-group-rule")?;
    ready(ctx).await?;
    let group = group_named(&input);
    let (record, added) = permissions::authorize(&ctx.region, group, direction, &specs, &tags).await?;
    let egress = direction == Direction::Egress;
    let rules: Vec<Value> = added.iter().map(|r| rule_output(ctx, &record, r, egress)).collect();
    Ok(json!({"Return": true, "SecurityGroupRules": rules}))
}

async fn revoke(ctx: &Ctx<'_>, input: Obj, direction: Direction) -> ApiResult<Value> {
    let specs = specs(&input)?;
    let rule_ids = crate::ecs::strings(&input, "SecurityGroupRuleIds");
    if specs.is_empty() && rule_ids.is_empty() {
        return Err(missing("IpPermissions"));
    }
    ready(ctx).await?;
    let done = permissions::revoke(&ctx.region, group_named(&input), direction, &specs, &rule_ids).await?;
    let egress = direction == Direction::Egress;
    let revoked: Vec<Value> = done.removed.iter().map(|r| revoked_output(&done.group, r, egress)).collect();
    let unknown: Vec<SgRule> =
        done.unknown.into_iter().map(|r: NewRule| r.with_id(String::new(), Vec::new())).collect();
    let mut out = json!({"Return": true, "RevokedSecurityGroupRules": revoked});
    if !unknown.is_empty() {
        out["UnknownIpPermissions"] = ip_permissions(&unknown);
    }
    Ok(out)
}

/// The filters of DescribeSecurityGroupRules.
const FILTERS: &[&str] = &["group-id", "security-group-rule-id", "tag:", "tag-key", "tag-value"];

/// DescribeSecurityGroupRules: every rule of every group, ingress then egress.
pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let listing = Listing {
        kind: IdKind::SecurityGroupRule,
        ids: "SecurityGroupRuleIds",
        filters: FILTERS,
        member: "SecurityGroupRules",
    };
    let groups = berth_control::vpc::groups::list(&ctx.region)?;
    let all: Vec<(&SecurityGroupRecord, &SgRule, bool)> = groups
        .iter()
        .flat_map(|g| g.ingress.iter().map(move |r| (g, r, false)).chain(g.egress.iter().map(move |r| (g, r, true))))
        .collect();
    let field = |(g, r, _): &(&SecurityGroupRecord, &SgRule, bool), f: &str| match f {
        "group-id" => vec![g.id.clone()],
        "security-group-rule-id" => vec![r.id.clone()],
        _ => tag_field(&r.tags, f).unwrap_or_default(),
    };
    describe_listed(&input, &listing, &all, |(_, r, _)| &r.id, field, |(g, r, egress)| rule_output(ctx, g, r, *egress))
}

pub async fn authorize_ingress(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    authorize(ctx, input, Direction::Ingress).await
}

pub async fn authorize_egress(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "AuthorizeSecurityGroupEgress", &["SourceSecurityGroupName", "SourceSecurityGroupOwnerId"])?;
    authorize(ctx, input, Direction::Egress).await
}

pub async fn revoke_ingress(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    revoke(ctx, input, Direction::Ingress).await
}

pub async fn revoke_egress(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse(&input, "RevokeSecurityGroupEgress", &["SourceSecurityGroupName", "SourceSecurityGroupOwnerId"])?;
    revoke(ctx, input, Direction::Egress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn both_request_forms_read_alike() {
        let top =
            specs(&obj(json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}))).unwrap();
        let listed = specs(&obj(json!({"IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ]})))
        .unwrap();
        assert_eq!(top, listed);
        let e = specs(&obj(json!({"IpProtocol": "tcp", "IpPermissions": [{"IpProtocol": "tcp"}]}))).unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        let group = specs(&obj(json!({"SourceSecurityGroupName": "web"}))).unwrap();
        assert_eq!(group[0].protocol.as_deref(), Some("-1"));
        let e = specs(&obj(json!({"IpPermissions": [{"UserIdGroupPairs": [{"VpcPeeringConnectionId": "pcx-1"}]}]})));
        assert_eq!(e.unwrap_err().code, "UnsupportedOperation");
    }

    #[test]
    fn rules_group_into_permissions() {
        let rule = |id: &str, protocol, port: Option<i32>, peer: Peer| SgRule {
            id: id.into(),
            protocol,
            from_port: port,
            to_port: port,
            peer,
            description: None,
            tags: vec![],
        };
        let any = Peer::Ipv4("0.0.0.0/0".parse().unwrap());
        let group = Peer::Group { group_id: "sg-1".into(), user_id: "000000000000".into() };
        let rules = [
            rule("a", Protocol::Tcp, Some(80), any.clone()),
            rule("b", Protocol::All, None, group.clone()),
            rule("c", Protocol::Tcp, Some(80), group),
        ];
        let out = ip_permissions(&rules);
        assert_eq!(out.as_array().unwrap().len(), 2);
        assert_eq!(out[0]["IpRanges"], json!([{"CidrIp": "0.0.0.0/0"}]));
        assert_eq!(out[0]["UserIdGroupPairs"][0]["GroupId"], "sg-1");
        assert_eq!((out[0]["FromPort"].clone(), out[0]["IpProtocol"].clone()), (json!(80), json!("tcp")));
        assert!(out[1].get("FromPort").is_none());
        assert_eq!(out[1]["IpProtocol"], "-1");
    }
}
