//! Where the serving threads run: by default each is kept on a core of its own (the first
//! N cores the process may use), as HAProxy's `cpu-map` and nginx's `worker_cpu_affinity`
//! place their workers. Left to the kernel, two serving threads sometimes share a core while
//! the other runs the targets or the clients, and every connection of the thread that waits
//! waits with it: in `bench/lb.py` that made the p99 1.5 to 1.8 times as long (see
//! `docs/performance.md`).

use std::io;

/// How the serving threads are placed on the machine's cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Affinity {
    /// Serving thread `i` stays on the `i`-th core the process may use, when there are at
    /// least as many cores as threads; otherwise the kernel places them.
    #[default]
    Cores,
    /// The kernel places them.
    Unpinned,
}

impl std::str::FromStr for Affinity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cores" => Ok(Affinity::Cores),
            "none" => Ok(Affinity::Unpinned),
            _ => Err(format!("{s:?} is not a placement of the serving threads: expected cores or none")),
        }
    }
}

/// The core each of `threads` serving threads is kept on: the first `threads` of `allowed`
/// (the cores the process may use, in order). `None` when there are fewer cores than
/// threads: pinned threads sharing a core could not move away from each other.
pub fn plan(threads: usize, allowed: &[usize]) -> Option<Vec<usize>> {
    (threads <= allowed.len()).then(|| allowed[..threads].to_vec())
}

/// The cores the calling thread may run on, in increasing order.
pub fn allowed() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the kernel writes at most its size.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        set
    };
    // SAFETY: CPU_ISSET reads the set within its size (CPU_SETSIZE bits).
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// Keeps the calling thread on `cpu`.
pub fn pin(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} is beyond the kernel's set")));
    }
    // SAFETY: `cpu` is within the set's size, checked above.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_its_own_core_when_there_are_enough() {
        assert_eq!(plan(2, &[0, 1]), Some(vec![0, 1]));
        assert_eq!(plan(2, &[3, 5, 7]), Some(vec![3, 5]));
        assert_eq!(plan(3, &[0, 1]), None);
        assert_eq!(plan(0, &[]), Some(vec![]));
    }

    #[test]
    fn placements_parse_from_their_flag_values() {
        assert_eq!("cores".parse::<Affinity>(), Ok(Affinity::Cores));
        assert_eq!("none".parse::<Affinity>(), Ok(Affinity::Unpinned));
        assert!("all".parse::<Affinity>().unwrap_err().contains("expected cores or none"));
    }

    #[test]
    fn a_pinned_thread_runs_on_its_core_only() {
        let cores = allowed().unwrap();
        assert!(!cores.is_empty());
        let last = *cores.last().unwrap();
        let seen = std::thread::spawn(move || {
            pin(last).unwrap();
            allowed().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![last]);
        // The caller's own set is untouched.
        assert_eq!(allowed().unwrap(), cores);
        assert!(pin(libc::CPU_SETSIZE as usize).is_err());
    }
}
