"""The protocol layer end to end: an EC2-query service (EC2) and an AWS-query service (ELBv2)
reached by boto3, the AWS CLI and hand-signed requests against a real `berth up`, with the
bad input each protocol must refuse in its own error shape. (The AWS JSON services have
test_protocol_auth.py.)"""

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.config import Config

from ecs_helpers import AGENT_RESOURCES, expect_error, header, register_instance

REGION = "us-east-1"
EC2_VERSION = "2016-11-15"
ELB_VERSION = "2015-12-01"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def client(berth, service, validate=True, **kw):
    """A boto3 client; `validate=False` turns botocore's own parameter checks off, so the
    server's are what refuses."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=berth.endpoint,
        region_name=kw.get("region", REGION),
        aws_access_key_id=berth.access_key,
        aws_secret_access_key=kw.get("secret_key", berth.secret_key),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate),
    )


def send(berth, service, params, method="POST", secret=None, sign=True, body=None):
    """A hand-made form request signed for `service`; returns (status, headers, XML root)."""
    query = urllib.parse.urlencode(params)
    if method == "GET":
        request = botocore.awsrequest.AWSRequest(method="GET", url=f"{berth.endpoint}/?{query}")
    else:
        data = body if body is not None else query.encode()
        request = botocore.awsrequest.AWSRequest(method="POST", url=berth.endpoint + "/", data=data, headers={"Content-Type": FORM})
    if sign:
        creds = botocore.credentials.Credentials(berth.access_key, secret or berth.secret_key)
        botocore.auth.SigV4Auth(creds, service, REGION).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), ET.fromstring(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), ET.fromstring(e.read())


def local(tag):
    return tag.rsplit("}", 1)[-1]


def find(root, name):
    """The text of the first element called `name` anywhere under `root` (namespaces ignored)."""
    for el in root.iter():
        if local(el.tag) == name:
            return el.text
    return None


def ec2_error(root):
    """(Code, RequestID) of an EC2 error: <Response><Errors><Error>...</Errors><RequestID/>."""
    assert local(root.tag) == "Response", ET.tostring(root)
    assert local(root[0].tag) == "Errors", ET.tostring(root)
    return find(root, "Code"), find(root, "RequestID")


def query_error(root):
    """(Type, Code, RequestId) of an AWS query error: <ErrorResponse><Error>...</Error><RequestId/>."""
    assert local(root.tag) == "ErrorResponse", ET.tostring(root)
    return find(root, "Type"), find(root, "Code"), find(root, "RequestId")


# --- EC2 (EC2 query) --------------------------------------------------------------------


def test_boto3_describes_the_default_zone(berth):
    """With no agent, the region has the local agent's default zone, in EC2's output shape."""
    out = client(berth, "ec2").describe_availability_zones()
    assert out["AvailabilityZones"] == [{
        "ZoneName": "us-east-1a",
        "ZoneId": "use1-az1",
        "State": "available",
        "OptInStatus": "opt-in-not-required",
        "Messages": [],
        "RegionName": "us-east-1",
        "GroupName": "us-east-1-zg-1",
        "NetworkBorderGroup": "us-east-1",
        "ZoneType": "availability-zone",
    }]
    assert len(out["ResponseMetadata"]["RequestId"]) == 36
    eu = client(berth, "ec2", region="eu-west-1").describe_availability_zones()
    assert [(z["ZoneName"], z["RegionName"]) for z in eu["AvailabilityZones"]] == [("eu-west-1a", "eu-west-1")]


def test_zones_of_registered_instances_and_filters(berth):
    """Container instances registered in other zones add those zones; names, ids and filters pick."""
    ecs = berth.client()
    for zone in ("us-east-1b", "us-east-1c"):
        register_instance(ecs, attributes=[{"name": "ecs.availability-zone", "value": zone}])
    ec2 = client(berth, "ec2")
    names = lambda out: [z["ZoneName"] for z in out["AvailabilityZones"]]  # noqa: E731
    assert names(ec2.describe_availability_zones()) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert names(ec2.describe_availability_zones(ZoneNames=["us-east-1c", "us-east-1a"])) == ["us-east-1a", "us-east-1c"]
    assert names(ec2.describe_availability_zones(ZoneIds=["use1-az2"])) == ["us-east-1b"]
    out = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*-1b", "*-1c"]},
                                                   {"Name": "state", "Values": ["available"]}])
    assert names(out) == ["us-east-1b", "us-east-1c"]
    assert names(ec2.describe_availability_zones(Filters=[{"Name": "region-name", "Values": ["eu-west-1"]}])) == []
    assert names(ec2.describe_availability_zones(AllAvailabilityZones=True)) == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_aws_cli_describes_zones(berth):
    """`aws ec2 describe-availability-zones` as a user types it."""
    out = berth.cli("ec2", "describe-availability-zones", "--filters", "Name=zone-name,Values=us-east-1a")
    assert [z["ZoneId"] for z in out["AvailabilityZones"]] == ["use1-az1"]
    p = berth.cli("ec2", "describe-availability-zones", "--zone-names", "us-east-1q", check=False)
    assert p.returncode != 0
    assert "InvalidParameterValue" in p.stderr and "us-east-1q" in p.stderr, p.stderr


def test_ec2_refusals_have_ec2_codes(berth):
    """Unknown zones and filters, DryRun, operations Berth lacks: EC2's error codes through boto3."""
    ec2 = client(berth, "ec2")
    with expect_error("InvalidParameterValue", message_contains="us-east-1z"):
        ec2.describe_availability_zones(ZoneNames=["us-east-1z"])
    with expect_error("InvalidParameterValue", message_contains="colour"):
        ec2.describe_availability_zones(Filters=[{"Name": "colour", "Values": ["red"]}])
    with expect_error("DryRunOperation") as info:
        ec2.describe_availability_zones(DryRun=True)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert len(info.value.response["ResponseMetadata"]["RequestId"]) == 36
    with expect_error("UnsupportedOperation", message_contains="AmazonProvidedIpv6CidrBlock"):
        ec2.create_vpc(CidrBlock="10.1.0.0/16", AmazonProvidedIpv6CidrBlock=True)
    with expect_error("MissingParameter"):
        client(berth, "ec2", validate=False).delete_vpc()


@pytest.mark.parametrize("params,status,code", [
    ({"Action": "RunInstances", "Version": EC2_VERSION}, 400, "InvalidAction"),
    ({"Action": "Frobnicate", "Version": EC2_VERSION}, 400, "InvalidAction"),
    ({"Version": EC2_VERSION}, 400, "MissingAction"),
    ({"Action": "DescribeAvailabilityZones", "Version": "2014-09-01"}, 400, "InvalidParameterValue"),
    ({"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION, "AllAvailabilityZones": "maybe"}, 400, "InvalidParameterValue"),
    ({"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION, "ZoneNames.1": "us-east-1a"}, 400, "UnknownParameter"),
    ({"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION, "Filter.1.Name": "state"}, 400, "InvalidParameterValue"),
    ({"Action": "DeleteSubnet", "Version": EC2_VERSION}, 400, "MissingParameter"),
])
def test_ec2_bad_requests(berth, params, status, code):
    """Hand-made EC2 requests a client library would not send get EC2's error shape and codes."""
    st, _, root = send(berth, "ec2", params)
    assert st == status, ET.tostring(root)
    got, request_id = ec2_error(root)
    assert got == code
    assert len(request_id) == 36


def test_ec2_authentication(berth):
    """Bad signature, unknown key, no signature: EC2's AuthFailure / MissingAuthenticationToken."""
    params = {"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION}
    st, _, root = send(berth, "ec2", params, secret="x" * 40)
    assert (st, ec2_error(root)[0]) == (401, "AuthFailure")
    st, _, root = send(berth, "ec2", params, sign=False)
    assert (st, ec2_error(root)[0]) == (401, "MissingAuthenticationToken")
    import boto3

    stranger = boto3.client("ec2", endpoint_url=berth.endpoint, region_name=REGION, aws_access_key_id="AKIDUNKNOWN",
                            aws_secret_access_key="y" * 40, config=Config(retries={"max_attempts": 1}))
    with expect_error("AuthFailure"):
        stranger.describe_availability_zones()


def test_ec2_get_and_oversized_body(berth):
    """The query string of a GET works as a form; a body over 1 MiB is refused with 413."""
    st, _, root = send(berth, "ec2", {"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION, "ZoneName.1": "us-east-1a"}, method="GET")
    assert st == 200, ET.tostring(root)
    assert find(root, "zoneName") == "us-east-1a"
    assert len(find(root, "requestId")) == 36
    big = urllib.parse.urlencode({"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION, "ZoneName.1": "z" * (1100 * 1024)})
    st, _, root = send(berth, "ec2", {}, body=big.encode())
    assert (st, ec2_error(root)[0]) == (413, "RequestEntityTooLarge")


# --- ELBv2 (AWS query) ------------------------------------------------------------------


def test_boto3_and_cli_describe_no_load_balancers(berth):
    """ELBv2 answers for an account without load balancers, through boto3 and the AWS CLI."""
    elb = client(berth, "elbv2")
    out = elb.describe_load_balancers(PageSize=10)
    assert out["LoadBalancers"] == []
    assert "NextMarker" not in out
    assert len(out["ResponseMetadata"]["RequestId"]) == 36
    assert berth.cli("elbv2", "describe-load-balancers") == {"LoadBalancers": []}
    p = berth.cli("elbv2", "describe-load-balancers", "--names", "web", check=False)
    assert p.returncode != 0
    assert "LoadBalancerNotFound" in p.stderr and "Load balancers '[web]' not found" in p.stderr, p.stderr


def test_elbv2_refusals(berth):
    """Load balancers asked for, bad ARNs, out-of-range and wrong-typed values, missing members,
    operations Berth lacks: ELB's error codes through boto3."""
    elb = client(berth, "elbv2")
    with expect_error("LoadBalancerNotFound", message_prefix="Load balancers '[a, b]' not found"):
        elb.describe_load_balancers(Names=["a", "b"])
    arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188"
    with expect_error("LoadBalancerNotFound"):
        elb.describe_load_balancers(LoadBalancerArns=[arn])
    with expect_error("ValidationError", message_contains="not a valid load balancer ARN"):
        elb.describe_load_balancers(LoadBalancerArns=["web"])
    loose = client(berth, "elbv2", validate=False)
    with expect_error("ValidationError", message_contains="at 'pageSize'"):
        loose.describe_load_balancers(PageSize=0)
    with expect_error("ValidationError", message_contains="Value 'ten' at 'pageSize'"):
        loose.describe_load_balancers(PageSize="ten")
    with expect_error("ValidationError", message_contains="Value null at 'resourceArns'"):
        loose.describe_tags()
    with expect_error("LoadBalancerNotFound"):
        elb.describe_tags(ResourceArns=[arn])
    with expect_error("OperationNotPermitted") as info:
        elb.describe_trust_stores()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("params,status,code", [
    ({"Action": "Frobnicate", "Version": ELB_VERSION}, 400, "InvalidAction"),
    ({"Version": ELB_VERSION}, 400, "MissingAction"),
    ({"Action": "DescribeLoadBalancers", "Version": "2012-06-01"}, 400, "InvalidParameterValue"),
    ({"Action": "DescribeLoadBalancers", "Version": ELB_VERSION, "Colour": "red"}, 400, "ValidationError"),
    ({"Action": "DescribeLoadBalancers", "Version": ELB_VERSION, "PageSize": "401"}, 400, "ValidationError"),
])
def test_elbv2_bad_requests(berth, params, status, code):
    """Hand-made query requests get <ErrorResponse> with a Sender fault and the request id."""
    st, headers, root = send(berth, "elasticloadbalancing", params)
    assert st == status, ET.tostring(root)
    fault, got, request_id = query_error(root)
    assert (fault, got) == ("Sender", code)
    assert request_id == header(headers, "x-amzn-RequestId")


def test_elbv2_authentication_and_malformed_forms(berth):
    """Query-protocol signature errors, a malformed form, and an oversized body."""
    params = {"Action": "DescribeLoadBalancers", "Version": ELB_VERSION}
    st, _, root = send(berth, "elasticloadbalancing", params, secret="x" * 40)
    assert (st, query_error(root)[1]) == (403, "SignatureDoesNotMatch")
    st, _, root = send(berth, "elasticloadbalancing", params, sign=False)
    assert (st, query_error(root)[1]) == (403, "MissingAuthenticationToken")
    with expect_error("SignatureDoesNotMatch"):
        client(berth, "elbv2", secret_key="z" * 40).describe_load_balancers()
    st, _, root = send(berth, "elasticloadbalancing", {}, body=b"Action=DescribeLoadBalancers&Version=2015-12-01&Marker=%zz")
    assert (st, query_error(root)[1]) == (400, "MalformedQueryString")
    big = urllib.parse.urlencode({**params, "Marker": "m" * (1100 * 1024)})
    st, _, root = send(berth, "elasticloadbalancing", {}, body=big.encode())
    assert (st, query_error(root)[1]) == (413, "RequestEntityTooLarge")
    st, _, root = send(berth, "elasticloadbalancing", {**params, "PageSize": "5"}, method="GET")
    assert st == 200 and local(root.tag) == "DescribeLoadBalancersResponse", ET.tostring(root)


def test_one_port_serves_every_protocol_side_by_side(berth):
    """ECS (JSON), EC2 (EC2 query) and ELBv2 (query) on the same endpoint, each signed for itself;
    a form signed for a service Berth does not serve is refused."""
    assert berth.client().list_clusters()["clusterArns"] == ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]
    register_instance(berth.client(), resources=AGENT_RESOURCES, attributes=[{"name": "ecs.availability-zone", "value": "us-east-1d"}])
    assert "us-east-1d" in [z["ZoneName"] for z in client(berth, "ec2").describe_availability_zones()["AvailabilityZones"]]
    assert client(berth, "elbv2").describe_load_balancers()["LoadBalancers"] == []
    st, _, root = send(berth, "sqs", {"Action": "ListQueues", "Version": "2012-11-05"})
    assert (st, query_error(root)[1]) == (400, "InvalidAction")
