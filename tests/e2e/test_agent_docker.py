"""The local agent runs real containers through the Docker Engine."""

import time

import pytest


def wait_for(ecs, task_arn, status, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = ecs.describe_tasks(tasks=[task_arn])["tasks"][0]
        if task["lastStatus"] == status:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task never reached {status}: {task}")


def test_essential_container_exit_code_stops_the_task(agent_berth, registry):
    ecs = agent_berth.client()
    ecs.register_task_definition(family="exit3", containerDefinitions=[
        {"name": "main", "image": registry, "memory": 32, "command": ["sh", "-c", "exit 3"]}])
    arn = ecs.run_task(taskDefinition="exit3")["tasks"][0]["taskArn"]
    task = wait_for(ecs, arn, "STOPPED")
    assert task["containers"][0]["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["pullStartedAt"] <= task["pullStoppedAt"] <= task["startedAt"] <= task["stoppedAt"]


@pytest.mark.parametrize("image_suffix", ["nosuchimage:1"])
def test_missing_image_fails_to_start(agent_berth, registry, image_suffix):
    ecs = agent_berth.client()
    missing = registry.rsplit("/", 1)[0] + "/" + image_suffix
    ecs.register_task_definition(family="missing", containerDefinitions=[{"name": "main", "image": missing, "memory": 32}])
    arn = ecs.run_task(taskDefinition="missing")["tasks"][0]["taskArn"]
    task = wait_for(ecs, arn, "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError:"), task["stoppedReason"]
    assert "startedAt" not in task
