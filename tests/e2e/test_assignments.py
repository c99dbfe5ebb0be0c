"""The assignment channel agents watch: GET /berth/v1/assignments, SigV4-signed, answers the
live tasks placed on one instance and long-polls for changes; each poll is a heartbeat."""

import json
import threading
import urllib.parse
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from ecs_helpers import AGENT_RESOURCES


def poll(berth, query, sign=True, timeout=30):
    # Encode values as a real client does: SigV4 signs the percent-encoded query.
    pairs = [tuple(p.split("=", 1)) for p in query.split("&")]
    url = f"{berth.endpoint}/berth/v1/assignments?{urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe='')}"
    request = botocore.awsrequest.AWSRequest(method="GET", url=url)
    if sign:
        creds = botocore.credentials.Credentials(berth.access_key, berth.secret_key)
        botocore.auth.SigV4Auth(creds, "ecs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, headers=dict(prepared.headers), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def setup(ecs):
    ecs.register_task_definition(family="job", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}])
    arn = ecs.register_container_instance(totalResources=AGENT_RESOURCES)["containerInstance"]["containerInstanceArn"]
    return arn, arn.rsplit("/", 1)[1]


def test_poll_lists_live_tasks_of_the_instance(berth, ecs):
    arn, iid = setup(ecs)
    task = ecs.run_task(taskDefinition="job")["tasks"][0]
    status, body = poll(berth, f"cluster=default&containerInstance={iid}")
    assert status == 200
    assert [t["taskArn"] for t in body["tasks"]] == [task["taskArn"]]
    assert body["tasks"][0]["desiredStatus"] == "RUNNING"
    assert body["revision"] > 0
    ecs.stop_task(task=task["taskArn"])
    status, body = poll(berth, f"cluster=default&containerInstance={arn}")
    assert status == 200 and body["tasks"] == []


def test_long_poll_returns_when_a_task_is_placed(berth, ecs):
    _, iid = setup(ecs)
    _, first = poll(berth, f"cluster=default&containerInstance={iid}")
    assert first["tasks"] == []
    placed = {}

    def place_later():
        time.sleep(0.5)
        placed["arn"] = ecs.run_task(taskDefinition="job")["tasks"][0]["taskArn"]

    t = threading.Thread(target=place_later)
    started = time.monotonic()
    t.start()
    status, body = poll(berth, f"cluster=default&containerInstance={iid}&since={first['revision']}&wait=20")
    waited = time.monotonic() - started
    t.join()
    assert status == 200
    assert [x["taskArn"] for x in body["tasks"]] == [placed["arn"]]
    assert waited < 15, f"the poll should return on the change, not at its timeout ({waited:.1f}s)"
    assert body["revision"] > first["revision"]


def test_long_poll_times_out_empty_handed_when_nothing_changes(berth, ecs):
    _, iid = setup(ecs)
    _, first = poll(berth, f"cluster=default&containerInstance={iid}")
    started = time.monotonic()
    status, body = poll(berth, f"cluster=default&containerInstance={iid}&since={first['revision']}&wait=1")
    assert status == 200 and body["tasks"] == []
    assert time.monotonic() - started >= 0.9


def test_poll_refuses_bad_requests(berth, ecs):
    _, iid = setup(ecs)
    status, body = poll(berth, f"cluster=default&containerInstance={iid}", sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    status, body = poll(berth, "cluster=default&containerInstance=nope")
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    status, body = poll(berth, f"cluster=nope&containerInstance={iid}")
    assert (status, body["__type"]) == (400, "ClusterNotFoundException")
    status, body = poll(berth, f"cluster=default&containerInstance={iid}&since=abc")
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    status, body = poll(berth, f"cluster=default&containerInstance={iid}&since=1&changes=yes")
    assert (status, body["__type"], body["message"]) == (400, "InvalidParameterException", "changes must be 0 or 1.")


def test_changes_only_answers_carry_what_changed_and_the_arns_of_all(berth, ecs):
    _, iid = setup(ecs)
    first, second, third = (ecs.run_task(taskDefinition="job")["tasks"][0]["taskArn"] for _ in range(3))
    _, whole = poll(berth, f"cluster=default&containerInstance={iid}&changes=1")
    # The first answer (since 0) is whole: no live list.
    assert sorted(t["taskArn"] for t in whole["tasks"]) == sorted([first, second, third]) and "live" not in whole
    # first, never claimed, is stopped at once (no longer live); second and third run (the
    # agent's own reports, not sent back to it), and third is then asked to stop.
    ecs.stop_task(task=first)
    for arn in (second, third):
        ecs.submit_task_state_change(cluster="default", task=arn, status="RUNNING")
    ecs.stop_task(task=third)
    _, body = poll(berth, f"cluster=default&containerInstance={iid}&since={whole['revision']}&wait=5&changes=1")
    assert [(t["taskArn"], t["lastStatus"], t["desiredStatus"]) for t in body["tasks"]] == [
        (third, "RUNNING", "STOPPED")
    ]
    assert sorted(body["live"]) == sorted([second, third])
    # Nothing changed since: no tasks, both still live; without changes=1 the answer is whole.
    _, quiet = poll(berth, f"cluster=default&containerInstance={iid}&since={body['revision']}&wait=0&changes=1")
    assert quiet["tasks"] == [] and sorted(quiet["live"]) == sorted([second, third])
    _, full = poll(berth, f"cluster=default&containerInstance={iid}&since={body['revision']}&wait=0")
    assert sorted(t["taskArn"] for t in full["tasks"]) == sorted([second, third]) and "live" not in full


def test_an_agents_own_report_does_not_end_its_poll_but_a_stop_does(berth, ecs):
    _, iid = setup(ecs)
    task = ecs.run_task(taskDefinition="job")["tasks"][0]["taskArn"]
    _, whole = poll(berth, f"cluster=default&containerInstance={iid}&changes=1")
    answers = {}

    def wait_for(name, since, wait):
        started = time.monotonic()
        answers[name] = poll(berth, f"cluster=default&containerInstance={iid}&since={since}&wait={wait}&changes=1")[1]
        answers[name + "_s"] = time.monotonic() - started

    # The agent's RUNNING report neither ends the wait nor comes back to it.
    t = threading.Thread(target=wait_for, args=("report", whole["revision"], 3))
    t.start()
    time.sleep(0.3)
    ecs.submit_task_state_change(cluster="default", task=task, status="RUNNING")
    t.join()
    assert answers["report_s"] >= 2.5, f"a report alone ended the poll after {answers['report_s']:.1f}s"
    assert answers["report"]["tasks"] == [] and answers["report"]["live"] == [task]
    # Asked to stop: the waiting poll answers with the stop at once.
    t = threading.Thread(target=wait_for, args=("stop", answers["report"]["revision"], 20))
    t.start()
    time.sleep(0.3)
    ecs.stop_task(task=task)
    t.join()
    assert answers["stop_s"] < 15, f"the stop should end the poll, not its timeout ({answers['stop_s']:.1f}s)"
    assert [(x["taskArn"], x["desiredStatus"]) for x in answers["stop"]["tasks"]] == [(task, "STOPPED")]
