//! The load balancer in this server: the data plane (`berth-lb`) fed from the store. Whenever
//! a load balancer, listener, rule, target group or target changes, the whole configuration
//! is rebuilt and applied; whatever the data plane observes of its targets (health, requests
//! in flight) is written back, promptly on a change and at least every second, for
//! DescribeTargetHealth, for draining and for the service scheduler. Every metric period,
//! what the data plane counted becomes the load balancers' CloudWatch metrics.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_control::Control;
use berth_lb::{Affinity, DataPlane};
use berth_metrics::Metrics;

/// How often statuses are written back even when the data plane saw nothing change (the
/// in-flight counts of draining targets).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A watch of the load balancing records from now on, or why not (logged).
fn watch_balancers(control: &Control) -> Option<berth_store::WatchStream> {
    let watch = control.store.watch("elb/", 0);
    watch
        .inspect_err(|e| tracing::error!(error = %e, "the load balancer cannot watch the store; it serves nothing new"))
        .ok()
}

/// Serves every listener on `address`, with serving threads placed as `placement` says, until
/// the process ends, and records its metrics in `metrics` every `period`.
pub async fn run(control: Arc<Control>, address: IpAddr, placement: Affinity, metrics: Arc<Metrics>, period: Duration) {
    let plane = DataPlane::new(placement);
    tokio::spawn(record_metrics(plane.clone(), control.clone(), address, metrics, period));
    let mut changes = plane.changes();
    let Some(mut watch) = watch_balancers(&control) else { return };
    let mut applied = None;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        match berth_control::elb::dataplane_config(&control, address) {
            Ok(config) if applied.as_ref() != Some(&config) => {
                for e in plane.apply(config.clone()).await {
                    tracing::warn!(error = %e, "a load balancer listener could not be served");
                }
                applied = Some(config);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the load balancers failed"),
        }
        if let Err(e) = berth_control::elb::record_statuses(&control, &plane.statuses()).await {
            tracing::warn!(error = %e, "recording target health failed");
        }
        tokio::select! {
            event = watch.next() => match event {
                None => return,
                Some(Ok(_)) => {}
                // History lost (the watch fell too far behind): watch again from now; this
                // turn of the loop reads the whole configuration anyway.
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the load balancer's watch failed; watching again");
                    let Some(w) = watch_balancers(&control) else { return };
                    watch = w;
                }
            },
            _ = changes.changed() => {}
            _ = tick.tick() => {}
        }
    }
}

/// Every `period`, what the data plane counted since the last time, as datapoints.
async fn record_metrics(
    plane: Arc<DataPlane>,
    control: Arc<Control>,
    address: IpAddr,
    metrics: Arc<Metrics>,
    period: Duration,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = control.closed() => return,
        }
        let config = match berth_control::elb::dataplane_config(&control, address) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reading the load balancers for their metrics failed");
                continue;
            }
        };
        let counts = plane.take_counts();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let data = berth_control::elb::metrics::datapoints(&config, &counts, &plane.statuses(), now.as_millis() as i64);
        if let Err(e) = metrics.put(&data) {
            tracing::warn!(error = %e, "recording the load balancers' metrics failed");
        }
    }
}
