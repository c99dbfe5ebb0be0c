//! Bridge networking for the `oci` driver: a network namespace per container, joined to the
//! `berth0` bridge by a veth pair, with an address from 10.89.0.0/16. Published ports are
//! forwarded by the container's shim (see [`super::shim`]), so they live as long as the
//! container, across agent restarts.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
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
    Path::new("/sys/class/net").join(BRIDGE).exists()
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

/// Where the agents of this machine lease the bridge's addresses: one file per address, naming
/// the namespace that has it. Every agent shares the bridge, so each must see the others'
/// addresses; in `/run`, the leases go at reboot with the namespaces.
pub const LEASES: &str = "/run/berth/berth0-leases";

/// A lease whose namespace is gone is its dead agent's (or a crashed start's) once it is this
/// old: far longer than making the namespace after the lease takes.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(60);

/// Leases an address in `dir` for namespace `netns`: the lowest one neither in `used` (this
/// agent's own containers) nor leased to another namespace, under the machine-wide lock of
/// `dir`. When every address is taken, abandoned leases are taken over.
pub fn lease(dir: &Path, netns: &str, used: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, String> {
    let err = |e: std::io::Error| format!("leasing a bridge address in {}: {e}", dir.display());
    let _lock = crate::hostlock::exclusive_at(&dir.join(".lock")).map_err(err)?;
    let mut taken = used.clone();
    for entry in std::fs::read_dir(dir).map_err(err)?.flatten() {
        let Some(a) = entry.file_name().to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else { continue };
        // Its own lease, from a start that failed after taking it: the same address again.
        if !used.contains(&a) && std::fs::read_to_string(entry.path()).is_ok_and(|owner| owner == netns) {
            return Ok(a);
        }
        taken.insert(a);
    }
    let address = match allocate(&taken) {
        Some(a) => a,
        None => taken
            .iter()
            .copied()
            .find(|a| !used.contains(a) && abandoned(&dir.join(a.to_string())))
            .ok_or("no bridge address left")?,
    };
    std::fs::write(dir.join(address.to_string()), netns).map_err(err)?;
    Ok(address)
}

fn abandoned(lease: &Path) -> bool {
    let Ok(owner) = std::fs::read_to_string(lease) else { return true };
    let old =
        std::fs::metadata(lease).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED));
    old && !Path::new("/var/run/netns").join(owner.trim()).exists()
}

/// Gives back the lease of `address` in `dir`, if `netns` still holds it.
pub fn release(dir: &Path, netns: &str, address: Ipv4Addr) {
    let path = dir.join(address.to_string());
    let Ok(_lock) = crate::hostlock::exclusive_at(&dir.join(".lock")) else { return };
    if std::fs::read_to_string(&path).is_ok_and(|owner| owner == netns) {
        let _ = std::fs::remove_file(path);
    }
}

/// The name of container `name`'s namespace.
pub fn netns_name(name: &str) -> String {
    format!("berth-{}", &short("", name))
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
    let (netns, veth) = (netns_name(name), short("bth", name));
    if Path::new("/var/run/netns").join(&netns).exists() {
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

/// Removes the namespace (which takes its veth pair with it) and gives its address back.
pub fn detach(attachment: &Attachment) {
    let _ = ip(&["netns", "del", &attachment.netns]);
    let _ = ip(&["link", "del", &attachment.veth]);
    release(Path::new(LEASES), &attachment.netns, attachment.address);
}

/// The path runc joins for the container's network namespace.
pub fn netns_path(attachment: &Attachment) -> String {
    format!("/var/run/netns/{}", attachment.netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 89, 0, last)
    }

    #[test]
    fn leases_are_the_machines_not_one_agents() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let none = BTreeSet::new();
        assert_eq!(lease(d, "berth-one", &none), Ok(a(2)));
        // Another agent, which knows nothing of the first one's containers.
        assert_eq!(lease(d, "berth-two", &none), Ok(a(3)));
        // This agent's own containers' addresses (from before leases) are skipped as well.
        assert_eq!(lease(d, "berth-three", &[a(4)].into()), Ok(a(5)));
        assert_eq!(lease(d, "berth-two", &none), Ok(a(3)), "a failed start asking again gets its own");
        release(d, "berth-other", a(2));
        assert_eq!(lease(d, "berth-four", &none), Ok(a(4)), "only its holder gives a lease back");
        release(d, "berth-one", a(2));
        assert_eq!(lease(d, "berth-five", &none), Ok(a(2)));
    }

    #[test]
    fn agents_leasing_at_once_get_distinct_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    (0..25).map(|n| lease(&d, &format!("berth-{t}-{n}"), &BTreeSet::new()).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Ipv4Addr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let distinct: BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 100);
    }

    #[test]
    fn a_lease_is_abandoned_once_old_and_without_its_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("10.89.0.2");
        std::fs::write(&path, "berth-no-such-namespace").unwrap();
        assert!(!abandoned(&path), "a start may be making its namespace");
        let old = std::time::SystemTime::now() - ABANDONED * 2;
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        assert!(abandoned(&path));
    }

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
