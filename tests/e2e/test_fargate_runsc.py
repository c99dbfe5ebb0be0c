"""`--fargate-runtime runsc`: FARGATE tasks run under gVisor (a user-space kernel per task, ptrace
platform), EC2 tasks of the same `berth up` keep runc. A FARGATE task answers on port 80 at its
own address, its kernel is gVisor's (its /proc/version is not the host's, unlike a runc task's),
and it sees only its own processes. A runtime the driver cannot run is refused at start.

The task serves what it saw (/proc/version, its process list) over HTTP, so nothing is read
from the host's side. Traffic goes only to the addresses of the task namespaces Berth made;
the VPC block is the test's own, its bridges and routes removed afterwards."""

import http.client
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, vpc_agent_berth
from ecs_helpers import wait_task
from test_agent import cgroup_dir
from test_awsvpc import details, reachable, until
from test_fargate import web_network

# What the task saw, served with the page.
SERVE = ("mkdir -p /www && echo hello > /www/index.html && cat /proc/version > /www/version"
         " && ps -o pid,comm > /www/ps && exec httpd -f -p 80 -h /www")


@pytest.fixture(params=["oci"])
def runsc_berth(tmp_path, request):
    with vpc_agent_berth(tmp_path / "data", request.param, "--fargate-runtime", "runsc") as b:
        yield b


def definition(family, image, fargate, health_check=None):
    d = {"family": family, "networkMode": "awsvpc", "cpu": "256", "memory": "512",
         "containerDefinitions": [{
             "name": "webserver", "image": image, "cpu": 99, "memory": 100, "essential": True,
             "command": ["sh", "-c", SERVE],
             "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]}]}
    if fargate:
        d["requiresCompatibilities"] = ["FARGATE"]
    if health_check:
        d["containerDefinitions"][0]["healthCheck"] = health_check
    return d


def fargate_and_ec2_webservers(b, registry, health_check=None):
    """One FARGATE and one EC2 webserver task (SERVE) on `b`, both answering at their own
    addresses in the VPC; their addresses and ARNs by "fargate" and "ec2". `health_check`
    goes to the FARGATE task's container."""
    ecs, ec2 = b.client(), b.client("ec2")
    ecs.register_task_definition(**definition("webserver", registry, fargate=True, health_check=health_check))
    ecs.register_task_definition(**definition("webserver-ec2", registry, fargate=False))
    network = web_network(ec2)
    fargate = ecs.run_task(launchType="FARGATE", taskDefinition="webserver", networkConfiguration=network)
    ec2_task = ecs.run_task(launchType="EC2", taskDefinition="webserver-ec2", networkConfiguration=network)
    ips, arns = {}, {}
    for name, ran in (("fargate", fargate), ("ec2", ec2_task)):
        task = wait_task(ecs, ran["tasks"][0]["taskArn"], "RUNNING")
        arns[name] = task["taskArn"]
        ips[name] = ip = details(task)[1]["privateIPv4Address"]
        assert ip.startswith(b.vpc_cidr.split(".0.0/")[0] + "."), ip
        until(f"{name} task at {ip}:80 answers", lambda: reachable(ip))
        assert fetch(ip, "") == "hello\n"
    return ips, arns


def test_fargate_tasks_run_under_gvisor_and_ec2_tasks_under_runc(runsc_berth, registry):
    ecs = runsc_berth.client()
    ips, arns = fargate_and_ec2_webservers(runsc_berth, registry)

    host_kernel = open("/proc/version").read()
    runc_kernel = fetch(ips["ec2"], "version")
    gvisor_kernel = fetch(ips["fargate"], "version")
    # runc shares the host's kernel; gVisor's Sentry answers with its own.
    assert runc_kernel == host_kernel, (runc_kernel, host_kernel)
    assert gvisor_kernel != host_kernel, gvisor_kernel
    assert gvisor_kernel.startswith("Linux version"), gvisor_kernel
    # The sandbox's process list is the task's alone: its shell (pid 1, then exec'd into httpd)
    # and ps itself; none of the host's (berth, its shims, dockerd, ...).
    processes = fetch(ips["fargate"], "ps").split("\n")[1:]
    commands = sorted(line.split()[1] for line in processes if line.strip())
    assert commands == ["ps", "sh"], processes
    # The sandbox (gVisor's kernel included) sits in the task's cgroup, under its memory limit.
    task_cgroup = cgroup_dir("memory", arns["fargate"])
    assert int((task_cgroup / "memory.limit_in_bytes").read_text()) == 512 << 20
    sandbox = [pid for f in task_cgroup.rglob("cgroup.procs") for pid in f.read_text().split()]
    assert sandbox, "no process of the sandbox is in the task's cgroup"

    for arn in ecs.list_tasks()["taskArns"]:
        ecs.stop_task(task=arn)
    for arn in ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]:
        wait_task(ecs, arn, "STOPPED")


def fetch(ip, path, attempts=10):
    """GET http://IP/PATH. Under runsc's host networking, connections to a server that forks per
    connection (busybox httpd) are at times closed before the answer (about one in five here,
    also with plain `runsc run`, see docs/fargate.md), so a few attempts are allowed."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"http://{ip}:80/{path}", timeout=5) as r:
                assert r.status == 200
                return r.read().decode()
        except (ConnectionError, http.client.HTTPException):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("args, message", [
    (("--runtime", "oci", "--fargate-runtime", "kata"), 'unknown OCI runtime "kata"'),
    (("--runtime", "oci", "--fargate-runtime", "/nonexistent/runsc"), "cannot be run"),
    (("--runtime", "docker", "--fargate-runtime", "runsc"), "needs --runtime oci"),
])
def test_a_fargate_runtime_the_driver_cannot_run_is_refused_at_start(tmp_path, args, message):
    out = subprocess.run([BIN, "up", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out
    assert "--fargate-runtime" in out.stderr, out
    assert message in out.stderr + out.stdout, out
