//! Namespaces: CreatePrivateDnsNamespace, CreateHttpNamespace, GetNamespace, ListNamespaces,
//! UpdatePrivateDnsNamespace, UpdateHttpNamespace, DeleteNamespace; public DNS namespaces are
//! refused (Berth serves no public DNS).

use berth_control::discovery::namespaces::{self as domain, NamespaceChange, NewNamespace};
use berth_control::discovery::{NamespaceRecord, NamespaceType};
use serde_json::{Value, json};

use super::{SdResult, filters, invalid, max_results, operation_answer, owner_keeps, page, tags_of};
use crate::ecs::{Ctx, Obj, text};

/// CreatePublicDnsNamespace and UpdatePublicDnsNamespace.
pub fn public() -> SdResult<Value> {
    Err(invalid(
        "Berth serves no public DNS: use a private DNS namespace (CreatePrivateDnsNamespace, answered by Berth's DNS server) or an HTTP namespace.",
    ))
}

/// A namespace as GetNamespace (`full`) and ListNamespaces show it.
pub fn json(ctx: &Ctx<'_>, ns: &NamespaceRecord, service_count: usize, full: bool) -> Value {
    let dns = match (&ns.hosted_zone_id, ns.soa_ttl) {
        (Some(zone), Some(ttl)) => json!({"HostedZoneId": zone, "SOA": {"TTL": ttl}}),
        _ => json!({}),
    };
    let mut out = json!({
        "Id": ns.id, "Arn": ns.arn, "ResourceOwner": ctx.config().account, "Name": ns.name,
        "Type": ns.kind.as_str(), "ServiceCount": service_count,
        "Properties": {"DnsProperties": dns, "HttpProperties": {"HttpName": ns.name}},
        "CreateDate": ns.created,
    });
    if let Some(d) = &ns.description {
        out["Description"] = json!(d);
    }
    if full && let Some(t) = &ns.creator_request_id {
        out["CreatorRequestId"] = json!(t);
    }
    out
}

/// The member at a JSON pointer of the request.
fn at<'v>(input: &'v Obj, pointer: &str) -> Option<&'v Value> {
    let (first, rest) = pointer.trim_start_matches('/').split_once('/')?;
    input.get(first)?.pointer(&format!("/{rest}"))
}

fn new_namespace(input: &Obj, kind: NamespaceType) -> NewNamespace {
    NewNamespace {
        name: text(input, "Name").unwrap_or_default().to_string(),
        kind,
        description: text(input, "Description").map(str::to_string),
        vpc: text(input, "Vpc").map(str::to_string),
        soa_ttl: at(input, "/Properties/DnsProperties/SOA/TTL").and_then(Value::as_i64),
        tags: tags_of(input),
        creator_request_id: text(input, "CreatorRequestId").map(str::to_string),
    }
}

pub async fn create_private(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let op = domain::create(&ctx.region, &new_namespace(&input, NamespaceType::DnsPrivate)).await?;
    Ok(operation_answer(&op))
}

pub async fn create_http(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let op = domain::create(&ctx.region, &new_namespace(&input, NamespaceType::Http)).await?;
    Ok(operation_answer(&op))
}

pub fn get(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let ns = domain::get(&ctx.region, text(&input, "Id").unwrap_or_default())?.record;
    let count = domain::service_count(&ctx.region, &ns.id)?;
    Ok(json!({"Namespace": json(ctx, &ns, count, true)}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let mut namespaces = domain::list(&ctx.region)?;
    for f in filters(&input)? {
        match f.name.as_str() {
            "TYPE" => {
                f.check(&["EQ", "IN"])?;
                namespaces.retain(|n| f.passes(n.kind.as_str()));
            }
            "NAME" | "HTTP_NAME" => {
                f.check(&["EQ", "BEGINS_WITH"])?;
                namespaces.retain(|n| f.passes(&n.name));
            }
            "RESOURCE_OWNER" => {
                if !owner_keeps(&f)? {
                    namespaces.clear();
                }
            }
            other => return Err(invalid(format!("Unknown namespace filter {other}."))),
        }
    }
    let mut items = Vec::new();
    for ns in &namespaces {
        let count = domain::service_count(&ctx.region, &ns.id)?;
        items.push((ns.id.clone(), json(ctx, ns, count, false)));
    }
    page(&input, "Namespaces", items, max_results(&input, 100))
}

fn change(input: &Obj) -> NamespaceChange {
    NamespaceChange {
        description: at(input, "/Namespace/Description").and_then(Value::as_str).map(str::to_string),
        soa_ttl: at(input, "/Namespace/Properties/DnsProperties/SOA/TTL").and_then(Value::as_i64),
        updater_request_id: text(input, "UpdaterRequestId").map(str::to_string),
    }
}

pub async fn update_private(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let change = change(&input);
    if change.description.is_none() && change.soa_ttl.is_none() {
        return Err(invalid("Namespace names nothing to change: give a Description or Properties."));
    }
    let id = text(&input, "Id").unwrap_or_default();
    let op = domain::update(&ctx.region, id, NamespaceType::DnsPrivate, &change).await?;
    Ok(operation_answer(&op))
}

pub async fn update_http(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let id = text(&input, "Id").unwrap_or_default();
    let op = domain::update(&ctx.region, id, NamespaceType::Http, &change(&input)).await?;
    Ok(operation_answer(&op))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let op = domain::delete(&ctx.region, text(&input, "Id").unwrap_or_default()).await?;
    Ok(operation_answer(&op))
}
