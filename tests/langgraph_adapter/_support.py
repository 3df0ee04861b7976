"""The graphs of the LangGraph adapter tests and the checks their ledgers go through.

Every node appends its name to ``calls`` when it runs, so a test knows the node
executions LangGraph performed; LangGraph's own ``tasks`` stream names them
too, with their task ids, which the ledger records with each activation.
"""

from __future__ import annotations

import asyncio
import operator
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from codon_sdk import ExecutionReport, verify_run
from codon_sdk.ledger._events import LedgerEvent
from codon_sdk.stores import LedgerStore


class Linear(TypedDict):
    items: Annotated[list[str], operator.add]
    total: Annotated[int, operator.add]
    note: str


def linear(calls: list[str]) -> StateGraph[Any]:
    """START -> a -> b -> c -> END, with list and sum reducers and a plain key."""

    def a(state: Linear) -> dict[str, Any]:
        calls.append("a")
        return {"items": ["a"], "total": 1}

    def b(state: Linear) -> dict[str, Any]:
        calls.append("b")
        return {"items": ["b"], "total": len(state["items"]), "note": "b saw " + state["note"]}

    def c(state: Linear) -> dict[str, Any]:
        calls.append("c")
        return {"items": [f"c{state['total']}"]}

    graph = StateGraph(Linear)
    graph.add_node("a", a)
    graph.add_node("b", b)
    graph.add_node("c", c)
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", END)
    return graph


class Counted(TypedDict):
    n: int
    trail: Annotated[list[int], operator.add]


def conditional_loop(calls: list[str], limit: int = 5) -> StateGraph[Any]:
    """``step`` loops on itself through a conditional edge until ``n`` reaches ``limit``."""

    def step(state: Counted) -> dict[str, Any]:
        calls.append("step")
        return {"n": state["n"] + 1, "trail": [state["n"]]}

    def done(state: Counted) -> dict[str, Any]:
        calls.append("done")
        return {"trail": [-1]}

    def route(state: Counted) -> Literal["step", "done"]:
        return "step" if state["n"] < limit else "done"

    graph = StateGraph(Counted)
    graph.add_node("step", step)
    graph.add_node("done", done)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", route)
    graph.add_edge("done", END)
    return graph


class Mapped(TypedDict):
    topics: list[str]
    drafts: Annotated[list[str], operator.add]
    summary: str


def map_reduce(calls: list[str]) -> StateGraph[Any]:
    """``plan`` sends one ``draft`` task per topic (Send); ``reduce`` joins the drafts."""

    def plan(state: Mapped) -> dict[str, Any]:
        calls.append("plan")
        return {}

    def fan_out(state: Mapped) -> list[Send]:
        return [Send("draft", {"topic": t}) for t in state["topics"]]

    def draft(state: dict[str, Any]) -> dict[str, Any]:
        calls.append("draft")
        return {"drafts": [state["topic"].upper()]}

    def reduce(state: Mapped) -> dict[str, Any]:
        calls.append("reduce")
        return {"summary": "+".join(sorted(state["drafts"]))}

    graph = StateGraph(Mapped)
    graph.add_node("plan", plan)
    graph.add_node("draft", draft)
    graph.add_node("reduce", reduce)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["draft"])
    graph.add_edge("draft", "reduce")
    graph.add_edge("reduce", END)
    return graph


class Doc(TypedDict):
    text: str
    words: int


def with_subgraph(calls: list[str]) -> StateGraph[Any]:
    """``prepare`` -> ``analyse`` (a compiled subgraph: ``clean`` -> ``count``) -> ``report``."""

    def clean(state: Doc) -> dict[str, Any]:
        calls.append("clean")
        return {"text": state["text"].strip().lower()}

    def count(state: Doc) -> dict[str, Any]:
        calls.append("count")
        return {"words": len(state["text"].split())}

    inner = StateGraph(Doc)
    inner.add_node("clean", clean)
    inner.add_node("count", count)
    inner.add_edge(START, "clean")
    inner.add_edge("clean", "count")

    def prepare(state: Doc) -> dict[str, Any]:
        calls.append("prepare")
        return {"text": state["text"] + "  "}

    def report(state: Doc) -> dict[str, Any]:
        calls.append("report")
        return {"text": f"{state['words']} words"}

    graph = StateGraph(Doc)
    graph.add_node("prepare", prepare)
    graph.add_node("analyse", inner.compile())
    graph.add_node("report", report)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "analyse")
    graph.add_edge("analyse", "report")
    return graph


class Approval(TypedDict):
    request: str
    decision: str
    log: Annotated[list[str], operator.add]


def approval(calls: list[str]) -> StateGraph[Any]:
    """``draft`` -> ``review`` (asks a human with ``interrupt()``) -> ``act`` or ``reject``."""

    def draft(state: Approval) -> dict[str, Any]:
        calls.append("draft")
        return {"log": [f"drafted {state['request']}"]}

    def review(state: Approval) -> Command[Literal["act", "reject"]]:
        calls.append("review")
        answer = interrupt({"question": f"approve {state['request']}?"})
        return Command(
            update={"decision": answer, "log": [f"human said {answer}"]},
            goto="act" if answer == "yes" else "reject",
        )

    def act(state: Approval) -> dict[str, Any]:
        calls.append("act")
        return {"log": ["acted"]}

    def reject(state: Approval) -> dict[str, Any]:
        calls.append("reject")
        return {"log": ["rejected"]}

    graph = StateGraph(Approval)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_node("act", act)
    graph.add_node("reject", reject)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("act", END)
    graph.add_edge("reject", END)
    return graph


def async_graph(calls: list[str]) -> StateGraph[Any]:
    """Async nodes: two parallel branches awaiting, then a join."""

    async def fetch(state: Linear) -> dict[str, Any]:
        calls.append("fetch")
        await asyncio.sleep(0.005)
        return {"items": ["fetched"], "total": 2}

    async def lookup(state: Linear) -> dict[str, Any]:
        calls.append("lookup")
        await asyncio.sleep(0.001)
        return {"items": ["looked up"], "total": 3}

    async def join(state: Linear) -> dict[str, Any]:
        calls.append("join")
        return {"note": f"{len(state['items'])} items, total {state['total']}"}

    graph = StateGraph(Linear)
    graph.add_node("fetch", fetch)
    graph.add_node("lookup", lookup)
    graph.add_node("join", join)
    graph.add_edge(START, "fetch")
    graph.add_edge(START, "lookup")
    graph.add_edge(["fetch", "lookup"], "join")
    graph.add_edge("join", END)
    return graph


class FlakyError(RuntimeError):
    """What the failing node raises."""


def failing(calls: list[str]) -> StateGraph[Any]:
    """``ok`` then ``boom``, which raises ``FlakyError``."""

    def ok(state: Counted) -> dict[str, Any]:
        calls.append("ok")
        return {"n": state["n"] + 1}

    def boom(state: Counted) -> dict[str, Any]:
        calls.append("boom")
        raise FlakyError(f"boom at n={state['n']}")

    graph = StateGraph(Counted)
    graph.add_node("ok", ok)
    graph.add_node("boom", boom)
    graph.add_edge(START, "ok")
    graph.add_edge("ok", "boom")
    return graph


# --------------------------------------------------------------------------- checks


def completed(report: ExecutionReport, *, start: bool = False) -> Counter[str]:
    """Completed activations per node (``__start__`` left out unless asked)."""
    return Counter(
        {node: len(records) for node, records in report.results.items() if start or node != START}
    )


def events_of(report: ExecutionReport, kind: str) -> list[LedgerEvent]:
    return [ev for ev in report.events() if ev.type == kind]


def task_results(chunks: Iterable[Any]) -> Counter[tuple[str, str]]:
    """(node, task id) of the tasks LangGraph reports as finished without error."""
    out: Counter[tuple[str, str]] = Counter()
    for chunk in chunks:
        mode, payload = chunk if isinstance(chunk, tuple) else ("tasks", chunk)
        finished = mode == "tasks" and "result" in payload
        if finished and payload.get("error") is None and not payload.get("interrupts"):
            out[(payload["name"], payload["id"])] += 1
    return out


def ledger_tasks(report: ExecutionReport) -> Counter[tuple[str, str]]:
    """(node, LangGraph task id) of the activations the ledger records as completed."""
    task_of: dict[str, str] = {}
    out: Counter[tuple[str, str]] = Counter()
    for ev in report.events():
        if ev.type == "token_enqueued" and ev.token_id is not None:
            task_of[ev.token_id] = str(ev.metadata.get("langgraph.task_id"))
        elif ev.type == "node_completed" and ev.node != START and ev.token_id is not None:
            out[(str(ev.node), task_of[ev.token_id])] += 1
    return out


def assert_verified(store: LedgerStore, *run_ids: str) -> None:
    """Every run's ledger verifies (hash chain, Merkle root, end of run)."""
    for run_id in run_ids:
        verdict = verify_run(store, run_id)
        assert verdict.ok, verdict.summary()
