//! Public addresses (`assignPublicIp: ENABLED`): the router's side on a network outside the
//! machine. The operator sets aside a block of addresses on the network of one of the host's
//! interfaces (`--public-cidr`, `--public-interface`); the router gets a macvlan of that
//! interface ([`plan::PUBLIC_LINK`]), with its own MAC, and holds each public address of a
//! task of this machine there, so the network's other hosts find it by ARP as they find any
//! host. The firewall maps each public address 1:1 to its task's private one (see
//! [`super::firewall`]), and the router's policy routing sends what tasks with a public address
//! send beyond the router's own routes to the network's gateway (`--public-gateway`).
//!
//! The host's own firewall never sees this traffic: it reaches the router's namespace at the
//! macvlan, not through the host's forwarding path (where Docker's `FORWARD` policy drops).
//! The host reaches the public addresses through the uplink (a route to the block), since a
//! macvlan never talks to its parent's own addresses.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::packet_route::route::RouteAttribute;
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, LinkMacVlan, RouteMessageBuilder};

use super::NetError;
use super::link::{self, exists, gone, index, nl};
use super::netns;
use super::plan::{self, Cidr};

/// Where this machine's public addresses live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSide {
    /// The host's interface on the network of the public addresses (the macvlan's parent).
    pub interface: String,
    /// The block of public addresses set aside for this machine's tasks.
    pub pool: Cidr,
    /// The router of that network, through which tasks with a public address reach others.
    pub gateway: Ipv4Addr,
}

/// The gateway of the host's default route through `interface`, if it has one: what
/// `--public-gateway` is when not given.
pub async fn default_gateway(interface: &str) -> Result<Option<Ipv4Addr>, NetError> {
    let host = netns::netlink(None).map_err(|e| NetError::Netlink(format!("netlink: {e}")))?;
    let Some(link) = index(&host, interface).await? else {
        return Err(NetError::Plan(format!("the public interface {interface} does not exist")));
    };
    let mut routes = host.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
    while let Some(r) = routes.try_next().await.map_err(nl("listing the host's routes"))? {
        if r.header.destination_prefix_length != 0 {
            continue;
        }
        let through = r.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(i) if *i == link));
        let gateway = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(rtnetlink::packet_route::route::RouteAddress::Inet(g)) => Some(*g),
            _ => None,
        });
        if let (true, Some(g)) = (through, gateway) {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// Makes the router's public side (idempotent): the macvlan of the host's interface in the
/// router namespace, the routing that sends marked packets to the gateway, the router's route
/// to the host's link-local services, and the host's route to the block through the uplink.
pub async fn ensure(router: &Handle, side: &PublicSide) -> Result<(), NetError> {
    let router_ns = netns::path(plan::ROUTER_NETNS);
    // Replies to the network's hosts leave by the public table, not by the router's default
    // route: strict reverse-path filtering would drop what arrives at the macvlan.
    for key in ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"] {
        link::sysctl(&router_ns, key, "0")?;
    }
    let host = netns::netlink(None).map_err(|e| NetError::Netlink(format!("netlink: {e}")))?;
    let parent = index(&host, &side.interface)
        .await?
        .ok_or_else(|| NetError::Plan(format!("the public interface {} does not exist", side.interface)))?;
    // A public link of another interface (the agent's settings changed) goes; the addresses it
    // held come back as the tasks' attachments are found again.
    if let Some((link, of)) = existing(router).await?
        && of != Some(parent)
    {
        tracing::warn!(interface = side.interface, "moving the router's public link to another interface");
        router.link().del(link).execute().await.map_err(nl("removing the public link"))?;
    }
    if index(router, plan::PUBLIC_LINK).await?.is_none() {
        let ns =
            std::fs::File::open(&router_ns).map_err(|e| NetError::Netlink(format!("the router namespace: {e}")))?;
        // Made in the router's namespace directly, like a task's interface.
        let mv = LinkMacVlan::new(plan::PUBLIC_LINK, parent, MacVlanMode::Bridge).setns_by_fd(ns.as_raw_fd()).build();
        match host.link().add(mv).execute().await {
            Err(e) if !exists(&e) => return Err(nl("creating the public link")(e)),
            _ => {}
        }
    }
    let public = link::need(router, plan::PUBLIC_LINK).await?;
    link::up(router, public).await?;
    let everywhere = Cidr { network: Ipv4Addr::UNSPECIFIED, prefix: 0 };
    let to_gateway = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(everywhere.network, everywhere.prefix)
        .gateway(side.gateway)
        .output_interface(public)
        .table_id(plan::PUBLIC_TABLE)
        .onlink()
        .build();
    router.route().add(to_gateway).replace().execute().await.map_err(nl("the public route"))?;
    let uplink = link::need(router, plan::UPLINK_ROUTER).await?;
    link::route(router, plan::LINK_LOCAL, plan::UPLINK_HOST_ADDRESS, uplink).await?;
    // The router's own routes (subnets, uplink, link-local) first; then, for marked packets,
    // the public table instead of the default route to the host.
    // (A rule's action must be given: one without fails every lookup that reaches it.)
    let mut own = router.rule().add().v4().action(RuleAction::ToTable).table_id(254).priority(plan::PUBLIC_TABLE * 100);
    own.message_mut().attributes.push(RuleAttribute::SuppressPrefixLen(0));
    add_rule(own).await?;
    let marked = router
        .rule()
        .add()
        .v4()
        .action(RuleAction::ToTable)
        .table_id(plan::PUBLIC_TABLE)
        .fw_mark(plan::PUBLIC_MARK)
        .priority(plan::PUBLIC_TABLE * 100 + 1);
    add_rule(marked).await?;
    let host_uplink = link::need(&host, plan::UPLINK_HOST).await?;
    link::route(&host, side.pool, plan::UPLINK_ROUTER_ADDRESS, host_uplink).await
}

/// The router's public link, if there is one, and the index of its parent in the host's
/// namespace.
async fn existing(router: &Handle) -> Result<Option<(u32, Option<u32>)>, NetError> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let mut links = router.link().get().match_name(plan::PUBLIC_LINK.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => {
            let parent = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::Link(i) => Some(*i),
                _ => None,
            });
            Ok(Some((link.header.index, parent)))
        }
        Ok(None) => Ok(None),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(nl("reading the public link")(e)),
    }
}

async fn add_rule(rule: rtnetlink::RuleAddRequest<Ipv4Addr>) -> Result<(), NetError> {
    match rule.execute().await {
        Err(e) if !exists(&e) => Err(nl("a routing rule")(e)),
        _ => Ok(()),
    }
}

/// Puts a task's public address on the public link (the network's hosts find it by ARP).
pub async fn hold(router: &Handle, address: Ipv4Addr) -> Result<(), NetError> {
    let public = link::need(router, plan::PUBLIC_LINK).await?;
    link::address(router, public, address, 32).await
}

/// Takes a task's public address off the public link; not there is fine.
pub async fn release(router: &Handle, address: Ipv4Addr) -> Result<(), NetError> {
    let Some(public) = index(router, plan::PUBLIC_LINK).await? else { return Ok(()) };
    let mut found = router.address().get().set_link_index_filter(public).execute();
    while let Some(a) = found.try_next().await.map_err(nl("listing the public link's addresses"))? {
        let ours = a.attributes.iter().any(|x| matches!(x, AddressAttribute::Address(IpAddr::V4(v)) if *v == address));
        if ours {
            return router.address().del(a).execute().await.map_err(nl("removing a public address"));
        }
    }
    Ok(())
}
