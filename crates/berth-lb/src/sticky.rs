//! ALB's stickiness cookies: `AWSALB` names the target a client sticks to within a group
//! (`lb_cookie`), `AWSALBTG` the target group it sticks to within a weighted forward action.
//! The value carries an id and its expiry time, so an expired cookie is ignored even when a
//! client keeps sending it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use crate::matching::Headers;

pub const TARGET_COOKIE: &str = "AWSALB";
pub const GROUP_COOKIE: &str = "AWSALBTG";

/// The id a still-valid cookie `name` carries, if the request has one.
pub fn read(headers: Headers<'_>, name: &str, now: SystemTime) -> Option<u64> {
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    headers.values("cookie").filter_map(|v| std::str::from_utf8(v).ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if k != name {
            return None;
        }
        let (id, expires) = v.split_once('-')?;
        let expires = u64::from_str_radix(expires, 16).ok()?;
        if expires <= now {
            return None;
        }
        u64::from_str_radix(id, 16).ok()
    })
}

/// The `Set-Cookie` value that makes a client stick to `id` for `duration`.
pub fn set_cookie(name: &str, id: u64, duration: Duration, now: SystemTime) -> HeaderValue {
    let until = now + duration;
    let expires = until.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let value = format!("{name}={id:016x}-{expires:x}; Expires={}; Path=/", httpdate::fmt_http_date(until));
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = set_cookie(TARGET_COOKIE, 0xabcdef, Duration::from_secs(60), now);
        let s = v.to_str().unwrap();
        assert!(s.starts_with("AWSALB=0000000000abcdef-"), "{s}");
        assert!(s.contains("; Expires=") && s.ends_with("; Path=/"));
        let pair = s.split(';').next().unwrap();
        let line = format!("other=1; {pair}; AWSALBTG=zz");
        let lines = [httparse::Header { name: "Cookie", value: line.as_bytes() }];
        let h = Headers(&lines);
        assert_eq!(read(h, TARGET_COOKIE, now), Some(0xabcdef));
        assert_eq!(read(h, GROUP_COOKIE, now), None, "a malformed value is ignored");
        assert_eq!(read(h, TARGET_COOKIE, now + Duration::from_secs(61)), None, "expired");
        assert_eq!(read(Headers(&[]), TARGET_COOKIE, now), None);
    }
}
