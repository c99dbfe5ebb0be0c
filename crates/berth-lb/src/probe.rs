//! One health check against one target: a TCP connect, or an HTTP `GET` of the check path
//! whose status must fall in the matcher's ranges; all within the check's timeout. Maps
//! what went wrong to ELB's reasons.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Failure, HealthCheck, Protocol};
use crate::health::Outcome;

/// The `User-Agent` ELB's health checker sends.
const USER_AGENT: &str = "ELB-HealthChecker/2.0";
/// How much of an answer is read looking for the status line.
const MAX_HEAD: usize = 1024;

/// Runs one check of `check` against a target at `address` (the check's own port if it has one).
pub async fn probe(check: &HealthCheck, address: SocketAddr) -> Outcome {
    let addr = SocketAddr::new(address.ip(), check.port.unwrap_or(address.port()));
    let attempt = async {
        match check.protocol {
            Protocol::Tcp => {
                TcpStream::connect(addr).await.map(|_| Outcome::Success).unwrap_or(Outcome::Failure(Failure::Failed))
            }
            Protocol::Http => http_check(addr, &check.path, &check.matcher).await,
        }
    };
    tokio::time::timeout(check.timeout, attempt).await.unwrap_or(Outcome::Failure(Failure::Timeout))
}

async fn http_check(addr: SocketAddr, path: &str, matcher: &[(u16, u16)]) -> Outcome {
    let failed = Outcome::Failure(Failure::Failed);
    let Ok(mut stream) = TcpStream::connect(addr).await else { return failed };
    let path = if path.starts_with('/') { path } else { "/" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return failed;
    }
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    loop {
        if let Some(status) = status_code(&head) {
            let ok = matcher.iter().any(|&(lo, hi)| (lo..=hi).contains(&status));
            return if ok { Outcome::Success } else { Outcome::Failure(Failure::ResponseCode(status)) };
        }
        if head.contains(&b'\n') || head.len() >= MAX_HEAD {
            return failed; // a first line that is not an HTTP status line
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return failed,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status of a complete `HTTP/1.x NNN ...` first line.
fn status_code(head: &[u8]) -> Option<u16> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end]).ok()?;
    let mut parts = line.trim_end_matches('\r').splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// How long to wait before a target's first check, so that the checks of many targets
/// spread over the interval instead of arriving together.
pub fn first_delay(interval: Duration) -> Duration {
    interval.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.1 200 OK"), None, "incomplete");
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK\r\n"), None);
    }
}
