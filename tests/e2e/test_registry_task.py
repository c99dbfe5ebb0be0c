"""The whole path of issue 5: create a repository, push an image to Berth's own registry,
and run a task of it with the local agent (on both runtime drivers), which pulls with an
ECR token as the ECS agent does."""

import json
import subprocess
import time

from test_registry import busybox_layout, skopeo  # noqa: F401 (fixture)


def test_a_task_runs_an_image_pushed_to_berth(agent_berth, busybox_layout):  # noqa: F811
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
    deadline = time.time() + 90
    while time.time() < deadline:
        task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
        if task["lastStatus"] == "STOPPED":
            break
        time.sleep(0.3)
    assert task["lastStatus"] == "STOPPED", task
    assert task["containers"][0].get("exitCode") == 7, json.dumps(task, default=str)
    assert task["stopCode"] == "EssentialContainerExited"
