//! One task's proxy: a thread of its own inside the task's network namespace, running a
//! single-threaded runtime that serves every listener of the task. Every socket it makes —
//! the listeners and the connections to endpoints — is made on that thread and so belongs to
//! the task's namespace: the proxy listens on the task's loopback, and the task's own address
//! and security groups apply to its connections out.
//!
//! Connections to the aliases are intercepted as ECS's agent does ([`Intercept::Redirected`]):
//! one egress listener on the task's loopback, to which the owner redirects TCP for the alias
//! range (a NAT rule in the task's namespace); the alias a connection was meant for is its
//! original destination. The aliases' own ports stay free for the task's applications (a
//! server task listening on `0.0.0.0:80` while it also reaches another service's alias at port
//! 80). [`Intercept::Bound`] binds each alias address instead, for tests without NAT.
//!
//! A connection to an alias goes to an endpoint chosen by its [`Upstream`]; a connection that
//! cannot be made is counted against that endpoint and tried on another one, up to
//! [`Config::retries`] times. Once connected, bytes are relayed both ways until both sides have
//! finished, or until neither has sent anything for the idle timeout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::upstream::{Ejection, Upstream};

/// How connections to the aliases reach the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Intercept {
    /// One egress listener on `127.0.0.1` (an ephemeral port, [`TaskProxy::egress_port`]) that
    /// the owner redirects the aliases' traffic to.
    #[default]
    Redirected,
    /// A listener at each alias's own address.
    Bound,
}

/// What a task's proxy serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The client aliases.
    pub listeners: Vec<Listener>,
    pub intercept: Intercept,
    /// Ingress listeners in front of the task's own ports (`ingressPortOverride`).
    pub ingress: Vec<Ingress>,
    /// How long a connection to an endpoint may take.
    pub connect_timeout: Duration,
    /// Further endpoints tried when a connection cannot be made.
    pub retries: usize,
    pub ejection: Ejection,
}

/// A client alias: connections meant for `address` go to the endpoints of `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub address: SocketAddr,
    /// The upstream's name (the proxy's owner sets its endpoints by this name).
    pub upstream: String,
    /// A connection with no byte either way for this long is closed (`None`: never).
    pub idle_timeout: Option<Duration>,
}

/// An ingress listener: connections to `port` on every address of the task go to the task's
/// own `target` port on its loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    pub port: u16,
    pub target: u16,
    pub idle_timeout: Option<Duration>,
}

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("entering the task's network namespace: {0}")]
    Namespace(std::io::Error),
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("starting the proxy: {0}")]
    Start(std::io::Error),
}

/// A running proxy; dropping it stops it (its connections are closed).
pub struct TaskProxy {
    upstreams: BTreeMap<String, Arc<Upstream>>,
    bound: Vec<SocketAddr>,
    egress: Option<u16>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for TaskProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskProxy").field("bound", &self.bound).finish_non_exhaustive()
    }
}

/// Where a connection to an alias goes: its upstream and idle timeout.
type Route = (Arc<Upstream>, Option<Duration>);

/// What the proxy's thread serves, handed over once its listeners are bound: the listeners
/// aliases are reached through, the routes by alias address, and the ingress listeners.
struct Bound {
    aliases: Vec<TcpListener>,
    routes: Arc<BTreeMap<SocketAddr, Route>>,
    ingress: Vec<(TcpListener, SocketAddr, Option<Duration>)>,
}

impl TaskProxy {
    /// Starts the proxy in the network namespace at `netns` (`None`: the caller's), with
    /// every listener bound by the time it returns.
    pub fn start(netns: Option<&Path>, config: Config) -> Result<TaskProxy, ProxyError> {
        let ns = netns.map(std::fs::File::open).transpose().map_err(ProxyError::Namespace)?;
        let mut upstreams = BTreeMap::new();
        for l in &config.listeners {
            upstreams.entry(l.upstream.clone()).or_insert_with(|| Arc::new(Upstream::new(config.ejection)));
        }
        let (intercept, aliased) = (config.intercept, !config.listeners.is_empty());
        let (stop, stopped) = watch::channel(false);
        let (ready, started) = std::sync::mpsc::channel();
        let shared = upstreams.clone();
        std::thread::Builder::new()
            .name("berth-connect".into())
            .spawn(move || {
                if let Some(ns) = ns {
                    // SAFETY: a namespace descriptor; only this thread moves.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        let _ = ready.send(Err(ProxyError::Namespace(std::io::Error::last_os_error())));
                        return;
                    }
                }
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(ProxyError::Start(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let bound = match bind(&config, &shared) {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let addrs = bound
                        .aliases
                        .iter()
                        .chain(bound.ingress.iter().map(|(l, ..)| l))
                        .filter_map(|l| l.local_addr().ok())
                        .collect();
                    let _ = ready.send(Ok(addrs));
                    serve(bound, &config, stopped).await;
                });
            })
            .map_err(ProxyError::Start)?;
        let bound: Vec<SocketAddr> =
            started.recv().map_err(|_| ProxyError::Start(std::io::Error::other("the proxy thread ended")))??;
        let egress = (intercept == Intercept::Redirected && aliased).then(|| bound[0].port());
        Ok(TaskProxy { upstreams, bound, egress, stop })
    }

    /// The egress listener's port on the task's loopback, to redirect the aliases' traffic to
    /// (with [`Intercept::Redirected`] and at least one alias).
    pub fn egress_port(&self) -> Option<u16> {
        self.egress
    }

    /// The names of the upstreams the proxy's aliases lead to.
    pub fn upstreams(&self) -> impl Iterator<Item = &str> {
        self.upstreams.keys().map(String::as_str)
    }

    /// Sets the endpoints of upstream `name`; false when no alias leads there.
    pub fn set_endpoints(&self, name: &str, endpoints: &[SocketAddr]) -> bool {
        match self.upstreams.get(name) {
            Some(u) => {
                u.set(endpoints);
                true
            }
            None => false,
        }
    }

    /// The endpoints of upstream `name`.
    pub fn endpoints(&self, name: &str) -> Vec<SocketAddr> {
        self.upstreams.get(name).map(|u| u.addresses()).unwrap_or_default()
    }

    /// The addresses the listeners are bound to: the egress listener or each alias's (in the
    /// order configured), then the ingress listeners.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.bound
    }
}

impl Drop for TaskProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn listen(address: SocketAddr) -> Result<TcpListener, ProxyError> {
    let std = std::net::TcpListener::bind(address).map_err(|e| ProxyError::Listen(address, e))?;
    std.set_nonblocking(true).map_err(|e| ProxyError::Listen(address, e))?;
    TcpListener::from_std(std).map_err(|e| ProxyError::Listen(address, e))
}

fn bind(config: &Config, upstreams: &BTreeMap<String, Arc<Upstream>>) -> Result<Bound, ProxyError> {
    let route = |l: &Listener| (upstreams[&l.upstream].clone(), l.idle_timeout);
    let mut routes = BTreeMap::new();
    let mut aliases = Vec::new();
    match config.intercept {
        Intercept::Redirected => {
            if !config.listeners.is_empty() {
                aliases.push(listen(SocketAddr::from(([127, 0, 0, 1], 0)))?);
            }
            routes.extend(config.listeners.iter().map(|l| (l.address, route(l))));
        }
        Intercept::Bound => {
            for l in &config.listeners {
                let listener = listen(l.address)?;
                // By the address it got (a port 0 is chosen by the kernel).
                routes.insert(listener.local_addr().map_err(|e| ProxyError::Listen(l.address, e))?, route(l));
                aliases.push(listener);
            }
        }
    }
    let mut bound = Bound { aliases, routes: Arc::new(routes), ingress: Vec::new() };
    for i in &config.ingress {
        let listener = listen(SocketAddr::from(([0, 0, 0, 0], i.port)))?;
        bound.ingress.push((listener, SocketAddr::from(([127, 0, 0, 1], i.target)), i.idle_timeout));
    }
    Ok(bound)
}

/// Accepts on every listener until the proxy is stopped.
async fn serve(bound: Bound, config: &Config, mut stopped: watch::Receiver<bool>) {
    let mut accepting = tokio::task::JoinSet::new();
    let (connect_timeout, retries) = (config.connect_timeout, config.retries);
    for listener in bound.aliases {
        let routes = bound.routes.clone();
        accepting.spawn(async move {
            loop {
                let Some(inbound) = accept(&listener).await else { continue };
                let Some((upstream, idle)) = meant_for(&inbound).and_then(|a| routes.get(&a)).cloned() else {
                    tracing::debug!(to = ?meant_for(&inbound), "a connection for no alias was closed");
                    continue;
                };
                tokio::spawn(async move {
                    if let Some(outbound) = connect(&upstream, connect_timeout, retries).await {
                        relay(inbound, outbound, idle).await;
                    }
                });
            }
        });
    }
    for (listener, target, idle) in bound.ingress {
        accepting.spawn(async move {
            loop {
                let Some(inbound) = accept(&listener).await else { continue };
                tokio::spawn(async move {
                    if let Ok(Ok(outbound)) = tokio::time::timeout(connect_timeout, TcpStream::connect(target)).await {
                        relay(inbound, outbound, idle).await;
                    }
                });
            }
        });
    }
    // Stopped, or the owner is gone: the runtime ends with every connection.
    let _ = stopped.wait_for(|s| *s).await;
}

/// The next connection; `None` after a failure (out of descriptors, say), once a moment passed
/// so that a failing accept does not spin.
async fn accept(listener: &TcpListener) -> Option<TcpStream> {
    match listener.accept().await {
        Ok((stream, _)) => Some(stream),
        Err(e) => {
            tracing::warn!(error = %e, "accepting a connection failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// The address a connection was made to: its original destination when it was redirected,
/// else the address it reached.
fn meant_for(stream: &TcpStream) -> Option<SocketAddr> {
    original_destination(stream).or_else(|| stream.local_addr().ok())
}

/// The destination before NAT (`SO_ORIGINAL_DST`); `None` for a connection not redirected.
fn original_destination(stream: &TcpStream) -> Option<SocketAddr> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain old data.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a connected socket and a sockaddr_in buffer of the length given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if rc != 0 || addr.sin_family != libc::AF_INET as libc::sa_family_t {
        return None;
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
}

/// A connection to an endpoint of `upstream`, trying others when one cannot be made.
async fn connect(upstream: &Upstream, timeout: Duration, retries: usize) -> Option<TcpStream> {
    let mut tried = Vec::new();
    while tried.len() <= retries {
        let Some(address) = upstream.pick(std::time::Instant::now(), &tried) else {
            tracing::debug!(tried = tried.len(), "no endpoint left to try");
            return None;
        };
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                upstream.succeeded(address);
                return Some(stream);
            }
            outcome => {
                let error = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                let ejected = upstream.failed(address, std::time::Instant::now());
                tracing::debug!(%address, %error, ejected, "connecting to an endpoint failed");
                tried.push(address);
            }
        }
    }
    None
}

/// Relays bytes both ways until both directions end, or until the connection is idle for
/// `idle`.
async fn relay(inbound: TcpStream, outbound: TcpStream, idle: Option<Duration>) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let start = Instant::now();
    // Milliseconds since `start` of the last byte either way.
    let last = AtomicU64::new(0);
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let both = async {
        tokio::join!(copy(&mut in_read, &mut out_write, start, &last), copy(&mut out_read, &mut in_write, start, &last))
    };
    let Some(idle) = idle else {
        both.await;
        return;
    };
    let watchdog = async {
        loop {
            let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    tokio::select! {
        _ = both => {}
        _ = watchdog => tracing::debug!("an idle connection was closed"),
    }
}

/// Copies until `from` ends, then ends `to`; notes the time of every read.
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(from: &mut R, to: &mut W, start: Instant, last: &AtomicU64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests;
