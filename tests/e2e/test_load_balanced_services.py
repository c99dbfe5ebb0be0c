"""ECS services behind Berth's load balancer, with real containers: FARGATE tasks as `ip` targets
(oci driver) and bridge-mode tasks as `instance` targets on their dynamic host ports (docker
driver). Tasks are registered when RUNNING and spread over; under steady load a rolling
deployment, a scale-in and a task stopped by the user fail no request, since tasks leave their
target groups and drain before they are stopped; a task its target group finds unhealthy is
replaced with ECS's stop reason. Traffic goes to the listener on 127.0.0.1 and from there only
to task namespaces Berth made (or, bridge, to the host ports Docker published)."""

import http.client
import threading
import time
import uuid

import pytest

from conftest import free_port, vpc_agent_berth
from ecs_helpers import until, wait_task

# Each task answers its version and its own id, and /health while the file is there.
def httpd(version, health_for=None):
    sick = f"(sleep {health_for}; rm /www/health) & " if health_for else ""
    return ("mkdir -p /www && echo ok > /www/health && "
            f"echo {version}-$(cat /proc/sys/kernel/random/uuid) > /www/index.html && {sick}"
            "exec httpd -f -p 80 -h /www")


FAST_CHECKS = dict(HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                   HealthyThresholdCount=2, UnhealthyThresholdCount=2)


def fetch(port, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        conn.close()


class Load:
    """Steady requests through the listener in a thread; counts what failed."""

    def __init__(self, port):
        self.port, self.answers, self.failures = port, [], []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                status, body = fetch(self.port)
                (self.answers if status == 200 else self.failures).append((time.time(), status, body))
            except OSError as e:
                self.failures.append((time.time(), None, repr(e)))
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.failures


def healthy_targets(elb, group):
    return [d for d in elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"]


def front(berth, target_type):
    """An ALB with one HTTP listener on a free port forwarding to a fresh target group."""
    elb, ec2 = berth.client("elbv2"), berth.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0]
    group = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType=target_type,
                                    **FAST_CHECKS)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "10"}])
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    return elb, group, port, subnets, ec2


def web_group(ec2):
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"web-{uuid.uuid4().hex[:8]}", Description="web",
                                      VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return group


def fargate_web(ecs, registry, version, **health):
    return ecs.register_task_definition(
        family="web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": registry, "essential": True,
                               "command": ["sh", "-c", httpd(version, **health)],
                               "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def deployment_done(ecs, service="web"):
    s = ecs.describe_services(services=[service])["services"][0]
    return len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED" \
        and s["runningCount"] == s["desiredCount"]


@pytest.fixture
def oci_berth(tmp_path):
    with vpc_agent_berth(tmp_path / "data", "oci") as b:
        yield b


def test_a_fargate_service_behind_a_load_balancer_deploys_scales_and_stops_without_failing_a_request(
        oci_berth, registry):
    ecs = oci_berth.client()
    elb, group, port, subnets, ec2 = front(oci_berth, "ip")
    network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [web_group(ec2)]}}
    v1 = fargate_web(ecs, registry, "v1")
    service = ecs.create_service(serviceName="web", taskDefinition=v1, desiredCount=3, launchType="FARGATE",
                                 networkConfiguration=network, healthCheckGracePeriodSeconds=30,
                                 loadBalancers=[{"targetGroupArn": group, "containerName": "web",
                                                 "containerPort": 80}])["service"]
    assert service["loadBalancers"] == [{"targetGroupArn": group, "containerName": "web", "containerPort": 80}]
    until(lambda: len(healthy_targets(elb, group)) == 3, timeout=90, what="three healthy targets")
    tasks = ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="web")["taskArns"])["tasks"]
    addresses = {next(d["value"] for d in t["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
                 for t in tasks}
    assert {d["Target"]["Id"] for d in healthy_targets(elb, group)} == addresses, "ip targets at the tasks' ENIs"
    assert {d["Target"]["Port"] for d in healthy_targets(elb, group)} == {80}
    answers = {fetch(port)[1] for _ in range(30)}
    assert len(answers) == 3 and all(a.startswith("v1-") for a in answers), answers
    events = [e["message"] for e in ecs.describe_services(services=["web"])["services"][0]["events"]]
    assert any(f"registered 3 targets in (target-group {group})" in m or "registered 1 targets" in m for m in events)

    # A rolling deployment under steady load.
    load = Load(port)
    v2 = fargate_web(ecs, registry, "v2")
    ecs.update_service(service="web", taskDefinition=v2)
    until(lambda: deployment_done(ecs), timeout=180, what="the v2 deployment completed")
    until(lambda: len(healthy_targets(elb, group)) == 3
          and len(elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 3,
          timeout=60, what="only the three v2 targets left")
    answers = {fetch(port)[1] for _ in range(30)}
    assert len(answers) == 3 and all(a.startswith("v2-") for a in answers), answers

    # A task stopped by the user drains first, and the service replaces it.
    victim = ecs.list_tasks(serviceName="web")["taskArns"][0]
    ecs.stop_task(task=victim, reason="by hand")
    described = ecs.describe_tasks(tasks=[victim])["tasks"][0]
    assert described["desiredStatus"] == "STOPPED"
    assert described["lastStatus"] in ("DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")
    wait_task(ecs, victim, "STOPPED", timeout=60)
    until(lambda: len(healthy_targets(elb, group)) == 3, timeout=90, what="the replacement healthy")

    # Scale in.
    ecs.update_service(service="web", desiredCount=2)
    until(lambda: len(elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 2,
          timeout=60, what="scaled in to two targets")
    time.sleep(1)
    failures = load.stop()
    assert failures == [], f"{len(failures)} of {len(failures) + len(load.answers)} requests failed: {failures[:5]}"
    assert len(load.answers) > 100
    assert load.answers[-1][2].startswith("v2-")
    events = [e["message"] for e in ecs.describe_services(services=["web"])["services"][0]["events"]]
    assert any("has begun draining connections on" in m for m in events), events


def test_a_task_its_target_group_finds_unhealthy_is_replaced(oci_berth, registry):
    ecs = oci_berth.client()
    elb, group, port, subnets, ec2 = front(oci_berth, "ip")
    network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [web_group(ec2)]}}
    # Healthy for 20 s, then its /health is gone.
    sick = fargate_web(ecs, registry, "v1", health_for=20)
    ecs.create_service(serviceName="web", taskDefinition=sick, desiredCount=1, launchType="FARGATE",
                       networkConfiguration=network,
                       loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 80}])
    until(lambda: len(healthy_targets(elb, group)) == 1, timeout=60, what="healthy at first")
    first = ecs.list_tasks(serviceName="web")["taskArns"][0]
    until(lambda: ecs.describe_tasks(tasks=[first])["tasks"][0]["desiredStatus"] == "STOPPED", timeout=90,
          what="the unhealthy task replaced")
    stopped = wait_task(ecs, first, "STOPPED", timeout=60)
    assert stopped["stoppedReason"] == f"Task failed ELB health checks in (target-group {group})"
    assert stopped["stopCode"] == "ServiceSchedulerInitiated"
    events = [e["message"] for e in ecs.describe_services(services=["web"])["services"][0]["events"]]
    assert any(f"is unhealthy in (target-group {group})" in m for m in events), events
    until(lambda: any(t != first for t in ecs.list_tasks(serviceName="web")["taskArns"]), timeout=30,
          what="a replacement task")


@pytest.fixture
def docker_berth(tmp_path):
    with vpc_agent_berth(tmp_path / "data", "docker") as b:
        yield b


def test_bridge_tasks_are_instance_targets_on_their_dynamic_host_ports(docker_berth, registry):
    ecs = docker_berth.client()
    elb, group, port, _, _ = front(docker_berth, "instance")
    ecs.register_task_definition(family="web", networkMode="bridge", containerDefinitions=[
        {"name": "web", "image": registry, "memory": 32, "command": ["sh", "-c", httpd("v1")],
         "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]}])
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=2,
                       loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 80}])
    until(lambda: len(healthy_targets(elb, group)) == 2, timeout=90, what="two healthy targets")
    instance = ecs.describe_container_instances(
        containerInstances=ecs.list_container_instances()["containerInstanceArns"])["containerInstances"][0]
    targets = healthy_targets(elb, group)
    assert {t["Target"]["Id"] for t in targets} == {instance["ec2InstanceId"]}
    tasks = ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="web")["taskArns"])["tasks"]
    # Docker may publish IPv6 on a port of its own; targets use the IPv4 binding.
    host_ports = {b["hostPort"] for t in tasks for c in t["containers"] for b in c["networkBindings"]
                  if b.get("bindIP", "0.0.0.0") == "0.0.0.0"}
    assert {t["Target"]["Port"] for t in targets} == host_ports, [
        (t["lastStatus"], t["desiredStatus"], t.get("stoppedReason"), t.get("healthStatus")) for t in tasks]
    answers = {fetch(port)[1] for _ in range(20)}
    assert len(answers) == 2 and all(a.startswith("v1-") for a in answers), answers


def shares(port, n=100):
    """The versions that answered `n` requests through a listener, counted."""
    seen = {}
    for _ in range(n):
        version = fetch(port)[1].split("-")[0]
        seen[version] = seen.get(version, 0) + 1
    return seen


def current_deployment(ecs, service="web"):
    arn = ecs.describe_services(services=[service])["services"][0]["currentServiceDeployment"]
    return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]


def test_a_canary_rolled_back_then_a_blue_green_deployment_under_steady_load(oci_berth, registry):
    """A CANARY deployment sends its slice of production traffic to green while the test listener
    already sees all of green; StopServiceDeployment during the canary's bake gives production
    back to the blue tasks, which never stopped. Then a BLUE_GREEN deployment moves everything
    at once and blue drains away. No request through the production listener fails."""
    ecs, elb, ec2 = oci_berth.client(), oci_berth.client("elbv2"), oci_berth.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0]
    groups = []
    for name in ("blue", "green"):
        g = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                    **FAST_CHECKS)["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=g, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "10"}])
        groups.append(g)
    blue, green = groups
    prod_port, test_port = free_port(), free_port()
    listeners = [elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                     DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                                         {"TargetGroupArn": blue, "Weight": 1},
                                         {"TargetGroupArn": green, "Weight": 0}]}}])["Listeners"][0]
                 for port in (prod_port, test_port)]
    production, test = (elb.describe_rules(ListenerArn=l["ListenerArn"])["Rules"][0]["RuleArn"] for l in listeners)
    network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [web_group(ec2)]}}
    canary = {"strategy": "CANARY", "bakeTimeInMinutes": 0,
              "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 10}}
    ecs.create_service(serviceName="web", taskDefinition=fargate_web(ecs, registry, "v1"), desiredCount=2,
                       launchType="FARGATE", networkConfiguration=network, deploymentConfiguration=canary,
                       loadBalancers=[{"targetGroupArn": blue, "containerName": "web", "containerPort": 80,
                                       "advancedConfiguration": {"alternateTargetGroupArn": green,
                                                                 "productionListenerRule": production,
                                                                 "testListenerRule": test}}])
    until(lambda: len(healthy_targets(elb, blue)) == 2 and deployment_done(ecs), timeout=90, what="v1 up")
    load = Load(prod_port)

    # CANARY: green comes up on the alternate group; test traffic sees all of it, production 20%.
    ecs.update_service(service="web", taskDefinition=fargate_web(ecs, registry, "v2"))
    until(lambda: shares(test_port, 10) == {"v2": 10}, timeout=120, what="the test listener on green")
    stage = until(lambda: (lambda d: d if d.get("lifecycleStage") == "PRODUCTION_TRAFFIC_SHIFT" else None)(
        current_deployment(ecs)), timeout=30, what="the production shift")
    assert stage["targetServiceRevision"]["requestedProductionTrafficWeight"] == 20.0
    assert stage["targetServiceRevision"]["requestedTestTrafficWeight"] == 100.0
    split = shares(prod_port, 200)
    assert set(split) == {"v1", "v2"} and 20 <= split["v2"] <= 70, f"about 20% to the canary: {split}"
    v1_tasks = {t["taskArn"] for t in ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="web")["taskArns"])["tasks"]
                if t["taskDefinitionArn"].endswith(":1")}
    assert len(v1_tasks) == 2

    # Rolled back during the canary's bake: production is v1's again, and v2 goes.
    ecs.stop_service_deployment(serviceDeploymentArn=stage["serviceDeploymentArn"], stopType="ROLLBACK")
    until(lambda: shares(prod_port, 20) == {"v1": 20}, timeout=20, what="production back on v1")
    until(lambda: deployment_done(ecs) and
          elb.describe_target_health(TargetGroupArn=green)["TargetHealthDescriptions"] == [],
          timeout=90, what="v2 gone")
    stopped = ecs.describe_service_deployments(serviceDeploymentArns=[stage["serviceDeploymentArn"]])
    assert stopped["serviceDeployments"][0]["status"] == "ROLLBACK_SUCCESSFUL"
    assert set(ecs.list_tasks(serviceName="web")["taskArns"]) == v1_tasks, "v1's own tasks serve on"

    # BLUE_GREEN: v3 comes up on the alternate group and takes all traffic at once; blue drains.
    ecs.update_service(service="web", taskDefinition=fargate_web(ecs, registry, "v3"),
                       deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0})
    until(lambda: deployment_done(ecs) and
          elb.describe_target_health(TargetGroupArn=blue)["TargetHealthDescriptions"] == [],
          timeout=150, what="the blue/green deployment completed")
    assert shares(prod_port, 20) == {"v3": 20}
    assert shares(test_port, 20) == {"v3": 20}
    assert len(healthy_targets(elb, green)) == 2
    failures = load.stop()
    assert failures == [], f"{len(failures)} of {len(failures) + len(load.answers)} requests failed: {failures[:5]}"
    assert len(load.answers) > 200
    done = ecs.list_service_deployments(service="web")["serviceDeployments"][0]
    assert done["status"] == "SUCCESSFUL" and done["targetServiceRevisionArn"].endswith(":3")
