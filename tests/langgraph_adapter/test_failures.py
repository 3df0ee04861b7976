"""A node that raises fails the run exactly as it fails unadapted, and the ledger says so;
retries, recursion limits and values the canonical encoding cannot express are recorded,
never dropped."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from typing import Any

import pytest
from langgraph.errors import GraphRecursionError
from langgraph.graph import START, StateGraph
from langgraph.types import Command, RetryPolicy, Send

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon_sdk.stores import MemoryStore

from ._support import (
    Counted,
    FlakyError,
    assert_verified,
    completed,
    conditional_loop,
    events_of,
    failing,
    ledger_tasks,
    task_results,
)


def test_a_node_that_raises_fails_the_run_like_the_unadapted_graph(store: MemoryStore) -> None:
    """Same exception, same message; node_failed names it; run_finished says failed."""
    with pytest.raises(FlakyError) as plain_error:
        failing([]).compile().invoke({"n": 0, "trail": []})
    calls: list[str] = []
    adapted = LangGraphWorkloadAdapter.from_langgraph(
        failing(calls), name="failing", version="1", store=store
    )
    chunks: list[Any] = []
    with pytest.raises(FlakyError) as error:
        chunks.extend(adapted.stream({"n": 0, "trail": []}, stream_mode="tasks"))
    assert str(error.value) == str(plain_error.value) == "boom at n=1"
    assert calls == ["ok", "boom"]
    report = adapted.last_report
    assert report.status == "failed"
    assert report.reason == "FlakyError: boom at n=1"
    (failed,) = events_of(report, "node_failed")
    assert failed.node == "boom"
    assert failed.metadata["exception"] == "FlakyError: boom at n=1"
    assert completed(report) == Counter({"ok": 1})
    assert ledger_tasks(report) == task_results(chunks)
    assert_verified(store, report.run_id)


def test_an_async_node_that_raises_fails_the_run(store: MemoryStore) -> None:
    """ainvoke: the node's exception reaches the caller and the run is failed."""

    async def boom(state: Counted) -> dict[str, Any]:
        raise ValueError("async boom")

    graph = StateGraph(Counted)
    graph.add_node("boom", boom)
    graph.add_edge(START, "boom")
    adapted = LangGraphWorkloadAdapter.from_langgraph(graph, name="a", version="1", store=store)
    with pytest.raises(ValueError, match="async boom"):
        asyncio.run(adapted.ainvoke({"n": 0}))
    assert adapted.last_report.status == "failed"
    assert [ev.node for ev in events_of(adapted.last_report, "node_failed")] == ["boom"]


def test_a_retried_node_records_the_failed_attempt_and_the_success(store: MemoryStore) -> None:
    """LangGraph's retry policy: each attempt is an activation; the run completes."""
    attempts: list[int] = []

    def flaky(state: Counted) -> dict[str, Any]:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return {"n": state["n"] + 1}

    graph = StateGraph(Counted)
    graph.add_node("flaky", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_interval=0))
    graph.add_edge(START, "flaky")
    adapted = LangGraphWorkloadAdapter.from_langgraph(graph, name="r", version="1", store=store)
    assert adapted.invoke({"n": 1}) == {"n": 2, "trail": []}
    report = adapted.last_report
    assert report.status == "completed"
    assert [ev.metadata["exception"] for ev in events_of(report, "node_failed")] == [
        "ConnectionError: first attempt fails"
    ]
    keys = [
        ev.metadata["langgraph.task"]
        for ev in events_of(report, "token_enqueued")
        if ev.target == "flaky"
    ]
    assert keys == ["0/1/pull.flaky/0", "0/1/pull.flaky/1"]
    assert completed(report) == Counter({"flaky": 1})
    assert_verified(store, report.run_id)


def test_recursion_limit_fails_the_run_with_langgraphs_error(store: MemoryStore) -> None:
    """GraphRecursionError reaches the caller; the activations that ran are recorded."""
    adapted = LangGraphWorkloadAdapter.from_langgraph(
        conditional_loop([], limit=100), name="rec", version="1", store=store
    )
    with pytest.raises(GraphRecursionError):
        adapted.invoke({"n": 0, "trail": []}, {"recursion_limit": 4})
    report = adapted.last_report
    assert report.status == "failed"
    assert "GraphRecursionError" in (report.reason or "")
    assert completed(report)["step"] == 4
    assert_verified(store, report.run_id)


class Holder:
    """A value with no canonical encoding (it holds a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Holder)

    __hash__ = None  # type: ignore[assignment]


def test_unencodable_values_are_recorded_by_type_and_the_graph_runs_unchanged(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A state value without canonical encoding is recorded as its type, with its path noted,
    and a warning logged; a Command carrying Sends gets its documented form."""

    class State(Counted, total=False):
        resource: Any
        seen: Any

    def use(state: State) -> Command[Any]:
        return Command(
            update={"n": state["n"] + 1, "seen": Holder()},
            goto=[Send("tail", {"n": 10, "trail": []})],
        )

    def tail(state: State) -> dict[str, Any]:
        return {"trail": [state["n"]]}

    graph = StateGraph(State)
    graph.add_node("use", use, destinations=("tail",))
    graph.add_node("tail", tail)
    graph.add_edge(START, "use")
    plain_out = graph.compile().invoke({"n": 0, "trail": [], "resource": Holder()})
    adapted = LangGraphWorkloadAdapter.from_langgraph(graph, name="u", version="1", store=store)
    with caplog.at_level(logging.WARNING, logger="codon.instrumentation.langgraph"):
        out = adapted.invoke({"n": 0, "trail": [], "resource": Holder()})
    assert out == plain_out
    report = adapted.last_report
    assert report.status == "completed"
    use_token = next(ev for ev in events_of(report, "token_enqueued") if ev.target == "use")
    assert use_token.payload["resource"] == {
        "$langgraph": "opaque",
        "type": f"{__name__}:Holder",
    }
    assert use_token.metadata["langgraph.opaque"] == [f"$['resource'] {__name__}:Holder"]
    (update,) = [ev for ev in events_of(report, "node_completed") if ev.node == "use"]
    assert update.payload["goto"] == [
        {"$langgraph": "Send", "node": "tail", "arg": {"n": 10, "trail": []}}
    ]
    assert update.payload["update"]["seen"] == {
        "$langgraph": "opaque",
        "type": f"{__name__}:Holder",
    }
    noted = [ev for ev in events_of(report, "langgraph.unencodable") if ev.node == "use"]
    assert [ev.metadata["paths"] for ev in noted] == [[f"$.update['seen'] {__name__}:Holder"]]
    assert noted[0].token_id == update.token_id
    assert "no canonical encoding" in caplog.text
    assert_verified(store, report.run_id)
