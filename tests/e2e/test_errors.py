"""Table-driven: each (operation, bad input) answers ECS's exception name and message, and changes
nothing. One `berth up` holds a small world (clusters, an instance, a task, services, task
definitions in every status); every row is checked against a snapshot of all of it.

Messages are ECS's where they are known; rows marked `# Berth` carry Berth's own wording, listed in
docs/differences.md."""

import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from conftest import Berth
from ecs_helpers import container, expect_error, list_all, register, register_instance, until

ARN = "arn:aws:ecs:us-east-1:000000000000:"
NOPE = "nope"  # a cluster that does not exist
GHOST = "0123456789abcdef0123456789abcdef"  # a task / instance id nothing has
CLUSTER_NOT_FOUND = ("ClusterNotFoundException", "Cluster not found.")
SERVICE_NOT_FOUND = ("ServiceNotFoundException", "Service not found.")
NO_DEFINITION = ("ClientException", "Unable to describe task definition.")
LONG_ARNS = ("InvalidParameterException", "You can no longer disable Long Arn settings.")
SHORT_ARN = ("InvalidParameterException", "Long arn format must be used for tagging operations")
RESOURCE_NOT_FOUND = ("ResourceNotFoundException", "The specified resource could not be found.")  # Berth

RESOURCES = [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
             {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]
INSIGHTS = [{"name": "containerInsights", "value": "enabled"}]

# Every operation that takes a `cluster`, with otherwise good arguments.
CLUSTER_CALLS = [
    ("describe_tasks", {"tasks": [GHOST]}),
    ("stop_task", {"task": GHOST}),
    ("list_tasks", {}),
    ("run_task", {"taskDefinition": "app:1"}),
    ("start_task", {"taskDefinition": "app:1", "containerInstances": [GHOST]}),
    ("describe_container_instances", {"containerInstances": [GHOST]}),
    ("list_container_instances", {}),
    ("register_container_instance", {"totalResources": RESOURCES}),
    ("deregister_container_instance", {"containerInstance": GHOST}),
    ("update_container_instances_state", {"containerInstances": [GHOST], "status": "DRAINING"}),
    ("put_attributes", {"attributes": [{"name": "stack", "value": "prod", "targetId": GHOST}]}),
    ("delete_attributes", {"attributes": [{"name": "stack", "targetId": GHOST}]}),
    ("list_attributes", {"targetType": "container-instance"}),
    ("create_service", {"serviceName": "web", "taskDefinition": "app:1", "desiredCount": 0}),
    ("update_service", {"service": "web", "desiredCount": 1}),
    ("delete_service", {"service": "web"}),
    ("describe_services", {"services": ["web"]}),
    ("list_services", {}),
    ("list_service_deployments", {"service": "web"}),
    ("delete_cluster", {}),
    ("update_cluster", {"settings": INSIGHTS}),
    ("update_cluster_settings", {"settings": INSIGHTS}),
    ("submit_task_state_change", {"task": GHOST, "status": "RUNNING"}),
    ("submit_container_state_change", {"task": GHOST, "containerName": "c", "status": "RUNNING"}),
    ("create_task_set", {"service": "web", "taskDefinition": "app:1"}),
    ("describe_task_sets", {"service": "web"}),
    ("update_task_set", {"service": "web", "taskSet": "ecs-svc/1", "scale": {"value": 0, "unit": "PERCENT"}}),
    ("update_service_primary_task_set", {"service": "web", "primaryTaskSet": "ecs-svc/1"}),
    ("delete_task_set", {"service": "web", "taskSet": "ecs-svc/1"}),
    ("put_cluster_capacity_providers", {"capacityProviders": [], "defaultCapacityProviderStrategy": []}),
    ("create_capacity_provider", {"name": "mine"}),
    ("update_capacity_provider", {"name": "mine"}),
    ("delete_capacity_provider", {"capacityProvider": "mine"}),
    ("describe_capacity_providers", {}),
]

ROWS = [
    # A cluster that does not exist, by name, by ARN, deleted (INACTIVE), or that no cluster can be named.
    *[(f"{op}-missing-cluster", op, {"cluster": NOPE, **kw}, *CLUSTER_NOT_FOUND) for op, kw in CLUSTER_CALLS],
    *[(f"{op}-missing-cluster-arn", op, {"cluster": ARN + "cluster/" + NOPE, **kw}, *CLUSTER_NOT_FOUND)
      for op, kw in CLUSTER_CALLS[:6]],
    *[(f"{op}-inactive-cluster", op, {"cluster": "retired", **kw}, *CLUSTER_NOT_FOUND) for op, kw in CLUSTER_CALLS[:6]],
    ("describe_tasks-bad-cluster-name", "describe_tasks", {"cluster": "no such/name", "tasks": [GHOST]}, *CLUSTER_NOT_FOUND),
    ("list_services-task-arn-as-cluster", "list_services", {"cluster": ARN + "task/real/" + GHOST}, *CLUSTER_NOT_FOUND),
    # Services that do not exist, or are no longer ACTIVE.
    ("update_service-missing", "update_service", {"cluster": "real", "service": "ghost", "desiredCount": 1}, *SERVICE_NOT_FOUND),
    ("update_service-missing-arn", "update_service",
     {"cluster": "real", "service": ARN + "service/real/ghost", "desiredCount": 1}, *SERVICE_NOT_FOUND),
    ("delete_service-missing", "delete_service", {"cluster": "real", "service": "ghost"}, *SERVICE_NOT_FOUND),
    ("list_service_deployments-missing", "list_service_deployments", {"cluster": "real", "service": "ghost"},
     *SERVICE_NOT_FOUND),
    ("list_tasks-missing-service", "list_tasks", {"cluster": "real", "serviceName": "ghost"}, *SERVICE_NOT_FOUND),
    ("update_service-inactive", "update_service", {"cluster": "real", "service": "drained", "desiredCount": 1},
     "ServiceNotActiveException", "Service was not ACTIVE."),
    # Task sets: a missing or inactive service, a service the ECS controller deploys.
    ("create_task_set-missing-service", "create_task_set", {"cluster": "real", "service": "ghost", "taskDefinition": "app:1"},
     *SERVICE_NOT_FOUND),
    ("describe_task_sets-inactive-service", "describe_task_sets", {"cluster": "real", "service": "drained"},
     "ServiceNotActiveException", "Service was not ACTIVE."),
    *[(f"{op}-ecs-controller", op, {"cluster": "real", **kw}, "InvalidParameterException",
       "Amazon ECS only supports task set management on services configured to use external deployment controllers.")
      for op, kw in CLUSTER_CALLS if "task_set" in op],
    # Tagging: the not-found error of each kind; short and malformed ARNs.
    ("list_tags-missing-service", "list_tags_for_resource", {"resourceArn": ARN + "service/real/ghost"},
     *SERVICE_NOT_FOUND),
    ("tag-missing-service", "tag_resource", {"resourceArn": ARN + "service/real/ghost", "tags": [{"key": "k", "value": "v"}]},
     *SERVICE_NOT_FOUND),
    ("untag-missing-service", "untag_resource", {"resourceArn": ARN + "service/real/ghost", "tagKeys": ["k"]},
     *SERVICE_NOT_FOUND),
    ("list_tags-missing-cluster", "list_tags_for_resource", {"resourceArn": ARN + "cluster/" + NOPE}, *CLUSTER_NOT_FOUND),
    ("tag-inactive-cluster", "tag_resource", {"resourceArn": ARN + "cluster/retired", "tags": [{"key": "k", "value": "v"}]},
     *CLUSTER_NOT_FOUND),
    ("list_tags-service-of-missing-cluster", "list_tags_for_resource", {"resourceArn": ARN + f"service/{NOPE}/web"},
     *CLUSTER_NOT_FOUND),
    ("list_tags-task-of-missing-cluster", "list_tags_for_resource", {"resourceArn": ARN + f"task/{NOPE}/{GHOST}"},
     *CLUSTER_NOT_FOUND),
    ("list_tags-missing-definition", "list_tags_for_resource", {"resourceArn": ARN + "task-definition/app:99"},
     *NO_DEFINITION),
    ("tag-missing-definition", "tag_resource", {"resourceArn": ARN + "task-definition/app:99", "tags": [{"key": "k", "value": "v"}]},
     *NO_DEFINITION),
    ("list_tags-missing-task", "list_tags_for_resource", {"resourceArn": ARN + f"task/real/{GHOST}"}, *RESOURCE_NOT_FOUND),
    ("untag-missing-instance", "untag_resource", {"resourceArn": ARN + f"container-instance/real/{GHOST}", "tagKeys": ["k"]},
     *RESOURCE_NOT_FOUND),
    ("tag-short-service-arn", "tag_resource", {"resourceArn": ARN + "service/web", "tags": [{"key": "k", "value": "v"}]},
     *SHORT_ARN),
    ("list_tags-short-task-arn", "list_tags_for_resource", {"resourceArn": ARN + f"task/{GHOST}"}, *SHORT_ARN),
    ("list_tags-not-an-arn", "list_tags_for_resource", {"resourceArn": "not-an-arn"},
     "InvalidParameterException", "The ARN provided is invalid."),
    # Task definitions.
    ("describe_task_definition-missing-revision", "describe_task_definition", {"taskDefinition": "app:99"}, *NO_DEFINITION),
    ("describe_task_definition-missing-family", "describe_task_definition", {"taskDefinition": "ghost"}, *NO_DEFINITION),
    ("deregister_task_definition-no-revision", "deregister_task_definition", {"taskDefinition": "app"},
     "ClientException", "Revision is missing."),
    ("delete_task_definitions-empty", "delete_task_definitions", {"taskDefinitions": []},
     "InvalidParameterException", "size of TaskDefinition references list must be greater than 0"),
    ("delete_task_definitions-eleven", "delete_task_definitions", {"taskDefinitions": [f"old:{n}" for n in range(1, 12)]},
     "InvalidParameterException", "Size of TaskDefinition references list cannot exceed 10"),
    # RunTask and friends.
    *[(f"run_task-{lt}-unsupported-by-definition", "run_task", {"cluster": "real", "taskDefinition": "app:1", "launchType": lt},
       "InvalidParameterException", f"Task definition does not support launch_type {lt}.")
      for lt in ("FARGATE", "EXTERNAL", "MANAGED_INSTANCES")],
    ("run_task-fargate", "run_task", {"cluster": "real", "taskDefinition": "fargate:1", "launchType": "FARGATE",
                                      "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}},
     "InvalidParameterException",
     'Error retrieving subnet information for [subnet-1]: Invalid id: "subnet-1" (expecting "subnet-...")'),
    ("run_task-unknown-launch-type", "run_task", {"cluster": "real", "taskDefinition": "app:1", "launchType": "MOON"},
     "InvalidParameterException", re.compile(r"^Invalid value 'MOON' for 'launchType'")),  # Berth
    ("run_task-missing-definition", "run_task", {"cluster": "real", "taskDefinition": "ghost"},
     "ClientException", "TaskDefinition not found."),  # Berth
    ("run_task-inactive-definition", "run_task", {"cluster": "real", "taskDefinition": "old:1"},
     "InvalidParameterException", "TaskDefinition is inactive"),
    ("run_task-eleven", "run_task", {"cluster": "real", "taskDefinition": "app:1", "count": 11},
     "InvalidParameterException", "Task count can not be greater than 10"),
    ("stop_task-missing", "stop_task", {"cluster": "real", "task": GHOST},
     "InvalidParameterException", "The referenced task was not found."),
    ("describe_tasks-empty", "describe_tasks", {"cluster": "real", "tasks": []}, "InvalidParameterException", "Tasks cannot be empty."),
    # Account settings: what Berth cannot do is refused, not stored.
    *[(f"put_account_setting-{name}-disabled", "put_account_setting", {"name": name, "value": "disabled"}, *LONG_ARNS)
      for name in ("serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat")],
    ("put_account_setting_default-taskLongArnFormat-disabled", "put_account_setting_default",
     {"name": "taskLongArnFormat", "value": "disabled"}, *LONG_ARNS),
    ("put_account_setting-awsvpcTrunking", "put_account_setting", {"name": "awsvpcTrunking", "value": "enabled"},
     "InvalidParameterException", re.compile(r"^Berth does not support awsvpcTrunking yet")),  # Berth
    ("put_account_setting-fargateFIPSMode", "put_account_setting_default", {"name": "fargateFIPSMode", "value": "enabled"},
     "InvalidParameterException", re.compile(r"^Berth does not support fargateFIPSMode yet")),  # Berth
    ("put_account_setting-guardDutyActivate", "put_account_setting_default", {"name": "guardDutyActivate", "value": "on"},
     "InvalidParameterException", re.compile(r"^guardDutyActivate is read only")),  # Berth
    # Clusters.
    ("create_cluster-capacity-providers", "create_cluster", {"clusterName": "cp", "capacityProviders": ["MINE"]},
     "InvalidParameterException",
     "The specified capacity provider MINE does not exist. Berth has the FARGATE and FARGATE_SPOT capacity providers."),  # Berth
]


def snapshot(ecs):
    """Everything a client can see: clusters, instances, attributes, tasks, services, task
    definitions and account settings, with every include."""
    clusters = list_all(ecs.list_clusters, "clusterArns")
    include = ["TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS", "ATTACHMENTS"]
    state = {"clusters": ecs.describe_clusters(clusters=clusters + [ARN + "cluster/retired"], include=include)["clusters"]}
    for cluster in clusters:
        instances = list_all(ecs.list_container_instances, "containerInstanceArns", cluster=cluster)
        described = ecs.describe_container_instances(cluster=cluster, containerInstances=instances, include=["TAGS"])["containerInstances"] if instances else []
        for inst in described:
            inst.pop("agentConnected", None)  # time-dependent, not state
        tasks = [arn for status in ("RUNNING", "STOPPED")
                 for arn in list_all(ecs.list_tasks, "taskArns", cluster=cluster, desiredStatus=status)]
        services = list_all(ecs.list_services, "serviceArns", cluster=cluster)
        state[cluster] = {
            "instances": described,
            "attributes": list_all(ecs.list_attributes, "attributes", cluster=cluster, targetType="container-instance"),
            "tasks": ecs.describe_tasks(cluster=cluster, tasks=tasks, include=["TAGS"])["tasks"] if tasks else [],
            "services": ecs.describe_services(cluster=cluster, services=services + ["drained"], include=["TAGS"])["services"],
        }
    for status in ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"):
        state[status] = list_all(ecs.list_task_definitions, "taskDefinitionArns", status=status)
    state["families"] = list_all(ecs.list_task_definition_families, "families", status="ALL")
    state["settings"] = list_all(ecs.list_account_settings, "settings", effectiveSettings=True)
    state["app:1"] = ecs.describe_task_definition(taskDefinition="app:1", include=["TAGS"])["tags"]
    return state


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A cluster `real` with an instance (no agent: its task stays PENDING), a PENDING task, an
    ACTIVE service `web` and an INACTIVE one `drained`; a deleted cluster `retired`; task
    definitions app:1 (EC2), fargate:1, old:1 (INACTIVE)."""
    b = Berth(tmp_path_factory.mktemp("errors") / "data",
              extra_args=("--runtime", "none", "--agent-timeout", "3600", "--lost-agent-timeout", "3600")).start()
    ecs = b.client()
    ecs.create_cluster(clusterName="real", tags=[{"key": "team", "value": "a"}])
    ecs.create_cluster(clusterName="retired")
    ecs.delete_cluster(cluster="retired")
    register_instance(ecs, cluster="real", resources=RESOURCES)
    register(ecs, "app", [container("c", memory=32)], tags=[{"key": "k", "value": "v"}])
    register(ecs, "fargate", [container("c", memory=32)], requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
             cpu="256", memory="512")
    register(ecs, "old", [container("c", memory=32)])
    ecs.deregister_task_definition(taskDefinition="old:1")
    assert ecs.run_task(cluster="real", taskDefinition="app:1")["failures"] == []
    ecs.create_service(cluster="real", serviceName="web", taskDefinition="app:1", desiredCount=0)
    ecs.create_service(cluster="real", serviceName="drained", taskDefinition="app:1", desiredCount=0)
    ecs.delete_service(cluster="real", service="drained")
    until(lambda: ecs.describe_services(cluster="real", services=["drained"])["services"][0]["status"] == "INACTIVE",
          what="the deleted service INACTIVE")
    # The scheduler settles (steady-state events): wait for two equal snapshots in a row.
    previous = [None]

    def settled():
        now = snapshot(ecs)
        same, previous[0] = now == previous[0], now
        return same
    until(settled, interval=1, what="a settled world")
    yield ecs
    b.stop()


@pytest.mark.parametrize("operation,kwargs,code,message", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_answers_ecs_error_and_changes_nothing(world, operation, kwargs, code, message):
    before = snapshot(world)
    with expect_error(code) as info:
        getattr(world, operation)(**kwargs)
    got = info.value.response["Error"]["Message"]
    if isinstance(message, re.Pattern):
        assert message.search(got), got
    else:
        assert got == message
    assert snapshot(world) == before


def test_every_operation_with_a_cluster_member_is_in_the_table():
    """CLUSTER_CALLS names every operation Berth implements whose input has a `cluster` member
    (but DiscoverPollEndpoint, whose errors in the model have no ClusterNotFoundException)."""
    model = botocore.session.get_session().get_service_model("ecs")
    dispatch = (Path(__file__).resolve().parents[2] / "crates/berth-api/src/ecs/mod.rs").read_text()
    implemented = set(re.findall(r'^\s+"(\w+)" =>', dispatch, re.M))
    with_cluster = {name for name in implemented if "cluster" in model.operation_model(name).input_shape.members}
    in_table = {xform_name(op) for op, _ in CLUSTER_CALLS}
    assert with_cluster - {"DiscoverPollEndpoint"} == {name for name in with_cluster if xform_name(name) in in_table}
    assert len(in_table) == len(with_cluster) - 1
