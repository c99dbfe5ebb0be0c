//! A service's `serviceRegistries` (CreateService, UpdateService): the Cloud Map service its
//! tasks register in, and for SRV records the port (`port`, awsvpc) or the container and port
//! whose host port is published (`containerName`/`containerPort`). Checked as ECS checks them —
//! the Cloud Map service exists, the container and its port are in the task definition, SRV
//! records get a port, bridge and host tasks get SRV records — and kept on the service; the
//! scheduler registers each RUNNING task (`berth-control/src/service_registries.rs`).
//! ListServicesByNamespace finds services through them, and through Service Connect membership.

use berth_control::discovery::{self, RecordType};
use berth_control::service_connect::membership;
use berth_control::service_registries::service_registries;
use berth_control::services::{ServiceRecord, ServiceStatus};
use berth_store::StoreExt;
use serde_json::{Value, json};

use super::{Ctx, Obj, decode, max_results, page, text, with_token};
use crate::error::{ApiError, ApiResult};

/// How many registries one service may have (ECS allows one).
pub const MAX: usize = 1;

/// The checked `serviceRegistries` of a service running `definition`, as DescribeServices
/// shows them.
pub fn check(ctx: &Ctx<'_>, given: Option<&Value>, definition: &Obj) -> ApiResult<Value> {
    let list = match given {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::invalid("serviceRegistries must be a list.")),
    };
    if list.len() > MAX {
        return Err(ApiError::invalid(format!("A service can have at most {MAX} service registry.")));
    }
    list.iter().map(|entry| one(ctx, entry, definition)).collect::<ApiResult<Vec<_>>>().map(Value::Array)
}

fn port_of(entry: &Value, key: &str) -> ApiResult<Option<i64>> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64().filter(|p| (1..=65535).contains(p)) {
            Some(p) => Ok(Some(p)),
            None => Err(ApiError::invalid(format!("{key} must be between 1 and 65535."))),
        },
    }
}

fn one(ctx: &Ctx<'_>, entry: &Value, definition: &Obj) -> ApiResult<Value> {
    let Some(fields) = entry.as_object() else {
        return Err(ApiError::invalid("A service registry must be an object."));
    };
    if let Some(unknown) =
        fields.keys().find(|k| !["registryArn", "port", "containerName", "containerPort"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!("Unknown member of a service registry: {unknown}.")));
    }
    let arn = entry
        .get("registryArn")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("registryArn is required."))?;
    let port = port_of(entry, "port")?;
    let container_port = port_of(entry, "containerPort")?;
    let container = entry.get("containerName").and_then(Value::as_str).filter(|s| !s.is_empty());
    if container.is_some() != container_port.is_some() {
        return Err(ApiError::invalid("containerName and containerPort must be specified together."));
    }
    let target = match discovery::services::get(ctx, arn) {
        Ok(s) if s.record.arn == arn => s.record,
        _ => return Err(ApiError::invalid(format!("The service registry {arn} does not exist."))),
    };
    if let (Some(name), Some(p)) = (container, container_port) {
        let containers = definition.get("containerDefinitions").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(c) = containers.iter().find(|c| c["name"] == name) else {
            return Err(ApiError::invalid(format!("The container {name} does not exist in the task definition.")));
        };
        let mappings = c.get("portMappings").and_then(Value::as_array).cloned().unwrap_or_default();
        if !mappings.iter().any(|m| m["containerPort"].as_i64() == Some(p)) {
            return Err(ApiError::invalid(format!("The container {name} did not have a container port {p} defined.")));
        }
    }
    let awsvpc = definition.get("networkMode").and_then(Value::as_str) == Some("awsvpc");
    let srv = target.dns.as_ref().is_some_and(|d| d.has(RecordType::Srv));
    let a_records = target.dns.as_ref().is_some_and(|d| d.has(RecordType::A) || d.has(RecordType::Aaaa));
    if !awsvpc && port.is_some() {
        return Err(ApiError::invalid(
            "port applies to the awsvpc network mode only; bridge and host tasks name containerName and containerPort.",
        ));
    }
    if !awsvpc && a_records {
        return Err(ApiError::invalid(format!(
            "The service registry {arn} has A or AAAA records, which need the awsvpc network mode; bridge and host tasks \
             register SRV records."
        )));
    }
    if srv && port.is_none() && container.is_none() {
        return Err(ApiError::invalid(format!(
            "The service registry {arn} has SRV records: name a port, or a containerName and containerPort."
        )));
    }
    let mut out = Obj::new();
    out.insert("registryArn".into(), json!(arn));
    if let Some(p) = port {
        out.insert("port".into(), json!(p));
    }
    if let (Some(name), Some(p)) = (container, container_port) {
        out.insert("containerName".into(), json!(name));
        out.insert("containerPort".into(), json!(p));
    }
    Ok(Value::Object(out))
}

/// ListServicesByNamespace: the services of every cluster whose registry is a Cloud Map
/// service of the namespace (named by its name or ARN), as ListServices pages them.
pub fn list_by_namespace(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let given = text(&input, "namespace").ok_or_else(|| ApiError::invalid("namespace is required."))?;
    let limit = max_results(&input, 100)?;
    let namespace = match given.starts_with("arn:") {
        true => discovery::namespaces::get(ctx, given),
        false => discovery::namespaces::by_name(ctx, given),
    }
    .map_err(|_| ApiError::new(400, "NamespaceNotFoundException", format!("The namespace {given} was not found.")))?
    .record;
    let in_namespace = |arn: &str| {
        discovery::services::get(ctx, arn).is_ok_and(|s| s.record.namespace_id == namespace.id && s.record.arn == arn)
    };
    let mut items = Vec::new();
    for cluster in ctx.store().list(&ctx.keys.clusters())? {
        let name = cluster.key.rsplit('/').next().unwrap_or_default();
        for kv in ctx.store().list(&ctx.keys.services(name))? {
            let rec: ServiceRecord = decode(&kv)?;
            // Its registries' Cloud Map services, or (a Service Connect client) its membership.
            let named = service_registries(&rec).iter().any(|r| in_namespace(&r.arn))
                || membership(&rec).is_some_and(|m| m.namespace_id == namespace.id);
            if rec.status != ServiceStatus::Inactive && named {
                items.push((kv.key.clone(), rec.service["serviceArn"].clone()));
            }
        }
    }
    let (arns, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("serviceArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}
