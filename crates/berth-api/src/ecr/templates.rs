//! CreateRepositoryCreationTemplate, DescribeRepositoryCreationTemplates,
//! UpdateRepositoryCreationTemplate and DeleteRepositoryCreationTemplate. Templates set up
//! the repositories the registry creates itself (see `berth_registry::templates`).

use berth_registry::templates::{normalize, valid_prefix};
use serde_json::{Value, json};

use super::errors::{EcrResult, invalid_at};
use super::repositories::{check_tags, encryption, mutability};
use super::scope;
use crate::ecs::{Ctx, Obj, array, max_results, page, strings, text, with_token};

fn prefix_arg(input: &Obj) -> EcrResult<String> {
    let prefix = text(input, "prefix").unwrap_or_default();
    if !valid_prefix(prefix) {
        return Err(invalid_at("prefix", &format!("'{prefix}' must be ROOT or a repository name prefix")));
    }
    Ok(prefix.to_string())
}

/// The change the members `input` gives make to a template, each checked as ECR checks it
/// (`null`: the member goes).
fn patch(ctx: &Ctx<'_>, input: &Obj) -> EcrResult<Value> {
    let mut template = json!({});
    if input.contains_key("customRoleArn") {
        return Err(invalid_at("customRoleArn", "Berth has no IAM roles; customRoleArn is not supported"));
    }
    if let Some(applied) = input.get("appliedFor") {
        if array(input, "appliedFor").is_empty() {
            return Err(invalid_at("appliedFor", "at least one of REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH"));
        }
        template["appliedFor"] = applied.clone();
    }
    if input.contains_key("imageTagMutability") || input.contains_key("imageTagMutabilityExclusionFilters") {
        let (setting, filters) = mutability(input)?;
        template["imageTagMutability"] = json!(setting);
        template["imageTagMutabilityExclusionFilters"] = if filters.is_empty() { Value::Null } else { json!(filters) };
    }
    if input.contains_key("encryptionConfiguration") {
        template["encryptionConfiguration"] = encryption(ctx, input)?;
    }
    if input.contains_key("resourceTags") {
        let tags = array(input, "resourceTags");
        check_tags(&tags)?;
        template["resourceTags"] = if tags.is_empty() { Value::Null } else { json!(tags) };
    }
    if let Some(policy) = text(input, "repositoryPolicy") {
        if !policy.is_empty() {
            berth_registry::access::parse_policy(policy)?;
        }
        template["repositoryPolicy"] = json!(policy);
    }
    if let Some(policy) = text(input, "lifecyclePolicy") {
        if !policy.is_empty() {
            berth_registry::lifecycle::parse(policy)?;
        }
        template["lifecyclePolicy"] = json!(policy);
    }
    if let Some(description) = text(input, "description") {
        template["description"] = json!(description);
    }
    template["updatedAt"] = json!(ctx.timestamp());
    Ok(template)
}

fn merge(template: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (template.as_object_mut(), patch.as_object()) else { return };
    for (k, v) in p {
        match v {
            Value::Null => t.remove(k),
            v => t.insert(k.clone(), v.clone()),
        };
    }
}

fn answer(ctx: &Ctx<'_>, template: Value) -> Value {
    json!({"registryId": ctx.config().account, "repositoryCreationTemplate": template})
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(&input)?;
    let mut template = json!({"prefix": prefix, "imageTagMutability": "MUTABLE", "appliedFor": [],
        "encryptionConfiguration": {"encryptionType": "AES256"}, "createdAt": ctx.timestamp()});
    merge(&mut template, &patch(ctx, &input)?);
    let template = ctx.app.registry.create_template(&scope(ctx), template).await?;
    Ok(answer(ctx, template))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let wanted = strings(&input, "prefixes");
    let limit = max_results(&input, 1000)?;
    let items = ctx
        .app
        .registry
        .templates(&scope(ctx))?
        .into_iter()
        .filter(|t| {
            wanted.is_empty()
                || wanted.iter().any(|w| normalize(w) == normalize(t["prefix"].as_str().unwrap_or_default()))
        })
        .map(|t| (t["prefix"].as_str().unwrap_or_default().to_string(), t))
        .collect();
    let (templates, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("registryId".into(), json!(ctx.config().account));
    out.insert("repositoryCreationTemplates".into(), json!(templates));
    Ok(with_token(out, next))
}

pub async fn update(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(&input)?;
    let change = patch(ctx, &input)?;
    let template = ctx
        .app
        .registry
        .update_template(&scope(ctx), &prefix, |t| {
            merge(t, &change);
            Ok(())
        })
        .await?;
    Ok(answer(ctx, template))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let prefix = prefix_arg(&input)?;
    let template = ctx.app.registry.delete_template(&scope(ctx), &prefix).await?;
    Ok(answer(ctx, template))
}
