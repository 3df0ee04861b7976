"""Concurrency: many processes running workloads into one SQLite file or one PostgreSQL
database at once lose no event; two processes resuming one run: one proceeds, the other
gets ``RunConflictError``; a run cannot be resumed while it is executing."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, LedgerEvent
from codon_sdk.errors import RunConflictError
from codon_sdk.ledger._chain import check_chain
from codon_sdk.ledger._events import parse_entry

from ._support import (
    assert_chain,
    completed_tokens,
    load_module,
    open_gate,
    opened,
    outcome,
    parse,
    run_child,
    start_child,
    stored_entries,
    write_module,
)

WRITERS = 8

WORKER = '''
"""A loop of 40 activations with state, custom events and a fan-out; a real little agent."""

import os
import time

from codon_sdk import CodonWorkload


def plan(job, *, runtime, context):
    runtime.state["job"] = job
    for part in range(4):
        runtime.emit("work", {"job": job, "part": part, "left": 9})
    return f"planned {job}"


def work(task, *, runtime, context):
    delay = os.environ.get("STEP_SLEEP")
    if delay:
        time.sleep(float(delay))
    done = runtime.state.setdefault("done", [])
    done.append([task["part"], task["left"]])
    runtime.record_event("progress", metadata={"part": task["part"], "left": task["left"]})
    if task["left"]:
        runtime.emit("work", {**task, "left": task["left"] - 1})
    else:
        runtime.emit("report", task["part"])
    return task["left"]


def report(part, *, runtime, context):
    runtime.state[f"part{part}"] = "reported"
    return part


workload = CodonWorkload(name="worker", version="1", org_namespace="durable-tests")
workload.add_node(plan, "plan", "planner")
workload.add_node(work, "work", "worker")
workload.add_node(report, "report", "reporter")
workload.add_edge("plan", "work")
workload.add_edge("work", "work")
workload.add_edge("work", "report")
'''

HOLDER = '''
"""Three steps; CRASH_AT=<i> kills the process in step i; STEP_SLEEP slows every step."""

import os
import signal
import time

from codon_sdk import CodonWorkload


def step(i, *, runtime, context):
    if os.environ.get("CRASH_AT") == str(i):
        os.kill(os.getpid(), signal.SIGKILL)
    if i == 2:
        approval = runtime.interrupt("approve step 2") if os.environ.get("ASK") else None
        runtime.state["approval"] = approval
    delay = os.environ.get("STEP_SLEEP")
    if delay:
        time.sleep(float(delay))
    runtime.state[f"step{i}"] = os.getpid()
    if i < 3:
        runtime.emit("step", i + 1)
    return i


workload = CodonWorkload(name="holder", version="1", org_namespace="durable-tests")
workload.add_node(step, "step", "worker")
workload.add_edge("step", "step")
'''


def _shape(events: list[LedgerEvent]) -> list[tuple[Any, ...]]:
    """What a run recorded, without its run id, timestamps and hash links."""
    return [
        (e.seq, e.type, e.node, e.target, e.token_id, e.parent_token_id, e.payload, e.metadata)
        for e in events[1:]
    ]


def test_eight_processes_running_workloads_into_one_store_lose_no_event(
    ledger_url: str, tmp_path: Path
) -> None:
    """Eight children start at the same moment on a store none of them created yet, each
    running its own run (half sync, half batch durability); every run is complete and equal,
    event for event, to the same run made in memory."""
    path = write_module(tmp_path / "mods", "worker", WORKER)
    gate = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(WRITERS)]
    children = [
        start_child(
            path,
            "execute",
            payload=f"job-{i}",
            ready=str(ready[i]),
            gate=str(gate),
            kwargs={
                "store": ledger_url,
                "run_id": f"proc-{i}",
                "durability": "sync" if i % 2 else "batch",
            },
        )
        for i in range(WRITERS)
    ]
    try:
        open_gate(ready, gate)
        results = [outcome((c.wait(120), *c.communicate())) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [r.get("status") for r in results] == ["completed"] * WRITERS, results

    reference = load_module(path).workload
    with opened(ledger_url) as store:
        assert sorted(r.run_id for r in store.runs()) == sorted(f"proc-{i}" for i in range(8))
        for i in range(WRITERS):
            run_id = f"proc-{i}"
            entries = store.read(run_id)
            assert_chain(entries, run_id, require_end=True)
            info = store.get_run(run_id)
            assert (info.status, info.owner, info.event_count) == ("completed", None, len(entries))
            expected = reference.execute(f"job-{i}", deployment_id="durable", run_id=run_id)
            assert _shape(parse(entries)) == _shape(list(expected.events()))
            assert results[i]["state"] == expected.state


def _resume_race(
    path: Path, url: str, run_id: str, tmp_path: Path, env: dict[str, str], **resume: Any
) -> list[Any]:
    """Two children resume ``run_id`` at the same moment; return both outcomes."""
    gate = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    children = [
        start_child(
            path,
            "resume",
            run_id=run_id,
            ready=str(ready[i]),
            gate=str(gate),
            env={"STEP_SLEEP": "1.0", **env},
            kwargs={"store": url, **resume},
        )
        for i in range(2)
    ]
    try:
        open_gate(ready, gate)
        return [outcome((c.wait(120), *c.communicate())) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def _one_won(results: list[Any], url: str, run_id: str) -> None:
    won = [r for r in results if r.get("status") == "completed"]
    lost = [r for r in results if r.get("error")]
    assert len(won) == 1, results
    assert len(lost) == 1, results
    assert lost[0]["error"] == "RunConflictError"
    assert run_id in lost[0]["message"]
    entries = stored_entries(url, run_id)
    assert_chain(entries, run_id, require_end=True)
    events = parse(entries)
    assert [e.type for e in events].count("run_resumed") == 1
    assert set(completed_tokens(events).values()) == {1}
    assert won[0]["state"]["step3"] == won[0]["pid"]


def test_two_processes_resuming_one_paused_run_one_proceeds_the_other_gets_a_conflict(
    ledger_url: str, tmp_path: Path
) -> None:
    path = write_module(tmp_path / "mods", "holder", HOLDER)
    paused = outcome(
        run_child(
            path,
            "execute",
            payload=1,
            env={"ASK": "1"},
            kwargs={"store": ledger_url, "run_id": "race-paused"},
        )
    )
    assert paused.get("status") == "interrupted", paused
    results = _resume_race(
        path, ledger_url, "race-paused", tmp_path, {"ASK": "1"}, input="approved", actor="alice"
    )
    _one_won(results, ledger_url, "race-paused")
    winner = next(r for r in results if r.get("status") == "completed")
    assert winner["state"]["approval"] == "approved"


def test_two_processes_resuming_one_crashed_run_one_proceeds_the_other_gets_a_conflict(
    ledger_url: str, tmp_path: Path
) -> None:
    path = write_module(tmp_path / "mods", "holder", HOLDER)
    crashed = run_child(
        path,
        "execute",
        payload=1,
        env={"CRASH_AT": "2"},
        kwargs={"store": ledger_url, "run_id": "race-crashed", "durability": "sync"},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    results = _resume_race(path, ledger_url, "race-crashed", tmp_path, {})
    _one_won(results, ledger_url, "race-crashed")


def test_a_run_cannot_be_resumed_while_it_is_executing(ledger_url: str) -> None:
    inside, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def step(i: Any, *, runtime: Any, context: Any) -> Any:
        calls.append(i)
        if i == 2:
            inside.set()
            release.wait(30)
        if i < 3:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="live", version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    outcomes: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcomes.append(
            workload.execute(
                1, deployment_id="d", store=ledger_url, run_id="live-run", durability="sync"
            )
        )
    )
    runner.start()
    try:
        assert inside.wait(30)
        with pytest.raises(RunConflictError, match=r"live-run.*being executed"):
            workload.resume("live-run", store=ledger_url)
    finally:
        release.set()
        runner.join(30)
    (report,) = outcomes
    assert report.status == "completed"
    assert calls == [1, 2, 3]
    assert stored_entries(ledger_url, "live-run") == list(report.entries)


def test_execute_with_the_run_id_of_a_stored_run_is_a_conflict_and_changes_nothing(
    ledger_url: str,
) -> None:
    workload = CodonWorkload(name="dup", version="1", org_namespace="durable-tests")
    workload.add_node(lambda m, *, runtime, context: m, "echo", "r")
    workload.execute("first", deployment_id="d", store=ledger_url, run_id="dup-run")
    before = stored_entries(ledger_url, "dup-run")
    with pytest.raises(RunConflictError, match=r"dup-run.*resume"):
        workload.execute("second", deployment_id="d", store=ledger_url, run_id="dup-run")
    assert stored_entries(ledger_url, "dup-run") == before


def _two_questions() -> CodonWorkload:
    def ask(i: Any, *, runtime: Any, context: Any) -> Any:
        answer = runtime.interrupt("first?")
        runtime.emit("ask2", answer)
        return answer

    def ask2(i: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("second?")

    workload = CodonWorkload(name="two-questions", version="1", org_namespace="durable-tests")
    workload.add_node(ask, "ask", "w")
    workload.add_node(ask2, "ask2", "w")
    workload.add_edge("ask", "ask2")
    return workload


def test_a_resume_whose_ledger_moved_on_before_its_claim_is_refused_and_writes_nothing(
    ledger_url: str,
) -> None:
    """B reads a paused run; C resumes it and pauses again; then B claims. B must not write
    its events after C's (they would carry seqs C already used): its claim is refused."""
    from codon_sdk import open_store

    store = open_store(ledger_url)
    try:
        _two_questions().execute(0, deployment_id="d", store=store, run_id="race")
        claim = store.claim

        def claim_after_another_resume(run_id: str, owner: str, **kwargs: Any) -> Any:
            store.claim = claim  # type: ignore[method-assign]  # C claims normally
            assert _two_questions().resume(run_id, store=store, input="C").status == "interrupted"
            return claim(run_id, owner, **kwargs)

        store.claim = claim_after_another_resume  # type: ignore[method-assign]
        with pytest.raises(RunConflictError, match="another process went on with it"):
            _two_questions().resume("race", store=store, input="B")
        after_c = store.read("race")
        info = store.get_run("race")
        assert (info.event_count, info.owner, info.status) == (len(after_c), None, "interrupted")
        assert check_chain(after_c, run_id="race").ok
        resumed = [e for e in map(parse_entry, after_c) if e.type == "run_resumed"]
        assert [(e.metadata or {}).get("input") for e in resumed] == ["C"]  # B left no trace
    finally:
        store.close()
