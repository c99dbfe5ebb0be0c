//! Bridge networking for the `oci` driver: a network namespace per container, joined to the
//! `berth0` bridge by a veth pair, with an address from 10.89.0.0/16. Published ports are
//! forwarded by the container's shim (see [`super::shim`]), so they live as long as the
//! container, across agent restarts.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;

use serde::{Deserialize, Serialize};

pub const BRIDGE: &str = "berth0";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);
const PREFIX: u8 = 16;

/// One published port: host port → container address and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// What a bridge-mode container was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub netns: String,
    pub veth: String,
    pub address: Ipv4Addr,
    pub forwards: Vec<Forward>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Creates the bridge unless it exists.
pub fn ensure_bridge() -> Result<(), String> {
    if ip(&["link", "show", BRIDGE]).is_ok() {
        return Ok(());
    }
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{GATEWAY}/{PREFIX}"), "dev", BRIDGE])?;
    ip(&["link", "set", BRIDGE, "up"])
}

/// The lowest address of the bridge's network not in `used`.
pub fn allocate(used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    (2u32..65_534).map(|n| Ipv4Addr::from(u32::from(GATEWAY) - 1 + n)).find(|a| !used.contains(a))
}

/// A host port nothing listens on now (the kernel's choice from the ephemeral range).
/// A host port free now for `protocol`, from the kernel's ephemeral range.
pub fn free_port(protocol: Protocol) -> Result<u16, String> {
    let local = match protocol {
        Protocol::Tcp => TcpListener::bind(("0.0.0.0", 0)).and_then(|l| l.local_addr()),
        Protocol::Udp => std::net::UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr()),
    };
    local.map(|a| a.port()).map_err(|e| e.to_string())
}

/// A name of at most 15 characters (the kernel's limit for interfaces) derived from `name`.
fn short(prefix: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}{:012x}", h & 0xffff_ffff_ffff)
}

/// Gives container `name` its namespace, veth and `address`.
pub fn attach(name: &str, address: Ipv4Addr, forwards: Vec<Forward>) -> Result<Attachment, String> {
    ensure_bridge()?;
    let (netns, veth) = (format!("berth-{}", &short("", name)), short("bth", name));
    let _ = ip(&["netns", "del", &netns]);
    ip(&["netns", "add", &netns])?;
    let steps = || -> Result<(), String> {
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns])?;
        ip(&["link", "set", &veth, "master", BRIDGE, "up"])?;
        ip(&["-n", &netns, "addr", "add", &format!("{address}/{PREFIX}"), "dev", "eth0"])?;
        ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&["-n", &netns, "route", "add", "default", "via", &GATEWAY.to_string()])
    };
    if let Err(e) = steps() {
        let _ = ip(&["netns", "del", &netns]);
        return Err(e);
    }
    Ok(Attachment { netns, veth, address, forwards })
}

/// Removes the namespace (which takes its veth pair with it).
pub fn detach(attachment: &Attachment) {
    let _ = ip(&["netns", "del", &attachment.netns]);
    let _ = ip(&["link", "del", &attachment.veth]);
}

/// The path runc joins for the container's network namespace.
pub fn netns_path(attachment: &Attachment) -> String {
    format!("/var/run/netns/{}", attachment.netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        let used: BTreeSet<_> = [Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3)].into();
        assert_eq!(allocate(&used), Some(Ipv4Addr::new(10, 89, 0, 4)));
        assert_eq!(allocate(&BTreeSet::new()), Some(Ipv4Addr::new(10, 89, 0, 2)));
        let v = short("bth", "berth-0123456789abcdef-main");
        assert!(v.len() <= 15 && v.starts_with("bth"));
        assert_ne!(v, short("bth", "berth-0123456789abcdef-side"));
        assert!(free_port(Protocol::Tcp).unwrap() > 0);
        assert!(free_port(Protocol::Udp).unwrap() > 0);
    }
}
