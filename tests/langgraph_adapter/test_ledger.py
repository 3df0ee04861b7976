"""Each invocation of an adapted graph is a Codon run whose ledger holds one completed
activation per node execution LangGraph performed, with the node's input and update,
and verifies; the adapted graph's output equals the unadapted graph's."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from langgraph.graph import START, StateGraph
from langgraph.types import Command

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon_sdk import ExecutionReport
from codon_sdk.stores import LedgerStore, MemoryStore

from ._support import (
    Linear,
    assert_verified,
    async_graph,
    completed,
    conditional_loop,
    events_of,
    ledger_tasks,
    linear,
    map_reduce,
    task_results,
    with_subgraph,
)

Factory = Callable[[list[str]], StateGraph[Any]]


def _run_both(
    factory: Factory, payload: Any, store: LedgerStore, **config: Any
) -> tuple[Any, ExecutionReport, list[Any]]:
    """Run the graph unadapted (invoke) and adapted (stream values + tasks); check that
    outputs, node executions and the ledger's activations agree, and that it verifies."""
    plain_calls: list[str] = []
    adapted_calls: list[str] = []
    expected = factory(plain_calls).compile().invoke(payload, config or None)
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        factory(adapted_calls), name="ledger-test", version="1.0", store=store
    )
    chunks = list(wrapped.stream(payload, config or None, stream_mode=["values", "tasks"]))
    values = [data for mode, data in chunks if mode == "values"][-1]
    assert values == expected
    report = wrapped.last_report
    assert report is not None
    assert report.status == "completed"
    assert Counter(adapted_calls) == Counter(plain_calls)
    own = {spec.name for spec in wrapped.workload.nodes}
    assert completed(report) >= Counter(c for c in adapted_calls if c in own)
    assert ledger_tasks(report) == task_results(chunks)  # LangGraph's own account of its tasks
    assert_verified(store, report.run_id)
    return values, report, chunks


def _token(report: ExecutionReport, node: str, n: int = 0) -> Any:
    return [ev for ev in events_of(report, "token_enqueued") if ev.target == node][n]


def test_linear_graph_with_reducers_records_each_node_with_its_input_and_update(
    store: MemoryStore,
) -> None:
    """a, b and c get one activation each: payload = the state the node read, result = update."""
    out, report, _ = _run_both(linear, {"items": [], "total": 0, "note": "x"}, store)
    assert out == {"items": ["a", "b", "c2"], "total": 2, "note": "b saw x"}
    assert report.node_results("a") == [{"items": ["a"], "total": 1}]
    assert report.node_results("b") == [{"items": ["b"], "total": 1, "note": "b saw x"}]
    b_token = _token(report, "b")
    assert b_token.value() == {"items": ["a"], "total": 1, "note": "x"}
    assert b_token.node == "a"  # b was triggered by a's activation
    assert b_token.parent_token_id == _token(report, "a").token_id
    start = _token(report, "__start__")
    assert start.node == "__entry__"
    assert start.value() == {"items": [], "total": 0, "note": "x"}


def test_conditional_loop_records_every_iteration_chained_to_the_previous_one(
    store: MemoryStore,
) -> None:
    """Five iterations of a self-looping node: five activations, each the child of the last."""
    out, report, _ = _run_both(conditional_loop, {"n": 0, "trail": []}, store)
    assert out == {"n": 5, "trail": [0, 1, 2, 3, 4, -1]}
    assert completed(report) == Counter({"step": 5, "done": 1})
    steps = [ev for ev in events_of(report, "token_enqueued") if ev.target == "step"]
    assert [ev.value()["n"] for ev in steps] == [0, 1, 2, 3, 4]
    for earlier, later in itertools.pairwise(steps):
        assert later.node == "step"
        assert later.parent_token_id == earlier.token_id


def test_send_map_reduce_records_one_token_per_send_from_the_sending_node(
    store: MemoryStore,
) -> None:
    """Each Send is a token from ``plan`` to ``draft`` carrying the Send's argument."""
    topics = ["ledger", "replay", "spans", "identity"]
    out, report, _ = _run_both(map_reduce, {"topics": topics, "drafts": []}, store)
    assert out["summary"] == "IDENTITY+LEDGER+REPLAY+SPANS"
    plan = _token(report, "plan")
    sends = [ev for ev in events_of(report, "token_enqueued") if ev.target == "draft"]
    assert sorted(ev.value()["topic"] for ev in sends) == sorted(topics)
    assert {ev.node for ev in sends} == {"plan"}
    assert {ev.parent_token_id for ev in sends} == {plan.token_id}
    assert sorted(ev.metadata["langgraph.send"] for ev in sends) == [0, 1, 2, 3]
    reduce = _token(report, "reduce")
    assert sorted(reduce.metadata["langgraph.parents"]) == sorted(ev.token_id for ev in sends)


def test_subgraph_node_is_recorded_as_a_linked_child_run(store: MemoryStore) -> None:
    """The subgraph's nodes go to a child run naming the parent run and token; the parent
    activation names the child run; both ledgers verify."""
    out, report, _ = _run_both(with_subgraph, {"text": "  Hello Codon World ", "words": 0}, store)
    assert out == {"text": "3 words", "words": 3}
    assert completed(report) == Counter({"prepare": 1, "analyse": 1, "report": 1})
    (link,) = events_of(report, "langgraph.subgraph")
    analyse = _token(report, "analyse")
    assert link.token_id == analyse.token_id
    assert link.node == "analyse"
    child_id = link.metadata["run_id"]
    child = [info for info in store.runs() if info.run_id == child_id]
    assert child
    assert child[0].status == "completed"
    assert child[0].workload_name == "ledger-test/analyse"
    from codon_sdk.runtime._launch import load_report

    child_report = load_report(store, child_id)
    assert completed(child_report) == Counter({"clean": 1, "count": 1})
    context = child_report.context
    assert context["parent_run_id"] == report.run_id
    assert context["parent_token_id"] == analyse.token_id
    assert_verified(store, child_id)


def test_a_command_to_the_parent_graph_completes_both_runs(store: MemoryStore) -> None:
    """A subgraph node returning Command(graph=PARENT): the child run completes, the parent's
    subgraph activation records the command (namespace without task ids) and routes on."""

    def hand_over(state: Linear) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="after", update={"items": ["handed over"]})

    inner = StateGraph(Linear)
    inner.add_node("hand_over", hand_over)
    inner.add_edge(START, "hand_over")

    def after(state: Linear) -> dict[str, Any]:
        return {"items": ["after"]}

    graph = StateGraph(Linear)
    graph.add_node("delegate", inner.compile(), destinations=("after",))
    graph.add_node("after", after)
    graph.add_edge(START, "delegate")
    payload = {"items": [], "total": 0, "note": ""}
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        graph, name="parent", version="1", store=store
    )
    assert wrapped.invoke(payload) == graph.compile().invoke(payload)
    report = wrapped.last_report
    (result,) = report.node_results("delegate")
    assert (result.graph, result.goto) == ("delegate", "after")
    assert completed(report) == Counter({"delegate": 1, "after": 1})
    assert {info.status for info in store.runs()} == {"completed"}
    for info in store.runs():
        assert_verified(store, info.run_id)
    assert wrapped.workload.replay(report.run_id, store=store).identical


def test_async_graph_records_parallel_branches_and_the_join(store: MemoryStore) -> None:
    """ainvoke/astream of async nodes: each branch and the join is one activation."""

    async def scenario() -> tuple[Any, ExecutionReport, list[Any]]:
        plain_calls: list[str] = []
        calls: list[str] = []
        expected = await async_graph(plain_calls).compile().ainvoke({"items": [], "total": 0})
        wrapped = LangGraphWorkloadAdapter.from_langgraph(
            async_graph(calls), name="async-test", version="1.0", store=store
        )
        assert await wrapped.ainvoke({"items": [], "total": 0}) == expected
        first = wrapped.last_report
        chunks = [
            c
            async for c in wrapped.astream(
                {"items": [], "total": 0}, stream_mode=["values", "tasks"]
            )
        ]
        assert [d for m, d in chunks if m == "values"][-1] == expected
        assert Counter(calls) == Counter(plain_calls + plain_calls)
        assert ledger_tasks(wrapped.last_report) == task_results(chunks)
        batch = [{"items": [], "total": 0}, {"items": ["x"], "total": 1}]
        assert await wrapped.abatch(batch) == await async_graph([]).compile().abatch(batch)
        return expected, first, chunks

    expected, first, _ = asyncio.run(scenario())
    assert expected["note"] == "2 items, total 5"
    assert completed(first) == Counter({"fetch": 1, "lookup": 1, "join": 1})
    join = _token(first, "join")
    assert sorted(join.metadata["langgraph.parents"]) == sorted(
        [_token(first, "fetch").token_id, _token(first, "lookup").token_id]
    )
    assert_verified(store, first.run_id)
    for info in store.runs():
        assert_verified(store, info.run_id)


def test_every_invocation_is_its_own_run_and_last_report_is_the_latest(
    store: MemoryStore,
) -> None:
    """invoke, stream and batch each start runs; last_report follows the latest invocation."""
    calls: list[str] = []
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        conditional_loop(calls), name="runs-test", version="1.0", store=store
    )
    assert wrapped.last_report is None
    wrapped.invoke({"n": 3, "trail": []})
    first = wrapped.last_report
    results = wrapped.batch([{"n": 1, "trail": []}, {"n": 4, "trail": []}])
    assert [r["n"] for r in results] == [5, 5]
    assert len(store.runs()) == 3
    assert wrapped.last_report is not None
    assert wrapped.last_report.run_id != first.run_id
    assert {info.status for info in store.runs()} == {"completed"}


def test_sqlite_store_keeps_the_runs_durably(sqlite_store: LedgerStore) -> None:
    """With a SQLite ledger the run is in the file, complete and verifiable."""
    _, report, _ = _run_both(map_reduce, {"topics": ["a", "b"], "drafts": []}, sqlite_store)
    info = sqlite_store.get_run(report.run_id)
    assert info.status == "completed"
    assert info.event_count == report.event_count
    assert sqlite_store.read(report.run_id) == list(report.entries)


@pytest.mark.parametrize("factory", [linear, conditional_loop, map_reduce])
def test_run_started_binds_the_run_to_the_graph_identity(
    factory: Factory, store: MemoryStore
) -> None:
    """run_started names the workload's logic id, its nodes, edges and entry node."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        factory([]), name="identity-test", version="2.0", store=store
    )
    payload = {"linear": {"items": [], "total": 0, "note": ""}}.get(
        factory.__name__, {"n": 0, "trail": [], "topics": ["x"], "drafts": []}
    )
    wrapped.invoke(payload)
    report = wrapped.last_report
    assert report is not None
    started = next(report.events()).metadata
    assert started["workload"]["logic_id"] == wrapped.workload.logic_id == report.logic_id
    assert started["entry_nodes"] == ["__start__"]
    assert sorted(started["nodes"]) == sorted(spec.name for spec in wrapped.workload.nodes)
    assert [tuple(e) for e in started["edges"]] == wrapped.workload.topology
    assert started["framework"]["name"] == "langgraph"
