//! The bridge between ECS and the placement engine: reading `placementConstraints` and
//! `placementStrategy` (with ECS's errors), and describing a cluster's container instances as
//! the engine sees them.

use std::collections::BTreeMap;

use berth_placement::query::{self, Expr};
use berth_placement::{Constraint, Instance, Plan, Request, Resource, SpreadField, Strategy};
use berth_store::{KeyValue, StoreExt};
use serde_json::Value;

use thiserror::Error;

use crate::Region;
use crate::error::{ControlError, ControlResult};
use crate::records::{InstanceRecord, InstanceStatus};
use crate::store::decode;
use crate::task_index::Index;

/// Why a constraint or strategy is refused; the variant is ECS's exception.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// `InvalidParameterException`.
    #[error("{0}")]
    Invalid(String),
    /// `ClientException`.
    #[error("{0}")]
    Client(String),
}

impl From<SpecError> for ControlError {
    fn from(e: SpecError) -> Self {
        ControlError::Placement(e.to_string())
    }
}

/// ECS's limits on one request.
const MAX_CONSTRAINTS: usize = 10;
const MAX_STRATEGIES: usize = 5;

/// Parses a cluster query language expression, or says where it is wrong.
pub fn expression(raw: &str) -> Result<Expr, SpecError> {
    query::parse(raw).map_err(|e| SpecError::Invalid(format!("Invalid expression '{raw}': {e}.")))
}

/// `placementConstraints`: `distinctInstance`, or `memberOf` with an expression. A task
/// definition may only carry `memberOf`.
pub fn constraints(list: &[Value], in_definition: bool) -> Result<Vec<Constraint>, SpecError> {
    if list.len() > MAX_CONSTRAINTS {
        return Err(SpecError::Invalid(format!("At most {MAX_CONSTRAINTS} placement constraints are allowed.")));
    }
    list.iter()
        .map(|c| match (c["type"].as_str(), c["expression"].as_str()) {
            (Some("distinctInstance"), _) if in_definition => Err(SpecError::Client(
                "distinctInstance is not a valid constraint in a task definition; use memberOf.".into(),
            )),
            (Some("distinctInstance"), None) => Ok(Constraint::DistinctInstance),
            (Some("distinctInstance"), Some(_)) => {
                Err(SpecError::Invalid("The distinctInstance constraint takes no expression.".into()))
            }
            (Some("memberOf"), Some(raw)) => Ok(Constraint::MemberOf(expression(raw)?)),
            (Some("memberOf"), None) => Err(SpecError::Invalid("The memberOf constraint needs an expression.".into())),
            (other, _) => Err(SpecError::Invalid(format!(
                "Invalid placement constraint type {}: use distinctInstance or memberOf.",
                other.unwrap_or("(none)")
            ))),
        })
        .collect()
}

/// `placementStrategy`: `binpack` on cpu or memory, `spread` on instanceId, host or an
/// attribute, `random`.
pub fn strategies(list: &[Value]) -> Result<Vec<Strategy>, SpecError> {
    if list.len() > MAX_STRATEGIES {
        return Err(SpecError::Invalid(format!("At most {MAX_STRATEGIES} placement strategies are allowed.")));
    }
    list.iter()
        .map(|s| match (s["type"].as_str(), s["field"].as_str()) {
            (Some("random"), _) => Ok(Strategy::Random),
            (Some("binpack"), Some(f)) if f.eq_ignore_ascii_case("memory") => Ok(Strategy::Binpack(Resource::Memory)),
            (Some("binpack"), Some(f)) if f.eq_ignore_ascii_case("cpu") => Ok(Strategy::Binpack(Resource::Cpu)),
            (Some("binpack"), f) => Err(SpecError::Invalid(format!(
                "Invalid field {} for the binpack strategy: use cpu or memory.",
                f.unwrap_or("(none)")
            ))),
            (Some("spread"), Some("instanceId" | "host")) => Ok(Strategy::Spread(SpreadField::Instance)),
            (Some("spread"), Some(f)) if f.starts_with("attribute:") && f.len() > "attribute:".len() => {
                Ok(Strategy::Spread(SpreadField::Attribute(f["attribute:".len()..].to_string())))
            }
            (Some("spread"), f) => Err(SpecError::Invalid(format!(
                "Invalid field {} for the spread strategy: use instanceId, host or attribute:NAME.",
                f.unwrap_or("(none)")
            ))),
            (other, _) => Err(SpecError::Invalid(format!(
                "Invalid placement strategy type {}: use random, spread or binpack.",
                other.unwrap_or("(none)")
            ))),
        })
        .collect()
}

/// Placements over this many instance-task pairs run on a blocking thread.
const BLOCKING_PLACEMENT: usize = 1 << 16;

/// The placement engine's plan for `request` over `views`. A big one (a service's thousands of
/// tasks over thousands of instances: a second of work) runs on a blocking thread, so the
/// runtime's workers go on answering requests meanwhile; a RunTask's runs in place.
pub async fn place(views: Vec<Instance>, request: Request) -> ControlResult<Plan> {
    if views.len().saturating_mul(request.count) < BLOCKING_PLACEMENT {
        return Ok(berth_placement::place(&views, &request));
    }
    tokio::task::spawn_blocking(move || berth_placement::place(&views, &request))
        .await
        .map_err(|e| ControlError::Placement(format!("the placement engine failed: {e}")))
}

/// One container instance: its id, record and how the placement engine sees it.
pub struct Candidate {
    pub id: String,
    pub kv: KeyValue,
    pub record: InstanceRecord,
    pub view: Instance,
}

/// The cluster's container instances that are not deregistered, with the groups of the live
/// tasks on each (from the task index, caught up with the store first).
pub async fn candidates(region: &Region<'_>, cluster: &str) -> ControlResult<Vec<Candidate>> {
    let index = region.control.task_index().await?;
    let mut candidates = instances_in(region, cluster)?;
    let mut groups = task_groups(region, cluster, &candidates, &index);
    for c in &mut candidates {
        c.view.task_groups = groups.remove(&c.id).unwrap_or_default();
    }
    Ok(candidates)
}

/// [`candidates`] without the groups of the tasks on each instance: what a scheduler pass
/// needs of most services (a daemon's memberOf constraints ask for them: see
/// [`with_task_groups`]).
pub fn instances_in(region: &Region<'_>, cluster: &str) -> ControlResult<Vec<Candidate>> {
    Ok(listed(region, cluster)?.into_iter().map(|(kv, record)| candidate(region, kv, record, Vec::new())).collect())
}

/// The groups of the live tasks on each of `candidates`, by id, from the index.
fn task_groups(
    region: &Region<'_>,
    cluster: &str,
    candidates: &[Candidate],
    index: &Index<'_>,
) -> std::collections::HashMap<String, Vec<String>> {
    let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
    index.instance_groups(&region.name, cluster, &ids)
}

/// The views of `candidates` with the groups of the live tasks on each, from the index.
pub fn with_task_groups(
    region: &Region<'_>,
    cluster: &str,
    candidates: &[Candidate],
    index: &Index<'_>,
) -> Vec<Instance> {
    let mut groups = task_groups(region, cluster, candidates, index);
    candidates
        .iter()
        .map(|c| Instance { task_groups: groups.remove(&c.id).unwrap_or_default(), ..c.view.clone() })
        .collect()
}

/// The cluster's instance records that are not deregistered.
fn listed(region: &Region<'_>, cluster: &str) -> ControlResult<Vec<(KeyValue, InstanceRecord)>> {
    let mut listed = Vec::new();
    for kv in region.store().list(&region.keys.instances(cluster))? {
        let record: InstanceRecord = decode(&kv)?;
        if record.status != InstanceStatus::Inactive {
            listed.push((kv, record));
        }
    }
    Ok(listed)
}

/// One instance as placement sees it, with the groups of its live tasks.
pub fn candidate(region: &Region<'_>, kv: KeyValue, record: InstanceRecord, task_groups: Vec<String>) -> Candidate {
    let timeout = region.config().agent_timeout.as_secs_f64();
    let id = kv.key.rsplit('/').next().unwrap_or_default().to_string();
    let attributes: BTreeMap<String, Option<String>> = record.instance["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["name"].as_str()?.to_string(), a["value"].as_str().map(str::to_string))))
        .collect();
    let text = |k: &str| record.instance.get(k).and_then(Value::as_str).map(str::to_string);
    let view = Instance {
        id: id.clone(),
        active: record.status == InstanceStatus::Active,
        agent_connected: record.connected(region.timestamp(), timeout),
        remaining: record.remaining(),
        attributes,
        ec2_instance_id: text("ec2InstanceId"),
        registered_at: record.instance.get("registeredAt").and_then(Value::as_f64).map(|t| t.to_string()),
        agent_version: record.instance["versionInfo"]["agentVersion"].as_str().map(str::to_string),
        task_groups,
    };
    Candidate { id, kv, record, view }
}
