"""The registry with its blobs in S3-compatible object storage (`--registry-storage s3://...`,
against moto's S3 server on loopback): push and pull with skopeo, a SIGKILL during 20 pushes,
garbage collection, and two servers sharing one bucket and one etcd state."""

import json
import secrets
import subprocess

import boto3
import pytest

from conftest import BIN, Berth
from etcd_helpers import KEYS, namespace
from registry_helpers import (V2, check_served_blobs_and_push_again, host, kill_during_twenty_pushes,
                              login_password, multi_layer_layout, sha256, skopeo)


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def bucket(moto_s3):
    name = f"berth-{secrets.token_hex(4)}"
    s3_client(moto_s3).create_bucket(Bucket=name)
    return name


def storage_args(endpoint, bucket):
    return ("--registry-storage", f"s3://{bucket}/registry", "--registry-s3-endpoint", endpoint,
            "--registry-s3-path-style", "--registry-s3-access-key", "test", "--registry-s3-secret-key", "test")


def keys_under(endpoint, bucket, prefix):
    s3 = s3_client(endpoint)
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def test_skopeo_pushes_and_pulls_through_the_bucket(moto_s3, bucket, busybox_layout, tmp_path):
    b = Berth(tmp_path / "data", ("--runtime", "none", *storage_args(moto_s3, bucket))).start()
    try:
        digest, manifest = multi_layer_layout(tmp_path / "in", busybox_layout, extra_layers=2, tag="1")
        b.client("ecr").create_repository(repositoryName="team/web")
        creds = f"AWS:{login_password(b)}"
        skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'in'}:1",
               f"docker://{host(b)}/team/web:1")
        out = tmp_path / "out"
        skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds, f"docker://{host(b)}/team/web:1",
               f"oci:{out}:1")
        assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == digest
        blobs = keys_under(moto_s3, bucket, "registry/blobs/sha256/")
        for d in [l["digest"] for l in manifest["layers"]] + [manifest["config"]["digest"]]:
            assert f"registry/blobs/sha256/{d.split(':')[1]}" in blobs
            assert sha256((out / "blobs" / "sha256" / d.split(":")[1]).read_bytes()) == d
        assert keys_under(moto_s3, bucket, "registry/uploads/") == [], "committed uploads leave nothing behind"
        assert not list((tmp_path / "data" / "registry").glob("blobs/**/*")), "no blob on the server's disk"
    finally:
        b.stop()


def test_kill_during_twenty_pushes_leaves_only_whole_blobs(moto_s3, bucket, tmp_path):
    b = Berth(tmp_path / "data", ("--runtime", "none", *storage_args(moto_s3, bucket))).start()
    try:
        kill_during_twenty_pushes(b)
        # Every object under a blob's name is whole: served, it matches its digest.
        stored = ["sha256:" + k.rsplit("/", 1)[1] for k in keys_under(moto_s3, bucket, "registry/blobs/sha256/")]
        check_served_blobs_and_push_again(b, stored)
    finally:
        b.stop()


def test_garbage_collection_in_the_bucket_keeps_what_manifests_use(moto_s3, bucket, tmp_path):
    args = ("--runtime", "none", *storage_args(moto_s3, bucket))
    b = Berth(tmp_path / "data", args).start()
    b.client("ecr").create_repository(repositoryName="web")
    v2 = V2(b, login_password(b))
    digest, manifest = v2.push_image("web", "1", [b"kept layer"])
    orphan = v2.push_blob("web", b"orphan layer")["digest"]
    abandoned = v2("POST", "/v2/web/blobs/uploads/").headers["Location"]
    v2("PATCH", abandoned, data=b"half", headers={"Content-Range": "0-3"})
    assert keys_under(moto_s3, bucket, "registry/uploads/"), "the abandoned upload is in the bucket"
    b.stop()
    p = subprocess.run([BIN, "registry", "gc", "--data-dir", str(b.data_dir), "--registry-gc-grace", "0", *args[2:]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("removed 1 blobs"), p.stdout
    assert "1 abandoned uploads" in p.stdout, p.stdout
    assert keys_under(moto_s3, bucket, "registry/uploads/") == []
    assert f"registry/blobs/sha256/{orphan.split(':')[1]}" not in keys_under(moto_s3, bucket, "registry/blobs/")
    b.start()
    try:
        v2 = V2(b, login_password(b))
        assert v2("HEAD", f"/v2/web/blobs/{orphan}").status_code == 404
        for layer in manifest["layers"] + [manifest["config"]]:
            assert v2("HEAD", f"/v2/web/blobs/{layer['digest']}").status_code == 200
        assert v2("GET", "/v2/web/manifests/1").headers["Docker-Content-Digest"] == digest
    finally:
        b.stop()


def test_two_servers_share_the_bucket_and_the_state(moto_s3, bucket, etcd, tmp_path):
    """Pushed through one server, pulled through the other with the first one's token."""
    ns = namespace()
    shared = ("--runtime", "none", *KEYS, "--store", f"etcd://{etcd.hosts}", "--etcd-namespace", ns,
              *storage_args(moto_s3, bucket))
    a = Berth(tmp_path / "a", shared).start()
    b = Berth(tmp_path / "b", shared).start()
    try:
        a.client("ecr").create_repository(repositoryName="web")
        password = login_password(a)
        digest, manifest = V2(a, password).push_image("web", "1", [b"layer one", b"layer two"])
        via_b = V2(b, password)
        m = via_b("GET", "/v2/web/manifests/1")
        assert m.status_code == 200 and m.headers["Docker-Content-Digest"] == digest
        for layer in manifest["layers"]:
            assert sha256(via_b("GET", f"/v2/web/blobs/{layer['digest']}").content) == layer["digest"]
        # An upload started on one server is finished on the other.
        loc = via_b("POST", "/v2/web/blobs/uploads/").headers["Location"]
        assert via_b("PATCH", loc, data=b"abc", headers={"Content-Range": "0-2"}).status_code == 202
        via_a = V2(a, login_password(b))
        assert via_a("PATCH", loc, data=b"def", headers={"Content-Range": "3-5"}).status_code == 202
        assert via_a("PUT", loc, params={"digest": sha256(b"abcdef")}).status_code == 201
        assert via_b("GET", f"/v2/web/blobs/{sha256(b'abcdef')}").content == b"abcdef"
        detail = b.client("ecr").describe_images(repositoryName="web")["imageDetails"]
        assert [d["imageDigest"] for d in detail] == [digest]
    finally:
        a.stop()
        b.stop()


def test_unreachable_or_bad_storage_stops_the_server(moto_s3, tmp_path):
    for args, message in [
        (("--registry-storage", "s3://no-such-bucket-here", "--registry-s3-endpoint", moto_s3, "--registry-s3-path-style",
          "--registry-s3-access-key", "test", "--registry-s3-secret-key", "test"), "reaching the registry's bucket"),
        (("--registry-storage", "s3://UPPER"), "is not a bucket name"),
        (("--registry-s3-path-style",), "need --registry-storage"),
    ]:
        with pytest.raises(RuntimeError) as failed:
            Berth(tmp_path / "d", ("--runtime", "none", *args)).start()
        assert message in str(failed.value), (args, str(failed.value))
