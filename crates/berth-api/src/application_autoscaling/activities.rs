//! DescribeScalingActivities: what scaling did and why, newest first, with AWS's texts
//! ("Setting desired count to 3.", "monitor alarm ... in state ALARM triggered policy ...");
//! not scaled activities only with `IncludeNotScaledActivities`.

use berth_control::autoscaling::records::ActivityRecord;
use berth_control::autoscaling::{DIMENSION, NAMESPACE};
use berth_store::StoreExt;
use serde_json::{Value, json};

use super::{filter, page};
use crate::ecs::{Ctx, Obj, decode};
use crate::error::ApiResult;

fn render(a: &ActivityRecord) -> Value {
    let mut out = json!({
        "ActivityId": a.id, "ServiceNamespace": NAMESPACE, "ResourceId": a.resource_id,
        "ScalableDimension": DIMENSION, "Description": a.description, "Cause": a.cause,
        "StartTime": a.start, "StatusCode": a.status.name(), "StatusMessage": a.message,
    });
    if let Some(end) = a.end {
        out["EndTime"] = json!(end);
    }
    if !a.not_scaled.is_empty() {
        out["NotScaledReasons"] = a
            .not_scaled
            .iter()
            .map(|r| json!({"Code": r.code, "MinCapacity": r.min, "MaxCapacity": r.max, "CurrentCapacity": r.current}))
            .collect();
    }
    out
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let f = filter(&input)?;
    let with_not_scaled = input.get("IncludeNotScaledActivities").and_then(Value::as_bool).unwrap_or(false);
    let mut found: Vec<(f64, String, Value)> = Vec::new();
    if f.ecs {
        let prefix = match &f.resource {
            Some(r) => ctx.keys.target_activities(r),
            None => ctx.keys.scaling_activities(),
        };
        for kv in ctx.store().list(&prefix)? {
            let a: ActivityRecord = decode(&kv)?;
            if a.not_scaled.is_empty() || with_not_scaled {
                found.push((a.start, kv.key, render(&a)));
            }
        }
    }
    // Newest first; the key (target, sequence) orders activities of one moment.
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let items = found.into_iter().enumerate().map(|(i, (_, _, v))| (format!("{i:012}"), v)).collect();
    page(&input, "ScalingActivities", items)
}
