//! The OCI runtime bundle (`config.json`) for one container: oci-spec's defaults (those of
//! `runc spec`), with the container definition and the image configuration applied the way
//! the Docker Engine applies them.

use std::path::Path;

use berth_image::store::ImageConfig;
use oci_spec::runtime::Spec;
use serde_json::{Value, json};
use thiserror::Error;

use crate::runtime::ContainerSpec;

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
    #[error("unknown ulimit {0:?}")]
    UnknownUlimit(String),
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

/// The runtime configuration for `spec` on the mounted `rootfs`, in cgroup `cgroups_path`;
/// `network_namespace` is a prepared namespace to join (bridge mode) instead of a new one.
pub fn runtime_spec(
    spec: &ContainerSpec,
    image: &ImageConfig,
    rootfs: &Path,
    cgroups_path: &str,
    network_namespace: Option<&str>,
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
    let mut rlimits = v["process"]["rlimits"].as_array().cloned().unwrap_or_default();
    for u in &spec.ulimits {
        let kind = rlimit(&u.name)?;
        rlimits.retain(|r| r["type"] != kind);
        rlimits.push(json!({"type": kind, "soft": u.soft, "hard": u.hard}));
    }
    v["process"]["rlimits"] = Value::Array(rlimits);
    for set in ["bounding", "effective", "permitted"] {
        let mut caps: Vec<String> = v["process"]["capabilities"][set]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(String::from))
            .collect();
        for add in &spec.cap_add {
            let name = format!("CAP_{}", add.trim_start_matches("CAP_"));
            if !caps.contains(&name) {
                caps.push(name);
            }
        }
        for drop in &spec.cap_drop {
            let name = format!("CAP_{}", drop.trim_start_matches("CAP_"));
            caps.retain(|c| *c != name);
        }
        v["process"]["capabilities"][set] = json!(caps);
    }
    v["root"] = json!({"path": rootfs.display().to_string(), "readonly": spec.readonly_rootfs});
    v["hostname"] = json!(spec.hostname.clone().unwrap_or_else(|| spec.name.chars().take(63).collect()));
    let mounts = v["mounts"].as_array_mut().expect("default mounts");
    for bind in &spec.binds {
        let mut parts = bind.splitn(3, ':');
        let (source, destination, mode) =
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next());
        let access = if mode == Some("ro") { "ro" } else { "rw" };
        mounts
            .push(json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind", access]}));
    }
    let mut memory = json!({});
    if let Some(limit) = spec.memory {
        memory["limit"] = json!(limit);
    }
    if let Some(reservation) = spec.memory_reservation {
        memory["reservation"] = json!(reservation);
    }
    v["linux"]["resources"]["memory"] = memory;
    if let Some(shares) = spec.cpu_shares {
        v["linux"]["resources"]["cpu"] = json!({"shares": shares});
    }
    v["linux"]["cgroupsPath"] = json!(cgroups_path);
    if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
        if spec.network_mode == "host" {
            ns.retain(|n| n["type"] != "network");
        } else if let Some(path) = network_namespace {
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = json!(path);
            }
        }
    }
    serde_json::from_value(v).map_err(invalid)
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
        let out = serde_json::to_value(runtime_spec(&s, &image(), dir.path(), "/berth/x", None).unwrap()).unwrap();
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
        assert!(runtime_spec(&s, &image(), dir.path(), "/berth/x", None).is_err());
    }
}
