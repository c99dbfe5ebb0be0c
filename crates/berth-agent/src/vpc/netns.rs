//! Named network namespaces, as `ip netns` keeps them (a bind mount of the namespace at
//! `/run/netns/NAME`, so it outlives every process in it), and netlink sockets opened inside a
//! namespace. Each runs on a short-lived thread of its own: entering a namespace changes only
//! the calling thread, and the agent's runtime threads must stay in the host's.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether `path` is a network namespace (a bind mount of one, or `/proc/PID/ns/net`).
pub fn is_netns(path: &Path) -> bool {
    // nsfs files report the namespace filesystem's magic number.
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statfs buffer of the right size.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == NSFS_MAGIC
}

const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Runs `f` on a new thread inside the network namespace at `netns`.
pub fn run_in<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let ns = std::fs::File::open(netns)?;
    std::thread::spawn(move || {
        // SAFETY: a namespace descriptor; only this thread moves.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| io::Error::other("a namespace thread panicked"))?
}

/// Creates the named namespace `name` unless it exists; returns its path.
pub fn create(name: &str) -> io::Result<PathBuf> {
    let target = path(name);
    if is_netns(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(NETNS_DIR)?;
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&target)?;
    let mount_at = target.clone();
    let made = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unsharing the network namespace of this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let source = c"/proc/thread-self/ns/net";
        let target = std::ffi::CString::new(mount_at.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
        // SAFETY: valid NUL-terminated paths; a bind mount with no data.
        let rc =
            unsafe { libc::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    Ok(target)
}

/// Removes the named namespace `name` (its interfaces go with it once nothing else holds it).
pub fn remove(name: &str) {
    let target = path(name);
    if let Ok(c) = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()) {
        // SAFETY: a valid NUL-terminated path; failing (not mounted) is fine.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_file(target);
}

/// A netlink connection to the namespace at `netns` (the calling thread's own when `None`),
/// its driver spawned on the current tokio runtime.
pub fn netlink(netns: Option<&Path>) -> io::Result<rtnetlink::Handle> {
    let (connection, handle, _) = match netns {
        Some(ns) => {
            // The socket registers with the runtime's reactor: the namespace's thread enters it.
            let runtime = tokio::runtime::Handle::current();
            run_in(ns, move || {
                let _entered = runtime.enter();
                rtnetlink::new_connection()
            })?
        }
        None => rtnetlink::new_connection()?,
    };
    tokio::spawn(connection);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaces_are_namespaces() {
        assert!(is_netns(Path::new("/proc/self/ns/net")));
        assert!(!is_netns(Path::new("/proc/self/status")));
        assert!(!is_netns(Path::new("/nonexistent")));
        assert_eq!(path("berth-vpc"), Path::new("/run/netns/berth-vpc"));
    }
}
