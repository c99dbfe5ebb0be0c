//! Berth's extension of an assigned awsvpc task: its network interface and the security group
//! rules that apply to it now, sent as the assigned task's `berthNetwork` member
//! (`assignments::AssignedTask`); the shapes are those of
//! `berth_control::vpc::{Eni, EffectiveRules, Rule}`, so the control plane serialises its own
//! values into them.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// What an awsvpc task's agent needs to give it its network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetwork {
    pub eni: Eni,
    pub rules: SecurityRules,
}

/// A task's elastic network interface as the control plane allocated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eni {
    /// `eni-` and 17 hex digits.
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// The subnet's CIDR block (`172.31.0.0/20`).
    pub subnet_cidr: String,
    /// The subnet's first host address: the address of its bridge.
    pub gateway: Ipv4Addr,
    pub private_ip: Ipv4Addr,
    /// `0a:xx:xx:xx:xx:xx`.
    pub mac: String,
    pub private_dns_name: String,
    #[serde(default)]
    pub public_ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub security_groups: Vec<String>,
}

/// The flows the interface's security groups allow; everything else is dropped (replies to
/// allowed flows excepted: the groups are stateful).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRules {
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// One allowed flow: `protocol` is `tcp`, `udp`, `icmp`, `-1` (all) or an IP protocol number;
/// `ports` an inclusive range (`None`: all ports, or not applicable); `cidrs` the peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub protocol: String,
    #[serde(default)]
    pub ports: Option<(u16, u16)>,
    pub cidrs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_extension_reads_the_control_planes_shapes() {
        let v = json!({"eni": {"id": "eni-0123456789abcdef0", "subnetId": "subnet-1", "vpcId": "vpc-1",
            "subnetCidr": "172.31.0.0/20", "gateway": "172.31.0.1", "privateIp": "172.31.0.5",
            "mac": "0a:00:00:00:00:05", "privateDnsName": "ip-172-31-0-5.ec2.internal", "publicIp": null,
            "securityGroups": ["sg-1"]},
            "rules": {"ingress": [{"protocol": "tcp", "ports": [80, 80], "cidrs": ["0.0.0.0/0"]}], "egress": []}});
        let n: TaskNetwork = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(n.eni.private_ip, Ipv4Addr::new(172, 31, 0, 5));
        assert_eq!(n.rules.ingress[0].ports, Some((80, 80)));
        assert_eq!(serde_json::to_value(&n).unwrap(), v);
    }
}
