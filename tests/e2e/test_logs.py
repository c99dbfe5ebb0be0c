"""CloudWatch Logs against a real `berth`: boto3 and the AWS CLI (`aws logs tail`,
`filter-log-events`), token paging, and events surviving a restart and a kill -9."""

import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from ecs_helpers import until


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def logs(berth):
    return berth.client("logs")


def put(logs, group, stream, messages, start=None):
    start = start or now_ms()
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_groups_streams_and_events_with_boto3(logs):
    logs.create_log_group(logGroupName="/ecs/web", tags={"team": "web"})
    logs.create_log_stream(logGroupName="/ecs/web", logStreamName="web/web/0001")
    out = put(logs, "/ecs/web", "web/web/0001", ["one", "two", "three"])
    assert "rejectedLogEventsInfo" not in out
    group = logs.describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"][0]
    assert group["logGroupName"] == "/ecs/web" and group["arn"].endswith(":log-group:/ecs/web:*")
    stream = logs.describe_log_streams(logGroupName="/ecs/web")["logStreams"][0]
    assert stream["logStreamName"] == "web/web/0001" and stream["lastEventTimestamp"] >= stream["firstEventTimestamp"]
    got = logs.get_log_events(logGroupName="/ecs/web", logStreamName="web/web/0001", startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["one", "two", "three"]
    assert logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"] == {"team": "web"}
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="/ecs/web")
    assert e.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        put(logs, "/ecs/web", "missing", ["x"])
    assert e.value.response["Error"] == {"Code": "ResourceNotFoundException", "Message": "The specified log stream does not exist."}
    with pytest.raises(ClientError) as e:
        logs.put_metric_filter(logGroupName="/ecs/web", filterName="f", filterPattern="",
                               metricTransformations=[{"metricName": "m", "metricNamespace": "n", "metricValue": "1"}])
    assert e.value.response["Error"]["Code"] == "InvalidOperationException"


def test_get_log_events_pages_forward_to_a_repeated_token_and_back(logs):
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    start = now_ms() - 60_000
    put(logs, "g", "s", [f"m{i}" for i in range(25)], start=start)
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True, limit=10, **kwargs)
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == [f"m{i}" for i in range(25)]
    last = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10)
    assert [e["message"] for e in last["events"]] == [f"m{i}" for i in range(15, 25)]
    before = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10, nextToken=last["nextBackwardToken"])
    assert [e["message"] for e in before["events"]] == [f"m{i}" for i in range(5, 15)]


def test_filter_patterns_through_the_cli(berth, logs):
    berth.cli("logs", "create-log-group", "--log-group-name", "/ecs/api")
    berth.cli("logs", "create-log-stream", "--log-group-name", "/ecs/api", "--log-stream-name", "api/1")
    lines = [
        json.dumps({"level": "error", "latency": 250, "path": "/a"}),
        json.dumps({"level": "info", "latency": 20, "path": "/b"}),
        json.dumps({"level": "error", "latency": 20, "path": "/c"}),
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /x HTTP/1.0" 404 1534',
        "ERROR timeout talking to db",
    ]
    t = now_ms()
    events = json.dumps([{"timestamp": t + i, "message": m} for i, m in enumerate(lines)])
    berth.cli("logs", "put-log-events", "--log-group-name", "/ecs/api", "--log-stream-name", "api/1", "--log-events", events)

    def matched(pattern):
        out = berth.cli("logs", "filter-log-events", "--log-group-name", "/ecs/api", "--filter-pattern", pattern)
        return [e["message"] for e in out["events"]]

    assert matched('{ $.level = "error" }') == [lines[0], lines[2]]
    assert matched('{ $.level = "error" && $.latency > 100 }') == [lines[0]]
    assert matched("[ip, id, user, ts, request, status = 404, bytes]") == [lines[3]]
    assert matched("ERROR -db") == []
    assert matched("?timeout ?frank") == [lines[3], lines[4]]
    assert matched("") == lines
    bad = berth.cli("logs", "filter-log-events", "--log-group-name", "/ecs/api", "--filter-pattern", "{ $.level = ", check=False)
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr


def test_insights_queries_with_boto3(logs):
    logs.create_log_group(logGroupName="/ecs/q")
    logs.create_log_stream(logGroupName="/ecs/q", logStreamName="s")
    lines = [json.dumps({"level": level, "ms": ms}) for level, ms in [("error", 30), ("info", 5), ("error", 90), ("warn", 1)]]
    put(logs, "/ecs/q", "s", lines)
    now = int(time.time())
    qid = logs.start_query(logGroupName="/ecs/q", startTime=now - 300, endTime=now + 60,
                           queryString="stats count(*) as n, max(ms) as worst by level | sort n desc, level")["queryId"]
    out = until(lambda: (r := logs.get_query_results(queryId=qid))["status"] != "Running" and r, what="the query to finish")
    assert out["status"] == "Complete"
    rows = [{f["field"]: f["value"] for f in row} for row in out["results"]]
    assert rows == [{"level": "error", "n": "2", "worst": "90"}, {"level": "info", "n": "1", "worst": "5"},
                    {"level": "warn", "n": "1", "worst": "1"}]
    with pytest.raises(ClientError) as e:
        logs.start_query(logGroupName="/ecs/q", startTime=now - 300, endTime=now, queryString="stats nope(x)")
    assert e.value.response["Error"]["Code"] == "MalformedQueryException"


# `aws logs tail` is a command of the AWS CLI v2 only (Debian's awscli package; scripts/test
# installs it); the venv's v1 runs every other CLI test. Debian's v2 predates AWS_ENDPOINT_URL.
AWS_V2 = "/usr/bin/aws"


def tail(berth, *args):
    return [AWS_V2, "--endpoint-url", berth.endpoint, "logs", "tail", *args]


def test_aws_logs_tail_and_follow(berth, logs):
    logs.create_log_group(logGroupName="/ecs/tail")
    logs.create_log_stream(logGroupName="/ecs/tail", logStreamName="web/web/1")
    put(logs, "/ecs/tail", "web/web/1", ["first line", "second line"])
    out = subprocess.run(tail(berth, "/ecs/tail", "--format", "short"), env=berth.env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "first line" in out.stdout and "second line" in out.stdout
    follow = subprocess.Popen(tail(berth, "/ecs/tail", "--follow", "--format", "short"), env=berth.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "second line" in follow.stdout.readline() + follow.stdout.readline()
        put(logs, "/ecs/tail", "web/web/1", ["a line written later"])
        deadline = time.time() + 30
        line = ""
        while time.time() < deadline and "written later" not in line:
            line = follow.stdout.readline()
        assert "a line written later" in line
    finally:
        follow.kill()
        follow.wait()


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_events_survive_a_restart_and_a_kill(berth, how):
    logs = berth.client("logs")
    logs.create_log_group(logGroupName="durable")
    logs.create_log_stream(logGroupName="durable", logStreamName="s")
    for batch in range(20):
        put(logs, "durable", "s", [f"b{batch}-{i}" for i in range(50)])
    if how == "kill":
        berth.kill()
        berth.start()
    else:
        berth.restart()
    logs = berth.client("logs")
    until(lambda: logs.describe_log_groups()["logGroups"], what="the server to answer")
    out = logs.filter_log_events(logGroupName="durable")
    assert len(out["events"]) == 1000
    assert {e["message"] for e in out["events"]} == {f"b{b}-{i}" for b in range(20) for i in range(50)}
    put(logs, "durable", "s", ["after"])
    got = logs.get_log_events(logGroupName="durable", logStreamName="s", limit=1)
    assert [e["message"] for e in got["events"]] == ["after"]
