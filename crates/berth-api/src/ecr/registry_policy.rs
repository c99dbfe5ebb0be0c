//! PutRegistryPolicy, GetRegistryPolicy and DeleteRegistryPolicy: the policy that governs
//! every repository of the registry (see `berth_registry::registry_policy`).

use serde_json::{Value, json};

use super::errors::EcrResult;
use super::scope;
use crate::ecs::{Ctx, Obj, text};

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let policy = text(&input, "policyText").unwrap_or_default();
    ctx.app.registry.put_registry_policy(&scope(ctx), policy).await?;
    Ok(json!({"registryId": ctx.config().account, "policyText": policy}))
}

pub fn get(ctx: &Ctx<'_>) -> EcrResult<Value> {
    let policy =
        ctx.app.registry.registry_policy(&scope(ctx))?.ok_or(berth_registry::RegistryError::RegistryPolicyNotFound)?;
    Ok(json!({"registryId": ctx.config().account, "policyText": policy}))
}

pub async fn delete(ctx: &Ctx<'_>) -> EcrResult<Value> {
    let policy = ctx.app.registry.delete_registry_policy(&scope(ctx)).await?;
    Ok(json!({"registryId": ctx.config().account, "policyText": policy}))
}
