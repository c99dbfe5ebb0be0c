//! Unpacks one image layer (a tar stream) into its own directory, in the form overlayfs
//! stacks: a whiteout `.wh.NAME` becomes a 0:0 character device `NAME`, and an opaque
//! directory marker `.wh..wh..opq` becomes the `trusted.overlay.opaque` attribute.
//!
//! Nothing may land outside the layer directory. Refused, with the offending path:
//! - paths with `..` components (traversal);
//! - any entry whose parent path passes through a symlink (writing through a link);
//! - symlinks whose target, resolved inside the layer, climbs above its root;
//! - hardlinks to paths outside the layer or through symlinks;
//! - character and block devices (other than whiteouts, which the unpacker makes itself).

use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::{Archive, EntryType};
use thiserror::Error;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} escapes the root: {why}")]
    Escape { path: String, why: &'static str },
    #[error("layer entry {path:?} is a device node, which images may not carry")]
    Device { path: String },
    #[error("layer entry {path:?}: {source}")]
    Io { path: String, source: io::Error },
    #[error("reading the layer: {0}")]
    Archive(#[from] io::Error),
}

/// Counts of what a layer held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub files: usize,
    pub dirs: usize,
    pub links: usize,
    pub whiteouts: usize,
}

/// The entry's path inside the layer as plain components, or why it is refused.
fn relative(raw: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(UnpackError::Escape { path: raw.display().to_string(), why: "path contains '..'" });
            }
        }
    }
    Ok(out)
}

/// Refuses a path whose existing ancestors include a symlink (a write would follow it).
fn check_ancestors(root: &Path, rel: &Path, shown: &str) -> Result<(), UnpackError> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::Escape { path: shown.to_string(), why: "a parent directory is a symlink" });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a symlink at `rel` pointing at `target` stays inside the root when resolved
/// lexically (absolute targets are taken relative to the root, as in the container).
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    let mut depth: i64 = if target.is_absolute() { 0 } else { rel.components().count() as i64 - 1 };
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io { path: path.display().to_string(), source }
}

/// Removes whatever is at `path` (a file, link or whole directory), if anything.
fn clear(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn mknod_whiteout(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path; mknod does not retain the pointer.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn mark_opaque(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: valid NUL-terminated strings and a 1-byte value; setxattr copies them.
    let rc = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Unpacks the tar stream `layer` into `root` (which must exist and be empty).
pub fn unpack(layer: impl Read, root: &Path) -> Result<Unpacked, UnpackError> {
    let mut archive = Archive::new(layer);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    let mut counts = Unpacked::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let rel = relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        check_ancestors(root, &rel, &shown)?;
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        fs::create_dir_all(&parent).map_err(io_err(&rel))?;

        if name == OPAQUE_MARKER {
            mark_opaque(&parent).map_err(io_err(&rel))?;
            counts.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let target = parent.join(hidden);
            clear(&target).map_err(io_err(&rel))?;
            mknod_whiteout(&target).map_err(io_err(&rel))?;
            counts.whiteouts += 1;
            continue;
        }

        let dest = root.join(&rel);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if !fs::symlink_metadata(&dest).map(|m| m.is_dir()).unwrap_or(false) {
                    clear(&dest).map_err(io_err(&rel))?;
                    fs::create_dir(&dest).map_err(io_err(&rel))?;
                }
                let mode = entry.header().mode().unwrap_or(0o755);
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o7777)).map_err(io_err(&rel))?;
                counts.dirs += 1;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                clear(&dest).map_err(io_err(&rel))?;
                entry.unpack(&dest).map_err(io_err(&rel))?;
                counts.files += 1;
            }
            EntryType::Symlink => {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                if !link_stays_inside(&rel, &target) {
                    return Err(UnpackError::Escape { path: shown, why: "symlink target climbs above the root" });
                }
                clear(&dest).map_err(io_err(&rel))?;
                std::os::unix::fs::symlink(&target, &dest).map_err(io_err(&rel))?;
                counts.links += 1;
            }
            EntryType::Link => {
                let target_raw = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                let target_rel = relative(&target_raw)
                    .map_err(|_| UnpackError::Escape { path: shown.clone(), why: "hardlink target contains '..'" })?;
                check_ancestors(root, &target_rel, &shown)?;
                let source = root.join(&target_rel);
                if fs::symlink_metadata(&source).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                    return Err(UnpackError::Escape { path: shown, why: "hardlink to a symlink" });
                }
                clear(&dest).map_err(io_err(&rel))?;
                fs::hard_link(&source, &dest).map_err(io_err(&rel))?;
                counts.links += 1;
            }
            EntryType::Char | EntryType::Block => return Err(UnpackError::Device { path: shown }),
            EntryType::Fifo => {
                clear(&dest).map_err(io_err(&rel))?;
                entry.unpack(&dest).map_err(io_err(&rel))?;
            }
            // Metadata entries (PAX headers, GNU long names) are consumed by the tar reader.
            _ => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;
    use tar::{Builder, Header};

    /// Builds a tar from (path, kind) entries; kind: "d", "f:CONTENT", "l:TARGET", "h:TARGET", "c".
    /// Paths are written raw into the header, so hostile names survive.
    fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        for (path, kind) in entries {
            let mut h = Header::new_ustar();
            let raw = path.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_mode(0o755);
            h.set_mtime(0);
            let data: &[u8] = match kind.split_once(':') {
                Some(("f", content)) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(content.len() as u64);
                    content.as_bytes()
                }
                Some(("l", target)) | Some(("h", target)) => {
                    h.set_entry_type(if kind.starts_with('l') { EntryType::Symlink } else { EntryType::Link });
                    h.set_link_name_literal(target).unwrap();
                    h.set_size(0);
                    &[]
                }
                _ if *kind == "d" => {
                    h.set_entry_type(EntryType::Directory);
                    h.set_size(0);
                    &[]
                }
                _ => {
                    h.set_entry_type(EntryType::Char);
                    h.set_device_major(1).unwrap();
                    h.set_device_minor(3).unwrap();
                    h.set_size(0);
                    &[]
                }
            };
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn sandbox() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("layer");
        fs::create_dir(&root).unwrap();
        (dir, root)
    }

    /// Every path under `dir` (the outside world of the test), for "nothing written outside".
    fn listing(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    stack.push(p.clone());
                }
                out.push(p);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn unpacks_files_dirs_links() {
        let (_d, root) = sandbox();
        let tar = layer(&[
            ("bin", "d"),
            ("bin/busybox", "f:elf"),
            ("bin/sh", "l:busybox"),
            ("bin/ash", "h:bin/busybox"),
            ("etc/abs", "l:/bin/busybox"),
        ]);
        let counts = unpack(tar.as_slice(), &root).unwrap();
        assert_eq!((counts.files, counts.dirs, counts.links), (1, 1, 3));
        assert_eq!(fs::read_to_string(root.join("bin/ash")).unwrap(), "elf");
        assert_eq!(fs::read_link(root.join("bin/sh")).unwrap(), Path::new("busybox"));
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let (_d, root) = sandbox();
        let tar = layer(&[("etc", "d"), ("etc/.wh.passwd", "f:"), ("var/.wh..wh..opq", "f:")]);
        let counts = unpack(tar.as_slice(), &root).unwrap();
        assert_eq!(counts.whiteouts, 2);
        let meta = fs::symlink_metadata(root.join("etc/passwd")).unwrap();
        assert!(meta.file_type().is_char_device(), "a whiteout is a 0:0 char device");
        assert!(!root.join("etc/.wh.passwd").exists());
        let dir = CString::new(root.join("var").as_os_str().as_bytes()).unwrap();
        let mut value = [0u8; 4];
        // SAFETY: valid NUL-terminated strings and a buffer of the given length.
        let n = unsafe {
            libc::getxattr(dir.as_ptr(), c"trusted.overlay.opaque".as_ptr(), value.as_mut_ptr().cast(), value.len())
        };
        assert_eq!((n, value[0]), (1, b'y'), "the opaque marker becomes the overlay xattr");
    }

    /// Hostile layers: each is refused with its reason, and nothing appears outside the root.
    #[test]
    fn malicious_layers_are_refused_and_write_nothing_outside() {
        type Entries = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Entries, &str)] = &[
            ("traversal", &[("../outside", "f:x")], "'..'"),
            ("deep traversal", &[("a/../../outside", "f:x")], "'..'"),
            ("symlink escape", &[("up", "l:../../.."), ("up/outside", "f:x")], "symlink target climbs"),
            ("write through symlink", &[("etc", "l:/tmp"), ("etc/outside", "f:x")], "parent directory is a symlink"),
            ("hardlink escape", &[("pw", "h:../../etc/passwd")], "hardlink target contains '..'"),
            ("device node", &[("dev/mem", "c")], "device node"),
        ];
        for (name, entries, reason) in cases {
            let (dir, root) = sandbox();
            let before = listing(dir.path());
            let err = unpack(layer(entries).as_slice(), &root).expect_err(name);
            assert!(err.to_string().contains(reason), "{name}: {err}");
            let outside: Vec<_> = listing(dir.path()).into_iter().filter(|p| !p.starts_with(&root)).collect();
            let before_outside: Vec<_> = before.into_iter().filter(|p| !p.starts_with(&root)).collect();
            assert_eq!(outside, before_outside, "{name} wrote outside the root");
        }
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let (_d, root) = sandbox();
        let tar = layer(&[("x", "f:one"), ("x", "f:two"), ("d", "l:x"), ("d", "d")]);
        unpack(tar.as_slice(), &root).unwrap();
        assert_eq!(fs::read_to_string(root.join("x")).unwrap(), "two");
        assert!(fs::symlink_metadata(root.join("d")).unwrap().is_dir());
    }
}
