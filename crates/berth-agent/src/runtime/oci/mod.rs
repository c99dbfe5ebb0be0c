//! The `oci` driver: Berth pulls images itself and runs each container with a runc-compatible
//! runtime under a shim process. Its parts: an overlayfs rootfs over the image store's shared
//! layers ([`rootfs`]), the OCI runtime bundle ([`bundle`]), bridge networking ([`network`]),
//! the runtimes it knows ([`runtimes`]) and Berth's own ([`native`]), the per-container shim
//! ([`shim`]) and the zygote that forks shims ([`zygote`]), the holder of a task's shared
//! namespaces ([`holder`]), and the driver that puts them together ([`driver`]).

pub mod bundle;
pub mod driver;
pub mod holder;
pub mod native;
pub mod network;
pub mod rootfs;
pub mod runtimes;
pub mod shim;
pub mod zygote;
