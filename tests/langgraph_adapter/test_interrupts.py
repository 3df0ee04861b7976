"""Checkpointers, ``interrupt()`` and ``Command(resume=...)``: one run, paused and resumed;
the thread id is the conversation id; a thread continued on changed code shows it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import OpenAIProtocolServer

from ._support import (
    Approval,
    Linear,
    approval,
    assert_verified,
    completed,
    events_of,
    linear,
)


def _adapt(
    graph: StateGraph[Any], store: MemoryStore, saver: Any = None, version: str = "1.0", **kw: Any
) -> Any:
    return LangGraphWorkloadAdapter.from_langgraph(
        graph,
        name="approvals",
        version=version,
        store=store,
        compile_kwargs={"checkpointer": saver or InMemorySaver(), **kw},
    )


def _one_node(fn: Any) -> StateGraph[Any]:
    graph = StateGraph(Linear)
    graph.add_node("reply", fn)
    graph.add_edge(START, "reply")
    return graph


def _values(out: dict[str, Any]) -> dict[str, Any]:
    """An invoke output with its interrupts reduced to their values (ids are random)."""
    return {k: ([i.value for i in v] if k == "__interrupt__" else v) for k, v in out.items()}


def test_interrupt_pauses_the_run_and_resume_continues_the_same_run(store: MemoryStore) -> None:
    """run_interrupted names the node and the question; the resume is run_resumed in the same
    run with the actor from the config; the re-run activation names the interrupted token."""
    plain = approval([]).compile(checkpointer=InMemorySaver())
    calls: list[str] = []
    graph = _adapt(approval(calls), store)
    config = {"configurable": {"thread_id": "ticket-7"}}
    request = {"request": "refund", "log": []}

    first = graph.invoke(request, config)
    assert _values(first) == _values(plain.invoke(request, config))
    paused = graph.last_report
    assert paused.status == "interrupted"
    assert paused.context["conversation_id"] == "ticket-7"
    (stop,) = events_of(paused, "run_interrupted")
    assert stop.node == "review"
    (asked,) = stop.metadata["payload"]["interrupts"]
    assert asked["value"] == {"question": "approve refund?"}
    assert asked["token_id"] == stop.token_id

    resume = {"configurable": {"thread_id": "ticket-7", "actor": "alice@example.com"}}
    final = graph.invoke(Command(resume="yes"), resume)
    assert final == plain.invoke(Command(resume="yes"), resume)
    report = graph.last_report
    assert report.run_id == paused.run_id
    assert report.status == "completed"
    (resumed,) = events_of(report, "run_resumed")
    assert resumed.actor == "alice@example.com"
    assert resumed.metadata["input"] == "yes"
    reviews = [ev for ev in events_of(report, "token_enqueued") if ev.target == "review"]
    assert len(reviews) == 2
    assert reviews[1].metadata["langgraph.resumes"] == reviews[0].token_id
    assert completed(report) == Counter({"draft": 1, "review": 1, "act": 1})
    assert calls == ["draft", "review", "review", "act"]
    assert len(store.runs()) == 1
    assert_verified(store, report.run_id)


def test_resume_serves_llm_calls_made_before_the_interrupt_from_the_ledger(
    store: MemoryStore, openai_server: OpenAIProtocolServer
) -> None:
    """A node that asks the model, then interrupt(): on resume LangGraph runs the node again,
    and the model's answer comes from the ledger instead of a second request."""
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)

    def propose(state: Approval) -> dict[str, Any]:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": state["request"]}]
        )
        answer = interrupt({"proposal": reply.choices[0].message.content})
        return {"decision": answer, "log": [reply.choices[0].message.content or ""]}

    graph = StateGraph(Approval)
    graph.add_node("propose", propose)
    graph.add_edge(START, "propose")
    wrapped = _adapt(graph, store)
    config = {"configurable": {"thread_id": "t-llm"}}
    instrument_openai()
    try:
        paused = wrapped.invoke({"request": "draft a reply", "log": []}, config)
        assert [i.value for i in paused["__interrupt__"]] == [{"proposal": "echo: draft a reply"}]
        assert len(openai_server.requests) == 1
        final = wrapped.invoke(Command(resume="ship it"), config)
    finally:
        uninstrument_openai()
    assert final["log"] == ["echo: draft a reply"]
    assert final["decision"] == "ship it"
    assert len(openai_server.requests) == 1  # served from the ledger on resume
    report = wrapped.last_report
    assert [ev.metadata["name"] for ev in events_of(report, "effect_recorded")] == ["openai.chat"]
    assert report.usage["total"]["calls"] == 1
    assert_verified(store, report.run_id)


def test_thread_continued_on_changed_code_is_a_logic_id_change(store: MemoryStore) -> None:
    """Turn 2 of a thread, run by a graph whose node changed, names turn 1's run and logic id
    and flags the change; resuming an interrupted run on changed code records the change."""
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": "conversation-1"}}

    def reply_v1(state: Any) -> dict[str, Any]:
        return {"items": [f"re: {state['note']}"]}

    def reply_v2(state: Any) -> dict[str, Any]:
        return {"items": [f"Re: {state['note'].upper()}"]}

    v1 = _adapt(_one_node(reply_v1), store, saver)
    v1.invoke({"items": [], "total": 0, "note": "n"}, config)
    turn1 = v1.last_report
    v2 = _adapt(_one_node(reply_v2), store, saver)
    assert v2.workload.logic_id != v1.workload.logic_id
    v2.invoke({"items": [], "note": "again"}, config)
    turn2 = v2.last_report
    assert turn2.run_id != turn1.run_id
    assert turn2.context["conversation_id"] == turn1.context["conversation_id"]
    (invocation,) = events_of(turn2, "langgraph.invocation")
    assert invocation.metadata["previous_run"] == {
        "run_id": turn1.run_id,
        "logic_id": v1.workload.logic_id,
        "logic_changed": True,
    }
    assert turn2.logic_id == v2.workload.logic_id != turn1.logic_id

    approvals_v1 = _adapt(approval([]), store, saver)
    paused_config = {"configurable": {"thread_id": "conversation-2"}}
    approvals_v1.invoke({"request": "x", "log": []}, paused_config)
    approvals_v2 = _adapt(approval([]), store, saver, version="2.0")
    approvals_v2.invoke(Command(resume="no"), paused_config)
    (resumed,) = events_of(approvals_v2.last_report, "run_resumed")
    change = resumed.metadata["logic_change"]
    assert change["from"] == approvals_v1.workload.logic_id
    assert change["to"] == approvals_v2.workload.logic_id


def test_static_breakpoint_pauses_the_run_and_invoke_none_resumes_it(store: MemoryStore) -> None:
    """interrupt_before: the run pauses before the node; invoke(None) continues the same run."""
    plain = linear([]).compile(checkpointer=InMemorySaver(), interrupt_before=["c"])
    wrapped = _adapt(linear([]), store, interrupt_before=["c"])
    config = {"configurable": {"thread_id": "bp"}}
    payload = {"items": [], "total": 0, "note": ""}
    assert wrapped.invoke(payload, config) == plain.invoke(payload, config)
    paused = wrapped.last_report
    assert paused.status == "interrupted"
    assert "breakpoint before c" in (paused.reason or "")
    assert wrapped.invoke(None, config) == plain.invoke(None, config)
    report = wrapped.last_report
    assert report.run_id == paused.run_id
    assert report.status == "completed"
    assert completed(report) == Counter({"a": 1, "b": 1, "c": 1})
    assert_verified(store, report.run_id)


def test_workload_resume_answers_an_interrupted_run_by_its_id(store: MemoryStore) -> None:
    """workload.resume(run_id, input=..., actor=...) resumes the run's thread."""
    wrapped = _adapt(approval([]), store)
    wrapped.invoke({"request": "delete", "log": []}, {"configurable": {"thread_id": "r"}})
    run_id = wrapped.last_report.run_id
    report = wrapped.workload.resume(run_id, input="no", actor="bob")
    assert report.run_id == run_id
    assert report.status == "completed"
    assert completed(report)["reject"] == 1
    (resumed,) = events_of(report, "run_resumed")
    assert resumed.actor == "bob"


def test_new_input_on_a_thread_starts_a_new_run_with_the_same_conversation(
    store: MemoryStore,
) -> None:
    """Each turn of a conversation is its own run; all carry the thread id."""
    wrapped = _adapt(linear([]), store)
    config = {"configurable": {"thread_id": "chat"}}
    for note in ("one", "two", "three"):
        wrapped.invoke({"items": [], "total": 0, "note": note}, config)
    runs = store.runs()
    assert len(runs) == 3
    for info in runs:
        assert_verified(store, info.run_id)
    contexts = {wrapped.last_report.context["conversation_id"]}
    assert contexts == {"chat"}
