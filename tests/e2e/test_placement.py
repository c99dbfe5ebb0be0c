"""Placement through the ECS API: strategies, constraints, the cluster query language in
RunTask and ListContainerInstances, and their bad inputs. Instances are registered the way
an agent registers them (no containers run)."""

import pytest
from botocore.exceptions import ClientError

from ecs_helpers import expect_error

ZONES = ["zone-a", "zone-a", "zone-b"]


def register(ecs, zone, memory=4096, extra=()):
    attrs = [{"name": "ecs.availability-zone", "value": zone}, *extra]
    resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                 {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}]
    return ecs.register_container_instance(totalResources=resources, attributes=attrs)["containerInstance"]["containerInstanceArn"]


@pytest.fixture
def cluster(ecs):
    arns = [register(ecs, z, memory=m) for z, m in zip(ZONES, [4096, 2048, 4096])]
    ecs.register_task_definition(family="app", containerDefinitions=[{"name": "c", "image": "x", "memory": 512}])
    return arns


def placed_on(tasks):
    return [t["containerInstanceArn"] for t in tasks]


def test_binpack_on_memory_fills_the_fullest_instance_first(ecs, cluster):
    tasks = ecs.run_task(taskDefinition="app", count=3, placementStrategy=[{"type": "binpack", "field": "memory"}])["tasks"]
    assert placed_on(tasks) == [cluster[1]] * 3, "the 2 GiB instance has the least memory left"


def test_default_spreads_over_zones(ecs, cluster):
    tasks = ecs.run_task(taskDefinition="app", count=4)["tasks"]
    zones = [ZONES[cluster.index(a)] for a in placed_on(tasks)]
    assert sorted(zones) == ["zone-a", "zone-a", "zone-b", "zone-b"]


def test_member_of_restricts_and_reports(ecs, cluster):
    expr = "attribute:ecs.availability-zone == zone-b"
    tasks = ecs.run_task(taskDefinition="app", count=2, placementConstraints=[{"type": "memberOf", "expression": expr}])["tasks"]
    assert placed_on(tasks) == [cluster[2]] * 2
    out = ecs.run_task(taskDefinition="app", placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-z"}])
    assert out["tasks"] == []
    assert sorted(f["arn"] for f in out["failures"]) == sorted(cluster)
    assert {f["reason"] for f in out["failures"]} == {"MemberOf"}


def test_distinct_instance_never_doubles(ecs, cluster):
    out = ecs.run_task(taskDefinition="app", count=5, group="web", placementConstraints=[{"type": "distinctInstance"}])
    assert sorted(placed_on(out["tasks"])) == sorted(cluster)
    assert {f["reason"] for f in out["failures"]} == {"DistinctInstance"}
    again = ecs.run_task(taskDefinition="app", group="web", placementConstraints=[{"type": "distinctInstance"}])
    assert again["tasks"] == [], "the group already runs on every instance"


def test_task_definition_constraints_apply(ecs, cluster):
    ecs.register_task_definition(family="pinned", containerDefinitions=[{"name": "c", "image": "x", "memory": 64}],
                                 placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone in [zone-b]"}])
    tasks = ecs.run_task(taskDefinition="pinned", count=2)["tasks"]
    assert placed_on(tasks) == [cluster[2]] * 2


def test_list_container_instances_filter(ecs, cluster):
    got = ecs.list_container_instances(filter="attribute:ecs.availability-zone == zone-a")["containerInstanceArns"]
    assert sorted(got) == sorted(cluster[:2])
    ecs.run_task(taskDefinition="app", placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-b"}])
    busy = ecs.list_container_instances(filter="runningTasksCount > 0 or task:group exists")["containerInstanceArns"]
    # PENDING tasks are not counted as running, but their group is known
    assert busy == [cluster[2]]


@pytest.mark.parametrize("constraint, message", [
    ({"type": "memberOf", "expression": "attribute:ecs.availability-zone === zone-a"}, "character 33"),
    ({"type": "memberOf", "expression": "(attribute:team == web"}, "expected ')'"),
    ({"type": "memberOf"}, "needs an expression"),
    ({"type": "distinctInstance", "expression": "x"}, "takes no expression"),
    ({"type": "sameZone"}, "Invalid value 'sameZone' for 'placementConstraints[0].type'"),
])
def test_bad_constraints_are_refused_and_place_nothing(ecs, cluster, constraint, message):
    with expect_error("InvalidParameterException", message_contains=message):
        ecs.run_task(taskDefinition="app", placementConstraints=[constraint])
    assert ecs.list_tasks()["taskArns"] == []


@pytest.mark.parametrize("strategy, message", [
    ({"type": "binpack", "field": "disk"}, "binpack"),
    ({"type": "spread", "field": "zone"}, "spread"),
    ({"type": "pack"}, "Invalid value 'pack' for 'placementStrategy[0].type'"),
])
def test_bad_strategies_are_refused(ecs, cluster, strategy, message):
    with expect_error("InvalidParameterException", message_contains=message):
        ecs.run_task(taskDefinition="app", placementStrategy=[strategy])
    assert ecs.list_tasks()["taskArns"] == []


def test_bad_filter_and_definition_constraint(ecs, cluster):
    with expect_error("InvalidParameterException", message_contains="unknown subject"):
        ecs.list_container_instances(filter="colour == red")
    before = ecs.list_task_definitions()["taskDefinitionArns"]
    with pytest.raises(ClientError):
        ecs.register_task_definition(family="bad", containerDefinitions=[{"name": "c", "image": "x", "memory": 64}],
                                     placementConstraints=[{"type": "memberOf", "expression": "attribute:x =="}])
    assert ecs.list_task_definitions()["taskDefinitionArns"] == before


def test_client_token_makes_run_task_idempotent(ecs, cluster):
    first = ecs.run_task(taskDefinition="app", count=2, clientToken="deploy-42")
    again = ecs.run_task(taskDefinition="app", count=2, clientToken="deploy-42")
    arns = sorted(t["taskArn"] for t in first["tasks"])
    assert len(arns) == 2
    assert sorted(t["taskArn"] for t in again["tasks"]) == arns, "a retry returns the same tasks"
    assert sorted(ecs.list_tasks()["taskArns"]) == arns, "and starts nothing new"
    other = ecs.run_task(taskDefinition="app", clientToken="deploy-43")["tasks"]
    assert len(other) == 1 and other[0]["taskArn"] not in arns
    with expect_error("InvalidParameterException", message_contains="clientToken"):
        ecs.run_task(taskDefinition="app", clientToken="x" * 65)
    assert len(ecs.list_tasks()["taskArns"]) == 3


def test_the_examples_in_docs_placement_run_as_written(berth, ecs, cluster):
    import re
    import subprocess
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "placement.md").read_text()
    [block] = re.findall(r"```sh\n(.*?)```", doc, re.S)
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=berth.env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    tasks = ecs.describe_tasks(tasks=ecs.list_tasks()["taskArns"])["tasks"]
    by_instance = {arn: [] for arn in cluster}
    for t in tasks:
        by_instance[t["containerInstanceArn"]].append(t["group"])
    # 3 binpacked onto the smallest instance (zone-a); 4 spread: the group already has 3 in
    # zone-a, so 3 go to zone-b and the 4th fills the smallest; 1 "web" in zone-b under
    # distinctInstance; and 1 of 2 on the only instance without a family:app task (the second
    # is refused: the first now runs there).
    assert len(tasks) == 9, by_instance
    assert sorted(by_instance[cluster[1]]) == ["family:app"] * 4
    assert sorted(by_instance[cluster[2]]) == ["family:app"] * 3 + ["web"]
    assert by_instance[cluster[0]] == ["family:app"]
    web = [t for t in tasks if t["group"] == "web"]
    assert [t["containerInstanceArn"] for t in web] == [cluster[2]]
    assert "containerInstanceArns" in p.stdout
