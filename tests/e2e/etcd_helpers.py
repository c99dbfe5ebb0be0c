"""A real etcd cluster for the tests of servers that keep their state in etcd: Debian's
`etcd-server`, N members as processes on loopback ports, each with its own data dir."""

import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import Berth, free_ports

# One key pair for every server of a test: credentials are per server (its data dir), the
# state they sign requests against is shared.
KEYS = ("--access-key", "BKIAETCDTESTKEY00001", "--secret-key", "etcd-test-secret-0000000000000000000000000")


def on_etcd(data_dir, etcd, namespace, *extra):
    """A server (no local agent) keeping its state under `namespace` of the etcd cluster."""
    return Berth(data_dir, ("--runtime", "none", *KEYS, "--store", f"etcd://{etcd.hosts}",
                            "--etcd-namespace", namespace, *extra))


def namespace():
    """A fresh key prefix: a Berth state of its own on the shared cluster."""
    return f"test-{secrets.token_hex(4)}/"


class EtcdCluster:
    def __init__(self, base, members=3):
        binary = shutil.which("etcd")
        assert binary, "etcd is not installed: these tests need Debian's etcd-server (scripts/test installs it)"
        self.binary = binary
        self.base = Path(base)
        self.names = [f"m{i}" for i in range(members)]
        # Distinct ports for every member's client and peer URLs (etcd refuses a cluster whose
        # members share one).
        ports = free_ports(2 * members)
        self.client = dict(zip(self.names, ports[:members]))
        self.peer = dict(zip(self.names, ports[members:]))
        self.procs = {}

    def url(self, name):
        return f"http://127.0.0.1:{self.client[name]}"

    @property
    def hosts(self):
        """HOST:PORT of every member, comma separated: what `--store etcd://` takes."""
        return ",".join(f"127.0.0.1:{self.client[n]}" for n in self.names)

    def start_member(self, name, state="new"):
        initial = ",".join(f"{n}=http://127.0.0.1:{self.peer[n]}" for n in self.names)
        data = self.base / name
        args = [
            self.binary, f"--name={name}", f"--data-dir={data}",
            f"--listen-client-urls={self.url(name)}", f"--advertise-client-urls={self.url(name)}",
            f"--listen-peer-urls=http://127.0.0.1:{self.peer[name]}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer[name]}",
            f"--initial-cluster={initial}", f"--initial-cluster-state={state}",
            "--initial-cluster-token=berth-test", "--logger=zap", "--log-level=warn",
            # Short elections: the tests kill members and wait for the rest to go on.
            "--heartbeat-interval=50", "--election-timeout=500",
            # As docs/production.md asks: room for the biggest transactions Berth makes.
            "--max-txn-ops=10000", "--max-request-bytes=16777216",
        ]
        log = open(self.base / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=log)

    def start(self):
        self.base.mkdir(parents=True, exist_ok=True)
        for n in self.names:
            self.start_member(n)
        deadline = time.time() + 30
        while not all(self.healthy(n) for n in self.names):
            assert time.time() < deadline, f"the etcd cluster did not become healthy in 30 s\n{self.report()}"
            time.sleep(0.1)
        return self

    def report(self):
        """Each member's exit status and the end of its log, for a failure message to say why."""
        lines = []
        for n in self.names:
            p = self.procs.get(n)
            status = "not started" if p is None else ("running" if p.poll() is None else f"exited {p.returncode}")
            log = self.base / f"{n}.log"
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            lines.append(f"member {n} (client {self.client[n]}, peer {self.peer[n]}): {status}")
            lines.extend(f"  {line}" for line in tail)
        usage = shutil.disk_usage(self.base)
        lines.append(f"free disk under {self.base}: {usage.free // 2**20} MiB")
        return "\n".join(lines)

    def healthy(self, name):
        try:
            with urllib.request.urlopen(self.url(name) + "/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def kill(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)

    def restart(self, name):
        """Starts a killed member again on its data dir: it rejoins the cluster."""
        self.start_member(name, state="existing")
        deadline = time.time() + 30
        while not self.healthy(name):
            assert time.time() < deadline, f"etcd member {name} did not rejoin in 30 s\n{self.report()}"
            time.sleep(0.1)

    def stop(self):
        for name in list(self.procs):
            self.kill(name)
