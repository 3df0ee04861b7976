"""The records users read: Token, AuditEvent, NodeExecutionRecord and ExecutionReport."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from codon_sdk import AuditEvent, CodonWorkload, ExecutionReport, NodeExecutionRecord, Token

UTC = dt.timezone.utc


def _is_aware_utc(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0)


@pytest.fixture
def pipeline() -> tuple[CodonWorkload, dict[str, list[Token]]]:
    """a -> b -> c, each node recording the token it processed (via ``runtime.token``)."""
    seen: dict[str, list[Token]] = {"a": [], "b": [], "c": []}

    def a(message: Any, *, runtime: Any, context: Any) -> Any:
        seen["a"].append(runtime.token)
        runtime.emit("b", {"from": "a"}, audit_metadata={"reason": "route", "score": 3})
        runtime.record_event("checked", metadata={"ok": True})
        return "A"

    def b(message: Any, *, runtime: Any, context: Any) -> Any:
        seen["b"].append(runtime.token)
        runtime.emit("c", {"from": "b"})
        runtime.state["b_ran"] = True
        return {"result": "B"}

    def c(message: Any, *, runtime: Any, context: Any) -> Any:
        seen["c"].append(runtime.token)
        runtime.stop()
        return ["C"]

    workload = CodonWorkload(name="Pipeline", version="1")
    for name, fn in (("a", a), ("b", b), ("c", c)):
        workload.add_node(fn, name, "step")
    workload.add_edge("a", "b")
    workload.add_edge("b", "c")
    return workload, seen


@pytest.fixture
def report(pipeline: tuple[CodonWorkload, dict[str, list[Token]]]) -> ExecutionReport:
    return pipeline[0].execute({"q": 1}, deployment_id="dev")


def _events(report: ExecutionReport, event_type: str) -> list[AuditEvent]:
    return [e for e in report.ledger if e.event_type == event_type]


# ----------------------------------------------------------------- tokens


def test_seed_token_provenance(
    pipeline: tuple[CodonWorkload, dict[str, list[Token]]], report: ExecutionReport
) -> None:
    """A seed token: origin "__entry__", no parent, empty lineage, the execute payload."""
    (seed,) = pipeline[1]["a"]
    assert isinstance(seed, Token)
    assert seed.origin == "__entry__"
    assert seed.parent_id is None
    assert tuple(seed.lineage) == ()
    assert seed.payload == {"q": 1}
    assert _is_aware_utc(seed.created_at)


def test_emitted_token_provenance(
    pipeline: tuple[CodonWorkload, dict[str, list[Token]]], report: ExecutionReport
) -> None:
    """Emitted tokens: origin = emitter, parent = the token being processed, lineage grows."""
    seen = pipeline[1]
    (ta,), (tb,), (tc,) = seen["a"], seen["b"], seen["c"]
    assert (tb.origin, tb.parent_id, tuple(tb.lineage)) == ("a", ta.id, ("a",))
    assert (tc.origin, tc.parent_id, tuple(tc.lineage)) == ("b", tb.id, ("a", "b"))
    assert tb.payload == {"from": "a"}
    assert len({ta.id, tb.id, tc.id}) == 3
    assert ta.created_at <= tb.created_at <= tc.created_at


@pytest.mark.parametrize("field", ["id", "payload", "origin", "parent_id"])
def test_tokens_are_immutable(
    pipeline: tuple[CodonWorkload, dict[str, list[Token]]], report: ExecutionReport, field: str
) -> None:
    """Assigning to a token field raises and the field keeps its value."""
    token = pipeline[1]["b"][0]
    before = getattr(token, field)
    with pytest.raises((AttributeError, TypeError)):
        setattr(token, field, "tampered")
    assert getattr(token, field) == before


def test_token_ids_are_deterministic_across_runs(
    pipeline: tuple[CodonWorkload, dict[str, list[Token]]],
) -> None:
    """Two runs of the same program hand out the same token ids in the same places."""
    workload, seen = pipeline
    workload.execute({"q": 1}, deployment_id="dev")
    workload.execute({"q": 1}, deployment_id="dev")
    first = [seen[n][0].id for n in "abc"]
    second = [seen[n][1].id for n in "abc"]
    assert first == second


# ----------------------------------------------------------------- audit events


def test_ledger_events_are_immutable_and_timestamped(report: ExecutionReport) -> None:
    """Every AuditEvent is frozen and carries an aware UTC timestamp, in ledger order."""
    assert report.ledger
    for event in report.ledger:
        assert isinstance(event, AuditEvent)
        assert _is_aware_utc(event.timestamp)
        with pytest.raises((AttributeError, TypeError)):
            event.event_type = "tampered"  # type: ignore[misc]
    stamps = [e.timestamp for e in report.ledger]
    assert stamps == sorted(stamps)


def test_token_enqueued_events(report: ExecutionReport) -> None:
    """token_enqueued: source = emitter or __entry__, target = receiver, payload_repr, seed flag."""
    seed, to_b, to_c = _events(report, "token_enqueued")
    assert (seed.source_node, seed.target_node) == ("__entry__", "a")
    assert seed.metadata["seed"] is True
    assert seed.metadata["payload_repr"] == repr({"q": 1})
    assert (to_b.source_node, to_b.target_node) == ("a", "b")
    assert to_b.metadata["payload_repr"] == repr({"from": "a"})
    assert not to_b.metadata.get("seed")
    assert (to_c.source_node, to_c.target_node) == ("b", "c")


def test_token_enqueued_carries_the_callers_audit_metadata(report: ExecutionReport) -> None:
    """audit_metadata given to emit is merged into the token_enqueued metadata."""
    to_b = _events(report, "token_enqueued")[1]
    assert to_b.metadata["reason"] == "route"
    assert to_b.metadata["score"] == 3


def test_token_dequeued_events(report: ExecutionReport) -> None:
    """token_dequeued: source = the token's origin, target = the node that takes it."""
    pairs = [(e.source_node, e.target_node) for e in _events(report, "token_dequeued")]
    assert pairs == [("__entry__", "a"), ("a", "b"), ("b", "c")]
    enq_ids = [e.token_id for e in _events(report, "token_enqueued")]
    assert [e.token_id for e in _events(report, "token_dequeued")] == enq_ids


def test_node_completed_events(report: ExecutionReport) -> None:
    """node_completed: source = node, metadata result_repr and the number of emissions."""
    events = _events(report, "node_completed")
    assert [e.source_node for e in events] == ["a", "b", "c"]
    assert [e.metadata["result_repr"] for e in events] == [
        repr("A"),
        repr({"result": "B"}),
        repr(["C"]),
    ]
    assert [e.metadata["emissions"] for e in events] == [1, 1, 0]


def test_runtime_stopped_event(report: ExecutionReport) -> None:
    """runtime.stop() is recorded as runtime_stopped from the stopping node, with a reason."""
    (stopped,) = _events(report, "runtime_stopped")
    assert stopped.source_node == "c"
    assert stopped.metadata["reason"]


def test_custom_events_keep_their_type_node_and_metadata(report: ExecutionReport) -> None:
    """record_event appends an event of the caller's type from the current node."""
    (custom,) = _events(report, "checked")
    assert custom.source_node == "a"
    assert custom.metadata == {"ok": True}
    assert custom.token_id == _events(report, "token_dequeued")[0].token_id


def test_node_failed_event_names_the_exception() -> None:
    """A raising node leaves a node_failed event whose metadata names the exception."""

    def boom(message: Any, *, runtime: Any, context: Any) -> Any:
        raise ValueError("bad input 42")

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(boom, "boom", "r")
    with pytest.raises(Exception) as info:
        workload.execute(None, deployment_id="d")
    failed_report = info.value.report  # type: ignore[attr-defined]
    (failed,) = [e for e in failed_report.ledger if e.event_type == "node_failed"]
    assert failed.source_node == "boom"
    assert "ValueError" in failed.metadata["exception"]
    assert "bad input 42" in failed.metadata["exception"]


# ----------------------------------------------------------------- execution records and report


def test_node_execution_records(report: ExecutionReport) -> None:
    """results maps node -> NodeExecutionRecords with token id, result and UTC start/finish."""
    assert set(report.results) == {"a", "b", "c"}
    dequeued = {e.target_node: e.token_id for e in _events(report, "token_dequeued")}
    for node, records in report.results.items():
        (record,) = records
        assert isinstance(record, NodeExecutionRecord)
        assert record.node == node
        assert record.token_id == dequeued[node]
        assert _is_aware_utc(record.started_at)
        assert _is_aware_utc(record.finished_at)
        assert record.started_at <= record.finished_at
    assert report.results["b"][0].result == {"result": "B"}
    assert dataclasses.is_dataclass(NodeExecutionRecord)


def test_node_results_returns_the_objects_nodes_returned() -> None:
    """node_results gives back the very values returned, including non-JSON ones."""
    when = dt.datetime(2024, 1, 1, tzinfo=UTC)
    returned = [when, (1, 2), {"set": {3}}]

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        return returned[message]

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(node, "n", "r")
    for i, value in enumerate(returned):
        assert workload.execute(i, deployment_id="d").node_results("n") == [value]


def test_report_identity_and_status(report: ExecutionReport) -> None:
    """The report carries run_id, the context, a status, the final state and UTC timings."""
    assert report.run_id == report.context["run_id"]
    assert report.context["deployment_id"] == "dev"
    assert report.status == "stopped"
    assert report.state == {"b_ran": True}
    assert _is_aware_utc(report.started_at)
    assert _is_aware_utc(report.finished_at)
    assert report.started_at <= report.finished_at
    assert report.ledger[0].timestamp >= report.started_at - dt.timedelta(milliseconds=1)


def test_completed_status() -> None:
    """A run that drains its queue has status "completed"."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    assert workload.execute(1, deployment_id="d").status == "completed"


def test_report_to_dict_is_json_ready(report: ExecutionReport) -> None:
    """to_dict() survives json.dumps and carries run id, status and per-node results."""
    data = json.loads(json.dumps(report.to_dict()))
    assert data["run_id"] == report.run_id
    assert data["status"] == "stopped"
    assert set(data["results"]) == {"a", "b", "c"}


def test_report_to_dict_is_json_ready_with_non_json_results_and_context() -> None:
    """to_dict() stays json.dumps-able when results, state or extras hold datetimes or sets."""
    when = dt.datetime(2024, 1, 1, tzinfo=UTC)

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["seen"] = {1, 2}
        return {"at": when}

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(node, "n", "r")
    report = workload.execute(None, deployment_id="d", requested_at=when)
    json.dumps(report.to_dict())


def test_summary_is_readable(report: ExecutionReport) -> None:
    """summary() is a multi-line text naming the run, its status and every node."""
    text = report.summary()
    assert isinstance(text, str)
    assert report.run_id in text
    assert "stopped" in text
    for node in ("a", "b", "c"):
        assert node in text
    assert len(text.splitlines()) > 1
