"""Public addresses (`assignPublicIp: ENABLED`) on real agents, once per runtime driver: a
network namespace the test makes stands for the network outside the machine (a LAN with its
router, and a host beyond it), joined to the host by a veth pair whose host end is the agent's
`--public-interface`. A FARGATE task with a public address answers there at that address,
reaches the host beyond the router from it, is reached at it by another task (hairpin) and by
the host; its security groups apply; the address survives a restart of `berth up` and goes back
to the block when the task stops.

The outside network's addresses come from the test VPC pool (conftest.host_lease), which is
blackholed on the host: nothing of it leaves the machine. Only one test at a time makes the
router's public link (there is one per machine), so the file's tests run one at a time
(conftest.SERIAL_GROUPS)."""

import contextlib
import os
import subprocess
import sys

import pytest

from conftest import BIN, ROUTER_NETNS, VPC_POOL, host_lease, vpc_agent_berth
from ecs_helpers import expect_error, wait_task
from test_awsvpc import HTTPD, details, reachable, until
from test_fargate import web_network

# Beside the web server, a container that calls the host beyond the outside router, and one
# that calls the address in PEER (another task's public address) when it is set.
CALL_OUT = "until wget -q -O /dev/null http://$OUTSIDE_HOST:8080/; do sleep 0.2; done; exit 42"
CALL_PEER = ('[ -z "$PEER" ] && exit 0; '
             "until wget -q -O /dev/null http://$PEER/; do sleep 0.2; done; exit 42")

# Answers every GET with 200 and appends the caller's address to the file in argv[1].
RECORDER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[1], "a") as f:
            f.write(self.client_address[0] + "\\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[2], 8080), H).serve_forever()
"""

# GETs argv[1] from source address argv[2], printing the status and body.
OUTSIDE_GET = """
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=2, source_address=(sys.argv[2], 0))
c.request("GET", "/"); r = c.getresponse(); print(r.status, r.read().decode().strip())
"""


class Outside:
    """The outside network: namespace `ns`, the LAN `lan` with its router at `gateway`, the
    block `pool` set aside for the machine's public addresses, and `far` (a host beyond the
    router, on the namespace's loopback)."""

    def __init__(self, block, tmp_path):
        prefix = ".".join(block.split(".")[:2])
        self.ns = f"bt-out-{os.getpid()}"
        self.link = f"btpub{os.getpid() % 100000}"
        self.gateway, self.pool, self.far = f"{prefix}.0.1", f"{prefix}.0.16/28", f"{prefix}.200.1"
        self.calls = tmp_path / "outside-calls"
        self.calls.write_text("")
        self.server = None

    def inside(self, *command):
        """`command` run in the namespace (nsenter runs it in its own process: killing it ends it)."""
        return ["nsenter", f"--net=/run/netns/{self.ns}", *command]

    def ip(self, *args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def start(self):
        self.ip("netns", "add", self.ns)
        self.ip("link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        self.ip("link", "set", self.link, "up")
        self.ip("-n", self.ns, "addr", "add", f"{self.gateway}/24", "dev", "eth0")
        self.ip("-n", self.ns, "addr", "add", f"{self.far}/32", "dev", "lo")
        self.ip("-n", self.ns, "link", "set", "eth0", "up")
        self.ip("-n", self.ns, "link", "set", "lo", "up")
        self.server = subprocess.Popen(self.inside(sys.executable, "-c", RECORDER, str(self.calls), self.far))
        return self

    def get(self, address, source=None):
        """(status, body) of GET http://address/ from the outside (from `far` by default), or
        None when nothing answers."""
        out = subprocess.run(self.inside(sys.executable, "-c", OUTSIDE_GET, address, source or self.far),
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None
        status, body = out.stdout.split(" ", 1)
        return int(status), body.strip()

    def callers(self):
        return set(self.calls.read_text().split())

    def stop(self):
        if self.server:
            self.server.kill()
            self.server.wait()
        # The veth pair goes with the namespace, and the router's public link (a macvlan of the
        # host end) with the pair.
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        subprocess.run(["ip", "route", "del", self.pool], capture_output=True)


@contextlib.contextmanager
def outside_network(tmp_path):
    with host_lease("vpc-block", VPC_POOL) as block:
        outside = Outside(block, tmp_path)
        try:
            yield outside.start()
        finally:
            outside.stop()


@pytest.fixture(params=["docker", "oci"])
def public_berth(tmp_path, request):
    with outside_network(tmp_path) as outside:
        args = ("--public-cidr", outside.pool, "--public-interface", outside.link, "--public-gateway",
                outside.gateway)
        with vpc_agent_berth(tmp_path / "data", request.param, *args) as b:
            b.outside = outside
            yield b


def definition(ecs, image, outside):
    ecs.register_task_definition(
        family="public", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[
            {"name": "web", "image": image, "essential": True, "command": ["sh", "-c", HTTPD],
             "portMappings": [{"containerPort": 80}]},
            {"name": "out", "image": image, "essential": False, "command": ["sh", "-c", CALL_OUT],
             "environment": [{"name": "OUTSIDE_HOST", "value": outside.far}]},
            {"name": "peer", "image": image, "essential": False, "command": ["sh", "-c", CALL_PEER]},
        ])


def exit_code(ecs, arn, container):
    task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    return next(c for c in task["containers"] if c["name"] == container).get("exitCode")


def public_link_addresses():
    out = subprocess.run(["ip", "-n", ROUTER_NETNS, "-o", "-4", "addr", "show", "dev", "bpub0"],
                         capture_output=True, text=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def test_a_public_address_reaches_and_is_reached_from_outside(public_berth, registry):
    b, outside = public_berth, public_berth.outside
    ecs, ec2 = b.client(), b.client("ec2")
    public = web_network(ec2)
    public["awsvpcConfiguration"]["assignPublicIp"] = "ENABLED"
    group = public["awsvpcConfiguration"]["securityGroups"][0]
    web = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    definition(ecs, registry, outside)

    with expect_error("InvalidParameterException", "Assign public IP is not supported for this launch type."):
        ecs.run_task(taskDefinition="public", launchType="EC2", networkConfiguration=public)

    first = ecs.run_task(taskDefinition="public", launchType="FARGATE", networkConfiguration=public)
    arn = first["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "RUNNING")
    d = details(task)[1]
    address, private = d["publicIPv4Address"], d["privateIPv4Address"]
    assert address.startswith(outside.pool.rsplit(".", 1)[0] + "."), d
    interface = ec2.describe_network_interfaces(NetworkInterfaceIds=[d["networkInterfaceId"]])["NetworkInterfaces"][0]
    assert interface["Association"]["PublicIp"] == address
    found = ec2.describe_network_interfaces(Filters=[{"Name": "association.public-ip", "Values": [address]}])
    assert [i["NetworkInterfaceId"] for i in found["NetworkInterfaces"]] == [d["networkInterfaceId"]]

    # Reached from beyond the outside router and from the LAN, at its public address.
    until("the task answers from outside", lambda: outside.get(address) == (200, "hello"))
    assert outside.get(address, source=outside.gateway) == (200, "hello")
    # Its calls out leave with its public address, never its private one.
    until("the task's call reached the outside host", lambda: exit_code(ecs, arn, "out") == 42)
    assert address in outside.callers() and private not in outside.callers(), outside.callers()
    # The host reaches it there too.
    until("the host reaches the public address", lambda: reachable(address))
    assert address in public_link_addresses()

    # Another task reaches it at its public address (hairpin through the router).
    second = ecs.run_task(taskDefinition="public", launchType="FARGATE", networkConfiguration=public,
                          overrides={"containerOverrides": [
                              {"name": "peer", "environment": [{"name": "PEER", "value": address}]}]})
    other = second["tasks"][0]["taskArn"]
    other_address = details(wait_task(ecs, other, "RUNNING"))[1]["publicIPv4Address"]
    assert other_address != address
    until("the second task reached the first's public address", lambda: exit_code(ecs, other, "peer") == 42)
    until("the second task answers from outside", lambda: outside.get(other_address) == (200, "hello"))

    # Its security groups apply to what comes from outside, also when they change.
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[web])
    until("revoking port 80 closes it to the outside", lambda: outside.get(address) is None)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[web])
    until("authorizing opens it again", lambda: outside.get(address) == (200, "hello"))

    # A restarted `berth up` keeps the address and its mapping.
    b.restart()
    ecs = b.client()
    assert details(ecs.describe_tasks(tasks=[arn])["tasks"][0])[1]["publicIPv4Address"] == address
    until("the task answers from outside after the restart", lambda: outside.get(address) == (200, "hello"))

    # Stopped: the address leaves the public link and stops answering.
    ecs.stop_task(task=arn)
    wait_task(ecs, arn, "STOPPED")
    assert address not in public_link_addresses()
    assert outside.get(address) is None
    assert outside.get(other_address) == (200, "hello"), "the other task is untouched"
    ecs.stop_task(task=other)
    wait_task(ecs, other, "STOPPED")
    assert public_link_addresses() == set()


@pytest.mark.parametrize("args, message", [
    (("--public-cidr", "10.0.0.1/24", "--public-interface", "lo"), "--public-cidr 10.0.0.1/24: expected a block"),
    (("--public-cidr", "10.0.0.0/31", "--public-interface", "lo"), "--public-cidr 10.0.0.0/31: expected a block"),
    (("--public-cidr", "10.0.0.0/24", "--public-interface", "bt-nosuch0", "--public-gateway", "10.1.0.1"),
     "the public interface bt-nosuch0 does not exist"),
    (("--public-cidr", "10.0.0.0/24", "--public-interface", "lo"), "has no default route through it"),
    (("--public-cidr", "10.0.0.0/24", "--public-interface", "lo", "--public-gateway", "10.0.0.9"),
     "--public-gateway 10.0.0.9 is inside --public-cidr 10.0.0.0/24"),
    (("--public-cidr", "10.0.0.0/24"), "--public-interface"),
    (("--public-gateway", "10.0.0.1"), "--public-cidr"),
])
def test_public_settings_that_cannot_work_are_refused_at_start(tmp_path, args, message):
    out = subprocess.run([BIN, "up", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
                          "--runtime", "oci", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out
    assert message in out.stderr + out.stdout, out
