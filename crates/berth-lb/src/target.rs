//! The live state of target groups and their targets, kept across applies: each target's
//! health, slow-start ramp, requests in flight and keep-alive connections. Routing reads it
//! through atomics and lock-free snapshots; the checker and `apply` write it.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::balance::{self, Candidate, Eligible, Standing};
use crate::config::{self, Algorithm, Health, HealthCheck, TargetKey};
use crate::health::{Outcome, Tracker};
use crate::meters::GroupMeter;
use crate::pool::Pool;

/// Bumps the counter behind [`crate::DataPlane::changes`].
#[derive(Debug)]
pub struct Notifier(watch::Sender<u64>);

impl Notifier {
    pub fn new() -> Self {
        Self(watch::channel(0).0)
    }
    pub fn bump(&self) {
        self.0.send_modify(|v| *v = v.wrapping_add(1));
    }
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Nanoseconds since a process-wide origin (never 0, so 0 can mean "none").
pub fn now_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// A stable id for cookies: the same group and target give the same id in every process
/// built from the same source.
pub fn cookie_id(parts: &[&str], port: u16) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    parts.hash(&mut h);
    port.hash(&mut h);
    h.finish()
}

const SERVING: u8 = 0;
const NOT_SERVING: u8 = 1;

/// One registered target of one group.
#[derive(Debug)]
pub struct TargetState {
    pub key: TargetKey,
    pub address: SocketAddr,
    /// Names it in the `AWSALB` stickiness cookie.
    pub cookie: u64,
    draining: AtomicBool,
    standing: AtomicU8,
    /// When its slow-start ramp began (`now_nanos`), 0 when it is not ramping.
    ramp_since: AtomicU64,
    /// The group's slow-start duration in nanoseconds (set on every apply).
    slow_start: AtomicU64,
    in_flight: AtomicU32,
    tracker: Mutex<Tracker>,
    pub pool: Pool,
    notifier: Arc<Notifier>,
}

impl TargetState {
    pub fn new(
        group_arn: &str,
        target: &config::Target,
        checks: bool,
        threads: usize,
        notifier: Arc<Notifier>,
    ) -> Self {
        let tracker = Tracker::new(checks);
        Self {
            cookie: cookie_id(&[group_arn, &target.key.id], target.key.port),
            key: target.key.clone(),
            address: target.address,
            draining: AtomicBool::new(target.draining),
            standing: AtomicU8::new(standing_code(tracker.health())),
            ramp_since: AtomicU64::new(0),
            slow_start: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            tracker: Mutex::new(tracker),
            pool: Pool::new(target.address, threads),
            notifier,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn set_draining(&self, draining: bool) {
        if self.draining.swap(draining, Ordering::Relaxed) != draining {
            self.notifier.bump();
        }
    }

    pub fn health(&self) -> Health {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).health().clone()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one request or connection to it until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if self.is_draining() {
            self.notifier.bump();
        }
        InFlight(self.clone())
    }

    /// Records a check result (or a change of checks on/off) and publishes any change of
    /// health. A target that becomes healthy ramps up when the group has slow start and
    /// another healthy target at full share.
    pub fn record(&self, update: HealthUpdate, group: &GroupState) {
        let mut tracker = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match update {
            HealthUpdate::Enabled(on) => tracker.set_enabled(on),
            HealthUpdate::Result(outcome) => {
                let hc = &group.health_check;
                tracker.observe(outcome, hc.healthy_threshold, hc.unhealthy_threshold)
            }
        };
        if !changed {
            return;
        }
        let code = standing_code(tracker.health());
        let ramp = tracker.health() == &Health::Healthy
            && !group.slow_start.is_zero()
            && group
                .targets
                .iter()
                .any(|t| !std::ptr::eq(Arc::as_ptr(t), self) && t.standing() == Standing::Serving && t.share() >= 1.0);
        drop(tracker);
        self.ramp_since.store(if ramp { now_nanos() } else { 0 }, Ordering::Relaxed);
        self.standing.store(code, Ordering::Relaxed);
        self.notifier.bump();
    }

    pub fn set_slow_start(&self, duration: Duration) {
        self.slow_start.store(duration.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Its share of traffic: below 1 while it ramps up in slow start.
    pub fn share(&self) -> f64 {
        let since = self.ramp_since.load(Ordering::Relaxed);
        if since == 0 {
            return 1.0;
        }
        let elapsed = Duration::from_nanos(now_nanos().saturating_sub(since));
        let share = balance::slow_start_share(elapsed, Duration::from_nanos(self.slow_start.load(Ordering::Relaxed)));
        if share >= 1.0 {
            self.ramp_since.store(0, Ordering::Relaxed);
        }
        share
    }
}

fn standing_code(health: &Health) -> u8 {
    match health {
        Health::Healthy | Health::Unchecked => SERVING,
        Health::Initial | Health::Unhealthy(_) => NOT_SERVING,
    }
}

/// What the checker tells a target.
pub enum HealthUpdate {
    Enabled(bool),
    Result(Outcome),
}

/// A request or connection in progress to a target.
#[derive(Debug)]
pub struct InFlight(Arc<TargetState>);

impl InFlight {
    pub fn target(&self) -> &Arc<TargetState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.0.is_draining() {
            self.0.notifier.bump();
        }
    }
}

/// A target group's settings and targets as of the last apply.
#[derive(Debug)]
pub struct GroupState {
    pub algorithm: Algorithm,
    pub slow_start: Duration,
    pub stickiness: Option<Duration>,
    pub health_check: HealthCheck,
    pub targets: Vec<Arc<TargetState>>,
}

/// A target group as routing sees it: its current state plus the round-robin counter.
#[derive(Debug)]
pub struct Group {
    /// Names it in the `AWSALBTG` stickiness cookie.
    pub cookie: u64,
    pub state: ArcSwap<GroupState>,
    counter: AtomicUsize,
    /// What its targets were sent and answered (CloudWatch metrics).
    pub meter: GroupMeter,
}

impl Candidate for Arc<TargetState> {
    fn standing(&self) -> Standing {
        TargetState::standing(self)
    }
    fn outstanding(&self) -> u32 {
        self.in_flight()
    }
    fn share(&self) -> f64 {
        TargetState::share(self)
    }
}

impl TargetState {
    fn standing(&self) -> Standing {
        if self.is_draining() {
            Standing::Draining
        } else if self.standing.load(Ordering::Relaxed) == SERVING {
            Standing::Serving
        } else {
            Standing::NotServing
        }
    }
}

/// Why a group could not give a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTarget {
    /// No target is registered (or every one is draining): ALB's 503.
    NoneRegistered,
}

impl Group {
    pub fn new(arn: &str, state: GroupState) -> Self {
        Self {
            cookie: cookie_id(&[arn], 0),
            state: ArcSwap::from_pointee(state),
            counter: AtomicUsize::new(0),
            meter: GroupMeter::default(),
        }
    }

    /// A group the configuration does not have: no targets, so ALB's 503.
    pub fn empty(arn: &str) -> Self {
        let health_check = HealthCheck { enabled: false, ..HealthCheck::default() };
        let state = GroupState {
            algorithm: Algorithm::RoundRobin,
            slow_start: Duration::ZERO,
            stickiness: None,
            health_check,
            targets: Vec::new(),
        };
        Self::new(arn, state)
    }

    /// Picks the target for a new request or connection: the one `prefer` names (a
    /// stickiness cookie's, a source address's) when it may take traffic now, else by the
    /// group's algorithm.
    pub fn pick(&self, prefer: impl Fn(&TargetState, usize) -> bool) -> Result<Arc<TargetState>, NoTarget> {
        let state = self.state.load();
        let targets = &state.targets;
        let eligible = Eligible::of(targets);
        if let Some(t) = targets.iter().enumerate().find(|(i, t)| prefer(t, *i) && eligible.admits(t.standing())) {
            return Ok(t.1.clone());
        }
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        let pick = match state.algorithm {
            Algorithm::RoundRobin => balance::round_robin(targets, eligible, counter, fastrand::f64),
            Algorithm::LeastOutstandingRequests => balance::least_outstanding(targets, eligible, counter),
        };
        pick.map(|i| targets[i].clone()).ok_or(NoTarget::NoneRegistered)
    }

    /// Picks by a hash (NLB's source-address stickiness): the same hash gives the same
    /// target while the set of eligible targets stays the same.
    pub fn pick_by_hash(&self, hash: u64) -> Result<Arc<TargetState>, NoTarget> {
        let state = self.state.load();
        let eligible = Eligible::of(&state.targets);
        let mut admitted = state.targets.iter().filter(|t| eligible.admits(t.standing()));
        let n = admitted.clone().count() as u64;
        if n == 0 {
            return Err(NoTarget::NoneRegistered);
        }
        admitted.nth((hash % n) as usize).cloned().ok_or(NoTarget::NoneRegistered)
    }
}
