"""AWS JSON 1.1 protocol and SigV4 authentication, mostly with hand-made requests."""

import datetime
import urllib.error
import urllib.request

import pytest

from ecs_helpers import error_code, expect_error, header

ECS_TARGET = "AmazonEC2ContainerServiceV20141113"


def clusters(berth):
    """Cluster ARNs as seen by a properly signed request."""
    st, _, out = berth.raw("ListClusters", {})
    assert st == 200, out
    return out["clusterArns"]


def assert_error_shape(status, headers, body, want_status, want_code):
    assert status == want_status, (status, body)
    assert body.get("__type", "").split("#")[-1] == want_code, body
    assert "message" in body and isinstance(body["message"], str), body
    assert header(headers, "x-amzn-RequestId"), headers


def test_unknown_operation(berth):
    """An operation ECS does not have -> 400 UnknownOperationException."""
    before = clusters(berth)
    assert_error_shape(*berth.raw("NoSuchThing", {}), 400, "UnknownOperationException")
    assert clusters(berth) == before


def test_unknown_target_prefix(berth):
    """A target for some other service -> 400 UnknownOperationException."""
    before = clusters(berth)
    resp = berth.raw("CreateCluster", {"clusterName": "nope"}, target_prefix="DynamoDB_20120810")
    assert_error_shape(*resp, 400, "UnknownOperationException")
    assert clusters(berth) == before


def test_success_has_request_id_and_content_type(berth):
    """A successful response carries x-amzn-RequestId and Content-Type application/x-amz-json-1.1."""
    st, headers, body = berth.raw("ListClusters", {})
    assert st == 200
    assert header(headers, "x-amzn-RequestId")
    assert header(headers, "Content-Type").split(";")[0].strip() == "application/x-amz-json-1.1"
    assert body["clusterArns"] == ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]


def test_request_ids_are_unique(berth):
    """Each response gets its own request id."""
    ids = {header(berth.raw("ListClusters", {})[1], "x-amzn-RequestId") for _ in range(5)}
    assert len(ids) == 5


def test_errors_from_handlers_have_type_message_and_request_id(berth):
    """A handler-level error (missing cluster) has __type, message and x-amzn-RequestId."""
    resp = berth.raw("DeleteCluster", {"cluster": "does-not-exist"})
    assert_error_shape(*resp, 400, "ClusterNotFoundException")
    assert header(resp[1], "Content-Type").startswith("application/x-amz-json-1.1")


def test_unsigned_request(berth):
    """No Authorization header -> 403 MissingAuthenticationTokenException, and nothing created."""
    before = clusters(berth)
    resp = berth.raw("CreateCluster", {"clusterName": "unsigned"}, sign=False)
    assert_error_shape(*resp, 403, "MissingAuthenticationTokenException")
    assert clusters(berth) == before


def test_wrong_secret_raw(berth):
    """A signature made with the wrong secret -> 400 InvalidSignatureException, and nothing created."""
    before = clusters(berth)
    resp = berth.raw("CreateCluster", {"clusterName": "badsig"}, secret_key="x" * 40)
    assert_error_shape(*resp, 400, "InvalidSignatureException")
    assert clusters(berth) == before


def test_wrong_secret_boto3(berth):
    """boto3 with the wrong secret gets ClientError InvalidSignatureException."""
    bad = berth.client(secret_key="y" * 40)
    with expect_error("InvalidSignatureException"):
        bad.create_cluster(clusterName="badsig")
    assert "arn:aws:ecs:us-east-1:000000000000:cluster/badsig" not in clusters(berth)


def test_unknown_access_key(berth):
    """An access key Berth never issued -> UnrecognizedClientException, and nothing created."""
    before = clusters(berth)
    bad = berth.client(access_key="AKIDUNKNOWN", secret_key=berth.secret_key)
    with expect_error("UnrecognizedClientException") as info:
        bad.create_cluster(clusterName="stranger")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert clusters(berth) == before


def test_body_tampered_after_signing(berth):
    """Changing the body after signing breaks the signature (payload hash is checked)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import json

    before = clusters(berth)
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=berth.endpoint + "/",
        data=json.dumps({"clusterName": "honest"}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_TARGET}.CreateCluster"},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(berth.access_key, berth.secret_key), "ecs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    tampered = json.dumps({"clusterName": "evil00"}).encode()
    assert len(tampered) == len(prepared.body)
    req = urllib.request.Request(prepared.url, data=tampered, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    body = json.loads(info.value.read())
    assert info.value.code == 400
    assert body["__type"].split("#")[-1] == "InvalidSignatureException", body
    assert clusters(berth) == before


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_stale_signature_is_expired(berth):
    """A request signed 20 minutes ago -> 400 InvalidSignatureException 'Signature expired: ...', nothing created."""
    before = clusters(berth)
    stale = _utcnow() - datetime.timedelta(minutes=20)
    st, headers, body = berth.raw("CreateCluster", {"clusterName": "stale"}, date=stale)
    assert_error_shape(st, headers, body, 400, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired:"), body
    assert stale.strftime("%Y%m%dT%H%M%SZ") in body["message"], body
    assert clusters(berth) == before


def test_future_signature_is_refused(berth):
    """A request signed 20 minutes in the future is refused with InvalidSignatureException."""
    before = clusters(berth)
    future = _utcnow() + datetime.timedelta(minutes=20)
    st, headers, body = berth.raw("CreateCluster", {"clusterName": "future"}, date=future)
    assert_error_shape(st, headers, body, 400, "InvalidSignatureException")
    assert clusters(berth) == before


def test_ten_minute_old_signature_is_accepted(berth):
    """Clock skew within the 15 minute window is tolerated."""
    old = _utcnow() - datetime.timedelta(minutes=10)
    st, _, body = berth.raw("CreateCluster", {"clusterName": "skewed"}, date=old)
    assert st == 200, body
    assert body["cluster"]["clusterName"] == "skewed"
    assert "arn:aws:ecs:us-east-1:000000000000:cluster/skewed" in clusters(berth)


def test_region_comes_from_credential_scope(berth):
    """A cluster created in eu-west-1 has an eu-west-1 ARN and is only visible in that region (and vice versa)."""
    eu = berth.client(region="eu-west-1")
    us = berth.client(region="us-east-1")
    c = eu.create_cluster(clusterName="euro")["cluster"]
    assert c["clusterArn"] == "arn:aws:ecs:eu-west-1:000000000000:cluster/euro"
    assert "arn:aws:ecs:eu-west-1:000000000000:cluster/euro" in eu.list_clusters()["clusterArns"]
    assert not any("euro" in a for a in us.list_clusters()["clusterArns"])
    us.create_cluster(clusterName="yankee")
    assert not any("yankee" in a for a in eu.list_clusters()["clusterArns"])
    described = us.describe_clusters(clusters=["euro"])
    assert described["clusters"] == []
    assert described["failures"][0]["reason"] == "MISSING"


def test_region_in_raw_scope(berth):
    """raw() signed for eu-west-1 sees the eu-west-1 view."""
    berth.client(region="eu-west-1").create_cluster(clusterName="scoped")
    st, _, body = berth.raw("ListClusters", {}, region="eu-west-1")
    assert st == 200
    assert "arn:aws:ecs:eu-west-1:000000000000:cluster/scoped" in body["clusterArns"]


def test_v2_path_is_the_registry(berth):
    """GET /v2/ is not the ECS API but the registry: without credentials it challenges."""
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(berth.endpoint + "/v2/", timeout=10)
    assert info.value.code == 401
    assert info.value.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert info.value.headers["WWW-Authenticate"].startswith("Basic ")


def test_oversized_body_is_refused(berth):
    """A body over the 1 MiB protocol cap is refused with a 4xx error and changes nothing."""
    before = clusters(berth)
    body = {"clusterName": "huge", "tags": [{"key": "k", "value": "v" * (1100 * 1024)}]}
    st, headers, out = berth.raw("CreateCluster", body)
    assert 400 <= st < 500, (st, out)
    assert out.get("__type"), out
    assert clusters(berth) == before


def test_boto3_error_code_is_parsed(berth):
    """botocore parses the error type from a real error response."""
    with pytest.raises(Exception) as info:
        berth.client().delete_cluster(cluster="absent")
    assert error_code(info.value) == "ClusterNotFoundException"


def _stale():
    return _utcnow() - datetime.timedelta(minutes=20)


ERROR_CASES = {
    "unknown-operation": (lambda b: b.raw("NoSuchThing", {}), 400, "UnknownOperationException"),
    "unknown-prefix": (lambda b: b.raw("ListClusters", {}, target_prefix="Nope_20200101"), 400, "UnknownOperationException"),
    "unsigned": (lambda b: b.raw("ListClusters", {}, sign=False), 403, "MissingAuthenticationTokenException"),
    "bad-signature": (lambda b: b.raw("ListClusters", {}, secret_key="z" * 40), 400, "InvalidSignatureException"),
    "stale": (lambda b: b.raw("ListClusters", {}, date=_stale()), 400, "InvalidSignatureException"),
    "malformed-json": (lambda b: b.raw("CreateCluster", b'{"clusterName": '), 400, "SerializationException"),
    "wrong-type": (lambda b: b.raw("CreateCluster", {"clusterName": 7}), 400, "SerializationException"),
    "missing-required": (lambda b: b.raw("DescribeTaskDefinition", {}), 400, "InvalidParameterException"),
    "cluster-not-found": (lambda b: b.raw("ListTasks", {"cluster": "nope"}), 400, "ClusterNotFoundException"),
    "client-exception": (lambda b: b.raw("DescribeTaskDefinition", {"taskDefinition": "nope:1"}), 400, "ClientException"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_every_error_has_type_message_and_request_id(berth, case):
    """Each kind of refusal answers with __type, a message and an x-amzn-RequestId header, and changes nothing."""
    call, status, code = ERROR_CASES[case]
    before = clusters(berth)
    st, headers, body = call(berth)
    assert_error_shape(st, headers, body, status, code)
    assert header(headers, "Content-Type").startswith("application/x-amz-json-1.1")
    assert clusters(berth) == before


def test_signature_scoped_to_another_service(berth):
    """A signature whose credential scope names another service (ec2) is refused with InvalidSignatureException."""
    import json

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    before = clusters(berth)
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=berth.endpoint + "/",
        data=json.dumps({"clusterName": "wrongsvc"}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_TARGET}.CreateCluster"},
    )
    creds = botocore.credentials.Credentials(berth.access_key, berth.secret_key)
    botocore.auth.SigV4Auth(creds, "ec2", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    body = json.loads(info.value.read())
    assert info.value.code in (400, 403)
    assert body["__type"].split("#")[-1] in ("InvalidSignatureException", "IncompleteSignatureException"), body
    assert clusters(berth) == before


def test_task_definitions_are_per_region(berth):
    """Task definitions and their revision numbers are separate per region."""
    eu = berth.client(region="eu-west-1")
    us = berth.client(region="us-east-1")
    cd = [{"name": "a", "image": "busybox", "memory": 64}]
    eu.register_task_definition(family="regional", containerDefinitions=cd)
    eu.register_task_definition(family="regional", containerDefinitions=cd)
    td = us.register_task_definition(family="regional", containerDefinitions=cd)["taskDefinition"]
    assert td["revision"] == 1
    assert td["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/regional:1"
    assert eu.list_task_definitions()["taskDefinitionArns"] == [
        "arn:aws:ecs:eu-west-1:000000000000:task-definition/regional:1",
        "arn:aws:ecs:eu-west-1:000000000000:task-definition/regional:2",
    ]
    with expect_error("ClientException"):
        us.describe_task_definition(taskDefinition="regional:2")
