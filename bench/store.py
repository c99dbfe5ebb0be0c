"""Store benchmark: the ECS API with the state in etcd against the same API on the embedded
store, in the same run: DescribeTasks (a read, served from the server's mirror of etcd) and
RunTask (placement: a compare-and-swap transaction per task), replayed by
target/release/berth-bench as in bench/ecs_api.py.

etcd is Debian's etcd-server: one member on loopback, data on the same disk as the embedded
store's, with the settings docs/production.md asks for. Run through scripts/bench."""

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecs_api import ROOT, load, machine, prepare, start_berth
from figures import write_section
from local import free_port

OPERATIONS = ("DescribeTasks", "RunTask")


def start_etcd(data):
    binary = shutil.which("etcd")
    if not binary:
        raise SystemExit("etcd is not installed (apt-get install etcd-server)")
    client, peer = free_port(), free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    proc = subprocess.Popen([binary, "--name=bench", f"--data-dir={data}", f"--listen-client-urls={url}",
                             f"--advertise-client-urls={url}", f"--listen-peer-urls={peer_url}",
                             f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=bench={peer_url}",
                             "--max-txn-ops=10000", "--max-request-bytes=16777216", "--logger=zap",
                             "--log-level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", client), timeout=1).close()
            return proc, f"127.0.0.1:{client}"
        except OSError:
            if time.time() > deadline:
                raise RuntimeError("etcd did not start")
            time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth-bin", default=str(ROOT / "target/release/berth"))
    ap.add_argument("--bench-bin", default=str(ROOT / "target/release/berth-bench"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--write", default=str(ROOT / "docs/performance.md"))
    args = ap.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        etcd, hosts = start_etcd(Path(tmp) / "etcd")
        try:
            for store in ("embedded", "etcd"):
                extra = ("--runtime", "none", "--dns-address", "off")
                if store == "etcd":
                    extra += ("--store", f"etcd://{hosts}")
                proc, endpoint, key, secret = start_berth(args.berth_bin, str(Path(tmp) / store), *extra)
                try:
                    bodies = prepare(endpoint, key, secret, False)
                    for op in OPERATIONS:
                        r = load(args.bench_bin, endpoint, key, secret, op, bodies[op], args.seconds, args.connections)
                        results[(store, op)] = r
                        print(f"{store:9} {op:14} {r['rps']:10.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                              f"p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}", flush=True)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=30)
        finally:
            etcd.send_signal(signal.SIGTERM)
            etcd.wait(timeout=30)

    rows = []
    for op in OPERATIONS:
        e, d = results[("etcd", op)], results[("embedded", op)]
        rows.append(f"| {op} | {e['rps']:,.0f} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {d['rps']:,.0f} | "
                    f"{d['p50_ms']:.2f} | {d['p99_ms']:.2f} | **{e['rps'] / d['rps']:.2f}x** |")
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; {args.connections} keep-alive connections, "
        f"{args.seconds:.0f} s per run after a 1 s warm-up; etcd, server and client on the same machine.",
        "",
        "| operation | etcd req/s | etcd p50 ms | etcd p99 ms | embedded req/s | embedded p50 ms | embedded p99 ms | etcd / embedded |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print("\n" + table)
    write_section("store", table, args.write)


if __name__ == "__main__":
    sys.exit(main())
