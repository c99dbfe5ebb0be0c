//! The task cgroup: one cgroup per task, `berth-tasks/<task id>`, holding the task-level cpu
//! and memory of its definition, with the task's containers beneath it (each with its own
//! limits). Works on cgroup v1 (the `cpu` and `memory` hierarchies) and v2.
//!
//! The runner reaches it through [`TaskCgroups`], so tests run tasks without touching the
//! host's cgroups ([`RecordingCgroups`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The parent of every task cgroup, relative to a hierarchy's root.
pub const PARENT: &str = "berth-tasks";

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The task cgroup's path as runtimes take it (`/berth-tasks/<id>`).
pub fn path(task_id: &str) -> String {
    format!("/{PARENT}/{task_id}")
}

/// The directories of the task cgroup in each hierarchy that carries a limit.
fn dirs(task_id: &str) -> Vec<(PathBuf, &'static str)> {
    if unified() {
        vec![(Path::new(ROOT).join(PARENT).join(task_id), "")]
    } else {
        vec![
            (Path::new(ROOT).join("memory").join(PARENT).join(task_id), "memory"),
            (Path::new(ROOT).join("cpu").join(PARENT).join(task_id), "cpu"),
        ]
    }
}

/// cgroup v2's cpu.weight for v1-style shares (the conversion runc and systemd use).
pub(crate) fn weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9_999 / 262_142
}

/// The CFS period the task-level cpu quota is measured over, in microseconds.
const PERIOD_US: u64 = 100_000;

/// The quota per period for `cpu` units (1024 = one cpu): task-level cpu is a hard limit, as
/// on ECS (at least 1 ms, the kernel's minimum).
fn quota_us(cpu: u64) -> u64 {
    (cpu * PERIOD_US / 1024).max(1_000)
}

/// Creates the task cgroup with the task-level limits (`cpu` units, `memory` MiB).
pub fn create(task_id: &str, cpu: Option<u64>, memory_mib: Option<u64>) -> io::Result<String> {
    if unified() {
        let parent = Path::new(ROOT).join(PARENT);
        fs::create_dir_all(&parent)?;
        let _ = fs::write(Path::new(ROOT).join("cgroup.subtree_control"), "+cpu +memory");
        let _ = fs::write(parent.join("cgroup.subtree_control"), "+cpu +memory");
    }
    for (dir, controller) in dirs(task_id) {
        fs::create_dir_all(&dir)?;
        match (controller, unified()) {
            (_, true) => {
                if let Some(m) = memory_mib {
                    fs::write(dir.join("memory.max"), (m << 20).to_string())?;
                }
                if let Some(c) = cpu {
                    fs::write(dir.join("cpu.weight"), weight(c).to_string())?;
                    fs::write(dir.join("cpu.max"), format!("{} {PERIOD_US}", quota_us(c)))?;
                }
                // Containers beneath need the controllers too.
                let _ = fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory");
            }
            ("memory", false) => {
                if let Some(m) = memory_mib {
                    fs::write(dir.join("memory.limit_in_bytes"), (m << 20).to_string())?;
                }
            }
            (_, false) => {
                if let Some(c) = cpu {
                    fs::write(dir.join("cpu.shares"), c.max(2).to_string())?;
                    fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                    fs::write(dir.join("cpu.cfs_quota_us"), quota_us(c).to_string())?;
                }
            }
        }
    }
    Ok(path(task_id))
}

/// Removes the task cgroup once its containers are gone (missing is fine).
pub fn remove(task_id: &str) {
    for (dir, _) in dirs(task_id) {
        let _ = fs::remove_dir(&dir);
    }
}

/// What a task cgroup has used: cpu time since it was made, and memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The usage of every task cgroup on this machine, by task id.
pub fn usage() -> Vec<(String, Usage)> {
    let v2 = unified();
    let parent = if v2 { Path::new(ROOT).join(PARENT) } else { Path::new(ROOT).join("cpuacct").join(PARENT) };
    let ids = fs::read_dir(&parent).into_iter().flatten().flatten().filter(|e| e.path().is_dir());
    ids.filter_map(|e| {
        let id = e.file_name().into_string().ok()?;
        let usage = if v2 {
            let dir = Path::new(ROOT).join(PARENT).join(&id);
            let stat = fs::read_to_string(dir.join("cpu.stat")).ok()?;
            let usec: u64 = stat.lines().find_map(|l| l.strip_prefix("usage_usec "))?.trim().parse().ok()?;
            Usage { cpu_nanos: usec * 1000, memory_bytes: read_number(&dir.join("memory.current")).unwrap_or(0) }
        } else {
            let memory = Path::new(ROOT).join("memory").join(PARENT).join(&id).join("memory.usage_in_bytes");
            Usage {
                cpu_nanos: read_number(&e.path().join("cpuacct.usage"))?,
                memory_bytes: read_number(&memory).unwrap_or(0),
            }
        };
        Some((id, usage))
    })
    .collect()
}

/// Creating and removing task cgroups, and reading what they used.
pub trait TaskCgroups: Send + Sync + 'static {
    /// Creates the task cgroup with its limits; returns the path runtimes take as parent.
    fn create(&self, task_id: &str, cpu: Option<u64>, memory_mib: Option<u64>) -> io::Result<String>;
    fn remove(&self, task_id: &str);
    /// Every task cgroup's usage, by task id.
    fn usage(&self) -> Vec<(String, Usage)>;
}

/// The host's cgroup filesystem.
pub struct HostCgroups;

impl TaskCgroups for HostCgroups {
    fn create(&self, task_id: &str, cpu: Option<u64>, memory_mib: Option<u64>) -> io::Result<String> {
        create(task_id, cpu, memory_mib)
    }

    fn remove(&self, task_id: &str) {
        remove(task_id)
    }

    fn usage(&self) -> Vec<(String, Usage)> {
        usage()
    }
}

/// A task cgroup as created: the task id, cpu units and memory MiB.
pub type Created = (String, Option<u64>, Option<u64>);

/// Cgroups that only exist in memory: records what was created (with its limits) and removed.
#[derive(Default)]
pub struct RecordingCgroups {
    pub created: std::sync::Mutex<Vec<Created>>,
    pub removed: std::sync::Mutex<Vec<String>>,
    /// What [`TaskCgroups::usage`] answers, set by the test.
    pub usage: std::sync::Mutex<Vec<(String, Usage)>>,
}

impl TaskCgroups for RecordingCgroups {
    fn create(&self, task_id: &str, cpu: Option<u64>, memory_mib: Option<u64>) -> io::Result<String> {
        self.created.lock().expect("cgroups").push((task_id.to_string(), cpu, memory_mib));
        Ok(path(task_id))
    }

    fn remove(&self, task_id: &str) {
        self.removed.lock().expect("cgroups").push(task_id.to_string());
    }

    fn usage(&self) -> Vec<(String, Usage)> {
        self.usage.lock().expect("cgroups").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_cpu_is_a_quota_of_its_share_of_a_cpu() {
        assert_eq!(quota_us(1024), 100_000);
        assert_eq!(quota_us(256), 25_000);
        assert_eq!(quota_us(4096), 400_000);
        assert_eq!(quota_us(2), 1_000);
    }

    #[test]
    fn shares_map_to_weights_as_runc_does() {
        assert_eq!(weight(2), 1);
        assert_eq!(weight(1024), 39);
        assert_eq!(weight(262_144), 10_000);
        assert_eq!(path("abc"), "/berth-tasks/abc");
    }
}
