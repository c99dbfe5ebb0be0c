"""ECR's errors as real clients see them: every operation with bad inputs or missing
resources answers ECR's exception name and message (naming the registry id as ECR does),
and changes nothing."""

import json

import boto3
import pytest
from botocore.config import Config

from conftest import Berth
from registry_helpers import V2, login_password, registry_state, sha256

ACCOUNT = "000000000000"
PATTERN = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ecr-pullthroughcache/missing"


def not_found(name):
    return f"The repository with name '{name}' does not exist in the registry with id '{ACCOUNT}'"


def invalid(field, why):
    return f"Invalid parameter at '{field}' failed to satisfy constraint: '{why}'"


def image_not_found(image_id, repo="web"):
    return f"The image with imageId {image_id} does not exist within the repository with name '{repo}' in the registry with id '{ACCOUNT}'"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One Berth with a repository `web` holding image `v1`, an immutable `frozen` holding
    `v1`, and nothing else."""
    b = Berth(tmp_path_factory.mktemp("errors") / "data").start()
    # Client-side validation off: the server's answers are what is tested.
    ecr = boto3.client("ecr", endpoint_url=b.endpoint, region_name="us-east-1", aws_access_key_id=b.access_key,
                       aws_secret_access_key=b.secret_key,
                       config=Config(retries={"max_attempts": 1}, parameter_validation=False))
    ecr.create_repository(repositoryName="web")
    ecr.create_repository(repositoryName="frozen", imageTagMutability="IMMUTABLE")
    v2 = V2(b, login_password(b))
    digest, manifest = v2.push_image("web", "v1", [b"one"])
    v2.push_image("frozen", "v1", [b"frozen"])
    other = v2.push_image("frozen", "other", [b"two"])[1]
    yield {"berth": b, "ecr": ecr, "digest": digest, "manifest": manifest, "other": other}
    b.stop()


def cases(w):
    """(operation, arguments, exception, message)."""
    digest, manifest = w["digest"], w["manifest"]
    arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/"
    return [
        ("create_repository", {"repositoryName": "web"}, "RepositoryAlreadyExistsException",
         f"The repository with name 'web' already exists in the registry with id '{ACCOUNT}'"),
        ("create_repository", {"repositoryName": "Bad_Name"}, "InvalidParameterException",
         invalid("repositoryName", f"must satisfy regular expression '{PATTERN}'")),
        ("create_repository", {"repositoryName": "x1", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
         "InvalidParameterException",
         invalid("imageTagMutabilityExclusionFilters",
                 "ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION")),
        ("describe_repositories", {"repositoryNames": ["nope"]}, "RepositoryNotFoundException", not_found("nope")),
        ("delete_repository", {"repositoryName": "nope"}, "RepositoryNotFoundException", not_found("nope")),
        ("delete_repository", {"repositoryName": "web"}, "RepositoryNotEmptyException",
         f"The repository with name 'web' in registry with id '{ACCOUNT}' cannot be deleted because it still contains images"),
        ("list_images", {"repositoryName": "nope"}, "RepositoryNotFoundException", not_found("nope")),
        ("describe_images", {"repositoryName": "web", "imageIds": [{"imageTag": "nope"}]}, "ImageNotFoundException",
         image_not_found("{imageDigest:'null', imageTag:'nope'}")),
        ("describe_images", {"repositoryName": "web", "imageIds": [{"imageDigest": sha256(b"x"), "imageTag": "v9"}]},
         "ImageNotFoundException", image_not_found(f"{{imageDigest:'{sha256(b'x')}', imageTag:'v9'}}")),
        ("batch_get_image", {"repositoryName": "nope", "imageIds": [{"imageTag": "v1"}]}, "RepositoryNotFoundException",
         not_found("nope")),
        ("put_image", {"repositoryName": "web", "imageManifest": json.dumps(manifest), "imageTag": "v1"},
         "ImageAlreadyExistsException",
         f"Image with digest '{sha256(json.dumps(manifest).encode())}' and tag 'v1' already exists in the repository with name 'web' in registry with id '{ACCOUNT}'"),
        ("put_image", {"repositoryName": "frozen", "imageManifest": json.dumps(w["other"]), "imageTag": "v1"},
         "ImageTagAlreadyExistsException",
         "The image tag 'v1' already exists in the 'frozen' repository and cannot be overwritten because the repository is immutable."),
        ("put_image", {"repositoryName": "web", "imageManifest": "{nope", "imageTag": "x"}, "InvalidParameterException", None),
        ("get_repository_policy", {"repositoryName": "web"}, "RepositoryPolicyNotFoundException",
         f"Repository policy does not exist for the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("delete_repository_policy", {"repositoryName": "web"}, "RepositoryPolicyNotFoundException",
         f"Repository policy does not exist for the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("set_repository_policy", {"repositoryName": "web", "policyText": "{}"}, "InvalidParameterException",
         invalid("PolicyText", "Invalid repository policy provided")),
        ("get_repository_policy", {"repositoryName": "nope"}, "RepositoryNotFoundException", not_found("nope")),
        ("get_lifecycle_policy", {"repositoryName": "web"}, "LifecyclePolicyNotFoundException",
         f"Lifecycle policy does not exist for the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("delete_lifecycle_policy", {"repositoryName": "web"}, "LifecyclePolicyNotFoundException",
         f"Lifecycle policy does not exist for the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("get_lifecycle_policy_preview", {"repositoryName": "web"}, "LifecyclePolicyPreviewNotFoundException",
         f"Lifecycle policy preview does not exist for the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("put_image_tag_mutability", {"repositoryName": "nope", "imageTagMutability": "MUTABLE"},
         "RepositoryNotFoundException", not_found("nope")),
        ("tag_resource", {"resourceArn": "arn:aws:ecs:us-east-1:0:cluster/x", "tags": [{"Key": "a", "Value": "b"}]},
         "InvalidParameterException", invalid("resourceArn", "Invalid ARN")),
        ("list_tags_for_resource", {"resourceArn": arn + "nope"}, "RepositoryNotFoundException", not_found("nope")),
        ("get_download_url_for_layer", {"repositoryName": "web", "layerDigest": sha256(b"missing")},
         "LayersNotFoundException",
         f"The layer with digest '{sha256(b'missing')}' does not exist in the repository with name 'web' in the registry with id '{ACCOUNT}'"),
        ("get_registry_policy", {}, "RegistryPolicyNotFoundException",
         f"Registry policy does not exist in the registry with id '{ACCOUNT}'"),
        ("delete_registry_policy", {}, "RegistryPolicyNotFoundException",
         f"Registry policy does not exist in the registry with id '{ACCOUNT}'"),
        ("put_registry_policy", {"policyText": "{}"}, "InvalidParameterException",
         invalid("PolicyText", "Invalid registry policy provided")),
        ("put_registry_policy",
         {"policyText": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]})},
         "InvalidParameterException", invalid("PolicyText", "Invalid registry policy provided")),
        ("put_registry_scanning_configuration",
         {"scanType": "BASIC", "rules": [{"scanFrequency": "CONTINUOUS_SCAN",
                                          "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]},
         "InvalidParameterException", invalid("rules", "CONTINUOUS_SCAN needs scanType ENHANCED")),
        ("put_registry_scanning_configuration",
         {"scanType": "ENHANCED", "rules": [{"scanFrequency": "SCAN_ON_PUSH",
                                             "repositoryFilters": [{"filter": "Bad-", "filterType": "WILDCARD"}]}]},
         "InvalidParameterException", None),
        ("batch_get_repository_scanning_configuration", {"repositoryNames": ["Bad"]}, "InvalidParameterException",
         invalid("repositoryName", f"must satisfy regular expression '{PATTERN}'")),
        ("put_replication_configuration",
         {"replicationConfiguration": {"rules": [{"destinations": [{"region": "us-east-1", "registryId": ACCOUNT}]}]}},
         "InvalidParameterException",
         invalid("replicationConfiguration", "Replication destination cannot be the same as the source registry")),
        ("put_replication_configuration",
         {"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "111111111111"}]}]}},
         "InvalidParameterException",
         invalid("replicationConfiguration",
                 "No Berth registry is configured for registry 111111111111 in region eu-west-1 (see --registry-peers-file)")),
        ("put_replication_configuration",
         {"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}],
                                                  "repositoryFilters": [{"filter": "Web", "filterType": "PREFIX_MATCH"}]}]}},
         "InvalidParameterException", invalid("replicationConfiguration", "Invalid repository filter 'Web'")),
        ("describe_image_replication_status", {"repositoryName": "web", "imageId": {"imageTag": "nope"}},
         "ImageNotFoundException", image_not_found("{imageDigest:'null', imageTag:'nope'}")),
        ("describe_image_replication_status", {"repositoryName": "nope", "imageId": {"imageTag": "v1"}},
         "RepositoryNotFoundException", not_found("nope")),
        ("create_pull_through_cache_rule", {"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "http://10.1.2.3:5000"},
         "UnsupportedUpstreamRegistryException",
         "The upstream registry is not supported: 'http://10.1.2.3:5000' speaks plain http, which is only allowed to a loopback address; use https"),
        ("create_pull_through_cache_rule",
         {"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "quay.io", "upstreamRegistry": "docker-hub"},
         "UnsupportedUpstreamRegistryException",
         "The upstream registry is not supported: 'quay.io' is not the address of a docker-hub registry"),
        ("create_pull_through_cache_rule",
         {"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "quay.io", "credentialArn": SECRET},
         "SecretNotFoundException", None),
        ("create_pull_through_cache_rule",
         {"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "quay.io", "customRoleArn": "arn:aws:iam::0:role/x"},
         "InvalidParameterException", invalid("customRoleArn", "Berth has no IAM roles; customRoleArn is not supported")),
        ("create_pull_through_cache_rule", {"ecrRepositoryPrefix": "Hub", "upstreamRegistryUrl": "quay.io"},
         "InvalidParameterException", invalid("ecrRepositoryPrefix", "'Hub' must be ROOT or a repository name prefix")),
        ("describe_pull_through_cache_rules", {"ecrRepositoryPrefixes": ["nope"]}, "PullThroughCacheRuleNotFoundException",
         f"The pull through cache rule with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("delete_pull_through_cache_rule", {"ecrRepositoryPrefix": "nope"}, "PullThroughCacheRuleNotFoundException",
         f"The pull through cache rule with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("validate_pull_through_cache_rule", {"ecrRepositoryPrefix": "nope"}, "PullThroughCacheRuleNotFoundException",
         f"The pull through cache rule with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("update_pull_through_cache_rule", {"ecrRepositoryPrefix": "nope", "credentialArn": SECRET},
         "PullThroughCacheRuleNotFoundException",
         f"The pull through cache rule with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("create_pull_through_cache_rule",
         {"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "quay.io", "registryId": "123456789012"},
         "InvalidParameterException", invalid("registryId", f"registry 123456789012 is not this registry ({ACCOUNT})")),
        ("update_pull_through_cache_rule", {"ecrRepositoryPrefix": "nope"}, "InvalidParameterException",
         "Missing required parameter 'credentialArn'."),
        ("describe_pull_through_cache_rules", {"maxResults": 0}, "InvalidParameterException", None),
        ("describe_repository_creation_templates", {"nextToken": "zz"}, "InvalidParameterException", "Invalid nextToken."),
        ("list_image_referrers", {"repositoryName": "web", "subjectId": {"imageDigest": digest}, "maxResults": 51},
         "InvalidParameterException", None),
        ("create_repository_creation_template", {"prefix": "prod", "appliedFor": []}, "InvalidParameterException",
         invalid("appliedFor", "at least one of REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH")),
        ("create_repository_creation_template", {"prefix": "Prod", "appliedFor": ["CREATE_ON_PUSH"]},
         "InvalidParameterException", invalid("prefix", "'Prod' must be ROOT or a repository name prefix")),
        ("create_repository_creation_template",
         {"prefix": "prod", "appliedFor": ["CREATE_ON_PUSH"], "lifecyclePolicy": '{"rules": []}'},
         "InvalidParameterException", None),
        ("create_repository_creation_template",
         {"prefix": "prod", "appliedFor": ["CREATE_ON_PUSH"], "repositoryPolicy": "{}"},
         "InvalidParameterException", invalid("PolicyText", "Invalid repository policy provided")),
        ("update_repository_creation_template", {"prefix": "nope", "description": "x"}, "TemplateNotFoundException",
         f"The repository creation template with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("delete_repository_creation_template", {"prefix": "nope"}, "TemplateNotFoundException",
         f"The repository creation template with prefix 'nope' does not exist in the registry with id '{ACCOUNT}'"),
        ("get_account_setting", {"name": "COLOUR"}, "InvalidParameterException",
         invalid("name", "Member must satisfy enum value set: [BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE, BLOB_MOUNTING]")),
        ("put_account_setting", {"name": "BLOB_MOUNTING", "value": "SOMETIMES"}, "InvalidParameterException",
         invalid("value", "Member must satisfy enum value set: [ENABLED, DISABLED]")),
        ("list_image_referrers", {"repositoryName": "web", "subjectId": {"imageDigest": "sha256:zz"}},
         "InvalidParameterException", invalid("subjectId.imageDigest", "'sha256:zz' is not an image digest")),
        ("list_image_referrers", {"repositoryName": "nope", "subjectId": {"imageDigest": digest}},
         "RepositoryNotFoundException", not_found("nope")),
        ("start_image_scan", {"repositoryName": "web", "imageId": {"imageTag": "v1"}}, "ValidationException",
         "Berth does not implement StartImageScan yet."),
        ("get_signing_configuration", {}, "ValidationException", "Berth does not implement GetSigningConfiguration yet."),
    ]


def test_every_refusal_names_ecrs_exception_and_message_and_changes_nothing(world):
    ecr = world["ecr"]
    before = registry_state(ecr)
    failures = []
    for operation, arguments, code, message in cases(world):
        try:
            getattr(ecr, operation)(**arguments)
            failures.append(f"{operation}({arguments}) succeeded; expected {code}")
            continue
        except ecr.exceptions.ClientError as e:
            err = e.response["Error"]
        if err["Code"] != code or (message is not None and err["Message"] != message):
            failures.append(f"{operation}({arguments}):\n  got      {err['Code']}: {err['Message']}\n  expected {code}: {message}")
    assert not failures, "\n".join(failures)
    assert registry_state(ecr) == before


def test_unimplemented_operations_answer_an_exception_of_ecrs_model(world):
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecr")
    assert "ValidationException" in [s.name for s in model.error_shapes]
    assert "UnsupportedFeatureException" not in [s.name for s in model.error_shapes]
