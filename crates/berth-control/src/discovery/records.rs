//! The records Cloud Map keeps, typed: namespaces, services, instances and operations, with
//! the enums the API names their kinds and states by (an unknown value fails to decode).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::vpc::tags::Tag;

/// What a namespace is. Berth makes no public DNS namespaces (there is no public DNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceType {
    #[serde(rename = "DNS_PRIVATE")]
    DnsPrivate,
    #[serde(rename = "HTTP")]
    Http,
}

impl NamespaceType {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceType::DnsPrivate => "DNS_PRIVATE",
            NamespaceType::Http => "HTTP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRecord {
    /// `ns-` and 16 characters.
    pub id: String,
    pub arn: String,
    /// As given; unique in the region whatever its case (it is also the `HttpName`).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NamespaceType,
    #[serde(default)]
    pub description: Option<String>,
    /// The VPC of a private DNS namespace.
    #[serde(default)]
    pub vpc: Option<String>,
    /// The SOA record's TTL (negative caching) of a private DNS namespace.
    #[serde(default)]
    pub soa_ttl: Option<i64>,
    /// The hosted zone a private DNS namespace stands for.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// Seconds since the epoch.
    pub created: f64,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl NamespaceRecord {
    pub fn is_dns(&self) -> bool {
        self.kind == NamespaceType::DnsPrivate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Srv => "SRV",
            RecordType::Cname => "CNAME",
        }
    }

    pub fn parse(s: &str) -> Option<RecordType> {
        [RecordType::A, RecordType::Aaaa, RecordType::Srv, RecordType::Cname].into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoutingPolicy {
    /// Up to eight healthy records per answer (all of them over TCP).
    #[serde(rename = "MULTIVALUE")]
    Multivalue,
    /// One record per answer, chosen at random (all weights are equal).
    #[serde(rename = "WEIGHTED")]
    Weighted,
}

impl RoutingPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingPolicy::Multivalue => "MULTIVALUE",
            RoutingPolicy::Weighted => "WEIGHTED",
        }
    }

    pub fn parse(s: &str) -> Option<RoutingPolicy> {
        [RoutingPolicy::Multivalue, RoutingPolicy::Weighted].into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecord {
    #[serde(rename = "type")]
    pub kind: RecordType,
    pub ttl: i64,
}

/// The records a service's instances get in its namespace's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsConfig {
    pub routing_policy: RoutingPolicy,
    pub records: Vec<DnsRecord>,
}

impl DnsConfig {
    pub fn has(&self, kind: RecordType) -> bool {
        self.records.iter().any(|r| r.kind == kind)
    }
}

/// How a service's instances are found: `DNS_HTTP` (DNS and DiscoverInstances) for services
/// with DNS records, `HTTP` (DiscoverInstances only) otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "DNS_HTTP")]
    DnsHttp,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Http => "HTTP",
            ServiceType::DnsHttp => "DNS_HTTP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    /// `srv-` and 16 characters.
    pub id: String,
    pub arn: String,
    pub name: String,
    pub namespace_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    #[serde(rename = "type")]
    pub kind: ServiceType,
    /// `HealthCheckCustomConfig`: present when the instances' health is reported through
    /// UpdateInstanceCustomHealthStatus; its `FailureThreshold`, deprecated by Cloud Map, is
    /// kept for reporting only.
    #[serde(default)]
    pub custom_health: Option<CustomHealthConfig>,
    pub created: f64,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Service attributes (GetServiceAttributes).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// For a service Service Connect made: how clients reach it (not shown by Cloud Map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<crate::service_connect::ConnectEndpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthConfig {
    #[serde(default)]
    pub failure_threshold: Option<i64>,
}

/// An instance's custom health, as UpdateInstanceCustomHealthStatus sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomHealth {
    #[serde(rename = "HEALTHY")]
    Healthy,
    #[serde(rename = "UNHEALTHY")]
    Unhealthy,
}

impl CustomHealth {
    pub fn parse(s: &str) -> Option<CustomHealth> {
        match s {
            "HEALTHY" => Some(CustomHealth::Healthy),
            "UNHEALTHY" => Some(CustomHealth::Unhealthy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CustomHealth::Healthy => "HEALTHY",
            CustomHealth::Unhealthy => "UNHEALTHY",
        }
    }
}

/// An instance's health as the API reports it: `UNKNOWN` for services without a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    Unknown,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
            HealthStatus::Unknown => "UNKNOWN",
        }
    }

    /// Whether DNS answers and health filters count it as healthy (no health check: yes).
    pub fn serves(self) -> bool {
        self != HealthStatus::Unhealthy
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    pub id: String,
    pub service_id: String,
    pub namespace_id: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    /// The custom health of an instance of a service with `HealthCheckCustomConfig`.
    #[serde(default)]
    pub health: Option<CustomHealth>,
    pub created: f64,
}

impl InstanceRecord {
    /// Its health as reported: the custom status, or `UNKNOWN` without a health check.
    pub fn health_status(&self) -> HealthStatus {
        match self.health {
            Some(CustomHealth::Healthy) => HealthStatus::Healthy,
            Some(CustomHealth::Unhealthy) => HealthStatus::Unhealthy,
            None => HealthStatus::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    CreateNamespace,
    DeleteNamespace,
    UpdateNamespace,
    UpdateService,
    RegisterInstance,
    DeregisterInstance,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::CreateNamespace => "CREATE_NAMESPACE",
            OperationType::DeleteNamespace => "DELETE_NAMESPACE",
            OperationType::UpdateNamespace => "UPDATE_NAMESPACE",
            OperationType::UpdateService => "UPDATE_SERVICE",
            OperationType::RegisterInstance => "REGISTER_INSTANCE",
            OperationType::DeregisterInstance => "DEREGISTER_INSTANCE",
        }
    }
}

/// An operation's state: `SUBMITTED` → `PENDING` → `SUCCESS` or `FAIL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationStatus {
    Submitted,
    Pending,
    Success,
    Fail,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Submitted => "SUBMITTED",
            OperationStatus::Pending => "PENDING",
            OperationStatus::Success => "SUCCESS",
            OperationStatus::Fail => "FAIL",
        }
    }

    /// The state after `self`; `None` from a final one.
    pub fn next(self, succeeded: bool) -> Option<OperationStatus> {
        match self {
            OperationStatus::Submitted => Some(OperationStatus::Pending),
            OperationStatus::Pending if succeeded => Some(OperationStatus::Success),
            OperationStatus::Pending => Some(OperationStatus::Fail),
            OperationStatus::Success | OperationStatus::Fail => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: OperationType,
    pub status: OperationStatus,
    /// `NAMESPACE`, `SERVICE`, `INSTANCE` → the id of each resource it changed.
    pub targets: BTreeMap<String, String>,
    pub created: f64,
    pub updated: f64,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The request key (`CreatorRequestId`) that produced it, removed with it.
    #[serde(default)]
    pub request_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_read_as_the_api_writes_them() {
        let r: DnsRecord = serde_json::from_str(r#"{"type":"SRV","ttl":10}"#).unwrap();
        assert_eq!(r.kind, RecordType::Srv);
        assert!(serde_json::from_str::<DnsRecord>(r#"{"type":"MX","ttl":10}"#).is_err());
        assert_eq!(serde_json::to_string(&OperationType::RegisterInstance).unwrap(), "\"REGISTER_INSTANCE\"");
        assert_eq!(RecordType::parse("AAAA"), Some(RecordType::Aaaa));
        assert_eq!(OperationStatus::Submitted.next(true), Some(OperationStatus::Pending));
        assert_eq!(OperationStatus::Pending.next(false), Some(OperationStatus::Fail));
        assert_eq!(OperationStatus::Success.next(true), None);
    }
}
