//! Reading image manifests and indexes (OCI and Docker schema 2): their media type, the blobs
//! and manifests they reference, and the `subject` and `artifactType` the referrers API needs.

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{RegistryError, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest accepted (ECR's limit).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// A foreign (non-distributable) layer, fetched from its `urls`, not from the registry.
    pub foreign: bool,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    /// Config and layers of an image manifest (empty for an index).
    pub blobs: Vec<Descriptor>,
    /// Manifests an index lists (empty for an image manifest).
    pub children: Vec<Descriptor>,
    pub subject: Option<Digest>,
    /// `artifactType`, or an image manifest's config media type, as referrers report it.
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
    /// Sum of the layer sizes (ECR's imageSizeInBytes).
    pub layers_size: u64,
}

fn invalid(why: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(why.into())
}

fn descriptor(v: &Value, at: &str) -> Result<Descriptor> {
    let digest =
        v.get("digest").and_then(Value::as_str).ok_or_else(|| invalid(format!("{at}: descriptor without a digest")))?;
    let digest = digest.parse::<Digest>().map_err(|e| invalid(format!("{at}: {e}")))?;
    let size =
        v.get("size").and_then(Value::as_u64).ok_or_else(|| invalid(format!("{at}: descriptor without a size")))?;
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}: descriptor without a mediaType")))?
        .to_string();
    let foreign = v.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
    Ok(Descriptor { media_type, digest, size, foreign })
}

/// Whether a request's Content-Type says nothing about which manifest kind it is.
fn is_generic(content_type: &str) -> bool {
    matches!(content_type, "" | "application/json" | "application/octet-stream")
}

/// Parses a manifest sent with `content_type` (empty when the client sent none).
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Parsed> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if !doc.is_object() {
        return Err(invalid("a manifest is a JSON object"));
    }
    if doc.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("only schemaVersion 2 manifests are supported"));
    }
    let declared = doc.get("mediaType").and_then(Value::as_str);
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    let media_type = match (declared, is_generic(content_type)) {
        (Some(d), false) if d != content_type => {
            return Err(invalid(format!("mediaType {d} does not match Content-Type {content_type}")));
        }
        (_, false) => content_type.to_string(),
        (Some(d), true) => d.to_string(),
        (None, true) if doc.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, true) => OCI_MANIFEST.to_string(),
    };
    let list = |key: &str| -> Result<Vec<Descriptor>> {
        match doc.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| descriptor(v, &format!("{key}[{i}]"))).collect()
            }
            Some(_) => Err(invalid(format!("{key} must be a list"))),
        }
    };
    let subject = doc.get("subject").map(|s| descriptor(s, "subject").map(|d| d.digest)).transpose()?;
    let annotations = doc.get("annotations").filter(|a| a.is_object()).cloned();
    let explicit_type = doc.get("artifactType").and_then(Value::as_str).map(str::to_string);
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config =
                descriptor(doc.get("config").ok_or_else(|| invalid("an image manifest needs a config"))?, "config")?;
            let layers = list("layers")?;
            if media_type == DOCKER_MANIFEST && layers.is_empty() {
                return Err(invalid("a Docker image manifest needs at least one layer"));
            }
            let layers_size = layers.iter().map(|l| l.size).sum();
            let artifact_type = explicit_type.or_else(|| Some(config.media_type.clone()));
            let blobs = std::iter::once(config).chain(layers).collect();
            Ok(Parsed { media_type, blobs, children: Vec::new(), subject, artifact_type, annotations, layers_size })
        }
        OCI_INDEX | DOCKER_LIST => {
            if doc.get("manifests").is_none() {
                return Err(invalid("an index needs a manifests list"));
            }
            let children = list("manifests")?;
            Ok(Parsed {
                media_type,
                blobs: Vec::new(),
                children,
                subject,
                artifact_type: explicit_type,
                annotations,
                layers_size: 0,
            })
        }
        other => Err(invalid(format!("unsupported manifest media type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    #[test]
    fn reads_an_oci_artifact_with_a_subject() {
        let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d(1), "size": 2},
            "layers": [{"mediaType": "text/plain", "digest": d(2), "size": 5}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d(3), "size": 9}});
        let p = parse(m.to_string().as_bytes(), OCI_MANIFEST).unwrap();
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.subject.unwrap().to_string(), d(3));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
        assert_eq!(p.layers_size, 5);
    }

    #[test]
    fn infers_the_type_and_takes_the_config_type_as_artifact_type() {
        let m = json!({"schemaVersion": 2, "config": {"mediaType": "application/x-cfg", "digest": d(1), "size": 2}, "layers": []});
        let p = parse(m.to_string().as_bytes(), "").unwrap();
        assert_eq!((p.media_type.as_str(), p.artifact_type.as_deref()), (OCI_MANIFEST, Some("application/x-cfg")));
        let i = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": d(4), "size": 3}]});
        let p = parse(i.to_string().as_bytes(), DOCKER_LIST).unwrap();
        assert_eq!(p.children.len(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_valid_manifest() {
        let ok_config = json!({"mediaType": "a/b", "digest": d(1), "size": 2});
        for (bytes, ct) in [
            (b"not json".to_vec(), OCI_MANIFEST),
            (json!({"schemaVersion": 1}).to_string().into_bytes(), OCI_MANIFEST),
            (
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).to_string().into_bytes(),
                OCI_MANIFEST,
            ),
            (json!({"schemaVersion": 2, "layers": []}).to_string().into_bytes(), OCI_MANIFEST),
            (
                json!({"schemaVersion": 2, "config": {"mediaType": "a/b", "digest": "sha256:xyz", "size": 1}})
                    .to_string()
                    .into_bytes(),
                OCI_MANIFEST,
            ),
            (json!({"schemaVersion": 2, "config": ok_config, "layers": []}).to_string().into_bytes(), DOCKER_MANIFEST),
            (json!({"schemaVersion": 2, "config": ok_config}).to_string().into_bytes(), "application/vnd.unknown+json"),
        ] {
            assert!(
                matches!(parse(&bytes, ct), Err(RegistryError::ManifestInvalid(_))),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
