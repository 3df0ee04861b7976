"""The ledger a run writes: seq, microsecond timestamps, run_started/run_finished binding the
run to its ids, state_updated events, and custom event names that cannot impersonate ours."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from codon_sdk import CodonError, CodonWorkload, ExecutionReport, LedgerEvent

BUILTIN_TYPES = [
    # API.md Part 1
    "token_enqueued",
    "token_dequeued",
    "node_completed",
    "node_failed",
    "runtime_stopped",
    # DESIGN.md section 4
    "run_started",
    "node_started",
    "effect_recorded",
    "state_updated",
    "run_interrupted",
    "run_resumed",
    "run_finished",
]


def plan(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["topic"] = message["topic"]
    runtime.state["notes"] = []
    runtime.emit("write", {"topic": message["topic"]})
    return "planned"


def write(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["notes"].append("draft")
    del runtime.state["topic"]
    return "written"


@pytest.fixture
def workload() -> CodonWorkload:
    wl = CodonWorkload(name="Ledger Agent", version="2.0", description="writes things")
    wl.add_node(plan, "plan", "planner")
    wl.add_node(write, "write", "writer", model_name="gpt-4o")
    wl.add_edge("plan", "write")
    return wl


@pytest.fixture
def report(workload: CodonWorkload) -> ExecutionReport:
    return workload.execute({"topic": "gardens"}, deployment_id="prod-eu", invoked_by="cli")


def _of_type(report: ExecutionReport, event_type: str) -> list[LedgerEvent]:
    return [e for e in report.events() if e.type == event_type]


def test_events_have_contiguous_seq_and_integer_microsecond_timestamps(
    workload: CodonWorkload,
) -> None:
    """seq runs 0..n-1; ts is an int of microseconds since the epoch, UTC, never decreasing."""
    before = time.time_ns() // 1000
    report = workload.execute({"topic": "gardens"}, deployment_id="prod-eu")
    after = time.time_ns() // 1000
    events = list(report.events())
    assert [e.seq for e in events] == list(range(len(events)))
    stamps = [e.ts for e in events]
    assert all(type(ts) is int for ts in stamps)
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= stamps[-1] <= after
    for event in events:
        assert event.run_id == report.run_id
        assert json.loads(event.entry)["ts"] == event.ts


def test_audit_timestamps_match_the_ledger_microseconds(report: ExecutionReport) -> None:
    """Each AuditEvent timestamp is its ledger event's ts (microsecond precision)."""
    for audit, event in zip(report.ledger, report.events(), strict=True):
        delta = audit.timestamp.timestamp() * 1_000_000 - event.ts
        assert abs(delta) < 2


def test_run_started_binds_the_run_to_its_identities(
    workload: CodonWorkload, report: ExecutionReport
) -> None:
    """run_started (seq 0) names the logic id, every node's NodeSpec id and the deployment."""
    started = next(report.events())
    assert started.type == "run_started"
    assert started.seq == 0
    text = json.dumps(started.metadata)
    assert workload.logic_id in text
    assert "prod-eu" in text
    for spec in workload.nodes:
        assert spec.id in text
    assert workload.agent_class_id in text


def test_run_finished_records_status_and_counts(report: ExecutionReport) -> None:
    """run_finished is the last event and records the final status and the event count."""
    finished = list(report.events())[-1]
    assert finished.type == "run_finished"
    assert finished.metadata["status"] == "completed"
    assert finished.metadata["events"] == finished.seq


@pytest.mark.parametrize("status", ["stopped", "failed"])
def test_run_finished_records_stopped_and_failed(status: str) -> None:
    """The recorded status follows the outcome: a stop gives stopped, a raise gives failed."""

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        if status == "failed":
            raise ValueError("no")
        runtime.stop()
        return None

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(node, "n", "r")
    if status == "failed":
        with pytest.raises(CodonError) as info:
            wl.execute(None, deployment_id="d")
        report = info.value.report  # type: ignore[attr-defined]
    else:
        report = wl.execute(None, deployment_id="d")
    finished = list(report.events())[-1]
    assert finished.type == "run_finished"
    assert finished.metadata["status"] == status == report.status


def test_state_changes_are_recorded_as_state_updated_events(report: ExecutionReport) -> None:
    """Each activation that changed runtime.state leaves a state_updated event with the change."""
    updates = _of_type(report, "state_updated")
    assert [u.node for u in updates[:2]] == ["plan", "write"]
    first, second = (json.dumps(u.payload) for u in updates[:2])
    assert "gardens" in first
    assert "draft" in second
    assert "topic" in second  # the deletion is recorded
    assert report.state == {"notes": ["draft"]}


def test_no_state_change_means_no_state_updated_event() -> None:
    """A run that never touches runtime.state writes no state_updated event."""
    wl = CodonWorkload(name="W", version="1")
    wl.add_node(lambda m, *, runtime, context: m, "n", "r")
    assert _of_type(wl.execute(1, deployment_id="d"), "state_updated") == []


def test_payloads_and_results_are_in_the_ledger(report: ExecutionReport) -> None:
    """token_enqueued carries the token payload and node_completed the result."""
    seed = _of_type(report, "token_enqueued")[0]
    assert seed.payload == {"topic": "gardens"}
    assert seed.target == "plan"
    results = [e.payload for e in _of_type(report, "node_completed")]
    assert results == ["planned", "written"]


def test_token_parent_links_are_in_the_ledger(report: ExecutionReport) -> None:
    """An emitted token's event names the token that was being processed (its parent)."""
    seed, emitted = _of_type(report, "token_enqueued")
    assert seed.parent_token_id is None
    assert emitted.parent_token_id == seed.token_id
    assert emitted.node == "plan"
    assert emitted.target == "write"


@pytest.mark.parametrize("event_type", BUILTIN_TYPES)
def test_custom_events_may_not_use_a_builtin_name(event_type: str) -> None:
    """record_event with a built-in type raises a clear error naming it; nothing is recorded."""
    messages: list[str] = []

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        with pytest.raises(CodonError) as info:
            runtime.record_event(event_type, metadata={"forged": True})
        messages.append(str(info.value))
        return None

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(node, "n", "r")
    report = wl.execute(None, deployment_id="d")
    assert len(messages) == 1
    assert event_type in messages[0]
    assert all("forged" not in json.dumps(e.metadata) for e in report.events())
    assert report.check_chain().ok


@pytest.mark.parametrize("event_type", ["", "   ", None, 5])
def test_custom_event_type_must_be_a_non_empty_string(event_type: Any) -> None:
    """An empty or non-string custom event type is refused with a clear error."""
    caught: list[BaseException] = []

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            runtime.record_event(event_type)
        except CodonError as exc:
            caught.append(exc)
        return None

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(node, "n", "r")
    wl.execute(None, deployment_id="d")
    assert len(caught) == 1


def test_custom_events_are_recorded_in_order() -> None:
    """Custom events land between the node's dequeue and its completion, with their metadata."""

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.record_event("checked", metadata={"step": 1})
        runtime.record_event("approved", metadata={"by": "alice"})
        return None

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(node, "n", "r")
    types = [(e.type, e.metadata) for e in wl.execute(None, deployment_id="d").events()]
    names = [t for t, _ in types]
    start = names.index("token_dequeued")
    end = names.index("node_completed")
    assert ("checked", {"step": 1}) in types[start:end]
    assert ("approved", {"by": "alice"}) in types[start:end]
    assert names.index("checked") < names.index("approved")
