"""Hosts for multi-machine tests, made on this machine: one network namespace per host, each
with a veth on a test bridge and an address of its own (10.250.0.0/24; the bridge holds
.1). Servers, agents and etcd members run inside them as they would on separate machines;
cutting a host's link is taking its veth down."""

import re
import shutil
import subprocess
import time
from pathlib import Path

from conftest import BIN, Berth

BRIDGE = "bth-hosts"
PREFIX = "10.250.0"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Hosts:
    def __init__(self):
        self.names = []
        ip("link", "del", BRIDGE, check=False)
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{PREFIX}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        # Bridged frames go through iptables here (br_netfilter), where the Docker Engine's
        # FORWARD policy drops them: let the hosts' traffic through.
        subprocess.run(["iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"], check=True)

    def add(self, name, number):
        """Host `name` at 10.250.0.`number`; returns its address."""
        ns, veth = f"bth-{name}", f"bth-{name}-h"
        ip("netns", "del", ns, check=False)
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", veth, "master", BRIDGE, "up")
        ip("-n", ns, "addr", "add", f"{PREFIX}.{number}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        self.names.append(name)
        return f"{PREFIX}.{number}"

    @staticmethod
    def run(name, args):
        """The command line that runs `args` on host `name`: in its network namespace only
        (`ip netns exec` would also mount a /sys without the cgroup tree agents need)."""
        return ["nsenter", f"--net=/var/run/netns/bth-{name}", *args]

    @staticmethod
    def cut(name):
        ip("link", "set", f"bth-{name}-h", "down")

    @staticmethod
    def mend(name):
        ip("link", "set", f"bth-{name}-h", "up")

    def remove(self):
        for name in self.names:
            ip("netns", "del", f"bth-{name}", check=False)
            ip("link", "del", f"bth-{name}-h", check=False)
        ip("link", "del", BRIDGE, check=False)
        subprocess.run(["iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"], capture_output=True)


class HostBerth(Berth):
    """`berth up` (no local agent) on a host: it listens on the host's address."""

    def __init__(self, data_dir, host, address, extra_args):
        super().__init__(data_dir, extra_args)
        self.host = host
        self.address = address
        self.endpoint = f"http://{address}:8600"

    def start(self):
        args = Hosts.run(self.host, [BIN, "up", "--data-dir", str(self.data_dir), "--listen", f"{self.address}:8600",
                                     "--dns-address", "off", "--lb-address", self.address, *self.extra_args])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"berth exited early:\n{''.join(lines)}")
            lines.append(line)
            m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
            if m:
                self.output = "".join(lines)
                assert m.group(1) == self.endpoint, (m.group(1), self.endpoint)
                self.access_key, self.secret_key = m.group(2), m.group(3)
                self._keep_log(self.proc, self.output)
                return self
        raise RuntimeError(f"berth did not print its export line in time:\n{''.join(lines)}")


def start_agent(host, servers, keys, state_dir, log_path, *extra):
    """`berth agent` (docker driver) on `host`, given every server."""
    args = [BIN, "agent", *[a for s in servers for a in ("--server", s)], *keys, "--state-dir", str(state_dir),
            "--runtime", "docker", "--reserved-memory", "0", *extra]
    return subprocess.Popen(Hosts.run(host, args), stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


def etcd_member_args(name, data, client_url, peer_url, initial_cluster):
    return [shutil.which("etcd"), f"--name={name}", f"--data-dir={data}", f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}", f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster={initial_cluster}",
            "--initial-cluster-token=berth-hosts", "--logger=zap", "--log-level=warn", "--heartbeat-interval=50",
            "--election-timeout=500", "--max-txn-ops=10000", "--max-request-bytes=16777216"]


def wait_port(address, port, timeout=30):
    import socket
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            assert time.time() < deadline, f"nothing listened on {address}:{port}"
            time.sleep(0.1)


def log_path(base, name):
    return Path(base) / f"{name}.log"
