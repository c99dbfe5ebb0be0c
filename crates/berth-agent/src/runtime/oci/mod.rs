//! The `oci` runtime driver: Berth pulls images into its own store and runs each container
//! under a runc-compatible runtime.
//!
//! - [`driver`]: the [`Runtime`](super::Runtime) implementation;
//! - [`rootfs`]: an overlayfs rootfs over the image store's shared layers;
//! - [`bundle`]: the OCI runtime bundle (`config.json`) of a container spec;
//! - [`network`]: bridge networking (a namespace and veth per container, port forwards);
//! - [`shim`]: the process per container (`berth shim`) that runs it, keeps its log, runs its
//!   health check and records its exit, surviving agent restarts.

pub mod bundle;
pub mod driver;
pub mod network;
pub mod rootfs;
pub mod shim;
