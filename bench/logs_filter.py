"""FilterLogEvents throughput: Berth scanning a log group for a term, against `grep -F` over
the same text in a file, in one run on the same machine (both from the page cache).

About 1 GiB of log lines (access-log and JSON lines, a rare term in 1 line of 1,000) is put
into one log group over 4 streams with PutLogEvents (1 MiB batches, which also gives the
ingestion rate), and written to one file. Then `aws`-style paging of FilterLogEvents for the
term (every page until no nextToken) is timed against `grep -F -c TERM FILE`; each is run 3
times and the median kept.

    python3 bench/logs_filter.py [--size-mib 1024] [--berth target/release/berth]
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from ecs_api import machine
from figures import write_section
from local import free_port

ROOT = Path(__file__).resolve().parents[1]
TERM = "disk-quota-exceeded"


def lines(count, seed=7):
    rnd = random.Random(seed)
    paths = ["/", "/index.html", "/api/v1/items", "/api/v1/users/42", "/static/app.js", "/health"]
    for i in range(count):
        if i % 1000 == 999:
            yield f'{{"level":"error","msg":"{TERM}","user":{rnd.randint(1, 9999)},"latency":{rnd.randint(1, 900)}}}'
        elif i % 2:
            yield (f'10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)} - - [30/Nov/2026:12:{i % 60:02d}:{i % 59:02d} +0000] '
                   f'"GET {rnd.choice(paths)} HTTP/1.1" {rnd.choice([200, 200, 200, 304, 404])} {rnd.randint(100, 90000)} '
                   f'"-" "Mozilla/5.0 (X11; Linux x86_64) bench/{i}"')
        else:
            yield (f'{{"level":"info","msg":"request served","path":"{rnd.choice(paths)}","status":200,'
                   f'"latency":{rnd.randint(1, 900)},"request_id":"{rnd.getrandbits(64):016x}","seq":{i}}}')


def median_time(run, times=3):
    spent = []
    for _ in range(times):
        t = time.perf_counter()
        result = run()
        spent.append(time.perf_counter() - t)
    return statistics.median(spent), result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--berth", default=str(ROOT / "target/release/berth"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-logs-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    berth = None
    try:
        port = free_port()
        berth = subprocess.Popen([args.berth, "up", "--runtime", "none", "--data-dir", str(work / "berth"),
                                  "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in berth.stdout:
            m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
            if m:
                break
        logs = boto3.client("logs", endpoint_url=m.group(1), aws_access_key_id=m.group(2), aws_secret_access_key=m.group(3),
                            region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
        logs.create_log_group(logGroupName="/bench")
        streams = [f"web/web/{i}" for i in range(4)]
        for s in streams:
            logs.create_log_stream(logGroupName="/bench", logStreamName=s)

        target = args.size_mib << 20
        text_file = work / "bench.log"
        written, count, batches, ingest = 0, 0, 0, 0.0
        now = int(time.time() * 1000) - 3_600_000
        with open(text_file, "w") as out:
            batch, size = [], 0
            for line in lines(10**9):
                out.write(line + "\n")
                batch.append({"timestamp": now + count // 1000, "message": line})
                size += len(line) + 26
                written += len(line) + 1
                count += 1
                if size > (1 << 20) - 2000 or written >= target:
                    t = time.perf_counter()
                    logs.put_log_events(logGroupName="/bench", logStreamName=streams[batches % 4], logEvents=batch)
                    ingest += time.perf_counter() - t
                    batches += 1
                    batch, size = [], 0
                if written >= target:
                    break

        def berth_filter():
            found, token = 0, None
            while True:
                kw = {"nextToken": token} if token else {}
                page = logs.filter_log_events(logGroupName="/bench", filterPattern=TERM, **kw)
                found += len(page["events"])
                token = page.get("nextToken")
                if not token:
                    return found

        def grep():
            p = subprocess.run(["grep", "-F", "-c", TERM, str(text_file)], capture_output=True, text=True, check=True)
            return int(p.stdout)

        grep_s, grep_found = median_time(grep)
        berth_s, berth_found = median_time(berth_filter)
        assert berth_found == grep_found == count // 1000, (berth_found, grep_found, count)
        mb = written / 1e6
        table = "\n".join([
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; {written / 2**20:,.0f} MiB in {count:,} lines, "
            f"{batches:,} PutLogEvents of about 1 MiB over 4 streams; {grep_found:,} lines match.",
            "",
            "| | seconds (median of 3) | MB/s | Berth / grep |",
            "|---|---:|---:|---:|",
            f"| grep -F -c over the file | {grep_s:.2f} | {mb / grep_s:,.0f} | |",
            f"| FilterLogEvents, every page | {berth_s:.2f} | {mb / berth_s:,.0f} | **{grep_s / berth_s:.2f}x** |",
            "",
            f"Ingestion in the same run: {mb / ingest:,.0f} MB/s ({count / ingest:,.0f} lines/s) through PutLogEvents, "
            "each batch fsynced before its answer, sent one at a time by boto3.",
        ])
        print(table)
        write_section("logs-filter", table)
    finally:
        if berth:
            berth.terminate()
            berth.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
