//! CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability and
//! PutImageScanningConfiguration.

use berth_registry::Repository;
use berth_registry::repositories::NewRepository;
use serde_json::{Value, json};

use super::errors::{EcrResult, exception, invalid_at};
use super::{head, repository_arg, scope, with};
use crate::ecs::{Ctx, Obj, array, max_results, page, strings, text, with_token};

/// A repository as ECR describes it.
pub fn to_json(ctx: &Ctx<'_>, r: &Repository) -> Value {
    let registry = &ctx.app.registry;
    let mut out = json!({
        "repositoryArn": registry.arn(&ctx.caller.region, &r.name),
        "registryId": ctx.config().account,
        "repositoryName": r.name,
        "repositoryUri": registry.uri(&r.name),
        "createdAt": r.created_at,
        "imageTagMutability": r.image_tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
        "encryptionConfiguration": r.encryption,
    });
    if !r.exclusion_filters.is_empty() {
        out["imageTagMutabilityExclusionFilters"] = json!(r.exclusion_filters);
    }
    out
}

/// ECR's `{Key, Value}` tags: at most 50, keys 1-128 characters, values up to 256.
pub fn check_tags(tags: &[Value]) -> EcrResult<()> {
    if tags.len() > 50 {
        return Err(too_many_tags());
    }
    for t in tags {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let value = t.get("Value").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 || key.starts_with("aws:") {
            return Err(exception(
                "InvalidTagParameterException",
                "Tag keys must be 1-128 characters not starting with 'aws:', and values at most 256.",
            ));
        }
    }
    Ok(())
}

pub fn too_many_tags() -> super::errors::EcrError {
    exception("TooManyTagsException", "A resource can have at most 50 tags.")
}

/// The tag mutability setting and its exclusion filters, checked together.
pub fn mutability(input: &Obj) -> EcrResult<(String, Vec<Value>)> {
    const FIELD: &str = "imageTagMutabilityExclusionFilters";
    let setting = text(input, "imageTagMutability").unwrap_or("MUTABLE").to_string();
    let filters = array(input, FIELD);
    if setting.ends_with("_WITH_EXCLUSION") == filters.is_empty() {
        return Err(invalid_at(
            FIELD,
            &format!("ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as {setting}"),
        ));
    }
    for f in &filters {
        let filter = f.get("filter").and_then(Value::as_str).unwrap_or_default();
        if filter.is_empty() || !filter.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*'))
        {
            return Err(invalid_at(
                FIELD,
                &format!("Invalid filter '{filter}': use letters, digits, '.', '_', '-' and '*'"),
            ));
        }
    }
    Ok((setting, filters))
}

/// The encryption configuration asked for (AES256 when none), completed as ECR completes it.
pub fn encryption(ctx: &Ctx<'_>, input: &Obj) -> EcrResult<Value> {
    let mut encryption =
        input.get("encryptionConfiguration").cloned().unwrap_or_else(|| json!({"encryptionType": "AES256"}));
    match encryption.get("encryptionType").and_then(Value::as_str) {
        Some("AES256") if encryption.get("kmsKey").is_some_and(|k| k != "") => {
            return Err(invalid_at(
                "encryptionConfiguration",
                "kmsKey can only be given with encryptionType KMS or KMS_DSSE",
            ));
        }
        Some("KMS" | "KMS_DSSE") if encryption.get("kmsKey").is_none_or(|k| k == "") => {
            // ECR uses the AWS managed key when none is named.
            encryption["kmsKey"] =
                json!(format!("arn:aws:kms:{}:{}:alias/aws/ecr", ctx.caller.region, ctx.config().account));
        }
        _ => {}
    }
    Ok(encryption)
}

pub async fn create(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let (image_tag_mutability, exclusion_filters) = mutability(&input)?;
    let tags = array(&input, "tags");
    check_tags(&tags)?;
    let encryption = encryption(ctx, &input)?;
    let new = NewRepository {
        name,
        image_tag_mutability,
        exclusion_filters,
        scan_on_push: input
            .get("imageScanningConfiguration")
            .and_then(|c| c.get("scanOnPush"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        encryption,
        tags,
        policy: None,
        lifecycle_policy: None,
    };
    let s = scope(ctx);
    ctx.app.registry.authorize_registry(&s, "ecr:CreateRepository")?;
    let repo = ctx.app.registry.create_repository(&s, new).await?;
    Ok(json!({"repository": to_json(ctx, &repo)}))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    super::check_registry(ctx, &input)?;
    let names = strings(&input, "repositoryNames");
    if !names.is_empty() && (input.contains_key("maxResults") || input.contains_key("nextToken")) {
        return Err(
            crate::error::ApiError::invalid("maxResults and nextToken cannot be used with repositoryNames.").into()
        );
    }
    let s = scope(ctx);
    let all = ctx.app.registry.list_repositories(&s)?;
    if !names.is_empty() {
        let mut out = Vec::new();
        for n in &names {
            let r = all
                .iter()
                .find(|r| &r.name == n)
                .ok_or_else(|| berth_registry::RegistryError::RepositoryNotFound(n.clone()))?;
            out.push(to_json(ctx, r));
        }
        return Ok(json!({"repositories": out}));
    }
    let limit = max_results(&input, 1000)?;
    let items = all.iter().map(|r| (r.name.clone(), to_json(ctx, r))).collect();
    let (repositories, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("repositories".into(), json!(repositories));
    Ok(with_token(out, next))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let force = input.get("force").and_then(Value::as_bool).unwrap_or(false);
    let repo = ctx.app.registry.delete_repository(&scope(ctx), &name, force).await?;
    Ok(json!({"repository": to_json(ctx, &repo)}))
}

pub async fn put_tag_mutability(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    if !input.contains_key("imageTagMutability") {
        return Err(crate::error::ApiError::invalid("Missing required parameter 'imageTagMutability'.").into());
    }
    let (setting, filters) = mutability(&input)?;
    let repo = ctx
        .app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            r.image_tag_mutability = setting.clone();
            r.exclusion_filters = filters.clone();
            Ok(())
        })
        .await?;
    let mut extra = json!({"imageTagMutability": repo.image_tag_mutability});
    if !repo.exclusion_filters.is_empty() {
        extra["imageTagMutabilityExclusionFilters"] = json!(repo.exclusion_filters);
    }
    Ok(with(head(ctx, &name), extra))
}

pub async fn put_scanning(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = repository_arg(ctx, &input)?;
    let scan = input
        .get("imageScanningConfiguration")
        .and_then(|c| c.get("scanOnPush"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    ctx.app
        .registry
        .update_repository(&scope(ctx), &name, |r| {
            r.scan_on_push = scan;
            Ok(())
        })
        .await?;
    Ok(with(head(ctx, &name), json!({"imageScanningConfiguration": {"scanOnPush": scan}})))
}
