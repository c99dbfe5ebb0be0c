//! The server: TCP listeners (hickory's) and UDP sockets served on threads of their own
//! ([`crate::udp`]), a request handler that answers from the current [`Index`] and forwards the
//! rest, and an [`Updater`] the control plane hands new snapshots to. CNAME and alias answers
//! are followed (in the snapshot, else upstream) so stub resolvers in containers get the
//! addresses in one answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::UdpSocket;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::forward::{self, Forwarder};
use crate::index::{Answer, Follow, Index, Outcome};
use crate::snapshot::Snapshot;

/// How long a TCP client may stay silent before its connection is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// CNAMEs and aliases followed for one answer at most.
const MAX_FOLLOW: usize = 8;

#[derive(Debug, Error)]
pub enum DnsError {
    #[error("listening on {address}: {error}")]
    Listen { address: SocketAddr, error: std::io::Error },
    #[error("the DNS server stopped: {0}")]
    Stopped(String),
}

/// Where the server listens and whom it forwards to.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP and TCP on each (port 0: a free port, the same for both).
    pub listen: Vec<SocketAddr>,
    /// The resolvers names outside the snapshot are forwarded to ([`forward::host_resolvers`]).
    pub upstreams: Vec<SocketAddr>,
}

struct Shared {
    index: RwLock<Arc<Index>>,
    forwarder: Forwarder,
}

/// Hands the server a new snapshot; cheap to clone.
#[derive(Clone)]
pub struct Updater(Arc<Shared>);

impl Updater {
    /// From the next query on, the server answers from `snapshot`.
    pub fn update(&self, snapshot: &Snapshot) {
        let index = Arc::new(Index::new(snapshot));
        *self.0.index.write().expect("dns index lock") = index;
    }
}

pub struct DnsServer {
    shared: Arc<Shared>,
    bound: Vec<SocketAddr>,
    server: Server<Handler>,
    /// Set to end the UDP threads.
    stop: Arc<AtomicBool>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn bind_pair(address: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let failed = |error| DnsError::Listen { address, error };
    // Port 0: the UDP socket picks the port, and TCP takes the same one (tried a few times).
    for _ in 0..16 {
        let udp = UdpSocket::bind(address).map_err(failed)?;
        let at = udp.local_addr().map_err(failed)?;
        match TcpListener::bind(at).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if address.port() != 0 => return Err(failed(e)),
            Err(_) => continue,
        }
    }
    Err(failed(std::io::Error::other("no port free for both UDP and TCP")))
}

impl DnsServer {
    /// Listens on every address of `config`; answers nothing of its own until updated.
    pub async fn bind(config: Config) -> Result<DnsServer, DnsError> {
        let mut sockets = Vec::new();
        for address in &config.listen {
            sockets.push(bind_pair(*address).await?);
        }
        let bound: Vec<SocketAddr> = sockets.iter().filter_map(|(u, _)| u.local_addr().ok()).collect();
        let upstreams = forward::without_self(&config.upstreams, &bound);
        if upstreams.len() < config.upstreams.len() {
            tracing::warn!(?bound, "an upstream resolver is this DNS server itself: it is left out");
        }
        let shared = Arc::new(Shared {
            index: RwLock::new(Arc::new(Index::default())),
            forwarder: Forwarder::new(upstreams, forward::ATTEMPT_TIMEOUT),
        });
        let handler = Arc::new(Handler { shared: shared.clone() });
        let mut server = Server::new(Handler { shared: shared.clone() });
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        for ((udp, tcp), address) in sockets.into_iter().zip(bound.clone()) {
            crate::udp::serve(udp, handler.clone(), runtime.clone(), stop.clone())
                .map_err(|error| DnsError::Listen { address, error })?;
            server.register_listener(tcp, TCP_IDLE, 64);
        }
        Ok(DnsServer { shared, bound, server, stop })
    }

    /// The addresses it listens on (UDP and TCP alike).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.bound
    }

    /// The resolvers it forwards to.
    pub fn upstreams(&self) -> &[SocketAddr] {
        self.shared.forwarder.upstreams()
    }

    pub fn updater(&self) -> Updater {
        Updater(self.shared.clone())
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DnsError> {
        shutdown.await;
        self.stop.store(true, Ordering::Relaxed);
        self.server.shutdown_gracefully().await.map_err(|e| DnsError::Stopped(e.to_string()))
    }
}

pub(crate) struct Handler {
    shared: Arc<Shared>,
}

/// The EDNS section of an answer to `request` (when it had one).
fn response_edns(request: &Request) -> Option<Edns> {
    request.edns.as_ref().map(|theirs| {
        let mut ours = Edns::new();
        ours.set_max_payload(theirs.max_payload().max(512));
        ours.set_version(0);
        ours
    })
}

fn failed(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    metadata.response_code = code;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

/// The sections of an answer being put together.
struct Reply {
    metadata: Metadata,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Handler {
    fn lookup(&self, name: &Name, qtype: RecordType, tcp: bool) -> Outcome {
        let index = self.shared.index.read().expect("dns index lock").clone();
        index.lookup(name, qtype, tcp, &mut rand::rng())
    }

    /// The reply of an answer of ours, before anything it leads to is followed.
    fn reply_of(request: &Request, first: Answer) -> (Reply, Option<Follow>) {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = first.authoritative;
        metadata.recursion_available = true;
        metadata.response_code = first.code;
        let reply = Reply { metadata, answers: first.answers, authorities: first.authorities, additionals: Vec::new() };
        (reply, first.follow)
    }

    /// A UDP query's answer encoded, when the snapshot answers it at once (a query of ours
    /// that leads nowhere else); `None` for the rest, which [`Handler::respond`] answers.
    pub(crate) fn quick(&self, request: &Request) -> Option<Vec<u8>> {
        if request.metadata.op_code != OpCode::Query {
            return None;
        }
        let info = request.request_info().ok()?;
        let Outcome::Answer(answer) = self.lookup(info.query.original().name(), info.query.query_type(), false) else {
            return None;
        };
        if answer.follow.is_some() {
            return None;
        }
        let (reply, _) = Self::reply_of(request, *answer);
        let edns = response_edns(request);
        let message = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            reply.metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        Some(crate::udp::encode(message).1)
    }

    /// Our own answer, with CNAMEs and aliases followed.
    async fn local(&self, request: &Request, qtype: RecordType, tcp: bool, first: Answer) -> Reply {
        let (mut reply, mut follow) = Self::reply_of(request, first);
        for _ in 0..MAX_FOLLOW {
            let Some(next) = follow.take() else { break };
            let (target, owner) = match &next {
                Follow::Cname(target) => (target.clone(), None),
                Follow::Alias { owner, target, ttl } => (target.clone(), Some((owner.clone(), *ttl))),
            };
            let (mut found, code) = match self.lookup(&target, qtype, tcp) {
                Outcome::Answer(a) => {
                    follow = a.follow;
                    (a.answers, a.code)
                }
                Outcome::Forward => match self.shared.forwarder.resolve(&target, qtype, tcp).await {
                    Ok(m) => (m.answers, m.metadata.response_code),
                    Err(e) => {
                        tracing::debug!(error = %e, name = %target, "following an answer upstream failed");
                        (Vec::new(), ResponseCode::ServFail)
                    }
                },
            };
            if let Some((owner, ttl)) = owner {
                // An alias answers the target's addresses under its own name.
                found.retain(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA));
                for r in &mut found {
                    r.name = owner.clone();
                    r.ttl = ttl;
                }
            } else {
                reply.metadata.response_code = code;
            }
            reply.answers.extend(found);
        }
        reply
    }

    /// The upstreams' answer, passed on.
    async fn forwarded(&self, request: &Request, tcp: bool) -> Reply {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        match self.shared.forwarder.exchange(request.as_slice(), tcp).await {
            Ok(Message { metadata: theirs, answers, authorities, additionals, .. }) => {
                metadata.response_code = theirs.response_code;
                metadata.truncation = theirs.truncation;
                metadata.authentic_data = theirs.authentic_data;
                Reply { metadata, answers, authorities, additionals }
            }
            Err(e) => {
                tracing::debug!(error = %e, "forwarding failed");
                metadata.response_code = ResponseCode::ServFail;
                Reply { metadata, answers: Vec::new(), authorities: Vec::new(), additionals: Vec::new() }
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response: R) -> ResponseInfo {
        self.respond(request, response).await
    }
}

impl Handler {
    /// Answers `request` through `response`: from the snapshot (following what it leads to),
    /// else from the upstreams.
    pub(crate) async fn respond<R: ResponseHandler>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let edns = response_edns(request);
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let info = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query => info,
            Ok(_) => {
                let reply = builder.error_msg(&request.metadata, ResponseCode::NotImp);
                return response.send_response(reply).await.unwrap_or_else(|_| failed(request, ResponseCode::NotImp));
            }
            Err(_) => {
                let reply = builder.error_msg(&request.metadata, ResponseCode::FormErr);
                return response.send_response(reply).await.unwrap_or_else(|_| failed(request, ResponseCode::FormErr));
            }
        };
        let tcp = info.protocol == Protocol::Tcp;
        let name = info.query.original().name().clone();
        let qtype = info.query.query_type();
        let reply = match self.lookup(&name, qtype, tcp) {
            Outcome::Answer(answer) => self.local(request, qtype, tcp, *answer).await,
            Outcome::Forward => self.forwarded(request, tcp).await,
        };
        let message = builder.build(
            reply.metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response.send_response(message).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS answer failed");
                failed(request, ResponseCode::ServFail)
            }
        }
    }
}
