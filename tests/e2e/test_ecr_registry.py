"""The registry-wide ECR operations with boto3 against berth up: the registry policy (and
that it acts on /v2/ and the ECR API), scanning configuration, account settings (blob
mounting acts), repository creation templates (applied by create-on-push) and
ListImageReferrers."""

import json

import pytest

from ecs_helpers import expect_error
from registry_helpers import OCI_MANIFEST, V2, login_password, sha256


@pytest.fixture
def ecr(berth):
    return berth.client("ecr")


@pytest.fixture
def v2(berth):
    return V2(berth, login_password(berth))


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_a_registry_policy_governs_every_repository(berth, ecr, v2):
    for name in ["web", "db"]:
        ecr.create_repository(repositoryName=name)
    _, manifest = v2.push_image("web", "1", [b"layer"])
    v2.push_image("db", "1", [b"db layer"])
    text = policy({"Sid": "pull", "Effect": "Allow", "Principal": "*",
                   "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]},
                  {"Sid": "freeze", "Effect": "Deny", "Principal": "*", "Action": ["ecr:PutImage", "ecr:CreateRepository"]})
    put = ecr.put_registry_policy(policyText=text)
    assert (put["registryId"], put["policyText"]) == ("000000000000", text)
    assert ecr.get_registry_policy()["policyText"] == text
    anon = V2(berth)
    for repo in ["web", "db"]:
        assert anon("GET", f"/v2/{repo}/manifests/1").status_code == 200, repo
    assert anon("GET", f"/v2/web/blobs/{manifest['layers'][0]['digest']}").content == b"layer"
    r = v2("PUT", "/v2/db/manifests/2", data=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 403 and v2.error_code(r) == "DENIED"
    with expect_error("AccessDeniedException", message_contains="ecr:PutImage"):
        ecr.put_image(repositoryName="web", imageTag="2", imageManifest=json.dumps(manifest))
    with expect_error("AccessDeniedException", message_contains="ecr:CreateRepository"):
        ecr.create_repository(repositoryName="new")
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["db", "web"]
    assert ecr.delete_registry_policy()["policyText"] == text
    assert anon("GET", "/v2/web/manifests/1").status_code == 401
    v2.push_manifest("web", "2", manifest)
    ecr.create_repository(repositoryName="new")


def test_scanning_configuration_is_stored_and_decides_each_repositorys_frequency(ecr):
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}
    for name in ["prod-web", "dev"]:
        ecr.create_repository(repositoryName=name)
    ecr.create_repository(repositoryName="legacy", imageScanningConfiguration={"scanOnPush": True})
    rules = [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]},
             {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "dev", "filterType": "WILDCARD"}]}]
    out = ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)
    assert out["registryScanningConfiguration"] == {"scanType": "ENHANCED", "rules": rules}
    got = ecr.get_registry_scanning_configuration()
    assert got["registryId"] == "000000000000" and got["scanningConfiguration"]["rules"] == rules
    configs = ecr.batch_get_repository_scanning_configuration(repositoryNames=["prod-web", "dev", "legacy", "nope"])
    by_name = {c["repositoryName"]: c for c in configs["scanningConfigurations"]}
    assert by_name["prod-web"]["scanFrequency"] == "CONTINUOUS_SCAN"
    assert by_name["prod-web"]["appliedScanFilters"] == [{"filter": "prod-*", "filterType": "WILDCARD"}]
    assert by_name["prod-web"]["repositoryArn"] == "arn:aws:ecr:us-east-1:000000000000:repository/prod-web"
    assert (by_name["dev"]["scanFrequency"], by_name["dev"]["scanOnPush"]) == ("SCAN_ON_PUSH", True)
    assert (by_name["legacy"]["scanFrequency"], by_name["legacy"]["appliedScanFilters"]) == ("SCAN_ON_PUSH", [])
    assert configs["failures"] == [{"repositoryName": "nope", "failureCode": "REPOSITORY_NOT_FOUND",
                                    "failureReason": "REPOSITORY_NOT_FOUND"}]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
    configs = ecr.batch_get_repository_scanning_configuration(repositoryNames=["prod-web"])["scanningConfigurations"]
    assert configs[0]["scanFrequency"] == "MANUAL"


def test_account_settings_and_blob_mounting_acts(ecr, v2):
    got = ecr.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")
    assert (got["name"], got["value"]) == ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE")
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"
    assert ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")["value"] == "V2"
    with expect_error("InvalidParameterException"):
        ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    for name in ["aa", "bb"]:
        ecr.create_repository(repositoryName=name)
    _, manifest = v2.push_image("aa", "1", [b"shared layer"])
    layer = manifest["layers"][0]["digest"]
    assert ecr.put_account_setting(name="BLOB_MOUNTING", value="DISABLED")["value"] == "DISABLED"
    assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "DISABLED"
    r = v2("POST", "/v2/bb/blobs/uploads/", params={"mount": layer, "from": "aa"})
    assert r.status_code == 202, "with mounting disabled a mount request starts an upload"
    assert v2("HEAD", f"/v2/bb/blobs/{layer}").status_code == 404
    ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    r = v2("POST", "/v2/bb/blobs/uploads/", params={"mount": layer, "from": "aa"})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == layer


LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                                    "countUnit": "days", "countNumber": 7},
                                   "action": {"type": "expire"}}]})


def test_creation_templates_set_up_repositories_created_on_push(berth, ecr, v2):
    # Without --registry-create-on-push a push to a missing repository is refused ...
    r = v2("POST", "/v2/prod/web/blobs/uploads/")
    assert r.status_code == 404 and v2.error_code(r) == "NAME_UNKNOWN"
    pull = policy({"Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]})
    created = ecr.create_repository_creation_template(
        prefix="prod", description="production", appliedFor=["CREATE_ON_PUSH", "REPLICATION"],
        imageTagMutability="IMMUTABLE", resourceTags=[{"Key": "team", "Value": "web"}], lifecyclePolicy=LIFECYCLE,
        repositoryPolicy=pull, encryptionConfiguration={"encryptionType": "KMS"})["repositoryCreationTemplate"]
    assert created["prefix"] == "prod" and created["appliedFor"] == ["CREATE_ON_PUSH", "REPLICATION"]
    assert created["encryptionConfiguration"]["kmsKey"] and created["createdAt"]
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    with expect_error("TemplateAlreadyExistsException"):
        ecr.create_repository_creation_template(prefix="prod/", appliedFor=["PULL_THROUGH_CACHE"])
    # ... but a CREATE_ON_PUSH template makes the push create it, set up by the template.
    digest, _ = v2.push_image("prod/web", "1", [b"web"])
    repo = ecr.describe_repositories(repositoryNames=["prod/web"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "team", "Value": "web"}]
    assert ecr.get_lifecycle_policy(repositoryName="prod/web")["lifecyclePolicyText"] == LIFECYCLE
    assert ecr.get_repository_policy(repositoryName="prod/web")["policyText"] == pull
    assert V2(berth)("GET", "/v2/prod/web/manifests/1").status_code == 200
    v2.push_image("other", "1", [b"other"])
    other = ecr.describe_repositories(repositoryNames=["other"])["repositories"][0]
    assert other["imageTagMutability"] == "MUTABLE", "ROOT's template: the defaults"
    with expect_error("RepositoryPolicyNotFoundException"):
        ecr.get_repository_policy(repositoryName="other")
    # Describe (paged), update, delete.
    page = ecr.describe_repository_creation_templates(maxResults=1)
    rest = ecr.describe_repository_creation_templates(nextToken=page["nextToken"])
    assert [t["prefix"] for t in page["repositoryCreationTemplates"] + rest["repositoryCreationTemplates"]] == ["ROOT", "prod"]
    assert [t["prefix"] for t in ecr.describe_repository_creation_templates(prefixes=["prod"])["repositoryCreationTemplates"]] == ["prod"]
    updated = ecr.update_repository_creation_template(prefix="prod", imageTagMutability="MUTABLE", description="changed")
    t = updated["repositoryCreationTemplate"]
    assert (t["imageTagMutability"], t["description"], t["resourceTags"]) == ("MUTABLE", "changed", [{"Key": "team", "Value": "web"}])
    assert ecr.delete_repository_creation_template(prefix="prod")["repositoryCreationTemplate"]["prefix"] == "prod"
    assert ecr.delete_repository_creation_template(prefix="ROOT")["repositoryCreationTemplate"]["prefix"] == "ROOT"
    r = v2("POST", "/v2/prod/api/blobs/uploads/")
    assert r.status_code == 404, "no template left: create-on-push is off again"


def test_list_image_referrers(ecr, v2):
    ecr.create_repository(repositoryName="app")
    subject, manifest = v2.push_image("app", "1", [b"app"])
    size = len(json.dumps(manifest).encode())
    refs = []
    for kind in ["application/spdx+json", "application/vnd.dev.sigstore"]:
        config = v2.push_blob("app", b"{}")
        layer = v2.push_blob("app", kind.encode())
        artifact = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
                    "config": dict(config, mediaType="application/vnd.oci.empty.v1+json"),
                    "layers": [dict(layer, mediaType="text/plain")],
                    "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
                    "annotations": {"org.example": kind}}
        body = json.dumps(artifact).encode()
        refs.append(v2.push_manifest("app", sha256(body), artifact))
    out = ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": subject})
    assert sorted(r["digest"] for r in out["referrers"]) == sorted(refs)
    sbom = [r for r in out["referrers"] if r["artifactType"] == "application/spdx+json"][0]
    assert sbom["mediaType"] == OCI_MANIFEST and sbom["artifactStatus"] == "ACTIVE"
    assert sbom["annotations"] == {"org.example": "application/spdx+json"} and sbom["size"] > 0
    only = ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": subject},
                                    filter={"artifactTypes": ["application/vnd.dev.sigstore"]})["referrers"]
    assert [r["artifactType"] for r in only] == ["application/vnd.dev.sigstore"]
    archived = ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": subject},
                                        filter={"artifactStatus": "ARCHIVED"})["referrers"]
    assert archived == []
    first = ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": subject}, maxResults=1)
    second = ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": subject}, nextToken=first["nextToken"])
    assert len(first["referrers"]) == 1 and len(second["referrers"]) == 1 and "nextToken" not in second
    assert ecr.list_image_referrers(repositoryName="app", subjectId={"imageDigest": sha256(b"none")})["referrers"] == []
