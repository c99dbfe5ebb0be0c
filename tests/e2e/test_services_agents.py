"""Services on a real cluster: one `berth up` control plane and three `berth agent` processes
on this machine (zones a, b and c; rack attributes), running real containers through the
Docker Engine. Placement across agents, recovery after a killed container and a killed agent,
a rolling update that never drops below the desired count, and the circuit breaker's
rollback."""

import contextlib
import functools
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

import ecs_helpers
from conftest import BIN, Berth, remove_containers_of, remove_empty_task_cgroups, task_ids

ZONES = ["zone-a", "zone-b", "zone-c"]
AGENT_TIMEOUT = 4
LOST_TIMEOUT = 8


class Agent:
    def __init__(self, server, state_dir, zone, rack):
        self.args = [BIN, "agent", "--server", server.endpoint, "--access-key", server.access_key,
                     "--secret-key", server.secret_key, "--state-dir", str(state_dir), "--runtime", "docker",
                     "--reserved-memory", "0", "--availability-zone", zone, "--attribute", f"rack={rack}",
                     "--task-cleanup-wait", "5"]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.zone = zone

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    server = Berth(tmp_path / "server", extra_args=("--runtime", "none", "--agent-timeout", str(AGENT_TIMEOUT),
                                                   "--lost-agent-timeout", str(LOST_TIMEOUT))).start()
    agents = [Agent(server, tmp_path / f"agent{i}", zone, rack) for i, (zone, rack) in enumerate(zip(ZONES, ["r1", "r1", "r2"]))]
    ecs = server.client()
    until(lambda: len(ecs.list_container_instances()["containerInstanceArns"]) == 3, what="3 agents registered")
    instances = ecs.describe_container_instances(containerInstances=ecs.list_container_instances()["containerInstanceArns"])
    server.zone_of = {ci["containerInstanceArn"]: next(a["value"] for a in ci["attributes"] if a["name"] == "ecs.availability-zone")
                      for ci in instances["containerInstances"]}
    server.agents = agents
    try:
        yield server
    finally:
        ids = task_ids(ecs)
        for a in agents:
            a.kill()
        for arn in server.zone_of:
            remove_containers_of(arn)
        server.stop()
        remove_empty_task_cgroups(ids)


# Real containers take longer than API-only tests: a longer default wait.
until = functools.partial(ecs_helpers.until, timeout=60, interval=0.3)


@contextlib.contextmanager
def running_counts(cluster, name="web"):
    """Samples the number of RUNNING tasks of service `name` every 100 ms while the block runs."""
    samples, stop = [], threading.Event()

    def watch():
        client = cluster.client()
        while not stop.is_set():
            samples.append(len(running(client, name)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield samples
    finally:
        stop.set()
        watcher.join()


def register(ecs, registry, family="web", command=("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")):
    return ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "app", "image": registry, "memory": 32, "command": list(command), "stopTimeout": 2}])["taskDefinition"]


def running(ecs, name="web"):
    arns = ecs.list_tasks(serviceName=name)["taskArns"]
    tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def steady(ecs, name, count):
    def check():
        s = ecs.describe_services(services=[name])["services"][0]
        done = (s["runningCount"] == count and len(s["deployments"]) == 1
                and s["deployments"][0]["rolloutState"] == "COMPLETED" and len(running(ecs, name)) == count)
        return s if done else None
    return until(check, what=f"{name} steady at {count}")


def test_spread_over_zones_binpack_and_distinct_instance(cluster, registry):
    ecs = cluster.client()
    register(ecs, registry)
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=6,
                       placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"},
                                          {"type": "binpack", "field": "memory"}])
    steady(ecs, "web", 6)
    zones = [cluster.zone_of[t["containerInstanceArn"]] for t in running(ecs)]
    assert sorted(zones) == sorted(ZONES * 2)

    ecs.create_service(serviceName="packed", taskDefinition="web", desiredCount=3,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    steady(ecs, "packed", 3)
    assert len({t["containerInstanceArn"] for t in running(ecs, "packed")}) == 1

    ecs.create_service(serviceName="distinct", taskDefinition="web", desiredCount=4,
                       placementConstraints=[{"type": "distinctInstance"}])
    until(lambda: len(running(ecs, "distinct")) == 3, what="3 distinct tasks")
    s = until(lambda: (lambda s: s if any("was unable to place a task" in e["message"] for e in s["events"]) else None)(
        ecs.describe_services(services=["distinct"])["services"][0]), what="an unable-to-place event")
    assert len({t["containerInstanceArn"] for t in running(ecs, "distinct")}) == 3
    time.sleep(2)
    assert len(running(ecs, "distinct")) == 3, "distinctInstance never doubles"
    assert s["desiredCount"] == 4


def test_a_service_of_6_recovers_after_a_container_is_killed(cluster, registry):
    ecs = cluster.client()
    register(ecs, registry)
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=6)
    steady(ecs, "web", 6)
    victim = running(ecs)[0]["taskArn"]
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.berth.task-arn={victim}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert ids
    subprocess.run(["docker", "kill", *ids], check=True, capture_output=True)
    until(lambda: ecs.describe_tasks(tasks=[victim])["tasks"][0]["lastStatus"] == "STOPPED", what="the victim stopped")
    s = steady(ecs, "web", 6)
    assert victim not in {t["taskArn"] for t in running(ecs)}
    assert s["deployments"][0]["failedTasks"] == 1
    stopped = ecs.describe_tasks(tasks=[victim])["tasks"][0]
    assert stopped["stopCode"] == "EssentialContainerExited"
    until(lambda: ecs.describe_services(services=["web"])["services"][0]["events"][0]["message"]
          == "(service web) has reached a steady state.", what="the steady state told again")


def test_a_service_of_6_recovers_after_an_agent_is_killed(cluster, registry):
    ecs = cluster.client()
    register(ecs, registry)
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=6,
                       placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}])
    steady(ecs, "web", 6)
    doomed = cluster.agents[0]
    gone = next(arn for arn, zone in cluster.zone_of.items() if zone == doomed.zone)
    on_it = {t["taskArn"] for t in running(ecs) if t["containerInstanceArn"] == gone}
    assert len(on_it) == 2
    doomed.kill()
    started = time.time()
    # After the lost-agent timeout its tasks are written off and replaced on the others.
    s = until(lambda: (lambda s: s if len([t for t in running(ecs) if t["containerInstanceArn"] != gone]) == 6 else None)(
        ecs.describe_services(services=["web"])["services"][0]), timeout=LOST_TIMEOUT + 40, what="6 tasks on the live agents")
    assert time.time() - started >= LOST_TIMEOUT - AGENT_TIMEOUT, "tasks were written off before the lost-agent timeout"
    written_off = ecs.describe_tasks(tasks=list(on_it))["tasks"]
    assert {t["lastStatus"] for t in written_off} == {"STOPPED"}
    assert {t["stoppedReason"] for t in written_off} == {"Task stopped: the agent of its container instance was lost."}
    assert any("whose container instance was lost" in e["message"] for e in s["events"])
    assert ecs.describe_container_instances(containerInstances=[gone])["containerInstances"][0]["agentConnected"] is False


def test_rolling_update_at_100_200_never_drops_below_the_desired_count(cluster, registry):
    ecs = cluster.client()
    v1 = register(ecs, registry)
    v2 = register(ecs, registry)
    ecs.create_service(serviceName="web", taskDefinition=v1["taskDefinitionArn"], desiredCount=6,
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    steady(ecs, "web", 6)
    with running_counts(cluster) as samples:
        ecs.update_service(service="web", taskDefinition=v2["taskDefinitionArn"])
        s = steady(ecs, "web", 6)
    assert s["deployments"][0]["taskDefinition"] == v2["taskDefinitionArn"]
    assert {t["taskDefinitionArn"] for t in running(ecs)} == {v2["taskDefinitionArn"]}
    assert len(samples) > 10
    assert min(samples) >= 6, f"running tasks fell to {min(samples)} during the update"
    assert max(samples) <= 12
    listed = ecs.list_service_deployments(service="web")["serviceDeployments"]
    assert [d["status"] for d in listed] == ["SUCCESSFUL", "SUCCESSFUL"]


def test_a_crashing_definition_trips_the_circuit_breaker_and_rolls_back(cluster, registry):
    ecs = cluster.client()
    good = register(ecs, registry)
    bad = register(ecs, registry, command=("sh", "-c", "exit 3"))
    ecs.create_service(serviceName="web", taskDefinition=good["taskDefinitionArn"], desiredCount=2,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    steady(ecs, "web", 2)
    first = ecs.describe_services(services=["web"])["services"][0]["deployments"][0]["id"]
    failing = ecs.update_service(service="web", taskDefinition=bad["taskDefinitionArn"])["service"]["deployments"][0]["id"]
    s = until(lambda: (lambda s: s if s["deployments"][0]["taskDefinition"] == good["taskDefinitionArn"]
                       and s["deployments"][0]["id"] not in (first, failing) else None)(
        ecs.describe_services(services=["web"])["services"][0]), what="a rollback deployment")
    assert s["deployments"][0]["rolloutStateReason"] == f"ECS deployment circuit breaker: rolling back to deploymentId {first}."
    s = steady(ecs, "web", 2)
    assert {t["taskDefinitionArn"] for t in running(ecs)} == {good["taskDefinitionArn"]}
    messages = [e["message"] for e in s["events"]]
    assert f"(service web) (deployment {failing}) deployment failed: tasks failed to start." in messages
    assert f"(service web) rolling back to deployment {first}." in messages
    listed = {d["serviceDeploymentArn"].rsplit("/", 1)[1]: d for d in ecs.list_service_deployments(service="web")["serviceDeployments"]}
    failed = listed[failing.removeprefix("ecs-svc/")]
    assert failed["status"] == "ROLLBACK_SUCCESSFUL"
    assert failed["statusReason"] == "ECS deployment circuit breaker: tasks failed to start."
    described = ecs.describe_service_deployments(serviceDeploymentArns=[failed["serviceDeploymentArn"]])["serviceDeployments"][0]
    assert described["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert described["deploymentCircuitBreaker"]["failureCount"] >= 3
    crashed = ecs.list_tasks(serviceName="web", desiredStatus="STOPPED")["taskArns"]
    codes = {t["containers"][0].get("exitCode") for t in ecs.describe_tasks(tasks=crashed)["tasks"]
             if t["taskDefinitionArn"] == bad["taskDefinitionArn"]}
    assert codes == {3}


def test_a_failing_update_while_the_first_deployment_is_in_progress_keeps_the_service_up(cluster, registry):
    """The outage of issue 9: 2 tasks at 50/200 with the breaker and rollback, updated at once
    to a definition that exits. The first tasks must keep at least 1 (50% of 2) running; with
    no completed deployment to roll back to they stay, and the events say so."""
    ecs = cluster.client()
    good = register(ecs, registry)
    bad = register(ecs, registry, command=("sh", "-c", "exit 3"))
    ecs.create_service(serviceName="web", taskDefinition=good["taskDefinitionArn"], desiredCount=2,
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200,
                                                "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    with running_counts(cluster) as samples:
        failing = ecs.update_service(service="web", taskDefinition=bad["taskDefinitionArn"])["service"]
        assert failing["deployments"][1]["rolloutState"] == "IN_PROGRESS", "the first deployment had not completed"
        failing = failing["deployments"][0]["id"]
        s = until(lambda: (lambda s: s if s["deployments"][0]["rolloutState"] == "FAILED" else None)(
            ecs.describe_services(services=["web"])["services"][0]), timeout=120, what="the breaker tripped")
        time.sleep(3)
    first_up = next(i for i, n in enumerate(samples) if n > 0)
    assert min(samples[first_up:]) >= 1, f"running tasks fell to {min(samples[first_up:])} after the first started"
    assert s["deployments"][0]["id"] == failing
    assert len(s["deployments"]) == 2, "nothing was rolled back to: the first deployment stays"
    messages = [e["message"] for e in ecs.describe_services(services=["web"])["services"][0]["events"]]
    assert f"(service web) (deployment {failing}) deployment failed: tasks failed to start." in messages
    assert any(m.startswith(f"(service web) (deployment {failing}) has no completed deployment to roll back to") for m in messages)
    survivors = running(ecs)
    assert len(survivors) >= 1 and {t["taskDefinitionArn"] for t in survivors} == {good["taskDefinitionArn"]}
    # Nothing more is launched or stopped: the survivors stay.
    time.sleep(3)
    assert {t["taskArn"] for t in running(ecs)} == {t["taskArn"] for t in survivors}


def test_an_external_controller_shifts_a_service_between_task_sets(cluster, registry):
    """Blue/green by hand with task sets on real agents: both sets run their share, each
    reaches STEADY_STATE, and moving the primary and scaling blue to 0 leaves only green."""
    ecs = cluster.client()
    blue_def = register(ecs, registry)
    green_def = register(ecs, registry)
    ecs.create_service(serviceName="web", desiredCount=2, deploymentController={"type": "EXTERNAL"})
    blue = ecs.create_task_set(cluster="default", service="web", taskDefinition=blue_def["taskDefinitionArn"],
                               scale={"value": 100, "unit": "PERCENT"})["taskSet"]
    green = ecs.create_task_set(cluster="default", service="web", taskDefinition=green_def["taskDefinitionArn"],
                                scale={"value": 50, "unit": "PERCENT"})["taskSet"]

    def sets():
        return {t["id"]: t for t in ecs.describe_task_sets(cluster="default", service="web")["taskSets"]}

    def by_definition():
        out = {}
        for t in running(ecs):
            out[t["taskDefinitionArn"]] = out.get(t["taskDefinitionArn"], 0) + 1
        return out

    until(lambda: by_definition() == {blue_def["taskDefinitionArn"]: 2, green_def["taskDefinitionArn"]: 1},
          what="2 blue and 1 green running")
    steady_sets = until(lambda: (lambda s: s if all(t["stabilityStatus"] == "STEADY_STATE" for t in s.values()) else None)(sets()),
                        what="both sets steady")
    assert steady_sets[blue["id"]]["runningCount"] == 2 and steady_sets[green["id"]]["runningCount"] == 1
    assert {t["startedBy"] for t in running(ecs)} == {blue["id"], green["id"]}

    ecs.update_service_primary_task_set(cluster="default", service="web", primaryTaskSet=green["id"])
    ecs.update_task_set(cluster="default", service="web", taskSet=green["id"], scale={"value": 100, "unit": "PERCENT"})
    ecs.update_task_set(cluster="default", service="web", taskSet=blue["id"], scale={"value": 0, "unit": "PERCENT"})
    ecs.delete_task_set(cluster="default", service="web", taskSet=blue["id"])
    until(lambda: by_definition() == {green_def["taskDefinitionArn"]: 2}, what="only green running")
    s = until(lambda: (lambda s: s if [t["id"] for t in s["taskSets"]] == [green["id"]]
                       and s["taskSets"][0]["stabilityStatus"] == "STEADY_STATE" else None)(
        ecs.describe_services(services=["web"])["services"][0]), what="blue drained, green steady")
    assert s["taskDefinition"] == green_def["taskDefinitionArn"] and s["runningCount"] == 2
    assert s["events"][0]["message"] == "(service web) has reached a steady state."


def test_the_examples_in_docs_deployments_run_as_written(cluster, registry):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deployments.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)
    assert len(blocks) == 3
    env = {**cluster.env(), "IMAGE": registry, "AWS_MAX_ATTEMPTS": "1"}
    outputs = []
    for block in blocks:
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"block failed:\n{block}\n{p.stderr}"
        outputs.append(p.stdout)
    assert outputs[0].split()[-2:] == ["3", "3"]
    assert outputs[1].split()[-1] == "SUCCESSFUL"
    ecs = cluster.client()
    assert ecs.describe_services(services=["web"])["services"][0]["status"] == "INACTIVE"


def test_draining_an_instance_moves_its_tasks_first(cluster, registry):
    ecs = cluster.client()
    register(ecs, registry)
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=3,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    steady(ecs, "web", 3)
    drained = running(ecs)[0]["containerInstanceArn"]
    with running_counts(cluster) as samples:
        ecs.update_container_instances_state(containerInstances=[drained], status="DRAINING")
        until(lambda: all(t["containerInstanceArn"] != drained for t in running(ecs)) and len(running(ecs)) == 3,
              what="tasks moved off the draining instance")
    assert min(samples) >= 3, f"running tasks fell to {min(samples)} while draining"
    stopped = [t for t in ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="web", desiredStatus="STOPPED")["taskArns"])["tasks"]]
    assert {t["stoppedReason"] for t in stopped} == {"Container instance is draining."}


def test_tasks_failing_health_checks_are_replaced(cluster, registry):
    ecs = cluster.client()
    ecs.register_task_definition(family="sick", containerDefinitions=[{
        "name": "app", "image": registry, "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
        "healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1}}])
    ecs.create_service(serviceName="sick", taskDefinition="sick", desiredCount=1)
    first = until(lambda: running(ecs, "sick"), what="a running task")[0]["taskArn"]
    stopped = until(lambda: (lambda t: t if t["lastStatus"] == "STOPPED" else None)(ecs.describe_tasks(tasks=[first])["tasks"][0]),
                    what="the unhealthy task stopped")
    assert stopped["stoppedReason"] == "Task failed container health checks"
    assert stopped["stopCode"] == "ServiceSchedulerInitiated"
    s = until(lambda: (lambda s: s if any(e["message"] == f"(service sick) (task {first.rsplit('/', 1)[1]}) failed container health checks."
                                          for e in s["events"]) else None)(ecs.describe_services(services=["sick"])["services"][0]))
    assert s["deployments"][0]["failedTasks"] >= 1
    until(lambda: any(t["taskArn"] != first for t in running(ecs, "sick")), what="a replacement")
