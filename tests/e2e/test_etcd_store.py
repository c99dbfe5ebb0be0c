"""Servers that keep their state in a real 3-member etcd cluster (`--store etcd://...`): the
state outlives any server and its data dir, two servers on one namespace act on one state
with no lost or doubled write, and a server rides out the death of an etcd member."""

import concurrent.futures
import time

import pytest

from conftest import Berth, free_port
from ecs_helpers import describe_task, register, register_instance, until
from etcd_helpers import namespace, on_etcd


def test_state_lives_in_etcd_not_in_the_data_dir(etcd, tmp_path):
    ns = namespace()
    a = on_etcd(tmp_path / "a", etcd, ns).start()
    assert f"state     etcd http://{etcd.hosts.split(',')[0]}" in a.output
    ecs = a.client()
    ecs.create_cluster(clusterName="kept", tags=[{"key": "k", "value": "v"}])
    for _ in range(3):
        register(ecs, "durable")
    inst = register_instance(ecs, cluster="kept")["containerInstanceArn"]
    task = ecs.run_task(cluster="kept", taskDefinition="durable:3")["tasks"][0]["taskArn"]
    a.kill()
    assert not (tmp_path / "a" / "state.redb").exists()

    # Another server, another data dir, the same namespace: everything acknowledged is there.
    b = on_etcd(tmp_path / "b", etcd, ns).start()
    try:
        ecs = b.client()
        c = ecs.describe_clusters(clusters=["kept"], include=["TAGS"])["clusters"][0]
        assert c["status"] == "ACTIVE" and c["tags"] == [{"key": "k", "value": "v"}]
        assert c["registeredContainerInstancesCount"] == 1
        t = describe_task(ecs, task, "kept")
        assert t["containerInstanceArn"] == inst and t["taskDefinitionArn"].endswith("durable:3")
        assert register(ecs, "durable")["revision"] == 4
        # Another namespace on the same cluster is another, empty state.
        other = on_etcd(tmp_path / "c", etcd, namespace()).start()
        try:
            assert "arn:aws:ecs:us-east-1:000000000000:cluster/kept" not in other.client().list_clusters()["clusterArns"]
        finally:
            other.stop()
    finally:
        b.stop()


def test_two_servers_act_on_one_state(etcd, tmp_path):
    ns = namespace()
    a = on_etcd(tmp_path / "a", etcd, ns).start()
    b = on_etcd(tmp_path / "b", etcd, ns).start()
    try:
        ea, eb = a.client(), b.client()
        ea.create_cluster(clusterName="shared")
        assert eb.describe_clusters(clusters=["shared"])["clusters"][0]["status"] == "ACTIVE"

        # Registrations race on both servers: each revision is handed out exactly once.
        def reg(i):
            return register(ea if i % 2 else eb, "raced")["revision"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            revisions = sorted(pool.map(reg, range(24)))
        assert revisions == list(range(1, 25))
        assert ea.describe_task_definition(taskDefinition="raced")["taskDefinition"]["revision"] == 24
        assert eb.describe_task_definition(taskDefinition="raced")["taskDefinition"]["revision"] == 24

        # A change made through one server is what the other changes next.
        eb.delete_cluster(cluster="shared")
        assert ea.describe_clusters(clusters=["shared"])["clusters"][0]["status"] == "INACTIVE"
    finally:
        a.stop()
        b.stop()


# The etcd lease TTL of a server (EtcdOptions::lease_ttl): how long a dead leader's election
# outlives it.
LEASE_TTL = 6


def test_the_scheduler_moves_to_another_server_when_the_leader_is_killed(etcd, tmp_path):
    """Only the leader runs the scheduler; killed with SIGKILL, another server takes over within
    the lease TTL and a scheduler pass, and no slot ever gets two tasks."""
    ns = namespace()
    a = on_etcd(tmp_path / "a", etcd, ns).start()
    ea = a.client()
    register_instance(ea)
    register(ea, "svc")
    ea.create_service(serviceName="web", taskDefinition="svc", desiredCount=3)
    # The service's tasks are placed (no agent claims them: they stay PENDING) by a, the
    # only server so far, so the leader.
    until(lambda: len(ea.list_tasks(serviceName="web")["taskArns"]) == 3, timeout=20, what="3 tasks from a")
    b = on_etcd(tmp_path / "b", etcd, ns).start()
    try:
        eb = b.client()
        a.kill()
        killed = time.time()
        eb.update_service(service="web", desiredCount=5)
        until(lambda: len(eb.list_tasks(serviceName="web")["taskArns"]) >= 5, timeout=30, what="5 tasks from b")
        took = time.time() - killed
        assert took < LEASE_TTL + 3, f"took {took:.1f} s to take over"
        # Exactly the desired count: b's passes never doubled what a had placed.
        time.sleep(2)
        assert len(eb.list_tasks(serviceName="web")["taskArns"]) == 5
        s = eb.describe_services(services=["web"])["services"][0]
        assert (s["desiredCount"], s["pendingCount"]) == (5, 5)
    finally:
        a.stop()
        b.stop()


def test_a_server_rides_out_a_dead_etcd_member(etcd, tmp_path):
    a = on_etcd(tmp_path / "a", etcd, namespace()).start()
    try:
        ecs = a.client()
        made = []
        for victim in etcd.names:
            etcd.kill(victim)
            # Two of three members are a quorum: every write goes on being acknowledged.
            for i in range(5):
                name = f"c-{victim}-{i}"
                for attempt in range(3):
                    try:
                        ecs.create_cluster(clusterName=name)
                        break
                    except ecs.exceptions.ServerException:
                        # A request that was on its way to the dead member fails once; the
                        # client is told to retry, as AWS's 5xx mean.
                        assert attempt < 2, f"{name}: still failing with {victim} dead"
                made.append(name)
            etcd.restart(victim)
        listed = set()
        for page in ecs.get_paginator("list_clusters").paginate():
            listed |= {arn.rsplit("/", 1)[1] for arn in page["clusterArns"]}
        assert set(made) <= listed
    finally:
        a.stop()


def test_bad_store_settings_stop_the_server_with_a_clear_error(etcd, tmp_path):
    cases = [
        (("--store", "redis://127.0.0.1:6379"), "expected `embedded` or etcd://"),
        (("--store", "etcd://127.0.0.1"), "is not HOST:PORT"),
        (("--etcd-namespace", "x/"), "need --store"),
        (("--store", f"etcd://{etcd.hosts}", "--etcd-user", "root"), "go together"),
        (("--store", f"etcd://127.0.0.1:{free_port()}"), "connecting to etcd"),
    ]
    for args, message in cases:
        b = Berth(tmp_path / "d", ("--runtime", "none", *args))
        with pytest.raises(RuntimeError) as failed:
            b.start()
        assert message in str(failed.value), (args, str(failed.value))
