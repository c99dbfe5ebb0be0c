"""Pull-through cache rules end to end: Debian's reference registry (docker-registry) on
loopback is the upstream, skopeo and a plain /v2/ client pull through Berth, which fetches,
stores and serves the images; a second Berth (which wants credentials) is the upstream of
a rule whose credentials come from the secrets directory."""

import json
import subprocess

import pytest
import requests

from conftest import Berth
from ecs_helpers import expect_error
from registry_helpers import OCI_INDEX, OCI_MANIFEST, V2, login_password, registry_state, sha256

ACCOUNT = "000000000000"


def skopeo(*args, check=True):
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def host(b):
    return b.endpoint.removeprefix("http://")


@pytest.fixture
def ecr(berth):
    return berth.client("ecr")


def test_a_pull_fetches_from_the_upstream_stores_and_serves(berth, ecr, registry, tmp_path):
    upstream = registry.split("/")[0]
    upstream_digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry}").stdout)["Digest"]
    rule = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl=f"http://{upstream}")
    assert (rule["ecrRepositoryPrefix"], rule["upstreamRegistryUrl"], rule["registryId"]) == ("hub", f"http://{upstream}", ACCOUNT)
    assert "upstreamRegistry" not in rule and rule["createdAt"]
    described = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in described] == ["hub"] and described[0]["updatedAt"]
    valid = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert valid["isValid"] is True and "failure" not in valid
    template = {"prefix": "hub", "appliedFor": ["PULL_THROUGH_CACHE"], "imageTagMutability": "IMMUTABLE",
                "resourceTags": [{"Key": "cache", "Value": "hub"}]}
    ecr.create_repository_creation_template(**template)
    with expect_error("PullThroughCacheRuleAlreadyExistsException",
                      message_prefix="A pull through cache rule with prefix 'hub/' already exists"):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub/", upstreamRegistryUrl=f"http://{upstream}")

    # skopeo pulls hub/busybox:latest through Berth: the repository is created by the
    # template and holds the upstream's image, digest for digest.
    creds = f"AWS:{login_password(berth)}"
    out = tmp_path / "out"
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds,
           f"docker://{host(berth)}/hub/busybox:latest", f"oci:{out}:latest")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == upstream_digest
    repo = ecr.describe_repositories(repositoryNames=["hub/busybox"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "cache", "Value": "hub"}]
    images = ecr.describe_images(repositoryName="hub/busybox")["imageDetails"]
    assert [(i["imageDigest"], i["imageTags"]) for i in images] == [(upstream_digest, ["latest"])]

    # A second image upstream, pulled by digest with a plain /v2/ client (HEAD, GET, blobs).
    v2_image = f"{upstream}/busybox:v2"
    skopeo("copy", "--quiet", "--dest-tls-verify=false", f"oci:{out}:latest", f"docker://{v2_image}")
    other = V2(berth, login_password(berth))
    manifest_bytes = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{v2_image}").stdout.encode()
    digest = sha256(manifest_bytes)
    head = other("HEAD", f"/v2/hub/busybox/manifests/{digest}")
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
    manifest = other("GET", f"/v2/hub/busybox/manifests/{digest}").json()
    for blob in [manifest["config"], *manifest["layers"]]:
        r = other("GET", f"/v2/hub/busybox/blobs/{blob['digest']}")
        assert r.status_code == 200 and sha256(r.content) == blob["digest"]

    # What the upstream does not have is not found, and creates nothing.
    r = other("GET", "/v2/hub/nothing/manifests/latest")
    assert r.status_code == 404 and other.error_code(r) == "MANIFEST_UNKNOWN"
    assert other("GET", "/v2/hub/busybox/manifests/missing").status_code == 404
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["hub/busybox"]
    # No credentials, no import; names outside the prefix are not fetched.
    assert V2(berth)("GET", "/v2/hub/busybox/manifests/v2").status_code == 401
    assert other("GET", "/v2/busybox/manifests/latest").status_code == 404

    # An index is imported alone; each of its images when it is pulled.
    skopeo("copy", "--quiet", "--dest-tls-verify=false", f"oci:{out}:latest", f"docker://{upstream}/multi:child")
    child = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{upstream}/multi:child").stdout.encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": json.loads(child)["mediaType"], "digest": sha256(child), "size": len(child),
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    put = requests.put(f"http://{upstream}/v2/multi/manifests/idx", data=index, headers={"Content-Type": OCI_INDEX}, timeout=30)
    assert put.status_code == 201, put.text
    r = other("GET", "/v2/hub/multi/manifests/idx")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX and r.content == index
    assert [i["imageDigest"] for i in ecr.describe_images(repositoryName="hub/multi")["imageDetails"]] == [sha256(index)]
    assert other("GET", f"/v2/hub/multi/manifests/{sha256(child)}").content == child
    assert len(ecr.describe_images(repositoryName="hub/multi")["imageDetails"]) == 2

    # Once the rule is gone, cached images are still served; nothing new is fetched.
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert deleted["upstreamRegistryUrl"] == f"http://{upstream}"
    assert other("GET", "/v2/hub/busybox/manifests/latest").status_code == 200
    assert other("GET", "/v2/hub/busybox/manifests/v2").status_code == 404


def test_a_rule_with_credentials_reads_its_secret_and_validates_them(tmp_path):
    upstream = Berth(tmp_path / "upstream").start()
    b = Berth(tmp_path / "data").start()
    try:
        up = upstream.client("ecr")
        up.create_repository(repositoryName="library/app")
        digest, _ = V2(upstream, login_password(upstream)).push_image("library/app", "1", [b"private layer"])
        secrets = tmp_path / "data" / "agent" / "secrets" / "ecr-pullthroughcache"
        secrets.mkdir(parents=True)
        (secrets / "up").write_text(json.dumps({"username": "AWS", "password": login_password(upstream)}))
        (secrets / "wrong").write_text(json.dumps({"username": "AWS", "password": "not-a-token"}))
        (secrets / "garbled").write_text("not json")
        arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ecr-pullthroughcache/"
        ecr = b.client("ecr")
        before = registry_state(ecr)
        with expect_error("UnableToAccessSecretException"):
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="up", upstreamRegistryUrl=upstream.endpoint,
                                               credentialArn=arn + "garbled")
        with expect_error("InvalidParameterException", message_contains="credentialArn"):
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="up", upstreamRegistryUrl=upstream.endpoint,
                                               credentialArn=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:other/up")
        assert registry_state(ecr) == before
        rule = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="up", upstreamRegistryUrl=upstream.endpoint,
                                                  credentialArn=arn + "wrong", upstreamRepositoryPrefix="library")
        assert rule["credentialArn"] == arn + "wrong" and rule["upstreamRepositoryPrefix"] == "library"
        bad = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="up")
        assert bad["isValid"] is False and "401" in bad["failure"]
        v2 = V2(b, login_password(b))
        assert v2("GET", "/v2/up/app/manifests/1").status_code == 404
        updated = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="up", credentialArn=arn + "up")
        assert updated["credentialArn"] == arn + "up" and updated["updatedAt"]
        assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="up")["isValid"] is True
        r = v2("GET", "/v2/up/app/manifests/1")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
        assert r.headers["Content-Type"] == OCI_MANIFEST
        layer = r.json()["layers"][0]["digest"]
        assert v2("GET", f"/v2/up/app/blobs/{layer}").content == b"private layer"
    finally:
        b.stop()
        upstream.stop()
