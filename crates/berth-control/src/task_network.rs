//! The network interface of an awsvpc task, on the task side of the VPC model: what
//! `networkConfiguration.awsvpcConfiguration` asks for ([`NetworkRequest`], checked as ECS
//! checks it), the ENI allocated in the task's placement transaction and shown as ECS shows
//! it (the task's `ElasticNetworkInterface` attachment and each container's
//! `networkInterfaces`), its attachment's statuses (PRECREATED when placed, ATTACHED once the
//! agent reports the task RUNNING, DELETED when it stops, when its address is freed in the
//! same transaction), and what the agent is told ([`assigned_network`]).

use berth_model::launch::{LaunchType, PUBLIC_POOL_ATTRIBUTE};
use berth_store::{Compare, Op};
use serde_json::{Value, json};

use crate::Region;
use crate::error::{ControlError, ControlResult};
use crate::store::Obj;
use crate::vpc::{self, Eni, EniRequest};

/// The ECS attachment type of a task's interface.
pub const ENI_ATTACHMENT: &str = "ElasticNetworkInterface";

/// What an awsvpc task asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// Why a `networkConfiguration` is refused: ECS's `InvalidParameterException` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NetworkConfigError(pub String);

fn refuse(message: impl Into<String>) -> NetworkConfigError {
    NetworkConfigError(message.into())
}

/// The request in `networkConfiguration` for a definition in `network_mode`: required with
/// awsvpc and refused without it, as ECS does. A public address is for FARGATE tasks only,
/// as on ECS.
pub fn parse(
    network_mode: &str,
    configuration: Option<&Value>,
    launch_type: LaunchType,
) -> Result<Option<NetworkRequest>, NetworkConfigError> {
    let awsvpc = network_mode == "awsvpc";
    let configuration = configuration.filter(|v| !v.is_null());
    let Some(configuration) = configuration else {
        return if awsvpc {
            Err(refuse("Network Configuration must be provided when networkMode 'awsvpc' is specified."))
        } else {
            Ok(None)
        };
    };
    if !awsvpc {
        return Err(refuse("Network Configuration is not valid for the given networkMode of this task definition."));
    }
    let Some(c) = configuration.get("awsvpcConfiguration").filter(|v| v.is_object()) else {
        return Err(refuse("Network Configuration must contain an awsvpcConfiguration."));
    };
    let strings = |member: &str| -> Result<Vec<String>, NetworkConfigError> {
        match c.get(member) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| refuse(format!("{member} must be strings."))))
                .collect(),
            Some(_) => Err(refuse(format!("{member} must be a list of strings."))),
        }
    };
    let subnets = strings("subnets")?;
    let security_groups = strings("securityGroups")?;
    if subnets.is_empty() {
        return Err(refuse("subnets can not be empty."));
    }
    if subnets.len() > 16 {
        return Err(refuse("subnets can have at most 16 items."));
    }
    if security_groups.len() > 5 {
        return Err(refuse("securityGroups can have at most 5 items."));
    }
    let assign_public_ip = match c.get("assignPublicIp").and_then(Value::as_str) {
        None | Some("DISABLED") => false,
        Some("ENABLED") if launch_type == LaunchType::Ec2 => {
            return Err(refuse("Assign public IP is not supported for this launch type."));
        }
        Some("ENABLED") => true,
        Some(other) => {
            return Err(refuse(format!("Invalid assignPublicIp '{other}'. Valid values: ENABLED, DISABLED.")));
        }
    };
    Ok(Some(NetworkRequest { subnets, security_groups, assign_public_ip }))
}

/// Checks the request's subnets and groups exist in one VPC now (the placement transaction
/// checks again), with ECS's wording around EC2's message.
pub fn check(region: &Region<'_>, req: &NetworkRequest) -> ControlResult<Result<(), NetworkConfigError>> {
    let mut vpcs = Vec::new();
    for id in &req.subnets {
        match vpc::subnets::get(region, id) {
            Ok(s) => vpcs.push(s.record.vpc_id),
            Err(ControlError::Vpc(e)) => {
                return Ok(Err(refuse(format!("Error retrieving subnet information for [{id}]: {e}"))));
            }
            Err(e) => return Err(e),
        }
    }
    if vpcs.iter().any(|v| *v != vpcs[0]) {
        return Ok(Err(refuse("The subnets must all belong to the same VPC.")));
    }
    for id in &req.security_groups {
        match vpc::groups::get(region, id) {
            Ok(g) if g.record.vpc_id == vpcs[0] => {}
            Ok(_) => {
                return Ok(Err(refuse(format!("Security group {id} does not belong to the VPC of the subnets."))));
            }
            Err(ControlError::Vpc(e)) => {
                return Ok(Err(refuse(format!("Error retrieving security group information for [{id}]: {e}"))));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// The ENI of task `task_arn`, allocated beside the `pending` ones of the same transaction,
/// with the compares and writes that claim it; its public address (when asked for) from the
/// public block of `instance`, the one the task is placed on.
pub fn allocate(
    region: &Region<'_>,
    req: &NetworkRequest,
    (task_arn, instance): (&str, &Obj),
    pending: &[Eni],
) -> ControlResult<(Eni, Vec<Compare>, Vec<Op>)> {
    let request = EniRequest {
        subnets: &req.subnets,
        security_groups: &req.security_groups,
        assign_public_ip: req.assign_public_ip,
        public_pool: public_pool(instance),
        task_arn,
    };
    vpc::allocate_eni_ops_avoiding(region, &request, pending)
}

/// The block of public addresses a container instance registered with (its agent's
/// `--public-cidr`), if any.
pub fn public_pool(instance: &Obj) -> Option<ipnet::Ipv4Net> {
    let attributes = instance.get("attributes")?.as_array()?;
    let pool = attributes.iter().find(|a| a["name"] == PUBLIC_POOL_ATTRIBUTE)?;
    pool["value"].as_str()?.parse().ok()
}

/// Shows `eni` on the new `task`: its attachment (PRECREATED) and each container's
/// `networkInterfaces`.
pub fn show(region: &Region<'_>, task: &mut Obj, eni: &Eni) {
    let attachment_id = region.control.ids.uuid();
    let detail = |name: &str, value: String| json!({"name": name, "value": value});
    let attachment = json!({
        "id": attachment_id,
        "type": ENI_ATTACHMENT,
        "status": "PRECREATED",
        "details": [
            detail("subnetId", eni.subnet_id.clone()),
            detail("networkInterfaceId", eni.id.clone()),
            detail("macAddress", eni.mac.clone()),
            detail("privateDnsName", eni.private_dns_name.clone()),
            detail("privateIPv4Address", eni.private_ip.to_string()),
        ],
    });
    let mut attachment = attachment;
    if let Some(public) = eni.public_ip {
        attachment["details"].as_array_mut().expect("details").push(detail("publicIPv4Address", public.to_string()));
    }
    task.insert("attachments".into(), json!([attachment]));
    let interface = json!([{"attachmentId": attachment_id, "privateIpv4Address": eni.private_ip.to_string()}]);
    for c in task.get_mut("containers").and_then(Value::as_array_mut).into_iter().flatten() {
        c["networkInterfaces"] = interface.clone();
    }
}

/// The task's interface attachment, if it has one.
fn attachment_mut(task: &mut Obj) -> Option<&mut Value> {
    task.get_mut("attachments")?.as_array_mut()?.iter_mut().find(|a| a["type"] == ENI_ATTACHMENT)
}

/// The id of the task's interface while it holds one (not yet DELETED).
pub fn eni_id(task: &Obj) -> Option<String> {
    eni_among(task.get("attachments")?)
}

/// [`eni_id`] from the task's `attachments` alone.
pub fn eni_among(attachments: &Value) -> Option<String> {
    let attachment = attachments.as_array()?.iter().find(|a| a["type"] == ENI_ATTACHMENT)?;
    if attachment["status"] == "DELETED" {
        return None;
    }
    let details = attachment["details"].as_array()?;
    let id = details.iter().find(|d| d["name"] == "networkInterfaceId")?["value"].as_str()?;
    Some(id.to_string())
}

/// Marks the attachment ATTACHED (the agent reported the task running with it).
pub fn attached(task: &mut Obj) {
    if let Some(a) = attachment_mut(task).filter(|a| a["status"] == "PRECREATED") {
        a["status"] = json!("ATTACHED");
    }
}

/// The compares and writes that free the task's interface and its address, the attachment
/// marked DELETED: to commit with the task's move to STOPPED.
pub fn release(region: &Region<'_>, task: &mut Obj) -> ControlResult<(Vec<Compare>, Vec<Op>)> {
    let Some(id) = eni_id(task) else { return Ok(Default::default()) };
    let released = vpc::release_eni_ops(region, &id)?;
    if let Some(a) = attachment_mut(task) {
        a["status"] = json!("DELETED");
    }
    Ok(released)
}

/// What the agent is told of a live awsvpc task (`berthNetwork`), from the task's
/// `attachments`: its ENI and the rules of its security groups now. `None` for a task without
/// an interface (or whose interface is gone).
pub fn assigned_network(region: &Region<'_>, attachments: Option<&Value>) -> ControlResult<Option<Value>> {
    let Some(id) = attachments.and_then(eni_among) else { return Ok(None) };
    let eni = match vpc::enis::get(region, &id) {
        Ok(stored) => stored.record.eni,
        Err(ControlError::Vpc(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let rules = vpc::effective_rules(region, &eni.security_groups)?;
    Ok(Some(json!({"eni": eni, "rules": rules})))
}

#[cfg(test)]
mod tests;
