//! Loopback fixtures for the data plane's tests: small hyper backends that say who they are,
//! count requests and connections, answer health checks as told, echo headers, or hang;
//! broken backends; a one-shot HTTP client; and builders for configs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use berth_lb::config::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// An HTTP backend on loopback.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    /// Requests other than health checks.
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// What `/health` answers.
    pub health: Arc<AtomicU16>,
    /// Milliseconds `/health` waits before answering.
    pub health_delay_ms: Arc<AtomicU16>,
    /// `/hold` waits until this is notified.
    pub release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn set_health(&self, status: u16) {
        self.health.store(status, Ordering::SeqCst);
    }
    /// Stops listening (new connections are refused).
    pub fn kill(&self) {
        self.task.abort();
    }
}

pub async fn backend(name: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b = Backend {
        addr,
        name: name.to_string(),
        hits: Arc::new(AtomicUsize::new(0)),
        connections: Arc::new(AtomicUsize::new(0)),
        health: Arc::new(AtomicU16::new(200)),
        health_delay_ms: Arc::new(AtomicU16::new(0)),
        release: Arc::new(Notify::new()),
        task: tokio::spawn(async {}),
    };
    let (name, hits, conns, health, delay, release) = (
        b.name.clone(),
        b.hits.clone(),
        b.connections.clone(),
        b.health.clone(),
        b.health_delay_ms.clone(),
        b.release.clone(),
    );
    let task = tokio::spawn(async move {
        let mut open = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            conns.fetch_add(1, Ordering::SeqCst);
            let (name, hits, health, delay, release) =
                (name.clone(), hits.clone(), health.clone(), delay.clone(), release.clone());
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (name, hits, health, delay, release) =
                    (name.clone(), hits.clone(), health.clone(), delay.clone(), release.clone());
                async move { Ok::<_, Infallible>(answer(req, &name, &hits, &health, &delay, &release).await) }
            });
            // Connections die with the backend (JoinSet aborts them on drop).
            open.spawn(async move {
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    let mut b = b;
    b.task.abort();
    b.task = task;
    b
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    name: &str,
    hits: &AtomicUsize,
    health: &AtomicU16,
    delay: &AtomicU16,
    release: &Notify,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        let ms = delay.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        }
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        *r.status_mut() = hyper::StatusCode::from_u16(health.load(Ordering::SeqCst)).unwrap();
        return r;
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let body = match path.as_str() {
        "/hold" => {
            release.notified().await;
            name.to_string()
        }
        "/sleep" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            name.to_string()
        }
        "/headers" => {
            let mut s = String::new();
            for (k, v) in req.headers() {
                s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
            }
            s
        }
        "/body" => {
            let bytes = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            format!("{name}:{}", bytes.len())
        }
        _ => name.to_string(),
    };
    Response::new(Full::new(Bytes::from(body)))
}

/// A backend that accepts connections and answers every request with bytes that are not HTTP.
pub async fn garbage_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"THIS IS NOT HTTP\r\n\r\n").await;
            });
        }
    });
    (addr, task)
}

/// A backend that accepts connections and closes them at once, before answering.
pub async fn closing_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    (addr, task)
}

/// A TCP backend that answers each line with `<name>:<line>`.
pub async fn tcp_echo(name: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = name.to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let mut out = format!("{name}:").into_bytes();
                    out.extend_from_slice(&buf[..n]);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// A port on loopback with nothing listening.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap().to_string())
    }
}

/// One request on a new connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(addr, "GET", path, headers, Bytes::new()).await
}

pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", format!("app.example.com:{}", addr.port()));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req =
        if body.is_empty() { req.body(Full::new(Bytes::new())).unwrap() } else { req.body(Full::new(body)).unwrap() };
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Keeps one connection for several requests.
pub async fn keepalive_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

pub fn health_check(enabled: bool, protocol: Protocol) -> HealthCheck {
    HealthCheck {
        enabled,
        protocol,
        port: None,
        path: "/health".into(),
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(200),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: vec![(200, 299)],
    }
}

pub fn target(addr: SocketAddr) -> Target {
    Target { key: TargetKey { id: addr.ip().to_string(), port: addr.port() }, address: addr, draining: false }
}

pub fn group(arn: &str, addrs: &[SocketAddr]) -> TargetGroup {
    TargetGroup {
        arn: arn.into(),
        protocol: Protocol::Http,
        algorithm: Algorithm::RoundRobin,
        slow_start: Duration::ZERO,
        stickiness: None,
        health_check: health_check(false, Protocol::Http),
        targets: addrs.iter().copied().map(target).collect(),
    }
}

pub fn forward(arn: &str) -> Action {
    Action::Forward { groups: vec![WeightedGroup { target_group_arn: arn.into(), weight: 1 }], stickiness: None }
}

pub fn rule(conditions: Vec<Condition>, action: Action) -> Rule {
    Rule { arn: format!("rule-{}", fastrand_id()), conditions, action }
}

fn fastrand_id() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

pub fn http_listener(arn: &str, address: SocketAddr, rules: Vec<Rule>) -> Listener {
    Listener {
        arn: arn.into(),
        load_balancer_arn: "lb".into(),
        address,
        protocol: Protocol::Http,
        idle_timeout: Duration::from_secs(5),
        rules,
    }
}

pub fn config(listeners: Vec<Listener>, groups: Vec<TargetGroup>) -> Config {
    Config { listeners, target_groups: groups.into_iter().map(|g| (g.arn.clone(), g)).collect::<BTreeMap<_, _>>() }
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Polls `f` until it is true or 5 seconds pass.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A backend speaking HTTP/1.1 by hand, to answer with framings a hyper server would not
/// choose: each request's path picks a scripted answer (see [`scripted_answer`]). Counts
/// the connections it accepts.
pub async fn scripted_backend() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    let mut words = head.split(' ');
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let (pieces, then_close) = scripted_answer(method, path);
                    for piece in pieces {
                        if s.write_all(piece.as_bytes()).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if then_close {
                        return;
                    }
                    if path == "/idle-close" {
                        // Gives up the connection while the proxy keeps it idle.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, connections, task)
}

/// What [`scripted_backend`] writes for a request, in the pieces it writes apart, and
/// whether it closes the connection afterwards.
fn scripted_answer(method: &str, path: &str) -> (Vec<String>, bool) {
    let ok = |body: &str| format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    match (method, path) {
        ("HEAD", _) => (vec!["HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-Head: 1\r\n\r\n".into()], false),
        (_, "/chunked") => (
            vec![
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".into(),
                "lo\r\n6;x=y\r\n world\r".into(),
                "\n0\r\nX-Trailer: 1\r\n\r\n".into(),
            ],
            false,
        ),
        (_, "/until-close") => (vec!["HTTP/1.1 200 OK\r\n\r\nall of ".into(), "it".into()], true),
        (_, "/big") => {
            let body: String = (0..200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            (vec![head, body[..70_000].into(), body[70_000..].into()], false)
        }
        (_, "/continue") => (vec!["HTTP/1.1 100 Continue\r\n\r\n".into(), ok("ok")], false),
        (_, "/no-content") => (vec!["HTTP/1.1 204 No Content\r\n\r\n".into()], false),
        (_, "/close") => (vec!["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".into()], false),
        (_, "/short") => (vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly".into()], true),
        _ => (vec![ok("plain")], false),
    }
}
