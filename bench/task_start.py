"""Task start benchmark: how fast a task reaches RUNNING on the local agent (Docker driver),
beside `docker run -d` of the same image on the same engine, in the same run.

- single: median time from RunTask to lastStatus RUNNING (polled every 2 ms), image cached,
  against the median wall time of `docker run -d IMAGE sleep 300` (returns once started);
- burst: 200 tasks requested at once (20 RunTask calls of 10, in parallel) until all are
  RUNNING, against 200 `docker run -d` started 20 at a time until all have returned.

Run through scripts/bench."""

import argparse
import json
import re
import signal
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from figures import write_section
from local import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]


def start_registry(root):
    port = free_port()
    config = root / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/v2/", timeout=10)
    subprocess.run(["python3", str(ROOT / "tests/fixtures/make_image.py"), str(root / "image")], check=True, capture_output=True)
    image = f"127.0.0.1:{port}/bench:1"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{root / 'image'}:latest", f"docker://{image}"],
                   check=True, capture_output=True)
    subprocess.run(["docker", "pull", "-q", image], check=True, capture_output=True)
    return proc, image


def start_berth(binary, data_dir, driver="docker", extra=()):
    port = free_port()
    proc = subprocess.Popen([binary, "up", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}", "--runtime", driver,
                             "--task-cleanup-wait", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
        if m:
            ecs = boto3.client("ecs", endpoint_url=m.group(1), region_name="us-east-1", aws_access_key_id=m.group(2),
                               aws_secret_access_key=m.group(3), config=Config(retries={"max_attempts": 1}, max_pool_connections=50))
            return proc, ecs
    raise RuntimeError("berth did not start")


def wait_running(ecs, arns, timeout=300, poll=None):
    """Waits until every task of `arns` is RUNNING, polling DescribeTasks every `poll` seconds
    (2 ms for one task, 50 ms for more by default)."""
    pending = set(arns)
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        batch = list(pending)[:100]
        for t in ecs.describe_tasks(tasks=batch)["tasks"]:
            if t["lastStatus"] == "RUNNING":
                pending.discard(t["taskArn"])
            elif t["lastStatus"] == "STOPPED":
                raise RuntimeError(f"task stopped: {t.get('stoppedReason')}")
        if pending:
            time.sleep(poll or (0.002 if len(arns) == 1 else 0.05))
    if pending:
        raise RuntimeError(f"{len(pending)} tasks never ran")


def burst_start(ecs, burst):
    """Seconds from requesting `burst` tasks at once (20 RunTask calls of 10 in parallel) until
    all run; then stops them."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        batches = list(pool.map(lambda _: ecs.run_task(taskDefinition="start", count=10)["tasks"], range(burst // 10)))
    arns = [t["taskArn"] for batch in batches for t in batch]
    assert len(arns) == burst, f"placed {len(arns)} of {burst}"
    wait_running(ecs, arns)
    elapsed = time.perf_counter() - t0
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda a: ecs.stop_task(task=a), arns))
    return elapsed


def stop_all(ecs, arns):
    for arn in arns:
        ecs.stop_task(task=arn)


def docker_rm(ids):
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def single_starts(ecs, runs, settled=None):
    """Median seconds from RunTask to RUNNING, one task at a time (the first run warms up).
    `settled()`, when given, says the previous task is torn down: the next start waits for it,
    as each bare runc run waits for the previous `runc delete`."""
    times = []
    for n in range(runs + 1):
        t0 = time.perf_counter()
        arn = ecs.run_task(taskDefinition="start")["tasks"][0]["taskArn"]
        wait_running(ecs, [arn])
        if n:
            times.append(time.perf_counter() - t0)
        stop_all(ecs, [arn])
        deadline = time.time() + 20
        while settled and not settled() and time.time() < deadline:
            time.sleep(0.01)
    return statistics.median(times)


def bare_runc(data_dir, runs):
    """Median seconds of `runc run -d` of the bundle the oci driver wrote, on its image layer."""
    containers = sorted((data_dir / "agent" / "oci" / "containers").glob("*"))
    config = json.loads((containers[-1] / "config.json").read_text())
    layer = next((data_dir / "agent" / "images" / "layers").glob("*"))
    bundle = data_dir / "bare-bundle"
    bundle.mkdir(exist_ok=True)
    config["root"] = {"path": str(layer), "readonly": True}
    config["process"]["args"] = ["sleep", "300"]
    # The driver's generated /etc/hosts and /etc/resolv.conf belong to its (removed) container.
    config["mounts"] = [m for m in config["mounts"] if m["destination"] not in ("/etc/hosts", "/etc/resolv.conf")]
    times = []
    for n in range(runs):
        cid = f"berth-bench-bare-{n}"
        config["linux"]["cgroupsPath"] = f"/berth-bench/{cid}"
        (bundle / "config.json").write_text(json.dumps(config))
        t0 = time.perf_counter()
        subprocess.run(["runc", "run", "-d", "--bundle", str(bundle), cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    return statistics.median(times)


def bare_runc_burst(data_dir, burst, workers=20):
    """Seconds for `burst` bare `runc run -d` of the oci driver's bundle, `workers` at a time."""
    containers = sorted((data_dir / "agent" / "oci" / "containers").glob("*"))
    base = json.loads((containers[-1] / "config.json").read_text())
    layer = next((data_dir / "agent" / "images" / "layers").glob("*"))
    base["root"] = {"path": str(layer), "readonly": True}
    base["process"]["args"] = ["sleep", "300"]
    base["mounts"] = [m for m in base["mounts"] if m["destination"] not in ("/etc/hosts", "/etc/resolv.conf")]

    def start(n):
        bundle = data_dir / f"bare-burst-{n}"
        bundle.mkdir(exist_ok=True)
        config = dict(base, linux=dict(base["linux"], cgroupsPath=f"/berth-bench/burst-{n}"))
        (bundle / "config.json").write_text(json.dumps(config))
        subprocess.run(["runc", "run", "-d", "--bundle", str(bundle), f"berth-bench-burst-{n}"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(start, range(burst)))
    elapsed = time.perf_counter() - t0
    for n in range(burst):
        subprocess.run(["runc", "delete", "-f", f"berth-bench-burst-{n}"], capture_output=True)
    return elapsed


def oci_driver(binary, runs, burst, image, tmp):
    data = tmp / "oci-data"
    berth, ecs = start_berth(binary, data, "oci")
    try:
        # networkMode none: a fresh, unconnected network namespace, as bare runc makes one, so the
        # two start paths compare like for like (bridge mode adds the veth and bridge setup).
        ecs.register_task_definition(family="start", networkMode="none", containerDefinitions=[
            {"name": "main", "image": image, "memory": 16, "command": ["sleep", "300"], "stopTimeout": 1}])
        containers = data / "agent" / "oci" / "containers"
        driver = single_starts(ecs, runs, settled=lambda: not any(containers.glob("*")))
        # One task left running: the bare runs reuse its bundle's config.
        model = ecs.run_task(taskDefinition="start")["tasks"][0]["taskArn"]
        wait_running(ecs, [model])
        runc = bare_runc(data, runs)
        stop_all(ecs, [model])
        driver_burst = burst_start(ecs, burst)
        runc_burst = bare_runc_burst(data, burst)
        return driver, runc, driver_burst, runc_burst
    finally:
        berth.send_signal(signal.SIGTERM)
        berth.wait(timeout=60)
        for d in (data / "agent" / "oci" / "containers").glob("*"):
            subprocess.run(["runc", "delete", "-f", d.name], capture_output=True)
            subprocess.run(["umount", "-l", str(d / "rootfs")], capture_output=True)


def bench(binary, runs, burst):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        registry, image = start_registry(tmp)
        berth, ecs = start_berth(binary, tmp / "data")
        try:
            ecs.register_task_definition(family="start", containerDefinitions=[
                {"name": "main", "image": image, "memory": 16, "command": ["sleep", "300"], "stopTimeout": 1,
                 "linuxParameters": {"initProcessEnabled": True}}])
            # Warm-up: the first start pulls nothing (cached) but primes the engine.
            arn = ecs.run_task(taskDefinition="start")["tasks"][0]["taskArn"]
            wait_running(ecs, [arn])
            stop_all(ecs, [arn])

            berth_times, docker_times = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                arn = ecs.run_task(taskDefinition="start")["tasks"][0]["taskArn"]
                wait_running(ecs, [arn])
                berth_times.append(time.perf_counter() - t0)
                stop_all(ecs, [arn])
                t0 = time.perf_counter()
                cid = subprocess.run(["docker", "run", "-d", "--init", "-m", "16m", image, "sleep", "300"],
                                     check=True, capture_output=True, text=True).stdout.strip()
                docker_times.append(time.perf_counter() - t0)
                docker_rm([cid])
            out["single"] = (statistics.median(berth_times), statistics.median(docker_times))

            time.sleep(2)
            berth_burst = burst_start(ecs, burst)
            time.sleep(5)

            t0 = time.perf_counter()
            run = lambda _: subprocess.run(["docker", "run", "-d", "--init", "-m", "16m", image, "sleep", "300"],
                                           check=True, capture_output=True, text=True).stdout.strip()
            with ThreadPoolExecutor(20) as pool:
                ids = list(pool.map(run, range(burst)))
            docker_burst = time.perf_counter() - t0
            docker_rm(ids)
            out["burst"] = (berth_burst, docker_burst)
            berth.send_signal(signal.SIGTERM)
            berth.wait(timeout=60)
            out["oci"] = oci_driver(binary, runs, burst, image, tmp)
        finally:
            berth.send_signal(signal.SIGTERM)
            berth.wait(timeout=60)
            registry.terminate()
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.berth.task-arn"], capture_output=True, text=True).stdout.split()
            docker_rm(ids)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth-bin", default=str(ROOT / "target/release/berth"))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--write", default=str(ROOT / "docs/performance.md"))
    args = ap.parse_args()
    r = bench(args.berth_bin, args.runs, args.burst)
    (bs, ds), (bb, db), (os_, rs, ob, rb) = r["single"], r["burst"], r["oci"]
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')}; Docker Engine {subprocess.run(['docker', 'version', '-f', '{{.Server.Version}}'], capture_output=True, text=True).stdout.strip()}, "
        f"image cached, {args.runs} single starts (median), one burst of {args.burst}.",
        "",
        "| measure | Berth (docker driver) | docker run -d | Berth / docker |",
        "|---|---:|---:|---:|",
        f"| one task: RunTask to RUNNING | {bs * 1000:.0f} ms | {ds * 1000:.0f} ms | {bs / ds:.2f}x |",
        f"| {args.burst} tasks at once until all RUNNING | {bb:.1f} s | {db:.1f} s | {bb / db:.2f}x |",
        "",
        "| measure | Berth (oci driver) | bare `runc run -d` | Berth / runc |",
        "|---|---:|---:|---:|",
        f"| one task: RunTask to RUNNING | {os_ * 1000:.0f} ms | {rs * 1000:.0f} ms | {os_ / rs:.2f}x |",
        f"| {args.burst} tasks at once until all RUNNING | {ob:.1f} s | {rb:.1f} s | {ob / rb:.2f}x |",
    ])
    print(table)
    write_section("task-start", table, args.write)


if __name__ == "__main__":
    main()
