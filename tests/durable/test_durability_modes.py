"""Durability modes: what reaches the store when, and exactly what a crash can lose.

* ``sync``: nothing of a completed activation (each step boundary commits everything the
  activation produced, in one transaction, before the next activation starts);
* ``batch`` (the default): only steps not yet committed, and a commit holds whole steps;
  recorded effects, pauses, failures and the end of the run are barriers;
* ``exit``: the whole run (it is written once, when it ends, fails or pauses).
"""

from __future__ import annotations

import inspect
import signal
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError
from codon_sdk.errors import RunNotFoundError
from codon_sdk.runtime import _writer

from ._support import (
    assert_chain,
    completed_tokens,
    dequeued_tokens,
    opened,
    outcome,
    parse,
    run_child,
    stored_entries,
    write_module,
)

MODES = ["sync", "batch", "exit"]

CHAIN = '''
"""A chain of 10 steps; CRASH_AT=<i> kills the process inside step i, after it recorded an
event (CRASH_KIND=event) or a recorded effect (CRASH_KIND=effect)."""

import os
import signal

from codon_sdk import CodonWorkload


def step(i, *, runtime, context):
    runtime.state["last"] = i
    crash_here = os.environ.get("CRASH_AT") == str(i)
    if crash_here and os.environ.get("CRASH_KIND") == "effect":
        runtime.effect("lookup", lambda: {"looked_up": i})
    runtime.record_event("about_to_crash" if crash_here else "working", metadata={"i": i})
    if crash_here:
        os.kill(os.getpid(), signal.SIGKILL)
    if i < 10:
        runtime.emit("step", i + 1)
    return i


workload = CodonWorkload(name="chain", version="1", org_namespace="durable-tests")
workload.add_node(step, "step", "worker")
workload.add_edge("step", "step")
'''


@pytest.fixture
def chain_path(tmp_path: Path) -> Path:
    return write_module(tmp_path / "mods", "chain", CHAIN)


def _crash(chain_path: Path, url: str, run_id: str, durability: str, kind: str = "event") -> None:
    crashed = run_child(
        chain_path,
        "execute",
        payload=1,
        env={"CRASH_AT": "6", "CRASH_KIND": kind},
        kwargs={"store": url, "run_id": run_id, "durability": durability, "entry_nodes": ["step"]},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr


def _payload_of(events: list[Any], token_id: str) -> Any:
    (enqueued,) = [e for e in events if e.type == "token_enqueued" and e.token_id == token_id]
    return enqueued.value()


def test_batch_is_the_default_durability() -> None:
    parameters = inspect.signature(CodonWorkload.execute_async).parameters
    assert parameters["durability"].default == "batch"


def test_the_writer_documents_what_a_crash_can_lose_in_each_mode() -> None:
    doc = _writer.__doc__ or ""
    assert "what a crash" in doc
    for mode in MODES:
        assert f'``"{mode}"``' in doc, mode


def test_an_unknown_durability_mode_is_refused_before_anything_is_written(
    sqlite_url: str,
) -> None:
    workload = CodonWorkload(name="chain", version="1", org_namespace="durable-tests")
    workload.add_node(lambda m, *, runtime, context: m, "echo", "r")
    with pytest.raises(ValueError, match=r"durability must be one of sync, batch, exit.*'fsync'"):
        workload.execute(None, deployment_id="d", store=sqlite_url, run_id="x", durability="fsync")
    with opened(sqlite_url) as store:
        assert not store.has_run("x")


def test_sync_a_crash_loses_no_completed_activation(ledger_url: str, chain_path: Path) -> None:
    _crash(chain_path, ledger_url, "sync-crash", "sync")
    entries = stored_entries(ledger_url, "sync-crash")
    assert_chain(entries, "sync-crash", require_end=False)
    events = parse(entries)
    # every completed activation is committed before the next starts; the killed sixth
    # activation (its start and its custom event) was not complete, so nothing of it is kept
    assert events[-1].type == "node_completed"
    assert "about_to_crash" not in [e.type for e in events]
    assert dequeued_tokens(events) == completed_tokens(events)
    assert completed_tokens(events).total() == 5


def test_batch_a_crash_loses_only_whole_steps_never_part_of_one(
    ledger_url: str, chain_path: Path
) -> None:
    _crash(chain_path, ledger_url, "batch-crash", "batch")
    entries = stored_entries(ledger_url, "batch-crash")
    assert_chain(entries, "batch-crash", require_end=False)
    events = parse(entries)
    assert events[-1].type in ("node_completed", "token_enqueued")
    assert "about_to_crash" not in [e.type for e in events]
    # every activation whose start was committed has its completion committed with it
    assert dequeued_tokens(events) == completed_tokens(events)
    # the run exists with its seed before any node runs, and no more than 5 steps completed
    assert [e.type for e in events[:2]] == ["run_started", "token_enqueued"]
    assert completed_tokens(events).total() <= 5


def test_batch_a_recorded_effect_is_committed_before_the_node_goes_on(
    ledger_url: str, chain_path: Path
) -> None:
    _crash(chain_path, ledger_url, "batch-effect", "batch", kind="effect")
    events = parse(stored_entries(ledger_url, "batch-effect"))
    effect = events[-1]
    assert effect.type == "effect_recorded"
    assert effect.value() == {"looked_up": 6}
    assert _payload_of(events, effect.token_id) == 6
    assert completed_tokens(events).total() == 5


def test_exit_a_crash_loses_the_whole_run_which_can_then_be_run_again(
    ledger_url: str, chain_path: Path
) -> None:
    _crash(chain_path, ledger_url, "exit-crash", "exit")
    with opened(ledger_url) as store:
        assert not store.has_run("exit-crash")
    workload = CodonWorkload(name="chain", version="1", org_namespace="durable-tests")
    workload.add_node(lambda m, *, runtime, context: m, "echo", "r")
    with pytest.raises(RunNotFoundError, match="exit-crash"):
        workload.resume("exit-crash", store=ledger_url)
    again = outcome(
        run_child(
            chain_path,
            "execute",
            payload=1,
            kwargs={"store": ledger_url, "run_id": "exit-crash", "durability": "exit"},
        )
    )
    assert again.get("status") == "completed", again
    assert again["results"] == {"step": list(range(1, 11))}


@pytest.mark.parametrize("durability", MODES)
def test_what_the_store_holds_while_the_run_is_in_progress(
    ledger_url: str, durability: str
) -> None:
    """Seen from a second connection inside node 3: sync has every completed step so far
    (committed at each step boundary), batch at least the run's start and seed (written
    before any node runs), exit nothing."""
    seen: list[Any] = []

    def step(i: Any, *, runtime: Any, context: Any) -> Any:
        if i == 3:
            with opened(ledger_url) as other:
                seen.append(other.read(context["run_id"]) if other.has_run("live") else None)
        if i < 5:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="watched", version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute(
        1, deployment_id="d", store=ledger_url, run_id="live", durability=durability
    )
    (stored,) = seen
    if durability == "exit":
        assert stored is None
        return
    assert stored is not None
    events = parse(stored)
    assert [e.type for e in events[:2]] == ["run_started", "token_enqueued"]
    assert list(report.entries)[: len(stored)] == stored
    if durability == "sync":
        assert events[-1].type == "node_completed"
        assert _payload_of(events, events[-1].token_id) == 2
        assert dequeued_tokens(events) == completed_tokens(events)


@pytest.mark.parametrize("durability", MODES)
def test_every_mode_has_the_whole_run_in_the_store_when_execute_returns(
    ledger_url: str, durability: str
) -> None:
    def step(i: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["i"] = i
        if i < 20:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="whole", version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute(
        1, deployment_id="d", store=ledger_url, run_id=f"whole-{durability}", durability=durability
    )
    entries = stored_entries(ledger_url, f"whole-{durability}")
    assert entries == list(report.entries)
    assert_chain(entries, f"whole-{durability}", require_end=True)
    with opened(ledger_url) as store:
        info = store.get_run(f"whole-{durability}")
    assert (info.status, info.owner, info.event_count) == ("completed", None, len(entries))
    assert info.finished_at is not None
    assert info.head == parse(entries)[-1].leaf.hex()


@pytest.mark.parametrize("durability", MODES)
def test_every_mode_has_a_failed_run_in_the_store_when_execute_raises(
    sqlite_url: str, durability: str
) -> None:
    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("second", message)
        return "ok"

    def second(message: Any, *, runtime: Any, context: Any) -> Any:
        raise KeyError("missing field")

    workload = CodonWorkload(name="failing", version="1", org_namespace="durable-tests")
    workload.add_node(first, "first", "r")
    workload.add_node(second, "second", "r")
    workload.add_edge("first", "second")
    run_id = f"failed-{durability}"
    with pytest.raises(WorkloadRuntimeError) as caught:
        workload.execute(
            None, deployment_id="d", store=sqlite_url, run_id=run_id, durability=durability
        )
    assert caught.value.report is not None
    entries = stored_entries(sqlite_url, run_id)
    assert entries == list(caught.value.report.entries)
    assert [e.type for e in parse(entries)][-2:] == ["node_failed", "run_finished"]
    with opened(sqlite_url) as store:
        assert store.get_run(run_id).status == "failed"
