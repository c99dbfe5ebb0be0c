//! What can go wrong in the registry, named once. The `/v2/` front end renders these as the
//! distribution spec's error codes; the ECR API maps them to ECR exception names.

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("the repository with name '{0}' does not exist in the registry")]
    RepositoryNotFound(String),
    #[error("the repository with name '{0}' already exists in the registry")]
    RepositoryExists(String),
    #[error("the repository with name '{0}' cannot be deleted because it still contains images")]
    RepositoryNotEmpty(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references a blob the repository does not hold: {0}")]
    ManifestBlobUnknown(Digest),
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk that does not start where the upload ends; carries the upload's size.
    #[error("chunk out of order: the upload holds {0} bytes")]
    RangeInvalid(u64),
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    #[error(
        "the image tag '{tag}' already exists in the repository and cannot be overwritten because the tag is immutable"
    )]
    TagImmutable { repository: String, tag: String },
    /// An explicit `Deny` of `action` in a repository or registry policy.
    #[error("requested access to the resource is denied")]
    Denied { action: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("repository policy does not exist for the repository with name '{0}'")]
    PolicyNotFound(String),
    #[error("lifecycle policy does not exist for the repository with name '{0}'")]
    LifecyclePolicyNotFound(String),
    #[error("lifecycle policy preview does not exist for the repository with name '{0}'")]
    LifecyclePreviewNotFound(String),
    #[error("registry policy does not exist in the registry")]
    RegistryPolicyNotFound,
    #[error("pull through cache rule with prefix '{0}' does not exist")]
    PullThroughRuleNotFound(String),
    #[error("pull through cache rule with prefix '{0}' already exists")]
    PullThroughRuleExists(String),
    #[error("repository creation template with prefix '{0}' does not exist")]
    TemplateNotFound(String),
    #[error("repository creation template with prefix '{0}' already exists")]
    TemplateExists(String),
    /// The upstream registry of a pull-through cache rule failed us.
    #[error("upstream registry: {0}")]
    Upstream(String),
    /// A pull-through cache rule names a credential secret that does not exist.
    #[error("pull through cache credentials: {0}")]
    SecretNotFound(String),
    /// A pull-through cache rule names a credential secret that cannot be read.
    #[error("pull through cache credentials: {0}")]
    SecretUnreadable(String),
    /// An upstream registry URL Berth will not pull from.
    #[error("unsupported upstream registry: {0}")]
    UnsupportedUpstream(String),
    #[error("too many concurrent changes to {0}; retry")]
    Contention(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    /// Whether the error reports something as absent that another server sharing the store
    /// may have just written (a push through one server, a pull through the next).
    pub fn may_be_stale(&self) -> bool {
        use RegistryError::*;
        matches!(
            self,
            RepositoryNotFound(_) | ManifestUnknown(_) | ManifestBlobUnknown(_) | BlobUnknown(_) | UploadUnknown
        )
    }

    /// The distribution spec's error code and the HTTP status it goes with.
    pub fn oci(&self) -> (u16, &'static str) {
        use RegistryError::*;
        match self {
            NameInvalid(_) => (400, "NAME_INVALID"),
            RepositoryNotFound(_) => (404, "NAME_UNKNOWN"),
            RepositoryExists(_) | RepositoryNotEmpty(_) | InvalidParameter(_) => (400, "UNSUPPORTED"),
            ManifestUnknown(_) => (404, "MANIFEST_UNKNOWN"),
            ManifestInvalid(_) => (400, "MANIFEST_INVALID"),
            ManifestBlobUnknown(_) => (400, "MANIFEST_BLOB_UNKNOWN"),
            BlobUnknown(_) => (404, "BLOB_UNKNOWN"),
            DigestInvalid(_) => (400, "DIGEST_INVALID"),
            UploadUnknown => (404, "BLOB_UPLOAD_UNKNOWN"),
            UploadInvalid(_) => (400, "BLOB_UPLOAD_INVALID"),
            RangeInvalid(_) => (416, "BLOB_UPLOAD_INVALID"),
            TagInvalid(_) => (400, "TAG_INVALID"),
            TagImmutable { .. } => (400, "TAG_INVALID"),
            Denied { .. } => (403, "DENIED"),
            Unauthorized => (401, "UNAUTHORIZED"),
            PolicyNotFound(_) | LifecyclePolicyNotFound(_) | LifecyclePreviewNotFound(_) => (404, "NAME_UNKNOWN"),
            RegistryPolicyNotFound | PullThroughRuleNotFound(_) | TemplateNotFound(_) => (404, "NAME_UNKNOWN"),
            PullThroughRuleExists(_) | TemplateExists(_) | UnsupportedUpstream(_) => (400, "UNSUPPORTED"),
            // A pull that needed the upstream and could not get it: the image is unknown here.
            Upstream(_) | SecretNotFound(_) | SecretUnreadable(_) => (404, "MANIFEST_UNKNOWN"),
            Contention(_) => (429, "TOOMANYREQUESTS"),
            Store(_) | Io(_) => (500, "UNKNOWN"),
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
