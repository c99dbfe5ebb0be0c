"""Task definition members: each one Berth cannot honour is refused by name and registers or
runs nothing; each one it acts on acts inside the container, on both runtime drivers (see the
table "Task definition members" in docs/differences.md)."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import Berth, remove_containers_of, remove_empty_task_cgroups, remove_oci_containers, task_ids
from ecs_helpers import expect_error, register_instance, wait_task


# --- refused at registration ------------------------------------------------------------

def cannot(member, why, name="web"):
    where = f" in container '{name}'" if name else ""
    return f"Berth cannot honour '{member}'{where}: {why}."


def invalid(member, why, name="web"):
    return f"Invalid '{member}' in container '{name}': {why}."


# (id, task-level members, container members, message)
REFUSED = [
    ("secrets", {}, {"secrets": [{"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:db"}]},
     cannot("secrets", "there is no secret store yet")),
    ("awslogs-region", {}, {"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}},
     invalid("logConfiguration.options", "awslogs-region is required")),
    ("awslogs-option", {}, {"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1", "tag": "x"}}},
     invalid("logConfiguration.options", "the awslogs option 'tag' is not supported; the supported ones are awslogs-group, awslogs-region, "
             "awslogs-stream-prefix, awslogs-create-group, awslogs-datetime-format, awslogs-multiline-pattern, mode, max-buffer-size")),
    ("syslog", {}, {"logConfiguration": {"logDriver": "syslog"}},
     cannot("logConfiguration.logDriver", "the agent keeps container logs itself (json-file) or sends them to CloudWatch Logs (awslogs); "
            "it cannot send them to syslog")),
    ("log-option", {}, {"logConfiguration": {"logDriver": "json-file", "options": {"compress": "true"}}},
     cannot("logConfiguration.options", "json-file option 'compress' is not supported; only max-size and max-file")),
    ("log-secret", {}, {"logConfiguration": {"logDriver": "json-file", "secretOptions": [{"name": "k", "valueFrom": "s"}]}},
     cannot("logConfiguration.secretOptions", "there is no secret store yet")),
    ("gpu", {}, {"resourceRequirements": [{"type": "GPU", "value": "1"}]},
     cannot("resourceRequirements", "the agent offers no GPUs or inference accelerators")),
    ("firelens", {}, {"firelensConfiguration": {"type": "fluentbit"}},
     cannot("firelensConfiguration", "the agent runs no FireLens log router")),
    ("credential-specs", {}, {"credentialSpecs": ["credentialspecdomainless:arn:aws:s3:::b/k"]},
     cannot("credentialSpecs", "there is no Active Directory (gMSA) integration")),
    ("links", {}, {"links": ["db:database"]},
     cannot("links", "Docker links need the linked container started first, which the agent does not order; use extraHosts")),
    ("version-consistency", {}, {"versionConsistency": "enabled"},
     cannot("versionConsistency", "image tags are not pinned to digests for a deployment; set 'disabled'")),
    ("security-option", {}, {"dockerSecurityOptions": ["apparmor:docker-default"]},
     cannot("dockerSecurityOptions", "only no-new-privileges is supported, not 'apparmor:docker-default'")),
    ("sysctl-global", {}, {"systemControls": [{"namespace": "kernel.panic", "value": "1"}]},
     cannot("systemControls", "'kernel.panic' is not namespaced; only net.*, fs.mqueue.* and the kernel IPC limits may be set")),
    ("sysctl-host-network", {"networkMode": "host"}, {"systemControls": [{"namespace": "net.ipv4.ip_forward", "value": "1"}]},
     cannot("systemControls", "'net.ipv4.ip_forward' would change the host's network namespace")),
    ("port-range-host", {"networkMode": "host"}, {"portMappings": [{"containerPortRange": "8000-8010"}]},
     invalid("portMappings.containerPortRange", "port ranges need the bridge or awsvpc network mode")),
    ("tmpfs-option", {}, {"linuxParameters": {"tmpfs": [{"containerPath": "/s", "size": 8, "mountOptions": ["rbind"]}]}},
     invalid("linuxParameters.tmpfs", "'rbind' is not a tmpfs mount option")),
    ("swap-without-memory", {}, {"memory": None, "memoryReservation": 32, "linuxParameters": {"maxSwap": 16}},
     invalid("linuxParameters.maxSwap", "it needs the container's 'memory' hard limit")),
    ("shm-ipc-none", {"ipcMode": "none"}, {"linuxParameters": {"sharedMemorySize": 64}},
     invalid("linuxParameters.sharedMemorySize", "there is no /dev/shm of the task to size with ipcMode none")),
    ("no-network-ports", {}, {"disableNetworking": True, "portMappings": [{"containerPort": 80}]},
     invalid("disableNetworking", "a container without networking cannot map ports")),
    ("task-role", {"taskRoleArn": "arn:aws:iam::000000000000:role/app"}, {},
     cannot("taskRoleArn", "there is no IAM yet to give a task role's credentials to its containers", None)),
    ("app-mesh", {"proxyConfiguration": {"type": "APPMESH", "containerName": "web"}}, {},
     cannot("proxyConfiguration", "the agent sets up no App Mesh proxy", None)),
    ("inference", {"inferenceAccelerators": [{"deviceName": "d", "deviceType": "eia2.medium"}]}, {},
     cannot("inferenceAccelerators", "there are no Elastic Inference accelerators", None)),
    ("efs", {"volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]}, {},
     cannot("volumes.efsVolumeConfiguration", "the agent mounts no Amazon EFS file systems", None)),
    ("fsx", {"volumes": [{"name": "v", "fsxWindowsFileServerVolumeConfiguration": {
        "fileSystemId": "fs-1", "rootDirectory": "/", "authorizationConfig": {"credentialsParameter": "p", "domain": "d"}}}]}, {},
     cannot("volumes.fsxWindowsFileServerVolumeConfiguration", "the agent mounts no Amazon FSx file systems", None)),
    ("docker-volume-shared", {"volumes": [{"name": "v", "dockerVolumeConfiguration": {"scope": "shared"}}]}, {},
     cannot("volumes.dockerVolumeConfiguration.scope",
            "volume 'v' asks for scope 'shared'; only task-scoped Docker volumes exist here", None)),
    ("docker-volume-options", {"volumes": [{"name": "v", "dockerVolumeConfiguration": {"driverOpts": {"type": "tmpfs"}}}]}, {},
     cannot("volumes.dockerVolumeConfiguration.driverOpts", "Docker volumes are plain task directories here", None)),
    ("ebs", {"volumes": [{"name": "v", "configuredAtLaunch": True}]}, {},
     cannot("volumes.configuredAtLaunch",
            "volume 'v' would be an Amazon EBS volume configured at launch, which Berth does not provide", None)),
    ("windows", {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}, {},
     cannot("runtimePlatform.operatingSystemFamily", "Berth runs Linux containers only, not WINDOWS_SERVER_2022_CORE", None)),
    ("fault-injection", {"enableFaultInjection": True}, {},
     cannot("enableFaultInjection", "there are no fault injection endpoints", None)),
]


@pytest.mark.parametrize("members,container_members,message", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_members_berth_cannot_honour_are_refused_by_name(ecs, members, container_members, message):
    definition = {"name": "web", "image": "busybox", "memory": 64}
    for key, value in container_members.items():
        if value is None:
            definition.pop(key)
        else:
            definition[key] = value
    with expect_error("ClientException") as info:
        ecs.register_task_definition(family="refused", containerDefinitions=[definition], **members)
    assert info.value.response["Error"]["Message"] == message
    assert ecs.list_task_definition_families(familyPrefix="refused")["families"] == []


def test_refused_members_are_refused_through_the_aws_cli(berth):
    """The AWS CLI gets the same refusal (exit status 254 and the message)."""
    out = berth.cli("ecs", "register-task-definition", "--family", "cli", "--container-definitions", json.dumps(
        [{"name": "web", "image": "busybox", "memory": 64, "secrets": [{"name": "A", "valueFrom": "b"}]}]), check=False)
    assert out.returncode != 0
    assert "ClientException" in out.stderr and "Berth cannot honour 'secrets'" in out.stderr, out.stderr


# --- refused for the EC2 launch type ----------------------------------------------------

EC2_REFUSED = [
    ("ephemeral-storage", {"ephemeralStorage": {"sizeInGiB": 30}}, {},
     "Berth cannot honour 'ephemeralStorage' for the EC2 launch type: it sizes a Fargate task's storage."),
]


@pytest.mark.parametrize("members,launch,message", [r[1:] for r in EC2_REFUSED], ids=[r[0] for r in EC2_REFUSED])
def test_fargate_members_are_kept_and_refused_for_ec2_launches(ecs, members, launch, message):
    instance = register_instance(ecs)["containerInstanceArn"]
    registered = ecs.register_task_definition(
        family="fargateish", containerDefinitions=[{"name": "web", "image": "busybox", "memory": 64}], **members)
    for key, value in members.items():
        assert registered["taskDefinition"][key] == value, "kept for the FARGATE launch type"
    for call in (lambda: ecs.run_task(taskDefinition="fargateish", **launch),
                 lambda: ecs.run_task(taskDefinition="fargateish", launchType="EC2", **launch),
                 lambda: ecs.start_task(taskDefinition="fargateish", containerInstances=[instance], **launch),
                 lambda: ecs.create_service(serviceName="s", taskDefinition="fargateish", desiredCount=1, **launch)):
        with expect_error("InvalidParameterException", message_prefix=message):
            call()
    assert ecs.list_tasks()["taskArns"] == []
    assert ecs.list_services()["serviceArns"] == []


# --- acted on, on both drivers ------------------------------------------------------------

def stopped(ecs, arn, timeout=60):
    return wait_task(ecs, arn, lambda t: t["lastStatus"] == "STOPPED", timeout)


def run(ecs, family, containers, **members):
    ecs.register_task_definition(family=family, containerDefinitions=containers, **members)
    resp = ecs.run_task(taskDefinition=family)
    assert not resp["failures"], resp["failures"]
    return resp["tasks"][0]["taskArn"]


def sh(name, image, script, **extra):
    return {"name": name, "image": image, "memory": 64, "command": ["sh", "-c", script], **extra}


def container(task, name):
    (found,) = [c for c in task["containers"] if c["name"] == name]
    return found


def script(checks, then="exit 42"):
    """A shell script running `checks` in turn: the first to fail prints itself and exits 1."""
    quoted = [c.replace("'", "'\\''") for c in checks]
    steps = [f"{{ {c}; }} || {{ echo 'failed: {q}'; exit 1; }}" for c, q in zip(checks, quoted)]
    return "; ".join(steps + [then])


def exit_codes(task):
    return {c["name"]: c.get("exitCode") for c in task["containers"]}


def logs(b, task, name):
    """A container's output, for failure messages."""
    cid = container(task, name).get("runtimeId")
    if not cid:
        return "(no container)"
    if b.driver == "docker":
        p = subprocess.run(["docker", "logs", cid], capture_output=True, text=True)
        return p.stdout + p.stderr
    log = b.data_dir / "agent" / "oci" / "containers" / cid / "log.json"
    return "".join(json.loads(l)["log"] for l in log.read_text().splitlines()) if log.exists() else "(no log)"


def expect_exit(b, ecs, arn, expected, timeout=60):
    task = stopped(ecs, arn, timeout)
    codes = exit_codes(task)
    for name, code in expected.items():
        assert codes[name] == code, (name, task.get("stoppedReason"), logs(b, task, name))
    return task


@pytest.fixture(params=["docker", "oci"])
def agent(tmp_path, request):
    """`berth up` with its local agent (once per driver), privileged tasks allowed and stopped
    tasks' containers removed after a second."""
    b = Berth(tmp_path / "data", extra_args=("--runtime", request.param, "--reserved-memory", "0",
                                             "--allow-privileged", "--task-cleanup-wait", "1")).start()
    b.driver = request.param
    yield b
    client = b.client()
    instance = client.list_container_instances()["containerInstanceArns"][0]
    ids = task_ids(client)
    b.stop()
    remove_containers_of(instance)
    remove_oci_containers(tmp_path / "data")
    subprocess.run(["sh", "-c", f"for d in {tmp_path}/data/agent/oci/holders/*; do [ -d \"$d\" ] && "
                    "runc delete -f \"$(basename \"$d\")\"; umount -l \"$d/shm\"; done"], capture_output=True)
    remove_empty_task_cgroups(ids)


def test_linux_parameters_and_system_controls_act_in_the_container(agent, registry):
    ecs = agent.client()
    checks = script([
        # tmpfs of 16 MiB with its options, and Docker's defaults beneath them
        "grep -q ' /scratch tmpfs .*nosuid.*nodev.*size=16384k' /proc/mounts",
        "grep ' /scratch ' /proc/mounts | grep -qv noexec",
        "touch /scratch/file",
        # /dev/shm of 128 MiB
        "grep -q ' /dev/shm tmpfs .*size=131072k' /proc/mounts",
        # a device node with all permissions, and one that may only be read
        # (devices outside Docker's default list, whose rules would allow them anyway; opening
        # /dev/kmsg for writing writes nothing)
        "test -c /dev/xkmsg", "exec 3>/dev/xkmsg",
        "test -c /dev/xfuse", "exec 4</dev/xfuse", "! sh -c 'exec 5>/dev/xfuse' 2>/dev/null",
        # the sysctl of its own network namespace
        'test "$(cat /proc/sys/net/core/somaxconn)" = 1234',
    ])
    check = sh("check", registry, checks, essential=False,
               linuxParameters={"tmpfs": [{"containerPath": "/scratch", "size": 16, "mountOptions": ["exec", "mode=1777"]}],
                                "sharedMemorySize": 128,
                                "devices": [{"hostPath": "/dev/kmsg", "containerPath": "/dev/xkmsg"},
                                            {"hostPath": "/dev/fuse", "containerPath": "/dev/xfuse", "permissions": ["read"]}]},
               systemControls=[{"namespace": "net.core.somaxconn", "value": "1234"}])
    main = sh("main", registry, "exec sleep 300", stopTimeout=1, memory=64,
              linuxParameters={"maxSwap": 32, "swappiness": 7})
    arn = run(ecs, "linux", [check, main])
    task = wait_task(ecs, arn, lambda t: exit_codes(t)["check"] is not None or t["lastStatus"] == "STOPPED")
    assert exit_codes(task)["check"] == 42, (task.get("stoppedReason"), logs(agent, task, "check"))
    # Swap limits, seen from the host in the container's memory cgroup.
    cid = container(task, "main")["runtimeId"]
    cgroup = f"/sys/fs/cgroup/memory/berth-tasks/{arn.rsplit('/', 1)[1]}/{cid}"
    with open(f"{cgroup}/memory.memsw.limit_in_bytes") as f:
        assert int(f.read()) == 96 << 20
    with open(f"{cgroup}/memory.swappiness") as f:
        assert int(f.read()) == 7
    ecs.stop_task(task=arn)
    stopped(ecs, arn)


def http_get(url, timeout=20):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_a_port_range_is_published_on_a_run_of_host_ports(agent, registry):
    ecs = agent.client()
    serve = "httpd -p 8000 -h /www && httpd -p 8002 -h /www && exec sleep 300"
    arn = run(ecs, "ranges", [sh("web", registry, serve, stopTimeout=1,
                                 portMappings=[{"containerPortRange": "8000-8002"}])])
    task = wait_task(ecs, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"))
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    bindings = [b for b in container(task, "web")["networkBindings"] if b["bindIP"] == "0.0.0.0"]
    assert len(bindings) == 1, bindings
    assert bindings[0]["containerPortRange"] == "8000-8002" and bindings[0]["protocol"] == "tcp", bindings
    first, last = map(int, bindings[0]["hostPortRange"].split("-"))
    assert last - first == 2
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert low <= first and last <= high, "from the ephemeral range"
    for port in (first, last):
        assert "hello" in http_get(f"http://127.0.0.1:{port}/index.html").lower()
    ecs.stop_task(task=arn)
    stopped(ecs, arn)


def namespace(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def holders(b):
    if b.driver == "docker":
        out = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.berth.namespace-holder",
                              "--filter", f"label=com.berth.container-instance={b.client().list_container_instances()['containerInstanceArns'][0]}"],
                             capture_output=True, text=True).stdout.split()
        return [c for c in out if "com.berth.task-arn" not in subprocess.run(
            ["docker", "inspect", "-f", "{{json .Config.Labels}}", c], capture_output=True, text=True).stdout]
    d = b.data_dir / "agent" / "oci" / "holders"
    return [p.name for p in d.iterdir()] if d.exists() else []


def test_task_pid_and_ipc_namespaces_are_shared_by_the_task(agent, registry):
    ecs = agent.client()
    # Written aside and renamed: b must never read the file between the shell's redirect
    # creating it and readlink filling it.
    a = sh("a", registry, "busybox readlink /proc/self/ns/ipc > /dev/shm/.a && mv /dev/shm/.a /dev/shm/from-a "
                          "&& exec sleep 1234", stopTimeout=1)
    b = sh("b", registry,
           "for i in $(seq 100); do ps | grep -q '[s]leep 1234' && test -f /dev/shm/from-a && break; sleep 0.1; done; "
           'test "$(cat /dev/shm/from-a)" = "$(busybox readlink /proc/self/ns/ipc)" && ps | grep -q "[s]leep 1234" '
           "&& grep -q ' /dev/shm .*size=98304k' /proc/mounts && exit 42; ps; cat /proc/mounts; exit 1",
           linuxParameters={"sharedMemorySize": 96})
    arn = run(ecs, "shared", [a, b], pidMode="task", ipcMode="task")
    task = wait_task(ecs, arn, lambda t: exit_codes(t)["b"] is not None or t["lastStatus"] == "STOPPED")
    assert exit_codes(task)["b"] == 42, (task.get("stoppedReason"), logs(agent, task, "b"))
    assert len(holders(agent)) == 1
    # Without pidMode task, the other container's processes are not visible.
    alone = run(ecs, "alone", [sh("a", registry, "exec sleep 1234", stopTimeout=1),
                               sh("b", registry, "sleep 2; ps | grep -q '[s]leep 1234' && exit 1; exit 43")])
    expect_exit(agent, ecs, alone, {"b": 43})
    # The holder goes with the task's containers (`--task-cleanup-wait 1`).
    ecs.stop_task(task=arn)
    stopped(ecs, arn)
    deadline = time.time() + 30
    while holders(agent) and time.time() < deadline:
        time.sleep(0.2)
    assert holders(agent) == []


def test_host_and_none_namespace_modes(agent, registry):
    ecs = agent.client()
    env = [{"name": "HOST_PID", "value": namespace("pid")}, {"name": "HOST_IPC", "value": namespace("ipc")}]
    host = sh("main", registry, 'test "$(busybox readlink /proc/self/ns/pid)" = "$HOST_PID" '
                                '&& test "$(busybox readlink /proc/self/ns/ipc)" = "$HOST_IPC" && exit 42; exit 1',
              environment=env)
    none = sh("main", registry, "grep -q ' /dev/shm ' /proc/mounts && exit 1; "
                                'test "$(busybox readlink /proc/self/ns/ipc)" != "$HOST_IPC" && exit 43; exit 2',
              environment=env)
    private = sh("main", registry, 'test "$(busybox readlink /proc/self/ns/pid)" != "$HOST_PID" '
                                   "&& grep -q ' /dev/shm .*size=65536k' /proc/mounts && exit 44; exit 1",
                 environment=env)
    arns = {run(ecs, "hostns", [host], pidMode="host", ipcMode="host"): 42, run(ecs, "nonens", [none], ipcMode="none"): 43,
            run(ecs, "privatens", [private]): 44}
    for arn, code in arns.items():
        expect_exit(agent, ecs, arn, {"main": code})


def test_dns_search_streams_networking_and_privileges(agent, registry):
    ecs = agent.client()
    cases = {
        "search": (sh("main", registry, "grep -q '^search svc.local corp.example$' /etc/resolv.conf && exit 42; "
                                        "cat /etc/resolv.conf; exit 1", dnsSearchDomains=["svc.local", "corp.example"]), 42),
        "tty": (sh("main", registry, "test -t 0 && test -t 1 && exit 42; exit 1", pseudoTerminal=True), 42),
        "notty": (sh("main", registry, "test -t 1 && exit 1; exit 42"), 42),
        # stdin stays open: cat waits until timeout ends it (143); without, it reads end of file at once
        "interactive": (sh("main", registry, "busybox timeout 2 cat; exit $?", interactive=True), 143),
        "closed": (sh("main", registry, "busybox timeout 2 cat; exit $?"), 0),
        "offline": (sh("main", registry, 'test "$(ls /sys/class/net)" = lo && exit 42; ls /sys/class/net; exit 1',
                       disableNetworking=True), 42),
        "nnp": (sh("main", registry, "grep -q 'NoNewPrivs:.*1' /proc/self/status && exit 42; exit 1",
                   dockerSecurityOptions=["no-new-privileges"]), 42),
        "nnp-off": (sh("main", registry, "grep -q 'NoNewPrivs:.*0' /proc/self/status && exit 42; exit 1"), 42),
        # Docker's 14 default capabilities (0xa80425fb) for root, none for another user.
        "caps": (sh("main", registry, "grep -q 'CapEff:.*00000000a80425fb' /proc/self/status && "
                                      "grep -q 'CapBnd:.*00000000a80425fb' /proc/self/status && exit 42; "
                                      "grep Cap /proc/self/status; exit 1"), 42),
        "caps-user": (sh("main", registry, "grep -q 'CapEff:.*0000000000000000' /proc/self/status && "
                                           "grep -q 'CapAmb:.*0000000000000000' /proc/self/status && exit 42; "
                                           "grep Cap /proc/self/status; exit 1", user="1000"), 42),
    }
    arns = {run(ecs, family, [definition]): (family, code) for family, (definition, code) in cases.items()}
    for arn, (family, code) in arns.items():
        task = stopped(ecs, arn)
        assert exit_codes(task)["main"] == code, (family, task.get("stoppedReason"), logs(agent, task, "main"))


def test_privileged_containers_get_every_capability_and_device(agent, registry):
    ecs = agent.client()
    bounding = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapBnd:"))
    every = (1 << (int(open("/proc/sys/kernel/cap_last_cap").read()) + 1)) - 1
    if agent.driver == "docker" and int(bounding, 16) != every:
        # The engine grants every capability of the kernel, and this machine (itself in a
        # container) may not hand them all on: the task fails, and says why.
        task = stopped(ecs, run(ecs, "privileged", [sh("main", registry, "exit 0", privileged=True)]))
        assert task["stopCode"] == "TaskFailedToStart" and "unable to apply caps" in task["stoppedReason"], task
        return
    privileged = sh("main", registry, 'grep -q "CapEff:.*$CAPS" /proc/self/status && test -c /dev/kmsg && exit 42; '
                                      "grep Cap /proc/self/status; exit 1",
                    privileged=True, environment=[{"name": "CAPS", "value": bounding}])
    plain = sh("main", registry, 'grep -q "CapEff:.*$CAPS" /proc/self/status && exit 1; test -c /dev/kmsg && exit 2; exit 43',
               environment=[{"name": "CAPS", "value": bounding}])
    expect_exit(agent, ecs, run(ecs, "privileged", [privileged]), {"main": 42})
    expect_exit(agent, ecs, run(ecs, "unprivileged", [plain]), {"main": 43})


def test_json_file_options_rotate_the_log(agent, registry):
    ecs = agent.client()
    line = "x" * 200
    arn = run(ecs, "rotate", [sh("main", registry, f"for i in $(seq 200); do echo {line}; done; exec sleep 300",
                                 stopTimeout=1,
                                 logConfiguration={"logDriver": "json-file", "options": {"max-size": "4k", "max-file": "2"}})])
    task = wait_task(ecs, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"))
    cid = container(task, "main")["runtimeId"]
    if agent.driver == "docker":
        path = subprocess.run(["docker", "inspect", "-f", "{{.LogPath}}", cid], capture_output=True, text=True).stdout.strip()
    else:
        path = str(agent.data_dir / "agent" / "oci" / "containers" / cid / "log.json")
    deadline = time.time() + 20
    while not os.path.exists(path + ".1") and time.time() < deadline:
        time.sleep(0.2)
    assert os.path.exists(path + ".1"), "rotated"
    assert not os.path.exists(path + ".2"), "two files in all"
    assert os.path.getsize(path) <= 4096
    ecs.stop_task(task=arn)
    stopped(ecs, arn)


def test_task_docker_volumes_and_platform(agent, registry):
    ecs = agent.client()
    mount = [{"sourceVolume": "work", "containerPath": "/work"}]
    arn = run(ecs, "dockervolume", [
        sh("writer", registry, "echo hello > /work/msg", essential=False, mountPoints=mount),
        sh("reader", registry, "for i in $(seq 50); do test -f /work/msg && break; sleep 0.1; done; "
                               "grep -q hello /work/msg && exit 42; exit 1", mountPoints=mount)],
        volumes=[{"name": "work", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}])
    expect_exit(agent, ecs, arn, {"reader": 42})
    here = {"x86_64": "X86_64", "aarch64": "ARM64"}[os.uname().machine]
    other = "ARM64" if here == "X86_64" else "X86_64"
    expect_exit(agent, ecs, run(ecs, "native", [sh("main", registry, "exit 42")],
                                runtimePlatform={"cpuArchitecture": here, "operatingSystemFamily": "LINUX"}), {"main": 42})
    task = stopped(ecs, run(ecs, "foreign", [sh("main", registry, "exit 0")], runtimePlatform={"cpuArchitecture": other}))
    assert task["stopCode"] == "TaskFailedToStart", task
    assert task["stoppedReason"] == (f"CannotStartContainerError: the task definition's runtimePlatform.cpuArchitecture "
                                     f"is {other}; this instance is {here}"), task
    assert "runtimeId" not in container(task, "main")
