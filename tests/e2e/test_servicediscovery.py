"""Cloud Map against a real `berth up` (no agent), with boto3 and the AWS CLI: every operation
with its bad inputs (which change nothing), DiscoverInstances' filters, operations and tags;
then Berth's DNS server, asked with dnspython on loopback, answering what was registered and
forwarding other names to a fake upstream resolver on loopback."""

import json
import subprocess
import time
from datetime import datetime, timedelta, timezone

import dns.rcode
import dns.rdatatype
import pytest

from conftest import Berth
from dns_helpers import FakeUpstream, addresses, ask, cloudmap
from ecs_helpers import expect_error, until


@pytest.fixture
def upstream():
    u = FakeUpstream({"outside.test": "192.0.2.10"}).start()
    yield u
    u.stop()


@pytest.fixture
def sd_berth(tmp_path, upstream):
    """`berth up` with its DNS server on a free loopback port, forwarding to the fake upstream."""
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--dns-address", "127.0.0.1:0",
                                             "--dns-forwarders", f"127.0.0.1:{upstream.port}")).start()
    yield b
    b.stop()


@pytest.fixture
def sd(sd_berth):
    return cloudmap(sd_berth)


def vpc_of(b):
    return b.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]


def finished(sd, answer):
    """The operation a change answered, which Berth completes before answering."""
    op = sd.get_operation(OperationId=answer["OperationId"])["Operation"]
    assert op["Status"] == "SUCCESS", op
    return op


def private_namespace(sd, b, name="internal.app"):
    op = finished(sd, sd.create_private_dns_namespace(Name=name, Vpc=vpc_of(b)))
    return op["Targets"]["NAMESPACE"]


def service(sd, ns, name, records=(("A", 10),), routing="MULTIVALUE", custom_health=True):
    args = {"Name": name, "NamespaceId": ns,
            "DnsConfig": {"RoutingPolicy": routing, "DnsRecords": [{"Type": t, "TTL": ttl} for t, ttl in records]}}
    if custom_health:
        args["HealthCheckCustomConfig"] = {"FailureThreshold": 1}
    return sd.create_service(**args)["Service"]["Id"]


def register(sd, svc, instance, **attributes):
    return finished(sd, sd.register_instance(ServiceId=svc, InstanceId=instance, Attributes=attributes))


def test_namespaces(sd, sd_berth):
    vpc = vpc_of(sd_berth)
    created = sd.create_private_dns_namespace(Name="internal.app", Vpc=vpc, Description="apps",
                                              Properties={"DnsProperties": {"SOA": {"TTL": 30}}},
                                              CreatorRequestId="req-1", Tags=[{"Key": "team", "Value": "a"}])
    op = finished(sd, created)
    assert op["Type"] == "CREATE_NAMESPACE" and op["CreateDate"] <= op["UpdateDate"]
    ns = op["Targets"]["NAMESPACE"]
    got = sd.get_namespace(Id=ns)["Namespace"]
    assert (got["Name"], got["Type"], got["Description"], got["ServiceCount"]) == ("internal.app", "DNS_PRIVATE", "apps", 0)
    assert got["Properties"]["DnsProperties"]["SOA"] == {"TTL": 30}
    assert got["Properties"]["DnsProperties"]["HostedZoneId"].startswith("Z")
    assert got["Properties"]["HttpProperties"]["HttpName"] == "internal.app"
    assert got["CreatorRequestId"] == "req-1" and got["ResourceOwner"] == "000000000000"
    assert sd.get_namespace(Id=got["Arn"])["Namespace"]["Id"] == ns, "an ARN names it too"
    # The same request again answers the same operation; the id reused for another is a duplicate.
    again = sd.create_private_dns_namespace(Name="internal.app", Vpc=vpc, Description="apps",
                                            Properties={"DnsProperties": {"SOA": {"TTL": 30}}},
                                            CreatorRequestId="req-1", Tags=[{"Key": "team", "Value": "a"}])
    assert again["OperationId"] == created["OperationId"]
    with expect_error("DuplicateRequest"):
        sd.create_http_namespace(Name="other", CreatorRequestId="req-1")

    shop = finished(sd, sd.create_http_namespace(Name="shop", Description="d"))["Targets"]["NAMESPACE"]
    bad = [
        (lambda: sd.create_private_dns_namespace(Name="INTERNAL.app", Vpc=vpc), "NamespaceAlreadyExists"),
        (lambda: sd.create_http_namespace(Name="shop"), "NamespaceAlreadyExists"),
        (lambda: sd.create_private_dns_namespace(Name="x.app", Vpc="vpc-0123456789abcdef0"), "InvalidInput"),
        (lambda: sd.create_private_dns_namespace(Name="bad..name", Vpc=vpc), "InvalidInput"),
        (lambda: sd.create_private_dns_namespace(Name="-x.app", Vpc=vpc), "InvalidInput"),
        (lambda: sd.create_http_namespace(Name="arn:aws:x"), "InvalidInput"),
        (lambda: sd.create_public_dns_namespace(Name="example.com"), "InvalidInput"),
        (lambda: sd.update_public_dns_namespace(Id=ns, Namespace={"Description": "x"}), "InvalidInput"),
        (lambda: sd.get_namespace(Id="ns-0000000000000000"), "NamespaceNotFound"),
        (lambda: sd.get_namespace(Id="arn:aws:servicediscovery:us-east-1:000000000000:service/" + ns), "NamespaceNotFound"),
        (lambda: sd.update_http_namespace(Id=ns, Namespace={"Description": "x"}), "InvalidInput"),
        (lambda: sd.update_private_dns_namespace(Id=shop, Namespace={"Description": "x"}), "InvalidInput"),
        (lambda: sd.delete_namespace(Id="ns-0000000000000000"), "NamespaceNotFound"),
        (lambda: sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP", "DNS_PRIVATE"], "Condition": "EQ"}]), "InvalidInput"),
        (lambda: sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP"], "Condition": "BETWEEN"}]), "InvalidInput"),
        (lambda: sd.list_namespaces(NextToken="not-a-token"), "InvalidInput"),
    ]
    for call, code in bad:
        with expect_error(code):
            call()
    names = sorted(n["Name"] for n in sd.list_namespaces()["Namespaces"])
    assert names == ["internal.app", "shop"], "nothing refused was made"

    def listed(*filters):
        return sorted(n["Name"] for n in sd.list_namespaces(Filters=list(filters))["Namespaces"])
    assert listed({"Name": "TYPE", "Values": ["HTTP"]}) == ["shop"]
    assert listed({"Name": "TYPE", "Values": ["DNS_PRIVATE", "HTTP"], "Condition": "IN"}) == names
    assert listed({"Name": "NAME", "Values": ["inter"], "Condition": "BEGINS_WITH"}) == ["internal.app"]
    assert listed({"Name": "HTTP_NAME", "Values": ["shop"], "Condition": "EQ"}) == ["shop"]
    assert listed({"Name": "RESOURCE_OWNER", "Values": ["OTHER_ACCOUNTS"]}) == []
    pages = list(sd.get_paginator("list_namespaces").paginate(PaginationConfig={"PageSize": 1}))
    assert [len(p["Namespaces"]) for p in pages] == [1, 1]

    finished(sd, sd.update_private_dns_namespace(
        Id=ns, UpdaterRequestId="u-1",
        Namespace={"Description": "new", "Properties": {"DnsProperties": {"SOA": {"TTL": 60}}}}))
    got = sd.get_namespace(Id=ns)["Namespace"]
    assert (got["Description"], got["Properties"]["DnsProperties"]["SOA"]["TTL"]) == ("new", 60)
    finished(sd, sd.update_http_namespace(Id=shop, Namespace={"Description": "shop things"}))
    assert sd.get_namespace(Id=shop)["Namespace"]["Description"] == "shop things"

    svc = sd.create_service(Name="cart", NamespaceId=shop)["Service"]["Id"]
    with expect_error("ResourceInUse"):
        sd.delete_namespace(Id=shop)
    sd.delete_service(Id=svc)
    op = finished(sd, sd.delete_namespace(Id=shop))
    assert op["Type"] == "DELETE_NAMESPACE"
    with expect_error("NamespaceNotFound"):
        sd.get_namespace(Id=shop)
    # The AWS CLI, as the users run it.
    out = sd_berth.cli("servicediscovery", "list-namespaces")
    assert [n["Name"] for n in out["Namespaces"]] == ["internal.app"]


def test_the_cli_discovers_with_the_variable_berth_up_exports(sd, sd_berth, monkeypatch):
    """`berth up` prints AWS_DISABLE_HOST_PREFIX_INJECTION=true with its export line: with it,
    botocore (boto3, the AWS CLI) calls DiscoverInstances on the endpoint itself instead of
    `data-` + its host."""
    assert "AWS_DISABLE_HOST_PREFIX_INJECTION=true" in sd_berth.output.splitlines()[-1]
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    # Checked without sending anything: the variable turns the prefix off.
    assert sd_berth.client("servicediscovery")._client_config.inject_host_prefix is False
    ns = private_namespace(sd, sd_berth)
    web = service(sd, ns, "web", custom_health=False)
    register(sd, web, "t1", AWS_INSTANCE_IPV4="10.0.0.1")
    env = sd_berth.env()
    env["AWS_DISABLE_HOST_PREFIX_INJECTION"] = "true"
    p = subprocess.run(["aws", "servicediscovery", "discover-instances", "--namespace-name", "internal.app",
                        "--service-name", "web", "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert [i["InstanceId"] for i in json.loads(p.stdout)["Instances"]] == ["t1"]


def test_services(sd, sd_berth):
    ns = private_namespace(sd, sd_berth)
    shop = finished(sd, sd.create_http_namespace(Name="shop"))["Targets"]["NAMESPACE"]
    web = sd.create_service(Name="web", NamespaceId=ns, Description="front", CreatorRequestId="s-1",
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 20}]},
                            HealthCheckCustomConfig={"FailureThreshold": 1}, Tags=[{"Key": "k", "Value": "v"}])["Service"]
    assert (web["Type"], web["DnsConfig"]["RoutingPolicy"], web["InstanceCount"]) == ("DNS_HTTP", "MULTIVALUE", 0)
    assert web["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 20}]
    assert web["Arn"].endswith(":service/" + web["Id"]) and web["NamespaceId"] == ns
    # A retry of the same request answers the service it made.
    retry = sd.create_service(Name="web", NamespaceId=ns, Description="front", CreatorRequestId="s-1",
                              DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 20}]},
                              HealthCheckCustomConfig={"FailureThreshold": 1}, Tags=[{"Key": "k", "Value": "v"}])
    assert retry["Service"]["Id"] == web["Id"]
    db = sd.create_service(Name="db", NamespaceId=ns,
                           DnsConfig={"RoutingPolicy": "WEIGHTED", "DnsRecords": [{"Type": "CNAME", "TTL": 60}]})["Service"]
    jobs = sd.create_service(Name="jobs", NamespaceId=ns, Type="HTTP")["Service"]
    assert jobs["Type"] == "HTTP" and "DnsConfig" not in jobs
    cart = sd.create_service(Name="cart", NamespaceId=shop)["Service"]

    records = lambda *r: {"DnsRecords": [{"Type": t, "TTL": 10} for t in r]}
    bad = [
        dict(Name="web", NamespaceId=ns),  # taken
        dict(Name="x", NamespaceId="ns-0000000000000000"),
        dict(Name="x"),  # no namespace
        dict(Name="x", NamespaceId=ns, HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/"}),
        dict(Name="x", NamespaceId=ns, DnsConfig={"RoutingPolicy": "MULTIVALUE", **records("CNAME")}),
        dict(Name="x", NamespaceId=ns, DnsConfig={"RoutingPolicy": "WEIGHTED", **records("CNAME", "A")}),
        dict(Name="x", NamespaceId=ns, DnsConfig=records("A", "A")),
        dict(Name="x", NamespaceId=ns, DnsConfig=records()),
        dict(Name="x", NamespaceId=ns, Type="HTTP", DnsConfig=records("A")),
        dict(Name="x", NamespaceId=shop, DnsConfig=records("A")),
        dict(Name="-x", NamespaceId=ns),
        dict(Name="x", NamespaceId=ns, DnsConfig={"NamespaceId": shop, **records("A")}),
        dict(Name="x", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 11}),
    ]
    codes = ["ServiceAlreadyExists", "NamespaceNotFound"] + ["InvalidInput"] * (len(bad) - 2)
    for args, code in zip(bad, codes):
        with expect_error(code):
            sd.create_service(**args)
    assert sorted(s["Name"] for s in sd.list_services()["Services"]) == ["cart", "db", "jobs", "web"]

    in_shop = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [shop], "Condition": "EQ"}])["Services"]
    assert [s["Id"] for s in in_shop] == [cart["Id"]]
    with expect_error("InvalidInput"):
        sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [ns, shop], "Condition": "IN"}])
    assert sd.get_service(Id=db["Arn"])["Service"]["DnsConfig"]["RoutingPolicy"] == "WEIGHTED"
    with expect_error("ServiceNotFound"):
        sd.get_service(Id="srv-0000000000000000")

    finished(sd, sd.update_service(Id=web["Id"], Service={
        "Description": "front door", "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 99}, {"Type": "SRV", "TTL": 98}]}}))
    now = sd.get_service(Id=web["Id"])["Service"]
    assert (now["Description"], now["DnsConfig"]["DnsRecords"][0]["TTL"]) == ("front door", 99)
    for change in [{"DnsConfig": {"DnsRecords": [{"Type": "AAAA", "TTL": 5}]}},
                   {"HealthCheckConfig": {"Type": "TCP"}}, {}]:
        with expect_error("InvalidInput"):
            sd.update_service(Id=web["Id"], Service=change)
    with expect_error("InvalidInput"):
        sd.update_service(Id=jobs["Id"], Service={"DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}]}})

    sd.update_service_attributes(ServiceId=web["Id"], Attributes={"owner": "team-a", "tier": "1"})
    sd.delete_service_attributes(ServiceId=web["Id"], Attributes=["tier"])
    attributes = sd.get_service_attributes(ServiceId=web["Id"])["ServiceAttributes"]
    assert (attributes["Attributes"], attributes["ServiceArn"]) == ({"owner": "team-a"}, web["Arn"])
    with expect_error("ServiceAttributesLimitExceededException"):
        sd.update_service_attributes(ServiceId=web["Id"], Attributes={f"k{i}": "v" for i in range(30)})
    with expect_error("ServiceNotFound"):
        sd.get_service_attributes(ServiceId="srv-0000000000000000")

    register(sd, web["Id"], "t1", AWS_INSTANCE_IPV4="10.0.0.1", AWS_INSTANCE_PORT="80")
    assert sd.get_service(Id=web["Id"])["Service"]["InstanceCount"] == 1
    with expect_error("ResourceInUse"):
        sd.delete_service(Id=web["Id"])
    finished(sd, sd.deregister_instance(ServiceId=web["Id"], InstanceId="t1"))
    sd.delete_service(Id=web["Id"])
    with expect_error("ServiceNotFound"):
        sd.delete_service(Id=web["Id"])


def test_instances_and_discovery(sd, sd_berth):
    ns = private_namespace(sd, sd_berth)
    web = service(sd, ns, "web", records=(("A", 10), ("SRV", 10)))
    plain = sd.create_service(Name="plain", NamespaceId=ns)["Service"]["Id"]
    for attributes in [{"AWS_INSTANCE_PORT": "80"}, {"AWS_INSTANCE_IPV4": "10.0.0.1"},
                       {"AWS_INSTANCE_IPV4": "10.0.0.999", "AWS_INSTANCE_PORT": "80"},
                       {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "eighty"},
                       {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80", "AWS_INIT_HEALTH_STATUS": "SICK"},
                       {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80", "AWS_EC2_INSTANCE_ID": "i-1"},
                       {"AWS_ALIAS_DNS_NAME": "lb.example"},
                       {f"k{i}": "v" for i in range(31)}]:
        with expect_error("InvalidInput"):
            sd.register_instance(ServiceId=web, InstanceId="t1", Attributes=attributes)
    with expect_error("InvalidInput"):
        sd.register_instance(ServiceId=web, InstanceId="has space", Attributes={})
    with expect_error("ServiceNotFound"):
        sd.register_instance(ServiceId="srv-0000000000000000", InstanceId="t1", Attributes={})
    with expect_error("InvalidInput"):
        sd.register_instance(ServiceId=plain, InstanceId="p1", Attributes={"AWS_INIT_HEALTH_STATUS": "HEALTHY"})
    assert sd.list_instances(ServiceId=web)["Instances"] == []

    for i, (az, health) in enumerate([("a", "HEALTHY"), ("b", "HEALTHY"), ("a", "UNHEALTHY")], start=1):
        op = register(sd, web, f"t{i}", AWS_INSTANCE_IPV4=f"10.0.0.{i}", AWS_INSTANCE_PORT="8080", az=az,
                      AWS_INIT_HEALTH_STATUS=health)
        assert op["Type"] == "REGISTER_INSTANCE" and op["Targets"] == {"NAMESPACE": ns, "SERVICE": web, "INSTANCE": f"t{i}"}
    got = sd.get_instance(ServiceId=web, InstanceId="t1")
    assert got["Instance"]["Attributes"]["az"] == "a" and got["ResourceOwner"] == "000000000000"
    with expect_error("InstanceNotFound"):
        sd.get_instance(ServiceId=web, InstanceId="t9")
    pages = list(sd.get_paginator("list_instances").paginate(ServiceId=web, PaginationConfig={"PageSize": 2}))
    assert [[i["Id"] for i in p["Instances"]] for p in pages] == [["t1", "t2"], ["t3"]]
    assert sd.get_instances_health_status(ServiceId=web)["Status"] == {"t1": "HEALTHY", "t2": "HEALTHY", "t3": "UNHEALTHY"}
    assert sd.get_instances_health_status(ServiceId=web, Instances=["t3"])["Status"] == {"t3": "UNHEALTHY"}
    with expect_error("InstanceNotFound"):
        sd.get_instances_health_status(ServiceId=web, Instances=["t9"])

    def found(**kw):
        out = sd.discover_instances(NamespaceName="internal.app", ServiceName="web", **kw)
        return sorted(i["InstanceId"] for i in out["Instances"]), out["InstancesRevision"]
    ids, revision = found()
    assert ids == ["t1", "t2"], "healthy instances when HealthStatus is not given"
    assert found(HealthStatus="UNHEALTHY")[0] == ["t3"]
    assert found(HealthStatus="ALL")[0] == ["t1", "t2", "t3"]
    assert found(HealthStatus="ALL", QueryParameters={"az": "a"})[0] == ["t1", "t3"]
    assert found(HealthStatus="ALL", OptionalParameters={"az": "b"})[0] == ["t2"]
    assert found(HealthStatus="ALL", OptionalParameters={"az": "z"})[0] == ["t1", "t2", "t3"], "optional: ignored when nothing matches"
    assert len(found(HealthStatus="ALL", MaxResults=2)[0]) == 2
    one = sd.discover_instances(NamespaceName="Internal.App", ServiceName="WEB", HealthStatus="UNHEALTHY")["Instances"][0]
    assert (one["NamespaceName"], one["ServiceName"], one["HealthStatus"]) == ("internal.app", "web", "UNHEALTHY")
    assert one["Attributes"]["AWS_INSTANCE_IPV4"] == "10.0.0.3"

    sd.update_instance_custom_health_status(ServiceId=web, InstanceId="t1", Status="UNHEALTHY")
    sd.update_instance_custom_health_status(ServiceId=web, InstanceId="t2", Status="UNHEALTHY")
    assert found()[0] == []
    assert found(HealthStatus="HEALTHY_OR_ELSE_ALL")[0] == ["t1", "t2", "t3"]
    assert found()[1] == revision, "health does not move the revision"
    rev = sd.discover_instances_revision(NamespaceName="internal.app", ServiceName="web")["InstancesRevision"]
    assert rev == revision
    finished(sd, sd.deregister_instance(ServiceId=web, InstanceId="t3"))
    assert sd.discover_instances_revision(NamespaceName="internal.app", ServiceName="web")["InstancesRevision"] > rev
    with expect_error("InstanceNotFound"):
        sd.deregister_instance(ServiceId=web, InstanceId="t3")
    with expect_error("InstanceNotFound"):
        sd.update_instance_custom_health_status(ServiceId=web, InstanceId="t3", Status="HEALTHY")

    # A service without a health check: health is UNKNOWN, cannot be set, and every instance is found.
    finished(sd, sd.register_instance(ServiceId=plain, InstanceId="p1", Attributes={"role": "batch"}))
    with expect_error("CustomHealthNotFound"):
        sd.update_instance_custom_health_status(ServiceId=plain, InstanceId="p1", Status="HEALTHY")
    assert sd.get_instances_health_status(ServiceId=plain)["Status"] == {"p1": "UNKNOWN"}
    out = sd.discover_instances(NamespaceName="internal.app", ServiceName="plain", HealthStatus="UNHEALTHY")
    assert [(i["InstanceId"], i["HealthStatus"]) for i in out["Instances"]] == [("p1", "UNKNOWN")]

    for kw, code in [(dict(NamespaceName="nope.app", ServiceName="web"), "NamespaceNotFound"),
                     (dict(NamespaceName="internal.app", ServiceName="nope"), "ServiceNotFound"),
                     (dict(NamespaceName="internal.app", ServiceName="web", OwnerAccount="111111111111"), "NamespaceNotFound")]:
        with expect_error(code):
            sd.discover_instances(**kw)
        with expect_error(code):
            sd.discover_instances_revision(**kw)

    # Registering an id again replaces its attributes; a CreatorRequestId replays or is a duplicate.
    first = sd.register_instance(ServiceId=web, InstanceId="t1", CreatorRequestId="r-1",
                                 Attributes={"AWS_INSTANCE_IPV4": "10.0.0.11", "AWS_INSTANCE_PORT": "8080"})
    same = sd.register_instance(ServiceId=web, InstanceId="t1", CreatorRequestId="r-1",
                                Attributes={"AWS_INSTANCE_IPV4": "10.0.0.11", "AWS_INSTANCE_PORT": "8080"})
    assert same["OperationId"] == first["OperationId"]
    with expect_error("DuplicateRequest"):
        sd.register_instance(ServiceId=web, InstanceId="t4", CreatorRequestId="r-1",
                             Attributes={"AWS_INSTANCE_IPV4": "10.0.0.4", "AWS_INSTANCE_PORT": "8080"})
    attrs = sd.get_instance(ServiceId=web, InstanceId="t1")["Instance"]["Attributes"]
    assert attrs == {"AWS_INSTANCE_IPV4": "10.0.0.11", "AWS_INSTANCE_PORT": "8080"}


def test_operations_and_tags(sd, sd_berth):
    ns = private_namespace(sd, sd_berth)
    web = service(sd, ns, "web")
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    for i in range(3):
        register(sd, web, f"t{i}", AWS_INSTANCE_IPV4=f"10.0.0.{i + 1}")
    finished(sd, sd.deregister_instance(ServiceId=web, InstanceId="t0"))

    def ops(*filters):
        return [o["Id"] for page in sd.get_paginator("list_operations").paginate(Filters=list(filters)) for o in page["Operations"]]
    everything = ops()
    assert len(everything) == 5
    assert len(ops({"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]})) == 3
    assert len(ops({"Name": "TYPE", "Values": ["REGISTER_INSTANCE", "DEREGISTER_INSTANCE"], "Condition": "IN"})) == 4
    assert len(ops({"Name": "SERVICE_ID", "Values": [web]})) == 4
    assert len(ops({"Name": "NAMESPACE_ID", "Values": [ns]})) == 5
    assert ops({"Name": "STATUS", "Values": ["PENDING", "FAIL"], "Condition": "IN"}) == []
    window = [str(start.timestamp()), str(time.time() + 60)]
    assert len(ops({"Name": "UPDATE_DATE", "Values": window, "Condition": "BETWEEN"})) == 5
    past = [(start - timedelta(days=2)).isoformat(), (start - timedelta(days=1)).isoformat()]
    assert ops({"Name": "UPDATE_DATE", "Values": past, "Condition": "BETWEEN"}) == []
    pages = list(sd.get_paginator("list_operations").paginate(PaginationConfig={"PageSize": 2}))
    assert [o["Id"] for p in pages for o in p["Operations"]] == everything
    for f in [{"Name": "UPDATE_DATE", "Values": window}, {"Name": "UPDATE_DATE", "Values": ["soon", "later"], "Condition": "BETWEEN"},
              {"Name": "SERVICE_ID", "Values": [web, web], "Condition": "IN"}]:
        with expect_error("InvalidInput"):
            sd.list_operations(Filters=[f])
    with expect_error("OperationNotFound"):
        sd.get_operation(OperationId="nope")

    arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    svc_arn = sd.get_service(Id=web)["Service"]["Arn"]
    sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "dev"}])
    sd.tag_resource(ResourceARN=svc_arn, Tags=[{"Key": "tier", "Value": "web"}])
    sd.untag_resource(ResourceARN=arn, TagKeys=["team", "absent"])
    assert sd.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert sd.list_tags_for_resource(ResourceARN=svc_arn)["Tags"] == [{"Key": "tier", "Value": "web"}]
    missing = "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-0000000000000000"
    for call in [lambda: sd.tag_resource(ResourceARN=missing, Tags=[{"Key": "a", "Value": "b"}]),
                 lambda: sd.untag_resource(ResourceARN=missing, TagKeys=["a"]),
                 lambda: sd.list_tags_for_resource(ResourceARN=missing)]:
        with expect_error("ResourceNotFoundException"):
            call()
    with expect_error("TooManyTagsException"):
        sd.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with expect_error("InvalidInput"):
        sd.tag_resource(ResourceARN=arn, Tags=[{"Key": "aws:x", "Value": "v"}])
    assert sd.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "dev"}], "nothing changed"


def test_the_dns_server_answers_what_is_registered_and_forwards_the_rest(sd, sd_berth, upstream):
    server = sd_berth.dns
    assert server and server[0] == "127.0.0.1", sd_berth.output
    ns = private_namespace(sd, sd_berth)
    web = service(sd, ns, "web", records=(("A", 10), ("SRV", 20)))
    api = service(sd, ns, "api", routing="WEIGHTED")
    db = service(sd, ns, "db", records=(("CNAME", 30),), routing="WEIGHTED", custom_health=False)

    # Time from a registration to the name resolving.
    started = time.monotonic()
    register(sd, web, "t1", AWS_INSTANCE_IPV4="10.1.0.1", AWS_INSTANCE_PORT="8080")
    while addresses(ask(server, "web.internal.app")) != ["10.1.0.1"]:
        assert time.monotonic() - started < 1, "a registered instance resolves within a second"
        time.sleep(0.01)
    for i in range(2, 11):
        register(sd, web, f"t{i}", AWS_INSTANCE_IPV4=f"10.1.0.{i}", AWS_INSTANCE_PORT="8080")
    wanted = sorted(f"10.1.0.{i}" for i in range(1, 11))
    deadline = time.time() + 5
    while len(addresses(ask(server, "web.internal.app", tcp=True))) < 10 and time.time() < deadline:
        time.sleep(0.05)

    # MULTIVALUE: eight at random over UDP, every healthy one over TCP.
    udp = ask(server, "web.internal.app")
    assert udp.rcode() == dns.rcode.NOERROR and len(addresses(udp)) == 8 and set(addresses(udp)) <= set(wanted)
    assert udp.answer[0].ttl == 10 and "aa" in dns.flags.to_text(udp.flags).lower()
    assert addresses(ask(server, "web.internal.app", tcp=True)) == wanted
    srv = addresses(ask(server, "web.internal.app", "SRV", tcp=True), "SRV")
    assert len(srv) == 10 and "1 1 8080 t3.web.internal.app." in srv
    assert addresses(ask(server, "t3.web.internal.app")) == ["10.1.0.3"]

    # An unhealthy instance leaves the answers; when none is healthy, they all come back.
    sd.update_instance_custom_health_status(ServiceId=web, InstanceId="t1", Status="UNHEALTHY")
    time.sleep(0.3)
    assert "10.1.0.1" not in addresses(ask(server, "web.internal.app", tcp=True))
    register(sd, api, "a1", AWS_INSTANCE_IPV4="10.2.0.1", AWS_INIT_HEALTH_STATUS="UNHEALTHY")
    register(sd, api, "a2", AWS_INSTANCE_IPV4="10.2.0.2", AWS_INIT_HEALTH_STATUS="UNHEALTHY")
    time.sleep(0.3)
    assert len(addresses(ask(server, "api.internal.app", tcp=True))) == 1, "WEIGHTED answers one record"
    seen = {tuple(addresses(ask(server, "api.internal.app"))) for _ in range(30)}
    assert seen == {("10.2.0.1",), ("10.2.0.2",)}, "all unhealthy: any of them (fail open)"
    sd.update_instance_custom_health_status(ServiceId=api, InstanceId="a2", Status="HEALTHY")
    time.sleep(0.3)
    assert {tuple(addresses(ask(server, "api.internal.app"))) for _ in range(10)} == {("10.2.0.2",)}

    # Negative answers carry the zone's SOA; the apex has SOA and NS.
    nx = ask(server, "nope.internal.app")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.authority[0].rdtype == dns.rdatatype.SOA and nx.authority[0].ttl == 15
    nodata = ask(server, "web.internal.app", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    assert addresses(ask(server, "internal.app", "NS"), "NS") == ["ns1.berth."]
    assert addresses(ask(server, "internal.app", "SOA"), "SOA")[0].startswith("ns1.berth. hostmaster.berth.")

    # A CNAME to a name outside, followed through the upstream; names outside are forwarded.
    register(sd, db, "d1", AWS_INSTANCE_CNAME="outside.test")
    time.sleep(0.3)
    cname = ask(server, "db.internal.app")
    assert addresses(cname, "CNAME") == ["outside.test."] and addresses(cname) == ["192.0.2.10"]
    forwarded = ask(server, "outside.test")
    assert addresses(forwarded) == ["192.0.2.10"] and "aa" not in dns.flags.to_text(forwarded.flags).lower()
    assert ask(server, "missing.test").rcode() == dns.rcode.NXDOMAIN
    assert "missing.test." in upstream.queries, "the upstream was asked"

    # Deregistered: gone from the answers; the namespace deleted: the zone is gone (forwarded).
    for i in range(1, 11):
        finished(sd, sd.deregister_instance(ServiceId=web, InstanceId=f"t{i}"))
    time.sleep(0.3)
    empty = ask(server, "web.internal.app")
    assert empty.rcode() == dns.rcode.NOERROR and not empty.answer
    for s, ids in [(web, []), (api, ["a1", "a2"]), (db, ["d1"])]:
        for i in ids:
            sd.deregister_instance(ServiceId=s, InstanceId=i)
        sd.delete_service(Id=s)
    finished(sd, sd.delete_namespace(Id=ns))
    time.sleep(0.3)
    assert ask(server, "web.internal.app").rcode() == dns.rcode.NXDOMAIN
    assert "web.internal.app." in upstream.queries, "no zone left: forwarded"


def test_list_services_by_namespace_finds_ecs_services_through_their_registries(sd_berth, sd):
    """ECS services of any cluster whose `serviceRegistries` name a Cloud Map service of the
    namespace, by its name or ARN, paged as ListServices pages."""
    ecs = sd_berth.client()
    ns = private_namespace(sd, sd_berth)
    ns_arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    other = private_namespace(sd, sd_berth, name="other.app")
    backend = sd.get_service(Id=service(sd, ns, "backend", records=(("SRV", 10),)))["Service"]["Arn"]
    elsewhere = sd.get_service(Id=service(sd, other, "elsewhere", records=(("SRV", 10),)))["Service"]["Arn"]
    ecs.register_task_definition(family="web", networkMode="bridge", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}]}])
    ecs.create_cluster(clusterName="second")
    made = []
    for cluster, name, registry in [("default", "a", backend), ("second", "b", backend), ("default", "c", elsewhere),
                                    ("default", "plain", None)]:
        args = {"cluster": cluster, "serviceName": name, "taskDefinition": "web", "desiredCount": 0}
        if registry:
            args["serviceRegistries"] = [{"registryArn": registry, "containerName": "web", "containerPort": 80}]
        made.append(ecs.create_service(**args)["service"]["serviceArn"])

    for given in ("internal.app", ns_arn):
        assert sorted(ecs.list_services_by_namespace(namespace=given)["serviceArns"]) == sorted(made[:2]), given
    assert ecs.list_services_by_namespace(namespace="other.app")["serviceArns"] == [made[2]]
    first = ecs.list_services_by_namespace(namespace="internal.app", maxResults=1)
    second = ecs.list_services_by_namespace(namespace="internal.app", maxResults=1, nextToken=first["nextToken"])
    assert len(first["serviceArns"]) == 1 and "nextToken" not in second
    assert sorted(first["serviceArns"] + second["serviceArns"]) == sorted(made[:2])

    # A service whose registry moves to another namespace leaves the list.
    ecs.update_service(cluster="second", service="b", serviceRegistries=[
        {"registryArn": elsewhere, "containerName": "web", "containerPort": 80}])
    assert ecs.list_services_by_namespace(namespace="internal.app")["serviceArns"] == [made[0]]
    with expect_error("NamespaceNotFoundException", message_contains="nowhere.app"):
        ecs.list_services_by_namespace(namespace="nowhere.app")
    with expect_error("InvalidParameterException", message_contains="maxResults"):
        ecs.list_services_by_namespace(namespace="internal.app", maxResults=101)


def test_load_balancer_names_resolve_to_the_listener_address(sd_berth, upstream):
    """A load balancer's DNSName answers the address Berth serves its listeners on (127.0.0.1
    here, `--lb-address` elsewhere) from the moment it is made, and no longer once deleted."""
    server = sd_berth.dns
    elb, ec2 = sd_berth.client("elbv2"), sd_berth.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    lb = elb.create_load_balancer(Name="front", Subnets=subnets, Type="application")["LoadBalancers"][0]
    name = lb["DNSName"]
    until(lambda: addresses(ask(server, name)) == ["127.0.0.1"], timeout=5, what="the load balancer's name")
    # Asked before the DNS server saw the new load balancer, the name went upstream; now it does not.
    upstream.queries.clear()
    assert addresses(ask(server, name)) == ["127.0.0.1"]
    assert f"{name}." not in upstream.queries, "answered by Berth, not forwarded"
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    until(lambda: addresses(ask(server, name)) == [], timeout=5, what="the name gone with the load balancer")
