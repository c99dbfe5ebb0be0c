//! What the load balancer answers itself: ALB's small HTML error pages, fixed responses,
//! redirects (ELB's `#{...}` templates).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// The `Server` header ALB puts on the answers it makes itself.
pub const SERVER: HeaderValue = HeaderValue::from_static("awselb/2.0");

macro_rules! page {
    ($code:literal, $text:literal) => {
        concat!(
            "<html>\r\n<head><title>",
            $code,
            " ",
            $text,
            "</title></head>\r\n<body>\r\n<center><h1>",
            $code,
            " ",
            $text,
            "</h1></center>\r\n</body>\r\n</html>\r\n"
        )
    };
}

/// ALB's error page for `status`.
pub fn error_page(status: StatusCode) -> Response<Bytes> {
    let page = match status.as_u16() {
        400 => page!("400", "Bad Request"),
        404 => page!("404", "Not Found"),
        502 => page!("502", "Bad Gateway"),
        503 => page!("503", "Service Temporarily Unavailable"),
        504 => page!("504", "Gateway Time-out"),
        _ => page!("500", "Internal Server Error"),
    };
    let mut response = Response::new(Bytes::from_static(page.as_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// A fixed-response action's answer.
pub fn fixed(status: u16, content_type: Option<&str>, body: Option<&str>) -> Response<Bytes> {
    let body = body.map(|b| Bytes::copy_from_slice(b.as_bytes())).unwrap_or_default();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    response
}

/// What a redirect template's `#{...}` keys stand for in one request.
pub struct Original<'a> {
    /// The listener's protocol as ELB spells it (`HTTP`).
    pub protocol: &'a str,
    /// The host without its port.
    pub host: &'a str,
    pub port: u16,
    /// The path with its leading slash.
    pub path: &'a str,
    /// The query without `?` (empty when there is none).
    pub query: &'a str,
}

/// A redirect action's answer: each part is its template with the request's values put in;
/// the port is left out of the URL when it is the protocol's default.
pub fn redirect(template: [&str; 5], status: u16, original: &Original<'_>) -> Response<Bytes> {
    let location = redirect_location(template, original);
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = if status == 301 { StatusCode::MOVED_PERMANENTLY } else { StatusCode::FOUND };
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            headers.insert(header::LOCATION, v);
            response
        }
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The `Location` of a redirect; `template` is [protocol, host, port, path, query].
pub fn redirect_location(template: [&str; 5], o: &Original<'_>) -> String {
    let port = o.port.to_string();
    let fill = |t: &str| {
        t.replace("#{protocol}", o.protocol)
            .replace("#{host}", o.host)
            .replace("#{port}", &port)
            .replace("#{path}", o.path.strip_prefix('/').unwrap_or(o.path))
            .replace("#{query}", o.query)
    };
    let [protocol, host, port, path, query] = template.map(fill);
    let scheme = protocol.to_ascii_lowercase();
    let default = matches!((scheme.as_str(), port.as_str()), ("http", "80") | ("https", "443"));
    let mut out = format!("{scheme}://{host}");
    if !default && !port.is_empty() {
        out.push(':');
        out.push_str(&port);
    }
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original() -> Original<'static> {
        Original { protocol: "HTTP", host: "example.com", port: 8080, path: "/a/b", query: "x=1" }
    }

    #[test]
    fn default_redirect_keeps_everything() {
        let t = ["#{protocol}", "#{host}", "#{port}", "/#{path}", "#{query}"];
        assert_eq!(redirect_location(t, &original()), "http://example.com:8080/a/b?x=1");
    }

    #[test]
    fn redirect_to_https_drops_the_default_port() {
        let t = ["HTTPS", "#{host}", "443", "/#{path}", "#{query}"];
        assert_eq!(redirect_location(t, &original()), "https://example.com/a/b?x=1");
        let mut o = original();
        o.query = "";
        let t = ["HTTPS", "new.#{host}", "443", "/v2/#{path}", "#{query}"];
        assert_eq!(redirect_location(t, &o), "https://new.example.com/v2/a/b");
    }

    #[test]
    fn error_pages_are_html_from_awselb() {
        let r = error_page(StatusCode::BAD_GATEWAY);
        assert_eq!(r.status(), 502);
        assert_eq!(r.headers()[header::SERVER], "awselb/2.0");
        assert!(std::str::from_utf8(r.body()).unwrap().contains("<h1>502 Bad Gateway</h1>"));
    }
}
