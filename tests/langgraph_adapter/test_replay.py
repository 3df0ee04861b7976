"""``workload.replay`` re-runs a recorded LangGraph run through LangGraph, its LLM calls served
from the ledger (the OpenAI-protocol server is stopped), and says where today's code differs."""

from __future__ import annotations

import operator
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import openai
import pytest
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk import CodonWorkload
from codon_sdk.cli import main as codon
from codon_sdk.errors import ReplayError
from codon_sdk.stores import LedgerStore, MemoryStore
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, echo_fallback

from ._support import approval, assert_verified, linear, with_subgraph


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    instrument_openai()
    yield
    uninstrument_openai()


class Research(TypedDict):
    topics: list[str]
    notes: Annotated[list[str], operator.add]
    summary: str


def research(base_url: str, *, polite: bool = False) -> StateGraph[Any]:
    """Fan out one ``ask`` per topic (each: the openai client, then ChatOpenAI), summarise."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    model = ChatOpenAI(model="gpt-4o-mini", base_url=base_url, api_key="sk-test", max_retries=0)

    def plan(state: Research) -> dict[str, Any]:
        return {}

    def fan_out(state: Research) -> list[Send]:
        return [Send("ask", {"topic": t}) for t in state["topics"]]

    def ask(state: dict[str, Any]) -> dict[str, Any]:
        first = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"about {state['topic']}"}]
        )
        second = model.invoke(f"more on {state['topic']}")
        return {"notes": [f"{first.choices[0].message.content} / {second.content}"]}

    def summarise(state: Research) -> dict[str, Any]:
        text = " | ".join(sorted(state["notes"]))
        return {"summary": f"Please note: {text}" if polite else text}

    graph = StateGraph(Research)
    graph.add_node("plan", plan)
    graph.add_node("ask", ask)
    graph.add_node("summarise", summarise)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["ask"])
    graph.add_edge("ask", "summarise")
    graph.add_edge("summarise", END)
    return graph


def _record(store: LedgerStore, *, polite: bool = False) -> tuple[Any, str, OpenAIProtocolServer]:
    """Run the research graph against a live local server, then stop the server."""
    server = OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback)
    server.start()
    try:
        wrapped = LangGraphWorkloadAdapter.from_langgraph(
            research(server.base_url, polite=polite), name="research", version="1", store=store
        )
        out = wrapped.invoke({"topics": ["tides", "moons", "orbits"], "notes": []})
    finally:
        server.stop()
    assert len(server.requests) == 6
    assert out["summary"].count("echo: about") == 3
    report = wrapped.last_report
    assert report.usage["total"]["calls"] == 6
    return wrapped, report.run_id, server


def test_a_run_with_llm_calls_replays_identically_with_the_server_stopped(
    sqlite_store: LedgerStore,
) -> None:
    """Six OpenAI calls (direct and through langchain-openai) in parallel Send tasks: the replay
    serves every one from the ledger and decides exactly what the run decided."""
    wrapped, run_id, server = _record(sqlite_store)
    outcome = wrapped.workload.replay(run_id, store=sqlite_store)
    assert outcome.identical, outcome.summary()
    assert outcome.activations_compared == 6  # __start__, plan, 3 x ask, summarise
    assert outcome.recorded_status == outcome.replay_status == "completed"
    assert not outcome.logic_changed
    assert len(server.requests) == 6  # nothing reached the (stopped) server
    assert outcome.report is not None
    assert outcome.report.usage["total"]["calls"] == 0  # served, not made
    assert_verified(sqlite_store, run_id)


def test_changed_code_replays_as_a_divergence_naming_the_node(store: MemoryStore) -> None:
    """Today's summarise answers differently: the replay says so, and that the logic changed."""
    _, run_id, _ = _record(store)
    changed = LangGraphWorkloadAdapter.from_langgraph(
        research("http://127.0.0.1:9/v1", polite=True), name="research", version="1", store=store
    )
    outcome = changed.workload.replay(run_id, store=store)
    assert not outcome.identical
    assert outcome.logic_changed
    assert outcome.logic_diff["changed_nodes"] == ["summarise"]
    first = outcome.first_divergence
    assert first is not None
    assert first.node == "summarise"
    assert first.what == "the node returned a different result"


def test_a_call_the_ledger_lacks_is_a_divergence_not_a_live_call(store: MemoryStore) -> None:
    """Code that now asks the model one more question diverges; nothing is sent."""
    server = OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback)
    with server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        asks = {"n": 1}

        def ask(state: Research) -> dict[str, Any]:
            notes = [
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}]
                )
                .choices[0]
                .message.content
                or ""
                for i in range(asks["n"])
            ]
            return {"notes": notes}

        graph = StateGraph(Research)
        graph.add_node("ask", ask)
        graph.add_edge(START, "ask")
        wrapped = LangGraphWorkloadAdapter.from_langgraph(
            graph, name="curious", version="1", store=store
        )
        wrapped.invoke({"topics": [], "notes": []})
        run_id = wrapped.last_report.run_id
        asks["n"] = 2
        sent = len(server.requests)
        outcome = wrapped.workload.replay(run_id, store=store)
        assert len(server.requests) == sent == 1
    assert not outcome.identical
    assert outcome.first_divergence is not None
    assert outcome.first_divergence.what == "effect divergence"
    assert "does not hold" in str(outcome.first_divergence.actual)


def test_interrupted_and_resumed_run_with_a_subgraph_replays_identically(
    store: MemoryStore,
) -> None:
    """Pause, resume with Command(resume=...), subgraph child runs: the replay repeats both
    invocations on a private checkpointer and compares the child run too."""
    saver = InMemorySaver()
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        approval([]), name="replayed", version="1", store=store,
        compile_kwargs={"checkpointer": saver},
    )  # fmt: skip
    config = {"configurable": {"thread_id": "case-1"}}
    wrapped.invoke({"request": "upgrade", "log": []}, config)
    wrapped.invoke(Command(resume="yes"), config)
    outcome = wrapped.workload.replay(wrapped.last_report.run_id, store=store)
    assert outcome.identical, outcome.summary()
    assert outcome.activations_compared == 4  # __start__, draft, review (completed once), act

    nested = LangGraphWorkloadAdapter.from_langgraph(
        with_subgraph([]), name="nested", version="1", store=store
    )
    nested.invoke({"text": " one two ", "words": 0})
    outcome = nested.workload.replay(nested.last_report.run_id, store=store)
    assert outcome.identical, outcome.summary()
    assert outcome.activations_compared == 4 + 3  # parent + child run


def test_a_turn_on_a_continued_thread_replays_from_its_recorded_start(store: MemoryStore) -> None:
    """The second turn of a thread starts from the thread's checkpoint: recorded, so the
    replay starts there too."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        linear([]), name="turns", version="1", store=store,
        compile_kwargs={"checkpointer": InMemorySaver()},
    )  # fmt: skip
    plain = linear([]).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "chat"}}
    for turn in ({"items": [], "total": 0, "note": "first"}, {"items": ["more"], "note": "2nd"}):
        assert wrapped.invoke(turn, config) == plain.invoke(turn, config)
    second = wrapped.last_report
    (invocation,) = [ev for ev in second.events() if ev.type == "langgraph.invocation"]
    assert invocation.payload["start_checkpoint"]["checkpoint"]["channel_values"]["total"] == 2
    outcome = wrapped.workload.replay(second.run_id, store=store)
    assert outcome.identical, outcome.summary()


def test_replay_refuses_a_run_the_adapter_did_not_record(store: MemoryStore) -> None:
    """A plain CodonWorkload run is replayed by its own workload, not through LangGraph."""
    plain = CodonWorkload(name="plain", version="1")
    plain.add_node(lambda m, *, runtime, context: m, "echo", "worker")
    run_id = plain.execute("hi", deployment_id="dev", store=store).run_id
    wrapped = LangGraphWorkloadAdapter.from_langgraph(linear([]), name="x", version="1")
    with pytest.raises(ReplayError, match="not recorded by the LangGraph adapter"):
        wrapped.workload.replay(run_id, store=store)


_AGENT = '''
"""A LangGraph agent for `codon replay --workload replay_agent:graph`."""
import os
from typing import TypedDict

import openai
from langgraph.graph import START, StateGraph

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter


class State(TypedDict):
    question: str
    answer: str


def answer(state: State) -> dict:
    client = openai.OpenAI(base_url=os.environ["AGENT_BASE_URL"], api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": state["question"]}]
    )
    return {"answer": reply.choices[0].message.content}


builder = StateGraph(State)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
graph = LangGraphWorkloadAdapter.from_langgraph(
    builder, name="cli-agent", version="1", store=os.environ["AGENT_LEDGER"]
)
'''


def test_codon_replay_cli_accepts_the_wrapped_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`codon replay RUN_ID --workload module:graph` finds the workload on the wrapped graph."""
    (tmp_path / "replay_agent.py").write_text(textwrap.dedent(_AGENT))
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AGENT_LEDGER", ledger)
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        monkeypatch.setenv("AGENT_BASE_URL", server.base_url)
        import replay_agent

        out = replay_agent.graph.invoke({"question": "ping?", "answer": ""})
        run_id = replay_agent.graph.last_report.run_id
        replay_agent.graph.workload._bound().store.close()
    assert out["answer"] == "echo: ping?"
    try:
        assert (
            codon(["replay", run_id, "--workload", "replay_agent:graph", "--ledger", ledger]) == 0
        )
    finally:
        sys.modules.pop("replay_agent", None)
    assert "IDENTICAL" in capsys.readouterr().out


def test_a_run_streamed_in_messages_mode_replays_its_streamed_llm_calls(
    store: MemoryStore,
) -> None:
    """Streamed for tokens (stream_mode="messages"), ChatOpenAI streams its call; the replay
    streams the same way and is served the recorded stream."""
    from langgraph.graph import MessagesState

    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        model = ChatOpenAI(
            model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0
        )

        def chat(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("chat", chat)
        graph.add_edge(START, "chat")
        wrapped = LangGraphWorkloadAdapter.from_langgraph(
            graph, name="streamer", version="1", store=store
        )
        tokens = [
            str(chunk.content)
            for chunk, _ in wrapped.stream(
                {"messages": [("user", "say it slowly")]}, stream_mode="messages"
            )
        ]
    assert "".join(tokens) == "echo: say it slowly"
    report = wrapped.last_report
    (effect,) = [ev for ev in report.events() if ev.type == "effect_recorded"]
    assert effect.metadata["llm"]["request"].get("stream") is True
    outcome = wrapped.workload.replay(report.run_id, store=store)
    assert outcome.identical, outcome.summary()


# --------------------------------------------------------------------------- requests, live


class Letter(TypedDict):
    topic: str
    draft: str
    final: str


def letter(base_url: str, prompt: str) -> StateGraph[Any]:
    """``draft`` asks the model with ``prompt``; ``polish`` asks it about the draft."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    def chat(content: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
        )
        return reply.choices[0].message.content or ""

    def draft(state: Letter) -> dict[str, Any]:
        return {"draft": chat(f"{prompt} {state['topic']}")}

    def polish(state: Letter) -> dict[str, Any]:
        return {"final": chat(f"Polish: {state['draft']}")}

    graph = StateGraph(Letter)
    graph.add_node("draft", draft)
    graph.add_node("polish", polish)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "polish")
    return graph


def _letter_run(store: LedgerStore, server: OpenAIProtocolServer) -> str:
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        letter(server.base_url, "Write a letter about"), name="letters", version="1", store=store
    )
    out = wrapped.invoke({"topic": "tides", "draft": "", "final": ""})
    assert out["final"] == "echo: Polish: echo: Write a letter about tides"
    return str(wrapped.last_report.run_id)


def _letters(base_url: str, prompt: str, store: LedgerStore) -> Any:
    return LangGraphWorkloadAdapter.from_langgraph(
        letter(base_url, prompt), name="letters", version="1", store=store
    ).workload


def test_a_changed_prompt_in_a_graph_node_is_a_request_divergence(
    sqlite_store: LedgerStore,
) -> None:
    """Served from the ledger with the server stopped: the changed request is reported with
    both prompts, and the recorded answers keep the rest of the run identical."""
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        run_id = _letter_run(sqlite_store, server)
        url = server.base_url
    assert (
        _letters(url, "Write a letter about", sqlite_store)
        .replay(run_id, store=sqlite_store)
        .identical
    )
    outcome = _letters(url, "Write a poem about", sqlite_store).replay(run_id, store=sqlite_store)
    assert [(d.node, d.what) for d in outcome.divergences] == [("draft", "request changed")]
    (changed,) = outcome.divergences
    assert changed.expected["messages"][0]["content"] == "Write a letter about tides"
    assert changed.actual["messages"][0]["content"] == "Write a poem about tides"
    assert "'Write a letter about tides'" in outcome.summary()
    assert len(server.requests) == 2


def test_a_live_graph_node_calls_the_server_alone(sqlite_store: LedgerStore) -> None:
    """``live=["draft"]``: one request, draft's, with today's prompt; polish is served."""
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        run_id = _letter_run(sqlite_store, server)
        workload = _letters(server.base_url, "Write a poem about", sqlite_store)
        outcome = workload.replay(run_id, store=sqlite_store, live=["draft"])
        sent = [r.body["messages"][0]["content"] for r in server.requests[2:]]
        assert sent == ["Write a poem about tides"]
        same = _letters(server.base_url, "Write a letter about", sqlite_store)
        assert same.replay(run_id, store=sqlite_store, live=["draft"]).identical
        assert len(server.requests) == 4
        with pytest.raises(ReplayError, match=r"nodes are: .*draft, polish"):
            workload.replay(run_id, store=sqlite_store, live=["drafts"])
    assert outcome.live == ("draft",)
    assert ("draft", "request changed") in {(d.node, d.what) for d in outcome.divergences}
    assert ("polish", "request changed") in {(d.node, d.what) for d in outcome.divergences}


def _nested_letter(base_url: str) -> StateGraph[Any]:
    """``intro`` asks the model, then ``body`` (a compiled subgraph of one asking node)."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    def chat(content: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
        )
        return reply.choices[0].message.content or ""

    def intro(state: Letter) -> dict[str, Any]:
        return {"draft": chat(f"Intro for {state['topic']}")}

    def write(state: Letter) -> dict[str, Any]:
        return {"final": chat(f"Body for {state['topic']}")}

    inner = StateGraph(Letter)
    inner.add_node("write", write)
    inner.add_edge(START, "write")
    graph = StateGraph(Letter)
    graph.add_node("intro", intro)
    graph.add_node("body", inner.compile())
    graph.add_edge(START, "intro")
    graph.add_edge("intro", "body")
    return graph


def test_a_live_node_that_runs_a_subgraph_makes_the_subgraphs_calls_for_real(
    store: MemoryStore,
) -> None:
    """``live=["body"]``: the subgraph's call reaches the server; intro's is served."""
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        wrapped = LangGraphWorkloadAdapter.from_langgraph(
            _nested_letter(server.base_url), name="nested-letters", version="1", store=store
        )
        wrapped.invoke({"topic": "tides", "draft": "", "final": ""})
        assert len(server.requests) == 2
        outcome = wrapped.workload.replay(wrapped.last_report.run_id, store=store, live=["body"])
        sent = [r.body["messages"][0]["content"] for r in server.requests[2:]]
    assert sent == ["Body for tides"]
    assert outcome.identical, outcome.summary()
