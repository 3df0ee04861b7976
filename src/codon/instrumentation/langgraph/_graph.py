"""The wrapped graph: the compiled LangGraph graph's own class, with every run recorded.

``from_langgraph`` returns an instance of a subclass of the compiled graph's
class (``CodonCompiledStateGraph`` for a ``CompiledStateGraph``) whose nodes'
task runnables are wrapped (:class:`NodeActivation`) and whose ``stream`` and
``astream`` open the Codon run around LangGraph's own. Everything else is
LangGraph's: ``invoke``, ``ainvoke``, ``batch`` and ``astream_events`` go
through ``stream``/``astream``; ``get_state``, ``update_state``, ``get_graph``,
``with_config`` and the rest are inherited unchanged, and copies LangGraph makes
(``with_config``) stay adapted. The instance also has ``workload`` (its
:class:`LangGraphWorkload`) and ``last_report`` (the latest invocation's
``ExecutionReport``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from codon.instrumentation.langgraph._activation import NodeActivation
from codon.instrumentation.langgraph._compat import CONF, CONFIG_KEY_TASK_ID
from codon_sdk.runtime import ExecutionReport

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._binding import GraphBinding
    from codon.instrumentation.langgraph._invocation import Invocation
    from codon.instrumentation.langgraph._workload import LangGraphWorkload

__all__ = ["CodonGraph", "instrument", "is_instrumented"]

_CHECKPOINTER_KEY = "__pregel_checkpointer"
_CLASSES: dict[type, type] = {}


class CodonGraph:
    """Mixin of every adapted graph class (see the module docstring)."""

    _codon_binding: GraphBinding

    @property
    def workload(self) -> LangGraphWorkload:
        """The :class:`~codon_sdk.CodonWorkload` describing this graph."""
        return self._codon_binding.workload

    @property
    def last_report(self) -> ExecutionReport | None:
        """The ``ExecutionReport`` of this graph's latest invocation (None before the first)."""
        return self._codon_binding.last_report

    def copy(self, update: dict[str, Any] | None = None) -> Any:
        new = super().copy(update)  # type: ignore[misc]
        new._codon_binding = self._codon_binding
        return new

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        binding = self._codon_binding
        inv = binding.open(input, config, kwargs, _start_checkpoint(self, config))
        inner = super().stream(input, inv.config(config), **kwargs)  # type: ignore[misc]
        error: BaseException | None = None
        early = False
        try:
            yield from inner
        except GeneratorExit:
            early = True
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            inner.close()
            paused_at: list[str] = []
            try:
                cfg = _breakpoint_config(self, config, kwargs, inv, error, early)
                if cfg is not None:
                    graph: Any = self  # a Pregel subclass (see _instrumented_class)
                    paused_at = [str(n) for n in graph.get_state(cfg).next]
            finally:
                _finish(binding, inv, error, early, paused_at)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        binding = self._codon_binding
        inv = binding.open(input, config, kwargs, await _astart_checkpoint(self, config))
        inner = super().astream(input, inv.config(config), **kwargs)  # type: ignore[misc]
        error: BaseException | None = None
        early = False
        try:
            async for chunk in inner:
                yield chunk
        except GeneratorExit:
            early = True
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await inner.aclose()
            paused_at: list[str] = []
            try:
                cfg = _breakpoint_config(self, config, kwargs, inv, error, early)
                if cfg is not None:
                    graph: Any = self
                    paused_at = [str(n) for n in (await graph.aget_state(cfg)).next]
            finally:
                _finish(binding, inv, error, early, paused_at)


def _finish(
    binding: GraphBinding,
    inv: Invocation,
    error: BaseException | None,
    early: bool,
    paused_at: list[str],
) -> None:
    try:
        report = inv.close(error, early=early, breakpoint_at=paused_at)
    finally:
        for close in inv.run.on_close:
            close()
    if inv.replay is None:
        binding.last_report = report


def _breakpoint_config(
    graph: Any,
    config: RunnableConfig | None,
    kwargs: dict[str, Any],
    inv: Invocation,
    error: BaseException | None,
    early: bool,
) -> Any:
    """The state config to find a static breakpoint (interrupt_before/after) with, or None
    when none can have stopped this invocation."""
    if error is not None or early or inv.interrupts:
        return None
    conf = (config or {}).get(CONF) or {}
    has_breakpoints = (
        graph.interrupt_before_nodes
        or graph.interrupt_after_nodes
        or kwargs.get("interrupt_before")
        or kwargs.get("interrupt_after")
    )
    if not has_breakpoints or conf.get("thread_id") is None or CONFIG_KEY_TASK_ID in conf:
        return None
    if graph.checkpointer in (None, False):
        return None
    return {CONF: {k: conf[k] for k in ("thread_id", "checkpoint_ns") if k in conf}}


def _saver_and_config(graph: Any, config: RunnableConfig | None) -> tuple[Any, Any]:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    conf = (config or {}).get(CONF) or {}
    if CONFIG_KEY_TASK_ID in conf or conf.get("thread_id") is None:
        return None, None
    from codon.instrumentation.langgraph._binding import REPLAY_KEY

    if REPLAY_KEY in conf:
        return None, None
    saver = conf.get(_CHECKPOINTER_KEY, graph.checkpointer)
    if not isinstance(saver, BaseCheckpointSaver):
        return None, None
    keys = ("thread_id", "checkpoint_ns", "checkpoint_id")
    return saver, {CONF: {k: conf[k] for k in keys if conf.get(k) is not None}}


def _start_checkpoint(graph: Any, config: RunnableConfig | None) -> Any:
    saver, cfg = _saver_and_config(graph, config)
    return None if saver is None else saver.get_tuple(cfg)


async def _astart_checkpoint(graph: Any, config: RunnableConfig | None) -> Any:
    saver, cfg = _saver_and_config(graph, config)
    return None if saver is None else await saver.aget_tuple(cfg)


def is_instrumented(graph: Any) -> bool:
    return isinstance(graph, CodonGraph)


def _instrumented_class(base: type) -> type:
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(
            f"Codon{base.__name__}",
            (CodonGraph, base),
            {"__module__": __name__, "__doc__": f"An adapted {base.__name__} (see {__name__})."},
        )
        _CLASSES[base] = cls
    return cls


def instrument(compiled: Any, binding: GraphBinding, subgraph: Callable[[str, Any], Any]) -> Any:
    """A copy of ``compiled`` whose runs are recorded through ``binding``.

    ``subgraph(node, graph)`` adapts a compiled graph used as node ``node``.
    """
    from langgraph.pregel import Pregel

    nodes: dict[str, Any] = {}
    for name, node in compiled.nodes.items():
        update: dict[str, Any] = {}
        if isinstance(node.bound, Pregel) and not is_instrumented(node.bound):
            child = subgraph(name, node.bound)
            update = {"bound": child, "subgraphs": [child]}
        new = node.copy(update)
        proc = new.node
        if proc is not None:
            new.__dict__["node"] = NodeActivation(proc, name)  # shadows the cached property
        nodes[name] = new
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    attrs["nodes"] = nodes
    graph = _instrumented_class(type(compiled))(**attrs)
    graph._codon_binding = binding
    binding.graph = graph
    return graph
