//! The links, addresses and routes of awsvpc networking, made through netlink (`rtnetlink`),
//! never by running `ip`. Every step is idempotent, so a restarted agent runs the same steps
//! to find, or repair, what an earlier run made.
//!
//! - the router: the `berth-vpc` namespace, its uplink to the host (a veth pair with
//!   link-local addresses), forwarding on, the host's default route to it;
//! - a subnet: its bridge in the router (the gateway's address) and the host's route to the
//!   subnet through the uplink;
//! - a task: a veth pair, one end a port of the subnet's bridge, the other moved into the
//!   task's namespace as `eth0` with the ENI's MAC and address, and a default route via the
//!   gateway ([`configure_task_namespace`], the one place routes inside a task are made).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::NetError;
use super::netns;
use super::plan::{self, Plan};

pub(super) fn nl(what: &str) -> impl Fn(rtnetlink::Error) -> NetError + '_ {
    move |e| NetError::Netlink(format!("{what}: {e}"))
}

fn io(what: &str) -> impl Fn(std::io::Error) -> NetError + '_ {
    move |e| NetError::Netlink(format!("{what}: {e}"))
}

/// Whether a netlink error says the thing already exists.
pub(super) fn exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST)
}

/// Whether a netlink error says there is no such link (another task's start removed it first).
pub(super) fn gone(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV)
}

/// The index of link `name`, if it exists.
pub async fn index(handle: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(nl(name)(e)),
    }
}

pub(super) async fn need(handle: &Handle, name: &str) -> Result<u32, NetError> {
    index(handle, name).await?.ok_or_else(|| NetError::Netlink(format!("link {name} is missing")))
}

pub(super) async fn address(handle: &Handle, link: u32, a: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
    match handle.address().add(link, IpAddr::V4(a), prefix).execute().await {
        Err(e) if !exists(&e) => Err(nl("adding an address")(e)),
        _ => Ok(()),
    }
}

pub(super) async fn up(handle: &Handle, link: u32) -> Result<(), NetError> {
    handle.link().set(LinkUnspec::new_with_index(link).up().build()).execute().await.map_err(nl("setting a link up"))
}

/// Adds or replaces the route to `dest` via `gateway` on `link`.
pub(super) async fn route(handle: &Handle, dest: plan::Cidr, gateway: Ipv4Addr, link: u32) -> Result<(), NetError> {
    let message = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dest.network, dest.prefix)
        .gateway(gateway)
        .output_interface(link)
        .build();
    handle.route().add(message).replace().execute().await.map_err(nl("adding a route"))
}

/// Writes a sysctl of the namespace at `netns`.
pub(super) fn sysctl(netns: &Path, key: &'static str, value: &'static str) -> Result<(), NetError> {
    netns::run_in(netns, move || std::fs::write(Path::new("/proc/sys").join(key.replace('.', "/")), value))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if key.starts_with("net.bridge") => NetError::Netlink(
                "security groups between tasks of one subnet need the br_netfilter kernel module (modprobe br_netfilter)"
                    .into(),
            ),
            _ => NetError::Netlink(format!("sysctl {key}: {e}")),
        })
}

/// Makes the router namespace and its uplink to the host (idempotent). Returns a netlink
/// handle inside the router.
pub async fn ensure_router() -> Result<Handle, NetError> {
    let router_ns = netns::create(plan::ROUTER_NETNS).map_err(io("creating the router namespace"))?;
    sysctl(&router_ns, "net.ipv4.ip_forward", "1")?;
    sysctl(&router_ns, "net.bridge.bridge-nf-call-iptables", "1")?;
    let host = netns::netlink(None).map_err(io("netlink"))?;
    let router = netns::netlink(Some(&router_ns)).map_err(io("netlink in the router namespace"))?;
    if index(&host, plan::UPLINK_HOST).await?.is_none() {
        // A host end without its peer (the router namespace was removed) is gone with it.
        match host.link().add(LinkVeth::new(plan::UPLINK_HOST, plan::UPLINK_ROUTER).build()).execute().await {
            Err(e) if !exists(&e) => return Err(nl("creating the uplink")(e)),
            _ => {}
        }
        if let Some(peer) = index(&host, plan::UPLINK_ROUTER).await? {
            let ns = std::fs::File::open(&router_ns).map_err(io("the router namespace"))?;
            let moved = LinkUnspec::new_with_index(peer).setns_by_fd(ns.as_raw_fd()).build();
            host.link().set(moved).execute().await.map_err(nl("moving the uplink"))?;
        }
    }
    let uplink = need(&host, plan::UPLINK_HOST).await?;
    address(&host, uplink, plan::UPLINK_HOST_ADDRESS, plan::UPLINK_PREFIX).await?;
    up(&host, uplink).await?;
    let lo = need(&router, "lo").await?;
    up(&router, lo).await?;
    let inside = need(&router, plan::UPLINK_ROUTER).await?;
    address(&router, inside, plan::UPLINK_ROUTER_ADDRESS, plan::UPLINK_PREFIX).await?;
    up(&router, inside).await?;
    let everywhere = plan::Cidr { network: Ipv4Addr::UNSPECIFIED, prefix: 0 };
    route(&router, everywhere, plan::UPLINK_HOST_ADDRESS, inside).await?;
    Ok(router)
}

/// Makes the subnet's bridge (with the gateway's address) and the host's route to it.
pub async fn ensure_subnet(router: &Handle, p: &Plan) -> Result<(), NetError> {
    if index(router, &p.bridge).await?.is_none() {
        evict_conflicting_bridges(router, p).await?;
        match router.link().add(LinkBridge::new(&p.bridge).build()).execute().await {
            Err(e) if !exists(&e) => return Err(nl("creating the subnet's bridge")(e)),
            _ => {}
        }
    }
    let bridge = need(router, &p.bridge).await?;
    address(router, bridge, p.gateway, p.subnet.prefix).await?;
    up(router, bridge).await?;
    let host = netns::netlink(None).map_err(io("netlink"))?;
    let uplink = need(&host, plan::UPLINK_HOST).await?;
    route(&host, p.subnet, plan::UPLINK_ROUTER_ADDRESS, uplink).await
}

/// Removes other subnets' bridges that hold this subnet's gateway address: left by an earlier
/// Berth (another data dir with the same VPC block) whose subnets no longer exist, they would
/// shadow this subnet's route in the router and leave its tasks unreachable. Runs only when
/// the subnet's own bridge is about to be made, so it costs nothing on a task's start.
async fn evict_conflicting_bridges(router: &Handle, p: &Plan) -> Result<(), NetError> {
    use rtnetlink::packet_route::link::LinkAttribute;
    // A dump races with other tasks' attachments changing the router's addresses (the kernel
    // answers EBUSY then); a few tries, and a warning rather than a failed task when all fail.
    let mut tries = 0;
    let holders = loop {
        match gateway_holders(router, p).await {
            Ok(h) => break h,
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::debug!(error = %e, "retrying the router's address dump");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, subnet = %p.subnet, "could not look for stale subnet bridges");
                return Ok(());
            }
        }
    };
    // Tasks of one subnet starting at once all find the same stale bridge: whichever removes it
    // first, it is gone for the others too.
    for link in holders {
        let mut found = router.link().get().match_index(link).execute();
        let msg = match found.try_next().await {
            Ok(Some(msg)) => msg,
            Ok(None) => continue,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(nl("reading a link")(e)),
        };
        let name = msg.attributes.iter().find_map(|x| match x {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        if let Some(name) = name.filter(|n| n.starts_with("bsn-") && *n != p.bridge) {
            tracing::warn!(bridge = name, subnet = %p.subnet, "removing a stale subnet bridge that holds this subnet's gateway");
            match router.link().del(link).execute().await {
                Err(e) if !gone(&e) => return Err(nl("removing a stale subnet bridge")(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The indexes of the router's links holding the plan's gateway address with its prefix.
async fn gateway_holders(router: &Handle, p: &Plan) -> Result<Vec<u32>, NetError> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let mut holders = Vec::new();
    let mut addresses = router.address().get().execute();
    while let Some(a) = addresses.try_next().await.map_err(nl("listing the router's addresses"))? {
        let gateway =
            a.attributes.iter().any(|x| matches!(x, AddressAttribute::Address(IpAddr::V4(g)) if *g == p.gateway));
        if gateway && a.header.prefix_len == p.subnet.prefix {
            holders.push(a.header.index);
        }
    }
    Ok(holders)
}

/// Whether the task's namespace already has its interface with the plan's address.
async fn task_side_ready(task: &Handle, p: &Plan) -> Result<bool, NetError> {
    let Some(eth0) = index(task, plan::TASK_INTERFACE).await? else { return Ok(false) };
    let mut addresses = task.address().get().set_link_index_filter(eth0).execute();
    while let Some(a) = addresses.try_next().await.map_err(nl("listing addresses"))? {
        let ours = a.attributes.iter().any(|attr| {
            matches!(attr, rtnetlink::packet_route::address::AddressAttribute::Address(IpAddr::V4(x)) if *x == p.address)
        });
        if ours {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Gives the task's namespace at `task_ns` its interface on the subnet's bridge (idempotent:
/// a complete attachment is kept, a partial one made again).
pub async fn attach(router: &Handle, p: &Plan, task_ns: &Path) -> Result<(), NetError> {
    let task = netns::netlink(Some(task_ns)).map_err(io("netlink in the task's namespace"))?;
    if let Some(veth) = index(router, &p.veth).await? {
        if task_side_ready(&task, p).await? {
            return up(router, veth).await;
        }
        router.link().del(veth).execute().await.map_err(nl("removing a partial attachment"))?;
    }
    // The task's end is made in the task's namespace, named and addressed as it stays: moving
    // a link between namespaces waits for an RCU grace period while holding the kernel's
    // network configuration lock, so a burst of starts would queue on each other's moves
    // (about 20 ms each here).
    let ns = std::fs::File::open(task_ns).map_err(io("the task's namespace"))?;
    let peer = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
        .name(plan::TASK_INTERFACE.to_string())
        .address(p.mac.to_vec())
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let pair = LinkVeth::new(&p.veth, plan::TASK_INTERFACE).set_info_data(InfoData::Veth(InfoVeth::Peer(peer))).build();
    router.link().add(pair).execute().await.map_err(nl("creating the veth pair"))?;
    let bridge = need(router, &p.bridge).await?;
    let veth = need(router, &p.veth).await?;
    // The alias names the address behind the port, for `evict_stale_ports`.
    let port = LinkUnspec::new_with_index(veth).controller(bridge).alias(p.address.to_string()).up().build();
    router.link().set(port).execute().await.map_err(nl("joining the bridge"))?;
    configure_task_namespace(&task, p).await
}

/// Removes the other ports of the subnet's bridge whose task end has the plan's address (their
/// alias says so): a dead task's, whose namespace is still there (its agent died with it
/// running) or still going away (the kernel frees a namespace's links some milliseconds to
/// seconds after its last user). Two tasks never own one address, so such a port is stale;
/// left in place, it answers for the address beside the new task, with the same MAC. Their
/// pair's end in the other namespace goes with them.
pub async fn evict_stale_ports(router: &Handle, p: &Plan) -> Result<(), NetError> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let Some(bridge) = index(router, &p.bridge).await? else { return Ok(()) };
    let address = p.address.to_string();
    let mut stale = Vec::new();
    let mut links = router.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(nl("listing the router's links"))? {
        let (mut name, mut alias, mut controller) = (None, None, None);
        for a in &link.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.as_str()),
                LinkAttribute::IfAlias(x) => alias = Some(x.as_str()),
                LinkAttribute::Controller(c) => controller = Some(*c),
                _ => {}
            }
        }
        if alias == Some(address.as_str()) && controller == Some(bridge) && name != Some(p.veth.as_str()) {
            stale.push((link.header.index, name.unwrap_or_default().to_string()));
        }
    }
    for (link, name) in stale {
        tracing::warn!(port = name, address, "removing a dead task's interface for this address");
        match router.link().del(link).execute().await {
            Err(e) if !gone(&e) => return Err(nl("removing a dead task's interface")(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Everything inside the task's namespace once its `eth0` is there (with the ENI's MAC):
/// `lo` and `eth0` up, the ENI's address, the default route via the gateway. Other routes a
/// task needs belong here.
async fn configure_task_namespace(task: &Handle, p: &Plan) -> Result<(), NetError> {
    let lo = need(task, "lo").await?;
    up(task, lo).await?;
    let peer = need(task, plan::TASK_INTERFACE).await?;
    up(task, peer).await?;
    address(task, peer, p.address, p.subnet.prefix).await?;
    let everywhere = plan::Cidr { network: Ipv4Addr::UNSPECIFIED, prefix: 0 };
    route(task, everywhere, p.gateway, peer).await
}

/// Removes the task's veth pair (its end in the task's namespace goes with it).
pub async fn detach(router: &Handle, p: &Plan) -> Result<(), NetError> {
    match index(router, &p.veth).await? {
        Some(veth) => router.link().del(veth).execute().await.map_err(nl("removing the veth pair")),
        None => Ok(()),
    }
}
