//! The blob store checks, run against the filesystem backend and against the object-storage
//! backend on a real S3-compatible server: moto's, started once for this test binary on a
//! loopback port (from the project's `.venv`, which `scripts/test` installs; or the
//! `moto_server` named by `BERTH_MOTO_SERVER`).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use berth_registry::blobs::ByteStream;
use berth_registry::digest::{Algorithm, Digest, Hasher};
use berth_registry::{BlobStore, FsBlobStore, ObjectBlobStore};
use bytes::Bytes;
use futures::StreamExt;

type Blobs = Arc<dyn BlobStore>;

fn stream(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)))
}

fn digest_of(data: &[u8]) -> Digest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(data);
    h.finish()
}

async fn read_all(blobs: &dyn BlobStore, d: &Digest, start: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = blobs.read(d, start, len).await.unwrap();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

// ---- backends ----------------------------------------------------------------------------

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    assert!(
        venv.exists(),
        "moto_server not found at {}: run scripts/test (it installs tests/requirements.txt into .venv) or set BERTH_MOTO_SERVER",
        venv.display()
    );
    venv
}

/// The endpoint of the moto server this test binary started.
fn moto() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let binary = moto_binary();
        // Tied to a thread that lives as long as moto: moto gets SIGKILL when the process ends.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = std::process::Command::new(binary);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            // The thread waits for moto for as long as the test binary runs.
            let _ = command.spawn().expect("starting moto_server").wait();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("http://127.0.0.1:{port}")
    })
}

async fn bucket(name: &str) -> Arc<dyn object_store::ObjectStore> {
    let endpoint = moto();
    let created = reqwest::Client::new().put(format!("{endpoint}/{name}")).send().await.unwrap();
    assert!(created.status().is_success(), "creating bucket {name}: {}", created.status());
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(name)
        .with_region("us-east-1")
        .with_endpoint(endpoint)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    Arc::new(s3)
}

fn fresh_bucket_name() -> String {
    format!("blobs-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Two handles onto one blob storage, as two servers would hold them.
struct Pair {
    a: Blobs,
    b: Blobs,
    _dir: Option<tempfile::TempDir>,
}

fn on_fs() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Blobs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    Pair { a: blobs.clone(), b: blobs, _dir: Some(dir) }
}

async fn on_s3() -> Pair {
    let store = bucket(&fresh_bucket_name()).await;
    let a: Blobs = Arc::new(ObjectBlobStore::new(store.clone(), "registry"));
    let b: Blobs = Arc::new(ObjectBlobStore::new(store, "/registry/"));
    Pair { a, b, _dir: None }
}

macro_rules! both {
    ($($check:ident),* $(,)?) => {
        mod on_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::on_fs()).await
                }
            )*
        }
        mod on_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::on_s3().await).await
                }
            )*
        }
    };
}

both!(
    an_upload_becomes_a_blob_only_when_committed,
    a_cut_stream_keeps_what_arrived_and_the_upload_goes_on,
    big_blobs_stream_through_and_read_by_range,
    deleting_and_listing,
);

// ---- checks ------------------------------------------------------------------------------

async fn an_upload_becomes_a_blob_only_when_committed(p: Pair) {
    let data = b"hello, blobs".to_vec();
    let d = digest_of(&data);
    p.a.create_upload("u1").await.unwrap();
    assert_eq!(p.a.upload_size("u1").await.unwrap(), Some(0));
    let appended =
        p.a.append(
            "u1",
            stream(vec![Bytes::from_static(b"hello, "), Bytes::from_static(b"blobs")]),
            Some(Hasher::new(Algorithm::Sha256)),
        )
        .await
        .unwrap();
    assert_eq!(appended.size, data.len() as u64);
    assert_eq!(appended.hasher.unwrap().finish(), d, "the running hash covers every byte");
    assert_eq!(p.b.size(&d).await.unwrap(), None, "not visible before the commit");
    assert!(p.b.list().await.unwrap().is_empty());
    assert_eq!(p.b.hash_upload("u1", Algorithm::Sha256).await.unwrap(), d, "another server can hash it");
    assert_eq!(p.b.commit("u1", &d).await.unwrap(), data.len() as u64);
    assert_eq!(p.a.size(&d).await.unwrap(), Some(data.len() as u64));
    assert_eq!(read_all(p.a.as_ref(), &d, 0, data.len() as u64).await, data);
    assert_eq!(read_all(p.a.as_ref(), &d, 7, 5).await, b"blobs");
    assert_eq!(p.a.list().await.unwrap().into_iter().map(|(d, _)| d).collect::<Vec<_>>(), vec![d]);
    assert_eq!(p.a.upload_size("nope").await.unwrap(), None);
    assert!(p.a.upload_size("../etc").await.is_err(), "ids cannot name paths");
    assert!(p.a.append("nope", stream(vec![]), None).await.is_err());
}

async fn a_cut_stream_keeps_what_arrived_and_the_upload_goes_on(p: Pair) {
    p.a.create_upload("u2").await.unwrap();
    let items: Vec<io::Result<Bytes>> = vec![Ok(Bytes::from_static(b"abc")), Err(io::Error::other("cut"))];
    assert!(p.a.append("u2", Box::pin(futures::stream::iter(items)), None).await.is_err());
    assert_eq!(p.a.upload_size("u2").await.unwrap(), Some(3));
    // The client resumes from byte 3, on the other server.
    let more = p.b.append("u2", stream(vec![Bytes::from_static(b"def")]), None).await.unwrap();
    assert_eq!(more.size, 6);
    let d = digest_of(b"abcdef");
    assert_eq!(p.b.hash_upload("u2", Algorithm::Sha256).await.unwrap(), d);
    assert_eq!(p.a.commit("u2", &d).await.unwrap(), 6);
    assert_eq!(read_all(p.b.as_ref(), &d, 0, 6).await, b"abcdef");
}

async fn big_blobs_stream_through_and_read_by_range(p: Pair) {
    // 20 MiB in 1 MiB chunks: several multipart parts on object storage.
    let data: Vec<u8> = (0..20u32 << 20).map(|i| (i % 253) as u8).collect();
    let d = digest_of(&data);
    p.a.create_upload("big").await.unwrap();
    let chunks: Vec<Bytes> = data.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
    let appended = p.a.append("big", stream(chunks), Some(Hasher::new(Algorithm::Sha256))).await.unwrap();
    assert_eq!(appended.hasher.unwrap().finish(), d);
    assert_eq!(p.a.commit("big", &d).await.unwrap(), data.len() as u64);
    let middle = read_all(p.b.as_ref(), &d, 9_000_000, 3_000_000).await;
    assert_eq!(middle, data[9_000_000..12_000_000]);
    assert_eq!(digest_of(&read_all(p.b.as_ref(), &d, 0, data.len() as u64).await), d);
}

async fn deleting_and_listing(p: Pair) {
    let d = digest_of(b"x");
    p.a.create_upload("u3").await.unwrap();
    p.a.append("u3", stream(vec![Bytes::from_static(b"x")]), None).await.unwrap();
    p.a.create_upload("u4").await.unwrap();
    let mut ids: Vec<String> = p.b.list_uploads().await.unwrap().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["u3", "u4"]);
    p.a.commit("u3", &d).await.unwrap();
    p.a.remove_upload("u3").await.unwrap();
    p.a.remove_upload("u4").await.unwrap();
    p.a.remove_upload("never").await.unwrap();
    assert!(p.b.list_uploads().await.unwrap().is_empty());
    assert_eq!(p.b.size(&d).await.unwrap(), Some(1), "removing the upload keeps the committed blob");
    assert!(p.b.delete(&d).await.unwrap());
    assert!(!p.a.delete(&d).await.unwrap(), "a second delete finds nothing");
    assert_eq!(p.a.size(&d).await.unwrap(), None);
}
