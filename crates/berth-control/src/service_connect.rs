//! Service Connect on the control plane. A service with `serviceConnectConfiguration` is a
//! member of one Cloud Map namespace; each of its `services` entries is a Cloud Map service
//! (named by its `discoveryName`, made by ECS — here by CreateService — with no DNS records,
//! tagged `AmazonECSManaged`) whose instances are the service's tasks, registered as
//! `serviceRegistries` are (`service_registries`), and whose client aliases are kept on the
//! Cloud Map service record ([`ConnectEndpoint`]).
//!
//! A task of a member service is told, when it is assigned, every client alias of its
//! namespace ([`assigned`]): its agent gives each one an address in 127.255.0.0/16, names it in
//! the task's `/etc/hosts` and proxies it to the instances of the alias's Cloud Map service.
//! What CreateService checked is kept on the ECS service object as [`Membership`] (the
//! `berthServiceConnect` member, which DescribeServices does not show).

use std::net::Ipv4Addr;

use berth_agent_protocol::connect::{ClientAlias, IngressPort, ServiceConnect};
use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Region;
use crate::discovery::records::{ServiceRecord as CloudMapService, Tag};
use crate::discovery::{self, DiscoveryError};
use crate::error::{ControlError, ControlResult};
use crate::services::ServiceRecord;
use crate::store::{encode, retry};

/// The member of the ECS service object that keeps its membership.
pub const MEMBER: &str = "berthServiceConnect";

/// The tag ECS puts on the Cloud Map services it makes.
pub const MANAGED_TAG: &str = "AmazonECSManaged";

/// The first address of the client aliases in a task.
const ALIAS_BASE: Ipv4Addr = Ipv4Addr::new(127, 255, 0, 1);

/// What Service Connect keeps on a Cloud Map service it made: how clients reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectEndpoint {
    /// `(dnsName, port)` of each client alias (ECS allows one).
    pub aliases: Vec<(String, u16)>,
    /// Seconds without a byte before a connection is closed; 0: never.
    pub idle_timeout_seconds: u64,
}

/// A service's membership, as CreateService or UpdateService checked it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub namespace_id: String,
    pub namespace_name: String,
    /// The Cloud Map services its tasks register in.
    pub services: Vec<Served>,
}

/// One `services` entry: where the service's tasks are registered, at which port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    pub discovery_name: String,
    pub discovery_arn: String,
    /// The port the instances are registered with: `ingressPortOverride`, else the named
    /// port mapping's container port.
    pub port: u16,
    /// With `ingressPortOverride`: the container port the ingress listener leads to.
    pub ingress_target: Option<u16>,
    pub idle_timeout_seconds: u64,
}

/// A service's membership, if it has one.
pub fn membership(service: &ServiceRecord) -> Option<Membership> {
    service.service.get(MEMBER).and_then(|m| serde_json::from_value(m.clone()).ok())
}

/// Whether the Cloud Map service was made by Service Connect (ECS's tag says so).
pub fn managed(service: &CloudMapService) -> bool {
    service.tags.iter().any(|t| t.key == MANAGED_TAG && t.value == "true")
}

/// The Cloud Map service named `name` in namespace `namespace_id` for a Service Connect
/// entry: made (with no DNS records, tagged as ECS's) when there is none, else the one
/// Service Connect made before, with `endpoint` as its aliases. One that Service Connect did not
/// make is refused.
pub async fn discovery_service(
    region: &Region<'_>,
    namespace_id: &str,
    name: &str,
    endpoint: &ConnectEndpoint,
) -> ControlResult<CloudMapService> {
    retry(|| async {
        match discovery::services::by_name(region, namespace_id, name) {
            Ok(found) => {
                if !managed(&found.record) {
                    return Err(not_ours(name, namespace_id));
                }
                if found.record.connect.as_ref() == Some(endpoint) {
                    return Ok(Some(found.record));
                }
                let mut record = found.record;
                record.connect = Some(endpoint.clone());
                let txn = Txn::new()
                    .when(vec![Compare::unchanged(&found.kv.key, found.kv.mod_revision)])
                    .and_then(vec![Op::put(&found.kv.key, encode(&record))]);
                Ok(region.store().txn(txn).await?.succeeded.then_some(record))
            }
            Err(ControlError::Discovery(DiscoveryError::ServiceNameNotFound(_))) => {
                let new = discovery::services::NewService {
                    name: name.to_string(),
                    namespace: namespace_id.to_string(),
                    description: None,
                    dns: None,
                    http_only: true,
                    custom_health: None,
                    tags: vec![Tag { key: MANAGED_TAG.into(), value: "true".into() }],
                    creator_request_id: None,
                    connect: Some(endpoint.clone()),
                };
                match discovery::services::create(region, &new).await {
                    Ok(record) => Ok(Some(record)),
                    // Made meanwhile by another request: look again.
                    Err(ControlError::Discovery(DiscoveryError::ServiceAlreadyExists { .. })) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    })
    .await
}

fn not_ours(name: &str, namespace_id: &str) -> ControlError {
    DiscoveryError::invalid(format!(
        "The Cloud Map service {name} of namespace {namespace_id} was not made by Service Connect; give the \
         Service Connect service another discoveryName."
    ))
    .into()
}

/// The Service Connect part of a task's assignment: every client alias of its service's
/// namespace (in a stable order, each with its own address) and its own ingress ports.
/// `None` for a task of no member service (or of a service since deleted).
pub fn assigned(region: &Region<'_>, cluster: &str, group: Option<&str>) -> ControlResult<Option<ServiceConnect>> {
    let Some(name) = group.and_then(|g| g.strip_prefix("service:")) else { return Ok(None) };
    let Some(kv) = region.store().get(&region.keys.service(cluster, name))? else { return Ok(None) };
    let service: ServiceRecord = crate::store::decode(&kv)?;
    let Some(member) = membership(&service) else { return Ok(None) };
    let mut aliases: Vec<(String, u16, String, u64)> = Vec::new();
    for s in discovery::services::list(region)? {
        if s.namespace_id != member.namespace_id {
            continue;
        }
        let Some(endpoint) = &s.connect else { continue };
        for (dns_name, port) in &endpoint.aliases {
            aliases.push((dns_name.clone(), *port, s.name.clone(), endpoint.idle_timeout_seconds));
        }
    }
    aliases.sort();
    aliases.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let aliases = aliases
        .into_iter()
        .enumerate()
        .map(|(i, (dns_name, port, service, idle))| ClientAlias {
            dns_name,
            port,
            address: alias_address(i),
            service,
            idle_timeout_seconds: idle,
        })
        .collect();
    let ingress = member
        .services
        .iter()
        .filter_map(|s| {
            s.ingress_target.map(|target| IngressPort {
                port: s.port,
                target,
                idle_timeout_seconds: s.idle_timeout_seconds,
            })
        })
        .collect();
    Ok(Some(ServiceConnect { namespace: member.namespace_name, aliases, ingress }))
}

/// The address of a task's `i`-th client alias: 127.255.0.1 on, skipping each block's
/// network and broadcast-looking ends so that every address is a plain host address.
pub fn alias_address(i: usize) -> Ipv4Addr {
    let base = u32::from(ALIAS_BASE);
    let (block, host) = (i / 254, i % 254);
    Ipv4Addr::from(base + (block as u32) * 256 + host as u32)
}

/// The membership of a service as the ECS object keeps it.
pub fn to_member(m: &Membership) -> Value {
    serde_json::to_value(m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_addresses_are_distinct_host_addresses_of_the_range() {
        assert_eq!(alias_address(0), Ipv4Addr::new(127, 255, 0, 1));
        assert_eq!(alias_address(253), Ipv4Addr::new(127, 255, 0, 254));
        assert_eq!(alias_address(254), Ipv4Addr::new(127, 255, 1, 1));
        let all: std::collections::BTreeSet<_> = (0..5000).map(alias_address).collect();
        assert_eq!(all.len(), 5000);
        assert!(all.iter().all(|a| a.octets()[0] == 127 && a.octets()[1] == 255 && !matches!(a.octets()[3], 0 | 255)));
    }
}
