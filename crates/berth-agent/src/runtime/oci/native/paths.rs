//! Paths inside a container's root, resolved on the host before the root is entered: every
//! symbolic link on the way is followed as if the root were `/`, so a link in the image
//! (`/etc -> /host/etc`, `../../..`) can never lead a mount outside the root.

use std::io;
use std::path::{Component, Path, PathBuf};

/// How many links one path may pass through, as the kernel allows (`ELOOP` beyond).
const MAX_LINKS: usize = 40;

/// `inside` (a path in the container) as a host path under `root`, following links within
/// `root`. Components that do not exist yet are kept as they are.
pub fn resolve(root: &Path, inside: &Path) -> io::Result<PathBuf> {
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = parts(inside).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&done);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!("too many links in {}", inside.display())));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    done.clear();
                }
                pending.extend(parts(&target).into_iter().rev());
            }
            _ => done.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

/// The normal components of `path` and its `..`s, in order (`/`, `.` dropped).
fn parts(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_followed_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/usr/lib", root.join("lib")).unwrap();
        symlink("../../../../etc", root.join("usr/escape")).unwrap();
        symlink("/", root.join("usr/top")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve(&root, Path::new("/lib/x")).unwrap(), root.join("usr/lib/x"));
        assert_eq!(resolve(&root, Path::new("/usr/escape/passwd")).unwrap(), root.join("etc/passwd"));
        assert_eq!(resolve(&root, Path::new("/usr/top/../../proc")).unwrap(), root.join("proc"));
        assert_eq!(resolve(&root, Path::new("/../../etc")).unwrap(), root.join("etc"));
        assert_eq!(resolve(&root, Path::new("/new/dir")).unwrap(), root.join("new/dir"));
        assert!(resolve(&root, Path::new("/loop/x")).unwrap_err().to_string().contains("too many links"));
    }
}
