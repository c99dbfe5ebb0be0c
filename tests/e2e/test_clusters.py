"""Clusters: lifecycle, include views, defaults, settings, deletion guards and counts."""

import pytest
from botocore.exceptions import ClientError

from ecs_helpers import container, expect_error, register, register_instance, until

ARN = "arn:aws:ecs:us-east-1:000000000000:cluster/"


def test_create_describe_list_delete(ecs):
    """A created cluster is ACTIVE, listed and describable; after delete it is INACTIVE, describable, unlisted."""
    c = ecs.create_cluster(clusterName="life")["cluster"]
    assert c["clusterArn"] == ARN + "life"
    assert c["clusterName"] == "life"
    assert c["status"] == "ACTIVE"
    assert sorted(ecs.list_clusters()["clusterArns"]) == [ARN + "default", ARN + "life"]
    d = ecs.describe_clusters(clusters=["life"])
    assert d["failures"] == []
    assert d["clusters"][0]["clusterArn"] == ARN + "life" and d["clusters"][0]["status"] == "ACTIVE"
    # by ARN as well
    assert ecs.describe_clusters(clusters=[ARN + "life"])["clusters"][0]["clusterName"] == "life"
    deleted = ecs.delete_cluster(cluster="life")["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert ecs.list_clusters()["clusterArns"] == [ARN + "default"]
    d = ecs.describe_clusters(clusters=["life"])
    assert d["clusters"][0]["status"] == "INACTIVE"
    assert d["failures"] == []


def test_describe_missing_cluster_is_a_failure(ecs):
    """DescribeClusters on an unknown name returns a MISSING failure with the cluster ARN, not an error."""
    d = ecs.describe_clusters(clusters=["ghost", "default"])
    assert [c["clusterName"] for c in d["clusters"]] == ["default"]
    assert d["failures"] == [{"arn": ARN + "ghost", "reason": "MISSING"}]


def test_default_cluster_is_used_when_omitted(ecs):
    """Calls without `cluster` use `default`: DescribeClusters() returns it, ListTasks() works."""
    d = ecs.describe_clusters()
    assert [c["clusterName"] for c in d["clusters"]] == ["default"]
    assert d["clusters"][0]["status"] == "ACTIVE"
    assert ecs.list_tasks()["taskArns"] == []
    assert ecs.list_container_instances()["containerInstanceArns"] == []
    inst = ecs.register_container_instance(totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])["containerInstance"]
    assert inst["containerInstanceArn"].startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/")
    assert ecs.list_container_instances()["containerInstanceArns"] == [inst["containerInstanceArn"]]


def test_include_tags_settings_statistics(ecs):
    """include=TAGS/SETTINGS/STATISTICS adds those parts to DescribeClusters."""
    tags = [{"key": "owner", "value": "me"}]
    ecs.create_cluster(
        clusterName="rich", tags=tags, settings=[{"name": "containerInsights", "value": "enabled"}]
    )
    plain = ecs.describe_clusters(clusters=["rich"])["clusters"][0]
    assert not plain.get("tags")
    assert not plain.get("statistics")
    full = ecs.describe_clusters(clusters=["rich"], include=["TAGS", "SETTINGS", "STATISTICS"])["clusters"][0]
    assert full["tags"] == tags
    assert {"name": "containerInsights", "value": "enabled"} in full["settings"]
    stats = {s["name"]: s["value"] for s in full["statistics"]}
    assert stats.get("runningEC2TasksCount") == "0"
    assert stats.get("pendingEC2TasksCount") == "0"


def test_delete_missing_cluster(ecs):
    """DeleteCluster on an unknown cluster -> ClusterNotFoundException."""
    with expect_error("ClusterNotFoundException"):
        ecs.delete_cluster(cluster="nothing-here")
    assert ecs.list_clusters()["clusterArns"] == [ARN + "default"]


def test_create_existing_cluster_is_idempotent(ecs):
    """Creating an ACTIVE cluster again returns the same cluster, and there is still one of it."""
    first = ecs.create_cluster(clusterName="twice")["cluster"]
    second = ecs.create_cluster(clusterName="twice")["cluster"]
    assert second["clusterArn"] == first["clusterArn"]
    assert second["status"] == "ACTIVE"
    assert ecs.list_clusters()["clusterArns"].count(ARN + "twice") == 1


def test_recreate_after_delete_is_active_again(ecs):
    """A deleted (INACTIVE) cluster name can be created again and is ACTIVE and listed."""
    ecs.create_cluster(clusterName="phoenix")
    ecs.delete_cluster(cluster="phoenix")
    again = ecs.create_cluster(clusterName="phoenix")["cluster"]
    assert again["status"] == "ACTIVE"
    assert ARN + "phoenix" in ecs.list_clusters()["clusterArns"]


def test_update_cluster_settings(ecs):
    """UpdateClusterSettings turns containerInsights on, visible with include=SETTINGS."""
    ecs.create_cluster(clusterName="insightful")
    out = ecs.update_cluster_settings(cluster="insightful", settings=[{"name": "containerInsights", "value": "enabled"}])
    assert {"name": "containerInsights", "value": "enabled"} in out["cluster"]["settings"]
    d = ecs.describe_clusters(clusters=["insightful"], include=["SETTINGS"])["clusters"][0]
    assert [s for s in d["settings"] if s["name"] == "containerInsights"] == [
        {"name": "containerInsights", "value": "enabled"}
    ]


def test_bad_settings_value(ecs):
    """A containerInsights value that is not enabled/disabled/enhanced -> InvalidParameterException, unchanged."""
    ecs.create_cluster(clusterName="strict")
    before = ecs.describe_clusters(clusters=["strict"], include=["SETTINGS"])["clusters"][0]["settings"]
    with expect_error("InvalidParameterException"):
        ecs.update_cluster_settings(cluster="strict", settings=[{"name": "containerInsights", "value": "sometimes"}])
    after = ecs.describe_clusters(clusters=["strict"], include=["SETTINGS"])["clusters"][0]["settings"]
    assert after == before
    with expect_error("InvalidParameterException"):
        ecs.create_cluster(clusterName="strict2", settings=[{"name": "containerInsights", "value": "maybe"}])
    assert ARN + "strict2" not in ecs.list_clusters()["clusterArns"]


def test_invalid_cluster_name(ecs):
    """A cluster name with spaces/punctuation -> InvalidParameterException; nothing created."""
    with expect_error("InvalidParameterException"):
        ecs.create_cluster(clusterName="bad name!")
    with expect_error("InvalidParameterException"):
        ecs.create_cluster(clusterName="x" * 256)
    assert ecs.list_clusters()["clusterArns"] == [ARN + "default"]


def test_delete_with_registered_instance(ecs):
    """A cluster with a registered container instance cannot be deleted."""
    ecs.create_cluster(clusterName="busy")
    inst = register_instance(ecs, cluster="busy")
    c = ecs.describe_clusters(clusters=["busy"])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 1
    with expect_error("ClusterContainsContainerInstancesException"):
        ecs.delete_cluster(cluster="busy")
    assert ecs.describe_clusters(clusters=["busy"])["clusters"][0]["status"] == "ACTIVE"
    ecs.deregister_container_instance(cluster="busy", containerInstance=inst["containerInstanceArn"])
    assert ecs.describe_clusters(clusters=["busy"])["clusters"][0]["registeredContainerInstancesCount"] == 0
    assert ecs.delete_cluster(cluster="busy")["cluster"]["status"] == "INACTIVE"


def test_delete_with_pending_task(ecs):
    """A PENDING task keeps the cluster alive even after its instance was force-deregistered."""
    ecs.create_cluster(clusterName="tasky")
    inst = register_instance(ecs, cluster="tasky")
    register(ecs, "sleeper", [container("s", memory=256)])
    run = ecs.run_task(cluster="tasky", taskDefinition="sleeper")
    assert run["failures"] == [] and len(run["tasks"]) == 1
    c = ecs.describe_clusters(clusters=["tasky"])["clusters"][0]
    assert c["pendingTasksCount"] == 1
    assert c["runningTasksCount"] == 0
    assert c["registeredContainerInstancesCount"] == 1
    out = ecs.deregister_container_instance(cluster="tasky", containerInstance=inst["containerInstanceArn"], force=True)
    assert out["containerInstance"]["status"] == "INACTIVE"
    with expect_error("ClusterContainsTasksException"):
        ecs.delete_cluster(cluster="tasky")
    assert ecs.describe_clusters(clusters=["tasky"])["clusters"][0]["status"] == "ACTIVE"
    # Once the task is stopped, the cluster can go.
    ecs.stop_task(cluster="tasky", task=run["tasks"][0]["taskArn"])
    assert ecs.delete_cluster(cluster="tasky")["cluster"]["status"] == "INACTIVE"


def test_operations_on_inactive_cluster(ecs):
    """An INACTIVE cluster refuses new instances (ClusterNotFoundException or InvalidParameter-like refusal)."""
    ecs.create_cluster(clusterName="closed")
    ecs.delete_cluster(cluster="closed")
    with pytest.raises(ClientError) as info:
        register_instance(ecs, cluster="closed")
    assert info.value.response["Error"]["Code"] in ("ClusterNotFoundException", "InvalidParameterException")
    assert ecs.describe_clusters(clusters=["closed"])["clusters"][0]["registeredContainerInstancesCount"] == 0


def test_delete_inactive_cluster_again(ecs):
    """Deleting an already deleted cluster returns it INACTIVE again (not an error)."""
    ecs.create_cluster(clusterName="gone")
    ecs.delete_cluster(cluster="gone")
    again = ecs.delete_cluster(cluster="gone")["cluster"]
    assert again["status"] == "INACTIVE"
    assert again["clusterArn"] == ARN + "gone"


def test_list_clusters_pagination(ecs):
    """ListClusters with maxResults=1 walks every cluster exactly once."""
    for name in ("c1", "c2", "c3"):
        ecs.create_cluster(clusterName=name)
    seen = []
    token = None
    while True:
        kw = {"maxResults": 1}
        if token:
            kw["nextToken"] = token
        resp = ecs.list_clusters(**kw)
        assert len(resp["clusterArns"]) <= 1
        seen.extend(resp["clusterArns"])
        token = resp.get("nextToken")
        if not token:
            break
    assert sorted(seen) == sorted(ARN + n for n in ("default", "c1", "c2", "c3"))
    assert len(seen) == 4


def test_statistics_count_tasks(ecs):
    """STATISTICS and the counters reflect a PENDING then RUNNING EC2 task."""
    register_instance(ecs)
    register(ecs, "stat", [container("s", memory=64)])
    arn = ecs.run_task(taskDefinition="stat")["tasks"][0]["taskArn"]
    c = ecs.describe_clusters(include=["STATISTICS"])["clusters"][0]
    stats = {s["name"]: s["value"] for s in c["statistics"]}
    assert c["pendingTasksCount"] == 1 and stats["pendingEC2TasksCount"] == "1"
    ecs.submit_task_state_change(task=arn, status="RUNNING", containers=[{"containerName": "s", "status": "RUNNING"}])
    c = ecs.describe_clusters(include=["STATISTICS"])["clusters"][0]
    stats = {s["name"]: s["value"] for s in c["statistics"]}
    assert c["pendingTasksCount"] == 0 and c["runningTasksCount"] == 1
    assert stats["runningEC2TasksCount"] == "1" and stats["pendingEC2TasksCount"] == "0"


STATISTICS = [
    "runningEC2TasksCount", "runningFargateTasksCount", "pendingEC2TasksCount", "pendingFargateTasksCount",
    "runningExternalTasksCount", "pendingExternalTasksCount", "activeEC2ServiceCount", "activeFargateServiceCount",
    "drainingEC2ServiceCount", "drainingFargateServiceCount", "activeExternalServiceCount", "drainingExternalServiceCount",
]


def test_statistics_count_services_by_state(ecs):
    """STATISTICS lists ECS's counts in ECS's order; a DRAINING service counts as draining, not active."""
    register_instance(ecs)
    register(ecs, "svc", [container("s", memory=64)])
    for name in ("up", "down"):
        ecs.create_service(serviceName=name, taskDefinition="svc", desiredCount=1)
    tasks = until(lambda: (lambda t: t if len(t) == 2 else None)(ecs.list_tasks()["taskArns"]), what="two service tasks")
    for arn in tasks:  # as an agent would: the tasks run, so the draining service keeps its task until it stops
        ecs.submit_task_state_change(task=arn, status="RUNNING", containers=[{"containerName": "s", "status": "RUNNING"}])
    assert ecs.delete_service(service="down", force=True)["service"]["status"] == "DRAINING"
    c = ecs.describe_clusters(include=["STATISTICS"])["clusters"][0]
    assert [s["name"] for s in c["statistics"]] == STATISTICS
    nonzero = {s["name"]: s["value"] for s in c["statistics"] if s["value"] != "0"}
    assert nonzero == {"runningEC2TasksCount": "2", "activeEC2ServiceCount": "1", "drainingEC2ServiceCount": "1"}
    assert (c["activeServicesCount"], c["runningTasksCount"], c["pendingTasksCount"]) == (1, 2, 0)


def test_attachments_and_configurations(ecs):
    """ATTACHMENTS: no capacity providers, so no attachments and no attachment update status;
    CONFIGURATIONS adds the configuration, which create and update return."""
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    created = ecs.create_cluster(clusterName="conf", configuration=configuration)["cluster"]
    assert created["configuration"] == configuration
    plain = ecs.describe_clusters(clusters=["conf"])["clusters"][0]
    assert "configuration" not in plain and "attachments" not in plain
    full = ecs.describe_clusters(clusters=["conf"], include=["ATTACHMENTS", "CONFIGURATIONS"])["clusters"][0]
    assert full["configuration"] == configuration
    assert full["attachments"] == [] and "attachmentsStatus" not in full
    assert full["capacityProviders"] == [] and full["defaultCapacityProviderStrategy"] == []


def test_container_insights_default_comes_from_the_account_setting(ecs):
    """A cluster created without containerInsights takes the account's setting (the caller's own,
    else the account default, else disabled); one given explicitly wins."""
    def insights(name, **kw):
        settings = ecs.create_cluster(clusterName=name, **kw)["cluster"]["settings"]
        described = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]["settings"]
        assert described == settings
        return [s["value"] for s in settings if s["name"] == "containerInsights"]

    assert insights("plain") == ["disabled"]
    ecs.put_account_setting_default(name="containerInsights", value="enhanced")
    assert insights("by-default") == ["enhanced"]
    ecs.put_account_setting(name="containerInsights", value="enabled")
    assert insights("by-user") == ["enabled"]
    assert insights("explicit", settings=[{"name": "containerInsights", "value": "disabled"}]) == ["disabled"]
    # The settings of existing clusters do not change with the account setting.
    ecs.delete_account_setting(name="containerInsights")
    assert ecs.describe_clusters(clusters=["by-user"], include=["SETTINGS"])["clusters"][0]["settings"] == [
        {"name": "containerInsights", "value": "enabled"}]
