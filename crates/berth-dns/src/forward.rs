//! Forwarding what the snapshot does not answer to the host's resolvers (the `nameserver`
//! lines of `/etc/resolv.conf`, or the ones configured), over the protocol the client used:
//! UDP, or TCP for a TCP client. Upstreams are tried in order, each for [`ATTEMPT_TIMEOUT`].
//! The server never forwards to itself: an upstream that is one of its own listening addresses
//! is dropped when the server starts ([`without_self`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::{Message, Query};
use hickory_server::proto::rr::{Name, RecordType};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer read from an upstream over UDP.
const UDP_BUFFER: usize = 4096;

#[derive(Debug, Error)]
pub enum ForwardError {
    #[error("no upstream resolver is configured")]
    NoUpstream,
    #[error("no upstream resolver answered: {0}")]
    Failed(String),
}

/// The `nameserver` addresses of a resolv.conf, on port 53 (scoped IPv6 ones are left out).
pub fn host_resolvers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|addr| addr.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Whether `upstream` is this server itself, listening on `bound`.
fn is_self(upstream: &SocketAddr, bound: &[SocketAddr]) -> bool {
    bound.iter().any(|b| {
        b.port() == upstream.port()
            && (b.ip() == upstream.ip()
                || (b.ip().is_unspecified() && (upstream.ip().is_loopback() || upstream.ip().is_unspecified())))
    })
}

/// `upstreams` less the ones that are this server.
pub fn without_self(upstreams: &[SocketAddr], bound: &[SocketAddr]) -> Vec<SocketAddr> {
    upstreams.iter().filter(|u| !is_self(u, bound)).copied().collect()
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration) -> Forwarder {
        Forwarder { upstreams, timeout }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Sends the query `raw` (a whole DNS message) to the upstreams in turn and returns the
    /// first answer carrying its id.
    pub async fn exchange(&self, raw: &[u8], tcp: bool) -> Result<Message, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let id = u16::from_be_bytes([raw.first().copied().unwrap_or(0), raw.get(1).copied().unwrap_or(0)]);
        let mut failures = Vec::new();
        for upstream in &self.upstreams {
            let attempt =
                async { if tcp { exchange_tcp(*upstream, raw).await } else { exchange_udp(*upstream, raw, id).await } };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(message)) if message.metadata.id == id => return Ok(message),
                Ok(Ok(_)) => failures.push(format!("{upstream}: an answer to another query")),
                Ok(Err(e)) => failures.push(format!("{upstream}: {e}")),
                Err(_) => failures.push(format!("{upstream}: no answer in {:?}", self.timeout)),
            }
        }
        Err(ForwardError::Failed(failures.join("; ")))
    }

    /// Asks the upstreams for `name` and `qtype` on our own account (a CNAME or alias target).
    pub async fn resolve(&self, name: &Name, qtype: RecordType, tcp: bool) -> Result<Message, ForwardError> {
        let mut query = Message::query();
        query.metadata.id = rand::random();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), qtype));
        let raw = query.to_vec().map_err(|e| ForwardError::Failed(e.to_string()))?;
        self.exchange(&raw, tcp).await
    }
}

fn parse(bytes: &[u8]) -> std::io::Result<Message> {
    Message::from_vec(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

async fn exchange_udp(upstream: SocketAddr, raw: &[u8], id: u16) -> std::io::Result<Message> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(raw).await?;
    let mut buffer = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buffer).await?;
        // A stray datagram (a late answer to nothing of ours) is skipped.
        if n >= 2 && u16::from_be_bytes([buffer[0], buffer[1]]) == id {
            return parse(&buffer[..n]);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let length = u16::try_from(raw.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(raw);
    stream.write_all(&framed).await?;
    let answer_length = stream.read_u16().await?;
    let mut buffer = vec![0u8; usize::from(answer_length)];
    stream.read_exact(&mut buffer).await?;
    parse(&buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_come_from_nameserver_lines() {
        let conf =
            "# comment\nsearch corp\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver ::1\noptions ndots:2\n";
        assert_eq!(host_resolvers(conf), ["10.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]);
    }

    #[test]
    fn a_server_never_forwards_to_itself() {
        let up: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().unwrap(), "10.0.0.2:53".parse().unwrap()];
        assert_eq!(without_self(&up, &["127.0.0.1:53".parse().unwrap()]), [up[1]]);
        assert_eq!(without_self(&up, &["0.0.0.0:53".parse().unwrap()]), [up[1]]);
        // Another port is another server.
        assert_eq!(without_self(&up, &["127.0.0.1:5300".parse().unwrap()]), up);
    }
}
