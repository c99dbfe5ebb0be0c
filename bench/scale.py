"""Scale benchmark (issue 15): one release `berth up` (no agent) and `berth-bench agents`
simulating container instances that acknowledge their tasks at once. For each cluster size N it
places 20 tasks per instance in two services created at once — `base` with 19 per instance and
`web` with one per instance (at 5,000 instances: 100,000 tasks, and a service of 5,000) — and
measures:

- placement end to end: from the two CreateService calls until the simulated agents have
  reported every task RUNNING (tasks/s);
- the scheduler's per-pass cost with the cluster at rest (`berth_scheduler_pass_seconds_total`
  over `berth_scheduler_passes_total` from `GET /metrics`, over 10 s);
- a rollout of `web` to a new revision beside the rest: its duration, and DescribeTasks latency
  replayed by target/release/berth-bench on 2 connections in 5 s windows for as long as it runs
  (the median window's p50, the worst window's p99);
- the server's peak resident memory (VmHWM).

Usage: python bench/scale.py [--sizes 500,1000,5000] [--tasks-per-instance 20]
(scripts/bench runs it with the defaults: about 10 minutes, most of it the 5,000 size)."""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

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


def scheduler_passes(endpoint):
    """(passes, seconds in passes, tasks the last pass observed) from the server's /metrics."""
    text = urllib.request.urlopen(endpoint + "/metrics", timeout=10).read().decode()
    value = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(berth_scheduler_\w+) (\S+)$", text, re.M)}
    return (value["berth_scheduler_passes_total"], value["berth_scheduler_pass_seconds_total"],
            value["berth_scheduler_last_pass_tasks"])


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
            web = instances
            tasks = instances * args.tasks_per_instance
            started = time.time()
            ecs.create_service(serviceName="base", taskDefinition="scale:1", desiredCount=tasks - web)
            ecs.create_service(serviceName="web", taskDefinition="scale:1", desiredCount=web)
            agents.wait("running", tasks, timeout=3600)
            placed = time.time() - started

            # The cluster at rest: what a pass over all of it costs.
            time.sleep(2)
            passes, seconds, _ = scheduler_passes(endpoint)
            time.sleep(10)
            passes2, seconds2, observed = scheduler_passes(endpoint)
            pass_ms = (seconds2 - seconds) / max(passes2 - passes, 1) * 1000

            body = json.dumps({"cluster": "default", "tasks": [ecs.list_tasks(maxResults=1)["taskArns"][0]]})
            started = time.time()
            ecs.update_service(service="web", taskDefinition="scale:2",
                               deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
            # DescribeTasks in 5 s windows for as long as the rollout lasts; the worst window counts.
            windows, done = [], threading.Event()

            def replay():
                while not done.is_set():
                    windows.append(load(args.bench_bin, endpoint, key, secret, "DescribeTasks", body, 5, 2))

            reader = threading.Thread(target=replay)
            reader.start()
            agents.wait("running", tasks + web, timeout=3600)
            agents.wait("stopped", web, timeout=3600)
            rolled = time.time() - started
            done.set()
            reader.join()
            return {"instances": instances, "tasks": tasks, "rolled": web, "place_s": placed,
                    "tasks_per_s": tasks / placed, "pass_ms": pass_ms, "pass_tasks": observed,
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
        rows.append(f"| {r['instances']:,} | {r['tasks']:,} | {r['tasks_per_s']:,.0f} | {r['pass_ms']:.1f} | "
                    f"{r['rolled']:,} in {r['rollout_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                    f"{r['rss_mib']:,.0f} |")
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; embedded store, simulated agents in one process.",
        "",
        "| instances | tasks | placed tasks/s (end to end) | scheduler pass ms (at rest) | tasks rolled out in s "
        "| DescribeTasks p50 ms (median window) | DescribeTasks p99 ms (worst 5 s window) | server peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print("\n" + table)
    write_section("scale", table, args.write)


if __name__ == "__main__":
    sys.exit(main())
