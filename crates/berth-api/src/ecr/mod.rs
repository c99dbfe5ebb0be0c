//! ECR operations (`AmazonEC2ContainerRegistry_V20150921.*`): the dispatch table, how
//! registry errors become ECR exceptions, and helpers the handlers share. The registry
//! itself (`berth-registry`) holds the truth; `/v2/` and these handlers both go through it.

mod account;
mod auth;
pub mod errors;
mod images;
mod layers;
mod policies;
mod pull_through;
mod referrers;
mod registry_policy;
mod replication;
mod repositories;
mod scanning;
mod tags;
mod templates;

use berth_registry::{Caller, Scope};
use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, text};
use crate::error::ApiResult;
use errors::{EcrResult, invalid_at, invalid_repository_name};

/// Every operation Berth answers; the rest of the model answers `ValidationException`.
pub const IMPLEMENTED: &[&str] = &[
    "CreateRepository",
    "DescribeRepositories",
    "DeleteRepository",
    "ListImages",
    "DescribeImages",
    "BatchGetImage",
    "BatchDeleteImage",
    "PutImage",
    "BatchCheckLayerAvailability",
    "InitiateLayerUpload",
    "UploadLayerPart",
    "CompleteLayerUpload",
    "GetDownloadUrlForLayer",
    "GetRepositoryPolicy",
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "PutLifecyclePolicy",
    "GetLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "StartLifecyclePolicyPreview",
    "GetLifecyclePolicyPreview",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "DescribeRegistry",
    "GetAuthorizationToken",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "PutRegistryPolicy",
    "GetRegistryPolicy",
    "DeleteRegistryPolicy",
    "PutRegistryScanningConfiguration",
    "GetRegistryScanningConfiguration",
    "BatchGetRepositoryScanningConfiguration",
    "GetAccountSetting",
    "PutAccountSetting",
    "PutReplicationConfiguration",
    "DescribeImageReplicationStatus",
    "CreatePullThroughCacheRule",
    "DescribePullThroughCacheRules",
    "UpdatePullThroughCacheRule",
    "DeletePullThroughCacheRule",
    "ValidatePullThroughCacheRule",
    "CreateRepositoryCreationTemplate",
    "DescribeRepositoryCreationTemplates",
    "UpdateRepositoryCreationTemplate",
    "DeleteRepositoryCreationTemplate",
    "ListImageReferrers",
];

/// Runs an ECR operation; registry errors are worded for this registry.
pub async fn dispatch(ctx: &Ctx<'_>, operation: &str, input: Obj) -> ApiResult<Value> {
    route(ctx, operation, input).await.map_err(|e| e.into_api(&ctx.config().account))
}

async fn route(ctx: &Ctx<'_>, operation: &str, input: Obj) -> EcrResult<Value> {
    match operation {
        "CreateRepository" => repositories::create(ctx, input).await,
        "DescribeRepositories" => repositories::describe(ctx, input),
        "DeleteRepository" => repositories::delete(ctx, input).await,
        "PutImageTagMutability" => repositories::put_tag_mutability(ctx, input).await,
        "PutImageScanningConfiguration" => repositories::put_scanning(ctx, input).await,
        "ListImages" => images::list(ctx, input),
        "DescribeImages" => images::describe(ctx, input),
        "BatchGetImage" => images::batch_get(ctx, input).await,
        "BatchDeleteImage" => images::batch_delete(ctx, input).await,
        "PutImage" => images::put(ctx, input).await,
        "BatchCheckLayerAvailability" => layers::check(ctx, input).await,
        "InitiateLayerUpload" => layers::initiate(ctx, input).await,
        "UploadLayerPart" => layers::upload_part(ctx, input).await,
        "CompleteLayerUpload" => layers::complete(ctx, input).await,
        "GetDownloadUrlForLayer" => layers::download_url(ctx, input).await,
        "GetRepositoryPolicy" => policies::get_policy(ctx, input),
        "SetRepositoryPolicy" => policies::set_policy(ctx, input).await,
        "DeleteRepositoryPolicy" => policies::delete_policy(ctx, input).await,
        "PutLifecyclePolicy" => policies::put_lifecycle(ctx, input).await,
        "GetLifecyclePolicy" => policies::get_lifecycle(ctx, input),
        "DeleteLifecyclePolicy" => policies::delete_lifecycle(ctx, input).await,
        "StartLifecyclePolicyPreview" => policies::start_preview(ctx, input).await,
        "GetLifecyclePolicyPreview" => policies::get_preview(ctx, input),
        "DescribeRegistry" => auth::describe_registry(ctx),
        "GetAuthorizationToken" => auth::get_token(ctx),
        "TagResource" => tags::tag(ctx, input).await,
        "UntagResource" => tags::untag(ctx, input).await,
        "ListTagsForResource" => tags::list(ctx, input),
        "PutRegistryPolicy" => registry_policy::put(ctx, input).await,
        "GetRegistryPolicy" => registry_policy::get(ctx),
        "DeleteRegistryPolicy" => registry_policy::delete(ctx).await,
        "PutRegistryScanningConfiguration" => scanning::put(ctx, input).await,
        "GetRegistryScanningConfiguration" => scanning::get(ctx),
        "BatchGetRepositoryScanningConfiguration" => scanning::batch_get_repositories(ctx, input),
        "GetAccountSetting" => account::get(ctx, input),
        "PutAccountSetting" => account::put(ctx, input).await,
        "PutReplicationConfiguration" => replication::put(ctx, input).await,
        "DescribeImageReplicationStatus" => replication::describe_status(ctx, input),
        "CreatePullThroughCacheRule" => pull_through::create(ctx, input).await,
        "DescribePullThroughCacheRules" => pull_through::describe(ctx, input),
        "UpdatePullThroughCacheRule" => pull_through::update(ctx, input).await,
        "DeletePullThroughCacheRule" => pull_through::delete(ctx, input).await,
        "ValidatePullThroughCacheRule" => pull_through::validate(ctx, input).await,
        "CreateRepositoryCreationTemplate" => templates::create(ctx, input).await,
        "DescribeRepositoryCreationTemplates" => templates::describe(ctx, input),
        "UpdateRepositoryCreationTemplate" => templates::update(ctx, input).await,
        "DeleteRepositoryCreationTemplate" => templates::delete(ctx, input).await,
        "ListImageReferrers" => referrers::list(ctx, input),
        // ECR's model has no "not implemented" exception; ValidationException is its name for a
        // request it cannot carry out as asked.
        other => Err(errors::exception("ValidationException", format!("Berth does not implement {other} yet."))),
    }
}

/// The registry scope of a SigV4-signed ECR request: the caller's key and region.
pub fn scope(ctx: &Ctx<'_>) -> Scope {
    Scope {
        region: ctx.caller.region.clone(),
        caller: Caller::Account { access_key: ctx.caller.access_key.clone() },
        now: ctx.now,
    }
}

/// `registryId`, when given, must be this account.
fn check_registry(ctx: &Ctx<'_>, input: &Obj) -> EcrResult<()> {
    match text(input, "registryId") {
        Some(id) if id != ctx.config().account => {
            Err(invalid_at("registryId", &format!("registry {id} is not this registry ({})", ctx.config().account)))
        }
        _ => Ok(()),
    }
}

/// The `repositoryName` argument (after checking `registryId`).
pub fn repository_arg(ctx: &Ctx<'_>, input: &Obj) -> EcrResult<String> {
    check_registry(ctx, input)?;
    let name = text(input, "repositoryName").unwrap_or_default();
    if !berth_registry::repositories::valid_name(name) {
        return Err(invalid_repository_name());
    }
    Ok(name.to_string())
}

/// The registry id and repository name every per-repository response starts with.
pub fn head(ctx: &Ctx<'_>, repo: &str) -> Obj {
    let mut o = Obj::new();
    o.insert("registryId".into(), json!(ctx.config().account));
    o.insert("repositoryName".into(), json!(repo));
    o
}

/// Adds `extra` members to a response head.
pub fn with(mut head: Obj, extra: Value) -> Value {
    if let Value::Object(m) = extra {
        head.extend(m);
    }
    Value::Object(head)
}

/// The named repository, after checking the caller may do `action` on it.
pub fn authorized(ctx: &Ctx<'_>, input: &Obj, action: &str) -> EcrResult<(String, Scope, berth_registry::Repository)> {
    let name = repository_arg(ctx, input)?;
    let s = scope(ctx);
    let (_, repo) = ctx.app.registry.repository(&s, &name)?;
    ctx.app.registry.authorize(&s, &repo, action)?;
    Ok((name, s, repo))
}

#[cfg(test)]
mod tests {
    use super::IMPLEMENTED;
    use crate::shapes::{ECR, assert_coverage};

    /// docs/api-coverage.md's ECR table lists every model operation, and its implemented and
    /// partial rows are exactly the operations `dispatch` answers.
    #[test]
    fn coverage_table_is_true() {
        assert_coverage("ECR", &ECR, IMPLEMENTED);
    }
}
