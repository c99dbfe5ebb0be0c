"""Application Auto Scaling against a real `berth up` (no agent: a service's desiredCount is
what scaling changes), with boto3 and the AWS CLI: a bad-input table per operation that also
checks nothing changed, the alarms target tracking makes, step scaling through an alarm set
with SetAlarmState, a scheduled action changing desiredCount at its time, and the scaling
activities AWS's way."""

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from ecs_helpers import until

RESOURCE = "service/default/web"
DIM = "ecs:service:DesiredCount"


def scope(**extra):
    return {"ServiceNamespace": "ecs", "ResourceId": RESOURCE, "ScalableDimension": DIM, **extra}


@pytest.fixture
def scaling(berth):
    ecs = berth.client()
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}])
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=1)
    return berth, ecs, berth.client("application-autoscaling"), berth.client("cloudwatch")


def desired(ecs):
    return ecs.describe_services(services=["web"])["services"][0]["desiredCount"]


def snapshot(ecs, aas, cw):
    strip = lambda r: {k: v for k, v in r.items() if k != "ResponseMetadata"}
    return {
        "targets": strip(aas.describe_scalable_targets(ServiceNamespace="ecs")),
        "policies": strip(aas.describe_scaling_policies(ServiceNamespace="ecs")),
        "actions": strip(aas.describe_scheduled_actions(ServiceNamespace="ecs")),
        "activities": strip(aas.describe_scaling_activities(ServiceNamespace="ecs", IncludeNotScaledActivities=True)),
        "alarms": [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]],
        "desired": desired(ecs),
    }


STEP = {"AdjustmentType": "ChangeInCapacity", "Cooldown": 0,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]}
CPU = {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
NONE_ARN = "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/none"

# (operation, arguments, error code, text the message must contain)
BAD = [
    ("register_scalable_target", dict(ServiceNamespace="dynamodb", ResourceId="table/t", ScalableDimension="dynamodb:table:ReadCapacityUnits", MinCapacity=1, MaxCapacity=2), "ValidationException", "ECS services only"),
    ("register_scalable_target", dict(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension="ec2:spot-fleet-request:TargetCapacity", MinCapacity=1, MaxCapacity=2), "ValidationException", "Unsupported scalable dimension"),
    ("register_scalable_target", dict(ServiceNamespace="ecs", ResourceId="cluster/default", ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2), "ValidationException", "service/CLUSTER/SERVICE"),
    ("register_scalable_target", dict(ServiceNamespace="ecs", ResourceId="service/default/missing", ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2), "ValidationException", "ECS service doesn't exist: service/default/missing"),
    ("register_scalable_target", scope(MinCapacity=4, MaxCapacity=2), "ValidationException", "cannot be greater than maximum"),
    ("register_scalable_target", scope(MinCapacity=-1, MaxCapacity=2), "ValidationException", "MinCapacity must be 0 or more"),
    ("register_scalable_target", scope(MinCapacity=1, MaxCapacity=2, RoleARN="arn:aws:s3:::bucket"), "ValidationException", "RoleARN"),
    ("register_scalable_target", scope(MinCapacity=1, MaxCapacity=2, Tags={"aws:x": "y"}), "ValidationException", "reserved"),
    ("deregister_scalable_target", dict(ServiceNamespace="ecs", ResourceId="service/default/other", ScalableDimension=DIM), "ObjectNotFoundException", "No scalable target found for service namespace: ecs, resource ID: service/default/other"),
    ("describe_scalable_targets", dict(ServiceNamespace="ecs", MaxResults=100), "ValidationException", "MaxResults"),
    ("describe_scalable_targets", dict(ServiceNamespace="ecs", NextToken="not-a-token"), "InvalidNextTokenException", "Invalid token"),
    ("put_scaling_policy", dict(ServiceNamespace="ecs", ResourceId="service/default/other", ScalableDimension=DIM, PolicyName="p", StepScalingPolicyConfiguration=STEP), "ObjectNotFoundException", "No scalable target registered for service namespace: ecs, resource ID: service/default/other, scalable dimension: ecs:service:DesiredCount"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="PredictiveScaling"), "ValidationException", "predictive"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="StepScaling"), "ValidationException", "StepScalingPolicyConfiguration is required"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={"TargetValue": 10.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "app/lb/1/targetgroup/tg/2"}}), "ValidationException", "is not attached to service/default/web"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={"TargetValue": 10.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}), "ValidationException", "not valid for service namespace ecs"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={"TargetValue": 10.0, "CustomizedMetricSpecification": {"Metrics": [{"Id": "e", "Expression": "1+1"}]}}), "ValidationException", "metric math"),
    ("put_scaling_policy", scope(PolicyName="p", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={"TargetValue": -5.0, **{k: v for k, v in CPU.items() if k != "TargetValue"}}), "ValidationException", "TargetValue"),
    ("put_scaling_policy", scope(PolicyName="p", StepScalingPolicyConfiguration={**STEP, "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5, "ScalingAdjustment": 1}, {"MetricIntervalLowerBound": 3, "ScalingAdjustment": 2}]}), "ValidationException", "overlap"),
    ("put_scaling_policy", scope(PolicyName="p", StepScalingPolicyConfiguration={**STEP, "MinAdjustmentMagnitude": 1}), "ValidationException", "PercentChangeInCapacity"),
    ("delete_scaling_policy", scope(PolicyName="missing"), "ObjectNotFoundException", "policy name: missing"),
    ("describe_scaling_policies", dict(ServiceNamespace="ecs", ScalableDimension=DIM), "ValidationException", "resource ID"),
    ("put_scheduled_action", scope(ScheduledActionName="a", Schedule="cron(0 25 * * ? *)", ScalableTargetAction={"MinCapacity": 2}), "ValidationException", "hours"),
    ("put_scheduled_action", scope(ScheduledActionName="a", Schedule="rate(0 hours)", ScalableTargetAction={"MinCapacity": 2}), "ValidationException", "rate("),
    ("put_scheduled_action", scope(ScheduledActionName="a", Schedule="cron(0 8 * * ? *)", Timezone="Nowhere/Land", ScalableTargetAction={"MinCapacity": 2}), "ValidationException", "time zone"),
    ("put_scheduled_action", scope(ScheduledActionName="a", Schedule="at(2020-01-01T00:00:00)", ScalableTargetAction={"MinCapacity": 2}), "ValidationException", "never runs"),
    ("put_scheduled_action", scope(ScheduledActionName="a", Schedule="rate(1 hour)"), "ValidationException", "MinCapacity, MaxCapacity or both"),
    ("delete_scheduled_action", scope(ScheduledActionName="missing"), "ObjectNotFoundException", "scheduled action name: missing"),
    ("describe_scheduled_actions", dict(ServiceNamespace="ecs", MaxResults=0), "ValidationException", "MaxResults"),
    ("describe_scaling_activities", dict(ServiceNamespace="ecs", ScalableDimension=DIM), "ValidationException", "resource ID"),
    ("tag_resource", dict(ResourceARN=NONE_ARN, Tags={"a": "b"}), "ResourceNotFoundException", "No scalable target found"),
    ("untag_resource", dict(ResourceARN=NONE_ARN, TagKeys=["a"]), "ResourceNotFoundException", "No scalable target found"),
    ("list_tags_for_resource", dict(ResourceARN=NONE_ARN), "ResourceNotFoundException", "No scalable target found"),
    ("get_predictive_scaling_forecast", scope(PolicyName="p", StartTime=datetime(2026, 1, 1), EndTime=datetime(2026, 1, 2)), "ValidationException", "does not implement"),
]


def test_bad_inputs_are_refused_and_change_nothing(scaling):
    _, ecs, aas, cw = scaling
    aas.register_scalable_target(**scope(MinCapacity=1, MaxCapacity=3))
    aas.put_scaling_policy(**scope(PolicyName="cpu", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=CPU))
    before = snapshot(ecs, aas, cw)
    for op, args, code, fragment in BAD:
        with pytest.raises(ClientError) as e:
            getattr(aas, op)(**args)
        err = e.value.response["Error"]
        assert err["Code"] == code, (op, args, err)
        assert fragment in err["Message"], (op, args, err)
    with pytest.raises(ClientError) as e:
        cw.put_metric_alarm(AlarmName="x", Namespace="App", MetricName="m", Statistic="Average", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                            AlarmActions=["arn:aws:sns:us-east-1:000000000000:topic"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert snapshot(ecs, aas, cw) == before


def test_cli_target_tracking_policy_makes_its_alarms(scaling):
    b, ecs, aas, cw = scaling
    cli = lambda *a: b.cli("application-autoscaling", *a, "--endpoint-url", b.endpoint)
    out = cli("register-scalable-target", "--service-namespace", "ecs", "--resource-id", RESOURCE,
              "--scalable-dimension", DIM, "--min-capacity", "1", "--max-capacity", "10")
    assert out["ScalableTargetARN"].startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    config = json.dumps({"TargetValue": 50.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 120,
                         "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    policy = cli("put-scaling-policy", "--service-namespace", "ecs", "--resource-id", RESOURCE, "--scalable-dimension", DIM,
                 "--policy-name", "cpu50", "--policy-type", "TargetTrackingScaling",
                 "--target-tracking-scaling-policy-configuration", config)
    assert policy["PolicyARN"].endswith(":resource/ecs/service/default/web:policyName/cpu50")
    high, low = [a["AlarmName"] for a in policy["Alarms"]]
    assert high.startswith("TargetTracking-service/default/web-AlarmHigh-") and low.startswith("TargetTracking-service/default/web-AlarmLow-")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]}
    assert (alarms[high]["EvaluationPeriods"], alarms[high]["DatapointsToAlarm"], alarms[high]["Threshold"]) == (3, 3, 50.0)
    assert (alarms[low]["EvaluationPeriods"], alarms[low]["DatapointsToAlarm"], alarms[low]["Threshold"]) == (15, 15, 45.0)
    assert alarms[high]["AlarmActions"] == [policy["PolicyARN"]]
    assert alarms[high]["Dimensions"] == [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "web"}]
    described = cli("describe-scaling-policies", "--service-namespace", "ecs", "--resource-id", RESOURCE)["ScalingPolicies"]
    assert described[0]["TargetTrackingScalingPolicyConfiguration"]["ScaleInCooldown"] == 120
    assert {a["AlarmName"] for a in described[0]["Alarms"]} == {high, low}
    cli("delete-scaling-policy", "--service-namespace", "ecs", "--resource-id", RESOURCE, "--scalable-dimension", DIM,
        "--policy-name", "cpu50")
    assert cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"] == []


def test_step_scaling_through_set_alarm_state(scaling):
    _, ecs, aas, cw = scaling
    aas.register_scalable_target(**scope(MinCapacity=1, MaxCapacity=4))
    arn = aas.put_scaling_policy(**scope(PolicyName="queue-up", PolicyType="StepScaling",
                                         StepScalingPolicyConfiguration=STEP))["PolicyARN"]
    cw.put_metric_alarm(AlarmName="queue-deep", Namespace="App", MetricName="Depth", Statistic="Average", Period=60,
                        EvaluationPeriods=1, Threshold=100, ComparisonOperator="GreaterThanThreshold", AlarmActions=[arn])
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="ALARM", StateReason="testing the policy")
    assert desired(ecs) == 3
    activity = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"][0]
    assert activity["Cause"] == "monitor alarm queue-deep in state ALARM triggered policy queue-up"
    assert activity["Description"] == "Setting desired count to 3."
    assert activity["StatusCode"] == "Successful"
    assert activity["StatusMessage"] == "Successfully set desired count to 3. Change successfully fulfilled by ecs."
    history = cw.describe_alarm_history(AlarmName="queue-deep", HistoryItemType="Action")["AlarmHistoryItems"]
    assert history[0]["HistorySummary"] == f"Successfully executed action {arn}"
    # Again: clamped at the maximum of 4.
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="OK", StateReason="reset")
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="ALARM", StateReason="again")
    assert desired(ecs) == 4
    # At the maximum: a not scaled activity, shown only when asked for.
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="OK", StateReason="reset")
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="ALARM", StateReason="again")
    assert desired(ecs) == 4
    plain = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
    full = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE, IncludeNotScaledActivities=True)["ScalingActivities"]
    assert len(full) == len(plain) + 1
    assert full[0]["NotScaledReasons"] == [{"Code": "AlreadyAtMaxCapacity", "MinCapacity": 1, "MaxCapacity": 4, "CurrentCapacity": 4}]
    # Suspending scale-out holds the policy.
    aas.register_scalable_target(**scope(MaxCapacity=8, SuspendedState={"DynamicScalingOutSuspended": True}))
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="OK", StateReason="reset")
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="ALARM", StateReason="again")
    assert desired(ecs) == 4


def test_a_scheduled_action_changes_desired_count_at_its_time(scaling):
    _, ecs, aas, _ = scaling
    aas.register_scalable_target(**scope(MinCapacity=1, MaxCapacity=3))
    # Far enough ahead that the calls below, on a busy machine, end before it.
    # Whole seconds: the schedule names no fraction, so the action is due at the second itself.
    at = (datetime.now(timezone.utc) + timedelta(seconds=10)).replace(microsecond=0)
    aas.put_scheduled_action(**scope(ScheduledActionName="rush", Schedule=f"at({at:%Y-%m-%dT%H:%M:%S})",
                                     ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 6}))
    aas.put_scheduled_action(**scope(ScheduledActionName="nightly", Schedule="cron(0 22 ? * MON-FRI *)",
                                     Timezone="America/New_York", ScalableTargetAction={"MaxCapacity": 2}))
    names = [a["ScheduledActionName"] for a in aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"]]
    assert names == ["nightly", "rush"]
    assert desired(ecs) == 1
    until(lambda: desired(ecs) == 2, timeout=30, what="the scheduled action's new minimum")
    assert time.time() >= at.timestamp() - 0.1, "not before its time"
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
    assert [(a["Description"], a["Cause"]) for a in acts[:2]] == [
        ("Setting desired count to 2.", "minimum capacity was set to 2"),
        ("Setting min capacity to 2 and max capacity to 6", "scheduled action name rush was triggered"),
    ]
    target = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    arn = target["ScalableTargetARN"]
    aas.tag_resource(ResourceARN=arn, Tags={"team": "web"})
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "web"}
    aas.deregister_scalable_target(**scope())
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"] == []
