"""docs/production.md's layout, run as the document writes it: its PKI script, its etcd
configuration on three control-plane hosts, its server unit and environment on the same three,
and its agent unit on a worker. Each host is a network namespace on this machine
(hosts_helpers.py); the document's 10.0.0.N become 10.250.0.1N, its /etc and /var/lib paths a
temporary directory (/var/lib one per machine, /etc shared: the document copies the same files
to each), and its MinIO moto's S3 server on the test bridge. systemd does not run here: each
unit file is checked with `systemd-analyze verify`, and its ExecStart run with the environment
its Environment and EnvironmentFile lines give. The worker alone gets two settings the
document leaves to their defaults (its state directory, no reserved memory), since the test's
worker shares this machine with others."""

import re
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from conftest import BIN, remove_containers_of, stop_processes
from ecs_helpers import container, until, wait_task
from hosts_helpers import PREFIX, Hosts, log_path, wait_port
from registry_helpers import V2, login_password

DOC = Path(__file__).resolve().parents[2] / "docs" / "production.md"
SERVERS = (1, 2, 3)


def section(heading):
    """The text of docs/production.md from the line starting with `heading` to the next heading."""
    text = DOC.read_text()
    start = text.index("\n" + heading) + 1
    end = text.find("\n#", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def blocks(heading, lang):
    """The fenced `lang` blocks of a section, in order."""
    return re.findall(rf"```{lang}\n(.*?)```", section(heading), re.S)


def assignments(text):
    """KEY=VALUE lines of an environment file."""
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def unit(text):
    """A unit file's [Service] lines as (key, value) pairs, in order."""
    service = text.split("[Service]", 1)[1].split("\n[", 1)[0]
    return [tuple(line.split("=", 1)) for line in service.splitlines() if "=" in line]


class Layout:
    """Where the document's machines and paths are in this test."""

    def __init__(self, base, s3_endpoint):
        self.base, self.s3_endpoint = base, s3_endpoint

    def address(self, n):
        return f"{PREFIX}.1{n}"

    def here(self, text, machine="cp-1"):
        """The document's text with its addresses and paths made this test's, on `machine`."""
        text = text.replace("10.0.0.", f"{PREFIX}.1")
        text = text.replace("http://minio.internal:9000", self.s3_endpoint)
        for path in ("/etc/etcd/", "/etc/berth/"):
            text = text.replace(path, f"{self.base}{path}")
        return text.replace("/var/lib/", f"{self.base}/{machine}/var/lib/")

    def verify(self, text, name):
        """`systemd-analyze verify` of a unit as the document writes it, its binary and files
        where this test keeps them; the unit's text here."""
        text = self.here(text).replace("/usr/local/bin/berth", BIN)
        path = self.base / name
        path.write_text(text)
        p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
        assert (p.returncode, p.stderr.strip()) == (0, ""), f"{name}: {p.stderr}"
        return text

    def run_unit(self, text, host, log, extra_env=()):
        """Starts a unit's ExecStart on `host` with the environment its lines give."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        command = None
        for key, value in unit(text):
            if key == "Environment":
                env.update([value.split("=", 1)])
            elif key == "EnvironmentFile":
                env.update(assignments(Path(value).read_text()))
            elif key == "ExecStart":
                command = value.split()
        env.update(extra_env)
        return subprocess.Popen(Hosts.run(host, command), env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def test_the_documented_layout_runs(registry, tmp_path):
    hosts = Hosts()
    procs, agent, instance = [], None, None
    try:
        moto = shutil.which("moto_server")
        hosts_s3 = f"http://{PREFIX}.1:{9000}"
        procs.append(subprocess.Popen([moto, "-H", f"{PREFIX}.1", "-p", "9000"], stdout=subprocess.DEVNULL,
                                      stderr=open(log_path(tmp_path, "moto"), "w")))
        wait_port(f"{PREFIX}.1", 9000)
        s3 = boto3.client("s3", endpoint_url=hosts_s3, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
        s3.create_bucket(Bucket="berth-blobs")
        layout = Layout(tmp_path, hosts_s3)

        # The PKI, then each file where the document says to copy it.
        pki = tmp_path / "pki"
        pki.mkdir()
        (script,) = blocks("### TLS for etcd", "sh")
        subprocess.run(["bash", "-euc", layout.here(script)], cwd=pki, check=True, capture_output=True)
        for d, files in (("etc/etcd", ["ca.pem"] + [f"cp-{n}.{x}" for n in SERVERS for x in ("pem", "key")]),
                         ("etc/berth", ["ca.pem", "client.pem", "client.key"])):
            (tmp_path / d).mkdir(parents=True)
            for f in files:
                shutil.copy(pki / f, tmp_path / d / f)

        # Three etcd members from the document's environment file, cp-1's changed per machine
        # as it says: the member's name and addresses, not the initial cluster.
        (etcd_env,) = blocks("### etcd (", "sh")
        for n in SERVERS:
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            for key, value in assignments(etcd_env).items():
                if key != "ETCD_INITIAL_CLUSTER":
                    value = value.replace("cp-1", f"cp-{n}").replace("10.0.0.1", f"10.0.0.{n}")
                env[key] = layout.here(value, f"cp-{n}")
            hosts.add(f"cp-{n}", 10 + n)
            procs.append(subprocess.Popen(Hosts.run(f"cp-{n}", [shutil.which("etcd")]), env=env,
                                          stdout=subprocess.DEVNULL, stderr=open(log_path(tmp_path, f"etcd-{n}"), "w")))
        for n in SERVERS:
            wait_port(layout.address(n), 2379)

        # Three servers: the unit, and server.env the same on each but BERTH_LB_ADDRESS.
        server_unit, server_env = blocks("### Berth servers", "ini")[0], blocks("### Berth servers", "sh")[0]
        access_key, secret_key = "BKIAPRODUCTIONDOC001", "production-doc-secret-000000000000000000"
        (tmp_path / "etc/berth/credentials.toml").write_text(
            f'[[credentials]]\naccess_key = "{access_key}"\nsecret_key = "{secret_key}"\n')
        server_unit = layout.verify(server_unit, "berth-server.service")
        assert "BERTH_LB_ADDRESS=10.0.0.1" in server_env
        for n in SERVERS:
            (tmp_path / "etc/berth/server.env").write_text(layout.here(
                server_env.replace("BERTH_LB_ADDRESS=10.0.0.1", f"BERTH_LB_ADDRESS=10.0.0.{n}"), f"cp-{n}"))
            procs.append(layout.run_unit(server_unit, f"cp-{n}", log_path(tmp_path, f"server-{n}")))
            wait_port(layout.address(n), 8600)

        def ecs(n, service="ecs"):
            return boto3.client(service, endpoint_url=f"http://{layout.address(n)}:8600", region_name="us-east-1",
                                aws_access_key_id=access_key, aws_secret_access_key=secret_key)

        # Every server answers every API on one state.
        ecs(1).register_task_definition(family="web", containerDefinitions=[
            container("main", registry, memory=32, command=["sleep", "3600"], stopTimeout=2)])
        assert ecs(3).describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 1
        for n in SERVERS:
            assert list((tmp_path / f"cp-{n}/var/lib/berth").iterdir()), "a server keeps its data in BERTH_DATA_DIR"

        # A worker with the agent's unit and environment file.
        agent_unit = layout.verify(blocks("### Agents", "ini")[0], "berth-agent.service")
        (tmp_path / "etc/berth/agent.env").write_text(f"BERTH_ACCESS_KEY={access_key}\nBERTH_SECRET_KEY={secret_key}\n")
        hosts.add("w-1", 21)
        agent = layout.run_unit(agent_unit, "w-1", log_path(tmp_path, "agent"),
                                {"BERTH_STATE_DIR": str(tmp_path / "w-1"), "BERTH_RESERVED_MEMORY": "0"})
        instance = until(lambda: ecs(2).list_container_instances(cluster="default")["containerInstanceArns"],
                         timeout=60, what="the worker's agent to register")[0]
        task = ecs(3).run_task(taskDefinition="web")["tasks"][0]["taskArn"]
        wait_task(ecs(1), task, "RUNNING")

        # The registry's blobs go to the bucket, and any server serves them.
        class Server:
            """What registry_helpers needs of a server."""

            def __init__(self, n):
                self.n, self.endpoint = n, f"http://{layout.address(n)}:8600"

            def client(self, service, region="us-east-1"):
                return ecs(self.n, service)

        ecs(1, "ecr").create_repository(repositoryName="team/app")
        _, manifest = V2(Server(1), login_password(Server(1))).push_image("team/app", "1", [b"a layer"])
        stored = [o["Key"] for o in s3.list_objects_v2(Bucket="berth-blobs", Prefix="registry/blobs/").get("Contents", [])]
        for d in [manifest["config"]["digest"], manifest["layers"][0]["digest"]]:
            assert f"registry/blobs/sha256/{d.split(':')[1]}" in stored
        r = V2(Server(3), login_password(Server(3)))("GET", f"/v2/team/app/blobs/{manifest['layers'][0]['digest']}")
        assert (r.status_code, r.content) == (200, b"a layer")
        ecs(2).stop_task(task=task)
        wait_task(ecs(2), task, "STOPPED")
    finally:
        stop_processes([agent] if agent else [])
        if instance:
            remove_containers_of(instance)
        stop_processes(reversed(procs), timeout=10)
        hosts.remove()
