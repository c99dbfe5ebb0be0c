"""Tasks find registered instances by name through Berth's DNS server: a busybox `nslookup` in
an awsvpc task on the oci driver and in a bridge task on the docker driver. Each `berth up` gets
a DNS address of its own on the host's loopback (link-local, removed afterwards) and forwards to
a fake resolver on loopback, so the host's names "resolve from inside" without a query leaving
the machine."""

import contextlib
import random
import re
import subprocess

import pytest

from conftest import BIN, start_agent_berth, stop_agent_berth, vpc_agent_berth
from dns_helpers import FakeUpstream, cloudmap
from ecs_helpers import wait_task

VPC_CIDR = "10.241.0.0/16"
# awsvpc on oci (the Fargate way), bridge on docker.
MODES = {"oci": "awsvpc", "docker": "bridge"}
LOOKUPS = ("for n in backend.internal.app outside.test nothere.internal.app; do "
           "echo \"== $n\"; busybox nslookup $n; echo \"rc=$?\"; done; echo '== resolv.conf'; cat /etc/resolv.conf")


@contextlib.contextmanager
def dns_address():
    """A link-local address for this test's DNS server; taken off `lo` afterwards."""
    ip = f"169.254.{random.randint(200, 250)}.{random.randint(2, 250)}"
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
            with vpc_agent_berth(tmp_path / "data", driver, VPC_CIDR, *args) as b:
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
