"""Container instances, tasks (RunTask/StartTask/StopTask and the agent's reports), tags, account settings."""


from botocore.exceptions import ClientError

from ecs_helpers import (
    AGENT_ATTRIBUTES,
    AGENT_RESOURCES,
    AGENT_VERSION_INFO,
    assert_subset,
    container,
    describe_instance,
    describe_task,
    expect_error,
    list_all,
    register,
    register_instance,
    resource,
)

REGISTERED_CPU, REGISTERED_MEMORY = 2048, 4096


def remaining(ecs, arn, name, cluster="default"):
    r = resource(describe_instance(ecs, arn, cluster)["remainingResources"], name)
    return r["stringSetValue"] if r["type"] == "STRINGSET" else r["integerValue"]


def run_one(ecs, family="worker", **kw):
    resp = ecs.run_task(taskDefinition=family, **kw)
    assert resp["failures"] == [], resp["failures"]
    assert len(resp["tasks"]) == 1
    return resp["tasks"][0]


def worker(ecs, family="worker", cpu=256, memory=512, **extra):
    return register(ecs, family, [container("w", cpu=cpu, memory=memory, **extra)])


# ---------------------------------------------------------------- container instances


def test_register_container_instance_like_the_agent(ecs):
    """An agent-style registration is ACTIVE, connected, and remaining == registered resources."""
    inst = register_instance(ecs)
    arn = inst["containerInstanceArn"]
    assert arn.startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/")
    d = describe_instance(ecs, arn)
    assert d["status"] == "ACTIVE"
    assert d["agentConnected"] is True
    assert_subset(AGENT_RESOURCES, d["registeredResources"])
    assert d["remainingResources"] == d["registeredResources"]
    for attr in AGENT_ATTRIBUTES:
        assert attr in d["attributes"], attr
    assert_subset(AGENT_VERSION_INFO, d["versionInfo"])
    assert d["runningTasksCount"] == 0 and d["pendingTasksCount"] == 0
    assert ecs.list_container_instances()["containerInstanceArns"] == [arn]
    # Also findable by bare id.
    ident = arn.rsplit("/", 1)[1]
    assert ecs.describe_container_instances(containerInstances=[ident])["containerInstances"][0]["containerInstanceArn"] == arn


def test_describe_missing_container_instance(ecs):
    """An unknown container instance id is a MISSING failure."""
    register_instance(ecs)
    d = ecs.describe_container_instances(containerInstances=["0123456789abcdef0123456789abcdef"])
    assert d["containerInstances"] == []
    assert d["failures"][0]["reason"] == "MISSING"


def test_update_container_instances_state(ecs):
    """DRAINING then ACTIVE again; an invalid status is InvalidParameterException and changes nothing."""
    arn = register_instance(ecs)["containerInstanceArn"]
    out = ecs.update_container_instances_state(containerInstances=[arn], status="DRAINING")
    assert out["failures"] == []
    assert out["containerInstances"][0]["status"] == "DRAINING"
    assert describe_instance(ecs, arn)["status"] == "DRAINING"
    assert ecs.list_container_instances(status="DRAINING")["containerInstanceArns"] == [arn]
    out = ecs.update_container_instances_state(containerInstances=[arn], status="ACTIVE")
    assert out["containerInstances"][0]["status"] == "ACTIVE"
    with expect_error("InvalidParameterException"):
        ecs.update_container_instances_state(containerInstances=[arn], status="SLEEPING")
    assert describe_instance(ecs, arn)["status"] == "ACTIVE"


def test_draining_instance_gets_no_new_tasks(ecs):
    """RunTask does not place tasks on a DRAINING instance."""
    arn = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    ecs.update_container_instances_state(containerInstances=[arn], status="DRAINING")
    try:
        resp = ecs.run_task(taskDefinition="worker")
        assert resp["tasks"] == []
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidParameterException"
    assert ecs.list_tasks()["taskArns"] == []


def test_attributes_round_trip(ecs):
    """PutAttributes / ListAttributes / DeleteAttributes on a container instance."""
    arn = register_instance(ecs)["containerInstanceArn"]
    attr = {"name": "stack", "value": "blue", "targetType": "container-instance", "targetId": arn}
    out = ecs.put_attributes(attributes=[attr])
    assert out["attributes"][0]["name"] == "stack"
    listed = ecs.list_attributes(targetType="container-instance", attributeName="stack")["attributes"]
    assert len(listed) == 1
    assert listed[0]["name"] == "stack" and listed[0]["value"] == "blue" and listed[0]["targetId"] == arn
    assert {"name": "stack", "value": "blue"} in describe_instance(ecs, arn)["attributes"]
    ecs.delete_attributes(attributes=[{"name": "stack", "targetId": arn}])
    assert ecs.list_attributes(targetType="container-instance", attributeName="stack")["attributes"] == []
    assert not any(a["name"] == "stack" for a in describe_instance(ecs, arn)["attributes"])


def test_put_attributes_on_missing_target(ecs):
    """PutAttributes on an instance that does not exist -> TargetNotFoundException."""
    register_instance(ecs)
    missing = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0123456789abcdef0123456789abcdef"
    with expect_error("TargetNotFoundException"):
        ecs.put_attributes(attributes=[{"name": "x", "value": "y", "targetType": "container-instance", "targetId": missing}])
    assert ecs.list_attributes(targetType="container-instance", attributeName="x")["attributes"] == []


def test_deregister_instance_with_pending_task(ecs):
    """Without force a PENDING task blocks deregistration; with force the instance goes INACTIVE."""
    arn = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    run_one(ecs)
    with expect_error("InvalidParameterException", message_prefix="Found running tasks on the instance."):
        ecs.deregister_container_instance(containerInstance=arn)
    assert describe_instance(ecs, arn)["status"] == "ACTIVE"
    out = ecs.deregister_container_instance(containerInstance=arn, force=True)
    assert out["containerInstance"]["status"] == "INACTIVE"
    assert ecs.list_container_instances()["containerInstanceArns"] == []


# ---------------------------------------------------------------- RunTask


def test_run_task_without_instances(ecs):
    """No container instance at all -> InvalidParameterException, and no task created."""
    worker(ecs)
    with expect_error("InvalidParameterException", message_prefix="No Container Instances were found in your cluster."):
        ecs.run_task(taskDefinition="worker")
    assert ecs.list_tasks()["taskArns"] == []
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == []


def test_run_task_places_and_reserves_resources(ecs):
    """RunTask gives a PENDING EC2 task on the instance and reserves its cpu/memory there."""
    inst = register_instance(ecs)["containerInstanceArn"]
    td = worker(ecs, cpu=256, memory=512)
    task = run_one(ecs)
    assert task["lastStatus"] == "PENDING"
    assert task["desiredStatus"] == "RUNNING"
    assert task["launchType"] == "EC2"
    assert task["group"] == "family:worker"
    assert task["taskDefinitionArn"] == td["taskDefinitionArn"]
    assert task["containerInstanceArn"] == inst
    assert task["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    assert [c["name"] for c in task["containers"]] == ["w"]
    assert all(c["lastStatus"] == "PENDING" for c in task["containers"])
    assert int(task["cpu"]) == 256 and int(task["memory"]) == 512
    d = describe_instance(ecs, inst)
    assert resource(d["remainingResources"], "CPU")["integerValue"] == REGISTERED_CPU - 256
    assert resource(d["remainingResources"], "MEMORY")["integerValue"] == REGISTERED_MEMORY - 512
    assert d["pendingTasksCount"] == 1
    assert d["runningTasksCount"] == 0
    assert describe_task(ecs, task["taskArn"])["lastStatus"] == "PENDING"


def test_stop_unclaimed_task(ecs):
    """StopTask on a task no agent claimed stops it at once and frees its resources."""
    inst = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    task = run_one(ecs)
    out = ecs.stop_task(task=task["taskArn"], reason="no longer needed")["task"]
    assert out["desiredStatus"] == "STOPPED"
    t = describe_task(ecs, task["taskArn"])
    assert t["lastStatus"] == "STOPPED"
    assert t["desiredStatus"] == "STOPPED"
    assert t["stopCode"] == "UserInitiated"
    assert t["stoppedReason"] == "no longer needed"
    assert remaining(ecs, inst, "CPU") == REGISTERED_CPU
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY
    assert describe_instance(ecs, inst)["pendingTasksCount"] == 0
    assert ecs.list_tasks()["taskArns"] == []
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == [task["taskArn"]]


def test_run_task_needs_more_memory_than_any_instance(ecs):
    """Asking more memory than the instance has -> failure RESOURCE:MEMORY with the instance ARN; no task."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "hungry", [container("h", memory=REGISTERED_MEMORY + 1)])
    resp = ecs.run_task(taskDefinition="hungry")
    assert resp["tasks"] == []
    assert resp["failures"] == [{"arn": inst, "reason": "RESOURCE:MEMORY"}]
    assert ecs.list_tasks()["taskArns"] == []
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY


def test_run_task_needs_more_cpu_than_any_instance(ecs):
    """Asking more CPU than the instance has -> failure RESOURCE:CPU; no task."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "busy", [container("b", cpu=REGISTERED_CPU + 1, memory=128)])
    resp = ecs.run_task(taskDefinition="busy")
    assert resp["tasks"] == []
    assert resp["failures"] == [{"arn": inst, "reason": "RESOURCE:CPU"}]
    assert ecs.list_tasks()["taskArns"] == []


def test_static_host_port_conflict(ecs):
    """A second task wanting a host port a running task holds -> RESOURCE:PORTS."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "web", [container("web", memory=128, portMappings=[{"containerPort": 80, "hostPort": 8080}])])
    first = run_one(ecs, "web")
    ecs.submit_task_state_change(
        task=first["taskArn"], status="RUNNING", containers=[{"containerName": "web", "status": "RUNNING", "runtimeId": "abc"}]
    )
    assert "8080" in remaining(ecs, inst, "PORTS")
    resp = ecs.run_task(taskDefinition="web")
    assert resp["tasks"] == []
    assert resp["failures"] == [{"arn": inst, "reason": "RESOURCE:PORTS"}]
    assert ecs.list_tasks()["taskArns"] == [first["taskArn"]]


def test_reserved_agent_port_conflict(ecs):
    """Host port 22 is reserved by the agent's registration -> RESOURCE:PORTS."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "ssh", [container("ssh", memory=128, portMappings=[{"containerPort": 22, "hostPort": 22}])])
    resp = ecs.run_task(taskDefinition="ssh")
    assert resp["tasks"] == []
    assert resp["failures"] == [{"arn": inst, "reason": "RESOURCE:PORTS"}]


def test_run_task_count_partially_fits(ecs):
    """count=3 where the only instance fits 2 -> 2 tasks and one failure."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "half", [container("h", memory=1536)])
    resp = ecs.run_task(taskDefinition="half", count=3)
    assert len(resp["tasks"]) == 2
    assert len({t["taskArn"] for t in resp["tasks"]}) == 2
    assert len(resp["failures"]) == 1
    assert resp["failures"][0]["arn"] == inst
    assert resp["failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert len(ecs.list_tasks()["taskArns"]) == 2
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY - 3072


def test_run_task_count_over_ten(ecs):
    """count=11 -> InvalidParameterException; nothing created."""
    register_instance(ecs)
    register(ecs, "tiny", [container("t", memory=8)])
    with expect_error("InvalidParameterException"):
        ecs.run_task(taskDefinition="tiny", count=11)
    assert ecs.list_tasks()["taskArns"] == []


def test_run_task_unknown_definition(ecs):
    """A task definition that does not exist -> ClientException."""
    register_instance(ecs)
    with expect_error("ClientException"):
        ecs.run_task(taskDefinition="nosuchfamily:1")
    assert ecs.list_tasks()["taskArns"] == []


def test_run_task_inactive_revision(ecs):
    """A deregistered (INACTIVE) revision -> InvalidParameterException."""
    register_instance(ecs)
    worker(ecs)
    ecs.deregister_task_definition(taskDefinition="worker:1")
    with expect_error("InvalidParameterException"):
        ecs.run_task(taskDefinition="worker:1")
    assert ecs.list_tasks()["taskArns"] == []


# ---------------------------------------------------------------- DescribeTasks / ListTasks


def test_describe_tasks_missing_and_empty(ecs):
    """Unknown task id -> MISSING failure; an empty list -> InvalidParameterException."""
    register_instance(ecs)
    d = ecs.describe_tasks(tasks=["0123456789abcdef0123456789abcdef"])
    assert d["tasks"] == []
    assert d["failures"][0]["reason"] == "MISSING"
    with expect_error("InvalidParameterException"):
        ecs.describe_tasks(tasks=[])


def test_describe_tasks_include_tags(ecs):
    """Tags given at RunTask come back with include=['TAGS']."""
    register_instance(ecs)
    worker(ecs)
    tags = [{"key": "purpose", "value": "test"}]
    task = run_one(ecs, tags=tags)
    d = describe_task(ecs, task["taskArn"], include=["TAGS"])
    assert d["tags"] == tags
    # by bare id as well
    ident = task["taskArn"].rsplit("/", 1)[1]
    assert describe_task(ecs, ident)["taskArn"] == task["taskArn"]


def test_list_tasks_filters_and_pagination(ecs):
    """ListTasks filters by family, startedBy, containerInstance, desiredStatus; maxResults pages all."""
    a = register_instance(ecs)["containerInstanceArn"]
    b = register_instance(ecs)["containerInstanceArn"]
    worker(ecs, "alpha", memory=64)
    worker(ecs, "beta", memory=64)
    t1 = ecs.start_task(taskDefinition="alpha", containerInstances=[a], startedBy="me")["tasks"][0]["taskArn"]
    t2 = ecs.start_task(taskDefinition="alpha", containerInstances=[b])["tasks"][0]["taskArn"]
    t3 = ecs.start_task(taskDefinition="beta", containerInstances=[a], startedBy="me")["tasks"][0]["taskArn"]
    t4 = ecs.start_task(taskDefinition="beta", containerInstances=[b])["tasks"][0]["taskArn"]
    ecs.stop_task(task=t4)
    assert sorted(ecs.list_tasks()["taskArns"]) == sorted([t1, t2, t3])
    assert sorted(ecs.list_tasks(family="alpha")["taskArns"]) == sorted([t1, t2])
    assert sorted(ecs.list_tasks(startedBy="me")["taskArns"]) == sorted([t1, t3])
    assert sorted(ecs.list_tasks(containerInstance=a)["taskArns"]) == sorted([t1, t3])
    assert ecs.list_tasks(containerInstance=b)["taskArns"] == [t2]
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == [t4]
    assert ecs.list_tasks(family="beta", desiredStatus="STOPPED")["taskArns"] == [t4]
    pages = list_all(ecs.list_tasks, "taskArns", page_size=1)
    assert sorted(pages) == sorted([t1, t2, t3])
    assert len(pages) == 3


def test_list_tasks_in_missing_cluster(ecs):
    """ListTasks on a cluster that does not exist -> ClusterNotFoundException."""
    with expect_error("ClusterNotFoundException"):
        ecs.list_tasks(cluster="nowhere")


# ---------------------------------------------------------------- StartTask


def test_start_task_on_named_instance(ecs):
    """StartTask places the task on exactly the instance named."""
    register_instance(ecs)
    b = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    resp = ecs.start_task(taskDefinition="worker", containerInstances=[b])
    assert resp["failures"] == []
    assert resp["tasks"][0]["containerInstanceArn"] == b
    assert resp["tasks"][0]["lastStatus"] == "PENDING"
    assert remaining(ecs, b, "MEMORY") == REGISTERED_MEMORY - 512


def test_start_task_on_unknown_instance(ecs):
    """StartTask on an unknown instance id -> failure MISSING, no task."""
    register_instance(ecs)
    worker(ecs)
    resp = ecs.start_task(taskDefinition="worker", containerInstances=["0123456789abcdef0123456789abcdef"])
    assert resp["tasks"] == []
    assert [f["reason"] for f in resp["failures"]] == ["MISSING"]
    assert ecs.list_tasks()["taskArns"] == []


# ---------------------------------------------------------------- agent-facing


def test_agent_reports_running_then_stopped(ecs):
    """RUNNING report sets lastStatus/startedAt; STOPPED with exitCode 0 stops it and frees resources;
    a backwards report is refused."""
    inst = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    arn = run_one(ecs)["taskArn"]
    ack = ecs.submit_task_state_change(
        task=arn, status="RUNNING", containers=[{"containerName": "w", "status": "RUNNING", "runtimeId": "deadbeef"}]
    )
    assert ack["acknowledgment"] == "ACK"
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "RUNNING"
    assert t.get("startedAt")
    assert t["containers"][0]["lastStatus"] == "RUNNING"
    assert t["containers"][0]["runtimeId"] == "deadbeef"
    d = describe_instance(ecs, inst)
    assert d["runningTasksCount"] == 1 and d["pendingTasksCount"] == 0
    assert ecs.describe_clusters()["clusters"][0]["runningTasksCount"] == 1
    ecs.submit_task_state_change(
        task=arn, status="STOPPED", reason="done", containers=[{"containerName": "w", "status": "STOPPED", "exitCode": 0}]
    )
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "STOPPED"
    assert t["containers"][0]["lastStatus"] == "STOPPED"
    assert t["containers"][0]["exitCode"] == 0
    assert remaining(ecs, inst, "CPU") == REGISTERED_CPU
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY
    with expect_error("InvalidParameterException"):
        ecs.submit_task_state_change(task=arn, status="RUNNING")
    assert describe_task(ecs, arn)["lastStatus"] == "STOPPED"
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY


def test_stop_claimed_task_waits_for_agent(ecs):
    """Once an agent reported RUNNING, StopTask only sets desiredStatus STOPPED until the agent reports STOPPED."""
    inst = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    arn = run_one(ecs)["taskArn"]
    ecs.submit_task_state_change(task=arn, status="RUNNING", containers=[{"containerName": "w", "status": "RUNNING"}])
    ecs.stop_task(task=arn, reason="please stop")
    t = describe_task(ecs, arn)
    assert t["desiredStatus"] == "STOPPED"
    assert t["lastStatus"] == "RUNNING"
    assert t["stoppedReason"] == "please stop"
    assert t["stopCode"] == "UserInitiated"
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY - 512
    ecs.submit_task_state_change(task=arn, status="STOPPED", containers=[{"containerName": "w", "status": "STOPPED", "exitCode": 137}])
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "STOPPED"
    assert t["stoppedReason"] == "please stop"
    assert t["containers"][0]["exitCode"] == 137
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY


def test_submit_container_state_change(ecs):
    """SubmitContainerStateChange updates just the named container."""
    register_instance(ecs)
    register(ecs, "pair", [container("a", memory=64), container("b", memory=64)])
    arn = run_one(ecs, "pair")["taskArn"]
    ack = ecs.submit_container_state_change(task=arn, containerName="a", status="RUNNING", runtimeId="rt-a")
    assert ack["acknowledgment"] == "ACK"
    cs = {c["name"]: c for c in describe_task(ecs, arn)["containers"]}
    assert cs["a"]["lastStatus"] == "RUNNING"
    assert cs["a"]["runtimeId"] == "rt-a"
    assert cs["b"]["lastStatus"] == "PENDING"
    assert "runtimeId" not in cs["b"]


def test_discover_poll_endpoint(berth, ecs):
    """DiscoverPollEndpoint tells the agent where to talk: Berth's own endpoint."""
    arn = register_instance(ecs)["containerInstanceArn"]
    out = ecs.discover_poll_endpoint(containerInstance=arn, cluster="default")
    assert out["endpoint"].rstrip("/") == berth.endpoint


# ---------------------------------------------------------------- tags


def _tag_round_trip(ecs, arn):
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    got = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted(got, key=lambda t: t["key"]) == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "changed"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["b"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "a", "value": "changed"}]


def test_tags_on_cluster(ecs):
    """Tag/Untag/ListTagsForResource on a cluster ARN, agreeing with DescribeClusters include=TAGS."""
    arn = ecs.create_cluster(clusterName="tagme")["cluster"]["clusterArn"]
    _tag_round_trip(ecs, arn)
    assert ecs.describe_clusters(clusters=["tagme"], include=["TAGS"])["clusters"][0]["tags"] == [
        {"key": "a", "value": "changed"}
    ]


def test_tags_on_task_definition(ecs):
    """Tag/Untag/ListTagsForResource on a task definition ARN."""
    arn = worker(ecs)["taskDefinitionArn"]
    _tag_round_trip(ecs, arn)
    assert ecs.describe_task_definition(taskDefinition="worker:1", include=["TAGS"])["tags"] == [
        {"key": "a", "value": "changed"}
    ]


def test_tags_on_task(ecs):
    """Tag/Untag/ListTagsForResource on a task ARN."""
    register_instance(ecs)
    worker(ecs)
    arn = run_one(ecs)["taskArn"]
    _tag_round_trip(ecs, arn)
    assert describe_task(ecs, arn, include=["TAGS"])["tags"] == [{"key": "a", "value": "changed"}]


def test_tags_on_unknown_resource(ecs):
    """A well-formed ARN of nothing -> the not-found error of its kind; garbage -> InvalidParameterException
    (every kind is in test_errors.py)."""
    with expect_error("ClusterNotFoundException", "Cluster not found."):
        ecs.tag_resource(resourceArn="arn:aws:ecs:us-east-1:000000000000:cluster/nothing", tags=[{"key": "a", "value": "b"}])
    with expect_error("ClientException", "Unable to describe task definition."):
        ecs.list_tags_for_resource(resourceArn="arn:aws:ecs:us-east-1:000000000000:task-definition/nothing:1")
    with expect_error("InvalidParameterException", "The ARN provided is invalid."):
        ecs.list_tags_for_resource(resourceArn="not-an-arn")


# ---------------------------------------------------------------- account settings


def test_account_settings(ecs):
    """Put / List / effective defaults / Delete of an account setting; a bad value is refused."""
    out = ecs.put_account_setting(name="containerInsights", value="enabled")["setting"]
    assert out["name"] == "containerInsights" and out["value"] == "enabled"
    listed = ecs.list_account_settings(name="containerInsights")["settings"]
    assert [(s["name"], s["value"]) for s in listed] == [("containerInsights", "enabled")]
    effective = list_all(ecs.list_account_settings, "settings", effectiveSettings=True)
    by_name = {s["name"]: s["value"] for s in effective}
    assert by_name["containerInsights"] == "enabled"
    assert by_name["serviceLongArnFormat"] == "enabled"
    assert by_name["taskLongArnFormat"] == "enabled"
    assert by_name["containerInstanceLongArnFormat"] == "enabled"
    deleted = ecs.delete_account_setting(name="containerInsights")["setting"]
    assert deleted["name"] == "containerInsights"
    assert ecs.list_account_settings(name="containerInsights")["settings"] == []
    effective = ecs.list_account_settings(name="containerInsights", effectiveSettings=True)["settings"]
    assert [(s["value"], s["type"]) for s in effective] == [("disabled", "aws_managed")]
    with expect_error("InvalidParameterException"):
        ecs.put_account_setting(name="containerInsights", value="sometimes")
    assert ecs.list_account_settings(name="containerInsights")["settings"] == []


def test_register_container_instance_answers_tags_only_when_given(ecs):
    """RegisterContainerInstance's response has `tags` only when the registration had some."""
    assert "tags" not in register_instance(ecs)
    tags = [{"key": "rack", "value": "r1"}]
    inst = register_instance(ecs, tags=tags)
    assert inst["tags"] == tags
    assert describe_instance(ecs, inst["containerInstanceArn"]).get("tags") is None


def test_account_settings_berth_keeps_and_reports(ecs):
    """Settings with no effect without Fargate, IAM or log drivers are stored and reported; the long
    ARN formats can be (re)enabled; defaults are ECS's (defaultLogDriverMode non-blocking since 2025).
    What Berth refuses is in test_errors.py."""
    effective = {s["name"]: (s["value"], s["type"]) for s in
                 list_all(ecs.list_account_settings, "settings", effectiveSettings=True)}
    assert effective == {
        "serviceLongArnFormat": ("enabled", "aws_managed"), "taskLongArnFormat": ("enabled", "aws_managed"),
        "containerInstanceLongArnFormat": ("enabled", "aws_managed"), "awsvpcTrunking": ("disabled", "aws_managed"),
        "containerInsights": ("disabled", "aws_managed"), "fargateFIPSMode": ("disabled", "aws_managed"),
        "tagResourceAuthorization": ("on", "aws_managed"), "fargateTaskRetirementWaitPeriod": ("7", "aws_managed"),
        "guardDutyActivate": ("off", "aws_managed"), "defaultLogDriverMode": ("non-blocking", "aws_managed"),
        "fargateEventWindows": ("disabled", "aws_managed"),
    }
    kept = [("taskLongArnFormat", "enabled"), ("awsvpcTrunking", "disabled"), ("fargateFIPSMode", "disabled"),
            ("tagResourceAuthorization", "off"), ("fargateTaskRetirementWaitPeriod", "14"),
            ("defaultLogDriverMode", "blocking"), ("fargateEventWindows", "enabled")]
    for name, value in kept:
        assert ecs.put_account_setting_default(name=name, value=value)["setting"]["value"] == value
    effective = {s["name"]: s["value"] for s in list_all(ecs.list_account_settings, "settings", effectiveSettings=True)}
    assert {name: effective[name] for name, _ in kept} == dict(kept)
    # New ARNs are long whatever was asked: there is no short format to ask for.
    task_def = register(ecs, "arns")
    inst = register_instance(ecs)["containerInstanceArn"]
    assert inst.startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/default/")
    task = ecs.run_task(taskDefinition=task_def["taskDefinitionArn"])["tasks"][0]["taskArn"]
    assert task.startswith("arn:aws:ecs:us-east-1:000000000000:task/default/")
    service = ecs.create_service(serviceName="arns", taskDefinition="arns", desiredCount=0)["service"]["serviceArn"]
    assert service == "arn:aws:ecs:us-east-1:000000000000:service/default/arns"


# ---------------------------------------------------------------- more placement and lifecycle


def test_port_is_released_when_task_stops(ecs):
    """After the task holding a static host port stops, the port is free again."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "web", [container("web", memory=128, portMappings=[{"containerPort": 80, "hostPort": 8080}])])
    first = run_one(ecs, "web")
    assert "8080" in remaining(ecs, inst, "PORTS")
    assert ecs.run_task(taskDefinition="web")["failures"] == [{"arn": inst, "reason": "RESOURCE:PORTS"}]
    ecs.stop_task(task=first["taskArn"])
    assert "8080" not in remaining(ecs, inst, "PORTS")
    assert sorted(remaining(ecs, inst, "PORTS")) == sorted(AGENT_RESOURCES[2]["stringSetValue"])
    second = run_one(ecs, "web")
    assert second["taskArn"] != first["taskArn"]


def test_dynamic_host_ports_do_not_conflict(ecs):
    """Port mappings without a host port (dynamic) never conflict: two such tasks both run."""
    register_instance(ecs)
    register(ecs, "dyn", [container("d", memory=128, portMappings=[{"containerPort": 80}])])
    resp = ecs.run_task(taskDefinition="dyn", count=2)
    assert resp["failures"] == []
    assert len(resp["tasks"]) == 2


def test_udp_and_tcp_ports_are_separate(ecs):
    """The same host port number over tcp and over udp does not conflict; udp twice does."""
    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "tcp", [container("t", memory=64, portMappings=[{"containerPort": 53, "hostPort": 5353, "protocol": "tcp"}])])
    register(ecs, "udp", [container("u", memory=64, portMappings=[{"containerPort": 53, "hostPort": 5353, "protocol": "udp"}])])
    run_one(ecs, "tcp")
    run_one(ecs, "udp")
    assert "5353" in remaining(ecs, inst, "PORTS_UDP")
    resp = ecs.run_task(taskDefinition="udp")
    assert resp["tasks"] == []
    assert len(resp["failures"]) == 1
    assert resp["failures"][0]["reason"].startswith("RESOURCE:PORTS")


def test_agent_reports_stopped_from_pending(ecs):
    """A task that fails to start goes PENDING -> STOPPED by the agent's report and frees its resources."""
    inst = register_instance(ecs)["containerInstanceArn"]
    worker(ecs)
    arn = run_one(ecs)["taskArn"]
    ecs.submit_task_state_change(
        task=arn, status="STOPPED", reason="CannotPullContainerError",
        containers=[{"containerName": "w", "status": "STOPPED", "reason": "CannotPullContainerError"}],
    )
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "STOPPED"
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY
    assert describe_instance(ecs, inst)["pendingTasksCount"] == 0


def test_stop_unknown_task(ecs):
    """StopTask of a task that does not exist -> InvalidParameterException."""
    register_instance(ecs)
    with expect_error("InvalidParameterException"):
        ecs.stop_task(task="0123456789abcdef0123456789abcdef")


def test_start_task_on_deregistered_instance(ecs):
    """StartTask on a deregistered (INACTIVE) instance -> failure reason INACTIVE, no task."""
    register_instance(ecs)
    gone = register_instance(ecs)["containerInstanceArn"]
    ecs.deregister_container_instance(containerInstance=gone)
    worker(ecs)
    resp = ecs.start_task(taskDefinition="worker", containerInstances=[gone])
    assert resp["tasks"] == []
    assert [f["reason"] for f in resp["failures"]] == ["INACTIVE"]
    assert ecs.list_tasks()["taskArns"] == []


def test_run_task_spreads_over_instances(ecs):
    """With two instances that each fit one task, count=2 places one task on each."""
    a = register_instance(ecs)["containerInstanceArn"]
    b = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "big", [container("b", memory=3000)])
    resp = ecs.run_task(taskDefinition="big", count=2)
    assert resp["failures"] == []
    assert sorted(t["containerInstanceArn"] for t in resp["tasks"]) == sorted([a, b])


def test_run_task_overrides_change_reservation(ecs):
    """A containerOverrides memory value is what gets reserved on the instance."""
    inst = register_instance(ecs)["containerInstanceArn"]
    worker(ecs, memory=512)
    task = run_one(ecs, overrides={"containerOverrides": [{"name": "w", "memory": 1024}]})
    assert remaining(ecs, inst, "MEMORY") == REGISTERED_MEMORY - 1024
    assert int(task["memory"]) == 1024


def test_run_task_override_of_unknown_container(ecs):
    """Overriding a container the task definition lacks -> InvalidParameterException, nothing created."""
    register_instance(ecs)
    worker(ecs)
    with expect_error("InvalidParameterException"):
        ecs.run_task(taskDefinition="worker", overrides={"containerOverrides": [{"name": "nope", "memory": 64}]})
    assert ecs.list_tasks()["taskArns"] == []


def test_concurrent_run_task_never_overcommits(berth, ecs):
    """12 concurrent RunTask calls for 1024 MiB each on a 4096 MiB instance place exactly 4 tasks;
    the rest fail with RESOURCE:MEMORY and the instance's remaining memory is never negative."""
    import threading

    inst = register_instance(ecs)["containerInstanceArn"]
    register(ecs, "gig", [container("g", memory=1024)])
    placed, failures, errors = [], [], []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def go():
        client = berth.client()
        barrier.wait()
        try:
            resp = client.run_task(taskDefinition="gig")
        except ClientError as e:
            with lock:
                errors.append(e.response["Error"])
            return
        with lock:
            placed.extend(t["taskArn"] for t in resp["tasks"])
            failures.extend(f["reason"] for f in resp["failures"])

    threads = [threading.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(placed) == 4, (placed, failures)
    assert len(set(placed)) == 4
    assert failures == ["RESOURCE:MEMORY"] * 8
    assert remaining(ecs, inst, "MEMORY") == 0
    assert sorted(ecs.list_tasks()["taskArns"]) == sorted(placed)
    assert describe_instance(ecs, inst)["pendingTasksCount"] == 4
