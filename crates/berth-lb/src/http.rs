//! An HTTP listener (ALB): accepts HTTP/1.1 connections with keep-alive, routes every
//! request by the listener's rules, and forwards it to a target over that target's pooled
//! connections, with ALB's `X-Forwarded-*` headers, stickiness cookies and error answers
//! (502 when the target fails or answers garbage, 503 when the group has no target, 504
//! when it does not answer within the idle timeout).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::matching::RequestView;
use crate::meters::{GroupMeter, LbMeter};
use crate::pool::ConnectError;
use crate::responses::{self, Original, ProxyBody};
use crate::routes::{Forward, RouteAction, Routes};
use crate::sticky;
use crate::target::{Group, InFlight, TargetState};
use crate::upstream::{self, Conn, Failure, Head, RequestBody};
use crate::workers::Dispatch;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

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
    let service = service_fn(move |req| {
        let routes = routes.clone();
        async move { Ok::<_, Infallible>(handle(&routes, peer, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// What the rules decided for one request.
enum Decision {
    Answer(Response<ProxyBody>),
    Forward {
        group: Arc<Group>,
        group_cookie: Option<(u64, Duration)>,
        idle: Duration,
        port: HeaderValue,
        meter: Arc<LbMeter>,
    },
}

async fn handle(routes: &ArcSwap<Routes>, peer: SocketAddr, req: Request<Incoming>) -> Response<ProxyBody> {
    let decision = decide(&routes.load(), peer.ip(), &req);
    match decision {
        Decision::Answer(response) => response,
        Decision::Forward { group, group_cookie, idle, port, meter } => {
            let mut response = match forward(&group, peer.ip(), req, idle, port).await {
                Ok(response) => response,
                Err(status) => {
                    meter.elb_answer(status.as_u16());
                    responses::error_page(status)
                }
            };
            if let Some((id, duration)) = group_cookie {
                let cookie = sticky::set_cookie(sticky::GROUP_COOKIE, id, duration, SystemTime::now());
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
    }
}

fn decide(routes: &Routes, source: IpAddr, req: &Request<Incoming>) -> Decision {
    let uri = req.uri();
    let host =
        req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    let view = RequestView {
        method: req.method().as_str(),
        path: uri.path(),
        query: uri.query(),
        host,
        headers: req.headers(),
        source,
    };
    let meter = &routes.meter;
    match routes.route(&view) {
        None => {
            meter.elb_answer(404);
            Decision::Answer(responses::error_page(StatusCode::NOT_FOUND))
        }
        Some(RouteAction::Fixed { status, content_type, body }) => {
            meter.fixed_response();
            Decision::Answer(responses::fixed(*status, content_type.as_deref(), body.as_deref()))
        }
        Some(RouteAction::Redirect { template, status }) => {
            let original = Original {
                protocol: "HTTP",
                host: host.map(crate::matching::host_without_port).unwrap_or(""),
                port: routes.port,
                path: uri.path(),
                query: uri.query().unwrap_or(""),
            };
            let t = [&*template[0], &*template[1], &*template[2], &*template[3], &*template[4]];
            meter.redirect(*status);
            Decision::Answer(responses::redirect(t, *status, &original))
        }
        Some(RouteAction::Forward(f)) => decide_forward(f, routes, req.headers()),
    }
}

fn decide_forward(f: &Forward, routes: &Routes, headers: &HeaderMap) -> Decision {
    let sticky = f.stickiness.and_then(|_| sticky::read(headers, sticky::GROUP_COOKIE, SystemTime::now()));
    match f.choose(sticky) {
        None => {
            routes.meter.elb_answer(503);
            Decision::Answer(responses::error_page(StatusCode::SERVICE_UNAVAILABLE))
        }
        Some(group) => Decision::Forward {
            group: group.clone(),
            group_cookie: f.stickiness.map(|d| (group.cookie, d)),
            idle: routes.idle_timeout,
            port: routes.port_header.clone(),
            meter: routes.meter.clone(),
        },
    }
}

/// Sends the request to a target of `group` and streams its answer back; `Err` is the
/// status of ALB's own answer when no target answered.
async fn forward(
    group: &Group,
    source: IpAddr,
    req: Request<Incoming>,
    idle: Duration,
    port: HeaderValue,
) -> Result<Response<ProxyBody>, StatusCode> {
    let stickiness = group.state.load().stickiness;
    let sticky = stickiness.and_then(|_| sticky::read(req.headers(), sticky::TARGET_COOKIE, SystemTime::now()));
    let Ok(target) = group.pick(|t, _| Some(t.cookie) == sticky) else {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    };
    group.meter.request();
    let in_flight = target.begin();
    let sent = Instant::now();
    let exchanged = exchange(&target, req, source, &port, in_flight, &group.meter);
    let mut response = match tokio::time::timeout(idle, exchanged).await {
        Ok(Ok(response)) => response,
        Ok(Err(status)) => return Err(status),
        Err(_) => return Err(StatusCode::GATEWAY_TIMEOUT),
    };
    group.meter.answered(response.status().as_u16(), sent.elapsed());
    if let Some(duration) = stickiness {
        let cookie = sticky::set_cookie(sticky::TARGET_COOKIE, target.cookie, duration, SystemTime::now());
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// One request/answer exchange over a pooled connection. A request a reused connection
/// could not carry (the target had closed it: the head could not be written, or, for an
/// idempotent request without a body, the connection closed before any answer) is sent again
/// on another connection.
async fn exchange(
    target: &Arc<TargetState>,
    req: Request<Incoming>,
    source: IpAddr,
    port: &HeaderValue,
    in_flight: InFlight,
    meter: &GroupMeter,
) -> Result<Response<ProxyBody>, StatusCode> {
    let (parts, mut body) = req.into_parts();
    let framing = if body.is_end_stream() {
        RequestBody::Empty
    } else if parts.headers.contains_key(header::CONTENT_LENGTH) {
        RequestBody::Sized
    } else {
        RequestBody::Chunked
    };
    let head = request_head(&parts, source, port, framing);
    let retryable = framing == RequestBody::Empty && parts.method.is_idempotent();
    loop {
        let (mut conn, reused) = match target.pool.checkout().await {
            Ok(c) => c,
            Err(e) => {
                meter.connection_failed();
                return Err(if matches!(e, ConnectError::Timeout) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                });
            }
        };
        if conn.write(&head).await.is_err() {
            if reused {
                continue;
            }
            return Err(StatusCode::BAD_GATEWAY);
        }
        if framing != RequestBody::Empty && send_body(&mut conn, &mut body, framing).await.is_err() {
            return Err(StatusCode::BAD_GATEWAY);
        }
        let answer = match conn.read_head(&parts.method).await {
            Ok(answer) => answer,
            Err(Failure::Closed) if reused && retryable => continue,
            Err(_) => return Err(StatusCode::BAD_GATEWAY),
        };
        let Head { status, headers, body: mut rest, .. } = answer;
        let body = match conn.whole_body(&mut rest) {
            Ok(Some(bytes)) => {
                target.pool.checkin(conn);
                ProxyBody::full(bytes)
            }
            Ok(None) => ProxyBody::upstream(conn, rest, in_flight),
            Err(_) => return Err(StatusCode::BAD_GATEWAY),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
}

/// Streams the client's request body to the target.
async fn send_body(conn: &mut Conn, body: &mut Incoming, framing: RequestBody) -> Result<(), ()> {
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| ())?.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        let written = match framing {
            RequestBody::Chunked => conn.write(&upstream::chunk(&data)).await,
            _ => conn.write(&data).await,
        };
        written.map_err(|_| ())?;
    }
    if framing == RequestBody::Chunked {
        conn.write(upstream::LAST_CHUNK).await.map_err(|_| ())?;
    }
    Ok(())
}

/// The request's head as the target gets it: origin-form target, HTTP/1.1, no hop-by-hop
/// headers (RFC 9110 7.6.1, with any the `Connection` header names), ALB's
/// `X-Forwarded-*` and trace headers. Written straight from the client's head, which stays
/// as it came.
fn request_head(parts: &http::request::Parts, source: IpAddr, port: &HeaderValue, framing: RequestBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    upstream::request_line(&mut out, &parts.method, if target.is_empty() { "/" } else { target });
    let headers = &parts.headers;
    let named = connection_named(headers);
    let mut traced = false;
    for (name, value) in headers {
        if hop_by_hop(name)
            || named.contains(name)
            || name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_PORT
        {
            continue;
        }
        traced |= name == X_AMZN_TRACE_ID;
        upstream::header_line(&mut out, name.as_str(), value.as_bytes());
    }
    // Appends to what earlier proxies wrote (several header lines count as one list).
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
        v4 => v4,
    };
    out.extend_from_slice(b"x-forwarded-for: ");
    for before in headers.get_all(&X_FORWARDED_FOR) {
        out.extend_from_slice(before.as_bytes());
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

/// The headers a `Connection` header names: hop-by-hop too. Empty (and no allocation)
/// without one.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// The headers that concern one connection only.
fn hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(headers: &[(&str, &str)]) -> String {
        let mut req = Request::get("http://example.com/a?b=1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let source = "::ffff:10.0.0.7".parse().unwrap();
        String::from_utf8(request_head(&parts, source, &HeaderValue::from_static("8080"), RequestBody::Empty)).unwrap()
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
