"""Berth's DNS server against dnsmasq (Debian's), serving the same records, in one run:
queries per second and latency percentiles under dnsperf (Debian's), and the time from a
RegisterInstance call returning to its name resolving.

Both servers listen on loopback. Berth's records come from Cloud Map (a private DNS namespace
`bench.internal`, a MULTIVALUE service `web` with A and SRV records and four instances);
dnsmasq is given the same names on its command line (`--host-record`, `--srv-host`, and
`--local` so other names of the zone are NXDOMAIN, as in Berth's zone). The query mix cycles
through `web` A, `web` SRV, an instance's own A record and a name that does not exist.
dnsperf runs each server for the same time with the same settings (one client, 100 queries
outstanding), reporting each query (`-v`) so the percentiles are of every answer.

    python3 bench/dns.py [--seconds 10] [--berth target/release/berth]
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from ecs_api import machine
from figures import write_section

ROOT = Path(__file__).resolve().parents[1]
ZONE = "bench.internal"
INSTANCES = [(f"t{i}", f"10.1.0.{i}") for i in range(1, 5)]
QUERIES = [f"web.{ZONE} A", f"web.{ZONE} SRV", f"t2.web.{ZONE} A", f"nope.{ZONE} A"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_berth(binary, work):
    proc = subprocess.Popen([binary, "up", "--data-dir", str(work / "berth"), "--listen", "127.0.0.1:0",
                             "--runtime", "none", "--dns-address", "127.0.0.1:0", "--dns-forwarders", "127.0.0.1:9"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    dns = export = None
    for line in proc.stdout:
        dns = dns or re.match(r"  dns       127\.0\.0\.1:(\d+) ", line)
        export = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
        if export:
            break
    kw = dict(endpoint_url=export.group(1), region_name="us-east-1", aws_access_key_id=export.group(2),
              aws_secret_access_key=export.group(3), config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    return proc, int(dns.group(1)), kw


def populate(kw):
    """The namespace, the service and its instances; returns the Cloud Map client and service."""
    sd = boto3.client("servicediscovery", **kw)
    vpc = boto3.client("ec2", **kw).describe_vpcs()["Vpcs"][0]["VpcId"]
    op = sd.create_private_dns_namespace(Name=ZONE, Vpc=vpc)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    svc = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={
        "RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 10}]})["Service"]["Id"]
    for instance, ip in INSTANCES:
        sd.register_instance(ServiceId=svc, InstanceId=instance, Attributes={"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": "8080"})
    return sd, svc


def start_dnsmasq(port):
    # Logs go to stderr (discarded): dnsmasq hands a log *file* to the user it drops to, and
    # given /dev/null it would leave the host's /dev/null owned by nobody.
    args = ["dnsmasq", "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", f"--local=/{ZONE}/", "--pid-file=", "--log-facility=-"]
    for instance, ip in INSTANCES:
        args += [f"--host-record=web.{ZONE},{ip}", f"--host-record={instance}.web.{ZONE},{ip}",
                 f"--srv-host=web.{ZONE},{instance}.web.{ZONE},8080,1,1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def dig(port, name, rdtype="A"):
    out = subprocess.run(["dig", "+short", "+tries=1", "+time=1", "-p", str(port), "@127.0.0.1", name, rdtype],
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def check_same_answers(berth_port, dnsmasq_port):
    for q in QUERIES:
        name, rdtype = q.split()
        a, b = dig(berth_port, name, rdtype), dig(dnsmasq_port, name, rdtype)
        assert a == b, f"{q}: Berth {a}, dnsmasq {b}"


def dnsperf(port, queries, seconds):
    """dnsperf against 127.0.0.1:port: (queries/s, lost, per-query latencies in ms)."""
    subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", "1"],
                   capture_output=True)  # warm-up
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds), "-v"],
                         capture_output=True, text=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    latencies = [float(line.rsplit(" ", 1)[1]) * 1000 for line in out.splitlines() if line.startswith("> ")]
    return qps, lost, latencies


def percentile(values, p):
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1]


def answers(port, name, ip):
    """Whether an A query for `name` (one small UDP exchange, no process started) answers `ip`."""
    query = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(query, ("127.0.0.1", port))
        reply = s.recv(4096)
    return reply[3] & 0x0F == 0 and socket.inet_aton(ip) in reply[len(query):]


def time_to_resolve(sd, svc, port, rounds=20):
    """Median and worst ms from RegisterInstance returning to the new instance's own name
    answering, polled with UDP queries."""
    times = []
    for i in range(rounds):
        instance, ip = f"n{i}", f"10.2.0.{i + 1}"
        sd.register_instance(ServiceId=svc, InstanceId=instance, Attributes={"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": "80"})
        t = time.perf_counter()
        while not answers(port, f"{instance}.web.{ZONE}", ip):
            pass
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--berth", default=str(ROOT / "target/release/berth"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-dns-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    berth = dnsmasq = None
    try:
        berth, berth_port, kw = start_berth(args.berth, work)
        sd, svc = populate(kw)
        dnsmasq = start_dnsmasq(free_port())
        dnsmasq_port = int(re.search(r"--port=(\d+)", " ".join(dnsmasq.args)).group(1))
        time.sleep(0.2)
        check_same_answers(berth_port, dnsmasq_port)
        queries = work / "queries.txt"
        queries.write_text("\n".join(QUERIES) + "\n")
        rows = []
        for name, port in [("Berth", berth_port), ("dnsmasq 2.90", dnsmasq_port)]:
            qps, lost, lat = dnsperf(port, queries, args.seconds)
            rows.append((name, qps, lost, percentile(lat, 50), percentile(lat, 99)))
        ratio = rows[0][1] / rows[1][1]
        build = "release" if "/release/" in str(Path(args.berth).resolve()) else "debug (unoptimised)"
        median_ms, worst_ms = time_to_resolve(sd, svc, berth_port)
        table = "\n".join([
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; dnsperf 2.10 over UDP on loopback, one client, "
            f"100 queries outstanding, {args.seconds} s per server after a 1 s warm-up; Berth's {build} build.",
            "",
            "| server | queries/s | lost | p50 ms | p99 ms | / dnsmasq |",
            "|---|---:|---:|---:|---:|---:|",
            *[f"| {n} | {q:,.0f} | {lost} | {p50:.3f} | {p99:.3f} | {'**%.2fx**' % ratio if n == 'Berth' else ''} |"
              for n, q, lost, p50, p99 in rows],
            "",
            f"RegisterInstance returning → the instance's name answering (polled over UDP): median {median_ms:.1f} ms, "
            f"worst {worst_ms:.1f} ms of 20.",
        ])
        print(table)
        write_section("dns", table)
    finally:
        for proc in (berth, dnsmasq):
            if proc:
                proc.terminate()
                proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
