"""State survives restarts and a SIGKILL in the middle of a write burst."""

import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from ecs_helpers import container, describe_instance, describe_task, list_all, register, register_instance


def test_restart_keeps_everything(berth):
    """Clusters, task definitions (all revisions), instances and tasks survive a clean restart;
    revision numbering continues and the credentials stay the same."""
    ecs = berth.client()
    key, secret = berth.access_key, berth.secret_key
    ecs.create_cluster(clusterName="kept", tags=[{"key": "k", "value": "v"}])
    for _ in range(3):
        register(ecs, "durable", [container("d", memory=256)])
    ecs.deregister_task_definition(taskDefinition="durable:2")
    inst = register_instance(ecs, cluster="kept")["containerInstanceArn"]
    task = ecs.run_task(cluster="kept", taskDefinition="durable:3", tags=[{"key": "t", "value": "1"}])["tasks"][0]["taskArn"]
    ecs.submit_task_state_change(cluster="kept", task=task, status="RUNNING", containers=[{"containerName": "d", "status": "RUNNING"}])
    before_instance = describe_instance(ecs, inst, "kept")
    before_task = describe_task(ecs, task, "kept", include=["TAGS"])

    berth.restart()
    assert (berth.access_key, berth.secret_key) == (key, secret)
    ecs = berth.client()

    assert "arn:aws:ecs:us-east-1:000000000000:cluster/kept" in ecs.list_clusters()["clusterArns"]
    c = ecs.describe_clusters(clusters=["kept"], include=["TAGS"])["clusters"][0]
    assert c["status"] == "ACTIVE" and c["tags"] == [{"key": "k", "value": "v"}]
    assert c["registeredContainerInstancesCount"] == 1 and c["runningTasksCount"] == 1
    statuses = [ecs.describe_task_definition(taskDefinition=f"durable:{r}")["taskDefinition"]["status"] for r in (1, 2, 3)]
    assert statuses == ["ACTIVE", "INACTIVE", "ACTIVE"]
    after_instance = describe_instance(ecs, inst, "kept")
    assert after_instance["status"] == "ACTIVE"
    assert after_instance["remainingResources"] == before_instance["remainingResources"]
    assert after_instance["registeredResources"] == before_instance["registeredResources"]
    after_task = describe_task(ecs, task, "kept", include=["TAGS"])
    assert after_task["lastStatus"] == "RUNNING"
    assert after_task["tags"] == before_task["tags"]
    assert after_task["containerInstanceArn"] == inst
    assert ecs.list_tasks(cluster="kept")["taskArns"] == [task]
    assert register(ecs, "durable")["revision"] == 4


def test_restart_after_sigkill_keeps_acknowledged_writes(berth):
    """A write acknowledged just before a SIGKILL is there after the next start."""
    ecs = berth.client()
    ecs.create_cluster(clusterName="acked")
    register(ecs, "acked")
    berth.kill()
    berth.start()
    ecs = berth.client()
    assert "arn:aws:ecs:us-east-1:000000000000:cluster/acked" in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_task_definition(taskDefinition="acked:1")["taskDefinition"]["revision"] == 1
    assert register(ecs, "acked")["revision"] == 2


def test_kill_during_register_burst(berth):
    """8 threads register `burst` revisions; SIGKILL mid-burst. Every acknowledged revision survives,
    no revision is acknowledged twice, and the listing is exactly 1..max with no duplicates or gaps."""
    acked = []
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def hammer(n):
        client = berth.client()
        while not stop.is_set():
            try:
                td = client.register_task_definition(
                    family="burst", containerDefinitions=[container("b", memory=32, environment=[{"name": "T", "value": str(n)}])]
                )["taskDefinition"]
            except (ClientError, BotoCoreError, OSError) as e:
                errors.append(e)
                if len(errors) > 1000:
                    return
                time.sleep(0.01)
                continue
            with lock:
                acked.append(td["revision"])

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    berth.kill()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert acked, f"no registration was acknowledged before the kill (errors: {errors[:3]})"
    print(f"burst: {len(acked)} acknowledged, max {max(acked)}, {len(errors)} errors")
    assert len(acked) == len(set(acked)), "a revision number was acknowledged twice"

    berth.start()
    ecs = berth.client()
    for rev in sorted(acked):
        td = ecs.describe_task_definition(taskDefinition=f"burst:{rev}")["taskDefinition"]
        assert td["revision"] == rev and td["status"] == "ACTIVE"
    arns = list_all(ecs.list_task_definitions, "taskDefinitionArns", familyPrefix="burst")
    assert len(arns) == len(set(arns)), "duplicate ARNs in ListTaskDefinitions"
    revisions = sorted(int(a.rsplit(":", 1)[1]) for a in arns)
    assert revisions == list(range(1, revisions[-1] + 1)), "gap in revisions"
    assert set(acked) <= set(revisions)
    # Numbering continues after the highest stored revision.
    assert register(ecs, "burst")["revision"] == revisions[-1] + 1


def test_restart_keeps_settings_and_lifecycle_states(berth):
    """Account settings, INACTIVE clusters and DELETE_IN_PROGRESS revisions survive a restart."""
    ecs = berth.client()
    ecs.put_account_setting(name="containerInsights", value="enhanced")
    ecs.create_cluster(clusterName="retired")
    ecs.delete_cluster(cluster="retired")
    register(ecs, "purged")
    # A PENDING task keeps the revision from being purged while it is DELETE_IN_PROGRESS.
    register_instance(ecs)
    ecs.run_task(taskDefinition="purged:1")
    ecs.deregister_task_definition(taskDefinition="purged:1")
    ecs.delete_task_definitions(taskDefinitions=["purged:1"])
    berth.restart()
    ecs = berth.client()
    assert [s["value"] for s in ecs.list_account_settings(name="containerInsights")["settings"]] == ["enhanced"]
    assert ecs.describe_clusters(clusters=["retired"])["clusters"][0]["status"] == "INACTIVE"
    assert "arn:aws:ecs:us-east-1:000000000000:cluster/retired" not in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_task_definition(taskDefinition="purged:1")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    assert register(ecs, "purged")["revision"] == 2


def test_kill_during_run_task_burst_keeps_resources_consistent(berth):
    """SIGKILL while threads place tasks: afterwards every acknowledged task exists, and the instance's
    reserved memory equals exactly the memory of the tasks that exist (no leaked or double reservation)."""
    ecs = berth.client()
    inst = register_instance(ecs, resources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 100000},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1000000},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": []},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
    ])["containerInstanceArn"]
    register(ecs, "unit", [container("u", memory=10)])
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer():
        client = berth.client()
        while not stop.is_set():
            try:
                resp = client.run_task(taskDefinition="unit")
            except (ClientError, BotoCoreError, OSError):
                time.sleep(0.01)
                continue
            with lock:
                acked.extend(t["taskArn"] for t in resp["tasks"])

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    berth.kill()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert acked

    berth.start()
    ecs = berth.client()
    tasks = list_all(ecs.list_tasks, "taskArns")
    assert len(tasks) == len(set(tasks))
    assert set(acked) <= set(tasks)
    memory = 0
    for i in range(0, len(tasks), 100):
        for t in ecs.describe_tasks(tasks=tasks[i:i + 100])["tasks"]:
            memory += int(t["memory"])
    remaining_memory = [r for r in describe_instance(ecs, inst)["remainingResources"] if r["name"] == "MEMORY"][0]["integerValue"]
    assert remaining_memory == 1000000 - memory
    assert describe_instance(ecs, inst)["pendingTasksCount"] == len(tasks)
