//! Host ports for published port ranges (`containerPortRange` in bridge mode): a run of
//! consecutive ports of the kernel's ephemeral range that nothing listens on, as the ECS agent
//! finds one. Runs handed out lately are remembered for a while, so two containers created
//! at the same moment never get the same run before their runtime binds it.

use std::net::{TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a run handed out stays off limits (the runtime binds it well before).
const HELD: Duration = Duration::from_secs(120);
/// Where the ephemeral range is when the kernel does not say (Linux's default).
const DEFAULT_RANGE: RangeInclusive<u16> = 32768..=60999;

static GIVEN: Mutex<Vec<(Instant, RangeInclusive<u16>)>> = Mutex::new(Vec::new());

/// The kernel's ephemeral port range.
fn ephemeral() -> RangeInclusive<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) if a < b => a..=b,
        _ => DEFAULT_RANGE,
    }
}

/// Whether every port of `run` can be bound now for `udp` or TCP, on all IPv4 addresses.
fn free(run: &RangeInclusive<u16>, udp: bool) -> bool {
    let mut held = Vec::new();
    for port in run.clone() {
        let bound = if udp {
            UdpSocket::bind(("0.0.0.0", port)).map(|s| held.push(Box::new(s) as Box<dyn std::any::Any>))
        } else {
            TcpListener::bind(("0.0.0.0", port)).map(|l| held.push(Box::new(l) as Box<dyn std::any::Any>))
        };
        if bound.is_err() {
            return false;
        }
    }
    true
}

/// The first port of a free run of `len` host ports for `udp` or TCP.
pub fn free_run(len: u16, udp: bool) -> Result<u16, String> {
    let range = ephemeral();
    let (low, high) = (*range.start(), *range.end());
    if len == 0 || u32::from(len) > u32::from(high - low) + 1 {
        return Err(format!("no run of {len} ports fits the ephemeral range {low}-{high}"));
    }
    let starts = u32::from(high - low) + 2 - u32::from(len);
    // Start the search somewhere different each time, as the kernel does for single ports.
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let offset = clock.subsec_nanos() ^ std::process::id();
    let mut given = GIVEN.lock().expect("port runs lock");
    given.retain(|(at, _)| at.elapsed() < HELD);
    for n in 0..starts {
        let first = low + ((offset.wrapping_add(n)) % starts) as u16;
        let run = first..=first + (len - 1);
        let overlaps = given.iter().any(|(_, g)| g.start() <= run.end() && run.start() <= g.end());
        if !overlaps && free(&run, udp) {
            given.push((Instant::now(), run));
            return Ok(first);
        }
    }
    Err(format!("no run of {len} free ports in the ephemeral range {low}-{high}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_free_and_never_handed_out_twice() {
        let a = free_run(20, false).unwrap();
        let b = free_run(20, false).unwrap();
        assert!(a + 19 < b || b + 19 < a, "{a} and {b} overlap");
        let range = ephemeral();
        assert!(range.contains(&a) && range.contains(&(a + 19)));
        // A port someone listens on is never part of a run.
        let taken = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(!free(&(port..=port), false));
        assert!(free_run(u16::MAX, false).is_err());
        assert!(free_run(0, true).is_err());
    }
}
