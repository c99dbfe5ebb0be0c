//! Scaling policies: PutScalingPolicy (step scaling; target tracking on
//! `ECSServiceAverageCPUUtilization`, `ECSServiceAverageMemoryUtilization`,
//! `ALBRequestCountPerTarget` (a target group of the service's) or a customized metric, with
//! the alarms it makes), DescribeScalingPolicies, DeleteScalingPolicy (with
//! those alarms). A policy's ARN stays the same across updates, so alarms naming it keep
//! working.

use berth_control::alarms::AlarmRecord;
use berth_control::autoscaling::change::transact;
use berth_control::autoscaling::records::{PolicyConfig, PolicyRecord, TargetTracking, TrackedMetric, arns};
use berth_control::autoscaling::tracking::{self, Side};
use berth_control::autoscaling::{DIMENSION, NAMESPACE, ScalingError, no_target, service_of};
use berth_scaling::capacity::{AdjustmentType, Aggregation, Step, StepPolicy, check_steps};
use berth_store::Op;
use serde_json::{Value, json};

use super::{all_targets, filter, names, page, scaling_error, target_of, validation};
use crate::ecs::{Ctx, Obj, decode, encode, text};
use crate::error::ApiResult;

/// ECS's default cooldown (seconds) when a policy gives none.
const DEFAULT_COOLDOWN: i64 = 300;
/// Policies one target may have.
const MAX_POLICIES: usize = 50;

fn cooldown(config: &Obj, key: &str) -> ApiResult<i64> {
    match config.get(key).and_then(Value::as_i64) {
        None => Ok(DEFAULT_COOLDOWN),
        Some(n) if (0..=86_400).contains(&n) => Ok(n),
        Some(n) => Err(validation(format!("{key} must be between 0 and 86400 seconds, not {n}."))),
    }
}

fn step_policy(config: &Obj) -> ApiResult<StepPolicy> {
    let kind = text(config, "AdjustmentType")
        .ok_or_else(|| validation("StepScalingPolicyConfiguration needs an AdjustmentType."))?;
    let adjustment_type = AdjustmentType::parse(kind).expect("the model's enum");
    let steps: Vec<Step> = config
        .get("StepAdjustments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|s| Step {
                    lower: s.get("MetricIntervalLowerBound").and_then(Value::as_f64),
                    upper: s.get("MetricIntervalUpperBound").and_then(Value::as_f64),
                    adjustment: s.get("ScalingAdjustment").and_then(Value::as_i64).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    check_steps(&steps).map_err(validation)?;
    if adjustment_type == AdjustmentType::ExactCapacity && steps.iter().any(|s| s.adjustment < 0) {
        return Err(validation("ScalingAdjustment must be 0 or more with the ExactCapacity adjustment type."));
    }
    let min_adjustment_magnitude = config.get("MinAdjustmentMagnitude").and_then(Value::as_i64);
    match min_adjustment_magnitude {
        Some(_) if adjustment_type != AdjustmentType::PercentChangeInCapacity => {
            return Err(validation("MinAdjustmentMagnitude is only valid with PercentChangeInCapacity."));
        }
        Some(m) if m < 1 => return Err(validation(format!("MinAdjustmentMagnitude must be 1 or more, not {m}."))),
        _ => {}
    }
    let aggregation = text(config, "MetricAggregationType").map(|a| Aggregation::parse(a).expect("the model's enum"));
    Ok(StepPolicy {
        adjustment_type,
        steps,
        min_adjustment_magnitude,
        cooldown: cooldown(config, "Cooldown")?,
        aggregation: aggregation.unwrap_or_default(),
    })
}

/// The metric a predefined metric type stands for on an ECS service.
fn predefined(ctx: &Ctx<'_>, spec: &Obj, resource: &str) -> ApiResult<TrackedMetric> {
    let kind = text(spec, "PredefinedMetricType").unwrap_or_default();
    let name = match kind {
        "ECSServiceAverageCPUUtilization" => "CPUUtilization",
        "ECSServiceAverageMemoryUtilization" => "MemoryUtilization",
        "ALBRequestCountPerTarget" => return requests_per_target(ctx, spec, resource),
        other => {
            return Err(validation(format!(
                "PredefinedMetricType {other} is not valid for service namespace {NAMESPACE}: use ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or ALBRequestCountPerTarget."
            )));
        }
    };
    if spec.contains_key("ResourceLabel") {
        return Err(validation(format!("ResourceLabel is only for ALBRequestCountPerTarget, not {kind}.")));
    }
    let (cluster, service) = service_of(resource).expect("checked");
    Ok(TrackedMetric {
        namespace: "AWS/ECS".into(),
        name: name.into(),
        dimensions: vec![("ClusterName".into(), cluster.into()), ("ServiceName".into(), service.into())],
        statistic: "Average".into(),
        unit: None,
    })
}

/// `ALBRequestCountPerTarget`: the `RequestCountPerTarget` (Sum) of the target group the
/// `ResourceLabel` names (`app/LB-NAME/LB-ID/targetgroup/TG-NAME/TG-ID`), which must be one
/// of the service's, behind that load balancer.
fn requests_per_target(ctx: &Ctx<'_>, spec: &Obj, resource: &str) -> ApiResult<TrackedMetric> {
    use berth_control::elb::metrics::{APPLICATION, load_balancer_dimension, target_group_dimension};
    let label = text(spec, "ResourceLabel")
        .ok_or_else(|| validation("ResourceLabel is required for the ALBRequestCountPerTarget metric type."))?;
    let parts = label.split_once("/targetgroup/").filter(|(lb, tg)| {
        let segments = |s: &str| s.split('/').filter(|p| !p.is_empty()).count();
        lb.starts_with("app/") && segments(lb) == 3 && segments(tg) == 2
    });
    let Some((lb, _)) = parts else {
        return Err(validation(format!(
            "ResourceLabel {label} is not of the form app/LOAD-BALANCER-NAME/LOAD-BALANCER-ID/targetgroup/TARGET-GROUP-NAME/TARGET-GROUP-ID."
        )));
    };
    let tg = &label[lb.len() + 1..];
    let service = berth_control::autoscaling::change::read_service(&ctx.region, resource)
        .map_err(scaling_error)?
        .map(|(_, s)| s)
        .ok_or_else(|| scaling_error(no_target(resource).into()))?;
    let attached = berth_control::service_targets::service_load_balancers(&service)
        .into_iter()
        .map(|(arn, _, _)| arn)
        .find(|arn| target_group_dimension(arn) == Some(tg));
    let Some(group) = attached else {
        return Err(validation(format!("ResourceLabel {label}: target group {tg} is not attached to {resource}.")));
    };
    let info = match berth_control::elb::get_target_group(&ctx.region, &group) {
        Ok(info) => info,
        Err(berth_control::ControlError::Elb(berth_control::elb::ElbError::TargetGroupNotFound(_))) => {
            return Err(validation(format!("ResourceLabel {label}: target group {tg} no longer exists.")));
        }
        Err(e) => return Err(e.into()),
    };
    if !info.load_balancer_arns.iter().any(|arn| load_balancer_dimension(arn) == Some(lb)) {
        return Err(validation(format!("ResourceLabel {label}: target group {tg} is not behind load balancer {lb}.")));
    }
    Ok(TrackedMetric {
        namespace: APPLICATION.into(),
        name: "RequestCountPerTarget".into(),
        dimensions: vec![("TargetGroup".into(), tg.into())],
        statistic: "Sum".into(),
        unit: None,
    })
}

fn customized(spec: &Obj) -> ApiResult<TrackedMetric> {
    if spec.contains_key("Metrics") {
        return Err(validation(
            "CustomizedMetricSpecification.Metrics (metric math) is not supported: Berth's alarms watch one metric; give MetricName, Namespace and Statistic.",
        ));
    }
    let need = |k: &str| {
        text(spec, k).map(str::to_string).ok_or_else(|| {
            validation(format!(
                "CustomizedMetricSpecification needs MetricName, Namespace and Statistic; {k} is missing."
            ))
        })
    };
    let mut dimensions = super::super::cloudwatch::dimensions(spec, "Dimensions");
    dimensions.sort();
    Ok(TrackedMetric {
        namespace: need("Namespace")?,
        name: need("MetricName")?,
        dimensions,
        statistic: need("Statistic")?,
        unit: text(spec, "Unit").map(str::to_string),
    })
}

fn target_tracking(ctx: &Ctx<'_>, config: &Obj, resource: &str) -> ApiResult<TargetTracking> {
    let target_value = config.get("TargetValue").and_then(Value::as_f64).unwrap_or_default();
    if !(target_value > 0.0 && target_value.is_finite()) {
        return Err(validation(format!("TargetValue must be greater than 0, not {target_value}.")));
    }
    let obj = |k: &str| config.get(k).and_then(Value::as_object);
    let metric = match (obj("PredefinedMetricSpecification"), obj("CustomizedMetricSpecification")) {
        (Some(p), None) => predefined(ctx, p, resource)?,
        (None, Some(c)) => customized(c)?,
        _ => {
            return Err(validation(
                "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be given.",
            ));
        }
    };
    Ok(TargetTracking {
        target_value,
        metric,
        scale_out_cooldown: cooldown(config, "ScaleOutCooldown")?,
        scale_in_cooldown: cooldown(config, "ScaleInCooldown")?,
        disable_scale_in: config.get("DisableScaleIn").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// The policy's configuration from the request: its type's member, and no other.
fn config_of(ctx: &Ctx<'_>, input: &Obj, resource: &str) -> ApiResult<(PolicyConfig, Value)> {
    let kind = text(input, "PolicyType").unwrap_or("StepScaling");
    if kind == "PredictiveScaling" || input.contains_key("PredictiveScalingPolicyConfiguration") {
        return Err(validation("Berth does not do predictive scaling: use TargetTrackingScaling or StepScaling."));
    }
    let (member, other) = match kind {
        "StepScaling" => ("StepScalingPolicyConfiguration", "TargetTrackingScalingPolicyConfiguration"),
        _ => ("TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration"),
    };
    if input.contains_key(other) {
        return Err(validation(format!("{other} is not allowed for a {kind} policy.")));
    }
    let shown =
        input.get(member).cloned().ok_or_else(|| validation(format!("{member} is required for a {kind} policy.")))?;
    let config = shown.as_object().expect("the model's structure");
    let parsed = match kind {
        "StepScaling" => PolicyConfig::StepScaling(step_policy(config)?),
        _ => PolicyConfig::TargetTrackingScaling(target_tracking(ctx, config, resource)?),
    };
    Ok((parsed, shown))
}

fn alarm_named(ctx: &Ctx<'_>, name: &str) -> Option<AlarmRecord> {
    ctx.store().get(&ctx.keys.alarm(name)).ok().flatten().and_then(|kv| decode(&kv).ok())
}

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    let name = text(&input, "PolicyName").unwrap_or_default().to_string();
    let (config, shown) = config_of(ctx, &input, &resource)?;
    let account = ctx.config().account.clone();
    let (arn, alarms) = transact(ctx, &resource, |draft| {
        let target = draft.target.as_mut().ok_or_else(|| no_target(&resource))?;
        let existing = target.policies.iter().position(|p| p.name == name);
        if existing.is_none() && target.policies.len() >= MAX_POLICIES {
            return Err(ScalingError::LimitExceeded(format!(
                "A scalable target can have at most {MAX_POLICIES} scaling policies."
            ))
            .into());
        }
        let arn = match existing {
            Some(i) => target.policies[i].arn.clone(),
            None => arns::policy(&ctx.name, &account, &ctx.control.ids.uuid(), &resource, &name),
        };
        let old_alarms = existing.map(|i| target.policies[i].alarms.clone()).unwrap_or_default();
        let mut alarms = Vec::new();
        if let PolicyConfig::TargetTrackingScaling(t) = &config {
            let sides: &[Side] = if t.disable_scale_in { &[Side::High] } else { &[Side::High, Side::Low] };
            for &side in sides {
                let kept = old_alarms.iter().find(|a| Side::of(&a.name) == Some(side));
                let alarm_name =
                    kept.map(|a| a.name.clone()).unwrap_or_else(|| tracking::alarm_name(ctx, &resource, side));
                let alarm = tracking::alarm(ctx, &alarm_name, side, &arn, t, alarm_named(ctx, &alarm_name));
                draft.ops.push(Op::put(&ctx.keys.alarm(&alarm_name), encode(&alarm)));
                alarms.push(tracking::reference(&alarm));
            }
        }
        for old in old_alarms.iter().filter(|o| !alarms.iter().any(|a| a.name == o.name)) {
            draft.ops.push(Op::delete(&ctx.keys.alarm(&old.name)));
        }
        let record = PolicyRecord {
            name: name.clone(),
            arn: arn.clone(),
            config: config.clone(),
            shown: shown.clone(),
            alarms: alarms.clone(),
            created: existing.map(|i| target.policies[i].created).unwrap_or_else(|| ctx.timestamp()),
        };
        match existing {
            Some(i) => target.policies[i] = record,
            None => target.policies.push(record),
        }
        Ok((arn, alarms))
    })
    .await
    .map_err(scaling_error)?;
    let mut out = json!({"PolicyARN": arn});
    if matches!(config, PolicyConfig::TargetTrackingScaling(_)) {
        out["Alarms"] =
            json!(alarms.iter().map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn})).collect::<Vec<_>>());
    }
    Ok(out)
}

fn render(resource: &str, p: &PolicyRecord) -> Value {
    let member = match p.config {
        PolicyConfig::StepScaling(_) => "StepScalingPolicyConfiguration",
        PolicyConfig::TargetTrackingScaling(_) => "TargetTrackingScalingPolicyConfiguration",
    };
    let mut out = json!({
        "PolicyARN": p.arn, "PolicyName": p.name, "ServiceNamespace": NAMESPACE, "ResourceId": resource,
        "ScalableDimension": DIMENSION, "PolicyType": p.config.type_name(), "CreationTime": p.created,
        "Alarms": p.alarms.iter().map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn})).collect::<Vec<_>>(),
    });
    out[member] = p.shown.clone();
    out
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let f = filter(&input)?;
    let wanted = names(&input, "PolicyNames");
    let mut items = Vec::new();
    if f.ecs {
        for (_, t) in all_targets(ctx)? {
            if f.resource.as_ref().is_some_and(|r| *r != t.resource_id) {
                continue;
            }
            for p in t.policies.iter().filter(|p| wanted.is_empty() || wanted.contains(&p.name)) {
                items.push((format!("{}\u{0}{}", t.resource_id, p.name), render(&t.resource_id, p)));
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    page(&input, "ScalingPolicies", items)
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let resource = target_of(&input)?;
    let name = text(&input, "PolicyName").unwrap_or_default().to_string();
    transact(ctx, &resource, |draft| {
        let missing = || {
            ScalingError::NotFound(format!(
                "No scaling policy found for service namespace: {NAMESPACE}, resource ID: {resource}, scalable dimension: {DIMENSION}, policy name: {name}"
            ))
        };
        let target = draft.target.as_mut().ok_or_else(missing)?;
        let i = target.policies.iter().position(|p| p.name == name).ok_or_else(missing)?;
        let policy = target.policies.remove(i);
        for a in &policy.alarms {
            draft.ops.push(Op::delete(&ctx.keys.alarm(&a.name)));
        }
        Ok(())
    })
    .await
    .map_err(scaling_error)?;
    Ok(json!({}))
}
