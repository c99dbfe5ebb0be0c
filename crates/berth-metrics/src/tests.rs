use super::*;

const T: i64 = 1_800_000_000_000;

fn cpu(service: &str) -> MetricId {
    MetricId::new(
        "AWS/ECS",
        "CPUUtilization",
        vec![("ServiceName".into(), service.into()), ("ClusterName".into(), "default".into())],
    )
}

fn put(m: &Metrics, id: &MetricId, at: i64, v: f64) {
    m.put(&[Datum { metric: id.clone(), timestamp: at, stats: Stats::value(v), unit: Some("Percent".into()) }])
        .unwrap();
}

#[test]
fn dimensions_are_a_set() {
    let a = MetricId::new("N", "m", vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
    let b = MetricId::new("N", "m", vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
    assert_eq!(a, b);
}

#[test]
fn statistics_sum_datapoints_into_periods() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metrics::open(dir.path(), T).unwrap();
    let web = cpu("web");
    for (offset, v) in [(0, 10.0), (20_000, 30.0), (59_999, 20.0), (60_000, 50.0), (185_000, 5.0)] {
        put(&m, &web, T + offset, v);
    }
    put(&m, &cpu("db"), T, 99.0);
    let periods = m.statistics(&web, T, T + 300_000, 60, None);
    let summary: Vec<(i64, f64, f64, f64, f64)> =
        periods.iter().map(|(p, s, _)| (p - T, s.count, s.average(), s.min, s.max)).collect();
    assert_eq!(summary, [(0, 3.0, 20.0, 10.0, 30.0), (60_000, 1.0, 50.0, 50.0, 50.0), (180_000, 1.0, 5.0, 5.0, 5.0)]);
    assert_eq!(m.statistics(&web, T + 60_000, T + 120_000, 60, None).len(), 1);
    assert!(m.statistics(&web, T, T + 300_000, 60, Some("Count")).is_empty());
    let set = Stats { count: 4.0, sum: 8.0, min: 1.0, max: 3.0 };
    m.put(&[Datum { metric: web.clone(), timestamp: T + 240_000, stats: set, unit: None }]).unwrap();
    assert_eq!(m.statistics(&web, T + 240_000, T + 300_000, 60, None)[0].1, set);
}

#[test]
fn metrics_are_listed_by_namespace_name_and_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metrics::open(dir.path(), T).unwrap();
    put(&m, &cpu("web"), T, 1.0);
    put(&m, &cpu("db"), T, 1.0);
    put(&m, &MetricId::new("Custom", "queue", vec![]), T, 1.0);
    assert_eq!(m.list(Some("AWS/ECS"), None, &[]).len(), 2);
    assert_eq!(m.list(None, Some("queue"), &[]).len(), 1);
    assert_eq!(m.list(None, None, &[("ServiceName".into(), Some("db".into()))]), [cpu("db")]);
    assert_eq!(m.list(None, None, &[("ServiceName".into(), None)]).len(), 2);
    assert_eq!(m.last_time(&cpu("web")), Some(T));
}

#[test]
fn datapoints_survive_reopening_and_expire_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = Metrics::open(dir.path(), T).unwrap();
        put(&m, &cpu("web"), T - RETENTION_MS + 1000, 1.0);
        put(&m, &cpu("web"), T, 2.0);
    }
    // A crash mid-write leaves half a record: it is skipped.
    let log = dir.path().join("metrics.log");
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"[{\"metric\":").unwrap();
    let m = Metrics::open(dir.path(), T).unwrap();
    assert_eq!(m.statistics(&cpu("web"), 0, T + 1000, 60, None).len(), 2);
    put(&m, &cpu("web"), T + 1000, 3.0);
    drop(m);
    let m = Metrics::open(dir.path(), T + 2000).unwrap();
    assert_eq!(m.statistics(&cpu("web"), 0, T + 2000, 1, None).len(), 2, "the oldest expired");
}
