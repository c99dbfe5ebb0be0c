//! Tags on VPC resources: CreateTags, DeleteTags, DescribeTags — for VPCs, subnets,
//! security groups, security group rules and network interfaces (the resources Berth
//! keeps); any other id is `InvalidID`. A request changes every resource it names, or none.

use berth_control::vpc::tagged::{self, TagChange, TagOf};
use berth_control::vpc::tags::TagMatch;
use serde_json::{Value, json};

use super::{filters, invalid, page, ready, tags_in};
use crate::ecs::{Ctx, Obj, strings};
use crate::error::ApiResult;

/// The filters of DescribeTags.
const FILTERS: &[&str] = &["key", "resource-id", "resource-type", "value", "tag:"];

fn field(t: &TagOf, filter: &str) -> Vec<String> {
    if let Some(key) = filter.strip_prefix("tag:") {
        return if t.tag.key == key { vec![t.tag.value.clone()] } else { Vec::new() };
    }
    let one = match filter {
        "key" => t.tag.key.clone(),
        "resource-id" => t.resource_id.clone(),
        "resource-type" => t.resource_type.into(),
        "value" => t.tag.value.clone(),
        _ => return Vec::new(),
    };
    vec![one]
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let tags = tags_in(input.get("Tags"));
    tagged::change(&ctx.region, &strings(&input, "Resources"), &TagChange::Set(tags)).await?;
    Ok(json!({}))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    ready(ctx).await?;
    let items = input.get("Tags").and_then(Value::as_array).cloned().unwrap_or_default();
    let which = items
        .iter()
        .map(|t| TagMatch {
            key: t["Key"].as_str().unwrap_or_default().to_string(),
            value: t.get("Value").and_then(Value::as_str).map(str::to_string),
        })
        .collect();
    tagged::change(&ctx.region, &strings(&input, "Resources"), &TagChange::Remove(which)).await?;
    Ok(json!({}))
}

pub async fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    // The model leaves MaxResults unbounded; EC2 documents 5 to 1000.
    if let Some(n) = input.get("MaxResults").and_then(Value::as_i64).filter(|n| !(5..=1000).contains(n)) {
        return Err(invalid(format!(
            "Value ({n}) for parameter MaxResults is invalid. It must be between 5 and 1000."
        )));
    }
    ready(ctx).await?;
    let filters = filters::parse(&input, FILTERS)?;
    let listed = tagged::all(&ctx.region)?
        .into_iter()
        .filter(|t| filters::matches(&filters, |f| field(t, f)))
        .map(|t| {
            let sort = format!("{}\u{0}{}", t.resource_id, t.tag.key);
            let out = json!({
                "ResourceId": t.resource_id,
                "ResourceType": t.resource_type,
                "Key": t.tag.key,
                "Value": t.tag.value,
            });
            (sort, out)
        })
        .collect();
    page(&input, listed, "Tags")
}
