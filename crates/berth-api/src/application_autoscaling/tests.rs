//! Application Auto Scaling in-process, through the JSON reading of the model, over a real
//! store and a clock moved by hand: targets, bad inputs that change nothing, target tracking
//! driven by alarms evaluated on metrics put by hand, step scaling through SetAlarmState,
//! scheduled actions run by the leader's pass, cooldowns and suspension.

use std::collections::HashMap;
use std::time::Duration;

use berth_metrics::{Datum, MetricId, Stats};
use serde_json::{Value, json};

use super::SERVICE;
use crate::testing::Harness;

const RESOURCE: &str = "service/default/web";

async fn aas(h: &Harness, op: &str, input: Value) -> Value {
    h.call_json(&SERVICE, op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

async fn cw(h: &Harness, op: &str, input: Value) -> Result<Value, (String, String)> {
    h.call_json(&crate::cloudwatch::SERVICE, op, input).await
}

/// A cluster with a REPLICA service `web` wanting `desired` tasks (no agents: the count is
/// what scaling changes).
async fn setup(desired: i64) -> Harness {
    let h = Harness::new();
    h.call("CreateCluster", json!({"clusterName": "default"})).await.unwrap();
    let def = json!({"family": "web", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 32}]});
    h.call("RegisterTaskDefinition", def).await.unwrap();
    h.call("CreateService", json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": desired}))
        .await
        .unwrap();
    h
}

async fn desired(h: &Harness) -> i64 {
    let out = h.call("DescribeServices", json!({"services": ["web"]})).await.unwrap();
    out["services"][0]["desiredCount"].as_i64().unwrap()
}

fn target(min: i64, max: i64) -> Value {
    json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount",
           "MinCapacity": min, "MaxCapacity": max})
}

fn scope(extra: Value) -> Value {
    let mut v =
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount"});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

async fn activities(h: &Harness, not_scaled: bool) -> Vec<Value> {
    let out = aas(
        h,
        "DescribeScalingActivities",
        json!({"ServiceNamespace": "ecs", "IncludeNotScaledActivities": not_scaled}),
    )
    .await;
    out["ScalingActivities"].as_array().unwrap().clone()
}

/// Everything the service's scaling state is, to compare before and after a refused call.
async fn snapshot(h: &Harness) -> Value {
    json!({
        "targets": aas(h, "DescribeScalableTargets", json!({"ServiceNamespace": "ecs"})).await,
        "policies": aas(h, "DescribeScalingPolicies", json!({"ServiceNamespace": "ecs"})).await,
        "actions": aas(h, "DescribeScheduledActions", json!({"ServiceNamespace": "ecs"})).await,
        "activities": activities(h, true).await,
        "alarms": cw(h, "DescribeAlarms", json!({})).await.unwrap(),
        "desired": desired(h).await,
    })
}

/// Puts one CPUUtilization datapoint for the service `ago` seconds before now.
fn cpu(h: &Harness, value: f64, ago: i64) {
    let now = h.clock_ms();
    let dims = vec![("ClusterName".to_string(), "default".to_string()), ("ServiceName".to_string(), "web".to_string())];
    let datum = Datum {
        metric: MetricId::new("AWS/ECS", "CPUUtilization", dims),
        timestamp: now - ago * 1000,
        stats: Stats::value(value),
        unit: Some("Percent".into()),
    };
    h.app.metrics.put(&[datum]).unwrap();
}

impl Harness {
    fn clock_ms(&self) -> i64 {
        use berth_control::clock::Clock;
        self.clock.now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    }
}

#[tokio::test]
async fn targets_register_update_describe_and_deregister() {
    let h = setup(1).await;
    let arn = aas(&h, "RegisterScalableTarget", target(2, 5)).await["ScalableTargetARN"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/"), "{arn}");
    assert_eq!(desired(&h).await, 2, "capacity below the new minimum is raised to it");
    let acts = activities(&h, false).await;
    assert_eq!(acts[0]["Description"], "Setting desired count to 2.");
    assert_eq!(acts[0]["Cause"], "minimum capacity was set to 2");
    assert_eq!(acts[0]["StatusCode"], "Successful");
    // Registering again updates: max and suspension; the ARN stays.
    let again = aas(
        &h,
        "RegisterScalableTarget",
        json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": "ecs:service:DesiredCount",
               "MaxCapacity": 8, "SuspendedState": {"DynamicScalingInSuspended": true}}),
    )
    .await;
    assert_eq!(again["ScalableTargetARN"], arn);
    let out = aas(&h, "DescribeScalableTargets", json!({"ServiceNamespace": "ecs", "ResourceIds": [RESOURCE]})).await;
    let t = &out["ScalableTargets"][0];
    assert_eq!((t["MinCapacity"].as_i64(), t["MaxCapacity"].as_i64()), (Some(2), Some(8)));
    assert_eq!(t["SuspendedState"]["DynamicScalingInSuspended"], true);
    assert_eq!(t["SuspendedState"]["ScheduledScalingSuspended"], false);
    assert!(t["RoleARN"].as_str().unwrap().ends_with("AWSServiceRoleForApplicationAutoScaling_ECSService"));
    // Other namespaces describe nothing.
    let none = aas(&h, "DescribeScalableTargets", json!({"ServiceNamespace": "dynamodb"})).await;
    assert_eq!(none["ScalableTargets"], json!([]));
    aas(&h, "DeregisterScalableTarget", scope(json!({}))).await;
    let gone = aas(&h, "DescribeScalableTargets", json!({"ServiceNamespace": "ecs"})).await;
    assert_eq!(gone["ScalableTargets"], json!([]));
}

#[tokio::test]
async fn bad_inputs_are_refused_in_aas_words_and_change_nothing() {
    let h = setup(1).await;
    aas(&h, "RegisterScalableTarget", target(1, 4)).await;
    let tt = json!({"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
    aas(&h, "PutScalingPolicy", scope(json!({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": tt}))).await;
    let step = |steps: Value| json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": steps});
    let other = |ns: &str, dim: &str| json!({"ServiceNamespace": ns, "ResourceId": RESOURCE, "ScalableDimension": dim, "MinCapacity": 1, "MaxCapacity": 2});
    let before = snapshot(&h).await;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "RegisterScalableTarget",
            other("dynamodb", "dynamodb:table:ReadCapacityUnits"),
            "ValidationException",
            "ECS services only",
        ),
        (
            "RegisterScalableTarget",
            other("ecs", "dynamodb:table:ReadCapacityUnits"),
            "ValidationException",
            "Unsupported scalable dimension",
        ),
        (
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
            "ValidationException",
            "service/CLUSTER/SERVICE",
        ),
        (
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/nope", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}),
            "ValidationException",
            "ECS service doesn't exist: service/default/nope",
        ),
        ("RegisterScalableTarget", target(5, 2), "ValidationException", "cannot be greater than maximum"),
        ("RegisterScalableTarget", target(-1, 2), "ValidationException", "MinCapacity must be 0 or more"),
        (
            "RegisterScalableTarget",
            scope(json!({"RoleARN": "arn:aws:iam::111111111111:role/x"})),
            "ValidationException",
            "RoleARN",
        ),
        ("RegisterScalableTarget", scope(json!({"Tags": {"aws:owner": "me"}})), "ValidationException", "reserved"),
        (
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": RESOURCE}),
            "ValidationException",
            "ScalableDimension",
        ),
        (
            "DeregisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/other", "ScalableDimension": "ecs:service:DesiredCount"}),
            "ObjectNotFoundException",
            "No scalable target found for service namespace: ecs, resource ID: service/default/other",
        ),
        (
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs", "MaxResults": 51}),
            "ValidationException",
            "MaxResults",
        ),
        (
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs", "NextToken": "zz"}),
            "InvalidNextTokenException",
            "Invalid token",
        ),
        ("DescribeScalableTargets", json!({}), "ValidationException", "ServiceNamespace"),
        (
            "PutScalingPolicy",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/other", "ScalableDimension": "ecs:service:DesiredCount", "PolicyName": "p", "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": step(json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]))}),
            "ObjectNotFoundException",
            "No scalable target registered for service namespace: ecs, resource ID: service/default/other, scalable dimension: ecs:service:DesiredCount",
        ),
        (
            "PutScalingPolicy",
            scope(json!({"PolicyName": "p", "PolicyType": "PredictiveScaling"})),
            "ValidationException",
            "predictive",
        ),
        (
            "PutScalingPolicy",
            scope(json!({"PolicyName": "p", "PolicyType": "StepScaling"})),
            "ValidationException",
            "StepScalingPolicyConfiguration is required",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": step(json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}])), "TargetTrackingScalingPolicyConfiguration": tt}),
            ),
            "ValidationException",
            "not allowed for a StepScaling policy",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": step(json!([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1}, {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}]))}),
            ),
            "ValidationException",
            "gap",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": {"StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}),
            ),
            "ValidationException",
            "AdjustmentType",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "MinAdjustmentMagnitude": 2, "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}),
            ),
            "ValidationException",
            "MinAdjustmentMagnitude",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": -1, "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}),
            ),
            "ValidationException",
            "Cooldown",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "StepScalingPolicyConfiguration": {"AdjustmentType": "Sideways", "StepAdjustments": []}}),
            ),
            "ValidationException",
            "AdjustmentType",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "x"}}}),
            ),
            "ValidationException",
            "is not of the form app/",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}}),
            ),
            "ValidationException",
            "ResourceLabel is required",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "app/web/50dc6c495c0c9188/targetgroup/web/943f017f100becff"}}}),
            ),
            "ValidationException",
            "is not attached to service/default/web",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}}),
            ),
            "ValidationException",
            "not valid for service namespace ecs",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 0.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}),
            ),
            "ValidationException",
            "TargetValue",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0}}),
            ),
            "ValidationException",
            "Exactly one of",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "CustomizedMetricSpecification": {"Metrics": [{"Id": "m1", "Expression": "a+b"}]}}}),
            ),
            "ValidationException",
            "metric math",
        ),
        (
            "PutScalingPolicy",
            scope(
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "CustomizedMetricSpecification": {"MetricName": "Depth", "Statistic": "Average"}}}),
            ),
            "ValidationException",
            "Namespace is missing",
        ),
        (
            "DeleteScalingPolicy",
            scope(json!({"PolicyName": "nope"})),
            "ObjectNotFoundException",
            "No scaling policy found for service namespace: ecs, resource ID: service/default/web, scalable dimension: ecs:service:DesiredCount, policy name: nope",
        ),
        (
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount"}),
            "ValidationException",
            "must also specify a resource ID",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "every day", "ScalableTargetAction": {"MinCapacity": 2}}),
            ),
            "ValidationException",
            "at(...), rate(...) or cron(...)",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "cron(0 12 * * * *)", "ScalableTargetAction": {"MinCapacity": 2}}),
            ),
            "ValidationException",
            "exactly one",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "cron(0 12 * * ? *)", "Timezone": "Mars/Base", "ScalableTargetAction": {"MinCapacity": 2}}),
            ),
            "ValidationException",
            "time zone",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "at(2001-01-01T00:00:00)", "ScalableTargetAction": {"MinCapacity": 2}}),
            ),
            "ValidationException",
            "never runs",
        ),
        (
            "PutScheduledAction",
            scope(json!({"ScheduledActionName": "a", "Schedule": "rate(5 minutes)"})),
            "ValidationException",
            "MinCapacity, MaxCapacity or both",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "rate(5 minutes)", "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 2}}),
            ),
            "ValidationException",
            "cannot be greater",
        ),
        (
            "PutScheduledAction",
            scope(json!({"ScheduledActionName": "a", "ScalableTargetAction": {"MinCapacity": 2}})),
            "ValidationException",
            "Schedule is required",
        ),
        (
            "PutScheduledAction",
            scope(
                json!({"ScheduledActionName": "a", "Schedule": "rate(1 day)", "StartTime": 1_900_000_000, "EndTime": 1_800_000_000, "ScalableTargetAction": {"MinCapacity": 2}}),
            ),
            "ValidationException",
            "EndTime",
        ),
        (
            "DeleteScheduledAction",
            scope(json!({"ScheduledActionName": "nope"})),
            "ObjectNotFoundException",
            "scheduled action name: nope",
        ),
        (
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs", "MaxResults": 0}),
            "ValidationException",
            "MaxResults",
        ),
        (
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount"}),
            "ValidationException",
            "resource ID",
        ),
        (
            "TagResource",
            json!({"ResourceARN": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/none", "Tags": {"a": "b"}}),
            "ResourceNotFoundException",
            "No scalable target found",
        ),
        (
            "ListTagsForResource",
            json!({"ResourceARN": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/none"}),
            "ResourceNotFoundException",
            "No scalable target found",
        ),
        (
            "UntagResource",
            json!({"ResourceARN": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/none", "TagKeys": ["a"]}),
            "ResourceNotFoundException",
            "No scalable target found",
        ),
        (
            "GetPredictiveScalingForecast",
            scope(json!({"PolicyName": "cpu", "StartTime": 1, "EndTime": 2})),
            "ValidationException",
            "does not implement",
        ),
    ];
    for (op, input, code, fragment) in cases {
        let (got, message) = h.call_json(&SERVICE, op, input.clone()).await.expect_err(&format!("{op} {input}"));
        assert_eq!(got, code, "{op} {input}: {message}");
        assert!(message.contains(fragment), "{op} {input}: {message} lacks {fragment}");
    }
    // Alarm actions must name a policy Berth has.
    let alarm = json!({"AlarmName": "x", "Namespace": "App", "MetricName": "Depth", "Statistic": "Average", "Period": 60,
        "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:0:resource/ecs/service/default/web:policyName/nope"]});
    let (code, message) = cw(&h, "PutMetricAlarm", alarm).await.unwrap_err();
    assert_eq!(code, "InvalidParameterValue");
    assert!(message.contains("names no scaling policy"), "{message}");
    assert_eq!(snapshot(&h).await, before, "nothing changed");
}

#[tokio::test]
async fn target_tracking_makes_its_alarms_and_scales_out_then_in() {
    let h = setup(1).await;
    aas(&h, "RegisterScalableTarget", target(1, 4)).await;
    let config = json!({"TargetValue": 50.0, "ScaleOutCooldown": 30, "ScaleInCooldown": 30,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
    let out = aas(&h, "PutScalingPolicy", scope(json!({"PolicyName": "cpu50", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config}))).await;
    let policy_arn = out["PolicyARN"].as_str().unwrap().to_string();
    assert!(policy_arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:"), "{policy_arn}");
    assert!(policy_arn.ends_with(":resource/ecs/service/default/web:policyName/cpu50"), "{policy_arn}");
    let names: Vec<String> =
        out["Alarms"].as_array().unwrap().iter().map(|a| a["AlarmName"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].starts_with("TargetTracking-service/default/web-AlarmHigh-"), "{names:?}");
    assert!(names[1].starts_with("TargetTracking-service/default/web-AlarmLow-"), "{names:?}");
    let alarms = cw(&h, "DescribeAlarms", json!({"AlarmNamePrefix": "TargetTracking-"})).await.unwrap();
    let high = &alarms["MetricAlarms"][0];
    assert_eq!((high["EvaluationPeriods"].as_i64(), high["DatapointsToAlarm"].as_i64()), (Some(3), Some(3)));
    assert_eq!(
        (high["Threshold"].as_f64(), high["ComparisonOperator"].as_str()),
        (Some(50.0), Some("GreaterThanThreshold"))
    );
    assert_eq!((high["Namespace"].as_str(), high["MetricName"].as_str()), (Some("AWS/ECS"), Some("CPUUtilization")));
    assert_eq!(high["AlarmActions"], json!([policy_arn]));
    assert_eq!(high["Period"].as_i64(), Some(60), "the metric period");
    let low = &alarms["MetricAlarms"][1];
    assert_eq!((low["EvaluationPeriods"].as_i64(), low["Threshold"].as_f64()), (Some(15), Some(45.0)));
    let by_action = cw(&h, "DescribeAlarms", json!({"ActionPrefix": "arn:aws:autoscaling:"})).await.unwrap();
    assert_eq!(by_action["MetricAlarms"].as_array().unwrap().len(), 2);

    // Three minutes at 200% on one task: 1 × 200 / 50 = 4.
    let mut last = HashMap::new();
    for ago in [150, 90, 30] {
        cpu(&h, 200.0, ago);
    }
    crate::cloudwatch::alarms::sweep(&h.app, &mut last).await.unwrap();
    assert_eq!(desired(&h).await, 4);
    let acts = activities(&h, false).await;
    assert_eq!(acts[0]["Description"], "Setting desired count to 4.");
    assert_eq!(acts[0]["Cause"], format!("monitor alarm {} in state ALARM triggered policy cpu50", names[0]));
    assert_eq!(acts[0]["StatusMessage"], "Successfully set desired count to 4. Change successfully fulfilled by ecs.");
    // Still above target at the maximum: one not scaled activity, not one a period.
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(60));
        cpu(&h, 200.0, 30);
        crate::cloudwatch::alarms::sweep(&h.app, &mut last).await.unwrap();
    }
    let with_not_scaled = activities(&h, true).await;
    assert_eq!(with_not_scaled.len(), 2, "{with_not_scaled:?}");
    assert_eq!(with_not_scaled[0]["NotScaledReasons"][0]["Code"], "AlreadyAtMaxCapacity");
    assert_eq!(activities(&h, false).await.len(), 1);
    // Fifteen quiet minutes: 4 × 10 / 50 rounds up to 1.
    for _ in 0..16 {
        h.clock.advance(Duration::from_secs(60));
        cpu(&h, 10.0, 30);
        crate::cloudwatch::alarms::sweep(&h.app, &mut last).await.unwrap();
    }
    assert_eq!(desired(&h).await, 1);
    assert!(activities(&h, false).await[0]["Cause"].as_str().unwrap().contains("AlarmLow"));
    // Deleting the policy deletes its alarms.
    aas(&h, "DeleteScalingPolicy", scope(json!({"PolicyName": "cpu50"}))).await;
    assert_eq!(cw(&h, "DescribeAlarms", json!({})).await.unwrap()["MetricAlarms"], json!([]));
}

#[tokio::test]
async fn disable_scale_in_makes_no_low_alarm_and_suspension_holds_scale_out() {
    let h = setup(2).await;
    aas(
        &h,
        "RegisterScalableTarget",
        scope(json!({"MinCapacity": 1, "MaxCapacity": 6, "SuspendedState": {"DynamicScalingOutSuspended": true}})),
    )
    .await;
    let config = json!({"TargetValue": 50.0, "DisableScaleIn": true,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}});
    let out = aas(&h, "PutScalingPolicy", scope(json!({"PolicyName": "mem", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config}))).await;
    assert_eq!(out["Alarms"].as_array().unwrap().len(), 1);
    let high = out["Alarms"][0]["AlarmName"].as_str().unwrap().to_string();
    let data = json!({"recentDatapoints": [150.0]}).to_string();
    cw(
        &h,
        "SetAlarmState",
        json!({"AlarmName": high, "StateValue": "ALARM", "StateReason": "test", "StateReasonData": data}),
    )
    .await
    .unwrap();
    assert_eq!(desired(&h).await, 2, "scale-out suspended");
    aas(&h, "RegisterScalableTarget", scope(json!({"SuspendedState": {"DynamicScalingOutSuspended": false}}))).await;
    cw(&h, "SetAlarmState", json!({"AlarmName": high, "StateValue": "OK", "StateReason": "test"})).await.unwrap();
    cw(
        &h,
        "SetAlarmState",
        json!({"AlarmName": high, "StateValue": "ALARM", "StateReason": "test", "StateReasonData": data}),
    )
    .await
    .unwrap();
    assert_eq!(desired(&h).await, 6, "2 × 150 / 50");
    let history =
        cw(&h, "DescribeAlarmHistory", json!({"AlarmName": high, "HistoryItemType": "Action"})).await.unwrap();
    assert!(
        history["AlarmHistoryItems"][0]["HistorySummary"]
            .as_str()
            .unwrap()
            .starts_with("Successfully executed action arn:aws:autoscaling:")
    );
}

#[tokio::test]
async fn step_scaling_runs_on_set_alarm_state_within_its_cooldown() {
    let h = setup(2).await;
    aas(&h, "RegisterScalableTarget", target(1, 10)).await;
    let config = json!({"AdjustmentType": "ChangeInCapacity", "Cooldown": 60, "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 3}]});
    let arn = aas(&h, "PutScalingPolicy", scope(json!({"PolicyName": "up", "StepScalingPolicyConfiguration": config})))
        .await["PolicyARN"]
        .as_str()
        .unwrap()
        .to_string();
    let alarm = json!({"AlarmName": "depth-high", "Namespace": "App", "MetricName": "Depth", "Statistic": "Average", "Period": 60,
        "EvaluationPeriods": 1, "Threshold": 100.0, "ComparisonOperator": "GreaterThanThreshold", "AlarmActions": [arn]});
    cw(&h, "PutMetricAlarm", alarm).await.unwrap();
    let set = |state: &str, data: Option<Value>| {
        let mut input = json!({"AlarmName": "depth-high", "StateValue": state, "StateReason": "test"});
        if let Some(d) = data {
            input["StateReasonData"] = json!(d.to_string());
        }
        cw(&h, "SetAlarmState", input)
    };
    // No datapoints: the threshold itself, the first step: +1.
    set("ALARM", None).await.unwrap();
    assert_eq!(desired(&h).await, 3);
    let acts = activities(&h, false).await;
    assert_eq!(acts[0]["Cause"], "monitor alarm depth-high in state ALARM triggered policy up");
    // Within the cooldown, +1 again from the 2 before is no more than there is.
    set("OK", None).await.unwrap();
    set("ALARM", None).await.unwrap();
    assert_eq!(desired(&h).await, 3);
    // A bigger breach (+3 from 2) within the cooldown adds what the first did not: 5.
    set("OK", None).await.unwrap();
    set("ALARM", Some(json!({"recentDatapoints": [130.0]}))).await.unwrap();
    assert_eq!(desired(&h).await, 5);
    // After the cooldown, +1 from 5.
    h.clock.advance(Duration::from_secs(61));
    set("OK", None).await.unwrap();
    set("ALARM", None).await.unwrap();
    assert_eq!(desired(&h).await, 6);
    // Actions on OK only run when listed under OK.
    set("OK", None).await.unwrap();
    assert_eq!(desired(&h).await, 6);
}

#[tokio::test]
async fn scheduled_actions_run_at_their_time_on_the_leader_pass() {
    let h = setup(1).await;
    aas(&h, "RegisterScalableTarget", target(1, 3)).await;
    let now = h.clock_ms() / 1000;
    let when = |secs: i64| {
        let t = time::OffsetDateTime::from_unix_timestamp(now + secs).unwrap();
        format!(
            "at({})",
            t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).unwrap()
        )
    };
    aas(
        &h,
        "PutScheduledAction",
        scope(json!({"ScheduledActionName": "morning", "Schedule": when(30),
        "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 5}})),
    )
    .await;
    aas(
        &h,
        "PutScheduledAction",
        scope(json!({"ScheduledActionName": "evening", "Schedule": "cron(0 18 * * ? *)",
        "Timezone": "Europe/Paris", "ScalableTargetAction": {"MaxCapacity": 2}})),
    )
    .await;
    let described =
        aas(&h, "DescribeScheduledActions", json!({"ServiceNamespace": "ecs", "ScheduledActionNames": ["evening"]}))
            .await;
    assert_eq!(described["ScheduledActions"][0]["Timezone"], "Europe/Paris");
    assert_eq!(described["ScheduledActions"][0]["ScalableTargetAction"], json!({"MaxCapacity": 2}));
    assert_eq!(berth_control::autoscaling::scheduled::pass(&h.app.control).await.unwrap(), 0, "not yet");
    assert_eq!(desired(&h).await, 1);
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(berth_control::autoscaling::scheduled::pass(&h.app.control).await.unwrap(), 1);
    assert_eq!(desired(&h).await, 3);
    let acts = activities(&h, false).await;
    assert_eq!(acts[0]["Description"], "Setting desired count to 3.");
    assert_eq!(acts[0]["Cause"], "minimum capacity was set to 3");
    assert_eq!(acts[1]["Description"], "Setting min capacity to 3 and max capacity to 5");
    assert_eq!(acts[1]["Cause"], "scheduled action name morning was triggered");
    assert_eq!(berth_control::autoscaling::scheduled::pass(&h.app.control).await.unwrap(), 0, "at() runs once");
    let t = aas(&h, "DescribeScalableTargets", json!({"ServiceNamespace": "ecs"})).await;
    assert_eq!(t["ScalableTargets"][0]["MinCapacity"], 3);
    // Suspended scheduled scaling skips a run.
    aas(&h, "RegisterScalableTarget", scope(json!({"SuspendedState": {"ScheduledScalingSuspended": true}}))).await;
    h.clock.advance(Duration::from_secs(86_400));
    assert_eq!(berth_control::autoscaling::scheduled::pass(&h.app.control).await.unwrap(), 0);
    assert_eq!(desired(&h).await, 3);
    aas(&h, "DeleteScheduledAction", scope(json!({"ScheduledActionName": "evening"}))).await;
    let left = aas(&h, "DescribeScheduledActions", json!({"ServiceNamespace": "ecs"})).await;
    assert_eq!(left["ScheduledActions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tags_and_deregistration_take_policies_and_alarms_along() {
    let h = setup(1).await;
    let arn =
        aas(&h, "RegisterScalableTarget", scope(json!({"MinCapacity": 1, "MaxCapacity": 2, "Tags": {"team": "web"}})))
            .await["ScalableTargetARN"]
            .as_str()
            .unwrap()
            .to_string();
    aas(&h, "TagResource", json!({"ResourceARN": arn, "Tags": {"env": "prod"}})).await;
    aas(&h, "UntagResource", json!({"ResourceARN": arn, "TagKeys": ["team"]})).await;
    assert_eq!(aas(&h, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"], json!({"env": "prod"}));
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (code, _) = h.call_json(&SERVICE, "TagResource", json!({"ResourceARN": arn, "Tags": many})).await.unwrap_err();
    assert_eq!(code, "TooManyTagsException");
    let config = json!({"TargetValue": 70.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
    aas(&h, "PutScalingPolicy", scope(json!({"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config}))).await;
    aas(
        &h,
        "PutScheduledAction",
        scope(
            json!({"ScheduledActionName": "a", "Schedule": "rate(1 hour)", "ScalableTargetAction": {"MinCapacity": 1}}),
        ),
    )
    .await;
    assert_eq!(cw(&h, "DescribeAlarms", json!({})).await.unwrap()["MetricAlarms"].as_array().unwrap().len(), 2);
    aas(&h, "DeregisterScalableTarget", scope(json!({}))).await;
    assert_eq!(cw(&h, "DescribeAlarms", json!({})).await.unwrap()["MetricAlarms"], json!([]));
    for (op, list) in [("DescribeScalingPolicies", "ScalingPolicies"), ("DescribeScheduledActions", "ScheduledActions")]
    {
        assert_eq!(aas(&h, op, json!({"ServiceNamespace": "ecs"})).await[list], json!([]));
    }
}

/// A service `api` behind an application load balancer's target group: (its resource label,
/// the group's dimension).
async fn behind_a_load_balancer(h: &Harness) -> (String, String) {
    use crate::elbv2::SERVICE as ELB;
    let subnets = h.call_json(&crate::ec2::SERVICE, "DescribeSubnets", json!({})).await.unwrap();
    let (subnet, vpc) = (&subnets["Subnets"][0]["SubnetId"], &subnets["Subnets"][0]["VpcId"]);
    let lb = h.call_json(&ELB, "CreateLoadBalancer", json!({"Name": "front", "Subnets": [subnet]})).await.unwrap();
    let lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"].as_str().unwrap().to_string();
    let tg = json!({"Name": "web", "Protocol": "HTTP", "Port": 80, "VpcId": vpc, "TargetType": "instance"});
    let tg = h.call_json(&ELB, "CreateTargetGroup", tg).await.unwrap();
    let tg_arn = tg["TargetGroups"][0]["TargetGroupArn"].as_str().unwrap().to_string();
    let listener = json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 8080,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]});
    h.call_json(&ELB, "CreateListener", listener).await.unwrap();
    let def = json!({"family": "web", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 32,
        "portMappings": [{"containerPort": 80}]}]});
    h.call("RegisterTaskDefinition", def).await.unwrap();
    let lbs = json!([{"targetGroupArn": tg_arn, "containerName": "c", "containerPort": 80}]);
    // A second service, `api`, sits behind it; `web` has no load balancer.
    h.call(
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "web:2", "desiredCount": 1, "loadBalancers": lbs}),
    )
    .await
    .unwrap();
    let lb_part = lb_arn.split_once(":loadbalancer/").unwrap().1.to_string();
    let tg_part = tg_arn.rsplit_once(':').unwrap().1.to_string();
    (format!("{lb_part}/{tg_part}"), tg_part)
}

#[tokio::test]
async fn request_count_per_target_tracks_a_target_group_of_the_service() {
    let h = setup(1).await;
    let (label, group) = behind_a_load_balancer(&h).await;
    let api = |extra: Value| {
        let mut v = json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/api",
            "ScalableDimension": "ecs:service:DesiredCount"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    aas(&h, "RegisterScalableTarget", api(json!({"MinCapacity": 1, "MaxCapacity": 5}))).await;
    aas(&h, "RegisterScalableTarget", target(1, 5)).await;
    let policy = |label: &str| {
        json!({"PolicyName": "rpt", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 100.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": label}}})
    };
    // `web` has no target group; a label naming another load balancer is refused too.
    let (code, message) = h.call_json(&SERVICE, "PutScalingPolicy", scope(policy(&label))).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(message.contains("is not attached to service/default/web"), "{message}");
    let elsewhere = format!("app/other/50dc6c495c0c9188/{group}");
    let (code, message) = h.call_json(&SERVICE, "PutScalingPolicy", api(policy(&elsewhere))).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(message.contains("is not behind load balancer app/other/50dc6c495c0c9188"), "{message}");

    aas(&h, "PutScalingPolicy", api(policy(&label))).await;
    // Once its target group is gone, the same label is refused in Auto Scaling's words.
    let tg_arn = h.call_json(&crate::elbv2::SERVICE, "DescribeTargetGroups", json!({"Names": ["web"]})).await.unwrap()
        ["TargetGroups"][0]["TargetGroupArn"]
        .clone();
    let lb = h.call_json(&crate::elbv2::SERVICE, "DescribeLoadBalancers", json!({})).await.unwrap();
    let lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"].clone();
    let listeners = h.call_json(&crate::elbv2::SERVICE, "DescribeListeners", json!({"LoadBalancerArn": lb_arn})).await;
    let listener = listeners.unwrap()["Listeners"][0]["ListenerArn"].clone();
    h.call_json(&crate::elbv2::SERVICE, "DeleteListener", json!({"ListenerArn": listener})).await.unwrap();
    h.call_json(&crate::elbv2::SERVICE, "DeleteTargetGroup", json!({"TargetGroupArn": tg_arn})).await.unwrap();
    let (code, message) = h.call_json(&SERVICE, "PutScalingPolicy", api(policy(&label))).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(message.contains("no longer exists"), "{message}");
    let alarms =
        cw(&h, "DescribeAlarms", json!({"AlarmNamePrefix": "TargetTracking-service/default/api"})).await.unwrap();
    let high = &alarms["MetricAlarms"][0];
    assert_eq!(
        (high["Namespace"].as_str(), high["MetricName"].as_str(), high["Statistic"].as_str()),
        (Some("AWS/ApplicationELB"), Some("RequestCountPerTarget"), Some("Sum"))
    );
    assert_eq!(high["Dimensions"], json!([{"Name": "TargetGroup", "Value": group}]));
    // Three periods at 300 requests per target: 1 × 300 / 100 = 3.
    let now = h.clock_ms();
    for ago in [150, 90, 30] {
        let dims = vec![("TargetGroup".to_string(), group.clone())];
        let datum = Datum {
            metric: MetricId::new("AWS/ApplicationELB", "RequestCountPerTarget", dims),
            timestamp: now - ago * 1000,
            stats: Stats::value(300.0),
            unit: Some("Count".into()),
        };
        h.app.metrics.put(&[datum]).unwrap();
    }
    crate::cloudwatch::alarms::sweep(&h.app, &mut HashMap::new()).await.unwrap();
    let out = h.call("DescribeServices", json!({"services": ["api"]})).await.unwrap();
    assert_eq!(out["services"][0]["desiredCount"], 3);
}
