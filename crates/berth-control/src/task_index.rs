//! An in-memory index of every task, kept current by one store watch: which tasks each
//! container instance holds (what its agent's assignment poll answers), which tasks each
//! group (`service:NAME`) has in a cluster (what a scheduler pass observes), which groups
//! run on each instance (what placement weighs), and a wake-up per instance for the changes
//! its agent acts on (not the echo of the agent's own reports). Without it
//! every poll and every placement read and decoded the whole cluster: with 5,000 instances
//! and 100,000 tasks that is the whole cost of a rollout.
//!
//! It keeps a small [`Summary`] of each task, not the record; a reader that needs the record
//! reads it by key. It starts on first use (one listing, then a watch over the whole store
//! from the listing's revision, taken a revision at a time) and every server keeps its own.
//! [`TaskIndex::reach`] waits until the index shows everything the store had committed at a
//! revision, so a pass or a placement that reads the store's revision first and then the
//! index sees at least what it would have read from the store itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use berth_model::health::Health;
use berth_model::task::{DesiredStatus, TaskStatus};
use berth_store::{Event, EventKind, KeyRange, Store, StoreError};
use tokio::sync::{OnceCell, watch};

use crate::error::{ControlError, ControlResult};
use crate::records::{Host, IndexTask, TaskRecord};

/// What the index keeps of one task.
#[derive(Debug, Clone)]
pub struct Summary {
    pub key: Arc<str>,
    /// The store revision of its last change.
    pub revision: u64,
    pub region: String,
    pub cluster: String,
    pub id: String,
    /// `group` (`service:NAME`, `family:NAME`, or the user's).
    pub group: String,
    /// The instance of its own cluster its `containerInstanceArn` names.
    pub instance: Option<String>,
    /// Where it runs: that instance, or a FARGATE task's host.
    pub host: Option<Host>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health: Health,
    pub failed: bool,
    pub started_at: Option<f64>,
    /// For a STOPPED task: when (housekeeping forgets it after the retention).
    pub stopped_at: Option<f64>,
    pub created_at: f64,
    pub definition: String,
    pub started_by: String,
    pub capacity_provider: Option<String>,
    /// It has load balancer registrations or Cloud Map instances to keep in step.
    pub registered: bool,
    /// What its agent acts on.
    pub agent: AgentView,
    /// The revision of the last change its agent acts on: its placement, or a change of
    /// [`Summary::agent`] (not its agent's own reports).
    pub agent_revision: u64,
}

/// What the agent of the instance holding a task acts on, of all the record says: whether to
/// run it or stop it, and how. Its assignment poll wakes when this changes, not when the
/// agent's own reports come back (a report that only says RUNNING would otherwise be answered
/// with the task it has just reported, doubling the answers of every placement). The rest of
/// what the poll sends (definition, containers, overrides, zone) is fixed when the task is
/// placed; its network has a wake-up of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentView {
    /// Not STOPPED: a task that stops leaves the poll's `live` list.
    pub live: bool,
    pub desired: DesiredStatus,
    /// Draining from its load balancers: its agent keeps it running meanwhile.
    pub held: bool,
    /// A spot interruption's warning: seconds between SIGTERM and SIGKILL.
    pub stop_timeout: Option<u64>,
}

impl Summary {
    fn of(key: &str, revision: u64, rec: IndexTask) -> Option<Summary> {
        let (region, cluster, id) = task_key(key)?;
        let host = rec.placed_on(cluster);
        let instance = rec.instance_id().map(str::to_string);
        let agent = AgentView {
            live: rec.last_status != TaskStatus::Stopped,
            desired: rec.desired_status,
            held: rec.held(),
            stop_timeout: rec.stop_timeout,
        };
        let (failed, registered) = (rec.failed(), rec.registered());
        let f = rec.task;
        Some(Summary {
            key: key.into(),
            revision,
            region: region.to_string(),
            cluster: cluster.to_string(),
            id: id.to_string(),
            group: f.group.unwrap_or_default(),
            instance,
            host,
            last_status: rec.last_status,
            desired_status: rec.desired_status,
            health: rec.health,
            failed,
            started_at: f.started_at,
            stopped_at: f.stopped_at,
            created_at: f.created_at.unwrap_or(0.0),
            definition: f.task_definition_arn.unwrap_or_default(),
            started_by: f.started_by.unwrap_or_default(),
            capacity_provider: f.capacity_provider_name,
            registered,
            agent,
            agent_revision: revision,
        })
    }

    pub fn live(&self) -> bool {
        self.last_status != TaskStatus::Stopped
    }
}

/// `ecs/REGION/task/CLUSTER/ID` split into its parts.
fn task_key(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix("ecs/")?;
    let (region, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("task/")?;
    let (cluster, id) = rest.split_once('/')?;
    (!id.is_empty() && !id.contains('/')).then_some((region, cluster, id))
}

/// A change here ends the waiting assignment polls of the region (the rules an awsvpc task's
/// agent enforces come from security groups and interfaces).
fn network_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("ec2/") else { return false };
    rest.split_once('/').is_some_and(|(_, kind)| kind.starts_with("sg/") || kind.starts_with("eni/"))
}

type GroupKey = (String, String, String);
type HostKey = (String, String, String);

fn host_key(region: &str, host: &Host) -> HostKey {
    (region.to_string(), host.cluster.clone(), host.id.clone())
}

struct HostEntry {
    tasks: BTreeSet<Arc<str>>,
    /// The revision of the last change its agent acts on: a task placed on it or gone from
    /// it, or a change of a task's [`AgentView`].
    changed: u64,
    wake: watch::Sender<u64>,
}

impl Default for HostEntry {
    fn default() -> Self {
        HostEntry { tasks: BTreeSet::new(), changed: 0, wake: watch::channel(0).0 }
    }
}

#[derive(Default)]
struct GroupEntry {
    tasks: BTreeSet<Arc<str>>,
    /// The revision of the last change to any task it holds or held. An emptied group keeps
    /// its entry, so this never goes back.
    changed: u64,
}

#[derive(Default)]
struct State {
    tasks: HashMap<Arc<str>, Arc<Summary>>,
    groups: HashMap<GroupKey, GroupEntry>,
    hosts: HashMap<HostKey, HostEntry>,
}

impl State {
    /// Takes a task out; its instance's agent is woken when `wake`.
    fn remove(&mut self, key: &str, revision: u64, wake: bool) {
        let Some(old) = self.tasks.remove(key) else { return };
        let group = (old.region.clone(), old.cluster.clone(), old.group.clone());
        if let Some(entry) = self.groups.get_mut(&group) {
            entry.tasks.remove(key);
            entry.changed = revision;
        }
        if let Some(host) = &old.host
            && let Some(entry) = self.hosts.get_mut(&host_key(&old.region, host))
        {
            entry.tasks.remove(key);
            if wake {
                entry.wake_at(revision);
            }
        }
    }

    /// Puts a task in; its instance's agent is woken when `wake`.
    fn insert(&mut self, summary: Summary, wake: bool) {
        let key = summary.key.clone();
        let revision = summary.revision;
        let group =
            self.groups.entry((summary.region.clone(), summary.cluster.clone(), summary.group.clone())).or_default();
        group.tasks.insert(key.clone());
        group.changed = revision;
        if let Some(host) = &summary.host {
            let entry = self.hosts.entry(host_key(&summary.region, host)).or_default();
            entry.tasks.insert(key.clone());
            if wake {
                entry.wake_at(revision);
            }
        }
        self.tasks.insert(key, Arc::new(summary));
    }

    /// Applies one change: a task's key, its revision, and its summary (`None`: deleted, or
    /// not a task record any more). The agent of its instance is woken unless the task stays
    /// where it was and what that agent acts on is as before.
    fn apply(&mut self, key: &str, revision: u64, mut summary: Option<Summary>) {
        let wake = match (self.tasks.get(key), &mut summary) {
            (Some(old), Some(new)) => {
                let wake = old.host != new.host || old.agent != new.agent;
                if !wake {
                    new.agent_revision = old.agent_revision;
                }
                wake
            }
            _ => true,
        };
        self.remove(key, revision, wake);
        if let Some(summary) = summary {
            self.insert(summary, wake);
        }
    }
}

impl HostEntry {
    fn wake_at(&mut self, revision: u64) {
        self.changed = revision;
        self.wake.send_replace(revision);
    }
}

/// The task changes among a revision's events, summarised (the decoding happens here, before
/// the index is locked, so readers never wait on it).
fn task_changes(events: &[Event]) -> Vec<(&str, u64, Option<Summary>)> {
    events
        .iter()
        .filter(|e| task_key(&e.kv.key).is_some())
        .map(|e| {
            let summary = match e.kind {
                EventKind::Put => summarize(&e.kv.key, e.kv.mod_revision, &e.kv.value),
                EventKind::Delete => None,
            };
            (e.kv.key.as_str(), e.kv.mod_revision, summary)
        })
        .collect()
}

/// A task record's summary, read through the slim view; a record that does not read that way
/// (one older than typed statuses) is decoded whole.
fn summarize(key: &str, revision: u64, value: &[u8]) -> Option<Summary> {
    if let Ok(view) = serde_json::from_slice::<IndexTask>(value) {
        return Summary::of(key, revision, view);
    }
    match serde_json::from_slice::<TaskRecord>(value) {
        Ok(rec) => Summary::of(key, revision, IndexTask::from(&rec)),
        Err(e) => {
            tracing::warn!(key, error = %e, "a task record does not decode; the task index leaves it out");
            None
        }
    }
}

struct Shared {
    state: RwLock<State>,
    /// The newest revision the index shows whole.
    applied: watch::Sender<u64>,
    /// The revision of the last change to a security group or network interface.
    network: watch::Sender<u64>,
    /// How often the watch's history was lost and everything listed afresh.
    relists: std::sync::atomic::AtomicU64,
}

/// The index; see the module documentation.
#[derive(Default)]
pub struct TaskIndex {
    shared: OnceCell<Arc<Shared>>,
}

/// What [`TaskIndex::host`] answers: the instance's tasks at a revision.
pub struct HostTasks {
    /// The index's revision when it was read.
    pub revision: u64,
    /// The revision of the last change to its tasks that its agent acts on (0: none yet).
    pub changed: u64,
    pub tasks: Vec<Arc<Summary>>,
}

impl TaskIndex {
    /// The index, started if need be, showing at least what the store holds now.
    pub async fn reach(&self, store: &Arc<dyn Store>) -> ControlResult<Index<'_>> {
        let shared = self.shared.get_or_try_init(|| start(store)).await?;
        let wanted = store.revision()?;
        let mut applied = shared.applied.subscribe();
        // The watch is behind by what is queued for it; a minute means it is gone.
        let waited = tokio::time::timeout(Duration::from_secs(60), applied.wait_for(|r| *r >= wanted)).await;
        match waited {
            Ok(Ok(_)) => Ok(Index { shared }),
            _ => Err(ControlError::Store(StoreError::Engine(format!(
                "the task index did not reach revision {wanted} (it shows {})",
                *shared.applied.borrow()
            )))),
        }
    }
}

/// A started index, caught up to the revision [`TaskIndex::reach`] asked for.
pub struct Index<'a> {
    shared: &'a Shared,
}

impl Index<'_> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.shared.state.read().expect("task index lock poisoned")
    }

    /// The revision the index shows whole.
    pub fn revision(&self) -> u64 {
        *self.shared.applied.borrow()
    }

    /// The tasks of `group` in a cluster, in key order.
    pub fn group(&self, region: &str, cluster: &str, group: &str) -> Vec<Arc<Summary>> {
        let state = self.read();
        let key = (region.to_string(), cluster.to_string(), group.to_string());
        state.groups.get(&key).into_iter().flat_map(|g| &g.tasks).filter_map(|k| state.tasks.get(k).cloned()).collect()
    }

    /// Every task of a cluster, group by group.
    pub fn cluster(&self, region: &str, cluster: &str) -> Vec<Arc<Summary>> {
        let state = self.read();
        let of_cluster = state.groups.iter().filter(|((r, c, _), _)| r == region && c == cluster);
        of_cluster.flat_map(|(_, g)| &g.tasks).filter_map(|k| state.tasks.get(k).cloned()).collect()
    }

    /// The revision of the last change to a task of `group` in a cluster (0: none seen).
    pub fn group_changed(&self, region: &str, cluster: &str, group: &str) -> u64 {
        let key = (region.to_string(), cluster.to_string(), group.to_string());
        self.read().groups.get(&key).map_or(0, |g| g.changed)
    }

    /// The tasks an instance holds (its cluster's, and the FARGATE tasks it hosts for any).
    pub fn host(&self, region: &str, host: &Host) -> HostTasks {
        let state = self.read();
        let revision = self.revision();
        match state.hosts.get(&host_key(region, host)) {
            Some(entry) => HostTasks {
                revision,
                changed: entry.changed,
                tasks: entry.tasks.iter().filter_map(|k| state.tasks.get(k).cloned()).collect(),
            },
            None => HostTasks { revision, changed: 0, tasks: Vec::new() },
        }
    }

    /// The groups of the live tasks of `cluster` on each of the instances `ids`, by id.
    pub fn instance_groups(&self, region: &str, cluster: &str, ids: &[&str]) -> HashMap<String, Vec<String>> {
        let state = self.read();
        let mut out = HashMap::new();
        for id in ids {
            let key = (region.to_string(), cluster.to_string(), id.to_string());
            let held = state.hosts.get(&key).map(|e| &e.tasks);
            let groups = held
                .into_iter()
                .flatten()
                .filter_map(|k| state.tasks.get(k))
                .filter(|t| t.live() && t.cluster == cluster && t.instance.as_deref() == Some(*id))
                .map(|t| t.group.clone())
                .collect();
            out.insert(id.to_string(), groups);
        }
        out
    }

    /// Changes when a change to its tasks reaches the instance's agent (see [`AgentView`]; the
    /// value is the revision).
    pub fn subscribe_host(&self, region: &str, host: &Host) -> watch::Receiver<u64> {
        let mut state = self.shared.state.write().expect("task index lock poisoned");
        state.hosts.entry(host_key(region, host)).or_default().wake.subscribe()
    }

    /// How often the index lost its watch's history and listed everything afresh.
    #[cfg(test)]
    pub fn relists(&self) -> u64 {
        self.shared.relists.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The revision of the last change to a security group or network interface.
    pub fn network_changed(&self) -> u64 {
        *self.shared.network.borrow()
    }

    /// Changes when any security group or network interface changes.
    pub fn subscribe_network(&self) -> watch::Receiver<u64> {
        self.shared.network.subscribe()
    }
}

/// Lists every task, then keeps the index from a watch in the background. The background
/// task holds the store only weakly, so a store that is dropped closes its watch and ends it.
async fn start(store: &Arc<dyn Store>) -> ControlResult<Arc<Shared>> {
    let (state, revision, stream) = load(store.as_ref())?;
    let shared = Arc::new(Shared {
        state: RwLock::new(state),
        applied: watch::channel(revision).0,
        network: watch::channel(revision).0,
        relists: Default::default(),
    });
    let (weak_store, weak_shared) = (Arc::downgrade(store), Arc::downgrade(&shared));
    tokio::spawn(follow(weak_store, weak_shared, stream));
    Ok(shared)
}

/// Every task under `ecs/`, and a watch on the whole store from the revision after.
fn load(store: &dyn Store) -> ControlResult<(State, u64, berth_store::WatchStream)> {
    let listed = store.range(&KeyRange::prefix("ecs/"))?;
    let mut state = State::default();
    for kv in &listed.kvs {
        if task_key(&kv.key).is_some()
            && let Some(summary) = summarize(&kv.key, kv.mod_revision, &kv.value)
        {
            state.insert(summary, true);
        }
    }
    let stream = store.watch("", listed.revision + 1)?;
    Ok((state, listed.revision, stream))
}

async fn follow(store: Weak<dyn Store>, shared: Weak<Shared>, mut stream: berth_store::WatchStream) {
    loop {
        let next = stream.next_revision().await;
        let Some(shared) = shared.upgrade() else { return };
        match next {
            Some(Ok((revision, events))) => {
                let network = events.iter().any(|e| network_key(&e.kv.key));
                let changes = task_changes(&events);
                if !changes.is_empty() {
                    let mut state = shared.state.write().expect("task index lock poisoned");
                    for (key, revision, summary) in changes {
                        state.apply(key, revision, summary);
                    }
                }
                if network {
                    shared.network.send_replace(revision);
                }
                shared.applied.send_replace(revision);
            }
            // The store is gone.
            None => return,
            // History lost (a compaction): list again and follow from there.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the task index's watch failed; listing again");
                loop {
                    let Some(store) = store.upgrade() else { return };
                    match load(store.as_ref()) {
                        Ok((mut fresh, revision, s)) => {
                            let mut state = shared.state.write().expect("task index lock poisoned");
                            // Every instance keeps its waiters, takes its tasks as listed and
                            // wakes, so its poll reads afresh.
                            for (key, mut entry) in std::mem::take(&mut state.hosts) {
                                entry.tasks = fresh.hosts.remove(&key).map(|f| f.tasks).unwrap_or_default();
                                fresh.hosts.insert(key, entry);
                            }
                            for entry in fresh.hosts.values_mut() {
                                entry.changed = revision;
                                entry.wake.send_replace(revision);
                            }
                            *state = fresh;
                            shared.relists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            drop(state);
                            shared.network.send_replace(revision);
                            shared.applied.send_replace(revision);
                            stream = s;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "listing tasks for the index failed; trying again");
                            drop(store);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::resources::Requirements;
    use berth_store::{Embedded, EmbeddedOptions, Op, StoreExt, Txn};
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-east-1:000000000000";

    fn record(id: &str, group: &str, instance: &str, status: TaskStatus) -> Vec<u8> {
        record_with(id, group, instance, |rec| rec.last_status = status)
    }

    fn record_with(id: &str, group: &str, instance: &str, change: impl FnOnce(&mut TaskRecord)) -> Vec<u8> {
        let task = json!({
            "taskArn": format!("{ARN}:task/default/{id}"),
            "group": group,
            "containerInstanceArn": format!("{ARN}:container-instance/default/{instance}"),
            "taskDefinitionArn": format!("{ARN}:task-definition/web:1"),
            "startedBy": "ecs-svc/1",
            "createdAt": 5.0,
        });
        let mut rec = TaskRecord::new(task.as_object().unwrap().clone(), Requirements::default());
        change(&mut rec);
        crate::store::encode(&rec)
    }

    fn key(id: &str) -> String {
        format!("ecs/us-east-1/task/default/{id}")
    }

    fn host(id: &str) -> Host {
        Host { cluster: "default".into(), id: id.into() }
    }

    fn ids(tasks: &[Arc<Summary>]) -> Vec<&str> {
        tasks.iter().map(|t| t.id.as_str()).collect()
    }

    /// The summary read through the slim view is the one the whole record gives, for records
    /// of today and for one older than typed statuses (which only the whole read takes).
    #[test]
    fn a_summary_read_slim_is_the_summary_of_the_whole_record() {
        let whole = |value: &[u8]| {
            let rec: TaskRecord = serde_json::from_slice(value).unwrap();
            format!("{:?}", Summary::of(&key("a"), 7, IndexTask::from(&rec)))
        };
        let records = [
            record("a", "service:web", "i1", TaskStatus::Running),
            record_with("a", "family:batch", "i2", |rec| {
                rec.last_status = TaskStatus::Stopped;
                rec.desired_status = DesiredStatus::Stopped;
                rec.failure = Some(berth_model::task::Failure::FailedToStart);
                rec.stop_timeout = Some(30);
                rec.task.insert("startedAt".into(), json!(6.5));
                rec.task.insert("stoppedAt".into(), json!(8.0));
                rec.task.insert("capacityProviderName".into(), json!("FARGATE"));
                rec.host = Some(host("i9"));
            }),
        ];
        for value in &records {
            assert!(serde_json::from_slice::<IndexTask>(value).is_ok());
            assert_eq!(format!("{:?}", summarize(&key("a"), 7, value)), whole(value));
        }
        let failed = summarize(&key("a"), 7, &records[1]).unwrap();
        assert!(failed.failed && !failed.live());
        assert_eq!(failed.host, Some(host("i9")));
        assert_eq!((failed.started_at, failed.stopped_at), (Some(6.5), Some(8.0)));

        // An older record: statuses inside the ECS object, its failure only a stop code.
        let old = serde_json::to_vec(&json!({
            "task": {"taskArn": format!("{ARN}:task/default/a"), "group": "service:web",
                     "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "EssentialContainerExited"},
            "requirements": Requirements::default(), "claimed": true,
        }))
        .unwrap();
        assert!(serde_json::from_slice::<IndexTask>(&old).is_err());
        assert_eq!(format!("{:?}", summarize(&key("a"), 7, &old)), whole(&old));
        let summary = summarize(&key("a"), 7, &old).unwrap();
        assert!(summary.failed && summary.last_status == TaskStatus::Stopped && summary.group == "service:web");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_index_follows_tasks_by_group_and_instance_and_wakes_only_their_instance() {
        let store: Arc<dyn Store> = Arc::new(Embedded::in_memory().unwrap());
        store.put(&key("a"), record("a", "service:web", "i1", TaskStatus::Running)).await.unwrap();
        let index = TaskIndex::default();
        let seen = index.reach(&store).await.unwrap();
        assert_eq!(ids(&seen.group("us-east-1", "default", "service:web")), ["a"]);
        let mut i1 = seen.subscribe_host("us-east-1", &host("i1"));
        let mut i2 = seen.subscribe_host("us-east-1", &host("i2"));
        i1.borrow_and_update();
        i2.borrow_and_update();

        // Two tasks in one transaction, one moved to i2 later: each read right after a write
        // already shows it.
        let both = Txn::new().and_then(vec![
            Op::put(&key("b"), record("b", "service:web", "i1", TaskStatus::Pending)),
            Op::put(&key("c"), record("c", "family:batch", "i2", TaskStatus::Pending)),
        ]);
        let r = store.txn(both).await.unwrap().revision;
        let seen = index.reach(&store).await.unwrap();
        assert!(seen.revision() >= r);
        assert_eq!(ids(&seen.group("us-east-1", "default", "service:web")), ["a", "b"]);
        assert_eq!(seen.group_changed("us-east-1", "default", "service:web"), r);
        assert_eq!(seen.group_changed("us-east-1", "default", "service:none"), 0);
        let in_cluster = seen.cluster("us-east-1", "default");
        let mut all = ids(&in_cluster);
        all.sort();
        assert_eq!(all, ["a", "b", "c"]);
        assert!(seen.cluster("us-east-1", "other").is_empty());
        let on_i1 = seen.host("us-east-1", &host("i1"));
        assert_eq!((ids(&on_i1.tasks), on_i1.changed), (vec!["a", "b"], r));
        let groups = seen.instance_groups("us-east-1", "default", &["i1", "i2", "i3"]);
        assert_eq!(groups["i2"], ["family:batch"]);
        assert!(groups["i3"].is_empty());
        assert!(i1.has_changed().unwrap() && i2.has_changed().unwrap());
        i1.borrow_and_update();
        i2.borrow_and_update();

        // A change on i2 wakes i2 alone; a stopped task leaves the instance's groups but
        // stays in its list (its agent is told it stopped); a deleted one leaves both.
        store.put(&key("c"), record("c", "family:batch", "i2", TaskStatus::Stopped)).await.unwrap();
        let seen = index.reach(&store).await.unwrap();
        assert!(i2.has_changed().unwrap() && !i1.has_changed().unwrap());
        assert!(seen.instance_groups("us-east-1", "default", &["i2"])["i2"].is_empty());
        assert_eq!(ids(&seen.host("us-east-1", &host("i2")).tasks), ["c"]);
        let r = store.txn(Txn::new().and_then(vec![Op::delete(&key("c"))])).await.unwrap().revision;
        let seen = index.reach(&store).await.unwrap();
        let on_i2 = seen.host("us-east-1", &host("i2"));
        assert!(on_i2.tasks.is_empty() && on_i2.changed == r);
        assert!(seen.group("us-east-1", "default", "family:batch").is_empty());
        // An emptied group still says when it last changed; the other group did not.
        assert_eq!(seen.group_changed("us-east-1", "default", "family:batch"), r);
        assert!(seen.group_changed("us-east-1", "default", "service:web") < r);

        // Other keys move the revision without touching tasks; network keys wake polls.
        let mut network = seen.subscribe_network();
        network.borrow_and_update();
        store.put("ec2/us-east-1/sg/sg-1", b"{}".to_vec()).await.unwrap();
        store.put("ecs/us-east-1/task/default/bad", b"not json".to_vec()).await.unwrap();
        let seen = index.reach(&store).await.unwrap();
        assert!(network.has_changed().unwrap());
        assert_eq!(seen.revision(), store.revision().unwrap());
        assert_eq!(ids(&seen.group("us-east-1", "default", "service:web")), ["a", "b"]);
        assert_eq!(seen.relists(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_is_woken_for_what_it_acts_on_not_for_its_own_reports() {
        let store: Arc<dyn Store> = Arc::new(Embedded::in_memory().unwrap());
        let placed = store.put(&key("a"), record("a", "service:web", "i1", TaskStatus::Pending)).await.unwrap();
        let index = TaskIndex::default();
        let seen = index.reach(&store).await.unwrap();
        let mut i1 = seen.subscribe_host("us-east-1", &host("i1"));
        i1.borrow_and_update();
        let on_i1 = |seen: &Index<'_>| seen.host("us-east-1", &host("i1")).changed;
        assert_eq!(on_i1(&seen), placed);

        // The agent reports RUNNING: the scheduler sees its group change, the agent is not woken.
        let ran = store.put(&key("a"), record("a", "service:web", "i1", TaskStatus::Running)).await.unwrap();
        let seen = index.reach(&store).await.unwrap();
        assert_eq!(seen.group_changed("us-east-1", "default", "service:web"), ran);
        assert!(!i1.has_changed().unwrap());
        assert_eq!(on_i1(&seen), placed);
        let summary = seen.host("us-east-1", &host("i1")).tasks[0].clone();
        assert_eq!((summary.revision, summary.agent_revision), (ran, placed), "a report alone is not the agent's");

        // Each of what the agent acts on wakes it: a stop timeout, a drain hold, a stop, and
        // the task leaving the live list.
        let running = |rec: &mut TaskRecord| rec.last_status = TaskStatus::Running;
        let warned = |rec: &mut TaskRecord| {
            running(rec);
            rec.stop_timeout = Some(30);
        };
        let held = |rec: &mut TaskRecord| {
            warned(rec);
            let phase = crate::service_targets::Phase::Draining { since: 9.0 };
            rec.targets = Some(crate::service_targets::Targets { targets: Vec::new(), phase });
        };
        let stopping = |rec: &mut TaskRecord| {
            held(rec);
            rec.desired_status = DesiredStatus::Stopped;
        };
        let stopped = |rec: &mut TaskRecord| {
            stopping(rec);
            rec.last_status = TaskStatus::Stopped;
        };
        let changes: [&dyn Fn(&mut TaskRecord); 4] = [&warned, &held, &stopping, &stopped];
        for (n, change) in changes.into_iter().enumerate() {
            let r = store.put(&key("a"), record_with("a", "service:web", "i1", change)).await.unwrap();
            let seen = index.reach(&store).await.unwrap();
            assert!(i1.has_changed().unwrap(), "change {n} wakes the agent");
            assert_eq!((*i1.borrow_and_update(), on_i1(&seen)), (r, r));
            assert_eq!(seen.host("us-east-1", &host("i1")).tasks[0].agent_revision, r);
        }
        // Moved to another instance: both agents are woken.
        let mut i2 = seen.subscribe_host("us-east-1", &host("i2"));
        i2.borrow_and_update();
        store.put(&key("a"), record_with("a", "service:web", "i2", stopped)).await.unwrap();
        index.reach(&store).await.unwrap();
        assert!(i1.has_changed().unwrap() && i2.has_changed().unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_index_whose_history_is_gone_lists_again() {
        // A history of 4 revisions, and 5,000 revisions committed while the index cannot run
        // (this runtime's one thread is blocked): the store's broadcast of 4,096 overflows,
        // the history is gone, and the index lists afresh and wakes every instance.
        let store: Arc<dyn Store> = Arc::new(
            Embedded::in_memory_with(EmbeddedOptions {
                history: berth_store::HistoryLimits { revisions: 4, bytes: 1 << 20 },
                ..Default::default()
            })
            .unwrap(),
        );
        let index = TaskIndex::default();
        let seen = index.reach(&store).await.unwrap();
        let mut i1 = seen.subscribe_host("us-east-1", &host("i1"));
        i1.borrow_and_update();
        let writer = store.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                for n in 0..5000 {
                    let id = format!("t{n:04}");
                    writer.put(&key(&id), record(&id, "service:web", "i1", TaskStatus::Pending)).await.unwrap();
                }
            })
        })
        .join()
        .unwrap();
        let seen = index.reach(&store).await.unwrap();
        assert_eq!(seen.group("us-east-1", "default", "service:web").len(), 5000);
        assert_eq!(seen.host("us-east-1", &host("i1")).tasks.len(), 5000);
        assert!(i1.has_changed().unwrap());
        assert_eq!(seen.relists(), 1);
    }

    #[test]
    fn task_keys_and_network_keys_are_told_apart() {
        assert_eq!(task_key("ecs/us-east-1/task/default/abc"), Some(("us-east-1", "default", "abc")));
        assert_eq!(task_key("ecs/us-east-1/task/default/"), None);
        assert_eq!(task_key("ecs/us-east-1/taskset/default/abc"), None);
        assert_eq!(task_key("ecs/us-east-1/task/default/abc/x"), None);
        assert!(network_key("ec2/us-east-1/sg/sg-1"));
        assert!(network_key("ec2/us-east-1/eni/eni-1"));
        assert!(!network_key("ec2/us-east-1/subnet/s-1"));
    }
}
