//! What an awsvpc task's network is made of, computed from its ENI alone (pure): the names of
//! the subnet's bridge and the task's veth pair, the addresses and routes on each side. The
//! netlink code ([`super::link`]) carries a plan out; a restarted agent computes the same plan
//! and finds what it made.

use std::net::Ipv4Addr;

use berth_agent_protocol::network::Eni;

use super::NetError;

/// The network namespace holding the subnets' bridges and Berth's firewall table.
pub const ROUTER_NETNS: &str = "berth-vpc";
/// The host's end of the link into the router namespace.
pub const UPLINK_HOST: &str = "bvpc0";
/// The router namespace's end of it (moved there after creation).
pub const UPLINK_ROUTER: &str = "bvpc0r";
/// Link-local addresses of the uplink (a /30): the host's, then the router's.
pub const UPLINK_HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 99, 1);
pub const UPLINK_ROUTER_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 99, 2);
pub const UPLINK_PREFIX: u8 = 30;
/// The task's interface name inside its namespace.
pub const TASK_INTERFACE: &str = "eth0";
/// The router's link onto the network the public addresses live on (a macvlan of the host's
/// `--public-interface`), holding each public address given to a task of this machine.
pub const PUBLIC_LINK: &str = "bpub0";
/// The firewall mark of packets from tasks with a public address, and the routing table (in
/// the router) that sends them to the public network's gateway.
pub const PUBLIC_MARK: u32 = 0xb3;
pub const PUBLIC_TABLE: u32 = 0xb3;
/// Where the router's link-local traffic (the metadata endpoint, the DNS server) goes: to the
/// host, for tasks with a public address too.
pub const LINK_LOCAL: Cidr = Cidr { network: Ipv4Addr::new(169, 254, 0, 0), prefix: 16 };

/// An IPv4 network: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `A.B.C.D/N` (a bare address is a /32); the host bits are cleared.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (s, 32),
        };
        let address: Ipv4Addr = address.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Some(Cidr { network: Ipv4Addr::from(u32::from(address) & mask), prefix })
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
        u32::from(a) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Everything the network of one awsvpc task consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub task_id: String,
    /// The subnet's bridge in the router namespace, and its address (the gateway).
    pub bridge: String,
    pub subnet: Cidr,
    pub gateway: Ipv4Addr,
    /// The router's end of the task's veth pair (a port of the bridge).
    pub veth: String,
    pub address: Ipv4Addr,
    /// The task's public address (`assignPublicIp`), mapped 1:1 to `address` in the router.
    pub public: Option<Ipv4Addr>,
    pub mac: [u8; 6],
    /// The firewall chains of the task's ingress and egress rules.
    pub ingress_chain: String,
    pub egress_chain: String,
}

/// A name of at most 15 characters (the kernel's limit for interfaces) from `prefix` and a
/// digest of `name`.
pub fn short(prefix: &str, name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{prefix}{:012x}", h & 0xffff_ffff_ffff)
}

/// `0a:1b:2c:3d:4e:5f` as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s.split(':').map(|p| u8::from_str_radix(p, 16).ok()).collect::<Option<_>>()?;
    let mac: [u8; 6] = parts.try_into().ok()?;
    // Unicast only: the task's address must be one a bridge forwards to a single port.
    (mac[0] & 1 == 0).then_some(mac)
}

/// The subnet's bridge: `bsn-` and the end of the subnet id (unique: subnet ids end in hex).
pub fn bridge_name(subnet_id: &str) -> String {
    let suffix = subnet_id.strip_prefix("subnet-").unwrap_or(subnet_id);
    let tail: String = suffix.chars().rev().take(11).collect::<Vec<_>>().into_iter().rev().collect();
    if tail.chars().all(|c| c.is_ascii_alphanumeric()) { format!("bsn-{tail}") } else { short("bsn", subnet_id) }
}

impl Plan {
    /// The plan of task `task_id` with `eni`; an ENI whose addresses do not fit together is
    /// refused.
    pub fn new(task_id: &str, eni: &Eni) -> Result<Plan, NetError> {
        let bad = |why: &str| NetError::Plan(format!("network interface {}: {why}", eni.id));
        let subnet = Cidr::parse(&eni.subnet_cidr).ok_or_else(|| bad("its subnet CIDR is not an IPv4 network"))?;
        if subnet.prefix > 30 {
            return Err(bad("its subnet is too small"));
        }
        if !subnet.contains(eni.gateway) || !subnet.contains(eni.private_ip) {
            return Err(bad("its gateway and address must be in its subnet"));
        }
        if eni.gateway == eni.private_ip || eni.private_ip == subnet.network {
            return Err(bad("its address is not a host address of its subnet"));
        }
        let mac = parse_mac(&eni.mac).ok_or_else(|| bad("its MAC address is not a unicast address"))?;
        let key = short("", task_id);
        Ok(Plan {
            task_id: task_id.to_string(),
            bridge: bridge_name(&eni.subnet_id),
            subnet,
            gateway: eni.gateway,
            veth: format!("v{key}"),
            address: eni.private_ip,
            public: eni.public_ip,
            mac,
            ingress_chain: format!("in-{key}"),
            egress_chain: format!("out-{key}"),
        })
    }
}

/// An ENI of the default VPC's first subnet with address `ip`, for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn eni(ip: [u8; 4]) -> Eni {
        Eni {
            id: "eni-0123456789abcdef0".into(),
            subnet_id: "subnet-0a1b2c3d4e5f60718".into(),
            vpc_id: "vpc-1".into(),
            subnet_cidr: "172.31.0.0/20".into(),
            gateway: Ipv4Addr::new(172, 31, 0, 1),
            private_ip: Ipv4Addr::from(ip),
            mac: "0a:00:ac:1f:00:05".into(),
            private_dns_name: "ip-172-31-0-5.ec2.internal".into(),
            public_ip: None,
            security_groups: vec!["sg-1".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::eni;
    use super::*;

    #[test]
    fn a_plan_names_everything_within_the_kernels_limits() {
        let p = Plan::new("0123456789abcdef0123456789abcdef", &eni([172, 31, 0, 5])).unwrap();
        assert_eq!(p.bridge, "bsn-3d4e5f60718");
        for name in [&p.bridge, &p.veth] {
            assert!(name.len() <= 15, "{name}");
        }
        assert_ne!(p.veth, Plan::new("another", &eni([172, 31, 0, 6])).unwrap().veth);
        assert_eq!((p.subnet.to_string(), p.gateway), ("172.31.0.0/20".to_string(), Ipv4Addr::new(172, 31, 0, 1)));
        assert_eq!(p.mac, [0x0a, 0, 0xac, 0x1f, 0, 5]);
        assert_eq!(Plan::new("t", &eni([172, 31, 0, 5])).unwrap(), Plan::new("t", &eni([172, 31, 0, 5])).unwrap());
    }

    #[test]
    fn addresses_that_do_not_fit_are_refused() {
        let outside = Plan::new("t", &eni([10, 0, 0, 5])).unwrap_err().to_string();
        assert!(outside.contains("must be in its subnet"), "{outside}");
        assert!(Plan::new("t", &eni([172, 31, 0, 1])).is_err(), "the gateway's address");
        assert!(Plan::new("t", &eni([172, 31, 0, 0])).is_err(), "the network's address");
        let mut multicast = eni([172, 31, 0, 5]);
        multicast.mac = "01:00:5e:00:00:01".into();
        assert!(Plan::new("t", &multicast).is_err());
        let mut bad = eni([172, 31, 0, 5]);
        bad.subnet_cidr = "172.31.0.0".into();
        assert!(Plan::new("t", &bad).is_err(), "a /32 has no room");
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c = Cidr::parse("172.31.17.9/20").unwrap();
        assert_eq!(c.to_string(), "172.31.16.0/20");
        assert!(c.contains(Ipv4Addr::new(172, 31, 31, 255)) && !c.contains(Ipv4Addr::new(172, 31, 32, 0)));
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().prefix, 0);
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(Cidr::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        for bad in ["10.0.0.0/33", "::/0", "10.0.0/8", "x"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
