//! The kernel's own record of memory-cgroup OOM kills, read from `/dev/kmsg`.
//!
//! Docker learns of an OOM kill through an eventfd its shim registers on the container's
//! memory cgroup after the container has started. A process that exhausts its limit within
//! its first moments, on a busy machine, dies before that watcher exists: Docker then
//! reports exit 137 with `OOMKilled: false` and no `oom` event, and the cgroup, with its
//! `oom_kill` counter, is gone with the container. The kernel still logged the kill, naming
//! the cgroup (`oom-kill:...,oom_memcg=/<parent>/<id>,task_memcg=...`), which is where
//! kubelet's OOM watcher looks too. The kernel rate-limits that line (ten in five seconds),
//! so this is a second witness, consulted only when Docker saw nothing.

use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;

/// Whether the kernel log records an OOM kill inside the cgroup whose last path element
/// is `leaf` (a Docker container's full id). False when the log cannot be read.
pub fn oom_kill_logged(leaf: &str) -> bool {
    if leaf.is_empty() {
        return false;
    }
    let Ok(mut file) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg") else {
        return false;
    };
    // Each read returns one record; a record is at most about 8 KiB.
    let mut record = vec![0u8; 16 * 1024];
    loop {
        match file.read(&mut record) {
            Ok(0) => return false,
            Ok(n) => {
                if names_oom_kill_in(&String::from_utf8_lossy(&record[..n]), leaf) {
                    return true;
                }
            }
            // EPIPE: the record we were at was overwritten; the next read goes on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // EAGAIN: the end of the buffer.
            Err(_) => return false,
        }
    }
}

/// Whether one `/dev/kmsg` record (`prio,seq,usec,flags;message`) is the kernel's OOM-kill
/// summary for a cgroup whose path ends in `leaf`, as the limit that was hit or as the
/// victim's own.
fn names_oom_kill_in(record: &str, leaf: &str) -> bool {
    let message = record.split_once(';').map_or(record, |(_, m)| m);
    let Some(fields) = message.trim_end().strip_prefix("oom-kill:") else {
        return false;
    };
    fields.split(',').any(|field| {
        let path = field.strip_prefix("oom_memcg=").or_else(|| field.strip_prefix("task_memcg="));
        path.is_some_and(|p| p.rsplit('/').next() == Some(leaf))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2609248bd3c83ef37100a48248bbbfc088dcde658f18c3122c2d1bef55103da3";

    fn record(memcg: &str) -> String {
        format!(
            "6,1234,925453461,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset={ID},\
             mems_allowed=0,oom_memcg={memcg},task_memcg={memcg},task=dd,pid=29664,uid=0\n"
        )
    }

    #[test]
    fn a_kill_in_the_containers_cgroup_is_found_by_its_id() {
        assert!(names_oom_kill_in(&record(&format!("/berth/task-1/{ID}")), ID));
        assert!(names_oom_kill_in(&record(&format!("/docker/{ID}")), ID));
    }

    #[test]
    fn other_cgroups_and_other_messages_are_not_taken_for_it() {
        assert!(!names_oom_kill_in(&record("/berth/task-1/0123"), ID));
        // The id as a parent, or in the cpuset field only, is not the container's cgroup.
        assert!(!names_oom_kill_in(&record(&format!("/{ID}/child")), ID));
        let killed = format!("3,1235,925453462,-;Memory cgroup out of memory: Killed process 29664 (dd) {ID}");
        assert!(!names_oom_kill_in(&killed, ID));
        assert!(!names_oom_kill_in("", ID));
    }

    #[test]
    fn a_kill_of_the_tasks_limit_names_the_victims_cgroup() {
        // A task-level limit (the parent) was hit; the victim ran in the container's cgroup.
        let line = format!(
            "6,9,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/berth/task-1,task_memcg=/berth/task-1/{ID},task=dd"
        );
        assert!(names_oom_kill_in(&line, ID));
    }
}
