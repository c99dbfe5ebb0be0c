//! Berth's private registry. One [`Registry`] holds the truth both front ends share: the
//! OCI distribution API on `/v2/` ([`http`]) and the ECR API (in `berth-api`). Metadata
//! (repositories, manifests, tags, blob links, upload sessions, policies) lives in the
//! store; blob bytes live in a [`BlobStore`].
//!
//! A push flows: [`uploads`] (stream, hash, fsync, rename, link the blob to the repository)
//! → [`images`] (parse the manifest, check its blobs are linked, tag it) → the store.
//! [`gc`] removes what nothing references; [`lifecycle`] expires images by policy.
//!
//! Registry-wide state: [`registry_policy`], [`scanning`] configuration, [`account`]
//! settings, repository creation [`templates`], [`pull_through`] cache rules (fetching from
//! upstream registries through [`upstream`]) and [`replication`] to other regions and peers.

pub mod access;
pub mod account;
pub mod blobs;
pub mod digest;
pub mod error;
pub mod gc;
pub mod http;
pub mod images;
pub mod keys;
pub mod lifecycle;
pub mod manifest;
pub mod object_blobs;
pub mod pull_through;
pub mod registry_policy;
pub mod replication;
pub mod repositories;
pub mod scanning;
pub mod templates;
pub mod token;
pub mod uploads;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_store::{Compare, KeyValue, Op, Store, Txn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use access::Caller;
pub use blobs::{BlobStore, FsBlobStore};
pub use digest::Digest;
pub use error::{RegistryError, Result};
pub use object_blobs::ObjectBlobStore;
pub use token::Tokens;

/// How many times an operation re-reads and retries when a compare-and-swap loses a race.
const MAX_ATTEMPTS: usize = 50;

/// How the registry is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The account id in ARNs and `registryId`.
    pub account: String,
    /// The region `/v2/` serves to anonymous callers (token holders get their token's).
    pub region: String,
    /// `host:port` clients reach the registry at: the first part of a `repositoryUri`.
    pub host: String,
    /// A push to a repository that does not exist creates it.
    pub create_on_push: bool,
    /// How long an uploaded blob no manifest references is kept (a push in progress).
    pub gc_grace: Duration,
    /// Where the credentials of pull-through cache rules (`credentialArn`) are read.
    pub secrets_dir: std::path::PathBuf,
}

/// One caller in one region at one moment: what every registry operation is asked under.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    pub caller: Caller,
    pub now: SystemTime,
}

impl Scope {
    pub fn keys(&self) -> keys::Keys<'_> {
        keys::Keys { region: &self.region }
    }

    pub fn timestamp(&self) -> f64 {
        epoch_seconds(self.now)
    }
}

pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) as f64 / 1000.0
}

/// A repository as stored (and as DescribeRepositories shows it, with ARN and URI added).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: String,
    pub created_at: f64,
    pub image_tag_mutability: String,
    #[serde(default)]
    pub exclusion_filters: Vec<serde_json::Value>,
    #[serde(default)]
    pub scan_on_push: bool,
    pub encryption: serde_json::Value,
    #[serde(default)]
    pub tags: Vec<serde_json::Value>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub lifecycle_evaluated_at: Option<f64>,
}

impl Repository {
    /// Whether `tag`, once set, may not be moved to another image.
    pub fn tag_is_immutable(&self, tag: &str) -> bool {
        let matches = || {
            self.exclusion_filters
                .iter()
                .filter_map(|f| f.get("filter").and_then(serde_json::Value::as_str))
                .any(|f| access::wildcard(f, tag))
        };
        match self.image_tag_mutability.as_str() {
            "IMMUTABLE" => true,
            "IMMUTABLE_WITH_EXCLUSION" => !matches(),
            "MUTABLE_WITH_EXCLUSION" => matches(),
            _ => false,
        }
    }
}

/// One manifest in one repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub digest: String,
    pub media_type: String,
    /// The manifest exactly as pushed (manifests are JSON, so UTF-8).
    pub manifest: String,
    pub pushed_at: f64,
    #[serde(default)]
    pub last_pull: Option<f64>,
    #[serde(default)]
    pub blobs: Vec<String>,
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<serde_json::Value>,
    pub image_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagRecord {
    pub digest: String,
    pub pushed_at: f64,
}

/// A blob a repository holds. `touched` is renewed whenever a manifest starts to use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRecord {
    pub size: u64,
    pub touched: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    pub repository: String,
    pub started_at: f64,
}

pub(crate) fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value).map_err(|e| berth_store::StoreError::Corrupt(format!("{}: {e}", kv.key)).into())
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

/// The running hash of an upload in progress, and the lock that orders its chunks.
#[derive(Default)]
pub(crate) struct UploadState {
    pub hasher: Option<digest::Hasher>,
    /// How many bytes `hasher` has seen (it is only valid while that is the upload's size).
    pub hashed: u64,
}

pub struct Registry {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub tokens: Tokens,
    pub options: Options,
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadState>>>>,
    /// Held shared by everything that makes a blob referenced (commit, mount, manifest put)
    /// and exclusively by garbage collection while it deletes, so the two never interleave.
    gc_lock: tokio::sync::RwLock<()>,
    /// Other Berth registries replication may copy to (set once at start).
    peers: std::sync::OnceLock<Arc<dyn replication::Peers>>,
    /// Wakes the replication worker: a push recorded work for it.
    pub replication_wake: tokio::sync::Notify,
    /// One pull-through import at a time per repository and reference.
    imports: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, tokens: Tokens, options: Options) -> Arc<Self> {
        Arc::new(Registry {
            store,
            blobs,
            tokens,
            options,
            uploads: Mutex::new(HashMap::new()),
            gc_lock: tokio::sync::RwLock::new(()),
            peers: std::sync::OnceLock::new(),
            replication_wake: tokio::sync::Notify::new(),
            imports: Mutex::new(HashMap::new()),
        })
    }

    /// A registry over a data directory: blobs under `dir`, the token secret in it.
    pub fn open(dir: &std::path::Path, store: Arc<dyn Store>, options: Options) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let blobs = FsBlobStore::open(dir)?;
        let tokens = Tokens::load_or_create(&dir.join("token.key"))?;
        Ok(Registry::new(store, Arc::new(blobs), tokens, options))
    }

    /// A registry keeping its blobs in `blobs` (the filesystem under `dir`, or object storage
    /// several servers share) and signing tokens with the store's shared secret, so that a
    /// token from any server of the store opens every server's registry.
    pub async fn open_shared(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        options: Options,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let tokens = Tokens::shared(store.as_ref(), &dir.join("token.key")).await?;
        Ok(Registry::new(store, blobs, tokens, options))
    }

    pub fn arn(&self, region: &str, repo: &str) -> String {
        format!("arn:aws:ecr:{region}:{}:repository/{repo}", self.options.account)
    }

    pub fn uri(&self, repo: &str) -> String {
        format!("{}/{repo}", self.options.host)
    }

    /// Every region that has had repositories.
    pub fn regions(&self) -> Result<Vec<String>> {
        use berth_store::StoreExt;
        Ok(self.store.list(keys::REGIONS)?.into_iter().map(|kv| kv.key[keys::REGIONS.len()..].to_string()).collect())
    }

    /// Checks `action` (an ECR action name such as `ecr:PutImage`) on `repo` for the caller,
    /// under the repository's policy and the registry's.
    pub fn authorize(&self, scope: &Scope, repo: &Repository, action: &str) -> Result<()> {
        let registry = self.registry_policy(scope)?;
        access::check(&[repo.policy.as_deref(), registry.as_deref()], &scope.caller, &self.options.account, action)
    }

    /// Checks `action` for the caller under the registry policy alone (no repository yet).
    pub fn authorize_registry(&self, scope: &Scope, action: &str) -> Result<()> {
        let registry = self.registry_policy(scope)?;
        access::check(&[registry.as_deref()], &scope.caller, &self.options.account, action)
    }

    /// Runs `op`, and once more after catching up with the store when it found something
    /// missing: with servers sharing an etcd store, this server's view can trail a write the
    /// client just made through another one.
    pub async fn or_after_sync<T, F: std::future::Future<Output = Result<T>>>(&self, op: impl Fn() -> F) -> Result<T> {
        match op().await {
            Err(e) if e.may_be_stale() => {
                self.sync().await?;
                op().await
            }
            done => done,
        }
    }

    /// Catches this server's view up with every write committed to the store so far.
    pub async fn sync(&self) -> Result<()> {
        Ok(self.store.sync().await?)
    }

    /// The JSON record at `key` and its store entry, if there is one.
    pub(crate) fn read_record<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(KeyValue, T)>> {
        match self.store.get(key)? {
            Some(kv) => {
                let value = decode(&kv)?;
                Ok(Some((kv, value)))
            }
            None => Ok(None),
        }
    }

    /// Applies `edit` to the JSON record at `key` (`None`: absent) under compare-and-swap:
    /// `edit` returns the new record (`None` deletes it) and what to hand back.
    pub(crate) async fn edit_record<T: Serialize + DeserializeOwned, R>(
        &self,
        key: &str,
        edit: impl Fn(Option<T>) -> Result<(Option<T>, R)>,
    ) -> Result<R> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.read_record::<T>(key)?;
            let revision = current.as_ref().map_or(0, |(kv, _)| kv.mod_revision);
            let (next, out) = edit(current.map(|(_, v)| v))?;
            let op = match &next {
                Some(v) => Op::put(key, encode(v)),
                None => Op::delete(key),
            };
            let txn = Txn::new().when(vec![Compare::unchanged(key, revision)]).and_then(vec![op]);
            if self.store.txn(txn).await?.succeeded {
                return Ok(out);
            }
        }
        Err(RegistryError::Contention(key.to_string()))
    }

    /// Changes the record at `key` with `edit`; `missing` when there is none. Returns it changed.
    pub(crate) async fn update_record<T: Serialize + DeserializeOwned + Clone>(
        &self,
        key: &str,
        missing: impl Fn() -> RegistryError,
        edit: impl Fn(&mut T) -> Result<()>,
    ) -> Result<T> {
        self.edit_record(key, |current: Option<T>| {
            let mut record = current.ok_or_else(&missing)?;
            edit(&mut record)?;
            Ok((Some(record.clone()), record))
        })
        .await
    }

    /// Removes the record at `key`; `missing` when there is none. Returns what it was.
    pub(crate) async fn remove_record<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        missing: impl Fn() -> RegistryError,
    ) -> Result<T> {
        self.edit_record(key, |current: Option<T>| Ok((None, current.ok_or_else(&missing)?))).await
    }

    /// Sets the other Berth registries replication may copy to (once, at start).
    pub fn set_peers(&self, peers: Arc<dyn replication::Peers>) {
        let _ = self.peers.set(peers);
    }

    /// The same request as `scope`, carried out by the registry itself (after the caller's
    /// request was authorized).
    pub fn internal(scope: &Scope) -> Scope {
        Scope { region: scope.region.clone(), caller: Caller::Registry, now: scope.now }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub struct Fixture {
        pub registry: Arc<Registry>,
        pub _dir: tempfile::TempDir,
    }

    pub fn registry() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(berth_store::Embedded::in_memory().unwrap());
        let options = Options {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            host: "127.0.0.1:5000".into(),
            create_on_push: false,
            gc_grace: Duration::from_secs(3600),
            secrets_dir: dir.path().join("secrets"),
        };
        let registry = Registry::open(dir.path(), store, options).unwrap();
        Fixture { registry, _dir: dir }
    }

    pub fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            caller: Caller::Account { access_key: "AKID".into() },
            now: SystemTime::now(),
        }
    }
}
