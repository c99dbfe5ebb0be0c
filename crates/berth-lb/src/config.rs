//! What the control plane tells the data plane: every listener to serve with its rules, and
//! every target group those rules forward to with its targets and settings. Plain data; the
//! control plane builds it from its records (ELB's defaults already filled in), the data
//! plane applies a whole new one at a time, keeping what did not change (open connections,
//! health history, keep-alive pools) across applies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Everything the data plane serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Every listener of every active load balancer.
    pub listeners: Vec<Listener>,
    /// Target groups by ARN: those the listeners forward to (others need no health checks).
    pub target_groups: BTreeMap<String, TargetGroup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// HTTP/1.1 (application load balancers; target groups and health checks).
    Http,
    /// Plain TCP proxying (network load balancers; target groups and health checks).
    Tcp,
}

/// One listener: a port on the load balancer's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    /// The address and port to bind.
    pub address: SocketAddr,
    pub protocol: Protocol,
    /// Seconds an idle client connection is kept (ALB attribute `idle_timeout.timeout_seconds`,
    /// default 60; NLB TCP: 350).
    pub idle_timeout: Duration,
    /// Rules in evaluation order: ascending priority, the default rule (no conditions) last.
    /// A TCP listener has only its default rule, forwarding to one group.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    /// Every condition must match (each condition matches when any of its values does).
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// ELB's rule conditions. Patterns use ELB's wildcards: `*` (any run) and `?` (one char).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// The request path (case-sensitive), without the query.
    PathPattern(Vec<String>),
    /// The `Host` header without its port (case-insensitive).
    HostHeader(Vec<String>),
    /// A header by name (case-insensitive name and values).
    HttpHeader { name: String, values: Vec<String> },
    /// The method, exact and case-sensitive.
    HttpRequestMethod(Vec<String>),
    /// Query parameters: a key (None: any key) and a value pattern (case-insensitive).
    QueryString(Vec<(Option<String>, String)>),
    /// The client's source address.
    SourceIp(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Forward to one of several target groups, chosen by weight (a weight of 0 gets nothing).
    Forward {
        groups: Vec<WeightedGroup>,
        /// Group-level stickiness: a client keeps its group for this long (ALB's
        /// `AWSALBTG` cookie). None: off.
        stickiness: Option<Duration>,
    },
    FixedResponse {
        status: u16,
        content_type: Option<String>,
        body: Option<String>,
    },
    /// ELB's redirect: each part may use `#{protocol}`, `#{host}`, `#{port}`, `#{path}`
    /// (path without its leading slash in the template's own `/`), `#{query}`.
    Redirect {
        protocol: String,
        host: String,
        port: String,
        path: String,
        query: String,
        /// 301 or 302.
        status: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedGroup {
    pub target_group_arn: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

/// One target group: its targets and how they are balanced and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub protocol: Protocol,
    pub algorithm: Algorithm,
    /// A new healthy target's share ramps up linearly over this long (0: off).
    pub slow_start: Duration,
    /// Target stickiness (`lb_cookie`, ALB's `AWSALB` cookie) for this long; None: off.
    pub stickiness: Option<Duration>,
    pub health_check: HealthCheck,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// When off, every target counts as healthy (reported as unavailable,
    /// `Target.HealthCheckDisabled`, by the control plane).
    pub enabled: bool,
    pub protocol: Protocol,
    /// None: the target's own port (`traffic-port`).
    pub port: Option<u16>,
    /// HTTP checks: the path (with query) to GET.
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that make a target healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a target unhealthy.
    pub unhealthy_threshold: u32,
    /// HTTP checks: the status codes that count as success, as inclusive ranges.
    pub matcher: Vec<(u16, u16)>,
}

impl Default for HealthCheck {
    /// ELB's defaults for an HTTP group: `GET /` on the traffic port every 30 s, 5 s timeout,
    /// healthy after 5 successes, unhealthy after 2 failures, 200 only.
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            protocol: Protocol::Http,
            port: None,
            path: "/".into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: vec![(200, 200)],
        }
    }
}

/// A registered target: where its traffic goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The key the control plane and health reports name it by.
    pub key: TargetKey,
    /// Where requests and health checks go.
    pub address: SocketAddr,
    /// Draining targets get no new requests or connections; what is in flight runs on until
    /// the control plane removes the target (after the deregistration delay).
    pub draining: bool,
}

/// A target as ELB names it: its id (instance id or IP address) and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    pub id: String,
    pub port: u16,
}

/// What the data plane observed of one target, for the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub target_group_arn: String,
    pub key: TargetKey,
    pub health: Health,
    /// Requests (HTTP) or connections (TCP) in progress to it.
    pub in_flight: u32,
}

/// A target's health as its checks found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// Not yet enough checks either way (ELB `initial`, `Elb.InitialHealthChecking`).
    Initial,
    Healthy,
    Unhealthy(Failure),
    /// Health checks are off for its group.
    Unchecked,
}

/// Why a target is unhealthy, with ELB's reason codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// `Target.ResponseCodeMismatch`: the check answered with this status.
    ResponseCode(u16),
    /// `Target.Timeout`: no answer within the timeout.
    Timeout,
    /// `Target.FailedHealthChecks`: the connection failed or the answer was not HTTP.
    Failed,
}
