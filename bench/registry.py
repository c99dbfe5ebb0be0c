"""Registry throughput: Berth against Debian's docker-registry (CNCF distribution 2.8), each on
loopback, in one run on the same disk, with this machine's limits measured alongside.

An image of about 1 GiB over 10 incompressible layers is pushed and pulled with curl (so the
client is not the bottleneck), layers in parallel: monolithic uploads (POST, then one PUT) and
chunked ones (PATCH in 16 MiB chunks). Then skopeo copies the same image in end to end.
Berth's peak RSS is read from /proc after its 1 GiB pushes.

    python3 bench/registry.py [--size-mib 1024] [--layers 10] [--berth target/release/berth]
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3

from figures import write_section
from local import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 16 << 20


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-f", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"curl {args}: {p.stderr}")
    return p.stdout


class Target:
    def __init__(self, name, base, creds=None, pid=None):
        self.name, self.base, self.pid = name, base, pid
        self.auth = ["-u", creds] if creds else []

    def session(self, repo):
        headers = curl(*self.auth, "-X", "POST", "-D", "-", "-o", "/dev/null", f"{self.base}/v2/{repo}/blobs/uploads/")
        loc = re.search(r"(?im)^location:\s*(\S+)", headers).group(1)
        return loc if loc.startswith("http") else self.base + loc

    def push_monolithic(self, repo, path, digest):
        """POST a session, then PUT the whole blob with its digest (streamed from the file)."""
        url = self.session(repo)
        sep = "&" if "?" in url else "?"
        curl(*self.auth, "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", str(path),
             "-o", "/dev/null", f"{url}{sep}digest={digest}")

    def push_chunked(self, repo, path, digest):
        loc = self.session(repo)
        size = os.path.getsize(path)
        for n, start in enumerate(range(0, size, CHUNK)):
            end = min(start + CHUNK, size) - 1
            url = loc if loc.startswith("http") else self.base + loc
            # Each chunk is its own file, cut before the clock starts (see split_chunks), so
            # curl sends it straight from the page cache: the client stays cheap.
            headers = subprocess.run(["curl", "-sS", "-f", *self.auth, "-X", "PATCH", "-H", f"Content-Range: {start}-{end}",
                                      "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{path}.chunk{n}",
                                      "-D", "-", "-o", "/dev/null", url],
                                     capture_output=True, text=True, check=True).stdout
            loc = re.search(r"(?im)^location:\s*(\S+)", headers).group(1)
        url = loc if loc.startswith("http") else self.base + loc
        sep = "&" if "?" in url else "?"
        curl(*self.auth, "-X", "PUT", "-o", "/dev/null", f"{url}{sep}digest={digest}")

    def pull(self, repo, digest):
        curl(*self.auth, "-o", "/dev/null", f"{self.base}/v2/{repo}/blobs/{digest}")

    def peak_rss_mib(self):
        if not self.pid:
            return None
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def parallel(fn, items):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(items)) as pool:
        list(pool.map(fn, items))
    return time.perf_counter() - start


def machine_limits(layers, work):
    start = time.perf_counter()
    for path, _ in layers:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    sha = sum(os.path.getsize(p) for p, _ in layers) / (time.perf_counter() - start)
    total = sum(os.path.getsize(p) for p, _ in layers)
    out = work / "fsync-test"
    start = time.perf_counter()
    with open(out, "wb") as f:
        for path, _ in layers:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
        f.flush()
        os.fsync(f.fileno())
    write = total / (time.perf_counter() - start)
    out.unlink()
    return sha, write


def oci_layout(layers, out):
    (out / "blobs" / "sha256").mkdir(parents=True)
    descs = []
    for path, digest in layers:
        os.link(path, out / "blobs" / "sha256" / digest.split(":")[1])
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": os.path.getsize(path)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
    cd = "sha256:" + hashlib.sha256(config).hexdigest()
    (out / "blobs" / "sha256" / cd.split(":")[1]).write_bytes(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
                           "layers": descs}).encode()
    md = "sha256:" + hashlib.sha256(manifest).hexdigest()
    (out / "blobs" / "sha256" / md.split(":")[1]).write_bytes(manifest)
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def split_chunks(path):
    """Writes `path` as CHUNK-sized files `path.chunkN` for the chunked pushes."""
    with open(path, "rb") as f:
        n = 0
        while data := f.read(CHUNK):
            Path(f"{path}.chunk{n}").write_bytes(data)
            n += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--berth", default=str(ROOT / "target/release/berth"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-registry-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    procs = []
    try:
        per = args.size_mib // args.layers
        layers = []
        for i in range(args.layers):
            path = work / f"layer{i}"
            data = os.urandom(per << 20)
            path.write_bytes(data)
            layers.append((path, "sha256:" + hashlib.sha256(data).hexdigest()))
            split_chunks(path)
        total = sum(os.path.getsize(p) for p, _ in layers)
        sha, fsync_write = machine_limits(layers, work)

        # Debian's distribution 2.8.
        dport = free_port()
        cfg = work / "distribution.yml"
        cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work / 'distribution'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{dport}\n")
        procs.append(subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{dport}/v2/")
        distribution = Target("distribution 2.8", f"http://127.0.0.1:{dport}", pid=procs[-1].pid)

        # Berth, its registry only.
        bport = free_port()
        berth = subprocess.Popen([args.berth, "up", "--runtime", "none", "--data-dir", str(work / "berth"),
                                  "--listen", f"127.0.0.1:{bport}", "--registry-create-on-push"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(berth)
        for line in berth.stdout:
            m = re.match(r"export AWS_ENDPOINT_URL=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
            if m:
                break
        ecr = boto3.client("ecr", endpoint_url=m.group(1), aws_access_key_id=m.group(2), aws_secret_access_key=m.group(3),
                           region_name="us-east-1")
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().split(":", 1)[1]
        ours = Target("Berth", f"http://127.0.0.1:{bport}", creds=f"AWS:{password}", pid=berth.pid)

        rows = []
        for target in (distribution, ours):
            row = {"target": target}
            row["push monolithic"] = parallel(lambda l: target.push_monolithic("mono", *l), layers)
            row["rss"] = target.peak_rss_mib()
            row["push chunked"] = parallel(lambda l: target.push_chunked("chunked", *l), layers)
            row["pull"] = parallel(lambda l: target.pull("mono", l[1]), layers)
            rows.append(row)

        layout = work / "layout"
        oci_layout(layers, layout)
        for row in rows:
            t = row["target"]
            host = t.base.removeprefix("http://")
            creds = ["--dest-creds", t.auth[1]] if t.auth else []
            start = time.perf_counter()
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *creds, f"oci:{layout}:1", f"docker://{host}/skopeo:1"], check=True)
            row["skopeo push"] = time.perf_counter() - start

        mb = total / 1e6
        lines = [f"{mb:.0f} MB in {args.layers} incompressible layers, pushed and pulled layers in parallel with curl; "
                 f"machine limits in the same run: sha256 {sha / 1e6:.0f} MB/s, fsynced write {fsync_write / 1e6:.0f} MB/s.", "",
                 "| | " + " | ".join(r["target"].name for r in rows) + " | Berth / distribution |", "|---|---|---|---|"]
        for key in ["push monolithic", "push chunked", "pull", "skopeo push"]:
            d, b = rows[0][key], rows[1][key]
            lines.append(f"| {key} | {d:.2f} s, {mb / d:.0f} MB/s | {b:.2f} s, {mb / b:.0f} MB/s | {d / b:.2f}x |")
        slower = min(sha, fsync_write) / 1e6
        lines.append("")
        lines.append(f"Berth's monolithic push is {mb / rows[1]['push monolithic'] / slower:.0%} of the slower machine limit "
                     f"({slower:.0f} MB/s); its peak RSS after the pushes was {rows[1]['rss']:.0f} MiB.")
        table = "\n".join(lines)
        print(table)
        write_section("registry", table)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
