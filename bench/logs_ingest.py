"""Log ingestion: lines per second from a task that writes as fast as it can, until its last
line can be read back, with Berth's awslogs driver (GetLogEvents sees the last line) against
Docker's json-file driver (the container has exited and `docker logs` holds the last line),
same image, same engine, same lines, in one run. Berth's figure is also checked for loss: every
line is read back and counted.

    python3 bench/logs_ingest.py [--lines 300000] [--berth target/release/berth]
"""

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from ecs_api import machine
from figures import write_section
from task_start import start_registry

ROOT = Path(__file__).resolve().parents[1]


def script(lines):
    # busybox: seq makes the numbers, sed the line around them (about 70 bytes a line).
    return f"seq 1 {lines} | sed 's/.*/level=info msg=\"request served\" path=\\/api\\/items seq=&/'"


def docker_json_file(image, lines):
    t = time.perf_counter()
    cid = subprocess.run(["docker", "run", "-d", "--log-driver", "json-file", image, "sh", "-c", script(lines)],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        subprocess.run(["docker", "wait", cid], check=True, capture_output=True)
        last = subprocess.run(["docker", "logs", "--tail", "1", cid], check=True, capture_output=True, text=True).stdout
        elapsed = time.perf_counter() - t
        assert last.strip().endswith(f"seq={lines}"), last
        return elapsed
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def berth_awslogs(binary, work, image, lines):
    port_line = None
    proc = subprocess.Popen([binary, "up", "--data-dir", str(work / "berth"), "--listen", "127.0.0.1:0", "--runtime", "docker",
                             "--task-cleanup-wait", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            port_line = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
            if port_line:
                break
        kw = dict(endpoint_url=port_line.group(1), region_name="us-east-1", aws_access_key_id=port_line.group(2),
                  aws_secret_access_key=port_line.group(3), config=Config(retries={"max_attempts": 1}))
        ecs, logs = boto3.client("ecs", **kw), boto3.client("logs", **kw)
        options = {"awslogs-group": "/bench", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "b",
                   "awslogs-create-group": "true"}
        ecs.register_task_definition(family="chatty", containerDefinitions=[
            {"name": "w", "image": image, "memory": 64, "command": ["sh", "-c", script(lines)],
             "logConfiguration": {"logDriver": "awslogs", "options": options}}])
        return min(one_task(ecs, logs, lines) for _ in range(3))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def one_task(ecs, logs, lines):
    """Seconds from RunTask until GetLogEvents shows the task's last line; then every line is
    read back, once and in order."""
    t = time.perf_counter()
    arn = ecs.run_task(taskDefinition="chatty")["tasks"][0]["taskArn"]
    stream = f"b/w/{arn.rsplit('/', 1)[1]}"
    while True:
        try:
            got = logs.get_log_events(logGroupName="/bench", logStreamName=stream, limit=1)["events"]
        except logs.exceptions.ResourceNotFoundException:
            got = []
        if got and got[-1]["message"].endswith(f"seq={lines}"):
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - t
    count, token, expected = 0, None, 1
    while True:
        page = logs.get_log_events(logGroupName="/bench", logStreamName=stream, startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        for e in page["events"]:
            assert e["message"].endswith(f"seq={expected}"), (e["message"], expected)
            expected += 1
            count += 1
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert count == lines, (count, lines)
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--berth", default=str(ROOT / "target/release/berth"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-ingest-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    registry = None
    try:
        registry, image = start_registry(work)
        docker_s = min(docker_json_file(image, args.lines) for _ in range(3))
        berth_s = berth_awslogs(args.berth, work, image, args.lines)
        table = "\n".join([
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; {args.lines:,} lines of about 70 bytes from one "
            "container (busybox `seq | sed`), Docker Engine from Debian.",
            "",
            "| | seconds | lines/s | Berth / json-file |",
            "|---|---:|---:|---:|",
            f"| Docker json-file (best of 3): run until `docker logs` has the last line | {docker_s:.2f} | {args.lines / docker_s:,.0f} | |",
            f"| Berth awslogs (best of 3): RunTask until GetLogEvents has the last line | {berth_s:.2f} | {args.lines / berth_s:,.0f} | "
            f"**{docker_s / berth_s:.2f}x** |",
            "",
            "Every line of each of Berth's runs was read back in order: none lost.",
        ])
        print(table)
        write_section("logs-ingest", table)
    finally:
        if registry:
            registry.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
