//! Tags on namespaces and services, by ARN: TagResource, UntagResource, ListTagsForResource.

use berth_control::discovery::tags as domain;
use serde_json::{Value, json};

use super::{SdResult, tags_json, tags_of};
use crate::ecs::{Ctx, Obj, strings, text};

pub async fn tag(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    domain::tag(&ctx.region, text(&input, "ResourceARN").unwrap_or_default(), &tags_of(&input)).await?;
    Ok(json!({}))
}

pub async fn untag(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    domain::untag(&ctx.region, text(&input, "ResourceARN").unwrap_or_default(), &strings(&input, "TagKeys")).await?;
    Ok(json!({}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let tags = domain::list(&ctx.region, text(&input, "ResourceARN").unwrap_or_default())?;
    Ok(json!({"Tags": tags_json(&tags)}))
}
