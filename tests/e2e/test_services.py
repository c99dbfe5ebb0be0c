"""Services through the ECS API: the scheduler's launches, scaling, deployments, deletion,
daemons, tags, and every handler's bad inputs. Instances are registered the way an agent
registers them, but no agent claims the tasks: they stay PENDING, which is what lets these
tests watch the scheduler's counting without containers (test_services_agents.py runs them)."""

import time

import pytest

from ecs_helpers import expect_error, until

ZONES = ["zone-a", "zone-a", "zone-b"]


def register(ecs, zone, extra=()):
    attrs = [{"name": "ecs.availability-zone", "value": zone}, *extra]
    resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                 {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}]
    return ecs.register_container_instance(totalResources=resources, attributes=attrs)["containerInstance"]["containerInstanceArn"]


def service(ecs, name="web"):
    return ecs.describe_services(services=[name])["services"][0]


def tasks_of(ecs, name="web", desired="RUNNING"):
    arns = ecs.list_tasks(serviceName=name, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(tasks=arns, include=["TAGS"])["tasks"] if arns else []


@pytest.fixture
def cluster(ecs):
    arns = [register(ecs, z, extra=[{"name": "role", "value": "edge" if i == 2 else "core"}]) for i, z in enumerate(ZONES)]
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "c", "image": "x", "memory": 128}])
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "c", "image": "y", "memory": 128}])
    return arns


def test_create_service_launches_the_desired_count(ecs, cluster):
    created = ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=3)["service"]
    assert created["status"] == "ACTIVE"
    assert created["desiredCount"] == 3
    assert created["schedulingStrategy"] == "REPLICA"
    assert created["launchType"] == "EC2"
    assert created["deploymentConfiguration"]["maximumPercent"] == 200
    assert created["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert created["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/default/web"
    [primary] = created["deployments"]
    assert primary["status"] == "PRIMARY" and primary["rolloutState"] == "IN_PROGRESS"
    assert primary["id"].startswith("ecs-svc/") and len(primary["id"]) == len("ecs-svc/") + 19
    assert primary["taskDefinition"].endswith(":task-definition/web:1")

    s = until(lambda: (lambda s: s if s["pendingCount"] == 3 else None)(service(ecs)), what="3 pending tasks")
    assert s["deployments"][0]["pendingCount"] == 3
    assert any(e["message"].startswith("(service web) has started 3 tasks: (task ") for e in s["events"])
    tasks = tasks_of(ecs)
    assert len(tasks) == 3
    assert {t["startedBy"] for t in tasks} == {primary["id"]}
    assert {t["group"] for t in tasks} == {"service:web"}
    # No agent claims them: the scheduler keeps them and launches no more.
    time.sleep(2)
    assert len(tasks_of(ecs)) == 3
    assert ecs.list_services()["serviceArns"] == [created["serviceArn"]]
    cluster_view = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    assert cluster_view["activeServicesCount"] == 1


def test_the_aws_cli_creates_a_service_with_strategies_and_constraints(berth, ecs, cluster):
    out = berth.cli("ecs", "create-service", "--service-name", "web", "--task-definition", "web:1", "--desired-count", "4",
                    "--placement-strategy", "type=spread,field=attribute:ecs.availability-zone", "type=binpack,field=memory",
                    "--placement-constraints", "type=distinctInstance")
    assert out["service"]["placementConstraints"] == [{"type": "distinctInstance"}]
    # distinctInstance on 3 instances: 3 placed, the 4th cannot be, and the events say why.
    until(lambda: len(tasks_of(ecs)) == 3, what="3 tasks")
    s = until(lambda: (lambda s: s if any("was unable to place a task" in e["message"] for e in s["events"]) else None)(service(ecs)),
              what="an unable-to-place event")
    tasks = tasks_of(ecs)
    assert len({t["containerInstanceArn"] for t in tasks}) == 3
    assert {t["availabilityZone"] for t in tasks} == {"zone-a", "zone-b"}
    assert "The closest matching (container-instance " in s["events"][0]["message"]
    until(lambda: service(ecs)["pendingCount"] == 3, what="counts of the next pass")


def test_scaling_down_stops_tasks_with_the_scheduler_code(ecs, cluster):
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=3)
    until(lambda: len(tasks_of(ecs)) == 3)
    ecs.update_service(service="web", desiredCount=1)
    until(lambda: len(tasks_of(ecs)) == 1, what="scale down to 1")
    stopped = tasks_of(ecs, desired="STOPPED")
    assert len(stopped) == 2
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    assert until(lambda: service(ecs)["pendingCount"] == 1)


def test_a_new_task_definition_starts_a_deployment(ecs, cluster):
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=2)
    until(lambda: len(tasks_of(ecs)) == 2)
    first = service(ecs)["deployments"][0]["id"]
    updated = ecs.update_service(service="web", taskDefinition="web:2")["service"]
    primary, old = updated["deployments"]
    assert (primary["status"], old["status"]) == ("PRIMARY", "ACTIVE")
    assert old["id"] == first and primary["taskDefinition"].endswith("web:2")
    assert updated["taskDefinition"].endswith("web:2")
    # Nothing is healthy (no agent runs the tasks), so the service is under its floor
    # (minimumHealthyPercent 100): the old tasks, still coming up, are not stopped for the new.
    until(lambda: sorted(t["taskDefinitionArn"].rsplit(":", 1)[1] for t in tasks_of(ecs)) == ["1", "1", "2", "2"],
          what="web:2 tasks beside web:1")
    time.sleep(1.5)
    assert tasks_of(ecs, desired="STOPPED") == []
    # With a floor of 0 they give way.
    ecs.update_service(service="web", deploymentConfiguration={"minimumHealthyPercent": 0})
    until(lambda: sorted(t["taskDefinitionArn"].rsplit(":", 1)[1] for t in tasks_of(ecs)) == ["2", "2"], what="web:2 tasks")
    assert {t["stoppedReason"] for t in tasks_of(ecs, desired="STOPPED")} == {
        "ECS is replacing this task with a task of the service's newer deployment."}

    listed = ecs.list_service_deployments(service="web")["serviceDeployments"]
    assert [d["status"] for d in listed] == ["IN_PROGRESS", "IN_PROGRESS"]
    assert listed[1]["serviceDeploymentArn"].endswith(first.removeprefix("ecs-svc/"))
    described = ecs.describe_service_deployments(serviceDeploymentArns=[d["serviceDeploymentArn"] for d in listed])
    assert described["failures"] == []
    assert described["serviceDeployments"][0]["targetServiceRevision"]["arn"].endswith("web:2")
    assert service(ecs)["currentServiceDeployment"] == listed[0]["serviceDeploymentArn"]
    forced = ecs.update_service(service="web", forceNewDeployment=True)["service"]
    assert len(forced["deployments"]) == 3 and forced["deployments"][0]["taskDefinition"].endswith("web:2")


def test_delete_requires_scaling_to_zero_then_the_service_goes_inactive(ecs, cluster):
    arn = ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=2)["service"]["serviceArn"]
    until(lambda: len(tasks_of(ecs)) == 2)
    with expect_error("InvalidParameterException", "The service cannot be stopped while it is scaled above 0."):
        ecs.delete_service(service="web")
    assert service(ecs)["status"] == "ACTIVE"
    ecs.update_service(service="web", desiredCount=0)
    deleted = ecs.delete_service(service=arn)["service"]
    assert deleted["status"] == "DRAINING"
    until(lambda: service(ecs)["status"] == "INACTIVE", what="INACTIVE")
    assert tasks_of(ecs) == []
    assert ecs.list_services()["serviceArns"] == []
    with expect_error("ServiceNotActiveException", "Service was not ACTIVE."):
        ecs.update_service(service="web", desiredCount=1)
    # The name is free again.
    again = ecs.create_service(serviceName="web", taskDefinition="web:2", desiredCount=1)["service"]
    assert again["status"] == "ACTIVE" and again["events"] == []


def test_a_cluster_with_a_service_cannot_be_deleted(ecs, cluster):
    ecs.create_cluster(clusterName="lone")
    ecs.create_service(cluster="lone", serviceName="web", taskDefinition="web:1", desiredCount=0)
    with expect_error("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active."):
        ecs.delete_cluster(cluster="lone")
    ecs.delete_service(cluster="lone", service="web")
    until(lambda: ecs.describe_services(cluster="lone", services=["web"])["services"][0]["status"] == "INACTIVE")
    assert ecs.delete_cluster(cluster="lone")["cluster"]["status"] == "INACTIVE"


def test_force_delete_stops_every_task(ecs, cluster):
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=3)
    until(lambda: len(tasks_of(ecs)) == 3)
    ecs.delete_service(service="web", force=True)
    until(lambda: service(ecs)["status"] == "INACTIVE")
    assert tasks_of(ecs) == []
    assert {t["stoppedReason"] for t in tasks_of(ecs, desired="STOPPED")} == {"The service is being deleted."}


def test_create_is_idempotent_only_with_the_same_client_token(ecs, cluster):
    a = ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=1, clientToken="tok-1")["service"]
    b = ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=1, clientToken="tok-1")["service"]
    assert a["serviceArn"] == b["serviceArn"] and a["createdAt"] == b["createdAt"]
    with expect_error("InvalidParameterException", "Creation of service was not idempotent."):
        ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=1)


def test_daemon_runs_one_task_per_matching_instance(ecs, cluster):
    created = ecs.create_service(serviceName="agentd", taskDefinition="web:1", schedulingStrategy="DAEMON",
                                 placementConstraints=[{"type": "memberOf", "expression": "attribute:role == core"}])["service"]
    assert created["deploymentConfiguration"] == {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                                                  "maximumPercent": 100, "minimumHealthyPercent": 0, "strategy": "ROLLING"}
    until(lambda: len(tasks_of(ecs, "agentd")) == 2, what="2 daemon tasks")
    tasks = tasks_of(ecs, "agentd")
    assert sorted(t["containerInstanceArn"] for t in tasks) == sorted(cluster[:2])
    assert until(lambda: service(ecs, "agentd")["desiredCount"] == 2)
    # An instance that joins later gets one too.
    late = register(ecs, "zone-c", extra=[{"name": "role", "value": "core"}])
    until(lambda: any(t["containerInstanceArn"] == late for t in tasks_of(ecs, "agentd")), what="a task on the new instance")
    assert len(tasks_of(ecs, "agentd")) == 3


def test_tags_on_services_and_propagation_to_tasks(ecs, cluster):
    arn = ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=1, tags=[{"key": "team", "value": "a"}],
                             propagateTags="SERVICE", enableECSManagedTags=True)["service"]["serviceArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "a"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}])
    described = ecs.describe_services(services=["web"], include=["TAGS"])["services"][0]
    assert {t["key"] for t in described["tags"]} == {"team", "env"}
    assert "tags" not in service(ecs)
    [task] = until(lambda: tasks_of(ecs), what="a task")
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["aws:ecs:serviceName"] == "web" and tags["aws:ecs:clusterName"] == "default"
    assert "team" in tags


def test_describe_and_list_inputs(ecs, cluster):
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=0)
    got = ecs.describe_services(services=["web", "nope", "arn:aws:ecs:us-east-1:000000000000:service/default/gone"])
    assert [s["serviceName"] for s in got["services"]] == ["web"]
    assert got["failures"] == [
        {"arn": "arn:aws:ecs:us-east-1:000000000000:service/default/nope", "reason": "MISSING"},
        {"arn": "arn:aws:ecs:us-east-1:000000000000:service/default/gone", "reason": "MISSING"},
    ]
    with expect_error("InvalidParameterException", "Services cannot be empty."):
        ecs.describe_services(services=[])
    with expect_error("InvalidParameterException"):
        ecs.describe_services(services=[f"s{i}" for i in range(11)])
    with expect_error("ClusterNotFoundException"):
        ecs.describe_services(cluster="nope", services=["web"])
    for i in range(12):
        ecs.create_service(serviceName=f"svc{i:02}", taskDefinition="web:1", desiredCount=0)
    first = ecs.list_services()
    assert len(first["serviceArns"]) == 10 and "nextToken" in first
    rest = ecs.list_services(nextToken=first["nextToken"])
    assert len(rest["serviceArns"]) == 3 and "nextToken" not in rest
    assert ecs.list_services(schedulingStrategy="DAEMON")["serviceArns"] == []
    with expect_error("InvalidParameterException"):
        ecs.list_services(maxResults=101)
    with expect_error("ServiceNotFoundException", "Service not found."):
        ecs.list_service_deployments(service="nope")
    bad = ecs.describe_service_deployments(serviceDeploymentArns=["arn:aws:ecs:us-east-1:000000000000:service-deployment/default/web/1"])
    assert bad["failures"][0]["reason"] == "MISSING"


BAD_CREATES = [
    ({"desiredCount": 1, "serviceName": "bad name"}, "InvalidParameterException", "Service name"),
    ({}, "InvalidParameterException", "desiredCount is required"),
    ({"desiredCount": -1}, "InvalidParameterException", "desiredCount must be 0 or more."),
    ({"schedulingStrategy": "DAEMON", "desiredCount": 2}, "InvalidParameterException", "The daemon scheduling strategy does not support"),
    ({"desiredCount": 1, "taskDefinition": "nope:1"}, "ClientException", "TaskDefinition not found."),
    ({"desiredCount": 1, "deploymentConfiguration": {"maximumPercent": 300}}, "InvalidParameterException", "maximumPercent"),
    ({"desiredCount": 1, "deploymentConfiguration": {"minimumHealthyPercent": 150}}, "InvalidParameterException", "minimumHealthyPercent"),
    ({"desiredCount": 1, "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 100}}, "InvalidParameterException", "no room"),
    ({"desiredCount": 1, "placementStrategy": [{"type": "binpack", "field": "disk"}]}, "InvalidParameterException", "Invalid field disk"),
    ({"desiredCount": 1, "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}, "InvalidParameterException", "Invalid expression"),
    ({"schedulingStrategy": "DAEMON", "placementStrategy": [{"type": "random"}]}, "InvalidParameterException", "Placement strategies are not supported"),
    ({"desiredCount": 1, "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:x", "containerName": "c", "containerPort": 80}]},
     "InvalidParameterException", "does not exist"),
    ({"desiredCount": 1, "loadBalancers": [{"loadBalancerName": "classic", "containerName": "c", "containerPort": 80}]},
     "InvalidParameterException", "Classic Load Balancers are not supported"),
    ({"desiredCount": 1, "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:x", "containerPort": 80}]},
     "InvalidParameterException", "containerName is required"),
    ({"desiredCount": 1, "loadBalancers": [{"targetGroupArn": f"arn:x:{i}", "containerName": "c", "containerPort": 80}
                                           for i in range(6)]},
     "InvalidParameterException", "at most 5 target groups"),
    ({"desiredCount": 1, "launchType": "FARGATE"}, "InvalidParameterException", "FARGATE"),
    ({"desiredCount": 1, "deploymentController": {"type": "CODE_DEPLOY"}, "deploymentConfiguration": {"maximumPercent": 150}},
     "InvalidParameterException", "keep their defaults (100 and 200) with the CODE_DEPLOY deployment controller"),
    ({"desiredCount": 1, "healthCheckGracePeriodSeconds": -1}, "InvalidParameterException", "healthCheckGracePeriodSeconds"),
    ({"desiredCount": 1, "tags": [{"key": "aws:x", "value": "y"}]}, "InvalidParameterException", "reserved prefix"),
    ({"desiredCount": 1, "clientToken": "x" * 37}, "InvalidParameterException", "clientToken"),
    ({"desiredCount": 1, "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}}, "InvalidParameterException", "Network Configuration"),
    ({"desiredCount": 1, "cluster": "nope"}, "ClusterNotFoundException", None),
]


@pytest.mark.parametrize("args,code,message", BAD_CREATES, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(BAD_CREATES)])
def test_bad_create_service_is_refused_and_creates_nothing(ecs, cluster, args, code, message):
    request = {"serviceName": "web", "taskDefinition": "web:1", **args}
    with expect_error(code, message_contains=message):
        ecs.create_service(**request)
    assert ecs.list_services()["serviceArns"] == []
    time.sleep(1.2)
    assert ecs.list_tasks(desiredStatus="RUNNING")["taskArns"] == []


BAD_UPDATES = [
    ({"service": "nope", "desiredCount": 1}, "ServiceNotFoundException", "Service not found."),
    ({"desiredCount": -2}, "InvalidParameterException", "desiredCount must be 0 or more."),
    ({"taskDefinition": "nope:3"}, "ClientException", "TaskDefinition not found."),
    ({"deploymentConfiguration": {"maximumPercent": 50}}, "InvalidParameterException", "maximumPercent"),
    ({"placementConstraints": [{"type": "memberOf"}]}, "InvalidParameterException", "needs an expression"),
    ({"cluster": "nope"}, "ClusterNotFoundException", None),
    ({"capacityProviderStrategy": [{"capacityProvider": "x"}]}, "InvalidParameterException", "capacity provider"),
]


@pytest.mark.parametrize("args,code,message", BAD_UPDATES, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(BAD_UPDATES)])
def test_bad_update_service_is_refused_and_changes_nothing(ecs, cluster, args, code, message):
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=0)
    before = until(lambda: (lambda s: s if s["deployments"][0]["rolloutState"] == "COMPLETED" else None)(service(ecs)))
    with expect_error(code, message_contains=message):
        ecs.update_service(**{"service": "web", **args})
    after = service(ecs)
    for field in ["desiredCount", "taskDefinition", "deploymentConfiguration", "placementConstraints", "deployments"]:
        assert after[field] == before[field], field


def test_bad_update_of_a_daemon_and_bad_deletes(ecs, cluster):
    ecs.create_service(serviceName="d", taskDefinition="web:1", schedulingStrategy="DAEMON")
    with expect_error("InvalidParameterException", "The daemon scheduling strategy does not support a desired count"):
        ecs.update_service(service="d", desiredCount=3)
    with expect_error("InvalidParameterException", "maximumPercent must be 100"):
        ecs.update_service(service="d", deploymentConfiguration={"maximumPercent": 200})
    with expect_error("ServiceNotFoundException"):
        ecs.delete_service(service="nope")
    with expect_error("ClusterNotFoundException"):
        ecs.delete_service(cluster="nope", service="d")
    assert service(ecs, "d")["status"] == "ACTIVE"
    # A daemon needs no scaling to zero before deletion.
    assert ecs.delete_service(service="d")["service"]["status"] == "DRAINING"


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_the_scheduler_picks_up_after_a_restart_without_doubling(berth, cluster, how):
    ecs = berth.client()
    ecs.create_service(serviceName="web", taskDefinition="web:1", desiredCount=3)
    until(lambda: len(tasks_of(ecs)) == 3)
    before = {t["taskArn"] for t in tasks_of(ecs)}
    if how == "kill":
        berth.kill()
        berth.start()
    else:
        berth.restart()
    ecs = berth.client()
    time.sleep(2.5)
    assert {t["taskArn"] for t in tasks_of(ecs)} == before, "the restarted scheduler launched again"
    ecs.update_service(service="web", desiredCount=4)
    until(lambda: len(tasks_of(ecs)) == 4, what="the 4th task after the restart")
