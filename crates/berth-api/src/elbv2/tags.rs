//! Tags: AddTags, RemoveTags, DescribeTags over load balancer, target group, listener and
//! rule ARNs (trust stores, which Berth does not have, are not found).

use berth_control::elb::tags::{self, TagChange};
use serde_json::{Value, json};

use super::{resource_arns, tags_in, tags_out};
use crate::ecs::{Ctx, Obj, strings};
use crate::error::ApiResult;

pub async fn add(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let change = TagChange::Add(tags_in(input.get("Tags")));
    tags::change(&ctx.region, &resource_arns(&input)?, &change).await?;
    Ok(json!({}))
}

pub async fn remove(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let change = TagChange::Remove(strings(&input, "TagKeys"));
    tags::change(&ctx.region, &resource_arns(&input)?, &change).await?;
    Ok(json!({}))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let described = tags::describe(&ctx.region, &resource_arns(&input)?)?;
    let out: Vec<Value> = described.iter().map(|(arn, t)| json!({"ResourceArn": arn, "Tags": tags_out(t)})).collect();
    Ok(json!({ "TagDescriptions": out }))
}
