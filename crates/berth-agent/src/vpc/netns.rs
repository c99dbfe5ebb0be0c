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

/// Makes `/run/netns` a shared mount of its own, as `ip netns` does the first time it adds a
/// namespace. Without it, a later `ip netns add` on the host bind-mounts the directory over
/// itself and hides every namespace mounted before: `ip netns` no longer sees them and they can
/// be neither unmounted nor removed through their path. Shared, the directory's mounts also
/// leave every mount namespace copied from the host's when they are unmounted.
fn shared_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let dir = std::ffi::CString::new(NETNS_DIR).map_err(io::Error::other)?;
    let none = c"none";
    let mut bound = false;
    loop {
        // SAFETY: valid NUL-terminated strings; changing propagation takes no source or data.
        let rc = unsafe {
            libc::mount(c"".as_ptr(), dir.as_ptr(), none.as_ptr(), libc::MS_SHARED | libc::MS_REC, std::ptr::null())
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // EINVAL: not a mount point yet; bind it over itself once, then share it.
        if e.raw_os_error() != Some(libc::EINVAL) || bound {
            return Err(e);
        }
        // SAFETY: as above; a recursive bind mount of the directory onto itself.
        let rc = unsafe {
            libc::mount(dir.as_ptr(), dir.as_ptr(), none.as_ptr(), libc::MS_BIND | libc::MS_REC, std::ptr::null())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        bound = true;
    }
}

/// Creates the named namespace `name` unless it exists; returns its path.
pub fn create(name: &str) -> io::Result<PathBuf> {
    let target = path(name);
    if is_netns(&target) {
        return Ok(target);
    }
    // Agents of one machine making a namespace at once (the router's, the first time) would
    // each mount one at the same path, and each make the directory a mount point.
    let _lock = crate::hostlock::exclusive("netns.lock")?;
    if is_netns(&target) {
        return Ok(target);
    }
    shared_dir()?;
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

    /// Runs `f` on a thread of its own in a private mount namespace with an empty `/run`, as
    /// on a host where nothing made `/run/netns` yet. Needs root, as the agent does.
    fn on_a_fresh_run(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            // SAFETY: this thread alone leaves the host's mount namespace; the mounts below
            // are made in its private copy and go with it.
            unsafe {
                assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare: {}", io::Error::last_os_error());
                let flags = libc::MS_PRIVATE | libc::MS_REC;
                assert_eq!(libc::mount(c"".as_ptr(), c"/".as_ptr(), c"none".as_ptr(), flags, std::ptr::null()), 0);
                let tmpfs = c"tmpfs";
                assert_eq!(libc::mount(tmpfs.as_ptr(), c"/run".as_ptr(), tmpfs.as_ptr(), 0, std::ptr::null()), 0);
            }
            f()
        })
        .join()
        .expect("the test's thread");
    }

    #[test]
    fn a_later_ip_netns_add_hides_none_of_ours() {
        on_a_fresh_run(|| {
            let ours = create("berth-test-ours").unwrap();
            // iproute2 binds /run/netns over itself the first time it adds a namespace unless
            // the directory is a mount already; that would hide `ours`.
            let added = std::process::Command::new("ip").args(["netns", "add", "test-theirs"]).status().unwrap();
            assert!(added.success());
            assert!(is_netns(&ours), "our namespace is still there after `ip netns add`");
            let listed = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
            assert!(String::from_utf8_lossy(&listed.stdout).contains("berth-test-ours"));
            remove("berth-test-ours");
            assert!(!ours.exists(), "removed through its path");
        });
    }
}
