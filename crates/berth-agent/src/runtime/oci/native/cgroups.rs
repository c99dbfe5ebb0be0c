//! A container's cgroup: its directory in every hierarchy the host mounts (cgroup v1 gives
//! one per controller; v2 one in all), the limits of the bundle's `linux.resources` written
//! there, and the device rules runc also gives: nothing but the usual character devices
//! (`/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `console`, `ptmx`, the
//! terminals, `tun`), then what the bundle allows.
//!
//! Device rules need the v1 `devices` controller: on a host with cgroup v2 alone they would
//! take an eBPF program, which this runtime does not load, so it refuses to run there.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

const ROOT: &str = "/sys/fs/cgroup";

/// One hierarchy the host mounts: where, what kind, and its mount options (`cpu`,
/// `name=systemd`); `unified` for cgroup v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    pub unified: bool,
    pub options: String,
}

impl Hierarchy {
    fn controls(&self, controller: &str) -> bool {
        self.options.split(',').any(|o| o == controller)
    }
}

/// The cgroup hierarchies in `mountinfo` (`/proc/self/mountinfo`'s text) under `/sys/fs/cgroup`.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let Some(mountpoint) = left.split(' ').nth(4) else { continue };
        let mut right = right.split(' ');
        let (Some(kind), Some(_source), Some(options)) = (right.next(), right.next(), right.next()) else { continue };
        if !mountpoint.starts_with(ROOT) || !matches!(kind, "cgroup" | "cgroup2") {
            continue;
        }
        let options = options.split(',').filter(|o| !matches!(*o, "rw" | "ro")).collect::<Vec<_>>().join(",");
        out.push(Hierarchy { mountpoint: mountpoint.into(), unified: kind == "cgroup2", options });
    }
    out
}

/// The host's hierarchies.
pub fn host_hierarchies() -> io::Result<Vec<Hierarchy>> {
    Ok(hierarchies(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Whether the host has cgroup v2 alone (no v1 `devices` controller).
pub fn unified_only(hierarchies: &[Hierarchy]) -> bool {
    !hierarchies.iter().any(|h| h.controls("devices"))
}

/// A device rule as `devices.allow`/`devices.deny` take it (`c 1:3 rwm`); `true` to allow.
fn device_rule(rule: &LinuxDeviceCgroup) -> (bool, String) {
    use oci_spec::runtime::LinuxDeviceType;
    let kind = match rule.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::B) => "b",
        _ => "a",
    };
    let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    (rule.allow(), format!("{kind} {}:{} {access}", number(rule.major()), number(rule.minor())))
}

/// The devices every container may use, as runc allows them.
pub const DEFAULT_DEVICES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// The files of the container's cgroup to write, in order, as `(controller, file, value)`:
/// its limits, then the device rules (deny all, the defaults, the bundle's own).
pub fn settings(
    resources: Option<&LinuxResources>,
    unified: bool,
) -> Result<Vec<(&'static str, String, String)>, String> {
    let mut out: Vec<(&'static str, String, String)> = Vec::new();
    let mut set = |controller: &'static str, file: &str, value: String| out.push((controller, file.into(), value));
    let Some(r) = resources else {
        return Ok(device_settings(&[], unified));
    };
    if r.block_io().is_some() || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) || r.network().is_some() {
        return Err("the berth runtime sets memory, cpu, pids and devices limits only".into());
    }
    if let Some(m) = r.memory() {
        if unified {
            if let Some(limit) = m.limit() {
                set("memory", "memory.max", limit.to_string());
                if let Some(swap) = m.swap() {
                    set("memory", "memory.swap.max", (swap - limit).max(0).to_string());
                }
            }
            if let Some(low) = m.reservation() {
                set("memory", "memory.low", low.to_string());
            }
            if m.swappiness().is_some() {
                return Err("swappiness has no equivalent in cgroup v2".into());
            }
        } else {
            if let Some(limit) = m.limit() {
                set("memory", "memory.limit_in_bytes", limit.to_string());
            }
            if let Some(swap) = m.swap() {
                set("memory", "memory.memsw.limit_in_bytes", swap.to_string());
            }
            if let Some(soft) = m.reservation() {
                set("memory", "memory.soft_limit_in_bytes", soft.to_string());
            }
            if let Some(s) = m.swappiness() {
                set("memory", "memory.swappiness", s.to_string());
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares() {
            if unified {
                set("cpu", "cpu.weight", crate::cgroup::weight(shares).to_string());
            } else {
                set("cpu", "cpu.shares", shares.to_string());
            }
        }
        if let Some(quota) = cpu.quota() {
            let period = cpu.period().unwrap_or(100_000);
            if unified {
                set("cpu", "cpu.max", format!("{quota} {period}"));
            } else {
                set("cpu", "cpu.cfs_period_us", period.to_string());
                set("cpu", "cpu.cfs_quota_us", quota.to_string());
            }
        }
        if let Some(cpus) = cpu.cpus() {
            set("cpuset", "cpuset.cpus", cpus.clone());
        }
    }
    if let Some(p) = r.pids() {
        let max = if p.limit() > 0 { p.limit().to_string() } else { "max".into() };
        set("pids", "pids.max", max);
    }
    out.extend(device_settings(r.devices().as_deref().unwrap_or_default(), unified));
    Ok(out)
}

fn device_settings(rules: &[LinuxDeviceCgroup], unified: bool) -> Vec<(&'static str, String, String)> {
    if unified {
        return Vec::new();
    }
    let mut out = vec![("devices", "devices.deny".to_string(), "a *:* rwm".to_string())];
    out.extend(DEFAULT_DEVICES.iter().map(|d| ("devices", "devices.allow".into(), d.to_string())));
    for rule in rules {
        let (allow, text) = device_rule(rule);
        out.push(("devices", if allow { "devices.allow" } else { "devices.deny" }.into(), text));
    }
    out
}

/// The container's cgroup, one directory per hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup {
    dirs: Vec<(Hierarchy, PathBuf)>,
}

impl Cgroup {
    /// The cgroup at `path` (`/berth/<name>`) in each of `hierarchies`; nothing is made yet.
    pub fn at(hierarchies: &[Hierarchy], path: &str) -> Cgroup {
        let rel = path.trim_start_matches('/');
        Cgroup { dirs: hierarchies.iter().map(|h| (h.clone(), h.mountpoint.join(rel))).collect() }
    }

    /// Makes the directories and writes `settings`. A new cpuset directory gets its parent's
    /// cpus and memory nodes first: the kernel leaves them empty, and no task may join it so.
    pub fn create(&self, settings: &[(&'static str, String, String)]) -> io::Result<()> {
        for (h, dir) in &self.dirs {
            if h.controls("cpuset") {
                make_cpuset(&h.mountpoint, dir)?;
            } else {
                std::fs::create_dir_all(dir)?;
            }
        }
        for (controller, file, value) in settings {
            let Some((_, dir)) = self.dirs.iter().find(|(h, _)| h.unified || h.controls(controller)) else {
                return Err(io::Error::other(format!("no {controller} cgroup controller on this host for {file}")));
            };
            std::fs::write(dir.join(file), value)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {value}: {e}", dir.join(file).display())))?;
        }
        Ok(())
    }

    /// Puts process `pid` in every directory.
    pub fn join(&self, pid: u32) -> io::Result<()> {
        for (_, dir) in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Each directory's `cgroup.procs`, for a process to join with "0" (itself).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.join("cgroup.procs")).collect()
    }

    /// The pids in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let Some((_, dir)) = self.dirs.iter().find(|(h, _)| h.unified || h.controls("pids") || h.controls("memory"))
        else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Kills every process in it, then removes the directories (waiting a little for the
    /// kernel to let go of them).
    pub fn destroy(&self) -> io::Result<()> {
        for _ in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill takes plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut last = Ok(());
        for (_, dir) in &self.dirs {
            let mut removed = std::fs::remove_dir(dir);
            for _ in 0..100 {
                match &removed {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        removed = std::fs::remove_dir(dir);
                    }
                    _ => break,
                }
            }
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => last = Err(e),
                _ => {}
            }
        }
        last
    }
}

/// Makes `dir` and its missing parents under `root` in the cpuset hierarchy, each with its
/// parent's `cpuset.cpus` and `cpuset.mems`.
fn make_cpuset(root: &Path, dir: &Path) -> io::Result<()> {
    let mut at = root.to_path_buf();
    let rel = dir.strip_prefix(root).map_err(io::Error::other)?;
    for part in rel.components() {
        let parent = at.clone();
        at.push(part);
        if at.is_dir() {
            continue;
        }
        match std::fs::create_dir(&at) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = std::fs::read_to_string(at.join(file)).unwrap_or_default();
            if mine.trim().is_empty() {
                std::fs::write(at.join(file), std::fs::read_to_string(parent.join(file))?.trim())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/devices rw,nosuid - cgroup cgroup rw,devices
33 30 0:29 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
40 1 0:31 / /mnt/other rw - cgroup cgroup rw,memory
";

    #[test]
    fn hierarchies_come_from_mountinfo() {
        let found = hierarchies(MOUNTINFO);
        let names: Vec<_> =
            found.iter().map(|h| (h.mountpoint.display().to_string(), h.unified, h.options.as_str())).collect();
        assert_eq!(
            names,
            [
                ("/sys/fs/cgroup/cpu".to_string(), false, "cpu"),
                ("/sys/fs/cgroup/devices".to_string(), false, "devices"),
                ("/sys/fs/cgroup/systemd".to_string(), false, "name=systemd"),
                ("/sys/fs/cgroup/unified".to_string(), true, "nsdelegate"),
            ]
        );
        assert!(!unified_only(&found));
        assert!(unified_only(&hierarchies("34 30 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")));
    }

    fn resources(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn limits_and_device_rules_in_order() {
        let r = resources(serde_json::json!({
            "memory": {"limit": 536870912, "reservation": 268435456},
            "cpu": {"shares": 256},
            "pids": {"limit": 100},
            "devices": [{"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                        {"allow": false, "access": "rwm"}]
        }));
        let v1 = settings(Some(&r), false).unwrap();
        let files: Vec<_> = v1.iter().map(|(_, f, v)| format!("{f}={v}")).collect();
        assert_eq!(
            files[..4],
            [
                "memory.limit_in_bytes=536870912",
                "memory.soft_limit_in_bytes=268435456",
                "cpu.shares=256",
                "pids.max=100"
            ]
        );
        assert_eq!(files[4], "devices.deny=a *:* rwm", "everything is denied before the defaults are allowed");
        assert_eq!(files[5..5 + DEFAULT_DEVICES.len()].len(), DEFAULT_DEVICES.len());
        assert_eq!(files[files.len() - 2..], ["devices.allow=c 10:229 rw", "devices.deny=a *:* rwm"]);
        let v2 = settings(Some(&r), true).unwrap();
        let files: Vec<_> = v2.iter().map(|(_, f, v)| format!("{f}={v}")).collect();
        assert_eq!(files, ["memory.max=536870912", "memory.low=268435456", "cpu.weight=10", "pids.max=100"]);
        let privileged = resources(serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]}));
        assert_eq!(settings(Some(&privileged), false).unwrap().last().unwrap().2, "a *:* rwm");
        let blkio = resources(serde_json::json!({"blockIO": {"weight": 10}}));
        assert!(settings(Some(&blkio), false).unwrap_err().contains("memory, cpu, pids and devices"));
    }
}
