//! DiscoverInstances and DiscoverInstancesRevision: a service's instances found by the
//! namespace's `HttpName` and the service's name, filtered by attributes (`QueryParameters`
//! must all match; `OptionalParameters` narrow the answer only when some instance matches
//! them too) and by health (ignored for services without a health check), in random order.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::records::{HealthStatus, InstanceRecord, NamespaceRecord, ServiceRecord};
use super::{instances, namespaces, services};
use crate::Region;
use crate::error::ControlResult;

/// Which instances by health (`HealthStatus` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthFilter {
    Healthy,
    Unhealthy,
    All,
    /// Healthy ones, or all of them when none is healthy.
    HealthyOrElseAll,
}

impl HealthFilter {
    pub fn parse(s: &str) -> Option<HealthFilter> {
        match s {
            "HEALTHY" => Some(HealthFilter::Healthy),
            "UNHEALTHY" => Some(HealthFilter::Unhealthy),
            "ALL" => Some(HealthFilter::All),
            "HEALTHY_OR_ELSE_ALL" => Some(HealthFilter::HealthyOrElseAll),
            _ => None,
        }
    }
}

pub struct Query<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub query: &'a BTreeMap<String, String>,
    pub optional: &'a BTreeMap<String, String>,
    pub health: HealthFilter,
    pub max_results: usize,
}

pub struct Found {
    pub namespace: NamespaceRecord,
    pub service: ServiceRecord,
    pub instances: Vec<(InstanceRecord, HealthStatus)>,
    pub revision: u64,
}

fn matches(instance: &InstanceRecord, filter: &BTreeMap<String, String>) -> bool {
    filter.iter().all(|(k, v)| instance.attributes.get(k) == Some(v))
}

/// Narrows `all` by health, as the filter says (a service without health check: unchanged).
fn by_health(all: Vec<(InstanceRecord, HealthStatus)>, filter: HealthFilter) -> Vec<(InstanceRecord, HealthStatus)> {
    let healthy = |h: HealthStatus| h != HealthStatus::Unhealthy;
    match filter {
        HealthFilter::All => all,
        HealthFilter::Healthy => all.into_iter().filter(|(_, h)| healthy(*h)).collect(),
        HealthFilter::Unhealthy => all.into_iter().filter(|(_, h)| *h == HealthStatus::Unhealthy).collect(),
        HealthFilter::HealthyOrElseAll => {
            if all.iter().any(|(_, h)| healthy(*h)) {
                all.into_iter().filter(|(_, h)| healthy(*h)).collect()
            } else {
                all
            }
        }
    }
}

fn locate(region: &Region<'_>, namespace: &str, service: &str) -> ControlResult<(NamespaceRecord, ServiceRecord)> {
    let ns = namespaces::by_name(region, namespace)?.record;
    let svc = services::by_name(region, &ns.id, service)?.record;
    Ok((ns, svc))
}

/// The service's `InstancesRevision`: the store revision of its last registration or
/// deregistration (0 before the first).
pub fn revision(region: &Region<'_>, namespace: &str, service: &str) -> ControlResult<(ServiceRecord, u64)> {
    let (_, svc) = locate(region, namespace, service)?;
    let rev = region.store().get(&region.keys.sd_instances_revision(&svc.id))?.map(|kv| kv.mod_revision).unwrap_or(0);
    Ok((svc, rev))
}

/// DiscoverInstances.
pub fn discover(region: &Region<'_>, q: &Query<'_>) -> ControlResult<Found> {
    let (namespace, service) = locate(region, q.namespace, q.service)?;
    let revision = revision(region, q.namespace, q.service)?.1;
    let all: Vec<(InstanceRecord, HealthStatus)> = instances::list(region, &service.id)?
        .into_iter()
        .filter(|i| matches(i, q.query))
        .map(|i| {
            let h = i.health_status();
            (i, h)
        })
        .collect();
    let all = if service.custom_health.is_some() { by_health(all, q.health) } else { all };
    let narrowed: Vec<_> = all.iter().filter(|(i, _)| matches(i, q.optional)).cloned().collect();
    let mut chosen = if narrowed.is_empty() { all } else { narrowed };
    let mut rng = rand::rngs::StdRng::seed_from_u64(region.control.ids.seed());
    chosen.shuffle(&mut rng);
    chosen.truncate(q.max_results);
    Ok(Found { namespace, service, instances: chosen, revision })
}
