//! Registered targets and their health.
//!
//! A target (an instance id or an IPv4 address, and a port) is registered in a target group
//! under a key of its own, `registered` or `draining` (deregistered, finishing its in-flight
//! requests until a deadline: the group's deregistration delay). What the data plane observes
//! of each — its health and, while draining, its requests in flight — lives under separate
//! keys ([`record_statuses`]), so health reports never conflict with registrations. A draining
//! target leaves once nothing is in flight, or at its deadline ([`finish_draining`], run by
//! housekeeping); one in a group no listener forwards to, or with a delay of 0, leaves at once.
//!
//! DescribeTargetHealth and the ECS service integration read one computation
//! ([`health_of`]): ELB's states and reason codes from the registration, the observation
//! and whether the group is in use.
//!
//! `ip` targets must lie in the group's VPC (their zone is their subnet's); `instance`
//! targets name a registered container instance by its `ec2InstanceId` (their zone is the
//! instance's `ecs.availability-zone`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use berth_lb::config::{Failure, Health, TargetStatus};
use berth_store::{CmpOp, Compare, KeyRange, Op, StoreExt, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arns::{self, Resource};
use super::limits::TARGETS;
use super::refs::Refs;
use super::target_groups::{self, TargetGroupRecord, TargetType};
use super::{ElbError, Limit, commit};
use crate::error::ControlResult;
use crate::keys::ELB_REGIONS;
use crate::records::{InstanceRecord, InstanceStatus};
use crate::store::{decode, encode, retry};
use crate::vpc::{self, Stored, read, read_all};
use crate::{Control, Region};

/// Where a registered target is in its deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum TargetState {
    Registered,
    /// Deregistered at `since` (seconds since the epoch); gone by `until` at the latest.
    Draining {
        since: f64,
        until: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRecord {
    pub id: String,
    pub port: u16,
    pub zone: String,
    /// Seconds since the epoch.
    pub registered: f64,
    pub state: TargetState,
}

/// What the data plane last reported of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRecord {
    pub health: Health,
    /// Requests (connections) in flight, kept only while the target drains: the only time it
    /// decides anything, and storing it for every busy target would write on every report.
    #[serde(default)]
    pub in_flight: u32,
}

/// ELB's target health states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Initial => "initial",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Unused => "unused",
            HealthState::Draining => "draining",
            HealthState::Unavailable => "unavailable",
        }
    }
}

/// ELB's reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RegistrationInProgress,
    InitialHealthChecking,
    ResponseCodeMismatch,
    Timeout,
    FailedHealthChecks,
    NotRegistered,
    NotInUse,
    DeregistrationInProgress,
    HealthCheckDisabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RegistrationInProgress => "Elb.RegistrationInProgress",
            Reason::InitialHealthChecking => "Elb.InitialHealthChecking",
            Reason::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            Reason::Timeout => "Target.Timeout",
            Reason::FailedHealthChecks => "Target.FailedHealthChecks",
            Reason::NotRegistered => "Target.NotRegistered",
            Reason::NotInUse => "Target.NotInUse",
            Reason::DeregistrationInProgress => "Target.DeregistrationInProgress",
            Reason::HealthCheckDisabled => "Target.HealthCheckDisabled",
        }
    }
}

/// A target's health as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: HealthState,
    pub reason: Option<Reason>,
    pub description: Option<String>,
}

fn health(state: HealthState, reason: Reason, description: impl Into<String>) -> TargetHealth {
    TargetHealth { state, reason: Some(reason), description: Some(description.into()) }
}

/// ELB's state of a target from its registration (None: not registered), what the data
/// plane observed (None: nothing yet) and whether a listener forwards to its group.
pub fn health_of(target: Option<&TargetRecord>, observed: Option<&HealthRecord>, in_use: bool) -> TargetHealth {
    let Some(target) = target else {
        return health(HealthState::Unused, Reason::NotRegistered, "Target is not registered to the target group");
    };
    if let TargetState::Draining { .. } = target.state {
        return health(HealthState::Draining, Reason::DeregistrationInProgress, "Target deregistration is in progress");
    }
    if !in_use {
        return health(
            HealthState::Unused,
            Reason::NotInUse,
            "Target group is not configured to receive traffic from the load balancer",
        );
    }
    match observed.map(|o| &o.health) {
        None => health(HealthState::Initial, Reason::RegistrationInProgress, "Target registration is in progress"),
        Some(Health::Initial) => {
            health(HealthState::Initial, Reason::InitialHealthChecking, "Initial health checks in progress")
        }
        Some(Health::Healthy) => TargetHealth { state: HealthState::Healthy, reason: None, description: None },
        Some(Health::Unhealthy(Failure::ResponseCode(code))) => health(
            HealthState::Unhealthy,
            Reason::ResponseCodeMismatch,
            format!("Health checks failed with these codes: [{code}]"),
        ),
        Some(Health::Unhealthy(Failure::Timeout)) => {
            health(HealthState::Unhealthy, Reason::Timeout, "Request timed out")
        }
        Some(Health::Unhealthy(Failure::Failed)) => {
            health(HealthState::Unhealthy, Reason::FailedHealthChecks, "Health checks failed")
        }
        Some(Health::Unchecked) => {
            health(HealthState::Unavailable, Reason::HealthCheckDisabled, "Health checks are disabled")
        }
    }
}

/// A container instance as targets see it: its zone and the address its host is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHost {
    pub zone: String,
    /// The instance's `berth.host-address` attribute, if it has one.
    pub address: Option<IpAddr>,
}

/// The region's registered container instances by `ec2InstanceId`.
pub fn instance_hosts(region: &Region<'_>) -> ControlResult<HashMap<String, InstanceHost>> {
    let mut out = HashMap::new();
    for cluster in region.store().list(&region.keys.clusters())? {
        let name = cluster.key.rsplit('/').next().unwrap_or_default();
        for kv in region.store().list(&region.keys.instances(name))? {
            let rec: InstanceRecord = decode(&kv)?;
            let Some(ec2) = rec.instance.get("ec2InstanceId").and_then(Value::as_str) else { continue };
            if rec.status == InstanceStatus::Inactive {
                continue;
            }
            let zone = rec
                .attribute("ecs.availability-zone")
                .map_or_else(|| vpc::zones::default_zone(&region.name), str::to_string);
            let address = rec.attribute("berth.host-address").and_then(|a| a.parse().ok());
            out.insert(ec2.to_string(), InstanceHost { zone, address });
        }
    }
    Ok(out)
}

/// A target as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInput {
    pub id: String,
    /// None: the group's port.
    pub port: Option<u16>,
    pub zone: Option<String>,
}

/// The zone of an `ip` target: its subnet's (a zone given must agree).
fn ip_zone(region: &Region<'_>, tg: &TargetGroupRecord, id: &str, given: Option<&str>) -> ControlResult<String> {
    let ip: IpAddr =
        id.parse().map_err(|_| ElbError::validation(format!("The IP address '{id}' is not a valid IP address")))?;
    let IpAddr::V4(ip) = ip else {
        return Err(
            ElbError::unsupported(format!("Berth's target groups are IPv4: '{id}' cannot be registered")).into()
        );
    };
    if given == Some("all") {
        return Err(
            ElbError::unsupported("Berth does not support targets outside the VPC (AvailabilityZone 'all')").into()
        );
    }
    let vpc = vpc::vpcs::get(region, &tg.vpc_id)
        .map_err(|_| ElbError::InvalidTarget(format!("The target group's VPC '{}' no longer exists", tg.vpc_id)))?;
    if !vpc.record.cidr.contains(&ip) {
        return Err(ElbError::InvalidTarget(format!(
            "The IP address '{ip}' is not within the CIDR block '{}' of the target group's VPC '{}'",
            vpc.record.cidr, tg.vpc_id
        ))
        .into());
    }
    let subnet = vpc::subnets::list(region)?.into_iter().find(|s| s.vpc_id == tg.vpc_id && s.cidr.contains(&ip));
    let Some(subnet) = subnet else {
        return Err(ElbError::InvalidTarget(format!(
            "The IP address '{ip}' is in no subnet of the target group's VPC '{}'",
            tg.vpc_id
        ))
        .into());
    };
    match given {
        Some(zone) if zone != subnet.zone => Err(ElbError::validation(format!(
            "The IP address '{ip}' is in Availability Zone '{}', not '{zone}'",
            subnet.zone
        ))
        .into()),
        _ => Ok(subnet.zone),
    }
}

/// `i-` and 8 or 17 lowercase hex digits.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|hex| matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A checked target's port and zone.
fn resolve(
    region: &Region<'_>,
    tg: &TargetGroupRecord,
    input: &TargetInput,
    instances: &HashMap<String, InstanceHost>,
) -> ControlResult<(u16, String)> {
    let port = input.port.unwrap_or(tg.port);
    let zone = match tg.target_type {
        TargetType::Ip => ip_zone(region, tg, &input.id, input.zone.as_deref())?,
        TargetType::Instance => {
            if input.zone.is_some() {
                return Err(
                    ElbError::validation("An Availability Zone cannot be specified for instance targets").into()
                );
            }
            if !is_instance_id(&input.id) {
                return Err(ElbError::validation(format!("The instance ID '{}' is not valid", input.id)).into());
            }
            let host = instances.get(&input.id).ok_or_else(|| {
                ElbError::InvalidTarget(format!(
                    "The following targets are not registered container instances of this region: '{}'",
                    input.id
                ))
            })?;
            host.zone.clone()
        }
    };
    Ok((port, zone))
}

/// The compares and writes that register one checked target (idempotent; a draining target
/// is registered again).
fn registration_ops(
    region: &Region<'_>,
    tg: &Stored<TargetGroupRecord>,
    id: &str,
    port: u16,
    zone: String,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let key = region.keys.target(&tg.record.id, id, port);
    let mut compares = vec![Compare::CreateRevision(tg.kv.key.clone(), CmpOp::Equal, tg.kv.create_revision)];
    let fresh =
        TargetRecord { id: id.to_string(), port, zone, registered: region.timestamp(), state: TargetState::Registered };
    match read::<TargetRecord>(region, &key)? {
        None => {
            compares.push(Compare::absent(&key));
            Ok((compares, vec![Op::put(&key, encode(&fresh))]))
        }
        Some(existing) => {
            compares.push(Compare::unchanged(&key, existing.kv.mod_revision));
            match existing.record.state {
                TargetState::Registered => Ok((compares, Vec::new())),
                TargetState::Draining { .. } => Ok((compares, vec![Op::put(&key, encode(&fresh))])),
            }
        }
    }
}

/// `TooManyTargets` when registering `adding` (id, port) pairs would take the group past
/// its quota (pairs already registered count once).
fn check_room(region: &Region<'_>, tg: &TargetGroupRecord, adding: &[(&str, u16)]) -> ControlResult<()> {
    let mut keys: std::collections::BTreeSet<String> = region
        .store()
        .range(&KeyRange::prefix(&region.keys.targets(&tg.id)))?
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    keys.extend(adding.iter().map(|(id, port)| region.keys.target(&tg.id, id, *port)));
    if keys.len() > TARGETS {
        let message = format!("A target group can have at most {TARGETS} targets");
        return Err(ElbError::too_many(Limit::Targets, message).into());
    }
    Ok(())
}

/// For the ECS service integration: the compares and writes registering `id` on `port` in a
/// target group, for the caller's own transaction. Registering a registered target changes
/// nothing; a draining one is registered again. `zone`: an `ip` target's zone when the
/// caller knows it (checked against its subnet's); an `instance` target's zone is always its
/// container instance's, so `zone` is not used for one.
pub fn register_target_ops(
    region: &Region<'_>,
    tg_arn: &str,
    id: &str,
    port: u16,
    zone: Option<&str>,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let tg = target_groups::get(region, tg_arn)?;
    let instances = match tg.record.target_type {
        TargetType::Instance => instance_hosts(region)?,
        TargetType::Ip => HashMap::new(),
    };
    // An instance's zone is its record's; an `ip` target's is checked against its subnet.
    let zone = if tg.record.target_type == TargetType::Ip { zone.map(str::to_string) } else { None };
    let input = TargetInput { id: id.to_string(), port: Some(port), zone };
    let (_, zone) = resolve(region, &tg.record, &input, &instances)?;
    check_room(region, &tg.record, &[(id, port)])?;
    registration_ops(region, &tg, id, port, zone)
}

/// RegisterTargets: every target checked, all registered in one transaction.
pub async fn register(region: &Region<'_>, tg_arn: &str, inputs: &[TargetInput]) -> ControlResult<()> {
    retry(|| async {
        let tg = target_groups::get(region, tg_arn)?;
        let instances = match tg.record.target_type {
            TargetType::Instance => instance_hosts(region)?,
            TargetType::Ip => HashMap::new(),
        };
        let mut resolved: BTreeMap<(String, u16), String> = BTreeMap::new();
        for input in inputs {
            let (port, zone) = resolve(region, &tg.record, input, &instances)?;
            resolved.insert((input.id.clone(), port), zone);
        }
        let adding: Vec<(&str, u16)> = resolved.keys().map(|(id, port)| (id.as_str(), *port)).collect();
        check_room(region, &tg.record, &adding)?;
        let (mut compares, mut ops) = (Vec::new(), Vec::new());
        for ((id, port), zone) in resolved {
            let (c, o) = registration_ops(region, &tg, &id, port, zone)?;
            compares.extend(c);
            ops.extend(o);
        }
        commit(region, compares, ops).await
    })
    .await
}

/// The writes that remove a target and what was observed of it.
fn removal_ops(region: &Region<'_>, tg_id: &str, id: &str, port: u16) -> Vec<Op> {
    vec![Op::delete(&region.keys.target(tg_id, id, port)), Op::delete(&region.keys.target_health(tg_id, id, port))]
}

/// The compares and writes deregistering a registered target: draining until the group's
/// deregistration delay has passed, or gone at once when the delay is 0 or no listener
/// forwards to the group. `None`: it is not registered (nothing to do).
fn deregistration_ops(
    region: &Region<'_>,
    tg: &Stored<TargetGroupRecord>,
    target: &Stored<TargetRecord>,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let mut compares = vec![Compare::unchanged(&target.kv.key, target.kv.mod_revision)];
    if let TargetState::Draining { .. } = target.record.state {
        return Ok((compares, Vec::new()));
    }
    let delay = tg.record.deregistration_delay();
    let (id, port) = (&target.record.id, target.record.port);
    if delay == 0 {
        return Ok((compares, removal_ops(region, &tg.record.id, id, port)));
    }
    let refs = Refs::read(region)?;
    if !refs.uses(&tg.record.arn) {
        compares.extend(refs.guards(region));
        return Ok((compares, removal_ops(region, &tg.record.id, id, port)));
    }
    let since = region.timestamp();
    let draining =
        TargetRecord { state: TargetState::Draining { since, until: since + delay as f64 }, ..target.record.clone() };
    Ok((compares, vec![Op::put(&target.kv.key, encode(&draining))]))
}

/// For the ECS service integration: the compares and writes deregistering `id` on `port`
/// from a target group, for the caller's own transaction (see [`deregistration_ops`]).
/// A target that is not registered, or already draining, changes nothing.
pub fn deregister_target_ops(
    region: &Region<'_>,
    tg_arn: &str,
    id: &str,
    port: u16,
) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let tg = target_groups::get(region, tg_arn)?;
    let key = region.keys.target(&tg.record.id, id, port);
    match read::<TargetRecord>(region, &key)? {
        None => Ok((vec![Compare::absent(&key)], Vec::new())),
        Some(target) => deregistration_ops(region, &tg, &target),
    }
}

/// DeregisterTargets: every target named must be registered (`InvalidTarget` otherwise).
pub async fn deregister(region: &Region<'_>, tg_arn: &str, inputs: &[TargetInput]) -> ControlResult<()> {
    retry(|| async {
        let tg = target_groups::get(region, tg_arn)?;
        let (mut compares, mut ops) = (Vec::new(), Vec::new());
        let mut seen = std::collections::BTreeSet::new();
        for input in inputs {
            let port = input.port.unwrap_or(tg.record.port);
            if !seen.insert((input.id.clone(), port)) {
                continue;
            }
            let key = region.keys.target(&tg.record.id, &input.id, port);
            let target = read::<TargetRecord>(region, &key)?.ok_or_else(|| {
                ElbError::InvalidTarget(format!(
                    "The following targets are not registered in target group '{tg_arn}': '{}:{port}'",
                    input.id
                ))
            })?;
            let (c, o) = deregistration_ops(region, &tg, &target)?;
            compares.extend(c);
            ops.extend(o);
        }
        commit(region, compares, ops).await
    })
    .await
}

/// One target's line of DescribeTargetHealth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthView {
    pub id: String,
    pub port: u16,
    /// None for a target that is not registered.
    pub zone: Option<String>,
    /// The port health checks go to.
    pub health_check_port: u16,
    pub health: TargetHealth,
}

/// DescribeTargetHealth: the targets asked for (by id, and port or the group's), or every
/// registered one.
pub fn describe(
    region: &Region<'_>,
    tg_arn: &str,
    asked: Option<&[TargetInput]>,
) -> ControlResult<Vec<TargetHealthView>> {
    let tg = target_groups::get(region, tg_arn)?.record;
    let in_use = Refs::read(region)?.uses(tg_arn);
    let targets: Vec<TargetRecord> =
        read_all(region, &region.keys.targets(&tg.id))?.1.into_iter().map(|s| s.record).collect();
    let observed: HashMap<String, HealthRecord> =
        read_all::<HealthRecord>(region, &region.keys.target_healths(&tg.id))?
            .1
            .into_iter()
            .map(|s| (s.kv.key.clone(), s.record))
            .collect();
    let wanted: Vec<(String, u16)> = match asked {
        Some(list) => list.iter().map(|t| (t.id.clone(), t.port.unwrap_or(tg.port))).collect(),
        None => targets.iter().map(|t| (t.id.clone(), t.port)).collect(),
    };
    let view = |(id, port): (String, u16)| {
        let target = targets.iter().find(|t| t.id == id && t.port == port);
        let seen = observed.get(&region.keys.target_health(&tg.id, &id, port));
        TargetHealthView {
            zone: target.map(|t| t.zone.clone()),
            health_check_port: tg.health_check.port.unwrap_or(port),
            health: health_of(target, seen, in_use),
            id,
            port,
        }
    };
    Ok(wanted.into_iter().map(view).collect())
}

/// For the ECS service integration: a target's health as DescribeTargetHealth shows it, or
/// None once it is fully deregistered (or was never registered, or its group is gone).
pub fn target_health(region: &Region<'_>, tg_arn: &str, id: &str, port: u16) -> ControlResult<Option<TargetHealth>> {
    HealthReader::new(region).health(tg_arn, id, port)
}

/// Reads the health of many targets (a scheduler pass over a service's tasks), each target
/// group and the listeners and rules that say which groups are in use read once.
pub struct HealthReader<'a, 'r> {
    region: &'a Region<'r>,
    refs: Option<Refs>,
    groups: HashMap<String, Option<TargetGroupRecord>>,
}

impl<'a, 'r> HealthReader<'a, 'r> {
    pub fn new(region: &'a Region<'r>) -> Self {
        HealthReader { region, refs: None, groups: HashMap::new() }
    }

    /// The target group, None when it is gone.
    pub fn group(&mut self, tg_arn: &str) -> ControlResult<Option<&TargetGroupRecord>> {
        if !self.groups.contains_key(tg_arn) {
            let found = target_groups::find(self.region, tg_arn)?.map(|s| s.record);
            self.groups.insert(tg_arn.to_string(), found);
        }
        Ok(self.groups[tg_arn].as_ref())
    }

    /// A target's health, None once it is fully deregistered (or its group is gone).
    pub fn health(&mut self, tg_arn: &str, id: &str, port: u16) -> ControlResult<Option<TargetHealth>> {
        let region = self.region;
        let Some(tg_id) = self.group(tg_arn)?.map(|g| g.id.clone()) else { return Ok(None) };
        let Some(target) = read::<TargetRecord>(region, &region.keys.target(&tg_id, id, port))? else {
            return Ok(None);
        };
        let seen = read::<HealthRecord>(region, &region.keys.target_health(&tg_id, id, port))?;
        if self.refs.is_none() {
            self.refs = Some(Refs::read(region)?);
        }
        let in_use = self.refs.as_ref().is_some_and(|r| r.uses(tg_arn));
        Ok(Some(health_of(Some(&target.record), seen.as_ref().map(|s| &s.record), in_use)))
    }
}

/// The region and group id of a target group ARN, if it is one.
fn group_of(arn: &str) -> Option<(String, String)> {
    let parsed = arns::parse(arn)?;
    match parsed.resource {
        Resource::TargetGroup { id, .. } => Some((parsed.region, id)),
        _ => None,
    }
}

/// Stores what the data plane observed: each target's health (and in-flight count while it
/// drains), writing only what changed. A draining target with nothing in flight finishes
/// deregistering at once. Reports of targets no longer registered are dropped.
pub async fn record_statuses(control: &Control, statuses: &[TargetStatus]) -> ControlResult<()> {
    let mut by_region: BTreeMap<String, Vec<(String, &TargetStatus)>> = BTreeMap::new();
    for status in statuses {
        match group_of(&status.target_group_arn) {
            Some((region, tg)) => by_region.entry(region).or_default().push((tg, status)),
            None => tracing::warn!(arn = %status.target_group_arn, "a target status for no target group"),
        }
    }
    for (name, statuses) in by_region {
        let region = control.region(&name);
        retry(|| async {
            let (mut compares, mut ops) = (Vec::new(), Vec::new());
            for (tg, status) in &statuses {
                let (c, o) = status_ops(&region, tg, status)?;
                compares.extend(c);
                ops.extend(o);
            }
            commit(&region, compares, ops).await
        })
        .await?;
    }
    Ok(())
}

/// The compares and writes one observation calls for (none when nothing changed).
fn status_ops(region: &Region<'_>, tg: &str, status: &TargetStatus) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let (id, port) = (&status.key.id, status.key.port);
    let Some(target) = read::<TargetRecord>(region, &region.keys.target(tg, id, port))? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let draining = matches!(target.record.state, TargetState::Draining { .. });
    let guard = Compare::unchanged(&target.kv.key, target.kv.mod_revision);
    if draining && status.in_flight == 0 {
        return Ok((vec![guard], removal_ops(region, tg, id, port)));
    }
    let wanted = HealthRecord { health: status.health.clone(), in_flight: if draining { status.in_flight } else { 0 } };
    let key = region.keys.target_health(tg, id, port);
    let current = read::<HealthRecord>(region, &key)?;
    if current.as_ref().is_some_and(|c| c.record == wanted) {
        return Ok((Vec::new(), Vec::new()));
    }
    let unchanged = match &current {
        Some(c) => Compare::unchanged(&key, c.kv.mod_revision),
        None => Compare::absent(&key),
    };
    let exists = Compare::CreateRevision(target.kv.key.clone(), CmpOp::Equal, target.kv.create_revision);
    Ok((vec![exists, unchanged], vec![Op::put(&key, encode(&wanted))]))
}

/// Housekeeping: draining targets whose deregistration delay has passed leave.
pub async fn finish_draining(control: &Control) -> ControlResult<()> {
    for kv in control.store.range(&KeyRange::prefix(ELB_REGIONS))?.kvs {
        let region = control.region(&kv.key[ELB_REGIONS.len()..]);
        let now = region.timestamp();
        let prefix = region.keys.all_targets();
        for target in read_all::<TargetRecord>(&region, &prefix)?.1 {
            let TargetState::Draining { until, .. } = target.record.state else { continue };
            if until > now {
                continue;
            }
            let tg = target.kv.key[prefix.len()..].split('/').next().unwrap_or_default().to_string();
            let txn = Txn::new()
                .when(vec![Compare::unchanged(&target.kv.key, target.kv.mod_revision)])
                .and_then(removal_ops(&region, &tg, &target.record.id, target.record.port));
            region.store().txn(txn).await?;
        }
    }
    Ok(())
}

/// The address requests to a target go to.
pub fn address_of(
    tg: &TargetGroupRecord,
    target: &TargetRecord,
    instances: &HashMap<String, InstanceHost>,
) -> Option<std::net::SocketAddr> {
    let ip = match tg.target_type {
        TargetType::Ip => target.id.parse::<IpAddr>().ok()?,
        TargetType::Instance => {
            instances.get(&target.id).and_then(|h| h.address).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
    };
    Some(std::net::SocketAddr::new(ip, target.port))
}
