//! Instances: what is registered in a service, with attributes — Cloud Map's reserved ones
//! (`AWS_INSTANCE_IPV4`, `AWS_INSTANCE_IPV6`, `AWS_INSTANCE_PORT`, `AWS_INSTANCE_CNAME`,
//! `AWS_ALIAS_DNS_NAME`, `AWS_INIT_HEALTH_STATUS`), checked against the service's DNS records as
//! Cloud Map checks them, and any others — and, for a service with a custom health check, a
//! health status set by UpdateInstanceCustomHealthStatus.
//!
//! These are also what the ECS side calls to register a service's tasks
//! ([`register`], [`deregister`], [`set_custom_health`]).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use berth_store::{Compare, Op, Txn};

use super::records::{
    CustomHealth, InstanceRecord, OperationRecord, OperationType, RecordType, RoutingPolicy, ServiceRecord,
};
use super::requests::{self, RequestRecord};
use super::services::{self};
use super::{DiscoveryError, operations};
use crate::Region;
use crate::error::{ControlError, ControlResult};
use crate::store::{encode, retry};
use crate::vpc::{Stored, read, read_all};

pub const IPV4: &str = "AWS_INSTANCE_IPV4";
pub const IPV6: &str = "AWS_INSTANCE_IPV6";
pub const PORT: &str = "AWS_INSTANCE_PORT";
pub const CNAME: &str = "AWS_INSTANCE_CNAME";
pub const ALIAS: &str = "AWS_ALIAS_DNS_NAME";
pub const INIT_HEALTH: &str = "AWS_INIT_HEALTH_STATUS";
pub const EC2_INSTANCE: &str = "AWS_EC2_INSTANCE_ID";

/// Attributes an instance may have, and their total size in bytes (Cloud Map's quotas).
pub const MAX_ATTRIBUTES: usize = 30;
pub const MAX_ATTRIBUTES_SIZE: usize = 5000;

fn invalid(message: String) -> DiscoveryError {
    DiscoveryError::InvalidInput(message)
}

/// An instance id: 1–64 characters of letters, digits and `_/:.@-`.
pub fn check_id(id: &str) -> Result<(), DiscoveryError> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/:.@-".contains(&b));
    if !ok {
        return Err(invalid(format!(
            "The instance id '{id}' is not valid: use 1 to 64 letters, digits and the characters _/:.@-."
        )));
    }
    Ok(())
}

/// Cloud Map's rules for the attributes of an instance of `service`.
pub fn check_attributes(service: &ServiceRecord, attributes: &BTreeMap<String, String>) -> Result<(), DiscoveryError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!("An instance can have at most {MAX_ATTRIBUTES} attributes.")));
    }
    let size: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ATTRIBUTES_SIZE {
        return Err(invalid(format!("The attributes total {size} bytes, more than {MAX_ATTRIBUTES_SIZE}.")));
    }
    let has = |k: &str| attributes.contains_key(k);
    if has(EC2_INSTANCE) {
        return Err(invalid(format!("{EC2_INSTANCE} is not supported: Berth has no EC2 instances.")));
    }
    if let Some(v) = attributes.get(IPV4)
        && v.parse::<Ipv4Addr>().is_err()
    {
        return Err(invalid(format!("{IPV4} '{v}' is not an IPv4 address.")));
    }
    if let Some(v) = attributes.get(IPV6)
        && v.parse::<Ipv6Addr>().is_err()
    {
        return Err(invalid(format!("{IPV6} '{v}' is not an IPv6 address.")));
    }
    if let Some(v) = attributes.get(PORT)
        && v.parse::<u16>().is_err()
    {
        return Err(invalid(format!("{PORT} '{v}' is not a port (0 to 65535).")));
    }
    if let Some(v) = attributes.get(INIT_HEALTH) {
        if service.custom_health.is_none() {
            return Err(invalid(format!("{INIT_HEALTH} needs a service with a custom health check.")));
        }
        if CustomHealth::parse(v).is_none() {
            return Err(invalid(format!("{INIT_HEALTH} '{v}' must be HEALTHY or UNHEALTHY.")));
        }
    }
    let Some(dns) = &service.dns else {
        if has(ALIAS) {
            return Err(invalid(format!("{ALIAS} needs a service with DNS records.")));
        }
        return Ok(());
    };
    if let Some(alias) = attributes.get(ALIAS) {
        let alone = ![IPV4, IPV6, PORT, CNAME].iter().any(|k| has(k));
        let fits =
            dns.routing_policy == RoutingPolicy::Weighted && !dns.has(RecordType::Srv) && !dns.has(RecordType::Cname);
        if !alone || !fits {
            return Err(invalid(format!(
                "{ALIAS} goes alone (no AWS_INSTANCE_* attributes), in a service with WEIGHTED routing and A or AAAA records only."
            )));
        }
        super::namespaces::check_dns_name(alias)
            .map_err(|_| invalid(format!("{ALIAS} '{alias}' is not a domain name.")))?;
        return Ok(());
    }
    let need = |kind: RecordType, key: &str| {
        if dns.has(kind) && !has(key) {
            Err(invalid(format!("The service has a {} record: the instance needs {key}.", kind.as_str())))
        } else {
            Ok(())
        }
    };
    need(RecordType::A, IPV4)?;
    need(RecordType::Aaaa, IPV6)?;
    need(RecordType::Cname, CNAME)?;
    need(RecordType::Srv, PORT)?;
    if dns.has(RecordType::Srv) && !has(IPV4) && !has(IPV6) {
        return Err(invalid(format!("The service has an SRV record: the instance needs {IPV4}, {IPV6} or both.")));
    }
    if let Some(cname) = attributes.get(CNAME) {
        super::namespaces::check_dns_name(cname)
            .map_err(|_| invalid(format!("{CNAME} '{cname}' is not a domain name.")))?;
    }
    Ok(())
}

/// The health a registration starts or continues with: none without a custom health check;
/// `AWS_INIT_HEALTH_STATUS`, else what the instance had, else HEALTHY.
fn initial_health(
    service: &ServiceRecord,
    attributes: &BTreeMap<String, String>,
    before: Option<&InstanceRecord>,
) -> Option<CustomHealth> {
    service.custom_health?;
    attributes
        .get(INIT_HEALTH)
        .and_then(|v| CustomHealth::parse(v))
        .or_else(|| before.and_then(|b| b.health))
        .or(Some(CustomHealth::Healthy))
}

/// RegisterInstance: creates the instance, or replaces the attributes of one of that id. A
/// retry with the same `creator_request_id` changes nothing and answers the first operation.
pub async fn register(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
    attributes: &BTreeMap<String, String>,
    creator_request_id: Option<&str>,
) -> ControlResult<OperationRecord> {
    check_id(instance_id)?;
    let fingerprint = requests::fingerprint(&(service_id, instance_id, attributes));
    retry(|| async {
        let request = match creator_request_id {
            Some(token) => Some(requests::replay(region, "RegisterInstance", token, &fingerprint)?),
            None => None,
        };
        if let Some((_, Some(done))) = &request {
            return Ok(Some(operations::get(region, done.operation_id.as_deref().unwrap_or_default())?));
        }
        let request_key = request.as_ref().map(|(k, _)| k.clone());
        let (mut compares, mut ops, op) =
            put_instance(region, service_id, instance_id, attributes, creator_request_id, request_key)?;
        if let Some((request_key, None)) = &request {
            let done = RequestRecord {
                fingerprint: fingerprint.clone(),
                operation_id: Some(op.id.clone()),
                target: instance_id.to_string(),
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

/// For ECS services (`serviceRegistries`): the compares and writes that register an instance,
/// to commit with the task's own change.
pub fn register_ops(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
    attributes: &BTreeMap<String, String>,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    check_id(instance_id)?;
    let (compares, ops, _) = put_instance(region, service_id, instance_id, attributes, None, None)?;
    Ok((compares, ops))
}

/// The compares and writes that create or replace an instance, and the operation they record.
fn put_instance(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
    attributes: &BTreeMap<String, String>,
    creator_request_id: Option<&str>,
    request_key: Option<String>,
) -> ControlResult<(Vec<Compare>, Vec<Op>, OperationRecord)> {
    let service = services::get(region, service_id)?;
    let s = &service.record;
    check_attributes(s, attributes)?;
    let key = region.keys.sd_instance(&s.id, instance_id);
    let before: Option<Stored<InstanceRecord>> = read(region, &key)?;
    let instance = InstanceRecord {
        id: instance_id.to_string(),
        service_id: s.id.clone(),
        namespace_id: s.namespace_id.clone(),
        attributes: attributes.clone(),
        creator_request_id: creator_request_id.map(str::to_string),
        health: initial_health(s, attributes, before.as_ref().map(|b| &b.record)),
        created: before.as_ref().map(|b| b.record.created).unwrap_or_else(|| region.timestamp()),
    };
    let targets = [("NAMESPACE", s.namespace_id.as_str()), ("SERVICE", s.id.as_str()), ("INSTANCE", instance_id)];
    let op = operations::finished(region, OperationType::RegisterInstance, &targets, request_key);
    let compares = vec![
        Compare::unchanged(&service.kv.key, service.kv.mod_revision),
        Compare::unchanged(&key, before.as_ref().map(|b| b.kv.mod_revision).unwrap_or(0)),
    ];
    let mut ops =
        vec![Op::put(&key, encode(&instance)), Op::put(&region.keys.sd_instances_revision(&s.id), Vec::new())];
    ops.extend(operations::insert_ops(region, &op));
    Ok((compares, ops, op))
}

/// DeregisterInstance: `InstanceNotFound` when the service has no such instance.
pub async fn deregister(region: &Region<'_>, service_id: &str, instance_id: &str) -> ControlResult<OperationRecord> {
    retry(|| async {
        let (service, instance) = get(region, service_id, instance_id)?;
        let (compares, ops, op) = remove_instance(region, &service.record, &instance);
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(op))
    })
    .await
}

/// For ECS services: the compares and writes that deregister an instance, to commit with the
/// task's own change; nothing when the instance (or its service) is gone already.
pub fn deregister_ops(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    match get(region, service_id, instance_id) {
        Ok((service, instance)) => {
            let (compares, ops, _) = remove_instance(region, &service.record, &instance);
            Ok((compares, ops))
        }
        Err(ControlError::Discovery(DiscoveryError::ServiceNotFound(_) | DiscoveryError::InstanceNotFound(_))) => {
            Ok(Default::default())
        }
        Err(e) => Err(e),
    }
}

fn remove_instance(
    region: &Region<'_>,
    s: &ServiceRecord,
    instance: &Stored<InstanceRecord>,
) -> (Vec<Compare>, Vec<Op>, OperationRecord) {
    let targets =
        [("NAMESPACE", s.namespace_id.as_str()), ("SERVICE", s.id.as_str()), ("INSTANCE", instance.record.id.as_str())];
    let op = operations::finished(region, OperationType::DeregisterInstance, &targets, None);
    let compares = vec![Compare::unchanged(&instance.kv.key, instance.kv.mod_revision)];
    let mut ops = vec![Op::delete(&instance.kv.key), Op::put(&region.keys.sd_instances_revision(&s.id), Vec::new())];
    ops.extend(operations::insert_ops(region, &op));
    (compares, ops, op)
}

/// A service and one of its instances: `ServiceNotFound`, `InstanceNotFound`.
pub fn get(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
) -> ControlResult<(Stored<ServiceRecord>, Stored<InstanceRecord>)> {
    let service = services::get(region, service_id)?;
    let key = region.keys.sd_instance(&service.record.id, instance_id);
    let instance = read(region, &key)?.ok_or_else(|| DiscoveryError::InstanceNotFound(instance_id.to_string()))?;
    Ok((service, instance))
}

/// Every instance of a service, by id (hex order of their keys).
pub fn list(region: &Region<'_>, service_id: &str) -> ControlResult<Vec<InstanceRecord>> {
    Ok(read_all(region, &region.keys.sd_instances(service_id))?.1.into_iter().map(|s| s.record).collect())
}

/// UpdateInstanceCustomHealthStatus: `CustomHealthNotFound` for a service without
/// `HealthCheckCustomConfig`. Setting the status it has is no change.
pub async fn set_custom_health(
    region: &Region<'_>,
    service_id: &str,
    instance_id: &str,
    status: CustomHealth,
) -> ControlResult<()> {
    retry(|| async {
        let (service, mut instance) = get(region, service_id, instance_id)?;
        if service.record.custom_health.is_none() {
            return Err(DiscoveryError::CustomHealthNotFound(service.record.id.clone()).into());
        }
        if instance.record.health == Some(status) {
            return Ok(Some(()));
        }
        instance.record.health = Some(status);
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&instance.kv.key, instance.kv.mod_revision)])
            .and_then(vec![Op::put(&instance.kv.key, encode(&instance.record))]);
        Ok(region.store().txn(txn).await?.succeeded.then_some(()))
    })
    .await
}

#[cfg(test)]
mod tests;
