"""Service Connect: services of one Cloud Map namespace reach each other by client alias
through the proxy Berth runs in each task's network namespace, on both runtime drivers
(awsvpc). A client service's container calls `http://backend/` and `http://api:9000/` with
busybox `wget`: the names are in the task's /etc/hosts, connections take turns over the
backend's tasks, follow a scale-out, survive an endpoint that refuses connections, and reach a
server through its `ingressPortOverride`. The API's checks are in test_service_connect_api.py."""

import time

import pytest

from conftest import vpc_agent_berth
from dns_helpers import cloudmap
from ecs_helpers import until
from test_servicediscovery_tasks import logs_of

HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
# Calls both aliases every 0.3 s, each answer (or FAIL) on a line of its own. (Debian's
# busybox wget crashes with -T: `timeout` bounds each call instead.)
CLIENT = ("cat /etc/hosts; while true; do "
          "echo \"backend=$(timeout 5 wget -qO- http://backend/ || echo FAIL)\"; "
          "echo \"api=$(timeout 5 wget -qO- http://api:9000/ || echo FAIL)\"; sleep 0.3; done")


@pytest.fixture(params=["oci", "docker"])
def sc_berth(tmp_path, request):
    # Each driver's own block: the two drivers' tests run at once.
    with vpc_agent_berth(tmp_path / "data", request.param) as b:
        yield b


def awsvpc(b):
    subnets = [s["SubnetId"] for s in b.client("ec2").describe_subnets()["Subnets"]]
    return {"awsvpcConfiguration": {"subnets": subnets}}


def server_definition(ecs, image, family):
    ecs.register_task_definition(family=family, networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": image, "memory": 32, "command": ["sh", "-c", HTTPD],
        "portMappings": [{"name": "web", "containerPort": 80, "appProtocol": "http"}]}])


def answers(b, arn, key):
    return [line.split("=", 1)[1] for line in logs_of(b, arn).splitlines() if line.startswith(f"{key}=")]


def running_tasks(ecs, service):
    arns = ecs.list_tasks(serviceName=service, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]


def test_two_services_talk_through_their_aliases(sc_berth, registry):
    b = sc_berth
    ecs, sd = b.client(), cloudmap(b)
    sd.create_http_namespace(Name="internal.app")
    server_definition(ecs, registry, "backend")
    server_definition(ecs, registry, "api")
    network = awsvpc(b)
    ecs.create_service(serviceName="backend", taskDefinition="backend", desiredCount=2, networkConfiguration=network,
                       serviceConnectConfiguration={"enabled": True, "namespace": "internal.app", "services": [
                           {"portName": "web", "discoveryName": "backend",
                            "clientAliases": [{"port": 80, "dnsName": "backend"}]}]})
    ecs.create_service(serviceName="api", taskDefinition="api", desiredCount=1, networkConfiguration=network,
                       serviceConnectConfiguration={"enabled": True, "namespace": "internal.app", "services": [
                           {"portName": "web", "discoveryName": "api", "ingressPortOverride": 8080,
                            "clientAliases": [{"port": 9000, "dnsName": "api"}]}]})

    # Each task is an instance of its Cloud Map service, at its address and the port clients
    # connect to (the override when there is one).
    def registered(name, count):
        found = sd.discover_instances(NamespaceName="internal.app", ServiceName=name)["Instances"]
        return found if len(found) == count else None
    backends = until(lambda: registered("backend", 2), timeout=120)
    assert {i["Attributes"]["AWS_INSTANCE_PORT"] for i in backends} == {"80"}
    api = until(lambda: registered("api", 1), timeout=120)[0]
    assert api["Attributes"]["AWS_INSTANCE_PORT"] == "8080"
    assert api["Attributes"]["ECS_SERVICE_NAME"] == "api"
    made = {s["Name"]: s for s in sd.list_services()["Services"]}
    assert set(made) == {"backend", "api"}
    tags = sd.list_tags_for_resource(ResourceARN=made["backend"]["Arn"])["Tags"]
    assert {"Key": "AmazonECSManaged", "Value": "true"} in tags

    # The configuration shows on the deployments, never on the service itself.
    described = ecs.describe_services(services=["backend"])["services"][0]
    assert "serviceConnectConfiguration" not in described
    deployment = described["deployments"][0]
    ns_arn = sd.list_namespaces()["Namespaces"][0]["Arn"]
    assert deployment["serviceConnectConfiguration"] == {
        "enabled": True, "namespace": ns_arn, "services": [
            {"portName": "web", "discoveryName": "backend", "clientAliases": [{"port": 80, "dnsName": "backend"}]}]}
    assert deployment["serviceConnectResources"] == [{"discoveryName": "backend", "discoveryArn": made["backend"]["Arn"]}]

    # A client-only service: its task gets both aliases.
    ecs.register_task_definition(family="client", networkMode="awsvpc", containerDefinitions=[
        {"name": "client", "image": registry, "memory": 32, "command": ["sh", "-c", CLIENT]}])
    ecs.create_service(serviceName="client", taskDefinition="client", desiredCount=1, networkConfiguration=network,
                       serviceConnectConfiguration={"enabled": True, "namespace": "internal.app"})
    client = until(lambda: (running_tasks(ecs, "client") or [None])[0], timeout=120)["taskArn"]
    members = ecs.list_services_by_namespace(namespace="internal.app")["serviceArns"]
    assert sorted(a.rsplit("/", 1)[1] for a in members) == ["api", "backend", "client"]

    got = until(lambda: (lambda a: a if len(a) >= 6 else None)(answers(b, client, "backend")), timeout=60)
    hosts = logs_of(b, client)
    assert "127.255.0.1\tapi" in hosts and "127.255.0.2\tbackend" in hosts, hosts
    assert "FAIL" not in got, got
    # Turns: both backend tasks answer (each with its own hostname).
    assert len(set(got[:6])) == 2, got
    api_answers = answers(b, client, "api")
    assert api_answers and "FAIL" not in api_answers, api_answers

    # An instance that refuses connections (the api task's address, a port nothing listens
    # on) is tried, refused, and the connection goes to another endpoint: no call fails.
    sd.register_instance(ServiceId=made["backend"]["Id"], InstanceId="refuses", Attributes={
        "AWS_INSTANCE_IPV4": api["Attributes"]["AWS_INSTANCE_IPV4"], "AWS_INSTANCE_PORT": "81"})
    seen = len(answers(b, client, "backend"))
    time.sleep(3)  # the proxy reads the endpoints every second
    after = until(lambda: (lambda a: a[seen:] if len(a) >= seen + 8 else None)(answers(b, client, "backend")),
                  timeout=60)
    assert "FAIL" not in after, after
    sd.deregister_instance(ServiceId=made["backend"]["Id"], InstanceId="refuses")

    # Scale-out: the third task joins the turns.
    ecs.update_service(service="backend", desiredCount=3)
    until(lambda: registered("backend", 3), timeout=120)
    seen = len(answers(b, client, "backend"))
    third = until(lambda: (lambda a: set(a[seen:]) if len(set(a[seen:])) == 3 else None)(
        answers(b, client, "backend")), timeout=60)
    assert "FAIL" not in third

    for name in ("client", "backend", "api"):
        ecs.update_service(service=name, desiredCount=0)
    # A stopped task leaves its Cloud Map service.
    until(lambda: registered("backend", 0) is not None or None, timeout=120)
