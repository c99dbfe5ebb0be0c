//! Services: a name in a namespace (unique there whatever its case), the DNS records its
//! instances get (A, AAAA, SRV or CNAME, with MULTIVALUE or WEIGHTED routing) or none (an HTTP
//! service, found through DiscoverInstances only), and whether its instances report a custom
//! health. A service with instances cannot be deleted.

use std::collections::BTreeMap;

use berth_store::{Compare, Op, Txn};
use serde::Serialize;

use super::namespaces::{self, still_there};
use super::records::{
    CustomHealthConfig, DnsConfig, DnsRecord, OperationRecord, OperationType, RecordType, RoutingPolicy, ServiceRecord,
    ServiceType, Tag,
};
use super::requests::{self, RequestRecord};
use super::{DiscoveryError, arn, id_of, new_service_id, operations, tags};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};
use crate::vpc::{Stored, keys_under, read, read_all};

/// Service attributes a service may have (Cloud Map's quota).
pub const MAX_ATTRIBUTES: usize = 30;

/// What CreateService asks for.
#[derive(Debug, Clone, Serialize)]
pub struct NewService {
    pub name: String,
    pub namespace: String,
    pub description: Option<String>,
    pub dns: Option<DnsConfig>,
    /// `Type: HTTP`: no DNS records even in a DNS namespace.
    pub http_only: bool,
    pub custom_health: Option<CustomHealthConfig>,
    pub tags: Vec<Tag>,
    pub creator_request_id: Option<String>,
    /// For a service Service Connect makes: how clients reach it.
    pub connect: Option<crate::service_connect::ConnectEndpoint>,
}

/// Whether `name` may name a service: labels of letters, digits, hyphens and underscores
/// (no hyphen at either end), dot-separated, 127 characters at most (Cloud Map's pattern;
/// `_name._tcp` for SRV-minded clients is one such name).
pub fn check_name(name: &str) -> Result<(), DiscoveryError> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name == "." {
        return Err(DiscoveryError::invalid(
            "Berth does not support a service named '.' (records at the namespace's apex).",
        ));
    }
    if name.is_empty() || name.len() > 127 || !name.split('.').all(label_ok) {
        return Err(DiscoveryError::invalid(format!(
            "The service name '{name}' is not valid: use up to 127 characters of letters, digits, hyphens and underscores, in dot-separated labels."
        )));
    }
    Ok(())
}

/// Cloud Map's rules for a service's DNS records: one record per type, and one of A, AAAA,
/// A + AAAA, SRV, A + SRV, AAAA + SRV, A + AAAA + SRV, or CNAME alone with WEIGHTED routing.
pub fn check_records(dns: &DnsConfig) -> Result<(), DiscoveryError> {
    if dns.records.is_empty() {
        return Err(DiscoveryError::invalid("DnsConfig.DnsRecords needs at least one record."));
    }
    let mut kinds: Vec<RecordType> = dns.records.iter().map(|r| r.kind).collect();
    kinds.sort();
    if kinds.windows(2).any(|w| w[0] == w[1]) {
        return Err(DiscoveryError::invalid("DnsConfig.DnsRecords names a record type twice."));
    }
    for r in &dns.records {
        if !(0..=i64::from(i32::MAX)).contains(&r.ttl) {
            return Err(DiscoveryError::invalid(format!(
                "TTL {} of the {} record is outside 0 to 2147483647.",
                r.ttl,
                r.kind.as_str()
            )));
        }
    }
    if dns.has(RecordType::Cname) {
        if kinds.len() > 1 {
            return Err(DiscoveryError::invalid("A CNAME record cannot be combined with other record types."));
        }
        if dns.routing_policy != RoutingPolicy::Weighted {
            return Err(DiscoveryError::invalid("A service with a CNAME record needs the WEIGHTED routing policy."));
        }
    }
    Ok(())
}

fn check_new(new: &NewService) -> ControlResult<()> {
    check_name(&new.name)?;
    tags::check(&new.tags)?;
    if new.tags.len() > tags::MAX_TAGS {
        return Err(DiscoveryError::TooManyTags(tags::MAX_TAGS).into());
    }
    if let Some(dns) = &new.dns {
        if new.http_only {
            return Err(DiscoveryError::invalid("A service of Type HTTP cannot have a DnsConfig.").into());
        }
        check_records(dns)?;
    }
    if let Some(threshold) = new.custom_health.and_then(|c| c.failure_threshold)
        && !(1..=10).contains(&threshold)
    {
        return Err(DiscoveryError::invalid(format!("FailureThreshold {threshold} is outside 1 to 10.")).into());
    }
    Ok(())
}

/// CreateService. A retry with the same `CreatorRequestId` answers the service it made.
pub async fn create(region: &Region<'_>, new: &NewService) -> ControlResult<ServiceRecord> {
    check_new(new)?;
    let fingerprint = requests::fingerprint(new);
    retry(|| async {
        let request = match &new.creator_request_id {
            Some(token) => Some(requests::replay(region, "CreateService", token, &fingerprint)?),
            None => None,
        };
        if let Some((_, Some(done))) = &request {
            return Ok(Some(get(region, &done.target)?.record));
        }
        let ns = namespaces::get(region, &new.namespace)?;
        if new.dns.is_some() && !ns.record.is_dns() {
            return Err(DiscoveryError::invalid(format!(
                "Namespace {} is an HTTP namespace: its services cannot have a DnsConfig.",
                ns.record.id
            ))
            .into());
        }
        let name_key = region.keys.sd_service_name(&ns.record.id, &new.name);
        if let Some(kv) = region.store().get(&name_key)? {
            let id = String::from_utf8_lossy(&kv.value).into_owned();
            return Err(DiscoveryError::ServiceAlreadyExists { name: new.name.clone(), id }.into());
        }
        let id = new_service_id(region);
        let record = ServiceRecord {
            arn: arn(region, "service", &id),
            id: id.clone(),
            name: new.name.clone(),
            namespace_id: ns.record.id.clone(),
            description: new.description.clone(),
            dns: new.dns.clone(),
            kind: if new.dns.is_some() { ServiceType::DnsHttp } else { ServiceType::Http },
            custom_health: new.custom_health,
            created: region.timestamp(),
            creator_request_id: new.creator_request_id.clone(),
            tags: new.tags.clone(),
            attributes: BTreeMap::new(),
            connect: new.connect.clone(),
        };
        let key = region.keys.sd_service(&id);
        let mut compares = vec![Compare::absent(&key), Compare::absent(&name_key), still_there(&ns)];
        let mut ops = vec![Op::put(&key, encode(&record)), Op::put(&name_key, id.clone().into_bytes())];
        if let Some((request_key, None)) = &request {
            let done = RequestRecord { fingerprint: fingerprint.clone(), operation_id: None, target: id.clone() };
            let (c, o) = requests::record_ops(request_key, &done);
            compares.push(c);
            ops.push(o);
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(record))
    })
    .await
}

/// A service by id or ARN: `ServiceNotFound` when there is none.
pub fn get(region: &Region<'_>, given: &str) -> ControlResult<Stored<ServiceRecord>> {
    let not_found = || DiscoveryError::ServiceNotFound(given.to_string());
    let id = id_of(region, "service", given).ok_or_else(not_found)?;
    Ok(read(region, &region.keys.sd_service(id))?.ok_or_else(not_found)?)
}

/// A service of a namespace by name, whatever its case.
pub fn by_name(region: &Region<'_>, namespace: &str, name: &str) -> ControlResult<Stored<ServiceRecord>> {
    let not_found = || DiscoveryError::ServiceNameNotFound(name.to_string());
    let id = region.store().get(&region.keys.sd_service_name(namespace, name))?.ok_or_else(not_found)?;
    let id = String::from_utf8_lossy(&id.value).into_owned();
    Ok(read(region, &region.keys.sd_service(&id))?.ok_or_else(not_found)?)
}

/// Every service of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<ServiceRecord>> {
    Ok(read_all(region, &region.keys.sd_services())?.1.into_iter().map(|s| s.record).collect())
}

/// How many instances a service has.
pub fn instance_count(region: &Region<'_>, id: &str) -> ControlResult<usize> {
    Ok(keys_under(region, &region.keys.sd_instances(id))?.1.len())
}

/// What UpdateService changes: the description, and the TTLs of the service's records (the
/// same record types it has).
#[derive(Debug, Clone, Default)]
pub struct ServiceChange {
    pub description: Option<String>,
    pub records: Option<Vec<DnsRecord>>,
}

fn apply(service: &mut ServiceRecord, change: &ServiceChange) -> Result<(), DiscoveryError> {
    if let Some(records) = &change.records {
        let Some(dns) = service.dns.as_mut() else {
            return Err(DiscoveryError::invalid(format!(
                "Service {} has no DNS records to update: it is an HTTP service.",
                service.id
            )));
        };
        let mut had: Vec<RecordType> = dns.records.iter().map(|r| r.kind).collect();
        let mut asked: Vec<RecordType> = records.iter().map(|r| r.kind).collect();
        had.sort();
        asked.sort();
        if had != asked {
            return Err(DiscoveryError::invalid(
                "UpdateService changes the TTLs of a service's records: name exactly the record types it has.",
            ));
        }
        let updated = DnsConfig { routing_policy: dns.routing_policy, records: records.clone() };
        check_records(&updated)?;
        *dns = updated;
    }
    if let Some(d) = &change.description {
        service.description = Some(d.clone());
    }
    Ok(())
}

/// UpdateService: the change, and its operation.
pub async fn update(region: &Region<'_>, given: &str, change: &ServiceChange) -> ControlResult<OperationRecord> {
    retry(|| async {
        let mut service = get(region, given)?;
        apply(&mut service.record, change)?;
        let op = operations::finished(region, OperationType::UpdateService, &[("SERVICE", &service.record.id)], None);
        let compares = vec![Compare::unchanged(&service.kv.key, service.kv.mod_revision)];
        let mut ops = vec![Op::put(&service.kv.key, encode(&service.record))];
        ops.extend(operations::insert_ops(region, &op));
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(op))
    })
    .await
}

/// DeleteService: only a service without instances.
pub async fn delete(region: &Region<'_>, given: &str) -> ControlResult<()> {
    retry(|| async {
        let service = get(region, given)?;
        let s = &service.record;
        let (at, instances) = keys_under(region, &region.keys.sd_instances(&s.id))?;
        if !instances.is_empty() {
            return Err(DiscoveryError::ResourceInUse(format!(
                "Service {} has {} registered instance(s): deregister them first.",
                s.id,
                instances.len()
            ))
            .into());
        }
        let compares = vec![
            Compare::unchanged(&service.kv.key, service.kv.mod_revision),
            Compare::prefix_unchanged_since(&region.keys.sd_instances(&s.id), at),
        ];
        let mut ops = vec![
            Op::delete(&service.kv.key),
            Op::delete(&region.keys.sd_service_name(&s.namespace_id, &s.name)),
            Op::delete(&region.keys.sd_instances_revision(&s.id)),
        ];
        if let Some(token) = &s.creator_request_id {
            ops.push(Op::delete(&region.keys.sd_request("CreateService", token)));
        }
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(()))
    })
    .await
}

/// UpdateServiceAttributes (`set`) and DeleteServiceAttributes (`remove`).
pub async fn change_attributes(
    region: &Region<'_>,
    given: &str,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> ControlResult<()> {
    retry(|| async {
        let mut service = get(region, given)?;
        let attributes = &mut service.record.attributes;
        attributes.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        attributes.retain(|k, _| !remove.contains(k));
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(DiscoveryError::ServiceAttributesLimit(MAX_ATTRIBUTES).into());
        }
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&service.kv.key, service.kv.mod_revision)])
            .and_then(vec![Op::put(&service.kv.key, encode(&service.record))]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}

#[cfg(test)]
pub(crate) mod tests;
