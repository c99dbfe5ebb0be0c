//! The data plane end to end on loopback: real listeners, real backends, real sockets.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_lb::config::*;
use berth_lb::{Affinity, DataPlane};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LISTENER: &str = "arn:listener/web";

/// Serving threads of every data plane here.
const THREADS: usize = 2;

/// Applies a one-listener config and returns the data plane and the listener's address.
async fn serve(rules: Vec<Rule>, groups: Vec<TargetGroup>) -> (Arc<DataPlane>, std::net::SocketAddr) {
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    let errors = dp.apply(config(vec![http_listener(LISTENER, any_port(), rules)], groups)).await;
    assert!(errors.is_empty(), "{errors:?}");
    let addr = dp.local_addr(LISTENER).unwrap();
    (dp, addr)
}

fn health_of(dp: &DataPlane, port: u16) -> Health {
    dp.statuses().into_iter().find(|s| s.key.port == port).map(|s| s.health).expect("a status for the target")
}

fn in_flight_of(dp: &DataPlane, port: u16) -> u32 {
    dp.statuses().into_iter().find(|s| s.key.port == port).map(|s| s.in_flight).unwrap()
}

#[tokio::test]
async fn round_robin_spreads_exactly_and_reuses_connections() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[a.addr, b.addr, c.addr])]).await;
    let mut seen = Vec::new();
    for _ in 0..9 {
        let r = get(addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        seen.push(r.body);
    }
    assert_eq!(seen[..3], seen[3..6]);
    assert_eq!(seen[..3], seen[6..9]);
    assert_eq!((a.hits(), b.hits(), c.hits()), (3, 3, 3));
    for _ in 0..21 {
        get(addr, "/", &[]).await;
    }
    let counts = dp.take_counts().target_groups["tg"];
    assert_eq!((counts.requests, counts.target_2xx, counts.responses), (30, 30, 30));
    assert!(counts.fastest_micros > 0 && counts.fastest_micros <= counts.slowest_micros, "{counts:?}");
    // Thirty requests, one after the other: each target saw at most one kept-alive
    // connection per serving thread.
    for x in [&a, &b, &c] {
        let n = x.connections.load(Ordering::SeqCst);
        assert!(n <= THREADS, "{} got {n} connections for 10 requests of 30", x.name);
    }
}

#[tokio::test]
async fn least_outstanding_requests_prefers_the_idle_target() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut tg = group("tg", &[a.addr, b.addr]);
    tg.algorithm = Algorithm::LeastOutstandingRequests;
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg]).await;
    let held = tokio::spawn(async move { get(addr, "/hold", &[]).await });
    eventually("a request held by one target", || dp.statuses().iter().any(|s| s.in_flight == 1)).await;
    let busy = dp.statuses().into_iter().find(|s| s.in_flight == 1).unwrap().key.port;
    let idle = if busy == a.addr.port() { &b } else { &a };
    for _ in 0..5 {
        assert_eq!(get(addr, "/", &[]).await.body, idle.name);
    }
    a.release.notify_waiters();
    b.release.notify_waiters();
    assert_eq!(held.await.unwrap().status, 200);
}

#[tokio::test]
async fn weights_split_traffic_over_groups() {
    let (a, b) = (backend("a").await, backend("b").await);
    let action = Action::Forward {
        groups: vec![
            WeightedGroup { target_group_arn: "blue".into(), weight: 3 },
            WeightedGroup { target_group_arn: "green".into(), weight: 1 },
            WeightedGroup { target_group_arn: "none".into(), weight: 0 },
        ],
        stickiness: None,
    };
    let (_dp, addr) =
        serve(vec![rule(vec![], action)], vec![group("blue", &[a.addr]), group("green", &[b.addr])]).await;
    for _ in 0..40 {
        assert_eq!(get(addr, "/", &[]).await.status, 200);
    }
    assert_eq!((a.hits(), b.hits()), (30, 10));
}

#[tokio::test]
async fn group_stickiness_keeps_a_client_on_its_group() {
    let (a, b) = (backend("a").await, backend("b").await);
    let action = Action::Forward {
        groups: vec![
            WeightedGroup { target_group_arn: "blue".into(), weight: 1 },
            WeightedGroup { target_group_arn: "green".into(), weight: 1 },
        ],
        stickiness: Some(Duration::from_secs(60)),
    };
    let (_dp, addr) =
        serve(vec![rule(vec![], action)], vec![group("blue", &[a.addr]), group("green", &[b.addr])]).await;
    let first = get(addr, "/", &[]).await;
    let cookie = first.set_cookie("AWSALBTG").expect("an AWSALBTG cookie");
    for _ in 0..6 {
        let r = get(addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(r.body, first.body, "the sticky client stays on its group");
        assert!(r.set_cookie("AWSALBTG").is_some(), "the cookie is refreshed");
    }
    let others: Vec<_> = futures_bodies(addr, 4).await;
    assert!(others.contains(&"a".to_string()) && others.contains(&"b".to_string()), "{others:?}");
}

async fn futures_bodies(addr: std::net::SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(addr, "/", &[]).await.body);
    }
    out
}

#[tokio::test]
async fn target_stickiness_keeps_a_client_on_its_target() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let mut tg = group("tg", &[a.addr, b.addr, c.addr]);
    tg.stickiness = Some(Duration::from_secs(60));
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg.clone()]).await;
    let first = get(addr, "/", &[]).await;
    let cookie = first.set_cookie("AWSALB").expect("an AWSALB cookie");
    for _ in 0..6 {
        assert_eq!(get(addr, "/", &[("cookie", &cookie)]).await.body, first.body);
    }
    // Once its target drains, the client goes elsewhere.
    for t in &mut tg.targets {
        t.draining = t.address.port() == [&a, &b, &c].iter().find(|x| x.name == first.body).unwrap().addr.port();
    }
    dp.apply(config(vec![http_listener(LISTENER, any_port(), vec![rule(vec![], forward("tg"))])], vec![tg])).await;
    for _ in 0..4 {
        assert_ne!(get(addr, "/", &[("cookie", &cookie)]).await.body, first.body);
    }
}

#[tokio::test]
async fn rules_route_by_path_host_header_and_answer_fixed_and_redirect() {
    let (api, web) = (backend("api").await, backend("web").await);
    let rules = vec![
        rule(vec![Condition::PathPattern(vec!["/api/*".into()])], forward("api")),
        rule(
            vec![Condition::HostHeader(vec!["admin.*".into()])],
            Action::FixedResponse {
                status: 403,
                content_type: Some("text/plain".into()),
                body: Some("no admins here".into()),
            },
        ),
        rule(
            vec![Condition::PathPattern(vec!["/old/*".into()])],
            Action::Redirect {
                protocol: "#{protocol}".into(),
                host: "#{host}".into(),
                port: "#{port}".into(),
                path: "/new/#{path}".into(),
                query: "#{query}".into(),
                status: 301,
            },
        ),
        rule(vec![], forward("web")),
    ];
    let (_dp, addr) = serve(rules, vec![group("api", &[api.addr]), group("web", &[web.addr])]).await;
    assert_eq!(get(addr, "/api/users", &[]).await.body, "api");
    assert_eq!(get(addr, "/API/users", &[]).await.body, "web", "paths are case-sensitive");
    assert_eq!(get(addr, "/", &[]).await.body, "web");
    let fixed = get(addr, "/", &[("host", "ADMIN.example.com")]).await;
    assert_eq!((fixed.status, fixed.body.as_str()), (403, "no admins here"));
    assert_eq!(fixed.headers["content-type"], "text/plain");
    let moved = get(addr, "/old/page?x=1", &[]).await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.headers["location"], format!("http://app.example.com:{}/new/old/page?x=1", addr.port()));
}

#[tokio::test]
async fn forwarded_headers_are_added() {
    let a = backend("a").await;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[a.addr])]).await;
    let seen =
        get(addr, "/headers", &[("x-forwarded-for", "203.0.113.9"), ("connection", "x-private"), ("x-private", "1")])
            .await
            .body;
    assert!(seen.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(seen.contains(&format!("x-forwarded-port: {}\n", addr.port())), "{seen}");
    assert!(seen.contains("x-amzn-trace-id: Root=1-"), "{seen}");
    assert!(seen.contains("host: app.example.com:"), "the Host header is kept: {seen}");
    assert!(!seen.contains("x-private"), "a header named by Connection is hop-by-hop: {seen}");
    let fresh = get(addr, "/headers", &[]).await.body;
    assert!(fresh.contains("x-forwarded-for: 127.0.0.1\n"), "{fresh}");
}

#[tokio::test]
async fn request_bodies_are_streamed_to_the_target() {
    let a = backend("a").await;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[a.addr])]).await;
    let body = Bytes::from(vec![b'x'; 300_000]);
    let r = send(addr, "POST", "/body", &[], body).await;
    assert_eq!((r.status, r.body.as_str()), (200, "a:300000"));
}

#[tokio::test]
async fn error_answers_follow_alb() {
    let (garbage, _g) = garbage_backend().await;
    let (closing, _c) = closing_backend().await;
    let slow = backend("slow").await;
    let rules = vec![
        rule(vec![Condition::PathPattern(vec!["/refused".into()])], forward("refused")),
        rule(vec![Condition::PathPattern(vec!["/garbage".into()])], forward("garbage")),
        rule(vec![Condition::PathPattern(vec!["/closing".into()])], forward("closing")),
        rule(vec![Condition::PathPattern(vec!["/empty".into()])], forward("empty")),
        rule(vec![Condition::PathPattern(vec!["/unknown".into()])], forward("not-in-config")),
        rule(vec![], forward("slow")),
    ];
    let groups = vec![
        group("refused", &[closed_port()]),
        group("garbage", &[garbage]),
        group("closing", &[closing]),
        group("empty", &[]),
        group("slow", &[slow.addr]),
    ];
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    let mut listener = http_listener(LISTENER, any_port(), rules);
    listener.idle_timeout = Duration::from_millis(300);
    assert!(dp.apply(config(vec![listener], groups)).await.is_empty());
    let addr = dp.local_addr(LISTENER).unwrap();
    for (path, status, title) in [
        ("/refused", 502, "502 Bad Gateway"),
        ("/garbage", 502, "502 Bad Gateway"),
        ("/closing", 502, "502 Bad Gateway"),
        ("/empty", 503, "503 Service Temporarily Unavailable"),
        ("/unknown", 503, "503 Service Temporarily Unavailable"),
        ("/sleep", 504, "504 Gateway Time-out"),
    ] {
        let r = get(addr, path, &[]).await;
        assert_eq!(r.status, status, "{path}");
        assert!(r.body.contains(&format!("<h1>{title}</h1>")), "{path}: {}", r.body);
        assert_eq!(r.headers["server"], "awselb/2.0");
        assert_eq!(r.headers["content-type"], "text/html");
    }
    assert_eq!(dp.statuses().iter().map(|s| s.in_flight).sum::<u32>(), 0, "failed requests are not left in flight");
    // Counted for CloudWatch: the load balancer's own answers, and what reached each group.
    let counts = dp.take_counts();
    let lb = counts.load_balancers["lb"];
    assert_eq!((lb.elb_5xx, lb.elb_502, lb.elb_503, lb.elb_504, lb.elb_4xx), (6, 3, 2, 1, 0));
    assert_eq!(lb.connections, 6, "one connection a request");
    let refused = counts.target_groups["refused"];
    assert_eq!((refused.requests, refused.connection_errors, refused.responses), (1, 1, 0));
    let slow = counts.target_groups["slow"];
    assert_eq!((slow.requests, slow.responses), (1, 0), "a request that timed out got no answer");
    assert_eq!(counts.target_groups["empty"].requests, 0, "no target, no request counted");
    assert_eq!(dp.take_counts().load_balancers["lb"], Default::default(), "a take starts again");
}

#[tokio::test]
async fn health_checks_move_targets_through_their_states() {
    let a = backend("a").await;
    let mut tg = group("tg", &[a.addr]);
    tg.health_check = health_check(true, Protocol::Http);
    tg.health_check.healthy_threshold = 3;
    let (dp, _addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg]).await;
    let port = a.addr.port();
    assert_eq!(health_of(&dp, port), Health::Initial);
    let mut changes = dp.changes();
    eventually("healthy", || health_of(&dp, port) == Health::Healthy).await;
    assert!(changes.has_changed().unwrap(), "a change of health is announced");
    changes.mark_unchanged();
    a.set_health(503);
    eventually("unhealthy by status", || health_of(&dp, port) == Health::Unhealthy(Failure::ResponseCode(503))).await;
    assert!(changes.has_changed().unwrap());
    a.set_health(200);
    eventually("healthy again", || health_of(&dp, port) == Health::Healthy).await;
    a.health_delay_ms.store(1000, Ordering::SeqCst);
    eventually("unhealthy by timeout", || health_of(&dp, port) == Health::Unhealthy(Failure::Timeout)).await;
    a.health_delay_ms.store(0, Ordering::SeqCst);
    a.kill();
    eventually("unhealthy by failure", || health_of(&dp, port) == Health::Unhealthy(Failure::Failed)).await;
}

#[tokio::test]
async fn disabled_checks_count_as_healthy() {
    let a = backend("a").await;
    a.set_health(500);
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[a.addr])]).await;
    assert_eq!(health_of(&dp, a.addr.port()), Health::Unchecked);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(health_of(&dp, a.addr.port()), Health::Unchecked);
    assert_eq!(get(addr, "/", &[]).await.body, "a");
}

#[tokio::test]
async fn only_healthy_targets_get_traffic_while_there_are_any() {
    let (good, initial) = (backend("good").await, backend("initial").await);
    initial.set_health(500);
    let mut tg = group("tg", &[good.addr, initial.addr]);
    tg.health_check = health_check(true, Protocol::Http);
    tg.health_check.unhealthy_threshold = 10_000; // "initial" never leaves Initial
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg]).await;
    eventually("good is healthy", || health_of(&dp, good.addr.port()) == Health::Healthy).await;
    assert_eq!(health_of(&dp, initial.addr.port()), Health::Initial);
    for _ in 0..6 {
        assert_eq!(get(addr, "/", &[]).await.body, "good");
    }
}

#[tokio::test]
async fn with_no_healthy_target_every_target_gets_traffic() {
    let (a, b) = (backend("a").await, backend("b").await);
    a.set_health(500);
    b.set_health(500);
    let mut tg = group("tg", &[a.addr, b.addr]);
    tg.health_check = health_check(true, Protocol::Http);
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg]).await;
    // Initial targets only: the group fails open.
    let bodies = futures_bodies(addr, 4).await;
    assert_eq!(bodies.iter().filter(|b| *b == "a").count(), 2, "{bodies:?}");
    eventually("both unhealthy", || dp.statuses().iter().all(|s| matches!(s.health, Health::Unhealthy(_)))).await;
    let bodies = futures_bodies(addr, 4).await;
    assert_eq!(bodies.iter().filter(|b| *b == "b").count(), 2, "{bodies:?}");
}

#[tokio::test]
async fn a_draining_target_finishes_in_flight_requests_and_gets_no_new_ones() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut tg = group("tg", &[a.addr, b.addr]);
    let rules = || vec![rule(vec![], forward("tg"))];
    let (dp, addr) = serve(rules(), vec![tg.clone()]).await;
    // The first request goes to "a" (round robin starts at the first target) and is held.
    let held = tokio::spawn(async move { get(addr, "/hold", &[]).await });
    eventually("held at a", || in_flight_of(&dp, a.addr.port()) == 1).await;
    tg.targets[0].draining = true;
    let mut changes = dp.changes();
    changes.mark_unchanged();
    dp.apply(config(vec![http_listener(LISTENER, any_port(), rules())], vec![tg])).await;
    for _ in 0..4 {
        assert_eq!(get(addr, "/", &[]).await.body, "b");
    }
    assert_eq!(a.hits(), 1);
    a.release.notify_waiters();
    let done = held.await.unwrap();
    assert_eq!((done.status, done.body.as_str()), (200, "a"));
    eventually("a has nothing in flight", || in_flight_of(&dp, a.addr.port()) == 0).await;
    assert!(changes.has_changed().unwrap(), "a draining target's in-flight change is announced");
}

#[tokio::test]
async fn all_targets_draining_is_a_503() {
    let a = backend("a").await;
    let mut tg = group("tg", &[a.addr]);
    tg.targets[0].draining = true;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg]).await;
    assert_eq!(get(addr, "/", &[]).await.status, 503);
    assert_eq!(a.hits(), 0);
}

#[tokio::test]
async fn apply_keeps_health_and_connections_and_frees_removed_ports() {
    let a = backend("a").await;
    let mut tg = group("tg", &[a.addr]);
    tg.health_check = health_check(true, Protocol::Http);
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg.clone()]).await;
    eventually("healthy", || health_of(&dp, a.addr.port()) == Health::Healthy).await;
    let mut client = keepalive_client(addr).await;
    let ask = |path: &str| hyper::Request::get(path).header("host", "x").body(Empty::<Bytes>::new()).unwrap();
    let r = client.send_request(ask("/")).await.unwrap();
    assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "a");
    // New rules, same listener and group: health stays, the open client connection too.
    let fixed = Action::FixedResponse { status: 200, content_type: None, body: Some("fixed".into()) };
    let rules = vec![rule(vec![Condition::PathPattern(vec!["/f".into()])], fixed), rule(vec![], forward("tg"))];
    let errors = dp.apply(config(vec![http_listener(LISTENER, any_port(), rules)], vec![tg.clone()])).await;
    assert!(errors.is_empty());
    assert_eq!(health_of(&dp, a.addr.port()), Health::Healthy);
    assert_eq!(dp.local_addr(LISTENER), Some(addr), "the listener was not re-bound");
    let r = client.send_request(ask("/f")).await.unwrap();
    assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "fixed");
    // The listener goes: its port is free again.
    dp.apply(config(vec![], vec![tg])).await;
    assert_eq!(dp.local_addr(LISTENER), None);
    std::net::TcpListener::bind(addr).expect("the removed listener's port is free");
}

#[tokio::test]
async fn a_taken_port_is_reported_not_fatal() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = backend("a").await;
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    let listeners = vec![
        http_listener("busy", taken.local_addr().unwrap(), vec![rule(vec![], forward("tg"))]),
        http_listener("free", any_port(), vec![rule(vec![], forward("tg"))]),
    ];
    let errors = dp.apply(config(listeners, vec![group("tg", &[a.addr])])).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].listener_arn, "busy");
    assert_eq!(errors[0].kind, std::io::ErrorKind::AddrInUse);
    assert_eq!(get(dp.local_addr("free").unwrap(), "/", &[]).await.body, "a");
    assert_eq!(dp.local_addr("busy"), None);
}

#[tokio::test]
async fn a_changed_address_is_rebound() {
    let a = backend("a").await;
    let first = closed_port();
    let second = closed_port();
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    let make = |addr| {
        config(vec![http_listener(LISTENER, addr, vec![rule(vec![], forward("tg"))])], vec![group("tg", &[a.addr])])
    };
    assert!(dp.apply(make(first)).await.is_empty());
    assert_eq!(get(first, "/", &[]).await.body, "a");
    assert!(dp.apply(make(second)).await.is_empty());
    assert_eq!(get(second, "/", &[]).await.body, "a");
    assert!(TcpStream::connect(first).await.is_err(), "the old address no longer listens");
    dp.shutdown().await;
    assert!(TcpStream::connect(second).await.is_err(), "shutdown stops listening");
}

fn tcp_listener(arn: &str, group: &str) -> Listener {
    Listener {
        arn: arn.into(),
        load_balancer_arn: "nlb".into(),
        address: any_port(),
        protocol: Protocol::Tcp,
        idle_timeout: Duration::from_secs(350),
        rules: vec![rule(vec![], forward(group))],
    }
}

async fn tcp_roundtrip(addr: std::net::SocketAddr, line: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(line.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn tcp_listeners_proxy_connections_round_robin() {
    let (a, _ta) = tcp_echo("a").await;
    let (b, _tb) = tcp_echo("b").await;
    let mut tg = group("tcp", &[a, b]);
    tg.protocol = Protocol::Tcp;
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    assert!(dp.apply(config(vec![tcp_listener("nlb", "tcp")], vec![tg.clone()])).await.is_empty());
    let addr = dp.local_addr("nlb").unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(tcp_roundtrip(addr, "hello").await);
    }
    assert_eq!(got, ["a:hello", "b:hello", "a:hello", "b:hello"]);
    // Source-address stickiness: every connection from 127.0.0.1 goes to one target.
    tg.stickiness = Some(Duration::ZERO);
    dp.apply(config(vec![tcp_listener("nlb", "tcp")], vec![tg])).await;
    let first = tcp_roundtrip(addr, "x").await;
    for _ in 0..4 {
        assert_eq!(tcp_roundtrip(addr, "x").await, first);
    }
}

#[tokio::test]
async fn tcp_draining_keeps_open_connections() {
    let (a, _ta) = tcp_echo("a").await;
    let (b, _tb) = tcp_echo("b").await;
    let mut tg = group("tcp", &[a, b]);
    tg.protocol = Protocol::Tcp;
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    dp.apply(config(vec![tcp_listener("nlb", "tcp")], vec![tg.clone()])).await;
    let addr = dp.local_addr("nlb").unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    open.write_all(b"1").await.unwrap();
    let mut buf = [0u8; 16];
    let n = open.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"a:1");
    eventually("one connection to a", || in_flight_of(&dp, a.port()) == 1).await;
    tg.targets[0].draining = true;
    dp.apply(config(vec![tcp_listener("nlb", "tcp")], vec![tg])).await;
    for _ in 0..3 {
        assert_eq!(tcp_roundtrip(addr, "n").await, "b:n");
    }
    open.write_all(b"2").await.unwrap();
    let n = open.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"a:2", "the open connection to the draining target runs on");
    drop(open);
    eventually("nothing in flight to a", || in_flight_of(&dp, a.port()) == 0).await;
}

#[tokio::test]
async fn tcp_health_checks_connect() {
    let (up, _t) = tcp_echo("up").await;
    let down = closed_port();
    let mut tg = group("tcp", &[up, down]);
    tg.protocol = Protocol::Tcp;
    tg.health_check = health_check(true, Protocol::Tcp);
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    dp.apply(config(vec![tcp_listener("nlb", "tcp")], vec![tg])).await;
    eventually("up is healthy", || health_of(&dp, up.port()) == Health::Healthy).await;
    eventually("down is unhealthy", || health_of(&dp, down.port()) == Health::Unhealthy(Failure::Failed)).await;
    let addr = dp.local_addr("nlb").unwrap();
    for _ in 0..3 {
        assert_eq!(tcp_roundtrip(addr, "z").await, "up:z", "only the healthy target gets connections");
    }
}

#[tokio::test]
async fn slow_start_ramps_a_newly_healthy_target() {
    assert_eq!(berth_lb::slow_start_share(Duration::from_secs(10), Duration::from_secs(40)), 0.25);
    let (old, new) = (backend("old").await, backend("new").await);
    let mut tg = group("tg", &[old.addr]);
    tg.health_check = health_check(true, Protocol::Http);
    tg.slow_start = Duration::from_secs(600);
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![tg.clone()]).await;
    eventually("old healthy", || health_of(&dp, old.addr.port()) == Health::Healthy).await;
    tg.targets.push(target(new.addr));
    dp.apply(config(vec![http_listener(LISTENER, any_port(), vec![rule(vec![], forward("tg"))])], vec![tg])).await;
    eventually("new healthy", || health_of(&dp, new.addr.port()) == Health::Healthy).await;
    // At the start of a ten-minute ramp the new target gets (almost) nothing.
    let bodies = futures_bodies(addr, 20).await;
    assert!(bodies.iter().filter(|b| *b == "new").count() <= 1, "{bodies:?}");
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let a = backend("a").await;
    let (echo, _t) = tcp_echo("e").await;
    let mut tcp_group = group("tcp", &[echo]);
    tcp_group.protocol = Protocol::Tcp;
    let mut http = http_listener(LISTENER, any_port(), vec![rule(vec![], forward("tg"))]);
    http.idle_timeout = Duration::from_millis(200);
    let mut tcp = tcp_listener("nlb", "tcp");
    tcp.idle_timeout = Duration::from_millis(200);
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    assert!(dp.apply(config(vec![http, tcp], vec![group("tg", &[a.addr]), tcp_group])).await.is_empty());

    let mut s = TcpStream::connect(dp.local_addr(LISTENER).unwrap()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let closed =
        tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.expect("closed by the load balancer");
    assert_eq!(closed.unwrap_or(0), 0);

    let mut t = TcpStream::connect(dp.local_addr("nlb").unwrap()).await.unwrap();
    t.write_all(b"hi").await.unwrap();
    let n = t.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"e:hi");
    let closed =
        tokio::time::timeout(Duration::from_secs(3), t.read(&mut buf)).await.expect("closed by the load balancer");
    assert_eq!(closed.unwrap_or(0), 0);
}

#[tokio::test]
async fn a_busy_connection_stays_and_a_half_sent_head_is_cut_off() {
    let a = backend("a").await;
    let mut http = http_listener(LISTENER, any_port(), vec![rule(vec![], forward("tg"))]);
    http.idle_timeout = Duration::from_millis(300);
    let dp = DataPlane::with_threads(THREADS, Affinity::Unpinned);
    assert!(dp.apply(config(vec![http], vec![group("tg", &[a.addr])])).await.is_empty());
    let addr = dp.local_addr(LISTENER).unwrap();
    // Requests more often than the idle timeout, over three idle timeouts: one connection.
    let mut client = keepalive_client(addr).await;
    for _ in 0..9 {
        assert_eq!(over(&mut client, "GET", "/").await.status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dp.take_counts().load_balancers["lb"].connections, 1);
    // A head that never ends holds the connection for at most two idle timeouts.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.expect("cut off");
    assert_eq!(closed.unwrap_or(0), 0);
}

/// One request over a kept-alive client connection (so over the serving thread, and the
/// target connections, of that connection).
async fn over(client: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>, method: &str, path: &str) -> Answer {
    let req = hyper::Request::builder().method(method).uri(path).header("host", "x").body(Empty::new()).unwrap();
    let response = client.send_request(req).await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

#[tokio::test]
async fn every_framing_of_a_targets_answer_comes_through() {
    let (b, connections, _task) = scripted_backend().await;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[b])]).await;
    let mut client = keepalive_client(addr).await;
    let chunked = over(&mut client, "GET", "/chunked").await;
    assert_eq!((chunked.status, chunked.body.as_str()), (200, "hello world"));
    let again = over(&mut client, "GET", "/chunked").await;
    assert_eq!(again.body, "hello world");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "a chunked answer read to its end leaves the connection reusable"
    );

    let big = over(&mut client, "GET", "/big").await;
    assert_eq!(big.body.len(), 200_000);
    assert!(big.body.bytes().enumerate().all(|(i, b)| b == b'a' + (i % 26) as u8), "the body arrives intact");
    assert_eq!(big.headers["content-length"], "200000");

    let cont = over(&mut client, "GET", "/continue").await;
    assert_eq!((cont.status, cont.body.as_str()), (200, "ok"), "an interim 100 is passed over");
    let none = over(&mut client, "GET", "/no-content").await;
    assert_eq!((none.status, none.body.as_str()), (204, ""));
    let head = over(&mut client, "HEAD", "/anything").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!((head.headers["content-length"].as_bytes(), head.headers["x-head"].as_bytes()), (&b"9"[..], &b"1"[..]));
    assert_eq!(over(&mut client, "GET", "/plain").await.body, "plain");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "every answer so far left the one connection reusable");

    let until = over(&mut client, "GET", "/until-close").await;
    assert_eq!((until.status, until.body.as_str()), (200, "all of it"));
    assert_eq!(over(&mut client, "GET", "/plain").await.body, "plain");
    assert_eq!(connections.load(Ordering::SeqCst), 2, "a body read until close ends its connection");
    let close = over(&mut client, "GET", "/close").await;
    assert_eq!(close.body, "ok");
    assert!(close.headers.get("connection").is_none(), "the target's Connection header is its own");
    assert_eq!(over(&mut client, "GET", "/plain").await.body, "plain");
    assert_eq!(connections.load(Ordering::SeqCst), 3, "an answer with Connection: close is not reused");
}

#[tokio::test]
async fn a_connection_the_target_gave_up_while_idle_fails_no_request() {
    let (b, connections, _task) = scripted_backend().await;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[b])]).await;
    let mut client = keepalive_client(addr).await;
    assert_eq!(over(&mut client, "GET", "/idle-close").await.body, "plain");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let r = over(&mut client, "GET", "/plain").await;
        assert_eq!(r.status, 200, "the closed connection is not taken for a live one");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_target_closing_within_the_body_breaks_the_clients_answer() {
    let (b, _connections, _task) = scripted_backend().await;
    let (dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[b])]).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/short").header("host", "x").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.headers()["content-length"], "10");
    assert!(response.into_body().collect().await.is_err(), "the client sees the answer cut short");
    eventually("the request is no longer in flight", || dp.statuses().iter().all(|s| s.in_flight == 0)).await;
}

#[tokio::test]
async fn a_chunked_request_body_reaches_the_target_whole() {
    let a = backend("a").await;
    let (_dp, addr) = serve(vec![rule(vec![], forward("tg"))], vec![group("tg", &[a.addr])]).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).ends_with("a:5") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

/// Reads from `s` until `done` holds for what arrived (or the connection closes); returns it.
async fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&got)) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("an answer").unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// What hyper's server side used to do for the listener, now the listener's own: pipelined
/// requests answered in order, HTTP/1.0 keep-alive, `Expect: 100-continue`, HEAD to its own
/// answers, an unreadable head refused with ALB's 400.
#[tokio::test]
async fn the_client_side_speaks_http_1_1_and_1_0() {
    let a = backend("a").await;
    let (b, _connections, _task) = scripted_backend().await;
    let rules = vec![
        rule(vec![Condition::PathPattern(vec!["/chunked".into()])], forward("scripted")),
        rule(
            vec![Condition::PathPattern(vec!["/fixed".into()])],
            Action::FixedResponse { status: 418, content_type: Some("text/plain".into()), body: Some("tea".into()) },
        ),
        rule(vec![], forward("tg")),
    ];
    let (_dp, addr) = serve(rules, vec![group("tg", &[a.addr]), group("scripted", &[b])]).await;

    // Two requests in one write: both answered, in order, on one connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\nPOST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let both = read_until(&mut s, |t| t.ends_with("a:3")).await;
    assert_eq!(both.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{both}");
    assert!(both.contains("\r\n\r\na") && both.contains("date: "), "{both}");

    // 100-continue: the client hears it before it sends the body.
    s.write_all(b"POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    let interim = read_until(&mut s, |t| t.contains("\r\n\r\n")).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abcd").await.unwrap();
    assert!(read_until(&mut s, |t| t.ends_with("a:4")).await.starts_with("HTTP/1.1 200 OK"));

    // HEAD to the load balancer's own answer: its length, no body.
    s.write_all(b"HEAD /fixed HTTP/1.1\r\nHost: h\r\n\r\nGET /fixed HTTP/1.1\r\nHost: h\r\n\r\n").await.unwrap();
    let fixed = read_until(&mut s, |t| t.ends_with("\r\n\r\ntea")).await;
    assert_eq!(fixed.matches("content-length: 3\r\n").count(), 2, "{fixed}");
    assert!(fixed.starts_with("HTTP/1.1 418 I'm a teapot\r\n"), "{fixed}");
    assert!(fixed.contains("content-length: 3\r\n\r\nHTTP/1.1 418"), "the HEAD answer has no body: {fixed}");

    // An HTTP/1.0 client: kept open when it asks, and a chunked answer comes to it whole.
    let mut old = TcpStream::connect(addr).await.unwrap();
    old.write_all(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
    let kept = read_until(&mut old, |t| t.ends_with("\r\n\r\na")).await;
    assert!(kept.contains("connection: keep-alive\r\n"), "{kept}");
    old.write_all(b"GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
    let whole = read_until(&mut old, |t| t.ends_with("hello world")).await;
    assert!(whole.ends_with("\r\n\r\nhello world"), "{whole}");
    assert!(!whole.contains("transfer-encoding"), "an HTTP/1.0 client gets no chunks: {whole}");

    // A head it cannot read: ALB's 400, and the connection ends.
    let mut bad = TcpStream::connect(addr).await.unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc").await.unwrap();
    let refused = read_until(&mut bad, |_| false).await;
    assert!(refused.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{refused}");
    assert!(refused.contains("connection: close\r\n") && refused.contains("<h1>400 Bad Request</h1>"), "{refused}");
}
