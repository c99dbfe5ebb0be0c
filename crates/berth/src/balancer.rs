//! The load balancer in this server: the data plane (`berth-lb`) fed from the store. Whenever
//! a load balancer, listener, rule, target group or target changes, the whole configuration
//! is rebuilt and applied; whatever the data plane observes of its targets (health, requests
//! in flight) is written back, promptly on a change and at least every second, for
//! DescribeTargetHealth, for draining and for the service scheduler.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_control::Control;
use berth_lb::DataPlane;

/// How often statuses are written back even when the data plane saw nothing change (the
/// in-flight counts of draining targets).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Serves every listener on `address` until the process ends.
pub async fn run(control: Arc<Control>, address: IpAddr) {
    let plane = DataPlane::new();
    let mut changes = plane.changes();
    let mut watch = match control.store.watch("elb/", 0) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the load balancer cannot watch the store; it serves nothing");
            return;
        }
    };
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
            event = watch.next() => {
                if event.is_none() {
                    return;
                }
            }
            _ = changes.changed() => {}
            _ = tick.tick() => {}
        }
    }
}
