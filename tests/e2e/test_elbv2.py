"""The ELBv2 API end to end (no containers, no data plane): load balancers, target groups,
listeners, rules, targets and tags through boto3 and the AWS CLI, with ELB's defaults, shapes
and error codes, the target health states a control plane alone produces, and bad input
refused with nothing changed."""

import json
import subprocess

import boto3
import pytest
from botocore.config import Config

from conftest import REGION
from ecs_helpers import expect_error, register_instance, until

ACCOUNT = "000000000000"
GHOST_LB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/ghost/0123456789abcdef"
GHOST_TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/ghost/0123456789abcdef"


def elb_client(berth, validate=True):
    """boto3's ELBv2 client; `validate=False` leaves the checking to the server."""
    return boto3.client(
        "elbv2",
        endpoint_url=berth.endpoint,
        region_name=REGION,
        aws_access_key_id=berth.access_key,
        aws_secret_access_key=berth.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate),
    )


@pytest.fixture
def elb(berth):
    return elb_client(berth)


@pytest.fixture
def net(berth):
    """The default VPC and its subnet (the local zone's)."""
    ec2 = berth.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    vpc = subnet["VpcId"]
    group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    return {"vpc": vpc, "subnet": subnet["SubnetId"], "group": group["GroupId"], "ec2": ec2}


def cli_text(berth, *args):
    p = subprocess.run(["aws", *args], env=berth.env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"aws {' '.join(args)} failed: {p.stderr}"
    return p.stdout.strip()


def strip(out):
    return {k: v for k, v in out.items() if k != "ResponseMetadata"}


def snapshot(elb):
    """Everything the API shows, to compare before and after a refused request."""
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    tgs = elb.describe_target_groups()["TargetGroups"]
    out = {"lbs": lbs, "tgs": tgs, "listeners": [], "rules": [], "lb_attrs": [], "tg_attrs": [], "health": []}
    for lb in lbs:
        out["lb_attrs"].append(strip(elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])))
        for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            out["listeners"].append(listener)
            out["rules"].append(elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"])
    for tg in tgs:
        out["tg_attrs"].append(strip(elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])))
        out["health"].append(strip(elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])))
    return out


def make_lb(elb, net, name="web", **kw):
    return elb.create_load_balancer(Name=name, Subnets=[net["subnet"]], **kw)["LoadBalancers"][0]


def make_tg(elb, net, name="web", protocol="HTTP", **kw):
    args = dict(Name=name, Protocol=protocol, Port=80, VpcId=net["vpc"], TargetType="ip")
    args.update(kw)
    return elb.create_target_group(**args)["TargetGroups"][0]


def forward(tg_arn):
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def make_listener(elb, lb, tg, port=8080, protocol="HTTP"):
    return elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=port,
                               DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]


def health(elb, tg, **kw):
    out = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"], **kw)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"] for d in out}


def test_the_issue_commands_through_the_cli(berth, elb, net):
    """The commands of issue 12 as a user types them: a load balancer, a target group with a
    health check path, a listener forwarding to it; then what the API shows of them."""
    lb_arn = cli_text(berth, "elbv2", "create-load-balancer", "--name", "web", "--type", "application",
                      "--subnets", net["subnet"], "--query", "LoadBalancers[0].LoadBalancerArn", "--output", "text")
    tg_arn = cli_text(berth, "elbv2", "create-target-group", "--name", "web", "--protocol", "HTTP", "--port", "80",
                      "--target-type", "ip", "--vpc-id", net["vpc"], "--health-check-path", "/health",
                      "--query", "TargetGroups[0].TargetGroupArn", "--output", "text")
    listener = berth.cli("elbv2", "create-listener", "--load-balancer-arn", lb_arn, "--protocol", "HTTP", "--port", "8080",
                         "--default-actions", f"Type=forward,TargetGroupArn={tg_arn}")["Listeners"][0]
    assert lb_arn.startswith(f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/web/")
    assert tg_arn.startswith(f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/web/")
    assert (listener["Port"], listener["Protocol"], listener["LoadBalancerArn"]) == (8080, "HTTP", lb_arn)
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg_arn

    lb = elb.describe_load_balancers(Names=["web"])["LoadBalancers"][0]
    lb_id = lb_arn.rsplit("/", 1)[1]
    assert lb["DNSName"] == f"web-{lb_id}.{REGION}.elb.localhost"
    assert (lb["Scheme"], lb["Type"], lb["State"], lb["IpAddressType"]) == ("internet-facing", "application", {"Code": "active"}, "ipv4")
    assert lb["VpcId"] == net["vpc"] and lb["SecurityGroups"] == [net["group"]]
    assert lb["AvailabilityZones"] == [{"ZoneName": "us-east-1a", "SubnetId": net["subnet"], "LoadBalancerAddresses": []}]
    assert lb["CanonicalHostedZoneId"].startswith("Z") and lb["CreatedTime"].year >= 2024
    tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    assert tg["LoadBalancerArns"] == [lb_arn]
    assert (tg["HealthCheckPath"], tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["Matcher"]) == ("/health", "HTTP", "traffic-port", {"HttpCode": "200"})
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"], tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (30, 5, 5, 2)
    assert (tg["TargetType"], tg["ProtocolVersion"], tg["IpAddressType"], tg["HealthCheckEnabled"]) == ("ip", "HTTP1", "ipv4", True)
    # Describing with the CLI agrees, and a name that does not exist is ELB's error.
    assert berth.cli("elbv2", "describe-listeners", "--load-balancer-arn", lb_arn)["Listeners"][0]["ListenerArn"] == listener["ListenerArn"]
    p = berth.cli("elbv2", "describe-target-groups", "--names", "nope", check=False)
    assert p.returncode != 0 and "TargetGroupNotFound" in p.stderr, p.stderr


def test_load_balancers_and_their_bad_inputs(berth, elb, net):
    loose = elb_client(berth, validate=False)
    lb = make_lb(elb, net, Tags=[{"Key": "team", "Value": "web"}])
    nlb = make_lb(elb, net, name="tcp", Type="network", Scheme="internal")
    assert nlb["DNSName"].startswith("internal-tcp-") and "SecurityGroups" not in nlb
    # The same request again answers the same load balancer; other settings are a duplicate.
    assert make_lb(elb, net, Tags=[{"Key": "team", "Value": "web"}])["LoadBalancerArn"] == lb["LoadBalancerArn"]
    before = snapshot(elb)
    bad = [
        ("DuplicateLoadBalancerName", dict(Name="web", Subnets=[net["subnet"]], Scheme="internal")),
        ("ValidationError", dict(Name="web_1", Subnets=[net["subnet"]])),
        ("ValidationError", dict(Name="-web", Subnets=[net["subnet"]])),
        ("ValidationError", dict(Name="a" * 33, Subnets=[net["subnet"]])),
        ("ValidationError", dict(Name="internal-web", Subnets=[net["subnet"]])),
        ("ValidationError", dict(Name="gw", Subnets=[net["subnet"]], Type="gateway")),
        ("ValidationError", dict(Name="ds", Subnets=[net["subnet"]], IpAddressType="dualstack")),
        ("ValidationError", dict(Name="none")),
        ("SubnetNotFound", dict(Name="x", Subnets=["subnet-0123456789abcdef0"])),
        ("ValidationError", dict(Name="x", Subnets=[net["subnet"]], SubnetMappings=[{"SubnetId": net["subnet"]}])),
        ("ValidationError", dict(Name="x", SubnetMappings=[{"SubnetId": net["subnet"], "PrivateIPv4Address": "172.31.0.9"}])),
        ("InvalidSecurityGroup", dict(Name="x", Subnets=[net["subnet"]], SecurityGroups=["sg-0123456789abcdef0"])),
        ("InvalidConfigurationRequest", dict(Name="x", Subnets=[net["subnet"], net["subnet"]])),
        ("DuplicateTagKeys", dict(Name="x", Subnets=[net["subnet"]], Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])),
        ("ValidationError", dict(Name="x", Subnets=[net["subnet"]], CustomerOwnedIpv4Pool="ipv4pool-coip-1")),
    ]
    for code, args in bad:
        with expect_error(code):
            loose.create_load_balancer(**args)
    with expect_error("ValidationError", message_contains="Value 'classic' at 'type'"):
        loose.create_load_balancer(Name="x", Subnets=[net["subnet"]], Type="classic")
    assert snapshot(elb) == before

    # Describing: by names, ARNs, pages.
    with expect_error("LoadBalancerNotFound", message_prefix="Load balancers '[nope]' not found"):
        elb.describe_load_balancers(Names=["web", "nope"])
    with expect_error("LoadBalancerNotFound"):
        elb.describe_load_balancers(LoadBalancerArns=[GHOST_LB])
    with expect_error("ValidationError", message_contains="not a valid load balancer ARN"):
        elb.describe_load_balancers(LoadBalancerArns=["web"])
    with expect_error("ValidationError"):
        elb.describe_load_balancers(Names=["web"], LoadBalancerArns=[lb["LoadBalancerArn"]])
    page = elb.describe_load_balancers(PageSize=1)
    assert [x["LoadBalancerName"] for x in page["LoadBalancers"]] == ["tcp"]
    rest = elb.describe_load_balancers(PageSize=1, Marker=page["NextMarker"])
    assert [x["LoadBalancerName"] for x in rest["LoadBalancers"]] == ["web"] and "NextMarker" not in rest
    with expect_error("ValidationError"):
        elb.describe_load_balancers(Marker="not-a-marker")
    paginated = [x["LoadBalancerName"] for p in elb.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 1}) for x in p["LoadBalancers"]]
    assert paginated == ["tcp", "web"]

    # Attributes: ELB's defaults per type, ranges, what Berth cannot honour.
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60" and attrs["deletion_protection.enabled"] == "false"
    assert attrs["routing.http2.enabled"] == "true" and attrs["access_logs.s3.enabled"] == "false"
    nattrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=nlb["LoadBalancerArn"])["Attributes"]}
    assert nattrs["load_balancing.cross_zone.enabled"] == "false" and "idle_timeout.timeout_seconds" not in nattrs
    changed = elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "120"}, {"Key": "routing.http2.enabled", "Value": "false"}])["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "120"} in changed
    before = snapshot(elb)
    for key, value, message in [("idle_timeout.timeout_seconds", "4001", "an integer from 1 to 4000"),
                                ("idle_timeout.timeout_seconds", "0", "an integer from 1 to 4000"),
                                ("deletion_protection.enabled", "maybe", "'true' or 'false'"),
                                ("bogus.key", "1", "is not recognized"),
                                ("access_logs.s3.enabled", "true", "Berth does not support"),
                                ("load_balancing.cross_zone.enabled", "false", "must be one of [true]")]:
        with expect_error("ValidationError", message_contains=message):
            elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": key, "Value": value}])
    with expect_error("ValidationError", message_contains="is not recognized"):
        elb.modify_load_balancer_attributes(LoadBalancerArn=nlb["LoadBalancerArn"], Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "5"}])
    with expect_error("LoadBalancerNotFound"):
        elb.describe_load_balancer_attributes(LoadBalancerArn=GHOST_LB)
    assert snapshot(elb) == before

    # Subnets, security groups, IP address type, capacity.
    out = elb.set_subnets(LoadBalancerArn=lb["LoadBalancerArn"], Subnets=[net["subnet"]])
    assert out["AvailabilityZones"][0]["SubnetId"] == net["subnet"] and out["IpAddressType"] == "ipv4"
    group = net["ec2"].create_security_group(GroupName="lb", Description="lb", VpcId=net["vpc"])["GroupId"]
    assert elb.set_security_groups(LoadBalancerArn=lb["LoadBalancerArn"], SecurityGroups=[group])["SecurityGroupIds"] == [group]
    with expect_error("InvalidConfigurationRequest"):
        elb.set_security_groups(LoadBalancerArn=nlb["LoadBalancerArn"], SecurityGroups=[group])
    with expect_error("InvalidSecurityGroup"):
        elb.set_security_groups(LoadBalancerArn=lb["LoadBalancerArn"], SecurityGroups=["sg-0123456789abcdef0"])
    assert elb.set_ip_address_type(LoadBalancerArn=lb["LoadBalancerArn"], IpAddressType="ipv4")["IpAddressType"] == "ipv4"
    with expect_error("ValidationError", message_contains="IPv4"):
        elb.set_ip_address_type(LoadBalancerArn=lb["LoadBalancerArn"], IpAddressType="dualstack")
    assert elb.describe_capacity_reservation(LoadBalancerArn=lb["LoadBalancerArn"])["CapacityReservationState"] == []
    with expect_error("LoadBalancerNotFound"):
        elb.describe_capacity_reservation(LoadBalancerArn=GHOST_LB)

    # Deletion protection, then deletion (twice: the second finds nothing to delete).
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    with expect_error("OperationNotPermitted"):
        elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert [x["LoadBalancerName"] for x in elb.describe_load_balancers()["LoadBalancers"]] == ["tcp"]
    with expect_error("ValidationError"):
        elb.delete_load_balancer(LoadBalancerArn="web")


def test_target_groups_with_elbs_defaults_and_limits(berth, elb, net):
    loose = elb_client(berth, validate=False)
    tg = make_tg(elb, net)
    tcp = make_tg(elb, net, name="tcp", protocol="TCP", TargetType="instance")
    assert (tcp["HealthCheckProtocol"], tcp["HealthCheckTimeoutSeconds"], tcp["HealthCheckIntervalSeconds"]) == ("TCP", 10, 30)
    assert "HealthCheckPath" not in tcp and "Matcher" not in tcp and "ProtocolVersion" not in tcp
    http_checked = make_tg(elb, net, name="tcp-http", protocol="TCP", HealthCheckProtocol="HTTP")
    assert (http_checked["HealthCheckTimeoutSeconds"], http_checked["Matcher"], http_checked["HealthCheckPath"]) == (6, {"HttpCode": "200-399"}, "/")
    assert make_tg(elb, net)["TargetGroupArn"] == tg["TargetGroupArn"], "the same settings again"
    before = snapshot(elb)
    base = dict(Name="x", Protocol="HTTP", Port=80, VpcId=net["vpc"], TargetType="ip")
    bad = [
        ("DuplicateTargetGroupName", dict(base, Name="web", Port=81)),
        ("ValidationError", dict(base, Name="tf_tg")),
        ("ValidationError", dict(base, Protocol="HTTPS")),
        ("ValidationError", dict(base, Protocol="UDP")),
        ("ValidationError", dict(base, Protocol="GENEVE")),
        ("ValidationError", dict(base, TargetType="lambda")),
        ("ValidationError", dict(base, TargetType="alb")),
        ("ValidationError", dict(base, IpAddressType="ipv6")),
        ("ValidationError", dict(base, ProtocolVersion="HTTP2")),
        ("ValidationError", dict(base, VpcId="vpc-0123456789abcdef0")),
        ("ValidationError", dict({k: v for k, v in base.items() if k != "Port"})),
        ("ValidationError", dict({k: v for k, v in base.items() if k != "VpcId"})),
        ("ValidationError", dict(base, HealthCheckEnabled=False)),
        ("ValidationError", dict(base, HealthCheckProtocol="TCP")),
        ("ValidationError", dict(base, HealthCheckPort="web")),
        ("ValidationError", dict(base, HealthCheckPath="health")),
        ("ValidationError", dict(base, Matcher={"HttpCode": "600"})),
        ("ValidationError", dict(base, Matcher={"GrpcCode": "12"})),
        ("ValidationError", dict(base, HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=5)),
        ("ValidationError", dict(base, HealthCheckIntervalSeconds=4)),
        ("ValidationError", dict(base, HealthyThresholdCount=11)),
        ("ValidationError", dict(base, Protocol="TCP", HealthCheckPath="/")),
        ("ValidationError", dict(base, TargetControlPort=8080)),
    ]
    for code, args in bad:
        with expect_error(code):
            loose.create_target_group(**args)
    assert snapshot(elb) == before

    # Health check changes keep ELB's rules.
    out = elb.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/ready", HealthCheckIntervalSeconds=10,
                                  Matcher={"HttpCode": "200-299"}, HealthCheckPort="8081")["TargetGroups"][0]
    assert (out["HealthCheckPath"], out["HealthCheckIntervalSeconds"], out["Matcher"], out["HealthCheckPort"]) == ("/ready", 10, {"HttpCode": "200-299"}, "8081")
    with expect_error("ValidationError", message_contains="smaller than the interval"):
        elb.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckTimeoutSeconds=10)
    with expect_error("TargetGroupNotFound"):
        elb.modify_target_group(TargetGroupArn=GHOST_TG, HealthCheckPath="/")

    # Attributes: every key ELB shows, with its default; ranges; what Berth cannot honour.
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    expected = {"deregistration_delay.timeout_seconds": "300", "load_balancing.algorithm.type": "round_robin",
                "slow_start.duration_seconds": "0", "stickiness.enabled": "false", "stickiness.type": "lb_cookie",
                "stickiness.lb_cookie.duration_seconds": "86400", "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
                "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "1"}
    assert expected.items() <= attrs.items(), attrs
    tattrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tcp["TargetGroupArn"])["Attributes"]}
    assert tattrs["stickiness.type"] == "source_ip" and "slow_start.duration_seconds" not in tattrs
    changes = [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}, {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"},
               {"Key": "stickiness.enabled", "Value": "true"}, {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "600"}]
    out = {a["Key"]: a["Value"] for a in elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=changes)["Attributes"]}
    assert out["deregistration_delay.timeout_seconds"] == "30" and out["stickiness.lb_cookie.duration_seconds"] == "600"
    before = snapshot(elb)
    for key, value, code in [("deregistration_delay.timeout_seconds", "3601", "ValidationError"),
                             ("slow_start.duration_seconds", "10", "ValidationError"),
                             ("slow_start.duration_seconds", "60", "InvalidConfigurationRequest"),
                             ("load_balancing.algorithm.type", "weighted_random", "ValidationError"),
                             ("stickiness.type", "app_cookie", "ValidationError"),
                             ("stickiness.type", "source_ip", "ValidationError"),
                             ("nope", "1", "ValidationError")]:
        with expect_error(code):
            elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[{"Key": key, "Value": value}])
    with expect_error("ValidationError", message_contains="Berth does not support"):
        elb.modify_target_group_attributes(TargetGroupArn=tcp["TargetGroupArn"], Attributes=[{"Key": "proxy_protocol_v2.enabled", "Value": "true"}])
    assert snapshot(elb) == before

    # Describing by names, ARNs, load balancer; deleting.
    with expect_error("TargetGroupNotFound", message_prefix="Target groups '[nope]' not found"):
        elb.describe_target_groups(Names=["nope"])
    with expect_error("TargetGroupNotFound"):
        elb.describe_target_groups(TargetGroupArns=[GHOST_TG])
    with expect_error("ValidationError"):
        elb.describe_target_groups(Names=["web"], TargetGroupArns=[tg["TargetGroupArn"]])
    with expect_error("LoadBalancerNotFound"):
        elb.describe_target_groups(LoadBalancerArn=GHOST_LB)
    assert [t["TargetGroupName"] for t in elb.describe_target_groups(Names=["tcp", "web"])["TargetGroups"]] == ["tcp", "web"]
    elb.delete_target_group(TargetGroupArn=http_checked["TargetGroupArn"])
    elb.delete_target_group(TargetGroupArn=http_checked["TargetGroupArn"])
    assert len(elb.describe_target_groups()["TargetGroups"]) == 2


def test_listeners_share_the_listener_address(berth, elb, net):
    loose = elb_client(berth, validate=False)
    a, b = make_lb(elb, net, name="a"), make_lb(elb, net, name="b")
    nlb = make_lb(elb, net, name="n", Type="network")
    ta, tb = make_tg(elb, net, name="ta"), make_tg(elb, net, name="tb")
    tcp = make_tg(elb, net, name="tcp", protocol="TCP")
    listener = make_listener(elb, a, ta)
    assert make_listener(elb, a, ta)["ListenerArn"] == listener["ListenerArn"], "the same listener again"
    before = snapshot(elb)
    with expect_error("DuplicateListener"):
        make_listener(elb, a, tb)
    with expect_error("InvalidConfigurationRequest", message_contains="every Berth load balancer listens on the same address"):
        make_listener(elb, b, tb)
    with expect_error("TargetGroupAssociationLimit"):
        make_listener(elb, b, ta, port=8081)
    with expect_error("IncompatibleProtocols"):
        make_listener(elb, b, tcp, port=8081)
    with expect_error("IncompatibleProtocols"):
        make_listener(elb, nlb, tb, port=8081, protocol="TCP")
    with expect_error("ValidationError", message_contains="must be one of"):
        make_listener(elb, b, tb, port=8081, protocol="TCP")
    with expect_error("ValidationError", message_contains="must be one of"):
        make_listener(elb, nlb, tcp, port=8081, protocol="HTTP")
    for protocol in ("HTTPS",):
        with expect_error("ValidationError", message_contains="Berth does not support"):
            make_listener(elb, b, tb, port=8443, protocol=protocol)
    with expect_error("ValidationError", message_contains="Berth does not support"):
        make_listener(elb, nlb, tcp, port=8443, protocol="TLS")
    with expect_error("ValidationError", message_contains="Certificates"):
        elb.create_listener(LoadBalancerArn=b["LoadBalancerArn"], Protocol="HTTP", Port=8082, DefaultActions=forward(tb["TargetGroupArn"]),
                            Certificates=[{"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/x"}])
    with expect_error("TargetGroupNotFound"):
        elb.create_listener(LoadBalancerArn=b["LoadBalancerArn"], Protocol="HTTP", Port=8082, DefaultActions=forward(GHOST_TG))
    with expect_error("LoadBalancerNotFound"):
        elb.create_listener(LoadBalancerArn=GHOST_LB, Protocol="HTTP", Port=8082, DefaultActions=forward(tb["TargetGroupArn"]))
    with expect_error("ValidationError"):
        loose.create_listener(LoadBalancerArn=b["LoadBalancerArn"], Protocol="HTTP", DefaultActions=forward(tb["TargetGroupArn"]))
    with expect_error("ValidationError"):
        loose.create_listener(LoadBalancerArn=b["LoadBalancerArn"], Protocol="HTTP", Port=70000, DefaultActions=forward(tb["TargetGroupArn"]))
    with expect_error("ValidationError", message_contains="authenticate-oidc"):
        elb.create_listener(LoadBalancerArn=b["LoadBalancerArn"], Protocol="HTTP", Port=8082, DefaultActions=[{
            "Type": "authenticate-oidc", "AuthenticateOidcConfig": {"Issuer": "i", "AuthorizationEndpoint": "a", "TokenEndpoint": "t",
                                                                    "UserInfoEndpoint": "u", "ClientId": "c"}}])
    assert snapshot(elb) == before

    # Other load balancers get other ports; a listener moves to a free port.
    nl = make_listener(elb, nlb, tcp, port=5432, protocol="TCP")
    assert nl["DefaultActions"][0]["TargetGroupArn"] == tcp["TargetGroupArn"]
    moved = elb.modify_listener(ListenerArn=listener["ListenerArn"], Port=9090, DefaultActions=forward(tb["TargetGroupArn"]))["Listeners"][0]
    assert (moved["Port"], moved["DefaultActions"][0]["TargetGroupArn"]) == (9090, tb["TargetGroupArn"])
    make_listener(elb, b, ta, port=8080)
    with expect_error("InvalidConfigurationRequest"):
        elb.modify_listener(ListenerArn=listener["ListenerArn"], Port=8080)
    with expect_error("ListenerNotFound"):
        elb.modify_listener(ListenerArn=listener["ListenerArn"].replace("/app/a/", "/app/zz/"), Port=1)
    listed = elb.describe_listeners(ListenerArns=[listener["ListenerArn"], nl["ListenerArn"]])["Listeners"]
    assert sorted(x["Port"] for x in listed) == [5432, 9090]
    with expect_error("ValidationError"):
        elb.describe_listeners()
    with expect_error("ValidationError"):
        elb.describe_listeners(LoadBalancerArn=a["LoadBalancerArn"], ListenerArns=[listener["ListenerArn"]])

    # Listener attributes: HTTP's and TCP's, with their rules.
    attrs = {x["Key"]: x["Value"] for x in elb.describe_listener_attributes(ListenerArn=nl["ListenerArn"])["Attributes"]}
    assert attrs == {"tcp.idle_timeout.seconds": "350"}
    out = elb.modify_listener_attributes(ListenerArn=nl["ListenerArn"], Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "600"}])
    assert out["Attributes"] == [{"Key": "tcp.idle_timeout.seconds", "Value": "600"}]
    with expect_error("ValidationError"):
        elb.modify_listener_attributes(ListenerArn=nl["ListenerArn"], Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "59"}])
    http_attrs = {x["Key"]: x["Value"] for x in elb.describe_listener_attributes(ListenerArn=listener["ListenerArn"])["Attributes"]}
    assert http_attrs["routing.http.response.server.enabled"] == "true"
    with expect_error("ValidationError", message_contains="Berth does not support"):
        elb.modify_listener_attributes(ListenerArn=listener["ListenerArn"], Attributes=[
            {"Key": "routing.http.response.x_frame_options.header_value", "Value": "DENY"}])
    assert elb.describe_listener_certificates(ListenerArn=listener["ListenerArn"])["Certificates"] == []
    with expect_error("ListenerNotFound"):
        elb.describe_listener_attributes(ListenerArn=listener["ListenerArn"].replace("/app/a/", "/app/zz/"))

    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    with expect_error("ListenerNotFound"):
        elb.delete_listener(ListenerArn=listener["ListenerArn"])
    # Its port is free again.
    make_listener(elb, b, tb, port=9090)


def test_rules_conditions_actions_and_priorities(berth, elb, net):
    loose = elb_client(berth, validate=False)
    lb = make_lb(elb, net)
    tg, other = make_tg(elb, net), make_tg(elb, net, name="other")
    listener = make_listener(elb, lb, tg)
    larn = listener["ListenerArn"]
    api = elb.create_rule(ListenerArn=larn, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                          Actions=forward(other["TargetGroupArn"]), Tags=[{"Key": "kind", "Value": "api"}])["Rules"][0]
    assert api["Conditions"] == [{"Field": "path-pattern", "Values": ["/api/*"], "PathPatternConfig": {"Values": ["/api/*"]}}]
    assert (api["Priority"], api["IsDefault"]) == ("10", False)
    weighted = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 90},
                                                                     {"TargetGroupArn": other["TargetGroupArn"], "Weight": 10}],
                                                    "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}
    every = [
        [{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.localhost", "*.example.com"]}}],
        [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["yes"]}}],
        [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}}],
        [{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}, {"Value": "beta"}]}}],
        [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "2001:db8::/32"]}}],
    ]
    made = []
    for i, conditions in enumerate(every):
        made.append(elb.create_rule(ListenerArn=larn, Priority=20 + i, Conditions=conditions, Actions=[weighted])["Rules"][0])
    assert made[0]["Conditions"][0]["Values"] == ["api.localhost", "*.example.com"]
    assert made[3]["Conditions"][0]["QueryStringConfig"]["Values"] == [{"Key": "v", "Value": "2"}, {"Value": "beta"}]
    action = made[0]["Actions"][0]
    assert "TargetGroupArn" not in action and action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 300}
    fixed = elb.create_rule(ListenerArn=larn, Priority=30, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/gone"]}}],
                            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "410", "ContentType": "text/plain", "MessageBody": "gone"}}])["Rules"][0]
    assert fixed["Actions"][0]["FixedResponseConfig"] == {"StatusCode": "410", "ContentType": "text/plain", "MessageBody": "gone"}
    redirect = elb.create_rule(ListenerArn=larn, Priority=31, Conditions=[{"Field": "path-pattern", "Values": ["/old/*"]}],
                               Actions=[{"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}}])["Rules"][0]
    assert redirect["Actions"][0]["RedirectConfig"] == {"Protocol": "#{protocol}", "Host": "#{host}", "Port": "#{port}",
                                                         "Path": "/new/#{path}", "Query": "#{query}", "StatusCode": "HTTP_301"}

    before = snapshot(elb)
    path = [{"Field": "path-pattern", "Values": ["/x"]}]
    bad_rules = [
        ("PriorityInUse", dict(Priority=10, Conditions=path, Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=0, Conditions=path, Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=50001, Conditions=path, Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "cookie", "Values": ["a"]}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "http-request-method", "Values": ["GET"]}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "path-pattern", "Values": ["/a"], "PathPatternConfig": {"Values": ["/a"]}}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "path-pattern", "Values": ["/a", "/b", "/c", "/d"]}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "path-pattern", "Values": ["/a"]}, {"Field": "path-pattern", "Values": ["/b"]}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/a$"]}}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "host-header", "Values": ["localhost"]}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=[{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.1/8"]}}], Actions=forward(tg["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}])),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": "image/png"}}])),
        ("InvalidLoadBalancerAction", dict(Priority=40, Conditions=path, Actions=[{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_302"}}])),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 1000}]}}])),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg["TargetGroupArn"]}],
                                                                                                            "TargetGroupStickinessConfig": {"Enabled": True}}}])),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=forward(tg["TargetGroupArn"]) + forward(other["TargetGroupArn"]))),
        ("ValidationError", dict(Priority=40, Conditions=path, Actions=forward(tg["TargetGroupArn"]), Transforms=[{"Type": "url-rewrite", "UrlRewriteConfig": {"Rewrites": [{"Regex": "a", "Replace": "b"}]}}])),
        ("TargetGroupNotFound", dict(Priority=40, Conditions=path, Actions=forward(GHOST_TG))),
        ("ListenerNotFound", dict(ListenerArn=larn.replace("/app/web/", "/app/zz/"), Priority=40, Conditions=path, Actions=forward(tg["TargetGroupArn"]))),
    ]
    for code, args in bad_rules:
        args = dict(args)
        args.setdefault("ListenerArn", larn)
        with expect_error(code):
            loose.create_rule(**args)
    assert snapshot(elb) == before

    # Describing: by listener (default last), by rule ARNs alone (the default rule too).
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "21", "22", "23", "24", "30", "31", "default"]
    default = rules[-1]
    assert default["IsDefault"] and default["Conditions"] == [] and default["Actions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    by_arn = elb.describe_rules(RuleArns=[default["RuleArn"], api["RuleArn"]])["Rules"]
    assert [r["RuleArn"] for r in by_arn] == [api["RuleArn"], default["RuleArn"]]
    paged = elb.describe_rules(ListenerArn=larn, PageSize=4)
    assert len(paged["Rules"]) == 4 and "NextMarker" in paged
    assert len(elb.describe_rules(ListenerArn=larn, Marker=paged["NextMarker"])["Rules"]) == 5
    # An ARN of the same shape no rule has: its last hex digit changed.
    missing = api["RuleArn"][:-1] + ("1" if api["RuleArn"].endswith("0") else "0")
    with expect_error("RuleNotFound"):
        elb.describe_rules(RuleArns=[missing])
    with expect_error("ValidationError"):
        elb.describe_rules()

    # Modifying a rule, the default rule's actions, priorities; deleting.
    out = elb.modify_rule(RuleArn=api["RuleArn"], Conditions=[{"Field": "path-pattern", "Values": ["/v2/*"]}])["Rules"][0]
    assert out["Conditions"][0]["Values"] == ["/v2/*"] and out["Actions"][0]["TargetGroupArn"] == other["TargetGroupArn"]
    with expect_error("ValidationError"):
        elb.modify_rule(RuleArn=api["RuleArn"])
    out = elb.modify_rule(RuleArn=default["RuleArn"], Actions=forward(other["TargetGroupArn"]))["Rules"][0]
    assert out["IsDefault"] and elb.describe_listeners(ListenerArns=[larn])["Listeners"][0]["DefaultActions"][0]["TargetGroupArn"] == other["TargetGroupArn"]
    with expect_error("OperationNotPermitted"):
        elb.modify_rule(RuleArn=default["RuleArn"], Conditions=path)
    swapped = elb.set_rule_priorities(RulePriorities=[{"RuleArn": api["RuleArn"], "Priority": 30}, {"RuleArn": fixed["RuleArn"], "Priority": 10}])["Rules"]
    assert {(r["RuleArn"], r["Priority"]) for r in swapped} == {(api["RuleArn"], "30"), (fixed["RuleArn"], "10")}
    before = snapshot(elb)
    with expect_error("PriorityInUse"):
        elb.set_rule_priorities(RulePriorities=[{"RuleArn": api["RuleArn"], "Priority": 31}])
    with expect_error("OperationNotPermitted"):
        elb.set_rule_priorities(RulePriorities=[{"RuleArn": default["RuleArn"], "Priority": 1}])
    with expect_error("OperationNotPermitted"):
        elb.delete_rule(RuleArn=default["RuleArn"])
    assert snapshot(elb) == before
    elb.delete_rule(RuleArn=api["RuleArn"])
    with expect_error("RuleNotFound"):
        elb.delete_rule(RuleArn=api["RuleArn"])
    # A group a rule forwards to is in use; a network load balancer's listener has no rules.
    with expect_error("ResourceInUse"):
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    nlb = make_lb(elb, net, name="n", Type="network")
    nl = make_listener(elb, nlb, make_tg(elb, net, name="tcp", protocol="TCP"), port=5432, protocol="TCP")
    with expect_error("ValidationError", message_contains="Network Load Balancers"):
        elb.create_rule(ListenerArn=nl["ListenerArn"], Priority=1, Conditions=path, Actions=forward(tg["TargetGroupArn"]))
    # Deleting the load balancer takes its listeners and rules along.
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    with expect_error("ListenerNotFound"):
        elb.describe_rules(ListenerArn=larn)
    with expect_error("RuleNotFound"):
        elb.describe_rules(RuleArns=[fixed["RuleArn"]])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


def test_targets_and_their_health_states(berth, elb, net):
    loose = elb_client(berth, validate=False)
    tg = make_tg(elb, net)
    before = snapshot(elb)
    with expect_error("InvalidTarget", message_contains="not within the CIDR block"):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "10.9.9.9"}])
    for bad in ({"Id": "web"}, {"Id": "2001:db8::1"}, {"Id": "172.31.0.10", "AvailabilityZone": "all"},
                {"Id": "172.31.0.10", "AvailabilityZone": "us-east-1b"}, {"Id": "172.31.0.10", "QuicServerId": "q"}):
        with expect_error("ValidationError"):
            loose.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[bad])
    with expect_error("ValidationError"):
        loose.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10", "Port": 0}])
    with expect_error("TargetGroupNotFound"):
        elb.register_targets(TargetGroupArn=GHOST_TG, Targets=[{"Id": "172.31.0.10"}])
    assert snapshot(elb) == before

    # A group no listener forwards to: its targets are unused, and leave at once.
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}, {"Id": "172.31.0.11", "Port": 8080}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    states = health(elb, tg)
    assert states[("172.31.0.10", 80)] == {"State": "unused", "Reason": "Target.NotInUse",
                                           "Description": "Target group is not configured to receive traffic from the load balancer"}
    assert set(states) == {("172.31.0.10", 80), ("172.31.0.11", 8080)}
    full = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.11", "Port": 8080}])["TargetHealthDescriptions"][0]
    assert full["Target"] == {"Id": "172.31.0.11", "Port": 8080, "AvailabilityZone": "us-east-1a"} and full["HealthCheckPort"] == "8080"
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.11", "Port": 8080}])
    assert health(elb, tg, Targets=[{"Id": "172.31.0.11", "Port": 8080}])[("172.31.0.11", 8080)] == {
        "State": "unused", "Reason": "Target.NotRegistered", "Description": "Target is not registered to the target group"}
    with expect_error("InvalidTarget"):
        elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.11", "Port": 8080}])

    # In use: initial (registration in progress until the data plane's first report, then its
    # initial health checks), then draining.
    make_listener(elb, make_lb(elb, net), tg)
    assert health(elb, tg)[("172.31.0.10", 80)] in (
        {"State": "initial", "Reason": "Elb.RegistrationInProgress", "Description": "Target registration is in progress"},
        {"State": "initial", "Reason": "Elb.InitialHealthChecking", "Description": "Initial health checks in progress"})
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    # Draining, or already gone: the load balancer ends a deregistration at once when nothing
    # is in flight, and its report may come before this call.
    assert health(elb, tg).get(("172.31.0.10", 80), "gone") in (
        "gone", {"State": "draining", "Reason": "Target.DeregistrationInProgress",
                 "Description": "Target deregistration is in progress"})
    # Registered again while draining: back to initial.
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    assert health(elb, tg)[("172.31.0.10", 80)]["State"] == "initial"
    # Housekeeping ends a deregistration once its delay has passed.
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    assert health(elb, tg).get(("172.31.0.10", 80), {}).get("State", "gone") in ("draining", "gone")
    until(lambda: health(elb, tg) == {}, timeout=20, what="the draining target to leave")
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    # With a deregistration delay of 0 a target leaves at once.
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    assert health(elb, tg) == {}


def test_instance_targets_name_container_instances(berth, elb, net):
    ecs = berth.client()
    register_instance(ecs, instanceIdentityDocument=json.dumps({"instanceId": "i-0123456789abcdef0"}))
    tg = make_tg(elb, net, name="inst", TargetType="instance")
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0", "Port": 32768}])
    assert health(elb, tg)[("i-0123456789abcdef0", 32768)]["Reason"] == "Target.NotInUse"
    with expect_error("InvalidTarget"):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0fffffffffffffff0"}])
    with expect_error("ValidationError"):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "172.31.0.10"}])
    with expect_error("ValidationError"):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0", "AvailabilityZone": "us-east-1a"}])


def test_tags_on_every_kind_of_resource(berth, elb, net):
    lb = make_lb(elb, net)
    tg = make_tg(elb, net)
    listener = make_listener(elb, lb, tg)
    rule = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/a"]}],
                           Actions=forward(tg["TargetGroupArn"]))["Rules"][0]
    default = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"][-1]
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"], listener["ListenerArn"], rule["RuleArn"], default["RuleArn"]]
    elb.add_tags(ResourceArns=arns, Tags=[{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "dev"}])
    elb.remove_tags(ResourceArns=arns[:2], TagKeys=["env", "absent"])
    described = {d["ResourceArn"]: d["Tags"] for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]}
    assert described[lb["LoadBalancerArn"]] == [{"Key": "team", "Value": "web"}]
    assert described[default["RuleArn"]] == [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "dev"}]
    before = snapshot(elb), elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
    with expect_error("LoadBalancerNotFound"):
        elb.add_tags(ResourceArns=[tg["TargetGroupArn"], GHOST_LB], Tags=[{"Key": "x", "Value": "1"}])
    with expect_error("DuplicateTagKeys"):
        elb.add_tags(ResourceArns=arns, Tags=[{"Key": "x", "Value": "1"}, {"Key": "x", "Value": "2"}])
    with expect_error("ValidationError"):
        elb.add_tags(ResourceArns=arns, Tags=[{"Key": "aws:x", "Value": "1"}])
    with expect_error("TooManyTags"):
        elb.add_tags(ResourceArns=[lb["LoadBalancerArn"]], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with expect_error("ValidationError"):
        elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]] * 21)
    with expect_error("ValidationError"):
        elb.describe_tags(ResourceArns=["web"])
    with expect_error("TargetGroupNotFound"):
        elb.describe_tags(ResourceArns=[GHOST_TG])
    assert (snapshot(elb), elb.describe_tags(ResourceArns=arns)["TagDescriptions"]) == before


def test_account_limits_and_operations_berth_lacks(berth, elb):
    limits = {x["Name"]: x["Max"] for x in elb.describe_account_limits()["Limits"]}
    assert limits["application-load-balancers"] == "50" and limits["target-groups"] == "3000"
    assert limits["rules-per-application-load-balancer"] == "100"
    page = elb.describe_account_limits(PageSize=2)
    assert len(page["Limits"]) == 2 and "NextMarker" in page
    with expect_error("OperationNotPermitted"):
        elb.describe_ssl_policies()
    with expect_error("OperationNotPermitted"):
        elb.modify_capacity_reservation(LoadBalancerArn=GHOST_LB, ResetCapacityReservation=True)
