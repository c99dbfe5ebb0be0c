//! Blob uploads and the blobs a repository holds: start, append (in order, or 416), status,
//! cancel, complete with digest verification, cross-repository mount, and blob deletion.
//!
//! An upload's bytes go to the blob store as they arrive, hashed on the way; its session is
//! a store record, so it survives a restart (the running hash does not: after a restart the
//! upload is re-read once at completion). A blob becomes visible to a repository only when
//! its digest checked out and its file is durable: then one transaction links it.

use std::sync::Arc;

use berth_store::{Compare, Op, Txn};

use crate::blobs::ByteStream;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{RegistryError, Result};
use crate::{LinkRecord, Registry, Scope, UploadRecord, UploadState, decode, encode, keys};

/// A blob's presence in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

pub fn parse_digest(raw: &str) -> Result<Digest> {
    raw.parse().map_err(|e: crate::digest::BadDigest| RegistryError::DigestInvalid(e.to_string()))
}

impl Registry {
    fn upload_state(&self, id: &str) -> Arc<tokio::sync::Mutex<UploadState>> {
        self.uploads.lock().expect("upload map").entry(id.to_string()).or_default().clone()
    }

    fn forget_upload(&self, id: &str) {
        self.uploads.lock().expect("upload map").remove(id);
    }

    /// Starts an upload into `repo`; returns its id.
    pub async fn start_upload(&self, scope: &Scope, repo: &str) -> Result<String> {
        let (_, record) = self.repository_for_push(scope, repo).await?;
        self.authorize(scope, &record, "ecr:InitiateLayerUpload")?;
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.create_upload(&id).await?;
        let session = UploadRecord { repository: repo.to_string(), started_at: scope.timestamp() };
        let key = scope.keys().upload(&id);
        self.store.txn(Txn::new().and_then(vec![Op::put(&key, encode(&session))])).await?;
        Ok(id)
    }

    /// The session of upload `id` into `repo`, and how many bytes it holds. The upload may
    /// have been started through another server.
    pub async fn upload_status(&self, scope: &Scope, repo: &str, id: &str) -> Result<(UploadRecord, u64)> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(RegistryError::UploadUnknown);
        }
        let key = scope.keys().upload(id);
        let kv = self.or_after_sync(|| async { self.store.get(&key)?.ok_or(RegistryError::UploadUnknown) }).await?;
        let session: UploadRecord = decode(&kv)?;
        if session.repository != repo {
            return Err(RegistryError::UploadUnknown);
        }
        let size = self.blobs.upload_size(id).await?.ok_or(RegistryError::UploadUnknown)?;
        Ok((session, size))
    }

    /// Appends to an upload under its lock. `start`, when given, must be where it ends.
    async fn append_locked(
        &self,
        state: &mut UploadState,
        id: &str,
        size: u64,
        start: Option<u64>,
        data: ByteStream,
    ) -> Result<u64> {
        if let Some(start) = start
            && start != size
        {
            return Err(RegistryError::RangeInvalid(size));
        }
        let hasher = match state.hasher.take() {
            Some(h) if state.hashed == size => Some(h),
            _ if size == 0 => Some(Hasher::new(Algorithm::Sha256)),
            _ => None,
        };
        match self.blobs.append(id, data, hasher).await {
            Ok(appended) => {
                state.hasher = appended.hasher;
                state.hashed = appended.size;
                Ok(appended.size)
            }
            Err(e) => Err(RegistryError::UploadInvalid(format!("upload interrupted: {e}"))),
        }
    }

    /// Appends a chunk (PATCH, UploadLayerPart); returns the upload's new size.
    pub async fn append_upload(
        &self,
        scope: &Scope,
        repo: &str,
        id: &str,
        start: Option<u64>,
        data: ByteStream,
    ) -> Result<u64> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:UploadLayerPart")?;
        let state = self.upload_state(id);
        let mut state = state.lock().await;
        let (_, size) = self.upload_status(scope, repo, id).await?;
        self.append_locked(&mut state, id, size, start, data).await
    }

    /// Finishes an upload as blob `digest` (after appending `data`, if any): verifies the
    /// digest, makes the blob durable and links it to the repository. A mismatch stores
    /// nothing and ends the upload.
    pub async fn complete_upload(
        &self,
        scope: &Scope,
        repo: &str,
        id: &str,
        digest: &str,
        data: Option<ByteStream>,
    ) -> Result<BlobInfo> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:CompleteLayerUpload")?;
        let state = self.upload_state(id);
        let mut state = state.lock().await;
        let (_, mut size) = self.upload_status(scope, repo, id).await?;
        let expected = match parse_digest(digest) {
            Ok(d) => d,
            Err(e) => {
                self.end_upload(scope, id).await?;
                return Err(e);
            }
        };
        if let Some(data) = data {
            size = self.append_locked(&mut state, id, size, None, data).await?;
        }
        let actual = match state.hasher.take() {
            Some(h) if state.hashed == size && h.algorithm() == expected.algorithm() => h.finish(),
            _ => self.blobs.hash_upload(id, expected.algorithm()).await?,
        };
        if actual != expected {
            self.end_upload(scope, id).await?;
            return Err(RegistryError::DigestInvalid(format!("expected {expected}, received {actual}")));
        }
        let _gc = self.gc_lock.read().await;
        let size = self.blobs.commit(id, &expected).await?;
        let now = scope.timestamp();
        let link = LinkRecord { size, touched: now };
        let txn = Txn::new().and_then(vec![
            Op::put(&scope.keys().link(repo, &expected.to_string()), encode(&link)),
            Op::put(&keys::blob(&expected.to_string()), encode(&link)),
            Op::delete(&scope.keys().upload(id)),
        ]);
        self.store.txn(txn).await?;
        self.forget_upload(id);
        Ok(BlobInfo { digest: expected, size })
    }

    async fn end_upload(&self, scope: &Scope, id: &str) -> Result<()> {
        self.blobs.remove_upload(id).await?;
        self.store.txn(Txn::new().and_then(vec![Op::delete(&scope.keys().upload(id))])).await?;
        self.forget_upload(id);
        Ok(())
    }

    /// Cancels an upload (DELETE on the session).
    pub async fn cancel_upload(&self, scope: &Scope, repo: &str, id: &str) -> Result<()> {
        let state = self.upload_state(id);
        let _state = state.lock().await;
        self.upload_status(scope, repo, id).await?;
        self.end_upload(scope, id).await
    }

    /// The blob `digest` if `repo` holds it (and it is still stored).
    pub async fn blob(&self, scope: &Scope, repo: &str, digest: &Digest) -> Result<Option<BlobInfo>> {
        let Some(kv) = self.store.get(&scope.keys().link(repo, &digest.to_string()))? else {
            return Ok(None);
        };
        let link: LinkRecord = decode(&kv)?;
        Ok(Some(BlobInfo { digest: digest.clone(), size: link.size }))
    }

    /// Makes a blob `from` holds (or, without `from`, any stored blob) part of `repo` without
    /// uploading it again. `None` when there is nothing to mount.
    pub async fn mount_blob(
        &self,
        scope: &Scope,
        repo: &str,
        digest: &Digest,
        from: Option<&str>,
    ) -> Result<Option<BlobInfo>> {
        let (_, target) = self.repository_for_push(scope, repo).await?;
        self.authorize(scope, &target, "ecr:CompleteLayerUpload")?;
        if scope.caller != crate::Caller::Registry && !self.blob_mounting(scope)? {
            return Ok(None);
        }
        let _gc = self.gc_lock.read().await;
        let source = match from {
            Some(from) => {
                let Ok((_, source)) = self.repository(scope, from) else {
                    return Ok(None);
                };
                if self.authorize(scope, &source, "ecr:GetDownloadUrlForLayer").is_err() {
                    return Ok(None);
                }
                scope.keys().link(from, &digest.to_string())
            }
            None => keys::blob(&digest.to_string()),
        };
        let Some(kv) = self.store.get(&source)? else {
            return Ok(None);
        };
        let existing: LinkRecord = decode(&kv)?;
        if self.blobs.size(digest).await?.is_none() {
            return Ok(None);
        }
        let link = LinkRecord { size: existing.size, touched: scope.timestamp() };
        let txn = Txn::new().when(vec![Compare::unchanged(&kv.key, kv.mod_revision)]).and_then(vec![
            Op::put(&scope.keys().link(repo, &digest.to_string()), encode(&link)),
            Op::put(&keys::blob(&digest.to_string()), encode(&link)),
        ]);
        if !self.store.txn(txn).await?.succeeded {
            return Ok(None);
        }
        Ok(Some(BlobInfo { digest: digest.clone(), size: link.size }))
    }

    /// Removes a blob from a repository (the bytes go when garbage collection finds them
    /// unreferenced). Manifests of the repository that use it keep it alive.
    pub async fn delete_blob(&self, scope: &Scope, repo: &str, digest: &Digest) -> Result<()> {
        let (_, record) = self.repository(scope, repo)?;
        self.authorize(scope, &record, "ecr:BatchDeleteImage")?;
        let key = scope.keys().link(repo, &digest.to_string());
        let deleted = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::Version(key.clone(), berth_store::CmpOp::Greater, 0)])
                    .and_then(vec![Op::delete(&key)]),
            )
            .await?;
        if !deleted.succeeded {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::repositories::NewRepository;
    use crate::testing;

    fn body(data: &'static [u8]) -> ByteStream {
        Box::pin(futures::stream::once(async move { Ok(Bytes::from_static(data)) }))
    }

    #[tokio::test]
    async fn chunked_upload_in_order_then_verified() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        r.create_repository(&s, NewRepository::named("web")).await.unwrap();
        let id = r.start_upload(&s, "web").await.unwrap();
        assert_eq!(r.append_upload(&s, "web", &id, Some(0), body(b"hello ")).await.unwrap(), 6);
        assert!(matches!(
            r.append_upload(&s, "web", &id, Some(3), body(b"x")).await,
            Err(RegistryError::RangeInvalid(6))
        ));
        assert_eq!(r.append_upload(&s, "web", &id, Some(6), body(b"world")).await.unwrap(), 11);
        assert!(matches!(r.upload_status(&s, "other", &id).await, Err(RegistryError::UploadUnknown)));
        let d = Digest::of(Algorithm::Sha256, b"hello world");
        let blob = r.complete_upload(&s, "web", &id, &d.to_string(), None).await.unwrap();
        assert_eq!(blob.size, 11);
        assert_eq!(r.blob(&s, "web", &d).await.unwrap(), Some(blob));
        assert!(matches!(r.upload_status(&s, "web", &id).await, Err(RegistryError::UploadUnknown)));
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing_and_sha512_works() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        r.create_repository(&s, NewRepository::named("web")).await.unwrap();
        let id = r.start_upload(&s, "web").await.unwrap();
        let wrong = Digest::of(Algorithm::Sha256, b"something else");
        let e = r.complete_upload(&s, "web", &id, &wrong.to_string(), Some(body(b"data"))).await.unwrap_err();
        assert!(matches!(e, RegistryError::DigestInvalid(_)));
        assert_eq!(r.blob(&s, "web", &wrong).await.unwrap(), None);
        assert_eq!(r.blob(&s, "web", &Digest::of(Algorithm::Sha256, b"data")).await.unwrap(), None);
        assert!(r.blobs.list().await.unwrap().is_empty());
        let id = r.start_upload(&s, "web").await.unwrap();
        let d512 = Digest::of(Algorithm::Sha512, b"data");
        r.complete_upload(&s, "web", &id, &d512.to_string(), Some(body(b"data"))).await.unwrap();
        assert!(r.blob(&s, "web", &d512).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn mounting_needs_the_blob_in_the_source() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        for name in ["aa", "bb", "cc"] {
            r.create_repository(&s, NewRepository::named(name)).await.unwrap();
        }
        let d = Digest::of(Algorithm::Sha256, b"layer");
        let id = r.start_upload(&s, "aa").await.unwrap();
        r.complete_upload(&s, "aa", &id, &d.to_string(), Some(body(b"layer"))).await.unwrap();
        assert_eq!(r.mount_blob(&s, "bb", &d, Some("cc")).await.unwrap(), None);
        assert_eq!(r.mount_blob(&s, "bb", &d, Some("aa")).await.unwrap().unwrap().size, 5);
        assert!(r.blob(&s, "bb", &d).await.unwrap().is_some());
        r.delete_blob(&s, "bb", &d).await.unwrap();
        assert!(r.blob(&s, "bb", &d).await.unwrap().is_none());
        assert!(r.blob(&s, "aa", &d).await.unwrap().is_some());
    }
}
