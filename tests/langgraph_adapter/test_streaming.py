"""Streaming through the adapter yields exactly what the unadapted graph yields, in every
stream mode, sync and async; a stream closed early ends its run as ``stopped``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import OpenAIProtocolServer

from ._support import (
    Counted,
    assert_verified,
    conditional_loop,
    linear,
    map_reduce,
    with_subgraph,
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RANDOM_KEYS = frozenset({"id", "timestamp", "checkpoint_id", "ts", "run_id"})


def _stable(value: Any) -> Any:
    """``value`` with what differs between any two runs (ids, timestamps) blanked out."""
    if isinstance(value, dict):
        return {k: ("*" if k in _RANDOM_KEYS else _stable(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_stable(v) for v in value)
    if isinstance(value, str):
        return _UUID.sub("*", value)
    if hasattr(value, "_asdict"):  # StateSnapshot and other named tuples
        return _stable(value._asdict())
    return value


def _pair(factory: Any, *, checkpointed: bool = False) -> tuple[Any, Any]:
    """The graph compiled plainly and adapted, each with its own checkpointer if asked."""
    plain = factory([]).compile(checkpointer=InMemorySaver() if checkpointed else None)
    adapted = LangGraphWorkloadAdapter.from_langgraph(
        factory([]),
        name="stream-test",
        version="1.0",
        compile_kwargs={"checkpointer": InMemorySaver()} if checkpointed else None,
    )
    return plain, adapted


MODES: list[Any] = [
    "values",
    "updates",
    "custom",
    "tasks",
    "debug",
    "checkpoints",
    ["values", "updates", "custom", "tasks"],
]


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_every_stream_mode_yields_the_unadapted_chunks(mode: Any) -> None:
    """values, updates, custom, tasks, debug, checkpoints and mixes: the same chunks, in order."""
    plain, adapted = _pair(linear, checkpointed=True)
    payload = {"items": [], "total": 0, "note": "s"}
    config = {"configurable": {"thread_id": "s"}}
    expected = list(plain.stream(payload, config, stream_mode=mode))
    got = list(adapted.stream(payload, config, stream_mode=mode))
    if mode in ("tasks", "debug", "checkpoints") or isinstance(mode, list):
        assert _stable(got) == _stable(expected)
    else:
        assert got == expected
    assert adapted.last_report.status == "completed"


def test_parallel_tasks_stream_the_same_chunks_in_langgraph_order() -> None:
    """Send fan-out: the same chunks; parallel tasks finish in any order, adapted or not."""
    plain, adapted = _pair(map_reduce)
    payload = {"topics": ["x", "y", "z"], "drafts": []}
    modes = ["values", "updates", "tasks"]
    expected = _stable(list(plain.stream(payload, stream_mode=modes)))
    got = _stable(list(adapted.stream(payload, stream_mode=modes)))
    assert sorted(map(repr, got)) == sorted(map(repr, expected))
    assert [c for c in got if c[0] == "values"] == [c for c in expected if c[0] == "values"]


def test_custom_stream_writes_from_nodes_pass_through() -> None:
    """get_stream_writer() inside a node reaches the caller unchanged."""

    def step(state: Counted) -> dict[str, Any]:
        get_stream_writer()({"at": state["n"]})
        return {"n": state["n"] + 1}

    graph = StateGraph(Counted)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    plain = graph.compile()
    adapted = LangGraphWorkloadAdapter.from_langgraph(graph, name="custom", version="1")
    modes = ["custom", "updates"]
    assert list(adapted.stream({"n": 4}, stream_mode=modes)) == list(
        plain.stream({"n": 4}, stream_mode=modes)
    )


def test_subgraph_streaming_yields_the_same_namespaced_chunks() -> None:
    """subgraphs=True: chunks from inside the subgraph carry the same namespaces."""
    plain, adapted = _pair(with_subgraph)
    payload = {"text": " A b C ", "words": 0}
    for mode in ("updates", ["values", "updates"]):
        expected = list(plain.stream(payload, stream_mode=mode, subgraphs=True))
        got = list(adapted.stream(payload, stream_mode=mode, subgraphs=True))
        assert _stable(got) == _stable(expected)


def test_async_streaming_yields_the_same_chunks() -> None:
    """astream in several modes, and astream_events' event sequence, match the unadapted graph."""
    plain, adapted = _pair(conditional_loop)
    payload = {"n": 2, "trail": []}

    async def collect(graph: Any, mode: Any) -> list[Any]:
        return [chunk async for chunk in graph.astream(payload, stream_mode=mode)]

    async def events(graph: Any) -> list[tuple[str, str]]:
        return [(e["event"], e["name"]) async for e in graph.astream_events(payload, version="v2")]

    async def scenario() -> None:
        for mode in ("values", "updates", ["values", "updates"]):
            assert await collect(adapted, mode) == await collect(plain, mode)
        assert await events(adapted) == await events(plain)

    asyncio.run(scenario())


def test_messages_mode_streams_the_same_llm_tokens(openai_server: OpenAIProtocolServer) -> None:
    """stream_mode="messages" with a langchain-openai model: the same token chunks."""
    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", max_retries=0
    )

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    plain = graph.compile()
    adapted = LangGraphWorkloadAdapter.from_langgraph(graph, name="chat", version="1")
    payload = {"messages": [("user", "stream me a few words")]}

    def tokens(graph: Any) -> list[tuple[str, str]]:
        return [
            (str(chunk.content), meta["langgraph_node"])
            for chunk, meta in graph.stream(payload, stream_mode="messages")
        ]

    expected = tokens(plain)
    assert expected
    assert tokens(adapted) == expected
    assert adapted.last_report.status == "completed"


def test_closing_a_stream_early_ends_the_run_as_stopped() -> None:
    """A consumer that stops reading: the run is finished as ``stopped`` and still verifies."""
    store = MemoryStore()
    adapted = LangGraphWorkloadAdapter.from_langgraph(
        conditional_loop([]), name="early", version="1", store=store
    )
    stream = adapted.stream({"n": 0, "trail": []}, stream_mode="updates")
    first = next(stream)
    assert "step" in first
    stream.close()
    report = adapted.last_report
    assert report.status == "stopped"
    assert report.reason == "the caller stopped reading the stream"
    assert_verified(store, report.run_id)
