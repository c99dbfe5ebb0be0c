//! CloudWatch (`GraniteServiceVersion20100801`): served over Smithy RPC v2 CBOR (what current
//! SDKs send first), AWS JSON 1.0 and the AWS query protocol alike. The dispatch table and the
//! service's errors; metrics live in `berth-metrics` ([`crate::App::metrics`]).

pub mod alarms;
pub mod expressions;
mod metrics;

use serde_json::Value;

use crate::ecs::Obj;
use crate::error::ApiError;
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the model not in the table answer `InvalidAction` (a common error of the
/// query protocol CloudWatch also speaks).
pub static SERVICE: Service = Service {
    name: "CloudWatch",
    model: &shapes::CLOUDWATCH,
    operations: operations! {
        "PutMetricData" => |ctx, input| metrics::put(ctx, input),
        "GetMetricStatistics" => |ctx, input| metrics::statistics(ctx, input),
        "GetMetricData" => |ctx, input| metrics::data(ctx, input),
        "ListMetrics" => |ctx, input| metrics::list(ctx, input),
        "PutMetricAlarm" => |ctx, input| alarms::put(ctx, input).await,
        "DescribeAlarms" => |ctx, input| alarms::describe(ctx, input),
        "DescribeAlarmsForMetric" => |ctx, input| alarms::describe_for_metric(ctx, input),
        "DeleteAlarms" => |ctx, input| alarms::delete(ctx, input).await,
        "SetAlarmState" => |ctx, input| alarms::set_state(ctx, input).await,
        "DescribeAlarmHistory" => |ctx, input| alarms::history(ctx, input),
    },
    // PutMetricData carries up to 1 MB.
    body_limit: 2 * 1024 * 1024,
    invalid_input: "InvalidParameterValue",
    unimplemented: "InvalidAction",
    json_bodies: &[],
};

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterValue", message)
}

pub fn combination(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterCombination", message)
}

impl From<berth_metrics::MetricsError> for ApiError {
    fn from(e: berth_metrics::MetricsError) -> Self {
        tracing::error!(error = %e, "metric storage failure");
        ApiError::new(500, "InternalServiceError", format!("metric storage: {e}"))
    }
}

/// `[{Name, Value}]` as sorted pairs.
pub fn dimensions(input: &Obj, key: &str) -> Vec<(String, String)> {
    let list = input.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .filter_map(|d| Some((d.get("Name")?.as_str()?.to_string(), d.get("Value")?.as_str()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests;
