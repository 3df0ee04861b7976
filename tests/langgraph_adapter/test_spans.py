"""Spans of an adapted graph: the run's ``invoke_workflow`` root, one ``codon.node.*`` span per
activation under it, and the instrumented OpenAI calls under their node, whose usage and cost
the node span totals."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import openai
import pytest
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter, track_node
from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import OpenAIProtocolServer, capture_spans

from ._support import FlakyError, failing, map_reduce, with_subgraph


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    instrument_openai()
    yield
    uninstrument_openai()


class Chat(TypedDict):
    question: str
    answers: Annotated[list[str], operator.add]


def _chat_graph(server: OpenAIProtocolServer) -> StateGraph[Any]:
    """``direct`` calls the openai client twice; ``chain`` calls ChatOpenAI once."""
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0
    )

    def direct(state: Chat) -> dict[str, Any]:
        replies = [
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"{state['question']} {i}"}],
            )
            .choices[0]
            .message.content
            or ""
            for i in range(2)
        ]
        return {"answers": replies}

    def chain(state: Chat) -> dict[str, Any]:
        return {"answers": [str(model.invoke(state["question"]).content)]}

    graph = StateGraph(Chat)
    graph.add_node("direct", direct)
    graph.add_node("chain", chain)
    graph.add_edge(START, "direct")
    graph.add_edge("direct", "chain")
    return graph


def test_run_and_node_spans_nest_and_carry_the_codon_identity(
    openai_server: OpenAIProtocolServer,
) -> None:
    """invoke_workflow is the root; each activation's node span is its child and each LLM
    call's span a child of its node's span, whose usage and cost are the calls' totals."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        _chat_graph(openai_server), name="Span Agent", version="3", store=MemoryStore(),
        compile_kwargs={"checkpointer": InMemorySaver()},
    )  # fmt: skip
    with capture_spans() as captured:
        wrapped.invoke({"question": "hi", "answers": []}, {"configurable": {"thread_id": "c-9"}})
    report = wrapped.last_report
    root = captured.one("invoke_workflow Span Agent")
    assert root.parent is None or root.parent.span_id not in {
        s.context.span_id for s in captured.spans
    }
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs["codon.workload.run_id"] == report.run_id
    assert attrs["codon.workload.logic_id"] == wrapped.workload.logic_id
    assert attrs["gen_ai.conversation.id"] == attrs["codon.graph.thread_id"] == "c-9"
    assert attrs["codon.workload.status"] == "completed"
    nodes = {name: captured.one(f"codon.node.{name}") for name in ("__start__", "direct", "chain")}
    for name, span in nodes.items():
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
        node_attrs = dict(span.attributes or {})
        assert node_attrs["codon.nodespec.name"] == name
        assert node_attrs["codon.nodespec.id"] == wrapped.workload.node_spec(name).id
        assert node_attrs["codon.workload.run_id"] == report.run_id
    calls = captured.by_name("chat gpt-4o-mini")
    assert len(calls) == 3
    direct_calls = [c for c in calls if c.parent.span_id == nodes["direct"].context.span_id]
    chain_calls = [c for c in calls if c.parent.span_id == nodes["chain"].context.span_id]
    assert (len(direct_calls), len(chain_calls)) == (2, 1)
    for node, children in (("direct", direct_calls), ("chain", chain_calls)):
        node_attrs = dict(nodes[node].attributes or {})
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            assert node_attrs[key] == sum(dict(c.attributes or {})[key] for c in children)
        assert node_attrs["codon.gen_ai.cost.usd"] == pytest.approx(
            sum(dict(c.attributes or {})["codon.gen_ai.cost.usd"] for c in children)
        )
        assert node_attrs["codon.node.llm_calls"] == len(children)
    usage = report.usage["by_node"]
    assert usage["direct"]["calls"] == 2
    assert usage["chain"]["calls"] == 1


def test_ledger_events_carry_their_node_span_ids() -> None:
    """Events recorded inside an activation name the node span's trace and span ids."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(map_reduce([]), name="ids", version="1")
    with capture_spans() as captured:
        wrapped.invoke({"topics": ["a", "b"], "drafts": []})
    span_ids = {format(s.context.span_id, "016x") for s in captured.by_name("codon.node.draft")}
    completions = [
        ev
        for ev in wrapped.last_report.events()
        if ev.type == "node_completed" and ev.node == "draft"
    ]
    assert {ev.span_id for ev in completions} == span_ids
    assert len(captured.by_name("codon.node.draft")) == 2


def test_a_failing_node_marks_its_span_and_the_run_span_as_errors() -> None:
    """error.type is the node's exception class, on the node span and the run span."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(failing([]), name="Faulty", version="1")
    with capture_spans() as captured, pytest.raises(FlakyError):
        wrapped.invoke({"n": 0, "trail": []})
    node = captured.one("codon.node.boom")
    assert dict(node.attributes or {})["error.type"] == "FlakyError"
    assert node.status.status_code.name == "ERROR"
    root = captured.one("invoke_workflow Faulty")
    assert dict(root.attributes or {})["error.type"] == "FlakyError"
    assert dict(root.attributes or {})["codon.workload.status"] == "failed"


def test_a_subgraph_run_span_is_a_child_of_its_parent_node_span() -> None:
    """The child run's invoke_workflow span nests under the parent's subgraph node span."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(with_subgraph([]), name="outer", version="1")
    with capture_spans() as captured:
        wrapped.invoke({"text": "a b", "words": 0})
    parent_node = captured.one("codon.node.analyse")
    child_root = captured.one("invoke_workflow outer/analyse")
    assert child_root.parent is not None
    assert child_root.parent.span_id == parent_node.context.span_id
    child_node = captured.one("codon.node.count")
    assert child_node.parent is not None
    assert child_node.parent.span_id == child_root.context.span_id


def test_track_node_gives_a_function_a_nodespec_and_a_span_per_call() -> None:
    """Outside a graph the decorated function runs in its own node span; as a node of an
    adapted graph its role and model become the node's, and the adapter's span is the only one."""

    @track_node("summarise", role="writer", model_name="gpt-4o-mini", model_version="2024-07-18")
    def summarise(state: Chat) -> dict[str, Any]:
        return {"answers": [state["question"][::-1]]}

    assert summarise.nodespec.name == "summarise"  # type: ignore[attr-defined]
    assert summarise.nodespec.role == "writer"  # type: ignore[attr-defined]
    with capture_spans() as captured:
        assert summarise({"question": "abc", "answers": []}) == {"answers": ["cba"]}
    span = captured.one("codon.node.summarise")
    assert dict(span.attributes or {})["codon.nodespec.model_name"] == "gpt-4o-mini"

    graph = StateGraph(Chat)
    graph.add_node("summarise", summarise)
    graph.add_edge(START, "summarise")
    wrapped = LangGraphWorkloadAdapter.from_langgraph(graph, name="tracked", version="1")
    spec = wrapped.workload.node_spec("summarise")
    assert (spec.role, spec.model_name, spec.model_version) == (
        "writer",
        "gpt-4o-mini",
        "2024-07-18",
    )
    assert spec.code_hash == summarise.nodespec.code_hash  # type: ignore[attr-defined]
    with capture_spans() as captured:
        wrapped.invoke({"question": "xy", "answers": []})
    assert captured.names().count("codon.node.summarise") == 1


def test_track_node_span_records_errors_and_async_functions() -> None:
    """An exception marks the span and propagates; async functions are tracked too."""
    import asyncio

    @track_node("fetch", role="tool")
    async def fetch(url: str) -> str:
        if not url:
            raise ValueError("no url")
        return url.upper()

    with capture_spans() as captured:
        assert asyncio.run(fetch("x")) == "X"
        with pytest.raises(ValueError, match="no url"):
            asyncio.run(fetch(""))
    first, second = captured.by_name("codon.node.fetch")
    assert second.status.status_code.name == "ERROR"
    assert dict(second.attributes or {})["error.type"] == "ValueError"
    assert first.status.status_code.name != "ERROR"
