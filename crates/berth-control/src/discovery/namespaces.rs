//! Namespaces: a private DNS namespace is a zone Berth's DNS server answers for (in a VPC of
//! the region), an HTTP namespace is found through DiscoverInstances only. A namespace's name is
//! also its `HttpName`, unique in the region whatever its case (a name key created with a
//! compare on its absence). A namespace with services cannot be deleted.

use berth_store::{CmpOp, Compare, Op, Txn};
use serde::Serialize;

use super::records::{NamespaceRecord, NamespaceType, OperationRecord, OperationType, Tag};
use super::requests::{self, RequestRecord};
use super::{DiscoveryError, arn, id_of, new_hosted_zone_id, new_namespace_id, operations, tags};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};
use crate::vpc::{Stored, keys_under, read, read_all};

/// The SOA TTL of a private DNS namespace created without one (seconds of negative caching).
pub const DEFAULT_SOA_TTL: i64 = 15;

/// What CreatePrivateDnsNamespace and CreateHttpNamespace ask for.
#[derive(Debug, Clone, Serialize)]
pub struct NewNamespace {
    pub name: String,
    pub kind: NamespaceType,
    pub description: Option<String>,
    /// Required for a private DNS namespace, refused for an HTTP one.
    pub vpc: Option<String>,
    pub soa_ttl: Option<i64>,
    pub tags: Vec<Tag>,
    pub creator_request_id: Option<String>,
}

/// Whether `name` may name a DNS zone: dot-separated labels of 1–63 letters, digits, hyphens
/// and underscores (no hyphen at either end of a label), 253 characters at most; one trailing
/// dot is allowed. Returns it without the trailing dot.
pub fn check_dns_name(name: &str) -> Result<&str, DiscoveryError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if bare.is_empty() || bare.len() > 253 || !bare.split('.').all(label_ok) {
        return Err(DiscoveryError::invalid(format!(
            "The namespace name '{name}' is not a valid domain name: use labels of letters, digits, hyphens and underscores separated by dots."
        )));
    }
    Ok(bare)
}

/// The name of an HTTP namespace: printable ASCII without spaces, not an ARN.
fn check_http_name(name: &str) -> Result<(), DiscoveryError> {
    if name.is_empty() || name.starts_with("arn:") || !name.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(DiscoveryError::invalid(format!(
            "The namespace name '{name}' is not valid: use printable characters without spaces, not an ARN."
        )));
    }
    Ok(())
}

fn check_soa_ttl(ttl: Option<i64>) -> Result<(), DiscoveryError> {
    match ttl {
        Some(t) if !(0..=i64::from(i32::MAX)).contains(&t) => {
            Err(DiscoveryError::invalid(format!("SOA TTL {t} is outside 0 to 2147483647.")))
        }
        _ => Ok(()),
    }
}

/// Checks a new namespace; returns its name as stored.
fn check_new(region: &Region<'_>, new: &NewNamespace) -> ControlResult<String> {
    tags::check(&new.tags)?;
    if new.tags.len() > tags::MAX_TAGS {
        return Err(DiscoveryError::TooManyTags(tags::MAX_TAGS).into());
    }
    check_soa_ttl(new.soa_ttl)?;
    match new.kind {
        NamespaceType::DnsPrivate => {
            let name = check_dns_name(&new.name)?.to_string();
            let vpc =
                new.vpc.as_deref().ok_or_else(|| DiscoveryError::invalid("A private DNS namespace needs a Vpc."))?;
            crate::vpc::vpcs::get(region, vpc)
                .map_err(|e| DiscoveryError::invalid(format!("Vpc {vpc} cannot be used: {e}")))?;
            Ok(name)
        }
        NamespaceType::Http => {
            check_http_name(&new.name)?;
            Ok(new.name.clone())
        }
    }
}

/// CreatePrivateDnsNamespace, CreateHttpNamespace: the namespace, and its operation.
pub async fn create(region: &Region<'_>, new: &NewNamespace) -> ControlResult<OperationRecord> {
    let name = check_new(region, new)?;
    let fingerprint = requests::fingerprint(new);
    retry(|| async {
        let request = match &new.creator_request_id {
            Some(token) => Some(requests::replay(region, "CreateNamespace", token, &fingerprint)?),
            None => None,
        };
        if let Some((_, Some(done))) = &request {
            return Ok(Some(operations::get(region, done.operation_id.as_deref().unwrap_or_default())?));
        }
        let name_key = region.keys.sd_namespace_name(&name);
        if let Some(kv) = region.store().get(&name_key)? {
            let id = String::from_utf8_lossy(&kv.value).into_owned();
            return Err(DiscoveryError::NamespaceAlreadyExists { name: name.clone(), id }.into());
        }
        let id = new_namespace_id(region);
        let record = NamespaceRecord {
            arn: arn(region, "namespace", &id),
            id: id.clone(),
            name: name.clone(),
            kind: new.kind,
            description: new.description.clone(),
            vpc: new.vpc.clone().filter(|_| new.kind == NamespaceType::DnsPrivate),
            soa_ttl: (new.kind == NamespaceType::DnsPrivate).then(|| new.soa_ttl.unwrap_or(DEFAULT_SOA_TTL)),
            hosted_zone_id: (new.kind == NamespaceType::DnsPrivate).then(|| new_hosted_zone_id(region)),
            created: region.timestamp(),
            creator_request_id: new.creator_request_id.clone(),
            tags: new.tags.clone(),
        };
        let request_key = request.as_ref().map(|(k, _)| k.clone());
        let op = operations::finished(region, OperationType::CreateNamespace, &[("NAMESPACE", &id)], request_key);
        let key = region.keys.sd_namespace(&id);
        let mut compares = vec![Compare::absent(&key), Compare::absent(&name_key)];
        let mut ops = vec![
            Op::put(&key, encode(&record)),
            Op::put(&name_key, id.clone().into_bytes()),
            Op::put(&region.keys.sd_region(), Vec::new()),
        ];
        ops.extend(operations::insert_ops(region, &op));
        if let Some((request_key, None)) = &request {
            let done = RequestRecord {
                fingerprint: fingerprint.clone(),
                operation_id: Some(op.id.clone()),
                target: id.clone(),
            };
            let (c, o) = requests::record_ops(request_key, &done);
            compares.push(c);
            ops.push(o);
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(op))
    })
    .await
}

/// A namespace by id or ARN: `NamespaceNotFound` when there is none.
pub fn get(region: &Region<'_>, given: &str) -> ControlResult<Stored<NamespaceRecord>> {
    let not_found = || DiscoveryError::NamespaceNotFound(given.to_string());
    let id = id_of(region, "namespace", given).ok_or_else(not_found)?;
    Ok(read(region, &region.keys.sd_namespace(id))?.ok_or_else(not_found)?)
}

/// A namespace by its name (`HttpName`), whatever its case.
pub fn by_name(region: &Region<'_>, name: &str) -> ControlResult<Stored<NamespaceRecord>> {
    let not_found = || DiscoveryError::NamespaceNameNotFound(name.to_string());
    let bare = name.strip_suffix('.').filter(|b| !b.is_empty()).unwrap_or(name);
    let id = region.store().get(&region.keys.sd_namespace_name(bare))?.ok_or_else(not_found)?;
    let id = String::from_utf8_lossy(&id.value).into_owned();
    Ok(read(region, &region.keys.sd_namespace(&id))?.ok_or_else(not_found)?)
}

/// Every namespace of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<NamespaceRecord>> {
    Ok(read_all(region, &region.keys.sd_namespaces())?.1.into_iter().map(|s| s.record).collect())
}

/// How many services a namespace has.
pub fn service_count(region: &Region<'_>, id: &str) -> ControlResult<usize> {
    Ok(keys_under(region, &region.keys.sd_service_names(id))?.1.len())
}

/// What UpdatePrivateDnsNamespace and UpdateHttpNamespace change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamespaceChange {
    pub description: Option<String>,
    /// Private DNS namespaces only.
    pub soa_ttl: Option<i64>,
    pub updater_request_id: Option<String>,
}

/// UpdatePrivateDnsNamespace, UpdateHttpNamespace: `kind` is the namespace type the operation is
/// for (another type is `InvalidInput`).
pub async fn update(
    region: &Region<'_>,
    given: &str,
    kind: NamespaceType,
    change: &NamespaceChange,
) -> ControlResult<OperationRecord> {
    check_soa_ttl(change.soa_ttl)?;
    let fingerprint = requests::fingerprint(&(given, change));
    retry(|| async {
        let request = match &change.updater_request_id {
            Some(token) => Some(requests::replay(region, "UpdateNamespace", token, &fingerprint)?),
            None => None,
        };
        if let Some((_, Some(done))) = &request {
            return Ok(Some(operations::get(region, done.operation_id.as_deref().unwrap_or_default())?));
        }
        let mut ns = get(region, given)?;
        if ns.record.kind != kind {
            return Err(DiscoveryError::invalid(format!(
                "Namespace {} is of type {}, not {}.",
                ns.record.id,
                ns.record.kind.as_str(),
                kind.as_str()
            ))
            .into());
        }
        if let Some(d) = &change.description {
            ns.record.description = Some(d.clone());
        }
        if let Some(ttl) = change.soa_ttl {
            ns.record.soa_ttl = Some(ttl);
        }
        let id = ns.record.id.clone();
        let request_key = request.as_ref().map(|(k, _)| k.clone());
        let op = operations::finished(region, OperationType::UpdateNamespace, &[("NAMESPACE", &id)], request_key);
        let mut compares = vec![Compare::unchanged(&ns.kv.key, ns.kv.mod_revision)];
        let mut ops = vec![Op::put(&ns.kv.key, encode(&ns.record))];
        ops.extend(operations::insert_ops(region, &op));
        if let Some((request_key, None)) = &request {
            let done =
                RequestRecord { fingerprint: fingerprint.clone(), operation_id: Some(op.id.clone()), target: id };
            let (c, o) = requests::record_ops(request_key, &done);
            compares.push(c);
            ops.push(o);
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(op))
    })
    .await
}

/// DeleteNamespace: only a namespace without services.
pub async fn delete(region: &Region<'_>, given: &str) -> ControlResult<OperationRecord> {
    retry(|| async {
        let ns = get(region, given)?;
        let id = ns.record.id.clone();
        let (at, services) = keys_under(region, &region.keys.sd_service_names(&id))?;
        if !services.is_empty() {
            return Err(DiscoveryError::ResourceInUse(format!(
                "Namespace {id} has {} service(s): delete them first.",
                services.len()
            ))
            .into());
        }
        let op = operations::finished(region, OperationType::DeleteNamespace, &[("NAMESPACE", &id)], None);
        let compares = vec![
            Compare::unchanged(&ns.kv.key, ns.kv.mod_revision),
            Compare::prefix_unchanged_since(&region.keys.sd_service_names(&id), at),
        ];
        let mut ops = vec![Op::delete(&ns.kv.key), Op::delete(&region.keys.sd_namespace_name(&ns.record.name))];
        ops.extend(operations::insert_ops(region, &op));
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(op))
    })
    .await
}

/// The compare that a namespace still exists as read (created at the same revision).
pub(crate) fn still_there(ns: &Stored<NamespaceRecord>) -> Compare {
    Compare::CreateRevision(ns.kv.key.clone(), CmpOp::Equal, ns.kv.create_revision)
}

#[cfg(test)]
pub(crate) mod tests;
