"""The logic id of an adapted graph comes from the graph: its nodes' code, its edges (the
possible targets of conditional edges and commands included) and its entry."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
from codon_sdk.identity._codehash import code_hash

from ._support import conditional_loop, linear, map_reduce, with_subgraph


def _logic(graph: Any, **kwargs: Any) -> str:
    wrapped = LangGraphWorkloadAdapter.from_langgraph(graph, name="id", version="1", **kwargs)
    logic: str = wrapped.workload.logic_id
    return logic


class S(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def keep_last(left: list[str], right: list[str]) -> list[str]:
    return right


class LastLog(TypedDict):
    n: int
    log: Annotated[list[str], keep_last]


def _two_nodes(
    first: Any, second: Any, *, route: Any = None, targets: Any = None, reducer: Any = None
) -> StateGraph[Any]:
    """``first`` -> ``second`` (or a conditional edge ``route`` with ``targets``)."""
    graph = StateGraph(S if reducer is None else LastLog)
    graph.add_node("first", first)
    graph.add_node("second", second)
    graph.add_edge(START, "first")
    if route is None:
        graph.add_edge("first", "second")
    else:
        graph.add_conditional_edges("first", route, targets)
    graph.add_edge("second", END)
    return graph


def first(state: Any) -> dict[str, Any]:
    return {"n": state["n"] + 1}


def first_changed(state: Any) -> dict[str, Any]:
    return {"n": state["n"] + 2}


def second(state: Any) -> dict[str, Any]:
    return {"log": ["second"]}


def route(state: Any) -> str:
    return "second" if state["n"] > 1 else END


def route_changed(state: Any) -> str:
    return "second" if state["n"] > 2 else END


def test_the_same_graph_code_gives_the_same_logic_id() -> None:
    """Adapting the same graph twice, or built in another order, gives one logic id."""
    assert _logic(_two_nodes(first, second)) == _logic(_two_nodes(first, second))
    graph = StateGraph(S)
    graph.add_node("second", second)
    graph.add_node("first", first)
    graph.add_edge("second", END)
    graph.add_edge("first", "second")
    graph.add_edge(START, "first")
    assert _logic(graph) == _logic(_two_nodes(first, second))
    assert _logic(map_reduce([])) == _logic(map_reduce([]))


def test_logic_id_changes_with_node_code_routing_targets_reducers_and_entry() -> None:
    """A node's code, a routing function's code, the possible targets of a conditional edge, a
    reducer and the entry nodes each change the logic id."""
    base = _logic(_two_nodes(first, second, route=route, targets=["second", END]))
    variants = {
        "node code": _logic(
            _two_nodes(first_changed, second, route=route, targets=["second", END])
        ),
        "routing code": _logic(
            _two_nodes(first, second, route=route_changed, targets=["second", END])
        ),
        "targets": _logic(_two_nodes(first, second, route=route, targets=["second"])),
        "reducer": _logic(
            _two_nodes(first, second, route=route, targets=["second", END], reducer=keep_last)
        ),
        "entry": _logic(
            _two_nodes(first, second, route=route, targets=["second", END]), entry_nodes=["first"]
        ),
        "edges": _logic(_two_nodes(first, second)),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)


def test_topology_holds_start_end_and_every_possible_target() -> None:
    """__start__ and __end__ are nodes; a conditional edge without declared targets may reach
    every node and __end__; Command destinations and declared targets are edges."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        _two_nodes(first, second, route=route), name="t", version="1"
    )
    assert set(wrapped.workload.topology) == {
        ("__start__", "first"),
        ("first", "first"),
        ("first", "second"),
        ("first", "__end__"),
        ("second", "__end__"),
    }

    def choose(state: S) -> Command[Literal["second", "__end__"]]:
        return Command(goto="second")

    graph = StateGraph(S)
    graph.add_node("choose", choose)
    graph.add_node("second", second)
    graph.add_edge(START, "choose")
    commands = LangGraphWorkloadAdapter.from_langgraph(graph, name="c", version="1")
    assert {("choose", "second"), ("choose", "__end__")} <= set(commands.workload.topology)
    loop = LangGraphWorkloadAdapter.from_langgraph(conditional_loop([]), name="l", version="1")
    assert ("step", "step") in loop.workload.topology
    assert ("step", "done") in loop.workload.topology


def test_a_plain_function_node_keeps_its_own_code_identity() -> None:
    """A node that is a plain function gets the NodeSpec of that function: its code hash and
    signature, as in a CodonWorkload."""
    wrapped = LangGraphWorkloadAdapter.from_langgraph(
        _two_nodes(first, second), name="f", version="1"
    )
    spec = wrapped.workload.node_spec("first")
    assert spec.code_hash == code_hash(first)
    assert spec.callable_signature.startswith("first(state:")
    assert spec.role == "node"


def test_a_subgraph_change_changes_the_parent_logic_id() -> None:
    """A compiled subgraph node is identified by the subgraph's logic id."""
    base = LangGraphWorkloadAdapter.from_langgraph(with_subgraph([]), name="p", version="1")
    changed_builder = with_subgraph([])
    inner = changed_builder.nodes["analyse"].runnable.builder

    def count(state: Any) -> dict[str, Any]:
        return {"words": len(state["text"])}

    inner.nodes.pop("count")
    inner.add_node("count", count)
    changed_builder.nodes["analyse"].runnable = inner.compile()
    changed = LangGraphWorkloadAdapter.from_langgraph(changed_builder, name="p", version="1")
    assert base.workload.node_spec("analyse").role == "subgraph"
    assert base.workload.node_spec("prepare").id == changed.workload.node_spec("prepare").id
    assert base.workload.node_spec("analyse").id != changed.workload.node_spec("analyse").id
    assert base.workload.logic_id != changed.workload.logic_id


def test_name_version_and_description_are_part_of_the_identity() -> None:
    """The agent class (name, version, description) is part of the logic id, as in Codon."""
    ids = {
        LangGraphWorkloadAdapter.from_langgraph(
            linear([]), name=name, version=version, description=description
        ).workload.logic_id
        for name, version, description in (
            ("a", "1", None),
            ("b", "1", None),
            ("a", "2", None),
            ("a", "1", "with a description"),
        )
    }
    assert len(ids) == 4
