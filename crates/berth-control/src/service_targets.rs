//! A service task's life in its service's target groups, as ECS runs it: registered once the
//! task is RUNNING, counted healthy only when every target group finds it so, and, before it
//! is stopped, deregistered and drained. While it drains the task is DEACTIVATING, its
//! `desiredStatus` is STOPPED, and its agent is still told to keep it running; once every
//! target is gone (ELB ends a deregistration when nothing is in flight, or after the target
//! group's deregistration delay) the agent is told to stop it.
//!
//! The registrations a task holds are kept on its record ([`Targets`]), so the targets it
//! leaves are those it joined, whatever the service says by then. Every change is committed
//! with the task's own write, guarded by its revision.

use berth_model::task::{TaskEvent, TaskStatus, transition};
use berth_scheduler::{LbHealth, Side};
use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Region;
use crate::elb::target_groups::TargetType;
use crate::elb::{self, HealthReader, HealthState};
use crate::error::ControlResult;
use crate::records::{InstanceRecord, TaskRecord};
use crate::services::ServiceRecord;
use crate::store::{array, decode, encode};

/// One registration: a target group and the target (instance id or IP, and port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
}

/// Where a task's registrations stand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Phase {
    /// Registered: traffic may reach it.
    Registered,
    /// Deregistered and draining since `since`: its agent keeps it running.
    Draining { since: f64 },
    /// Gone from every target group: its agent may stop it.
    Deregistered,
}

/// The registrations a service task holds, on its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    pub targets: Vec<TargetRef>,
    pub phase: Phase,
}

/// What happens to a task's registrations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetsEvent {
    /// It is asked to stop while RUNNING: drain first.
    Drain { now: f64 },
    /// Every target is gone, or draining ran past its longest delay.
    Drained,
    /// It stopped (or is stopped) without draining: deregister at once.
    Stopped,
}

/// The one place that decides where a task's registrations go next; `None` when the event
/// changes nothing.
pub fn next_phase(phase: Phase, event: TargetsEvent) -> Option<Phase> {
    match (phase, event) {
        (Phase::Registered, TargetsEvent::Drain { now }) => Some(Phase::Draining { since: now }),
        (Phase::Draining { .. }, TargetsEvent::Drained) => Some(Phase::Deregistered),
        (Phase::Registered | Phase::Draining { .. }, TargetsEvent::Stopped) => Some(Phase::Deregistered),
        _ => None,
    }
}

impl Targets {
    /// Whether the task's agent must keep it running although it is asked to stop.
    pub fn holds(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. })
    }
}

/// The `loadBalancers` of a service: (target group, container name, container port).
pub fn service_load_balancers(service: &ServiceRecord) -> Vec<(String, String, u16)> {
    array(&service.service, "loadBalancers").iter().filter_map(entry_parts).collect()
}

/// One `loadBalancers` entry's target group, container name and container port.
fn entry_parts(lb: &Value) -> Option<(String, String, u16)> {
    let group = lb.get("targetGroupArn")?.as_str()?.to_string();
    let container = lb.get("containerName")?.as_str()?.to_string();
    let port = u16::try_from(lb.get("containerPort")?.as_i64()?).ok()?;
    Some((group, container, port))
}

/// The host port a container's `containerPort` is published on, from its network bindings.
pub(crate) fn host_port(task: &TaskRecord, container: &str, port: u16) -> Option<u16> {
    let containers = task.task.get("containers")?.as_array()?;
    let c = containers.iter().find(|c| c["name"] == container)?;
    let bindings = c.get("networkBindings")?.as_array()?;
    // The IPv4 binding: Docker may publish IPv6 on a host port of its own.
    let ipv4 = |b: &&Value| !b["bindIP"].as_str().is_some_and(|ip| ip.contains(':'));
    let b = bindings.iter().filter(ipv4).find(|b| b["containerPort"].as_i64() == Some(i64::from(port)))?;
    u16::try_from(b["hostPort"].as_i64()?).ok()
}

/// The task's private IPv4 address on its interface (awsvpc), once attached.
pub(crate) fn private_ip(task: &TaskRecord) -> Option<String> {
    let attachments = task.task.get("attachments")?.as_array()?;
    let eni = attachments.iter().find(|a| a["type"] == "ElasticNetworkInterface" && a["status"] == "ATTACHED")?;
    let details = eni.get("details")?.as_array()?;
    let ip = details.iter().find(|d| d["name"] == "privateIPv4Address")?;
    ip["value"].as_str().map(str::to_string)
}

/// The container instance a task runs on.
pub(crate) fn instance_of(
    region: &Region<'_>,
    cluster: &str,
    task: &TaskRecord,
) -> ControlResult<Option<InstanceRecord>> {
    let Some(host) = task.placed_on(cluster) else { return Ok(None) };
    let Some(kv) = region.store().get(&region.keys.instance(&host.cluster, &host.id))? else { return Ok(None) };
    Ok(Some(decode(&kv)?))
}

/// The instance id its target group names a task's instance by.
fn ec2_instance_id(region: &Region<'_>, cluster: &str, task: &TaskRecord) -> ControlResult<Option<String>> {
    let instance = instance_of(region, cluster, task)?;
    Ok(instance.and_then(|i| i.instance.get("ec2InstanceId").and_then(Value::as_str).map(str::to_string)))
}

/// The target group a task of `service` joins for the load balancer `entry`: the alternate
/// one when its deployment came up on the alternate side (blue/green, linear, canary).
fn group_for(service: &ServiceRecord, entry: &Value, task: &TaskRecord) -> Option<String> {
    let deployment = task.field("startedBy").unwrap_or_default();
    let side = service.scheduler.deployments.iter().find(|d| d.id == deployment).map(|d| d.side);
    let alternate = entry.pointer("/advancedConfiguration/alternateTargetGroupArn").and_then(Value::as_str);
    match (side, alternate) {
        (Some(Side::Alternate), Some(alt)) => Some(alt.to_string()),
        _ => entry.get("targetGroupArn").and_then(Value::as_str).map(str::to_string),
    }
}

/// The targets a RUNNING task of `service` is to be registered as; `None` while something
/// they need (an address, a host port) is not known yet.
pub fn targets_for(
    region: &Region<'_>,
    cluster: &str,
    service: &ServiceRecord,
    task: &TaskRecord,
) -> ControlResult<Option<Vec<TargetRef>>> {
    let mut out = Vec::new();
    for entry in array(&service.service, "loadBalancers") {
        let Some((_, container, port)) = entry_parts(&entry) else { continue };
        let Some(group) = group_for(service, &entry, task) else { continue };
        let Ok(tg) = elb::get_target_group(region, &group) else {
            // The group is gone: nothing to register with.
            continue;
        };
        let target = if tg.record.target_type == TargetType::Ip {
            private_ip(task).map(|ip| (ip, port))
        } else {
            let id = ec2_instance_id(region, cluster, task)?;
            id.zip(host_port(task, &container, port))
        };
        let Some((id, port)) = target else { return Ok(None) };
        out.push(TargetRef { target_group_arn: group, id, port });
    }
    Ok(Some(out))
}

/// The compares and writes that register `targets`.
fn register_ops(
    region: &Region<'_>,
    task: &TaskRecord,
    targets: &[TargetRef],
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let zone = task.field("availabilityZone").map(str::to_string);
    let (mut compares, mut ops) = (Vec::new(), Vec::new());
    for t in targets {
        let (c, o) = elb::register_target_ops(region, &t.target_group_arn, &t.id, t.port, zone.as_deref())?;
        compares.extend(c);
        ops.extend(o);
    }
    Ok((compares, ops))
}

/// The compares and writes that deregister the task's targets (draining them).
pub fn deregister_ops(region: &Region<'_>, targets: &Targets) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let (mut compares, mut ops) = (Vec::new(), Vec::new());
    for t in targets
        .targets
        .iter()
        .filter(|t| elb::target_groups::find(region, &t.target_group_arn).ok().flatten().is_some())
    {
        let (c, o) = elb::deregister_target_ops(region, &t.target_group_arn, &t.id, t.port)?;
        compares.extend(c);
        ops.extend(o);
    }
    Ok((compares, ops))
}

/// Moves a task's registrations on `event`: its record changes, and the compares and writes
/// for the target groups to commit with it. Nothing when the event changes nothing.
pub fn on_event(
    region: &Region<'_>,
    rec: &mut TaskRecord,
    event: TargetsEvent,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let index = draining_key(region, rec);
    let Some(targets) = rec.targets.as_mut() else { return Ok(Default::default()) };
    let Some(next) = next_phase(targets.phase, event) else { return Ok(Default::default()) };
    let leaving = targets.phase == Phase::Registered;
    targets.phase = next;
    let (compares, mut ops) = if leaving { deregister_ops(region, targets)? } else { Default::default() };
    if let Some(key) = index {
        ops.push(if targets.holds() { Op::put(&key, Vec::new()) } else { Op::delete(&key) });
    }
    Ok((compares, ops))
}

/// The task's key in the draining index.
fn draining_key(region: &Region<'_>, rec: &TaskRecord) -> Option<String> {
    let arn = rec.field("taskArn")?;
    let (cluster, id) = berth_model::arn::scoped_id(arn, "task")?;
    Some(region.keys.draining_task(cluster?, id))
}

/// A stop request for a RUNNING task with registrations: it drains first (DEACTIVATING)
/// instead of being stopped by its agent at once. Returns the compares and writes to commit
/// with the task's record when it drains; `None` when it stops at once (no registration, or
/// not RUNNING).
pub fn begin_draining(region: &Region<'_>, rec: &mut TaskRecord) -> ControlResult<Option<(Vec<Compare>, Vec<Op>)>> {
    let registered = rec.targets.as_ref().is_some_and(|t| t.phase == Phase::Registered);
    if !registered {
        return Ok(None);
    }
    let Ok(next) = transition(rec.last_status, TaskEvent::Deactivate) else { return Ok(None) };
    rec.last_status = next;
    on_event(region, rec, TargetsEvent::Drain { now: region.timestamp() }).map(Some)
}

/// How the service's target groups see a task (`reader`: one per scheduler pass).
pub fn lb_health(reader: &mut HealthReader<'_, '_>, rec: &TaskRecord) -> ControlResult<LbHealth> {
    let Some(targets) = rec.targets.as_ref().filter(|t| t.phase == Phase::Registered) else {
        return Ok(LbHealth::None);
    };
    let mut all_healthy = true;
    for t in &targets.targets {
        match reader.health(&t.target_group_arn, &t.id, t.port)? {
            Some(h) if h.state == HealthState::Healthy => {}
            Some(h) if h.state == HealthState::Unhealthy => {
                return Ok(LbHealth::Unhealthy { target_group: t.target_group_arn.clone() });
            }
            _ => all_healthy = false,
        }
    }
    Ok(if all_healthy { LbHealth::Healthy } else { LbHealth::Initial })
}

/// Registers a RUNNING task, or ends its draining when its targets are gone, guarded by the
/// task's revision. Returns what it did, for the service's events.
pub async fn sync(
    region: &Region<'_>,
    cluster: &str,
    service: &ServiceRecord,
    (key, revision): (&str, u64),
    rec: &TaskRecord,
) -> ControlResult<Option<Change>> {
    let mut rec = rec.clone();
    let (compares, ops, change) = match &rec.targets {
        None if rec.last_status == TaskStatus::Running
            && rec.desired_status == berth_model::task::DesiredStatus::Running
            && !service_load_balancers(service).is_empty() =>
        {
            let Some(targets) = targets_for(region, cluster, service, &rec)? else { return Ok(None) };
            let (c, o) = register_ops(region, &rec, &targets)?;
            let change = Change::Registered(targets.clone());
            rec.targets = Some(Targets { targets, phase: Phase::Registered });
            (c, o, change)
        }
        Some(Targets { phase: Phase::Draining { .. }, .. }) => return release(region, (key, revision), rec).await,
        _ => return Ok(None),
    };
    let mut compares = compares;
    let mut ops = ops;
    compares.push(Compare::unchanged(key, revision));
    ops.push(Op::put(key, encode(&rec)));
    let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
    Ok(done.then_some(change))
}

/// Lets a draining task go once its targets are gone (its agent then stops it), guarded by
/// the task's revision.
async fn release(
    region: &Region<'_>,
    (key, revision): (&str, u64),
    mut rec: TaskRecord,
) -> ControlResult<Option<Change>> {
    let Some(targets) = rec.targets.clone() else { return Ok(None) };
    let Phase::Draining { since } = targets.phase else { return Ok(None) };
    if !drained(region, &targets, since)? {
        return Ok(None);
    }
    let (mut compares, mut ops) = on_event(region, &mut rec, TargetsEvent::Drained)?;
    compares.push(Compare::unchanged(key, revision));
    ops.push(Op::put(key, encode(&rec)));
    let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
    Ok(done.then_some(Change::Drained(targets.targets)))
}

/// Lets go every draining task of every region whose targets are gone, whatever became of its
/// service (a deleted service runs no more passes). Entries of tasks that are gone or no
/// longer draining are dropped.
pub async fn release_drained(control: &crate::Control) -> ControlResult<()> {
    use berth_store::KeyRange;
    for entry in control.store.range(&KeyRange::prefix(crate::keys::DRAINING))?.kvs {
        let mut parts = entry.key[crate::keys::DRAINING.len()..].splitn(3, '/');
        let (Some(region), Some(cluster), Some(id)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let region = control.region(region);
        let key = region.keys.task(cluster, id);
        let task = match region.store().get(&key)? {
            Some(kv) => Some((kv.mod_revision, decode::<TaskRecord>(&kv)?)),
            None => None,
        };
        match task {
            Some((revision, rec)) if rec.targets.as_ref().is_some_and(Targets::holds) => {
                release(&region, (&key, revision), rec).await?;
            }
            _ => {
                region.store().txn(Txn::new().and_then(vec![Op::delete(&entry.key)])).await?;
            }
        }
    }
    Ok(())
}

/// What [`sync`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Registered(Vec<TargetRef>),
    Drained(Vec<TargetRef>),
}

/// Seconds draining may run past the longest deregistration delay before the task is let go
/// anyway (a target group deleted meanwhile, a data plane that stopped reporting).
const DRAIN_SLACK: f64 = 5.0;

/// Whether every target of a draining task is gone, or draining ran past the longest
/// deregistration delay of the groups still holding one.
fn drained(region: &Region<'_>, targets: &Targets, since: f64) -> ControlResult<bool> {
    let mut reader = HealthReader::new(region);
    let mut remaining = None::<f64>;
    for t in &targets.targets {
        if reader.health(&t.target_group_arn, &t.id, t.port)?.is_some() {
            let delay = reader.group(&t.target_group_arn)?.map_or(0.0, |g| g.deregistration_delay() as f64);
            remaining = Some(remaining.unwrap_or(0.0).max(delay));
        }
    }
    Ok(remaining.is_none_or(|longest| region.timestamp() - since >= longest + DRAIN_SLACK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_only_move_forward() {
        let all = [Phase::Registered, Phase::Draining { since: 1.0 }, Phase::Deregistered];
        let events = [TargetsEvent::Drain { now: 2.0 }, TargetsEvent::Drained, TargetsEvent::Stopped];
        let rank = |p: Phase| match p {
            Phase::Registered => 0,
            Phase::Draining { .. } => 1,
            Phase::Deregistered => 2,
        };
        for p in all {
            for e in events {
                if let Some(n) = next_phase(p, e) {
                    assert!(rank(n) > rank(p), "{p:?} went to {n:?} on {e:?}");
                }
            }
        }
        assert_eq!(next_phase(Phase::Registered, TargetsEvent::Drained), None, "only draining targets drain");
        assert_eq!(next_phase(Phase::Deregistered, TargetsEvent::Stopped), None);
        assert_eq!(
            next_phase(Phase::Registered, TargetsEvent::Drain { now: 3.0 }),
            Some(Phase::Draining { since: 3.0 })
        );
    }
}
