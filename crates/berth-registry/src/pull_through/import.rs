//! The import of a pull-through cache: a manifest the repository lacks is fetched from the
//! rule's upstream with its blobs (an index's child manifests follow when they are pulled),
//! stored under the pulled tag or digest, and then served like any pushed image. The
//! repository is created on the first pull, set up by a `PULL_THROUGH_CACHE` template.

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::images::{Origin, Reference};
use crate::manifest::{self, Descriptor};
use crate::upstream::Remote;
use crate::{Registry, Scope};

impl Registry {
    /// Imports `name:reference` from the upstream of the pull-through rule covering `name`,
    /// for a pull by the caller of `scope`. `Ok(false)` when no rule covers the name.
    pub async fn pull_through(&self, scope: &Scope, name: &str, reference: &str) -> Result<bool> {
        let Some((rule, upstream_repo)) = self.pull_through_rule_for(scope, name)? else {
            return Ok(false);
        };
        let parsed_reference = Reference::parse(reference)?;
        match self.repository(scope, name) {
            Ok((_, repo)) => self.authorize(scope, &repo, "ecr:BatchImportUpstreamImage")?,
            Err(RegistryError::RepositoryNotFound(_)) => {
                self.authorize_registry(scope, "ecr:CreateRepository")?;
                self.authorize_registry(scope, "ecr:BatchImportUpstreamImage")?;
            }
            Err(e) => return Err(e),
        }
        let key = format!("{}|{name}|{reference}", scope.region);
        let lock = self.imports.lock().expect("import locks").entry(key.clone()).or_default().clone();
        let outcome = async {
            let _one_at_a_time = lock.lock().await;
            let internal = Registry::internal(scope);
            if self.holds(&internal, name, &parsed_reference)? {
                return Ok(true);
            }
            let remote = self.remote_of(&rule)?;
            self.import(&internal, name, &remote, &upstream_repo, reference, &parsed_reference).await?;
            Ok(true)
        }
        .await;
        self.imports.lock().expect("import locks").remove(&key);
        outcome
    }

    /// Whether the repository exists and holds the manifest `reference` names.
    fn holds(&self, scope: &Scope, name: &str, reference: &Reference) -> Result<bool> {
        if self.repository(scope, name).is_err() {
            return Ok(false);
        }
        match self.resolve(scope, name, reference) {
            Ok(digest) => Ok(self.store.get(&scope.keys().manifest(name, &digest.to_string()))?.is_some()),
            Err(RegistryError::ManifestUnknown(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn import(
        &self,
        scope: &Scope,
        name: &str,
        remote: &Remote,
        upstream_repo: &str,
        reference: &str,
        parsed_reference: &Reference,
    ) -> Result<()> {
        let bytes = remote.manifest(upstream_repo, reference).await?;
        if let Reference::Digest(wanted) = parsed_reference
            && Digest::of(wanted.algorithm(), &bytes) != *wanted
        {
            return Err(RegistryError::Upstream(format!(
                "{} answered {upstream_repo}@{wanted} with another manifest",
                remote.host()
            )));
        }
        let parsed = manifest::parse(&bytes, "")?;
        self.create_for(scope, name, "PULL_THROUGH_CACHE").await?;
        for blob in parsed.blobs.iter().filter(|b| !b.foreign) {
            self.import_blob(scope, name, remote, upstream_repo, blob).await?;
        }
        tracing::info!(repository = name, reference, upstream = remote.host(), "pull-through cache import");
        self.store_manifest(scope, name, reference, "", &bytes, Origin::PullThrough).await?;
        Ok(())
    }

    /// Makes `blob` part of the repository: already there, linked from another repository of
    /// the registry that holds it, or downloaded (its digest checked as it is stored).
    async fn import_blob(
        &self,
        scope: &Scope,
        name: &str,
        remote: &Remote,
        upstream_repo: &str,
        blob: &Descriptor,
    ) -> Result<()> {
        if self.blob(scope, name, &blob.digest).await?.is_some()
            || self.mount_blob(scope, name, &blob.digest, None).await?.is_some()
        {
            return Ok(());
        }
        let data = remote.blob(upstream_repo, &blob.digest, blob.size).await?;
        let id = self.start_upload(scope, name).await?;
        self.complete_upload(scope, name, &id, &blob.digest.to_string(), Some(data)).await?;
        Ok(())
    }
}
