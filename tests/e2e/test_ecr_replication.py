"""Replication end to end, between two Berth processes on loopback: the source copies
pushes matching its rules to a peer Berth (named in --registry-peers-file) and to another
region of itself, and DescribeImageReplicationStatus reports IN_PROGRESS, COMPLETE and
FAILED per destination."""

import json

from conftest import Berth
from ecs_helpers import expect_error, until
from registry_helpers import OCI_INDEX, OCI_MANIFEST, V2, login_password, sha256

SOURCE = "000000000000"
PEER = "111111111111"


def statuses(ecr, repo, tag):
    out = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": tag})
    return {(s["region"], s["registryId"]): s for s in out["replicationStatuses"]}


def settled(ecr, repo, tag, count):
    """The statuses once none is IN_PROGRESS (and there are `count`)."""
    def done():
        s = statuses(ecr, repo, tag)
        return len(s) == count and all(v["status"] != "IN_PROGRESS" for v in s.values()) and s
    return until(done, timeout=40)


def test_pushes_are_copied_to_a_peer_berth_and_another_region(tmp_path):
    peer = Berth(tmp_path / "peer", extra_args=("--runtime", "none", "--account-id", PEER, "--region", "us-west-2")).start()
    peers_file = tmp_path / "peers.toml"
    peers_file.write_text(f'[[peers]]\nregion = "us-west-2"\nregistry_id = "{PEER}"\nendpoint = "{peer.endpoint}"\n'
                          f'access_key = "{peer.access_key}"\nsecret_key = "{peer.secret_key}"\n')
    source = Berth(tmp_path / "source", extra_args=("--runtime", "none", "--registry-peers-file", str(peers_file))).start()
    try:
        ecr = source.client("ecr")
        eu = source.client("ecr", region="eu-west-1")
        remote = peer.client("ecr", region="us-west-2")
        config = {"rules": [{"destinations": [{"region": "us-west-2", "registryId": PEER},
                                              {"region": "eu-west-1", "registryId": SOURCE}],
                             "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]}]}
        assert ecr.put_replication_configuration(replicationConfiguration=config)["replicationConfiguration"] == config
        assert ecr.describe_registry()["replicationConfiguration"] == config
        eu.create_repository_creation_template(prefix="prod", appliedFor=["REPLICATION"], imageTagMutability="IMMUTABLE")
        for name in ["prod/web", "dev"]:
            ecr.create_repository(repositoryName=name)
        v2 = V2(source, login_password(source))
        digest, manifest = v2.push_image("prod/web", "v1", [b"layer one", b"layer two" * 1000])
        v2.push_image("dev", "v1", [b"dev layer"])

        done = settled(ecr, "prod/web", "v1", 2)
        assert done, statuses(ecr, "prod/web", "v1")
        assert {k: v["status"] for k, v in done.items()} == {("us-west-2", PEER): "COMPLETE", ("eu-west-1", SOURCE): "COMPLETE"}
        # The peer holds the image under the same tag and digest, blobs and all.
        [image] = remote.describe_images(repositoryName="prod/web")["imageDetails"]
        assert (image["imageDigest"], image["imageTags"], image["registryId"]) == (digest, ["v1"], PEER)
        at_peer = V2(peer, login_password(peer, region="us-west-2"))
        for layer in manifest["layers"]:
            assert sha256(at_peer("GET", f"/v2/prod/web/blobs/{layer['digest']}").content) == layer["digest"]
        # Another region of the source: created by that region's REPLICATION template.
        [copy] = eu.describe_images(repositoryName="prod/web")["imageDetails"]
        assert (copy["imageDigest"], copy["imageTags"]) == (digest, ["v1"])
        assert eu.describe_repositories(repositoryNames=["prod/web"])["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
        # Repositories no rule matches are not copied; copies are not copied again.
        assert statuses(ecr, "dev", "v1") == {}
        with expect_error("RepositoryNotFoundException"):
            remote.describe_images(repositoryName="dev")
        assert statuses(eu, "prod/web", "v1") == {}

        # An index and its images: children first.
        arm, arm_manifest = v2.push_image("prod/web", "arm", [b"arm layer"])
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": len(json.dumps(m).encode()),
             "platform": {"architecture": a, "os": "linux"}} for d, m, a in [(digest, manifest, "amd64"), (arm, arm_manifest, "arm64")]]}
        index_digest = v2.push_manifest("prod/web", "multi", index, OCI_INDEX)
        assert settled(ecr, "prod/web", "multi", 2), statuses(ecr, "prod/web", "multi")
        r = at_peer("GET", "/v2/prod/web/manifests/multi")
        assert r.headers["Docker-Content-Digest"] == index_digest and r.headers["Content-Type"] == OCI_INDEX
        assert at_peer("GET", f"/v2/prod/web/manifests/{arm}").status_code == 200

        # The peer goes away: its copy fails after its retries, the other region's completes.
        peer.stop()
        v2.push_image("prod/web", "v2", [b"while the peer is down"])
        failed = settled(ecr, "prod/web", "v2", 2)
        assert failed, statuses(ecr, "prod/web", "v2")
        assert failed[("eu-west-1", SOURCE)]["status"] == "COMPLETE"
        assert failed[("us-west-2", PEER)]["status"] == "FAILED" and failed[("us-west-2", PEER)]["failureCode"]
        # An empty configuration stops replication.
        ecr.put_replication_configuration(replicationConfiguration={"rules": []})
        assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}
        v2.push_image("prod/web", "v3", [b"after"])
        assert statuses(ecr, "prod/web", "v3") == {}
    finally:
        source.stop()
        peer.stop()
