//! The endpoint on this machine: AWS's link-local address `169.254.170.2`, put on the host's
//! loopback interface (through netlink, scope `host`, so the host never picks it as the source
//! of its own traffic), and a listener on it.
//!
//! Loopback rather than an interface of its own: every Linux kernel has one (a `dummy` link
//! needs a driver some kernels lack), and an address there is local to the host whichever
//! interface a packet arrives on, so containers reach it through their bridge's gateway and
//! awsvpc tasks through the router namespace's default route. The address is shared by every
//! agent on the machine and left in place when an agent stops.
//!
//! The port is 80, as on AWS. Several agents on one machine (tests, or a machine lending its
//! capacity twice) cannot all have it: with the default (`auto`), an agent that finds it taken
//! listens on a free port instead and its containers' URIs say so (`http://169.254.170.2:PORT`);
//! it records the port and asks for it again first after a restart, so the containers it adopts
//! keep working URIs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rtnetlink::packet_route::address::AddressScope;
use tokio::net::TcpListener;

use super::cgroups::HostReadings;
use super::{Endpoint, MetadataError};
use crate::vpc::{link, netns};

/// Where the endpoint answers, as on AWS.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
pub const DEFAULT_PORT: u16 = 80;
/// The port an `auto` agent listened on last, in its state directory.
pub const PORT_FILE: &str = "metadata-port";

/// Which port the endpoint listens on (`--task-metadata-port`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Port {
    /// 80 (or the port of the last run), or a free one when another agent has it.
    #[default]
    Auto,
    /// This port or fail.
    Fixed(u16),
    /// No endpoint: containers get no metadata URIs.
    Off,
}

impl FromStr for Port {
    type Err = String;

    fn from_str(s: &str) -> Result<Port, String> {
        match s {
            "auto" => Ok(Port::Auto),
            "off" => Ok(Port::Off),
            n => match n.parse::<u16>() {
                Ok(p) if p > 0 => Ok(Port::Fixed(p)),
                _ => Err(format!("expected a port (1-65535), auto or off, got {s:?}")),
            },
        }
    }
}

/// What the URIs start with for an endpoint on `port`.
pub fn base_url(port: u16) -> String {
    if port == DEFAULT_PORT { format!("http://{ADDRESS}") } else { format!("http://{ADDRESS}:{port}") }
}

/// Puts the address on this machine and listens there; `None` when `port` is `Off`.
pub async fn open(port: Port, state_dir: &Path) -> Result<Option<Endpoint>, MetadataError> {
    if port == Port::Off {
        return Ok(None);
    }
    add_loopback_address(ADDRESS).await?;
    let listener = match port {
        Port::Fixed(p) => bind(p).await?,
        _ => auto(state_dir).await?,
    };
    let bound = listener.local_addr().map_err(|e| listen_error(0, e))?.port();
    if port == Port::Auto {
        let path = state_dir.join(PORT_FILE);
        std::fs::write(&path, bound.to_string())
            .map_err(|e| MetadataError::State { path: path.display().to_string(), why: e.to_string() })?;
    }
    tracing::info!(url = %base_url(bound), "task metadata endpoint listening");
    Ok(Some(Endpoint { listener, base_url: base_url(bound), readings: Arc::new(HostReadings) }))
}

fn listen_error(port: u16, e: std::io::Error) -> MetadataError {
    MetadataError::Listen { address: format!("{ADDRESS}:{port}"), why: e.to_string() }
}

async fn bind(port: u16) -> Result<TcpListener, MetadataError> {
    TcpListener::bind(SocketAddr::from((ADDRESS, port))).await.map_err(|e| listen_error(port, e))
}

/// The port of the last run, else 80, else any free port.
async fn auto(state_dir: &Path) -> Result<TcpListener, MetadataError> {
    let previous = std::fs::read_to_string(state_dir.join(PORT_FILE)).ok().and_then(|p| p.trim().parse::<u16>().ok());
    for candidate in previous.into_iter().chain([DEFAULT_PORT]) {
        match bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(e) => tracing::info!(error = %e, "trying another port for the task metadata endpoint"),
        }
    }
    if previous.is_some() {
        tracing::warn!(
            "the task metadata port of the last run is taken: containers adopted from it lose their endpoint"
        );
    }
    bind(0).await
}

/// `ADDRESS/32` on `lo`, scope host (already there is fine): the metadata endpoint's address,
/// and Berth's DNS server's (`berth up`, `berth server`).
pub async fn add_loopback_address(address: Ipv4Addr) -> Result<(), MetadataError> {
    let failed = |why: String| MetadataError::Address { address: address.to_string(), why };
    let handle = netns::netlink(None).map_err(|e| failed(e.to_string()))?;
    let lo =
        link::index(&handle, "lo").await.map_err(|e| failed(e.to_string()))?.ok_or_else(|| failed("no lo".into()))?;
    let mut request = handle.address().add(lo, address.into(), 32);
    request.message_mut().header.scope = AddressScope::Host;
    match request.execute().await {
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EEXIST => Ok(()),
        Err(e) => Err(failed(e.to_string())),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_and_name_the_url() {
        assert_eq!("auto".parse::<Port>(), Ok(Port::Auto));
        assert_eq!("off".parse::<Port>(), Ok(Port::Off));
        assert_eq!("8080".parse::<Port>(), Ok(Port::Fixed(8080)));
        for bad in ["0", "65536", "eighty", ""] {
            assert!(bad.parse::<Port>().is_err(), "{bad}");
        }
        assert_eq!(base_url(80), "http://169.254.170.2");
        assert_eq!(base_url(40123), "http://169.254.170.2:40123");
    }
}
