//! Security groups, enforced with nftables in Berth's own table (`inet berth`) inside the
//! router namespace, where no other program keeps rules: Docker's `iptables` rules on the
//! host (legacy or nft) never see these packets, and Berth touches nothing it did not make.
//!
//! The base chains accept replies of tracked connections first (the groups are stateful),
//! then look the packet's destination up in the `ingress` map and its source in the `egress`
//! map: each maps a task's private address to a jump into that task's own chain. A task's
//! chain `return`s for a flow its rules allow and drops everything else (AWS's default deny);
//! a packet between two tasks passes the receiver's ingress chain and the sender's egress
//! chain. Frames bridged between tasks of one subnet reach these chains through
//! `br_netfilter`, switched on in the router namespace only.
//!
//! Rules are applied in nftables' own language, one atomic batch per change, inside the router
//! namespace: through libnftables in this process ([`libnft`](super::libnft)), or with the
//! `nft` program where the library cannot be loaded (both are Debian's `nftables`). Changes
//! that arrive while one runs are joined into the next run ([`Coalescer`]). Generating the
//! batches is pure and tested here.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_agent_protocol::network::{Rule, SecurityRules};

use tokio::sync::oneshot;

use super::NetError;
use super::plan::{self, Cidr, Plan};
use crate::runtime::BoxFuture;

pub const TABLE: &str = "berth";

/// Where the ECS task metadata endpoint, the instance metadata service and the VPC's DNS
/// server (Berth's, by default) answer: AWS does not filter a task's traffic to them with its
/// security groups.
pub const METADATA_ADDRESSES: [Ipv4Addr; 3] =
    [Ipv4Addr::new(169, 254, 170, 2), Ipv4Addr::new(169, 254, 169, 254), Ipv4Addr::new(169, 254, 169, 253)];

/// The table, its maps and its base chains, rebuilt idempotently (the maps' elements stay).
pub fn base() -> String {
    let mut out = format!(
        "add table inet {TABLE}\n\
         add map inet {TABLE} ingress {{ type ipv4_addr : verdict ; }}\n\
         add map inet {TABLE} egress {{ type ipv4_addr : verdict ; }}\n"
    );
    for (chain, hook, lookups) in [
        ("forward", "forward", &["ip daddr vmap @ingress", "ip saddr vmap @egress"][..]),
        ("input", "input", &["ip saddr vmap @egress"][..]),
        ("output", "output", &["ip daddr vmap @ingress"][..]),
    ] {
        let _ =
            writeln!(out, "add chain inet {TABLE} {chain} {{ type filter hook {hook} priority 0 ; policy accept ; }}");
        let _ = writeln!(out, "flush chain inet {TABLE} {chain}");
        let _ = writeln!(out, "add rule inet {TABLE} {chain} ct state established,related accept");
        let _ = writeln!(out, "add rule inet {TABLE} {chain} ct state invalid drop");
        for lookup in lookups {
            let _ = writeln!(out, "add rule inet {TABLE} {chain} {lookup}");
        }
    }
    out.push_str(&public_base());
    out
}

/// The 1:1 NAT of public addresses (`assignPublicIp`): `public_in` maps a public address to
/// its task's private one, `public_out` back, `public_src` holds the private addresses that
/// have one. Packets from those tasks are marked, so the router sends what its own routes do
/// not cover out of the public link (`plan::PUBLIC_TABLE`), where they leave with their public
/// source; a task reaching another's public address from a subnet bridge is masqueraded behind
/// the gateway, so the reply comes back through the router (hairpin), as through a NAT
/// gateway. Empty maps change nothing.
fn public_base() -> String {
    let mut out = format!(
        "add map inet {TABLE} public_in {{ type ipv4_addr : ipv4_addr ; }}\n\
         add map inet {TABLE} public_out {{ type ipv4_addr : ipv4_addr ; }}\n\
         add set inet {TABLE} public_src {{ type ipv4_addr ; }}\n"
    );
    let link = plan::PUBLIC_LINK;
    let mark = plan::PUBLIC_MARK;
    for (chain, kind, hook, priority, rules) in [
        ("public_mark", "filter", "prerouting", -150, vec![format!("ip saddr @public_src meta mark set {mark:#x}")]),
        ("public_dnat", "nat", "prerouting", -100, vec!["dnat ip to ip daddr map @public_in".to_string()]),
        (
            "public_snat",
            "nat",
            "postrouting",
            100,
            vec![
                format!("oifname \"{link}\" snat ip to ip saddr map @public_out"),
                "iifname \"bsn-*\" ct status dnat masquerade".to_string(),
            ],
        ),
    ] {
        let _ = writeln!(
            out,
            "add chain inet {TABLE} {chain} {{ type {kind} hook {hook} priority {priority} ; policy accept ; }}"
        );
        let _ = writeln!(out, "flush chain inet {TABLE} {chain}");
        for rule in rules {
            let _ = writeln!(out, "add rule inet {TABLE} {chain} {rule}");
        }
    }
    out
}

/// The elements that map the plan's public address to its private one, if it has one: (set or
/// map, key, the element as added).
fn public_elements(plan: &Plan) -> Vec<(&'static str, Ipv4Addr, String)> {
    let Some(public) = plan.public else { return Vec::new() };
    let private = plan.address;
    vec![
        ("public_in", public, format!("{public} : {private}")),
        ("public_out", private, format!("{private} : {public}")),
        ("public_src", private, private.to_string()),
    ]
}

/// The match of one rule's protocol and ports, or `None` when the rule can match nothing.
fn protocol_match(rule: &Rule) -> Result<String, NetError> {
    let bad = || NetError::Rules(format!("unknown protocol {:?}", rule.protocol));
    let ports = |proto: &str| match rule.ports {
        Some((from, to)) if from == to => format!("{proto} dport {from}"),
        Some((from, to)) if from < to => format!("{proto} dport {from}-{to}"),
        Some((from, to)) => format!("{proto} dport {to}-{from}"),
        None => format!("meta l4proto {proto}"),
    };
    Ok(match rule.protocol.as_str() {
        "-1" | "all" => String::new(),
        "tcp" | "6" => ports("tcp"),
        "udp" | "17" => ports("udp"),
        // EC2 gives ICMP's type and code as the port range's ends.
        "icmp" | "1" => match rule.ports {
            Some((kind, code)) if kind <= 255 && code <= 255 => format!("icmp type {kind} icmp code {code}"),
            Some((kind, _)) if kind <= 255 => format!("icmp type {kind}"),
            _ => "meta l4proto icmp".to_string(),
        },
        n => match n.parse::<u8>() {
            Ok(number) => format!("meta l4proto {number}"),
            Err(_) => return Err(bad()),
        },
    })
}

/// The statements of a task's chain for `rules` (`peer` is `saddr` for ingress, `daddr` for
/// egress): each allowed flow returns; the last statement drops.
fn chain_rules(rules: &[Rule], peer: &str) -> Result<Vec<String>, NetError> {
    let mut out = Vec::new();
    for rule in rules {
        let proto = protocol_match(rule)?;
        let mut cidrs = Vec::new();
        for c in &rule.cidrs {
            if c.contains(':') {
                continue; // IPv6 peers: tasks have no IPv6 address
            }
            let cidr = Cidr::parse(c).ok_or_else(|| NetError::Rules(format!("{c:?} is not an IPv4 CIDR")))?;
            cidrs.push(cidr);
        }
        if cidrs.is_empty() {
            continue;
        }
        cidrs.sort();
        cidrs.dedup();
        let addresses = if cidrs.iter().any(|c| c.prefix == 0) {
            String::new()
        } else {
            let list: Vec<String> = cidrs.iter().map(Cidr::to_string).collect();
            format!("ip {peer} {{ {} }} ", list.join(", "))
        };
        let statement = format!("{addresses}{proto} return");
        out.push(statement.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out.push("drop".to_string());
    Ok(out)
}

/// The batch that (re)writes a task's two chains from `rules` and maps its address to them,
/// atomically: a task never runs with half of a change.
pub fn task(plan: &Plan, rules: &SecurityRules) -> Result<String, NetError> {
    let ingress = chain_rules(&rules.ingress, "saddr")?;
    let mut egress = vec![format!(
        "ip daddr {{ {} }} return",
        METADATA_ADDRESSES.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", ")
    )];
    egress.extend(chain_rules(&rules.egress, "daddr")?);
    let mut out = String::new();
    for (chain, statements) in [(&plan.ingress_chain, ingress), (&plan.egress_chain, egress)] {
        let _ = writeln!(out, "add chain inet {TABLE} {chain}");
        let _ = writeln!(out, "flush chain inet {TABLE} {chain}");
        for s in statements {
            let _ = writeln!(out, "add rule inet {TABLE} {chain} {s}");
        }
    }
    for (map, chain) in [("ingress", &plan.ingress_chain), ("egress", &plan.egress_chain)] {
        let _ = writeln!(out, "add element inet {TABLE} {map} {{ {} : jump {chain} }}", plan.address);
    }
    for (set, _, element) in public_elements(plan) {
        let _ = writeln!(out, "add element inet {TABLE} {set} {{ {element} }}");
    }
    Ok(out)
}

/// The batch that removes a task's chains and map entries. It first adds them (a no-op when
/// they exist), so it never fails for something already gone.
pub fn remove(plan: &Plan) -> String {
    let mut out = String::new();
    for (map, chain) in [("ingress", &plan.ingress_chain), ("egress", &plan.egress_chain)] {
        let _ = writeln!(out, "add chain inet {TABLE} {chain}");
        let _ = writeln!(out, "add element inet {TABLE} {map} {{ {} : jump {chain} }}", plan.address);
        let _ = writeln!(out, "delete element inet {TABLE} {map} {{ {} }}", plan.address);
        let _ = writeln!(out, "flush chain inet {TABLE} {chain}");
        let _ = writeln!(out, "delete chain inet {TABLE} {chain}");
    }
    for (set, key, element) in public_elements(plan) {
        let _ = writeln!(out, "add element inet {TABLE} {set} {{ {element} }}");
        let _ = writeln!(out, "delete element inet {TABLE} {set} {{ {key} }}");
    }
    out
}

/// The chain an element of `nft get element` output jumps to.
fn jump_target(listing: &str) -> Option<&str> {
    let rest = &listing[listing.find("jump ")? + 5..];
    rest.split(|c: char| c.is_whitespace() || c == '}' || c == ',').next().filter(|c| !c.is_empty())
}

/// Takes away the task's address's map entries when they jump to another task's chains, and
/// those chains: left by a task whose agent died before detaching it, they would refuse this
/// task's entries (`File exists`). The address is this task's now: EC2 gives an address to one
/// live interface at a time.
pub async fn evict_stale(netns: &std::path::Path, plan: &Plan) -> Result<(), NetError> {
    for (map, chain) in [("ingress", &plan.ingress_chain), ("egress", &plan.egress_chain)] {
        // Absent: `get element` fails, and there is nothing to evict.
        let Ok(found) = run(netns, format!("get element inet {TABLE} {map} {{ {} }}\n", plan.address)).await else {
            continue;
        };
        let Some(stale) = jump_target(&found).filter(|target| target != chain) else { continue };
        tracing::warn!(address = %plan.address, chain = stale, "removing a dead task's firewall entry for this address");
        run(netns, format!("delete element inet {TABLE} {map} {{ {} }}\n", plan.address)).await?;
        let _ = run(netns, format!("flush chain inet {TABLE} {stale}\ndelete chain inet {TABLE} {stale}\n")).await;
    }
    // A dead task's public mapping of this task's public or private address refuses the new
    // one in the same way; absent ones are no error worth a look.
    for (set, key, _) in public_elements(plan) {
        let _ = run(netns, format!("delete element inet {TABLE} {set} {{ {key} }}\n")).await;
    }
    Ok(())
}

/// Whether nft refused a batch because an element it adds exists with other data (a map entry
/// of the same address that jumps to another chain).
pub fn refused_as_existing(e: &NetError) -> bool {
    matches!(e, NetError::Firewall(m) if m.contains("File exists"))
}

/// Runs one namespace's rule batches, joining those that arrive while one runs into the next
/// run: in a burst of task starts each run (reading the table, parsing, the kernel's
/// transaction) then serves several tasks. The tasks' batches touch disjoint
/// chains and map elements, so a joined batch means what its parts mean one after another;
/// when a joined batch is refused (nft's batches are all or nothing), each part runs alone,
/// so every caller gets the answer its own batch would have had.
pub struct Coalescer {
    queue: Arc<Mutex<Queue>>,
    runner: Runner,
}

/// Applies one batch.
pub type Runner = Arc<dyn Fn(String) -> BoxFuture<'static, Result<(), NetError>> + Send + Sync>;

type Waiting = Vec<(String, oneshot::Sender<Result<(), NetError>>)>;

#[derive(Default)]
struct Queue {
    waiting: Waiting,
    /// Whether a drain task is running.
    running: bool,
}

impl Coalescer {
    /// Batches for the namespace at `netns`, in nftables' language (see [`apply`]).
    pub fn nft(netns: PathBuf) -> Self {
        Self::with_runner(Arc::new(move |batch| {
            let netns = netns.clone();
            Box::pin(async move { apply(&netns, batch).await })
        }))
    }

    pub fn with_runner(runner: Runner) -> Self {
        Self { queue: Arc::default(), runner }
    }

    /// Applies `batch`, alone or joined with others.
    pub async fn apply(&self, batch: String) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.waiting.push((batch, tx));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(drain(self.queue.clone(), self.runner.clone()));
        }
        rx.await.unwrap_or_else(|_| Err(NetError::Firewall("the rule runner stopped".into())))
    }
}

/// Runs what is waiting, joined, until nothing is.
async fn drain(queue: Arc<Mutex<Queue>>, runner: Runner) {
    loop {
        let mut batches = {
            let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.waiting.is_empty() {
                queue.running = false;
                return;
            }
            std::mem::take(&mut queue.waiting)
        };
        if batches.len() == 1 {
            let (batch, tx) = batches.remove(0);
            let _ = tx.send(runner(batch).await);
            continue;
        }
        let mut joined = String::new();
        for (batch, _) in &batches {
            joined.push_str(batch);
            if !batch.ends_with('\n') {
                joined.push('\n');
            }
        }
        if runner(joined).await.is_ok() {
            for (_, tx) in batches {
                let _ = tx.send(Ok(()));
            }
        } else {
            for (batch, tx) in batches {
                let _ = tx.send(runner(batch).await);
            }
        }
    }
}

/// Runs `batch` inside the network namespace at `netns`: through libnftables in this process
/// ([`libnft`](super::libnft)), or with the `nft` program where the library cannot be loaded.
pub async fn apply(netns: &std::path::Path, batch: String) -> Result<(), NetError> {
    run(netns, batch).await.map(drop)
}

/// Runs `batch` inside the network namespace at `netns`, through libnftables in this process
/// ([`libnft`](super::libnft)) or else with the `nft` program; what it printed.
async fn run(netns: &std::path::Path, batch: String) -> Result<String, NetError> {
    match super::libnft::for_namespace(netns) {
        Some(nft) => nft.run(batch).await,
        None => run_program(netns, batch).await,
    }
}

/// Runs `batch` with `nft -f -` inside the network namespace at `netns`; what it printed.
async fn run_program(netns: &std::path::Path, batch: String) -> Result<String, NetError> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let ns = std::fs::File::open(netns).map_err(|e| NetError::Firewall(format!("{}: {e}", netns.display())))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ns);
    let mut cmd = std::process::Command::new("nft");
    cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe; the descriptor stays open until the child execs.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(cmd).spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            NetError::Firewall("the nft program is missing (Debian: apt-get install nftables)".into())
        }
        _ => NetError::Firewall(format!("nft: {e}")),
    })?;
    drop(ns);
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(batch.as_bytes()).await.map_err(|e| NetError::Firewall(format!("nft: {e}")))?;
    }
    let out = child.wait_with_output().await.map_err(|e| NetError::Firewall(format!("nft: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Firewall(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpc::plan::tests_support::eni;

    fn rule(protocol: &str, ports: Option<(u16, u16)>, cidrs: &[&str]) -> Rule {
        Rule { protocol: protocol.into(), ports, cidrs: cidrs.iter().map(|c| c.to_string()).collect() }
    }

    #[test]
    fn the_jump_target_is_read_from_a_listing() {
        let listing = "table inet berth {\n\tmap ingress {\n\t\ttype ipv4_addr : verdict\n\t\telements = { 10.201.9.198 : jump in-69e71afcb8c0 }\n\t}\n}\n";
        assert_eq!(jump_target(listing), Some("in-69e71afcb8c0"));
        assert_eq!(jump_target("elements = { 10.0.0.1 : jump out-1,"), Some("out-1"));
        assert_eq!(jump_target("no element"), None);
    }

    #[test]
    fn rules_become_returns_before_a_final_drop() {
        let rules = vec![
            rule("tcp", Some((80, 80)), &["0.0.0.0/0"]),
            rule("udp", Some((5000, 5010)), &["172.31.0.7/32", "10.0.0.0/8", "10.1.2.3/8"]),
            rule("-1", None, &["172.31.0.9"]),
            rule("icmp", Some((8, 0)), &["192.168.0.0/16"]),
            rule("tcp", None, &["::/0"]),
            rule("50", None, &["0.0.0.0/0"]),
        ];
        assert_eq!(
            chain_rules(&rules, "saddr").unwrap(),
            [
                "tcp dport 80 return",
                "ip saddr { 10.0.0.0/8, 172.31.0.7/32 } udp dport 5000-5010 return",
                "ip saddr { 172.31.0.9/32 } return",
                "ip saddr { 192.168.0.0/16 } icmp type 8 icmp code 0 return",
                "meta l4proto 50 return",
                "drop",
            ]
        );
        assert_eq!(chain_rules(&[], "daddr").unwrap(), ["drop"], "no rule: nothing allowed");
        assert!(chain_rules(&[rule("sctp-ish", None, &["0.0.0.0/0"])], "saddr").is_err());
        assert!(chain_rules(&[rule("tcp", None, &["10.0.0.0; flush ruleset"])], "saddr").is_err(), "no injection");
    }

    #[test]
    fn a_task_batch_writes_both_chains_and_maps_its_address() {
        let plan = Plan::new("t1", &eni([172, 31, 0, 5])).unwrap();
        let rules = SecurityRules {
            ingress: vec![rule("tcp", Some((80, 80)), &["0.0.0.0/0"])],
            egress: vec![rule("-1", None, &["0.0.0.0/0"])],
        };
        let batch = task(&plan, &rules).unwrap();
        let (i, o) = (&plan.ingress_chain, &plan.egress_chain);
        assert!(batch.contains(&format!("flush chain inet berth {i}\nadd rule inet berth {i} tcp dport 80 return\nadd rule inet berth {i} drop\n")), "{batch}");
        assert!(batch.contains(&format!("add rule inet berth {o} ip daddr {{ 169.254.170.2, 169.254.169.254, 169.254.169.253 }} return\nadd rule inet berth {o} return\n")), "{batch}");
        assert!(batch.contains(&format!("add element inet berth ingress {{ 172.31.0.5 : jump {i} }}")));
        assert!(batch.contains(&format!("add element inet berth egress {{ 172.31.0.5 : jump {o} }}")));
        let removal = remove(&plan);
        assert!(removal.contains(&format!("delete element inet berth ingress {{ 172.31.0.5 }}\nflush chain inet berth {i}\ndelete chain inet berth {i}")), "{removal}");
        let b = base();
        assert!(b.contains("add chain inet berth forward { type filter hook forward priority 0 ; policy accept ; }\nflush chain inet berth forward\nadd rule inet berth forward ct state established,related accept"), "{b}");
        assert!(b.contains(
            "add rule inet berth forward ip daddr vmap @ingress\nadd rule inet berth forward ip saddr vmap @egress"
        ));
    }

    #[test]
    fn a_public_address_is_mapped_both_ways_and_unmapped_with_the_task() {
        let mut plan = Plan::new("t", &crate::vpc::plan::tests_support::eni([172, 31, 0, 5])).unwrap();
        let rules = SecurityRules::default();
        assert!(!task(&plan, &rules).unwrap().contains("public"), "no public address, no mapping");
        assert!(!remove(&plan).contains("public"));
        plan.public = Some(Ipv4Addr::new(203, 0, 113, 7));
        let batch = task(&plan, &rules).unwrap();
        for element in [
            "public_in { 203.0.113.7 : 172.31.0.5 }",
            "public_out { 172.31.0.5 : 203.0.113.7 }",
            "public_src { 172.31.0.5 }",
        ] {
            assert!(batch.contains(&format!("add element inet berth {element}\n")), "{batch}");
        }
        let removal = remove(&plan);
        for key in ["public_in { 203.0.113.7 }", "public_out { 172.31.0.5 }", "public_src { 172.31.0.5 }"] {
            assert!(removal.contains(&format!("delete element inet berth {key}\n")), "{removal}");
        }
        let b = base();
        assert!(
            b.contains("add rule inet berth public_snat oifname \"bpub0\" snat ip to ip saddr map @public_out"),
            "{b}"
        );
        assert!(b.contains("add rule inet berth public_mark ip saddr @public_src meta mark set 0xb3"), "{b}");
    }

    fn recording() -> (Runner, Arc<Mutex<Vec<String>>>) {
        let runs = Arc::new(Mutex::new(Vec::new()));
        let seen = runs.clone();
        let runner: Runner = Arc::new(move |batch: String| {
            let seen = seen.clone();
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let refused = batch.contains("bad");
                seen.lock().unwrap().push(batch);
                if refused { Err(NetError::Firewall("nft: refused".into())) } else { Ok(()) }
            })
        });
        (runner, runs)
    }

    /// Applies `first`, then, while its run is under way, all of `rest` at once.
    async fn during_a_run(c: Arc<Coalescer>, first: &str, rest: &[&str]) -> Vec<Result<(), NetError>> {
        let (c1, first) = (c.clone(), first.to_string());
        let first = tokio::spawn(async move { c1.apply(first).await });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut results = vec![first.await.unwrap()];
        results.extend(futures::future::join_all(rest.iter().map(|b| c.apply(b.to_string()))).await);
        results
    }

    #[tokio::test]
    async fn batches_that_arrive_during_a_run_share_the_next() {
        let (runner, runs) = recording();
        let c = Arc::new(Coalescer::with_runner(runner));
        let results = during_a_run(c, "add chain t0\n", &["add chain t1\n", "add chain t2", "add chain t3\n"]).await;
        assert!(results.iter().all(Result::is_ok));
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs, ["add chain t0\n", "add chain t1\nadd chain t2\nadd chain t3\n"]);
    }

    #[tokio::test]
    async fn a_refused_batch_fails_alone() {
        let (runner, runs) = recording();
        let c = Arc::new(Coalescer::with_runner(runner));
        let rest = ["add chain a\n", "add chain bad\n", "add chain c\n"];
        let results = during_a_run(c, "add chain first\n", &rest).await;
        let failed: Vec<bool> = results.iter().map(Result::is_err).collect();
        assert_eq!(failed, [false, false, true, false]);
        // The first alone; the other three joined, refused; then each of them alone.
        assert_eq!(runs.lock().unwrap().len(), 5);
    }
}
