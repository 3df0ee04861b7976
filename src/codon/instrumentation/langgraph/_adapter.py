"""``LangGraphWorkloadAdapter.from_langgraph``: a LangGraph graph with identity and ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from codon.instrumentation.langgraph._binding import GraphBinding
from codon.instrumentation.langgraph._compat import require_langgraph
from codon.instrumentation.langgraph._graph import instrument, is_instrumented
from codon.instrumentation.langgraph._options import (
    NodeOverride,
    RuntimeSettings,
    coerce_overrides,
)
from codon.instrumentation.langgraph._shape import (
    GraphShape,
    check_has_nodes,
    graph_shape,
)
from codon.instrumentation.langgraph._workload import LangGraphWorkload
from codon_sdk.errors import WorkloadRegistrationError
from codon_sdk.identity import NodeSpec
from codon_sdk.stores import LedgerStore, MemoryStore, open_store

__all__ = ["LangGraphAdapterResult", "LangGraphWorkloadAdapter"]


@dataclass(frozen=True, slots=True)
class LangGraphAdapterResult:
    """Everything ``from_langgraph(..., return_artifacts=True)`` built.

    Attributes:
        workload: the :class:`LangGraphWorkload` describing the graph.
        state_graph: the ``StateGraph`` given, or the compiled graph's builder
            (None for a graph not built from a ``StateGraph``).
        compiled_graph: the compiled graph, as LangGraph compiled it (not adapted).
        wrapped_graph: the adapted graph to run (also ``workload.graph``).
    """

    workload: LangGraphWorkload
    state_graph: Any
    compiled_graph: Any
    wrapped_graph: Any


class LangGraphWorkloadAdapter:
    """Adapts LangGraph graphs: ``LangGraphWorkloadAdapter.from_langgraph(graph, ...)``."""

    @overload
    @staticmethod
    def from_langgraph(
        graph: Any,
        *,
        name: str,
        version: str,
        description: str | None = ...,
        tags: Sequence[str] | None = ...,
        org_namespace: str | None = ...,
        node_overrides: Mapping[str, NodeOverride | Mapping[str, Any]] | None = ...,
        entry_nodes: Sequence[str] | None = ...,
        compile_kwargs: Mapping[str, Any] | None = ...,
        runtime_config: Mapping[str, Any] | None = ...,
        return_artifacts: Literal[False] = ...,
        store: str | LedgerStore | None = ...,
    ) -> Any: ...

    @overload
    @staticmethod
    def from_langgraph(
        graph: Any,
        *,
        name: str,
        version: str,
        description: str | None = ...,
        tags: Sequence[str] | None = ...,
        org_namespace: str | None = ...,
        node_overrides: Mapping[str, NodeOverride | Mapping[str, Any]] | None = ...,
        entry_nodes: Sequence[str] | None = ...,
        compile_kwargs: Mapping[str, Any] | None = ...,
        runtime_config: Mapping[str, Any] | None = ...,
        return_artifacts: Literal[True],
        store: str | LedgerStore | None = ...,
    ) -> LangGraphAdapterResult: ...

    @staticmethod
    def from_langgraph(
        graph: Any,
        *,
        name: str,
        version: str,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        org_namespace: str | None = None,
        node_overrides: Mapping[str, NodeOverride | Mapping[str, Any]] | None = None,
        entry_nodes: Sequence[str] | None = None,
        compile_kwargs: Mapping[str, Any] | None = None,
        runtime_config: Mapping[str, Any] | None = None,
        return_artifacts: bool = False,
        store: str | LedgerStore | None = None,
    ) -> Any:
        """Adapt ``graph`` (a ``StateGraph``, compiled with ``compile_kwargs``, or a
        compiled graph) and return the wrapped graph, a drop-in for the compiled one.

        Every invocation of the wrapped graph is a Codon run in ``store`` (a store or
        a URL; default: an in-memory store kept by this adapter, holding every run
        until the process ends: pass ``sqlite:///...`` for anything long-lived).
        ``node_overrides`` sets roles and models per node (:class:`NodeOverride`);
        ``entry_nodes`` overrides the entry recorded in the logic id (default
        ``__start__``); ``runtime_config`` is described in
        :class:`~codon.instrumentation.langgraph._options.RuntimeSettings`. With
        ``return_artifacts=True`` a :class:`LangGraphAdapterResult` is returned.

        Raises ``WorkloadRegistrationError`` for anything that is not a LangGraph
        graph, a graph without nodes, overrides or entry nodes naming unknown nodes,
        and invalid settings; ``ImportError`` when LangGraph is not installed.
        """
        require_langgraph()
        settings = RuntimeSettings.from_config(runtime_config)
        state_graph, compiled = _compile(graph, compile_kwargs)
        ledger = open_store(store or settings.store or MemoryStore())
        wrapped = _adapt(
            compiled,
            name=name,
            version=version,
            description=description,
            tags=tags,
            org_namespace=org_namespace,
            node_overrides=node_overrides,
            entry_nodes=entry_nodes,
            store=ledger,
            settings=settings,
        )
        if return_artifacts:
            return LangGraphAdapterResult(
                workload=wrapped.workload,
                state_graph=state_graph,
                compiled_graph=compiled,
                wrapped_graph=wrapped,
            )
        return wrapped


def _compile(graph: Any, compile_kwargs: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """(state graph or None, compiled graph) from what the caller gave."""
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    if isinstance(graph, StateGraph):
        if not graph.nodes:
            raise WorkloadRegistrationError(
                "the StateGraph has no nodes; add nodes with graph.add_node(...) before adapting it"
            )
        try:
            compiled = graph.compile(**dict(compile_kwargs or {}))
        except (ValueError, TypeError) as exc:
            raise WorkloadRegistrationError(
                f"the StateGraph does not compile with compile_kwargs "
                f"{sorted(compile_kwargs or {})}: {exc}"
            ) from exc
        return graph, compiled
    if isinstance(graph, Pregel):
        if is_instrumented(graph):
            raise WorkloadRegistrationError(
                "this graph is already adapted (it was returned by from_langgraph); adapt the "
                "original StateGraph or compiled graph instead"
            )
        if compile_kwargs:
            raise WorkloadRegistrationError(
                f"compile_kwargs {sorted(compile_kwargs)} apply to a StateGraph, but the graph "
                "given is already compiled; pass the StateGraph, or compile it with those "
                "arguments yourself"
            )
        builder = getattr(graph, "builder", None)
        return (builder if isinstance(builder, StateGraph) else None), graph
    raise WorkloadRegistrationError(
        "from_langgraph needs a LangGraph StateGraph or a compiled graph "
        f"(langgraph.pregel.Pregel), got {type(graph).__module__}.{type(graph).__qualname__}"
    )


def _adapt(
    compiled: Any,
    *,
    name: str,
    version: str,
    description: str | None,
    tags: Sequence[str] | None,
    org_namespace: str | None,
    node_overrides: Mapping[str, Any] | None,
    entry_nodes: Sequence[str] | None,
    store: LedgerStore,
    settings: RuntimeSettings,
) -> Any:
    workload = LangGraphWorkload(
        name=name,
        version=version,
        description=description,
        tags=tags,
        org_namespace=org_namespace,
        enable_tracing=settings.enable_tracing,
    )
    check_has_nodes(compiled, name)
    children: dict[int, Any] = {}

    def adapt_child(node: str, subgraph: Any) -> Any:
        child = children.get(id(subgraph))
        if child is None:
            child = _adapt(
                subgraph,
                name=f"{name}/{node}",
                version=version,
                description=None,
                tags=tags,
                org_namespace=org_namespace,
                node_overrides=None,
                entry_nodes=None,
                store=store,
                settings=settings,
            )
            children[id(subgraph)] = child
        return child

    logic_ids: dict[tuple[int, str], str] = {}

    def graph_logic(subgraph: Any, node: str) -> str:
        known = logic_ids.get((id(subgraph), node))
        if known is None:
            if is_instrumented(subgraph):
                known = subgraph.workload.logic_id
            elif any(n.bound is subgraph for n in compiled.nodes.values()):
                known = adapt_child(node, subgraph).workload.logic_id
            else:
                known = _identity_only(subgraph, f"{name}/{node}", version, org_namespace)
            logic_ids[(id(subgraph), node)] = known
        return known

    shape = graph_shape(compiled, graph_logic)
    _register(workload, shape, node_overrides, entry_nodes)
    binding = GraphBinding(workload, store, settings)
    return instrument(compiled, binding, adapt_child)


def _identity_only(graph: Any, name: str, version: str, org_namespace: str | None) -> str:
    """The logic id of a graph a node calls without it being adapted."""
    workload = LangGraphWorkload(name=name, version=version, org_namespace=org_namespace)
    shape = graph_shape(
        graph, lambda g, n: _identity_only(g, f"{name}/{n}", version, org_namespace)
    )
    _register(workload, shape, None, None)
    return workload.logic_id


def _register(
    workload: LangGraphWorkload,
    shape: GraphShape,
    node_overrides: Mapping[str, Any] | None,
    entry_nodes: Sequence[str] | None,
) -> None:
    names = list(shape.nodes)
    overrides = coerce_overrides(node_overrides, names)
    for node_name, node in shape.nodes.items():
        tracked = getattr(node.source, "nodespec", None)
        base = tracked if isinstance(tracked, NodeSpec) else None
        override = overrides.get(node_name, NodeOverride())
        workload.add_node(
            node.identity,
            node_name,
            override.role or (base.role if base else node.role),
            org_namespace=override.org_namespace,
            model_name=override.model_name or (base.model_name if base else None),
            model_version=override.model_version or (base.model_version if base else None),
        )
    for source, target in sorted(shape.edges):
        if source in shape.nodes and target in shape.nodes:
            workload.add_edge(source, target)
    if entry_nodes is not None:
        if isinstance(entry_nodes, str):
            entry_nodes = [entry_nodes]
        unknown = sorted(str(e) for e in entry_nodes if e not in shape.nodes)
        if unknown or not entry_nodes:
            raise WorkloadRegistrationError(
                f"entry_nodes must name nodes of the graph; unknown: {unknown or '(empty list)'}; "
                f"its nodes are {sorted(names)}"
            )
        workload.set_entry_nodes(list(entry_nodes))
    else:
        workload.set_entry_nodes(shape.entries)
