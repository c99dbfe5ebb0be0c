//! Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph RGW), through `object_store`,
//! with the filesystem backend's guarantees: a blob is visible only once complete (the caller
//! has verified its digest), and an upload cut short leaves nothing served.
//!
//! Layout under the configured prefix:
//! - `blobs/<algorithm>/<hex>`: committed blobs, content-addressed;
//! - `uploads/<id>/<offset>`: an upload in progress as one object per append, named by the
//!   offset (20 digits) it starts at, so that any server sharing the bucket can go on with an
//!   upload another one started. `create_upload` writes the empty object at offset 0.
//!
//! Object storage has no append and no rename. An append streams into a multipart upload of
//! its own object; a commit copies the upload's only object to the blob's name (a server-side
//! copy, atomic for readers) or, for an upload of several appends, streams them in order into
//! a multipart upload of the blob; either way the blob's name appears only when it is whole.
//! S3 makes a completed upload durable before answering.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::blobs::{Appended, BlobStore, BoxFuture, ByteStream};
use crate::digest::{Algorithm, Digest, Hasher};

/// Parts uploaded at once while streaming into a multipart upload.
const CONCURRENT_PARTS: usize = 4;
/// The size of each part of a multipart upload (S3's smallest but for the last); smaller
/// objects take one plain put.
const PART_SIZE: u64 = 8 << 20;

/// Blobs in one bucket, under an optional key prefix.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn io_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        other => io::Error::other(other.to_string()),
    }
}

fn not_found_is_none<T>(r: object_store::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

fn check_upload_id(id: &str) -> io::Result<()> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad upload id"));
    }
    Ok(())
}

impl ObjectBlobStore {
    /// Blobs in `store` under `prefix` (`""` for the bucket's root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        ObjectBlobStore { store, prefix }
    }

    fn path(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn blob_path(&self, d: &Digest) -> Path {
        self.path(&format!("blobs/{}/{}", d.algorithm().name(), d.hex()))
    }

    fn upload_dir(&self, id: &str) -> io::Result<Path> {
        check_upload_id(id)?;
        Ok(self.path(&format!("uploads/{id}")))
    }

    fn part_path(&self, id: &str, offset: u64) -> io::Result<Path> {
        check_upload_id(id)?;
        Ok(self.path(&format!("uploads/{id}/{offset:020}")))
    }

    /// The objects of an upload in offset order, with their offsets; `None` if there is no
    /// such upload.
    async fn parts(&self, id: &str) -> io::Result<Option<Vec<(u64, ObjectMeta)>>> {
        let dir = self.upload_dir(id)?;
        let listed: Vec<ObjectMeta> = self.store.list(Some(&dir)).try_collect().await.map_err(io_error)?;
        if listed.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(listed.len());
        for meta in listed {
            let offset = meta.location.filename().and_then(|f| f.parse::<u64>().ok());
            let offset =
                offset.ok_or_else(|| io::Error::other(format!("stray object {} in an upload", meta.location)))?;
            parts.push((offset, meta));
        }
        parts.sort_by_key(|(offset, _)| *offset);
        Ok(Some(parts))
    }

    /// The bytes of an upload: its objects end to end.
    async fn upload_stream(&self, parts: &[(u64, ObjectMeta)]) -> io::Result<ByteStream> {
        let store = self.store.clone();
        let paths: Vec<Path> = parts.iter().filter(|(_, m)| m.size > 0).map(|(_, m)| m.location.clone()).collect();
        let stream = futures::stream::iter(paths)
            .then(move |path| {
                let store = store.clone();
                async move { store.get(&path).await.map(|r| r.into_stream()) }
            })
            .try_flatten()
            .map_err(io_error);
        Ok(Box::pin(stream))
    }
}

/// Streams `data` into a new object at `path`, feeding `hasher`; on an error of `data`, what
/// arrived before it is kept as the object (as the filesystem keeps what reached the file).
/// An object smaller than one part is written with one plain put.
async fn write_object(
    store: &dyn ObjectStore,
    path: &Path,
    mut data: ByteStream,
    mut hasher: Option<Hasher>,
) -> io::Result<(u64, Option<Hasher>, Option<io::Error>)> {
    let mut size = 0u64;
    let mut small: Vec<Bytes> = Vec::new();
    let mut writer: Option<WriteMultipart> = None;
    let mut failure = None;
    while let Some(item) = data.next().await {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        size += chunk.len() as u64;
        match writer.as_mut() {
            None => {
                small.push(chunk);
                if size >= PART_SIZE {
                    let mut w = WriteMultipart::new_with_chunk_size(
                        store.put_multipart(path).await.map_err(io_error)?,
                        PART_SIZE as usize,
                    );
                    small.drain(..).for_each(|b| w.put(b));
                    writer = Some(w);
                }
            }
            Some(w) => {
                if let Err(e) = w.wait_for_capacity(CONCURRENT_PARTS).await {
                    let _ = writer.take().expect("a writer").abort().await;
                    return Err(io_error(e));
                }
                w.put(chunk);
            }
        }
    }
    match writer {
        Some(w) => w.finish().await.map_err(io_error)?,
        None => store.put(path, small.into_iter().collect::<PutPayload>()).await.map_err(io_error)?,
    };
    Ok((size, hasher, failure))
}

impl BlobStore for ObjectBlobStore {
    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move { Ok(not_found_is_none(self.store.head(&self.blob_path(digest)).await)?.map(|m| m.size)) })
    }

    fn read<'a>(&'a self, digest: &'a Digest, start: u64, len: u64) -> BoxFuture<'a, io::Result<ByteStream>> {
        Box::pin(async move {
            if len == 0 {
                return Ok(Box::pin(futures::stream::empty()) as ByteStream);
            }
            let options = GetOptions { range: Some(GetRange::Bounded(start..start + len)), ..GetOptions::default() };
            let got = self.store.get_opts(&self.blob_path(digest), options).await.map_err(io_error)?;
            Ok(Box::pin(got.into_stream().map_err(io_error)) as ByteStream)
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            let path = self.blob_path(digest);
            if not_found_is_none(self.store.head(&path).await)?.is_none() {
                return Ok(false);
            }
            not_found_is_none(self.store.delete(&path).await)?;
            Ok(true)
        })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Digest, SystemTime)>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for alg in [Algorithm::Sha256, Algorithm::Sha512] {
                let dir = self.path(&format!("blobs/{}", alg.name()));
                let mut listed = self.store.list(Some(&dir));
                while let Some(meta) = listed.next().await {
                    let meta = meta.map_err(io_error)?;
                    let name = meta.location.filename().unwrap_or_default();
                    if let Ok(d) = format!("{}:{name}", alg.name()).parse::<Digest>() {
                        out.push((d, SystemTime::from(meta.last_modified)));
                    }
                }
            }
            Ok(out)
        })
    }

    fn create_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.store.put(&self.part_path(id, 0)?, Bytes::new().into()).await.map_err(io_error)?;
            Ok(())
        })
    }

    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            let parts = self.parts(id).await?;
            Ok(parts.map(|parts| parts.iter().map(|(offset, m)| offset + m.size).max().unwrap_or(0)))
        })
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        data: ByteStream,
        hasher: Option<Hasher>,
    ) -> BoxFuture<'a, io::Result<Appended>> {
        Box::pin(async move {
            let Some(parts) = self.parts(id).await? else {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("no upload {id}")));
            };
            let offset = parts.iter().map(|(offset, m)| offset + m.size).max().unwrap_or(0);
            let (written, hasher, failure) =
                write_object(self.store.as_ref(), &self.part_path(id, offset)?, data, hasher).await?;
            match failure {
                Some(e) => Err(e),
                None => Ok(Appended { size: offset + written, hasher }),
            }
        })
    }

    fn hash_upload<'a>(&'a self, id: &'a str, algorithm: Algorithm) -> BoxFuture<'a, io::Result<Digest>> {
        Box::pin(async move {
            let parts =
                self.parts(id).await?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such upload"))?;
            let mut hasher = Hasher::new(algorithm);
            let mut bytes = self.upload_stream(&parts).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk?);
            }
            Ok(hasher.finish())
        })
    }

    fn commit<'a>(&'a self, id: &'a str, digest: &'a Digest) -> BoxFuture<'a, io::Result<u64>> {
        Box::pin(async move {
            let parts =
                self.parts(id).await?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such upload"))?;
            let size = parts.iter().map(|(offset, m)| offset + m.size).max().unwrap_or(0);
            let to = self.blob_path(digest);
            let filled: Vec<&(u64, ObjectMeta)> = parts.iter().filter(|(_, m)| m.size > 0).collect();
            match filled.as_slice() {
                // The whole upload is one object: copy it in one server-side step.
                [(_, only)] => self.store.copy(&only.location, &to).await.map_err(io_error)?,
                _ => {
                    let bytes = self.upload_stream(&parts).await?;
                    let (_, _, failure) = write_object(self.store.as_ref(), &to, bytes, None).await?;
                    if let Some(e) = failure {
                        // Never leave a partial blob under its digest's name.
                        let _ = self.store.delete(&to).await;
                        return Err(e);
                    }
                }
            }
            // The upload is the blob now (as a rename leaves no upload file behind); an object
            // left by a failure here is an abandoned upload, which garbage collection removes.
            for (_, meta) in &parts {
                let _ = self.store.delete(&meta.location).await;
            }
            Ok(size)
        })
    }

    fn remove_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            for (_, meta) in self.parts(id).await?.unwrap_or_default() {
                not_found_is_none(self.store.delete(&meta.location).await)?;
            }
            Ok(())
        })
    }

    fn list_uploads(&self) -> BoxFuture<'_, io::Result<Vec<(String, SystemTime)>>> {
        Box::pin(async move {
            let dir = self.path("uploads");
            let mut latest: std::collections::BTreeMap<String, SystemTime> = Default::default();
            let mut listed = self.store.list(Some(&dir));
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(io_error)?;
                let parts: Vec<_> = meta.location.parts().collect();
                let Some(id) = parts.len().checked_sub(2).map(|i| parts[i].as_ref().to_string()) else { continue };
                let at = SystemTime::from(meta.last_modified);
                let entry = latest.entry(id).or_insert(at);
                *entry = (*entry).max(at);
            }
            Ok(latest.into_iter().collect())
        })
    }
}
