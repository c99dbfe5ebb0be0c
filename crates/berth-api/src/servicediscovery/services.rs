//! Services: CreateService, GetService, ListServices, UpdateService, DeleteService, and the
//! service attributes (GetServiceAttributes, UpdateServiceAttributes,
//! DeleteServiceAttributes). Route 53 health checks (`HealthCheckConfig`, public DNS
//! namespaces only) are refused; custom health checks act.

use berth_control::discovery::records::CustomHealthConfig;
use berth_control::discovery::services::{self as domain, NewService, ServiceChange};
use berth_control::discovery::{DnsConfig, DnsRecord, RecordType, RoutingPolicy, ServiceRecord};
use serde_json::{Value, json};

use super::{SdResult, filters, invalid, map_of, max_results, operation_answer, owner_keeps, page, tags_of};
use crate::ecs::{Ctx, Obj, strings, text};

fn refuse_route53_health_check(input: &Obj, at: &str) -> SdResult<()> {
    if input.contains_key("HealthCheckConfig") {
        return Err(invalid(format!(
            "{at}HealthCheckConfig (Route 53 health checks) is for public DNS namespaces, which Berth does not have: use HealthCheckCustomConfig and UpdateInstanceCustomHealthStatus."
        )));
    }
    Ok(())
}

/// A service as GetService and ListServices show it.
pub fn json(ctx: &Ctx<'_>, s: &ServiceRecord, instance_count: usize, full: bool) -> Value {
    let account = &ctx.config().account;
    let mut out = json!({
        "Id": s.id, "Arn": s.arn, "ResourceOwner": account, "Name": s.name, "Type": s.kind.as_str(),
        "InstanceCount": instance_count, "CreateDate": s.created, "CreatedByAccount": account,
    });
    if full {
        out["NamespaceId"] = json!(s.namespace_id);
        if let Some(t) = &s.creator_request_id {
            out["CreatorRequestId"] = json!(t);
        }
    }
    if let Some(d) = &s.description {
        out["Description"] = json!(d);
    }
    if let Some(dns) = &s.dns {
        let records: Vec<Value> = dns.records.iter().map(|r| json!({"Type": r.kind.as_str(), "TTL": r.ttl})).collect();
        out["DnsConfig"] = json!({"RoutingPolicy": dns.routing_policy.as_str(), "DnsRecords": records});
        if full {
            out["DnsConfig"]["NamespaceId"] = json!(s.namespace_id);
        }
    }
    if let Some(c) = &s.custom_health {
        out["HealthCheckCustomConfig"] = match c.failure_threshold {
            Some(t) => json!({"FailureThreshold": t}),
            None => json!({}),
        };
    }
    out
}

fn records_of(config: &Value) -> Vec<DnsRecord> {
    config["DnsRecords"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(DnsRecord {
                kind: RecordType::parse(r["Type"].as_str()?)?,
                ttl: r["TTL"].as_i64().unwrap_or_default(),
            })
        })
        .collect()
}

fn new_service(input: &Obj) -> SdResult<NewService> {
    refuse_route53_health_check(input, "")?;
    let config = input.get("DnsConfig");
    let namespace = match (text(input, "NamespaceId"), config.and_then(|c| c["NamespaceId"].as_str())) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(format!("NamespaceId {a} and DnsConfig.NamespaceId {b} name different namespaces.")));
        }
        (Some(a), _) | (None, Some(a)) => a.to_string(),
        (None, None) => return Err(invalid("CreateService needs a NamespaceId.")),
    };
    let dns = config.map(|c| DnsConfig {
        routing_policy: c["RoutingPolicy"].as_str().and_then(RoutingPolicy::parse).unwrap_or(RoutingPolicy::Multivalue),
        records: records_of(c),
    });
    Ok(NewService {
        name: text(input, "Name").unwrap_or_default().to_string(),
        namespace,
        description: text(input, "Description").map(str::to_string),
        dns,
        http_only: text(input, "Type") == Some("HTTP"),
        custom_health: input
            .get("HealthCheckCustomConfig")
            .map(|c| CustomHealthConfig { failure_threshold: c["FailureThreshold"].as_i64() }),
        tags: tags_of(input),
        creator_request_id: text(input, "CreatorRequestId").map(str::to_string),
        connect: None,
    })
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let service = domain::create(&ctx.region, &new_service(&input)?).await?;
    let count = domain::instance_count(&ctx.region, &service.id)?;
    Ok(json!({"Service": json(ctx, &service, count, true)}))
}

pub fn get(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let service = domain::get(&ctx.region, text(&input, "Id").unwrap_or_default())?.record;
    let count = domain::instance_count(&ctx.region, &service.id)?;
    Ok(json!({"Service": json(ctx, &service, count, true)}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let mut services = domain::list(&ctx.region)?;
    for f in filters(&input)? {
        match f.name.as_str() {
            "NAMESPACE_ID" => {
                f.check(&["EQ"])?;
                let id = berth_control::discovery::id_of(&ctx.region, "namespace", &f.values[0]).unwrap_or_default();
                services.retain(|s| s.namespace_id == id);
            }
            "RESOURCE_OWNER" => {
                if !owner_keeps(&f)? {
                    services.clear();
                }
            }
            other => return Err(invalid(format!("Unknown service filter {other}."))),
        }
    }
    let mut items = Vec::new();
    for s in &services {
        let count = domain::instance_count(&ctx.region, &s.id)?;
        items.push((s.id.clone(), json(ctx, s, count, false)));
    }
    page(&input, "Services", items, max_results(&input, 100))
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let change = input.get("Service").and_then(Value::as_object).cloned().unwrap_or_default();
    refuse_route53_health_check(&change, "Service.")?;
    let change = ServiceChange {
        description: text(&change, "Description").map(str::to_string),
        records: change.get("DnsConfig").map(records_of),
    };
    if change.description.is_none() && change.records.is_none() {
        return Err(invalid("Service names nothing to change: give a Description or DnsConfig."));
    }
    let op = domain::update(&ctx.region, text(&input, "Id").unwrap_or_default(), &change).await?;
    Ok(operation_answer(&op))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    domain::delete(&ctx.region, text(&input, "Id").unwrap_or_default()).await?;
    Ok(json!({}))
}

pub fn get_attributes(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let s = domain::get(&ctx.region, text(&input, "ServiceId").unwrap_or_default())?.record;
    Ok(
        json!({"ServiceAttributes": {"ServiceArn": s.arn, "ResourceOwner": ctx.config().account, "Attributes": s.attributes}}),
    )
}

pub async fn update_attributes(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let id = text(&input, "ServiceId").unwrap_or_default();
    domain::change_attributes(&ctx.region, id, &map_of(&input, "Attributes"), &[]).await?;
    Ok(json!({}))
}

pub async fn delete_attributes(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let id = text(&input, "ServiceId").unwrap_or_default();
    domain::change_attributes(&ctx.region, id, &Default::default(), &strings(&input, "Attributes")).await?;
    Ok(json!({}))
}
