//! Repository policies (Get/Set/DeleteRepositoryPolicy) and lifecycle policies
//! (Put/Get/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview).

use std::sync::Mutex;

use berth_registry::{RegistryError, lifecycle};
use serde_json::{Value, json};

use super::errors::EcrResult;
use super::{head, repository_arg, scope, with};
use crate::ecs::{Ctx, Obj, text};

pub fn get_policy(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let (_, repo) = ctx.app.registry.repository(&scope(ctx), &name)?;
    let policy = repo.policy.ok_or(RegistryError::PolicyNotFound(name.clone()))?;
    Ok(with(head(ctx, &name), json!({"policyText": policy})))
}

pub async fn set_policy(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let text = text(&input, "policyText").unwrap_or_default().to_string();
    berth_registry::access::parse_policy(&text)?;
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            r.policy = Some(text.clone());
            Ok(())
        })
        .await?;
    Ok(with(head(ctx, &name), json!({"policyText": text})))
}

pub async fn delete_policy(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let removed = Mutex::new(None);
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            *removed.lock().expect("lock") = Some(r.policy.take().ok_or(RegistryError::PolicyNotFound(name.clone()))?);
            Ok(())
        })
        .await?;
    Ok(with(head(ctx, &name), json!({"policyText": removed.into_inner().expect("lock")})))
}

pub async fn put_lifecycle(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let text = text(&input, "lifecyclePolicyText").unwrap_or_default().to_string();
    lifecycle::parse(&text)?;
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            r.lifecycle_policy = Some(text.clone());
            Ok(())
        })
        .await?;
    Ok(with(head(ctx, &name), json!({"lifecyclePolicyText": text})))
}

pub fn get_lifecycle(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let (_, repo) = ctx.app.registry.repository(&scope(ctx), &name)?;
    let text = repo.lifecycle_policy.ok_or(RegistryError::LifecyclePolicyNotFound(name.clone()))?;
    let mut extra = json!({"lifecyclePolicyText": text});
    if let Some(t) = repo.lifecycle_evaluated_at {
        extra["lastEvaluatedAt"] = json!(t);
    }
    Ok(with(head(ctx, &name), extra))
}

pub async fn delete_lifecycle(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let removed = Mutex::new(None);
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            let text = r.lifecycle_policy.take().ok_or(RegistryError::LifecyclePolicyNotFound(name.clone()))?;
            *removed.lock().expect("lock") = Some(text);
            Ok(())
        })
        .await?;
    Ok(with(head(ctx, &name), json!({"lifecyclePolicyText": removed.into_inner().expect("lock")})))
}

pub async fn start_preview(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let preview = ctx.app.registry.preview_lifecycle(&scope(ctx), &name, text(&input, "lifecyclePolicyText")).await?;
    Ok(with(head(ctx, &name), json!({"lifecyclePolicyText": preview.lifecycle_policy_text, "status": preview.status})))
}

pub fn get_preview(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let preview = ctx.app.registry.lifecycle_preview(&scope(ctx), &name)?;
    let results: Vec<Value> = preview
        .results
        .iter()
        .map(|e| {
            json!({"imageDigest": e.image_digest, "imageTags": e.image_tags, "imagePushedAt": e.image_pushed_at,
                "action": {"type": "EXPIRE"}, "appliedRulePriority": e.applied_rule_priority})
        })
        .collect();
    let total = results.len();
    Ok(with(
        head(ctx, &name),
        json!({"lifecyclePolicyText": preview.lifecycle_policy_text, "status": preview.status,
            "previewResults": results, "summary": {"expiringImageTotalCount": total}}),
    ))
}
