//! Fargate capacity: the container instances whose agents lend their capacity to FARGATE
//! tasks, and the FARGATE tasks each one hosts.
//!
//! A lending instance registers with [`FARGATE_ATTRIBUTE`]; registration indexes it under
//! `Keys::fargate_hosts`. A FARGATE task of any cluster is placed on one of them: its
//! resources come from the instance (one account of the machine, shared with the EC2 tasks
//! of the instance's own cluster), the task record keeps the instance as its
//! [`Host`](crate::records::Host), and an index entry under `Keys::hosted_tasks` lets the
//! instance's agent find it. The task itself shows no `containerInstanceArn`, as on AWS.

use berth_model::launch::{FARGATE_ATTRIBUTE, PLATFORM_VERSION};
use berth_model::resources::Shortfall;
use berth_placement::Rejection;
use berth_store::{KeyValue, StoreExt};
use serde_json::{Value, json};

use crate::Region;
use crate::error::ControlResult;
use crate::placement::{self, Candidate};
use crate::records::{Host, InstanceRecord, InstanceStatus, TaskRecord};
use crate::store::{Obj, decode};
use crate::vpc;

/// ECS's reason when Fargate has no room for a task.
pub const NO_CAPACITY: &str =
    "Capacity is unavailable at this time. Please try again later or in a different availability zone";

/// Whether a registering instance's attributes say it lends its capacity to Fargate.
pub fn lends(attributes: &[Value]) -> bool {
    attributes.iter().any(|a| a.get("name").and_then(Value::as_str) == Some(FARGATE_ATTRIBUTE))
}

/// The instance a store key under `Keys::instances` names.
pub fn host_of(instance_key: &str) -> Host {
    let mut parts = instance_key.rsplit('/');
    let id = parts.next().unwrap_or_default().to_string();
    let cluster = parts.next().unwrap_or_default().to_string();
    Host { cluster, id }
}

/// Every instance lending capacity to Fargate that is not deregistered, with its record.
pub fn hosts(region: &Region<'_>) -> ControlResult<Vec<(Host, KeyValue, InstanceRecord)>> {
    let mut out = Vec::new();
    for entry in region.store().list(&region.keys.fargate_hosts())? {
        let host = host_of(&entry.key);
        let Some(kv) = region.store().get(&region.keys.instance(&host.cluster, &host.id))? else { continue };
        let record: InstanceRecord = decode(&kv)?;
        if record.status != InstanceStatus::Inactive {
            out.push((host, kv, record));
        }
    }
    Ok(out)
}

/// The [`hosts`] as placement sees them: with the groups of the FARGATE tasks each hosts, so
/// placement spreads a group over them.
pub fn candidates(region: &Region<'_>) -> ControlResult<Vec<Candidate>> {
    let mut out = Vec::new();
    for (host, kv, record) in hosts(region)? {
        let mut groups = Vec::new();
        for task in hosted_records(region, &host)? {
            let task: TaskRecord = decode(&task)?;
            groups.push(task.field("group").unwrap_or_default().to_string());
        }
        out.push(placement::candidate(region, kv, record, groups));
    }
    Ok(out)
}

/// The [`candidates`] a task can be placed on: with `public`, only those whose agent gives out
/// public addresses (`--public-cidr`).
pub fn candidates_for(region: &Region<'_>, public: bool) -> ControlResult<Vec<Candidate>> {
    let mut out = candidates(region)?;
    if public {
        out.retain(|c| crate::task_network::public_pool(&c.record.instance).is_some());
    }
    Ok(out)
}

/// What RunTask answers when Fargate hosts exist but none gives out public addresses.
pub const NO_PUBLIC_ADDRESSES: &str = "No Fargate host of this installation gives out public addresses: start an agent lending its capacity to Fargate with --public-cidr and --public-interface (see docs/networking.md), or use assignPublicIp DISABLED.";

/// The FARGATE tasks placed on `host` that have not stopped: (task cluster, task id).
pub fn hosted(region: &Region<'_>, host: &Host) -> ControlResult<Vec<(String, String)>> {
    let listed = region.store().list(&region.keys.hosted_tasks(&host.cluster, &host.id))?;
    Ok(listed.iter().map(|kv| task_of(&kv.key)).collect())
}

/// The (cluster, id) of the task a `Keys::hosted_task` key names.
fn task_of(key: &str) -> (String, String) {
    let mut parts = key.rsplit('/');
    let id = parts.next().unwrap_or_default().to_string();
    let cluster = parts.next().unwrap_or_default().to_string();
    (cluster, id)
}

/// Reads the live task records a host's index names, with their store entries.
pub fn hosted_records(region: &Region<'_>, host: &Host) -> ControlResult<Vec<KeyValue>> {
    let mut out = Vec::new();
    for (cluster, id) in hosted(region, host)? {
        out.extend(region.store().get(&region.keys.task(&cluster, &id))?);
    }
    Ok(out)
}

/// Turns a new task into a FARGATE one: no container instance, the platform it runs on, and
/// the availability zone of its interface's subnet.
pub fn shape_task(region: &Region<'_>, task: &mut Obj, subnet_id: Option<&str>) -> ControlResult<()> {
    task.remove("containerInstanceArn");
    task.insert("launchType".into(), json!("FARGATE"));
    task.insert("platformVersion".into(), json!(PLATFORM_VERSION));
    task.insert("platformFamily".into(), json!("Linux"));
    task.remove("availabilityZone");
    if let Some(id) = subnet_id {
        let subnet = vpc::subnets::get(region, id)?;
        task.insert("availabilityZone".into(), json!(subnet.record.zone));
    }
    Ok(())
}

/// ECS's failure detail when no host could take a FARGATE task: what was short.
pub fn shortage(rejections: &[(String, Rejection)]) -> String {
    let short = |s: Shortfall| rejections.iter().any(|(_, r)| *r == Rejection::Resource(s));
    if rejections.is_empty() {
        "Berth has no Fargate capacity: no agent lends its machine (berth agent --fargate)".into()
    } else if short(Shortfall::Memory) {
        "no Fargate host has the memory the task needs free".into()
    } else if short(Shortfall::Cpu) {
        "no Fargate host has the cpu the task needs free".into()
    } else {
        "no Fargate host's agent is connected".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_instance_and_task() {
        assert_eq!(host_of("ecs/us-east-1/instance/default/abc"), Host { cluster: "default".into(), id: "abc".into() });
        assert_eq!(task_of("ecs/r/hosted/default/abc/prod/t1"), ("prod".to_string(), "t1".to_string()));
    }

    #[test]
    fn an_instance_lends_by_its_attribute() {
        assert!(lends(&[json!({"name": "ecs.os-type", "value": "linux"}), json!({"name": FARGATE_ATTRIBUTE})]));
        assert!(!lends(&[json!({"name": "ecs.os-type", "value": "linux"})]));
    }

    #[test]
    fn a_shortage_says_what_was_short() {
        assert!(shortage(&[]).contains("no agent lends"));
        let mem = vec![("a".to_string(), Rejection::Resource(Shortfall::Memory)), ("b".to_string(), Rejection::Agent)];
        assert!(shortage(&mem).contains("memory"));
        assert!(shortage(&[("a".to_string(), Rejection::Agent)]).contains("connected"));
    }
}
