//! The OCI runtime bundle (`config.json`) for one container: oci-spec's defaults (those of
//! `runc spec`), with the container definition and the image configuration applied the way
//! the Docker Engine applies them.

use std::path::Path;

use berth_image::store::ImageConfig;
use oci_spec::runtime::Spec;
use serde_json::{Value, json};
use thiserror::Error;

use crate::runtime::{ContainerSpec, NamespaceMode};

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
    #[error("unknown ulimit {0:?}")]
    UnknownUlimit(String),
    #[error("{0} is not a device node of this machine")]
    NotADevice(String),
    #[error("the runtime configuration is invalid: {0}")]
    Invalid(String),
}

/// The process arguments as Docker computes them: an explicit entrypoint replaces the image's
/// entrypoint and its default command; an explicit command replaces the image's command.
pub fn args(spec: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let entrypoint = spec.entrypoint.clone().unwrap_or_else(|| image.entrypoint.clone());
    let command = match (&spec.command, &spec.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone(),
    };
    entrypoint.into_iter().chain(command).collect()
}

/// The image's environment overridden by the container's, `PATH` defaulted as runc does.
pub fn env(spec: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in image.env.iter().chain(&spec.env) {
        let key = entry.split('=').next().unwrap_or_default();
        out.retain(|e| e.split('=').next() != Some(key));
        out.push(entry.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    out
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), BundleError> {
    let read = |file: &str| std::fs::read_to_string(rootfs.join(file)).unwrap_or_default();
    let (u, g) = user.split_once(':').map(|(u, g)| (u, Some(g))).unwrap_or((user, None));
    let passwd = read("etc/passwd");
    let entry =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 3 && (f[0] == u || f[2] == u));
    let (uid, primary_gid) = match (u.parse::<u32>(), entry) {
        (_, Some(f)) => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
        (Ok(uid), None) => (uid, 0),
        (Err(_), None) => return Err(BundleError::UnknownUser(u.to_string())),
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| BundleError::UnknownGroup(g.to_string()))?,
        },
    };
    Ok((uid, gid))
}

fn rlimit(name: &str) -> Result<&'static str, BundleError> {
    Ok(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        other => return Err(BundleError::UnknownUlimit(other.to_string())),
    })
}

/// Namespaces and files prepared outside the container for it to join.
#[derive(Debug, Clone, Default)]
pub struct Joined<'a> {
    /// The prepared network namespace (bridge mode).
    pub network: Option<&'a str>,
    /// The pid of the task's namespace holder (`pidMode` or `ipcMode` `task`).
    pub holder_pid: Option<u32>,
    /// The task's shared `/dev/shm` on the host (`ipcMode` `task`).
    pub task_shm: Option<&'a Path>,
}

/// The runtime configuration for `spec` on the mounted `rootfs`, in cgroup `cgroups_path`,
/// joining what `joined` names.
pub fn runtime_spec(
    spec: &ContainerSpec,
    image: &ImageConfig,
    rootfs: &Path,
    cgroups_path: &str,
    joined: &Joined<'_>,
) -> Result<Spec, BundleError> {
    let invalid = |e: serde_json::Error| BundleError::Invalid(e.to_string());
    let mut v = serde_json::to_value(Spec::default()).map_err(invalid)?;
    let user = spec.user.clone().or_else(|| image.user.clone()).unwrap_or_else(|| "0".into());
    let (uid, gid) = resolve_user(rootfs, &user)?;
    v["process"]["args"] = json!(args(spec, image));
    v["process"]["env"] = json!(env(spec, image));
    v["process"]["cwd"] =
        json!(spec.working_dir.clone().or_else(|| image.working_dir.clone()).unwrap_or_else(|| "/".into()));
    v["process"]["user"] = json!({"uid": uid, "gid": gid});
    v["process"]["terminal"] = json!(spec.tty);
    // Docker's default: setuid programs work unless `no-new-privileges` is asked for.
    v["process"]["noNewPrivileges"] = json!(spec.no_new_privileges);
    let mut rlimits = v["process"]["rlimits"].as_array().cloned().unwrap_or_default();
    for u in &spec.ulimits {
        let kind = rlimit(&u.name)?;
        rlimits.retain(|r| r["type"] != kind);
        rlimits.push(json!({"type": kind, "soft": u.soft, "hard": u.hard}));
    }
    v["process"]["rlimits"] = Value::Array(rlimits);
    capabilities(spec, &mut v["process"]["capabilities"]);
    v["root"] = json!({"path": rootfs.display().to_string(), "readonly": spec.readonly_rootfs});
    v["hostname"] = json!(spec.hostname.clone().unwrap_or_else(|| spec.name.chars().take(63).collect()));
    mounts(spec, joined, v["mounts"].as_array_mut().expect("default mounts"));
    resources(spec, &mut v["linux"]["resources"]);
    v["linux"]["cgroupsPath"] = json!(cgroups_path);
    if !spec.sysctls.is_empty() {
        v["linux"]["sysctl"] = json!(spec.sysctls);
    }
    namespaces(spec, joined, v["linux"]["namespaces"].as_array_mut().expect("default namespaces"));
    let (mut nodes, mut rules) = (Vec::new(), Vec::new());
    for d in &spec.devices {
        let (node, rule) = device(Path::new(&d.host_path), &d.container_path, &d.permissions)?;
        nodes.push(node);
        rules.push(rule);
    }
    if spec.privileged {
        privileged(&mut v, &mut nodes, &mut rules);
    }
    v["linux"]["resources"]["devices"] = Value::Array(rules);
    v["linux"]["devices"] = Value::Array(nodes);
    serde_json::from_value(v).map_err(invalid)
}

/// Docker's default capabilities, which an ECS container gets on either launch type (and
/// under the docker driver from the engine itself).
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// `cap_add`/`cap_drop` on Docker's default set, or every capability for a privileged
/// container. As Docker, no inheritable (unless privileged) and no ambient capabilities: a
/// process of another user than root starts with none.
fn capabilities(spec: &ContainerSpec, caps_json: &mut Value) {
    let sets: &[&str] = if spec.privileged {
        &["bounding", "effective", "permitted", "inheritable"]
    } else {
        &["bounding", "effective", "permitted"]
    };
    caps_json["inheritable"] = json!([]);
    caps_json["ambient"] = json!([]);
    for set in sets {
        let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
        let added = if spec.privileged { all_capabilities() } else { spec.cap_add.clone() };
        for add in added {
            let name = format!("CAP_{}", add.trim_start_matches("CAP_"));
            if !caps.contains(&name) {
                caps.push(name);
            }
        }
        for drop in spec.cap_drop.iter().filter(|_| !spec.privileged) {
            let name = format!("CAP_{}", drop.trim_start_matches("CAP_"));
            caps.retain(|c| *c != name);
        }
        caps_json[set] = json!(caps);
    }
}

/// The capabilities, numbered as the kernel numbers them.
pub(super) const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability the agent itself may hand on (its bounding set), as a privileged Docker
/// container gets every capability of the engine.
fn all_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    CAPABILITIES.iter().enumerate().filter(|(n, _)| mask & (1 << n) != 0).map(|(_, c)| c.to_string()).collect()
}

/// Binds, tmpfs mounts, and `/dev/shm` as the IPC mode wants it.
fn mounts(spec: &ContainerSpec, joined: &Joined<'_>, mounts: &mut Vec<Value>) {
    for bind in &spec.binds {
        let mut parts = bind.splitn(3, ':');
        let (source, destination, mode) =
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next());
        let access = if mode == Some("ro") { "ro" } else { "rw" };
        mounts
            .push(json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind", access]}));
    }
    for t in &spec.tmpfs {
        let given = t.options.iter().cloned().chain([format!("size={}m", t.size_mib)]);
        let options = merge_tmpfs_options(["noexec", "nosuid", "nodev"].into_iter().map(String::from).chain(given));
        mounts.push(json!({"destination": t.container_path, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    let shm = mounts.iter().position(|m| m["destination"] == "/dev/shm");
    match (spec.ipc_mode, shm) {
        (NamespaceMode::None, Some(i)) => {
            mounts.remove(i);
        }
        (NamespaceMode::Host, Some(i)) => {
            mounts[i] =
                json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rw"]});
        }
        (NamespaceMode::Task, Some(i)) => {
            if let Some(dir) = joined.task_shm {
                mounts[i] =
                    json!({"destination": "/dev/shm", "type": "bind", "source": dir, "options": ["rbind", "rw"]});
            }
        }
        (NamespaceMode::Private, Some(i)) => {
            if let Some(size) = spec.shm_size_mib {
                let options = mounts[i]["options"].as_array().cloned().unwrap_or_default();
                let mut options: Vec<Value> =
                    options.into_iter().filter(|o| !o.as_str().is_some_and(|o| o.starts_with("size="))).collect();
                options.push(json!(format!("size={size}m")));
                mounts[i]["options"] = Value::Array(options);
            }
        }
        (_, None) => {}
    }
}

/// Merges tmpfs mount options as Docker does: a later option replaces an earlier one of the
/// same key (`mode=`, `size=`, ...) or its opposite (`exec` after `noexec`).
pub fn merge_tmpfs_options(options: impl IntoIterator<Item = String>) -> Vec<String> {
    let key = |o: &str| -> String {
        let name = o.split('=').next().unwrap_or(o);
        match name {
            "ro" | "rw" => "rw".into(),
            "async" | "sync" => "sync".into(),
            _ if o.contains('=') => name.into(),
            _ => name.strip_prefix("no").filter(|n| !n.is_empty()).unwrap_or(name).into(),
        }
    };
    let mut out: Vec<String> = Vec::new();
    for option in options {
        out.retain(|o| key(o) != key(&option));
        out.push(option);
    }
    out
}

/// Memory (with swap) and cpu limits.
fn resources(spec: &ContainerSpec, resources: &mut Value) {
    let mut memory = json!({});
    if let Some(limit) = spec.memory {
        memory["limit"] = json!(limit);
    }
    if let Some(reservation) = spec.memory_reservation {
        memory["reservation"] = json!(reservation);
    }
    if let Some(swap) = spec.memory_swap {
        memory["swap"] = json!(swap);
    }
    if let Some(swappiness) = spec.swappiness {
        memory["swappiness"] = json!(swappiness);
    }
    resources["memory"] = memory;
    if let Some(shares) = spec.cpu_shares {
        resources["cpu"] = json!({"shares": shares});
    }
}

/// Host namespaces leave the list; shared ones are joined by path.
fn namespaces(spec: &ContainerSpec, joined: &Joined<'_>, ns: &mut Vec<Value>) {
    if spec.network_mode == "host" {
        ns.retain(|n| n["type"] != "network");
    } else if let Some(path) = joined.network {
        for n in ns.iter_mut().filter(|n| n["type"] == "network") {
            n["path"] = json!(path);
        }
    }
    for (kind, mode) in [("pid", spec.pid_mode), ("ipc", spec.ipc_mode)] {
        match (mode, joined.holder_pid) {
            (NamespaceMode::Host, _) => ns.retain(|n| n["type"] != kind),
            (NamespaceMode::Task, Some(pid)) => {
                for n in ns.iter_mut().filter(|n| n["type"] == kind) {
                    n["path"] = json!(format!("/proc/{pid}/ns/{kind}"));
                }
            }
            _ => {}
        }
    }
}

/// The device node at `host` as `(linux.devices entry, cgroup rule)`, made at `inside`.
fn device(host: &Path, inside: &str, permissions: &str) -> Result<(Value, Value), BundleError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let not_device = || BundleError::NotADevice(host.display().to_string());
    let meta = std::fs::metadata(host).map_err(|_| not_device())?;
    let kind = match meta.file_type() {
        t if t.is_char_device() => "c",
        t if t.is_block_device() => "b",
        _ => return Err(not_device()),
    };
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    let node = json!({"path": inside, "type": kind, "major": major, "minor": minor,
                      "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid()});
    let rule = json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": permissions});
    Ok((node, rule))
}

/// Directories of the host's /dev whose nodes a privileged container does not get.
const SKIPPED_DEV: [&str; 6] = ["pts", "shm", "mqueue", "fd", "console", "ptmx"];

/// Docker's privileged mode: every capability (see [`capabilities`]), the host's devices and
/// access to all devices, `/sys` and the cgroup tree writable, nothing masked.
fn privileged(v: &mut Value, nodes: &mut Vec<Value>, rules: &mut Vec<Value>) {
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else { continue };
            if dir == Path::new("/dev") && SKIPPED_DEV.contains(&name.as_str()) {
                continue;
            }
            let inside = path.display().to_string();
            if kind.is_dir() {
                stack.push(path);
            } else if !nodes.iter().any(|n| n["path"] == inside)
                && let Ok((node, _)) = device(&path, &inside, "rwm")
            {
                nodes.push(node);
            }
        }
    }
    rules.push(json!({"allow": true, "access": "rwm"}));
    v["linux"]["maskedPaths"] = json!([]);
    v["linux"]["readonlyPaths"] = json!([]);
    for m in v["mounts"].as_array_mut().into_iter().flatten() {
        if matches!(m["type"].as_str(), Some("sysfs" | "cgroup"))
            && let Some(options) = m["options"].as_array_mut()
        {
            options.retain(|o| o != "ro");
            options.push(json!("rw"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec { name: "berth-t-c".into(), network_mode: "bridge".into(), ..Default::default() }
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: vec!["PATH=/bin".into(), "A=image".into()],
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
            working_dir: Some("/srv".into()),
            user: None,
        }
    }

    #[test]
    fn args_follow_docker() {
        let mut s = spec();
        assert_eq!(args(&s, &image()), ["/entry", "serve"]);
        s.command = Some(vec!["run".into()]);
        assert_eq!(args(&s, &image()), ["/entry", "run"]);
        s.entrypoint = Some(vec!["sh".into(), "-c".into()]);
        s.command = None;
        assert_eq!(args(&s, &image()), ["sh", "-c"], "an explicit entrypoint drops the image's command");
    }

    #[test]
    fn env_overrides_image_env() {
        let mut s = spec();
        s.env = vec!["A=task".into(), "B=1".into()];
        assert_eq!(env(&s, &image()), ["PATH=/bin", "A=task", "B=1"]);
        assert!(env(&spec(), &ImageConfig::default())[0].starts_with("PATH=/usr/local/sbin"));
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
            .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(dir.path(), "nobody").unwrap(), (65534, 65534));
        assert_eq!(resolve_user(dir.path(), "nobody:staff").unwrap(), (65534, 50));
        assert_eq!(resolve_user(dir.path(), "1000:2000").unwrap(), (1000, 2000));
        assert!(resolve_user(dir.path(), "ghost").is_err());
        assert!(resolve_user(dir.path(), "nobody:ghosts").is_err());
    }

    #[test]
    fn runtime_spec_carries_limits_mounts_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec();
        s.memory = Some(64 << 20);
        s.memory_reservation = Some(32 << 20);
        s.cpu_shares = Some(512);
        s.readonly_rootfs = true;
        s.cap_add = vec!["NET_ADMIN".into()];
        s.cap_drop = vec!["KILL".into()];
        s.ulimits = vec![crate::runtime::Ulimit { name: "nofile".into(), soft: 123, hard: 456 }];
        s.binds = vec!["/srv/data:/data:ro".into()];
        s.network_mode = "host".into();
        let out = serde_json::to_value(runtime_spec(&s, &image(), dir.path(), "/berth/x", &Joined::default()).unwrap())
            .unwrap();
        assert_eq!(out["process"]["args"], json!(["/entry", "serve"]));
        assert_eq!(out["process"]["cwd"], "/srv");
        assert_eq!(out["linux"]["resources"]["memory"], json!({"limit": 64 << 20, "reservation": 32 << 20}));
        assert_eq!(out["linux"]["resources"]["cpu"]["shares"], 512);
        assert_eq!(out["linux"]["cgroupsPath"], "/berth/x");
        assert_eq!(out["root"]["readonly"], true);
        let caps = out["process"]["capabilities"]["effective"].as_array().unwrap();
        assert!(caps.contains(&json!("CAP_NET_ADMIN")) && !caps.contains(&json!("CAP_KILL")));
        assert!(
            out["process"]["rlimits"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}))
        );
        assert!(
            out["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/data" && m["options"] == json!(["rbind", "ro"]))
        );
        assert!(!out["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n["type"] == "network"), "host network");
        s.ulimits = vec![crate::runtime::Ulimit { name: "bogus".into(), soft: 1, hard: 1 }];
        assert!(runtime_spec(&s, &image(), dir.path(), "/berth/x", &Joined::default()).is_err());
    }

    fn built(s: &ContainerSpec, joined: &Joined<'_>) -> Value {
        let dir = tempfile::tempdir().unwrap();
        serde_json::to_value(runtime_spec(s, &image(), dir.path(), "/berth/x", joined).unwrap()).unwrap()
    }

    fn mount<'v>(out: &'v Value, destination: &str) -> Option<&'v Value> {
        out["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == destination)
    }

    #[test]
    fn devices_tmpfs_sysctls_swap_and_streams() {
        let mut s = spec();
        s.devices = vec![crate::runtime::DeviceSpec {
            host_path: "/dev/null".into(),
            container_path: "/dev/nothing".into(),
            permissions: "rw".into(),
        }];
        s.tmpfs = vec![crate::runtime::TmpfsSpec {
            container_path: "/scratch".into(),
            size_mib: 16,
            options: vec!["exec".into(), "mode=1777".into()],
        }];
        s.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
        s.memory = Some(64 << 20);
        s.memory_swap = Some(96 << 20);
        s.swappiness = Some(10);
        s.shm_size_mib = Some(128);
        s.tty = true;
        let out = built(&s, &Joined::default());
        assert_eq!(
            out["linux"]["devices"][0],
            json!({"path": "/dev/nothing", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0})
        );
        assert_eq!(
            out["linux"]["resources"]["devices"],
            json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
        );
        assert_eq!(
            mount(&out, "/scratch").unwrap()["options"],
            json!(["nosuid", "nodev", "exec", "mode=1777", "size=16m"])
        );
        assert_eq!(mount(&out, "/dev/shm").unwrap()["options"].as_array().unwrap().last().unwrap(), "size=128m");
        assert_eq!(out["linux"]["sysctl"], json!({"net.ipv4.ip_forward": "1"}));
        assert_eq!(out["linux"]["resources"]["memory"]["swap"], 96 << 20);
        assert_eq!(out["linux"]["resources"]["memory"]["swappiness"], 10);
        assert_eq!(
            (out["process"]["terminal"].clone(), out["process"]["noNewPrivileges"].clone()),
            (json!(true), json!(false))
        );
        s.devices[0].host_path = "/etc/hostname".into();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            runtime_spec(&s, &image(), dir.path(), "/berth/x", &Joined::default()),
            Err(BundleError::NotADevice(_))
        ));
    }

    #[test]
    fn tmpfs_options_merge_as_docker_merges_them() {
        let merged = merge_tmpfs_options(
            ["noexec", "nosuid", "nodev", "exec", "ro", "rw", "mode=700", "mode=1777", "size=1m"].map(String::from),
        );
        assert_eq!(merged, ["nosuid", "nodev", "exec", "rw", "mode=1777", "size=1m"]);
    }

    #[test]
    fn pid_and_ipc_modes() {
        let kinds = |out: &Value| -> Vec<String> {
            out["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string())
                .collect()
        };
        let mut s = spec();
        s.pid_mode = NamespaceMode::Host;
        s.ipc_mode = NamespaceMode::Host;
        let out = built(&s, &Joined::default());
        assert!(!kinds(&out).contains(&"pid".to_string()) && !kinds(&out).contains(&"ipc".to_string()));
        assert_eq!(mount(&out, "/dev/shm").unwrap()["source"], "/dev/shm");
        s.ipc_mode = NamespaceMode::None;
        assert!(mount(&built(&s, &Joined::default()), "/dev/shm").is_none(), "ipcMode none has no /dev/shm");
        s.pid_mode = NamespaceMode::Task;
        s.ipc_mode = NamespaceMode::Task;
        let shm = Path::new("/var/lib/berth/oci/holders/h/shm");
        let out = built(&s, &Joined { network: Some("/var/run/netns/n"), holder_pid: Some(4242), task_shm: Some(shm) });
        let ns = out["linux"]["namespaces"].as_array().unwrap();
        let path = |kind: &str| ns.iter().find(|n| n["type"] == kind).unwrap()["path"].clone();
        assert_eq!(path("pid"), "/proc/4242/ns/pid");
        assert_eq!(path("ipc"), "/proc/4242/ns/ipc");
        assert_eq!(path("network"), "/var/run/netns/n");
        assert_eq!(mount(&out, "/dev/shm").unwrap()["source"], shm.display().to_string());
        assert_eq!(path("uts"), Value::Null, "the rest stays the container's own");
    }

    #[test]
    fn privileged_gets_every_capability_and_device() {
        let mut s = spec();
        s.privileged = true;
        s.cap_drop = vec!["CHOWN".into()];
        let out = built(&s, &Joined::default());
        let caps = out["process"]["capabilities"]["effective"].as_array().unwrap();
        for cap in ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHOWN", "CAP_MKNOD"].into_iter().filter(|c| {
            let name = c.trim_start_matches("CAP_");
            all_capabilities().iter().any(|a| a == name)
        }) {
            assert!(caps.contains(&json!(cap)), "{cap}");
        }
        assert_eq!(out["linux"]["maskedPaths"], json!([]));
        assert_eq!(out["linux"]["readonlyPaths"], json!([]));
        assert!(
            out["linux"]["resources"]["devices"].as_array().unwrap().contains(&json!({"allow": true, "access": "rwm"}))
        );
        assert!(out["linux"]["devices"].as_array().unwrap().iter().any(|d| d["path"] == "/dev/null"));
        assert!(!mount(&out, "/sys").unwrap()["options"].as_array().unwrap().contains(&json!("ro")));
        let plain = built(&spec(), &Joined::default());
        assert!(!plain["process"]["capabilities"]["effective"].as_array().unwrap().contains(&json!("CAP_SYS_ADMIN")));
        assert_ne!(plain["linux"]["maskedPaths"], json!([]));
    }
}
