//! Tagging resources by id, whatever their kind (CreateTags, DeleteTags), and every tag of
//! the region's VPC resources (DescribeTags). A security group rule's tags live in its
//! group's record, so a rule id is found by looking through the groups. A request naming
//! several resources changes all of them in one transaction or none.

use std::collections::BTreeMap;

use berth_store::{Compare, KeyValue, Op, Txn};
use serde_json::Value;

use super::groups::SecurityGroupRecord;
use super::tags::{self, Tag, TagMatch};
use super::{IdKind, VpcError, check_id, kind_of, read, read_all};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{decode, encode, retry};

/// What a tagging request does to each resource it names.
#[derive(Debug, Clone)]
pub enum TagChange {
    /// CreateTags: set these (a key already there takes the new value).
    Set(Vec<Tag>),
    /// DeleteTags: remove these (every tag when empty).
    Remove(Vec<TagMatch>),
}

/// One tag of one resource, as DescribeTags lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOf {
    pub resource_id: String,
    /// EC2's resource type: `vpc`, `subnet`, `security-group`, `security-group-rule`,
    /// `network-interface`.
    pub resource_type: &'static str,
    pub tag: Tag,
}

/// The resource type EC2 names a kind by.
pub fn resource_type(kind: IdKind) -> &'static str {
    match kind {
        IdKind::Vpc => "vpc",
        IdKind::Subnet => "subnet",
        IdKind::SecurityGroup => "security-group",
        IdKind::SecurityGroupRule => "security-group-rule",
        IdKind::NetworkInterface => "network-interface",
    }
}

fn key_of(region: &Region<'_>, kind: IdKind, id: &str) -> String {
    match kind {
        IdKind::Vpc => region.keys.vpc(id),
        IdKind::Subnet => region.keys.subnet(id),
        IdKind::SecurityGroup | IdKind::SecurityGroupRule => region.keys.security_group(id),
        IdKind::NetworkInterface => region.keys.network_interface(id),
    }
}

/// The tag list inside a record (as JSON): the record's own, or a rule's of a group.
fn tag_list<'v>(record: &'v mut Value, rule: Option<&str>) -> Option<&'v mut Value> {
    let holder = match rule {
        None => record,
        Some(rule) => {
            let holds = |d: &str| record[d].as_array().is_some_and(|rs| rs.iter().any(|r| r["id"] == rule));
            let direction = ["ingress", "egress"].into_iter().find(|d| holds(d))?;
            record[direction].as_array_mut()?.iter_mut().find(|r| r["id"] == rule)?
        }
    };
    let object = holder.as_object_mut()?;
    Some(object.entry("tags").or_insert_with(|| Value::Array(Vec::new())))
}

fn apply(list: &mut Value, change: &TagChange) -> Result<(), VpcError> {
    let mut current: Vec<Tag> = serde_json::from_value(list.take()).unwrap_or_default();
    match change {
        TagChange::Set(new) => tags::set(&mut current, new)?,
        TagChange::Remove(which) => {
            tags::remove(&mut current, which);
        }
    }
    *list = serde_json::to_value(current).expect("tags serialise");
    Ok(())
}

/// The group holding rule `rule_id`, among `groups`.
fn group_of_rule<'g>(groups: &'g [super::Stored<SecurityGroupRecord>], rule_id: &str) -> Option<&'g KeyValue> {
    groups.iter().find(|g| g.record.ingress.iter().chain(&g.record.egress).any(|r| r.id == rule_id)).map(|g| &g.kv)
}

/// CreateTags and DeleteTags: `change` applied to every resource of `ids`, all in one
/// transaction. An id of no kind Berth keeps is `InvalidID`; a resource that does not exist
/// is its kind's not-found error; nothing changes then.
pub async fn change(region: &Region<'_>, ids: &[String], change: &TagChange) -> ControlResult<()> {
    if let TagChange::Set(new) = change {
        tags::check(new)?;
    }
    retry(|| async {
        let groups = if ids.iter().any(|id| kind_of(id) == Some(IdKind::SecurityGroupRule)) {
            read_all::<SecurityGroupRecord>(region, &region.keys.security_groups())?.1
        } else {
            Vec::new()
        };
        // Each record once, with every change to it.
        let mut records: BTreeMap<String, (KeyValue, Value)> = BTreeMap::new();
        for id in ids {
            let kind = kind_of(id).ok_or_else(|| VpcError::InvalidId(id.clone()))?;
            check_id(kind, id)?;
            let kv = match kind {
                IdKind::SecurityGroupRule => group_of_rule(&groups, id).cloned(),
                _ => read::<Value>(region, &key_of(region, kind, id))?.map(|s| s.kv),
            };
            let kv = kv.ok_or_else(|| VpcError::not_found(kind, id))?;
            let key = kv.key.clone();
            let entry = match records.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let value: Value = decode(&kv)?;
                    e.insert((kv, value))
                }
            };
            let rule = (kind == IdKind::SecurityGroupRule).then_some(id.as_str());
            let list = tag_list(&mut entry.1, rule).ok_or_else(|| VpcError::not_found(kind, id))?;
            apply(list, change)?;
        }
        let compares = records.values().map(|(kv, _)| Compare::unchanged(&kv.key, kv.mod_revision)).collect();
        let ops = records.values().map(|(kv, value)| Op::put(&kv.key, encode(value))).collect();
        Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(()))
    })
    .await
}

/// Every tag of the region's VPCs, subnets, security groups (and their rules) and network
/// interfaces.
pub fn all(region: &Region<'_>) -> ControlResult<Vec<TagOf>> {
    let mut out = Vec::new();
    let mut add = |kind: IdKind, id: &str, tags: &[Tag]| {
        let resource_type = resource_type(kind);
        out.extend(tags.iter().map(|t| TagOf { resource_id: id.to_string(), resource_type, tag: t.clone() }));
    };
    for vpc in super::vpcs::list(region)? {
        add(IdKind::Vpc, &vpc.id, &vpc.tags);
    }
    for subnet in super::subnets::list(region)? {
        add(IdKind::Subnet, &subnet.id, &subnet.tags);
    }
    for group in super::groups::list(region)? {
        add(IdKind::SecurityGroup, &group.id, &group.tags);
        for rule in group.ingress.iter().chain(&group.egress) {
            add(IdKind::SecurityGroupRule, &rule.id, &rule.tags);
        }
    }
    for eni in super::enis::list(region)? {
        add(IdKind::NetworkInterface, &eni.eni.id, &eni.tags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestRegion;
    use super::super::{defaults, groups, subnets};
    use super::*;
    use crate::ControlError;

    #[tokio::test]
    async fn tags_change_on_every_named_resource_or_none() {
        let t = TestRegion::new();
        let r = t.region();
        let vpc = defaults::ensure(&r).await.unwrap().unwrap();
        let subnet = subnets::list(&r).unwrap().remove(0);
        let group = groups::get(&r, &vpc.default_group_id).unwrap().record;
        let rule = group.ingress[0].id.clone();
        let ids = vec![vpc.id.clone(), subnet.id.clone(), group.id.clone(), rule.clone()];
        change(&r, &ids, &TagChange::Set(vec![Tag::new("team", "a")])).await.unwrap();
        let all = all(&r).unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.iter().any(|t| t.resource_id == rule && t.resource_type == "security-group-rule"));
        assert_eq!(groups::get(&r, &group.id).unwrap().record.ingress[0].tags, [Tag::new("team", "a")]);

        // One bad id: nothing changes.
        let ghost = "subnet-0000000000000dead".to_string();
        let e = change(&r, &[vpc.id.clone(), ghost], &TagChange::Set(vec![Tag::new("x", "1")])).await.unwrap_err();
        assert!(matches!(e, ControlError::Vpc(VpcError::SubnetNotFound(_))), "{e}");
        let e = change(&r, &["i-0123456789abcdef0".into()], &TagChange::Remove(vec![])).await.unwrap_err();
        assert!(matches!(e, ControlError::Vpc(VpcError::InvalidId(_))), "{e}");
        assert_eq!(super::all(&r).unwrap().len(), 4);

        let remove = TagChange::Remove(vec![TagMatch { key: "team".into(), value: Some("b".into()) }]);
        change(&r, &ids, &remove).await.unwrap();
        assert_eq!(super::all(&r).unwrap().len(), 4, "the value did not match");
        change(&r, &ids[..2], &TagChange::Remove(vec![])).await.unwrap();
        assert_eq!(super::all(&r).unwrap().len(), 2);
    }
}
