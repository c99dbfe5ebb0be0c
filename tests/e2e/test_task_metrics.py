"""The tasks' built-in metrics: an agent reports each task's cpu and memory every metric
period, and a service whose task burns cpu shows it in AWS/ECS CPUUtilization and in
ECS/ContainerInsights, on both runtime drivers."""

from datetime import datetime, timedelta, timezone

import pytest

from conftest import Berth, stop_agent_berth
from ecs_helpers import until, wait_task


@pytest.fixture(params=["docker", "oci"])
def fast_metrics_berth(tmp_path, request):
    b = Berth(tmp_path / "data", extra_args=("--runtime", request.param, "--reserved-memory", "0",
                                              "--metric-period", "2")).start()
    yield b
    stop_agent_berth(b, tmp_path / "data")


def test_a_busy_service_shows_its_cpu(fast_metrics_berth, registry):
    b = fast_metrics_berth
    ecs, cw = b.client(), b.client("cloudwatch")
    ecs.register_task_definition(family="burn", cpu="256", memory="64", containerDefinitions=[
        {"name": "spin", "image": registry, "command": ["sh", "-c", "while :; do :; done"]}])
    ecs.create_service(serviceName="burn", taskDefinition="burn", desiredCount=1)
    arn = until(lambda: ecs.list_tasks(serviceName="burn")["taskArns"], what="the service's task")[0]
    wait_task(ecs, arn, "RUNNING")
    dims = [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "burn"}]

    def cpu():
        now = datetime.now(timezone.utc)
        out = cw.get_metric_statistics(Namespace="AWS/ECS", MetricName="CPUUtilization", Dimensions=dims,
                                       StartTime=now - timedelta(minutes=2), EndTime=now + timedelta(minutes=1),
                                       Period=60, Statistics=["Maximum", "SampleCount"], Unit="Percent")
        points = out["Datapoints"]
        return points if points and max(p["Maximum"] for p in points) > 20 else None

    points = until(cpu, timeout=60, what="a busy CPUUtilization datapoint")
    # A busy loop on a 256-unit reservation uses several times what it reserved.
    assert max(p["Maximum"] for p in points) > 20, points
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="ECS/ContainerInsights",
                                                      Dimensions=[{"Name": "ServiceName", "Value": "burn"}])["Metrics"]}
    assert {"CpuUtilized", "CpuReserved", "MemoryUtilized", "MemoryReserved"} <= names
    memory = cw.list_metrics(Namespace="AWS/ECS", MetricName="MemoryUtilization", Dimensions=dims)["Metrics"]
    assert memory, "MemoryUtilization is reported for the service"
    ecs.update_service(service="burn", desiredCount=0)
    wait_task(ecs, arn, "STOPPED")
