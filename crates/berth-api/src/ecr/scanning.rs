//! PutRegistryScanningConfiguration, GetRegistryScanningConfiguration and
//! BatchGetRepositoryScanningConfiguration: stored and reported (see
//! `berth_registry::scanning`); images are not scanned yet.

use berth_registry::RegistryError;
use berth_registry::scanning::Configuration;
use serde_json::{Value, json};

use super::errors::{EcrResult, invalid_repository_name};
use super::scope;
use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::ApiError;

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let rules = input.get("rules").cloned().unwrap_or_else(|| json!([]));
    let config = Configuration {
        scan_type: text(&input, "scanType").unwrap_or("BASIC").to_string(),
        rules: serde_json::from_value(rules).map_err(|e| ApiError::invalid(format!("Invalid rules: {e}.")))?,
    };
    ctx.app.registry.put_scanning_configuration(&scope(ctx), config.clone()).await?;
    Ok(json!({"registryScanningConfiguration": config}))
}

pub fn get(ctx: &Ctx<'_>) -> EcrResult<Value> {
    let config = ctx.app.registry.scanning_configuration(&scope(ctx))?;
    Ok(json!({"registryId": ctx.config().account, "scanningConfiguration": config}))
}

pub fn batch_get_repositories(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let s = scope(ctx);
    let registry = &ctx.app.registry;
    let config = registry.scanning_configuration(&s)?;
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for name in strings(&input, "repositoryNames") {
        if !berth_registry::repositories::valid_name(&name) {
            return Err(invalid_repository_name());
        }
        match registry.repository(&s, &name) {
            Ok((_, repo)) => {
                let e = config.effective(&repo);
                found.push(json!({"repositoryArn": registry.arn(&s.region, &name), "repositoryName": name,
                    "scanOnPush": e.scan_on_push, "scanFrequency": e.scan_frequency,
                    "appliedScanFilters": e.applied_filters}));
            }
            Err(RegistryError::RepositoryNotFound(_)) => failures.push(json!({"repositoryName": name,
                "failureCode": "REPOSITORY_NOT_FOUND", "failureReason": "REPOSITORY_NOT_FOUND"})),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({"scanningConfigurations": found, "failures": failures}))
}
