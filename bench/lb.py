"""Load balancer throughput: Berth's data plane against HAProxy 2.6 and nginx (Debian packages),
in one run, in front of the same three backends, with direct-to-backend as the ceiling.

The backends are one nginx-light process serving three ports (`return 200` of a 2-byte body,
keep-alive, no logs). Each proxy is configured the same way: round robin over the three,
keep-alive to the backends (pooled connections), X-Forwarded-For/-Proto/-Port added, the same
number of threads (`--threads`: HAProxy's nbthread, nginx's worker_processes, the Berth data
plane's serving threads), each kept on a core of its own as Berth keeps its serving threads
(HAProxy's `cpu-map`, nginx's `worker_cpu_affinity auto`). HAProxy with its default placement
(threads left to the kernel) and Berth with `--affinity none` are measured too, so what the
placement does is seen. Before measuring, each proxy must spread six requests over all three
backends. Load comes from wrk (one thread, `--connections` keep-alive connections, small
responses) after a warm-up; each peer is measured `--rounds` times, interleaved, and the
median round (by requests/s) is reported with its p99. The CPU time each server used per
request (from /proc, nginx's workers included) is reported too, as the median over the
rounds: on a shared machine it moves less than throughput does.

Berth's data plane runs in `berth-bench lb`, which applies a configuration file to it: the
same data plane `berth up` serves listeners with, alone in its process.

    python3 bench/lb.py [--seconds 10] [--connections 64] [--rounds 3] [--threads 2]
                        [--berth-bench target/release/berth-bench]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from ecs_api import machine
from figures import write_section
from local import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]


def backend_conf(work, ports):
    servers = "\n".join(
        f"  server {{ listen 127.0.0.1:{p}; location / {{ return 200 'b{i}'; }} }}" for i, p in enumerate(ports)
    )
    return f"""
worker_processes 1;
daemon off;
pid {work}/backend.pid;
error_log {work}/backend.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  default_type text/plain;
{servers}
}}
"""


def nginx_proxy_conf(work, port, backends, threads):
    upstream = "\n".join(f"    server 127.0.0.1:{p};" for p in backends)
    return f"""
worker_processes {threads};
worker_cpu_affinity auto;
daemon off;
pid {work}/proxy.pid;
error_log {work}/proxy.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream backends {{
{upstream}
    keepalive 256;
    keepalive_requests 1000000;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
    }}
  }}
}}
"""


def haproxy_conf(port, backends, threads, pinned):
    servers = "\n".join(f"  server b{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    # Thread i on the i-th CPU, as Berth places its serving threads.
    cpu_map = f"  cpu-map auto:1/1-{threads} 0-{threads - 1}\n" if pinned else ""
    return f"""
global
  nbthread {threads}
{cpu_map}  maxconn 8000
defaults
  mode http
  timeout connect 10s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend web
  bind 127.0.0.1:{port}
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Port %[dst_port]
  default_backend backends
backend backends
  balance roundrobin
{servers}
"""


def berth_conf(port, backends):
    def secs(s):
        return {"secs": s, "nanos": 0}

    targets = [{"key": {"id": "127.0.0.1", "port": p}, "address": f"127.0.0.1:{p}", "draining": False} for p in backends]
    group = {
        "arn": "tg", "protocol": "Http", "algorithm": "RoundRobin", "slow_start": secs(0), "stickiness": None,
        "health_check": {"enabled": False, "protocol": "Http", "port": None, "path": "/", "interval": secs(30),
                         "timeout": secs(5), "healthy_threshold": 5, "unhealthy_threshold": 2, "matcher": [[200, 200]]},
        "targets": targets,
    }
    listener = {
        "arn": "web", "load_balancer_arn": "lb", "address": f"127.0.0.1:{port}", "protocol": "Http",
        "idle_timeout": secs(60),
        "rules": [{"arn": "default", "conditions": [],
                   "action": {"Forward": {"groups": [{"target_group_arn": "tg", "weight": 1}], "stickiness": None}}}],
    }
    return {"listeners": [listener], "target_groups": {"tg": group}}


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(errors.group(1)) if errors else 0) + (sum(int(x) for x in socket.groups()) if socket else 0)
    return {"rps": rps, "p50": to_ms(*p50.groups()), "p99": to_ms(*p99.groups()), "errors": failed}


def cpu_seconds(pid):
    """User plus system CPU time of a process and its children (nginx's workers)."""
    def own(p):
        try:
            rest = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, None
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK"), int(rest[1])

    total = own(pid)[0]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(pid):
            used, parent = own(entry.name)
            if parent == pid:
                total += used
    return total


def spread(port):
    """The bodies of six requests through a proxy: all three backends must answer."""
    seen = set()
    for _ in range(6):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            seen.add(r.read().decode())
    return seen


def start(cmd, work, name, env=None):
    log = open(work / f"{name}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--berth-bench", default=str(ROOT / "target/release/berth-bench"))
    args = ap.parse_args()
    for tool in ("wrk", "haproxy", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk haproxy nginx-light")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"

    work = Path(tempfile.mkdtemp(prefix="berth-bench-lb-"))
    procs = []
    try:
        backends = [free_port() for _ in range(3)]
        (work / "backend.conf").write_text(backend_conf(work, backends))
        procs.append(start([nginx, "-p", str(work), "-c", str(work / "backend.conf")], work, "backend"))
        for p in backends:
            wait_http(f"http://127.0.0.1:{p}/")

        peers = {"direct": backends[0]}
        pids = {"direct": procs[0].pid}
        # mimalloc keeps freed memory, as `berth` tells it to in its code.
        berth_env = {**os.environ, "MIMALLOC_PURGE_DELAY": "-1"}
        for name, placement in (("Berth", "cores"), ("Berth unpinned", "none")):
            port = free_port()
            conf = work / f"berth-{placement}.json"
            conf.write_text(json.dumps(berth_conf(port, backends)))
            procs.append(start([args.berth_bench, "lb", "--config", str(conf), "--threads", str(args.threads),
                                "--affinity", placement], work, f"berth-{placement}", env=berth_env))
            peers[name], pids[name] = port, procs[-1].pid
        for name, pinned in (("HAProxy", True), ("HAProxy unpinned", False)):
            port = free_port()
            conf = work / f"haproxy-{pinned}.cfg"
            conf.write_text(haproxy_conf(port, backends, args.threads, pinned))
            procs.append(start([haproxy, "-f", str(conf), "-db"], work, f"haproxy-{pinned}"))
            peers[name], pids[name] = port, procs[-1].pid
        nginx_port = free_port()
        (work / "proxy.conf").write_text(nginx_proxy_conf(work, nginx_port, backends, args.threads))
        procs.append(start([nginx, "-p", str(work), "-c", str(work / "proxy.conf")], work, "nginx"))
        peers["nginx"] = nginx_port
        pids["nginx"] = procs[-1].pid
        for name, port in peers.items():
            wait_http(f"http://127.0.0.1:{port}/")
            if name != "direct" and spread(port) != {"b0", "b1", "b2"}:
                raise SystemExit(f"{name} does not spread requests over the three backends: {spread(port)}")

        runs = {name: [] for name in peers}
        for r in range(args.rounds):
            for name, port in peers.items():
                url = f"http://127.0.0.1:{port}/"
                wrk(url, args.warmup, args.connections)
                before = cpu_seconds(pids[name])
                res = wrk(url, args.seconds, args.connections)
                # CPU per request of the server measured (the proxy; for "direct", the backend).
                res["cpu_us"] = (cpu_seconds(pids[name]) - before) / (res["rps"] * args.seconds) * 1e6
                runs[name].append(res)
                print(f"round {r + 1} {name}: {res['rps']:,.0f} req/s, p50 {res['p50']:.2f} ms, "
                      f"p99 {res['p99']:.2f} ms, {res['cpu_us']:.1f} us CPU/request, {res['errors']} errors", flush=True)
    except Exception:
        for log in sorted(work.glob("*.log")) + sorted(work.glob("*.err")):
            print(f"--- {log.name}\n{log.read_text()[-2000:]}")
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    median = {name: sorted(rs, key=lambda x: x["rps"])[len(rs) // 2] for name, rs in runs.items()}
    # CPU per request varies less with the machine's other load than throughput: its median
    # over every round.
    cpu = {name: statistics.median(r["cpu_us"] for r in rs) for name, rs in runs.items()}
    b, h, n = median["Berth"], median["HAProxy"], median["nginx"]
    bu, hu = median["Berth unpinned"], median["HAProxy unpinned"]
    rows = [
        ("direct", "direct to one backend (ceiling)"),
        ("Berth", "Berth data plane"),
        ("HAProxy", "HAProxy 2.6 (`cpu-map`)"),
        ("nginx", f"nginx {nginx_version(nginx)} (`worker_cpu_affinity auto`)"),
        ("Berth unpinned", "Berth data plane, `--affinity none`"),
        ("HAProxy unpinned", "HAProxy 2.6, threads left to the kernel"),
    ]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; wrk, 1 thread, {args.connections} keep-alive "
        f"connections, {args.seconds} s per run after a {args.warmup} s warm-up, median of {args.rounds} interleaved "
        f"rounds; {args.threads} threads per proxy, each on a core of its own unless said otherwise; load, proxies "
        f"and backends share the machine.",
        "",
        "| | req/s | p50 ms | p99 ms | errors | CPU µs per request (server) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in rows:
        m = median[name]
        lines.append(f"| {label} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['errors']} | {cpu[name]:.1f} |")
    lines += [
        "",
        f"Berth / HAProxy: **{b['rps'] / h['rps']:.2f}x** the requests/s at **{b['p99'] / h['p99']:.2f}x** the p99; "
        f"Berth / nginx: **{b['rps'] / n['rps']:.2f}x** the requests/s at {b['p99'] / n['p99']:.2f}x the p99. "
        f"With the kernel placing every thread: Berth / HAProxy {bu['rps'] / hu['rps']:.2f}x the requests/s at "
        f"{bu['p99'] / hu['p99']:.2f}x the p99. "
        f"CPU per proxied request: Berth {cpu['Berth']:.1f} µs, HAProxy {cpu['HAProxy']:.1f} µs "
        f"(Berth uses {cpu['Berth'] / cpu['HAProxy']:.2f}x HAProxy's), nginx {cpu['nginx']:.1f} µs "
        f"(Berth uses {cpu['Berth'] / cpu['nginx']:.2f}x nginx's).",
        "",
        "Rounds (req/s, p99 ms): " + "; ".join(
            f"{name} " + ", ".join(f"{r['rps']:,.0f}/{r['p99']:.1f}" for r in rs) for name, rs in runs.items()) + ".",
    ]
    table = "\n".join(lines)
    print(table)
    write_section("lb", table)


def nginx_version(nginx):
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    m = re.search(r"nginx/([\d.]+)", out)
    return m.group(1) if m else ""


if __name__ == "__main__":
    main()
