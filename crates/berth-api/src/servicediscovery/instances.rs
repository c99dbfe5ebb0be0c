//! Instances: RegisterInstance, DeregisterInstance, GetInstance, ListInstances,
//! GetInstancesHealthStatus, UpdateInstanceCustomHealthStatus, and discovery
//! (DiscoverInstances, DiscoverInstancesRevision).

use berth_control::discovery::discover::{self as domain, HealthFilter, Query};
use berth_control::discovery::{CustomHealth, DiscoveryError, instances, services};
use serde_json::{Value, json};

use super::{SdResult, invalid, map_of, max_results, operation_answer, page, page_of};
use crate::ecs::{Ctx, Obj, strings, text};

fn ids(input: &Obj) -> (&str, &str) {
    (text(input, "ServiceId").unwrap_or_default(), text(input, "InstanceId").unwrap_or_default())
}

pub async fn register(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let (service, instance) = ids(&input);
    let attributes = map_of(&input, "Attributes");
    let token = text(&input, "CreatorRequestId");
    let op = instances::register(&ctx.region, service, instance, &attributes, token).await?;
    Ok(operation_answer(&op))
}

pub async fn deregister(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let (service, instance) = ids(&input);
    let op = instances::deregister(&ctx.region, service, instance).await?;
    Ok(operation_answer(&op))
}

pub fn get(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let (service, instance) = ids(&input);
    let (_, i) = instances::get(&ctx.region, service, instance)?;
    let account = &ctx.config().account;
    let mut out = json!({"Id": i.record.id, "Attributes": i.record.attributes, "CreatedByAccount": account});
    if let Some(t) = &i.record.creator_request_id {
        out["CreatorRequestId"] = json!(t);
    }
    Ok(json!({"ResourceOwner": account, "Instance": out}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let service = services::get(&ctx.region, text(&input, "ServiceId").unwrap_or_default())?.record;
    let account = &ctx.config().account;
    let mut items = instances::list(&ctx.region, &service.id)?
        .into_iter()
        .map(|i| (i.id.clone(), json!({"Id": i.id, "Attributes": i.attributes, "CreatedByAccount": account})))
        .collect::<Vec<_>>();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = page(&input, "Instances", items, max_results(&input, 100))?;
    out["ResourceOwner"] = json!(account);
    Ok(out)
}

/// GetInstancesHealthStatus: `UNKNOWN` for every instance of a service without a health check.
pub fn health(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let service = services::get(&ctx.region, text(&input, "ServiceId").unwrap_or_default())?.record;
    let all = instances::list(&ctx.region, &service.id)?;
    let asked = strings(&input, "Instances");
    let mut items: Vec<(String, Value)> = Vec::new();
    if asked.is_empty() {
        items.extend(all.iter().map(|i| (i.id.clone(), json!(i.health_status().as_str()))));
    } else {
        for id in &asked {
            let i = all.iter().find(|i| i.id == *id).ok_or_else(|| DiscoveryError::InstanceNotFound(id.clone()))?;
            items.push((i.id.clone(), json!(i.health_status().as_str())));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.dedup_by(|a, b| a.0 == b.0);
    let (chunk, next) = page_of(&input, items, max_results(&input, 100))?;
    let mut out = json!({"Status": chunk.into_iter().collect::<serde_json::Map<String, Value>>()});
    if let Some(token) = next {
        out["NextToken"] = json!(token);
    }
    Ok(out)
}

pub async fn set_health(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let (service, instance) = ids(&input);
    let status = text(&input, "Status")
        .and_then(CustomHealth::parse)
        .ok_or_else(|| invalid("Status is HEALTHY or UNHEALTHY."))?;
    instances::set_custom_health(&ctx.region, service, instance, status).await?;
    Ok(json!({}))
}

/// Another account's namespace is never found: nothing is shared with this one.
fn check_owner(ctx: &Ctx<'_>, input: &Obj) -> SdResult<()> {
    match text(input, "OwnerAccount") {
        Some(owner) if owner != ctx.config().account => {
            Err(DiscoveryError::NamespaceNameNotFound(text(input, "NamespaceName").unwrap_or_default().to_string())
                .into())
        }
        _ => Ok(()),
    }
}

/// DiscoverInstances; `HealthStatus` defaults to HEALTHY (and is ignored for services without
/// a health check).
pub fn discover(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    check_owner(ctx, &input)?;
    let query = map_of(&input, "QueryParameters");
    let optional = map_of(&input, "OptionalParameters");
    let health = text(&input, "HealthStatus").and_then(HealthFilter::parse).unwrap_or(HealthFilter::Healthy);
    let q = Query {
        namespace: text(&input, "NamespaceName").unwrap_or_default(),
        service: text(&input, "ServiceName").unwrap_or_default(),
        query: &query,
        optional: &optional,
        health,
        max_results: max_results(&input, 100),
    };
    let found = domain::discover(&ctx.region, &q)?;
    let instances: Vec<Value> = found
        .instances
        .iter()
        .map(|(i, h)| {
            json!({"InstanceId": i.id, "NamespaceName": found.namespace.name, "ServiceName": found.service.name,
                   "HealthStatus": h.as_str(), "Attributes": i.attributes})
        })
        .collect();
    Ok(json!({"Instances": instances, "InstancesRevision": found.revision}))
}

pub fn revision(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    check_owner(ctx, &input)?;
    let namespace = text(&input, "NamespaceName").unwrap_or_default();
    let (_, revision) = domain::revision(&ctx.region, namespace, text(&input, "ServiceName").unwrap_or_default())?;
    Ok(json!({"InstancesRevision": revision}))
}
