//! Service Connect, as the agent needs it: Berth's extension of an assigned task of a service
//! with `serviceConnectConfiguration` (the assigned task's `berthServiceConnect` member: the
//! client aliases of its namespace, fixed when the task starts, as on ECS, and the ingress
//! ports in front of its own), and Cloud Map's `DiscoverInstances`, which the agent calls to
//! keep each alias's endpoints up to date.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::operation;

/// What a task's proxy serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnect {
    /// The Cloud Map namespace's name (what `DiscoverInstances` takes).
    pub namespace: String,
    #[serde(default)]
    pub aliases: Vec<ClientAlias>,
    #[serde(default)]
    pub ingress: Vec<IngressPort>,
}

/// One client alias: `dnsName` resolves to `address` in the task, and connections to
/// `address:port` go to the instances of Cloud Map service `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAlias {
    pub dns_name: String,
    pub port: u16,
    /// In 127.255.0.0/16, one per alias of the task.
    pub address: Ipv4Addr,
    /// The Cloud Map service (the server's `discoveryName`).
    pub service: String,
    /// Seconds without a byte before a connection is closed; 0: never.
    pub idle_timeout_seconds: u64,
}

/// A listener on every address of the task at `port`, leading to the task's own `target`
/// port (`ingressPortOverride`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressPort {
    pub port: u16,
    pub target: u16,
    pub idle_timeout_seconds: u64,
}

/// Cloud Map's `DiscoverInstances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoverInstances {
    pub namespace_name: String,
    pub service_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscoverInstancesResponse {
    #[serde(default)]
    pub instances: Vec<HttpInstanceSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpInstanceSummary {
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl HttpInstanceSummary {
    /// Where the instance is reached: `AWS_INSTANCE_IPV4` and `AWS_INSTANCE_PORT`.
    pub fn endpoint(&self) -> Option<std::net::SocketAddr> {
        let ip: Ipv4Addr = self.attributes.get("AWS_INSTANCE_IPV4")?.parse().ok()?;
        let port: u16 = self.attributes.get("AWS_INSTANCE_PORT")?.parse().ok()?;
        Some(std::net::SocketAddr::from((ip, port)))
    }
}

operation!(ServiceDiscovery, DiscoverInstances => DiscoverInstancesResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_instance_is_reached_at_its_address_and_port() {
        let i: HttpInstanceSummary = serde_json::from_value(json!({"InstanceId": "t1", "NamespaceName": "ns",
            "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.5", "AWS_INSTANCE_PORT": "80"}}))
        .unwrap();
        assert_eq!(i.endpoint(), Some("10.0.0.5:80".parse().unwrap()));
        let no_port = HttpInstanceSummary { attributes: [("AWS_INSTANCE_IPV4".into(), "10.0.0.5".into())].into(), ..i };
        assert_eq!(no_port.endpoint(), None);
    }
}
