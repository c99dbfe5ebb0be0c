"""An agent given several servers of one etcd-backed state (`berth agent --server A --server
B`) goes on running its tasks, and takes new ones, when the server it talked to is killed."""

import subprocess

from conftest import BIN, remove_containers_of, stop_processes
from ecs_helpers import container, register, until, wait_task
from etcd_helpers import KEYS, namespace, on_etcd


def test_an_agent_moves_to_another_server_when_its_server_dies(etcd, registry, tmp_path):
    ns = namespace()
    a = on_etcd(tmp_path / "a", etcd, ns).start()
    b = on_etcd(tmp_path / "b", etcd, ns).start()
    agent = subprocess.Popen([BIN, "agent", "--server", a.endpoint, "--server", b.endpoint, *KEYS,
                              "--state-dir", str(tmp_path / "agent"), "--runtime", "docker", "--reserved-memory", "0"],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "w"))
    instance = None
    try:
        ea, eb = a.client(), b.client()
        instance = until(lambda: eb.list_container_instances()["containerInstanceArns"], what="the agent to register")[0]
        # sleep as PID 1 ignores SIGTERM: a short stopTimeout keeps the stops short.
        register(ea, "sleeper", [container("main", registry, command=["sleep", "3600"], stopTimeout=2)])
        first = ea.run_task(taskDefinition="sleeper")["tasks"][0]["taskArn"]
        wait_task(ea, first, "RUNNING")

        a.kill()
        # The agent's next poll fails against a and goes to b: it takes a new task from b, and
        # its reports about both tasks reach the state through b.
        second = eb.run_task(taskDefinition="sleeper")["tasks"][0]["taskArn"]
        wait_task(eb, second, "RUNNING", timeout=60)
        eb.stop_task(task=first, reason="through b")
        stopped = wait_task(eb, first, "STOPPED", timeout=60)
        assert stopped["stoppedReason"] == "through b"
        assert eb.describe_container_instances(containerInstances=[instance])["containerInstances"][0]["agentConnected"]
        eb.stop_task(task=second)
        wait_task(eb, second, "STOPPED", timeout=60)
    finally:
        stop_processes([agent])
        if instance:
            remove_containers_of(instance)
        a.stop()
        b.stop()
