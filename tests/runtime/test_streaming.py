"""execute_streaming and execute_streaming_async: events as they happen (API.md Part 1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport, StreamEvent, WorkloadRuntimeError

DOCUMENTED_TYPES = {
    "token_enqueued",
    "token_dequeued",
    "node_started",
    "node_completed",
    "node_failed",
    "runtime_event",
    "runtime_stopped",
    "workflow_finished",
}


def ingest(message: Any, *, runtime: Any, context: Any) -> Any:
    tokens = message["text"].split()
    runtime.record_event("ingested", metadata={"n": len(tokens)})
    runtime.emit("count", {"words": tokens})
    return tokens


def count(message: Any, *, runtime: Any, context: Any) -> int:
    runtime.stop()
    return len(message["words"])


@pytest.fixture
def workload() -> CodonWorkload:
    wl = CodonWorkload(name="Streamer", version="1")
    wl.add_node(ingest, "ingest", "parser")
    wl.add_node(count, "count", "analyzer")
    wl.add_edge("ingest", "count")
    return wl


def _check_stream(events: list[StreamEvent]) -> ExecutionReport:
    types = [e.event_type for e in events]
    for expected in sorted(DOCUMENTED_TYPES - {"node_failed", "workflow_finished"}):
        assert expected in types, f"no {expected} event in {types}"
    assert types[-1] == "workflow_finished"
    assert types.count("workflow_finished") == 1
    for event in events:
        assert isinstance(event, StreamEvent)
        assert isinstance(event.data, dict)
        assert isinstance(event.timestamp, dt.datetime)
        assert event.timestamp.utcoffset() == dt.timedelta(0)
    report = events[-1].data["report"]
    assert isinstance(report, ExecutionReport)
    return report


def test_execute_streaming_yields_events_then_the_report(workload: CodonWorkload) -> None:
    """The sync stream yields the documented event types; the last carries the report."""
    events = list(workload.execute_streaming({"text": "hello codon"}, deployment_id="dev"))
    report = _check_stream(events)
    assert report.node_results("count") == [2]
    assert report.status == "stopped"


def test_execute_streaming_async_yields_events_then_the_report(workload: CodonWorkload) -> None:
    """The async stream yields the same kinds of events, ending with workflow_finished."""

    async def collect() -> list[StreamEvent]:
        return [
            event
            async for event in workload.execute_streaming_async(
                {"text": "a b c"}, deployment_id="dev"
            )
        ]

    report = _check_stream(asyncio.run(collect()))
    assert report.node_results("count") == [3]


def test_stream_events_come_in_activation_order(workload: CodonWorkload) -> None:
    """For each node, dequeue precedes start precedes completion; ingest finishes before count."""
    events = list(workload.execute_streaming({"text": "x"}, deployment_id="dev"))
    lifecycle = [
        (e.event_type, e.data.get("node"))
        for e in events
        if e.event_type in ("node_started", "node_completed")
    ]
    assert lifecycle == [
        ("node_started", "ingest"),
        ("node_completed", "ingest"),
        ("node_started", "count"),
        ("node_completed", "count"),
    ]
    custom = [e for e in events if e.event_type == "runtime_event"]
    assert len(custom) == 1
    assert "ingested" in custom[0].data.values()


def test_streaming_passes_execute_arguments(workload: CodonWorkload) -> None:
    """Streaming forwards entry_nodes, max_steps and context extras like execute does."""
    seen: list[Any] = []

    def probe(message: Any, *, runtime: Any, context: Any) -> Any:
        seen.append(context["invoked_by"])
        return message

    workload.add_node(probe, "probe", "r")
    events = list(
        workload.execute_streaming(
            {"x": 1}, deployment_id="dev", entry_nodes=["probe"], max_steps=5, invoked_by="cli"
        )
    )
    assert seen == ["cli"]
    assert events[-1].data["report"].node_results("probe") == [{"x": 1}]


def test_sync_streaming_inside_a_running_loop_is_a_runtime_error(
    workload: CodonWorkload,
) -> None:
    """execute_streaming raises RuntimeError when called from inside a running event loop."""

    async def inside() -> None:
        with pytest.raises(RuntimeError):
            for _ in workload.execute_streaming({"text": "x"}, deployment_id="dev"):
                pass

    asyncio.run(inside())


def test_streaming_a_failing_run_reports_the_failure() -> None:
    """A node failure is streamed as node_failed, then WorkloadRuntimeError is raised."""

    def boom(message: Any, *, runtime: Any, context: Any) -> Any:
        raise ValueError("kaput")

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(boom, "boom", "r")
    received: list[StreamEvent] = []
    stream = wl.execute_streaming(None, deployment_id="dev")
    with pytest.raises(WorkloadRuntimeError) as info:
        received.extend(stream)
    assert "node_failed" in [e.event_type for e in received]
    assert isinstance(info.value.__cause__, ValueError)


def test_events_arrive_while_the_run_is_still_going() -> None:
    """The consumer sees the first node's completion before the slow second node finishes."""
    finished_at: dict[str, float] = {}

    async def quick(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("slow", message)
        return "quick"

    async def slow(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0.3)
        finished_at["slow"] = time.monotonic()
        return "slow"

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(quick, "quick", "r")
    wl.add_node(slow, "slow", "r")
    wl.add_edge("quick", "slow")
    received_at: dict[str, float] = {}
    for event in wl.execute_streaming(None, deployment_id="dev"):
        if event.event_type == "node_completed" and event.data.get("node") == "quick":
            received_at["quick"] = time.monotonic()
    assert received_at["quick"] < finished_at["slow"]


def test_abandoning_a_stream_early_is_clean() -> None:
    """Breaking out of the stream and closing it cancels the run without errors or warnings."""

    async def tick(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0.01)
        runtime.emit("tick", message + 1)
        return message

    wl = CodonWorkload(name="W", version="1")
    wl.add_node(tick, "tick", "r")
    wl.add_edge("tick", "tick")
    stream = wl.execute_streaming(0, deployment_id="dev", max_steps=100_000)
    seen = 0
    for event in stream:
        seen += event.event_type == "node_completed"
        if seen == 3:
            break
    stream.close()  # type: ignore[attr-defined]

    async def abandon_async() -> None:
        agen = wl.execute_streaming_async(0, deployment_id="dev", max_steps=100_000)
        async for event in agen:
            if event.event_type == "node_completed":
                break
        await agen.aclose()  # type: ignore[attr-defined]

    asyncio.run(abandon_async())
