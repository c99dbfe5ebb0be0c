//! Tags of log groups: TagResource, UntagResource, ListTagsForResource (by ARN) and the
//! older TagLogGroup, UntagLogGroup, ListTagsLogGroup (by name).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::groups::{tags_member, update};
use super::{Ctx, group_named, invalid};
use crate::ecs::{Obj, strings, text};
use crate::error::{ApiError, ApiResult};

/// At most 50 tags; keys of 1-128 characters not starting with `aws:`, values up to 256.
pub fn check_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::new(400, "TooManyTagsException", "A resource can have no more than 50 tags."));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid(format!("Invalid tag '{k}': keys are 1-128 characters, values at most 256.")));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("Tag keys starting with 'aws:' are reserved for AWS."));
        }
    }
    Ok(())
}

/// The log group a tagging ARN names (log groups are the only taggable resource here).
fn group_of_arn(ctx: &Ctx<'_>, arn: &str) -> ApiResult<String> {
    let prefix = format!("arn:aws:logs:{}:{}:log-group:", ctx.name, ctx.config().account);
    match arn.strip_prefix(&prefix) {
        Some(name) if !name.ends_with(":*") && !name.contains(":log-stream:") => Ok(name.to_string()),
        _ => Err(invalid(format!(
            "Invalid resourceArn {arn}: Berth tags log groups only, named as arn:aws:logs:REGION:ACCOUNT:log-group:NAME."
        ))),
    }
}

async fn add(ctx: &Ctx<'_>, name: &str, tags: BTreeMap<String, String>) -> ApiResult<Value> {
    let (_, group) = group_named(ctx, name)?;
    let mut merged = group.tags.clone();
    merged.extend(tags.clone());
    check_tags(&merged)?;
    update(ctx, name, |g| g.tags.extend(tags.clone())).await?;
    Ok(json!({}))
}

async fn remove(ctx: &Ctx<'_>, name: &str, keys: Vec<String>) -> ApiResult<Value> {
    update(ctx, name, |g| g.tags.retain(|k, _| !keys.contains(k))).await?;
    Ok(json!({}))
}

fn list(ctx: &Ctx<'_>, name: &str) -> ApiResult<Value> {
    let (_, group) = group_named(ctx, name)?;
    Ok(json!({"tags": group.tags}))
}

pub async fn tag_resource(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = group_of_arn(ctx, text(&input, "resourceArn").unwrap_or_default())?;
    add(ctx, &name, tags_member(&input, "tags")?).await
}

pub async fn untag_resource(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = group_of_arn(ctx, text(&input, "resourceArn").unwrap_or_default())?;
    remove(ctx, &name, strings(&input, "tagKeys")).await
}

pub fn list_for_resource(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    list(ctx, &group_of_arn(ctx, text(&input, "resourceArn").unwrap_or_default())?)
}

pub async fn tag_group(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    add(ctx, text(&input, "logGroupName").unwrap_or_default(), tags_member(&input, "tags")?).await
}

pub async fn untag_group(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    remove(ctx, text(&input, "logGroupName").unwrap_or_default(), strings(&input, "tags")).await
}

pub fn list_group(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    list(ctx, text(&input, "logGroupName").unwrap_or_default())
}
