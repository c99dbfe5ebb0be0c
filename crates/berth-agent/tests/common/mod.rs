//! What the tests on real runtimes share: the busybox test image's layer, unpacked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the test image's OCI layout and unpacks its one layer into `dir/layer`.
pub fn busybox_layer(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/make_image.py");
    let layout = dir.join("layout");
    assert!(Command::new("python3").arg(fixtures).arg(&layout).output().unwrap().status.success());
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let layer_blob = std::fs::File::open(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let layer = dir.join("layer");
    std::fs::create_dir(&layer).unwrap();
    berth_image::unpack::unpack(flate2::read::GzDecoder::new(layer_blob), &layer).unwrap();
    layer
}
