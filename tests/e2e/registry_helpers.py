"""Helpers for the registry tests: ECR tokens, a small /v2/ client, and images built
locally (blobs, manifests, multi-layer OCI layouts)."""

import base64
import gzip
import hashlib
import subprocess
import hmac
import io
import json
import os
import tarfile
from pathlib import Path

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def login_password(berth, region="us-east-1"):
    """The password `aws ecr get-login-password` prints, from GetAuthorizationToken."""
    data = berth.client("ecr", region=region).get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS"
    return password


def forged_password(berth, access_key, region, expires_at):
    """A token signed with the server's own secret, expiring at `expires_at` (epoch secs)."""
    secret = bytes.fromhex((Path(berth.data_dir) / "registry" / "token.key").read_text().strip())
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    claims = b64(f"{access_key}\n{region}\n{int(expires_at)}".encode())
    tag = b64(hmac.new(secret, claims.encode(), hashlib.sha256).digest())
    return f"{claims}.{tag}"


class V2:
    """A /v2/ client: every call returns the `requests` response."""

    def __init__(self, berth, password=None):
        self.base = berth.endpoint
        self.session = requests.Session()
        if password is not None:
            self.session.auth = ("AWS", password)

    def __call__(self, method, path, **kw):
        return self.session.request(method, self.base + path, timeout=60, allow_redirects=False, **kw)

    def push_blob(self, repo, data):
        d = sha256(data)
        r = self("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data)
        assert r.status_code == 201, r.text
        return {"digest": d, "size": len(data)}

    def push_manifest(self, repo, ref, manifest, media_type=OCI_MANIFEST):
        body = json.dumps(manifest).encode()
        r = self("PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        return r.headers["Docker-Content-Digest"]

    def push_image(self, repo, ref, layers, config=None, extra=None):
        """Pushes `layers` (bytes) and a config; returns (manifest digest, manifest)."""
        cfg = self.push_blob(repo, config or json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()}).encode())
        descs = [dict(self.push_blob(repo, l), mediaType=OCI_LAYER) for l in layers]
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(cfg, mediaType=OCI_CONFIG), "layers": descs}
        manifest.update(extra or {})
        return self.push_manifest(repo, ref, manifest), manifest

    def error_code(self, r):
        return r.json()["errors"][0]["code"]


def host(berth):
    """HOST:PORT of a server's registry, as image references name it."""
    return berth.endpoint.removeprefix("http://")


def skopeo(*args):
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def push_one(endpoint_berth, password, i):
    """Pushes an 8 MiB layer distinct per `i` in 512 KiB chunks, then image `load:t{i}`."""
    v2 = V2(endpoint_berth, password)
    layer = hashlib.sha256(str(i).encode()).digest() * 262144  # 8 MiB, distinct per push
    loc = v2("POST", "/v2/load/blobs/uploads/").headers["Location"]
    for start in range(0, len(layer), 512 * 1024):
        chunk = layer[start:start + 512 * 1024]
        r = v2("PATCH", loc, data=chunk, headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
        assert r.status_code == 202, r.text
    assert v2("PUT", loc, params={"digest": sha256(layer)}).status_code == 201
    return v2.push_image("load", f"t{i}", [layer[:1000] + str(i).encode()])


def kill_during_twenty_pushes(berth):
    """Starts 20 concurrent pushes into repository `load` (push_one) and SIGKILLs the server
    once some have finished while the rest are still uploading; then starts it again."""
    import concurrent.futures
    from ecs_helpers import until
    berth.client("ecr").create_repository(repositoryName="load")
    password = login_password(berth)
    pool = concurrent.futures.ThreadPoolExecutor(20)
    futures = [pool.submit(push_one, berth, password, i) for i in range(20)]
    watcher = V2(berth, password)
    assert until(lambda: len(watcher("GET", "/v2/load/tags/list").json()["tags"]) >= 2, timeout=120, interval=0.02)
    berth.kill()
    interrupted = 0
    for f in futures:
        try:
            f.result(timeout=60)
        except Exception:
            interrupted += 1
    pool.shutdown()
    assert interrupted > 0, "the kill came after every push had finished"
    berth.start()


def check_served_blobs_and_push_again(berth, stored_digests):
    """After kill_during_twenty_pushes: every stored blob the registry serves matches its digest,
    every tag's manifest too, and all 20 pushes succeed when retried."""
    import concurrent.futures
    v2 = V2(berth, login_password(berth))
    served = 0
    for d in stored_digests:
        r = v2("GET", f"/v2/load/blobs/{d}")
        if r.status_code == 200:
            assert sha256(r.content) == d
            served += 1
    assert served >= 2
    for tag in v2("GET", "/v2/load/tags/list").json()["tags"]:
        m = v2("GET", f"/v2/load/manifests/{tag}")
        assert sha256(m.content) == m.headers["Docker-Content-Digest"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: push_one(berth, login_password(berth), i), range(20)))
    for i, (digest, manifest) in enumerate(results):
        assert v2("GET", f"/v2/load/manifests/t{i}").headers["Docker-Content-Digest"] == digest
        for layer in manifest["layers"]:
            assert sha256(v2("GET", f"/v2/load/blobs/{layer['digest']}").content) == layer["digest"]


def tar_gz(files):
    """A gzipped tar of {name: bytes} with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), gzip.compress(buf.getvalue(), mtime=0)


def multi_layer_layout(out, busybox_layout, extra_layers=2, tag="latest"):
    """An OCI layout: the busybox fixture's layer plus `extra_layers` small layers."""
    out = Path(out)
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    src = Path(busybox_layout)
    index = json.loads((src / "index.json").read_text())
    read = lambda d: (src / "blobs" / "sha256" / d.split(":")[1]).read_bytes()
    base = json.loads(read(index["manifests"][0]["digest"]))
    config = json.loads(read(base["config"]["digest"]))

    def write(data):
        d = sha256(data)
        (out / "blobs" / "sha256" / d.split(":")[1]).write_bytes(data)
        return {"digest": d, "size": len(data)}

    layers = [dict(write(read(base["layers"][0]["digest"])), mediaType=OCI_LAYER)]
    for i in range(extra_layers):
        raw, gz = tar_gz({f"www/layer{i}.txt": f"layer {i}\n".encode() + os.urandom(64 * 1024).hex().encode()})
        layers.append(dict(write(gz), mediaType=OCI_LAYER))
        config["rootfs"]["diff_ids"].append(sha256(raw))
    cfg = dict(write(json.dumps(config, sort_keys=True).encode()), mediaType=OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": layers}
    m = write(json.dumps(manifest, sort_keys=True).encode())
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        dict(m, mediaType=OCI_MANIFEST, annotations={"org.opencontainers.image.ref.name": tag})]}))
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return m["digest"], manifest




def registry_state(ecr):
    """Everything in an ECR registry a refused call must leave as it was: repositories with
    their images, tags and policies, and the registry-wide settings."""
    def maybe(call, key, **kw):
        try:
            return call(**kw)[key]
        except ecr.exceptions.ClientError:
            return None

    repos = ecr.describe_repositories()["repositories"]
    out = {"repositories": repos}
    for r in repos:
        name = r["repositoryName"]
        out[name] = {
            "images": ecr.describe_images(repositoryName=name)["imageDetails"],
            "tags": ecr.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"],
            "policy": maybe(ecr.get_repository_policy, "policyText", repositoryName=name),
            "lifecycle": maybe(ecr.get_lifecycle_policy, "lifecyclePolicyText", repositoryName=name),
        }
    out["registryPolicy"] = maybe(ecr.get_registry_policy, "policyText")
    out["scanning"] = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    out["replication"] = ecr.describe_registry()["replicationConfiguration"]
    out["pullThrough"] = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    out["templates"] = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    out["settings"] = {n: ecr.get_account_setting(name=n)["value"]
                       for n in ["BASIC_SCAN_TYPE_VERSION", "REGISTRY_POLICY_SCOPE", "BLOB_MOUNTING"]}
    return out
