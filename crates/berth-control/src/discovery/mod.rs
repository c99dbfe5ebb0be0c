//! Cloud Map, as an AWS account has it: namespaces (private DNS ones in a VPC, HTTP ones),
//! services in a namespace with the DNS records Berth's DNS server answers for them, the
//! instances registered in a service with their attributes and custom health, and the
//! operations that record each asynchronous change. Each is a typed record under its own store
//! key (`keys.rs`, `sd/{region}/...`); names are unique through name keys created with a compare
//! on their absence, and every change is a transaction guarded by the revisions it was computed
//! from, retried on a lost race.
//!
//! The Cloud Map handlers (`berth-api/src/servicediscovery/`) call in here; so will the ECS side
//! (a service's `serviceRegistries`), through [`instances::register`],
//! [`instances::deregister`] and [`instances::set_custom_health`]. The DNS server reads what it
//! answers from [`snapshot::dns_snapshot`].
//!
//! Changes Cloud Map runs asynchronously (namespaces, service updates, instance registrations)
//! are applied in the request's own transaction, together with their operation record, which is
//! therefore `SUCCESS` when the request returns (`operations.rs`).

pub mod discover;
pub mod error;
pub mod instances;
pub mod namespaces;
pub mod operations;
pub mod records;
pub mod requests;
pub mod services;
pub mod snapshot;
pub mod tags;

pub use error::DiscoveryError;
pub use records::{
    CustomHealth, DnsConfig, DnsRecord, HealthStatus, InstanceRecord, NamespaceRecord, NamespaceType, OperationRecord,
    OperationStatus, OperationType, RecordType, RoutingPolicy, ServiceRecord, ServiceType,
};

use crate::Region;

/// The service name in Cloud Map's ARNs.
pub const ARN_SERVICE: &str = "servicediscovery";

/// `count` lowercase hex digits, fresh from the id source.
fn random_hex(region: &Region<'_>, count: usize) -> String {
    let mut out = String::new();
    while out.len() < count {
        let uuid = region.control.ids.uuid().replace('-', "");
        // The tail of a UUID varies most (the counter of `SequentialIds`, random bits otherwise).
        out.insert_str(0, &uuid[uuid.len() - 16..]);
    }
    out[out.len() - count..].to_string()
}

/// A new namespace id: `ns-` and 16 characters, as Cloud Map writes them.
pub fn new_namespace_id(region: &Region<'_>) -> String {
    format!("ns-{}", random_hex(region, 16))
}

/// A new service id: `srv-` and 16 characters.
pub fn new_service_id(region: &Region<'_>) -> String {
    format!("srv-{}", random_hex(region, 16))
}

/// A new operation id: 32 characters, a dash and 8 more, as Cloud Map writes them.
pub fn new_operation_id(region: &Region<'_>) -> String {
    format!("{}-{}", random_hex(region, 32), random_hex(region, 8))
}

/// The id of the hosted zone a private DNS namespace stands for: `Z` and 20 characters.
pub fn new_hosted_zone_id(region: &Region<'_>) -> String {
    format!("Z{}", random_hex(region, 20).to_ascii_uppercase())
}

/// The ARN of a namespace (`kind` `namespace`) or service (`service`).
pub fn arn(region: &Region<'_>, kind: &str, id: &str) -> String {
    format!("arn:aws:{ARN_SERVICE}:{}:{}:{kind}/{id}", region.name, region.config().account)
}

/// The id a request names by id or by ARN (of `kind`, in this region and account); `None` for
/// an ARN of anything else.
pub fn id_of<'a>(region: &Region<'_>, kind: &str, given: &'a str) -> Option<&'a str> {
    if !given.starts_with("arn:") {
        return Some(given);
    }
    let prefix = format!("arn:aws:{ARN_SERVICE}:{}:{}:{kind}/", region.name, region.config().account);
    given.strip_prefix(&prefix).filter(|id| !id.is_empty() && !id.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpc::testing::TestRegion;

    #[test]
    fn ids_and_arns_look_like_cloud_maps() {
        let t = TestRegion::new();
        let r = t.region();
        let ns = new_namespace_id(&r);
        assert!(ns.starts_with("ns-") && ns.len() == 19, "{ns}");
        assert_ne!(ns, new_namespace_id(&r));
        let op = new_operation_id(&r);
        assert_eq!(op.split('-').map(str::len).collect::<Vec<_>>(), [32, 8], "{op}");
        let zone = new_hosted_zone_id(&r);
        assert!(zone.starts_with('Z') && zone.len() == 21 && zone == zone.to_ascii_uppercase(), "{zone}");
        let a = arn(&r, "namespace", &ns);
        assert_eq!(a, format!("arn:aws:servicediscovery:us-east-1:000000000000:namespace/{ns}"));
        assert_eq!(id_of(&r, "namespace", &a), Some(ns.as_str()));
        assert_eq!(id_of(&r, "service", &a), None);
        assert_eq!(id_of(&r, "namespace", "ns-1"), Some("ns-1"));
        assert_eq!(id_of(&r, "namespace", "arn:aws:servicediscovery:eu-west-1:000000000000:namespace/ns-1"), None);
    }
}
