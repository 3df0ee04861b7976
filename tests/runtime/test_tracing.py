"""enable_tracing=True: one ``codon.node.<name>`` span per activation (API.md "Tracing")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from codon_sdk import CodonWorkload, WorkloadRuntimeError

DOCUMENTED_ATTRIBUTES = (
    "codon.workload.id",
    "codon.workload.logic_id",
    "codon.workload.run_id",
    "codon.workload.deployment_id",
    "org.namespace",
    "codon.organization.id",
    "codon.nodespec.id",
    "codon.nodespec.name",
    "codon.nodespec.role",
)


def first(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.emit("second", {"value": message["value"] + 1})
    return {"value": message["value"]}


async def second(message: Any, *, runtime: Any, context: Any) -> Any:
    await asyncio.sleep(0)
    return message["value"]


def _workload(*, enable_tracing: bool) -> CodonWorkload:
    workload = CodonWorkload(name="Trace Agent", version="1.0.0", enable_tracing=enable_tracing)
    workload.add_node(first, "first", "starter")
    workload.add_node(second, "second", "finisher")
    workload.add_edge("first", "second")
    return workload


def _node_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("codon.node.")]


def test_tracing_emits_one_span_per_node_activation(span_exporter: InMemorySpanExporter) -> None:
    """Each activation (sync or async) gives one span named codon.node.<node name>."""
    _workload(enable_tracing=True).execute({"value": 1}, deployment_id="dev-trace")
    assert sorted(s.name for s in _node_spans(span_exporter)) == [
        "codon.node.first",
        "codon.node.second",
    ]


def test_node_spans_carry_the_documented_attributes(span_exporter: InMemorySpanExporter) -> None:
    """Every node span carries the documented identity attributes with the run's values."""
    workload = _workload(enable_tracing=True)
    report = workload.execute({"value": 1}, deployment_id="dev-trace")
    specs = {spec.name: spec for spec in workload.nodes}
    spans = _node_spans(span_exporter)
    assert len(spans) == 2
    for span in spans:
        attrs = dict(span.attributes or {})
        missing = [key for key in DOCUMENTED_ATTRIBUTES if key not in attrs]
        assert not missing, f"{span.name} lacks {missing}"
        spec = specs[span.name.removeprefix("codon.node.")]
        assert attrs["codon.workload.id"] == workload.agent_class_id
        assert attrs["codon.workload.logic_id"] == workload.logic_id
        assert attrs["codon.workload.run_id"] == report.run_id
        assert attrs["codon.workload.deployment_id"] == "dev-trace"
        assert attrs["org.namespace"] == "test-org"
        assert attrs["codon.nodespec.id"] == spec.id
        assert attrs["codon.nodespec.name"] == spec.name
        assert attrs["codon.nodespec.role"] == spec.role


def test_a_loop_gives_one_span_per_activation(span_exporter: InMemorySpanExporter) -> None:
    """A self-loop of three activations gives three spans, all with the same run id."""

    def loop(message: Any, *, runtime: Any, context: Any) -> Any:
        if message < 2:
            runtime.emit("loop", message + 1)
        return message

    workload = CodonWorkload(name="Loop", version="1", enable_tracing=True)
    workload.add_node(loop, "loop", "cycler")
    workload.add_edge("loop", "loop")
    report = workload.execute(0, deployment_id="d")
    spans = _node_spans(span_exporter)
    assert [s.name for s in spans] == ["codon.node.loop"] * 3
    assert {(s.attributes or {})["codon.workload.run_id"] for s in spans} == {report.run_id}


def test_tracing_off_by_default_makes_no_span(span_exporter: InMemorySpanExporter) -> None:
    """Without enable_tracing (or with it False) no codon span is made."""
    _workload(enable_tracing=False).execute({"value": 1}, deployment_id="d")
    workload = CodonWorkload(name="Default", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "only", "solo")
    workload.execute(1, deployment_id="d")
    assert span_exporter.get_finished_spans() == ()


def test_a_failing_node_span_is_marked_as_an_error(span_exporter: InMemorySpanExporter) -> None:
    """The span of an activation that raised has ERROR status and records the exception."""

    def boom(message: Any, *, runtime: Any, context: Any) -> Any:
        raise ValueError("kaput")

    workload = CodonWorkload(name="W", version="1", enable_tracing=True)
    workload.add_node(boom, "boom", "r")
    with pytest.raises(WorkloadRuntimeError):
        workload.execute(1, deployment_id="d")
    (span,) = _node_spans(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: kaput"  # what the node raised, unwrapped
    assert (span.attributes or {})["error.type"] == "ValueError"
    (event,) = [event for event in span.events if event.name == "exception"]
    assert (event.attributes or {})["exception.type"] == "ValueError"


def test_spans_of_one_run_are_ended_and_distinct(span_exporter: InMemorySpanExporter) -> None:
    """Node spans are finished, have distinct span ids and share one trace per run."""
    _workload(enable_tracing=True).execute({"value": 1}, deployment_id="d")
    spans = _node_spans(span_exporter)
    assert all(s.end_time is not None for s in spans)
    assert len({s.context.span_id for s in spans}) == len(spans)
    assert len({s.context.trace_id for s in spans}) == 1
