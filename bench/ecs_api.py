"""ECS API benchmark: DescribeTasks and RegisterTaskDefinition throughput and latency, Berth
against moto's server, both on loopback, in the same run, driven by the same load generator
(target/release/berth-bench) with SigV4-signed requests.

Run through scripts/bench; it builds the binaries and prepares the Python environment."""

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from figures import write_section
from local import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
TARGET = "AmazonEC2ContainerServiceV20141113"


def start_berth(binary, data_dir, *extra):
    port = free_port()
    proc = subprocess.Popen([binary, "up", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
        if m:
            return proc, m.group(1), m.group(2), m.group(3)
    raise RuntimeError("berth did not start")


def start_moto(venv_bin):
    port = free_port()
    proc = subprocess.Popen([str(Path(venv_bin) / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/moto-api/")
    return proc, endpoint, "AKIDMOTO", "moto-secret"


def client(service, endpoint, key, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def prepare(endpoint, key, secret, is_moto):
    """Creates the same state in either server; returns the request bodies to replay."""
    ecs = client("ecs", endpoint, key, secret)
    ecs.create_cluster(clusterName="bench")
    identity = {}
    if is_moto:
        ec2 = client("ec2", endpoint, key, secret)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        identity = {"instanceId": instance["InstanceId"], "availabilityZone": "us-east-1a", "instanceType": "m5.large"}
    ecs.register_container_instance(
        cluster="bench",
        instanceIdentityDocument=json.dumps(identity),
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1 << 20},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1 << 20}],
        versionInfo={"agentVersion": "bench"})
    definition = {
        "family": "bench",
        "containerDefinitions": [{"name": "app", "image": "busybox", "cpu": 64, "memory": 64,
                                  "portMappings": [{"containerPort": 8080}],
                                  "environment": [{"name": "MODE", "value": "bench"}]}],
    }
    ecs.register_task_definition(**definition)
    tasks = ecs.run_task(cluster="bench", taskDefinition="bench", count=1)["tasks"]
    assert tasks, "the benchmark task was not placed"
    # A task small enough that the instance fits every RunTask of a run.
    ecs.register_task_definition(family="tiny", containerDefinitions=[{"name": "app", "image": "busybox", "cpu": 1, "memory": 6}])
    return {
        "DescribeTasks": json.dumps({"cluster": "bench", "tasks": [tasks[0]["taskArn"]]}),
        "RegisterTaskDefinition": json.dumps(definition),
        "RunTask": json.dumps({"cluster": "bench", "taskDefinition": "tiny", "count": 1}),
    }


def load(bench_bin, endpoint, key, secret, operation, body, seconds, connections):
    out = subprocess.run([bench_bin, "--endpoint", endpoint, "--access-key", key, "--secret-key", secret,
                          "--target", f"{TARGET}.{operation}", "--body", body, "--duration", str(seconds),
                          "--connections", str(connections), "--warmup", "1"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth-bin", default=str(ROOT / "target/release/berth"))
    ap.add_argument("--bench-bin", default=str(ROOT / "target/release/berth-bench"))
    ap.add_argument("--moto-bin-dir", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--write", default=str(ROOT / "docs/performance.md"))
    args = ap.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as data:
        for name in ("berth", "moto"):
            if name == "berth":
                proc, endpoint, key, secret = start_berth(args.berth_bin, data)
            else:
                proc, endpoint, key, secret = start_moto(args.moto_bin_dir)
            try:
                bodies = prepare(endpoint, key, secret, name == "moto")
                for op in ("DescribeTasks", "RegisterTaskDefinition"):
                    r = load(args.bench_bin, endpoint, key, secret, op, bodies[op], args.seconds, args.connections)
                    results[(name, op)] = r
                    print(f"{name:6} {op:24} {r['rps']:10.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                          f"p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}", flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    rows = []
    for op in ("DescribeTasks", "RegisterTaskDefinition"):
        b, m = results[("berth", op)], results[("moto", op)]
        rows.append(f"| {op} | {b['rps']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {m['rps']:,.0f} | "
                    f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | **{b['rps'] / m['rps']:.1f}x** |")
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; {args.connections} keep-alive connections, "
        f"{args.seconds:.0f} s per run after a 1 s warm-up, client and server on the same machine.",
        "",
        "| operation | Berth req/s | Berth p50 ms | Berth p99 ms | moto req/s | moto p50 ms | moto p99 ms | Berth / moto |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print("\n" + table)
    write_section("ecs-api", table, args.write)


if __name__ == "__main__":
    sys.exit(main())
