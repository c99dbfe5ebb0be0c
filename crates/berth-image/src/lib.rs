//! OCI images on a node, for the `oci` runtime driver: layers unpacked safely, once, into
//! directories that every container of the image shares read-only through overlayfs.
//!
//! - [`store`]: pulls images with digest checks into a store of shared unpacked layers.
//! - [`unpack`]: one layer tar into one directory, refusing anything that could write
//!   outside it, with whiteouts turned into overlayfs whiteouts.

pub mod store;
pub mod unpack;
