//! The node's image store: images pulled from any OCI registry, every blob's digest checked,
//! each layer unpacked once (by its uncompressed digest, the `diff_id`) and shared read-only by
//! every image and container that uses it. A reference pulled once is served from the store
//! afterwards without touching the network.
//!
//! Layout under the store's root:
//! - `layers/<diff_id hex>/`: one unpacked layer (see [`crate::unpack`]);
//! - `refs/<sha256 of the reference>.json`: what a reference resolved to;
//! - `tmp/`: downloads and unpacks in progress (renamed into place when complete).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::unpack::{UnpackError, unpack};

#[derive(Debug, Error)]
pub enum PullError {
    #[error("invalid image reference {reference:?}: {why}")]
    Reference { reference: String, why: String },
    #[error("{reference}: {why}")]
    Registry { reference: String, why: String },
    #[error("{reference}: layer {digest} does not match its digest ({why})")]
    Digest { reference: String, digest: String, why: String },
    #[error("{reference}: layer {digest}: {source}")]
    Unpack { reference: String, digest: String, source: UnpackError },
    #[error("image store at {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// What a container needs from an image's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// A pulled image: its manifest digest, configuration, and layer directories bottom to top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub reference: String,
    pub manifest_digest: String,
    pub config: ImageConfig,
    pub diff_ids: Vec<String>,
    #[serde(skip)]
    pub layers: Vec<PathBuf>,
}

pub struct ImageStore {
    root: PathBuf,
    /// One pull at a time per reference: a second caller waits and then finds the cache.
    pulling: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// Makes every temporary name unique within this process.
    counter: std::sync::atomic::AtomicU64,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> PullError + '_ {
    move |source| PullError::Io { path: path.display().to_string(), source }
}

/// Registries on this machine speak plain HTTP; everything else HTTPS.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { registry })
        .unwrap_or(registry);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.starts_with("127.") || host == "::1"
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RawContainerConfig>,
    rootfs: RawRootfs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawContainerConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawRootfs {
    diff_ids: Vec<String>,
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<Self, PullError> {
        for sub in ["layers", "refs", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(io_at(root))?;
        }
        Ok(ImageStore { root: root.to_path_buf(), pulling: Default::default(), counter: Default::default() })
    }

    fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(hex_of(diff_id))
    }

    fn ref_file(&self, reference: &str) -> PathBuf {
        self.root.join("refs").join(format!("{}.json", hex::encode(Sha256::digest(reference.as_bytes()))))
    }

    /// The image if `reference` was pulled before and all its layers are in the store.
    pub fn cached(&self, reference: &str) -> Option<Image> {
        let raw = fs::read(self.ref_file(reference)).ok()?;
        let mut image: Image = serde_json::from_slice(&raw).ok()?;
        image.layers = image.diff_ids.iter().map(|d| self.layer_dir(d)).collect();
        image.layers.iter().all(|l| l.is_dir()).then_some(image)
    }

    /// Pulls `reference` (`HOST[:PORT]/repo:tag` or `...@sha256:...`), or returns it from
    /// the store. `auth` is basic-auth credentials for the registry.
    pub async fn pull(&self, reference: &str, auth: Option<(&str, &str)>) -> Result<Image, PullError> {
        if let Some(image) = self.cached(reference) {
            return Ok(image);
        }
        let lock = self.pulling.lock().expect("pull lock map").entry(reference.to_string()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(image) = self.cached(reference) {
            return Ok(image);
        }
        let parsed: Reference = reference.parse().map_err(|e: oci_client::ParseError| PullError::Reference {
            reference: reference.into(),
            why: e.to_string(),
        })?;
        let protocol = if is_loopback(parsed.registry()) { ClientProtocol::Http } else { ClientProtocol::Https };
        let client = Client::new(ClientConfig { protocol, ..Default::default() });
        let auth = match auth {
            Some((user, password)) => RegistryAuth::Basic(user.into(), password.into()),
            None => RegistryAuth::Anonymous,
        };
        let registry_err = |e: oci_client::errors::OciDistributionError| PullError::Registry {
            reference: reference.into(),
            why: e.to_string(),
        };
        let (manifest, manifest_digest, config_json) =
            client.pull_manifest_and_config(&parsed, &auth).await.map_err(registry_err)?;
        let raw: RawConfig = serde_json::from_str(&config_json).map_err(|e| PullError::Registry {
            reference: reference.into(),
            why: format!("bad image configuration: {e}"),
        })?;
        if raw.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(PullError::Registry {
                reference: reference.into(),
                why: format!(
                    "{} layers but {} diff_ids in the configuration",
                    manifest.layers.len(),
                    raw.rootfs.diff_ids.len()
                ),
            });
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&raw.rootfs.diff_ids) {
            if self.layer_dir(diff_id).is_dir() {
                continue;
            }
            let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = self.root.join("tmp").join(format!("{}-{}-{n}", hex_of(&layer.digest), std::process::id()));
            let blob = tmp.with_extension("blob");
            let file = tokio::fs::File::create(&blob).await.map_err(io_at(&blob))?;
            if let Err(e) = client.pull_blob(&parsed, layer, file).await {
                let _ = tokio::fs::remove_file(&blob).await;
                return Err(match e {
                    oci_client::errors::OciDistributionError::DigestError(d) => PullError::Digest {
                        reference: reference.into(),
                        digest: layer.digest.clone(),
                        why: d.to_string(),
                    },
                    other => registry_err(other),
                });
            }
            let (gzip, dest, final_dir) = (layer.media_type.contains("gzip"), tmp.clone(), self.layer_dir(diff_id));
            let (reference_owned, digest, diff) = (reference.to_string(), layer.digest.clone(), diff_id.clone());
            let result = tokio::task::spawn_blocking(move || {
                unpack_verified(&blob, gzip, &dest, &final_dir, &diff, &reference_owned, &digest)
            })
            .await
            .map_err(|e| PullError::Io { path: tmp.display().to_string(), source: io::Error::other(e) })?;
            result?;
        }
        let c = raw.config.unwrap_or_default();
        let mut image = Image {
            reference: reference.into(),
            manifest_digest,
            config: ImageConfig {
                env: c.env.unwrap_or_default(),
                entrypoint: c.entrypoint.unwrap_or_default(),
                cmd: c.cmd.unwrap_or_default(),
                working_dir: c.working_dir.filter(|w| !w.is_empty()),
                user: c.user.filter(|u| !u.is_empty()),
            },
            diff_ids: raw.rootfs.diff_ids,
            layers: Vec::new(),
        };
        let record = self.ref_file(reference);
        let tmp_record = record.with_extension("tmp");
        fs::write(&tmp_record, serde_json::to_vec(&image).expect("json")).map_err(io_at(&tmp_record))?;
        fs::rename(&tmp_record, &record).map_err(io_at(&record))?;
        image.layers = image.diff_ids.iter().map(|d| self.layer_dir(d)).collect();
        Ok(image)
    }
}

/// Unpacks a downloaded blob into `dest`, checks the uncompressed digest against `diff_id`,
/// and moves it to `final_dir`. Leaves nothing behind on failure.
fn unpack_verified(
    blob: &Path,
    gzip: bool,
    dest: &Path,
    final_dir: &Path,
    diff_id: &str,
    reference: &str,
    digest: &str,
) -> Result<(), PullError> {
    let cleanup = || {
        let _ = fs::remove_file(blob);
        let _ = fs::remove_dir_all(dest);
    };
    let outcome = (|| {
        fs::create_dir_all(dest).map_err(io_at(dest))?;
        let file = fs::File::open(blob).map_err(io_at(blob))?;
        let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
        let mut hashing = Hashing { inner: reader, hasher: Sha256::new() };
        unpack(&mut hashing, dest).map_err(|source| PullError::Unpack {
            reference: reference.into(),
            digest: digest.into(),
            source,
        })?;
        // Read whatever the tar reader left (padding after the end marker) so the hash covers it all.
        io::copy(&mut hashing, &mut io::sink()).map_err(io_at(blob))?;
        let got = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        if got != diff_id {
            return Err(PullError::Digest {
                reference: reference.into(),
                digest: digest.into(),
                why: format!("uncompressed {got}, expected {diff_id}"),
            });
        }
        match fs::rename(dest, final_dir) {
            Ok(()) => Ok(()),
            // Another pull of the same layer finished first: keep its copy.
            Err(_) if final_dir.is_dir() => Ok(()),
            Err(e) => Err(PullError::Io { path: final_dir.display().to_string(), source: e }),
        }
    })();
    cleanup();
    outcome
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries_use_plain_http() {
        for r in ["127.0.0.1:5000", "localhost:5000", "localhost", "[::1]:5000", "127.1.2.3"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["registry.example.com", "10.0.0.1:5000", "docker.io"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
