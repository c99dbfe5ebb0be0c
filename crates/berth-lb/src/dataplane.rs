//! The data plane as the rest of Berth sees it: apply a whole configuration (bind new
//! listeners, stop removed ones, swap rules and targets in place, keeping health, in-flight
//! counts and keep-alive pools of unchanged targets), read every target's status and what
//! was counted for metrics, and be told when a target changes.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::affinity::Affinity;
use crate::checker::{self, Checker};
use crate::config::{Config, Listener, Protocol, TargetKey, TargetStatus};
use crate::meters::{GroupCounts, LbCounts, LbMeter};
use crate::routes::{Routes, lookup_in};
use crate::target::{Group, GroupState, HealthUpdate, Notifier, TargetState};
use crate::workers::{self, Workers};
use crate::{http, tcp};

/// Backlog of each listening socket.
const BACKLOG: u32 = 4096;

/// A listener that could not be bound; the rest of the configuration is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener {listener_arn} cannot bind {address}: {message}")]
pub struct ListenerError {
    pub listener_arn: String,
    pub address: SocketAddr,
    pub kind: io::ErrorKind,
    pub message: String,
}

/// Serves every listener of the last applied [`Config`] on its own serving threads (see
/// `workers.rs`); health checks run on the runtime `apply` is called on. Dropping it stops
/// everything; [`DataPlane::shutdown`] stops listeners and checks and waits for the ports
/// to be free.
pub struct DataPlane {
    workers: Workers,
    /// Serialises applies (which await listener tasks while stopping them).
    apply_lock: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
    notifier: Arc<Notifier>,
}

#[derive(Default)]
struct Inner {
    listeners: HashMap<String, Running>,
    groups: BTreeMap<String, Arc<Group>>,
    checkers: HashMap<(String, TargetKey), (Arc<TargetState>, Checker)>,
    /// The counters of every load balancer with a listener, by ARN.
    meters: HashMap<String, Arc<LbMeter>>,
}

/// What the data plane counted since the last [`DataPlane::take_counts`]: by load balancer
/// ARN and by target group ARN (only those with listeners or in use).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub load_balancers: BTreeMap<String, LbCounts>,
    pub target_groups: BTreeMap<String, GroupCounts>,
}

/// A bound listener.
struct Running {
    /// As configured (compared on the next apply).
    address: SocketAddr,
    /// As bound (differs when the configured port is 0).
    bound: SocketAddr,
    protocol: Protocol,
    routes: Arc<ArcSwap<Routes>>,
    /// Tells the accept loop and every open connection to stop.
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl DataPlane {
    /// A data plane with one serving thread per available core.
    pub fn new(placement: Affinity) -> Arc<DataPlane> {
        Self::with_threads(std::thread::available_parallelism().map_or(2, |n| n.get()), placement)
    }

    /// A data plane with `threads` serving threads. Panics if the threads cannot be started
    /// (the process is out of threads or memory).
    pub fn with_threads(threads: usize, placement: Affinity) -> Arc<DataPlane> {
        let workers = Workers::start(threads, placement).expect("starting the load balancer's serving threads");
        Arc::new(DataPlane {
            workers,
            apply_lock: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner::default()),
            notifier: Arc::new(Notifier::new()),
        })
    }

    /// Makes `config` what is served. Returns the listeners that could not be bound.
    pub async fn apply(&self, config: Config) -> Vec<ListenerError> {
        let _serial = self.apply_lock.lock().await;
        let (stopping, starting) = {
            let mut inner = self.lock();
            self.apply_groups(&mut inner, &config);
            plan_listeners(&mut inner, &config)
        };
        for running in stopping {
            stop(running).await;
        }
        let mut errors = Vec::new();
        for listener in starting {
            match self.start(&listener).await {
                Ok(running) => {
                    self.lock().listeners.insert(listener.arn.clone(), running);
                }
                Err(e) => errors.push(ListenerError {
                    listener_arn: listener.arn.clone(),
                    address: listener.address,
                    kind: e.kind(),
                    message: e.to_string(),
                }),
            }
        }
        errors
    }

    /// Every target of every group, with its health and what is in flight to it.
    pub fn statuses(&self) -> Vec<TargetStatus> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (arn, group) in &inner.groups {
            for t in &group.state.load().targets {
                out.push(TargetStatus {
                    target_group_arn: arn.clone(),
                    key: t.key.clone(),
                    health: t.health(),
                    in_flight: t.in_flight(),
                });
            }
        }
        out
    }

    /// What was counted since the last call, and every counter reset.
    pub fn take_counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            load_balancers: inner.meters.iter().map(|(arn, m)| (arn.clone(), m.take())).collect(),
            target_groups: inner.groups.iter().map(|(arn, g)| (arn.clone(), g.meter.take())).collect(),
        }
    }

    /// Bumped whenever a target's health changes, a target starts or stops draining, or a
    /// draining target's in-flight count changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.notifier.subscribe()
    }

    /// The local address of a bound listener (useful when it was bound to port 0).
    pub fn local_addr(&self, listener_arn: &str) -> Option<SocketAddr> {
        self.lock().listeners.get(listener_arn).map(|r| r.bound)
    }

    /// Stops every listener (open connections finish their request in progress, then close)
    /// and every health check.
    pub async fn shutdown(&self) {
        let _serial = self.apply_lock.lock().await;
        let running: Vec<Running> = {
            let mut inner = self.lock();
            inner.checkers.clear();
            inner.groups.clear();
            inner.listeners.drain().map(|(_, r)| r).collect()
        };
        for r in running {
            stop(r).await;
        }
    }

    /// Binds `listener` and starts its accept loop; returns once the socket listens.
    async fn start(&self, listener: &Listener) -> io::Result<Running> {
        let socket = workers::bind(listener.address)?;
        let bound = socket.local_addr()?;
        let (groups, meter) = {
            let mut inner = self.lock();
            (inner.groups.clone(), meter_of(&mut inner.meters, &listener.load_balancer_arn))
        };
        let routes = Arc::new(ArcSwap::from_pointee(Routes::build(listener, bound.port(), &lookup_in(&groups), meter)));
        let (stop, stopped) = watch::channel(false);
        let (ready, is_ready) = oneshot::channel();
        let (serving, dispatch, protocol) = (routes.clone(), self.workers.dispatch().clone(), listener.protocol);
        let accept = self.workers.first().spawn(async move {
            let socket = match socket.listen(BACKLOG) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            match protocol {
                Protocol::Http => http::serve(socket, serving, stopped, dispatch).await,
                Protocol::Tcp => tcp::serve(socket, serving, stopped, dispatch).await,
            }
        });
        let running = Running { address: listener.address, bound, protocol: listener.protocol, routes, stop, accept };
        let outcome = is_ready.await.unwrap_or_else(|_| Err(io::Error::other("the serving thread has stopped")));
        match outcome {
            Ok(()) => Ok(running),
            Err(e) => {
                self::stop(running).await;
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the groups in place: an unchanged target (same key and address) keeps its
    /// state; new targets get a checker; removed ones lose theirs.
    fn apply_groups(&self, inner: &mut Inner, config: &Config) {
        let mut groups = BTreeMap::new();
        let mut checkers = HashMap::new();
        for (arn, tg) in &config.target_groups {
            let previous = inner.groups.get(arn).map(|g| g.state.load_full());
            let targets: Vec<Arc<TargetState>> = tg
                .targets
                .iter()
                .map(|t| {
                    let kept = previous
                        .as_ref()
                        .and_then(|p| p.targets.iter().find(|s| s.key == t.key && s.address == t.address));
                    match kept {
                        Some(s) => {
                            s.set_draining(t.draining);
                            s.clone()
                        }
                        None => Arc::new(TargetState::new(
                            arn,
                            t,
                            tg.health_check.enabled,
                            self.workers.len(),
                            self.notifier.clone(),
                        )),
                    }
                })
                .collect();
            let state = GroupState {
                algorithm: tg.algorithm,
                slow_start: tg.slow_start,
                stickiness: tg.stickiness,
                health_check: tg.health_check.clone(),
                targets,
            };
            for t in &state.targets {
                t.set_slow_start(tg.slow_start);
                t.record(HealthUpdate::Enabled(tg.health_check.enabled), &state);
            }
            let group = match inner.groups.get(arn) {
                Some(g) => {
                    g.state.store(Arc::new(state));
                    g.clone()
                }
                None => Arc::new(Group::new(arn, state)),
            };
            for t in &group.state.load().targets {
                let id = (arn.clone(), t.key.clone());
                let checker = match inner.checkers.remove(&id) {
                    Some((same, checker)) if Arc::ptr_eq(&same, t) => (same, checker),
                    _ => (t.clone(), checker::spawn(&group, t)),
                };
                checkers.insert(id, checker);
            }
            groups.insert(arn.clone(), group);
        }
        inner.groups = groups;
        inner.checkers = checkers;
    }
}

/// Swaps the new rules into the listeners that stay; takes out those to stop (gone, or
/// moved to another address or protocol); returns those to start.
fn plan_listeners(inner: &mut Inner, config: &Config) -> (Vec<Running>, Vec<Listener>) {
    let groups = inner.groups.clone();
    let lookup = lookup_in(&groups);
    inner.meters.retain(|arn, _| config.listeners.iter().any(|l| l.load_balancer_arn == *arn));
    let wanted: HashMap<&str, &Listener> = config.listeners.iter().map(|l| (l.arn.as_str(), l)).collect();
    let moved = |arn: &str, running: &Running| {
        wanted.get(arn).is_none_or(|l| running.address != l.address || running.protocol != l.protocol)
    };
    let gone: Vec<String> =
        inner.listeners.iter().filter(|(arn, r)| moved(arn, r)).map(|(arn, _)| arn.clone()).collect();
    let stopping = gone.iter().filter_map(|arn| inner.listeners.remove(arn)).collect();
    let mut starting = Vec::new();
    for l in &config.listeners {
        match inner.listeners.get(&l.arn) {
            Some(running) => {
                let meter = meter_of(&mut inner.meters, &l.load_balancer_arn);
                running.routes.store(Arc::new(Routes::build(l, running.bound.port(), &lookup, meter)));
            }
            None => starting.push(l.clone()),
        }
    }
    (stopping, starting)
}

/// The counters of a load balancer, made on first use.
fn meter_of(meters: &mut HashMap<String, Arc<LbMeter>>, load_balancer_arn: &str) -> Arc<LbMeter> {
    meters.entry(load_balancer_arn.to_string()).or_default().clone()
}

/// Stops a listener: tells its connections, and waits until its socket is closed.
async fn stop(running: Running) {
    let _ = running.stop.send(true);
    running.accept.abort();
    let _ = running.accept.await;
}
