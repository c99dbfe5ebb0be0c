"""The local agent runs real containers: every test runs once per runtime driver (docker, oci)
unless it needs what only one driver does."""

import subprocess
import json
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import OCI_BRIDGE_LEASES, free_port
from ecs_helpers import until, wait_task


def test_essential_container_exit_code_stops_the_task(agent_berth, registry):
    ecs = agent_berth.client()
    ecs.register_task_definition(family="exit3", containerDefinitions=[
        {"name": "main", "image": registry, "memory": 32, "command": ["sh", "-c", "exit 3"]}])
    arn = ecs.run_task(taskDefinition="exit3")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED")
    assert task["containers"][0]["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["pullStartedAt"] <= task["pullStoppedAt"] <= task["startedAt"] <= task["stoppedAt"]


@pytest.mark.parametrize("image_suffix", ["nosuchimage:1"])
def test_missing_image_fails_to_start(agent_berth, registry, image_suffix):
    ecs = agent_berth.client()
    missing = registry.rsplit("/", 1)[0] + "/" + image_suffix
    ecs.register_task_definition(family="missing", containerDefinitions=[{"name": "main", "image": missing, "memory": 32}])
    arn = ecs.run_task(taskDefinition="missing")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError:"), task["stoppedReason"]
    assert "startedAt" not in task


def test_environment_files_are_read_beneath_the_environment(agent_berth, registry):
    """`environmentFiles` name S3 objects; Berth's agent reads them from its s3 directory."""
    bucket = agent_berth.data_dir / "agent" / "s3" / "config"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "a.env").write_text("# defaults\nA=from-a\nB=from-a\n")
    (bucket / "b.env").write_text("B=from-b\nC=from-b\n")
    ecs = agent_berth.client()
    check = '[ "$A" = from-a ] && [ "$B" = from-b ] && [ "$C" = given ] && exit 7; env; exit 1'
    files = [{"value": "arn:aws:s3:::config/a.env", "type": "s3"}, {"value": "arn:aws:s3:::config/b.env", "type": "s3"}]
    ecs.register_task_definition(family="envfiles", containerDefinitions=[
        {"name": "main", "image": registry, "memory": 32, "command": ["sh", "-c", check],
         "environment": [{"name": "C", "value": "given"}], "environmentFiles": files}])
    task = wait_task(ecs, ecs.run_task(taskDefinition="envfiles")["tasks"][0]["taskArn"], "STOPPED")
    assert task["containers"][0].get("exitCode") == 7, task
    ecs.register_task_definition(family="envmissing", containerDefinitions=[
        {"name": "main", "image": registry, "memory": 32, "command": ["true"],
         "environmentFiles": [{"value": "arn:aws:s3:::config/none.env", "type": "s3"}]}])
    task = wait_task(ecs, ecs.run_task(taskDefinition="envmissing")["tasks"][0]["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("ResourceInitializationError: failed to download env files"), task


# --- helpers --------------------------------------------------------------------------

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
MIB = 1024 * 1024


def run_task(ecs, family, containers, volumes=None, overrides=None):
    """Registers `family` with `containers` (and `volumes`) and runs one task of it."""
    kwargs = {"family": family, "containerDefinitions": containers}
    if volumes is not None:
        kwargs["volumes"] = volumes
    ecs.register_task_definition(**kwargs)
    run = {"taskDefinition": family}
    if overrides is not None:
        run["overrides"] = overrides
    resp = ecs.run_task(**run)
    assert not resp.get("failures"), resp["failures"]
    return resp["tasks"][0]["taskArn"]


def container(task, name):
    matches = [c for c in task["containers"] if c["name"] == name]
    assert len(matches) == 1, task["containers"]
    return matches[0]


def http_get(url, timeout=20):
    """GETs `url`, retrying while the server in the container is not yet listening."""
    deadline = time.time() + timeout
    error = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError as e:
            error = e
            time.sleep(0.2)
    raise AssertionError(f"GET {url} never answered: {error}")


def docker(*args):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"docker {' '.join(args)} failed: {p.stderr}"
    return p.stdout


def oci_dir(b, cid):
    return b.data_dir / "agent" / "oci" / "containers" / cid


def oci_exit(b, cid):
    f = oci_dir(b, cid) / "exit.json"
    return json.loads(f.read_text()) if f.exists() else None


def container_state(b, cid):
    """(running, exit code) of a container, from whichever runtime runs it."""
    if b.driver == "docker":
        running, code = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", cid).split()
        return running == "true", int(code)
    exit = oci_exit(b, cid)
    return (exit is None, exit["code"] if exit else 0)


def stop_outside_berth(b, cid, timeout=5):
    """Stops a container behind Berth's back: SIGTERM, SIGKILL after `timeout`."""
    if b.driver == "docker":
        docker("stop", "-t", str(timeout), cid)
        return
    subprocess.run(["runc", "kill", cid, "TERM"], capture_output=True)
    until(lambda: oci_exit(b, cid) is not None, timeout=timeout + 10, what=f"{cid} to exit")


def cgroup_dir(controller, task_arn, cid=None):
    """A task's cgroup (`berth-tasks/<task id>`), or one of its containers' beneath it."""
    task = Path(f"/sys/fs/cgroup/{controller}/berth-tasks/{task_arn.rsplit('/', 1)[1]}")
    return task / cid if cid else task


def instance_arn(ecs):
    return ecs.list_container_instances()["containerInstanceArns"][0]


def trapping(tmp_path, name, image, trap, loop="while true; do sleep 0.2; done", **extra):
    """A busybox container that installs `trap` and then says so in a file of a host volume
    (see `trap_installed`), so a test can signal it knowing the trap is there."""
    signals = tmp_path / "signals"
    signals.mkdir(exist_ok=True)
    script = f"{trap}; touch /signals/ready; {loop}"
    return bb(name, image, script, mountPoints=[{"sourceVolume": "signals", "containerPath": "/signals"}], **extra), [
        {"name": "signals", "host": {"sourcePath": str(signals)}}]


def trap_installed(tmp_path):
    until(lambda: (tmp_path / "signals" / "ready").exists(), timeout=30, what="the container to install its trap")


def bb(name, image, script, memory=32, **extra):
    """A busybox container definition running `sh -c script`."""
    definition = {"name": name, "image": image, "command": ["sh", "-c", script], **extra}
    if memory is not None:
        definition["memory"] = memory
    return definition


# --- resources ------------------------------------------------------------------------


def test_oom_killed_container_reports_out_of_memory(agent_berth, registry):
    ecs = agent_berth.client()
    # PID 1 itself asks for a 64 MiB buffer inside a 16 MiB cgroup: the kernel OOM-kills it.
    arn = run_task(ecs, "oom", [
        bb("main", registry, "exec dd if=/dev/zero of=/dev/null bs=64M count=1", memory=16)])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    main = container(task, "main")
    assert main["reason"] == OOM_REASON, main
    assert main["exitCode"] == 137, main
    assert main["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited", task


def test_cpu_and_memory_become_cgroup_limits(agent_berth, registry):
    ecs = agent_berth.client()
    arn = run_task(ecs, "limits", [
        {"name": "main", "image": registry, "cpu": 512, "memory": 64, "memoryReservation": 32,
         "command": ["sleep", "60"], "stopTimeout": 1}])
    task = wait_task(ecs, arn, "RUNNING", timeout=30)
    cid = container(task, "main")["runtimeId"]
    if agent_berth.driver == "docker":
        assert len(cid) == 64, cid  # the full Docker container id

    def read(controller, name):
        return int((cgroup_dir(controller, arn, cid) / name).read_text())

    assert read("cpu", "cpu.shares") == 512
    assert read("memory", "memory.limit_in_bytes") == 64 * MIB
    assert read("memory", "memory.soft_limit_in_bytes") == 32 * MIB
    ecs.stop_task(task=arn)
    task = wait_task(ecs, arn, "STOPPED", timeout=20)
    assert task["stopCode"] == "UserInitiated", task


# --- networking -----------------------------------------------------------------------


def tcp_bindings(task, name, container_port):
    bindings = [b for b in container(task, name).get("networkBindings", [])
                if b["containerPort"] == container_port and b.get("protocol", "tcp") == "tcp"]
    assert bindings, container(task, name)
    return bindings


def udp_exchange(port, payload, timeout=20):
    """Sends `payload` to 127.0.0.1:port until an answer comes back (the server may still be starting)."""
    import socket
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.time() < deadline:
            s.sendto(payload, ("127.0.0.1", port))
            try:
                return s.recvfrom(4096)[0]
            except socket.timeout:
                continue
    raise AssertionError(f"no UDP answer on port {port}")


def test_udp_ports_are_published(agent_berth, registry):
    ecs = agent_berth.client()
    echo = {"name": "echo", "image": registry, "memory": 32, "command": ["udp-echo", "5353"], "stopTimeout": 1,
            "portMappings": [{"containerPort": 5353, "hostPort": 0, "protocol": "udp"}]}
    arn = run_task(ecs, "udp-echo", [echo])
    task = wait_task(ecs, arn, "RUNNING", timeout=30)
    bindings = task["containers"][0]["networkBindings"]
    assert {(b["containerPort"], b["protocol"]) for b in bindings} == {(5353, "udp")}, bindings
    [port] = {b["hostPort"] for b in bindings}
    assert udp_exchange(port, b"ping") == b"echo:ping"
    # A second client gets its own answers.
    assert udp_exchange(port, b"pong") == b"echo:pong"
    ecs.stop_task(task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=20)


def test_static_and_dynamic_host_ports_serve_http(agent_berth, registry):
    ecs = agent_berth.client()
    httpd = {"name": "web", "image": registry, "memory": 32, "command": ["httpd", "-f", "-p", "80", "-h", "/www"],
             "stopTimeout": 1}
    host_port = free_port()
    static = run_task(ecs, "web-static", [{**httpd, "portMappings": [{"containerPort": 80, "hostPort": host_port}]}])
    dynamic = run_task(ecs, "web-dynamic", [{**httpd, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])

    task = wait_task(ecs, static, "RUNNING", timeout=30)
    bindings = tcp_bindings(task, "web", 80)
    assert {b["hostPort"] for b in bindings} == {host_port}, bindings
    assert http_get(f"http://127.0.0.1:{host_port}/index.html") == "hello from berth\n"

    task = wait_task(ecs, dynamic, "RUNNING", timeout=30)
    bindings = tcp_bindings(task, "web", 80)
    # Docker may give the IPv6 binding a dynamic port of its own when the IPv4 one is taken
    # for IPv6 (other tests use ephemeral ports meanwhile); the IPv4 binding is the one served.
    ports = {b["hostPort"] for b in bindings if ":" not in b.get("bindIP", "0.0.0.0")}
    assert len(ports) == 1, bindings
    port = ports.pop()
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low <= port <= high, (port, low, high)
    assert port != host_port
    assert http_get(f"http://127.0.0.1:{port}/index.html") == "hello from berth\n"

    for arn in (static, dynamic):
        ecs.stop_task(task=arn)
    for arn in (static, dynamic):
        wait_task(ecs, arn, "STOPPED", timeout=20)


# --- stopping -------------------------------------------------------------------------


def test_stop_task_sends_sigterm_first(agent_berth, registry, tmp_path):
    ecs = agent_berth.client()
    # Default stopTimeout (30 s): a quick stop proves the container exited on SIGTERM.
    main, volumes = trapping(tmp_path, "main", registry, 'trap "exit 0" TERM')
    arn = run_task(ecs, "graceful", [main], volumes)
    wait_task(ecs, arn, "RUNNING", timeout=30)
    trap_installed(tmp_path)
    started = time.time()
    ecs.stop_task(task=arn, reason="enough")
    task = wait_task(ecs, arn, "STOPPED", timeout=20)
    elapsed = time.time() - started
    assert elapsed < 8, f"stop took {elapsed:.1f}s: SIGTERM was not delivered or not acted on"
    assert container(task, "main")["exitCode"] == 0, task["containers"]
    assert task["stopCode"] == "UserInitiated", task
    assert task["stoppedReason"] == "enough", task


def test_stop_task_kills_after_stop_timeout(agent_berth, registry, tmp_path):
    ecs = agent_berth.client()
    main, volumes = trapping(tmp_path, "main", registry, 'trap "" TERM', stopTimeout=2)
    arn = run_task(ecs, "stubborn", [main], volumes)
    wait_task(ecs, arn, "RUNNING", timeout=30)
    trap_installed(tmp_path)
    started = time.time()
    ecs.stop_task(task=arn)
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    elapsed = time.time() - started
    assert 1.5 <= elapsed <= 15, f"stopped after {elapsed:.1f}s with stopTimeout 2"
    assert container(task, "main")["exitCode"] == 137, task["containers"]
    assert task["stopCode"] == "UserInitiated", task


def test_non_essential_exit_keeps_the_task_running(agent_berth, registry):
    ecs = agent_berth.client()
    arn = run_task(ecs, "sidecar", [
        {"name": "main", "image": registry, "memory": 32, "command": ["sleep", "60"], "stopTimeout": 1},
        bb("side", registry, "exit 0", essential=False)])

    def side_stopped():
        task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
        return task if container(task, "side")["lastStatus"] == "STOPPED" else None

    task = until(side_stopped, timeout=30, what="the non-essential container stopped")
    assert container(task, "side")["exitCode"] == 0, task["containers"]
    time.sleep(1.5)  # time for a wrong "essential exited" decision to show
    task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING", task
    assert task["desiredStatus"] == "RUNNING", task
    assert container(task, "main")["lastStatus"] == "RUNNING", task["containers"]
    assert container(task, "side")["lastStatus"] == "STOPPED", task["containers"]

    ecs.stop_task(task=arn)
    task = wait_task(ecs, arn, "STOPPED", timeout=20)
    assert task["stopCode"] == "UserInitiated", task
    assert container(task, "main")["exitCode"] == 137, task["containers"]  # sleep ignores SIGTERM as PID 1
    assert container(task, "side")["exitCode"] == 0, task["containers"]


# --- container settings ---------------------------------------------------------------


def test_environment_command_entrypoint_workdir_and_overrides(agent_berth, registry):
    ecs = agent_berth.client()
    check = ('test "$A" = 1 && test "$B" = 3 && test "$C" = new && test "$(pwd)" = /www '
             '&& test "$0" = sh && exit 7; env; pwd; exit 1')
    arn = run_task(ecs, "settings", [
        {"name": "main", "image": registry, "memory": 32, "entryPoint": ["sh", "-c"], "command": [check],
         "workingDirectory": "/www", "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}],
        overrides={"containerOverrides": [
            {"name": "main", "environment": [{"name": "B", "value": "3"}, {"name": "C", "value": "new"}]}]})
    # A command override replaces the definition's command (the entryPoint stays).
    replaced = ecs.run_task(taskDefinition="settings", overrides={"containerOverrides": [
        {"name": "main", "command": ['test "$B" = 2 && test "$(pwd)" = /www && exit 11; exit 1']}]})["tasks"][0]["taskArn"]

    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert container(task, "main")["exitCode"] == 7, task["containers"]
    task = wait_task(ecs, replaced, "STOPPED", timeout=30)
    assert container(task, "main")["exitCode"] == 11, task["containers"]


def test_readonly_root_user_and_ulimits(agent_berth, registry):
    ecs = agent_berth.client()
    readonly = run_task(ecs, "readonly", [
        bb("main", registry, "touch /x && exit 0 || exit 4", readonlyRootFilesystem=True)])
    writable = run_task(ecs, "writable", [bb("main", registry, "touch /x && exit 3 || exit 4")])
    user = run_task(ecs, "nobody", [
        bb("main", registry, 'test "$(id -u)" = 65534 && test "$(id -g)" = 65534 && exit 6; exit 1', user="nobody")])
    ulimit = run_task(ecs, "nofile", [
        bb("main", registry, 'test "$(ulimit -n)" = 123 && test "$(ulimit -Hn)" = 456 && exit 8; exit 1',
           ulimits=[{"name": "nofile", "softLimit": 123, "hardLimit": 456}])])
    expected = {readonly: 4, writable: 3, user: 6, ulimit: 8}
    for arn, code in expected.items():
        task = wait_task(ecs, arn, "STOPPED", timeout=30)
        assert container(task, "main")["exitCode"] == code, (task["taskDefinitionArn"], task["containers"])


def oci_netns(task_arn, container_name):
    """The named network namespace the oci driver gives a bridge-mode container: FNV-1a of its
    runtime name, as the agent derives it."""
    h = 0xcbf29ce484222325
    for b in f"berth-{task_arn.rsplit('/', 1)[-1]}-{container_name}".encode():
        h = ((h ^ b) * 0x100000001b3) % 2**64
    return f"berth-{h & 0xffffffffffff:012x}"


def test_a_user_the_image_lacks_fails_the_start_and_leaves_no_network(agent_berth, registry):
    ecs = agent_berth.client()
    arn = run_task(ecs, "nouser", [bb("main", registry, "exit 0", user="nosuchuser")])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert "nosuchuser" in task["stoppedReason"], task
    assert "startedAt" not in task, task
    if agent_berth.driver == "oci":
        netns = oci_netns(arn, "main")
        assert not (Path("/run/netns") / netns).exists(), f"{netns} was left behind"
        held = []
        for lease in OCI_BRIDGE_LEASES.glob("*"):
            try:
                if lease.read_text() == netns:
                    held.append(lease.name)
            except FileNotFoundError:  # released by another test's agent meanwhile
                pass
        assert held == [], f"addresses {held} are still leased to {netns}"


def parent(pid):
    """The parent pid of process `pid`."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("agent_berth", ["oci"], indirect=True)
def test_oci_shims_are_forked_by_one_zygote(agent_berth, registry):
    """Each container's shim is forked by the driver's zygote (`berth zygote`), not executed:
    the container's parent is its shim, and every shim's parent is the same zygote."""
    ecs = agent_berth.client()
    script = "trap 'exit 0' TERM; while true; do sleep 1; done"
    arns = [run_task(ecs, f"forked{i}", [bb("main", registry, script)]) for i in range(2)]
    zygotes = set()
    for arn in arns:
        wait_task(ecs, arn, "RUNNING", timeout=30)
        name = f"berth-{arn.rsplit('/', 1)[-1]}-main"
        pid = int((agent_berth.data_dir / "agent" / "oci" / "containers" / name / "container.pid").read_text())
        shim = parent(pid)
        zygote = parent(shim)
        assert Path(f"/proc/{zygote}/cmdline").read_bytes().split(b"\0")[1:2] == [b"zygote"], zygote
        zygotes.add(zygote)
    assert len(zygotes) == 1, zygotes
    for arn in arns:
        ecs.stop_task(task=arn)
        wait_task(ecs, arn, "STOPPED", timeout=30)


def test_privileged_container_is_refused(agent_berth, registry):
    ecs = agent_berth.client()
    arn = run_task(ecs, "privileged", [bb("main", registry, "exit 0", privileged=True)])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert "privileged" in task["stoppedReason"], task
    assert "startedAt" not in task, task
    assert "exitCode" not in container(task, "main"), task["containers"]
    # Nothing was created for it.
    assert docker("ps", "-aq", "--filter", f"label=com.berth.task-arn={arn}").split() == []


# --- volumes --------------------------------------------------------------------------


def test_scratch_volume_is_shared_between_containers(agent_berth, registry):
    ecs = agent_berth.client()
    arn = run_task(ecs, "scratch", [
        bb("writer", registry, "echo shared-data > /data/msg", essential=False,
           mountPoints=[{"sourceVolume": "scratch", "containerPath": "/data"}]),
        bb("reader", registry,
           # The content, not the file's existence: the writer's shell creates the file before
           # it writes to it.
           'for i in $(seq 100); do test "$(cat /shared/msg 2>/dev/null)" = shared-data && exit 5; '
           'sleep 0.1; done; exit 1',
           mountPoints=[{"sourceVolume": "scratch", "containerPath": "/shared"}])],
        volumes=[{"name": "scratch"}])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert container(task, "writer")["exitCode"] == 0, task["containers"]
    assert container(task, "reader")["exitCode"] == 5, task["containers"]
    assert task["stopCode"] == "EssentialContainerExited", task


def test_host_volume_is_bind_mounted(agent_berth, registry, tmp_path):
    ecs = agent_berth.client()
    host_dir = tmp_path / "hostvol"
    host_dir.mkdir()
    (host_dir / "in.txt").write_text("from-host\n")
    arn = run_task(ecs, "hostvol", [
        bb("main", registry, 'test "$(cat /mnt/in.txt)" = from-host && echo from-container > /mnt/out.txt && exit 2; exit 1',
           mountPoints=[{"sourceVolume": "h", "containerPath": "/mnt"}])],
        volumes=[{"name": "h", "host": {"sourcePath": str(host_dir)}}])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert container(task, "main")["exitCode"] == 2, task["containers"]
    assert (host_dir / "out.txt").read_text() == "from-container\n"


# --- agent restart --------------------------------------------------------------------


def managed_containers(b, instance):
    """{task arn: [container ids]} of the running containers of this agent's instance."""
    by_task = {}
    if b.driver == "docker":
        out = docker("ps", "--no-trunc", "--filter", f"label=com.berth.container-instance={instance}",
                     "--filter", "label=com.berth.task-arn", "--format", '{{.ID}} {{.Label "com.berth.task-arn"}}')
        for line in out.splitlines():
            cid, task = line.split(" ", 1)
            by_task.setdefault(task, []).append(cid)
        return by_task
    listed = json.loads(subprocess.run(["runc", "list", "-f", "json"], capture_output=True, text=True).stdout or "[]") or []
    for c in listed:
        meta = oci_dir(b, c["id"]) / "meta.json"
        if c["status"] == "running" and meta.exists():
            labels = json.loads(meta.read_text())["labels"]
            if labels.get("com.berth.container-instance") == instance:
                by_task.setdefault(labels["com.berth.task-arn"], []).append(c["id"])
    return by_task


def all_containers(b, instance):
    if b.driver == "docker":
        return docker("ps", "-a", "--filter", f"label=com.berth.container-instance={instance}",
                      "--format", "{{.ID}} {{.Status}} {{.Names}}").splitlines()
    return subprocess.run(["runc", "list"], capture_output=True, text=True).stdout.splitlines()


def test_agent_restart_adopts_running_containers(agent_berth, registry):
    ecs = agent_berth.client()
    instance = instance_arn(ecs)
    ecs.register_task_definition(family="long", containerDefinitions=[
        {"name": "main", "image": registry, "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}])
    arns = ecs.run_task(taskDefinition="long", count=5)["tasks"]
    arns = [t["taskArn"] for t in arns]
    assert len(arns) == 5
    before = {arn: container(wait_task(ecs, arn, "RUNNING", timeout=30), "main")["runtimeId"] for arn in arns}
    assert managed_containers(agent_berth, instance) == {arn: [cid] for arn, cid in before.items()}

    agent_berth.restart()
    ecs = agent_berth.client()
    assert instance_arn(ecs) == instance
    # Give the new agent time to poll its assignments and (wrongly) start anything twice.
    deadline = time.time() + 4
    while time.time() < deadline:
        running = managed_containers(agent_berth, instance)
        assert running == {arn: [cid] for arn, cid in before.items()}, (
            f"running containers {running} != before the restart {before}; "
            f"all of this instance's containers: {all_containers(agent_berth, instance)}")
        time.sleep(0.5)
    tasks = ecs.describe_tasks(tasks=arns)["tasks"]
    assert {t["taskArn"]: t["lastStatus"] for t in tasks} == {arn: "RUNNING" for arn in arns}
    assert {t["taskArn"]: container(t, "main")["runtimeId"] for t in tasks} == before

    # The restarted agent controls the adopted containers: StopTask still stops one.
    ecs.stop_task(task=arns[0])
    task = wait_task(ecs, arns[0], "STOPPED", timeout=20)
    assert container(task, "main")["exitCode"] == 137, task["containers"]
    until(lambda: arns[0] not in managed_containers(agent_berth, instance), timeout=10, what="the stopped container gone")
    assert set(managed_containers(agent_berth, instance)) == set(arns[1:])


def test_container_exit_while_agent_down_is_reported(agent_berth, registry, tmp_path):
    ecs = agent_berth.client()
    main, volumes = trapping(tmp_path, "main", registry, 'trap "exit 9" TERM')
    arn = run_task(ecs, "exit9", [main], volumes)
    cid = container(wait_task(ecs, arn, "RUNNING", timeout=30), "main")["runtimeId"]
    trap_installed(tmp_path)
    agent_berth.stop()
    time.sleep(1)
    # Stopping berth leaves its containers running (they are re-adopted on the next start).
    state = container_state(agent_berth, cid)
    assert state == (True, 0), f"container {cid} did not survive `berth up` stopping: running/exitCode = {state}"
    stop_outside_berth(agent_berth, cid)
    assert container_state(agent_berth, cid) == (False, 9)
    agent_berth.start()
    ecs = agent_berth.client()
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    main = container(task, "main")
    assert main["exitCode"] == 9, task["containers"]
    assert main["runtimeId"] == cid
    assert task["stopCode"] == "EssentialContainerExited", task
    assert task["stoppedReason"] == "Essential container in task exited", task


# --- dependsOn and health checks -------------------------------------------------------


def test_depends_on_healthy_holds_the_dependent_until_the_check_passes(agent_berth, registry):
    ecs = agent_berth.client()
    db = bb("db", registry, "sleep 2; touch /tmp/ready; sleep 300", essential=False, stopTimeout=1,
            healthCheck={"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 1, "timeout": 1, "retries": 1})
    app = bb("app", registry, "sleep 300", stopTimeout=1, dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])
    arn = run_task(ecs, "healthy", [db, app])
    until(lambda: container(ecs.describe_tasks(tasks=[arn])["tasks"][0], "db")["lastStatus"] == "RUNNING",
               timeout=30, what="db running")
    task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert container(task, "app")["lastStatus"] == "PENDING", "app waits while db is not yet healthy"
    task = wait_task(ecs, arn, "RUNNING", timeout=30)
    assert container(task, "db")["healthStatus"] == "HEALTHY"
    assert container(task, "app")["lastStatus"] == "RUNNING"
    ecs.stop_task(task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


def test_depends_on_complete_and_success(agent_berth, registry):
    ecs = agent_berth.client()
    setup = bb("setup", registry, "sleep 1; exit 0", essential=False)
    failing = bb("migrate", registry, "sleep 1; exit 2", essential=False)
    after_complete = bb("main", registry, "exit 5", dependsOn=[
        {"containerName": "setup", "condition": "SUCCESS"}, {"containerName": "migrate", "condition": "COMPLETE"}])
    arn = run_task(ecs, "complete", [setup, failing, after_complete])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert [container(task, n)["exitCode"] for n in ("setup", "migrate", "main")] == [0, 2, 5], task["containers"]

    # SUCCESS on a container that fails can never be met: the dependent never starts.
    never = bb("main", registry, "exit 5", dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}])
    arn = run_task(ecs, "never", [failing, never])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert "exitCode" not in container(task, "main"), task["containers"]
    assert "DependencyConditionNotMet" in task["stoppedReason"], task


def test_task_level_limits_wrap_the_containers(agent_berth, registry):
    ecs = agent_berth.client()
    ecs.register_task_definition(family="tasklimits", cpu="512", memory="128", containerDefinitions=[
        bb("main", registry, "sleep 300", memory=None, stopTimeout=1), bb("side", registry, "sleep 300", memory=None, stopTimeout=1)])
    arn = ecs.run_task(taskDefinition="tasklimits", overrides={"memory": "96"})["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "RUNNING", timeout=30)
    assert int((cgroup_dir("memory", arn) / "memory.limit_in_bytes").read_text()) == 96 * MIB, "the override wins"
    assert int((cgroup_dir("cpu", arn) / "cpu.shares").read_text()) == 512
    for name in ("main", "side"):
        assert cgroup_dir("memory", arn, container(task, name)["runtimeId"]).is_dir(), f"{name} sits in the task cgroup"
    ecs.stop_task(task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


def test_hostname_extra_hosts_dns_and_init(agent_berth, registry):
    ecs = agent_berth.client()
    names = bb("main", registry,
               'test "$(hostname)" = web1 && grep -q "127.0.0.42.*db" /etc/hosts '
               '&& grep -q "nameserver 127.0.0.53" /etc/resolv.conf && exit 6; cat /etc/hosts /etc/resolv.conf; exit 1',
               hostname="web1", extraHosts=[{"hostname": "db", "ipAddress": "127.0.0.42"}], dnsServers=["127.0.0.53"])
    init = bb("main", registry, 'test "$$" != 1 && exit 7; exit 1', linuxParameters={"initProcessEnabled": True})
    plain = bb("main", registry, 'test "$$" = 1 && exit 8; exit 1')
    arns = {run_task(ecs, "names", [names]): 6, run_task(ecs, "init", [init]): 7, run_task(ecs, "plain", [plain]): 8}
    for arn, code in arns.items():
        task = wait_task(ecs, arn, "STOPPED", timeout=30)
        assert container(task, "main")["exitCode"] == code, (task["taskDefinitionArn"], task["containers"])


def test_volumes_from_shares_another_containers_mounts(agent_berth, registry):
    ecs = agent_berth.client()
    writer = bb("writer", registry, "echo hello > /data/x", essential=False,
                mountPoints=[{"sourceVolume": "shared", "containerPath": "/data"}])
    reader = bb("reader", registry,
                'for i in $(seq 50); do test -f /data/x && break; sleep 0.1; done; '
                'test "$(cat /data/x)" = hello && ! touch /data/y 2>/dev/null && exit 5; exit 1',
                volumesFrom=[{"sourceContainer": "writer", "readOnly": True}])
    arn = run_task(ecs, "volfrom", [writer, reader], volumes=[{"name": "shared"}])
    task = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert container(task, "reader")["exitCode"] == 5, task["containers"]


def test_a_task_stopped_before_the_agent_claims_it_never_starts(agent_berth, registry):
    ecs = agent_berth.client()
    ecs.register_task_definition(family="quickstop", containerDefinitions=[bb("main", registry, "sleep 300", stopTimeout=1)])
    arns = [t["taskArn"] for t in ecs.run_task(taskDefinition="quickstop", count=5)["tasks"]]
    for arn in arns:
        ecs.stop_task(task=arn)
    tasks = until(lambda: (lambda ts: ts if all(t["lastStatus"] == "STOPPED" for t in ts) else None)(
        ecs.describe_tasks(tasks=arns)["tasks"]), timeout=30, what="all five stopped")
    # A task the agent had claimed is stopped by the agent; one it had not must never run.
    for t in tasks:
        if "runtimeId" not in container(t, "main"):
            assert t["stopCode"] == "UserInitiated"
    running = managed_containers(agent_berth, instance_arn(ecs))
    assert not any(a in running for a in arns), running
