"""The ECS task metadata endpoint (v4 and v3), read from inside real tasks on both runtime
drivers: bridge, host and awsvpc tasks read their container's and their task's metadata and
stats at `${ECS_CONTAINER_METADATA_URI_V4}` (busybox `wget`, written to a host volume), and the
values agree with DescribeTasks; a task without a network gets no URI; a task using another
task's id, or an id nobody has, is refused. The awsvpc task's security group allows no egress at
all: the endpoint is not subject to security groups, as on AWS.

Traffic goes only to the endpoint's address (169.254.170.2, which the agent puts on the loopback
interface) and to the task namespaces and bridges Berth made."""

import ipaddress
import json
import urllib.error
import urllib.request
import uuid
from datetime import datetime

import pytest

from conftest import start_agent_berth, stop_agent_berth, vpc_agent_berth
from ecs_helpers import until, wait_task

# Subnets of their own, apart from test_awsvpc.py's, in the shared router namespace.

# Waits until its task and both its containers are RUNNING, then reads every path once into
# $DIR/$TAG (a host volume), then sleeps.
READER = r"""
d=$DIR/$TAG; mkdir -p $d
echo "${ECS_CONTAINER_METADATA_URI_V4:-unset}" > $d/uri4
echo "${ECS_CONTAINER_METADATA_URI:-unset}" > $d/uri3
if test -n "$ECS_CONTAINER_METADATA_URI_V4"; then
  U=$ECS_CONTAINER_METADATA_URI_V4
  until wget -qO $d/task.json $U/task && test "$(grep -o '"KnownStatus":"RUNNING"' $d/task.json | wc -l)" = 3; do
    sleep 0.2
  done
  wget -qO $d/container.json $U
  wget -qO $d/stats.json $U/stats
  wget -qO $d/taskstats.json $U/task/stats
  wget -qO $d/task3.json $ECS_CONTAINER_METADATA_URI/task
  wget -qO $d/container3.json $ECS_CONTAINER_METADATA_URI
fi
touch $d/done
exec $THEN
"""

# Uses the URIs of two other tasks, and an id nobody has; then its own.
THIEF = r"""
d=/out/thief; mkdir -p $d
wget -qO $d/vpc.json "$OTHER_VPC/task" 2> $d/vpc.err; echo $? > $d/vpc.rc
wget -qO $d/bridge.json "$OTHER_BRIDGE/stats" 2> $d/bridge.err; echo $? > $d/bridge.rc
wget -qO $d/unknown.json "${ECS_CONTAINER_METADATA_URI_V4%/*}/0123456789abcdef0123456789abcdef" 2> $d/unknown.err
echo $? > $d/unknown.rc
wget -qO $d/own.json "$ECS_CONTAINER_METADATA_URI_V4/task" 2> $d/own.err; echo $? > $d/own.rc
touch $d/done
exec sleep 3600
"""


# The endpoint's default port choice, which this file's tests are about (the suite's other agents
# get a free port each; this file's tests run one at a time: conftest.SERIAL_GROUPS).
AUTO_PORT = ("--task-metadata-port", "auto")


@pytest.fixture(params=["docker", "oci"])
def vpc_berth(tmp_path, request):
    with vpc_agent_berth(tmp_path / "data", request.param, *AUTO_PORT) as b:
        yield b


def containers(image, tag, script=READER, served=False):
    """The reader (or `script`) and a sidecar that only sleeps. The reader writes to the `out`
    host volume, or (`served`, for FARGATE tasks, which have no host volumes) to /www, which it
    then serves on port 80."""
    env = {"TAG": tag, "DIR": "/www" if served else "/out",
           "THEN": "httpd -f -p 80 -h /www" if served else "sleep 3600"}
    reader = {"name": "reader", "image": image, "memory": 32, "cpu": 64, "command": ["sh", "-c", script],
              "environment": [{"name": k, "value": v} for k, v in env.items()]}
    if served:
        reader["portMappings"] = [{"containerPort": 80, "protocol": "tcp"}]
    else:
        reader["mountPoints"] = [{"sourceVolume": "out", "containerPath": "/out"}]
    return [reader, {"name": "side", "image": image, "memory": 16, "essential": False, "command": ["sleep", "3600"]}]


def register(ecs, family, image, out, tag, **extra):
    volumes = [{"name": "out", "host": {"sourcePath": str(out)}}]
    return ecs.register_task_definition(family=family, containerDefinitions=containers(image, tag), volumes=volumes,
                                        cpu="256", memory="512", **extra)["taskDefinition"]


def done(out, tag):
    until(lambda: (out / tag / "done").exists(), timeout=60, what=f"the {tag} task to read its metadata")
    return out / tag


def read_json(directory, name):
    return json.loads((directory / name).read_text())


def eni_details(task):
    attachment = next(a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface")
    return {d["name"]: d["value"] for d in attachment["details"]}


def instant(text):
    """Seconds since the epoch of an RFC 3339 time with up to nine fraction digits."""
    base, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(base + "+00:00").timestamp() + float("0." + (fraction or "0"))


def check_task(meta, task, version=4):
    """The task metadata against DescribeTasks' task."""
    family, revision = task["taskDefinitionArn"].rsplit("/", 1)[1].split(":")
    assert meta["TaskARN"] == task["taskArn"]
    fargate = task["launchType"] == "FARGATE"
    # As on AWS: the cluster's ARN for a FARGATE task, its name for an EC2 one.
    assert meta["Cluster"] == (task["clusterArn"] if fargate else task["clusterArn"].rsplit("/", 1)[1]), meta
    assert (meta["Family"], meta["Revision"]) == (family, revision)
    assert (meta["DesiredStatus"], meta["KnownStatus"]) == ("RUNNING", "RUNNING")
    assert meta["Limits"] == {"CPU": int(task["cpu"]) / 1024, "Memory": int(task["memory"])} == {"CPU": 0.25, "Memory": 512}
    assert meta["AvailabilityZone"] == task["availabilityZone"]
    assert instant(meta["PullStartedAt"]) <= instant(meta["PullStoppedAt"])
    for member, described in (("PullStartedAt", "pullStartedAt"), ("PullStoppedAt", "pullStoppedAt")):
        assert abs(instant(meta[member]) - task[described].timestamp()) < 0.01, (meta[member], task[described])
    if version == 4:
        assert meta["LaunchType"] == task["launchType"]
    else:
        assert "LaunchType" not in meta
    described = {c["name"]: c for c in task["containers"]}
    assert {c["Name"] for c in meta["Containers"]} == set(described)
    for c in meta["Containers"]:
        d = described[c["Name"]]
        assert c["DockerId"] == d["runtimeId"], (c, d)
        assert c["Limits"] == {"CPU": int(d["cpu"]), "Memory": int(d["memory"])}
        assert (c["KnownStatus"], c["DesiredStatus"], c["Type"]) == ("RUNNING", "RUNNING", "NORMAL")
        assert c["Image"] == d["image"] and c["ImageID"], c
        assert instant(c["CreatedAt"]) <= instant(c["StartedAt"]), c
        assert "ExitCode" not in c and "FinishedAt" not in c
        assert c["Labels"]["com.berth.task-arn"] == task["taskArn"]
        if version == 4:
            assert c["ContainerARN"] == d["containerArn"]
        else:
            assert "ContainerARN" not in c
    return {c["Name"]: c for c in meta["Containers"]}


def check_stats(stats, container, own_network):
    assert stats["id"] == container["DockerId"] and stats["name"] == "/" + container["DockerName"], stats
    assert stats["memory_stats"]["usage"] > 0, stats["memory_stats"]
    assert 0 < stats["memory_stats"]["usage"] <= stats["memory_stats"]["limit"]
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0, stats["cpu_stats"]
    assert stats["cpu_stats"]["system_cpu_usage"] > stats["cpu_stats"]["cpu_usage"]["total_usage"]
    assert stats["cpu_stats"]["online_cpus"] >= 1
    assert stats["pids_stats"]["current"] >= 1
    if own_network:
        assert stats["networks"]["eth0"]["rx_bytes"] > 0, stats["networks"]
        assert "network_rate_stats" in stats
    else:
        assert "networks" not in stats


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_tasks_of_every_network_mode_read_their_own_metadata_and_stats(vpc_berth, registry, tmp_path):
    ecs, ec2 = vpc_berth.client(), vpc_berth.client("ec2")
    out = tmp_path / "out"
    out.mkdir()
    subnets = ec2.describe_subnets()["Subnets"]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"nothing-out-{uuid.uuid4().hex[:8]}", Description="no egress",
                                      VpcId=vpc)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"] == []

    register(ecs, "mdbridge", registry, out, "bridge")
    register(ecs, "mdhost", registry, out, "host", networkMode="host")
    register(ecs, "mdvpc", registry, out, "vpc", networkMode="awsvpc")
    ecs.register_task_definition(family="mdnone", networkMode="none", volumes=[
        {"name": "out", "host": {"sourcePath": str(out)}}], containerDefinitions=containers(registry, "none")[:1])
    network = {"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in subnets], "securityGroups": [group]}}
    arns = {
        "bridge": ecs.run_task(taskDefinition="mdbridge")["tasks"][0]["taskArn"],
        "host": ecs.run_task(taskDefinition="mdhost")["tasks"][0]["taskArn"],
        "vpc": ecs.run_task(taskDefinition="mdvpc", networkConfiguration=network)["tasks"][0]["taskArn"],
        "none": ecs.run_task(taskDefinition="mdnone")["tasks"][0]["taskArn"],
    }
    dirs = {tag: done(out, tag) for tag in arns}
    tasks = {tag: wait_task(ecs, arn, "RUNNING") for tag, arn in arns.items()}

    # Every container has its own URIs: v4 and v3 end in one id, different for every container.
    uris = {tag: (d / "uri4").read_text().strip() for tag, d in dirs.items()}
    assert uris["none"] == "unset" and (dirs["none"] / "uri3").read_text().strip() == "unset", "no network, no URI"
    for tag in ("bridge", "host", "vpc"):
        v4, v3 = uris[tag], (dirs[tag] / "uri3").read_text().strip()
        assert v4.startswith("http://169.254.170.2") and "/v4/" in v4, v4
        assert v3 == v4.replace("/v4/", "/v3/"), (v3, v4)
        assert len(v4.rsplit("/", 1)[1]) == 32
    assert len({uris["bridge"], uris["host"], uris["vpc"]}) == 3

    for tag in ("bridge", "host", "vpc"):
        task, d = tasks[tag], dirs[tag]
        assert task["launchType"] == "EC2"
        shown = check_task(read_json(d, "task.json"), task)
        check_task(read_json(d, "task3.json"), task, version=3)
        reader = shown["reader"]
        assert read_json(d, "container.json")["DockerId"] == reader["DockerId"]
        assert "TaskARN" not in read_json(d, "container.json"), "${URI} is the container's own metadata"
        assert "ContainerARN" not in read_json(d, "container3.json")
        mode = {"bridge": "bridge", "host": "host", "vpc": "awsvpc"}[tag]
        assert reader["Networks"][0]["NetworkMode"] == mode
        check_stats(read_json(d, "stats.json"), reader, own_network=tag != "host")
        task_stats = read_json(d, "taskstats.json")
        assert set(task_stats) == {c["runtimeId"] for c in task["containers"]}, task_stats.keys()
        for c in shown.values():
            assert task_stats[c["DockerId"]]["memory_stats"]["usage"] > 0

    # The awsvpc task's network is its ENI's, as DescribeTasks shows it.
    eni = eni_details(tasks["vpc"])
    subnet = next(s for s in subnets if s["SubnetId"] == eni["subnetId"])
    gateway = ipaddress.ip_network(subnet["CidrBlock"])[1]
    net = read_json(dirs["vpc"], "task.json")["Containers"][0]["Networks"][0]
    assert net == {"NetworkMode": "awsvpc", "IPv4Addresses": [eni["privateIPv4Address"]], "AttachmentIndex": 0,
                   "MACAddress": eni["macAddress"], "IPv4SubnetCIDRBlock": subnet["CidrBlock"],
                   "PrivateDNSName": eni["privateDnsName"],
                   "SubnetGatewayIpv4Address": f"{gateway}/{subnet['CidrBlock'].split('/')[1]}"}
    assert read_json(dirs["vpc"], "task3.json")["Containers"][0]["Networks"][0] == {
        "NetworkMode": "awsvpc", "IPv4Addresses": [eni["privateIPv4Address"]]}
    bridge_net = read_json(dirs["bridge"], "task.json")["Containers"][0]["Networks"][0]
    assert bridge_net["NetworkMode"] == "bridge" and ipaddress.ip_address(bridge_net["IPv4Addresses"][0]).is_private
    assert read_json(dirs["host"], "task.json")["Containers"][0]["Networks"] == [{"NetworkMode": "host"}]

    # Another task's ids are refused, as is an id nobody has; the thief's own works.
    ecs.register_task_definition(family="mdthief", volumes=[{"name": "out", "host": {"sourcePath": str(out)}}],
                                 containerDefinitions=[containers(registry, "thief", script=THIEF)[0]])
    thief = ecs.run_task(taskDefinition="mdthief", overrides={"containerOverrides": [{"name": "reader", "environment": [
        {"name": "OTHER_VPC", "value": uris["vpc"]}, {"name": "OTHER_BRIDGE", "value": uris["bridge"]}]}]})
    d = done(out, "thief")
    for name, code in (("vpc", "403"), ("bridge", "403"), ("unknown", "404")):
        assert (d / f"{name}.rc").read_text().strip() != "0", name
        assert code in (d / f"{name}.err").read_text(), (name, (d / f"{name}.err").read_text())
    assert (d / "own.rc").read_text().strip() == "0", (d / "own.err").read_text()
    assert read_json(d, "own.json")["TaskARN"] == thief["tasks"][0]["taskArn"]

    # From the host: the awsvpc and bridge ids are not for its addresses; an unknown id is 404.
    status, body = http_status(uris["vpc"] + "/task")
    assert status == 403 and body.startswith("V4 task metadata handler:"), (status, body)
    status, body = http_status(uris["vpc"].rsplit("/", 1)[0] + "/" + "0" * 32)
    assert status == 404 and body.startswith("V4 container metadata handler:"), (status, body)

    # A stopped task's ids answer no more once its containers are removed.
    ecs.stop_task(task=arns["host"])
    wait_task(ecs, arns["host"], "STOPPED")
    status, body = http_status(uris["host"] + "/task")
    assert status == 200 and body["KnownStatus"] == "STOPPED", "shown until its containers go"
    assert all(c["KnownStatus"] == "STOPPED" and "ExitCode" in c for c in body["Containers"]), body


def test_a_second_agent_listens_on_a_port_of_its_own_and_ids_survive_a_restart(vpc_berth, registry, tmp_path):
    """Two agents on one machine cannot both have port 80: the second takes a free port and its
    containers' URIs name it. A restarted agent listens on the same port with the same ids, so
    the containers it adopts keep working URIs (host-mode ids are not bound to an address: the
    test reads them from the host)."""
    second = start_agent_berth(tmp_path / "second", vpc_berth.driver, *AUTO_PORT)
    out = tmp_path / "out"
    out.mkdir()
    try:
        uris, arns = {}, {}
        for b, tag in ((vpc_berth, "first"), (second, "second")):
            ecs = b.client()
            register(ecs, "mdport", registry, out, tag, networkMode="host")
            arns[tag] = ecs.run_task(taskDefinition="mdport")["tasks"][0]["taskArn"]
            uris[tag] = (done(out, tag) / "uri4").read_text().strip()
            assert read_json(out / tag, "task.json")["TaskARN"] == arns[tag]
        assert uris["first"].split("/v4/")[0] != uris["second"].split("/v4/")[0], uris
        for b, tag in ((vpc_berth, "first"), (second, "second")):
            b.restart()
            # The restarted agent publishes the task once its runner took the containers back.
            status, body = until(lambda: (lambda r: r if r[0] == 200 else None)(http_status(uris[tag] + "/task")),
                                 timeout=30, what=f"the {tag} agent to serve its adopted task")
            assert (body["TaskARN"], body["KnownStatus"]) == (arns[tag], "RUNNING"), (tag, status, body)
    finally:
        stop_agent_berth(second, tmp_path / "second")


def test_a_fargate_task_reads_its_metadata(vpc_berth, registry):
    """A FARGATE task of a cluster with no container instance: `LaunchType` FARGATE and the
    cluster's ARN, as AWS shows them. FARGATE tasks have no host volumes, so the reader serves
    what it read on port 80 at the task's own address."""
    ecs, ec2 = vpc_berth.client(), vpc_berth.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"web-{uuid.uuid4().hex[:8]}", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    network = {"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
                                       "securityGroups": [group]}}
    ecs.create_cluster(clusterName="apps")
    ecs.register_task_definition(family="mdfargate", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512", containerDefinitions=containers(registry, "fargate", served=True))
    arn = ecs.run_task(cluster="apps", launchType="FARGATE", taskDefinition="mdfargate",
                       networkConfiguration=network)["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "RUNNING", cluster="apps")
    assert "containerInstanceArn" not in task and task["launchType"] == "FARGATE"
    ip = eni_details(task)["privateIPv4Address"]

    def served(name):
        try:
            with urllib.request.urlopen(f"http://{ip}/fargate/{name}", timeout=2) as r:
                return r.read()
        except OSError:
            return None
    until(lambda: served("done") is not None, timeout=60, what="the FARGATE task to serve what it read")
    meta = json.loads(served("task.json"))
    shown = check_task(meta, task)
    assert meta["Cluster"] == task["clusterArn"] and meta["Cluster"].endswith(":cluster/apps")
    assert shown["reader"]["Networks"][0]["IPv4Addresses"] == [ip]
    check_stats(json.loads(served("stats.json")), shown["reader"], own_network=True)
