//! UDP, served on a thread of its own per socket: one blocking loop of receive, parse, answer,
//! send — as dnsmasq serves, with no task, no channel and no wake-up per query, and with the
//! datagrams waiting taken and answered in batches (`recvmmsg`, `sendmmsg`: one system call
//! each way for up to [`BATCH`] queries under load). A query the
//! snapshot answers at once (nearly all of a private zone's) is answered on that thread; one
//! that must be forwarded or followed upstream goes to the runtime as a task, which sends its
//! answer on the same socket.
//!
//! What is not answered, as hickory's server does not: datagrams shorter than a header,
//! responses (no reflection), and sources that cannot be answered (port 0, unspecified or
//! broadcast addresses). A query whose header reads but whose body does not gets FORMERR.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Header, MessageType, ResponseCode};
use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::server::Handler;

/// How often a waiting loop looks whether the server was stopped.
const STOP_CHECK: Duration = Duration::from_millis(250);
/// The largest datagram read (EDNS allows up to 4096 bytes in practice).
const MAX_DATAGRAM: usize = 4096;
/// Datagrams taken (and answers sent) in one system call at most.
const BATCH: usize = 32;

/// Serves `socket` on a new thread until `stop` is set; slow answers run on `runtime`.
pub(crate) fn serve(
    socket: UdpSocket,
    handler: Arc<Handler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let socket = Arc::new(socket);
    std::thread::Builder::new().name("berth-dns-udp".into()).spawn(move || {
        let mut batch = Batch::new();
        let mut answers: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::Relaxed) {
            let got = match batch.receive(&socket) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "receiving DNS queries failed");
                    continue;
                }
            };
            for i in 0..got {
                let (datagram, src) = batch.datagram(i);
                let Some(src) = src.filter(|s| answerable(*s)) else { continue };
                let request = match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
                    Ok(r) if r.metadata.message_type == MessageType::Query => r,
                    Ok(_) => continue,
                    Err(_) => {
                        answers.extend(form_error(datagram).map(|bytes| (bytes, src)));
                        continue;
                    }
                };
                match handler.quick(&request) {
                    Some(bytes) => answers.push((bytes, src)),
                    None => {
                        let (handler, socket) = (handler.clone(), socket.clone());
                        runtime.spawn(async move {
                            handler.respond(&request, Reply { socket, dst: src }).await;
                        });
                    }
                }
            }
            if let Err(e) = send_all(&socket, &answers) {
                tracing::debug!(error = %e, "sending DNS answers failed");
            }
            answers.clear();
        }
    })
}

/// Buffers for [`BATCH`] datagrams and their sources, for `recvmmsg`.
struct Batch {
    buffers: Vec<u8>,
    sources: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            buffers: vec![0; BATCH * MAX_DATAGRAM],
            // SAFETY: plain old data, all zeroes valid.
            sources: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        }
    }

    /// Waits for datagrams (up to the socket's read timeout) and takes those waiting, up to
    /// [`BATCH`]; how many.
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        self.iovecs.clear();
        self.headers.clear();
        for chunk in self.buffers.chunks_mut(MAX_DATAGRAM) {
            self.iovecs.push(libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: chunk.len() });
        }
        for (iov, source) in self.iovecs.iter_mut().zip(self.sources.iter_mut()) {
            // SAFETY: plain old data, all zeroes valid.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = (source as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            self.headers.push(header);
        }
        // SAFETY: every header points at a live buffer, iovec and address of this batch, which
        // outlive the call; the kernel writes within the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The `i`-th datagram taken and its source.
    fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = self.headers[i].msg_len as usize;
        let bytes = &self.buffers[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len.min(MAX_DATAGRAM)];
        (bytes, from_sockaddr(&self.sources[i]))
    }
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_sockaddr(address: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: plain old data, all zeroes valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match address {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let out = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = a.port().to_be();
            out.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let out = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_addr.s6_addr = a.ip().octets();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Sends every answer (`sendmmsg`, as many calls as it takes).
fn send_all(socket: &UdpSocket, answers: &[(Vec<u8>, SocketAddr)]) -> std::io::Result<()> {
    if answers.is_empty() {
        return Ok(());
    }
    let mut addresses: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        answers.iter().map(|(_, to)| to_sockaddr(*to)).collect();
    let mut iovecs: Vec<libc::iovec> = answers
        .iter()
        .map(|(bytes, _)| libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .zip(addresses.iter_mut())
        .map(|(iov, (address, len))| {
            // SAFETY: plain old data, all zeroes valid.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = (address as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = *len;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header
        })
        .collect();
    let mut sent = 0;
    while sent < headers.len() {
        // SAFETY: the headers point at the answers, iovecs and addresses above, alive for
        // the call; the kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(socket.as_raw_fd(), headers[sent..].as_mut_ptr(), (headers.len() - sent) as libc::c_uint, 0)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // This answer cannot go (its client is gone, say): the rest still go.
            sent += 1;
            tracing::debug!(error = %e, "sending a DNS answer failed");
            continue;
        }
        sent += n as usize;
    }
    Ok(())
}

/// Whether an answer can go to `src` (hickory's server's rule).
fn answerable(src: SocketAddr) -> bool {
    let unusable = match src.ip() {
        IpAddr::V4(ip) => ip.is_unspecified() || ip.is_broadcast(),
        IpAddr::V6(ip) => ip.is_unspecified(),
    };
    src.port() != 0 && !unusable
}

/// FORMERR for a datagram whose header reads but whose body does not (`None`: no header).
fn form_error(datagram: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(datagram)).ok()?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
    let response = MessageResponseBuilder::new(&queries, None).error_msg(&header.metadata, ResponseCode::FormErr);
    Some(encode(response).1)
}

/// An answer encoded for UDP, with what it says (for a handler that reports that): within
/// the client's EDNS payload size, else 512 bytes (with the truncation bit when records had
/// to be left out); SERVFAIL if it cannot be encoded.
pub(crate) fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
    >,
) -> (ResponseInfo, Vec<u8>) {
    let id = response.metadata().id;
    let max = response.edns().map(|e| e.max_payload()).unwrap_or(512).max(512);
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    match response.destructive_emit(&mut encoder) {
        Ok(info) => (info, bytes),
        Err(error) => {
            tracing::warn!(%error, "encoding a DNS answer failed");
            servfail(id)
        }
    }
}

fn servfail(id: u16) -> (ResponseInfo, Vec<u8>) {
    use hickory_server::proto::op::{HeaderCounts, Metadata, OpCode};
    use hickory_server::proto::serialize::binary::BinEncodable;
    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header { metadata, counts: HeaderCounts::default() };
    let mut bytes = Vec::with_capacity(12);
    let _ = header.emit(&mut BinEncoder::new(&mut bytes));
    (ResponseInfo::from(header), bytes)
}

/// Sends a slow answer on the socket the query came in on.
#[derive(Clone)]
struct Reply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let (info, bytes) = encode(response);
        // A datagram send does not wait in practice; the socket is the blocking one the
        // serving thread reads (sharing its descriptor's flags).
        self.socket.send_to(&bytes, self.dst).map_err(hickory_server::net::NetError::from)?;
        Ok(info)
    }
}
