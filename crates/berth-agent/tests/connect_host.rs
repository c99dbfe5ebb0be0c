//! Service Connect's interception on this machine for real: in a network namespace the test
//! makes, the proxy's egress listener gets the task's connections to an alias address through
//! the NAT rule the agent installs (`nft`), and relays them to the alias's endpoint; the alias's
//! own port stays free for the task's applications. Needs root and the `nft` program
//! (scripts/test provides them). Traffic stays inside the namespace, which is removed at the
//! end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use berth_agent::connect::{proxy_config, redirect_batch};
use berth_agent::vpc::{firewall, netns};
use berth_agent_protocol::connect::{ClientAlias, ServiceConnect};
use berth_connect::TaskProxy;

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        netns::remove(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_an_alias_reach_its_endpoint_through_the_redirect() {
    let name = format!("berth-test-{}-sc", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let path = netns::create(&name).unwrap();
    let up = std::process::Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success());

    // The endpoint, and an application of the task on the alias's port (0.0.0.0:80): both
    // inside the namespace.
    let endpoint = netns::run_in(&path, || std::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let endpoint_addr = endpoint.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in endpoint.incoming().flatten() {
            let _ = conn.write_all(b"from the endpoint");
        }
    });
    let app = netns::run_in(&path, || std::net::TcpListener::bind("0.0.0.0:80"));
    assert!(app.is_ok(), "the application binds its port: {app:?}");

    let sc = ServiceConnect {
        namespace: "internal.app".into(),
        aliases: vec![ClientAlias {
            dns_name: "backend".into(),
            port: 80,
            address: Ipv4Addr::new(127, 255, 0, 1),
            service: "backend".into(),
            idle_timeout_seconds: 0,
        }],
        ingress: vec![],
    };
    let proxy = TaskProxy::start(Some(&path), proxy_config(&sc)).unwrap();
    proxy.set_endpoints("backend", &[endpoint_addr]);
    let port = proxy.egress_port().expect("an egress listener");
    firewall::apply(&path, redirect_batch(port)).await.unwrap();
    // Applied again (an agent restart with a new proxy): the rule is replaced, not doubled.
    firewall::apply(&path, redirect_batch(port)).await.unwrap();

    let answer = netns::run_in(&path, || {
        let mut conn = TcpStream::connect_timeout(&SocketAddr::from(([127, 255, 0, 1], 80)), Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut out = String::new();
        conn.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap();
    assert_eq!(answer, "from the endpoint");
    let rules = std::process::Command::new("ip").args(["netns", "exec", &name, "nft", "list", "ruleset"]).output();
    let rules = String::from_utf8_lossy(&rules.unwrap().stdout).into_owned();
    assert_eq!(rules.matches("redirect to").count(), 1, "{rules}");
}
