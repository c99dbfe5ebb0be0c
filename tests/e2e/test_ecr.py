"""The ECR API with boto3 and the AWS CLI: every handler, its bad inputs (the AWS error
shape, and nothing changed), and one truth with /v2/."""

import base64
import json
import time

import pytest

from conftest import Berth
from ecs_helpers import expect_error, until
from registry_helpers import OCI_LAYER, OCI_MANIFEST, V2, login_password, sha256


@pytest.fixture
def ecr(berth):
    return berth.client("ecr")


def state(ecr):
    """Everything a bad call must leave as it was."""
    repos = ecr.describe_repositories()["repositories"]
    out = {"repos": repos}
    for r in repos:
        name = r["repositoryName"]
        out[name] = ecr.describe_images(repositoryName=name)["imageDetails"]
        out[name + ":tags"] = ecr.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"]
        for call, key in [(ecr.get_repository_policy, "policyText"), (ecr.get_lifecycle_policy, "lifecyclePolicyText")]:
            try:
                out[name + ":" + key] = call(repositoryName=name)[key]
            except ecr.exceptions.ClientError:
                pass
    return out


def test_repositories_create_describe_delete_and_their_errors(berth, ecr):
    r = ecr.create_repository(repositoryName="team/web", imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True},
                              encryptionConfiguration={"encryptionType": "KMS"}, tags=[{"Key": "team", "Value": "a"}])["repository"]
    assert r["repositoryArn"] == "arn:aws:ecr:us-east-1:000000000000:repository/team/web"
    assert r["repositoryUri"] == berth.endpoint.removeprefix("http://") + "/team/web"
    assert r["imageScanningConfiguration"] == {"scanOnPush": True}
    assert r["encryptionConfiguration"]["encryptionType"] == "KMS" and r["encryptionConfiguration"]["kmsKey"]
    before = state(ecr)
    bad_calls = [
        ("RepositoryAlreadyExistsException", lambda: ecr.create_repository(repositoryName="team/web")),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="Bad_Name")),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="a//b")),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="x1", imageTagMutability="IMMUTABLE_WITH_EXCLUSION")),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="x1", imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "a"}])),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="x1", encryptionConfiguration={"encryptionType": "AES256", "kmsKey": "k"})),
        ("InvalidTagParameterException", lambda: ecr.create_repository(repositoryName="x1", tags=[{"Key": "aws:x", "Value": "v"}])),
        ("TooManyTagsException", lambda: ecr.create_repository(repositoryName="x1", tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])),
        ("InvalidParameterException", lambda: ecr.create_repository(repositoryName="x1", registryId="123456789012")),
        ("RepositoryNotFoundException", lambda: ecr.describe_repositories(repositoryNames=["nope"])),
        ("InvalidParameterException", lambda: ecr.describe_repositories(maxResults=1001)),
        ("InvalidParameterException", lambda: ecr.describe_repositories(nextToken="zz")),
        ("RepositoryNotFoundException", lambda: ecr.delete_repository(repositoryName="nope")),
        ("RepositoryNotFoundException", lambda: ecr.put_image_tag_mutability(repositoryName="nope", imageTagMutability="MUTABLE")),
        ("InvalidParameterException", lambda: ecr.put_image_tag_mutability(repositoryName="team/web", imageTagMutability="MUTABLE_WITH_EXCLUSION")),
        ("RepositoryNotFoundException", lambda: ecr.put_image_scanning_configuration(repositoryName="nope", imageScanningConfiguration={"scanOnPush": True})),
    ]
    for code, call in bad_calls:
        with expect_error(code):
            call()
    assert state(ecr) == before
    for i in range(3):
        ecr.create_repository(repositoryName=f"r{i}")
    page = ecr.describe_repositories(maxResults=2)
    rest = ecr.describe_repositories(nextToken=page["nextToken"])
    assert [r["repositoryName"] for r in page["repositories"] + rest["repositories"]] == ["r0", "r1", "r2", "team/web"]
    # A repository with images is deleted only with force.
    V2(berth, login_password(berth)).push_image("r0", "1", [b"x"])
    with expect_error("RepositoryNotEmptyException"):
        ecr.delete_repository(repositoryName="r0")
    assert ecr.delete_repository(repositoryName="r0", force=True)["repository"]["repositoryName"] == "r0"
    assert ecr.delete_repository(repositoryName="r1")["repository"]["repositoryName"] == "r1"
    assert ecr.put_image_tag_mutability(repositoryName="r2", imageTagMutability="IMMUTABLE")["imageTagMutability"] == "IMMUTABLE"
    assert ecr.put_image_scanning_configuration(repositoryName="r2", imageScanningConfiguration={"scanOnPush": True})["imageScanningConfiguration"] == {"scanOnPush": True}
    r2 = ecr.describe_repositories(repositoryNames=["r2"])["repositories"][0]
    assert (r2["imageTagMutability"], r2["imageScanningConfiguration"]["scanOnPush"]) == ("IMMUTABLE", True)
    assert ecr.describe_registry()["registryId"] == "000000000000"


def test_images_through_the_ecr_api_and_one_truth_with_v2(berth, ecr):
    ecr.create_repository(repositoryName="web")
    v2 = V2(berth, login_password(berth))
    d1, m1 = v2.push_image("web", "v1", [b"one"])
    v2.push_manifest("web", "latest", m1)
    d2, m2 = v2.push_image("web", "v2", [b"two", b"three"])
    d3, _ = v2.push_image("web", "tmp", [b"four"])
    v2("DELETE", "/v2/web/manifests/tmp")  # d3 stays, untagged
    ids = ecr.list_images(repositoryName="web")["imageIds"]
    assert {(i["imageDigest"], i.get("imageTag")) for i in ids} == {(d1, "v1"), (d1, "latest"), (d2, "v2"), (d3, None)}
    assert ecr.list_images(repositoryName="web", filter={"tagStatus": "UNTAGGED"})["imageIds"] == [{"imageDigest": d3}]
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="web")["imageDetails"]}
    assert sorted(details[d1]["imageTags"]) == ["latest", "v1"]
    assert details[d2]["imageSizeInBytes"] == 8 and details[d2]["imageManifestMediaType"] == OCI_MANIFEST
    got = ecr.batch_get_image(repositoryName="web", imageIds=[{"imageTag": "v2"}, {"imageTag": "nope"}, {"imageDigest": "sha256:bad"}])
    assert json.loads(got["images"][0]["imageManifest"]) == m2 and got["images"][0]["imageId"]["imageDigest"] == d2
    assert sorted(f["failureCode"] for f in got["failures"]) == ["ImageNotFound", "InvalidImageDigest"]
    before = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="web")["imageDetails"]}
    for code, call in [
        ("ImageNotFoundException", lambda: ecr.describe_images(repositoryName="web", imageIds=[{"imageTag": "nope"}])),
        ("RepositoryNotFoundException", lambda: ecr.list_images(repositoryName="nope")),
        ("InvalidParameterException", lambda: ecr.list_images(repositoryName="web", maxResults=1001)),
        ("ImageDigestDoesNotMatchException", lambda: ecr.put_image(repositoryName="web", imageManifest=json.dumps(m1), imageDigest=sha256(b"x"))),
        ("ImageAlreadyExistsException", lambda: ecr.put_image(repositoryName="web", imageManifest=v2("GET", "/v2/web/manifests/v1").text, imageTag="v1")),
        ("InvalidParameterException", lambda: ecr.put_image(repositoryName="web", imageManifest="{nope", imageTag="x")),
        ("LayersNotFoundException", lambda: ecr.put_image(repositoryName="web", imageTag="x", imageManifest=json.dumps(dict(m1, layers=[{"mediaType": OCI_LAYER, "digest": sha256(b"missing"), "size": 7}])))),
        ("RepositoryNotFoundException", lambda: ecr.batch_delete_image(repositoryName="nope", imageIds=[{"imageTag": "v1"}])),
    ]:
        with expect_error(code):
            call()
    assert {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="web")["imageDetails"]}.keys() == before.keys()
    # PutImage retags an image; /v2/ sees it.
    put = ecr.put_image(repositoryName="web", imageManifest=json.dumps(m2), imageTag="stable", imageManifestMediaType=OCI_MANIFEST)
    assert put["image"]["imageId"] == {"imageDigest": d2, "imageTag": "stable"}
    assert v2("HEAD", "/v2/web/manifests/stable").headers["Docker-Content-Digest"] == d2
    # Deleting one of two tags keeps the image; the last tag takes the image with it.
    out = ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageTag": "latest"}, {"imageTag": "nope"}])
    assert out["imageIds"] == [{"imageDigest": d1, "imageTag": "latest"}] and out["failures"][0]["failureCode"] == "ImageNotFound"
    ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageTag": "v1"}])
    assert v2("GET", f"/v2/web/manifests/{d1}").status_code == 404
    out = ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageDigest": d2}])
    assert sorted(i["imageTag"] for i in out["imageIds"]) == ["stable", "v2"]


def test_layer_upload_operations(berth, ecr):
    ecr.create_repository(repositoryName="web")
    data = bytes(range(256)) * 100
    up = ecr.initiate_layer_upload(repositoryName="web")
    assert up["partSize"] > 0
    uid = up["uploadId"]
    r = ecr.upload_layer_part(repositoryName="web", uploadId=uid, partFirstByte=0, partLastByte=9999, layerPartBlob=data[:10000])
    assert r["lastByteReceived"] == 9999
    for code, call in [
        ("InvalidLayerPartException", lambda: ecr.upload_layer_part(repositoryName="web", uploadId=uid, partFirstByte=5000, partLastByte=5099, layerPartBlob=data[5000:5100])),
        ("InvalidLayerPartException", lambda: ecr.upload_layer_part(repositoryName="web", uploadId=uid, partFirstByte=10000, partLastByte=10009, layerPartBlob=data[:3])),
        ("InvalidParameterException", lambda: ecr.upload_layer_part(repositoryName="web", uploadId="nope", partFirstByte=0, partLastByte=0, layerPartBlob=b"x")),
        ("UploadNotFoundException", lambda: ecr.upload_layer_part(repositoryName="web", uploadId="00000000-0000-4000-8000-000000000000", partFirstByte=0, partLastByte=0, layerPartBlob=b"x")),
        ("UploadNotFoundException", lambda: ecr.complete_layer_upload(repositoryName="web", uploadId="00000000-0000-4000-8000-000000000000", layerDigests=[sha256(data)])),
        ("EmptyUploadException", lambda: ecr.complete_layer_upload(repositoryName="web", uploadId=ecr.initiate_layer_upload(repositoryName="web")["uploadId"], layerDigests=[sha256(data)])),
        ("LayersNotFoundException", lambda: ecr.get_download_url_for_layer(repositoryName="web", layerDigest=sha256(data))),
        ("RepositoryNotFoundException", lambda: ecr.initiate_layer_upload(repositoryName="nope")),
    ]:
        with expect_error(code):
            call()
    ecr.upload_layer_part(repositoryName="web", uploadId=uid, partFirstByte=10000, partLastByte=len(data) - 1, layerPartBlob=data[10000:])
    check = ecr.batch_check_layer_availability(repositoryName="web", layerDigests=[sha256(data), "sha256:zz"])
    assert check["layers"][0]["layerAvailability"] == "UNAVAILABLE" and check["failures"][0]["failureCode"] == "InvalidLayerDigest"
    done = ecr.complete_layer_upload(repositoryName="web", uploadId=uid, layerDigests=[sha256(data)])
    assert done["layerDigest"] == sha256(data)
    check = ecr.batch_check_layer_availability(repositoryName="web", layerDigests=[sha256(data)])
    assert check["layers"][0] == {"layerDigest": sha256(data), "layerAvailability": "AVAILABLE", "layerSize": len(data)}
    url = ecr.get_download_url_for_layer(repositoryName="web", layerDigest=sha256(data))["downloadUrl"]
    assert V2(berth, login_password(berth))("GET", url.removeprefix(berth.endpoint)).content == data
    # A wrong digest at completion stores nothing.
    uid = ecr.initiate_layer_upload(repositoryName="web")["uploadId"]
    ecr.upload_layer_part(repositoryName="web", uploadId=uid, partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
    with expect_error("InvalidLayerException"):
        ecr.complete_layer_upload(repositoryName="web", uploadId=uid, layerDigests=[sha256(b"abd")])
    assert ecr.batch_check_layer_availability(repositoryName="web", layerDigests=[sha256(b"abc")])["layers"][0]["layerAvailability"] == "UNAVAILABLE"


def test_policies_and_tags_and_their_errors(berth, ecr):
    arn = ecr.create_repository(repositoryName="web")["repository"]["repositoryArn"]
    before = state(ecr)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]})
    for code, call in [
        ("RepositoryPolicyNotFoundException", lambda: ecr.get_repository_policy(repositoryName="web")),
        ("RepositoryPolicyNotFoundException", lambda: ecr.delete_repository_policy(repositoryName="web")),
        ("InvalidParameterException", lambda: ecr.set_repository_policy(repositoryName="web", policyText="{}")),
        ("InvalidParameterException", lambda: ecr.set_repository_policy(repositoryName="web", policyText='{"Statement":[{"Effect":"Perhaps","Principal":"*","Action":"ecr:*"}]}')),
        ("RepositoryNotFoundException", lambda: ecr.set_repository_policy(repositoryName="nope", policyText=policy)),
        ("LifecyclePolicyNotFoundException", lambda: ecr.get_lifecycle_policy(repositoryName="web")),
        ("LifecyclePolicyNotFoundException", lambda: ecr.delete_lifecycle_policy(repositoryName="web")),
        ("LifecyclePolicyNotFoundException", lambda: ecr.start_lifecycle_policy_preview(repositoryName="web")),
        ("LifecyclePolicyPreviewNotFoundException", lambda: ecr.get_lifecycle_policy_preview(repositoryName="web")),
        ("InvalidParameterException", lambda: ecr.put_lifecycle_policy(repositoryName="web", lifecyclePolicyText='{"rules":[]}' + " " * 100)),
        ("InvalidParameterException", lambda: ecr.put_lifecycle_policy(repositoryName="web", lifecyclePolicyText='{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}')),
        ("InvalidParameterException", lambda: ecr.tag_resource(resourceArn="arn:aws:ecs:us-east-1:000000000000:cluster/x", tags=[{"Key": "a", "Value": "b"}])),
        ("RepositoryNotFoundException", lambda: ecr.tag_resource(resourceArn=arn + "x", tags=[{"Key": "a", "Value": "b"}])),
        ("InvalidTagParameterException", lambda: ecr.tag_resource(resourceArn=arn, tags=[{"Key": "", "Value": "b"}])),
        ("TooManyTagsException", lambda: ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])),
        ("RepositoryNotFoundException", lambda: ecr.list_tags_for_resource(resourceArn=arn + "x")),
    ]:
        with expect_error(code):
            call()
    assert state(ecr) == before
    assert ecr.set_repository_policy(repositoryName="web", policyText=policy)["policyText"] == policy
    assert ecr.get_repository_policy(repositoryName="web")["policyText"] == policy
    assert ecr.delete_repository_policy(repositoryName="web")["policyText"] == policy
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "3"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["b"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "a", "Value": "3"}]


KEEP_TWO = json.dumps({"rules": [{"rulePriority": 1, "description": "keep two",
                                  "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2},
                                  "action": {"type": "expire"}}]})


def test_lifecycle_policy_keeps_the_newest_preview_first_then_on_schedule(tmp_path):
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--registry-lifecycle-interval", "1")).start()
    try:
        ecr = b.client("ecr")
        ecr.create_repository(repositoryName="web")
        v2 = V2(b, login_password(b))
        digests = []
        for i in range(5):
            digests.append(v2.push_image("web", f"build-{i}", [f"layer {i}".encode()])[0])
            time.sleep(0.02)
        # The preview of a policy not yet in force changes nothing.
        preview = ecr.start_lifecycle_policy_preview(repositoryName="web", lifecyclePolicyText=KEEP_TWO)
        assert preview["status"] in ("IN_PROGRESS", "COMPLETE")
        got = ecr.get_lifecycle_policy_preview(repositoryName="web")
        assert got["status"] == "COMPLETE" and got["summary"]["expiringImageTotalCount"] == 3
        assert {r["imageDigest"] for r in got["previewResults"]} == set(digests[:3])
        assert all(r["action"]["type"] == "EXPIRE" and r["appliedRulePriority"] == 1 for r in got["previewResults"])
        assert len(ecr.list_images(repositoryName="web")["imageIds"]) == 5
        ecr.put_lifecycle_policy(repositoryName="web", lifecyclePolicyText=KEEP_TWO)
        assert ecr.get_lifecycle_policy(repositoryName="web")["lifecyclePolicyText"] == KEEP_TWO
        left = until(lambda: (ids := ecr.list_images(repositoryName="web")["imageIds"]) and len(ids) == 2 and ids, timeout=15)
        assert {i["imageTag"] for i in left} == {"build-3", "build-4"}
        assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName="web")
        assert ecr.delete_lifecycle_policy(repositoryName="web")["lifecyclePolicyText"] == KEEP_TWO
    finally:
        b.stop()


def test_the_aws_cli_logs_docker_in(berth):
    berth.cli("ecr", "create-repository", "--repository-name", "cli")
    p = berth.cli("ecr", "get-login-password", check=False)
    assert p.returncode == 0, p.stderr
    assert V2(berth, p.stdout.strip())("GET", "/v2/cli/tags/list").json() == {"name": "cli", "tags": []}
    assert base64.b64decode(berth.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]).startswith(b"AWS:")
