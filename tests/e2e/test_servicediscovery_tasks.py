"""Tasks find registered instances by name through Berth's DNS server: a busybox `nslookup` in
an awsvpc task on the oci driver and in a bridge task on the docker driver. ECS services with
`serviceRegistries` register their RUNNING tasks (A records at the task's address for awsvpc,
SRV records at the published host port for bridge), follow scale-in and StopTask, and report
their container health checks through the custom health status. Each `berth up` gets
a DNS address of its own on the host's loopback (link-local, removed afterwards) and forwards to
a fake resolver on loopback, so the host's names "resolve from inside" without a query leaving
the machine."""

import contextlib
import re
import subprocess

import pytest

from conftest import BIN, host_lease, start_agent_berth, stop_agent_berth, vpc_agent_berth
from dns_helpers import FakeUpstream, addresses, ask, cloudmap
from ecs_helpers import until, wait_task

# awsvpc on oci (the Fargate way), bridge on docker.
MODES = {"oci": "awsvpc", "docker": "bridge"}
LOOKUPS = ("for n in backend.internal.app outside.test nothere.internal.app; do "
           "echo \"== $n\"; busybox nslookup $n; echo \"rc=$?\"; done; echo '== resolv.conf'; cat /etc/resolv.conf")


@contextlib.contextmanager
def dns_address():
    """A link-local address for this test's DNS server, which no other test running at once has;
    taken off `lo` afterwards."""
    with host_lease("dns-address", [f"169.254.{a}.{b}" for a in range(200, 251) for b in range(2, 251)]) as ip:
        try:
            yield ip
        finally:
            subprocess.run(["ip", "addr", "del", f"{ip}/32", "dev", "lo"], capture_output=True)


@pytest.fixture(params=list(MODES))
def dns_berth(tmp_path, request):
    driver = request.param
    upstream = FakeUpstream({"outside.test": "192.0.2.10"}).start()
    with dns_address() as ip:
        args = ("--dns-address", f"{ip}:53", "--dns-forwarders", f"127.0.0.1:{upstream.port}")
        if MODES[driver] == "awsvpc":
            with vpc_agent_berth(tmp_path / "data", driver, *args) as b:
                yield b, ip
        else:
            b = start_agent_berth(tmp_path / "data", driver, *args)
            try:
                yield b, ip
            finally:
                stop_agent_berth(b, tmp_path / "data")
    upstream.stop()


def logs_of(b, task_arn):
    env = b.env()
    env["BERTH_DATA_DIR"] = str(b.data_dir)
    out = subprocess.run([BIN, "logs", task_arn.rsplit("/", 1)[1]], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    return out.stdout


def section(output, name):
    return output.split(f"== {name}\n", 1)[1].split("\n== ", 1)[0]


def test_a_task_resolves_registered_instances_by_name(dns_berth, registry):
    b, ip = dns_berth
    assert b.dns == (ip, 53), b.output
    sd, ecs = cloudmap(b), b.client()
    vpc = b.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    op = sd.create_private_dns_namespace(Name="internal.app", Vpc=vpc)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="backend", NamespaceId=ns,
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]["Id"]
    for i in (1, 2):
        sd.register_instance(ServiceId=svc, InstanceId=f"t{i}", Attributes={"AWS_INSTANCE_IPV4": f"10.99.0.{i}"})

    mode = MODES[b.driver]
    ecs.register_task_definition(family="lookup", networkMode=mode, containerDefinitions=[
        {"name": "lookup", "image": registry, "memory": 32, "command": ["sh", "-c", LOOKUPS]}])
    run = {"taskDefinition": "lookup"}
    if mode == "awsvpc":
        subnets = [s["SubnetId"] for s in b.client("ec2").describe_subnets()["Subnets"]]
        run["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": subnets}}
    arn = ecs.run_task(**run)["tasks"][0]["taskArn"]
    wait_task(ecs, arn, "STOPPED", timeout=90)
    output = logs_of(b, arn)

    assert re.search(rf"^nameserver {re.escape(ip)}$", section(output, "resolv.conf"), re.M), output
    backend = section(output, "backend.internal.app")
    assert "10.99.0.1" in backend and "10.99.0.2" in backend and "rc=0" in backend, output
    outside = section(output, "outside.test")
    assert "192.0.2.10" in outside and "rc=0" in outside, output
    missing = section(output, "nothere.internal.app")
    assert "NXDOMAIN" in missing and "rc=1" in missing, output


HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"


def eni_ip(task):
    details = {d["name"]: d["value"] for a in task.get("attachments", []) for d in a.get("details", [])}
    return details.get("privateIPv4Address")


def host_port(task):
    bindings = task["containers"][0].get("networkBindings", [])
    return next(b["hostPort"] for b in bindings if ":" not in b.get("bindIP", ""))


def test_a_service_registers_its_running_tasks_and_lets_them_go_before_they_stop(dns_berth, registry):
    b, _ = dns_berth
    sd, ecs, ec2 = cloudmap(b), b.client(), b.client("ec2")
    mode = MODES[b.driver]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    op = sd.create_private_dns_namespace(Name="internal.app", Vpc=vpc)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    records = [{"Type": "A", "TTL": 10}] if mode == "awsvpc" else [{"Type": "SRV", "TTL": 10}]
    svc = sd.create_service(Name="backend", NamespaceId=ns, DnsConfig={"DnsRecords": records},
                            HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    web = {"name": "web", "image": registry, "memory": 32, "command": ["sh", "-c", HTTPD],
           "portMappings": [{"containerPort": 80, "hostPort": 0 if mode == "bridge" else 80}],
           "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1/ >/dev/null"],
                           "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0}}
    ecs.register_task_definition(family="backend", networkMode=mode, containerDefinitions=[web])
    registry_entry = {"registryArn": svc["Arn"]}
    args = {"serviceName": "backend", "taskDefinition": "backend", "desiredCount": 2}
    if mode == "awsvpc":
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        args["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": subnets}}
    else:
        registry_entry.update(containerName="web", containerPort=80)

    # Bad input changes nothing: an unknown registry, a container without the port, two registries.
    for bad, why in [({"registryArn": svc["Arn"].replace(svc["Id"], "srv-aaaaaaaaaaaaaaaa")}, "does not exist"),
                     ({**registry_entry, "containerName": "web", "containerPort": 81}, "container port 81"),
                     ({"registryArn": svc["Arn"], "containerName": "web"}, "together")]:
        with pytest.raises(ecs.exceptions.InvalidParameterException, match=why):
            ecs.create_service(**args, serviceRegistries=[bad])
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="at most 1"):
        ecs.create_service(**args, serviceRegistries=[registry_entry, registry_entry])
    assert ecs.list_services()["serviceArns"] == []

    service = ecs.create_service(**args, serviceRegistries=[registry_entry])["service"]
    assert service["serviceRegistries"] == [registry_entry]
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="registryArn is required"):
        ecs.update_service(service="backend", serviceRegistries=[{"port": 80}])
    assert ecs.describe_services(services=["backend"])["services"][0]["serviceRegistries"] == [registry_entry]

    def instances():
        return {i["Id"]: i["Attributes"] for i in sd.list_instances(ServiceId=svc["Id"])["Instances"]}

    def running():
        arns = ecs.list_tasks(serviceName="backend", desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
        return {t["taskArn"].rsplit("/", 1)[1]: t for t in tasks if t["lastStatus"] == "RUNNING"}

    tasks = until(lambda: (lambda r: r if len(r) == 2 and set(instances()) == set(r) else None)(running()),
                  timeout=90, what="both tasks RUNNING and registered under their ids")
    for task_id, attrs in instances().items():
        task = tasks[task_id]
        assert attrs["ECS_CLUSTER_NAME"] == "default" and attrs["ECS_SERVICE_NAME"] == "backend", attrs
        assert attrs["ECS_TASK_DEFINITION_FAMILY"] == "backend" and attrs["REGION"] == "us-east-1", attrs
        assert attrs.get("AVAILABILITY_ZONE") == task.get("availabilityZone"), attrs
        if mode == "awsvpc":
            assert attrs["AWS_INSTANCE_IPV4"] == eni_ip(task) and "AWS_INSTANCE_PORT" not in attrs, attrs
        else:
            assert attrs["AWS_INSTANCE_IPV4"] == "127.0.0.1", attrs
            assert attrs["AWS_INSTANCE_PORT"] == str(host_port(task)), attrs

    # The names answer: A records at the tasks' addresses, or SRV records at their host ports.
    if mode == "awsvpc":
        want = sorted(eni_ip(t) for t in tasks.values())
        until(lambda: addresses(ask(b.dns, "backend.internal.app")) == want, what="A records of both tasks")
    else:
        ports = sorted(str(host_port(t)) for t in tasks.values())
        srv = lambda: sorted(r.split()[2] for r in addresses(ask(b.dns, "backend.internal.app", "SRV"), "SRV"))
        until(lambda: srv() == ports, what="SRV records of both tasks")

    # Container health checks reach Cloud Map through the custom health status.
    until(lambda: set(sd.get_instances_health_status(ServiceId=svc["Id"])["Status"].values()) == {"HEALTHY"},
          timeout=60, what="both instances HEALTHY")

    # A task asked to stop has left Cloud Map when StopTask answers, before it stops.
    gone = sorted(tasks)[0]
    ecs.stop_task(task=gone)
    assert gone not in instances()
    # Scaled in to 0: nothing is left registered.
    ecs.update_service(service="backend", desiredCount=0)
    until(lambda: not instances() and not running(), timeout=90, what="every task gone from Cloud Map")
    kind = "A" if mode == "awsvpc" else "SRV"
    until(lambda: addresses(ask(b.dns, "backend.internal.app", kind), kind) == [], timeout=10,
          what="the name to answer no record (the DNS server follows the store a moment later)")


def test_names_follow_an_unhealthy_task_and_a_scale_out(dns_berth, registry):
    """Two ECS services register in one Cloud Map service. The `sick` one's container health
    check starts failing after a while; within its grace period ECS keeps it running, but
    Cloud Map's custom health turns UNHEALTHY and the name no longer answers it. Scaling the
    `good` one out adds its new task to the answers."""
    b, _ = dns_berth
    sd, ecs, ec2 = cloudmap(b), b.client(), b.client("ec2")
    mode = MODES[b.driver]
    kind = "A" if mode == "awsvpc" else "SRV"
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    op = sd.create_private_dns_namespace(Name="internal.app", Vpc=vpc)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="backend", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": kind, "TTL": 10}]},
                            HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    entry = {"registryArn": svc["Arn"]}
    args = {"taskDefinition": "backend", "desiredCount": 1}
    if mode == "awsvpc":
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        args["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": subnets}}
    else:
        entry.update(containerName="web", containerPort=80)
    for family, sick_after in (("backend", None), ("sick", 20)):
        sicken = f"(sleep {sick_after}; rm /www/ok) & " if sick_after else ""
        ecs.register_task_definition(family=family, networkMode=mode, containerDefinitions=[{
            "name": "web", "image": registry, "memory": 32,
            "command": ["sh", "-c", f"mkdir -p /www && touch /www/ok && {sicken}exec httpd -f -p 80 -h /www"],
            "portMappings": [{"containerPort": 80, "hostPort": 0 if mode == "bridge" else 80}],
            "healthCheck": {"command": ["CMD-SHELL", "test -f /www/ok"], "interval": 5, "timeout": 2,
                            "retries": 2, "startPeriod": 0}}])
    ecs.create_service(serviceName="good", serviceRegistries=[entry], **args)
    ecs.create_service(serviceName="sick", serviceRegistries=[entry], healthCheckGracePeriodSeconds=600,
                       **{**args, "taskDefinition": "sick"})

    def tasks(service):
        arns = ecs.list_tasks(serviceName=service, desiredStatus="RUNNING")["taskArns"]
        return [t for t in (ecs.describe_tasks(tasks=arns)["tasks"] if arns else []) if t["lastStatus"] == "RUNNING"]

    def record(task):
        return eni_ip(task) if mode == "awsvpc" else str(host_port(task))

    def answers():
        got = addresses(ask(b.dns, "backend.internal.app", kind), kind)
        return sorted(got if kind == "A" else [r.split()[2] for r in got])

    def health():
        return sd.get_instances_health_status(ServiceId=svc["Id"])["Status"]

    def healthy(service):
        running = tasks(service)
        return len(running) == 1 and running[0].get("healthStatus") == "HEALTHY" and running[0]

    until(lambda: healthy("good") and healthy("sick") and len(answers()) == 2
          and sorted(health().values()) == ["HEALTHY", "HEALTHY"], timeout=90,
          what="both services' tasks healthy, in ECS and in Cloud Map, and answering")
    sick_task = tasks("sick")[0]
    sick_id = sick_task["taskArn"].rsplit("/", 1)[1]
    until(lambda: health().get(sick_id) == "UNHEALTHY", timeout=60, what="the sick task UNHEALTHY in Cloud Map")
    good = record(tasks("good")[0])
    seen = []
    try:
        until(lambda: seen.append((answers(), health())) or seen[-1][0] == [good], timeout=10)
    except AssertionError:
        raise AssertionError(f"the name did not come to answer only {good}; last answers and health: {seen[-1]}, "
                             f"tasks: {[(t['taskArn'], t.get('healthStatus')) for s in ('good', 'sick') for t in tasks(s)]}")
    assert [t["taskArn"] for t in tasks("sick")] == [sick_task["taskArn"]], "kept running in its grace period"
    sick_now = ecs.describe_tasks(tasks=[sick_task["taskArn"]])["tasks"][0]
    assert sick_now["healthStatus"] == "UNHEALTHY", sick_now

    ecs.update_service(service="good", desiredCount=2)
    until(lambda: len(tasks("good")) == 2 and answers() == sorted(record(t) for t in tasks("good")), timeout=90,
          what="the name answering both good tasks")
    for service in ("good", "sick"):
        ecs.update_service(service=service, desiredCount=0)
    until(lambda: answers() == [], timeout=90, what="no answer once both are scaled in")
