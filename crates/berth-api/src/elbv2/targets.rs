//! Targets: RegisterTargets, DeregisterTargets, DescribeTargetHealth, with ELB's states and
//! reason codes (see `berth_control::elb::targets`). QUIC server ids are refused by name.

use berth_control::elb::targets::{self, TargetInput};
use serde_json::{Value, json};

use super::{elb, required, u16_of};
use crate::ecs::{Ctx, Obj};
use crate::error::ApiResult;

fn targets_in(input: &Obj) -> ApiResult<Vec<TargetInput>> {
    let mut out = Vec::new();
    for t in input.get("Targets").and_then(Value::as_array).into_iter().flatten() {
        if t.get("QuicServerId").is_some() {
            return Err(elb(berth_control::elb::ElbError::unsupported(
                "Berth does not support QuicServerId: its load balancers speak HTTP and TCP",
            )));
        }
        out.push(TargetInput {
            id: t["Id"].as_str().unwrap_or_default().to_string(),
            port: u16_of(t.get("Port")),
            zone: t.get("AvailabilityZone").and_then(Value::as_str).map(str::to_string),
        });
    }
    Ok(out)
}

pub async fn register(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let targets = targets_in(&input)?;
    targets::register(&ctx.region, required(&input, "TargetGroupArn")?, &targets).await?;
    Ok(json!({}))
}

pub async fn deregister(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let targets = targets_in(&input)?;
    targets::deregister(&ctx.region, required(&input, "TargetGroupArn")?, &targets).await?;
    Ok(json!({}))
}

/// `Include` (anomaly detection) adds nothing: it reports on the weighted_random algorithm,
/// which Berth does not have, so ELB would add nothing either.
pub fn describe_health(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let asked = input.contains_key("Targets").then(|| targets_in(&input)).transpose()?;
    let views = targets::describe(&ctx.region, required(&input, "TargetGroupArn")?, asked.as_deref())?;
    let out: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut target = json!({"Id": v.id, "Port": v.port});
            if let Some(zone) = &v.zone {
                target["AvailabilityZone"] = json!(zone);
            }
            let mut health = json!({"State": v.health.state.as_str()});
            if let Some(reason) = v.health.reason {
                health["Reason"] = json!(reason.as_str());
            }
            if let Some(description) = &v.health.description {
                health["Description"] = json!(description);
            }
            json!({"Target": target, "HealthCheckPort": v.health_check_port.to_string(), "TargetHealth": health})
        })
        .collect();
    Ok(json!({ "TargetHealthDescriptions": out }))
}
