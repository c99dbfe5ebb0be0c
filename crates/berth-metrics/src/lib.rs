//! The engine behind Berth's CloudWatch metrics, free of the API: every datapoint put (a value
//! or a statistic set: count, sum, minimum, maximum) lands in its metric's series — a metric is
//! a namespace, a name and a set of dimensions — in one-second buckets; queries sum buckets
//! into periods.
//!
//! Puts are appended to a log file and `fdatasync`ed before [`Metrics::put`] returns, and
//! replayed at open; data older than [`RETENTION_MS`] is dropped at open (the log is rewritten
//! without it).

pub mod alarm;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How long datapoints are kept: CloudWatch keeps one-minute data 15 days.
pub const RETENTION_MS: i64 = 15 * 86_400_000;

#[derive(Debug, Error)]
#[error("metric storage {path}: {source}")]
pub struct MetricsError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// A metric: namespace, name, and dimensions sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    pub fn new(namespace: &str, name: &str, mut dimensions: Vec<(String, String)>) -> MetricId {
        dimensions.sort();
        MetricId { namespace: namespace.into(), name: name.into(), dimensions }
    }
}

/// A statistic set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn value(v: f64) -> Stats {
        Stats { count: 1.0, sum: v, min: v, max: v }
    }

    pub fn merge(&mut self, o: &Stats) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    pub fn average(&self) -> f64 {
        if self.count > 0.0 { self.sum / self.count } else { 0.0 }
    }

    /// The statistic CloudWatch names `name` (one of [`STATISTICS`]).
    pub fn statistic(&self, name: &str) -> Option<f64> {
        Some(match name {
            "SampleCount" => self.count,
            "Average" => self.average(),
            "Sum" => self.sum,
            "Minimum" => self.min,
            "Maximum" => self.max,
            _ => return None,
        })
    }
}

/// The statistics a statistic set answers (no percentiles).
pub const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// One datapoint as put.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datum {
    pub metric: MetricId,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub stats: Stats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Default)]
struct Series {
    /// Second → the statistics of the datapoints within it, with their unit.
    buckets: BTreeMap<i64, (Stats, Option<String>)>,
}

/// All metrics of one installation.
pub struct Metrics {
    path: PathBuf,
    series: RwLock<HashMap<MetricId, Series>>,
    log: Mutex<File>,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> MetricsError + '_ {
    move |source| MetricsError { path: path.to_path_buf(), source }
}

impl Metrics {
    /// Opens (or creates) the metrics of `dir`, keeping what is newer than `now - RETENTION_MS`.
    pub fn open(dir: &Path, now_ms: i64) -> Result<Metrics, MetricsError> {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let path = dir.join("metrics.log");
        let mut kept: Vec<Datum> = Vec::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                // A torn last line (a crash mid-write) is skipped, as anything unreadable.
                match serde_json::from_str::<Vec<Datum>>(&line) {
                    Ok(batch) => kept.extend(batch.into_iter().filter(|d| d.timestamp > now_ms - RETENTION_MS)),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable metrics record"),
                }
            }
        }
        // Rewritten without what expired (and any torn record), then appended to.
        let fresh = dir.join("metrics.log.new");
        {
            let mut out = File::create(&fresh).map_err(at(&fresh))?;
            for chunk in kept.chunks(1000) {
                let mut line = serde_json::to_vec(chunk).expect("datapoints serialise");
                line.push(b'\n');
                out.write_all(&line).map_err(at(&fresh))?;
            }
            out.sync_all().map_err(at(&fresh))?;
        }
        std::fs::rename(&fresh, &path).map_err(at(&path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))?;
        let log = OpenOptions::new().append(true).open(&path).map_err(at(&path))?;
        let metrics = Metrics { path, series: RwLock::new(HashMap::new()), log: Mutex::new(log) };
        metrics.apply(&kept);
        Ok(metrics)
    }

    fn apply(&self, data: &[Datum]) {
        let mut series = self.series.write().expect("metrics lock");
        for d in data {
            let s = series.entry(d.metric.clone()).or_default();
            let bucket = s.buckets.entry(d.timestamp.div_euclid(1000)).or_insert((
                Stats { count: 0.0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY },
                d.unit.clone(),
            ));
            bucket.0.merge(&d.stats);
            if bucket.1.is_none() {
                bucket.1 = d.unit.clone();
            }
        }
    }

    /// Records datapoints, durably before returning.
    pub fn put(&self, data: &[Datum]) -> Result<(), MetricsError> {
        if data.is_empty() {
            return Ok(());
        }
        let mut line = serde_json::to_vec(data).expect("datapoints serialise");
        line.push(b'\n');
        {
            let mut log = self.log.lock().expect("metrics log lock");
            log.write_all(&line).and_then(|_| log.sync_data()).map_err(at(&self.path))?;
        }
        self.apply(data);
        Ok(())
    }

    /// The statistics of `metric` per period of `period_s` seconds (aligned to the epoch)
    /// within `[start_ms, end_ms)`, for datapoints of `unit` when given: (period start ms,
    /// stats, unit), in time order, periods without data left out.
    pub fn statistics(
        &self,
        metric: &MetricId,
        start_ms: i64,
        end_ms: i64,
        period_s: i64,
        unit: Option<&str>,
    ) -> Vec<(i64, Stats, Option<String>)> {
        let series = self.series.read().expect("metrics lock");
        let Some(s) = series.get(metric) else { return Vec::new() };
        let mut out: Vec<(i64, Stats, Option<String>)> = Vec::new();
        for (second, (stats, u)) in
            s.buckets.range(start_ms.div_euclid(1000)..end_ms.div_euclid(1000).max(start_ms.div_euclid(1000)))
        {
            if unit.is_some_and(|want| u.as_deref() != Some(want)) {
                continue;
            }
            let period = second.div_euclid(period_s) * period_s * 1000;
            match out.last_mut() {
                Some((p, acc, _)) if *p == period => acc.merge(stats),
                _ => out.push((period, *stats, u.clone())),
            }
        }
        out
    }

    /// The metrics of `namespace` (all when None) named `name` (any when None) whose
    /// dimensions include each `(name, value)` filter (any value when None), in order.
    pub fn list(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        filters: &[(String, Option<String>)],
    ) -> Vec<MetricId> {
        let series = self.series.read().expect("metrics lock");
        let mut out: Vec<MetricId> = series
            .keys()
            .filter(|m| namespace.is_none_or(|n| m.namespace == n) && name.is_none_or(|n| m.name == n))
            .filter(|m| {
                filters
                    .iter()
                    .all(|(k, v)| m.dimensions.iter().any(|(dk, dv)| dk == k && v.as_ref().is_none_or(|v| v == dv)))
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// The newest datapoint time of a metric (ms), if any.
    pub fn last_time(&self, metric: &MetricId) -> Option<i64> {
        let series = self.series.read().expect("metrics lock");
        series.get(metric).and_then(|s| s.buckets.keys().next_back()).map(|s| s * 1000)
    }
}

#[cfg(test)]
mod tests;
