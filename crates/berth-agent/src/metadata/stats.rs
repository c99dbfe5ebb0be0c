//! `${URI}/stats` and `${URI}/task/stats`: a container's cgroup readings in the shape of
//! Docker's stats API (`ContainerStats`), which is what the endpoint serves on AWS. The
//! previous reading of the same container, when there is one, is the `pre` half (`preread`,
//! `precpu_stats`) and gives version 4's `network_rate_stats`; a first reading has an empty
//! `pre` half, as Docker's one-shot stats do. Pure: readings come through [`Readings`].

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::render::{Version, timestamp};

/// Docker's `preread` when there is no earlier reading.
pub const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// One block-device counter (`blkio_stats`): device numbers, operation, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// An interface's counters, as `/proc/net/dev` has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Cpu time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuReading {
    pub total: u64,
    pub percpu: Vec<u64>,
    pub user: u64,
    pub system: u64,
    /// The whole machine's cpu time so far (Docker's `system_cpu_usage`).
    pub host_total: u64,
    pub online_cpus: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// Memory in bytes; `stat` is the cgroup's `memory.stat` as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryReading {
    pub usage: u64,
    pub max_usage: Option<u64>,
    pub limit: u64,
    pub stat: Vec<(String, u64)>,
}

/// What one container's cgroup (and network namespace) says at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub at: SystemTime,
    pub cpu: CpuReading,
    pub memory: MemoryReading,
    pub pids: Option<u64>,
    pub io_service_bytes: Vec<IoEntry>,
    pub io_serviced: Vec<IoEntry>,
    /// Interface name → counters; empty when the container has no network of its own.
    pub networks: Vec<(String, NetCounters)>,
}

/// Where readings come from: the host's cgroups ([`super::cgroups::HostReadings`]), or a test's.
pub trait Readings: Send + Sync + 'static {
    /// The container in cgroup `cgroup` now (its interfaces too with `network`); `None` once
    /// its cgroup is gone.
    fn read(&self, cgroup: &str, network: bool) -> Option<Reading>;
}

fn cpu(c: &CpuReading) -> Value {
    let mut usage = json!({"total_usage": c.total, "usage_in_kernelmode": c.system, "usage_in_usermode": c.user});
    if !c.percpu.is_empty() {
        usage["percpu_usage"] = json!(c.percpu);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": c.host_total,
        "online_cpus": c.online_cpus,
        "throttling_data": {"periods": c.periods, "throttled_periods": c.throttled_periods, "throttled_time": c.throttled_time},
    })
}

fn io(entries: &[IoEntry]) -> Value {
    let list: Vec<Value> =
        entries.iter().map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value})).collect();
    Value::Array(list)
}

fn memory(m: &MemoryReading) -> Value {
    let stats: Map<String, Value> = m.stat.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut out = json!({"usage": m.usage});
    if let Some(max) = m.max_usage {
        out["max_usage"] = json!(max);
    }
    out["stats"] = Value::Object(stats);
    out["limit"] = json!(m.limit);
    out
}

fn networks(r: &Reading) -> Value {
    let by_name: Map<String, Value> = r
        .networks
        .iter()
        .map(|(name, n)| {
            let counters = json!({
                "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets, "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
            });
            (name.clone(), counters)
        })
        .collect();
    Value::Object(by_name)
}

/// Bytes per second received and sent over all interfaces since `before`.
fn network_rates(now: &Reading, before: Option<&Reading>) -> Value {
    let total =
        |r: &Reading| r.networks.iter().fold((0u64, 0u64), |(rx, tx), (_, n)| (rx + n.rx_bytes, tx + n.tx_bytes));
    let seconds = before.and_then(|b| now.at.duration_since(b.at).ok()).map_or(0.0, |d| d.as_secs_f64());
    let (rx, tx) = match before {
        Some(b) if seconds > 0.0 => {
            let ((rx1, tx1), (rx0, tx0)) = (total(now), total(b));
            (rx1.saturating_sub(rx0) as f64 / seconds, tx1.saturating_sub(tx0) as f64 / seconds)
        }
        _ => (0.0, 0.0),
    };
    json!({"rx_bytes_per_sec": rx, "tx_bytes_per_sec": tx})
}

/// Docker's stats JSON of container `name` (runtime id `id`) from reading `now`, with `before`
/// as its `pre` half.
pub fn render(name: &str, id: &str, now: &Reading, before: Option<&Reading>, version: Version) -> Value {
    let empty = || json!([]);
    let mut out = Map::new();
    out.insert("read".into(), json!(timestamp(now.at)));
    out.insert("preread".into(), json!(before.map_or_else(|| NO_TIME.to_string(), |b| timestamp(b.at))));
    out.insert("pids_stats".into(), now.pids.map_or_else(|| json!({}), |n| json!({"current": n})));
    out.insert(
        "blkio_stats".into(),
        json!({
            "io_service_bytes_recursive": io(&now.io_service_bytes),
            "io_serviced_recursive": io(&now.io_serviced),
            "io_queue_recursive": empty(), "io_service_time_recursive": empty(), "io_wait_time_recursive": empty(),
            "io_merged_recursive": empty(), "io_time_recursive": empty(), "sectors_recursive": empty(),
        }),
    );
    out.insert("num_procs".into(), json!(0));
    out.insert("storage_stats".into(), json!({}));
    out.insert("cpu_stats".into(), cpu(&now.cpu));
    out.insert("precpu_stats".into(), cpu(&before.map(|b| b.cpu.clone()).unwrap_or_default()));
    out.insert("memory_stats".into(), memory(&now.memory));
    out.insert("name".into(), json!(format!("/{name}")));
    out.insert("id".into(), json!(id));
    if !now.networks.is_empty() {
        out.insert("networks".into(), networks(now));
        if version == Version::V4 {
            out.insert("network_rate_stats".into(), network_rates(now, before));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::tests::reading;

    #[test]
    fn a_first_reading_has_an_empty_pre_half() {
        let out = render("berth-t1-web", "abc", &reading(100, 400, 1000), None, Version::V4);
        assert_eq!(out["preread"], NO_TIME);
        assert_eq!(out["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(
            out["cpu_stats"]["cpu_usage"],
            json!({"total_usage": 400, "usage_in_kernelmode": 10,
            "usage_in_usermode": 30, "percpu_usage": [200, 200]})
        );
        assert_eq!(
            (out["cpu_stats"]["online_cpus"].as_u64(), out["cpu_stats"]["system_cpu_usage"].as_u64()),
            (Some(2), Some(1_000_000))
        );
        assert_eq!(
            out["memory_stats"],
            json!({"usage": 1_806_336, "max_usage": 6_299_648,
            "stats": {"rss": 606_208, "cache": 0}, "limit": 134_217_728})
        );
        assert_eq!(out["pids_stats"], json!({"current": 3}));
        assert_eq!(
            out["blkio_stats"]["io_service_bytes_recursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 4096}])
        );
        assert_eq!(out["blkio_stats"]["sectors_recursive"], json!([]));
        assert_eq!((out["name"].as_str(), out["id"].as_str()), (Some("/berth-t1-web"), Some("abc")));
        assert_eq!(out["networks"]["eth0"]["rx_bytes"], 1000);
        assert_eq!(out["network_rate_stats"], json!({"rx_bytes_per_sec": 0.0, "tx_bytes_per_sec": 0.0}));
    }

    #[test]
    fn a_later_reading_carries_the_earlier_one_and_rates() {
        let before = reading(100, 400, 1000);
        let out = render("n", "i", &reading(102, 900, 5000), Some(&before), Version::V4);
        assert_eq!(out["preread"], timestamp(before.at));
        assert_eq!(out["precpu_stats"]["cpu_usage"]["total_usage"], 400);
        assert_eq!(out["cpu_stats"]["cpu_usage"]["total_usage"], 900);
        assert_eq!(out["network_rate_stats"], json!({"rx_bytes_per_sec": 2000.0, "tx_bytes_per_sec": 1000.0}));
        let v3 = render("n", "i", &reading(102, 900, 5000), Some(&before), Version::V3);
        assert!(v3.get("network_rate_stats").is_none(), "version 3 has cumulative counters only");
        let mut host = reading(102, 900, 0);
        host.networks.clear();
        host.pids = None;
        let out = render("n", "i", &host, None, Version::V4);
        assert!(out.get("networks").is_none() && out.get("network_rate_stats").is_none());
        assert_eq!(out["pids_stats"], json!({}));
    }
}
