"""Failures and bad input: node errors, unencodable values, size limits, interrupts.

Each ends the run with a specific error naming the offending node and value, and
keeps a consistent ledger of everything that happened before.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from codon_sdk import (
    CodonError,
    CodonWorkload,
    ExecutionReport,
    PayloadTooLargeError,
    WorkloadRuntimeError,
    check_chain,
)
from codon_sdk.stores import MemoryStore


class Opaque:
    """A value with no canonical encoding."""


def _types(report: ExecutionReport) -> list[str]:
    return [e.type for e in report.events()]


def _two_step(second: Any) -> CodonWorkload:
    """first (emits to second, returns "first ok") -> second (the function under test)."""

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["before"] = "kept"
        runtime.emit("second", message)
        return "first ok"

    workload = CodonWorkload(name="Failing", version="1")
    workload.add_node(first, "first", "r")
    workload.add_node(second, "second", "r")
    workload.add_edge("first", "second")
    return workload


def _failed_report(info: pytest.ExceptionInfo[WorkloadRuntimeError]) -> ExecutionReport:
    """The failure's report: status failed, chain intact, the first node's work kept."""
    report = info.value.report
    assert isinstance(report, ExecutionReport)
    assert report.status == "failed"
    assert report.check_chain().ok, str(report.check_chain())
    assert report.node_results("first") == ["first ok"]
    types = _types(report)
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    return report


# ----------------------------------------------------------------- a node raises


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_raising_node_ends_the_run_with_its_exception_as_cause(is_async: bool) -> None:
    """node_failed is recorded; WorkloadRuntimeError names the node, __cause__ is the original."""
    original = ValueError("bad value 42")

    def sync_fail(message: Any, *, runtime: Any, context: Any) -> Any:
        raise original

    async def async_fail(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        raise original

    workload = _two_step(async_fail if is_async else sync_fail)
    with pytest.raises(WorkloadRuntimeError, match="second") as info:
        workload.execute({"x": 1}, deployment_id="d")
    assert info.value.__cause__ is original
    report = _failed_report(info)
    assert "node_failed" in _types(report)
    assert report.node_results("second") == []
    assert report.state.get("before") == "kept"


def test_nothing_runs_after_a_failure() -> None:
    """Tokens queued before the failure are not processed and emissions of the failed node drop."""
    ran: list[str] = []

    def fan(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("boom", 1)
        runtime.emit("later", 2)
        return "fan"

    def boom(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("later", 3)
        raise RuntimeError("boom")

    def later(message: Any, *, runtime: Any, context: Any) -> Any:
        ran.append(message)
        return message

    workload = CodonWorkload(name="W", version="1")
    for name, fn in (("fan", fan), ("boom", boom), ("later", later)):
        workload.add_node(fn, name, "r")
    workload.add_edge("fan", "boom")
    workload.add_edge("fan", "later")
    workload.add_edge("boom", "later")
    with pytest.raises(WorkloadRuntimeError) as info:
        workload.execute(None, deployment_id="d")
    assert ran == []
    assert info.value.report is not None
    assert info.value.report.check_chain().ok


# ----------------------------------------------------------------- unencodable values


def test_result_with_no_encoding_names_the_node_and_the_type() -> None:
    """A result JSON cannot encode fails the run with an error naming node and type."""

    def second(message: Any, *, runtime: Any, context: Any) -> Any:
        return {"client": Opaque()}

    with pytest.raises(WorkloadRuntimeError) as info:
        _two_step(second).execute({"x": 1}, deployment_id="d")
    assert "second" in str(info.value)
    assert "Opaque" in str(info.value)
    _failed_report(info)


def test_results_with_a_documented_encoding_are_accepted() -> None:
    """Datetimes, tuples, sets, bytes and big ints are recorded with their documented encoding."""
    value = {"at": dt.date(2024, 1, 1), "pair": (1, 2), "tags": {"x"}, "raw": b"\x00", "n": 2**64}

    def plain_second(message: Any, *, runtime: Any, context: Any) -> Any:
        return value

    report = _two_step(plain_second).execute({"x": 1}, deployment_id="d")
    assert report.node_results("second") == [value]
    completed = [e for e in report.events() if e.type == "node_completed"][-1]
    assert completed.payload["at"] == {"$codon": "date", "v": "2024-01-01"}
    assert report.check_chain().ok


def test_emitted_payload_with_no_encoding_names_the_node_and_the_type() -> None:
    """Emitting an unencodable payload fails with an error naming the emitter and the type."""

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("second", [1, Opaque()])
        return "first ok"

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(first, "first", "r")
    workload.add_node(lambda m, *, runtime, context: m, "second", "r")
    workload.add_edge("first", "second")
    with pytest.raises(WorkloadRuntimeError) as info:
        workload.execute(None, deployment_id="d")
    assert "first" in str(info.value)
    assert "Opaque" in str(info.value)
    assert info.value.report is not None
    assert info.value.report.status == "failed"
    assert info.value.report.check_chain().ok


def test_state_value_with_no_encoding_fails_the_run_clearly() -> None:
    """Putting an unencodable value in runtime.state fails the run naming node and type."""

    def second(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["client"] = Opaque()
        return "second ok"

    with pytest.raises(WorkloadRuntimeError) as info:
        _two_step(second).execute({"x": 1}, deployment_id="d")
    assert "second" in str(info.value)
    assert "Opaque" in str(info.value)
    _failed_report(info)


def test_input_payload_with_no_encoding_is_refused_naming_the_type() -> None:
    """An execute payload JSON cannot encode is refused before the run, naming the type."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    with pytest.raises(CodonError, match="Opaque"):
        workload.execute({"client": Opaque()}, deployment_id="d")


def test_recursive_input_payload_is_refused_clearly() -> None:
    """A payload containing itself is refused with a specific error, not a RecursionError."""
    payload: dict[str, Any] = {"a": 1}
    payload["self"] = payload
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    with pytest.raises(CodonError) as info:
        workload.execute(payload, deployment_id="d")
    assert "cycle" in str(info.value) or "itself" in str(info.value)


def test_recursive_emitted_payload_fails_the_run_clearly() -> None:
    """Emitting a payload that contains itself fails the run with a specific error."""

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        loop: list[Any] = []
        loop.append(loop)
        runtime.emit("second", loop)
        return "first ok"

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(first, "first", "r")
    workload.add_node(lambda m, *, runtime, context: m, "second", "r")
    workload.add_edge("first", "second")
    with pytest.raises(WorkloadRuntimeError) as info:
        workload.execute(None, deployment_id="d")
    assert "first" in str(info.value)
    assert "cycle" in str(info.value) or "itself" in str(info.value)
    assert info.value.report is not None
    assert info.value.report.check_chain().ok


# ----------------------------------------------------------------- emits along unknown edges


def test_emit_to_an_unknown_node_raises_in_the_node() -> None:
    """runtime.emit to a node that does not exist raises WorkloadRuntimeError naming it."""
    caught: list[str] = []

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        with pytest.raises(WorkloadRuntimeError, match="ghost") as info:
            runtime.emit("ghost", message)
        caught.append(str(info.value))
        return "first ok"

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(first, "first", "r")
    report = workload.execute(None, deployment_id="d")
    assert len(caught) == 1
    assert report.status == "completed"


def test_emit_along_an_unregistered_edge_raises_and_fails_the_run() -> None:
    """Emitting to an existing node with no edge from the emitter fails the run, naming both."""

    def alpha(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("beta", message)
        return message

    def beta(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("alpha", message)
        return message

    workload = CodonWorkload(name="InvalidRouting", version="1")
    workload.add_node(alpha, "alpha", "start")
    workload.add_node(beta, "beta", "next")
    workload.add_edge("alpha", "beta")
    with pytest.raises(WorkloadRuntimeError) as info:
        workload.execute({"value": 1}, deployment_id="dev", entry_nodes=["alpha"])
    message = str(info.value) + str(info.value.__cause__)
    assert "beta" in message
    assert "alpha" in message
    assert info.value.report is not None
    assert info.value.report.node_results("alpha") == [{"value": 1}]


# ----------------------------------------------------------------- size limit


def _sized(make_big: str) -> CodonWorkload:
    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        big = "x" * 5_000
        if make_big == "emit":
            runtime.emit("second", big)
        else:
            runtime.emit("second", "small")
        if make_big == "event":
            runtime.record_event("audit", metadata={"blob": big})
        return big if make_big == "result" else "first ok"

    workload = CodonWorkload(name="Sized", version="1")
    workload.add_node(lambda m, *, runtime, context: "ok", "zero", "r")
    workload.add_node(first, "first", "r")
    workload.add_node(lambda m, *, runtime, context: m, "second", "r")
    workload.add_edge("zero", "first")
    workload.add_edge("first", "second")
    return workload


def test_input_over_the_size_limit_is_refused() -> None:
    """An input payload over max_event_bytes raises PayloadTooLargeError naming the limit."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    with pytest.raises(PayloadTooLargeError, match="2000"):
        workload.execute("y" * 5_000, deployment_id="d", max_event_bytes=2_000)


@pytest.mark.parametrize("make_big", ["emit", "result", "event"])
def test_events_over_the_size_limit_fail_the_run_and_keep_the_ledger(make_big: str) -> None:
    """An oversized emit, result or custom event: PayloadTooLargeError naming node and limit,
    run failed, ledger before it kept and chained."""
    workload = _sized(make_big)
    with pytest.raises(PayloadTooLargeError) as info:
        workload.execute(None, deployment_id="d", entry_nodes=["first"], max_event_bytes=2_000)
    assert "first" in str(info.value)
    assert "2000" in str(info.value)
    report = info.value.report
    assert isinstance(report, ExecutionReport)
    assert report.status == "failed"
    assert report.check_chain().ok
    assert _types(report)[-1] == "run_finished"


def test_events_under_the_size_limit_pass() -> None:
    """The same run passes when the limit is raised."""
    for make_big in ("emit", "result", "event"):
        report = _sized(make_big).execute(
            None, deployment_id="d", entry_nodes=["first"], max_event_bytes=20_000
        )
        assert report.status == "completed"


@pytest.mark.parametrize("bad", [0, -5])
def test_max_event_bytes_must_be_positive(bad: int) -> None:
    """A non-positive max_event_bytes is refused before the run starts."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    with pytest.raises((ValueError, WorkloadRuntimeError)):
        workload.execute(1, deployment_id="d", max_event_bytes=bad)


# ----------------------------------------------------------------- interrupts


def _interrupting(exc_type: type[BaseException]) -> CodonWorkload:
    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["seen"] = 1
        runtime.emit("second", message)
        return "first ok"

    async def second(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.record_event("about_to_stop", metadata={"n": 1})
        raise exc_type()

    workload = CodonWorkload(name="Interrupted", version="1")
    workload.add_node(first, "first", "r")
    workload.add_node(second, "second", "r")
    workload.add_edge("first", "second")
    return workload


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, asyncio.CancelledError])
def test_interrupting_exceptions_propagate_unchanged(exc_type: type[BaseException]) -> None:
    """KeyboardInterrupt and CancelledError from a node are not wrapped or swallowed."""
    with pytest.raises(exc_type):
        _interrupting(exc_type).execute(None, deployment_id="d")


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, asyncio.CancelledError])
def test_interrupting_exceptions_leave_a_consistent_interrupted_ledger(
    exc_type: type[BaseException],
) -> None:
    """The stored ledger of a run stopped by KeyboardInterrupt/CancelledError passes the chain
    check, keeps what happened before, and records the run as interrupted."""
    store = MemoryStore()
    with pytest.raises(exc_type):
        _interrupting(exc_type).execute(None, deployment_id="d", store=store, run_id="int-1")
    entries = store.read("int-1")
    check = check_chain(entries, run_id="int-1")
    assert check.ok, str(check)
    assert store.get_run("int-1").status == "interrupted"
    types = [json.loads(entry)["type"] for entry in entries]
    assert types[0] == "run_started"
    assert types[-1] == "run_interrupted"
    assert "node_completed" in types
    assert "about_to_stop" in types
    assert "run_finished" not in types
