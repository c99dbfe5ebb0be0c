"""Task sets and the EXTERNAL / CODE_DEPLOY deployment controllers through the ECS API:
create, describe, scale, make primary and delete task sets, what CreateService and
UpdateService refuse for such services, and every handler's bad inputs. As in
test_services.py, instances are registered without agents, so tasks stay PENDING and the
scheduler's counting per set can be watched without containers (test_services_agents.py runs
task sets on real agents)."""

import pytest

from ecs_helpers import expect_error, until

ERROR_CONTROLLER = ("Amazon ECS only supports task set management on services configured to use external "
                    "deployment controllers.")


@pytest.fixture
def cluster(ecs):
    resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                 {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}]
    for _ in range(2):
        ecs.register_container_instance(totalResources=resources)
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "c", "image": "x", "memory": 128}])
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "c", "image": "y", "memory": 128}])
    ecs.create_service(serviceName="ext", desiredCount=4, deploymentController={"type": "EXTERNAL"})
    return ecs


def service(ecs, name="ext"):
    return ecs.describe_services(services=[name])["services"][0]


def task_set(ecs, set_id, service_name="ext"):
    return ecs.describe_task_sets(cluster="default", service=service_name, taskSets=[set_id])["taskSets"][0]


def sets_of(ecs, name="ext"):
    """What a refused request must not change: each set's id, status, scale and definition."""
    return [(t["id"], t["status"], t["scale"], t["taskDefinition"]) for t in service(ecs, name)["taskSets"]]


def pending_by_set(ecs, name="ext"):
    arns = ecs.list_tasks(serviceName=name)["taskArns"]
    tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
    out = {}
    for t in tasks:
        out[t["startedBy"]] = out.get(t["startedBy"], 0) + 1
    return out


def test_an_external_service_starts_with_no_task_set_and_no_deployment(cluster):
    s = service(cluster)
    assert s["deploymentController"] == {"type": "EXTERNAL"}
    assert s["deployments"] == [] and s["taskSets"] == []
    assert "taskDefinition" not in s
    assert s["desiredCount"] == 4 and s["launchType"] == "EC2"
    assert cluster.list_tasks(serviceName="ext")["taskArns"] == []
    assert cluster.list_service_deployments(service="ext")["serviceDeployments"] == []


def test_task_sets_run_their_share_and_follow_scale_primary_and_delete(cluster):
    ecs = cluster
    blue = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web:1", externalId="blue",
                               scale={"value": 100, "unit": "PERCENT"}, tags=[{"key": "colour", "value": "blue"}])["taskSet"]
    assert blue["status"] == "ACTIVE", "nothing becomes PRIMARY on its own"
    assert blue["id"].startswith("ecs-svc/") and len(blue["id"]) == len("ecs-svc/") + 19
    assert blue["taskSetArn"] == f"arn:aws:ecs:us-east-1:000000000000:task-set/default/ext/{blue['id']}"
    assert blue["computedDesiredCount"] == 4 and blue["externalId"] == "blue"
    assert blue["stabilityStatus"] == "STABILIZING"
    assert blue["scale"] == {"value": 100.0, "unit": "PERCENT"}
    assert blue["taskDefinition"].endswith(":task-definition/web:1")
    assert "tags" not in blue

    green = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web:2",
                                scale={"value": 25, "unit": "PERCENT"})["taskSet"]
    assert green["computedDesiredCount"] == 1
    until(lambda: pending_by_set(ecs) == {blue["id"]: 4, green["id"]: 1}, what="4 + 1 tasks")
    s = until(lambda: (lambda s: s if s["pendingCount"] == 5 else None)(service(ecs)), what="service counts")
    assert s["desiredCount"] == 4, "the service's desired count stays the user's"
    assert s["deployments"] == []
    assert [t["id"] for t in s["taskSets"]] == [blue["id"], green["id"]]
    assert until(lambda: task_set(ecs, blue["id"])["pendingCount"] == 4, what="the set's pending count")

    # Traffic moves to green: make it primary, scale it up, scale blue down, delete blue.
    primary = ecs.update_service_primary_task_set(cluster="default", service="ext", primaryTaskSet=green["taskSetArn"])["taskSet"]
    assert primary["status"] == "PRIMARY"
    s = service(ecs)
    assert s["taskDefinition"] == green["taskDefinition"]
    assert {t["id"]: t["status"] for t in s["taskSets"]} == {blue["id"]: "ACTIVE", green["id"]: "PRIMARY"}
    assert ecs.update_task_set(cluster="default", service="ext", taskSet=green["id"],
                               scale={"value": 100, "unit": "PERCENT"})["taskSet"]["computedDesiredCount"] == 4
    with expect_error("InvalidParameterException", message_contains="scale it to 0 first"):
        ecs.delete_task_set(cluster="default", service="ext", taskSet=blue["id"])
    ecs.update_task_set(cluster="default", service="ext", taskSet=blue["id"], scale={"value": 0, "unit": "PERCENT"})
    until(lambda: pending_by_set(ecs) == {green["id"]: 4}, what="blue's tasks stopped, green's 4 launched")
    deleted = ecs.delete_task_set(cluster="default", service="ext", taskSet=blue["id"])["taskSet"]
    assert deleted["status"] == "DRAINING" and deleted["computedDesiredCount"] == 0
    until(lambda: [t["id"] for t in service(ecs)["taskSets"]] == [green["id"]], what="the drained set gone")
    gone = ecs.describe_task_sets(cluster="default", service="ext", taskSets=[blue["id"]])
    assert gone["taskSets"] == [] and gone["failures"] == [{"arn": blue["id"], "reason": "MISSING"}]
    tagged = ecs.describe_task_sets(cluster="default", service="ext", include=["TAGS"])["taskSets"]
    assert [t["id"] for t in tagged] == [green["id"]] and tagged[0]["tags"] == []

    # Scaling the service recomputes every set.
    ecs.update_service(service="ext", desiredCount=2)
    until(lambda: pending_by_set(ecs) == {green["id"]: 2}, what="green follows the desired count")
    assert task_set(ecs, green["id"])["computedDesiredCount"] == 2


def test_create_task_set_is_idempotent_with_a_client_token_and_limited_to_five(cluster):
    ecs = cluster
    first = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", clientToken="tok-1")["taskSet"]
    again = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", clientToken="tok-1")["taskSet"]
    assert again["id"] == first["id"]
    assert first["scale"] == {"value": 0.0, "unit": "PERCENT"} and first["computedDesiredCount"] == 0
    for _ in range(4):
        ecs.create_task_set(cluster="default", service="ext", taskDefinition="web")
    before = sets_of(ecs)
    with expect_error("InvalidParameterException",
                      "5 deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit."):
        ecs.create_task_set(cluster="default", service="ext", taskDefinition="web")
    assert sets_of(ecs) == before


def test_a_code_deploy_service_starts_with_one_primary_task_set(cluster):
    ecs = cluster
    s = ecs.create_service(serviceName="cd", taskDefinition="web:1", desiredCount=2,
                           deploymentController={"type": "CODE_DEPLOY"})["service"]
    [initial] = s["taskSets"]
    assert s["deployments"] == []
    assert initial["status"] == "PRIMARY" and initial["scale"] == {"value": 100.0, "unit": "PERCENT"}
    assert initial["computedDesiredCount"] == 2
    until(lambda: pending_by_set(ecs, "cd") == {initial["id"]: 2}, what="the initial set's tasks")
    assert ecs.describe_task_sets(cluster="default", service="cd")["taskSets"][0]["id"] == initial["id"]
    with expect_error("InvalidParameterException", ERROR_CONTROLLER):
        ecs.create_task_set(cluster="default", service="cd", taskDefinition="web:2")
    with expect_error("InvalidParameterException",
                      "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
                      "Use AWS CodeDeploy to trigger a new deployment."):
        ecs.update_service(service="cd", taskDefinition="web:2")
    assert service(ecs, "cd")["taskDefinition"] == initial["taskDefinition"]


def test_deleting_an_external_service_drains_its_task_sets(cluster):
    ecs = cluster
    ts = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", scale={"value": 50, "unit": "PERCENT"})["taskSet"]
    until(lambda: pending_by_set(ecs) == {ts["id"]: 2}, what="2 tasks")
    ecs.delete_service(service="ext", force=True)
    s = until(lambda: (lambda s: s if s["status"] == "INACTIVE" else None)(service(ecs)), what="INACTIVE")
    assert s["taskSets"] == []
    assert ecs.list_tasks(serviceName="ext")["taskArns"] == []


# (request, expected exception, expected message or None to skip the message)
CREATE_SERVICE_REFUSALS = [
    (dict(taskDefinition="web:1"), "InvalidParameterException", "TaskDefinition must be blank."),
    (dict(taskDefinition=""), "InvalidParameterException", "Family should not be null or empty."),
    (dict(loadBalancers=[{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/1",
                          "containerName": "c", "containerPort": 80}]),
     "InvalidParameterException", "LoadBalancers must be empty or null."),
    (dict(networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}}),
     "InvalidParameterException", "NetworkConfiguration must be null."),
    (dict(launchType="EC2"), "InvalidParameterException", "LaunchType must be null."),
    (dict(schedulingStrategy="DAEMON"), "InvalidParameterException",
     "The DAEMON scheduling strategy does not support the EXTERNAL deployment controller."),
    (dict(deploymentConfiguration={"minimumHealthyPercent": 50}), "InvalidParameterException",
     "minimumHealthyPercent and maximumPercent keep their defaults (100 and 200) with the EXTERNAL deployment controller."),
    (dict(deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}}),
     "InvalidParameterException",
     "The deployment circuit breaker can only be used for services using the rolling update (ECS) deployment type."),
]


@pytest.mark.parametrize("extra,code,message", CREATE_SERVICE_REFUSALS)
def test_create_external_service_refuses(cluster, extra, code, message):
    args = dict(serviceName="bad", desiredCount=1, deploymentController={"type": "EXTERNAL"})
    args.update(extra)
    if args.get("schedulingStrategy") == "DAEMON":
        del args["desiredCount"]
    with expect_error(code, message):
        cluster.create_service(**args)
    assert cluster.describe_services(services=["bad"])["failures"][0]["reason"] == "MISSING"


def test_update_external_service_refuses_what_task_sets_carry(cluster):
    ecs = cluster
    before = service(ecs)
    for args, message in [
        (dict(taskDefinition="web:1"), "Unable to update task definition on services with a EXTERNAL deployment "
                                       "controller. Create a task set to deploy it."),
        (dict(forceNewDeployment=True), "Unable to force a new deployment on services with a EXTERNAL deployment "
                                        "controller. Create a task set to deploy it."),
        (dict(deploymentController={"type": "ECS"}), "Berth does not support changing the deployment controller of a "
                                                     "service (from EXTERNAL to ECS) yet."),
    ]:
        with expect_error("InvalidParameterException", message):
            ecs.update_service(service="ext", **args)
    after = service(ecs)
    assert after["deployments"] == before["deployments"] == [] and after.get("taskDefinition") is None
    ecs.create_service(serviceName="rolling", taskDefinition="web:1", desiredCount=0)
    with expect_error("InvalidParameterException", message_contains="from ECS to EXTERNAL"):
        ecs.update_service(service="rolling", deploymentController={"type": "EXTERNAL"})


def test_task_set_operations_refuse_bad_input_and_change_nothing(cluster):
    ecs = cluster
    ts = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web:1")["taskSet"]
    ecs.create_service(serviceName="rolling", taskDefinition="web:1", desiredCount=0)
    before = sets_of(ecs)
    cases = [
        (lambda: ecs.create_task_set(cluster="nope", service="ext", taskDefinition="web"), "ClusterNotFoundException", None),
        (lambda: ecs.create_task_set(cluster="default", service="nope", taskDefinition="web"), "ServiceNotFoundException", None),
        (lambda: ecs.create_task_set(cluster="default", service="rolling", taskDefinition="web"),
         "InvalidParameterException", ERROR_CONTROLLER),
        (lambda: ecs.describe_task_sets(cluster="default", service="rolling"), "InvalidParameterException", ERROR_CONTROLLER),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="nope"), "ClientException", None),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", scale={"value": 101, "unit": "PERCENT"}),
         "InvalidParameterException", "scale.value must be between 0 and 100."),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", launchType="FARGATE"),
         "InvalidParameterException", None),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", platformVersion="LATEST"),
         "InvalidParameterException", "platformVersion applies to the FARGATE launch type only."),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="web",
                                     serviceRegistries=[{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}]),
         "InvalidParameterException", None),
        (lambda: ecs.create_task_set(cluster="default", service="ext", taskDefinition="web", tags=[{"key": "aws:x", "value": "y"}]),
         "InvalidParameterException", None),
        (lambda: ecs.describe_task_sets(cluster="default", service="ext", taskSets=["not-a-task-set"]),
         "InvalidParameterException", "Task Set Identifier is invalid"),
        (lambda: ecs.update_task_set(cluster="default", service="ext", taskSet="ecs-svc/1234567890123456789",
                                     scale={"value": 10, "unit": "PERCENT"}), "TaskSetNotFoundException", None),
        (lambda: ecs.update_task_set(cluster="default", service="ext", taskSet=ts["id"], scale={"value": -1, "unit": "PERCENT"}),
         "InvalidParameterException", None),
        (lambda: ecs.update_service_primary_task_set(cluster="default", service="ext", primaryTaskSet="ecs-svc/1"),
         "TaskSetNotFoundException", None),
        (lambda: ecs.delete_task_set(cluster="default", service="ext", taskSet="ecs-svc/1"), "TaskSetNotFoundException", None),
    ]
    for call, code, message in cases:
        with expect_error(code, message):
            call()
    assert sets_of(ecs) == before
    ecs.update_service_primary_task_set(cluster="default", service="ext", primaryTaskSet=ts["id"])
    with expect_error("InvalidParameterException", "Primary TaskSet cannot be deleted"):
        ecs.delete_task_set(cluster="default", service="ext", taskSet=ts["id"], force=True)
    assert task_set(ecs, ts["id"])["status"] == "PRIMARY"


def test_task_sets_are_tagged_through_their_arns(cluster):
    ecs = cluster
    ts = ecs.create_task_set(cluster="default", service="ext", taskDefinition="web",
                             tags=[{"key": "colour", "value": "blue"}])["taskSet"]
    arn = ts["taskSetArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "colour", "value": "blue"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "stage", "value": "canary"}, {"key": "colour", "value": "green"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["stage"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "colour", "value": "green"}]
    described = ecs.describe_task_sets(cluster="default", service="ext", taskSets=[arn], include=["TAGS"])["taskSets"][0]
    assert described["tags"] == [{"key": "colour", "value": "green"}]
    with expect_error("ResourceNotFoundException"):
        ecs.list_tags_for_resource(resourceArn=arn.rsplit("/", 1)[0] + "/1234567890123456789")
    with expect_error("InvalidParameterException"):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:reserved", "value": "x"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "colour", "value": "green"}]
