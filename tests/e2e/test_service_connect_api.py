"""Service Connect's API checks, on a server without agents: CreateService and UpdateService
refuse what ECS refuses (and what Berth's proxy cannot do) in ECS's error shape and change
nothing; defaults come from the cluster and the port mapping; the configuration shows on the
deployments only."""

import botocore.exceptions
import pytest

from dns_helpers import cloudmap


def awsvpc(b):
    subnets = [s["SubnetId"] for s in b.client("ec2").describe_subnets()["Subnets"]]
    return {"awsvpcConfiguration": {"subnets": subnets}}


@pytest.fixture
def sc_api(berth):
    ecs, sd = berth.client(), cloudmap(berth)
    sd.create_http_namespace(Name="internal.app")
    ecs.register_task_definition(family="web", networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": "busybox", "memory": 32,
        "portMappings": [{"name": "web", "containerPort": 80}, {"name": "grpc", "containerPort": 50051,
                                                                 "appProtocol": "grpc"}]}])
    ecs.register_task_definition(family="bridged", networkMode="bridge", containerDefinitions=[{
        "name": "web", "image": "busybox", "memory": 32, "portMappings": [{"name": "web", "containerPort": 80}]}])
    return berth, ecs, sd


def create(ecs, b, config, definition="web", name="web"):
    args = {"serviceName": name, "taskDefinition": definition, "desiredCount": 0,
            "serviceConnectConfiguration": config}
    if definition == "web":
        args["networkConfiguration"] = awsvpc(b)
    return ecs.create_service(**args)["service"]


def create_raw(b, config):
    """CreateService as sent by hand: botocore itself refuses some of these."""
    body = {"serviceName": "web", "taskDefinition": "web", "desiredCount": 0, "networkConfiguration": awsvpc(b),
            "serviceConnectConfiguration": config}
    status, _, answer = b.raw("CreateService", body)
    assert status == 400, answer
    return answer["__type"].rsplit("#", 1)[-1], answer.get("message", "")


BAD = [
    ({"namespace": "internal.app"}, "InvalidParameterException", "enabled"),
    ({"enabled": "yes", "namespace": "internal.app"}, "SerializationException", "enabled"),
    ({"enabled": True, "namespace": "internal.app", "services": {"portName": "web"}}, "SerializationException",
     "Expected a list"),
    ({"enabled": True}, "InvalidParameterException", "needs a namespace"),
    ({"enabled": True, "namespace": "nothere.app"}, "NamespaceNotFoundException", "nothere.app"),
    ({"enabled": False, "namespace": "internal.app"}, "InvalidParameterException", "not enabled"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "http"}]},
     "InvalidParameterException", "portName 'http'"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web", "discoveryName": "Web"}]},
     "InvalidParameterException", "discoveryName 'Web'"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web", "clientAliases": [
        {"port": 80, "dnsName": "a"}, {"port": 81, "dnsName": "b"}]}]}, "InvalidParameterException", "at most 1"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web", "clientAliases": [
        {"port": 0}]}]}, "InvalidParameterException", "between 1 and 65535"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web", "clientAliases": [
        {"port": 80, "dnsName": "-bad"}]}]}, "InvalidParameterException", "dnsName '-bad'"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web", "ingressPortOverride": 80}]},
     "InvalidParameterException", "container port"),
    ({"enabled": True, "namespace": "internal.app", "services": [
        {"portName": "web", "timeout": {"perRequestTimeoutSeconds": 5}}]}, "InvalidParameterException", "appProtocol"),
    ({"enabled": True, "namespace": "internal.app", "services": [
        {"portName": "grpc", "timeout": {"perRequestTimeoutSeconds": 5}}]}, "InvalidParameterException",
     "perRequestTimeoutSeconds"),
    ({"enabled": True, "namespace": "internal.app", "services": [
        {"portName": "web", "tls": {"issuerCertificateAuthority": {"awsPcaAuthorityArn": "arn:x"}}}]},
     "InvalidParameterException", "TLS"),
    ({"enabled": True, "namespace": "internal.app", "logConfiguration": {"logDriver": "awslogs"}},
     "InvalidParameterException", "logConfiguration"),
    ({"enabled": True, "namespace": "internal.app", "services": [{"portName": "web"}, {"portName": "web"}]},
     "InvalidParameterException", "used twice"),
]


@pytest.mark.parametrize("config,code,words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_configurations_are_refused_and_change_nothing(sc_api, config, code, words):
    b, ecs, sd = sc_api
    got_code, message = create_raw(b, config)
    assert (got_code, words in message) == (code, True), message
    assert ecs.list_services()["serviceArns"] == []
    assert sd.list_services()["Services"] == []


def test_service_connect_needs_awsvpc_and_the_ecs_controller(sc_api):
    b, ecs, sd = sc_api
    config = {"enabled": True, "namespace": "internal.app", "services": [{"portName": "web"}]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ecs, b, config, definition="bridged")
    assert "awsvpc" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_service(serviceName="ext", desiredCount=0, deploymentController={"type": "EXTERNAL"},
                           serviceConnectConfiguration=config)
    assert "ECS deployment controller" in e.value.response["Error"]["Message"]
    assert sd.list_services()["Services"] == []


def test_a_cloud_map_service_not_made_by_service_connect_is_not_taken_over(sc_api):
    b, ecs, sd = sc_api
    ns = sd.list_namespaces()["Namespaces"][0]["Id"]
    sd.create_service(Name="web", NamespaceId=ns)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ecs, b, {"enabled": True, "namespace": "internal.app", "services": [{"portName": "web"}]})
    assert "did not make" in e.value.response["Error"]["Message"]
    assert ecs.list_services()["serviceArns"] == []


def test_an_alias_is_one_services_in_its_namespace(sc_api):
    b, ecs, _ = sc_api
    alias = [{"port": 80, "dnsName": "shared"}]
    create(ecs, b, {"enabled": True, "namespace": "internal.app", "services": [
        {"portName": "web", "discoveryName": "one", "clientAliases": alias}]}, name="one")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ecs, b, {"enabled": True, "namespace": "internal.app", "services": [
            {"portName": "web", "discoveryName": "two", "clientAliases": alias}]}, name="two")
    assert "already used" in e.value.response["Error"]["Message"]


def test_defaults_the_cluster_namespace_and_updates(sc_api):
    b, ecs, sd = sc_api
    ns = sd.list_namespaces()["Namespaces"][0]
    ecs.update_cluster(cluster="default", serviceConnectDefaults={"namespace": "internal.app"})
    # Defaults: the cluster's namespace, discoveryName from portName, dnsName discoveryName.namespace,
    # idle timeout as given.
    svc = create(ecs, b, {"enabled": True, "services": [
        {"portName": "web", "clientAliases": [{"port": 8080}], "timeout": {"idleTimeoutSeconds": 0}}]})
    d = svc["deployments"][0]
    assert d["serviceConnectConfiguration"] == {"enabled": True, "namespace": ns["Arn"], "services": [
        {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 8080, "dnsName": "web.internal.app"}],
         "timeout": {"idleTimeoutSeconds": 0}}]}
    made = sd.list_services()["Services"]
    assert [s["Name"] for s in made] == ["web"]
    assert d["serviceConnectResources"] == [{"discoveryName": "web", "discoveryArn": made[0]["Arn"]}]
    # A change of the configuration is a new deployment; turning it off drops it from the
    # deployments (the Cloud Map service stays, as on ECS).
    def primary(service):
        return next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    updated = ecs.update_service(service="web", serviceConnectConfiguration={"enabled": True, "services": [
        {"portName": "web", "clientAliases": [{"port": 8081}]}]})["service"]
    assert primary(updated)["id"] != d["id"]
    assert primary(updated)["serviceConnectConfiguration"]["services"][0]["clientAliases"][0]["port"] == 8081
    same = ecs.update_service(service="web", desiredCount=0)["service"]
    assert primary(same)["id"] == primary(updated)["id"], "an unchanged configuration is no new deployment"
    off = ecs.update_service(service="web", serviceConnectConfiguration={"enabled": False})["service"]
    assert all("serviceConnectConfiguration" not in d for d in off["deployments"])
    assert primary(off)["id"] != primary(updated)["id"]
    assert [s["Name"] for s in sd.list_services()["Services"]] == ["web"]
    # A bad update changes nothing.
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.update_service(service="web", serviceConnectConfiguration={"enabled": True, "services": [
            {"portName": "nothere"}]})
    assert primary(ecs.describe_services(services=["web"])["services"][0])["id"] == primary(off)["id"]
