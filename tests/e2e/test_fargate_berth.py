"""`--fargate-runtime berth`: FARGATE tasks run under Berth's own runtime (each container's shim
makes it: namespaces, cgroup, root, user, then the exec fifo, with no runc process), EC2 tasks of
the same `berth up` keep runc. The FARGATE task answers on port 80 at its own address, sees only
its own processes, sits under its task's memory limit, passes a health check run inside it,
leaves no trace in runc's state, and nothing of it runs once it stopped. The driver's own runtime cannot be `berth` (the tasks'
namespace holders need a runtime program), and `berth up` says so at start.

The task serves what it saw over HTTP, so nothing is read from the host's side of the task but
its cgroup and Berth's own files. Traffic goes only to the addresses of the task namespaces Berth
made; the VPC block is the test's own, its bridges and routes removed afterwards."""

import json
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, vpc_agent_berth
from ecs_helpers import wait_task
from test_agent import cgroup_dir
from test_awsvpc import reachable, until
from test_fargate_runsc import fargate_and_ec2_webservers, fetch


@pytest.fixture
def berth_runtime_berth(tmp_path):
    with vpc_agent_berth(tmp_path / "data", "oci", "--fargate-runtime", "berth") as b:
        b.data_dir = tmp_path / "data"
        yield b


def containers(data_dir):
    """Each container's directory and what its meta.json says, by container name."""
    out = {}
    for d in (data_dir / "agent" / "oci" / "containers").glob("*"):
        meta = d / "meta.json"
        if meta.exists():
            out[d.name] = (d, json.loads(meta.read_text()))
    return out


def test_fargate_tasks_run_under_berths_own_runtime_and_ec2_tasks_under_runc(berth_runtime_berth, registry):
    b = berth_runtime_berth
    ecs = b.client()
    # The health check runs inside the container: the shim enters it as the berth runtime's exec.
    check = {"command": ["CMD-SHELL", "test \"$(cat /www/index.html)\" = hello && test $$ -gt 1"],
             "interval": 5, "timeout": 2, "retries": 2}
    ips, arns = fargate_and_ec2_webservers(b, registry, health_check=check)

    found = containers(b.data_dir)
    ours = [name for name, (_, meta) in found.items() if meta.get("runtime") == "berth"]
    theirs = [name for name, (_, meta) in found.items() if meta.get("runtime") != "berth"]
    assert len(ours) == 1 and len(theirs) == 1, found
    # runc keeps a state directory per container it made; the berth runtime's container has
    # none, and its exec fifo is gone (it was started through it).
    assert Path("/run/runc", theirs[0]).is_dir()
    assert not Path("/run/runc", ours[0]).exists()
    ours_dir = found[ours[0]][0]
    assert not (ours_dir / "exec.fifo").exists()
    pid = int((ours_dir / "container.pid").read_text())

    # Both share the host's kernel; the FARGATE task's process list is its own alone: its
    # shell (pid 1, exec'd into httpd) and ps.
    assert fetch(ips["fargate"], "version") == open("/proc/version").read()
    processes = fetch(ips["fargate"], "ps").split("\n")[1:]
    assert sorted(line.split()[1] for line in processes if line.strip()) == ["ps", "sh"], processes
    # Its process sits in its container's cgroup beneath the task's, under the task's limit.
    task_cgroup = cgroup_dir("memory", arns["fargate"])
    assert int((task_cgroup / "memory.limit_in_bytes").read_text()) == 512 << 20
    container_cgroup = task_cgroup / ours[0]
    assert str(pid) in (container_cgroup / "cgroup.procs").read_text().split()
    assert int((container_cgroup / "memory.limit_in_bytes").read_text()) == 100 << 20

    until("the FARGATE task's health check passes inside it", lambda: ecs.describe_tasks(
        tasks=[arns["fargate"]])["tasks"][0]["containers"][0].get("healthStatus") == "HEALTHY")

    ecs.stop_task(task=arns["fargate"])
    stopped = wait_task(ecs, arns["fargate"], "STOPPED")
    assert stopped["containers"][0].get("exitCode") is not None, stopped["containers"]
    until("the stopped container's processes are gone",
          lambda: not (container_cgroup / "cgroup.procs").read_text().split())
    assert reachable(ips["ec2"]), "the EC2 task under runc runs on"
    ecs.stop_task(task=arns["ec2"])
    wait_task(ecs, arns["ec2"], "STOPPED")


def test_fargate_tasks_take_berths_runtime_by_default_on_oci(tmp_path, registry):
    """`--fargate-runtime auto` (the default) is Berth's own runtime with the oci driver on a
    host with the cgroup v1 devices controller, as this one has."""
    with vpc_agent_berth(tmp_path / "data", "oci") as b:
        ecs = b.client()
        _, arns = fargate_and_ec2_webservers(b, registry)
        runtimes = sorted(str(meta.get("runtime")) for _, meta in containers(tmp_path / "data").values())
        assert runtimes == ["None", "berth"], runtimes
        for arn in arns.values():
            ecs.stop_task(task=arn)
            wait_task(ecs, arn, "STOPPED")


@pytest.mark.parametrize("runtime, message", [
    ("berth", "the berth runtime runs FARGATE tasks (--fargate-runtime berth)"),
    ("kata", 'unknown OCI runtime "kata"'),
])
def test_a_runtime_the_oci_driver_cannot_use_ends_berth_up(tmp_path, runtime, message):
    """As a wrong --fargate-runtime does: a setting, not an engine that is not up yet."""
    out = subprocess.run([BIN, "up", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
                          "--runtime", "oci", "--oci-runtime", runtime], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out
    assert f"--oci-runtime {runtime}" in out.stderr, out
    assert message in out.stderr, out
