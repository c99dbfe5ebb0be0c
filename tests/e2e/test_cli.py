"""The commands for people: `berth run`, `berth ps`, `berth logs`, on both runtime drivers,
with the credentials `berth up` prints (as the quickstart exports them)."""

import subprocess

from conftest import BIN


def berth(b, *args, timeout=60):
    env = b.env()
    env["BERTH_DATA_DIR"] = str(b.data_dir)
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_run_prints_output_and_exits_with_the_containers_code(agent_berth, registry):
    out = berth(agent_berth, "run", "--memory", "32", registry, "--", "sh", "-c", "echo hello from run; echo oops >&2; exit 4")
    assert out.returncode == 4, out
    assert "hello from run" in out.stdout, out
    assert "oops" in out.stderr, out

    ps = berth(agent_berth, "ps", "-a")
    assert ps.returncode == 0, ps
    rows = [line.split() for line in ps.stdout.splitlines()[1:]]
    stopped = [r for r in rows if r[1].startswith("run-busybox:") and r[2] == "STOPPED"]
    assert stopped and "main(exit" in ps.stdout, ps.stdout

    logs = berth(agent_berth, "logs", stopped[0][0])
    assert logs.returncode == 0, logs
    assert "hello from run" in logs.stdout and "oops" in logs.stderr, logs


def test_run_detached_lists_the_running_task_and_a_missing_image_fails(agent_berth, registry):
    out = berth(agent_berth, "run", "-d", "--memory", "32", registry, "--", "sleep", "300")
    assert out.returncode == 0, out
    task_id = out.stdout.strip()
    ps = berth(agent_berth, "ps")
    assert any(line.startswith(task_id) and "RUNNING" in line for line in ps.stdout.splitlines()), ps.stdout
    missing = registry.rsplit("/", 1)[0] + "/nothing:1"
    failed = berth(agent_berth, "run", missing)
    assert failed.returncode == 125, failed
    assert "CannotPullContainerError" in failed.stderr, failed
