"""Crash-safe resume: a run killed with SIGKILL, resumed in a new process, ends as if never killed.

A child process runs a chain of 30 ``step`` activations (each updates ``runtime.state``,
records an event, emits the next step, every 5th also an ``audit`` token, every 7th makes
a recorded effect) and is killed at a chosen point: ``CRASH_AT=step15:mid`` kills it inside
activation 15, after it changed the state and recorded an event; ``:start`` as an
activation begins (just after the previous one completed); ``:after_effect`` right after a
recorded effect. Another test kills the child from outside at a random moment. A second,
new process then resumes the run from the store alone, and the tests check:

* every activation appears exactly once among the completed ones (``node_completed`` per
  token), and the set of completed tokens is the uncrashed run's;
* activations completed in the store before the resume never run again in the resuming
  process, and every other activation (including the one killed midway) runs there once;
* ``runtime.state`` equals the uncrashed run's, in the resumed report and rebuilt from the
  store; the resumed report covers the whole run;
* the hash chain checks, with the run's end recorded; a recorded effect is never called twice.

Both SQLite and PostgreSQL, in ``sync`` and ``batch`` durability (in ``batch`` the crash may
lose the last steps not yet committed: they run again, so the invariants hold, not the
event count).
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import RunNotFoundError

from ._support import (
    assert_chain,
    completed_tokens,
    dequeued_tokens,
    load_module,
    opened,
    outcome,
    parse,
    run_child,
    start_child,
    stored_entries,
    token_targets,
    write_module,
)

STEPS = 30
EFFECTS = [7, 14, 21, 28]

WORKLOAD = '''
"""A chain of 30 steps with a fan-out to an audit node; crashable at a chosen point."""

import os
import signal
import time

from codon_sdk import CodonWorkload

STEPS = 30


def _log(node, i):
    path = os.environ.get("ACTIVATION_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} {node} {i}\\n")


def _crash_if(point):
    if os.environ.get("CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _fetch(i):
    path = os.environ.get("EFFECT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{i}\\n")
    return i * 10


def step(i, *, runtime, context):
    _log("step", i)
    _crash_if(f"step{i}:start")
    delay = os.environ.get("STEP_DELAY")
    if delay:
        time.sleep(float(delay))
    runtime.state["count"] = runtime.state.get("count", 0) + 1
    runtime.state.setdefault("trail", []).append(i)
    runtime.record_event("step_seen", metadata={"i": i})
    if i % 7 == 0:
        runtime.state[f"fx{i}"] = runtime.effect("fetch", _fetch, i)
        _crash_if(f"step{i}:after_effect")
    _crash_if(f"step{i}:mid")
    if i < STEPS:
        runtime.emit("step", i + 1)
    if i % 5 == 0:
        runtime.emit("audit", i)
    return i


def audit(i, *, runtime, context):
    _log("audit", i)
    runtime.state.setdefault("audited", []).append(i)
    runtime.state["audits"] = runtime.state.get("audits", 0) + 1
    _crash_if(f"audit{i}:mid")
    return f"audit-{i}"


workload = CodonWorkload(name="crash-chain", version="1", org_namespace="durable-tests")
workload.add_node(step, "step", "worker")
workload.add_node(audit, "audit", "auditor")
workload.add_edge("step", "step")
workload.add_edge("step", "audit")
'''

CRASH_POINTS = [
    pytest.param("step1:mid", id="first-activation"),
    pytest.param("step16:start", id="between-activations"),
    pytest.param("step14:after_effect", id="after-a-recorded-effect"),
    pytest.param("step15:mid", id="middle"),
    pytest.param("audit30:mid", id="last-activation"),
]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash_workload")


@pytest.fixture(scope="module")
def workload_path(module_dir: Path) -> Path:
    return write_module(module_dir, "crash_workload", WORKLOAD)


@pytest.fixture(scope="module")
def reference(workload_path: Path) -> dict[str, Any]:
    """The uncrashed run, in this process, without a store: state, results, completed tokens."""
    workload = load_module(workload_path).workload
    report = workload.execute(1, deployment_id="durable", entry_nodes=["step"])
    events = list(report.events())
    return {
        "state": report.state,
        "results": {node: report.node_results(node) for node in report.results},
        "completed": completed_tokens(events),
        "activations": {token_targets(events)[t] for t in completed_tokens(events)},
    }


def _execute_spec(url: str, run_id: str, durability: str) -> dict[str, Any]:
    return {
        "payload": 1,
        "kwargs": {
            "store": url,
            "run_id": run_id,
            "durability": durability,
            "entry_nodes": ["step"],
        },
    }


def _resume(
    workload_path: Path, url: str, run_id: str, durability: str, logs: dict[str, Path]
) -> dict[str, Any]:
    """Resume the run in a new process; return its outcome."""
    resumed = run_child(
        workload_path,
        "resume",
        run_id=run_id,
        kwargs={"store": url, "durability": durability},
        env={"ACTIVATION_LOG": str(logs["activations"]), "EFFECT_LOG": str(logs["effects"])},
    )
    result = outcome(resumed)
    assert result["exit_code"] == 0, result
    return result


def _activation_of(point: str) -> tuple[str, int]:
    """``"step15:mid"`` -> ``("step", 15)``."""
    match = re.fullmatch(r"([a-z]+)(\d+):\w+", point)
    assert match is not None
    return match[1], int(match[2])


def _activation_log(path: Path) -> list[tuple[int, str, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        pid, node, i = line.split()
        rows.append((int(pid), node, int(i)))
    return rows


def _assert_recovered(
    *,
    url: str,
    run_id: str,
    reference: dict[str, Any],
    before: list[bytes],
    resumed: dict[str, Any],
    logs: dict[str, Path],
    workload_path: Path,
) -> None:
    """Every invariant a crash-and-resume must keep (see the module docstring)."""
    # the crash left a consistent prefix of the run, without its end
    assert_chain(before, run_id, require_end=False)
    before_events = parse(before)
    assert "run_finished" not in [e.type for e in before_events]
    done_before = {token_targets(before_events)[t] for t in completed_tokens(before_events)}

    # the resumed run finished, and its report covers the whole run
    assert resumed.get("status") == "completed", resumed
    assert resumed["state"] == reference["state"]
    assert resumed["results"] == reference["results"]

    entries = stored_entries(url, run_id)
    assert_chain(entries, run_id, require_end=True)
    events = parse(entries)
    assert entries[: len(before)] == before, "the resume rewrote events stored before the crash"
    assert resumed["event_count"] == len(entries)
    completed = completed_tokens(events)
    assert set(completed.values()) == {1}, f"tokens completed more than once: {completed}"
    assert completed == reference["completed"]
    resumes = [e for e in events if e.type == "run_resumed"]
    assert len(resumes) == 1
    assert resumes[0].metadata["reason"] == "recovery"
    assert resumes[0].seq == len(before)

    # completed activations never ran again; everything else ran exactly once after the crash
    ran_after = [
        (node, i) for pid, node, i in _activation_log(logs["activations"]) if pid == resumed["pid"]
    ]
    assert not set(ran_after) & done_before, "an activation completed before the crash ran again"
    assert Counter(ran_after) == Counter(reference["activations"] - done_before)

    # the store agrees: index row released and complete, state rebuilt from the ledger
    with opened(url) as store:
        info = store.get_run(run_id)
        assert (info.status, info.owner, info.event_count) == ("completed", None, len(entries))
        rebuilt = load_module(workload_path).workload.resume(run_id, store=store)
    assert rebuilt.state == reference["state"]
    assert rebuilt.event_count == len(entries)


@pytest.mark.parametrize("durability", ["sync", "batch"])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_run_killed_at_a_chosen_point_resumes_in_a_new_process_as_if_never_killed(
    ledger_url: str,
    tmp_path: Path,
    workload_path: Path,
    reference: dict[str, Any],
    point: str,
    durability: str,
) -> None:
    run_id = f"crash-{point.replace(':', '-')}-{durability}"
    logs = {"activations": tmp_path / "activations.log", "effects": tmp_path / "effects.log"}
    crashed = run_child(
        workload_path,
        "execute",
        env={
            "CRASH_AT": point,
            "ACTIVATION_LOG": str(logs["activations"]),
            "EFFECT_LOG": str(logs["effects"]),
        },
        **_execute_spec(ledger_url, run_id, durability),
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    crash_activation = _activation_of(point)
    killed_in = [(n, i) for _, n, i in _activation_log(logs["activations"])][-1]
    assert killed_in == crash_activation

    before = stored_entries(ledger_url, run_id)
    with opened(ledger_url) as store:
        assert store.get_run(run_id).status == "running"
    if durability == "sync":
        # every activation that completed before the kill is in the store, each whole (sync
        # commits once per step boundary); of the killed activation only what a barrier (a
        # recorded effect) committed can be there
        started = dequeued_tokens(parse(before)) - completed_tokens(parse(before))
        targets = token_targets(parse(before))
        assert [targets[t] for t in started] == ([crash_activation] if "effect" in point else [])
        completed = {targets[t] for t in completed_tokens(parse(before))}
        earlier = {(n, i) for _, n, i in _activation_log(logs["activations"])[:-1]}
        assert earlier - {crash_activation} <= completed

    resumed = _resume(workload_path, ledger_url, run_id, durability, logs)
    _assert_recovered(
        url=ledger_url,
        run_id=run_id,
        reference=reference,
        before=before,
        resumed=resumed,
        logs=logs,
        workload_path=workload_path,
    )
    log = _activation_log(logs["activations"])
    ran_after = [(n, i) for pid, n, i in log if pid == resumed["pid"]]
    assert crash_activation in ran_after, "the activation killed midway did not run again"
    # a recorded effect is served from the ledger on resume, never called again
    assert sorted(int(x) for x in logs["effects"].read_text().split()) == EFFECTS


@pytest.mark.parametrize("attempt", range(2))
@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_a_run_killed_from_outside_at_a_random_moment_resumes_as_if_never_killed(
    ledger_url: str,
    tmp_path: Path,
    workload_path: Path,
    reference: dict[str, Any],
    durability: str,
    attempt: int,
) -> None:
    """The parent kills the child (Popen.kill) once the store shows a random number of events."""
    seed = random.randrange(1 << 30)
    threshold = random.Random(seed).randint(4, 150)
    run_id = f"kill-{durability}-{attempt}"
    logs = {"activations": tmp_path / "activations.log", "effects": tmp_path / "effects.log"}
    child = start_child(
        workload_path,
        "execute",
        env={
            "STEP_DELAY": "0.01",
            "ACTIVATION_LOG": str(logs["activations"]),
            "EFFECT_LOG": str(logs["effects"]),
        },
        **_execute_spec(ledger_url, run_id, durability),
    )
    try:
        with opened(ledger_url) as store:
            deadline = time.monotonic() + 60
            while child.poll() is None and time.monotonic() < deadline:
                try:
                    if store.get_run(run_id).event_count >= threshold:
                        break
                except RunNotFoundError:
                    pass
                time.sleep(0.003)
        child.kill()
        _, err = child.communicate(timeout=30)
    except BaseException:
        child.kill()
        child.wait()
        raise
    assert child.returncode == -signal.SIGKILL, (
        f"the run ended before the kill (seed {seed}, threshold {threshold}): {err}"
    )
    before = stored_entries(ledger_url, run_id)
    resumed = _resume(workload_path, ledger_url, run_id, durability, logs)
    _assert_recovered(
        url=ledger_url,
        run_id=run_id,
        reference=reference,
        before=before,
        resumed=resumed,
        logs=logs,
        workload_path=workload_path,
    )


def test_resume_after_a_crash_records_who_resumed_it(
    sqlite_url: str, tmp_path: Path, workload_path: Path, reference: dict[str, Any]
) -> None:
    """``actor`` is recorded on the ``run_resumed`` event of a recovery, not only of an approval."""
    crashed = run_child(
        workload_path,
        "execute",
        env={"CRASH_AT": "step3:mid"},
        **_execute_spec(sqlite_url, "crash-actor", "sync"),
    )
    assert crashed.returncode == -signal.SIGKILL
    resumed = outcome(
        run_child(
            workload_path,
            "resume",
            run_id="crash-actor",
            kwargs={"store": sqlite_url, "actor": "ops-oncall"},
        )
    )
    assert resumed.get("status") == "completed", resumed
    assert resumed["state"] == reference["state"]
    events = parse(stored_entries(sqlite_url, "crash-actor"))
    (event,) = [e for e in events if e.type == "run_resumed"]
    assert event.actor == "ops-oncall"
    assert event.metadata["reason"] == "recovery"


def test_a_crashed_run_lists_as_running_until_it_is_resumed(
    sqlite_url: str, workload_path: Path
) -> None:
    """After SIGKILL the index says ``running``, held by the dead owner; resume releases it."""
    crashed = run_child(
        workload_path,
        "execute",
        env={"CRASH_AT": "step2:mid"},
        **_execute_spec(sqlite_url, "crash-index", "sync"),
    )
    assert crashed.returncode == -signal.SIGKILL
    with opened(sqlite_url) as store:
        info = store.get_run("crash-index")
        assert info.status == "running"
        assert info.owner is not None
        assert info.finished_at is None
    resumed = run_child(workload_path, "resume", run_id="crash-index", kwargs={"store": sqlite_url})
    result = outcome(resumed)
    assert result.get("status") == "completed", result
    with opened(sqlite_url) as store:
        info = store.get_run("crash-index")
        assert (info.status, info.owner) == ("completed", None)
        assert info.finished_at is not None
