//! The oci driver's core path on a real runtime: the busybox test image's layer unpacked by
//! berth-image, an overlayfs rootfs over it, a bundle from berth-agent's builder, and Debian's
//! runc running it. Needs root and runc (scripts/test installs it).

mod common;

use std::process::Command;

use berth_agent::runtime::ContainerSpec;
use berth_agent::runtime::oci::{bundle, rootfs};
use berth_image::store::ImageConfig;

#[test]
fn runc_runs_a_bundle_on_an_overlay_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let layer = common::busybox_layer(dir.path());
    let container = dir.path().join("container");
    let fs = rootfs::mount(std::slice::from_ref(&layer), &container).unwrap();

    let spec = ContainerSpec {
        name: format!("berth-test-{}", std::process::id()),
        network_mode: "bridge".into(),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo hello from runc; echo written > /tmp/marker; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; exit 3"
                .into(),
        ]),
        memory: Some(64 << 20),
        cpu_shares: Some(512),
        env: vec!["GREETING=hi".into()],
        ..Default::default()
    };
    let image = ImageConfig { env: vec!["PATH=/bin".into()], ..Default::default() };
    let config =
        bundle::runtime_spec(&spec, &image, &fs.rootfs, &format!("/berth-test/{}", spec.name), &Default::default())
            .unwrap();
    config.save(container.join("config.json")).unwrap();

    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&container)
        .arg(&spec.name)
        .output()
        .expect("runc must be installed: scripts/test installs it");
    let _ = Command::new("runc").args(["delete", "-f", &spec.name]).output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hello from runc"), "{stdout}");
    assert!(stdout.contains(&(64u64 << 20).to_string()), "the memory limit is applied: {stdout}");

    // Writes land in the container's upper directory, never in the shared layer.
    assert_eq!(std::fs::read_to_string(container.join("upper/tmp/marker")).unwrap(), "written\n");
    assert!(!layer.join("tmp/marker").exists());
    rootfs::remove(&container).unwrap();
    assert!(!container.exists());
}
