//! The replication worker: each pass copies every image that still has an `IN_PROGRESS`
//! destination, then records the outcome unless a newer push of the image came meanwhile.
//! An index's child manifests are copied before it, blobs before their manifest; a
//! destination repository that does not exist is created (in another region of this Berth
//! by its `REPLICATION` creation template).

use berth_store::StoreExt;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{MAX_ATTEMPTS, Status};
use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::images::Origin;
use crate::keys::{self, Keys};
use crate::upstream::Remote;
use crate::{Caller, ManifestRecord, Registry, Scope, decode};

/// What a pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Copies that reached `COMPLETE` or `FAILED`.
    pub finished: usize,
    /// Copies still `IN_PROGRESS` (to retry).
    pub pending: usize,
}

/// Where a copy goes: another region of this Berth, or a peer.
enum Target<'a> {
    Here(&'a Scope),
    There(&'a Remote),
}

impl Registry {
    /// One pass over the pending copies of every region.
    pub async fn replicate_pending(&self) -> Result<Pass> {
        let mut pass = Pass::default();
        for region in self.regions()? {
            let prefix = Keys { region: &region }.replications("");
            let prefix = &prefix[..prefix.len() - 1];
            for kv in self.store.list(prefix)? {
                let Some((repo, digest)) = keys::split_tail(&kv.key[prefix.len()..]) else { continue };
                let statuses: Vec<Status> = decode(&kv)?;
                for status in statuses.iter().filter(|s| s.status == "IN_PROGRESS") {
                    let now = std::time::SystemTime::now();
                    let source = Scope { region: region.clone(), caller: Caller::Registry, now };
                    let outcome = self.replicate_to(&source, repo, digest, status).await;
                    if let Err(e) = &outcome {
                        tracing::warn!(repository = repo, digest, destination = %status.region, error = %e, "replication failed");
                    }
                    match self.record_outcome(&kv.key, status, outcome.map_err(|e| e.to_string())).await? {
                        true => pass.finished += 1,
                        false => pass.pending += 1,
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Writes down how a copy went, unless the image was pushed again since (then the
    /// copy is redone by the next pass). Whether the status reached its end.
    async fn record_outcome(
        &self,
        key: &str,
        tried: &Status,
        outcome: std::result::Result<(), String>,
    ) -> Result<bool> {
        self.edit_record(key, |current: Option<Vec<Status>>| {
            let mut statuses = current.unwrap_or_default();
            let Some(s) = statuses.iter_mut().find(|s| {
                s.region == tried.region && s.registry_id == tried.registry_id && s.generation == tried.generation
            }) else {
                return Ok((Some(statuses), false));
            };
            match &outcome {
                Ok(()) => (s.status, s.failure_code) = ("COMPLETE".into(), None),
                Err(why) => {
                    s.attempts += 1;
                    if s.attempts >= MAX_ATTEMPTS {
                        (s.status, s.failure_code) = ("FAILED".into(), Some(why.clone()));
                    }
                }
            }
            let done = s.status != "IN_PROGRESS";
            Ok((Some(statuses), done))
        })
        .await
    }

    /// Copies image `digest` of `repo` (with the tags that name it now) to one destination.
    async fn replicate_to(&self, source: &Scope, repo: &str, digest: &str, dest: &Status) -> Result<()> {
        let digest: Digest = crate::uploads::parse_digest(digest)?;
        let (_, record) = self.manifest_kv(source, repo, &digest)?;
        let tags: Vec<String> = self
            .images(source, repo)?
            .into_iter()
            .find(|i| i.record.digest == record.digest)
            .map(|i| i.tags)
            .unwrap_or_default();
        if dest.registry_id == self.options.account {
            let target = Scope { region: dest.region.clone(), caller: Caller::Registry, now: source.now };
            if let Err(RegistryError::RepositoryNotFound(_)) = self.repository(&target, repo) {
                self.create_for(&target, repo, "REPLICATION").await?;
            }
            self.copy(source, &Target::Here(&target), repo, &record).await?;
            for tag in &tags {
                let bytes = record.manifest.as_bytes();
                self.store_manifest(&target, repo, tag, &record.media_type, bytes, Origin::Replica).await?;
            }
            return Ok(());
        }
        let peer = self.peer(&dest.region, &dest.registry_id).ok_or_else(|| {
            RegistryError::Upstream(format!("no peer is configured for {} in {}", dest.registry_id, dest.region))
        })?;
        let credentials = peer.login().await.map_err(RegistryError::Upstream)?;
        peer.ensure_repository(repo).await.map_err(RegistryError::Upstream)?;
        let remote = Remote::new(peer.endpoint(), true, Some(credentials))?;
        self.copy(source, &Target::There(&remote), repo, &record).await?;
        for tag in &tags {
            remote.push_manifest(repo, tag, &record.media_type, record.manifest.as_bytes()).await?;
        }
        Ok(())
    }

    /// Copies a manifest to `target`: its children first, then the blobs the target lacks,
    /// then the manifest itself (by digest).
    fn copy<'a>(
        &'a self,
        source: &'a Scope,
        target: &'a Target<'a>,
        repo: &'a str,
        record: &'a ManifestRecord,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            for child in &record.children {
                if let Some(child) = self.source_child(source, repo, child)? {
                    self.copy(source, target, repo, &child).await?;
                }
            }
            for blob in &record.blobs {
                let digest = crate::uploads::parse_digest(blob)?;
                self.copy_blob(source, target, repo, &digest).await?;
            }
            let (digest, media_type, bytes) = (&record.digest, &record.media_type, record.manifest.as_bytes());
            match target {
                Target::Here(scope) => {
                    self.store_manifest(scope, repo, digest, media_type, bytes, Origin::Replica).await?;
                }
                Target::There(remote) => remote.push_manifest(repo, digest, media_type, bytes).await?,
            }
            Ok(())
        }
        .boxed()
    }

    /// Makes blob `digest` of the source's `repo` part of the target's: linked in another
    /// region of this Berth (blob files are shared), uploaded to a peer that lacks it.
    async fn copy_blob(&self, source: &Scope, target: &Target<'_>, repo: &str, digest: &Digest) -> Result<()> {
        let missing = || RegistryError::BlobUnknown(digest.to_string());
        match target {
            Target::Here(scope) => {
                if self.blob(scope, repo, digest).await?.is_none() {
                    self.mount_blob(scope, repo, digest, None).await?.ok_or_else(missing)?;
                }
            }
            Target::There(remote) => {
                if !remote.has_blob(repo, digest).await? {
                    let info = self.blob(source, repo, digest).await?.ok_or_else(missing)?;
                    let data = self.blobs.read(digest, 0, info.size).await?;
                    remote.push_blob(repo, digest, info.size, data).await?;
                }
            }
        }
        Ok(())
    }

    /// A child manifest of an index, if the source holds it (an imported index may not).
    fn source_child(&self, source: &Scope, repo: &str, digest: &str) -> Result<Option<ManifestRecord>> {
        let digest = crate::uploads::parse_digest(digest)?;
        match self.manifest_kv(source, repo, &digest) {
            Ok((_, record)) => Ok(Some(record)),
            Err(RegistryError::ManifestUnknown(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::digest::Algorithm;
    use crate::manifest::OCI_MANIFEST;
    use crate::repositories::NewRepository;
    use crate::testing;

    #[tokio::test]
    async fn a_push_is_copied_into_another_region_with_its_tag() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        r.create_repository(&s, NewRepository::named("web")).await.unwrap();
        let config = json!({"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "000000000000"}]}]});
        r.put_replication_configuration(&s, config).await.unwrap();
        let id = r.start_upload(&s, "web").await.unwrap();
        let layer = Digest::of(Algorithm::Sha256, b"layer");
        let body: crate::blobs::ByteStream =
            Box::pin(futures::stream::once(async { Ok(Bytes::from_static(b"layer")) }));
        r.complete_upload(&s, "web", &id, &layer.to_string(), Some(body)).await.unwrap();
        let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": layer.to_string(), "size": 5},
            "layers": []});
        let pushed = r.put_manifest(&s, "web", "v1", OCI_MANIFEST, m.to_string().as_bytes()).await.unwrap();
        let digest = pushed.digest.to_string();
        assert_eq!(r.replication_statuses(&s, "web", &digest).unwrap()[0].status, "IN_PROGRESS");
        assert_eq!(r.replicate_pending().await.unwrap(), Pass { finished: 1, pending: 0 });
        assert_eq!(r.replication_statuses(&s, "web", &digest).unwrap()[0].status, "COMPLETE");
        let eu = Scope { region: "eu-west-1".into(), ..testing::scope() };
        assert_eq!(r.get_manifest(&eu, "web", "v1", false).await.unwrap().digest, digest);
        assert!(r.replication_statuses(&eu, "web", &digest).unwrap().is_empty(), "replicas are not replicated again");
        let bad = json!({"rules": [{"destinations": [{"region": "us-east-1", "registryId": "000000000000"}]}]});
        assert!(r.put_replication_configuration(&s, bad).await.is_err(), "the source itself");
        let unknown = json!({"rules": [{"destinations": [{"region": "us-east-1", "registryId": "111111111111"}]}]});
        assert!(r.put_replication_configuration(&s, unknown).await.is_err(), "no such peer");
    }
}
