//! An HTTP listener (ALB): accepts HTTP/1.1 connections with keep-alive, routes every
//! request by the listener's rules, and forwards it to a target over that target's pooled
//! connections, with ALB's `X-Forwarded-*` headers, stickiness cookies and error answers
//! (400 for a head it cannot read, 502 when the target fails or answers garbage, 503 when the
//! group has no target, 504 when it does not answer within the idle timeout).
//!
//! A request is read and routed without an await ([`prepare`]: parse, rules, target, the
//! target's request head), then exchanged ([`exchange`]) and answered ([`answer_from_target`], or [`own_answer`]). The client
//! side of the protocol is [`crate::server`], the target side [`crate::upstream`].

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::{Buf, Bytes};
use http::header::HeaderValue;
use http::{Method, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::matching::{Headers, RequestView};
use crate::meters::LbMeter;
use crate::pool::ConnectError;
use crate::responses::{self, Original};
use crate::routes::{Forward, RouteAction, Routes};
use crate::server::{self, BadRequest, Client, Facts, IdleTimer, Request};
use crate::sticky;
use crate::target::{Group, InFlight, TargetState};
use crate::upstream::{self, BodyState, Conn, Failure, Framing, Head, RequestBody, Step};
use crate::workers::Dispatch;

/// Serves the listener's connections until `stop` changes (or its sender goes away).
pub async fn serve(
    listener: TcpListener,
    routes: Arc<ArcSwap<Routes>>,
    stop: watch::Receiver<bool>,
    dispatch: Dispatch,
) {
    crate::workers::accept_all(listener, stop, dispatch, move |stream, peer, stop| {
        connection(stream, peer, routes.clone(), stop)
    })
    .await
}

/// Whether the listener is going away: the connection ends after the request in progress.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    stop.has_changed().unwrap_or(true)
}

/// Serves one client connection; on `stop`, finishes the request in progress and closes.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    routes: Arc<ArcSwap<Routes>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let idle = {
        let routes = routes.load();
        routes.meter.connection();
        routes.idle_timeout
    };
    let mut client = Client::new(stream);
    let mut timer = IdleTimer::new(idle);
    loop {
        // The next request's head, routed as soon as it is whole.
        let prepared = loop {
            match prepare(&routes.load(), peer.ip(), &client.buf) {
                Ok(Some(p)) => break p,
                Ok(None) if client.buf.len() > server::MAX_HEAD => {
                    return refuse(&mut client, &routes, BadRequest("the head is too long")).await;
                }
                Ok(None) => {}
                Err(bad) => return refuse(&mut client, &routes, bad).await,
            }
            tokio::select! {
                read = client.fill() => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => timer.touch(),
                },
                _ = timer.expired() => return,
                _ = stop.changed() => return,
            }
        };
        client.buf.advance(prepared.facts.length);
        timer.touch();
        let keep_alive = serve_request(&mut client, prepared, &mut timer, stopping(&stop)).await;
        if !keep_alive || stopping(&stop) {
            return;
        }
        timer.touch();
    }
}

/// ALB's 400 for a head it cannot read; the connection ends.
async fn refuse(client: &mut Client, routes: &ArcSwap<Routes>, bad: BadRequest) {
    tracing::debug!(%bad, "refusing a request");
    routes.load().meter.elb_answer(400);
    let facts = Facts {
        method: Method::GET,
        http_10: false,
        keep_alive: false,
        body: Framing::Length(0),
        expect_continue: false,
        length: 0,
    };
    let _ = client.write(&own_answer(&responses::error_page(StatusCode::BAD_REQUEST), &facts, false, &[])).await;
}

/// One request, routed and ready to go, with nothing borrowed from the client's buffer.
struct Prepared {
    facts: Facts,
    action: Action,
}

enum Action {
    /// The load balancer answers itself (with the group's stickiness cookie, if any).
    Answer(Response<Bytes>, Option<HeaderValue>),
    Forward(Forwarding),
}

/// A request on its way to a target.
struct Forwarding {
    group: Arc<Group>,
    target: Arc<TargetState>,
    in_flight: InFlight,
    /// The target's request head.
    head: Vec<u8>,
    body: RequestBody,
    /// The group's stickiness cookie (on any answer) and the target's (on the target's).
    group_cookie: Option<HeaderValue>,
    target_cookie: Option<HeaderValue>,
    meter: Arc<LbMeter>,
}

/// Parses the request head at the start of `buf` and decides what becomes of it: `None`
/// while the head is incomplete.
fn prepare(routes: &Routes, source: IpAddr, buf: &[u8]) -> Result<Option<Prepared>, BadRequest> {
    let mut slots = [httparse::EMPTY_HEADER; server::MAX_HEADERS];
    let Some(req) = server::parse_request(buf, &mut slots)? else { return Ok(None) };
    let action = decide(routes, source, &req);
    Ok(Some(Prepared { facts: req.facts, action }))
}

fn decide(routes: &Routes, source: IpAddr, req: &Request<'_>) -> Action {
    let headers = Headers(req.headers);
    let view = RequestView {
        method: req.facts.method.as_str(),
        path: req.path,
        query: req.query,
        host: req.host,
        headers,
        source,
    };
    let meter = &routes.meter;
    match routes.route(&view) {
        None => {
            meter.elb_answer(404);
            Action::Answer(responses::error_page(StatusCode::NOT_FOUND), None)
        }
        Some(RouteAction::Fixed { status, content_type, body }) => {
            meter.fixed_response();
            Action::Answer(responses::fixed(*status, content_type.as_deref(), body.as_deref()), None)
        }
        Some(RouteAction::Redirect { template, status }) => {
            let original = Original {
                protocol: "HTTP",
                host: req.host.map(crate::matching::host_without_port).unwrap_or(""),
                port: routes.port,
                path: req.path,
                query: req.query.unwrap_or(""),
            };
            let t = [&*template[0], &*template[1], &*template[2], &*template[3], &*template[4]];
            meter.redirect(*status);
            Action::Answer(responses::redirect(t, *status, &original), None)
        }
        Some(RouteAction::Forward(f)) => decide_forward(f, routes, source, req),
    }
}

fn decide_forward(f: &Forward, routes: &Routes, source: IpAddr, req: &Request<'_>) -> Action {
    let headers = Headers(req.headers);
    // The clock is read only for stickiness, once.
    let clock = std::cell::OnceCell::new();
    let now = || *clock.get_or_init(SystemTime::now);
    let sticky = f.stickiness.and_then(|_| sticky::read(headers, sticky::GROUP_COOKIE, now()));
    let Some(group) = f.choose(sticky) else {
        routes.meter.elb_answer(503);
        return Action::Answer(responses::error_page(StatusCode::SERVICE_UNAVAILABLE), None);
    };
    let group_cookie = f.stickiness.map(|d| sticky::set_cookie(sticky::GROUP_COOKIE, group.cookie, d, now()));
    let stickiness = group.state.load().stickiness;
    let sticky = stickiness.and_then(|_| sticky::read(headers, sticky::TARGET_COOKIE, now()));
    let Ok(target) = group.pick(|t, _| Some(t.cookie) == sticky) else {
        routes.meter.elb_answer(503);
        return Action::Answer(responses::error_page(StatusCode::SERVICE_UNAVAILABLE), group_cookie);
    };
    group.meter.request();
    let target_cookie = stickiness.map(|d| sticky::set_cookie(sticky::TARGET_COOKIE, target.cookie, d, now()));
    let body = match req.facts.body {
        Framing::Length(0) => RequestBody::Empty,
        Framing::Chunked => RequestBody::Chunked,
        _ => RequestBody::Sized,
    };
    let head = request_head(req, source, &routes.port_header, body);
    Action::Forward(Forwarding {
        in_flight: target.begin(),
        target,
        group: group.clone(),
        head,
        body,
        group_cookie,
        target_cookie,
        meter: routes.meter.clone(),
    })
}

/// Serves one prepared request; answers whether the connection can carry another.
async fn serve_request(client: &mut Client, prepared: Prepared, timer: &mut IdleTimer, stopping: bool) -> bool {
    let Prepared { facts, action } = prepared;
    let fw = match action {
        Action::Answer(response, cookie) => {
            // A body the request came with is passed over when it is all here; otherwise the
            // connection ends with the answer.
            let keep_alive = facts.keep_alive && !stopping && skip_body(&mut client.buf, facts.body);
            let cookies: Vec<HeaderValue> = cookie.into_iter().collect();
            let out = own_answer(&response, &facts, keep_alive, &cookies);
            return client.write(&out).await.is_ok() && keep_alive;
        }
        Action::Forward(fw) => fw,
    };
    let mut body_read = fw.body == RequestBody::Empty;
    let sent = Instant::now();
    let outcome = {
        let exchanged = exchange(client, &fw, &facts, &mut body_read);
        tokio::pin!(exchanged);
        tokio::select! {
            outcome = &mut exchanged => outcome,
            _ = timer.expired() => Err(StatusCode::GATEWAY_TIMEOUT),
        }
    };
    let keep_alive = facts.keep_alive && !stopping && body_read;
    match outcome {
        Err(status) => {
            fw.meter.elb_answer(status.as_u16());
            let cookies: Vec<HeaderValue> = fw.group_cookie.into_iter().collect();
            let out = own_answer(&responses::error_page(status), &facts, keep_alive, &cookies);
            client.write(&out).await.is_ok() && keep_alive
        }
        Ok((head, answer)) => {
            fw.group.meter.answered(head.status.as_u16(), sent.elapsed());
            let cookies: Vec<HeaderValue> = fw.target_cookie.into_iter().chain(fw.group_cookie).collect();
            answer_from_target(client, (head, answer), &facts, keep_alive, &cookies, (timer, fw.in_flight)).await
        }
    }
}

/// Takes a request body off the buffer when all of it is there.
fn skip_body(buf: &mut bytes::BytesMut, framing: Framing) -> bool {
    if framing == Framing::Length(0) {
        return true;
    }
    let mut copy = buf.clone();
    let mut body = BodyState::new(framing);
    loop {
        match body.step(&mut copy) {
            Ok(Step::Data(_)) => {}
            Ok(Step::End) => {
                *buf = copy;
                return true;
            }
            Ok(Step::More) | Err(_) => return false,
        }
    }
}

/// What came back from the target after its head.
enum Answer {
    /// The whole body (the connection is back in its pool).
    Whole(Bytes),
    /// The body streams from the connection.
    Streamed(Conn),
}

/// One request/answer exchange over a pooled connection. A request a reused connection
/// could not carry (the target had closed it: the head could not be written, or, for an
/// idempotent request without a body, the connection closed before any answer) is sent again
/// on another connection. `body_read` says whether the client's request body was read to its
/// end (the client connection can carry another request only then).
async fn exchange(
    client: &mut Client,
    fw: &Forwarding,
    facts: &Facts,
    body_read: &mut bool,
) -> Result<(Head, Answer), StatusCode> {
    let retryable = fw.body == RequestBody::Empty && facts.method.is_idempotent();
    loop {
        let (mut conn, reused) = match fw.target.pool.checkout().await {
            Ok(c) => c,
            Err(e) => {
                fw.group.meter.connection_failed();
                return Err(if matches!(e, ConnectError::Timeout) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                });
            }
        };
        if conn.write(&fw.head).await.is_err() {
            if reused {
                continue;
            }
            return Err(StatusCode::BAD_GATEWAY);
        }
        if fw.body != RequestBody::Empty {
            if facts.expect_continue && client.buf.is_empty() {
                client.write(b"HTTP/1.1 100 Continue\r\n\r\n").await.map_err(|_| StatusCode::BAD_REQUEST)?;
            }
            send_body(client, &mut conn, facts.body).await?;
            *body_read = true;
        }
        let mut head = match conn.read_head(&facts.method).await {
            Ok(head) => head,
            Err(Failure::Closed) if reused && retryable => continue,
            Err(_) => return Err(StatusCode::BAD_GATEWAY),
        };
        return match conn.whole_body(&mut head.body) {
            Ok(Some(bytes)) => {
                fw.target.pool.checkin(conn);
                Ok((head, Answer::Whole(bytes)))
            }
            Ok(None) => Ok((head, Answer::Streamed(conn))),
            Err(_) => Err(StatusCode::BAD_GATEWAY),
        };
    }
}

/// Streams the client's request body to the target: as it came when sized, in chunks of
/// the target connection's own otherwise. A client that breaks off is a 400, a target that
/// does a 502.
async fn send_body(client: &mut Client, conn: &mut Conn, framing: Framing) -> Result<(), StatusCode> {
    let chunked = framing == Framing::Chunked;
    let mut body = BodyState::new(framing);
    loop {
        match body.step(&mut client.buf).map_err(|_| StatusCode::BAD_REQUEST)? {
            Step::Data(data) if data.is_empty() => {}
            Step::Data(data) => {
                let written = if chunked { conn.write(&upstream::chunk(&data)).await } else { conn.write(&data).await };
                written.map_err(|_| StatusCode::BAD_GATEWAY)?;
            }
            Step::End => break,
            Step::More => match client.fill().await {
                Ok(0) | Err(_) => return Err(StatusCode::BAD_REQUEST),
                Ok(_) => {}
            },
        }
    }
    if chunked {
        conn.write(upstream::LAST_CHUNK).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    }
    Ok(())
}

/// An answer the load balancer makes itself, whole.
fn own_answer(response: &Response<Bytes>, facts: &Facts, keep_alive: bool, cookies: &[HeaderValue]) -> Vec<u8> {
    let body = response.body();
    let mut out = Vec::with_capacity(256 + body.len());
    server::status_line(&mut out, response.status());
    for (name, value) in response.headers() {
        upstream::header_line(&mut out, name.as_str(), value.as_bytes());
    }
    for cookie in cookies {
        upstream::header_line(&mut out, "set-cookie", cookie.as_bytes());
    }
    server::date_line(&mut out);
    let _ = write!(out, "content-length: {}\r\n", body.len());
    server::connection_line(&mut out, keep_alive, facts.http_10);
    out.extend_from_slice(b"\r\n");
    if facts.method != Method::HEAD {
        out.extend_from_slice(body);
    }
    out
}

/// Writes the target's answer to the client: its kept header lines, the stickiness cookies,
/// `Date` when it had none, and its body (as it came when its length is known; in chunks to
/// an HTTP/1.1 client otherwise, until the close to an HTTP/1.0 one). A target that breaks
/// off within a streamed body breaks the client's connection off too. Answers whether the
/// connection can carry another request.
async fn answer_from_target(
    client: &mut Client,
    (head, answer): (Head, Answer),
    facts: &Facts,
    keep_alive: bool,
    cookies: &[HeaderValue],
    (timer, in_flight): (&mut IdleTimer, InFlight),
) -> bool {
    let bodiless = head.bodiless();
    let rechunk = !bodiless && !head.sized() && !facts.http_10;
    let keep_alive = keep_alive && (bodiless || head.sized() || !facts.http_10 || matches!(answer, Answer::Whole(_)));
    let mut out = Vec::with_capacity(256 + head.lines.len());
    server::status_line(&mut out, head.status);
    out.extend_from_slice(&head.lines);
    for cookie in cookies {
        upstream::header_line(&mut out, "set-cookie", cookie.as_bytes());
    }
    if !head.dated {
        server::date_line(&mut out);
    }
    let mut conn = match answer {
        Answer::Whole(bytes) => {
            if !bodiless && !head.sized() {
                let _ = write!(out, "content-length: {}\r\n", bytes.len());
            }
            server::connection_line(&mut out, keep_alive, facts.http_10);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&bytes);
            drop(in_flight);
            return client.write(&out).await.is_ok() && keep_alive;
        }
        Answer::Streamed(conn) => conn,
    };
    if rechunk {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    server::connection_line(&mut out, keep_alive, facts.http_10);
    out.extend_from_slice(b"\r\n");
    if client.write(&out).await.is_err() {
        return false;
    }
    let mut body = head.body;
    // Each piece within the idle timeout of the last (a stalled target is cut off).
    let finished = loop {
        let piece = tokio::select! {
            piece = std::future::poll_fn(|cx| upstream::poll_body(&mut conn, &mut body, cx)) => piece,
            _ = timer.expired() => break false,
        };
        let written = match piece {
            None => break !rechunk || client.write(upstream::LAST_CHUNK).await.is_ok(),
            Some(Err(_)) => break false,
            Some(Ok(data)) if data.is_empty() => continue,
            Some(Ok(data)) if rechunk => client.write(&upstream::chunk(&data)).await,
            Some(Ok(data)) => client.write(&data).await,
        };
        if written.is_err() {
            break false;
        }
        timer.touch();
    };
    if finished && body.is_done() {
        in_flight.target().pool.checkin(conn);
    }
    drop(in_flight);
    finished && keep_alive
}

/// The request's head as the target gets it: origin-form target, HTTP/1.1, no hop-by-hop
/// headers (RFC 9110 7.6.1, with any the `Connection` header names), ALB's
/// `X-Forwarded-*` and trace headers. Written straight from the client's head lines, names
/// as they came.
fn request_head(req: &Request<'_>, source: IpAddr, port: &HeaderValue, framing: RequestBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    upstream::request_line(&mut out, &req.facts.method, req.target);
    let named = connection_named(req.headers);
    let mut traced = false;
    let mut forwarded_for = Vec::new();
    for h in req.headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            forwarded_for.push(h.value);
            continue;
        }
        if upstream::hop_by_hop(name)
            || named.iter().any(|n| name.eq_ignore_ascii_case(n))
            || name.eq_ignore_ascii_case(b"x-forwarded-proto")
            || name.eq_ignore_ascii_case(b"x-forwarded-port")
            || (framing == RequestBody::Chunked && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        traced |= name.eq_ignore_ascii_case(b"x-amzn-trace-id");
        upstream::header_line(&mut out, h.name, h.value);
    }
    // Appends to what earlier proxies wrote (several header lines count as one list).
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
        v4 => v4,
    };
    out.extend_from_slice(b"x-forwarded-for: ");
    for before in forwarded_for {
        out.extend_from_slice(before);
        out.extend_from_slice(b", ");
    }
    let _ = write!(out, "{source}\r\n");
    upstream::header_line(&mut out, "x-forwarded-proto", b"http");
    upstream::header_line(&mut out, "x-forwarded-port", port.as_bytes());
    if !traced {
        out.extend_from_slice(b"x-amzn-trace-id: ");
        write_trace_id(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    upstream::end_head(&mut out, framing);
    out
}

/// ALB's trace id: `Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`.
fn write_trace_id(out: &mut Vec<u8>) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as u32;
    let (a, b) = (fastrand::u64(..), fastrand::u32(..));
    let _ = write!(out, "Root=1-{secs:08x}-{a:016x}{b:08x}");
}

/// The header names a `Connection` header lists: hop-by-hop too. Empty (and no allocation)
/// without one.
fn connection_named<'h>(headers: &[httparse::Header<'h>]) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| upstream::list(h.value))
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(headers: &[(&str, &str)]) -> String {
        let mut text = String::from("GET http://example.com/a?b=1 HTTP/1.1\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let mut slots = [httparse::EMPTY_HEADER; server::MAX_HEADERS];
        let req = server::parse_request(text.as_bytes(), &mut slots).unwrap().unwrap();
        let source = "::ffff:10.0.0.7".parse().unwrap();
        String::from_utf8(request_head(&req, source, &HeaderValue::from_static("8080"), RequestBody::Empty)).unwrap()
    }

    #[test]
    fn hop_by_hop_headers_go_and_albs_come() {
        let head = head_of(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-kept", "1"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
            ("x-amzn-trace-id", "Root=mine"),
        ]);
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(
            lines,
            [
                "GET /a?b=1 HTTP/1.1",
                "x-kept: 1",
                "x-amzn-trace-id: Root=mine",
                "x-forwarded-for: 203.0.113.9, 198.51.100.1, 10.0.0.7",
                "x-forwarded-proto: http",
                "x-forwarded-port: 8080",
                "",
                ""
            ]
        );
    }

    #[test]
    fn trace_ids_look_like_albs() {
        let head = head_of(&[]);
        let line = head.lines().find_map(|l| l.strip_prefix("x-amzn-trace-id: ")).unwrap();
        assert!(line.starts_with("Root=1-"), "{line}");
        let parts: Vec<_> = line["Root=".len()..].split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
    }
}
