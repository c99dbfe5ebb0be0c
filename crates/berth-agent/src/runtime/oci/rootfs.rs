//! A container's root filesystem: overlayfs with the image's layers as read-only lower
//! directories (shared by every container of the image) and a private upper directory.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where one container's filesystem lives: `upper` and `work` for overlayfs, `rootfs` mounted.
pub struct Rootfs {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Mounts the layers (bottom first) under `dir/rootfs`, with `dir/upper` and `dir/work`.
pub fn mount(layers: &[PathBuf], dir: &Path) -> io::Result<Rootfs> {
    if layers.is_empty() {
        return Err(io::Error::other("an image needs at least one layer"));
    }
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        std::fs::create_dir_all(d)?;
    }
    // overlayfs lists lower directories top first.
    let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
    let options = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
    let (source, fstype, target, data) =
        (c"overlay", c"overlay", cstr(&rootfs)?, CString::new(options).map_err(io::Error::other)?);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Rootfs { dir: dir.to_path_buf(), rootfs })
}

/// Unmounts the rootfs and removes the container's directory.
pub fn remove(dir: &Path) -> io::Result<()> {
    let rootfs = dir.join("rootfs");
    if rootfs.exists() {
        let target = cstr(&rootfs)?;
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let err = io::Error::last_os_error();
        if rc != 0 && err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
