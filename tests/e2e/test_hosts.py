"""Berth across hosts: a 3-member etcd cluster, two servers and three agents, each on a host of
its own (a network namespace with its own address on a test bridge, hosts_helpers.py). A
service keeps its desired count while the leading server is killed with SIGKILL, while an
etcd member is killed, and while an agent host's link is cut; meanwhile no slot ever has two
tasks, and every write a server acknowledged is in the final state."""

import subprocess
import threading
import time

import boto3
from botocore.config import Config

from conftest import remove_containers_of, stop_processes
from ecs_helpers import container, until
from etcd_helpers import KEYS, namespace
from hosts_helpers import Hosts, HostBerth, etcd_member_args, log_path, start_agent, wait_port

DESIRED = 6


def client(b):
    return boto3.client("ecs", endpoint_url=b.endpoint, region_name="us-east-1", aws_access_key_id=KEYS[1],
                        aws_secret_access_key=KEYS[3],
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=15))


class Writer(threading.Thread):
    """Registers revisions of one family through every live server, one after another,
    remembering each revision a server acknowledged."""

    def __init__(self, servers):
        super().__init__(daemon=True)
        self.servers, self.acked, self.failed = servers, [], 0
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            ecs = client(self.servers[i % len(self.servers)])
            i += 1
            try:
                td = ecs.register_task_definition(family="acked", containerDefinitions=[container("c", memory=8)])
                self.acked.append(td["taskDefinition"]["revision"])
            except Exception:
                self.failed += 1
                time.sleep(0.05)


class Watcher(threading.Thread):
    """Counts the service's tasks meant to run, over and over: never more than desired."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.most, self.reads = server, 0, 0
        self.stop = threading.Event()

    def run(self):
        ecs = client(self.server)
        while not self.stop.is_set():
            try:
                arns = []
                for page in ecs.get_paginator("list_tasks").paginate(serviceName="web", desiredStatus="RUNNING"):
                    arns += page["taskArns"]
                self.most = max(self.most, len(arns))
                self.reads += 1
            except Exception:
                pass
            time.sleep(0.2)


def running(ecs):
    """The service's tasks meant to run, described."""
    arns = ecs.list_tasks(serviceName="web", desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def all_running(ecs, avoid=None):
    tasks = running(ecs)
    ok = len(tasks) == DESIRED and all(t["lastStatus"] == "RUNNING" for t in tasks)
    ok = ok and not any(t["containerInstanceArn"] == avoid for t in tasks)
    return tasks if ok else None


def replace_one(ecs, reason):
    """Stops one of the service's tasks and waits for the scheduler to bring the count back."""
    victim = running(ecs)[0]["taskArn"]
    ecs.stop_task(task=victim, reason=reason)
    until(lambda: all_running(ecs) and victim not in [t["taskArn"] for t in running(ecs)], timeout=60,
          what=f"a replacement after {reason}")


def test_a_service_keeps_its_count_through_server_etcd_and_host_failures(registry, tmp_path):
    hosts = Hosts()
    procs, agents, instances, servers = {}, [], [], []
    try:
        etcd_hosts = {f"e{i}": hosts.add(f"e{i}", 20 + i) for i in (1, 2, 3)}
        cluster = ",".join(f"{n}=http://{a}:2380" for n, a in etcd_hosts.items())
        for name, address in etcd_hosts.items():
            args = etcd_member_args(name, tmp_path / name, f"http://{address}:2379", f"http://{address}:2380", cluster)
            procs[name] = subprocess.Popen(Hosts.run(name, args), stdout=subprocess.DEVNULL,
                                           stderr=open(log_path(tmp_path, name), "w"))
        for address in etcd_hosts.values():
            wait_port(address, 2379)
        store = "etcd://" + ",".join(f"{a}:2379" for a in etcd_hosts.values())
        # Short agent timeouts, so that a cut host's tasks are written off within the test; long
        # enough that an agent riding out a server's or an etcd member's death keeps its tasks.
        server_args = ("--runtime", "none", *KEYS, "--store", store, "--etcd-namespace", namespace(),
                       "--agent-timeout", "5", "--lost-agent-timeout", "20")
        s1 = HostBerth(tmp_path / "s1", "s1", hosts.add("s1", 11), server_args).start()
        servers.append(s1)
        time.sleep(2)  # s1 campaigns first: it leads
        s2 = HostBerth(tmp_path / "s2", "s2", hosts.add("s2", 12), server_args).start()
        servers.append(s2)
        for i in (1, 2, 3):
            hosts.add(f"a{i}", 30 + i)
            agents.append(start_agent(f"a{i}", [s1.endpoint, s2.endpoint], KEYS, tmp_path / f"a{i}",
                                      log_path(tmp_path, f"a{i}"), "--attribute", f"host=a{i}"))
        e1, e2 = client(s1), client(s2)
        instances += until(lambda: (lambda a: a if len(a) == 3 else None)(e2.list_container_instances()["containerInstanceArns"]),
                           timeout=60, what="three agents")
        e1.register_task_definition(family="web", containerDefinitions=[
            container("main", registry, memory=32, command=["sleep", "3600"], stopTimeout=2)])
        e1.create_service(serviceName="web", taskDefinition="web", desiredCount=DESIRED,
                          placementStrategy=[{"type": "spread", "field": "instanceId"}])
        until(lambda: all_running(e2), timeout=120, what=f"{DESIRED} running tasks")
        described = e2.describe_container_instances(containerInstances=instances)["containerInstances"]
        host_of = {next(a["value"] for a in d["attributes"] if a["name"] == "host"): d["containerInstanceArn"]
                   for d in described}

        writer, watcher = Writer([s1, s2]), Watcher(s2)
        writer.start()
        watcher.start()
        time.sleep(1)

        # The leading server dies: the other takes over the scheduler.
        s1.kill()
        writer.servers = [s2]
        replace_one(e2, "after the leader died")
        # An etcd member dies: two of three go on.
        procs.pop("e1").kill()
        replace_one(e2, "after an etcd member died")
        # An agent host is cut off: its tasks are written off and placed on the other hosts.
        assert host_of["a3"] in {t["containerInstanceArn"] for t in running(e2)}, "spread put tasks on a3"
        Hosts.cut("a3")
        until(lambda: all_running(e2, avoid=host_of["a3"]), timeout=90, what="a3's tasks placed elsewhere")

        writer.stop.set()
        watcher.stop.set()
        writer.join(30)
        watcher.join(30)
        assert watcher.reads > 20 and watcher.most <= DESIRED, (watcher.reads, watcher.most)
        # Every acknowledged write is in the final state, each revision handed out once.
        assert len(writer.acked) > 10, (len(writer.acked), writer.failed)
        assert len(set(writer.acked)) == len(writer.acked)
        latest = e2.describe_task_definition(taskDefinition="acked")["taskDefinition"]["revision"]
        assert max(writer.acked) <= latest
        for revision in writer.acked:
            assert e2.describe_task_definition(taskDefinition=f"acked:{revision}")["taskDefinition"]["status"] == "ACTIVE"
        Hosts.mend("a3")
    finally:
        stop_processes(agents)
        for i in instances:
            remove_containers_of(i)
        for s in servers:
            s.stop()
        for p in procs.values():
            p.kill()
        hosts.remove()
