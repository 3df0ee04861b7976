"""Replay: re-run a recorded run with today's code, offline, and say whether it decides the same.

Offline is checked, not assumed: during a replay the quote service is stopped and
counts every request, Python-level outbound connections raise, ``random.random``
raises and the wall clock reads year 2100. Recorded effects must come from the
ledger; an effect the ledger lacks is a divergence, never a live call.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import Any

import orjson
import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import CodonError, ReplayError

from ._tamper import edit
from ._workloads import (
    build_pausing,
    build_v1,
    build_v1_refactored,
    build_v2,
    build_v3_extra_effect,
)
from .conftest import AuditLedger

RUN = "run-a"
YEAR_2100 = 4_102_444_800.0


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No outbound Python connections, no randomness, a clock that lies (see the docstring)."""

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise OSError("replay tried to reach the network")

    def no_randomness() -> float:
        raise AssertionError("replay drew a new random number")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(random, "random", no_randomness)
    monkeypatch.setattr(time, "time", lambda: YEAR_2100)


def _events(ledger: AuditLedger, run_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(e) for e in ledger.db.entries(run_id)]


def _completion_seq(ledger: AuditLedger, run_id: str, step: int) -> int:
    """Seq of the recorded ``node_completed`` of the ``work`` activation at step ``step``."""
    for event in _events(ledger, run_id):
        completed = event["type"] == "node_completed" and event.get("node") == "work"
        if completed and event["payload"]["i"] == step:
            return int(event["seq"])
    raise AssertionError(f"no work step {step} in run {run_id}")


def _record_then_go_offline(ledger: AuditLedger, request: pytest.FixtureRequest) -> int:
    ledger.record(RUN, limit=4)
    hits = ledger.service.hits
    ledger.service.stop()
    request.getfixturevalue("offline")
    return hits


def test_replay_with_the_same_code_is_identical_offline(
    ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    hits = _record_then_go_offline(ledger, request)
    recorded = ledger.reports[RUN]
    before = ledger.db.entries(RUN)
    runs_before = [r.run_id for r in ledger.store.runs()]

    outcome = build_v1().replay(RUN, store=ledger.store)

    assert outcome.identical, outcome.summary()
    assert bool(outcome)
    assert outcome.divergences == []
    assert outcome.first_divergence is None
    assert outcome.recorded_status == outcome.replay_status == "completed"
    assert outcome.activations_compared == 6
    assert not outcome.logic_changed
    assert "IDENTICAL" in outcome.summary()
    assert outcome.report is not None
    assert outcome.report.node_results("work") == recorded.node_results("work")
    assert outcome.report.state == recorded.state
    # nothing reached the outside world, nothing was written
    assert ledger.service.hits == hits
    assert ledger.db.entries(RUN) == before
    assert [r.run_id for r in ledger.store.runs()] == runs_before


def test_replay_after_a_code_change_names_the_first_divergent_event(
    ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    """v2 approves every third step instead of every second: step 2 is the first to differ."""
    hits = _record_then_go_offline(ledger, request)

    outcome = build_v2().replay(RUN, store=ledger.store)  # does not raise

    assert not outcome.identical
    assert not bool(outcome)
    first = outcome.first_divergence
    assert first is not None
    assert first.seq == _completion_seq(ledger, RUN, 2)
    assert first.node == "work"
    assert "approve" in repr(first.expected)
    assert "review" in repr(first.actual)
    assert f"seq {first.seq}" in str(first)
    assert outcome.logic_changed
    assert outcome.logic_diff["changed_nodes"] == ["work"]
    assert "logic id changed" in outcome.summary()
    assert "DIVERGED" in outcome.summary()
    assert ledger.service.hits == hits
    as_dict = outcome.to_dict()
    assert as_dict["identical"] is False
    assert as_dict["divergences"][0]["seq"] == first.seq
    assert as_dict["logic_changed"] is True


def test_divergences_before_the_change_point_are_not_reported(
    sqlite_ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    """Steps 0 and 1 decide alike in v1 and v2: no divergence may point before step 2."""
    _record_then_go_offline(sqlite_ledger, request)
    outcome = build_v2().replay(RUN, store=sqlite_ledger.store)
    first_change = _completion_seq(sqlite_ledger, RUN, 2)
    assert outcome.divergences
    assert all(d.seq >= first_change for d in outcome.divergences if d.seq >= 0)


def test_code_change_that_decides_the_same_is_identical_with_a_new_logic_id(
    sqlite_ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    _record_then_go_offline(sqlite_ledger, request)
    outcome = build_v1_refactored().replay(RUN, store=sqlite_ledger.store)
    assert outcome.identical, outcome.summary()
    assert outcome.logic_changed
    assert outcome.logic_diff["changed_nodes"] == ["work"]


def test_effect_the_ledger_lacks_is_a_divergence_not_a_live_call(
    sqlite_ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    """v3 makes a second call at step 1: replay reports it and never calls out."""
    hits = _record_then_go_offline(sqlite_ledger, request)
    outcome = build_v3_extra_effect().replay(RUN, store=sqlite_ledger.store)
    assert not outcome.identical
    assert sqlite_ledger.service.hits == hits
    first = outcome.first_divergence
    assert first is not None
    assert "fetch_again" in str(first)
    # the divergence names the recorded event where the code asked for what was never recorded
    step_1 = _completion_seq(sqlite_ledger, RUN, 1)
    assert first.token_id == _events(sqlite_ledger, RUN)[step_1]["token_id"]
    assert first.seq >= 0, str(first)


def test_replay_of_a_paused_and_resumed_run_serves_the_human_input(
    ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    workload = build_pausing()
    workload.execute({"n": 2}, deployment_id="audit", store=ledger.store, run_id="p")
    workload.resume("p", store=ledger.store, input="alice", actor="alice@example.com")
    request.getfixturevalue("offline")
    outcome = workload.replay("p", store=ledger.store)
    assert outcome.identical, outcome.summary()
    assert outcome.report is not None
    assert outcome.report.node_results("approve")[0]["approved_by"] == "alice"


def test_replay_of_a_paused_run_compares_what_exists(
    sqlite_ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    workload = build_pausing()
    workload.execute({"n": 2}, deployment_id="audit", store=sqlite_ledger.store, run_id="p")
    request.getfixturevalue("offline")
    outcome = workload.replay("p", store=sqlite_ledger.store)
    assert outcome.identical, outcome.summary()
    assert outcome.recorded_status == outcome.replay_status == "interrupted"


def _fails(message: Any, *, runtime: Any, context: Any) -> None:
    roll = runtime.random()
    raise RuntimeError(f"policy violation (roll {roll})")


def test_replay_of_a_failed_run_is_identical_when_it_fails_the_same_way(
    sqlite_ledger: AuditLedger, request: pytest.FixtureRequest
) -> None:
    workload = CodonWorkload(name="audit-fails", version="1.0", org_namespace="audit-tests")
    workload.add_node(_fails, "gate", "guard")
    with pytest.raises(CodonError):
        workload.execute(None, deployment_id="audit", store=sqlite_ledger.store, run_id="f")
    request.getfixturevalue("offline")
    outcome = workload.replay("f", store=sqlite_ledger.store)
    assert outcome.identical, outcome.summary()
    assert outcome.recorded_status == outcome.replay_status == "failed"


def test_replay_of_an_unknown_run_raises_replay_error(sqlite_ledger: AuditLedger) -> None:
    with pytest.raises(ReplayError, match="nope"):
        build_v1().replay("nope", store=sqlite_ledger.store)


def test_replay_refuses_a_tampered_ledger(sqlite_ledger: AuditLedger) -> None:
    """Replaying a broken chain would compare today's code against forged decisions."""
    sqlite_ledger.record(RUN, limit=2)
    entries = sqlite_ledger.db.entries(RUN)
    seq = next(i for i, e in enumerate(entries) if b'"node_completed"' in e)

    def forge(obj: dict[str, Any]) -> None:
        obj["payload"] = "forged"

    sqlite_ledger.db.set_entry(RUN, seq, edit(entries[seq], forge))
    with pytest.raises(CodonError, match=f"seq {seq}"):
        build_v1().replay(RUN, store=sqlite_ledger.store)


def test_areplay_is_the_async_twin(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN, limit=2)
    outcome = asyncio.run(build_v1().areplay(RUN, store=sqlite_ledger.store))
    assert outcome.identical, outcome.summary()


def test_a_changed_emission_alone_is_a_divergence() -> None:
    """Same results, different emitted payload: replay names the emitting activation."""
    from codon_sdk import CodonWorkload, MemoryStore

    def build(bonus: int) -> CodonWorkload:
        def plan(message: Any, *, runtime: Any, context: Any) -> str:
            runtime.emit("act", {"amount": message + bonus})
            return "planned"

        def act(message: Any, *, runtime: Any, context: Any) -> str:
            return "done"

        workload = CodonWorkload(name="emit", version="1", org_namespace="t")
        workload.add_node(plan, "plan", "r")
        workload.add_node(act, "act", "r")
        workload.add_edge("plan", "act")
        return workload

    store = MemoryStore()
    build(0).execute(10, deployment_id="d", store=store, run_id="e1")
    assert build(0).replay("e1", store=store).identical
    changed = build(5).replay("e1", store=store)
    assert not changed.identical
    first = changed.divergences[0]
    assert (first.node, first.what) == ("plan", "emitted tokens differ")


def test_an_interrupt_payload_with_floats_is_recorded() -> None:
    """A paused run's payload may hold any recordable value, floats included."""
    from codon_sdk import CodonWorkload, MemoryStore

    def review(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?", payload={"score": 0.5, "ratio": 1.0})

    workload = CodonWorkload(name="pause", version="1", org_namespace="t")
    workload.add_node(review, "review", "r")
    store = MemoryStore()
    report = workload.execute(None, deployment_id="d", store=store, run_id="p1")
    assert report.status == "interrupted"
    paused = next(e for e in report.events() if e.type == "run_interrupted")
    assert paused.metadata["payload"] == {"score": 0.5, "ratio": 1}
    assert workload.resume("p1", store=store, input="yes").node_results("review") == ["yes"]
