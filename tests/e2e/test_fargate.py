"""The FARGATE launch type on real agents, once per runtime driver: `berth up` lends its machine
to Fargate with no flags, so a cluster with no container instance runs FARGATE tasks and
services; each task has its own address in its subnet, no container instance, the platform it
runs on, and its task size enforced on the whole task. Traffic goes only to the addresses of
the task namespaces Berth made.

The fixture and the helpers are those of test_awsvpc.py (a VPC block of the test's own)."""

import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import BIN
from ecs_helpers import expect_error, wait_task
from test_awsvpc import HTTPD, awsvpc_berth, details, get, reachable, until  # noqa: F401 (fixture)

# The task definition of the talks, unchanged apart from the image and command.
def webserver(image):
    return {
        "family": "webserver",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{
            "name": "webserver", "image": image, "cpu": 99, "memory": 100, "essential": True,
            "command": ["sh", "-c", HTTPD],
            "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
        }],
    }


def web_network(ec2):
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"web-{uuid.uuid4().hex[:8]}", Description="web",
                                      VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [group], "assignPublicIp": "DISABLED"}}


def memory_left(ecs):
    instance = ecs.describe_container_instances(
        containerInstances=ecs.list_container_instances()["containerInstanceArns"])["containerInstances"][0]
    return next(r["integerValue"] for r in instance["remainingResources"] if r["name"] == "MEMORY")


def stop_all(ecs, cluster):
    for arn in ecs.list_tasks(cluster=cluster)["taskArns"]:
        ecs.stop_task(cluster=cluster, task=arn)
    for arn in ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]:
        wait_task(ecs, arn, "STOPPED", cluster=cluster)


def test_fargate_tasks_run_with_no_container_instance_of_their_cluster(awsvpc_berth, registry):
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    registered = ecs.register_task_definition(**webserver(registry))["taskDefinition"]
    assert registered["compatibilities"] == ["EC2", "FARGATE"]
    network = web_network(ec2)
    zones = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    # `berth up`'s machine lends itself to Fargate, and says so.
    instance = ecs.describe_container_instances(
        containerInstances=ecs.list_container_instances()["containerInstanceArns"])["containerInstances"][0]
    assert any(a["name"] == "berth.capacity.fargate" for a in instance["attributes"])
    before = memory_left(ecs)

    # A cluster with no container instance of its own.
    ecs.create_cluster(clusterName="apps")
    assert ecs.list_container_instances(cluster="apps")["containerInstanceArns"] == []
    ran = [ecs.run_task(cluster="apps", launchType="FARGATE", taskDefinition="webserver",
                        networkConfiguration=network)["tasks"][0] for _ in range(2)]
    for task in ran:
        assert "containerInstanceArn" not in task
        assert (task["launchType"], task["platformVersion"], task["platformFamily"]) == ("FARGATE", "1.4.0", "Linux")
        assert (task["cpu"], task["memory"]) == ("256", "512")
        assert task["availabilityZone"] == zones[details(task)[1]["subnetId"]]
    tasks = [wait_task(ecs, t["taskArn"], "RUNNING", cluster="apps") for t in ran]
    addresses = [details(t)[1]["privateIPv4Address"] for t in tasks]
    assert addresses[0] != addresses[1]
    # Both on port 80, each at its own address.
    for ip in addresses:
        until(f"{ip}:80 answers", lambda: reachable(ip))
        assert get(ip) == (200, "hello\n")
    # The machine's one account of memory holds both tasks' sizes.
    assert memory_left(ecs) == before - 2 * 512
    assert set(ecs.list_tasks(cluster="apps", launchType="FARGATE")["taskArns"]) == {t["taskArn"] for t in tasks}
    assert ecs.list_tasks(cluster="apps", launchType="EC2")["taskArns"] == []
    counts = ecs.describe_clusters(clusters=["apps"], include=["STATISTICS"])["clusters"][0]
    stats = {s["name"]: s["value"] for s in counts["statistics"]}
    assert stats["runningFargateTasksCount"] == "2" and stats["runningEC2TasksCount"] == "0"

    # Tasks and addresses survive a restart of `berth up`.
    awsvpc_berth.restart()
    ecs = awsvpc_berth.client()
    for task, ip in zip(tasks, addresses):
        again = ecs.describe_tasks(cluster="apps", tasks=[task["taskArn"]])["tasks"][0]
        assert again["lastStatus"] == "RUNNING" and details(again)[1]["privateIPv4Address"] == ip
        until(f"{ip}:80 answers after the restart", lambda: reachable(ip))

    stop_all(ecs, "apps")
    assert memory_left(ecs) == before, "stopping gives the sizes back"
    for ip in addresses:
        until(f"{ip} stops answering", lambda: not reachable(ip))


def test_a_fargate_service_keeps_its_tasks_running(awsvpc_berth, registry):
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    ecs.register_task_definition(**webserver(registry))
    ecs.create_cluster(clusterName="svc")
    service = ecs.create_service(cluster="svc", serviceName="web", taskDefinition="webserver", desiredCount=2,
                                 launchType="FARGATE", networkConfiguration=web_network(ec2))["service"]
    assert (service["launchType"], service["platformVersion"], service["platformFamily"]) == (
        "FARGATE", "LATEST", "Linux")
    assert service["deployments"][0]["launchType"] == "FARGATE"

    def running():
        arns = ecs.list_tasks(cluster="svc", serviceName="web")["taskArns"]
        tasks = ecs.describe_tasks(cluster="svc", tasks=arns)["tasks"] if arns else []
        return [t for t in tasks if t["lastStatus"] == "RUNNING"]
    until("two tasks run", lambda: len(running()) == 2, limit=90)
    first = running()
    assert all(t["launchType"] == "FARGATE" and "containerInstanceArn" not in t for t in first)
    # A stopped task is replaced, on Fargate again.
    ecs.stop_task(cluster="svc", task=first[0]["taskArn"])
    until("the service replaced its task",
          lambda: len(running()) == 2 and first[0]["taskArn"] not in {t["taskArn"] for t in running()}, limit=90)
    ecs.update_service(cluster="svc", service="web", desiredCount=0)
    until("the service scaled in", lambda: not running(), limit=90)
    ecs.delete_service(cluster="svc", service="web")
    stop_all(ecs, "svc")


def test_the_task_size_bounds_the_whole_task(awsvpc_berth, registry):
    """512 MiB for the task, no limit on its one container: allocating more is the task's OOM."""
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    ecs.register_task_definition(
        family="hog", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "hog", "image": registry,
                               # A shell variable doubling until it passes 1 GiB.
                               "command": ["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"]}])
    arn = ecs.run_task(launchType="FARGATE", taskDefinition="hog",
                       networkConfiguration=web_network(ec2))["tasks"][0]["taskArn"]
    stopped = wait_task(ecs, arn, "STOPPED", timeout=90)
    container = stopped["containers"][0]
    assert container["exitCode"] == 137, container
    assert container.get("reason", "").startswith("OutOfMemoryError"), container


FARGATE_REFUSALS = [
    ("bridge", {"networkMode": "bridge", "cpu": "256", "memory": "512"}, "Fargate only supports network mode"),
    ("no-cpu", {"cpu": None}, "Fargate requires that 'cpu' be defined at the task level."),
    ("no-memory", {"memory": None}, "Fargate requires that 'memory' be defined at the task level."),
    ("size", {"cpu": "256", "memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
    ("size-step", {"cpu": "8192", "memory": "17408"}, "No Fargate configuration exists for given values: 8192 CPU"),
    ("privileged", {"privileged": True}, "Fargate does not support privileged containers"),
    ("host-volume", {"volumes": [{"name": "h", "host": {"sourcePath": "/tmp"}}]}, "Fargate does not support host volumes"),
    ("docker-volume", {"volumes": [{"name": "d", "dockerVolumeConfiguration": {"scope": "task"}}]},
     "Fargate does not support Docker volumes"),
    ("storage", {"ephemeralStorage": {"sizeInGiB": 20}}, "The ephemeral storage size"),
]


@pytest.mark.parametrize("change,message", [r[1:] for r in FARGATE_REFUSALS], ids=[r[0] for r in FARGATE_REFUSALS])
def test_fargate_definitions_follow_fargates_rules(ecs, change, message):
    definition = {"family": "strict", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
                  "cpu": "256", "memory": "512",
                  "containerDefinitions": [{"name": "web", "image": "busybox"}]}
    for key, value in change.items():
        if key == "privileged":
            definition["containerDefinitions"][0]["privileged"] = value
        elif value is None:
            del definition[key]
        else:
            definition[key] = value
    with expect_error("ClientException", message_contains=message):
        ecs.register_task_definition(**definition)
    assert ecs.list_task_definitions(familyPrefix="strict")["taskDefinitionArns"] == []


def launch_refusals(subnet):
    network = {"awsvpcConfiguration": {"subnets": [subnet]}}
    return [
        ("ec2-only", "plain", {"networkConfiguration": network}, "Task definition does not support launch_type FARGATE."),
        ("platform", "sized", {"networkConfiguration": network, "platformVersion": "1.3.0"},
         "The specified platform version: 1.3.0 does not exist"),
        ("constraints", "sized", {"networkConfiguration": network,
                                  "placementConstraints": [{"type": "distinctInstance"}]},
         "Task placement constraints and strategies are not supported with the FARGATE launch type."),
        ("no-network", "sized", {}, "Network Configuration must be provided"),
    ]


def test_fargate_launches_are_checked_and_change_nothing(berth):
    """Without an agent: every refusal of RunTask and CreateService for FARGATE, and a FARGATE
    task with no capacity to lend is a failure, not a task."""
    ecs, ec2 = berth.client(), berth.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ecs.register_task_definition(family="plain", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 64}])
    ecs.register_task_definition(family="sized", networkMode="awsvpc", cpu="256", memory="512",
                                 containerDefinitions=[{"name": "web", "image": "busybox"}])
    for _, family, extra, message in launch_refusals(subnet):
        with expect_error("InvalidParameterException", message_contains=message):
            ecs.run_task(taskDefinition=family, launchType="FARGATE", **extra)
        with expect_error("InvalidParameterException", message_contains=message):
            ecs.create_service(serviceName="s", taskDefinition=family, desiredCount=1, launchType="FARGATE", **extra)
    with expect_error("InvalidParameterException", "The DAEMON scheduling strategy is not supported"):
        ecs.create_service(serviceName="s", taskDefinition="sized", schedulingStrategy="DAEMON", launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}})
    with expect_error("InvalidParameterException", "The platform version must be null"):
        ecs.run_task(taskDefinition="plain", launchType="EC2", platformVersion="LATEST")
    assert ecs.list_tasks()["taskArns"] == [] and ecs.list_services()["serviceArns"] == []

    # No machine lends itself to Fargate here (`--runtime none`): a failure, as ECS reports
    # a capacity shortage, and nothing is made.
    answer = ecs.run_task(taskDefinition="sized", launchType="FARGATE", count=2,
                          networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}})
    assert answer["tasks"] == []
    assert [f["reason"] for f in answer["failures"]] == [
        "Capacity is unavailable at this time. Please try again later or in a different availability zone"] * 2
    assert "no agent lends" in answer["failures"][0]["detail"]
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []


def spread(ecs, cluster, service):
    arns = ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    counts = {}
    for t in tasks:
        counts[t["capacityProviderName"]] = counts.get(t["capacityProviderName"], 0) + 1
    return tasks, counts


def test_capacity_providers_share_a_service_and_spot_is_interrupted(awsvpc_berth, registry):
    """FARGATE base 1 weight 1, FARGATE_SPOT weight 3, five tasks: two and three. A spot task
    taken back gets SIGTERM, stops with SpotInterruption, and the service replaces it on
    FARGATE_SPOT again."""
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    ecs.register_task_definition(**webserver(registry))
    strategy = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    cluster = ecs.create_cluster(clusterName="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                 defaultCapacityProviderStrategy=strategy)["cluster"]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    # No launch type and no strategy: the cluster's default strategy.
    service = ecs.create_service(cluster="spot", serviceName="web", taskDefinition="webserver", desiredCount=5,
                                 networkConfiguration=web_network(ec2))["service"]
    assert "launchType" not in service and service["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0}]

    until("five tasks run", lambda: sum(t["lastStatus"] == "RUNNING" for t in spread(ecs, "spot", "web")[0]) == 5,
          limit=120)
    tasks, counts = spread(ecs, "spot", "web")
    assert counts == {"FARGATE": 2, "FARGATE_SPOT": 3}
    assert all(t["launchType"] == "FARGATE" for t in tasks)

    victim = next(t for t in tasks if t["capacityProviderName"] == "FARGATE_SPOT")
    with expect_error("InvalidParameterException", "Only tasks launched by the FARGATE_SPOT"):
        ecs_spot_interrupt(awsvpc_berth, next(t for t in tasks if t["capacityProviderName"] == "FARGATE")["taskArn"])
    interrupted = time.time()
    line = ecs_spot_interrupt(awsvpc_berth, victim["taskArn"], warning=5)
    assert line.startswith(victim["taskArn"]) and "SpotInterruption" in line and "after 5 s" in line, line
    stopped = wait_task(ecs, victim["taskArn"], "STOPPED", cluster="spot", timeout=60)
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("SpotInterruption", "Your Spot Task was interrupted.")
    # httpd runs as PID 1 and ignores SIGTERM: SIGKILL comes once the 5-second warning has
    # passed, not after the container's 30-second stopTimeout.
    assert stopped["containers"][0]["exitCode"] == 137, stopped["containers"][0]
    assert 4.5 <= stopped["stoppedAt"].timestamp() - interrupted < 25, stopped["stoppedAt"]

    def replaced():
        tasks, counts = spread(ecs, "spot", "web")
        live = [t for t in tasks if t["desiredStatus"] == "RUNNING" and t["lastStatus"] == "RUNNING"]
        return len(live) == 5 and victim["taskArn"] not in {t["taskArn"] for t in live}
    until("the service replaced the interrupted task", replaced, limit=90)
    live = [t for t in spread(ecs, "spot", "web")[0] if t["desiredStatus"] == "RUNNING"]
    assert sum(t["capacityProviderName"] == "FARGATE_SPOT" for t in live) == 3

    # A provider a service uses stays with the cluster.
    with expect_error("ResourceInUseException"):
        ecs.put_cluster_capacity_providers(cluster="spot", capacityProviders=["FARGATE"],
                                           defaultCapacityProviderStrategy=[])
    ecs.update_service(cluster="spot", service="web", desiredCount=0)
    until("the service scaled in", lambda: not any(
        t["lastStatus"] != "STOPPED" for t in spread(ecs, "spot", "web")[0]), limit=90)
    ecs.delete_service(cluster="spot", service="web")


def ecs_spot_interrupt(b, task, warning=None):
    """`berth spot-interrupt` as a person runs it; the line it prints, or the AWS error raised
    as boto3 would."""
    args = [BIN, "spot-interrupt", "--endpoint", b.endpoint, "--access-key", b.access_key,
            "--secret-key", b.secret_key, "--cluster", "spot", task]
    if warning is not None:
        args += ["--warning", str(warning)]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        # "Error: CODE: MESSAGE" on the first line.
        code, _, message = done.stderr.splitlines()[0].removeprefix("Error: ").partition(": ")
        raise ClientError({"Error": {"Code": code, "Message": message}}, "SpotInterrupt")
    return done.stdout.strip()


CAPACITY_REFUSALS = [
    ("unknown-provider", "create_cluster", {"clusterName": "c", "capacityProviders": ["MINE"]},
     "InvalidParameterException", "The specified capacity provider MINE does not exist"),
    ("default-not-associated", "create_cluster", {"clusterName": "c", "capacityProviders": ["FARGATE"],
                                                  "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},
     "InvalidParameterException", "cannot contain a capacity provider that is not associated with the cluster"),
    ("two-bases", "create_cluster", {"clusterName": "c", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                                     "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                                                                         {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 1}]},
     "InvalidParameterException", "Only one capacity provider in a strategy can have a base defined."),
    ("no-weight", "create_cluster", {"clusterName": "c", "capacityProviders": ["FARGATE"],
                                     "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "base": 1}]},
     "InvalidParameterException", "must have a weight greater than zero"),
    ("run-both", "run_task", {"taskDefinition": "sized", "launchType": "FARGATE",
                              "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
     "InvalidParameterException", "Specifying both a launch type and capacity provider strategy is not supported."),
    ("run-not-associated", "run_task", {"taskDefinition": "sized",
                                        "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
     "InvalidParameterException", "not associated with the cluster"),
    ("service-not-associated", "create_service", {"serviceName": "s", "taskDefinition": "sized", "desiredCount": 1,
                                                  "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},
     "InvalidParameterException", "not associated with the cluster"),
    ("asg-provider", "create_capacity_provider", {"name": "mine", "autoScalingGroupProvider": {
        "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/x"}},
     "UnsupportedFeatureException", "Berth has no Auto Scaling groups"),
    ("delete-fargate", "delete_capacity_provider", {"capacityProvider": "FARGATE"},
     "ClientException", "The FARGATE capacity provider is managed by Berth"),
    ("put-unknown", "put_cluster_capacity_providers", {"cluster": "default", "capacityProviders": ["X"],
                                                       "defaultCapacityProviderStrategy": []},
     "InvalidParameterException", "The specified capacity provider X does not exist"),
]


@pytest.mark.parametrize("operation,args,code,message", [r[1:] for r in CAPACITY_REFUSALS],
                         ids=[r[0] for r in CAPACITY_REFUSALS])
def test_capacity_provider_refusals_change_nothing(berth, operation, args, code, message):
    ecs = berth.client()
    ecs.register_task_definition(family="sized", networkMode="awsvpc", cpu="256", memory="512",
                                 containerDefinitions=[{"name": "web", "image": "busybox"}])
    before = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    with expect_error(code, message_contains=message):
        getattr(ecs, operation)(**args)
    assert ecs.list_clusters()["clusterArns"] == [before["clusterArn"]]
    after = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    assert (after["capacityProviders"], after["defaultCapacityProviderStrategy"]) == ([], [])
    assert ecs.list_tasks()["taskArns"] == [] and ecs.list_services()["serviceArns"] == []


def test_fargate_and_fargate_spot_exist_in_every_account(berth):
    ecs = berth.client()
    listed = ecs.describe_capacity_providers()["capacityProviders"]
    assert [(p["name"], p["status"]) for p in listed] == [("FARGATE", "ACTIVE"), ("FARGATE_SPOT", "ACTIVE")]
    assert listed[0]["capacityProviderArn"].endswith(":capacity-provider/FARGATE")
    some = ecs.describe_capacity_providers(capacityProviders=["FARGATE_SPOT", "NOPE"])
    assert [p["name"] for p in some["capacityProviders"]] == ["FARGATE_SPOT"]
    assert some["failures"] == [{"arn": "NOPE", "reason": "MISSING"}]
    out = ecs.put_cluster_capacity_providers(
        cluster="default", capacityProviders=["FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 2}])["cluster"]
    assert out["capacityProviders"] == ["FARGATE_SPOT"]
    described = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    assert described["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 0}]


def test_security_groups_seen_from_another_task(awsvpc_berth, registry):
    """A web task whose group admits port 80 only from the members of `clients`: a task in
    `clients` reaches it, a task in `others` does not, until a rule for `others` is added while
    the web task runs."""
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    ecs.register_task_definition(**webserver(registry))
    ecs.register_task_definition(family="probe", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512",
                                 containerDefinitions=[{"name": "probe", "image": registry, "command": ["true"]}])
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]

    def group(name):
        return ec2.create_security_group(GroupName=f"{name}-{uuid.uuid4().hex[:8]}", Description=name,
                                         VpcId=vpc)["GroupId"]
    web, clients, others = group("web"), group("clients"), group("others")

    def from_group(source):
        return [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": source}]}]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=from_group(clients))

    def network(g):
        return {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [g]}}
    server = ecs.run_task(launchType="FARGATE", taskDefinition="webserver", networkConfiguration=network(web))
    server = wait_task(ecs, server["tasks"][0]["taskArn"], "RUNNING")
    ip = details(server)[1]["privateIPv4Address"]
    until(f"{ip} is up", lambda: reachable_from_host_with_rule(ec2, web, ip), limit=60)

    def probe(g):
        # A new member's address reaches the web task's rules a moment after the member
        # starts: a few tries, a second apart.
        # (Debian's busybox wget crashes with -T: `timeout` bounds each try instead.)
        fetch = f"for n in 1 2 3 4 5; do timeout 2 wget -q -O /dev/null http://{ip}/ && exit 0; sleep 1; done; exit 7"
        out = ecs.run_task(launchType="FARGATE", taskDefinition="probe", networkConfiguration=network(g),
                           overrides={"containerOverrides": [{"name": "probe", "command": ["sh", "-c", fetch]}]})
        return wait_task(ecs, out["tasks"][0]["taskArn"], "STOPPED", timeout=60)["containers"][0]["exitCode"]
    assert probe(clients) == 0, "a member of clients reaches port 80"
    assert probe(others) == 7, "a member of others does not"
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=from_group(others))
    until("the new rule reaches the running web task", lambda: probe(others) == 0, limit=60)
    stop_all(ecs, "default")


def reachable_from_host_with_rule(ec2, group, ip):
    """The web task answers the host once a rule from everywhere is in place; the rule is taken
    away again at once (so only the source-group rules remain)."""
    everyone = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=everyone)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if reachable(ip):
                return True
            time.sleep(0.5)
        return False
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=everyone)
