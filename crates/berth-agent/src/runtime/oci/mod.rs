//! The `oci` driver's building blocks: an overlayfs rootfs over the image store's shared
//! layers, and an OCI runtime bundle for a runc-compatible runtime. (The driver that runs
//! them under a shim is the next step; see docs/differences.md.)

pub mod bundle;
pub mod driver;
pub mod network;
pub mod rootfs;
pub mod shim;
