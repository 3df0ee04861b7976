"""Operating runs from the command line, as subprocesses against SQLite and PostgreSQL:
the approval loop (execute until interrupt, ``runs list --pending``, ``codon resume``),
``codon fork``, stale runs and ``codon recover`` run twice at once, and the bad cases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ._support import opened, parse, stored_entries

AGENT = """
import os, sys, time
from codon_sdk import CodonWorkload

MARKS = os.environ.get("CODON_TEST_MARKS")
__codon_identity_ignore__ = ("MARKS",)  # test configuration, not logic


def mark(name):
    if MARKS:
        with open(MARKS, "a") as f:
            f.write(name + "\\n")


def plan(message, *, runtime, context):
    runtime.state["topic"] = message
    runtime.emit("review", {"draft": f"about {message}"})
    return "planned"


def review(message, *, runtime, context):
    verdict = runtime.interrupt("approve the draft?", payload=message)
    mark("review " + context["run_id"])
    return {"verdict": verdict}


def slow(message, *, runtime, context):
    if os.environ.get("CODON_TEST_HANG"):
        print("ready", flush=True)
        time.sleep(60)
    mark("slow " + context["run_id"])
    return "slow done"


workload = CodonWorkload(name="ops", version="1", org_namespace="durable-tests")
workload.add_node(plan, "plan", "planner")
workload.add_node(review, "review", "human")
workload.add_edge("plan", "review")

crashy = CodonWorkload(name="crashy", version="1", org_namespace="durable-tests")
crashy.add_node(slow, "slow", "worker")
"""


def _codon(folder: Path, url: str, *args: str, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args, "--ledger", url],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def _python(folder: Path, code: str, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "opsagent.py").write_text(AGENT)
    return tmp_path


def test_the_approval_loop_runs_from_the_command_line(folder: Path, ledger_url: str) -> None:
    url = ledger_url
    started = _python(
        folder,
        "import opsagent\n"
        f"r = opsagent.workload.execute('tides', deployment_id='d', store={url!r}, "
        "run_id='loop')\nassert r.status == 'interrupted', r.status",
    )
    assert started.returncode == 0, started.stderr

    pending = _codon(folder, url, "runs", "list", "--pending")
    assert pending.returncode == 0, pending.stderr
    assert "loop" in pending.stdout
    assert "approve the draft?" in pending.stdout
    assert '"draft":"about tides"' in pending.stdout
    as_json = orjson.loads(_codon(folder, url, "runs", "list", "--pending", "--json").stdout)
    assert [(r["run_id"], r["pending"]["node"]) for r in as_json] == [("loop", "review")]

    no_input = _codon(folder, url, "resume", "loop", "--workload", "opsagent:workload")
    assert no_input.returncode == 2
    assert "waits for an input" in no_input.stderr
    bad_json = _codon(
        folder, url, "resume", "loop", "--workload", "opsagent:workload", "--input", "{nope"
    )
    assert bad_json.returncode == 2
    assert "--input must be JSON" in bad_json.stderr
    before = stored_entries(url, "loop")

    done = _codon(
        folder, url, "resume", "loop", "--workload", "opsagent:workload",
        "--input", '{"approved": true}', "--actor", "alice",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "run loop: completed"
    events = parse(stored_entries(url, "loop"))
    assert len(events) > len(before)
    (resumed,) = [e for e in events if e.type == "run_resumed"]
    assert resumed.actor == "alice"
    assert resumed.metadata["input"] == {"approved": True}

    again = _codon(
        folder, url, "resume", "loop", "--workload", "opsagent:workload", "--input", '"no"'
    )
    assert again.returncode == 2
    assert "already ended (completed)" in again.stderr
    assert parse(stored_entries(url, "loop")) == events
    assert _codon(folder, url, "runs", "list", "--pending").stdout == "no runs waiting for input\n"

    forked = _codon(
        folder, url, "fork", "loop", "--at", "3", "--workload", "opsagent:workload",
        "--state-patch", '{"topic": "storms"}', "--run-id", "loop-child", "--json",
    )  # fmt: skip
    assert forked.returncode == 0, forked.stderr
    assert orjson.loads(forked.stdout) == {"run_id": "loop-child", "status": "interrupted"}
    child = _codon(folder, url, "runs", "list", "--json")
    rows = {r["run_id"]: r for r in orjson.loads(child.stdout)}
    assert rows["loop-child"]["parent_run_id"] == "loop"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["resume", "nope", "--workload", "opsagent:workload", "--input", "1"], "nope"),
        (["resume", "loop", "--workload", "nosuchmodule:workload", "--input", "1"], "import"),
        (["fork", "nope", "--at", "1", "--workload", "opsagent:workload"], "nope"),
        (["fork", "loop", "--at", "1", "--workload", "opsagent:workload", "--state-patch", "[1]"],
         "JSON object"),
        (["recover", "--workload", "opsagent"], "MODULE:ATTR"),
    ],
)  # fmt: skip
def test_bad_operations_exit_2_with_one_line_and_write_nothing(
    folder: Path, sqlite_url: str, args: list[str], says: str
) -> None:
    started = _python(
        folder,
        "import opsagent\n"
        f"opsagent.workload.execute('x', deployment_id='d', store={sqlite_url!r}, run_id='loop')",
    )
    assert started.returncode == 0, started.stderr
    before = stored_entries(sqlite_url, "loop")
    done = _codon(folder, sqlite_url, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert stored_entries(sqlite_url, "loop") == before


def _until_stored(url: str, run_id: str) -> None:
    """Wait until the run's start is committed (batch durability writes in the background)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with opened(url) as store:
            if store.has_run(run_id) and store.get_run(run_id).event_count >= 2:
                return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} was never stored")


def test_recover_twice_at_once_completes_each_crashed_run_exactly_once(
    folder: Path, ledger_url: str
) -> None:
    url = ledger_url
    marks = folder / "marks.txt"
    for n in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c",
             f"import opsagent\nopsagent.crashy.execute('x', deployment_id='d', store={url!r}, "
             f"run_id='crash-{n}')"],
            cwd=folder, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "CODON_TEST_HANG": "1"},
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        _until_stored(url, f"crash-{n}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()

    listed = orjson.loads(_codon(folder, url, "runs", "list", "--status", "stale", "--json").stdout)
    assert sorted(r["run_id"] for r in listed) == ["crash-0", "crash-1", "crash-2"]
    assert {(r["status"], r["stored_status"]) for r in listed} == {("stale", "running")}

    cmd = [sys.executable, "-m", "codon_sdk", "recover", "--workload", "opsagent:crashy",
           "--ledger", url, "--json"]  # fmt: skip
    env = {**os.environ, "CODON_TEST_MARKS": str(marks)}
    both = [subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    for proc in both:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes += orjson.loads(out)
    completed = sorted(o["run_id"] for o in outcomes if o["status"] == "completed")
    assert completed == ["crash-0", "crash-1", "crash-2"], outcomes
    assert all(o["status"] in ("completed", "skipped") for o in outcomes)
    ran = sorted(marks.read_text().splitlines())
    assert ran == ["slow crash-0", "slow crash-1", "slow crash-2"]
    assert _codon(folder, url, "runs", "list", "--status", "stale", "--json").stdout.strip() == "[]"
