//! Security group rules as EC2 takes them: a permission (protocol, ports, peers) checked and
//! resolved into one rule per peer, authorized (a rule already there is
//! `InvalidPermission.Duplicate`) and revoked (by permission or by rule id).
//!
//! Protocols are `tcp`, `udp`, `icmp`, `icmpv6` (names in any case, or their numbers 6, 17,
//! 1, 58), any other protocol number 0–255, or `-1` for all. TCP and UDP rules carry a port
//! range; ICMP rules a type and code (-1: all); other protocols apply to every port, and
//! ports given with them are not used, as EC2 documents.

use std::collections::HashSet;

use berth_store::{CmpOp, Compare, Op, Txn};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::groups::{self, Direction, MAX_RULES, SecurityGroupRecord, SgRule};
use super::tags::{self, Tag};
use super::{VpcError, cidr};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Protocol {
    /// `-1`: every protocol.
    All,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Any other IP protocol number.
    Number(u8),
}

impl Protocol {
    /// A protocol as a request names it.
    pub fn parse(text: &str) -> Result<Protocol, VpcError> {
        let unknown = || VpcError::invalid(format!("Invalid value '{text}' for IP protocol. Unknown protocol."));
        Ok(match text.to_ascii_lowercase().as_str() {
            "-1" => Protocol::All,
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "icmp" | "1" => Protocol::Icmp,
            "icmpv6" | "58" => Protocol::Icmpv6,
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                Protocol::Number(n.parse().map_err(|_| unknown())?)
            }
            _ => return Err(unknown()),
        })
    }

    /// As EC2 writes it (`-1`, `tcp`, ..., `47`).
    pub fn name(self) -> String {
        match self {
            Protocol::All => "-1".into(),
            Protocol::Tcp => "tcp".into(),
            Protocol::Udp => "udp".into(),
            Protocol::Icmp => "icmp".into(),
            Protocol::Icmpv6 => "icmpv6".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }

    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }

    pub fn is_icmp(self) -> bool {
        matches!(self, Protocol::Icmp | Protocol::Icmpv6)
    }
}

impl TryFrom<String> for Protocol {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Protocol::parse(&s).map_err(|e| e.to_string())
    }
}

impl From<Protocol> for String {
    fn from(p: Protocol) -> String {
        p.name()
    }
}

/// Who a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    Ipv4(Ipv4Net),
    Ipv6(Ipv6Net),
    /// The members of a security group (of this account, in the same VPC).
    #[serde(rename_all = "camelCase")]
    Group {
        group_id: String,
        user_id: String,
    },
}

impl Peer {
    fn text(&self) -> String {
        match self {
            Peer::Ipv4(net) => net.to_string(),
            Peer::Ipv6(net) => net.to_string(),
            Peer::Group { group_id, .. } => group_id.clone(),
        }
    }
}

/// A rule as a request asks for it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub protocol: Protocol,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub peer: Peer,
    pub description: Option<String>,
}

impl NewRule {
    /// Whether `rule` allows the same traffic (descriptions do not count, as in EC2).
    pub fn same_as(&self, rule: &SgRule) -> bool {
        (self.protocol, self.from_port, self.to_port, &self.peer)
            == (rule.protocol, rule.from_port, rule.to_port, &rule.peer)
    }

    fn key(&self) -> (Protocol, Option<i32>, Option<i32>, &Peer) {
        (self.protocol, self.from_port, self.to_port, &self.peer)
    }

    /// EC2's words for the rule, as its duplicate error quotes them.
    pub fn describe(&self) -> String {
        let peer = self.peer.text();
        let (from, to) = (self.from_port.unwrap_or(-1), self.to_port.unwrap_or(-1));
        match self.protocol {
            Protocol::All => format!("peer: {peer}, ALL, ALLOW"),
            p if p.has_ports() => {
                format!("peer: {peer}, {}, from port: {from}, to port: {to}, ALLOW", p.name().to_uppercase())
            }
            p if p.is_icmp() => format!("peer: {peer}, {}, type: {from}, code: {to}, ALLOW", p.name().to_uppercase()),
            p => format!("peer: {peer}, {}, ALLOW", p.name()),
        }
    }

    pub fn with_id(self, id: String, tags: Vec<Tag>) -> SgRule {
        SgRule {
            id,
            protocol: self.protocol,
            from_port: self.from_port,
            to_port: self.to_port,
            peer: self.peer,
            description: self.description,
            tags,
        }
    }
}

/// What a permission names as a peer, as the request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerTarget {
    Ipv4(String),
    Ipv6(String),
    /// A group by id, or by name in the default VPC; the owner and VPC when given.
    Group {
        id: Option<String>,
        name: Option<String>,
        user_id: Option<String>,
        vpc_id: Option<String>,
    },
    PrefixList(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub target: PeerTarget,
    pub description: Option<String>,
}

/// One `IpPermission` (or the older top-level form) of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSpec {
    pub protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub peers: Vec<PeerSpec>,
}

/// The port range (or ICMP type and code) of a rule of `protocol`.
fn ports(protocol: Protocol, from: Option<i64>, to: Option<i64>) -> Result<(Option<i32>, Option<i32>), VpcError> {
    if protocol.has_ports() {
        let (Some(from), Some(to)) = (from, to) else {
            return Err(VpcError::invalid(
                "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
            ));
        };
        for port in [from, to] {
            if !(0..=65535).contains(&port) {
                return Err(VpcError::PermissionMalformed(format!("TCP/UDP port ({port}) out of range")));
            }
        }
        if from > to {
            return Err(VpcError::invalid(format!(
                "Invalid TCP/UDP port range: from port {from} is above to port {to}"
            )));
        }
        return Ok((Some(from as i32), Some(to as i32)));
    }
    if protocol.is_icmp() {
        let (kind, code) = (from.unwrap_or(-1), to.unwrap_or(-1));
        if !(-1..=255).contains(&kind) {
            return Err(VpcError::PermissionMalformed(format!("ICMP type ({kind}) out of range")));
        }
        if !(-1..=255).contains(&code) {
            return Err(VpcError::PermissionMalformed(format!("ICMP code ({code}) out of range")));
        }
        return Ok((Some(kind as i32), Some(code as i32)));
    }
    Ok((None, None))
}

fn check_description(description: &Option<String>) -> Result<(), VpcError> {
    const ALLOWED: &str = "._-:/()#,@[]+=&;{}!$* ";
    let Some(d) = description else { return Ok(()) };
    let fine = d.chars().count() <= 255 && d.chars().all(|c| c.is_ascii_alphanumeric() || ALLOWED.contains(c));
    if fine {
        return Ok(());
    }
    Err(VpcError::invalid(
        "Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
    ))
}

/// The group a peer names, checked to be of this account and in `group`'s VPC; with the
/// compare that keeps it existing until the change commits.
fn peer_group(
    region: &Region<'_>,
    group: &SecurityGroupRecord,
    id: Option<&str>,
    name: Option<&str>,
    user_id: Option<&str>,
    vpc_id: Option<&str>,
) -> ControlResult<(Peer, Option<Compare>)> {
    let account = &region.config().account;
    if let Some(user) = user_id.filter(|u| *u != account) {
        return Err(VpcError::GroupNotFound(format!("{user}/{}", id.or(name).unwrap_or_default())).into());
    }
    let different =
        || VpcError::InvalidParameter("You have specified two resources that belong to different networks.".into());
    // A rule of a group naming the group itself needs no lookup.
    if id == Some(group.id.as_str())
        || (id.is_none() && name == Some(group.name.as_str()) && is_default_vpc(region, group)?)
    {
        if vpc_id.is_some_and(|v| v != group.vpc_id) {
            return Err(different().into());
        }
        return Ok((Peer::Group { group_id: group.id.clone(), user_id: account.clone() }, None));
    }
    let other = groups::get_by_id_or_name(region, id, name)?;
    if other.record.vpc_id != group.vpc_id || vpc_id.is_some_and(|v| v != group.vpc_id) {
        return Err(different().into());
    }
    let guard = Compare::CreateRevision(other.kv.key.clone(), CmpOp::Equal, other.kv.create_revision);
    Ok((Peer::Group { group_id: other.record.id, user_id: account.clone() }, Some(guard)))
}

fn is_default_vpc(region: &Region<'_>, group: &SecurityGroupRecord) -> ControlResult<bool> {
    Ok(super::defaults::default_vpc(region)?.is_some_and(|v| v.id == group.vpc_id))
}

/// Checks the permissions of a request for `group` and turns them into one rule per peer,
/// with the compares that keep the groups they name existing.
pub fn resolve(
    region: &Region<'_>,
    group: &SecurityGroupRecord,
    specs: &[PermissionSpec],
) -> ControlResult<(Vec<NewRule>, Vec<Compare>)> {
    let mut rules: Vec<NewRule> = Vec::new();
    let mut guards = Vec::new();
    for spec in specs {
        let text = spec.protocol.as_deref().ok_or_else(|| {
            VpcError::invalid(
                "Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly.",
            )
        })?;
        let protocol = Protocol::parse(text)?;
        let (from_port, to_port) = ports(protocol, spec.from_port, spec.to_port)?;
        if spec.peers.is_empty() {
            return Err(VpcError::MissingParameter(
                "Missing source specification: include source security group or CIDR information".into(),
            )
            .into());
        }
        for peer in &spec.peers {
            check_description(&peer.description)?;
            let malformed = |c: &str| VpcError::invalid(format!("CIDR block {c} is malformed"));
            let peer_value = match &peer.target {
                PeerTarget::Ipv4(c) => Peer::Ipv4(cidr::parse(c).ok_or_else(|| malformed(c))?),
                PeerTarget::Ipv6(c) => {
                    let net: Ipv6Net = c.parse().map_err(|_| malformed(c))?;
                    if net.trunc() != net {
                        return Err(malformed(c).into());
                    }
                    Peer::Ipv6(net)
                }
                PeerTarget::PrefixList(id) => return Err(VpcError::PrefixListNotFound(id.clone()).into()),
                PeerTarget::Group { id, name, user_id, vpc_id } => {
                    let (p, guard) = peer_group(
                        region,
                        group,
                        id.as_deref(),
                        name.as_deref(),
                        user_id.as_deref(),
                        vpc_id.as_deref(),
                    )?;
                    guards.extend(guard);
                    p
                }
            };
            let rule =
                NewRule { protocol, from_port, to_port, peer: peer_value, description: peer.description.clone() };
            if rules.iter().any(|r| r.key() == rule.key()) {
                return Err(VpcError::invalid("The same permission must not appear multiple times").into());
            }
            rules.push(rule);
        }
    }
    Ok((rules, guards))
}

/// AuthorizeSecurityGroupIngress/Egress: adds the rules `specs` ask for to the group, each
/// tagged with `rule_tags`. A rule the group already has is `InvalidPermission.Duplicate`,
/// and nothing changes. Returns the new rules.
pub async fn authorize(
    region: &Region<'_>,
    group: (Option<&str>, Option<&str>),
    direction: Direction,
    specs: &[PermissionSpec],
    rule_tags: &[Tag],
) -> ControlResult<(SecurityGroupRecord, Vec<SgRule>)> {
    let mut checked = Vec::new();
    tags::set(&mut checked, rule_tags)?;
    retry(|| async {
        let stored = groups::get_by_id_or_name(region, group.0, group.1)?;
        let mut record = stored.record;
        let (rules, mut compares) = resolve(region, &record, specs)?;
        if let Some(dup) = rules.iter().find(|r| record.rules(direction).iter().any(|e| r.same_as(e))) {
            return Err(VpcError::PermissionDuplicate(dup.describe()).into());
        }
        if record.rules(direction).len() + rules.len() > MAX_RULES {
            return Err(VpcError::RuleLimit.into());
        }
        let added: Vec<SgRule> =
            rules.into_iter().map(|r| r.with_id(region.control.ids.ec2_id("sgr"), checked.clone())).collect();
        record.rules_mut(direction).extend(added.iter().cloned());
        compares.push(Compare::unchanged(&stored.kv.key, stored.kv.mod_revision));
        let txn = Txn::new().when(compares).and_then(vec![Op::put(&stored.kv.key, encode(&record))]);
        let done = region.store().txn(txn).await?.succeeded;
        Ok(done.then(|| (record.clone(), added.clone())))
    })
    .await
}

/// What a revoke did: the rules it removed, and the permissions no rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub group: SecurityGroupRecord,
    pub removed: Vec<SgRule>,
    pub unknown: Vec<NewRule>,
}

/// RevokeSecurityGroupIngress/Egress: removes the rules matching `specs` and the rules
/// `rule_ids` names. A rule id the group does not have in this direction is an error; so is
/// a request of which nothing matched. Permissions that match nothing while others do are
/// reported back (EC2's `UnknownIpPermissions`).
pub async fn revoke(
    region: &Region<'_>,
    group: (Option<&str>, Option<&str>),
    direction: Direction,
    specs: &[PermissionSpec],
    rule_ids: &[String],
) -> ControlResult<Revoked> {
    retry(|| async {
        let stored = groups::get_by_id_or_name(region, group.0, group.1)?;
        let mut record = stored.record;
        let (wanted, _) = resolve(region, &record, specs)?;
        if let Some(missing) = rule_ids.iter().find(|id| !record.rules(direction).iter().any(|r| &r.id == *id)) {
            return Err(VpcError::RuleNotFound(missing.clone()).into());
        }
        let ids: HashSet<&String> = rule_ids.iter().collect();
        let (removed, kept): (Vec<SgRule>, Vec<SgRule>) = record
            .rules(direction)
            .iter()
            .cloned()
            .partition(|r| ids.contains(&r.id) || wanted.iter().any(|w| w.same_as(r)));
        let unknown: Vec<NewRule> = wanted.into_iter().filter(|w| !removed.iter().any(|r| w.same_as(r))).collect();
        if removed.is_empty() {
            return Err(VpcError::PermissionNotFound.into());
        }
        *record.rules_mut(direction) = kept;
        let compares = vec![Compare::unchanged(&stored.kv.key, stored.kv.mod_revision)];
        let txn = Txn::new().when(compares).and_then(vec![Op::put(&stored.kv.key, encode(&record))]);
        let done = region.store().txn(txn).await?.succeeded;
        Ok(done.then(|| Revoked { group: record.clone(), removed: removed.clone(), unknown: unknown.clone() }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(Protocol::parse("TCP").unwrap(), Protocol::Tcp);
        assert_eq!(Protocol::parse("6").unwrap(), Protocol::Tcp);
        assert_eq!(Protocol::parse("-1").unwrap(), Protocol::All);
        assert_eq!(Protocol::parse("47").unwrap(), Protocol::Number(47));
        assert_eq!(Protocol::parse("58").unwrap(), Protocol::Icmpv6);
        for bad in ["all", "256", "", "-2", "gre"] {
            let e = Protocol::parse(bad).unwrap_err();
            assert_eq!(e.to_string(), format!("Invalid value '{bad}' for IP protocol. Unknown protocol."));
        }
        let json = serde_json::to_string(&Protocol::Number(47)).unwrap();
        assert_eq!(json, "\"47\"");
        assert_eq!(serde_json::from_str::<Protocol>("\"udp\"").unwrap(), Protocol::Udp);
    }

    #[test]
    fn ports_follow_the_protocol() {
        assert_eq!(ports(Protocol::Tcp, Some(80), Some(80)).unwrap(), (Some(80), Some(80)));
        assert_eq!(ports(Protocol::All, Some(0), Some(0)).unwrap(), (None, None));
        assert_eq!(ports(Protocol::Icmp, None, None).unwrap(), (Some(-1), Some(-1)));
        assert_eq!(ports(Protocol::Icmp, Some(8), Some(0)).unwrap(), (Some(8), Some(0)));
        assert!(matches!(ports(Protocol::Tcp, Some(80), None), Err(VpcError::InvalidParameterValue(_))));
        let e = ports(Protocol::Udp, Some(-1), Some(-1)).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("InvalidPermission.Malformed", "TCP/UDP port (-1) out of range")
        );
        assert!(ports(Protocol::Tcp, Some(90), Some(80)).is_err());
        assert!(ports(Protocol::Icmp, Some(256), None).is_err());
    }

    #[test]
    fn rules_describe_themselves_as_ec2_does() {
        let rule = |protocol, from, to| NewRule {
            protocol,
            from_port: from,
            to_port: to,
            peer: Peer::Ipv4(cidr::parse("0.0.0.0/0").unwrap()),
            description: None,
        };
        assert_eq!(
            rule(Protocol::Tcp, Some(80), Some(80)).describe(),
            "peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW"
        );
        assert_eq!(rule(Protocol::All, None, None).describe(), "peer: 0.0.0.0/0, ALL, ALLOW");
    }
}
