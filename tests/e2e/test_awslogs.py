"""The awslogs log driver on both runtime drivers: a task's output reaches CloudWatch Logs in
ECS's stream (`prefix/container/task-id`), multi-line events gathered by a pattern, and a
missing group without `awslogs-create-group` fails the task as ECS fails it."""

from ecs_helpers import until, wait_task

SCRIPT = ("echo '2026-11-30 first line'; echo '2026-11-30 Traceback:' >&2; echo '  at a()' >&2; echo '  at b()' >&2; "
          "echo '2026-11-30 done'")


def awslogs(group, **extra):
    options = {"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web", **extra}
    return {"logDriver": "awslogs", "options": options}


def test_output_reaches_cloudwatch_logs_in_ecs_streams(agent_berth, registry):
    ecs, logs = agent_berth.client(), agent_berth.client("logs")
    ecs.register_task_definition(family="shout", containerDefinitions=[
        {"name": "app", "image": registry, "memory": 32, "command": ["sh", "-c", SCRIPT],
         "logConfiguration": awslogs("/ecs/shout", **{"awslogs-create-group": "true",
                                                      "awslogs-multiline-pattern": "^\\d{4}-"})}])
    arn = ecs.run_task(taskDefinition="shout")["tasks"][0]["taskArn"]
    task = wait_task(ecs, arn, "STOPPED")
    assert task["containers"][0].get("exitCode") == 0, task
    stream = f"web/app/{arn.rsplit('/', 1)[1]}"

    def events():
        got = logs.get_log_events(logGroupName="/ecs/shout", logStreamName=stream, startFromHead=True)
        return [e["message"] for e in got["events"]]

    want = ["2026-11-30 first line", "2026-11-30 Traceback:\n  at a()\n  at b()", "2026-11-30 done"]
    # stdout and stderr are separate streams of the container: their order between them is
    # the runtime's; each keeps its own.
    got = until(lambda: (lambda e: e if len(e) == 3 else None)(events()), what="the three events")
    assert sorted(got) == sorted(want), got
    described = logs.describe_log_streams(logGroupName="/ecs/shout")["logStreams"]
    assert [s["logStreamName"] for s in described] == [stream]


def test_a_missing_group_fails_the_task_unless_created(agent_berth, registry):
    ecs = agent_berth.client()
    ecs.register_task_definition(family="nogroup", containerDefinitions=[
        {"name": "app", "image": registry, "memory": 32, "command": ["true"], "logConfiguration": awslogs("/ecs/absent")}])
    task = wait_task(ecs, ecs.run_task(taskDefinition="nogroup")["tasks"][0]["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart", task
    reason = task["containers"][0].get("reason", "") + task["stoppedReason"]
    assert "failed to initialize logging driver" in reason and "The specified log group does not exist." in reason, task
    # Made by hand, the same definition runs.
    agent_berth.client("logs").create_log_group(logGroupName="/ecs/absent")
    task = wait_task(ecs, ecs.run_task(taskDefinition="nogroup")["tasks"][0]["taskArn"], "STOPPED")
    assert task["containers"][0].get("exitCode") == 0, task


def test_a_chatty_container_ships_every_line_once_and_in_order(agent_berth, registry):
    """Output written faster than one batch a second: the agent follows the kept output
    (Docker's json-file, the oci shim's file) in large reads, and every line arrives once, in
    order, in batches PutLogEvents takes."""
    ecs, logs = agent_berth.client(), agent_berth.client("logs")
    lines = 60_000
    ecs.register_task_definition(family="chatty", containerDefinitions=[
        {"name": "app", "image": registry, "memory": 64,
         "command": ["sh", "-c", f"seq 1 {lines} | sed 's/.*/line &/'; echo oops >&2"],
         "logConfiguration": awslogs("/ecs/chatty", **{"awslogs-create-group": "true"})}])
    arn = ecs.run_task(taskDefinition="chatty")["tasks"][0]["taskArn"]
    wait_task(ecs, arn, "STOPPED")
    stream = f"web/app/{arn.rsplit('/', 1)[1]}"

    def everything():
        got, token = [], None
        while True:
            page = logs.get_log_events(logGroupName="/ecs/chatty", logStreamName=stream, startFromHead=True,
                                       **({"nextToken": token} if token else {}))
            got += [e["message"] for e in page["events"]]
            if page["nextForwardToken"] == token:
                return got
            token = page["nextForwardToken"]

    got = until(lambda: (lambda e: e if len(e) >= lines + 1 else None)(everything()), what="every line")
    assert len(got) == lines + 1, len(got)
    assert [m for m in got if m != "oops"] == [f"line {n}" for n in range(1, lines + 1)]
    assert "oops" in got


def test_a_restarted_agent_goes_on_shipping_where_it_stopped(agent_berth, registry):
    """`berth up` stops while a container is writing, and starts again: the agent goes on from
    the output it recorded as sent. No line is lost and the order holds; a batch that was in
    flight when the agent stopped may come again (once, right after itself)."""
    ecs, logs = agent_berth.client(), agent_berth.client("logs")
    lines = 300
    script = f"i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo \"line $i\"; sleep 0.01; done"
    ecs.register_task_definition(family="steady", containerDefinitions=[
        {"name": "app", "image": registry, "memory": 32, "command": ["sh", "-c", script],
         "logConfiguration": awslogs("/ecs/steady", **{"awslogs-create-group": "true"})}])
    arn = ecs.run_task(taskDefinition="steady")["tasks"][0]["taskArn"]
    stream = f"web/app/{arn.rsplit('/', 1)[1]}"

    def messages(client):
        try:
            return [e["message"] for e in client.get_log_events(
                logGroupName="/ecs/steady", logStreamName=stream, startFromHead=True)["events"]]
        except client.exceptions.ResourceNotFoundException:
            return []

    until(lambda: len(messages(logs)) >= 20, what="the first lines")
    agent_berth.restart()
    ecs, logs = agent_berth.client(), agent_berth.client("logs")
    wait_task(ecs, arn, "STOPPED", timeout=120)
    got = until(lambda: (lambda m: m if f"line {lines}" in m else None)(messages(logs)), what="the last line")
    numbers = [int(m.split()[1]) for m in got]
    # Every line in order, none skipped; a line seen before only as a repeat.
    expected = 1
    for n in numbers:
        if n == expected:
            expected += 1
        else:
            assert n < expected, (n, expected, numbers)
    assert expected == lines + 1, numbers
    # The repeats, if any, are one run of consecutive lines.
    repeats = [n for i, n in enumerate(numbers) if n in numbers[:i]]
    assert repeats == sorted(repeats) and (not repeats or repeats == list(range(repeats[0], repeats[-1] + 1))), repeats
    # What was sent well before the stop was recorded as sent: never sent again.
    assert 1 not in repeats, repeats
