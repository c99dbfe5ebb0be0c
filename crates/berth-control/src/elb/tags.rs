//! Tags on load balancers, target groups, listeners and rules (AddTags, RemoveTags,
//! DescribeTags), with ELB's rules: at most 50 per resource, no key twice in one request, no
//! `aws:` keys, ELB's characters. Tags live in their resource's record (a default rule's in
//! its listener's); a request naming several resources changes all of them or none.

use std::collections::BTreeMap;

use berth_store::{Compare, KeyValue, Op, Txn};
use serde_json::Value;

use super::arns::{self, Resource};
use super::limits::TAGS;
use super::{ElbError, Limit};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{decode, encode, retry};

pub use crate::vpc::tags::Tag;

fn valid_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// ELB's rules for the tags of one request.
pub fn check_new(tags: &[Tag]) -> Result<(), ElbError> {
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        if !seen.insert(tag.key.as_str()) {
            return Err(ElbError::DuplicateTagKeys(tag.key.clone()));
        }
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.value.chars().count() > 256 {
            return Err(ElbError::validation(format!(
                "Tag '{}': keys have 1 to 128 characters and values at most 256",
                tag.key
            )));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ElbError::validation(format!(
                "Tag key '{}' is reserved: keys starting with 'aws:' are AWS's",
                tag.key
            )));
        }
        if !tag.key.chars().chain(tag.value.chars()).all(valid_char) {
            return Err(ElbError::validation(format!(
                "Tag '{}' has characters tags cannot have: letters, digits, spaces and _.:/=+-@ only",
                tag.key
            )));
        }
    }
    if tags.len() > TAGS {
        return Err(too_many());
    }
    Ok(())
}

fn too_many() -> ElbError {
    ElbError::too_many(Limit::Tags, format!("A resource can have at most {TAGS} tags"))
}

/// Where a resource's tags are: its record's key and the member holding them.
struct Location {
    key: String,
    member: &'static str,
}

/// The record an ELB ARN names, or the error for its kind; a malformed ARN is
/// `ValidationError`.
fn locate(region: &Region<'_>, arn: &str) -> ControlResult<Location> {
    let parsed =
        arns::parse(arn).ok_or_else(|| ElbError::validation(format!("'{arn}' is not a valid resource ARN")))?;
    let missing = || -> ElbError {
        match parsed.resource {
            Resource::LoadBalancer(_) => ElbError::load_balancers_not_found(),
            Resource::TargetGroup { .. } => ElbError::target_groups_not_found(),
            Resource::Listener { .. } => ElbError::listeners_not_found(),
            Resource::Rule { .. } => ElbError::rules_not_found(),
        }
    };
    if parsed.region != region.name || parsed.account != region.config().account {
        return Err(missing().into());
    }
    let keys = &region.keys;
    let candidates = match &parsed.resource {
        Resource::LoadBalancer(lb) => vec![(keys.load_balancer(&lb.id), "arn", "tags")],
        Resource::TargetGroup { id, .. } => vec![(keys.target_group(id), "arn", "tags")],
        Resource::Listener { lb, id } => vec![(keys.listener(&lb.id, id), "arn", "tags")],
        Resource::Rule { lb, listener, id } => vec![
            (keys.rule(listener, id), "arn", "tags"),
            (keys.listener(&lb.id, listener), "defaultRuleArn", "defaultRuleTags"),
        ],
    };
    for (key, arn_member, member) in candidates {
        if let Some(kv) = region.store().get(&key)? {
            let record: Value = decode(&kv)?;
            if record[arn_member] == arn {
                return Ok(Location { key, member });
            }
        }
    }
    Err(missing().into())
}

/// What a tagging request does to each resource.
#[derive(Debug, Clone)]
pub enum TagChange {
    /// AddTags: set these (a key already there takes the new value).
    Add(Vec<Tag>),
    /// RemoveTags: remove these keys.
    Remove(Vec<String>),
}

fn apply(list: &mut Value, change: &TagChange) -> Result<(), ElbError> {
    let mut current: Vec<Tag> = serde_json::from_value(list.take()).unwrap_or_default();
    match change {
        TagChange::Add(new) => {
            for tag in new {
                match current.iter_mut().find(|t| t.key == tag.key) {
                    Some(existing) => existing.value = tag.value.clone(),
                    None => current.push(tag.clone()),
                }
            }
            if current.len() > TAGS {
                return Err(too_many());
            }
        }
        TagChange::Remove(keys) => current.retain(|t| !keys.contains(&t.key)),
    }
    *list = serde_json::to_value(current).expect("tags serialise");
    Ok(())
}

/// AddTags and RemoveTags: `change` on every resource of `arns`, in one transaction.
pub async fn change(region: &Region<'_>, arns: &[String], change: &TagChange) -> ControlResult<()> {
    if let TagChange::Add(new) = change {
        check_new(new)?;
    }
    retry(|| async {
        let mut records: BTreeMap<String, (KeyValue, Value)> = BTreeMap::new();
        for arn in arns {
            let location = locate(region, arn)?;
            if !records.contains_key(&location.key) {
                let kv = region.store().get(&location.key)?.ok_or_else(ElbError::rules_not_found)?;
                let value: Value = decode(&kv)?;
                records.insert(location.key.clone(), (kv, value));
            }
            let (_, record) = records.get_mut(&location.key).expect("just inserted");
            let list = record
                .as_object_mut()
                .map(|o| o.entry(location.member).or_insert_with(|| Value::Array(Vec::new())))
                .ok_or_else(|| crate::ControlError::Corrupt {
                    key: location.key.clone(),
                    reason: "not an object".into(),
                })?;
            apply(list, change)?;
        }
        let compares = records.values().map(|(kv, _)| Compare::unchanged(&kv.key, kv.mod_revision)).collect();
        let ops = records.values().map(|(kv, value)| Op::put(&kv.key, encode(value))).collect();
        Ok(region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded.then_some(()))
    })
    .await
}

/// DescribeTags: each resource's tags, in the order asked.
pub fn describe(region: &Region<'_>, arns: &[String]) -> ControlResult<Vec<(String, Vec<Tag>)>> {
    let mut out = Vec::new();
    for arn in arns {
        let location = locate(region, arn)?;
        let Some(kv) = region.store().get(&location.key)? else { return Err(ElbError::rules_not_found().into()) };
        let record: Value = decode(&kv)?;
        let tags: Vec<Tag> = serde_json::from_value(record[location.member].clone()).unwrap_or_default();
        out.push((arn.clone(), tags));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_tag_rules() {
        assert!(check_new(&[Tag::new("team", "a b"), Tag::new("x:y/z", "")]).is_ok());
        assert_eq!(check_new(&[Tag::new("a", "1"), Tag::new("a", "2")]).unwrap_err().code(), "DuplicateTagKeys");
        assert_eq!(check_new(&[Tag::new("aws:x", "1")]).unwrap_err().code(), "ValidationError");
        assert_eq!(check_new(&[Tag::new("a", "<b>")]).unwrap_err().code(), "ValidationError");
        let many: Vec<Tag> = (0..51).map(|i| Tag::new(&format!("k{i}"), "v")).collect();
        assert_eq!(check_new(&many).unwrap_err().code(), "TooManyTags");
        let mut list = serde_json::to_value(vec![Tag::new("a", "1")]).unwrap();
        apply(&mut list, &TagChange::Add(vec![Tag::new("a", "2"), Tag::new("b", "3")])).unwrap();
        apply(&mut list, &TagChange::Remove(vec!["b".into(), "zz".into()])).unwrap();
        assert_eq!(serde_json::from_value::<Vec<Tag>>(list).unwrap(), [Tag::new("a", "2")]);
    }
}
