//! What Berth's DNS server answers, built from the store: a zone per private DNS namespace of
//! every region, with the record sets of its services' registered instances, and the private
//! DNS names of awsvpc tasks' network interfaces, and load balancers' DNS names (answered with
//! the address their listeners are served on). [`feed`] rebuilds it whenever Cloud Map or EC2
//! records change, or a load balancer comes or goes.
//!
//! A service's records, as Cloud Map has Route 53 make them: at `SERVICE.NAMESPACE`, an A
//! record per instance with `AWS_INSTANCE_IPV4` (an alias per instance with
//! `AWS_ALIAS_DNS_NAME`), AAAA per `AWS_INSTANCE_IPV6`, CNAME per `AWS_INSTANCE_CNAME`, and
//! SRV `1 1 PORT INSTANCE.SERVICE.NAMESPACE` per instance, whose target name gets the
//! instance's A and AAAA records. An instance is healthy unless its custom health says
//! otherwise.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use berth_dns::snapshot::{Host, Record, RecordData, RecordSet, Routing, Snapshot, Zone};
use berth_store::KeyRange;

use super::instances::{ALIAS, CNAME, IPV4, IPV6, PORT};
use super::records::{InstanceRecord, NamespaceRecord, RecordType, RoutingPolicy, ServiceRecord};
use super::{instances, namespaces, services};
use crate::error::ControlResult;
use crate::keys::{REGIONS, SD, SD_REGIONS};
use crate::vpc::EniRecord;
use crate::{Control, Region};

/// Changes that come together (a deployment's registrations) are answered by one rebuild.
const SETTLE: Duration = Duration::from_millis(20);

fn ttl(t: i64) -> u32 {
    u32::try_from(t.max(0)).unwrap_or(u32::MAX)
}

/// The regions that have namespaces or clusters, and the installation's own.
fn regions(control: &Control) -> ControlResult<BTreeSet<String>> {
    let mut regions = BTreeSet::from([control.config.region.clone()]);
    for prefix in [SD_REGIONS, REGIONS] {
        for kv in control.store.range(&KeyRange::prefix(prefix))?.kvs {
            regions.insert(kv.key[prefix.len()..].to_string());
        }
    }
    Ok(regions)
}

/// The record sets of one service in its zone `zone`.
fn service_sets(zone: &str, service: &ServiceRecord, instances: &[InstanceRecord]) -> Vec<RecordSet> {
    let Some(dns) = &service.dns else { return Vec::new() };
    let name = format!("{}.{zone}", service.name);
    let routing = match dns.routing_policy {
        RoutingPolicy::Multivalue => Routing::Multivalue,
        RoutingPolicy::Weighted => Routing::Weighted,
    };
    let healthy = |i: &InstanceRecord| i.health_status().serves();
    let attribute = |i: &InstanceRecord, key: &str| i.attributes.get(key).cloned();
    let mut sets = Vec::new();
    let a_ttl = dns.records.iter().find(|r| r.kind == RecordType::A).map(|r| ttl(r.ttl));
    for record in &dns.records {
        let data_of = |i: &InstanceRecord| -> Option<RecordData> {
            match record.kind {
                RecordType::A => match attribute(i, ALIAS) {
                    Some(target) => Some(RecordData::Alias(target)),
                    None => attribute(i, IPV4)?.parse::<Ipv4Addr>().ok().map(RecordData::A),
                },
                RecordType::Aaaa => match attribute(i, ALIAS) {
                    Some(target) => Some(RecordData::Alias(target)),
                    None => attribute(i, IPV6)?.parse::<Ipv6Addr>().ok().map(RecordData::Aaaa),
                },
                RecordType::Cname => attribute(i, CNAME).map(RecordData::Cname),
                RecordType::Srv => Some(RecordData::Srv {
                    priority: 1,
                    weight: 1,
                    port: attribute(i, PORT)?.parse().ok()?,
                    target: format!("{}.{name}", i.id),
                }),
            }
        };
        let records =
            instances.iter().filter_map(|i| Some(Record { data: data_of(i)?, healthy: healthy(i) })).collect();
        sets.push(RecordSet { name: name.clone(), ttl: ttl(record.ttl), routing, records });
    }
    if let Some(srv) = dns.records.iter().find(|r| r.kind == RecordType::Srv) {
        // The SRV targets' own addresses (Cloud Map makes them with the A record's TTL).
        for i in instances {
            let mut records = Vec::new();
            records
                .extend(attribute(i, IPV4).and_then(|v| v.parse().ok()).map(|ip| Record::healthy(RecordData::A(ip))));
            records.extend(
                attribute(i, IPV6).and_then(|v| v.parse().ok()).map(|ip| Record::healthy(RecordData::Aaaa(ip))),
            );
            let target = format!("{}.{name}", i.id);
            sets.push(RecordSet {
                name: target,
                ttl: a_ttl.unwrap_or(ttl(srv.ttl)),
                routing: Routing::Simple,
                records,
            });
        }
    }
    sets
}

fn zone(region: &Region<'_>, ns: &NamespaceRecord, serial: u32) -> ControlResult<Zone> {
    let mut record_sets = Vec::new();
    for service in services::list(region)?.iter().filter(|s| s.namespace_id == ns.id) {
        let instances = instances::list(region, &service.id)?;
        record_sets.extend(service_sets(&ns.name, service, &instances));
    }
    Ok(Zone {
        name: ns.name.clone(),
        soa_ttl: ttl(ns.soa_ttl.unwrap_or(namespaces::DEFAULT_SOA_TTL)),
        serial,
        record_sets,
    })
}

/// The private DNS names of the network interfaces of a region's awsvpc tasks.
fn interface_names(region: &Region<'_>) -> ControlResult<Vec<Host>> {
    let (_, enis) = crate::vpc::read_all::<EniRecord>(region, &region.keys.network_interfaces())?;
    Ok(enis
        .into_iter()
        .map(|e| Host { name: e.record.eni.private_dns_name, addresses: vec![IpAddr::V4(e.record.eni.private_ip)] })
        .collect())
}

/// Every load balancer's `DNSName`, at `lb_address` (where Berth serves every listener).
fn load_balancer_names(region: &Region<'_>, lb_address: IpAddr) -> ControlResult<Vec<Host>> {
    let lbs = crate::elb::load_balancers::list(region)?;
    Ok(lbs.into_iter().map(|lb| Host { name: lb.dns_name, addresses: vec![lb_address] }).collect())
}

/// What the DNS server answers now: every region's private DNS namespaces, awsvpc tasks'
/// private DNS names and, with `lb_address`, load balancers' names. A namespace name two
/// regions share is answered from the first region (in name order) that has it.
pub fn dns_snapshot(control: &Control, lb_address: Option<IpAddr>) -> ControlResult<Snapshot> {
    let serial = u32::try_from(control.store.revision()? % u64::from(u32::MAX)).unwrap_or_default();
    let mut snapshot = Snapshot::default();
    let mut names = BTreeSet::new();
    for name in regions(control)? {
        let region = control.region(&name);
        for ns in namespaces::list(&region)?.iter().filter(|n| n.is_dns()) {
            if names.insert(ns.name.to_ascii_lowercase()) {
                snapshot.zones.push(zone(&region, ns, serial)?);
            } else {
                tracing::warn!(
                    namespace = ns.name,
                    region = name,
                    "a namespace of this name in another region is answered"
                );
            }
        }
        snapshot.hosts.extend(interface_names(&region)?);
        if let Some(address) = lb_address {
            snapshot.hosts.extend(load_balancer_names(&region, address)?);
        }
    }
    Ok(snapshot)
}

/// Waits for a load balancer to be made or deleted (its name index changes), skipping every
/// other change of the load balancers' keys; `false` once the store closes.
async fn load_balancer_change(watch: &mut berth_store::WatchStream) -> bool {
    while let Some(event) = watch.next().await {
        match event {
            Ok(e) if !e.kv.key.contains("/lb-name/") => continue,
            _ => return true,
        }
    }
    false
}

/// Hands `sink` a snapshot now, and a new one after every change of Cloud Map or EC2 records
/// or of the set of load balancers, until the control plane closes.
pub async fn feed(
    control: Arc<Control>,
    lb_address: Option<IpAddr>,
    sink: impl Fn(Snapshot) + Send + 'static,
) -> ControlResult<()> {
    loop {
        let from = control.store.revision()? + 1;
        match dns_snapshot(&control, lb_address) {
            Ok(snapshot) => sink(snapshot),
            Err(e) => tracing::warn!(error = %e, "building the DNS snapshot failed; answering the last one"),
        }
        let mut discovery = control.store.watch(SD, from)?;
        let mut ec2 = control.store.watch("ec2/", from)?;
        let mut elb = control.store.watch("elb/", from)?;
        let changed = tokio::select! {
            event = discovery.next() => event.is_some(),
            event = ec2.next() => event.is_some(),
            changed = load_balancer_change(&mut elb) => changed,
            _ = control.closed() => false,
        };
        if !changed {
            return Ok(());
        }
        tokio::time::sleep(SETTLE).await;
    }
}

#[cfg(test)]
mod tests;
