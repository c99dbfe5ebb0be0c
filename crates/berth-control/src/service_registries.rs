//! A service task's instance in its service's Cloud Map service (`serviceRegistries`), as ECS
//! keeps it: registered under the task's id once the task is RUNNING, with the attributes ECS
//! writes; its custom health following the task's health while it runs; deregistered in the
//! same transaction that asks the task to stop, or that records it stopped, so that a name
//! never keeps pointing at a task on its way out.
//!
//! The instances a task holds are kept on its record ([`Registration`]), so the instances it
//! leaves are those it made, whatever the service says by then.

use std::collections::BTreeMap;

use berth_model::health::Health;
use berth_model::task::{DesiredStatus, TaskStatus};
use berth_store::{Compare, Op, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Region;
use crate::discovery::{self, CustomHealth, DiscoveryError};
use crate::error::{ControlError, ControlResult};
use crate::records::TaskRecord;
use crate::service_targets::{host_port, instance_of, private_ip};
use crate::services::ServiceRecord;
use crate::store::{array, encode};

/// One instance a task registered: the Cloud Map service's id and the instance id (the task's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub service_id: String,
    pub instance_id: String,
}

/// One entry of a service's `serviceRegistries`, as CreateService checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The Cloud Map service's ARN.
    pub arn: String,
    /// `port`: the SRV port of an awsvpc task.
    pub port: Option<u16>,
    /// `containerName` and `containerPort`.
    pub container: Option<(String, u16)>,
}

/// The Cloud Map services a service's tasks register in: its `serviceRegistries`, and the
/// services of its Service Connect configuration (at their ports).
pub fn service_registries(service: &ServiceRecord) -> Vec<Registry> {
    let port = |v: Option<&Value>| v.and_then(Value::as_i64).and_then(|p| u16::try_from(p).ok());
    let mut registries: Vec<Registry> = array(&service.service, "serviceRegistries")
        .iter()
        .filter_map(|r| {
            let arn = r.get("registryArn")?.as_str()?.to_string();
            let container = r.get("containerName").and_then(Value::as_str).map(str::to_string);
            let container = container.zip(port(r.get("containerPort")));
            Some(Registry { arn, port: port(r.get("port")), container })
        })
        .collect();
    if let Some(member) = crate::service_connect::membership(service) {
        registries.extend(member.services.into_iter().map(|s| Registry {
            arn: s.discovery_arn,
            port: Some(s.port),
            container: None,
        }));
    }
    registries
}

/// The custom health a task reports: healthy once RUNNING when its definition checks no
/// container's health, else as its health checks decide (unknown counts as unhealthy).
pub fn custom_health(task: &TaskRecord, health_checked: bool) -> CustomHealth {
    if !health_checked || task.health == Health::Healthy { CustomHealth::Healthy } else { CustomHealth::Unhealthy }
}

/// The attributes ECS gives a task's instance; `None` while its address (or host port) is not
/// known yet.
fn attributes(
    region: &Region<'_>,
    (cluster, service): (&str, &ServiceRecord),
    registry: &Registry,
    task: &TaskRecord,
    health: Option<CustomHealth>,
) -> ControlResult<Option<BTreeMap<String, String>>> {
    let awsvpc = private_ip(task);
    let (address, port) = match &awsvpc {
        Some(ip) => (ip.clone(), registry.port.or(registry.container.as_ref().map(|c| c.1))),
        None => {
            let host = instance_of(region, cluster, task)?;
            let address = host.as_ref().and_then(|h| h.attribute("berth.host-address")).unwrap_or("127.0.0.1");
            let port = match &registry.container {
                Some((name, port)) => match host_port(task, name, *port) {
                    Some(p) => Some(p),
                    None => return Ok(None),
                },
                None => None,
            };
            (address.to_string(), port)
        }
    };
    if awsvpc.is_none() && task.task.get("attachments").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        // An awsvpc task whose interface is not attached yet.
        return Ok(None);
    }
    let family = task.field("taskDefinitionArn").and_then(|a| a.rsplit('/').next()).and_then(|f| f.split(':').next());
    let mut out = BTreeMap::new();
    out.insert("AWS_INSTANCE_IPV4".to_string(), address);
    if let Some(p) = port {
        out.insert("AWS_INSTANCE_PORT".to_string(), p.to_string());
    }
    if let Some(zone) = task.field("availabilityZone") {
        out.insert("AVAILABILITY_ZONE".to_string(), zone.to_string());
    }
    out.insert("REGION".to_string(), region.name.to_string());
    out.insert("ECS_CLUSTER_NAME".to_string(), cluster.to_string());
    if let Some(name) = service.service.get("serviceName").and_then(Value::as_str) {
        out.insert("ECS_SERVICE_NAME".to_string(), name.to_string());
    }
    if let Some(family) = family {
        out.insert("ECS_TASK_DEFINITION_FAMILY".to_string(), family.to_string());
    }
    if let Some(h) = health {
        out.insert("AWS_INIT_HEALTH_STATUS".to_string(), h.as_str().to_string());
    }
    Ok(Some(out))
}

/// Registers a RUNNING task of `service` with its Cloud Map services (with the task's write,
/// guarded by its revision), or brings a registered task's custom health up to date.
pub async fn sync(
    region: &Region<'_>,
    (cluster, service): (&str, &ServiceRecord),
    (key, revision): (&str, u64),
    rec: &TaskRecord,
    health_checked: bool,
) -> ControlResult<()> {
    let running = rec.last_status == TaskStatus::Running && rec.desired_status == DesiredStatus::Running;
    if !running {
        return Ok(());
    }
    if !rec.registrations.is_empty() {
        return follow_health(region, rec, health_checked).await;
    }
    let registries = service_registries(service);
    let id = rec.field("taskArn").and_then(|a| a.rsplit('/').next()).map(str::to_string);
    let Some(id) = id.filter(|_| !registries.is_empty()) else { return Ok(()) };
    let (mut compares, mut ops, mut made) = (Vec::new(), Vec::new(), Vec::new());
    for registry in &registries {
        let target = match discovery::services::get(region, &registry.arn) {
            Ok(t) => t.record,
            // Deleted since the service named it: nothing to register with (as ECS, which
            // goes on running the tasks).
            Err(ControlError::Discovery(DiscoveryError::ServiceNotFound(_))) => continue,
            Err(e) => return Err(e),
        };
        let health = target.custom_health.map(|_| custom_health(rec, health_checked));
        let Some(attributes) = attributes(region, (cluster, service), registry, rec, health)? else {
            return Ok(());
        };
        let (c, o) = discovery::instances::register_ops(region, &target.id, &id, &attributes)?;
        compares.extend(c);
        ops.extend(o);
        made.push(Registration { service_id: target.id, instance_id: id.clone() });
    }
    if made.is_empty() {
        return Ok(());
    }
    let mut rec = rec.clone();
    rec.registrations = made;
    compares.push(Compare::unchanged(key, revision));
    ops.push(Op::put(key, encode(&rec)));
    // Lost to a concurrent change of the task: the next pass sees it anew.
    region.store().txn(Txn::new().when(compares).and_then(ops)).await?;
    Ok(())
}

/// Reports the task's health to the Cloud Map services that take custom health.
async fn follow_health(region: &Region<'_>, rec: &TaskRecord, health_checked: bool) -> ControlResult<()> {
    let wanted = custom_health(rec, health_checked);
    for r in &rec.registrations {
        let Ok((service, instance)) = discovery::instances::get(region, &r.service_id, &r.instance_id) else {
            continue;
        };
        if service.record.custom_health.is_some() && instance.record.health != Some(wanted) {
            discovery::instances::set_custom_health(region, &r.service_id, &r.instance_id, wanted).await?;
        }
    }
    Ok(())
}

/// The compares and writes that deregister every instance the task holds; its record lets go
/// of them. Nothing when it holds none.
pub fn leave(region: &Region<'_>, rec: &mut TaskRecord) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let (mut compares, mut ops) = (Vec::new(), Vec::new());
    for r in std::mem::take(&mut rec.registrations) {
        let (c, o) = discovery::instances::deregister_ops(region, &r.service_id, &r.instance_id)?;
        compares.extend(c);
        ops.extend(o);
    }
    Ok((compares, ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_checks_only_when_there_are_some() {
        let mut task = TaskRecord::new(Default::default(), Default::default());
        for h in [Health::Unknown, Health::Healthy, Health::Unhealthy] {
            task.health = h;
            assert_eq!(custom_health(&task, false), CustomHealth::Healthy, "{h:?} without checks");
            let checked = if h == Health::Healthy { CustomHealth::Healthy } else { CustomHealth::Unhealthy };
            assert_eq!(custom_health(&task, true), checked, "{h:?} with checks");
        }
    }
}
