"""What a LangGraph graph is, for its Codon identity: nodes, their code, edges and entry.

A node's identity is its function's code hash when the node is a plain
function. Otherwise (a runnable, a subgraph, a node with conditional edges or
``Command`` destinations) it is a description in canonical JSON of everything
that decides what the node does: the code of its function or runnable parts,
the code of the routing functions of its conditional edges and their possible
targets, the logic ids of its subgraphs. ``__start__`` stands for the input and
the state schema (channels and reducer code); ``__end__`` is the terminal node.

Edges are LangGraph's edges plus every possible target of a conditional edge
(all nodes and ``__end__`` when the graph does not declare them), of a
``Command`` (``destinations=`` or a ``Command[Literal[...]]`` annotation) and of
an error handler. A compiled graph that was not built from a ``StateGraph`` is
described from its channels: node ``a`` has an edge to ``b`` when ``a`` writes
a channel that triggers ``b``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codon.instrumentation.langgraph._compat import END, START
from codon.instrumentation.langgraph._encode import recordable_value
from codon_sdk.errors import WorkloadRegistrationError
from codon_sdk.identity import canonical_bytes, code_hash, type_path

__all__ = ["GraphShape", "NodeShape", "describe_runnable", "graph_shape", "identity_callable"]

NodeLogic = Callable[[Any], str]  # subgraph -> logic id, for one node
GraphLogic = Callable[[Any, str], str]  # (subgraph, node name) -> logic id
_MAX_DEPTH = 12


@dataclass(slots=True)
class NodeShape:
    """One node: the callable its NodeSpec is made from, and its default role."""

    name: str
    identity: Callable[..., Any]
    role: str
    source: Callable[..., Any] | None = None  # the node's own function, when it has one


@dataclass(slots=True)
class GraphShape:
    nodes: dict[str, NodeShape] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    entries: list[str] = field(default_factory=list)


def identity_callable(
    name: str, description: Any, display: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """A stand-in function whose code hash is fixed by ``description`` (canonical JSON).

    It carries the name and signature of ``display`` (the node's own function,
    when it has one) so the NodeSpec reads naturally; it is never called.
    """
    text = canonical_bytes(description).decode("utf-8")

    def node(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"identity stand-in of a LangGraph node, not callable: {text}")

    label = getattr(display, "__name__", None) or name
    node.__name__ = node.__qualname__ = str(label)
    if display is not None:
        with contextlib.suppress(TypeError, ValueError):  # no signature to show
            node.__signature__ = inspect.signature(display)  # type: ignore[attr-defined]
    return node


def _hash(fn: Any) -> str:
    try:
        return code_hash(fn)
    except Exception:  # an exotic callable: its type is what we know
        return type_path(type(fn))


def _function_of(runnable: Any) -> Callable[..., Any] | None:
    """The user function inside a LangGraph ``RunnableCallable`` or a ``RunnableLambda``."""
    for attr in ("func", "afunc"):
        fn = getattr(runnable, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def describe_runnable(runnable: Any, graph_logic: NodeLogic, depth: int = 0) -> Any:
    """A JSON description of what a runnable does (see the module docstring)."""
    from langchain_core.runnables import RunnableBinding, RunnableParallel

    from langgraph.pregel import Pregel

    if depth > _MAX_DEPTH:
        return {"type": type_path(type(runnable))}
    if isinstance(runnable, Pregel):
        return {"graph": graph_logic(runnable)}
    tools = getattr(runnable, "tools_by_name", None)
    if isinstance(tools, Mapping):
        return {"tools": {str(k): _describe_tool(t) for k, t in sorted(tools.items())}}
    if isinstance(runnable, RunnableBinding):
        return {
            "binding": describe_runnable(runnable.bound, graph_logic, depth + 1),
            "kwargs": recordable_value(dict(runnable.kwargs)),
        }
    if isinstance(runnable, RunnableParallel):
        return {
            "parallel": {
                str(k): describe_runnable(v, graph_logic, depth + 1)
                for k, v in sorted(runnable.steps__.items())
            }
        }
    steps = getattr(runnable, "steps", None)
    if isinstance(steps, (list, tuple)):
        return {"sequence": [describe_runnable(s, graph_logic, depth + 1) for s in steps]}
    fn = _function_of(runnable)
    if fn is not None:
        return {"callable": _hash(fn)}
    serial = _lc_description(runnable)
    if serial is not None:
        return serial
    if callable(runnable):
        return {"callable": _hash(runnable)}
    return {"type": type_path(type(runnable))}


def _describe_tool(tool: Any) -> Any:
    fn = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    return {
        "name": str(getattr(tool, "name", "")),
        "description": str(getattr(tool, "description", "")),
        "callable": _hash(fn) if callable(fn) else type_path(type(tool)),
    }


def _lc_description(runnable: Any) -> Any:
    """LangChain's own serialisation (prompts, models and their settings), when it has one."""
    is_serializable = getattr(runnable, "is_lc_serializable", None)
    to_json = getattr(runnable, "to_json", None)
    if not callable(is_serializable) or not callable(to_json):
        return None
    try:
        if not is_serializable():
            return None
        return {"lc": recordable_value(to_json())}
    except Exception:
        return None


# --------------------------------------------------------------------------- graphs


def graph_shape(compiled: Any, graph_logic: GraphLogic) -> GraphShape:
    """The shape of a compiled graph (from its ``StateGraph`` builder when it has one)."""
    from langgraph.graph import StateGraph

    builder = getattr(compiled, "builder", None)
    if isinstance(builder, StateGraph):
        return _state_graph_shape(compiled, builder, graph_logic)
    return _pregel_shape(compiled, graph_logic)


def _state_graph_shape(compiled: Any, builder: Any, graph_logic: GraphLogic) -> GraphShape:
    shape = GraphShape(entries=[START])
    names = [n for n in compiled.nodes if n != START]
    everywhere = [*names, END]
    branches = _branches(builder, everywhere)
    for source, targets in branches.items():
        shape.edges.update((source, t) for t in targets["targets"])
    for start, end in builder.edges:
        shape.edges.add((start, end))
    for starts, end in builder.waiting_edges:
        shape.edges.update((start, end) for start in starts)
    shape.nodes[START] = NodeShape(
        START,
        identity_callable(
            START,
            {
                "kind": "start",
                "input": sorted(str(k) for k in builder.schemas.get(builder.input_schema, {})),
                "state": _state_description(builder),
                "branches": branches.get(START, {}).get("code", []),
            },
        ),
        "entry",
    )
    for name in names:
        spec = builder.nodes.get(name)
        runnable = spec.runnable if spec is not None else compiled.nodes[name].bound
        ends = _ends(getattr(spec, "ends", None))
        shape.edges.update((name, end) for end in ends)
        handler = getattr(spec, "error_handler_node", None)
        if isinstance(handler, str):
            shape.edges.add((name, handler))
        subgraphs = list(getattr(compiled.nodes[name], "subgraphs", ()) or ())
        shape.nodes[name] = _node_shape(
            name,
            runnable,
            branches.get(name, {}).get("code", []),
            ends,
            subgraphs,
            functools.partial(_logic_of_node, graph_logic, name),
        )
    shape.nodes[END] = NodeShape(END, identity_callable(END, {"kind": "end"}), "exit")
    return shape


def _node_shape(
    name: str,
    runnable: Any,
    branch_code: list[Any],
    ends: list[str],
    subgraphs: list[Any],
    graph_logic: NodeLogic,
) -> NodeShape:
    from langgraph.pregel import Pregel

    is_graph = isinstance(runnable, Pregel)
    tool_node = isinstance(getattr(runnable, "tools_by_name", None), Mapping)
    fn = None if tool_node or is_graph else _function_of(runnable)
    if fn is not None and not branch_code and not ends and not subgraphs:
        return NodeShape(name, fn, "node", fn)
    description: dict[str, Any] = {"runnable": describe_runnable(runnable, graph_logic)}
    if branch_code:
        description["branches"] = branch_code
    if ends:
        description["ends"] = ends
    if subgraphs and not is_graph:
        description["subgraphs"] = sorted(graph_logic(g) for g in subgraphs)
    return NodeShape(
        name,
        identity_callable(name, description, fn),
        "subgraph" if is_graph else "node",
        fn,
    )


def _logic_of_node(graph_logic: GraphLogic, node: str, subgraph: Any) -> str:
    return graph_logic(subgraph, node)


def _ends(ends: Any) -> list[str]:
    if isinstance(ends, Mapping):
        return sorted({str(v) for v in ends.values()})
    if isinstance(ends, (list, tuple)):
        return sorted({str(v) for v in ends})
    return []


def _branches(builder: Any, everywhere: list[str]) -> dict[str, dict[str, Any]]:
    """Per source node: the routing functions' code and every possible target."""
    out: dict[str, dict[str, Any]] = {}
    for source, specs in builder.branches.items():
        code: list[Any] = []
        targets: set[str] = set()
        for branch_name, spec in sorted(specs.items()):
            fn = _function_of(spec.path)
            ends = (
                sorted({str(v) for v in spec.ends.values()})
                if isinstance(spec.ends, Mapping)
                else None
            )
            code.append(
                {
                    "name": str(branch_name),
                    "path": _hash(fn) if fn is not None else type_path(type(spec.path)),
                    "ends": ends,
                }
            )
            targets.update(ends if ends is not None else everywhere)
        out[str(source)] = {"code": code, "targets": sorted(targets)}
    return out


def _state_description(builder: Any) -> dict[str, Any]:
    """The state channels and the code of their reducers."""
    out: dict[str, Any] = {}
    for key, channel in sorted(builder.channels.items()):
        entry: dict[str, Any] = {"channel": type(channel).__name__}
        operator = getattr(channel, "operator", None)
        if callable(operator):
            entry["reducer"] = _hash(operator)
        out[str(key)] = entry
    for key in sorted(getattr(builder, "managed", {}) or {}):
        out[str(key)] = {"channel": "managed"}
    return out


def _pregel_shape(compiled: Any, graph_logic: GraphLogic) -> GraphShape:
    """A graph built directly on Pregel: edges from the channels its nodes write and read."""
    shape = GraphShape()
    nodes = dict(compiled.nodes)
    inputs = _as_list(compiled.input_channels)
    for name, node in nodes.items():
        description = {
            "runnable": describe_runnable(
                node.bound, functools.partial(_logic_of_node, graph_logic, name)
            ),
            "triggers": sorted(node.triggers),
            "channels": sorted(_as_list(node.channels)),
        }
        shape.nodes[name] = NodeShape(name, identity_callable(name, description), "node")
        if set(node.triggers) & set(inputs):
            shape.entries.append(name)
    for source, node in nodes.items():
        written = set(_written_channels(node.writers))
        for target, other in nodes.items():
            if written & set(other.triggers):
                shape.edges.add((source, target))
    if not shape.entries:
        shape.entries = list(nodes)
    return shape


def _as_list(channels: Any) -> list[str]:
    if isinstance(channels, str):
        return [channels]
    if isinstance(channels, Mapping):
        return [str(c) for c in channels.values()]
    return [str(c) for c in channels or ()]


def _written_channels(writers: Iterable[Any]) -> Iterable[str]:
    for writer in writers:
        for entry in getattr(writer, "writes", ()) or ():
            channel = getattr(entry, "channel", None)
            if isinstance(channel, str):
                yield channel


def check_has_nodes(compiled: Any, name: str) -> None:
    """A graph without a node of its own cannot be adapted."""
    own = [n for n in getattr(compiled, "nodes", {}) if n != START]
    if not own:
        raise WorkloadRegistrationError(
            f"LangGraph graph for workload {name!r} has no nodes; add nodes with "
            "graph.add_node(...) before adapting it"
        )
