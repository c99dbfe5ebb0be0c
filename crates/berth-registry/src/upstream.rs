//! Talking to another OCI registry: the upstream of a pull-through cache rule (pulls) and a
//! replication peer (pushes), through the same OCI client the node's image store uses. The
//! registry contacts only the URL it was given (and the token service that registry names
//! in its authentication challenge); plain HTTP only to a loopback address.

use futures::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::blobs::ByteStream;
use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::manifest::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// A registry URL as rules and peers name it: `https://HOST[:PORT]`, `HOST[:PORT]`
/// (HTTPS), or `http://HOST[:PORT]`, which only `plain_anywhere` allows for a host other
/// than a loopback address. Returns the host and whether it speaks plain HTTP.
pub fn parse_url(url: &str, plain_anywhere: bool) -> std::result::Result<(String, bool), String> {
    let (plain, host) = match url.split_once("://") {
        Some(("http", rest)) => (true, rest),
        Some(("https", rest)) => (false, rest),
        Some((scheme, _)) => return Err(format!("'{url}': the scheme {scheme} is not http or https")),
        None => (false, url),
    };
    let host = host.strip_suffix('/').unwrap_or(host);
    let host_ok =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(format!("'{url}' is not a registry address (HOST[:PORT], without a path)"));
    }
    if plain && !plain_anywhere && !is_loopback(host) {
        return Err(format!("'{url}' speaks plain http, which is only allowed to a loopback address; use https"));
    }
    Ok((host.to_string(), plain))
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name == "::1" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The manifest media types a pull asks for.
const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A client of one remote registry, with the credentials to use there.
pub struct Remote {
    host: String,
    plain: bool,
    client: Client,
    auth: RegistryAuth,
}

/// Whether an OCI client error says the thing asked for does not exist.
fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

impl Remote {
    /// A client of the registry at `url` (see [`parse_url`]), with basic credentials or none.
    pub fn new(url: &str, plain_anywhere: bool, credentials: Option<(String, String)>) -> Result<Remote> {
        let (host, plain) = parse_url(url, plain_anywhere).map_err(RegistryError::Upstream)?;
        let protocol = if plain { ClientProtocol::Http } else { ClientProtocol::Https };
        let client = Client::new(ClientConfig { protocol, ..Default::default() });
        let auth = match credentials {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Remote { host, plain, client, auth })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn reference(&self, repo: &str, reference: &str) -> Reference {
        match reference.parse::<Digest>() {
            Ok(_) => Reference::with_digest(self.host.clone(), repo.to_string(), reference.to_string()),
            Err(_) => Reference::with_tag(self.host.clone(), repo.to_string(), reference.to_string()),
        }
    }

    fn failed(&self, what: &str, e: OciDistributionError) -> RegistryError {
        if not_found(&e) {
            return RegistryError::ManifestUnknown(format!("{what} is unknown to {}", self.host));
        }
        RegistryError::Upstream(format!("{what} from {}: {e}", self.host))
    }

    /// The manifest `repo:reference` (a tag or digest) as the remote serves it.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Vec<u8>> {
        let r = self.reference(repo, reference);
        let what = format!("manifest {repo}:{reference}");
        let (bytes, _) =
            self.client.pull_manifest_raw(&r, &self.auth, ACCEPTED).await.map_err(|e| self.failed(&what, e))?;
        Ok(bytes.to_vec())
    }

    /// The bytes of blob `digest` of `repo` (its digest is checked by whoever stores them).
    pub async fn blob(&self, repo: &str, digest: &Digest, size: u64) -> Result<ByteStream> {
        let r = self.reference(repo, &digest.to_string());
        let layer = OciDescriptor { digest: digest.to_string(), size: size as i64, ..Default::default() };
        let what = format!("blob {digest} of {repo}");
        self.client.store_auth_if_needed(r.resolve_registry(), &self.auth).await;
        let stream = self.client.pull_blob_stream(&r, &layer).await.map_err(|e| self.failed(&what, e))?;
        Ok(Box::pin(stream.stream))
    }

    /// Whether the remote's `repo` holds blob `digest`.
    pub async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let r = self.reference(repo, &digest.to_string());
        self.client
            .auth(&r, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.failed(repo, e))?;
        self.client.blob_exists(&r, &digest.to_string()).await.map_err(|e| self.failed(repo, e))
    }

    /// Uploads blob `digest` (`size` bytes of `data`) into the remote's `repo`.
    pub async fn push_blob(&self, repo: &str, digest: &Digest, size: u64, data: ByteStream) -> Result<()> {
        let r = self.reference(repo, &digest.to_string());
        let what = format!("pushing blob {digest} to {repo}");
        self.client
            .auth(&r, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.failed(&what, e))?;
        let stream = data.map_err(OciDistributionError::IoError);
        self.client
            .push_blob_stream(&r, stream, &digest.to_string(), Some(size))
            .await
            .map_err(|e| self.failed(&what, e))?;
        Ok(())
    }

    /// Stores a manifest in the remote's `repo` under `reference` (a tag or its digest).
    pub async fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let r = self.reference(repo, reference);
        let what = format!("pushing manifest {repo}:{reference}");
        let content_type = reqwest::header::HeaderValue::from_str(media_type)
            .map_err(|_| RegistryError::Upstream(format!("{what}: bad media type {media_type}")))?;
        self.client
            .auth(&r, &self.auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.failed(&what, e))?;
        self.client.push_manifest_raw(&r, bytes.to_vec(), content_type).await.map_err(|e| self.failed(&what, e))?;
        Ok(())
    }

    /// Whether the remote answers as a registry and takes the credentials: `GET /v2/`, then
    /// the token its challenge names when it asks for one.
    pub async fn check(&self) -> std::result::Result<(), String> {
        let base = format!("{}://{}/v2/", if self.plain { "http" } else { "https" }, self.host);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let with_auth = |req: reqwest::RequestBuilder| match &self.auth {
            RegistryAuth::Basic(user, password) => req.basic_auth(user, Some(password)),
            _ => req,
        };
        let response = with_auth(http.get(&base)).send().await.map_err(|e| format!("{base}: {e}"))?;
        if response.status().is_success() {
            return Ok(());
        }
        let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(realm) = bearer_realm(challenge) else {
            return Err(format!("{base} answered {}", response.status()));
        };
        let token = with_auth(http.get(&realm)).send().await.map_err(|e| format!("{realm}: {e}"))?;
        if token.status().is_success() {
            return Ok(());
        }
        Err(format!("the token service {realm} answered {}", token.status()))
    }
}

/// The token URL of a `Bearer realm="...",service="..."` challenge.
fn bearer_realm(challenge: &str) -> Option<String> {
    let params = challenge.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut query = Vec::new();
    for part in params.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim_matches('"');
        match k {
            "realm" => realm = Some(v.to_string()),
            "service" => query.push(format!("service={v}")),
            _ => {}
        }
    }
    let realm = realm?;
    Some(if query.is_empty() { realm } else { format!("{realm}?{}", query.join("&")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_unless_a_loopback_address_is_named_with_http() {
        assert_eq!(parse_url("registry-1.docker.io", false), Ok(("registry-1.docker.io".into(), false)));
        assert_eq!(parse_url("https://quay.io/", false), Ok(("quay.io".into(), false)));
        assert_eq!(parse_url("http://127.0.0.1:5000", false), Ok(("127.0.0.1:5000".into(), true)));
        assert_eq!(parse_url("http://localhost:5000", false), Ok(("localhost:5000".into(), true)));
        assert_eq!(parse_url("http://[::1]:5000", false), Ok(("[::1]:5000".into(), true)));
        assert_eq!(parse_url("http://10.0.0.1:5000", true), Ok(("10.0.0.1:5000".into(), true)));
        for bad in ["http://10.0.0.1:5000", "ftp://x", "https://quay.io/v2/x", "", "http://"] {
            assert!(parse_url(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_challenges_name_their_token_service() {
        let c = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#;
        assert_eq!(bearer_realm(c).as_deref(), Some("https://auth.example/token?service=registry.example"));
        assert_eq!(bearer_realm(r#"Basic realm="x""#), None);
    }
}
