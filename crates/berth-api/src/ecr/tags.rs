//! TagResource, UntagResource and ListTagsForResource on repositories (ECR tags are
//! `{Key, Value}`; they live in the repository record).

use berth_registry::RegistryError;
use serde_json::{Value, json};

use super::errors::{EcrResult, invalid_at};
use super::repositories::{check_tags, too_many_tags};
use super::scope;
use crate::ecs::{Ctx, Obj, array, strings, text};

/// The repository a `resourceArn` names (in the caller's region and this account).
fn repository_of(ctx: &Ctx<'_>, input: &Obj) -> EcrResult<String> {
    let arn = text(input, "resourceArn").unwrap_or_default();
    let prefix = format!("arn:aws:ecr:{}:{}:repository/", ctx.caller.region, ctx.config().account);
    match arn.strip_prefix(&prefix) {
        Some(name) if berth_registry::repositories::valid_name(name) => Ok(name.to_string()),
        _ => Err(invalid_at("resourceArn", "Invalid ARN")),
    }
}

pub async fn tag(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_of(ctx, &input)?;
    let new = array(&input, "tags");
    check_tags(&new)?;
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            for t in &new {
                let key = t.get("Key");
                r.tags.retain(|e| e.get("Key") != key);
                r.tags.push(t.clone());
            }
            if r.tags.len() > 50 {
                return Err(RegistryError::InvalidParameter("TooManyTags".into()));
            }
            Ok(())
        })
        .await
        .map_err(|e| match e {
            RegistryError::InvalidParameter(m) if m == "TooManyTags" => too_many_tags(),
            other => other.into(),
        })?;
    Ok(json!({}))
}

pub async fn untag(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_of(ctx, &input)?;
    let keys = strings(&input, "tagKeys");
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            r.tags.retain(|t| !keys.iter().any(|k| t.get("Key").and_then(Value::as_str) == Some(k)));
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_of(ctx, &input)?;
    let (_, repo) = ctx.app.registry.repository(&scope(ctx), &name)?;
    Ok(json!({"tags": repo.tags}))
}
