"""The README's quickstart, run as written: its shell blocks from the first push through the
Fargate service, in one bash session against `berth up` with the Docker Engine (the README's
agent) and the environment `berth up` tells users to export. Three things differ from a
user's machine, each because other tests share this one: the web task's host port 8080 becomes
a free port (a load balancer test may hold 8080 meanwhile), the default VPC gets the docker
tests' own block, and docker's login and the demo image's layout go to the test's directory.
The quickstart's later blocks (load balancer, blue/green, logs, scaling) are not run here: their
features are tested in their areas' files, not their text."""

import os
import re
import subprocess
from pathlib import Path

from conftest import free_port, vpc_agent_berth

README = Path(__file__).resolve().parents[2] / "README.md"
# The docker tests' block (they run one at a time): test_awsvpc.py's.


def quickstart_blocks():
    """The README's `sh` blocks of its quickstart, up to and including the one that starts the
    Fargate service."""
    text = README.read_text()
    start = text.index("\n## Quickstart with the AWS CLI")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], re.S)
    last = next(i for i, b in enumerate(blocks) if "create-service" in b and "FARGATE" in b)
    return blocks[:last + 1]


def test_the_readme_quickstart_runs_as_written(tmp_path):
    blocks = quickstart_blocks()
    script = "\n".join(blocks)
    assert script.count("8080") == 2, "the web task's port, published and fetched"
    port = free_port()
    script = script.replace("8080", str(port))
    with vpc_agent_berth(tmp_path / "data", "docker") as b:
        env = b.env()
        env.update(DOCKER_CONFIG=str(tmp_path / "docker"), XDG_STATE_HOME=str(tmp_path / "state"))
        run = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=README.parent, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
        out = run.stdout
        # The hello task's end, as the README shows it.
        assert '"stopCode": "EssentialContainerExited"' in out and '"exitCode": 3' in out, out
        # The page from the web task, the awsvpc task and both Fargate tasks.
        assert out.count("hello from berth") == 4, out
        ecs = b.client()
        service = ecs.describe_services(cluster="fargate", services=["web"])["services"][0]
        assert (service["launchType"], service["desiredCount"]) == ("FARGATE", 2)
        assert os.path.exists(tmp_path / "docker" / "config.json"), "docker logged in where the test said"
