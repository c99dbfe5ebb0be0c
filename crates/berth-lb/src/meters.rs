//! What the data plane counts for CloudWatch's load balancer metrics: per load balancer the
//! requests it answered itself (ALB's `HTTPCode_ELB_*`, fixed responses, redirects) and the
//! connections it accepted; per target group the requests sent to its targets, their answers
//! by status class, their response time and the connections to them that failed. Counting is
//! a relaxed atomic add on the request path; [`crate::DataPlane::take_counts`] reads and
//! resets every counter, so each read is what happened since the last one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// The least value seen since the last take (`u64::MAX` when none).
#[derive(Debug)]
struct Least(AtomicU64);

impl Default for Least {
    fn default() -> Self {
        Least(AtomicU64::new(u64::MAX))
    }
}

impl Least {
    fn see(&self, v: u64) {
        self.0.fetch_min(v, Ordering::Relaxed);
    }
    fn take(&self) -> u64 {
        self.0.swap(u64::MAX, Ordering::Relaxed)
    }
}

/// The counters of one load balancer (all its listeners).
#[derive(Debug, Default)]
pub struct LbMeter {
    connections: Counter,
    elb: [Counter; 3],
    elb_502: Counter,
    elb_503: Counter,
    elb_504: Counter,
    fixed: Counter,
    redirects: Counter,
}

/// What one load balancer counted over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbCounts {
    /// Client connections accepted (ALB `NewConnectionCount`, NLB `NewFlowCount`).
    pub connections: u64,
    /// Answers the load balancer made itself, by class: 3XX, 4XX, 5XX (`HTTPCode_ELB_*`).
    pub elb_3xx: u64,
    pub elb_4xx: u64,
    pub elb_5xx: u64,
    pub elb_502: u64,
    pub elb_503: u64,
    pub elb_504: u64,
    /// Fixed-response actions (`HTTP_Fixed_Response_Count`).
    pub fixed: u64,
    /// Redirect actions (`HTTP_Redirect_Count`).
    pub redirects: u64,
}

impl LbMeter {
    pub fn connection(&self) {
        self.connections.add(1);
    }

    /// An answer of the load balancer's own: an error page, or a redirect.
    pub fn elb_answer(&self, status: u16) {
        if let Some(class) = (status / 100).checked_sub(3).filter(|c| *c < 3) {
            self.elb[usize::from(class)].add(1);
        }
        match status {
            502 => self.elb_502.add(1),
            503 => self.elb_503.add(1),
            504 => self.elb_504.add(1),
            _ => {}
        }
    }

    pub fn fixed_response(&self) {
        self.fixed.add(1);
    }

    pub fn redirect(&self, status: u16) {
        self.redirects.add(1);
        self.elb_answer(status);
    }

    pub fn take(&self) -> LbCounts {
        LbCounts {
            connections: self.connections.take(),
            elb_3xx: self.elb[0].take(),
            elb_4xx: self.elb[1].take(),
            elb_5xx: self.elb[2].take(),
            elb_502: self.elb_502.take(),
            elb_503: self.elb_503.take(),
            elb_504: self.elb_504.take(),
            fixed: self.fixed.take(),
            redirects: self.redirects.take(),
        }
    }
}

/// The counters of one target group.
#[derive(Debug, Default)]
pub struct GroupMeter {
    requests: Counter,
    target: [Counter; 4],
    responses: Counter,
    response_micros: Counter,
    fastest: Least,
    slowest: AtomicU64,
    connection_errors: Counter,
}

/// What one target group counted over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Requests (HTTP) or connections (TCP) sent to one of its targets (`RequestCount`).
    pub requests: u64,
    /// Targets' answers by class: 2XX, 3XX, 4XX, 5XX (`HTTPCode_Target_*`).
    pub target_2xx: u64,
    pub target_3xx: u64,
    pub target_4xx: u64,
    pub target_5xx: u64,
    /// Answers timed, their time summed, the fastest and the slowest (`TargetResponseTime`:
    /// request sent → headers back); the extremes are 0 when nothing was timed.
    pub responses: u64,
    pub response_micros: u64,
    pub fastest_micros: u64,
    pub slowest_micros: u64,
    /// Connections to its targets that failed (`TargetConnectionErrorCount`).
    pub connection_errors: u64,
}

impl GroupMeter {
    /// A request (or connection) goes to one of the group's targets.
    pub fn request(&self) {
        self.requests.add(1);
    }

    /// A target answered with `status` after `took`.
    pub fn answered(&self, status: u16, took: Duration) {
        if let Some(class) = (status / 100).checked_sub(2).filter(|c| *c < 4) {
            self.target[usize::from(class)].add(1);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.responses.add(1);
        self.response_micros.add(micros);
        self.fastest.see(micros);
        self.slowest.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn connection_failed(&self) {
        self.connection_errors.add(1);
    }

    pub fn take(&self) -> GroupCounts {
        GroupCounts {
            requests: self.requests.take(),
            target_2xx: self.target[0].take(),
            target_3xx: self.target[1].take(),
            target_4xx: self.target[2].take(),
            target_5xx: self.target[3].take(),
            responses: self.responses.take(),
            response_micros: self.response_micros.take(),
            fastest_micros: Some(self.fastest.take()).filter(|m| *m != u64::MAX).unwrap_or(0),
            slowest_micros: self.slowest.swap(0, Ordering::Relaxed),
            connection_errors: self.connection_errors.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_by_class_and_a_take_starts_again() {
        let lb = LbMeter::default();
        for status in [404, 502, 503, 503, 504, 200, 600] {
            lb.elb_answer(status);
        }
        lb.redirect(301);
        lb.fixed_response();
        lb.connection();
        let counts = lb.take();
        assert_eq!(
            counts,
            LbCounts {
                connections: 1,
                elb_3xx: 1,
                elb_4xx: 1,
                elb_5xx: 4,
                elb_502: 1,
                elb_503: 2,
                elb_504: 1,
                fixed: 1,
                redirects: 1
            }
        );
        assert_eq!(lb.take(), LbCounts::default());

        let g = GroupMeter::default();
        g.request();
        g.request();
        g.answered(200, Duration::from_millis(3));
        g.answered(503, Duration::from_millis(5));
        g.answered(101, Duration::from_millis(1));
        g.connection_failed();
        let counts = g.take();
        assert_eq!((counts.requests, counts.target_2xx, counts.target_5xx, counts.target_3xx), (2, 1, 1, 0));
        assert_eq!((counts.responses, counts.response_micros, counts.connection_errors), (3, 9000, 1));
        assert_eq!((counts.fastest_micros, counts.slowest_micros), (1000, 5000));
        assert_eq!(g.take(), GroupCounts::default());
    }
}
