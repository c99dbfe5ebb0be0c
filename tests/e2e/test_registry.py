"""The registry on /v2/ (OCI distribution spec v1.1) with real clients: skopeo, docker,
oras; the spec's push and pull flows by hand; auth; durability across restarts and kills."""

import base64
import concurrent.futures
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ecs_helpers import until
from conftest import BIN, Berth, FIXTURES
from registry_helpers import (DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, V2,
                              check_served_blobs_and_push_again, forged_password, host, kill_during_twenty_pushes,
                              login_password, multi_layer_layout, sha256, skopeo)


@pytest.fixture
def ecr(berth):
    return berth.client("ecr")


@pytest.fixture
def v2(berth):
    return V2(berth, login_password(berth))


def test_base_challenges_and_refuses_missing_bad_and_expired_tokens(berth, ecr):
    r = V2(berth)("GET", "/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(data["authorizationToken"]).startswith(b"AWS:")
    assert abs(data["expiresAt"].timestamp() - time.time() - 12 * 3600) < 60
    assert data["proxyEndpoint"] == berth.endpoint
    password = login_password(berth)
    assert V2(berth, password)("GET", "/v2/").status_code == 200
    ecr.create_repository(repositoryName="web")
    for bad in ["not-a-token", password[:-2] + "xx", forged_password(berth, berth.access_key, "us-east-1", time.time() - 1)]:
        for path in ["/v2/", "/v2/web/tags/list"]:
            r = V2(berth, bad)("GET", path)
            assert r.status_code == 401, (bad, path)
            assert "WWW-Authenticate" in r.headers
    # The forger holds the real secret: a token in the future works, proving the expiry check is what refused.
    assert V2(berth, forged_password(berth, berth.access_key, "us-east-1", time.time() + 60))("GET", "/v2/").status_code == 200
    wrong_user = V2(berth)
    wrong_user.session.auth = ("bob", password)
    assert wrong_user("GET", "/v2/web/tags/list").status_code == 401
    # No credentials: a repository without a policy allowing it is not readable.
    assert V2(berth)("GET", "/v2/web/tags/list").status_code == 401


def test_skopeo_copies_a_multi_layer_image_in_and_out_with_identical_digests(berth, ecr, busybox_layout, tmp_path):
    digest, manifest = multi_layer_layout(tmp_path / "in", busybox_layout, extra_layers=2, tag="1")
    ecr.create_repository(repositoryName="team/web")
    creds = f"AWS:{login_password(berth)}"
    skopeo("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'in'}:1", f"docker://{host(berth)}/team/web:1")
    out = tmp_path / "out"
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds, f"docker://{host(berth)}/team/web:1", f"oci:{out}:1")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    for layer in manifest["layers"] + [manifest["config"]]:
        data = (out / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes()
        assert sha256(data) == layer["digest"]
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, f"docker://{host(berth)}/team/web:1"))
    assert raw == manifest
    detail = ecr.describe_images(repositoryName="team/web")["imageDetails"][0]
    assert detail["imageDigest"] == digest and detail["imageTags"] == ["1"]
    assert detail["imageSizeInBytes"] == sum(l["size"] for l in manifest["layers"])


def test_docker_login_push_and_pull_against_a_real_dockerd(berth, ecr, busybox_layout):
    ecr.create_repository(repositoryName="web")
    image = f"{host(berth)}/web:1"
    skopeo("copy", "--quiet", f"oci:{busybox_layout}:latest", f"docker-daemon:{image}")
    login = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", host(berth)],
                           input=login_password(berth), capture_output=True, text=True)
    assert login.returncode == 0, login.stderr
    try:
        push = subprocess.run(["docker", "push", image], capture_output=True, text=True, timeout=120)
        assert push.returncode == 0, push.stderr
        pushed = [l for l in push.stdout.splitlines() if "digest: " in l][0].split("digest: ")[1].split()[0]
        detail = ecr.describe_images(repositoryName="web", imageIds=[{"imageTag": "1"}])["imageDetails"][0]
        assert detail["imageDigest"] == pushed
        assert detail["imageManifestMediaType"] == DOCKER_MANIFEST
        subprocess.run(["docker", "rmi", image], capture_output=True)
        pull = subprocess.run(["docker", "pull", image], capture_output=True, text=True, timeout=120)
        assert pull.returncode == 0, pull.stderr
        assert pushed in pull.stdout
        run = subprocess.run(["docker", "run", "--rm", image, "cat", "/www/index.html"], capture_output=True, text=True, timeout=60)
        assert run.stdout == "hello from berth\n"
    finally:
        subprocess.run(["docker", "logout", host(berth)], capture_output=True)
        subprocess.run(["docker", "rmi", image], capture_output=True)


def test_oras_pushes_and_pulls_an_artifact_with_a_referrer(berth, ecr, v2, tmp_path, monkeypatch):
    import oras.oci
    import oras.provider

    ecr.create_repository(repositoryName="art")
    subject_digest, subject = v2.push_image("art", "app", [b"app layer"])
    client = oras.provider.Registry(hostname=host(berth), insecure=True, auth_backend="basic")
    client.auth.set_basic_auth("AWS", login_password(berth))
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"packages": []}')
    size = len(json.dumps(subject).encode())
    monkeypatch.chdir(tmp_path)  # oras names pushed files by their relative paths
    r = client.push(target=f"{host(berth)}/art:sbom", files=["sbom.json"],
                    subject=oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=size))
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == subject_digest
    refs = v2("GET", f"/v2/art/referrers/{subject_digest}")
    assert refs.status_code == 200 and refs.headers["Content-Type"] == OCI_INDEX
    [ref] = refs.json()["manifests"]
    assert ref["digest"] == r.headers["Docker-Content-Digest"]
    filtered = v2("GET", f"/v2/art/referrers/{subject_digest}", params={"artifactType": ref["artifactType"]})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType" and len(filtered.json()["manifests"]) == 1
    assert v2("GET", f"/v2/art/referrers/{subject_digest}", params={"artifactType": "application/x-other"}).json()["manifests"] == []
    out = tmp_path / "pulled"
    files = client.pull(target=f"{host(berth)}/art:sbom", outdir=str(out))
    assert Path(files[0]).read_text() == '{"packages": []}'


def test_chunked_upload_out_of_order_is_416_and_ranges_serve(berth, ecr, v2):
    ecr.create_repository(repositoryName="web")
    data = os.urandom(3000)
    r = v2("POST", "/v2/web/blobs/uploads/")
    assert r.status_code == 202
    loc = r.headers["Location"]
    r = v2("PATCH", loc, data=data[:1000], headers={"Content-Range": "0-999", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-999"
    r = v2("PATCH", loc, data=data[500:1500], headers={"Content-Range": "500-1499"})
    assert r.status_code == 416 and r.headers["Range"] == "0-999"
    r = v2("PATCH", loc, data=data[2000:], headers={"Content-Range": "2000-2999"})
    assert r.status_code == 416
    r = v2("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-999"
    assert v2("PATCH", loc, data=data[1000:], headers={"Content-Range": "1000-2999"}).status_code == 202
    r = v2("PUT", loc, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    blob = r.headers["Location"]
    assert v2("GET", blob).content == data
    r = v2("GET", blob, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20] and r.headers["Content-Range"] == "bytes 10-19/3000"
    assert v2("GET", blob, headers={"Range": "bytes=5000-6000"}).status_code == 416
    h = v2("HEAD", blob)
    assert h.status_code == 200 and h.headers["Content-Length"] == "3000" and h.headers["Docker-Content-Digest"] == sha256(data)
    # A cancelled upload is gone.
    loc = v2("POST", "/v2/web/blobs/uploads/").headers["Location"]
    assert v2("DELETE", loc).status_code == 204
    assert v2.error_code(v2("GET", loc)) == "BLOB_UPLOAD_UNKNOWN"


def test_an_upload_resumes_after_a_restart(berth, ecr):
    ecr.create_repository(repositoryName="web")
    v2 = V2(berth, login_password(berth))
    data = os.urandom(1 << 20)
    loc = v2("POST", "/v2/web/blobs/uploads/").headers["Location"]
    assert v2("PATCH", loc, data=data[:300_000], headers={"Content-Range": "0-299999"}).status_code == 202
    berth.restart()
    v2 = V2(berth, login_password(berth))
    r = v2("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-299999"
    assert v2("PATCH", loc, data=data[300_000:], headers={"Content-Range": f"300000-{len(data) - 1}"}).status_code == 202
    assert v2("PUT", loc, params={"digest": sha256(data)}).status_code == 201
    assert v2("GET", f"/v2/web/blobs/{sha256(data)}").content == data


def test_digest_mismatch_and_missing_blobs_are_refused(berth, ecr, v2):
    ecr.create_repository(repositoryName="web")
    wrong = sha256(b"other")
    r = v2("POST", "/v2/web/blobs/uploads/", params={"digest": wrong}, data=b"payload")
    assert r.status_code == 400 and v2.error_code(r) == "DIGEST_INVALID"
    assert v2("HEAD", f"/v2/web/blobs/{wrong}").status_code == 404
    assert v2("HEAD", f"/v2/web/blobs/{sha256(b'payload')}").status_code == 404
    r = v2("POST", "/v2/web/blobs/uploads/", params={"digest": "sha256:zz"}, data=b"payload")
    assert v2.error_code(r) == "DIGEST_INVALID"
    # sha512 digests are verified too.
    d512 = "sha512:" + hashlib.sha512(b"payload").hexdigest()
    assert v2("POST", "/v2/web/blobs/uploads/", params={"digest": d512}, data=b"payload").status_code == 201
    assert v2("GET", f"/v2/web/blobs/{d512}").content == b"payload"
    cfg = v2.push_blob("web", b"{}")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(cfg, mediaType=OCI_CONFIG),
                "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b"never pushed"), "size": 12}]}
    r = v2("PUT", "/v2/web/manifests/1", data=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and v2.error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert v2.error_code(v2("GET", "/v2/web/manifests/1")) == "MANIFEST_UNKNOWN"
    r = v2("PUT", f"/v2/web/manifests/{sha256(b'x')}", data=json.dumps(dict(manifest, layers=[])), headers={"Content-Type": OCI_MANIFEST})
    assert v2.error_code(r) == "DIGEST_INVALID"
    r = v2("PUT", "/v2/web/manifests/1", data=b"{not json", headers={"Content-Type": OCI_MANIFEST})
    assert v2.error_code(r) == "MANIFEST_INVALID"
    assert v2.error_code(v2("GET", "/v2/NoSuch/tags/list")) == "NAME_INVALID"
    assert v2.error_code(v2("GET", "/v2/nosuch/tags/list")) == "NAME_UNKNOWN"


def test_tags_catalog_mount_indexes_and_deletes(berth, ecr, v2):
    for name in ["aa", "bb", "cc"]:
        ecr.create_repository(repositoryName=name)
    digest, manifest = v2.push_image("aa", "v1", [b"layer-a"])
    for tag in ["v2", "v3", "latest"]:
        v2.push_manifest("aa", tag, manifest)
    r = v2("GET", "/v2/aa/tags/list", params={"n": 2})
    assert r.json() == {"name": "aa", "tags": ["latest", "v1"]}
    assert 'rel="next"' in r.headers["Link"]
    assert v2("GET", "/v2/aa/tags/list", params={"n": 2, "last": "v1"}).json()["tags"] == ["v2", "v3"]
    assert v2("GET", "/v2/_catalog", params={"n": 2}).json() == {"repositories": ["aa", "bb"]}
    # Mount a blob from aa into bb; from a repository without it, an upload session starts instead.
    layer = manifest["layers"][0]["digest"]
    r = v2("POST", "/v2/bb/blobs/uploads/", params={"mount": layer, "from": "aa"})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == layer
    assert v2("POST", "/v2/cc/blobs/uploads/", params={"mount": layer, "from": "cc"}).status_code == 202
    # Multi-arch: a Docker manifest list and an OCI index over two images.
    d2, m2 = v2.push_image("aa", "arm", [b"layer-arm"])
    for media, child in [(DOCKER_LIST, OCI_MANIFEST), (OCI_INDEX, OCI_MANIFEST)]:
        index = {"schemaVersion": 2, "mediaType": media, "manifests": [
            {"mediaType": child, "digest": d, "size": len(json.dumps(m).encode()), "platform": {"architecture": a, "os": "linux"}}
            for d, m, a in [(digest, manifest, "amd64"), (d2, m2, "arm64")]]}
        idx = v2.push_manifest("aa", "multi", index, media)
        r = v2("GET", "/v2/aa/manifests/multi")
        assert r.headers["Content-Type"] == media and r.headers["Docker-Content-Digest"] == idx
    bad = dict(index, manifests=[dict(index["manifests"][0], digest=sha256(b"nope"))])
    r = v2("PUT", "/v2/aa/manifests/bad", data=json.dumps(bad), headers={"Content-Type": OCI_INDEX})
    assert v2.error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    # Deletes: a tag, a manifest (with its tags), a blob.
    assert v2("DELETE", "/v2/aa/manifests/v3").status_code == 202
    assert "v3" not in v2("GET", "/v2/aa/tags/list").json()["tags"]
    assert v2("DELETE", f"/v2/aa/manifests/{d2}").status_code == 202
    assert v2.error_code(v2("GET", "/v2/aa/manifests/arm")) == "MANIFEST_UNKNOWN"
    assert v2("DELETE", f"/v2/bb/blobs/{layer}").status_code == 202
    assert v2("HEAD", f"/v2/bb/blobs/{layer}").status_code == 404
    assert v2("HEAD", f"/v2/aa/blobs/{layer}").status_code == 200


def test_tag_immutability_on_both_paths(berth, ecr, v2):
    ecr.create_repository(repositoryName="web", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                          imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}])
    _, m1 = v2.push_image("web", "v1", [b"one"])
    _, m2 = v2.push_image("web", "latest", [b"two"])
    v2.push_manifest("web", "latest", m1)  # excluded: mutable
    r = v2("PUT", "/v2/web/manifests/v1", data=json.dumps(m2), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and v2.error_code(r) == "TAG_INVALID"
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException):
        ecr.put_image(repositoryName="web", imageTag="v1", imageManifest=json.dumps(m2), imageManifestMediaType=OCI_MANIFEST)
    v2.push_manifest("web", "v1", m1)  # the same image again is fine
    ecr.put_image_tag_mutability(repositoryName="web", imageTagMutability="MUTABLE")
    v2.push_manifest("web", "v1", m2)
    assert v2("GET", "/v2/web/manifests/v1").json() == m2


def test_repository_policy_is_enforced_on_both_paths(berth, ecr, v2):
    ecr.create_repository(repositoryName="web")
    digest, manifest = v2.push_image("web", "1", [b"layer"])
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "public-pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]},
        {"Sid": "frozen", "Effect": "Deny", "Principal": "*", "Action": "ecr:PutImage"}]}
    ecr.set_repository_policy(repositoryName="web", policyText=json.dumps(policy))
    anon = V2(berth)
    assert anon("GET", "/v2/web/manifests/1").json() == manifest
    assert anon("GET", f"/v2/web/blobs/{manifest['layers'][0]['digest']}").content == b"layer"
    assert anon("POST", "/v2/web/blobs/uploads/").status_code == 401
    r = v2("PUT", "/v2/web/manifests/2", data=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 403 and v2.error_code(r) == "DENIED"
    with pytest.raises(ecr.exceptions.ClientError) as e:
        ecr.put_image(repositoryName="web", imageTag="2", imageManifest=json.dumps(manifest))
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    ecr.delete_repository_policy(repositoryName="web")
    assert V2(berth)("GET", "/v2/web/manifests/1").status_code == 401
    v2.push_manifest("web", "2", manifest)


def test_create_on_push_is_opt_in(tmp_path, busybox_layout):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--registry-create-on-push")).start()
    try:
        v2 = V2(b, login_password(b))
        v2.push_image("new/repo", "1", [b"x"])
        assert b.client("ecr").describe_repositories()["repositories"][0]["repositoryName"] == "new/repo"
    finally:
        b.stop()


def test_without_create_on_push_a_push_needs_a_repository(berth, v2):
    r = v2("POST", "/v2/nosuch/blobs/uploads/")
    assert r.status_code == 404 and v2.error_code(r) == "NAME_UNKNOWN"


def test_kill_during_twenty_concurrent_pushes_then_restart(berth):
    kill_during_twenty_pushes(berth)
    blobs_dir = Path(berth.data_dir) / "registry" / "blobs"
    assert not list(blobs_dir.glob("**/*.tmp"))
    check_served_blobs_and_push_again(berth, ["sha256:" + p.name for p in (blobs_dir / "sha256").glob("*/*")])


def test_garbage_collection_keeps_what_manifests_use(berth, ecr):
    ecr.create_repository(repositoryName="web")
    v2 = V2(berth, login_password(berth))
    digest, manifest = v2.push_image("web", "1", [b"kept layer"])
    orphan = v2.push_blob("web", b"orphan layer")["digest"]
    berth.stop()
    p = subprocess.run([BIN, "registry", "gc", "--data-dir", str(berth.data_dir), "--registry-gc-grace", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("removed 1 blobs"), p.stdout
    berth.start()
    v2 = V2(berth, login_password(berth))
    assert v2("HEAD", f"/v2/web/blobs/{orphan}").status_code == 404
    for layer in manifest["layers"] + [manifest["config"]]:
        assert v2("HEAD", f"/v2/web/blobs/{layer['digest']}").status_code == 200
    assert v2("GET", "/v2/web/manifests/1").headers["Docker-Content-Digest"] == digest
