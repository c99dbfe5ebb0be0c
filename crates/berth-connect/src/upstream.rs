//! One upstream: the endpoints of a Cloud Map service a client alias leads to, the round-robin
//! choice among them, and passive outlier detection. An endpoint whose connections fail
//! `failures_to_eject` times in a row is ejected — left out of the choice — for the base
//! ejection time multiplied by how many times in a row it was ejected (up to the maximum), then
//! tried again. An endpoint is never ejected when that would leave none admitted, and when
//! every endpoint is ejected anyway (all failed at once) the choice falls back to all of them:
//! a proxy that refuses everything helps nobody.
//!
//! Time is passed in, never read, so the rules are tested without waiting.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When an endpoint is ejected and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Failed connections in a row that eject an endpoint.
    pub failures_to_eject: u32,
    /// How long a first ejection lasts; the n-th in a row lasts n times as long.
    pub base: Duration,
    /// The longest an ejection lasts.
    pub max: Duration,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection { failures_to_eject: 5, base: Duration::from_secs(30), max: Duration::from_secs(300) }
    }
}

#[derive(Debug, Clone)]
struct Endpoint {
    address: SocketAddr,
    /// Failed connections since the last success (or the last ejection).
    failures: u32,
    /// Ejections in a row, without a success in between.
    ejections: u32,
    ejected_until: Option<Instant>,
}

impl Endpoint {
    fn new(address: SocketAddr) -> Self {
        Endpoint { address, failures: 0, ejections: 0, ejected_until: None }
    }

    fn admitted(&self, now: Instant) -> bool {
        self.ejected_until.is_none_or(|until| until <= now)
    }
}

#[derive(Debug, Default)]
struct State {
    endpoints: Vec<Endpoint>,
    /// The round-robin position.
    next: usize,
}

/// The endpoints of one upstream, shared by every connection of the proxy.
#[derive(Debug, Default)]
pub struct Upstream {
    state: Mutex<State>,
    policy: Ejection,
}

impl Upstream {
    pub fn new(policy: Ejection) -> Self {
        Upstream { state: Mutex::default(), policy }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the endpoints; those still present keep their failures and ejections.
    pub fn set(&self, addresses: &[SocketAddr]) {
        let mut state = self.state();
        let mut kept = Vec::with_capacity(addresses.len());
        for address in addresses {
            if kept.iter().any(|e: &Endpoint| e.address == *address) {
                continue;
            }
            let old = state.endpoints.iter().find(|e| e.address == *address).cloned();
            kept.push(old.unwrap_or_else(|| Endpoint::new(*address)));
        }
        state.endpoints = kept;
    }

    /// The endpoints, in the order they were set.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.state().endpoints.iter().map(|e| e.address).collect()
    }

    /// The next endpoint in turn among the admitted ones not in `tried`; among all not in
    /// `tried` when none of those is admitted; `None` when every endpoint was tried.
    pub fn pick(&self, now: Instant, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let mut guard = self.state();
        let state = &mut *guard;
        let n = state.endpoints.len();
        let untried = |e: &Endpoint| !tried.contains(&e.address);
        let any_admitted = state.endpoints.iter().any(|e| untried(e) && e.admitted(now));
        for step in 0..n {
            let i = (state.next + step) % n;
            let e = &state.endpoints[i];
            if untried(e) && (!any_admitted || e.admitted(now)) {
                let address = e.address;
                state.next = (i + 1) % n;
                return Some(address);
            }
        }
        None
    }

    /// A connection to `address` was made: its failures and ejections are forgotten.
    pub fn succeeded(&self, address: SocketAddr) {
        let mut state = self.state();
        if let Some(e) = state.endpoints.iter_mut().find(|e| e.address == address) {
            e.failures = 0;
            e.ejections = 0;
        }
    }

    /// A connection to `address` failed; returns whether that ejected it.
    pub fn failed(&self, address: SocketAddr, now: Instant) -> bool {
        let policy = self.policy;
        let mut state = self.state();
        let admitted_others = state.endpoints.iter().filter(|e| e.address != address && e.admitted(now)).count();
        let Some(e) = state.endpoints.iter_mut().find(|e| e.address == address) else { return false };
        e.failures += 1;
        if e.failures < policy.failures_to_eject || !e.admitted(now) || admitted_others == 0 {
            return false;
        }
        e.failures = 0;
        e.ejections += 1;
        e.ejected_until = Some(now + policy.base.saturating_mul(e.ejections).min(policy.max));
        true
    }

    /// How many endpoints are ejected at `now`.
    pub fn ejected(&self, now: Instant) -> usize {
        self.state().endpoints.iter().filter(|e| !e.admitted(now)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n as u8], 80))
    }

    fn upstream(n: u16) -> Upstream {
        let u = Upstream::new(Ejection::default());
        u.set(&(1..=n).map(addr).collect::<Vec<_>>());
        u
    }

    #[test]
    fn endpoints_take_turns() {
        let u = upstream(3);
        let now = Instant::now();
        let picks: Vec<_> = (0..6).map(|_| u.pick(now, &[]).unwrap()).collect();
        assert_eq!(picks, [addr(1), addr(2), addr(3), addr(1), addr(2), addr(3)]);
    }

    #[test]
    fn a_retry_skips_what_was_tried_and_ends_when_all_were() {
        let u = upstream(2);
        let now = Instant::now();
        let first = u.pick(now, &[]).unwrap();
        let second = u.pick(now, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(u.pick(now, &[first, second]), None);
        assert_eq!(Upstream::new(Ejection::default()).pick(now, &[]), None);
    }

    #[test]
    fn failures_in_a_row_eject_for_longer_each_time() {
        let u = upstream(2);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(!u.failed(addr(1), t0));
        }
        assert!(u.failed(addr(1), t0), "the fifth failure in a row ejects");
        assert!((0..4).all(|_| u.pick(t0, &[]) == Some(addr(2))));
        // Back after 30 s; five more failures eject it for 60 s.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(u.ejected(t1), 0);
        for _ in 0..5 {
            u.failed(addr(1), t1);
        }
        assert_eq!(u.ejected(t1 + Duration::from_secs(59)), 1);
        assert_eq!(u.ejected(t1 + Duration::from_secs(60)), 0);
    }

    #[test]
    fn a_success_between_failures_keeps_the_endpoint_in() {
        let u = upstream(2);
        let now = Instant::now();
        for _ in 0..10 {
            u.failed(addr(1), now);
            u.failed(addr(1), now);
            u.succeeded(addr(1));
        }
        assert_eq!(u.ejected(now), 0);
    }

    #[test]
    fn the_last_admitted_endpoint_is_never_ejected() {
        let u = upstream(2);
        let now = Instant::now();
        for _ in 0..5 {
            u.failed(addr(1), now);
        }
        for _ in 0..20 {
            assert!(!u.failed(addr(2), now));
        }
        assert_eq!(u.ejected(now), 1);
        assert_eq!(u.pick(now, &[]), Some(addr(2)));
    }

    #[test]
    fn when_all_are_ejected_the_choice_falls_back_to_all() {
        let u = upstream(2);
        let now = Instant::now();
        for _ in 0..5 {
            u.failed(addr(1), now);
        }
        // addr(2) went away and came back; addr(1) is the only one left, ejected.
        u.set(&[addr(1)]);
        assert_eq!(u.pick(now, &[]), Some(addr(1)));
    }

    #[test]
    fn a_new_set_keeps_the_standing_of_endpoints_still_there() {
        let u = upstream(3);
        let now = Instant::now();
        for _ in 0..5 {
            u.failed(addr(1), now);
        }
        u.set(&[addr(3), addr(1), addr(4), addr(4)]);
        assert_eq!(u.addresses(), [addr(3), addr(1), addr(4)]);
        assert_eq!(u.ejected(now), 1);
        let picks: std::collections::BTreeSet<_> = (0..6).map(|_| u.pick(now, &[]).unwrap()).collect();
        assert_eq!(picks, [addr(3), addr(4)].into());
    }

    #[test]
    fn ejections_are_capped() {
        let u = upstream(2);
        let mut now = Instant::now();
        for _ in 0..20 {
            for _ in 0..5 {
                u.failed(addr(1), now);
            }
            now += Duration::from_secs(300);
            assert_eq!(u.ejected(now), 0, "no ejection outlasts the maximum");
        }
    }
}
