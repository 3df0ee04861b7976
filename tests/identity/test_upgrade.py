"""Code changes under runs in flight: versions seen, stranded runs, check-upgrade, and the
three ways out (resume on the recorded logic, migrate, or a compatible declaration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.cli.test_runs_cli import codon

AGENT = """
from codon_sdk import CodonWorkload

GREETING = "hello"


def route(message, *, runtime, context):
    runtime.emit("ask", f"{GREETING} {message}")
    return "routed"


def ask(message, *, runtime, context):
    answer = runtime.interrupt("approve?", payload=message)
    if answer == "crash":
        import os
        os._exit(3)
    return f"{message}: {answer}"


workload = CodonWorkload(name="upgrade", version="1", org_namespace="tests")
workload.add_node(route, "route", "router")
workload.add_node(ask, "ask", "approver")
workload.add_edge("route", "ask")
"""

VERSIONS = {
    "agent_v1": AGENT,
    # changes what route emits: a replay of the recorded part diverges
    "agent_v2": AGENT.replace('GREETING = "hello"', 'GREETING = "hi"'),
    # the same decisions written differently: a replay is identical
    "agent_v3": AGENT.replace('return "routed"', 'return "rout" + "ed"'),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, source in VERSIONS.items():
        (tmp_path / f"{name}.py").write_text(source)
    return tmp_path


def _run(folder: Path, url: str, module: str, code: str) -> None:
    script = f"import {module}\n{code}\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 3), done.stderr


def _execute(folder: Path, url: str, module: str, run_id: str) -> None:
    _run(
        folder,
        url,
        module,
        f"{module}.workload.execute('x', deployment_id='dev', store={url!r}, run_id={run_id!r})",
    )


def test_stranded_runs_are_listed_checked_and_each_way_out_works(folder: Path) -> None:
    url = f"sqlite:///{folder / 'l.db'}"
    env = {"CODON_LEDGER_URL": url}
    for run_id in ("paused-a", "paused-b", "paused-c", "crashed"):
        _execute(folder, url, "agent_v1", run_id)
    # a process that dies inside a resumed node leaves the run running with a dead owner
    _run(
        folder,
        url,
        "agent_v1",
        f"agent_v1.workload.resume('crashed', store={url!r}, input='crash')",
    )

    none = codon("runs", "list", "--stranded", "agent_v1:workload", cwd=folder, env=env)
    assert none.returncode == 0, none.stderr
    assert none.stdout.startswith("no stranded runs")

    listed = codon("runs", "list", "--stranded", "agent_v2:workload", "--json", cwd=folder, env=env)
    assert listed.returncode == 0, listed.stderr
    stranded = {r["run_id"]: r for r in orjson.loads(listed.stdout)}
    assert set(stranded) == {"paused-a", "paused-b", "paused-c", "crashed"}
    assert stranded["crashed"]["state"] == "crashed"
    assert stranded["paused-a"]["state"] == "paused"
    assert stranded["paused-a"]["logic_change"]["reasons"] == {"route": ["constant GREETING"]}
    text = codon("runs", "list", "--stranded", "agent_v2:workload", cwd=folder, env=env)
    assert "route (constant GREETING)" in text.stdout

    diverged = codon(
        "runs", "check-upgrade", "paused-a", "--workload", "agent_v2:workload", cwd=folder, env=env
    )
    assert diverged.returncode == 1, diverged.stderr
    assert "DIVERGED" in diverged.stdout
    assert "changed  route: constant GREETING" in diverged.stdout
    clean = codon(
        "runs", "check-upgrade", "paused-a", "--workload", "agent_v3:workload", cwd=folder, env=env
    )
    assert clean.returncode == 0, clean.stderr + clean.stdout
    assert "identical (safe to migrate)" in clean.stdout

    # way out 1: the code that recorded it
    _run(
        folder,
        url,
        "agent_v1",
        f"assert agent_v1.workload.resume('paused-a', store={url!r}, input='ok').status "
        "== 'completed'",
    )
    # way out 2: migrate, recorded in the ledger
    _run(
        folder,
        url,
        "agent_v3",
        f"r = agent_v3.workload.resume('paused-b', store={url!r}, input='ok', "
        "allow_logic_change=True)\nassert r.status == 'completed', r.status",
    )
    # without either, the refusal names the node and the reason
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import agent_v2\nagent_v2.workload.resume('paused-c', store={url!r}, input='ok')",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "route (constant GREETING)" in refused.stderr

    after = codon("runs", "list", "--stranded", "agent_v2:workload", "--json", cwd=folder, env=env)
    assert {r["run_id"] for r in orjson.loads(after.stdout)} == {"paused-c", "crashed"}


def test_versions_lists_each_logic_id_with_its_runs(folder: Path) -> None:
    url = f"sqlite:///{folder / 'l.db'}"
    env = {"CODON_LEDGER_URL": url}
    _execute(folder, url, "agent_v1", "one")
    _execute(folder, url, "agent_v1", "two")
    _execute(folder, url, "agent_v2", "three")
    done = codon("versions", "--json", cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    found = orjson.loads(done.stdout)
    assert [v["runs"] for v in found] == [1, 2]  # newest first
    assert found[1]["statuses"] == {"interrupted": 2}
    assert all(v["workload"] == "upgrade:1" for v in found)
    by_logic = codon(
        "runs", "list", "--logic-id", found[1]["logic_id"], "--json", cwd=folder, env=env
    )
    assert sorted(r["run_id"] for r in orjson.loads(by_logic.stdout)) == ["one", "two"]
    text = codon("versions", "--workload", "upgrade", cwd=folder, env=env)
    assert "interrupted 2" in text.stdout
    assert codon("versions", "--workload", "nope", cwd=folder, env=env).stdout == "no runs\n"
