"""End-to-end harness: a real `berth up` on a free loopback port with a temporary data dir,
driven by boto3 and the AWS CLI exactly as a user would drive it."""

import contextlib
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.config import Config

BIN = os.environ.get("BERTH_BIN") or str(Path(__file__).resolve().parents[2] / "target/debug/berth")
REGION = "us-east-1"
ECS_TARGET = "AmazonEC2ContainerServiceV20141113"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unclaimed_port():
    """A port below the kernel's ephemeral range, free on every address now: no outgoing
    connection of another test can take it before the agent binds it (free_port's can: a
    metadata endpoint once found its port taken on 169.254.170.2 that way)."""
    first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(max(1024, first - 12000), first)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


def free_ports(n):
    """`n` distinct free ports: each socket stays bound until all are chosen (ports picked one
    at a time can come back twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Berth:
    """One `berth up` process and the data dir it owns (kept across restarts)."""

    def __init__(self, data_dir, extra_args=("--runtime", "none")):
        """`extra_args` defaults to no local agent; agent tests pass `--runtime docker`."""
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.output = ""
        self.access_key = self.secret_key = None

    def start(self):
        # Berth's DNS server only where a test asks for one at an address of its own: by default
        # it would take 169.254.169.253:53, which one process of the machine can have.
        dns = [] if "--dns-address" in self.extra_args else ["--dns-address", "off"]
        # A local agent's task metadata endpoint on a port of its own unless the test says
        # otherwise: by default (`auto`) the first agent takes port 80 and keeps it across its
        # restarts only if no agent of another test took it in between.
        runtime = self.extra_args[self.extra_args.index("--runtime") + 1] if "--runtime" in self.extra_args else "docker"
        metadata = []
        if runtime != "none" and "--task-metadata-port" not in self.extra_args:
            self.metadata_port = getattr(self, "metadata_port", None) or unclaimed_port()
            metadata = ["--task-metadata-port", str(self.metadata_port)]
        args = [BIN, "up", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}", *dns,
                *metadata, *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"berth exited early:\n{''.join(lines)}")
            lines.append(line)
            m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_DEFAULT_REGION=(\S+)", line)
            if m:
                self.output = "".join(lines)
                dns = re.search(r"^  dns       (\S+):(\d+) ", self.output, re.M)
                self.dns = (dns.group(1), int(dns.group(2))) if dns else None
                assert m.group(1) == self.endpoint
                self.access_key, self.secret_key = m.group(2), m.group(3)
                self._keep_log(self.proc, self.output)
                return self
        raise RuntimeError(f"berth did not print its export line in time:\n{''.join(lines)}")

    def _keep_log(self, proc, head):
        """Copies what the process writes from now on into `DATA_DIR.log` beside its data dir: read
        by nobody, the pipe would fill and block the server's next log line; kept, it is the
        evidence of a failed test."""
        log = open(self.data_dir.with_name(self.data_dir.name + ".log"), "a")
        log.write(head)

        def copy():
            with log:
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
        threading.Thread(target=copy, daemon=True).start()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def env(self):
        """Environment for the AWS CLI, as the quickstart tells users to set it (the export line
        `berth up` prints)."""
        env = dict(os.environ)
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_DISABLE_HOST_PREFIX_INJECTION="true",
            AWS_PAGER="",
        )
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        return env

    def client(self, service="ecs", region=REGION, access_key=None, secret_key=None):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def cli(self, *args, check=True):
        """Runs `aws ...` and returns parsed JSON output (or the CompletedProcess when check=False)."""
        p = subprocess.run(["aws", *args, "--output", "json"], env=self.env(), capture_output=True, text=True, timeout=60)
        if not check:
            return p
        assert p.returncode == 0, f"aws {' '.join(args)} failed: {p.stderr}"
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def raw(self, operation, body, sign=True, secret_key=None, date=None, target_prefix=ECS_TARGET, region=REGION):
        """Sends a hand-made AWS JSON request; returns (status, headers, parsed body)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{target_prefix}.{operation}"}
        request = botocore.awsrequest.AWSRequest(method="POST", url=self.endpoint + "/", data=data, headers=headers)
        if sign:
            creds = botocore.credentials.Credentials(self.access_key, secret_key or self.secret_key)
            signer = botocore.auth.SigV4Auth(creds, "ecs", region)
            if date is not None:
                # Sign as if at `date` (a datetime): SigV4Auth reads the clock via datetime.
                import botocore.auth as auth_mod

                real = auth_mod.datetime.datetime

                class Fixed(real):
                    @classmethod
                    def utcnow(cls):
                        return date

                    @classmethod
                    def now(cls, tz=None):
                        return date if tz is None else date.replace(tzinfo=tz)

                auth_mod.datetime.datetime = Fixed
                try:
                    signer.add_auth(request)
                finally:
                    auth_mod.datetime.datetime = real
            else:
                signer.add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"{}")


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's reference registry (CNCF distribution) on a loopback port, holding the
    busybox test image built by tests/fixtures/make_image.py; yields the image reference."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        layout = root / "image"
        subprocess.run(["python3", str(FIXTURES / "make_image.py"), str(layout)], check=True, capture_output=True)
        image = f"127.0.0.1:{port}/busybox:latest"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{image}"],
                       check=True, capture_output=True)
        yield image
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory):
    """The busybox test image as an OCI layout (tests/fixtures/make_image.py)."""
    out = tmp_path_factory.mktemp("busybox") / "layout"
    subprocess.run(["python3", str(FIXTURES / "make_image.py"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3-compatible server (from the venv) on a loopback port; yields its endpoint."""
    binary = shutil.which("moto_server")
    assert binary, "moto_server is not installed: tests/requirements.txt brings it (scripts/test installs it)"
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=1)
                break
            except OSError:
                assert time.time() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stop_processes(procs, timeout=20):
    """SIGTERM to every process, then waits for each (SIGKILL after `timeout` s)."""
    procs = list(procs)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def remove_containers_of(instance_arn):
    """Removes every container the agent of `instance_arn` created (test teardown)."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.berth.container-instance={instance_arn}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def start_agent_berth(data_dir, driver, *extra_args):
    b = Berth(data_dir, extra_args=("--runtime", driver, "--reserved-memory", "0", *extra_args)).start()
    assert f"({driver})" in b.output, b.output
    b.driver = driver
    return b


def task_ids(client):
    """The ids of every task the installation still knows, in every cluster: their cgroups are
    named by them."""
    ids = set()
    for cluster in client.list_clusters()["clusterArns"]:
        for status in ("RUNNING", "STOPPED"):
            paginator = client.get_paginator("list_tasks")
            for page in paginator.paginate(cluster=cluster, desiredStatus=status):
                ids.update(arn.rsplit("/", 1)[1] for arn in page["taskArns"])
    return ids


def remove_empty_task_cgroups(ids):
    """rmdir of the empty cgroups of these tasks (rmdir refuses cgroups that still hold
    processes). Only a test's own tasks: other tests may be starting or removing theirs
    meanwhile, so the walk looks only where task cgroups live (`berth-tasks` at the root of
    the v2 hierarchy or of each v1 one) and takes a vanished directory as removed."""
    for task in task_cgroups(ids):
        try:
            children = [c for c in task.iterdir() if c.is_dir()]
        except OSError:
            continue
        for child in children:
            try:
                child.rmdir()
            except OSError:
                pass
        try:
            task.rmdir()
        except OSError:
            pass


def stop_agent_berth(b, data_dir):
    client = b.client()
    instance = client.list_container_instances()["containerInstanceArns"][0]
    ids = task_ids(client)
    stop_live_tasks(client)
    b.stop()
    remove_containers_of(instance)
    remove_oci_containers(data_dir)
    remove_empty_task_cgroups(ids)


ROUTER_NETNS = "berth-vpc"


def bridge_of(subnet_id):
    """The bridge of a subnet in the router namespace."""
    return "bsn-" + subnet_id.split("-", 1)[1][-11:]


# The VPC blocks of tests whose agents attach awsvpc tasks: one per `berth up` at a time, so that
# tests running at once (in any xdist worker) never give two bridges one subnet.
VPC_POOL = [f"10.{n}.0.0/16" for n in range(208, 224)]
VPC_POOL_ROUTE = "10.208.0.0/12"


@contextlib.contextmanager
def host_lease(kind, candidates, timeout=600):
    """The first of `candidates` (strings) no other test holds, for as long as the context lasts:
    a lock file per candidate under the machine's temp dir, taken with flock (the kernel lets go
    should the worker die). For what every test running at once must not share on this machine."""
    locks = Path(tempfile.gettempdir()) / f"berth-e2e-{kind}"
    locks.mkdir(exist_ok=True)
    deadline = time.time() + timeout
    while True:
        for candidate in candidates:
            f = open(locks / (candidate.replace("/", "_") + ".lock"), "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield candidate
            finally:
                f.close()
            return
        assert time.time() < deadline, f"no {kind} came free in {timeout} s"
        time.sleep(0.5)


def vpc_block():
    return host_lease("vpc-block", VPC_POOL)


@contextlib.contextmanager
def vpc_agent_berth(data_dir, driver, *extra_args):
    """`berth up` with its local agent and a default VPC of a block of its own (`b.vpc_cidr`,
    from vpc_block); afterwards the bridges and host routes of the block's subnets are removed
    with the rest."""
    with vpc_block() as block:
        b = start_agent_berth(data_dir, driver, "--vpc-cidr", block, *extra_args)
        b.vpc_cidr = block
        try:
            yield b
        finally:
            try:
                subnets = b.client("ec2").describe_subnets()["Subnets"]
            except Exception:  # the server may be gone already; the routes are still ours to remove
                subnets = []
            stop_agent_berth(b, data_dir)
            for s in subnets:
                if s["CidrBlock"].startswith(block.split(".0.0/")[0] + "."):
                    subprocess.run(["ip", "-n", ROUTER_NETNS, "link", "del", bridge_of(s["SubnetId"])],
                                   capture_output=True)
                    subprocess.run(["ip", "route", "del", s["CidrBlock"]], capture_output=True)


@pytest.fixture(params=["docker", "oci"])
def agent_berth(tmp_path, request):
    """`berth up` with its local agent, once per runtime driver: the same tests for both."""
    b = start_agent_berth(tmp_path / "data", request.param)
    yield b
    stop_agent_berth(b, tmp_path / "data")


def task_cgroups(ids):
    """The cgroup directories of these tasks, in every hierarchy (`berth-tasks/ID`)."""
    root = Path("/sys/fs/cgroup")
    parents = [root / "berth-tasks", *root.glob("*/berth-tasks")]
    return [parent / i for parent in parents for i in ids if (parent / i).is_dir()]


def kill_task_processes(ids):
    """SIGKILL to every process in these tasks' cgroups (a test's own tasks, at its teardown)."""
    for group in task_cgroups(list(ids)):
        for procs in group.rglob("cgroup.procs"):
            try:
                pids = procs.read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass


def stop_live_tasks(client, timeout=60):
    """Stops every task still wanted running, in every cluster, and waits for them to stop: their
    agent takes down their interfaces and firewall rules, which live in Berth's router namespace
    and would outlast the process (and could meet a later test's addresses)."""
    live = []
    try:
        for cluster in client.list_clusters()["clusterArns"]:
            for page in client.get_paginator("list_tasks").paginate(cluster=cluster):
                for arn in page["taskArns"]:
                    client.stop_task(cluster=cluster, task=arn)
                    live.append((cluster, arn))
        # Their containers would get their whole stopTimeout (30 s by default) to answer SIGTERM,
        # which a shell or busybox httpd as PID 1 never does: the test is over, so kill them.
        kill_task_processes(arn.rsplit("/", 1)[1] for _, arn in live)
        deadline = time.time() + timeout
        while live and time.time() < deadline:
            live = [(c, a) for c, a in live
                    if client.describe_tasks(cluster=c, tasks=[a])["tasks"][0]["lastStatus"] != "STOPPED"]
            time.sleep(0.2)
    except Exception as e:  # the server may be gone already; the rest of the cleanup still runs
        print(f"stopping the live tasks: {e}")


OCI_BRIDGE_LEASES = Path("/run/berth/berth0-leases")


def kill_cgroup(path):
    """Kills every process of cgroup `path` (in each hierarchy) and removes its directories."""
    dirs = [h / path.lstrip("/") for h in Path("/sys/fs/cgroup").iterdir() if (h / path.lstrip("/")).is_dir()]
    for _ in range(100):
        pids = {p for d in dirs for p in (d / "cgroup.procs").read_text().split()}
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.02)
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def remove_oci_containers(data_dir):
    """Removes what the oci driver of `data_dir` left: runtime containers, the tasks' namespace
    holders and rootfs mounts."""
    holders = Path(data_dir) / "agent" / "oci" / "holders"
    for d in holders.glob("*") if holders.exists() else []:
        subprocess.run(["runc", "delete", "-f", d.name], capture_output=True)
        subprocess.run(["umount", "-l", str(d / "shm")], capture_output=True)
    containers = Path(data_dir) / "agent" / "oci" / "containers"
    for d in containers.glob("*") if containers.exists() else []:
        # A FARGATE container may run under runsc, which keeps its own state.
        if shutil.which("runsc"):
            subprocess.run(["runsc", "delete", "--force", d.name], capture_output=True)
        subprocess.run(["runc", "delete", "-f", d.name], capture_output=True)
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        # Berth's own runtime keeps no state of its own: its container is its cgroup's processes.
        if meta.get("runtime") == "berth":
            kill_cgroup(meta["cgroups_path"])
        subprocess.run(["umount", "-l", str(d / "rootfs")], capture_output=True)
        # A task that shares only its network has a named namespace for its holder.
        if meta.get("holder") and (Path("/run/netns") / meta["holder"]).exists():
            subprocess.run(["ip", "netns", "del", meta["holder"]], capture_output=True)
        attachment = meta.get("attachment")
        if attachment:
            subprocess.run(["ip", "netns", "del", attachment["netns"]], capture_output=True)
            subprocess.run(["ip", "link", "del", attachment["veth"]], capture_output=True)
            # Its bridge address, leased machine-wide (the agent gives it back when it removes
            # the container itself).
            lease = OCI_BRIDGE_LEASES / attachment["address"]
            with contextlib.suppress(OSError):
                if lease.read_text() == attachment["netns"]:
                    lease.unlink()


# The VPC blocks tests use: the default one (API-only tests register load balancer targets in
# it, and no subnet bridge serves it when no agent runs) and the container tests' own. Each
# subnet a running agent serves gets a more specific route to Berth's router; what no subnet
# route covers must never leave the machine through its default route (a load balancer's
# health check to an address whose task is gone, a teardown that removed a route early).
TEST_VPC_BLOCKS = ["172.31.0.0/16", VPC_POOL_ROUTE]


@pytest.fixture(scope="session", autouse=True)
def vpc_blocks_stay_local():
    for block in TEST_VPC_BLOCKS:
        subprocess.run(["ip", "route", "replace", "blackhole", block], check=True)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory):
    """A real 3-member etcd cluster on loopback (etcd_helpers.py), one per test worker; each
    test keeps its state under a namespace of its own."""
    from etcd_helpers import EtcdCluster
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def berth(tmp_path):
    b = Berth(tmp_path / "data").start()
    yield b
    b.stop()


@pytest.fixture
def ecs(berth):
    return berth.client()


# Tests that share something of the machine and run one at a time, by the xdist group
# (`scripts/test` runs `--dist loadgroup`) they run in; every other test runs beside any other:
# each has its own ports, data dir, task cgroups and namespaces, VPC block (vpc_block) and
# bridge addresses (leased machine-wide by the oci driver).
# - hosts-net: the `bth-hosts` bridge and its addresses (hosts_helpers.py);
# - metadata-80: agents taking the task metadata endpoint's port 80 (`auto`) and restarting;
# - public-net: the router's public link (`bpub0`, one per machine).
SERIAL_GROUPS = {"test_hosts.py": "hosts-net", "test_production_layout.py": "hosts-net",
                 "test_task_metadata.py": "metadata-80", "test_public_ip.py": "public-net"}


# Before xdist's own hook, which turns the marker into the `@group` suffix that `loadgroup`
# schedules by: run after it, the marker came too late and the groups were silently ignored.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        group = SERIAL_GROUPS.get(Path(str(item.fspath)).name)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
