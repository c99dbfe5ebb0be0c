"""What the agent's task runner acts on beyond the container spec, on real containers (once per
runtime driver): container restart policies and `startTimeout`; and how an agent ends when its
container instance is deregistered."""

import subprocess

import pytest

from conftest import BIN, Berth
from ecs_helpers import until


def run(ecs, family, containers, volumes=None):
    kwargs = {"family": family, "containerDefinitions": containers}
    if volumes:
        kwargs["volumes"] = volumes
    ecs.register_task_definition(**kwargs)
    resp = ecs.run_task(taskDefinition=family)
    assert not resp.get("failures"), resp["failures"]
    return resp["tasks"][0]["taskArn"]


def describe(ecs, arn):
    return ecs.describe_tasks(tasks=[arn])["tasks"][0]


def status_is(ecs, arn, status):
    task = describe(ecs, arn)
    return task if task["lastStatus"] == status else None


def sh(name, image, script, **extra):
    return {"name": name, "image": image, "memory": 32, "command": ["sh", "-c", script], **extra}


def test_restart_policy_restarts_in_place_unless_ignored_or_too_soon(agent_berth, registry, tmp_path):
    """ECS semantics: a container exiting with a code not ignored, after running at least
    restartAttemptPeriod (60 s, ECS's minimum), is started again in place and the task stays
    RUNNING; an ignored exit code, or a container that ran less than the period, stops the task."""
    ecs = agent_berth.client()
    runs = tmp_path / "runs"
    runs.mkdir()
    volumes = [{"name": "runs", "host": {"sourcePath": str(runs)}}]
    # Each run appends a line; the first exits with 3 after 61 s, the second keeps running.
    script = "echo run >> /runs/log; [ $(grep -c run /runs/log) -ge 2 ] && exec sleep 3600; sleep 61; exit 3"
    again = sh("main", registry, script, mountPoints=[{"sourceVolume": "runs", "containerPath": "/runs"}],
               restartPolicy={"enabled": True, "restartAttemptPeriod": 60})
    ignored = sh("main", registry, "sleep 61; exit 0",
                 restartPolicy={"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 60})
    fast = sh("main", registry, "exit 1", restartPolicy={"enabled": True, "restartAttemptPeriod": 60})
    arns = {"fast": run(ecs, "fast", [fast]), "again": run(ecs, "again", [again], volumes),
            "ignored": run(ecs, "ignored", [ignored])}

    task = until(lambda: status_is(ecs, arns["fast"], "STOPPED"), timeout=60, what="the fast-failing task to stop")
    assert (task["stopCode"], task["containers"][0]["exitCode"]) == ("EssentialContainerExited", 1), task
    first = until(lambda: status_is(ecs, arns["again"], "RUNNING"), timeout=60, what="the restarting task to run")
    runtime_id = first["containers"][0]["runtimeId"]

    task = until(lambda: status_is(ecs, arns["ignored"], "STOPPED"), timeout=120, what="the ignored exit to stop its task")
    assert (task["stopCode"], task["containers"][0]["exitCode"]) == ("EssentialContainerExited", 0), task
    until(lambda: (runs / "log").read_text().count("run") == 2, timeout=90, what="a second run of the container")
    task = describe(ecs, arns["again"])
    assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "RUNNING"), task
    container = task["containers"][0]
    assert (container["lastStatus"], container["runtimeId"]) == ("RUNNING", runtime_id), "restarted in place"
    ecs.stop_task(task=arns["again"])
    until(lambda: status_is(ecs, arns["again"], "STOPPED"), timeout=60, what="the restarted task to stop")


def test_start_timeout_gives_up_on_a_dependency(agent_berth, registry):
    """`startTimeout` of a dependency bounds how long a container waits for it to become
    HEALTHY: past it, the dependent never starts and the task stops."""
    ecs = agent_berth.client()
    db = sh("db", registry, "exec sleep 3600", startTimeout=3, stopTimeout=2,
            healthCheck={"command": ["CMD-SHELL", "exit 1"], "interval": 5, "retries": 10})
    app = sh("app", registry, "exec sleep 3600", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])
    arn = run(ecs, "patient", [db, app])
    task = until(lambda: status_is(ecs, arn, "STOPPED"), timeout=60, what="the task to give up")
    assert task["stopCode"] == "TaskFailedToStart", task
    assert task["stoppedReason"].startswith(
        "CannotStartContainerError: container app gave up waiting for db to reach HEALTHY"), task["stoppedReason"]
    app_state = next(c for c in task["containers"] if c["name"] == "app")
    assert "exitCode" not in app_state, "app never ran"
    assert "startedAt" not in task


@pytest.fixture
def server(tmp_path):
    """A control plane without a local agent; agents poll it every 2 s at most."""
    b = Berth(tmp_path / "server", extra_args=("--runtime", "none", "--agent-timeout", "4")).start()
    yield b
    b.stop()


def test_a_deregistered_agent_stops(server, tmp_path):
    """The assignment channel answers InactiveInstanceException once the instance is
    deregistered, and `berth agent` ends with an error saying so."""
    agent = subprocess.Popen([BIN, "agent", "--server", server.endpoint, "--access-key", server.access_key,
                              "--secret-key", server.secret_key, "--state-dir", str(tmp_path / "agent"),
                              "--runtime", "docker", "--reserved-memory", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ecs = server.client()
        arn = until(lambda: ecs.list_container_instances()["containerInstanceArns"], what="the agent to register")[0]
        ecs.deregister_container_instance(containerInstance=arn, force=True)
        out, err = agent.communicate(timeout=30)
        assert agent.returncode != 0
        assert f"the container instance {arn} was deregistered" in err, err
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
