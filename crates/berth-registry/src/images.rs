//! Images in a repository: manifests (by digest) and tags (names pointing at one), put with
//! every referenced blob and manifest checked, tag immutability enforced, and read back,
//! listed, deleted and walked for referrers. Both `/v2/` and the ECR API come through here.

use std::collections::BTreeMap;

use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::manifest::{self, MAX_MANIFEST};
use crate::uploads::parse_digest;
use crate::{LinkRecord, MAX_ATTEMPTS, ManifestRecord, Registry, Scope, TagRecord, decode, encode};

/// How often a manifest's last pull time is written down at most.
const PULL_TIME_RESOLUTION: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// A tag as the distribution spec allows it (ECR allows up to 300 characters).
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && tag.len() <= 300 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Reference {
    pub fn parse(raw: &str) -> Result<Reference> {
        if raw.contains(':') {
            return parse_digest(raw).map(Reference::Digest);
        }
        if !valid_tag(raw) {
            return Err(RegistryError::TagInvalid(raw.to_string()));
        }
        Ok(Reference::Tag(raw.to_string()))
    }
}

/// An image: a manifest and the tags pointing at it.
#[derive(Debug, Clone)]
pub struct Image {
    pub record: ManifestRecord,
    pub tags: Vec<String>,
}

/// Who brings a manifest: a client's push (which replication rules copy on), a pull-through
/// import, or replication from another registry (neither of which is replicated again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Push,
    PullThrough,
    Replica,
}

/// What one manifest put stores.
struct ManifestPut<'a> {
    repo: &'a str,
    reference: &'a Reference,
    digest: &'a Digest,
    parsed: &'a manifest::Parsed,
    text: &'a str,
    origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<String>,
    /// The manifest was new to the repository (not just a new tag on a known one).
    pub new: bool,
}

impl Registry {
    /// Stores a manifest a client pushed under `reference` (a tag, or its own digest).
    pub async fn put_manifest(
        &self,
        scope: &Scope,
        repo: &str,
        reference: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Pushed> {
        self.store_manifest(scope, repo, reference, content_type, bytes, Origin::Push).await
    }

    /// Stores a manifest under `reference`; `origin` says who brings it (see [`Origin`]).
    pub async fn store_manifest(
        &self,
        scope: &Scope,
        repo: &str,
        reference: &str,
        content_type: &str,
        bytes: &[u8],
        origin: Origin,
    ) -> Result<Pushed> {
        let reference = Reference::parse(reference)?;
        if bytes.len() > MAX_MANIFEST {
            return Err(RegistryError::ManifestInvalid(format!("manifests are limited to {MAX_MANIFEST} bytes")));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| RegistryError::ManifestInvalid("a manifest is UTF-8 JSON".into()))?
            .to_string();
        let parsed = manifest::parse(bytes, content_type)?;
        let digest = match &reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), bytes);
                if actual != *d {
                    return Err(RegistryError::DigestInvalid(format!("manifest digest is {actual}, not {d}")));
                }
                actual
            }
            Reference::Tag(_) => Digest::of(crate::digest::Algorithm::Sha256, bytes),
        };
        let _gc = self.gc_lock.read().await;
        for _ in 0..MAX_ATTEMPTS {
            let put =
                ManifestPut { repo, reference: &reference, digest: &digest, parsed: &parsed, text: &text, origin };
            if let Some(pushed) = self.or_after_sync(|| self.try_store_manifest(scope, &put)).await? {
                return Ok(pushed);
            }
        }
        Err(RegistryError::Contention(repo.to_string()))
    }

    /// One attempt of [`Registry::store_manifest`]: `None` when a concurrent change won.
    async fn try_store_manifest(&self, scope: &Scope, put: &ManifestPut<'_>) -> Result<Option<Pushed>> {
        let (repo, keys) = (put.repo, scope.keys());
        let (repo_kv, record) = self.repository_for_push(scope, repo).await?;
        self.authorize(scope, &record, "ecr:PutImage")?;
        let mut compares = vec![Compare::unchanged(&repo_kv.key, repo_kv.mod_revision)];
        let mut ops = Vec::new();
        self.touch_blobs(scope, repo, put.parsed, &mut compares, &mut ops)?;
        let image_size = self.children_size(scope, repo, put, &mut compares)?;
        let manifest_key = keys.manifest(repo, &put.digest.to_string());
        let existing = self.store.get(&manifest_key)?;
        let existing_record: Option<ManifestRecord> = existing.as_ref().map(decode).transpose()?;
        compares.push(Compare::unchanged(&manifest_key, existing.as_ref().map_or(0, |kv| kv.mod_revision)));
        if let Reference::Tag(tag) = put.reference {
            let tag_key = keys.tag(repo, tag);
            let current = self.store.get(&tag_key)?;
            if let Some(kv) = &current {
                let pointed: TagRecord = decode(kv)?;
                if pointed.digest != put.digest.to_string() && record.tag_is_immutable(tag) {
                    return Err(RegistryError::TagImmutable { repository: repo.to_string(), tag: tag.clone() });
                }
            }
            compares.push(Compare::unchanged(&tag_key, current.as_ref().map_or(0, |kv| kv.mod_revision)));
            let tag_record = TagRecord { digest: put.digest.to_string(), pushed_at: scope.timestamp() };
            ops.push(Op::put(&tag_key, encode(&tag_record)));
        }
        let parsed = put.parsed;
        let stored = ManifestRecord {
            digest: put.digest.to_string(),
            media_type: parsed.media_type.clone(),
            manifest: put.text.to_string(),
            pushed_at: existing_record.as_ref().map_or(scope.timestamp(), |e| e.pushed_at),
            last_pull: existing_record.as_ref().and_then(|e| e.last_pull),
            blobs: parsed.blobs.iter().map(|b| b.digest.to_string()).collect(),
            children: parsed.children.iter().map(|c| c.digest.to_string()).collect(),
            subject: parsed.subject.as_ref().map(Digest::to_string),
            artifact_type: parsed.artifact_type.clone(),
            annotations: parsed.annotations.clone(),
            image_size,
        };
        ops.push(Op::put(&manifest_key, encode(&stored)));
        let replicating =
            put.origin == Origin::Push && self.replication_ops(scope, repo, put.digest, &mut compares, &mut ops)?;
        if !self.store.txn(Txn::new().when(compares).and_then(ops)).await?.succeeded {
            return Ok(None);
        }
        if replicating {
            self.replication_wake.notify_one();
        }
        Ok(Some(Pushed { digest: put.digest.clone(), subject: stored.subject, new: existing.is_none() }))
    }

    /// Checks the blobs a manifest names are the repository's, at the sizes it says, and
    /// touches their links (so a garbage collection that saw them unused leaves them alone).
    fn touch_blobs(
        &self,
        scope: &Scope,
        repo: &str,
        parsed: &manifest::Parsed,
        compares: &mut Vec<Compare>,
        ops: &mut Vec<Op>,
    ) -> Result<()> {
        for blob in parsed.blobs.iter().filter(|b| !b.foreign) {
            let key = scope.keys().link(repo, &blob.digest.to_string());
            let kv = self.store.get(&key)?.ok_or_else(|| RegistryError::ManifestBlobUnknown(blob.digest.clone()))?;
            let link: LinkRecord = decode(&kv)?;
            if link.size != blob.size {
                return Err(RegistryError::ManifestInvalid(format!(
                    "blob {} is {} bytes, the manifest says {}",
                    blob.digest, link.size, blob.size
                )));
            }
            compares.push(Compare::unchanged(&key, kv.mod_revision));
            ops.push(Op::put(&key, encode(&LinkRecord { size: link.size, touched: scope.timestamp() })));
        }
        Ok(())
    }

    /// The image size of a manifest: its layers, or the largest of an index's children. A
    /// pushed index needs its children in the repository; an imported or replicated one may
    /// list children that arrive later (when they are pulled).
    fn children_size(
        &self,
        scope: &Scope,
        repo: &str,
        put: &ManifestPut<'_>,
        compares: &mut Vec<Compare>,
    ) -> Result<u64> {
        let mut size = put.parsed.layers_size;
        for child in &put.parsed.children {
            let key = scope.keys().manifest(repo, &child.digest.to_string());
            let Some(kv) = self.store.get(&key)? else {
                if put.origin == Origin::Push {
                    return Err(RegistryError::ManifestBlobUnknown(child.digest.clone()));
                }
                continue;
            };
            let child_record: ManifestRecord = decode(&kv)?;
            size = size.max(child_record.image_size);
            compares.push(Compare::unchanged(&key, kv.mod_revision));
        }
        Ok(size)
    }

    /// The digest a reference names in `repo`.
    pub fn resolve(&self, scope: &Scope, repo: &str, reference: &Reference) -> Result<Digest> {
        match reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(tag) => {
                let kv = self
                    .store
                    .get(&scope.keys().tag(repo, tag))?
                    .ok_or_else(|| RegistryError::ManifestUnknown(format!("tag {tag} is unknown")))?;
                let t: TagRecord = decode(&kv)?;
                parse_digest(&t.digest)
            }
        }
    }

    pub(crate) fn manifest_kv(&self, scope: &Scope, repo: &str, digest: &Digest) -> Result<(KeyValue, ManifestRecord)> {
        let kv = self
            .store
            .get(&scope.keys().manifest(repo, &digest.to_string()))?
            .ok_or_else(|| RegistryError::ManifestUnknown(format!("manifest {digest} is unknown")))?;
        let record = decode(&kv)?;
        Ok((kv, record))
    }

    /// A manifest for a pull (`record_pull`: a GET, which ECR counts as a pull; not a HEAD).
    pub async fn get_manifest(
        &self,
        scope: &Scope,
        repo: &str,
        reference: &str,
        record_pull: bool,
    ) -> Result<ManifestRecord> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:BatchGetImage")?;
        let digest = self.resolve(scope, repo, &Reference::parse(reference)?)?;
        let (kv, mut manifest) = self.manifest_kv(scope, repo, &digest)?;
        let now = scope.timestamp();
        if record_pull && manifest.last_pull.is_none_or(|t| now - t >= PULL_TIME_RESOLUTION) {
            manifest.last_pull = Some(now);
            let txn = Txn::new()
                .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
                .and_then(vec![Op::put(&kv.key, encode(&manifest))]);
            self.store.txn(txn).await?;
        }
        Ok(manifest)
    }

    /// Deletes a manifest and every tag pointing at it.
    pub async fn delete_manifest(&self, scope: &Scope, repo: &str, digest: &Digest) -> Result<Image> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:BatchDeleteImage")?;
        let keys = scope.keys();
        for _ in 0..MAX_ATTEMPTS {
            let (kv, manifest) = self.manifest_kv(scope, repo, digest)?;
            let revision = self.store.revision()?;
            let mut tags = Vec::new();
            let mut ops = vec![Op::delete(&kv.key)];
            for (tag, t) in self.tag_records(scope, repo)? {
                if t.digest == manifest.digest {
                    ops.push(Op::delete(&keys.tag(repo, &tag)));
                    tags.push(tag);
                }
            }
            let txn = Txn::new()
                .when(vec![
                    Compare::unchanged(&kv.key, kv.mod_revision),
                    Compare::prefix_unchanged_since(&keys.tags(repo), revision),
                ])
                .and_then(ops);
            if self.store.txn(txn).await?.succeeded {
                return Ok(Image { record: manifest, tags });
            }
        }
        Err(RegistryError::Contention(repo.to_string()))
    }

    /// Removes a tag (the manifest stays).
    pub async fn delete_tag(&self, scope: &Scope, repo: &str, tag: &str) -> Result<Digest> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:BatchDeleteImage")?;
        let key = scope.keys().tag(repo, tag);
        let kv =
            self.store.get(&key)?.ok_or_else(|| RegistryError::ManifestUnknown(format!("tag {tag} is unknown")))?;
        let t: TagRecord = decode(&kv)?;
        let txn = Txn::new().when(vec![Compare::unchanged(&key, kv.mod_revision)]).and_then(vec![Op::delete(&key)]);
        if !self.store.txn(txn).await?.succeeded {
            return Err(RegistryError::Contention(repo.to_string()));
        }
        parse_digest(&t.digest)
    }

    fn tag_records(&self, scope: &Scope, repo: &str) -> Result<Vec<(String, TagRecord)>> {
        let prefix = scope.keys().tags(repo);
        self.store.list(&prefix)?.iter().map(|kv| Ok((kv.key[prefix.len()..].to_string(), decode(kv)?))).collect()
    }

    /// A repository's tags in lexical order.
    pub fn list_tags(&self, scope: &Scope, repo: &str) -> Result<Vec<String>> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:ListImages")?;
        Ok(self.tag_records(scope, repo)?.into_iter().map(|(t, _)| t).collect())
    }

    /// Every image of a repository with its tags, in digest order.
    pub fn images(&self, scope: &Scope, repo: &str) -> Result<Vec<Image>> {
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tag, t) in self.tag_records(scope, repo)? {
            tags.entry(t.digest).or_default().push(tag);
        }
        let mut images = Vec::new();
        for kv in self.store.list(&scope.keys().manifests(repo))? {
            let record: ManifestRecord = decode(&kv)?;
            let tags = tags.remove(&record.digest).unwrap_or_default();
            images.push(Image { record, tags });
        }
        Ok(images)
    }

    /// Descriptors of the manifests whose `subject` is `digest`, optionally only those of one
    /// artifact type.
    pub fn referrers(
        &self,
        scope: &Scope,
        repo: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Value>> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:BatchGetImage")?;
        let subject = digest.to_string();
        let mut out = Vec::new();
        for kv in self.store.list(&scope.keys().manifests(repo))? {
            let m: ManifestRecord = decode(&kv)?;
            if m.subject.as_deref() != Some(subject.as_str()) {
                continue;
            }
            if artifact_type.is_some_and(|t| m.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            let mut d = json!({"mediaType": m.media_type, "digest": m.digest, "size": m.manifest.len()});
            if let Some(t) = &m.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = &m.annotations {
                d["annotations"] = a.clone();
            }
            out.push(d);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::digest::Algorithm;
    use crate::manifest::OCI_MANIFEST;
    use crate::repositories::NewRepository;
    use crate::testing;

    async fn push_blob(r: &Registry, s: &Scope, repo: &str, data: &'static [u8]) -> Digest {
        let id = r.start_upload(s, repo).await.unwrap();
        let d = Digest::of(Algorithm::Sha256, data);
        let body: crate::blobs::ByteStream =
            Box::pin(futures::stream::once(async move { Ok(Bytes::from_static(data)) }));
        r.complete_upload(s, repo, &id, &d.to_string(), Some(body)).await.unwrap();
        d
    }

    fn image(config: &Digest, layer: &Digest, subject: Option<&Digest>) -> Vec<u8> {
        let mut m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}]});
        if let Some(s) = subject {
            m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
            m["artifactType"] = json!("application/x-sbom");
        }
        serde_json::to_vec(&m).unwrap()
    }

    #[tokio::test]
    async fn push_pull_tag_immutability_and_referrers() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        let mut repo = NewRepository::named("web");
        repo.image_tag_mutability = "IMMUTABLE".into();
        r.create_repository(&s, repo).await.unwrap();
        let config = push_blob(r, &s, "web", b"{}").await;
        let layer = push_blob(r, &s, "web", b"layer").await;
        let missing = Digest::of(Algorithm::Sha256, b"nope");
        let e = r.put_manifest(&s, "web", "1", OCI_MANIFEST, &image(&config, &missing, None)).await.unwrap_err();
        assert!(matches!(e, RegistryError::ManifestBlobUnknown(d) if d == missing));
        let m = image(&config, &layer, None);
        let pushed = r.put_manifest(&s, "web", "1", OCI_MANIFEST, &m).await.unwrap();
        assert_eq!(pushed.digest, Digest::of(Algorithm::Sha256, &m));
        r.put_manifest(&s, "web", "1", OCI_MANIFEST, &m).await.unwrap();
        let layer2 = push_blob(r, &s, "web", b"LAYER").await;
        let other = image(&config, &layer2, None);
        let e = r.put_manifest(&s, "web", "1", OCI_MANIFEST, &other).await.unwrap_err();
        assert!(matches!(e, RegistryError::TagImmutable { .. }), "{e}");
        let got = r.get_manifest(&s, "web", "1", true).await.unwrap();
        assert_eq!(got.manifest.as_bytes(), m.as_slice());
        assert!(got.last_pull.is_some());
        let e = r.put_manifest(&s, "web", &missing.to_string(), OCI_MANIFEST, &m).await.unwrap_err();
        assert!(matches!(e, RegistryError::DigestInvalid(_)));

        let sbom = image(&config, &layer, Some(&pushed.digest));
        let sbom_digest = Digest::of(Algorithm::Sha256, &sbom);
        r.put_manifest(&s, "web", &sbom_digest.to_string(), OCI_MANIFEST, &sbom).await.unwrap();
        let refs = r.referrers(&s, "web", &pushed.digest, None).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0]["artifactType"], "application/x-sbom");
        assert!(r.referrers(&s, "web", &pushed.digest, Some("application/other")).unwrap().is_empty());

        let images = r.images(&s, "web").unwrap();
        assert_eq!(images.len(), 2);
        let deleted = r.delete_manifest(&s, "web", &pushed.digest).await.unwrap();
        assert_eq!(deleted.tags, ["1"]);
        assert!(r.list_tags(&s, "web").unwrap().is_empty());
        assert!(matches!(r.get_manifest(&s, "web", "1", false).await, Err(RegistryError::ManifestUnknown(_))));
    }
}
