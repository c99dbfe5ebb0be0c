//! Berth's DNS server inside `berth up` and `berth server` (`berth-dns`): where it listens
//! (`--dns-address`), whom it forwards to (`--dns-forwarders`, else the host's resolv.conf), and
//! the feed of snapshots from the store (`berth_control::discovery::snapshot`).
//!
//! By default (`auto`) it listens on `169.254.169.253:53`, the address of the DNS server AWS
//! gives a VPC, put on the host's loopback interface as the task metadata address is: every
//! task reaches it (bridge containers through their gateway, awsvpc tasks through the VPC router
//! namespace, host ones directly), and it collides with no resolver of the host. When that
//! fails (another Berth on this machine has it, or no permission), `auto` runs without a DNS
//! server and says why in the start-up lines; an address given explicitly must work or Berth
//! does not start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use berth_control::Control;
use berth_control::discovery::snapshot;
use berth_dns::{Config, DnsServer};

/// AWS's VPC DNS address (what Fargate tasks find in their resolv.conf), port 53.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 253)), 53);

/// `--dns-address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// [`DEFAULT_ADDRESS`], or no DNS server when it cannot be had.
    Auto,
    /// This address or fail.
    Fixed(SocketAddr),
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub address: Address,
    /// `--dns-forwarders`; `None`: the nameservers of `/etc/resolv.conf`.
    pub forwarders: Option<Vec<SocketAddr>>,
}

impl DnsSettings {
    /// Reads `--dns-address` (`auto`, `off` or ADDR:PORT) and `--dns-forwarders` (ADDR[:PORT],...).
    pub fn parse(address: Option<&str>, forwarders: Option<&str>) -> anyhow::Result<DnsSettings> {
        let address = match address.unwrap_or("auto") {
            "auto" => Address::Auto,
            "off" => Address::Off,
            other => Address::Fixed(
                other.parse().with_context(|| format!("--dns-address {other}: expected ADDR:PORT, auto or off"))?,
            ),
        };
        let forwarders = forwarders
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        let s = s.trim();
                        s.parse::<SocketAddr>()
                            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                            .with_context(|| format!("--dns-forwarders {s}: expected ADDR or ADDR:PORT"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?;
        Ok(DnsSettings { address, forwarders })
    }
}

/// What came of starting the server.
#[derive(Debug)]
pub enum Started {
    Listening { address: SocketAddr, upstreams: Vec<SocketAddr> },
    Off(String),
}

impl Started {
    /// The nameserver task containers get: the server's address, when it is on port 53 (a
    /// resolv.conf names no port) and not a wildcard.
    pub fn nameserver(&self) -> Option<IpAddr> {
        match self {
            Started::Listening { address, .. } if address.port() == 53 && !address.ip().is_unspecified() => {
                Some(address.ip())
            }
            _ => None,
        }
    }

    /// The start-up line.
    pub fn line(&self) -> String {
        match self {
            Started::Listening { address, upstreams } => {
                let up: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
                let forwards = if up.is_empty() { "nothing".to_string() } else { up.join(", ") };
                let note = if self.nameserver().is_none() { "; tasks keep the host's resolvers" } else { "" };
                format!("  dns       {address} (forwards to {forwards}{note})")
            }
            Started::Off(why) => format!("  dns       off ({why})"),
        }
    }
}

/// Starts the server and its feed of snapshots; they stop when `control` closes. Load
/// balancers' names answer `lb_address`, where their listeners are served.
pub async fn start(settings: &DnsSettings, control: Arc<Control>, lb_address: IpAddr) -> anyhow::Result<Started> {
    match settings.address {
        Address::Off => Ok(Started::Off("--dns-address off".into())),
        Address::Fixed(address) => {
            listen(address, settings, control, lb_address).await.with_context(|| format!("--dns-address {address}"))
        }
        Address::Auto => match listen(DEFAULT_ADDRESS, settings, control, lb_address).await {
            Ok(started) => Ok(started),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "no DNS server: {DEFAULT_ADDRESS} cannot be had");
                Ok(Started::Off(format!("{DEFAULT_ADDRESS}: {e:#}; choose another with --dns-address")))
            }
        },
    }
}

async fn listen(
    address: SocketAddr,
    settings: &DnsSettings,
    control: Arc<Control>,
    lb_address: IpAddr,
) -> anyhow::Result<Started> {
    if let IpAddr::V4(ip) = address.ip()
        && ip.is_link_local()
    {
        berth_agent::metadata::host::add_loopback_address(ip).await.context("putting the address on lo")?;
    }
    let upstreams = match &settings.forwarders {
        Some(list) => list.clone(),
        None => berth_dns::forward::host_resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
    };
    let server = DnsServer::bind(Config { listen: vec![address], upstreams }).await?;
    let started = Started::Listening { address: server.local_addrs()[0], upstreams: server.upstreams().to_vec() };
    let updater = server.updater();
    let lb_address = Some(lb_address);
    updater.update(&snapshot::dns_snapshot(&control, lb_address).context("reading Cloud Map's records")?);
    let feeding = control.clone();
    tokio::spawn(async move {
        if let Err(e) = snapshot::feed(feeding, lb_address, move |s| updater.update(&s)).await {
            tracing::error!(error = %e, "the DNS server's snapshots stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = server.run(control.closed()).await {
            tracing::error!(error = %e, "the DNS server stopped");
        }
    });
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_name_the_flag() {
        let s = DnsSettings::parse(None, None).unwrap();
        assert_eq!((s.address, s.forwarders), (Address::Auto, None));
        let s = DnsSettings::parse(Some("127.0.0.1:5353"), Some("10.0.0.2, 127.0.0.1:5300")).unwrap();
        assert_eq!(s.address, Address::Fixed("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(s.forwarders.unwrap(), ["10.0.0.2:53".parse().unwrap(), "127.0.0.1:5300".parse().unwrap()]);
        assert_eq!(DnsSettings::parse(Some("off"), None).unwrap().address, Address::Off);
        let e = DnsSettings::parse(Some("localhost"), None).unwrap_err().to_string();
        assert!(e.starts_with("--dns-address localhost"), "{e}");
        assert!(DnsSettings::parse(None, Some("nameserver")).is_err());
    }

    #[test]
    fn tasks_get_the_server_only_on_port_53() {
        let on = |a: &str| Started::Listening { address: a.parse().unwrap(), upstreams: vec![] }.nameserver();
        assert_eq!(on("169.254.169.253:53"), Some("169.254.169.253".parse().unwrap()));
        assert_eq!(on("127.0.0.1:5353"), None);
        assert_eq!(on("0.0.0.0:53"), None);
        assert_eq!(Started::Off("x".into()).nameserver(), None);
    }
}
