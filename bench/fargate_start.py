"""FARGATE task start benchmark: RunTask (launchType FARGATE) until RUNNING on `berth up --runtime
oci`, beside bare `runc run -d` of the very bundle Berth wrote, in a network namespace with a
veth on a bridge that a script sets up the way Berth's agent does (two `ip -batch` processes: the
namespace, the veth pair and the bridge port outside, the address, links and route inside; then
`runc run -d` in that namespace), in the same run. Both make the task's end of the veth pair in
the task's namespace.

- single: median time from RunTask to lastStatus RUNNING (polled every 2 ms), each start after
  the previous task's teardown, against the median of the bare script;
- burst: as many FARGATE tasks of the smallest size (256 cpu units, 512 MiB) as this machine
  holds (at most 200; its cpus bound it: 8 on 2 cpus), requested at once (parallel RunTask
  calls of up to 10) until all are RUNNING (the last `startedAt`, polled every 100 ms),
  against as many bare starts run 20 at a time; the median of three bursts each.

Both are measured with each `--fargate-runtime` of `--runtimes` (runc, berth — Berth's own
runtime, in its shims — and runsc by default, those installed; runc first, whose bundle the bare
side runs), restarting the same `berth up` between them; the bare side is always runc. crun can be named too, where it runs (Debian 12's
crun 1.8 refuses this machine's cgroup v1 layout).

Run through scripts/bench."""

import argparse
import ipaddress
import json
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from figures import write_section
from task_start import start_berth, start_registry, wait_running

VPC_CIDR = "10.205.0.0/16"
BARE_NET = ipaddress.ip_network("10.206.0.0/16")
BARE_BRIDGE = "berth-bench-br"
BURSTS = 3
# Berth's own runtime: no program, the shims run it.
BUILTIN = "berth"


def machine():
    """One line saying what was measured on."""
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{runc}; {cpus} cpus"


def fargate_client(ecs):
    """EC2 beside the ECS client `start_berth` made, with the same endpoint and keys."""
    import boto3
    creds = ecs._request_signer._credentials
    return boto3.client("ec2", endpoint_url=ecs.meta.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def run(ecs, network, count=1):
    out = ecs.run_task(taskDefinition="fargate", launchType="FARGATE", count=count, networkConfiguration=network)
    if out["failures"]:
        raise RuntimeError(f"not placed: {out['failures'][0]}")
    return [t["taskArn"] for t in out["tasks"]]


def stop(ecs, arns):
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda a: ecs.stop_task(task=a), arns))


def settled(data):
    return not any((data / "agent" / "oci" / "containers").glob("*"))


def wait_settled(data, timeout=60):
    deadline = time.time() + timeout
    while not settled(data) and time.time() < deadline:
        time.sleep(0.01)


def single_starts(ecs, network, data, runs):
    times = []
    for n in range(runs + 1):
        t0 = time.perf_counter()
        arns = run(ecs, network)
        wait_running(ecs, arns)
        if n:
            times.append(time.perf_counter() - t0)
        stop(ecs, arns)
        wait_settled(data)
    return statistics.median(times)


def burst_start(ecs, network, data, burst):
    """From the first RunTask call to the last task's RUNNING. When a task turned RUNNING is its
    `startedAt`, which the control plane stamps as it records the transition (DescribeTasks
    shows RUNNING from then on, as on ECS); the polling only says when all are there, every
    100 ms, so that it takes little of the two cpus the tasks start on (polled every 10 ms, the
    client's DescribeTasks calls cost about as much cpu as the agent's own work)."""
    t0 = time.time()
    with ThreadPoolExecutor(20) as pool:
        sizes = [10] * (burst // 10) + ([burst % 10] if burst % 10 else [])
        batches = list(pool.map(lambda n: run(ecs, network, n), sizes))
    arns = [a for b in batches for a in b]
    wait_running(ecs, arns, poll=0.1)
    started = [t["startedAt"].timestamp() for i in range(0, len(arns), 100)
               for t in ecs.describe_tasks(tasks=arns[i:i + 100])["tasks"]]
    elapsed = max(started) - t0
    stop(ecs, arns)
    wait_settled(data, timeout=300)
    return elapsed


class Bare:
    """Bare starts of Berth's bundle: a script's namespace and veth, then `runc run -d`."""

    def __init__(self, data, tmp):
        containers = sorted((data / "agent" / "oci" / "containers").glob("*"))
        self.config = json.loads((containers[-1] / "config.json").read_text())
        layer = next((data / "agent" / "images" / "layers").glob("*"))
        self.config["root"] = {"path": str(layer), "readonly": True}
        self.config["process"]["args"] = ["sleep", "300"]
        # The driver's generated files belong to its own (removed) container.
        self.config["mounts"] = [m for m in self.config["mounts"]
                                 if m["destination"] not in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")]
        self.tmp = tmp
        gateway = next(BARE_NET.hosts())
        subprocess.run(["ip", "-batch", "-"], input=(
            f"link add {BARE_BRIDGE} type bridge\naddr add {gateway}/{BARE_NET.prefixlen} dev {BARE_BRIDGE}\n"
            f"link set {BARE_BRIDGE} up\n"), text=True, check=True)

    def start(self, n):
        ns, host, peer = f"bbench-{n}", f"vbb{n}", f"vbp{n}"
        address = BARE_NET.network_address + 10 + n
        # The task's end is made in its namespace, as Berth makes it: moving a link there would
        # cost an RCU grace period under the kernel's network lock (see docs/performance.md).
        outside = (f"netns add {ns}\nlink add {host} type veth peer name {peer} netns {ns}\n"
                   f"link set {host} master {BARE_BRIDGE}\nlink set {host} up\n")
        inside = (f"addr add {address}/{BARE_NET.prefixlen} dev {peer}\nlink set {peer} up\nlink set lo up\n"
                  f"route add default via {next(BARE_NET.hosts())}\n")
        bundle = self.tmp / f"bare-{n}"
        bundle.mkdir(exist_ok=True)
        config = json.loads(json.dumps(self.config))
        config["linux"]["cgroupsPath"] = f"/berth-bench/bare-{n}"
        namespaces = [x for x in config["linux"]["namespaces"] if x["type"] != "network"]
        config["linux"]["namespaces"] = namespaces + [{"type": "network", "path": f"/var/run/netns/{ns}"}]
        (bundle / "config.json").write_text(json.dumps(config))
        subprocess.run(["ip", "-batch", "-"], input=outside, text=True, check=True)
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=inside, text=True, check=True)
        subprocess.run(["runc", "run", "-d", "--bundle", str(bundle), f"bbench-{n}"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def remove(self, n):
        subprocess.run(["runc", "delete", "-f", f"bbench-{n}"], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"bbench-{n}"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"vbb{n}"], capture_output=True)

    def single(self, runs):
        times = []
        for n in range(runs):
            t0 = time.perf_counter()
            self.start(n)
            times.append(time.perf_counter() - t0)
            self.remove(n)
        return statistics.median(times)

    def burst(self, count, workers=20):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.start, range(count)))
        elapsed = time.perf_counter() - t0
        for n in range(count):
            self.remove(n)
        return elapsed

    def close(self):
        subprocess.run(["ip", "link", "del", BARE_BRIDGE], capture_output=True)


def burst_size(ecs):
    """How many of the smallest FARGATE tasks (256 cpu units, 512 MiB) the machine's one
    container instance holds, at most 200: its cpu bounds it on small machines."""
    arns = ecs.list_container_instances()["containerInstanceArns"]
    instance = ecs.describe_container_instances(containerInstances=arns)["containerInstances"][0]
    memory = next(r["integerValue"] for r in instance["remainingResources"] if r["name"] == "MEMORY")
    cpu = next(r["integerValue"] for r in instance["remainingResources"] if r["name"] == "CPU")
    return min(200, memory // 512, cpu // 256)


def bursts(measure, times=BURSTS):
    """The median of `times` bursts: one burst of a few tasks is a noisy figure."""
    return statistics.median(measure() for _ in range(times))


def start_fargate_berth(binary, data, runtime):
    return start_berth(binary, data, "oci", extra=("--vpc-cidr", VPC_CIDR, "--fargate-runtime", runtime))


def stop_berth(berth):
    berth.send_signal(signal.SIGTERM)
    berth.wait(timeout=60)


def bench(binary, runs, runtimes):
    """Berth with each of `runtimes` (the first one, runc, also gives the bare side its bundle)
    against the bare script, in one run; returns rows of (runtime, measure, berth, bare)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        registry, image = start_registry(tmp)
        data = tmp / "data"
        berth, ecs = start_fargate_berth(binary, data, runtimes[0])
        ec2 = fargate_client(ecs)
        bare = None
        try:
            ecs.register_task_definition(
                family="fargate", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                containerDefinitions=[{"name": "main", "image": image, "command": ["sleep", "300"], "stopTimeout": 1}])
            subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
            network = {"awsvpcConfiguration": {"subnets": [subnet]}}
            single = single_starts(ecs, network, data, runs)
            model = run(ecs, network)
            wait_running(ecs, model)
            bare = Bare(data, tmp)
            bare_single = bare.single(runs)
            stop(ecs, model)
            wait_settled(data)
            count = burst_size(ecs)
            burst = bursts(lambda: burst_start(ecs, network, data, count))
            bare_burst = bursts(lambda: bare.burst(count))
            rows = [(runtimes[0], "one", single, bare_single), (runtimes[0], "burst", burst, bare_burst)]
            # The same machine and VPC, restarted with another runtime for FARGATE tasks.
            for runtime in runtimes[1:]:
                stop_berth(berth)
                berth, ecs = start_fargate_berth(binary, data, runtime)
                rows.append((runtime, "one", single_starts(ecs, network, data, runs), bare_single))
                rows.append((runtime, "burst", bursts(lambda: burst_start(ecs, network, data, count)), bare_burst))
            return rows, count
        finally:
            if bare:
                bare.close()
            stop_berth(berth)
            registry.terminate()
            for d in (data / "agent" / "oci" / "containers").glob("*"):
                for runtime in runtimes:
                    if runtime != BUILTIN:
                        subprocess.run([runtime, "delete", "--force", d.name], capture_output=True)
                subprocess.run(["umount", "-l", str(d / "rootfs")], capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parents[1] / "target/release/berth"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--runtimes", default=f"runc,{BUILTIN},runsc",
                        help="--fargate-runtime values to measure, runc first (those not installed are left out)")
    args = parser.parse_args()
    runtimes = [r for r in args.runtimes.split(",") if r == BUILTIN or shutil.which(r)]
    if not runtimes or runtimes[0] != "runc":
        raise SystemExit("runc must be installed and measured first: the bare side runs its bundle")
    rows, count = bench(args.binary, args.runs, runtimes)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')}; {machine()}; {args.runs} single starts (median), the median of {BURSTS} bursts of {count}.",
        "",
        "| measure | Berth (FARGATE, oci driver) | script + bare `runc run -d` | Berth / bare |",
        "|---|---:|---:|---:|",
    ]
    for runtime, measure, berth, bare in rows:
        if measure == "one":
            lines.append(f"| one task, `--fargate-runtime {runtime}`: RunTask to RUNNING | {berth * 1000:.0f} ms "
                         f"| {bare * 1000:.0f} ms | {berth / bare:.2f}x |")
        else:
            lines.append(f"| {count} tasks at once, `{runtime}`, until all RUNNING | {berth:.2f} s | {bare:.2f} s "
                         f"| {berth / bare:.2f}x |")
    table = "\n".join(lines)
    print(table)
    write_section("fargate-start", table)


if __name__ == "__main__":
    main()
