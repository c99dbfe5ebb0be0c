//! Pulls from a real registry: Debian's reference registry (CNCF distribution) on loopback,
//! holding the busybox test image built by tests/fixtures/make_image.py and pushed with
//! skopeo (scripts/test installs both).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::store::{ImageStore, PullError};

struct Registry {
    child: Child,
    data: PathBuf,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Registry {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = dir.join("registry");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            data.display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (Debian package docker-registry) must be installed: scripts/test installs it");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry { child, data, port }
}

fn push_test_image(dir: &Path, registry: &Registry, name: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make_image.py");
    let layout = dir.join(format!("{name}-layout"));
    let ok = Command::new("python3").arg(&fixtures).arg(&layout).stdout(Stdio::null()).status().unwrap();
    assert!(ok.success(), "building the test image");
    let reference = format!("127.0.0.1:{}/{name}:1", registry.port);
    let ok = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .status()
        .expect("skopeo must be installed: scripts/test installs it");
    assert!(ok.success(), "pushing the test image");
    reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_unpacks_and_then_serves_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_registry(dir.path());
    let reference = push_test_image(dir.path(), &registry, "busybox");
    let store = ImageStore::open(&dir.path().join("images")).unwrap();

    let image = store.pull(&reference, None).await.unwrap();
    assert!(image.manifest_digest.starts_with("sha256:"));
    assert_eq!(image.layers.len(), 1);
    assert!(image.layers[0].join("bin/busybox").is_file());
    assert_eq!(std::fs::read_link(image.layers[0].join("bin/sh")).unwrap(), Path::new("busybox"));
    assert_eq!(image.config.cmd, ["sh"]);
    assert_eq!(image.config.env, ["PATH=/bin"]);

    // A second pull touches no network: it works with the registry gone.
    drop(registry);
    let again = store.pull(&reference, None).await.unwrap();
    assert_eq!(again, image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_registry(dir.path());
    let reference = push_test_image(dir.path(), &registry, "shared");
    let store = std::sync::Arc::new(ImageStore::open(&dir.path().join("images")).unwrap());
    let pulls: Vec<_> = (0..6)
        .map(|_| {
            let (store, reference) = (store.clone(), reference.clone());
            tokio::spawn(async move { store.pull(&reference, None).await })
        })
        .collect();
    let mut images = Vec::new();
    for p in pulls {
        images.push(p.await.unwrap().unwrap());
    }
    assert!(images.windows(2).all(|w| w[0] == w[1]));
    assert!(images[0].layers[0].join("bin/busybox").is_file());
    assert_eq!(std::fs::read_dir(dir.path().join("images/tmp")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_registry(dir.path());
    let reference = push_test_image(dir.path(), &registry, "corrupt");
    // Flip bytes in every stored blob of the layer kind (the biggest blob is the layer).
    let blobs = registry.data.join("docker/registry/v2/blobs/sha256");
    let mut biggest: Option<(u64, PathBuf)> = None;
    for prefix in std::fs::read_dir(&blobs).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let data = blob.unwrap().path().join("data");
            let len = std::fs::metadata(&data).unwrap().len();
            if biggest.as_ref().is_none_or(|(l, _)| len > *l) {
                biggest = Some((len, data));
            }
        }
    }
    let (_, layer) = biggest.unwrap();
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();

    let store_root = dir.path().join("images");
    let store = ImageStore::open(&store_root).unwrap();
    let err = store.pull(&reference, None).await.unwrap_err();
    assert!(matches!(err, PullError::Digest { .. }), "{err}");
    assert_eq!(std::fs::read_dir(store_root.join("layers")).unwrap().count(), 0, "no layer kept");
    assert_eq!(std::fs::read_dir(store_root.join("tmp")).unwrap().count(), 0, "no download left");
    assert!(store.cached(&reference).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_registry_error() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_registry(dir.path());
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    let err = store.pull(&format!("127.0.0.1:{}/nothing:1", registry.port), None).await.unwrap_err();
    assert!(matches!(err, PullError::Registry { .. }), "{err}");
    assert!(matches!(store.pull("not a reference!", None).await, Err(PullError::Reference { .. })));
}
