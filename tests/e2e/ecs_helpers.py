"""Shared helpers for the end-to-end tests (plain functions; fixtures live in conftest.py)."""

import contextlib
import time

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"

AGENT_RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096},
    {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
    {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
]

AGENT_ATTRIBUTES = [
    {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.17"},
    {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
    {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.19"},
    {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.21"},
    {"name": "com.amazonaws.ecs.capability.logging-driver.json-file"},
    {"name": "ecs.os-type", "value": "linux"},
]

AGENT_VERSION_INFO = {"agentVersion": "1.80.0", "agentHash": "abcdef12", "dockerVersion": "DockerVersion: 24.0.7"}


def assert_subset(sent, got, path="$"):
    """Every key/value in `sent` is present and equal in `got` (dicts: subset, lists: element-wise)."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path}: expected an object, got {got!r}"
        for k, v in sent.items():
            assert k in got, f"{path}.{k}: missing from response (response keys: {sorted(got)})"
            assert_subset(v, got[k], f"{path}.{k}")
    elif isinstance(sent, list):
        assert isinstance(got, list), f"{path}: expected a list, got {got!r}"
        assert len(got) == len(sent), f"{path}: sent {len(sent)} elements, got {len(got)}: {got!r}"
        for i, (s, g) in enumerate(zip(sent, got)):
            assert_subset(s, g, f"{path}[{i}]")
    else:
        assert got == sent, f"{path}: sent {sent!r}, got {got!r}"


@contextlib.contextmanager
def expect_error(code, message_prefix=None, message_contains=None):
    """Asserts the block raises botocore ClientError with this error code (and message)."""
    with pytest.raises(ClientError) as info:
        yield info
    err = info.value.response["Error"]
    assert err["Code"] == code, f"expected {code}, got {err['Code']}: {err.get('Message')!r}"
    if message_prefix is not None:
        assert err.get("Message", "").startswith(message_prefix), err
    if message_contains is not None:
        assert message_contains in err.get("Message", ""), err


def error_code(exc):
    return exc.response["Error"]["Code"]


def list_all(call, key, page_size=None, **kwargs):
    """Walks every page of a List* call and returns the concatenated `key` values; with
    `page_size`, asks for pages of that size and checks that none is larger."""
    out = []
    token = None
    if page_size is not None:
        kwargs["maxResults"] = page_size
    while True:
        args = dict(kwargs)
        if token:
            args["nextToken"] = token
        resp = call(**args)
        assert page_size is None or len(resp[key]) <= page_size, resp
        out.extend(resp[key])
        token = resp.get("nextToken")
        if not token:
            return out


def task_definition_state(ecs):
    """Everything the List* calls say about task definitions (to prove a refused call changed nothing)."""
    return {
        "active": list_all(ecs.list_task_definitions, "taskDefinitionArns", status="ACTIVE"),
        "inactive": list_all(ecs.list_task_definitions, "taskDefinitionArns", status="INACTIVE"),
        "families": list_all(ecs.list_task_definition_families, "families", status="ALL"),
    }


def container(name="app", image="busybox", memory=128, **extra):
    c = {"name": name, "image": image, "memory": memory}
    c.update(extra)
    return c


def register(ecs, family="app", containers=None, **extra):
    resp = ecs.register_task_definition(family=family, containerDefinitions=containers or [container()], **extra)
    return resp["taskDefinition"]


def register_instance(ecs, cluster="default", resources=None, attributes=None, **extra):
    """Registers a container instance the way the ECS agent does; returns the containerInstance."""
    args = dict(
        cluster=cluster,
        totalResources=resources or AGENT_RESOURCES,
        attributes=attributes or AGENT_ATTRIBUTES,
        versionInfo=AGENT_VERSION_INFO,
    )
    args.update(extra)
    return ecs.register_container_instance(**args)["containerInstance"]


def resource(resources, name):
    for r in resources:
        if r["name"] == name:
            return r
    raise AssertionError(f"no {name} in {resources!r}")


def describe_instance(ecs, arn, cluster="default"):
    resp = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    assert resp["failures"] == [], resp["failures"]
    return resp["containerInstances"][0]


def describe_task(ecs, arn, cluster="default", **kw):
    resp = ecs.describe_tasks(cluster=cluster, tasks=[arn], **kw)
    assert resp["failures"] == [], resp["failures"]
    return resp["tasks"][0]


def header(headers, name):
    """Case-insensitive header lookup."""
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def until(check, timeout=30, what="condition", interval=0.2):
    """The suite's one polling helper: calls `check` until it returns something truthy, and
    returns that; fails after `timeout` s naming `what` and the last value."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(interval)


def wait_task(ecs, arn, done="STOPPED", timeout=60, cluster=None):
    """Polls a task until `done` holds (a status name, or a predicate on the described task);
    returns the task."""
    holds = (lambda t: t["lastStatus"] == done) if isinstance(done, str) else done
    kwargs = {"cluster": cluster} if cluster else {}

    def check():
        task = ecs.describe_tasks(tasks=[arn], **kwargs)["tasks"][0]
        return task if holds(task) else None
    return until(check, timeout=timeout, what=f"task {arn} to reach {done}")
