"""Codon for LangGraph: one line gives a graph an identity, an audit ledger, replay and spans.

::

    from codon.instrumentation.langgraph import LangGraphWorkloadAdapter

    graph = LangGraphWorkloadAdapter.from_langgraph(
        state_graph, name="ResearchAgent", version="1.0.0",
        compile_kwargs={"checkpointer": InMemorySaver()},
        store="sqlite:///ledger.db",
    )
    graph.invoke({"topic": "..."}, {"configurable": {"thread_id": "t1"}})
    graph.last_report          # the run's ExecutionReport (ledger, usage...)
    graph.workload.logic_id    # the graph's identity
    graph.workload.replay(graph.last_report.run_id, store="sqlite:///ledger.db")

The adapter and workload need LangGraph (``pip install "codon-sdk[langgraph]"``)
and are imported on first use, as is ``initialize_telemetry`` (OTLP export,
``codon-sdk[otel]``); ``track_node`` and ``NodeOverride`` need neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon.instrumentation.langgraph._options import NodeOverride
from codon.instrumentation.langgraph._track import track_node

if TYPE_CHECKING:
    from codon.instrumentation.langgraph._adapter import (
        LangGraphAdapterResult,
        LangGraphWorkloadAdapter,
    )
    from codon.instrumentation.langgraph._workload import LangGraphWorkload
    from codon_sdk.telemetry import initialize_telemetry

__all__ = [
    "LangGraphAdapterResult",
    "LangGraphWorkload",
    "LangGraphWorkloadAdapter",
    "NodeOverride",
    "initialize_telemetry",
    "track_node",
]

_LAZY = {
    "LangGraphAdapterResult": "codon.instrumentation.langgraph._adapter",
    "LangGraphWorkloadAdapter": "codon.instrumentation.langgraph._adapter",
    "LangGraphWorkload": "codon.instrumentation.langgraph._workload",
    "initialize_telemetry": "codon_sdk.instrumentation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module.startswith("codon.instrumentation.langgraph"):
        from codon.instrumentation.langgraph._compat import require_langgraph

        require_langgraph()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
