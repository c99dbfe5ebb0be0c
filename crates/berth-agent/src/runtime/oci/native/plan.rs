//! What a bundle's `config.json` asks of the berth runtime, checked and worked out before the
//! container's process exists: the namespaces to make or join, the mounts with their flags,
//! the device nodes, the process's user, capabilities and limits. What the runtime does not
//! do (a seccomp profile, user namespaces, AppArmor or SELinux labels, hooks) is refused
//! here with the reason, never skipped.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::options::{self, MountOptions};

/// A mount to make in the container, its destination still inside the container's view.
#[derive(Debug, Clone)]
pub struct MountStep {
    pub destination: PathBuf,
    pub kind: String,
    pub source: String,
    pub options: MountOptions,
}

/// A device node to make under the container's `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    /// `S_IFCHR` or `S_IFBLK`.
    pub kind: libc::mode_t,
    pub major: u32,
    pub minor: u32,
    pub mode: libc::mode_t,
    pub uid: u32,
    pub gid: u32,
}

/// The capability sets, one bit per capability as the kernel numbers them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The process to run once the container is set up.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// `PATH` from `env`, to find `args[0]` by.
    pub path: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: u32,
    pub capabilities: Capabilities,
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
}

/// Everything the container's setup does, in the terms of the syscalls that do it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub hostname: Option<String>,
    /// Namespaces made new at clone (`CLONE_NEW*`), the cgroup one aside.
    pub clone_flags: libc::c_int,
    /// A new cgroup namespace, made once the process is in its cgroup.
    pub new_cgroup_ns: bool,
    /// Namespaces joined by path, with their `CLONE_NEW*` type.
    pub join: Vec<(libc::c_int, PathBuf)>,
    /// A pid namespace to join: the shim enters it before the clone, since only children
    /// of a process land in the pid namespace it enters.
    pub join_pid: Option<PathBuf>,
    pub mounts: Vec<MountStep>,
    pub devices: Vec<DeviceNode>,
    pub masked: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
    pub cgroups_path: String,
    pub process: ProcessPlan,
}

/// Why a bundle cannot run under the berth runtime.
#[derive(Debug, thiserror::Error)]
#[error("the berth runtime cannot run this bundle: {0}")]
pub struct Unsupported(pub String);

fn unsupported(what: impl Into<String>) -> Unsupported {
    Unsupported(what.into())
}

/// The devices every container gets, as runc makes them: `(path, major, minor)`, mode 0666.
const DEFAULT_NODES: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstring(s: &str) -> Result<CString, Unsupported> {
    CString::new(s).map_err(|_| unsupported(format!("a NUL byte in {s:?}")))
}

fn namespace_flag(kind: LinuxNamespaceType) -> Result<libc::c_int, Unsupported> {
    Ok(match kind {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        other => return Err(unsupported(format!("the {other:?} namespace"))),
    })
}

/// A capability's number from its name (`CAP_CHOWN`).
fn capability(name: &str) -> Result<u32, Unsupported> {
    let bare = name.trim_start_matches("CAP_");
    super::super::bundle::CAPABILITIES
        .iter()
        .position(|c| *c == bare)
        .map(|n| n as u32)
        .ok_or_else(|| unsupported(format!("the unknown capability {name}")))
}

fn capability_set(set: Option<serde_json::Value>) -> Result<u64, Unsupported> {
    let mut bits = 0u64;
    for name in set.as_ref().and_then(|v| v.as_array()).into_iter().flatten() {
        bits |= 1 << capability(name.as_str().unwrap_or_default())?;
    }
    Ok(bits)
}

/// An rlimit's resource number from its name (`RLIMIT_NOFILE`).
fn rlimit(name: &str) -> Result<libc::c_int, Unsupported> {
    Ok((match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        other => return Err(unsupported(format!("the unknown rlimit {other}"))),
    }) as libc::c_int)
}

/// The plan for `spec`, a bundle whose relative root is resolved against `bundle`.
pub fn plan(spec: &Spec, bundle: &Path) -> Result<Plan, Unsupported> {
    let linux = spec.linux().clone().unwrap_or_default();
    let process = spec.process().clone().ok_or_else(|| unsupported("no process"))?;
    if linux.seccomp().is_some() {
        return Err(unsupported("a seccomp profile"));
    }
    if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    {
        return Err(unsupported("user namespace id mappings"));
    }
    if process.apparmor_profile().as_ref().is_some_and(|p| !p.is_empty())
        || process.selinux_label().as_ref().is_some_and(|l| !l.is_empty())
    {
        return Err(unsupported("an AppArmor profile or SELinux label"));
    }
    if spec.hooks().is_some() {
        return Err(unsupported("hooks"));
    }
    if linux.rootfs_propagation().as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(unsupported("rootfsPropagation"));
    }
    let root = spec.root().clone().ok_or_else(|| unsupported("no root"))?;
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };

    let (mut clone_flags, mut new_cgroup_ns, mut join, mut join_pid) = (0, false, Vec::new(), None);
    for ns in linux.namespaces().clone().unwrap_or_default() {
        let flag = namespace_flag(ns.typ())?;
        match (ns.path(), flag) {
            (Some(path), libc::CLONE_NEWPID) => join_pid = Some(path.clone()),
            (Some(path), _) => join.push((flag, path.clone())),
            (None, libc::CLONE_NEWCGROUP) => new_cgroup_ns = true,
            (None, _) => clone_flags |= flag,
        }
    }
    if clone_flags & libc::CLONE_NEWNS == 0 {
        return Err(unsupported("a container without its own mount namespace"));
    }

    let mounts = spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let options = options::parse(m.options().as_deref().unwrap_or_default());
            let kind = m.typ().clone().unwrap_or_else(|| if options.is_bind() { "bind".into() } else { "none".into() });
            MountStep {
                destination: m.destination().clone(),
                source: m.source().as_ref().map(|s| s.display().to_string()).unwrap_or_else(|| kind.clone()),
                kind,
                options,
            }
        })
        .collect();

    let mut devices: Vec<DeviceNode> = DEFAULT_NODES
        .iter()
        .map(|(path, major, minor)| DeviceNode {
            path: path.into(),
            kind: libc::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in linux.devices().clone().unwrap_or_default() {
        use oci_spec::runtime::LinuxDeviceType;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            other => return Err(unsupported(format!("a device of type {other:?}"))),
        };
        devices.retain(|n| n.path != *d.path());
        devices.push(DeviceNode {
            path: d.path().clone(),
            kind,
            major: d.major() as u32,
            minor: d.minor() as u32,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let user = process.user();
    let caps = serde_json::to_value(process.capabilities()).unwrap_or_default();
    let capabilities = Capabilities {
        bounding: capability_set(caps.get("bounding").cloned())?,
        effective: capability_set(caps.get("effective").cloned())?,
        permitted: capability_set(caps.get("permitted").cloned())?,
        inheritable: capability_set(caps.get("inheritable").cloned())?,
        ambient: capability_set(caps.get("ambient").cloned())?,
    };
    let mut rlimits = Vec::new();
    for r in process.rlimits().clone().unwrap_or_default() {
        let name = serde_json::to_value(r.typ()).unwrap_or_default();
        rlimits.push((rlimit(name.as_str().unwrap_or_default())?, r.soft(), r.hard()));
    }
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_string();
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(unsupported("no process args"));
    }
    let process_plan = ProcessPlan {
        args: args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cstring(e)).collect::<Result<_, _>>()?,
        path,
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        capabilities,
        rlimits,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        oom_score_adj: process.oom_score_adj(),
        terminal: process.terminal().unwrap_or(false),
    };
    let mut sysctl: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
    sysctl.sort();
    Ok(Plan {
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        hostname: spec.hostname().clone().filter(|_| clone_flags & libc::CLONE_NEWUTS != 0),
        clone_flags,
        new_cgroup_ns,
        join,
        join_pid,
        mounts,
        devices,
        masked: linux.masked_paths().clone().unwrap_or_default().into_iter().map(PathBuf::from).collect(),
        readonly: linux.readonly_paths().clone().unwrap_or_default().into_iter().map(PathBuf::from).collect(),
        sysctl,
        cgroups_path: linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.display().to_string())
            .ok_or_else(|| unsupported("no cgroupsPath"))?,
        process: process_plan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        v["root"] = serde_json::json!({"path": "rootfs"});
        v["linux"]["cgroupsPath"] = serde_json::json!("/berth/c");
        v["process"]["args"] = serde_json::json!(["sh"]);
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_default_bundle_makes_its_namespaces_mounts_and_devices() {
        let p = plan(&spec(|_| {}), Path::new("/b")).unwrap();
        assert_eq!(p.rootfs, Path::new("/b/rootfs"));
        let all = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID | libc::CLONE_NEWNET;
        assert_eq!(p.clone_flags, all);
        assert!(p.new_cgroup_ns && p.join.is_empty() && p.join_pid.is_none());
        assert!(p.mounts.iter().any(|m| m.kind == "proc" && m.destination == Path::new("/proc")));
        assert!(p.devices.iter().any(|d| d.path == Path::new("/dev/null") && (d.major, d.minor) == (1, 3)));
        assert!(p.masked.contains(&PathBuf::from("/proc/kcore")));
        assert_eq!(p.process.path, DEFAULT_PATH);
        assert_eq!(p.process.umask, 0o022);
    }

    #[test]
    fn joined_namespaces_user_capabilities_and_limits() {
        let p = plan(
            &spec(|v| {
                v["linux"]["namespaces"] = serde_json::json!([
                    {"type": "mount"}, {"type": "network", "path": "/run/netns/t"},
                    {"type": "pid", "path": "/proc/7/ns/pid"}
                ]);
                v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 100, "additionalGids": [5]});
                v["process"]["env"] = serde_json::json!(["PATH=/bin", "A=1"]);
                v["process"]["capabilities"] = serde_json::json!({
                    "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
                });
                v["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]);
            }),
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(p.clone_flags, libc::CLONE_NEWNS);
        assert_eq!(p.join, [(libc::CLONE_NEWNET, PathBuf::from("/run/netns/t"))]);
        assert_eq!(p.join_pid, Some(PathBuf::from("/proc/7/ns/pid")));
        assert_eq!((p.process.uid, p.process.gid, p.process.groups.clone()), (1000, 100, vec![5]));
        assert_eq!(p.process.path, "/bin");
        assert_eq!(p.process.capabilities.bounding, 1 << 0 | 1 << 5);
        assert_eq!(p.process.capabilities.effective, 1 << 5);
        assert_eq!(p.process.rlimits, [(libc::RLIMIT_NOFILE as libc::c_int, 10, 20)]);
    }

    #[test]
    fn what_it_does_not_do_is_refused_with_the_reason() {
        use serde_json::json;
        let cases = [
            ("seccomp", "/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW"})),
            ("id mappings", "/linux/uidMappings", json!([{"containerID": 0, "hostID": 1000, "size": 1}])),
            ("hooks", "/hooks", json!({"prestart": []})),
            ("AppArmor", "/process/apparmorProfile", json!("docker-default")),
            ("User namespace", "/linux/namespaces", json!([{"type": "mount"}, {"type": "user"}])),
            ("own mount namespace", "/linux/namespaces", json!([{"type": "pid"}])),
        ];
        for (why, pointer, value) in cases {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let edit = |v: &mut serde_json::Value| {
                let at = if parent.is_empty() { v } else { v.pointer_mut(parent).unwrap() };
                at[key] = value.clone();
            };
            let err = plan(&spec(edit), Path::new("/b")).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
