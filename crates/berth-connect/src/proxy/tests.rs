use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A server that answers every connection with its name, then closes it.
async fn named_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(name.as_bytes()).await;
        }
    });
    address
}

/// An address nothing listens on (connections are refused).
fn refused() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(upstreams: &[&str]) -> Config {
    Config {
        listeners: upstreams
            .iter()
            .map(|u| Listener { address: "127.0.0.1:0".parse().unwrap(), upstream: u.to_string(), idle_timeout: None })
            .collect(),
        intercept: Intercept::Bound,
        ingress: vec![],
        connect_timeout: Duration::from_secs(2),
        retries: 2,
        ejection: Ejection::default(),
    }
}

async fn read_all(address: SocketAddr) -> String {
    let mut s = TcpStream::connect(address).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn connections_take_turns_over_the_endpoints() {
    let (a, b) = (named_server("a").await, named_server("b").await);
    let proxy = TaskProxy::start(None, config(&["web"])).unwrap();
    assert!(proxy.set_endpoints("web", &[a, b]));
    assert!(!proxy.set_endpoints("other", &[a]));
    let alias = proxy.local_addrs()[0];
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(read_all(alias).await);
    }
    assert_eq!(answers, ["a", "b", "a", "b"]);
}

#[tokio::test]
async fn a_refused_endpoint_is_retried_elsewhere_then_ejected() {
    let (live, dead) = (named_server("live").await, refused());
    let proxy = TaskProxy::start(None, config(&["web"])).unwrap();
    proxy.set_endpoints("web", &[dead, live]);
    let alias = proxy.local_addrs()[0];
    for _ in 0..12 {
        assert_eq!(read_all(alias).await, "live", "every connection reaches the live endpoint");
    }
    let upstream = &proxy.upstreams["web"];
    assert_eq!(upstream.ejected(std::time::Instant::now()), 1, "five refusals in a row eject the dead endpoint");
}

#[tokio::test]
async fn without_endpoints_a_connection_is_closed() {
    let proxy = TaskProxy::start(None, config(&["web"])).unwrap();
    assert_eq!(read_all(proxy.local_addrs()[0]).await, "");
    // Every endpoint refusing: closed too, after the retries.
    proxy.set_endpoints("web", &[refused(), refused(), refused(), refused()]);
    assert_eq!(read_all(proxy.local_addrs()[0]).await, "");
}

#[tokio::test]
async fn bytes_go_both_ways_and_half_closes_pass_through() {
    // An echo server that answers once its client finished sending.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                s.write_all(&got).await.unwrap();
            });
        }
    });
    let proxy = TaskProxy::start(None, config(&["echo"])).unwrap();
    proxy.set_endpoints("echo", &[echo]);
    let mut s = TcpStream::connect(proxy.local_addrs()[0]).await.unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    s.write_all(&payload).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut back)).await.unwrap().unwrap();
    assert!(back == payload, "{} of {} bytes came back unchanged", back.len(), payload.len());
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut c = config(&["silent"]);
    c.listeners[0].idle_timeout = Some(Duration::from_millis(200));
    let proxy = TaskProxy::start(None, c).unwrap();
    proxy.set_endpoints("silent", &[silent]);
    assert_eq!(read_all(proxy.local_addrs()[0]).await, "", "closed by the proxy, not by the server");
}

#[tokio::test]
async fn ingress_leads_to_the_tasks_own_port() {
    let target = named_server("app").await;
    let port = refused().port();
    let mut c = config(&[]);
    c.ingress.push(Ingress { port, target: target.port(), idle_timeout: None });
    let proxy = TaskProxy::start(None, c).unwrap();
    assert_eq!(proxy.local_addrs(), [SocketAddr::from(([0, 0, 0, 0], port))]);
    assert_eq!(read_all(SocketAddr::from(([127, 0, 0, 1], port))).await, "app");
}

#[tokio::test]
async fn a_taken_address_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config(&["web"]);
    c.listeners[0].address = taken.local_addr().unwrap();
    let err = TaskProxy::start(None, c).unwrap_err();
    assert!(matches!(err, ProxyError::Listen(a, _) if a == taken.local_addr().unwrap()), "{err}");
}

#[tokio::test]
async fn a_stopped_proxy_listens_no_more() {
    let proxy = TaskProxy::start(None, config(&["web"])).unwrap();
    let alias = proxy.local_addrs()[0];
    drop(proxy);
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(alias).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener is closed once the proxy is dropped");
}
