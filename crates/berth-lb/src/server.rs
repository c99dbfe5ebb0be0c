//! The proxy's HTTP/1.1 server side, driven by hand: a client's request heads parsed in place
//! from the connection's read buffer (httparse), what the head says about the exchange read
//! once ([`Facts`]: keep-alive, body framing, `Expect`), and the answer written in one write
//! (status line, header lines, `Date`, framing, the body when it is whole). No header map is
//! built for a request or an answer: the rules look at the header lines as they came, and the
//! target's answer goes back as its kept header lines.
//!
//! A connection's idle timeout is one timer ([`IdleTimer`]) armed once per timeout, not once
//! per request: each request moves a mark, and the timer, when it fires, looks at the mark.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::upstream::{self, Framing};

/// The most header lines a request may have, and its longest head.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEAD: usize = 64 * 1024;
const READ_SIZE: usize = 16 * 1024;

/// A client's connection and what was read from it and not yet used.
pub struct Client {
    stream: TcpStream,
    pub buf: BytesMut,
}

impl Client {
    pub fn new(stream: TcpStream) -> Self {
        Self { stream, buf: BytesMut::with_capacity(READ_SIZE) }
    }

    /// Reads more into the buffer: `Ok(0)` when the client closed.
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_SIZE);
        self.stream.read_buf(&mut self.buf).await
    }

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

/// Why a request head is refused (ALB answers 400 and closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(pub &'static str);

/// What a request head says about its exchange, beyond where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub method: Method,
    pub http_10: bool,
    /// Whether the client lets the connection carry another request.
    pub keep_alive: bool,
    /// The request body's framing (`Length(0)`: none).
    pub body: Framing,
    /// `Expect: 100-continue` with a body to come.
    pub expect_continue: bool,
    /// The head's length in bytes.
    pub length: usize,
}

/// A request head, borrowed from the buffer it was parsed from.
pub struct Request<'h> {
    pub facts: Facts,
    /// The request target in origin form (path and query), as it goes to the target.
    pub target: &'h str,
    pub path: &'h str,
    pub query: Option<&'h str>,
    /// The `Host` header, or an absolute-form target's authority.
    pub host: Option<&'h str>,
    pub headers: &'h [httparse::Header<'h>],
}

/// Parses the request head at the start of `buf` into `slots`: `None` while it is
/// incomplete.
pub fn parse_request<'h>(
    buf: &'h [u8],
    slots: &'h mut [httparse::Header<'h>],
) -> Result<Option<Request<'h>>, BadRequest> {
    let mut parsed = httparse::Request::new(slots);
    let length = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadRequest("too many header lines")),
        Err(_) => return Err(BadRequest("the request line or a header line is invalid")),
    };
    let (Some(method), Some(raw_target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(BadRequest("the request line is incomplete"));
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| BadRequest("the method is invalid"))?;
    if method == Method::CONNECT {
        return Err(BadRequest("CONNECT is not proxied"));
    }
    let http_10 = version == 0;
    let headers: &'h [httparse::Header<'h>] = parsed.headers;
    let (target, authority) = origin_form(raw_target)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let (mut close, mut keep_alive_token, mut expect_continue) = (false, false, false);
    let (mut chunked, mut lengths, mut host) = (None, Vec::new(), None);
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in upstream::list(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = upstream::list(h.value).last().unwrap_or_default();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(h.value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"host") && host.is_none() {
            host = Some(std::str::from_utf8(h.value).map_err(|_| BadRequest("the Host header is invalid"))?);
        }
    }
    // RFC 9112 6.1 and 6.3: a body framed two ways, or by a coding that is not chunked last, is
    // refused (a proxy that guessed could be smuggled a second request).
    let body = match (chunked, lengths.is_empty()) {
        (Some(_), false) => return Err(BadRequest("both Transfer-Encoding and Content-Length")),
        (Some(_), true) if http_10 => return Err(BadRequest("Transfer-Encoding in an HTTP/1.0 request")),
        (Some(false), true) => return Err(BadRequest("a Transfer-Encoding that does not end in chunked")),
        (Some(true), true) => Framing::Chunked,
        (None, false) => {
            Framing::Length(upstream::content_length(&lengths).map_err(|_| BadRequest("Content-Length is invalid"))?)
        }
        (None, true) => Framing::Length(0),
    };
    let expect_continue = expect_continue && body != Framing::Length(0) && !http_10;
    let keep_alive = if http_10 { keep_alive_token && !close } else { !close };
    let facts = Facts { method, http_10, keep_alive, body, expect_continue, length };
    Ok(Some(Request { facts, target, path, query, host: host.or(authority), headers }))
}

/// The request target in origin form, and an absolute-form target's authority.
fn origin_form(raw: &str) -> Result<(&str, Option<&str>), BadRequest> {
    if raw.starts_with('/') || raw == "*" {
        return Ok((raw, None));
    }
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            raw.get(..scheme.len()).filter(|s| s.eq_ignore_ascii_case(scheme)).map(|_| &raw[scheme.len()..])
        })
        .ok_or(BadRequest("the request target is invalid"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.is_empty() {
        return Err(BadRequest("the request target has no host"));
    }
    Ok((if target.is_empty() { "/" } else { target }, Some(authority)))
}

/// A status line (`HTTP/1.1 200 OK`).
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header line, made once per second on each thread.
pub fn date_line(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        upstream::header_line(out, "date", text.as_bytes());
    });
}

/// The `Connection` line the answer needs, if any: `close` when the connection ends after it,
/// `keep-alive` to an HTTP/1.0 client it stays open for.
pub fn connection_line(out: &mut Vec<u8>, keep_alive: bool, http_10: bool) {
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
}

/// A connection's idle timeout: one timer, re-armed only when it fires before the timeout
/// has passed since the last [`IdleTimer::touch`].
pub struct IdleTimer {
    sleep: Pin<Box<Sleep>>,
    last: Instant,
    timeout: Duration,
}

impl IdleTimer {
    pub fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Self { sleep: Box::pin(tokio::time::sleep_until(now + timeout)), last: now, timeout }
    }

    /// Something happened: the timeout runs from now.
    pub fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Resolves once the timeout has passed with no touch.
    pub async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            let due = self.last + self.timeout;
            if Instant::now() >= due {
                return;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts, target, query and host of a parsed head.
    type Parsed = (Facts, String, Option<String>, Option<String>);

    fn parse(text: &str) -> Result<Option<Parsed>, BadRequest> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = parse_request(text.as_bytes(), &mut slots)?;
        Ok(parsed.map(|r| (r.facts, r.target.to_string(), r.query.map(str::to_string), r.host.map(str::to_string))))
    }

    fn facts(text: &str) -> Facts {
        parse(text).unwrap().unwrap().0
    }

    #[test]
    fn a_head_is_incomplete_until_its_blank_line() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let (f, target, query, host) = parse("GET /a?b=1 HTTP/1.1\r\nHost: x:8080\r\n\r\nrest").unwrap().unwrap();
        assert_eq!((target.as_str(), query.as_deref(), host.as_deref()), ("/a?b=1", Some("b=1"), Some("x:8080")));
        assert_eq!(f.length, "GET /a?b=1 HTTP/1.1\r\nHost: x:8080\r\n\r\n".len());
        assert_eq!((f.method, f.keep_alive, f.body, f.http_10), (Method::GET, true, Framing::Length(0), false));
    }

    #[test]
    fn connection_and_version_decide_keep_alive() {
        assert!(!facts("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!facts("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(facts("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn bodies_are_framed_as_rfc_9112_says() {
        assert_eq!(facts("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").body, Framing::Length(5));
        assert_eq!(facts("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").body, Framing::Length(5));
        assert_eq!(facts("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").body, Framing::Chunked);
        let f = facts("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert!(f.expect_continue);
        assert!(!facts("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expect_continue, "no body to wait for");
    }

    #[test]
    fn ambiguous_or_broken_heads_are_refused() {
        for bad in [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET nowhere HTTP/1.1\r\n\r\n",
            "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_form_targets_go_in_origin_form() {
        let (_, target, _, host) = parse("GET http://example.com:81/p?q HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!((target.as_str(), host.as_deref()), ("/p?q", Some("example.com:81")));
        let (_, target, _, host) = parse("GET http://example.com HTTP/1.1\r\nHost: other\r\n\r\n").unwrap().unwrap();
        assert_eq!((target.as_str(), host.as_deref()), ("/", Some("other")), "the Host header wins");
        assert_eq!(parse("OPTIONS * HTTP/1.1\r\n\r\n").unwrap().unwrap().1, "*");
    }

    #[test]
    fn answers_start_as_http_1_1_says() {
        let mut out = Vec::new();
        status_line(&mut out, StatusCode::BAD_GATEWAY);
        connection_line(&mut out, false, false);
        connection_line(&mut out, true, true);
        connection_line(&mut out, true, false);
        date_line(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\nconnection: keep-alive\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timer_runs_from_the_last_touch() {
        let mut timer = IdleTimer::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(8)).await;
        timer.touch();
        let started = Instant::now();
        timer.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10), "10 s after the touch, not after the start");
    }
}
