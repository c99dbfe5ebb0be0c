//! Rule matching: ELB's wildcard patterns and every rule condition, evaluated against a view
//! of one request. Pure: no I/O, no clock; the HTTP listener compiles its rules once per
//! apply and asks [`CompiledConditions::matches`] per request.

use std::net::IpAddr;

use http::HeaderName;
use ipnet::IpNet;

use crate::config::Condition;

/// ELB's wildcard match: `*` matches any run of characters (also none), `?` exactly one.
/// With `fold`, ASCII letters compare case-insensitively.
pub fn wildcard(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| if fold { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and which text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The parts of a request the conditions look at.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The path without the query.
    pub path: &'a str,
    /// The raw query (after `?`), if any.
    pub query: Option<&'a str>,
    /// The `Host` header (or the URI's authority) as sent, port included.
    pub host: Option<&'a str>,
    pub headers: Headers<'a>,
    pub source: IpAddr,
}

/// A request's header lines as they came, names in any case.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a>(pub &'a [httparse::Header<'a>]);

impl<'a> Headers<'a> {
    /// The values of every line named `name` (ASCII case-insensitive), in order.
    pub fn values(self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.0.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }
}

/// The host without its port: `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

/// A condition prepared for matching: header names parsed, nothing left to allocate per request.
#[derive(Debug, Clone)]
enum Compiled {
    Path(Vec<String>),
    Host(Vec<String>),
    /// An invalid header name never matches.
    Header(Option<String>, Vec<String>),
    Method(Vec<String>),
    Query(Vec<(Option<String>, String)>),
    Source(Vec<IpNet>),
}

/// Every condition of one rule, all of which must match.
#[derive(Debug, Clone, Default)]
pub struct CompiledConditions(Vec<Compiled>);

impl CompiledConditions {
    pub fn new(conditions: &[Condition]) -> Self {
        Self(conditions.iter().map(compile).collect())
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.0.iter().all(|c| condition_matches(c, req))
    }
}

fn compile(condition: &Condition) -> Compiled {
    match condition {
        Condition::PathPattern(v) => Compiled::Path(v.clone()),
        Condition::HostHeader(v) => Compiled::Host(v.clone()),
        Condition::HttpHeader { name, values } => Compiled::Header(
            HeaderName::from_bytes(name.as_bytes()).ok().map(|n| n.as_str().to_string()),
            values.clone(),
        ),
        Condition::HttpRequestMethod(v) => Compiled::Method(v.clone()),
        Condition::QueryString(v) => Compiled::Query(v.clone()),
        Condition::SourceIp(v) => Compiled::Source(v.clone()),
    }
}

fn condition_matches(c: &Compiled, req: &RequestView<'_>) -> bool {
    match c {
        Compiled::Path(patterns) => patterns.iter().any(|p| wildcard(p, req.path, false)),
        Compiled::Host(patterns) => {
            let Some(host) = req.host.map(host_without_port) else { return false };
            patterns.iter().any(|p| wildcard(p, host, true))
        }
        Compiled::Header(name, patterns) => {
            let Some(name) = name else { return false };
            req.headers.values(name).any(|value| {
                let value = String::from_utf8_lossy(value);
                patterns.iter().any(|p| wildcard(p, &value, true))
            })
        }
        Compiled::Method(methods) => methods.iter().any(|m| m == req.method),
        Compiled::Query(pairs) => query_matches(pairs, req.query.unwrap_or("")),
        Compiled::Source(nets) => {
            let ip = canonical(req.source);
            nets.iter().any(|n| n.contains(&ip))
        }
    }
}

/// An IPv4 client seen on a dual-stack socket (`::ffff:a.b.c.d`) matches IPv4 ranges.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Any (key, value) condition pair matches any parameter of the query; keys and values are
/// percent-decoded first and compared case-insensitively.
fn query_matches(pairs: &[(Option<String>, String)], query: &str) -> bool {
    query.split('&').filter(|p| !p.is_empty()).any(|param| {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        pairs
            .iter()
            .any(|(key, value)| key.as_ref().is_none_or(|key| wildcard(key, &k, true)) && wildcard(value, &v, true))
    })
}

/// Decodes `%XX` escapes (invalid ones stay as they are) and `+` as a space.
pub fn percent_decode(s: &str) -> String {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn view<'a>(
        headers: &'a [httparse::Header<'a>],
        path: &'a str,
        query: Option<&'a str>,
        host: Option<&'a str>,
    ) -> RequestView<'a> {
        RequestView { method: "GET", path, query, host, headers: Headers(headers), source: "10.0.0.7".parse().unwrap() }
    }

    fn one(c: Condition, req: &RequestView<'_>) -> bool {
        CompiledConditions::new(&[c]).matches(req)
    }

    #[test]
    fn wildcards_follow_elb() {
        assert!(wildcard("/api/*", "/api/v1/users", false));
        assert!(wildcard("/api/*", "/api/", false));
        assert!(!wildcard("/api/*", "/api", false));
        assert!(wildcard("/img/?.png", "/img/a.png", false));
        assert!(!wildcard("/img/?.png", "/img/ab.png", false));
        assert!(wildcard("*.example.com", "www.example.com", true));
        assert!(!wildcard("*.example.com", "example.com", true));
        assert!(wildcard("*", "", false));
        assert!(wildcard("a*b*c", "axxbyyc", false));
        assert!(!wildcard("a*b*c", "axxbyy", false));
        assert!(!wildcard("/API/*", "/api/x", false), "paths are case-sensitive");
        assert!(wildcard("WWW.Example.COM", "www.example.com", true));
    }

    #[test]
    fn host_loses_its_port_and_case() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        let h = [];
        let req = view(&h, "/", None, Some("API.Example.com:8080"));
        assert!(one(Condition::HostHeader(vec!["api.example.com".into()]), &req));
        assert!(one(Condition::HostHeader(vec!["*.EXAMPLE.com".into()]), &req));
        assert!(!one(Condition::HostHeader(vec!["example.com".into()]), &req));
        let no_host = view(&h, "/", None, None);
        assert!(!one(Condition::HostHeader(vec!["*".into()]), &no_host));
    }

    #[test]
    fn path_is_case_sensitive_and_excludes_query() {
        let h = [];
        let req = view(&h, "/Images/cat.png", Some("size=big"), None);
        assert!(one(Condition::PathPattern(vec!["/Images/*".into()]), &req));
        assert!(!one(Condition::PathPattern(vec!["/images/*".into()]), &req));
        assert!(!one(Condition::PathPattern(vec!["*big".into()]), &req));
        assert!(one(Condition::PathPattern(vec!["/x".into(), "*.png".into()]), &req), "any value matches");
    }

    #[test]
    fn headers_match_any_value_case_insensitively() {
        let h =
            [httparse::Header { name: "X-Env", value: b"Staging" }, httparse::Header { name: "x-env", value: b"blue" }];
        let req = view(&h, "/", None, None);
        let c = |name: &str, v: &str| Condition::HttpHeader { name: name.into(), values: vec![v.into()] };
        assert!(one(c("X-Env", "staging"), &req));
        assert!(one(c("x-env", "BL*"), &req));
        assert!(!one(c("x-env", "green"), &req));
        assert!(!one(c("x-other", "*"), &req));
        assert!(!one(c("bad name", "*"), &req));
    }

    #[test]
    fn method_is_exact() {
        let h = [];
        let req = view(&h, "/", None, None);
        assert!(one(Condition::HttpRequestMethod(vec!["POST".into(), "GET".into()]), &req));
        assert!(!one(Condition::HttpRequestMethod(vec!["get".into()]), &req));
    }

    #[test]
    fn query_string_pairs() {
        let h = [];
        let req = view(&h, "/", Some("version=V2&debug&name=a%20b"), None);
        let q = |k: Option<&str>, v: &str| Condition::QueryString(vec![(k.map(String::from), v.into())]);
        assert!(one(q(Some("version"), "v2"), &req));
        assert!(one(q(Some("VERSION"), "v*"), &req));
        assert!(one(q(None, "v2"), &req), "no key: any key");
        assert!(one(q(Some("name"), "a b"), &req), "values are percent-decoded");
        assert!(one(q(Some("debug"), ""), &req));
        assert!(!one(q(Some("version"), "v1"), &req));
        let empty = view(&h, "/", None, None);
        assert!(!one(q(None, "*"), &empty));
    }

    #[test]
    fn source_ip_cidrs() {
        let h = [];
        let mut req = view(&h, "/", None, None);
        let c = |s: &str| Condition::SourceIp(vec![s.parse().unwrap()]);
        assert!(one(c("10.0.0.0/24"), &req));
        assert!(!one(c("10.0.1.0/24"), &req));
        req.source = "::ffff:10.0.0.7".parse().unwrap();
        assert!(one(c("10.0.0.0/8"), &req), "a mapped IPv4 client matches IPv4 ranges");
        req.source = "2001:db8::1".parse().unwrap();
        assert!(one(c("2001:db8::/32"), &req));
    }

    #[test]
    fn all_conditions_must_match_and_none_means_always() {
        let h = [];
        let req = view(&h, "/api/x", None, Some("a.example.com"));
        let both = CompiledConditions::new(&[
            Condition::PathPattern(vec!["/api/*".into()]),
            Condition::HostHeader(vec!["b.example.com".into()]),
        ]);
        assert!(!both.matches(&req));
        assert!(CompiledConditions::new(&[]).matches(&req));
    }

    /// A slow but obviously right matcher to compare against.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn wildcard_agrees_with_reference(p in "[ab*?]{0,8}", t in "[ab]{0,10}") {
            prop_assert_eq!(wildcard(&p, &t, false), reference(p.as_bytes(), t.as_bytes()));
        }

        #[test]
        fn a_text_matches_itself_and_star(t in "[a-zA-Z0-9/._-]{0,20}") {
            prop_assert!(wildcard(&t, &t, false));
            prop_assert!(wildcard("*", &t, false));
            prop_assert!(wildcard(&t.to_uppercase(), &t, true));
        }

        #[test]
        fn percent_decode_roundtrips_plain_text(t in "[a-zA-Z0-9._-]{0,20}") {
            prop_assert_eq!(percent_decode(&t), t);
        }
    }
}
