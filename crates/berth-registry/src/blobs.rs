//! Blob storage behind a trait, so an object-store backend can sit beside the filesystem one.
//!
//! The filesystem backend keeps committed blobs content-addressed under
//! `blobs/<algorithm>/<first two hex>/<hex>` and uploads in progress under `uploads/<id>`.
//! An upload is written to its own file, hashed as it streams, fsynced and only then renamed
//! into place, so a crash never leaves a partial blob visible and a blob is never held whole
//! in memory.

use std::future::Future;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::digest::{Algorithm, Digest, Hasher};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// How many chunks may wait between the network and the writer thread.
const PIPELINE_DEPTH: usize = 8;
/// Read size when serving a blob or re-hashing an upload.
const READ_BUFFER: usize = 1 << 20;
/// Writeback of an upload is started every this many bytes, so the fsync at commit is short.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// What an append left behind: the upload's size and the hash of all of it, when known.
#[derive(Debug)]
pub struct Appended {
    pub size: u64,
    pub hasher: Option<Hasher>,
}

pub trait BlobStore: Send + Sync + 'static {
    /// The size of a committed blob, or `None` if it is not stored.
    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<Option<u64>>>;
    /// `len` bytes of a committed blob from offset `start`.
    fn read<'a>(&'a self, digest: &'a Digest, start: u64, len: u64) -> BoxFuture<'a, io::Result<ByteStream>>;
    /// Removes a committed blob; false if it was not there.
    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<bool>>;
    /// Every committed blob with the time it was written.
    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Digest, SystemTime)>>>;
    /// Starts an empty upload.
    fn create_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Bytes received so far by an upload, or `None` if there is no such upload.
    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>>;
    /// Appends a stream to an upload, feeding `hasher` (the hash of the upload so far) on the
    /// way. On an error, what was received before it stays appended.
    fn append<'a>(
        &'a self,
        id: &'a str,
        data: ByteStream,
        hasher: Option<Hasher>,
    ) -> BoxFuture<'a, io::Result<Appended>>;
    /// Reads an upload back to hash it (after a restart lost the running hash).
    fn hash_upload<'a>(&'a self, id: &'a str, algorithm: Algorithm) -> BoxFuture<'a, io::Result<Digest>>;
    /// Makes an upload durable and visible as the blob `digest`; returns its size. The caller
    /// has verified the digest.
    fn commit<'a>(&'a self, id: &'a str, digest: &'a Digest) -> BoxFuture<'a, io::Result<u64>>;
    fn remove_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Every upload with the time it last received data.
    fn list_uploads(&self) -> BoxFuture<'_, io::Result<Vec<(String, SystemTime)>>>;
}

/// Blobs as files under one directory.
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        Ok(FsBlobStore { root: root.to_path_buf() })
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().name()).join(&d.hex()[..2]).join(d.hex())
    }

    fn upload_path(&self, id: &str) -> io::Result<PathBuf> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad upload id"));
        }
        Ok(self.root.join("uploads").join(id))
    }
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Asks the kernel to start writing back a file range now (no wait), so dirty pages do not
/// pile up until the final fsync.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the lifetime of `file`; the call only schedules I/O.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl BlobStore for FsBlobStore {
    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<Option<u64>>> {
        let path = self.blob_path(digest);
        Box::pin(async move { Ok(not_found_is_none(tokio::fs::metadata(path).await)?.map(|m| m.len())) })
    }

    fn read<'a>(&'a self, digest: &'a Digest, start: u64, len: u64) -> BoxFuture<'a, io::Result<ByteStream>> {
        let path = self.blob_path(digest);
        Box::pin(async move {
            let mut file = tokio::fs::File::open(path).await?;
            if start > 0 {
                file.seek(io::SeekFrom::Start(start)).await?;
            }
            let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_BUFFER);
            Ok(Box::pin(stream) as ByteStream)
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, io::Result<bool>> {
        let path = self.blob_path(digest);
        Box::pin(async move { Ok(not_found_is_none(tokio::fs::remove_file(path).await)?.is_some()) })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Digest, SystemTime)>>> {
        let root = self.root.join("blobs");
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            for alg in [Algorithm::Sha256, Algorithm::Sha512] {
                let Some(prefixes) = not_found_is_none(std::fs::read_dir(root.join(alg.name())))? else {
                    continue;
                };
                for prefix in prefixes {
                    for entry in std::fs::read_dir(prefix?.path())? {
                        let entry = entry?;
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if let Ok(d) = format!("{}:{name}", alg.name()).parse::<Digest>() {
                            out.push((d, entry.metadata()?.modified()?));
                        }
                    }
                }
            }
            Ok(out)
        }))
    }

    fn create_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let path = self.upload_path(id)?;
            tokio::fs::OpenOptions::new().write(true).create_new(true).open(path).await?;
            Ok(())
        })
    }

    fn upload_size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            let path = self.upload_path(id)?;
            Ok(not_found_is_none(tokio::fs::metadata(path).await)?.map(|m| m.len()))
        })
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        mut data: ByteStream,
        hasher: Option<Hasher>,
    ) -> BoxFuture<'a, io::Result<Appended>> {
        Box::pin(async move {
            let path = self.upload_path(id)?;
            let file = std::fs::OpenOptions::new().append(true).open(&path)?;
            // The network side receives; a blocking thread hashes and writes, so the two overlap.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(PIPELINE_DEPTH);
            let writer = tokio::task::spawn_blocking(move || -> io::Result<Appended> {
                let mut file = file;
                let mut hasher = hasher;
                let mut size = file.metadata()?.len();
                let mut flushed = size;
                while let Some(chunk) = rx.blocking_recv() {
                    if let Some(h) = hasher.as_mut() {
                        h.update(&chunk);
                    }
                    file.write_all(&chunk)?;
                    size += chunk.len() as u64;
                    if size - flushed >= WRITEBACK_EVERY {
                        start_writeback(&file, flushed, size - flushed);
                        flushed = size;
                    }
                }
                Ok(Appended { size, hasher })
            });
            let mut failure = None;
            while let Some(item) = data.next().await {
                match item {
                    Ok(chunk) => {
                        if tx.send(chunk).await.is_err() {
                            break; // the writer failed; its error is reported below
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            drop(tx);
            let appended = writer.await.map_err(io::Error::other)??;
            match failure {
                Some(e) => Err(e),
                None => Ok(appended),
            }
        })
    }

    fn hash_upload<'a>(&'a self, id: &'a str, algorithm: Algorithm) -> BoxFuture<'a, io::Result<Digest>> {
        Box::pin(async move {
            let path = self.upload_path(id)?;
            blocking(move || {
                let mut file = std::fs::File::open(path)?;
                let mut hasher = Hasher::new(algorithm);
                let mut buf = vec![0u8; READ_BUFFER];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        return Ok(hasher.finish());
                    }
                    hasher.update(&buf[..n]);
                }
            })
            .await
        })
    }

    fn commit<'a>(&'a self, id: &'a str, digest: &'a Digest) -> BoxFuture<'a, io::Result<u64>> {
        Box::pin(async move {
            let from = self.upload_path(id)?;
            let to = self.blob_path(digest);
            blocking(move || {
                let file = std::fs::File::open(&from)?;
                file.sync_all()?;
                let size = file.metadata()?.len();
                let dir = to.parent().expect("blob paths have a parent");
                std::fs::create_dir_all(dir)?;
                // Same content under the same name: renaming over an existing blob is harmless.
                std::fs::rename(&from, &to)?;
                sync_dir(dir)?;
                Ok(size)
            })
            .await
        })
    }

    fn remove_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let path = self.upload_path(id)?;
            not_found_is_none(tokio::fs::remove_file(path).await)?;
            Ok(())
        })
    }

    fn list_uploads(&self) -> BoxFuture<'_, io::Result<Vec<(String, SystemTime)>>> {
        let dir = self.root.join("uploads");
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                out.push((entry.file_name().to_string_lossy().into_owned(), entry.metadata()?.modified()?));
            }
            Ok(out)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))))
    }

    #[tokio::test]
    async fn an_upload_becomes_a_blob_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        store.create_upload("u1").await.unwrap();
        let a =
            store.append("u1", stream(vec![b"hello ", b"wor"]), Some(Hasher::new(Algorithm::Sha256))).await.unwrap();
        assert_eq!(a.size, 9);
        let a = store.append("u1", stream(vec![b"ld"]), a.hasher).await.unwrap();
        let digest = a.hasher.unwrap().finish();
        assert_eq!(digest, Digest::of(Algorithm::Sha256, b"hello world"));
        assert_eq!(store.hash_upload("u1", Algorithm::Sha256).await.unwrap(), digest);
        assert_eq!(store.size(&digest).await.unwrap(), None, "not visible before commit");
        assert_eq!(store.commit("u1", &digest).await.unwrap(), 11);
        assert_eq!(store.size(&digest).await.unwrap(), Some(11));
        assert_eq!(store.upload_size("u1").await.unwrap(), None);
        let mut body = Vec::new();
        let mut s = store.read(&digest, 6, 3).await.unwrap();
        while let Some(c) = s.next().await {
            body.extend_from_slice(&c.unwrap());
        }
        assert_eq!(body, b"wor");
        assert_eq!(store.list().await.unwrap().len(), 1);
        assert!(store.delete(&digest).await.unwrap());
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failing_stream_keeps_what_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        store.create_upload("u2").await.unwrap();
        let items: Vec<io::Result<Bytes>> = vec![Ok(Bytes::from_static(b"abc")), Err(io::Error::other("cut"))];
        assert!(store.append("u2", Box::pin(futures::stream::iter(items)), None).await.is_err());
        assert_eq!(store.upload_size("u2").await.unwrap(), Some(3));
        assert!(store.upload_size("../etc").await.is_err(), "ids cannot name paths");
    }
}
