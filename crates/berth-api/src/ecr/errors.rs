//! How failures read through the ECR API: ECR's exception names, and messages worded as ECR
//! words them, most of which name the registry id. (`/v2/` renders the same registry errors
//! as the distribution spec's codes and texts instead, in `berth-registry`.)

use berth_registry::RegistryError;
use serde_json::Value;

use crate::error::ApiError;

/// The repository name rule as ECR states it in its messages.
pub const NAME_PATTERN: &str = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

/// A failure of an ECR handler: already an API error, or a registry error still to be worded
/// for the registry it happened in.
#[derive(Debug)]
pub enum EcrError {
    Api(ApiError),
    Registry(RegistryError),
}

pub type EcrResult<T> = Result<T, EcrError>;

impl From<ApiError> for EcrError {
    fn from(e: ApiError) -> Self {
        EcrError::Api(e)
    }
}

impl From<RegistryError> for EcrError {
    fn from(e: RegistryError) -> Self {
        EcrError::Registry(e)
    }
}

impl From<berth_store::StoreError> for EcrError {
    fn from(e: berth_store::StoreError) -> Self {
        EcrError::Api(e.into())
    }
}

impl EcrError {
    /// The error as the client sees it, worded for the registry `id`.
    pub fn into_api(self, id: &str) -> ApiError {
        match self {
            EcrError::Api(e) => e,
            EcrError::Registry(e) => registry_error(e, id),
        }
    }
}

/// An ECR exception with HTTP status 400.
pub fn exception(code: &'static str, message: impl Into<String>) -> EcrError {
    EcrError::Api(ApiError::new(400, code, message))
}

/// ECR's `Invalid parameter at 'FIELD' failed to satisfy constraint: 'WHY'`.
pub fn invalid_at(field: &str, why: &str) -> EcrError {
    EcrError::Api(ApiError::invalid(format!("Invalid parameter at '{field}' failed to satisfy constraint: '{why}'")))
}

pub fn invalid_repository_name() -> EcrError {
    invalid_at("repositoryName", &format!("must satisfy regular expression '{NAME_PATTERN}'"))
}

/// An image identifier as ECR prints it in messages: `{imageDigest:'null', imageTag:'v1'}`.
pub fn image_id_text(id: &Value) -> String {
    let field = |k: &str| id.get(k).and_then(Value::as_str).unwrap_or("null").to_string();
    format!("{{imageDigest:'{}', imageTag:'{}'}}", field("imageDigest"), field("imageTag"))
}

pub fn image_not_found(id: &Value, repository: &str, registry: &str) -> EcrError {
    exception(
        "ImageNotFoundException",
        format!(
            "The image with imageId {} does not exist within the repository with name '{repository}' in the registry with id '{registry}'",
            image_id_text(id)
        ),
    )
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn registry_error(e: RegistryError, id: &str) -> ApiError {
    use RegistryError::*;
    let (code, message) = match &e {
        NameInvalid(_) => return invalid_repository_name().into_api(id),
        RepositoryNotFound(n) => (
            "RepositoryNotFoundException",
            format!("The repository with name '{n}' does not exist in the registry with id '{id}'"),
        ),
        RepositoryExists(n) => (
            "RepositoryAlreadyExistsException",
            format!("The repository with name '{n}' already exists in the registry with id '{id}'"),
        ),
        RepositoryNotEmpty(n) => (
            "RepositoryNotEmptyException",
            format!(
                "The repository with name '{n}' in registry with id '{id}' cannot be deleted because it still contains images"
            ),
        ),
        ManifestUnknown(_) => ("ImageNotFoundException", "Requested image not found".to_string()),
        ManifestInvalid(why) => {
            return invalid_at("imageManifest", &upper_first(why)).into_api(id);
        }
        ManifestBlobUnknown(d) => (
            "LayersNotFoundException",
            format!(
                "The image manifest references the layer '{d}', which does not exist in the registry with id '{id}'"
            ),
        ),
        BlobUnknown(d) => {
            ("LayersNotFoundException", format!("The layer '{d}' does not exist in the registry with id '{id}'"))
        }
        DigestInvalid(why) => ("InvalidLayerException", upper_first(why)),
        UploadUnknown => {
            ("UploadNotFoundException", format!("The upload does not exist in the registry with id '{id}'"))
        }
        UploadInvalid(_) | RangeInvalid(_) => ("InvalidLayerPartException", upper_first(&e.to_string())),
        TagInvalid(t) => return invalid_at("imageTag", &format!("'{t}' is not a valid image tag")).into_api(id),
        TagImmutable { repository, tag } => (
            "ImageTagAlreadyExistsException",
            format!(
                "The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable."
            ),
        ),
        Denied { action } => (
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{id}:root is not authorized to perform: {action} with an explicit deny in a resource-based policy"
            ),
        ),
        Unauthorized => ("AccessDeniedException", "Not authorized to perform this operation".to_string()),
        InvalidParameter(m) => ("InvalidParameterException", m.clone()),
        PolicyNotFound(n) => (
            "RepositoryPolicyNotFoundException",
            format!(
                "Repository policy does not exist for the repository with name '{n}' in the registry with id '{id}'"
            ),
        ),
        LifecyclePolicyNotFound(n) => (
            "LifecyclePolicyNotFoundException",
            format!(
                "Lifecycle policy does not exist for the repository with name '{n}' in the registry with id '{id}'"
            ),
        ),
        LifecyclePreviewNotFound(n) => (
            "LifecyclePolicyPreviewNotFoundException",
            format!(
                "Lifecycle policy preview does not exist for the repository with name '{n}' in the registry with id '{id}'"
            ),
        ),
        RegistryPolicyNotFound => (
            "RegistryPolicyNotFoundException",
            format!("Registry policy does not exist in the registry with id '{id}'"),
        ),
        PullThroughRuleNotFound(p) => (
            "PullThroughCacheRuleNotFoundException",
            format!("The pull through cache rule with prefix '{p}' does not exist in the registry with id '{id}'"),
        ),
        PullThroughRuleExists(p) => (
            "PullThroughCacheRuleAlreadyExistsException",
            format!("A pull through cache rule with prefix '{p}' already exists in the registry with id '{id}'"),
        ),
        TemplateNotFound(p) => (
            "TemplateNotFoundException",
            format!("The repository creation template with prefix '{p}' does not exist in the registry with id '{id}'"),
        ),
        TemplateExists(p) => (
            "TemplateAlreadyExistsException",
            format!("A repository creation template with prefix '{p}' already exists in the registry with id '{id}'"),
        ),
        Upstream(why) => ("UnableToGetUpstreamImageException", upper_first(why)),
        SecretNotFound(why) => ("SecretNotFoundException", upper_first(why)),
        SecretUnreadable(why) => ("UnableToAccessSecretException", upper_first(why)),
        UnsupportedUpstream(why) => {
            ("UnsupportedUpstreamRegistryException", format!("The upstream registry is not supported: {why}"))
        }
        Contention(_) => ("LimitExceededException", upper_first(&e.to_string())),
        Store(_) | Io(_) => {
            tracing::error!(error = %e, "registry failure");
            return ApiError::server(e.to_string());
        }
    };
    ApiError::new(400, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_registry_as_ecr_does() {
        let e = registry_error(RegistryError::RepositoryNotFound("web".into()), "123456789012");
        assert_eq!(e.code, "RepositoryNotFoundException");
        assert_eq!(e.message, "The repository with name 'web' does not exist in the registry with id '123456789012'");
        let e = registry_error(RegistryError::RegistryPolicyNotFound, "123456789012");
        assert_eq!(e.message, "Registry policy does not exist in the registry with id '123456789012'");
        let id = serde_json::json!({"imageTag": "v1"});
        assert_eq!(image_id_text(&id), "{imageDigest:'null', imageTag:'v1'}");
    }
}
