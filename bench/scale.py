"""Scale benchmark (issue 15): one release `berth up` (no agent) and `berth-bench agents`
simulating container instances that acknowledge their tasks at once. For each cluster size it
measures:

- placement end to end: a service of 20 tasks per instance created at once, until the
  simulated agents have reported every task RUNNING (tasks/s);
- a rollout of that service to a new revision: its duration, and DescribeTasks latency
  replayed by target/release/berth-bench on 2 connections in 5 s windows for as long as it
  runs (the median window's p50, the worst window's p99);
- the server's peak resident memory (VmHWM).

Usage: python bench/scale.py [--sizes 500,1000,5000] [--tasks-per-instance 20]
(scripts/bench runs it with the defaults: about 15 minutes, most of it the 5,000 size)."""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time

from ecs_api import ROOT, client, load, machine, start_berth
from figures import write_section


def vm_hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Agents:
    """`berth-bench agents` in the background, its latest JSON line kept."""

    def __init__(self, bench_bin, endpoint, key, secret, instances):
        self.proc = subprocess.Popen([bench_bin, "agents", "--endpoint", endpoint, "--access-key", key,
                                      "--secret-key", secret, "--instances", str(instances)],
                                     stdout=subprocess.PIPE, text=True)
        self.latest = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.latest = json.loads(line)

    def wait(self, what, at_least, timeout):
        deadline = time.time() + timeout
        while self.latest.get(what, 0) < at_least:
            if time.time() > deadline:
                raise RuntimeError(f"{what}: {self.latest} after {timeout} s")
            time.sleep(0.1)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def one_size(args, instances):
    with tempfile.TemporaryDirectory() as data:
        proc, endpoint, key, secret = start_berth(args.berth_bin, data, "--runtime", "none", "--dns-address", "off")
        agents = Agents(args.bench_bin, endpoint, key, secret, instances)
        try:
            agents.wait("registered", instances, timeout=600)
            ecs = client("ecs", endpoint, key, secret)
            for image in ("v1", "v2"):
                ecs.register_task_definition(family="scale", containerDefinitions=[
                    {"name": "app", "image": image, "cpu": 8, "memory": 32}])
            tasks = instances * args.tasks_per_instance
            started = time.time()
            ecs.create_service(serviceName="scale", taskDefinition="scale:1", desiredCount=tasks)
            agents.wait("running", tasks, timeout=3600)
            placed = time.time() - started

            body = json.dumps({"cluster": "default", "tasks": [ecs.list_tasks(maxResults=1)["taskArns"][0]]})
            started = time.time()
            ecs.update_service(service="scale", taskDefinition="scale:2",
                               deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
            # DescribeTasks in 5 s windows for as long as the rollout lasts; the worst window counts.
            windows, done = [], threading.Event()

            def replay():
                while not done.is_set():
                    windows.append(load(args.bench_bin, endpoint, key, secret, "DescribeTasks", body, 5, 2))

            reader = threading.Thread(target=replay)
            reader.start()
            agents.wait("running", 2 * tasks, timeout=3600)
            agents.wait("stopped", tasks, timeout=3600)
            rolled = time.time() - started
            done.set()
            reader.join()
            return {"instances": instances, "tasks": tasks, "place_s": placed, "tasks_per_s": tasks / placed,
                    "rollout_s": rolled, "p99_ms": max(w["p99_ms"] for w in windows),
                    "p50_ms": sorted(w["p50_ms"] for w in windows)[len(windows) // 2],
                    "rss_mib": vm_hwm_mib(proc.pid)}
        finally:
            agents.stop()
            proc.terminate()
            proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth-bin", default=str(ROOT / "target/release/berth"))
    ap.add_argument("--bench-bin", default=str(ROOT / "target/release/berth-bench"))
    ap.add_argument("--sizes", default="500,1000,5000")
    ap.add_argument("--tasks-per-instance", type=int, default=20)
    ap.add_argument("--write", default=str(ROOT / "docs/performance.md"))
    args = ap.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        r = one_size(args, size)
        print(json.dumps(r), flush=True)
        rows.append(f"| {r['instances']:,} | {r['tasks']:,} | {r['tasks_per_s']:,.0f} | {r['rollout_s']:.1f} | "
                    f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['rss_mib']:,.0f} |")
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; embedded store, simulated agents in one process.",
        "",
        "| instances | tasks | placed tasks/s (end to end) | rollout s | DescribeTasks p50 ms (median window) "
        "| DescribeTasks p99 ms (worst 5 s window) | server peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print("\n" + table)
    write_section("scale", table, args.write)


if __name__ == "__main__":
    sys.exit(main())
