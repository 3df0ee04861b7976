"""Running a workload: entry nodes, seeds, context, state, scheduling, limits (API.md Part 1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codon_sdk import (
    CodonWorkload,
    ExecutionReport,
    StepLimitExceededError,
    WorkloadRuntimeError,
)


def ingest(message: Any, *, runtime: Any, context: Any) -> Any:
    tokens = message["text"].split()
    runtime.emit("count", {"words": tokens})
    return tokens


def count(message: Any, *, runtime: Any, context: Any) -> int:
    return len(message["words"])


def echo(message: Any, *, runtime: Any, context: Any) -> Any:
    return message


@pytest.fixture
def doc_workload() -> CodonWorkload:
    workload = CodonWorkload(name="DocAgent", version="1.0.0")
    workload.add_node(ingest, "ingest", "parser")
    workload.add_node(count, "count", "analyzer")
    workload.add_edge("ingest", "count")
    return workload


def _seeds(report: ExecutionReport) -> list[Any]:
    return [e for e in report.ledger if e.event_type == "token_enqueued" and e.metadata.get("seed")]


def test_token_flow_produces_results(doc_workload: CodonWorkload) -> None:
    """execute runs the graph; node_results gives each node's return values in order."""
    report = doc_workload.execute({"text": "hello codon"}, deployment_id="dev")
    assert isinstance(report, ExecutionReport)
    assert report.node_results("ingest") == [["hello", "codon"]]
    assert report.node_results("count") == [2]
    assert report.node_results("never-registered") == []


def test_execute_async_is_awaitable(doc_workload: CodonWorkload) -> None:
    """execute_async takes the same arguments and returns the report when awaited."""
    report = asyncio.run(doc_workload.execute_async({"text": "a b c"}, deployment_id="dev"))
    assert report.node_results("count") == [3]


def test_async_node_functions_are_awaited() -> None:
    """``async def`` nodes are awaited; their emissions and results work as for sync nodes."""

    async def first(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        runtime.emit("second", {"value": message["value"] + 1})
        return {"value": message["value"]}

    async def second(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        return message["value"]

    workload = CodonWorkload(name="Async", version="1")
    workload.add_node(first, "first", "starter")
    workload.add_node(second, "second", "finisher")
    workload.add_edge("first", "second")
    assert workload.execute({"value": 1}, deployment_id="d").node_results("second") == [2]
    report = asyncio.run(workload.execute_async({"value": 5}, deployment_id="d"))
    assert report.node_results("second") == [6]


def test_execute_works_inside_a_running_event_loop(doc_workload: CodonWorkload) -> None:
    """Calling the sync execute from a coroutine (a notebook, a web handler) works."""

    async def handler() -> ExecutionReport:
        return doc_workload.execute({"text": "x y"}, deployment_id="dev")

    assert asyncio.run(handler()).node_results("count") == [2]


@pytest.mark.parametrize("bad", ["", None])
def test_empty_deployment_id_is_a_value_error(doc_workload: CodonWorkload, bad: Any) -> None:
    """An empty (or missing) deployment_id raises ValueError before anything runs."""
    with pytest.raises(ValueError):
        doc_workload.execute({"text": "x"}, deployment_id=bad)


def test_workload_without_nodes_is_a_runtime_error() -> None:
    """Executing a workload with no nodes raises WorkloadRuntimeError."""
    with pytest.raises(WorkloadRuntimeError):
        CodonWorkload(name="Empty", version="1").execute({}, deployment_id="dev")


def test_unknown_entry_node_is_a_runtime_error(doc_workload: CodonWorkload) -> None:
    """An entry node that is not registered raises WorkloadRuntimeError naming it."""
    with pytest.raises(WorkloadRuntimeError, match="nope"):
        doc_workload.execute({"text": "x"}, deployment_id="dev", entry_nodes=["ingest", "nope"])


def test_entry_nodes_default_to_nodes_without_incoming_edges() -> None:
    """Without entry_nodes, every node with no incoming edge gets one seed token."""
    workload = CodonWorkload(name="W", version="1")
    for name in ("a", "b", "c"):
        workload.add_node(echo, name, "r")
    workload.add_edge("a", "c")
    report = workload.execute("p", deployment_id="dev")
    assert sorted(e.target_node for e in _seeds(report)) == ["a", "b"]
    assert report.node_results("c") == []


def test_entry_nodes_fall_back_to_every_node_in_a_cycle() -> None:
    """If every node has an incoming edge, every node is an entry node."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "a", "r")
    workload.add_node(echo, "b", "r")
    workload.add_edge("a", "b")
    workload.add_edge("b", "a")
    report = workload.execute("p", deployment_id="dev")
    assert sorted(e.target_node for e in _seeds(report)) == ["a", "b"]
    assert report.node_results("a") == ["p"]
    assert report.node_results("b") == ["p"]


def test_explicit_entry_nodes_win(doc_workload: CodonWorkload) -> None:
    """entry_nodes given explicitly replaces the default choice."""
    report = doc_workload.execute({"words": [1, 2, 3, 4]}, deployment_id="d", entry_nodes=["count"])
    assert report.node_results("ingest") == []
    assert report.node_results("count") == [4]


def test_each_entry_node_gets_one_seed_carrying_the_payload() -> None:
    """One seed token per entry node, each carrying the execute payload."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "a", "r")
    workload.add_node(echo, "b", "r")
    payload = {"question": "why?", "n": [1, 2]}
    report = workload.execute(payload, deployment_id="d", entry_nodes=["a", "b"])
    seeds = _seeds(report)
    assert [e.target_node for e in seeds] == ["a", "b"]
    assert all(e.source_node == "__entry__" for e in seeds)
    assert report.node_results("a") == [payload]
    assert report.node_results("b") == [payload]


CONTEXT_KEYS = {
    "deployment_id",
    "logic_id",
    "workload_logic_id",
    "workload_id",
    "run_id",
    "workload_run_id",
    "workload_name",
    "workload_version",
    "organization_id",
    "org_namespace",
}


def test_context_carries_the_documented_identifiers() -> None:
    """The context dict holds the documented identity keys with the documented values."""
    seen: dict[str, Any] = {}

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        seen.update(context)
        return message

    workload = CodonWorkload(name="Context Agent", version="1.0.0")
    workload.add_node(node, "echo", "responder")
    report = workload.execute({"value": 1}, deployment_id="dev-west")
    assert set(seen) >= CONTEXT_KEYS
    assert seen["deployment_id"] == "dev-west"
    assert seen["logic_id"] == seen["workload_logic_id"] == workload.logic_id
    assert seen["workload_id"] == workload.agent_class_id == "context-agent:1.0.0"
    assert seen["run_id"] == seen["workload_run_id"] == report.run_id
    assert seen["workload_name"] == "Context Agent"
    assert seen["workload_version"] == "1.0.0"
    assert seen["org_namespace"] == "test-org"
    assert report.context["run_id"] == report.run_id
    assert set(report.context) >= CONTEXT_KEYS


def test_context_organization_id_falls_back_to_the_org_namespace() -> None:
    """With only ORG_NAMESPACE set, context["organization_id"] is that namespace (as before)."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "echo", "r")
    assert workload.execute(1, deployment_id="d").context["organization_id"] == "test-org"


def test_execute_extras_reach_the_context() -> None:
    """Extra keywords of execute (invoked_by="cli") appear in every node's context."""
    seen: list[Any] = []

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        seen.append((context["invoked_by"], context["ticket"]))
        return message

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(node, "n", "r")
    report = workload.execute({}, deployment_id="d", invoked_by="cli", ticket=42)
    assert seen == [("cli", 42)]
    assert report.context["invoked_by"] == "cli"


def test_each_run_gets_its_own_run_id(doc_workload: CodonWorkload) -> None:
    """Two runs get distinct run ids; run_id= chooses one explicitly."""
    first = doc_workload.execute({"text": "a"}, deployment_id="d")
    second = doc_workload.execute({"text": "a"}, deployment_id="d")
    assert first.run_id != second.run_id
    chosen = doc_workload.execute({"text": "a"}, deployment_id="d", run_id="run-2024-001")
    assert chosen.run_id == chosen.context["run_id"] == "run-2024-001"


def test_state_is_shared_by_every_activation_of_a_run() -> None:
    """runtime.state is one dict for the whole run, fresh for the next run."""

    def source(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["calls"] = runtime.state.get("calls", 0) + 1
        runtime.emit("sink", message)
        runtime.emit("sink", message)
        return runtime.state["calls"]

    def sink(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state.setdefault("calls", 0)
        runtime.state["calls"] += 1
        return runtime.state["calls"]

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(source, "source", "r")
    workload.add_node(sink, "sink", "r")
    workload.add_edge("source", "sink")
    report = workload.execute({}, deployment_id="d")
    assert report.node_results("sink") == [2, 3]
    assert report.state == {"calls": 3}
    assert workload.execute({}, deployment_id="d").node_results("source") == [1]


def _fifo_workload(order: list[str]) -> CodonWorkload:
    def make(name: str, targets: list[str]) -> Any:
        def node(message: Any, *, runtime: Any, context: Any) -> Any:
            order.append(name)
            for target in targets:
                runtime.emit(target, f"{message}>{name}")
            return message

        return node

    graph = {"a": ["b", "c"], "b": ["d"], "c": ["e"], "d": [], "e": []}
    workload = CodonWorkload(name="Fifo", version="1")
    for name, targets in graph.items():
        workload.add_node(make(name, targets), name, "r")
    for name, targets in graph.items():
        for target in targets:
            workload.add_edge(name, target)
    return workload


def test_scheduling_is_first_in_first_out() -> None:
    """Tokens run in the order they were enqueued: a, then b and c, then d and e."""
    order: list[str] = []
    report = _fifo_workload(order).execute("s", deployment_id="d")
    assert order == ["a", "b", "c", "d", "e"]
    assert report.node_results("d") == ["s>a>b"]
    assert report.node_results("e") == ["s>a>c"]


def test_the_same_program_gives_the_same_order_every_time() -> None:
    """Repeated runs give the same event sequence and the same token ids."""

    def shape(report: ExecutionReport) -> list[tuple[Any, ...]]:
        return [(e.event_type, e.token_id, e.source_node, e.target_node) for e in report.ledger]

    shapes = [shape(_fifo_workload([]).execute("s", deployment_id="d")) for _ in range(3)]
    assert shapes[0] == shapes[1] == shapes[2]


def test_self_loop_example_from_the_docs() -> None:
    """A self-edge node emitting while state["i"] < 2, then stopping, yields [0, 1, 2]."""

    def loop(message: Any, *, runtime: Any, context: Any) -> Any:
        i = runtime.state.get("i", 0)
        runtime.state["i"] = i + 1
        if i < 2:
            runtime.emit("loop", message)
        else:
            runtime.stop()
        return i

    workload = CodonWorkload(name="Looper", version="0.1.0")
    workload.add_node(loop, "loop", "cycler")
    workload.add_edge("loop", "loop")
    report = workload.execute({"payload": 1}, deployment_id="qa", max_steps=10)
    assert report.node_results("loop") == [0, 1, 2]


def test_stop_drops_the_tokens_still_queued() -> None:
    """After runtime.stop() the current node completes and nothing queued runs."""
    ran: list[str] = []

    def start(message: Any, *, runtime: Any, context: Any) -> Any:
        ran.append("start")
        runtime.emit("left", 1)
        runtime.emit("right", 2)
        return "started"

    def left(message: Any, *, runtime: Any, context: Any) -> Any:
        ran.append("left")
        runtime.emit("after", 3)
        runtime.stop()
        return "left done"

    def other(message: Any, *, runtime: Any, context: Any) -> Any:
        ran.append("other")
        return message

    workload = CodonWorkload(name="Stopper", version="1")
    workload.add_node(start, "start", "r")
    workload.add_node(left, "left", "r")
    workload.add_node(other, "right", "r")
    workload.add_node(other, "after", "r")
    workload.add_edge("start", "left")
    workload.add_edge("start", "right")
    workload.add_edge("left", "after")
    report = workload.execute(None, deployment_id="d")
    assert ran == ["start", "left"]
    assert report.node_results("left") == ["left done"]
    assert report.status == "stopped"
    assert [e.event_type for e in report.ledger].count("runtime_stopped") == 1


def _runaway() -> CodonWorkload:
    def spin(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("spin", message + 1)
        return message

    workload = CodonWorkload(name="Runaway", version="1")
    workload.add_node(spin, "spin", "r")
    workload.add_edge("spin", "spin")
    return workload


def test_max_steps_bounds_activations_and_names_the_limit() -> None:
    """A run that would exceed max_steps raises WorkloadRuntimeError naming the limit."""
    with pytest.raises(WorkloadRuntimeError, match="7") as info:
        _runaway().execute(0, deployment_id="d", max_steps=7)
    assert isinstance(info.value, StepLimitExceededError)
    assert "max_steps" in str(info.value)
    report = info.value.report
    assert report is not None
    assert report.node_results("spin") == list(range(7))
    assert report.status == "failed"


def test_max_steps_default_is_1000() -> None:
    """Without max_steps a runaway loop stops after 1000 activations."""
    with pytest.raises(WorkloadRuntimeError, match="1000") as info:
        _runaway().execute(0, deployment_id="d")
    assert info.value.report is not None
    assert len(info.value.report.node_results("spin")) == 1000


def test_a_run_using_exactly_max_steps_succeeds() -> None:
    """Exactly max_steps activations is within the limit."""

    def countdown(message: Any, *, runtime: Any, context: Any) -> Any:
        if message > 1:
            runtime.emit("countdown", message - 1)
        return message

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(countdown, "countdown", "r")
    workload.add_edge("countdown", "countdown")
    report = workload.execute(3, deployment_id="d", max_steps=3)
    assert report.node_results("countdown") == [3, 2, 1]
    assert report.status == "completed"


@pytest.mark.parametrize("bad", [0, -1])
def test_max_steps_must_be_positive(doc_workload: CodonWorkload, bad: int) -> None:
    """A non-positive max_steps is refused before the run starts."""
    with pytest.raises((ValueError, WorkloadRuntimeError)):
        doc_workload.execute({"text": "x"}, deployment_id="d", max_steps=bad)


def test_emit_returns_the_new_token_id() -> None:
    """runtime.emit returns the id of the enqueued token, which the ledger then carries."""
    ids: list[str] = []

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        ids.append(runtime.emit("second", "hello"))
        return None

    workload = CodonWorkload(name="W", version="1")
    workload.add_node(first, "first", "r")
    workload.add_node(echo, "second", "r")
    workload.add_edge("first", "second")
    report = workload.execute(None, deployment_id="d")
    assert len(ids) == 1
    assert isinstance(ids[0], str)
    assert [r.token_id for r in report.results["second"]] == ids
