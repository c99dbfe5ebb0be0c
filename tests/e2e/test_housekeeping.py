"""Cluster housekeeping: tasks of an agent gone past --lost-agent-timeout are written off,
STOPPED tasks are forgotten after --stopped-task-retention, as ECS forgets them, and task
definition revisions in DELETE_IN_PROGRESS are purged once no task or service uses them."""

import pytest

from conftest import Berth
from ecs_helpers import container, expect_error, register, register_instance, until


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


def purged(ecs, revision):
    """Whether DescribeTaskDefinition answers `revision` as it answers one never registered."""
    try:
        ecs.describe_task_definition(taskDefinition=revision)
    except ecs.exceptions.ClientException as e:
        assert e.response["Error"]["Message"] == "Unable to describe task definition."
        return True
    return False


def test_deleted_task_definitions_are_purged_once_unused(ecs):
    """A DELETE_IN_PROGRESS revision is purged once no task that is not STOPPED and no service that
    is not INACTIVE uses it; then it answers as one that never existed, and its number is not reused."""
    register_instance(ecs)
    register(ecs, "gone", [container("c", memory=32)])
    task = ecs.run_task(taskDefinition="gone:1")["tasks"][0]["taskArn"]
    register(ecs, "gone", [container("c", memory=32)])
    register(ecs, "svc", [container("c", memory=32)])
    ecs.create_service(serviceName="keeper", taskDefinition="svc:1", desiredCount=0)
    for revision in ("gone:1", "gone:2", "svc:1"):
        ecs.deregister_task_definition(taskDefinition=revision)
    assert ecs.delete_task_definitions(taskDefinitions=["gone:1", "gone:2", "svc:1"])["failures"] == []

    until(lambda: purged(ecs, "gone:2"), timeout=20, what="the unused revision purged")
    arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/"
    # A PENDING task and an ACTIVE service keep theirs.
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [arn + "gone:1", arn + "svc:1"]
    assert ecs.describe_task_definition(taskDefinition="gone:1")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"

    ecs.stop_task(task=task)
    until(lambda: purged(ecs, "gone:1"), timeout=20, what="the revision of the stopped task purged")
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [arn + "svc:1"]

    ecs.delete_service(service="keeper")
    until(lambda: purged(ecs, "svc:1"), timeout=30, what="the revision of the deleted service purged")
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == []
    assert ecs.list_task_definition_families(status="ALL")["families"] == []

    # Gone for good: deleting again is a failure, tags are gone with it, numbers go on.
    failures = ecs.delete_task_definitions(taskDefinitions=["gone:1"])["failures"]
    assert failures == [{"arn": "gone:1", "reason": "The specified task definition does not exist. "
                                                    "Specify a valid account, family, revision and try again."}]
    with expect_error("ClientException", "Unable to describe task definition."):
        ecs.list_tags_for_resource(resourceArn=arn + "gone:1")
    assert register(ecs, "gone", [container("c", memory=32)])["revision"] == 3
    assert ecs.list_task_definition_families(status="ALL")["families"] == ["gone"]
