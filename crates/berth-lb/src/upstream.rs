//! The proxy's HTTP/1.1 client side, driven by hand: one request at a time over a pooled
//! connection, its head written in one write, the answer's head parsed in place and its body
//! framed as RFC 9112 section 6.3 says (none for HEAD, 1xx, 204 and 304; chunked; a
//! `Content-Length`; or everything until the target closes). A connection goes back to its
//! pool only after its answer was read to the end with nothing past it.
//!
//! A request is served on the thread that accepted its client, and so is the target
//! connection it uses: no channel, task or wake-up stands between the client's connection
//! and the target's, which is where a general HTTP client spends most of a small request.

use std::io::{self, ErrorKind};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderValue;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The headers that concern one connection only (RFC 9110 7.6.1), on either side of the proxy.
pub fn hop_by_hop(name: &[u8]) -> bool {
    const HOP_BY_HOP: [&[u8]; 7] =
        [b"connection", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"keep-alive", b"proxy-connection"];
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The elements of a comma-separated header value (`Connection`, `Transfer-Encoding`),
/// trimmed (empty ones included).
pub fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}
/// The most header lines an answer may have, and the longest head, as hyper allows.
const MAX_HEADERS: usize = 100;
const MAX_HEAD: usize = 64 * 1024;
/// How much a read asks the kernel for.
const READ_SIZE: usize = 16 * 1024;
/// A body at most this long is copied out of the read buffer (which then stays the
/// connection's own, reused by the next answer) rather than split off it.
const COPY_UP_TO: usize = 16 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// One connection to a target, with what was read from it and not yet used.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// When it last went back to the pool.
    pub idle_since: Instant,
    /// Whether the target lets the connection carry another request (its last answer's
    /// `Connection` header and framing said so).
    keep_alive: bool,
}

/// Why an exchange with a target failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The target closed (or reset) the connection before a byte of the answer came:
    /// a reused connection the target had already given up.
    #[error("the target closed the connection before answering")]
    Closed,
    #[error("the exchange with the target failed: {0}")]
    Io(#[from] io::Error),
    #[error("the target's answer is not HTTP/1.1: {0}")]
    Malformed(&'static str),
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self { stream, buf: BytesMut::with_capacity(READ_SIZE), idle_since: Instant::now(), keep_alive: true }
    }

    /// Whether an idle connection can carry a request: nothing arrived while it waited (a
    /// close, or bytes no request asked for, make it unusable). Costs a read only when the
    /// socket has signalled something since the last read that found it empty.
    pub fn usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    /// Whether the connection can go back to the pool: its last answer, read to its end,
    /// left it open for another request and nothing came after it.
    pub fn reusable(&self) -> bool {
        self.keep_alive && self.buf.is_empty()
    }

    /// Writes the whole of `bytes`.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_SIZE);
        self.stream.read_buf(&mut self.buf).await
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            self.buf.reserve(READ_SIZE);
            match self.stream.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    /// Reads the final answer's head (1xx answers before it are passed over). `Closed` when
    /// the target closed before sending anything.
    pub async fn read_head(&mut self, method: &Method) -> Result<Head, Failure> {
        let mut received = false;
        loop {
            if let Some(head) = parse_head(&self.buf, method)? {
                self.buf.advance(head.length);
                received = true;
                if head.status.is_informational() {
                    continue;
                }
                self.keep_alive = head.keep_alive;
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Failure::Malformed("the head is too long"));
            }
            match self.fill().await {
                Ok(0) if !received && self.buf.is_empty() => return Err(Failure::Closed),
                Ok(0) => return Err(Failure::Malformed("the target closed within the head")),
                Ok(_) => received = true,
                Err(e) if !received && e.kind() == ErrorKind::ConnectionReset => return Err(Failure::Closed),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The whole body when the buffer already holds all of it; otherwise `None`, and what
    /// was taken stays in `body` for the streaming that follows.
    pub fn whole_body(&mut self, body: &mut BodyState) -> Result<Option<Bytes>, Failure> {
        let mut parts = Vec::new();
        loop {
            match body.step(&mut self.buf)? {
                Step::Data(b) => parts.push(b),
                Step::End => return Ok(Some(concat(parts))),
                Step::More => {
                    body.unread = parts;
                    return Ok(None);
                }
            }
        }
    }
}

fn concat(mut parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in parts {
                all.extend_from_slice(&p);
            }
            all.freeze()
        }
    }
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    /// The end-to-end header lines as they came (`name: value\r\n` each), the hop-by-hop
    /// ones left out, and `Content-Length` too when the body is framed otherwise.
    pub lines: Vec<u8>,
    /// Whether one of them is `Date`.
    pub dated: bool,
    /// Whether one of them is a `Content-Length` that frames the body (or says what one would
    /// be, for an answer without one).
    sized: bool,
    /// Whether the answer has no body whatever its headers say (HEAD, 1xx, 204, 304).
    bodiless: bool,
    pub body: BodyState,
    /// Whether the connection may carry another request once the body is read.
    pub keep_alive: bool,
    /// The head's length in bytes.
    length: usize,
}

impl Head {
    pub fn sized(&self) -> bool {
        self.sized
    }

    pub fn bodiless(&self) -> bool {
        self.bodiless
    }

    /// The value of the first header line kept named `name`, if any.
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.lines.split(|&b| b == b'\n').find_map(|line| {
            let line = line.strip_suffix(b"\r")?;
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon].eq_ignore_ascii_case(name.as_bytes()).then(|| line[colon + 1..].trim_ascii())
        })
    }
}

/// Parses an answer's head from the start of `buf`: `None` while it is incomplete.
pub fn parse_head(buf: &[u8], method: &Method) -> Result<Option<Head>, Failure> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let length = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Failure::Malformed("too many header lines")),
        Err(_) => return Err(Failure::Malformed("the status line or a header line is invalid")),
    };
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| Failure::Malformed("the status code is invalid"))?;
    if code == 101 {
        return Err(Failure::Malformed("the target switched protocols, which the proxy did not ask for"));
    }
    let http_10 = parsed.version == Some(0);
    // What the hop-by-hop headers say about this connection is read on the way; the lines
    // kept are the end-to-end ones.
    let (mut close, mut keep_alive_token, mut named) = (false, false, Vec::new());
    let mut transfer_coding: Option<&[u8]> = None;
    let mut lengths = Vec::new();
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in list(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else if !token.is_empty() {
                    named.push(token);
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_coding = Some(list(h.value).last().unwrap_or_default());
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(h.value);
        }
    }
    let mut keep_alive = if http_10 { keep_alive_token } else { !close };
    let bodiless = status.is_informational() || code == 204 || code == 304 || method == Method::HEAD;
    let framing = if bodiless {
        Framing::Length(0)
    } else if let Some(last) = transfer_coding {
        if last.eq_ignore_ascii_case(b"chunked") { Framing::Chunked } else { Framing::UntilClose }
    } else if !lengths.is_empty() {
        Framing::Length(content_length(&lengths)?)
    } else {
        Framing::UntilClose
    };
    if matches!(framing, Framing::UntilClose) {
        keep_alive = false;
    }
    // A length kept only where it frames the body (or, without a body, says what one would be).
    let keep_length = bodiless || transfer_coding.is_none();
    let mut lines = Vec::with_capacity(length);
    let mut dated = false;
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        let hop = hop_by_hop(name) || named.iter().any(|n| name.eq_ignore_ascii_case(n));
        if hop || (!keep_length && name.eq_ignore_ascii_case(b"content-length")) {
            continue;
        }
        if HeaderValue::from_bytes(h.value).is_err() {
            return Err(Failure::Malformed("a header value is invalid"));
        }
        dated |= name.eq_ignore_ascii_case(b"date");
        header_line(&mut lines, h.name, h.value);
    }
    let sized = keep_length && !lengths.is_empty();
    Ok(Some(Head { status, lines, dated, sized, bodiless, body: BodyState::new(framing), keep_alive, length }))
}

/// The one length every `Content-Length` line gives.
pub(crate) fn content_length(values: &[&[u8]]) -> Result<u64, Failure> {
    let mut length = None;
    for value in values {
        let text = std::str::from_utf8(value).map_err(|_| Failure::Malformed("Content-Length is invalid"))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Failure::Malformed("Content-Length is invalid"));
            }
            let n: u64 = part.parse().map_err(|_| Failure::Malformed("Content-Length is invalid"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Failure::Malformed("Content-Length lines disagree"));
            }
            length = Some(n);
        }
    }
    length.ok_or(Failure::Malformed("Content-Length is invalid"))
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Where in a body the reading is.
#[derive(Debug)]
pub struct BodyState {
    framing: Framing,
    phase: Phase,
    /// Data taken from the buffer by a look for the whole body that found only part of it.
    unread: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Bytes of body (or of the current chunk) still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    ChunkSize,
    Trailers,
    /// Until the target closes.
    Rest,
    Done,
}

/// What one step of body reading found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// The buffer holds no more of the body: read.
    More,
    End,
}

impl BodyState {
    pub fn new(framing: Framing) -> Self {
        let phase = match framing {
            Framing::Length(0) => Phase::Done,
            Framing::Length(n) => Phase::Data(n),
            Framing::Chunked => Phase::ChunkSize,
            Framing::UntilClose => Phase::Rest,
        };
        Self { framing, phase, unread: Vec::new() }
    }

    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.unread.is_empty()
    }

    /// Takes the next piece of body from `buf`.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, Failure> {
        if !self.unread.is_empty() {
            return Ok(Step::Data(self.unread.remove(0)));
        }
        loop {
            match self.phase {
                Phase::Done => return Ok(Step::End),
                Phase::Rest if buf.is_empty() => return Ok(Step::More),
                Phase::Rest => return Ok(Step::Data(take(buf, buf.len()))),
                Phase::Data(_) if buf.is_empty() => return Ok(Step::More),
                Phase::Data(left) => {
                    let n = left.min(buf.len() as u64) as usize;
                    let left = left - n as u64;
                    self.phase = match (left, self.framing) {
                        (0, Framing::Chunked) => Phase::ChunkEnd,
                        (0, _) => Phase::Done,
                        (left, _) => Phase::Data(left),
                    };
                    return Ok(Step::Data(take(buf, n)));
                }
                Phase::ChunkEnd => {
                    let Some(line) = line(buf)? else { return Ok(Step::More) };
                    if !line.is_empty() {
                        return Err(Failure::Malformed("a chunk's data does not end where its size says"));
                    }
                    self.phase = Phase::ChunkSize;
                }
                Phase::ChunkSize => {
                    let Some(line) = line(buf)? else { return Ok(Step::More) };
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size).ok().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 16);
                    let size = size
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or(Failure::Malformed("a chunk size is invalid"))?;
                    self.phase = if size == 0 { Phase::Trailers } else { Phase::Data(size) };
                }
                Phase::Trailers => {
                    let Some(line) = line(buf)? else { return Ok(Step::More) };
                    if line.is_empty() {
                        self.phase = Phase::Done;
                    }
                }
            }
        }
    }

    /// The target closed the connection: the end of a body read until close, an error
    /// for any other body not yet complete.
    pub fn at_close(&mut self) -> Result<(), Failure> {
        match self.phase {
            Phase::Rest | Phase::Done => {
                self.phase = Phase::Done;
                Ok(())
            }
            _ => Err(Failure::Io(io::Error::new(ErrorKind::UnexpectedEof, "the target closed within the body"))),
        }
    }
}

/// `n` bytes off the front of `buf`: copied when few, so the buffer stays reusable.
fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    if n <= COPY_UP_TO {
        let bytes = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        bytes
    } else {
        buf.split_to(n).freeze()
    }
}

/// One line (without its CRLF, or a bare LF) off the front of `buf`; `None` while the
/// buffer holds no line end.
fn line(buf: &mut BytesMut) -> Result<Option<Vec<u8>>, Failure> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_LINE {
            return Err(Failure::Malformed("a chunk line is too long"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line.to_vec()))
}

/// How a request's body goes to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// None (a `Content-Length: 0` the client sent stays).
    Empty,
    /// As the client sent it, its `Content-Length` kept.
    Sized,
    /// In chunks (the client's own framing was for its connection only).
    Chunked,
}

/// Starts a request head with its request line (`target` in origin form).
pub fn request_line(out: &mut Vec<u8>, method: &Method, target: &str) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// One header line of a request head.
pub fn header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Ends a request head, saying how its body is framed when it is chunked.
pub fn end_head(out: &mut Vec<u8>, body: RequestBody) {
    if body == RequestBody::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// One chunk of a chunked request body (`data` must not be empty).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The end of a chunked request body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Reads the rest of a streamed body: the next piece, or `None` at its end.
pub fn poll_body(conn: &mut Conn, body: &mut BodyState, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Failure>>> {
    loop {
        match body.step(&mut conn.buf) {
            Ok(Step::Data(bytes)) => return Poll::Ready(Some(Ok(bytes))),
            Ok(Step::End) => return Poll::Ready(None),
            Ok(Step::More) => {}
            Err(e) => return Poll::Ready(Some(Err(e))),
        }
        match ready!(conn.poll_fill(cx)) {
            Ok(0) => {
                if let Err(e) = body.at_close() {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            Ok(_) => {}
            Err(e) => return Poll::Ready(Some(Err(e.into()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes(), &Method::GET).unwrap().unwrap()
    }

    fn read_all(body: &mut BodyState, wire: &[u8], piece: usize) -> Result<Vec<u8>, Failure> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = wire;
        loop {
            match body.step(&mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::End => return Ok(out),
                Step::More if rest.is_empty() => {
                    body.at_close()?;
                }
                Step::More => {
                    let n = piece.min(rest.len());
                    buf.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
    }

    #[test]
    fn a_head_is_incomplete_until_its_blank_line() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", &Method::GET).unwrap().is_none());
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi");
        assert_eq!(h.status, 200);
        assert_eq!(h.header("x-a"), Some(&b"b"[..]));
        assert_eq!(h.lines, b"Content-Length: 2\r\nX-A: b\r\n");
        assert_eq!(h.body.framing, Framing::Length(2));
        assert!(h.keep_alive);
        assert_eq!(h.length, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n".len());
    }

    #[test]
    fn bodies_are_framed_as_rfc_9112_says() {
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.body.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(h.body.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.body.framing, Framing::UntilClose);
        for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let h = head(&format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n"));
            assert!(h.body.is_done(), "{status}");
        }
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", &Method::HEAD).unwrap().unwrap();
        assert!(h.body.is_done());
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n");
        assert_eq!(h.body.framing, Framing::Length(3));
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\n\
             Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nTrailer: x\r\nX-Kept: 1\r\n\r\n",
        );
        assert_eq!(String::from_utf8_lossy(&h.lines), "X-Kept: 1\r\n");
        assert_eq!(h.body.framing, Framing::Chunked);
        assert!(h.keep_alive);
    }

    #[test]
    fn a_length_stays_only_where_it_frames_the_body() {
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nDate: x\r\n\r\n");
        assert_eq!(h.header("content-length"), None, "the chunks frame it");
        assert!(h.dated);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", &Method::HEAD).unwrap().unwrap();
        assert_eq!(h.header("content-length"), Some(&b"9"[..]), "a HEAD answer says what a GET would get");
        assert!(!h.dated);
    }

    #[test]
    fn connection_tokens_decide_reuse() {
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
    }

    #[test]
    fn garbage_and_contradictions_are_refused() {
        for bad in [
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes(), &Method::GET).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_reads_split() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in [1, 2, 3, 7, wire.len()] {
            let mut body = BodyState::new(Framing::Chunked);
            assert_eq!(read_all(&mut body, wire, piece).unwrap(), b"hello world", "reads of {piece}");
            assert!(body.is_done());
        }
    }

    #[test]
    fn broken_chunks_are_errors() {
        for wire in [&b"zz\r\nhi\r\n0\r\n\r\n"[..], b"2\r\nhiXX0\r\n\r\n", b"5\r\nhel"] {
            let mut body = BodyState::new(Framing::Chunked);
            assert!(read_all(&mut body, wire, 4).is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn a_sized_body_stops_at_its_length_and_a_short_one_is_an_error() {
        let mut body = BodyState::new(Framing::Length(5));
        let mut buf = BytesMut::from(&b"helloHTTP/1.1"[..]);
        assert_eq!(body.step(&mut buf).unwrap(), Step::Data(Bytes::from_static(b"hello")));
        assert_eq!(body.step(&mut buf).unwrap(), Step::End);
        assert_eq!(&buf[..], b"HTTP/1.1");
        let mut body = BodyState::new(Framing::Length(5));
        assert!(read_all(&mut body, b"hel", 2).is_err());
    }

    #[test]
    fn a_body_until_close_ends_at_the_close() {
        let mut body = BodyState::new(Framing::UntilClose);
        assert_eq!(read_all(&mut body, b"all of it", 4).unwrap(), b"all of it");
        assert!(body.is_done());
    }

    #[test]
    fn request_heads_are_origin_form_http_1_1() {
        let mut out = Vec::new();
        request_line(&mut out, &Method::POST, "/a?b=1");
        header_line(&mut out, "host", b"example.com");
        end_head(&mut out, RequestBody::Chunked);
        assert_eq!(out, b"POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(chunk(b"hello"), b"5\r\nhello\r\n");
    }
}
