//! The rules to enforce on an interface: the ingress and egress rules of its security
//! groups, with each rule naming a group resolved to the private addresses (as /32s) of the
//! interfaces in that group now. The agent re-reads them with every assignment poll, so a
//! rule change or a member coming or going reaches running tasks.
//!
//! What the enforcement sees, as the contract with the task side has it: IPv4 peers only
//! (task interfaces have no IPv6 address, so IPv6 rules and `icmpv6` let nothing through);
//! TCP and UDP with their port range; ICMP as a whole (a rule for one ICMP type allows every
//! ICMP message); other protocols by number, on every port.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::enis::EniRecord;
use super::groups::{SecurityGroupRecord, SgRule};
use super::permissions::{Peer, Protocol};
use super::{read, read_all};
use crate::Region;
use crate::error::ControlResult;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRules {
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// One allowed flow: protocol ("tcp", "udp", "icmp" or "-1" for all; another protocol by its
/// number), inclusive port range (None for all ports / not applicable), and the peer
/// addresses as CIDRs (IPv4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub protocol: String,
    pub ports: Option<(u16, u16)>,
    pub cidrs: Vec<String>,
}

/// The protocol and ports a rule allows, as the enforcement sees them; `None` for rules that
/// can match no IPv4 traffic (`icmpv6`).
fn flow(rule: &SgRule) -> Option<FlowKey> {
    match rule.protocol {
        Protocol::Icmpv6 => None,
        Protocol::Tcp | Protocol::Udp => {
            let ports = rule.from_port.zip(rule.to_port).map(|(f, t)| (f as u16, t as u16));
            Some((rule.protocol.name(), ports))
        }
        p => Some((p.name(), None)),
    }
}

/// A protocol and its port range: what one merged [`Rule`] is keyed by.
type FlowKey = (String, Option<(u16, u16)>);

/// Merges rules of one direction into one [`Rule`] per protocol and port range.
fn merge<'r>(rules: impl Iterator<Item = &'r SgRule>, members: &HashMap<&str, Vec<String>>) -> Vec<Rule> {
    let mut flows: BTreeMap<FlowKey, BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        let Some(key) = flow(rule) else { continue };
        let peers: Vec<String> = match &rule.peer {
            Peer::Ipv4(net) => vec![net.to_string()],
            Peer::Ipv6(_) => continue,
            Peer::Group { group_id, .. } => members.get(group_id.as_str()).cloned().unwrap_or_default(),
        };
        flows.entry(key).or_default().extend(peers);
    }
    flows
        .into_iter()
        .filter(|(_, cidrs)| !cidrs.is_empty())
        .map(|((protocol, ports), cidrs)| Rule { protocol, ports, cidrs: cidrs.into_iter().collect() })
        .collect()
}

/// The rules that apply to an interface in these groups, with source-group references
/// resolved to the private addresses of the ENIs in those groups now. A group that no longer
/// exists contributes nothing.
pub fn effective_rules(region: &Region<'_>, group_ids: &[String]) -> ControlResult<EffectiveRules> {
    let mut groups = Vec::new();
    for id in group_ids {
        match read::<SecurityGroupRecord>(region, &region.keys.security_group(id))? {
            Some(g) => groups.push(g.record),
            None => tracing::warn!(group = %id, "an interface names a security group that does not exist"),
        }
    }
    let (_, enis) = read_all::<EniRecord>(region, &region.keys.network_interfaces())?;
    let mut members: HashMap<&str, Vec<String>> = HashMap::new();
    for eni in &enis {
        for group in &eni.record.eni.security_groups {
            members.entry(group.as_str()).or_default().push(format!("{}/32", eni.record.eni.private_ip));
        }
    }
    Ok(EffectiveRules {
        ingress: merge(groups.iter().flat_map(|g| &g.ingress), &members),
        egress: merge(groups.iter().flat_map(|g| &g.egress), &members),
    })
}

#[cfg(test)]
mod tests {
    use berth_store::Txn;

    use super::super::permissions::{self, PeerSpec, PeerTarget, PermissionSpec};
    use super::super::testing::TestRegion;
    use super::super::{defaults, enis, groups, groups::Direction, subnets};
    use super::*;

    fn rule(protocol: &str, ports: Option<(u16, u16)>, cidrs: &[&str]) -> Rule {
        Rule { protocol: protocol.into(), ports, cidrs: cidrs.iter().map(|c| c.to_string()).collect() }
    }

    async fn interface(region: &Region<'_>, subnet: &str, groups: &[String], task: &str) -> enis::Eni {
        let subnets = [subnet.to_string()];
        let req = enis::EniRequest {
            subnets: &subnets,
            security_groups: groups,
            assign_public_ip: false,
            public_pool: None,
            task_arn: task,
        };
        let (eni, compares, ops) = enis::allocate_eni_ops(region, &req).unwrap();
        assert!(region.store().txn(Txn::new().when(compares).and_then(ops)).await.unwrap().succeeded);
        eni
    }

    fn tcp(port: i64, peer: PeerTarget) -> PermissionSpec {
        PermissionSpec {
            protocol: Some("tcp".into()),
            from_port: Some(port),
            to_port: Some(port),
            peers: vec![PeerSpec { target: peer, description: None }],
        }
    }

    #[tokio::test]
    async fn group_references_resolve_to_member_addresses() {
        let t = TestRegion::new();
        let r = t.region();
        let vpc = defaults::ensure(&r).await.unwrap().unwrap();
        let subnet = subnets::list(&r).unwrap().remove(0).id;
        let web = groups::create(&r, &vpc, "web", "web", vec![]).await.unwrap();
        let db = groups::create(&r, &vpc, "db", "db", vec![]).await.unwrap();
        let by_id = |id: &str| PeerTarget::Group { id: Some(id.into()), name: None, user_id: None, vpc_id: None };
        let any = PeerTarget::Ipv4("0.0.0.0/0".into());
        permissions::authorize(&r, (Some(&web.id), None), Direction::Ingress, &[tcp(80, any)], &[]).await.unwrap();
        permissions::authorize(&r, (Some(&db.id), None), Direction::Ingress, &[tcp(5432, by_id(&web.id))], &[])
            .await
            .unwrap();

        // No web member yet: the db's rule lets nobody in.
        let db_rules = effective_rules(&r, std::slice::from_ref(&db.id)).unwrap();
        assert_eq!(db_rules.ingress, []);
        assert_eq!(db_rules.egress, [rule("-1", None, &["0.0.0.0/0"])]);

        let w1 = interface(&r, &subnet, std::slice::from_ref(&web.id), "task/w1").await;
        let w2 = interface(&r, &subnet, std::slice::from_ref(&web.id), "task/w2").await;
        let mut members = vec![format!("{}/32", w1.private_ip), format!("{}/32", w2.private_ip)];
        members.sort();
        let db_rules = effective_rules(&r, std::slice::from_ref(&db.id)).unwrap();
        assert_eq!(db_rules.ingress, [Rule { protocol: "tcp".into(), ports: Some((5432, 5432)), cidrs: members }]);
        let web_rules = effective_rules(&r, std::slice::from_ref(&web.id)).unwrap();
        assert_eq!(web_rules.ingress, [rule("tcp", Some((80, 80)), &["0.0.0.0/0"])]);

        // The default group lets its own members in; two groups' rules merge.
        let d = interface(&r, &subnet, &[], "task/d").await;
        let both = effective_rules(&r, &[vpc.default_group_id.clone(), web.id.clone()]).unwrap();
        assert!(both.ingress.contains(&rule("-1", None, &[&format!("{}/32", d.private_ip)])));
        assert!(both.ingress.contains(&rule("tcp", Some((80, 80)), &["0.0.0.0/0"])));
        assert_eq!(both.egress, [rule("-1", None, &["0.0.0.0/0"])]);

        // A member leaving is seen at once.
        let (c, o) = enis::release_eni_ops(&r, &w1.id).unwrap();
        assert!(r.store().txn(Txn::new().when(c).and_then(o)).await.unwrap().succeeded);
        let db_rules = effective_rules(&r, std::slice::from_ref(&db.id)).unwrap();
        assert_eq!(db_rules.ingress[0].cidrs, [format!("{}/32", w2.private_ip)]);
    }
}
