//! Locks every process of the machine shares: an exclusive `flock` on a file under
//! [`DIR`] (in `/run`, so gone at reboot with what it guards), held while the returned guard
//! lives and released by the kernel should the process die. For the few machine-wide things
//! several agents on one host could make at once (the router namespace, bridge addresses).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const DIR: &str = "/run/berth";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct HostLock(#[allow(dead_code)] File);

/// Waits for the lock `name` under [`DIR`].
pub fn exclusive(name: &str) -> io::Result<HostLock> {
    exclusive_at(&Path::new(DIR).join(name))
}

/// Waits for the lock on the file at `path` (made when missing, with its directory).
pub fn exclusive_at(path: &Path) -> io::Result<HostLock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(HostLock(file));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside) = (path.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _held = exclusive_at(&path).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
