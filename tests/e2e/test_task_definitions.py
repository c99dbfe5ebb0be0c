"""RegisterTaskDefinition and friends: round-trips, revisions, listing, deletion, validation."""

import copy
import json

import pytest


from ecs_helpers import (
    assert_subset,
    container,
    expect_error,
    list_all,
    register,
    register_instance,
    task_definition_state,
)

MYTASK = {
    "family": "mytask",
    "cpu": "1 vCPU",
    "memory": "2 GB",
    "containerDefinitions": [
        {"name": "first", "image": "busybox", "cpu": 256, "memoryReservation": 512, "command": ["sleep", "360"]},
        {"name": "second", "image": "busybox:1.36", "cpu": 768, "memoryReservation": 512, "essential": False},
    ],
}

WEBSERVER = {
    "family": "webserver",
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {"name": "web", "image": "nginx", "essential": True, "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}
    ],
}

SIMPLE_DEMO = {
    "family": "simple-demo",
    "volumes": [{"name": "my-vol", "host": {}}],
    "containerDefinitions": [
        {
            "name": "simple-demo",
            "image": "httpd:2.4",
            "essential": True,
            "memory": 300,
            "cpu": 10,
            "portMappings": [{"containerPort": 80, "hostPort": 80}],
            "mountPoints": [{"sourceVolume": "my-vol", "containerPath": "/var/www/my-vol"}],
            "entryPoint": ["/usr/sbin/apache2", "-D", "FOREGROUND"],
        }
    ],
}


def test_mytask_round_trips_with_normalised_cpu_and_memory(ecs):
    """'1 vCPU'/'2 GB' come back as '1024'/'2048'; every other field comes back as sent."""
    registered = ecs.register_task_definition(**MYTASK)["taskDefinition"]
    described = ecs.describe_task_definition(taskDefinition="mytask")["taskDefinition"]
    expected = dict(copy.deepcopy(MYTASK), cpu="1024", memory="2048")
    for td in (registered, described):
        assert_subset(expected, td)
        assert td["revision"] == 1
        assert td["status"] == "ACTIVE"
        assert td["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/mytask:1"
    assert described == registered


def test_webserver_fargate_round_trips_via_cli(berth):
    """The Fargate seed registered through the AWS CLI round-trips and is FARGATE-compatible."""
    out = berth.cli("ecs", "register-task-definition", "--cli-input-json", json.dumps(WEBSERVER))
    assert_subset(WEBSERVER, out["taskDefinition"])
    described = berth.cli("ecs", "describe-task-definition", "--task-definition", "webserver:1")["taskDefinition"]
    assert_subset(WEBSERVER, described)
    assert "FARGATE" in described["compatibilities"]
    assert described["requiresCompatibilities"] == ["FARGATE"]


def test_simple_demo_round_trips_with_volume_and_entrypoint(ecs):
    """Port mappings, host volume, mount points and entryPoint survive a round-trip."""
    ecs.register_task_definition(**SIMPLE_DEMO)
    td = ecs.describe_task_definition(taskDefinition="simple-demo:1")["taskDefinition"]
    assert_subset(SIMPLE_DEMO, td)
    c = td["containerDefinitions"][0]
    assert c["portMappings"][0]["containerPort"] == 80 and c["portMappings"][0]["hostPort"] == 80
    assert td["volumes"][0]["name"] == "my-vol"


def test_cli_round_trip_of_simple_demo(berth):
    """The CLI's describe output (after a CLI register) contains everything sent."""
    berth.cli("ecs", "register-task-definition", "--cli-input-json", json.dumps(SIMPLE_DEMO))
    td = berth.cli("ecs", "describe-task-definition", "--task-definition", "simple-demo")["taskDefinition"]
    assert_subset(SIMPLE_DEMO, td)


def test_revisions_increment_and_deregistered_is_inactive_but_describable(ecs):
    """Revisions go 1,2,3; a deregistered revision is INACTIVE and still describable; listing honours status."""
    revs = [register(ecs, "rev")["revision"] for _ in range(3)]
    assert revs == [1, 2, 3]
    out = ecs.deregister_task_definition(taskDefinition="rev:2")["taskDefinition"]
    assert out["status"] == "INACTIVE"
    td = ecs.describe_task_definition(taskDefinition="rev:2")["taskDefinition"]
    assert td["status"] == "INACTIVE" and td["revision"] == 2
    base = "arn:aws:ecs:us-east-1:000000000000:task-definition/rev:"
    assert ecs.list_task_definitions()["taskDefinitionArns"] == [base + "1", base + "3"]
    assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == [base + "2"]
    # A bare family resolves to the newest ACTIVE revision.
    assert ecs.describe_task_definition(taskDefinition="rev")["taskDefinition"]["revision"] == 3


def test_list_filters_sort_and_pagination(ecs):
    """familyPrefix filters, sort=DESC reverses, maxResults=1 pagination walks the same set."""
    for fam in ("alpha", "alpha", "alphabet", "beta"):
        register(ecs, fam)
    arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/"
    everything = ecs.list_task_definitions()["taskDefinitionArns"]
    assert sorted(everything) == sorted([arn + "alpha:1", arn + "alpha:2", arn + "alphabet:1", arn + "beta:1"])
    assert ecs.list_task_definitions(familyPrefix="alpha")["taskDefinitionArns"] == [arn + "alpha:1", arn + "alpha:2"]
    desc = ecs.list_task_definitions(familyPrefix="alpha", sort="DESC")["taskDefinitionArns"]
    assert desc == [arn + "alpha:2", arn + "alpha:1"]
    asc = ecs.list_task_definitions(sort="ASC")["taskDefinitionArns"]
    assert ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"] == list(reversed(asc))
    pages = list_all(ecs.list_task_definitions, "taskDefinitionArns", page_size=1)
    assert len(pages) == 4
    assert pages == everything


def test_list_task_definition_families_status_and_prefix(ecs):
    """ACTIVE lists families with an ACTIVE revision, INACTIVE those without, ALL both; prefix filters."""
    register(ecs, "live")
    register(ecs, "gone")
    register(ecs, "mixed")
    register(ecs, "mixed")
    ecs.deregister_task_definition(taskDefinition="gone:1")
    ecs.deregister_task_definition(taskDefinition="mixed:1")
    assert sorted(ecs.list_task_definition_families(status="ACTIVE")["families"]) == ["live", "mixed"]
    assert ecs.list_task_definition_families(status="INACTIVE")["families"] == ["gone"]
    assert sorted(ecs.list_task_definition_families(status="ALL")["families"]) == ["gone", "live", "mixed"]
    assert sorted(ecs.list_task_definition_families()["families"]) == ["gone", "live", "mixed"]
    assert ecs.list_task_definition_families(familyPrefix="mi")["families"] == ["mixed"]
    assert ecs.list_task_definition_families(familyPrefix="g", status="ACTIVE")["families"] == []
    walked = list_all(ecs.list_task_definition_families, "families", maxResults=1)
    assert sorted(walked) == ["gone", "live", "mixed"]


def keep_in_use(ecs, revision):
    """Runs a task of `revision` that stays PENDING (no agent), so housekeeping does not purge the
    revision once it is DELETE_IN_PROGRESS (that is test_housekeeping.py's subject)."""
    if not ecs.list_container_instances()["containerInstanceArns"]:
        register_instance(ecs)
    assert ecs.run_task(taskDefinition=revision)["failures"] == []


def test_delete_task_definitions_requires_inactive(ecs):
    """Deleting an ACTIVE revision is a failure entry; an INACTIVE one moves to DELETE_IN_PROGRESS."""
    register(ecs, "del")
    register(ecs, "del")
    keep_in_use(ecs, "del:2")
    ecs.deregister_task_definition(taskDefinition="del:2")
    resp = ecs.delete_task_definitions(taskDefinitions=["del:1", "del:2"])
    assert [td["taskDefinitionArn"] for td in resp["taskDefinitions"]] == [
        "arn:aws:ecs:us-east-1:000000000000:task-definition/del:2"
    ]
    assert resp["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert resp["failures"] == [{
        "arn": "arn:aws:ecs:us-east-1:000000000000:task-definition/del:1",
        "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
    }]
    assert ecs.describe_task_definition(taskDefinition="del:1")["taskDefinition"]["status"] == "ACTIVE"
    assert ecs.describe_task_definition(taskDefinition="del:2")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    # The revision counter is retained: the next one is 3.
    assert register(ecs, "del")["revision"] == 3


def test_tags_round_trip_with_include(ecs):
    """Tags given at registration come back with include=['TAGS'] (and not without it)."""
    tags = [{"key": "team", "value": "blue"}, {"key": "env", "value": "dev"}]
    ecs.register_task_definition(family="tagged", containerDefinitions=[container()], tags=tags)
    with_tags = ecs.describe_task_definition(taskDefinition="tagged:1", include=["TAGS"])
    assert sorted(with_tags["tags"], key=lambda t: t["key"]) == sorted(tags, key=lambda t: t["key"])
    without = ecs.describe_task_definition(taskDefinition="tagged:1")
    assert not without.get("tags")


# ---------------------------------------------------------------- validation


def _refused(ecs, code, kwargs, message_prefix=None, message_contains=None):
    register(ecs, "existing")
    before = task_definition_state(ecs)
    with expect_error(code, message_prefix=message_prefix, message_contains=message_contains):
        ecs.register_task_definition(**kwargs)
    assert task_definition_state(ecs) == before


def test_too_many_containers(ecs):
    """11 containers -> ClientException 'Too many containers.' and nothing registered."""
    cs = [container(f"c{i}") for i in range(11)]
    _refused(ecs, "ClientException", dict(family="many", containerDefinitions=cs), message_prefix="Too many containers.")


def test_duplicate_container_names(ecs):
    """Two containers with the same name -> ClientException."""
    cs = [container("same"), container("same")]
    _refused(ecs, "ClientException", dict(family="dup", containerDefinitions=cs))


def test_no_essential_container(ecs):
    """All containers essential=false -> ClientException."""
    cs = [container("a", essential=False), container("b", essential=False)]
    _refused(ecs, "ClientException", dict(family="noess", containerDefinitions=cs), message_contains="essential")


def test_no_memory_anywhere_on_ec2(ecs):
    """EC2 definition with no task or container memory -> ClientException."""
    cs = [{"name": "a", "image": "busybox"}]
    _refused(ecs, "ClientException", dict(family="nomem", containerDefinitions=cs), message_contains="memory")


def test_fargate_invalid_cpu_memory_pair(ecs):
    """Fargate 256 CPU with 4096 MiB is not a valid size -> ClientException 'No Fargate configuration exists...'."""
    kwargs = dict(WEBSERVER, family="badsize", cpu="256", memory="4096")
    _refused(ecs, "ClientException", kwargs, message_prefix="No Fargate configuration exists for given values")


def test_fargate_requires_awsvpc(ecs):
    """Fargate with networkMode bridge -> ClientException."""
    kwargs = dict(WEBSERVER, family="fgbridge", networkMode="bridge")
    _refused(ecs, "ClientException", kwargs, message_contains="awsvpc")


def test_invalid_family_name(ecs):
    """'bad name!' is not a valid family -> ClientException."""
    _refused(ecs, "ClientException", dict(family="bad name!", containerDefinitions=[container()]))


def test_task_definition_over_64_kib(ecs):
    """A ~65 KiB definition (under the 1 MiB protocol cap) is refused by the 64 KiB task-definition limit."""
    big = container(environment=[{"name": "BIG", "value": "x" * (65 * 1024)}])
    body = json.dumps({"family": "big", "containerDefinitions": [big]})
    assert 64 * 1024 < len(body) < 1024 * 1024
    _refused(ecs, "ClientException", dict(family="big", containerDefinitions=[big]))


def test_task_definition_just_under_64_kib_is_accepted(ecs):
    """A definition a little under 64 KiB is fine (the limit is not set too low)."""
    big = container(environment=[{"name": "BIG", "value": "x" * (60 * 1024)}])
    td = register(ecs, "almost", [big])
    assert td["containerDefinitions"][0]["environment"][0]["value"] == "x" * (60 * 1024)


def _raw_refused(berth, ecs, body, status, code):
    register(ecs, "existing")
    before = task_definition_state(ecs)
    st, headers, out = berth.raw("RegisterTaskDefinition", body)
    assert st == status, (st, out)
    assert out.get("__type", "").split("#")[-1] == code, out
    assert task_definition_state(ecs) == before


def test_malformed_json_body(berth, ecs):
    """A truncated JSON body -> 400 SerializationException."""
    _raw_refused(berth, ecs, b'{"family": ', 400, "SerializationException")


@pytest.mark.parametrize(
    "body",
    [
        {"family": 5, "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 128}]},
        {"family": "typed", "containerDefinitions": "x"},
        {"family": "typed", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": "lots"}]},
    ],
    ids=["family-number", "containers-string", "memory-string"],
)
def test_wrong_member_type(berth, ecs, body):
    """A member of the wrong JSON type -> 400 SerializationException."""
    _raw_refused(berth, ecs, body, 400, "SerializationException")


def test_missing_required_container_definitions(berth, ecs):
    """No containerDefinitions at all -> 400 InvalidParameterException (missing required member)."""
    _raw_refused(berth, ecs, {"family": "nocontainers"}, 400, "InvalidParameterException")


def test_list_order_is_by_family_name_then_revision(ecs):
    """Default (ASC) order is lexicographic by family name, then numeric revision: 'web' sorts before
    'web-api', and revision 10 after revision 9. DESC is the exact reverse."""
    for _ in range(10):
        register(ecs, "web")
    register(ecs, "web-api")
    register(ecs, "webz")
    arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/"
    expected = [arn + f"web:{r}" for r in range(1, 11)] + [arn + "web-api:1", arn + "webz:1"]
    assert ecs.list_task_definitions()["taskDefinitionArns"] == expected
    assert ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"] == list(reversed(expected))
    assert list_all(ecs.list_task_definitions, "taskDefinitionArns", maxResults=3) == expected
    assert list_all(ecs.list_task_definitions, "taskDefinitionArns", maxResults=5, sort="DESC") == list(reversed(expected))


def test_list_families_order(ecs):
    """ListTaskDefinitionFamilies is in family-name order, and a prefix filter is a true prefix."""
    for fam in ("web-api", "web", "webz", "other"):
        register(ecs, fam)
    assert ecs.list_task_definition_families()["families"] == ["other", "web", "web-api", "webz"]
    assert ecs.list_task_definition_families(familyPrefix="web")["families"] == ["web", "web-api", "webz"]


def test_list_delete_in_progress(ecs):
    """status=DELETE_IN_PROGRESS lists revisions being deleted; they leave the INACTIVE listing."""
    register(ecs, "doomed")
    keep_in_use(ecs, "doomed:1")
    ecs.deregister_task_definition(taskDefinition="doomed:1")
    ecs.delete_task_definitions(taskDefinitions=["doomed:1"])
    arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/doomed:1"
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [arn]
    assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == []
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_describe_unknown_task_definition(ecs):
    """DescribeTaskDefinition of something never registered -> ClientException."""
    register(ecs, "known")
    with expect_error("ClientException"):
        ecs.describe_task_definition(taskDefinition="known:2")
    with expect_error("ClientException"):
        ecs.describe_task_definition(taskDefinition="unknown")


def test_deregister_needs_a_revision(ecs):
    """DeregisterTaskDefinition with a bare family -> ClientException; nothing changes."""
    register(ecs, "needrev")
    before = task_definition_state(ecs)
    with expect_error("ClientException"):
        ecs.deregister_task_definition(taskDefinition="needrev")
    assert task_definition_state(ecs) == before


def test_describe_by_arn(ecs):
    """A task definition can be described by its full ARN."""
    arn = register(ecs, "byarn")["taskDefinitionArn"]
    assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["taskDefinitionArn"] == arn


def test_unit_strings_are_normalised(ecs):
    """'1 vcpu'/'1GB' and '.25 vCPU'/'0.5 GB' are stored as CPU units / MiB."""
    td = ecs.register_task_definition(family="units", cpu="1 vcpu", memory="1GB", containerDefinitions=[container()])
    assert (td["taskDefinition"]["cpu"], td["taskDefinition"]["memory"]) == ("1024", "1024")
    fg = dict(WEBSERVER, family="fgunits", cpu=".25 vCPU", memory="0.5 GB")
    td = ecs.register_task_definition(**fg)["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert ecs.describe_task_definition(taskDefinition="fgunits:1")["taskDefinition"]["memory"] == "512"


def test_empty_container_list(ecs):
    """containerDefinitions=[] -> ClientException."""
    _refused(ecs, "ClientException", dict(family="empty", containerDefinitions=[]))


def test_container_without_image(ecs):
    """A container with no image -> ClientException."""
    _refused(ecs, "ClientException", dict(family="noimage", containerDefinitions=[{"name": "a", "memory": 64}]))


def test_memory_reservation_above_memory(ecs):
    """memoryReservation greater than the container's hard memory limit -> ClientException."""
    c = container(memory=128, memoryReservation=256)
    _refused(ecs, "ClientException", dict(family="resv", containerDefinitions=[c]))


def test_container_memory_above_task_memory(ecs):
    """A container memory limit above the task memory -> ClientException."""
    c = container(memory=2048)
    _refused(ecs, "ClientException", dict(family="toobig", memory="1024", containerDefinitions=[c]))


def test_fargate_requires_task_cpu(ecs):
    """Fargate without task-level cpu -> ClientException."""
    kwargs = {k: v for k, v in WEBSERVER.items() if k != "cpu"}
    kwargs["family"] = "fgnocpu"
    _refused(ecs, "ClientException", kwargs, message_contains="cpu")


def test_invalid_task_cpu_string(ecs):
    """A task cpu that is not a number or vCPU amount -> ClientException."""
    _refused(ecs, "ClientException", dict(family="lots", cpu="lots", containerDefinitions=[container()]))


def test_awsvpc_host_port_must_match(ecs):
    """In awsvpc mode a hostPort different from containerPort -> ClientException."""
    c = container(portMappings=[{"containerPort": 80, "hostPort": 8080}])
    _refused(ecs, "ClientException", dict(family="vpcport", networkMode="awsvpc", containerDefinitions=[c]))


def test_mount_point_of_unknown_volume(ecs):
    """A mount point naming a volume the definition lacks -> ClientException."""
    c = container(mountPoints=[{"sourceVolume": "nope", "containerPath": "/data"}])
    _refused(ecs, "ClientException", dict(family="novol", containerDefinitions=[c]))


def test_register_answers_tags_only_when_given(ecs):
    """RegisterTaskDefinition's response has `tags` only when the registration had some, as ECS's;
    DescribeTaskDefinition with include=TAGS always has them."""
    plain = ecs.register_task_definition(family="plain", containerDefinitions=[container()])
    assert "tags" not in plain
    tags = [{"key": "team", "value": "a"}]
    tagged = ecs.register_task_definition(family="tagged", containerDefinitions=[container()], tags=tags)
    assert tagged["tags"] == tags
    assert ecs.describe_task_definition(taskDefinition="plain", include=["TAGS"])["tags"] == []
    assert "tags" not in ecs.describe_task_definition(taskDefinition="tagged")
