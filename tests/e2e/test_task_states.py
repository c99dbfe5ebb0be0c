"""The task-states channel agents report through: POST /berth/v1/task-states, SigV4-signed,
carries several SubmitTaskStateChange reports; each is applied as the operation applies it and
answered with its own result, in order."""

import json
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from ecs_helpers import AGENT_RESOURCES


def post(berth, body, sign=True):
    url = f"{berth.endpoint}/berth/v1/task-states"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=data,
                                             headers={"content-type": "application/json"})
    if sign:
        creds = botocore.credentials.Credentials(berth.access_key, berth.secret_key)
        botocore.auth.SigV4Auth(creds, "ecs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=data, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def tasks(ecs, n):
    ecs.register_task_definition(family="states", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}])
    ecs.register_container_instance(totalResources=AGENT_RESOURCES)
    return [ecs.run_task(taskDefinition="states")["tasks"][0]["taskArn"] for _ in range(n)]


def statuses(ecs, arns):
    described = {t["taskArn"]: t for t in ecs.describe_tasks(tasks=arns)["tasks"]}
    return [(described[a]["lastStatus"], described[a]["containers"][0]["lastStatus"]) for a in arns]


def test_each_report_of_a_batch_is_applied_with_its_own_result(berth, ecs):
    a, b, c = tasks(ecs, 3)
    running = {"status": "RUNNING", "containers": [{"containerName": "c", "status": "RUNNING"}]}
    status, body = post(berth, {"reports": [
        {"cluster": "default", "task": a, **running},
        {"cluster": "default", "task": "0123456789abcdef0123456789abcdef", **running},
        {"cluster": "default", "task": b, "status": "SLEEPING"},
        {"cluster": "default", "task": c, "status": "PENDING"},
        {"cluster": "default", "task": b, "status": "RUNNING", "containers": "c"},
        {"cluster": "nope", "task": c, **running},
    ]})
    assert status == 200, body
    results = body["results"]
    assert len(results) == 6
    assert results[0] == {} and results[3] == {}
    assert results[1]["error"]["__type"] == "InvalidParameterException"
    assert results[1]["error"]["status"] == 400
    assert results[2]["error"]["__type"] == "InvalidParameterException"
    assert "SLEEPING" in results[2]["error"]["message"]
    # A report the model refuses fails as the operation would.
    assert results[4]["error"]["__type"] == "SerializationException", results[4]
    assert "containers" in results[4]["error"]["message"]
    assert results[5]["error"]["__type"] == "ClusterNotFoundException", results[5]
    assert statuses(ecs, [a, b, c]) == [("RUNNING", "RUNNING"), ("PENDING", "PENDING"), ("PENDING", "PENDING")]


def test_reports_of_one_task_apply_in_the_order_sent(berth, ecs):
    arns = tasks(ecs, 4)
    # Claim, RUNNING and STOPPED of each task in one batch, the tasks interleaved: applied out
    # of order, a task's claim would come after its RUNNING and be refused.
    reports = []
    for status in ["PENDING", "RUNNING", "STOPPED"]:
        container = [] if status == "PENDING" else [{"containerName": "c", "status": status}]
        reports += [{"cluster": "default", "task": arn, "status": status, "containers": container} for arn in arns]
    status, body = post(berth, {"reports": reports})
    assert status == 200 and body["results"] == [{}] * len(reports), body
    assert statuses(ecs, arns) == [("STOPPED", "STOPPED")] * 4
    # A report that would move a task backwards fails alone, as SubmitTaskStateChange does.
    status, body = post(berth, {"reports": [{"cluster": "default", "task": arns[0], "status": "RUNNING"}]})
    assert status == 200 and body["results"][0]["error"]["__type"] == "InvalidParameterException", body


def test_bad_batches_are_refused_whole_and_change_nothing(berth, ecs):
    (a,) = tasks(ecs, 1)
    report = {"cluster": "default", "task": a, "status": "RUNNING"}
    status, body = post(berth, {"reports": [report]}, sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    status, body = post(berth, b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = post(berth, {"reports": [report], "more": True})
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = post(berth, {"reports": [report] * 1001})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert "at most 1000" in body["message"]
    assert statuses(ecs, [a]) == [("PENDING", "PENDING")]
    # An empty batch is answered with no results.
    assert post(berth, {"reports": []}) == (200, {"results": []})
