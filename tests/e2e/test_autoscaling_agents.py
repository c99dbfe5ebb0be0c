"""Target tracking on a real service under real CPU load: `berth up --metric-period 3` with
its Docker agent, a service whose busybox tasks burn CPU until told to stop and then idle, and a
TargetTrackingScaling policy on ECSServiceAverageCPUUtilization. Its AlarmHigh (3 periods
above the target) scales the service out to its maximum while the tasks burn, its AlarmLow
(15 periods below 90% of it) back in to its minimum once they stop."""

import time

import pytest

from conftest import Berth, stop_agent_berth
from ecs_helpers import until, wait_task

RESOURCE = "service/default/burn"
DIM = "ecs:service:DesiredCount"
PERIOD = 3


@pytest.fixture
def fast_berth(tmp_path):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "docker", "--reserved-memory", "0",
                                              "--metric-period", str(PERIOD))).start()
    yield b
    stop_agent_berth(b, tmp_path / "data")


def test_target_tracking_scales_a_busy_service_out_and_back_in(fast_berth, registry, tmp_path):
    b = fast_berth
    ecs, aas, cw = b.client(), b.client("application-autoscaling"), b.client("cloudwatch")
    burn_until = int(time.time()) + 60
    # Each task burns one core on a quarter-vCPU reservation (~400%) while the test keeps the
    # `burn` file (until the scale-out; at most until the deadline), then sleeps.
    control = tmp_path / "control"
    control.mkdir()
    (control / "burn").touch()
    script = ('while [ -e /control/burn ] && [ "$(date +%s)" -lt "$UNTIL" ]; do '
              'i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; done; exec sleep 3600')
    ecs.register_task_definition(family="burn", cpu="256", memory="64", containerDefinitions=[
        {"name": "spin", "image": registry, "command": ["sh", "-c", script],
         "environment": [{"name": "UNTIL", "value": str(burn_until)}],
         "mountPoints": [{"sourceVolume": "control", "containerPath": "/control", "readOnly": True}]}],
        volumes=[{"name": "control", "host": {"sourcePath": str(control)}}])
    ecs.create_service(serviceName="burn", taskDefinition="burn", desiredCount=1)
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    policy = aas.put_scaling_policy(
        ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM, PolicyName="cpu50",
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0, "ScaleOutCooldown": 10, "ScaleInCooldown": 10,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    high, low = [a["AlarmName"] for a in policy["Alarms"]]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]}
    assert alarms[high]["Period"] == PERIOD, "target tracking's alarms take the metric period"

    desired = lambda: ecs.describe_services(services=["burn"])["services"][0]["desiredCount"]
    until(lambda: desired() == 3, timeout=55, interval=1, what="a scale-out to the maximum under load")
    assert time.time() < burn_until, "scaled out while the tasks burned"
    (control / "burn").unlink()
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
    assert acts[0]["Description"] == "Setting desired count to 3."
    assert acts[0]["Cause"] == f"monitor alarm {high} in state ALARM triggered policy cpu50"
    running = lambda: ecs.describe_services(services=["burn"])["services"][0]["runningCount"]
    until(lambda: running() == 3, timeout=60, interval=1, what="three running tasks")

    # Once the burning stops: 15 quiet periods, then back to the minimum.
    until(lambda: desired() == 1, timeout=15 * PERIOD + 60, interval=1,
          what="a scale-in to the minimum once idle")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
    assert acts[0]["Description"] == "Setting desired count to 1."
    assert acts[0]["Cause"] == f"monitor alarm {low} in state ALARM triggered policy cpu50"
    state = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]}
    assert state[low] == "ALARM" and state[high] == "OK", state

    aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM)
    assert cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"] == []
    arns = ecs.list_tasks(serviceName="burn")["taskArns"]
    ecs.update_service(service="burn", desiredCount=0)
    for arn in arns:
        wait_task(ecs, arn, "STOPPED")
