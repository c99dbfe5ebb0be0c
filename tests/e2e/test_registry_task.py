"""The whole path of issue 5: create a repository, push an image to Berth's own registry,
and run a task of it with the local agent (on both runtime drivers), which pulls with an
ECR token as the ECS agent does."""

import json
import subprocess

from conftest import Berth
from ecs_helpers import wait_task
from registry_helpers import login_password, skopeo


def test_a_task_runs_an_image_pushed_to_berth(agent_berth, busybox_layout):
    b = agent_berth
    host = b.endpoint.removeprefix("http://")
    repo = b.cli("ecr", "create-repository", "--repository-name", "web")["repository"]
    assert repo["repositoryUri"] == f"{host}/web"
    p = b.cli("ecr", "get-login-password", check=False)
    assert p.returncode == 0, p.stderr
    password = p.stdout.strip()
    skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"AWS:{password}",
           f"oci:{busybox_layout}:latest", f"docker://{repo['repositoryUri']}:1")
    # The agent's driver must not find the image cached: it has to pull it from Berth.
    subprocess.run(["docker", "rmi", f"{repo['repositoryUri']}:1"], capture_output=True)
    ecs = b.client()
    ecs.register_task_definition(family="pushed", containerDefinitions=[
        {"name": "main", "image": f"{repo['repositoryUri']}:1", "memory": 32,
         "command": ["sh", "-c", "cat /www/index.html; exit 7"]}])
    arn = ecs.run_task(taskDefinition="pushed")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED", timeout=90)
    assert task["containers"][0].get("exitCode") == 7, json.dumps(task, default=str)
    assert task["stopCode"] == "EssentialContainerExited"


def test_repository_credentials_pull_from_a_private_registry(agent_berth, busybox_layout, tmp_path):
    """`repositoryCredentials` names a secret; the agent reads it from its secrets dir and pulls
    with it. The private registry is a second Berth, whose registry wants a token."""
    other = Berth(tmp_path / "other").start()
    uri = None
    try:
        uri = other.cli("ecr", "create-repository", "--repository-name", "private")["repository"]["repositoryUri"]
        password = login_password(other)
        skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"AWS:{password}",
               f"oci:{busybox_layout}:latest", f"docker://{uri}:1")
        subprocess.run(["docker", "rmi", f"{uri}:1"], capture_output=True)
        secrets = agent_berth.data_dir / "agent" / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        (secrets / "regcreds").write_text(json.dumps({"username": "AWS", "password": password}))
        ecs = agent_berth.client()
        main = {"name": "main", "image": f"{uri}:1", "memory": 32, "command": ["sh", "-c", "exit 5"]}
        secret_arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"
        for family, creds in [("nocreds", None), ("missing", secret_arn + "nope"), ("creds", secret_arn + "regcreds")]:
            container = {**main, "repositoryCredentials": {"credentialsParameter": creds}} if creds else main
            ecs.register_task_definition(family=family, containerDefinitions=[container])
        # Without credentials, and with a secret that is not there, the pull fails...
        task = wait_task(ecs, ecs.run_task(taskDefinition="nocreds")["tasks"][0]["taskArn"], timeout=90)
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("CannotPullContainerError"), task["stoppedReason"]
        task = wait_task(ecs, ecs.run_task(taskDefinition="missing")["tasks"][0]["taskArn"], timeout=90)
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth"), task
        # ...and with the secret it runs.
        task = wait_task(ecs, ecs.run_task(taskDefinition="creds")["tasks"][0]["taskArn"], timeout=90)
        assert task["containers"][0].get("exitCode") == 5, json.dumps(task, default=str)
        assert task["stopCode"] == "EssentialContainerExited"
    finally:
        other.stop()
        if uri:
            subprocess.run(["docker", "rmi", f"{uri}:1"], capture_output=True)
