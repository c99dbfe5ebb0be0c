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

/// Runs `commands` in one `ip -batch` process (inside namespace `netns` when given): one
/// process per step cost about 2 ms each on the start path. The batch stops at the first
/// failing command.
fn ip_batch(netns: Option<&str>, commands: &[String]) -> Result<(), String> {
    use std::io::Write;
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip -batch: {e}"))?;
    let script = commands.join("\n") + "\n";
    child.stdin.take().expect("piped").write_all(script.as_bytes()).map_err(|e| format!("ip -batch: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("ip -batch: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip -batch ({}): {}", commands.join("; "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn bridge_exists() -> bool {
    std::path::Path::new("/sys/class/net").join(BRIDGE).exists()
}

/// Creates the bridge unless it exists (another container's start may create it at the same
/// moment: losing that race is fine).
pub fn ensure_bridge() -> Result<(), String> {
    if bridge_exists() {
        return Ok(());
    }
    let made = ip_batch(
        None,
        &[
            format!("link add {BRIDGE} type bridge"),
            format!("addr add {GATEWAY}/{PREFIX} dev {BRIDGE}"),
            format!("link set {BRIDGE} up"),
        ],
    );
    match made {
        Err(_) if bridge_exists() => ip(&["link", "set", BRIDGE, "up"]),
        other => other,
    }
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
    if std::path::Path::new("/var/run/netns").join(&netns).exists() {
        let _ = ip(&["netns", "del", &netns]);
    }
    // The host side in one process: the namespace, the veth pair (its peer born inside the
    // namespace as eth0), the bridge port. Then the inside in one more.
    ip_batch(
        None,
        &[
            format!("netns add {netns}"),
            format!("link add {veth} type veth peer name eth0 netns {netns}"),
            format!("link set {veth} master {BRIDGE} up"),
        ],
    )
    .and_then(|()| {
        ip_batch(
            Some(&netns),
            &[
                format!("addr add {address}/{PREFIX} dev eth0"),
                "link set eth0 up".to_string(),
                "link set lo up".to_string(),
                format!("route add default via {GATEWAY}"),
            ],
        )
    })
    .inspect_err(|_| {
        let _ = ip(&["netns", "del", &netns]);
        let _ = ip(&["link", "del", &veth]);
    })?;
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
