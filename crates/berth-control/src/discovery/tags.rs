//! Tags on namespaces and services, by ARN (TagResource, UntagResource, ListTagsForResource):
//! at most [`MAX_TAGS`] per resource, keys 1–128 characters not beginning with `aws:`, values up
//! to 256.

use berth_store::{Compare, Op, Txn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{NamespaceRecord, ServiceRecord, Tag};
use super::{ARN_SERVICE, DiscoveryError};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};
use crate::vpc::{Stored, read};

/// Tags one resource may carry (Cloud Map's quota).
pub const MAX_TAGS: usize = 50;

/// Cloud Map's rules for tags a request sets.
pub fn check(tags: &[Tag]) -> Result<(), DiscoveryError> {
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(DiscoveryError::invalid(format!("Tag key '{}' must be 1 to 128 characters.", tag.key)));
        }
        if tag.value.chars().count() > 256 {
            return Err(DiscoveryError::invalid(format!(
                "The value of tag '{}' is longer than 256 characters.",
                tag.key
            )));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(DiscoveryError::invalid(format!("Tag key '{}' uses the reserved prefix aws:.", tag.key)));
        }
    }
    Ok(())
}

/// Sets `new` on `tags` (a key already there takes the new value), within the quota.
pub fn set(tags: &mut Vec<Tag>, new: &[Tag]) -> Result<(), DiscoveryError> {
    check(new)?;
    for tag in new {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => tags.push(tag.clone()),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(DiscoveryError::TooManyTags(MAX_TAGS));
    }
    Ok(())
}

/// What a tagging request names: a namespace or a service, by ARN.
enum Resource {
    Namespace(String),
    Service(String),
}

fn resource(region: &Region<'_>, arn: &str) -> Result<Resource, DiscoveryError> {
    let not_found = || DiscoveryError::ResourceNotFound(arn.to_string());
    let prefix = format!("arn:aws:{ARN_SERVICE}:{}:{}:", region.name, region.config().account);
    let rest = arn.strip_prefix(&prefix).ok_or_else(not_found)?;
    match rest.split_once('/') {
        Some(("namespace", id)) if !id.is_empty() => Ok(Resource::Namespace(id.to_string())),
        Some(("service", id)) if !id.is_empty() => Ok(Resource::Service(id.to_string())),
        _ => Err(not_found()),
    }
}

trait Tagged: Serialize + DeserializeOwned {
    fn tags(&mut self) -> &mut Vec<Tag>;
}

impl Tagged for NamespaceRecord {
    fn tags(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for ServiceRecord {
    fn tags(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

/// Changes the tags of the record at `key` with `change`, guarded by its revision.
async fn change<T: Tagged>(
    region: &Region<'_>,
    arn: &str,
    key: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), DiscoveryError>,
) -> ControlResult<Vec<Tag>> {
    retry(|| async {
        let found: Option<Stored<T>> = read(region, key)?;
        let mut stored = found.ok_or_else(|| DiscoveryError::ResourceNotFound(arn.to_string()))?;
        change(stored.record.tags())?;
        let tags = stored.record.tags().clone();
        let txn = Txn::new()
            .when(vec![Compare::unchanged(key, stored.kv.mod_revision)])
            .and_then(vec![Op::put(key, encode(&stored.record))]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(tags))
    })
    .await
}

async fn apply(
    region: &Region<'_>,
    arn: &str,
    f: impl Fn(&mut Vec<Tag>) -> Result<(), DiscoveryError>,
) -> ControlResult<Vec<Tag>> {
    match resource(region, arn)? {
        Resource::Namespace(id) => change::<NamespaceRecord>(region, arn, &region.keys.sd_namespace(&id), f).await,
        Resource::Service(id) => change::<ServiceRecord>(region, arn, &region.keys.sd_service(&id), f).await,
    }
}

/// TagResource.
pub async fn tag(region: &Region<'_>, arn: &str, new: &[Tag]) -> ControlResult<()> {
    check(new)?;
    apply(region, arn, |tags| set(tags, new)).await.map(|_| ())
}

/// UntagResource: removes the keys (absent ones are no error).
pub async fn untag(region: &Region<'_>, arn: &str, keys: &[String]) -> ControlResult<()> {
    apply(region, arn, |tags| {
        tags.retain(|t| !keys.contains(&t.key));
        Ok(())
    })
    .await
    .map(|_| ())
}

/// ListTagsForResource.
pub fn list(region: &Region<'_>, arn: &str) -> ControlResult<Vec<Tag>> {
    let not_found = || DiscoveryError::ResourceNotFound(arn.to_string());
    let tags = match resource(region, arn)? {
        Resource::Namespace(id) => {
            read::<NamespaceRecord>(region, &region.keys.sd_namespace(&id))?.ok_or_else(not_found)?.record.tags
        }
        Resource::Service(id) => {
            read::<ServiceRecord>(region, &region.keys.sd_service(&id))?.ok_or_else(not_found)?.record.tags
        }
    };
    Ok(tags)
}
