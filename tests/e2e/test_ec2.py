"""The EC2 API subset over Berth's VPC model, end to end: the default VPC a fresh `berth up`
has (and keeps across restarts), subnets, security groups and their rules, network
interfaces and tags through boto3 and the AWS CLI (the commands of issue 11 as a user types
them), and a table of bad input checking EC2's code and message and that nothing changed."""

import subprocess

import boto3
import pytest
from botocore.config import Config

from conftest import BIN, Berth
from ecs_helpers import expect_error, register_instance

REGION = "us-east-1"
ACCOUNT = "000000000000"
GHOST_SUBNET = "subnet-0123456789abcdef0"
GHOST_GROUP = "sg-0123456789abcdef0"
GHOST_VPC = "vpc-0123456789abcdef0"


def ec2_client(berth, validate=True, region=REGION):
    """boto3's EC2 client; `validate=False` leaves the checking to the server."""
    return boto3.client(
        "ec2",
        endpoint_url=berth.endpoint,
        region_name=region,
        aws_access_key_id=berth.access_key,
        aws_secret_access_key=berth.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate),
    )


@pytest.fixture
def ec2(berth):
    return ec2_client(berth)


def cli_text(berth, *args):
    """`aws ...` with text output, as the issue's shell lines use it."""
    p = subprocess.run(["aws", *args], env=berth.env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"aws {' '.join(args)} failed: {p.stderr}"
    return p.stdout.strip()


def default_vpc(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1, vpcs
    return vpcs[0]


def default_group(ec2, vpc_id):
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                   {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert len(groups) == 1, groups
    return groups[0]


def snapshot(ec2):
    """Everything the VPC API shows, to compare before and after a refused request."""
    strip = lambda out: {k: v for k, v in out.items() if k != "ResponseMetadata"}  # noqa: E731
    return (strip(ec2.describe_vpcs()), strip(ec2.describe_subnets()), strip(ec2.describe_security_groups()),
            strip(ec2.describe_security_group_rules()), strip(ec2.describe_tags()), strip(ec2.describe_network_interfaces()))


def test_a_fresh_region_has_the_default_vpc_subnet_and_group(berth, ec2):
    """A default VPC of 172.31.0.0/16, a default /20 for the local agent's zone, and the
    default group (ingress from its members, egress anywhere), in botocore's shapes; the same
    after a restart."""
    vpc = default_vpc(ec2)
    assert vpc["VpcId"].startswith("vpc-") and len(vpc["VpcId"]) == 21
    assert (vpc["CidrBlock"], vpc["State"], vpc["IsDefault"], vpc["OwnerId"]) == ("172.31.0.0/16", "available", True, ACCOUNT)
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlockState"] == {"State": "associated"}
    subnets = ec2.describe_subnets()["Subnets"]
    assert len(subnets) == 1
    s = subnets[0]
    assert (s["VpcId"], s["CidrBlock"], s["AvailabilityZone"], s["AvailabilityZoneId"]) == (vpc["VpcId"], "172.31.0.0/20", "us-east-1a", "use1-az1")
    assert (s["DefaultForAz"], s["MapPublicIpOnLaunch"], s["State"], s["AvailableIpAddressCount"]) == (True, True, "available", 4091)
    assert s["SubnetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s['SubnetId']}"
    group = default_group(ec2, vpc["VpcId"])
    assert group["Description"] == "default VPC security group"
    assert group["IpPermissions"] == [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                                       "UserIdGroupPairs": [{"GroupId": group["GroupId"], "UserId": ACCOUNT}]}]
    assert group["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                                             "PrefixListIds": [], "UserIdGroupPairs": []}]
    before = snapshot(ec2)
    berth.restart()
    assert snapshot(ec2_client(berth)) == before


def test_a_zone_that_appears_gets_its_default_subnet(berth, ec2):
    """An agent registering in another zone: the next EC2 request finds that zone's default subnet."""
    register_instance(berth.client(), attributes=[{"name": "ecs.availability-zone", "value": "us-east-1b"}])
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "172.31.0.0/20"), ("us-east-1b", "172.31.16.0/20")]
    one = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}])["Subnets"]
    assert [s["CidrBlock"] for s in one] == ["172.31.16.0/20"]


def test_other_regions_get_their_own_default_vpc(berth):
    eu = ec2_client(berth, region="eu-west-1")
    vpc = default_vpc(eu)
    assert vpc["VpcId"] != default_vpc(ec2_client(berth))["VpcId"]
    assert [s["AvailabilityZone"] for s in eu.describe_subnets()["Subnets"]] == ["eu-west-1a"]


def test_vpc_cidr_flag(tmp_path):
    """`--vpc-cidr` sets the default VPC's block; a bad block stops the start with a clear error."""
    b = Berth(tmp_path / "data", extra_args=("--runtime", "none", "--vpc-cidr", "10.20.0.0/16")).start()
    try:
        ec2 = ec2_client(b)
        assert default_vpc(ec2)["CidrBlock"] == "10.20.0.0/16"
        assert [s["CidrBlock"] for s in ec2.describe_subnets()["Subnets"]] == ["10.20.0.0/20"]
    finally:
        b.stop()
    for bad in ("10.20.0.1/16", "10.0.0.0/8", "nonsense"):
        p = subprocess.run([BIN, "up",
                            "--data-dir", str(tmp_path / "bad"), "--runtime", "none", "--listen", "127.0.0.1:0",
                            "--vpc-cidr", bad], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert f"--vpc-cidr {bad}" in p.stderr, p.stderr


def test_the_issue_commands_through_the_aws_cli(berth, ec2):
    """describe-subnets --query, create-security-group, authorize-security-group-ingress as in issue 11."""
    subnets = cli_text(berth, "ec2", "describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text")
    assert subnets.split("\t") == [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    sg = cli_text(berth, "ec2", "create-security-group", "--group-name", "web", "--description", "web",
                  "--query", "GroupId", "--output", "text")
    assert sg.startswith("sg-")
    out = berth.cli("ec2", "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "80",
                    "--cidr", "0.0.0.0/0")
    assert out["Return"] is True
    rule = out["SecurityGroupRules"][0]
    assert (rule["GroupId"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIpv4"], rule["IsEgress"]) == (
        sg, "tcp", 80, 80, "0.0.0.0/0", False)
    group = berth.cli("ec2", "describe-security-groups", "--group-ids", sg)["SecurityGroups"][0]
    assert (group["GroupName"], group["VpcId"]) == ("web", default_vpc(ec2)["VpcId"])
    assert group["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                       "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    again = berth.cli("ec2", "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "80",
                      "--cidr", "0.0.0.0/0", check=False)
    assert again.returncode != 0 and "InvalidPermission.Duplicate" in again.stderr, again.stderr


def test_subnets_in_a_new_vpc(ec2):
    """CreateVpc, CreateSubnet with tags and zones, filters, paging, DependencyViolation, DeleteSubnet."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    assert (vpc["CidrBlock"], vpc["IsDefault"], vpc["Tags"]) == ("10.0.0.0/16", False, [{"Key": "Name", "Value": "lab"}])
    vid = vpc["VpcId"]
    made = []
    for i in range(6):
        tags = [{"ResourceType": "subnet", "Tags": [{"Key": "tier", "Value": "web" if i % 2 else "db"}]}]
        s = ec2.create_subnet(VpcId=vid, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone="us-east-1a", TagSpecifications=tags)["Subnet"]
        assert (s["VpcId"], s["DefaultForAz"], s["MapPublicIpOnLaunch"], s["AvailableIpAddressCount"]) == (vid, False, False, 251)
        made.append(s["SubnetId"])
    in_vpc = [{"Name": "vpc-id", "Values": [vid]}]
    assert sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=in_vpc)["Subnets"]) == sorted(made)
    web = ec2.describe_subnets(Filters=in_vpc + [{"Name": "tag:tier", "Values": ["web"]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in web) == ["10.0.1.0/24", "10.0.3.0/24", "10.0.5.0/24"]
    assert len(ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.0.*"]}])["Subnets"]) == 6
    # Paging walks every subnet once.
    seen, token = [], None
    while True:
        page = ec2.describe_subnets(Filters=in_vpc, MaxResults=5, **({"NextToken": token} if token else {}))
        assert len(page["Subnets"]) <= 5
        seen += [s["SubnetId"] for s in page["Subnets"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(made)
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vid)
    for sid in made:
        ec2.delete_subnet(SubnetId=sid)
    with expect_error("InvalidSubnetID.NotFound", message_contains=made[0]):
        ec2.describe_subnets(SubnetIds=[made[0]])
    ec2.delete_vpc(VpcId=vid)
    with expect_error("InvalidVpcID.NotFound"):
        ec2.describe_vpcs(VpcIds=[vid])


def test_security_group_rules_and_references(ec2):
    """Rules by CIDR and by source group, duplicates, revoke by permission and by rule id,
    egress, filters, and the groups' dependencies."""
    vid = default_vpc(ec2)["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web tier",
                                    TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "web"}]}])
    assert web["Tags"] == [{"Key": "tier", "Value": "web"}]
    db = ec2.create_security_group(GroupName="db", Description="db tier", VpcId=vid)["GroupId"]
    web = web["GroupId"]
    with expect_error("InvalidGroup.Duplicate", message_contains="web"):
        ec2.create_security_group(GroupName="web", Description="again")
    from_web = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web, "Description": "from web"}]}
    rules = ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[from_web])["SecurityGroupRules"]
    assert rules[0]["ReferencedGroupInfo"] == {"GroupId": web, "UserId": ACCOUNT}
    assert rules[0]["Description"] == "from web"
    with expect_error("InvalidPermission.Duplicate"):
        ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[from_web])
    # By name, in the default VPC, in the older top-level form.
    ec2.authorize_security_group_ingress(GroupName="db", IpProtocol="udp", FromPort=53, ToPort=53, CidrIp="10.0.0.0/8")
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [web]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [db]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["53"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [db]
    assert [g["GroupId"] for g in ec2.describe_security_groups(GroupNames=["web"])["SecurityGroups"]] == [web]
    assert [g["GroupId"] for g in ec2.describe_security_groups(Filters=[{"Name": "tag:tier", "Values": ["web"]}])["SecurityGroups"]] == [web]
    with expect_error("DependencyViolation", message_contains=web):
        ec2.delete_security_group(GroupId=web)
    # Every rule with its id, by group or by id.
    listed = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [db]}])["SecurityGroupRules"]
    assert sorted((r["IpProtocol"], r["FromPort"], r["IsEgress"]) for r in listed) == [("-1", -1, True), ("tcp", 5432, False), ("udp", 53, False)]
    one = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rules[0]["SecurityGroupRuleId"]])["SecurityGroupRules"]
    assert one == [{k: v for k, v in rules[0].items()}]
    # Egress.
    egress = ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}])["SecurityGroupRules"]
    assert egress[0]["IsEgress"] is True
    out = ec2.revoke_security_group_egress(GroupId=web, SecurityGroupRuleIds=[egress[0]["SecurityGroupRuleId"]])
    assert [r["SecurityGroupRuleId"] for r in out["RevokedSecurityGroupRules"]] == [egress[0]["SecurityGroupRuleId"]]
    # Revoke: one permission matching, one not.
    out = ec2.revoke_security_group_ingress(GroupId=db, IpPermissions=[
        from_web, {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert out["Return"] is True
    assert out["UnknownIpPermissions"][0]["FromPort"] == 1
    with expect_error("InvalidPermission.NotFound"):
        ec2.revoke_security_group_ingress(GroupId=db, IpPermissions=[from_web])
    assert ec2.delete_security_group(GroupId=web)["GroupId"] == web
    with expect_error("InvalidGroup.NotFound", message_contains=web):
        ec2.describe_security_groups(GroupIds=[web])
    default = default_group(ec2, vid)["GroupId"]
    with expect_error("CannotDelete"):
        ec2.delete_security_group(GroupId=default)
    ec2.delete_security_group(GroupName="db")


def test_tags_across_resources(ec2):
    vpc = default_vpc(ec2)["VpcId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = default_group(ec2, vpc)
    rule = ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpProtocol="tcp", FromPort=22, ToPort=22,
                                                CidrIp="10.0.0.0/8")["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ec2.create_tags(Resources=[vpc, subnet, group["GroupId"], rule], Tags=[{"Key": "env", "Value": "test"}, {"Key": "empty", "Value": ""}])
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["env"]}])["Tags"]
    first = ec2.describe_tags(MaxResults=5)
    rest = ec2.describe_tags(MaxResults=5, NextToken=first["NextToken"])
    assert len(first["Tags"]) == 5 and len(rest["Tags"]) == 3 and "NextToken" not in rest
    assert sorted((t["ResourceType"], t["ResourceId"]) for t in tags) == sorted(
        [("vpc", vpc), ("subnet", subnet), ("security-group", group["GroupId"]), ("security-group-rule", rule)])
    assert ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["subnet"]}])["Tags"] == [
        {"ResourceId": subnet, "ResourceType": "subnet", "Key": "empty", "Value": ""},
        {"ResourceId": subnet, "ResourceType": "subnet", "Key": "env", "Value": "test"}]
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:env", "Values": ["test"]}])["Vpcs"]] == [vpc]
    # A value that does not match removes nothing; a key alone removes the tag.
    ec2.delete_tags(Resources=[subnet], Tags=[{"Key": "env", "Value": "prod"}])
    assert len(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"]) == 2
    ec2.delete_tags(Resources=[subnet], Tags=[{"Key": "env"}])
    assert [t["Key"] for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet]}])["Tags"]] == ["empty"]
    ec2.delete_tags(Resources=[vpc])
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"] == []


def test_network_interfaces_without_tasks(ec2):
    """No awsvpc task: no interface; ids and filters answer as EC2 does."""
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    assert ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["NetworkInterfaces"] == []
    with expect_error("InvalidNetworkInterfaceID.NotFound"):
        ec2.describe_network_interfaces(NetworkInterfaceIds=["eni-0123456789abcdef0"])
    with expect_error("InvalidNetworkInterfaceID.Malformed"):
        ec2.describe_network_interfaces(NetworkInterfaceIds=["eni-nope"])


def test_dry_run_changes_nothing(ec2):
    before = snapshot(ec2)
    with expect_error("DryRunOperation"):
        ec2.create_security_group(GroupName="dry", Description="dry", DryRun=True)
    assert snapshot(ec2) == before


def default_ids(ec2):
    vpc = default_vpc(ec2)
    return {"vpc": vpc["VpcId"], "subnet": ec2.describe_subnets()["Subnets"][0]["SubnetId"],
            "sg": default_group(ec2, vpc["VpcId"])["GroupId"]}


# (operation, parameters — "{vpc}", "{subnet}", "{sg}" name the default resources —, code, message part)
BAD = [
    ("describe_subnets", {"SubnetIds": [GHOST_SUBNET]}, "InvalidSubnetID.NotFound", f"The subnet ID '{GHOST_SUBNET}' does not exist"),
    ("describe_subnets", {"SubnetIds": ["subnet-xyz"]}, "InvalidSubnetID.Malformed", "subnet-xyz"),
    ("describe_subnets", {"Filters": [{"Name": "colour", "Values": ["red"]}]}, "InvalidParameterValue", "colour"),
    ("describe_vpcs", {"VpcIds": [GHOST_VPC]}, "InvalidVpcID.NotFound", GHOST_VPC),
    ("describe_vpcs", {"VpcIds": [GHOST_VPC], "MaxResults": 5}, "InvalidParameterCombination", "VpcIds"),
    ("describe_security_groups", {"GroupIds": [GHOST_GROUP]}, "InvalidGroup.NotFound", GHOST_GROUP),
    ("describe_security_groups", {"GroupNames": ["nosuch"]}, "InvalidGroup.NotFound", "nosuch"),
    ("describe_security_group_rules", {"SecurityGroupRuleIds": ["sgr-0123456789abcdef0"]},
     "InvalidSecurityGroupRuleId.NotFound", "sgr-0123456789abcdef0"),
    ("describe_security_group_rules", {"SecurityGroupRuleIds": ["sg-0123456789abcdef0"]},
     "InvalidSecurityGroupRuleId.Malformed", "sg-0123456789abcdef0"),
    ("describe_tags", {"MaxResults": 2}, "InvalidParameterValue", "MaxResults"),
    ("describe_subnets", {"NextToken": "zz"}, "InvalidPaginationToken", "zz"),
    ("create_subnet", {"VpcId": GHOST_VPC, "CidrBlock": "10.0.0.0/24"}, "InvalidVpcID.NotFound", GHOST_VPC),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "10.9.0.0/24"}, "InvalidSubnet.Range", "10.9.0.0/24"),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "172.31.0.0/24"}, "InvalidSubnet.Conflict", "172.31.0.0/24"),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "172.31.200.0/29"}, "InvalidSubnet.Range", "172.31.200.0/29"),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "172.31.200.1/24"}, "InvalidParameterValue", "not a valid CIDR"),
    ("create_subnet", {"VpcId": "{vpc}"}, "MissingParameter", "CidrBlock"),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "172.31.200.0/24", "AvailabilityZone": "us-east-1q"}, "InvalidParameterValue", "us-east-1q"),
    ("create_subnet", {"VpcId": "{vpc}", "CidrBlock": "172.31.200.0/24", "Ipv6CidrBlock": "2600::/64"}, "UnsupportedOperation", "Ipv6CidrBlock"),
    ("create_vpc", {"CidrBlock": "10.0.0.0/8"}, "InvalidVpc.Range", "10.0.0.0/8"),
    ("create_vpc", {"CidrBlock": "10.0.0.0/16", "InstanceTenancy": "dedicated"}, "InvalidParameterValue", "dedicated"),
    ("delete_subnet", {"SubnetId": GHOST_SUBNET}, "InvalidSubnetID.NotFound", GHOST_SUBNET),
    ("delete_vpc", {"VpcId": "{vpc}"}, "DependencyViolation", "has dependencies"),
    ("create_security_group", {"GroupName": "default", "Description": "x"}, "InvalidGroup.Duplicate", "default"),
    ("create_security_group", {"GroupName": "sg-web", "Description": "x"}, "InvalidParameterValue", "sg-*"),
    ("create_security_group", {"GroupName": "x", "Description": "x", "VpcId": GHOST_VPC}, "InvalidVpcID.NotFound", GHOST_VPC),
    ("create_security_group", {"GroupName": "x", "Description": "x",
                               "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "b"}]}]},
     "InvalidParameterValue", "vpc"),
    ("create_security_group", {"GroupName": "x", "Description": "x",
                               "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "aws:x", "Value": "b"}]}]},
     "InvalidParameterValue", "aws:"),
    ("delete_security_group", {"GroupId": "{sg}"}, "CannotDelete", "cannot be deleted"),
    ("delete_security_group", {"GroupId": GHOST_GROUP}, "InvalidGroup.NotFound", GHOST_GROUP),
    ("delete_security_group", {}, "MissingParameter", "groupName or groupId"),
    ("authorize_security_group_ingress", {"GroupId": GHOST_GROUP, "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"},
     "InvalidGroup.NotFound", GHOST_GROUP),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/33"},
     "InvalidParameterValue", "0.0.0.0/33"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 70000, "CidrIp": "0.0.0.0/0"},
     "InvalidPermission.Malformed", "70000"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpProtocol": "gre", "CidrIp": "0.0.0.0/0"},
     "InvalidParameterValue", "gre"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80},
     "MissingParameter", "source"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}"}, "MissingParameter", "IpPermissions"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": GHOST_GROUP}]}]},
     "InvalidGroup.NotFound", GHOST_GROUP),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "PrefixListIds": [{"PrefixListId": "pl-12345678"}]}]},
     "InvalidPrefixListId.NotFound", "pl-12345678"),
    ("authorize_security_group_ingress", {"GroupId": "{sg}", "IpProtocol": "-1", "SourceSecurityGroupName": "default"},
     "InvalidPermission.Duplicate", "already exists"),
    ("authorize_security_group_egress", {"GroupId": "{sg}", "IpPermissions": [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}, "InvalidPermission.Duplicate", "0.0.0.0/0"),
    ("revoke_security_group_ingress", {"GroupId": "{sg}", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}, "InvalidPermission.NotFound", "does not exist"),
    ("revoke_security_group_ingress", {"GroupId": "{sg}", "SecurityGroupRuleIds": ["sgr-0123456789abcdef0"]},
     "InvalidSecurityGroupRuleId.NotFound", "sgr-0123456789abcdef0"),
    ("create_tags", {"Resources": ["i-0123456789abcdef0"], "Tags": [{"Key": "a", "Value": "b"}]}, "InvalidID", "i-0123456789abcdef0"),
    ("create_tags", {"Resources": ["{vpc}", GHOST_SUBNET], "Tags": [{"Key": "a", "Value": "b"}]}, "InvalidSubnetID.NotFound", GHOST_SUBNET),
    ("create_tags", {"Resources": ["{vpc}"], "Tags": [{"Key": "", "Value": "b"}]}, "InvalidParameterValue", "empty"),
    ("describe_network_interfaces", {"IncludeManagedResources": True}, "UnsupportedOperation", "IncludeManagedResources"),
]


@pytest.mark.parametrize("operation,params,code,message", BAD, ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_refused_with_ec2_codes_and_changes_nothing(berth, operation, params, code, message):
    ec2 = ec2_client(berth)
    ids = default_ids(ec2)

    def fill(v):
        if isinstance(v, str):
            return v.format(**ids) if v.startswith("{") else v
        if isinstance(v, list):
            return [fill(x) for x in v]
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v

    before = snapshot(ec2)
    with expect_error(code, message_contains=message):
        getattr(ec2_client(berth, validate=False), operation)(**fill(params))
    assert snapshot(ec2) == before
