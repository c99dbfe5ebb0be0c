//! awsvpc networking on this machine for real: two task namespaces the test makes get their
//! interfaces on a subnet bridge in Berth's router namespace through netlink, the host reaches
//! a listener in each at its private address, security group rules (nftables) block and open
//! it while it runs, and detaching removes the veth. Needs root, the `nft` program and the
//! `br_netfilter` module (scripts/test provides them). Traffic goes only to the namespaces
//! this test made, in a subnet (10.203.0.0/24) no other test uses; the bridge and the host's
//! route to it are removed at the end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use berth_agent::vpc::{HostNetworking, TaskNetworking, netns, plan};
use berth_agent_protocol::network::{Eni, Rule, SecurityRules, TaskNetwork};

const SUBNET_ID: &str = "subnet-0feedbeef0203test";

/// This file's tests run one at a time: run side by side, the first one's last check (a new
/// task at a dead task's address is reached) failed about once in ten runs.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn network(last: u8, ingress: Vec<Rule>) -> TaskNetwork {
    TaskNetwork {
        eni: Eni {
            id: format!("eni-0000000000000{last:04}"),
            subnet_id: SUBNET_ID.into(),
            vpc_id: "vpc-test".into(),
            subnet_cidr: "10.203.0.0/24".into(),
            gateway: Ipv4Addr::new(10, 203, 0, 1),
            private_ip: Ipv4Addr::new(10, 203, 0, last),
            mac: format!("0a:00:0a:cb:00:{last:02x}"),
            private_dns_name: format!("ip-10-203-0-{last}.ec2.internal"),
            public_ip: None,
            security_groups: vec!["sg-test".into()],
        },
        // A new group's egress: anywhere.
        rules: SecurityRules {
            ingress,
            egress: vec![Rule { protocol: "-1".into(), ports: None, cidrs: vec!["0.0.0.0/0".into()] }],
        },
    }
}

fn port_80() -> Vec<Rule> {
    vec![Rule { protocol: "tcp".into(), ports: Some((80, 80)), cidrs: vec!["0.0.0.0/0".into()] }]
}

/// A server on port 80 inside the namespace at `ns` answering `name` to every connection.
fn serve(ns: &Path, name: &'static str) {
    let listener = netns::run_in(ns, || std::net::TcpListener::bind("0.0.0.0:80")).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(name.as_bytes());
        }
    });
}

fn answer(ip: Ipv4Addr) -> Option<String> {
    let mut conn = TcpStream::connect_timeout(&SocketAddr::from((ip, 80)), Duration::from_millis(700)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).ok()?;
    Some(out)
}

/// What `ip:80` answers when asked from inside the namespace at `ns` (another task).
fn answer_from(ns: &Path, ip: Ipv4Addr) -> Option<String> {
    netns::run_in(ns, move || Ok(answer(ip))).unwrap()
}

fn links_in_router() -> String {
    let out = std::process::Command::new("ip").args(["-n", plan::ROUTER_NETNS, "-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.0 {
            netns::remove(ns);
        }
        let bridge = plan::bridge_name(SUBNET_ID);
        let _ = std::process::Command::new("ip").args(["-n", plan::ROUTER_NETNS, "link", "del", &bridge]).output();
        let _ = std::process::Command::new("ip").args(["route", "del", "10.203.0.0/24"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_get_their_addresses_and_their_security_groups_on_this_machine() {
    let _one_at_a_time = SERIAL.lock().await;
    let pid = std::process::id();
    let names = vec![format!("berth-test-{pid}-a"), format!("berth-test-{pid}-b")];
    let _cleanup = Cleanup(names.clone());
    let state = tempfile::tempdir().unwrap();
    let host = HostNetworking::new(state.path().to_path_buf(), None);
    let (a, b) = (network(10, port_80()), network(11, port_80()));
    let mut paths = Vec::new();
    for (name, (task, net)) in names.iter().zip([("ta", &a), ("tb", &b)]) {
        let path = netns::create(name).unwrap();
        host.attach(task, &path, net).await.unwrap();
        // Attaching again (an agent restart) finds what it made.
        host.attach(task, &path, net).await.unwrap();
        paths.push(path);
    }
    serve(&paths[0], "a");
    serve(&paths[1], "b");
    assert_eq!(answer(a.eni.private_ip).as_deref(), Some("a"), "the host reaches a task at its address");
    assert_eq!(answer(b.eni.private_ip).as_deref(), Some("b"), "a second task on port 80 beside it");
    assert_eq!(answer_from(&paths[1], a.eni.private_ip).as_deref(), Some("a"), "task to task, over the bridge");
    let mut attached = host.attached();
    attached.sort();
    assert_eq!(attached, ["ta", "tb"]);

    // No ingress rule for port 80: blocked; authorized again: open (the task keeps running).
    host.update_rules("ta", &network(10, vec![])).await.unwrap();
    assert_eq!(answer(a.eni.private_ip), None, "blocked without an ingress rule");
    assert_eq!(answer_from(&paths[1], a.eni.private_ip), None, "blocked for the other task too (bridged)");
    assert_eq!(answer_from(&paths[0], b.eni.private_ip).as_deref(), Some("b"), "replies are not ingress");
    assert_eq!(answer(b.eni.private_ip).as_deref(), Some("b"), "the other task's rules are its own");
    let narrow = vec![Rule { protocol: "tcp".into(), ports: Some((81, 90)), cidrs: vec!["0.0.0.0/0".into()] }];
    host.update_rules("ta", &network(10, narrow)).await.unwrap();
    assert_eq!(answer(a.eni.private_ip), None, "another port range does not open port 80");
    // Only the other task's address may: the host may not.
    let from_b = vec![Rule { protocol: "tcp".into(), ports: Some((80, 80)), cidrs: vec!["10.203.0.11/32".into()] }];
    host.update_rules("ta", &network(10, from_b)).await.unwrap();
    assert_eq!(answer(a.eni.private_ip), None, "the host is not 10.203.0.11");
    assert_eq!(answer_from(&paths[1], a.eni.private_ip).as_deref(), Some("a"), "the other task is");
    host.update_rules("ta", &a).await.unwrap();
    assert_eq!(answer(a.eni.private_ip).as_deref(), Some("a"), "authorized again");
    // Egress: a task whose groups allow no egress sends nothing, yet is still reached.
    let mut silent = network(11, port_80());
    silent.rules.egress.clear();
    host.update_rules("tb", &silent).await.unwrap();
    assert_eq!(answer_from(&paths[1], a.eni.private_ip), None, "no egress rule, no connection out");
    assert_eq!(answer(b.eni.private_ip).as_deref(), Some("b"), "replies to allowed ingress still leave");
    host.update_rules("tb", &b).await.unwrap();
    assert_eq!(answer_from(&paths[1], a.eni.private_ip).as_deref(), Some("a"));

    let veth = plan::Plan::new("ta", &a.eni).unwrap().veth;
    assert!(links_in_router().contains(&veth));
    host.detach("ta").await.unwrap();
    host.detach("ta").await.unwrap();
    assert!(!links_in_router().contains(&veth), "the veth is gone");
    assert_eq!(answer(a.eni.private_ip), None);
    assert_eq!(host.attached(), ["tb"]);

    // A task whose agent died before detaching it leaves its firewall entries for its
    // address, and its interface on the bridge while its namespace lives (here: it still
    // runs); a later task given that address (by an agent with fresh state) evicts both.
    host.detach("tb").await.unwrap();
    let dead_ns = format!("berth-test-{pid}-c");
    let next_ns = format!("berth-test-{pid}-d");
    let _more = Cleanup(vec![dead_ns.clone(), next_ns.clone()]);
    let dead_path = netns::create(&dead_ns).unwrap();
    host.attach("tdead", &dead_path, &b).await.unwrap();
    serve(&dead_path, "dead");
    assert_eq!(answer(b.eni.private_ip).as_deref(), Some("dead"));
    let other_state = tempfile::tempdir().unwrap();
    let fresh = HostNetworking::new(other_state.path().to_path_buf(), None);
    let next_path = netns::create(&next_ns).unwrap();
    fresh.attach("tnext", &next_path, &b).await.unwrap();
    serve(&next_path, "next");
    let dead_veth = plan::Plan::new("tdead", &b.eni).unwrap().veth;
    assert!(!links_in_router().contains(&dead_veth), "the dead task's port is gone from the bridge");
    let dead_links = std::process::Command::new("ip").args(["-n", &dead_ns, "-o", "link"]).output().unwrap();
    assert!(dead_links.status.success());
    let dead_links = String::from_utf8_lossy(&dead_links.stdout);
    assert!(!dead_links.contains("eth0"), "the dead task's interface went with its port: {dead_links}");
    for _ in 0..5 {
        assert_eq!(answer(b.eni.private_ip).as_deref(), Some("next"), "the address's new task is reached");
    }
    fresh.detach("tnext").await.unwrap();
}

/// Tasks of one subnet starting at once on a machine where a stale bridge (left by an earlier
/// Berth with the same VPC block) holds the subnet's gateway: each finds it, one removes it,
/// and neither start fails for it. Subnet 10.207.0.0/24, no other test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_starting_at_once_both_get_past_a_stale_bridge() {
    let _one_at_a_time = SERIAL.lock().await;
    const SUBNET: &str = "subnet-0feedbeef0207test";
    const STALE: &str = "bsn-stale0207";
    let on = |last: u8| {
        let mut net = network(last, port_80());
        net.eni.subnet_id = SUBNET.into();
        net.eni.subnet_cidr = "10.207.0.0/24".into();
        net.eni.gateway = Ipv4Addr::new(10, 207, 0, 1);
        net.eni.private_ip = Ipv4Addr::new(10, 207, 0, last);
        net
    };
    let pid = std::process::id();
    let names = vec![format!("berth-test-{pid}-e"), format!("berth-test-{pid}-f")];
    struct Gone(Vec<String>);
    impl Drop for Gone {
        fn drop(&mut self) {
            for ns in &self.0 {
                netns::remove(ns);
            }
            for link in [plan::bridge_name(SUBNET), STALE.to_string()] {
                let _ =
                    std::process::Command::new("ip").args(["-n", plan::ROUTER_NETNS, "link", "del", &link]).output();
            }
            let _ = std::process::Command::new("ip").args(["route", "del", "10.207.0.0/24"]).output();
        }
    }
    let _cleanup = Gone(names.clone());
    berth_agent::vpc::link::ensure_router().await.unwrap();
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip").args(["-n", plan::ROUTER_NETNS]).args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(&["link", "add", STALE, "type", "bridge"]);
    ip(&["addr", "add", "10.207.0.1/24", "dev", STALE]);

    let state = tempfile::tempdir().unwrap();
    let host = HostNetworking::new(state.path().to_path_buf(), None);
    let (e, f) = (on(10), on(11));
    let (pe, pf) = (netns::create(&names[0]).unwrap(), netns::create(&names[1]).unwrap());
    let (first, second) = tokio::join!(host.attach("te", &pe, &e), host.attach("tf", &pf, &f));
    first.unwrap();
    second.unwrap();
    assert!(!links_in_router().contains(STALE), "the stale bridge is gone");
    serve(&pe, "e");
    assert_eq!(answer(e.eni.private_ip).as_deref(), Some("e"), "the subnet's own bridge serves it");
    host.detach("te").await.unwrap();
    host.detach("tf").await.unwrap();
}

/// libnftables in the agent's process speaks to the namespace it was opened for, as `nft` run
/// there would: batches apply there and not on the host, and a batch with a bad command
/// changes nothing and says why in nft's words.
#[tokio::test]
async fn libnftables_runs_batches_in_its_namespace_all_or_nothing() {
    use berth_agent::vpc::libnft::Nft;
    // Its cleanup removes the subnet's bridge as well, which the other tests use.
    let _serial = SERIAL.lock().await;
    let name = format!("berth-test-{}-nft", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    let path = netns::create(&name).unwrap();
    let nft = Nft::open(&path).expect("libnftables loads (Debian's libnftables1 comes with nftables)");
    nft.run("add table inet berthtest\nadd chain inet berthtest c\n".into()).await.unwrap();
    assert!(nft.run("list tables".into()).await.unwrap().contains("table inet berthtest"));
    let program = |args: &[&str]| {
        let out = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(program(&["ip", "netns", "exec", &name, "nft", "list", "tables"]).contains("table inet berthtest"));
    assert!(!program(&["nft", "list", "tables"]).contains("berthtest"), "nothing on the host");
    let err = nft.run("add chain inet berthtest d\nadd chain inet nosuchtable e\n".into()).await.unwrap_err();
    assert!(err.to_string().contains("No such file or directory"), "{err}");
    let table = nft.run("list table inet berthtest".into()).await.unwrap();
    assert!(table.contains("chain c") && !table.contains("chain d"), "the refused batch changed nothing: {table}");
}

/// The parent's index of the router's public link (`bpub0@ifN`), and the link's own.
fn public_link() -> Option<(u32, u32)> {
    let out = std::process::Command::new("ip")
        .args(["-n", plan::ROUTER_NETNS, "-o", "link", "show", plan::PUBLIC_LINK])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let own = text.split(':').next()?.trim().parse().ok()?;
    let parent = text.split("@if").nth(1)?.split(':').next()?.parse().ok()?;
    Some((own, parent))
}

fn host_index(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).unwrap().trim().parse().unwrap()
}

struct PublicCleanup(Vec<String>);

impl Drop for PublicCleanup {
    fn drop(&mut self) {
        for link in &self.0 {
            let _ = std::process::Command::new("ip").args(["link", "del", link]).output();
        }
        let _ = std::process::Command::new("ip").args(["route", "del", "10.203.9.0/30"]).output();
    }
}

/// The router's public link is a macvlan of the configured interface; an agent started with
/// another interface moves it there (the addresses come back with the tasks), and one
/// started with the same keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_link_follows_the_public_interface() {
    use berth_agent::vpc::{link, public};
    let _serial = SERIAL.lock().await;
    let pid = std::process::id() % 100_000;
    let (a, b) = (format!("bpta{pid}"), format!("bptb{pid}"));
    let _cleanup = PublicCleanup(vec![a.clone(), b.clone()]);
    for name in [&a, &b] {
        let peer = format!("{name}p");
        let made = std::process::Command::new("ip")
            .args(["link", "add", name, "type", "veth", "peer", "name", &peer])
            .status()
            .unwrap();
        assert!(made.success());
        assert!(std::process::Command::new("ip").args(["link", "set", name, "up"]).status().unwrap().success());
    }
    let router = link::ensure_router().await.unwrap();
    let side = |interface: &str| public::PublicSide {
        interface: interface.to_string(),
        pool: plan::Cidr::parse("10.203.9.0/30").unwrap(),
        gateway: Ipv4Addr::new(10, 203, 9, 9),
    };
    public::ensure(&router, &side(&a)).await.unwrap();
    let (first, parent) = public_link().expect("a public link");
    assert_eq!(parent, host_index(&a));
    public::hold(&router, Ipv4Addr::new(10, 203, 9, 1)).await.unwrap();
    public::ensure(&router, &side(&a)).await.unwrap();
    assert_eq!(public_link(), Some((first, host_index(&a))), "the same interface: kept as it is");

    public::ensure(&router, &side(&b)).await.unwrap();
    let (_, parent) = public_link().expect("a public link");
    assert_eq!(parent, host_index(&b), "moved to the other interface");
    public::hold(&router, Ipv4Addr::new(10, 203, 9, 1)).await.unwrap();
    public::release(&router, Ipv4Addr::new(10, 203, 9, 1)).await.unwrap();
    public::release(&router, Ipv4Addr::new(10, 203, 9, 1)).await.unwrap();
    assert!(
        public::ensure(&router, &side("bpt-nosuch0")).await.unwrap_err().to_string().contains("does not exist"),
        "an interface that does not exist is refused"
    );
}
