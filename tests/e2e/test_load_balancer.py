"""Berth's load balancer end to end, without containers: a real `berth up`, load balancers made
with boto3, and real HTTP and TCP backends on loopback registered as `instance` targets of a
container instance registered through the ECS API (Berth's instances are reached at 127.0.0.1
unless their agent says otherwise). Traffic goes through the listener ports Berth binds on
127.0.0.1: spread over healthy targets, rules, weights, fixed responses and redirects, health
states with ELB's reason codes, draining with a request in flight, ALB's 502/503, and a network
load balancer over TCP."""

import http.client
import os
import http.server
import socket
import socketserver
import threading
import time

import pytest

from conftest import Berth, free_port
from ecs_helpers import expect_error, register_instance, until

FAST_CHECKS = dict(HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                   UnhealthyThresholdCount=2)


class Backend:
    """An HTTP server on loopback answering `name` on every path; `/health` answers
    `health_status`; `/slow` takes `slow_seconds`; `/headers` echoes the request's headers."""

    def __init__(self, name):
        self.name = name
        self.health_status = 200
        self.slow_seconds = 2.0
        self.hits = 0
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/health":
                    return self.answer(backend.health_status, "ok")
                backend.hits += 1
                if self.path == "/slow":
                    time.sleep(backend.slow_seconds)
                if self.path == "/headers":
                    return self.answer(200, "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items()))
                return self.answer(200, backend.name)

            def answer(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backends():
    made = []

    def make(n, prefix="b"):
        new = [Backend(f"{prefix}{i}") for i in range(n)]
        made.extend(new)
        return new

    yield make
    for b in made:
        b.close()


@pytest.fixture
def lb_env(berth):
    """The clients, the default VPC's subnets, and the ec2InstanceId of a container instance."""
    ecs, elb, ec2 = berth.client(), berth.client("elbv2"), berth.client("ec2")
    instance = register_instance(ecs)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    return elb, subnets, vpc, instance["ec2InstanceId"]


def alb(elb, subnets, name="web"):
    return elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]


def target_group(elb, vpc, name, protocol="HTTP", **extra):
    args = dict(Name=name, Protocol=protocol, Port=80, VpcId=vpc, TargetType="instance", **FAST_CHECKS)
    if protocol == "HTTP":
        args["HealthCheckPath"] = "/health"
    args.update(extra)
    return elb.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]


def health(elb, group):
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]
            for d in elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]}


def states(elb, group):
    return {port: h["State"] for (_, port), h in health(elb, group).items()}


def fetch(port, path="/", host=None, timeout=10):
    """(status, body, headers) of a GET through a listener."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        r = conn.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def serve(elb, lb, group, port, protocol="HTTP"):
    """A listener forwarding to `group`, once it accepts connections: the server binds it a
    moment after CreateListener answers (docs/load-balancing.md)."""
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=port,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]
    until(lambda: accepts(port), timeout=10, what=f"the listener on port {port} to accept connections")
    return listener


def test_requests_spread_over_healthy_targets_with_forwarding_headers(lb_env, backends):
    elb, subnets, vpc, instance = lb_env
    lb = alb(elb, subnets)
    assert lb["DNSName"].endswith(".elb.localhost")
    group = target_group(elb, vpc, "web")
    port = free_port()
    serve(elb, lb, group, port)
    pool = backends(3)
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port} for b in pool])
    assert set(states(elb, group).values()) <= {"initial", "healthy"}
    until(lambda: set(states(elb, group).values()) == {"healthy"}, timeout=30, what="targets healthy")

    answers = [fetch(port)[1] for _ in range(30)]
    assert {a: answers.count(a) for a in set(answers)} == {"b0": 10, "b1": 10, "b2": 10}, "round robin"
    status, echoed, _ = fetch(port, "/headers")
    assert status == 200
    assert "x-forwarded-for: 127.0.0.1" in echoed
    assert "x-forwarded-proto: http" in echoed
    assert f"x-forwarded-port: {port}" in echoed


def test_health_states_follow_the_targets_and_unhealthy_ones_get_no_traffic(lb_env, backends):
    elb, subnets, vpc, instance = lb_env
    lb = alb(elb, subnets)
    group = target_group(elb, vpc, "web")
    port = free_port()
    serve(elb, lb, group, port)
    good, sick, gone = backends(3)
    sick.health_status = 500
    gone.close()
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port} for b in (good, sick, gone)])
    until(lambda: states(elb, group) == {good.port: "healthy", sick.port: "unhealthy", gone.port: "unhealthy"},
          timeout=30, what="health settled")
    h = health(elb, group)
    assert h[(instance, sick.port)]["Reason"] == "Target.ResponseCodeMismatch"
    assert "500" in h[(instance, sick.port)]["Description"]
    assert h[(instance, gone.port)]["Reason"] in ("Target.FailedHealthChecks", "Target.Timeout")
    assert {fetch(port)[1] for _ in range(12)} == {good.name}

    # A target that recovers gets traffic again.
    sick.health_status = 200
    until(lambda: states(elb, group)[sick.port] == "healthy", timeout=30, what="recovered")
    assert {fetch(port)[1] for _ in range(12)} == {good.name, sick.name}

    # When no target is healthy, the load balancer fails open to all of them.
    good.health_status = sick.health_status = 503
    until(lambda: set(states(elb, group).values()) == {"unhealthy"}, timeout=30, what="all unhealthy")
    answers = [fetch(port) for _ in range(12)]
    assert {body for status, body, _ in answers if status == 200} == {good.name, sick.name}


def test_a_group_nobody_uses_is_unused_and_deregistered_targets_are_not_registered(lb_env, backends):
    elb, _, vpc, instance = lb_env
    group = target_group(elb, vpc, "idle")
    (b,) = backends(1)
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port}])
    h = health(elb, group)[(instance, b.port)]
    assert (h["State"], h["Reason"]) == ("unused", "Target.NotInUse")
    elb.deregister_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port}])
    asked = elb.describe_target_health(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port}])
    h = asked["TargetHealthDescriptions"][0]["TargetHealth"]
    assert (h["State"], h.get("Reason")) in (("unused", "Target.NotRegistered"), ("draining", "Target.DeregistrationInProgress"))


def test_a_deregistered_target_finishes_its_request_in_flight_and_gets_no_new_ones(lb_env, backends):
    elb, subnets, vpc, instance = lb_env
    lb = alb(elb, subnets)
    group = target_group(elb, vpc, "drain")
    elb.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
    port = free_port()
    serve(elb, lb, group, port)
    leaving, staying = backends(2)
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": b.port} for b in (leaving, staying)])
    until(lambda: set(states(elb, group).values()) == {"healthy"}, timeout=30, what="targets healthy")

    # Park a slow request on `leaving` (round robin: one of two requests lands there).
    leaving.slow_seconds = staying.slow_seconds = 4.0
    results = []
    threads = [threading.Thread(target=lambda: results.append(fetch(port, "/slow"))) for _ in range(2)]
    for t in threads:
        t.start()
    until(lambda: leaving.hits >= 1, timeout=5, what="a request in flight on the leaving target")
    elb.deregister_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": leaving.port}])
    h = health(elb, group)[(instance, leaving.port)]
    assert (h["State"], h["Reason"]) == ("draining", "Target.DeregistrationInProgress")
    before = leaving.hits
    assert {fetch(port)[1] for _ in range(6)} == {staying.name}, "no new request reaches a draining target"
    assert leaving.hits == before
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == [200, 200], "the request in flight finished"
    # Nothing in flight any more: the deregistration ends well before its 30 s delay.
    until(lambda: (instance, leaving.port) not in health(elb, group), timeout=10, what="deregistration finished")


def test_rules_route_by_path_and_host_weights_split_and_fixed_and_redirect_answer(lb_env, backends):
    elb, subnets, vpc, instance = lb_env
    lb = alb(elb, subnets)
    api_group, web_group, canary_group = (target_group(elb, vpc, n) for n in ("api", "web", "canary"))
    api, web, canary = backends(3)
    for g, b in ((api_group, api), (web_group, web), (canary_group, canary)):
        elb.register_targets(TargetGroupArn=g, Targets=[{"Id": instance, "Port": b.port}])
    port = free_port()
    listener = serve(elb, lb, web_group, port)["ListenerArn"]
    elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": api_group}])
    elb.create_rule(ListenerArn=listener, Priority=20,
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["canary.*"]}}],
                    Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                        {"TargetGroupArn": web_group, "Weight": 1}, {"TargetGroupArn": canary_group, "Weight": 3}]}}])
    elb.create_rule(ListenerArn=listener, Priority=30, Conditions=[{"Field": "path-pattern", "Values": ["/teapot"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "short and stout"}}])
    elb.create_rule(ListenerArn=listener, Priority=40, Conditions=[{"Field": "path-pattern", "Values": ["/old/*"]}],
                    Actions=[{"Type": "redirect", "RedirectConfig": {
                        "Path": "/new/#{path}", "StatusCode": "HTTP_301"}}])
    for g in (api_group, web_group, canary_group):
        until(lambda: set(states(elb, g).values()) == {"healthy"}, timeout=30, what="targets healthy")

    assert fetch(port, "/api/users")[1] == api.name
    assert fetch(port, "/apix")[1] == web.name, "path patterns match the whole path"
    assert fetch(port, "/")[1] == web.name
    status, body, _ = fetch(port, "/teapot")
    assert (status, body) == (418, "short and stout")
    status, _, headers = fetch(port, "/old/page")
    assert status == 301 and headers["location"].endswith("/new/old/page"), headers
    split = [fetch(port, "/", host="canary.example.com")[1] for _ in range(200)]
    share = split.count(canary.name) / len(split)
    assert set(split) == {web.name, canary.name}
    assert 0.6 < share < 0.9, f"a 1:3 weighting sent {share:.0%} to the canary"


def test_alb_errors_503_without_targets_and_502_when_the_target_refuses(lb_env, backends):
    elb, subnets, vpc, instance = lb_env
    lb = alb(elb, subnets)
    group = target_group(elb, vpc, "empty")
    port = free_port()
    serve(elb, lb, group, port)
    assert fetch(port)[0] == 503, "no registered target"
    (b,) = backends(1)
    dead = b.port
    b.close()
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": dead}])
    until(lambda: states(elb, group).get(dead) == "unhealthy", timeout=30, what="the dead target unhealthy")
    # Failing open to its only (unhealthy) target, the load balancer meets a refused connection.
    assert fetch(port)[0] == 502


class Echo(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def tcp_backend(name):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data = self.request.recv(1024)
            self.request.sendall(name.encode() + b":" + data)

    server = Echo(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_network_load_balancer_proxies_tcp_to_healthy_targets(lb_env):
    elb, subnets, vpc, instance = lb_env
    nlb = elb.create_load_balancer(Name="tcp", Subnets=subnets, Type="network")["LoadBalancers"][0]
    assert nlb["Type"] == "network"
    group = target_group(elb, vpc, "tcp", protocol="TCP", HealthCheckProtocol="TCP",
                         HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)
    servers = [tcp_backend(f"t{i}") for i in range(2)]
    try:
        elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": s.server_address[1]}
                                                            for s in servers])
        port = free_port()
        serve(elb, nlb, group, port, protocol="TCP")
        until(lambda: set(states(elb, group).values()) == {"healthy"}, timeout=40, what="TCP targets healthy")
        seen = set()
        for i in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(f"ping{i}".encode())
                answer = c.recv(1024).decode()
            name, _, echoed = answer.partition(":")
            assert echoed == f"ping{i}"
            seen.add(name)
        assert seen == {"t0", "t1"}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_a_services_load_balancers_are_checked_as_ecs_checks_them(berth, lb_env):
    elb, subnets, vpc, _ = lb_env
    ecs = berth.client()
    ecs.register_task_definition(family="web", networkMode="bridge", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
    ecs.register_task_definition(family="vpc", networkMode="awsvpc", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}]}])
    lonely = target_group(elb, vpc, "lonely")
    used = target_group(elb, vpc, "used")
    ip_group = target_group(elb, vpc, "ips", TargetType="ip")
    lb = alb(elb, subnets)
    serve(elb, lb, used, free_port())
    serve(elb, lb, ip_group, free_port())

    network = {"awsvpcConfiguration": {"subnets": subnets[:1]}}

    def refused(message, family="web", **entry):
        lb_entry = {"targetGroupArn": used, "containerName": "web", "containerPort": 80, **entry}
        extra = {"networkConfiguration": network} if family == "vpc" else {}
        try:
            ecs.create_service(serviceName="s", taskDefinition=family, desiredCount=1, loadBalancers=[lb_entry],
                               **extra)
        except ecs.exceptions.InvalidParameterException as e:
            assert message in str(e), str(e)
        else:
            raise AssertionError(f"accepted: {lb_entry}")
        assert ecs.list_services()["serviceArns"] == []

    refused("does not have an associated load balancer", targetGroupArn=lonely)
    refused("The container db does not exist in the task definition.", containerName="db")
    refused("The container web did not have a container port 8080 defined.", containerPort=8080)
    refused("has target type ip, which is incompatible with the bridge network mode", targetGroupArn=ip_group)
    refused("has target type instance, which is incompatible with the awsvpc network mode", family="vpc")

    # Accepted and shown; a change of load balancers starts a new deployment, as on ECS.
    entry = {"targetGroupArn": used, "containerName": "web", "containerPort": 80}
    service = ecs.create_service(serviceName="s", taskDefinition="web", desiredCount=0, loadBalancers=[entry])
    assert service["service"]["loadBalancers"] == [entry]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.update_service(service="s", loadBalancers=[{**entry, "targetGroupArn": lonely}])
    assert ecs.describe_services(services=["s"])["services"][0]["loadBalancers"] == [entry]
    serve(elb, alb(elb, subnets, name="second"), lonely, free_port())
    updated = ecs.update_service(service="s", loadBalancers=[entry, {**entry, "targetGroupArn": lonely}])["service"]
    assert len(updated["loadBalancers"]) == 2
    assert len(updated["deployments"]) == 2, "the change goes out as a new deployment"


def test_blue_green_settings_are_checked_as_ecs_checks_them(berth, lb_env):
    """BLUE_GREEN, LINEAR and CANARY need an alternate group and an ALB rule forwarding to both
    groups; each refusal names what is wrong and creates nothing. StopServiceDeployment's bad
    inputs change nothing either."""
    elb, subnets, vpc, _ = lb_env
    ecs = berth.client()
    ecs.register_task_definition(family="web", networkMode="bridge", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
    blue, green = target_group(elb, vpc, "blue"), target_group(elb, vpc, "green")
    lb = alb(elb, subnets)
    both = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
                               DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                                   {"TargetGroupArn": blue, "Weight": 1}, {"TargetGroupArn": green, "Weight": 0}]}}],
                               )["Listeners"][0]
    blue_only = serve(elb, lb, blue, free_port())
    production = elb.describe_rules(ListenerArn=both["ListenerArn"])["Rules"][0]["RuleArn"]
    blue_rule = elb.describe_rules(ListenerArn=blue_only["ListenerArn"])["Rules"][0]["RuleArn"]
    advanced = {"alternateTargetGroupArn": green, "productionListenerRule": production}
    entry = {"targetGroupArn": blue, "containerName": "web", "containerPort": 80, "advancedConfiguration": advanced}
    bg = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}

    def refused(message, config=bg, lbs=None, **extra):
        request = dict(serviceName="s", taskDefinition="web", desiredCount=1, deploymentConfiguration=config,
                       loadBalancers=[entry] if lbs is None else lbs, **extra)
        with expect_error("InvalidParameterException", message_contains=message):
            ecs.create_service(**request)
        assert ecs.list_services()["serviceArns"] == []

    def with_advanced(**change):
        return [{**entry, "advancedConfiguration": {k: v for k, v in {**advanced, **change}.items() if v}}]

    refused("needs loadBalancers with an advancedConfiguration", lbs=[])
    refused("needs an advancedConfiguration", lbs=[{k: v for k, v in entry.items() if k != "advancedConfiguration"}])
    refused("alternateTargetGroupArn is required", lbs=with_advanced(alternateTargetGroupArn=None))
    refused("must differ from the target group", lbs=with_advanced(alternateTargetGroupArn=blue))
    refused("does not exist", lbs=with_advanced(alternateTargetGroupArn=blue.replace(blue[-16:], "0" * 16)))
    refused("productionListenerRule is required", lbs=with_advanced(productionListenerRule=None))
    refused("is a listener", lbs=with_advanced(productionListenerRule=both["ListenerArn"]))
    refused(f"does not forward to the target group {green}", lbs=with_advanced(productionListenerRule=blue_rule))
    refused("testListenerRule must differ", lbs=with_advanced(testListenerRule=production))
    refused("Invalid value 'PURPLE' for 'deploymentConfiguration.strategy'", config={"strategy": "PURPLE"})
    refused("linearConfiguration is required with the LINEAR", config={"strategy": "LINEAR"})
    refused("linearConfiguration.stepPercent must be between 3 and 100",
            config={"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0, "stepBakeTimeInMinutes": 1}})
    refused("canaryConfiguration.canaryBakeTimeInMinutes must be between 0 and 1440",
            config={"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2000}})
    refused("canaryConfiguration applies to the CANARY deployment strategy only",
            config={**bg, "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}})
    refused("bakeTimeInMinutes must be between 0 and 1440", config={**bg, "bakeTimeInMinutes": 1441})
    refused("lifecycleHooks", config={**bg, "lifecycleHooks": [{"hookTargetArn": "arn:aws:lambda:us-east-1:1:function:f",
                                                               "roleArn": "arn:aws:iam::1:role/r",
                                                               "lifecycleStages": ["PRE_SCALE_UP"]}]})
    with expect_error("InvalidParameterException", message_contains="needs the REPLICA scheduling strategy"):
        ecs.create_service(serviceName="s", taskDefinition="web", schedulingStrategy="DAEMON",
                           deploymentConfiguration={"strategy": "BLUE_GREEN"}, loadBalancers=[entry])

    # Accepted and shown as given.
    made = ecs.create_service(serviceName="s", taskDefinition="web", desiredCount=0, deploymentConfiguration=bg,
                              loadBalancers=[entry])["service"]
    assert made["loadBalancers"] == [entry]
    assert made["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert made["deploymentConfiguration"]["bakeTimeInMinutes"] == 5
    # A rolling update keeps the settings; turning them into LINEAR needs its configuration.
    with expect_error("InvalidParameterException", message_contains="linearConfiguration is required"):
        ecs.update_service(service="s", deploymentConfiguration={"strategy": "LINEAR"})
    assert ecs.describe_services(services=["s"])["services"][0]["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    with expect_error("InvalidParameterException", message_contains="needs an advancedConfiguration"):
        ecs.update_service(service="s", loadBalancers=[{k: v for k, v in entry.items() if k != "advancedConfiguration"}])
    # The scheduler owns the production rule's weights: all on the primary group for the first deployment.
    until(lambda: [(g["TargetGroupArn"], g["Weight"]) for g in elb.describe_rules(RuleArns=[production])["Rules"][0]
                   ["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [(blue, 999), (green, 0)],
          timeout=10, what="the weights set by the scheduler")

    # StopServiceDeployment: bad inputs, and a deployment that is not in progress.
    deployment = until(lambda: (lambda d: d if d["status"] == "SUCCESSFUL" else None)(
        ecs.list_service_deployments(service="s")["serviceDeployments"][0]), timeout=10, what="completed")
    arn = deployment["serviceDeploymentArn"]
    with expect_error("ServiceDeploymentNotFoundException"):
        ecs.stop_service_deployment(serviceDeploymentArn=arn[:-3] + "zzz")
    with expect_error("InvalidParameterException", message_contains="the valid value is ROLLBACK"):
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT")
    with expect_error("ConflictException", message_contains="is not in progress"):
        ecs.stop_service_deployment(serviceDeploymentArn=arn)
    assert ecs.list_service_deployments(service="s")["serviceDeployments"][0]["status"] == "SUCCESSFUL"


PERIOD = 2


@pytest.fixture
def metered_berth(tmp_path):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--metric-period", str(PERIOD))).start()
    yield b
    b.stop()


def test_load_balancer_metrics_and_request_count_per_target_scaling(metered_berth, backends):
    """What the listener served reaches CloudWatch under AWS/ApplicationELB with ELB's
    dimensions, and a target-tracking policy on ALBRequestCountPerTarget scales a service
    behind the group out while requests flow and back in once they stop."""
    b = metered_berth
    ecs, elb, ec2, cw, aas = (b.client(), b.client("elbv2"), b.client("ec2"), b.client("cloudwatch"),
                              b.client("application-autoscaling"))
    instance = register_instance(ecs)["ec2InstanceId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    lb = alb(elb, subnets)
    group = target_group(elb, vpc, "web")
    port = free_port()
    listener = serve(elb, lb, group, port)
    elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=1,
                    Conditions=[{"Field": "path-pattern", "Values": ["/teapot"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "418"}}])
    pool = backends(2)
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": p.port} for p in pool])
    until(lambda: set(states(elb, group).values()) == {"healthy"}, timeout=30, what="targets healthy")
    lb_dim = lb["LoadBalancerArn"].split(":loadbalancer/")[1]
    tg_dim = group.rsplit(":", 1)[1]

    for _ in range(12):
        assert fetch(port)[0] == 200
    assert fetch(port, "/teapot")[0] == 418

    def stat(name, dims, statistic="Sum"):
        # Over the minutes of the window: summed, or for Maximum the largest (the test may
        # span a minute boundary, and a gauge reported every period must not add up).
        now = time.time()
        points = cw.get_metric_statistics(
            Namespace="AWS/ApplicationELB", MetricName=name, Statistics=[statistic], Period=60,
            StartTime=now - 300, EndTime=now + 60,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims])["Datapoints"]
        values = [p[statistic] for p in points]
        return (max(values) if values else 0) if statistic == "Maximum" else sum(values)

    by_lb = [("LoadBalancer", lb_dim)]
    by_group = [("LoadBalancer", lb_dim), ("TargetGroup", tg_dim)]
    until(lambda: stat("RequestCount", by_lb) == 12, timeout=10, what="12 requests counted")
    assert stat("RequestCount", by_group) == 12
    assert stat("HTTPCode_Target_2XX_Count", by_group) == 12
    assert stat("HTTP_Fixed_Response_Count", by_lb) == 1
    assert stat("TargetResponseTime", by_group, "SampleCount") == 12
    assert 0 < stat("TargetResponseTime", by_group, "Maximum") < 5
    assert stat("RequestCountPerTarget", [("TargetGroup", tg_dim)]) == 6, "12 requests over 2 healthy targets"
    until(lambda: stat("HealthyHostCount", by_group, "Maximum") == 2, timeout=10, what="two healthy hosts")
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/ApplicationELB")["Metrics"]}
    assert {"RequestCount", "HealthyHostCount", "UnHealthyHostCount", "NewConnectionCount"} <= names

    # A service behind the group (no agent: only its desired count moves), scaled on requests
    # per target: 15 or more a period each against a target of 5 goes to the maximum.
    ecs.register_task_definition(family="api", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}]}])
    ecs.create_service(serviceName="api", taskDefinition="api", desiredCount=1,
                       loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 80}])
    resource, dim = "service/default/api", "ecs:service:DesiredCount"
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=dim,
                                 MinCapacity=1, MaxCapacity=3)
    with expect_error("ValidationException", message_contains="ResourceLabel"):
        aas.put_scaling_policy(
            ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=dim, PolicyName="rpt",
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 10.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}})
    policy = aas.put_scaling_policy(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=dim, PolicyName="rpt",
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                              "ResourceLabel": f"{lb_dim}/{tg_dim}"}})
    high = policy["Alarms"][0]["AlarmName"]
    alarm = cw.describe_alarms(AlarmNames=[high])["MetricAlarms"][0]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "AWS/ApplicationELB", "RequestCountPerTarget", [{"Name": "TargetGroup", "Value": tg_dim}])

    desired = lambda: ecs.describe_services(services=["api"])["services"][0]["desiredCount"]
    stop = threading.Event()

    def load():
        while not stop.is_set():
            fetch(port)
            time.sleep(0.05)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        until(lambda: desired() == 3, timeout=30, interval=0.5, what="a scale-out on requests per target")
    finally:
        stop.set()
        loader.join()
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
    assert acts[0]["Cause"] == f"monitor alarm {high} in state ALARM triggered policy rpt"
    # Quiet periods still report RequestCountPerTarget (0): 15 of them scale it back in.
    until(lambda: desired() == 1, timeout=15 * PERIOD + 30, interval=1, what="a scale-in once requests stop")


def serving_threads(pid):
    """{thread name: the CPUs it may run on} of the load balancer's serving threads."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                name = f.read().strip()
            if name.startswith("berth-lb-"):
                found[name] = os.sched_getaffinity(int(task))
        except OSError:
            continue
    return found


def test_serving_threads_keep_a_core_each_unless_told_otherwise(berth, tmp_path):
    """`berth up` runs one serving thread per core, each kept on a core of its own;
    `--lb-cpu-affinity none` leaves them to the kernel; another value is refused at start."""
    cores = sorted(os.sched_getaffinity(berth.proc.pid))
    expected = {f"berth-lb-{i}": {c} for i, c in enumerate(cores)}
    until(lambda: serving_threads(berth.proc.pid) == expected, timeout=10,
          what=f"one serving thread on each of the cores {cores}: {serving_threads(berth.proc.pid)}")

    loose = Berth(tmp_path / "loose", extra_args=("--runtime", "none", "--lb-cpu-affinity", "none")).start()
    try:
        until(lambda: len(serving_threads(loose.proc.pid)) == len(cores), timeout=10, what="the serving threads")
        assert all(c == set(cores) for c in serving_threads(loose.proc.pid).values())
    finally:
        loose.stop()

    with pytest.raises(RuntimeError) as refused:
        Berth(tmp_path / "bad", extra_args=("--runtime", "none", "--lb-cpu-affinity", "all")).start()
    assert "--lb-cpu-affinity all" in str(refused.value) and "expected cores or none" in str(refused.value)
