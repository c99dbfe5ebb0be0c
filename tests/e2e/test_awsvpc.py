"""awsvpc tasks (EC2 launch type) on real agents, once per runtime driver: each task gets its own
address in its subnet, answers there from the host, and its security groups are enforced,
also when they change while it runs. Traffic goes only to the addresses of the task
namespaces Berth made (behind its own router namespace and bridges).

Each `berth up` gets a VPC block (`--vpc-cidr`) no other test running at once holds
(conftest.vpc_block), so two bridges never serve one subnet; the fixture removes the bridges and
host routes of its subnets afterwards."""

import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import ROUTER_NETNS, bridge_of, vpc_agent_berth
from ecs_helpers import expect_error, register_instance, wait_task

HTTPD = ("mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www")


# `oci` runs FARGATE tasks under Berth's own runtime (its default on this machine), `oci-runc`
# under runc; EC2 tasks run under runc on both.
AWSVPC_DRIVERS = {"docker": ("docker",), "oci": ("oci",), "oci-runc": ("oci", "--fargate-runtime", "runc")}


@pytest.fixture(params=list(AWSVPC_DRIVERS))
def awsvpc_berth(tmp_path, request):
    with vpc_agent_berth(tmp_path / "data", *AWSVPC_DRIVERS[request.param]) as b:
        yield b


def get(ip, port=80, timeout=2):
    with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=timeout) as r:
        return r.status, r.read().decode()


def reachable(ip):
    try:
        return get(ip)[0] == 200
    except OSError:
        return False


def until(what, check, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {limit} s")


def details(task):
    attachment = next(a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface")
    return attachment, {d["name"]: d["value"] for d in attachment["details"]}


def web_definition(ecs, registry, family):
    ecs.register_task_definition(family=family, networkMode="awsvpc", containerDefinitions=[
        {"name": "web", "image": registry, "memory": 32, "command": ["sh", "-c", HTTPD],
         "portMappings": [{"containerPort": 80, "protocol": "tcp"}]},
        # A second container of the task reaches the first on localhost.
        {"name": "probe", "image": registry, "memory": 16, "essential": False,
         "command": ["sh", "-c", "until wget -q -O /dev/null http://127.0.0.1:80/; do sleep 0.2; done; exit 42"]}])


def test_awsvpc_tasks_get_their_own_addresses_and_security_groups(awsvpc_berth, registry):
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    subnet_ids = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"web-{uuid.uuid4().hex[:8]}", Description="web",
                                      VpcId=vpc)["GroupId"]
    permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
    web_definition(ecs, registry, "webvpc")
    network = {"awsvpcConfiguration": {"subnets": subnet_ids, "securityGroups": [group]}}

    with expect_error("InvalidParameterException",
                      "Network Configuration must be provided when networkMode 'awsvpc' is specified."):
        ecs.run_task(taskDefinition="webvpc")
    with expect_error("InvalidParameterException", "Assign public IP is not supported for this launch type."):
        ecs.run_task(taskDefinition="webvpc", networkConfiguration={
            "awsvpcConfiguration": {"subnets": subnet_ids, "assignPublicIp": "ENABLED"}})

    arns = [ecs.run_task(taskDefinition="webvpc", networkConfiguration=network)["tasks"][0]["taskArn"]
            for _ in range(2)]
    tasks = [wait_task(ecs, arn, "RUNNING") for arn in arns]
    addresses = []
    for task in tasks:
        attachment, d = details(task)
        assert attachment["status"] == "ATTACHED", attachment
        assert d["subnetId"] in subnet_ids and d["networkInterfaceId"].startswith("eni-")
        assert d["macAddress"].startswith("0a:")
        ip = d["privateIPv4Address"]
        assert d["privateDnsName"].startswith("ip-" + ip.replace(".", "-"))
        assert ip.startswith(awsvpc_berth.vpc_cidr.split(".0.0/")[0] + ".")
        for c in task["containers"]:
            assert c["networkInterfaces"] == [{"attachmentId": attachment["id"], "privateIpv4Address": ip}]
        addresses.append(ip)
    assert addresses[0] != addresses[1]
    # Both on port 80, each at its own address, from the host.
    for ip in addresses:
        until(f"{ip}:80 answers", lambda: reachable(ip))
        assert get(ip) == (200, "hello\n")
    until("the probe container reached its task's web server on localhost",
          lambda: next(c for c in ecs.describe_tasks(tasks=[arns[0]])["tasks"][0]["containers"]
                       if c["name"] == "probe").get("exitCode") == 42)

    # A restarted `berth up` (server and agent) adopts the tasks: same addresses, still served.
    awsvpc_berth.restart()
    ecs, ec2 = awsvpc_berth.client(), awsvpc_berth.client("ec2")
    for arn, ip in zip(arns, addresses):
        assert details(ecs.describe_tasks(tasks=[arn])["tasks"][0])[1]["privateIPv4Address"] == ip
        until(f"{ip}:80 answers after the restart", lambda: reachable(ip))

    # Rules applied while the tasks run: no ingress for port 80 blocks, authorizing opens.
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[permission])
    until("revoking port 80 blocks the tasks", lambda: not any(reachable(ip) for ip in addresses))
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
    until("authorizing port 80 opens them again", lambda: all(reachable(ip) for ip in addresses))

    # Stopping frees the interface and removes the veth.
    enis_before = {i["NetworkInterfaceId"] for i in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert {details(t)[1]["networkInterfaceId"] for t in tasks} <= enis_before
    bridges = {bridge_of(s) for s in subnet_ids}
    ports_before = bridge_ports(bridges)
    ecs.stop_task(task=arns[0])
    stopped = wait_task(ecs, arns[0], "STOPPED")
    assert details(stopped)[0]["status"] == "DELETED"
    until("the stopped task's address stops answering", lambda: not reachable(addresses[0]))
    assert len(bridge_ports(bridges)) == len(ports_before) - 1, "the task's veth is gone"
    remaining = {i["NetworkInterfaceId"] for i in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert details(stopped)[1]["networkInterfaceId"] not in remaining
    assert reachable(addresses[1]), "the other task is untouched"
    ecs.stop_task(task=arns[1])
    wait_task(ecs, arns[1], "STOPPED")


def bridge_ports(bridges):
    """The veths of the router namespace that are ports of these bridges."""
    out = subprocess.run(["ip", "-n", ROUTER_NETNS, "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if any(f" master {b} " in line for b in bridges)]


NETWORK_REFUSALS = [
    ("missing", {}, "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    ("no-subnets", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}, "subnets can not be empty."),
    ("public-ip", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"],
                                                                    "assignPublicIp": "ENABLED"}}},
     "Assign public IP is not supported for this launch type."),
    ("unknown-subnet", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"]}}},
     "Error retrieving subnet information for [subnet-0123456789abcdef0]"),
    ("too-many-groups", {"networkConfiguration": {"awsvpcConfiguration": {
        "subnets": ["subnet-0123456789abcdef0"], "securityGroups": [f"sg-{n:017x}" for n in range(6)]}}},
     "securityGroups can have at most 5 items."),
]


@pytest.mark.parametrize("launch,message", [r[1:] for r in NETWORK_REFUSALS], ids=[r[0] for r in NETWORK_REFUSALS])
def test_awsvpc_network_configuration_is_checked_as_ecs_does(ecs, launch, message):
    instance = register_instance(ecs)["containerInstanceArn"]
    ecs.register_task_definition(family="vpcchecked", networkMode="awsvpc",
                                 containerDefinitions=[{"name": "web", "image": "busybox", "memory": 64}])
    ecs.register_task_definition(family="bridged", containerDefinitions=[{"name": "web", "image": "busybox",
                                                                          "memory": 64}])
    for call in (lambda: ecs.run_task(taskDefinition="vpcchecked", **launch),
                 lambda: ecs.start_task(taskDefinition="vpcchecked", containerInstances=[instance], **launch),
                 lambda: ecs.create_service(serviceName="s", taskDefinition="vpcchecked", desiredCount=1, **launch)):
        with expect_error("InvalidParameterException", message):
            call()
    assert ecs.list_tasks()["taskArns"] == [] and ecs.list_services()["serviceArns"] == []
    if launch:
        with expect_error("InvalidParameterException",
                          "Network Configuration is not valid for the given networkMode of this task definition."):
            ecs.run_task(taskDefinition="bridged", **launch)


def test_enis_follow_tasks_of_run_task_services_and_task_sets_without_an_agent(berth):
    """The control plane alone (a registered instance, no agent): each placed awsvpc task holds
    an ENI (PRECREATED) that DescribeNetworkInterfaces lists, freed when the task stops."""
    ecs, ec2 = berth.client(), berth.client("ec2")
    instance = register_instance(ecs)["containerInstanceArn"]
    subnet_ids = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    network = {"awsvpcConfiguration": {"subnets": subnet_ids}}
    ecs.register_task_definition(family="vpcplan", networkMode="awsvpc", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 64, "portMappings": [{"containerPort": 80}]}])

    def enis():
        return {i["NetworkInterfaceId"]: i for i in ec2.describe_network_interfaces()["NetworkInterfaces"]}

    ran = ecs.run_task(taskDefinition="vpcplan", networkConfiguration=network, count=2)["tasks"]
    started = ecs.start_task(taskDefinition="vpcplan", containerInstances=[instance],
                             networkConfiguration=network)["tasks"]
    tasks = ran + started
    ids = set()
    for task in tasks:
        attachment, d = details(task)
        assert attachment["status"] == "PRECREATED"
        assert d["subnetId"] in subnet_ids and d["privateIPv4Address"]
        assert task["containers"][0]["networkInterfaces"] == [
            {"attachmentId": attachment["id"], "privateIpv4Address": d["privateIPv4Address"]}]
        ids.add(d["networkInterfaceId"])
    assert len({details(t)[1]["privateIPv4Address"] for t in tasks}) == 3, "one address per task"
    assert ids <= set(enis())
    for task in tasks:
        ecs.stop_task(task=task["taskArn"])
        stopped = ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]
        assert stopped["lastStatus"] == "STOPPED" and details(stopped)[0]["status"] == "DELETED"
    assert not ids & set(enis()), "stopping frees the interfaces"

    # A service keeps its network configuration for the tasks it places.
    service = ecs.create_service(serviceName="vpcsvc", taskDefinition="vpcplan", desiredCount=1,
                                 networkConfiguration=network)["service"]
    assert service["networkConfiguration"] == network
    until("the service's task holds an interface", lambda: any(
        t["attachments"] and details(t)[0]["status"] == "PRECREATED"
        for t in describe_all(ecs, ecs.list_tasks(serviceName="vpcsvc")["taskArns"])))
    ecs.update_service(service="vpcsvc", desiredCount=0)
    ecs.delete_service(service="vpcsvc")

    # A task set of an EXTERNAL service has its own.
    ecs.create_service(serviceName="ext", desiredCount=1, deploymentController={"type": "EXTERNAL"})
    with expect_error("InvalidParameterException", "Network Configuration must be provided"):
        ecs.create_task_set(service="ext", cluster="default", taskDefinition="vpcplan")
    task_set = ecs.create_task_set(service="ext", cluster="default", taskDefinition="vpcplan",
                                   networkConfiguration=network, scale={"value": 100, "unit": "PERCENT"})["taskSet"]
    assert task_set["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == subnet_ids
    until("the task set's task holds an interface", lambda: any(
        t["attachments"] and t.get("startedBy") == task_set["id"]
        for t in describe_all(ecs, ecs.list_tasks(serviceName="ext")["taskArns"])))


def describe_all(ecs, arns):
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
