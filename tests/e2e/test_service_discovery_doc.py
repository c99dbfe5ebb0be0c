"""docs/service-discovery.md's two-service applications, run as written: its `sh` blocks (the
backend reached by DNS name, then the same through Service Connect) in one bash session
against `berth up` with its agent, with the environment `berth up` tells users to export and
`IMAGE` the test's busybox image. What differs from a user's machine: the DNS server gets a
link-local address of the test's own and forwards to a fake resolver on loopback (no query
leaves the machine), and the default VPC gets the oci tests' block."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, vpc_agent_berth
from dns_helpers import FakeUpstream
from test_servicediscovery_tasks import dns_address

DOC = Path(__file__).resolve().parents[2] / "docs" / "service-discovery.md"


def doc_blocks():
    """The doc's `sh` blocks up to Service Connect's (the later ones configure machines)."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    last = next(i for i, b in enumerate(blocks) if "--service-connect-configuration" in b)
    return blocks[:last + 1]


@pytest.mark.parametrize("driver", ["oci"])
def test_the_documented_applications_run_as_written(tmp_path, driver, registry):
    blocks = doc_blocks()
    assert len(blocks) == 2 and "serviceRegistries" not in blocks[1], "the DNS example, then Service Connect's"
    script = "\n".join(blocks)
    upstream = FakeUpstream({}).start()
    try:
        with dns_address() as ip:
            args = ("--dns-address", f"{ip}:53", "--dns-forwarders", f"127.0.0.1:{upstream.port}")
            with vpc_agent_berth(tmp_path / "data", driver, *args) as b:
                env = b.env()
                # `berth` on the PATH, as installed.
                bindir = tmp_path / "bin"
                bindir.mkdir()
                (bindir / "berth").symlink_to(Path(BIN).resolve())
                env.update(IMAGE=registry, BERTH_DATA_DIR=str(b.data_dir), PATH=f"{bindir}:{env['PATH']}")
                run = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True,
                                     text=True, timeout=600)
                assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
                hellos = re.findall(r"^hello from (\S+)$", run.stdout, re.M)
                # One from the DNS example's client; the caller's from both api tasks.
                assert len(hellos) >= 3, run.stdout
                api_tasks = {t.rsplit("/", 1)[1] for t in b.client().list_tasks(serviceName="api")["taskArns"]}
                assert len(api_tasks) == 2
                # Each container's hostname is its name on the oci driver: both api tasks answered.
                assert set(hellos[1:]) == {f"berth-{t}-web" for t in api_tasks}, run.stdout
    finally:
        upstream.stop()
