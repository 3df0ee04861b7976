"""Traces follow a run across a pause: the interrupt is a span event, the resumed run's
root span links to the last span of the run it continues and names the actor, and root
spans carry the run's LLM totals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from codon_sdk import CodonWorkload
from codon_sdk.errors import StoreError
from codon_sdk.stores import SQLiteStore


def _roots(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_workflow")]


def test_a_resumed_run_links_to_the_trace_it_continues(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve the refund?")

    wl = CodonWorkload(name="traced", version="1", org_namespace="tests", enable_tracing=True)
    wl.add_node(ask, "ask", "human")
    store = f"sqlite:///{tmp_path / 'l.db'}"
    wl.execute("x", deployment_id="dev", store=store, run_id="traced-1")
    (first,) = _roots(span_exporter)
    events = [e for s in span_exporter.get_finished_spans() for e in s.events]
    paused = [e for e in events if e.name == "codon.run.interrupted"]
    assert [e.attributes["codon.interrupt.reason"] for e in paused] == ["approve the refund?"]

    span_exporter.clear()
    wl.resume("traced-1", store=store, input="yes", actor="alice")
    (second,) = _roots(span_exporter)
    assert second.context.trace_id != first.context.trace_id
    (link,) = second.links
    assert link.context.trace_id == first.context.trace_id
    assert link.attributes["codon.link"] == "continues"
    (resumed,) = [e for e in second.events if e.name == "codon.run.resumed"]
    assert resumed.attributes["codon.actor"] == "alice"
    assert second.attributes["codon.workload.run_id"] == first.attributes["codon.workload.run_id"]


def test_a_new_run_has_no_link(span_exporter: InMemorySpanExporter) -> None:
    wl = CodonWorkload(name="fresh", version="1", org_namespace="tests", enable_tracing=True)
    wl.add_node(lambda m, *, runtime, context: m, "echo", "worker")
    wl.execute("x", deployment_id="dev")
    (root,) = _roots(span_exporter)
    assert list(root.links) == []
    assert not [e for e in root.events if e.name == "codon.run.resumed"]


def _ids(event: Any) -> tuple[str | None, str | None]:
    return event.trace_id, event.span_id


def _hex(span: Any) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


@pytest.mark.parametrize("concurrency", [1, 3])
def test_run_started_and_the_seed_tokens_carry_the_root_spans_ids(
    span_exporter: InMemorySpanExporter, concurrency: int
) -> None:
    """The root span exists before the run's first event: ``run_started`` names it."""
    wl = CodonWorkload(name="ids", version="1", org_namespace="tests", enable_tracing=True)
    wl.add_node(lambda m, *, runtime, context: m, "echo", "worker")
    report = wl.execute("x", deployment_id="dev", max_concurrency=concurrency)
    (root,) = _roots(span_exporter)
    started, seeded, *_ = report.events()
    assert (started.type, seeded.type) == ("run_started", "token_enqueued")
    assert _ids(started) == _ids(seeded) == _hex(root)
    (node,) = [s for s in span_exporter.get_finished_spans() if s.name == "codon.node.echo"]
    assert node.parent is not None
    assert node.parent.span_id == root.context.span_id


def test_run_resumed_carries_the_ids_of_the_resumed_runs_root_span(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?")

    wl = CodonWorkload(name="ids", version="1", org_namespace="tests", enable_tracing=True)
    wl.add_node(ask, "ask", "human")
    store = f"sqlite:///{tmp_path / 'l.db'}"
    wl.execute("x", deployment_id="dev", store=store, run_id="ids-1")
    span_exporter.clear()
    report = wl.resume("ids-1", store=store, input="yes", actor="alice")
    (root,) = _roots(span_exporter)
    (resumed,) = [e for e in report.events() if e.type == "run_resumed"]
    assert _ids(resumed) == _hex(root)


def test_a_run_whose_launch_fails_ends_its_root_span(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """A run that fails at launch (its first barrier: the store is closed), after its root
    span started, still ends that span: it is exported, not left open."""
    wl = CodonWorkload(name="ids", version="1", org_namespace="tests", enable_tracing=True)
    wl.add_node(lambda m, *, runtime, context: m, "echo", "worker")
    store = SQLiteStore(tmp_path / "l.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        wl.execute("x", deployment_id="dev", store=store)
    (root,) = _roots(span_exporter)
    assert root.end_time is not None
