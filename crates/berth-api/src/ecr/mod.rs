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
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;
use errors::{EcrResult, invalid_at, invalid_repository_name};

/// ECR: AWS JSON 1.1, target `AmazonEC2ContainerRegistry_V20150921`. ECR's model has no
/// "not implemented" exception; ValidationException is its name for a request it cannot
/// carry out as asked, so operations of the model not in the table answer it.
pub static SERVICE: Service = Service {
    name: "ECR",
    model: &shapes::ECR,
    operations: operations! {
        finish: finish;
        "CreateRepository" => |ctx, input| repositories::create(ctx, input).await,
        "DescribeRepositories" => |ctx, input| repositories::describe(ctx, input),
        "DeleteRepository" => |ctx, input| repositories::delete(ctx, input).await,
        "PutImageTagMutability" => |ctx, input| repositories::put_tag_mutability(ctx, input).await,
        "PutImageScanningConfiguration" => |ctx, input| repositories::put_scanning(ctx, input).await,
        "ListImages" => |ctx, input| images::list(ctx, input),
        "DescribeImages" => |ctx, input| images::describe(ctx, input),
        "BatchGetImage" => |ctx, input| images::batch_get(ctx, input).await,
        "BatchDeleteImage" => |ctx, input| images::batch_delete(ctx, input).await,
        "PutImage" => |ctx, input| images::put(ctx, input).await,
        "BatchCheckLayerAvailability" => |ctx, input| layers::check(ctx, input).await,
        "InitiateLayerUpload" => |ctx, input| layers::initiate(ctx, input).await,
        "UploadLayerPart" => |ctx, input| layers::upload_part(ctx, input).await,
        "CompleteLayerUpload" => |ctx, input| layers::complete(ctx, input).await,
        "GetDownloadUrlForLayer" => |ctx, input| layers::download_url(ctx, input).await,
        "GetRepositoryPolicy" => |ctx, input| policies::get_policy(ctx, input),
        "SetRepositoryPolicy" => |ctx, input| policies::set_policy(ctx, input).await,
        "DeleteRepositoryPolicy" => |ctx, input| policies::delete_policy(ctx, input).await,
        "PutLifecyclePolicy" => |ctx, input| policies::put_lifecycle(ctx, input).await,
        "GetLifecyclePolicy" => |ctx, input| policies::get_lifecycle(ctx, input),
        "DeleteLifecyclePolicy" => |ctx, input| policies::delete_lifecycle(ctx, input).await,
        "StartLifecyclePolicyPreview" => |ctx, input| policies::start_preview(ctx, input).await,
        "GetLifecyclePolicyPreview" => |ctx, input| policies::get_preview(ctx, input),
        "DescribeRegistry" => |ctx, _input| auth::describe_registry(ctx),
        "GetAuthorizationToken" => |ctx, _input| auth::get_token(ctx),
        "TagResource" => |ctx, input| tags::tag(ctx, input).await,
        "UntagResource" => |ctx, input| tags::untag(ctx, input).await,
        "ListTagsForResource" => |ctx, input| tags::list(ctx, input),
        "PutRegistryPolicy" => |ctx, input| registry_policy::put(ctx, input).await,
        "GetRegistryPolicy" => |ctx, _input| registry_policy::get(ctx),
        "DeleteRegistryPolicy" => |ctx, _input| registry_policy::delete(ctx).await,
        "PutRegistryScanningConfiguration" => |ctx, input| scanning::put(ctx, input).await,
        "GetRegistryScanningConfiguration" => |ctx, _input| scanning::get(ctx),
        "BatchGetRepositoryScanningConfiguration" => |ctx, input| scanning::batch_get_repositories(ctx, input),
        "GetAccountSetting" => |ctx, input| account::get(ctx, input),
        "PutAccountSetting" => |ctx, input| account::put(ctx, input).await,
        "PutReplicationConfiguration" => |ctx, input| replication::put(ctx, input).await,
        "DescribeImageReplicationStatus" => |ctx, input| replication::describe_status(ctx, input),
        "CreatePullThroughCacheRule" => |ctx, input| pull_through::create(ctx, input).await,
        "DescribePullThroughCacheRules" => |ctx, input| pull_through::describe(ctx, input),
        "UpdatePullThroughCacheRule" => |ctx, input| pull_through::update(ctx, input).await,
        "DeletePullThroughCacheRule" => |ctx, input| pull_through::delete(ctx, input).await,
        "ValidatePullThroughCacheRule" => |ctx, input| pull_through::validate(ctx, input).await,
        "CreateRepositoryCreationTemplate" => |ctx, input| templates::create(ctx, input).await,
        "DescribeRepositoryCreationTemplates" => |ctx, input| templates::describe(ctx, input),
        "UpdateRepositoryCreationTemplate" => |ctx, input| templates::update(ctx, input).await,
        "DeleteRepositoryCreationTemplate" => |ctx, input| templates::delete(ctx, input).await,
        "ListImageReferrers" => |ctx, input| referrers::list(ctx, input),
    },
    // An UploadLayerPart carries up to 20 MiB, base64-encoded.
    body_limit: 28 * 1024 * 1024,
    invalid_input: "InvalidParameterException",
    unimplemented: "ValidationException",
    json_bodies: &[],
};

/// Registry errors are worded for this registry.
fn finish(ctx: &Ctx<'_>, result: EcrResult<Value>) -> ApiResult<Value> {
    result.map_err(|e| e.into_api(&ctx.config().account))
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
