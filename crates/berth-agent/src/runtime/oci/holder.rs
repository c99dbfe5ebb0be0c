//! A task's namespace holder for the `oci` driver. A task whose containers share PID or IPC
//! namespaces (`pidMode`/`ipcMode` `task`) gets the pause program ([`crate::runtime::pause`])
//! run by the OCI runtime in a container of its own, with new PID, IPC, mount, UTS and network
//! namespaces, no capabilities, as nobody: the task's containers join its PID and IPC
//! namespaces by path (`/proc/PID/ns/...`) and, in the `awsvpc` network mode, its network
//! namespace; with `ipcMode` `task` they share one `/dev/shm`: a tmpfs on the host,
//! bind-mounted into each. A task that shares only its network (`awsvpc` alone, every FARGATE
//! task without those modes) needs no process: its holder is a named network namespace
//! (`/run/netns/NAME`, as `ip netns` keeps them), made in a millisecond instead of a runtime
//! start.
//!
//! A process holder lives in `ROOT/holders/NAME/`: the bundle (`config.json`, `rootfs/pause`),
//! its pid file and the `shm` mount. It runs detached, so it outlives agent restarts like the
//! containers that joined it; a named namespace does too.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use oci_spec::runtime::Spec;
use serde_json::json;

use crate::runtime::pause;
use crate::vpc::netns;

/// What the task's containers join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The pause process (none for a holder of the network namespace alone).
    pub pid: Option<u32>,
    /// The task's network namespace.
    pub netns: PathBuf,
    /// The task's `/dev/shm` on the host (`ipcMode` `task`).
    pub shm: Option<PathBuf>,
}

const PID_FILE: &str = "pid";
const SHM_DIR: &str = "shm";

fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("holders").join(name)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}/ns/pid")).exists()
}

/// The holder `name` if it runs (or, one of the network namespace alone, exists).
pub fn running(root: &Path, name: &str) -> Option<Holder> {
    let named = netns::path(name);
    if netns::is_netns(&named) {
        return Some(Holder { pid: None, netns: named, shm: None });
    }
    let dir = dir(root, name);
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok()?;
    let shm = dir.join(SHM_DIR);
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    alive(pid).then(|| Holder { pid: Some(pid), netns, shm: shm.exists().then_some(shm) })
}

/// Makes the holder of a task that shares only its network namespace: a named one.
pub fn start_netns(name: &str) -> Result<Holder, String> {
    let netns = netns::create(name).map_err(|e| format!("the task's network namespace: {e}"))?;
    Ok(Holder { pid: None, netns, shm: None })
}

/// The holder's bundle: the default configuration, reduced to running the pause program.
fn config(rootfs: &Path, cgroups_path: &str) -> Result<Spec, String> {
    let mut v = serde_json::to_value(Spec::default()).map_err(|e| e.to_string())?;
    v["process"]["args"] = json!(["/pause"]);
    v["process"]["env"] = json!([]);
    v["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    v["process"]["noNewPrivileges"] = json!(true);
    v["process"]["capabilities"] = json!({});
    v["process"]["rlimits"] = json!([]);
    v["root"] = json!({"path": rootfs, "readonly": true});
    v["hostname"] = json!("pause");
    v["linux"]["cgroupsPath"] = json!(cgroups_path);
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Mounts a tmpfs of `size_mib` (64 MiB, as `/dev/shm` has, when not given) at `target`.
fn mount_shm(target: &Path, size_mib: Option<i64>) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let options = format!("mode=1777,size={}m", size_mib.unwrap_or(64));
    let (source, fstype) = (c"shm", c"tmpfs");
    let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let data = CString::new(options).map_err(io::Error::other)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts holder `name` with the runtime binary `runtime`, in cgroup `cgroups_path`; with
/// `shm`, the task's `/dev/shm` of that size (MiB; `Some(None)`: the default size).
pub async fn start(
    root: &Path,
    runtime: &str,
    name: &str,
    cgroups_path: &str,
    shm: Option<Option<i64>>,
) -> Result<Holder, String> {
    let program = pause::program()
        .ok_or_else(|| format!("pidMode and ipcMode task are not supported on {} machines", std::env::consts::ARCH))?;
    let dir = dir(root, name);
    // What an earlier, failed start left (a new task's holder has nothing to remove).
    if dir.exists() {
        let _ = tokio::process::Command::new(runtime).args(["delete", "-f", name]).output().await;
        remove_dir(&dir);
    }
    let rootfs = dir.join("rootfs");
    let io = |what: &'static str| move |e: io::Error| format!("the task's namespace holder: {what}: {e}");
    std::fs::create_dir_all(&rootfs).map_err(io("its directory"))?;
    std::fs::write(rootfs.join("pause"), program).map_err(io("the pause program"))?;
    std::fs::set_permissions(rootfs.join("pause"), std::fs::Permissions::from_mode(0o755))
        .map_err(io("the pause program"))?;
    config(&rootfs, cgroups_path)?.save(dir.join("config.json")).map_err(|e| e.to_string())?;
    if let Some(size) = shm {
        mount_shm(&dir.join(SHM_DIR), size).map_err(io("its /dev/shm"))?;
    }
    // The holder inherits the runtime's standard streams: a file, not a pipe nobody closes.
    let errors = dir.join("runtime.log");
    let stderr = std::fs::File::create(&errors).map_err(io("its log"))?;
    let status = tokio::process::Command::new(runtime)
        .args(["run", "--detach", "--pid-file"])
        .arg(dir.join(PID_FILE))
        .arg("--bundle")
        .arg(&dir)
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .await
        .map_err(|e| format!("the task's namespace holder: {runtime}: {e}"))?;
    if !status.success() {
        let why = std::fs::read_to_string(&errors).unwrap_or_default();
        remove_dir(&dir);
        return Err(format!("the task's namespace holder: {}", why.trim()));
    }
    running(root, name).ok_or_else(|| "the task's namespace holder exited at once".to_string())
}

/// Stops holder `name` and removes what it had.
pub async fn remove(root: &Path, runtime: &str, name: &str) {
    netns::remove(name);
    let dir = dir(root, name);
    if dir.exists() {
        let _ = tokio::process::Command::new(runtime).args(["delete", "-f", name]).output().await;
        remove_dir(&dir);
    }
}

fn remove_dir(dir: &Path) {
    let shm = dir.join(SHM_DIR);
    if let Ok(target) = CString::new(shm.as_os_str().as_bytes()) {
        // SAFETY: a valid NUL-terminated path; failing (not mounted) is fine.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_runs_only_the_pause_program_without_privileges() {
        let out = serde_json::to_value(config(Path::new("/x/rootfs"), "/berth-tasks/t/berth-t.ns").unwrap()).unwrap();
        assert_eq!(out["process"]["args"], json!(["/pause"]));
        assert_eq!(out["process"]["user"], json!({"uid": 65534, "gid": 65534}));
        assert_eq!(out["process"]["noNewPrivileges"], true);
        assert!(out["process"]["capabilities"]["bounding"].as_array().is_none_or(|c| c.is_empty()));
        assert_eq!(out["root"], json!({"path": "/x/rootfs", "readonly": true}));
        let kinds: Vec<&str> =
            out["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|n| n["type"].as_str()).collect();
        for kind in ["pid", "ipc", "network", "mount"] {
            assert!(kinds.contains(&kind), "a namespace of its own: {kind}");
        }
        assert!(running(Path::new("/nonexistent"), "x").is_none());
    }
}
