//! ECR operations (`AmazonEC2ContainerRegistry_V20150921.*`): the dispatch table, how
//! registry errors become ECR exceptions, and helpers the handlers share. The registry
//! itself (`berth-registry`) holds the truth; `/v2/` and these handlers both go through it.

mod auth;
mod images;
mod layers;
mod policies;
mod repositories;
mod tags;

use berth_registry::{Caller, RegistryError, Scope};
use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};

/// Every operation Berth answers; the rest of the model answers `UnsupportedFeatureException`.
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
];

pub async fn dispatch(ctx: &Ctx<'_>, operation: &str, input: Obj) -> ApiResult<Value> {
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
        other => {
            Err(ApiError::new(400, "UnsupportedFeatureException", format!("Berth does not implement {other} yet.")))
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError::*;
        let message = e.to_string();
        let code = match &e {
            NameInvalid(_) | ManifestInvalid(_) | TagInvalid(_) | InvalidParameter(_) => "InvalidParameterException",
            RepositoryNotFound(_) => "RepositoryNotFoundException",
            RepositoryExists(_) => "RepositoryAlreadyExistsException",
            RepositoryNotEmpty(_) => "RepositoryNotEmptyException",
            ManifestUnknown(_) => "ImageNotFoundException",
            ManifestBlobUnknown(_) | BlobUnknown(_) => "LayersNotFoundException",
            DigestInvalid(_) => "InvalidLayerException",
            UploadUnknown => "UploadNotFoundException",
            UploadInvalid(_) | RangeInvalid(_) => "InvalidLayerPartException",
            TagImmutable(_) => "ImageTagAlreadyExistsException",
            Denied | Unauthorized => "AccessDeniedException",
            PolicyNotFound(_) => "RepositoryPolicyNotFoundException",
            LifecyclePolicyNotFound(_) => "LifecyclePolicyNotFoundException",
            LifecyclePreviewNotFound(_) => "LifecyclePolicyPreviewNotFoundException",
            Contention(_) => "LimitExceededException",
            Store(_) | Io(_) => {
                tracing::error!(error = %e, "registry failure");
                return ApiError::server(message);
            }
        };
        ApiError::new(400, code, upper_first(&message))
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
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
fn check_registry(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<()> {
    match text(input, "registryId") {
        Some(id) if id != ctx.app.config.account => Err(ApiError::invalid(format!(
            "Invalid parameter at 'registryId' failed to satisfy constraint: 'registry {id} is not this registry ({})'",
            ctx.app.config.account
        ))),
        _ => Ok(()),
    }
}

/// The `repositoryName` argument (after checking `registryId`).
pub fn repository_arg(ctx: &Ctx<'_>, input: &Obj) -> ApiResult<String> {
    check_registry(ctx, input)?;
    let name = text(input, "repositoryName").unwrap_or_default();
    if !berth_registry::repositories::valid_name(name) {
        return Err(ApiError::invalid(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''; got '{name}'"
        )));
    }
    Ok(name.to_string())
}

/// The registry id and repository name every per-repository response starts with.
pub fn head(ctx: &Ctx<'_>, repo: &str) -> Obj {
    let mut o = Obj::new();
    o.insert("registryId".into(), json!(ctx.app.config.account));
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
pub fn authorized(ctx: &Ctx<'_>, input: &Obj, action: &str) -> ApiResult<(String, Scope, berth_registry::Repository)> {
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
