"""Cluster housekeeping: tasks of an agent gone past --lost-agent-timeout are written off, and
STOPPED tasks are forgotten after --stopped-task-retention, as ECS forgets them."""

import pytest

from conftest import Berth
from ecs_helpers import until


@pytest.fixture
def quick(tmp_path):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--agent-timeout", "1", "--lost-agent-timeout", "2",
                                            "--stopped-task-retention", "2")).start()
    yield b
    b.stop()


def test_tasks_of_a_lost_agent_are_written_off_then_forgotten(quick):
    ecs = quick.client()
    resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                 {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]
    instance = ecs.register_container_instance(totalResources=resources)["containerInstance"]["containerInstanceArn"]
    ecs.register_task_definition(family="app", containerDefinitions=[{"name": "c", "image": "x", "memory": 128}])
    arn = ecs.run_task(taskDefinition="app")["tasks"][0]["taskArn"]
    # Nobody heartbeats for the instance: after the lost-agent timeout its task is written off
    # and its resources go back.
    task = until(lambda: (lambda t: t if t["lastStatus"] == "STOPPED" else None)(ecs.describe_tasks(tasks=[arn])["tasks"][0]))
    assert task["stoppedReason"] == "Task stopped: the agent of its container instance was lost."
    assert task["stopCode"] == "ServiceSchedulerInitiated"
    remaining = ecs.describe_container_instances(containerInstances=[instance])["containerInstances"][0]["remainingResources"]
    assert {r["name"]: r.get("integerValue") for r in remaining}["MEMORY"] == 1024
    # Then, past the retention, it is forgotten.
    until(lambda: ecs.describe_tasks(tasks=[arn])["failures"])
    assert ecs.describe_tasks(tasks=[arn])["failures"] == [{"arn": arn, "reason": "MISSING"}]
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == []


def test_running_tasks_are_kept(tmp_path):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--stopped-task-retention", "1")).start()
    try:
        ecs = b.client()
        resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                     {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]
        ecs.register_container_instance(totalResources=resources)
        ecs.register_task_definition(family="app", containerDefinitions=[{"name": "c", "image": "x", "memory": 128}])
        keep = ecs.run_task(taskDefinition="app")["tasks"][0]["taskArn"]
        gone = ecs.run_task(taskDefinition="app")["tasks"][0]["taskArn"]
        ecs.stop_task(task=gone)
        until(lambda: ecs.describe_tasks(tasks=[gone])["failures"], timeout=20)
        assert ecs.describe_tasks(tasks=[keep])["tasks"][0]["lastStatus"] == "PENDING"
    finally:
        b.stop()
