//! Readings of a container on this machine, for the endpoint's stats: its cgroup (v1: the
//! `cpuacct`, `cpu`, `memory`, `pids` and `blkio` hierarchies; v2: its one directory), the
//! machine's cpu time from `/proc/stat`, and, for a container with a network namespace of its
//! own, the interfaces of that namespace from `/proc/PID/net/dev` of one of its processes. The
//! file formats are parsed by pure functions, tested here.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::stats::{CpuReading, IoEntry, MemoryReading, NetCounters, Reading, Readings};

const ROOT: &str = "/sys/fs/cgroup";
/// What cgroup v1 writes for "no limit" is above this; Docker shows the machine's memory then.
const UNLIMITED: u64 = 1 << 62;

/// The host's cgroup filesystem and `/proc`.
pub struct HostReadings;

impl Readings for HostReadings {
    fn read(&self, cgroup: &str, network: bool) -> Option<Reading> {
        let relative = cgroup.trim_start_matches('/');
        let unified = Path::new(ROOT).join("cgroup.controllers").exists();
        let (mut reading, procs) = if unified { v2(relative)? } else { v1(relative)? };
        let (host_total, cpus) = text(Path::new("/proc/stat")).as_deref().map(proc_stat).unwrap_or_default();
        reading.cpu.host_total = ticks_to_ns(host_total);
        reading.cpu.online_cpus = if reading.cpu.percpu.is_empty() { cpus } else { reading.cpu.percpu.len() as u64 };
        if reading.memory.limit >= UNLIMITED || reading.memory.limit == 0 {
            reading.memory.limit = host_memory().unwrap_or(reading.memory.limit);
        }
        if network {
            let pid = text(&procs).and_then(|t| t.lines().next().map(str::to_string));
            let dev = pid.and_then(|p| text(&Path::new("/proc").join(p.trim()).join("net/dev")));
            reading.networks = dev.as_deref().map(net_dev).unwrap_or_default();
        }
        Some(reading)
    }
}

fn text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(path: &Path) -> Option<u64> {
    text(path)?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`), in their order.
pub fn keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn get(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

fn ticks_to_ns(ticks: u64) -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    ticks.saturating_mul(1_000_000_000 / hz)
}

/// `/proc/stat`'s first line summed (all cpu time, in clock ticks), and the number of cpus.
pub fn proc_stat(text: &str) -> (u64, u64) {
    let total = text
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).take(8).filter_map(|n| n.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let cpus = text.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit));
    (total, cpus.count() as u64)
}

/// cgroup v1's `blkio.throttle.*` lines (`8:0 Read 4096`); the `Total` line is not a device.
pub fn blkio(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (major, minor) = parts.next()?.split_once(':')?;
            Some(IoEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: parts.next()?.to_string(),
                value: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// cgroup v2's `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) as Docker shows it: bytes
/// and operations, each `Read` and `Write`.
pub fn io_stat(text: &str) -> (Vec<IoEntry>, Vec<IoEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((Ok(major), Ok(minor))) =
            parts.next().and_then(|d| d.split_once(':')).map(|(a, b)| (a.parse(), b.parse()))
        else {
            continue;
        };
        for (key, value) in parts.filter_map(|p| p.split_once('=')) {
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            if let Ok(value) = value.parse() {
                list.push(IoEntry { major, minor, op: op.into(), value });
            }
        }
    }
    (bytes, ios)
}

/// `/proc/PID/net/dev`: every interface but `lo`.
pub fn net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, counters) = l.split_once(':')?;
            let name = name.trim();
            let n: Vec<u64> = counters.split_whitespace().filter_map(|c| c.parse().ok()).collect();
            if name == "lo" || n.len() < 12 {
                return None;
            }
            let c = NetCounters {
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            };
            Some((name.to_string(), c))
        })
        .collect()
}

fn host_memory() -> Option<u64> {
    let meminfo = text(Path::new("/proc/meminfo"))?;
    let kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

fn empty_reading() -> Reading {
    Reading {
        at: SystemTime::now(),
        cpu: CpuReading::default(),
        memory: MemoryReading::default(),
        pids: None,
        io_service_bytes: Vec::new(),
        io_serviced: Vec::new(),
        networks: Vec::new(),
    }
}

/// The container in cgroup v1, and the file listing its processes; `None` once it is gone.
fn v1(relative: &str) -> Option<(Reading, PathBuf)> {
    let dir = |controller: &str| Path::new(ROOT).join(controller).join(relative);
    let mut r = empty_reading();
    r.cpu.total = number(&dir("cpuacct").join("cpuacct.usage"))?;
    let percpu = text(&dir("cpuacct").join("cpuacct.usage_percpu")).unwrap_or_default();
    r.cpu.percpu = percpu.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let times = keyed(&text(&dir("cpuacct").join("cpuacct.stat")).unwrap_or_default());
    (r.cpu.user, r.cpu.system) = (ticks_to_ns(get(&times, "user")), ticks_to_ns(get(&times, "system")));
    let throttling = keyed(&text(&dir("cpu").join("cpu.stat")).unwrap_or_default());
    r.cpu.periods = get(&throttling, "nr_periods");
    r.cpu.throttled_periods = get(&throttling, "nr_throttled");
    r.cpu.throttled_time = get(&throttling, "throttled_time");
    let memory = dir("memory");
    r.memory = MemoryReading {
        usage: number(&memory.join("memory.usage_in_bytes")).unwrap_or(0),
        max_usage: number(&memory.join("memory.max_usage_in_bytes")),
        limit: number(&memory.join("memory.limit_in_bytes")).unwrap_or(0),
        stat: keyed(&text(&memory.join("memory.stat")).unwrap_or_default()),
    };
    r.pids = number(&dir("pids").join("pids.current"));
    let blk = |name: &str| {
        let file = dir("blkio").join(format!("blkio.throttle.{name}"));
        let recursive = dir("blkio").join(format!("blkio.throttle.{name}_recursive"));
        blkio(&text(&recursive).or_else(|| text(&file)).unwrap_or_default())
    };
    (r.io_service_bytes, r.io_serviced) = (blk("io_service_bytes"), blk("io_serviced"));
    Some((r, memory.join("cgroup.procs")))
}

/// The container in cgroup v2, and the file listing its processes; `None` once it is gone.
fn v2(relative: &str) -> Option<(Reading, PathBuf)> {
    let dir = Path::new(ROOT).join(relative);
    let mut r = empty_reading();
    let cpu = keyed(&text(&dir.join("cpu.stat"))?);
    r.cpu.total = get(&cpu, "usage_usec") * 1000;
    r.cpu.user = get(&cpu, "user_usec") * 1000;
    r.cpu.system = get(&cpu, "system_usec") * 1000;
    r.cpu.periods = get(&cpu, "nr_periods");
    r.cpu.throttled_periods = get(&cpu, "nr_throttled");
    r.cpu.throttled_time = get(&cpu, "throttled_usec") * 1000;
    r.memory = MemoryReading {
        usage: number(&dir.join("memory.current")).unwrap_or(0),
        max_usage: number(&dir.join("memory.peak")),
        // "max": no limit, shown as the machine's memory.
        limit: number(&dir.join("memory.max")).unwrap_or(u64::MAX),
        stat: keyed(&text(&dir.join("memory.stat")).unwrap_or_default()),
    };
    r.pids = number(&dir.join("pids.current"));
    (r.io_service_bytes, r.io_serviced) = io_stat(&text(&dir.join("io.stat")).unwrap_or_default());
    Some((r, dir.join("cgroup.procs")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_parse() {
        assert_eq!(keyed("cache 0\nrss 606208\nbad\n"), [("cache".into(), 0), ("rss".into(), 606_208)]);
        let stat = "cpu  10 2 30 400 5 0 3 0 0 0\ncpu0 5 1 15 200 2 0 1 0 0 0\ncpu1 5 1 15 200 3 0 2 0 0 0\nintr 1 2\n";
        assert_eq!(proc_stat(stat), (450, 2));
        assert_eq!(
            blkio("8:0 Read 4096\n8:0 Write 512\nTotal 4608\n"),
            [
                IoEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 },
                IoEntry { major: 8, minor: 0, op: "Write".into(), value: 512 }
            ]
        );
        let (bytes, ios) = io_stat("259:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n");
        assert_eq!(bytes.iter().map(|e| (e.op.as_str(), e.value)).collect::<Vec<_>>(), [("Read", 100), ("Write", 200)]);
        assert_eq!(
            ios.iter().map(|e| (e.op.as_str(), e.value, e.major)).collect::<Vec<_>>(),
            [("Read", 3, 259), ("Write", 4, 259)]
        );
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    8400      20    1    2    0     0          0         0     4200      10    3    4    0     0       0          0\n";
        let nets = net_dev(dev);
        assert_eq!(nets.len(), 1, "lo is left out");
        assert_eq!(nets[0].0, "eth0");
        assert_eq!(
            nets[0].1,
            NetCounters {
                rx_bytes: 8400,
                rx_packets: 20,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 4200,
                tx_packets: 10,
                tx_errors: 3,
                tx_dropped: 4
            }
        );
    }

    #[test]
    fn a_cgroup_that_is_not_there_has_no_reading() {
        assert!(HostReadings.read("/berth-tasks/no-such-task/no-such-container", true).is_none());
    }

    #[test]
    fn this_process_cgroup_reads_as_real_numbers() {
        // The agent's own cgroup (v1: the memory hierarchy's path; v2: the unified one) has
        // at least this test process in it.
        let own = text(Path::new("/proc/self/cgroup")).unwrap_or_default();
        let unified = Path::new(ROOT).join("cgroup.controllers").exists();
        let path = own.lines().find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            let wanted = if unified { controllers.is_empty() } else { controllers.split(',').any(|c| c == "cpuacct") };
            wanted.then(|| path.to_string())
        });
        let path = path.expect("this process is in a cgroup with cpu accounting");
        let r = HostReadings.read(&path, true).expect("our own cgroup");
        assert!(r.cpu.total > 0 && r.cpu.host_total > 0 && r.cpu.online_cpus > 0, "{r:?}");
        assert!(r.memory.limit > 0);
    }
}
